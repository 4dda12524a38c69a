package chaos

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var tallySteps = []Step{
	{ID: "email_1", Channel: "email", Marker: "[email_1]"},
	{ID: "sms_1", Channel: "sms", Marker: "[sms_1]"},
	{ID: "email_2", Channel: "email", Marker: "[email_2]"},
}

// clean is two contacts whose three messages each went out once.
func clean() Evidence {
	ev := Evidence{Steps: tallySteps, Runs: map[string]RunState{}}
	for _, c := range []Contact{{"c_a", "a@example.com", "+14155550100"}, {"c_b", "b@example.com", "+14155550101"}} {
		ev.Contacts = append(ev.Contacts, c)
		ev.Runs[c.ID] = RunState{Workflow: "Completed", Enrollment: "completed"}
		for _, s := range tallySteps {
			row := LedgerRow{ID: "m_" + c.ID + "_" + s.ID, ContactID: c.ID, StepID: s.ID, Channel: s.Channel, Status: "sent", Attempts: 1}
			rec := Record{Answer: AnswerSent}
			if s.Channel == "email" {
				row.Provider = ProviderSendGrid
				rec.Provider, rec.ID, rec.To, rec.Subject, rec.MessageID = ProviderSendGrid, "x-"+row.ID, c.Email, "Hi "+s.Marker, row.ID
			} else {
				row.Provider = ProviderTwilio
				rec.Provider, rec.ID, rec.To, rec.Body = ProviderTwilio, "SM-"+row.ID, c.Phone, "Hi "+s.Marker
			}
			row.ProviderMessageID = rec.ID
			ev.Ledger = append(ev.Ledger, row)
			ev.Records = append(ev.Records, rec)
		}
	}
	return ev
}

// row returns a pointer to the ledger row of contact and step.
func row(ev *Evidence, contact, step string) *LedgerRow {
	for i := range ev.Ledger {
		if ev.Ledger[i].ContactID == contact && ev.Ledger[i].StepID == step {
			return &ev.Ledger[i]
		}
	}
	panic("no row")
}

// dropRecord removes the fake's record of contact's step and returns it.
func dropRecord(ev *Evidence, contact, step string) Record {
	want := "m_" + contact + "_" + step
	for i, r := range ev.Records {
		if r.MessageID == want || r.ID == "SM-"+want {
			ev.Records = append(ev.Records[:i], ev.Records[i+1:]...)
			return r
		}
	}
	panic("no record")
}

func TestTally(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		mutate   func(*Evidence)
		check    func(*testing.T, Report)
		failures []string
	}{
		{
			name: "every message once, every journey completed",
			check: func(t *testing.T, r Report) {
				assert.Equal(t, 2, r.Journeys.Completed)
				assert.Equal(t, 6, r.Messages.Expected)
				assert.Equal(t, 6, r.Messages.Accepted)
				assert.Zero(t, r.Messages.Untied)
				assert.Equal(t, map[string]int{"sent": 6}, r.Messages.ByStatus)
			},
		},
		{
			name: "a resent row is a duplicate",
			mutate: func(ev *Evidence) {
				rec := ev.Records[0]
				rec.ID = "x-other"
				ev.Records = append(ev.Records, rec)
			},
			check: func(t *testing.T, r Report) {
				assert.Equal(t, 6, r.Messages.Accepted)
				assert.Equal(t, 7, r.Messages.Copies)
				assert.Equal(t, 1, r.Messages.DuplicatedSameRow)
				assert.Equal(t, []string{"c_a email_1: accepted 2 times"}, r.DuplicateExamples)
			},
			failures: []string{"1 duplicate messages"},
		},
		{
			name: "two rows for one step that both went out: a duplicate of another row",
			mutate: func(ev *Evidence) {
				ev.Ledger = append(ev.Ledger, LedgerRow{ID: "m_extra", ContactID: "c_b", StepID: "sms_1", Provider: ProviderTwilio, ProviderMessageID: "SM-extra", Status: "sent"})
				ev.Records = append(ev.Records, Record{Provider: ProviderTwilio, ID: "SM-extra", To: "+14155550101", Body: "[sms_1]", Answer: AnswerSent})
			},
			check: func(t *testing.T, r Report) {
				assert.Equal(t, 1, r.Messages.Duplicated)
				assert.Zero(t, r.Messages.DuplicatedSameRow)
			},
			failures: []string{"1 duplicate messages"},
		},
		{
			name: "unknown but really sent, its answer cut off: not a failure",
			mutate: func(ev *Evidence) {
				row(ev, "c_a", "email_2").Status = "unknown"
				for i := range ev.Records {
					if ev.Records[i].MessageID == "m_c_a_email_2" {
						ev.Records[i].Answer = AnswerClientGone
					}
				}
			},
			check: func(t *testing.T, r Report) {
				assert.Equal(t, 1, r.Messages.Unknown)
				assert.Equal(t, 1, r.Messages.UnknownReallySent)
				assert.Equal(t, 1, r.Messages.UnknownCut)
				assert.Equal(t, map[string]int{ProviderSendGrid: 1}, r.Messages.UnknownByProvider)
			},
		},
		{
			name: "unknown and never sent: lost for good",
			mutate: func(ev *Evidence) {
				row(ev, "c_b", "email_1").Status = "unknown"
				dropRecord(ev, "c_b", "email_1")
			},
			check: func(t *testing.T, r Report) {
				assert.Equal(t, 1, r.Messages.UnknownNeverSent)
				assert.Equal(t, 5, r.Messages.Accepted)
				assert.Equal(t, []string{"c_b email_1: unknown"}, r.NeverSentExamples)
			},
			failures: []string{"1 messages never sent and not retried"},
		},
		{
			name: "an SMS cut off before the fake accepted it, left unknown: never sent, and the cut is visible",
			mutate: func(ev *Evidence) {
				row(ev, "c_a", "sms_1").Status = "unknown"
				rec := dropRecord(ev, "c_a", "sms_1")
				rec.Answer = AnswerClientGone
				ev.Abandoned = append(ev.Abandoned, rec)
			},
			check: func(t *testing.T, r Report) {
				assert.Equal(t, 1, r.Messages.NeverSentCut)
				assert.Equal(t, map[string]int{ProviderTwilio: 1}, r.Messages.UnknownNeverSentByProvider)
			},
			failures: []string{"1 messages never sent and not retried"},
		},
		{
			name: "an email cut off by a kill before SendGrid accepted it, left unknown: reported, not a failure",
			mutate: func(ev *Evidence) {
				r := row(ev, "c_b", "email_2")
				r.Status, r.Provider = "unknown", ProviderSendGrid
				rec := dropRecord(ev, "c_b", "email_2")
				rec.Answer = AnswerClientGone
				ev.Abandoned = append(ev.Abandoned, rec)
			},
			check: func(t *testing.T, r Report) {
				assert.Equal(t, 1, r.Messages.NeverSentUnknownCut)
				assert.Zero(t, r.Messages.NeverSentNotRetried)
			},
		},
		{
			name: "still retrying while the run waits: pending, not yet a failure",
			mutate: func(ev *Evidence) {
				row(ev, "c_a", "sms_1").Status = "retrying"
				dropRecord(ev, "c_a", "sms_1")
				ev.Runs["c_a"] = RunState{Workflow: "Running", Enrollment: "active"}
			},
			check: func(t *testing.T, r Report) {
				assert.Equal(t, 1, r.Messages.NeverSentPending)
				assert.Zero(t, r.Messages.NeverSentNotRetried)
				assert.Equal(t, 1, r.Journeys.Running)
			},
			failures: []string{"1 journeys lost"},
		},
		{
			name: "retrying but the run closed: nothing will send it",
			mutate: func(ev *Evidence) {
				row(ev, "c_a", "sms_1").Status = "retrying"
				dropRecord(ev, "c_a", "sms_1")
			},
			failures: []string{"1 messages never sent and not retried"},
		},
		{
			name: "the ledger says sent but the provider never had it",
			mutate: func(ev *Evidence) {
				dropRecord(ev, "c_b", "email_2")
			},
			check: func(t *testing.T, r Report) {
				assert.Equal(t, 1, r.Messages.LedgerSaysSentFakeHasNot)
			},
			failures: []string{"1 messages never sent and not retried"},
		},
		{
			name: "lost journeys, each way",
			mutate: func(ev *Evidence) {
				ev.Contacts = append(ev.Contacts, Contact{"c_c", "c@example.com", "+14155550102"}, Contact{"c_d", "d@example.com", "+14155550103"})
				ev.Runs["c_a"] = RunState{Workflow: "Terminated", Enrollment: "active"}
				ev.Runs["c_b"] = RunState{Workflow: "Completed", Enrollment: "active"}
				ev.Runs["c_d"] = RunState{Workflow: "NotFound"}
				ev.NotEnrolled = 1
			},
			check: func(t *testing.T, r Report) {
				j := r.Journeys
				assert.Equal(t, 4, j.Started)
				assert.Zero(t, j.Completed)
				assert.Equal(t, 1, j.ClosedBadly)
				assert.Equal(t, 1, j.EnrollmentMismatch)
				assert.Equal(t, 2, j.NotFound, "no run at all, and NotFound")
				// c_c and c_d have no rows, and their runs are closed.
				assert.Equal(t, 6, r.Messages.NeverSentNotRetried)
				assert.Equal(t, 6, r.Messages.ByStatus["(no row)"])
			},
			failures: []string{"1 contacts could not be enrolled", "4 journeys lost", "6 messages never sent and not retried"},
		},
		{
			name: "a record for nobody is stray; an SMS without its SID ties by To and body; an email under another id is untied",
			mutate: func(ev *Evidence) {
				ev.Records = append(ev.Records, Record{Provider: ProviderSendGrid, ID: "x", To: "z@example.com", Subject: "[email_1]"})
				for i := range ev.Records {
					switch {
					case ev.Records[i].ID == "SM-m_c_a_sms_1":
						ev.Records[i].ID = "SM-unknown"
					case ev.Records[i].MessageID == "m_c_b_email_2":
						ev.Records[i].MessageID = "m_someone_else"
					}
				}
			},
			check: func(t *testing.T, r Report) {
				assert.Equal(t, 1, r.Messages.TiedByToAndBody)
				assert.Equal(t, 1, r.Messages.Untied)
				assert.Equal(t, 6, r.Messages.Accepted, "untied records still count for their message")
			},
			failures: []string{"1 messages the fake accepted that no contact was due"},
		},
		{
			name: "an SMS resent after a dropped answer: a duplicate of one row, caused by the drop",
			mutate: func(ev *Evidence) {
				ev.Records = append([]Record{{Provider: ProviderTwilio, ID: "SM-first", To: "+14155550101", Body: "Hi [sms_1]", Fault: "drop", Answer: AnswerDropped}}, ev.Records...)
			},
			check: func(t *testing.T, r Report) {
				assert.Equal(t, 1, r.Messages.Duplicated)
				assert.Equal(t, 1, r.Messages.DuplicatedSameRow)
				assert.Equal(t, map[string]int{"drop/dropped": 1}, r.Messages.DuplicateCauses)
			},
			failures: []string{"1 duplicate messages"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ev := clean()
			if tc.mutate != nil {
				tc.mutate(&ev)
			}
			r := Tally(ev)
			if tc.check != nil {
				tc.check(t, r)
			}
			assert.Equal(t, tc.failures, r.Failures())
			var out bytes.Buffer
			r.Print(&out)
			require.Contains(t, out.String(), "| journeys lost |")
		})
	}
}

package chaos

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/tutti-dev/tutti/internal/model"
)

// Step is one send step of the chaos journey. Marker appears in every
// message the step renders (subject or text), so a message the fake
// accepted names its step by itself, without trusting the ledger.
type Step struct {
	ID      string
	Channel string // "email" or "sms"
	Marker  string
}

// Contact is an enrolled contact and the addresses its messages go to.
type Contact struct {
	ID    string
	Email string
	Phone string
}

// RunState is how a contact's journey run stands at the end: Temporal's
// execution status ("Completed", "Running", "Failed", "Terminated",
// "TimedOut", "Canceled", or "NotFound") and the enrollment row's status.
type RunState struct {
	Workflow   string
	Enrollment model.RunStatus
}

// LedgerRow is one row of Tutti's messages table.
type LedgerRow struct {
	ID                string
	ContactID         string
	StepID            string
	Channel           string
	Provider          string
	ProviderMessageID string
	Status            model.MessageStatus
	StatusReason      string
	Attempts          int
}

// Evidence is everything the tally looks at, collected after the run.
type Evidence struct {
	Steps    []Step
	Contacts []Contact // enrolled: a journey run was started for each
	// NotEnrolled counts contacts the harness could not enroll at all.
	NotEnrolled int
	Runs        map[string]RunState // by contact id
	Ledger      []LedgerRow
	Records     []Record // the fake's: every message it accepted
	// Abandoned are requests the fake saw but whose sender hung up before
	// the message was accepted: nothing was sent.
	Abandoned []Record
}

// Ledger status classes. The send path's own states may be renamed
// (reserved, in_flight...); anything not listed counts as pending, i.e.
// still being worked on.
var (
	statusSentLike = map[model.MessageStatus]bool{
		model.MessageSent: true, model.MessageDelivered: true, model.MessageOpened: true, model.MessageClicked: true,
		model.MessageBounced: true, model.MessageDropped: true, model.MessageComplained: true,
	}
	statusFinalNot = map[model.MessageStatus]bool{model.MessageFailed: true, model.MessageSkipped: true}
)

// Report is the outcome of a run.
type Report struct {
	Journeys struct {
		Started, Completed, Lost int
		// Lost, by how the run stands: still running at the deadline,
		// closed badly (failed, terminated, timed out, cancelled), unknown
		// to Temporal, or closed while the enrollment row says otherwise.
		Running, ClosedBadly, NotFound, EnrollmentMismatch int
		NotEnrolled                                        int
	}
	Messages struct {
		Expected int
		// Accepted counts expected messages the fake accepted at least once;
		// Copies every accepted record that belongs to an expected message.
		Accepted, Copies int
		// Duplicated counts the extra copies: Copies - Accepted.
		Duplicated int
		// DuplicatedSameRow counts extra copies carrying the same ledger
		// row (id or SID) as an earlier one: a resend of one row.
		DuplicatedSameRow int
		// Unknown ledger rows, split by the fake's record.
		Unknown, UnknownReallySent, UnknownNeverSent int
		// UnknownCut counts really-sent unknown rows whose request the fake
		// saw cut off: the sender never got the answer.
		UnknownCut        int
		UnknownByProvider map[string]int
		// NeverSent counts expected messages the fake never accepted;
		// NeverSentNotRetried those whose ledger row is settled (or absent
		// with the run closed): nothing will send them any more.
		NeverSent, NeverSentNotRetried, NeverSentPending int
		// NeverSentCut counts never-sent messages whose request reached
		// the fake and was cut off before acceptance (a killed sender).
		NeverSentCut int
		// NeverSentUnknownCut: never sent, the request cut off mid-way by a
		// kill, and the row unknown because the provider cannot be asked
		// (SendGrid). The sender cannot tell this from a request that
		// arrived whole, so unknown - never resent - is the right answer;
		// it is reported, not counted as a failure.
		NeverSentUnknownCut int
		// UnknownNeverSentByProvider splits UnknownNeverSent.
		UnknownNeverSentByProvider map[string]int
		// LedgerSaysSentFakeHasNot: the ledger claims a send the provider
		// never accepted.
		LedgerSaysSentFakeHasNot int
		// DuplicateCauses counts the earlier copies of duplicates by how
		// their request ended (fault/answer, e.g. "drop/dropped").
		DuplicateCauses map[string]int
		// TiedByToAndBody counts SMS tied to their row by To and body
		// because the row does not hold their SID.
		TiedByToAndBody int
		// Untied counts accepted records that name no ledger row of their
		// message (by tutti_message_id or SID); Stray records that belong to
		// no expected message at all.
		Untied, Stray int
		// ByStatus counts ledger rows of expected messages by status.
		ByStatus map[string]int
	}
	// NeverSentExamples and DuplicateExamples name a few offenders.
	NeverSentExamples, DuplicateExamples []string
}

type slotKey struct{ contact, step string }

// Tally compares the fake's record with the ledger and the runs.
func Tally(ev Evidence) Report {
	var rep Report
	rep.Messages.UnknownByProvider = map[string]int{}
	rep.Messages.ByStatus = map[string]int{}
	rep.Messages.DuplicateCauses = map[string]int{}
	rep.Messages.UnknownNeverSentByProvider = map[string]int{}
	rep.Journeys.NotEnrolled = ev.NotEnrolled

	byEmail, byPhone := map[string]string{}, map[string]string{}
	for _, c := range ev.Contacts {
		if c.Email != "" {
			byEmail[strings.ToLower(c.Email)] = c.ID
		}
		if c.Phone != "" {
			byPhone[c.Phone] = c.ID
		}
	}

	// Journeys.
	rep.Journeys.Started = len(ev.Contacts)
	for _, c := range ev.Contacts {
		run, ok := ev.Runs[c.ID]
		switch {
		case !ok || run.Workflow == "NotFound" || run.Workflow == "":
			rep.Journeys.NotFound++
		case run.Workflow == "Running":
			rep.Journeys.Running++
		case run.Workflow != "Completed":
			rep.Journeys.ClosedBadly++
		case run.Enrollment != model.RunCompleted:
			rep.Journeys.EnrollmentMismatch++
		default:
			rep.Journeys.Completed++
		}
	}
	rep.Journeys.Lost = rep.Journeys.Started - rep.Journeys.Completed

	// Ledger rows of expected messages, by slot.
	enrolled := map[string]bool{}
	for _, c := range ev.Contacts {
		enrolled[c.ID] = true
	}
	stepIDs := map[string]bool{}
	for _, s := range ev.Steps {
		stepIDs[s.ID] = true
	}
	rows := map[slotKey][]LedgerRow{}
	rowByID, rowBySID := map[string]LedgerRow{}, map[string]LedgerRow{}
	for _, r := range ev.Ledger {
		rowByID[r.ID] = r
		if r.ProviderMessageID != "" {
			rowBySID[r.ProviderMessageID] = r
		}
		if enrolled[r.ContactID] && stepIDs[r.StepID] {
			k := slotKey{r.ContactID, r.StepID}
			rows[k] = append(rows[k], r)
		}
	}

	// The fake's records, by slot, from the message itself: the address
	// names the contact and the marker the step. Each is then tied to its
	// ledger row: an email by its custom_args tutti_message_id, an SMS by
	// its SID or, when the sender never learnt the SID, by To and body (the
	// one row of its slot).
	copies := map[slotKey][]tiedRecord{}
	for _, rec := range ev.Records {
		k, ok := slotOf(rec, ev.Steps, byEmail, byPhone)
		if !ok {
			rep.Messages.Stray++
			continue
		}
		var row LedgerRow
		var tied bool
		if rec.Provider == ProviderSendGrid {
			row, tied = rowByID[rec.MessageID]
		} else if row, tied = rowBySID[rec.ID]; !tied && len(rows[k]) == 1 {
			row, tied = rows[k][0], true
			rep.Messages.TiedByToAndBody++
		}
		if !tied || row.ContactID != k.contact || row.StepID != k.step {
			rep.Messages.Untied++
			row = LedgerRow{}
		}
		copies[k] = append(copies[k], tiedRecord{rec, row.ID})
	}

	cut := map[slotKey]bool{}
	for _, rec := range ev.Abandoned {
		if k, ok := slotOf(rec, ev.Steps, byEmail, byPhone); ok {
			cut[k] = true
		}
	}

	for _, c := range ev.Contacts {
		for _, s := range ev.Steps {
			k := slotKey{c.ID, s.ID}
			rep.Messages.Expected++
			recs := copies[k]
			n := len(recs)
			rep.Messages.Copies += n
			if n > 0 {
				rep.Messages.Accepted++
			}
			if n > 1 {
				rep.Messages.Duplicated += n - 1
				seen := map[string]bool{}
				for i, r := range recs {
					if r.rowID != "" && seen[r.rowID] {
						rep.Messages.DuplicatedSameRow++
					}
					seen[r.rowID] = true
					if i < n-1 {
						// Why the sender sent again: how the earlier copy's
						// request ended.
						rep.Messages.DuplicateCauses[cause(r.Record)]++
					}
				}
				rep.DuplicateExamples = appendExample(rep.DuplicateExamples, fmt.Sprintf("%s %s: accepted %d times", c.ID, s.ID, n))
			}

			ledger := rows[k]
			var status model.MessageStatus
			if len(ledger) > 0 {
				status = ledger[len(ledger)-1].Status
			}
			for _, r := range ledger {
				rep.Messages.ByStatus[string(r.Status)]++
				if r.Status == model.MessageUnknown {
					rep.Messages.Unknown++
					rep.Messages.UnknownByProvider[r.Provider]++
					if n > 0 {
						rep.Messages.UnknownReallySent++
						if cutOff(recs) {
							rep.Messages.UnknownCut++
						}
					} else {
						rep.Messages.UnknownNeverSent++
						rep.Messages.UnknownNeverSentByProvider[r.Provider]++
					}
				}
			}
			if len(ledger) == 0 {
				rep.Messages.ByStatus["(no row)"]++
			}
			if n > 0 {
				continue
			}
			rep.Messages.NeverSent++
			if cut[k] {
				rep.Messages.NeverSentCut++
			}
			if statusSentLike[status] {
				rep.Messages.LedgerSaysSentFakeHasNot++
			}
			// Nothing sends it any more once its row is settled, or once
			// its run has closed whatever the row says.
			runClosed := ev.Runs[c.ID].Workflow != "Running"
			settled := status == model.MessageUnknown || statusSentLike[status] || statusFinalNot[status]
			if status == model.MessageUnknown && cut[k] && ledger[len(ledger)-1].Provider == ProviderSendGrid {
				rep.Messages.NeverSentUnknownCut++
				rep.NeverSentExamples = appendExample(rep.NeverSentExamples, fmt.Sprintf("%s %s: unknown, cut mid-request by a kill", c.ID, s.ID))
				continue
			}
			if settled || runClosed {
				rep.Messages.NeverSentNotRetried++
				what := string(status)
				if what == "" {
					what = "no ledger row"
				}
				rep.NeverSentExamples = appendExample(rep.NeverSentExamples, fmt.Sprintf("%s %s: %s", c.ID, s.ID, what))
			} else {
				rep.Messages.NeverSentPending++
			}
		}
	}
	return rep
}

// tiedRecord is an accepted record with the ledger row it belongs to ("" if
// none could be found).
type tiedRecord struct {
	Record
	rowID string
}

// cause names how a request ended: its fault and the answer, e.g.
// "drop/dropped", "hang/client_gone", "-/answered".
func cause(r Record) string {
	f := r.Fault
	if f == "" {
		f = "-"
	}
	a := r.Answer
	if a == "" {
		a = "pending"
	}
	return f + "/" + a
}

// cutOff reports whether some copy's request ended without the sender
// hearing the answer.
func cutOff(recs []tiedRecord) bool {
	for _, r := range recs {
		if r.Answer != AnswerSent {
			return true
		}
	}
	return false
}

func appendExample(xs []string, x string) []string {
	if len(xs) < 5 {
		return append(xs, x)
	}
	return xs
}

// slotOf names the expected message a record is: its recipient's contact and
// the step whose marker it carries.
func slotOf(rec Record, steps []Step, byEmail, byPhone map[string]string) (slotKey, bool) {
	var contact, channel string
	switch rec.Provider {
	case ProviderSendGrid:
		contact, channel = byEmail[strings.ToLower(rec.To)], "email"
	case ProviderTwilio:
		contact, channel = byPhone[rec.To], "sms"
	}
	if contact == "" {
		return slotKey{}, false
	}
	for _, s := range steps {
		if s.Channel == channel && (strings.Contains(rec.Subject, s.Marker) || strings.Contains(rec.Body, s.Marker)) {
			return slotKey{contact, s.ID}, true
		}
	}
	return slotKey{}, false
}

// Failures are the reasons the run fails; none means it met the target.
func (r Report) Failures() []string {
	var out []string
	add := func(n int, what string) {
		if n > 0 {
			out = append(out, fmt.Sprintf("%d %s", n, what))
		}
	}
	add(r.Journeys.NotEnrolled, "contacts could not be enrolled")
	add(r.Journeys.Lost, "journeys lost")
	add(r.Messages.Duplicated, "duplicate messages")
	add(r.Messages.NeverSentNotRetried, "messages never sent and not retried")
	add(r.Messages.Stray, "messages the fake accepted that no contact was due")
	return out
}

// Print writes the report as a Markdown table (the README's format) with
// breakdowns below it.
func (r Report) Print(w io.Writer) {
	j, m := r.Journeys, r.Messages
	fmt.Fprintf(w, "| figure | count |\n|---|---|\n")
	fmt.Fprintf(w, "| journeys started | %d |\n", j.Started)
	fmt.Fprintf(w, "| journeys completed | %d |\n", j.Completed)
	fmt.Fprintf(w, "| journeys lost | %d |\n", j.Lost)
	fmt.Fprintf(w, "| messages expected | %d |\n", m.Expected)
	fmt.Fprintf(w, "| messages accepted by the fake | %d |\n", m.Accepted)
	fmt.Fprintf(w, "| messages duplicated (extra copies) | %d |\n", m.Duplicated)
	fmt.Fprintf(w, "| unknown in the ledger | %d |\n", m.Unknown)
	fmt.Fprintf(w, "| unknown, really sent (the fake has it) | %d |\n", m.UnknownReallySent)
	fmt.Fprintf(w, "| unknown, never sent | %d |\n", m.UnknownNeverSent)
	fmt.Fprintf(w, "| never sent and not retried | %d |\n", m.NeverSentNotRetried)
	fmt.Fprintf(w, "| never sent, unknown: request cut mid-way by a kill (SendGrid, no read-back) | %d |\n", m.NeverSentUnknownCut)
	fmt.Fprintln(w)
	fmt.Fprintf(w, "journeys lost: %d still running, %d failed/terminated/timed out, %d unknown to Temporal, %d closed with the enrollment not completed; %d contacts never enrolled\n",
		j.Running, j.ClosedBadly, j.NotFound, j.EnrollmentMismatch, j.NotEnrolled)
	fmt.Fprintf(w, "duplicates: %d of them resends of one ledger row; earlier copies by fault/answer: %s\n", m.DuplicatedSameRow, countsText(m.DuplicateCauses))
	fmt.Fprintf(w, "unknown by provider: %s; really sent and cut mid-request: %d\n", countsText(m.UnknownByProvider), m.UnknownCut)
	fmt.Fprintf(w, "unknown and never sent by provider: %s\n", countsText(m.UnknownNeverSentByProvider))
	fmt.Fprintf(w, "never sent: %d (%d not retried, %d still pending; %d cut off mid-request before the fake accepted them); ledger says sent but the fake has nothing: %d\n",
		m.NeverSent, m.NeverSentNotRetried, m.NeverSentPending, m.NeverSentCut, m.LedgerSaysSentFakeHasNot)
	fmt.Fprintf(w, "accepted records not tied to their ledger row: %d (SMS tied by To and body: %d); stray records: %d\n", m.Untied, m.TiedByToAndBody, m.Stray)
	fmt.Fprintf(w, "ledger rows by status: %s\n", countsText(m.ByStatus))
	if len(r.DuplicateExamples) > 0 {
		fmt.Fprintf(w, "duplicate examples: %s\n", strings.Join(r.DuplicateExamples, "; "))
	}
	if len(r.NeverSentExamples) > 0 {
		fmt.Fprintf(w, "never-sent examples: %s\n", strings.Join(r.NeverSentExamples, "; "))
	}
}

func countsText(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

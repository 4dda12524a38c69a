package storagetest

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/experiment"
	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/storage"
)

// ReportSeed is a journey with an experiment and a holdout, and what each
// of its contacts did, written to the database row by row. Tests of the
// reports compare what the SQL counts with what Expect* count here, in
// plain Go over the same facts.
type ReportSeed struct {
	JourneyID  string
	Experiment string
	Goal       string
	Window     time.Duration
	Contacts   []SeededContact
}

// SeededContact is one contact's run and what happened in it.
type SeededContact struct {
	ID      string
	Version int
	Start   time.Time
	// Ended is when the run ended; nil: still active.
	Ended *time.Time
	// Path is the steps an ended run took, nil for one that ended before
	// paths were recorded; PathTruncated says its front was dropped.
	Path          []string
	PathTruncated bool
	// Variant is the split's recorded variant, SplitAt when recorded.
	Variant string
	SplitAt time.Time
	// Held: in the journey's holdout. ControlGroup: in the workspace
	// control group (a recorded row, variant control_group).
	Held         bool
	ControlGroup bool
	// Events are (name, time) pairs.
	Events []SeededEvent
	// Messages are ledger rows.
	Messages []SeededMessage
	// Revoked are email/sms consent revocations.
	Revoked []SeededRevocation
	// Spam is when a spam complaint suppression was recorded, if one was.
	Spam *time.Time
	// DeferredSteps had a send the gate deferred (twice: one send).
	DeferredSteps []string
}

type SeededEvent struct {
	Name string
	At   time.Time
}

type SeededMessage struct {
	Step    string
	Channel journey.Channel
	Status  model.MessageStatus
	Reason  string
	At      time.Time
}

type SeededRevocation struct {
	Channel journey.Channel
	At      time.Time
}

// ReportSpec is the seeded journey: a split, a holdout and two sends.
const ReportSpec = `
id: offer
name: Offer
trigger: {type: api}
reentry: {policy: always}
goal: {event: purchase, window: 7d}
holdout: {share: 0.1}
steps:
  - id: pick
    split:
      experiment: discount
      variants:
        - {name: a, weight: 1, next: hello}
        - {name: b, weight: 1, next: hello}
  - {id: hello, send: {channel: email, email: {subject: Hi, text: Hello}}}
  - {id: pause, wait: {duration: 1d}}
  - {id: nudge, send: {channel: sms, sms: {body: Hi}}}
`

// SeedReports publishes ReportSpec twice and writes 40 contacts' runs:
// 25 in version 1, 15 in version 2, starting an hour apart from T0.
func SeedReports(t *testing.T, s *storage.Store) ReportSeed {
	t.Helper()
	ctx := context.Background()
	spec, err := journey.ParseAndValidate([]byte(ReportSpec))
	require.NoError(t, err)
	for range 2 {
		_, err := s.PublishJourney(ctx, spec)
		require.NoError(t, err)
	}
	seed := ReportSeed{JourneyID: "offer", Experiment: "discount", Goal: "purchase", Window: 7 * 24 * time.Hour}
	t0 := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	h := time.Hour
	for i := range 40 {
		c, _, err := s.UpsertContact(ctx, storage.ContactInput{Email: fmt.Sprintf("seed%d@example.com", i)})
		require.NoError(t, err)
		sc := SeededContact{ID: c.ID, Version: 1, Start: t0.Add(time.Duration(i) * h), Held: i%10 == 9, ControlGroup: i == 4}
		if i >= 25 {
			sc.Version = 2
		}
		sc.SplitAt = sc.Start.Add(h)
		sc.Variant = map[bool]string{true: "a", false: "b"}[i%2 == 0]
		if i%2 == 0 {
			end := sc.Start.Add(5 * 24 * h)
			sc.Ended = &end
			switch {
			case i == 10: // ended before paths were recorded
			case i == 14:
				sc.Path = []string{} // ended before its first step
			case i == 20:
				sc.Path, sc.PathTruncated = []string{"pause", "nudge"}, true
			case i%4 == 0:
				sc.Path = []string{"pick", "hello", "pause", "nudge"}
			default:
				sc.Path = []string{"pick", "hello", "pause"}
			}
		}
		if i%3 == 0 {
			at := sc.SplitAt.Add(time.Duration(i+1) * h)
			sc.Events = append(sc.Events, SeededEvent{"purchase", at}, SeededEvent{"browse", at.Add(-h)})
		}
		if i%7 == 1 {
			sc.Events = append(sc.Events, SeededEvent{"purchase", sc.Start.Add(8 * 24 * h)}) // after the window
		}
		if i == 2 {
			sc.Events = append(sc.Events, SeededEvent{"purchase", sc.Start.Add(-h)}) // before entry
		}
		hello := SeededMessage{Step: "hello", Channel: journey.ChannelEmail, Status: model.MessageSent, At: sc.SplitAt.Add(h)}
		switch {
		case sc.Held:
			hello.Status, hello.Reason = model.MessageSkipped, journey.GroupHoldout
		case sc.ControlGroup:
			hello.Status, hello.Reason = model.MessageSkipped, journey.GroupControlGroup
		case i%5 == 0:
			hello.Status = model.MessageBounced
		case i%5 == 1:
			hello.Status, hello.Reason = model.MessageSkipped, "no_consent"
		case i%5 == 2:
			hello.Status, hello.Reason = model.MessageFailed, "sendgrid:400"
		}
		sc.Messages = append(sc.Messages, hello)
		if i%4 == 0 && !sc.Held && !sc.ControlGroup {
			sc.Messages = append(sc.Messages, SeededMessage{Step: "nudge", Channel: journey.ChannelSMS, Status: model.MessageDelivered, At: sc.SplitAt.Add(25 * h)})
		}
		if i%6 == 0 {
			sc.DeferredSteps = append(sc.DeferredSteps, "hello")
		}
		if i%8 == 3 {
			sc.Revoked = append(sc.Revoked, SeededRevocation{journey.ChannelEmail, sc.Start.Add(3 * h)})
		}
		if i == 11 {
			sc.Revoked = append(sc.Revoked, SeededRevocation{journey.ChannelSMS, sc.Start.Add(30 * 24 * h)})
		}
		if i == 6 {
			at := sc.Start.Add(4 * h)
			sc.Spam = &at
		}
		seed.write(t, s, i, sc)
		seed.Contacts = append(seed.Contacts, sc)
	}
	return seed
}

func (seed ReportSeed) write(t *testing.T, s *storage.Store, i int, sc SeededContact) {
	t.Helper()
	ctx := context.Background()
	_, _, err := s.RecordConsent(ctx, sc.ID, journey.ChannelEmail, model.ConsentGranted, "seed", sc.Start.Add(-24*time.Hour))
	require.NoError(t, err)
	enrollment := fmt.Sprintf("e_seed_%d", i)
	require.NoError(t, s.RecordEnrollment(ctx, storage.Enrollment{ID: enrollment, ContactID: sc.ID, JourneyID: seed.JourneyID,
		Version: sc.Version, WorkflowID: "journey/offer/contact/" + sc.ID, StartedAt: sc.Start}))
	if sc.Ended != nil {
		require.NoError(t, s.EndEnrollment(ctx, enrollment, storage.EnrollmentEnd{Status: model.RunCompleted, Reason: "reached the end", EndedAt: *sc.Ended,
			Path: sc.Path, PathTruncated: sc.PathTruncated}))
	}
	held := map[bool]string{true: journey.GroupHoldout, false: journey.GroupTreatment}[sc.Held]
	for _, a := range []storage.Assignment{
		{JourneyID: seed.JourneyID, Experiment: journey.GroupHoldout, Variant: held, AssignedAt: sc.Start},
		{JourneyID: seed.JourneyID, Experiment: seed.Experiment, Variant: sc.Variant, AssignedAt: sc.SplitAt},
	} {
		a.ContactID, a.EnrollmentID, a.JourneyVersion = sc.ID, enrollment, sc.Version
		_, created, err := s.Assign(ctx, a)
		require.NoError(t, err)
		require.True(t, created)
	}
	if i == 4 || i == 5 {
		group := map[bool]string{true: journey.GroupControlGroup, false: journey.GroupTreatment}[sc.ControlGroup]
		_, _, err := s.Assign(ctx, storage.Assignment{Experiment: journey.GroupControlGroup, ContactID: sc.ID, Variant: group,
			EnrollmentID: enrollment, JourneyVersion: sc.Version, AssignedAt: sc.SplitAt})
		require.NoError(t, err)
	}
	for k, e := range sc.Events {
		_, _, err := s.InsertEvent(ctx, storage.Event{ID: fmt.Sprintf("ev_seed_%d_%d", i, k), ContactID: sc.ID, Name: e.Name, OccurredAt: e.At})
		require.NoError(t, err)
	}
	for k, m := range sc.Messages {
		_, err := s.Pool().Exec(ctx, `
			INSERT INTO messages (id, idempotency_key, contact_id, journey_id, journey_version, step_id, channel, class, provider,
			                      status, status_reason, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, 'marketing', 'sandbox', $8, NULLIF($9, ''), $10, $10)`,
			fmt.Sprintf("m_seed_%d_%d", i, k), fmt.Sprintf("enrollment/%s/%s/1", enrollment, m.Step), sc.ID, seed.JourneyID,
			sc.Version, m.Step, m.Channel, m.Status, m.Reason, m.At)
		require.NoError(t, err)
	}
	for _, step := range sc.DeferredSteps {
		for range 2 {
			_, err := s.Pool().Exec(ctx, `
				INSERT INTO decisions (idempotency_key, contact_id, journey_id, journey_version, step_id, channel, class,
				                       outcome, decided_channel, defer_until)
				VALUES ($1, $2, $3, $4, $5, 'email', 'marketing', 'defer', 'email', now())`,
				fmt.Sprintf("enrollment/%s/%s/1", enrollment, step), sc.ID, seed.JourneyID, sc.Version, step)
			require.NoError(t, err)
		}
	}
	for _, r := range sc.Revoked {
		_, _, err := s.RecordConsent(ctx, sc.ID, r.Channel, model.ConsentRevoked, "seed", r.At)
		require.NoError(t, err)
	}
	if sc.Spam != nil {
		_, err := s.Pool().Exec(ctx, `
			INSERT INTO suppressions (id, contact_id, reason, channel, source, created_at)
			VALUES ($1, $2, 'spam_complaint', 'email', 'seed', $3)`, fmt.Sprintf("sp_seed_%d", i), sc.ID, *sc.Spam)
		require.NoError(t, err)
	}
}

// firstGoal is the contact's first goal event in [from, from+window].
func (seed ReportSeed) firstGoal(sc SeededContact, from time.Time) (time.Time, bool) {
	var first time.Time
	for _, e := range sc.Events {
		if e.Name == seed.Goal && !e.At.Before(from) && !e.At.After(from.Add(seed.Window)) && (first.IsZero() || e.At.Before(first)) {
			first = e.At
		}
	}
	return first, !first.IsZero()
}

// ExpectedFunnel is one version's funnel, counted in Go.
type ExpectedFunnel struct {
	Entered, Converted int64
	// ConvertSeconds are the times to convert, sorted.
	ConvertSeconds []float64
	// Sends by step, then status, then reason.
	Sends    map[string]map[model.MessageStatus]map[string]int64
	Reached  map[string]int64
	Deferred map[string]int64
	OptedOut map[journey.Channel]int64
	SentTo   map[journey.Channel]int64
	// Assigned: by experiment and group, first recorded at this version.
	Assigned map[string]map[string]int64
}

// ExpectFunnel counts version's funnel. now bounds revocations in runs
// still active.
func (seed ReportSeed) ExpectFunnel(version int, now time.Time) ExpectedFunnel {
	f := ExpectedFunnel{Sends: map[string]map[model.MessageStatus]map[string]int64{}, Reached: map[string]int64{},
		Deferred: map[string]int64{}, OptedOut: map[journey.Channel]int64{}, SentTo: map[journey.Channel]int64{},
		Assigned: map[string]map[string]int64{journey.GroupHoldout: {}, seed.Experiment: {}}}
	for _, sc := range seed.Contacts {
		if sc.Version != version {
			continue
		}
		f.Entered++
		if at, ok := seed.firstGoal(sc, sc.Start); ok {
			f.Converted++
			f.ConvertSeconds = append(f.ConvertSeconds, at.Sub(sc.Start).Seconds())
		}
		sentOn := map[journey.Channel]bool{}
		for _, m := range sc.Messages {
			if f.Sends[m.Step] == nil {
				f.Sends[m.Step] = map[model.MessageStatus]map[string]int64{}
			}
			if f.Sends[m.Step][m.Status] == nil {
				f.Sends[m.Step][m.Status] = map[string]int64{}
			}
			f.Sends[m.Step][m.Status][m.Reason]++
			f.Reached[m.Step]++ // one row per step per contact here
			if m.Status.Outcome() == model.OutcomeSent {
				sentOn[m.Channel] = true
			}
		}
		for ch := range sentOn {
			f.SentTo[ch]++
		}
		for _, step := range sc.DeferredSteps {
			f.Deferred[step]++
		}
		end := now
		if sc.Ended != nil {
			end = *sc.Ended
		}
		optedOut := map[journey.Channel]bool{}
		for _, r := range sc.Revoked {
			if !r.At.Before(sc.Start) && !r.At.After(end) {
				optedOut[r.Channel] = true
			}
		}
		for ch := range optedOut {
			f.OptedOut[ch]++
		}
		f.Assigned[journey.GroupHoldout][map[bool]string{true: journey.GroupHoldout, false: journey.GroupTreatment}[sc.Held]]++
		f.Assigned[seed.Experiment][sc.Variant]++
	}
	sort.Float64s(f.ConvertSeconds)
	return f
}

// ExpectedPath is one row of a version's conversion by path, counted in
// Go: Kind is storage.PathOne, PathOther or PathUnrecorded.
type ExpectedPath struct {
	Kind               string
	Steps              []string
	Truncated          bool
	Paths              int64
	Entered, Converted int64
	ConvertSeconds     []float64
}

// ExpectPaths counts version's ended runs by path: the max paths most
// runs took (ties: the path's ids joined by spaces, in byte order; the
// whole before the truncated), then the rest, then runs with no path.
func (seed ReportSeed) ExpectPaths(version, max int) []ExpectedPath {
	type key struct {
		steps     string
		truncated bool
	}
	byPath := map[key]*ExpectedPath{}
	var unrecorded *ExpectedPath
	var keys []key
	add := func(p *ExpectedPath, sc SeededContact) {
		p.Entered++
		if at, ok := seed.firstGoal(sc, sc.Start); ok {
			p.Converted++
			p.ConvertSeconds = append(p.ConvertSeconds, at.Sub(sc.Start).Seconds())
		}
	}
	for _, sc := range seed.Contacts {
		if sc.Version != version || sc.Ended == nil {
			continue
		}
		if sc.Path == nil {
			if unrecorded == nil {
				unrecorded = &ExpectedPath{Kind: storage.PathUnrecorded}
			}
			add(unrecorded, sc)
			continue
		}
		k := key{strings.Join(sc.Path, " "), sc.PathTruncated}
		if byPath[k] == nil {
			byPath[k] = &ExpectedPath{Kind: storage.PathOne, Steps: sc.Path, Truncated: sc.PathTruncated, Paths: 1}
			keys = append(keys, k)
		}
		add(byPath[k], sc)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := byPath[keys[i]], byPath[keys[j]]
		switch {
		case a.Entered != b.Entered:
			return a.Entered > b.Entered
		case keys[i].steps != keys[j].steps:
			return keys[i].steps < keys[j].steps
		}
		return !keys[i].truncated && keys[j].truncated
	})
	var out []ExpectedPath
	var other *ExpectedPath
	for n, k := range keys {
		p := byPath[k]
		if n < max {
			out = append(out, *p)
			continue
		}
		if other == nil {
			other = &ExpectedPath{Kind: storage.PathOther}
		}
		other.Paths++
		other.Entered += p.Entered
		other.Converted += p.Converted
		other.ConvertSeconds = append(other.ConvertSeconds, p.ConvertSeconds...)
	}
	for _, p := range []*ExpectedPath{other, unrecorded} {
		if p != nil {
			out = append(out, *p)
		}
	}
	for i := range out {
		sort.Float64s(out[i].ConvertSeconds)
	}
	return out
}

// ExpectedGroup is one group of the experiment, counted in Go.
type ExpectedGroup struct {
	Entered, Converted                    int64
	ConvertSeconds                        []float64
	Unsubscribed, SpamComplaints, Bounced int64
	// Daily entries and conversions by UTC day.
	DailyEntered, DailyConverted map[time.Time]int64
	// Steps: contacts with a message of the step from entering on, and sent one.
	Steps map[string]experiment.StepCounts
}

// ExpectGroups counts the split's groups: its variants without the held
// out and the control group, and "holdout"; and the control group left out.
func (seed ReportSeed) ExpectGroups() (map[string]*ExpectedGroup, int64) {
	return seed.expectGroups(func(sc SeededContact) (string, time.Time) {
		if sc.Held {
			return journey.GroupHoldout, sc.SplitAt
		}
		return sc.Variant, sc.SplitAt
	})
}

// ExpectHoldoutGroups counts the holdout's groups (holdout, treatment)
// without the control group, and the control group left out.
func (seed ReportSeed) ExpectHoldoutGroups() (map[string]*ExpectedGroup, int64) {
	return seed.expectGroups(func(sc SeededContact) (string, time.Time) {
		if sc.Held {
			return journey.GroupHoldout, sc.Start
		}
		return journey.GroupTreatment, sc.Start
	})
}

func (seed ReportSeed) expectGroups(groupOf func(SeededContact) (string, time.Time)) (map[string]*ExpectedGroup, int64) {
	groups := map[string]*ExpectedGroup{}
	var excluded int64
	for _, sc := range seed.Contacts {
		name, entered := groupOf(sc)
		if sc.ControlGroup {
			excluded++
			continue
		}
		g := groups[name]
		if g == nil {
			g = &ExpectedGroup{DailyEntered: map[time.Time]int64{}, DailyConverted: map[time.Time]int64{}, Steps: map[string]experiment.StepCounts{}}
			groups[name] = g
		}
		g.Entered++
		g.DailyEntered[entered.Truncate(24*time.Hour)]++
		if at, ok := seed.firstGoal(sc, entered); ok {
			g.Converted++
			g.ConvertSeconds = append(g.ConvertSeconds, at.Sub(entered).Seconds())
			g.DailyConverted[at.Truncate(24*time.Hour)]++
		}
		inWindow := func(at time.Time) bool { return !at.Before(entered) && !at.After(entered.Add(seed.Window)) }
		for _, r := range sc.Revoked {
			if inWindow(r.At) {
				g.Unsubscribed++
				break
			}
		}
		if sc.Spam != nil && inWindow(*sc.Spam) {
			g.SpamComplaints++
		}
		for _, m := range sc.Messages {
			if m.Status == model.MessageBounced && inWindow(m.At) {
				g.Bounced++
				break
			}
		}
		for _, m := range sc.Messages { // one message per step here
			if m.At.Before(entered) {
				continue
			}
			st := g.Steps[m.Step]
			st.Reached++
			if m.Status.Outcome() == model.OutcomeSent {
				st.Sent++
			}
			g.Steps[m.Step] = st
		}
	}
	for _, g := range groups {
		sort.Float64s(g.ConvertSeconds)
	}
	return groups, excluded
}

// Percentile is PostgreSQL's percentile_cont over sorted values: linear
// interpolation between the closest ranks.
func Percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	pos := p * float64(len(sorted)-1)
	lo := int(pos)
	if lo+1 >= len(sorted) {
		return sorted[lo]
	}
	return sorted[lo] + (pos-float64(lo))*(sorted[lo+1]-sorted[lo])
}

package storagetest

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tutti-dev/tutti/internal/experiment"
	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/storage"
)

// ScaleConfig sizes the data set the reports are measured on (README
// "Reports at scale"): contacts, ledger rows spread over four journeys
// (ScaleJourney holding ScaleBigShare of them), and events besides the
// goal events.
type ScaleConfig struct {
	Contacts    int
	Messages    int
	NoiseEvents int
	Seed        uint64
}

// DefaultScale is the size: 100,000 contacts, 1,000,000 ledger
// rows, 2,000,000 events besides the purchases.
func DefaultScale() ScaleConfig {
	return ScaleConfig{Contacts: 100_000, Messages: 1_000_000, NoiseEvents: 2_000_000, Seed: 1}
}

// ScaleJourney is the big journey: a holdout, a split (experiment
// ScaleExperiment) and three sends, published twice; ScaleBigShare of the
// ledger is its.
const (
	ScaleJourney    = "scale_big"
	ScaleExperiment = "discount"
	ScaleGoal       = "purchase"
	ScaleWindow     = 7 * 24 * time.Hour
	ScaleBigShare   = 0.6
)

type scaleSend struct {
	id     string
	ch     journey.Channel
	offset time.Duration
	reach  float64 // share of runs that get this far
}

type scaleJourney struct {
	id       string
	versions int
	share    float64
	sends    []scaleSend
	spec     string
}

var scaleJourneys = []scaleJourney{
	{id: ScaleJourney, versions: 2, share: ScaleBigShare, sends: []scaleSend{
		{"hello", journey.ChannelEmail, time.Hour, 1}, {"nudge", journey.ChannelSMS, 25 * time.Hour, 0.7},
		{"reminder", journey.ChannelEmail, 73 * time.Hour, 0.5}}, spec: `
id: scale_big
name: Offer at scale
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
  - {id: later, wait: {duration: 2d}}
  - {id: reminder, send: {channel: email, email: {subject: "Still there?", text: Hello again}}}
`},
	{id: "scale_welcome", versions: 1, share: 0.15, sends: []scaleSend{
		{"welcome", journey.ChannelEmail, 0, 1}, {"tips", journey.ChannelEmail, 48 * time.Hour, 0.8}}, spec: `
id: scale_welcome
name: Welcome
trigger: {type: api}
reentry: {policy: always}
goal: {event: purchase, window: 14d}
steps:
  - {id: welcome, send: {channel: email, email: {subject: Welcome, text: Hello}}}
  - {id: pause, wait: {duration: 2d}}
  - {id: tips, send: {channel: email, email: {subject: Tips, text: Tips}}}
`},
	{id: "scale_winback", versions: 2, share: 0.15, sends: []scaleSend{
		{"miss_you", journey.ChannelEmail, 0, 1}, {"last_chance", journey.ChannelSMS, 72 * time.Hour, 0.6}}, spec: `
id: scale_winback
name: Win back
trigger: {type: api}
reentry: {policy: always}
steps:
  - {id: miss_you, send: {channel: email, email: {subject: We miss you, text: Hello}}}
  - {id: pause, wait: {duration: 3d}}
  - {id: last_chance, send: {channel: sms, sms: {body: Last chance}}}
`},
	{id: "scale_cart", versions: 1, share: 0.10, sends: []scaleSend{
		{"cart_sms", journey.ChannelSMS, time.Hour, 1}, {"cart_email", journey.ChannelEmail, 4 * time.Hour, 0.7}}, spec: `
id: scale_cart
name: Cart
trigger: {type: api}
reentry: {policy: always}
goal: {event: purchase, window: 2d}
steps:
  - {id: pause, wait: {duration: 1h}}
  - {id: cart_sms, send: {channel: sms, sms: {body: Your cart}}}
  - {id: later, wait: {duration: 3h}}
  - {id: cart_email, send: {channel: email, email: {subject: Your cart, text: Still there}}}
`},
}

// ScaleSegments are the segments contacts are members of.
var ScaleSegments = []string{"engaged", "vip", "dormant"}

// ScaleSeed is what SeedScale wrote: every row the reports read, kept in
// memory so the Expect* methods can count them in plain Go.
type ScaleSeed struct {
	Config ScaleConfig
	// Base and End bound the data's time span (90 days).
	Base, End   time.Time
	Contacts    []ScaleContact
	Runs        []ScaleRun
	Messages    []ScaleMessage
	Defers      []ScaleDefer
	Assignments []ScaleAssignment

	byRun map[int][]int
}

// ScaleContact is one contact and what it did outside journeys.
type ScaleContact struct {
	ID string
	// Consent: granted email/sms at Base-30d (if so); revocations.
	Email, SMS bool
	Revoked    []SeededRevocation
	Purchases  []time.Time
	Spam       *time.Time
	Bounce     *time.Time
	Segments   []ScaleMembership
	// Runs are indexes into ScaleSeed.Runs.
	Runs []int
}

// ScaleMembership is one stay in a segment.
type ScaleMembership struct {
	Segment        string
	Entered        time.Time
	Exited         *time.Time
	SegmentVersion int
}

// ScaleRun is one enrollment.
type ScaleRun struct {
	ID        string
	Contact   int
	JourneyID string
	Version   int
	Start     time.Time
	End       *time.Time
}

// ScaleMessage is one ledger row.
type ScaleMessage struct {
	Run     int
	Step    string
	Channel journey.Channel
	Status  model.MessageStatus
	Reason  string
	At      time.Time
}

// Key is the message's idempotency key.
func (s *ScaleSeed) Key(m ScaleMessage) string {
	return "enrollment/" + s.Runs[m.Run].ID + "/" + m.Step + "/1"
}

// ScaleDefer is a send the gate deferred Times times.
type ScaleDefer struct {
	Message int
	Times   int
}

// ScaleAssignment is an assignments row.
type ScaleAssignment struct {
	JourneyID, Experiment string
	Contact               int
	Variant               string
	Run                   int
	At                    time.Time
}

// SeedScale writes a data set of cfg's size into the migrated, empty
// database behind pool: the rows the reports read through COPY, the
// other events with generate_series, then VACUUM ANALYZE (as autovacuum
// would have left a live database's tables). It returns what it wrote.
func SeedScale(ctx context.Context, s *storage.Store, cfg ScaleConfig) (*ScaleSeed, error) {
	seed := generateScale(cfg)
	if err := seed.write(ctx, s); err != nil {
		return nil, err
	}
	return seed, nil
}

// ScaleSpan is the time the data set covers: 90 days from 2026-06-01 UTC.
func ScaleSpan() (base, end time.Time) {
	base = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	return base, base.Add(90 * 24 * time.Hour)
}

// scaleGenerator names what SeedScale writes: a database seeded by an
// older generator is seeded again (ScaleDatabase). Bump it with every
// change to what is seeded.
const scaleGenerator = 2

func generateScale(cfg ScaleConfig) *ScaleSeed {
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x7077))
	base, end := ScaleSpan()
	span := end.Sub(base)
	seed := &ScaleSeed{Config: cfg, Base: base, End: end}
	at := func(from time.Time, d time.Duration) time.Time {
		return from.Add(time.Duration(rng.Int64N(int64(d)))).Truncate(time.Second)
	}

	// Contacts: consent, opt-outs, segments.
	for i := range cfg.Contacts {
		c := ScaleContact{ID: fmt.Sprintf("c_scale_%07d", i), Email: rng.Float64() < 0.9, SMS: rng.Float64() < 0.5}
		if c.Email && rng.Float64() < 0.05 {
			c.Revoked = append(c.Revoked, SeededRevocation{journey.ChannelEmail, at(base, span)})
		}
		if c.SMS && rng.Float64() < 0.03 {
			c.Revoked = append(c.Revoked, SeededRevocation{journey.ChannelSMS, at(base, span)})
		}
		for k, seg := range ScaleSegments {
			if rng.Float64() >= []float64{0.3, 0.1, 0.2}[k] {
				continue
			}
			m := ScaleMembership{Segment: seg, Entered: at(base.Add(-30*24*time.Hour), span), SegmentVersion: 1}
			if rng.Float64() < 0.3 {
				x := at(m.Entered, 20*24*time.Hour)
				m.Exited = &x
				if rng.Float64() < 0.5 { // back in later
					c.Segments = append(c.Segments, m)
					m = ScaleMembership{Segment: seg, Entered: at(x, 10*24*time.Hour), SegmentVersion: 1}
				}
			}
			c.Segments = append(c.Segments, m)
		}
		seed.Contacts = append(seed.Contacts, c)
	}

	// Runs and their sends, journey by journey, until each has its share
	// of the ledger.
	for _, j := range scaleJourneys {
		budget := int(math.Round(float64(cfg.Messages) * j.share))
		first := len(seed.Runs)
		for budget > 0 {
			ci := rng.IntN(cfg.Contacts)
			r := ScaleRun{ID: fmt.Sprintf("e_scale_%d", len(seed.Runs)), Contact: ci, JourneyID: j.id, Version: 1, Start: at(base, span)}
			if j.versions == 2 && r.Start.After(base.Add(30*24*time.Hour)) {
				r.Version = 2
			}
			if e := r.Start.Add(5 * 24 * time.Hour); e.Before(end) {
				r.End = &e
			}
			seed.Runs = append(seed.Runs, r)
			ri := len(seed.Runs) - 1
			seed.Contacts[ci].Runs = append(seed.Contacts[ci].Runs, ri)
			budget -= seed.sends(rng, j, ri, budget)
		}
		// At most one active run per contact and journey: an earlier
		// active one ended when the next began.
		byContact := map[int][]int{}
		for ri := first; ri < len(seed.Runs); ri++ {
			byContact[seed.Runs[ri].Contact] = append(byContact[seed.Runs[ri].Contact], ri)
		}
		for _, rs := range byContact {
			sort.Slice(rs, func(a, b int) bool { return seed.Runs[rs[a]].Start.Before(seed.Runs[rs[b]].Start) })
			for k := 0; k+1 < len(rs); k++ {
				if p := &seed.Runs[rs[k]]; p.End == nil {
					e := seed.Runs[rs[k+1]].Start
					p.End = &e
				}
			}
		}
	}

	// Assignments of the big journey, recorded at each contact's first run
	// of it; the workspace control group, at the contact's first run.
	for ci := range seed.Contacts {
		c := &seed.Contacts[ci]
		var firstBig, firstAny = -1, -1
		for _, ri := range c.Runs {
			r := seed.Runs[ri]
			if firstAny < 0 || r.Start.Before(seed.Runs[firstAny].Start) {
				firstAny = ri
			}
			if r.JourneyID == ScaleJourney && (firstBig < 0 || r.Start.Before(seed.Runs[firstBig].Start)) {
				firstBig = ri
			}
		}
		if firstAny >= 0 {
			seed.Assignments = append(seed.Assignments, ScaleAssignment{Experiment: journey.GroupControlGroup, Contact: ci,
				Variant: seed.controlGroup(ci), Run: firstAny, At: seed.Runs[firstAny].Start})
		}
		if firstBig >= 0 {
			st := seed.Runs[firstBig].Start
			seed.Assignments = append(seed.Assignments,
				ScaleAssignment{JourneyID: ScaleJourney, Experiment: journey.GroupHoldout, Contact: ci, Variant: seed.holdout(ci), Run: firstBig, At: st},
				ScaleAssignment{JourneyID: ScaleJourney, Experiment: ScaleExperiment, Contact: ci, Variant: seed.variant(ci), Run: firstBig, At: st.Add(time.Hour)})
		}
		// Purchases: 8% of contacts buy, most of them soon after a run began.
		if rng.Float64() < 0.08 {
			for range 1 + rng.IntN(3) {
				t := at(base, span)
				if len(c.Runs) > 0 && rng.Float64() < 0.6 {
					r := seed.Runs[c.Runs[rng.IntN(len(c.Runs))]]
					t = r.Start.Add(time.Duration(rng.ExpFloat64() * float64(3*24*time.Hour))).Truncate(time.Second)
				}
				if t.Before(end) {
					c.Purchases = append(c.Purchases, t)
				}
			}
		}
	}
	return seed
}

// controlGroup, holdout and variant are a contact's groups: fixed shares
// (5%, 10%, half and half), by contact number.
func (s *ScaleSeed) controlGroup(ci int) string {
	if ci%20 == 7 {
		return journey.GroupControlGroup
	}
	return journey.GroupTreatment
}

func (s *ScaleSeed) holdout(ci int) string {
	if ci%10 == 3 {
		return journey.GroupHoldout
	}
	return journey.GroupTreatment
}

func (s *ScaleSeed) variant(ci int) string {
	if (ci/2)%2 == 0 {
		return "a"
	}
	return "b"
}

// sends adds run ri's ledger rows (no more than budget) and returns how many.
func (s *ScaleSeed) sends(rng *rand.Rand, j scaleJourney, ri, budget int) int {
	r := s.Runs[ri]
	c := &s.Contacts[r.Contact]
	n := 0
	for _, st := range j.sends {
		if n == budget || rng.Float64() >= st.reach {
			break
		}
		m := ScaleMessage{Run: ri, Step: st.id, Channel: st.ch, At: r.Start.Add(st.offset).Add(time.Duration(rng.IntN(600)) * time.Second)}
		if !m.At.Before(s.End) {
			break
		}
		if m.At.After(s.End.Add(-time.Hour)) {
			m.Status = model.MessageReserved
		} else {
			m.Status, m.Reason = s.status(rng, r, c, m)
		}
		switch m.Status {
		case model.MessageComplained:
			if c.Spam == nil {
				t := m.At.Add(2 * time.Hour)
				c.Spam = &t
			}
		case model.MessageBounced:
			if c.Bounce == nil {
				t := m.At.Add(time.Hour)
				c.Bounce = &t
			}
		}
		s.Messages = append(s.Messages, m)
		if rng.Float64() < 0.06 {
			s.Defers = append(s.Defers, ScaleDefer{Message: len(s.Messages) - 1, Times: 1 + rng.IntN(3)})
		}
		n++
	}
	return n
}

// status is a ledger row's status and reason, by the gate's and the
// providers' usual mix.
func (s *ScaleSeed) status(rng *rand.Rand, r ScaleRun, c *ScaleContact, m ScaleMessage) (model.MessageStatus, string) {
	if r.JourneyID == ScaleJourney {
		ci := r.Contact
		if s.holdout(ci) == journey.GroupHoldout {
			return model.MessageSkipped, journey.GroupHoldout
		}
		if s.controlGroup(ci) == journey.GroupControlGroup {
			return model.MessageSkipped, journey.GroupControlGroup
		}
	}
	consented := c.Email
	if m.Channel == journey.ChannelSMS {
		consented = c.SMS
	}
	for _, rv := range c.Revoked {
		if rv.Channel == m.Channel && !m.At.Before(rv.At) {
			consented = false
		}
	}
	if !consented {
		return model.MessageSkipped, "no_consent"
	}
	x := rng.Float64()
	if m.Channel == journey.ChannelSMS {
		switch {
		case x < 0.04:
			return model.MessageFailed, "twilio:30003"
		case x < 0.08:
			return model.MessageSkipped, "quiet_hours"
		case x < 0.30:
			return model.MessageSent, ""
		}
		return model.MessageDelivered, ""
	}
	switch {
	case x < 0.03:
		return model.MessageBounced, "bounce"
	case x < 0.05:
		return model.MessageFailed, "sendgrid:400"
	case x < 0.055:
		return model.MessageComplained, "spamreport"
	case x < 0.08:
		return model.MessageSkipped, "frequency_cap"
	case x < 0.2:
		return model.MessageSent, ""
	case x < 0.55:
		return model.MessageDelivered, ""
	case x < 0.85:
		return model.MessageOpened, ""
	}
	return model.MessageClicked, ""
}

func nullTime(t *time.Time) any {
	if t == nil {
		return nil
	}
	return *t
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (s *ScaleSeed) write(ctx context.Context, st *storage.Store) error {
	pool := st.Pool()
	for _, j := range scaleJourneys {
		spec, err := journey.ParseAndValidate([]byte(j.spec))
		if err != nil {
			return fmt.Errorf("journey %s: %w", j.id, err)
		}
		for range j.versions {
			if _, err := st.PublishJourney(ctx, spec); err != nil {
				return err
			}
		}
	}
	copyRows := func(table string, cols []string, n int, row func(i int) ([]any, error)) error {
		i := 0
		_, err := pool.CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromFunc(func() ([]any, error) {
			if i == n {
				return nil, nil
			}
			i++
			return row(i - 1)
		}))
		if err != nil {
			return fmt.Errorf("copying %s: %w", table, err)
		}
		return nil
	}
	created := s.Base.Add(-60 * 24 * time.Hour)
	if err := copyRows("contacts", []string{"id", "email", "created_at", "updated_at"}, len(s.Contacts), func(i int) ([]any, error) {
		c := s.Contacts[i]
		return []any{c.ID, fmt.Sprintf("%s@example.com", c.ID), created, created}, nil
	}); err != nil {
		return err
	}
	type consentRow struct {
		contact, channel, subscription, status string
		at                                     time.Time
	}
	var consents []consentRow
	var suppressions [][]any
	var events [][]any
	var memberships [][]any
	for _, c := range s.Contacts {
		if c.Email {
			consents = append(consents, consentRow{c.ID, "email", "", "granted", s.Base.Add(-30 * 24 * time.Hour)})
		}
		if c.SMS {
			consents = append(consents, consentRow{c.ID, "sms", "", "granted", s.Base.Add(-30 * 24 * time.Hour)})
		}
		for _, r := range c.Revoked {
			consents = append(consents, consentRow{c.ID, string(r.Channel), "", "revoked", r.At})
		}
		if c.Spam != nil {
			suppressions = append(suppressions, []any{"sp_" + c.ID, c.ID, "spam_complaint", "email", "webhook", *c.Spam})
		}
		if c.Bounce != nil {
			suppressions = append(suppressions, []any{"hb_" + c.ID, c.ID, "hard_bounce", "email", "webhook", *c.Bounce})
		}
		for k, p := range c.Purchases {
			events = append(events, []any{fmt.Sprintf("evp_%s_%d", c.ID, k), c.ID, ScaleGoal, p, p})
		}
		for _, m := range c.Segments {
			memberships = append(memberships, []any{m.Segment, c.ID, m.SegmentVersion, m.Entered, nullTime(m.Exited)})
		}
	}
	if err := copyRows("consent_events", []string{"contact_id", "channel", "subscription", "status", "source", "occurred_at", "recorded_at"},
		len(consents), func(i int) ([]any, error) {
			c := consents[i]
			return []any{c.contact, c.channel, c.subscription, c.status, "seed", c.at, c.at}, nil
		}); err != nil {
		return err
	}
	if _, err := pool.Exec(ctx, `
		INSERT INTO consents (contact_id, channel, subscription, status, source, occurred_at, consent_event_id)
		SELECT DISTINCT ON (contact_id, channel, subscription) contact_id, channel, subscription, status, source, occurred_at, id
		FROM consent_events ORDER BY contact_id, channel, subscription, occurred_at DESC, id DESC`); err != nil {
		return fmt.Errorf("consents: %w", err)
	}
	if err := copyRows("suppressions", []string{"id", "contact_id", "reason", "channel", "source", "created_at"},
		len(suppressions), func(i int) ([]any, error) { return suppressions[i], nil }); err != nil {
		return err
	}
	if err := copyRows("events", []string{"id", "contact_id", "name", "occurred_at", "received_at"},
		len(events), func(i int) ([]any, error) { return events[i], nil }); err != nil {
		return err
	}
	// The other events (page views, cart updates...): no report counts
	// them, but they share the events table and its indexes with the
	// purchases, as in a live database.
	if s.Config.NoiseEvents > 0 {
		if _, err := pool.Exec(ctx, `
			INSERT INTO events (id, contact_id, name, properties, occurred_at, received_at)
			SELECT 'evn_' || i, 'c_scale_' || lpad(((i::bigint * 7919) % $2)::text, 7, '0'),
			       (ARRAY['page.viewed', 'product.viewed', 'cart.updated', 'search', 'email.opened'])[1 + i % 5],
			       '{"path": "/pricing"}', $3::timestamptz + make_interval(secs => (i::bigint * 2654435761) % 7776000),
			       $3::timestamptz + make_interval(secs => (i::bigint * 2654435761) % 7776000)
			FROM generate_series(0, $1 - 1) AS i`, s.Config.NoiseEvents, len(s.Contacts), s.Base); err != nil {
			return fmt.Errorf("other events: %w", err)
		}
	}
	if err := copyRows("enrollments", []string{"id", "contact_id", "journey_id", "version", "workflow_id", "status", "started_at", "ended_at"},
		len(s.Runs), func(i int) ([]any, error) {
			r := s.Runs[i]
			status := "active"
			if r.End != nil {
				status = "completed"
			}
			return []any{r.ID, s.Contacts[r.Contact].ID, r.JourneyID, r.Version, "journey/" + r.JourneyID + "/" + r.ID, status, r.Start, nullTime(r.End)}, nil
		}); err != nil {
		return err
	}
	// At full size the ledger is loaded without report_reach's trigger
	// (a million recomputes) and report_reach filled the way migration
	// 00021 fills it; small sizes go through the trigger, row by row.
	bulk := len(s.Messages) > 20_000
	if bulk {
		if _, err := pool.Exec(ctx, `ALTER TABLE messages DISABLE TRIGGER report_reach`); err != nil {
			return err
		}
	}
	if err := copyRows("messages", []string{"id", "idempotency_key", "contact_id", "journey_id", "journey_version", "step_id", "channel",
		"class", "provider", "provider_message_id", "status", "status_reason", "attempts", "created_at", "updated_at", "sent_at"},
		len(s.Messages), func(i int) ([]any, error) {
			m := s.Messages[i]
			r := s.Runs[m.Run]
			provider := "sendgrid"
			if m.Channel == journey.ChannelSMS {
				provider = "twilio"
			}
			var pid, sentAt any
			if m.Status.Outcome() == model.OutcomeSent {
				pid, sentAt = fmt.Sprintf("p_%d", i), m.At
			}
			return []any{fmt.Sprintf("m_scale_%d", i), s.Key(m), s.Contacts[r.Contact].ID, r.JourneyID, r.Version, m.Step, string(m.Channel),
				"marketing", provider, pid, string(m.Status), nullString(m.Reason), 1, m.At, m.At, sentAt}, nil
		}); err != nil {
		return err
	}
	if bulk {
		if _, err := pool.Exec(ctx, `
			INSERT INTO report_reach (journey_id, contact_id, step_id, last_at, last_sent_at)
			SELECT journey_id, contact_id, step_id, max(created_at),
			       max(created_at) FILTER (WHERE status IN ('sent', 'delivered', 'opened', 'clicked', 'bounced', 'complained'))
			FROM messages GROUP BY 1, 2, 3`); err != nil {
			return fmt.Errorf("report_reach: %w", err)
		}
		if _, err := pool.Exec(ctx, `ALTER TABLE messages ENABLE TRIGGER report_reach`); err != nil {
			return err
		}
	}
	var decisions [][]any
	for _, d := range s.Defers {
		m := s.Messages[d.Message]
		r := s.Runs[m.Run]
		for k := range d.Times {
			t := m.At.Add(-time.Duration(d.Times-k) * time.Hour)
			decisions = append(decisions, []any{s.Key(m), s.Contacts[r.Contact].ID, r.JourneyID, r.Version, m.Step, string(m.Channel),
				"marketing", "defer", string(m.Channel), t.Add(time.Hour), t})
		}
	}
	if err := copyRows("decisions", []string{"idempotency_key", "contact_id", "journey_id", "journey_version", "step_id", "channel", "class",
		"outcome", "decided_channel", "defer_until", "decided_at"}, len(decisions), func(i int) ([]any, error) { return decisions[i], nil }); err != nil {
		return err
	}
	if err := copyRows("assignments", []string{"journey_id", "experiment", "contact_id", "variant", "enrollment_id", "journey_version", "assigned_at"},
		len(s.Assignments), func(i int) ([]any, error) {
			a := s.Assignments[i]
			r := s.Runs[a.Run]
			return []any{a.JourneyID, a.Experiment, s.Contacts[a.Contact].ID, a.Variant, r.ID, r.Version, a.At}, nil
		}); err != nil {
		return err
	}
	// Attribution's other touchpoints: an open for every email the ledger
	// says was opened or clicked (3 h after it was sent) and a click for
	// every clicked one (4 h after), an SMS reply to one SMS in twenty
	// (1 h after), and a Meta audience that a tenth of the contacts
	// entered at a step of the big journey, half of them leaving it ten
	// days later.
	if _, err := pool.Exec(ctx, `
		INSERT INTO provider_events (provider, event_id, kind, message_id, contact_id, occurred_at, received_at)
		SELECT 'sendgrid', 'sg_open_' || id, 'email.opened', id, contact_id, sent_at + interval '3 hours', sent_at + interval '3 hours'
		FROM messages WHERE channel = 'email' AND status IN ('opened', 'clicked') AND sent_at IS NOT NULL
		UNION ALL
		SELECT 'sendgrid', 'sg_click_' || id, 'email.clicked', id, contact_id, sent_at + interval '4 hours', sent_at + interval '4 hours'
		FROM messages WHERE channel = 'email' AND status = 'clicked' AND sent_at IS NOT NULL
		UNION ALL
		SELECT 'twilio', 'tw_reply_' || id, 'sms.replied', NULL, contact_id, sent_at + interval '1 hour', sent_at + interval '1 hour'
		FROM messages WHERE channel = 'sms' AND sent_at IS NOT NULL AND abs(hashtext(id)) % 20 = 0`); err != nil {
		return fmt.Errorf("provider events: %w", err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO audiences (id, name, destination, external_id) VALUES ('aud_scale', 'Scale retargeting', 'meta', 'act_scale')`); err != nil {
		return fmt.Errorf("audience: %w", err)
	}
	if _, err := pool.Exec(ctx, `
		INSERT INTO audience_ledger (audience_id, contact_id, action, batch_id, result, at, desired_by)
		SELECT 'aud_scale', id, 'add', 'b_add_' || n, 'applied', $1::timestamptz + make_interval(secs => (n::bigint * 2654435761) % 6912000),
		       'journey:' || $2 || '/retarget'
		FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM contacts) c WHERE n % 10 = 0
		UNION ALL
		SELECT 'aud_scale', id, 'remove', 'b_remove_' || n, 'applied',
		       $1::timestamptz + make_interval(secs => (n::bigint * 2654435761) % 6912000) + interval '10 days', ''
		FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM contacts) c WHERE n % 20 = 0`, s.Base, ScaleJourney); err != nil {
		return fmt.Errorf("audience ledger: %w", err)
	}
	// Segments last: their rows turn on the triggers that queue contacts
	// for evaluation, which nothing here needs.
	for _, seg := range ScaleSegments {
		if _, err := pool.Exec(ctx, `INSERT INTO segments (id) VALUES ($1)`, seg); err != nil {
			return err
		}
		if _, err := pool.Exec(ctx, `INSERT INTO segment_versions (segment_id, version, definition, time_dependent)
			VALUES ($1, 1, '{}', false)`, seg); err != nil {
			return err
		}
	}
	if err := copyRows("segment_memberships", []string{"segment_id", "contact_id", "segment_version", "entered_at", "exited_at"},
		len(memberships), func(i int) ([]any, error) { return memberships[i], nil }); err != nil {
		return err
	}
	if _, err := pool.Exec(ctx, `VACUUM ANALYZE`); err != nil {
		return fmt.Errorf("vacuum analyze: %w", err)
	}
	return nil
}

// Summary says what SeedScale wrote, in numbers.
func (s *ScaleSeed) Summary() string {
	var events, big int
	for _, c := range s.Contacts {
		events += len(c.Purchases)
	}
	for _, m := range s.Messages {
		if s.Runs[m.Run].JourneyID == ScaleJourney {
			big++
		}
	}
	return fmt.Sprintf("%d contacts, %d enrollments, %d ledger rows (%d of %s), %d purchases and %d other events, %d deferrals, %d assignments",
		len(s.Contacts), len(s.Runs), len(s.Messages), big, ScaleJourney, events, s.Config.NoiseEvents, len(s.Defers), len(s.Assignments))
}

// firstPurchase is c's first purchase in [from, from+window].
func firstPurchase(c ScaleContact, from time.Time, window time.Duration) (time.Time, bool) {
	var first time.Time
	for _, p := range c.Purchases {
		if !p.Before(from) && !p.After(from.Add(window)) && (first.IsZero() || p.Before(first)) {
			first = p
		}
	}
	return first, !first.IsZero()
}

// ScaleFunnel is one version's funnel, counted in Go from what was seeded.
type ScaleFunnel struct {
	Entered, Contacts, Converted int64
	ConvertSeconds               []float64
	Sends                        map[string]map[model.MessageStatus]map[string]int64
	Reached, Deferred            map[string]int64
	SentTo, OptedOut             map[journey.Channel]int64
	Assigned                     map[string]map[string]int64
	BySegment                    map[string][2]int64
}

// ExpectFunnel counts version v of journey id as Store.Funnel should,
// with now bounding active runs.
func (s *ScaleSeed) ExpectFunnel(id string, v int, window time.Duration, now time.Time) ScaleFunnel {
	f := ScaleFunnel{Sends: map[string]map[model.MessageStatus]map[string]int64{}, Reached: map[string]int64{}, Deferred: map[string]int64{},
		SentTo: map[journey.Channel]int64{}, OptedOut: map[journey.Channel]int64{}, Assigned: map[string]map[string]int64{},
		BySegment: map[string][2]int64{}}
	contacts := map[int]bool{}
	for _, r := range s.Runs {
		if r.JourneyID != id || r.Version != v {
			continue
		}
		f.Entered++
		contacts[r.Contact] = true
		c := s.Contacts[r.Contact]
		_, conv := firstPurchase(c, r.Start, window)
		if p, ok := firstPurchase(c, r.Start, window); ok {
			f.Converted++
			f.ConvertSeconds = append(f.ConvertSeconds, p.Sub(r.Start).Seconds())
		}
		for _, m := range c.Segments {
			if !m.Entered.After(r.Start) && (m.Exited == nil || m.Exited.After(r.Start)) {
				bs := f.BySegment[m.Segment]
				bs[0]++
				if conv {
					bs[1]++
				}
				f.BySegment[m.Segment] = bs
			}
		}
		end := now
		if r.End != nil {
			end = *r.End
		}
		out := map[journey.Channel]bool{}
		for _, rv := range c.Revoked {
			if !rv.At.Before(r.Start) && !rv.At.After(end) {
				out[rv.Channel] = true
			}
		}
		for ch := range out {
			f.OptedOut[ch]++
		}
	}
	f.Contacts = int64(len(contacts))
	reached := map[string]map[int]bool{}
	sentTo := map[journey.Channel]map[int]bool{}
	for _, m := range s.Messages {
		r := s.Runs[m.Run]
		if r.JourneyID != id || r.Version != v {
			continue
		}
		if f.Sends[m.Step] == nil {
			f.Sends[m.Step] = map[model.MessageStatus]map[string]int64{}
		}
		if f.Sends[m.Step][m.Status] == nil {
			f.Sends[m.Step][m.Status] = map[string]int64{}
		}
		f.Sends[m.Step][m.Status][m.Reason]++
		if reached[m.Step] == nil {
			reached[m.Step] = map[int]bool{}
		}
		reached[m.Step][r.Contact] = true
		if m.Status.Outcome() == model.OutcomeSent {
			if sentTo[m.Channel] == nil {
				sentTo[m.Channel] = map[int]bool{}
			}
			sentTo[m.Channel][r.Contact] = true
		}
	}
	for step, cs := range reached {
		f.Reached[step] = int64(len(cs))
	}
	for ch, cs := range sentTo {
		f.SentTo[ch] = int64(len(cs))
	}
	for _, d := range s.Defers {
		m := s.Messages[d.Message]
		if r := s.Runs[m.Run]; r.JourneyID == id && r.Version == v {
			f.Deferred[m.Step]++ // one key per ledger row
		}
	}
	for _, a := range s.Assignments {
		if a.JourneyID == id && s.Runs[a.Run].Version == v {
			if f.Assigned[a.Experiment] == nil {
				f.Assigned[a.Experiment] = map[string]int64{}
			}
			f.Assigned[a.Experiment][a.Variant]++
		}
	}
	sort.Float64s(f.ConvertSeconds)
	return f
}

// ExpectGroups counts experiment exp of the big journey (ScaleExperiment
// or journey.GroupHoldout) as Store.Experiment should: groups (without
// the control group, which is the int returned).
func (s *ScaleSeed) ExpectGroups(exp string, window time.Duration) (map[string]*ExpectedGroup, int64) {
	groups := map[string]*ExpectedGroup{}
	var excluded int64
	for _, a := range s.Assignments {
		if a.JourneyID != ScaleJourney || a.Experiment != exp {
			continue
		}
		if s.controlGroup(a.Contact) == journey.GroupControlGroup {
			excluded++
			continue
		}
		name := a.Variant
		if exp != journey.GroupHoldout && s.holdout(a.Contact) == journey.GroupHoldout {
			name = journey.GroupHoldout
		}
		g := groups[name]
		if g == nil {
			g = &ExpectedGroup{DailyEntered: map[time.Time]int64{}, DailyConverted: map[time.Time]int64{}, Steps: map[string]experiment.StepCounts{}}
			groups[name] = g
		}
		c := s.Contacts[a.Contact]
		g.Entered++
		g.DailyEntered[a.At.Truncate(24*time.Hour)]++
		if p, ok := firstPurchase(c, a.At, window); ok {
			g.Converted++
			g.ConvertSeconds = append(g.ConvertSeconds, p.Sub(a.At).Seconds())
			g.DailyConverted[p.Truncate(24*time.Hour)]++
		}
		in := func(t time.Time) bool { return !t.Before(a.At) && !t.After(a.At.Add(window)) }
		for _, rv := range c.Revoked {
			if in(rv.At) {
				g.Unsubscribed++
				break
			}
		}
		if c.Spam != nil && in(*c.Spam) {
			g.SpamComplaints++
		}
		reached, sent := map[string]bool{}, map[string]bool{}
		bounced := false
		for _, ri := range c.Runs {
			if s.Runs[ri].JourneyID != ScaleJourney {
				continue
			}
			for _, mi := range s.runMessages(ri) {
				m := s.Messages[mi]
				if m.Status == model.MessageBounced && in(m.At) {
					bounced = true
				}
				if m.At.Before(a.At) {
					continue
				}
				reached[m.Step] = true
				if m.Status.Outcome() == model.OutcomeSent {
					sent[m.Step] = true
				}
			}
		}
		if bounced {
			g.Bounced++
		}
		for step := range reached {
			sc := g.Steps[step]
			sc.Reached++
			if sent[step] {
				sc.Sent++
			}
			g.Steps[step] = sc
		}
	}
	for _, g := range groups {
		sort.Float64s(g.ConvertSeconds)
	}
	return groups, excluded
}

// runMessages are the indexes of run ri's ledger rows.
func (s *ScaleSeed) runMessages(ri int) []int {
	if s.byRun == nil {
		s.byRun = map[int][]int{}
		for i, m := range s.Messages {
			s.byRun[m.Run] = append(s.byRun[m.Run], i)
		}
	}
	return s.byRun[ri]
}

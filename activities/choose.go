package activities

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/tutti-dev/tutti/internal/engagement"
	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/policy"
	"github.com/tutti-dev/tutti/internal/storage"
)

// ChooseSendInput is a send step that chooses its channel (channel: best),
// its time (send_time: best), or both, before it sends. Ids and the step
// only, like SendInput.
type ChooseSendInput struct {
	// IdempotencyKey is the send's (SendInput.IdempotencyKey): the choice
	// is stored under it, and a retry finds it.
	IdempotencyKey string               `json:"idempotency_key"`
	ContactID      string               `json:"contact_id"`
	JourneyID      string               `json:"journey_id"`
	StepID         string               `json:"step_id"`
	Class          journey.MessageClass `json:"class"`
	Send           journey.Send         `json:"send"`
	Policy         *journey.Policy      `json:"policy,omitempty"`
	Abandonment    *AbandonmentRef      `json:"abandonment,omitempty"`
	// Now is the workflow's clock when the step began: the horizon starts there.
	Now time.Time `json:"now"`
}

// ChooseSendResult is the choice: a channel and an instant, nothing else
// (the evidence stays in PostgreSQL, send_choices).
type ChooseSendResult struct {
	Channel journey.Channel `json:"channel"`
	// SendAt is when to send; zero or past: at once.
	SendAt time.Time `json:"send_at,omitzero"`
}

// Lookbacks of the choices: a year of the contact's own engagement (habits
// last; at most maxOwnEngagements of them), 90 days of the workspace's
// for the prior, 90 days of sends and engagement per channel ("recent").
const (
	ownLookback       = 365 * 24 * time.Hour
	maxOwnEngagements = 5000
	workspaceLookback = 90 * 24 * time.Hour
	channelLookback   = 90 * 24 * time.Hour
	// workspaceTTL is how long a worker reuses the workspace's pattern:
	// it moves slowly, and reading it scans every engagement event.
	workspaceTTL = time.Hour
)

// ChooseSend chooses the step's channel and send time for the contact
// from their engagement, stores the choice and its evidence (send_choices,
// for tutti why), and returns the channel and instant. The send itself
// then goes through the one send path (Send) on that channel at that
// time: this only reads the gate's view of the contact, it decides and
// reserves nothing.
func (a *Activities) ChooseSend(ctx context.Context, in ChooseSendInput) (ChooseSendResult, error) {
	if c, err := a.Store.SendChoice(ctx, in.IdempotencyKey); err == nil {
		return resultOf(c), nil
	} else if !errors.Is(err, storage.ErrNotFound) {
		return ChooseSendResult{}, err
	}
	c, err := ChooseDryRun(ctx, a, in)
	if err != nil || c.IdempotencyKey == "" {
		return resultOf(c), err
	}
	stored, err := a.Store.RecordSendChoice(ctx, c)
	if errors.Is(err, storage.ErrNotFound) {
		return ChooseSendResult{Channel: c.Channel}, nil // the contact is gone: Send says so
	}
	return resultOf(stored), err
}

func resultOf(c storage.SendChoice) ChooseSendResult {
	r := ChooseSendResult{Channel: c.Channel}
	if c.SendAt != nil {
		r.SendAt = *c.SendAt
	}
	return r
}

// ChooseDryRun is ChooseSend without storing anything, for a preview
// (internal/preview). A contact that does not exist gets the step's first
// channel at once, and no key (Send skips it as contact_not_found).
func ChooseDryRun(ctx context.Context, a *Activities, in ChooseSendInput) (storage.SendChoice, error) {
	s := a.settings()
	now := in.Now
	if now.IsZero() {
		now = a.now()
	}
	cands := in.Send.Candidates()
	choice := storage.SendChoice{IdempotencyKey: in.IdempotencyKey, ContactID: in.ContactID, JourneyID: in.JourneyID, StepID: in.StepID}
	if len(cands) > 0 {
		choice.Channel = cands[0]
	}
	js := policy.ForJourney(in.Policy, false)
	st, err := a.Store.PeekGateState(ctx, storage.GateInput{
		Message: storage.Message{ContactID: in.ContactID, IdempotencyKey: in.IdempotencyKey},
		Now:     now, Lookback: policy.Lookback(s, js)})
	if errors.Is(err, storage.ErrNotFound) {
		return storage.SendChoice{Channel: choice.Channel}, nil
	}
	if err != nil {
		return storage.SendChoice{}, err
	}
	if in.Send.Channel == journey.ChannelBest {
		ch, ev, err := a.chooseChannel(ctx, s, in, st, js, cands, now)
		if err != nil {
			return storage.SendChoice{}, err
		}
		choice.Channel, choice.Evidence = ch, ev
	}
	if in.Send.SendTime == journey.SendTimeBest {
		at, te, err := a.chooseTime(ctx, s, in, st, choice.Channel, now)
		if err != nil {
			return storage.SendChoice{}, err
		}
		choice.SendAt, choice.Evidence.Time = &at, &te
	}
	return choice, nil
}

// chooseChannel asks the gate's rules which candidates may reach the
// contact (consent, suppressions, address: a channel the gate would only
// defer still counts), and picks the one engaging best (engagement.BestChannel).
// With none allowed it keeps the first: the gate then skips it, and says why.
func (a *Activities) chooseChannel(ctx context.Context, s policy.Settings, in ChooseSendInput, st storage.GateState,
	js policy.JourneySettings, cands []journey.Channel, now time.Time) (journey.Channel, engagement.Evidence, error) {
	ev := engagement.Evidence{ChannelPriorWeight: engagement.ChannelPriorWeight}
	var allowed []journey.Channel
	for _, ch := range cands {
		req := policy.Request{Contact: st.Contact, Channel: ch, Class: in.Class, Journey: js, JourneyID: in.JourneyID, Now: now}
		if in.Abandonment != nil {
			req.Abandonment = &policy.AbandonmentContext{EventID: in.Abandonment.EventID, At: in.Abandonment.OccurredAt}
		}
		if d := policy.Decide(s, req); d.Outcome == policy.OutcomeSkip {
			ev.Blocked = append(ev.Blocked, engagement.BlockedChannel{Channel: ch, Reasons: d.ReasonCodes()})
			continue
		}
		allowed = append(allowed, ch)
	}
	if len(allowed) == 0 {
		return cands[0], ev, nil
	}
	since := now.Add(-channelLookback)
	ownSent, err := a.Store.SentCounts(ctx, in.ContactID, since)
	if err != nil {
		return "", ev, err
	}
	ws, err := a.workspace(ctx, now)
	if err != nil {
		return "", ev, err
	}
	for _, ch := range allowed {
		ce := engagement.ChannelEvidence{Channel: ch, Sent: ownSent[ch], Cost: s.ChannelCosts[ch]}
		if ce.Engaged, err = a.Store.EngagedMessages(ctx, in.ContactID, engagement.ChannelEvents[ch], since); err != nil {
			return "", ev, err
		}
		if sent := ws.sent[ch]; sent > 0 {
			ce.PriorRate = min(float64(ws.engaged[ch])/float64(sent), 1)
		}
		ev.Channels = append(ev.Channels, ce)
	}
	best := engagement.BestChannel(ev.Channels, engagement.ChannelPriorWeight)
	return ev.Channels[best].Channel, ev, nil
}

// chooseTime picks the best instant within the step's horizon for a
// message on ch (engagement.BestTime), kept to the gate's quiet hours.
func (a *Activities) chooseTime(ctx context.Context, s policy.Settings, in ChooseSendInput, st storage.GateState,
	ch journey.Channel, now time.Time) (time.Time, engagement.TimeEvidence, error) {
	within := in.Send.Within
	if within == 0 {
		within = journey.DefaultSendTimeWithin
	}
	allowed, loc, rule := policy.QuietHoursFor(s, ch, st.Contact, now)
	times, err := a.Store.EngagementTimes(ctx, in.ContactID, engagement.EventNames(), now.Add(-ownLookback), maxOwnEngagements)
	if err != nil {
		return time.Time{}, engagement.TimeEvidence{}, err
	}
	var own engagement.Histogram
	for _, t := range times {
		own.Add(t, loc)
	}
	ws, err := a.workspace(ctx, now)
	if err != nil {
		return time.Time{}, engagement.TimeEvidence{}, err
	}
	m := engagement.DefaultHourModel
	scores := m.Scores(own, ws.hours)
	c := engagement.BestTime(scores, now, within.Std(), loc, allowed)
	hour := 0
	for day := range 7 {
		hour += int(own[day*24+int(c.Cell)%24])
	}
	return c.At.UTC(), engagement.TimeEvidence{
		Zone: loc.String(), Within: within.String(),
		Engagements: len(times), WorkspaceEngagements: int(ws.hours.Total()), Model: m,
		Cell: c.Cell, CellName: c.Cell.String(), CellEngagements: int(own[c.Cell]), HourEngagements: hour,
		Score: c.Score, NowScore: scores[engagement.CellOf(now, loc)], QuietHours: rule, NoneWithin: c.NoneWithin,
	}, nil
}

// workspacePattern is the workspace's engagement, cached per worker.
type workspacePattern struct {
	at      time.Time
	hours   engagement.Histogram
	engaged map[journey.Channel]int
	sent    map[journey.Channel]int
}

// workspaceCache holds the workspace's pattern between choices.
type workspaceCache struct {
	mu sync.Mutex
	p  *workspacePattern
}

// workspace returns the workspace's engagement pattern, read at most
// once per workspaceTTL. Each contact's events go in the hour-of-week
// cell of their own zone (their time zone, else the workspace default).
func (a *Activities) workspace(ctx context.Context, now time.Time) (*workspacePattern, error) {
	a.workspaceOnce.Do(func() { a.workspaceCache = &workspaceCache{} })
	wc := a.workspaceCache
	wc.mu.Lock()
	defer wc.mu.Unlock()
	if p := wc.p; p != nil && now.Sub(p.at) < workspaceTTL && !now.Before(p.at) {
		return p, nil
	}
	names := engagement.EventNames()
	hours, err := a.Store.WorkspaceEngagementHours(ctx, names, now.Add(-workspaceLookback))
	if err != nil {
		return nil, err
	}
	s := a.settings()
	p := &workspacePattern{at: now}
	def, _ := policy.ResolveLocation(policy.ContactState{}, s)
	locs := map[string]*time.Location{}
	for _, zh := range hours {
		loc, ok := locs[zh.TimeZone]
		if !ok {
			loc = def
			if l, err := time.LoadLocation(zh.TimeZone); err == nil && zh.TimeZone != "" {
				loc = l
			}
			locs[zh.TimeZone] = loc
		}
		p.hours[engagement.CellOf(zh.Hour, loc)] += float64(zh.Count)
	}
	p.engaged = map[journey.Channel]int{}
	for ch, names := range engagement.ChannelEvents {
		if p.engaged[ch], err = a.Store.EngagedMessages(ctx, "", names, now.Add(-channelLookback)); err != nil {
			return nil, err
		}
	}
	if p.sent, err = a.Store.SentCounts(ctx, "", now.Add(-channelLookback)); err != nil {
		return nil, err
	}
	wc.p = p
	return p, nil
}

// settings are the send-gate settings the choices keep to: the send
// path's own (Delivery.Policy), or Policy where there is no send path (a
// preview), else the defaults.
func (a *Activities) settings() policy.Settings {
	switch {
	case a.Policy != nil:
		return *a.Policy
	case a.Delivery != nil:
		return a.Delivery.Policy
	}
	return policy.DefaultSettings()
}

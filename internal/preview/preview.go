// Package preview runs a journey spec for one real contact in simulated
// time, without sending anything: the marketer's "what would this do to
// Jane?". It runs the real interpreter workflow (workflows.Journey) in
// Temporal's test environment, whose clock jumps over timers, with the
// real branch conditions over the contact's stored data, and with the send
// step replaced by a dry run: each message is rendered as Send would render
// it and put through the send gate's pure decision (policy.Decide) over
// what the gate would read for the contact at that simulated moment
// (storage.PeekGateState), plus the messages the preview itself "sent".
// Nothing is written: no ledger row, no decision, no enrollment.
//
// What a preview cannot know is said in its result rather than guessed:
// events posted during the preview reach the run (goal, exit events,
// wait_for, journey.events) but are not stored, so conditions over stored
// behaviour do not see them; and the contact's data is read as it is now
// for every simulated moment.
package preview

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/tutti-dev/tutti/activities"
	"github.com/tutti-dev/tutti/internal/audience"
	"github.com/tutti-dev/tutti/internal/delivery"
	"github.com/tutti-dev/tutti/internal/experiment"
	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/policy"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/workflows"
)

// Limits of one preview.
const (
	// DefaultHorizon is how much simulated time a preview covers when the
	// request names none: a run still going then is reported as running.
	DefaultHorizon = 90 * 24 * time.Hour
	// MaxHorizon bounds a requested horizon.
	MaxHorizon = 3 * 365 * 24 * time.Hour
	// MaxEvents bounds the events a preview may post.
	MaxEvents = 100
	// realTimeLimit bounds the wall-clock time of one preview; simulated
	// time is free, so only a spec that loops without end reaches it.
	realTimeLimit = 20 * time.Second
	// maxRuns bounds continue-as-new hand-overs followed.
	maxRuns = 20
)

// Event is an event posted to the run during the preview, After its start.
type Event struct {
	After      journey.Duration `json:"after"`
	Name       string           `json:"name"`
	Properties map[string]any   `json:"properties,omitempty"`
}

// Input is one preview.
type Input struct {
	Spec      journey.Spec
	Version   int // the published version previewed, 0 for a draft
	ContactID string
	Events    []Event
	// Start is the simulated moment the contact enters; zero means now.
	Start time.Time
	// Horizon is how long the preview follows the run; zero means DefaultHorizon.
	Horizon time.Duration
}

// Message is one send step as the preview played it.
type Message struct {
	At     time.Time `json:"at"`
	StepID string    `json:"step_id"`
	Status string    `json:"status"` // would_send, deferred, skipped
	Reason string    `json:"reason,omitempty"`
	// Channel is the channel it would go out on (the fallback's, if the gate chose it).
	Channel  journey.Channel  `json:"channel"`
	Decision *policy.Decision `json:"decision,omitempty"`
	Email    *Email           `json:"email,omitempty"`
	SMS      *SMS             `json:"sms,omitempty"`
	// Webhook is the destination a webhook step would post to.
	Webhook string `json:"webhook,omitempty"`
}

// Email is a rendered email.
type Email struct {
	To           string         `json:"to"`
	Subject      string         `json:"subject,omitempty"`
	Text         string         `json:"text,omitempty"`
	HTML         string         `json:"html,omitempty"`
	TemplateID   string         `json:"template_id,omitempty"`
	TemplateData map[string]any `json:"template_data,omitempty"`
}

// SMS is a rendered SMS.
type SMS struct {
	To   string `json:"to"`
	Body string `json:"body"`
}

// PostedEvent is an event the preview posted, and when.
type PostedEvent struct {
	At   time.Time `json:"at"`
	Name string    `json:"name"`
}

// Result is what the journey would do.
type Result struct {
	// Status is the run's status at the end of the preview: completed,
	// converted, exited, or active (still going at the horizon).
	Status     model.RunStatus `json:"status"`
	ExitReason string          `json:"exit_reason,omitempty"`
	StartedAt  time.Time       `json:"started_at"`
	EndedAt    time.Time       `json:"ended_at"`
	// Steps is the path taken, each step with its outcome.
	Steps    []workflows.StepRecord `json:"steps"`
	Messages []Message              `json:"messages"`
	Events   []PostedEvent          `json:"events"`
	// Notes say what the preview could not know.
	Notes []string `json:"notes"`
}

// Deps are what a preview reads: the store and the send gate's settings.
type Deps struct {
	Store  *storage.Store
	Policy policy.Settings
}

// ErrContactNotFound: the contact does not exist.
var ErrContactNotFound = errors.New("contact not found")

// Run plays in.Spec for in.ContactID. The spec must be valid (journey.Validate).
func Run(ctx context.Context, deps Deps, in Input) (Result, error) {
	if in.Start.IsZero() {
		in.Start = time.Now().UTC()
	}
	if in.Horizon <= 0 {
		in.Horizon = DefaultHorizon
	}
	c, err := deps.Store.Contact(ctx, in.ContactID)
	if errors.Is(err, storage.ErrNotFound) {
		return Result{}, ErrContactNotFound
	}
	if err != nil {
		return Result{}, err
	}
	p := &player{deps: deps, contact: c, ctx: ctx}
	res := Result{StartedAt: in.Start, Messages: []Message{}, Events: []PostedEvent{}, Notes: notes(in)}
	input := workflows.JourneyInput{EnrollmentID: "preview", ContactID: c.ID, Version: in.Version, Spec: in.Spec,
		ContinueAsNewAfter: 1 << 30}
	start, end := in.Start, in.Start.Add(in.Horizon)
	posted := 0
	for run := 0; ; run++ {
		if run == maxRuns {
			return Result{}, fmt.Errorf("preview: the run continued as new %d times", maxRuns)
		}
		out, err := p.play(input, start, end, in.Events, in.Start, &posted)
		if err != nil {
			return Result{}, err
		}
		res.Events = append(res.Events, out.events...)
		res.EndedAt, res.Steps = out.endedAt, out.state.StepsTaken
		if out.next == nil {
			res.Status, res.ExitReason = out.status, out.reason
			break
		}
		input, start = *out.next, out.endedAt
	}
	p.mu.Lock()
	res.Messages = append(res.Messages, p.messages...)
	p.mu.Unlock()
	if res.Steps == nil {
		res.Steps = []workflows.StepRecord{}
	}
	return res, nil
}

func notes(in Input) []string {
	n := []string{
		"Nothing was sent or recorded: each message was rendered and put through the send gate's decision over the contact's data as it is now.",
		"Split variants and holdouts are the contact's recorded ones, or, where none is recorded, the ones the hash would give; the workspace control group is not applied.",
	}
	if len(in.Events) > 0 {
		n = append(n, "The events posted reach the run (goal, exit events, wait_for, journey.events) but are not stored: conditions over stored events do not see them.")
	}
	return n
}

// player runs one preview's workflow environments and records what the
// dry-run send saw.
type player struct {
	deps    Deps
	contact storage.Contact
	ctx     context.Context

	mu       sync.Mutex
	messages []Message
	sent     []policy.SentMessage // the preview's own "sent" messages, for caps
}

type played struct {
	status  model.RunStatus
	reason  string
	state   workflows.JourneyState
	endedAt time.Time
	events  []PostedEvent
	next    *workflows.JourneyInput // set when the run continued as new
}

// play runs one workflow execution from start until it ends or end comes.
// posted counts the events already posted by earlier executions.
func (p *player) play(input workflows.JourneyInput, start, end time.Time, events []Event, entered time.Time, posted *int) (played, error) {
	var suite testsuite.WorkflowTestSuite
	// The test environment logs every timer and activity at debug level.
	suite.SetLogger(log.NewStructuredLogger(slog.New(slog.DiscardHandler)))
	env := suite.NewTestWorkflowEnvironment()
	env.SetTestTimeout(realTimeLimit)
	env.SetStartTime(start)
	env.RegisterWorkflow(workflows.Journey)
	for name, fn := range p.activities(env.Now) {
		env.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: name})
	}
	var out played
	var mu sync.Mutex
	for i := *posted; i < len(events); i++ {
		at := entered.Add(time.Duration(events[i].After))
		if at.Before(start) || !at.Before(end) {
			continue
		}
		ev, n := events[i], i
		env.RegisterDelayedCallback(func() {
			mu.Lock()
			out.events = append(out.events, PostedEvent{At: env.Now().UTC(), Name: ev.Name})
			*posted = n + 1
			mu.Unlock()
			env.SignalWorkflow(workflows.SignalEvent, workflows.EventSignal{
				EventID: fmt.Sprintf("preview-%d", n+1), Name: ev.Name, OccurredAt: env.Now().UTC()})
		}, at.Sub(start))
	}
	horizon := false
	env.RegisterDelayedCallback(func() {
		horizon = true
		env.CancelWorkflow()
	}, end.Sub(start))

	env.ExecuteWorkflow(workflows.Journey, input)
	out.endedAt = env.Now().UTC()
	if !env.IsWorkflowCompleted() {
		return played{}, errors.New("preview: the run did not finish within the preview's time limit")
	}
	if v, err := env.QueryWorkflow(workflows.QueryState); err == nil {
		_ = v.Get(&out.state)
	}
	err := env.GetWorkflowError()
	var can *workflow.ContinueAsNewError
	switch {
	case horizon:
		out.status = model.RunActive
		out.endedAt = end
		return out, nil
	case errors.As(err, &can):
		var next workflows.JourneyInput
		if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
			return played{}, fmt.Errorf("preview: reading the continued run's input: %w", err)
		}
		out.next = &next
		return out, nil
	case err != nil:
		return played{}, fmt.Errorf("preview: the run failed: %w", err)
	}
	var jr workflows.JourneyResult
	if err := env.GetWorkflowResult(&jr); err != nil {
		return played{}, fmt.Errorf("preview: reading the run's result: %w", err)
	}
	out.status, out.reason = jr.Status, jr.ExitReason
	return out, nil
}

// activities are the preview's activities, by the names of the worker's
// (the methods of activities.Activities): the real branch conditions, and
// dry runs of everything that writes or sends. A test checks that every
// activity the worker has is here.
func (p *player) activities(now func() time.Time) map[string]any {
	settings := p.deps.Policy
	// Delivery holds only the settings: NextLocalTime reads the default zone there.
	real := &activities.Activities{Store: p.deps.Store, Now: now, Policy: &settings, Delivery: &delivery.Service{Policy: p.deps.Policy}}
	return map[string]any{
		// The real choice, not stored: a preview writes nothing.
		"ChooseSend": func(ctx context.Context, in activities.ChooseSendInput) (activities.ChooseSendResult, error) {
			c, err := activities.ChooseDryRun(ctx, real, in)
			r := activities.ChooseSendResult{Channel: c.Channel}
			if c.SendAt != nil {
				r.SendAt = *c.SendAt
			}
			return r, err
		},
		"BeginEnrollment":   func(context.Context, activities.BeginEnrollmentInput) error { return nil },
		"FinishEnrollment":  func(context.Context, activities.FinishEnrollmentInput) error { return nil },
		"EvaluateCondition": real.EvaluateCondition,
		"NextLocalTime":     real.NextLocalTime,
		"PostWebhook": func(ctx context.Context, in activities.WebhookInput) (delivery.Result, error) {
			return p.postWebhook(ctx, in, now().UTC())
		},
		"Send": func(ctx context.Context, in activities.SendInput) (delivery.Result, error) {
			return p.send(ctx, in, now().UTC())
		},
		"SettleSend": func(context.Context, delivery.Settlement) error { return nil },
		// An audience step is not applied; what it would do is read.
		"ChangeAudience": func(ctx context.Context, in activities.ChangeAudienceInput) (activities.ChangeAudienceResult, error) {
			return p.changeAudience(ctx, in)
		},
		// Assignments are read if recorded, else computed as the activities
		// would, and never recorded.
		"AssignVariant": func(ctx context.Context, in activities.AssignVariantInput) (activities.AssignVariantResult, error) {
			return p.assignVariant(ctx, in)
		},
		"AssignHoldout": func(ctx context.Context, in activities.AssignHoldoutInput) (activities.AssignHoldoutResult, error) {
			return p.assignHoldout(ctx, in)
		},
		// Not a journey's: the segment sweep runs it.
		"SweepSegments": func(context.Context, activities.SweepSegmentsInput) (activities.SweepSegmentsResult, error) {
			return activities.SweepSegmentsResult{}, errors.New("preview: SweepSegments is not a journey activity")
		},
		// Not a journey's: the score sweep runs it.
		"SweepScores": func(context.Context, activities.SweepScoresInput) (activities.SweepScoresResult, error) {
			return activities.SweepScoresResult{}, errors.New("preview: SweepScores is not a journey activity")
		},
		// Not a journey's: the audience sync workflow runs it.
		"SyncAudience": func(context.Context, activities.SyncAudienceInput) (activities.SyncAudienceResult, error) {
			return activities.SyncAudienceResult{}, errors.New("preview: SyncAudience is not a journey activity")
		},
	}
}

// postWebhook is the dry run of activities.PostWebhook: the gate's
// decision for the post (suppressions only), without posting.
func (p *player) postWebhook(_ context.Context, in activities.WebhookInput, now time.Time) (delivery.Result, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	st, err := p.deps.Store.PeekGateState(p.ctx, storage.GateInput{
		Message: storage.Message{ContactID: in.ContactID, IdempotencyKey: "preview"}, Now: now})
	if err != nil {
		return delivery.Result{}, err
	}
	d := policy.Decide(p.deps.Policy, policy.Request{Channel: journey.ChannelWebhook, Class: journey.ClassMarketing,
		Journey: policy.ForJourney(in.Policy, false), JourneyID: in.JourneyID, Now: now, Contact: st.Contact})
	return p.decided(Message{At: now, StepID: in.StepID, Webhook: in.Webhook.Destination}, d), nil
}

// decided records msg with the gate's decision d and answers the run as
// the send path would: sent (would send), deferred until d.Until, or
// skipped with d's reasons.
func (p *player) decided(msg Message, d policy.Decision) delivery.Result {
	codes := strings.Join(d.ReasonCodes(), ",")
	msg.Decision, msg.Channel, msg.Reason = &d, d.Channel, codes
	res := delivery.Result{Channel: d.Channel, Reason: codes}
	switch {
	case d.Allowed():
		msg.Status, res.Status = "would_send", model.MessageSent
	case d.Outcome == policy.OutcomeDefer:
		msg.Status, res.Status, res.DeferUntil = string(delivery.StatusDeferred), delivery.StatusDeferred, d.Until
	default:
		msg.Status, res.Status = string(model.MessageSkipped), model.MessageSkipped
	}
	p.messages = append(p.messages, msg)
	return res
}

// assignVariant is activities.AssignVariant without recording.
func (p *player) assignVariant(ctx context.Context, in activities.AssignVariantInput) (activities.AssignVariantResult, error) {
	variant, err := experiment.Assign(experiment.ExperimentSalt(in.JourneyID, in.Split.Experiment), in.ContactID, in.Split.Arms())
	if err != nil {
		return activities.AssignVariantResult{}, err
	}
	if got, err := p.deps.Store.AssignmentOf(ctx, in.JourneyID, in.Split.Experiment, in.ContactID); err == nil {
		variant = got.Variant
	} else if !errors.Is(err, storage.ErrNotFound) {
		return activities.AssignVariantResult{}, err
	}
	res := activities.AssignVariantResult{Variant: variant, Path: variant}
	if _, ok := in.Split.Variant(variant); !ok {
		res.Path = in.Split.ControlVariant()
	}
	return res, nil
}

// assignHoldout is activities.AssignHoldout without recording.
func (p *player) assignHoldout(ctx context.Context, in activities.AssignHoldoutInput) (activities.AssignHoldoutResult, error) {
	if got, err := p.deps.Store.AssignmentOf(ctx, in.JourneyID, journey.GroupHoldout, in.ContactID); err == nil {
		return activities.AssignHoldoutResult{Group: got.Variant}, nil
	} else if !errors.Is(err, storage.ErrNotFound) {
		return activities.AssignHoldoutResult{}, err
	}
	group := journey.GroupTreatment
	if experiment.Held(experiment.HoldoutSalt(in.JourneyID), in.ContactID, in.Share) {
		group = journey.GroupHoldout
	}
	return activities.AssignHoldoutResult{Group: group}, nil
}

// changeAudience is the dry run of activities.ChangeAudience: what the
// step would ask, without asking.
func (p *player) changeAudience(ctx context.Context, in activities.ChangeAudienceInput) (activities.ChangeAudienceResult, error) {
	if _, err := p.deps.Store.Audience(ctx, in.AudienceID); errors.Is(err, storage.ErrNotFound) {
		return activities.ChangeAudienceResult{Outcome: "skipped:unknown_audience"}, nil
	} else if err != nil {
		return activities.ChangeAudienceResult{}, err
	}
	if in.Action == audience.Add {
		if why, err := p.deps.Store.AdsBlock(ctx, in.ContactID); err != nil || why != "" {
			return activities.ChangeAudienceResult{Outcome: "skipped:" + why}, err
		}
	}
	return activities.ChangeAudienceResult{Outcome: "would_queue"}, nil
}

// send is the dry run of activities.Send: render, decide, record.
func (p *player) send(ctx context.Context, in activities.SendInput, now time.Time) (delivery.Result, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	msg := Message{At: now, StepID: in.StepID, Channel: in.Send.Channel}
	if in.Class == journey.ClassMarketing && in.Withhold != "" {
		// Held out (the journey's holdout): skipped before the gate.
		msg.Status, msg.Reason = string(model.MessageSkipped), in.Withhold
		p.messages = append(p.messages, msg)
		return delivery.Result{Status: model.MessageSkipped, Reason: in.Withhold, Channel: in.Send.Channel}, nil
	}
	primary, reason, _ := activities.Render(in, in.Send.Channel, p.contact)
	if reason != "" {
		msg.Status, msg.Reason = string(model.MessageSkipped), reason
		p.messages = append(p.messages, msg)
		return delivery.Result{Status: model.MessageSkipped, Reason: reason, Channel: in.Send.Channel}, nil
	}
	content := map[journey.Channel]delivery.Content{in.Send.Channel: primary}
	fallbackAvailable := false
	if fb := activities.FallbackChannel(in); fb != "" {
		if m, why, _ := activities.Render(in, fb, p.contact); why == "" {
			content[fb], fallbackAvailable = m, true
		}
	}
	js := policy.ForJourney(in.Policy, fallbackAvailable)
	st, err := p.deps.Store.PeekGateState(p.ctx, storage.GateInput{
		Message: storage.Message{ContactID: in.ContactID, IdempotencyKey: "preview"},
		Now:     now, Lookback: policy.Lookback(p.deps.Policy, js)})
	if err != nil {
		return delivery.Result{}, err
	}
	st.Contact.RecentSends = append(slices.Clone(st.Contact.RecentSends), p.sent...)
	d := policy.Decide(p.deps.Policy, policy.Request{Channel: in.Send.Channel, Class: in.Class, Journey: js,
		JourneyID: in.JourneyID, Now: now, Contact: st.Contact})
	if d.Allowed() {
		msg.Email, msg.SMS = rendered(content[d.Channel])
		p.sent = append(p.sent, policy.SentMessage{Channel: d.Channel, At: now, Class: in.Class})
	}
	return p.decided(msg, d), nil
}

func rendered(c delivery.Content) (*Email, *SMS) {
	switch {
	case c.Email != nil:
		e := c.Email
		return &Email{To: e.To, Subject: e.Subject, Text: e.Text, HTML: e.HTML, TemplateID: e.TemplateID,
			TemplateData: maps.Clone(e.TemplateData)}, nil
	case c.SMS != nil:
		return nil, &SMS{To: c.SMS.To, Body: c.SMS.Body}
	}
	return nil, nil
}

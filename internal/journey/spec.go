// Package journey defines the declarative journey spec that marketers write,
// parses it from YAML or JSON, validates it (with every problem reported at its
// path) and renders message templates. It is pure Go: the workflow interpreter
// walks a validated Spec deterministically, and activities render its templates.
package journey

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/tutti-dev/tutti/internal/experiment"
)

// Spec is one journey as a marketer writes it. A published Spec is immutable:
// it is stored as a numbered version and passed to the workflow as input, so a
// running contact keeps the version it started with.
type Spec struct {
	// ID is the journey's stable identifier ([a-z0-9_-], 1-64 chars); versions share it.
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`

	Trigger Trigger `json:"trigger"`
	Reentry Reentry `json:"reentry"`
	// Goal is the conversion event: when it arrives the journey ends at once as converted.
	Goal *Goal `json:"goal,omitempty"`
	// ExitEvents end the journey at once (as exited) whenever one arrives.
	ExitEvents []string `json:"exit_events,omitempty"`
	// ExitWhenLeaving names a segment: the run ends (as exited) when the
	// contact leaves it (its segment.exited event for that segment).
	ExitWhenLeaving string `json:"exit_when_leaving,omitempty"`
	// Class is the default message class for sends: marketing (default) or transactional.
	Class MessageClass `json:"class,omitempty"`
	// Policy holds the journey's send-gate settings and overrides of the
	// workspace defaults (caps, cooldowns, subscription type, fallback...).
	Policy *Policy `json:"policy,omitempty"`

	// Holdout sets a share of the journey's contacts aside: they are
	// enrolled and walk the journey, but none of its marketing messages is
	// sent to them (each is recorded as skipped with the reason holdout),
	// so the journey's effect on the goal can be measured against them.
	Holdout *Holdout `json:"holdout,omitempty"`

	// Steps run from the first one. A step without an explicit next falls
	// through to the following step; the last step falls through to the end.
	Steps []Step `json:"steps"`
}

// TriggerType says how contacts enter a journey.
type TriggerType string

const (
	// TriggerAPI: the backend starts the journey explicitly (the per-signup call).
	TriggerAPI TriggerType = "api"
	// TriggerEvent: a tracked event with Trigger.Event as its name enrolls the contact.
	TriggerEvent TriggerType = "event"
	// TriggerSegment: entering the segment Trigger.Segment (its
	// segment.entered event) enrolls the contact.
	TriggerSegment TriggerType = "segment"
)

type Trigger struct {
	Type    TriggerType `json:"type"`
	Event   string      `json:"event,omitempty"`
	Segment string      `json:"segment,omitempty"`
	// Key names a property of the triggering event (cart_id, order_id):
	// the journey then runs once per value of it, each value with its own
	// run, re-entry rule and workflow id (RunKeyOf, RunKeyDigest). Only
	// with an event trigger. Empty: one run per contact.
	Key string `json:"key,omitempty"`
}

// The events a segment stores when a contact enters or leaves it; their
// only property is "segment", the segment's id.
const (
	EventSegmentEntered = "segment.entered"
	EventSegmentExited  = "segment.exited"
)

// SegmentIDPattern is what a segment id looks like (internal/segment
// defines segments; journeys name them in triggers and exit rules).
var SegmentIDPattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

// SegmentIDRule explains SegmentIDPattern in an error message.
const SegmentIDRule = "lowercase letters, digits and _, starting with a letter, at most 63"

// ReentryPolicy says whether a contact may go through the journey again.
// In every policy a contact never has two concurrent runs of one journey
// (of one key value, for a journey keyed by Trigger.Key).
type ReentryPolicy string

const (
	ReentryOnce     ReentryPolicy = "once"
	ReentryAlways   ReentryPolicy = "always"
	ReentryCooldown ReentryPolicy = "cooldown"
)

type Reentry struct {
	Policy ReentryPolicy `json:"policy"`
	// Cooldown is required with the cooldown policy: the time since the
	// previous run ended before the contact may enter again.
	Cooldown Duration `json:"cooldown,omitempty"`
}

type Goal struct {
	Event string `json:"event"`
	// Window is how long after entering the journey (or an experiment) a
	// goal event counts as a conversion in reports: DefaultConversionWindow
	// when unset. The run itself ends at the goal whenever it arrives.
	Window Duration `json:"window,omitempty"`
}

// DefaultConversionWindow is the conversion window of a goal that sets none.
const DefaultConversionWindow = 30 * 24 * time.Hour

// ConversionWindow is the goal's window, or the default.
func (g Goal) ConversionWindow() time.Duration {
	if g.Window > 0 {
		return g.Window.Std()
	}
	return DefaultConversionWindow
}

// Holdout is a journey-level holdout: Share (above 0, below 1) of the
// journey's contacts, chosen by a hash of contact and journey
// (experiment.HoldoutSalt) and recorded the first time each enters, so a
// contact stays in or out of it across re-entries and new versions.
type Holdout struct {
	Share float64 `json:"share"`
}

// MessageClass separates marketing messages (consent, caps and quiet hours
// apply) from transactional ones (receipts, password resets).
type MessageClass string

const (
	ClassMarketing     MessageClass = "marketing"
	ClassTransactional MessageClass = "transactional"
)

// Channel is a delivery channel.
type Channel string

const (
	ChannelEmail Channel = "email"
	ChannelSMS   Channel = "sms"
	ChannelAds   Channel = "ads"
	// ChannelWebhook is a webhook step's post to a configured destination
	// (a CRM, a sales alert, a direct-mail vendor): the channel its ledger
	// rows and gate decisions carry. It is not a way to reach the contact,
	// so no consent is recorded for it.
	ChannelWebhook Channel = "webhook"
	// ChannelBest is not a channel: a send step with channel: best sends on
	// the channel, among those its messages cover and the send gate allows
	// for the contact, with the best recent engagement (see Send.Candidates).
	ChannelBest Channel = "best"
)

// SendTimeBest on a send step: send at the contact's best hour of the week
// within the step's Within horizon, instead of at once.
const SendTimeBest = "best"

// Step is one node of the journey graph. Exactly one of the action fields is set.
type Step struct {
	ID string `json:"id"`
	// Next names the step that follows; empty means the following step in the list.
	Next string `json:"next,omitempty"`

	Send      *Send      `json:"send,omitempty"`
	Wait      *Wait      `json:"wait,omitempty"`
	WaitUntil *WaitUntil `json:"wait_until,omitempty"`
	WaitFor   *WaitFor   `json:"wait_for,omitempty"`
	Branch    *Branch    `json:"branch,omitempty"`
	Webhook   *Webhook   `json:"webhook,omitempty"`
	Exit      *Exit      `json:"exit,omitempty"`
	Split     *Split     `json:"split,omitempty"`
	// Audience adds the contact to, or removes them from, an ad audience.
	Audience *AudienceStep `json:"audience,omitempty"`
}

// StepKind names which action a step carries.
type StepKind string

const (
	KindSend      StepKind = "send"
	KindWait      StepKind = "wait"
	KindWaitUntil StepKind = "wait_until"
	KindWaitFor   StepKind = "wait_for"
	KindBranch    StepKind = "branch"
	KindWebhook   StepKind = "webhook"
	KindExit      StepKind = "exit"
	KindSplit     StepKind = "split"
	KindAudience  StepKind = "audience"
)

// Kind reports the step's action, or "" if none or several are set (validation rejects both).
func (s Step) Kind() StepKind {
	var kinds []StepKind
	if s.Send != nil {
		kinds = append(kinds, KindSend)
	}
	if s.Wait != nil {
		kinds = append(kinds, KindWait)
	}
	if s.WaitUntil != nil {
		kinds = append(kinds, KindWaitUntil)
	}
	if s.WaitFor != nil {
		kinds = append(kinds, KindWaitFor)
	}
	if s.Branch != nil {
		kinds = append(kinds, KindBranch)
	}
	if s.Webhook != nil {
		kinds = append(kinds, KindWebhook)
	}
	if s.Exit != nil {
		kinds = append(kinds, KindExit)
	}
	if s.Split != nil {
		kinds = append(kinds, KindSplit)
	}
	if s.Audience != nil {
		kinds = append(kinds, KindAudience)
	}
	if len(kinds) != 1 {
		return ""
	}
	return kinds[0]
}

// Policy is a journey's send-gate settings. Unset fields use the workspace
// settings; every send of the journey passes the gate with these.
type Policy struct {
	// Subscription is the subscription type of the journey's messages
	// (newsletter, product, promotions...): a contact who unsubscribed from
	// it is not sent them, even with channel consent.
	Subscription string `json:"subscription,omitempty"`
	// OnCap says what a send held by a frequency cap or cooldown does:
	// defer (default: wait until the cap allows it) or skip.
	OnCap string `json:"on_cap,omitempty"`
	// GlobalCap replaces the workspace's cross-channel cap for this journey.
	GlobalCap *Cap `json:"global_cap,omitempty"`
	// Cooldowns replace the workspace's per-channel cooldowns ("0s" disables).
	Cooldowns map[Channel]Duration `json:"cooldowns,omitempty"`
	// FallbackChannel is used when a send's channel is blocked by consent or
	// suppression; a send step carries the fallback message beside its own
	// (an sms step with an email message, say).
	FallbackChannel Channel `json:"fallback_channel,omitempty"`
	// UnengagedDays replaces the workspace's unengaged rule (0 disables).
	UnengagedDays *int `json:"unengaged_days,omitempty"`
	// Abandonment marks an abandonment journey (triggered by an event such as
	// cart.abandoned): at most one SMS per triggering event, and only within
	// the abandonment window (48 hours by default) after it.
	Abandonment bool `json:"abandonment,omitempty"`
}

// Cap is at most Max marketing messages in any rolling Window. Max 0 disables.
type Cap struct {
	Max    int      `json:"max"`
	Window Duration `json:"window"`
}

// OnCap values.
const (
	OnCapDefer = "defer"
	OnCapSkip  = "skip"
)

// Send delivers one message on one channel.
type Send struct {
	// Channel is email, sms, or best (the best channel the gate allows).
	// Empty with a Waterfall.
	Channel Channel `json:"channel,omitempty"`
	// SendTime is "" (at once) or best: at the contact's best hour of the
	// week within Within, never inside quiet hours.
	SendTime string `json:"send_time,omitempty"`
	// Within is the horizon of send_time: best (24h by default, at most 7d).
	Within Duration `json:"within,omitempty"`
	// Waterfall sends on its stages' channels in turn, each stage only if
	// no engagement event arrived within its After of the previous send.
	Waterfall []WaterfallStage `json:"waterfall,omitempty"`
	// Class overrides the journey's default message class.
	Class MessageClass  `json:"class,omitempty"`
	Email *EmailMessage `json:"email,omitempty"`
	SMS   *SMSMessage   `json:"sms,omitempty"`
}

// WaterfallStage is one channel of a waterfall. After is how long the
// previous stage's message is given to earn an engagement (an open, a
// click, a reply) before this one is sent; the first stage has none.
type WaterfallStage struct {
	Channel Channel  `json:"channel"`
	After   Duration `json:"after,omitempty"`
}

// DefaultSendTimeWithin is the horizon of send_time: best without within.
const DefaultSendTimeWithin = Duration(24 * time.Hour)

// MaxSendTimeWithin bounds within: a week covers every hour of the week.
const MaxSendTimeWithin = Duration(7 * 24 * time.Hour)

// Candidates lists the channels the step may send on, in the order it
// names them: its channel; for channel: best the channels it carries a
// message for (email first); for a waterfall, its stages' channels.
func (s Send) Candidates() []Channel {
	switch {
	case len(s.Waterfall) > 0:
		out := make([]Channel, 0, len(s.Waterfall))
		for _, st := range s.Waterfall {
			out = append(out, st.Channel)
		}
		return out
	case s.Channel == ChannelBest:
		var out []Channel
		if s.Email != nil {
			out = append(out, ChannelEmail)
		}
		if s.SMS != nil {
			out = append(out, ChannelSMS)
		}
		return out
	case s.Channel == "":
		return nil
	}
	return []Channel{s.Channel}
}

// Chooses reports whether the step asks for a choice before it sends (the
// channel, the time, or both), made from the contact's engagement.
func (s Send) Chooses() bool {
	return s.Channel == ChannelBest || s.SendTime == SendTimeBest
}

// EmailMessage is either a SendGrid dynamic template (TemplateID + Data) or a
// subject and body rendered here from Go templates.
type EmailMessage struct {
	TemplateID string `json:"template_id,omitempty"`
	// Data is the dynamic_template_data; string values are Go templates
	// rendered against the contact (for example "{{ .contact.first_name }}").
	Data map[string]any `json:"data,omitempty"`

	Subject string `json:"subject,omitempty"`
	HTML    string `json:"html,omitempty"`
	Text    string `json:"text,omitempty"`
}

// SMSMessage is an SMS (or MMS with media URLs) body template.
type SMSMessage struct {
	Body     string   `json:"body"`
	MediaURL []string `json:"media_url,omitempty"`
}

// Wait pauses the journey on a durable timer.
type Wait struct {
	Duration Duration `json:"duration"`
}

// WaitUntil pauses the journey on a durable timer until the next Time on
// one of Days in the contact's local time zone (the zone quiet hours use:
// the contact's own, else the phone number's, else the workspace default).
// A run that reaches the step exactly at that time waits for the next one,
// so a loop through it always waits.
type WaitUntil struct {
	// Time is the local wall-clock time, "HH:MM" (00:00 to 23:59).
	Time string `json:"time"`
	// Days are the weekdays it may end on; empty means every day.
	Days []Weekday `json:"days,omitempty"`
}

// Clock is the step's time as hour and minute; ok is false when Time is not
// "HH:MM" within 00:00-23:59 (validation rejects such a spec).
func (w WaitUntil) Clock() (hour, minute int, ok bool) {
	t, err := time.Parse("15:04", w.Time)
	if err != nil || len(w.Time) != 5 {
		return 0, 0, false
	}
	return t.Hour(), t.Minute(), true
}

// Weekdays is Days as time.Weekday values (unknown names left out; nil for every day).
func (w WaitUntil) Weekdays() []time.Weekday {
	var out []time.Weekday
	for _, d := range w.Days {
		if wd, ok := ParseWeekday(string(d)); ok {
			out = append(out, wd)
		}
	}
	return out
}

// Weekday is a day of the week as specs and settings files write it: mon,
// tue, wed, thu, fri, sat, sun.
type Weekday string

var weekdays = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

// WeekdayNames lists the accepted day names, for messages.
const WeekdayNames = "mon, tue, wed, thu, fri, sat, sun"

// ParseWeekday reads a day name (case and surrounding spaces ignored).
func ParseWeekday(s string) (time.Weekday, bool) {
	wd, ok := weekdays[strings.ToLower(strings.TrimSpace(s))]
	return wd, ok
}

// WaitFor waits for an event, with a timeout. Events that arrived since the
// previous send step count, so an "email.opened" that beat the wait is not missed.
type WaitFor struct {
	Event     string   `json:"event"`
	Timeout   Duration `json:"timeout"`
	OnEvent   string   `json:"on_event,omitempty"`
	OnTimeout string   `json:"on_timeout,omitempty"`
}

// Branch picks the next step by a CEL condition over contact, consent and journey context.
type Branch struct {
	Condition string `json:"condition"`
	Then      string `json:"then,omitempty"`
	Else      string `json:"else,omitempty"`
}

// AudienceStep asks for the contact to be added to or removed from an ad
// audience (defined with PUT /v1/audiences/{id}); the audience's sync
// applies it. An add needs the contact's ads consent and no suppression,
// when it is asked for and again when it is sent.
type AudienceStep struct {
	Audience string `json:"audience"`
	// Action is add or remove.
	Action string `json:"action"`
}

// Webhook posts a signed JSON payload about the contact to a destination
// the workspace configured (TUTTI_WEBHOOK_DESTINATIONS): its URL and secret
// are configuration, never part of a spec.
type Webhook struct {
	// Destination names a configured destination ([a-z0-9_-]).
	Destination string `json:"destination"`
	// Payload is the JSON object posted; string values are Go templates
	// over the contact, rendered like a send step's (for example
	// "{{ .contact.email }}").
	Payload map[string]any `json:"payload"`
}

// Split is an experiment: each contact takes one variant's path, by a
// hash of contact, journey and experiment (experiment.Assign) recorded the
// first time the contact reaches the split. The recorded variant wins from
// then on, so re-entries, new journey versions and changed weights never
// move anyone between arms.
type Split struct {
	// Experiment names the experiment; reports are by journey and
	// experiment. Renaming it starts a new experiment with new assignments.
	Experiment string         `json:"experiment"`
	Variants   []SplitVariant `json:"variants"`
	// Control names the variant the others are compared with in reports;
	// the first variant when empty.
	Control string `json:"control,omitempty"`
}

// SplitVariant is one arm of a split: its name, its relative weight, and
// the step its contacts go to.
type SplitVariant struct {
	Name   string `json:"name"`
	Weight int    `json:"weight"`
	Next   string `json:"next"`
}

// Arms is the split's variants as experiment.Assign takes them.
func (s Split) Arms() []experiment.Variant {
	out := make([]experiment.Variant, len(s.Variants))
	for i, v := range s.Variants {
		out[i] = experiment.Variant{Name: v.Name, Weight: v.Weight}
	}
	return out
}

// ControlVariant is the variant the others are compared with.
func (s Split) ControlVariant() string {
	if s.Control != "" || len(s.Variants) == 0 {
		return s.Control
	}
	return s.Variants[0].Name
}

// Variant returns the named variant, if the split has it.
func (s Split) Variant(name string) (SplitVariant, bool) {
	for _, v := range s.Variants {
		if v.Name == name {
			return v, true
		}
	}
	return SplitVariant{}, false
}

// Exit ends the journey with a reason.
type Exit struct {
	Reason string `json:"reason,omitempty"`
}

// Duration is a time.Duration written as a string: Go syntax ("90s", "1h30m")
// plus whole days ("3d"). Bare numbers are rejected so units are never guessed.
type Duration time.Duration

// ParseDuration parses "3d", "12h", "1d12h", "90s" and the like.
func ParseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("empty duration")
	}
	var days int64
	if i := strings.IndexByte(s, 'd'); i >= 0 {
		n, err := strconv.ParseInt(s[:i], 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("invalid duration %q: days must be a whole number like \"3d\"", s)
		}
		days, s = n, s[i+1:]
	}
	var rest time.Duration
	if s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q: use units like 30s, 15m, 12h, 3d", s)
		}
		rest = d
	}
	return Duration(time.Duration(days)*24*time.Hour + rest), nil
}

func (d Duration) Std() time.Duration { return time.Duration(d) }

func (d Duration) String() string {
	td := time.Duration(d)
	if td > 0 && td%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(td/(24*time.Hour)), 10) + "d"
	}
	return td.String()
}

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string like \"30s\", \"12h\" or \"3d\"")
	}
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

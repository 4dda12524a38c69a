package journey

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
)

// Problem is one thing wrong with a spec, at the path of the offending field,
// for example {Path: "steps[3].wait_for.timeout", Message: "must be greater than 0"}.
// Path is "" for problems with the document as a whole.
type Problem struct {
	Path    string `json:"path"`
	Message string `json:"message"`
}

func (p Problem) String() string {
	if p.Path == "" {
		return p.Message
	}
	return p.Path + ": " + p.Message
}

// Problems is every problem found in a spec, in document order. As an error
// it prints one problem per line, "path: message".
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// sort orders problems by path in document order; problems at one path keep
// the order they were found in.
func (ps Problems) sort() {
	sort.SliceStable(ps, func(i, j int) bool { return comparePaths(ps[i].Path, ps[j].Path) < 0 })
}

var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

const idRule = `must be 1-64 characters of a-z, 0-9, "_" and "-", starting with a letter or digit`

// Validate checks every rule of a journey spec and returns every problem
// found, sorted in document order, or nil when the spec can be published.
// A valid spec is safe to interpret: every step reference exists, every step
// can be reached, no loop runs without waiting, every template parses and
// uses known data, and every condition compiles to a boolean.
func Validate(s Spec) Problems {
	v := validator{spec: s}
	v.journey()
	v.goalWindow()
	v.steps()
	v.problems.sort()
	if len(v.problems) == 0 {
		return nil
	}
	return v.problems
}

type validator struct {
	spec     Spec
	problems Problems
}

func (v *validator) add(path, format string, args ...any) {
	v.problems = append(v.problems, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
}

// required reports an empty (or blank) string field and says whether it was set.
func (v *validator) required(path, value string) bool {
	if strings.TrimSpace(value) == "" {
		v.add(path, "required")
		return false
	}
	return true
}

// segment checks a segment id (a trigger's or an exit rule's).
func (v *validator) segment(path, value string) {
	switch {
	case value == "":
		v.add(path, "required: a segment id")
	case !SegmentIDPattern.MatchString(value):
		v.add(path, "%s (got %q)", SegmentIDRule, value)
	}
}

func (v *validator) id(path, value string) {
	if v.required(path, value) && !idPattern.MatchString(value) {
		v.add(path, "%s (got %q)", idRule, value)
	}
}

func (v *validator) class(path string, c MessageClass) {
	switch c {
	case "", ClassMarketing, ClassTransactional:
	default:
		v.add(path, "must be marketing or transactional (got %q)", c)
	}
}

// journey checks the fields above steps.
func (v *validator) journey() {
	s := v.spec
	v.id("id", s.ID)
	v.required("name", s.Name)

	switch s.Trigger.Type {
	case TriggerAPI:
		if s.Trigger.Event != "" {
			v.add("trigger.event", "must be empty when trigger.type is api")
		}
	case TriggerEvent:
		if strings.TrimSpace(s.Trigger.Event) == "" {
			v.add("trigger.event", "required when trigger.type is event")
		}
		if s.Trigger.Key != "" && !keyPattern.MatchString(s.Trigger.Key) {
			v.add("trigger.key", "%s (got %q)", keyRule, s.Trigger.Key)
		}
	case TriggerSegment:
		if s.Trigger.Event != "" {
			v.add("trigger.event", "must be empty when trigger.type is segment")
		}
		v.segment("trigger.segment", s.Trigger.Segment)
	case "":
		v.add("trigger.type", "required (api, event or segment)")
	default:
		v.add("trigger.type", "must be api, event or segment (got %q)", s.Trigger.Type)
	}
	if s.Trigger.Type != TriggerSegment && s.Trigger.Segment != "" {
		v.add("trigger.segment", "must be empty unless trigger.type is segment")
	}
	if s.ExitWhenLeaving != "" {
		// It may name the trigger's own segment: the run then lasts while
		// the contact stays in.
		v.segment("exit_when_leaving", s.ExitWhenLeaving)
	}

	if s.Trigger.Key != "" && s.Trigger.Type != TriggerEvent {
		v.add("trigger.key", "only with trigger.type event: a journey runs once per value of a property of its triggering event")
	}

	switch s.Reentry.Policy {
	case ReentryCooldown:
		switch {
		case s.Reentry.Cooldown == 0:
			v.add("reentry.cooldown", "required when reentry.policy is cooldown")
		case s.Reentry.Cooldown < 0:
			v.add("reentry.cooldown", "must be greater than 0")
		}
	case ReentryOnce, ReentryAlways, "":
		if s.Reentry.Policy == "" {
			v.add("reentry.policy", "required (once, always or cooldown)")
		}
		if s.Reentry.Cooldown != 0 {
			v.add("reentry.cooldown", "must be empty unless reentry.policy is cooldown")
		}
	default:
		v.add("reentry.policy", "must be once, always or cooldown (got %q)", s.Reentry.Policy)
	}

	goal := ""
	if s.Goal != nil {
		if v.required("goal.event", s.Goal.Event) {
			goal = s.Goal.Event
		}
	}
	seen := map[string]int{}
	for i, e := range s.ExitEvents {
		path := indexPath("exit_events", i)
		switch first, dup := seen[e]; {
		case strings.TrimSpace(e) == "":
			v.add(path, "must not be empty")
		case dup:
			v.add(path, "duplicate event %q (also exit_events[%d])", e, first)
		case e == goal:
			v.add(path, "%q is the goal event; an event cannot both convert and exit the journey", e)
		default:
			seen[e] = i
		}
	}

	v.class("class", s.Class)
	v.policy()
	v.holdout()
}

// Group names an experiment report uses besides a split's variants; they
// cannot name an experiment.
const (
	// GroupHoldout is the journey holdout's group (and its skip reason).
	GroupHoldout = "holdout"
	// GroupControlGroup is the workspace control group's (and its skip reason).
	GroupControlGroup = "control_group"
	// GroupTreatment is the other group of the holdout and of the control
	// group: contacts whose messages are sent.
	GroupTreatment = "treatment"
)

// MaxVariantWeight bounds a variant's weight; weights are relative, so
// 10000 allows shares to a hundredth of a percent.
const MaxVariantWeight = 10000

// holdout checks the journey holdout: a share strictly between 0 and 1, of
// a marketing journey, with a goal to measure it by.
func (v *validator) holdout() {
	h := v.spec.Holdout
	if h == nil {
		return
	}
	if !(h.Share > 0 && h.Share < 1) {
		v.add("holdout.share", "must be above 0 and below 1 (0.1 holds out 10%% of contacts), got %v", h.Share)
	}
	if v.spec.Class == ClassTransactional {
		v.add("holdout", "a transactional journey cannot have a holdout: its messages are never withheld")
	}
	if v.spec.Goal == nil {
		v.add("holdout", "a holdout needs goal.event: conversion to the goal is what it measures")
	}
}

// goalWindow checks the conversion window.
func (v *validator) goalWindow() {
	if g := v.spec.Goal; g != nil && g.Window < 0 {
		v.add("goal.window", "must be greater than 0")
	}
}

var subscriptionPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// policy checks the journey's send-gate settings.
func (v *validator) policy() {
	p := v.spec.Policy
	if p == nil {
		return
	}
	if p.Subscription != "" && !subscriptionPattern.MatchString(p.Subscription) {
		v.add("policy.subscription", "%s (got %q)", idRule, p.Subscription)
	}
	switch p.OnCap {
	case "", OnCapDefer, OnCapSkip:
	default:
		v.add("policy.on_cap", "must be defer or skip (got %q)", p.OnCap)
	}
	if c := p.GlobalCap; c != nil {
		if c.Max < 0 {
			v.add("policy.global_cap.max", "must be 0 (no cap) or more")
		}
		if c.Max > 0 && c.Window <= 0 {
			v.add("policy.global_cap.window", "must be greater than 0")
		}
	}
	for _, ch := range sortedChannels(p.Cooldowns) {
		path := "policy.cooldowns." + string(ch)
		switch {
		case ch != ChannelEmail && ch != ChannelSMS && ch != ChannelAds:
			v.add(path, "unknown channel %q (use email, sms or ads)", ch)
		case p.Cooldowns[ch] < 0:
			v.add(path, "must be 0 (no cooldown) or more")
		}
	}
	switch p.FallbackChannel {
	case "", ChannelEmail, ChannelSMS:
	default:
		v.add("policy.fallback_channel", "must be email or sms (got %q)", p.FallbackChannel)
	}
	if p.UnengagedDays != nil && *p.UnengagedDays < 0 {
		v.add("policy.unengaged_days", "must be 0 (rule off) or more")
	}
	if p.Abandonment && v.spec.Trigger.Type != TriggerEvent {
		v.add("policy.abandonment", "an abandonment journey must be triggered by its abandonment event (trigger.type event)")
	}
}

func sortedChannels[V any](m map[Channel]V) []Channel {
	out := make([]Channel, 0, len(m))
	for ch := range m {
		out = append(out, ch)
	}
	slices.Sort(out)
	return out
}

// fallback is the journey's fallback channel, if any.
func (v *validator) fallback() Channel {
	if v.spec.Policy == nil {
		return ""
	}
	return v.spec.Policy.FallbackChannel
}

// steps checks each step, then the graph they form.
func (v *validator) steps() {
	s := v.spec
	if len(s.Steps) == 0 {
		v.add("steps", "at least one step is required")
		return
	}
	firstByID := map[string]int{}
	for i, st := range s.Steps {
		path := indexPath("steps", i)
		v.id(path+".id", st.ID)
		if st.ID != "" {
			if first, dup := firstByID[st.ID]; dup {
				v.add(path+".id", "duplicate step id %q (also steps[%d])", st.ID, first)
			} else {
				firstByID[st.ID] = i
			}
		}
		v.step(path, st)
	}
	v.graph()
}

func (v *validator) ref(path, target string) {
	if target != "" && v.spec.StepIndex(target) < 0 {
		v.add(path, "unknown step %q", target)
	}
}

func (v *validator) step(path string, st Step) {
	var kinds []string
	for _, k := range []struct {
		kind StepKind
		set  bool
	}{
		{KindSend, st.Send != nil},
		{KindWait, st.Wait != nil},
		{KindWaitUntil, st.WaitUntil != nil},
		{KindWaitFor, st.WaitFor != nil},
		{KindBranch, st.Branch != nil},
		{KindWebhook, st.Webhook != nil},
		{KindExit, st.Exit != nil},
		{KindSplit, st.Split != nil},
		{KindAudience, st.Audience != nil},
	} {
		if k.set {
			kinds = append(kinds, string(k.kind))
		}
	}
	if len(kinds) != 1 {
		found := "found none"
		if len(kinds) > 1 {
			found = "found " + strings.Join(kinds, " and ")
		}
		v.add(path, "step must have exactly one of send, wait, wait_until, wait_for, branch, webhook, exit, split, audience (%s)", found)
	}

	switch {
	case st.Exit != nil && st.Next != "":
		v.add(path+".next", "an exit step ends the journey and cannot have next")
	case st.Split != nil && st.Next != "":
		v.add(path+".next", "a split step goes on at its variants' next steps and cannot have next")
	default:
		v.ref(path+".next", st.Next)
	}

	if st.Send != nil {
		v.send(path+".send", st.Send)
	}
	if a := st.Audience; a != nil {
		if v.required(path+".audience.audience", a.Audience) && !idPattern.MatchString(a.Audience) {
			v.add(path+".audience.audience", "%s", idRule)
		}
		if a.Action != "add" && a.Action != "remove" {
			v.add(path+".audience.action", "must be add or remove")
		}
	}
	if st.Wait != nil && st.Wait.Duration <= 0 {
		v.add(path+".wait.duration", "must be greater than 0")
	}
	if w := st.WaitUntil; w != nil {
		v.waitUntil(path+".wait_until", w)
	}
	if w := st.WaitFor; w != nil {
		v.required(path+".wait_for.event", w.Event)
		if w.Timeout <= 0 {
			v.add(path+".wait_for.timeout", "must be greater than 0")
		}
		v.ref(path+".wait_for.on_event", w.OnEvent)
		v.ref(path+".wait_for.on_timeout", w.OnTimeout)
	}
	if w := st.Webhook; w != nil {
		v.webhook(path+".webhook", w)
	}
	if b := st.Branch; b != nil {
		if v.required(path+".branch.condition", b.Condition) {
			if _, err := CompileBranchCondition(b.Condition); err != nil {
				v.add(path+".branch.condition", "%s", err.Error())
			}
		}
		v.ref(path+".branch.then", b.Then)
		v.ref(path+".branch.else", b.Else)
	}
	if st.Split != nil {
		v.split(path+".split", st.Split)
	}
}

// split checks an experiment: a name unique in the journey, two or more
// named variants with positive weights, each naming the step it goes to.
func (v *validator) split(path string, sp *Split) {
	if v.required(path+".experiment", sp.Experiment) {
		switch {
		case !idPattern.MatchString(sp.Experiment):
			v.add(path+".experiment", "%s (got %q)", idRule, sp.Experiment)
		case sp.Experiment == GroupHoldout || sp.Experiment == GroupControlGroup:
			v.add(path+".experiment", "%q is reserved for the journey holdout and the workspace control group", sp.Experiment)
		default:
			for i, st := range v.spec.Steps {
				if st.Split != nil && st.Split != sp && st.Split.Experiment == sp.Experiment {
					if p := indexPath("steps", i) + ".split"; comparePaths(p, path) < 0 {
						v.add(path+".experiment", "experiment %q is also %s.experiment; each split is its own experiment", sp.Experiment, p)
						break
					}
				}
			}
		}
	}
	if v.spec.Goal == nil {
		v.add(path, "an experiment needs goal.event: conversion to the goal is what it compares")
	}
	if len(sp.Variants) < 2 {
		v.add(path+".variants", "a split needs at least two variants (got %d)", len(sp.Variants))
	}
	seen := map[string]int{}
	for i, vr := range sp.Variants {
		vp := indexPath(path+".variants", i)
		if v.required(vp+".name", vr.Name) {
			if !idPattern.MatchString(vr.Name) {
				v.add(vp+".name", "%s (got %q)", idRule, vr.Name)
			} else if vr.Name == GroupHoldout || vr.Name == GroupControlGroup {
				v.add(vp+".name", "%q is reserved for the journey holdout and the workspace control group", vr.Name)
			} else if first, dup := seen[vr.Name]; dup {
				v.add(vp+".name", "duplicate variant %q (also variants[%d])", vr.Name, first)
			} else {
				seen[vr.Name] = i
			}
		}
		if vr.Weight <= 0 || vr.Weight > MaxVariantWeight {
			v.add(vp+".weight", "must be a whole number from 1 to %d (weights are relative: 50 and 50, or 1 and 1, split evenly), got %d", MaxVariantWeight, vr.Weight)
		}
		if v.required(vp+".next", vr.Next) {
			v.ref(vp+".next", vr.Next)
		}
	}
	if sp.Control != "" {
		if _, ok := sp.Variant(sp.Control); !ok {
			v.add(path+".control", "unknown variant %q", sp.Control)
		}
	}
}

// waitUntil checks a local time of day and the days it may fall on.
func (v *validator) waitUntil(path string, w *WaitUntil) {
	if v.required(path+".time", w.Time) {
		if _, _, ok := w.Clock(); !ok {
			v.add(path+".time", `must be a local time "HH:MM" from 00:00 to 23:59 (got %q)`, w.Time)
		}
	}
	if w.Days != nil && len(w.Days) == 0 {
		v.add(path+".days", "must list at least one day; leave days out for every day")
	}
	first := map[time.Weekday]int{}
	for i, d := range w.Days {
		dpath := indexPath(path+".days", i)
		wd, ok := ParseWeekday(string(d))
		if !ok {
			v.add(dpath, "unknown day %q (use %s)", d, WeekdayNames)
			continue
		}
		if j, dup := first[wd]; dup {
			v.add(dpath, "duplicate day %q (also days[%d])", d, j)
			continue
		}
		first[wd] = i
	}
}

// webhook checks a webhook step: a destination name and a payload whose
// templates parse. Whether the destination is configured is the API's to
// check at publish time: a spec does not know the workspace's settings.
func (v *validator) webhook(path string, w *Webhook) {
	if v.required(path+".destination", w.Destination) && !idPattern.MatchString(w.Destination) {
		v.add(path+".destination", "%s (got %q)", idRule, w.Destination)
	}
	if len(w.Payload) == 0 {
		v.add(path+".payload", "required: the JSON object to post")
	}
	v.templateData(path+".payload", w.Payload)
}

func (v *validator) send(path string, snd *Send) {
	v.sendTime(path, snd)
	if len(snd.Waterfall) > 0 || snd.Channel == ChannelBest {
		v.choice(path, snd)
		v.class(path+".class", snd.Class)
		if snd.Email != nil {
			v.email(path+".email", snd.Email)
		}
		if snd.SMS != nil {
			v.sms(path+".sms", snd.SMS)
		}
		return
	}
	switch snd.Channel {
	case ChannelEmail:
		if snd.Email == nil {
			v.add(path+".email", "required when channel is email")
		}
		if snd.SMS != nil && v.fallback() != ChannelSMS {
			v.add(path+".sms", "must be empty when channel is email (unless policy.fallback_channel is sms: then it is the fallback message)")
		}
	case ChannelSMS:
		if snd.SMS == nil {
			v.add(path+".sms", "required when channel is sms")
		}
		if snd.Email != nil && v.fallback() != ChannelEmail {
			v.add(path+".email", "must be empty when channel is sms (unless policy.fallback_channel is email: then it is the fallback message)")
		}
	case ChannelAds:
		v.add(path+".channel", "channel %q cannot be used in a send step yet", snd.Channel)
	case "":
		v.add(path+".channel", "required (email, sms or best), or a waterfall")
	default:
		v.add(path+".channel", "unknown channel %q (use email, sms or best)", snd.Channel)
	}
	v.class(path+".class", snd.Class)
	if snd.Email != nil {
		v.email(path+".email", snd.Email)
	}
	if snd.SMS != nil {
		v.sms(path+".sms", snd.SMS)
	}
}

func (v *validator) email(path string, m *EmailMessage) {
	dynamic := m.TemplateID != "" || len(m.Data) > 0
	inline := m.Subject != "" || m.HTML != "" || m.Text != ""
	switch {
	case dynamic && inline:
		v.add(path, "use either template_id with data, or subject with html and/or text, not both")
	case !dynamic && !inline:
		v.add(path, "needs either template_id with data, or subject with html and/or text")
	case dynamic:
		switch {
		case m.TemplateID == "":
			v.add(path+".template_id", "required with data")
		case !strings.HasPrefix(m.TemplateID, "d-"):
			v.add(path+".template_id", `must be a SendGrid dynamic template id starting with "d-" (got %q)`, m.TemplateID)
		}
		if len(m.Data) == 0 {
			v.add(path+".data", "missing template data")
		}
	default:
		if v.required(path+".subject", m.Subject) {
			if n := runeCount(m.Subject); n > MaxEmailSubjectLength {
				v.add(path+".subject", "must be at most %d characters (got %d)", MaxEmailSubjectLength, n)
			}
		}
		if strings.TrimSpace(m.HTML) == "" && strings.TrimSpace(m.Text) == "" {
			v.add(path, "needs html, text or both")
		}
	}
	v.template(path+".subject", textTemplate, m.Subject)
	v.template(path+".html", htmlTemplate, m.HTML)
	v.template(path+".text", textTemplate, m.Text)
	v.templateData(path+".data", m.Data)
}

// templateData checks every string inside the dynamic template data.
func (v *validator) templateData(path string, value any) {
	switch value := value.(type) {
	case string:
		v.template(path, textTemplate, value)
	case map[string]any:
		keys := make([]string, 0, len(value))
		for k := range value {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			v.templateData(joinKey(path, k), value[k])
		}
	case []any:
		for i, item := range value {
			v.templateData(indexPath(path, i), item)
		}
	}
}

func (v *validator) template(path string, kind templateKind, src string) {
	for _, msg := range checkTemplate(kind, src) {
		v.add(path, "%s", msg)
	}
}

func (v *validator) sms(path string, m *SMSMessage) {
	if v.required(path+".body", m.Body) {
		if n := runeCount(m.Body); n > MaxSMSBodyLength {
			v.add(path+".body", "must be at most %d characters (got %d)", MaxSMSBodyLength, n)
		}
		v.template(path+".body", textTemplate, m.Body)
	}
	for i, raw := range m.MediaURL {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			v.add(indexPath(path+".media_url", i), "must be an absolute http or https URL (got %q)", raw)
		}
	}
}

// graph checks what needs the whole step list: reachability and loops.
func (v *validator) graph() {
	s := v.spec
	for i, ok := range s.reachable() {
		if !ok {
			v.add(indexPath("steps", i), "unreachable from the first step")
		}
	}
	for _, l := range s.loopsWithoutWait() {
		v.add(indexPath("steps", l.from)+"."+l.field, "loop back to %q without a wait, wait_until or wait_for step", s.Steps[l.to].ID)
	}
}

// sendTime checks send_time and its within.
func (v *validator) sendTime(path string, snd *Send) {
	switch snd.SendTime {
	case "", SendTimeBest:
	default:
		v.add(path+".send_time", "unknown send_time %q (use best, or leave it out to send at once)", snd.SendTime)
	}
	if snd.Within == 0 {
		return
	}
	switch {
	case snd.SendTime != SendTimeBest:
		v.add(path+".within", "only with send_time: best")
	case snd.Within < Duration(time.Hour):
		v.add(path+".within", "must be at least 1h (got %s)", snd.Within)
	case snd.Within > MaxSendTimeWithin:
		v.add(path+".within", "must be at most %s: a week holds every hour of the week (got %s)", MaxSendTimeWithin, snd.Within)
	}
}

// choice checks a step that chooses its channel: channel: best, or a
// waterfall. Every channel it may send on needs its message.
func (v *validator) choice(path string, snd *Send) {
	if v.fallback() != "" {
		v.add(path, "policy.fallback_channel cannot be combined with channel: best or a waterfall, which choose the channel themselves")
	}
	if snd.Channel == ChannelBest {
		if len(snd.Waterfall) > 0 {
			v.add(path+".waterfall", "must be empty when channel is best: choose one or the other")
		}
		if len(snd.Candidates()) < 2 {
			v.add(path, "channel best needs a message for at least two channels (email and sms) to choose between")
		}
		return
	}
	if snd.Channel != "" {
		v.add(path+".channel", "must be empty with a waterfall: the stages name the channels")
	}
	if snd.SendTime != "" {
		v.add(path+".send_time", "cannot be combined with a waterfall")
	}
	seen := map[Channel]bool{}
	for i, st := range snd.Waterfall {
		p := fmt.Sprintf("%s.waterfall[%d]", path, i)
		switch st.Channel {
		case ChannelEmail:
			if snd.Email == nil {
				v.add(p+".channel", "the step has no email message for this stage (add send.email)")
			}
		case ChannelSMS:
			if snd.SMS == nil {
				v.add(p+".channel", "the step has no sms message for this stage (add send.sms)")
			}
		case "":
			v.add(p+".channel", "required (email or sms)")
		default:
			v.add(p+".channel", "unknown channel %q (use email or sms)", st.Channel)
		}
		if st.Channel != "" && seen[st.Channel] {
			v.add(p+".channel", "%s is already an earlier stage", st.Channel)
		}
		seen[st.Channel] = true
		switch {
		case i == 0 && st.After != 0:
			v.add(p+".after", "must be empty on the first stage, which is sent at once")
		case i > 0 && st.After <= 0:
			v.add(p+".after", "required: how long the previous stage has to earn an engagement (for example 24h)")
		case i > 0 && st.After > Duration(90*24*time.Hour):
			v.add(p+".after", "must be at most 90d (got %s)", st.After)
		}
	}
	if len(snd.Waterfall) == 1 {
		v.add(path+".waterfall", "needs at least two stages (with one, use channel)")
	}
}

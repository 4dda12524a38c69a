package api

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/tutti-dev/tutti/internal/experiment"
	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/storage"
)

// Reports: what a journey did (its funnel per version) and how its
// experiments came out. Storage counts (storage.Funnel,
// storage.Experiment); experiment.Analyze judges; these handlers put the
// two together with the published specs.

func (s *Server) journeyReport(w http.ResponseWriter, r *http.Request) {
	ans, err := s.buildJourneyReport(r.Context(), r.PathValue("journey_id"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ans)
}

// buildJourneyReport is GET /v1/reports/journeys/{journey_id}'s answer,
// which the report page (report_pages.go) shows too.
func (s *Server) buildJourneyReport(ctx context.Context, id string) (JourneyReport, error) {
	versions, err := s.store.JourneyVersions(ctx, id)
	if err != nil {
		return JourneyReport{}, err
	}
	if len(versions) == 0 {
		return JourneyReport{}, notFound("journey", id, "journey_id")
	}
	sort.Slice(versions, func(i, j int) bool { return versions[i].Version > versions[j].Version })
	ans := JourneyReport{JourneyID: id, GeneratedAt: s.now().UTC(), Versions: []VersionReport{}}
	for _, v := range versions {
		q := storage.FunnelQuery{JourneyID: id, Version: v.Version}
		if v.Spec.Goal != nil {
			q.Goal, q.Window = v.Spec.Goal.Event, v.Spec.Goal.ConversionWindow()
		}
		f, err := s.store.Funnel(ctx, q)
		if err != nil {
			return JourneyReport{}, err
		}
		ans.Versions = append(ans.Versions, versionReport(v, f))
	}
	return ans, nil
}

// versionReport lays one version's counts over its steps.
func versionReport(v storage.JourneyVersion, f storage.VersionFunnel) VersionReport {
	out := VersionReport{Version: v.Version, Entered: f.Entered, Contacts: f.Contacts, Converted: f.Converted,
		TimeToConvertP50Seconds: f.TimeToConvertP50, TimeToConvertP90Seconds: f.TimeToConvertP90,
		Steps: []StepReport{}, Channels: []ChannelReport{}}
	if g := v.Spec.Goal; g != nil {
		out.Goal, out.ConversionWindow = g.Event, journey.Duration(g.ConversionWindow()).String()
	}
	if f.Converted != nil && f.Entered > 0 {
		p := experiment.Proportion{Successes: *f.Converted, Trials: f.Entered}
		rate := p.Rate()
		out.ConversionRate = &rate
		if ci, err := experiment.Wilson(p, experiment.DefaultConfidence); err == nil {
			out.ConversionRateCI = &ci
		}
	}
	sends := map[string]*StepSends{}
	for _, c := range f.Sends {
		ss := sends[c.StepID]
		if ss == nil {
			ss = &StepSends{SkippedByReason: map[string]int64{}, FailedByReason: map[string]int64{}, ByStatus: map[model.MessageStatus]int64{}}
			sends[c.StepID] = ss
		}
		ss.Messages += c.Count
		ss.ByStatus[c.Status] += c.Count
		switch c.Status.Outcome() {
		case model.OutcomeSent:
			ss.Sent += c.Count
		case model.OutcomeSkipped:
			ss.Skipped += c.Count
			ss.SkippedByReason[reasonOrNone(c.Reason)] += c.Count
		case model.OutcomeFailed:
			ss.Failed += c.Count
			ss.FailedByReason[reasonOrNone(c.Reason)] += c.Count
		case model.OutcomeUnknown:
			ss.Unknown += c.Count
		default:
			ss.Pending += c.Count
		}
	}
	for _, st := range v.Spec.Steps {
		sr := StepReport{StepID: st.ID, Kind: st.Kind()}
		switch st.Kind() {
		case journey.KindSend:
			n := f.Reached[st.ID]
			sr.Reached = &n
			sr.Sends = sends[st.ID]
			if sr.Sends == nil {
				sr.Sends = &StepSends{SkippedByReason: map[string]int64{}, FailedByReason: map[string]int64{}, ByStatus: map[model.MessageStatus]int64{}}
			}
			sr.Sends.Deferred = f.Deferred[st.ID]
		case journey.KindSplit:
			var n int64
			sr.Variants = map[string]int64{}
			for _, vr := range st.Split.Variants {
				sr.Variants[vr.Name] = f.Assigned[st.Split.Experiment][vr.Name]
			}
			for _, c := range f.Assigned[st.Split.Experiment] {
				n += c
			}
			sr.Reached = &n
		}
		out.Steps = append(out.Steps, sr)
	}
	for _, ch := range v.Spec.Channels() {
		cr := ChannelReport{Channel: ch, SentTo: f.SentTo[ch], OptedOut: f.OptedOut[ch]}
		if f.Entered > 0 {
			cr.OptOutRate = float64(cr.OptedOut) / float64(f.Entered)
		}
		out.Channels = append(out.Channels, cr)
	}
	out.BySegment = []SegmentConversion{}
	segs := make([]string, 0, len(f.BySegment))
	for id := range f.BySegment {
		segs = append(segs, id)
	}
	sort.Strings(segs)
	for _, id := range segs {
		sf := f.BySegment[id]
		sc := SegmentConversion{Segment: id, Entered: sf.Entered}
		if f.Converted != nil {
			sc.Converted, sc.ConversionRate, sc.ConversionRateCI = conversion(sf.Converted, sf.Entered)
		}
		out.BySegment = append(out.BySegment, sc)
	}
	out.ByPath = make([]PathConversion, 0, len(f.ByPath))
	for _, pf := range f.ByPath {
		pc := PathConversion{Kind: pf.Kind, Steps: pf.Steps, Truncated: pf.Truncated, Paths: pf.Paths, Entered: pf.Entered}
		if pc.Steps == nil {
			pc.Steps = []string{}
		}
		pc.Path = strings.Join(pc.Steps, PathSeparator)
		if f.Converted != nil {
			pc.Converted, pc.ConversionRate, pc.ConversionRateCI = conversion(pf.Converted, pf.Entered)
			pc.TimeToConvertP50Seconds = pf.TimeToConvertP50
		}
		out.ByPath = append(out.ByPath, pc)
	}
	if v.Spec.Holdout != nil {
		out.Holdout = map[string]int64{}
		for group, n := range f.Assigned[journey.GroupHoldout] {
			out.Holdout[group] = n
		}
	}
	return out
}

// conversion is converted out of entered, its rate and the rate's 95%
// Wilson interval (nil without entries), for a version with a goal.
func conversion(converted, entered int64) (*int64, *float64, *experiment.Interval) {
	if entered == 0 {
		return &converted, nil, nil
	}
	p := experiment.Proportion{Successes: converted, Trials: entered}
	rate := p.Rate()
	ci, err := experiment.Wilson(p, experiment.DefaultConfidence)
	if err != nil {
		return &converted, &rate, nil
	}
	return &converted, &rate, &ci
}

func reasonOrNone(r string) string {
	if r == "" {
		return "none"
	}
	return r
}

func (s *Server) experimentReport(w http.ResponseWriter, r *http.Request) {
	ans, err := s.buildExperimentReport(r.Context(), r.PathValue("journey_id"), r.PathValue("experiment"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ans)
}

// buildExperimentReport is GET
// /v1/reports/journeys/{journey_id}/experiments/{experiment}'s answer,
// which the report page shows too.
func (s *Server) buildExperimentReport(ctx context.Context, id, name string) (ExperimentReport, error) {
	versions, err := s.store.JourneyVersions(ctx, id)
	if err != nil {
		return ExperimentReport{}, err
	}
	if len(versions) == 0 {
		return ExperimentReport{}, notFound("journey", id, "journey_id")
	}
	sort.Slice(versions, func(i, j int) bool { return versions[i].Version > versions[j].Version })
	var (
		jv     storage.JourneyVersion
		design experiment.Design
		found  bool
	)
	for _, v := range versions {
		if design, found = experimentDesign(v.Spec, name); found {
			jv = v
			break
		}
	}
	if !found {
		return ExperimentReport{}, &Error{Status: http.StatusNotFound, Code: "not_found",
			Message: fmt.Sprintf("no version of journey %q has a split with experiment %q, or a holdout (experiment %q)", id, name, journey.GroupHoldout),
			Fields:  []FieldError{{Path: "experiment", Message: "no such experiment in the journey"}}}
	}
	goal := jv.Spec.Goal // validation requires one with a split or a holdout
	if goal == nil {
		goal = &journey.Goal{}
	}
	counts, err := s.store.Experiment(ctx, storage.ExperimentQuery{JourneyID: id, Experiment: name,
		Goal: goal.Event, Window: goal.ConversionWindow()})
	if err != nil {
		return ExperimentReport{}, err
	}
	groups := experimentGroups(counts.Groups, design)
	analysis, err := experiment.Analyze(groups, design)
	if err != nil {
		return ExperimentReport{}, err
	}
	return ExperimentReport{JourneyID: id, Experiment: name, Version: jv.Version,
		Goal: goal.Event, ConversionWindow: journey.Duration(goal.ConversionWindow()).String(),
		Control: design.Control, Confidence: design.Confidence, ControlGroupExcluded: counts.ControlGroupExcluded,
		GeneratedAt: s.now().UTC(), Analysis: analysis}, nil
}

// experimentDesign is how spec judges the named experiment: a split's
// variants with their weights against its control (and the holdout, when
// the journey has one), or, for "holdout", the journey against its holdout.
func experimentDesign(spec journey.Spec, name string) (experiment.Design, bool) {
	d := experiment.Design{Confidence: experiment.DefaultConfidence, MixingSD: experiment.DefaultMixingSD, Weights: map[string]float64{}}
	if name == journey.GroupHoldout {
		if spec.Holdout == nil {
			return d, false
		}
		d.Control = journey.GroupHoldout
		d.Weights[journey.GroupHoldout] = spec.Holdout.Share
		d.Weights[journey.GroupTreatment] = 1 - spec.Holdout.Share
		return d, true
	}
	st, ok := spec.SplitFor(name)
	if !ok {
		return d, false
	}
	d.Control = st.Split.ControlVariant()
	for _, v := range st.Split.Variants {
		d.Weights[v.Name] = float64(v.Weight)
	}
	if spec.Holdout != nil {
		d.Holdout = journey.GroupHoldout
	}
	return d, true
}

// experimentGroups orders the counted groups as the design lists them
// (control first, then the variants, then groups recorded under an older
// version, then the holdout), with an empty entry for a designed group
// no one entered yet.
func experimentGroups(counted []experiment.Counts, d experiment.Design) []experiment.Counts {
	byName := map[string]experiment.Counts{}
	for _, c := range counted {
		byName[c.Group] = c
	}
	names := []string{d.Control}
	var weighted []string
	for g := range d.Weights {
		if g != d.Control {
			weighted = append(weighted, g)
		}
	}
	sort.Strings(weighted)
	names = append(names, weighted...)
	var others []string
	for _, c := range counted {
		if _, ok := d.Weights[c.Group]; !ok && c.Group != d.Control && c.Group != d.Holdout {
			others = append(others, c.Group)
		}
	}
	sort.Strings(others)
	names = append(names, others...)
	if d.Holdout != "" {
		names = append(names, d.Holdout)
	}
	out := make([]experiment.Counts, 0, len(names))
	for _, n := range names {
		c, ok := byName[n]
		if !ok {
			c = experiment.Counts{Group: n}
		}
		out = append(out, c)
	}
	return out
}

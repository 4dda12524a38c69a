package storage

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tutti-dev/tutti/internal/experiment"
	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
)

// Reports count what journeys did, for GET /v1/reports/...: each report
// is one read-only snapshot (readReport) that reads one journey's rows
// through indexes that start with the journey (enrollments_journey_version,
// messages_journey_step, decisions_journey_deferred, the assignments key,
// messages_journey_bounced, report_reach) and joins them to the few rows
// of other tables that matter (the goal's events through events_name,
// revocations through consent_events_revoked, spam complaints), rather
// than probing per run or contact: README "Reports at scale" has the
// figures at a million ledger rows and the plans.
//
// A conversion is the first goal event at or after entry and no later
// than the goal's conversion window after it; it is counted from the
// events table, the same way for every group, whether the run was still
// going when it came or not.

// FunnelQuery names one journey version's funnel.
type FunnelQuery struct {
	JourneyID string
	Version   int
	// Goal is the version's goal event ("" none: no conversions counted)
	// and Window its conversion window.
	Goal   string
	Window time.Duration
	// MaxPaths is how many paths ByPath lists one by one; 0 means MaxPaths.
	MaxPaths int
}

// VersionFunnel is one journey version's counts.
type VersionFunnel struct {
	// Entered counts runs (enrollments); Contacts the distinct contacts.
	Entered  int64
	Contacts int64
	// Converted counts runs with a goal event in the window after entry;
	// TimeToConvertP50/P90 are seconds from entry to it. Nil without a goal.
	Converted        *int64
	TimeToConvertP50 *float64
	TimeToConvertP90 *float64
	// Sends counts the version's ledger rows by step, status and reason.
	Sends []StepSendCount
	// Reached counts, per send step, the distinct contacts with a ledger
	// row for it; Deferred the sends the gate deferred at least once.
	Reached  map[string]int64
	Deferred map[string]int64
	// Assigned counts contacts first assigned to each group at this
	// version, by experiment and group (a split's variants, the holdout).
	Assigned map[string]map[string]int64
	// OptedOut counts runs during which the contact revoked consent on a
	// channel (an unsubscribe, a STOP, any subscription), by channel.
	OptedOut map[journey.Channel]int64
	// SentTo counts distinct contacts sent at least one message, by channel.
	SentTo map[journey.Channel]int64
	// BySegment counts, per segment, the runs whose contact was in it when
	// the run began, and how many of those converted.
	BySegment map[string]SegmentFunnel
	// ByPath counts the runs that ended by the path they took: the
	// FunnelQuery.MaxPaths paths most runs took, most first, then at most one
	// PathOther row for the rest and one PathUnrecorded row for ended
	// runs with no recorded path (ended before paths were recorded).
	ByPath []PathFunnel
}

// MaxPaths is how many paths the funnel lists one by one by default.
const MaxPaths = 20

// Kinds of PathFunnel row.
const (
	PathOne        = "path"
	PathOther      = "other"
	PathUnrecorded = "unrecorded"
)

// PathFunnel is a version's ended runs that took one path (Kind
// PathOne), the paths beyond MaxPaths (PathOther), or no recorded path
// (PathUnrecorded).
type PathFunnel struct {
	Kind string
	// Steps is the path's step ids in order, and Truncated whether its
	// front was dropped (runs whose state outgrew its bound); for PathOne.
	Steps     []string
	Truncated bool
	// Paths counts the distinct paths in the row: 1 for PathOne.
	Paths              int64
	Entered, Converted int64
	// TimeToConvertP50 is the median seconds from entry to the goal; nil
	// when none converted.
	TimeToConvertP50 *float64
}

// SegmentFunnel is a version's runs that began in one segment.
type SegmentFunnel struct {
	Entered, Converted int64
}

// StepSendCount is a number of ledger rows of one step with one status and reason.
type StepSendCount struct {
	StepID string
	Status model.MessageStatus
	Reason string
	Count  int64
}

// Funnel counts one journey version's funnel.
func (s *Store) Funnel(ctx context.Context, fq FunnelQuery) (VersionFunnel, error) {
	what := fmt.Sprintf("funnel of journey %s version %d", fq.JourneyID, fq.Version)
	f := VersionFunnel{Reached: map[string]int64{}, Deferred: map[string]int64{}, Assigned: map[string]map[string]int64{},
		OptedOut: map[journey.Channel]int64{}, SentTo: map[journey.Channel]int64{}, BySegment: map[string]SegmentFunnel{}}
	var converted int64
	err := s.readReport(ctx, func(q rowsQuerier) error {
		if err := funnelQueries(ctx, q, what, fq, &f, &converted); err != nil {
			return err
		}
		var err error
		f.ByPath, err = funnelByPath(ctx, q, what, fq)
		return err
	})
	if err != nil {
		return VersionFunnel{}, err
	}
	if fq.Goal != "" {
		f.Converted = &converted
	}
	return f, nil
}

// funnelConversions is the CTE of a version's converted runs (c): the
// goal's events (events_name, index only) joined to the contact's runs of
// the version (enrollments_journey_version, index only), the first in each
// run's window. Work per goal event rather than per run: goal events are a
// small share of all events, runs are many.
const funnelConversions = `
	WITH c AS MATERIALIZED (
		SELECT en.id, en.contact_id, en.started_at, min(ev.occurred_at) AS first_at
		FROM events ev JOIN enrollments en ON en.journey_id = $1 AND en.version = $2 AND en.contact_id = ev.contact_id
		                                  AND ev.occurred_at >= en.started_at AND ev.occurred_at <= en.started_at + $4::interval
		WHERE ev.name = $3 AND $3 <> ''
		GROUP BY en.id, en.contact_id, en.started_at
	)`

func funnelQueries(ctx context.Context, db rowsQuerier, what string, q FunnelQuery, f *VersionFunnel, converted *int64) error {
	// Entries (kind 1) and conversion by segment (kind 2: the segments the
	// contact was in when the run began, a membership open at started_at,
	// counted like the whole) in one statement: the conversions are worked
	// out once.
	if err := reportRows(ctx, db, what+": entries", func(r pgx.Rows) error {
		var (
			kind                    int
			segment                 string
			entered, contacts, conv int64
			p50, p90                *float64
		)
		if err := r.Scan(&kind, &segment, &entered, &contacts, &conv, &p50, &p90); err != nil {
			return err
		}
		if kind == 1 {
			f.Entered, f.Contacts, *converted, f.TimeToConvertP50, f.TimeToConvertP90 = entered, contacts, conv, p50, p90
		} else {
			f.BySegment[segment] = SegmentFunnel{Entered: entered, Converted: conv}
		}
		return nil
	}, funnelConversions+`
		SELECT 1, '', d.runs, d.contacts, cc.n, cc.p50, cc.p90
		FROM (SELECT COALESCE(sum(n), 0)::bigint AS runs, count(*) AS contacts FROM (
		          SELECT contact_id, count(*) AS n FROM enrollments WHERE journey_id = $1 AND version = $2 GROUP BY contact_id
		      ) g) d,
		     (SELECT count(*) AS n,
		             percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM first_at - started_at)) AS p50,
		             percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM first_at - started_at)) AS p90
		      FROM c) cc
		UNION ALL
		SELECT 2, segment_id, sum(entered)::bigint, 0, sum(converted)::bigint, NULL, NULL FROM (
		    SELECT m.segment_id, count(*) AS entered, 0 AS converted
		    FROM enrollments en JOIN segment_memberships m ON m.contact_id = en.contact_id AND m.entered_at <= en.started_at
		                                                  AND (m.exited_at IS NULL OR m.exited_at > en.started_at)
		    WHERE en.journey_id = $1 AND en.version = $2
		    GROUP BY m.segment_id
		    UNION ALL
		    SELECT m.segment_id, 0, count(*)
		    FROM c JOIN segment_memberships m ON m.contact_id = c.contact_id AND m.entered_at <= c.started_at
		                                     AND (m.exited_at IS NULL OR m.exited_at > c.started_at)
		    GROUP BY m.segment_id
		) s GROUP BY segment_id`, q.JourneyID, q.Version, q.Goal, q.Window); err != nil {
		return err
	}
	if err := reportRows(ctx, db, what+": sends", func(r pgx.Rows) error {
		var c StepSendCount
		if err := r.Scan(&c.StepID, &c.Status, &c.Reason, &c.Count); err != nil {
			return err
		}
		f.Sends = append(f.Sends, c)
		return nil
	}, `
		SELECT step_id, status, COALESCE(status_reason, ''), count(*) FROM messages
		WHERE journey_id = $1 AND journey_version = $2
		GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`, q.JourneyID, q.Version); err != nil {
		return err
	}
	if err := reportRows(ctx, db, what+": reached", func(r pgx.Rows) error {
		var step string
		var n int64
		if err := r.Scan(&step, &n); err != nil {
			return err
		}
		f.Reached[step] = n
		return nil
	}, `
		SELECT step_id, count(*) FROM (
		    SELECT DISTINCT step_id, contact_id FROM messages WHERE journey_id = $1 AND journey_version = $2
		) d GROUP BY 1`, q.JourneyID, q.Version); err != nil {
		return err
	}
	if err := reportRows(ctx, db, what+": sent to", func(r pgx.Rows) error {
		var ch journey.Channel
		var n int64
		if err := r.Scan(&ch, &n); err != nil {
			return err
		}
		f.SentTo[ch] = n
		return nil
	}, `
		SELECT channel, count(*) FROM (
		    SELECT DISTINCT channel, contact_id FROM messages
		    WHERE journey_id = $1 AND journey_version = $2 AND status = ANY($3)
		) d GROUP BY 1`,
		q.JourneyID, q.Version, sentStatuses()); err != nil {
		return err
	}
	if err := reportRows(ctx, db, what+": deferred", func(r pgx.Rows) error {
		var step string
		var n int64
		if err := r.Scan(&step, &n); err != nil {
			return err
		}
		f.Deferred[step] = n
		return nil
	}, `
		SELECT step_id, count(DISTINCT idempotency_key) FROM decisions
		WHERE journey_id = $1 AND journey_version = $2 AND outcome = 'defer' GROUP BY 1`, q.JourneyID, q.Version); err != nil {
		return err
	}
	if err := reportRows(ctx, db, what+": assignments", func(r pgx.Rows) error {
		var exp, group string
		var n int64
		if err := r.Scan(&exp, &group, &n); err != nil {
			return err
		}
		if f.Assigned[exp] == nil {
			f.Assigned[exp] = map[string]int64{}
		}
		f.Assigned[exp][group] = n
		return nil
	}, `
		SELECT experiment, variant, count(*) FROM assignments
		WHERE journey_id = $1 AND journey_version = $2 GROUP BY 1, 2`, q.JourneyID, q.Version); err != nil {
		return err
	}
	if err := reportRows(ctx, db, what+": opt-outs", func(r pgx.Rows) error {
		var ch journey.Channel
		var n int64
		if err := r.Scan(&ch, &n); err != nil {
			return err
		}
		f.OptedOut[ch] = n
		return nil
	}, `
		SELECT ce.channel, count(DISTINCT e.id)
		FROM enrollments e
		JOIN consent_events ce ON ce.contact_id = e.contact_id
		WHERE e.journey_id = $1 AND e.version = $2 AND ce.status = 'revoked'
		  AND ce.occurred_at >= e.started_at AND ce.occurred_at <= COALESCE(e.ended_at, now())
		GROUP BY 1`, q.JourneyID, q.Version); err != nil {
		return err
	}
	return nil
}

// funnelByPath counts the version's ended runs by path, counting
// conversions like the whole: the SQL counts each distinct path's runs
// (one hash aggregation over the version's ended runs) and, apart, lists
// the times to convert of its converted runs (funnelConversions,
// each looked up by id); bucketPaths puts the two together, ranks and
// buckets them.
func funnelByPath(ctx context.Context, db rowsQuerier, what string, q FunnelQuery) ([]PathFunnel, error) {
	var counts []pathCount
	err := reportRows(ctx, db, what+": by path", func(r pgx.Rows) error {
		var (
			p         pathCount
			truncated *bool
		)
		if err := r.Scan(&p.recorded, &p.steps, &truncated, &p.runs, &p.toConvert); err != nil {
			return err
		}
		p.truncated = truncated != nil && *truncated
		counts = append(counts, p)
		return nil
	}, funnelConversions+`
		SELECT path IS NOT NULL, path, path_truncated, count(*), '{}'::float8[]
		FROM enrollments WHERE journey_id = $1 AND version = $2 AND status <> 'active'
		GROUP BY path, path_truncated
		UNION ALL
		SELECT en.path IS NOT NULL, en.path, en.path_truncated, 0, array_agg(extract(epoch FROM c.first_at - c.started_at)::float8)
		FROM c JOIN enrollments en ON en.id = c.id
		WHERE en.status <> 'active'
		GROUP BY en.path, en.path_truncated`, q.JourneyID, q.Version, q.Goal, q.Window)
	if err != nil {
		return nil, err
	}
	limit := q.MaxPaths
	if limit <= 0 {
		limit = MaxPaths
	}
	return bucketPaths(counts, limit), nil
}

// pathCount is one distinct path's ended runs: recorded false for the
// runs with no recorded path; toConvert lists the seconds from entry to
// the goal of those that converted.
type pathCount struct {
	recorded  bool
	steps     []string
	truncated bool
	runs      int64
	toConvert []float64
}

// bucketPaths ranks paths by runs, most first (ties: the steps joined by
// spaces in byte order, then whole before truncated): the first limit are
// PathOne rows in that order, the rest one PathOther row, and the runs
// with no recorded path one PathUnrecorded row, last. A truncated path is
// not the same as the whole one that ends alike. Each row's
// TimeToConvertP50 is the median (interpolated, as percentile_cont) of its
// runs' times to convert.
func bucketPaths(counts []pathCount, limit int) []PathFunnel {
	// A path may come in more than one row (its runs and its
	// conversions are counted apart): one per path here.
	byKey := map[string]int{}
	var merged []pathCount
	for _, c := range counts {
		key := fmt.Sprintf("%t %t %q", c.recorded, c.truncated, c.steps)
		i, ok := byKey[key]
		if !ok {
			byKey[key] = len(merged)
			merged = append(merged, pathCount{recorded: c.recorded, steps: c.steps, truncated: c.truncated})
			i = len(merged) - 1
		}
		merged[i].runs += c.runs
		merged[i].toConvert = append(merged[i].toConvert, c.toConvert...)
	}
	var paths []pathCount
	var unrecorded *pathCount
	for i := range merged {
		c := merged[i]
		if !c.recorded {
			if unrecorded == nil {
				unrecorded = &pathCount{}
			}
			unrecorded.runs += c.runs
			unrecorded.toConvert = append(unrecorded.toConvert, c.toConvert...)
			continue
		}
		paths = append(paths, c)
	}
	slices.SortFunc(paths, func(a, b pathCount) int {
		if c := cmp.Compare(b.runs, a.runs); c != 0 {
			return c
		}
		if c := strings.Compare(strings.Join(a.steps, " "), strings.Join(b.steps, " ")); c != 0 {
			return c
		}
		switch {
		case a.truncated == b.truncated:
			return 0
		case !a.truncated:
			return -1
		}
		return 1
	})
	row := func(kind string, n int64, cs ...pathCount) PathFunnel {
		p := PathFunnel{Kind: kind, Paths: n}
		var times []float64
		for _, c := range cs {
			p.Entered += c.runs
			p.Converted += int64(len(c.toConvert))
			times = append(times, c.toConvert...)
		}
		p.TimeToConvertP50 = median(times)
		return p
	}
	var out []PathFunnel
	for i, c := range paths {
		if i == limit {
			out = append(out, row(PathOther, int64(len(paths)-limit), paths[limit:]...))
			break
		}
		p := row(PathOne, 1, c)
		p.Steps, p.Truncated = c.steps, c.truncated
		if p.Steps == nil {
			p.Steps = []string{}
		}
		out = append(out, p)
	}
	if unrecorded != nil {
		out = append(out, row(PathUnrecorded, 0, *unrecorded))
	}
	return out
}

// median is the 0.5 percentile of xs with linear interpolation between
// the two middle values (PostgreSQL's percentile_cont(0.5)); nil for none.
func median(xs []float64) *float64 {
	if len(xs) == 0 {
		return nil
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	pos := 0.5 * float64(len(s)-1)
	lo := int(pos)
	m := s[lo]
	if hi := lo + 1; hi < len(s) {
		m += (pos - float64(lo)) * (s[hi] - s[lo])
	}
	return &m
}

// sentStatuses are the ledger statuses a provider accepted.
func sentStatuses() []string {
	var out []string
	for _, st := range []model.MessageStatus{model.MessageSent, model.MessageDelivered, model.MessageOpened,
		model.MessageClicked, model.MessageBounced, model.MessageComplained} {
		out = append(out, string(st))
	}
	return out
}

// ExperimentQuery names an experiment of a journey and how to count it.
type ExperimentQuery struct {
	JourneyID string
	// Experiment is a split's experiment name, or journey.GroupHoldout for
	// the journey's holdout (groups holdout and treatment).
	Experiment string
	Goal       string
	Window     time.Duration
}

// ExperimentCounts is an experiment's counts by group.
type ExperimentCounts struct {
	// Groups are the split's variants (or holdout and treatment) as
	// recorded, and for a split, "holdout": the held-out contacts who
	// reached the split, whatever variant they were given. Contacts in the
	// workspace control group are left out of every group: they were sent
	// no marketing, whatever their group (membership is a hash independent
	// of the experiment's, so leaving them out biases no group).
	Groups []experiment.Counts
	// ControlGroupExcluded counts those left out.
	ControlGroupExcluded int64
}

// experimentReport counts an experiment in one statement, whose rows are
// of three kinds (1 a group, 2 a group's day, 3 a group's send step), so
// that the experiment's contacts (a: their group, when they entered it,
// whether they are left out, their conversion and guardrails) are worked
// out once. Conversions and guardrails are joins of the contacts to the
// rows that matter (goal events through events_name, revocations through
// consent_events_revoked, bounces through messages_journey_bounced),
// small shares of their tables, rather than a lookup per contact; steps
// from report_reach, one row per contact and step.
const experimentReport = `
	WITH a0 AS MATERIALIZED (
		SELECT a.contact_id, a.assigned_at,
		       CASE WHEN $2 <> 'holdout' AND h.variant = 'holdout' THEN 'holdout' ELSE a.variant END AS grp,
		       (cg.variant IS NOT DISTINCT FROM 'control_group') AS excluded
		FROM assignments a
		LEFT JOIN assignments h ON h.journey_id = a.journey_id AND h.experiment = 'holdout' AND h.contact_id = a.contact_id
		LEFT JOIN assignments cg ON cg.journey_id = '' AND cg.experiment = 'control_group' AND cg.contact_id = a.contact_id
		WHERE a.journey_id = $1 AND a.experiment = $2
	), a AS MATERIALIZED (
		SELECT a0.*, c.first_at, u.contact_id IS NOT NULL AS unsubscribed, sp.contact_id IS NOT NULL AS spam,
		       b.contact_id IS NOT NULL AS bounced
		FROM a0
		LEFT JOIN (
		    SELECT a0.contact_id, min(ev.occurred_at) AS first_at
		    FROM a0 JOIN events ev ON ev.name = $3 AND ev.contact_id = a0.contact_id
		                         AND ev.occurred_at >= a0.assigned_at AND ev.occurred_at <= a0.assigned_at + $4::interval
		    GROUP BY 1
		) c USING (contact_id)
		LEFT JOIN (
		    SELECT DISTINCT a0.contact_id
		    FROM a0 JOIN consent_events ce ON ce.status = 'revoked' AND ce.contact_id = a0.contact_id
		                                 AND ce.occurred_at >= a0.assigned_at AND ce.occurred_at <= a0.assigned_at + $4::interval
		) u USING (contact_id)
		LEFT JOIN (
		    SELECT DISTINCT a0.contact_id
		    FROM a0 JOIN suppressions su ON su.reason = 'spam_complaint' AND su.contact_id = a0.contact_id
		                               AND su.created_at >= a0.assigned_at AND su.created_at <= a0.assigned_at + $4::interval
		) sp USING (contact_id)
		LEFT JOIN (
		    SELECT DISTINCT a0.contact_id
		    FROM a0 JOIN messages m ON m.status = 'bounced' AND m.journey_id = $1 AND m.contact_id = a0.contact_id
		                           AND m.created_at >= a0.assigned_at AND m.created_at <= a0.assigned_at + $4::interval
		) b USING (contact_id)
	)
	SELECT 1 AS kind, grp, '' AS step, excluded, NULL::timestamptz AS day, count(*), count(first_at),
	       count(*) FILTER (WHERE unsubscribed), count(*) FILTER (WHERE spam), count(*) FILTER (WHERE bounced),
	       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM first_at - assigned_at)),
	       percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM first_at - assigned_at))
	FROM a GROUP BY grp, excluded
	UNION ALL
	SELECT 2, grp, '', false, day::timestamp AT TIME ZONE 'UTC', sum(entered)::bigint, sum(converted)::bigint, 0, 0, 0, NULL, NULL
	FROM (
	    SELECT grp, (assigned_at AT TIME ZONE 'UTC')::date AS day, 1 AS entered, 0 AS converted FROM a WHERE NOT excluded
	    UNION ALL
	    SELECT grp, (first_at AT TIME ZONE 'UTC')::date, 0, 1 FROM a WHERE NOT excluded AND first_at IS NOT NULL
	) d GROUP BY grp, day
	UNION ALL
	-- A contact reached a step from entering its group on if its newest
	-- ledger row of the step is no older than that, and was sent it if its
	-- newest row sent is (report_reach, 00021, kept by a trigger).
	SELECT 3, a.grp, m.step_id, false, NULL, count(*) FILTER (WHERE m.last_at >= a.assigned_at),
	       count(*) FILTER (WHERE m.last_sent_at >= a.assigned_at), 0, 0, 0, NULL, NULL
	FROM a JOIN report_reach m ON m.journey_id = $1 AND m.contact_id = a.contact_id
	WHERE NOT a.excluded
	GROUP BY a.grp, m.step_id
	HAVING count(*) FILTER (WHERE m.last_at >= a.assigned_at) > 0
	ORDER BY kind, grp, step, day`

// Experiment counts an experiment's groups: entries, conversions in the
// window, time to convert, guardrails in the window (an opt-out on any
// channel, a spam complaint, a bounced message of the journey), the
// daily entries and conversions its sequential test looks at, and the
// contacts reaching and sent each send step from entering the group on.
func (s *Store) Experiment(ctx context.Context, q ExperimentQuery) (ExperimentCounts, error) {
	what := fmt.Sprintf("experiment %s of journey %s", q.Experiment, q.JourneyID)
	var out ExperimentCounts
	byGroup := map[string]*experiment.Counts{}
	var order []string
	err := s.readReport(ctx, func(db rowsQuerier) error {
		return reportRows(ctx, db, what, func(r pgx.Rows) error {
			var (
				kind               int
				group, step        string
				excluded           bool
				day                *time.Time
				n1, n2, n3, n4, n5 int64
				p50, p90           *float64
			)
			if err := r.Scan(&kind, &group, &step, &excluded, &day, &n1, &n2, &n3, &n4, &n5, &p50, &p90); err != nil {
				return err
			}
			switch kind {
			case 1: // rows of kind 1 come first
				if excluded {
					out.ControlGroupExcluded += n1
					return nil
				}
				byGroup[group] = &experiment.Counts{Group: group, Entered: n1, Converted: n2, TimeToConvertP50: p50, TimeToConvertP90: p90,
					Unsubscribed: n3, SpamComplaints: n4, Bounced: n5}
				order = append(order, group)
			case 2:
				if c := byGroup[group]; c != nil && day != nil {
					c.Daily = append(c.Daily, experiment.Day{Day: day.UTC(), Entered: n1, Converted: n2})
				}
			case 3:
				if c := byGroup[group]; c != nil {
					if c.Steps == nil {
						c.Steps = map[string]experiment.StepCounts{}
					}
					c.Steps[step] = experiment.StepCounts{Reached: n1, Sent: n2}
				}
			}
			return nil
		}, experimentReport, q.JourneyID, q.Experiment, q.Goal, q.Window)
	})
	if err != nil {
		return ExperimentCounts{}, err
	}
	for _, g := range order {
		out.Groups = append(out.Groups, *byGroup[g])
	}
	return out, nil
}

// readReport runs a report's queries in one read-only transaction: they
// count one snapshot, so a report's figures agree with each other (a send
// settled between two queries is not counted in one and missed in the
// other). JIT is off for it: at a million ledger rows the planner's costs
// pass jit_above_cost, and compiling took 100-500 ms a query, more than
// most queries take. work_mem is raised for the transaction so that the
// hashes and DISTINCTs over a version's rows stay in memory.
func (s *Store) readReport(ctx context.Context, fn func(q rowsQuerier) error) error {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("report: beginning transaction: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // read only: nothing to keep or lose
	if _, err := tx.Exec(ctx, `SELECT set_config('jit', 'off', true), set_config('work_mem', '64MB', true)`); err != nil {
		return fmt.Errorf("report: settings: %w", err)
	}
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// reportRows runs query and calls fn for each row.
func reportRows(ctx context.Context, q rowsQuerier, what string, fn func(pgx.Rows) error, query string, args ...any) error {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

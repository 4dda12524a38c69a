package storage

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tutti-dev/tutti/internal/experiment"
	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
)

// Reports count what journeys did, for GET /v1/reports/...: each method
// reads one journey's rows through an index that starts with the journey
// (enrollments_journey, messages_journey_step, decisions_journey_deferred,
// the assignments key), and looks a contact's goal events, consent
// changes and suppressions up by contact (events_contact,
// consent_events_contact, suppressions_contact).
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
func (s *Store) Funnel(ctx context.Context, q FunnelQuery) (VersionFunnel, error) {
	what := fmt.Sprintf("funnel of journey %s version %d", q.JourneyID, q.Version)
	f := VersionFunnel{Reached: map[string]int64{}, Deferred: map[string]int64{}, Assigned: map[string]map[string]int64{},
		OptedOut: map[journey.Channel]int64{}, SentTo: map[journey.Channel]int64{}, BySegment: map[string]SegmentFunnel{}}
	var converted int64
	err := s.pool.QueryRow(ctx, `
		SELECT count(*), count(DISTINCT e.contact_id), count(c.first_at),
		       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM c.first_at - e.started_at)),
		       percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM c.first_at - e.started_at))
		FROM enrollments e
		LEFT JOIN LATERAL (
		    SELECT min(ev.occurred_at) AS first_at FROM events ev
		    WHERE $3 <> '' AND ev.contact_id = e.contact_id AND ev.name = $3
		      AND ev.occurred_at >= e.started_at AND ev.occurred_at <= e.started_at + $4::interval
		) c ON true
		WHERE e.journey_id = $1 AND e.version = $2`,
		q.JourneyID, q.Version, q.Goal, q.Window).Scan(&f.Entered, &f.Contacts, &converted, &f.TimeToConvertP50, &f.TimeToConvertP90)
	if err != nil {
		return VersionFunnel{}, fmt.Errorf("%s: entries: %w", what, err)
	}
	if q.Goal != "" {
		f.Converted = &converted
	}
	// Conversion by segment: the segments the contact was in when the run
	// began (a membership open at started_at), counted like the whole.
	if err := reportRows(ctx, s.pool, what+": by segment", func(r pgx.Rows) error {
		var (
			id string
			sf SegmentFunnel
		)
		if err := r.Scan(&id, &sf.Entered, &sf.Converted); err != nil {
			return err
		}
		f.BySegment[id] = sf
		return nil
	}, `
		SELECT m.segment_id, count(*), count(c.first_at)
		FROM enrollments e
		JOIN segment_memberships m ON m.contact_id = e.contact_id AND m.entered_at <= e.started_at
		                          AND (m.exited_at IS NULL OR m.exited_at > e.started_at)
		LEFT JOIN LATERAL (
		    SELECT min(ev.occurred_at) AS first_at FROM events ev
		    WHERE $3 <> '' AND ev.contact_id = e.contact_id AND ev.name = $3
		      AND ev.occurred_at >= e.started_at AND ev.occurred_at <= e.started_at + $4::interval
		) c ON true
		WHERE e.journey_id = $1 AND e.version = $2
		GROUP BY m.segment_id`, q.JourneyID, q.Version, q.Goal, q.Window); err != nil {
		return VersionFunnel{}, err
	}
	if f.ByPath, err = s.funnelByPath(ctx, what, q); err != nil {
		return VersionFunnel{}, err
	}

	if err := reportRows(ctx, s.pool, what+": sends", func(r pgx.Rows) error {
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
		return VersionFunnel{}, err
	}
	if err := reportRows(ctx, s.pool, what+": reached", func(r pgx.Rows) error {
		var step string
		var n int64
		if err := r.Scan(&step, &n); err != nil {
			return err
		}
		f.Reached[step] = n
		return nil
	}, `
		SELECT step_id, count(DISTINCT contact_id) FROM messages
		WHERE journey_id = $1 AND journey_version = $2 GROUP BY 1`, q.JourneyID, q.Version); err != nil {
		return VersionFunnel{}, err
	}
	if err := reportRows(ctx, s.pool, what+": sent to", func(r pgx.Rows) error {
		var ch journey.Channel
		var n int64
		if err := r.Scan(&ch, &n); err != nil {
			return err
		}
		f.SentTo[ch] = n
		return nil
	}, `
		SELECT channel, count(DISTINCT contact_id) FROM messages
		WHERE journey_id = $1 AND journey_version = $2 AND status = ANY($3) GROUP BY 1`,
		q.JourneyID, q.Version, sentStatuses()); err != nil {
		return VersionFunnel{}, err
	}
	if err := reportRows(ctx, s.pool, what+": deferred", func(r pgx.Rows) error {
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
		return VersionFunnel{}, err
	}
	if err := reportRows(ctx, s.pool, what+": assignments", func(r pgx.Rows) error {
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
		return VersionFunnel{}, err
	}
	if err := reportRows(ctx, s.pool, what+": opt-outs", func(r pgx.Rows) error {
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
		return VersionFunnel{}, err
	}
	return f, nil
}

// funnelByPath counts the version's ended runs by path, counting
// conversions like the whole. A path is its steps and whether its front
// was dropped: a truncated path is not the same as the whole one that
// ends alike. Ties in the top MaxPaths go to the path first in byte order.
func (s *Store) funnelByPath(ctx context.Context, what string, q FunnelQuery) ([]PathFunnel, error) {
	limit := q.MaxPaths
	if limit <= 0 {
		limit = MaxPaths
	}
	var out []PathFunnel
	err := reportRows(ctx, s.pool, what+": by path", func(r pgx.Rows) error {
		var (
			p         PathFunnel
			truncated *bool
		)
		if err := r.Scan(&p.Kind, &p.Steps, &truncated, &p.Paths, &p.Entered, &p.Converted, &p.TimeToConvertP50); err != nil {
			return err
		}
		p.Truncated = truncated != nil && *truncated
		if p.Kind == PathOne && p.Steps == nil {
			p.Steps = []string{} // a run that took no step
		}
		out = append(out, p)
		return nil
	}, `
		WITH runs AS MATERIALIZED (
		    SELECT e.path, e.path_truncated, c.first_at - e.started_at AS to_convert, c.first_at IS NOT NULL AS converted
		    FROM enrollments e
		    LEFT JOIN LATERAL (
		        SELECT min(ev.occurred_at) AS first_at FROM events ev
		        WHERE $3 <> '' AND ev.contact_id = e.contact_id AND ev.name = $3
		          AND ev.occurred_at >= e.started_at AND ev.occurred_at <= e.started_at + $4::interval
		    ) c ON true
		    WHERE e.journey_id = $1 AND e.version = $2 AND e.status <> 'active'
		), ranked AS (
		    SELECT path, path_truncated,
		           row_number() OVER (ORDER BY count(*) DESC, array_to_string(path, ' ') COLLATE "C", path_truncated) AS rank
		    FROM runs WHERE path IS NOT NULL
		    GROUP BY path, path_truncated
		), bucketed AS (
		    SELECT CASE WHEN runs.path IS NULL THEN 'unrecorded' WHEN r.rank <= $5 THEN 'path' ELSE 'other' END AS kind,
		           CASE WHEN r.rank <= $5 THEN r.rank END AS rank, r.rank AS path_rank,
		           CASE WHEN r.rank <= $5 THEN runs.path END AS path,
		           CASE WHEN r.rank <= $5 THEN runs.path_truncated END AS path_truncated,
		           runs.to_convert, runs.converted
		    FROM runs LEFT JOIN ranked r ON r.path = runs.path AND r.path_truncated = runs.path_truncated
		)
		SELECT kind, path, path_truncated, count(DISTINCT path_rank), count(*), count(*) FILTER (WHERE converted),
		       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM to_convert))
		FROM bucketed
		GROUP BY kind, rank, path, path_truncated
		ORDER BY kind = 'unrecorded', kind = 'other', rank`, q.JourneyID, q.Version, q.Goal, q.Window, limit)
	return out, err
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

// experimentGroups is the CTE of an experiment's contacts: their group,
// when they entered it, and whether they are left out.
const experimentGroups = `
	WITH a AS MATERIALIZED (
		SELECT a.contact_id, a.assigned_at,
		       CASE WHEN $2 <> 'holdout' AND h.variant = 'holdout' THEN 'holdout' ELSE a.variant END AS grp,
		       (cg.variant IS NOT DISTINCT FROM 'control_group') AS excluded,
		       (SELECT min(ev.occurred_at) FROM events ev
		        WHERE ev.contact_id = a.contact_id AND ev.name = $3
		          AND ev.occurred_at >= a.assigned_at AND ev.occurred_at <= a.assigned_at + $4::interval) AS first_at
		FROM assignments a
		LEFT JOIN assignments h ON h.journey_id = a.journey_id AND h.experiment = 'holdout' AND h.contact_id = a.contact_id
		LEFT JOIN assignments cg ON cg.journey_id = '' AND cg.experiment = 'control_group' AND cg.contact_id = a.contact_id
		WHERE a.journey_id = $1 AND a.experiment = $2
	)`

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
	err := reportRows(ctx, s.pool, what, func(r pgx.Rows) error {
		var c experiment.Counts
		var excluded bool
		if err := r.Scan(&c.Group, &excluded, &c.Entered, &c.Converted, &c.TimeToConvertP50, &c.TimeToConvertP90,
			&c.Unsubscribed, &c.SpamComplaints, &c.Bounced); err != nil {
			return err
		}
		if excluded {
			out.ControlGroupExcluded += c.Entered
			return nil
		}
		byGroup[c.Group] = &c
		order = append(order, c.Group)
		return nil
	}, experimentGroups+`
		SELECT grp, excluded, count(*), count(first_at),
		       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM first_at - assigned_at)),
		       percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM first_at - assigned_at)),
		       count(*) FILTER (WHERE EXISTS (
		           SELECT 1 FROM consent_events ce WHERE ce.contact_id = a.contact_id AND ce.status = 'revoked'
		           AND ce.occurred_at >= a.assigned_at AND ce.occurred_at <= a.assigned_at + $4::interval)),
		       count(*) FILTER (WHERE EXISTS (
		           SELECT 1 FROM suppressions su WHERE su.contact_id = a.contact_id AND su.reason = 'spam_complaint'
		           AND su.created_at >= a.assigned_at AND su.created_at <= a.assigned_at + $4::interval)),
		       count(*) FILTER (WHERE EXISTS (
		           SELECT 1 FROM messages m WHERE m.contact_id = a.contact_id AND m.journey_id = $1 AND m.status = 'bounced'
		           AND m.created_at >= a.assigned_at AND m.created_at <= a.assigned_at + $4::interval))
		FROM a GROUP BY grp, excluded ORDER BY grp`, q.JourneyID, q.Experiment, q.Goal, q.Window)
	if err != nil {
		return ExperimentCounts{}, err
	}
	err = reportRows(ctx, s.pool, what+": daily", func(r pgx.Rows) error {
		var group string
		var d experiment.Day
		if err := r.Scan(&group, &d.Day, &d.Entered, &d.Converted); err != nil {
			return err
		}
		if c := byGroup[group]; c != nil {
			d.Day = d.Day.UTC()
			c.Daily = append(c.Daily, d)
		}
		return nil
	}, experimentGroups+`
		SELECT grp, day::timestamp AT TIME ZONE 'UTC', sum(entered)::bigint, sum(converted)::bigint FROM (
		    SELECT grp, (assigned_at AT TIME ZONE 'UTC')::date AS day, 1 AS entered, 0 AS converted FROM a WHERE NOT excluded
		    UNION ALL
		    SELECT grp, (first_at AT TIME ZONE 'UTC')::date, 0, 1 FROM a WHERE NOT excluded AND first_at IS NOT NULL
		) d GROUP BY 1, 2 ORDER BY 1, 2`, q.JourneyID, q.Experiment, q.Goal, q.Window)
	if err != nil {
		return ExperimentCounts{}, err
	}
	err = reportRows(ctx, s.pool, what+": steps", func(r pgx.Rows) error {
		var group, step string
		var sc experiment.StepCounts
		if err := r.Scan(&group, &step, &sc.Reached, &sc.Sent); err != nil {
			return err
		}
		if c := byGroup[group]; c != nil {
			if c.Steps == nil {
				c.Steps = map[string]experiment.StepCounts{}
			}
			c.Steps[step] = sc
		}
		return nil
	}, experimentGroups+`
		SELECT a.grp, m.step_id, count(DISTINCT a.contact_id),
		       count(DISTINCT a.contact_id) FILTER (WHERE m.status = ANY($5))
		FROM a JOIN messages m ON m.contact_id = a.contact_id AND m.journey_id = $1 AND m.created_at >= a.assigned_at
		WHERE NOT a.excluded
		GROUP BY 1, 2`, q.JourneyID, q.Experiment, q.Goal, q.Window, sentStatuses())
	if err != nil {
		return ExperimentCounts{}, err
	}
	for _, g := range order {
		out.Groups = append(out.Groups, *byGroup[g])
	}
	return out, nil
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

package storage_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/experiment"
	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/internal/storage/storagetest"
)

// tinyScale is the benchmark's data set at a size the normal tests seed
// in a second or two: the same generator, the same shape.
func tinyScale() storagetest.ScaleConfig {
	return storagetest.ScaleConfig{Contacts: 300, Messages: 1000, NoiseEvents: 3000, Seed: 7}
}

// TestScaleSeed_ReportsCountWhatWasSeeded seeds the report benchmark's
// data set at a small size and checks every count of both reports
// against the generator's own tally, made in Go from what it wrote.
func TestScaleSeed_ReportsCountWhatWasSeeded(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	seed, err := storagetest.SeedScale(ctx, s, tinyScale())
	require.NoError(t, err)
	t.Log(seed.Summary())
	checkScaleReports(t, s, seed)
}

// checkScaleReports compares Funnel (both versions of the big journey)
// and Experiment (its split and its holdout) with seed's tally.
func checkScaleReports(t *testing.T, s *storage.Store, seed *storagetest.ScaleSeed) {
	t.Helper()
	ctx := context.Background()
	for _, v := range []int{1, 2} {
		got, err := s.Funnel(ctx, storage.FunnelQuery{JourneyID: storagetest.ScaleJourney, Version: v,
			Goal: storagetest.ScaleGoal, Window: storagetest.ScaleWindow})
		require.NoError(t, err)
		want := seed.ExpectFunnel(storagetest.ScaleJourney, v, storagetest.ScaleWindow, time.Now())
		require.Positive(t, want.Entered, "version %d", v)
		require.Positive(t, want.Converted, "version %d", v)
		require.Equal(t, want.Entered, got.Entered, "version %d", v)
		require.Equal(t, want.Contacts, got.Contacts, "version %d", v)
		require.NotNil(t, got.Converted)
		require.Equal(t, want.Converted, *got.Converted, "version %d", v)
		require.InDelta(t, storagetest.Percentile(want.ConvertSeconds, 0.5), *got.TimeToConvertP50, 1e-6)
		require.InDelta(t, storagetest.Percentile(want.ConvertSeconds, 0.9), *got.TimeToConvertP90, 1e-6)
		sends := map[string]map[model.MessageStatus]map[string]int64{}
		for _, c := range got.Sends {
			if sends[c.StepID] == nil {
				sends[c.StepID] = map[model.MessageStatus]map[string]int64{}
			}
			if sends[c.StepID][c.Status] == nil {
				sends[c.StepID][c.Status] = map[string]int64{}
			}
			sends[c.StepID][c.Status][c.Reason] = c.Count
		}
		require.Equal(t, want.Sends, sends, "version %d", v)
		require.Equal(t, want.Reached, got.Reached, "version %d", v)
		require.Equal(t, want.Deferred, got.Deferred, "version %d", v)
		require.Equal(t, want.SentTo, got.SentTo, "version %d", v)
		require.Equal(t, want.OptedOut, got.OptedOut, "version %d", v)
		require.Equal(t, want.Assigned, got.Assigned, "version %d", v)
		bySegment := map[string][2]int64{}
		for id, sf := range got.BySegment {
			bySegment[id] = [2]int64{sf.Entered, sf.Converted}
		}
		require.Equal(t, want.BySegment, bySegment, "version %d", v)
	}

	for _, exp := range []string{storagetest.ScaleExperiment, journey.GroupHoldout} {
		got, err := s.Experiment(ctx, storage.ExperimentQuery{JourneyID: storagetest.ScaleJourney, Experiment: exp,
			Goal: storagetest.ScaleGoal, Window: storagetest.ScaleWindow})
		require.NoError(t, err)
		want, excluded := seed.ExpectGroups(exp, storagetest.ScaleWindow)
		require.Positive(t, excluded)
		require.Equal(t, excluded, got.ControlGroupExcluded, exp)
		require.Len(t, got.Groups, len(want), exp)
		for _, g := range got.Groups {
			w := want[g.Group]
			require.NotNil(t, w, "%s %s", exp, g.Group)
			require.Equal(t, w.Entered, g.Entered, "%s %s", exp, g.Group)
			require.Equal(t, w.Converted, g.Converted, "%s %s", exp, g.Group)
			require.Equal(t, w.Unsubscribed, g.Unsubscribed, "%s %s", exp, g.Group)
			require.Equal(t, w.SpamComplaints, g.SpamComplaints, "%s %s", exp, g.Group)
			require.Equal(t, w.Bounced, g.Bounced, "%s %s", exp, g.Group)
			if w.Converted > 0 {
				require.InDelta(t, storagetest.Percentile(w.ConvertSeconds, 0.5), *g.TimeToConvertP50, 1e-6)
				require.InDelta(t, storagetest.Percentile(w.ConvertSeconds, 0.9), *g.TimeToConvertP90, 1e-6)
			}
			entered, converted := map[time.Time]int64{}, map[time.Time]int64{}
			for _, d := range g.Daily {
				if d.Entered > 0 {
					entered[d.Day] = d.Entered
				}
				if d.Converted > 0 {
					converted[d.Day] = d.Converted
				}
			}
			require.Equal(t, w.DailyEntered, entered, "%s %s", exp, g.Group)
			require.Equal(t, w.DailyConverted, converted, "%s %s", exp, g.Group)
			require.Equal(t, w.Steps, g.Steps, "%s %s", exp, g.Group)
		}
	}
}

// sentLedgerStatuses are the statuses whose outcome is "sent", from the model.
func sentLedgerStatuses() []string {
	var out []string
	for _, st := range []model.MessageStatus{model.MessageReserved, model.MessageInFlight, model.MessageRetrying, model.MessageSent,
		model.MessageDelivered, model.MessageOpened, model.MessageClicked, model.MessageFailed, model.MessageBounced,
		model.MessageDropped, model.MessageComplained, model.MessageSkipped, model.MessageUnknown} {
		if st.Outcome() == model.OutcomeSent {
			out = append(out, string(st))
		}
	}
	return out
}

// requireReachMatchesLedger compares report_reach, row for row, with the
// same figures grouped from the ledger by a plain query.
func requireReachMatchesLedger(t *testing.T, s *storage.Store, when string) {
	t.Helper()
	var rows, differ int
	require.NoError(t, s.Pool().QueryRow(context.Background(), `
		WITH plain AS (
		    SELECT journey_id, contact_id, step_id, max(created_at) AS last_at,
		           max(created_at) FILTER (WHERE status = ANY($1)) AS last_sent_at
		    FROM messages GROUP BY 1, 2, 3
		), kept AS (SELECT journey_id, contact_id, step_id, last_at, last_sent_at FROM report_reach)
		SELECT (SELECT count(*) FROM kept),
		       (SELECT count(*) FROM ((SELECT * FROM plain EXCEPT SELECT * FROM kept) UNION ALL (SELECT * FROM kept EXCEPT SELECT * FROM plain)) d)`,
		sentLedgerStatuses()).Scan(&rows, &differ))
	require.Positive(t, rows, when)
	require.Zero(t, differ, "report_reach differs from the ledger %s", when)
}

// TestReportReach_FollowsTheLedger changes the ledger the ways webhooks,
// erasure and merges do (late, out of order, redelivered, concurrently,
// deleted, moved) and checks after each that report_reach equals the
// plain query over the ledger, and that the experiment's step counts
// equal those of the plain query the report used before report_reach.
func TestReportReach_FollowsTheLedger(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	_, err := storagetest.SeedScale(ctx, s, tinyScale())
	require.NoError(t, err)
	requireReachMatchesLedger(t, s, "after seeding")
	requireExperimentStepsPlain(t, s)

	ids := func(query string, args ...any) []string {
		rows, err := s.Pool().Query(ctx, query, args...)
		require.NoError(t, err)
		out, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		require.NotEmpty(t, out, query)
		return out
	}
	webhook := func(id, eventID string, status model.MessageStatus) bool {
		var contactID string
		require.NoError(t, s.Pool().QueryRow(ctx, `SELECT contact_id FROM messages WHERE id = $1`, id).Scan(&contactID))
		res, err := s.ApplyProviderEvent(ctx, storage.ProviderEvent{Provider: "sendgrid", EventID: eventID, Kind: "email." + string(status),
			MessageID: id, ContactID: contactID}, storage.ProviderEffects{MessageStatus: status})
		require.NoError(t, err)
		return res.New
	}

	// Late webhooks, hours after the send, in any order: opened before
	// delivered (delivered is then refused), then a bounce.
	sent := ids(`SELECT id FROM messages WHERE status = 'sent' AND channel = 'email' ORDER BY id LIMIT 20`)
	for i, id := range sent {
		require.True(t, webhook(id, fmt.Sprintf("open-%d", i), model.MessageOpened))
		require.True(t, webhook(id, fmt.Sprintf("deliver-%d", i), model.MessageDelivered))
		if i%2 == 0 {
			require.True(t, webhook(id, fmt.Sprintf("bounce-%d", i), model.MessageBounced))
		}
	}
	requireReachMatchesLedger(t, s, "after late webhooks")

	// A delivered message that fails after all (no longer sent), and the
	// same webhook redelivered: stored once, counted once.
	delivered := ids(`SELECT id FROM messages WHERE status = 'delivered' AND channel = 'email' ORDER BY id LIMIT 20`)
	for i, id := range delivered {
		require.True(t, webhook(id, fmt.Sprintf("fail-%d", i), model.MessageFailed))
		require.False(t, webhook(id, fmt.Sprintf("fail-%d", i), model.MessageFailed), "a redelivery changes nothing")
	}
	requireReachMatchesLedger(t, s, "after failures and redeliveries")

	// Concurrently: every sent row of contacts with several rows of one
	// step fails at once, each in its own transaction.
	many := ids(`
		SELECT m.id FROM messages m
		JOIN (SELECT journey_id, contact_id, step_id FROM messages WHERE status = 'delivered' AND channel = 'email'
		      GROUP BY 1, 2, 3 HAVING count(*) > 1 LIMIT 10) k USING (journey_id, contact_id, step_id)
		WHERE m.status = 'delivered'`)
	concurrently(len(many), func(i int) {
		_, _, err := s.AdvanceMessageStatus(ctx, many[i], model.MessageFailed, "concurrent")
		require.NoError(t, err)
	})
	requireReachMatchesLedger(t, s, "after concurrent failures")

	// A merge moves the absorbed contact's ledger rows to the survivor; an
	// erasure deletes a contact's.
	pair := ids(`SELECT contact_id FROM messages WHERE journey_id = $1 GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 3`, storagetest.ScaleJourney)
	_, err = s.MergeContacts(ctx, storage.MergeInput{SurvivorID: pair[0], AbsorbedID: pair[1]})
	require.NoError(t, err)
	requireReachMatchesLedger(t, s, "after a merge")
	_, _, err = s.EraseContact(ctx, pair[0])
	require.NoError(t, err)
	_, _, err = s.EraseContact(ctx, pair[2])
	require.NoError(t, err)
	var left int
	require.NoError(t, s.Pool().QueryRow(ctx, `SELECT count(*) FROM report_reach WHERE contact_id = ANY($1)`, pair).Scan(&left))
	require.Zero(t, left, "erased contacts leave no row")
	requireReachMatchesLedger(t, s, "after erasures")
	requireExperimentStepsPlain(t, s)
}

// requireExperimentStepsPlain compares the experiment report's step
// counts with the plain query over the ledger it replaced.
func requireExperimentStepsPlain(t *testing.T, s *storage.Store) {
	t.Helper()
	ctx := context.Background()
	for _, exp := range []string{storagetest.ScaleExperiment, journey.GroupHoldout} {
		rows, err := s.Pool().Query(ctx, `
			WITH a AS (
			    SELECT a.contact_id, a.assigned_at,
			           CASE WHEN $2 <> 'holdout' AND h.variant = 'holdout' THEN 'holdout' ELSE a.variant END AS grp,
			           (cg.variant IS NOT DISTINCT FROM 'control_group') AS excluded
			    FROM assignments a
			    LEFT JOIN assignments h ON h.journey_id = a.journey_id AND h.experiment = 'holdout' AND h.contact_id = a.contact_id
			    LEFT JOIN assignments cg ON cg.journey_id = '' AND cg.experiment = 'control_group' AND cg.contact_id = a.contact_id
			    WHERE a.journey_id = $1 AND a.experiment = $2
			)
			SELECT a.grp, m.step_id, count(DISTINCT a.contact_id), count(DISTINCT a.contact_id) FILTER (WHERE m.status = ANY($3))
			FROM a JOIN messages m ON m.contact_id = a.contact_id AND m.journey_id = $1 AND m.created_at >= a.assigned_at
			WHERE NOT a.excluded GROUP BY 1, 2`, storagetest.ScaleJourney, exp, sentLedgerStatuses())
		require.NoError(t, err)
		want := map[string]map[string]experiment.StepCounts{}
		for rows.Next() {
			var grp, step string
			var sc experiment.StepCounts
			require.NoError(t, rows.Scan(&grp, &step, &sc.Reached, &sc.Sent))
			if want[grp] == nil {
				want[grp] = map[string]experiment.StepCounts{}
			}
			want[grp][step] = sc
		}
		require.NoError(t, rows.Err())
		require.NotEmpty(t, want)
		got, err := s.Experiment(ctx, storage.ExperimentQuery{JourneyID: storagetest.ScaleJourney, Experiment: exp,
			Goal: storagetest.ScaleGoal, Window: storagetest.ScaleWindow})
		require.NoError(t, err)
		gotSteps := map[string]map[string]experiment.StepCounts{}
		for _, g := range got.Groups {
			if len(g.Steps) > 0 {
				gotSteps[g.Group] = g.Steps
			}
		}
		require.Equal(t, want, gotSteps, exp)
	}
}

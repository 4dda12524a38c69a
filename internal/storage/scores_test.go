package storage_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/score"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/internal/storage/storagetest"
)

// scoreModel: one pricing view (40 points, half-life a day) is "high"
// intent; being a big company is "good" fit; combined adds them.
const scoreModel = `
id: test
fit:
  - {id: big, when: 'contact.?employees.orValue(0.0) >= 200', points: 50}
intent:
  - {id: pricing, event: page.viewed, where: {path: /pricing}, points: 40, half_life: 1d}
bands:
  fit: [{name: small, below: 50}, {name: good}]
  intent: [{name: low, below: 30}, {name: high}]
  combined: [{name: cold, below: 60}, {name: hot}]
`

func putModel(t *testing.T, s *storage.Store, doc string) storage.ScoreModelVersion {
	t.Helper()
	m, err := score.Parse([]byte(doc))
	require.NoError(t, err)
	v, _, err := s.PutScoreModel(context.Background(), m)
	require.NoError(t, err)
	return v
}

// bandChanges lists the contact's score.band_changed events, oldest first,
// as their properties.
func bandChanges(t *testing.T, s *storage.Store, contactID string) []map[string]any {
	t.Helper()
	evs, err := s.EventsForContact(context.Background(), contactID, 1000)
	require.NoError(t, err)
	var out []map[string]any
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Name == score.BandChangedEvent {
			out = append(out, evs[i].Properties)
		}
	}
	return out
}

func pendingMarks(t *testing.T, s *storage.Store, contactID string) int {
	t.Helper()
	var n int
	require.NoError(t, s.Pool().QueryRow(context.Background(), `SELECT count(*) FROM score_pending WHERE contact_id = $1`, contactID).Scan(&n))
	return n
}

func change(name, from, to string) map[string]any {
	return map[string]any{"score": name, "from": from, "to": to}
}

func TestPutScoreModel_versions(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	_, err := s.ScoreModel(ctx)
	require.ErrorIs(t, err, storage.ErrNotFound)

	m, err := score.Parse([]byte(scoreModel))
	require.NoError(t, err)
	v1, created, err := s.PutScoreModel(ctx, m)
	require.NoError(t, err)
	require.True(t, created)
	require.Equal(t, 1, v1.Version)

	// The same model again is the same version: a re-run of the CLI.
	again, created, err := s.PutScoreModel(ctx, m)
	require.NoError(t, err)
	require.False(t, created)
	require.Equal(t, 1, again.Version)

	m.Model.Intent[0].Points = 45
	v2, created, err := s.PutScoreModel(ctx, m)
	require.NoError(t, err)
	require.True(t, created)
	require.Equal(t, 2, v2.Version)
	got, err := s.ScoreModel(ctx)
	require.NoError(t, err)
	require.Equal(t, 2, got.Version)
	require.Equal(t, 45.0, got.Model.Intent[0].Points)
	require.Equal(t, journey.Duration(24*time.Hour), got.Model.Intent[0].HalfLife)
}

// An intent event moves the band through the scoring outbox; time alone
// moves it back, found by the sweep; each change is one event that
// journeys it triggers start from.
func TestScores_eventThenDecay(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	c := newContact(t, s)
	putModel(t, s, scoreModel)
	hot, err := s.PublishJourney(ctx, spec("on-band-change", journey.Trigger{Type: journey.TriggerEvent, Event: score.BandChangedEvent}))
	require.NoError(t, err)

	// An event no rule reads marks nothing.
	_, _, _, err = s.TrackEvent(ctx, storage.Event{ContactID: c.ID, Name: "page.viewed", Properties: map[string]any{"path": "/blog"}})
	require.NoError(t, err)
	_, _, _, err = s.TrackEvent(ctx, storage.Event{ContactID: c.ID, Name: "signed_up"})
	require.NoError(t, err)
	// Marked for any page.viewed: where filters are the scorer's to apply.
	require.Equal(t, 1, pendingMarks(t, s, c.ID))
	t0 := time.Now().UTC()
	scored, changed, err := s.ScorePending(ctx, t0, 100)
	require.NoError(t, err)
	require.Equal(t, 1, scored)
	require.Equal(t, 0, changed)
	require.Empty(t, bandChanges(t, s, c.ID))

	viewed := t0.Add(-time.Minute)
	_, _, _, err = s.TrackEvent(ctx, storage.Event{ContactID: c.ID, Name: "page.viewed", OccurredAt: viewed, Properties: map[string]any{"path": "/pricing"}})
	require.NoError(t, err)
	require.Equal(t, 1, pendingMarks(t, s, c.ID))
	depth, err := s.PendingScores(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(1), depth)
	scored, changed, err = s.ScorePending(ctx, t0, 100)
	require.NoError(t, err)
	require.Equal(t, 1, scored)
	require.Equal(t, 1, changed)
	require.Equal(t, 0, pendingMarks(t, s, c.ID))
	depth, err = s.PendingScores(ctx)
	require.NoError(t, err)
	require.Zero(t, depth)
	require.Equal(t, []map[string]any{change("intent", "low", "high")}, bandChanges(t, s, c.ID))

	// The change took the tracked events' path: a start of the journey it
	// triggers is pending.
	var starts int
	require.NoError(t, s.Pool().QueryRow(ctx, `SELECT count(*) FROM deliveries d JOIN events e ON e.id = d.event_id
		WHERE d.contact_id = $1 AND d.kind = 'start' AND d.journey_id = $2 AND e.name = $3`,
		c.ID, hot.JourneyID, score.BandChangedEvent).Scan(&starts))
	require.Equal(t, 1, starts)

	// 40 points fall under 30 after log2(40/30) days: the stored next
	// check says when, and the sweep finds nothing before it.
	read, err := s.ContactScore(ctx, c.ID, t0)
	require.NoError(t, err)
	require.NotNil(t, read.Stored)
	require.NotNil(t, read.Stored.NextCheckAt)
	next := *read.Stored.NextCheckAt
	require.WithinDuration(t, viewed.Add(time.Duration(0.415*24*float64(time.Hour))), next, 10*time.Minute)
	sw, err := s.SweepScores(ctx, next.Add(-time.Minute), 100)
	require.NoError(t, err)
	require.Equal(t, 0, sw.Due)

	sw, err = s.SweepScores(ctx, next, 100)
	require.NoError(t, err)
	require.Equal(t, 1, sw.Due)
	require.Equal(t, 1, sw.Changed)
	require.Equal(t, []map[string]any{change("intent", "low", "high"), change("intent", "high", "low")}, bandChanges(t, s, c.ID))
	read, err = s.ContactScore(ctx, c.ID, next)
	require.NoError(t, err)
	require.Nil(t, read.Stored.NextCheckAt, "nothing left for time to change")
	require.Equal(t, score.BandSet{Fit: "small", Intent: "low", Combined: "cold"}, read.Stored.Bands)
	require.Len(t, read.Result.Contributions, 1)
	require.Equal(t, "pricing", read.Result.Contributions[0].Rule)
	require.InDelta(t, 30, read.Result.Contributions[0].Value, 0.01)

	// A second sweep finds nothing: no double count.
	sw, err = s.SweepScores(ctx, next.Add(time.Hour), 100)
	require.NoError(t, err)
	require.Equal(t, 0, sw.Due)
	require.Len(t, bandChanges(t, s, c.ID), 2)
}

// Many events for one contact, posted at once and scored by several
// scorers at once, cross the band once: one change, stored once.
func TestScores_concurrentEventsChangeOnce(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	putModel(t, s, scoreModel)
	c := newContact(t, s)
	at := time.Now().UTC()
	concurrently(16, func(i int) {
		_, _, _, err := s.TrackEvent(ctx, storage.Event{ContactID: c.ID, Name: "page.viewed", OccurredAt: at.Add(-time.Second),
			Properties: map[string]any{"path": "/pricing"}})
		require.NoError(t, err)
		if i%2 == 0 {
			_, _, err := s.ScorePending(ctx, at, 10)
			require.NoError(t, err)
		} else {
			_, err := s.Rescore(ctx, c.ID, at)
			require.NoError(t, err)
		}
	})
	_, _, err := s.ScorePending(ctx, at, 10)
	require.NoError(t, err)
	require.Equal(t, []map[string]any{change("intent", "low", "high"), change("combined", "cold", "hot")}, bandChanges(t, s, c.ID))
	read, err := s.ContactScore(ctx, c.ID, at)
	require.NoError(t, err)
	require.InDelta(t, 16*40, read.Result.Intent, 0.1)
	require.Equal(t, 0, pendingMarks(t, s, c.ID))
}

// Attribute and consent changes mark the contact when the model has fit
// rules; the fit band moves.
func TestScores_attributeChange(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	putModel(t, s, scoreModel)
	c := newContact(t, s)
	now := time.Now().UTC()
	_, _, err := s.ScorePending(ctx, now, 10) // the new contact was marked
	require.NoError(t, err)
	require.Empty(t, bandChanges(t, s, c.ID))

	_, _, err = s.UpsertContact(ctx, storage.ContactInput{ID: c.ID, Attributes: map[string]any{"employees": 500}})
	require.NoError(t, err)
	require.Equal(t, 1, pendingMarks(t, s, c.ID))
	_, changed, err := s.ScorePending(ctx, now, 10)
	require.NoError(t, err)
	require.Equal(t, 1, changed)
	require.Equal(t, []map[string]any{change("fit", "small", "good")}, bandChanges(t, s, c.ID))

	_, _, err = s.RecordConsent(ctx, c.ID, journey.ChannelEmail, "granted", "form", time.Time{})
	require.NoError(t, err)
	require.Equal(t, 1, pendingMarks(t, s, c.ID))
}

// With no model nothing is marked, and Rescore does nothing.
func TestScores_noModel(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	c := newContact(t, s)
	_, _, _, err := s.TrackEvent(ctx, storage.Event{ContactID: c.ID, Name: "page.viewed", Properties: map[string]any{"path": "/pricing"}})
	require.NoError(t, err)
	require.Equal(t, 0, pendingMarks(t, s, c.ID))
	changes, err := s.Rescore(ctx, c.ID, time.Now())
	require.NoError(t, err)
	require.Empty(t, changes)
	_, err = s.ContactScore(ctx, c.ID, time.Now())
	require.ErrorIs(t, err, storage.ErrNoScoreModel)
}

// A new model scores every contact once, after it settles, in pages: the
// contacts it puts above the bands of a zero score change band.
func TestScores_backfill(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	var big []string
	for i := range 5 {
		c, _, err := s.UpsertContact(ctx, storage.ContactInput{Email: fmt.Sprintf("backfill%d-%d@example.com", i, contactSeq.Add(1)),
			Attributes: map[string]any{"employees": i * 100}})
		require.NoError(t, err)
		if i >= 2 {
			big = append(big, c.ID)
		}
	}
	v := putModel(t, s, scoreModel)
	// Marked by nothing (they changed before the model): only the sweep
	// scores them, and not before the model settles.
	sw, err := s.SweepScores(ctx, v.CreatedAt, 2)
	require.NoError(t, err)
	require.Equal(t, storage.ScoreSweep{}, sw)

	at := v.CreatedAt.Add(storage.ScoreModelSettle)
	total := 0
	for range 10 {
		sw, err = s.SweepScores(ctx, at, 2)
		require.NoError(t, err)
		total += sw.Backfilled
		if !sw.More {
			break
		}
	}
	require.Equal(t, 5, total)
	for _, id := range big {
		require.Equal(t, []map[string]any{change("fit", "small", "good")}, bandChanges(t, s, id))
	}
	sw, err = s.SweepScores(ctx, at, 2)
	require.NoError(t, err)
	require.Equal(t, 0, sw.Backfilled)

	// An erased contact's score goes with it.
	_, err = s.Pool().Exec(ctx, `DELETE FROM contacts WHERE id = $1`, big[0])
	require.NoError(t, err)
	var n int
	require.NoError(t, s.Pool().QueryRow(ctx, `SELECT count(*) FROM contact_scores WHERE contact_id = $1`, big[0]).Scan(&n))
	require.Zero(t, n)
	_, err = s.Rescore(ctx, big[0], at)
	require.NoError(t, err)
	_, err = s.ContactScore(ctx, big[0], at)
	require.True(t, errors.Is(err, storage.ErrNotFound))
}

// A new model version rescores contacts scored under the old one: a band
// the new thresholds move is a change, measured from the stored band.
func TestScores_newVersionRescores(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	putModel(t, s, scoreModel)
	c := newContact(t, s)
	now := time.Now().UTC()
	_, _, _, err := s.TrackEvent(ctx, storage.Event{ContactID: c.ID, Name: "page.viewed", OccurredAt: now, Properties: map[string]any{"path": "/pricing"}})
	require.NoError(t, err)
	_, _, err = s.ScorePending(ctx, now, 10)
	require.NoError(t, err)
	require.Equal(t, []map[string]any{change("intent", "low", "high")}, bandChanges(t, s, c.ID))

	// Version 2 asks for 50 intent points to be high.
	v2 := putModel(t, s, strings.Replace(scoreModel, "{name: low, below: 30}", "{name: low, below: 50}", 1))
	require.Equal(t, 2, v2.Version)
	at := v2.CreatedAt.Add(storage.ScoreModelSettle)
	sw, err := s.SweepScores(ctx, at, 100)
	require.NoError(t, err)
	require.Equal(t, 1, sw.Backfilled)
	require.Equal(t, 1, sw.Changed)
	require.Equal(t, []map[string]any{change("intent", "low", "high"), change("intent", "high", "low")}, bandChanges(t, s, c.ID))
	read, err := s.ContactScore(ctx, c.ID, at)
	require.NoError(t, err)
	require.Equal(t, 2, read.ModelVersion)
	require.Equal(t, 2, read.Stored.ModelVersion)
}

// An erasure that holds the contact while the scorer waits for it goes
// through: the scorer holds no lock on the contact's mark meanwhile (the
// erasure's cascade deletes it), and then finds nobody to score.
func TestScorePending_erasureWhileScoring(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	putModel(t, s, scoreModel)
	c := newContact(t, s) // marked: the model has fit rules

	tx, err := s.Pool().Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx) //nolint:errcheck // committed below
	_, err = tx.Exec(ctx, `SELECT 1 FROM contacts WHERE id = $1 FOR UPDATE`, c.ID)
	require.NoError(t, err)

	type result struct {
		scored int
		err    error
	}
	done := make(chan result, 1)
	go func() {
		n, _, err := s.ScorePending(ctx, time.Now(), 10)
		done <- result{n, err}
	}()
	// The scorer has claimed the mark and waits for the contact's row.
	require.Eventually(t, func() bool {
		var waiting int
		require.NoError(t, s.Pool().QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting))
		return waiting == 1
	}, 10*time.Second, 10*time.Millisecond)
	_, err = tx.Exec(ctx, `DELETE FROM contacts WHERE id = $1`, c.ID)
	require.NoError(t, err, "the cascade to the mark must not wait for the scorer")
	require.NoError(t, tx.Commit(ctx))
	r := <-done
	require.NoError(t, r.err)
	require.Equal(t, 1, r.scored)
	require.Empty(t, bandChanges(t, s, c.ID))
}

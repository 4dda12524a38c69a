package storage_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/score"
	"github.com/tutti-dev/tutti/internal/segment"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/internal/storage/storagetest"
)

func defineSegment(t testing.TB, s *storage.Store, id, when string) storage.SegmentVersion {
	t.Helper()
	seg, err := segment.Compile(segment.Definition{ID: id, Name: "Segment " + id, When: when})
	require.NoError(t, err)
	v, _, err := s.DefineSegment(context.Background(), seg)
	require.NoError(t, err)
	return v
}

// evaluateAll empties the segment queue.
func evaluateAll(t *testing.T, s *storage.Store) storage.SegmentChanges {
	t.Helper()
	var total storage.SegmentChanges
	for {
		ch, err := s.EvaluateQueuedSegments(context.Background(), 100)
		require.NoError(t, err)
		if ch.Evaluated == 0 {
			return total
		}
		total.Evaluated += ch.Evaluated
		total.Entered += ch.Entered
		total.Exited += ch.Exited
	}
}

func count(t *testing.T, s *storage.Store, query string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, s.Pool().QueryRow(context.Background(), query, args...).Scan(&n))
	return n
}

func TestDefineSegment_Versions(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	seg, err := segment.Compile(segment.Definition{ID: "vips", Name: "VIPs", When: `contact.?vip.orValue(false) == true`})
	require.NoError(t, err)

	v1, created, err := s.DefineSegment(ctx, seg)
	require.NoError(t, err)
	require.True(t, created)
	require.Equal(t, 1, v1.Version)
	require.False(t, v1.TimeDependent)

	again, created, err := s.DefineSegment(ctx, seg)
	require.NoError(t, err)
	require.False(t, created, "the same definition again is the same version")
	require.Equal(t, 1, again.Version)

	seg2, err := segment.Compile(segment.Definition{ID: "vips", Name: "VIPs", When: `events.count("purchase", days(30)) >= 1`})
	require.NoError(t, err)
	v2, created, err := s.DefineSegment(ctx, seg2)
	require.NoError(t, err)
	require.True(t, created)
	require.Equal(t, 2, v2.Version)
	require.True(t, v2.TimeDependent)

	latest, err := s.LatestSegmentVersion(ctx, "vips")
	require.NoError(t, err)
	require.Equal(t, seg2.Definition, latest.Definition)
	_, err = s.LatestSegmentVersion(ctx, "nope")
	require.ErrorIs(t, err, storage.ErrNotFound)
}

// Defining a segment evaluates the contacts already there; attributes,
// consent, suppressions and events move contacts in and out; every entry
// and exit is an event carrying the segment id only.
func TestSegmentMembership_Incremental(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	c := newContact(t, s)
	_, _, err := s.UpsertContact(ctx, storage.ContactInput{ID: c.ID, Attributes: map[string]any{"plan": "pro"}})
	require.NoError(t, err)

	defineSegment(t, s, "engaged_pros", `contact.?plan.orValue("") == "pro" && consent.email == "granted"
		&& !suppressed.?do_not_contact.orValue(false)
		&& events.count("page.viewed", {"path": "/pricing"}, days(7)) >= 2`)
	require.Equal(t, storage.SegmentChanges{Evaluated: 1}, evaluateAll(t, s))

	_, _, err = s.RecordConsent(ctx, c.ID, journey.ChannelEmail, model.ConsentGranted, "form", time.Time{})
	require.NoError(t, err)
	for i := range 2 {
		_, _, _, err := s.TrackEvent(ctx, storage.Event{ContactID: c.ID, Name: "page.viewed", Properties: map[string]any{"path": "/pricing", "n": i}})
		require.NoError(t, err)
	}
	require.Equal(t, 1, evaluateAll(t, s).Entered)
	members, err := s.SegmentMembers(ctx, "engaged_pros", "", 10)
	require.NoError(t, err)
	require.Len(t, members, 1)
	require.Equal(t, c.ID, members[0].ContactID)

	// A suppression takes the contact out; lifting it brings them back.
	sp, _, err := s.AddSuppression(ctx, storage.Suppression{ContactID: c.ID, Reason: model.SuppressDoNotContact, Source: "support"})
	require.NoError(t, err)
	require.Equal(t, 1, evaluateAll(t, s).Exited)
	_, err = s.LiftSuppression(ctx, sp.ID, "support")
	require.NoError(t, err)
	require.Equal(t, 1, evaluateAll(t, s).Entered)
	// An attribute change takes them out again.
	_, _, err = s.UpsertContact(ctx, storage.ContactInput{ID: c.ID, Attributes: map[string]any{"plan": "free"}})
	require.NoError(t, err)
	require.Equal(t, 1, evaluateAll(t, s).Exited)

	history, err := s.ContactSegments(ctx, c.ID)
	require.NoError(t, err)
	require.Len(t, history, 2)
	for _, m := range history {
		require.NotNil(t, m.ExitedAt)
	}
	events, err := s.EventsForContact(ctx, c.ID, 100)
	require.NoError(t, err)
	var names []string
	for _, e := range events {
		if e.Name == journey.EventSegmentEntered || e.Name == journey.EventSegmentExited {
			names = append(names, e.Name)
			require.Equal(t, map[string]any{"segment": "engaged_pros"}, e.Properties)
		}
	}
	require.ElementsMatch(t, []string{"segment.entered", "segment.exited", "segment.entered", "segment.exited"}, names)
	require.Zero(t, count(t, s, `SELECT count(*) FROM segment_evaluations`), "the segment events queue nothing")

	sums, err := s.Segments(ctx)
	require.NoError(t, err)
	require.Len(t, sums, 1)
	require.Zero(t, sums[0].Members)
}

// With no segment defined, events and other changes queue nothing.
func TestSegmentQueue_EmptyWithoutSegments(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	c := newEmailContact(t, s)
	_, _, _, err := s.TrackEvent(ctx, storage.Event{ContactID: c.ID, Name: "purchase"})
	require.NoError(t, err)
	_, _, err = s.UpsertContact(ctx, storage.ContactInput{ID: c.ID, Attributes: map[string]any{"plan": "pro"}})
	require.NoError(t, err)
	require.Zero(t, count(t, s, `SELECT count(*) FROM segment_evaluations`))
}

// Concurrent events of one contact, evaluated by concurrent evaluators,
// enter the contact once: one open membership, one segment.entered.
func TestSegmentMembership_ConcurrentEventsEnterOnce(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	defineSegment(t, s, "signed_up", `events.count("signup", days(365)) >= 1`)
	contacts := make([]storage.Contact, 5)
	for i := range contacts {
		contacts[i] = newContact(t, s)
	}
	evaluateAll(t, s)
	for round := range 3 {
		concurrently(len(contacts)*2+4, func(i int) {
			if i < len(contacts)*2 {
				_, _, _, err := s.TrackEvent(ctx, storage.Event{ID: fmt.Sprintf("ev-%d-%d", round, i), ContactID: contacts[i/2].ID, Name: "signup"})
				require.NoError(t, err)
				return
			}
			_, err := s.EvaluateQueuedSegments(ctx, 3)
			require.NoError(t, err)
		})
	}
	evaluateAll(t, s)
	for _, c := range contacts {
		require.Equal(t, 1, count(t, s, `SELECT count(*) FROM segment_memberships WHERE contact_id = $1`, c.ID))
		require.Equal(t, 1, count(t, s, `SELECT count(*) FROM events WHERE contact_id = $1 AND name = 'segment.entered'`, c.ID))
	}
}

// A journey triggered by a segment gets a start delivery when a contact
// enters that segment, and only that one.
func TestSegmentEntry_StartsItsJourneys(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	defineSegment(t, s, "buyers", `events.count("purchase", days(30)) >= 1`)
	defineSegment(t, s, "vips", `contact.?vip.orValue(false) == true`)
	_, err := s.PublishJourney(ctx, spec("thank_buyers", journey.Trigger{Type: journey.TriggerSegment, Segment: "buyers"}))
	require.NoError(t, err)
	_, err = s.PublishJourney(ctx, spec("welcome_vips", journey.Trigger{Type: journey.TriggerSegment, Segment: "vips"}))
	require.NoError(t, err)
	c := newContact(t, s)
	evaluateAll(t, s)

	_, _, _, err = s.TrackEvent(ctx, storage.Event{ContactID: c.ID, Name: "purchase"})
	require.NoError(t, err)
	require.Equal(t, 1, evaluateAll(t, s).Entered)
	var journeyID, eventName string
	require.NoError(t, s.Pool().QueryRow(ctx, `
		SELECT d.journey_id, e.name FROM deliveries d JOIN events e ON e.id = d.event_id
		WHERE d.contact_id = $1 AND d.kind = 'start'`, c.ID).Scan(&journeyID, &eventName))
	require.Equal(t, "thank_buyers", journeyID)
	require.Equal(t, journey.EventSegmentEntered, eventName)
}

// The sweep finds what time alone changed: an event leaving its window.
func TestSweepSegments_WindowExpires(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	defineSegment(t, s, "recent_viewers", `events.count("page.viewed", days(7)) >= 1`)
	defineSegment(t, s, "vips", `contact.?vip.orValue(false) == true`)
	a, b := newContact(t, s), newContact(t, s)
	for _, c := range []storage.Contact{a, b} {
		_, _, _, err := s.TrackEvent(ctx, storage.Event{ContactID: c.ID, Name: "page.viewed", OccurredAt: time.Now().Add(-time.Hour)})
		require.NoError(t, err)
	}
	require.Equal(t, 2, evaluateAll(t, s).Entered)

	// Time passes for a's view (nothing queues a).
	_, err := s.Pool().Exec(ctx, `UPDATE events SET occurred_at = now() - interval '8 days' WHERE contact_id = $1`, a.ID)
	require.NoError(t, err)
	require.Zero(t, count(t, s, `SELECT count(*) FROM segment_evaluations`))

	var total storage.SegmentChanges
	after := ""
	for {
		next, ch, err := s.SweepSegments(ctx, after, 1)
		require.NoError(t, err)
		total.Evaluated += ch.Evaluated
		total.Exited += ch.Exited
		total.Entered += ch.Entered
		if next == "" {
			break
		}
		after = next
	}
	require.Equal(t, storage.SegmentChanges{Evaluated: 2, Exited: 1}, total)
	members, err := s.SegmentMembers(ctx, "recent_viewers", "", 10)
	require.NoError(t, err)
	require.Len(t, members, 1)
	require.Equal(t, b.ID, members[0].ContactID)

	why, err := s.ExplainContactSegments(ctx, a.ID)
	require.NoError(t, err)
	require.Len(t, why, 2)
	require.Equal(t, "recent_viewers", why[0].SegmentID)
	require.False(t, why[0].Member)
	require.Equal(t, []segment.Clause{{Expr: `events.count("page.viewed", days(7)) >= 1`}}, why[0].Clauses)
}

// Erasures racing evaluations of the same contacts neither fail nor leave
// memberships behind (an erasure locks the contact, then deletes its
// memberships; an evaluation locks the contact before writing any).
func TestSegmentEvaluation_RacesErasure(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	defineSegment(t, s, "viewers", `events.count("page.viewed", days(7)) >= 1`)
	contacts := make([]storage.Contact, 8)
	for i := range contacts {
		contacts[i] = newContact(t, s)
		_, _, _, err := s.TrackEvent(ctx, storage.Event{ContactID: contacts[i].ID, Name: "page.viewed"})
		require.NoError(t, err)
	}
	evaluateAll(t, s)
	for _, c := range contacts {
		// An exit to record: the view leaves its window, and a change queues it.
		_, err := s.Pool().Exec(ctx, `UPDATE events SET occurred_at = now() - interval '8 days' WHERE contact_id = $1`, c.ID)
		require.NoError(t, err)
		_, _, err = s.UpsertContact(ctx, storage.ContactInput{ID: c.ID, Attributes: map[string]any{"seen": true}})
		require.NoError(t, err)
	}
	concurrently(len(contacts)+4, func(i int) {
		if i < len(contacts) {
			_, _, err := s.EraseContact(ctx, contacts[i].ID)
			require.NoError(t, err)
			return
		}
		_, err := s.EvaluateQueuedSegments(ctx, 2)
		require.NoError(t, err)
	})
	evaluateAll(t, s)
	require.Zero(t, count(t, s, `SELECT count(*) FROM segment_memberships`))
	require.Zero(t, count(t, s, `SELECT count(*) FROM segment_evaluations`))
}

// A segment reads the events its condition names; one whose event name
// comes from the contact reads them all.
func TestSegmentInput_ReadsTheEventsNamed(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	defineSegment(t, s, "buyers", `events.count("purchase", days(30)) >= 1`)
	defineSegment(t, s, "fans", `events.count(contact.?fav.orValue("none"), days(30)) >= 1`)
	c := newContact(t, s)
	_, _, err := s.UpsertContact(ctx, storage.ContactInput{ID: c.ID, Attributes: map[string]any{"fav": "page.viewed"}})
	require.NoError(t, err)
	_, _, _, err = s.TrackEvent(ctx, storage.Event{ContactID: c.ID, Name: "page.viewed"})
	require.NoError(t, err)
	require.Equal(t, 1, evaluateAll(t, s).Entered)
	members, err := s.SegmentMembers(ctx, "fans", "", 10)
	require.NoError(t, err)
	require.Len(t, members, 1)
	_, _, _, err = s.TrackEvent(ctx, storage.Event{ContactID: c.ID, Name: "purchase"})
	require.NoError(t, err)
	require.Equal(t, 1, evaluateAll(t, s).Entered)
	members, err = s.SegmentMembers(ctx, "buyers", "", 10)
	require.NoError(t, err)
	require.Len(t, members, 1)
}

// A segment over lead-score bands sees the contact's stored scores: a
// demo request takes intent into hot, the rescoring stores the band change
// (score.band_changed, through TrackEvent), which queues the contact's
// segments, and the contact enters.
func TestSegmentMembership_ScoreBands(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	m, err := score.Parse([]byte(`
id: intent_only
intent:
  - {id: demo, event: demo.requested, points: 50, half_life: 14d}
bands:
  intent: [{name: cold, below: 15}, {name: warm, below: 40}, {name: hot}]
`))
	require.NoError(t, err)
	_, _, err = s.PutScoreModel(ctx, m)
	require.NoError(t, err)
	c := newContact(t, s)
	defineSegment(t, s, "hot_leads", `score.intent_band == "hot"`)
	evaluateAll(t, s)

	_, _, _, err = s.TrackEvent(ctx, storage.Event{ContactID: c.ID, Name: "demo.requested"})
	require.NoError(t, err)
	changes, err := s.Rescore(ctx, c.ID, time.Now())
	require.NoError(t, err)
	require.NotEmpty(t, changes)
	require.Equal(t, 1, evaluateAll(t, s).Entered)
	verdicts, err := s.ExplainContactSegments(ctx, c.ID)
	require.NoError(t, err)
	require.Len(t, verdicts, 1)
	require.True(t, verdicts[0].Result.Member, "%+v", verdicts[0])
}

// A journey report's conversion by segment counts the runs whose contact
// was in the segment when the run began.
func TestFunnel_BySegment(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	jv, err := s.PublishJourney(ctx, journey.Spec{ID: "seg-report", Name: "R", Trigger: journey.Trigger{Type: journey.TriggerAPI},
		Reentry: journey.Reentry{Policy: journey.ReentryOnce}, Goal: &journey.Goal{Event: "purchase"},
		Steps: []journey.Step{{ID: "w", Wait: &journey.Wait{Duration: journey.Duration(time.Hour)}}}})
	require.NoError(t, err)
	defineSegment(t, s, "vips", `contact.?vip.orValue(false) == true`)
	in, out, late := newContact(t, s), newContact(t, s), newContact(t, s)
	before := time.Now().Add(-time.Hour)
	_, err = s.Pool().Exec(ctx, `INSERT INTO segment_memberships (segment_id, contact_id, segment_version, entered_at) VALUES
		('vips', $1, 1, $3), ('vips', $2, 1, now() + interval '1 hour')`, in.ID, late.ID, before)
	require.NoError(t, err)
	for i, c := range []storage.Contact{in, out, late} {
		require.NoError(t, s.CreateEnrollment(ctx, storage.Enrollment{ID: fmt.Sprintf("e_seg_%d", i), ContactID: c.ID, JourneyID: jv.JourneyID,
			Version: jv.Version, WorkflowID: "wf-seg-" + c.ID}, nil))
		_, _, _, err := s.TrackEvent(ctx, storage.Event{ContactID: c.ID, Name: "purchase", OccurredAt: time.Now().Add(time.Minute)})
		require.NoError(t, err)
	}
	f, err := s.Funnel(ctx, storage.FunnelQuery{JourneyID: jv.JourneyID, Version: jv.Version, Goal: "purchase", Window: 7 * 24 * time.Hour})
	require.NoError(t, err)
	require.Equal(t, int64(3), f.Entered)
	require.Equal(t, map[string]storage.SegmentFunnel{"vips": {Entered: 1, Converted: 1}}, f.BySegment,
		"only the contact in the segment when the run began")
}

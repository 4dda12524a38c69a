package storage_test

import (
	"context"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/internal/storage/storagetest"
)

func TestPublishJourney(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()

	sp := spec("welcome", journey.Trigger{Type: journey.TriggerEvent, Event: "signed_up"})
	v1, err := s.PublishJourney(ctx, sp)
	require.NoError(t, err)
	require.Equal(t, 1, v1.Version)
	require.Equal(t, "welcome", v1.JourneyID)
	require.Equal(t, sp, v1.Spec, "the spec round-trips through jsonb")

	sp2 := sp
	sp2.Name = "Welcome v2"
	v2, err := s.PublishJourney(ctx, sp2)
	require.NoError(t, err)
	require.Equal(t, 2, v2.Version)

	got, err := s.JourneyVersion(ctx, "welcome", 1)
	require.NoError(t, err)
	require.Equal(t, v1, got, "publishing v2 left v1 alone")
	latest, err := s.LatestJourneyVersion(ctx, "welcome")
	require.NoError(t, err)
	require.Equal(t, v2, latest)
	all, err := s.JourneyVersions(ctx, "welcome")
	require.NoError(t, err)
	require.Equal(t, []storage.JourneyVersion{v2, v1}, all)

	_, err = s.JourneyVersion(ctx, "welcome", 3)
	require.ErrorIs(t, err, storage.ErrNotFound)
	_, err = s.LatestJourneyVersion(ctx, "nope")
	require.ErrorIs(t, err, storage.ErrNotFound)
	_, err = s.PublishJourney(ctx, journey.Spec{})
	require.Error(t, err)

	// Published versions are immutable at the database level.
	_, err = s.Pool().Exec(ctx, `UPDATE journey_versions SET spec = '{}' WHERE journey_id = 'welcome' AND version = 1`)
	require.ErrorContains(t, err, "journey versions are immutable")
}

func TestJourneyTriggers(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()

	_, err := s.PublishJourney(ctx, spec("a", journey.Trigger{Type: journey.TriggerEvent, Event: "cart.abandoned"}))
	require.NoError(t, err)
	b1, err := s.PublishJourney(ctx, spec("b", journey.Trigger{Type: journey.TriggerEvent, Event: "cart.abandoned"}))
	require.NoError(t, err)
	// c used to be triggered by the event; its latest version is API-triggered.
	_, err = s.PublishJourney(ctx, spec("c", journey.Trigger{Type: journey.TriggerEvent, Event: "cart.abandoned"}))
	require.NoError(t, err)
	_, err = s.PublishJourney(ctx, spec("c", journey.Trigger{Type: journey.TriggerAPI}))
	require.NoError(t, err)
	a2, err := s.PublishJourney(ctx, spec("a", journey.Trigger{Type: journey.TriggerEvent, Event: "cart.abandoned"}))
	require.NoError(t, err)

	got, err := s.LatestVersionsTriggeredBy(ctx, "cart.abandoned")
	require.NoError(t, err)
	require.Equal(t, []storage.JourneyVersion{a2, b1}, got)
	got, err = s.LatestVersionsTriggeredBy(ctx, "purchase")
	require.NoError(t, err)
	require.Empty(t, got)

	list, err := s.Journeys(ctx)
	require.NoError(t, err)
	require.Len(t, list, 3)
	require.Equal(t, []string{"a", "b", "c"}, []string{list[0].JourneyID, list[1].JourneyID, list[2].JourneyID})
	require.Equal(t, []int{2, 1, 2}, []int{list[0].Version, list[1].Version, list[2].Version})
}

func TestPublishJourneyConcurrent(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()

	const n = 10
	versions := make([]int, n)
	errs := make([]error, n)
	concurrently(n, func(i int) {
		v, err := s.PublishJourney(ctx, spec("busy", journey.Trigger{Type: journey.TriggerAPI}))
		versions[i], errs[i] = v.Version, err
	})
	for _, err := range errs {
		require.NoError(t, err)
	}
	sort.Ints(versions)
	for i, v := range versions {
		require.Equal(t, i+1, v, "versions are distinct and consecutive")
	}
}

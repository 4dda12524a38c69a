package journey

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestReentryAdmits(t *testing.T) {
	t.Parallel()
	started := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	ended := started.Add(48 * time.Hour)
	week := Duration(7 * 24 * time.Hour)
	finished := LastRun{StartedAt: started, EndedAt: &ended}
	unfinished := LastRun{StartedAt: started}

	tests := []struct {
		name   string
		policy Reentry
		last   LastRun
		now    time.Time
		want   ReentryDecision
	}{
		{"once refuses for good", Reentry{Policy: ReentryOnce}, finished, ended.Add(365 * 24 * time.Hour), ReentryDecision{}},
		{"always admits at once", Reentry{Policy: ReentryAlways}, finished, ended, ReentryDecision{Allowed: true}},
		{"always admits a run whose end was not recorded", Reentry{Policy: ReentryAlways}, unfinished, started, ReentryDecision{Allowed: true}},
		{"cooldown refuses before it has passed since the end",
			Reentry{Policy: ReentryCooldown, Cooldown: week}, finished, ended.Add(6 * 24 * time.Hour),
			ReentryDecision{EligibleAt: ended.Add(7 * 24 * time.Hour)}},
		{"cooldown refuses a nanosecond early",
			Reentry{Policy: ReentryCooldown, Cooldown: week}, finished, ended.Add(7*24*time.Hour - 1),
			ReentryDecision{EligibleAt: ended.Add(7 * 24 * time.Hour)}},
		{"cooldown admits exactly when it has passed",
			Reentry{Policy: ReentryCooldown, Cooldown: week}, finished, ended.Add(7 * 24 * time.Hour), ReentryDecision{Allowed: true}},
		{"cooldown admits long after",
			Reentry{Policy: ReentryCooldown, Cooldown: week}, finished, ended.Add(30 * 24 * time.Hour), ReentryDecision{Allowed: true}},
		{"cooldown counts from the start when the end was not recorded",
			Reentry{Policy: ReentryCooldown, Cooldown: week}, unfinished, started.Add(7 * 24 * time.Hour), ReentryDecision{Allowed: true}},
		{"cooldown from the start refuses before it has passed",
			Reentry{Policy: ReentryCooldown, Cooldown: week}, unfinished, started.Add(24 * time.Hour),
			ReentryDecision{EligibleAt: started.Add(7 * 24 * time.Hour)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, tt.policy.Admits(tt.last, tt.now))
		})
	}
}

func TestReentryEligibleAtIsUTC(t *testing.T) {
	t.Parallel()
	paris := time.FixedZone("CET", 3600)
	ended := time.Date(2025, 3, 3, 10, 0, 0, 0, paris)
	got := Reentry{Policy: ReentryCooldown, Cooldown: Duration(time.Hour)}.Admits(LastRun{StartedAt: ended, EndedAt: &ended}, ended)
	require.False(t, got.Allowed)
	require.Equal(t, time.UTC, got.EligibleAt.Location())
	require.True(t, got.EligibleAt.Equal(ended.Add(time.Hour)))
}

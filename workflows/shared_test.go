package workflows

import (
	"testing"

	"github.com/tutti-dev/tutti/internal/config"
)

func TestHandOverPoint(t *testing.T) {
	if HandOverHeadroom != 15 {
		t.Fatalf("HandOverHeadroom is %d; update this table and the README's bound", HandOverHeadroom)
	}
	if config.MinContinueAsNewAfter < 2*HandOverHeadroom {
		t.Errorf("config.MinContinueAsNewAfter is %d; TUTTI_CONTINUE_AS_NEW_AFTER must leave room for twice the headroom, %d",
			config.MinContinueAsNewAfter, 2*HandOverHeadroom)
	}
	for _, tc := range []struct {
		name    string
		setting int
		want    int
	}{
		{"0 is the default setting", 0, DefaultContinueAsNewAfter - HandOverHeadroom},
		{"a negative setting is the default", -1, DefaultContinueAsNewAfter - HandOverHeadroom},
		{"the default, written out", 5000, 4985},
		{"a test setting", 400, 385},
		{"exactly twice the headroom: both rules agree", 2 * HandOverHeadroom, HandOverHeadroom},
		{"below twice the headroom: half the setting", 20, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := HandOverPoint(tc.setting); got != tc.want {
				t.Errorf("HandOverPoint(%d) = %d, want %d", tc.setting, got, tc.want)
			}
		})
	}
}

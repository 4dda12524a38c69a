package workflows

import "testing"

func TestHandOverPoint(t *testing.T) {
	if HandOverHeadroom != 15 {
		t.Fatalf("HandOverHeadroom is %d; update this table and the README's bound", HandOverHeadroom)
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

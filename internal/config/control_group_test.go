package config

import (
	"strings"
	"testing"
)

func TestControlGroupShare(t *testing.T) {
	for _, tc := range []struct {
		name, env, wantErr string
		set                bool
		want               float64
	}{
		{name: "default: no control group", want: 0},
		{name: "five percent", set: true, env: "0.05", want: 0.05},
		{name: "zero", set: true, env: "0", want: 0},
		{name: "the most", set: true, env: "0.5", want: 0.5},
		{name: "over half", set: true, env: "0.6", wantErr: "TUTTI_CONTROL_GROUP_SHARE"},
		{name: "negative", set: true, env: "-0.1", wantErr: "TUTTI_CONTROL_GROUP_SHARE"},
		{name: "a percentage", set: true, env: "5%", wantErr: "TUTTI_CONTROL_GROUP_SHARE"},
		{name: "NaN", set: true, env: "NaN", wantErr: "TUTTI_CONTROL_GROUP_SHARE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := load(func(k string) (string, bool) {
				if k == "TUTTI_CONTROL_GROUP_SHARE" && tc.set {
					return tc.env, true
				}
				return "", false
			})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.ControlGroupShare != tc.want {
				t.Errorf("ControlGroupShare = %v, want %v", c.ControlGroupShare, tc.want)
			}
		})
	}
}

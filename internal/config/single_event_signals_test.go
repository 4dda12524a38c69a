package config

import (
	"strings"
	"testing"
)

func TestSingleEventSignals(t *testing.T) {
	for _, tc := range []struct {
		name, env, wantErr string
		set, want          bool
	}{
		{name: "default: batches"},
		{name: "true", set: true, env: "true", want: true},
		{name: "false", set: true, env: "false"},
		{name: "anything else is refused", set: true, env: "yes", wantErr: "TUTTI_SINGLE_EVENT_SIGNALS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := load(func(k string) (string, bool) {
				if k == "TUTTI_SINGLE_EVENT_SIGNALS" && tc.set {
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
			if c.SingleEventSignals != tc.want {
				t.Errorf("SingleEventSignals = %v, want %v", c.SingleEventSignals, tc.want)
			}
		})
	}
}

package config

import (
	"strings"
	"testing"
)

func TestContinueAsNewAfter(t *testing.T) {
	for _, tc := range []struct {
		name, env, wantErr string
		want               int
	}{
		{name: "default", env: "", want: 0},
		{name: "0 is the default", env: "0"},
		{name: "the smallest", env: "30", want: 30},
		{name: "large", env: "20000", want: 20000},
		{name: "below the smallest", env: "29", wantErr: "at least 30"},
		{name: "negative", env: "-1", wantErr: "TUTTI_CONTINUE_AS_NEW_AFTER"},
		{name: "not a number", env: "lots", wantErr: "TUTTI_CONTINUE_AS_NEW_AFTER"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := load(func(k string) (string, bool) {
				if k == "TUTTI_CONTINUE_AS_NEW_AFTER" && tc.env != "" {
					return tc.env, true
				}
				return "", false
			})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.ContinueAsNewAfter != tc.want {
				t.Errorf("ContinueAsNewAfter = %d, want %d", c.ContinueAsNewAfter, tc.want)
			}
		})
	}
}

package config

import (
	"strings"
	"testing"
)

func TestMetricsAddr(t *testing.T) {
	for _, tc := range []struct {
		name, env, want, wantErr string
		set                      bool
	}{
		{name: "default", want: DefaultMetricsAddr},
		{name: "blank is the default", set: true, env: "  ", want: DefaultMetricsAddr},
		{name: "explicit", set: true, env: "0.0.0.0:9100", want: "0.0.0.0:9100"},
		{name: "port only", set: true, env: ":9100", want: ":9100"},
		{name: "off disables", set: true, env: "off", want: ""},
		{name: "OFF disables", set: true, env: "OFF", want: ""},
		{name: "no port", set: true, env: "localhost", wantErr: "TUTTI_METRICS_ADDR"},
		{name: "empty port", set: true, env: "localhost:", wantErr: "TUTTI_METRICS_ADDR"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := load(func(k string) (string, bool) {
				if k == "TUTTI_METRICS_ADDR" && tc.set {
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
			if c.MetricsAddr != tc.want {
				t.Errorf("MetricsAddr = %q, want %q", c.MetricsAddr, tc.want)
			}
		})
	}
}

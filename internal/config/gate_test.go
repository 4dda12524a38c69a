package config

import (
	"strings"
	"testing"
)

func TestGateBatching(t *testing.T) {
	for _, tc := range []struct {
		name            string
		env             map[string]string
		batch, inFlight int
		events          int
		wantErr         string
	}{
		{name: "defaults", batch: 0, inFlight: 0},
		{name: "grouping off", env: map[string]string{"TUTTI_GATE_MAX_BATCH": "1"}, batch: 1},
		{name: "both", env: map[string]string{"TUTTI_GATE_MAX_BATCH": "16", "TUTTI_GATE_MAX_IN_FLIGHT": " 4 "}, batch: 16, inFlight: 4},
		{name: "zero batch", env: map[string]string{"TUTTI_GATE_MAX_BATCH": "0"}, wantErr: "TUTTI_GATE_MAX_BATCH"},
		{name: "negative in flight", env: map[string]string{"TUTTI_GATE_MAX_IN_FLIGHT": "-2"}, wantErr: "TUTTI_GATE_MAX_IN_FLIGHT"},
		{name: "not a number", env: map[string]string{"TUTTI_GATE_MAX_BATCH": "lots"}, wantErr: "TUTTI_GATE_MAX_BATCH"},
		{name: "events alone", env: map[string]string{"TUTTI_EVENT_MAX_BATCH": "1"}, events: 1},
		{name: "zero events", env: map[string]string{"TUTTI_EVENT_MAX_BATCH": "0"}, wantErr: "TUTTI_EVENT_MAX_BATCH"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := load(func(k string) (string, bool) {
				v, ok := tc.env[k]
				return v, ok
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
			if c.GateMaxBatch != tc.batch || c.GateMaxInFlight != tc.inFlight {
				t.Errorf("GateMaxBatch, GateMaxInFlight = %d, %d, want %d, %d", c.GateMaxBatch, c.GateMaxInFlight, tc.batch, tc.inFlight)
			}
			if c.EventMaxBatch != tc.events {
				t.Errorf("EventMaxBatch = %d, want %d", c.EventMaxBatch, tc.events)
			}
		})
	}
}

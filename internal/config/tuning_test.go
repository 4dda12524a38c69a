package config

import (
	"strings"
	"testing"
	"time"
)

// The pool size and the worker settings issue 10 chose from measurements.
func TestPoolAndWorkerSettings(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		check   func(Config) bool
		wantErr string
	}{
		{name: "defaults", check: func(c Config) bool {
			return c.DatabaseMaxConns == DefaultDatabaseMaxConns && c.WorkerWorkflowPollers == 0 && c.WorkerActivityPollers == 0 &&
				c.WorkerStickyTimeout == 0 && c.WorkerCacheSize == DefaultWorkerCacheSize
		}},
		{name: "set", env: map[string]string{"TUTTI_DATABASE_MAX_CONNS": "32", "TUTTI_WORKER_WORKFLOW_POLLERS": "8",
			"TUTTI_WORKER_ACTIVITY_POLLERS": "4", "TUTTI_WORKER_STICKY_TIMEOUT": "2s", "TUTTI_WORKER_CACHE_SIZE": "2000"},
			check: func(c Config) bool {
				return c.DatabaseMaxConns == 32 && c.WorkerWorkflowPollers == 8 && c.WorkerActivityPollers == 4 &&
					c.WorkerStickyTimeout == 2*time.Second && c.WorkerCacheSize == 2000
			}},
		{name: "no connections", env: map[string]string{"TUTTI_DATABASE_MAX_CONNS": "0"}, wantErr: "TUTTI_DATABASE_MAX_CONNS"},
		{name: "pollers not a number", env: map[string]string{"TUTTI_WORKER_WORKFLOW_POLLERS": "many"}, wantErr: "TUTTI_WORKER_WORKFLOW_POLLERS"},
		{name: "sticky under a second", env: map[string]string{"TUTTI_WORKER_STICKY_TIMEOUT": "200ms"}, wantErr: "TUTTI_WORKER_STICKY_TIMEOUT"},
		{name: "sticky not a duration", env: map[string]string{"TUTTI_WORKER_STICKY_TIMEOUT": "5"}, wantErr: "TUTTI_WORKER_STICKY_TIMEOUT"},
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
			if !tc.check(c) {
				t.Errorf("config %+v", c)
			}
		})
	}
}

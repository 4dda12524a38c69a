package api

import (
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
)

func TestHoldFor(t *testing.T) {
	now := time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)
	const handOver = 385
	recent, stale := now.Add(-time.Second), now.Add(-holdMax)
	scheduled, started := enumspb.PENDING_WORKFLOW_TASK_STATE_SCHEDULED, enumspb.PENDING_WORKFLOW_TASK_STATE_STARTED
	for _, tc := range []struct {
		name string
		v    runView
		want string
	}{
		{"short and idle", runView{historyLength: 100}, ""},
		{"short, a task scheduled: the signal joins it", runView{historyLength: 100, task: scheduled, taskSince: recent}, ""},
		{"a task running: a signal now would be buffered", runView{historyLength: 100, task: started, taskSince: recent}, "busy"},
		{"a task running for holdMax: stuck, hold nothing", runView{historyLength: 100, task: started, taskSince: stale}, ""},
		{"at the hand-over point, a task scheduled: it hands over", runView{historyLength: handOver, task: scheduled, taskSince: recent}, "hand_over"},
		{"past it, a task running", runView{historyLength: handOver + 3, task: started, taskSince: recent}, "busy"},
		{"past it, an activity running: the step ends, then it hands over",
			runView{historyLength: handOver + 3, activities: []pendingActivity{{since: recent}}}, "hand_over"},
		{"past it, an activity retrying: it may take hours",
			runView{historyLength: handOver + 3, activities: []pendingActivity{{since: recent, retried: true}}}, ""},
		{"past it, an activity running for holdMax", runView{historyLength: handOver + 3, activities: []pendingActivity{{since: stale}}}, ""},
		{"past it, a task failing for holdMax", runView{historyLength: handOver + 3, task: scheduled, taskSince: stale}, ""},
		{"past it and idle: only a signal wakes it (older version, a deferral)", runView{historyLength: handOver + 3}, ""},
		{"just short of it, an activity running", runView{historyLength: handOver - 1, activities: []pendingActivity{{since: recent}}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := holdFor(tc.v, handOver, now); got != tc.want {
				t.Errorf("holdFor(%+v) = %q, want %q", tc.v, got, tc.want)
			}
		})
	}
}

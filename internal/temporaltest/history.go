package temporaltest

import (
	"bytes"
	"context"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/proto"
)

// Scanning histories for personal data.
//
// Whatever a workflow is given, told or returns stays in its Temporal
// history until the namespace's retention ends: workflow and activity
// inputs and results, signals, failure messages, search attributes, memo.
// Tutti keeps emails, phone numbers and free text out of all of it. These
// helpers read a workflow's raw history, the way the server stores it (no
// data converter, no codec), so a test can search it for values that must
// not be there.

// RunHistory is the history of one run of a workflow.
type RunHistory struct {
	RunID  string
	Events []*historypb.HistoryEvent
}

// WorkflowHistory returns the history of a workflow's run and of every run
// before it in its chain (continue-as-new, retries, cron), oldest run first.
// runID "" means the current run. The chain is followed through each run's
// started event (continued_execution_run_id), not through visibility, so
// it is complete as soon as the runs exist.
func WorkflowHistory(ctx context.Context, c client.Client, workflowID, runID string) ([]RunHistory, error) {
	if runID == "" {
		desc, err := c.DescribeWorkflowExecution(ctx, workflowID, "")
		if err != nil {
			return nil, fmt.Errorf("describing workflow %s: %w", workflowID, err)
		}
		runID = desc.GetWorkflowExecutionInfo().GetExecution().GetRunId()
	}
	var runs []RunHistory
	for seen := map[string]bool{}; runID != "" && !seen[runID]; {
		seen[runID] = true
		run := RunHistory{RunID: runID}
		it := c.GetWorkflowHistory(ctx, workflowID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				return nil, fmt.Errorf("history of %s run %s: %w", workflowID, runID, err)
			}
			run.Events = append(run.Events, ev)
		}
		runs = append([]RunHistory{run}, runs...)
		runID = ""
		if len(run.Events) > 0 {
			runID = run.Events[0].GetWorkflowExecutionStartedEventAttributes().GetContinuedExecutionRunId()
		}
	}
	return runs, nil
}

// RawEvent is one history event in its wire encoding. Protobuf stores every
// string and bytes field as is, so Raw holds each payload's data (inputs,
// results, signal arguments, markers, memo, search attributes, headers) and
// each failure's message and stack trace byte for byte.
type RawEvent struct {
	RunID     string
	EventID   int64
	EventType enumspb.EventType
	Raw       []byte
}

// RawHistory returns every event of the workflow's run chain (see
// WorkflowHistory), encoded.
func RawHistory(ctx context.Context, c client.Client, workflowID, runID string) ([]RawEvent, error) {
	runs, err := WorkflowHistory(ctx, c, workflowID, runID)
	if err != nil {
		return nil, err
	}
	var out []RawEvent
	for _, r := range runs {
		for _, ev := range r.Events {
			raw, err := proto.Marshal(ev)
			if err != nil {
				return nil, fmt.Errorf("encoding event %d of %s run %s: %w", ev.GetEventId(), workflowID, r.RunID, err)
			}
			out = append(out, RawEvent{RunID: r.RunID, EventID: ev.GetEventId(), EventType: ev.GetEventType(), Raw: raw})
		}
	}
	return out, nil
}

// HistoryHit is a needle found in a history event.
type HistoryHit struct {
	Needle    string
	RunID     string
	EventID   int64
	EventType enumspb.EventType
}

func (h HistoryHit) String() string {
	return fmt.Sprintf("%q in run %s event %d (%s)", h.Needle, h.RunID, h.EventID, h.EventType)
}

// FindInHistory searches the raw bytes of every event of the workflow's
// current run chain (see RawHistory) for each needle, ignoring ASCII case,
// and returns where each was found. Search for every form a value may take:
// an E.164 number and the digits as a person types them. JSON payloads
// escape <, > and & (as \u003c...), so a needle should not contain them.
func FindInHistory(ctx context.Context, c client.Client, workflowID string, needles ...string) ([]HistoryHit, error) {
	events, err := RawHistory(ctx, c, workflowID, "")
	if err != nil {
		return nil, err
	}
	var hits []HistoryHit
	for _, n := range needles {
		if n == "" {
			return nil, fmt.Errorf("empty needle")
		}
		needle := asciiLower([]byte(n))
		for _, ev := range events {
			if bytes.Contains(asciiLower(ev.Raw), needle) {
				hits = append(hits, HistoryHit{Needle: n, RunID: ev.RunID, EventID: ev.EventID, EventType: ev.EventType})
			}
		}
	}
	return hits, nil
}

// asciiLower lower-cases ASCII letters only, leaving every other byte (the
// encoding is binary) as it is.
func asciiLower(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		out[i] = c
	}
	return out
}

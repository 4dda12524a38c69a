package audience

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/tutti-dev/tutti/internal/provider"
)

// Action is what a request does to its members.
type Action string

// The actions.
const (
	Add    Action = "add"
	Remove Action = "remove"
)

// Platform is one ad platform's audience API: add or remove a batch of
// members (at most the destination's MaxBatch) in one audience. Both are
// idempotent on every platform (adding a member twice, or removing one
// that is not there, is accepted), which is what lets a sync retry a
// request whose answer it never saw.
type Platform interface {
	Destination() Destination
	Apply(ctx context.Context, audience string, action Action, members []Member) (Result, error)
}

// Replacer is a platform that can replace an audience's members whole
// (Meta's usersreplace), which a full sync uses to repair drift. The
// others are repaired by sending every member again (adds are idempotent).
type Replacer interface {
	Replace(ctx context.Context, audience string, s ReplaceSession, members []Member) (Result, error)
}

// ReplaceSession numbers one batch of a full replace.
type ReplaceSession struct {
	ID             int64
	Batch          int // from 1
	Last           bool
	EstimatedTotal int
}

// Result is what a platform said of one accepted request.
type Result struct {
	// RequestID is the platform's id for the request, when it gives one
	// (Google's requestId, Meta's session_id).
	RequestID string `json:"request_id,omitempty"`
	// Received is how many members the platform took.
	Received int `json:"received"`
	// Invalid counts members the platform refused; per-member refusals
	// are recorded, never retried.
	Invalid int `json:"invalid"`
	// Refused names the refused members, when the platform says which
	// (LinkedIn answers per element); the reason is the platform's.
	Refused map[string]string `json:"refused,omitempty"`
}

// APIError is a request the platform refused as a whole, or one that got
// no answer.
type APIError struct {
	Destination Destination
	Status      int    // HTTP status, 0 when no answer arrived
	Code        string // the platform's error code, if any
	Message     string
	// RetryAfter is the platform's Retry-After, a floor under the backoff.
	RetryAfter time.Duration
	Err        error // the transport error, when no answer arrived
}

func (e *APIError) Error() string {
	switch {
	case e.Status == 0:
		return fmt.Sprintf("%s: no answer: %v", e.Destination, e.Err)
	case e.Code != "":
		return fmt.Sprintf("%s: HTTP %d (%s): %s", e.Destination, e.Status, e.Code, e.Message)
	}
	return fmt.Sprintf("%s: HTTP %d: %s", e.Destination, e.Status, e.Message)
}

func (e *APIError) Unwrap() error { return e.Err }

// Retryable reports whether the request should be tried again: throttled
// (429), a server error (5xx), or no answer at all. Audience requests are
// idempotent, so even a request that may have been applied is safe to
// repeat. Other 4xx are permanent: the request itself is wrong (an expired
// token, a deleted audience) and repeating it cannot help.
func (e *APIError) Retryable() bool {
	return e.Status == 0 || provider.RetryableStatus(e.Status)
}

// IsRetryable reports whether err is an APIError worth retrying.
func IsRetryable(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Retryable()
}

// call sends req with client (http.DefaultClient when nil) and reads the
// answer, at most 1 MiB: a request that got no answer is an APIError with
// Status 0, and an answer other than 2xx one with its status, Retry-After
// and body (which parse may refine with the platform's own error code).
func call(client *http.Client, d Destination, req *http.Request) ([]byte, error) {
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, &APIError{Destination: d, Err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, &APIError{Destination: d, Err: err}
	}
	if resp.StatusCode/100 != 2 {
		return body, &APIError{Destination: d, Status: resp.StatusCode, RetryAfter: provider.RetryAfter(resp.Header, time.Now()),
			Message: strings.TrimSpace(string(body))}
	}
	return body, nil
}

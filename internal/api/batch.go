package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/tutti-dev/tutti/internal/strictjson"
)

// Batches: POST /v1/events/batch and POST /v1/contacts/batch take
// {"items": [...]}, each item exactly what the single route takes, and run
// each through the single route's function (track, identify): one item
// failing does not undo or stop the others. Contacts run in order. Events
// about one contact (by the identifier they give) run one after the other,
// in order; events about different contacts run at once (up to
// batchLanes), so a batch shares TrackEvent's grouped transactions instead
// of paying a commit per item, and a contact's events keep their order. The answer is 200 whenever the batch itself was read, with one
// result per item, in order, carrying the status and the answer (result) or
// the error the single route would have given; an error's field paths name
// the item ("items[3].email"). The batch itself is refused whole (400
// naming items, 413 over TUTTI_API_MAX_BATCH_BODY_BYTES) when it is not an
// object with 1 to MaxBatchItems items.
//
// Retrying a batch is safe the way retrying each item is: an event id
// already stored answers duplicate, a contact found by its identifiers is
// updated with the same values.

// MaxBatchItems is the most items one batch may carry.
const MaxBatchItems = 1000

// batchRequest is a batch's body; items are decoded one by one so a bad
// item is that item's error, not the batch's.
type batchRequest struct {
	Items []json.RawMessage `json:"items"`
}

// BatchAnswer answers a batch: one result per item, in order.
type BatchAnswer[T any] struct {
	Results []BatchResult[T] `json:"results"`
	// Succeeded and Failed count the results with and without an error.
	Succeeded int `json:"succeeded"`
	Failed    int `json:"failed"`
}

// BatchResult is one item's outcome: the status and answer the single
// route would have given, or its error.
type BatchResult[T any] struct {
	Index  int    `json:"index"`
	Status int    `json:"status"`
	Result *T     `json:"result,omitempty"`
	Error  *Error `json:"error,omitempty"`
}

func (s *Server) trackEventBatch(w http.ResponseWriter, r *http.Request) {
	serveBatch(w, r, s.track, func(e eventRequest) string {
		return laneKey(e.ContactID, e.ExternalID, e.Email)
	})
}

// identifyContactBatch runs its items in one lane, in order: an item may
// merge identifiers another item of the batch gives too, and the later
// item's attributes must win.
func (s *Server) identifyContactBatch(w http.ResponseWriter, r *http.Request) {
	serveBatch(w, r, s.identify, func(identifyRequest) string { return "" })
}

// batchLanes bounds how many of a batch's contacts run at once.
const batchLanes = 16

// laneKey is the lane of an item: the identifiers it gives, as written
// (two spellings of one address may share a contact and still run at
// once: each is still stored under the contact's lock).
func laneKey(ids ...string) string { return strings.Join(ids, "\x00") }

// serveBatch reads a batch and runs one per item: the items of one lane
// (key) in order, lanes at once, answers in item order.
func serveBatch[Req, Res any](w http.ResponseWriter, r *http.Request, one func(context.Context, Req) (Res, int, error), key func(Req) string) {
	items, err := decodeBatch(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	results := make([]BatchResult[Res], len(items))
	reqs := make([]Req, len(items))
	lanes := map[string][]int{}
	var order []string
	for i, raw := range items {
		results[i] = BatchResult[Res]{Index: i}
		if err := decodeStrict(raw, &reqs[i]); err != nil {
			results[i].Error = itemError(apiError(r, err), i)
			results[i].Status = results[i].Error.Status
			continue
		}
		k := key(reqs[i])
		if _, ok := lanes[k]; !ok {
			order = append(order, k)
		}
		lanes[k] = append(lanes[k], i)
	}
	var wg sync.WaitGroup
	slots := make(chan struct{}, batchLanes)
	for _, k := range order {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			for _, i := range lanes[k] {
				out, status, err := one(r.Context(), reqs[i])
				if err != nil {
					results[i].Error = itemError(apiError(r, err), i)
					results[i].Status = results[i].Error.Status
					continue
				}
				results[i].Status, results[i].Result = status, &out
			}
		})
	}
	wg.Wait()
	ans := BatchAnswer[Res]{Results: results}
	for _, res := range results {
		if res.Error != nil {
			ans.Failed++
		} else {
			ans.Succeeded++
		}
	}
	writeJSON(w, http.StatusOK, ans)
}

// decodeBatch reads {"items": [...]} and returns the items undecoded. Text
// problems (strictjson) inside an item are left to that item's decoding;
// any other problem refuses the batch.
func decodeBatch(r *http.Request) ([]json.RawMessage, error) {
	if r.Body == nil {
		return nil, invalid(FieldError{Path: "", Message: "request body is required"})
	}
	data, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err // *http.MaxBytesError: 413
	}
	var fe fieldErrors
	for _, p := range strictjson.Check(data) {
		if !strings.HasPrefix(p.Path, "items[") {
			fe.add(p.Path, "%s", p.Message)
		}
	}
	if err := fe.err(); err != nil {
		return nil, err
	}
	var req batchRequest
	if err := decodeChecked(data, &req); err != nil {
		return nil, err
	}
	switch {
	case len(req.Items) == 0:
		return nil, invalid(FieldError{Path: "items", Message: fmt.Sprintf("required: an array of 1 to %d items", MaxBatchItems)})
	case len(req.Items) > MaxBatchItems:
		return nil, invalid(FieldError{Path: "items", Message: fmt.Sprintf("at most %d items, got %d: split the batch", MaxBatchItems, len(req.Items))})
	}
	return req.Items, nil
}

// itemError is e for item i: a copy whose field paths start with
// items[i], naming the item even when e named no field.
func itemError(e *Error, i int) *Error {
	out := *e
	prefix := fmt.Sprintf("items[%d]", i)
	out.Fields = make([]FieldError, 0, len(e.Fields))
	for _, f := range e.Fields {
		path := prefix
		switch {
		case f.Path == "":
		case strings.HasPrefix(f.Path, "["):
			path += f.Path
		default:
			path += "." + f.Path
		}
		out.Fields = append(out.Fields, FieldError{Path: path, Message: f.Message})
	}
	if len(out.Fields) == 0 {
		out.Fields = []FieldError{{Path: prefix, Message: e.Message}}
	}
	return &out
}

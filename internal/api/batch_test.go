package api_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/api"
	"github.com/tutti-dev/tutti/internal/config"
	"github.com/tutti-dev/tutti/internal/storage/storagetest"
	"github.com/tutti-dev/tutti/internal/temporaltest"
)

// Body limits of the batch harness: the single routes' limit is below what
// the batch routes and the SendGrid webhook take.
const (
	batchAPIMaxBody   = 16 << 10
	batchMaxBatchBody = 64 << 10
	batchSendGridBody = 96 << 10
)

// newBatchHarness serves the API with small, distinct body limits and a
// SendGrid verification key.
func newBatchHarness(t *testing.T) *hookHarness {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	require.NoError(t, err)
	store := storagetest.New(t)
	tc := temporaltest.Client(t, temporalAddr)
	cfg := config.Config{
		APIToken:                 token,
		APIMaxBody:               batchAPIMaxBody,
		APIMaxBatchBody:          batchMaxBatchBody,
		SendGridWebhookMaxBody:   batchSendGridBody,
		SendGridWebhookPublicKey: base64.StdEncoding.EncodeToString(der),
		SendGridWebhookMaxAge:    10 * time.Minute,
		DefaultRegion:            "US",
		DefaultTimeZone:          "UTC",
		SignalTimeout:            10 * time.Second,
	}
	url, hc := serveAPI(t, api.Deps{
		Store: store, Temporal: tc, Config: cfg,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	return &hookHarness{harness: &harness{t: t, store: store, tc: tc, url: url, client: hc}, key: key}
}

// batchResults returns each result's status and error field paths.
func batchResults(t *testing.T, r response) (statuses []int, paths [][]string) {
	t.Helper()
	results, ok := r.body["results"].([]any)
	require.True(t, ok, r.raw)
	for i, res := range results {
		m := res.(map[string]any)
		require.EqualValues(t, i, m["index"], r.raw)
		statuses = append(statuses, int(m["status"].(float64)))
		var p []string
		if e, ok := m["error"].(map[string]any); ok {
			fs, _ := e["fields"].([]any)
			for _, f := range fs {
				p = append(p, f.(map[string]any)["path"].(string))
			}
		}
		paths = append(paths, p)
	}
	return statuses, paths
}

func TestEventBatch(t *testing.T) {
	h := newBatchHarness(t)
	h.newContact(map[string]any{"external_id": "b-1", "email": "b@example.com"})

	batch := map[string]any{"items": []any{
		map[string]any{"event_id": "b-ev-1", "external_id": "b-1", "name": "purchase"},
		map[string]any{"event_id": "b-ev-2", "external_id": "b-1"},
		map[string]any{"event_id": "b-ev-3", "external_id": "nobody", "name": "purchase"},
		map[string]any{"event_id": "b-ev-4", "email": "B@example.com", "name": "viewed", "properties": map[string]any{"n": 1}},
		map[string]any{"event_id": "b-ev-5", "external_id": "b-1", "name": "purchase", "colour": "red"},
		map[string]any{"event_id": "b-ev-6", "external_id": "b-1", "name": "a\x00b"},
		"not an object",
	}}
	r := h.call("POST", "/v1/events/batch", batch, http.StatusOK)
	statuses, paths := batchResults(t, r)
	require.Equal(t, []int{202, 400, 404, 202, 400, 400, 400}, statuses, r.raw)
	require.Equal(t, [][]string{nil, {"items[1].name"}, {"items[2].external_id"}, nil, {"items[4].colour"}, {"items[5].name"}, {"items[6]"}}, paths, r.raw)
	require.EqualValues(t, 2, r.body["succeeded"])
	require.EqualValues(t, 5, r.body["failed"])
	require.Equal(t, 2, h.count("events"), "only the valid items are stored")
	first := r.body["results"].([]any)[0].(map[string]any)["result"].(map[string]any)
	require.Equal(t, false, first["duplicate"])
	require.Equal(t, "b-ev-1", first["event"].(map[string]any)["id"])

	// A retried batch stores nothing twice: the stored items are duplicates.
	r = h.call("POST", "/v1/events/batch", batch, http.StatusOK)
	statuses, _ = batchResults(t, r)
	require.Equal(t, []int{202, 400, 404, 202, 400, 400, 400}, statuses, r.raw)
	for _, i := range []int{0, 3} {
		res := r.body["results"].([]any)[i].(map[string]any)["result"].(map[string]any)
		require.Equal(t, true, res["duplicate"], "item %d: %s", i, r.raw)
	}
	require.Equal(t, 2, h.count("events"))

	// The same event id twice in one batch: the second is the duplicate; an
	// id reused for another event is that item's conflict.
	r = h.call("POST", "/v1/events/batch", map[string]any{"items": []any{
		map[string]any{"event_id": "b-ev-7", "external_id": "b-1", "name": "purchase"},
		map[string]any{"event_id": "b-ev-7", "external_id": "b-1", "name": "purchase"},
		map[string]any{"event_id": "b-ev-1", "external_id": "b-1", "name": "refund"},
	}}, http.StatusOK)
	statuses, paths = batchResults(t, r)
	require.Equal(t, []int{202, 202, 409}, statuses, r.raw)
	require.Equal(t, []string{"items[2].event_id"}, paths[2])
	require.Equal(t, true, r.body["results"].([]any)[1].(map[string]any)["result"].(map[string]any)["duplicate"])
	require.Equal(t, 3, h.count("events"))
}

func TestContactBatch(t *testing.T) {
	h := newBatchHarness(t)
	batch := map[string]any{"items": []any{
		map[string]any{"external_id": "cb-1", "email": "cb1@example.com", "attributes": map[string]any{"plan": "pro"}},
		map[string]any{"external_id": "cb-2", "email": "not an email"},
		map[string]any{"external_id": "cb-3", "phone": "+14155550123"},
	}}
	r := h.call("POST", "/v1/contacts/batch", batch, http.StatusOK)
	statuses, paths := batchResults(t, r)
	require.Equal(t, []int{201, 400, 201}, statuses, r.raw)
	require.Equal(t, [][]string{nil, {"items[1].email"}, nil}, paths, r.raw)
	require.Equal(t, 2, h.count("contacts"))

	// A retry finds the contacts it created: updated, not created again.
	r = h.call("POST", "/v1/contacts/batch", batch, http.StatusOK)
	statuses, _ = batchResults(t, r)
	require.Equal(t, []int{200, 400, 200}, statuses, r.raw)
	require.Equal(t, 2, h.count("contacts"))

	// Identifiers of two different contacts: that item's conflict.
	r = h.call("POST", "/v1/contacts/batch", map[string]any{"items": []any{
		map[string]any{"external_id": "cb-1", "phone": "+14155550123"},
	}}, http.StatusOK)
	statuses, paths = batchResults(t, r)
	require.Equal(t, []int{409}, statuses, r.raw)
	require.Equal(t, []string{"items[0]"}, paths[0])
}

func TestBatchRefusedWhole(t *testing.T) {
	h := newBatchHarness(t)
	h.newContact(map[string]any{"external_id": "w-1"})
	for _, path := range []string{"/v1/events/batch", "/v1/contacts/batch"} {
		over := make([]any, api.MaxBatchItems+1)
		for i := range over {
			over[i] = map[string]any{}
		}
		r := h.call("POST", path, map[string]any{"items": over}, http.StatusBadRequest)
		require.Equal(t, []string{"items"}, r.fieldPaths(), r.raw)

		r = h.call("POST", path, map[string]any{"items": []any{}}, http.StatusBadRequest)
		require.Equal(t, []string{"items"}, r.fieldPaths(), r.raw)
		r = h.call("POST", path, map[string]any{}, http.StatusBadRequest)
		require.Equal(t, []string{"items"}, r.fieldPaths(), r.raw)
		r = h.call("POST", path, map[string]any{"items": "x"}, http.StatusBadRequest)
		require.Equal(t, []string{"items"}, r.fieldPaths(), r.raw)
		r = h.call("POST", path, map[string]any{"items": []any{map[string]any{}}, "extra": 1}, http.StatusBadRequest)
		require.Equal(t, []string{"extra"}, r.fieldPaths(), r.raw)
		r = h.do("POST", path, `{"items": [{"external_id": "w-1"}], "items": []}`, "application/json", "Bearer "+token)
		require.Equal(t, http.StatusBadRequest, r.status, r.raw)

		// Over the batch limit: 413, whatever the items.
		item := map[string]any{"external_id": "w-1", "event_id": "big", "name": strings.Repeat("x", 100)}
		items := make([]any, batchMaxBatchBody/100)
		for i := range items {
			items[i] = item
		}
		r = h.call("POST", path, map[string]any{"items": items}, http.StatusRequestEntityTooLarge)
		require.Equal(t, "body_too_large", r.errorCode())
	}
	// The batch limit is the batch routes' own: a body over the single
	// routes' limit is read.
	items := make([]any, 200)
	for i := range items {
		items[i] = map[string]any{"event_id": fmt.Sprintf("w-%03d", i), "external_id": "w-1", "name": "viewed"}
	}
	r := h.call("POST", "/v1/events/batch", map[string]any{"items": items}, http.StatusOK)
	require.Greater(t, len(r.raw), batchAPIMaxBody)
	require.EqualValues(t, 200, r.body["succeeded"], r.raw)
	require.Equal(t, 200, h.count("events"))
}

func TestSendGridWebhookBodyLimit(t *testing.T) {
	h := newBatchHarness(t)
	now := time.Now().Unix()
	events := func(n int) []byte {
		evs := make([]sgEvent, n)
		for i := range evs {
			evs[i] = sgEvent{"sg_event_id": fmt.Sprintf("limit-%05d", i), "event": "open", "email": "nobody@example.com", "timestamp": now}
		}
		return sgBatch(t, evs...)
	}

	body := events(600)
	require.Greater(t, len(body), batchAPIMaxBody)
	require.Less(t, len(body), batchSendGridBody)
	r := h.sendGrid(body, time.Now())
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.EqualValues(t, 600, r.body["received"], r.raw)

	body = events(1500)
	require.Greater(t, len(body), batchSendGridBody)
	r = h.sendGrid(body, time.Now())
	require.Equal(t, http.StatusRequestEntityTooLarge, r.status, r.raw)
	require.Equal(t, "body_too_large", r.errorCode())
}

// A batch's events about different contacts run at once, and each
// contact's events keep their order: their deliveries take ids in item
// order, as if posted one after the other.
func TestEventBatchKeepsEachContactsOrder(t *testing.T) {
	h := newHarness(t)
	h.publish(whySpec)
	var contacts []string
	for i := range 6 {
		c := h.newContact(map[string]any{"email": fmt.Sprintf("order%d@example.com", i)})
		h.enrollIn(c, "onboard", 1, "pause")
		contacts = append(contacts, c)
	}
	var items []any
	want := map[string][]string{}
	for i := range 60 {
		c := contacts[i%len(contacts)]
		id := fmt.Sprintf("ord-%02d", i)
		items = append(items, map[string]any{"event_id": id, "contact_id": c, "name": "page.viewed"})
		want[c] = append(want[c], id)
	}
	r := h.call("POST", "/v1/events/batch", map[string]any{"items": items}, http.StatusOK)
	if r.body["succeeded"] != float64(60) {
		t.Fatalf("batch: %s", r.raw)
	}
	for i, res := range r.body["results"].([]any) {
		if res.(map[string]any)["index"] != float64(i) {
			t.Fatalf("results out of order: %s", r.raw)
		}
	}
	for _, c := range contacts {
		rows, err := h.store.Pool().Query(context.Background(), `SELECT event_id FROM deliveries WHERE contact_id = $1 ORDER BY id`, c)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				t.Fatal(err)
			}
			got = append(got, id)
		}
		if fmt.Sprint(got) != fmt.Sprint(want[c]) {
			t.Errorf("contact %s: deliveries %v, want %v", c, got, want[c])
		}
	}
}

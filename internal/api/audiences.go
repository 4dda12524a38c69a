package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/tutti-dev/tutti/internal/audience"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/workflows"
)

// Ad audiences: PUT /v1/audiences/{id} defines one (and makes sure its sync
// workflow runs), GET lists them with their counts and members, and GET
// /v1/contacts/{id}/audiences shows a contact's rows and ledger.

// AudienceRequest is the body of PUT /v1/audiences/{id}.
type AudienceRequest struct {
	Name        string `json:"name"`
	Destination string `json:"destination"`
	ExternalID  string `json:"external_id"`
	// Segment, when set, is a segment the audience follows: its members
	// are added (those who may be) and those who leave it removed.
	Segment string `json:"segment,omitempty"`
}

// AudienceAnswer is an audience with its counts; SyncError says why its
// sync workflow could not be made sure of (the worker retries at start).
type AudienceAnswer struct {
	storage.Audience
	Counts    storage.AudienceCounts `json:"counts"`
	SyncError string                 `json:"sync_error,omitempty"`
}

// AudienceList answers GET /v1/audiences.
type AudienceList struct {
	Audiences []AudienceAnswer `json:"audiences"`
}

// AudienceMembers answers GET /v1/audiences/{id}/members.
type AudienceMembers struct {
	Members []storage.AudienceMember `json:"members"`
	// Next is the after= of the next page, absent on the last.
	Next string `json:"next,omitempty"`
}

// ContactAudiences answers GET /v1/contacts/{id}/audiences.
type ContactAudiences struct {
	Audiences []storage.AudienceMember      `json:"audiences"`
	Ledger    []storage.AudienceLedgerEntry `json:"ledger"`
}

var audienceIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// externalIDPattern: the platforms' list ids are digits (Meta, Google) or
// an URN-ish id (LinkedIn); nothing that needs escaping anywhere.
var externalIDPattern = regexp.MustCompile(`^[A-Za-z0-9:_-]{1,128}$`)

func (s *Server) defineAudience(w http.ResponseWriter, r *http.Request) {
	var req AudienceRequest
	if err := decodeJSON(r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	var fe fieldErrors
	id := r.PathValue("audience_id")
	if !audienceIDPattern.MatchString(id) {
		fe.add("audience_id", `must be 1-64 characters of a-z, 0-9, "_" and "-", starting with a letter or digit`)
	}
	name := strings.TrimSpace(req.Name)
	switch {
	case name == "":
		fe.add("name", "required")
	case len(name) > 200:
		fe.add("name", "at most 200 characters")
	}
	if !slices.Contains(audience.Destinations, audience.Destination(req.Destination)) {
		fe.add("destination", "must be one of meta, google, linkedin")
	}
	if !externalIDPattern.MatchString(req.ExternalID) {
		fe.add("external_id", "required: the platform's id of the list (1-128 letters, digits, ':', '_', '-')")
	}
	if req.Segment != "" && !audienceIDPattern.MatchString(req.Segment) {
		fe.add("segment", "a segment id: lowercase letters, digits and _")
	}
	if err := fe.err(); err != nil {
		writeError(w, r, err)
		return
	}
	a, created, err := s.store.DefineAudience(r.Context(), storage.Audience{ID: id, Name: name,
		Destination: audience.Destination(req.Destination), ExternalID: req.ExternalID, SegmentID: req.Segment})
	if errors.Is(err, storage.ErrNotFound) {
		writeError(w, r, notFound("segment", req.Segment, "segment"))
		return
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	ans := AudienceAnswer{Audience: a}
	if err := EnsureAudienceSync(r.Context(), s.temporal, a.ID, s.cfg.AudienceSyncInterval, s.cfg.AudienceFullSyncEvery); err != nil {
		ans.SyncError = "the sync workflow could not be started now; the worker starts it when it starts: " + err.Error()
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, ans)
}

// EnsureAudienceSync starts the audience's sync workflow unless it runs
// already. The API calls it when an audience is defined, and the worker
// for every audience when it starts.
func EnsureAudienceSync(ctx context.Context, tc client.Client, audienceID string, interval, fullEvery time.Duration) error {
	if tc == nil {
		return errors.New("no Temporal client")
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       workflows.AudienceSyncWorkflowID(audienceID),
		TaskQueue:                workflows.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
	}, workflows.AudienceSync, workflows.AudienceSyncInput{AudienceID: audienceID, Interval: interval, FullEvery: fullEvery})
	return err
}

func (s *Server) audienceAnswer(ctx context.Context, a storage.Audience) (AudienceAnswer, error) {
	c, err := s.store.AudienceCounts(ctx, a.ID)
	return AudienceAnswer{Audience: a, Counts: c}, err
}

func (s *Server) listAudiences(w http.ResponseWriter, r *http.Request) {
	as, err := s.store.Audiences(r.Context())
	if err != nil {
		writeError(w, r, err)
		return
	}
	out := AudienceList{Audiences: make([]AudienceAnswer, 0, len(as))}
	for _, a := range as {
		ans, err := s.audienceAnswer(r.Context(), a)
		if err != nil {
			writeError(w, r, err)
			return
		}
		out.Audiences = append(out.Audiences, ans)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getAudience(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("audience_id")
	a, err := s.store.Audience(r.Context(), id)
	if errors.Is(err, storage.ErrNotFound) {
		writeError(w, r, notFound("audience", id, ""))
		return
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	ans, err := s.audienceAnswer(r.Context(), a)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ans)
}

func (s *Server) audienceMembers(w http.ResponseWriter, r *http.Request) {
	limit, err := limitParam(r, 100, 1000)
	if err != nil {
		writeError(w, r, err)
		return
	}
	id := r.PathValue("audience_id")
	if _, err := s.store.Audience(r.Context(), id); errors.Is(err, storage.ErrNotFound) {
		writeError(w, r, notFound("audience", id, ""))
		return
	} else if err != nil {
		writeError(w, r, err)
		return
	}
	ms, err := s.store.AudienceMembers(r.Context(), id, r.URL.Query().Get("after"), limit)
	if err != nil {
		writeError(w, r, err)
		return
	}
	out := AudienceMembers{Members: nonNilSlice(ms)}
	if len(ms) == limit {
		out.Next = ms[len(ms)-1].ContactID
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) contactAudiences(w http.ResponseWriter, r *http.Request) {
	limit, err := limitParam(r, 100, 1000)
	if err != nil {
		writeError(w, r, err)
		return
	}
	c, err := s.contactByID(r.Context(), r.PathValue("id"), "")
	if err != nil {
		writeError(w, r, err)
		return
	}
	ms, ls, err := s.store.ContactAudiences(r.Context(), c.ID, limit)
	if err != nil {
		writeError(w, r, fmt.Errorf("audiences of contact %s: %w", c.ID, err))
		return
	}
	writeJSON(w, http.StatusOK, ContactAudiences{Audiences: nonNilSlice(ms), Ledger: nonNilSlice(ls)})
}

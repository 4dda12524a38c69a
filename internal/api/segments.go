package api

import (
	"fmt"
	"net/http"

	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/segment"
	"github.com/tutti-dev/tutti/internal/storage"
)

// Segments: define (a new version, or none if unchanged), list with member
// counts, page through members, and a contact's memberships with the why.

const (
	defaultMemberLimit = 100
	maxMemberLimit     = 1000
)

// defineSegment stores a valid definition as the segment's next version;
// the contacts are then evaluated against it by the workers.
func (s *Server) defineSegment(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("segment_id")
	seg, problems, err := readSegment(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	if len(problems) == 0 && seg.ID != id {
		problems = journey.Problems{{Path: "id", Message: fmt.Sprintf("must be the segment id of the URL (%q), got %q", id, seg.ID)}}
	}
	if len(problems) > 0 {
		writeProblems(w, "invalid_segment", "the segment has %d problem(s); nothing was stored", problems)
		return
	}
	v, created, err := s.store.DefineSegment(r.Context(), seg)
	if err != nil {
		writeError(w, r, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
		loggerFrom(r.Context()).Info("api: segment defined", "segment_id", v.SegmentID, "version", v.Version)
	}
	writeJSON(w, status, SegmentDefined{SegmentVersion: v, Created: created})
}

// readSegment reads a segment definition body (YAML or JSON), as readSpec
// reads a journey: problems are the definition's own (422), err the
// request's (400, 415).
func readSegment(r *http.Request) (*segment.Segment, journey.Problems, error) {
	return readDocument(r, "a segment definition", "definition", segment.Parse)
}

func (s *Server) listSegments(w http.ResponseWriter, r *http.Request) {
	list, err := s.store.Segments(r.Context())
	if err != nil {
		writeError(w, r, err)
		return
	}
	if list == nil {
		list = []storage.SegmentSummary{}
	}
	writeJSON(w, http.StatusOK, SegmentList{Segments: list})
}

// segmentMembers pages through a segment's members by contact id.
func (s *Server) segmentMembers(w http.ResponseWriter, r *http.Request) {
	limit, err := limitParam(r, defaultMemberLimit, maxMemberLimit)
	if err != nil {
		writeError(w, r, err)
		return
	}
	id := r.PathValue("segment_id")
	after := r.URL.Query().Get("after")
	members, err := s.store.SegmentMembers(r.Context(), id, after, limit)
	if err != nil {
		writeError(w, r, err)
		return
	}
	out := SegmentMembers{SegmentID: id, Members: members}
	if out.Members == nil {
		out.Members = []storage.SegmentMembership{}
	}
	if len(members) == limit {
		out.Next = members[len(members)-1].ContactID
	}
	writeJSON(w, http.StatusOK, out)
}

// contactSegments answers a contact's memberships, past and present, and
// each segment's verdict on the contact's data now, clause by clause.
func (s *Server) contactSegments(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := s.contactByID(r.Context(), id, ""); err != nil {
		writeError(w, r, err)
		return
	}
	history, err := s.store.ContactSegments(r.Context(), id)
	if err != nil {
		writeError(w, r, err)
		return
	}
	verdicts, err := s.store.ExplainContactSegments(r.Context(), id)
	if err != nil {
		writeError(w, r, err)
		return
	}
	out := ContactSegments{ContactID: id, Memberships: history, Now: verdicts}
	if out.Memberships == nil {
		out.Memberships = []storage.SegmentMembership{}
	}
	if out.Now == nil {
		out.Now = []storage.SegmentVerdict{}
	}
	writeJSON(w, http.StatusOK, out)
}

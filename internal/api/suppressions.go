package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/storage"
)

// sourceAPI is the source of suppressions made through the API when the
// caller names none, and who lifted one.
const sourceAPI = "api"

type suppressionRequest struct {
	Reason    string `json:"reason"`
	JourneyID string `json:"journey_id"`
	Channel   string `json:"channel"`
	Note      string `json:"note"`
	ExpiresAt string `json:"expires_at"`
	Source    string `json:"source"`
}

func (s *Server) view(sp storage.Suppression) Suppression {
	return Suppression{Suppression: sp, Active: sp.Active(s.now())}
}

const suppressionReasons = "converted, in_opportunity, do_not_contact, hard_bounce, spam_complaint or unengaged"

// addSuppression suppresses a contact, for every journey or one, on every
// channel or one. An identical active suppression (same reason, journey and
// channel) is returned as it is, with 200 instead of 201.
func (s *Server) addSuppression(w http.ResponseWriter, r *http.Request) {
	var req suppressionRequest
	if err := decodeJSON(r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	var fe fieldErrors
	reason := model.SuppressionReason(strings.TrimSpace(req.Reason))
	switch {
	case reason == "":
		fe.add("reason", "required: %s", suppressionReasons)
	case !reason.Valid():
		fe.add("reason", "must be %s", suppressionReasons)
	}
	journeyID := strings.TrimSpace(req.JourneyID)
	if journeyID != "" && len(journeyID) > maxIDLen {
		fe.add("journey_id", "at most %d characters", maxIDLen)
	}
	channel := journey.Channel(strings.TrimSpace(req.Channel))
	switch channel {
	case "", journey.ChannelEmail, journey.ChannelSMS, journey.ChannelAds:
	default:
		fe.add("channel", "must be email, sms or ads (omit it for every channel)")
	}
	note := strings.TrimSpace(req.Note)
	if len(note) > maxReasonLen {
		fe.add("note", "at most %d characters", maxReasonLen)
	}
	source := strings.TrimSpace(req.Source)
	switch {
	case source == "":
		source = sourceAPI
	case len(source) > maxSourceLen:
		fe.add("source", "at most %d characters", maxSourceLen)
	}
	now := s.now().UTC()
	sp := storage.Suppression{
		ContactID: r.PathValue("id"), Reason: reason, JourneyID: journeyID,
		Channel: channel, Source: source, Note: note,
	}
	if req.ExpiresAt != "" {
		bad := len(fe)
		exp := parseTime(&fe, "expires_at", req.ExpiresAt, now)
		if len(fe) == bad && !exp.After(now) {
			fe.add("expires_at", "must be in the future (omit it for a suppression that lasts until lifted)")
		}
		sp.ExpiresAt = &exp
	}
	if err := fe.err(); err != nil {
		writeError(w, r, err)
		return
	}
	if _, err := s.contactByID(r.Context(), sp.ContactID, ""); err != nil {
		writeError(w, r, err)
		return
	}
	if journeyID != "" {
		// A typo would suppress nothing, silently.
		if _, err := s.store.LatestJourneyVersion(r.Context(), journeyID); errors.Is(err, storage.ErrNotFound) {
			writeError(w, r, notFound("journey", journeyID, "journey_id"))
			return
		} else if err != nil {
			writeError(w, r, err)
			return
		}
	}
	// An expired, never-lifted row with the same key is closed by the store.
	row, created, err := s.store.AddSuppression(r.Context(), sp)
	if errors.Is(err, storage.ErrNotFound) {
		writeError(w, r, notFound("contact", sp.ContactID, ""))
		return
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, SuppressionAdded{Created: created, Suppression: s.view(row)})
}

// listSuppressions lists the contact's suppressions, newest first, lifted
// and expired ones included.
func (s *Server) listSuppressions(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := s.contactByID(r.Context(), id, ""); err != nil {
		writeError(w, r, err)
		return
	}
	rows, err := s.store.Suppressions(r.Context(), id)
	if err != nil {
		writeError(w, r, err)
		return
	}
	out := make([]Suppression, 0, len(rows))
	for _, sp := range rows {
		out = append(out, s.view(sp))
	}
	writeJSON(w, http.StatusOK, SuppressionList{Suppressions: out})
}

// liftSuppression ends one of the contact's suppressions; the row stays as
// history. Lifting a lifted one changes nothing (lifted is false).
func (s *Server) liftSuppression(w http.ResponseWriter, r *http.Request) {
	id, supID := r.PathValue("id"), r.PathValue("suppression_id")
	by := strings.TrimSpace(r.URL.Query().Get("lifted_by"))
	switch {
	case by == "":
		by = sourceAPI
	case len(by) > maxSourceLen:
		writeError(w, r, invalid(FieldError{Path: "lifted_by", Message: fmt.Sprintf("at most %d characters", maxSourceLen)}))
		return
	}
	if _, err := s.contactByID(r.Context(), id, ""); err != nil {
		writeError(w, r, err)
		return
	}
	rows, err := s.store.Suppressions(r.Context(), id)
	if err != nil {
		writeError(w, r, err)
		return
	}
	var found *storage.Suppression
	for i := range rows {
		if rows[i].ID == supID {
			found = &rows[i]
			break
		}
	}
	if found == nil {
		// Another contact's suppression is not found either: ids must not
		// let one contact's URL reach another's data.
		writeError(w, r, notFound("suppression", supID, ""))
		return
	}
	row, err := s.store.LiftSuppression(r.Context(), supID, by)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, SuppressionLifted{Lifted: found.LiftedAt == nil, Suppression: s.view(row)})
}

package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/tutti-dev/tutti/internal/contact"
	"github.com/tutti-dev/tutti/internal/storage"
)

// MergeRequest is the body of POST /v1/contacts/{id}/merge: the contact to
// absorb, by its Tutti id or by its external id (exactly one). Two fields
// rather than one that takes either: an external id is the customer's own
// and may look like anything, a Tutti id included.
type MergeRequest struct {
	Absorb           string `json:"absorb,omitempty"`
	AbsorbExternalID string `json:"absorb_external_id,omitempty"`
}

// mergeContact folds the contact named in the body into the one in the
// path, in one transaction (storage.MergeContacts; README, "Merging
// contacts"), and answers 200 once it has committed: the absorbed
// contact's runs are told to end (reason merged) through the delivery
// outbox, whether Temporal is up or not. A retry of a merge that committed
// answers 200 with already_merged.
func (s *Server) mergeContact(w http.ResponseWriter, r *http.Request) {
	var req MergeRequest
	if err := decodeJSON(r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	in := storage.MergeInput{SurvivorID: r.PathValue("id"), AbsorbedID: strings.TrimSpace(req.Absorb), AbsorbedExternalID: req.AbsorbExternalID}
	field := "absorb"
	var fe fieldErrors
	switch {
	case in.AbsorbedID == "" && in.AbsorbedExternalID == "":
		fe.add("absorb", "required: the id of the contact to absorb (or absorb_external_id)")
	case in.AbsorbedID != "" && in.AbsorbedExternalID != "":
		fe.add("absorb_external_id", "give absorb or absorb_external_id, not both")
	case in.AbsorbedExternalID != "":
		field = "absorb_external_id"
		if err := contact.ValidateExternalID(in.AbsorbedExternalID); err != nil {
			fe.add(field, "%s", reason(err))
		}
	default:
		checkLen(&fe, "absorb", in.AbsorbedID)
	}
	if err := fe.err(); err != nil {
		writeError(w, r, err)
		return
	}
	m, err := s.store.MergeContacts(r.Context(), in)
	if err != nil {
		writeError(w, r, mergeRefusal(err, field))
		return
	}
	loggerFrom(r.Context()).Info("api: contacts merged", "survivor_id", m.Survivor.ID, "absorbed_id", m.AbsorbedID,
		"already", m.Already, "runs_exiting", len(m.RunsExiting), "consent_changes", len(m.ConsentChanges))
	writeJSON(w, http.StatusOK, MergeAnswer{m})
}

// mergeRefusal turns a refused merge into its answer, naming the field of
// the contact it is about: the path's id for the survivor, field (absorb
// or absorb_external_id) for the absorbed one.
func mergeRefusal(err error, field string) error {
	var me *storage.MergeError
	if !errors.As(err, &me) {
		return err
	}
	path, who := "id", "survivor"
	if me.Role == storage.MergeAbsorbed {
		path, who = field, "contact to absorb"
	}
	switch {
	case errors.Is(err, storage.ErrMergeSelf):
		return invalid(FieldError{Path: path, Message: "is the survivor itself: a contact cannot be merged into itself"})
	case errors.Is(err, storage.ErrNotFound):
		if me.ContactID == "" {
			return &Error{Status: http.StatusNotFound, Code: "not_found", Message: "no contact with that external_id",
				Fields: []FieldError{{Path: path, Message: "no contact with this external_id"}}}
		}
		return notFound("contact", me.ContactID, path)
	case errors.Is(err, storage.ErrErased):
		return &Error{Status: http.StatusGone, Code: "contact_erased",
			Message: fmt.Sprintf("the %s, contact %s, was erased", who, me.ContactID),
			Fields:  []FieldError{{Path: path, Message: "erased"}}}
	case errors.Is(err, storage.ErrMerged):
		return conflict("contact_merged",
			fmt.Sprintf("the %s, contact %s, was merged into contact %s already", who, me.ContactID, me.MergedInto),
			FieldError{Path: path, Message: "merged into contact " + me.MergedInto})
	}
	return err
}

// mergedContact is the answer for a request that names a merged contact
// by its own id: its data is the survivor's now.
func mergedContact(c storage.Contact, field string) *Error {
	if field == "" {
		field = "id"
	}
	return &Error{Status: http.StatusGone, Code: "contact_merged",
		Message: fmt.Sprintf("contact %s was merged into contact %s; use that one", c.ID, c.MergedInto),
		Fields:  []FieldError{{Path: field, Message: "merged into contact " + c.MergedInto}}}
}

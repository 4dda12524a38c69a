package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/tutti-dev/tutti/internal/contact"
	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/storage"
)

// Limits on free-form ids and texts: generous for real use, small enough
// that one request cannot bloat every journey's input. The limits on what a
// contact carries (external_id, attributes) are package contact's.
const (
	maxIDLen        = 200
	maxSourceLen    = 200
	maxReasonLen    = 500
	maxFutureSkew   = 5 * time.Minute
	defaultMsgLimit = 50
	maxMsgLimit     = 500
)

type identifyRequest struct {
	ID         string         `json:"id"`
	ExternalID string         `json:"external_id"`
	Email      string         `json:"email"`
	Phone      string         `json:"phone"`
	TimeZone   string         `json:"time_zone"`
	Country    string         `json:"country"`
	Attributes map[string]any `json:"attributes"`
}

// identifyContact creates or updates a contact found by any identifier given.
func (s *Server) identifyContact(w http.ResponseWriter, r *http.Request) {
	var req identifyRequest
	if err := decodeJSON(r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	res, status, err := s.identify(r.Context(), req)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, status, res)
}

// identify validates one contact and creates or updates it: the whole of
// POST /v1/contacts after decoding, and of each item of POST
// /v1/contacts/batch. The status is the single route's (201 created, 200
// updated); an error is what it answers.
func (s *Server) identify(ctx context.Context, req identifyRequest) (ContactAnswer, int, error) {
	var fe fieldErrors
	in := storage.ContactInput{
		ID: strings.TrimSpace(req.ID),
		// Not trimmed: external ids are matched exactly, so one with white
		// space around it is refused rather than quietly changed.
		ExternalID: req.ExternalID,
		TimeZone:   strings.TrimSpace(req.TimeZone),
		Attributes: req.Attributes,
	}
	checkLen(&fe, "id", in.ID)
	if err := contact.ValidateExternalID(in.ExternalID); err != nil {
		fe.add("external_id", "%s", reason(err))
	}
	if req.Email != "" {
		in.Email = s.normalize(&fe, "email", req.Email)
	}
	if req.Phone != "" {
		in.Phone = s.normalize(&fe, "phone", req.Phone)
	}
	if err := contact.ValidateTimeZone(in.TimeZone); err != nil {
		fe.add("time_zone", "%s", reason(err))
	}
	country, err := contact.NormalizeCountry(req.Country)
	if err != nil {
		fe.add("country", "%s", reason(err))
	}
	in.Country = country
	for _, p := range contact.CheckAttributes(in.Attributes) {
		fe.add(p.Field, "%s", p.Reason)
	}
	if in.ID == "" && in.ExternalID == "" && req.Email == "" && req.Phone == "" {
		fe.add("external_id", "at least one identifier is required: id, external_id, email or phone")
	}
	if err := fe.err(); err != nil {
		return ContactAnswer{}, 0, err
	}

	c, created, err := s.store.UpsertContact(ctx, in)
	switch {
	case errors.Is(err, storage.ErrIdentityConflict):
		return ContactAnswer{}, 0, conflict("identity_conflict", err.Error())
	case errors.Is(err, storage.ErrNotFound):
		return ContactAnswer{}, 0, notFound("contact", in.ID, "id")
	case err != nil:
		return ContactAnswer{}, 0, err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return ContactAnswer{Contact: c}, status, nil
}

func (s *Server) getContact(w http.ResponseWriter, r *http.Request) {
	c, err := s.contactByID(r.Context(), r.PathValue("id"), "")
	if err != nil {
		writeError(w, r, err)
		return
	}
	s.writeContactDetail(w, r, c)
}

// findContact looks a contact up by exactly one of email, phone or external_id.
func (s *Server) findContact(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var given []string
	for _, k := range []string{"email", "phone", "external_id"} {
		if q.Get(k) != "" {
			given = append(given, k)
		}
	}
	if len(given) != 1 {
		writeError(w, r, invalid(FieldError{Path: "email", Message: "give exactly one of the query parameters email, phone or external_id"}))
		return
	}
	key := given[0]
	var fe fieldErrors
	value := q.Get(key)
	var (
		c   storage.Contact
		err error
	)
	switch key {
	case "email":
		if value = s.normalize(&fe, key, value); fe.err() == nil {
			c, err = s.store.ContactByEmail(r.Context(), value)
		}
	case "phone":
		if value = s.normalize(&fe, key, value); fe.err() == nil {
			c, err = s.store.ContactByPhone(r.Context(), value)
		}
	default:
		if verr := contact.ValidateExternalID(value); verr != nil {
			fe.add(key, "%s", reason(verr))
		} else {
			c, err = s.store.ContactByExternalID(r.Context(), value)
		}
	}
	if ferr := fe.err(); ferr != nil {
		writeError(w, r, ferr)
		return
	}
	if errors.Is(err, storage.ErrNotFound) {
		// The value is not echoed: it may be an email address or a phone
		// number, and error messages end up in logs.
		writeError(w, r, &Error{Status: http.StatusNotFound, Code: "not_found", Message: "no contact with that " + key,
			Fields: []FieldError{{Path: key, Message: "no contact with this " + key}}})
		return
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	s.writeContactDetail(w, r, c)
}

func (s *Server) writeContactDetail(w http.ResponseWriter, r *http.Request, c storage.Contact) {
	all, err := s.store.AllConsents(r.Context(), c.ID)
	if err != nil {
		writeError(w, r, err)
		return
	}
	consents := map[journey.Channel]storage.Consent{}
	subs := []storage.Consent{}
	for _, cs := range all {
		if cs.Subscription == "" {
			consents[cs.Channel] = cs
		} else {
			subs = append(subs, cs)
		}
	}
	enrollments, err := s.store.EnrollmentsForContact(r.Context(), c.ID)
	if err != nil {
		writeError(w, r, err)
		return
	}
	if enrollments == nil {
		enrollments = []storage.Enrollment{}
	}
	audiences, ledger, err := s.store.ContactAudiences(r.Context(), c.ID, contactLedgerPage)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ContactDetail{Contact: c, Consents: consents, SubscriptionConsents: subs, Enrollments: enrollments,
		Audiences: nonNilSlice(audiences), AudienceLedger: nonNilSlice(ledger)})
}

func (s *Server) contactMessages(w http.ResponseWriter, r *http.Request) {
	limit, err := limitParam(r, defaultMsgLimit, maxMsgLimit)
	if err != nil {
		writeError(w, r, err)
		return
	}
	id := r.PathValue("id")
	if _, err := s.contactByID(r.Context(), id, ""); err != nil {
		writeError(w, r, err)
		return
	}
	msgs, err := s.store.MessagesForContact(r.Context(), id, limit)
	if err != nil {
		writeError(w, r, err)
		return
	}
	if msgs == nil {
		msgs = []storage.Message{}
	}
	writeJSON(w, http.StatusOK, MessageList{Messages: msgs})
}

func (s *Server) sandboxMessages(w http.ResponseWriter, r *http.Request) {
	limit, err := limitParam(r, defaultMsgLimit, maxMsgLimit)
	if err != nil {
		writeError(w, r, err)
		return
	}
	id := r.URL.Query().Get("contact_id")
	if id != "" {
		if _, err := s.contactByID(r.Context(), id, "contact_id"); err != nil {
			writeError(w, r, err)
			return
		}
	}
	msgs, err := s.store.SandboxMessages(r.Context(), id, limit)
	if err != nil {
		writeError(w, r, err)
		return
	}
	if msgs == nil {
		msgs = []storage.SandboxMessage{}
	}
	writeJSON(w, http.StatusOK, SandboxMessageList{Messages: msgs})
}

// unknownMessages lists the sends whose outcome is unknown, across contacts:
// the ones ops must account for by hand.
func (s *Server) unknownMessages(w http.ResponseWriter, r *http.Request) {
	limit, err := limitParam(r, defaultMsgLimit, maxMsgLimit)
	if err != nil {
		writeError(w, r, err)
		return
	}
	msgs, err := s.store.UnknownMessages(r.Context(), limit, r.URL.Query().Get("before"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	if msgs == nil {
		msgs = []storage.Message{}
	}
	writeJSON(w, http.StatusOK, MessageList{Messages: msgs})
}

// contactByID loads a contact, turning ErrNotFound into a 404 that names it
// (and field, the request field that referred to it, if any), and a
// contact merged into another into a 410 contact_merged naming the survivor.
func (s *Server) contactByID(ctx context.Context, id, field string) (storage.Contact, error) {
	if id == "" {
		return storage.Contact{}, invalid(FieldError{Path: field, Message: "required"})
	}
	c, err := s.store.Contact(ctx, id)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return c, notFound("contact", id, field)
	case err == nil && c.MergedInto != "":
		// Identifiers of a merged contact find its survivor; its own id
		// says where its data went.
		return storage.Contact{}, mergedContact(c, field)
	}
	return c, err
}

// normalize returns the normalised email or phone, or records why not.
func (s *Server) normalize(fe *fieldErrors, field, v string) string {
	var (
		out string
		err error
	)
	if field == "phone" {
		out, err = contact.NormalizePhone(v, s.cfg.DefaultRegion)
	} else {
		out, err = contact.NormalizeEmail(v)
	}
	if err != nil {
		fe.add(field, "%s", reason(err))
		return ""
	}
	return out
}

// reason is the human part of a contact.Error ("not a valid email address").
func reason(err error) string {
	var ce *contact.Error
	if errors.As(err, &ce) {
		return ce.Reason
	}
	return err.Error()
}

func checkLen(fe *fieldErrors, field, v string) {
	if len(v) > maxIDLen {
		fe.add(field, "at most %d characters", maxIDLen)
	}
}

// checkNotFuture refuses timestamps more than a little clock skew ahead: a
// consent change dated next year would mask every real change until then.
func (s *Server) checkNotFuture(fe *fieldErrors, field string, t, now time.Time) {
	if t.After(now.Add(maxFutureSkew)) {
		fe.add(field, "is in the future")
	}
}

package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/policy"
	"github.com/tutti-dev/tutti/internal/preview"
	"github.com/tutti-dev/tutti/internal/storage"
)

// PreviewRequest is the body of POST /v1/journeys/preview: a spec (a draft,
// as a JSON object) or a published journey, a contact, and optionally the
// events to post during the preview, its start and its horizon.
type PreviewRequest struct {
	Spec      json.RawMessage `json:"spec,omitempty"`
	JourneyID string          `json:"journey_id,omitempty"`
	ContactID string          `json:"contact_id"`
	Events    []PreviewEvent  `json:"events,omitempty"`
	StartAt   string          `json:"start_at,omitempty"`
	Horizon   string          `json:"horizon,omitempty"`
}

// PreviewEvent is preview.Event as a request carries it (durations as text).
type PreviewEvent struct {
	After      string         `json:"after"`
	Name       string         `json:"name"`
	Properties map[string]any `json:"properties,omitempty"`
}

// previewJourney plays a spec for a contact in simulated time: nothing is
// sent or written (internal/preview).
func (s *Server) previewJourney(w http.ResponseWriter, r *http.Request) {
	var req PreviewRequest
	if err := decodeJSON(r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	in, err := s.previewInput(r, req)
	if err != nil {
		writeError(w, r, err)
		return
	}
	settings := policy.DefaultSettings()
	settings.DefaultTimeZone, settings.DefaultRegion = s.cfg.DefaultTimeZone, s.cfg.DefaultRegion
	if s.delivery != nil {
		settings = s.delivery.Policy
	}
	res, err := preview.Run(r.Context(), preview.Deps{Store: s.store, Policy: settings}, in)
	switch {
	case errors.Is(err, preview.ErrContactNotFound):
		writeError(w, r, notFound("contact", in.ContactID, "contact_id"))
		return
	case err != nil:
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// previewInput checks a preview request; every problem is reported at its
// path (the spec's own at spec.<path>).
func (s *Server) previewInput(r *http.Request, req PreviewRequest) (preview.Input, error) {
	var fe fieldErrors
	in := preview.Input{ContactID: strings.TrimSpace(req.ContactID)}
	if in.ContactID == "" {
		fe.add("contact_id", "required: the contact to preview the journey for")
	}
	hasSpec := len(req.Spec) > 0 && string(req.Spec) != "null"
	switch {
	case hasSpec && req.JourneyID != "":
		fe.add("journey_id", "give either spec (a draft) or journey_id (the published journey), not both")
	case hasSpec:
		if !json.Valid(req.Spec) || !strings.HasPrefix(strings.TrimSpace(string(req.Spec)), "{") {
			fe.add("spec", "must be a journey spec as a JSON object")
			break
		}
		spec, err := journey.ParseAndValidate(req.Spec)
		var problems journey.Problems
		switch {
		case errors.As(err, &problems):
			for _, p := range problems {
				path := "spec"
				if p.Path != "" {
					path += "." + p.Path
				}
				fe.add(path, "%s", p.Message)
			}
		case err != nil:
			fe.add("spec", "%s", reason(err))
		default:
			in.Spec = spec
		}
	case req.JourneyID != "":
		jv, err := s.store.LatestJourneyVersion(r.Context(), req.JourneyID)
		if errors.Is(err, storage.ErrNotFound) {
			return preview.Input{}, notFound("journey", req.JourneyID, "journey_id")
		}
		if err != nil {
			return preview.Input{}, err
		}
		in.Spec, in.Version = jv.Spec, jv.Version
	default:
		fe.add("spec", "required: a journey spec (a draft), or journey_id for the published journey")
	}
	if len(req.Events) > preview.MaxEvents {
		fe.add("events", "at most %d events", preview.MaxEvents)
	}
	for i, e := range req.Events {
		path := fmt.Sprintf("events[%d]", i)
		name := strings.TrimSpace(e.Name)
		switch {
		case name == "":
			fe.add(path+".name", "required, e.g. purchase")
		case len(name) > maxIDLen:
			fe.add(path+".name", "at most %d characters", maxIDLen)
		}
		after, err := journey.ParseDuration(e.After)
		switch {
		case strings.TrimSpace(e.After) == "":
			fe.add(path+".after", `required: how long after the start the event arrives, e.g. "2d" or "90m"`)
		case err != nil:
			fe.add(path+".after", "%s", reason(err))
		case after < 0:
			fe.add(path+".after", "must not be negative")
		}
		in.Events = append(in.Events, preview.Event{After: after, Name: name, Properties: e.Properties})
	}
	now := s.now().UTC()
	in.Start = parseTime(&fe, "start_at", req.StartAt, now)
	if req.Horizon != "" {
		h, err := journey.ParseDuration(req.Horizon)
		switch {
		case err != nil:
			fe.add("horizon", "%s", reason(err))
		case h <= 0 || time.Duration(h) > preview.MaxHorizon:
			fe.add("horizon", "must be more than 0 and at most %s", journey.Duration(preview.MaxHorizon))
		default:
			in.Horizon = time.Duration(h)
		}
	}
	if err := fe.err(); err != nil {
		return preview.Input{}, err
	}
	return in, nil
}

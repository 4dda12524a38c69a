package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/storage"
)

// validateJourney checks a spec without storing anything.
func (s *Server) validateJourney(w http.ResponseWriter, r *http.Request) {
	spec, problems, err := readSpec(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	problems = append(problems, s.workspaceProblems(spec, problems)...)
	if len(problems) > 0 {
		writeJSON(w, http.StatusUnprocessableEntity, ValidationResult{Problems: problems, Valid: false})
		return
	}
	writeJSON(w, http.StatusOK, ValidationResult{Problems: journey.Problems{}, Valid: true})
}

// publishJourney stores a valid spec as the journey's next version. New
// enrollments use it; running contacts keep the version they started with.
func (s *Server) publishJourney(w http.ResponseWriter, r *http.Request) {
	spec, problems, err := readSpec(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	problems = append(problems, s.workspaceProblems(spec, problems)...)
	if len(problems) > 0 {
		writeProblems(w, "invalid_journey", "the journey spec has %d problem(s); nothing was published", problems)
		return
	}
	jv, err := s.store.PublishJourney(r.Context(), spec)
	if err != nil {
		writeError(w, r, err)
		return
	}
	loggerFrom(r.Context()).Info("api: journey published", "journey_id", jv.JourneyID, "version", jv.Version)
	writeJSON(w, http.StatusCreated, PublishAnswer{JourneyID: jv.JourneyID, PublishedAt: jv.PublishedAt, Version: jv.Version})
}

// workspaceProblems are what the spec asks of this workspace's settings
// and the settings lack: a webhook step's destination that
// TUTTI_WEBHOOK_DESTINATIONS does not name. journey.Validate, which knows
// no settings, cannot see them. A path the spec's own problems already
// name is not reported twice.
func (s *Server) workspaceProblems(spec journey.Spec, found journey.Problems) journey.Problems {
	named := map[string]bool{}
	for _, p := range found {
		named[p.Path] = true
	}
	var out journey.Problems
	for i, st := range spec.Steps {
		path := fmt.Sprintf("steps[%d].webhook.destination", i)
		if st.Webhook == nil || named[path] {
			continue
		}
		if _, ok := s.cfg.WebhookDestinations[st.Webhook.Destination]; !ok {
			out = append(out, journey.Problem{Path: path, Message: fmt.Sprintf(
				"destination %q is not configured (TUTTI_WEBHOOK_DESTINATIONS names the destinations webhook steps may post to)",
				st.Webhook.Destination)})
		}
	}
	return out
}

// writeProblems answers 422 with every problem of a document a marketer
// posted (code, and summary with %d for their count), each at its path.
func writeProblems(w http.ResponseWriter, code, summary string, problems journey.Problems) {
	fields := make([]FieldError, len(problems))
	for i, p := range problems {
		fields[i] = FieldError{Path: p.Path, Message: p.Message}
	}
	writeJSON(w, http.StatusUnprocessableEntity, ValidationResult{
		Error:    &Error{Code: code, Message: fmt.Sprintf(summary, len(problems)), Fields: fields},
		Problems: problems, Valid: false,
	})
}

// readSpec reads a journey spec body (YAML or JSON) and validates it.
func readSpec(r *http.Request) (journey.Spec, journey.Problems, error) {
	return readDocument(r, "a journey spec", "spec", journey.ParseAndValidate)
}

// readDocument reads a document body a marketer writes (a journey spec,
// a segment definition, a score model: what, and noun for the messages)
// and parses it with parse. Problems are the document's own mistakes
// (422); err is for the request itself (413, 415, or a 400 for an empty
// body or one that is not valid text: invalid UTF-8 or a NUL anywhere, see
// journey.TextError).
//
// The parsers read YAML, and JSON is YAML, so any body is parsed as is:
// that is the sniffing for clients that send no type or a generic one (curl's
// default form type, text/plain). A body declared as JSON must be JSON,
// though, so a YAML file sent with the wrong header is reported as such
// rather than quietly accepted.
func readDocument[T any](r *http.Request, what, noun string, parse func([]byte) (T, error)) (T, journey.Problems, error) {
	var zero T
	required := "request body is required: " + what + " in YAML or JSON"
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if strings.HasPrefix(mt, "multipart/") {
		return zero, nil, &Error{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type",
			Message: "send the " + noun + " itself as the request body (Content-Type application/yaml or application/json), not as a form upload"}
	}
	if r.Body == nil {
		return zero, nil, invalid(FieldError{Path: "", Message: required})
	}
	data, err := io.ReadAll(r.Body)
	if err != nil {
		return zero, nil, err
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return zero, nil, invalid(FieldError{Path: "", Message: required})
	}
	if (mt == "application/json" || strings.HasSuffix(mt, "+json")) && !json.Valid(data) {
		return zero, journey.Problems{{Path: "", Message: "the body is declared as JSON (Content-Type) but is not valid JSON; send YAML as application/yaml"}}, nil
	}
	v, err := parse(data)
	var (
		problems journey.Problems
		text     *journey.TextError
	)
	switch {
	case err == nil:
		return v, nil, nil
	case errors.As(err, &text):
		// Not UTF-8, a NUL, an ambiguous JSON document: the body is not
		// text we can store, whatever it describes.
		fields := make([]FieldError, len(text.Problems))
		for i, p := range text.Problems {
			fields[i] = FieldError{Path: p.Path, Message: p.Message}
		}
		return zero, nil, invalid(fields...)
	case errors.As(err, &problems):
		return zero, problems, nil
	default:
		// Not YAML at all: a problem with the document as a whole.
		return zero, journey.Problems{{Path: "", Message: err.Error()}}, nil
	}
}

func (s *Server) listJourneys(w http.ResponseWriter, r *http.Request) {
	latest, err := s.store.Journeys(r.Context())
	if err != nil {
		writeError(w, r, err)
		return
	}
	out := make([]JourneySummary, len(latest))
	for i, jv := range latest {
		out[i] = JourneySummary{JourneyID: jv.JourneyID, Name: jv.Spec.Name, Version: jv.Version,
			Trigger: jv.Spec.Trigger, Reentry: jv.Spec.Reentry.Policy, PublishedAt: jv.PublishedAt}
	}
	writeJSON(w, http.StatusOK, JourneyList{Journeys: out})
}

// getJourney returns the latest version with its spec, and every version number.
func (s *Server) getJourney(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("journey_id")
	versions, err := s.store.JourneyVersions(r.Context(), id)
	if err != nil {
		writeError(w, r, err)
		return
	}
	if len(versions) == 0 {
		writeError(w, r, notFound("journey", id, ""))
		return
	}
	numbers := make([]int, len(versions))
	for i, v := range versions {
		numbers[i] = v.Version
	}
	latest := versions[0]
	for _, v := range versions {
		if v.Version > latest.Version {
			latest = v
		}
	}
	writeJSON(w, http.StatusOK, JourneyDetail{JourneyID: latest.JourneyID, PublishedAt: latest.PublishedAt,
		Spec: latest.Spec, Version: latest.Version, Versions: numbers})
}

func (s *Server) getJourneyVersion(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("journey_id")
	v, err := strconv.Atoi(r.PathValue("version"))
	if err != nil || v < 1 {
		writeError(w, r, invalid(FieldError{Path: "version", Message: "must be a version number (1, 2, ...)"}))
		return
	}
	jv, err := s.store.JourneyVersion(r.Context(), id, v)
	if errors.Is(err, storage.ErrNotFound) {
		writeError(w, r, &Error{Status: http.StatusNotFound, Code: "not_found", Message: fmt.Sprintf("journey %q has no version %d", id, v)})
		return
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, jv)
}

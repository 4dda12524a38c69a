package api

import (
	"errors"
	"net/http"

	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/score"
	"github.com/tutti-dev/tutti/internal/storage"
)

// Lead scores: the workspace's scoring model (PUT/GET /v1/score-model) and
// a contact's score with its explanation (GET /v1/contacts/{id}/score).
// Band changes are stored by the worker's scorer and sweep (storage
// scores.go), not here.

// putScoreModel validates a scoring model (YAML or JSON) and stores it as
// the next version, unless it equals the latest.
func (s *Server) putScoreModel(w http.ResponseWriter, r *http.Request) {
	m, problems, err := readScoreModel(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	if len(problems) > 0 {
		writeProblems(w, "invalid_score_model", "the score model has %d problem(s); nothing was stored", problems)
		return
	}
	v, created, err := s.store.PutScoreModel(r.Context(), m)
	if err != nil {
		writeError(w, r, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
		loggerFrom(r.Context()).Info("api: score model stored", "version", v.Version)
	}
	writeJSON(w, status, ScoreModelAnswer{Version: v.Version, Model: v.Model, CreatedAt: v.CreatedAt, Created: created})
}

// getScoreModel answers the latest version of the scoring model.
func (s *Server) getScoreModel(w http.ResponseWriter, r *http.Request) {
	v, err := s.store.ScoreModel(r.Context())
	if errors.Is(err, storage.ErrNotFound) {
		writeError(w, r, &Error{Status: http.StatusNotFound, Code: "not_found", Message: "no score model: PUT /v1/score-model first"})
		return
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ScoreModelAnswer{Version: v.Version, Model: v.Model, CreatedAt: v.CreatedAt})
}

// contactScore answers a contact's scores now, exactly decayed, with every
// contribution, and the bands last stored for it.
func (s *Server) contactScore(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := s.contactByID(r.Context(), id, ""); err != nil {
		writeError(w, r, err)
		return
	}
	read, err := s.store.ContactScore(r.Context(), id, s.now().UTC())
	if errors.Is(err, storage.ErrNoScoreModel) {
		writeError(w, r, &Error{Status: http.StatusNotFound, Code: "not_found", Message: "no score model: PUT /v1/score-model first"})
		return
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, newScoreAnswer(id, read))
}

// newScoreAnswer is a reading as the API answers it.
func newScoreAnswer(contactID string, read storage.ScoreReading) ScoreAnswer {
	res := read.Result
	out := ScoreAnswer{ContactID: contactID, ModelVersion: read.ModelVersion, At: res.At,
		Fit: res.Fit, Intent: res.Intent, Combined: res.Combined, Bands: res.Bands(),
		Stored: read.Stored, Unevaluated: res.Unevaluated, Contributions: make([]ScoreContribution, len(res.Contributions))}
	for i, c := range res.Contributions {
		sc := ScoreContribution{Kind: c.Kind, Rule: c.Rule, EventID: c.EventID, Points: c.Points, Value: c.Value, Capped: c.Capped}
		if c.Kind == "intent" {
			at := c.OccurredAt
			sc.OccurredAt = &at
			sc.Age = score.FormatAge(c.Age)
			sc.AgeSeconds = c.Age.Seconds()
		}
		out.Contributions[i] = sc
	}
	return out
}

// readScoreModel reads a scoring model body (YAML or JSON) and validates
// it, as readSpec does a journey: problems are the model's own mistakes
// (422, with paths); err is for the request itself.
func readScoreModel(r *http.Request) (*score.Compiled, journey.Problems, error) {
	return readDocument(r, "a score model", "model", score.Parse)
}

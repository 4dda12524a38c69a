package storage

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/score"
)

// Lead scores (migration 00009). The workspace's scoring model is stored
// in versions; a contact's score is computed at read time from its stored
// attributes, consent and events (internal/score), and its bands as last
// stored are kept in contact_scores so that a change is seen once.
//
// What moves a band:
//
//   - an event the model's intent rules read, or a change of the contact's
//     attributes or consent when the model has fit rules: the change's own
//     transaction marks the contact in score_pending (the scoring outbox),
//     and the worker's scorer (ScorePending) claims the mark with a lease,
//     rescores the contact and deletes the mark;
//   - time alone (intent decays): contact_scores.next_check_at says when,
//     and the sweep (SweepScores, run by a Temporal Schedule) rescores the
//     contacts whose moment has come;
//   - a new model version: the sweep rescores every contact once under it.
//
// Every rescoring (Rescore) runs in one transaction that takes the
// contact's row lock (FOR SHARE) and then its delivery lock, reads what the
// score depends on, compares the new bands with the stored ones, stores
// them, and stores each change as a score.band_changed event through
// trackEventsStatement, the statement every tracked event takes: journeys
// it triggers start, and running journeys hear it, through the delivery
// outbox. Rescorings of one contact are serialised by the delivery lock
// (and the contact_scores row lock after it), so two of them never both
// see the same old band: a change is emitted once.
//
// Why a row lock and then the delivery lock: events are stored under the
// delivery lock (so a rescoring that holds it sees every event committed
// before, and an event committed after marks the contact again), but a
// consent change (FOR NO KEY UPDATE on the contact, then the delivery
// lock) and an attribute change (FOR UPDATE) change the contact under its
// row lock, which FOR SHARE waits for. Taking the row lock first keeps the
// order a consent change takes (row, then delivery lock), so no cycle;
// FOR SHARE does not conflict with the key-share lock TrackEvent's groups
// take while they hold delivery locks.

// ScoreModelVersion is one stored version of the workspace's scoring model.
type ScoreModelVersion struct {
	Version   int         `json:"version"`
	Model     score.Model `json:"model"`
	CreatedAt time.Time   `json:"created_at"`
}

// ScoreModelSettle is how long after a model's first version is stored the
// sweep waits before it scores every contact: longer than any process
// takes to notice that a model exists (scoreModelRecheck) and to commit
// the events it was storing meanwhile without marking them.
const ScoreModelSettle = 10 * time.Second

// scoreModelRecheck is how often a process with no model in its cache asks
// whether one was stored since. Once one is, there always is one (models
// are versioned, not deleted), so the cache never goes stale after that.
const scoreModelRecheck = time.Second

// scoreState is a Store's cache of the scoring model: whether one exists
// (checked at most once a scoreModelRecheck while none does), and each
// version compiled once.
type scoreState struct {
	on        atomic.Bool
	checkedAt atomic.Int64
	checking  sync.Mutex
	compiled  sync.Map // version (int) -> *score.Compiled
}

// scoringOn says whether a scoring model exists. With none, the event and
// contact paths do no scoring work at all: no statement, no extra clause.
// The occasional check runs on q, the caller's connection or transaction
// (a caller holding the pool's last connection must not wait for another).
func (s *Store) scoringOn(ctx context.Context, q rowQuerier) bool {
	if s.scoring.on.Load() {
		return true
	}
	now := time.Now().UnixNano()
	if now-s.scoring.checkedAt.Load() < int64(scoreModelRecheck) || !s.scoring.checking.TryLock() {
		return false
	}
	defer s.scoring.checking.Unlock()
	var exists bool
	if err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM score_models)`).Scan(&exists); err != nil {
		// Asked again at the next call: a failed check is not a "no".
		return false
	}
	s.scoring.checkedAt.Store(now)
	if exists {
		s.scoring.on.Store(true)
	}
	return exists
}

// PutScoreModel stores c's model as the workspace's new version, unless it
// equals the latest one (then it returns that one, and false).
func (s *Store) PutScoreModel(ctx context.Context, c *score.Compiled) (ScoreModelVersion, bool, error) {
	var (
		out     ScoreModelVersion
		created bool
	)
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('tutti.score_models', 0))`); err != nil {
			return fmt.Errorf("put score model: %w", err)
		}
		latest, err := scanScoreModel(tx.QueryRow(ctx, `SELECT version, model, created_at FROM score_models
			WHERE version = (SELECT max(version) FROM score_models) AND model = $1::jsonb`, c.Model))
		if err == nil {
			out = latest
			return nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("put score model: %w", err)
		}
		out, err = scanScoreModel(tx.QueryRow(ctx, `
			INSERT INTO score_models (version, model, intent_events, has_fit)
			SELECT COALESCE(max(version), 0) + 1, $1, $2, $3 FROM score_models
			RETURNING version, model, created_at`, c.Model, c.IntentEvents(), len(c.Model.Fit) > 0))
		if err != nil {
			return fmt.Errorf("put score model: %w", err)
		}
		created = true
		return nil
	})
	if err != nil {
		return ScoreModelVersion{}, false, err
	}
	s.scoring.on.Store(true)
	return out, created, nil
}

// ScoreModel returns the latest version of the scoring model, or
// ErrNotFound when none was stored.
func (s *Store) ScoreModel(ctx context.Context) (ScoreModelVersion, error) {
	return queryOne(ctx, s.pool, "score model", scanScoreModel,
		`SELECT version, model, created_at FROM score_models ORDER BY version DESC LIMIT 1`)
}

func scanScoreModel(r rowScanner) (ScoreModelVersion, error) {
	var v ScoreModelVersion
	if err := r.Scan(&v.Version, &v.Model, &v.CreatedAt); err != nil {
		return ScoreModelVersion{}, err
	}
	v.CreatedAt = v.CreatedAt.UTC()
	return v, nil
}

// latestScoreModel reads the latest model version on q, compiled (once per
// version per process); nil when there is none.
func (s *Store) latestScoreModel(ctx context.Context, q rowQuerier) (int, *score.Compiled, error) {
	v, err := scanScoreModel(q.QueryRow(ctx, `SELECT version, model, created_at FROM score_models ORDER BY version DESC LIMIT 1`))
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil, nil
	}
	if err != nil {
		return 0, nil, fmt.Errorf("reading the score model: %w", err)
	}
	if c, ok := s.scoring.compiled.Load(v.Version); ok {
		return v.Version, c.(*score.Compiled), nil
	}
	c, err := score.Compile(v.Model)
	if err != nil {
		// Stored models were compiled before they were stored.
		return 0, nil, fmt.Errorf("score model version %d does not compile: %w", v.Version, err)
	}
	s.scoring.compiled.Store(v.Version, c)
	return v.Version, c, nil
}

// StoredScore is a contact's scores and bands as last stored.
type StoredScore struct {
	ModelVersion int           `json:"model_version"`
	Fit          float64       `json:"fit"`
	Intent       float64       `json:"intent"`
	Combined     float64       `json:"combined"`
	Bands        score.BandSet `json:"bands"`
	ScoredAt     time.Time     `json:"scored_at"`
	NextCheckAt  *time.Time    `json:"next_check_at,omitempty"`
}

// ScoreReading is a contact's score computed at a moment, with the bands
// last stored for it (nil if it was never scored).
type ScoreReading struct {
	ModelVersion int
	Result       score.Result
	Stored       *StoredScore
}

// ErrNoScoreModel is ContactScore's error when no scoring model was stored.
var ErrNoScoreModel = fmt.Errorf("no score model: PUT /v1/score-model first: %w", ErrNotFound)

// ContactScore scores a contact at a moment from what is stored, without
// storing anything: the exact decayed values, with every contribution.
func (s *Store) ContactScore(ctx context.Context, contactID string, at time.Time) (ScoreReading, error) {
	version, model, err := s.latestScoreModel(ctx, s.pool)
	if err != nil {
		return ScoreReading{}, err
	}
	if model == nil {
		return ScoreReading{}, ErrNoScoreModel
	}
	c, err := queryOne(ctx, s.pool, "contact "+contactID, scanContact,
		`SELECT `+contactColumns+` FROM contacts WHERE id = $1`, contactID)
	if err != nil {
		return ScoreReading{}, err
	}
	in, err := readScoreInput(ctx, s.pool, c, model, at)
	if err != nil {
		return ScoreReading{}, err
	}
	stored, err := readStoredScore(ctx, s.pool, contactID, false)
	if err != nil {
		return ScoreReading{}, err
	}
	r, _ := in.score(model, at)
	return ScoreReading{ModelVersion: version, Result: r, Stored: stored}, nil
}

// scoreInput is what a contact's score depends on.
type scoreInput struct {
	fit    score.FitInput
	events []score.Event
}

// score scores the input at a moment; fit is the fit contributions, for
// NextCheck.
func (in scoreInput) score(m *score.Compiled, at time.Time) (score.Result, []score.Contribution) {
	fit, unevaluated := m.Fit(in.fit)
	return m.Score(fit, unevaluated, in.events, at), fit
}

// readScoreInput reads c's consent and the events m's intent rules read
// (those that can still count at at, and those dated after it).
func readScoreInput(ctx context.Context, q rowsQuerier, c Contact, m *score.Compiled, at time.Time) (scoreInput, error) {
	view := journey.TemplateData(journey.ContactView{ID: c.ID, ExternalID: c.ExternalID, Email: c.Email,
		Phone: c.Phone, TimeZone: c.TimeZone, Attributes: c.Attributes}, "", 0)
	in := scoreInput{fit: score.FitInput{Contact: view["contact"].(map[string]any), Consent: map[string]string{}}}
	rows, err := q.Query(ctx, `SELECT channel, status FROM consents WHERE contact_id = $1 AND subscription = ''`, c.ID)
	if err != nil {
		return scoreInput{}, fmt.Errorf("consent of contact %s: %w", c.ID, err)
	}
	var channel, status string
	if _, err := pgx.ForEachRow(rows, []any{&channel, &status}, func() error {
		in.fit.Consent[channel] = status
		return nil
	}); err != nil {
		return scoreInput{}, fmt.Errorf("consent of contact %s: %w", c.ID, err)
	}
	names := m.IntentEvents()
	if len(names) == 0 {
		return in, nil
	}
	rows, err = q.Query(ctx, `
		SELECT id, name, occurred_at, properties FROM events
		WHERE contact_id = $1 AND name = ANY($2) AND occurred_at >= $3
		ORDER BY occurred_at, id`, c.ID, names, at.Add(-m.Lookback()))
	if err != nil {
		return scoreInput{}, fmt.Errorf("events of contact %s: %w", c.ID, err)
	}
	var e score.Event
	if _, err := pgx.ForEachRow(rows, []any{&e.ID, &e.Name, &e.OccurredAt, &e.Properties}, func() error {
		e.OccurredAt = e.OccurredAt.UTC()
		in.events = append(in.events, e)
		e.Properties = nil
		return nil
	}); err != nil {
		return scoreInput{}, fmt.Errorf("events of contact %s: %w", c.ID, err)
	}
	return in, nil
}

// readStoredScore reads the contact's stored score (nil if none), locking
// the row when lock is set.
func readStoredScore(ctx context.Context, q rowQuerier, contactID string, lock bool) (*StoredScore, error) {
	query := `SELECT model_version, fit, intent, combined, fit_band, intent_band, combined_band, scored_at, next_check_at
		FROM contact_scores WHERE contact_id = $1`
	if lock {
		query += ` FOR UPDATE`
	}
	var st StoredScore
	err := q.QueryRow(ctx, query, contactID).Scan(&st.ModelVersion, &st.Fit, &st.Intent, &st.Combined,
		&st.Bands.Fit, &st.Bands.Intent, &st.Bands.Combined, &st.ScoredAt, &st.NextCheckAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("stored score of contact %s: %w", contactID, err)
	}
	st.ScoredAt = st.ScoredAt.UTC()
	return &st, nil
}

// Rescore scores a contact at a moment under the latest model, stores its
// scores and bands, and stores a score.band_changed event for each band
// that moved (see the top of this file). It returns the changes; none for
// an unknown contact or when there is no model.
func (s *Store) Rescore(ctx context.Context, contactID string, at time.Time) ([]score.BandChange, error) {
	var changes []score.BandChange
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		changes, err = s.rescore(ctx, tx, contactID, at)
		return err
	})
	return changes, err
}

// rescore is Rescore in tx.
func (s *Store) rescore(ctx context.Context, tx pgx.Tx, contactID string, at time.Time) ([]score.BandChange, error) {
	c, err := scanContact(tx.QueryRow(ctx, `SELECT `+contactColumns+` FROM contacts WHERE id = $1 FOR SHARE`, contactID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil // erased: nothing to score
	}
	if err != nil {
		return nil, fmt.Errorf("rescoring contact %s: %w", contactID, err)
	}
	if err := lockContactDeliveries(ctx, tx, contactID); err != nil {
		return nil, fmt.Errorf("rescoring: %w", err)
	}
	version, m, err := s.latestScoreModel(ctx, tx)
	if err != nil || m == nil {
		return nil, err
	}
	in, err := readScoreInput(ctx, tx, c, m, at)
	if err != nil {
		return nil, err
	}
	stored, err := readStoredScore(ctx, tx, contactID, true)
	if err != nil {
		return nil, err
	}
	r, fit := in.score(m, at)
	from := m.ZeroBands()
	if stored != nil {
		from = stored.Bands
	}
	var next *time.Time
	if t, ok := m.NextCheck(fit, in.events, r); ok {
		next = &t
	}
	bands := r.Bands()
	if _, err := tx.Exec(ctx, `
		INSERT INTO contact_scores (contact_id, model_version, fit, intent, combined, fit_band, intent_band, combined_band, scored_at, next_check_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT (contact_id) DO UPDATE SET model_version = $2, fit = $3, intent = $4, combined = $5,
			fit_band = $6, intent_band = $7, combined_band = $8, scored_at = $9, next_check_at = $10`,
		contactID, version, r.Fit, r.Intent, r.Combined, bands.Fit, bands.Intent, bands.Combined, at, next); err != nil {
		return nil, fmt.Errorf("storing the score of contact %s: %w", contactID, err)
	}
	changes := score.Changes(from, bands)
	for _, ch := range changes {
		e := Event{ID: newID("ev_"), ContactID: contactID, Name: score.BandChangedEvent, Properties: ch.Properties(), OccurredAt: at}
		out, err := trackInTx(ctx, tx, trackEventsPlain, e)
		if err == nil {
			err = out.err
		}
		if err != nil {
			return nil, fmt.Errorf("storing the band change of contact %s: %w", contactID, err)
		}
	}
	return changes, nil
}

// PendingScores counts the contacts marked in the scoring outbox and not
// yet rescored (the tutti_score_outbox_depth gauge).
func (s *Store) PendingScores(ctx context.Context) (int64, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM score_pending`).Scan(&n); err != nil {
		return 0, fmt.Errorf("pending scores: %w", err)
	}
	return n, nil
}

// scoreLease is how long a scorer's claim on a mark lasts: far longer than
// a rescoring (milliseconds), and the delay before a failed one is retried.
const scoreLease = time.Minute

// ScorePending rescores, at a moment, up to limit contacts marked in the
// scoring outbox, oldest mark first, each in its own transaction that
// removes its mark; it returns how many it rescored and how many bands
// moved. Several processes may run it at once: a mark is claimed with SKIP
// LOCKED and a lease (scoreLease), in a statement of its own, so the
// rescoring holds no lock on it while it waits for the contact's locks (an
// erasure holding the contact's row would otherwise wait for the mark's
// row, which its cascade deletes). A contact whose rescoring fails keeps
// its mark and is tried again when the lease ends; the first such error is
// returned once the others were tried.
func (s *Store) ScorePending(ctx context.Context, at time.Time, limit int) (scored, changed int, err error) {
	var failed error
	for scored < limit {
		var id string
		err := s.pool.QueryRow(ctx, `
			UPDATE score_pending SET claimed_until = now() + $1::interval
			WHERE contact_id = (SELECT contact_id FROM score_pending WHERE claimed_until < now()
			                    ORDER BY marked_at, contact_id LIMIT 1 FOR UPDATE SKIP LOCKED)
			RETURNING contact_id`, scoreLease).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			break
		}
		if err != nil {
			return scored, changed, fmt.Errorf("taking a contact to score: %w", err)
		}
		scored++
		err = s.inTx(ctx, func(tx pgx.Tx) error {
			changes, err := s.rescore(ctx, tx, id, at)
			if err != nil {
				return err
			}
			changed += len(changes)
			// The mark goes only now, under the delivery lock: a change
			// committed after this rescoring read marks the contact again.
			if _, err := tx.Exec(ctx, `DELETE FROM score_pending WHERE contact_id = $1`, id); err != nil {
				return fmt.Errorf("unmarking contact %s: %w", id, err)
			}
			return nil
		})
		if err != nil {
			if ctx.Err() != nil {
				return scored, changed, err
			}
			failed = cmp.Or(failed, err)
		}
	}
	return scored, changed, failed
}

// ScoreSweep is what one SweepScores call did.
type ScoreSweep struct {
	// Due is how many contacts were rescored because their next check had
	// come (time alone may have moved a band); Backfilled how many were
	// scored for the first time under the latest model.
	Due        int `json:"due"`
	Backfilled int `json:"backfilled"`
	// Changed is how many bands moved (score.band_changed events stored).
	Changed int `json:"changed"`
	// More says a limit was reached: call again.
	More bool `json:"more"`
}

// SweepScores rescores, at a moment, up to limit contacts whose next check
// has come (an index scan of contact_scores.next_check_at, no full
// recompute), then up to limit contacts not yet scored under the latest
// model version once ScoreModelSettle has passed since it was stored (a
// cursor over contact ids kept on the version).
func (s *Store) SweepScores(ctx context.Context, at time.Time, limit int) (ScoreSweep, error) {
	var out ScoreSweep
	due, err := queryAll(ctx, s.pool, "contacts due for a score check", scanString, `
		SELECT contact_id FROM contact_scores WHERE next_check_at <= $1
		ORDER BY next_check_at LIMIT $2`, at, limit)
	if err != nil {
		return out, err
	}
	for _, id := range due {
		changes, err := s.Rescore(ctx, id, at)
		if err != nil {
			return out, err
		}
		out.Due++
		out.Changed += len(changes)
	}
	out.More = len(due) == limit

	var (
		version int
		cursor  string
	)
	err = s.pool.QueryRow(ctx, `SELECT version, backfilled_through FROM score_models
		WHERE version = (SELECT max(version) FROM score_models) AND backfilled_at IS NULL AND created_at <= $1`,
		at.Add(-ScoreModelSettle)).Scan(&version, &cursor)
	if errors.Is(err, pgx.ErrNoRows) {
		return out, nil
	}
	if err != nil {
		return out, fmt.Errorf("reading the score model's backfill: %w", err)
	}
	ids, err := queryAll(ctx, s.pool, "contacts to score", scanString,
		`SELECT id FROM contacts WHERE id > $1 ORDER BY id LIMIT $2`, cursor, limit)
	if err != nil {
		return out, err
	}
	for _, id := range ids {
		changes, err := s.Rescore(ctx, id, at)
		if err != nil {
			return out, err
		}
		out.Backfilled++
		out.Changed += len(changes)
	}
	done, from := len(ids) < limit, cursor
	if len(ids) > 0 {
		cursor = ids[len(ids)-1]
	}
	// Conditional on the cursor read: two sweeps at once both rescore the
	// same page (harmless: bands are compared under lock), one moves it.
	if _, err := s.pool.Exec(ctx, `UPDATE score_models SET backfilled_through = $2,
		backfilled_at = CASE WHEN $3 THEN now() END
		WHERE version = $1 AND backfilled_at IS NULL AND backfilled_through = $4`,
		version, cursor, done, from); err != nil {
		return out, fmt.Errorf("moving the score model's backfill: %w", err)
	}
	out.More = out.More || !done
	return out, nil
}

func scanString(r rowScanner) (string, error) {
	var v string
	err := r.Scan(&v)
	return v, err
}

// markScorePendingForFit marks the contact for rescoring when the latest
// model has fit rules: its attributes or consent changed. Run in the
// change's transaction while it holds the contact's row lock.
const markScorePendingForFit = `INSERT INTO score_pending (contact_id)
	SELECT $1::text WHERE (SELECT has_fit FROM score_models ORDER BY version DESC LIMIT 1)
	ON CONFLICT (contact_id) DO NOTHING`

// trackStatement is the statement that stores tracked events
// (trackEventsStatement): with a scoring model, the one that also marks
// contacts for rescoring.
func (s *Store) trackStatement(ctx context.Context, q rowQuerier) string {
	if s.scoringOn(ctx, q) {
		return trackEventsScored
	}
	return trackEventsPlain
}

// markFitChanged marks, in tx, a contact whose attributes or consent
// changed for rescoring, when a model exists and has fit rules; tx holds
// the contact's row lock, which a rescoring waits for before it reads.
func (s *Store) markFitChanged(ctx context.Context, tx pgx.Tx, contactID string) error {
	if !s.scoringOn(ctx, tx) {
		return nil
	}
	if _, err := tx.Exec(ctx, markScorePendingForFit, contactID); err != nil {
		return fmt.Errorf("marking contact %s for rescoring: %w", contactID, err)
	}
	return nil
}

package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/tutti-dev/tutti/internal/journey"
)

const journeyVersionColumns = `journey_id, version, spec, published_at`

func scanJourneyVersion(r rowScanner) (JourneyVersion, error) {
	var (
		v    JourneyVersion
		spec []byte
	)
	if err := r.Scan(&v.JourneyID, &v.Version, &spec, &v.PublishedAt); err != nil {
		return JourneyVersion{}, err
	}
	if err := json.Unmarshal(spec, &v.Spec); err != nil {
		return JourneyVersion{}, fmt.Errorf("decoding spec of journey %s version %d: %w", v.JourneyID, v.Version, err)
	}
	v.PublishedAt = v.PublishedAt.UTC()
	return v, nil
}

// PublishJourney stores spec as the next version of journey spec.ID (version
// 1 for a new journey) and returns it. The spec must already be validated.
// Concurrent publishes of one journey are serialised on the journeys row, so
// they get distinct, consecutive versions. Published versions are immutable
// (a trigger refuses UPDATEs), which is what lets a running contact keep the
// version it started with.
func (s *Store) PublishJourney(ctx context.Context, spec journey.Spec) (JourneyVersion, error) {
	if spec.ID == "" {
		return JourneyVersion{}, errors.New("publish journey: spec has no id")
	}
	raw, err := json.Marshal(spec)
	if err != nil {
		return JourneyVersion{}, fmt.Errorf("publish journey %s: encoding spec: %w", spec.ID, err)
	}
	var trigger, segment *string
	switch {
	case spec.Trigger.Type == journey.TriggerEvent && spec.Trigger.Event != "":
		trigger = &spec.Trigger.Event
	case spec.Trigger.Type == journey.TriggerSegment && spec.Trigger.Segment != "":
		// Started by the segment's segment.entered events only.
		entered := journey.EventSegmentEntered
		trigger, segment = &entered, &spec.Trigger.Segment
	}
	var out JourneyVersion
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO journeys (id) VALUES ($1) ON CONFLICT (id) DO NOTHING`, spec.ID); err != nil {
			return fmt.Errorf("publish journey %s: creating journey: %w", spec.ID, err)
		}
		// The row lock makes the max()+1 below safe: a concurrent publisher
		// waits here, then reads our committed version in its own statement.
		if _, err := tx.Exec(ctx, `SELECT 1 FROM journeys WHERE id = $1 FOR UPDATE`, spec.ID); err != nil {
			return fmt.Errorf("publish journey %s: locking journey: %w", spec.ID, err)
		}
		out, err = scanJourneyVersion(tx.QueryRow(ctx, `
			INSERT INTO journey_versions (journey_id, version, spec, trigger_event, trigger_segment)
			SELECT $1::text, COALESCE(MAX(version), 0) + 1, $2::jsonb, $3::text, $4::text
			FROM journey_versions WHERE journey_id = $1
			RETURNING `+journeyVersionColumns,
			spec.ID, raw, trigger, segment))
		if err != nil {
			return fmt.Errorf("publish journey %s: inserting version: %w", spec.ID, err)
		}
		return nil
	})
	if err != nil {
		return JourneyVersion{}, err
	}
	return out, nil
}

// JourneyVersion returns one published version, or ErrNotFound.
func (s *Store) JourneyVersion(ctx context.Context, id string, version int) (JourneyVersion, error) {
	return queryOne(ctx, s.pool, fmt.Sprintf("journey %s version %d", id, version), scanJourneyVersion, `
		SELECT `+journeyVersionColumns+` FROM journey_versions
		WHERE journey_id = $1 AND version = $2`, id, version)
}

// LatestJourneyVersion returns the journey's newest version, or ErrNotFound
// if it was never published.
func (s *Store) LatestJourneyVersion(ctx context.Context, id string) (JourneyVersion, error) {
	return queryOne(ctx, s.pool, "journey "+id, scanJourneyVersion, `
		SELECT `+journeyVersionColumns+` FROM journey_versions
		WHERE journey_id = $1
		ORDER BY version DESC
		LIMIT 1`, id)
}

// JourneyVersions returns every version of the journey, newest first. An
// unknown journey yields an empty list.
func (s *Store) JourneyVersions(ctx context.Context, id string) ([]JourneyVersion, error) {
	return queryAll(ctx, s.pool, "versions of journey "+id, scanJourneyVersion, `
		SELECT `+journeyVersionColumns+` FROM journey_versions
		WHERE journey_id = $1
		ORDER BY version DESC`, id)
}

// Journeys returns the latest version of every journey, ordered by id.
func (s *Store) Journeys(ctx context.Context) ([]JourneyVersion, error) {
	return queryAll(ctx, s.pool, "listing journeys", scanJourneyVersion, `
		SELECT DISTINCT ON (journey_id) `+journeyVersionColumns+`
		FROM journey_versions
		ORDER BY journey_id, version DESC`)
}

// LatestVersionsTriggeredBy returns the journeys whose latest version is
// triggered by eventName, ordered by journey id. A journey whose newer
// version changed or dropped the trigger is not returned: new contacts always
// enter the latest version.
func (s *Store) LatestVersionsTriggeredBy(ctx context.Context, eventName string) ([]JourneyVersion, error) {
	return queryAll(ctx, s.pool, fmt.Sprintf("journeys triggered by %q", eventName), scanJourneyVersion, `
		SELECT `+journeyVersionColumns+` FROM journey_versions v
		WHERE v.trigger_event = $1
		  AND v.version = (SELECT MAX(version) FROM journey_versions WHERE journey_id = v.journey_id)
		ORDER BY v.journey_id`, eventName)
}

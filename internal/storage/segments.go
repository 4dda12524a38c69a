package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tutti-dev/tutti/internal/segment"
)

// Segments (migration 00012): versioned definitions, and memberships with
// their history. Membership changes are found by evaluating a contact's
// segments (segment.Segment.Evaluate) on its current data; see
// segment_eval.go for when that happens and how it stays exact.

// SegmentVersion is one stored version of a segment definition.
type SegmentVersion struct {
	SegmentID     string             `json:"segment_id"`
	Version       int                `json:"version"`
	Definition    segment.Definition `json:"definition"`
	TimeDependent bool               `json:"time_dependent"`
	DefinedAt     time.Time          `json:"defined_at"`
}

const segmentVersionColumns = `segment_id, version, definition, time_dependent, defined_at`

func scanSegmentVersion(r rowScanner) (SegmentVersion, error) {
	var (
		v   SegmentVersion
		raw []byte
	)
	if err := r.Scan(&v.SegmentID, &v.Version, &raw, &v.TimeDependent, &v.DefinedAt); err != nil {
		return SegmentVersion{}, err
	}
	if err := json.Unmarshal(raw, &v.Definition); err != nil {
		return SegmentVersion{}, fmt.Errorf("decoding segment %s version %d: %w", v.SegmentID, v.Version, err)
	}
	v.DefinedAt = v.DefinedAt.UTC()
	return v, nil
}

// DefineSegment stores a compiled segment as its next version (version 1
// for a new segment) and queues every contact for evaluation, so the new
// definition's members are found. A definition equal to the latest version
// stores nothing and returns that version with created false (a retried
// PUT). Concurrent defines of one segment are serialised on its row.
func (s *Store) DefineSegment(ctx context.Context, seg *segment.Segment) (SegmentVersion, bool, error) {
	raw, err := json.Marshal(seg.Definition)
	if err != nil {
		return SegmentVersion{}, false, fmt.Errorf("define segment %s: encoding: %w", seg.ID, err)
	}
	var (
		out     SegmentVersion
		created bool
	)
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO segments (id) VALUES ($1) ON CONFLICT (id) DO NOTHING`, seg.ID); err != nil {
			return fmt.Errorf("define segment %s: %w", seg.ID, err)
		}
		if _, err := tx.Exec(ctx, `SELECT 1 FROM segments WHERE id = $1 FOR NO KEY UPDATE`, seg.ID); err != nil {
			return fmt.Errorf("define segment %s: locking: %w", seg.ID, err)
		}
		latest, err := queryOne(ctx, tx, "segment "+seg.ID, scanSegmentVersion, `
			SELECT `+segmentVersionColumns+` FROM segment_versions WHERE segment_id = $1 ORDER BY version DESC LIMIT 1`, seg.ID)
		switch {
		case err == nil && reflect.DeepEqual(latest.Definition, seg.Definition):
			out = latest
			return nil
		case err != nil && !errors.Is(err, ErrNotFound):
			return err
		}
		out, err = scanSegmentVersion(tx.QueryRow(ctx, `
			INSERT INTO segment_versions (segment_id, version, definition, time_dependent)
			SELECT $1::text, COALESCE(MAX(version), 0) + 1, $2::jsonb, $3
			FROM segment_versions WHERE segment_id = $1
			RETURNING `+segmentVersionColumns, seg.ID, raw, seg.TimeDependent))
		if err != nil {
			return fmt.Errorf("define segment %s: inserting version: %w", seg.ID, err)
		}
		created = true
		if _, err := tx.Exec(ctx, `
			INSERT INTO segment_evaluations (contact_id) SELECT id FROM contacts`); err != nil {
			return fmt.Errorf("define segment %s: queueing contacts: %w", seg.ID, err)
		}
		return nil
	})
	if err != nil {
		return SegmentVersion{}, false, err
	}
	return out, created, nil
}

// LatestSegmentVersion returns the segment's newest version, or ErrNotFound.
func (s *Store) LatestSegmentVersion(ctx context.Context, id string) (SegmentVersion, error) {
	return queryOne(ctx, s.pool, "segment "+id, scanSegmentVersion, `
		SELECT `+segmentVersionColumns+` FROM segment_versions WHERE segment_id = $1 ORDER BY version DESC LIMIT 1`, id)
}

// latestSegmentVersions returns the latest version of every segment, by id.
func latestSegmentVersions(ctx context.Context, q rowsQuerier) ([]SegmentVersion, error) {
	return queryAll(ctx, q, "listing segments", scanSegmentVersion, `
		SELECT DISTINCT ON (segment_id) `+segmentVersionColumns+`
		FROM segment_versions ORDER BY segment_id, version DESC`)
}

// SegmentSummary is a segment's latest version and how many contacts are
// in it now.
type SegmentSummary struct {
	SegmentVersion
	Members int64 `json:"members"`
}

// Segments lists every segment (latest version) with its member count.
func (s *Store) Segments(ctx context.Context) ([]SegmentSummary, error) {
	return queryAll(ctx, s.pool, "listing segments", func(r rowScanner) (SegmentSummary, error) {
		var out SegmentSummary
		v, err := scanSegmentVersion(prefixScanner{r, &out.Members})
		out.SegmentVersion = v
		return out, err
	}, `
		SELECT (SELECT count(*) FROM segment_memberships m WHERE m.segment_id = v.segment_id AND m.exited_at IS NULL),
		       `+segmentVersionColumns+`
		FROM (SELECT DISTINCT ON (segment_id) * FROM segment_versions ORDER BY segment_id, version DESC) v
		ORDER BY segment_id`)
}

// SegmentMembership is one stay of a contact in a segment: open while
// ExitedAt is nil.
type SegmentMembership struct {
	SegmentID      string     `json:"segment_id"`
	ContactID      string     `json:"contact_id"`
	SegmentVersion int        `json:"segment_version"`
	EnteredAt      time.Time  `json:"entered_at"`
	ExitedAt       *time.Time `json:"exited_at,omitempty"`
}

const membershipColumns = `segment_id, contact_id, segment_version, entered_at, exited_at`

func scanMembership(r rowScanner) (SegmentMembership, error) {
	var m SegmentMembership
	if err := r.Scan(&m.SegmentID, &m.ContactID, &m.SegmentVersion, &m.EnteredAt, &m.ExitedAt); err != nil {
		return SegmentMembership{}, err
	}
	m.EnteredAt, m.ExitedAt = m.EnteredAt.UTC(), utcPtr(m.ExitedAt)
	return m, nil
}

// SegmentMembers pages through a segment's current members by contact id:
// up to limit members whose id sorts after after. An unknown segment is
// ErrNotFound.
func (s *Store) SegmentMembers(ctx context.Context, id, after string, limit int) ([]SegmentMembership, error) {
	if _, err := s.LatestSegmentVersion(ctx, id); err != nil {
		return nil, err
	}
	return queryAll(ctx, s.pool, "members of segment "+id, scanMembership, `
		SELECT `+membershipColumns+` FROM segment_memberships
		WHERE segment_id = $1 AND exited_at IS NULL AND contact_id > $2
		ORDER BY contact_id LIMIT $3`, id, after, limit)
}

// ContactSegments returns a contact's memberships, current and past,
// newest first.
func (s *Store) ContactSegments(ctx context.Context, contactID string) ([]SegmentMembership, error) {
	return queryAll(ctx, s.pool, "segments of contact "+contactID, scanMembership, `
		SELECT `+membershipColumns+` FROM segment_memberships
		WHERE contact_id = $1 ORDER BY entered_at DESC, id DESC`, contactID)
}

// QueuedSegmentEvaluations counts the changes waiting for a segment
// evaluation (rows of the segment outbox; one evaluation answers all of a
// contact's).
func (s *Store) QueuedSegmentEvaluations(ctx context.Context) (int64, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM segment_evaluations`).Scan(&n); err != nil {
		return 0, fmt.Errorf("counting queued segment evaluations: %w", err)
	}
	return n, nil
}

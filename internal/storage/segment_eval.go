package storage

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/segment"
)

// Incremental membership. A change to a contact (an event, its attributes,
// a consent, a suppression) queues the contact in segment_evaluations in
// the change's own transaction (the event statement, or a trigger: see
// migration 00012); EvaluateQueuedSegments, run by every worker's
// dispatcher, evaluates the contact's segments on its current data and
// records the entries and exits, each with its event, in one transaction
// that also removes the queue rows it answered. The Temporal sweep
// (SweepSegments) does the same for segments that change with time alone.
//
// Exactness. An evaluation holds the contact's delivery lock
// (lockContactDeliveries), as every transaction that stores an event for
// the contact does, so evaluations of one contact never overlap, and the
// segment events they store take their deliveries' place in the contact's
// order. It reads the queue rows first, then the data: a change committed
// before the rows were read is in the data; one committed after has its
// own row, which this evaluation does not delete. Entries are inserted
// against the unique index of open memberships and exits close only an
// open row, and the event of each is stored only if its row was written:
// an entry is recorded and told once.
//
// Locks. The queue is insert-only for changes, so a change never waits for
// an evaluation, and an evaluation deletes only rows committed before it
// started. After the delivery lock it takes a key-share lock on the contact
// row (what TrackEvent takes through its foreign keys, here before any row
// is written, see evaluateContact) and then the rows it writes.

// compiledSegment is a segment's latest version, compiled.
type compiledSegment struct {
	SegmentVersion
	seg *segment.Segment
}

// compiledSegments returns every segment's latest version, compiled; the
// compiled forms are cached by id and version (versions never change).
func (s *Store) compiledSegments(ctx context.Context, onlyTime bool) ([]compiledSegment, error) {
	vs, err := latestSegmentVersions(ctx, s.pool)
	if err != nil {
		return nil, err
	}
	out := make([]compiledSegment, 0, len(vs))
	for _, v := range vs {
		if onlyTime && !v.TimeDependent {
			continue
		}
		seg, err := s.compiledSegment(v)
		if err != nil {
			return nil, err
		}
		out = append(out, compiledSegment{SegmentVersion: v, seg: seg})
	}
	return out, nil
}

// eventsRead is the union of what segs read of a contact's stored events
// (segment.Segment.EventNames): names, or all of them.
type eventsRead struct {
	names []string
	all   bool
}

func eventsReadBy(segs []compiledSegment) eventsRead {
	var r eventsRead
	seen := map[string]bool{}
	for _, c := range segs {
		names, all := c.seg.EventNames()
		r.all = r.all || all
		for _, n := range names {
			if !seen[n] {
				seen[n] = true
				r.names = append(r.names, n)
			}
		}
	}
	return r
}

// compiledSegment compiles a stored version, once per process.
func (s *Store) compiledSegment(v SegmentVersion) (*segment.Segment, error) {
	key := fmt.Sprintf("%s/%d", v.SegmentID, v.Version)
	if c, ok := s.segmentCache.Load(key); ok {
		return c.(*segment.Segment), nil
	}
	seg, err := segment.Compile(v.Definition)
	if err != nil {
		// Stored definitions were compiled before they were stored.
		return nil, fmt.Errorf("segment %s version %d does not compile: %w", v.SegmentID, v.Version, err)
	}
	s.segmentCache.Store(key, seg)
	return seg, nil
}

// segmentScores is the one place segments read lead scores: the scores
// and bands of each of contactIDs as segment conditions see them (a
// contact missing from the map has zero scores and no band: none was
// scored yet, or there is no scoring model). They are the contact's stored
// scores (contact_scores), as of its last scoring: the bands are kept
// current by the scorer on every change and by the score sweep when time
// alone moves one, and each band change queues the contact's segments
// (score.band_changed goes through TrackEvent); the numbers themselves are
// as of the last scoring, while intent decays between scorings.
func segmentScores(ctx context.Context, q rowsQuerier, contactIDs []string, now time.Time) (map[string]segment.Scores, error) {
	out := map[string]segment.Scores{}
	if len(contactIDs) == 0 {
		return out, nil
	}
	rows, err := q.Query(ctx, `
		SELECT contact_id, fit, intent, combined, fit_band, intent_band, combined_band
		FROM contact_scores WHERE contact_id = ANY($1::text[])`, contactIDs)
	if err != nil {
		return nil, fmt.Errorf("reading scores for segments: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id string
			sc segment.Scores
		)
		if err := rows.Scan(&id, &sc.Fit, &sc.Intent, &sc.Combined, &sc.FitBand, &sc.IntentBand, &sc.CombinedBand); err != nil {
			return nil, fmt.Errorf("reading scores for segments: %w", err)
		}
		out[id] = sc
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading scores for segments: %w", err)
	}
	return out, nil
}

// segmentInput reads what segments read about one contact, as of now; a
// contact that does not exist is ErrNotFound.
func segmentInput(ctx context.Context, q segmentQuerier, contactID string, events eventsRead, now time.Time) (segment.Input, error) {
	ins, err := segmentInputs(ctx, q, []string{contactID}, events, now)
	if err != nil {
		return segment.Input{}, err
	}
	in, ok := ins[contactID]
	if !ok {
		return segment.Input{}, fmt.Errorf("contact %s: %w", contactID, ErrNotFound)
	}
	return in, nil
}

// segmentQuerier is what segmentInputs reads on: the pool or a transaction.
type segmentQuerier interface {
	rowsQuerier
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// segmentInputs reads what segments read about each of contactIDs, as of
// now, in one round trip of a query per kind of data: attributes, channel
// consent, active global suppressions and the stored events the segments
// read (events); then scores. Contacts that do not exist are missing from
// the map.
func segmentInputs(ctx context.Context, q segmentQuerier, contactIDs []string, events eventsRead, now time.Time) (map[string]segment.Input, error) {
	b := &pgx.Batch{}
	b.Queue(`SELECT `+contactColumns+` FROM contacts WHERE id = ANY($1)`, contactIDs)
	b.Queue(`SELECT contact_id, channel, status FROM consents WHERE contact_id = ANY($1) AND subscription = ''`, contactIDs)
	b.Queue(`SELECT DISTINCT contact_id, reason, '' FROM suppressions
		WHERE contact_id = ANY($1) AND journey_id IS NULL AND lifted_at IS NULL AND (expires_at IS NULL OR expires_at > $2)`,
		contactIDs, now)
	b.Queue(`SELECT contact_id, name, occurred_at, properties FROM events
		WHERE contact_id = ANY($1) AND ($2 OR name = ANY($3))`, contactIDs, events.all, events.names)
	type row struct{ contact, a, b string }
	scanRow := func(r rowScanner) (row, error) {
		var x row
		return x, r.Scan(&x.contact, &x.a, &x.b)
	}
	type event struct {
		contact string
		journey.StoredEvent
	}
	var (
		contacts           []Contact
		consents, suppress []row
		stored             []event
	)
	br := q.SendBatch(ctx, b)
	err := func() error {
		var err error
		if contacts, err = batchAll(br, "contacts for segments", scanContact); err != nil {
			return err
		}
		if consents, err = batchAll(br, "consents for segments", scanRow); err != nil {
			return err
		}
		if suppress, err = batchAll(br, "suppressions for segments", scanRow); err != nil {
			return err
		}
		stored, err = batchAll(br, "events for segments", func(r rowScanner) (event, error) {
			var e event
			err := r.Scan(&e.contact, &e.Name, &e.OccurredAt, &e.Properties)
			e.OccurredAt = e.OccurredAt.UTC()
			return e, err
		})
		return err
	}()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	out := make(map[string]segment.Input, len(contacts))
	for _, c := range contacts {
		out[c.ID] = segment.Input{
			Contact: journey.TemplateData(journey.ContactView{ID: c.ID, ExternalID: c.ExternalID, Email: c.Email, Phone: c.Phone,
				TimeZone: c.TimeZone, Attributes: c.Attributes}, "", 0)["contact"].(map[string]any),
			Consent:   map[string]string{},
			Behaviour: journey.Behaviour{Now: now},
		}
	}
	for _, x := range consents {
		if in, ok := out[x.contact]; ok {
			in.Consent[x.a] = x.b
		}
	}
	for _, x := range suppress {
		if in, ok := out[x.contact]; ok {
			in.Suppressed = append(in.Suppressed, x.a)
			out[x.contact] = in
		}
	}
	for _, e := range stored {
		if in, ok := out[e.contact]; ok {
			in.Behaviour.Events = append(in.Behaviour.Events, e.StoredEvent)
			out[e.contact] = in
		}
	}
	scores, err := segmentScores(ctx, q, contactIDs, now)
	if err != nil {
		return nil, err
	}
	for id, sc := range scores {
		if in, ok := out[id]; ok {
			in.Scores = sc
			out[id] = in
		}
	}
	return out, nil
}

// batchAll reads the next query's rows of a batch with scan.
func batchAll[T any](br pgx.BatchResults, what string, scan func(rowScanner) (T, error)) ([]T, error) {
	rows, err := br.Query()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (T, error) { return scan(r) })
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// SegmentVerdict is one segment's verdict on a contact now, with the why.
type SegmentVerdict struct {
	SegmentID string `json:"segment_id"`
	Version   int    `json:"version"`
	segment.Result
}

// ExplainContactSegments evaluates every segment on the contact's current
// data, without recording anything: which clauses hold, and why the
// contact is in or out. An unknown contact is ErrNotFound.
func (s *Store) ExplainContactSegments(ctx context.Context, contactID string) ([]SegmentVerdict, error) {
	segs, err := s.compiledSegments(ctx, false)
	if err != nil {
		return nil, err
	}
	var out []SegmentVerdict
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		in, err := segmentInput(ctx, tx, contactID, eventsReadBy(segs), time.Now().UTC())
		if err != nil {
			return err
		}
		for _, c := range segs {
			out = append(out, SegmentVerdict{SegmentID: c.SegmentID, Version: c.Version, Result: c.seg.Evaluate(in)})
		}
		return nil
	})
	return out, err
}

// SegmentChanges counts what evaluations recorded.
type SegmentChanges struct {
	Evaluated int // contacts evaluated
	Entered   int
	Exited    int
}

func (c *SegmentChanges) add(o SegmentChanges) {
	c.Evaluated += o.Evaluated
	c.Entered += o.Entered
	c.Exited += o.Exited
}

// segmentParallel bounds the contacts one EvaluateQueuedSegments call
// evaluates at once (each holds a pooled connection while it does).
const segmentParallel = 4

// EvaluateQueuedSegments evaluates the segments of up to limit queued
// contacts, about the oldest first, segmentParallel at a time, each in its
// own transaction, and records their entries and exits. Several processes
// may run it at once: a contact another evaluation holds is left to it.
func (s *Store) EvaluateQueuedSegments(ctx context.Context, limit int) (SegmentChanges, error) {
	// The oldest rows by the primary key, a bounded read however long the
	// queue is (defining a segment queues every contact).
	contacts, err := queryAll(ctx, s.pool, "queued segment evaluations", func(r rowScanner) (string, error) {
		var id string
		return id, r.Scan(&id)
	}, `SELECT contact_id FROM (SELECT contact_id, id FROM segment_evaluations ORDER BY id LIMIT $1 * 4) q
		GROUP BY contact_id ORDER BY min(id) LIMIT $1`, limit)
	if err != nil || len(contacts) == 0 {
		return SegmentChanges{}, err
	}
	segs, err := s.compiledSegments(ctx, false)
	if err != nil {
		return SegmentChanges{}, err
	}
	var (
		mu    sync.Mutex
		total SegmentChanges
		errs  []error
		wg    sync.WaitGroup
		sem   = make(chan struct{}, segmentParallel)
	)
	for _, id := range contacts {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			ch, err := s.evaluateContact(ctx, id, segs, true)
			mu.Lock()
			defer mu.Unlock()
			total.add(ch)
			if err != nil {
				errs = append(errs, err)
			}
		})
	}
	wg.Wait()
	return total, errors.Join(errs...)
}

// SweepSegments re-evaluates the time-dependent segments (windows that
// expire, now) for up to limit contacts whose id sorts after after, and
// returns the last id it looked at ("" when there are no more). Every
// contact is a candidate: "no purchase in 30 days" takes in contacts that
// did nothing at all. The page is read and evaluated in bulk, without
// locks; only a contact whose verdict differs from its recorded
// membership is evaluated again, exactly (evaluateContact), and recorded.
func (s *Store) SweepSegments(ctx context.Context, after string, limit int) (string, SegmentChanges, error) {
	segs, err := s.compiledSegments(ctx, true)
	if err != nil || len(segs) == 0 {
		return "", SegmentChanges{}, err
	}
	ids, err := queryAll(ctx, s.pool, "contacts to sweep", func(r rowScanner) (string, error) {
		var id string
		return id, r.Scan(&id)
	}, `SELECT id FROM contacts WHERE id > $1 ORDER BY id LIMIT $2`, after, limit)
	if err != nil || len(ids) == 0 {
		return "", SegmentChanges{}, err
	}
	inputs, err := segmentInputs(ctx, s.pool, ids, eventsReadBy(segs), time.Now().UTC())
	if err != nil {
		return "", SegmentChanges{}, err
	}
	type pair struct{ contact, segment string }
	openRows, err := queryAll(ctx, s.pool, "memberships to sweep", func(r rowScanner) (pair, error) {
		var p pair
		return p, r.Scan(&p.contact, &p.segment)
	}, `SELECT contact_id, segment_id FROM segment_memberships WHERE contact_id = ANY($1) AND exited_at IS NULL`, ids)
	if err != nil {
		return "", SegmentChanges{}, err
	}
	open := map[pair]bool{}
	for _, p := range openRows {
		open[p] = true
	}
	total := SegmentChanges{Evaluated: len(inputs)}
	for _, id := range ids {
		in, ok := inputs[id]
		if !ok {
			continue // erased meanwhile
		}
		changed := false
		for _, c := range segs {
			if c.seg.Matches(in) != open[pair{id, c.SegmentID}] {
				changed = true
				break
			}
		}
		if !changed {
			continue
		}
		ch, err := s.evaluateContact(ctx, id, segs, false)
		if err != nil {
			return "", total, err
		}
		total.Entered += ch.Entered
		total.Exited += ch.Exited
	}
	return ids[len(ids)-1], total, nil
}

// evaluateContact evaluates segs for one contact and records the changes
// (see the top of this file). fromQueue: answer the contact's queue rows,
// doing nothing if another evaluation already has.
func (s *Store) evaluateContact(ctx context.Context, contactID string, segs []compiledSegment, fromQueue bool) (SegmentChanges, error) {
	var out SegmentChanges
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if fromQueue {
			// Another evaluation has the contact (or an event is being
			// stored for it, which queues it again): leave it, its rows
			// stay queued until one evaluation answers them.
			var got bool
			if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock(hashtextextended('tutti.deliveries:' || $1, 0))`, contactID).Scan(&got); err != nil {
				return fmt.Errorf("serialising the deliveries of contact %s: %w", contactID, err)
			}
			if !got {
				return nil
			}
		} else if err := lockContactDeliveries(ctx, tx, contactID); err != nil {
			return err
		}
		// The key-share lock the rows written below would take through
		// their foreign keys, taken before any of them: an erasure (which
		// locks the contact FOR UPDATE, then deletes these rows by cascade)
		// waits for this transaction, or this one for it, never each for
		// the other.
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM contacts WHERE id = $1 FOR KEY SHARE)`, contactID).Scan(&exists); err != nil {
			return fmt.Errorf("locking contact %s: %w", contactID, err)
		}
		if !exists {
			return nil // erased: its queue rows went with it
		}
		var queued []int64
		if fromQueue {
			var err error
			queued, err = queryAll(ctx, tx, "queued evaluations of contact "+contactID, func(r rowScanner) (int64, error) {
				var id int64
				return id, r.Scan(&id)
			}, `SELECT id FROM segment_evaluations WHERE contact_id = $1`, contactID)
			if err != nil || len(queued) == 0 {
				return err
			}
		}
		now := time.Now().UTC()
		in, err := segmentInput(ctx, tx, contactID, eventsReadBy(segs), now)
		if errors.Is(err, ErrNotFound) {
			return nil // erased: its queue rows went with it
		}
		if err != nil {
			return err
		}
		open, err := queryAll(ctx, tx, "segments of contact "+contactID, func(r rowScanner) (string, error) {
			var id string
			return id, r.Scan(&id)
		}, `SELECT segment_id FROM segment_memberships WHERE contact_id = $1 AND exited_at IS NULL`, contactID)
		if err != nil {
			return err
		}
		isOpen := map[string]bool{}
		for _, id := range open {
			isOpen[id] = true
		}
		out.Evaluated = 1
		for _, c := range segs {
			member := c.seg.Matches(in)
			switch {
			case member && !isOpen[c.SegmentID]:
				tag, err := tx.Exec(ctx, `
					INSERT INTO segment_memberships (segment_id, contact_id, segment_version, entered_at)
					VALUES ($1, $2, $3, $4)
					ON CONFLICT (segment_id, contact_id) WHERE exited_at IS NULL DO NOTHING`,
					c.SegmentID, contactID, c.Version, now)
				if err != nil {
					return fmt.Errorf("contact %s entering segment %s: %w", contactID, c.SegmentID, err)
				}
				if tag.RowsAffected() == 1 {
					if err := storeSegmentEvent(ctx, tx, contactID, journey.EventSegmentEntered, c.SegmentID, now); err != nil {
						return err
					}
					out.Entered++
				}
			case !member && isOpen[c.SegmentID]:
				tag, err := tx.Exec(ctx, `
					UPDATE segment_memberships SET exited_at = GREATEST($3, entered_at)
					WHERE segment_id = $1 AND contact_id = $2 AND exited_at IS NULL`, c.SegmentID, contactID, now)
				if err != nil {
					return fmt.Errorf("contact %s leaving segment %s: %w", contactID, c.SegmentID, err)
				}
				if tag.RowsAffected() == 1 {
					if err := storeSegmentEvent(ctx, tx, contactID, journey.EventSegmentExited, c.SegmentID, now); err != nil {
						return err
					}
					out.Exited++
				}
			}
		}
		if len(queued) > 0 {
			if _, err := tx.Exec(ctx, `DELETE FROM segment_evaluations WHERE id = ANY($1)`, queued); err != nil {
				return fmt.Errorf("contact %s: answering its queued evaluations: %w", contactID, err)
			}
		}
		return nil
	})
	if err != nil {
		return SegmentChanges{}, fmt.Errorf("evaluating the segments of contact %s: %w", contactID, err)
	}
	return out, nil
}

// storeSegmentEvent stores a segment.entered or segment.exited event, with
// its deliveries, through the statement every tracked event takes, so
// journeys hear it as they hear any event. Its one property is the
// segment's id: nothing that identifies the person. The caller holds the
// contact's delivery lock.
func storeSegmentEvent(ctx context.Context, tx pgx.Tx, contactID, name, segmentID string, at time.Time) error {
	e := Event{ID: newID("ev_"), ContactID: contactID, Name: name, Properties: map[string]any{"segment": segmentID}, OccurredAt: at}
	out, err := trackInTx(ctx, tx, trackEventsPlain, e)
	if err == nil {
		err = out.err
	}
	if err != nil {
		return fmt.Errorf("storing %s of segment %s: %w", name, segmentID, err)
	}
	return nil
}

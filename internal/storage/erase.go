package storage

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tutti-dev/tutti/internal/contact"
	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
)

// Erasure: deleting everything that identifies a person, on their request.
//
// EraseContact deletes the contact row, and with it (ON DELETE CASCADE)
// its consent history, events and their properties, suppressions,
// enrollments and exit requests, ledger rows, sandbox messages (the
// rendered content and the address) and gate decisions; provider_events,
// which has no foreign key, is deleted by contact and by message, and the
// delivery outbox by contact (its consent and exit rows have no event to
// cascade from; they carry ids only, but a pending one would still be
// delivered to runs the erasure ends itself). What is
// kept is the erasures row (the contact's random id, when, and the runs that
// were active) and the proofs of consent and opt-out under keyed hashes of
// the identifiers (erasure_proofs), so a later upsert with the same email,
// phone or external id starts with the opt-outs in force again.

// WithErasureHasher sets the Hasher that keys the identifier hashes of
// erasure proofs (TUTTI_ERASURE_HASH_KEY). Without it the Store uses
// contact.DevHasher, whose key is public.
func WithErasureHasher(h *contact.Hasher) Option {
	return func(s *Store) {
		if h != nil {
			s.hasher = h
		}
	}
}

// ErrErased: the contact was erased; its rows are gone on purpose.
var ErrErased = errors.New("contact was erased")

// ErasureProofSource is the consent source of an opt-out recorded again
// from an erasure proof: "erasure-proof:<proof id>".
const ErasureProofSource = "erasure-proof:"

// Erasure is the record that a contact was erased.
type Erasure struct {
	ID        string    `json:"id"`
	ContactID string    `json:"contact_id"`
	ErasedAt  time.Time `json:"erased_at"`
	// ActiveRuns are the workflow ids of the journey runs that were active:
	// the caller tells each to end (workflows.ExitErased).
	ActiveRuns []string `json:"active_runs"`
	// ProofsKept counts the erasure_proofs rows written.
	ProofsKept int `json:"proofs_kept"`
}

// ErasureProof is one consent record kept after an erasure, under the hash
// of one of the identifiers the contact was known by.
type ErasureProof struct {
	ID             int64                  `json:"id"`
	ErasureID      string                 `json:"erasure_id"`
	IdentifierKind contact.IdentifierKind `json:"identifier_kind"`
	IdentifierHash []byte                 `json:"identifier_hash"`
	Channel        journey.Channel        `json:"channel"`
	Subscription   string                 `json:"subscription,omitempty"`
	Status         model.ConsentStatus    `json:"status"`
	Source         string                 `json:"source"`
	OccurredAt     time.Time              `json:"occurred_at"`
}

// proofIdentifiers are the identifiers a consent of a channel is kept (and
// recognised again) under: the address the channel reaches, and the
// customer's own user id, which names the person on every channel. Ads
// audiences are matched by email and by phone.
func proofIdentifiers(ch journey.Channel) []contact.IdentifierKind {
	switch ch {
	case journey.ChannelEmail:
		return []contact.IdentifierKind{contact.IdentifierEmail, contact.IdentifierExternalID}
	case journey.ChannelSMS:
		return []contact.IdentifierKind{contact.IdentifierPhone, contact.IdentifierExternalID}
	case journey.ChannelAds:
		return []contact.IdentifierKind{contact.IdentifierEmail, contact.IdentifierPhone, contact.IdentifierExternalID}
	}
	return nil
}

// identifiers lists the contact's identifiers by kind (empty ones left out).
func identifiers(c Contact) map[contact.IdentifierKind]string {
	out := map[contact.IdentifierKind]string{}
	for k, v := range map[contact.IdentifierKind]string{
		contact.IdentifierEmail: c.Email, contact.IdentifierPhone: c.Phone, contact.IdentifierExternalID: c.ExternalID,
	} {
		if v != "" {
			out[k] = v
		}
	}
	return out
}

// erasedMark replaces the person's identifiers in text that is kept.
const erasedMark = "[erased]"

// scrubIdentifiers blanks every identifier of c in s (case-insensitively:
// a source may quote an address as typed). Consent sources name a form or a
// keyword ("signup-form", "sms:STOP"), but they are free text from the
// caller, and the proof must not carry what the erasure removed.
func scrubIdentifiers(s string, c Contact) string {
	for _, v := range identifiers(c) {
		s = regexp.MustCompile(`(?i)`+regexp.QuoteMeta(v)).ReplaceAllLiteralString(s, erasedMark)
	}
	return s
}

const erasureColumns = `id, contact_id, erased_at, active_workflow_ids,
	(SELECT count(*) FROM erasure_proofs p WHERE p.erasure_id = erasures.id)`

func scanErasure(r rowScanner) (Erasure, error) {
	var e Erasure
	var n int64
	if err := r.Scan(&e.ID, &e.ContactID, &e.ErasedAt, &e.ActiveRuns, &n); err != nil {
		return Erasure{}, err
	}
	e.ErasedAt, e.ProofsKept = e.ErasedAt.UTC(), int(n)
	if e.ActiveRuns == nil {
		e.ActiveRuns = []string{}
	}
	return e, nil
}

// EraseContact erases the contact in one transaction (see the top of this
// file) and returns the erasure record, with created true. A contact already
// erased returns its record with created false, so a retried request
// (whose runs were perhaps not all told) finds what to finish. An id that
// was never a contact is ErrNotFound.
//
// The contact row is locked first: a send decision, a consent change or a
// webhook for the contact either commits before the erasure or finds the
// contact gone after it.
//
// Contacts merged into it (MergeContacts) are the same person: they are
// erased in the same transaction, each with its own erasure record, and
// their runs still active are in the returned ActiveRuns. Erasing a merged
// contact's own id alone is refused with ErrMerged: its data is the
// survivor's now, and erasing the survivor erases it.
func (s *Store) EraseContact(ctx context.Context, id string) (Erasure, bool, error) {
	var (
		out     Erasure
		created bool
	)
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		// The contact and the contacts merged into it (MergeContacts), in
		// id order as a merge locks its two; ones merged into it while
		// this waited are locked next (their merge has committed).
		locked, err := queryAll(ctx, tx, "erase contact "+id, scanContact,
			`SELECT `+contactColumns+` FROM contacts WHERE id = $1 OR merged_into = $1 ORDER BY id FOR UPDATE`, id)
		if err != nil {
			return err
		}
		i := slices.IndexFunc(locked, func(c Contact) bool { return c.ID == id })
		if i < 0 {
			out, err = scanErasure(tx.QueryRow(ctx, `SELECT `+erasureColumns+` FROM erasures WHERE contact_id = $1`, id))
			if err != nil {
				return notFound(err, "erase contact %s", id)
			}
			return nil
		}
		c := locked[i]
		if c.MergedInto != "" {
			return fmt.Errorf("erase contact %s: it was merged into contact %s, which holds its data: %w", id, c.MergedInto, ErrMerged)
		}
		late, err := queryAll(ctx, tx, "erase contact "+id, scanContact,
			`SELECT `+contactColumns+` FROM contacts WHERE merged_into = $1 AND NOT id = ANY($2) ORDER BY id FOR UPDATE`,
			id, contactIDs(locked))
		if err != nil {
			return err
		}
		// The merged contacts first, each with an erasure record of its
		// own (their ids answer "erased" too, and their identifiers keep
		// proofs); their runs still active are told to end with the
		// survivor's.
		var runs []string
		for _, m := range append(locked, late...) {
			if m.ID == id {
				continue
			}
			e, err := s.erase(ctx, tx, m, nil)
			if err != nil {
				return err
			}
			runs = append(runs, e.ActiveRuns...)
		}
		created = true
		out, err = s.erase(ctx, tx, c, runs)
		return err
	})
	if err != nil {
		return Erasure{}, false, err
	}
	return out, created, nil
}

func contactIDs(cs []Contact) []string {
	ids := make([]string, len(cs))
	for i, c := range cs {
		ids[i] = c.ID
	}
	return ids
}

// erase does EraseContact's work for the locked contact c. merged are the
// active runs of contacts merged into c, erased just before it: they are
// c's runs to tell to end too.
func (s *Store) erase(ctx context.Context, tx pgx.Tx, c Contact, merged []string) (Erasure, error) {
	fail := func(what string, err error) (Erasure, error) {
		return Erasure{}, fmt.Errorf("erase contact %s: %s: %w", c.ID, what, err)
	}
	consents, err := queryAll(ctx, tx, "reading consents", scanConsent,
		`SELECT `+consentColumns+` FROM consents WHERE contact_id = $1 ORDER BY channel, subscription`, c.ID)
	if err != nil {
		return Erasure{}, fmt.Errorf("erase contact %s: %w", c.ID, err)
	}
	var active, enrollments []string
	err = tx.QueryRow(ctx, `
		SELECT COALESCE(array_agg(workflow_id ORDER BY workflow_id) FILTER (WHERE status = 'active'), '{}'),
		       COALESCE(array_agg(id ORDER BY id), '{}')
		FROM enrollments WHERE contact_id = $1`, c.ID).Scan(&active, &enrollments)
	if err != nil {
		return fail("reading enrollments", err)
	}
	active = append(active, merged...)

	e := Erasure{ID: newID("er_"), ContactID: c.ID, ActiveRuns: active}
	if err := tx.QueryRow(ctx, `
		INSERT INTO erasures (id, contact_id, active_workflow_ids, enrollment_ids) VALUES ($1, $2, $3, $4)
		RETURNING erased_at`, e.ID, c.ID, active, enrollments).Scan(&e.ErasedAt); err != nil {
		return fail("recording the erasure", err)
	}
	e.ErasedAt = e.ErasedAt.UTC()

	ids := identifiers(c)
	var (
		kinds                          []string
		hashes                         [][]byte
		channels, subs, statuses, srcs []string
		occurred                       []time.Time
	)
	for _, cs := range consents {
		for _, kind := range proofIdentifiers(cs.Channel) {
			v, ok := ids[kind]
			if !ok {
				continue
			}
			h, err := s.hasher.Hash(kind, v)
			if err != nil {
				return fail("hashing identifiers", err)
			}
			kinds, hashes = append(kinds, string(kind)), append(hashes, h)
			channels, subs, statuses = append(channels, string(cs.Channel)), append(subs, cs.Subscription), append(statuses, string(cs.Status))
			srcs, occurred = append(srcs, scrubIdentifiers(cs.Source, c)), append(occurred, cs.OccurredAt)
		}
	}
	if len(kinds) > 0 {
		tag, err := tx.Exec(ctx, `
			INSERT INTO erasure_proofs (erasure_id, identifier_kind, identifier_hash, channel, subscription, status, source, occurred_at)
			SELECT $1, * FROM unnest($2::text[], $3::bytea[], $4::text[], $5::text[], $6::text[], $7::text[], $8::timestamptz[])`,
			e.ID, kinds, hashes, channels, subs, statuses, srcs, occurred)
		if err != nil {
			return fail("keeping consent proofs", err)
		}
		e.ProofsKept = int(tag.RowsAffected())
	}

	if err := keepAudienceRemovals(ctx, tx, e.ID, c); err != nil {
		return fail("keeping ad audience removals", err)
	}
	if _, err := tx.Exec(ctx, `
		DELETE FROM provider_events
		WHERE contact_id = $1 OR message_id IN (SELECT id FROM messages WHERE contact_id = $1)`, c.ID); err != nil {
		return fail("deleting provider events", err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM deliveries WHERE contact_id = $1`, c.ID); err != nil {
		return fail("deleting deliveries", err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM contacts WHERE id = $1`, c.ID); err != nil {
		return fail("deleting the contact", err)
	}
	return e, nil
}

// ContactErasure returns the erasure record of a contact id, or ErrNotFound
// if it was never erased.
func (s *Store) ContactErasure(ctx context.Context, contactID string) (Erasure, error) {
	return queryOne(ctx, s.pool, "erasure of contact "+contactID, scanErasure, `SELECT `+erasureColumns+` FROM erasures WHERE contact_id = $1`, contactID)
}

// enrollmentErased reports whether enrollment id was deleted by an erasure.
func enrollmentErased(ctx context.Context, q rowQuerier, id string) (bool, error) {
	var ok bool
	err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM erasures WHERE enrollment_ids @> ARRAY[$1::text])`, id).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("enrollment %s: looking up erasures: %w", id, err)
	}
	return ok, nil
}

// contactErased reports whether contact id was erased.
func contactErased(ctx context.Context, q rowQuerier, id string) (bool, error) {
	var ok bool
	err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM erasures WHERE contact_id = $1)`, id).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("contact %s: looking up erasures: %w", id, err)
	}
	return ok, nil
}

// ErasureProofs returns the proofs kept by one erasure, by identifier kind,
// channel and subscription.
func (s *Store) ErasureProofs(ctx context.Context, erasureID string) ([]ErasureProof, error) {
	return queryAll(ctx, s.pool, "proofs of erasure "+erasureID, scanErasureProof, `
		SELECT id, erasure_id, identifier_kind, identifier_hash, channel, subscription, status, source, occurred_at
		FROM erasure_proofs WHERE erasure_id = $1
		ORDER BY identifier_kind, channel, subscription`, erasureID)
}

func scanErasureProof(r rowScanner) (ErasureProof, error) {
	var p ErasureProof
	err := r.Scan(&p.ID, &p.ErasureID, &p.IdentifierKind, &p.IdentifierHash, &p.Channel, &p.Subscription, &p.Status, &p.Source, &p.OccurredAt)
	p.OccurredAt = p.OccurredAt.UTC()
	return p, err
}

// applyErasureProofs records again, for contact c, the opt-outs kept from
// erasures of a person known by any of the identifiers in fresh (c's
// identifiers that were just set). Per channel and subscription the proof
// of the latest erasure counts: someone who opted out, was erased, came back,
// opted in and was erased again is not held to the first opt-out.
//
// occurredAt dates the recorded opt-out. A new contact gets the erasure's
// time, so a consent the person gives after the erasure (a signup recorded
// with the form's timestamp) still wins, and one dated before it (a stale
// import) does not. An existing contact that gains an erased identifier gets
// now: what it consented to before was not given for this address.
func (s *Store) applyErasureProofs(ctx context.Context, tx pgx.Tx, c Contact, fresh map[contact.IdentifierKind]string, isNew bool) error {
	if len(fresh) == 0 {
		return nil
	}
	var (
		kinds  []string
		hashes [][]byte
	)
	for kind, v := range fresh {
		h, err := s.hasher.Hash(kind, v)
		if err != nil {
			return fmt.Errorf("contact %s: hashing identifiers: %w", c.ID, err)
		}
		kinds, hashes = append(kinds, string(kind)), append(hashes, h)
	}
	rows, err := tx.Query(ctx, `
		SELECT p.id, p.channel, p.subscription, p.status, e.erased_at FROM (
			SELECT DISTINCT ON (p.channel, p.subscription) p.id, p.channel, p.subscription, p.status, p.erasure_id
			FROM erasure_proofs p
			JOIN erasures e ON e.id = p.erasure_id
			JOIN unnest($1::text[], $2::bytea[]) AS k(kind, hash)
			  ON p.identifier_kind = k.kind AND p.identifier_hash = k.hash
			ORDER BY p.channel, p.subscription, e.erased_at DESC, p.id DESC
		) p JOIN erasures e ON e.id = p.erasure_id
		WHERE p.status = 'revoked'
		ORDER BY p.channel, p.subscription`, kinds, hashes)
	if err != nil {
		return fmt.Errorf("contact %s: looking up erasure proofs: %w", c.ID, err)
	}
	type optOut struct {
		id           int64
		channel      journey.Channel
		subscription string
		erasedAt     time.Time
	}
	outs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (optOut, error) {
		var o optOut
		var status string
		err := r.Scan(&o.id, &o.channel, &o.subscription, &status, &o.erasedAt)
		return o, err
	})
	if err != nil {
		return fmt.Errorf("contact %s: looking up erasure proofs: %w", c.ID, err)
	}
	for _, o := range outs {
		at := time.Time{} // now
		if isNew {
			at = o.erasedAt
		}
		if _, _, err := recordConsentChange(ctx, tx, ConsentChange{
			ContactID: c.ID, Channel: o.channel, Subscription: o.subscription, Status: model.ConsentRevoked,
			Source: fmt.Sprintf("%s%d", ErasureProofSource, o.id), OccurredAt: at,
		}); err != nil {
			return err
		}
	}
	return nil
}

// freshIdentifiers are the identifiers after has that before did not
// (both normalised).
func freshIdentifiers(before, after Contact) map[contact.IdentifierKind]string {
	old := identifiers(before)
	out := map[contact.IdentifierKind]string{}
	for k, v := range identifiers(after) {
		if old[k] != v {
			out[k] = v
		}
	}
	return out
}

package storage

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tutti-dev/tutti/internal/contact"
	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
)

// Contact merge: two contacts turn out to be one person (a web signup by
// email and a store customer by phone), and one, the absorbed contact, is
// folded into the other, the survivor, in one transaction:
//
//   - Identifiers. The survivor keeps its own. An identifier it lacks (no
//     phone, say) it takes from the absorbed contact; the absorbed
//     contact's others stay on its row as aliases: the unique indexes keep
//     anyone else from taking them, and a lookup by one (UpsertContact,
//     ContactByEmail..., so events and webhooks addressed by it) finds the
//     survivor.
//   - Attributes, time zone, country: the survivor's win; the absorbed
//     contact's fill the gaps. last engaged is the later, created the earlier.
//   - Events, ledger (messages), gate decisions, provider events and ended
//     runs (with their exit requests) move to the survivor, so caps,
//     cooldowns, re-entry rules and "why" see the person's whole history.
//     Pending event deliveries move too: an event stored just before the
//     merge still starts the survivor's journeys.
//   - Suppressions: the union. One both have stays once, lasting as long as
//     the longer of the two; the absorbed contact's copy is lifted (by
//     "merge:<survivor>") and kept as history.
//   - Consent: per channel and subscription type the most restrictive
//     record (model.MergeConsent). A change to the survivor's consent is
//     recorded as a consent event of its own (source "merge:<absorbed>"),
//     told to its running journeys through the outbox like any change, and
//     an opt-out waits for the survivor's sends in flight before the merge
//     is acknowledged. The absorbed contact's consent history stays on its
//     row: it is the history of that identity, and erasing the survivor
//     erases it too.
//   - Runs. The absorbed contact's active runs get an exit request with
//     the code merged (model.ExitMerged) and an 'exit' delivery, so they
//     end through the outbox whether Temporal is up or not; the survivor's
//     runs carry on. Until they end, the absorbed contact has a
//     do_not_contact suppression (source "merge"), so the gate sends it
//     nothing.
//   - The absorbed contact's row stays as a tombstone (merged_into,
//     merged_at): its id answers "merged into <survivor>" and its runs'
//     enrollments keep a row to end on.
//
// Lock order. Both contact rows FOR NO KEY UPDATE, lower id first (as the
// send gate locks several contacts); then both delivery locks in one
// statement in key order (as a shared TrackEvent group takes its); then
// both rows again FOR UPDATE, lower id first, since changing an identifier
// (a unique column) needs it. No cycle: the gate, consent changes and
// provider webhooks take the row NO KEY UPDATE before any delivery lock,
// so they queue behind the first step; TrackEvent and exit requests take
// their delivery lock before a key-share lock on the row, which NO KEY
// UPDATE does not block, so any of them the merge waits for can finish,
// and none can start on these contacts once the merge holds the delivery
// locks; an erasure takes one row FOR UPDATE and no delivery lock.

// MergeSource prefixes the source of a consent event a merge records and
// the lifted_by of the suppressions it lifts: "merge:<contact id>".
const MergeSource = "merge:"

// Errors of a refused merge (wrapped in a *MergeError).
var (
	// ErrMerged: the contact was merged into another one already.
	ErrMerged = errors.New("contact was merged into another contact")
	// ErrMergeSelf: a contact cannot absorb itself.
	ErrMergeSelf = errors.New("a contact cannot be merged into itself")
)

// Roles of the two contacts of a merge, for MergeError.
const (
	MergeSurvivor = "survivor"
	MergeAbsorbed = "absorbed"
)

// MergeError says why a merge was refused and which of the two contacts
// (Role) it is about. Err is ErrNotFound, ErrErased, ErrMerged (then
// MergedInto names the contact it was merged into) or ErrMergeSelf.
type MergeError struct {
	Role       string
	ContactID  string
	MergedInto string
	Err        error
}

func (e *MergeError) Error() string {
	if e.MergedInto != "" {
		return fmt.Sprintf("merge: %s contact %s: %v (into %s)", e.Role, e.ContactID, e.Err, e.MergedInto)
	}
	return fmt.Sprintf("merge: %s contact %s: %v", e.Role, e.ContactID, e.Err)
}

func (e *MergeError) Unwrap() error { return e.Err }

// MergeInput names the two contacts: the survivor by id, the absorbed one
// by id or by external id (exactly one).
type MergeInput struct {
	SurvivorID         string
	AbsorbedID         string
	AbsorbedExternalID string
}

// Merge is what a merge did.
type Merge struct {
	// Survivor is the survivor as it is after the merge.
	Survivor   Contact   `json:"survivor"`
	AbsorbedID string    `json:"absorbed_id"`
	MergedAt   time.Time `json:"merged_at"`
	// Already: the absorbed contact had been merged into the survivor
	// before (a retried request); nothing was changed, and the counts are zero.
	Already bool `json:"already_merged"`
	// IdentifiersTaken are the identifiers the survivor lacked and took
	// from the absorbed contact; Aliases the absorbed contact's others,
	// which now find the survivor. Kinds only: the values are PII.
	IdentifiersTaken []contact.IdentifierKind `json:"identifiers_taken"`
	Aliases          []contact.IdentifierKind `json:"aliases"`
	// AttributesAdded are the attribute keys the survivor took (it had none of them).
	AttributesAdded []string    `json:"attributes_added"`
	Moved           MergeCounts `json:"moved"`
	// ConsentChanges are the consent events recorded on the survivor.
	ConsentChanges []ConsentEvent `json:"consent_changes"`
	// RunsExiting are the workflow ids of the absorbed contact's active
	// runs, told to end (reason merged) by the exit requests ExitRequests.
	RunsExiting  []string `json:"runs_exiting"`
	ExitRequests []string `json:"exit_requests"`
	// PendingDeliveries counts the deliveries the merge stored (exits, and
	// consent changes for the survivor's runs).
	PendingDeliveries int `json:"pending_deliveries"`
}

// MergeCounts counts the rows moved to the survivor.
type MergeCounts struct {
	Events         int `json:"events"`
	Messages       int `json:"messages"`
	Decisions      int `json:"decisions"`
	ProviderEvents int `json:"provider_events"`
	Suppressions   int `json:"suppressions"`
	Enrollments    int `json:"enrollments"`
	Deliveries     int `json:"deliveries"`
}

// MergeContacts folds the absorbed contact into the survivor (see the top
// of this file) and returns what it did. A retry of a merge that committed
// returns it with Already set. Refusals are *MergeError: either contact
// unknown or erased, the survivor merged into another, the absorbed one
// merged into a contact other than the survivor, or both the same.
func (s *Store) MergeContacts(ctx context.Context, in MergeInput) (Merge, error) {
	var m Merge
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		m, err = mergeContacts(ctx, tx, in)
		return err
	})
	if err != nil {
		return Merge{}, err
	}
	var optOuts []ConsentChange
	for _, ev := range m.ConsentChanges {
		optOuts = append(optOuts, ConsentChange{ContactID: ev.ContactID, Channel: ev.Channel, Status: ev.Status})
	}
	if err := s.settleOptOut(ctx, m.Survivor.ID, optOuts); err != nil {
		return Merge{}, err
	}
	return m, nil
}

func mergeContacts(ctx context.Context, tx pgx.Tx, in MergeInput) (Merge, error) {
	if in.AbsorbedID == "" && in.AbsorbedExternalID != "" {
		// The row that holds it, a merged contact's included: a retried
		// merge finds the contact it absorbed, not the survivor.
		err := tx.QueryRow(ctx, `SELECT id FROM contacts WHERE external_id = $1`, in.AbsorbedExternalID).Scan(&in.AbsorbedID)
		if errors.Is(err, pgx.ErrNoRows) {
			return Merge{}, &MergeError{Role: MergeAbsorbed, Err: ErrNotFound}
		}
		if err != nil {
			return Merge{}, fmt.Errorf("merge: looking up the absorbed contact: %w", err)
		}
	}
	sid, aid := in.SurvivorID, in.AbsorbedID
	if sid == aid {
		return Merge{}, &MergeError{Role: MergeAbsorbed, ContactID: aid, Err: ErrMergeSelf}
	}
	order := []string{sid, aid}
	slices.Sort(order)

	rows := map[string]Contact{}
	for _, id := range order {
		c, err := scanContact(tx.QueryRow(ctx, `SELECT `+contactColumns+` FROM contacts WHERE id = $1 FOR NO KEY UPDATE`, id))
		if errors.Is(err, pgx.ErrNoRows) {
			role := MergeSurvivor
			if id == aid {
				role = MergeAbsorbed
			}
			erased, eerr := contactErased(ctx, tx, id)
			switch {
			case eerr != nil:
				return Merge{}, eerr
			case erased:
				return Merge{}, &MergeError{Role: role, ContactID: id, Err: ErrErased}
			}
			return Merge{}, &MergeError{Role: role, ContactID: id, Err: ErrNotFound}
		}
		if err != nil {
			return Merge{}, fmt.Errorf("merge: locking contact %s: %w", id, err)
		}
		rows[id] = c
	}
	sv, ab := rows[sid], rows[aid]
	switch {
	case sv.MergedInto != "":
		return Merge{}, &MergeError{Role: MergeSurvivor, ContactID: sid, MergedInto: sv.MergedInto, Err: ErrMerged}
	case ab.MergedInto == sid:
		return Merge{Survivor: sv, AbsorbedID: aid, MergedAt: *ab.MergedAt, Already: true,
			IdentifiersTaken: []contact.IdentifierKind{}, Aliases: []contact.IdentifierKind{}, AttributesAdded: []string{},
			ConsentChanges: []ConsentEvent{}, RunsExiting: []string{}, ExitRequests: []string{}}, nil
	case ab.MergedInto != "":
		return Merge{}, &MergeError{Role: MergeAbsorbed, ContactID: aid, MergedInto: ab.MergedInto, Err: ErrMerged}
	}
	if _, err := tx.Exec(ctx, lockContactsDeliveries, order); err != nil {
		return Merge{}, fmt.Errorf("merge: serialising the contacts' deliveries: %w", err)
	}
	for _, id := range order {
		if _, err := tx.Exec(ctx, `SELECT 1 FROM contacts WHERE id = $1 FOR UPDATE`, id); err != nil {
			return Merge{}, fmt.Errorf("merge: locking contact %s: %w", id, err)
		}
	}

	m := Merge{AbsorbedID: aid, IdentifiersTaken: []contact.IdentifierKind{}, Aliases: []contact.IdentifierKind{},
		AttributesAdded: []string{}, ConsentChanges: []ConsentEvent{}, RunsExiting: []string{}, ExitRequests: []string{}}
	var err error
	if m.Survivor, m.MergedAt, err = mergeRows(ctx, tx, sv, ab, &m); err != nil {
		return Merge{}, err
	}
	if err := moveHistory(ctx, tx, sid, aid, &m.Moved); err != nil {
		return Merge{}, err
	}
	if err := mergeConsents(ctx, tx, sv, ab, m.Survivor, &m); err != nil {
		return Merge{}, err
	}
	if err := exitMergedRuns(ctx, tx, sid, aid, &m); err != nil {
		return Merge{}, err
	}
	return m, nil
}

// mergeRows turns the absorbed contact's row into a tombstone and gives
// the survivor the identifiers, attributes and settings it lacked.
func mergeRows(ctx context.Context, tx pgx.Tx, sv, ab Contact, m *Merge) (Contact, time.Time, error) {
	take := map[contact.IdentifierKind]bool{}
	svIDs := identifiers(sv)
	for kind := range identifiers(ab) {
		if svIDs[kind] == "" {
			take[kind] = true
			m.IdentifiersTaken = append(m.IdentifiersTaken, kind)
		} else {
			m.Aliases = append(m.Aliases, kind)
		}
	}
	slices.Sort(m.IdentifiersTaken)
	slices.Sort(m.Aliases)
	for k := range ab.Attributes {
		if _, ok := sv.Attributes[k]; !ok {
			m.AttributesAdded = append(m.AttributesAdded, k)
		}
	}
	slices.Sort(m.AttributesAdded)

	// The tombstone first: an identifier moves off it before the survivor
	// takes it (unique indexes are checked per statement).
	var mergedAt time.Time
	if err := tx.QueryRow(ctx, `
		UPDATE contacts SET
			external_id = CASE WHEN $3 THEN NULL ELSE external_id END,
			email       = CASE WHEN $4 THEN NULL ELSE email END,
			phone       = CASE WHEN $5 THEN NULL ELSE phone END,
			merged_into = $2, merged_at = now(), updated_at = now()
		WHERE id = $1
		RETURNING merged_at`,
		ab.ID, sv.ID, take[contact.IdentifierExternalID], take[contact.IdentifierEmail], take[contact.IdentifierPhone]).Scan(&mergedAt); err != nil {
		return Contact{}, time.Time{}, fmt.Errorf("merge: marking contact %s merged: %w", ab.ID, err)
	}
	given := func(kind contact.IdentifierKind, v string) string {
		if take[kind] {
			return v
		}
		return ""
	}
	out, err := scanContact(tx.QueryRow(ctx, `
		UPDATE contacts SET
			external_id = COALESCE(external_id, NULLIF($2, '')),
			email       = COALESCE(email, NULLIF($3, '')),
			phone       = COALESCE(phone, NULLIF($4, '')),
			time_zone   = COALESCE(time_zone, NULLIF($5, '')),
			country     = COALESCE(country, NULLIF($6, '')),
			attributes  = $7::jsonb || attributes,
			last_engaged_at = GREATEST(last_engaged_at, (SELECT last_engaged_at FROM contacts WHERE id = $8)),
			created_at  = LEAST(created_at, $9),
			updated_at  = now()
		WHERE id = $1
		RETURNING `+contactColumns,
		sv.ID, given(contact.IdentifierExternalID, ab.ExternalID), given(contact.IdentifierEmail, ab.Email),
		given(contact.IdentifierPhone, ab.Phone), ab.TimeZone, ab.Country, ab.Attributes, ab.ID, ab.CreatedAt))
	if err != nil {
		return Contact{}, time.Time{}, fmt.Errorf("merge: updating survivor %s: %w", sv.ID, err)
	}
	// Each contact was within the limits; both together may not be.
	if aerr := contact.CheckAttributeTotals(out.Attributes); aerr != nil {
		return Contact{}, time.Time{}, aerr
	}
	return out, mergedAt.UTC(), nil
}

// moveHistory moves the absorbed contact's events, ledger, decisions,
// provider events, suppressions (as a union), ended runs and pending event
// deliveries to the survivor.
func moveHistory(ctx context.Context, tx pgx.Tx, sid, aid string, n *MergeCounts) error {
	steps := []struct {
		what  string
		count *int
		sql   string
	}{
		{"events", &n.Events, `UPDATE events SET contact_id = $1 WHERE contact_id = $2`},
		{"messages", &n.Messages, `UPDATE messages SET contact_id = $1, updated_at = now() WHERE contact_id = $2`},
		{"decisions", &n.Decisions, `UPDATE decisions SET contact_id = $1 WHERE contact_id = $2`},
		{"provider events", &n.ProviderEvents, `UPDATE provider_events SET contact_id = $1 WHERE contact_id = $2`},
		{"send choices", nil, `UPDATE send_choices SET contact_id = $1 WHERE contact_id = $2`},
		// A suppression both have in force stays the survivor's, for as
		// long as the longer of the two (no expiry is the longest) ...
		{"suppressions", nil, `
			UPDATE suppressions s SET expires_at = CASE WHEN s.expires_at IS NULL OR a.expires_at IS NULL THEN NULL
				ELSE GREATEST(s.expires_at, a.expires_at) END
			FROM suppressions a
			WHERE s.contact_id = $1 AND a.contact_id = $2 AND s.lifted_at IS NULL AND a.lifted_at IS NULL
			  AND s.reason = a.reason AND COALESCE(s.journey_id, '') = COALESCE(a.journey_id, '')
			  AND COALESCE(s.channel, '') = COALESCE(a.channel, '')`},
		// ... and the absorbed contact's copy is lifted, kept as history.
		{"suppressions", nil, `
			UPDATE suppressions a SET lifted_at = now(), lifted_by = '` + MergeSource + `' || $1
			WHERE a.contact_id = $2 AND a.lifted_at IS NULL AND EXISTS (
				SELECT 1 FROM suppressions s
				WHERE s.contact_id = $1 AND s.lifted_at IS NULL AND s.reason = a.reason
				  AND COALESCE(s.journey_id, '') = COALESCE(a.journey_id, '') AND COALESCE(s.channel, '') = COALESCE(a.channel, ''))`},
		{"suppressions", &n.Suppressions, `UPDATE suppressions SET contact_id = $1 WHERE contact_id = $2`},
		// Ended runs count for re-entry rules; active ones stay with the
		// absorbed contact until they end (exitMergedRuns), since one of
		// the same journey may be running for the survivor.
		{"exit requests", nil, `
			UPDATE exit_requests x SET contact_id = $1
			FROM enrollments e
			WHERE x.enrollment_id = e.id AND e.contact_id = $2 AND e.status <> 'active'`},
		{"enrollments", &n.Enrollments, `UPDATE enrollments SET contact_id = $1 WHERE contact_id = $2 AND status <> 'active'`},
		// An event stored just before the merge still reaches the person's
		// journeys: its pending deliveries (its event has moved) go with it.
		{"deliveries", &n.Deliveries, `
			UPDATE deliveries SET contact_id = $1
			WHERE contact_id = $2 AND done_at IS NULL AND kind IN ('signal', 'start')`},
	}
	for _, st := range steps {
		tag, err := tx.Exec(ctx, st.sql, sid, aid)
		if err != nil {
			return fmt.Errorf("merge: moving %s of contact %s to %s: %w", st.what, aid, sid, err)
		}
		if st.count != nil {
			*st.count = int(tag.RowsAffected())
		}
	}
	return nil
}

// mergeConsents records, on the survivor, each consent the merge makes
// more restrictive (model.MergeConsent), with its delivery to the
// survivor's running journeys.
func mergeConsents(ctx context.Context, tx pgx.Tx, sv, ab, merged Contact, m *Merge) error {
	read := func(id string) (map[[2]string]Consent, error) {
		list, err := queryAll(ctx, tx, "merge: reading consents of contact "+id, scanConsent,
			`SELECT `+consentColumns+` FROM consents WHERE contact_id = $1 ORDER BY channel, subscription`, id)
		out := map[[2]string]Consent{}
		for _, c := range list {
			out[[2]string{string(c.Channel), c.Subscription}] = c
		}
		return out, err
	}
	svc, err := read(sv.ID)
	if err != nil {
		return err
	}
	abc, err := read(ab.ID)
	if err != nil {
		return err
	}
	keys := make([][2]string, 0, len(abc))
	for k := range abc {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b [2]string) int {
		return cmp.Or(cmp.Compare(a[0], b[0]), cmp.Compare(a[1], b[1]))
	})
	for _, k := range keys {
		cur, had := svc[k]
		ch := journey.Channel(k[0])
		status := model.MergeConsent(cur.Status, abc[k].Status, sameAddress(ch, merged, ab))
		if !status.Recordable() || (had && status == cur.Status) {
			continue
		}
		// Now, or just after the survivor's current record if a client
		// dated it a little ahead: the merge's record must become current.
		at := time.Now()
		if had && cur.OccurredAt.After(at) {
			at = cur.OccurredAt
		}
		ev, now, err := recordConsentChange(ctx, tx, ConsentChange{
			ContactID: sv.ID, Channel: ch, Subscription: k[1], Status: status, Source: MergeSource + ab.ID, OccurredAt: at,
		})
		if err != nil {
			return err
		}
		n, err := insertConsentDelivery(ctx, tx, ev, now)
		if err != nil {
			return err
		}
		m.ConsentChanges = append(m.ConsentChanges, ev)
		m.PendingDeliveries += n
	}
	return nil
}

// sameAddress says whether the absorbed contact's consent for ch was given
// for the address the survivor now reaches on ch: the survivor took it, or
// had the same. Consent to ads is the person's (audiences match them by
// every identifier), so it always carries.
func sameAddress(ch journey.Channel, merged, ab Contact) bool {
	switch ch {
	case journey.ChannelEmail:
		return ab.Email != "" && merged.Email == ab.Email
	case journey.ChannelSMS:
		return ab.Phone != "" && merged.Phone == ab.Phone
	}
	return true
}

// exitMergedRuns stores, for each active run of the absorbed contact, an
// exit request with the code merged and its 'exit' delivery, and gives the
// absorbed contact a do_not_contact suppression so that nothing is sent
// to it while its runs end.
func exitMergedRuns(ctx context.Context, tx pgx.Tx, sid, aid string, m *Merge) error {
	type run struct{ enrollment, workflow string }
	rows, err := tx.Query(ctx, `SELECT id, workflow_id FROM enrollments WHERE contact_id = $1 AND status = 'active' ORDER BY id`, aid)
	if err != nil {
		return fmt.Errorf("merge: reading the runs of contact %s: %w", aid, err)
	}
	runs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (run, error) {
		var x run
		return x, r.Scan(&x.enrollment, &x.workflow)
	})
	if err != nil {
		return fmt.Errorf("merge: reading the runs of contact %s: %w", aid, err)
	}
	for _, r := range runs {
		id := newID("x_")
		// The words name the survivor by id; they stay in PostgreSQL, and
		// the run is told the code and this request's id.
		if _, err := tx.Exec(ctx, `
			INSERT INTO exit_requests (id, enrollment_id, contact_id, code, reason, requested_by)
			VALUES ($1, $2, $3, $4, $5, 'merge')`, id, r.enrollment, aid, model.ExitMerged, "merged into contact "+sid); err != nil {
			return fmt.Errorf("merge: exit request for enrollment %s: %w", r.enrollment, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO deliveries (contact_id, kind, exit_request_id, workflow_id) VALUES ($1, 'exit', $2, $3)`,
			aid, id, r.workflow); err != nil {
			return fmt.Errorf("merge: exit request %s: storing its delivery: %w", id, err)
		}
		m.RunsExiting = append(m.RunsExiting, r.workflow)
		m.ExitRequests = append(m.ExitRequests, id)
		m.PendingDeliveries++
	}
	if _, err := tx.Exec(ctx, `
		INSERT INTO suppressions (id, contact_id, reason, source, note) VALUES ($1, $2, $3, 'merge', $4)`,
		newID("sup_"), aid, model.SuppressDoNotContact, "merged into contact "+sid); err != nil {
		return fmt.Errorf("merge: suppressing contact %s: %w", aid, err)
	}
	return nil
}

package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tutti-dev/tutti/internal/audience"
)

// Audience is one list on one ad platform.
type Audience struct {
	ID          string               `json:"id"`
	Name        string               `json:"name"`
	Destination audience.Destination `json:"destination"`
	ExternalID  string               `json:"external_id"`
	// SegmentID, when set, is the segment the audience follows.
	SegmentID string    `json:"segment_id,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// AudienceCounts are an audience's members by state.
type AudienceCounts struct {
	// Members were added and not removed since.
	Members int `json:"members"`
	// PendingAdd and PendingRemove wait for the next sync.
	PendingAdd    int `json:"pending_add"`
	PendingRemove int `json:"pending_remove"`
}

// AudienceMember is one contact's row in an audience.
type AudienceMember struct {
	AudienceID string          `json:"audience_id"`
	ContactID  string          `json:"contact_id"`
	Desired    audience.Action `json:"desired"`
	DesiredBy  string          `json:"desired_by"`
	DesiredAt  time.Time       `json:"desired_at"`
	// Synced is what the platform was last told ("" if nothing yet).
	Synced   audience.Action `json:"synced,omitempty"`
	SyncedAt *time.Time      `json:"synced_at,omitempty"`
	// LastResult is the last batch's result: applied or rejected:<why>.
	LastResult string `json:"last_result,omitempty"`
}

// AudienceLedgerEntry is one add or remove, with its batch and result.
type AudienceLedgerEntry struct {
	ID         int64           `json:"id"`
	AudienceID string          `json:"audience_id"`
	ContactID  string          `json:"contact_id"`
	Action     audience.Action `json:"action"`
	BatchID    string          `json:"batch_id"`
	Result     string          `json:"result"`
	At         time.Time       `json:"at"`
}

const audienceColumns = `id, name, destination, external_id, COALESCE(segment_id, ''), created_at, updated_at`

func scanAudience(r rowScanner) (Audience, error) {
	var a Audience
	err := r.Scan(&a.ID, &a.Name, &a.Destination, &a.ExternalID, &a.SegmentID, &a.CreatedAt, &a.UpdatedAt)
	return a, err
}

// DefineAudience creates or updates an audience. It reports whether it was new.
func (s *Store) DefineAudience(ctx context.Context, a Audience) (Audience, bool, error) {
	var created bool
	var out Audience
	err := s.pool.QueryRow(ctx, `
		INSERT INTO audiences (id, name, destination, external_id, segment_id) VALUES ($1, $2, $3, $4, NULLIF($5, ''))
		ON CONFLICT (id) DO UPDATE SET name = $2, destination = $3, external_id = $4, segment_id = NULLIF($5, ''), updated_at = now()
		RETURNING (xmax = 0), `+audienceColumns, a.ID, a.Name, a.Destination, a.ExternalID, a.SegmentID).
		Scan(&created, &out.ID, &out.Name, &out.Destination, &out.ExternalID, &out.SegmentID, &out.CreatedAt, &out.UpdatedAt)
	if _, fk := foreignKeyViolation(err); fk {
		return Audience{}, false, fmt.Errorf("define audience %s: segment %s: %w", a.ID, a.SegmentID, ErrNotFound)
	}
	if err != nil {
		return Audience{}, false, fmt.Errorf("define audience %s: %w", a.ID, err)
	}
	return out, created, nil
}

// Audience returns one audience.
func (s *Store) Audience(ctx context.Context, id string) (Audience, error) {
	return queryOne(ctx, s.pool, "audience "+id, scanAudience, `SELECT `+audienceColumns+` FROM audiences WHERE id = $1`, id)
}

// Audiences lists every audience by id.
func (s *Store) Audiences(ctx context.Context) ([]Audience, error) {
	return queryAll(ctx, s.pool, "audiences", scanAudience, `SELECT `+audienceColumns+` FROM audiences ORDER BY id`)
}

// AudienceCounts counts an audience's members by state.
func (s *Store) AudienceCounts(ctx context.Context, id string) (AudienceCounts, error) {
	var c AudienceCounts
	err := s.pool.QueryRow(ctx, `
		SELECT count(*) FILTER (WHERE synced = 'add' AND last_result = 'applied'),
		       count(*) FILTER (WHERE desired = 'add' AND synced <> 'add'),
		       count(*) FILTER (WHERE desired = 'remove' AND synced <> 'remove')
		FROM audience_members WHERE audience_id = $1`, id).Scan(&c.Members, &c.PendingAdd, &c.PendingRemove)
	if err != nil {
		return AudienceCounts{}, fmt.Errorf("counting audience %s: %w", id, err)
	}
	return c, nil
}

const audienceMemberColumns = `audience_id, contact_id, desired, desired_by, desired_at, synced, synced_at, last_result`

func scanAudienceMember(r rowScanner) (AudienceMember, error) {
	var m AudienceMember
	err := r.Scan(&m.AudienceID, &m.ContactID, &m.Desired, &m.DesiredBy, &m.DesiredAt, &m.Synced, &m.SyncedAt, &m.LastResult)
	return m, err
}

// AudienceMembers lists an audience's rows after the contact id after, by
// contact id, at most limit.
func (s *Store) AudienceMembers(ctx context.Context, id, after string, limit int) ([]AudienceMember, error) {
	return queryAll(ctx, s.pool, "members of audience "+id, scanAudienceMember, `
		SELECT `+audienceMemberColumns+` FROM audience_members
		WHERE audience_id = $1 AND contact_id > $2 ORDER BY contact_id LIMIT $3`, id, after, listLimit(limit))
}

// ContactAudiences lists a contact's audience rows and its audience ledger,
// newest first.
func (s *Store) ContactAudiences(ctx context.Context, contactID string, limit int) ([]AudienceMember, []AudienceLedgerEntry, error) {
	ms, err := queryAll(ctx, s.pool, "audiences of contact "+contactID, scanAudienceMember, `
		SELECT `+audienceMemberColumns+` FROM audience_members WHERE contact_id = $1 ORDER BY audience_id`, contactID)
	if err != nil {
		return nil, nil, err
	}
	ls, err := queryAll(ctx, s.pool, "audience ledger of contact "+contactID, func(r rowScanner) (AudienceLedgerEntry, error) {
		var e AudienceLedgerEntry
		err := r.Scan(&e.ID, &e.AudienceID, &e.ContactID, &e.Action, &e.BatchID, &e.Result, &e.At)
		return e, err
	}, `SELECT id, audience_id, contact_id, action, batch_id, result, at FROM audience_ledger
		WHERE contact_id = $1 ORDER BY id DESC LIMIT $2`, contactID, listLimit(limit))
	return ms, ls, err
}

// adsBlock is why a contact may not be added to an audience now, or ”
// ($1 the contact): ads consent not granted, or a suppression in force for
// every channel or for ads. Journey-scoped suppressions do not hold an
// audience, which outlives any one journey.
const adsBlock = `
	CASE
	WHEN NOT EXISTS (SELECT 1 FROM consents c WHERE c.contact_id = %[1]s AND c.channel = 'ads' AND c.subscription = '' AND c.status = 'granted')
		THEN 'no_ads_consent'
	ELSE (SELECT 'suppressed:' || s.reason FROM suppressions s
		WHERE s.contact_id = %[1]s AND s.lifted_at IS NULL AND (s.expires_at IS NULL OR s.expires_at > now())
		  AND s.journey_id IS NULL AND (s.channel IS NULL OR s.channel = 'ads')
		ORDER BY s.created_at LIMIT 1)
	END`

// AdsBlock says why the contact may not be added to an audience now
// ("no_ads_consent", "suppressed:<reason>"), or "" if it may.
func (s *Store) AdsBlock(ctx context.Context, contactID string) (string, error) {
	var why *string
	if err := s.pool.QueryRow(ctx, `SELECT `+fmt.Sprintf(adsBlock, "$1"), contactID).Scan(&why); err != nil {
		return "", fmt.Errorf("ads eligibility of contact %s: %w", contactID, err)
	}
	if why == nil {
		return "", nil
	}
	return *why, nil
}

// RequestAudienceChange asks for the contact to be added to or removed
// from the audience; by says why ("journey:welcome/hot_ads"). An add the
// contact may not have (no ads consent, a suppression) is not queued: it
// is recorded in the ledger as skipped, and the answer says why. A remove
// is always queued (removing someone who is not there is harmless). Asking
// for what is already asked (pending or done) changes nothing. It returns
// the result: "queued", "already" or "skipped:<why>".
func (s *Store) RequestAudienceChange(ctx context.Context, audienceID, contactID string, action audience.Action, by string) (string, error) {
	var result string
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT 1 FROM contacts WHERE id = $1 FOR KEY SHARE`, contactID); err != nil {
			return err
		}
		var block *string
		if action == audience.Add {
			if err := tx.QueryRow(ctx, `SELECT `+fmt.Sprintf(adsBlock, "$1"), contactID).Scan(&block); err != nil {
				return err
			}
		}
		if block != nil && *block != "" {
			result = "skipped:" + *block
			_, err := tx.Exec(ctx, `INSERT INTO audience_ledger (audience_id, contact_id, action, batch_id, result, desired_by) VALUES ($1, $2, $3, '', $4, $5)`,
				audienceID, contactID, action, result, by)
			return err
		}
		var changed bool
		err := tx.QueryRow(ctx, `
			INSERT INTO audience_members (audience_id, contact_id, desired, desired_by) VALUES ($1, $2, $3, $4)
			ON CONFLICT (audience_id, contact_id) DO UPDATE SET desired = $3, desired_by = $4, desired_at = now(),
				-- A member the platform rejected is tried again when asked again.
				synced = CASE WHEN audience_members.last_result LIKE 'rejected:%' THEN '' ELSE audience_members.synced END,
				last_result = CASE WHEN audience_members.last_result LIKE 'rejected:%' THEN '' ELSE audience_members.last_result END
				WHERE audience_members.desired <> $3 OR audience_members.last_result LIKE 'rejected:%'
			RETURNING true`, audienceID, contactID, action, by).Scan(&changed)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			result = "already"
			return nil
		case err != nil:
			return err
		}
		result = "queued"
		return nil
	})
	if _, fk := foreignKeyViolation(err); fk {
		return "", fmt.Errorf("audience change: audience %s or contact %s: %w", audienceID, contactID, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("audience change for contact %s in %s: %w", contactID, audienceID, err)
	}
	return result, nil
}

// PendingAudienceChange is one member to send to the platform.
type PendingAudienceChange struct {
	audience.Identity
	Action audience.Action
}

// FollowSegment brings an audience that follows a segment in step with
// it: the segment's current members are wanted in the audience
// (desired_by "segment:<id>"), and those the segment added who have left
// it since are not. Who may be added is RevokeIneligible's and the pass's
// to check, as for any add. It returns how many rows it changed.
func (s *Store) FollowSegment(ctx context.Context, audienceID, segmentID string) (added, removed int, err error) {
	by := "segment:" + segmentID
	tag, err := s.pool.Exec(ctx, `
		INSERT INTO audience_members (audience_id, contact_id, desired, desired_by)
		SELECT $1, m.contact_id, 'add', $3 FROM segment_memberships m
		WHERE m.segment_id = $2 AND m.exited_at IS NULL AND `+fmt.Sprintf(adsBlock, "m.contact_id")+` IS NULL
		ON CONFLICT (audience_id, contact_id) DO UPDATE SET desired = 'add', desired_by = $3, desired_at = now()
			WHERE audience_members.desired <> 'add'`, audienceID, segmentID, by)
	if err != nil {
		return 0, 0, fmt.Errorf("following segment %s in %s: %w", segmentID, audienceID, err)
	}
	added = int(tag.RowsAffected())
	tag, err = s.pool.Exec(ctx, `
		UPDATE audience_members a SET desired = 'remove', desired_by = 'left_segment:' || $2, desired_at = now()
		WHERE a.audience_id = $1 AND a.desired = 'add' AND a.desired_by = $3
		  AND NOT EXISTS (SELECT 1 FROM segment_memberships m WHERE m.segment_id = $2 AND m.contact_id = a.contact_id AND m.exited_at IS NULL)`,
		audienceID, segmentID, by)
	if err != nil {
		return 0, 0, fmt.Errorf("following segment %s in %s: %w", segmentID, audienceID, err)
	}
	return added, int(tag.RowsAffected()), nil
}

// RevokeIneligible queues the removal of every member of the audience who
// may no longer be in it (ads consent revoked, a suppression added): the
// sync calls it before every pass, so a revoked consent or a suppression
// takes the contact out within one sync interval, whatever path recorded
// it. It returns how many removals it queued.
func (s *Store) RevokeIneligible(ctx context.Context, audienceID string) (int, error) {
	tag, err := s.pool.Exec(ctx, `
		UPDATE audience_members m SET desired = 'remove', desired_by = b.why, desired_at = now()
		FROM (SELECT contact_id, `+fmt.Sprintf(adsBlock, "am.contact_id")+` AS why
		      FROM audience_members am WHERE am.audience_id = $1 AND am.desired = 'add') AS b
		WHERE m.audience_id = $1 AND m.contact_id = b.contact_id AND b.why IS NOT NULL AND b.why <> ''`, audienceID)
	if err != nil {
		return 0, fmt.Errorf("revoking ineligible members of %s: %w", audienceID, err)
	}
	return int(tag.RowsAffected()), nil
}

// PendingAudienceChanges returns up to limit pending changes of one action,
// with the contacts' identifiers (read here, in the activity: they never
// go into workflow history). Adds whose contact may no longer be added are
// left out (RevokeIneligible turns them into removals first).
func (s *Store) PendingAudienceChanges(ctx context.Context, audienceID string, action audience.Action, limit int) ([]PendingAudienceChange, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT m.contact_id, COALESCE(c.email, ''), COALESCE(c.phone, '') FROM audience_members m
		JOIN contacts c ON c.id = m.contact_id
		WHERE m.audience_id = $1 AND m.desired = $2 AND m.desired <> m.synced
		ORDER BY m.desired_at, m.contact_id LIMIT $3`, audienceID, action, limit)
	if err != nil {
		return nil, fmt.Errorf("pending changes of %s: %w", audienceID, err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (PendingAudienceChange, error) {
		p := PendingAudienceChange{Action: action}
		err := r.Scan(&p.ContactID, &p.Email, &p.Phone)
		return p, err
	})
}

// AudienceOutcome is what one batch did to one member: "applied" or
// "rejected:<why>".
type AudienceOutcome struct {
	ContactID string
	Result    string
}

// RecordAudienceBatch records a batch the platform answered: each member's
// ledger entry, and, for those applied, the synced state, unless the
// member's desired state changed since the batch was read (then it stays
// pending). A rejected member is marked synced too (as what it was asked):
// it is not retried until it is asked for again.
func (s *Store) RecordAudienceBatch(ctx context.Context, audienceID, batchID string, action audience.Action, outcomes []AudienceOutcome) error {
	if len(outcomes) == 0 {
		return nil
	}
	ids := make([]string, len(outcomes))
	results := make([]string, len(outcomes))
	for i, o := range outcomes {
		ids[i], results[i] = o.ContactID, o.Result
	}
	return s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `
			INSERT INTO audience_ledger (audience_id, contact_id, action, batch_id, result, desired_by)
			SELECT $1, o.contact_id, $2, $3, o.result, COALESCE(m.desired_by, '')
			FROM unnest($4::text[], $5::text[]) AS o(contact_id, result)
			-- Who asked for it (attribution credits a journey's audience
			-- step with the membership), unless asked otherwise since.
			LEFT JOIN audience_members m ON m.audience_id = $1 AND m.contact_id = o.contact_id AND m.desired = $2`,
			audienceID, action, batchID, ids, results); err != nil {
			return fmt.Errorf("recording batch %s of %s: %w", batchID, audienceID, err)
		}
		if _, err := tx.Exec(ctx, `
			UPDATE audience_members m SET synced = $2, synced_at = now(), last_result = o.result
			FROM unnest($3::text[], $4::text[]) AS o(contact_id, result)
			WHERE m.audience_id = $1 AND m.contact_id = o.contact_id AND m.desired = $2`, audienceID, action, ids, results); err != nil {
			return fmt.Errorf("recording batch %s of %s: %w", batchID, audienceID, err)
		}
		return nil
	})
}

// keepAudienceRemovals keeps, for every audience the erased contact c may
// be in on the platform (asked for or sent), the hashes its removal needs
// (audience_erasures), in the erasure's transaction.
func keepAudienceRemovals(ctx context.Context, tx pgx.Tx, erasureID string, c Contact) error {
	rows, err := tx.Query(ctx, `
		SELECT a.id, a.destination FROM audience_members m JOIN audiences a ON a.id = m.audience_id
		WHERE m.contact_id = $1 AND (m.desired = 'add' OR m.synced = 'add')`, c.ID)
	if err != nil {
		return err
	}
	type aud struct {
		id   string
		dest audience.Destination
	}
	auds, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (aud, error) {
		var a aud
		err := r.Scan(&a.id, &a.dest)
		return a, err
	})
	if err != nil {
		return err
	}
	for _, a := range auds {
		members, _ := audience.Prepare(a.dest, []audience.Identity{{ContactID: c.ID, Email: c.Email, Phone: c.Phone}}, nil)
		for _, m := range members {
			if _, err := tx.Exec(ctx, `INSERT INTO audience_erasures (audience_id, erasure_id, email_sha256, phone_sha256) VALUES ($1, $2, $3, $4)`,
				a.id, erasureID, digestOrNil(m.Email), digestOrNil(m.Phone)); err != nil {
				return err
			}
		}
	}
	return nil
}

func digestOrNil(d audience.Digest) []byte {
	if d.IsZero() {
		return nil
	}
	return d[:]
}

// AudienceErasure is an erased contact's removal still to send.
type AudienceErasure struct {
	ID     int64
	Member audience.Member
}

// PendingAudienceErasures returns up to limit removals of erased contacts
// still to send to the audience's platform.
func (s *Store) PendingAudienceErasures(ctx context.Context, audienceID string, limit int) ([]AudienceErasure, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, email_sha256, phone_sha256 FROM audience_erasures WHERE audience_id = $1 ORDER BY id LIMIT $2`,
		audienceID, limit)
	if err != nil {
		return nil, fmt.Errorf("erased members of %s: %w", audienceID, err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (AudienceErasure, error) {
		var (
			e            AudienceErasure
			email, phone []byte
		)
		if err := r.Scan(&e.ID, &email, &phone); err != nil {
			return e, err
		}
		copy(e.Member.Email[:], email)
		copy(e.Member.Phone[:], phone)
		e.Member.ContactID = fmt.Sprintf("erased-%d", e.ID)
		return e, nil
	})
}

// DoneAudienceErasures deletes removals the platform took: the last of
// the erased contact's hashes go with them.
func (s *Store) DoneAudienceErasures(ctx context.Context, ids []int64) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM audience_erasures WHERE id = ANY($1::bigint[])`, ids); err != nil {
		return fmt.Errorf("removing sent erasures: %w", err)
	}
	return nil
}

// AudienceMembersApplied is every contact the platform was last told to
// add to the audience and took, with their identifiers (read in the
// activity, never in Temporal): what a full sync sends again.
func (s *Store) AudienceMembersApplied(ctx context.Context, audienceID string) ([]audience.Identity, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT m.contact_id, COALESCE(c.email, ''), COALESCE(c.phone, '') FROM audience_members m
		JOIN contacts c ON c.id = m.contact_id
		WHERE m.audience_id = $1 AND m.desired = 'add' AND m.synced = 'add' AND m.last_result = 'applied'
		ORDER BY m.contact_id`, audienceID)
	if err != nil {
		return nil, fmt.Errorf("members of %s: %w", audienceID, err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (audience.Identity, error) {
		var id audience.Identity
		err := r.Scan(&id.ContactID, &id.Email, &id.Phone)
		return id, err
	})
}

package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/policy"
)

// GateInput is one send to put through the gate.
type GateInput struct {
	// Message is the ledger row to reserve: IdempotencyKey, ContactID,
	// JourneyID, JourneyVersion, StepID, Channel (the requested channel),
	// Class and Provider (for the requested channel) are required.
	Message Message
	// Providers names the provider per channel, for a fallback decision.
	Providers map[journey.Channel]string
	// AbandonmentEventID is set for sends of abandonment journeys.
	AbandonmentEventID string
	// Now is the decision time; zero means time.Now().
	Now time.Time
	// Lookback bounds the recent sends read for caps and cooldowns: at
	// least the longest cap window and cooldown in force.
	Lookback time.Duration
}

// GateState is what the gate read about the contact, under its lock.
type GateState struct {
	Contact policy.ContactState
	// AbandonmentSMSSent: an SMS of this journey is already sent or reserved
	// for GateInput.AbandonmentEventID.
	AbandonmentSMSSent bool
}

// GateResult is what the gate decided and wrote.
type GateResult struct {
	// Decided is false when the key was already settled (Claim ClaimDone or
	// ClaimAmbiguous) and no decision was taken.
	Decided    bool
	Decision   policy.Decision
	DecisionID int64
	// Message is the reserved (sending) or skipped row; zero for a deferral
	// of a key with no row.
	Message Message
	// Claim says what to do: ClaimNew or ClaimRetry mean the row is reserved
	// as sending and the caller sends now on Message.Channel; ClaimDone and
	// ClaimAmbiguous mean do not send (see ClaimSend).
	Claim ClaimOutcome
}

// Send says whether the caller should make the provider call now.
func (r GateResult) Send() bool {
	return r.Decided && r.Decision.Allowed() && (r.Claim == ClaimNew || r.Claim == ClaimRetry)
}

// countedStatuses are ledger statuses that count against caps and
// cooldowns: everything that went out or may have, including reservations
// still in flight. Skipped, failed and dropped messages never reached the
// contact.
const notCountedStatuses = `('skipped', 'failed', 'dropped')`

// Gate takes the one policy decision for a send and records it atomically:
// in one transaction it locks the contact row, reads the contact's consents,
// suppressions and recent sends, calls decide, and writes the decision and
// (for allow or fallback) the ledger row as sending — the reservation that
// later decisions count. Two sends to one contact therefore decide one after
// the other, and a cap cannot be passed twice. Decisions for different
// contacts do not wait for each other.
//
// A key that already has a settled row is returned as is (ClaimDone); a row
// left sending by a crashed attempt becomes unknown and is never resent
// (ClaimAmbiguous); a row left retrying is decided again — consent may have
// been revoked since — and, if still allowed, reclaimed (ClaimRetry).
func (s *Store) Gate(ctx context.Context, in GateInput, decide func(GateState) policy.Decision) (GateResult, error) {
	m := in.Message
	if err := checkNewMessage(m); err != nil {
		return GateResult{}, fmt.Errorf("gate: %w", err)
	}
	now := in.Now
	if now.IsZero() {
		now = time.Now()
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return GateResult{}, fmt.Errorf("gate for contact %s: acquiring a connection: %w", m.ContactID, err)
	}
	defer func() {
		// Any return before COMMIT (an error, a panic in decide) leaves the
		// transaction open: roll it back. If that fails too, Release closes
		// the connection instead of returning it to the pool.
		if conn.Conn().PgConn().TxStatus() != 'I' {
			_, _ = conn.Exec(ctx, "rollback")
		}
		conn.Release()
	}()

	// Two round trips in all. The first is BEGIN, the lock and every read;
	// statements in a batch run in order, so the reads see what the
	// previous holder of the lock committed.
	b := &pgx.Batch{}
	b.Queue("begin")
	b.Queue(`SELECT COALESCE(time_zone, ''), COALESCE(phone, ''), COALESCE(country, ''), email IS NULL, last_engaged_at, created_at
		FROM contacts WHERE id = $1 FOR NO KEY UPDATE`, m.ContactID)
	b.Queue(`SELECT `+messageColumns+` FROM messages WHERE idempotency_key = $1 FOR UPDATE`, m.IdempotencyKey)
	b.Queue(`SELECT channel, subscription, status, consent_event_id, occurred_at FROM consents WHERE contact_id = $1`, m.ContactID)
	b.Queue(`SELECT id, reason, COALESCE(journey_id, ''), COALESCE(channel, ''), expires_at FROM suppressions
		WHERE contact_id = $1 AND lifted_at IS NULL AND (expires_at IS NULL OR expires_at > $2)`, m.ContactID, now)
	b.Queue(`SELECT channel, class, created_at FROM messages
		WHERE contact_id = $1 AND created_at > $2 AND idempotency_key <> $3 AND status NOT IN `+notCountedStatuses,
		m.ContactID, now.Add(-in.Lookback), m.IdempotencyKey)
	// Without an abandonment event there is nothing to look for: the ledger
	// stores no empty abandonment_event_id (NULLIF), so the answer is false.
	abandonment := in.AbandonmentEventID != ""
	if abandonment {
		b.Queue(`SELECT EXISTS (SELECT 1 FROM messages WHERE contact_id = $1 AND journey_id = $2 AND channel = 'sms'
			AND abandonment_event_id = $3 AND idempotency_key <> $4 AND status NOT IN `+notCountedStatuses+`)`,
			m.ContactID, m.JourneyID, in.AbandonmentEventID, m.IdempotencyKey)
	}
	br := conn.SendBatch(ctx, b)
	var (
		st       GateState
		existing Message
		hasRow   bool
	)
	if _, err = br.Exec(); err != nil {
		err = fmt.Errorf("gate for contact %s: beginning transaction: %w", m.ContactID, err)
	} else {
		st, existing, hasRow, err = readGateState(br, m.ContactID, abandonment)
	}
	if cerr := br.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("gate for contact %s: %w", m.ContactID, cerr)
	}
	if err != nil {
		return GateResult{}, err
	}

	// The second round trip: the write, if any, and COMMIT. If the write
	// fails the COMMIT never runs (the pipeline stops at the error) and the
	// deferred rollback ends the transaction.
	var out GateResult
	fin := &pgx.Batch{}
	switch {
	case !hasRow, existing.Status == MessageRetrying:
		// A new key, or a retrying row: decided (again) now.
		d := decide(st)
		out.Decided, out.Decision = true, d
		if err := queueDecision(fin, in, now, d, existing, hasRow, &out); err != nil {
			return GateResult{}, err
		}
	case existing.Status == MessageSending:
		fin.Queue(`UPDATE messages SET status = 'unknown', status_reason = $2, updated_at = now()
			WHERE id = $1 RETURNING `+messageColumns, existing.ID, ReasonInterrupted).QueryRow(func(r pgx.Row) error {
			row, err := scanMessage(r)
			if err != nil {
				return fmt.Errorf("gate %s: marking interrupted attempt: %w", m.IdempotencyKey, err)
			}
			out = GateResult{Message: row, Claim: ClaimAmbiguous}
			return nil
		})
	default:
		out = GateResult{Message: existing, Claim: ClaimDone}
	}
	committed := false
	fin.Queue("commit").Fn = func(br pgx.BatchResults) error {
		tag, err := br.Exec()
		if err == nil && tag.String() != "COMMIT" {
			err = pgx.ErrTxCommitRollback // the transaction had failed: COMMIT rolled it back
		}
		if err != nil {
			return fmt.Errorf("gate %s: committing transaction: %w", m.IdempotencyKey, err)
		}
		committed = true
		return nil
	}
	// Close runs the callbacks in order and returns the first error, which
	// they have described (every statement has one), unless the connection
	// failed after COMMIT's result arrived.
	if err := conn.SendBatch(ctx, fin).Close(); err != nil {
		if committed {
			err = fmt.Errorf("gate %s: after commit: %w", m.IdempotencyKey, err)
		}
		return GateResult{}, err
	}
	return out, nil
}

func readGateState(br pgx.BatchResults, contactID string, abandonment bool) (GateState, Message, bool, error) {
	var (
		st      GateState
		engaged *time.Time
	)
	c := &st.Contact
	err := br.QueryRow().Scan(&c.TimeZone, &c.Phone, &c.Country, &c.NoEmailAddress, &engaged, &c.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return st, Message{}, false, fmt.Errorf("gate: contact %s: %w", contactID, ErrNotFound)
	}
	if err != nil {
		return st, Message{}, false, fmt.Errorf("gate: locking contact %s: %w", contactID, err)
	}
	if engaged != nil {
		c.LastEngagedAt = *engaged
	}

	existing, err := scanMessage(br.QueryRow())
	hasRow := err == nil
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return st, Message{}, false, fmt.Errorf("gate: reading ledger row: %w", err)
	}

	rows, err := br.Query()
	if err != nil {
		return st, Message{}, false, fmt.Errorf("gate: reading consents: %w", err)
	}
	c.Consents, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (policy.ConsentRecord, error) {
		var rec policy.ConsentRecord
		var status string
		err := r.Scan(&rec.Channel, &rec.Subscription, &status, &rec.ConsentEventID, &rec.At)
		rec.Status = policy.ConsentStatus(status)
		return rec, err
	})
	if err != nil {
		return st, Message{}, false, fmt.Errorf("gate: reading consents: %w", err)
	}

	rows, err = br.Query()
	if err != nil {
		return st, Message{}, false, fmt.Errorf("gate: reading suppressions: %w", err)
	}
	c.Suppressions, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (policy.Suppression, error) {
		var sp policy.Suppression
		var reason, channel string
		var expires *time.Time
		err := r.Scan(&sp.ID, &reason, &sp.JourneyID, &channel, &expires)
		sp.Reason, sp.Channel = policy.SuppressionReason(reason), journey.Channel(channel)
		if expires != nil {
			sp.ExpiresAt = *expires
		}
		return sp, err
	})
	if err != nil {
		return st, Message{}, false, fmt.Errorf("gate: reading suppressions: %w", err)
	}

	rows, err = br.Query()
	if err != nil {
		return st, Message{}, false, fmt.Errorf("gate: reading recent sends: %w", err)
	}
	c.RecentSends, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (policy.SentMessage, error) {
		var sm policy.SentMessage
		var class string
		err := r.Scan(&sm.Channel, &class, &sm.At)
		sm.Class = journey.MessageClass(class)
		return sm, err
	})
	if err != nil {
		return st, Message{}, false, fmt.Errorf("gate: reading recent sends: %w", err)
	}

	if abandonment {
		if err := br.QueryRow().Scan(&st.AbandonmentSMSSent); err != nil {
			return st, Message{}, false, fmt.Errorf("gate: reading abandonment sends: %w", err)
		}
	}
	return st, existing, hasRow, nil
}

// The gate's write statements, built once. insertDecision takes $1-$15;
// the message statements add $16 message id, $17 status, $18 status reason,
// $19 consent event id, $20 channel, $21 provider, $22 abandonment event id.
const insertDecision = `INSERT INTO decisions (idempotency_key, contact_id, journey_id, journey_version, step_id,
		channel, class, outcome, decided_channel, defer_until, reasons, checks, consent_event_id, message_id, decided_at)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, NULLIF($14, ''), $15) RETURNING id`

const insertDecisionAndMessage = `
	WITH d AS (` + insertDecision + `)
	INSERT INTO messages (id, idempotency_key, contact_id, journey_id, journey_version, step_id, channel, class,
		provider, status, status_reason, consent_event_id, attempts, abandonment_event_id, decision_id, created_at)
	SELECT $16, $1, $2, $3, $4, $5, $20, $7, $21, $17, NULLIF($18, ''), $19,
		CASE WHEN $17 = 'sending' THEN 1 ELSE 0 END, NULLIF($22, ''), d.id, $15
	FROM d
	RETURNING ` + messageColumns

const insertDecisionUpdateMessage = `
	WITH d AS (` + insertDecision + `)
	UPDATE messages SET status = $17, status_reason = NULLIF($18, ''),
		attempts = attempts + CASE WHEN $17 = 'sending' THEN 1 ELSE 0 END,
		consent_event_id = COALESCE($19, consent_event_id), channel = $20, provider = $21,
		abandonment_event_id = NULLIF($22, ''), decision_id = (SELECT id FROM d), updated_at = now()
	WHERE id = $16
	RETURNING ` + messageColumns

// queueDecision queues on b the one statement that records d and applies it
// to the ledger: the decision row, and the message row reserved as sending
// (allow, fallback), written as skipped (skip), or untouched (defer). Its
// callback fills in out when the batch is closed.
func queueDecision(b *pgx.Batch, in GateInput, now time.Time, d policy.Decision, existing Message, hasRow bool, out *GateResult) error {
	m := in.Message
	reasons, err := json.Marshal(nonNil(d.Reasons))
	if err != nil {
		return fmt.Errorf("gate: encoding reasons: %w", err)
	}
	checks, err := json.Marshal(nonNil(d.Checks))
	if err != nil {
		return fmt.Errorf("gate: encoding checks: %w", err)
	}
	// The consent record the send rests on: the one the gate names (a
	// granted opt-in), else the caller's (a transactional message can cite
	// the consent change it answers, such as a double opt-in prompt).
	consentEventID := m.ConsentEventID
	if d.ConsentEventID != 0 {
		id := d.ConsentEventID
		consentEventID = &id
	}
	channel := d.Channel
	if channel == "" {
		channel = m.Channel
	}
	provider := m.Provider
	if channel != m.Channel {
		provider = in.Providers[channel]
		if provider == "" {
			provider = "unknown"
		}
	}
	var until *time.Time
	if !d.Until.IsZero() {
		until = &d.Until
	}

	messageID := ""
	status := ""
	switch {
	case d.Allowed():
		status = MessageSending
	case d.Outcome == policy.OutcomeSkip:
		status = MessageSkipped
	}
	if status != "" {
		messageID = existing.ID
		if !hasRow {
			messageID = m.ID
			if messageID == "" {
				messageID = newID("m_")
			}
		}
	}

	decisionArgs := []any{m.IdempotencyKey, m.ContactID, m.JourneyID, m.JourneyVersion, m.StepID,
		m.Channel, m.Class, string(d.Outcome), channel, until, reasons, checks, consentEventID, messageID, now}

	if status == "" {
		// A deferral writes only its decision; a retrying row keeps its
		// reservation until the deferred attempt.
		b.Queue(insertDecision, decisionArgs...).QueryRow(func(r pgx.Row) error {
			if err := r.Scan(&out.DecisionID); err != nil {
				return fmt.Errorf("gate %s: recording decision: %w", m.IdempotencyKey, err)
			}
			if hasRow {
				out.Message = existing
			}
			return nil
		})
		return nil
	}

	reason := ""
	if status == MessageSkipped {
		reason = strings.Join(d.ReasonCodes(), ",")
	}
	abandonment := ""
	if channel == journey.ChannelSMS {
		abandonment = in.AbandonmentEventID
	}
	args := append(decisionArgs, messageID, status, reason, consentEventID, channel, provider, abandonment) //nolint:gocritic // decisionArgs is not reused
	sql := insertDecisionAndMessage
	claim := ClaimNew
	if hasRow {
		sql = insertDecisionUpdateMessage
		claim = ClaimRetry
	}
	if status == MessageSkipped {
		claim = ClaimDone
	}
	b.Queue(sql, args...).QueryRow(func(r pgx.Row) error {
		row, err := scanMessage(r)
		if c, ok := uniqueViolation(err); ok && c == "messages_one_abandonment_sms" {
			// The contact lock rules this out for well-behaved callers; a row
			// written outside the gate is still never doubled.
			return fmt.Errorf("gate %s: an SMS for abandonment event %s already exists: %w", m.IdempotencyKey, in.AbandonmentEventID, ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("gate %s: recording decision and ledger row: %w", m.IdempotencyKey, err)
		}
		out.Message, out.Claim = row, claim
		if row.DecisionID != nil {
			out.DecisionID = *row.DecisionID
		}
		return nil
	})
	return nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

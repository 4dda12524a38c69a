package storage

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
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
	// Decided is false when the key was already settled (ClaimDone) or its
	// last attempt is in flight (ClaimInFlight), and no decision was taken.
	Decided    bool
	Decision   policy.Decision
	DecisionID int64
	// Message is the reserved or skipped row; zero for a deferral of a key
	// with no row.
	Message Message
	// Claim says what to do: ClaimNew or ClaimRetry mean the row is reserved
	// and the caller sends now on Message.Channel (through BeginFlight);
	// ClaimDone means do not send; ClaimInFlight means find out first
	// whether the provider has the message.
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
// (for allow or fallback) the ledger row as reserved — the reservation that
// later decisions count. Two sends to one contact therefore decide one after
// the other, and a cap cannot be passed twice. Decisions for different
// contacts do not wait for each other.
//
// Concurrent calls for different contacts may share one transaction (see
// GateBatching): each is still decided under its own contact's lock, from
// what that contact's earlier decisions committed. decide must therefore be
// pure: it may run on another goroutine, and more than once when a shared
// transaction fails and the call is retried in a transaction of its own.
//
// A key that already has a settled row is returned as is (ClaimDone); a row
// left in flight by an earlier attempt is returned as is (ClaimInFlight):
// the provider may have it, and only the caller can ask. A row left
// reserved (an attempt died before writing its request) or retrying (the
// provider refused it) is decided again — consent may have been revoked
// since, or quiet hours begun — and, if still allowed, reserved again
// (ClaimRetry).
//
// If ctx ends while the call waits for a shared transaction, Gate returns
// the context's error, but the decision may still be recorded: the next
// attempt for the key finds the row reserved and decides again.
func (s *Store) Gate(ctx context.Context, in GateInput, decide func(GateState) policy.Decision) (GateResult, error) {
	if err := checkNewMessage(in.Message); err != nil {
		return GateResult{}, fmt.Errorf("gate: %w", err)
	}
	r := &gateRequest{ctx: ctx, in: in, now: in.Now, decide: decide}
	if r.now.IsZero() {
		r.now = time.Now()
	}
	if s.batcher != nil {
		rep, err := s.batcher.submit(s, r)
		if err != nil {
			return GateResult{}, fmt.Errorf("gate %s: %w", in.Message.IdempotencyKey, err)
		}
		if !rep.alone {
			return rep.res, rep.err
		}
		// The shared transaction failed: nothing of it was written. Decide
		// again alone, on this goroutine, so the error (or panic) is this
		// call's own.
	}
	if err := s.decideTogether(ctx, []*gateRequest{r}, 0, nil); err != nil {
		return GateResult{}, err
	}
	return r.res, r.err
}

// gateRequest is one Gate call on its way through a transaction.
type gateRequest struct {
	ctx    context.Context // the caller's: a request whose caller has gone is not decided
	in     GateInput
	now    time.Time
	decide func(GateState) policy.Decision
	done   chan gateReply // buffered; set when the request is queued for a shared transaction

	// Filled in by decideTogether when it returns nil.
	res GateResult
	err error // this request's own failure (no such contact); nothing was written for it
}

// The gate's reads, for any number of contacts at once. Their arguments are
// parallel arrays with one element per request (contact id, idempotency
// key, decision time, start of the lookback...), in contact id order; a row
// read back names its request by position (n, from 1), which is cheaper to
// match than the contact id.
//
// Each read walks the request list and looks up one contact (or key) at a
// time through a LATERAL subquery that the planner cannot flatten (FOR
// UPDATE or OFFSET 0 keeps it apart). That pins the plan to an index
// lookup per request: written as "id = ANY($1)" or as a plain join, the
// generic plan a prepared statement settles on while a table is still small
// scans the whole table, and keeps doing so as the table grows.
//
// Locking contacts in id order keeps two transactions that lock
// overlapping contacts from deadlocking. Every read after the lock sees
// what the previous holder of each lock committed: statements of a READ
// COMMITTED transaction each take a new snapshot.
const (
	// The lock also takes an id for the contact's decision from the
	// decisions sequence (unused ones leave gaps), so the statement that
	// writes a ledger row can name its decision.
	gateLockContacts = `SELECT r.n, c.time_zone, c.phone, c.country, c.no_email, c.last_engaged_at, c.created_at,
		nextval('decisions_id_seq')
	FROM unnest($1::text[]) WITH ORDINALITY AS r(contact_id, n)
	CROSS JOIN LATERAL (
		SELECT COALESCE(time_zone, '') AS time_zone, COALESCE(phone, '') AS phone, COALESCE(country, '') AS country,
			email IS NULL AS no_email, last_engaged_at, created_at
		FROM contacts WHERE id = r.contact_id FOR NO KEY UPDATE) AS c
	ORDER BY r.n`
	gateReadLedgerRows = `SELECT r.n, m.*
	FROM unnest($1::text[]) WITH ORDINALITY AS r(key, n)
	CROSS JOIN LATERAL (SELECT ` + messageColumns + ` FROM messages WHERE idempotency_key = r.key FOR UPDATE) AS m`
	gateReadConsents = `SELECT r.n, c.channel, c.subscription, c.status, c.consent_event_id, c.occurred_at
	FROM unnest($1::text[]) WITH ORDINALITY AS r(contact_id, n)
	CROSS JOIN LATERAL (
		SELECT channel, subscription, status, consent_event_id, occurred_at FROM consents
		WHERE contact_id = r.contact_id
		OFFSET 0) AS c`
	gateReadSuppressions = `SELECT r.n, s.id, s.reason, s.journey_id, s.channel, s.expires_at
	FROM unnest($1::text[], $2::timestamptz[]) WITH ORDINALITY AS r(contact_id, now, n)
	CROSS JOIN LATERAL (
		SELECT id, reason, COALESCE(journey_id, '') AS journey_id, COALESCE(channel, '') AS channel, expires_at
		FROM suppressions
		WHERE contact_id = r.contact_id AND lifted_at IS NULL AND (expires_at IS NULL OR expires_at > r.now)
		OFFSET 0) AS s`
	gateReadRecentSends = `SELECT r.n, m.channel, m.class, m.created_at
	FROM unnest($1::text[], $2::timestamptz[], $3::text[]) WITH ORDINALITY AS r(contact_id, since, key, n)
	CROSS JOIN LATERAL (
		SELECT channel, class, created_at FROM messages
		WHERE contact_id = r.contact_id AND created_at > r.since AND idempotency_key <> r.key
			AND status NOT IN ` + notCountedStatuses + `
		OFFSET 0) AS m`
	// Only for requests with an abandonment event ($1-$5: contact, journey,
	// event, key, and the request's position): the ledger stores no empty
	// abandonment_event_id (NULLIF), so without one there is nothing to look
	// for.
	gateReadAbandonmentSMS = `SELECT r.n
	FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[]) AS r(contact_id, journey_id, event_id, key, n)
	CROSS JOIN LATERAL (
		SELECT 1 FROM messages
		WHERE contact_id = r.contact_id AND journey_id = r.journey_id AND channel = 'sms'
			AND abandonment_event_id = r.event_id AND idempotency_key <> r.key AND status NOT IN ` + notCountedStatuses + `
		LIMIT 1) AS m`
)

// decideTogether takes the decisions for reqs, which name distinct
// contacts, in one transaction of two round trips: BEGIN, the locks and
// every read; then the writes and COMMIT. A contact that does not exist
// fails its own request (r.err) and nothing else. Any other error rolls
// the whole transaction back: nothing of it was written, and the error is
// returned.
//
// lockTimeout, if positive, bounds the wait for the contact locks (the
// transaction then fails); sent, if set, is called once the writes are on
// their way, before their results and the commit come back.
func (s *Store) decideTogether(ctx context.Context, reqs []*gateRequest, lockTimeout time.Duration, sent func()) error {
	what := fmt.Sprintf("gate for %d contacts", len(reqs))
	if len(reqs) == 1 {
		what = "gate for contact " + reqs[0].in.Message.ContactID
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("%s: acquiring a connection: %w", what, err)
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

	// In contact id order: the order the locks are taken in.
	reqs = slices.Clone(reqs)
	slices.SortFunc(reqs, func(a, b *gateRequest) int { return strings.Compare(a.in.Message.ContactID, b.in.Message.ContactID) })
	n := len(reqs)
	var (
		ids    = make([]string, n)
		keys   = make([]string, n)
		nows   = make([]time.Time, n)
		sinces = make([]time.Time, n)
		// Requests with an abandonment event: contact, journey, event, key,
		// position (from 1).
		abContacts, abJourneys, abEvents, abKeys []string
		abN                                      []int64
	)
	for i, r := range reqs {
		m := r.in.Message
		if i > 0 && m.ContactID == ids[i-1] {
			return fmt.Errorf("%s: contact %s appears twice in one transaction", what, m.ContactID) // a bug in the batcher
		}
		ids[i], keys[i], nows[i], sinces[i] = m.ContactID, m.IdempotencyKey, r.now, r.now.Add(-r.in.Lookback)
		if r.in.AbandonmentEventID != "" {
			abContacts = append(abContacts, m.ContactID)
			abJourneys = append(abJourneys, m.JourneyID)
			abEvents = append(abEvents, r.in.AbandonmentEventID)
			abKeys = append(abKeys, m.IdempotencyKey)
			abN = append(abN, int64(i+1))
		}
		r.res, r.err = GateResult{}, nil
	}

	b := &pgx.Batch{}
	b.Queue("begin")
	// The reads' plans do not depend on their arguments (an index lookup per
	// request, see above), so plan them once per connection rather than at
	// every execution, which the planner otherwise keeps doing for them.
	if lockTimeout > 0 {
		b.Queue(`SELECT set_config('plan_cache_mode', 'force_generic_plan', true), set_config('lock_timeout', $1, true)`,
			strconv.FormatInt(max(1, lockTimeout.Milliseconds()), 10)+"ms")
	} else {
		b.Queue("SET LOCAL plan_cache_mode = force_generic_plan")
	}
	b.Queue(gateLockContacts, ids)
	b.Queue(gateReadLedgerRows, keys)
	b.Queue(gateReadConsents, ids)
	b.Queue(gateReadSuppressions, ids, nows)
	b.Queue(gateReadRecentSends, ids, sinces, keys)
	if len(abContacts) > 0 {
		b.Queue(gateReadAbandonmentSMS, abContacts, abJourneys, abEvents, abKeys, abN)
	}
	br := conn.SendBatch(ctx, b)
	states := make([]gateRead, n)
	if _, err = br.Exec(); err != nil {
		err = fmt.Errorf("%s: beginning transaction: %w", what, err)
	} else if _, err = br.Exec(); err != nil {
		err = fmt.Errorf("%s: configuring the transaction: %w", what, err)
	} else {
		err = readGateStates(br, states, len(abContacts) > 0)
	}
	if cerr := br.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("%s: %w", what, cerr)
	}
	if err != nil {
		return err
	}

	// The second round trip: the writes, if any, and COMMIT. If a write
	// fails the COMMIT never runs (the pipeline stops at the error) and the
	// deferred rollback ends the transaction.
	fin := &pgx.Batch{}
	var (
		fresh     []*gateRequest // new keys: decided now, written by one statement
		freshRows []decisionRow
	)
	for i, r := range reqs {
		st := &states[i]
		switch {
		case !st.locked:
			r.err = fmt.Errorf("gate: contact %s: %w", r.in.Message.ContactID, ErrNotFound)
		case st.hasRow:
			if err := queueGateWrite(fin, r, st); err != nil {
				return err
			}
		default:
			d := r.decide(st.GateState)
			r.res.Decided, r.res.Decision = true, d
			row, err := newDecisionRow(r.in, r.now, d, Message{}, false)
			if err != nil {
				return err
			}
			row.decisionID = st.decisionID
			fresh, freshRows = append(fresh, r), append(freshRows, row)
		}
	}
	if len(fresh) > 0 {
		queueNewDecisions(fin, fresh, freshRows)
	}
	committed := false
	fin.Queue("commit").Fn = func(br pgx.BatchResults) error {
		tag, err := br.Exec()
		if err == nil && tag.String() != "COMMIT" {
			err = pgx.ErrTxCommitRollback // the transaction had failed: COMMIT rolled it back
		}
		if err != nil {
			return fmt.Errorf("%s: committing transaction: %w", what, err)
		}
		committed = true
		return nil
	}
	// Close runs the callbacks in order and returns the first error, which
	// they have described (every statement has one), unless the connection
	// failed after COMMIT's result arrived.
	fbr := conn.SendBatch(ctx, fin)
	if sent != nil {
		sent()
	}
	if err := fbr.Close(); err != nil {
		if committed {
			err = fmt.Errorf("%s: after commit: %w", what, err)
		}
		return err
	}
	return nil
}

// gateRead is what the gate read for one request under its contact's lock.
type gateRead struct {
	GateState
	locked     bool    // the contact exists (and is locked)
	decisionID int64   // reserved for this request's decision
	existing   Message // the key's ledger row, if hasRow
	hasRow     bool
}

// readGateStates reads the results of the gate's reads into states, which
// is indexed like the requests.
func readGateStates(br pgx.BatchResults, states []gateRead, abandonment bool) error {
	// nth returns the state of the request at position n (from 1).
	nth := func(n int64) (*gateRead, error) {
		if n < 1 || n > int64(len(states)) {
			return nil, fmt.Errorf("gate: read a row of request %d of %d", n, len(states))
		}
		return &states[n-1], nil
	}
	if err := eachRow(br, "locking contacts", func(r pgx.Rows) error {
		var (
			n, decisionID int64
			c             policy.ContactState
			engaged       *time.Time
		)
		if err := r.Scan(&n, &c.TimeZone, &c.Phone, &c.Country, &c.NoEmailAddress, &engaged, &c.CreatedAt, &decisionID); err != nil {
			return err
		}
		if engaged != nil {
			c.LastEngagedAt = *engaged
		}
		st, err := nth(n)
		if err != nil {
			return err
		}
		st.Contact, st.locked, st.decisionID = c, true, decisionID
		return nil
	}); err != nil {
		return err
	}

	if err := eachRow(br, "reading ledger rows", func(r pgx.Rows) error {
		var n int64
		m, err := scanMessage(prefixScanner{r, &n})
		if err != nil {
			return err
		}
		st, err := nth(n)
		if err != nil {
			return err
		}
		st.existing, st.hasRow = m, true
		return nil
	}); err != nil {
		return err
	}

	if err := eachRow(br, "reading consents", func(r pgx.Rows) error {
		var (
			n   int64
			rec policy.ConsentRecord
		)
		if err := r.Scan(&n, &rec.Channel, &rec.Subscription, &rec.Status, &rec.ConsentEventID, &rec.At); err != nil {
			return err
		}
		st, err := nth(n)
		if err != nil {
			return err
		}
		st.Contact.Consents = append(st.Contact.Consents, rec)
		return nil
	}); err != nil {
		return err
	}

	if err := eachRow(br, "reading suppressions", func(r pgx.Rows) error {
		var (
			n               int64
			reason, channel string
			sp              policy.Suppression
			expires         *time.Time
		)
		if err := r.Scan(&n, &sp.ID, &reason, &sp.JourneyID, &channel, &expires); err != nil {
			return err
		}
		sp.Reason, sp.Channel = model.SuppressionReason(reason), journey.Channel(channel)
		if expires != nil {
			sp.ExpiresAt = *expires
		}
		st, err := nth(n)
		if err != nil {
			return err
		}
		st.Contact.Suppressions = append(st.Contact.Suppressions, sp)
		return nil
	}); err != nil {
		return err
	}

	if err := eachRow(br, "reading recent sends", func(r pgx.Rows) error {
		// The most rows of any read: channel and class are read in place
		// and mapped to their constants rather than copied per row.
		var (
			n              int64
			channel, class pgtype.DriverBytes
			at             time.Time
		)
		if err := r.Scan(&n, &channel, &class, &at); err != nil {
			return err
		}
		st, err := nth(n)
		if err != nil {
			return err
		}
		st.Contact.RecentSends = append(st.Contact.RecentSends,
			policy.SentMessage{Channel: channelOf(channel), Class: classOf(class), At: at})
		return nil
	}); err != nil {
		return err
	}

	if abandonment {
		if err := eachRow(br, "reading abandonment sends", func(r pgx.Rows) error {
			var n int64
			if err := r.Scan(&n); err != nil {
				return err
			}
			st, err := nth(n)
			if err != nil {
				return err
			}
			st.AbandonmentSMSSent = true
			return nil
		}); err != nil {
			return err
		}
	}
	return nil
}

// prefixScanner scans a row's first column into first and the rest into
// what Scan is given: a row of messageColumns led by another column.
type prefixScanner struct {
	r     rowScanner
	first any
}

func (p prefixScanner) Scan(dest ...any) error {
	return p.r.Scan(append([]any{p.first}, dest...)...)
}

// channelOf and classOf map a ledger row's channel and class to their
// constants without allocating for the known ones.
func channelOf(b []byte) journey.Channel {
	switch string(b) {
	case string(journey.ChannelEmail):
		return journey.ChannelEmail
	case string(journey.ChannelSMS):
		return journey.ChannelSMS
	case string(journey.ChannelAds):
		return journey.ChannelAds
	case string(journey.ChannelWebhook):
		return journey.ChannelWebhook
	}
	return journey.Channel(b)
}

func classOf(b []byte) journey.MessageClass {
	switch string(b) {
	case string(journey.ClassMarketing):
		return journey.ClassMarketing
	case string(journey.ClassTransactional):
		return journey.ClassTransactional
	}
	return journey.MessageClass(b)
}

// eachRow reads the next result of br row by row.
func eachRow(br pgx.BatchResults, what string, fn func(pgx.Rows) error) error {
	rows, err := br.Query()
	if err != nil {
		return fmt.Errorf("gate: %s: %w", what, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return fmt.Errorf("gate: %s: %w", what, err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("gate: %s: %w", what, err)
	}
	return nil
}

// queueGateWrite handles a request whose key has a ledger row (st.hasRow):
// it queues on fin what that writes, deciding again for a retrying row; the
// statements' callbacks fill in r.res when fin is closed.
func queueGateWrite(fin *pgx.Batch, r *gateRequest, st *gateRead) error {
	out := &r.res
	switch existing := st.existing; {
	case existing.Status == model.MessageRetrying || existing.Status == model.MessageReserved:
		// Decided again now: consent may have been revoked since.
		d := r.decide(st.GateState)
		out.Decided, out.Decision = true, d
		row, err := newDecisionRow(r.in, r.now, d, existing, true)
		if err != nil {
			return err
		}
		queueRetriedDecision(fin, row, existing, out)
	case existing.Status == model.MessageInFlight:
		*out = GateResult{Message: existing, Claim: ClaimInFlight}
	default:
		*out = GateResult{Message: existing, Claim: ClaimDone}
	}
	return nil
}

// The gate's write statements, built once.
//
// insertDecisions records the decisions for new keys, all of a transaction's
// at once, and writes their ledger rows: reserved (allow,
// fallback) or skipped (skip); a deferral writes only its decision. Its
// arguments are parallel arrays, one element per decision (see
// queueNewDecisions); decision ids come from the sequence beforehand, so a
// ledger row can name its decision in the same statement.
const insertDecisions = `
	WITH r AS MATERIALIZED (
		SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::int[], $6::text[], $7::text[],
			$8::text[], $9::text[], $10::text[], $11::timestamptz[], $12::text[], $13::text[], $14::bigint[],
			$15::text[], $16::timestamptz[], $17::text[], $18::text[], $19::text[], $20::text[], $21::text[])
		AS r(decision_id, key, contact_id, journey_id, journey_version, step_id, channel, class,
			outcome, decided_channel, defer_until, reasons, checks, consent_event_id,
			message_id, decided_at, status, status_reason, provider, abandonment_event_id, subscription)
	), d AS (
		INSERT INTO decisions (id, idempotency_key, contact_id, journey_id, journey_version, step_id, channel, class,
			outcome, decided_channel, defer_until, reasons, checks, consent_event_id, message_id, decided_at)
		SELECT decision_id, key, contact_id, journey_id, journey_version, step_id, channel, class,
			outcome, decided_channel, defer_until, reasons::json, checks::json, consent_event_id,
			NULLIF(message_id, ''), decided_at
		FROM r
	)
	INSERT INTO messages (id, idempotency_key, contact_id, journey_id, journey_version, step_id, channel, class,
		provider, status, status_reason, consent_event_id, attempts, abandonment_event_id, decision_id, created_at,
		subscription)
	SELECT message_id, key, contact_id, journey_id, journey_version, step_id, decided_channel, class,
		provider, status, NULLIF(status_reason, ''), consent_event_id, 0,
		NULLIF(abandonment_event_id, ''), decision_id, decided_at, subscription
	FROM r WHERE status <> ''
	RETURNING ` + messageColumns

// For a retrying row, one request at a time: insertDecision takes $1-$15;
// insertDecisionUpdateMessage adds $16 message id, $17 status, $18 status
// reason, $19 consent event id, $20 channel, $21 provider, $22 abandonment
// event id.
const insertDecision = `INSERT INTO decisions (idempotency_key, contact_id, journey_id, journey_version, step_id,
		channel, class, outcome, decided_channel, defer_until, reasons, checks, consent_event_id, message_id, decided_at)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::json, $12::json, $13, NULLIF($14, ''), $15) RETURNING id`

const insertDecisionUpdateMessage = `
	WITH d AS (` + insertDecision + `)
	UPDATE messages SET status = $17, status_reason = NULLIF($18, ''),
		consent_event_id = COALESCE($19, consent_event_id), channel = $20, provider = $21,
		abandonment_event_id = NULLIF($22, ''), decision_id = (SELECT id FROM d), updated_at = now()
	WHERE id = $16
	RETURNING ` + messageColumns

// decisionRow is what one decision writes: its decisions row and, unless
// it is a deferral, its ledger row.
type decisionRow struct {
	decisionID                        int64 // for new keys, reserved beforehand
	key, contactID, journeyID, stepID string
	journeyVersion                    int
	channel, class                    string // as requested
	outcome, decidedChannel           string
	until                             *time.Time
	reasons, checks                   string // JSON
	consentEventID                    *int64
	decidedAt                         time.Time
	// The ledger row: status is "" for a deferral, which writes none.
	messageID, statusReason, provider, abandonmentEventID string
	status                                                model.MessageStatus
}

// newDecisionRow works out the rows that record d for in. existing is the
// key's ledger row, if hasRow.
func newDecisionRow(in GateInput, now time.Time, d policy.Decision, existing Message, hasRow bool) (decisionRow, error) {
	m := in.Message
	reasons, err := json.Marshal(nonNil(d.Reasons))
	if err != nil {
		return decisionRow{}, fmt.Errorf("gate: encoding reasons: %w", err)
	}
	checks, err := json.Marshal(nonNil(d.Checks))
	if err != nil {
		return decisionRow{}, fmt.Errorf("gate: encoding checks: %w", err)
	}
	row := decisionRow{
		key: m.IdempotencyKey, contactID: m.ContactID, journeyID: m.JourneyID, stepID: m.StepID,
		journeyVersion: m.JourneyVersion, channel: string(m.Channel), class: m.Class,
		outcome: string(d.Outcome), reasons: string(reasons), checks: string(checks), decidedAt: now,
		// The consent record the send rests on: the one the gate names (a
		// granted opt-in), else the caller's (a transactional message can
		// cite the consent change it answers, such as a double opt-in prompt).
		consentEventID: m.ConsentEventID,
	}
	if d.ConsentEventID != 0 {
		id := d.ConsentEventID
		row.consentEventID = &id
	}
	channel := d.Channel
	if channel == "" {
		channel = m.Channel
	}
	row.decidedChannel = string(channel)
	row.provider = m.Provider
	if channel != m.Channel {
		row.provider = in.Providers[channel]
		if row.provider == "" {
			row.provider = "unknown"
		}
	}
	if !d.Until.IsZero() {
		until := d.Until
		row.until = &until
	}
	switch {
	case d.Allowed():
		row.status = model.MessageReserved
	case d.Outcome == policy.OutcomeSkip:
		row.status = model.MessageSkipped
		row.statusReason = strings.Join(d.ReasonCodes(), ",")
	default:
		return row, nil // a deferral: no ledger row
	}
	row.messageID = existing.ID
	if !hasRow {
		row.messageID = m.ID
		if row.messageID == "" {
			row.messageID = newID("m_")
		}
	}
	if channel == journey.ChannelSMS {
		row.abandonmentEventID = in.AbandonmentEventID
	}
	return row, nil
}

// claimFor is the claim a ledger row written with status gives its caller.
func claimFor(status model.MessageStatus, retry bool) ClaimOutcome {
	switch {
	case status == model.MessageSkipped:
		return ClaimDone
	case retry:
		return ClaimRetry
	}
	return ClaimNew
}

// queueNewDecisions queues on fin the one statement that records the
// decisions of reqs (new keys) from rows, whose decision ids are set, and
// fills in each request's result when fin is closed.
func queueNewDecisions(fin *pgx.Batch, reqs []*gateRequest, rows []decisionRow) {
	n := len(rows)
	var (
		keys, contacts, journeys, steps, channels, classes = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		outcomes, decided, reasons, checks, messageIDs     = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		statuses, statusReasons, providers, abandonmentIDs = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		subscriptions                                      = make([]string, n)
		versions                                           = make([]int32, n)
		untils                                             = make([]*time.Time, n)
		consents                                           = make([]*int64, n)
		decidedAt                                          = make([]time.Time, n)
		byKey                                              = make(map[string]*gateRequest, n)
		ids                                                = make([]int64, n)
	)
	for i, row := range rows {
		keys[i], contacts[i], journeys[i], steps[i] = row.key, row.contactID, row.journeyID, row.stepID
		channels[i], classes[i], outcomes[i], decided[i] = row.channel, row.class, row.outcome, row.decidedChannel
		reasons[i], checks[i], messageIDs[i] = row.reasons, row.checks, row.messageID
		statuses[i], statusReasons[i], providers[i], abandonmentIDs[i] = string(row.status), row.statusReason, row.provider, row.abandonmentEventID
		versions[i], untils[i], consents[i], decidedAt[i] = int32(row.journeyVersion), row.until, row.consentEventID, row.decidedAt //nolint:gosec // journey versions are small
		subscriptions[i] = reqs[i].in.Message.Subscription
		byKey[row.key] = reqs[i]
		ids[i] = row.decisionID
		reqs[i].res.DecisionID = row.decisionID
	}
	what := fmt.Sprintf("gate for %d sends", n)
	if n == 1 {
		what = "gate " + keys[0]
	}
	fin.Queue(insertDecisions, ids, keys, contacts, journeys, versions, steps, channels, classes,
		outcomes, decided, untils, reasons, checks, consents, messageIDs, decidedAt,
		statuses, statusReasons, providers, abandonmentIDs, subscriptions).Fn = func(br pgx.BatchResults) error {
		rows, err := br.Query()
		if err != nil {
			return fmt.Errorf("%s: recording decision and ledger row: %w", what, err)
		}
		defer rows.Close()
		for rows.Next() {
			m, err := scanMessage(rows)
			if err != nil {
				return fmt.Errorf("%s: reading ledger row: %w", what, err)
			}
			r := byKey[m.IdempotencyKey]
			if r == nil {
				return fmt.Errorf("%s: wrote a ledger row for key %s, which was not asked for", what, m.IdempotencyKey)
			}
			r.res.Message, r.res.Claim = m, claimFor(m.Status, false)
		}
		err = rows.Err()
		if c, ok := uniqueViolation(err); ok && c == "messages_one_abandonment_sms" {
			// The contact lock rules this out for well-behaved callers; a row
			// written outside the gate is still never doubled.
			return fmt.Errorf("%s: an SMS for this abandonment event already exists: %w", what, ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("%s: recording decision and ledger row: %w", what, err)
		}
		return nil
	}
}

// queueRetriedDecision queues on fin the statement that records row, the
// new decision for a retrying ledger row (existing), and fills in out when
// fin is closed.
func queueRetriedDecision(fin *pgx.Batch, row decisionRow, existing Message, out *GateResult) {
	args := []any{row.key, row.contactID, row.journeyID, row.journeyVersion, row.stepID, row.channel, row.class,
		row.outcome, row.decidedChannel, row.until, row.reasons, row.checks, row.consentEventID, row.messageID, row.decidedAt}
	if row.status == "" {
		// A deferral writes only its decision; the row keeps its
		// reservation until the deferred attempt.
		fin.Queue(insertDecision, args...).QueryRow(func(r pgx.Row) error {
			if err := r.Scan(&out.DecisionID); err != nil {
				return fmt.Errorf("gate %s: recording decision: %w", row.key, err)
			}
			out.Message = existing
			return nil
		})
		return
	}
	args = append(args, row.messageID, row.status, row.statusReason, row.consentEventID, row.decidedChannel, row.provider, row.abandonmentEventID)
	fin.Queue(insertDecisionUpdateMessage, args...).QueryRow(func(r pgx.Row) error {
		m, err := scanMessage(r)
		if c, ok := uniqueViolation(err); ok && c == "messages_one_abandonment_sms" {
			return fmt.Errorf("gate %s: an SMS for abandonment event %s already exists: %w", row.key, row.abandonmentEventID, ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("gate %s: recording decision and ledger row: %w", row.key, err)
		}
		out.Message, out.Claim = m, claimFor(m.Status, true)
		if m.DecisionID != nil {
			out.DecisionID = *m.DecisionID
		}
		return nil
	})
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

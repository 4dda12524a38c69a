package storage

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// GateBatching groups concurrent Gate calls for different contacts into
// shared transactions, as a database groups commits: while one transaction
// is in flight, the calls that arrive wait and then go together in the
// next. Each decision is still taken under its own contact's row lock from
// what that contact's earlier decisions committed, and writes the same
// rows; what the calls share is the round trips, the statements (one read
// of each kind for all of them) and the COMMIT with its WAL flush. Much of
// a small transaction's cost is that fixed part, so a worker sending to many
// contacts at once decides faster (BenchmarkGate against
// BenchmarkGateAlone), while a lone call goes straight through, in a
// transaction of its own.
//
// Calls for a contact already in a transaction being formed wait for the
// next one, so a contact's sends still decide one after the other. If a
// shared transaction fails, nothing of it is written and each of its calls
// is decided again in a transaction of its own, so one bad request cannot
// fail the others.
type GateBatching struct {
	// MaxBatch is the most decisions in one transaction; 1 (or less) turns
	// grouping off: every call takes its own transaction on its own
	// goroutine.
	MaxBatch int
	// MaxInFlight is the most shared transactions at once, each on a pooled
	// connection of its own; at least 1.
	MaxInFlight int
	// Timeout bounds one shared transaction (default 30s). Callers stop
	// waiting when their own context ends.
	Timeout time.Duration
	// LockTimeout bounds how long a shared transaction waits for a
	// contact's lock (default 1s): a contact held by some long transaction
	// elsewhere must not hold up the other contacts' decisions. The group
	// then falls apart into transactions of their own, and only that
	// contact's call waits for its lock.
	LockTimeout time.Duration
}

// DefaultGateBatching is what New and Open use: up to 32 decisions per
// transaction, two transactions in flight (one forming and reading while
// the other commits), a one-second wait for a contact lock.
func DefaultGateBatching() GateBatching {
	return GateBatching{MaxBatch: 32, MaxInFlight: 2, Timeout: 30 * time.Second, LockTimeout: time.Second}
}

// An Option configures a Store.
type Option func(*Store)

// WithGateBatching sets how Gate groups concurrent calls.
func WithGateBatching(b GateBatching) Option {
	return func(s *Store) { s.batcher = newGateBatcher(b) }
}

func newGateBatcher(b GateBatching) *gateBatcher {
	q := newGroupQueue[*gateRequest](b)
	if q == nil {
		return nil
	}
	return &gateBatcher{groupQueue: q}
}

// gateBatcher queues Gate calls for runner goroutines that take them in
// groups (groupQueue).
type gateBatcher struct {
	*groupQueue[*gateRequest]
}

// groupQueue is what the gate's and TrackEvent's grouping share: the
// settings, the queue of calls, the runners and the counters. Runners exist
// only while there is work: the caller that finds fewer than MaxInFlight
// running starts one (tryStart), and a runner that finds the queue empty
// stops.
type groupQueue[C any] struct {
	cfg     GateBatching
	queue   chan C
	running atomic.Int32
	// forming is a token (a one-slot channel) held by the runner that forms
	// a group, from taking its calls until its runGroup gives it back: the
	// gate's once the group's writes are sent (runGateGroup), TrackEvent's
	// once the group's results are in (runEventGroup says why). The next
	// group thus forms from the calls that arrived in the meantime, rather
	// than as soon as a runner is free: groups come out larger.
	forming chan struct{}
	// Shared transactions run, and the calls they carried.
	groups, grouped atomic.Int64
}

// newGroupQueue fills in b's defaults; nil when b turns grouping off.
func newGroupQueue[C any](b GateBatching) *groupQueue[C] {
	if b.MaxBatch <= 1 {
		return nil
	}
	b.MaxInFlight = max(1, b.MaxInFlight)
	if b.Timeout <= 0 {
		b.Timeout = DefaultGateBatching().Timeout
	}
	if b.LockTimeout <= 0 {
		b.LockTimeout = DefaultGateBatching().LockTimeout
	}
	// The queue only smooths bursts: a runner drains it whole (up to
	// MaxBatch) each time, and a full queue makes callers wait to join it.
	return &groupQueue[C]{cfg: b, queue: make(chan C, 4*b.MaxBatch*b.MaxInFlight), forming: make(chan struct{}, 1)}
}

// tryStart counts one more runner, unless MaxInFlight are running.
func (q *groupQueue[C]) tryStart() bool {
	for {
		n := q.running.Load()
		if int(n) >= q.cfg.MaxInFlight {
			return false
		}
		if q.running.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// stats reads the counters; zeros for a nil queue (grouping off).
func (q *groupQueue[C]) stats() (transactions, calls int64) {
	if q == nil {
		return 0, 0
	}
	return q.groups.Load(), q.grouped.Load()
}

// submit queues call, whose reply comes on done, starts a runner (run) if
// fewer than MaxInFlight are running, and waits for the reply or for ctx to
// end; waiting says what the caller waits for, in its error.
func submit[C, R any](q *groupQueue[C], ctx context.Context, call C, done <-chan R, run func(), waiting string) (R, error) {
	var none R
	select {
	case q.queue <- call:
	case <-ctx.Done():
		return none, fmt.Errorf("waiting to be queued: %w", ctx.Err())
	}
	if q.tryStart() {
		go run()
	}
	select {
	case rep := <-done:
		return rep, nil
	case <-ctx.Done():
		return none, fmt.Errorf("%s: %w", waiting, ctx.Err())
	}
}

// runGroups is one runner: it forms groups with take, holding the forming
// token, and hands each to runGroup (which gives the token back, see
// forming), until take finds nothing.
func (q *groupQueue[C]) runGroups(take func() []C, runGroup func([]C)) {
	for {
		q.forming <- struct{}{}
		group := take()
		if len(group) == 0 {
			<-q.forming
			q.running.Add(-1)
			// A call queued after take found the queue empty, whose caller
			// then saw every runner still running, is this runner's to take.
			if len(q.queue) == 0 || !q.tryStart() {
				return
			}
			continue
		}
		runGroup(group)
	}
}

// GateGroupStats reports how many shared gate transactions have run and how
// many Gate calls they carried (their ratio is the mean group size); zeros
// when grouping is off.
func (s *Store) GateGroupStats() (transactions, calls int64) {
	if s.batcher == nil {
		return 0, 0
	}
	return s.batcher.stats()
}

// gateReply is a queued call's outcome: its result, or alone when its
// shared transaction failed and the caller must decide by itself.
type gateReply struct {
	res   GateResult
	err   error
	alone bool
}

// submit queues r and waits for its reply, or for r.ctx to end.
func (b *gateBatcher) submit(s *Store, r *gateRequest) (gateReply, error) {
	r.done = make(chan gateReply, 1)
	return submit(b.groupQueue, r.ctx, r, r.done, s.runGateBatches, "waiting for its decision")
}

// runGateBatches is one runner: it decides groups of queued calls until
// there are none left.
func (s *Store) runGateBatches() {
	b := s.batcher
	var held []*gateRequest // calls for a contact that was already in the last group
	b.runGroups(func() []*gateRequest {
		var group []*gateRequest
		group, held = b.take(held)
		return group
	}, s.runGateGroup)
}

// take forms the next group: first the held calls, then whatever is queued,
// up to MaxBatch calls for distinct contacts. Calls for a contact already
// in the group are held for the next one; calls whose caller has gone are
// dropped.
func (b *gateBatcher) take(held []*gateRequest) (group, rest []*gateRequest) {
	contacts := make(map[string]struct{}, b.cfg.MaxBatch)
	add := func(r *gateRequest) {
		if r.ctx.Err() != nil {
			return // the caller returned its context's error already
		}
		id := r.in.Message.ContactID
		if _, dup := contacts[id]; dup || len(group) == b.cfg.MaxBatch {
			rest = append(rest, r)
			return
		}
		contacts[id] = struct{}{}
		group = append(group, r)
	}
	for _, r := range held {
		add(r)
	}
	// Look at no more queued calls than the group has room for, so a burst
	// for one contact does not all move into rest at once.
	for range b.cfg.MaxBatch - len(group) {
		select {
		case r := <-b.queue:
			add(r)
			continue
		default:
		}
		break
	}
	return group, rest
}

// runGateGroup decides a group in one transaction and replies to each call.
// It gives the forming token back as soon as the group's writes are sent,
// or when it fails before that.
func (s *Store) runGateGroup(group []*gateRequest) {
	s.batcher.groups.Add(1)
	s.batcher.grouped.Add(int64(len(group)))
	ctx, cancel := context.WithTimeout(context.Background(), s.batcher.cfg.Timeout)
	defer cancel()
	formed := sync.OnceFunc(func() { <-s.batcher.forming })
	defer formed()
	err := s.decideTogetherSafely(ctx, group, formed)
	for _, r := range group {
		if err != nil {
			r.done <- gateReply{alone: true}
			continue
		}
		r.done <- gateReply{res: r.res, err: r.err}
	}
}

// decideTogetherSafely is decideTogether with a panic (in a decide
// function) turned into an error: the transaction is rolled back and each
// caller decides again alone, where the panic is its own.
func (s *Store) decideTogetherSafely(ctx context.Context, group []*gateRequest, sent func()) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("gate: panic while deciding a group: %v", p)
		}
	}()
	return s.decideTogether(ctx, group, s.batcher.cfg.LockTimeout, sent)
}

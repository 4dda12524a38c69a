package benchjourney

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/jackc/pgx/v5"
	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/workflows"
)

// p2 counts history events: the three-send journey, and for each step kind
// the history of a journey of that kind and what each step adds. Histories
// do not depend on timing, so one run of each suffices.
func (h *harness) p2(ctx context.Context) ([]Figure, []string, error) {
	var ids []string
	for _, k := range measuredKinds {
		ids = append(ids, kindJourney(k, 1), kindJourney(k, 3))
	}
	type key struct {
		s  side
		id string
	}
	keys := []key{}
	for _, id := range ids {
		keys = append(keys, key{tutti, id}, key{hand, id})
	}
	send3 := kindJourney(journey.KindSend, 3)
	keys = append(keys, key{stepsOnly, send3})
	contacts, err := h.newContacts(ctx, len(keys))
	if err != nil {
		return nil, nil, err
	}
	runs := make([]run, len(keys))
	for i, k := range keys {
		if runs[i], err = h.startRun(ctx, k.s, h.journeys[k.id], contacts[i], workflows.TaskQueue); err != nil {
			return nil, nil, err
		}
	}
	if err := h.awaitAll(ctx, runs); err != nil {
		return nil, nil, err
	}
	total := map[key]int{}
	types := map[key]map[string]int{}
	for i, k := range keys {
		if total[k], types[k], err = h.history(ctx, runs[i]); err != nil {
			return nil, nil, err
		}
	}
	send1 := kindJourney(journey.KindSend, 1)
	figs := []Figure{{
		Name: "P2 history events, 3-send journey", Unit: "events",
		Tutti: float64(total[key{tutti, send3}]), Hand: float64(total[key{hand, send3}]),
		Detail: fmt.Sprintf("1 step: %d vs %d events", total[key{tutti, send1}], total[key{hand, send1}]),
		Target: "≤ 1.1×", Meets: ratioAtMost(1.1),
	}, {
		Name: "P2 history events, 3-send journey, against sends only", Unit: "events",
		Tutti: float64(total[key{tutti, send3}]), Hand: float64(total[key{stepsOnly, send3}]),
		Detail: "hand-written without BeginEnrollment and FinishEnrollment",
	}}
	// Per step kind: the history of a journey of three steps of that kind
	// against the hand-written workflow's (the target is the history's),
	// and what one more step of the kind adds on each side. A wait or
	// wait_for step adds the JourneyStep upsert that tells ops where a run
	// is parked (6 events against 5): kept on purpose, it is what "who is
	// waiting where" reads.
	for _, k := range measuredKinds {
		one, three := kindJourney(k, 1), kindJourney(k, 3)
		if k != journey.KindSend { // the 3-send journey is the first figure
			figs = append(figs, Figure{
				Name: fmt.Sprintf("P2 history events, 3-%s journey", k), Unit: "events",
				Tutti: float64(total[key{tutti, three}]), Hand: float64(total[key{hand, three}]),
				Detail: fmt.Sprintf("1 step: %d vs %d events", total[key{tutti, one}], total[key{hand, one}]),
				Target: "≤ 1.1×", Meets: ratioAtMost(1.1),
			})
		}
		figs = append(figs, Figure{
			Name: fmt.Sprintf("P2 history events per %s step", k), Unit: "events",
			Tutti:  float64(total[key{tutti, three}]-total[key{tutti, one}]) / 2,
			Hand:   float64(total[key{hand, three}]-total[key{hand, one}]) / 2,
			Detail: "what each step of the kind adds: (3 steps - 1 step) / 2" + map[bool]string{true: "; the JourneyStep upsert at a park", false: ""}[k == journey.KindWait || k == journey.KindWaitFor],
		})
	}
	return figs, []string{"3-send journey, events by type (Tutti vs hand-written): " + typeDiff(types[key{tutti, send3}], types[key{hand, send3}]) + "."}, nil
}

// typeDiff lists event types with their counts on both sides.
func typeDiff(a, b map[string]int) string {
	var names []string
	for n := range a {
		names = append(names, n)
	}
	for n := range b {
		if _, ok := a[n]; !ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	var parts []string
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s %d vs %d", strings.TrimPrefix(n, "EVENT_TYPE_"), a[n], b[n]))
	}
	return strings.Join(parts, ", ")
}

// p1 measures completed three-send runs per second and the CPU the server
// and the worker spend per run, in interleaved rounds.
func (h *harness) p1(ctx context.Context) ([]Figure, error) {
	jv := h.journeys[kindJourney(journey.KindSend, 3)]
	rate, cpu := map[side][]float64{}, map[side][]float64{}
	var rateRatios, cpuRatios []string
	var rr, cr []float64
	for round := 1; round <= h.cfg.Rounds; round++ {
		for _, s := range roundOrder(round) {
			contacts, err := h.newContacts(ctx, h.cfg.Runs)
			if err != nil {
				return nil, err
			}
			c0, err := h.cpu()
			if err != nil {
				return nil, err
			}
			t0 := time.Now()
			runs, err := h.startRuns(ctx, s, jv, contacts, workflows.TaskQueue)
			if err != nil {
				return nil, err
			}
			if err := h.awaitAll(ctx, runs); err != nil {
				return nil, err
			}
			c1, err := h.cpu()
			if err != nil {
				return nil, err
			}
			closes, err := h.closeTimes(ctx, runs)
			if err != nil {
				return nil, err
			}
			last := slices.MaxFunc(closes, func(a, b time.Time) int { return a.Compare(b) })
			r := float64(h.cfg.Runs) / last.Sub(t0).Seconds()
			c := ms(c1-c0) / float64(h.cfg.Runs)
			rate[s], cpu[s] = append(rate[s], r), append(cpu[s], c)
			h.cfg.logf("P1 round %d, %s: %d runs in %.1fs: %.1f runs/s, %.0f ms CPU (server + worker) per run",
				round, s, h.cfg.Runs, last.Sub(t0).Seconds(), r, c)
		}
		n := len(rate[tutti]) - 1
		rr = append(rr, rate[tutti][n]/rate[hand][n])
		cr = append(cr, cpu[tutti][n]/cpu[hand][n])
		rateRatios = append(rateRatios, fmt.Sprintf("%.2f", rr[n]))
		cpuRatios = append(cpuRatios, fmt.Sprintf("%.2f", cr[n]))
	}
	return []Figure{
		{Name: "P1 completed 3-send journeys/s", Unit: "runs/s", Tutti: median(rate[tutti]), Hand: median(rate[hand]),
			Ratio: median(rr), Detail: "median of rounds; ratio per round " + strings.Join(rateRatios, ", "),
			Target: "≥ 0.9×", Meets: ratioAtLeast(0.9)},
		{Name: "P1 CPU per run, Temporal server + worker", Unit: "ms", Tutti: median(cpu[tutti]), Hand: median(cpu[hand]),
			Ratio: median(cr), Detail: "ratio per round " + strings.Join(cpuRatios, ", ")},
	}, nil
}

// exitLatencies parks n runs on a long wait, then sends each its goal
// event, every interval (0: all at once), and returns event -> run closed
// for each.
func (h *harness) exitLatencies(ctx context.Context, s side, n int, interval time.Duration) ([]time.Duration, error) {
	contacts, err := h.newContacts(ctx, n)
	if err != nil {
		return nil, err
	}
	runs, err := h.startRuns(ctx, s, h.journeys[journeyPark], contacts, workflows.TaskQueue)
	if err != nil {
		return nil, err
	}
	if err := h.waitParked(ctx, runs); err != nil {
		return nil, err
	}
	sent := make([]time.Time, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i, r := range runs {
		if interval > 0 {
			time.Sleep(time.Until(start.Add(time.Duration(i) * interval)))
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sent[i] = time.Now()
			errs[i] = h.tc.SignalWorkflow(ctx, r.id, r.runID, workflows.SignalEvent,
				workflows.EventSignal{EventID: "goal/" + r.id, Name: "purchase", OccurredAt: sent[i]})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("signalling the goal: %w", err)
		}
	}
	if err := h.awaitAll(ctx, runs); err != nil {
		return nil, err
	}
	closes, err := h.closeTimes(ctx, runs)
	if err != nil {
		return nil, err
	}
	lat := make([]time.Duration, n)
	for i := range runs {
		lat[i] = closes[i].Sub(sent[i])
	}
	return lat, nil
}

// roundOrder is the order of the sides in a round: Tutti first in odd
// rounds, the hand-written workflow first in even ones, so a machine
// speeding up or slowing down does not favour either.
func roundOrder(round int) []side {
	if round%2 == 0 {
		return []side{hand, tutti}
	}
	return []side{tutti, hand}
}

// p5 measures goal event -> run closed for a burst and a steady stream,
// in interleaved rounds.
func (h *harness) p5(ctx context.Context) ([]Figure, error) {
	steadyN := h.cfg.SteadyRate * h.cfg.SteadySeconds
	interval := time.Second / time.Duration(h.cfg.SteadyRate)
	var figs []Figure
	for _, m := range []struct {
		name     string
		n        int
		interval time.Duration
		target   bool
	}{
		{fmt.Sprintf("burst of %d", h.cfg.Burst), h.cfg.Burst, 0, true},
		{fmt.Sprintf("steady %d/s for %ds", h.cfg.SteadyRate, h.cfg.SteadySeconds), steadyN, interval, false},
	} {
		lat := map[side][]time.Duration{}
		var perRound []string
		for round := 1; round <= h.cfg.Rounds; round++ {
			p99 := map[side]time.Duration{}
			for _, s := range roundOrder(round) {
				l, err := h.exitLatencies(ctx, s, m.n, m.interval)
				if err != nil {
					return nil, err
				}
				lat[s] = append(lat[s], l...)
				p99[s] = percentile(l, 99)
				h.cfg.logf("P5 round %d, %s, %s: p50 %.0f ms, p99 %.0f ms", round, m.name, s, ms(percentile(l, 50)), ms(p99[s]))
			}
			perRound = append(perRound, fmt.Sprintf("%.0f vs %.0f", ms(p99[tutti]), ms(p99[hand])))
		}
		p99 := Figure{Name: "P5 goal event → run closed, p99, " + m.name, Unit: "ms",
			Tutti: ms(percentile(lat[tutti], 99)), Hand: ms(percentile(lat[hand], 99)),
			Detail: "all rounds pooled; p99 per round (ms) " + strings.Join(perRound, ", ")}
		if m.target {
			p99.Target, p99.Meets = "< 1000 ms", tuttiBelow(1000)
		}
		figs = append(figs,
			Figure{Name: "P5 goal event → run closed, p50, " + m.name, Unit: "ms",
				Tutti: ms(percentile(lat[tutti], 50)), Hand: ms(percentile(lat[hand], 50))},
			p99)
	}
	return figs, nil
}

// p6 measures a fresh worker's resident memory with runs parked on a long
// wait, and after it restarts, for each side on a task queue of its own.
func (h *harness) p6(ctx context.Context) ([]Figure, error) {
	type mem struct{ idle, parked, restarted int64 }
	got := map[side]mem{}
	for _, s := range []side{tutti, hand} {
		contacts, err := h.newContacts(ctx, h.cfg.Parked)
		if err != nil {
			return nil, err
		}
		queue := "bench-parked-" + strings.ReplaceAll(string(s), " ", "-")
		name := "worker-parked-" + queue[len("bench-parked-"):]
		w, err := h.startWorker(ctx, queue, name)
		if err != nil {
			return nil, err
		}
		var m mem
		err = func() error {
			defer func() { w.stop(30 * time.Second) }()
			time.Sleep(2 * time.Second)
			if m.idle, err = rss(w.pid()); err != nil {
				return err
			}
			runs, err := h.startRuns(ctx, s, h.journeys[journeyPark], contacts, queue)
			if err != nil {
				return err
			}
			if err := h.waitParked(ctx, runs); err != nil {
				return err
			}
			time.Sleep(2 * time.Second)
			if m.parked, err = rss(w.pid()); err != nil {
				return err
			}
			w.stop(30 * time.Second)
			if w, err = h.startWorker(ctx, queue, name); err != nil {
				return err
			}
			time.Sleep(5 * time.Second)
			m.restarted, err = rss(w.pid())
			return err
		}()
		if err != nil {
			return nil, err
		}
		got[s] = m
		h.cfg.logf("P6 %s: worker RSS %.0f MiB idle, %.0f MiB with %d parked, %.0f MiB after a restart",
			s, mib(m.idle), mib(m.parked), h.cfg.Parked, mib(m.restarted))
	}
	return []Figure{
		{Name: fmt.Sprintf("P6 worker RSS, %d runs parked on a 30-day wait", h.cfg.Parked), Unit: "MiB",
			Tutti: mib(got[tutti].parked), Hand: mib(got[hand].parked),
			Detail: fmt.Sprintf("fresh worker before parking: %.0f vs %.0f MiB", mib(got[tutti].idle), mib(got[hand].idle)),
			Target: "< 512 MiB", Meets: tuttiBelow(512)},
		{Name: "P6 worker RSS after a restart, runs still parked", Unit: "MiB",
			Tutti: mib(got[tutti].restarted), Hand: mib(got[hand].restarted)},
	}, nil
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// enroll measures enrollment through the API (`tutti serve`) at Clients
// concurrent calls, answered once the run started (201) and with Prefer:
// respond-async (202 once the enrollment and its start are stored; the
// worker's dispatcher starts the run), against starting the hand-written
// workflow directly, in interleaved rounds (the three sides in a rotating
// order).
func (h *harness) enroll(ctx context.Context) ([]Figure, error) {
	lat := map[side][]time.Duration{}
	rate := map[side][]float64{}
	var startLag []time.Duration
	failed := 0
	sides := []side{tutti, tuttiAsync, hand}
	for round := 1; round <= h.cfg.Rounds; round++ {
		for i := range sides {
			s := sides[(i+round-1)%len(sides)]
			l, elapsed, bad, err := h.enrollRound(ctx, s)
			if err != nil {
				return nil, err
			}
			failed += bad
			lat[s] = append(lat[s], l...)
			rate[s] = append(rate[s], float64(h.cfg.Enrolls)/elapsed.Seconds())
			extra := ""
			if s == tuttiAsync {
				lags, err := h.enrollStartLags(ctx)
				if err != nil {
					return nil, err
				}
				startLag = append(startLag, lags...)
				extra = fmt.Sprintf(", answer to run started p50 %.0f ms, p99 %.0f ms", ms(percentile(lags, 50)), ms(percentile(lags, 99)))
			}
			h.cfg.logf("enroll round %d, %s: %.1f/s, p50 %.0f ms, p99 %.0f ms%s%s", round, s, rate[s][len(rate[s])-1],
				ms(percentile(l, 50)), ms(percentile(l, 99)), extra, map[bool]string{true: fmt.Sprintf(", %d failed", bad), false: ""}[bad > 0])
		}
	}
	h.enrollFailed = failed
	detail := "hand-written: ExecuteWorkflow straight from the clients"
	if failed > 0 {
		detail += fmt.Sprintf("; %d API calls did not answer 201 (202 with respond-async)", failed)
	}
	return []Figure{
		{Name: fmt.Sprintf("enroll rate at %d clients (API vs direct start)", h.cfg.Clients), Unit: "/s",
			Tutti: median(rate[tutti]), Hand: median(rate[hand]), Detail: "median of rounds"},
		{Name: "enroll latency p50", Unit: "ms", Tutti: ms(percentile(lat[tutti], 50)), Hand: ms(percentile(lat[hand], 50))},
		{Name: "enroll latency p99", Unit: "ms", Tutti: ms(percentile(lat[tutti], 99)), Hand: ms(percentile(lat[hand], 99)),
			Detail: detail + "; answered once the run started (201)"},
		{Name: fmt.Sprintf("enroll rate at %d clients, Prefer: respond-async", h.cfg.Clients), Unit: "/s",
			Tutti: median(rate[tuttiAsync]), Hand: median(rate[hand]), Detail: "median of rounds"},
		{Name: "enroll latency p50, Prefer: respond-async", Unit: "ms", Tutti: ms(percentile(lat[tuttiAsync], 50)), Hand: ms(percentile(lat[hand], 50))},
		{Name: "enroll latency p99, Prefer: respond-async", Unit: "ms", Tutti: ms(percentile(lat[tuttiAsync], 99)), Hand: ms(percentile(lat[hand], 99)),
			Detail: fmt.Sprintf("202 once stored; the dispatcher started the runs %.0f ms (p50) and %.0f ms (p99) after their enrollments were stored",
				ms(percentile(startLag, 50)), ms(percentile(startLag, 99))),
			Target: "< 250 ms", Meets: tuttiBelow(250)},
	}, nil
}

// enrollStartLags reads how long after being stored the dispatcher started
// each run enrolled with Prefer: respond-async since the last call (the
// 'enroll' deliveries' done_at - created_at), and forgets them.
func (h *harness) enrollStartLags(ctx context.Context) ([]time.Duration, error) {
	rows, err := h.store.Pool().Query(ctx, `
		DELETE FROM deliveries WHERE kind = 'enroll' AND done_at IS NOT NULL
		RETURNING extract(epoch FROM done_at - created_at)::float8`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (time.Duration, error) {
		var s float64
		err := r.Scan(&s)
		return time.Duration(s * float64(time.Second)), err
	})
}

// enrollRound enrolls Enrolls fresh contacts in the parked journey, then
// waits (untimed) until their runs are parked so the next side starts on
// a quiet server. It returns each call's latency, the elapsed time and the
// calls that failed.
func (h *harness) enrollRound(ctx context.Context, s side) ([]time.Duration, time.Duration, int, error) {
	jv := h.journeys[journeyPark]
	contacts, err := h.newContacts(ctx, h.cfg.Enrolls)
	if err != nil {
		return nil, 0, 0, err
	}
	lat := make([]time.Duration, len(contacts))
	ok := make([]bool, len(contacts))
	runs := make([]run, len(contacts))
	t0 := time.Now()
	err = parallel(ctx, len(contacts), h.cfg.Clients, func(ctx context.Context, i int) error {
		t := time.Now()
		switch s {
		case tutti, tuttiAsync:
			code, err := h.postEnrollment(ctx, jv.JourneyID, contacts[i], s == tuttiAsync)
			if err != nil {
				return err
			}
			ok[i] = code == map[side]int{tutti: http.StatusCreated, tuttiAsync: http.StatusAccepted}[s]
			runs[i] = run{id: workflows.JourneyWorkflowID(jv.JourneyID, contacts[i])}
		case hand:
			wr, err := h.tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "hand/" + jv.JourneyID + "/" + contacts[i], TaskQueue: workflows.TaskQueue},
				Handwritten, HandInput{EnrollmentID: fmt.Sprintf("e_bench_%d", h.runSeq.Add(1)), ContactID: contacts[i],
					JourneyID: jv.JourneyID, Version: jv.Version, Steps: jv.Spec.Steps, Goal: jv.Spec.Goal.Event})
			if err != nil {
				return err
			}
			ok[i] = true
			runs[i] = run{id: wr.GetID(), runID: wr.GetRunID()}
		}
		lat[i] = time.Since(t)
		return nil
	})
	elapsed := time.Since(t0)
	if err != nil {
		return nil, 0, 0, err
	}
	bad := 0
	var started []run
	for i, good := range ok {
		if good {
			started = append(started, runs[i])
		} else {
			bad++
		}
	}
	return lat, elapsed, bad, h.waitParked(ctx, started)
}

func (h *harness) postEnrollment(ctx context.Context, journeyID, contactID string, async bool) (int, error) {
	body, _ := json.Marshal(map[string]string{"contact_id": contactID})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.apiURL+"/v1/journeys/"+journeyID+"/enrollments", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	if async {
		req.Header.Set("Prefer", "respond-async")
	}
	req.Header.Set("Authorization", "Bearer "+apiToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var discard bytes.Buffer
	_, _ = discard.ReadFrom(resp.Body)
	return resp.StatusCode, nil
}

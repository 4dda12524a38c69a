package chaos

// The burst: API calls, contacts, enrollments, the kill schedule, and the
// wait for every run to close.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.temporal.io/api/workflowservice/v1"
)

// call makes one API call and returns the status and body; transport
// errors come back as status 0.
func (h *harness) call(ctx context.Context, method, path, ctype string, body []byte) (int, []byte) {
	req, err := http.NewRequestWithContext(ctx, method, h.apiURL+path, bytes.NewReader(body))
	if err != nil {
		return 0, []byte(err.Error())
	}
	req.Header.Set("Authorization", "Bearer "+apiToken)
	req.Header.Set("Content-Type", ctype)
	resp, err := h.http.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// callRetry repeats a call while the answer is a transport error or a 5xx
// (the harness kills things, so the API may be briefly unavailable),
// bounded by bound. It returns the last answer.
func (h *harness) callRetry(ctx context.Context, bound time.Duration, method, path, ctype string, body []byte) (int, []byte) {
	deadline := time.Now().Add(bound)
	backoff := 250 * time.Millisecond
	for {
		status, b := h.call(ctx, method, path, ctype, body)
		if (status != 0 && status < 500) || time.Now().After(deadline) || ctx.Err() != nil {
			return status, b
		}
		select {
		case <-ctx.Done():
			return status, b
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func (h *harness) publish(ctx context.Context) error {
	status, b := h.callRetry(ctx, time.Minute, http.MethodPost, "/v1/journeys", "application/yaml", []byte(journeyYAML(h.steps, h.cfg.Wait)))
	if status != http.StatusCreated {
		return fmt.Errorf("publishing the chaos journey: HTTP %d: %s", status, b)
	}
	return nil
}

// contactSpec is a contact to create: ids and addresses follow from its
// number, so they never collide.
func contactSpec(i int) (external, email, phone string) {
	external = fmt.Sprintf("chaos-%05d", i)
	return external, external + "@example.com", fmt.Sprintf("+1415555%04d", i%10000)
}

// forEach runs fn for 0..n-1 on conc goroutines.
func forEach(ctx context.Context, n, conc int, fn func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range max(conc, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				fn(i)
			}
		}()
	}
	wg.Wait()
}

// createContacts creates the contacts with email consent and confirmed SMS
// consent, before any chaos starts.
func (h *harness) createContacts(ctx context.Context) ([]Contact, error) {
	if h.cfg.Contacts > 10000 {
		return nil, errors.New("contacts: at most 10000 (the phone numbers would repeat)")
	}
	out := make([]Contact, h.cfg.Contacts)
	var mu sync.Mutex
	var errs []error
	forEach(ctx, h.cfg.Contacts, h.cfg.Concurrency, func(i int) {
		fail := func(err error) {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		}
		external, email, phone := contactSpec(i)
		body, _ := json.Marshal(map[string]any{"external_id": external, "email": email, "phone": phone, "time_zone": "UTC",
			"attributes": map[string]any{"first_name": fmt.Sprintf("Contact%d", i)}})
		status, b := h.callRetry(ctx, time.Minute, http.MethodPost, "/v1/contacts", "application/json", body)
		var created struct {
			Contact struct {
				ID    string `json:"id"`
				Email string `json:"email"`
				Phone string `json:"phone"`
			} `json:"contact"`
		}
		if status/100 != 2 || json.Unmarshal(b, &created) != nil || created.Contact.ID == "" {
			fail(fmt.Errorf("creating contact %s: HTTP %d: %s", external, status, b))
			return
		}
		c := created.Contact
		for _, consent := range []map[string]any{
			{"channel": "email", "status": "granted", "source": "chaos"},
			{"channel": "sms", "status": "granted", "source": "chaos", "double_opt_in_confirmed": true},
		} {
			body, _ := json.Marshal(consent)
			status, b := h.callRetry(ctx, time.Minute, http.MethodPost, "/v1/contacts/"+c.ID+"/consent", "application/json", body)
			if status != http.StatusOK {
				fail(fmt.Errorf("consent for %s: HTTP %d: %s", c.ID, status, b))
				return
			}
		}
		out[i] = Contact{ID: c.ID, Email: c.Email, Phone: c.Phone}
	})
	if len(errs) > 0 {
		return nil, fmt.Errorf("%d contacts could not be set up; first: %w", len(errs), errs[0])
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	h.say("created %d contacts with email and confirmed SMS consent", len(out))
	return out, nil
}

// enroll starts the journey for every contact. A 409 means an earlier
// attempt did start it (its answer was lost to the chaos).
func (h *harness) enroll(ctx context.Context, contacts []Contact) ([]Contact, int) {
	ok := make([]bool, len(contacts))
	var done atomic.Int64
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(15 * time.Second):
			}
			accepted := -1
			if s, err := h.fakeStats(ctx); err == nil {
				accepted = s.SendGrid.Accepted + s.Twilio.Accepted
			}
			h.say("enrolling: %d/%d calls done; %d messages accepted by the fake so far", done.Load(), len(contacts), accepted)
		}
	}()
	forEach(ctx, len(contacts), h.cfg.Concurrency, func(i int) {
		defer done.Add(1)
		body, _ := json.Marshal(map[string]string{"contact_id": contacts[i].ID})
		status, b := h.callRetry(ctx, 5*time.Minute, http.MethodPost, "/v1/journeys/"+journeyID+"/enrollments", "application/json", body)
		switch status {
		case http.StatusCreated, http.StatusConflict:
			ok[i] = true
		default:
			h.say("enrolling %s failed: HTTP %d: %s", contacts[i].ID, status, bytes.TrimSpace(b))
		}
	})
	var enrolled []Contact
	for i, c := range contacts {
		if ok[i] {
			enrolled = append(enrolled, c)
		}
	}
	return enrolled, len(contacts) - len(enrolled)
}

// --- the kill schedule ----------------------------------------------------

type planned struct {
	kind string  // worker, temporal or pg
	at   float64 // fraction of expected messages accepted
}

// plan is the schedule: Config.Schedule as given, or the kills spread evenly
// between 10% and 80% of the burst, interleaved.
func (h *harness) plan() ([]planned, error) {
	if s := strings.TrimSpace(h.cfg.Schedule); s != "" {
		var out []planned
		for _, part := range strings.Split(s, ",") {
			kind, pct, ok := strings.Cut(strings.TrimSpace(part), "@")
			v, err := strconv.ParseFloat(pct, 64)
			if !ok || err != nil || v < 0 || v > 100 || (kind != "worker" && kind != "temporal" && kind != "pg") {
				return nil, fmt.Errorf("schedule: want kind@percent,... with kind worker, temporal or pg; got %q", part)
			}
			out = append(out, planned{kind, v / 100})
		}
		sort.SliceStable(out, func(i, j int) bool { return out[i].at < out[j].at })
		return out, nil
	}
	// Spread each kind evenly over the burst, offset so different kinds
	// do not bunch up: with 3 worker kills, 1 PostgreSQL restart and 1
	// Temporal kill, worker, pg, worker, temporal, worker.
	type slot struct {
		kind string
		pos  float64
	}
	var slots []slot
	for _, k := range []struct {
		kind   string
		n      int
		offset float64
	}{{"worker", h.cfg.WorkerKills, 0.5}, {"pg", h.cfg.PGRestarts, 0.3}, {"temporal", h.cfg.TemporalKills, 0.7}} {
		for i := range k.n {
			slots = append(slots, slot{k.kind, (float64(i) + k.offset) / float64(k.n)})
		}
	}
	sort.SliceStable(slots, func(i, j int) bool { return slots[i].pos < slots[j].pos })
	kinds := make([]string, len(slots))
	for i, s := range slots {
		kinds[i] = s.kind
	}
	out := make([]planned, len(kinds))
	for i, k := range kinds {
		at := 0.10
		if len(kinds) > 1 {
			at += 0.70 * float64(i) / float64(len(kinds)-1)
		}
		out[i] = planned{k, at}
	}
	return out, nil
}

// runSchedule fires each planned event once the fake has accepted its
// share of the expected messages, or EventEvery after the previous one.
func (h *harness) runSchedule(ctx context.Context, plan []planned, expected int) {
	if len(plan) == 0 {
		return
	}
	desc := make([]string, len(plan))
	for i, p := range plan {
		desc[i] = fmt.Sprintf("%s@%.0f%%", p.kind, p.at*100)
	}
	h.say("kill schedule: %s (by messages accepted; at most %s apart)", strings.Join(desc, ", "), h.cfg.EventEvery)
	last := time.Now()
	for _, p := range plan {
		for {
			accepted := 0
			if s, err := h.fakeStats(ctx); err == nil {
				accepted = s.SendGrid.Accepted + s.Twilio.Accepted
			}
			reached := float64(accepted) >= p.at*float64(expected)
			if reached || time.Since(last) >= h.cfg.EventEvery {
				why := "threshold"
				if !reached {
					why = "time"
				}
				h.fire(ctx, p.kind, fmt.Sprintf("accepted %d/%d, by %s", accepted, expected, why))
				last = time.Now()
				break
			}
			select {
			case <-ctx.Done():
				h.event("schedule stopped before %s@%.0f%%", p.kind, p.at*100)
				return
			case <-time.After(250 * time.Millisecond):
			}
		}
	}
}

func (h *harness) fire(ctx context.Context, kind, why string) {
	switch kind {
	case "worker":
		if pid, ok := h.sigkill(h.worker, "worker"); ok {
			h.event("SIGKILLed the worker (pid %d; %s); the supervisor restarts it in %s", pid, why, h.worker.restartDelay)
		}
	case "temporal":
		pid, ok := h.sigkill(h.temporal, "Temporal")
		if !ok {
			return
		}
		h.event("SIGKILLed the Temporal dev server (pid %d; %s); restarting it on the same file DB in %s", pid, why, h.temporal.restartDelay)
		began := time.Now()
		// The supervisor restarts it; wait until it serves again.
		select {
		case <-ctx.Done():
			return
		case <-time.After(h.temporal.restartDelay):
		}
		if err := h.waitTemporal(ctx); err != nil {
			if ctx.Err() == nil {
				h.event("Temporal did not come back: %v", err)
			}
			return
		}
		h.event("Temporal dev server back (pid %d) after %.1fs", h.temporal.pid(), time.Since(began).Seconds())
	case "pg":
		began := time.Now()
		if err := h.restartPostgres(ctx); err != nil {
			h.event("PostgreSQL restart failed: %v", err)
			return
		}
		h.event("restarted PostgreSQL with pg_ctl restart -m immediate (%s) in %.1fs", why, time.Since(began).Seconds())
	}
}

// sigkill kills p and returns the pid it had; ok is false when the kill
// failed, which is recorded as an event naming p as what.
func (h *harness) sigkill(p *proc, what string) (pid int, ok bool) {
	pid = p.pid()
	if err := p.kill(); err != nil {
		h.event("%s SIGKILL failed: %v", what, err)
		return pid, false
	}
	return pid, true
}

// --- waiting for the runs -------------------------------------------------

// waitClosed waits until Temporal has no running chaos journey and the
// schedule is done, bounded by Config.Timeout.
func (h *harness) waitClosed(ctx context.Context, enrolled []Contact, chaosDone <-chan struct{}) {
	deadline := time.Now().Add(h.cfg.Timeout)
	lastReport := time.Time{}
	for {
		running, err := h.countRunning(ctx)
		scheduleDone := false
		select {
		case <-chaosDone:
			scheduleDone = true
		default:
		}
		if time.Since(lastReport) >= 15*time.Second {
			accepted := -1
			if s, err := h.fakeStats(ctx); err == nil {
				accepted = s.SendGrid.Accepted + s.Twilio.Accepted
			}
			rs := strconv.FormatInt(running, 10)
			if err != nil {
				rs = "? (" + err.Error() + ")"
			}
			h.say("progress: %d/%d messages accepted by the fake, %s of %d journeys still running", accepted, len(enrolled)*len(h.steps), rs, len(enrolled))
			lastReport = time.Now()
		}
		if err == nil && running == 0 && scheduleDone {
			h.say("every journey has closed")
			return
		}
		if time.Now().After(deadline) {
			h.say("gave up waiting after %s: %s journeys still running", h.cfg.Timeout, strconv.FormatInt(running, 10))
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Second):
		}
	}
}

func (h *harness) countRunning(ctx context.Context) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := h.tc.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{
		Namespace: "default",
		Query:     fmt.Sprintf(`JourneyId = %q AND ExecutionStatus = "Running"`, journeyID),
	})
	if err != nil {
		return -1, err
	}
	return resp.GetCount(), nil
}

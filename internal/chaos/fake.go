package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tutti-dev/tutti/internal/provider"
	"github.com/tutti-dev/tutti/internal/provider/providertest"
)

// FakeConfig configures a FakeProvider.
type FakeConfig struct {
	SendGridAPIKey   string
	TwilioAccountSID string
	TwilioAuthToken  string
	// RecordFile is the durable record of accepted messages ("" keeps it in
	// memory). An existing file is loaded: a restarted fake remembers.
	RecordFile string
	// Sync flushes every record to disk before the fake answers.
	Sync   bool
	Faults Faults
	// Seed seeds the fault draws (0: random).
	Seed uint64
}

// FakeProvider is a SendGrid (POST /v3/mail/send) and Twilio
// (/2010-04-01/Accounts/{AccountSid}/Messages.json, POST and GET, and GET
// .../Messages/{Sid}.json) API server
// that injects faults. Requests are checked with providertest's wire rules
// first, so a malformed request always gets the provider's 4xx; faults apply
// to well-formed ones. Control endpoints under /_chaos/ report what it did:
//
//	GET /_chaos/stats     request and fault counters (Stats)
//	GET /_chaos/records   every accepted message ([]Record); ?provider= filters;
//	                      ?abandoned=1: the requests the client left before acceptance
//	GET /_chaos/faults    the fault rates; PUT replaces them
type FakeProvider struct {
	cfg FakeConfig
	log *recordLog

	mu     sync.Mutex
	faults Faults
	rng    *rand.Rand
	stats  Stats
	now    func() time.Time
}

// ProviderStats counts one provider's requests to its send endpoint.
type ProviderStats struct {
	Requests    int `json:"requests"`
	Rejected    int `json:"rejected"` // refused by the wire checks (4xx)
	Error500    int `json:"error_500"`
	Throttle429 int `json:"throttle_429"`
	Slow        int `json:"slow"`
	Accepted    int `json:"accepted"`
	Hang        int `json:"hang"`
	Drop        int `json:"drop"`
	// ClientGone counts accepted messages whose answer the client never
	// got because it hung up first (a killed worker, or a client timeout).
	ClientGone int `json:"client_gone"`
	// GoneBeforeAccept counts slow requests the client abandoned before the
	// message was accepted: nothing was sent.
	GoneBeforeAccept int `json:"gone_before_accept"`
}

// Stats is what GET /_chaos/stats returns.
type Stats struct {
	SendGrid ProviderStats `json:"sendgrid"`
	Twilio   ProviderStats `json:"twilio"`
	// TwilioListRequests counts GETs of the Messages list (read-backs), and
	// TwilioListFaults those answered with a fault.
	TwilioListRequests int    `json:"twilio_list_requests"`
	TwilioListFaults   int    `json:"twilio_list_faults"`
	RecordError        string `json:"record_error,omitempty"`
}

// NewFakeProvider opens the record file and returns the server.
func NewFakeProvider(cfg FakeConfig) (*FakeProvider, error) {
	if err := cfg.Faults.Validate(); err != nil {
		return nil, fmt.Errorf("faults: %w", err)
	}
	l, err := openRecordLog(cfg.RecordFile, cfg.Sync)
	if err != nil {
		return nil, err
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	f := &FakeProvider{cfg: cfg, log: l, faults: cfg.Faults, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), now: time.Now}
	for _, r := range l.Records() {
		f.stats.provider(r.Provider).Accepted++
	}
	return f, nil
}

// Close closes the record file.
func (f *FakeProvider) Close() error { return f.log.Close() }

// Records returns every accepted message, in acceptance order.
func (f *FakeProvider) Records() []Record { return f.log.Records() }

// Stats returns the counters.
func (f *FakeProvider) Stats() Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.stats
	if err := f.log.Err(); err != nil {
		s.RecordError = err.Error()
	}
	return s
}

// SetFaults replaces the fault rates.
func (f *FakeProvider) SetFaults(fs Faults) error {
	if err := fs.Validate(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = fs
	return nil
}

func (s *Stats) provider(name string) *ProviderStats {
	if name == ProviderTwilio {
		return &s.Twilio
	}
	return &s.SendGrid
}

func (f *FakeProvider) count(provider string, fn func(*ProviderStats)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f.stats.provider(provider))
}

// draw picks the fault for one request under the current rates.
func (f *FakeProvider) draw(send bool) (string, time.Duration, Faults) {
	f.mu.Lock()
	defer f.mu.Unlock()
	kind, delay := f.faults.draw(f.rng, send)
	return kind, delay, f.faults
}

// Handler serves the provider APIs and the control endpoints.
func (f *FakeProvider) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(providertest.SendGridMailSendPath, f.sendGrid)
	mux.HandleFunc("/2010-04-01/Accounts/{account}/Messages.json", f.twilio)
	mux.HandleFunc("GET /2010-04-01/Accounts/{account}/Messages/{sid}", f.twilioFetch)
	mux.HandleFunc("/2010-04-01/", func(w http.ResponseWriter, r *http.Request) { providertest.TwilioNotFound(r.URL.Path).Write(w) })
	mux.HandleFunc("GET /_chaos/stats", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, f.Stats()) })
	mux.HandleFunc("GET /_chaos/records", func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Query().Get("provider")
		keep := func(rec *Record) bool { return p == "" || rec.Provider == p }
		if r.URL.Query().Get("abandoned") == "1" {
			writeJSON(w, http.StatusOK, f.log.AbandonedRecords(keep))
			return
		}
		writeJSON(w, http.StatusOK, f.log.Filter(keep))
	})
	mux.HandleFunc("GET /_chaos/faults", func(w http.ResponseWriter, _ *http.Request) {
		f.mu.Lock()
		fs := f.faults
		f.mu.Unlock()
		writeJSON(w, http.StatusOK, fs)
	})
	mux.HandleFunc("PUT /_chaos/faults", func(w http.ResponseWriter, r *http.Request) {
		var fs Faults
		if err := json.NewDecoder(r.Body).Decode(&fs); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		if err := f.SetFaults(fs); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, fs)
	})
	mux.HandleFunc("GET /_chaos/healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// success is the answer to an accepted message, written unless a fault
// says otherwise.
type success struct {
	status int
	header http.Header
	body   []byte
}

func (s success) write(w http.ResponseWriter) {
	for k, vs := range s.header {
		w.Header()[k] = vs
	}
	w.WriteHeader(s.status)
	_, _ = w.Write(s.body)
}

func (f *FakeProvider) sendGrid(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.count(ProviderSendGrid, func(s *ProviderStats) { s.Requests++ })
	m, werr := providertest.CheckSendGridMailSend(r, body, f.cfg.SendGridAPIKey)
	if werr != nil {
		f.count(ProviderSendGrid, func(s *ProviderStats) { s.Rejected++ })
		werr.Write(w)
		return
	}
	rec := Record{Provider: ProviderSendGrid, ID: providertest.NewSendGridMessageID(), Subject: m.Subject, CustomArgs: m.CustomArgs}
	if m.From != nil {
		rec.From = m.From.Email
	}
	if len(m.Personalizations) > 0 && len(m.Personalizations[0].To) > 0 {
		rec.To = m.Personalizations[0].To[0].Email
	}
	if rec.Subject == "" && len(m.Personalizations) > 0 {
		rec.Subject = m.Personalizations[0].Subject
	}
	for _, c := range m.Content {
		if c.Type == "text/plain" {
			rec.Body = c.Value
		}
	}
	rec.MessageID = m.CustomArgs[provider.CustomArgMessageID]
	// SendGrid's 202 has an empty body; the id travels in the header.
	ok := success{status: http.StatusAccepted, header: http.Header{"X-Message-Id": {rec.ID}}}
	f.send(w, r, rec, ok, func(status int, h http.Header) *providertest.WireError {
		if status == http.StatusTooManyRequests {
			// SendGrid's rate-limit answers carry X-RateLimit-* as well.
			h.Set("X-RateLimit-Limit", "600")
			h.Set("X-RateLimit-Remaining", "0")
			h.Set("X-RateLimit-Reset", strconv.FormatInt(f.now().Add(time.Second).Unix(), 10))
		}
		return providertest.SendGridStatusError(status, h)
	})
}

func (f *FakeProvider) twilio(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if r.Method == http.MethodGet {
		f.twilioList(w, r)
		return
	}
	f.count(ProviderTwilio, func(s *ProviderStats) { s.Requests++ })
	req, werr := providertest.CheckTwilioCreateMessage(r, body, f.cfg.TwilioAccountSID, f.cfg.TwilioAuthToken)
	if werr != nil {
		f.count(ProviderTwilio, func(s *ProviderStats) { s.Rejected++ })
		werr.Write(w)
		return
	}
	msg := providertest.NewTwilioMessage(req, f.now())
	resource, _ := json.Marshal(msg)
	rec := Record{Provider: ProviderTwilio, ID: msg.SID, To: req.To, From: req.From, Body: req.Body}
	if rec.From == "" {
		rec.From = req.MessagingServiceSID
	}
	ok := success{status: http.StatusCreated, header: http.Header{"Content-Type": {providertest.TwilioJSON}}, body: resource}
	f.send(w, r, rec, ok, providertest.TwilioStatusError)
}

// send runs the fault model for one well-formed send request: maybe a 500
// or 429 (nothing accepted), maybe slow, and otherwise the message is
// recorded and then answered, hung or dropped.
func (f *FakeProvider) send(w http.ResponseWriter, r *http.Request, rec Record, ok success, failure func(int, http.Header) *providertest.WireError) {
	kind, delay, fs := f.draw(true)
	p := rec.Provider
	switch kind {
	case fault500:
		f.count(p, func(s *ProviderStats) { s.Error500++ })
		sleepCtx(r.Context(), delay)
		failure(http.StatusInternalServerError, http.Header{}).Write(w)
		return
	case fault429:
		f.count(p, func(s *ProviderStats) { s.Throttle429++ })
		sleepCtx(r.Context(), delay)
		failure(http.StatusTooManyRequests, http.Header{"Retry-After": {strconv.Itoa(fs.RetryAfterSeconds)}}).Write(w)
		return
	}

	// A slow answer accepts the message somewhere within its delay.
	var before, after time.Duration
	if delay > 0 {
		f.count(p, func(s *ProviderStats) { s.Slow++ })
		rec.Fault = faultSlow
		f.mu.Lock()
		before = time.Duration(f.rng.Float64() * float64(delay))
		f.mu.Unlock()
		after = delay - before
	}
	if !sleepCtx(r.Context(), before) {
		// Nothing was sent, but the sender cannot know: kept so the tally
		// can tell a message cut off mid-request from one never attempted.
		f.count(p, func(s *ProviderStats) { s.GoneBeforeAccept++ })
		f.log.Abandoned(rec)
		return
	}
	if kind != faultNone {
		rec.Fault = kind
	}
	rec, err := f.log.Accept(rec)
	if err != nil {
		failure(http.StatusInternalServerError, http.Header{}).Write(w)
		return
	}
	f.count(p, func(s *ProviderStats) { s.Accepted++ })

	switch kind {
	case faultDrop:
		f.count(p, func(s *ProviderStats) { s.Drop++ })
		closeConn(w)
		f.log.Answered(rec.Seq, AnswerDropped)
		return
	case faultHang:
		f.count(p, func(s *ProviderStats) { s.Hang++ })
		t := time.NewTimer(time.Duration(fs.HangMax))
		defer t.Stop()
		select {
		case <-r.Context().Done():
			f.count(p, func(s *ProviderStats) { s.ClientGone++ })
			f.log.Answered(rec.Seq, AnswerClientGone)
		case <-t.C:
			closeConn(w)
			f.log.Answered(rec.Seq, AnswerAbandoned)
		}
		return
	}
	if !sleepCtx(r.Context(), after) || r.Context().Err() != nil {
		f.count(p, func(s *ProviderStats) { s.ClientGone++ })
		f.log.Answered(rec.Seq, AnswerClientGone)
		return
	}
	ok.write(w)
	f.log.Answered(rec.Seq, AnswerSent)
}

// sleepCtx sleeps d unless ctx ends first; it reports whether it slept the
// whole time.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// closeConn drops the connection without an answer. The fake serves
// HTTP/1.1, whose connections can be hijacked.
func closeConn(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// Cannot happen on HTTP/1; answering nothing is the next best thing.
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}

// dateFilter is one DateSent, DateSent< or DateSent> parameter.
type dateFilter struct {
	op      byte // '=', '<' or '>'
	at      time.Time
	dayOnly bool // given as YYYY-MM-DD
}

func (d dateFilter) match(sent time.Time) bool {
	if d.dayOnly || d.op == '=' {
		day := func(t time.Time) string { return t.UTC().Format(time.DateOnly) }
		switch d.op {
		case '<':
			return day(sent) <= day(d.at)
		case '>':
			return day(sent) >= day(d.at)
		}
		return day(sent) == day(d.at)
	}
	if d.op == '<' {
		return !sent.After(d.at)
	}
	return !sent.Before(d.at)
}

// parseDateFilters reads Twilio's date filters: YYYY-MM-DD in GMT (what the
// docs show) or an RFC 3339 time (what twilio-go sends). DateSent matches
// the day; DateSent< and DateSent> are "on or before" and "on or after":
// the day for a date, the instant for a time.
func parseDateFilters(q map[string][]string) ([]dateFilter, string) {
	var out []dateFilter
	for key, op := range map[string]byte{"DateSent": '=', "DateSent<": '<', "DateSent>": '>'} {
		raw := ""
		if vs := q[key]; len(vs) > 0 {
			raw = vs[0]
		}
		if raw == "" {
			continue
		}
		if t, err := time.Parse(time.DateOnly, raw); err == nil {
			out = append(out, dateFilter{op: op, at: t, dayOnly: true})
			continue
		}
		t, err := time.Parse(time.RFC3339, raw)
		if err != nil {
			return nil, fmt.Sprintf("%s: want YYYY-MM-DD or an RFC 3339 time, got %q", key, raw)
		}
		out = append(out, dateFilter{op: op, at: t})
	}
	return out, ""
}

// twilioList serves GET Messages.json: the account's messages, most recently
// sent first, filtered by To, From and the DateSent filters, in pages of
// PageSize with Twilio's envelope. next_page_uri carries a PageToken naming
// the last message of the page, so paging is stable while messages arrive.
func (f *FakeProvider) twilioList(w http.ResponseWriter, r *http.Request) {
	if werr := providertest.CheckTwilioAuth(r, f.cfg.TwilioAccountSID, f.cfg.TwilioAuthToken); werr != nil {
		werr.Write(w)
		return
	}
	f.mu.Lock()
	f.stats.TwilioListRequests++
	f.mu.Unlock()
	kind, delay, fs := f.draw(false)
	if !fs.Reads {
		kind, delay = faultNone, 0
	}
	if !sleepCtx(r.Context(), delay) {
		return
	}
	switch kind {
	case fault500, fault429:
		f.mu.Lock()
		f.stats.TwilioListFaults++
		f.mu.Unlock()
		h := http.Header{}
		status := http.StatusInternalServerError
		if kind == fault429 {
			status = http.StatusTooManyRequests
			h.Set("Retry-After", strconv.Itoa(fs.RetryAfterSeconds))
		}
		providertest.TwilioStatusError(status, h).Write(w)
		return
	}

	q := r.URL.Query()
	filters, bad := parseDateFilters(q)
	if bad != "" {
		providertest.TwilioStatusError(http.StatusBadRequest, nil).Write(w)
		return
	}
	to, from := q.Get("To"), q.Get("From")
	recs := f.log.Filter(func(rec *Record) bool {
		if rec.Provider != ProviderTwilio || (to != "" && rec.To != to) || (from != "" && rec.From != from) {
			return false
		}
		sent := rec.AcceptedAt.Truncate(time.Second)
		for _, d := range filters {
			if !d.match(sent) {
				return false
			}
		}
		return true
	})
	sort.SliceStable(recs, func(i, j int) bool {
		a, b := recs[i].AcceptedAt.Truncate(time.Second), recs[j].AcceptedAt.Truncate(time.Second)
		if !a.Equal(b) {
			return a.After(b)
		}
		return recs[i].Seq > recs[j].Seq
	})

	size := providertest.TwilioPageSize(q)
	page, _ := strconv.Atoi(q.Get("Page"))
	if page < 0 {
		page = 0
	}
	start := page * size
	if tok := q.Get("PageToken"); strings.HasPrefix(tok, "PA") {
		for i, rec := range recs {
			if rec.ID == tok[2:] {
				start = i + 1
				break
			}
		}
	}
	start = min(start, len(recs))
	end := min(start+size, len(recs))

	env := providertest.TwilioPage{Page: page, PageSize: size, Start: start, End: max(start, end-1), Messages: []providertest.TwilioMessage{}}
	for _, rec := range recs[start:end] {
		env.Messages = append(env.Messages, listedMessage(f.cfg.TwilioAccountSID, rec))
	}
	env.URI = listURI(r.URL.Path, to, from, q, size, page, q.Get("PageToken"))
	env.FirstPageURI = listURI(r.URL.Path, to, from, q, size, 0, "")
	if end < len(recs) {
		next := listURI(r.URL.Path, to, from, q, size, page+1, "PA"+recs[end-1].ID)
		env.NextPageURI = &next
	}
	if page > 0 {
		prev := listURI(r.URL.Path, to, from, q, size, page-1, "")
		env.PreviousPageURI = &prev
	}
	b, _ := json.Marshal(env)
	w.Header().Set("Content-Type", providertest.TwilioJSON)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// twilioFetch serves GET .../Messages/{Sid}.json: one message the fake
// accepted, as the list shows it, or Twilio's 404.
func (f *FakeProvider) twilioFetch(w http.ResponseWriter, r *http.Request) {
	if werr := providertest.CheckTwilioAuth(r, f.cfg.TwilioAccountSID, f.cfg.TwilioAuthToken); werr != nil {
		werr.Write(w)
		return
	}
	sid := providertest.TwilioMessageSID(r.URL.Path)
	recs := f.log.Filter(func(rec *Record) bool { return rec.Provider == ProviderTwilio && rec.ID == sid })
	if sid == "" || len(recs) == 0 {
		providertest.TwilioNotFound(r.URL.Path).Write(w)
		return
	}
	b, _ := json.Marshal(listedMessage(f.cfg.TwilioAccountSID, recs[0]))
	w.Header().Set("Content-Type", providertest.TwilioJSON)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// listedMessage is an accepted message as the list shows it later: handed
// to the carrier at acceptance, so status "sent" with date_sent set.
func listedMessage(account string, rec Record) providertest.TwilioMessage {
	date := rec.AcceptedAt.UTC().Format(time.RFC1123Z)
	m := providertest.NewTwilioMessage(providertest.TwilioRequest{AccountSID: account, To: rec.To, From: rec.From, Body: rec.Body}, rec.AcceptedAt)
	// NewTwilioMessage mints a SID; the listed message keeps the one the
	// sender was given.
	base := fmt.Sprintf("/2010-04-01/Accounts/%s/Messages/%s", m.AccountSID, rec.ID)
	m.SID, m.URI = rec.ID, base+".json"
	m.SubresourceURIs = map[string]string{"media": base + "/Media.json", "feedback": base + "/Feedback.json"}
	m.Status, m.DateSent, m.DateUpdated = "sent", &date, date
	return m
}

func listURI(path, to, from string, q map[string][]string, size, page int, token string) string {
	var parts []string
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+"="+url.QueryEscape(v))
		}
	}
	add("To", to)
	add("From", from)
	for _, k := range []string{"DateSent", "DateSent<", "DateSent>"} {
		if vs := q[k]; len(vs) > 0 {
			add(url.QueryEscape(k), vs[0])
		}
	}
	add("PageSize", strconv.Itoa(size))
	add("Page", strconv.Itoa(page))
	add("PageToken", token)
	return path + "?" + strings.Join(parts, "&")
}

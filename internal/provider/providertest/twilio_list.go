package providertest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"
)

// twilioPage is Twilio's list envelope for Messages.
type twilioPage struct {
	End             int             `json:"end"`
	FirstPageURI    string          `json:"first_page_uri"`
	Messages        []twilioMessage `json:"messages"`
	NextPageURI     *string         `json:"next_page_uri"`
	Page            int             `json:"page"`
	PageSize        int             `json:"page_size"`
	PreviousPageURI *string         `json:"previous_page_uri"`
	Start           int             `json:"start"`
	URI             string          `json:"uri"`
}

// Twilio's page-size bounds for list reads.
const (
	twilioDefaultPageSize = 50
	twilioMaxPageSize     = 1000
)

// serveList answers GET .../Messages.json.
func (f *FakeTwilio) serveList(w http.ResponseWriter, r *http.Request, rec TwilioRequest) {
	rec.Query = r.URL.Query()
	rp, refused := f.gate(r, rec)
	if !refused {
		if sr, ok := f.readScript.pop(); ok {
			rp = scriptedReply(sr, defaultTwilioBody)
			rec.Fault = sr.Fault
		} else {
			rp = f.list(r.URL.Path, rec.Query)
		}
	}
	rec.Status = rp.status
	f.mu.Lock()
	f.reads = append(f.reads, rec)
	f.mu.Unlock()
	rp.write(f.t, w, f.stop)
}

// list filters, orders and pages the created messages.
func (f *FakeTwilio) list(path string, q url.Values) reply {
	filter, err := parseListFilter(q)
	if err != nil {
		return twilioReply(http.StatusBadRequest, TwilioError(20001, 400, err.Error()))
	}
	pageSize := twilioDefaultPageSize
	if v := q.Get("PageSize"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return twilioReply(http.StatusBadRequest, TwilioError(20001, 400, "Invalid PageSize"))
		}
		pageSize = min(n, twilioMaxPageSize)
	}
	page := 0
	if v := q.Get("Page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return twilioReply(http.StatusBadRequest, TwilioError(20001, 400, "Invalid Page"))
		}
		page = n
	}

	f.mu.Lock()
	var all []twilioMessage
	for _, m := range f.messages {
		if filter.match(m) {
			all = append(all, *m) // a copy: MarkSent may change the original
		}
	}
	f.mu.Unlock()
	// Newest first. Twilio documents date_sent order; an unsent message
	// (date_sent null) is taken at its creation time here, which keeps a
	// just-created message at the top, where a client looking for it after
	// an ambiguous call would find it first.
	slices.Reverse(all) // created oldest first, so ties keep newest creation first
	slices.SortStableFunc(all, func(a, b twilioMessage) int { return listTime(b).Compare(listTime(a)) })

	// PageToken, when given, is "PA" + the SID of the last message of the
	// previous page, so paging is stable while new messages arrive, as
	// Twilio's token is; Page alone is an offset.
	start := page * pageSize
	if tok := q.Get("PageToken"); tok != "" {
		i := slices.IndexFunc(all, func(m twilioMessage) bool { return "PA"+m.SID == tok })
		if i < 0 {
			return twilioReply(http.StatusBadRequest, TwilioError(20001, 400, "Invalid PageToken"))
		}
		start = i + 1
	}
	start = min(start, len(all))
	end := min(start+pageSize, len(all))

	filters := url.Values{}
	for _, k := range []string{"To", "From", "DateSent", "DateSent<", "DateSent>"} {
		if v, ok := q[k]; ok {
			filters[k] = v
		}
	}
	pageURI := func(n int, token string) string {
		v := url.Values{}
		for k, vs := range filters {
			v[k] = vs
		}
		v.Set("PageSize", strconv.Itoa(pageSize))
		v.Set("Page", strconv.Itoa(n))
		if token != "" {
			v.Set("PageToken", token)
		}
		return path + "?" + v.Encode()
	}
	p := twilioPage{
		FirstPageURI: pageURI(0, ""),
		Messages:     make([]twilioMessage, 0, end-start),
		Page:         page,
		PageSize:     pageSize,
		Start:        start,
		End:          max(start, end-1),
		URI:          pageURI(page, q.Get("PageToken")),
	}
	for i := start; i < end; i++ {
		p.Messages = append(p.Messages, all[i])
	}
	if end < len(all) {
		next := pageURI(page+1, "PA"+all[end-1].SID)
		p.NextPageURI = &next
	}
	if page > 0 {
		prev := pageURI(page-1, "")
		p.PreviousPageURI = &prev
	}
	b, _ := json.Marshal(p)
	return twilioReply(http.StatusOK, string(b))
}

func listTime(m twilioMessage) time.Time {
	if !m.sentAt.IsZero() {
		return m.sentAt
	}
	return m.createdAt
}

// listFilter is a list read's To, From and DateSent filters. DateSent
// compares whole GMT dates, as Twilio does, and never matches a message that
// has not been sent (date_sent null).
type listFilter struct {
	to, from                  string
	on, onOrBefore, onOrAfter *time.Time
}

func parseListFilter(q url.Values) (listFilter, error) {
	lf := listFilter{to: q.Get("To"), from: q.Get("From")}
	for key, dst := range map[string]**time.Time{"DateSent": &lf.on, "DateSent<": &lf.onOrBefore, "DateSent>": &lf.onOrAfter} {
		v := q.Get(key)
		if v == "" {
			continue
		}
		d, err := parseTwilioDate(v)
		if err != nil {
			return listFilter{}, fmt.Errorf("Invalid %s: %s", key, v)
		}
		*dst = &d
	}
	return lf, nil
}

// parseTwilioDate reads YYYY-MM-DD, or an RFC 3339 time (what twilio-go
// sends), as a GMT date.
func parseTwilioDate(v string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, err
	}
	return gmtDate(t), nil
}

func gmtDate(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

func (lf listFilter) match(m *twilioMessage) bool {
	if lf.to != "" && m.To != lf.to {
		return false
	}
	if lf.from != "" && (m.From == nil || *m.From != lf.from) {
		return false
	}
	if lf.on == nil && lf.onOrBefore == nil && lf.onOrAfter == nil {
		return true
	}
	if m.sentAt.IsZero() {
		return false
	}
	sent := gmtDate(m.sentAt)
	switch {
	case lf.on != nil && !sent.Equal(*lf.on):
		return false
	case lf.onOrBefore != nil && sent.After(*lf.onOrBefore):
		return false
	case lf.onOrAfter != nil && sent.Before(*lf.onOrAfter):
		return false
	}
	return true
}

// Package ratelimit is the providers' rate limits: their settings
// (TUTTI_RATE_LIMITS), which limit a send takes its slot under, and the
// arithmetic of the fixed windows the slots are counted in. PostgreSQL
// holds the counts (storage.ReserveRateSlot), so a limit holds across every
// worker; delivery.Service takes a slot before each provider request and
// defers a send whose slot is later (README "Provider rate limits").
//
// A limit is "at most N requests begin in any window of one second (or
// minute, or hour)", windows aligned on the clock (UTC). Fixed windows,
// rather than a token bucket, because they can be proved: a send goes out
// only within the window its slot is in, and a window hands out at most N
// slots, so no window ever sees more than N requests begin. A sliding
// one-second view can see up to 2N across a boundary; a provider that
// meters that way needs a limit of half its own.
package ratelimit

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Limit is one rate limit.
type Limit struct {
	// Key is what the limit applies to: a provider ("twilio", "sendgrid")
	// or one sender of it ("twilio:+14155550100").
	Key string
	// N requests may begin in each window.
	N int
	// Per is the window: one second, minute or hour.
	Per time.Duration
}

func (l Limit) String() string {
	unit := map[time.Duration]string{time.Second: "s", time.Minute: "m", time.Hour: "h"}[l.Per]
	return fmt.Sprintf("%s=%d/%s", l.Key, l.N, unit)
}

// WindowStart is the start of the window t is in.
func (l Limit) WindowStart(t time.Time) time.Time { return t.UTC().Truncate(l.Per) }

// Margin is how long before its window ends a slot counts as missed: a
// request must begin, and reach the provider, within its window, so one
// whose slot is about to close takes a new one instead of being written
// into the next window's count.
func (l Limit) Margin() time.Duration { return l.Per / 20 }

// Usable reports whether a request may begin at now under the slot at
// slot: inside the slot's window, and not within Margin of its end.
func (l Limit) Usable(slot, now time.Time) bool {
	return !now.Before(slot) && now.Before(slot.Add(l.Per-l.Margin()))
}

// Limits are the configured limits, by key.
type Limits map[string]Limit

// For is the limit a send from sender through provider takes its slot
// under: the sender's own if one is set, else the provider's; ok is false
// when neither is limited. One limit per send, so a slot is one row.
func (ls Limits) For(provider, sender string) (Limit, bool) {
	if l, ok := ls[provider+":"+sender]; ok && sender != "" {
		return l, true
	}
	l, ok := ls[provider]
	return l, ok
}

// String lists the limits in key order, as Parse reads them.
func (ls Limits) String() string {
	keys := make([]string, 0, len(ls))
	for k := range ls {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = ls[k].String()
	}
	return strings.Join(parts, ",")
}

// MaxPerWindow bounds N: beyond it a limit would not limit anything a
// provider enforces.
const MaxPerWindow = 1_000_000

// Parse reads TUTTI_RATE_LIMITS: comma-separated KEY=N/UNIT entries, UNIT
// one of s, m, h; for example "twilio=1/s,sendgrid=600/s" or
// "twilio:+14155550100=1/s". Empty means no limits.
func Parse(s string) (Limits, error) {
	ls := Limits{}
	for entry := range strings.SplitSeq(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		key, rate, ok := strings.Cut(entry, "=")
		key, rate = strings.TrimSpace(key), strings.TrimSpace(rate)
		if !ok || key == "" {
			return nil, fmt.Errorf("%q: want KEY=N/UNIT, e.g. twilio=1/s", entry)
		}
		if strings.ContainsAny(key, " \t\n") {
			return nil, fmt.Errorf("%q: the key has a space", entry)
		}
		if _, dup := ls[key]; dup {
			return nil, fmt.Errorf("%q: %s is limited twice", entry, key)
		}
		num, unit, ok := strings.Cut(rate, "/")
		n, err := strconv.Atoi(strings.TrimSpace(num))
		if !ok || err != nil || n < 1 || n > MaxPerWindow {
			return nil, fmt.Errorf("%q: the rate must be N/UNIT with N from 1 to %d", entry, MaxPerWindow)
		}
		per, ok := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour}[strings.TrimSpace(unit)]
		if !ok {
			return nil, fmt.Errorf("%q: the unit must be s, m or h", entry)
		}
		ls[key] = Limit{Key: key, N: n, Per: per}
	}
	return ls, nil
}

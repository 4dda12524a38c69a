package delivery_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tutti-dev/tutti/internal/delivery"
	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/policy"
	"github.com/tutti-dev/tutti/internal/provider"
	"github.com/tutti-dev/tutti/internal/provider/providertest"
	"github.com/tutti-dev/tutti/internal/ratelimit"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/internal/storage/storagetest"
)

// BenchmarkRateLimitedSMS sends BENCH_RATE_SMS SMS (1,000) at once under
// twilio=BENCH_RATE_LIMIT/s (10) through the real send path and Twilio
// client against the fake Twilio, each sender waiting for its slot as a run
// does, and reports the busiest second: max-begun/s counts requests by the
// moment they began (the fence's last moment before writing), max-received/s
// by when the fake received them (one network hop later). Both must stay
// at or under the limit. It is a check more than a speed: at 10/s, 1,000
// SMS take 100 seconds. `make bench-rate` runs it.
//
//	go test ./internal/delivery -run '^$' -bench BenchmarkRateLimitedSMS -benchtime 1x
func BenchmarkRateLimitedSMS(b *testing.B) {
	n, limit := envInt(b, "BENCH_RATE_SMS", 1000), envInt(b, "BENCH_RATE_LIMIT", 10)
	ctx := context.Background()
	store := storagetest.New(b)
	tw := providertest.NewFakeTwilio(b, twSID, twToken)
	settings := policy.DefaultSettings()
	settings.GlobalCap = policy.FrequencyCap{Max: 1 << 30, Window: 24 * time.Hour}
	settings.Cooldowns, settings.QuietHours = nil, nil
	limits, err := ratelimit.Parse(fmt.Sprintf("twilio=%d/s", limit))
	if err != nil {
		b.Fatal(err)
	}
	var (
		mu     sync.Mutex
		begins = map[string]time.Time{}
	)
	svc := &delivery.Service{Store: store, SMS: provider.NewTwilio(twSID, twToken, tw.URL(), &http.Client{Timeout: 10 * time.Second}),
		Sender: delivery.Identity{SMSFrom: "+15005550006"}, Policy: settings, Limits: limits,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Faults: &delivery.Faults{BeforeWrite: func(_ context.Context, m storage.Message) {
			mu.Lock()
			begins[m.ID] = time.Now()
			mu.Unlock()
		}}}
	contacts := make([]storage.Contact, n)
	for i := range contacts {
		c, _, err := store.UpsertContact(ctx, storage.ContactInput{Phone: fmt.Sprintf("+1415%07d", i)})
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := store.RecordConsent(ctx, c.ID, journey.ChannelSMS, model.ConsentGranted, "bench", time.Now().Add(-time.Hour)); err != nil {
			b.Fatal(err)
		}
		contacts[i] = c
	}
	for range b.N {
		clear(begins)
		start := time.Now()
		var (
			wg     sync.WaitGroup
			waits  sync.Map
			failed error
			fmu    sync.Mutex
		)
		for i, c := range contacts {
			wg.Go(func() {
				msg := delivery.Message{
					Ledger: storage.Message{IdempotencyKey: fmt.Sprintf("rate-%d-%d", start.UnixNano(), i), ContactID: c.ID, JourneyID: "j",
						JourneyVersion: 1, StepID: "s", Channel: journey.ChannelSMS, Class: string(journey.ClassMarketing)},
					Content: map[journey.Channel]delivery.Content{journey.ChannelSMS: {SMS: &provider.SMS{To: c.Phone, Body: "Hi"}}},
				}
				for w := 0; ; w++ {
					res, err := svc.Send(ctx, msg)
					if err != nil || (res.Status != delivery.StatusDeferred && res.Status != model.MessageSent) {
						fmu.Lock()
						failed = fmt.Errorf("send %d: %v %+v", i, err, res)
						fmu.Unlock()
						return
					}
					if res.Status == model.MessageSent {
						waits.Store(i, w)
						return
					}
					time.Sleep(time.Until(res.DeferUntil))
				}
			})
		}
		wg.Wait()
		elapsed := time.Since(start)
		if failed != nil {
			b.Fatal(failed)
		}
		begun, received := map[int64]int{}, map[int64]int{}
		for _, at := range begins {
			begun[at.Unix()]++
		}
		accepted := 0
		for _, r := range tw.Requests() {
			if r.Method == http.MethodPost && r.Accepted() && !r.ReceivedAt.Before(start) {
				received[r.ReceivedAt.Unix()]++
				accepted++
			}
		}
		if len(begins) != n || accepted != n {
			b.Fatalf("%d sends begun, %d received: want %d each", len(begins), accepted, n)
		}
		b.ReportMetric(float64(maxOf(begun)), "max-begun/s")
		b.ReportMetric(float64(maxOf(received)), "max-received/s")
		b.ReportMetric(float64(n)/elapsed.Seconds(), "sms/s")
		b.ReportMetric(float64(limit), "limit/s")
		b.ReportMetric(0, "ns/op")
		if maxOf(begun) > limit {
			b.Errorf("%d requests began in one second under a limit of %d", maxOf(begun), limit)
		}
	}
}

func maxOf(m map[int64]int) int {
	best := 0
	for _, v := range m {
		best = max(best, v)
	}
	return best
}

func envInt(b *testing.B, key string, def int) int {
	b.Helper()
	raw := os.Getenv(key)
	if raw == "" {
		return def
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive whole number", key, raw)
	}
	return n
}

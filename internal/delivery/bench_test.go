package delivery_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tutti-dev/tutti/internal/delivery"
	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/policy"
	"github.com/tutti-dev/tutti/internal/provider"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/internal/storage/storagetest"
)

// The send path and the opt-out, for comparison with the code before the
// opt-out fence (see README "Benchmarks": the same benchmarks, under the
// same names, run against that commit in the same session).

const benchContacts = 256

func benchContactsWithConsent(b *testing.B, s *storage.Store) []storage.Contact {
	b.Helper()
	ctx := context.Background()
	out := make([]storage.Contact, benchContacts)
	for i := range out {
		c, _, err := s.UpsertContact(ctx, storage.ContactInput{Email: fmt.Sprintf("bench%d@example.com", i), Phone: fmt.Sprintf("+1415556%04d", i)})
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := s.RecordConsent(ctx, c.ID, journey.ChannelEmail, model.ConsentGranted, "bench", time.Now().Add(-time.Hour)); err != nil {
			b.Fatal(err)
		}
		out[i] = c
	}
	return out
}

// BenchmarkSend: one marketing email through the whole send path (gate,
// fence, sandbox provider, ledger), 8 senders per CPU at once.
func BenchmarkSend(b *testing.B) {
	s := storagetest.New(b)
	contacts := benchContactsWithConsent(b, s)
	settings := policy.DefaultSettings()
	settings.GlobalCap = policy.FrequencyCap{Max: 1 << 30, Window: 24 * time.Hour}
	settings.Cooldowns, settings.QuietHours = nil, nil
	sandbox := provider.NewSandbox(s)
	svc := &delivery.Service{Store: s, Email: sandbox, SMS: sandbox, Policy: settings, Sender: delivery.Identity{EmailFrom: "a@b.c"},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	var seq atomic.Int64
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			n := seq.Add(1)
			c := contacts[n%benchContacts]
			msg := message(c, journey.ChannelEmail, fmt.Sprintf("bench/%d", n))
			res, err := svc.Send(ctx, msg)
			if err != nil || res.Status != model.MessageSent {
				b.Fatalf("send: %+v %v", res, err)
			}
		}
	})
}

// BenchmarkOptOut: a consent API revoke for a contact with nothing in
// flight, the common case.
func BenchmarkOptOut(b *testing.B) {
	s := storagetest.New(b)
	contacts := benchContactsWithConsent(b, s)
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		c := contacts[i%benchContacts]
		status := model.ConsentRevoked
		if (i/benchContacts)%2 == 1 {
			status = model.ConsentGranted
		}
		if _, _, err := s.RecordConsentChange(ctx, storage.ConsentChange{ContactID: c.ID, Channel: journey.ChannelEmail,
			Status: status, Source: "bench"}); err != nil {
			b.Fatal(err)
		}
	}
}

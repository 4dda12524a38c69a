package delivery_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/delivery"
	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/policy"
	"github.com/tutti-dev/tutti/internal/provider"
	"github.com/tutti-dev/tutti/internal/provider/providertest"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/internal/storage/storagetest"
)

const (
	sgKey   = "SG.delivery-test"
	twSID   = "AC00000000000000000000000000000d11"
	twToken = "delivery-test-token"
)

type testBundle struct {
	ctx   context.Context
	store *storage.Store
	sg    *providertest.FakeSendGrid
	tw    *providertest.FakeTwilio
	svc   *delivery.Service
	seq   atomic.Int64
}

// setup is the send path over a fresh database, with the real SendGrid and
// Twilio clients against fakes, and no timing rules in the gate.
func setup(t *testing.T) *testBundle {
	t.Helper()
	b := &testBundle{
		ctx:   context.Background(),
		store: storagetest.New(t),
		sg:    providertest.NewFakeSendGrid(t, sgKey),
		tw:    providertest.NewFakeTwilio(t, twSID, twToken),
	}
	settings := policy.DefaultSettings()
	settings.Cooldowns, settings.QuietHours = nil, nil
	hc := &http.Client{Timeout: 10 * time.Second}
	b.svc = &delivery.Service{
		Store:  b.store,
		Email:  provider.NewSendGrid(sgKey, b.sg.URL(), hc),
		SMS:    provider.NewTwilio(twSID, twToken, b.tw.URL(), hc),
		Sender: delivery.Identity{EmailFrom: "hello@tutti.test", SMSFrom: "+15005550006"},
		Policy: settings,
	}
	return b
}

// contact creates a contact with an email and a phone who granted both.
func (b *testBundle) contact(t *testing.T) storage.Contact {
	t.Helper()
	n := b.seq.Add(1)
	c, _, err := b.store.UpsertContact(b.ctx, storage.ContactInput{
		Email: fmt.Sprintf("p%d@example.com", n), Phone: fmt.Sprintf("+1415555%04d", n),
	})
	require.NoError(t, err)
	for _, ch := range []journey.Channel{journey.ChannelEmail, journey.ChannelSMS} {
		_, _, err := b.store.RecordConsent(b.ctx, c.ID, ch, storage.ConsentGranted, "form", time.Now().Add(-time.Hour))
		require.NoError(t, err)
	}
	return c
}

func message(c storage.Contact, ch journey.Channel, key string) delivery.Message {
	m := delivery.Message{
		Ledger: storage.Message{IdempotencyKey: key, ContactID: c.ID, JourneyID: "j", JourneyVersion: 1, StepID: "s",
			Channel: ch, Class: string(journey.ClassMarketing)},
		Content: map[journey.Channel]delivery.Content{},
	}
	switch ch {
	case journey.ChannelEmail:
		m.Content[ch] = delivery.Content{Email: &provider.Email{To: c.Email, Subject: "Hi", Text: "Hello"}}
	case journey.ChannelSMS:
		m.Content[ch] = delivery.Content{SMS: &provider.SMS{To: c.Phone, Body: "Hello, reply STOP to opt out"}}
	}
	return m
}

// requestsTo counts the requests a fake received for one recipient.
func (b *testBundle) requestsTo(c storage.Contact, ch journey.Channel) int {
	n := 0
	if ch == journey.ChannelSMS {
		for _, r := range b.tw.Requests() {
			if r.To == c.Phone {
				n++
			}
		}
		return n
	}
	for _, r := range b.sg.Requests() {
		for _, p := range r.Body.Personalizations {
			for _, to := range p.To {
				if to.Email == c.Email {
					n++
				}
			}
		}
	}
	return n
}

// optOuts are the ways an opt-out reaches the store: the consent API's
// revoke and an inbound STOP (or SendGrid unsubscribe), which webhooks apply
// with ApplyProviderEvent.
var optOuts = map[string]func(b *testBundle, c storage.Contact, ch journey.Channel) error{
	"consent API revoke": func(b *testBundle, c storage.Contact, ch journey.Channel) error {
		_, _, err := b.store.RecordConsentChange(b.ctx, storage.ConsentChange{ContactID: c.ID, Channel: ch,
			Status: storage.ConsentRevoked, Source: "api"})
		return err
	},
	"provider webhook (STOP, unsubscribe)": func(b *testBundle, c storage.Contact, ch journey.Channel) error {
		_, err := b.store.ApplyProviderEvent(b.ctx, storage.ProviderEvent{
			Provider: "test", EventID: fmt.Sprintf("optout-%s-%s", c.ID, ch), Kind: "optout", ContactID: c.ID,
			OccurredAt: time.Now(),
		}, storage.ProviderEffects{Consents: []storage.ConsentChange{{Channel: ch, Status: storage.ConsentRevoked, Source: "webhook"}}})
		return err
	},
}

// A send stopped between the gate's reservation and the provider call (a GC
// pause, a stalled worker) while an opt-out is recorded and acknowledged
// must not reach the provider once it resumes: the fence skips it.
func TestOptOutWhileReservedIsFinal(t *testing.T) {
	t.Parallel()
	for name, optOut := range optOuts {
		for _, ch := range []journey.Channel{journey.ChannelEmail, journey.ChannelSMS} {
			t.Run(name+"/"+string(ch), func(t *testing.T) {
				t.Parallel()
				b := setup(t)
				c := b.contact(t)
				reserved, resume := make(chan storage.Message, 1), make(chan struct{})
				b.svc.Faults = &delivery.Faults{AfterReserve: func(_ context.Context, m storage.Message) {
					reserved <- m
					<-resume
				}}
				var res delivery.Result
				var sendErr error
				done := make(chan struct{})
				go func() {
					defer close(done)
					res, sendErr = b.svc.Send(b.ctx, message(c, ch, "k1"))
				}()
				m := <-reserved
				require.Equal(t, storage.MessageReserved, m.Status)
				require.NoError(t, optOut(b, c, ch), "the opt-out is acknowledged while the send is paused")
				close(resume)
				<-done

				require.NoError(t, sendErr)
				require.Equal(t, storage.MessageSkipped, res.Status)
				require.Equal(t, storage.ReasonConsentRevoked, res.Reason)
				require.Zero(t, b.requestsTo(c, ch), "nothing reached the provider after the opt-out")
				row, err := b.store.Message(b.ctx, m.ID)
				require.NoError(t, err)
				require.Equal(t, storage.MessageSkipped, row.Status)
				require.Equal(t, storage.ReasonConsentRevoked, row.StatusReason)
				require.Zero(t, row.Attempts, "no request was written")
			})
		}
	}
}

// The other order: the opt-out first, then the send: skipped by the gate.
func TestOptOutBeforeSendIsSkipped(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := b.contact(t)
	require.NoError(t, optOuts["consent API revoke"](b, c, journey.ChannelSMS))
	res, err := b.svc.Send(b.ctx, message(c, journey.ChannelSMS, "k1"))
	require.NoError(t, err)
	require.Equal(t, storage.MessageSkipped, res.Status)
	require.Equal(t, policy.CodeConsentRevoked, res.Reason)
	require.Zero(t, b.requestsTo(c, journey.ChannelSMS))
}

// A send already in flight when the opt-out commits: the opt-out's answer
// waits until the provider has answered it, so the message reached the
// provider before the opt-out was acknowledged, never after.
func TestOptOutWaitsForTheSendInFlight(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := b.contact(t)
	flying, resume := make(chan struct{}), make(chan struct{})
	b.svc.Faults = &delivery.Faults{BeforeWrite: func(context.Context, storage.Message) {
		close(flying)
		<-resume
	}}
	var order []string
	var mu sync.Mutex
	note := func(s string) { mu.Lock(); order = append(order, s); mu.Unlock() }

	sent := make(chan delivery.Result, 1)
	go func() {
		res, err := b.svc.Send(b.ctx, message(c, journey.ChannelSMS, "k1"))
		require.NoError(t, err)
		note("provider answered")
		sent <- res
	}()
	<-flying
	acked := make(chan error, 1)
	go func() {
		err := optOuts["consent API revoke"](b, c, journey.ChannelSMS)
		note("opt-out acknowledged")
		acked <- err
	}()
	select {
	case err := <-acked:
		t.Fatalf("the opt-out was acknowledged (err %v) while a send it did not stop was still to be written", err)
	case <-time.After(300 * time.Millisecond):
	}
	close(resume)
	res := <-sent
	require.NoError(t, <-acked)
	require.Equal(t, storage.MessageSent, res.Status)
	require.Equal(t, 1, b.requestsTo(c, journey.ChannelSMS))
	require.Equal(t, []string{"provider answered", "opt-out acknowledged"}, order)

	// Every later send is skipped.
	next, err := b.svc.Send(b.ctx, message(c, journey.ChannelSMS, "k2"))
	require.NoError(t, err)
	require.Equal(t, storage.MessageSkipped, next.Status)
}

// A send paused in flight for longer than its flight window never writes
// its request: the opt-out waited only for the window, and the send, resumed
// after it, finds its deadline gone and is decided again - and skipped.
func TestSendPausedPastItsWindowIsNeverWritten(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.svc.FlightWindow = 200 * time.Millisecond
	c := b.contact(t)
	flying, resume := make(chan storage.Message, 1), make(chan struct{})
	b.svc.Faults = &delivery.Faults{BeforeWrite: func(_ context.Context, m storage.Message) {
		flying <- m
		<-resume
	}}
	done := make(chan delivery.Result, 1)
	go func() {
		res, err := b.svc.Send(b.ctx, message(c, journey.ChannelEmail, "k1"))
		require.NoError(t, err)
		done <- res
	}()
	m := <-flying
	// The opt-out returns once the flight deadline has passed, without the
	// paused send: its request can no longer be written.
	require.NoError(t, optOuts["consent API revoke"](b, c, journey.ChannelEmail))
	require.True(t, time.Now().After(*m.FlightDeadline), "the opt-out waited for the flight deadline")
	close(resume)
	res := <-done
	require.Equal(t, delivery.StatusRetry, res.Status, "the request was never written: nothing was accepted")
	require.Zero(t, b.requestsTo(c, journey.ChannelEmail))

	b.svc.Faults = nil
	again, err := b.svc.Send(b.ctx, message(c, journey.ChannelEmail, "k1"))
	require.NoError(t, err)
	require.Equal(t, storage.MessageSkipped, again.Status, "decided again: consent was revoked")
	require.Zero(t, b.requestsTo(c, journey.ChannelEmail))
}

// A subscription-level opt-out is final for sends resting on that
// subscription, and leaves the others alone.
func TestSubscriptionOptOutIsFinal(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := b.contact(t)
	paused := make(chan struct{}, 2)
	resume := make(chan struct{})
	b.svc.Faults = &delivery.Faults{AfterReserve: func(context.Context, storage.Message) {
		paused <- struct{}{}
		<-resume
	}}
	send := func(key, sub string, out chan<- delivery.Result) {
		m := message(c, journey.ChannelEmail, key)
		m.Ledger.Subscription = sub
		m.Journey.Subscription = sub
		res, err := b.svc.Send(b.ctx, m)
		require.NoError(t, err)
		out <- res
	}
	news, promo := make(chan delivery.Result, 1), make(chan delivery.Result, 1)
	go send("news", "newsletter", news)
	go send("promo", "promotions", promo)
	<-paused
	<-paused
	_, _, err := b.store.RecordConsentChange(b.ctx, storage.ConsentChange{ContactID: c.ID, Channel: journey.ChannelEmail,
		Subscription: "newsletter", Status: storage.ConsentRevoked, Source: "preference-center"})
	require.NoError(t, err)
	close(resume)
	require.Equal(t, storage.ReasonConsentRevoked, (<-news).Reason)
	require.Equal(t, storage.MessageSent, (<-promo).Status)
	require.Equal(t, 1, b.requestsTo(c, journey.ChannelEmail))
}

// Twenty contacts, each with a send paused after the gate while an opt-out
// of one of the three kinds is acknowledged: none of those sends goes out.
func TestOptOutRaceTwentyContacts(t *testing.T) {
	t.Parallel()
	b := setup(t)
	kinds := []string{"consent API revoke", "provider webhook (STOP, unsubscribe)"}
	// The pause: the hook hands the test a channel and waits for it to close.
	var paused sync.Map
	b.svc.Faults = &delivery.Faults{AfterReserve: func(_ context.Context, m storage.Message) {
		v, _ := paused.Load(m.ContactID)
		resume := make(chan struct{})
		v.(chan chan struct{}) <- resume
		<-resume
	}}
	var wg sync.WaitGroup
	for i := range 20 {
		c := b.contact(t)
		ch := journey.ChannelSMS
		if i%2 == 1 {
			ch = journey.ChannelEmail
		}
		hand := make(chan chan struct{}, 1)
		paused.Store(c.ID, hand)
		wg.Go(func() {
			done := make(chan delivery.Result, 1)
			go func() {
				res, err := b.svc.Send(b.ctx, message(c, ch, "race/"+c.ID))
				require.NoError(t, err)
				done <- res
			}()
			resume := <-hand
			require.NoError(t, optOuts[kinds[i%len(kinds)]](b, c, ch))
			close(resume)
			res := <-done
			require.Equal(t, storage.ReasonConsentRevoked, res.Reason, "contact %d", i)
			require.Zero(t, b.requestsTo(c, ch), "contact %d", i)
		})
	}
	wg.Wait()
}

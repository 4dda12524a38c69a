package delivery_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/delivery"
	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
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
		_, _, err := b.store.RecordConsent(b.ctx, c.ID, ch, model.ConsentGranted, "form", time.Now().Add(-time.Hour))
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
			Status: model.ConsentRevoked, Source: "api"})
		return err
	},
	"provider webhook (STOP, unsubscribe)": func(b *testBundle, c storage.Contact, ch journey.Channel) error {
		_, err := b.store.ApplyProviderEvent(b.ctx, storage.ProviderEvent{
			Provider: "test", EventID: fmt.Sprintf("optout-%s-%s", c.ID, ch), Kind: "optout", ContactID: c.ID,
			OccurredAt: time.Now(),
		}, storage.ProviderEffects{Consents: []storage.ConsentChange{{Channel: ch, Status: model.ConsentRevoked, Source: "webhook"}}})
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
				require.Equal(t, model.MessageReserved, m.Status)
				require.NoError(t, optOut(b, c, ch), "the opt-out is acknowledged while the send is paused")
				close(resume)
				<-done

				require.NoError(t, sendErr)
				require.Equal(t, model.MessageSkipped, res.Status)
				require.Equal(t, storage.ReasonConsentRevoked, res.Reason)
				require.Zero(t, b.requestsTo(c, ch), "nothing reached the provider after the opt-out")
				row, err := b.store.Message(b.ctx, m.ID)
				require.NoError(t, err)
				require.Equal(t, model.MessageSkipped, row.Status)
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
	require.Equal(t, model.MessageSkipped, res.Status)
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
	require.Equal(t, model.MessageSent, res.Status)
	require.Equal(t, 1, b.requestsTo(c, journey.ChannelSMS))
	require.Equal(t, []string{"provider answered", "opt-out acknowledged"}, order)

	// Every later send is skipped.
	next, err := b.svc.Send(b.ctx, message(c, journey.ChannelSMS, "k2"))
	require.NoError(t, err)
	require.Equal(t, model.MessageSkipped, next.Status)
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
	require.Equal(t, model.MessageSkipped, again.Status, "decided again: consent was revoked")
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
		Subscription: "newsletter", Status: model.ConsentRevoked, Source: "preference-center"})
	require.NoError(t, err)
	close(resume)
	require.Equal(t, storage.ReasonConsentRevoked, (<-news).Reason)
	require.Equal(t, model.MessageSent, (<-promo).Status)
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

// sendUntilSettled calls Send as the send activity's retries would: again
// after a pending flight or an ambiguous call, once its deadline passed.
func (b *testBundle) sendUntilSettled(t *testing.T, msg delivery.Message) (delivery.Result, []error) {
	t.Helper()
	var errs []error
	for range 5 {
		res, err := b.svc.Send(b.ctx, msg)
		var pending *delivery.FlightPendingError
		var ambiguous *delivery.AmbiguousError
		switch {
		case errors.As(err, &pending):
			time.Sleep(time.Until(pending.Until) + 50*time.Millisecond)
		case errors.As(err, &ambiguous):
			time.Sleep(time.Until(ambiguous.Until) + 50*time.Millisecond)
		case err != nil:
			t.Fatalf("send: %v", err)
		default:
			return res, errs
		}
		errs = append(errs, err)
	}
	t.Fatal("send did not settle")
	return delivery.Result{}, nil
}

// shortCalls makes the provider calls' flight window short, so a hung
// provider call ends (ambiguously) quickly.
func (b *testBundle) shortCalls() { b.svc.FlightWindow = 500 * time.Millisecond }

// SendGrid accepted the request but never answered: the provider may have
// the message and cannot be asked, so it is recorded unknown and never resent.
func TestAmbiguousSendGridCallIsUnknownNotResent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.shortCalls()
	c := b.contact(t)
	b.sg.FaultNext(1, providertest.AcceptThenHang)
	res, errs := b.sendUntilSettled(t, message(c, journey.ChannelEmail, "amb-sg"))
	require.Len(t, errs, 1, "the hung call is ambiguous; the retry settles it")
	var amb *delivery.AmbiguousError
	require.ErrorAs(t, errs[0], &amb)
	require.Equal(t, model.MessageUnknown, res.Status)
	require.Equal(t, storage.ReasonAmbiguousCall, res.Reason)
	require.Len(t, b.sg.Requests(), 1, "never resent")

	unknown, err := b.store.UnknownMessages(b.ctx, 10, "")
	require.NoError(t, err)
	require.Len(t, unknown, 1)
	require.Equal(t, res.MessageID, unknown[0].ID)
}

// Twilio accepted the request but never answered: the retry reads the
// account's messages back, finds it, and records it sent with its SID.
func TestAmbiguousTwilioCallIsReadBack(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.shortCalls()
	c := b.contact(t)
	b.tw.FaultNext(1, providertest.AcceptThenHang)
	res, errs := b.sendUntilSettled(t, message(c, journey.ChannelSMS, "amb-tw"))
	require.Len(t, errs, 1)
	require.Equal(t, model.MessageSent, res.Status)
	accepted := b.tw.Accepted()
	require.Len(t, accepted, 1, "never resent")
	require.NotEmpty(t, res.ProviderMessageID)
	require.Equal(t, accepted[0].SID, res.ProviderMessageID, "the SID status callbacks will name")
	require.NotEmpty(t, b.tw.Reads(), "the retry asked Twilio")
}

// The request was written but Twilio never processed it (it never read
// it): the read-back finds nothing, and the message is sent exactly once.
func TestAmbiguousTwilioCallNotFoundIsSentOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.shortCalls()
	c := b.contact(t)
	b.tw.FaultNext(1, providertest.HangBeforeReading)
	res, errs := b.sendUntilSettled(t, message(c, journey.ChannelSMS, "amb-tw-none"))
	require.Len(t, errs, 1)
	require.Equal(t, model.MessageSent, res.Status)
	require.Len(t, b.tw.Accepted(), 1)
	row, err := b.store.Message(b.ctx, res.MessageID)
	require.NoError(t, err)
	require.Equal(t, 2, row.Attempts, "two requests written, one accepted")
}

// Nothing was written (the provider refused the connection): a plain retry
// that sends, never unknown.
func TestRefusedConnectionIsRetried(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := b.contact(t)
	down := providertest.NewFakeSendGrid(t, sgKey)
	down.Close()
	up := b.svc.Email
	b.svc.Email = provider.NewSendGrid(sgKey, down.URL(), &http.Client{Timeout: 5 * time.Second})
	res, err := b.svc.Send(b.ctx, message(c, journey.ChannelEmail, "refused"))
	require.NoError(t, err)
	require.Equal(t, delivery.StatusRetry, res.Status)
	require.Equal(t, "sendgrid:transport", res.Reason)

	b.svc.Email = up
	res, err = b.svc.Send(b.ctx, message(c, journey.ChannelEmail, "refused"))
	require.NoError(t, err)
	require.Equal(t, model.MessageSent, res.Status)
	require.Len(t, b.sg.Requests(), 1)
}

// A call that times out before its connection is up (here: a TLS handshake
// the server never answers) never ran the fence, so nothing was written and
// the row never went in flight: it goes back to retrying, not unknown, and
// the next attempt sends - once.
func TestTimeoutBeforeConnectedIsRetried(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := b.contact(t)
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { silent.Close() })
	go func() {
		for {
			conn, err := silent.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { conn.Close() }) // held open, never answered
		}
	}()
	up := b.svc.Email
	b.svc.Email = provider.NewSendGrid(sgKey, "https://"+silent.Addr().String(), &http.Client{Timeout: 300 * time.Millisecond})
	res, err := b.svc.Send(b.ctx, message(c, journey.ChannelEmail, "handshake"))
	require.NoError(t, err, "not ambiguous: the request was never written")
	require.Equal(t, delivery.StatusRetry, res.Status)
	require.Equal(t, "sendgrid:transport", res.Reason)
	row, err := b.store.Message(b.ctx, res.MessageID)
	require.NoError(t, err)
	require.Equal(t, model.MessageRetrying, row.Status, "not in flight: the fence never ran")

	b.svc.Email = up
	res, err = b.svc.Send(b.ctx, message(c, journey.ChannelEmail, "handshake"))
	require.NoError(t, err)
	require.Equal(t, model.MessageSent, res.Status)
	require.Equal(t, 1, b.requestsTo(c, journey.ChannelEmail))
}

// The provider accepted the message but the ledger could not be written
// (the database went away): the answer comes back unsettled, with the
// provider's id, and Settle records it once the database is back.
func TestAcceptedButNotRecordedIsSettledLater(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := b.contact(t)
	store, dsn := storagetest.NewWithDSN(t)
	c2, _, err := store.UpsertContact(b.ctx, storage.ContactInput{Email: c.Email, Phone: c.Phone})
	require.NoError(t, err)
	_, _, err = store.RecordConsent(b.ctx, c2.ID, journey.ChannelEmail, model.ConsentGranted, "form", time.Now().Add(-time.Hour))
	require.NoError(t, err)
	// A store of its own, closed between the provider call and the ledger
	// write: the database is unreachable just then.
	blinking, err := storage.Open(b.ctx, dsn)
	require.NoError(t, err)
	b.svc.Store = blinking
	b.svc.Faults = &delivery.Faults{BeforeWrite: func(context.Context, storage.Message) { blinking.Close() }}
	res, err := b.svc.Send(b.ctx, message(c2, journey.ChannelEmail, "blink"))
	require.NoError(t, err)
	require.NotNil(t, res.Unsettled, "the provider took it; the ledger did not")
	require.Equal(t, model.MessageSent, res.Unsettled.Status)
	require.NotEmpty(t, res.Unsettled.ProviderMessageID)
	require.Len(t, b.sg.Accepted(), 1)

	b.svc.Store, b.svc.Faults = store, nil
	require.NoError(t, b.svc.Settle(b.ctx, *res.Unsettled))
	row, err := store.Message(b.ctx, res.MessageID)
	require.NoError(t, err)
	require.Equal(t, model.MessageSent, row.Status)
	require.Equal(t, res.Unsettled.ProviderMessageID, row.ProviderMessageID, "webhooks can find it")
	again, err := b.svc.Send(b.ctx, message(c2, journey.ChannelEmail, "blink"))
	require.NoError(t, err)
	require.Equal(t, model.MessageSent, again.Status)
	require.Len(t, b.sg.Accepted(), 1, "never resent")
}

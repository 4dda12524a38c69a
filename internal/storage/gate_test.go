package storage_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/policy"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/internal/storage/storagetest"
)

// gateSettings: a cap of 3 marketing messages per 7 days, no cooldowns and
// no quiet hours, so the cap is the only timing rule in play.
func gateSettings() policy.Settings {
	s := policy.DefaultSettings()
	s.GlobalCap = policy.FrequencyCap{Max: 3, Window: 7 * 24 * time.Hour}
	s.Cooldowns = nil
	s.QuietHours = nil
	return s
}

func gateInput(c storage.Contact, journeyID, key string, ch journey.Channel) storage.GateInput {
	return storage.GateInput{
		Message: storage.Message{
			IdempotencyKey: key, ContactID: c.ID, JourneyID: journeyID, JourneyVersion: 1, StepID: "step",
			Channel: ch, Class: string(journey.ClassMarketing), Provider: "sandbox",
		},
		Lookback: 7 * 24 * time.Hour,
	}
}

func decideWith(s policy.Settings, ch journey.Channel, now time.Time) func(storage.GateState) policy.Decision {
	return func(st storage.GateState) policy.Decision {
		return policy.Decide(s, policy.Request{Contact: st.Contact, Channel: ch, Class: journey.ClassMarketing, Now: now})
	}
}

func TestGate_AllowReservesAndRecordsConsent(t *testing.T) {
	ctx := context.Background()
	s := storagetest.New(t)
	c := newContact(t, s)
	ev, _, err := s.RecordConsent(ctx, c.ID, journey.ChannelEmail, model.ConsentGranted, "form", time.Time{})
	require.NoError(t, err)

	now := time.Now()
	res, err := s.Gate(ctx, gateInput(c, "j1", "k1", journey.ChannelEmail), decideWith(gateSettings(), journey.ChannelEmail, now))
	require.NoError(t, err)
	require.True(t, res.Send())
	require.Equal(t, storage.ClaimNew, res.Claim)
	require.Equal(t, model.MessageReserved, res.Message.Status)
	require.Equal(t, ev.ID, *res.Message.ConsentEventID, "the ledger row names the consent that allowed it")
	require.Equal(t, res.DecisionID, *res.Message.DecisionID)

	// The same key again once its request may have been written: a second
	// attempt must not send (the provider may have the message).
	_, _, err = s.BeginFlight(ctx, res.Message.ID, time.Minute)
	require.NoError(t, err)
	again, err := s.Gate(ctx, gateInput(c, "j1", "k1", journey.ChannelEmail), decideWith(gateSettings(), journey.ChannelEmail, now))
	require.NoError(t, err)
	require.False(t, again.Send())
	require.Equal(t, storage.ClaimInFlight, again.Claim)
}

func TestGate_NoConsentSkipsAndRecordsWhy(t *testing.T) {
	ctx := context.Background()
	s := storagetest.New(t)
	c := newContact(t, s)
	res, err := s.Gate(ctx, gateInput(c, "j1", "k1", journey.ChannelEmail), decideWith(gateSettings(), journey.ChannelEmail, time.Now()))
	require.NoError(t, err)
	require.False(t, res.Send())
	require.Equal(t, policy.OutcomeSkip, res.Decision.Outcome)
	require.Equal(t, model.MessageSkipped, res.Message.Status)
	require.Equal(t, policy.CodeNoConsent, res.Message.StatusReason)

	// A settled key is not decided again.
	again, err := s.Gate(ctx, gateInput(c, "j1", "k1", journey.ChannelEmail), func(storage.GateState) policy.Decision {
		t.Fatal("decide called for a settled key")
		return policy.Decision{}
	})
	require.NoError(t, err)
	require.False(t, again.Decided)
	require.Equal(t, storage.ClaimDone, again.Claim)
}

func TestGate_DeferWritesNoLedgerRow(t *testing.T) {
	ctx := context.Background()
	s := storagetest.New(t)
	c := newEmailContact(t, s)
	settings := gateSettings()
	settings.GlobalCap.Max = 1
	now := time.Now()
	first, err := s.Gate(ctx, gateInput(c, "j1", "k1", journey.ChannelEmail), decideWith(settings, journey.ChannelEmail, now))
	require.NoError(t, err)
	require.True(t, first.Send())

	second, err := s.Gate(ctx, gateInput(c, "j2", "k2", journey.ChannelEmail), decideWith(settings, journey.ChannelEmail, now))
	require.NoError(t, err)
	require.Equal(t, policy.OutcomeDefer, second.Decision.Outcome)
	require.Equal(t, []string{policy.CodeCapGlobal}, second.Decision.ReasonCodes())
	require.WithinDuration(t, first.Message.CreatedAt.Add(7*24*time.Hour), second.Decision.Until, time.Second)
	_, err = s.MessageByKey(ctx, "k2")
	require.ErrorIs(t, err, storage.ErrNotFound)
	require.NotZero(t, second.DecisionID)
}

func TestGate_RetryingRowIsDecidedAgain(t *testing.T) {
	ctx := context.Background()
	s := storagetest.New(t)
	c := newEmailContact(t, s)
	now := time.Now()
	first, err := s.Gate(ctx, gateInput(c, "j1", "k1", journey.ChannelEmail), decideWith(gateSettings(), journey.ChannelEmail, now))
	require.NoError(t, err)
	_, err = s.FailSend(ctx, first.Message.ID, model.MessageRetrying, "sendgrid:http_503", "")
	require.NoError(t, err)

	// Still allowed: reclaimed, and its own reservation does not count twice.
	retry, err := s.Gate(ctx, gateInput(c, "j1", "k1", journey.ChannelEmail), decideWith(gateSettings(), journey.ChannelEmail, now))
	require.NoError(t, err)
	require.True(t, retry.Send())
	require.Equal(t, storage.ClaimRetry, retry.Claim)
	require.Zero(t, retry.Message.Attempts, "attempts count requests written, and none was")
	_, err = s.FailSend(ctx, first.Message.ID, model.MessageRetrying, "sendgrid:http_503", "")
	require.NoError(t, err)

	// Opted out between retries: the retry is skipped, never sent.
	_, _, err = s.RecordConsent(ctx, c.ID, journey.ChannelEmail, model.ConsentRevoked, "unsubscribe-link", time.Time{})
	require.NoError(t, err)
	last, err := s.Gate(ctx, gateInput(c, "j1", "k1", journey.ChannelEmail), decideWith(gateSettings(), journey.ChannelEmail, now))
	require.NoError(t, err)
	require.False(t, last.Send())
	require.Equal(t, model.MessageSkipped, last.Message.Status)
	require.Equal(t, policy.CodeConsentRevoked, last.Message.StatusReason)
}

// N journeys send to one contact at the same moment: exactly the cap's
// worth get through, the rest are deferred.
func TestGate_ConcurrentSendsCannotPassTheCap(t *testing.T) {
	ctx := context.Background()
	s := storagetest.New(t)
	c := newEmailContact(t, s)
	settings := gateSettings() // cap 3
	now := time.Now()
	const n = 24
	var (
		mu       sync.Mutex
		outcomes = map[policy.Outcome]int{}
	)
	concurrently(n, func(i int) {
		res, err := s.Gate(ctx, gateInput(c, fmt.Sprintf("journey-%d", i), fmt.Sprintf("key-%d", i), journey.ChannelEmail),
			decideWith(settings, journey.ChannelEmail, now))
		require.NoError(t, err)
		mu.Lock()
		outcomes[res.Decision.Outcome]++
		mu.Unlock()
	})
	require.Equal(t, map[policy.Outcome]int{policy.OutcomeAllow: 3, policy.OutcomeDefer: n - 3}, outcomes)
	msgs, err := s.MessagesForContact(ctx, c.ID, 100)
	require.NoError(t, err)
	require.Len(t, msgs, 3, "only the allowed sends hold ledger rows")
}

// An opt-out that commits just before a scheduled send means no send: the
// gate reads consent under the contact lock, after the opt-out committed.
func TestGate_OptOutJustBeforeSendMeansNoSend(t *testing.T) {
	ctx := context.Background()
	s := storagetest.New(t)
	for i := range 20 {
		c := newContact(t, s)
		_, _, err := s.RecordConsent(ctx, c.ID, journey.ChannelSMS, model.ConsentGranted, "form", time.Time{})
		require.NoError(t, err)
		_, err = s.Pool().Exec(ctx, `UPDATE contacts SET phone = $2 WHERE id = $1`, c.ID, fmt.Sprintf("+1415555%04d", i))
		require.NoError(t, err)

		optedOut := make(chan struct{})
		var res storage.GateResult
		var wg sync.WaitGroup
		wg.Go(func() {
			<-optedOut
			var err error
			res, err = s.Gate(ctx, gateInput(c, "j1", fmt.Sprintf("k-%d", i), journey.ChannelSMS),
				decideWith(gateSettings(), journey.ChannelSMS, time.Date(2026, 6, 1, 15, 0, 0, 0, time.UTC)))
			require.NoError(t, err)
		})
		_, _, err = s.RecordConsent(ctx, c.ID, journey.ChannelSMS, model.ConsentRevoked, "sms:STOP", time.Time{})
		require.NoError(t, err)
		close(optedOut)
		wg.Wait()
		require.False(t, res.Send(), "contact %d", i)
		require.Equal(t, []string{policy.CodeConsentRevoked}, res.Decision.ReasonCodes())
	}
}

func TestGate_OneSMSPerAbandonmentEvent(t *testing.T) {
	ctx := context.Background()
	s := storagetest.New(t)
	c := newContact(t, s)
	_, err := s.Pool().Exec(ctx, `UPDATE contacts SET phone = '+14155550199' WHERE id = $1`, c.ID)
	require.NoError(t, err)
	_, _, err = s.RecordConsent(ctx, c.ID, journey.ChannelSMS, model.ConsentGranted, "form", time.Time{})
	require.NoError(t, err)
	eventAt := time.Date(2026, 6, 1, 14, 0, 0, 0, time.UTC)
	now := eventAt.Add(time.Hour)
	decide := func(st storage.GateState) policy.Decision {
		return policy.Decide(gateSettings(), policy.Request{
			Contact: st.Contact, Channel: journey.ChannelSMS, Class: journey.ClassMarketing, Now: now,
			Journey:     policy.JourneySettings{Abandonment: true},
			Abandonment: &policy.AbandonmentContext{EventID: "cart-1", At: eventAt, SMSAlreadySent: st.AbandonmentSMSSent},
		})
	}
	in := gateInput(c, "abandoned_cart", "k1", journey.ChannelSMS)
	in.AbandonmentEventID = "cart-1"
	first, err := s.Gate(ctx, in, decide)
	require.NoError(t, err)
	require.True(t, first.Send())
	require.Equal(t, "cart-1", first.Message.AbandonmentEventID)

	in.Message.IdempotencyKey, in.Message.StepID = "k2", "second_sms"
	second, err := s.Gate(ctx, in, decide)
	require.NoError(t, err)
	require.False(t, second.Send())
	require.Equal(t, []string{policy.CodeAbandonmentSMSAlreadySent}, second.Decision.ReasonCodes())
}

func TestSuppressions_AddIsIdempotentAndBlocksTheGate(t *testing.T) {
	ctx := context.Background()
	s := storagetest.New(t)
	c := newEmailContact(t, s)

	sp, created, err := s.AddSuppression(ctx, storage.Suppression{ContactID: c.ID, Reason: model.SuppressHardBounce, Channel: journey.ChannelEmail, Source: "sendgrid:bounce"})
	require.NoError(t, err)
	require.True(t, created)
	again, created, err := s.AddSuppression(ctx, storage.Suppression{ContactID: c.ID, Reason: model.SuppressHardBounce, Channel: journey.ChannelEmail, Source: "sendgrid:bounce"})
	require.NoError(t, err)
	require.False(t, created)
	require.Equal(t, sp.ID, again.ID)

	res, err := s.Gate(ctx, gateInput(c, "j1", "k1", journey.ChannelEmail), decideWith(gateSettings(), journey.ChannelEmail, time.Now()))
	require.NoError(t, err)
	require.Equal(t, []string{policy.CodeSuppressedHardBounce}, res.Decision.ReasonCodes())

	lifted, err := s.LiftSuppression(ctx, sp.ID, "support")
	require.NoError(t, err)
	require.NotNil(t, lifted.LiftedAt)
	res, err = s.Gate(ctx, gateInput(c, "j1", "k2", journey.ChannelEmail), decideWith(gateSettings(), journey.ChannelEmail, time.Now()))
	require.NoError(t, err)
	require.True(t, res.Send(), "a lifted suppression no longer blocks")

	list, err := s.Suppressions(ctx, c.ID)
	require.NoError(t, err)
	require.Len(t, list, 1, "lifted rows stay as history")

	_, _, err = s.AddSuppression(ctx, storage.Suppression{ContactID: c.ID, Reason: "bogus", Source: "x"})
	require.ErrorContains(t, err, `unknown reason "bogus"`)
	_, _, err = s.AddSuppression(ctx, storage.Suppression{ContactID: "c_missing", Reason: model.SuppressDoNotContact, Source: "x"})
	require.ErrorIs(t, err, storage.ErrNotFound)
}

func TestSuppressions_ExpiredRowMakesRoomForANewOne(t *testing.T) {
	ctx := context.Background()
	s := storagetest.New(t)
	c := newContact(t, s)
	past := time.Now().Add(-time.Hour)
	old, created, err := s.AddSuppression(ctx, storage.Suppression{ContactID: c.ID, Reason: model.SuppressInOpportunity, Source: "crm", ExpiresAt: &past})
	require.NoError(t, err)
	require.True(t, created)
	fresh, created, err := s.AddSuppression(ctx, storage.Suppression{ContactID: c.ID, Reason: model.SuppressInOpportunity, Source: "crm"})
	require.NoError(t, err)
	require.True(t, created, "an expired suppression does not stand in for a new one")
	require.NotEqual(t, old.ID, fresh.ID)
	list, err := s.Suppressions(ctx, c.ID)
	require.NoError(t, err)
	require.Len(t, list, 2)
	for _, sp := range list {
		if sp.ID == old.ID {
			require.Equal(t, "expired", sp.LiftedBy)
			require.NotNil(t, sp.LiftedAt)
		}
	}
}

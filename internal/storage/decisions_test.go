package storage_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/policy"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/internal/storage/storagetest"
)

func stepInput(c storage.Contact, journeyID, stepID, key string, ch journey.Channel) storage.GateInput {
	in := gateInput(c, journeyID, key, ch)
	in.Message.StepID = stepID
	return in
}

func TestDecisionsFor_RoundTripsGateDecisions(t *testing.T) {
	ctx := context.Background()
	s := storagetest.New(t)
	c := newContact(t, s)
	ev, _, err := s.RecordConsent(ctx, c.ID, journey.ChannelEmail, model.ConsentGranted, "form", time.Time{})
	require.NoError(t, err)

	t0 := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	// Step "sms": no phone, so skipped, with its reason and trace.
	skipIn := stepInput(c, "j1", "sms", "k-sms", journey.ChannelSMS)
	skipIn.Now = t0
	skipped, err := s.Gate(ctx, skipIn, decideWith(gateSettings(), journey.ChannelSMS, t0))
	require.NoError(t, err)
	require.Equal(t, policy.OutcomeSkip, skipped.Decision.Outcome)

	// Step "hello": deferred first (an explicit decision), then allowed.
	deferIn := stepInput(c, "j1", "hello", "k-hello", journey.ChannelEmail)
	deferIn.Now = t0.Add(time.Minute)
	until := t0.Add(8 * time.Hour)
	_, err = s.Gate(ctx, deferIn, func(storage.GateState) policy.Decision {
		return policy.Decision{Outcome: policy.OutcomeDefer, Channel: journey.ChannelEmail, Until: until,
			Reasons: []policy.Reason{{Code: policy.CodeQuietHours, Channel: journey.ChannelEmail, Detail: "22:00 local"}},
			Checks:  []policy.Check{{Channel: journey.ChannelEmail, Rule: policy.RuleQuietHours, Passed: false, Detail: "22:00 local"}}}
	})
	require.NoError(t, err)
	allowIn := deferIn
	allowIn.Now = t0.Add(9 * time.Hour)
	allowed, err := s.Gate(ctx, allowIn, decideWith(gateSettings(), journey.ChannelEmail, allowIn.Now))
	require.NoError(t, err)
	require.True(t, allowed.Send())

	// Another journey and another contact must not leak in.
	other := stepInput(c, "j2", "hello", "k-other", journey.ChannelEmail)
	other.Now = t0.Add(10 * time.Hour)
	_, err = s.Gate(ctx, other, decideWith(gateSettings(), journey.ChannelEmail, other.Now))
	require.NoError(t, err)
	stranger := newContact(t, s)
	_, err = s.Gate(ctx, stepInput(stranger, "j1", "hello", "k-stranger", journey.ChannelEmail), decideWith(gateSettings(), journey.ChannelEmail, t0))
	require.NoError(t, err)

	hello, err := s.DecisionsFor(ctx, c.ID, "j1", "hello", 0)
	require.NoError(t, err)
	require.Len(t, hello, 2)
	require.Equal(t, []policy.Outcome{policy.OutcomeAllow, policy.OutcomeDefer}, []policy.Outcome{hello[0].Outcome, hello[1].Outcome}, "newest first")

	got := hello[0]
	require.Equal(t, allowed.DecisionID, got.ID)
	require.Equal(t, "k-hello", got.IdempotencyKey)
	require.Equal(t, c.ID, got.ContactID)
	require.Equal(t, 1, got.JourneyVersion)
	require.Equal(t, journey.ChannelEmail, got.Channel)
	require.Equal(t, journey.ChannelEmail, got.DecidedChannel)
	require.Equal(t, journey.ClassMarketing, got.Class)
	require.Equal(t, allowed.Message.ID, got.MessageID)
	require.NotNil(t, got.ConsentEventID)
	require.Equal(t, ev.ID, *got.ConsentEventID)
	require.Nil(t, got.Until)
	require.Empty(t, got.Reasons)
	require.NotNil(t, got.Reasons, "no reasons encode as [] not null")
	require.Equal(t, allowed.Decision.Checks, got.Checks)
	require.True(t, got.DecidedAt.Equal(allowIn.Now))
	require.Equal(t, allowed.Decision.Explain(), got.Policy().Explain(), "the stored decision explains as the original")

	deferred := hello[1]
	require.NotNil(t, deferred.Until)
	require.True(t, deferred.Until.Equal(until))
	require.Equal(t, time.UTC, deferred.Until.Location())
	require.Empty(t, deferred.MessageID, "a deferral writes no ledger row")
	require.Nil(t, deferred.ConsentEventID)
	require.Equal(t, []policy.Reason{{Code: policy.CodeQuietHours, Channel: journey.ChannelEmail, Detail: "22:00 local"}}, deferred.Reasons)
	require.Equal(t, []policy.Check{{Channel: journey.ChannelEmail, Rule: policy.RuleQuietHours, Passed: false, Detail: "22:00 local"}}, deferred.Checks)

	sms, err := s.DecisionsFor(ctx, c.ID, "j1", "sms", 0)
	require.NoError(t, err)
	require.Len(t, sms, 1)
	require.Equal(t, policy.OutcomeSkip, sms[0].Outcome)
	require.Contains(t, sms[0].Policy().ReasonCodes(), policy.CodeNoPhone)
	require.Equal(t, skipped.Decision.Reasons, sms[0].Reasons)
	require.Equal(t, skipped.Message.ID, sms[0].MessageID)
	require.Equal(t, skipped.Decision.Checks, sms[0].Checks)

	all, err := s.DecisionsFor(ctx, c.ID, "j1", "", 0)
	require.NoError(t, err)
	require.Len(t, all, 3, "every step of the journey")
	require.Equal(t, []string{"hello", "hello", "sms"}, []string{all[0].StepID, all[1].StepID, all[2].StepID})

	limited, err := s.DecisionsFor(ctx, c.ID, "j1", "", 1)
	require.NoError(t, err)
	require.Len(t, limited, 1)
	require.Equal(t, got.ID, limited[0].ID)

	everywhere, err := s.DecisionsFor(ctx, c.ID, "", "", 0)
	require.NoError(t, err)
	require.Len(t, everywhere, 4, "every journey")
	require.Equal(t, "j2", everywhere[0].JourneyID)

	_, err = s.DecisionsFor(ctx, c.ID, "", "hello", 0)
	require.Error(t, err, "a step without its journey is ambiguous")

	none, err := s.DecisionsFor(ctx, c.ID, "j1", "nope", 0)
	require.NoError(t, err)
	require.Empty(t, none)
}

func TestDecisionsFor_FallbackAndWrittenBySQL(t *testing.T) {
	ctx := context.Background()
	s := storagetest.New(t)
	c := newContact(t, s)
	// A row as an older writer might have left it: NULL message and consent,
	// a fallback to another channel.
	_, err := s.Pool().Exec(ctx, `
		INSERT INTO decisions (idempotency_key, contact_id, journey_id, journey_version, step_id, channel, class,
			outcome, decided_channel, reasons, checks, decided_at)
		VALUES ('k1', $1, 'j', 3, 'nudge', 'sms', 'marketing', 'fallback', 'email',
			'[{"code":"consent_revoked","channel":"sms","detail":"STOP"}]',
			'[{"channel":"sms","rule":"consent","passed":false,"detail":"STOP"},{"channel":"email","rule":"consent","passed":true,"detail":"granted"}]',
			'2025-01-02T03:04:05Z')`, c.ID)
	require.NoError(t, err)
	ds, err := s.DecisionsFor(ctx, c.ID, "j", "nudge", 10)
	require.NoError(t, err)
	require.Len(t, ds, 1)
	d := ds[0]
	require.Equal(t, policy.OutcomeFallback, d.Outcome)
	require.Equal(t, journey.ChannelSMS, d.Channel)
	require.Equal(t, journey.ChannelEmail, d.DecidedChannel)
	require.Equal(t, 3, d.JourneyVersion)
	require.Empty(t, d.MessageID)
	require.Nil(t, d.ConsentEventID)
	require.Equal(t, "STOP", d.Reasons[0].Detail)
	require.Len(t, d.Checks, 2)
	require.False(t, d.Checks[0].Passed)
	require.True(t, d.Checks[1].Passed)
	require.Equal(t, time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), d.DecidedAt)
	require.Equal(t, journey.ChannelEmail, d.Policy().Channel)
}

func TestMessagesForStep(t *testing.T) {
	ctx := context.Background()
	s := storagetest.New(t)
	c := newContact(t, s)
	_, _, err := s.RecordConsent(ctx, c.ID, journey.ChannelEmail, model.ConsentGranted, "form", time.Time{})
	require.NoError(t, err)
	now := time.Now()
	first, err := s.Gate(ctx, stepInput(c, "j1", "hello", "run1/hello", journey.ChannelEmail), decideWith(gateSettings(), journey.ChannelEmail, now))
	require.NoError(t, err)
	second, err := s.Gate(ctx, stepInput(c, "j1", "hello", "run2/hello", journey.ChannelEmail), decideWith(gateSettings(), journey.ChannelEmail, now))
	require.NoError(t, err)
	_, err = s.Gate(ctx, stepInput(c, "j1", "bye", "run1/bye", journey.ChannelEmail), decideWith(gateSettings(), journey.ChannelEmail, now))
	require.NoError(t, err)

	msgs, err := s.MessagesForStep(ctx, c.ID, "j1", "hello", 0)
	require.NoError(t, err)
	require.Len(t, msgs, 2)
	ids := []string{msgs[0].ID, msgs[1].ID}
	require.ElementsMatch(t, []string{first.Message.ID, second.Message.ID}, ids)
	for _, m := range msgs {
		require.Equal(t, "hello", m.StepID)
		require.NotNil(t, m.DecisionID)
	}
	none, err := s.MessagesForStep(ctx, c.ID, "j2", "hello", 0)
	require.NoError(t, err)
	require.Empty(t, none)
}

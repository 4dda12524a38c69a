package activities_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/tutti-dev/tutti/activities"
	"github.com/tutti-dev/tutti/internal/engagement"
	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/policy"
	"github.com/tutti-dev/tutti/internal/storage"
)

// engaged stores n engagement events named name for contact id, at the
// given instants.
func (b *bundle) engaged(t *testing.T, id, name string, at ...time.Time) {
	t.Helper()
	for _, when := range at {
		b.nextID++
		_, _, err := b.store.InsertEvent(b.ctx, storage.Event{ID: fmt.Sprintf("ev-%d", b.nextID), ContactID: id, Name: name,
			Properties: map[string]any{"message_id": fmt.Sprintf("m-%d", b.nextID)}, OccurredAt: when})
		require.NoError(t, err)
	}
}

// sent stores n ledger rows that reached the provider on ch, a month ago.
func (b *bundle) sent(t *testing.T, id string, ch journey.Channel, n int) {
	t.Helper()
	for range n {
		b.nextID++
		_, err := b.store.Pool().Exec(b.ctx, `
			INSERT INTO messages (id, idempotency_key, contact_id, journey_id, journey_version, step_id, channel, class, provider, status, created_at)
			VALUES ($1, $1, $2, 'old', 1, 's', $3, 'marketing', 'sandbox', 'sent', now() - interval '30 days')`,
			fmt.Sprintf("msg-%d", b.nextID), id, ch)
		require.NoError(t, err)
	}
}

// chooser is an activity environment whose activities keep to settings.
func (b *bundle) chooser(settings policy.Settings) *testsuite.TestActivityEnvironment {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(&activities.Activities{Store: b.store, Policy: &settings})
	return env
}

func weekly(first time.Time, weeks int) []time.Time {
	var out []time.Time
	for w := range weeks {
		out = append(out, first.AddDate(0, 0, -7*w))
	}
	return out
}

// send_time: best against real PostgreSQL: the contact's own habit (SMS
// replies on Thursday evenings in New York) wins over the workspace's
// Tuesday mornings, the choice keeps to SMS quiet hours (21:00), and the
// choice and its evidence are stored under the send's key: a retry gets
// the same answer even when new engagement arrived since.
func TestChooseSendBestTime(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ny, err := time.LoadLocation("America/New_York")
	require.NoError(t, err)
	alice, _, err := b.store.UpsertContact(b.ctx, storage.ContactInput{ID: b.alice.ID, TimeZone: "America/New_York"})
	require.NoError(t, err)
	require.Equal(t, "America/New_York", alice.TimeZone)
	// Monday 2 March 2026 09:00 in New York.
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, ny)
	// Alice replies on Thursdays around 21:00-21:59, outside SMS hours.
	b.engaged(t, alice.ID, "sms.replied", weekly(time.Date(2026, 2, 26, 21, 15, 0, 0, ny), 6)...)
	b.engaged(t, alice.ID, "email.opened", time.Date(2026, 2, 25, 20, 40, 0, 0, ny))
	// Everyone else opens on Tuesday mornings.
	for i := range 5 {
		other, _, err := b.store.UpsertContact(b.ctx, storage.ContactInput{Email: fmt.Sprintf("o%d@example.com", i), TimeZone: "America/New_York"})
		require.NoError(t, err)
		b.engaged(t, other.ID, "email.opened", weekly(time.Date(2026, 2, 24, 10, 5, 0, 0, ny), 4)...)
	}
	env := b.chooser(policy.DefaultSettings())
	var a *activities.Activities
	in := activities.ChooseSendInput{IdempotencyKey: "enrollment/e1/offer/1", ContactID: alice.ID, JourneyID: "welcome", StepID: "offer",
		Class: journey.ClassMarketing, Now: now.UTC(),
		Send: journey.Send{Channel: journey.ChannelSMS, SendTime: journey.SendTimeBest, Within: journey.Duration(7 * 24 * time.Hour), SMS: &journey.SMSMessage{Body: "hi"}}}
	res, err := env.ExecuteActivity(a.ChooseSend, in)
	require.NoError(t, err)
	var got activities.ChooseSendResult
	require.NoError(t, res.Get(&got))
	require.Equal(t, journey.ChannelSMS, got.Channel)
	require.True(t, time.Date(2026, 3, 5, 20, 0, 0, 0, ny).Equal(got.SendAt),
		"Thursday 20:00, the last hour before quiet hours next to her 21:00 habit; got %s", got.SendAt.In(ny))

	c, err := b.store.SendChoice(b.ctx, in.IdempotencyKey)
	require.NoError(t, err)
	require.Equal(t, alice.ID, c.ContactID)
	require.NotNil(t, c.SendAt)
	te := c.Evidence.Time
	require.NotNil(t, te)
	require.Equal(t, "America/New_York", te.Zone)
	require.Equal(t, "7d", te.Within)
	require.Equal(t, 7, te.Engagements)
	require.Equal(t, 7+20, te.WorkspaceEngagements, "hers and the others'")
	require.Equal(t, "Thu 20:00", te.CellName)
	require.Equal(t, 1, te.HourEngagements, "one open at 20:40 on a Wednesday")
	require.Equal(t, engagement.DefaultHourModel, te.Model)
	require.Greater(t, te.Score, te.NowScore)
	require.Contains(t, te.QuietHours, "08:00-21:00")
	t.Log(engagement.Describe(c.Channel, c.SendAt, c.Evidence))

	// A retry after more engagement keeps the first answer.
	b.engaged(t, alice.ID, "sms.replied", weekly(time.Date(2026, 3, 1, 9, 15, 0, 0, ny), 1)...)
	res, err = env.ExecuteActivity(a.ChooseSend, in)
	require.NoError(t, err)
	var again activities.ChooseSendResult
	require.NoError(t, res.Get(&again))
	require.Equal(t, got, again)

	// A new contact (no history) gets the workspace's pattern.
	bob, _, err := b.store.UpsertContact(b.ctx, storage.ContactInput{Email: "bob@example.com", TimeZone: "America/New_York"})
	require.NoError(t, err)
	in.IdempotencyKey, in.ContactID = "enrollment/e2/offer/1", bob.ID
	in.Send = journey.Send{Channel: journey.ChannelEmail, SendTime: journey.SendTimeBest, Email: &journey.EmailMessage{Subject: "s", Text: "t"}}
	res, err = env.ExecuteActivity(a.ChooseSend, in)
	require.NoError(t, err)
	require.NoError(t, res.Get(&got))
	require.True(t, time.Date(2026, 3, 3, 9, 0, 0, 0, ny).Equal(got.SendAt),
		"within the default 24h: Tuesday 09:00, the hour before the workspace's Tuesday 10:00; got %s", got.SendAt.In(ny))
}

// channel: best against real PostgreSQL: the channel the contact engages
// on, unless the gate would not allow it; the blocked channel and its
// reasons are in the evidence.
func TestChooseSendBestChannel(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.grant(t, journey.ChannelEmail)
	_, _, err := b.store.RecordConsent(b.ctx, b.alice.ID, journey.ChannelSMS, model.ConsentGranted, "test", time.Now().Add(-time.Minute))
	require.NoError(t, err)
	now := time.Now()
	// Alice ignores email and answers texts.
	b.sent(t, b.alice.ID, journey.ChannelEmail, 10)
	b.sent(t, b.alice.ID, journey.ChannelSMS, 5)
	b.engaged(t, b.alice.ID, "sms.replied", now.Add(-20*24*time.Hour), now.Add(-21*24*time.Hour), now.Add(-22*24*time.Hour))
	env := b.chooser(policy.DefaultSettings())
	var a *activities.Activities
	in := activities.ChooseSendInput{IdempotencyKey: "enrollment/e1/pick/1", ContactID: b.alice.ID, JourneyID: "welcome", StepID: "pick",
		Class: journey.ClassMarketing, Now: now,
		Send: journey.Send{Channel: journey.ChannelBest, Email: &journey.EmailMessage{Subject: "s", Text: "t"}, SMS: &journey.SMSMessage{Body: "hi"}}}
	res, err := env.ExecuteActivity(a.ChooseSend, in)
	require.NoError(t, err)
	var got activities.ChooseSendResult
	require.NoError(t, res.Get(&got))
	require.Equal(t, activities.ChooseSendResult{Channel: journey.ChannelSMS}, got)
	c, err := b.store.SendChoice(b.ctx, in.IdempotencyKey)
	require.NoError(t, err)
	require.Len(t, c.Evidence.Channels, 2)
	require.Equal(t, engagement.ChannelEvidence{Channel: journey.ChannelSMS, Sent: 5, Engaged: 3, PriorRate: 3.0 / 5, Cost: 0.0083,
		Rate: (3 + 10*0.6) / 15}, c.Evidence.Channels[1])
	require.Equal(t, 10, c.Evidence.Channels[0].Sent)
	require.Nil(t, c.SendAt)

	// Once she texts STOP, SMS is no longer the gate's to allow: email.
	_, _, err = b.store.RecordConsent(b.ctx, b.alice.ID, journey.ChannelSMS, model.ConsentRevoked, "sms:STOP", time.Now())
	require.NoError(t, err)
	in.IdempotencyKey = "enrollment/e1/pick/2"
	res, err = env.ExecuteActivity(a.ChooseSend, in)
	require.NoError(t, err)
	require.NoError(t, res.Get(&got))
	require.Equal(t, journey.ChannelEmail, got.Channel)
	c, err = b.store.SendChoice(b.ctx, in.IdempotencyKey)
	require.NoError(t, err)
	require.Equal(t, []engagement.BlockedChannel{{Channel: journey.ChannelSMS, Reasons: []string{policy.CodeConsentRevoked}}}, c.Evidence.Blocked)
}

package preview_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/policy"
	"github.com/tutti-dev/tutti/internal/preview"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/internal/storage/storagetest"
)

const spec = `
id: nurture
name: Nurture
trigger: {type: api}
reentry: {policy: once}
goal: {event: purchase}
steps:
  - id: hello
    send:
      channel: email
      email: {subject: 'Hello {{ .contact.first_name }}', text: 'Hi {{ .contact.first_name }}'}
  - id: again
    send:
      channel: email
      email: {subject: 'Still there?', text: 'Anything we can help with?'}
  - id: pause
    wait: {duration: 2d}
  - id: interested
    branch:
      condition: 'events.count("page.viewed", {"path": "/pricing"}, days(7)) >= 2'
      then: text
      else: done
  - id: text
    send:
      channel: sms
      sms: {body: 'Hi {{ .contact.first_name }}, 10% off today'}
  - id: later
    wait: {duration: 5d}
  - id: last
    send:
      channel: email
      email: {subject: 'Last chance', text: 'Bye'}
  - id: done
    exit: {reason: not_interested}
`

func setup(t *testing.T) (*storage.Store, storage.Contact, journey.Spec, policy.Settings) {
	t.Helper()
	ctx := context.Background()
	store := storagetest.New(t)
	c, _, err := store.UpsertContact(ctx, storage.ContactInput{Email: "ada@example.com", Phone: "+14155550123",
		TimeZone: "America/New_York", Attributes: map[string]any{"first_name": "Ada"}})
	require.NoError(t, err)
	_, _, err = store.RecordConsent(ctx, c.ID, journey.ChannelEmail, model.ConsentGranted, "form", time.Time{})
	require.NoError(t, err)
	s, err := journey.Parse([]byte(spec))
	require.NoError(t, err)
	require.Empty(t, journey.Validate(s))
	settings := policy.DefaultSettings()
	settings.DefaultTimeZone, settings.DefaultRegion = "UTC", "US"
	return store, c, s, settings
}

// A preview plays the real interpreter in simulated time: the gate's
// cooldown defers the second email, a branch reads the contact's stored
// events, a message without consent is skipped with the gate's reason, a
// posted goal event ends the run, and nothing is written.
func TestRun_PathMessagesAndDecisions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, c, s, settings := setup(t)
	start := time.Date(2026, 3, 2, 15, 0, 0, 0, time.UTC) // a Monday, 10:00 in New York
	for i, ago := range []time.Duration{24 * time.Hour, 48 * time.Hour} {
		_, _, _, err := store.TrackEvent(ctx, storage.Event{ID: "pv" + string(rune('1'+i)), ContactID: c.ID, Name: "page.viewed",
			Properties: map[string]any{"path": "/pricing"}, OccurredAt: time.Now().Add(-ago)})
		require.NoError(t, err)
	}
	before := rows(ctx, t, store, c.ID)

	// The branch reads now as the simulated moment: the page views above
	// are "within 7 days" of a start taken as now.
	start = time.Now().UTC().Truncate(time.Second)
	res, err := preview.Run(ctx, preview.Deps{Store: store, Policy: settings}, preview.Input{
		Spec: s, ContactID: c.ID, Start: start,
		Events: []preview.Event{{After: journey.Duration(4 * 24 * time.Hour), Name: "purchase"}},
	})
	require.NoError(t, err)

	require.Equal(t, model.RunConverted, res.Status)
	require.Equal(t, "goal: purchase", res.ExitReason)
	require.Len(t, res.Events, 1)
	require.Equal(t, start.Add(4*24*time.Hour), res.Events[0].At)

	var path []string
	for _, st := range res.Steps {
		path = append(path, st.StepID)
	}
	require.Equal(t, []string{"hello", "again", "pause", "interested", "text", "later"}, path)
	require.Equal(t, "then", res.Steps[3].Outcome)

	require.Len(t, res.Messages, 4)
	hello, deferred, again, text := res.Messages[0], res.Messages[1], res.Messages[2], res.Messages[3]
	require.Equal(t, "would_send", hello.Status)
	require.Equal(t, start, hello.At)
	require.Equal(t, "Hello Ada", hello.Email.Subject)
	require.Equal(t, "ada@example.com", hello.Email.To)

	// The email cooldown (16 hours by default) counts the preview's own send.
	require.Equal(t, string("deferred"), deferred.Status)
	require.Equal(t, "again", deferred.StepID)
	require.Contains(t, deferred.Reason, policy.CodeCooldownEmail)
	require.Equal(t, "would_send", again.Status)
	require.Equal(t, deferred.Decision.Until, again.At)
	require.Equal(t, start.Add(16*time.Hour), again.At)

	require.Equal(t, "text", text.StepID)
	require.Equal(t, string(model.MessageSkipped), text.Status)
	require.Equal(t, policy.CodeNoConsent, text.Reason)
	require.Nil(t, text.SMS, "a message the gate refused is not shown as sent")

	require.Equal(t, before, rows(ctx, t, store, c.ID), "a preview writes nothing")
}

// Without the stored behaviour the branch goes the other way, and a run
// still waiting at the horizon is reported as active.
func TestRun_ElsePathAndHorizon(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, c, s, settings := setup(t)
	res, err := preview.Run(ctx, preview.Deps{Store: store, Policy: settings}, preview.Input{Spec: s, ContactID: c.ID})
	require.NoError(t, err)
	require.Equal(t, model.RunCompleted, res.Status)
	require.Equal(t, "not_interested", res.ExitReason)
	require.Equal(t, "else", res.Steps[3].Outcome)

	res, err = preview.Run(ctx, preview.Deps{Store: store, Policy: settings}, preview.Input{Spec: s, ContactID: c.ID,
		Horizon: 24 * time.Hour})
	require.NoError(t, err)
	require.Equal(t, model.RunActive, res.Status)
	require.Equal(t, res.StartedAt.Add(24*time.Hour), res.EndedAt)

	_, err = preview.Run(ctx, preview.Deps{Store: store, Policy: settings}, preview.Input{Spec: s, ContactID: "c_nobody"})
	require.ErrorIs(t, err, preview.ErrContactNotFound)
}

func rows(ctx context.Context, t *testing.T, s *storage.Store, contactID string) [3]int {
	t.Helper()
	ds, err := s.DecisionsFor(ctx, contactID, "", "", 1000)
	require.NoError(t, err)
	ms, err := s.MessagesForContact(ctx, contactID, 1000)
	require.NoError(t, err)
	es, err := s.EnrollmentsForContact(ctx, contactID)
	require.NoError(t, err)
	return [3]int{len(ds), len(ms), len(es)}
}

// A step that chooses its channel and time is previewed with the real
// choice, from the contact's real engagement, without storing it: the
// message goes out at the chosen hour on the channel the gate allows.
func TestRun_BestChannelAndTime(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, c, _, settings := setup(t)
	ny, err := time.LoadLocation("America/New_York")
	require.NoError(t, err)
	// Ada opens on Tuesdays around 08:20 in New York.
	for w := range 5 {
		at := time.Date(2026, 2, 24, 8, 20, 0, 0, ny).AddDate(0, 0, -7*w)
		_, _, _, err := store.TrackEvent(ctx, storage.Event{ID: "open-" + string(rune('a'+w)), ContactID: c.ID, Name: "email.opened", OccurredAt: at})
		require.NoError(t, err)
	}
	s, err := journey.ParseAndValidate([]byte(`
id: best
name: Best
trigger: {type: api}
reentry: {policy: once}
steps:
  - id: offer
    send:
      channel: best
      send_time: best
      within: 24h
      email: {subject: 'Offer', text: 'Hi'}
      sms: {body: 'Offer'}
`))
	require.NoError(t, err)
	before := rows(ctx, t, store, c.ID)
	start := time.Date(2026, 3, 2, 15, 0, 0, 0, time.UTC) // Monday 10:00 in New York
	res, err := preview.Run(ctx, preview.Deps{Store: store, Policy: settings}, preview.Input{Spec: s, ContactID: c.ID, Start: start})
	require.NoError(t, err)
	require.Equal(t, model.RunCompleted, res.Status)
	tuesday := time.Date(2026, 3, 3, 8, 0, 0, 0, ny)
	require.Len(t, res.Messages, 1)
	require.Equal(t, "would_send", res.Messages[0].Status)
	require.Equal(t, journey.ChannelEmail, res.Messages[0].Channel, "no SMS consent: email")
	require.True(t, tuesday.Equal(res.Messages[0].At), "at her Tuesday 08:00, got %s", res.Messages[0].At.In(ny))
	require.Equal(t, "chose email at 2026-03-03T13:00:00Z: sent", res.Steps[0].Outcome)
	require.Equal(t, before, rows(ctx, t, store, c.ID), "a preview writes nothing")
	cs, err := store.SendChoicesForStep(ctx, c.ID, "best", "offer", 10)
	require.NoError(t, err)
	require.Empty(t, cs, "nor stores its choice")
}

// A webhook step is previewed through the gate's decision for the post
// (suppressions only): would send, or skipped for a suppressed contact.
func TestRun_WebhookStep(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, c, _, settings := setup(t)
	s, err := journey.Parse([]byte(`
id: alert
name: Sales alert
trigger: {type: api}
reentry: {policy: always}
steps:
  - id: tell_sales
    webhook: {destination: sales, payload: {contact: '{{ .contact.id }}'}}
`))
	require.NoError(t, err)
	require.Empty(t, journey.Validate(s))
	res, err := preview.Run(ctx, preview.Deps{Store: store, Policy: settings}, preview.Input{Spec: s, ContactID: c.ID})
	require.NoError(t, err)
	require.Len(t, res.Messages, 1)
	require.Equal(t, "would_send", res.Messages[0].Status)
	require.Equal(t, "sales", res.Messages[0].Webhook)
	require.Equal(t, journey.ChannelWebhook, res.Messages[0].Channel)

	_, _, err = store.AddSuppression(ctx, storage.Suppression{ContactID: c.ID, Reason: model.SuppressDoNotContact, Source: "support"})
	require.NoError(t, err)
	res, err = preview.Run(ctx, preview.Deps{Store: store, Policy: settings}, preview.Input{Spec: s, ContactID: c.ID})
	require.NoError(t, err)
	require.Equal(t, string(model.MessageSkipped), res.Messages[0].Status)
	require.Contains(t, res.Messages[0].Reason, "suppressed")
}

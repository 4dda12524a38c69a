package journey

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const examplesDir = "../../examples/journeys"

func loadExample(t *testing.T, name string) Spec {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(examplesDir, name))
	require.NoError(t, err)
	s, err := ParseAndValidate(data)
	require.NoError(t, err, "%s must be a valid journey", name)
	return s
}

// TestExamples_AllValid loads every spec in examples/journeys: an example
// that does not validate is worse than none.
func TestExamples_AllValid(t *testing.T) {
	entries, err := os.ReadDir(examplesDir)
	require.NoError(t, err)
	var n int
	for _, e := range entries {
		ext := strings.ToLower(filepath.Ext(e.Name()))
		if e.IsDir() || (ext != ".yaml" && ext != ".yml" && ext != ".json") {
			continue
		}
		n++
		t.Run(e.Name(), func(t *testing.T) {
			s := loadExample(t, e.Name())
			require.Equal(t, strings.TrimSuffix(e.Name(), filepath.Ext(e.Name())), s.ID, "file name matches the journey id")
		})
	}
	require.GreaterOrEqual(t, n, 2)
}

func TestExamples_Welcome(t *testing.T) {
	s := loadExample(t, "welcome.yaml")
	require.Equal(t, TriggerAPI, s.Trigger.Type)
	require.Equal(t, ReentryOnce, s.Reentry.Policy)
	require.Equal(t, "purchase", s.Goal.Event)
	require.Equal(t, []string{"unsubscribed"}, s.ExitEvents)
	require.Equal(t, []Channel{ChannelEmail, ChannelSMS}, s.Channels())

	var kinds []StepKind
	for _, st := range s.Steps {
		kinds = append(kinds, st.Kind())
	}
	require.Equal(t, []StepKind{KindSend, KindWait, KindWaitFor, KindBranch, KindSend, KindExit}, kinds)

	// The demo must move within a minute.
	require.LessOrEqual(t, s.Steps[1].Wait.Duration.Std(), 30*time.Second)
	require.LessOrEqual(t, s.Steps[2].WaitFor.Timeout.Std(), 30*time.Second)

	// The paths the interpreter takes.
	wf := s.StepIndex("wait_for_open")
	require.Equal(t, "done", s.Resolve(wf, s.Steps[wf].WaitFor.OnEvent))
	require.Equal(t, "can_text", s.Resolve(wf, s.Steps[wf].WaitFor.OnTimeout))
	br := s.StepIndex("can_text")
	require.Equal(t, "sms_nudge", s.Resolve(br, s.Steps[br].Branch.Then))
	require.Equal(t, "done", s.Resolve(br, s.Steps[br].Branch.Else))
	require.Equal(t, "done", s.Successor(s.StepIndex("sms_nudge")))
	require.Equal(t, "completed", s.Steps[s.StepIndex("done")].Exit.Reason)

	// A contact without a first name still gets a friendly email and SMS.
	data := TemplateData(ContactView{ID: "c1", Email: "sam@example.com"}, s.ID, 1)
	email, err := RenderEmail(*s.Steps[0].Send.Email, data)
	require.NoError(t, err)
	require.Equal(t, "Welcome to Tutti, there!", email.Subject)
	require.Contains(t, email.HTML, "<p>Hi there,</p>")
	require.True(t, strings.HasPrefix(email.Text, "Hi there,\n"))
	sms, err := RenderSMS(*s.Steps[s.StepIndex("sms_nudge")].Send.SMS, data)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(sms.Body, "Hi there, "))

	cond, err := CompileCondition(s.Steps[br].Branch.Condition)
	require.NoError(t, err)
	for consent, want := range map[string]bool{"granted": true, "revoked": false, "": false} {
		got, err := cond.Eval(ConditionInput{Contact: data["contact"].(map[string]any), Consent: map[string]string{"sms": consent}})
		require.NoError(t, err)
		require.Equal(t, want, got, consent)
	}
}

func TestExamples_AbandonedCart(t *testing.T) {
	s := loadExample(t, "abandoned_cart.yaml")
	require.Equal(t, Trigger{Type: TriggerEvent, Event: "cart.abandoned"}, s.Trigger)
	require.Equal(t, Reentry{Policy: ReentryCooldown, Cooldown: Duration(24 * time.Hour)}, s.Reentry)
	require.Equal(t, "purchase", s.Goal.Event)

	reminder := s.Steps[s.StepIndex("reminder_email")].Send.Email
	require.True(t, strings.HasPrefix(reminder.TemplateID, "d-"))

	withCart := TemplateData(ContactView{ID: "c1", Attributes: map[string]any{
		"first_name": "ana", "cart_url": "https://shop.example.com/cart/9", "country": "US", "cart_total": 80.0,
	}}, s.ID, 1)
	email, err := RenderEmail(*reminder, withCart)
	require.NoError(t, err)
	require.Equal(t, map[string]any{"first_name": "ana", "cart_url": "https://shop.example.com/cart/9", "items": "a few"}, email.TemplateData)

	// Without a cart link the reminder is skipped rather than sent broken.
	_, err = RenderEmail(*reminder, TemplateData(ContactView{ID: "c2"}, s.ID, 1))
	var missing *MissingDataError
	require.ErrorAs(t, err, &missing)
	require.Equal(t, ".contact.cart_url", missing.Field)

	cond, err := CompileCondition(s.Steps[s.StepIndex("can_text")].Branch.Condition)
	require.NoError(t, err)
	got, err := cond.Eval(ConditionInput{Contact: withCart["contact"].(map[string]any), Consent: map[string]string{"sms": "granted"}})
	require.NoError(t, err)
	require.True(t, got)
	got, err = cond.Eval(ConditionInput{Contact: TemplateData(ContactView{ID: "c3"}, s.ID, 1)["contact"].(map[string]any), Consent: map[string]string{"sms": "granted"}})
	require.NoError(t, err)
	require.False(t, got, "no country or cart total: no SMS, and no error")

	sms, err := RenderSMS(*s.Steps[s.StepIndex("sms_reminder")].Send.SMS, withCart)
	require.NoError(t, err)
	require.Equal(t, "Ana, your cart is waiting: https://shop.example.com/cart/9 Reply STOP to opt out.", sms.Body)
}

func TestExamples_PricingInterest(t *testing.T) {
	s := loadExample(t, "pricing_interest.yaml")
	wu := s.Steps[s.StepIndex("next_weekday_morning")].WaitUntil
	require.NotNil(t, wu)
	h, m, ok := wu.Clock()
	require.True(t, ok)
	require.Equal(t, [2]int{9, 30}, [2]int{h, m})
	require.Equal(t, []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday}, wu.Weekdays())

	wf := s.StepIndex("wait_for_click")
	require.Equal(t, "alert_sales", s.Resolve(wf, s.Steps[wf].WaitFor.OnEvent))
	hook := s.Steps[s.StepIndex("alert_sales")].Webhook
	require.Equal(t, "sales", hook.Destination)
	payload, err := RenderWebhookPayload(*hook, TemplateData(ContactView{ID: "c1", Email: "ana@example.com",
		Attributes: map[string]any{"first_name": "Ana"}}, s.ID, 1))
	require.NoError(t, err)
	require.Equal(t, map[string]any{"type": "pricing_interest", "contact_id": "c1", "email": "ana@example.com",
		"first_name": "Ana", "company": ""}, payload)
}

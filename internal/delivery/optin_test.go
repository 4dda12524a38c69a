package delivery_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/delivery"
	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/storage"
)

func TestOptInPrompt(t *testing.T) {
	t.Parallel()
	c := storage.Contact{ID: "c_1", Phone: "+14155550100", Email: "p@example.com"}
	m := delivery.OptInPrompt(c, 42, "Reply YES to confirm")

	require.Equal(t, "sms-double-opt-in/42", m.Ledger.IdempotencyKey, "keyed by the consent event: the same opt-in never texts twice")
	require.Equal(t, string(journey.ClassTransactional), m.Ledger.Class, "it answers the contact's own request")
	require.Equal(t, delivery.OptInPromptJourneyID, m.Ledger.JourneyID)
	require.Equal(t, delivery.OptInPromptStepID, m.Ledger.StepID)
	require.Equal(t, journey.ChannelSMS, m.Ledger.Channel)
	require.NotNil(t, m.Ledger.ConsentEventID)
	require.Equal(t, int64(42), *m.Ledger.ConsentEventID)
	require.Len(t, m.Content, 1, "SMS only")
	sms := m.Content[journey.ChannelSMS].SMS
	require.NotNil(t, sms)
	require.Equal(t, c.Phone, sms.To)
	require.Equal(t, "Reply YES to confirm", sms.Body)

	other := delivery.OptInPrompt(c, 43, "Reply YES to confirm")
	require.NotEqual(t, m.Ledger.IdempotencyKey, other.Ledger.IdempotencyKey, "a new opt-in asks again")
}

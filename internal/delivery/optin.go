package delivery

import (
	"strconv"

	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/provider"
	"github.com/tutti-dev/tutti/internal/storage"
)

// The SMS double opt-in prompt goes into the ledger like any message, under a
// pseudo-journey no real journey can be called (journey ids start with a
// letter or digit), so it shows in the contact's messages and is never
// mistaken for a journey send.
const (
	OptInPromptJourneyID = "_consent"
	OptInPromptStepID    = "sms_double_opt_in"
)

// OptInPrompt is the SMS asking contact to confirm the pending SMS opt-in
// recorded as consent event consentEventID: a transactional message (it
// answers the contact's own request, so marketing consent does not apply),
// keyed by that event, so recording the same opt-in again never texts twice,
// and stopped like any message by a do-not-contact suppression or a STOP
// still in force.
func OptInPrompt(c storage.Contact, consentEventID int64, body string) Message {
	return Message{
		Ledger: storage.Message{
			IdempotencyKey: "sms-double-opt-in/" + strconv.FormatInt(consentEventID, 10),
			ContactID:      c.ID,
			JourneyID:      OptInPromptJourneyID,
			StepID:         OptInPromptStepID,
			Channel:        journey.ChannelSMS,
			Class:          string(journey.ClassTransactional),
			ConsentEventID: &consentEventID,
		},
		Content: map[journey.Channel]Content{journey.ChannelSMS: {SMS: &provider.SMS{To: c.Phone, Body: body}}},
	}
}

package webhook

import (
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/storage"
)

// What a provider event changes.
//
// SendGridUpdate, TwilioInboundUpdate and TwilioStatusUpdate decide, without
// I/O, what one authenticated event changes in Tutti, from the event and the
// message and contact the handler looked up for it. The answer is an Update
// in storage's vocabulary: the provider_events row that deduplicates the
// event, and the effects (ledger status, engagement, suppression, consent, a
// behaviour event for journeys to wait for) that storage.ApplyProviderEvent
// commits with it in one transaction. The handler then tells the contact's
// running journeys: consent changes as consent signals, the behaviour event
// as an event signal.

// Provider names, as stored in provider_events and on ledger rows.
const (
	ProviderSendGrid = "sendgrid"
	ProviderTwilio   = "twilio"
)

// Update is one provider event and what it changes, ready for
// storage.ApplyProviderEvent.
type Update struct {
	Event   storage.ProviderEvent
	Effects storage.ProviderEffects
}

// ViaAlias is u for a contact found by an alias: an identifier that a
// contact merged into it kept (storage.MergeContacts), not the address it
// is reached at. An opt-out from that address still counts (the person
// said stop); an opt-in does not, since it was not given for the address
// the contact is sent to.
func (u Update) ViaAlias() Update {
	var keep []storage.ConsentChange
	for _, c := range u.Effects.Consents {
		if c.Status == model.ConsentRevoked {
			keep = append(keep, c)
		}
	}
	u.Effects.Consents = keep
	return u
}

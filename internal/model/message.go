package model

// MessageStatus is where one message stands in the ledger: the status
// column of messages.
type MessageStatus string

const (
	MessageReserved  MessageStatus = "reserved"  // the gate allowed it; no request written yet
	MessageInFlight  MessageStatus = "in_flight" // a request is being written; until it settles the provider may have it
	MessageRetrying  MessageStatus = "retrying"  // last attempt failed retryably; provider did not accept it
	MessageSent      MessageStatus = "sent"      // provider accepted it
	MessageDelivered MessageStatus = "delivered" // provider reported delivery
	MessageOpened    MessageStatus = "opened"
	MessageClicked   MessageStatus = "clicked"
	MessageFailed    MessageStatus = "failed"  // permanent provider failure
	MessageBounced   MessageStatus = "bounced" // provider reported a bounce
	MessageDropped   MessageStatus = "dropped" // SendGrid dropped it (suppressed address, invalid...); not delivered
	// MessageComplained: the recipient reported the message as spam.
	MessageComplained MessageStatus = "complained"
	MessageSkipped    MessageStatus = "skipped" // not sent by decision (no consent, missing data...)
	// MessageUnknown: a request was written and never answered, and the
	// provider offers no way to find out (SendGrid): it may have the message,
	// so it is never resent. Listed across contacts for ops.
	MessageUnknown MessageStatus = "unknown"
)

// Valid reports whether s is a ledger status.
func (s MessageStatus) Valid() bool {
	switch s {
	case MessageReserved, MessageInFlight, MessageRetrying, MessageSent, MessageDelivered,
		MessageOpened, MessageClicked, MessageFailed, MessageBounced, MessageDropped,
		MessageComplained, MessageSkipped, MessageUnknown:
		return true
	}
	return false
}

// SendOutcome is how a report counts a ledger status: what became of the
// send, whatever came after (an opened email was sent).
type SendOutcome string

const (
	OutcomeSent    SendOutcome = "sent"    // the provider accepted it (it may have bounced since)
	OutcomeFailed  SendOutcome = "failed"  // the provider refused or dropped it
	OutcomeSkipped SendOutcome = "skipped" // not sent, by decision (with a reason)
	OutcomePending SendOutcome = "pending" // allowed, not settled yet (reserved, in flight, retrying)
	OutcomeUnknown SendOutcome = "unknown" // a request went unanswered; never resent
)

// Outcome is the status's SendOutcome.
func (s MessageStatus) Outcome() SendOutcome {
	switch s {
	case MessageSent, MessageDelivered, MessageOpened, MessageClicked, MessageBounced, MessageComplained:
		return OutcomeSent
	case MessageFailed, MessageDropped:
		return OutcomeFailed
	case MessageSkipped:
		return OutcomeSkipped
	case MessageUnknown:
		return OutcomeUnknown
	}
	return OutcomePending
}

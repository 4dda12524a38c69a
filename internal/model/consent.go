package model

// ConsentStatus is the state of one consent record: the status column of
// consent_events and consents, the consent a running journey is signalled,
// and what the send gate reads.
type ConsentStatus string

const (
	ConsentGranted ConsentStatus = "granted"
	ConsentRevoked ConsentStatus = "revoked"
	// ConsentPending: opt-in started but not confirmed (SMS double opt-in
	// until the contact replies YES/START, or an unconfirmed email).
	ConsentPending ConsentStatus = "pending"
	// ConsentNone: explicitly no consent; the same as having no record, so it
	// is never recorded (journey conditions see it for a channel without one).
	ConsentNone ConsentStatus = "none"
)

// Recordable reports whether s can be written to the consent history:
// granted, revoked or pending. ConsentNone means no record at all.
func (s ConsentStatus) Recordable() bool {
	switch s {
	case ConsentGranted, ConsentRevoked, ConsentPending:
		return true
	}
	return false
}

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

// restrictiveness orders the statuses for MergeConsent: a withdrawal over
// an unconfirmed opt-in over a confirmed one. No record (none, "") is not
// a decision, so it ranks below all of them.
func (s ConsentStatus) restrictiveness() int {
	switch s {
	case ConsentRevoked:
		return 3
	case ConsentPending:
		return 2
	case ConsentGranted:
		return 1
	}
	return 0
}

// MergeConsent is the consent a merge's survivor keeps for one channel (or
// subscription type), from the survivor's record and the absorbed
// contact's: the most restrictive one. Revoked beats pending beats granted:
// the person said stop on one identity, or has an opt-in unconfirmed there,
// and consent is never assumed, so the survivor is not sent to until the
// person confirms again. No record on one side is not a decision and takes
// the other side's.
//
// sameAddress says whether the absorbed record was given for the address
// the survivor reaches on that channel (the survivor had none and took the
// absorbed contact's, or both had the same). If not, only a revoke carries
// over: a grant, or an opt-in in progress, for another address says
// nothing about this one. ConsentNone (or "") in the result means no record.
func MergeConsent(survivor, absorbed ConsentStatus, sameAddress bool) ConsentStatus {
	if !sameAddress && absorbed != ConsentRevoked {
		absorbed = ConsentNone
	}
	if absorbed.restrictiveness() > survivor.restrictiveness() {
		return absorbed
	}
	if survivor.restrictiveness() == 0 {
		return ConsentNone
	}
	return survivor
}

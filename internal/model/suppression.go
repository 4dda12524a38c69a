package model

// SuppressionReason says why a contact is suppressed: the reason column of
// the suppressions table.
type SuppressionReason string

const (
	// SuppressConverted: the contact reached the goal; stop selling it to them.
	SuppressConverted SuppressionReason = "converted"
	// SuppressInOpportunity: sales owns the contact (open deal).
	SuppressInOpportunity SuppressionReason = "in_opportunity"
	// SuppressDoNotContact: never contact, whatever the message.
	SuppressDoNotContact SuppressionReason = "do_not_contact"
	// SuppressHardBounce: the address does not exist.
	SuppressHardBounce SuppressionReason = "hard_bounce"
	// SuppressSpamComplaint: the contact reported a message as spam.
	SuppressSpamComplaint SuppressionReason = "spam_complaint"
	// SuppressUnengaged: explicitly suppressed as unengaged (the send gate's
	// computed unengaged rule is separate, see policy.Settings.UnengagedDays).
	SuppressUnengaged SuppressionReason = "unengaged"
)

// Valid reports whether r is a known suppression reason.
func (r SuppressionReason) Valid() bool {
	switch r {
	case SuppressConverted, SuppressInOpportunity, SuppressDoNotContact,
		SuppressHardBounce, SuppressSpamComplaint, SuppressUnengaged:
		return true
	}
	return false
}

// Hard reports whether the reason blocks transactional messages too. Unknown
// reasons are hard: a block is never assumed to be soft.
func (r SuppressionReason) Hard() bool {
	switch r {
	case SuppressConverted, SuppressInOpportunity, SuppressUnengaged:
		return false
	}
	return true
}

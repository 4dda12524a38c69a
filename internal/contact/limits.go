package contact

// Limits on what a contact carries. They are generous for real use and keep
// one contact from bloating every journey's input, every rendered message and
// every row that copies it. README "Limits" and openapi.yaml document them;
// the rendered-message limits live beside rendering (journey.MaxSMSBodyLength,
// journey.MaxEmailSubjectLength).
const (
	// MaxEmailLength is the longest address SMTP can carry (RFC 5321 path
	// limit minus the angle brackets), in characters, domain in Punycode.
	MaxEmailLength = 254
	// MaxExternalIDLength is the longest external_id, in characters.
	MaxExternalIDLength = 200
	// MaxAttributes is how many attributes one contact may have, counted
	// after a request's attributes are merged into the stored ones.
	MaxAttributes = 200
	// MaxAttributeNameLength is the longest attribute name, in characters.
	MaxAttributeNameLength = 100
	// MaxAttributeValueBytes is the largest attribute value, in bytes of its
	// JSON encoding (a string of 4 KiB of ASCII, or a small list or object).
	MaxAttributeValueBytes = 4 << 10
	// MaxAttributesBytes is the largest all attributes of one contact may be
	// together, in bytes of their JSON encoding, after the merge.
	MaxAttributesBytes = 64 << 10
)

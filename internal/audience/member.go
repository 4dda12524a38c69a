package audience

// Identity is what Tutti holds about a contact for ad audiences.
type Identity struct {
	ContactID string
	Email     string
	Phone     string
}

// Member is a contact as a destination receives it: hashed identifiers only.
type Member struct {
	ContactID string `json:"contact_id"`
	// Email and Phone are the SHA-256 of the normalised identifiers;
	// zero when the contact has none the destination can use.
	Email Digest `json:"email_sha256,omitzero"`
	Phone Digest `json:"phone_sha256,omitzero"`
}

// Rejection is an identifier that could not be normalised: recorded for
// its contact, while the rest of the batch goes on.
type Rejection struct {
	ContactID string `json:"contact_id"`
	Kind      Kind   `json:"kind"`
	Reason    string `json:"reason"`
}

// Prepare normalises and hashes identities for a destination, appending
// the members to members (a sync reuses one slice batch after batch). A
// contact with at least one usable identifier is a member; each identifier
// that could not be used is a rejection (a missing one is not).
func Prepare(d Destination, ids []Identity, members []Member) ([]Member, []Rejection) {
	var rejected []Rejection
	for _, id := range ids {
		m := Member{ContactID: id.ContactID}
		if id.Email != "" {
			if n, err := Normalize(d, Email, id.Email); err == nil {
				m.Email = HashOf(n)
			} else {
				rejected = append(rejected, Rejection{id.ContactID, Email, err.Error()})
			}
		}
		if id.Phone != "" && d != LinkedIn {
			if n, err := Normalize(d, Phone, id.Phone); err == nil {
				m.Phone = HashOf(n)
			} else {
				rejected = append(rejected, Rejection{id.ContactID, Phone, err.Error()})
			}
		}
		if !m.Email.IsZero() || !m.Phone.IsZero() {
			members = append(members, m)
		}
	}
	return members, rejected
}

// Batches cuts members into requests of at most the destination's size.
func Batches[T any](d Destination, members []T) [][]T {
	size := d.MaxBatch()
	out := make([][]T, 0, (len(members)+size-1)/size)
	for len(members) > 0 {
		n := min(size, len(members))
		out = append(out, members[:n:n])
		members = members[n:]
	}
	return out
}

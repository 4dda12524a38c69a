package contact

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
)

// IdentifierKind names an identifier a contact is known by.
type IdentifierKind string

// The identifiers that find a contact, and that erasure proofs are kept under.
const (
	IdentifierEmail      IdentifierKind = "email"
	IdentifierPhone      IdentifierKind = "phone"
	IdentifierExternalID IdentifierKind = "external_id"
)

// MinHashKeyLen is the shortest key NewHasher accepts: 32 bytes, the
// HMAC-SHA256 block of entropy a key from `openssl rand -hex 32` carries.
const MinHashKeyLen = 32

// DevHashKey is the key sandbox mode uses when TUTTI_ERASURE_HASH_KEY is
// unset. It is public, so hashes made with it protect nothing: live mode
// refuses to start without a key of its own.
var DevHashKey = func() []byte {
	sum := sha256.Sum256([]byte("tutti sandbox erasure hash key; not a secret"))
	return sum[:]
}()

// Hasher computes keyed hashes of normalised identifiers, so an erased
// person's opt-out can be recognised when the same address comes back
// without keeping the address. A plain SHA-256 would not do: every phone
// number of a country can be hashed in minutes and the hashes compared, so
// the key is what keeps the hashes from being reversed by someone who has
// only the database.
type Hasher struct{ key []byte }

// NewHasher returns a Hasher with key (at least MinHashKeyLen bytes).
func NewHasher(key []byte) (*Hasher, error) {
	if len(key) < MinHashKeyLen {
		return nil, fmt.Errorf("erasure hash key: at least %d bytes, got %d", MinHashKeyLen, len(key))
	}
	return &Hasher{key: append([]byte(nil), key...)}, nil
}

// DevHasher is the Hasher over DevHashKey.
func DevHasher() *Hasher { return &Hasher{key: DevHashKey} }

// Hash is HMAC-SHA256(key, kind || 0x00 || value) over an identifier already
// normalised (NormalizeEmail, NormalizePhone; external ids as given, trimmed):
// the kind is part of the message so an external id that happens to equal
// an email address hashes differently from it.
func (h *Hasher) Hash(kind IdentifierKind, value string) ([]byte, error) {
	switch kind {
	case IdentifierEmail, IdentifierPhone, IdentifierExternalID:
	default:
		return nil, fmt.Errorf("hash: unknown identifier kind %q", kind)
	}
	if value == "" {
		return nil, errors.New("hash: empty identifier")
	}
	m := hmac.New(sha256.New, h.key)
	m.Write([]byte(kind))
	m.Write([]byte{0})
	m.Write([]byte(value))
	return m.Sum(nil), nil
}

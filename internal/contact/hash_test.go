package contact_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/contact"
)

// The expected values were computed with OpenSSL, not with this package:
//
//	printf 'email\0jane.doe@example.com' | openssl dgst -sha256 -mac HMAC -macopt hexkey:<DevHashKey in hex>
func TestHasher_MatchesHMACSHA256(t *testing.T) {
	t.Parallel()
	require.Equal(t, "73024348776fc4dce35803711c311e5286de5f7620db42c7c2226c40b379730b", hex.EncodeToString(contact.DevHashKey),
		"changing DevHashKey orphans every sandbox erasure proof")
	h := contact.DevHasher()
	for _, tc := range []struct {
		kind  contact.IdentifierKind
		value string
		want  string
	}{
		{contact.IdentifierEmail, "jane.doe@example.com", "eab4a81074c53867b2714dfc9a5b981a69dd18a47f9e4c85324e0679da5fa6c4"},
		{contact.IdentifierPhone, "+14155550123", "2d4684871d8140930e1736b41ee0c246180de8a96cce967ea1f7c4ec714b3ac5"},
	} {
		got, err := h.Hash(tc.kind, tc.value)
		require.NoError(t, err)
		require.Equal(t, tc.want, hex.EncodeToString(got), "%s %q", tc.kind, tc.value)
	}
}

func TestHasher_KindAndKeyAreInTheHash(t *testing.T) {
	t.Parallel()
	other, err := contact.NewHasher(bytes.Repeat([]byte{7}, contact.MinHashKeyLen))
	require.NoError(t, err)
	hash := func(h *contact.Hasher, kind contact.IdentifierKind, v string) []byte {
		b, err := h.Hash(kind, v)
		require.NoError(t, err)
		return b
	}
	dev := contact.DevHasher()
	const v = "user-42"
	asExt := hash(dev, contact.IdentifierExternalID, v)
	plain := sha256.Sum256([]byte(v))
	require.Len(t, asExt, sha256.Size)
	require.Equal(t, asExt, hash(dev, contact.IdentifierExternalID, v), "the same identifier hashes the same")
	require.NotEqual(t, asExt, hash(dev, contact.IdentifierEmail, v), "an external id and an email with the same text differ")
	require.NotEqual(t, asExt, hash(other, contact.IdentifierExternalID, v), "another key, another hash")
	require.NotEqual(t, asExt, plain[:], "the hash is keyed")
}

func TestHasher_RefusesBadInput(t *testing.T) {
	t.Parallel()
	_, err := contact.NewHasher(make([]byte, contact.MinHashKeyLen-1))
	require.Error(t, err, "a short key")
	h := contact.DevHasher()
	_, err = h.Hash(contact.IdentifierEmail, "")
	require.Error(t, err, "an empty identifier")
	_, err = h.Hash("address", "x@example.com")
	require.Error(t, err, "an unknown kind")
}

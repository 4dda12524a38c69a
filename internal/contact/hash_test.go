package contact_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/tutti-dev/tutti/internal/contact"
)

// The expected values were computed with OpenSSL, not with this package:
//
//	printf 'email\0jane.doe@example.com' | openssl dgst -sha256 -mac HMAC -macopt hexkey:<DevHashKey in hex>
func TestHasher_MatchesHMACSHA256(t *testing.T) {
	t.Parallel()
	if got := hex.EncodeToString(contact.DevHashKey); got != "73024348776fc4dce35803711c311e5286de5f7620db42c7c2226c40b379730b" {
		t.Fatalf("DevHashKey = %s; changing it orphans every sandbox erasure proof", got)
	}
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
		if err != nil {
			t.Fatal(err)
		}
		if hex.EncodeToString(got) != tc.want {
			t.Errorf("Hash(%s, %q) = %x, want %s", tc.kind, tc.value, got, tc.want)
		}
	}
}

func TestHasher_KindAndKeyAreInTheHash(t *testing.T) {
	t.Parallel()
	dev := contact.DevHasher()
	other, err := contact.NewHasher(bytes.Repeat([]byte{7}, contact.MinHashKeyLen))
	if err != nil {
		t.Fatal(err)
	}
	const v = "user-42"
	asExt, _ := dev.Hash(contact.IdentifierExternalID, v)
	asEmail, _ := dev.Hash(contact.IdentifierEmail, v)
	again, _ := dev.Hash(contact.IdentifierExternalID, v)
	otherKey, _ := other.Hash(contact.IdentifierExternalID, v)
	plain := sha256.Sum256([]byte(v))
	switch {
	case len(asExt) != sha256.Size:
		t.Errorf("hash is %d bytes, want %d", len(asExt), sha256.Size)
	case !bytes.Equal(asExt, again):
		t.Error("the same identifier hashes differently twice")
	case bytes.Equal(asExt, asEmail):
		t.Error("an external id and an email with the same text hash alike")
	case bytes.Equal(asExt, otherKey):
		t.Error("two keys give the same hash")
	case bytes.Equal(asExt, plain[:]):
		t.Error("the hash is unkeyed")
	}
}

func TestHasher_RefusesBadInput(t *testing.T) {
	t.Parallel()
	if _, err := contact.NewHasher(make([]byte, contact.MinHashKeyLen-1)); err == nil {
		t.Error("a short key was accepted")
	}
	h := contact.DevHasher()
	for _, tc := range []struct {
		kind  contact.IdentifierKind
		value string
	}{
		{contact.IdentifierEmail, ""},
		{"address", "x@example.com"},
	} {
		if _, err := h.Hash(tc.kind, tc.value); err == nil {
			t.Errorf("Hash(%q, %q) succeeded", tc.kind, tc.value)
		}
	}
}

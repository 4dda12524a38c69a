package storage

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/contact"
	"github.com/tutti-dev/tutti/internal/journey"
)

func TestProofIdentifiers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		channel journey.Channel
		want    []contact.IdentifierKind
	}{
		{journey.ChannelEmail, []contact.IdentifierKind{contact.IdentifierEmail, contact.IdentifierExternalID}},
		{journey.ChannelSMS, []contact.IdentifierKind{contact.IdentifierPhone, contact.IdentifierExternalID}},
		{journey.ChannelAds, []contact.IdentifierKind{contact.IdentifierEmail, contact.IdentifierPhone, contact.IdentifierExternalID}},
		{"fax", nil},
	} {
		require.Equal(t, tc.want, proofIdentifiers(tc.channel), "channel %s", tc.channel)
	}
}

func TestScrubIdentifiers(t *testing.T) {
	t.Parallel()
	c := Contact{Email: "jane.doe@example.com", Phone: "+14155550123", ExternalID: "u.1"}
	for _, tc := range []struct{ in, want string }{
		{"signup-form", "signup-form"},
		{"form filled by Jane.Doe@Example.com", "form filled by [erased]"},
		{"call from +14155550123 and +14155550123", "call from [erased] and [erased]"},
		// Identifiers are literal text, not patterns: "u.1" does not match "ux1".
		{"crm u.1 / ux1", "crm [erased] / ux1"},
	} {
		require.Equal(t, tc.want, scrubIdentifiers(tc.in, c), tc.in)
	}
}

func TestFreshIdentifiers(t *testing.T) {
	t.Parallel()
	before := Contact{Email: "a@example.com", ExternalID: "u1"}
	for _, tc := range []struct {
		name  string
		after Contact
		want  map[contact.IdentifierKind]string
	}{
		{"unchanged", before, map[contact.IdentifierKind]string{}},
		{"phone added", Contact{Email: "a@example.com", ExternalID: "u1", Phone: "+14155550123"},
			map[contact.IdentifierKind]string{contact.IdentifierPhone: "+14155550123"}},
		{"email changed", Contact{Email: "b@example.com", ExternalID: "u1"},
			map[contact.IdentifierKind]string{contact.IdentifierEmail: "b@example.com"}},
	} {
		require.Equal(t, tc.want, freshIdentifiers(before, tc.after), tc.name)
	}
}

package journey

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRunKeyOf(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		props map[string]any
		want  string
		ok    bool
	}{
		{"string", map[string]any{"cart_id": "c-1"}, "c-1", true},
		{"string trimmed", map[string]any{"cart_id": "  c-1 "}, "c-1", true},
		{"integer number", map[string]any{"cart_id": float64(123)}, "123", true},
		{"number as text is the same cart", map[string]any{"cart_id": "123"}, "123", true},
		{"fraction", map[string]any{"cart_id": 1.5}, "1.5", true},
		{"large integer", map[string]any{"cart_id": float64(9007199254740991)}, "9007199254740991", true},
		{"absent", map[string]any{"order_id": "o-1"}, "", false},
		{"null", map[string]any{"cart_id": nil}, "", false},
		{"empty", map[string]any{"cart_id": "  "}, "", false},
		{"boolean", map[string]any{"cart_id": true}, "", false},
		{"object", map[string]any{"cart_id": map[string]any{"id": "x"}}, "", false},
		{"too long", map[string]any{"cart_id": strings.Repeat("x", MaxRunKeyLen+1)}, "", false},
		{"no properties", nil, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := RunKeyOf(tc.props, "cart_id")
			require.Equal(t, tc.ok, ok)
			require.Equal(t, tc.want, got)
		})
	}
	_, ok := RunKeyOf(map[string]any{"": "x"}, "")
	require.False(t, ok, "an unkeyed journey has no key value")
}

func TestRunKeyDigest(t *testing.T) {
	t.Parallel()
	secret := []byte(strings.Repeat("s", 32))
	d := RunKeyDigest(secret, "cart_id", "alice@example.com")
	require.Len(t, d, RunKeyDigestLen)
	require.Regexp(t, `^[0-9a-f]+$`, d)
	require.NotContains(t, d, "alice")
	require.Equal(t, d, RunKeyDigest(secret, "cart_id", "alice@example.com"), "stable: events find their run by it")
	require.NotEqual(t, d, RunKeyDigest(secret, "cart_id", "bob@example.com"))
	require.NotEqual(t, d, RunKeyDigest(secret, "order_id", "alice@example.com"), "the property is part of the message")
	require.NotEqual(t, d, RunKeyDigest([]byte(strings.Repeat("t", 32)), "cart_id", "alice@example.com"), "keyed: another secret, another digest")
	require.True(t, IsRunKeyDigest(d))
	for _, bad := range []string{"", d[:31], d + "0", strings.ToUpper(d), "alice@example.com"} {
		require.False(t, IsRunKeyDigest(bad), bad)
	}
}

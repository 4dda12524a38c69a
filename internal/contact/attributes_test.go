package contact

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCheckAttributes(t *testing.T) {
	t.Parallel()
	many := map[string]any{}
	for i := range MaxAttributes + 1 {
		many[fmt.Sprintf("a%03d", i)] = i
	}
	atLimit := map[string]any{}
	for i := range MaxAttributes {
		atLimit[fmt.Sprintf("a%03d", i)] = i
	}
	bigTotal := map[string]any{}
	for i := range 20 {
		bigTotal[fmt.Sprintf("a%02d", i)] = strings.Repeat("x", 4000)
	}
	type problem struct{ field, reason string }
	tests := []struct {
		name  string
		attrs map[string]any
		want  []problem
	}{
		{"none", nil, nil},
		{"ordinary", map[string]any{"first_name": "Sam", "plan": "pro", "score": 7.5, "vip": true, "tags": []any{"a", "b"}, "address": map[string]any{"city": "Lyon"}}, nil},
		{"null removes and is not checked", map[string]any{"plan": nil}, nil},
		{"at the count limit", atLimit, nil},
		{"value at the size limit", map[string]any{"bio": strings.Repeat("x", MaxAttributeValueBytes-2)}, nil},
		{"name at the length limit", map[string]any{strings.Repeat("\u00e9", MaxAttributeNameLength): 1}, nil},

		{"too many", many, []problem{{"attributes", "at most 200 attributes, got 201"}}},
		{"1 MB value", map[string]any{"plan": strings.Repeat("x", 1<<20)}, []problem{{"attributes.plan", "an attribute value may be at most 4096"}}},
		{"value one byte over", map[string]any{"bio": strings.Repeat("x", MaxAttributeValueBytes-1)}, []problem{{"attributes.bio", "is 4097 bytes as JSON"}}},
		{"large nested value", map[string]any{"cart": []any{map[string]any{"name": strings.Repeat("y", 5000)}}}, []problem{{"attributes.cart", "at most 4096"}}},
		{"a name that is not an identifier is quoted", map[string]any{"first name": strings.Repeat("x", 5000)}, []problem{{`attributes["first name"]`, "at most 4096"}}},
		{"empty name", map[string]any{"": 1}, []problem{{"attributes", "must not be empty"}}},
		{"long name", map[string]any{strings.Repeat("n", 101): 1}, []problem{{"attributes", "is 101 characters; at most 100"}}},
		{"control character in a name", map[string]any{"a\nb": 1}, []problem{{"attributes", "contains a control character"}}},
		{"NUL in a name", map[string]any{"a\x00b": 1}, []problem{{"attributes", "contains a control character"}}},
		{"invalid UTF-8 name", map[string]any{"a\xff": 1}, []problem{{"attributes", "valid UTF-8"}}},
		{"NUL in a value", map[string]any{"plan": "a\x00"}, []problem{{"attributes.plan", "NUL"}}},
		{"NUL deep in a value", map[string]any{"p": map[string]any{"q": []any{"ok", "\x00"}}}, []problem{{"attributes.p", "NUL"}}},
		{"NUL in a nested name", map[string]any{"p": map[string]any{"q\x00": 1}}, []problem{{"attributes.p", "NUL"}}},
		{"total too large", bigTotal, []problem{{"attributes", "together; at most 65536"}}},
		{"every problem, in name order", map[string]any{"b": strings.Repeat("x", 5000), "a": "\x00", "": 1},
			[]problem{{"attributes", "must not be empty"}, {"attributes.a", "NUL"}, {"attributes.b", "at most 4096"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := CheckAttributes(tt.attrs)
			require.Len(t, got, len(tt.want), "%v", got)
			for i, w := range tt.want {
				require.Equal(t, w.field, got[i].Field)
				require.Contains(t, got[i].Reason, w.reason)
			}
		})
	}
}

func TestCheckAttributeTotals(t *testing.T) {
	t.Parallel()
	ok := map[string]any{"plan": "pro"}
	require.Nil(t, CheckAttributeTotals(ok))
	many := map[string]any{}
	for i := range MaxAttributes + 1 {
		many[fmt.Sprintf("a%03d", i)] = true
	}
	err := CheckAttributeTotals(many)
	require.NotNil(t, err)
	require.Equal(t, "attributes", err.Field)
	require.Contains(t, err.Reason, "would have 201 attributes")
	big := map[string]any{}
	for i := range 17 {
		big[fmt.Sprintf("a%02d", i)] = strings.Repeat("x", 4000)
	}
	err = CheckAttributeTotals(big)
	require.NotNil(t, err)
	require.Contains(t, err.Reason, "at most 65536")
}

func TestAttributePath(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"plan":          "attributes.plan",
		"first_name":    "attributes.first_name",
		"first name":    `attributes["first name"]`,
		"a.b":           `attributes["a.b"]`,
		"1st":           `attributes["1st"]`,
		"\u00e9t\u00e9": `attributes["été"]`,
	} {
		require.Equal(t, want, AttributePath(in))
	}
}

package activities

import (
	"strings"
	"testing"
)

// The activity that writes a missing enrollment row reads the run's key
// digest from its workflow id, and nothing else from it.
func TestRunKeyOf(t *testing.T) {
	t.Parallel()
	digest := strings.Repeat("0f", 16)
	for id, want := range map[string]string{
		"journey/cart/contact/c_1/key/" + digest:                  digest,
		"journey/welcome/contact/c_1":                             "",
		"journey/cart/contact/c_1/key/" + digest[:30]:             "", // not a digest
		"journey/cart/contact/c_1/key/" + strings.ToUpper(digest): "",
		"wf-x": "",
	} {
		if got := runKeyOf(id); got != want {
			t.Errorf("runKeyOf(%q) = %q, want %q", id, got, want)
		}
	}
}

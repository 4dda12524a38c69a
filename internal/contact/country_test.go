package contact

import (
	"errors"
	"strings"
	"testing"
)

func TestNormalizeCountry(t *testing.T) {
	if n := len(countries); n != 250 {
		t.Errorf("%d codes, want the 249 assigned ones plus XK", n)
	}
	for in, want := range map[string]string{"": "", "FR": "FR", " us ": "US", "gb": "GB", "Xk": "XK"} {
		got, err := NormalizeCountry(in)
		if err != nil || got != want {
			t.Errorf("NormalizeCountry(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"UK", "ZZ", "FRA", "F", "1A", "E U", "eu"} {
		_, err := NormalizeCountry(in)
		var ce *Error
		if !errors.As(err, &ce) || ce.Field != "country" {
			t.Errorf("NormalizeCountry(%q): %v, want a country field error", in, err)
		}
	}
	if _, err := NormalizeCountry("uk"); err == nil || !strings.Contains(err.Error(), `"GB"`) {
		t.Errorf("uk should point at GB: %v", err)
	}
}

package config

import (
	"strings"
	"testing"
	"time"

	"github.com/tutti-dev/tutti/internal/ratelimit"
)

func TestRateLimits(t *testing.T) {
	c, err := load(func(k string) (string, bool) { return map[string]string{}[k], false })
	if err != nil || len(c.RateLimits) != 0 {
		t.Fatalf("default: %v %v", c.RateLimits, err)
	}
	c, err = load(func(k string) (string, bool) {
		v, ok := map[string]string{"TUTTI_RATE_LIMITS": "twilio=1/s, sendgrid=600/s"}[k]
		return v, ok
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := (ratelimit.Limit{Key: "twilio", N: 1, Per: time.Second}); c.RateLimits["twilio"] != want {
		t.Errorf("twilio: %v", c.RateLimits["twilio"])
	}
	_, err = load(func(k string) (string, bool) {
		v, ok := map[string]string{"TUTTI_RATE_LIMITS": "twilio=fast"}[k]
		return v, ok
	})
	if err == nil || !strings.Contains(err.Error(), "TUTTI_RATE_LIMITS") {
		t.Errorf("bad limit: %v", err)
	}
}

package config

import (
	"bytes"
	"strings"
	"testing"

	"github.com/tutti-dev/tutti/internal/contact"
)

func TestErasureHashKey(t *testing.T) {
	live := map[string]string{
		"TUTTI_PROVIDER_MODE": "live", "TUTTI_API_TOKEN": "t", "SENDGRID_API_KEY": "k", "TUTTI_CODEC_KEYS": "off",
		"TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "tok",
	}
	key := strings.Repeat("k", contact.MinHashKeyLen)
	for _, tc := range []struct {
		name    string
		env     map[string]string
		want    []byte
		dev     bool
		wantErr string
	}{
		{name: "sandbox without a key uses the public dev key", env: map[string]string{}, want: contact.DevHashKey, dev: true},
		{name: "sandbox with a key", env: map[string]string{"TUTTI_ERASURE_HASH_KEY": key}, want: []byte(key)},
		{name: "live needs a key", env: live, wantErr: "TUTTI_ERASURE_HASH_KEY: required in live mode"},
		{name: "live with a key", env: with(live, "TUTTI_ERASURE_HASH_KEY", key), want: []byte(key)},
		{name: "too short", env: map[string]string{"TUTTI_ERASURE_HASH_KEY": "short"}, wantErr: "TUTTI_ERASURE_HASH_KEY: at least 32 characters"},
	} {
		c, err := load(func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok })
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: error %v, want %q", tc.name, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !bytes.Equal(c.ErasureHashKey, tc.want) || c.ErasureUsingDevKey != tc.dev {
			t.Errorf("%s: key %q (dev %v), want %q (dev %v)", tc.name, c.ErasureHashKey, c.ErasureUsingDevKey, tc.want, tc.dev)
		}
		if _, err := contact.NewHasher(c.ErasureHashKey); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

func with(m map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for a, b := range m {
		out[a] = b
	}
	return out
}

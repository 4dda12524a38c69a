package config

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
)

func TestCodecSettings(t *testing.T) {
	key := func(b byte) string { return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, 32)) }
	live := map[string]string{
		"TUTTI_PROVIDER_MODE": "live", "TUTTI_API_TOKEN": "t", "SENDGRID_API_KEY": "k",
		"TUTTI_ERASURE_HASH_KEY": "0123456789abcdef0123456789abcdef",
		"TWILIO_ACCOUNT_SID":     "AC1", "TWILIO_AUTH_TOKEN": "tw",
	}
	with := func(base map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range base {
			out[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	for _, tc := range []struct {
		name        string
		env         map[string]string
		wantKeys    []string // nil: encryption off
		wantToken   string
		wantOrigins []string
		wantErr     string
	}{
		{name: "sandbox default: off", env: map[string]string{}},
		{name: "off on purpose", env: map[string]string{"TUTTI_CODEC_KEYS": "off"}},
		{name: "keys, newest first", env: map[string]string{"TUTTI_CODEC_KEYS": "k2:" + key(2) + ",k1:" + key(1)}, wantKeys: []string{"k2", "k1"}},
		{name: "live requires keys", env: live, wantErr: "TUTTI_CODEC_KEYS: required in live mode"},
		{name: "live with keys", env: with(live, "TUTTI_CODEC_KEYS", "k1:"+key(1)), wantKeys: []string{"k1"}},
		{name: "live, explicitly off", env: with(live, "TUTTI_CODEC_KEYS", "OFF")},
		{name: "short key", env: map[string]string{"TUTTI_CODEC_KEYS": "k1:" + base64.StdEncoding.EncodeToString([]byte("short"))},
			wantErr: `TUTTI_CODEC_KEYS: key "k1": want 32 bytes of key material, got 5`},
		{name: "malformed", env: map[string]string{"TUTTI_CODEC_KEYS": "just-a-key"}, wantErr: "TUTTI_CODEC_KEYS: entry 1: want id:base64key"},
		{name: "token", env: map[string]string{"TUTTI_CODEC_AUTH_TOKEN": "0123456789abcdef-_.~XYZ"}, wantToken: "0123456789abcdef-_.~XYZ"},
		{name: "short token", env: map[string]string{"TUTTI_CODEC_AUTH_TOKEN": "abc"}, wantErr: "TUTTI_CODEC_AUTH_TOKEN: must be at least 16 characters"},
		{name: "token not URL-safe", env: map[string]string{"TUTTI_CODEC_AUTH_TOKEN": "0123456789abcdef/ghi"}, wantErr: "TUTTI_CODEC_AUTH_TOKEN: use only letters"},
		{name: "origins", env: map[string]string{"TUTTI_CODEC_CORS_ORIGINS": " https://Temporal.Example.com/ , http://localhost:8233"},
			wantOrigins: []string{"https://temporal.example.com", "http://localhost:8233"}},
		{name: "origin with a path", env: map[string]string{"TUTTI_CODEC_CORS_ORIGINS": "http://localhost:8233/namespaces"}, wantErr: "TUTTI_CODEC_CORS_ORIGINS: want origins like"},
		{name: "origin without scheme", env: map[string]string{"TUTTI_CODEC_CORS_ORIGINS": "localhost:8233"}, wantErr: "TUTTI_CODEC_CORS_ORIGINS"},
		{name: "wildcard origin", env: map[string]string{"TUTTI_CODEC_CORS_ORIGINS": "*"}, wantErr: "TUTTI_CODEC_CORS_ORIGINS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := load(func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				for _, b := range []byte{1, 2} {
					if strings.Contains(err.Error(), key(b)) {
						t.Error("the error repeats key material")
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.wantKeys == nil && c.Codec != nil:
				t.Errorf("encryption on with keys %v, want off", c.Codec.KeyIDs())
			case tc.wantKeys != nil && c.Codec == nil:
				t.Errorf("encryption off, want keys %v", tc.wantKeys)
			case tc.wantKeys != nil && strings.Join(c.Codec.KeyIDs(), ",") != strings.Join(tc.wantKeys, ","):
				t.Errorf("keys %v, want %v", c.Codec.KeyIDs(), tc.wantKeys)
			}
			if c.CodecAuthToken != tc.wantToken {
				t.Errorf("CodecAuthToken = %q, want %q", c.CodecAuthToken, tc.wantToken)
			}
			wantOrigins := tc.wantOrigins
			if wantOrigins == nil {
				wantOrigins = strings.Split(DefaultCodecCORSOrigins, ",")
			}
			if strings.Join(c.CodecCORSOrigins, ",") != strings.Join(wantOrigins, ",") {
				t.Errorf("CodecCORSOrigins = %v, want %v", c.CodecCORSOrigins, wantOrigins)
			}
		})
	}
}

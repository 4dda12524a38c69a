package main

import (
	"strings"
	"testing"

	"github.com/tutti-dev/tutti/internal/codec"
)

func TestCodecNewKey(t *testing.T) {
	a := runCLI(t, nil, "codec", "new-key", "2026-06")
	b := runCLI(t, nil, "codec", "new-key", "2026-06")
	if a.code != exitOK || b.code != exitOK {
		t.Fatalf("exit %d/%d, stderr %q %q", a.code, b.code, a.stderr, b.stderr)
	}
	if a.stdout == b.stdout {
		t.Error("two keys are the same")
	}
	// Both lines together are a valid TUTTI_CODEC_KEYS value.
	keys, err := codec.ParseKeys(strings.TrimSpace(a.stdout) + ",rotated-" + strings.TrimSpace(b.stdout))
	if err != nil {
		t.Fatalf("the output does not parse as TUTTI_CODEC_KEYS: %v", err)
	}
	if len(keys) != 2 || keys[0].ID != "2026-06" {
		t.Errorf("keys %v", keys)
	}
	if _, err := codec.New(keys...); err != nil {
		t.Error(err)
	}

	if r := runCLI(t, nil, "codec", "new-key", "bad id"); r.code != exitUsage || !strings.Contains(r.stderr, `key id "bad id"`) {
		t.Errorf("bad id: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := runCLI(t, nil, "codec", "new-key"); r.code != exitUsage {
		t.Errorf("no id: exit %d, want %d", r.code, exitUsage)
	}
}

package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/tutti-dev/tutti/internal/searchattr"
)

func TestSearchAttributesCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	root := newRoot(slog.Default(), &out, &errOut)
	root.SetArgs([]string{"search-attributes"})
	if err := root.Execute(); err != nil {
		t.Fatalf("search-attributes: %v (stderr %q)", err, errOut.String())
	}
	want := strings.Join(searchattr.Flags(), "\n") + "\n"
	if out.String() != want {
		t.Errorf("search-attributes printed %q, want %q", out.String(), want)
	}
	if !strings.Contains(out.String(), "ContactId=Keyword\n") {
		t.Errorf("not one Name=Type a line: %q", out.String())
	}

	root = newRoot(slog.Default(), &out, &errOut)
	root.SetArgs([]string{"search-attributes", "extra"})
	if err := root.Execute(); err == nil {
		t.Error("an extra argument was accepted")
	}
}

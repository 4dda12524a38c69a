package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// The flag syntax of Go's flag package, which tutti read before cobra, still
// works: single-dash long flags, -help, and values that start with "-".
func TestGoFlagSyntax(t *testing.T) {
	f := newFakeAPI(t, http.StatusOK, `{"messages":[]}`)
	if r := runCLI(t, f.vars(), "outbox", "-contact", "c_1", "-limit=5", "-json"); r.code != exitOK || !strings.Contains(r.stdout, `"messages"`) {
		t.Errorf("single-dash flags: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if q := f.only().query; q != "contact_id=c_1&limit=5" {
		t.Errorf("query %q", q)
	}
	if r := runCLI(t, nil, "why", "-help"); r.code != exitOK || !strings.Contains(r.stdout, "Usage: tutti why") {
		t.Errorf("-help: %d %q", r.code, r.stdout)
	}

	f = newFakeAPI(t, http.StatusAccepted, `{"workflow_id":"w","enrollment":{"id":"e"}}`)
	if r := runCLI(t, f.vars(), "exit", "--reason", "-journey", "-contact", "c_1", "--journey", "welcome"); r.code != exitOK {
		t.Fatalf("exit: %d %q", r.code, r.stderr)
	}
	if b := string(f.only().body); b != `{"reason":"-journey"}` {
		t.Errorf("a value that looks like a flag was rewritten: %s", b)
	}

	if got := goFlagSyntax(newTestRoot(t), []string{"--", "-json"}); strings.Join(got, " ") != "-- -json" {
		t.Errorf("after --: %q", got)
	}
}

func newTestRoot(t *testing.T) *cobra.Command {
	t.Helper()
	root := (&cli{}).newRoot()
	cmd, _, err := root.Find([]string{"outbox"})
	if err != nil {
		t.Fatal(err)
	}
	return cmd
}

func TestHelpAndCompletion(t *testing.T) {
	if r := runCLI(t, nil, "help", "consent"); r.code != exitOK || !strings.Contains(r.stdout, "Usage: tutti consent ID") || !strings.Contains(r.stdout, "--subscription") {
		t.Errorf("help consent: %d %q", r.code, r.stdout)
	}
	if r := runCLI(t, nil, "contact", "--help"); r.code != exitOK || !strings.Contains(r.stdout, "tutti contact erase ID [--json]") {
		t.Errorf("contact --help: %d %q", r.code, r.stdout)
	}
	if r := runCLI(t, nil, "help"); !strings.Contains(r.stdout, "tutti completion bash|") {
		t.Errorf("help does not list completion: %q", r.stdout)
	}
	r := runCLI(t, nil, "completion", "bash")
	if r.code != exitOK || !strings.Contains(r.stdout, "bash completion") || !strings.Contains(r.stdout, "__start_tutti") {
		t.Errorf("completion bash: %d %q", r.code, r.stderr)
	}
}

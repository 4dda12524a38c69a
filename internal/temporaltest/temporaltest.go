// Package temporaltest starts real Temporal dev servers (`temporal server
// start-dev`, in memory, headless) for tests, with Tutti's search attributes
// registered.
//
// It never downloads anything: the CLI binary comes from $TEMPORAL_CLI (set by
// `make test`), else $(go env GOPATH)/bin/temporal, else `temporal` on PATH.
// When none is found the test fails and says how to get one.
//
// One server per test:
//
//	srv := temporaltest.StartDevServer(t) // stopped by t.Cleanup
//	c := srv.Client()
//
// One server per package, from TestMain:
//
//	var temporalAddr string
//
//	func TestMain(m *testing.M) {
//		addr, stop := temporaltest.Shared(m)
//		temporalAddr = addr
//		code := m.Run()
//		stop()
//		os.Exit(code)
//	}
//
//	func TestX(t *testing.T) { c := temporaltest.Client(t, temporalAddr); ... }
package temporaltest

import (
	"context"
	"errors"
	"fmt"
	"go/build"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"

	"github.com/tutti-dev/tutti/internal/searchattr"
)

// CLIVersion is the Temporal CLI version `make test` builds with go install.
const CLIVersion = "v1.5.1"

// InstallHint is how to get the CLI when it is missing.
const InstallHint = "run `make test` (it builds the CLI once), or `go install github.com/temporalio/cli/cmd/temporal@" + CLIVersion +
	"` and/or set TEMPORAL_CLI to the binary's path"

// Namespace is the namespace the dev servers register and clients use.
const Namespace = "default"

// startTimeout bounds one server start (process start plus first connection).
const startTimeout = 2 * time.Minute

// CLIPath finds the temporal binary: $TEMPORAL_CLI, then $(go env GOPATH)/bin/temporal,
// then `temporal` on PATH. It never downloads.
func CLIPath() (string, error) {
	if p := os.Getenv("TEMPORAL_CLI"); p != "" {
		if err := executable(p); err != nil {
			return "", fmt.Errorf("TEMPORAL_CLI=%s: %w; %s", p, err, InstallHint)
		}
		return p, nil
	}
	var candidates []string
	if gobin := os.Getenv("GOBIN"); gobin != "" {
		candidates = append(candidates, filepath.Join(gobin, "temporal"))
	}
	for _, dir := range filepath.SplitList(build.Default.GOPATH) {
		candidates = append(candidates, filepath.Join(dir, "bin", "temporal"))
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		for _, dir := range filepath.SplitList(strings.TrimSpace(string(out))) {
			candidates = append(candidates, filepath.Join(dir, "bin", "temporal"))
		}
	}
	for _, c := range candidates {
		if executable(c) == nil {
			return c, nil
		}
	}
	if p, err := exec.LookPath("temporal"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("temporal CLI not found (looked at $TEMPORAL_CLI, %s and PATH); %s",
		strings.Join(candidates, ", "), InstallHint)
}

func executable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
		return errors.New("not an executable file")
	}
	return nil
}

// quietLogger keeps the SDK's client logs to warnings and errors.
func quietLogger() sdklog.Logger {
	return sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
}

// start launches one headless in-memory dev server whose output goes to logFile.
func start(logFile *os.File) (*testsuite.DevServer, error) {
	cli, err := CLIPath()
	if err != nil {
		return nil, err
	}
	var extra []string
	for _, sa := range searchattr.Flags() { // Tutti's search attributes, declared once
		extra = append(extra, "--search-attribute", sa)
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	srv, err := testsuite.StartDevServer(ctx, testsuite.DevServerOptions{
		ExistingPath:  cli, // never download
		ClientOptions: &client.Options{Namespace: Namespace, Logger: quietLogger()},
		LogLevel:      "warn",
		LogFormat:     "pretty",
		EnableUI:      false,
		ExtraArgs:     extra,
		// An *os.File is handed to the child as is: no copying goroutine for
		// Stop to wait on, and a server outliving a killed test binary can't
		// hold `go test`'s output pipe open.
		Stdout: logFile,
		Stderr: logFile,
	})
	if err != nil {
		return nil, fmt.Errorf("starting the Temporal dev server (%s): %w", cli, err)
	}
	return srv, nil
}

// StartDevServer starts a dev server for this test and stops it in t.Cleanup.
// Its Client() is connected to the "default" namespace; FrontendHostPort()
// is its address. On failure the test fails with the reason and the server log.
func StartDevServer(t testing.TB) *testsuite.DevServer {
	t.Helper()
	logFile, err := os.CreateTemp(t.TempDir(), "temporal-dev-*.log")
	if err != nil {
		t.Fatalf("temporaltest: %v", err)
	}
	t.Cleanup(func() { _ = logFile.Close() })
	srv, err := start(logFile)
	if err != nil {
		t.Fatalf("temporaltest: %v\n%s", err, tail(logFile.Name(), 40))
	}
	t.Cleanup(func() {
		srv.Client().Close()
		if err := srv.Stop(); err != nil && !isInterruptExit(err) {
			t.Logf("temporaltest: stopping the dev server: %v", err)
		}
		if t.Failed() {
			t.Logf("temporaltest: dev server log (last lines):\n%s", tail(logFile.Name(), 40))
		}
	})
	return srv
}

// Shared starts one dev server for a whole test package; call it from
// TestMain before m.Run and call stop after (os.Exit skips deferred calls).
// On failure it prints the reason and exits the test binary with status 1.
// m is unused; it marks Shared as a TestMain helper.
func Shared(m *testing.M) (addr string, stop func()) {
	_ = m
	logFile, err := os.CreateTemp("", "temporal-dev-*.log")
	if err != nil {
		fmt.Fprintf(os.Stderr, "temporaltest: %v\n", err)
		os.Exit(1)
	}
	srv, err := start(logFile)
	if err != nil {
		fmt.Fprintf(os.Stderr, "temporaltest: %v\n%s\n", err, tail(logFile.Name(), 40))
		_ = logFile.Close()
		_ = os.Remove(logFile.Name())
		os.Exit(1)
	}
	stopped := false
	return srv.FrontendHostPort(), func() {
		if stopped {
			return
		}
		stopped = true
		srv.Client().Close()
		if err := srv.Stop(); err != nil && !isInterruptExit(err) {
			fmt.Fprintf(os.Stderr, "temporaltest: stopping the dev server: %v\n", err)
		}
		_ = logFile.Close()
		_ = os.Remove(logFile.Name())
	}
}

// Client dials addr (namespace "default") and closes the client in t.Cleanup.
func Client(t testing.TB, addr string) client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.DialContext(ctx, client.Options{HostPort: addr, Namespace: Namespace, Logger: quietLogger()})
	if err != nil {
		t.Fatalf("temporaltest: dialing %s: %v", addr, err)
	}
	t.Cleanup(c.Close)
	return c
}

// isInterruptExit: the CLI exits non-zero when stopped with SIGINT; that is a clean stop.
func isInterruptExit(err error) bool {
	var ee *exec.ExitError
	return errors.As(err, &ee)
}

// tail returns the last n lines of a file (at most its last 64 KiB), for failure messages.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const window = 64 << 10
	if fi, err := f.Stat(); err == nil && fi.Size() > window {
		if _, err := f.Seek(fi.Size()-window, io.SeekStart); err != nil {
			return ""
		}
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

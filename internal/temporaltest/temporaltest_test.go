package temporaltest_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/tutti-dev/tutti/internal/searchattr"
	"github.com/tutti-dev/tutti/internal/temporaltest"
)

// wantTypes maps Temporal's type names (as in --search-attribute) to the enum.
var wantTypes = map[string]enums.IndexedValueType{
	"Keyword":     enums.INDEXED_VALUE_TYPE_KEYWORD,
	"Int":         enums.INDEXED_VALUE_TYPE_INT,
	"Text":        enums.INDEXED_VALUE_TYPE_TEXT,
	"Bool":        enums.INDEXED_VALUE_TYPE_BOOL,
	"Double":      enums.INDEXED_VALUE_TYPE_DOUBLE,
	"Datetime":    enums.INDEXED_VALUE_TYPE_DATETIME,
	"KeywordList": enums.INDEXED_VALUE_TYPE_KEYWORD_LIST,
}

func assertSearchAttributes(t *testing.T, c client.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: temporaltest.Namespace})
	if err != nil {
		t.Fatalf("ListSearchAttributes: %v", err)
	}
	if len(searchattr.Flags()) != 4 {
		t.Errorf("want Tutti's 4 search attributes, searchattr.Flags() has %d", len(searchattr.Flags()))
	}
	for _, flag := range searchattr.Flags() {
		name, typ, ok := strings.Cut(flag, "=")
		if !ok {
			t.Errorf("malformed flag %q", flag)
			continue
		}
		want, known := wantTypes[typ]
		if !known {
			t.Errorf("flag %q: unknown type %q", flag, typ)
			continue
		}
		got, ok := resp.GetCustomAttributes()[name]
		if !ok {
			t.Errorf("search attribute %s is not registered (custom attributes: %v)", name, resp.GetCustomAttributes())
			continue
		}
		if got != want {
			t.Errorf("search attribute %s: type %v, want %v", name, got, want)
		}
	}
}

func TestStartDevServerRegistersSearchAttributes(t *testing.T) {
	srv := temporaltest.StartDevServer(t)
	if srv.FrontendHostPort() == "" {
		t.Fatal("empty FrontendHostPort")
	}
	assertSearchAttributes(t, srv.Client())
}

func TestShared(t *testing.T) {
	addr, stop := temporaltest.Shared(nil)
	stopped := false
	defer func() {
		if !stopped {
			stop()
		}
	}()
	c := temporaltest.Client(t, addr)
	assertSearchAttributes(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		t.Fatalf("CheckHealth: %v", err)
	}

	stop()
	stopped = true
	stop() // idempotent
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			break // the server is gone
		}
		_ = conn.Close()
		if time.Now().After(deadline) {
			t.Fatalf("%s still accepts connections after stop()", addr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestCLIPathHonoursTEMPORAL_CLI(t *testing.T) {
	t.Setenv("TEMPORAL_CLI", filepath.Join(t.TempDir(), "no-such-temporal"))
	_, err := temporaltest.CLIPath()
	if err == nil {
		t.Fatal("CLIPath accepted a TEMPORAL_CLI that doesn't exist")
	}
	if !strings.Contains(err.Error(), "go install github.com/temporalio/cli/cmd/temporal@"+temporaltest.CLIVersion) {
		t.Errorf("error doesn't say how to install the CLI: %v", err)
	}

	notExec := filepath.Join(t.TempDir(), "temporal")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TEMPORAL_CLI", notExec)
	if _, err := temporaltest.CLIPath(); err == nil {
		t.Error("CLIPath accepted a non-executable TEMPORAL_CLI")
	}
}

package temporalclient

import (
	"io"
	"log/slog"
	"strings"
	"testing"
)

// fakeEnv is an envconfig.EnvLookup over a map, so tests neither read nor
// change the process environment.
type fakeEnv map[string]string

func (e fakeEnv) Environ() []string {
	var out []string
	for k, v := range e {
		out = append(out, k+"="+v)
	}
	return out
}

func (e fakeEnv) LookupEnv(k string) (string, bool) { v, ok := e[k]; return v, ok }

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestOptionsDefaults(t *testing.T) {
	// A config file path that does not exist keeps a developer's own
	// temporal.toml out of the test; envconfig ignores a missing file.
	opts, err := Options(fakeEnv{"TEMPORAL_CONFIG_FILE": t.TempDir() + "/none.toml"}, discard())
	if err != nil {
		t.Fatal(err)
	}
	if opts.HostPort != DefaultAddress || opts.Namespace != DefaultNamespace {
		t.Errorf("got %s/%s, want %s/%s", opts.HostPort, opts.Namespace, DefaultAddress, DefaultNamespace)
	}
	if opts.ConnectionOptions.TLS != nil || opts.Credentials != nil {
		t.Error("no TLS and no credentials by default")
	}
	if opts.Logger == nil {
		t.Error("the slog logger should be adapted")
	}
}

func TestOptionsCloud(t *testing.T) {
	opts, err := Options(fakeEnv{
		"TEMPORAL_CONFIG_FILE": t.TempDir() + "/none.toml",
		"TEMPORAL_ADDRESS":     "tutti.a1b2c.tmprl.cloud:7233",
		"TEMPORAL_NAMESPACE":   "tutti.a1b2c",
		"TEMPORAL_API_KEY":     "secret",
	}, discard())
	if err != nil {
		t.Fatal(err)
	}
	if opts.HostPort != "tutti.a1b2c.tmprl.cloud:7233" || opts.Namespace != "tutti.a1b2c" {
		t.Errorf("got %s/%s", opts.HostPort, opts.Namespace)
	}
	if opts.Credentials == nil {
		t.Error("TEMPORAL_API_KEY should set credentials")
	}
	if opts.ConnectionOptions.TLS == nil {
		t.Error("an API key turns TLS on")
	}
}

func TestOptionsBadTLS(t *testing.T) {
	_, err := Options(fakeEnv{
		"TEMPORAL_CONFIG_FILE":          t.TempDir() + "/none.toml",
		"TEMPORAL_TLS_CLIENT_CERT_PATH": "/nonexistent/cert.pem",
		"TEMPORAL_TLS_CLIENT_CERT_DATA": "also data",
	}, discard())
	if err == nil || !strings.Contains(err.Error(), "TEMPORAL_") {
		t.Errorf("want a configuration error naming the TEMPORAL_ variables, got %v", err)
	}
}

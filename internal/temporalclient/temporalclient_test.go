package temporalclient

import (
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/tutti-dev/tutti/internal/codec"
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

func TestOptionsWithCodec(t *testing.T) {
	env := fakeEnv{"TEMPORAL_CONFIG_FILE": t.TempDir() + "/none.toml"}
	plain, err := Options(env, discard())
	if err != nil {
		t.Fatal(err)
	}
	if plain.DataConverter != nil || plain.FailureConverter != nil {
		t.Error("without a codec the SDK's default converters are used")
	}
	off, err := Options(env, discard(), WithCodec(nil))
	if err != nil {
		t.Fatal(err)
	}
	if off.DataConverter != nil || off.FailureConverter != nil {
		t.Error("a nil codec leaves encryption off")
	}

	key, err := codec.GenerateKey("k1")
	if err != nil {
		t.Fatal(err)
	}
	c, err := codec.New(key)
	if err != nil {
		t.Fatal(err)
	}
	opts, err := Options(env, discard(), WithCodec(c))
	if err != nil {
		t.Fatal(err)
	}
	if opts.DataConverter == nil || opts.FailureConverter == nil {
		t.Fatal("WithCodec should set the data and failure converters")
	}
	p, err := opts.DataConverter.ToPayload("Secret subject zebra")
	if err != nil {
		t.Fatal(err)
	}
	if got := string(p.Metadata["encoding"]); got != codec.EncodingEncrypted {
		t.Errorf("payload encoding %q, want %q", got, codec.EncodingEncrypted)
	}
	if strings.Contains(string(p.Data), "zebra") {
		t.Error("the payload is in plaintext")
	}
	f := opts.FailureConverter.ErrorToFailure(errors.New("failed on zebra"))
	if strings.Contains(f.GetMessage(), "zebra") {
		t.Errorf("failure message in plaintext: %q", f.GetMessage())
	}
}

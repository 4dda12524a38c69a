// Package temporalclient dials the Temporal frontend for the worker and the
// API. The connection is configured the way every Temporal tool is: the SDK's
// envconfig reads TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY,
// TEMPORAL_TLS_* (and an optional temporal.toml profile), so the same binaries
// run against a local dev server, a self-hosted cluster or Temporal Cloud
// without Tutti-specific settings.
//
// Payload encryption is Tutti's own (internal/codec, TUTTI_CODEC_KEYS):
// WithCodec makes the client encrypt what it writes and decrypt what it reads.
package temporalclient

import (
	"context"
	"fmt"
	"log/slog"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/envconfig"
	sdklog "go.temporal.io/sdk/log"

	"github.com/tutti-dev/tutti/internal/codec"
)

// Defaults used when neither the environment nor a config file says otherwise:
// the local dev server (`temporal server start-dev`).
const (
	DefaultAddress   = "localhost:7233"
	DefaultNamespace = "default"
)

// Option is a Tutti setting of the client beyond the connection.
type Option func(*settings)

type settings struct {
	codec *codec.Codec
}

// WithCodec encrypts every payload the client and its workers write, and
// decrypts what they read, failure messages included (see internal/codec).
// A nil codec leaves payloads unencrypted. Every process that touches the
// journeys' workflows must use the same keys: a client without them can
// neither start a run a worker can read nor read what the worker wrote.
func WithCodec(c *codec.Codec) Option { return func(s *settings) { s.codec = c } }

// Dial connects to Temporal with options from the environment and checks the
// connection before returning, so a wrong address fails at start-up rather
// than on the first request. SDK logs go to logger.
func Dial(ctx context.Context, logger *slog.Logger, options ...Option) (client.Client, error) {
	if logger == nil {
		logger = slog.Default()
	}
	opts, err := Options(envconfig.EnvLookupOS, logger, options...)
	if err != nil {
		return nil, err
	}
	c, err := client.DialContext(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("temporal: connecting to %s (namespace %s): %w", opts.HostPort, opts.Namespace, err)
	}
	var s settings
	for _, o := range options {
		o(&s)
	}
	logger.Info("connected to Temporal", "address", opts.HostPort, "namespace", opts.Namespace,
		"tls", opts.ConnectionOptions.TLS != nil, "api_key", opts.Credentials != nil,
		"payload_encryption", s.codec != nil)
	if s.codec != nil {
		logger.Info("payload encryption on", "encrypting_key", s.codec.EncryptingKeyID(), "decrypting_keys", s.codec.KeyIDs())
	} else {
		logger.Warn("payload encryption is off: journey specs and signal data are stored in Temporal in plaintext, " +
			"readable by anyone with access to it (set TUTTI_CODEC_KEYS)")
	}
	return c, nil
}

// Options builds the client options from env (and the temporal.toml profile
// envconfig finds, if any), filling in the local defaults, then applies
// Tutti's options. It is separate from Dial so the resolution can be tested
// without a server.
func Options(env envconfig.EnvLookup, logger *slog.Logger, options ...Option) (client.Options, error) {
	opts, err := envconfig.LoadClientOptions(envconfig.LoadClientOptionsRequest{EnvLookup: env})
	if err != nil {
		return client.Options{}, fmt.Errorf("temporal: client configuration (TEMPORAL_* variables): %w", err)
	}
	// The SDK would pick the same defaults, but setting them here makes the
	// values we log and report in errors the ones actually used.
	if opts.HostPort == "" {
		opts.HostPort = DefaultAddress
	}
	if opts.Namespace == "" {
		opts.Namespace = DefaultNamespace
	}
	if logger == nil {
		logger = slog.Default()
	}
	opts.Logger = sdklog.NewStructuredLogger(logger)
	var s settings
	for _, o := range options {
		o(&s)
	}
	if s.codec != nil {
		opts.DataConverter = s.codec.DataConverter()
		opts.FailureConverter = s.codec.FailureConverter()
	}
	return opts, nil
}

// Package temporalclient dials the Temporal frontend for the worker and the
// API. The connection is configured the way every Temporal tool is: the SDK's
// envconfig reads TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY,
// TEMPORAL_TLS_* (and an optional temporal.toml profile), so the same binaries
// run against a local dev server, a self-hosted cluster or Temporal Cloud
// without Tutti-specific settings.
package temporalclient

import (
	"context"
	"fmt"
	"log/slog"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/envconfig"
	sdklog "go.temporal.io/sdk/log"
)

// Defaults used when neither the environment nor a config file says otherwise:
// the local dev server (`temporal server start-dev`).
const (
	DefaultAddress   = "localhost:7233"
	DefaultNamespace = "default"
)

// Dial connects to Temporal with options from the environment and checks the
// connection before returning, so a wrong address fails at start-up rather
// than on the first request. SDK logs go to logger.
func Dial(ctx context.Context, logger *slog.Logger) (client.Client, error) {
	opts, err := Options(envconfig.EnvLookupOS, logger)
	if err != nil {
		return nil, err
	}
	c, err := client.DialContext(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("temporal: connecting to %s (namespace %s): %w", opts.HostPort, opts.Namespace, err)
	}
	logger.Info("connected to Temporal", "address", opts.HostPort, "namespace", opts.Namespace,
		"tls", opts.ConnectionOptions.TLS != nil, "api_key", opts.Credentials != nil)
	return c, nil
}

// Options builds the client options from env (and the temporal.toml profile
// envconfig finds, if any), filling in the local defaults. It is separate from
// Dial so the resolution can be tested without a server.
func Options(env envconfig.EnvLookup, logger *slog.Logger) (client.Options, error) {
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
	return opts, nil
}

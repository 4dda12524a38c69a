package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/tutti-dev/tutti/internal/api"
	"github.com/tutti-dev/tutti/internal/config"
	"github.com/tutti-dev/tutti/internal/wiring"
)

// shutdownTimeout is how long serve lets in-flight requests finish.
const shutdownTimeout = 20 * time.Second

// newServeCmd is `tutti serve`: it runs the API until SIGINT or SIGTERM, then
// drains in-flight requests.
func (c *cli) newServeCmd() *cobra.Command {
	return c.leaf("serve", "",
		"Run the HTTP API (settings from the environment; see README)",
		0, func(ctx context.Context, inv *invocation) error {
			logger := slog.New(slog.NewJSONHandler(c.stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
			cfg, err := config.Load()
			if err != nil {
				return fmt.Errorf("configuration:\n%w", err)
			}
			if cfg.APIUsingDev {
				logger.Warn("!!! TUTTI_API_TOKEN is not set: the API accepts the public dev token \"" + config.DevAPIToken +
					"\". Anyone who can reach it can read contacts and send messages. Set TUTTI_API_TOKEN for anything but local development. !!!")
				if !isLoopback(cfg.APIAddr) {
					logger.Error("!!! the dev token is in use on a non-loopback address", "addr", cfg.APIAddr)
				}
			}

			// The API texts the SMS double opt-in prompt itself, through the same
			// send path the worker sends with.
			deps, err := wiring.Open(ctx, cfg, logger)
			if err != nil {
				return err
			}
			defer deps.Close()
			srv := api.New(api.Deps{Store: deps.Store, Temporal: deps.Temporal, Config: cfg, Logger: logger, Delivery: deps.Delivery})
			hs := &http.Server{
				Addr:    cfg.APIAddr,
				Handler: srv.Handler(),
				// Slow clients must not hold connections: headers promptly, bodies
				// (at most TUTTI_API_MAX_BODY_BYTES) within the read timeout.
				ReadHeaderTimeout: 10 * time.Second,
				ReadTimeout:       30 * time.Second,
				// Above the longest handler: an event fan-out is bounded by
				// TUTTI_SIGNAL_TIMEOUT per phase.
				WriteTimeout:   60 * time.Second,
				IdleTimeout:    2 * time.Minute,
				MaxHeaderBytes: 64 << 10,
				ErrorLog:       slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
			}
			ln, err := net.Listen("tcp", cfg.APIAddr)
			if err != nil {
				return fmt.Errorf("listening on %s (TUTTI_API_ADDR): %w", cfg.APIAddr, err)
			}
			served := make(chan error, 1)
			go func() { served <- hs.Serve(ln) }()
			logger.Info("api listening", "addr", ln.Addr().String(), "provider_mode", cfg.ProviderMode)

			select {
			case err := <-served:
				return fmt.Errorf("serving: %w", err)
			case <-ctx.Done():
			}
			logger.Info("api shutting down; finishing in-flight requests", "timeout", shutdownTimeout.String())
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
			defer cancel()
			if err := hs.Shutdown(sctx); err != nil {
				return fmt.Errorf("shutting down: %w", err)
			}
			if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("serving: %w", err)
			}
			logger.Info("api stopped")
			return nil
		})
}

// isLoopback reports whether addr (host:port) listens on loopback only.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

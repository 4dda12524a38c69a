package wiring

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"go.temporal.io/sdk/worker"

	"google.golang.org/api/option"

	"github.com/tutti-dev/tutti/internal/audience"
	"github.com/tutti-dev/tutti/internal/config"
	"github.com/tutti-dev/tutti/internal/contact"
	"github.com/tutti-dev/tutti/internal/delivery"
	"github.com/tutti-dev/tutti/internal/policy"
	"github.com/tutti-dev/tutti/internal/provider"
	"github.com/tutti-dev/tutti/internal/storage"
)

// DeliveryFromConfig builds the send path the worker and the API share:
// SendGrid and Twilio in live mode, the sandbox (messages recorded in
// Postgres) otherwise; the sender identity; the send gate's workspace
// settings.
func DeliveryFromConfig(cfg config.Config, store *storage.Store, logger *slog.Logger) (*delivery.Service, error) {
	settings, err := PolicyFromConfig(cfg)
	if err != nil {
		return nil, err
	}
	s := &delivery.Service{Store: store, Sender: IdentityFromConfig(cfg), Policy: settings, Logger: logger, Limits: cfg.RateLimits,
		// Webhook posts go to the configured destinations in every mode:
		// they are the workspace's own systems, not the contact's inbox.
		Webhook:             &provider.Webhook{HTTP: &http.Client{Timeout: 30 * time.Second}},
		WebhookDestinations: cfg.WebhookDestinations,
	}
	switch cfg.ProviderMode {
	case config.ModeLive:
		// The call's own deadline (the flight window) is shorter; this is
		// only a backstop for a caller without one.
		hc := &http.Client{Timeout: 30 * time.Second}
		s.Email = provider.NewSendGrid(cfg.SendGridAPIKey, cfg.SendGridBaseURL, hc)
		s.SMS = provider.NewTwilio(cfg.TwilioAccountSID, cfg.TwilioAuthToken, cfg.TwilioBaseURL, hc)
	default:
		sandbox := provider.NewSandbox(store)
		s.Email, s.SMS = sandbox, sandbox
	}
	return s, nil
}

// PolicyFromConfig is the send gate's workspace settings: the defaults (cap
// 7 marketing messages per 7 days, cooldowns email 16h / sms 24h, SMS quiet
// hours 08:00-21:00 with per-country rules) with the configured default zone
// and region, overlaid by TUTTI_POLICY_FILE when set.
func PolicyFromConfig(cfg config.Config) (policy.Settings, error) {
	s := policy.DefaultSettings()
	s.DefaultTimeZone, s.DefaultRegion = cfg.DefaultTimeZone, cfg.DefaultRegion
	if cfg.PolicyFile == "" {
		return s, policy.ValidateSettings(s)
	}
	s, err := policy.LoadSettingsFile(cfg.PolicyFile, s)
	if err != nil {
		return policy.Settings{}, fmt.Errorf("TUTTI_POLICY_FILE=%s: %w", cfg.PolicyFile, err)
	}
	return s, nil
}

// IdentityFromConfig builds the sender identity from configuration. The
// Twilio status callback is only set when the API has a public URL to be
// reached at.
func IdentityFromConfig(cfg config.Config) delivery.Identity {
	s := delivery.Identity{EmailFrom: cfg.EmailFrom, EmailFromName: cfg.EmailFromName, SMSFrom: cfg.TwilioFrom}
	if cfg.PublicURL != "" {
		s.SMSStatusCallback = strings.TrimRight(cfg.PublicURL, "/") + "/webhooks/twilio/status"
	}
	return s
}

// GateBatchingFromConfig is how the send gate groups concurrent decisions
// (storage.DefaultGateBatching unless TUTTI_GATE_MAX_BATCH or
// TUTTI_GATE_MAX_IN_FLIGHT say otherwise), for the stores of the worker and
// the API, which both decide sends.
func GateBatchingFromConfig(cfg config.Config) storage.GateBatching {
	b := storage.DefaultGateBatching()
	if cfg.GateMaxBatch > 0 {
		b.MaxBatch = cfg.GateMaxBatch
	}
	if cfg.GateMaxInFlight > 0 {
		b.MaxInFlight = cfg.GateMaxInFlight
	}
	return b
}

// EventBatchingFromConfig is how TrackEvent groups concurrent events
// (storage.DefaultGateBatching unless TUTTI_EVENT_MAX_BATCH says otherwise).
func EventBatchingFromConfig(cfg config.Config) storage.GateBatching {
	b := storage.DefaultGateBatching()
	if cfg.EventMaxBatch > 0 {
		b.MaxBatch = cfg.EventMaxBatch
	}
	return b
}

// StoreOptions are the options the worker and the API open the store with:
// the gate's and the events' grouping (GateBatchingFromConfig,
// EventBatchingFromConfig) and the key of the hashes that keep an erased
// person's opt-outs (TUTTI_ERASURE_HASH_KEY).
func StoreOptions(cfg config.Config) ([]storage.Option, error) {
	h, err := contact.NewHasher(cfg.ErasureHashKey)
	if err != nil {
		return nil, fmt.Errorf("TUTTI_ERASURE_HASH_KEY: %w", err)
	}
	return []storage.Option{storage.WithGateBatching(GateBatchingFromConfig(cfg)), storage.WithEventBatching(EventBatchingFromConfig(cfg)),
		storage.WithErasureHasher(h), storage.WithPoolMaxConns(int32(cfg.DatabaseMaxConns))}, nil
}

// WorkerOptions are the Temporal worker's options from the TUTTI_WORKER_*
// settings; those left unset keep the SDK's defaults. The cache size is
// process-wide in the SDK: it is set here, before the worker is built.
func WorkerOptions(cfg config.Config) worker.Options {
	if cfg.WorkerCacheSize > 0 {
		worker.SetStickyWorkflowCacheSize(cfg.WorkerCacheSize)
	}
	return worker.Options{
		MaxConcurrentWorkflowTaskPollers: cfg.WorkerWorkflowPollers,
		MaxConcurrentActivityTaskPollers: cfg.WorkerActivityPollers,
		StickyScheduleToStartTimeout:     cfg.WorkerStickyTimeout,
	}
}

// AudiencesFromConfig builds the ad platforms' clients: in sandbox mode a
// stand-in for each that accepts everything; in live mode a client for
// each platform configured (META_ACCESS_TOKEN, LINKEDIN_ACCESS_TOKEN,
// GOOGLE_ADS_OPERATING_ACCOUNT). An audience on a platform without one
// fails its sync passes, saying so.
func AudiencesFromConfig(ctx context.Context, cfg config.Config) (map[audience.Destination]audience.Platform, error) {
	out := map[audience.Destination]audience.Platform{}
	if cfg.ProviderMode != config.ModeLive {
		for _, d := range audience.Destinations {
			out[d] = audience.Sandbox{To: d}
		}
		return out, nil
	}
	hc := &http.Client{Timeout: time.Minute}
	if cfg.MetaAccessToken != "" {
		out[audience.Meta] = &audience.MetaClient{BaseURL: cfg.MetaBaseURL, Version: cfg.MetaAPIVersion, AccessToken: cfg.MetaAccessToken, HTTP: hc}
	}
	if cfg.LinkedInAccessToken != "" {
		out[audience.LinkedIn] = &audience.LinkedInClient{BaseURL: cfg.LinkedInBaseURL, Version: cfg.LinkedInAPIVersion, AccessToken: cfg.LinkedInAccessToken, HTTP: hc}
	}
	if cfg.GoogleAdsOperatingAccount != "" {
		var opts []option.ClientOption
		if cfg.GoogleDataManagerEndpoint != "" {
			opts = append(opts, option.WithEndpoint(cfg.GoogleDataManagerEndpoint))
		}
		g, err := audience.NewGoogleClient(ctx, cfg.GoogleAdsOperatingAccount, opts...)
		if err != nil {
			return nil, fmt.Errorf("Google Data Manager client: %w", err)
		}
		out[audience.Google] = g
	}
	return out, nil
}

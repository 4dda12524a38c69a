// Package config reads Tutti's settings from the environment, with defaults
// that run everything locally in sandbox mode. The Temporal connection is not
// here: it follows the SDK's envconfig (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE,
// TEMPORAL_API_KEY, TEMPORAL_TLS_*), see internal/temporalclient.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/tutti-dev/tutti/internal/codec"
	"github.com/tutti-dev/tutti/internal/contact"
	"github.com/tutti-dev/tutti/internal/provider"
	"github.com/tutti-dev/tutti/internal/ratelimit"
	"github.com/tutti-dev/tutti/internal/webhook"
)

// ProviderMode selects real providers or the local sandbox.
type ProviderMode string

const (
	// ModeSandbox records outgoing messages in Postgres instead of sending them.
	ModeSandbox ProviderMode = "sandbox"
	// ModeLive sends through SendGrid and Twilio.
	ModeLive ProviderMode = "live"
)

// DevAPIToken is accepted only in sandbox mode when TUTTI_API_TOKEN is unset.
const DevAPIToken = "dev-token"

// DefaultMetricsAddr is where the worker serves /metrics unless
// TUTTI_METRICS_ADDR says otherwise ("off" disables it).
const DefaultMetricsAddr = "127.0.0.1:9464"

// DefaultSMSConfirmPrompt is the SMS double opt-in prompt unless
// TUTTI_SMS_CONFIRM_PROMPT says otherwise. The contact confirms by replying
// YES or START.
const DefaultSMSConfirmPrompt = "Reply YES to confirm you want to receive marketing text messages from us. " +
	"Msg & data rates may apply. Reply STOP to opt out."

// DefaultSMSHelpReply answers an inbound HELP or INFO unless
// TUTTI_SMS_HELP_REPLY says otherwise.
const DefaultSMSHelpReply = "Tutti: reply STOP to opt out. Msg&data rates may apply."

// DefaultSendGridWebhookMaxAge is how far a SendGrid webhook's signing time
// may be from now unless SENDGRID_WEBHOOK_MAX_AGE says otherwise.
const DefaultSendGridWebhookMaxAge = 10 * time.Minute

// MinContinueAsNewAfter is the smallest TUTTI_CONTINUE_AS_NEW_AFTER other
// than 0: twice workflows.HandOverHeadroom (a test there keeps them in
// step). Below it a run hands over at half the setting, which the headroom
// does not cover, and a tiny setting would have every run continue as new
// at its first workflow task, over and over.
const MinContinueAsNewAfter = 30

// Body limits of the routes that take batches: large enough for a full
// batch (api.MaxBatchItems items of about 4 KiB; SendGrid's posts of many
// events), still bounded.
const (
	DefaultAPIMaxBatchBody        = 4 << 20
	DefaultSendGridWebhookMaxBody = 16 << 20
)

// DefaultDatabaseMaxConns is each process's PostgreSQL pool size: pgx's
// own default, max(4, CPUs), queued the API's requests behind four
// connections at 32 concurrent clients (issue 10).
const DefaultDatabaseMaxConns = 16

// DefaultWorkerCacheSize is how many runs a worker keeps cached (the
// SDK's sticky workflow cache, process-wide), half the SDK's 10,000. A
// cached journey run parked on a wait held about 55 KiB of the worker's
// memory in make bench-journeys (10,000 parked: 592 MiB of RSS; issue 10
// wants under 512 MiB), and a run parked for days gains little from being
// cached: its next task (its timer, a signal) replays its history, a few
// dozen events, first. 5,000 bounds the cache at about 270 MiB.
const DefaultWorkerCacheSize = 5000

// DefaultCodecCORSOrigins are the Temporal UI origins (`make dev`'s UI) the
// codec endpoint answers browsers from unless TUTTI_CODEC_CORS_ORIGINS says
// otherwise.
const DefaultCodecCORSOrigins = "http://localhost:8233,http://127.0.0.1:8233"

// CodecKeysOff is the TUTTI_CODEC_KEYS value that turns payload encryption
// off on purpose, which live mode otherwise refuses.
const CodecKeysOff = "off"

// MinWebhookSecretLen is the shortest secret a webhook destination may
// have (TUTTI_WEBHOOK_SECRET_<NAME>): the receiver trusts what it signs.
const MinWebhookSecretLen = 16

// minCodecAuthTokenLen keeps the codec endpoint's token from being guessable:
// it unlocks every history.
const minCodecAuthTokenLen = 16

// MaxControlGroupShare bounds TUTTI_CONTROL_GROUP_SHARE: a control group
// of more than half the contacts is no longer a control group but the
// program switched off.
const MaxControlGroupShare = 0.5

// Config is every setting, read once at start.
type Config struct {
	DatabaseURL string

	APIAddr     string
	APIToken    string
	APIMaxBody  int64
	PublicURL   string // where providers reach this API (webhooks, status callbacks); optional
	APIUsingDev bool   // true when the dev token is in use, so main can warn
	// APIMaxBatchBody is the body limit of the batch routes (POST
	// /v1/events/batch, /v1/contacts/batch) instead of APIMaxBody
	// (TUTTI_API_MAX_BATCH_BODY_BYTES, default DefaultAPIMaxBatchBody).
	APIMaxBatchBody int64

	// MetricsAddr is where the worker serves Prometheus metrics at /metrics
	// (TUTTI_METRICS_ADDR, default DefaultMetricsAddr); empty when set to
	// "off". The API serves them on its own address at GET /metrics.
	MetricsAddr string

	ProviderMode ProviderMode

	SendGridAPIKey  string
	SendGridBaseURL string
	EmailFrom       string
	EmailFromName   string

	TwilioAccountSID string
	TwilioAuthToken  string
	TwilioBaseURL    string
	TwilioFrom       string

	DefaultTimeZone string
	DefaultRegion   string // phone parsing region for numbers without a + prefix
	// PolicyFile is a YAML/JSON file of send-gate settings (caps, cooldowns,
	// quiet hours...) over the defaults (TUTTI_POLICY_FILE); "" keeps the defaults.
	PolicyFile string
	// Ad platforms (README "Ad audiences"): credentials and API versions,
	// used in live mode; sandbox mode accepts every audience request.
	MetaAccessToken, MetaAPIVersion, MetaBaseURL             string
	LinkedInAccessToken, LinkedInAPIVersion, LinkedInBaseURL string
	// GoogleAdsOperatingAccount is the Google Ads customer id that owns the
	// Customer Match lists; credentials come from Application Default
	// Credentials (GOOGLE_APPLICATION_CREDENTIALS). GoogleDataManagerEndpoint
	// overrides the Data Manager API's endpoint (tests).
	GoogleAdsOperatingAccount, GoogleDataManagerEndpoint string
	// AudienceSyncInterval is the time between an audience sync's passes
	// (TUTTI_AUDIENCE_SYNC_INTERVAL); AudienceFullSyncEvery between its
	// full syncs (TUTTI_AUDIENCE_FULL_SYNC_EVERY, "off": never).
	AudienceSyncInterval  time.Duration
	AudienceFullSyncEvery time.Duration
	// RateLimits are the providers' rate limits (TUTTI_RATE_LIMITS, e.g.
	// "twilio=1/s,sendgrid=600/s"); none by default.
	RateLimits ratelimit.Limits

	// GateMaxBatch and GateMaxInFlight set how the send gate groups
	// concurrent decisions for different contacts into shared transactions
	// (TUTTI_GATE_MAX_BATCH, 1 = every decision in its own transaction;
	// TUTTI_GATE_MAX_IN_FLIGHT); 0 keeps storage.DefaultGateBatching.
	GateMaxBatch    int
	GateMaxInFlight int
	// EventMaxBatch sets how many concurrent POST /v1/events share one
	// transaction (TUTTI_EVENT_MAX_BATCH, 1 = every event in its own);
	// 0 keeps storage.DefaultGateBatching's.
	EventMaxBatch int
	// WorkerWorkflowPollers, WorkerActivityPollers, WorkerStickyTimeout
	// and WorkerCacheSize tune the Temporal worker (wiring.WorkerOptions);
	// zero leaves the SDK's default (WorkerCacheSize is
	// DefaultWorkerCacheSize unless set).
	WorkerWorkflowPollers int
	WorkerActivityPollers int
	WorkerStickyTimeout   time.Duration
	WorkerCacheSize       int

	// ContinueAsNewAfter bounds journey workflow history length
	// (workflows.HandOverPoint); 0 or at least MinContinueAsNewAfter.
	ContinueAsNewAfter int
	// SingleEventSignals makes the outbox's dispatcher signal each event on
	// its own (workflows.SignalEvent) instead of a run's batch at once
	// (SignalEvents), as before batching (TUTTI_SINGLE_EVENT_SIGNALS). Set
	// it while workers of a version that does not read batches may still
	// run: such a worker ignores a batch, and its run would lose those
	// events when it continues as new (a rolling upgrade).
	SingleEventSignals bool
	// DatabaseMaxConns is the PostgreSQL pool size of each process
	// (TUTTI_DATABASE_MAX_CONNS).
	DatabaseMaxConns int
	// SignalTimeout bounds how long the API waits on Temporal when fanning out an event.
	SignalTimeout time.Duration
	// SegmentSweepEvery is how often the worker's Temporal Schedule sweeps
	// the time-dependent segments (TUTTI_SEGMENT_SWEEP_EVERY, default 15m).
	SegmentSweepEvery time.Duration

	// ControlGroupShare is the share (0 to 0.5) of contacts in the
	// workspace-wide control group (TUTTI_CONTROL_GROUP_SHARE, default 0:
	// none): no marketing message is sent to them, by any journey, so that
	// the program as a whole can be measured against them. Membership is a
	// hash of the contact id, recorded the first time a marketing send is
	// decided for the contact, and the record wins from then on: raising
	// or lowering the share later moves no one already recorded.
	ControlGroupShare float64

	// SMSConfirmPrompt is the SMS double opt-in prompt the API texts when it
	// records an SMS opt-in as pending (TUTTI_SMS_CONFIRM_PROMPT).
	SMSConfirmPrompt string

	// Provider webhooks (POST /webhooks/...). A webhook whose secret is not
	// set answers 503: unsigned events are never accepted.
	//
	// SendGridWebhookPublicKey is the Signed Event Webhook verification key
	// as SendGrid shows it (base64 DER, or PEM) (SENDGRID_WEBHOOK_PUBLIC_KEY);
	// SendGridWebhookMaxAge bounds the signing time's distance from now
	// (SENDGRID_WEBHOOK_MAX_AGE, default 10m). Twilio webhooks are verified
	// with TwilioAuthToken.
	SendGridWebhookPublicKey string
	SendGridWebhookMaxAge    time.Duration
	// SendGridWebhookMaxBody is the body limit of POST /webhooks/sendgrid
	// instead of APIMaxBody: SendGrid posts events in batches of many
	// (TUTTI_SENDGRID_WEBHOOK_MAX_BODY_BYTES, default
	// DefaultSendGridWebhookMaxBody).
	SendGridWebhookMaxBody int64
	// SendGridASMGroups maps SendGrid unsubscribe group ids to Tutti
	// subscription types, so a group_unsubscribe revokes just that
	// subscription (SENDGRID_ASM_GROUP_SUBSCRIPTIONS, "123=newsletter,456=promotions").
	SendGridASMGroups map[int64]string
	// SMSHelpReply answers an inbound HELP or INFO (TUTTI_SMS_HELP_REPLY).
	SMSHelpReply string

	// ErasureHashKey keys the hashes (HMAC-SHA256) of an erased contact's
	// identifiers, under which the proof of their consent and opt-out is
	// kept (TUTTI_ERASURE_HASH_KEY, at least contact.MinHashKeyLen bytes).
	// Required in live mode; in sandbox mode an unset key is
	// contact.DevHashKey, which is public (ErasureUsingDevKey is then true).
	// Changing the key later orphans the proofs already kept: an erased
	// person's opt-out is no longer recognised.
	ErasureHashKey     []byte
	ErasureUsingDevKey bool
	// Codec encrypts every Temporal payload the worker and the API write
	// (internal/codec) with the keys in TUTTI_CODEC_KEYS ("id:base64key,...",
	// newest first: the first encrypts, all decrypt). Nil when the variable
	// is unset or "off": payloads are then stored in plaintext. Live mode
	// requires it to be set (possibly to "off").
	Codec *codec.Codec
	// CodecAuthToken is the bearer token of the codec endpoint (/codec/...)
	// that lets the Temporal UI and CLI decode histories
	// (TUTTI_CODEC_AUTH_TOKEN). It is separate from the API token: reading
	// histories and driving journeys are different rights, and this one
	// ends up in a browser's codec setting. Empty: the endpoint is off.
	CodecAuthToken string
	// CodecCORSOrigins are the Temporal UI origins browsers may call the
	// codec endpoint from (TUTTI_CODEC_CORS_ORIGINS, comma-separated).
	CodecCORSOrigins []string

	// WebhookDestinations are where webhook steps may post, by name
	// (TUTTI_WEBHOOK_DESTINATIONS, "name=url,..."), each with its signing
	// secret (TUTTI_WEBHOOK_SECRET_<NAME>: the name upper-cased, "-" as
	// "_"). Specs name a destination; URLs and secrets live only here.
	WebhookDestinations map[string]provider.WebhookDestination
}

// Load reads the environment. Every problem is reported, each naming its variable.
func Load() (Config, error) { return load(os.LookupEnv) }

func load(lookup func(string) (string, bool)) (Config, error) {
	get := func(key, def string) string {
		if v, ok := lookup(key); ok && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v)
		}
		return def
	}
	var errs []error
	c := Config{
		DatabaseURL:      get("DATABASE_URL", "postgres://root@127.0.0.1:5432/tutti?sslmode=disable"),
		APIAddr:          get("TUTTI_API_ADDR", "127.0.0.1:8080"),
		APIToken:         get("TUTTI_API_TOKEN", ""),
		PublicURL:        get("TUTTI_PUBLIC_URL", ""),
		ProviderMode:     ProviderMode(get("TUTTI_PROVIDER_MODE", string(ModeSandbox))),
		SendGridAPIKey:   get("SENDGRID_API_KEY", ""),
		SendGridBaseURL:  get("SENDGRID_BASE_URL", "https://api.sendgrid.com"),
		EmailFrom:        get("TUTTI_EMAIL_FROM", "hello@example.com"),
		EmailFromName:    get("TUTTI_EMAIL_FROM_NAME", "Tutti"),
		TwilioAccountSID: get("TWILIO_ACCOUNT_SID", ""),
		TwilioAuthToken:  get("TWILIO_AUTH_TOKEN", ""),
		TwilioBaseURL:    get("TWILIO_BASE_URL", "https://api.twilio.com"),
		TwilioFrom:       get("TWILIO_FROM", "+15005550006"),
		DefaultTimeZone:  get("TUTTI_DEFAULT_TIMEZONE", "UTC"),
		DefaultRegion:    get("TUTTI_DEFAULT_REGION", "US"),
		PolicyFile:       get("TUTTI_POLICY_FILE", ""),
		SMSConfirmPrompt: get("TUTTI_SMS_CONFIRM_PROMPT", DefaultSMSConfirmPrompt),
	}

	maxBody, err := strconv.ParseInt(get("TUTTI_API_MAX_BODY_BYTES", "1048576"), 10, 64)
	if err != nil || maxBody <= 0 {
		errs = append(errs, fmt.Errorf("TUTTI_API_MAX_BODY_BYTES: must be a positive whole number of bytes"))
	}
	c.APIMaxBody = maxBody
	for _, v := range []struct {
		key string
		def int64
		dst *int64
	}{
		{"TUTTI_API_MAX_BATCH_BODY_BYTES", DefaultAPIMaxBatchBody, &c.APIMaxBatchBody},
		{"TUTTI_SENDGRID_WEBHOOK_MAX_BODY_BYTES", DefaultSendGridWebhookMaxBody, &c.SendGridWebhookMaxBody},
	} {
		n, err := strconv.ParseInt(get(v.key, strconv.FormatInt(v.def, 10)), 10, 64)
		if err != nil || n <= 0 {
			errs = append(errs, fmt.Errorf("%s: must be a positive whole number of bytes", v.key))
			n = v.def
		}
		*v.dst = n
	}

	c.MetaAccessToken, c.MetaAPIVersion, c.MetaBaseURL = get("META_ACCESS_TOKEN", ""), get("META_API_VERSION", "v23.0"), get("META_BASE_URL", "https://graph.facebook.com")
	c.LinkedInAccessToken, c.LinkedInAPIVersion, c.LinkedInBaseURL = get("LINKEDIN_ACCESS_TOKEN", ""), get("LINKEDIN_API_VERSION", "202510"), get("LINKEDIN_BASE_URL", "https://api.linkedin.com")
	c.GoogleAdsOperatingAccount, c.GoogleDataManagerEndpoint = get("GOOGLE_ADS_OPERATING_ACCOUNT", ""), get("GOOGLE_DATAMANAGER_ENDPOINT", "")
	if raw := get("TUTTI_AUDIENCE_SYNC_INTERVAL", "1m"); raw != "" {
		d, err := time.ParseDuration(raw)
		if err != nil || d < time.Second || d > 24*time.Hour {
			errs = append(errs, fmt.Errorf("TUTTI_AUDIENCE_SYNC_INTERVAL: must be a duration from 1s to 24h like 1m, got %q", raw))
		}
		c.AudienceSyncInterval = d
	}

	switch raw := get("TUTTI_AUDIENCE_FULL_SYNC_EVERY", "24h"); raw {
	case "off":
	default:
		d, err := time.ParseDuration(raw)
		if err != nil || d < time.Minute {
			errs = append(errs, fmt.Errorf("TUTTI_AUDIENCE_FULL_SYNC_EVERY: must be a duration of at least 1m like 24h, or off, got %q", raw))
		}
		c.AudienceFullSyncEvery = d
	}

	limits, err := ratelimit.Parse(get("TUTTI_RATE_LIMITS", ""))
	if err != nil {
		errs = append(errs, fmt.Errorf("TUTTI_RATE_LIMITS: %v", err))
	}
	c.RateLimits = limits

	can, err := strconv.Atoi(get("TUTTI_CONTINUE_AS_NEW_AFTER", "0"))
	if err != nil || can < 0 || (can > 0 && can < MinContinueAsNewAfter) {
		errs = append(errs, fmt.Errorf("TUTTI_CONTINUE_AS_NEW_AFTER: must be 0 (the default) or a whole number of history events of at least %d", MinContinueAsNewAfter))
	}
	c.ContinueAsNewAfter = can

	conns, err := strconv.Atoi(get("TUTTI_DATABASE_MAX_CONNS", strconv.Itoa(DefaultDatabaseMaxConns)))
	if err != nil || conns < 1 || conns > 1000 {
		errs = append(errs, fmt.Errorf("TUTTI_DATABASE_MAX_CONNS: must be a whole number of connections from 1 to 1000"))
		conns = DefaultDatabaseMaxConns
	}
	c.DatabaseMaxConns = conns

	c.WorkerCacheSize = DefaultWorkerCacheSize
	for _, v := range []struct {
		key string
		dst *int
	}{{"TUTTI_GATE_MAX_BATCH", &c.GateMaxBatch}, {"TUTTI_GATE_MAX_IN_FLIGHT", &c.GateMaxInFlight}, {"TUTTI_EVENT_MAX_BATCH", &c.EventMaxBatch},
		{"TUTTI_WORKER_WORKFLOW_POLLERS", &c.WorkerWorkflowPollers}, {"TUTTI_WORKER_ACTIVITY_POLLERS", &c.WorkerActivityPollers},
		{"TUTTI_WORKER_CACHE_SIZE", &c.WorkerCacheSize}} {
		raw := get(v.key, "")
		if raw == "" {
			continue
		}
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 {
			errs = append(errs, fmt.Errorf("%s: must be a whole number of at least 1, got %q", v.key, raw))
			continue
		}
		*v.dst = n
	}

	switch v := get("TUTTI_SINGLE_EVENT_SIGNALS", "false"); v {
	case "true", "false":
		c.SingleEventSignals = v == "true"
	default:
		errs = append(errs, fmt.Errorf("TUTTI_SINGLE_EVENT_SIGNALS: must be true or false, got %q", v))
	}

	if raw := get("TUTTI_WORKER_STICKY_TIMEOUT", ""); raw != "" {
		d, err := time.ParseDuration(raw)
		if err != nil || d < time.Second {
			errs = append(errs, fmt.Errorf("TUTTI_WORKER_STICKY_TIMEOUT: must be a duration of at least 1s like 5s, got %q", raw))
		}
		c.WorkerStickyTimeout = d
	}

	share, err := strconv.ParseFloat(get("TUTTI_CONTROL_GROUP_SHARE", "0"), 64)
	if err != nil || !(share >= 0 && share <= MaxControlGroupShare) {
		errs = append(errs, fmt.Errorf("TUTTI_CONTROL_GROUP_SHARE: must be a share from 0 (no control group) to %v, like 0.05", MaxControlGroupShare))
		share = 0
	}
	c.ControlGroupShare = share

	st, err := time.ParseDuration(get("TUTTI_SIGNAL_TIMEOUT", "5s"))
	if err != nil || st <= 0 {
		errs = append(errs, fmt.Errorf("TUTTI_SIGNAL_TIMEOUT: must be a positive duration like 5s"))
	}
	c.SignalTimeout = st

	sweep, err := time.ParseDuration(get("TUTTI_SEGMENT_SWEEP_EVERY", "15m"))
	if err != nil || sweep < time.Minute {
		errs = append(errs, fmt.Errorf("TUTTI_SEGMENT_SWEEP_EVERY: must be a duration of at least 1m like 15m"))
	}
	c.SegmentSweepEvery = sweep

	c.MetricsAddr = get("TUTTI_METRICS_ADDR", DefaultMetricsAddr)
	if strings.EqualFold(c.MetricsAddr, "off") {
		c.MetricsAddr = ""
	} else if _, port, err := net.SplitHostPort(c.MetricsAddr); err != nil || port == "" {
		errs = append(errs, fmt.Errorf("TUTTI_METRICS_ADDR: must be host:port like %s, or off, got %q", DefaultMetricsAddr, c.MetricsAddr))
	}

	c.SendGridWebhookPublicKey = get("SENDGRID_WEBHOOK_PUBLIC_KEY", "")
	c.SMSHelpReply = get("TUTTI_SMS_HELP_REPLY", DefaultSMSHelpReply)
	maxAge, err := time.ParseDuration(get("SENDGRID_WEBHOOK_MAX_AGE", DefaultSendGridWebhookMaxAge.String()))
	if err != nil || maxAge <= 0 {
		errs = append(errs, fmt.Errorf("SENDGRID_WEBHOOK_MAX_AGE: must be a positive duration like 10m"))
		maxAge = DefaultSendGridWebhookMaxAge
	}
	c.SendGridWebhookMaxAge = maxAge
	if c.SendGridWebhookPublicKey != "" {
		if _, err := webhook.NewSendGridVerifier(c.SendGridWebhookPublicKey, maxAge); err != nil {
			errs = append(errs, fmt.Errorf("SENDGRID_WEBHOOK_PUBLIC_KEY: %v", err))
		}
	}
	groups, err := parseASMGroups(get("SENDGRID_ASM_GROUP_SUBSCRIPTIONS", ""))
	if err != nil {
		errs = append(errs, fmt.Errorf("SENDGRID_ASM_GROUP_SUBSCRIPTIONS: %v", err))
	}
	c.SendGridASMGroups = groups

	codecKeys := get("TUTTI_CODEC_KEYS", "")
	switch {
	case codecKeys == "":
		if c.ProviderMode == ModeLive {
			errs = append(errs, fmt.Errorf("TUTTI_CODEC_KEYS: required in live mode, so journey data in Temporal is encrypted "+
				"(id:base64key, e.g. from `tutti codec new-key ID`); set it to %q to store payloads in plaintext", CodecKeysOff))
		}
	case strings.EqualFold(codecKeys, CodecKeysOff):
	default:
		keys, err := codec.ParseKeys(codecKeys)
		if err == nil {
			c.Codec, err = codec.New(keys...)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("TUTTI_CODEC_KEYS: %v", err))
		}
	}
	c.CodecAuthToken = get("TUTTI_CODEC_AUTH_TOKEN", "")
	if err := checkCodecAuthToken(c.CodecAuthToken); err != nil {
		errs = append(errs, fmt.Errorf("TUTTI_CODEC_AUTH_TOKEN: %v", err))
	}
	origins, err := parseOrigins(get("TUTTI_CODEC_CORS_ORIGINS", DefaultCodecCORSOrigins))
	if err != nil {
		errs = append(errs, fmt.Errorf("TUTTI_CODEC_CORS_ORIGINS: %v", err))
	}
	c.CodecCORSOrigins = origins

	hooks, err := parseWebhookDestinations(get("TUTTI_WEBHOOK_DESTINATIONS", ""), get)
	if err != nil {
		errs = append(errs, err)
	}
	c.WebhookDestinations = hooks

	if _, err := time.LoadLocation(c.DefaultTimeZone); err != nil {
		errs = append(errs, fmt.Errorf("TUTTI_DEFAULT_TIMEZONE: unknown time zone %q", c.DefaultTimeZone))
	}

	if key := get("TUTTI_ERASURE_HASH_KEY", ""); key != "" {
		if len(key) < contact.MinHashKeyLen {
			errs = append(errs, fmt.Errorf("TUTTI_ERASURE_HASH_KEY: at least %d characters (e.g. openssl rand -hex 32), got %d",
				contact.MinHashKeyLen, len(key)))
		}
		c.ErasureHashKey = []byte(key)
	}

	switch c.ProviderMode {
	case ModeSandbox:
		if c.APIToken == "" {
			c.APIToken, c.APIUsingDev = DevAPIToken, true
		}
		if c.ErasureHashKey == nil {
			c.ErasureHashKey, c.ErasureUsingDevKey = contact.DevHashKey, true
		}
	case ModeLive:
		if c.APIToken == "" {
			errs = append(errs, errors.New("TUTTI_API_TOKEN: required in live mode"))
		}
		if c.ErasureHashKey == nil {
			errs = append(errs, errors.New("TUTTI_ERASURE_HASH_KEY: required in live mode (e.g. openssl rand -hex 32): "+
				"it keeps the hashed identifiers of erased contacts from being reversed"))
		}
		if c.SendGridAPIKey == "" {
			errs = append(errs, errors.New("SENDGRID_API_KEY: required in live mode"))
		}
		if c.TwilioAccountSID == "" || c.TwilioAuthToken == "" {
			errs = append(errs, errors.New("TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN: required in live mode"))
		}
	default:
		errs = append(errs, fmt.Errorf("TUTTI_PROVIDER_MODE: must be %q or %q, got %q", ModeSandbox, ModeLive, c.ProviderMode))
	}
	for name, raw := range map[string]string{"SENDGRID_BASE_URL": c.SendGridBaseURL, "TWILIO_BASE_URL": c.TwilioBaseURL} {
		if u, err := url.Parse(raw); err != nil || u.Scheme == "" || u.Host == "" {
			errs = append(errs, fmt.Errorf("%s: must be an absolute URL, got %q", name, raw))
		}
	}
	return c, errors.Join(errs...)
}

// parseASMGroups reads "123=newsletter,456=promotions": SendGrid unsubscribe
// group ids and the subscription type each stands for.
func parseASMGroups(raw string) (map[int64]string, error) {
	out := map[int64]string{}
	if raw == "" {
		return out, nil
	}
	for _, pair := range strings.Split(raw, ",") {
		idText, sub, ok := strings.Cut(strings.TrimSpace(pair), "=")
		id, err := strconv.ParseInt(strings.TrimSpace(idText), 10, 64)
		sub = strings.TrimSpace(sub)
		switch {
		case !ok || err != nil || id <= 0 || sub == "":
			return nil, fmt.Errorf("want group-id=subscription pairs separated by commas, like 123=newsletter; got %q", pair)
		case out[id] != "":
			return nil, fmt.Errorf("group %d is mapped twice", id)
		}
		out[id] = sub
	}
	return out, nil
}

var webhookNamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// WebhookSecretVar is the variable that holds the signing secret of the
// webhook destination name: TUTTI_WEBHOOK_SECRET_ and the name upper-cased,
// "-" written "_".
func WebhookSecretVar(name string) string {
	return "TUTTI_WEBHOOK_SECRET_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// parseWebhookDestinations reads "crm=https://crm.example.com/hooks/tutti,
// sales-alerts=https://..." and each destination's secret. A URL is https,
// or http to a loopback address (a receiver on the same machine): the
// payload names a person. Every problem names its variable.
func parseWebhookDestinations(raw string, get func(key, def string) string) (map[string]provider.WebhookDestination, error) {
	out := map[string]provider.WebhookDestination{}
	if raw == "" {
		return out, nil
	}
	var errs []error
	secretOf := map[string]string{} // secret variable -> destination, to refuse two names sharing one
	for _, pair := range strings.Split(raw, ",") {
		name, rawURL, ok := strings.Cut(strings.TrimSpace(pair), "=")
		name, rawURL = strings.TrimSpace(name), strings.TrimSpace(rawURL)
		if !ok || !webhookNamePattern.MatchString(name) {
			errs = append(errs, fmt.Errorf("TUTTI_WEBHOOK_DESTINATIONS: want name=url pairs separated by commas, names of a-z, 0-9, \"_\" and \"-\"; got %q", pair))
			continue
		}
		if _, dup := out[name]; dup {
			errs = append(errs, fmt.Errorf("TUTTI_WEBHOOK_DESTINATIONS: destination %q is named twice", name))
			continue
		}
		u, err := url.Parse(rawURL)
		switch {
		case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
			errs = append(errs, fmt.Errorf("TUTTI_WEBHOOK_DESTINATIONS: %s: must be an absolute https URL", name))
			continue
		case u.Scheme == "http" && !loopbackHost(u.Hostname()):
			errs = append(errs, fmt.Errorf("TUTTI_WEBHOOK_DESTINATIONS: %s: must be https (http only to localhost)", name))
			continue
		}
		key := WebhookSecretVar(name)
		if other, dup := secretOf[key]; dup {
			errs = append(errs, fmt.Errorf("TUTTI_WEBHOOK_DESTINATIONS: %q and %q would share the secret %s: rename one", other, name, key))
			continue
		}
		secretOf[key] = name
		secret := get(key, "")
		if len(secret) < MinWebhookSecretLen {
			errs = append(errs, fmt.Errorf("%s: the signing secret of webhook destination %q: at least %d characters (e.g. openssl rand -hex 32)",
				key, name, MinWebhookSecretLen))
			continue
		}
		out[name] = provider.WebhookDestination{Name: name, URL: u.String(), Secret: []byte(secret)}
	}
	return out, errors.Join(errs...)
}

func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkCodecAuthToken: the token may travel in a URL path (the Temporal UI
// cannot send a header of our choosing), so it must be URL-safe as it is,
// and long enough not to be guessed.
func checkCodecAuthToken(token string) error {
	if token == "" {
		return nil
	}
	if len(token) < minCodecAuthTokenLen {
		return fmt.Errorf("must be at least %d characters (e.g. `openssl rand -hex 32`)", minCodecAuthTokenLen)
	}
	for _, r := range token {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-._~", r)) {
			return errors.New("use only letters, digits, '-', '.', '_' and '~' (it may appear in a URL path)")
		}
	}
	return nil
}

// parseOrigins reads comma-separated browser origins like
// http://localhost:8233: a scheme and a host, no path.
func parseOrigins(raw string) ([]string, error) {
	var out []string
	for _, o := range strings.Split(raw, ",") {
		o = strings.TrimSuffix(strings.TrimSpace(o), "/")
		if o == "" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil {
			return nil, fmt.Errorf("want origins like http://localhost:8233 (scheme and host, no path), got %q", o)
		}
		out = append(out, strings.ToLower(u.Scheme)+"://"+strings.ToLower(u.Host))
	}
	return out, nil
}

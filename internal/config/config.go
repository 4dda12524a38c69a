// Package config reads Tutti's settings from the environment, with defaults
// that run everything locally in sandbox mode. The Temporal connection is not
// here: it follows the SDK's envconfig (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE,
// TEMPORAL_API_KEY, TEMPORAL_TLS_*), see internal/temporalclient.
package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
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

// Config is every setting, read once at start.
type Config struct {
	DatabaseURL string

	APIAddr     string
	APIToken    string
	APIMaxBody  int64
	PublicURL   string // where providers reach this API (webhooks, status callbacks); optional
	APIUsingDev bool   // true when the dev token is in use, so main can warn

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

	// ContinueAsNewAfter bounds journey workflow history length.
	ContinueAsNewAfter int
	// SignalTimeout bounds how long the API waits on Temporal when fanning out an event.
	SignalTimeout time.Duration
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
	}

	maxBody, err := strconv.ParseInt(get("TUTTI_API_MAX_BODY_BYTES", "1048576"), 10, 64)
	if err != nil || maxBody <= 0 {
		errs = append(errs, fmt.Errorf("TUTTI_API_MAX_BODY_BYTES: must be a positive whole number of bytes"))
	}
	c.APIMaxBody = maxBody

	can, err := strconv.Atoi(get("TUTTI_CONTINUE_AS_NEW_AFTER", "0"))
	if err != nil || can < 0 {
		errs = append(errs, fmt.Errorf("TUTTI_CONTINUE_AS_NEW_AFTER: must be a whole number of history events (0 = default)"))
	}
	c.ContinueAsNewAfter = can

	st, err := time.ParseDuration(get("TUTTI_SIGNAL_TIMEOUT", "5s"))
	if err != nil || st <= 0 {
		errs = append(errs, fmt.Errorf("TUTTI_SIGNAL_TIMEOUT: must be a positive duration like 5s"))
	}
	c.SignalTimeout = st

	if _, err := time.LoadLocation(c.DefaultTimeZone); err != nil {
		errs = append(errs, fmt.Errorf("TUTTI_DEFAULT_TIMEZONE: unknown time zone %q", c.DefaultTimeZone))
	}

	switch c.ProviderMode {
	case ModeSandbox:
		if c.APIToken == "" {
			c.APIToken, c.APIUsingDev = DevAPIToken, true
		}
	case ModeLive:
		if c.APIToken == "" {
			errs = append(errs, errors.New("TUTTI_API_TOKEN: required in live mode"))
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

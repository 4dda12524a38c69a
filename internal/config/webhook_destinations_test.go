package config

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/provider"
)

func TestWebhookDestinations(t *testing.T) {
	t.Parallel()
	secret := strings.Repeat("s", MinWebhookSecretLen)
	for _, tc := range []struct {
		name    string
		env     map[string]string
		want    map[string]provider.WebhookDestination
		wantErr []string
	}{
		{name: "none", env: map[string]string{}, want: map[string]provider.WebhookDestination{}},
		{name: "two, each with its secret", env: map[string]string{
			"TUTTI_WEBHOOK_DESTINATIONS":          "crm=https://crm.example.com/hooks/tutti?team=a, sales-alerts=http://127.0.0.1:9000/in",
			"TUTTI_WEBHOOK_SECRET_CRM":            secret,
			"TUTTI_WEBHOOK_SECRET_SALES_ALERTS":   secret + "2",
			"TUTTI_WEBHOOK_SECRET_NOT_CONFIGURED": "ignored",
		}, want: map[string]provider.WebhookDestination{
			"crm":          {Name: "crm", URL: "https://crm.example.com/hooks/tutti?team=a", Secret: []byte(secret)},
			"sales-alerts": {Name: "sales-alerts", URL: "http://127.0.0.1:9000/in", Secret: []byte(secret + "2")},
		}},
		{name: "secret missing or short", env: map[string]string{
			"TUTTI_WEBHOOK_DESTINATIONS": "crm=https://crm.example.com,mail=https://mail.example.com",
			"TUTTI_WEBHOOK_SECRET_MAIL":  "short",
		}, wantErr: []string{
			`TUTTI_WEBHOOK_SECRET_CRM: the signing secret of webhook destination "crm": at least 16 characters`,
			`TUTTI_WEBHOOK_SECRET_MAIL: the signing secret of webhook destination "mail": at least 16 characters`,
		}},
		{name: "bad entries", env: map[string]string{
			"TUTTI_WEBHOOK_DESTINATIONS": "CRM=https://a.example.com,plain=http://crm.example.com,rel=/hooks,crm=https://a.example.com,crm=https://b.example.com,a-b=https://x.example.com,a_b=https://y.example.com",
			"TUTTI_WEBHOOK_SECRET_CRM":   secret, "TUTTI_WEBHOOK_SECRET_A_B": secret,
		}, wantErr: []string{
			`TUTTI_WEBHOOK_DESTINATIONS: want name=url pairs separated by commas`,
			`TUTTI_WEBHOOK_DESTINATIONS: plain: must be https (http only to localhost)`,
			`TUTTI_WEBHOOK_DESTINATIONS: rel: must be an absolute https URL`,
			`TUTTI_WEBHOOK_DESTINATIONS: destination "crm" is named twice`,
			`TUTTI_WEBHOOK_DESTINATIONS: "a-b" and "a_b" would share the secret TUTTI_WEBHOOK_SECRET_A_B`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := load(func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok })
			if tc.wantErr != nil {
				require.Error(t, err)
				for _, w := range tc.wantErr {
					require.Contains(t, err.Error(), w)
				}
				require.NotContains(t, err.Error(), secret, "a secret is never quoted")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, c.WebhookDestinations)
		})
	}
}

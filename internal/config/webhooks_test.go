package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

func webhookEnv(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	}
}

func TestWebhookSettings(t *testing.T) {
	c, err := load(webhookEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.SendGridWebhookPublicKey != "" || c.SendGridWebhookMaxAge != DefaultSendGridWebhookMaxAge ||
		c.SMSHelpReply != DefaultSMSHelpReply || len(c.SendGridASMGroups) != 0 {
		t.Errorf("defaults: %+v", c)
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err = load(webhookEnv(map[string]string{
		"SENDGRID_WEBHOOK_PUBLIC_KEY":      base64.StdEncoding.EncodeToString(der),
		"SENDGRID_WEBHOOK_MAX_AGE":         "30m",
		"SENDGRID_ASM_GROUP_SUBSCRIPTIONS": "123=newsletter, 456 = promotions",
		"TUTTI_SMS_HELP_REPLY":             "Acme help",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.SendGridWebhookMaxAge != 30*time.Minute || c.SMSHelpReply != "Acme help" ||
		c.SendGridASMGroups[123] != "newsletter" || c.SendGridASMGroups[456] != "promotions" {
		t.Errorf("settings: %+v", c)
	}

	_, err = load(webhookEnv(map[string]string{
		"SENDGRID_WEBHOOK_PUBLIC_KEY":      "bm90IGEga2V5",
		"SENDGRID_WEBHOOK_MAX_AGE":         "-1m",
		"SENDGRID_ASM_GROUP_SUBSCRIPTIONS": "123",
	}))
	for _, name := range []string{"SENDGRID_WEBHOOK_PUBLIC_KEY", "SENDGRID_WEBHOOK_MAX_AGE", "SENDGRID_ASM_GROUP_SUBSCRIPTIONS"} {
		if err == nil || !strings.Contains(err.Error(), name+":") {
			t.Errorf("want an error naming %s, got %v", name, err)
		}
	}
	if _, err := parseASMGroups("1=a,1=b"); err == nil {
		t.Error("a group mapped twice must be refused")
	}
}

package config

import "testing"

func TestBodyLimits(t *testing.T) {
	c, err := load(webhookEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.APIMaxBatchBody != DefaultAPIMaxBatchBody || c.SendGridWebhookMaxBody != DefaultSendGridWebhookMaxBody {
		t.Errorf("defaults: batch %d, sendgrid %d", c.APIMaxBatchBody, c.SendGridWebhookMaxBody)
	}
	c, err = load(webhookEnv(map[string]string{"TUTTI_API_MAX_BATCH_BODY_BYTES": "2048", "TUTTI_SENDGRID_WEBHOOK_MAX_BODY_BYTES": "4096"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.APIMaxBatchBody != 2048 || c.SendGridWebhookMaxBody != 4096 {
		t.Errorf("set: batch %d, sendgrid %d", c.APIMaxBatchBody, c.SendGridWebhookMaxBody)
	}
	for _, bad := range []string{"0", "-1", "16MiB"} {
		for _, key := range []string{"TUTTI_API_MAX_BATCH_BODY_BYTES", "TUTTI_SENDGRID_WEBHOOK_MAX_BODY_BYTES"} {
			if _, err := load(webhookEnv(map[string]string{key: bad})); err == nil {
				t.Errorf("%s=%q accepted", key, bad)
			}
		}
	}
}

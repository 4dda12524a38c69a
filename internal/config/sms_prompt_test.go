package config

import "testing"

func TestSMSConfirmPrompt(t *testing.T) {
	for env, want := range map[string]string{
		"":                               DefaultSMSConfirmPrompt,
		"   ":                            DefaultSMSConfirmPrompt,
		" Acme: reply YES for texts. ":   "Acme: reply YES for texts.",
		"Reply START to get our offers.": "Reply START to get our offers.",
	} {
		c, err := load(func(k string) (string, bool) {
			if k == "TUTTI_SMS_CONFIRM_PROMPT" {
				return env, true
			}
			return "", false
		})
		if err != nil {
			t.Fatalf("%q: %v", env, err)
		}
		if c.SMSConfirmPrompt != want {
			t.Errorf("TUTTI_SMS_CONFIRM_PROMPT=%q: got %q, want %q", env, c.SMSConfirmPrompt, want)
		}
	}
}

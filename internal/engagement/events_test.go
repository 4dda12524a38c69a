package engagement_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/engagement"
	"github.com/tutti-dev/tutti/internal/webhook"
)

// The engagement events are the ones the webhooks store: one vocabulary.
func TestEngagementEventsAreTheWebhooks(t *testing.T) {
	t.Parallel()
	require.Equal(t, []string{webhook.KindEmailOpened, webhook.KindEmailClicked, webhook.KindSMSReplied}, engagement.EventNames())
	require.True(t, engagement.IsEngagement(webhook.KindSMSReplied))
	require.False(t, engagement.IsEngagement("purchase"))
}

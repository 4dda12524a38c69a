package engagement

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/journey"
)

func TestBestChannel(t *testing.T) {
	t.Parallel()
	email := func(sent, engaged int, prior float64) ChannelEvidence {
		return ChannelEvidence{Channel: journey.ChannelEmail, Sent: sent, Engaged: engaged, PriorRate: prior, Cost: 0.001}
	}
	sms := func(sent, engaged int, prior float64) ChannelEvidence {
		return ChannelEvidence{Channel: journey.ChannelSMS, Sent: sent, Engaged: engaged, PriorRate: prior, Cost: 0.008}
	}
	for _, tc := range []struct {
		name  string
		cands []ChannelEvidence
		want  journey.Channel
		rates []float64
	}{
		{name: "nothing", want: ""},
		{name: "new contact: the workspace's better channel", cands: []ChannelEvidence{email(0, 0, 0.2), sms(0, 0, 0.3)},
			want: journey.ChannelSMS, rates: []float64{0.2, 0.3}},
		{name: "new contact, equal priors: the cheaper", cands: []ChannelEvidence{sms(0, 0, 0.2), email(0, 0, 0.2)},
			want: journey.ChannelEmail},
		{name: "own history outweighs the prior", cands: []ChannelEvidence{email(20, 0, 0.2), sms(5, 3, 0.1)},
			want: journey.ChannelSMS, rates: []float64{2.0 / 30, 4.0 / 15}},
		{name: "one lucky reply does not", cands: []ChannelEvidence{email(0, 0, 0.3), sms(1, 1, 0.1)},
			want: journey.ChannelEmail},
		{name: "engagements above sends count as sends", cands: []ChannelEvidence{email(2, 9, 0), sms(0, 0, 0.1)},
			want: journey.ChannelEmail, rates: []float64{2.0 / 12, 0.1}},
		{name: "no workspace data and no history: a tie, the cheaper", cands: []ChannelEvidence{sms(0, 0, 0), email(0, 0, 0)},
			want: journey.ChannelEmail},
	} {
		t.Run(tc.name, func(t *testing.T) {
			i := BestChannel(tc.cands, ChannelPriorWeight)
			if tc.want == "" {
				require.Equal(t, -1, i)
				return
			}
			require.Equal(t, tc.want, tc.cands[i].Channel)
			for j, r := range tc.rates {
				require.InDelta(t, r, tc.cands[j].Rate, 1e-9)
			}
		})
	}
}

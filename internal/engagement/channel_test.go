package engagement

import (
	"testing"
	"time"

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

func TestDescribe(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 6, 1, 0, 0, 0, time.UTC)
	ev := Evidence{
		ChannelPriorWeight: 10,
		Channels:           []ChannelEvidence{{Channel: journey.ChannelEmail, Sent: 10, Engaged: 0, PriorRate: 0.2, Cost: 0.001, Rate: 0.1}},
		Blocked:            []BlockedChannel{{Channel: journey.ChannelSMS, Reasons: []string{"consent_revoked"}}},
		Time: &TimeEvidence{Zone: "America/New_York", Within: "7d", Engagements: 7, WorkspaceEngagements: 27, Model: DefaultHourModel,
			Cell: 92, CellName: "Thu 20:00", CellEngagements: 0, HourEngagements: 1, Score: 0.02, NowScore: 0.001},
	}
	require.Equal(t, "channel email chosen by engagement rate with a prior of 10 sends: email 0.10 (0 engaged of 10 sent, workspace rate 0.20, cost 0.001); "+
		"sms not allowed (consent_revoked); "+
		"send time 2026-03-06T01:00:00Z (Thu 20:00 America/New_York), the best hour of the week within 7d: 0 of the contact's 7 engagements fell in Thu 20:00 and 1 at 20:00 on any day; "+
		"the workspace's 27 engagements are the prior, weighing 8; score 0.0200 against 0.0010 for sending at once",
		Describe(journey.ChannelEmail, &at, ev))
	require.Empty(t, Describe(journey.ChannelEmail, nil, Evidence{}))
}

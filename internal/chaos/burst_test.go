package chaos

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/journey"
)

func TestJourneyYAML_IsAValidJourneyWhoseMessagesNameTheirStep(t *testing.T) {
	t.Parallel()
	for _, wait := range []time.Duration{0, 2 * time.Second} {
		spec, err := journey.ParseAndValidate([]byte(journeyYAML(chaosSteps(), wait)))
		require.NoError(t, err, "wait %s", wait)
		assert.Equal(t, journeyID, spec.ID)

		var sends []journey.Step
		waits := 0
		for _, s := range spec.Steps {
			switch s.Kind() {
			case journey.KindSend:
				sends = append(sends, s)
			case journey.KindWait:
				waits++
				assert.Equal(t, wait, s.Wait.Duration.Std())
			}
		}
		require.Len(t, sends, len(chaosSteps()))
		if wait > 0 {
			assert.Equal(t, len(sends)-1, waits)
		} else {
			assert.Zero(t, waits)
		}
		for i, want := range chaosSteps() {
			got := sends[i]
			assert.Equal(t, want.ID, got.ID)
			assert.Equal(t, journey.Channel(want.Channel), got.Send.Channel)
			data := journey.TemplateData(journey.ContactView{Attributes: map[string]any{"first_name": "Ada"}}, spec.ID, 1)
			switch want.Channel {
			case "email":
				e, err := journey.RenderEmail(*got.Send.Email, data)
				require.NoError(t, err)
				assert.Contains(t, e.Subject, want.Marker)
				assert.Contains(t, e.Text, want.Marker)
			case "sms":
				m, err := journey.RenderSMS(*got.Send.SMS, data)
				require.NoError(t, err)
				assert.Contains(t, m.Body, want.Marker)
			}
		}
	}
}

func TestPlan(t *testing.T) {
	t.Parallel()
	kinds := func(ps []planned) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.kind)
		}
		return out
	}

	h := &harness{cfg: Config{WorkerKills: 3, TemporalKills: 1, PGRestarts: 1}}
	ps, err := h.plan()
	require.NoError(t, err)
	assert.Equal(t, []string{"worker", "pg", "worker", "temporal", "worker"}, kinds(ps))
	assert.InDelta(t, 0.10, ps[0].at, 1e-9)
	assert.InDelta(t, 0.80, ps[len(ps)-1].at, 1e-9)
	for i := 1; i < len(ps); i++ {
		assert.Greater(t, ps[i].at, ps[i-1].at)
	}

	h.cfg = Config{}
	ps, err = h.plan()
	require.NoError(t, err)
	assert.Empty(t, ps, "no kills: a faults-only run")

	h.cfg = Config{WorkerKills: 3, Schedule: "temporal@50, worker@10"}
	ps, err = h.plan()
	require.NoError(t, err)
	assert.Equal(t, []planned{{"worker", 0.10}, {"temporal", 0.50}}, ps, "an explicit schedule wins, in order")

	for _, bad := range []string{"worker", "network@10", "pg@150", "pg@x"} {
		h.cfg = Config{Schedule: bad}
		_, err := h.plan()
		assert.Error(t, err, bad)
	}
}

package journey

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func graphSpec() Spec {
	return Spec{Steps: []Step{
		{ID: "hello", Send: &Send{Channel: ChannelEmail}},
		{ID: "pause", Wait: &Wait{Duration: 1}, Next: "ask"},
		{ID: "skipped", Send: &Send{Channel: ChannelEmail}},
		{ID: "ask", WaitFor: &WaitFor{Event: "email.opened", Timeout: 1, OnTimeout: "nudge"}},
		{ID: "nudge", Send: &Send{Channel: ChannelSMS}},
		{ID: "choose", Branch: &Branch{Condition: "true", Else: "done"}},
		{ID: "done", Exit: &Exit{}},
	}}
}

func TestStepIndex(t *testing.T) {
	s := graphSpec()
	tests := []struct {
		id   string
		want int
	}{
		{"hello", 0},
		{"ask", 3},
		{"done", 6},
		{"missing", -1},
		{"", -1},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, s.StepIndex(tt.id), tt.id)
	}
}

func TestSuccessorAndResolve(t *testing.T) {
	s := graphSpec()
	tests := []struct {
		name   string
		i      int
		target string
		want   string
	}{
		{"falls through to the next step", 0, "", "pause"},
		{"explicit next wins", 1, "", "ask"},
		{"wait_for on_event falls through", 3, s.Steps[3].WaitFor.OnEvent, "nudge"},
		{"wait_for on_timeout is explicit", 3, s.Steps[3].WaitFor.OnTimeout, "nudge"},
		{"branch then falls through", 5, s.Steps[5].Branch.Then, "done"},
		{"branch else is explicit", 5, s.Steps[5].Branch.Else, "done"},
		{"last step ends the journey", 6, "", ""},
		{"out of range ends the journey", 7, "", ""},
		{"negative index ends the journey", -1, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, s.Resolve(tt.i, tt.target))
			if tt.target == "" {
				require.Equal(t, tt.want, s.Successor(tt.i))
			}
		})
	}
}

func TestChannels(t *testing.T) {
	require.Equal(t, []Channel{ChannelEmail, ChannelSMS}, graphSpec().Channels())
	require.Nil(t, Spec{Steps: []Step{{ID: "w", Wait: &Wait{Duration: 1}}}}.Channels())
}

func TestReachable(t *testing.T) {
	require.Equal(t, []bool{true, true, false, true, true, true, true}, graphSpec().reachable())
}

func TestLoopsWithoutWait(t *testing.T) {
	tests := []struct {
		name  string
		steps []Step
		want  []loopEdge
	}{
		{
			name: "loop through a wait is fine",
			steps: []Step{
				{ID: "a", Send: &Send{}},
				{ID: "b", Wait: &Wait{Duration: 1}, Next: "a"},
			},
		},
		{
			name: "loop through a wait_for timeout is fine",
			steps: []Step{
				{ID: "a", Send: &Send{}},
				{ID: "b", WaitFor: &WaitFor{OnTimeout: "a", OnEvent: "c"}},
				{ID: "c", Exit: &Exit{}},
			},
		},
		{
			name:  "self loop",
			steps: []Step{{ID: "a", Send: &Send{}, Next: "a"}},
			want:  []loopEdge{{from: 0, edge: edge{to: 0, field: "next"}}},
		},
		{
			name: "branch loops back on one side",
			steps: []Step{
				{ID: "a", Send: &Send{}},
				{ID: "b", Branch: &Branch{Condition: "true", Then: "c", Else: "a"}},
				{ID: "c", Exit: &Exit{}},
			},
			want: []loopEdge{{from: 1, edge: edge{to: 0, field: "branch.else"}}},
		},
		{
			name: "branch falling back through next",
			steps: []Step{
				{ID: "a", Send: &Send{}},
				{ID: "b", Branch: &Branch{Condition: "true", Then: "c"}, Next: "a"},
				{ID: "c", Exit: &Exit{}},
			},
			want: []loopEdge{{from: 1, edge: edge{to: 0, field: "next"}}},
		},
		{
			name: "a loop without a wait next to one with a wait",
			steps: []Step{
				{ID: "a", Send: &Send{}},
				{ID: "b", Branch: &Branch{Condition: "true", Then: "c", Else: "a"}},
				{ID: "c", Wait: &Wait{Duration: 1}},
				{ID: "d", Send: &Send{}, Next: "b"},
			},
			want: []loopEdge{{from: 1, edge: edge{to: 0, field: "branch.else"}}},
		},
		{
			name: "two edges closing the same loop are both reported",
			steps: []Step{
				{ID: "a", Send: &Send{}},
				{ID: "b", Branch: &Branch{Condition: "true", Then: "a", Else: "a"}},
			},
			want: []loopEdge{
				{from: 1, edge: edge{to: 0, field: "branch.then"}},
				{from: 1, edge: edge{to: 0, field: "branch.else"}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, Spec{Steps: tt.steps}.loopsWithoutWait())
		})
	}
}

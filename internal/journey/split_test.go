package journey

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// splitHead is a valid head for experiment cases: a goal to measure by.
const splitHead = header + "goal: {event: purchase}\n"

func TestValidate_Splits(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string // "path: message"; nil: valid
	}{
		{"a valid split with a holdout", splitHead + `
holdout: {share: 0.1}
steps:
  - id: pick
    split:
      experiment: subject-test
      control: b
      variants:
        - {name: a, weight: 50, next: email_a}
        - {name: b, weight: 50, next: email_b}
  - {id: email_a, send: {channel: email, email: {subject: A, text: a}}, next: done}
  - {id: email_b, send: {channel: email, email: {subject: B, text: b}}}
  - {id: done, exit: {}}
`, nil},
		{"a goal window", header + "goal: {event: purchase, window: 7d}\n" + okSteps, nil},
		{"negative goal window", header + "goal: {event: purchase, window: -1h}\n" + okSteps,
			[]string{"goal.window: must be greater than 0"}},
		{"every variant problem at its path", splitHead + `
steps:
  - id: pick
    next: x
    split:
      experiment: Subject Test
      control: c
      variants:
        - {name: a, weight: 0, next: x}
        - {name: a, weight: 20000, next: nowhere}
        - {name: '', weight: 1}
        - {name: holdout, weight: 1, next: x}
  - {id: x, wait: {duration: 1h}}
`, []string{
			`steps[0].next: a split step goes on at its variants' next steps and cannot have next`,
			`steps[0].split.experiment: must be 1-64 characters of a-z, 0-9, "_" and "-", starting with a letter or digit (got "Subject Test")`,
			`steps[0].split.variants[0].weight: must be a whole number from 1 to 10000 (weights are relative: 50 and 50, or 1 and 1, split evenly), got 0`,
			`steps[0].split.variants[1].name: duplicate variant "a" (also variants[0])`,
			`steps[0].split.variants[1].weight: must be a whole number from 1 to 10000 (weights are relative: 50 and 50, or 1 and 1, split evenly), got 20000`,
			`steps[0].split.variants[1].next: unknown step "nowhere"`,
			`steps[0].split.variants[2].name: required`,
			`steps[0].split.variants[2].next: required`,
			`steps[0].split.variants[3].name: "holdout" is reserved for the journey holdout and the workspace control group`,
			`steps[0].split.control: unknown variant "c"`,
		}},
		{"one variant, no goal, a reserved and a reused experiment name", header + `
steps:
  - id: one
    split: {experiment: control_group, variants: [{name: a, weight: 1, next: two}]}
  - id: two
    split: {experiment: t, variants: [{name: a, weight: 1, next: three}, {name: b, weight: 1, next: three}]}
  - id: three
    split: {experiment: t, variants: [{name: a, weight: 1, next: end}, {name: b, weight: 1, next: end}]}
  - {id: end, exit: {}}
`, []string{
			`steps[0].split: an experiment needs goal.event: conversion to the goal is what it compares`,
			`steps[0].split.experiment: "control_group" is reserved for the journey holdout and the workspace control group`,
			`steps[0].split.variants: a split needs at least two variants (got 1)`,
			`steps[1].split: an experiment needs goal.event: conversion to the goal is what it compares`,
			`steps[2].split: an experiment needs goal.event: conversion to the goal is what it compares`,
			`steps[2].split.experiment: experiment "t" is also steps[1].split.experiment; each split is its own experiment`,
		}},
		{"a loop through a split without a wait", splitHead + `
steps:
  - id: pick
    split: {experiment: t, variants: [{name: a, weight: 1, next: pick}, {name: b, weight: 1, next: w}]}
  - {id: w, wait: {duration: 1h}}
`, []string{`steps[0].split.variants[0].next: loop back to "pick" without a wait, wait_until or wait_for step`}},
		{"a variant's step is reachable only through it", splitHead + `
steps:
  - id: pick
    split: {experiment: t, variants: [{name: a, weight: 1, next: c}, {name: b, weight: 1, next: c}]}
  - {id: b, wait: {duration: 1h}}
  - {id: c, wait: {duration: 1h}}
`, []string{"steps[1]: unreachable from the first step"}},
		{"holdout share out of range, no goal", header + "holdout: {share: 1}\n" + okSteps, []string{
			"holdout: a holdout needs goal.event: conversion to the goal is what it measures",
			"holdout.share: must be above 0 and below 1 (0.1 holds out 10% of contacts), got 1",
		}},
		{"holdout of a transactional journey", splitHead + "class: transactional\nholdout: {share: 0.05}\n" + okSteps, []string{
			"holdout: a transactional journey cannot have a holdout: its messages are never withheld",
		}},
		{"a split with another action", splitHead + `
steps:
  - id: pick
    wait: {duration: 1h}
    split: {experiment: t, variants: [{name: a, weight: 1, next: pick}, {name: b, weight: 1, next: pick}]}
`, []string{"steps[0]: step must have exactly one of send, wait, wait_until, wait_for, branch, webhook, exit, split, audience (found wait and split)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := validateYAML(t, tt.doc)
			var lines []string
			for _, p := range got {
				lines = append(lines, p.String())
			}
			require.Equal(t, tt.want, lines)
		})
	}
}

func TestSplit_helpers(t *testing.T) {
	sp := Split{Experiment: "t", Variants: []SplitVariant{{Name: "a", Weight: 3, Next: "x"}, {Name: "b", Weight: 1, Next: "y"}}}
	require.Equal(t, "a", sp.ControlVariant())
	sp.Control = "b"
	require.Equal(t, "b", sp.ControlVariant())
	v, ok := sp.Variant("b")
	require.True(t, ok)
	require.Equal(t, "y", v.Next)
	_, ok = sp.Variant("c")
	require.False(t, ok)
	require.Equal(t, 3, sp.Arms()[0].Weight)
	require.Equal(t, 30*24*3600.0, Goal{Event: "p"}.ConversionWindow().Seconds())
}

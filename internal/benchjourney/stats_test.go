package benchjourney

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestPercentile(t *testing.T) {
	t.Parallel()
	d := func(ns ...int) []time.Duration {
		var out []time.Duration
		for _, n := range ns {
			out = append(out, time.Duration(n)*time.Millisecond)
		}
		return out
	}
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(100-i) * time.Millisecond // unsorted on purpose
	}
	for _, tc := range []struct {
		name string
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{"none", nil, 50, 0},
		{"one", d(7), 99, 7 * time.Millisecond},
		{"median of four is the second", d(4, 1, 3, 2), 50, 2 * time.Millisecond},
		{"p99 of a hundred is the 99th", hundred, 99, 99 * time.Millisecond},
		{"p100 is the largest", hundred, 100, 100 * time.Millisecond},
		{"p50 of a hundred", hundred, 50, 50 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, percentile(tc.in, tc.p))
		})
	}
}

func TestMedian(t *testing.T) {
	t.Parallel()
	require.Equal(t, 0.0, median(nil))
	require.Equal(t, 2.0, median([]float64{3, 1, 2}))
	require.Equal(t, 2.5, median([]float64{4, 1, 3, 2}))
}

func TestParseStatCPU(t *testing.T) {
	t.Parallel()
	// pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime ...
	got, err := parseStatCPU("4242 (tutti worker) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 12 0")
	require.NoError(t, err)
	require.Equal(t, 3*time.Second, got)
	_, err = parseStatCPU("garbage")
	require.Error(t, err)
}

func TestWithDatabase(t *testing.T) {
	t.Parallel()
	require.Equal(t, "postgres://root@127.0.0.1:5432/bench?sslmode=disable",
		withDatabase("postgres://root@127.0.0.1:5432/postgres?sslmode=disable", "bench"))
	require.Equal(t, "postgres://u@h/bench", withDatabase("postgres://u@h", "bench"))
}

func TestSpecs_ValidJourneysOfOneKindEach(t *testing.T) {
	t.Parallel()
	all, err := specs()
	require.NoError(t, err)
	require.Len(t, all[journeyPark].Steps, 1)
	for _, k := range measuredKinds {
		for _, n := range []int{1, 3} {
			spec, ok := all[kindJourney(k, n)]
			require.True(t, ok, "%s x%d", k, n)
			require.Len(t, spec.Steps, n)
			for _, st := range spec.Steps {
				require.Equal(t, k, st.Kind())
			}
		}
	}
}

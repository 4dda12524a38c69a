package storage

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []float64
		want float64
	}{
		// percentile_cont(0.5): the middle value, or halfway between the
		// two middle ones (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER
		// BY x) FROM unnest('{4,1,3,2}'::float8[]) x = 2.5).
		{"one", []float64{7}, 7},
		{"odd", []float64{9, 1, 5}, 5},
		{"even", []float64{4, 1, 3, 2}, 2.5},
		{"ties", []float64{2, 2, 10, 10}, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := median(tc.in)
			require.NotNil(t, got)
			require.InDelta(t, tc.want, *got, 1e-9)
		})
	}
	require.Nil(t, median(nil))
}

func TestBucketPaths(t *testing.T) {
	p50 := func(v float64) *float64 { return &v }
	counts := []pathCount{
		{recorded: true, steps: []string{"a", "c"}, runs: 5, toConvert: []float64{10, 30}},
		{recorded: true, steps: []string{"a", "b"}, runs: 5, toConvert: []float64{20}},
		{recorded: true, steps: []string{"a", "b"}, truncated: true, runs: 5},
		{recorded: true, steps: []string{}, runs: 1},
		{recorded: true, steps: []string{"z"}, runs: 9, toConvert: []float64{1, 2, 3}},
		{recorded: false, runs: 4, toConvert: []float64{100}},
		{recorded: false, runs: 2, toConvert: []float64{200}},
	}
	for _, tc := range []struct {
		name  string
		limit int
		want  []PathFunnel
	}{
		{"all listed: most runs first, ties by steps then whole before truncated, unrecorded last", 20, []PathFunnel{
			{Kind: PathOne, Steps: []string{"z"}, Paths: 1, Entered: 9, Converted: 3, TimeToConvertP50: p50(2)},
			{Kind: PathOne, Steps: []string{"a", "b"}, Paths: 1, Entered: 5, Converted: 1, TimeToConvertP50: p50(20)},
			{Kind: PathOne, Steps: []string{"a", "b"}, Truncated: true, Paths: 1, Entered: 5},
			{Kind: PathOne, Steps: []string{"a", "c"}, Paths: 1, Entered: 5, Converted: 2, TimeToConvertP50: p50(20)},
			{Kind: PathOne, Steps: []string{}, Paths: 1, Entered: 1},
			{Kind: PathUnrecorded, Entered: 6, Converted: 2, TimeToConvertP50: p50(150)},
		}},
		{"the rest in one other row", 2, []PathFunnel{
			{Kind: PathOne, Steps: []string{"z"}, Paths: 1, Entered: 9, Converted: 3, TimeToConvertP50: p50(2)},
			{Kind: PathOne, Steps: []string{"a", "b"}, Paths: 1, Entered: 5, Converted: 1, TimeToConvertP50: p50(20)},
			{Kind: PathOther, Paths: 3, Entered: 11, Converted: 2, TimeToConvertP50: p50(20)},
			{Kind: PathUnrecorded, Entered: 6, Converted: 2, TimeToConvertP50: p50(150)},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, bucketPaths(counts, tc.limit))
		})
	}
	require.Empty(t, bucketPaths(nil, 20))
}

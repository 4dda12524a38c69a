package wiring_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/config"
	"github.com/tutti-dev/tutti/internal/policy"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/internal/wiring"
)

func TestPolicyFromConfig(t *testing.T) {
	cfg := config.Config{DefaultTimeZone: "Europe/Paris", DefaultRegion: "FR"}
	s, err := wiring.PolicyFromConfig(cfg)
	require.NoError(t, err)
	require.Equal(t, "Europe/Paris", s.DefaultTimeZone)
	require.Equal(t, "FR", s.DefaultRegion)
	require.Equal(t, policy.DefaultSettings().GlobalCap, s.GlobalCap)

	dir := t.TempDir()
	cfg.PolicyFile = filepath.Join(dir, "policy.yaml")
	require.NoError(t, os.WriteFile(cfg.PolicyFile, []byte("global_cap: {max: 3, window: 2d}\n"), 0o600))
	s, err = wiring.PolicyFromConfig(cfg)
	require.NoError(t, err)
	require.Equal(t, policy.FrequencyCap{Max: 3, Window: 48 * time.Hour}, s.GlobalCap)
	require.Equal(t, "Europe/Paris", s.DefaultTimeZone, "the file overlays the configured zone")

	require.NoError(t, os.WriteFile(cfg.PolicyFile, []byte("global_cap: {max: 3}\ncoolдowns: {}\n"), 0o600))
	_, err = wiring.PolicyFromConfig(cfg)
	require.ErrorContains(t, err, "TUTTI_POLICY_FILE="+cfg.PolicyFile)
}

func TestGateBatchingFromConfig(t *testing.T) {
	require.Equal(t, storage.DefaultGateBatching(), wiring.GateBatchingFromConfig(config.Config{}))
	b := wiring.GateBatchingFromConfig(config.Config{GateMaxBatch: 1})
	require.Equal(t, 1, b.MaxBatch, "1 turns grouping off")
	require.Equal(t, storage.DefaultGateBatching().MaxInFlight, b.MaxInFlight)
	b = wiring.GateBatchingFromConfig(config.Config{GateMaxBatch: 8, GateMaxInFlight: 4})
	require.Equal(t, 8, b.MaxBatch)
	require.Equal(t, 4, b.MaxInFlight)
}

func TestEventBatchingFromConfig(t *testing.T) {
	require.Equal(t, storage.DefaultGateBatching(), wiring.EventBatchingFromConfig(config.Config{GateMaxBatch: 4}), "the gate's setting is its own")
	require.Equal(t, 1, wiring.EventBatchingFromConfig(config.Config{EventMaxBatch: 1}).MaxBatch, "1 turns grouping off")
}

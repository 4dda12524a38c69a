package wiring_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/config"
	"github.com/tutti-dev/tutti/internal/contact"
	"github.com/tutti-dev/tutti/internal/provider"
	"github.com/tutti-dev/tutti/internal/storage/storagetest"
	"github.com/tutti-dev/tutti/internal/temporaltest"
	"github.com/tutti-dev/tutti/internal/wiring"
)

// A bad erasure key stops start-up before anything is opened.
func TestOpenRefusesAShortErasureKey(t *testing.T) {
	_, err := wiring.Open(context.Background(), config.Config{ErasureHashKey: []byte("short")}, nil)
	require.ErrorContains(t, err, "TUTTI_ERASURE_HASH_KEY")
}

// Open gives the worker and the API a working store, a Temporal client on
// TEMPORAL_ADDRESS, and the send path of the provider mode.
func TestOpen(t *testing.T) {
	_, dsn := storagetest.NewWithDSN(t)
	srv := temporaltest.StartDevServer(t)
	t.Setenv("TEMPORAL_ADDRESS", srv.FrontendHostPort())
	t.Setenv("TEMPORAL_NAMESPACE", temporaltest.Namespace)
	ctx := context.Background()

	for _, tc := range []struct {
		mode      config.ProviderMode
		sandboxed bool
	}{{config.ModeSandbox, true}, {config.ModeLive, false}} {
		cfg := config.Config{DatabaseURL: dsn, ErasureHashKey: contact.DevHashKey, ProviderMode: tc.mode,
			SendGridAPIKey: "SG.x", TwilioAccountSID: "AC1", TwilioAuthToken: "t", TwilioFrom: "+14155550100"}
		deps, err := wiring.Open(ctx, cfg, nil)
		require.NoError(t, err, tc.mode)
		require.NoError(t, deps.Store.Pool().Ping(ctx))
		_, err = deps.Temporal.CheckHealth(ctx, nil)
		require.NoError(t, err)
		_, isSandbox := deps.Delivery.Email.(*provider.Sandbox)
		require.Equal(t, tc.sandboxed, isSandbox, "%s mode: email sender %T", tc.mode, deps.Delivery.Email)
		require.Equal(t, "+14155550100", deps.Delivery.Sender.SMSFrom)
		deps.Close()
	}
}

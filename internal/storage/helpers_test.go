package storage_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/storage"
)

var contactSeq atomic.Int64

// newContact creates a contact with a unique email.
func newContact(t *testing.T, s *storage.Store) storage.Contact {
	t.Helper()
	c, created, err := s.UpsertContact(context.Background(), storage.ContactInput{
		Email: fmt.Sprintf("person%d@example.com", contactSeq.Add(1)),
	})
	require.NoError(t, err)
	require.True(t, created)
	return c
}

// newEmailContact creates a contact who has granted email consent.
func newEmailContact(t *testing.T, s *storage.Store) storage.Contact {
	t.Helper()
	c := newContact(t, s)
	_, _, err := s.RecordConsent(context.Background(), c.ID, journey.ChannelEmail, model.ConsentGranted, "form", time.Time{})
	require.NoError(t, err)
	return c
}

// spec is a minimal journey spec; storage does not validate specs.
func spec(id string, trigger journey.Trigger) journey.Spec {
	return journey.Spec{
		ID:      id,
		Name:    "Journey " + id,
		Trigger: trigger,
		Reentry: journey.Reentry{Policy: journey.ReentryAlways},
		Steps: []journey.Step{
			{ID: "hello", Send: &journey.Send{Channel: journey.ChannelEmail, Email: &journey.EmailMessage{Subject: "Hi", Text: "Hello"}}},
			{ID: "pause", Wait: &journey.Wait{Duration: journey.Duration(3 * 24 * 60 * 60 * 1e9)}},
		},
	}
}

func publish(t *testing.T, s *storage.Store, id string) storage.JourneyVersion {
	t.Helper()
	v, err := s.PublishJourney(context.Background(), spec(id, journey.Trigger{Type: journey.TriggerAPI}))
	require.NoError(t, err)
	return v
}

// concurrently runs fn n times at once (released together) and waits.
func concurrently(n int, fn func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			fn(i)
		}()
	}
	close(start)
	wg.Wait()
}

// genericPlans answers the EXPLAIN of each statement (name to SQL, all
// taking types) under the generic plan PostgreSQL makes for it on s's
// tables as they are now: the plan a prepared statement settles on.
func genericPlans(t *testing.T, s *storage.Store, types []string, stmts map[string]string) map[string]string {
	t.Helper()
	ctx := context.Background()
	conn, err := s.Pool().Acquire(ctx)
	require.NoError(t, err)
	defer conn.Release()
	_, err = conn.Exec(ctx, `SET plan_cache_mode = force_generic_plan`)
	require.NoError(t, err)
	args := make([]string, len(types))
	for i, typ := range types {
		args[i] = "NULL::" + typ
	}
	plans := map[string]string{}
	for name, sql := range stmts {
		stmt := "plan_" + strings.ReplaceAll(name, " ", "_")
		_, err := conn.Exec(ctx, fmt.Sprintf("PREPARE %s (%s) AS %s", stmt, strings.Join(types, ", "), sql))
		require.NoError(t, err, name)
		rows, err := conn.Query(ctx, fmt.Sprintf("EXPLAIN EXECUTE %s(%s)", stmt, strings.Join(args, ", ")), pgx.QueryExecModeSimpleProtocol)
		require.NoError(t, err, name)
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err, name)
		plans[name] = strings.Join(lines, "\n")
	}
	return plans
}

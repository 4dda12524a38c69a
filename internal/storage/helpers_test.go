package storage_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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

package storage_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/contact"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/internal/storage/storagetest"
)

func TestUpsertContactCreateAndUpdate(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()

	c, created, err := s.UpsertContact(ctx, storage.ContactInput{
		Email:      "alice@example.com",
		TimeZone:   "Europe/Paris",
		Attributes: map[string]any{"first_name": "Alice", "plan": "free", "score": 3},
	})
	require.NoError(t, err)
	require.True(t, created)
	require.Regexp(t, `^c_[0-9a-f]{32}$`, c.ID)
	require.Equal(t, "alice@example.com", c.Email)
	require.Empty(t, c.ExternalID)
	require.Empty(t, c.Phone)
	require.Equal(t, "Europe/Paris", c.TimeZone)
	require.Equal(t, map[string]any{"first_name": "Alice", "plan": "free", "score": float64(3)}, c.Attributes)

	// Identified by email: adds the other identifiers, merges attributes, a
	// null removes a key, an empty time zone keeps the old one.
	u, created, err := s.UpsertContact(ctx, storage.ContactInput{
		ExternalID: "user-1",
		Email:      "alice@example.com",
		Phone:      "+33612345678",
		Attributes: map[string]any{"plan": "pro", "score": nil, "tags": []any{"vip"}},
	})
	require.NoError(t, err)
	require.False(t, created)
	require.Equal(t, c.ID, u.ID)
	require.Equal(t, "user-1", u.ExternalID)
	require.Equal(t, "+33612345678", u.Phone)
	require.Equal(t, "Europe/Paris", u.TimeZone)
	require.Equal(t, map[string]any{"first_name": "Alice", "plan": "pro", "tags": []any{"vip"}}, u.Attributes)
	require.Equal(t, c.CreatedAt, u.CreatedAt)
	require.False(t, u.UpdatedAt.Before(c.UpdatedAt))

	// Identified by id alone, changing the email.
	u2, created, err := s.UpsertContact(ctx, storage.ContactInput{ID: c.ID, Email: "alice@new.example.com"})
	require.NoError(t, err)
	require.False(t, created)
	require.Equal(t, "alice@new.example.com", u2.Email)

	for name, get := range map[string]func() (storage.Contact, error){
		"id":          func() (storage.Contact, error) { return s.Contact(ctx, c.ID) },
		"external_id": func() (storage.Contact, error) { return s.ContactByExternalID(ctx, "user-1") },
		"email":       func() (storage.Contact, error) { return s.ContactByEmail(ctx, "alice@new.example.com") },
		"phone":       func() (storage.Contact, error) { return s.ContactByPhone(ctx, "+33612345678") },
	} {
		got, err := get()
		require.NoError(t, err, name)
		require.Equal(t, u2, got, name)
	}
	_, err = s.ContactByEmail(ctx, "alice@example.com")
	require.ErrorIs(t, err, storage.ErrNotFound)
	_, err = s.Contact(ctx, "c_nope")
	require.ErrorIs(t, err, storage.ErrNotFound)
	_, err = s.ContactByPhone(ctx, "")
	require.ErrorIs(t, err, storage.ErrNotFound)
}

func TestUpsertContactErrors(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()

	alice, _, err := s.UpsertContact(ctx, storage.ContactInput{ExternalID: "u-alice", Email: "alice@example.com"})
	require.NoError(t, err)
	bob, _, err := s.UpsertContact(ctx, storage.ContactInput{ExternalID: "u-bob", Phone: "+14155550100"})
	require.NoError(t, err)

	_, _, err = s.UpsertContact(ctx, storage.ContactInput{})
	require.Error(t, err)

	// Alice's external id with Bob's phone.
	_, _, err = s.UpsertContact(ctx, storage.ContactInput{ExternalID: "u-alice", Phone: "+14155550100", Attributes: map[string]any{"x": 1}})
	require.ErrorIs(t, err, storage.ErrIdentityConflict)
	require.Contains(t, err.Error(), "external_id match contact "+alice.ID)
	require.Contains(t, err.Error(), "phone match contact "+bob.ID)
	require.NotContains(t, err.Error(), "+14155550100", "identifier values are PII and stay out of errors")

	// Bob's id with Alice's email.
	_, _, err = s.UpsertContact(ctx, storage.ContactInput{ID: bob.ID, Email: "alice@example.com"})
	require.ErrorIs(t, err, storage.ErrIdentityConflict)

	// An id that does not exist, even with identifiers that do.
	_, _, err = s.UpsertContact(ctx, storage.ContactInput{ID: "c_missing", Email: "alice@example.com"})
	require.ErrorIs(t, err, storage.ErrNotFound)

	// Nothing was changed by the failures.
	got, err := s.Contact(ctx, alice.ID)
	require.NoError(t, err)
	require.Equal(t, alice, got)
}

func TestUpsertContactConcurrentSameEmail(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()

	const n = 8
	var createdCount atomic.Int32
	ids := make([]string, n)
	errs := make([]error, n)
	concurrently(n, func(i int) {
		c, created, err := s.UpsertContact(ctx, storage.ContactInput{
			Email:      "race@example.com",
			Attributes: map[string]any{fmt.Sprintf("k%d", i): i},
		})
		errs[i] = err
		ids[i] = c.ID
		if created {
			createdCount.Add(1)
		}
	})
	for i := range n {
		require.NoError(t, errs[i])
		require.Equal(t, ids[0], ids[i])
	}
	require.EqualValues(t, 1, createdCount.Load())

	c, err := s.ContactByEmail(ctx, "race@example.com")
	require.NoError(t, err)
	require.Len(t, c.Attributes, n, "every identify's attributes were merged into the one contact")
	var count int
	require.NoError(t, s.Pool().QueryRow(ctx, `SELECT count(*) FROM contacts`).Scan(&count))
	require.Equal(t, 1, count)
}

func TestUpsertContactCountry(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()

	c, created, err := s.UpsertContact(ctx, storage.ContactInput{Email: "fr@example.com", Country: "FR"})
	require.NoError(t, err)
	require.True(t, created)
	require.Equal(t, "FR", c.Country)

	// An empty country keeps the known one; a new one replaces it.
	u, _, err := s.UpsertContact(ctx, storage.ContactInput{ID: c.ID, TimeZone: "Europe/Paris"})
	require.NoError(t, err)
	require.Equal(t, "FR", u.Country)
	u, _, err = s.UpsertContact(ctx, storage.ContactInput{ID: c.ID, Country: "BE"})
	require.NoError(t, err)
	require.Equal(t, "BE", u.Country)
	got, err := s.Contact(ctx, c.ID)
	require.NoError(t, err)
	require.Equal(t, "BE", got.Country)

	// Unknown stays empty.
	n, _, err := s.UpsertContact(ctx, storage.ContactInput{Email: "nowhere@example.com"})
	require.NoError(t, err)
	require.Empty(t, n.Country)

	// The schema refuses anything but two upper-case letters, and the
	// contact is left as it was.
	_, _, err = s.UpsertContact(ctx, storage.ContactInput{ID: c.ID, Country: "fr"})
	require.Error(t, err)
	got, err = s.Contact(ctx, c.ID)
	require.NoError(t, err)
	require.Equal(t, "BE", got.Country)
}

func TestUpsertContactAttributeLimitsAfterMerge(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()

	half := func(prefix string, n int) map[string]any {
		m := map[string]any{}
		for i := range n {
			m[fmt.Sprintf("%s%03d", prefix, i)] = i
		}
		return m
	}
	c, _, err := s.UpsertContact(ctx, storage.ContactInput{ExternalID: "many", Attributes: half("a", contact.MaxAttributes/2)})
	require.NoError(t, err)

	// Each request is within the limit; together they are not.
	_, _, err = s.UpsertContact(ctx, storage.ContactInput{ExternalID: "many", Email: "many@example.com", Attributes: half("b", contact.MaxAttributes/2+1)})
	var ce *contact.Error
	require.ErrorAs(t, err, &ce)
	require.Equal(t, "attributes", ce.Field)
	require.Contains(t, ce.Reason, fmt.Sprintf("would have %d attributes", contact.MaxAttributes+1))

	got, err := s.Contact(ctx, c.ID)
	require.NoError(t, err)
	require.Len(t, got.Attributes, contact.MaxAttributes/2, "the refused merge changed nothing")
	require.Empty(t, got.Email, "nor the identifiers that came with it")

	// Removing some makes room: the count is taken after the merge.
	drop := half("b", contact.MaxAttributes/2+1)
	drop["a000"] = nil
	u, _, err := s.UpsertContact(ctx, storage.ContactInput{ExternalID: "many", Attributes: drop})
	require.NoError(t, err)
	require.Len(t, u.Attributes, contact.MaxAttributes)

	// Size: 17 values of 4000 bytes are over 64 KiB together.
	big := map[string]any{}
	for i := range 17 {
		big[fmt.Sprintf("big%02d", i)] = strings.Repeat("x", 4000)
	}
	_, _, err = s.UpsertContact(ctx, storage.ContactInput{ExternalID: "big", Attributes: big})
	require.ErrorAs(t, err, &ce)
	require.Contains(t, ce.Reason, fmt.Sprintf("at most %d", contact.MaxAttributesBytes))
	_, err = s.ContactByExternalID(ctx, "big")
	require.ErrorIs(t, err, storage.ErrNotFound, "the refused insert was rolled back")
}

package storage

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/tutti-dev/tutti/internal/contact"
)

const contactColumns = `id, external_id, email, phone, time_zone, country, attributes, created_at, updated_at, merged_into, merged_at`

func scanContact(r rowScanner) (Contact, error) {
	var c Contact
	var ext, email, phone, tz, country, merged *string
	if err := r.Scan(&c.ID, &ext, &email, &phone, &tz, &country, &c.Attributes, &c.CreatedAt, &c.UpdatedAt, &merged, &c.MergedAt); err != nil {
		return Contact{}, err
	}
	c.ExternalID, c.Email, c.Phone, c.TimeZone, c.Country = deref(ext), deref(email), deref(phone), deref(tz), deref(country)
	c.MergedInto = deref(merged)
	c.Attributes = nonNilMap(c.Attributes)
	c.CreatedAt, c.UpdatedAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC()
	if c.MergedAt != nil {
		at := c.MergedAt.UTC()
		c.MergedAt = &at
	}
	return c, nil
}

// identifierConstraints maps the unique constraints on contacts to the
// identifier they protect, for conflict messages.
var identifierConstraints = map[string]string{
	"contacts_pkey":            "id",
	"contacts_external_id_key": "external_id",
	"contacts_email_key":       "email",
	"contacts_phone_key":       "phone",
}

// upsertAttempts bounds the retries of UpsertContact after a unique
// violation. A violation means a concurrent transaction committed a row
// holding one of our identifiers after our lookup; the next lookup sees it, so
// the second attempt settles it and the third is only a safety margin.
const upsertAttempts = 3

// UpsertContact identifies a contact and applies in to it. Inputs must
// already be normalised (see package contact).
//
// The contact is found by any identifier given: in.ID, external_id, email or
// phone. If they point at two different contacts it fails with
// ErrIdentityConflict, naming which identifiers belong to which contact; if
// in.ID is set but unknown it fails with ErrNotFound. With no match a contact
// is created (created is true), which needs at least one of external_id,
// email or phone. Otherwise the match is updated: non-empty identifiers, time
// zone and country are set, attributes are merged key by key (a nil value
// removes the key), and updated_at is bumped. A merge that would take the
// contact over contact.MaxAttributes or contact.MaxAttributesBytes changes
// nothing and fails with that *contact.Error.
//
// Concurrent calls with the same new identifier end in one contact: the loser
// of the insert race retries its lookup and updates the winner's row.
//
// An identifier that belonged to an erased contact who had opted out brings
// the opt-out back with it, in the same transaction: the contact gets the
// revoked consent of the erasure proof (source "erasure-proof:<id>"), see
// applyErasureProofs.
func (s *Store) UpsertContact(ctx context.Context, in ContactInput) (Contact, bool, error) {
	if in.ID == "" && in.ExternalID == "" && in.Email == "" && in.Phone == "" {
		return Contact{}, false, errors.New("upsert contact: need at least one of id, external_id, email or phone")
	}
	set, del := splitAttributes(in.Attributes)
	for attempt := 1; ; attempt++ {
		c, created, err := s.upsertContactOnce(ctx, in, set, del)
		if errors.Is(err, errMergedMeanwhile) && attempt < upsertAttempts {
			continue
		}
		constraint, unique := uniqueViolation(err)
		if !unique {
			return c, created, err
		}
		if attempt == upsertAttempts {
			field := identifierConstraints[constraint]
			if field == "" {
				field = constraint
			}
			return Contact{}, false, fmt.Errorf("upsert contact: %s already belongs to another contact: %w", field, ErrIdentityConflict)
		}
	}
}

func (s *Store) upsertContactOnce(ctx context.Context, in ContactInput, set map[string]any, del []string) (Contact, bool, error) {
	var (
		out     Contact
		created bool
	)
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		// Lock every contact any identifier points at, so a concurrent
		// identify of the same person waits for us instead of diverging.
		// An identifier (or id) of a merged contact points at the contact
		// it was merged into.
		matches, err := queryAll(ctx, tx, "upsert contact: looking up identifiers", scanContact, `
			SELECT `+contactColumns+` FROM contacts
			WHERE id IN (SELECT COALESCE(merged_into, id) FROM contacts
				WHERE id = NULLIF($1, '') OR external_id = NULLIF($2, '')
				   OR email = NULLIF($3, '') OR phone = NULLIF($4, ''))
			ORDER BY id
			FOR UPDATE`,
			in.ID, in.ExternalID, in.Email, in.Phone)
		if err != nil {
			return err
		}
		for _, m := range matches {
			if m.MergedInto != "" {
				// Merged after the lookup read it, before the lock: look again.
				return errMergedMeanwhile
			}
		}
		if in, err = resolveAliases(ctx, tx, in); err != nil {
			return err
		}

		if in.ID != "" && !containsID(matches, in.ID) {
			return fmt.Errorf("upsert contact: contact %s: %w", in.ID, ErrNotFound)
		}
		switch len(matches) {
		case 0:
			row := tx.QueryRow(ctx, `
				INSERT INTO contacts (id, external_id, email, phone, time_zone, country, attributes)
				VALUES ($1, NULLIF($2, ''), NULLIF($3, ''), NULLIF($4, ''), NULLIF($5, ''), NULLIF($7, ''), $6)
				RETURNING `+contactColumns,
				newID("c_"), in.ExternalID, in.Email, in.Phone, in.TimeZone, set, in.Country)
			if out, err = scanContact(row); err != nil {
				return fmt.Errorf("upsert contact: inserting: %w", err)
			}
			if aerr := contact.CheckAttributeTotals(out.Attributes); aerr != nil {
				return aerr
			}
			created = true
			if err := s.markFitChanged(ctx, tx, out.ID); err != nil {
				return err
			}
			// A person erased earlier may be coming back: their opt-outs apply again.
			return s.applyErasureProofs(ctx, tx, out, identifiers(out), true)
		case 1:
			row := tx.QueryRow(ctx, `
				UPDATE contacts SET
					external_id = COALESCE(NULLIF($2, ''), external_id),
					email       = COALESCE(NULLIF($3, ''), email),
					phone       = COALESCE(NULLIF($4, ''), phone),
					time_zone   = COALESCE(NULLIF($5, ''), time_zone),
					country     = COALESCE(NULLIF($8, ''), country),
					attributes  = (attributes || $6::jsonb) - $7::text[],
					updated_at  = now()
				WHERE id = $1
				RETURNING `+contactColumns,
				matches[0].ID, in.ExternalID, in.Email, in.Phone, in.TimeZone, set, del, in.Country)
			if out, err = scanContact(row); err != nil {
				return fmt.Errorf("upsert contact %s: updating: %w", matches[0].ID, err)
			}
			// Each request is within the limits, but many of them may add
			// up: the merged result is checked under the row lock, and a
			// contact over them rolls the update back.
			if aerr := contact.CheckAttributeTotals(out.Attributes); aerr != nil {
				return aerr
			}
			if err := s.markFitChanged(ctx, tx, out.ID); err != nil {
				return err
			}
			return s.applyErasureProofs(ctx, tx, out, freshIdentifiers(matches[0], out), false)
		default:
			return fmt.Errorf("upsert contact: %s: %w", describeClash(in, matches), ErrIdentityConflict)
		}
	})
	if err != nil {
		return Contact{}, false, err
	}
	return out, created, nil
}

// errMergedMeanwhile: a contact UpsertContact locked had been merged into
// another after its lookup; the next attempt finds the survivor.
var errMergedMeanwhile = errors.New("upsert contact: a matching contact was merged meanwhile")

// resolveAliases returns in with the identifiers that are aliases (kept by
// a contact merged into another, see MergeContacts) cleared, and an id of
// a merged contact replaced by its survivor's: the lookup has already
// found the survivor by them, and they are the survivor's already, held
// on the merged contact's row.
func resolveAliases(ctx context.Context, tx pgx.Tx, in ContactInput) (ContactInput, error) {
	merged, err := queryAll(ctx, tx, "upsert contact: looking up aliases", scanContact, `
		SELECT `+contactColumns+` FROM contacts
		WHERE merged_into IS NOT NULL
		  AND (id = NULLIF($1, '') OR external_id = NULLIF($2, '') OR email = NULLIF($3, '') OR phone = NULLIF($4, ''))`,
		in.ID, in.ExternalID, in.Email, in.Phone)
	if err != nil {
		return in, err
	}
	for _, m := range merged {
		if in.ID == m.ID {
			in.ID = m.MergedInto
		}
		if in.ExternalID == m.ExternalID {
			in.ExternalID = ""
		}
		if in.Email == m.Email {
			in.Email = ""
		}
		if in.Phone == m.Phone {
			in.Phone = ""
		}
	}
	return in, nil
}

// splitAttributes separates the keys to set from the keys to delete (those
// with a nil value, i.e. JSON null). Both results are non-nil: a NULL jsonb or
// text[] parameter would turn the merge expression into NULL.
func splitAttributes(attrs map[string]any) (set map[string]any, del []string) {
	set, del = map[string]any{}, []string{}
	for k, v := range attrs {
		if v == nil {
			del = append(del, k)
		} else {
			set[k] = v
		}
	}
	return set, del
}

func containsID(cs []Contact, id string) bool {
	for _, c := range cs {
		if c.ID == id {
			return true
		}
	}
	return false
}

// describeClash says which given identifiers belong to which contact, by
// field name and contact id only: the message may be logged, and identifier
// values are PII.
func describeClash(in ContactInput, matches []Contact) string {
	parts := make([]string, 0, len(matches))
	for _, c := range matches {
		var fields []string
		if in.ID != "" && c.ID == in.ID {
			fields = append(fields, "id")
		}
		if in.ExternalID != "" && c.ExternalID == in.ExternalID {
			fields = append(fields, "external_id")
		}
		if in.Email != "" && c.Email == in.Email {
			fields = append(fields, "email")
		}
		if in.Phone != "" && c.Phone == in.Phone {
			fields = append(fields, "phone")
		}
		parts = append(parts, strings.Join(fields, " and ")+" match contact "+c.ID)
	}
	return strings.Join(parts, ", but ")
}

// Contact returns the contact with this id, or ErrNotFound.
func (s *Store) Contact(ctx context.Context, id string) (Contact, error) {
	return queryOne(ctx, s.pool, "contact "+id, scanContact, `SELECT `+contactColumns+` FROM contacts WHERE id = $1`, id)
}

// ContactByExternalID returns the contact with this external id (the
// customer's own user id), or ErrNotFound.
func (s *Store) ContactByExternalID(ctx context.Context, externalID string) (Contact, error) {
	return s.contactBy(ctx, "external_id", externalID)
}

// ContactByEmail returns the contact with this normalised email, or ErrNotFound.
func (s *Store) ContactByEmail(ctx context.Context, email string) (Contact, error) {
	return s.contactBy(ctx, "email", email)
}

// ContactByPhone returns the contact with this E.164 phone, or ErrNotFound.
func (s *Store) ContactByPhone(ctx context.Context, phone string) (Contact, error) {
	return s.contactBy(ctx, "phone", phone)
}

// contactBy looks a contact up by one unique identifier column. column is
// always one of the constants above, never input. An identifier a merged
// contact keeps as an alias finds the contact it was merged into.
func (s *Store) contactBy(ctx context.Context, column, value string) (Contact, error) {
	if value == "" {
		return Contact{}, fmt.Errorf("contact by %s: empty value: %w", column, ErrNotFound)
	}
	return queryOne(ctx, s.pool, "contact by "+column, scanContact, `
		SELECT `+contactColumns+` FROM contacts
		WHERE id = (SELECT COALESCE(merged_into, id) FROM contacts WHERE `+column+` = $1)`, value)
}

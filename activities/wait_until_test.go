package activities_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/tutti-dev/tutti/activities"
	"github.com/tutti-dev/tutti/internal/delivery"
	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/policy"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/internal/storage/storagetest"
)

// NextLocalTime reads the contact's zone from PostgreSQL with the quiet
// hours' rules (own zone, else the phone's, else the workspace default)
// and answers with an instant only: neither the zone nor the phone number
// is in what goes to workflow history.
func TestNextLocalTime_ContactZone(t *testing.T) {
	t.Parallel()
	store := storagetest.New(t)
	ctx := context.Background()
	upsert := func(in storage.ContactInput) string {
		c, _, err := store.UpsertContact(ctx, in)
		require.NoError(t, err)
		return c.ID
	}
	paris := upsert(storage.ContactInput{Email: "p@example.com", TimeZone: "Europe/Paris"})
	// A French mobile number and no zone of their own: Europe/Paris from the number.
	phoneFR := upsert(storage.ContactInput{Phone: "+33612345678"})
	// Neither: the workspace's default zone.
	nowhere := upsert(storage.ContactInput{Email: "n@example.com"})

	settings := policy.DefaultSettings()
	settings.DefaultTimeZone = "America/New_York"
	acts := &activities.Activities{Store: store, Delivery: &delivery.Service{Store: store, Policy: settings}}
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(acts)

	weekdays := journey.WaitUntil{Time: "09:30", Days: []journey.Weekday{"mon", "tue", "wed", "thu", "fri"}}
	daily := journey.WaitUntil{Time: "09:30"}
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		require.NoError(t, err)
		return v
	}
	tests := []struct {
		name    string
		contact string
		wait    journey.WaitUntil
		after   string
		want    string
	}{
		{"own zone, later today", paris, daily, "2026-06-03T05:00:00Z", "2026-06-03T07:30:00Z"},
		// Friday 10:00 in Paris: Monday 09:30.
		{"own zone, weekdays", paris, weekdays, "2026-06-05T08:00:00Z", "2026-06-08T07:30:00Z"},
		// Exactly 09:30 in Paris: the next one, so a loop through the step waits.
		{"exactly at the time", paris, daily, "2026-06-03T07:30:00Z", "2026-06-04T07:30:00Z"},
		{"phone's zone", phoneFR, daily, "2026-06-03T05:00:00Z", "2026-06-03T07:30:00Z"},
		// 05:00 UTC is 01:00 in New York (EDT): 09:30 there is 13:30 UTC.
		{"default zone", nowhere, daily, "2026-06-03T05:00:00Z", "2026-06-03T13:30:00Z"},
		{"contact gone: default zone", "c_erased", daily, "2026-06-03T05:00:00Z", "2026-06-03T13:30:00Z"},
	}
	for _, tt := range tests {
		v, err := env.ExecuteActivity(acts.NextLocalTime, activities.NextLocalTimeInput{
			ContactID: tt.contact, WaitUntil: tt.wait, After: at(tt.after)})
		require.NoError(t, err, tt.name)
		var res activities.NextLocalTimeResult
		require.NoError(t, v.Get(&res), tt.name)
		require.Equal(t, at(tt.want), res.At, tt.name)

		raw, err := json.Marshal(res)
		require.NoError(t, err)
		for _, secret := range []string{"Europe", "America", "+33", "phone", "contact"} {
			require.NotContains(t, string(raw), secret, tt.name)
		}
	}
}

package activities_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/tutti-dev/tutti/activities"
	"github.com/tutti-dev/tutti/internal/audience"
	"github.com/tutti-dev/tutti/internal/audience/adfake"
	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/segment"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/internal/storage/storagetest"
)

// An audience step queues adds only for contacts with ads consent and no
// suppression; a sync pass sends them to the platform (Meta's users
// endpoint on the fake, which checks the wire format) hashed, records each
// member in the ledger (an address that cannot be normalised is rejected
// for that member alone), and a later pass removes whoever lost their ads
// consent or was suppressed since, however that was recorded.
func TestAudienceStepAndSync(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := storagetest.New(t)
	fake := adfake.New(t)
	_, _, err := store.DefineAudience(ctx, storage.Audience{ID: "hot_meta", Name: "Hot leads", Destination: audience.Meta, ExternalID: "23850000000000001"})
	require.NoError(t, err)

	contact := func(email string, ads bool) storage.Contact {
		t.Helper()
		c, _, err := store.UpsertContact(ctx, storage.ContactInput{Email: email})
		require.NoError(t, err)
		if ads {
			_, _, err = store.RecordConsent(ctx, c.ID, journey.ChannelAds, model.ConsentGranted, "form", time.Time{})
			require.NoError(t, err)
		}
		return c
	}
	ada, bob, noConsent := contact("ada@example.com", true), contact("bob@example.com", true), contact("carl@example.com", false)
	// An address the contact row holds but Meta's rules cannot normalise.
	odd := contact("dora@example.com", true)
	_, err = store.Pool().Exec(ctx, `UPDATE contacts SET email = 'not an email' WHERE id = $1`, odd.ID)
	require.NoError(t, err)

	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	acts := &activities.Activities{Store: store, Audiences: map[audience.Destination]audience.Platform{
		audience.Meta: &audience.MetaClient{BaseURL: fake.URL, Version: "v23.0", AccessToken: adfake.MetaToken}}}
	env.RegisterActivity(acts)
	step := func(c storage.Contact, action audience.Action) string {
		t.Helper()
		v, err := env.ExecuteActivity(acts.ChangeAudience, activities.ChangeAudienceInput{ContactID: c.ID, AudienceID: "hot_meta",
			Action: action, JourneyID: "nurture", StepID: "ads"})
		require.NoError(t, err)
		var res activities.ChangeAudienceResult
		require.NoError(t, v.Get(&res))
		return res.Outcome
	}
	sync := func() activities.SyncAudienceResult {
		t.Helper()
		v, err := env.ExecuteActivity(acts.SyncAudience, activities.SyncAudienceInput{AudienceID: "hot_meta"})
		require.NoError(t, err)
		var res activities.SyncAudienceResult
		require.NoError(t, v.Get(&res))
		return res
	}

	require.Equal(t, "queued", step(ada, audience.Add))
	require.Equal(t, "queued", step(bob, audience.Add))
	require.Equal(t, "already", step(bob, audience.Add))
	require.Equal(t, "skipped:no_ads_consent", step(noConsent, audience.Add))
	require.Equal(t, "queued", step(odd, audience.Add))

	res := sync()
	require.Equal(t, activities.SyncAudienceResult{Added: 2, Rejected: 1, Batches: 1}, res)
	hash := func(email string) string { return audience.HashOf(email).String() }
	require.Equal(t, sortedOf(hash("ada@example.com"), hash("bob@example.com")), fake.Members("meta", "23850000000000001"))
	for _, r := range fake.Malformed() {
		t.Errorf("the fake refused a request as malformed: %+v", r)
	}
	_, ledger, err := store.ContactAudiences(ctx, odd.ID, 10)
	require.NoError(t, err)
	require.Len(t, ledger, 1)
	require.Contains(t, ledger[0].Result, "rejected:email")
	_, ledger, err = store.ContactAudiences(ctx, noConsent.ID, 10)
	require.NoError(t, err)
	require.Equal(t, "skipped:no_ads_consent", ledger[0].Result)

	// A pass with nothing pending sends nothing.
	require.Equal(t, activities.SyncAudienceResult{}, sync())

	// Bob revokes ads consent (any path: here the consent API's); Ada is
	// suppressed as in an opportunity. The next pass removes both.
	_, _, err = store.RecordConsentChange(ctx, storage.ConsentChange{ContactID: bob.ID, Channel: journey.ChannelAds, Status: model.ConsentRevoked, Source: "api"})
	require.NoError(t, err)
	_, _, err = store.AddSuppression(ctx, storage.Suppression{ContactID: ada.ID, Reason: model.SuppressInOpportunity, Source: "crm"})
	require.NoError(t, err)
	res = sync()
	require.Equal(t, 2, res.Revoked)
	require.Equal(t, 2, res.Removed)
	require.Empty(t, fake.Members("meta", "23850000000000001"))
	rows, ledger, err := store.ContactAudiences(ctx, ada.ID, 10)
	require.NoError(t, err)
	require.Equal(t, audience.Remove, rows[0].Synced)
	require.Equal(t, "suppressed:in_opportunity", rows[0].DesiredBy)
	require.Equal(t, audience.Remove, ledger[0].Action)
	require.Equal(t, "applied", ledger[0].Result)
	counts, err := store.AudienceCounts(ctx, "hot_meta")
	require.NoError(t, err)
	require.Equal(t, storage.AudienceCounts{}, counts)

	// Meta throttles: the pass fails retryably, with Meta's Retry-After,
	// and the member stays pending for the next attempt.
	carl := contact("carl.b@example.com", true)
	require.Equal(t, "queued", step(carl, audience.Add))
	fake.Fail(adfake.Fault{Status: 429, RetryAfter: "7"})
	_, err = env.ExecuteActivity(acts.SyncAudience, activities.SyncAudienceInput{AudienceID: "hot_meta"})
	require.Error(t, err)
	require.Contains(t, err.Error(), "429")
	counts, err = store.AudienceCounts(ctx, "hot_meta")
	require.NoError(t, err)
	require.Equal(t, 1, counts.PendingAdd)
	require.Equal(t, activities.SyncAudienceResult{Added: 1, Batches: 1}, sync())

	// Carl asks to be erased: his row goes with him, but the erasure keeps
	// the hashes Meta matches on until the next pass has removed him, and
	// then nothing of him is left.
	_, _, err = store.EraseContact(ctx, carl.ID)
	require.NoError(t, err)
	hits, err := storagetest.FindText(ctx, store.Pool(), "carl.b@example.com")
	require.NoError(t, err)
	require.Empty(t, hits, storagetest.DescribeHits(hits))
	require.Equal(t, []string{hash("carl.b@example.com")}, fake.Members("meta", "23850000000000001"))
	res = sync()
	require.Equal(t, 1, res.Erased)
	require.Empty(t, fake.Members("meta", "23850000000000001"))
	var left int
	require.NoError(t, store.Pool().QueryRow(ctx, `SELECT count(*) FROM audience_erasures`).Scan(&left))
	require.Zero(t, left)
}

func sortedOf(s ...string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// An audience that follows a segment adds its members who may be added
// (ads consent, no suppression), and removes those who leave it.
func TestAudienceFollowsSegment(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := storagetest.New(t)
	fake := adfake.New(t)
	seg, err := segment.Compile(segment.Definition{ID: "pros", Name: "Pros", When: `contact.?plan.orValue("") == "pro"`})
	require.NoError(t, err)
	_, _, err = store.DefineSegment(ctx, seg)
	require.NoError(t, err)
	_, _, err = store.DefineAudience(ctx, storage.Audience{ID: "pros_li", Name: "Pros", Destination: audience.LinkedIn,
		ExternalID: "urn:li:dmpSegment:1", SegmentID: "pros"})
	require.NoError(t, err)
	_, _, err = store.DefineAudience(ctx, storage.Audience{ID: "nope", Name: "X", Destination: audience.Meta, ExternalID: "1", SegmentID: "missing"})
	require.ErrorIs(t, err, storage.ErrNotFound)

	pro := func(email string, ads bool) storage.Contact {
		c, _, err := store.UpsertContact(ctx, storage.ContactInput{Email: email, Attributes: map[string]any{"plan": "pro"}})
		require.NoError(t, err)
		if ads {
			_, _, err = store.RecordConsent(ctx, c.ID, journey.ChannelAds, model.ConsentGranted, "form", time.Time{})
			require.NoError(t, err)
		}
		return c
	}
	ann, ben := pro("ann@example.com", true), pro("ben@example.com", false)
	for {
		ch, err := store.EvaluateQueuedSegments(ctx, 100)
		require.NoError(t, err)
		if ch.Evaluated == 0 {
			break
		}
	}
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	acts := &activities.Activities{Store: store, Audiences: map[audience.Destination]audience.Platform{
		audience.LinkedIn: &audience.LinkedInClient{BaseURL: fake.URL, Version: "202510", AccessToken: adfake.LinkedInToken}}}
	env.RegisterActivity(acts)
	sync := func() activities.SyncAudienceResult {
		t.Helper()
		v, err := env.ExecuteActivity(acts.SyncAudience, activities.SyncAudienceInput{AudienceID: "pros_li"})
		require.NoError(t, err)
		var res activities.SyncAudienceResult
		require.NoError(t, v.Get(&res))
		return res
	}
	res := sync()
	require.Equal(t, 1, res.Followed, "Ben has no ads consent")
	require.Equal(t, 1, res.Added)
	require.Equal(t, []string{audience.HashOf("ann@example.com").String()}, fake.Members("linkedin", "urn:li:dmpSegment:1"))

	// Ben consents; Ann downgrades and leaves the segment.
	_, _, err = store.RecordConsent(ctx, ben.ID, journey.ChannelAds, model.ConsentGranted, "form", time.Time{})
	require.NoError(t, err)
	_, _, err = store.UpsertContact(ctx, storage.ContactInput{ID: ann.ID, Attributes: map[string]any{"plan": "free"}})
	require.NoError(t, err)
	for {
		ch, err := store.EvaluateQueuedSegments(ctx, 100)
		require.NoError(t, err)
		if ch.Evaluated == 0 {
			break
		}
	}
	res = sync()
	require.Equal(t, 1, res.Followed)
	require.Equal(t, 1, res.Left)
	require.Equal(t, []string{audience.HashOf("ben@example.com").String()}, fake.Members("linkedin", "urn:li:dmpSegment:1"))
	rows, _, err := store.ContactAudiences(ctx, ann.ID, 10)
	require.NoError(t, err)
	require.Equal(t, "left_segment:pros", rows[0].DesiredBy)
}

// A full sync repairs drift on the platform's side: Meta's list is
// replaced whole by the members Tutti holds (someone added there outside
// Tutti leaves, someone removed there comes back); LinkedIn, which has no
// replace, gets every member sent again.
func TestAudienceFullSync(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := storagetest.New(t)
	fake := adfake.New(t)
	meta := &audience.MetaClient{BaseURL: fake.URL, Version: "v23.0", AccessToken: adfake.MetaToken}
	linkedIn := &audience.LinkedInClient{BaseURL: fake.URL, Version: "202510", AccessToken: adfake.LinkedInToken}
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	acts := &activities.Activities{Store: store, Audiences: map[audience.Destination]audience.Platform{audience.Meta: meta, audience.LinkedIn: linkedIn}}
	env.RegisterActivity(acts)
	for _, a := range []storage.Audience{{ID: "m", Name: "M", Destination: audience.Meta, ExternalID: "111"},
		{ID: "l", Name: "L", Destination: audience.LinkedIn, ExternalID: "urn:li:dmpSegment:2"}} {
		_, _, err := store.DefineAudience(ctx, a)
		require.NoError(t, err)
	}
	var hashes []string
	for _, email := range []string{"one@example.com", "two@example.com"} {
		c, _, err := store.UpsertContact(ctx, storage.ContactInput{Email: email})
		require.NoError(t, err)
		_, _, err = store.RecordConsent(ctx, c.ID, journey.ChannelAds, model.ConsentGranted, "form", time.Time{})
		require.NoError(t, err)
		for _, a := range []string{"m", "l"} {
			_, err = store.RequestAudienceChange(ctx, a, c.ID, audience.Add, "test")
			require.NoError(t, err)
		}
		hashes = append(hashes, audience.HashOf(email).String())
	}
	hashes = sortedOf(hashes...)
	run := func(id string, full bool) activities.SyncAudienceResult {
		t.Helper()
		v, err := env.ExecuteActivity(acts.SyncAudience, activities.SyncAudienceInput{AudienceID: id, Full: full, Session: 7})
		require.NoError(t, err)
		var res activities.SyncAudienceResult
		require.NoError(t, v.Get(&res))
		return res
	}
	run("m", false)
	run("l", false)
	require.Equal(t, hashes, fake.Members("meta", "111"))

	// Drift: someone added on Meta outside Tutti, a member removed there
	// and on LinkedIn.
	stranger := audience.Member{ContactID: "x", Email: audience.HashOf("stranger@example.com")}
	one := audience.Member{ContactID: "y", Email: audience.HashOf("one@example.com")}
	_, err := meta.Apply(ctx, "111", audience.Add, []audience.Member{stranger})
	require.NoError(t, err)
	_, err = meta.Apply(ctx, "111", audience.Remove, []audience.Member{one})
	require.NoError(t, err)
	_, err = linkedIn.Apply(ctx, "urn:li:dmpSegment:2", audience.Remove, []audience.Member{one})
	require.NoError(t, err)
	require.NotEqual(t, hashes, fake.Members("meta", "111"))

	require.Equal(t, 2, run("m", true).Resent)
	require.Equal(t, hashes, fake.Members("meta", "111"), "replaced whole")
	require.Equal(t, 2, run("l", true).Resent)
	require.Equal(t, hashes, fake.Members("linkedin", "urn:li:dmpSegment:2"), "sent again")
	for _, r := range fake.Malformed() {
		t.Errorf("the fake refused a request as malformed: %+v", r)
	}
}

package audience_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
	"google.golang.org/api/option"

	"github.com/tutti-dev/tutti/internal/audience"
	"github.com/tutti-dev/tutti/internal/audience/adfake"
)

type bundle struct {
	fake      *adfake.Server
	platforms map[audience.Destination]audience.Platform
}

func setup(t *testing.T) bundle {
	t.Helper()
	fake := adfake.New(t)
	google, err := audience.NewGoogleClient(context.Background(), adfake.GoogleAccount,
		option.WithEndpoint(fake.URL+"/"),
		option.WithTokenSource(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: adfake.GoogleToken})))
	require.NoError(t, err)
	return bundle{fake: fake, platforms: map[audience.Destination]audience.Platform{
		audience.Meta:     &audience.MetaClient{BaseURL: fake.URL, Version: "v25.0", AccessToken: adfake.MetaToken},
		audience.Google:   google,
		audience.LinkedIn: &audience.LinkedInClient{BaseURL: fake.URL, Version: "202510", AccessToken: adfake.LinkedInToken},
	}}
}

func members(d audience.Destination, n int) []audience.Member {
	ids := make([]audience.Identity, n)
	for i := range ids {
		ids[i] = audience.Identity{ContactID: fmt.Sprintf("c%d", i), Email: fmt.Sprintf("User%d@Example.com", i),
			Phone: fmt.Sprintf("+1415%07d", i)}
	}
	ms, rejected := audience.Prepare(d, ids, nil)
	if len(rejected) > 0 {
		panic(fmt.Sprint(rejected))
	}
	return ms
}

// Every client speaks its platform's documented wire format: the fake
// refuses anything else (and says why), so a round trip of adds and
// removes that leaves the right members proves the format.
func TestPlatforms_addAndRemove(t *testing.T) {
	t.Parallel()
	for _, d := range audience.Destinations {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			p := b.platforms[d]
			ms := members(d, 3)
			res, err := p.Apply(context.Background(), "aud-1", audience.Add, ms)
			require.NoError(t, err)
			require.Equal(t, 3, res.Received)
			require.Zero(t, res.Invalid)

			res, err = p.Apply(context.Background(), "aud-1", audience.Remove, ms[:1])
			require.NoError(t, err)
			require.Equal(t, 1, res.Received)
			require.Empty(t, b.fake.Malformed())

			var want []string
			for _, m := range ms[1:] {
				want = append(want, m.Email.String())
				if d != audience.LinkedIn {
					want = append(want, m.Phone.String())
				}
			}
			require.ElementsMatch(t, want, b.fake.Members(string(d), "aud-1"))
		})
	}
}

// A full batch is accepted and one more member is refused by the fake:
// the clients never send more than the platform takes because the sync
// cuts with Batches, and the fake really checks the ceiling.
func TestPlatforms_batchCeiling(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ms := members(audience.Google, adfake.MaxBatch+1)
	for _, d := range audience.Destinations {
		p := b.platforms[d]
		for _, batch := range audience.Batches(d, ms) {
			_, err := p.Apply(context.Background(), "big", audience.Add, batch)
			require.NoError(t, err, d)
		}
		require.Equal(t, map[audience.Destination]int{audience.Meta: 2 * len(ms), audience.Google: 2 * len(ms),
			audience.LinkedIn: len(ms)}[d], len(b.fake.Members(string(d), "big")), d)
		_, err := p.Apply(context.Background(), "big", audience.Add, ms)
		require.Error(t, err, "%s: a batch over the ceiling is refused", d)
		require.False(t, audience.IsRetryable(err), d)
	}
	require.Len(t, b.fake.Malformed(), 3)
}

func TestPlatforms_errorsAreClassified(t *testing.T) {
	t.Parallel()
	for _, d := range audience.Destinations {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			p := b.platforms[d]
			ms := members(d, 2)
			b.fake.Fail(
				adfake.Fault{Status: http.StatusServiceUnavailable},
				adfake.Fault{Status: http.StatusTooManyRequests, RetryAfter: "7"},
				adfake.Fault{Status: http.StatusForbidden},
			)
			_, err := p.Apply(context.Background(), "a", audience.Add, ms)
			require.True(t, audience.IsRetryable(err), "5xx: %v", err)

			_, err = p.Apply(context.Background(), "a", audience.Add, ms)
			var ae *audience.APIError
			require.ErrorAs(t, err, &ae)
			require.True(t, ae.Retryable(), "429")
			require.Equal(t, 7*time.Second, ae.RetryAfter)

			_, err = p.Apply(context.Background(), "a", audience.Add, ms)
			require.Error(t, err)
			require.False(t, audience.IsRetryable(err), "403 is permanent: %v", err)

			_, err = p.Apply(context.Background(), "a", audience.Add, ms)
			require.NoError(t, err, "after the faults")
		})
	}
}

// Meta throttles with an error code under a 400; it is retried like a 429.
func TestMeta_throttleCodesAreRetryable(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.fake.Fail(adfake.Fault{Status: http.StatusBadRequest,
		Body: `{"error":{"message":"User request limit reached","type":"OAuthException","code":17}}`})
	_, err := b.platforms[audience.Meta].Apply(context.Background(), "a", audience.Add, members(audience.Meta, 1))
	require.True(t, audience.IsRetryable(err), "%v", err)
}

// LinkedIn answers per element: a refused member is recorded for its
// contact, and the rest of the batch is applied.
func TestLinkedIn_perMemberRefusal(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ms := members(audience.LinkedIn, 3)
	b.fake.RefuseOnLinkedIn(ms[1].Email.String())
	res, err := b.platforms[audience.LinkedIn].Apply(context.Background(), "seg", audience.Add, ms)
	require.NoError(t, err)
	require.Equal(t, 2, res.Received)
	require.Equal(t, 1, res.Invalid)
	require.Contains(t, res.Refused, "c1")
	require.Len(t, b.fake.Members("linkedin", "seg"), 2)
}

// No answer at all is retryable: audience requests are idempotent.
func TestPlatforms_noAnswerIsRetryable(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.fake.Close()
	for _, d := range audience.Destinations {
		_, err := b.platforms[d].Apply(context.Background(), "a", audience.Add, members(d, 1))
		require.True(t, audience.IsRetryable(err), "%s: %v", d, err)
	}
}

package audience

import (
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestNormalize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		dest  Destination
		kind  Kind
		in    string
		want  string
		error error
	}{
		// The Data Manager API's "Format user data" examples.
		{"google gmail dots and plus", Google, Email, "cloudy.sanfrancisco+shopping@gmail.com", "cloudysanfrancisco@gmail.com", nil},
		{"google other domain keeps dots and plus", Google, Email, "user.name+NYC@Example.com", "user.name+nyc@example.com", nil},
		{"google googlemail", Google, Email, " A.B+x@GoogleMail.com ", "ab@googlemail.com", nil},
		{"google intermediate white space", Google, Email, "jo hn@example.com", "john@example.com", nil},
		{"google phone keeps the plus", Google, Phone, "+18005550100", "+18005550100", nil},
		{"google phone with punctuation", Google, Phone, "+1 (800) 555-0100", "+18005550100", nil},
		// Meta: digits with the country code, no symbols or leading zeros.
		{"meta phone", Meta, Phone, "+1 (650) 555-1212", "16505551212", nil},
		{"meta phone from 00 prefix", Meta, Phone, "0044 20 7946 0958", "442079460958", nil},
		{"meta email is trimmed and lowercased only", Meta, Email, " John.Doe+x@Gmail.com\t", "john.doe+x@gmail.com", nil},
		{"linkedin email", LinkedIn, Email, "Alice@Example.com", "alice@example.com", nil},
		{"linkedin phone", LinkedIn, Phone, "+16505551212", "", ErrNotSupplied},
		{"empty email", Meta, Email, "  ", "", ErrEmpty},
		{"no at", Google, Email, "alice.example.com", "", ErrNotAnEmail},
		{"nothing before at", Google, Email, "@example.com", "", ErrNotAnEmail},
		{"gmail local of dots", Google, Email, "..+x@gmail.com", "", ErrNotAnEmail},
		{"national number", Meta, Phone, "(650) 555-1212", "", ErrNotE164},
		{"too short", Google, Phone, "+1234", "", ErrNotE164},
		{"too long", Google, Phone, "+1234567890123456", "", ErrNotE164},
		{"letters only", Meta, Phone, "+call me", "", ErrNotE164},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Normalize(tt.dest, tt.kind, tt.in)
			require.ErrorIs(t, err, tt.error)
			require.Equal(t, tt.want, got)
		})
	}
}

// The hash is lowercase hex SHA-256 of the normalised bytes. The expected
// values were computed independently with Python's hashlib
// (hashlib.sha256(s.encode()).hexdigest()); the first is also the worked
// example of X's Ads API user-data guide ("adsapi").
func TestHash(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"adsapi":                       "49e0be2aeccfb51a8dee4c945c8a70a9ac500cf6f5cb08112575f74db9b1470d",
		"cloudysanfrancisco@gmail.com": "223ebda6f6889b1494551ba902d9d381daf2f642bae055888e96343d53e9f9c4",
		"16505551212":                  "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176",
		"+18005550100":                 "fb4f73a6ec5fdb7077d564cdd22c3554b43ce49168550c3b12c547b78c517b30",
	} {
		require.Equal(t, want, HashOf(in).String(), in)
		require.Equal(t, want, string(HashOf(in).AppendHex(nil)), in)
	}
}

func TestPrepare(t *testing.T) {
	t.Parallel()
	ids := []Identity{
		{ContactID: "c1", Email: "Alice@Example.com", Phone: "+16505551212"},
		{ContactID: "c2", Email: "not-an-address", Phone: "+447700900123"},
		{ContactID: "c3", Email: "bad", Phone: "12"},
		{ContactID: "c4"},
	}
	members, rejected := Prepare(Meta, ids, nil)
	require.Equal(t, []Member{
		{ContactID: "c1", Email: HashOf("alice@example.com"), Phone: HashOf("16505551212")},
		{ContactID: "c2", Phone: HashOf("447700900123")},
	}, members)
	require.Equal(t, []Rejection{
		{"c2", Email, ErrNotAnEmail.Error()},
		{"c3", Email, ErrNotAnEmail.Error()},
		{"c3", Phone, ErrNotE164.Error()},
	}, rejected)

	// LinkedIn matches on email only: a phone is neither sent nor rejected.
	members, rejected = Prepare(LinkedIn, ids[:1], members[:0])
	require.Equal(t, []Member{{ContactID: "c1", Email: HashOf("alice@example.com")}}, members)
	require.Empty(t, rejected)
}

func TestBatches(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 1, 9_999, 10_000, 10_001, 25_000} {
		ms := make([]int, n)
		for i := range ms {
			ms[i] = i
		}
		bs := Batches(Google, ms)
		require.Len(t, bs, (n+9_999)/10_000, n)
		total := 0
		for _, b := range bs {
			require.LessOrEqual(t, len(b), Google.MaxBatch())
			require.NotEmpty(t, b)
			require.Equal(t, total, b[0], "in order")
			total += len(b)
		}
		require.Equal(t, n, total)
	}
}

// identities is n contacts with an email and a phone each, as stored.
func identities(n int) []Identity {
	ids := make([]Identity, n)
	for i := range ids {
		ids[i] = Identity{ContactID: fmt.Sprintf("c%d", i), Email: fmt.Sprintf("user.%d@example.com", i),
			Phone: fmt.Sprintf("+1415%07d", i%10_000_000)}
	}
	return ids
}

// Preparing a million identities against raw SHA-256 of the same strings,
// side by side: the ratio of the two is the cost of normalising and
// batching. Preparing works as a sync does: the identities cut into
// batches of the destination's size, each normalised and hashed into one
// reused slice of members. Run them interleaved, in one session, and
// compare with benchstat (the README's figures say how they were taken).
func BenchmarkPrepareMillion(b *testing.B) {
	ids := identities(1_000_000)
	members := make([]Member, 0, Google.MaxBatch())
	b.ResetTimer()
	for b.Loop() {
		for _, batch := range Batches(Google, ids) {
			members, _ = Prepare(Google, batch, members[:0])
		}
	}
}

func BenchmarkRawSHA256Million(b *testing.B) {
	ids := identities(1_000_000)
	out := make([][sha256.Size]byte, 0, 2*len(ids))
	b.ResetTimer()
	for b.Loop() {
		out = out[:0]
		for _, id := range ids {
			out = append(out, sha256.Sum256([]byte(id.Email)), sha256.Sum256([]byte(id.Phone)))
		}
	}
}

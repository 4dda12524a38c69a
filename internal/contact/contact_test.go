package contact

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestNormalizeEmail(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    string
		wantErr string
	}{
		{in: "alice@example.com", want: "alice@example.com"},
		{in: "  Alice@Example.COM \n", want: "alice@example.com"},
		{in: "first.last+tag@sub.example.co.uk", want: "first.last+tag@sub.example.co.uk"},
		{in: "", wantErr: "email: required"},
		{in: "   ", wantErr: "email: required"},
		{in: "alice", wantErr: "email: not a valid email address"},
		{in: "alice@", wantErr: "email: not a valid email address"},
		{in: "@example.com", wantErr: "email: not a valid email address"},
		{in: "alice@@example.com", wantErr: "email: not a valid email address"},
		{in: "Alice <alice@example.com>", wantErr: "email: must be a bare address"},
		{in: "<alice@example.com>", wantErr: "email: must be a bare address"},
		{in: "alice@example.com (Alice)", wantErr: "email: must be a bare address"},
		{in: "alice@example.com, bob@example.com", wantErr: "email: not a valid email address"},
		{in: "alice@localhost", wantErr: `email: domain "localhost" cannot receive internet mail`},
		{in: strings.Repeat("a", 250) + "@example.com", wantErr: "email: longer than 254 characters"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := NormalizeEmail(tt.in)
			if tt.wantErr != "" {
				require.Error(t, err)
				require.Contains(t, err.Error(), tt.wantErr)
				var fe *Error
				require.True(t, errors.As(err, &fe))
				require.Equal(t, "email", fe.Field)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestNormalizePhone(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, region string
		want       string
		wantErr    string
	}{
		{in: "+14155550100", region: "US", want: "+14155550100"},
		{in: "(415) 555-0100", region: "US", want: "+14155550100"},
		{in: "415.555.0100", region: "us", want: "+14155550100"},
		{in: "1 415 555 0100", region: "US", want: "+14155550100"},
		{in: "06 12 34 56 78", region: "FR", want: "+33612345678"},
		{in: "+33 6 12 34 56 78", region: "US", want: "+33612345678"},
		{in: "+44 20 7946 0958", region: "", want: "+442079460958"},
		{in: "", region: "US", wantErr: "phone: required"},
		{in: "hello", region: "US", wantErr: "phone: not a valid phone number for region US"},
		{in: "555-0100", region: "US", wantErr: "phone: not a valid phone number for region US"},
		{in: "+1 415 555 01000", region: "US", wantErr: "phone: not a valid phone number for region US"},
		{in: "(415) 555-0100", region: "", wantErr: "phone: not a valid international phone number"},
	}
	for _, tt := range tests {
		t.Run(tt.region+"/"+tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := NormalizePhone(tt.in, tt.region)
			if tt.wantErr != "" {
				require.Error(t, err)
				require.Contains(t, err.Error(), tt.wantErr)
				var fe *Error
				require.True(t, errors.As(err, &fe))
				require.Equal(t, "phone", fe.Field)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestValidateTimeZone(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in string
		ok bool
	}{
		{"", true},
		{"UTC", true},
		{"Europe/Paris", true},
		{"America/Los_Angeles", true},
		{"Local", false},
		{"Mars/Olympus_Mons", false},
		{" Europe/Paris", false},
		{"europe/paris!", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			err := ValidateTimeZone(tt.in)
			if tt.ok {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.Contains(t, err.Error(), "time_zone: ")
		})
	}
}

func TestTimeZonesForPhone(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want []string
	}{
		{"+33142685300", []string{"Europe/Paris"}},
		{"+442079460958", []string{"Europe/London"}},
		{"+12125550100", []string{"America/New_York"}},
		{"+14155550100", []string{"America/Los_Angeles"}},
		{"not a number", nil},
		{"", nil},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, TimeZonesForPhone(tt.in))
		})
	}
	// A prefix with no location maps to every zone of the country.
	require.Greater(t, len(TimeZonesForPhone("+18005550100")), 1)
}

package audience

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/tutti-dev/tutti/internal/provider"
	datamanager "google.golang.org/api/datamanager/v1"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"
)

// GoogleClient adds and removes Customer Match members through the Data
// Manager API (audienceMembers:ingest and :remove), with Google's
// maintained Go client, google.golang.org/api/datamanager/v1.
type GoogleClient struct {
	svc *datamanager.Service
	// OperatingAccount is the Google Ads customer id that owns the lists.
	OperatingAccount string
	// AccountType is the operating account's type, GOOGLE_ADS by default.
	AccountType string
}

// NewGoogleClient builds a client; opts carry the credentials
// (option.WithAuthCredentialsFile, say) and, in tests, the fake's endpoint.
func NewGoogleClient(ctx context.Context, operatingAccount string, opts ...option.ClientOption) (*GoogleClient, error) {
	svc, err := datamanager.NewService(ctx, opts...)
	if err != nil {
		return nil, err
	}
	return &GoogleClient{svc: svc, OperatingAccount: operatingAccount, AccountType: "GOOGLE_ADS"}, nil
}

// Destination is Google.
func (c *GoogleClient) Destination() Destination { return Google }

// Apply sends one batch to the user list (the audience is its id). Adds
// carry the EU user consent fields as granted: Tutti adds only contacts
// whose ads consent is granted (the sync's rule), and says so to Google
// per member, as the Data Manager API asks.
func (c *GoogleClient) Apply(ctx context.Context, audience string, action Action, members []Member) (Result, error) {
	dest := []*datamanager.Destination{{
		OperatingAccount:     &datamanager.ProductAccount{AccountId: c.OperatingAccount, AccountType: c.AccountType},
		ProductDestinationId: audience,
	}}
	ams := make([]*datamanager.AudienceMember, 0, len(members))
	for _, m := range members {
		var ids []*datamanager.UserIdentifier
		if !m.Email.IsZero() {
			ids = append(ids, &datamanager.UserIdentifier{EmailAddress: m.Email.String()})
		}
		if !m.Phone.IsZero() {
			ids = append(ids, &datamanager.UserIdentifier{PhoneNumber: m.Phone.String()})
		}
		if len(ids) == 0 {
			continue
		}
		am := &datamanager.AudienceMember{UserData: &datamanager.UserData{UserIdentifiers: ids}}
		if action == Add {
			am.Consent = &datamanager.Consent{AdUserData: "CONSENT_GRANTED", AdPersonalization: "CONSENT_GRANTED"}
		}
		ams = append(ams, am)
	}
	if len(ams) == 0 {
		return Result{}, nil
	}
	var requestID string
	var err error
	switch action {
	case Add:
		var resp *datamanager.IngestAudienceMembersResponse
		resp, err = c.svc.AudienceMembers.Ingest(&datamanager.IngestAudienceMembersRequest{
			Destinations: dest, AudienceMembers: ams, Encoding: "HEX",
			TermsOfService: &datamanager.TermsOfService{CustomerMatchTermsOfServiceStatus: "ACCEPTED"},
		}).Context(ctx).Do()
		if resp != nil {
			requestID = resp.RequestId
		}
	case Remove:
		var resp *datamanager.RemoveAudienceMembersResponse
		resp, err = c.svc.AudienceMembers.Remove(&datamanager.RemoveAudienceMembersRequest{
			Destinations: dest, AudienceMembers: ams, Encoding: "HEX",
		}).Context(ctx).Do()
		if resp != nil {
			requestID = resp.RequestId
		}
	}
	if err != nil {
		var ge *googleapi.Error
		if errors.As(err, &ge) {
			return Result{}, &APIError{Destination: Google, Status: ge.Code, Message: ge.Message,
				RetryAfter: provider.RetryAfter(ge.Header, time.Now()), Code: http.StatusText(ge.Code)}
		}
		return Result{}, &APIError{Destination: Google, Err: err}
	}
	return Result{RequestID: requestID, Received: len(ams)}, nil
}

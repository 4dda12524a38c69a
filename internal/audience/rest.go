package audience

// The platforms without a maintained Go client, Meta and LinkedIn: typed
// requests over net/http, their API versions a setting (both retire
// versions on a schedule), sent and classified by call (platform.go).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// MetaClient adds and removes members of Meta Custom Audiences through the
// Marketing API's users endpoint (POST and DELETE
// /{version}/{audience}/users). Meta publishes no maintained Go SDK, so
// these are typed requests over net/http.
type MetaClient struct {
	// BaseURL is https://graph.facebook.com, or a fake's in tests.
	BaseURL string
	// Version is the Graph API version, "v25.0" say: a setting, since
	// Meta retires versions on a schedule.
	Version string
	// AccessToken is a system user's token with ads_management.
	AccessToken string
	HTTP        *http.Client
}

// Destination is Meta.
func (c *MetaClient) Destination() Destination { return Meta }

// metaSchema is the multi-key schema Tutti sends: each row is a member's
// email and phone hashes, "" where the member has none.
var metaSchema = []string{"EMAIL_SHA256", "PHONE_SHA256"}

type metaPayload struct {
	Schema []string    `json:"schema"`
	Data   [][2]string `json:"data"`
}

type metaResponse struct {
	AudienceID        string          `json:"audience_id"`
	SessionID         string          `json:"session_id"`
	NumReceived       int             `json:"num_received"`
	NumInvalidEntries int             `json:"num_invalid_entries"`
	InvalidSamples    json.RawMessage `json:"invalid_entry_samples"`
	Error             *struct {
		Message      string `json:"message"`
		Type         string `json:"type"`
		Code         int    `json:"code"`
		ErrorSubcode int    `json:"error_subcode"`
	} `json:"error"`
}

// Apply sends one batch: POST to add, DELETE to remove, the payload and
// token form-encoded in the body (never in the URL, where proxies log it).
func (c *MetaClient) Apply(ctx context.Context, audience string, action Action, members []Member) (Result, error) {
	method := http.MethodPost
	if action == Remove {
		method = http.MethodDelete
	}
	return c.send(ctx, method, audience, "users", members, nil)
}

// Replace sends one batch of a full replace (the usersreplace edge): the
// batches of one session, numbered from 1, together become the audience's
// members when the last arrives, and everyone else leaves it.
func (c *MetaClient) Replace(ctx context.Context, audience string, s ReplaceSession, members []Member) (Result, error) {
	sess, err := json.Marshal(map[string]any{"session_id": s.ID, "batch_seq": s.Batch, "last_batch_flag": s.Last,
		"estimated_num_total": s.EstimatedTotal})
	if err != nil {
		return Result{}, err
	}
	return c.send(ctx, http.MethodPost, audience, "usersreplace", members, url.Values{"session": {string(sess)}})
}

// send makes one users or usersreplace request.
func (c *MetaClient) send(ctx context.Context, method, audience, edge string, members []Member, extra url.Values) (Result, error) {
	p := metaPayload{Schema: metaSchema, Data: make([][2]string, len(members))}
	for i, m := range members {
		if !m.Email.IsZero() {
			p.Data[i][0] = m.Email.String()
		}
		if !m.Phone.IsZero() {
			p.Data[i][1] = m.Phone.String()
		}
	}
	payload, err := json.Marshal(p)
	if err != nil {
		return Result{}, err
	}
	form := url.Values{"payload": {string(payload)}, "access_token": {c.AccessToken}}
	for k, v := range extra {
		form[k] = v
	}
	u := strings.TrimRight(c.BaseURL, "/") + "/" + c.Version + "/" + url.PathEscape(audience) + "/" + edge
	req, err := http.NewRequestWithContext(ctx, method, u, strings.NewReader(form.Encode()))
	if err != nil {
		return Result{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	body, err := call(c.HTTP, Meta, req)
	var r metaResponse
	jerr := json.Unmarshal(body, &r)
	if err != nil || r.Error != nil {
		ae, ok := err.(*APIError)
		if !ok {
			// Meta has answered 200 with an error object.
			ae = &APIError{Destination: Meta, Status: http.StatusOK}
		}
		if ae.Status != 0 && jerr == nil && r.Error != nil {
			ae.Code = fmt.Sprintf("%d/%d", r.Error.Code, r.Error.ErrorSubcode)
			ae.Message = r.Error.Message
			// Meta throttles with codes 4, 17, 32, 613 and 80003 under a
			// 400 as well as with a 429.
			switch r.Error.Code {
			case 4, 17, 32, 613, 80003:
				ae.Status = http.StatusTooManyRequests
			}
		}
		return Result{}, ae
	}
	if jerr != nil {
		return Result{}, &APIError{Destination: Meta, Status: http.StatusOK, Message: "unreadable answer: " + jerr.Error()}
	}
	return Result{RequestID: r.SessionID, Received: r.NumReceived, Invalid: r.NumInvalidEntries}, nil
}

// LinkedInClient adds and removes members of LinkedIn DMP segments through
// the Marketing API's versioned DMP Segment Users endpoint (POST
// /rest/dmpSegments/{segment}/users, X-RestLi-Method: BATCH_CREATE).
// LinkedIn publishes no Go client; these are typed requests over net/http.
type LinkedInClient struct {
	// BaseURL is https://api.linkedin.com, or a fake's in tests.
	BaseURL string
	// Version is the Marketing API version header, "202510" say: a
	// setting, since LinkedIn sunsets each version after a year.
	Version     string
	AccessToken string
	HTTP        *http.Client
}

// Destination is LinkedIn.
func (c *LinkedInClient) Destination() Destination { return LinkedIn }

type linkedInUserID struct {
	IDType  string `json:"idType"`
	IDValue string `json:"idValue"`
}

type linkedInElement struct {
	Action  string           `json:"action"`
	UserIDs []linkedInUserID `json:"userIds"`
}

type linkedInBatch struct {
	Elements []linkedInElement `json:"elements"`
}

type linkedInAnswer struct {
	Elements []struct {
		Status int    `json:"status"`
		Error  string `json:"error,omitempty"`
	} `json:"elements"`
	Message     string `json:"message"`
	ServiceCode int    `json:"serviceErrorCode"`
}

// Apply sends one batch: one element per member with an email hash
// (LinkedIn matches users on email only). LinkedIn answers per element;
// a refused element is a refused member.
func (c *LinkedInClient) Apply(ctx context.Context, audience string, action Action, members []Member) (Result, error) {
	verb := "ADD"
	if action == Remove {
		verb = "REMOVE"
	}
	var batch linkedInBatch
	var sent []string
	for _, m := range members {
		if m.Email.IsZero() {
			continue
		}
		batch.Elements = append(batch.Elements, linkedInElement{Action: verb,
			UserIDs: []linkedInUserID{{IDType: "SHA256_EMAIL", IDValue: m.Email.String()}}})
		sent = append(sent, m.ContactID)
	}
	if len(batch.Elements) == 0 {
		return Result{}, nil
	}
	body, err := json.Marshal(batch)
	if err != nil {
		return Result{}, err
	}
	u := strings.TrimRight(c.BaseURL, "/") + "/rest/dmpSegments/" + url.PathEscape(audience) + "/users"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return Result{}, err
	}
	req.Header.Set("Authorization", "Bearer "+c.AccessToken)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("LinkedIn-Version", c.Version)
	req.Header.Set("X-Restli-Protocol-Version", "2.0.0")
	req.Header.Set("X-RestLi-Method", "BATCH_CREATE")
	raw, err := call(c.HTTP, LinkedIn, req)
	var a linkedInAnswer
	jerr := json.Unmarshal(raw, &a)
	if err != nil {
		if ae, ok := err.(*APIError); ok && jerr == nil && a.Message != "" {
			ae.Message, ae.Code = a.Message, fmt.Sprint(a.ServiceCode)
		}
		return Result{}, err
	}
	if jerr != nil || len(a.Elements) != len(sent) {
		return Result{}, &APIError{Destination: LinkedIn, Status: http.StatusOK,
			Message: fmt.Sprintf("unreadable answer: %d statuses for %d elements (%v)", len(a.Elements), len(sent), jerr)}
	}
	r := Result{}
	for i, e := range a.Elements {
		if e.Status/100 == 2 {
			r.Received++
			continue
		}
		if r.Refused == nil {
			r.Refused = map[string]string{}
		}
		r.Invalid++
		r.Refused[sent[i]] = fmt.Sprintf("status %d %s", e.Status, e.Error)
	}
	return r, nil
}

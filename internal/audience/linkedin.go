package audience

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

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

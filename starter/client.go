package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tutti-dev/tutti/internal/api"
	"github.com/tutti-dev/tutti/internal/config"
	"github.com/tutti-dev/tutti/internal/journey"
)

// The client every command but serve, migrate, journey validate and codec
// new-key uses: the CLI is a client of the API like any other.

const (
	// defaultAPIURL is where `make dev` runs the API.
	defaultAPIURL = "http://127.0.0.1:8080"
	// clientTimeout bounds one API call from the CLI.
	clientTimeout = 30 * time.Second
)

// apiClient calls the Tutti API, like any other client of it.
type apiClient struct {
	base  string
	token string
	hc    *http.Client
}

func (c *cli) client() *apiClient {
	return &apiClient{
		base:  strings.TrimRight(c.env.get("TUTTI_API_URL", defaultAPIURL), "/"),
		token: c.env.get("TUTTI_API_TOKEN", config.DevAPIToken),
		hc:    &http.Client{Timeout: clientTimeout},
	}
}

// apiError is an error answer from the API.
type apiError struct {
	Status   int               `json:"-"`
	Code     string            `json:"code"`
	Message  string            `json:"message"`
	Fields   []api.FieldError  `json:"fields"`
	Problems []journey.Problem `json:"-"`
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s (HTTP %d): %s", e.Code, e.Status, e.Message)
}

// print writes the error with one line per field (or spec problem).
func (e *apiError) print(w io.Writer) {
	fmt.Fprintf(w, "tutti: %s\n", e.Error())
	if len(e.Problems) > 0 {
		for _, p := range e.Problems {
			fmt.Fprintf(w, "%s\n", p.String())
		}
		return
	}
	for _, f := range e.Fields {
		if f.Path == "" {
			fmt.Fprintf(w, "  %s\n", f.Message)
		} else {
			fmt.Fprintf(w, "  %s: %s\n", f.Path, f.Message)
		}
	}
}

// call makes one request. A 2xx answer is decoded into out (if not nil); any
// other is returned as *apiError. The raw body is returned either way.
func (a *apiClient) call(ctx context.Context, method, path string, q url.Values, body []byte, ctype string, out any) ([]byte, error) {
	u, err := url.Parse(a.base + path)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("TUTTI_API_URL=%q is not a URL like %s", a.base, defaultAPIURL)
	}
	if len(q) > 0 {
		u.RawQuery = q.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("Accept", "application/json")
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("calling the API at %s (TUTTI_API_URL): %w", a.base, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("reading the API's answer: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var env struct {
			Error    *apiError         `json:"error"`
			Problems []journey.Problem `json:"problems"`
		}
		if json.Unmarshal(raw, &env) != nil || env.Error == nil {
			return raw, &apiError{Status: resp.StatusCode, Code: "http_error", Message: strings.TrimSpace(string(raw))}
		}
		env.Error.Status = resp.StatusCode
		env.Error.Problems = env.Problems
		return raw, env.Error
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return raw, fmt.Errorf("decoding the API's answer: %w", err)
		}
	}
	return raw, nil
}

func (c *cli) printJSON(v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(c.stdout, "%s\n", data)
	return err
}

func (c *cli) printRaw(raw []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		_, err = c.stdout.Write(raw)
		return err
	}
	buf.WriteByte('\n')
	_, err := c.stdout.Write(buf.Bytes())
	return err
}

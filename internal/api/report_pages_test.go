package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/api"
	"github.com/tutti-dev/tutti/internal/storage/storagetest"
)

// chromium finds the Chromium the test scripts install (Debian's
// package). Without one the page tests skip, except in CI, where
// scripts/test.sh must have installed it.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{os.Getenv("TUTTI_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"} {
		if name == "" {
			continue
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no Chromium: scripts/test.sh installs Debian's chromium package for the report page tests")
	}
	t.Skip("no Chromium (apt-get install chromium, or set TUTTI_CHROMIUM); `make test` installs it")
	return ""
}

// browse loads url in headless Chromium with the API token, returns the
// text of every [data-testid] element, and keeps a screenshot.
func browse(t *testing.T, url, token, shot string) map[string]string {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium(t)), chromedp.NoSandbox)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf), chromedp.WithLogf(t.Logf))
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// The headers go on the page's target, which the first navigation opens.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate("about:blank")))
	_, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{
		Headers: network.Headers{"Authorization": "Bearer " + token}})
	require.NoError(t, err)
	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(url))
	require.NoError(t, err)
	require.Equal(t, int64(http.StatusOK), resp.Status, "the page's status")
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify(Object.fromEntries([...document.querySelectorAll('[data-testid]')].map(e => {
			const path = []; for (let n = e; n && n !== document.body; n = n.parentElement) if (n.dataset && n.dataset.testid) path.unshift(n.dataset.testid);
			return [path.join('/'), e.textContent.trim()]; })))`))
	require.NoError(t, err)
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	dir := os.Getenv("TUTTI_TEST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "tutti-test-artifacts")
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	path := filepath.Join(dir, shot)
	require.NoError(t, os.WriteFile(path, png, 0o644))
	t.Logf("screenshot: %s", path)
	out := map[string]string{}
	require.NoError(t, json.Unmarshal([]byte(raw), &out))
	return out
}

// The report pages show, in a real browser, the numbers the JSON API
// answers; without the token they ask for it.
func TestReportPagesInChromium(t *testing.T) {
	h := newHarness(t)
	storagetest.SeedReports(t, h.store)
	chromium(t)

	var rep api.JourneyReport
	require.NoError(t, json.Unmarshal([]byte(h.call("GET", "/v1/reports/journeys/offer", nil, http.StatusOK).raw), &rep))
	got := browse(t, h.url+"/reports/journeys/offer", token, "report-journey-offer.png")
	require.Equal(t, "offer", got["journey-id"])
	for _, v := range rep.Versions {
		sec := fmt.Sprintf("version-%d/", v.Version)
		require.Equal(t, fmt.Sprint(v.Entered), got[sec+"entered"], sec)
		require.Equal(t, fmt.Sprint(*v.Converted), got[sec+"converted"], sec)
		want := fmt.Sprintf("%.1f%% (%.1f%%–%.1f%%)", *v.ConversionRate*100, v.ConversionRateCI.Low*100, v.ConversionRateCI.High*100)
		require.Equal(t, want, got[sec+"conversion-rate"], sec)
		for _, st := range v.Steps {
			if st.Reached != nil {
				require.Equal(t, fmt.Sprint(*st.Reached), got[sec+"step-"+st.StepID+"/reached"], st.StepID)
			}
			if st.Sends != nil {
				require.Equal(t, fmt.Sprint(st.Sends.Sent), got[sec+"step-"+st.StepID+"/sent"], st.StepID)
			}
		}
		for _, c := range v.Channels {
			require.Equal(t, fmt.Sprint(c.OptedOut), got[sec+"channel-"+string(c.Channel)+"/opted-out"])
		}
		require.NotEmpty(t, v.ByPath, sec)
		for i, p := range v.ByPath {
			row := fmt.Sprintf("%sby-path/path-%d/", sec, i)
			require.Equal(t, p.Label(), got[row+"label"], row)
			require.Equal(t, fmt.Sprint(p.Entered), got[row+"runs"], row)
			require.Equal(t, fmt.Sprint(*p.Converted), got[row+"converted"], row)
			want := fmt.Sprintf("%.1f%% (%.1f%%–%.1f%%)", *p.ConversionRate*100, p.ConversionRateCI.Low*100, p.ConversionRateCI.High*100)
			require.Equal(t, want, got[row+"rate"], row)
		}
		_, extra := got[fmt.Sprintf("%sby-path/path-%d/runs", sec, len(v.ByPath))]
		require.False(t, extra, "no row beyond the JSON's")
	}
	// Version 1's paths by hand: the whole journey first, the run from
	// before paths were recorded last.
	require.Equal(t, "pick > hello > pause > nudge", got["version-1/by-path/path-0/label"])
	require.Equal(t, "6", got["version-1/by-path/path-0/runs"])
	require.Equal(t, "no recorded path", got["version-1/by-path/path-4/label"])
	_, ok := got["version-1/funnel"]
	require.True(t, ok, "the funnel chart is drawn")

	var ex api.ExperimentReport
	require.NoError(t, json.Unmarshal([]byte(h.call("GET", "/v1/reports/journeys/offer/experiments/discount", nil, http.StatusOK).raw), &ex))
	got = browse(t, h.url+"/reports/journeys/offer/experiments/discount", token, "report-experiment-discount.png")
	require.Equal(t, "discount", got["experiment"])
	for _, g := range ex.Groups {
		row := "group-" + g.Group + "/"
		require.Equal(t, fmt.Sprint(g.Entered), got[row+"entered"], g.Group)
		require.Equal(t, fmt.Sprint(g.Converted), got[row+"converted"], g.Group)
		require.True(t, strings.HasPrefix(got[row+"rate"], fmt.Sprintf("%.1f%%", g.Rate*100)), "%s: %q", g.Group, got[row+"rate"])
		if g.VsControl != nil {
			require.True(t, strings.HasPrefix(got[row+"lift"], fmt.Sprintf("%+.1f pp", g.VsControl.Difference*100)), got[row+"lift"])
		}
	}
	_, ok = got["rates"]
	require.True(t, ok, "the rates chart is drawn")

	// No token: 401 asking for Basic credentials; the token as the Basic
	// password works; a journey that does not exist is a 404 page.
	resp, err := http.Get(h.url + "/reports/journeys/offer")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	require.Contains(t, resp.Header.Get("WWW-Authenticate"), "Basic")
	req, _ := http.NewRequest("GET", h.url+"/reports/journeys/offer", nil)
	req.SetBasicAuth("marketer", token)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
	req, _ = http.NewRequest("GET", h.url+"/reports/journeys/nope", nil)
	req.SetBasicAuth("marketer", token)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
}

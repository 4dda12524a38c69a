package api

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/config"
)

// Every request's access line, and whatever a handler logs, carry the
// request's id: the caller's X-Request-Id when it is a plain token.
func TestRequestLogsCarryTheRequestID(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	s := New(Deps{Config: config.Config{APIToken: "t", APIMaxBody: 1 << 10}, Logger: slog.New(slog.NewTextHandler(&logs, nil))})

	req := httptest.NewRequest(http.MethodGet, "/v1/nothing-here?email=a@example.com", nil)
	req.Header.Set("X-Request-Id", "req-7")
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	require.Equal(t, http.StatusNotFound, rec.Code)
	require.Equal(t, "req-7", rec.Header().Get("X-Request-Id"))
	line := strings.TrimSpace(logs.String())
	require.Contains(t, line, `msg="api: request" request_id=req-7 method=GET`)
	require.Contains(t, line, "path=/v1/nothing-here status=404")
	require.NotContains(t, line, "example.com", "the query string is never logged")

	logs.Reset()
	ctx := withRequestLogger(context.Background(), s.log, "req-8")
	loggerFrom(ctx).Warn("api: something", "n", 1)
	require.Contains(t, logs.String(), `msg="api: something" request_id=req-8 n=1`)
}

package provider

import (
	"context"
	"errors"
	"net"
	"net/http/httptrace"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestWriteTraceWritten drives the trace hooks as net/http would and checks
// the decision, including the case a loopback test cannot provoke on demand:
// WroteRequest reports success (the request is in the transport's buffer) and
// the flush to the socket then fails.
func TestWriteTraceWritten(t *testing.T) {
	writeErr := &net.OpError{Op: "write", Net: "tcp", Err: syscall.ECONNRESET}
	readErr := &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	tests := []struct {
		name  string
		hooks func(*httptrace.ClientTrace)
		err   error
		want  bool
	}{
		{
			name:  "no connection (refused, DNS, TLS)",
			hooks: func(ct *httptrace.ClientTrace) { ct.GetConn("api.twilio.com:443") },
			err:   &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED},
		},
		{
			name: "written, then the read failed",
			hooks: func(ct *httptrace.ClientTrace) {
				ct.GetConn("h:443")
				ct.GotConn(httptrace.GotConnInfo{})
				ct.WroteRequest(httptrace.WroteRequestInfo{})
			},
			err:  readErr,
			want: true,
		},
		{
			name: "written, then the caller gave up",
			hooks: func(ct *httptrace.ClientTrace) {
				ct.GetConn("h:443")
				ct.GotConn(httptrace.GotConnInfo{})
				ct.WroteRequest(httptrace.WroteRequestInfo{})
			},
			err:  context.DeadlineExceeded,
			want: true,
		},
		{
			name: "buffered, then the flush to the socket failed",
			hooks: func(ct *httptrace.ClientTrace) {
				ct.GetConn("h:443")
				ct.GotConn(httptrace.GotConnInfo{})
				ct.WroteRequest(httptrace.WroteRequestInfo{})
			},
			err: writeErr,
		},
		{
			name: "the write itself failed",
			hooks: func(ct *httptrace.ClientTrace) {
				ct.GetConn("h:443")
				ct.GotConn(httptrace.GotConnInfo{})
				ct.WroteRequest(httptrace.WroteRequestInfo{Err: errors.New("use of closed network connection")})
			},
			err: context.Canceled,
		},
		{
			name: "connected, write outcome never reported",
			hooks: func(ct *httptrace.ClientTrace) {
				ct.GetConn("h:443")
				ct.GotConn(httptrace.GotConnInfo{})
			},
			err:  context.Canceled,
			want: true, // maybe on its way: never guess "not sent"
		},
		{
			name: "nothing written on a stale connection, retry could not connect",
			hooks: func(ct *httptrace.ClientTrace) {
				ct.GetConn("h:443")
				ct.GotConn(httptrace.GotConnInfo{Reused: true})
				ct.WroteRequest(httptrace.WroteRequestInfo{})
				ct.GetConn("h:443") // net/http retries only what it did not write
			},
			err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var w writeTrace
			tc.hooks(httptrace.ContextClientTrace(w.attach(context.Background())))
			assert.Equal(t, tc.want, w.written(tc.err))
		})
	}
}

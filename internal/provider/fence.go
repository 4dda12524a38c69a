package provider

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptrace"
	"sync"
)

// Fence is the last check before a send's request is written: the caller's
// re-check of consent that turns a reserved ledger row into an in-flight one
// (delivery calls storage.BeginFlight in it). A provider runs it once the
// connection to the provider is up (TCP connected, TLS handshake done),
// right before the first byte of the request goes out, so that connecting
// is not part of the window in which a crash leaves the ledger saying "the
// provider may have it" when no byte was sent. A sender that makes no
// connection (the sandbox) runs it just before it records the message.
//
// Pass runs the check at most once; every later call returns the first
// answer, so a transport that retries a request on a fresh connection meets
// the same decision.
type Fence struct {
	check func() error

	mu   sync.Mutex
	done bool
	err  error
}

// NewFence returns a Fence that runs check. check returns nil to let the
// request be written, or an error (a refusal, or a failure to find out) to
// stop it before anything is written.
func NewFence(check func() error) *Fence { return &Fence{check: check} }

// Pass runs the check the first time and returns its answer, wrapped in a
// *FenceError when it is a refusal; later calls return the same answer.
func (f *Fence) Pass() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.done {
		f.done = true
		if err := f.check(); err != nil {
			f.err = &FenceError{Err: err}
		}
	}
	return f.err
}

// Ran reports whether the check has run: false means the request never got a
// connection, so nothing of it was written and the row is still reserved.
func (f *Fence) Ran() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.done
}

// FenceError is a fence that stopped a request before any of it was
// written. Err is the check's own error.
type FenceError struct{ Err error }

func (e *FenceError) Error() string {
	return "stopped before the request was written: " + e.Err.Error()
}
func (e *FenceError) Unwrap() error { return e.Err }

type fenceKey struct{}

// WithFence returns ctx carrying f, for the send made with ctx.
func WithFence(ctx context.Context, f *Fence) context.Context {
	return context.WithValue(ctx, fenceKey{}, f)
}

// PassFence runs the fence ctx carries, if any. Senders that make no HTTP
// request call it right before they hand the message over.
func PassFence(ctx context.Context) error {
	if f, ok := ctx.Value(fenceKey{}).(*Fence); ok {
		return f.Pass()
	}
	return nil
}

// fenceStopped returns the refusal of the fence ctx carries, if it ran and
// refused. A call the fence stopped is neither retryable nor ambiguous: it
// was never written. The fence's own record is the authority, not the
// call's error, which may be the closed connection or the cancelled context
// the refusal caused.
func fenceStopped(ctx context.Context) error {
	f, ok := ctx.Value(fenceKey{}).(*Fence)
	if !ok {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.done && f.err != nil {
		return f.err
	}
	return nil
}

// fenced prepares one HTTP send for the fence ctx carries, if any, and
// returns the request to send instead of req, and the context it carries.
//
// The fence runs in the GotConn trace hook: net/http calls it once a
// connection is obtained and before it writes a byte of the request. A
// refusal there must keep the request off the wire, which the hook cannot
// do by returning; so on HTTP/1 it closes the connection (which nobody else
// uses while this request holds it: the write fails, nothing was sent), and
// on any protocol it cancels the request and the body refuses to be read.
// On HTTP/2, where the connection carries other sends and must stay open,
// the request's headers may still go out before the body read fails and the
// stream is reset: the provider gets a request with no body, which it cannot
// act on.
func fenced(req *http.Request) (*http.Request, context.CancelFunc) {
	f, ok := req.Context().Value(fenceKey{}).(*Fence)
	if !ok {
		return req, func() {}
	}
	ctx, cancel := context.WithCancelCause(req.Context())
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) {
			err := f.Pass()
			if err == nil {
				return
			}
			cancel(err)
			if info.Conn != nil && !isHTTP2(info.Conn) {
				_ = info.Conn.Close()
			}
		},
	})
	out := req.Clone(ctx)
	if req.Body != nil && req.Body != http.NoBody {
		out.Body = &fencedBody{ReadCloser: req.Body, fence: f}
		if req.GetBody != nil {
			out.GetBody = func() (io.ReadCloser, error) {
				b, err := req.GetBody()
				if err != nil {
					return nil, err
				}
				return &fencedBody{ReadCloser: b, fence: f}, nil
			}
		}
	}
	return out, func() { cancel(nil) }
}

// isHTTP2 reports whether conn negotiated HTTP/2 (and so is shared).
func isHTTP2(conn any) bool {
	tc, ok := conn.(*tls.Conn)
	return ok && tc.ConnectionState().NegotiatedProtocol == "h2"
}

// fencedBody is a request body that is read only once the fence has let
// the request through (on HTTP/1 the GotConn hook has already run the
// fence by then; on HTTP/2 this is what keeps a refused body off the wire).
type fencedBody struct {
	io.ReadCloser
	fence *Fence
}

func (b *fencedBody) Read(p []byte) (int, error) {
	if err := b.fence.Pass(); err != nil {
		return 0, err
	}
	return b.ReadCloser.Read(p)
}

// fenceTransport runs the fence of each request's context (see fenced).
type fenceTransport struct{ next http.RoundTripper }

func (t fenceTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	out, cancel := fenced(req)
	resp, err := t.next.RoundTrip(out)
	if err != nil {
		cancel()
		return nil, err
	}
	// The context must live as long as the body is read.
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

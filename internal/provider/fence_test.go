package provider_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/provider"
)

// byteCounter is a TCP server that reads whatever arrives and answers
// nothing: what a refused fence sends it is what reached the wire.
type byteCounter struct {
	ln    net.Listener
	bytes atomic.Int64
	conns atomic.Int64
	done  chan struct{} // closed when every accepted connection has ended
}

func newByteCounter(t *testing.T) *byteCounter {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	c := &byteCounter{ln: ln, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		c.conns.Add(1)
		n, _ := io.Copy(io.Discard, conn)
		c.bytes.Add(n)
		conn.Close()
	}()
	t.Cleanup(func() { ln.Close() })
	return c
}

func (c *byteCounter) URL() string { return "http://" + c.ln.Addr().String() }

// wait returns once the one connection the counter takes has ended.
func (c *byteCounter) wait(t *testing.T) {
	select {
	case <-c.done:
	case <-time.After(30 * time.Second): // a hang guard, not a measurement
		t.Fatal("the connection was never closed")
	}
}

var errRefused = errors.New("consent changed")

// A fence that refuses keeps the whole request off the wire: the provider
// is connected to, and receives not one byte.
func TestFenceRefusalWritesNothing(t *testing.T) {
	t.Parallel()
	for _, p := range providersUnderTest {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			srv := newByteCounter(t)
			var checks atomic.Int64
			fence := provider.NewFence(func() error { checks.Add(1); return errRefused })

			err := p.send(provider.WithFence(context.Background(), fence), srv.URL(), &http.Client{Timeout: 30 * time.Second})

			var stopped *provider.FenceError
			require.ErrorAs(t, err, &stopped, "the caller learns the fence stopped it: %v", err)
			require.ErrorIs(t, err, errRefused)
			assert.False(t, provider.IsAmbiguous(err), "nothing was written: not ambiguous")
			assert.True(t, fence.Ran())
			assert.Equal(t, int64(1), checks.Load(), "the check runs once")
			srv.wait(t)
			assert.Equal(t, int64(1), srv.conns.Load(), "the fence ran once connected")
			assert.Zero(t, srv.bytes.Load(), "not a byte of the request was written")
		})
	}
}

// The fence runs once the connection is up, not before: a provider that
// cannot be reached leaves the fence unrun (the ledger row stays reserved)
// and the failure retryable.
func TestFenceDoesNotRunWithoutAConnection(t *testing.T) {
	t.Parallel()
	for _, p := range providersUnderTest {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			url := "http://" + ln.Addr().String()
			require.NoError(t, ln.Close()) // nothing listens there now
			fence := provider.NewFence(func() error { return nil })

			err = p.send(provider.WithFence(context.Background(), fence), url, nil)

			require.Error(t, err)
			assert.False(t, fence.Ran(), "no connection, no fence")
			assert.True(t, provider.IsRetryable(err), "refused: nothing written, retry: %v", err)
		})
	}
}

// A fence that lets the request through runs once, after which the
// provider gets the message as usual.
func TestFencePassingSends(t *testing.T) {
	t.Parallel()
	for _, p := range providersUnderTest {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			f := p.newFake(t)
			var checks atomic.Int64
			fence := provider.NewFence(func() error { checks.Add(1); return nil })

			require.NoError(t, p.send(provider.WithFence(context.Background(), fence), f.URL(), nil))

			assert.Equal(t, int64(1), checks.Load())
			assert.Equal(t, 1, f.accepted())
		})
	}
}

// Over HTTP/2 the connection is shared and stays open, so the refusal
// cannot stop the headers; it stops the body, and the provider never gets a
// request it could act on.
func TestFenceRefusalOverHTTP2SendsNoBody(t *testing.T) {
	t.Parallel()
	for _, p := range providersUnderTest {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			var complete, seen atomic.Int64
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				seen.Add(1)
				body, err := io.ReadAll(r.Body)
				if err == nil && len(body) > 0 && int64(len(body)) == r.ContentLength {
					complete.Add(1)
				}
				w.WriteHeader(http.StatusInternalServerError)
			}))
			srv.EnableHTTP2 = true
			srv.Config.ErrorLog = quietLog()
			srv.StartTLS()
			t.Cleanup(srv.Close)
			fence := provider.NewFence(func() error { return errRefused })

			err := p.send(provider.WithFence(context.Background(), fence), srv.URL, srv.Client())

			var stopped *provider.FenceError
			require.ErrorAs(t, err, &stopped, "%v", err)
			srv.Close() // waits for the handler, if the stream reached it
			assert.Zero(t, complete.Load(), "no complete request reached the provider (%d streams opened)", seen.Load())
		})
	}
}

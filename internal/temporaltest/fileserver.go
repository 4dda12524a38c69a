package temporaltest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/tutti-dev/tutti/internal/searchattr"
)

// FileServer is a dev server with a file database that a test can stop
// dead and start again on the same port and file: Temporal going away and
// coming back with everything it had, as a real cluster does. (The servers
// of StartDevServer keep their state in memory, and testsuite.DevServer
// picks a new port each start.)
//
//	srv := temporaltest.StartFileServer(t) // killed by t.Cleanup
//	srv.Kill()                             // SIGKILL: clients see it gone
//	srv.Start()                            // same port, same database
type FileServer struct {
	t       testing.TB
	addr    string
	args    []string
	cli     string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{}
}

// StartFileServer starts a dev server on a free port with its database in
// the test's temporary directory, waits until it answers, and kills it in
// t.Cleanup.
func StartFileServer(t testing.TB) *FileServer {
	t.Helper()
	cli, err := CLIPath()
	if err != nil {
		t.Fatalf("temporaltest: %v", err)
	}
	dir := t.TempDir()
	port := freePort(t)
	s := &FileServer{t: t, cli: cli, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), logPath: filepath.Join(dir, "temporal.log")}
	// The HTTP and metrics ports are left to the CLI (a free port each
	// start); only the gRPC port must stay the same for the clients.
	s.args = []string{"server", "start-dev", "--ip", "127.0.0.1", "--port", strconv.Itoa(port), "--headless",
		"--db-filename", filepath.Join(dir, "temporal.db"), "--log-level", "warn", "--namespace", Namespace}
	for _, sa := range searchattr.Flags() {
		s.args = append(s.args, "--search-attribute", sa)
	}
	t.Cleanup(func() {
		s.kill()
		if t.Failed() {
			t.Logf("temporaltest: file dev server log (last lines):\n%s", tail(s.logPath, 40))
		}
	})
	s.Start()
	return s
}

// Addr is the server's gRPC address (the same across restarts).
func (s *FileServer) Addr() string { return s.addr }

// Start starts the server (again) and waits until it answers for the
// default namespace. It fails the test if the server is already running or
// does not come up within startTimeout.
func (s *FileServer) Start() {
	s.t.Helper()
	if s.running() {
		s.t.Fatalf("temporaltest: the file dev server on %s is already running", s.addr)
	}
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.t.Fatalf("temporaltest: %v", err)
	}
	cmd := exec.Command(s.cli, s.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Pdeathsig: a test binary that dies takes its server with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		s.t.Fatalf("temporaltest: starting %s: %v", s.cli, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		_ = logf.Close()
		close(done)
	}()
	s.cmd, s.done = cmd, done
	if err := s.waitReady(); err != nil {
		s.t.Fatalf("temporaltest: %v\n%s", err, tail(s.logPath, 40))
	}
}

// Kill stops the server with SIGKILL (no graceful shutdown) and waits until
// its process is gone.
func (s *FileServer) Kill() {
	s.t.Helper()
	if !s.running() {
		s.t.Fatalf("temporaltest: the file dev server on %s is not running", s.addr)
	}
	s.kill()
}

func (s *FileServer) kill() {
	if !s.running() {
		return
	}
	// Only this process (never a name pattern); the CLI runs the server
	// in-process, it has no children.
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		s.t.Errorf("temporaltest: the dev server (pid %d) is still there 30s after SIGKILL", s.cmd.Process.Pid)
	}
}

func (s *FileServer) running() bool {
	if s.cmd == nil {
		return false
	}
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// waitReady polls until the server describes the default namespace.
func (s *FileServer) waitReady() error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	c, err := client.NewLazyClient(client.Options{HostPort: s.addr, Namespace: Namespace, Logger: quietLogger()})
	if err != nil {
		return err
	}
	defer c.Close()
	for {
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := c.WorkflowService().DescribeNamespace(cctx, &workflowservice.DescribeNamespaceRequest{Namespace: Namespace})
		ccancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the file dev server on %s did not become ready: %v", s.addr, err)
		case <-s.done:
			return fmt.Errorf("the file dev server on %s exited while starting", s.addr)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// freePort asks the kernel for a free TCP port on 127.0.0.1.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("temporaltest: finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

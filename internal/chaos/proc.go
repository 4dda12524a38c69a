package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// proc is one child process the harness runs and may kill: the worker,
// the API, the Temporal dev server or the fake. Output is appended to its
// log file, with a marker line per start.
type proc struct {
	name    string
	path    string
	args    []string
	env     []string
	logPath string
	// restartDelay is how long a supervised process stays down after it
	// exits before it is started again.
	restartDelay time.Duration
	// ready, when set, is waited for after each start (bounded by ctx).
	ready func(context.Context) error
	say   func(format string, args ...any)

	mu        sync.Mutex
	cmd       *exec.Cmd
	done      chan struct{}
	starts    int
	killed    bool // the harness killed it on purpose: restart without complaint
	stopping  bool // final shutdown: do not restart
	unplanned int  // exits nobody asked for
}

func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	p.starts++
	fmt.Fprintf(logf, "=== chaos: start %d of %s at %s\n", p.starts, p.name, time.Now().UTC().Format(time.RFC3339Nano))
	cmd := exec.Command(p.path, p.args...)
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, so a terminal's Ctrl-C reaches the harness
	// only, which then stops everything in order; and Pdeathsig, so a
	// harness that dies without cleaning up takes its children with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return fmt.Errorf("starting %s: %w", p.name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		_ = logf.Close()
		close(done)
	}()
	p.cmd, p.done, p.killed = cmd, done, false
	return nil
}

// exited is closed when the current process exits.
func (p *proc) exited() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done
}

func (p *proc) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// kill sends SIGKILL to the current process (only it: never a name
// pattern) and waits until it is gone.
func (p *proc) kill() error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.killed = true
	p.mu.Unlock()
	if cmd == nil {
		return errors.New(p.name + " is not running")
	}
	select {
	case <-done:
		return nil // already gone
	default:
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	select {
	case <-done:
		return nil
	case <-time.After(30 * time.Second):
		return fmt.Errorf("%s (pid %d) still there 30s after SIGKILL", p.name, cmd.Process.Pid)
	}
}

// stop ends the process for good: SIGTERM, then SIGKILL after grace.
func (p *proc) stop(grace time.Duration) {
	p.mu.Lock()
	p.stopping = true
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-done:
		return
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(grace):
		_ = cmd.Process.Signal(syscall.SIGKILL)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
		}
	}
}

// supervise restarts the process whenever it exits, until stop or ctx
// ends: after a planned kill as the harness's "restart", after anything
// else counted as unplanned.
func (p *proc) supervise(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.exited():
		}
		p.mu.Lock()
		if p.stopping {
			p.mu.Unlock()
			return
		}
		if !p.killed {
			p.unplanned++
			code := -1
			if p.cmd.ProcessState != nil {
				code = p.cmd.ProcessState.ExitCode()
			}
			p.say("%s exited on its own (exit code %d); restarting it", p.name, code)
		}
		p.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-time.After(p.restartDelay):
		}
		if err := p.start(); err != nil {
			p.say("restarting %s: %v", p.name, err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(5 * time.Second):
			}
			continue
		}
		if p.ready != nil {
			rctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
			if err := p.ready(rctx); err != nil && ctx.Err() == nil {
				p.say("%s restarted but is not ready: %v", p.name, err)
			}
			cancel()
		}
	}
}

// unplannedExits counts exits nobody asked for.
func (p *proc) unplannedExits() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.unplanned
}

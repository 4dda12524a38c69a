package chaos

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// eventually polls cond; the bound only keeps a broken supervisor from
// hanging the test.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestProc_KilledIsRestartedQuietly_ExitedOnItsOwnIsCounted(t *testing.T) {
	t.Parallel()
	sh, err := os.Stat("/bin/sh")
	require.NoError(t, err)
	require.False(t, sh.IsDir())
	dir := t.TempDir()
	var said atomic.Int32
	// Runs for a minute the first time, then exits by itself on later starts.
	marker := filepath.Join(dir, "started")
	p := &proc{
		name: "sleeper", path: "/bin/sh", logPath: filepath.Join(dir, "sleeper.log"), restartDelay: 10 * time.Millisecond,
		args: []string{"-c", `if [ -e "$1" ]; then sleep 0.2; exit 3; fi; touch "$1"; exec sleep 60`, "sh", marker},
		say:  func(string, ...any) { said.Add(1) },
	}
	require.NoError(t, p.start())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.supervise(ctx)

	first := p.pid()
	require.NotZero(t, first)
	eventually(t, "the first run under way", func() bool { _, err := os.Stat(marker); return err == nil })
	require.NoError(t, p.kill())
	eventually(t, "a restart after the kill", func() bool { return p.pid() != first && p.pid() != 0 })
	// The restarted one exits with 3 by itself: unplanned, and restarted again.
	eventually(t, "an unplanned exit counted", func() bool { return p.unplannedExits() >= 1 })
	assert.GreaterOrEqual(t, int(said.Load()), 1, "an unplanned exit is reported")

	p.stop(5 * time.Second)
	select {
	case <-p.exited():
	case <-time.After(30 * time.Second):
		t.Fatal("still running after stop")
	}
	log, err := os.ReadFile(p.logPath)
	require.NoError(t, err)
	assert.Contains(t, string(log), "=== chaos: start 2 of sleeper")
}

func TestRecordLog_ATornLastLineIsIgnored(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "records.jsonl")
	l, err := openRecordLog(path, false)
	require.NoError(t, err)
	rec, err := l.Accept(Record{Provider: ProviderSendGrid, ID: "x1", To: "a@example.com"})
	require.NoError(t, err)
	l.Answered(rec.Seq, AnswerSent)
	require.NoError(t, l.Close())

	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString(`{"kind":"accepted","record":{"seq":2,"provid`)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	recs, _, err := ReadRecords(path)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	assert.Equal(t, AnswerSent, recs[0].Answer)

	// A bad line in the middle is an error: the record cannot be trusted.
	f, err = os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString("\n" + `{"kind":"answer","seq":1,"answer":"dropped"}` + "\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())
	_, _, err = ReadRecords(path)
	assert.Error(t, err)
}

package chaos

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Provider names as the fake records them.
const (
	ProviderSendGrid = "sendgrid"
	ProviderTwilio   = "twilio"
)

// How the fake answered a request whose message it accepted.
const (
	AnswerPending    = ""            // not answered yet
	AnswerSent       = "answered"    // the success response was written
	AnswerClientGone = "client_gone" // the client hung up first (killed, or gave up waiting)
	AnswerDropped    = "dropped"     // the fake closed the connection without answering
	AnswerAbandoned  = "abandoned"   // the fake stopped hanging (HangMax) and closed the connection
)

// Record is one message the fake accepted: the provider has it, whatever the
// sender later heard. This is the ground truth the tally compares the
// ledger with.
type Record struct {
	Seq        int64     `json:"seq"`
	Provider   string    `json:"provider"`
	ID         string    `json:"id"` // SendGrid X-Message-Id or Twilio Message SID
	AcceptedAt time.Time `json:"accepted_at"`
	To         string    `json:"to"`
	From       string    `json:"from,omitempty"`
	Subject    string    `json:"subject,omitempty"` // email
	Body       string    `json:"body,omitempty"`    // SMS text, or the email's text/plain part
	// MessageID is SendGrid's custom_args tutti_message_id: the ledger row
	// the sender says this is.
	MessageID  string            `json:"message_id,omitempty"`
	CustomArgs map[string]string `json:"custom_args,omitempty"`
	// Fault is the fault drawn for the request that carried the message:
	// "", "slow", "hang" or "drop".
	Fault string `json:"fault,omitempty"`
	// Answer is how the request ended (Answer* constants).
	Answer string `json:"answer,omitempty"`
}

// logLine is one line of the record file: an accepted message, the answer
// to one accepted earlier (Answer set, Seq naming it), or a request the
// client abandoned before the fake accepted its message.
type logLine struct {
	Kind   string  `json:"kind"` // "accepted", "answer" or "abandoned"
	Record *Record `json:"record,omitempty"`
	Seq    int64   `json:"seq,omitempty"`
	Answer string  `json:"answer,omitempty"`
}

// recordLog is the fake's durable record: an append-only JSON-lines file,
// written (and, with sync, flushed to disk) before the fake answers, so a
// message the fake accepted is on disk even if the fake itself dies next.
// Reopening the file restores every record.
type recordLog struct {
	mu      sync.Mutex
	f       *os.File
	sync    bool
	records []Record // in Seq order; Seq = index+1
	// abandoned are requests the client left before acceptance: not sent.
	abandoned []Record
	err       error            // the first write error, reported by Err
	clock     func() time.Time // for AcceptedAt
}

// openRecordLog opens (or creates) path and loads what it holds. path ""
// keeps the record in memory only.
func openRecordLog(path string, sync bool) (*recordLog, error) {
	l := &recordLog{sync: sync, clock: time.Now}
	if path == "" {
		return l, nil
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("record log: %w", err)
	}
	if err := l.load(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("record log %s: %w", path, err)
	}
	l.f = f
	return l, nil
}

func (l *recordLog) load(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	n := 0
	for sc.Scan() {
		n++
		var ln logLine
		if err := json.Unmarshal(sc.Bytes(), &ln); err != nil {
			// A torn last line (the fake was killed mid-write) is not an
			// error: that message was never answered as accepted.
			if !sc.Scan() {
				return nil
			}
			return fmt.Errorf("line %d: %w", n, err)
		}
		switch {
		case ln.Kind == "accepted" && ln.Record != nil:
			l.add(*ln.Record)
		case ln.Kind == "answer" && ln.Seq >= 1 && int(ln.Seq) <= len(l.records):
			l.records[ln.Seq-1].Answer = ln.Answer
		case ln.Kind == "abandoned" && ln.Record != nil:
			l.abandoned = append(l.abandoned, *ln.Record)
		}
	}
	return sc.Err()
}

func (l *recordLog) add(r Record) {
	r.Seq = int64(len(l.records) + 1)
	l.records = append(l.records, r)
}

func (l *recordLog) write(ln logLine) error {
	if l.f == nil {
		return nil
	}
	b, err := json.Marshal(ln)
	if err != nil {
		return err
	}
	if _, err := l.f.Write(append(b, '\n')); err != nil {
		return err
	}
	if l.sync {
		return l.f.Sync()
	}
	return nil
}

// Accept records r as accepted and returns it with its Seq and AcceptedAt.
// A write error is returned, and the caller must not answer 2xx.
func (l *recordLog) Accept(r Record) (Record, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r.Seq = int64(len(l.records) + 1)
	r.AcceptedAt = l.clock().UTC()
	r.Answer = AnswerPending
	if err := l.write(logLine{Kind: "accepted", Record: &r}); err != nil {
		l.err = errors.Join(l.err, err)
		return Record{}, err
	}
	l.add(r)
	return r, nil
}

// Answered records how the request that carried record seq ended.
func (l *recordLog) Answered(seq int64, answer string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if seq < 1 || int(seq) > len(l.records) {
		return
	}
	l.records[seq-1].Answer = answer
	if err := l.write(logLine{Kind: "answer", Seq: seq, Answer: answer}); err != nil {
		l.err = errors.Join(l.err, err)
	}
}

// Abandoned notes a request the client left before its message was
// accepted.
func (l *recordLog) Abandoned(r Record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r.Seq, r.AcceptedAt, r.Answer = 0, time.Time{}, AnswerClientGone
	if err := l.write(logLine{Kind: "abandoned", Record: &r}); err != nil {
		l.err = errors.Join(l.err, err)
	}
	l.abandoned = append(l.abandoned, r)
}

// AbandonedRecords returns copies of the abandoned requests keep selects.
func (l *recordLog) AbandonedRecords(keep func(*Record) bool) []Record {
	l.mu.Lock()
	defer l.mu.Unlock()
	return selected(l.abandoned, keep)
}

// Records returns a copy of every record, in acceptance order.
func (l *recordLog) Records() []Record {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Record, len(l.records))
	copy(out, l.records)
	return out
}

// Filter returns copies of the records keep selects, in acceptance order.
func (l *recordLog) Filter(keep func(*Record) bool) []Record {
	l.mu.Lock()
	defer l.mu.Unlock()
	return selected(l.records, keep)
}

// selected returns copies of the records of rs that keep selects, in order.
func selected(rs []Record, keep func(*Record) bool) []Record {
	var out []Record
	for i := range rs {
		if keep(&rs[i]) {
			out = append(out, rs[i])
		}
	}
	return out
}

// Err is the first write error, if any: a record file that could not be
// written makes the run's figures untrustworthy.
func (l *recordLog) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// Close closes the file.
func (l *recordLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// ReadRecords loads a record file written by the fake (for a harness that
// lost its connection to the fake, or for a later look): the accepted
// messages and the abandoned requests.
func ReadRecords(path string) (accepted, abandoned []Record, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	l := &recordLog{}
	if err := l.load(f); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return l.records, l.abandoned, nil
}

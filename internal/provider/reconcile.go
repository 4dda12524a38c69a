package provider

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	openapi "github.com/twilio/twilio-go/rest/api/v2010"
)

// Read-back bounds for Twilio.FindSMS.
const (
	// readBackPageSize and readBackPages bound the listing: three pages of
	// the newest messages from the sender to the recipient. A contact rarely
	// has that many from one sender; when they do, the answer is
	// "inconclusive", never a guess.
	readBackPageSize = 50
	readBackPages    = 3
	// readBackSkew widens "created at or after since" for clock drift between
	// this host and Twilio and for date_created's whole seconds. Small on
	// purpose: an identical text from minutes before the attempt is an
	// earlier message, not this one.
	readBackSkew = time.Minute
)

var _ Reconciler = (*Twilio)(nil)

// FindSMS reads back the account's Messages list to learn whether Twilio
// created m in an ambiguous SendSMS that began at since. messageID is not
// used: the Messages API carries no metadata of ours, so a message is known
// by what it is - recipient, sender, body, number of media - and when it was
// created.
//
// The listing is filtered by To and, unless m.From is a Messaging Service
// (whose messages carry the pool number Twilio picked, and no From until
// then), by From; the service's SID is then checked on each message. It is
// deliberately not filtered by DateSent, which the issue suggested: that
// filter compares date_sent, which is null until Twilio hands the message to
// a carrier - exactly the state of a message created moments ago by the call
// being settled, and one that lasts for hours in a throttled Messaging
// Service queue - so it would hide the message being looked for. (It is also
// a whole GMT date, so it would narrow little.) Instead the newest messages
// are paged (readBackPages of readBackPageSize) and matched on
// date_created >= since - readBackSkew. Media URLs cannot be compared: the
// resource only has num_media (the media list holds Twilio's copies), so the
// count is. The body is compared exactly, so account features that rewrite
// it (Smart Encoding, link shortening, content redaction) make a sent message
// look absent; do not rely on FindSMS with them on.
//
// A listing that fills every page without a match, or a matching message
// whose date_created cannot be read, is inconclusive: an Ambiguous *Error.
// Failures of the read itself are classified like sends, except that none is
// ambiguous: reading again is always safe.
func (t *Twilio) FindSMS(ctx context.Context, messageID string, m SMS, since time.Time) (Result, bool, error) {
	if t.configErr != nil {
		return Result{}, false, &Error{Provider: "twilio", Message: t.configErr.Error(), Err: t.configErr}
	}
	if m.To == "" {
		return Result{}, false, &Error{Provider: "twilio", Message: "read-back needs the recipient (To)"}
	}
	ctx, cancel := t.withTimeout(ctx)
	defer cancel()
	call, api := t.newCall(ctx, nil)
	defer call.release()

	service := messagingServiceSID.MatchString(m.From)
	p := &openapi.ListMessageParams{}
	p.SetTo(m.To)
	if m.From != "" && !service {
		p.SetFrom(m.From)
	}
	const limit = readBackPageSize * readBackPages
	p.SetPageSize(readBackPageSize)
	p.SetLimit(limit)
	msgs, err := api.ListMessage(p)
	if err != nil {
		return Result{}, false, call.classify(err)
	}

	notBefore := since
	if !since.IsZero() {
		notBefore = since.Add(-readBackSkew)
	}
	var (
		found       Result
		ok, undated bool
	)
	for _, msg := range msgs {
		if !sameSMS(msg, m, service) {
			continue
		}
		created, err := time.Parse(time.RFC1123Z, deref(msg.DateCreated))
		if err != nil {
			undated = true
			continue
		}
		if created.Before(notBefore) {
			continue
		}
		// The earliest match is the one the ambiguous call created; any
		// later one would itself be a duplicate.
		if !ok || created.Before(found.AcceptedAt) {
			found = Result{Provider: "twilio", ProviderMessageID: deref(msg.Sid), AcceptedAt: created.UTC()}
			ok = true
		}
	}
	switch {
	case ok:
		return found, true, nil
	case undated:
		return Result{}, false, &Error{Provider: "twilio", Ambiguous: true,
			Message: "read-back inconclusive: a matching message has an unreadable date_created"}
	case len(msgs) >= limit:
		return Result{}, false, &Error{Provider: "twilio", Ambiguous: true,
			Message: fmt.Sprintf("read-back inconclusive: the newest %d messages to the recipient do not include it, and there are more", limit)}
	}
	return Result{}, false, nil
}

// sameSMS reports whether msg is m as sent (ignoring when).
func sameSMS(msg openapi.ApiV2010Message, m SMS, service bool) bool {
	if deref(msg.To) != m.To || deref(msg.Body) != m.Body {
		return false
	}
	if dir := deref(msg.Direction); dir != "" && !strings.HasPrefix(dir, "outbound") {
		return false
	}
	switch {
	case service:
		if deref(msg.MessagingServiceSid) != m.From {
			return false
		}
	case m.From != "":
		if deref(msg.From) != m.From {
			return false
		}
	}
	media := 0
	if n := deref(msg.NumMedia); n != "" {
		var err error
		if media, err = strconv.Atoi(n); err != nil {
			return false
		}
	}
	return media == len(m.MediaURL)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

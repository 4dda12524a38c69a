package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/tutti-dev/tutti/internal/audience"
	"github.com/tutti-dev/tutti/internal/storage"
)

// ChangeAudienceInput is an audience step: ids and a code only.
type ChangeAudienceInput struct {
	ContactID  string          `json:"contact_id"`
	AudienceID string          `json:"audience_id"`
	Action     audience.Action `json:"action"`
	JourneyID  string          `json:"journey_id"`
	StepID     string          `json:"step_id"`
}

// ChangeAudienceResult is what the step did: "queued", "already",
// "skipped:no_ads_consent", "skipped:suppressed:<reason>",
// "skipped:unknown_audience" or "skipped:contact_not_found".
type ChangeAudienceResult struct {
	Outcome string `json:"outcome"`
}

// ChangeAudience asks for the contact to be added to or removed from an ad
// audience (an audience step). The audience's sync workflow applies it;
// an add the contact may not have is recorded as skipped instead.
func (a *Activities) ChangeAudience(ctx context.Context, in ChangeAudienceInput) (ChangeAudienceResult, error) {
	if _, err := a.Store.Audience(ctx, in.AudienceID); errors.Is(err, storage.ErrNotFound) {
		return ChangeAudienceResult{Outcome: "skipped:unknown_audience"}, nil
	} else if err != nil {
		return ChangeAudienceResult{}, err
	}
	out, err := a.Store.RequestAudienceChange(ctx, in.AudienceID, in.ContactID, in.Action,
		fmt.Sprintf("journey:%s/%s", in.JourneyID, in.StepID))
	if errors.Is(err, storage.ErrNotFound) {
		return ChangeAudienceResult{Outcome: "skipped:contact_not_found"}, nil
	}
	if err != nil {
		return ChangeAudienceResult{}, err
	}
	return ChangeAudienceResult{Outcome: out}, nil
}

// SyncAudienceInput names the audience to sync.
type SyncAudienceInput struct {
	AudienceID string `json:"audience_id"`
	// Full asks for a full sync after the pass: the audience's members sent
	// whole again, to repair drift on the platform's side. Session numbers
	// it (a platform that replaces in sessions, Meta, gets one per attempt).
	Full    bool  `json:"full,omitempty"`
	Session int64 `json:"session,omitempty"`
}

// SyncAudienceResult counts what one pass did (no identifiers: it goes
// into the sync workflow's history).
type SyncAudienceResult struct {
	Revoked int `json:"revoked"`
	// Followed and Left count the rows a followed segment changed: its
	// members wanted in, and those who left it wanted out.
	Followed int `json:"followed,omitempty"`
	Left     int `json:"left,omitempty"`
	// Erased counts erased contacts' removals sent.
	Erased   int `json:"erased,omitempty"`
	Added    int `json:"added"`
	Removed  int `json:"removed"`
	Rejected int `json:"rejected"`
	Batches  int `json:"batches"`
	// Resent counts the members a full sync sent again.
	Resent int `json:"resent,omitempty"`
}

// maxBatchesPerPass bounds one pass; the next pass goes on.
const maxBatchesPerPass = 50

// SyncAudience is one pass of an audience's sync: for an audience that
// follows a segment, it first wants the segment's members in and those who
// left it out (FollowSegment); then it queues the removal of
// members who may no longer be in it (ads consent revoked, suppressed),
// then sends the pending removals and adds to the platform in batches of
// at most the destination's size, identifiers normalised and hashed here
// (audience.Prepare). Each member's outcome goes into the audience ledger;
// an identifier that cannot be normalised, or a member the platform
// refuses, is recorded as rejected, never a failed batch. A request the
// platform refused as a whole is retried when it may succeed (429, 5xx,
// no answer: Temporal's backoff, no sooner than Retry-After) and fails the
// pass otherwise (an expired token); the members stay pending either way.
func (a *Activities) SyncAudience(ctx context.Context, in SyncAudienceInput) (SyncAudienceResult, error) {
	var res SyncAudienceResult
	aud, err := a.Store.Audience(ctx, in.AudienceID)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return res, temporal.NewNonRetryableApplicationError("no such audience", "UnknownAudience", err)
		}
		return res, err
	}
	platform, ok := a.Audiences[aud.Destination]
	if !ok {
		return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf("no client configured for %s", aud.Destination), "NoPlatform", nil)
	}
	if aud.SegmentID != "" {
		if res.Followed, res.Left, err = a.Store.FollowSegment(ctx, aud.ID, aud.SegmentID); err != nil {
			return res, err
		}
	}
	if res.Revoked, err = a.Store.RevokeIneligible(ctx, aud.ID); err != nil {
		return res, err
	}
	// Erased contacts first: only their hashes are left, kept for this.
	for res.Batches < maxBatchesPerPass {
		erased, err := a.Store.PendingAudienceErasures(ctx, aud.ID, aud.Destination.MaxBatch())
		if err != nil || len(erased) == 0 {
			if err != nil {
				return res, err
			}
			break
		}
		members := make([]audience.Member, len(erased))
		ids := make([]int64, len(erased))
		for i, e := range erased {
			members[i], ids[i] = e.Member, e.ID
		}
		if _, err := platform.Apply(ctx, aud.ExternalID, audience.Remove, members); err != nil {
			return res, platformError(err)
		}
		if err := a.Store.DoneAudienceErasures(ctx, ids); err != nil {
			return res, err
		}
		res.Batches++
		res.Erased += len(erased)
		if len(erased) < aud.Destination.MaxBatch() {
			break
		}
	}
	for _, action := range []audience.Action{audience.Remove, audience.Add} {
		for res.Batches < maxBatchesPerPass {
			pending, err := a.Store.PendingAudienceChanges(ctx, aud.ID, action, aud.Destination.MaxBatch())
			if err != nil || len(pending) == 0 {
				if err != nil {
					return res, err
				}
				break
			}
			ids := make([]audience.Identity, len(pending))
			for i, p := range pending {
				ids[i] = p.Identity
			}
			members, rejections := audience.Prepare(aud.Destination, ids, nil)
			result, err := platform.Apply(ctx, aud.ExternalID, action, members)
			if err != nil {
				return res, platformError(err)
			}
			outcomes := outcomesOf(pending, members, rejections, result)
			if err := a.Store.RecordAudienceBatch(ctx, aud.ID, batchID(result), action, outcomes); err != nil {
				return res, err
			}
			res.Batches++
			for _, o := range outcomes {
				switch {
				case o.Result != "applied":
					res.Rejected++
				case action == audience.Add:
					res.Added++
				default:
					res.Removed++
				}
			}
			if activity.IsActivity(ctx) {
				activity.RecordHeartbeat(ctx, res.Batches)
			}
			if len(pending) < aud.Destination.MaxBatch() {
				break
			}
		}
	}
	if in.Full {
		n, err := a.fullSync(ctx, aud, platform, in.Session)
		res.Resent = n
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

// fullSync sends the audience's members whole again: as a replace where
// the platform has one (Meta's usersreplace, so that members added or
// kept on the platform's side outside Tutti leave), else as adds (which
// repairs members removed on the platform's side; adds are idempotent).
// An audience with no members is left as it is: a replace needs at least
// one row.
func (a *Activities) fullSync(ctx context.Context, aud storage.Audience, platform audience.Platform, session int64) (int, error) {
	ids, err := a.Store.AudienceMembersApplied(ctx, aud.ID)
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	members, _ := audience.Prepare(aud.Destination, ids, nil)
	batches := audience.Batches(aud.Destination, members)
	replacer, replaces := platform.(audience.Replacer)
	if replaces && activity.IsActivity(ctx) {
		// A retried attempt starts a session of its own.
		session = session*100 + int64(activity.GetInfo(ctx).Attempt)
	}
	for i, b := range batches {
		var err error
		if replaces {
			_, err = replacer.Replace(ctx, aud.ExternalID, audience.ReplaceSession{ID: session, Batch: i + 1,
				Last: i == len(batches)-1, EstimatedTotal: len(members)}, b)
		} else {
			_, err = platform.Apply(ctx, aud.ExternalID, audience.Add, b)
		}
		if err != nil {
			return 0, platformError(err)
		}
		if activity.IsActivity(ctx) {
			activity.RecordHeartbeat(ctx, i)
		}
	}
	return len(members), nil
}

// batchID is the platform's request id when it gives one, else ours.
func batchID(r audience.Result) string {
	if r.RequestID != "" && r.RequestID != "sandbox" {
		return r.RequestID
	}
	return "tutti-" + uuid.NewString()
}

// outcomesOf says what a batch did to each pending member: applied, or
// rejected with why (no identifier the destination can use, or refused by
// the platform).
func outcomesOf(pending []storage.PendingAudienceChange, members []audience.Member, rejections []audience.Rejection, r audience.Result) []storage.AudienceOutcome {
	sent := make(map[string]bool, len(members))
	for _, m := range members {
		sent[m.ContactID] = true
	}
	why := map[string][]string{}
	for _, rj := range rejections {
		why[rj.ContactID] = append(why[rj.ContactID], string(rj.Kind)+": "+rj.Reason)
	}
	out := make([]storage.AudienceOutcome, len(pending))
	for i, p := range pending {
		o := storage.AudienceOutcome{ContactID: p.ContactID, Result: "applied"}
		switch {
		case !sent[p.ContactID] && len(why[p.ContactID]) > 0:
			o.Result = "rejected:" + strings.Join(why[p.ContactID], "; ")
		case !sent[p.ContactID]:
			o.Result = "rejected:no_identifier"
		case r.Refused[p.ContactID] != "":
			o.Result = "rejected:" + r.Refused[p.ContactID]
		}
		out[i] = o
	}
	return out
}

// platformError makes a platform's refusal retryable or not, keeping its
// Retry-After as the floor of the next attempt.
func platformError(err error) error {
	var ae *audience.APIError
	if !errors.As(err, &ae) {
		return err
	}
	if !ae.Retryable() {
		return temporal.NewNonRetryableApplicationError(ae.Error(), "AudienceRefused", err)
	}
	return temporal.NewApplicationErrorWithOptions(ae.Error(), "AudienceRetry", temporal.ApplicationErrorOptions{
		NextRetryDelay: ae.RetryAfter, Cause: err})
}

package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"go.temporal.io/api/serviceerror"

	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/workflows"
)

// eraseContact erases a contact on the person's request: everything that
// identifies them is deleted in one transaction, except the proof of
// consent and opt-out under keyed hashes (storage.EraseContact; README,
// "Erasure"). Then every run that was active is told to end with the reason
// code erased, exactly as support's exit does. The erasure is done once it
// is committed; if a run could not be told, the answer is 503 and the
// same request again tells the runs the erasure recorded (an erased
// contact's request answers 200 with already_erased).
//
// These exits do not go through the delivery outbox, as support's exits
// and consent changes do: the erasure deletes the contact's deliveries with
// it (a pending one would still name the erased person's runs), and its own
// record, which lists the runs that were active, is already the durable
// to-do a retry finishes from. Moving them to the outbox would change what
// the answer promises (runs_told_to_end) for no gain in durability.
func (s *Server) eraseContact(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	e, created, err := s.store.EraseContact(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		writeError(w, r, notFound("contact", id, ""))
		return
	}
	if errors.Is(err, storage.ErrMerged) {
		// Its data is the survivor's now: erasing the survivor erases it.
		if c, cerr := s.store.Contact(ctx, id); cerr == nil && c.MergedInto != "" {
			e := mergedContact(c, "id")
			e.Status, e.Message = http.StatusConflict, e.Message+"; erase that contact, which erases this one with it"
			writeError(w, r, e)
			return
		}
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	fan := s.signalRuns(ctx, e.ActiveRuns, workflows.SignalExit, workflows.ExitSignal{Reason: workflows.ExitErased, By: "erasure"})
	resp := EraseAnswer{Erasure: e, Already: !created, Ended: fan.signalled, Failed: fan.failed}
	loggerFrom(ctx).Info("api: contact erased", "contact_id", e.ContactID, "erasure_id", e.ID, "already", !created,
		"proofs_kept", e.ProofsKept, "runs", len(e.ActiveRuns), "runs_failed", len(fan.failed))
	if len(fan.failed) > 0 {
		resp.Error = &Error{Status: http.StatusServiceUnavailable, Code: "delivery_incomplete",
			Message: fmt.Sprintf("contact %s is erased, but %d of its journey runs could not be told to end; retry the request to finish", e.ContactID, len(fan.failed))}
		writeJSON(w, resp.Error.Status, resp)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// fanResult is what a signal fan-out did.
type fanResult struct {
	signalled []string
	failed    []DeliveryError
}

// signalRuns sends one signal to each workflow id (its current run), all
// within cfg.SignalTimeout. A workflow that has already ended is skipped.
func (s *Server) signalRuns(ctx context.Context, workflowIDs []string, signal string, arg any) fanResult {
	res := fanResult{signalled: []string{}}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.SignalTimeout)
	defer cancel()
	for _, id := range workflowIDs {
		err := s.temporal.SignalWorkflow(ctx, id, "", signal, arg)
		var nf *serviceerror.NotFound
		switch {
		case err == nil:
			res.signalled = append(res.signalled, id)
		case errors.As(err, &nf):
			// Ended already; nothing to tell.
		default:
			res.failed = append(res.failed, DeliveryError{WorkflowID: id, Error: err.Error()})
		}
	}
	return res
}

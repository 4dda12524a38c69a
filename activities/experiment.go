package activities

import (
	"context"
	"errors"

	"go.temporal.io/sdk/temporal"

	"github.com/tutti-dev/tutti/internal/experiment"
	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/storage"
)

// AssignVariantInput is a contact reaching a split step.
type AssignVariantInput struct {
	EnrollmentID string `json:"enrollment_id"`
	ContactID    string `json:"contact_id"`
	JourneyID    string `json:"journey_id"`
	Version      int    `json:"version"`
	// Split is the step's split (from the spec, already in history).
	Split journey.Split `json:"split"`
}

// AssignVariantResult is the contact's variant: a name, nothing else.
type AssignVariantResult struct {
	// Variant is the contact's recorded variant.
	Variant string `json:"variant"`
	// Path is the variant whose next step the run takes: Variant, unless
	// this version of the journey no longer has it (a variant retired in a
	// later version), in which case the split's control.
	Path string `json:"path"`
}

// AssignVariant returns the contact's variant in the split's experiment:
// the one recorded for them if any (so re-entries, new versions and new
// weights move no one), else the hash of contact, journey and experiment
// (experiment.Assign), recorded now.
func (a *Activities) AssignVariant(ctx context.Context, in AssignVariantInput) (AssignVariantResult, error) {
	computed, err := experiment.Assign(experiment.ExperimentSalt(in.JourneyID, in.Split.Experiment), in.ContactID, in.Split.Arms())
	if err != nil {
		// The spec was validated at publish time, so this is a real defect.
		return AssignVariantResult{}, temporal.NewNonRetryableApplicationError("split: "+err.Error(), "BadSplit", err)
	}
	got, _, err := a.Store.Assign(ctx, storage.Assignment{JourneyID: in.JourneyID, Experiment: in.Split.Experiment,
		ContactID: in.ContactID, Variant: computed, EnrollmentID: in.EnrollmentID, JourneyVersion: in.Version})
	if errors.Is(err, storage.ErrNotFound) {
		// The contact was erased: take the path the hash gives; the
		// erasure has told the run to end.
		return AssignVariantResult{Variant: computed, Path: computed}, nil
	}
	if err != nil {
		return AssignVariantResult{}, err
	}
	res := AssignVariantResult{Variant: got.Variant, Path: got.Variant}
	if _, ok := in.Split.Variant(got.Variant); !ok {
		res.Path = in.Split.ControlVariant()
	}
	return res, nil
}

// AssignHoldoutInput is a contact entering a journey with a holdout.
type AssignHoldoutInput struct {
	EnrollmentID string  `json:"enrollment_id"`
	ContactID    string  `json:"contact_id"`
	JourneyID    string  `json:"journey_id"`
	Version      int     `json:"version"`
	Share        float64 `json:"share"`
}

// AssignHoldoutResult says whether the contact is held out.
type AssignHoldoutResult struct {
	// Group is journey.GroupHoldout or journey.GroupTreatment.
	Group string `json:"group"`
}

// AssignHoldout returns the contact's group in the journey's holdout: the
// one recorded if any, else the hash of contact and journey
// (experiment.Held with experiment.HoldoutSalt), recorded now.
func (a *Activities) AssignHoldout(ctx context.Context, in AssignHoldoutInput) (AssignHoldoutResult, error) {
	group := journey.GroupTreatment
	if experiment.Held(experiment.HoldoutSalt(in.JourneyID), in.ContactID, in.Share) {
		group = journey.GroupHoldout
	}
	got, _, err := a.Store.Assign(ctx, storage.Assignment{JourneyID: in.JourneyID, Experiment: journey.GroupHoldout,
		ContactID: in.ContactID, Variant: group, EnrollmentID: in.EnrollmentID, JourneyVersion: in.Version})
	if errors.Is(err, storage.ErrNotFound) {
		return AssignHoldoutResult{Group: group}, nil // erased; see AssignVariant
	}
	if err != nil {
		return AssignHoldoutResult{}, err
	}
	return AssignHoldoutResult{Group: got.Variant}, nil
}

// inControlGroup reports whether the contact is in the workspace control
// group: recorded the first time it is asked (for a marketing send), from
// the hash of the contact (experiment.ControlGroupSalt), and the record
// wins after that. With no control group configured it asks nothing.
func (a *Activities) inControlGroup(ctx context.Context, in SendInput) (bool, error) {
	if a.ControlGroupShare <= 0 {
		return false, nil
	}
	// Read first: after a contact's first marketing send this is all it
	// takes, and a read writes nothing.
	got, err := a.Store.AssignmentOf(ctx, "", journey.GroupControlGroup, in.ContactID)
	if err == nil {
		return got.Variant == journey.GroupControlGroup, nil
	}
	if !errors.Is(err, storage.ErrNotFound) {
		return false, err
	}
	group := journey.GroupTreatment
	if experiment.Held(experiment.ControlGroupSalt, in.ContactID, a.ControlGroupShare) {
		group = journey.GroupControlGroup
	}
	got, _, err = a.Store.Assign(ctx, storage.Assignment{JourneyID: "", Experiment: journey.GroupControlGroup,
		ContactID: in.ContactID, Variant: group, EnrollmentID: in.EnrollmentID, JourneyVersion: in.JourneyVersion})
	if err != nil {
		return false, err
	}
	return got.Variant == journey.GroupControlGroup, nil
}

package model_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/model"
)

func TestConsentStatusRecordable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status model.ConsentStatus
		want   bool
	}{
		{model.ConsentGranted, true},
		{model.ConsentRevoked, true},
		{model.ConsentPending, true},
		{model.ConsentNone, false}, // the same as no record: never written
		{"", false},
		{"Granted", false},
		{"opted_out", false},
	} {
		require.Equal(t, tc.want, tc.status.Recordable(), "%q", tc.status)
	}
}

func TestSuppressionReason(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		reason      model.SuppressionReason
		valid, hard bool
	}{
		{model.SuppressConverted, true, false},
		{model.SuppressInOpportunity, true, false},
		{model.SuppressUnengaged, true, false},
		{model.SuppressDoNotContact, true, true},
		{model.SuppressHardBounce, true, true},
		{model.SuppressSpamComplaint, true, true},
		// Unknown reasons are not valid, and hard: a block is never assumed soft.
		{"", false, true},
		{"legal_hold", false, true},
		{"HARD_BOUNCE", false, true},
	} {
		require.Equal(t, tc.valid, tc.reason.Valid(), "Valid(%q)", tc.reason)
		require.Equal(t, tc.hard, tc.reason.Hard(), "Hard(%q)", tc.reason)
	}
}

func TestRunStatusEnded(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status model.RunStatus
		want   bool
	}{
		{model.RunActive, false},
		{model.RunCompleted, true},
		{model.RunConverted, true},
		{model.RunExited, true},
		{model.RunFailed, true},
		{"", false},
		{"cancelled", false},
	} {
		require.Equal(t, tc.want, tc.status.Ended(), "%q", tc.status)
	}
}

func TestMessageStatusValid(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status model.MessageStatus
		want   bool
	}{
		{model.MessageReserved, true},
		{model.MessageInFlight, true},
		{model.MessageRetrying, true},
		{model.MessageSent, true},
		{model.MessageDelivered, true},
		{model.MessageOpened, true},
		{model.MessageClicked, true},
		{model.MessageFailed, true},
		{model.MessageBounced, true},
		{model.MessageDropped, true},
		{model.MessageComplained, true},
		{model.MessageSkipped, true},
		{model.MessageUnknown, true},
		{"", false},
		{"deferred", false}, // a send result, never a ledger status
		{"sending", false},  // the ledger's name for in_flight before migration 00004
	} {
		require.Equal(t, tc.want, tc.status.Valid(), "%q", tc.status)
	}
}

func TestDeliveryKindValid(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		kind model.DeliveryKind
		want bool
	}{
		{model.DeliverySignal, true},
		{model.DeliveryStart, true},
		{model.DeliveryConsent, true},
		{model.DeliveryExit, true},
		{"", false},
		{"Signal", false},
		{"erase", false}, // an erasure tells its runs itself, outside the outbox
	} {
		require.Equal(t, tc.want, tc.kind.Valid(), "%q", tc.kind)
	}
}

func TestMessageStatusOutcome(t *testing.T) {
	want := map[model.MessageStatus]model.SendOutcome{
		model.MessageReserved: model.OutcomePending, model.MessageInFlight: model.OutcomePending, model.MessageRetrying: model.OutcomePending,
		model.MessageSent: model.OutcomeSent, model.MessageDelivered: model.OutcomeSent, model.MessageOpened: model.OutcomeSent, model.MessageClicked: model.OutcomeSent,
		model.MessageBounced: model.OutcomeSent, model.MessageComplained: model.OutcomeSent,
		model.MessageFailed: model.OutcomeFailed, model.MessageDropped: model.OutcomeFailed,
		model.MessageSkipped: model.OutcomeSkipped, model.MessageUnknown: model.OutcomeUnknown,
	}
	for s, o := range want {
		if !s.Valid() {
			t.Fatalf("%s is not a status", s)
		}
		if got := s.Outcome(); got != o {
			t.Errorf("%s.Outcome() = %s, want %s", s, got, o)
		}
	}
}

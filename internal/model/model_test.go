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
		{model.DeliveryEnroll, true},
		{"", false},
		{"Signal", false},
		{"erase", false}, // an erasure tells its runs itself, outside the outbox
	} {
		require.Equal(t, tc.want, tc.kind.Valid(), "%q", tc.kind)
	}
}

// The merge's consent precedence: the most restrictive record wins, no
// record is no decision, and another address's record counts only when it
// is an opt-out.
func TestMergeConsent(t *testing.T) {
	t.Parallel()
	const (
		g = model.ConsentGranted
		r = model.ConsentRevoked
		p = model.ConsentPending
		n = model.ConsentNone
	)
	for _, tc := range []struct {
		survivor, absorbed model.ConsentStatus
		sameAddress        bool
		want               model.ConsentStatus
	}{
		// Same address: the most restrictive of the two.
		{g, r, true, r},
		{r, g, true, r},
		{g, p, true, p},
		{p, g, true, p},
		{p, r, true, r},
		{r, p, true, r},
		{g, g, true, g},
		{r, r, true, r},
		{p, p, true, p},
		// One side without a record takes the other's.
		{n, g, true, g},
		{n, p, true, p},
		{n, r, true, r},
		{g, n, true, g},
		{r, n, true, r},
		{"", g, true, g},
		{g, "", true, g},
		{n, n, true, n},
		{"", "", true, n},
		// Another address: only an opt-out carries over.
		{n, g, false, n},
		{n, p, false, n},
		{n, r, false, r},
		{g, r, false, r},
		{g, p, false, g},
		{p, g, false, p},
		{g, g, false, g},
		{r, g, false, r},
		{g, n, false, g},
	} {
		require.Equal(t, tc.want, model.MergeConsent(tc.survivor, tc.absorbed, tc.sameAddress),
			"survivor %q, absorbed %q, same address %v", tc.survivor, tc.absorbed, tc.sameAddress)
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

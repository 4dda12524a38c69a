package model

import "slices"

// DeliveryKind is what one row of the delivery outbox asks of Temporal: the
// kind column of deliveries, and the kind GET /v1/deliveries/status and the
// delivery metrics report.
type DeliveryKind string

const (
	// DeliverySignal tells the contact's running journeys about an event.
	DeliverySignal DeliveryKind = "signal"
	// DeliveryStart enrolls the contact in a journey an event triggers.
	DeliveryStart DeliveryKind = "start"
	// DeliveryConsent tells the contact's running journeys the channel-level
	// consent in force after a change. The send gate reads consent from
	// PostgreSQL before every send, so it only ends or updates runs early.
	DeliveryConsent DeliveryKind = "consent"
	// DeliveryExit asks one run to end (support's exit request).
	DeliveryExit DeliveryKind = "exit"
	// DeliveryEnroll starts the run of an enrollment the API recorded
	// without starting it (an enrollment asked with Prefer: respond-async).
	DeliveryEnroll DeliveryKind = "enroll"
)

// DeliveryKinds are the delivery kinds, in the order reports list them.
var DeliveryKinds = []DeliveryKind{DeliverySignal, DeliveryStart, DeliveryConsent, DeliveryExit, DeliveryEnroll}

// Valid reports whether k is a delivery kind.
func (k DeliveryKind) Valid() bool { return slices.Contains(DeliveryKinds, k) }

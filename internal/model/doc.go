// Package model is Tutti's vocabulary: the statuses and reasons that more
// than one package speaks (policy decides with them, storage persists them,
// workflows and activities pass them through Temporal history, the API
// returns them). Each is defined here once, one file per noun, so a value
// cannot drift between the packages that share it.
//
// The string values are stored in PostgreSQL (where CHECK constraints spell
// them again) and recorded in Temporal histories: never change one.
//
// The package imports nothing from Tutti, so every other package can import it.
package model

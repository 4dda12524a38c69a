// Package chaos checks Tutti's exactly-once claim under failure: `make chaos`
// (scripts/chaos.sh, internal/chaos/cmd/chaos) sends a burst of contacts
// through a three-send journey in live mode against a fake SendGrid and
// Twilio that injects faults, while the harness kills the worker, the
// Temporal dev server and its own PostgreSQL, and then counts what the
// recipients actually got.
//
// Three parts:
//
//   - FakeProvider (fake.go) is a SendGrid and Twilio API server that
//     checks the wire format with internal/provider/providertest's rules,
//     answers some requests with 500s, 429s with Retry-After, slow answers,
//     or accepts a message and then never answers. It keeps a durable record
//     of every message it accepted (record.go) and serves Twilio's Messages
//     list so a sender can read back what went out.
//   - Harness (harness.go) starts a throwaway PostgreSQL cluster, a Temporal
//     dev server with a file database, the fake, the worker and the API,
//     drives the burst and the kills, and collects the evidence.
//   - Tally (tally.go) is the pure accounting: journeys completed and lost,
//     messages expected, accepted, duplicated, unknown (really sent or never
//     sent), and the verdict.
package chaos

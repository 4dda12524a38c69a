// Package benchjourney is the journey benchmark (`make bench-journeys`,
// scripts/bench-journeys.sh, cmd/benchjourney): it measures what a Tutti
// journey costs against a hand-written workflow that calls the same
// activities, run by the same worker process against the same Temporal dev
// server and PostgreSQL, in interleaved rounds, and prints each figure as
// Tutti, hand-written and their ratio.
//
// The figures (issue 10):
//
//   - P1: completed journeys per second, a three-send journey against a
//     hand-written three-send workflow, and the CPU time the Temporal server
//     and the worker spend per run (read from /proc, so other work on a
//     shared machine does not count);
//   - P2: history events per journey: the three-send journey, and for each
//     step kind (send, wait, wait_for, branch) a three-step journey of that
//     kind (the target applies to these histories), with what each step of
//     the kind adds (the difference between a one-step and a three-step
//     journey, halved);
//   - P5: goal event -> run closed, p50 and p99, for a burst of signals and
//     for a steady rate;
//   - P6: the worker's resident memory with runs parked on a long wait, and
//     after the worker restarts (the worker is a process of its own);
//   - enrollment through the API (`tutti serve`) at 32 concurrent clients,
//     against starting the hand-written workflow directly.
//
// The harness starts its own Temporal dev server (in memory) and worker
// processes, and a scratch database on the PostgreSQL server of
// TEST_DATABASE_URL. It only measures: it changes nothing in Tutti.
package benchjourney

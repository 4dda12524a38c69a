-- pgbench script for `make bench-events` (scripts/bench-events.sh): one
-- row of an events row's width per transaction, into bench_events (the
-- events table's columns and indexes, no foreign key). The id is as long
-- as BenchmarkPostEvents' event ids (evt- and a UUID), the contact id as a
-- Tutti contact id (c_ and 32 hex digits), the properties the same JSON.
INSERT INTO bench_events (id, contact_id, name, properties, occurred_at, received_at)
VALUES ('evt-' || gen_random_uuid(), 'c_' || md5(:client_id::text), 'purchase', '{"order_id": "o-1001", "total": 42.5}', now(), now());

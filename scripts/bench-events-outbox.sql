-- pgbench script for `make bench-events` (scripts/bench-events.sh): the
-- rows POST /v1/events writes per event, without the API: one transaction
-- that inserts an events-width row and a deliveries-width row
-- (bench_events, bench_deliveries: the tables' columns and indexes, no
-- foreign keys).
WITH e AS (
    INSERT INTO bench_events (id, contact_id, name, properties, occurred_at, received_at)
    VALUES ('evt-' || gen_random_uuid(), 'c_' || md5(:client_id::text), 'purchase', '{"order_id": "o-1001", "total": 42.5}', now(), now())
    RETURNING id, contact_id)
INSERT INTO bench_deliveries (event_id, contact_id, kind) SELECT id, contact_id, 'signal' FROM e;

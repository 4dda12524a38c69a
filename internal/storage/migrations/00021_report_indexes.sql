-- +goose Up

-- Reports over a million ledger rows (README "Reports at scale",
-- internal/storage/reports.go). Each index lets a report read a small,
-- sorted slice instead of one lookup per run or contact:
--
-- A version's runs, read whole by the funnel (entries, conversions, by
-- segment, opt-outs): an index-only scan instead of a scan of every run.
-- In contact order, so that its distinct contacts are a walk of the index.
CREATE INDEX enrollments_journey_version ON enrollments (journey_id, version, contact_id)
    INCLUDE (id, started_at, ended_at);
-- Goal events by name are read through 00020's events_name: conversions
-- join a report's runs to the goal's events (a small share of all events)
-- with one hash join, instead of reading each contact's recent events
-- through events_contact.
-- A version's ledger rows by step, then contact: the contacts reached per
-- step are then a walk of the index in order (distinct without sorting
-- or hashing 400,000 rows). Replaces 00008's index, whose columns it has.
DROP INDEX messages_journey_step;
CREATE INDEX messages_journey_step ON messages (journey_id, journey_version, step_id, contact_id)
    INCLUDE (status, status_reason, channel, created_at);
-- Guardrails of the experiment report: bounced messages of a journey and
-- revocations, a small share of their tables; partial, so no other row
-- pays for them.
CREATE INDEX messages_journey_bounced ON messages (journey_id, contact_id, created_at) WHERE status = 'bounced';
CREATE INDEX consent_events_revoked ON consent_events (contact_id, occurred_at) INCLUDE (channel) WHERE status = 'revoked';

-- report_reach: per journey, contact and send step, the newest ledger row
-- and the newest one a provider accepted (a sent status). The experiment
-- report counts, per group and step, the contacts with a row of the step
-- from entering the group on, and with one sent: last_at and
-- last_sent_at no older than that. Reading this (one row per contact and
-- step) replaces grouping the journey's whole ledger per contact and step
-- at every report, which took over a second at 600,000 rows.
--
-- It is kept by the trigger below, in the ledger's own transactions, and
-- each change recomputes the row from the ledger rather than adding to
-- it: a late or out-of-order webhook (sent, then bounced, then delivered
-- refused), a redelivered one (which changes no ledger row, so fires
-- nothing; and recomputing twice gives the same row), an erasure or a
-- merge (rows deleted or moved) all leave the row equal to what the
-- ledger says. The recompute locks the row first (inserting it if
-- missing), so of two transactions changing one contact's rows of one
-- step, the later waits for the earlier to commit, then reads its change
-- (read committed: each statement of the function takes a new snapshot).
-- Rows are per contact: concurrent sends to different contacts touch
-- different rows, and one contact's sends are already serialised by the
-- gate's lock on the contact, so no counter is hot.
CREATE TABLE report_reach (
    journey_id   text NOT NULL,
    contact_id   text NOT NULL,
    step_id      text NOT NULL,
    last_at      timestamptz NOT NULL,
    last_sent_at timestamptz,
    PRIMARY KEY (journey_id, contact_id, step_id)
);
-- Erasure deletes by contact (the trigger does it too, row by row).
CREATE INDEX report_reach_contact ON report_reach (contact_id);

-- +goose StatementBegin
CREATE FUNCTION report_reach_refresh(j text, c text, st text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    last      timestamptz;
    last_sent timestamptz;
BEGIN
    -- Lock the row (creating it if missing) before reading the ledger. A
    -- row lock, not an advisory lock: a statement touching many ledger
    -- rows (a COPY, an erasure) would hold one advisory lock per key in
    -- the shared lock table, which is small.
    LOOP
        INSERT INTO report_reach (journey_id, contact_id, step_id, last_at)
        VALUES (j, c, st, '-infinity') ON CONFLICT DO NOTHING;
        PERFORM 1 FROM report_reach WHERE journey_id = j AND contact_id = c AND step_id = st FOR UPDATE;
        EXIT WHEN FOUND; -- else deleted by the transaction it waited for: again
    END LOOP;
    -- By contact only, so that the plan is always messages_contact's few
    -- rows of this contact, whatever the statistics say.
    SELECT max(created_at) FILTER (WHERE journey_id = j AND step_id = st),
           max(created_at) FILTER (WHERE journey_id = j AND step_id = st
                                     AND status IN ('sent', 'delivered', 'opened', 'clicked', 'bounced', 'complained'))
      INTO last, last_sent
      FROM messages WHERE contact_id = c;
    IF last IS NULL THEN
        DELETE FROM report_reach WHERE journey_id = j AND contact_id = c AND step_id = st;
    ELSE
        UPDATE report_reach SET last_at = last, last_sent_at = last_sent
         WHERE journey_id = j AND contact_id = c AND step_id = st
           AND (last_at, last_sent_at) IS DISTINCT FROM (last, last_sent);
    END IF;
END $$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION report_reach_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    sent text[] := ARRAY['sent', 'delivered', 'opened', 'clicked', 'bounced', 'complained'];
BEGIN
    IF TG_OP = 'UPDATE' AND (OLD.journey_id, OLD.contact_id, OLD.step_id, OLD.created_at) = (NEW.journey_id, NEW.contact_id, NEW.step_id, NEW.created_at)
       AND (OLD.status = ANY(sent)) = (NEW.status = ANY(sent)) THEN
        RETURN NULL; -- reserved -> in_flight, sent -> delivered -> opened...: the row's times stay
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM report_reach_refresh(OLD.journey_id, OLD.contact_id, OLD.step_id);
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT')
       AND (TG_OP = 'INSERT' OR (OLD.journey_id, OLD.contact_id, OLD.step_id) IS DISTINCT FROM (NEW.journey_id, NEW.contact_id, NEW.step_id)) THEN
        PERFORM report_reach_refresh(NEW.journey_id, NEW.contact_id, NEW.step_id);
    END IF;
    RETURN NULL;
END $$;
-- +goose StatementEnd
CREATE TRIGGER report_reach AFTER INSERT OR DELETE OR UPDATE OF status, created_at, contact_id, journey_id, step_id
    ON messages FOR EACH ROW EXECUTE FUNCTION report_reach_trigger();

INSERT INTO report_reach (journey_id, contact_id, step_id, last_at, last_sent_at)
SELECT journey_id, contact_id, step_id, max(created_at),
       max(created_at) FILTER (WHERE status IN ('sent', 'delivered', 'opened', 'clicked', 'bounced', 'complained'))
FROM messages GROUP BY 1, 2, 3;

-- +goose Down
DROP TRIGGER report_reach ON messages;
DROP FUNCTION report_reach_trigger();
DROP FUNCTION report_reach_refresh(text, text, text);
DROP TABLE report_reach;
DROP INDEX messages_journey_step;
CREATE INDEX messages_journey_step ON messages (journey_id, journey_version, step_id)
    INCLUDE (status, status_reason, channel, contact_id, created_at);
DROP INDEX consent_events_revoked;
DROP INDEX messages_journey_bounced;
DROP INDEX enrollments_journey_version;

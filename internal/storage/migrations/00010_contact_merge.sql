-- +goose Up

-- Contact merge (POST /v1/contacts/{id}/merge, storage.MergeContacts). The
-- absorbed contact's row is kept as a tombstone: merged_into names the
-- survivor, merged_at says when. Its identifiers that the survivor lacked
-- move to the survivor; the others stay on the tombstone as aliases, so the
-- unique indexes keep anyone else from taking them and a lookup by one of
-- them resolves to the survivor. Everything else the absorbed contact had
-- (events, ledger, decisions, suppressions, ended runs) moves to the
-- survivor; its own consent history and its runs that were active stay on
-- the tombstone, which goes when the survivor is erased (and, as a backstop,
-- with the survivor's row: ON DELETE CASCADE).
ALTER TABLE contacts
    ADD COLUMN merged_into text REFERENCES contacts(id) ON DELETE CASCADE,
    ADD COLUMN merged_at   timestamptz,
    ADD CONSTRAINT contacts_merged CHECK ((merged_into IS NULL) = (merged_at IS NULL) AND merged_into <> id);
-- A tombstone whose identifiers all moved to the survivor has none left.
ALTER TABLE contacts DROP CONSTRAINT contacts_has_identifier;
ALTER TABLE contacts ADD CONSTRAINT contacts_has_identifier
    CHECK (merged_into IS NOT NULL OR external_id IS NOT NULL OR email IS NOT NULL OR phone IS NOT NULL);
CREATE INDEX contacts_merged_into ON contacts (merged_into) WHERE merged_into IS NOT NULL;

-- Exit requests now come from support or from a merge. code is the reason
-- code the run is told (model.ExitSupport, model.ExitMerged); reason keeps
-- the words, which stay in PostgreSQL.
ALTER TABLE exit_requests ADD COLUMN code text NOT NULL DEFAULT 'support_exit'
    CHECK (code IN ('support_exit', 'merged'));

-- +goose Down
ALTER TABLE exit_requests DROP COLUMN code;
DROP INDEX contacts_merged_into;
DELETE FROM contacts WHERE merged_into IS NOT NULL;
ALTER TABLE contacts DROP CONSTRAINT contacts_has_identifier;
ALTER TABLE contacts ADD CONSTRAINT contacts_has_identifier
    CHECK (external_id IS NOT NULL OR email IS NOT NULL OR phone IS NOT NULL);
ALTER TABLE contacts DROP CONSTRAINT contacts_merged, DROP COLUMN merged_at, DROP COLUMN merged_into;

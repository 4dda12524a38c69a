-- +goose Up

-- Ad audiences (internal/audience, README "Ad audiences"): an audience is
-- one list on one ad platform (a Meta Custom Audience, a Google Customer
-- Match user list, a LinkedIn DMP segment). Journeys ask for a contact to
-- be added or removed (the audience step); one sync workflow per audience
-- applies what is pending in batches.
CREATE TABLE audiences (
    id           text PRIMARY KEY,
    name         text NOT NULL,
    destination  text NOT NULL CHECK (destination IN ('meta', 'google', 'linkedin')),
    -- The platform's id of the list (Meta's audience id, Google's user
    -- list id, LinkedIn's DMP segment id).
    external_id  text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- One row per contact and audience: what is wanted (desired) and what the
-- platform was last told (synced). A row is pending while they differ.
-- Adds need ads consent and no suppression when they are applied, not
-- only when they were asked for; removals always go through.
CREATE TABLE audience_members (
    audience_id  text NOT NULL REFERENCES audiences(id) ON DELETE CASCADE,
    contact_id   text NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    desired      text NOT NULL CHECK (desired IN ('add', 'remove')),
    -- Why: "journey:<journey>/<step>", "ads_consent_revoked", "suppressed:<reason>"...
    desired_by   text NOT NULL,
    desired_at   timestamptz NOT NULL DEFAULT now(),
    synced       text NOT NULL DEFAULT '' CHECK (synced IN ('', 'add', 'remove')),
    synced_at    timestamptz,
    -- The last batch's result for the member: applied, or rejected:<why>
    -- (then it is not retried until asked for again).
    last_result  text NOT NULL DEFAULT '',
    PRIMARY KEY (audience_id, contact_id)
);
CREATE INDEX audience_members_pending ON audience_members (audience_id, desired) WHERE desired <> synced;
CREATE INDEX audience_members_contact ON audience_members (contact_id);

-- Every add and remove per contact and audience, with its batch and what
-- came of it: the audit trail `tutti contact audiences` shows.
CREATE TABLE audience_ledger (
    id           bigserial PRIMARY KEY,
    audience_id  text NOT NULL REFERENCES audiences(id) ON DELETE CASCADE,
    contact_id   text NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    action       text NOT NULL CHECK (action IN ('add', 'remove')),
    batch_id     text NOT NULL,
    -- applied, skipped:<why> (an add not allowed), rejected:<why> (an
    -- identifier the platform cannot take, or it refused the member).
    result       text NOT NULL,
    at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audience_ledger_contact ON audience_ledger (contact_id, id);

-- +goose Down
DROP TABLE audience_ledger;
DROP TABLE audience_members;
DROP TABLE audiences;

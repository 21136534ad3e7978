-- Schema version 2: API tokens of `keytrail serve`.
--
-- A token is shown once, when it is made (`keytrail token create`); the
-- store keeps only the SHA-256 of it (hex), so a copy of the database
-- lets nobody in. `role` is `viewer`, `triager` or `admin`; `name` is who
-- the token acts as (the actor of the audit trail). A revoked token keeps
-- its row, with `revoked_at`, so the audit trail's actors stay explained.
CREATE TABLE api_tokens (
    id {{ID}},
    token_sha256 TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
){{STRICT}};

-- Schema version 8: the dashboard's browser sessions of `keytrail serve`,
-- in the store, so that a restart of serve, or several serve instances
-- behind one address, keep them.
--
-- A session is known by the SHA-256 of its random id (the cookie holds the
-- id; a copy of the database lets nobody in), acts with the API token it
-- was opened with (a revoked token ends it), carries the CSRF token its
-- changes must send, and expires.
CREATE TABLE sessions (
    id_sha256 TEXT PRIMARY KEY,
    token_id {{INT}} NOT NULL REFERENCES api_tokens (id) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
){{STRICT}};
CREATE INDEX sessions_expires ON sessions (expires_at);

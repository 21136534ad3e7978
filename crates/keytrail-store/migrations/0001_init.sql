-- Schema version 1: runs, findings, where each target saw them, their
-- locations, and triage (comments and the audit trail).
--
-- One file for SQLite and PostgreSQL. The migration runner replaces three
-- tokens before running it:
--   {{ID}}      an integer primary key the database assigns
--               (SQLite: INTEGER PRIMARY KEY; PostgreSQL: BIGINT GENERATED
--               BY DEFAULT AS IDENTITY PRIMARY KEY)
--   {{INT}}     a 64-bit integer (SQLite: INTEGER; PostgreSQL: BIGINT)
--   {{STRICT}}  SQLite's STRICT table option (column types enforced);
--               nothing on PostgreSQL, whose types always are.
-- Times are text, RFC 3339 in UTC with microseconds
-- (`2026-12-07T02:30:00.000000Z`), so they sort as strings in both.
-- No column holds a secret: fingerprints, redacted forms and metadata only.

-- Key/value facts about the database; `schema_version` is written by the
-- migration runner in the same transaction as each migration.
CREATE TABLE keytrail_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
){{STRICT}};

-- One row per recorded command run. `run_key` makes recording idempotent:
-- a job that runs twice with the same key records one run.
CREATE TABLE runs (
    id {{ID}},
    run_key TEXT NOT NULL UNIQUE,
    command TEXT NOT NULL,
    target TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    keytrail_version TEXT NOT NULL,
    -- 1 when the run read everything it was asked to with its whole rule
    -- set: only a complete run marks what it did not see as fixed.
    complete {{INT}} NOT NULL CHECK (complete IN (0, 1)),
    findings {{INT}} NOT NULL
){{STRICT}};
CREATE INDEX runs_target ON runs (target, started_at);

-- One row per fingerprint (rule and secret), whatever the run or target.
CREATE TABLE findings (
    id {{ID}},
    fingerprint TEXT NOT NULL UNIQUE,
    -- What produced it: `secret` (scan, import). Room for posture and
    -- detect records later.
    kind TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    rule_name TEXT NOT NULL,
    severity TEXT NOT NULL
        CHECK (severity IN ('info', 'low', 'medium', 'high', 'critical')),
    -- 0 (info) to 4 (critical), for ordering and `--min-severity` filters.
    severity_rank {{INT}} NOT NULL,
    confidence TEXT NOT NULL CHECK (confidence IN ('low', 'medium', 'high')),
    secret_redacted TEXT NOT NULL,
    -- JSON object: context, notes, remediation, verification, blast_radius.
    detail TEXT NOT NULL,
    status TEXT NOT NULL
        CHECK (status IN ('open', 'acknowledged', 'false_positive',
                          'accepted_risk', 'revoked', 'fixed')),
    assignee TEXT,
    owner TEXT,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    first_run {{INT}} NOT NULL REFERENCES runs (id),
    last_run {{INT}} NOT NULL REFERENCES runs (id),
    fixed_at TEXT,
    -- Optimistic concurrency: every change adds one; a triage that names
    -- the version it read fails if someone changed the finding since.
    version {{INT}} NOT NULL,
    updated_at TEXT NOT NULL
){{STRICT}};
CREATE INDEX findings_status ON findings (status, severity_rank);
CREATE INDEX findings_rule ON findings (rule_id);
CREATE INDEX findings_last_seen ON findings (last_seen);
CREATE INDEX findings_assignee ON findings (assignee);
CREATE INDEX findings_owner ON findings (owner);

-- Where (which scanned target) a finding was seen, and when it stopped
-- being seen there.
CREATE TABLE finding_targets (
    finding_id {{INT}} NOT NULL REFERENCES findings (id) ON DELETE CASCADE,
    target TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    last_run {{INT}} NOT NULL REFERENCES runs (id),
    fixed_at TEXT,
    PRIMARY KEY (finding_id, target)
){{STRICT}};
CREATE INDEX finding_targets_target ON finding_targets (target, last_run);

-- Every place a finding was seen. `location_key` is the SHA-256 of the
-- location's identity (path, line, column, offset, source and origin), so
-- the same place recorded twice is one row.
CREATE TABLE locations (
    finding_id {{INT}} NOT NULL REFERENCES findings (id) ON DELETE CASCADE,
    location_key TEXT NOT NULL,
    path TEXT NOT NULL,
    line {{INT}} NOT NULL,
    col {{INT}} NOT NULL,
    source TEXT NOT NULL,
    -- The location as JSON (its snippet has the secret masked).
    detail TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    PRIMARY KEY (finding_id, location_key)
){{STRICT}};
CREATE INDEX locations_path ON locations (path);

CREATE TABLE comments (
    id {{ID}},
    finding_id {{INT}} NOT NULL REFERENCES findings (id) ON DELETE CASCADE,
    author TEXT NOT NULL,
    created_at TEXT NOT NULL,
    body TEXT NOT NULL
){{STRICT}};
CREATE INDEX comments_finding ON comments (finding_id, id);

-- Every change of a finding's triage fields: who, when, before, after.
-- `field` is status, assignee, owner or comment; `version` is the
-- finding's version after the change.
CREATE TABLE audit (
    id {{ID}},
    finding_id {{INT}} NOT NULL REFERENCES findings (id) ON DELETE CASCADE,
    actor TEXT NOT NULL,
    at TEXT NOT NULL,
    field TEXT NOT NULL,
    before TEXT,
    after TEXT,
    version {{INT}} NOT NULL
){{STRICT}};
CREATE INDEX audit_finding ON audit (finding_id, id);

-- Schema version 10: recurring scans (`keytrail schedule`).
--
-- A schedule is one target submitted as a job every interval by
-- `keytrail schedule run`. `spec` is the job's target as the queue carries
-- it (JSON, `{"type", "value"}`), `target` the target as its runs are
-- recorded (one schedule per kind and target). A firing is claimed by a
-- conditional update of `next_due` (the due time read must still be
-- there), and its job key is made from the schedule and that due time, so
-- two schedulers firing the same due time submit one job.
--
-- `cursor` is what the schedule's last successful run saw (JSON: the tips
-- of a repository's refs, an image's manifest digest), written by the
-- worker that ran it: the next job scans only what changed since.
CREATE TABLE schedules (
    id {{ID}},
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    spec TEXT NOT NULL,
    every_seconds {{INT}} NOT NULL CHECK (every_seconds > 0),
    next_due TEXT NOT NULL,
    enabled {{INT}} NOT NULL,
    created_at TEXT NOT NULL,
    -- The latest firing: when, and the job it submitted (or found active).
    last_fired_at TEXT,
    last_job_key TEXT,
    -- The latest job of the schedule that succeeded, and what it did
    -- (`scanned 3 new commit(s)`, `unchanged: sha256:…`).
    last_success_at TEXT,
    last_success_job TEXT,
    last_outcome TEXT,
    cursor TEXT
){{STRICT}};
CREATE UNIQUE INDEX schedules_target ON schedules (kind, target);
CREATE INDEX schedules_due ON schedules (next_due);

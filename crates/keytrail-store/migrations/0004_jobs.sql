-- Schema version 4: the jobs of distributed runs (`keytrail submit`,
-- `keytrail worker`) and the workers' heartbeats.
--
-- A job is one unit of work put on the queue (NATS JetStream): one scan
-- target. The queue carries it and its deliveries; this table is what
-- people and `keytrail serve` read (`keytrail jobs`). `job_key` is the
-- job's identity everywhere: the JetStream message id (`Nats-Msg-Id`,
-- so the queue drops a duplicate submission) and the `run_key` of the
-- run its worker records (so a job that runs twice records once).
CREATE TABLE jobs (
    id {{ID}},
    job_key TEXT NOT NULL UNIQUE,
    -- What to do: `scan`.
    kind TEXT NOT NULL,
    -- What to do it on, as the run is recorded (`/srv/repo`,
    -- `git:https://…`, `image:registry/app:1.2`).
    target TEXT NOT NULL,
    -- queued (waiting, or waiting for another try), running, done, failed
    -- (dead-lettered after its last try; `error` says why).
    state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
    -- Deliveries so far (the queue's count: a worker that died mid-job
    -- counts too).
    attempts {{INT}} NOT NULL,
    -- The worker of the latest attempt.
    worker TEXT,
    -- Why the latest attempt failed.
    error TEXT,
    submitted_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    -- The run it recorded, and the findings that run saw.
    run_id {{INT}} REFERENCES runs (id),
    findings {{INT}}
){{STRICT}};
CREATE INDEX jobs_state ON jobs (state, id);
-- At most one job per kind and target waits or runs: a second submission
-- of the same target is the same job (both databases have partial indexes).
CREATE UNIQUE INDEX jobs_active ON jobs (kind, target) WHERE state IN ('queued', 'running');

-- One row per worker process: its heartbeat (every few seconds while it
-- lives), what it runs now and what it has done.
CREATE TABLE workers (
    name TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid {{INT}} NOT NULL,
    started_at TEXT NOT NULL,
    heartbeat_at TEXT NOT NULL,
    -- The job it runs now, if any.
    job_key TEXT,
    jobs_done {{INT}} NOT NULL,
    jobs_failed {{INT}} NOT NULL
){{STRICT}};

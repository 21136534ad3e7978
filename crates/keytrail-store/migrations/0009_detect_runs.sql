-- Schema version 9: distributed detection (`keytrail submit detect`, run by
-- `keytrail worker`; docs/detect-distributed.md).
--
-- A run is a set of log files detected in three stages: route jobs split the
-- files by identity onto the queue, one partition job per partition of the
-- identities runs an engine over its share, one key job per partition of the
-- access key ids joins key creations with first uses. Runs of one chain carry
-- the engines' state from one to the next (checkpoints), as the runs of
-- `keytrail detect --state` do.
CREATE TABLE detect_runs (
    run TEXT PRIMARY KEY,
    -- The chain's name: runs of one chain continue each other's state.
    chain TEXT NOT NULL,
    -- The chain's run before this one ('' for the first).
    previous TEXT NOT NULL,
    -- Partitions of the identities (and of the access key ids).
    partitions {{INT}} NOT NULL,
    -- Route jobs.
    routes {{INT}} NOT NULL,
    -- The engine's settings (JSON: learning period, rules, IP intelligence).
    settings TEXT NOT NULL,
    -- What was submitted, as the user named it.
    target TEXT NOT NULL,
    created_at TEXT NOT NULL
){{STRICT}};
-- A chain is a line: every run has at most one next run.
CREATE UNIQUE INDEX detect_runs_next ON detect_runs (chain, previous);

-- The log files of each run (and so of each chain: a later run of the chain
-- leaves out the files an earlier one read with the same size), with the
-- route job that reads them.
CREATE TABLE detect_files (
    chain TEXT NOT NULL,
    name TEXT NOT NULL,
    size {{INT}} NOT NULL,
    run TEXT NOT NULL,
    route {{INT}} NOT NULL,
    PRIMARY KEY (chain, name)
){{STRICT}};
CREATE INDEX detect_files_route ON detect_files (run, route);

-- Steps done: `route:N`, `part:N`, `keys:N`, with the events they handled.
CREATE TABLE detect_steps (
    run TEXT NOT NULL,
    step TEXT NOT NULL,
    events {{INT}} NOT NULL,
    done_at TEXT NOT NULL,
    PRIMARY KEY (run, step)
){{STRICT}};

-- The state each partition's engine reached, per chain: `part:N` and
-- `keys:N`, and the run that reached it.
CREATE TABLE detect_checkpoints (
    chain TEXT NOT NULL,
    step TEXT NOT NULL,
    run TEXT NOT NULL,
    state TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (chain, step)
){{STRICT}};

-- Every account's earliest successful call in every region, gathered by the
-- route jobs: what one identity's partition needs to know of the account.
CREATE TABLE detect_regions (
    chain TEXT NOT NULL,
    account TEXT NOT NULL,
    region TEXT NOT NULL,
    first_ms {{INT}} NOT NULL,
    PRIMARY KEY (chain, account, region)
){{STRICT}};

//! Jobs of distributed runs and the heartbeats of their workers (schema
//! version 4). The queue (NATS JetStream, `keytrail-worker`) carries the
//! jobs and their deliveries; the store keeps what people read: each job's
//! state, tries and error, which run it recorded, and which workers live.
//!
//! A job's `job_key` is its identity everywhere: the queue's message id
//! and the `run_key` of the run its worker records, so a job that runs
//! twice records one run. At most one job per kind and target is queued
//! or running (a unique partial index): submitting a target again while
//! its job waits is the same job.

use crate::db::{Row, Val};
use crate::error::{ErrorKind, StoreError};
use crate::{Store, now};
use serde::Serialize;
use std::fmt;

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for a worker (again, after a failed try).
    Queued,
    /// A worker runs it.
    Running,
    /// Done: its run is recorded.
    Done,
    /// Failed on its last try and dead-lettered.
    Failed,
}

impl JobState {
    /// Every state, in the order a job goes through them.
    pub const ALL: [JobState; 4] = [
        JobState::Queued,
        JobState::Running,
        JobState::Done,
        JobState::Failed,
    ];

    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Failed => "failed",
        }
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for JobState {
    type Err = String;
    fn from_str(s: &str) -> Result<JobState, String> {
        JobState::ALL
            .into_iter()
            .find(|j| j.as_str() == s)
            .ok_or_else(|| format!("unknown job state `{s}` (queued, running, done or failed)"))
    }
}

/// A job as the store holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Job {
    /// Row id (submission order).
    pub id: i64,
    /// Its identity: the queue's message id and its run's `run_key`.
    pub job_key: String,
    /// What to do (`scan`).
    pub kind: String,
    /// What to do it on, as its run is recorded.
    pub target: String,
    /// Where it is.
    pub state: JobState,
    /// Deliveries so far.
    pub attempts: i64,
    /// The worker of the latest try.
    pub worker: Option<String>,
    /// Why the latest try failed.
    pub error: Option<String>,
    /// When it was submitted (RFC 3339 UTC).
    pub submitted_at: String,
    /// When its latest try started.
    pub started_at: Option<String>,
    /// When it was done or failed for good.
    pub finished_at: Option<String>,
    /// The run it recorded.
    pub run_id: Option<i64>,
    /// The findings that run saw.
    pub findings: Option<i64>,
}

/// A job to submit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    /// Its identity (the caller makes it; `keytrail-worker` derives it
    /// from kind, target and submission).
    pub job_key: String,
    /// What to do.
    pub kind: String,
    /// What to do it on.
    pub target: String,
}

/// What submitting a job did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    /// The job: the new one, or the one already there.
    pub job: Job,
    /// False when a job of that key, or a queued or running job of the
    /// same kind and target, was there already.
    pub created: bool,
}

/// Which jobs [`Store::jobs`] lists, newest first.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    /// Only these states (any when empty).
    pub states: Vec<JobState>,
    /// Only this kind.
    pub kind: Option<String>,
    /// At most this many.
    pub limit: Option<usize>,
}

/// A worker's heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkerBeat {
    /// Its name (unique per process: host and pid by default).
    pub name: String,
    /// Its host.
    pub host: String,
    /// Its process id.
    pub pid: i64,
    /// When it started.
    pub started_at: String,
    /// Its last heartbeat (set by [`Store::worker_beat`]).
    pub heartbeat_at: String,
    /// The job it runs now.
    pub job_key: Option<String>,
    /// Jobs it finished.
    pub jobs_done: i64,
    /// Tries of jobs that failed on it.
    pub jobs_failed: i64,
}

/// Counts of jobs by state, and the throughput since a time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct JobCounts {
    /// Jobs waiting.
    pub queued: i64,
    /// Jobs running.
    pub running: i64,
    /// Jobs done.
    pub done: i64,
    /// Jobs failed for good.
    pub failed: i64,
    /// Jobs done at or after the `since` time asked for.
    pub done_since: i64,
    /// Findings their runs saw.
    pub findings_since: i64,
}

const JOB_COLUMNS: &str = "id, job_key, kind, target, state, attempts, worker, error, submitted_at, \
     started_at, finished_at, run_id, findings";

fn job_of(r: &Row, shown: &str) -> Result<Job, StoreError> {
    Ok(Job {
        id: r.int(0),
        job_key: r.text(1),
        kind: r.text(2),
        target: r.text(3),
        state: r.text(4).parse().map_err(|e: String| {
            StoreError::new(ErrorKind::Corrupt, format!("{shown}: jobs: {e}"))
        })?,
        attempts: r.int(5),
        worker: r.opt_text(6),
        error: r.opt_text(7),
        submitted_at: r.text(8),
        started_at: r.opt_text(9),
        finished_at: r.opt_text(10),
        run_id: r.opt_text(11).and_then(|v| v.parse().ok()),
        findings: r.opt_text(12).and_then(|v| v.parse().ok()),
    })
}

/// The time `ago` before now, RFC 3339 UTC as the store writes times (for
/// "done in the last five minutes", "a heartbeat in the last 30 s").
pub fn time_ago(ago: std::time::Duration) -> String {
    let t: chrono::DateTime<chrono::Utc> = (std::time::SystemTime::now() - ago).into();
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Errors are short and full sentences are long: a job's error is kept to
/// this many bytes.
const MAX_ERROR: usize = 2000;

fn clip(text: &str) -> String {
    if text.len() <= MAX_ERROR {
        return text.to_string();
    }
    let mut end = MAX_ERROR;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

impl Store {
    /// Submit a job, once: a job with the same key, or a queued or running
    /// job of the same kind and target, is returned instead of a new one.
    pub fn submit_job(&mut self, new: &NewJob) -> Result<Submitted, StoreError> {
        if new.job_key.is_empty() || new.kind.is_empty() || new.target.is_empty() {
            return Err(StoreError::new(
                ErrorKind::Invalid,
                "a job needs a key, a kind and a target",
            ));
        }
        let shown = self.conn.shown();
        let at = now();
        self.conn.write(|c| {
            // Either unique index may refuse the row: the key (submitted
            // before) or one active job per kind and target.
            let inserted = c.exec(
                "INSERT INTO jobs (job_key, kind, target, state, attempts, submitted_at) \
                 VALUES (?, ?, ?, 'queued', 0, ?) ON CONFLICT DO NOTHING",
                &[
                    Val::from(new.job_key.as_str()),
                    Val::from(new.kind.as_str()),
                    Val::from(new.target.as_str()),
                    Val::from(at.as_str()),
                ],
            )?;
            let by_key = c.query(
                &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE job_key = ?"),
                &[Val::from(new.job_key.as_str())],
            )?;
            if let Some(r) = by_key.first() {
                return Ok(Submitted {
                    job: job_of(r, &shown)?,
                    created: inserted == 1,
                });
            }
            let active = c.query(
                &format!(
                    "SELECT {JOB_COLUMNS} FROM jobs WHERE kind = ? AND target = ? \
                     AND state IN ('queued', 'running')"
                ),
                &[Val::from(new.kind.as_str()), Val::from(new.target.as_str())],
            )?;
            match active.first() {
                Some(r) => Ok(Submitted {
                    job: job_of(r, &shown)?,
                    created: false,
                }),
                None => Err(StoreError::new(
                    ErrorKind::Other,
                    format!(
                        "{shown}: job `{}` was neither recorded nor found",
                        new.job_key
                    ),
                )),
            }
        })
    }

    /// The job with this key.
    pub fn job(&mut self, job_key: &str) -> Result<Option<Job>, StoreError> {
        let shown = self.conn.shown();
        self.conn
            .query(
                &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE job_key = ?"),
                &[Val::from(job_key)],
            )?
            .first()
            .map(|r| job_of(r, &shown))
            .transpose()
    }

    /// Jobs, newest first.
    pub fn jobs(&mut self, filter: &JobFilter) -> Result<Vec<Job>, StoreError> {
        let shown = self.conn.shown();
        let mut sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE 1 = 1");
        let mut params = Vec::new();
        if !filter.states.is_empty() {
            sql.push_str(&format!(
                " AND state IN ({})",
                vec!["?"; filter.states.len()].join(", ")
            ));
            params.extend(filter.states.iter().map(|s| Val::from(s.as_str())));
        }
        if let Some(k) = &filter.kind {
            sql.push_str(" AND kind = ?");
            params.push(Val::from(k.as_str()));
        }
        sql.push_str(" ORDER BY id DESC");
        if let Some(n) = filter.limit {
            sql.push_str(&format!(" LIMIT {n}"));
        }
        self.conn
            .query(&sql, &params)?
            .iter()
            .map(|r| job_of(r, &shown))
            .collect()
    }

    /// A worker starts try `attempt` of a job. A job that is done or failed
    /// already (its acknowledgement was lost) is returned unchanged: the
    /// caller acknowledges it without running it again. `None`: no such job.
    pub fn job_started(
        &mut self,
        job_key: &str,
        worker: &str,
        attempt: i64,
    ) -> Result<Option<Job>, StoreError> {
        let at = now();
        self.conn.exec(
            "UPDATE jobs SET state = 'running', attempts = ?, worker = ?, started_at = ? \
             WHERE job_key = ? AND state IN ('queued', 'running')",
            &[
                Val::Int(attempt),
                Val::from(worker),
                Val::from(at.as_str()),
                Val::from(job_key),
            ],
        )?;
        self.job(job_key)
    }

    /// A job's run is recorded (under `run_key` = the job's key): the job
    /// is done, with that run and its findings.
    pub fn job_done(&mut self, job_key: &str, worker: &str) -> Result<Option<Job>, StoreError> {
        let at = now();
        self.conn.write(|c| {
            c.exec(
                "UPDATE jobs SET state = 'done', worker = ?, error = NULL, finished_at = ?, \
                 run_id = (SELECT id FROM runs WHERE run_key = ?), \
                 findings = (SELECT findings FROM runs WHERE run_key = ?) \
                 WHERE job_key = ? AND state IN ('queued', 'running')",
                &[
                    Val::from(worker),
                    Val::from(at.as_str()),
                    Val::from(job_key),
                    Val::from(job_key),
                    Val::from(job_key),
                ],
            )?;
            c.exec(
                "UPDATE workers SET jobs_done = jobs_done + 1, job_key = NULL WHERE name = ?",
                &[Val::from(worker)],
            )?;
            Ok(())
        })?;
        self.job(job_key)
    }

    /// Try `attempt` of a job failed with `error`: it waits for another
    /// try, or, when `last`, it failed for good.
    pub fn job_failed(
        &mut self,
        job_key: &str,
        worker: &str,
        attempt: i64,
        error: &str,
        last: bool,
    ) -> Result<Option<Job>, StoreError> {
        let at = now();
        let state = if last { "failed" } else { "queued" };
        let finished = last.then_some(at.as_str());
        self.conn.write(|c| {
            c.exec(
                "UPDATE jobs SET state = ?, attempts = ?, worker = ?, error = ?, finished_at = ? \
                 WHERE job_key = ? AND state IN ('queued', 'running')",
                &[
                    Val::from(state),
                    Val::Int(attempt),
                    Val::from(worker),
                    Val::from(clip(error)),
                    Val::from(finished),
                    Val::from(job_key),
                ],
            )?;
            c.exec(
                "UPDATE workers SET jobs_failed = jobs_failed + 1, job_key = NULL WHERE name = ?",
                &[Val::from(worker)],
            )?;
            Ok(())
        })?;
        self.job(job_key)
    }

    /// Record a worker's heartbeat (now), with what it runs.
    pub fn worker_beat(
        &mut self,
        name: &str,
        host: &str,
        pid: i64,
        started_at: &str,
        job_key: Option<&str>,
    ) -> Result<(), StoreError> {
        let at = now();
        self.conn.exec(
            "INSERT INTO workers (name, host, pid, started_at, heartbeat_at, job_key, jobs_done, jobs_failed) \
             VALUES (?, ?, ?, ?, ?, ?, 0, 0) \
             ON CONFLICT (name) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, job_key = excluded.job_key",
            &[
                Val::from(name),
                Val::from(host),
                Val::Int(pid),
                Val::from(started_at),
                Val::from(at.as_str()),
                Val::from(job_key),
            ],
        )?;
        Ok(())
    }

    /// Every worker that ever beat, latest heartbeat first.
    pub fn workers(&mut self) -> Result<Vec<WorkerBeat>, StoreError> {
        Ok(self
            .conn
            .query(
                "SELECT name, host, pid, started_at, heartbeat_at, job_key, jobs_done, jobs_failed \
                 FROM workers ORDER BY heartbeat_at DESC, name",
                &[],
            )?
            .into_iter()
            .map(|r| WorkerBeat {
                name: r.text(0),
                host: r.text(1),
                pid: r.int(2),
                started_at: r.text(3),
                heartbeat_at: r.text(4),
                job_key: r.opt_text(5),
                jobs_done: r.int(6),
                jobs_failed: r.int(7),
            })
            .collect())
    }

    /// Jobs by state, and those done at or after `since` (RFC 3339 UTC)
    /// with the findings their runs saw.
    pub fn job_counts(&mut self, since: &str) -> Result<JobCounts, StoreError> {
        let mut counts = JobCounts::default();
        for r in self
            .conn
            .query("SELECT state, COUNT(*) FROM jobs GROUP BY state", &[])?
        {
            let n = r.int(1);
            match r.text(0).as_str() {
                "queued" => counts.queued = n,
                "running" => counts.running = n,
                "done" => counts.done = n,
                "failed" => counts.failed = n,
                _ => {}
            }
        }
        if let Some(r) = self
            .conn
            .query(
                "SELECT COUNT(*), CAST(COALESCE(SUM(findings), 0) AS BIGINT) FROM jobs \
                 WHERE state = 'done' AND finished_at >= ?",
                &[Val::from(since)],
            )?
            .first()
        {
            counts.done_since = r.int(0);
            counts.findings_since = r.int(1);
        }
        Ok(counts)
    }
}

//! keytrail on many machines: jobs on a NATS JetStream work queue and
//! their state in the store (PostgreSQL when workers run on several
//! machines). Owns the queue and the worker loop, not what a job does:
//! the front-end (the CLI) hands a [`Runner`] that runs the same session
//! as its own command (`keytrail scan --db` for a scan job; `collect aws
//! --role-arn` then `posture --db` for a posture job) and records the run
//! under the job's key.
//!
//! ```text
//! keytrail submit ──▶ store: jobs row (queued; one per kind and target while active)
//!                 └─▶ JetStream KEYTRAIL_JOBS (work queue, Nats-Msg-Id = job key)
//! keytrail worker ◀── durable pull consumer (explicit ack, ack wait, max deliver)
//!                 ──▶ store: running → Runner (progress heartbeats meanwhile)
//!                 ──▶ store: run recorded under run_key = job key, job done → ack
//!                 └─▶ on the last failed try: KEYTRAIL_DEAD (the reason in headers) → term
//! ```
//!
//! - [`job`]: the job model (kind, target, key) and how targets are named.
//! - [`queue`]: the streams, the consumer, publishing and dead letters.
//! - [`worker`]: the loop, the [`Runner`] a front-end implements and the
//!   [`Event`]s it is told about.
//! - [`schedule`]: recurring scans, the store's due schedules fired as
//!   jobs (once per due time, whatever the number of schedulers).
//!
//! The functions here are synchronous, each on a runtime of its own, so
//! front-ends stay synchronous.

pub mod events;
pub mod job;
pub mod queue;
pub mod schedule;
pub mod worker;

pub use events::{Chunk, EventBus};
pub use job::{Cursor, DetectChain, Job, JobKind, ScheduleRef, Target};
pub use queue::{Published, Queue, QueueConfig, dead_headers};
pub use schedule::{Fired, fire_due, schedule_job};
pub use worker::{Event, Outcome, Runner, WorkerOptions, WorkerSummary};

use keytrail_store::{NewJob, Store};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// What submitting one job did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitResult {
    /// The job as the store holds it (a new one, or the queued or running
    /// job of the same target).
    pub job: keytrail_store::Job,
    /// A new job was recorded.
    pub created: bool,
    /// Its message was published (new, or queued still: published again
    /// under the same key, which JetStream drops within its duplicate
    /// window).
    pub published: Option<Published>,
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("keytrail-worker")
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))
}

/// Submit `jobs`: each recorded in the store at `db` (once per target
/// while one is queued or running), then published on the queue.
pub fn submit(config: &QueueConfig, db: &str, jobs: &[Job]) -> Result<Vec<SubmitResult>, String> {
    // The store's client blocks: it is used outside the runtime.
    let mut store = Store::open(db).map_err(|e| e.to_string())?;
    let rt = runtime()?;
    let queue = rt.block_on(Queue::connect(config, "keytrail-submit"))?;
    let mut out = Vec::with_capacity(jobs.len());
    for job in jobs {
        out.push(submit_one(&mut store, &rt, &queue, job)?);
    }
    rt.block_on(queue.flush())?;
    Ok(out)
}

/// Submit one job: recorded in the store, then published while queued.
pub(crate) fn submit_one(
    store: &mut Store,
    rt: &tokio::runtime::Runtime,
    queue: &Queue,
    job: &Job,
) -> Result<SubmitResult, String> {
    let submitted = store
        .submit_job(&NewJob {
            job_key: job.key.clone(),
            kind: job.kind.as_str().to_string(),
            target: job.target.recorded(),
        })
        .map_err(|e| e.to_string())?;
    let published = if submitted.job.state == keytrail_store::JobState::Queued {
        // The job as recorded: a queued job of the same target keeps
        // its own key, so the queue sees a duplicate.
        let mut body = job.clone();
        body.key = submitted.job.job_key.clone();
        Some(rt.block_on(queue.publish(&body))?)
    } else {
        None
    };
    Ok(SubmitResult {
        job: submitted.job,
        created: submitted.created,
        published,
    })
}

/// Run a worker until SIGTERM or Ctrl-C (the job under way is finished
/// first) or the options' limits.
pub fn work(
    config: &QueueConfig,
    db: &str,
    runner: Arc<dyn Runner>,
    options: &WorkerOptions,
) -> Result<WorkerSummary, String> {
    let rt = runtime()?;
    let stop = Arc::new(AtomicBool::new(false));
    rt.block_on(async {
        let s = stop.clone();
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            s.store(true, Ordering::SeqCst);
        });
        #[cfg(unix)]
        {
            let s = stop.clone();
            tokio::spawn(async move {
                use tokio::signal::unix::{SignalKind, signal};
                if let Ok(mut t) = signal(SignalKind::terminate()) {
                    t.recv().await;
                    s.store(true, Ordering::SeqCst);
                }
            });
        }
        worker::work(config, db, runner, options, stop.clone()).await
    })
}

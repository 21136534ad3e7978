//! The worker loop: take one job at a time from the shared consumer, mark
//! it running in the store, run it on a blocking thread through the
//! front-end's [`Runner`] while sending progress heartbeats to JetStream,
//! then mark it done (or failed) in the store and only then acknowledge
//! it. A crash between any two steps repeats work and never loses it: an
//! unacknowledged job is delivered again after the ack wait, and its run
//! is recorded under the job's key, once.

use crate::job::Job;
use crate::queue::{Queue, QueueConfig, QueueError};
use async_nats::jetstream::AckKind;
use futures_util::StreamExt;
use keytrail_store::{ErrorKind, JobState, Store, StoreError};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What a finished job produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Findings its run saw.
    pub findings: u64,
    /// False when its run was recorded already (a job that ran twice).
    pub recorded: bool,
}

/// Runs one job: the front-end's session (the CLI's `scan --db`), which
/// records the run in the store under `run_key` = the job's key. An
/// `Err` is the reason the try failed (it is retried, then dead-lettered
/// with it).
pub trait Runner: Send + Sync + 'static {
    /// Run `job` against the store at `db`.
    fn run(&self, job: &Job, db: &str) -> Result<Outcome, String>;

    /// Told what the worker does (the CLI prints it); default: nothing.
    fn event(&self, event: &Event<'_>) {
        let _ = event;
    }
}

/// What a worker tells its front-end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<'a> {
    /// It listens on the queue.
    Ready {
        /// Its name.
        worker: &'a str,
        /// The consumer's ack wait (the first worker's setting).
        ack_wait: Duration,
        /// The consumer's deliveries before dead-lettering.
        max_deliver: i64,
    },
    /// A job starts (try `attempt`).
    Started {
        /// The job.
        job: &'a Job,
        /// Its delivery count.
        attempt: i64,
    },
    /// A job is done.
    Done {
        /// The job.
        job: &'a Job,
        /// What it produced.
        outcome: &'a Outcome,
    },
    /// A job was done already (its acknowledgement was lost): acknowledged
    /// without running it again.
    AlreadyDone {
        /// Its key.
        key: &'a str,
    },
    /// A try failed; it will be retried.
    Retry {
        /// The job's key.
        key: &'a str,
        /// The try.
        attempt: i64,
        /// Why.
        error: &'a str,
    },
    /// A job failed for good and was dead-lettered.
    DeadLettered {
        /// The job's key (none for a message that is not a job).
        key: Option<&'a str>,
        /// Why.
        error: &'a str,
    },
    /// The queue or the store failed; the worker carries on.
    Trouble {
        /// What failed.
        error: &'a str,
    },
}

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Its name (unique per process) [default: `host-pid`].
    pub name: String,
    /// Stop after this many jobs (done, failed or dead-lettered).
    pub max_jobs: Option<u64>,
    /// Stop when the queue has been empty for this long.
    pub idle_exit: Option<Duration>,
    /// Heartbeats to the store every this often.
    pub heartbeat: Duration,
}

impl WorkerOptions {
    /// Defaults: named after the host and the process, runs until stopped,
    /// a heartbeat every 5 s.
    pub fn new() -> WorkerOptions {
        WorkerOptions {
            name: format!("{}-{}", host(), std::process::id()),
            max_jobs: None,
            idle_exit: None,
            heartbeat: Duration::from_secs(5),
        }
    }
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions::new()
    }
}

/// This machine's name (`HOSTNAME`, `/etc/hostname`, else `localhost`).
pub fn host() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| "localhost".into())
}

/// What a worker did before it stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerSummary {
    /// Jobs done.
    pub done: u64,
    /// Tries that failed (retried or dead-lettered).
    pub failed: u64,
    /// Jobs dead-lettered.
    pub dead: u64,
}

/// The store, reopened when its connection went away (a restarted
/// PostgreSQL, a dropped connection): one retry per call.
struct StoreHandle {
    location: String,
    store: Option<Store>,
}

impl StoreHandle {
    fn with<T>(
        &mut self,
        mut f: impl FnMut(&mut Store) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        for tried in [false, true] {
            if self.store.is_none() {
                self.store = Some(Store::open(&self.location)?);
            }
            let store = self.store.as_mut().expect("opened above");
            match f(store) {
                Err(e) if !tried && e.kind == ErrorKind::Unreachable => {
                    // A connection that died answers every statement with an
                    // error: open a new one and try once more.
                    self.store = None;
                }
                r => return r,
            }
        }
        unreachable!("the second try returns")
    }
}

type Shared = Arc<Mutex<StoreHandle>>;

/// Run `f` on the store on a blocking thread.
async fn on_store<T: Send + 'static>(
    store: &Shared,
    f: impl FnMut(&mut Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, String> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || {
        let mut h = store.lock().unwrap_or_else(|p| p.into_inner());
        h.with(f).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| format!("store task: {e}"))?
}

/// Work until `stop` is set, the options' limits are reached, or the
/// queue cannot be reached at start.
pub async fn work(
    config: &QueueConfig,
    db: &str,
    runner: Arc<dyn Runner>,
    options: &WorkerOptions,
    stop: Arc<AtomicBool>,
) -> Result<WorkerSummary, QueueError> {
    // The store's client blocks: it runs on the blocking pool, never on
    // the runtime's threads, and is closed there too, whatever happened.
    let store: Shared = Arc::new(Mutex::new(StoreHandle {
        location: db.to_string(),
        store: None,
    }));
    let result = work_with(config, &store, runner, options, stop).await;
    let closing = store.clone();
    let _ = tokio::task::spawn_blocking(move || {
        drop(
            closing
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .store
                .take(),
        );
    })
    .await;
    result
}

async fn work_with(
    config: &QueueConfig,
    store: &Shared,
    runner: Arc<dyn Runner>,
    options: &WorkerOptions,
    stop: Arc<AtomicBool>,
) -> Result<WorkerSummary, QueueError> {
    let name = options.name.clone();
    // The store first: a worker that cannot record anything takes no job.
    on_store(store, |st| st.schema_version()).await?;
    let queue = Queue::connect(config, &name).await?;
    let consumer = queue.consumer().await?;
    let info = consumer.cached_info().config.clone();
    let (ack_wait, max_deliver) = (info.ack_wait, info.max_deliver);
    runner.event(&Event::Ready {
        worker: &name,
        ack_wait,
        max_deliver,
    });

    // Heartbeats to the store, with the job under way.
    let current: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let started_at = keytrail_store::now();
    let beat = {
        let (store, current, name, runner) =
            (store.clone(), current.clone(), name.clone(), runner.clone());
        let every = options.heartbeat;
        tokio::spawn(async move {
            let pid = i64::from(std::process::id());
            let host = host();
            loop {
                let job = current.lock().unwrap_or_else(|p| p.into_inner()).clone();
                let (n, h, s) = (name.clone(), host.clone(), started_at.clone());
                if let Err(e) = on_store(&store, move |st| {
                    st.worker_beat(&n, &h, pid, &s, job.as_deref())
                })
                .await
                {
                    runner.event(&Event::Trouble {
                        error: &format!("heartbeat: {e}"),
                    });
                }
                tokio::time::sleep(every).await;
            }
        })
    };

    // Jobs whose every delivery went unacknowledged (their workers died
    // or were cut off: a job that kills its worker): JetStream stops
    // delivering them and says so in an advisory; they are dead-lettered
    // here. Every worker listens; the first one's dead letter counts (the
    // others find the job failed and the message gone).
    // Advisories being handled: a worker does not leave idle with one.
    let handling = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let advisories = {
        let (queue, store, runner, name, current, handling) = (
            queue.clone(),
            store.clone(),
            runner.clone(),
            name.clone(),
            current.clone(),
            handling.clone(),
        );
        let subject = format!(
            "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{}.{}",
            config.jobs_stream(),
            config.consumer()
        );
        let mut sub = queue
            .client
            .subscribe(subject)
            .await
            .map_err(|e| format!("NATS server {}: advisories: {e}", config.url))?;
        tokio::spawn(async move {
            while let Some(m) = sub.next().await {
                // One task each: an advisory for a job still running waits
                // for it without holding up the others.
                let (queue, store, runner, name, current, handling) = (
                    queue.clone(),
                    store.clone(),
                    runner.clone(),
                    name.clone(),
                    current.clone(),
                    handling.clone(),
                );
                handling.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let seen = Seen {
                        current: &current,
                        ack_wait,
                    };
                    if let Err(e) = unacknowledged(&queue, &store, &name, &seen, &m.payload).await {
                        runner.event(&Event::Trouble { error: &e });
                    }
                    handling.fetch_sub(1, Ordering::SeqCst);
                });
            }
        })
    };

    let mut summary = WorkerSummary::default();
    let mut idle_since = tokio::time::Instant::now();
    let cx = Cx {
        queue: &queue,
        store,
        runner: &runner,
        name: &name,
        ack_wait,
        max_deliver,
        current: &current,
    };
    while !stop.load(Ordering::SeqCst) {
        if options
            .max_jobs
            .is_some_and(|n| summary.done + summary.dead >= n)
        {
            break;
        }
        if let Some(idle) = options.idle_exit
            && idle_since.elapsed() >= idle
            && handling.load(Ordering::SeqCst) == 0
        {
            break;
        }
        // One job at a time: a batch of one, waited for up to a second so
        // a stop request is seen promptly.
        let batch = consumer
            .batch()
            .max_messages(1)
            .expires(Duration::from_secs(1))
            .messages()
            .await;
        let mut batch = match batch {
            Ok(b) => b,
            Err(e) => {
                runner.event(&Event::Trouble {
                    error: &format!("NATS server {}: {e}", config.url),
                });
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        while let Some(msg) = batch.next().await {
            let msg = match msg {
                Ok(m) => m,
                Err(e) => {
                    runner.event(&Event::Trouble {
                        error: &format!("NATS server {}: {e}", config.url),
                    });
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    break;
                }
            };
            cx.handle(msg, &mut summary).await;
            idle_since = tokio::time::Instant::now();
        }
    }
    beat.abort();
    advisories.abort();
    let n = name.clone();
    let _ = on_store(store, move |st| {
        st.worker_beat(&n, &host(), i64::from(std::process::id()), "", None)
    })
    .await;
    Ok(summary)
}

/// What handling a message needs.
struct Cx<'a> {
    queue: &'a Queue,
    store: &'a Shared,
    runner: &'a Arc<dyn Runner>,
    name: &'a str,
    ack_wait: Duration,
    max_deliver: i64,
    current: &'a Arc<Mutex<Option<String>>>,
}

impl Cx<'_> {
    async fn handle(&self, msg: async_nats::jetstream::Message, summary: &mut WorkerSummary) {
        let attempt = msg.info().map(|i| i.delivered).unwrap_or(1);
        let job: Job = match serde_json::from_slice(&msg.payload) {
            Ok(j) => j,
            Err(e) => {
                // Not a job: no try will make it one.
                let error = format!("not a keytrail job: {e}");
                self.dead(&msg, "unknown", None, &error, attempt).await;
                summary.dead += 1;
                return;
            }
        };
        let (key, name) = (job.key.clone(), self.name.to_string());
        let started = on_store(self.store, move |st| st.job_started(&key, &name, attempt)).await;
        match started {
            Ok(Some(j)) if matches!(j.state, JobState::Done | JobState::Failed) => {
                let _ = msg.double_ack().await;
                self.runner.event(&Event::AlreadyDone { key: &job.key });
                return;
            }
            Ok(Some(_)) => {}
            Ok(None) => {
                let error = format!(
                    "job {} is not in the store the worker records into (submitted with another --db?)",
                    job.key
                );
                self.dead(&msg, job.kind.as_str(), Some(&job.key), &error, attempt)
                    .await;
                summary.dead += 1;
                return;
            }
            Err(e) => {
                // The store is away: give the job back for later, without
                // spending its tries faster than the store comes back.
                self.runner.event(&Event::Trouble { error: &e });
                let _ = msg
                    .ack_with(AckKind::Nak(Some(Duration::from_secs(2))))
                    .await;
                tokio::time::sleep(Duration::from_secs(1)).await;
                return;
            }
        }
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(job.key.clone());
        self.runner.event(&Event::Started { job: &job, attempt });

        // Run on a blocking thread; tell JetStream the job is alive three
        // times per ack wait.
        let (runner, j, db) = (self.runner.clone(), job.clone(), self.db());
        let mut task = tokio::task::spawn_blocking(move || runner.run(&j, &db));
        let mut tick = tokio::time::interval((self.ack_wait / 3).max(Duration::from_millis(100)));
        tick.tick().await;
        let result = loop {
            tokio::select! {
                r = &mut task => break r,
                _ = tick.tick() => {
                    let _ = msg.ack_with(AckKind::Progress).await;
                }
            }
        };
        let result = match result {
            Ok(r) => r,
            Err(e) => Err(format!("the job's task panicked: {e}")),
        };
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = None;
        match result {
            Ok(outcome) => {
                let (key, name) = (job.key.clone(), self.name.to_string());
                match on_store(self.store, move |st| st.job_done(&key, &name)).await {
                    Ok(_) => {
                        // Acknowledged once recorded: a crash before this
                        // line runs the job again, and its run is not
                        // recorded twice.
                        if let Err(e) = msg.double_ack().await {
                            self.runner.event(&Event::Trouble {
                                error: &format!("acknowledging job {}: {e}", job.key),
                            });
                        }
                        summary.done += 1;
                        self.runner.event(&Event::Done {
                            job: &job,
                            outcome: &outcome,
                        });
                    }
                    Err(e) => {
                        self.runner.event(&Event::Trouble { error: &e });
                        let _ = msg
                            .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                            .await;
                    }
                }
            }
            Err(error) => {
                summary.failed += 1;
                let last = attempt >= self.max_deliver && self.max_deliver > 0;
                let (key, name, err) = (job.key.clone(), self.name.to_string(), error.clone());
                if let Err(e) = on_store(self.store, move |st| {
                    st.job_failed(&key, &name, attempt, &err, last)
                })
                .await
                {
                    self.runner.event(&Event::Trouble { error: &e });
                }
                if last {
                    self.dead(&msg, job.kind.as_str(), Some(&job.key), &error, attempt)
                        .await;
                    summary.dead += 1;
                } else {
                    self.runner.event(&Event::Retry {
                        key: &job.key,
                        attempt,
                        error: &error,
                    });
                    // Back off: one second, then two, four… at most a minute.
                    let delay = Duration::from_secs(1 << (attempt - 1).clamp(0, 6) as u32)
                        .min(Duration::from_secs(60));
                    let _ = msg.ack_with(AckKind::Nak(Some(delay))).await;
                }
            }
        }
    }

    fn db(&self) -> String {
        self.store
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .location
            .clone()
    }

    /// Dead-letter a message with the reason, then end its deliveries.
    async fn dead(
        &self,
        msg: &async_nats::jetstream::Message,
        kind: &str,
        key: Option<&str>,
        error: &str,
        attempt: i64,
    ) {
        match self
            .queue
            .dead_letter(kind, key, msg.payload.clone(), error, attempt, self.name)
            .await
        {
            Ok(()) => {
                let _ = msg.double_ack_with(AckKind::Term).await;
                self.runner.event(&Event::DeadLettered { key, error });
            }
            Err(e) => {
                // Not dead-lettered: leave it to the next try.
                self.runner.event(&Event::Trouble { error: &e });
                let _ = msg
                    .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                    .await;
            }
        }
    }
}

/// What a worker knows when a max-deliveries advisory comes: the job it
/// runs now, and the consumer's ack wait.
struct Seen<'a> {
    current: &'a Arc<Mutex<Option<String>>>,
    ack_wait: Duration,
}

/// Whether the job of an advisory is still being run by a live worker:
/// this one, or another that recorded the start of its last try less than
/// an ack wait ago (a worker that died on it stops sending progress, and
/// JetStream gives up on the message only an ack wait after the last one)
/// or that sent a heartbeat naming the job within three heartbeats.
///
/// JetStream (2.9) can send the advisory as the last delivery goes out,
/// when the message was queued for redelivery twice (a delayed Nak and an
/// expired ack wait): its job is then running, not abandoned, and its
/// worker records the outcome and dead-letters it if it fails.
async fn still_running(store: &Shared, seen: &Seen<'_>, key: &str, deliveries: i64) -> bool {
    if seen
        .current
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_deref()
        == Some(key)
    {
        return true;
    }
    let k = key.to_string();
    let Ok((Some(job), workers)) =
        on_store(store, move |st| Ok((st.job(&k)?, st.workers()?))).await
    else {
        return false;
    };
    if job.state != JobState::Running {
        return false;
    }
    let recent =
        |t: &str, within: f64| keytrail_store::seconds_since(t).is_some_and(|s| s < within);
    let started_last_try = job.attempts >= deliveries
        && job
            .started_at
            .as_deref()
            .is_some_and(|t| recent(t, seen.ack_wait.as_secs_f64()));
    let beating = workers.iter().any(|w| {
        Some(&w.name) == job.worker.as_ref()
            && w.job_key.as_deref() == Some(key)
            && recent(
                &w.heartbeat_at,
                3.0 * WorkerOptions::default().heartbeat.as_secs_f64(),
            )
    });
    started_last_try || beating
}

/// Dead-letter the job of a max-deliveries advisory: its message is read
/// from the stream by sequence, marked failed in the store, published on
/// the dead-letter subject and deleted from the work queue. A job still
/// running is waited for; one its worker finished (done, or failed and
/// dead-lettered by it) only has its message deleted.
async fn unacknowledged(
    queue: &Queue,
    store: &Shared,
    name: &str,
    seen: &Seen<'_>,
    advisory: &[u8],
) -> Result<(), String> {
    let a: serde_json::Value =
        serde_json::from_slice(advisory).map_err(|e| format!("advisory: {e}"))?;
    let seq = a["stream_seq"]
        .as_u64()
        .ok_or("advisory without stream_seq")?;
    let deliveries = a["deliveries"].as_i64().unwrap_or(0);
    let c = &queue.config;
    let stream = queue
        .js
        .get_stream(c.jobs_stream())
        .await
        .map_err(|e| format!("NATS server {}: {e}", c.url))?;
    let Ok(msg) = stream.get_raw_message(seq).await else {
        // Gone already: another worker dead-lettered it.
        return Ok(());
    };
    let mut error = format!(
        "delivered {deliveries} times without an acknowledgement: its workers died or were cut off while running it"
    );
    let job: Option<Job> = serde_json::from_slice(&msg.payload).ok();
    let (kind, key) = match &job {
        Some(j) => (j.kind.as_str(), Some(j.key.as_str())),
        None => ("unknown", None),
    };
    if let Some(k) = key {
        // The last delivery may be on its way to a worker that has not
        // recorded its start yet: give it an ack wait to do so.
        let k2 = k.to_string();
        let before = on_store(store, move |st| st.job(&k2)).await?;
        if before.is_some_and(|j| j.state == JobState::Queued && j.attempts < deliveries) {
            tokio::time::sleep(seen.ack_wait.min(Duration::from_secs(30))).await;
        }
        while still_running(store, seen, k, deliveries).await {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let k2 = k.to_string();
        let now = on_store(store, move |st| st.job(&k2)).await?;
        match now {
            Some(j) if matches!(j.state, JobState::Done | JobState::Failed) => {
                // Its worker recorded the outcome (and dead-lettered a failure).
                let _ = stream.delete_message(seq).await;
                return Ok(());
            }
            // Its last try failed and was given back, but JetStream had
            // counted the deliveries up (a message queued for redelivery
            // twice): that try's reason is the job's.
            Some(j) if j.state == JobState::Queued && j.error.is_some() => {
                error = format!(
                    "{} (its last try; JetStream stopped delivering it after {deliveries} deliveries)",
                    j.error.unwrap_or_default()
                );
            }
            _ => {}
        }
    }
    if let Some(k) = key {
        let (k, n, e) = (k.to_string(), name.to_string(), error.clone());
        on_store(store, move |st| st.job_failed(&k, &n, deliveries, &e, true)).await?;
    }
    queue
        .dead_letter(kind, key, msg.payload.clone(), &error, deliveries, name)
        .await?;
    let _ = stream.delete_message(seq).await;
    Ok(())
}

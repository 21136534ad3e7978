//! The queue and the worker loop against real servers: a nats-server with
//! JetStream started by each test on a free loopback port (with its own
//! store directory, so it can be restarted), and a PostgreSQL database
//! made and dropped by each test on the local server. The runner is the
//! test's: it records a run under the job's key as `keytrail scan --db`
//! does, or fails, so these tests see the queue's behaviour alone (the
//! CLI's tests run real scans).

use keytrail_store::{JobFilter, JobState, RunRecord, Store};
use keytrail_worker::{
    Event, Job, JobKind, Outcome, Queue, QueueConfig, Runner, Target, WorkerOptions, dead_headers,
    worker,
};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// nats-server: on PATH or where Debian puts it.
fn nats_server_binary() -> PathBuf {
    for p in ["/usr/sbin/nats-server", "/usr/bin/nats-server"] {
        if Path::new(p).is_file() {
            return p.into();
        }
    }
    if let Ok(out) = Command::new("nats-server").arg("--version").output()
        && out.status.success()
    {
        return "nats-server".into();
    }
    panic!(
        "nats-server is needed (Debian package `nats-server`; scripts/install-test-deps.sh installs it)"
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A nats-server with JetStream on a free loopback port, stopped when
/// dropped.
struct Nats {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Nats {
    fn start() -> Nats {
        let mut n = Nats {
            port: free_port(),
            dir: tempfile::tempdir().unwrap(),
            child: None,
        };
        n.launch();
        n
    }

    fn launch(&mut self) {
        let child = Command::new(nats_server_binary())
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server");
        self.child = Some(child);
        let until = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < until,
                "nats-server did not listen on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kill the server (SIGKILL) and start it again on the same port and
    /// store directory.
    fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.stop();
    }
}

const PG_ADMIN: &str = "host=127.0.0.1 port=5432 user=postgres dbname=postgres";

/// A PostgreSQL database of one test, dropped at the end.
struct Pg {
    name: String,
}

impl Pg {
    fn new() -> Pg {
        let mut r = [0u8; 4];
        rand::fill(&mut r);
        let name = format!("kt_worker_{}_{}", std::process::id(), u32::from_le_bytes(r));
        postgres::Client::connect(PG_ADMIN, postgres::NoTls)
            .expect("PostgreSQL must listen on 127.0.0.1:5432 with trust authentication for user postgres (scripts/install-test-deps.sh starts it)")
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("CREATE DATABASE");
        Pg { name }
    }
    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.name)
    }
    /// End every other connection to the database (the workers').
    fn drop_connections(&self) -> u64 {
        let mut c = postgres::Client::connect(PG_ADMIN, postgres::NoTls).unwrap();
        c.query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&self.name],
        )
        .unwrap()
        .len() as u64
    }
    fn count(&self, sql: &str) -> i64 {
        let mut c = postgres::Client::connect(
            &format!(
                "host=127.0.0.1 port=5432 user=postgres dbname={}",
                self.name
            ),
            postgres::NoTls,
        )
        .unwrap();
        c.query_one(sql, &[]).unwrap().get(0)
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(PG_ADMIN, postgres::NoTls) {
            let _ = c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// The test's runner: records a run under the job's key (as `scan --db`
/// does), or fails every try of targets whose path contains `poison`;
/// targets whose path contains `slow` take 2.5 s first.
struct TestRunner {
    events: Mutex<Vec<String>>,
    runs: Mutex<Vec<String>>,
}

impl Runner for TestRunner {
    fn run(&self, job: &Job, db: &str) -> Result<Outcome, String> {
        self.runs.lock().unwrap().push(job.key.clone());
        let target = job.target.recorded();
        if target.contains("slow") {
            std::thread::sleep(Duration::from_millis(2500));
        }
        if target.contains("poison") {
            return Err(format!("`{target}` could not be read: no such directory"));
        }
        let mut store = Store::open(db).map_err(|e| e.to_string())?;
        let mut run = RunRecord::new("scan", &target);
        run.run_key = job.key.clone();
        let sum = store
            .record_run(&run, &[], &|_| None)
            .map_err(|e| e.to_string())?;
        Ok(Outcome {
            findings: sum.seen as u64,
            recorded: sum.recorded,
        })
    }

    fn event(&self, event: &Event<'_>) {
        self.events.lock().unwrap().push(format!("{event:?}"));
    }
}

/// A worker on a thread of its own, stopped when dropped.
struct Running {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Result<keytrail_worker::WorkerSummary, String>>>,
    runner: Arc<TestRunner>,
}

impl Running {
    fn start(config: &QueueConfig, db: &str, name: &str) -> Running {
        let stop = Arc::new(AtomicBool::new(false));
        let runner = Arc::new(TestRunner {
            events: Mutex::new(Vec::new()),
            runs: Mutex::new(Vec::new()),
        });
        let (config, db, s, r) = (config.clone(), db.to_string(), stop.clone(), runner.clone());
        let mut options = WorkerOptions::new();
        options.name = name.to_string();
        options.heartbeat = Duration::from_millis(300);
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            let runner = r.clone();
            let out = rt.block_on(worker::work(&config, &db, r, &options, s));
            if let Err(e) = &out {
                runner
                    .events
                    .lock()
                    .unwrap()
                    .push(format!("work() ended: {e}"));
            }
            out.map_err(|e| e.to_string())
        });
        Running {
            stop,
            thread: Some(thread),
            runner,
        }
    }

    fn events(&self) -> String {
        self.runner.events.lock().unwrap().join("\n")
    }

    fn finish(mut self) -> keytrail_worker::WorkerSummary {
        self.stop.store(true, Ordering::SeqCst);
        self.thread
            .take()
            .unwrap()
            .join()
            .unwrap()
            .expect("the worker ran")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn config(nats: &Nats) -> QueueConfig {
    let mut c = QueueConfig::new(&nats.url());
    c.ack_wait = Duration::from_secs(2);
    c.max_deliver = 3;
    c
}

fn scan_job(path: &str) -> Job {
    Job::new(JobKind::Scan, Target::Path(path.into()), None)
}

/// Wait until `done` holds, failing with `what` and the worker's events.
fn wait_for(what: &str, secs: u64, w: Option<&Running>, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(
            !w.is_some_and(|w| w.thread.as_ref().is_some_and(|t| t.is_finished())),
            "the worker stopped while waiting for {what} (its error is what finish() returns); events:\n{}",
            w.map(|w| w.events()).unwrap_or_default()
        );
        assert!(
            Instant::now() < until,
            "timed out waiting for {what}; worker events:\n{}",
            w.map(|w| w.events()).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn state(db: &str, key: &str) -> Option<keytrail_store::Job> {
    Store::open(db).unwrap().job(key).unwrap()
}

#[test]
fn jobs_run_once_each_and_duplicate_submissions_are_dropped() {
    let nats = Nats::start();
    let pg = Pg::new();
    let cfg = config(&nats);
    let jobs = [scan_job("/srv/a"), scan_job("/srv/b")];
    let first = keytrail_worker::submit(&cfg, &pg.url(), &jobs).unwrap();
    assert!(
        first
            .iter()
            .all(|r| r.created && r.published.as_ref().is_some_and(|p| !p.duplicate))
    );
    // The same target again, with another fresh key: the store gives back
    // the queued job, and JetStream drops the message under its key.
    let again = keytrail_worker::submit(&cfg, &pg.url(), &[scan_job("/srv/a")]).unwrap();
    assert!(!again[0].created);
    assert_eq!(again[0].job.job_key, first[0].job.job_key);
    assert!(again[0].published.as_ref().unwrap().duplicate, "{again:?}");

    let w = Running::start(&cfg, &pg.url(), "w1");
    for r in &first {
        wait_for("the jobs to be done", 30, Some(&w), || {
            state(&pg.url(), &r.job.job_key).is_some_and(|j| j.state == JobState::Done)
        });
    }
    let events = w.events();
    let summary = w.finish();
    assert_eq!(summary.done, 2, "{events}");
    assert_eq!(pg.count("SELECT COUNT(*) FROM runs"), 2);
    let mut store = Store::open(&pg.url()).unwrap();
    for r in &first {
        let j = store.job(&r.job.job_key).unwrap().unwrap();
        assert_eq!(j.attempts, 1);
        assert_eq!(j.worker.as_deref(), Some("w1"));
        assert!(j.run_id.is_some() && j.findings == Some(0), "{j:?}");
    }
    // Done, the target can be submitted again: a new job.
    let later = keytrail_worker::submit(&cfg, &pg.url(), &[scan_job("/srv/a")]).unwrap();
    assert!(later[0].created && later[0].job.job_key != first[0].job.job_key);
    // The worker's heartbeat is in the store.
    let workers = store.workers().unwrap();
    assert_eq!(workers.len(), 1);
    assert_eq!(workers[0].name, "w1");
    assert_eq!(workers[0].jobs_done, 2);
    assert_eq!(
        store.jobs(&JobFilter::default()).unwrap().len(),
        3,
        "two done, one queued"
    );
}

#[test]
fn a_failing_job_is_retried_then_dead_lettered_with_its_reason() {
    let nats = Nats::start();
    let pg = Pg::new();
    let cfg = config(&nats);
    let job = scan_job("/srv/poison");
    keytrail_worker::submit(&cfg, &pg.url(), std::slice::from_ref(&job)).unwrap();
    let w = Running::start(&cfg, &pg.url(), "w1");
    // Tries after 0, 1 and 2 s of back-off.
    wait_for("the job to fail for good", 30, Some(&w), || {
        state(&pg.url(), &job.key).is_some_and(|j| j.state == JobState::Failed)
    });
    let j = state(&pg.url(), &job.key).unwrap();
    assert_eq!(j.attempts, 3);
    assert!(
        j.error.as_deref().unwrap().contains("could not be read"),
        "{j:?}"
    );
    assert!(j.finished_at.is_some());
    // Three tries; or two when JetStream (2.9) counted a retry twice (a
    // delayed Nak queued again by an expired ack wait) and one delivery was a
    // duplicate of a try already under way. Either way the job ends failed with
    // its own reason (asserted above) after max-deliver deliveries.
    let runs = w.runner.runs.lock().unwrap().len();
    assert!(runs == 3 || runs == 2, "{runs} tries");

    // The dead letter: the job's message, the reason in its headers.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let q = Queue::connect(&cfg, "test").await.unwrap();
        let client = async_nats::connect(cfg.url.as_str()).await.unwrap();
        let js = async_nats::jetstream::new(client);
        let stream = js.get_stream(cfg.dead_stream()).await.unwrap();
        let m = stream
            .get_last_raw_message_by_subject(&cfg.dead_subject("scan"))
            .await
            .unwrap();
        let h = m.headers;
        assert_eq!(h.get(dead_headers::JOB).unwrap().as_str(), job.key);
        assert_eq!(h.get(dead_headers::ATTEMPTS).unwrap().as_str(), "3");
        assert!(
            h.get(dead_headers::ERROR)
                .unwrap()
                .as_str()
                .contains("could not be read")
        );
        let body: Job = serde_json::from_slice(&m.payload).unwrap();
        assert_eq!(body, job);
        // Off the work queue: nothing left to deliver.
        let mut jobs = js.get_stream(cfg.jobs_stream()).await.unwrap();
        assert_eq!(jobs.info().await.unwrap().state.messages, 0);
        drop(q);
    });
    // A message that is not a job is dead-lettered at once.
    rt.block_on(async {
        let client = async_nats::connect(cfg.url.as_str()).await.unwrap();
        let js = async_nats::jetstream::new(client);
        js.publish(cfg.job_subject("scan"), "not json".into())
            .await
            .unwrap()
            .await
            .unwrap();
    });
    wait_for("the bad message to be dead-lettered", 20, Some(&w), || {
        w.events().contains("not a keytrail job")
    });
    let summary = w.finish();
    // The bad message and the job; the job's dead letter (checked above) is
    // the advisory handler's rather than the run's when JetStream counted a
    // retry twice.
    assert!(summary.dead == 2 || summary.dead == 1, "{summary:?}");
    assert_eq!(summary.done, 0);
}

/// JetStream 2.9 can send a max-deliveries advisory as the last delivery
/// goes out (a message queued for redelivery twice); the job is then
/// running, not abandoned. Seen in CI: the advisory's "delivered 3 times
/// without an acknowledgement" replaced the worker's own reason.
#[test]
fn a_max_deliveries_advisory_for_a_running_job_waits_for_its_worker() {
    let nats = Nats::start();
    let pg = Pg::new();
    let mut cfg = config(&nats);
    cfg.max_deliver = 1;
    let ok = scan_job("/srv/slow");
    let bad = scan_job("/srv/slow-poison");
    // The first job before the worker starts (the store and the streams
    // made once), the second while it runs.
    keytrail_worker::submit(&cfg, &pg.url(), std::slice::from_ref(&ok)).unwrap();
    let w = Running::start(&cfg, &pg.url(), "w1");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = rt.block_on(async { async_nats::connect(cfg.url.as_str()).await.unwrap() });
    let subject = format!(
        "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{}.{}",
        cfg.jobs_stream(),
        cfg.consumer()
    );
    for (seq, job) in [(1, &ok), (2, &bad)] {
        if seq == 2 {
            keytrail_worker::submit(&cfg, &pg.url(), std::slice::from_ref(job)).unwrap();
        }
        wait_for("the job to start", 20, Some(&w), || {
            state(&pg.url(), &job.key).is_some_and(|j| j.state == JobState::Running)
        });
        // The advisory JetStream sends, while the worker runs the job.
        let advisory = serde_json::json!({
            "type": "io.nats.jetstream.advisory.v1.max_deliver",
            "stream": cfg.jobs_stream(),
            "consumer": cfg.consumer(),
            "stream_seq": seq,
            "deliveries": 1,
        });
        rt.block_on(async {
            client
                .publish(subject.clone(), advisory.to_string().into())
                .await
                .unwrap();
            client.flush().await.unwrap();
        });
        wait_for("the job to end", 20, Some(&w), || {
            state(&pg.url(), &job.key)
                .is_some_and(|j| matches!(j.state, JobState::Done | JobState::Failed))
        });
    }
    // The worker's outcomes stand: one done, one failed with its reason.
    let j = state(&pg.url(), &ok.key).unwrap();
    assert_eq!(
        (j.state, j.error.as_deref()),
        (JobState::Done, None),
        "{j:?}"
    );
    let j = state(&pg.url(), &bad.key).unwrap();
    assert_eq!(j.state, JobState::Failed);
    assert!(
        j.error.as_deref().unwrap().contains("could not be read"),
        "{j:?}"
    );
    // One dead letter (the worker's), and the work queue is empty.
    rt.block_on(async {
        let js = async_nats::jetstream::new(client.clone());
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            let mut jobs = js.get_stream(cfg.jobs_stream()).await.unwrap();
            if jobs.info().await.unwrap().state.messages == 0 {
                break;
            }
            assert!(
                Instant::now() < until,
                "a job's message was left on the work queue"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut dead = js.get_stream(cfg.dead_stream()).await.unwrap();
        assert_eq!(dead.info().await.unwrap().state.messages, 1);
    });
    let events = w.events();
    let summary = w.finish();
    assert_eq!((summary.done, summary.dead), (1, 1), "{events}");
    assert!(!events.contains("without an acknowledgement"), "{events}");
}

#[test]
fn jobs_survive_a_nats_server_restart_and_workers_carry_on() {
    let mut nats = Nats::start();
    let pg = Pg::new();
    let cfg = config(&nats);
    // Queued before the restart, with no worker: kept on disk.
    let before = [scan_job("/srv/one"), scan_job("/srv/two")];
    keytrail_worker::submit(&cfg, &pg.url(), &before).unwrap();
    nats.restart();
    let w = Running::start(&cfg, &pg.url(), "w1");
    for j in &before {
        wait_for("jobs queued before the restart", 30, Some(&w), || {
            state(&pg.url(), &j.key).is_some_and(|s| s.state == JobState::Done)
        });
    }
    // A restart under a running worker: it reconnects and takes new jobs.
    nats.restart();
    let after = scan_job("/srv/three");
    let until = Instant::now() + Duration::from_secs(20);
    // The submitter may reach the server before JetStream is ready.
    loop {
        match keytrail_worker::submit(&cfg, &pg.url(), std::slice::from_ref(&after)) {
            Ok(_) => break,
            Err(e) => {
                assert!(Instant::now() < until, "submit after restart: {e}");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
    wait_for("a job submitted after the restart", 40, Some(&w), || {
        state(&pg.url(), &after.key).is_some_and(|s| s.state == JobState::Done)
    });
    let summary = w.finish();
    assert_eq!(summary.done, 3);
    assert_eq!(pg.count("SELECT COUNT(*) FROM runs"), 3);
}

#[test]
fn a_dropped_database_connection_is_reopened() {
    let nats = Nats::start();
    let pg = Pg::new();
    let cfg = config(&nats);
    let w = Running::start(&cfg, &pg.url(), "w1");
    let first = scan_job("/srv/one");
    keytrail_worker::submit(&cfg, &pg.url(), std::slice::from_ref(&first)).unwrap();
    wait_for("the first job", 30, Some(&w), || {
        state(&pg.url(), &first.key).is_some_and(|s| s.state == JobState::Done)
    });
    // Every connection of the worker goes away (as when PostgreSQL
    // restarts or a proxy cuts idle connections).
    assert!(pg.drop_connections() >= 1);
    let second = scan_job("/srv/two");
    keytrail_worker::submit(&cfg, &pg.url(), std::slice::from_ref(&second)).unwrap();
    wait_for("the job after the connection dropped", 30, Some(&w), || {
        state(&pg.url(), &second.key).is_some_and(|s| s.state == JobState::Done)
    });
    let j = state(&pg.url(), &second.key).unwrap();
    assert_eq!(
        j.attempts, 1,
        "the store was reopened, the job not retried: {j:?}"
    );
    assert_eq!(w.finish().done, 2);
}

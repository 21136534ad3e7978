//! `keytrail submit scan`, `keytrail worker` and `keytrail jobs` against a
//! nats-server with JetStream (started by each test on a free loopback
//! port) and a PostgreSQL database (made and dropped by each test): real
//! scans run by worker processes, one of them killed with SIGKILL in the
//! middle of a job. The queue's own faults (poison jobs, server restarts,
//! dropped database connections) are `keytrail-worker`'s tests.

use crate::store::Pg;
use crate::{CliTest, Run, fake};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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

/// A nats-server with JetStream on a free loopback port, killed when dropped.
pub(crate) struct Nats {
    port: u16,
    _dir: tempfile::TempDir,
    child: Child,
}

impl Nats {
    pub(crate) fn start() -> Nats {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new(nats_server_binary())
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server");
        let until = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < until,
                "nats-server did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Nats {
            port,
            _dir: dir,
            child,
        }
    }
    pub(crate) fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn lines(r: &Run) -> Vec<Value> {
    r.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// A worker process; its stderr goes to a file of the test directory.
pub(crate) struct Worker {
    pub(crate) child: Child,
    log: PathBuf,
}

impl Worker {
    pub(crate) fn start(t: &CliTest, nats: &Nats, db: &str, name: &str, extra: &[&str]) -> Worker {
        Worker::start_env(t, nats, db, name, extra, &[])
    }
    /// [`Worker::start`] with `env` set for the worker.
    pub(crate) fn start_env(
        t: &CliTest,
        nats: &Nats,
        db: &str,
        name: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Worker {
        Worker::start_with(t, nats, db, name, extra, |c| {
            for (k, v) in env {
                c.env(k, v);
            }
        })
    }
    /// [`Worker::start`] with its command set up by `setup` (environment).
    pub(crate) fn start_with(
        t: &CliTest,
        nats: &Nats,
        db: &str,
        name: &str,
        extra: &[&str],
        setup: impl FnOnce(&mut Command),
    ) -> Worker {
        let log = t.root().join(format!("{name}.log"));
        let mut args = vec![
            "worker",
            "--nats",
            &nats.url(),
            "--db",
            db,
            "--name",
            name,
            "--ack-wait",
            "2s",
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
        if !extra.contains(&"--max-deliver") {
            args.extend(["--max-deliver".into(), "3".into()]);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut c = t.command(&refs);
        setup(&mut c);
        let child = c
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start keytrail worker");
        Worker { child, log }
    }
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
    /// Wait for the worker to exit by itself (`--exit-when-idle`).
    pub(crate) fn wait(mut self, secs: u64) -> String {
        let until = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                assert!(s.success(), "worker failed: {s}\n{}", self.log());
                return self.log();
            }
            assert!(
                Instant::now() < until,
                "worker did not stop:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn jobs(t: &CliTest, db: &str) -> Vec<Value> {
    let r = t.run(&["jobs", "--db", db]);
    assert_eq!(r.code, 0, "{r:?}");
    lines(&r)
}

pub(crate) fn wait_for_job(
    t: &CliTest,
    db: &str,
    key: &str,
    state: &str,
    secs: u64,
    w: &Worker,
) -> Value {
    wait_for_job_where(t, db, key, secs, w, |j| j["state"] == state)
}

fn wait_for_job_where(
    t: &CliTest,
    db: &str,
    key: &str,
    secs: u64,
    w: &Worker,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let until = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(j) = jobs(t, db).into_iter().find(|j| j["job_key"] == key)
            && done(&j)
        {
            return j;
        }
        assert!(
            Instant::now() < until,
            "job {key} never got there: {:?}\nworker:\n{}",
            jobs(t, db),
            w.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub(crate) fn count(pg: &Pg, sql: &str) -> i64 {
    let mut c = postgres::Client::connect(
        &format!("host=127.0.0.1 port=5432 user=postgres dbname={}", pg.name),
        postgres::NoTls,
    )
    .unwrap();
    c.query_one(sql, &[]).unwrap().get(0)
}

/// Three repositories with one fake token each.
fn repos(t: &CliTest) -> Vec<String> {
    (1..=3)
        .map(|i| {
            t.write(
                &format!("repos/r{i}/config.env"),
                &format!("GITHUB_TOKEN={}\n", fake::github_pat()),
            );
            t.root().join(format!("repos/r{i}")).display().to_string()
        })
        .collect()
}

#[test]
fn workers_scan_submitted_targets_into_the_store_once() {
    let nats = Nats::start();
    let pg = Pg::new();
    let db = pg.url();
    let t = CliTest::new();
    let targets = repos(&t);
    let url = nats.url();
    let mut args = vec!["submit", "scan", "--nats", &url, "--db", &db];
    let rel: Vec<String> = (1..=3).map(|i| format!("repos/r{i}")).collect();
    args.extend(rel.iter().map(String::as_str));
    let r = t.run(&args);
    assert_eq!(r.code, 0, "{r:?}");
    let submitted = lines(&r);
    assert_eq!(submitted.len(), 3);
    for (s, target) in submitted.iter().zip(&targets) {
        assert_eq!(s["target"], target.as_str(), "made absolute here");
        assert_eq!(s["state"], "queued");
        assert_eq!(s["created"], true);
        assert_eq!(s["duplicate"], false);
    }
    // Submitted again while queued: the same job, and the queue drops it.
    let r = t.run(&[
        "submit",
        "scan",
        "--nats",
        &nats.url(),
        "--db",
        &db,
        "repos/r1",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let again = &lines(&r)[0];
    assert_eq!(again["job_key"], submitted[0]["job_key"]);
    assert_eq!(again["created"], false);
    assert_eq!(again["duplicate"], true);

    let a = Worker::start(&t, &nats, &db, "a", &["--exit-when-idle", "3s"]);
    let b = Worker::start(&t, &nats, &db, "b", &["--exit-when-idle", "3s"]);
    let logs = format!("{}\n{}", a.wait(60), b.wait(60));
    let listed = jobs(&t, &db);
    assert_eq!(listed.len(), 3, "{listed:?}");
    for j in &listed {
        assert_eq!(j["state"], "done", "{j}\n{logs}");
        assert_eq!(j["attempts"], 1);
        assert_eq!(j["findings"], 1);
        assert!(j["run_id"].is_i64());
    }
    // What the store holds: one finding per repository, with its target.
    let r = t.run(&["findings", "--db", &db]);
    assert_eq!(r.code, 1, "{r:?}");
    let found = lines(&r);
    assert_eq!(found.len(), 3, "{}", r.stdout);
    let mut seen: Vec<String> = found
        .iter()
        .map(|f| f["store"]["targets"][0].as_str().unwrap().to_string())
        .collect();
    seen.sort();
    assert_eq!(seen, targets);
    assert!(found.iter().all(|f| f["rule_id"] == "github.pat.classic"));
    assert_eq!(count(&pg, "SELECT COUNT(*) FROM runs"), 3);
    // Never a secret: not in the store, not in a log.
    let dump = pg.dump();
    for i in 1..=3 {
        let text = t.read(&format!("repos/r{i}/config.env"));
        let secret = text.trim().strip_prefix("GITHUB_TOKEN=").unwrap();
        assert!(!dump.contains(secret) && !logs.contains(secret));
    }
    // The workers and their heartbeats.
    let r = t.run(&["jobs", "--db", &db, "--workers"]);
    let workers = lines(&r);
    assert_eq!(workers.len(), 2, "{}", r.stdout);
    let done: i64 = workers
        .iter()
        .map(|w| w["jobs_done"].as_i64().unwrap())
        .sum();
    assert_eq!(done, 3);
    // And the human listing.
    let r = t.run(&["jobs", "--db", &db, "--format", "human", "--state", "done"]);
    assert_eq!(r.stdout.lines().count(), 3, "{}", r.stdout);
    assert!(r.stdout.contains("1 finding(s)"), "{}", r.stdout);
}

/// Kill a worker with SIGKILL at `phase` of a job; another worker takes
/// the job over after the ack wait, and the store holds each finding,
/// location and run once.
fn killed_mid_job(phase: &str) {
    let nats = Nats::start();
    let pg = Pg::new();
    let db = pg.url();
    let t = CliTest::new();
    repos(&t);
    let r = t.run(&[
        "submit",
        "scan",
        "--nats",
        &nats.url(),
        "--db",
        &db,
        "repos/r1",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let key = lines(&r)[0]["job_key"].as_str().unwrap().to_string();

    let pause = format!("{phase}:60s");
    let mut doomed = Worker::start(&t, &nats, &db, "doomed", &["--fault-pause", &pause]);
    wait_for_job(&t, &db, &key, "running", 30, &doomed);
    if phase == "after-record" {
        // Wait until its run is in the store: the crash comes between
        // recording and acknowledging.
        let until = Instant::now() + Duration::from_secs(30);
        while count(&pg, "SELECT COUNT(*) FROM runs") == 0 {
            assert!(Instant::now() < until, "{}", doomed.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    doomed.child.kill().unwrap();
    doomed.child.wait().unwrap();

    let rescuer = Worker::start(&t, &nats, &db, "rescuer", &["--exit-when-idle", "6s"]);
    let j = wait_for_job(&t, &db, &key, "done", 60, &rescuer);
    let log = rescuer.wait(60);
    assert_eq!(j["attempts"], 2, "delivered again after the ack wait: {j}");
    assert_eq!(j["worker"], "rescuer");
    assert_eq!(j["findings"], 1);
    if phase == "after-record" {
        assert!(log.contains("its run was recorded already"), "{log}");
    }
    assert_eq!(count(&pg, "SELECT COUNT(*) FROM runs"), 1);
    assert_eq!(count(&pg, "SELECT COUNT(*) FROM findings"), 1);
    assert_eq!(count(&pg, "SELECT COUNT(*) FROM locations"), 1);
    assert_eq!(count(&pg, "SELECT COUNT(*) FROM finding_targets"), 1);
    let r = t.run(&["findings", "--db", &db]);
    assert_eq!(lines(&r).len(), 1, "{}", r.stdout);
}

#[test]
fn a_worker_killed_before_recording_loses_nothing() {
    killed_mid_job("before-record");
}

#[test]
fn a_worker_killed_after_recording_duplicates_nothing() {
    killed_mid_job("after-record");
}

#[test]
fn a_job_that_kills_its_workers_is_dead_lettered() {
    let nats = Nats::start();
    let pg = Pg::new();
    let db = pg.url();
    let t = CliTest::new();
    repos(&t);
    let r = t.run(&[
        "submit",
        "scan",
        "--nats",
        &nats.url(),
        "--db",
        &db,
        "repos/r3",
    ]);
    let key = lines(&r)[0]["job_key"].as_str().unwrap().to_string();
    // Each delivery takes its worker down (as a job that exhausts memory would).
    for attempt in 1..=2 {
        let name = format!("doomed{attempt}");
        let mut w = Worker::start(
            &t,
            &nats,
            &db,
            &name,
            &["--max-deliver", "2", "--fault-pause", "before-record:60s"],
        );
        wait_for_job_where(&t, &db, &key, 30, &w, |j| {
            j["state"] == "running" && j["attempts"] == attempt
        });
        w.child.kill().unwrap();
        w.child.wait().unwrap();
    }
    // JetStream stops delivering it and tells the workers, who dead-letter it.
    let survivor = Worker::start(&t, &nats, &db, "survivor", &["--exit-when-idle", "8s"]);
    let j = wait_for_job(&t, &db, &key, "failed", 60, &survivor);
    assert_eq!(j["attempts"], 2, "{j}");
    let error = j["error"].as_str().unwrap();
    assert!(
        error.contains("delivered 2 times without an acknowledgement"),
        "{error}"
    );
    let log = survivor.wait(60);
    assert!(!log.contains("started"), "never run a third time: {log}");
    assert_eq!(count(&pg, "SELECT COUNT(*) FROM runs"), 0);
}

#[test]
fn progress_heartbeats_keep_a_long_job_with_its_worker() {
    let nats = Nats::start();
    let pg = Pg::new();
    let db = pg.url();
    let t = CliTest::new();
    repos(&t);
    let r = t.run(&[
        "submit",
        "scan",
        "--nats",
        &nats.url(),
        "--db",
        &db,
        "repos/r2",
    ]);
    let key = lines(&r)[0]["job_key"].as_str().unwrap().to_string();
    // The job takes three ack waits; once the slow worker holds it, a second
    // worker waits for work (started after, so it cannot take the job first).
    let slow = Worker::start(
        &t,
        &nats,
        &db,
        "slow",
        &["--fault-pause", "before-record:6s", "--max-jobs", "1"],
    );
    wait_for_job_where(&t, &db, &key, 30, &slow, |j| {
        j["state"] == "running" && j["worker"] == "slow"
    });
    let idle = Worker::start(&t, &nats, &db, "idle", &["--exit-when-idle", "10s"]);
    let j = wait_for_job(&t, &db, &key, "done", 60, &slow);
    assert_eq!(j["attempts"], 1, "never delivered again: {j}");
    assert_eq!(j["worker"], "slow");
    slow.wait(30);
    let log = idle.wait(30);
    assert!(!log.contains("started"), "{log}");
}

#[test]
fn submit_names_a_bad_target_and_an_unreachable_server() {
    let t = CliTest::new();
    let db = t.root().join("k.db").display().to_string();
    // Refused before the queue is reached (nothing listens on port 1).
    for (bad, why) in [
        ("ftp://host/logs/", "unknown scheme"),
        ("s3://", "an S3 target is s3://BUCKET[/PREFIX]"),
    ] {
        let r = t.run(&[
            "submit",
            "scan",
            "--nats",
            "nats://127.0.0.1:1",
            "--db",
            &db,
            bad,
        ]);
        assert_eq!(r.code, 2, "{r:?}");
        assert!(r.stderr.contains(why), "{bad}: {}", r.stderr);
    }
    // Nothing listens on port 1.
    let r = t.run(&[
        "submit",
        "scan",
        "--nats",
        "nats://127.0.0.1:1",
        "--db",
        &db,
        "x",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("nats://127.0.0.1:1"), "{}", r.stderr);
}

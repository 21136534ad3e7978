//! `keytrail submit detect` run by `keytrail worker`s against a nats-server
//! with JetStream and PostgreSQL: the alerts in the store are exactly those
//! of `keytrail detect --state` over the same logs, in one run and in a chain
//! of two runs, with a worker killed in the middle of a partition; a log that
//! cannot be read fails its run with the reason.

use crate::store::Pg;
use crate::worker::{Nats, Worker, count, jobs, lines};
use crate::{CliTest, Run};
use keytrail_testkit::cloudtrail::{ActivityConfig, Layout, write_org_trail};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A two-account organisation trail as S3 delivers it, in `tree`: the older
/// half of its files now; the newer half copied in by the returned closure
/// (the next deliveries).
fn trail(t: &CliTest) -> (PathBuf, impl FnOnce()) {
    let gen_dir = t.root().join("gen");
    let cfg = ActivityConfig {
        servers: 4,
        humans: 3,
        ci: 2,
        rate: 0.15,
        layout: Layout::S3 {
            org: Some("o-abc123".into()),
        },
        ..ActivityConfig::default()
    };
    let w = write_org_trail(&cfg, 2, &gen_dir).unwrap();
    let mut files = w.files.clone();
    files.sort_by_key(|f| keytrail_detect::reader::key_time(f));
    let tree = t.root().join("trail");
    let copy = {
        let (gen_dir, tree) = (gen_dir.clone(), tree.clone());
        move |files: &[PathBuf]| {
            for f in files {
                let dest = tree.join(f.strip_prefix(&gen_dir).unwrap());
                std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
                std::fs::copy(f, &dest).unwrap();
            }
        }
    };
    let newer = files.split_off(files.len() / 2);
    copy(&files);
    (tree, move || copy(&newer))
}

fn engine_flags() -> Vec<String> {
    vec![
        "--ipintel".into(),
        keytrail_testkit::data::ipintel().display().to_string(),
    ]
}

/// The alerts of one `keytrail detect --state` run over `tree`.
fn single_process(t: &CliTest, tree: &Path, out: &mut BTreeMap<String, Value>) {
    let mut args: Vec<String> = vec![
        "detect".into(),
        "--format".into(),
        "jsonl".into(),
        "-q".into(),
        "--state".into(),
        t.root().join("state").display().to_string(),
    ];
    args.extend(engine_flags());
    args.push(tree.display().to_string());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = t.run(&refs);
    assert!(r.code <= 1, "{r:?}");
    for v in lines(&r) {
        out.insert(v["id"].as_str().unwrap().to_string(), v);
    }
}

/// The alerts the store holds, as `keytrail detect` prints them.
fn stored(t: &CliTest, db: &str) -> BTreeMap<String, Value> {
    let r = t.run(&["findings", "--db", db, "--kind", "alert"]);
    assert!(r.code <= 1, "{r:?}");
    lines(&r)
        .into_iter()
        .map(|mut v| {
            v.as_object_mut().unwrap().remove("store");
            (v["id"].as_str().unwrap().to_string(), v)
        })
        .collect()
}

/// The store holds exactly `expected`'s alerts, field by field.
fn assert_stored_alerts_are(t: &CliTest, db: &str, expected: &BTreeMap<String, Value>) {
    let got = stored(t, db);
    let missing: Vec<&String> = expected.keys().filter(|k| !got.contains_key(*k)).collect();
    let extra: Vec<&String> = got.keys().filter(|k| !expected.contains_key(*k)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, extra {extra:?}"
    );
    for (id, a) in expected {
        assert_eq!(&got[id], a, "alert {id}");
    }
}

fn submit(t: &CliTest, nats: &Nats, db: &str, tree: &Path, extra: &[&str]) -> Run {
    let mut args: Vec<String> = vec![
        "submit".into(),
        "detect".into(),
        "--nats".into(),
        nats.url(),
        "--db".into(),
        db.into(),
        "--chain".into(),
        "org".into(),
        "--partitions".into(),
        "3".into(),
        "--files-per-job".into(),
        "150".into(),
    ];
    args.extend(engine_flags());
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push(tree.display().to_string());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    t.run(&refs)
}

/// Waits until every job of the store is done (none queued or running).
fn wait_all_done(t: &CliTest, db: &str, expected: usize, secs: u64, w: &[&Worker]) {
    let until = Instant::now() + Duration::from_secs(secs);
    loop {
        let js = jobs(t, db);
        if js.len() >= expected && js.iter().all(|j| j["state"] == "done") {
            return;
        }
        let failed: Vec<&Value> = js.iter().filter(|j| j["state"] == "failed").collect();
        assert!(failed.is_empty(), "failed jobs: {failed:?}");
        assert!(
            Instant::now() < until,
            "jobs never all done: {js:?}\n{}",
            w.iter().map(|w| w.log()).collect::<Vec<_>>().join("\n")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn workers_raise_the_alerts_of_one_process_over_a_chain_of_runs() {
    let nats = Nats::start();
    let pg = Pg::new();
    let db = pg.url();
    let t = CliTest::new();
    let (tree, deliver_newer) = trail(&t);
    // One process with --state, run on the older half (and later again once
    // the newer half is delivered).
    let mut expected = BTreeMap::new();
    single_process(&t, &tree, &mut expected);

    // Run 1 over the older half; a worker killed in the middle of a
    // partition (its alerts recorded, its checkpoint not), two more finish.
    let r = submit(&t, &nats, &db, &tree, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    let run1 = lines(&r)[0].clone();
    assert!(run1["previous"].is_null(), "{run1}");
    let routes1 = run1["routes"].as_u64().unwrap() as usize;
    assert!(routes1 >= 2, "{run1}");
    let mut doomed = Worker::start(
        &t,
        &nats,
        &db,
        "doomed",
        &["--fault-pause", "before-checkpoint:60s"],
    );
    // It routes every file, then holds the first partition it takes before
    // recording its checkpoint: killed there.
    let until = Instant::now() + Duration::from_secs(180);
    while !jobs(&t, &db).iter().any(|j| {
        j["state"] == "running"
            && j["worker"] == "doomed"
            && j["target"].as_str().unwrap().contains("/part:")
    }) {
        assert!(Instant::now() < until, "{}", doomed.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        count(&pg, "SELECT COUNT(*) FROM detect_steps") as usize,
        routes1,
        "only the route steps are done"
    );
    doomed.child.kill().unwrap();
    doomed.child.wait().unwrap();
    let w1 = Worker::start(&t, &nats, &db, "w1", &[]);
    let w2 = Worker::start(&t, &nats, &db, "w2", &[]);
    wait_all_done(&t, &db, routes1 + 6, 300, &[&w1, &w2]);
    let retried: Vec<Value> = jobs(&t, &db)
        .into_iter()
        .filter(|j| j["attempts"].as_i64().unwrap() > 1)
        .collect();
    assert_eq!(retried.len(), 1, "the killed step ran again: {retried:?}");

    // The newer half is delivered: one process reads it with its state; run
    // 2 of the chain reads only the new files.
    deliver_newer();
    single_process(&t, &tree, &mut expected);
    assert!(
        expected
            .values()
            .any(|a| a["rule_id"] == "keytrail.aws.behaviour.new-key-different-network"),
        "the logs hold a key created by one identity and used by another"
    );
    let r = submit(&t, &nats, &db, &tree, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    let run2 = lines(&r)[0].clone();
    assert_eq!(run2["previous"], run1["run"], "{run2}");
    assert_eq!(run2["already_read"], run1["files"], "{run2}");
    let routes2 = run2["routes"].as_u64().unwrap() as usize;
    wait_all_done(&t, &db, routes1 + routes2 + 12, 300, &[&w1, &w2]);

    assert_stored_alerts_are(&t, &db, &expected);
    // Every step once; nothing left on the event stream.
    assert_eq!(
        count(&pg, "SELECT COUNT(*) FROM detect_steps") as usize,
        routes1 + routes2 + 12
    );
    assert_eq!(count(&pg, "SELECT COUNT(*) FROM detect_checkpoints"), 6);

    // Nothing new: no run.
    let r = submit(&t, &nats, &db, &tree, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(lines(&r)[0]["run"].is_null(), "{}", r.stdout);
}

#[test]
fn a_log_that_cannot_be_read_fails_its_run_with_the_reason() {
    let nats = Nats::start();
    let pg = Pg::new();
    let db = pg.url();
    let t = CliTest::new();
    t.write(
        "logs/AWSLogs/1/CloudTrail/us-east-1/2024/03/04/1_CloudTrail_us-east-1_20240304T0005Z_a.json",
        r#"{"Records":[{"eventTime":"2024-03-04T00:01:00Z","eventName":"GetCallerIdentity","eventSource":"sts.amazonaws.com","awsRegion":"us-east-1","sourceIPAddress":"203.0.113.9","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::1:user/a","accountId":"1","accessKeyId":"AKIAEXAMPLEEXAMPLE01"}}]}"#,
    );
    let gone = "logs/AWSLogs/1/CloudTrail/us-east-1/2024/03/04/1_CloudTrail_us-east-1_20240304T0010Z_b.json";
    t.write(gone, r#"{"Records":[]}"#);
    let r = submit(&t, &nats, &db, &t.root().join("logs"), &[]);
    assert_eq!(r.code, 0, "{r:?}");
    std::fs::remove_file(t.root().join(gone)).unwrap();
    let w = Worker::start(&t, &nats, &db, "w", &["--exit-when-idle", "8s"]);
    let log = w.wait(120);
    let js = jobs(&t, &db);
    let failed: Vec<&Value> = js.iter().filter(|j| j["state"] == "failed").collect();
    assert_eq!(failed.len(), 1, "{js:?}\n{log}");
    let error = failed[0]["error"].as_str().unwrap();
    assert!(
        error.contains("_b.json") && error.contains("cannot be read"),
        "{error}"
    );
    // The partitions never ran on a run that was not read whole.
    assert_eq!(count(&pg, "SELECT COUNT(*) FROM detect_checkpoints"), 0);

    // Bad submissions: a missing log, a bad chain name, bad settings.
    let r = submit(&t, &nats, &db, &t.root().join("nope"), &[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("nope"), "{}", r.stderr);
    let r = submit(&t, &nats, &db, &t.root().join("logs"), &["--chain", "a.b"]);
    assert_eq!(r.code, 2, "{r:?}");
    let r = submit(
        &t,
        &nats,
        &db,
        &t.root().join("logs"),
        &["--sigma", &t.root().join("no-rules").display().to_string()],
    );
    assert_eq!(r.code, 2, "{r:?}");
}

/// `keytrail schedule detect` of an `s3://` prefix (moto, started by the test
/// set-up), fired by `keytrail schedule run`: a worker lists the bucket,
/// records a run of every log object cut into route jobs by account, region
/// and time slice, and the route jobs read the objects from S3. The stored
/// alerts are those of `keytrail detect --state` over the same files on
/// disk. Fired again, the chain finds nothing new. An object S3 refuses fails
/// its route job naming it; a bucket that refuses listing fails `submit
/// detect` (exit 2).
#[test]
fn a_scheduled_chain_reads_s3_and_raises_the_alerts_of_one_process() {
    use crate::detect_s3::{BUCKET, moto_env, served};
    let s = served();
    let nats = Nats::start();
    let pg = Pg::new();
    let db = pg.url();
    let t = CliTest::new();
    let mut expected = BTreeMap::new();
    single_process(&t, &s.tree, &mut expected);
    assert!(expected.len() >= 5, "{expected:?}");

    let uri = format!("s3://{BUCKET}/");
    let mut args: Vec<String> = [
        "schedule",
        "detect",
        "--db",
        &db,
        "--every",
        "5m",
        "--start",
        "2026-12-07T10:00:00Z",
        "--chain",
        "s3org",
        "--partitions",
        "2",
        "--slice",
        "6h",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(engine_flags());
    args.push(uri.clone());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = t.run(&refs);
    assert_eq!(r.code, 0, "{r:?}");
    let added = &lines(&r)[0];
    assert_eq!(added["kind"], "detect", "{added}");
    assert_eq!(added["target"], "detect-chain:s3org", "{added}");
    assert_eq!(added["job_target"]["type"], "detect_chain", "{added}");
    assert_eq!(added["job_target"]["value"]["logs"][0], uri.as_str());
    // The same chain again: left as it is.
    let r = t.run(&refs);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(lines(&r)[0]["created"], false);

    let nats_url = nats.url();
    let fire = |now: &str| crate::schedule::fire(&t, &nats, &db, now);
    let fired = fire("2026-12-07T10:00:30Z");
    assert_eq!(fired.len(), 1, "{fired:?}");
    let start = |name: &str| {
        Worker::start_with(&t, &nats, &db, name, &[], |c| {
            moto_env(c);
        })
    };
    let w1 = start("w1");
    let w2 = start("w2");
    // The chain job, its route jobs, 2 partitions, 2 key partitions.
    let until = Instant::now() + Duration::from_secs(300);
    let runs = loop {
        let runs = count(&pg, "SELECT COUNT(*) FROM detect_runs");
        if runs == 1 {
            let routes = count(&pg, "SELECT routes FROM detect_runs");
            let js = jobs(&t, &db);
            if js.len() as i64 == 1 + routes + 4 && js.iter().all(|j| j["state"] == "done") {
                break routes;
            }
            assert!(
                !js.iter().any(|j| j["state"] == "failed"),
                "{js:?}\n{}\n{}",
                w1.log(),
                w2.log()
            );
        }
        assert!(
            Instant::now() < until,
            "{:?}\n{}\n{}",
            jobs(&t, &db),
            w1.log(),
            w2.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    // Every object was read, in route jobs of one account and region each.
    assert_eq!(
        count(&pg, "SELECT COUNT(*) FROM detect_files") as usize,
        s.files
    );
    assert!(runs >= 4, "two accounts, 6-hour slices: {runs} route jobs");
    let mixed = count(
        &pg,
        "SELECT COUNT(*) FROM (SELECT route FROM detect_files GROUP BY route \
         HAVING COUNT(DISTINCT split_part(name, '/CloudTrail/', 1)) > 1) m",
    );
    assert_eq!(mixed, 0, "a route job reads one account's files");
    assert_stored_alerts_are(&t, &db, &expected);
    let sched = t.run(&["schedule", "list", "--db", &db]);
    let sched = &lines(&sched)[0];
    let outcome = sched["last_outcome"].as_str().unwrap();
    assert!(
        outcome.contains(&format!("{} new file(s)", s.files)),
        "{outcome}"
    );

    // Fired again five minutes later: nothing new, no run.
    let fired = fire("2026-12-07T10:05:30Z");
    assert_eq!(fired.len(), 1, "{fired:?}");
    let until = Instant::now() + Duration::from_secs(120);
    loop {
        let sched = t.run(&["schedule", "list", "--db", &db]);
        let outcome = lines(&sched)[0]["last_outcome"].to_string();
        if outcome.contains("nothing new") {
            // Only the date folders from a day before the newest delivery
            // read were listed again (the trail spans two days and more).
            let listed: usize = outcome
                .split("nothing new: ")
                .nth(1)
                .and_then(|r| r.split(' ').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("{outcome}"));
            assert!(listed > 0 && listed < s.files, "{outcome} of {}", s.files);
            break;
        }
        assert!(Instant::now() < until, "{outcome}\n{}", w1.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(count(&pg, "SELECT COUNT(*) FROM detect_runs"), 1);

    // `submit detect` talking to moto.
    let submit_s3 = |extra: &[&str]| {
        let mut args = vec!["submit", "detect", "--nats", &nats_url, "--db", &db];
        args.extend(extra);
        let mut sub = t.command(&args);
        moto_env(&mut sub);
        sub.output().unwrap()
    };
    // An object S3 refuses: its route job fails naming it, and no
    // partition runs.
    let denied = format!("s3://denied-{BUCKET}/");
    let out = submit_s3(&["--chain", "denied", "--partitions", "2", &denied]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let until = Instant::now() + Duration::from_secs(180);
    let error = loop {
        let js = jobs(&t, &db);
        if let Some(f) = js.iter().find(|j| j["state"] == "failed") {
            break f["error"].as_str().unwrap().to_string();
        }
        assert!(Instant::now() < until, "{js:?}\n{}", w1.log());
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        error.contains(&format!("denied-{BUCKET}/{}", s.denied))
            && error.contains("cannot be read"),
        "{error}"
    );
    assert_eq!(
        count(
            &pg,
            "SELECT COUNT(*) FROM detect_checkpoints WHERE chain = 'denied'"
        ),
        0
    );

    // A bucket that refuses listing: the submission fails, naming it.
    let locked = format!("s3://locked-{BUCKET}/");
    let out = submit_s3(&[&locked]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("locked-{BUCKET}")), "{stderr}");
}

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

    let got = stored(&t, &db);
    let missing: Vec<&String> = expected.keys().filter(|k| !got.contains_key(*k)).collect();
    let extra: Vec<&String> = got.keys().filter(|k| !expected.contains_key(*k)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, extra {extra:?}"
    );
    for (id, a) in &expected {
        assert_eq!(&got[id], a, "alert {id}");
    }
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

//! `keytrail schedule`: recurring scans against a nats-server with
//! JetStream and a PostgreSQL database (as `worker.rs` starts them), run by
//! real worker processes; the store parts on SQLite too. A schedule fires
//! once per due time (several schedulers at once included); a git
//! schedule's second job scans only the new commits and never marks the
//! others fixed, and a force-push falls back to a full scan; an image whose
//! digest did not change is not scanned again; a target that cannot be
//! read fails its job with the reason and the schedule stays.

use crate::store::Pg;
use crate::worker::{Nats, Worker, count, jobs, lines};
use crate::{CliTest, Run, fake};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};

/// The due time of the tests' schedules, and times around it.
const T0: &str = "2026-12-07T10:00:00Z";

fn at(offset_secs: i64) -> String {
    let t =
        chrono::DateTime::parse_from_rfc3339(T0).unwrap() + chrono::Duration::seconds(offset_secs);
    t.with_timezone(&chrono::Utc)
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Dev")
        .env("GIT_AUTHOR_EMAIL", "dev@example.com")
        .env("GIT_COMMITTER_NAME", "Dev")
        .env("GIT_COMMITTER_EMAIL", "dev@example.com")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn commit(dir: &Path, msg: &str) -> String {
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "--allow-empty", "-m", msg]);
    git(dir, &["rev-parse", "HEAD"]).trim().to_string()
}

/// `keytrail schedule run` at `now`: its lines.
pub(crate) fn fire(t: &CliTest, nats: &Nats, db: &str, now: &str) -> Vec<Value> {
    let r = t.run(&[
        "schedule",
        "run",
        "--nats",
        &nats.url(),
        "--db",
        db,
        "--now",
        now,
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    lines(&r)
}

fn schedules(t: &CliTest, db: &str) -> Vec<Value> {
    let r = t.run(&["schedule", "list", "--db", db]);
    assert_eq!(r.code, 0, "{r:?}");
    lines(&r)
}

/// Run the queued jobs with one worker until the queue is idle.
fn work(t: &CliTest, nats: &Nats, db: &str, name: &str) -> String {
    Worker::start(t, nats, db, name, &["--exit-when-idle", "3s"]).wait(120)
}

fn job<'a>(all: &'a [Value], key: &str) -> &'a Value {
    all.iter()
        .find(|j| j["job_key"] == key)
        .unwrap_or_else(|| panic!("no job {key}: {all:?}"))
}

/// The findings of the store, by the secret's redacted form, with status.
fn findings(t: &CliTest, db: &str) -> Vec<Value> {
    let r = t.run(&["findings", "--db", db]);
    assert!(r.code == 0 || r.code == 1, "{r:?}");
    let mut out: Vec<Value> = Vec::new();
    for l in lines(&r) {
        if !out.iter().any(|f| f["fingerprint"] == l["fingerprint"]) {
            out.push(l);
        }
    }
    out
}

/// The one finding whose location is at `path`.
fn finding_at<'a>(all: &'a [Value], path: &str) -> &'a Value {
    let hits: Vec<&Value> = all
        .iter()
        .filter(|f| f.to_string().contains(&format!("\"{path}\"")))
        .collect();
    assert_eq!(hits.len(), 1, "one finding at {path}: {all:#?}");
    hits[0]
}

#[test]
fn a_schedule_fires_when_due_and_not_again_before_its_interval() {
    let nats = Nats::start();
    let pg = Pg::new();
    let db = pg.url();
    let t = CliTest::new();
    t.write(
        "repo/config.env",
        &format!("GITHUB_TOKEN={}\n", fake::github_pat()),
    );
    let r = t.run(&[
        "schedule", "add", "--db", &db, "--every", "1h", "--start", T0, "repo",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let added = &lines(&r)[0];
    assert_eq!(added["created"], true);
    assert_eq!(added["every"], "1h");
    assert_eq!(added["every_seconds"], 3600);
    assert_eq!(added["next_due"], "2026-12-07T10:00:00.000000Z");
    let target = t.root().join("repo").display().to_string();
    assert_eq!(added["target"], target.as_str(), "made absolute here");
    assert_eq!(added["job_target"]["type"], "path");
    let id = added["id"].as_i64().unwrap();

    // Before it is due: nothing (and no connection is needed for nothing).
    assert!(fire(&t, &nats, &db, &at(-60)).is_empty());
    // Due: one job.
    let fired = fire(&t, &nats, &db, &at(5));
    assert_eq!(fired.len(), 1, "{fired:?}");
    let f = &fired[0];
    assert_eq!(
        (f["schedule"].as_i64(), &f["claimed"]),
        (Some(id), &Value::Bool(true))
    );
    assert_eq!(f["created"], true);
    assert_eq!(f["published"], true);
    assert_eq!(f["next_due"], "2026-12-07T11:00:00.000000Z");
    let key = f["job_key"].as_str().unwrap().to_string();
    assert_eq!(key, format!("schedule-{id}-20261207T100000Z"));
    // Not again before its interval.
    assert!(fire(&t, &nats, &db, &at(60)).is_empty());
    assert!(fire(&t, &nats, &db, &at(3599)).is_empty());
    // The job runs once, into the store, under the schedule's key.
    let log = work(&t, &nats, &db, "w1");
    let all = jobs(&t, &db);
    assert_eq!(all.len(), 1, "{all:?}\n{log}");
    assert_eq!(job(&all, &key)["state"], "done", "{log}");
    assert_eq!(job(&all, &key)["findings"], 1);
    let s = &schedules(&t, &db)[0];
    assert_eq!(s["last_job_key"], key.as_str());
    assert_eq!(s["last_success_job"], key.as_str());
    assert_eq!(s["last_outcome"], "full scan: 1 finding(s)", "{s}");

    // Days later (the scheduler was down): one firing, on the schedule's phase.
    let fired = fire(&t, &nats, &db, &at(3 * 86_400 + 1800));
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0]["due"], "2026-12-07T11:00:00.000000Z");
    assert_eq!(fired[0]["next_due"], "2026-12-10T11:00:00.000000Z");
    let key2 = fired[0]["job_key"].as_str().unwrap().to_string();
    assert_ne!(key2, key);
    // Its job is still queued at the next due time: not submitted twice.
    let fired = fire(&t, &nats, &db, &at(3 * 86_400 + 3600 + 1));
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0]["job_key"], key2.as_str());
    assert_eq!(fired[0]["created"], false);
    assert_eq!(fired[0]["state"], "queued");
    assert_eq!(jobs(&t, &db).len(), 2);
    // Disabled: never due; enabled again: due.
    let r = t.run(&["schedule", "disable", "--db", &db, &id.to_string()]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(fire(&t, &nats, &db, &at(30 * 86_400)).is_empty());
    assert_eq!(schedules(&t, &db)[0]["enabled"], false);
    let r = t.run(&["schedule", "enable", "--db", &db, &id.to_string()]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(fire(&t, &nats, &db, &at(30 * 86_400)).len(), 1);
}

#[test]
fn schedulers_racing_submit_each_due_time_once() {
    let nats = Nats::start();
    let pg = Pg::new();
    let db = pg.url();
    let t = CliTest::new();
    let mut targets = Vec::new();
    for i in 1..=3 {
        t.write(
            &format!("repos/r{i}/config.env"),
            &format!("GITHUB_TOKEN={}\n", fake::github_pat()),
        );
        targets.push(format!("repos/r{i}"));
    }
    let mut args = vec![
        "schedule", "add", "--db", &db, "--every", "1h", "--start", T0,
    ];
    args.extend(targets.iter().map(String::as_str));
    let r = t.run(&args);
    assert_eq!(r.code, 0, "{r:?}");
    // Six schedulers at the same moment.
    let now = at(1);
    let url = nats.url();
    let children: Vec<_> = (0..6)
        .map(|_| {
            t.command(&[
                "schedule", "run", "--nats", &url, "--db", &db, "--now", &now,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    let mut claimed = Vec::new();
    let mut created = 0;
    for c in children {
        let out = c.wait_with_output().unwrap();
        let run = Run {
            code: out.status.code().unwrap(),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        };
        assert_eq!(run.code, 0, "{run:?}");
        for l in lines(&run) {
            if l["claimed"] == true {
                claimed.push(l["schedule"].as_i64().unwrap());
            }
            if l["created"] == true {
                created += 1;
            }
        }
    }
    claimed.sort();
    assert_eq!(claimed.len(), 3, "each due time claimed once: {claimed:?}");
    assert!(claimed.windows(2).all(|w| w[0] != w[1]), "{claimed:?}");
    assert_eq!(created, 3, "one job per schedule");
    assert_eq!(count(&pg, "SELECT COUNT(*) FROM jobs"), 3);
    // The queue holds one message per job: each runs once.
    let log = work(&t, &nats, &db, "w1");
    assert_eq!(log.matches("started (try 1)").count(), 3, "{log}");
    assert!(!log.contains("was done already"), "{log}");
    assert_eq!(count(&pg, "SELECT COUNT(*) FROM runs"), 3);
    assert!(jobs(&t, &db).iter().all(|j| j["state"] == "done"));
}

#[test]
fn a_git_schedule_scans_only_new_commits_and_a_force_push_all_of_it() {
    let nats = Nats::start();
    let pg = Pg::new();
    let db = pg.url();
    let t = CliTest::new();
    let repo = t.root().join("src");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["-c", "init.defaultBranch=main", "init", "-q"]);
    let first = fake::github_pat();
    t.write("src/a.env", &format!("GITHUB_TOKEN={first}\n"));
    let c1 = commit(&repo, "one");
    let url = format!("git:file://{}", repo.display());
    let r = t.run(&[
        "schedule", "add", "--db", &db, "--every", "1h", "--start", T0, &url,
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let id = lines(&r)[0]["id"].as_i64().unwrap();

    // First job: everything, and the tips remembered.
    let k1 = fire(&t, &nats, &db, &at(1))[0]["job_key"]
        .as_str()
        .unwrap()
        .to_string();
    let log = work(&t, &nats, &db, "w1");
    assert_eq!(job(&jobs(&t, &db), &k1)["findings"], 1, "{log}");
    let s = &schedules(&t, &db)[0];
    assert_eq!(s["id"], id);
    assert_eq!(
        s["cursor"]["git_refs"]["refs/heads/main"],
        c1.as_str(),
        "{s}"
    );
    assert_eq!(
        s["last_outcome"],
        "full scan (no earlier scan): 1 commit(s): 1 finding(s)"
    );

    // A new commit that adds a secret and deletes the first one's file.
    let second = fake::github_pat();
    std::fs::remove_file(repo.join("a.env")).unwrap();
    t.write("src/b.env", &format!("GITHUB_TOKEN={second}\n"));
    let c2 = commit(&repo, "two");
    let k2 = fire(&t, &nats, &db, &at(3601))[0]["job_key"]
        .as_str()
        .unwrap()
        .to_string();
    let log = work(&t, &nats, &db, "w2");
    let j2 = job(&jobs(&t, &db), &k2).clone();
    assert_eq!(j2["state"], "done", "{log}");
    assert_eq!(j2["findings"], 1, "only the new commit's secret: {j2}");
    let s = &schedules(&t, &db)[0];
    assert_eq!(s["last_outcome"], "1 new commit(s): 1 finding(s)", "{s}");
    assert_eq!(s["cursor"]["git_refs"]["refs/heads/main"], c2.as_str());
    let all = findings(&t, &db);
    assert_eq!(all.len(), 2, "{all:#?}");
    let a = finding_at(&all, "a.env");
    let b = finding_at(&all, "b.env");
    assert_eq!(b["store"]["status"], "open");
    // The first commit's finding: not seen by the partial run, not fixed,
    // not duplicated.
    assert_eq!(
        a["store"]["status"], "open",
        "a partial run never marks fixed: {a}"
    );
    let r = t.run(&["runs", "--db", &db]);
    let runs = lines(&r);
    assert_eq!(runs.len(), 2, "{}", r.stdout);
    let partial = runs
        .iter()
        .find(|r| r["findings"] == 1 && r["complete"] == false);
    assert!(
        partial.is_some(),
        "the incremental run is recorded as partial: {runs:?}"
    );

    // Force-push: main rewritten from the first commit with a third secret.
    git(&repo, &["reset", "-q", "--hard", &c1]);
    let third = fake::github_pat();
    t.write("src/c.env", &format!("GITHUB_TOKEN={third}\n"));
    let c3 = commit(&repo, "three");
    git(&repo, &["reflog", "expire", "--expire=now", "--all"]);
    git(&repo, &["gc", "-q", "--prune=now"]);
    let k3 = fire(&t, &nats, &db, &at(7201))[0]["job_key"]
        .as_str()
        .unwrap()
        .to_string();
    let log = work(&t, &nats, &db, "w3");
    let j3 = job(&jobs(&t, &db), &k3).clone();
    assert_eq!(j3["state"], "done", "{log}");
    assert_eq!(j3["findings"], 2, "the whole repository: {j3}");
    let s = &schedules(&t, &db)[0];
    let outcome = s["last_outcome"].as_str().unwrap();
    assert!(
        outcome.starts_with("full scan (refs/heads/main was rewritten:"),
        "{outcome}"
    );
    assert_eq!(s["cursor"]["git_refs"]["refs/heads/main"], c3.as_str());
    // A complete run again: the commit gone with the force-push is fixed.
    let all = findings(&t, &db);
    assert_eq!(finding_at(&all, "a.env")["store"]["status"], "open");
    assert_eq!(finding_at(&all, "c.env")["store"]["status"], "open");
    assert_eq!(finding_at(&all, "b.env")["store"]["status"], "fixed");
    // Never a secret in the store.
    let dump = pg.dump();
    for s in [&first, &second, &third] {
        assert!(!dump.contains(s.as_str()));
    }
}

#[cfg(feature = "image")]
#[test]
fn an_image_whose_digest_did_not_change_is_not_scanned_again() {
    use crate::image::{Umoci, tools};
    tools(&["umoci"]);
    let nats = Nats::start();
    let pg = Pg::new();
    let db = pg.url();
    let t = CliTest::new();
    let img = Umoci::new(t.root(), "latest");
    img.write(
        "app/.env",
        &format!("GITHUB_TOKEN={}\n", fake::github_pat()),
    );
    img.layer("COPY app /app");
    let target = format!("image:{}", img.reference());
    let r = t.run(&[
        "schedule", "add", "--db", &db, "--every", "1d", "--start", T0, &target,
    ]);
    assert_eq!(r.code, 0, "{r:?}");

    let k1 = fire(&t, &nats, &db, &at(1))[0]["job_key"]
        .as_str()
        .unwrap()
        .to_string();
    let log = work(&t, &nats, &db, "w1");
    assert_eq!(job(&jobs(&t, &db), &k1)["findings"], 1, "{log}");
    let s = &schedules(&t, &db)[0];
    let digest = s["cursor"]["image_digest"].as_str().unwrap().to_string();
    assert!(digest.starts_with("sha256:"), "{s}");
    assert_eq!(s["last_outcome"], format!("image {digest}: 1 finding(s)"));

    // The same digest a day later: the job is done without a scan or a run.
    let k2 = fire(&t, &nats, &db, &at(86_401))[0]["job_key"]
        .as_str()
        .unwrap()
        .to_string();
    let log = work(&t, &nats, &db, "w2");
    let j2 = job(&jobs(&t, &db), &k2).clone();
    assert_eq!(j2["state"], "done", "{log}");
    assert_eq!(j2["run_id"], Value::Null, "{j2}");
    assert!(
        log.contains(&format!("unchanged: {digest} since schedule")),
        "{log}"
    );
    assert_eq!(count(&pg, "SELECT COUNT(*) FROM runs"), 1);
    let s = &schedules(&t, &db)[0];
    assert_eq!(s["last_outcome"], format!("unchanged: {digest}"));
    assert_eq!(s["last_success_job"], k2.as_str());
    // Still open: an unchanged image proves nothing fixed.
    let all = findings(&t, &db);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["store"]["status"], "open");

    // A new layer, a new digest: scanned again.
    img.write(
        "app/more.env",
        &format!("GITHUB_TOKEN={}\n", fake::github_pat()),
    );
    img.layer("COPY more /app");
    let k3 = fire(&t, &nats, &db, &at(2 * 86_400 + 1))[0]["job_key"]
        .as_str()
        .unwrap()
        .to_string();
    let log = work(&t, &nats, &db, "w3");
    let j3 = job(&jobs(&t, &db), &k3).clone();
    assert_eq!(j3["state"], "done", "{log}");
    assert_eq!(j3["findings"], 2, "{j3}");
    let s = &schedules(&t, &db)[0];
    let new_digest = s["cursor"]["image_digest"].as_str().unwrap();
    assert_ne!(new_digest, digest);
    assert_eq!(count(&pg, "SELECT COUNT(*) FROM runs"), 2);
}

#[test]
fn a_target_that_cannot_be_read_fails_its_job_and_the_schedule_stays() {
    let nats = Nats::start();
    let pg = Pg::new();
    let db = pg.url();
    let t = CliTest::new();
    let gone = t.root().join("gone");
    let url = format!("git:file://{}", gone.display());
    let r = t.run(&[
        "schedule", "add", "--db", &db, "--every", "30m", "--start", T0, &url,
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let key = fire(&t, &nats, &db, &at(1))[0]["job_key"]
        .as_str()
        .unwrap()
        .to_string();
    let log = Worker::start(
        &t,
        &nats,
        &db,
        "w1",
        &["--max-deliver", "1", "--exit-when-idle", "3s"],
    )
    .wait(60);
    let j = job(&jobs(&t, &db), &key).clone();
    assert_eq!(j["state"], "failed", "{log}");
    let error = j["error"].as_str().unwrap();
    assert!(error.contains("cannot clone"), "{error}");
    assert!(error.contains(&gone.display().to_string()), "{error}");
    let s = &schedules(&t, &db)[0];
    assert_eq!(s["enabled"], true);
    assert_eq!(s["last_job_key"], key.as_str());
    assert_eq!(s["last_success_at"], Value::Null);
    assert_eq!(s["cursor"], Value::Null);
    assert_eq!(s["next_due"], "2026-12-07T10:30:00.000000Z");
    // It fires again at its next due time (a new job: the failed one is over).
    let again = fire(&t, &nats, &db, &at(1801));
    assert_eq!(again[0]["created"], true, "{again:?}");
}

#[test]
fn bad_schedule_inputs_are_named() {
    let t = CliTest::new();
    let db = t.root().join("k.db").display().to_string();
    let r = t.run(&["schedule", "add", "--db", &db, "--every", "30s", "repo"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("at least a minute"), "{}", r.stderr);
    let r = t.run(&["schedule", "add", "--db", &db, "--every", "1y", "repo"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("unknown unit `y`"), "{}", r.stderr);
    let r = t.run(&[
        "schedule",
        "add",
        "--db",
        &db,
        "--every",
        "1h",
        "ftp://host/x",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("unknown scheme"), "{}", r.stderr);
    let r = t.run(&[
        "schedule", "add", "--db", &db, "--every", "1h", "--start", "tomorrow", "repo",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("RFC 3339"), "{}", r.stderr);
    // Detection chains: a log that does not exist, logs on S3 and on disk
    // in one chain, a bucket-less URI, a slice under a minute, rules that
    // do not exist: each named, nothing stored.
    t.write("trail/a.json", r#"{"Records":[]}"#);
    let detect = |extra: &[&str]| {
        let mut args = vec!["schedule", "detect", "--db", &db, "--every", "5m"];
        args.extend(extra);
        t.run(&args)
    };
    for (args, says) in [
        (&["nope"][..], "nope"),
        (&["trail", "s3://bucket/AWSLogs/"][..], "cannot be combined"),
        (&["s3://"][..], "names no bucket"),
        (&["--slice", "10s", "trail"][..], "at least a minute"),
        (&["--sigma", "no-rules", "trail"][..], "no-rules"),
        (&["--chain", "a.b", "trail"][..], "letters, digits"),
    ] {
        let r = detect(args);
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
        assert!(r.stderr.contains(says), "{args:?}: {}", r.stderr);
    }
    let r = t.run(&["schedule", "list", "--db", &db]);
    assert_eq!(r.code, 2, "no store yet: {r:?}");

    // Added twice: the first one, unchanged.
    let r = t.run(&[
        "schedule",
        "add",
        "--db",
        &db,
        "--every",
        "1h",
        "image:registry.local/app:1",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let first = lines(&r)[0].clone();
    let r = t.run(&[
        "schedule",
        "add",
        "--db",
        &db,
        "--every",
        "1d",
        "image:registry.local/app:1",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let again = &lines(&r)[0];
    assert_eq!(again["created"], false);
    assert_eq!(
        (&again["id"], &again["every"]),
        (&first["id"], &Value::from("1h"))
    );
    assert!(r.stderr.contains("scheduled already"), "{}", r.stderr);
    // Jobs of a discovery's dry run become schedules.
    let jobs_jsonl = "{\"key\":\"k:1\",\"kind\":\"scan\",\"target\":{\"type\":\"git_url\",\"value\":\"https://git.example/acme/api.git\"},\"submitted_at\":\"2026-12-07T00:00:00Z\"}\n";
    let r = t.run_stdin(
        &[
            "schedule", "add", "--db", &db, "--every", "6h", "--jobs", "-",
        ],
        jobs_jsonl,
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        lines(&r)[0]["target"],
        "git:https://git.example/acme/api.git"
    );
    let r = t.run_stdin(
        &[
            "schedule", "add", "--db", &db, "--every", "6h", "--jobs", "-",
        ],
        "not json\n",
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("line 1: not a job"), "{}", r.stderr);

    let r = t.run(&["schedule", "list", "--db", &db, "--format", "human"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout.lines().count(), 2, "{}", r.stdout);
    assert!(r.stdout.contains("every 1h"), "{}", r.stdout);
    assert!(r.stdout.contains("never run"), "{}", r.stdout);

    // Unknown ids: named, exit 2, the known one still removed.
    let id = first["id"].to_string();
    let r = t.run(&["schedule", "remove", "--db", &db, "999", &id]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("no schedule 999"), "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!("schedule {id} removed")),
        "{}",
        r.stderr
    );
    let r = t.run(&["schedule", "disable", "--db", &db, "999"]);
    assert_eq!(r.code, 2, "{r:?}");
    let r = t.run(&["schedule", "list", "--db", &db]);
    assert_eq!(lines(&r).len(), 1);

    // A pass with something due and no queue: exit 2 naming the server;
    // the schedule stays due.
    let r = t.run(&[
        "schedule",
        "run",
        "--db",
        &db,
        "--nats",
        "nats://127.0.0.1:1",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("127.0.0.1:1"), "{}", r.stderr);
    let r = t.run(&["schedule", "list", "--db", &db]);
    assert_eq!(lines(&r)[0]["last_fired_at"], Value::Null);
}

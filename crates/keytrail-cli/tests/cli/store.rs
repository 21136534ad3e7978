//! `scan --db`, `keytrail import`, `keytrail findings` and `keytrail
//! triage`: the store from the command line, on a SQLite file and on the
//! local PostgreSQL server (each test makes its own database).

use crate::{CliTest, Run, fake, with_test_rules};
use serde_json::Value;

fn lines(r: &Run) -> Vec<Value> {
    r.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn fingerprints(r: &Run) -> Vec<String> {
    let mut fps: Vec<String> = lines(r)
        .iter()
        .map(|v| v["fingerprint"].as_str().unwrap().to_string())
        .collect();
    fps.dedup();
    fps
}

/// A database on the local PostgreSQL server, dropped at the end.
pub struct Pg {
    pub name: String,
}

const PG_ADMIN: &str = "host=127.0.0.1 port=5432 user=postgres dbname=postgres";

impl Pg {
    pub fn new() -> Pg {
        let name = format!("kt_cli_{}_{}", std::process::id(), rand::random::<u32>());
        postgres::Client::connect(PG_ADMIN, postgres::NoTls)
            .expect("PostgreSQL must listen on 127.0.0.1:5432 with trust authentication (scripts/install-test-deps.sh starts it)")
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create database");
        Pg { name }
    }
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.name)
    }
    /// Every row of every table, as text.
    pub fn dump(&self) -> String {
        let mut c = postgres::Client::connect(
            &format!(
                "host=127.0.0.1 port=5432 user=postgres dbname={}",
                self.name
            ),
            postgres::NoTls,
        )
        .unwrap();
        let mut out = String::new();
        let tables: Vec<String> = c
            .query(
                "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert!(tables.len() >= 5, "{tables:?}");
        for t in tables {
            for r in c.query(&format!("SELECT t::text FROM {t} t"), &[]).unwrap() {
                out.push_str(&r.get::<_, String>(0));
                out.push('\n');
            }
        }
        out
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

/// Everything a SQLite store wrote (the file and its WAL, if any).
fn sqlite_bytes(t: &CliTest, name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(t.root()).unwrap() {
        let p = e.unwrap().path();
        if p.file_name().unwrap().to_string_lossy().starts_with(name) {
            out.extend(std::fs::read(&p).unwrap());
        }
    }
    assert!(!out.is_empty(), "{name} exists");
    out
}

fn has(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// The scenario of a team: scan and record, triage one finding as a false
/// positive, scan again (it is not reported), fix the other (it is marked
/// fixed), and never a secret in the store — on `db`.
fn scan_triage_rescan(t: &CliTest, db: &str, contents: &dyn Fn() -> Vec<u8>) {
    let a = fake::test_token();
    let b = fake::test_token();
    t.write("tree/a.env", &format!("TOKEN={a}\n"));
    t.write("tree/b.env", &format!("OTHER={b}\n"));
    let scan = |extra: &[&str]| {
        let mut args = vec!["scan", "--rules", "rules", "--db", db, "--format", "jsonl"];
        args.extend_from_slice(extra);
        args.push("tree");
        t.run(&args)
    };
    let r = scan(&["--reveal"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("2 new"), "{}", r.stderr);
    let fps = fingerprints(&r);
    assert_eq!(fps.len(), 2);
    let fp_a = lines(&r)
        .iter()
        .find(|v| v["path"] == "tree/a.env")
        .unwrap()["fingerprint"]
        .as_str()
        .unwrap()
        .to_string();

    let r = t.run(&["findings", "--db", db]);
    assert_eq!(r.code, 1, "{r:?}");
    let listed = lines(&r);
    assert_eq!(listed.len(), 2, "{}", r.stdout);
    // The store lists its keyed fingerprints, not the report's.
    let stored_a = listed.iter().find(|v| v["path"] == "tree/a.env").unwrap()["fingerprint"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(stored_a, fp_a);
    assert!(!r.stdout.contains(&fp_a), "{}", r.stdout);
    for v in &listed {
        assert_eq!(v["store"]["status"], "open");
        assert_eq!(v["store"]["version"], 1);
        assert!(v["store"]["first_seen"].as_str().unwrap().ends_with('Z'));
        assert_eq!(v["rule_id"], "testing.token");
        assert!(v.get("secret").is_none());
    }

    // A prefix of the store's fingerprint names the finding; so does the
    // report's whole fingerprint.
    let r = t.run(&["triage", "--db", db, &fp_a]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(lines(&r)[0]["fingerprint"], stored_a.as_str());
    let r = t.run(&[
        "triage",
        "--db",
        db,
        &stored_a[..10],
        "--status",
        "false_positive",
        "--comment",
        "a fixture, not a token",
        "--actor",
        "alice",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(lines(&r)[0]["store"]["status"], "false_positive");

    // The false positive is not reported again; the other one is.
    let r = scan(&[]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(fingerprints(&r).len(), 1);
    assert!(!r.stdout.contains(&fp_a));
    assert!(
        r.stderr.contains("1 triaged as false positive"),
        "{}",
        r.stderr
    );

    // Fixed: the other token is removed; a complete scan marks it.
    std::fs::remove_file(t.root().join("tree/b.env")).unwrap();
    let r = scan(&[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("1 fixed"), "{}", r.stderr);
    let r = t.run(&["findings", "--db", db, "--status", "fixed"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(lines(&r).len(), 1);
    assert_eq!(lines(&r)[0]["path"], "tree/b.env");
    assert!(lines(&r)[0]["store"]["fixed_at"].is_string());

    // The trail of the triaged finding.
    let r = t.run(&["triage", "--db", db, &fp_a]);
    assert_eq!(r.code, 0, "{r:?}");
    let trail = lines(&r);
    let audit: Vec<_> = trail.iter().filter(|v| v["type"] == "audit").collect();
    assert_eq!(audit[0]["entry"]["actor"], "alice");
    assert_eq!(audit[0]["entry"]["before"], "open");
    assert_eq!(audit[0]["entry"]["after"], "false_positive");
    assert!(
        trail
            .iter()
            .any(|v| v["type"] == "comment" && v["entry"]["body"] == "a fixture, not a token")
    );

    // A stale change is refused: the finding is at version 2 now.
    let r = t.run(&[
        "triage",
        "--db",
        db,
        &fp_a,
        "--status",
        "open",
        "--if-version",
        "1",
        "--actor",
        "bob",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("changed since version 1"), "{}", r.stderr);

    let bytes = contents();
    assert!(has(&bytes, &stored_a), "the store holds its fingerprint");
    assert!(
        !has(&bytes, &fp_a),
        "the store holds the report's unkeyed fingerprint"
    );
    assert!(
        !has(&bytes, &a) && !has(&bytes, &b),
        "the store holds a secret"
    );
}

#[test]
fn sqlite_store_records_triages_and_fixes() {
    let t = with_test_rules();
    scan_triage_rescan(&t, "kt.db", &|| sqlite_bytes(&t, "kt.db"));
}

#[test]
fn postgres_store_records_triages_and_fixes() {
    let t = with_test_rules();
    let pg = Pg::new();
    scan_triage_rescan(&t, &pg.url(), &|| pg.dump().into_bytes());
}

#[test]
fn import_records_a_report_without_its_secrets() {
    let t = with_test_rules();
    let a = fake::test_token();
    t.write("tree/a.env", &format!("TOKEN={a}\n"));
    let r = t.run(&[
        "scan", "--rules", "rules", "--reveal", "--format", "jsonl", "-o", "r.jsonl", "tree",
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        t.read("r.jsonl").contains(&a),
        "the report was written with --reveal"
    );
    let r = t.run(&["import", "--db", "kt.db", "--target", "acme/api", "r.jsonl"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("1 new"), "{}", r.stderr);
    let r = t.run(&["findings", "--db", "kt.db", "--target", "acme/api"]);
    assert_eq!(r.code, 1, "{r:?}");
    let v = &lines(&r)[0];
    assert_eq!(v["path"], "tree/a.env");
    assert_eq!(v["store"]["targets"][0], "acme/api");
    let report: serde_json::Value =
        serde_json::from_str(t.read("r.jsonl").lines().next().unwrap()).unwrap();
    let fp = report["fingerprint"].as_str().unwrap();
    let bytes = sqlite_bytes(&t, "kt.db");
    assert!(!has(&bytes, &a));
    assert!(
        !has(&bytes, fp),
        "the report's unkeyed fingerprint is stored"
    );
    assert!(has(&bytes, v["fingerprint"].as_str().unwrap()));
    // Importing the same report again adds no finding.
    let r = t.run(&["import", "--db", "kt.db", "--target", "acme/api", "r.jsonl"]);
    assert!(r.stderr.contains("0 new"), "{}", r.stderr);
}

#[test]
fn a_store_without_its_key_is_refused_and_kept() {
    let t = with_test_rules();
    t.write("tree/a.env", &format!("TOKEN={}\n", fake::test_token()));
    let r = t.run(&["scan", "--rules", "rules", "--db", "kt.db", "tree"]);
    assert_eq!(r.code, 1, "{r:?}");
    let key = t.read("kt.db.key");
    std::fs::remove_file(t.root().join("kt.db.key")).unwrap();
    for args in [
        &["findings", "--db", "kt.db"][..],
        &["scan", "--rules", "rules", "--db", "kt.db", "tree"][..],
    ] {
        let r = t.run(args);
        assert_eq!(r.code, 2, "{r:?}");
        assert!(r.stderr.contains("kt.db.key"), "{}", r.stderr);
        assert!(
            r.stderr.contains("fingerprint key is missing"),
            "{}",
            r.stderr
        );
        assert!(
            !t.root().join("kt.db.key").exists(),
            "no new key orphans the findings"
        );
    }
    // KEYTRAIL_STORE_KEY: the key from the environment; a wrong one is refused.
    let r = t.run_with_env(
        &["findings", "--db", "kt.db"],
        &[("KEYTRAIL_STORE_KEY", key.trim())],
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(lines(&r).len(), 1);
    let wrong = "ab".repeat(32);
    let r = t.run_with_env(
        &["findings", "--db", "kt.db"],
        &[("KEYTRAIL_STORE_KEY", &wrong)],
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("not this store's fingerprint key"),
        "{}",
        r.stderr
    );
    let r = t.run_with_env(
        &["findings", "--db", "kt.db"],
        &[("KEYTRAIL_STORE_KEY", "12ab")],
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr
            .contains("KEYTRAIL_STORE_KEY: a store key is 64 hex digits"),
        "{}",
        r.stderr
    );
}

#[test]
fn import_names_the_bad_line() {
    let t = CliTest::new();
    t.write("bad.jsonl", "{\"rule_id\": \"x\"\n");
    let r = t.run(&["import", "--db", "kt.db", "bad.jsonl"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("bad.jsonl:1:"), "{}", r.stderr);
}

#[test]
fn a_corrupt_store_stops_the_scan_and_is_left_alone() {
    let t = with_test_rules();
    t.write("tree/a.env", &format!("TOKEN={}\n", fake::test_token()));
    let junk = "this is not a database ".repeat(400);
    t.write("kt.db", &junk);
    let r = t.run(&["scan", "--rules", "rules", "--db", "kt.db", "tree"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("kt.db"), "{}", r.stderr);
    assert!(r.stderr.contains("corrupt"), "{}", r.stderr);
    assert_eq!(t.read("kt.db"), junk);
}

#[test]
fn an_unreachable_postgres_is_named_without_its_password() {
    let t = with_test_rules();
    t.write("tree/a.env", &format!("TOKEN={}\n", fake::test_token()));
    let r = t.run(&[
        "findings",
        "--db",
        "postgres://kt:hunter2@127.0.0.1:1/keytrail",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("127.0.0.1:1"), "{}", r.stderr);
    assert!(!r.stderr.contains("hunter2"), "{}", r.stderr);
}

#[test]
fn unknown_fingerprints_and_statuses_are_errors() {
    let t = CliTest::new();
    // Reading commands do not make an empty store at a mistyped path.
    let r = t.run(&["findings", "--db", "kt.db"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("kt.db: no such store"), "{}", r.stderr);
    assert!(!t.root().join("kt.db").exists());
    let r = t.run(&["scan", "--db", "kt.db", "-q", "-"]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = t.run(&[
        "triage", "--db", "kt.db", "00ff", "--status", "revoked", "--actor", "a",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("no finding has the fingerprint `00ff`"),
        "{}",
        r.stderr
    );
    let r = t.run(&["triage", "--db", "kt.db", "00ff", "--status", "done"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("unknown status `done`"), "{}", r.stderr);
}

#[test]
fn verify_records_verification_that_later_scans_keep() {
    use keytrail_testkit::recorder::{Answer, Recorder};
    let t = CliTest::new();
    let tok = fake::github_pat();
    t.write("conf/app.env", &format!("GITHUB_TOKEN={tok}\n"));
    let live = tok.clone();
    let srv = Recorder::start(move |r| {
        if r.header("authorization") == Some(&format!("Bearer {live}")) {
            Answer::new(200, r#"{"login":"octo","id":1,"type":"User"}"#)
        } else {
            Answer::new(401, r#"{"message":"Bad credentials"}"#)
        }
    });
    let run = |args: &[&str]| {
        let out = t
            .command(args)
            .env("KEYTRAIL_VERIFY_ENDPOINT_GITHUB", srv.url())
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        Run {
            code: out.status.code().unwrap(),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    };
    let r = run(&["scan", "--format", "json", "-o", "f.json", "conf"]);
    assert_eq!(r.code, 1, "{r:?}");
    let r = run(&["verify", "--db", "kt.db", "--target", "app", "-q", "f.json"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(srv.requests().len(), 1);
    let listed = |t: &CliTest| {
        let r = t.run(&["findings", "--db", "kt.db"]);
        assert_eq!(r.code, 1, "{r:?}");
        lines(&r)
    };
    let v = &listed(&t)[0];
    assert_eq!(v["verification"]["status"], "live", "{v}");
    assert_eq!(v["store"]["targets"][0], "app");
    // A scan without --verify of the same target keeps the verification.
    let r = run(&["scan", "--db", "kt.db", "--target", "app", "-q", "conf"]);
    assert_eq!(r.code, 1, "{r:?}");
    let v = &listed(&t)[0];
    assert_eq!(v["verification"]["status"], "live", "{v}");
    assert_eq!(v["store"]["version"], 1);
    assert!(!has(&sqlite_bytes(&t, "kt.db"), &tok));
}

#[test]
fn a_run_key_records_a_retried_job_once() {
    let t = with_test_rules();
    t.write("tree/a.env", &format!("TOKEN={}\n", fake::test_token()));
    let args = [
        "scan",
        "--rules",
        "rules",
        "--db",
        "kt.db",
        "--run-key",
        "pipeline-7",
        "tree",
    ];
    let r = t.run(&args);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("1 new"), "{}", r.stderr);
    // The retry finds a second token, but the run is recorded already.
    t.write("tree/b.env", &format!("TOKEN={}\n", fake::test_token()));
    let r = t.run(&args);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("run `pipeline-7` was already recorded"),
        "{}",
        r.stderr
    );
    let r = t.run(&["findings", "--db", "kt.db"]);
    assert_eq!(lines(&r).len(), 1, "{}", r.stdout);
}

#[test]
fn an_allow_listed_finding_is_not_called_fixed() {
    let t = with_test_rules();
    t.write("tree/a.env", &format!("TOKEN={}\n", fake::test_token()));
    let r = t.run(&[
        "scan", "--rules", "rules", "--db", "kt.db", "--format", "jsonl", "tree",
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    let fp = fingerprints(&r).remove(0);
    t.write("kt.toml", &format!("[allow]\nfingerprints = [\"{fp}\"]\n"));
    let r = t.run(&[
        "scan", "--rules", "rules", "--db", "kt.db", "--config", "kt.toml", "tree",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("0 fixed"), "{}", r.stderr);
    let r = t.run(&["findings", "--db", "kt.db", "--status", "open"]);
    assert_eq!(lines(&r).len(), 1, "{r:?}");
    // Removed for real: fixed.
    std::fs::remove_file(t.root().join("tree/a.env")).unwrap();
    let r = t.run(&[
        "scan", "--rules", "rules", "--db", "kt.db", "--config", "kt.toml", "tree",
    ]);
    assert!(r.stderr.contains("1 fixed"), "{}", r.stderr);
}

#[test]
fn a_locked_store_is_named_and_the_change_can_be_retried() {
    use std::io::{BufRead, BufReader};
    let t = with_test_rules();
    t.write("tree/a.env", &format!("TOKEN={}\n", fake::test_token()));
    let r = t.run(&[
        "scan", "--rules", "rules", "--db", "kt.db", "--format", "jsonl", "tree",
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    let fp = fingerprints(&r).remove(0);
    // Another process holds the store's write lock until its stdin closes.
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let mut holder = std::process::Command::new(&python)
        .arg("-c")
        .arg(
            "import sqlite3, sys\n\
             c = sqlite3.connect(sys.argv[1], isolation_level=None)\n\
             c.execute('BEGIN IMMEDIATE')\n\
             c.execute(\"INSERT INTO keytrail_meta VALUES ('lock', 'held')\")\n\
             print('locked', flush=True)\n\
             sys.stdin.read()\n\
             c.execute('ROLLBACK')\n",
        )
        .arg(t.root().join("kt.db"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{python} (with its sqlite3 module) is needed: {e}"));
    let mut line = String::new();
    BufReader::new(holder.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "locked");
    let change = [
        "triage", "--db", "kt.db", &fp, "--status", "revoked", "--actor", "alice",
    ];
    let r = t.run(&change);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("kt.db"), "{}", r.stderr);
    assert!(r.stderr.contains("locked"), "{}", r.stderr);
    assert!(r.stderr.contains("nothing was written"), "{}", r.stderr);
    drop(holder.stdin.take());
    assert!(holder.wait().unwrap().success());
    // Nothing lost: the finding is as it was, and the change goes through now.
    let r = t.run(&["findings", "--db", "kt.db"]);
    assert_eq!(lines(&r)[0]["store"]["status"], "open");
    let r = t.run(&change);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(lines(&r)[0]["store"]["status"], "revoked");
}

#[test]
fn posture_findings_are_recorded_and_listed_apart_from_secrets() {
    let t = CliTest::new();
    let spec = keytrail_testkit::snapshot::AwsSnapshotSpec {
        roles: 6,
        users: 4,
        groups: 2,
        managed_policies: 3,
        buckets: 2,
        instances_per_region: 1,
        ..Default::default()
    };
    keytrail_testkit::snapshot::write_aws_snapshot(&t.root().join("snap"), &spec).unwrap();
    let r = t.run(&["posture", "--snapshot", "snap", "--format", "jsonl"]);
    assert_eq!(
        r.code, 1,
        "the generated account has posture findings: {r:?}"
    );
    let expected = lines(&r).len();
    assert!(expected > 0);
    let r = t.run(&[
        "posture",
        "--snapshot",
        "snap",
        "--format",
        "jsonl",
        "--db",
        "kt.db",
        "--target",
        "acct",
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains(&format!("{expected} new")),
        "{}",
        r.stderr
    );
    let r = t.run(&["findings", "--db", "kt.db", "--kind", "posture"]);
    assert_eq!(r.code, 1, "{r:?}");
    let listed = lines(&r);
    assert_eq!(listed.len(), expected);
    for v in &listed {
        assert!(v["check"].is_string() && v["resource"].is_string(), "{v}");
        assert_eq!(v["store"]["status"], "open");
        assert_eq!(v["store"]["targets"][0], "acct");
    }
    // Secrets are listed apart: none here.
    let r = t.run(&["findings", "--db", "kt.db"]);
    assert_eq!(r.code, 0, "{r:?}");
    // The same snapshot again: the same findings, none new.
    let r = t.run(&[
        "posture",
        "--snapshot",
        "snap",
        "-q",
        "--db",
        "kt.db",
        "--target",
        "acct",
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    let r = t.run(&[
        "findings", "--db", "kt.db", "--kind", "posture", "--format", "human",
    ]);
    assert_eq!(r.stdout.lines().count(), expected, "{}", r.stdout);
    assert!(r.stdout.contains("arn:aws:"), "{}", r.stdout);
}

#[test]
fn detect_alerts_are_recorded_once_in_both_output_paths() {
    let t = CliTest::new();
    let capture = keytrail_testkit::data::stratus("aws.defense-evasion.cloudtrail-stop")
        .display()
        .to_string();
    // Streamed (JSONL) and collected (human) output both record.
    let r = t.run(&[
        "detect", &capture, "--format", "jsonl", "-q", "--db", "kt.db", "--target", "trail",
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    let raised = r.stdout.lines().count();
    assert!(raised > 0);
    let r = t.run(&["detect", &capture, "--db", "kt.db", "--target", "trail"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains(&format!("{raised} alert(s), 0 new")),
        "{}",
        r.stderr
    );
    let r = t.run(&["findings", "--db", "kt.db", "--kind", "alert"]);
    assert_eq!(r.code, 1, "{r:?}");
    let listed = lines(&r);
    assert_eq!(listed.len(), raised);
    assert!(
        listed
            .iter()
            .any(|v| v["rule_id"] == "keytrail.aws.defense-evasion.logging-disabled")
    );
    assert!(
        listed
            .iter()
            .all(|v| v["store"]["status"] == "open" && v["principal"].is_string())
    );
    let fp = listed[0]["id"].as_str().unwrap().to_string();
    let r = t.run(&[
        "triage",
        "--db",
        "kt.db",
        &fp,
        "--status",
        "acknowledged",
        "--actor",
        "soc",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(lines(&r)[0]["store"]["status"], "acknowledged");
}

#[test]
fn exposure_records_one_entry_per_credential() {
    let t = CliTest::new();
    let sc = keytrail_testkit::exposure::write_exposure_scenario(&t.root().join("sc"), 5)
        .expect("scenario");
    let r = t.run(&[
        "scan",
        "--format",
        "json",
        "-o",
        "findings.json",
        sc.repo.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    let args = |db: bool| {
        let mut a = vec![
            "exposure".to_string(),
            "--findings".into(),
            "findings.json".into(),
            "--snapshot".into(),
            sc.snapshot.display().to_string(),
            "--cloudtrail".into(),
            sc.trail.display().to_string(),
            "--format".into(),
            "jsonl".into(),
        ];
        if db {
            a.extend([
                "--db".into(),
                "kt.db".into(),
                "--target".into(),
                "acct".into(),
            ]);
        }
        a
    };
    let plain = args(false);
    let r = t.run(&plain.iter().map(String::as_str).collect::<Vec<_>>());
    let expected = r.stdout.lines().count();
    assert!(expected > 0, "{r:?}");
    let with_db = args(true);
    let r = t.run(&with_db.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        r.stderr
            .contains(&format!("{expected} credential(s), {expected} new")),
        "{}",
        r.stderr
    );
    let r = t.run(&["findings", "--db", "kt.db", "--kind", "exposure"]);
    assert_eq!(r.code, 1, "{r:?}");
    let listed = lines(&r);
    assert_eq!(listed.len(), expected);
    for v in &listed {
        assert!(
            v["access_key_id"].is_string() && v["verdict"].is_string(),
            "{v}"
        );
        assert_eq!(v["store"]["targets"][0], "acct");
    }
    // The store holds what the records hold, and no secret of the scenario's keys.
    let bytes = sqlite_bytes(&t, "kt.db");
    for k in [&sc.used, &sc.unused, &sc.deleted, &sc.other_account] {
        assert!(
            !has(&bytes, &k.secret),
            "the secret key of {} is in the store",
            k.id
        );
    }
}

#[test]
fn import_takes_posture_and_detect_jsonl_too() {
    let t = CliTest::new();
    let spec = keytrail_testkit::snapshot::AwsSnapshotSpec {
        roles: 4,
        users: 3,
        groups: 1,
        managed_policies: 2,
        buckets: 1,
        instances_per_region: 1,
        ..Default::default()
    };
    keytrail_testkit::snapshot::write_aws_snapshot(&t.root().join("snap"), &spec).unwrap();
    let r = t.run(&[
        "posture",
        "--snapshot",
        "snap",
        "--format",
        "jsonl",
        "-o",
        "posture.jsonl",
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    let capture = keytrail_testkit::data::stratus("aws.defense-evasion.cloudtrail-stop")
        .display()
        .to_string();
    let r = t.run(&[
        "detect",
        &capture,
        "--format",
        "jsonl",
        "-o",
        "alerts.jsonl",
        "-q",
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    let r = t.run(&["import", "--db", "kt.db", "posture.jsonl", "alerts.jsonl"]);
    assert_eq!(r.code, 0, "{r:?}");
    let posture = t.read("posture.jsonl").lines().count();
    let alerts = t.read("alerts.jsonl").lines().count();
    let r = t.run(&["findings", "--db", "kt.db", "--kind", "posture"]);
    assert_eq!(lines(&r).len(), posture);
    let r = t.run(&["findings", "--db", "kt.db", "--kind", "alert"]);
    assert_eq!(lines(&r).len(), alerts);
    // Recording the same posture run directly finds the same fingerprints.
    let r = t.run(&["posture", "--snapshot", "snap", "-q", "--db", "kt.db"]);
    assert_eq!(r.code, 1, "{r:?}");
    let r = t.run(&["findings", "--db", "kt.db", "--kind", "posture"]);
    assert_eq!(lines(&r).len(), posture, "no duplicates");
    // A bad line is named.
    t.write("bad.jsonl", "{\"check\": \"x\", \"resource\": \"r\", \"severity\": \"high\", \"title\": \"t\"}\n{\"check\": \"x\", \"resource\": \"r\", \"severity\": \"dire\", \"title\": \"t\"}\n");
    let r = t.run(&["import", "--db", "kt.db", "bad.jsonl"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("bad.jsonl:2:"), "{}", r.stderr);
}

#[test]
fn runs_are_listed_as_jsonl_json_and_a_table() {
    let t = with_test_rules();
    t.write("tree/a.env", &format!("TOKEN={}\n", fake::test_token()));
    let r = t.run(&[
        "scan", "--rules", "rules", "--db", "kt.db", "--target", "acme/api", "tree",
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    std::fs::remove_file(t.root().join("tree/a.env")).unwrap();
    let r = t.run(&[
        "scan", "--rules", "rules", "--db", "kt.db", "--target", "acme/web", "tree",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = t.run(&["runs", "--db", "kt.db"]);
    assert_eq!(r.code, 0, "{r:?}");
    let runs = lines(&r);
    assert_eq!(runs.len(), 2, "{}", r.stdout);
    assert_eq!(runs[0]["command"], "scan");
    assert_eq!(runs[0]["target"], "acme/api");
    assert_eq!(runs[0]["findings"], 1);
    assert_eq!(runs[0]["complete"], true);
    assert!(runs[0]["finished_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(runs[1]["target"], "acme/web");
    assert_eq!(runs[1]["findings"], 0);
    let r = t.run(&[
        "runs", "--db", "kt.db", "--target", "acme/web", "--format", "json",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["target"], "acme/web");
    let r = t.run(&["runs", "--db", "kt.db", "--format", "human"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.lines().next().unwrap().contains("findings"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("acme/api") && r.stdout.contains("acme/web"));
    // Bad input: a store that is not there, an unknown format.
    let r = t.run(&["runs", "--db", "nope.db"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("nope.db"), "{}", r.stderr);
    let r = t.run(&["runs", "--db", "kt.db", "--format", "xml"]);
    assert_eq!(r.code, 2, "{r:?}");
}

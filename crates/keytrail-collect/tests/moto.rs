//! Live collection against moto: `seed_moto.py` starts moto on 127.0.0.1
//! (free port) and seeds two accounts with a positive and a negative case
//! for every AWS posture check; `collect_aws` collects each account with
//! `AWS_ENDPOINT_URL` and fake credentials; `keytrail_inventory` loads and
//! evaluates the result. A second test collects the same account with the
//! AWS CLI itself (`cli_snapshot.py`) and requires both snapshots to
//! evaluate identically.
//!
//! The collector runs in a child process (this test binary re-executed on
//! the ignored test `collect_child`), because the SDK must find the
//! endpoint and credentials in the environment, and a test cannot change
//! its own environment safely. The child refuses to run unless the endpoint
//! is a 127.0.0.1 URL, so no real AWS account is ever reached.
//!
//! When Python with moto and boto3 is missing the tests fail naming what to
//! install (`scripts/install-test-deps.sh` installs them); they never skip.

use keytrail_inventory::{CHECKS, Report, check_all, load_snapshot};
use keytrail_types::Diagnostic;
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

const REGIONS: &[&str] = &["us-east-1", "eu-west-1"];

fn tests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests")
}

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Whether `python3` can import the given modules.
fn python_has(modules: &str) -> bool {
    Command::new(python())
        .args(["-c", &format!("import {modules}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Fails the test, naming what to install, when a Python test dependency is missing.
fn require(modules: &str, what: &str) {
    assert!(
        python_has(modules),
        "{what} is not installed ({} cannot import {modules}); install it with `pip install 'moto[server]' boto3 awscli` or run scripts/install-test-deps.sh",
        python()
    );
}

/// The running, seeded moto server and its manifest.
struct Moto {
    _child: Child,
    manifest: Value,
}

impl Moto {
    fn endpoint(&self) -> &str {
        self.manifest["endpoint"].as_str().expect("endpoint")
    }

    fn accounts(&self) -> Vec<String> {
        let mut v: Vec<String> = self.manifest["accounts"]
            .as_object()
            .expect("accounts")
            .keys()
            .cloned()
            .collect();
        v.sort();
        v
    }

    fn credentials(&self, account: &str) -> &Value {
        &self.manifest["accounts"][account]
    }
}

/// One moto for the whole test binary. The seed script serves until its
/// standard input closes, which happens when this process exits.
fn moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(|| {
        require("moto.server, boto3", "moto[server]");
        let mut child = Command::new(python())
            .arg(tests_dir().join("seed_moto.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start seed_moto.py");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(600))
            .expect("seed_moto.py did not report within 10 minutes");
        let manifest: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("seed_moto.py failed (output {line:?}): {e}"));
        Moto {
            _child: child,
            manifest,
        }
    })
}

/// The environment of a child that talks to moto as `account`: the
/// endpoint, fake credentials, no shared config files, no instance metadata.
fn moto_env(cmd: &mut Command, moto: &Moto, account: &str) {
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") {
            cmd.env_remove(k);
        }
    }
    let creds = moto.credentials(account);
    cmd.env("AWS_ENDPOINT_URL", moto.endpoint())
        .env(
            "AWS_ACCESS_KEY_ID",
            creds["access_key_id"].as_str().unwrap(),
        )
        .env(
            "AWS_SECRET_ACCESS_KEY",
            creds["secret_access_key"].as_str().unwrap(),
        )
        .env("AWS_REGION", "us-east-1")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", null_device())
        .env("AWS_SHARED_CREDENTIALS_FILE", null_device());
    if let Some(t) = creds["session_token"].as_str() {
        cmd.env("AWS_SESSION_TOKEN", t);
    }
}

fn null_device() -> &'static str {
    if cfg!(windows) { "NUL" } else { "/dev/null" }
}

/// Collects `account` from moto into a fresh directory (in a child
/// process, see the module docs); returns it and the collector's diagnostics.
fn collect(moto: &Moto, account: &str) -> (tempfile::TempDir, Vec<Diagnostic>) {
    let out = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new(std::env::current_exe().expect("test binary"));
    cmd.args([
        "--ignored",
        "--exact",
        "collect_child",
        "--nocapture",
        "--test-threads=1",
    ]);
    moto_env(&mut cmd, moto, account);
    cmd.env("KEYTRAIL_COLLECT_CHILD_OUT", out.path())
        .env("KEYTRAIL_COLLECT_CHILD_REGIONS", REGIONS.join(","));
    let run = cmd.output().expect("run collect_child");
    assert!(
        run.status.success(),
        "collect_child failed for {account}:\n{}\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    let diags: Vec<Diagnostic> = serde_json::from_slice(
        &std::fs::read(out.path().join("diagnostics.json")).expect("diagnostics.json"),
    )
    .expect("diagnostics JSON");
    (out, diags)
}

/// Runs the collector with the environment it was given (the child side of
/// [`collect`]). Not a test on its own: it refuses to run without the
/// parent's settings.
#[test]
#[ignore = "run by the moto tests in a child process with a moto environment"]
fn collect_child() {
    let out = std::env::var("KEYTRAIL_COLLECT_CHILD_OUT")
        .expect("collect_child is started by the moto tests");
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL");
    assert!(
        endpoint.starts_with("http://127.0.0.1:"),
        "refusing to collect from {endpoint}: tests only talk to a local moto"
    );
    assert_eq!(
        std::env::var("AWS_EC2_METADATA_DISABLED").as_deref(),
        Ok("true")
    );
    let regions = std::env::var("KEYTRAIL_COLLECT_CHILD_REGIONS").expect("regions");
    let opts = keytrail_collect::AwsCollectOptions {
        regions: regions.split(',').map(str::to_string).collect(),
        // No endpoint here: the SDK must take it from AWS_ENDPOINT_URL.
        endpoint_url: None,
        profile: None,
        credential_report_timeout_secs: Some(60),
        ..Default::default()
    };
    let diags = keytrail_collect::collect_aws_blocking(&opts, Path::new(&out));
    std::fs::write(
        Path::new(&out).join("diagnostics.json"),
        serde_json::to_vec_pretty(&diags).unwrap(),
    )
    .unwrap();
}

fn evaluate(dir: &Path) -> (Report, Vec<Diagnostic>) {
    let (snap, diags) = load_snapshot(dir);
    let now = keytrail_inventory::Timestamp::from(std::time::SystemTime::now());
    (check_all(&snap, None, now), diags)
}

fn aws_checks() -> Vec<&'static str> {
    CHECKS
        .iter()
        .map(|c| c.id)
        .filter(|id| id.starts_with("aws."))
        .collect()
}

#[test]
fn moto_collection_fires_every_aws_check_positive_and_negative() {
    let moto = moto();
    let expect = moto.manifest["expect"].as_array().expect("expect");

    // The fixture covers every AWS check of the registry both ways.
    for check in aws_checks() {
        for fire in [true, false] {
            assert!(
                expect
                    .iter()
                    .any(|e| e["check"] == check && e["fire"] == fire),
                "seed_moto.py has no {} case for {check}",
                if fire { "positive" } else { "negative" }
            );
        }
    }

    let mut failures = Vec::new();
    for account in moto.accounts() {
        let (dir, collect_diags) = collect(moto, &account);
        assert!(
            collect_diags.is_empty(),
            "collector diagnostics for {account}: {collect_diags:#?}"
        );
        let (report, load_diags) = evaluate(dir.path());
        assert!(
            load_diags.is_empty(),
            "loading the collected snapshot of {account}: {load_diags:#?}"
        );
        let not_evaluated: Vec<_> = report
            .not_evaluated
            .iter()
            .filter(|n| n.check.starts_with("aws."))
            .collect();
        assert!(
            not_evaluated.is_empty(),
            "AWS checks not evaluated on the collected snapshot of {account}: {not_evaluated:#?}"
        );
        for e in expect.iter().filter(|e| e["account"] == account.as_str()) {
            let check = e["check"].as_str().unwrap();
            let resource = e["resource"].as_str().unwrap();
            let fire = e["fire"].as_bool().unwrap();
            let fired = report.of(check).any(|f| f.resource == resource);
            if fired != fire {
                failures.push(format!(
                    "{check} on {resource}: expected {}, got {}",
                    if fire { "a finding" } else { "none" },
                    if fired { "a finding" } else { "none" }
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Findings as comparable facts: (check, resource, fact).
fn finding_set(r: &Report) -> BTreeSet<(String, String, String)> {
    r.findings
        .iter()
        .map(|f| (f.check.clone(), f.resource.clone(), f.fact.clone()))
        .collect()
}

#[test]
fn collected_snapshot_evaluates_like_the_aws_cli_snapshot() {
    let moto = moto();
    require("awscli", "the AWS CLI (awscli)");
    for account in moto.accounts() {
        let (collected, _) = collect(moto, &account);
        let cli = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(python());
        cmd.arg(tests_dir().join("cli_snapshot.py"))
            .arg(cli.path())
            .args(REGIONS);
        moto_env(&mut cmd, moto, &account);
        let status = cmd.status().expect("run cli_snapshot.py");
        assert!(status.success(), "cli_snapshot.py failed for {account}");

        let (by_sdk, sdk_diags) = evaluate(collected.path());
        let (by_cli, cli_diags) = evaluate(cli.path());
        assert!(sdk_diags.is_empty(), "{sdk_diags:#?}");
        assert!(cli_diags.is_empty(), "{cli_diags:#?}");
        assert!(
            !by_cli.findings.is_empty(),
            "the CLI snapshot of {account} has no findings: the comparison would be empty"
        );
        let (a, b) = (finding_set(&by_sdk), finding_set(&by_cli));
        let only_sdk: Vec<_> = a.difference(&b).collect();
        let only_cli: Vec<_> = b.difference(&a).collect();
        assert!(
            only_sdk.is_empty() && only_cli.is_empty(),
            "{account}: findings differ\nonly in the SDK snapshot: {only_sdk:#?}\nonly in the CLI snapshot: {only_cli:#?}"
        );
        assert_eq!(
            by_sdk.not_evaluated, by_cli.not_evaluated,
            "{account}: not-evaluated lists differ"
        );
        // Evidence too: the same facts in the same structure.
        for (s, c) in by_sdk.findings.iter().zip(&by_cli.findings) {
            assert_eq!(
                s.evidence, c.evidence,
                "{account}: evidence of {} on {}",
                s.check, s.resource
            );
        }
    }
}

//! `keytrail detect s3://…` against moto's S3 (started by `tests/s3_moto.py` on
//! 127.0.0.1, a free port): a generated two-account organisation trail in the S3
//! layout gives the same alerts read from S3 as read from disk; `--since`/`--until`
//! leave date folders unlisted; a missing bucket exits 2 naming it; a `--state`
//! re-run reads nothing. When Python with moto and boto3 is missing the tests fail
//! naming what to install (`scripts/install-test-deps.sh`); they never skip.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use keytrail_testkit::cloudtrail::{ActivityConfig, Layout, write_org_trail};

use crate::{CliTest, Run};

pub(crate) const BUCKET: &str = "org-trail";

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

/// The trail on disk and moto serving it.
pub(crate) struct Served {
    _child: Child,
    pub(crate) endpoint: String,
    pub(crate) tree: PathBuf,
    pub(crate) files: usize,
    /// The one object the `denied-` alias refuses (its key).
    pub(crate) denied: String,
    _dir: tempfile::TempDir,
}

/// One generated trail and one moto for the whole test binary (the script serves
/// until its standard input closes, when this process exits).
pub(crate) fn served() -> &'static Served {
    static S: OnceLock<Served> = OnceLock::new();
    S.get_or_init(|| {
        let ok = Command::new(python())
            .args(["-c", "import moto.server, boto3"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "moto[server] and boto3 are not installed ({} cannot import them); install them with `pip install 'moto[server]' boto3` or run scripts/install-test-deps.sh",
            python()
        );
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("trail");
        let cfg = ActivityConfig {
            days: 2,
            layout: Layout::S3 {
                org: Some("o-abc123".into()),
            },
            ..ActivityConfig::default()
        };
        let w = write_org_trail(&cfg, 2, &tree).unwrap();
        // A digest file is never read (locally or on S3).
        let digest = tree.join(
            "AWSLogs/o-abc123/100000000000/CloudTrail-Digest/us-east-1/2024/03/04/digest.json.gz",
        );
        std::fs::create_dir_all(digest.parent().unwrap()).unwrap();
        std::fs::write(&digest, b"not a log").unwrap();
        // The earliest log object of the first account: refused by `denied-BUCKET`.
        let mut logs: Vec<String> = w
            .files
            .iter()
            .map(|f| {
                f.strip_prefix(&tree)
                    .unwrap_or(f)
                    .to_string_lossy()
                    .replace('\\', "/")
            })
            .collect();
        logs.sort();
        let denied = logs[0].clone();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/s3_moto.py");
        let mut child = Command::new(python())
            .arg(script)
            .arg(BUCKET)
            .arg(&tree)
            .arg(&denied)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start s3_moto.py");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(600))
            .expect("s3_moto.py did not report within 10 minutes");
        let v: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("s3_moto.py failed (output {line:?}): {e}"));
        assert_eq!(v["uploaded"].as_u64().unwrap() as usize, w.files.len() + 1);
        Served {
            _child: child,
            endpoint: v["endpoint"].as_str().unwrap().to_string(),
            tree,
            files: w.files.len(),
            denied,
            _dir: dir,
        }
    })
}

/// Sets `c` up to talk to moto only: its endpoint, fake credentials, no
/// shared config files, no instance metadata.
pub(crate) fn moto_env(c: &mut Command) {
    let s = served();
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") {
            c.env_remove(k);
        }
    }
    c.env("AWS_ENDPOINT_URL", &s.endpoint)
        .env("AWS_ACCESS_KEY_ID", "AKIAFAKEFAKEFAKEFAKE")
        .env("AWS_SECRET_ACCESS_KEY", "fake-secret-for-moto")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null");
}

/// Runs `keytrail ARGS` talking to moto only: its endpoint, fake credentials, no
/// shared config files, no instance metadata.
fn run_s3(t: &CliTest, args: &[&str]) -> Run {
    let mut c = t.command(args);
    moto_env(&mut c);
    c.stdin(Stdio::null());
    let out = c.output().expect("run keytrail");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The number in `… N object(s) read` of the s3 summary line.
fn objects_read(stderr: &str) -> usize {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("s3: "))
        .unwrap_or_else(|| panic!("no s3 line in {stderr}"));
    let before = line.split(" object(s) read").next().unwrap();
    before.rsplit(' ').next().unwrap().parse().unwrap()
}

/// The `detect: N events, …` summary line.
fn summary(stderr: &str) -> &str {
    stderr
        .lines()
        .find(|l| l.starts_with("detect: ") && l.contains("identities"))
        .unwrap_or_else(|| panic!("no summary in {stderr}"))
}

const COMMON: &[&str] = &[
    "--format",
    "jsonl",
    "--learning-days",
    "0",
    "--threads",
    "2",
];

#[test]
fn s3_gives_the_alerts_of_the_same_files_on_disk() {
    let s = served();
    let t = CliTest::new();
    let tree = s.tree.display().to_string();
    let mut local_args = vec!["detect", tree.as_str()];
    local_args.extend(COMMON);
    let local = t.run(&local_args);
    let uri = format!("s3://{BUCKET}/");
    let mut s3_args = vec!["detect", uri.as_str()];
    s3_args.extend(COMMON);
    let remote = run_s3(&t, &s3_args);
    assert_eq!(local.code, 1, "{local:?}");
    assert_eq!(remote.code, 1, "{}", remote.stderr);
    assert!(local.stdout.lines().count() > 0);
    assert_eq!(remote.stdout, local.stdout, "{}", remote.stderr);
    assert_eq!(summary(&remote.stderr), summary(&local.stderr));
    assert_eq!(objects_read(&remote.stderr), s.files, "{}", remote.stderr);
    // One thread reads the same alerts.
    let one = run_s3(
        &t,
        &[
            "detect",
            &uri,
            "--format",
            "jsonl",
            "--learning-days",
            "0",
            "--threads",
            "1",
        ],
    );
    assert_eq!(one.stdout, local.stdout, "{}", one.stderr);
}

#[test]
fn since_and_until_leave_days_unlisted_and_match_the_local_run() {
    let s = served();
    let t = CliTest::new();
    let tree = s.tree.display().to_string();
    let range = [
        "--since",
        "2024-03-05T00:00:00Z",
        "--until",
        "2024-03-05T11:59:59Z",
    ];
    let mut local_args = vec!["detect", tree.as_str()];
    local_args.extend(COMMON);
    local_args.extend(range);
    let local = t.run(&local_args);
    let uri = format!("s3://{BUCKET}/AWSLogs/");
    let mut s3_args = vec!["detect", uri.as_str()];
    s3_args.extend(COMMON);
    s3_args.extend(range);
    let remote = run_s3(&t, &s3_args);
    assert!(remote.code == 0 || remote.code == 1, "{}", remote.stderr);
    assert_eq!(remote.stdout, local.stdout, "{}", remote.stderr);
    assert_eq!(summary(&remote.stderr), summary(&local.stderr));
    let read = objects_read(&remote.stderr);
    // About half of the second day (and a few files delivered in the hour after).
    assert!(read > 0 && read < s.files / 3, "{read} of {}", s.files);
    // The first day's folders (2 accounts × regions) were not listed at all.
    let line = remote
        .stderr
        .lines()
        .find(|l| l.starts_with("s3: "))
        .unwrap();
    assert!(!line.contains(" 0 date folder(s)"), "{line}");
}

#[test]
fn a_missing_bucket_exits_2_naming_it() {
    let t = CliTest::new();
    let r = run_s3(&t, &["detect", "s3://no-such-bucket-here/AWSLogs/"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("s3://no-such-bucket-here/AWSLogs/"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("NoSuchBucket"), "{}", r.stderr);
}

#[test]
fn a_state_rerun_reads_no_object_again() {
    let s = served();
    let t = CliTest::new();
    let uri = format!("s3://{BUCKET}/");
    let args = ["detect", uri.as_str(), "--state", "st", "--format", "jsonl"];
    let first = run_s3(&t, &args);
    assert!(first.code == 0 || first.code == 1, "{}", first.stderr);
    assert_eq!(objects_read(&first.stderr), s.files);
    let again = run_s3(&t, &args);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(objects_read(&again.stderr), 0, "{}", again.stderr);
    assert!(
        again
            .stderr
            .contains(&format!("{} file(s) already read", s.files)),
        "{}",
        again.stderr
    );
    assert!(again.stdout.is_empty());
}

/// The fault counters of the fixture (`GET /_faults`).
fn faults() -> serde_json::Value {
    use std::io::{Read, Write};
    let s = served();
    let addr = s.endpoint.trim_start_matches("http://");
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    write!(c, "GET /_faults HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).unwrap();
    let body = out.split("\r\n\r\n").nth(1).unwrap_or("");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[test]
fn throttled_requests_are_retried_and_give_the_same_alerts() {
    let s = served();
    let t = CliTest::new();
    let tree = s.tree.display().to_string();
    let mut local_args = vec!["detect", tree.as_str()];
    local_args.extend(COMMON);
    let local = t.run(&local_args);
    let before = faults()["throttled"].as_u64().unwrap();
    let uri = format!("s3://throttled-{BUCKET}/");
    let mut s3_args = vec!["detect", uri.as_str()];
    s3_args.extend(COMMON);
    let remote = run_s3(&t, &s3_args);
    let throttled = faults()["throttled"].as_u64().unwrap() - before;
    // Every folder listing and about one object in 16 was answered SlowDown once.
    assert!(throttled > 10, "only {throttled} request(s) throttled");
    assert_eq!(remote.code, 1, "{}", remote.stderr);
    assert_eq!(remote.stdout, local.stdout, "{}", remote.stderr);
    assert_eq!(summary(&remote.stderr), summary(&local.stderr));
    assert_eq!(objects_read(&remote.stderr), s.files, "{}", remote.stderr);
    assert!(!remote.stderr.contains("unreadable"), "{}", remote.stderr);
}

#[test]
fn an_object_access_denied_is_named_and_the_rest_is_read() {
    let s = served();
    let t = CliTest::new();
    let uri = format!("s3://denied-{BUCKET}/");
    let mut args = vec!["detect", uri.as_str()];
    args.extend(COMMON);
    let r = run_s3(&t, &args);
    let named = format!("s3://denied-{BUCKET}/{}", s.denied);
    let line = r
        .stderr
        .lines()
        .find(|l| l.contains(&named))
        .unwrap_or_else(|| panic!("{named} not named: {}", r.stderr));
    assert!(line.contains("AccessDenied"), "{line}");
    // Only that object is missing; its events are not, so alerts may differ, but the
    // run goes on and ends as findings (exit 1), and with --fail-on-error as an error.
    assert_eq!(objects_read(&r.stderr), s.files - 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("object(s) read, 1 unreadable"),
        "{}",
        r.stderr
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    args.push("--fail-on-error");
    let r = run_s3(&t, &args);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains(&named), "{}", r.stderr);
    assert!(faults()["denied"].as_u64().unwrap() >= 2);
    // With --state the refused object is not remembered as read: the next run
    // asks for it again (and only for it).
    let state = ["detect", uri.as_str(), "--state", "st", "--format", "jsonl"];
    let first = run_s3(&t, &state);
    assert!(first.stderr.contains(&named), "{}", first.stderr);
    let again = run_s3(&t, &state);
    assert_eq!(objects_read(&again.stderr), 0, "{}", again.stderr);
    assert!(
        again.stderr.contains("object(s) read, 1 unreadable"),
        "{}",
        again.stderr
    );
    assert!(again.stderr.contains(&named), "{}", again.stderr);
}

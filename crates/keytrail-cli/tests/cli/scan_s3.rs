//! `keytrail scan --s3 s3://bucket/prefix` against moto's S3 (started by
//! `tests/s3_moto.py` on 127.0.0.1, a free port): objects go through the
//! file pipeline (a tar.gz opened, a Postman environment split, an object
//! larger than the in-memory limit streamed), the listing is followed past
//! its first page (1,000 keys), locations are `s3://bucket/key`; an object
//! refused (AccessDenied) is named and the rest is read; a bucket that
//! cannot be listed (AccessDenied, NoSuchBucket) or an empty prefix exits 2
//! naming it; throttled requests are retried. When Python with moto and
//! boto3 is missing the tests fail naming what to install; they never skip.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;

use crate::{CliTest, Run, fake};

const BUCKET: &str = "scan-data";
/// Objects in `many/`: more than one ListObjectsV2 page.
const MANY: usize = 1_005;

struct Served {
    _child: Child,
    endpoint: String,
    /// In `config/.env` (the object `denied-` refuses).
    env_token: String,
    /// In `app/settings.py` inside `backups/site.tar.gz`.
    tar_token: String,
    /// Environment value of `exports/Prod.postman_environment.json`.
    postman_token: String,
    /// At the end of `big/dump.sql` (larger than the in-memory limit used).
    big_token: String,
    /// In the last object of `many/`.
    last_token: String,
    _dir: tempfile::TempDir,
}

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

fn served() -> &'static Served {
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
        let tree = dir.path().join("tree");
        let put = |rel: &str, bytes: &[u8]| {
            let p = tree.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, bytes).unwrap();
        };
        let mut fs = fake::secrets();
        let env_token = fs.github_classic();
        put("config/.env", format!("GITHUB_TOKEN={env_token}\n").as_bytes());
        let tar_token = fs.github_classic();
        let src = dir.path().join("site");
        std::fs::create_dir_all(src.join("app")).unwrap();
        std::fs::write(
            src.join("app/settings.py"),
            format!("GITHUB = \"{tar_token}\"\n"),
        )
        .unwrap();
        std::fs::create_dir_all(tree.join("backups")).unwrap();
        let status = Command::new("tar")
            .arg("czf")
            .arg(tree.join("backups/site.tar.gz"))
            .arg("-C")
            .arg(&src)
            .arg("app")
            .status()
            .expect("run tar");
        assert!(status.success());
        let p = keytrail_testkit::exports::postman(&mut fs);
        put("exports/Prod.postman_environment.json", p.environment.as_bytes());
        let big_token = fs.github_classic();
        let mut big = "INSERT INTO t VALUES ('row');\n".repeat(8_000);
        big.push_str(&format!("-- deploy token {big_token}\n"));
        put("big/dump.sql", big.as_bytes());
        let last_token = fs.github_classic();
        for i in 0..MANY {
            let text = if i == MANY - 1 {
                format!("TOKEN={last_token}\n")
            } else {
                format!("line {i}\n")
            };
            put(&format!("many/f{i:04}.txt"), text.as_bytes());
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/s3_moto.py");
        let mut child = Command::new(python())
            .arg(script)
            .arg(BUCKET)
            .arg(&tree)
            .arg("config/.env")
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
        let v: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("s3_moto.py failed (output {line:?}): {e}"));
        assert_eq!(v["uploaded"].as_u64().unwrap() as usize, MANY + 4);
        Served {
            _child: child,
            endpoint: v["endpoint"].as_str().unwrap().to_string(),
            env_token,
            tar_token,
            postman_token: p.env_token,
            big_token,
            last_token,
            _dir: dir,
        }
    })
}

/// Runs `keytrail ARGS` talking to moto only (fake credentials, no shared
/// config files, no instance metadata); the endpoint comes from
/// `AWS_ENDPOINT_URL` unless `endpoint_flag`, then from `--s3-endpoint`.
fn run_s3(t: &CliTest, args: &[&str], endpoint_flag: bool) -> Run {
    let s = served();
    let mut all: Vec<&str> = args.to_vec();
    if endpoint_flag {
        all.extend(["--s3-endpoint", s.endpoint.as_str()]);
    }
    let mut c = t.command(&all);
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") {
            c.env_remove(k);
        }
    }
    if !endpoint_flag {
        c.env("AWS_ENDPOINT_URL", &s.endpoint);
    }
    c.env("AWS_ACCESS_KEY_ID", "AKIAFAKEFAKEFAKEFAKE")
        .env("AWS_SECRET_ACCESS_KEY", "fake-secret-for-moto")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .stdin(Stdio::null());
    let out = c.output().expect("run keytrail");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Location paths of the finding of `secret`.
fn paths_of(findings: &Value, secret: &str) -> Vec<String> {
    let redacted = keytrail_types::redact(secret.as_bytes());
    findings["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["secret_redacted"] == redacted.as_str())
        .flat_map(|f| f["locations"].as_array().unwrap())
        .map(|l| l["path"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn objects_are_scanned_like_files() {
    let s = served();
    let t = CliTest::new();
    let uri = format!("s3://{BUCKET}/");
    let r = run_s3(
        &t,
        &[
            "scan",
            "--format",
            "json",
            "--max-in-memory",
            "65536",
            "--s3",
            &uri,
        ],
        true,
    );
    assert_eq!(r.code, 1, "{r:?}");
    let doc: Value = serde_json::from_str(&r.stdout).unwrap();
    let b = format!("s3://{BUCKET}");
    assert_eq!(paths_of(&doc, &s.env_token), [format!("{b}/config/.env")]);
    assert_eq!(
        paths_of(&doc, &s.tar_token),
        [format!("{b}/backups/site.tar.gz!app/settings.py")]
    );
    assert_eq!(
        paths_of(&doc, &s.postman_token),
        [format!("{b}/exports/Prod.postman_environment.json#/values")]
    );
    assert_eq!(paths_of(&doc, &s.big_token), [format!("{b}/big/dump.sql")]);
    assert_eq!(
        paths_of(&doc, &s.last_token),
        [format!("{b}/many/f{:04}.txt", MANY - 1)]
    );
    // Every object counted: the listing went past its first page.
    let files = doc["summary"]["files_scanned"].as_u64().unwrap();
    assert!(files >= (MANY + 4) as u64, "{files}");
    for secret in [&s.env_token, &s.tar_token, &s.big_token] {
        assert!(!r.all().contains(secret.as_str()), "secret printed");
    }
}

#[test]
fn a_refused_object_is_named_and_the_rest_is_read() {
    let s = served();
    let t = CliTest::new();
    let uri = format!("s3://denied-{BUCKET}/");
    let r = run_s3(&t, &["scan", "--format", "json", "--s3", &uri], false);
    assert_eq!(r.code, 1, "{r:?}");
    let named = format!("s3://denied-{BUCKET}/config/.env");
    assert!(
        r.stderr.contains(&named) && r.stderr.contains("AccessDenied"),
        "{}",
        r.stderr
    );
    let doc: Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(paths_of(&doc, &s.env_token).is_empty());
    assert_eq!(paths_of(&doc, &s.last_token).len(), 1);
    // --fail-on-error turns the unreadable object into exit 2.
    let r = run_s3(&t, &["scan", "--fail-on-error", "--s3", &uri], false);
    assert_eq!(r.code, 2, "{r:?}");
}

#[test]
fn unreadable_buckets_and_empty_prefixes_exit_2_naming_them() {
    let t = CliTest::new();
    for (uri, why) in [
        ("s3://no-such-bucket-here/x/".to_string(), "NoSuchBucket"),
        (format!("s3://locked-{BUCKET}/"), "AccessDenied"),
        (format!("s3://{BUCKET}/nothing-here/"), "no objects"),
    ] {
        let r = run_s3(&t, &["scan", "--s3", &uri], true);
        assert_eq!(r.code, 2, "{uri}: {r:?}");
        assert!(
            r.stderr.contains(&uri) && r.stderr.contains(why),
            "{uri}: {}",
            r.stderr
        );
    }
    // A readable target next to a failed one is still scanned.
    let good = format!("s3://{BUCKET}/config/");
    let r = run_s3(
        &t,
        &["scan", "--s3", "s3://no-such-bucket-here/", "--s3", &good],
        false,
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stdout.contains("config/.env"), "{}", r.stdout);
    let r = run_s3(&t, &["scan", "--s3", "not-a-uri"], false);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("not an s3:// URI"), "{}", r.stderr);
}

#[test]
fn throttled_requests_are_retried() {
    let s = served();
    let t = CliTest::new();
    let uri = format!("s3://throttled-{BUCKET}/");
    let r = run_s3(&t, &["scan", "--format", "json", "--s3", &uri], false);
    assert_eq!(r.code, 1, "{r:?}");
    let doc: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(paths_of(&doc, &s.last_token).len(), 1, "{}", r.stderr);
    assert_eq!(paths_of(&doc, &s.env_token).len(), 1, "{}", r.stderr);
    assert!(!r.stderr.contains("SlowDown"), "{}", r.stderr);
}

/// `keytrail submit scan s3://…`: a worker runs the job as `scan --s3`
/// with its `--s3-endpoint` and its own credentials, records the run under
/// the S3 URI; a bucket it cannot list fails the job (dead-lettered with
/// the reason); a malformed URI is refused at submission.
#[test]
fn s3_prefixes_are_worker_jobs() {
    use crate::store::Pg;
    use crate::worker::{Nats, Worker, jobs, lines};
    let s = served();
    let nats = Nats::start();
    let pg = Pg::new();
    let db = pg.url();
    let t = CliTest::new();
    let url = nats.url();
    let good = format!("s3://{BUCKET}/config/");
    let missing = "s3://no-such-bucket-here/x/";
    let r = t.run(&[
        "submit", "scan", "--nats", &url, "--db", &db, &good, missing,
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let submitted = lines(&r);
    assert_eq!(submitted[0]["target"], good.as_str());
    assert_eq!(submitted[1]["target"], missing);
    let env = [
        ("AWS_ACCESS_KEY_ID", "AKIAFAKEFAKEFAKEFAKE"),
        ("AWS_SECRET_ACCESS_KEY", "fake-secret-for-moto"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_CONFIG_FILE", "/dev/null"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
    ];
    let w = Worker::start_env(
        &t,
        &nats,
        &db,
        "w",
        &[
            "--exit-when-idle",
            "3s",
            "--max-deliver",
            "1",
            "--s3-endpoint",
            &s.endpoint,
        ],
        &env,
    );
    let log = w.wait(120);
    let listed = jobs(&t, &db);
    let job = |target: &str| {
        listed
            .iter()
            .find(|j| j["target"] == target)
            .unwrap_or_else(|| panic!("no job of {target}: {listed:?}"))
            .clone()
    };
    let ok = job(&good);
    assert_eq!(ok["state"], "done", "{ok}\n{log}");
    assert_eq!(ok["findings"], 1, "{ok}\n{log}");
    let bad = job(missing);
    assert_eq!(bad["state"], "failed", "{bad}\n{log}");
    assert!(
        bad["error"].as_str().unwrap().contains(missing)
            && bad["error"].as_str().unwrap().contains("NoSuchBucket"),
        "{bad}"
    );
    let r = t.run(&["findings", "--db", &db]);
    assert_eq!(r.code, 1, "{r:?}");
    let found = lines(&r);
    assert_eq!(found.len(), 1, "{}", r.stdout);
    assert_eq!(found[0]["store"]["targets"][0], good.as_str());
    assert_eq!(found[0]["path"], format!("s3://{BUCKET}/config/.env"));
    assert!(!pg.dump().contains(&s.env_token) && !log.contains(&s.env_token));
    // Refused before anything is queued.
    for bad in ["s3://", "s3://b/k?versionId="] {
        let r = t.run(&["submit", "scan", "--nats", &url, "--db", &db, bad]);
        assert_eq!(r.code, 2, "{bad}: {r:?}");
        assert!(r.stderr.contains(bad), "{bad}: {}", r.stderr);
    }
}

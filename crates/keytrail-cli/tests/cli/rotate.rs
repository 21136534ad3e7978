//! `keytrail revoke aws-key` and `keytrail rotate aws-key` against moto
//! (IAM, STS, Secrets Manager, SSM) with IAM authentication on, started by
//! `tests/revoke_moto.py`: a deactivated or deleted key is refused by STS
//! as on AWS, so each test checks with the keys themselves that the old
//! key stops working and the new one works, and reads the secret store
//! back. Every test makes its own IAM user; the operator identities
//! (full rights, read-only, no store writes) are seeded by the script.
//! When Python with moto and boto3 is missing the tests fail naming what
//! to install; they never skip.

use crate::{CliTest, Run};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

struct Moto {
    _child: Child,
    endpoint: String,
    identities: Value,
    pipe: Mutex<(ChildStdin, BufReader<ChildStdout>)>,
}

fn moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(|| {
        let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
        let ok = Command::new(&python)
            .args(["-c", "import moto.server, boto3"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "moto[server] and boto3 are not installed ({python} cannot import them); install them with `pip install 'moto[server]' boto3` or run scripts/install-test-deps.sh"
        );
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/revoke_moto.py");
        let mut child = Command::new(&python)
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start revoke_moto.py");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).expect("revoke_moto.py output");
        let manifest: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("revoke_moto.py failed (output {line:?}): {e}"));
        Moto {
            _child: child,
            endpoint: manifest["endpoint"].as_str().unwrap().to_string(),
            identities: manifest["identities"].clone(),
            pipe: Mutex::new((stdin, stdout)),
        }
    })
}

/// One request to the fixture script (made with the operator's key).
fn ask(req: Value) -> Value {
    let m = moto();
    let mut pipe = m.pipe.lock().unwrap_or_else(|e| e.into_inner());
    writeln!(pipe.0, "{req}").unwrap();
    pipe.0.flush().unwrap();
    let mut line = String::new();
    pipe.1.read_line(&mut line).unwrap();
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("fixture answer {line:?}: {e}"))
}

/// A user of its own for one test, its first key stored as `store`.
struct App {
    user: String,
    key_id: String,
    secret: String,
    store: String,
    extra: Vec<String>,
}

fn app(store: &str, keys: usize) -> App {
    let user = format!(
        "app-{}",
        crate::fake::random(b"abcdefghijklmnopqrstuvwxyz0123456789", 10)
    );
    let v = ask(json!({"op": "app", "user": user, "store": store, "keys": keys}));
    assert!(v.get("error").is_none(), "fixture: {v}");
    App {
        user,
        key_id: v["key_id"].as_str().unwrap().into(),
        secret: v["secret"].as_str().unwrap().into(),
        store: v["store"].as_str().unwrap().into(),
        extra: v["extra"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap().to_string())
            .collect(),
    }
}

/// Whether STS accepts the key (with the code it gave otherwise).
fn works(key_id: &str, secret: &str) -> Result<String, String> {
    let v = ask(json!({"op": "whoami", "key_id": key_id, "secret": secret}));
    if v["ok"] == true {
        Ok(v["arn"].as_str().unwrap().to_string())
    } else {
        Err(v["code"].as_str().unwrap_or("?").to_string())
    }
}

fn keys(user: &str) -> Vec<(String, String)> {
    ask(json!({"op": "keys", "user": user}))["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["id"].as_str().unwrap().into(),
                k["status"].as_str().unwrap().into(),
            )
        })
        .collect()
}

fn secret_value(id: &str) -> String {
    ask(json!({"op": "secret", "id": id}))["value"]
        .as_str()
        .unwrap()
        .to_string()
}

/// keytrail as `identity` (operator, auditor, nostore, or explicit keys)
/// against moto only; its audit log and journals in the test folder.
fn command_as(t: &CliTest, key: (&str, &str), args: &[&str]) -> Command {
    let m = moto();
    let mut c = t.command(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") || k.starts_with("KEYTRAIL_") {
            c.env_remove(k);
        }
    }
    c.env("AWS_ENDPOINT_URL", &m.endpoint)
        .env("AWS_ACCESS_KEY_ID", key.0)
        .env("AWS_SECRET_ACCESS_KEY", key.1)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("XDG_STATE_HOME", t.root().join("state"))
        .stdin(Stdio::null());
    c
}

/// Runs keytrail as `identity` to the end.
fn run_as(t: &CliTest, key: (&str, &str), args: &[&str]) -> Run {
    let out = command_as(t, key, args).output().expect("run keytrail");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn identity(name: &str) -> (String, String) {
    let i = &moto().identities[name];
    (
        i["key_id"].as_str().unwrap().into(),
        i["secret"].as_str().unwrap().into(),
    )
}

fn run(t: &CliTest, who: &str, args: &[&str]) -> Run {
    let (k, s) = identity(who);
    run_as(t, (&k, &s), args)
}

fn audit(t: &CliTest) -> Vec<Value> {
    std::fs::read_to_string(t.root().join("state/keytrail/audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn revoke_dry_run_changes_nothing_and_is_audited() {
    let t = CliTest::new();
    let a = app("none", 1);
    let r = run(
        &t,
        "operator",
        &["revoke", "aws-key", "--access-key-id", &a.key_id],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stdout.contains("would deactivate-access-key"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(&format!("user {}", a.user)),
        "owner not found: {}",
        r.stdout
    );
    assert_eq!(keys(&a.user), vec![(a.key_id.clone(), "Active".into())]);
    assert!(works(&a.key_id, &a.secret).is_ok());
    let log = audit(&t);
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["result"], "planned");
    assert_eq!(log[0]["target"], a.key_id);
    assert!(
        log[0]["operator"]["identity"]
            .as_str()
            .unwrap()
            .ends_with(":user/operator"),
        "{}",
        log[0]
    );
}

#[test]
fn revoke_deactivates_then_deletes_and_the_key_stops_working() {
    let t = CliTest::new();
    let a = app("none", 1);
    assert!(works(&a.key_id, &a.secret).is_ok());
    let r = run(
        &t,
        "operator",
        &[
            "revoke",
            "aws-key",
            "--access-key-id",
            &a.key_id,
            "--yes",
            "--format",
            "json",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    let out: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(out["user"], a.user.as_str());
    assert_eq!(out["actions"][0]["result"], "succeeded");
    assert_eq!(keys(&a.user), vec![(a.key_id.clone(), "Inactive".into())]);
    assert_eq!(
        works(&a.key_id, &a.secret),
        Err("InvalidClientTokenId".into())
    );
    // Again, now with --delete: already inactive, then deleted.
    let r = run(
        &t,
        "operator",
        &[
            "revoke",
            "aws-key",
            "--access-key-id",
            &a.key_id,
            "--user",
            &a.user,
            "--delete",
            "--yes",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stdout.contains("skipped: deactivate-access-key"),
        "{}",
        r.stdout
    );
    assert!(keys(&a.user).is_empty());
    let log = audit(&t);
    assert_eq!(
        log.iter()
            .map(|l| (l["action"].as_str().unwrap(), l["result"].as_str().unwrap()))
            .collect::<Vec<_>>(),
        vec![
            ("deactivate-access-key", "succeeded"),
            ("deactivate-access-key", "skipped"),
            ("delete-access-key", "succeeded")
        ]
    );
}

/// Architecture invariant: revoke never acts with the leaked key itself.
#[test]
fn revoke_refuses_to_act_with_the_key_it_revokes() {
    let t = CliTest::new();
    let a = app("none", 1);
    let r = run_as(
        &t,
        (&a.key_id, &a.secret),
        &["revoke", "aws-key", "--access-key-id", &a.key_id, "--yes"],
    );
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains("never acts with the key it revokes"),
        "{}",
        r.stderr
    );
    assert_eq!(keys(&a.user), vec![(a.key_id.clone(), "Active".into())]);
    let r = run_as(
        &t,
        (&a.key_id, &a.secret),
        &[
            "rotate",
            "aws-key",
            "--access-key-id",
            &a.key_id,
            "--secret-id",
            "x",
            "--yes",
        ],
    );
    assert_eq!(r.code, 2, "{}", r.all());
    assert_eq!(
        audit(&t)
            .iter()
            .filter(|l| l["action"] == "connect" && l["result"] == "failed")
            .count(),
        2
    );
}

#[test]
fn revoke_reports_unknown_keys_and_denied_operators() {
    let t = CliTest::new();
    let r = run(
        &t,
        "operator",
        &[
            "revoke",
            "aws-key",
            "--access-key-id",
            "AKIAZZZZZZZZZZZZZZZZ",
            "--yes",
        ],
    );
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains("NoSuchEntity") || r.stderr.contains("not"),
        "{}",
        r.stderr
    );
    let a = app("none", 1);
    let r = run(
        &t,
        "operator",
        &[
            "revoke",
            "aws-key",
            "--access-key-id",
            &a.key_id,
            "--user",
            "someone-else",
            "--yes",
        ],
    );
    assert_eq!(r.code, 2, "{}", r.all());
    let r = run(
        &t,
        "auditor",
        &["revoke", "aws-key", "--access-key-id", &a.key_id, "--yes"],
    );
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("AccessDenied"), "{}", r.stderr);
    assert_eq!(keys(&a.user), vec![(a.key_id.clone(), "Active".into())]);
    assert!(
        audit(&t)
            .iter()
            .any(|l| l["result"] == "failed" && l["action"] == "deactivate-access-key")
    );
    let r = run(
        &t,
        "operator",
        &["revoke", "aws-key", "--access-key-id", "not-a-key"],
    );
    assert_eq!(r.code, 2);
}

fn rotate(t: &CliTest, who: &str, a: &App, extra: &[&str]) -> Run {
    let store_flag = if a.store.starts_with('/') {
        "--ssm-parameter"
    } else {
        "--secret-id"
    };
    let mut args = vec![
        "rotate",
        "aws-key",
        "--access-key-id",
        &a.key_id,
        store_flag,
        &a.store,
        "--format",
        "json",
        "--verify-timeout",
        "3s",
    ];
    args.extend_from_slice(extra);
    run(t, who, &args)
}

/// The key stored now in `a`'s store (JSON or lines), read back.
fn stored_pair(a: &App) -> (String, String, String) {
    let text = if a.store.starts_with('/') {
        ask(json!({"op": "param", "name": a.store}))["value"]
            .as_str()
            .unwrap()
            .to_string()
    } else {
        secret_value(&a.store)
    };
    let id = regex::Regex::new(r"AKIA[A-Z0-9]{16}")
        .unwrap()
        .find(&text)
        .unwrap()
        .as_str()
        .to_string();
    let secret = regex::Regex::new(r#"(?i:secret[_a-z]*)"?\s*[:=]\s*"?([A-Za-z0-9/+]{40})"#)
        .unwrap()
        .captures(&text)
        .unwrap_or_else(|| panic!("no secret in {text}"))[1]
        .to_string();
    (text, id, secret)
}

#[test]
fn rotate_replaces_the_key_in_secrets_manager_keeping_the_format() {
    let t = CliTest::new();
    let a = app("sm-json", 1);
    let before = secret_value(&a.store);
    let r = rotate(&t, "operator", &a, &["--grace", "0", "--yes"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let out: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(out["state"], "done");
    let new_id = out["new_key_id"].as_str().unwrap().to_string();
    // STS refused the old key after its deactivation: the time to revoke.
    let deactivated = out["deactivated_after_ms"]
        .as_u64()
        .expect("deactivated_after_ms");
    let revoked = out["time_to_revoke_ms"]
        .as_u64()
        .unwrap_or_else(|| panic!("no time_to_revoke_ms: {out}"));
    assert!(deactivated <= revoked, "{out}");
    assert!(
        audit(&t)
            .iter()
            .any(|l| l["action"] == "confirm-old-key-rejected" && l["result"] == "succeeded"),
        "{out}"
    );
    let (text, id, secret) = stored_pair(&a);
    assert_eq!(id, new_id);
    // Same document, only the two values changed.
    assert_eq!(
        text,
        before
            .replace(&a.key_id, &new_id)
            .replace(&a.secret, &secret)
    );
    assert!(works(&new_id, &secret).is_ok_and(|arn| arn.ends_with(&format!("/{}", a.user))));
    assert_eq!(
        works(&a.key_id, &a.secret),
        Err("InvalidClientTokenId".into())
    );
    assert_eq!(keys(&a.user), vec![(new_id.clone(), "Active".into())]);
    assert!(
        !r.all().contains(&secret) && !r.all().contains(&a.secret),
        "a secret was printed"
    );
    let journal = std::fs::read_to_string(
        t.root()
            .join(format!("state/keytrail/rotations/{}.json", a.key_id)),
    )
    .unwrap();
    assert!(
        !journal.contains(&secret) && !journal.contains(&a.secret),
        "a secret in the journal"
    );
    let audit_text = std::fs::read_to_string(t.root().join("state/keytrail/audit.jsonl")).unwrap();
    assert!(
        !audit_text.contains(&secret) && !audit_text.contains(&a.secret),
        "a secret in the audit log"
    );
}

#[test]
fn rotate_keeps_other_formats_and_ssm() {
    for store in ["sm-upper", "sm-lines", "ssm"] {
        let t = CliTest::new();
        let a = app(store, 1);
        let r = rotate(&t, "operator", &a, &["--yes"]);
        assert_eq!(r.code, 0, "{store}: {}", r.all());
        let out: Value = serde_json::from_str(&r.stdout).unwrap();
        let new_id = out["new_key_id"].as_str().unwrap();
        let (text, id, secret) = stored_pair(&a);
        assert_eq!(id, new_id, "{store}: {text}");
        match store {
            "sm-upper" => assert!(
                text.contains("\"AWS_ACCESS_KEY_ID\"")
                    && text.contains("\"AWS_SECRET_ACCESS_KEY\"")
            ),
            "sm-lines" => assert!(
                text.starts_with("# app credentials\nAWS_ACCESS_KEY_ID=")
                    && text.ends_with("AWS_REGION=eu-west-1\n")
            ),
            _ => {
                assert!(text.contains("\"AccessKeyId\""));
                let p = ask(json!({"op": "param", "name": a.store}));
                assert_eq!(p["type"], "SecureString");
            }
        }
        assert!(works(new_id, &secret).is_ok(), "{store}");
        assert!(works(&a.key_id, &a.secret).is_err(), "{store}");
    }
}

#[test]
fn an_unexpected_stored_format_is_left_untouched() {
    let t = CliTest::new();
    let a = app("sm-weird", 1);
    let before = secret_value(&a.store);
    let r = rotate(&t, "operator", &a, &["--yes"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains("no AWS access key found") && r.stderr.contains("left untouched"),
        "{}",
        r.stderr
    );
    assert_eq!(secret_value(&a.store), before);
    assert_eq!(keys(&a.user), vec![(a.key_id.clone(), "Active".into())]);
    // A store holding another key than the one named is refused the same way.
    let b = app("sm-json", 1);
    let wrong = App {
        store: b.store.clone(),
        ..app("none", 1)
    };
    let r = rotate(&t, "operator", &wrong, &["--yes"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains(&format!("holds access key {}", b.key_id)),
        "{}",
        r.stderr
    );
}

#[test]
fn rotate_dry_run_plans_without_changing_anything() {
    let t = CliTest::new();
    let a = app("sm-json", 1);
    let before = secret_value(&a.store);
    let r = rotate(&t, "operator", &a, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let out: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(out["state"], "planned");
    let actions: Vec<&str> = out["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "create-access-key",
            "write-secret-store",
            "verify-new-key",
            "deactivate-access-key",
            "delete-access-key"
        ]
    );
    assert_eq!(secret_value(&a.store), before);
    assert_eq!(keys(&a.user).len(), 1);
    assert!(
        !t.root()
            .join(format!("state/keytrail/rotations/{}.json", a.key_id))
            .exists()
    );
    assert!(
        audit(&t)
            .iter()
            .all(|l| l["result"] == "planned" && l["mode"] == "dry-run")
    );
}

#[test]
fn the_two_key_limit_is_explained_or_an_inactive_spare_deleted() {
    let t = CliTest::new();
    let a = app("sm-json", 2);
    let r = rotate(&t, "operator", &a, &["--yes"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("two active access keys"), "{}", r.stderr);
    assert_eq!(keys(&a.user).len(), 2);
    let spare = &a.extra[0];
    ask(json!({"op": "deactivate", "user": a.user, "key_id": spare}));
    let r = rotate(&t, "operator", &a, &["--yes"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("--delete-inactive-spare"), "{}", r.stderr);
    let r = rotate(&t, "operator", &a, &["--yes", "--delete-inactive-spare"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let out: Value = serde_json::from_str(&r.stdout).unwrap();
    let left = keys(&a.user);
    assert_eq!(
        left,
        vec![(
            out["new_key_id"].as_str().unwrap().to_string(),
            "Active".into()
        )]
    );
}

#[test]
fn a_failed_store_write_rolls_back() {
    let t = CliTest::new();
    let a = app("sm-json", 1);
    let before = secret_value(&a.store);
    // `nostore` may manage keys but not write the secret: PutSecretValue is denied.
    let r = rotate(&t, "nostore", &a, &["--yes"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("rolled back"), "{}", r.stderr);
    assert!(r.stderr.contains("AccessDenied"), "{}", r.stderr);
    assert_eq!(
        keys(&a.user),
        vec![(a.key_id.clone(), "Active".into())],
        "the new key was not deleted"
    );
    assert_eq!(secret_value(&a.store), before);
    assert!(works(&a.key_id, &a.secret).is_ok());
    let journal: Value = serde_json::from_str(
        &std::fs::read_to_string(
            t.root()
                .join(format!("state/keytrail/rotations/{}.json", a.key_id)),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(journal["state"], "rolled-back");
    // A failure after the store was written (the old key cannot be
    // deactivated) writes the previous value back and deletes the new key.
    let b = app("sm-json", 1);
    let before = secret_value(&b.store);
    let r = rotate(&t, "nodeact", &b, &["--yes"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("rolled back"), "{}", r.stderr);
    assert_eq!(secret_value(&b.store), before);
    assert_eq!(keys(&b.user), vec![(b.key_id.clone(), "Active".into())]);
    assert!(works(&b.key_id, &b.secret).is_ok());
    let actions: Vec<(String, String)> = audit(&t)
        .iter()
        .map(|l| {
            (
                l["action"].as_str().unwrap().to_string(),
                l["result"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for want in [
        ("restore-secret-store", "succeeded"),
        ("delete-new-access-key", "succeeded"),
        ("deactivate-access-key", "failed"),
    ] {
        assert!(
            actions.contains(&(want.0.to_string(), want.1.to_string())),
            "{want:?} not in {actions:?}"
        );
    }
}

/// The API call that follows each journaled step of a rotation into
/// Secrets Manager with `--grace 0`: holding it and killing keytrail while
/// it waits interrupts the rotation right after that step.
const NEXT_CALL: [(&str, &str); 4] = [
    ("created", "PutSecretValue"),
    ("stored", "GetCallerIdentity"),
    ("verified", "UpdateAccessKey"),
    ("deactivated", "DeleteAccessKey"),
];

#[test]
fn an_interrupted_rotation_resumes_where_it_stopped() {
    for (step, next_call) in NEXT_CALL {
        let t = CliTest::new();
        let a = app("sm-json", 1);
        let (k, s) = identity("operator");
        // The next call about this test's user after `step` is held until
        // keytrail is killed.
        ask(json!({"op": "hold", "action": next_call, "user": a.user}));
        let mut child = command_as(
            &t,
            (&k, &s),
            &[
                "rotate",
                "aws-key",
                "--access-key-id",
                &a.key_id,
                "--secret-id",
                &a.store,
                "--yes",
                "--verify-timeout",
                "3s",
            ],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start keytrail");
        let held = ask(json!({"op": "held", "timeout": 60}));
        // Killed while it waits for the held call (or, if it never made
        // that call, after it ended: the assertion below says so).
        child.kill().expect("kill keytrail");
        let out = child.wait_with_output().expect("wait for keytrail");
        ask(json!({"op": "release"}));
        assert_eq!(
            held["held"],
            true,
            "{step}: {next_call} never called: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let journal: Value = serde_json::from_str(
            &std::fs::read_to_string(
                t.root()
                    .join(format!("state/keytrail/rotations/{}.json", a.key_id)),
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(
            journal["steps"].as_array().unwrap().last().unwrap()["step"],
            step,
            "{journal}"
        );
        // A second start is refused while the first is unfinished.
        let again = rotate(&t, "operator", &a, &["--yes"]);
        assert_eq!(again.code, 2, "{step}: {}", again.all());
        assert!(
            again.stderr.contains("not finished") && again.stderr.contains("--resume"),
            "{step}: {}",
            again.stderr
        );
        let r = run(
            &t,
            "operator",
            &[
                "rotate",
                "aws-key",
                "--access-key-id",
                &a.key_id,
                "--resume",
                "--verify-timeout",
                "3s",
                "--yes",
                "--format",
                "json",
            ],
        );
        assert_eq!(r.code, 0, "{step}: {}", r.all());
        let out: Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(out["state"], "done", "{step}");
        let new_id = out["new_key_id"].as_str().unwrap();
        let (_, id, secret) = stored_pair(&a);
        assert_eq!(id, new_id, "{step}");
        assert!(works(new_id, &secret).is_ok(), "{step}");
        assert!(works(&a.key_id, &a.secret).is_err(), "{step}");
        // Only the new key is left (one created before the interruption
        // after `created` had its secret lost and was deleted).
        assert_eq!(
            keys(&a.user),
            vec![(new_id.to_string(), "Active".into())],
            "{step}"
        );
        let r = run(
            &t,
            "operator",
            &[
                "rotate",
                "aws-key",
                "--access-key-id",
                &a.key_id,
                "--resume",
                "--verify-timeout",
                "3s",
                "--yes",
            ],
        );
        assert_eq!(r.code, 0, "{step}: {}", r.all());
        assert!(r.stdout.contains("state: done"), "{step}: {}", r.stdout);
    }
    let t = CliTest::new();
    let r = run(
        &t,
        "operator",
        &[
            "rotate",
            "aws-key",
            "--access-key-id",
            "AKIAZZZZZZZZZZZZZZZZ",
            "--resume",
            "--verify-timeout",
            "3s",
            "--yes",
        ],
    );
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("no rotation"), "{}", r.stderr);
}

#[test]
fn a_grace_period_keeps_the_old_key_inactive_until_a_later_resume() {
    let t = CliTest::new();
    let a = app("sm-json", 1);
    let r = rotate(&t, "operator", &a, &["--yes", "--grace", "10s"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let out: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(out["state"], "awaiting-delete");
    let new_id = out["new_key_id"].as_str().unwrap().to_string();
    let mut ks = keys(&a.user);
    ks.sort();
    let mut want = vec![
        (a.key_id.clone(), "Inactive".to_string()),
        (new_id.clone(), "Active".to_string()),
    ];
    want.sort();
    assert_eq!(ks, want);
    assert!(works(&a.key_id, &a.secret).is_err());
    // Too early: nothing deleted.
    let r = run(
        &t,
        "operator",
        &[
            "rotate",
            "aws-key",
            "--access-key-id",
            &a.key_id,
            "--finish",
            "--verify-timeout",
            "3s",
            "--yes",
            "--format",
            "json",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(
        serde_json::from_str::<Value>(&r.stdout).unwrap()["state"],
        "awaiting-delete"
    );
    assert_eq!(keys(&a.user).len(), 2);
    std::thread::sleep(Duration::from_secs(11));
    let r = run(
        &t,
        "operator",
        &[
            "rotate",
            "aws-key",
            "--access-key-id",
            &a.key_id,
            "--resume",
            "--verify-timeout",
            "3s",
            "--yes",
            "--format",
            "json",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(
        serde_json::from_str::<Value>(&r.stdout).unwrap()["state"],
        "done"
    );
    assert_eq!(keys(&a.user), vec![(new_id, "Active".into())]);
}

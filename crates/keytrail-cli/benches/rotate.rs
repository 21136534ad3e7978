//! The time to revoke of `keytrail rotate aws-key` against moto (IAM
//! authentication on, `tests/revoke_moto.py`): N rotations of keys stored
//! in Secrets Manager, each by the release `keytrail` binary as a user runs
//! it (`--grace 0 --yes --format json`), reporting the time from the start
//! of the rotation to STS refusing the old key (`time_to_revoke_ms`, which
//! the rotation measures itself) and the whole command's wall time.
//!
//! `cargo bench -p keytrail-cli --bench rotate` (KT_ROTATIONS=N, default 20).
//! Needs Python with moto[server] and boto3 (scripts/install-test-deps.sh).

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

fn main() {
    let n: usize = std::env::var("KT_ROTATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/revoke_moto.py");
    let mut child = Command::new(std::env::var("PYTHON").unwrap_or_else(|_| "python3".into()))
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start revoke_moto.py (needs moto[server] and boto3)");
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let manifest: Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("revoke_moto.py: {line:?}: {e}"));
    let endpoint = manifest["endpoint"].as_str().unwrap().to_string();
    let op_key = manifest["identities"]["operator"]["key_id"]
        .as_str()
        .unwrap()
        .to_string();
    let op_secret = manifest["identities"]["operator"]["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let mut ask = move |req: Value| -> Value {
        writeln!(stdin, "{req}").unwrap();
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"))
    };
    let dir = tempfile::tempdir().unwrap();
    let mut ttr = Vec::new();
    let mut wall = Vec::new();
    for i in 0..n {
        let a = ask(json!({"op": "app", "user": format!("bench-{i}"), "store": "sm-json"}));
        let key_id = a["key_id"].as_str().unwrap();
        let store = a["store"].as_str().unwrap();
        let start = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_keytrail"))
            .args([
                "rotate",
                "aws-key",
                "--access-key-id",
                key_id,
                "--secret-id",
                store,
                "--grace",
                "0",
                "--yes",
                "--format",
                "json",
            ])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_ENDPOINT_URL", &endpoint)
            .env("AWS_ACCESS_KEY_ID", &op_key)
            .env("AWS_SECRET_ACCESS_KEY", &op_secret)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("XDG_STATE_HOME", dir.path())
            .output()
            .unwrap();
        let elapsed = start.elapsed().as_secs_f64() * 1000.0;
        assert!(
            out.status.success(),
            "rotation {i} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["state"], "done");
        ttr.push(
            report["time_to_revoke_ms"]
                .as_f64()
                .expect("time_to_revoke_ms"),
        );
        wall.push(elapsed);
    }
    drop(ask);
    let _ = child.wait();
    let stats = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let p = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        format!(
            "min {:.0} ms, median {:.0} ms, p90 {:.0} ms, max {:.0} ms",
            v[0],
            p(0.5),
            p(0.9),
            v[v.len() - 1]
        )
    };
    println!("rotations: {n} (moto, IAM authentication on, Secrets Manager JSON)");
    println!(
        "time to revoke (start to the old key refused by STS): {}",
        stats(&mut ttr)
    );
    println!(
        "whole command (process start to exit, old key deleted): {}",
        stats(&mut wall)
    );
}

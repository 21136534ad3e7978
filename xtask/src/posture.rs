//! `cargo xtask bench-posture`: collection plus evaluation, end to end, on
//! the planted accounts of `crates/keytrail-collect/tests/seed_moto.py`
//! (moto in server mode on loopback, two accounts, a positive and a
//! negative case of every AWS check). For each account and each of
//! `--runs` rounds: `keytrail collect aws` into a fresh directory, then
//! `keytrail posture --snapshot … --format jsonl`; the wall time of both,
//! and the planted problems found and the clean look-alikes flagged,
//! compared with the fixture's manifest.
//!
//! moto answers slower than AWS for some calls and faster for others, and
//! runs on the same two cores: the time is keytrail's own cost plus moto's,
//! not AWS's.

use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

pub fn bench_posture(args: &[String]) -> Result<()> {
    let mut bin: Option<PathBuf> = None;
    let mut runs = 3usize;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--bin" => bin = Some(PathBuf::from(val()?)),
            "--runs" => runs = val()?.parse()?,
            other => bail!("unknown argument {other}"),
        }
    }
    let bin = match bin {
        Some(b) => b,
        None => crate::build_keytrail()?,
    };
    let seed = crate::workspace_root().join("crates/keytrail-collect/tests/seed_moto.py");
    eprintln!("seeding moto ({})…", seed.display());
    let mut moto = Command::new("python3")
        .arg(&seed)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("python3 with moto (scripts/install-test-deps.sh installs it)")?;
    let mut line = String::new();
    BufReader::new(moto.stdout.take().context("moto stdout")?).read_line(&mut line)?;
    let manifest: Value = serde_json::from_str(&line).context("seed_moto.py manifest")?;
    let endpoint = manifest["endpoint"]
        .as_str()
        .context("endpoint")?
        .to_string();
    let accounts = manifest["accounts"]
        .as_object()
        .context("accounts")?
        .clone();
    let expect = manifest["expect"].as_array().context("expect")?.clone();
    let dir = std::env::temp_dir().join("keytrail-bench-posture");
    println!(
        "| account | run | collect (s) | posture (s) | total (s) | planted found | clean flagged |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut worst: f64 = 0.0;
    for (account, creds) in &accounts {
        for run in 1..=runs {
            let out = dir.join(format!("{account}-{run}"));
            let _ = std::fs::remove_dir_all(&out);
            let mut c = Command::new(&bin);
            c.args([
                "collect",
                "aws",
                "--region",
                "us-east-1",
                "--region",
                "eu-west-1",
                "--quiet",
                "--out",
            ])
            .arg(&out);
            for (k, _) in std::env::vars() {
                if k.starts_with("AWS_") {
                    c.env_remove(k);
                }
            }
            c.env("AWS_ENDPOINT_URL", &endpoint)
                .env(
                    "AWS_ACCESS_KEY_ID",
                    creds["access_key_id"].as_str().unwrap_or(""),
                )
                .env(
                    "AWS_SECRET_ACCESS_KEY",
                    creds["secret_access_key"].as_str().unwrap_or(""),
                )
                .env("AWS_REGION", "us-east-1")
                .env("AWS_EC2_METADATA_DISABLED", "true")
                .env("AWS_CONFIG_FILE", "/dev/null")
                .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null");
            if let Some(t) = creds["session_token"].as_str() {
                c.env("AWS_SESSION_TOKEN", t);
            }
            let t0 = Instant::now();
            let st = c.status()?;
            let collect_s = t0.elapsed().as_secs_f64();
            if !st.success() {
                bail!("collect aws failed for {account} ({st})");
            }
            let t1 = Instant::now();
            let o = Command::new(&bin)
                .args(["posture", "--format", "jsonl", "--snapshot"])
                .arg(&out)
                .output()?;
            let posture_s = t1.elapsed().as_secs_f64();
            if o.status.code().is_none_or(|c| c > 1) {
                bail!("posture failed: {}", String::from_utf8_lossy(&o.stderr));
            }
            let found: BTreeSet<(String, String)> = String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .filter_map(|v| {
                    Some((
                        v["check"].as_str()?.to_string(),
                        v["resource"].as_str()?.to_string(),
                    ))
                })
                .collect();
            let (mut planted, mut hit, mut clean, mut flagged) = (0, 0, 0, 0);
            for e in expect.iter().filter(|e| e["account"] == account.as_str()) {
                let key = (
                    e["check"].as_str().unwrap_or("").to_string(),
                    e["resource"].as_str().unwrap_or("").to_string(),
                );
                if e["fire"] == true {
                    planted += 1;
                    hit += usize::from(found.contains(&key));
                } else {
                    clean += 1;
                    flagged += usize::from(found.contains(&key));
                }
            }
            let total = collect_s + posture_s;
            worst = worst.max(total);
            println!(
                "| {account} | {run} | {collect_s:.2} | {posture_s:.2} | {total:.2} | {hit}/{planted} | {flagged}/{clean} |"
            );
        }
    }
    drop(moto.stdin.take());
    let _ = moto.wait();
    println!(
        "\nslowest collect + posture: {worst:.2} s (target: under 5 s); load average {}",
        crate::load_average()
    );
    Ok(())
}

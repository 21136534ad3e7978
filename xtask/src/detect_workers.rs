//! `cargo xtask bench-detect-workers`: the scaling curve of distributed
//! detection. Generates an organisation trail as S3 delivers it (the
//! test-kit's activity, `--accounts` accounts of 21 days, one gzip file per
//! account, region and five minutes), then, against the NATS server and the
//! PostgreSQL server on loopback:
//!
//! 1. the single-process run: `keytrail detect --db` of the whole tree (two
//!    threads: the default on this machine), its wall time and events;
//! 2. for each worker count in `--workers` (default 1, 2, 4): a fresh
//!    database and queue prefix, `keytrail submit detect` of the tree
//!    (`--partitions`, default 8), then that many `keytrail worker
//!    --exit-when-idle` processes; the span from the first step's start to the
//!    last step's end (from the store's `jobs`) gives events per second.
//!
//! Prints a table and checks that every run stored the alerts of the single
//! process (by alert id).

use anyhow::{Context, Result, bail};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Instant;

use crate::workers::{Cluster, fresh_db, run_keytrail, run_workers};

struct Opts {
    accounts: usize,
    rate: f64,
    partitions: u32,
    c: Cluster,
}

fn parse(args: &[String]) -> Result<Opts> {
    let mut o = Opts {
        accounts: 4,
        rate: 1.0,
        partitions: 8,
        c: Cluster::new("keytrail-bench-detect-workers"),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || {
            it.next()
                .cloned()
                .with_context(|| format!("{a} needs a value"))
        };
        match a.as_str() {
            "--accounts" => o.accounts = val()?.parse()?,
            "--rate" => o.rate = val()?.parse()?,
            "--partitions" => o.partitions = val()?.parse()?,
            other => {
                if !o.c.take(other, &mut val)? {
                    bail!("unknown argument {other}")
                }
            }
        }
    }
    Ok(o)
}

fn keytrail(o: &Opts, args: &[&str]) -> Result<std::process::Output> {
    run_keytrail(&o.c.bin, args)
}

/// Alert ids the store holds.
fn stored_alerts(o: &Opts, db: &str) -> Result<BTreeSet<String>> {
    let out = keytrail(o, &["findings", "--db", db, "--kind", "alert"])?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["id"].as_str().map(str::to_string))
        .collect())
}

/// Run the benchmark.
pub fn bench_detect_workers(args: &[String]) -> Result<()> {
    let o = parse(args)?;
    if !o.c.bin.is_file() {
        bail!(
            "{} is missing: cargo build --release -p keytrail-cli (or pass --bin)",
            o.c.bin.display()
        );
    }
    let tree = o.c.dir.join(format!("trail-{}-{}", o.accounts, o.rate));
    let marker = tree.join(".complete");
    if !marker.exists() {
        if tree.exists() {
            std::fs::remove_dir_all(&tree)?;
        }
        use keytrail_testkit::cloudtrail::{ActivityConfig, Layout, write_org_trail};
        let cfg = ActivityConfig {
            rate: o.rate,
            layout: Layout::S3 {
                org: Some("o-bench1".into()),
            },
            ..ActivityConfig::default()
        };
        write_org_trail(&cfg, o.accounts, &tree)?;
        std::fs::write(&marker, "")?;
    }
    let files = walk(&tree)?;
    let bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).map_or(0, |m| m.len()))
        .sum();
    let ipintel = keytrail_testkit::data::ipintel().display().to_string();
    let tree_s = tree.display().to_string();
    println!(
        "trail: {} accounts, {} files, {:.1} MiB gzip; {} cores",
        o.accounts,
        files.len(),
        bytes as f64 / (1 << 20) as f64,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let tag = std::process::id();

    // 1. One process.
    let db = fresh_db(&o.c.pg, &format!("kt_bench_detect_single_{tag}"))?;
    let start = Instant::now();
    let out = keytrail(
        &o,
        &[
            "detect",
            "--format",
            "jsonl",
            "--ipintel",
            &ipintel,
            "--db",
            &db,
            &tree_s,
        ],
    )?;
    let single = start.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let events: f64 = stderr
        .lines()
        .find_map(|l| l.strip_prefix("detect: "))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("no event count in detect's summary:\n{stderr}"))?;
    let expected = stored_alerts(&o, &db)?;
    println!(
        "single process (keytrail detect --db): {single:.2} s, {events:.0} events, {:.0} events/s, {} alerts",
        events / single,
        expected.len()
    );

    // 2. Workers.
    println!("| workers | submit s | span s | events/s | vs one process | steps |");
    println!("|---|---|---|---|---|---|");
    for &k in &o.c.workers {
        let db = fresh_db(&o.c.pg, &format!("kt_bench_detect_w{k}_{tag}"))?;
        let prefix = format!("benchd{tag}w{k}");
        let partitions = o.partitions.to_string();
        let start = Instant::now();
        keytrail(
            &o,
            &[
                "submit",
                "detect",
                "--nats",
                &o.c.nats,
                "--queue-prefix",
                &prefix,
                "--db",
                &db,
                "--partitions",
                &partitions,
                "--ipintel",
                &ipintel,
                &tree_s,
            ],
        )?;
        let submit = start.elapsed().as_secs_f64();
        let (jobs, span) = run_workers(&o.c.bin, &o.c.nats, &prefix, &db, k, "5s")?;
        if let Some(j) = jobs.iter().find(|j| j["state"] != "done") {
            bail!("{k} worker(s): a step is not done: {j}");
        }
        let got = stored_alerts(&o, &db)?;
        if got != expected {
            bail!(
                "{k} worker(s) stored {} alerts, the single process {} ({} differ)",
                got.len(),
                expected.len(),
                got.symmetric_difference(&expected).count()
            );
        }
        println!(
            "| {k} | {submit:.2} | {span:.2} | {:.0} | {:.2}x | {} |",
            events / span,
            single / span,
            jobs.len()
        );
    }
    Ok(())
}

fn walk(dir: &std::path::Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "gz") {
                out.push(p);
            }
        }
    }
    Ok(out)
}

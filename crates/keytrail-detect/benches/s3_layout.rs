//! Per-file cost of detection on CloudTrail as S3 delivers it (harness = false).
//!
//! Generates the same activity twice with `keytrail-testkit`: as an organisation trail
//! in the S3 layout (one small gzip file per account, region and five minutes, filed by
//! delivery time) and as one plain `{"Records":[…]}` file per account. Runs the engine
//! over both on one and two threads and prints wall and CPU time, events per
//! CPU-second, the S3/one-file ratio and peak resident memory for each run, and checks
//! that both layouts raise the same alerts.
//!
//! `cargo bench -p keytrail-detect --bench s3_layout`. Environment: `KT_S3_ACCOUNTS`
//! (default 1), `KT_S3_DAYS` (default 14), `KT_S3_RATE` (per-identity rate multiplier,
//! default 1.0), `KT_BENCH_THREADS` (default `1,2`), `KT_S3_KEEP=DIR` to generate into
//! (and keep) a directory instead of a temporary one (a tree already there is
//! read again without generating), `KT_S3_ONLY=s3` to skip the
//! one-file runs. The month of an organisation trail in the README is
//! `KT_S3_ACCOUNTS=20 KT_S3_DAYS=30`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use keytrail_detect::alert::FnSink;
use keytrail_detect::engine::{EngineBuilder, Logs, run_logs_into};
use keytrail_testkit::cloudtrail::{ActivityConfig, Layout, write_org_trail};

fn peak_rss_mib() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn reset_peak() {
    // Linux: writing 5 to clear_refs resets VmHWM to the current RSS.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// CPU time (user + system) of this process in seconds.
fn cpu_secs() -> (f64, f64) {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = s.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) / 100.0;
    (tick(11), tick(12))
}

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Run {
    wall: f64,
    cpu: f64,
    sys: f64,
    peak: f64,
    events: u64,
    alerts: Vec<String>,
}

/// Lists `dir` and reads it, as `keytrail detect DIR` does: the listing is part of
/// the measured time and memory, and is held once (handed to the engine).
fn run(builder: &EngineBuilder, dir: &Path, threads: usize) -> Run {
    let (shared, _) = builder.build_shared();
    reset_peak();
    let (u0, s0) = cpu_secs();
    let t = Instant::now();
    let alerts = Arc::new(Mutex::new(Vec::new()));
    let a2 = alerts.clone();
    let sink = FnSink(move |a: keytrail_detect::Alert| {
        let key = format!(
            "{} {} {} {} {}",
            a.rule_id, a.principal, a.time, a.last_time, a.event_count
        );
        a2.lock().unwrap().push(key);
    });
    let files = list(dir);
    let (_, stats) = run_logs_into(
        builder,
        shared,
        Logs::Files(files),
        threads,
        Some(Box::new(sink)),
    );
    let wall = t.elapsed().as_secs_f64();
    let (u1, s1) = cpu_secs();
    let mut alerts = std::mem::take(&mut *alerts.lock().unwrap());
    alerts.sort();
    Run {
        wall,
        cpu: (u1 - u0) + (s1 - s0),
        sys: s1 - s0,
        peak: peak_rss_mib(),
        events: stats.events,
        alerts,
    }
}

fn print(label: &str, threads: usize, files: usize, r: &Run) {
    println!(
        "{label:>8} threads={threads}: {} events, {files} files: wall {:.2} s ({:.0} events/s), CPU {:.2} s (sys {:.2}) = {:.0} events per CPU-second, {} alerts, peak RSS {:.0} MiB",
        r.events,
        r.wall,
        r.events as f64 / r.wall,
        r.cpu,
        r.sys,
        r.events as f64 / r.cpu,
        r.alerts.len(),
        r.peak
    );
}

fn main() {
    let accounts: usize = env("KT_S3_ACCOUNTS", 1);
    let days: u32 = env("KT_S3_DAYS", 14);
    let rate: f64 = env("KT_S3_RATE", 1.0);
    let only_s3 = std::env::var("KT_S3_ONLY").is_ok_and(|v| v == "s3");
    let threads: Vec<usize> = std::env::var("KT_BENCH_THREADS")
        .ok()
        .map(|v| v.split(',').filter_map(|t| t.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 2]);
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = std::env::var("KT_S3_KEEP").map_or_else(|_| tmp.path().to_path_buf(), PathBuf::from);
    let cfg = ActivityConfig {
        days,
        rate,
        ..ActivityConfig::default()
    };
    let generate = |layout: Layout, sub: &str| {
        let dir = root.join(sub);
        let t = Instant::now();
        let w = write_org_trail(
            &ActivityConfig {
                layout,
                ..cfg.clone()
            },
            accounts,
            &dir,
        )
        .expect("generate");
        let bytes: u64 = w
            .files
            .iter()
            .map(|f| std::fs::metadata(f).map_or(0, |m| m.len()))
            .sum();
        println!(
            "generated {sub}: {} events in {} files ({:.1} MiB on disk) in {:.1} s",
            w.events,
            w.files.len(),
            bytes as f64 / 1048576.0,
            t.elapsed().as_secs_f64()
        );
        w
    };
    let org = Layout::S3 {
        org: Some("o-kt0example".into()),
    };
    // With KT_S3_KEEP pointing at an earlier run's tree, it is read again as it is.
    let kept = std::env::var("KT_S3_KEEP").is_ok() && root.join("s3").is_dir();
    let s3 = if kept {
        let files = list(&root.join("s3"));
        println!(
            "reusing {} files under {}",
            files.len(),
            root.join("s3").display()
        );
        keytrail_testkit::cloudtrail::Written {
            events: 0,
            files,
            truth: Vec::new(),
        }
    } else {
        generate(org, "s3")
    };
    // The reader lists and orders the tree itself, as `keytrail detect DIR` does;
    // nothing else holds the list while it reads.
    let s3_count = s3.files.len();
    let s3_events = s3.events;
    drop(s3);
    let one = (!only_s3).then(|| {
        let w = generate(Layout::OneFile, "one");
        w.files.len()
    });
    let builder = EngineBuilder::new();
    for &t in &threads {
        let a = run(&builder, &root.join("s3"), t);
        print("s3", t, s3_count, &a);
        if !kept {
            assert_eq!(a.events, s3_events);
        }
        if let Some(one_count) = one {
            let b = run(&builder, &root.join("one"), t);
            print("one-file", t, one_count, &b);
            println!(
                "           threads={t}: S3 layout / one file: wall {:.2}x, CPU {:.2}x",
                a.wall / b.wall,
                a.cpu / b.cpu
            );
            assert_eq!(a.alerts, b.alerts, "both layouts raise the same alerts");
        }
    }
}

fn list(dir: &Path) -> Vec<PathBuf> {
    let (files, diags) = keytrail_detect::reader::list_files(&[dir.to_path_buf()]);
    assert!(diags.is_empty(), "{diags:?}");
    files
}

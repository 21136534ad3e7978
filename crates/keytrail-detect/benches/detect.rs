//! End-to-end detection benchmark (harness = false): generates ≥ 2 million CloudTrail
//! events with `keytrail-testkit` into an S3-style tree, then reads, parses, baselines,
//! runs the playbook and behavioural detectors and the SigmaHQ AWS rules over them on
//! one and on two threads (one engine; with two, parse workers ahead of it also match the
//! Sigma detection rules), printing events per second
//! and peak resident memory (alerts go to a counting sink as they close, so the peak is
//! the engine's own memory, which grows with identities, not events).
//!
//! `cargo bench -p keytrail-detect --bench detect`; `KT_BENCH_EVENTS` sets the target
//! event count (default 2,000,000); `KT_BENCH_DAYS` the days of activity they span
//! (default 21; the same 86 identities, so more days at the same hourly file size show
//! whether memory grows with events); `KT_BENCH_THREADS` the thread counts to run
//! (comma-separated, default `1,2`).

use std::time::Instant;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use keytrail_detect::alert::FnSink;
use keytrail_detect::engine::{EngineBuilder, run_parallel_into};
use keytrail_testkit::cloudtrail::{ActivityConfig, write_activity};

fn peak_rss_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// CPU time (user + system) of this process in seconds, from /proc (100 ticks/s).
fn cpu_secs() -> f64 {
    stat_cpu_secs("/proc/self/stat")
}

/// CPU time of the calling thread (the one running the engine).
fn thread_cpu_secs() -> f64 {
    stat_cpu_secs("/proc/thread-self/stat")
}

fn stat_cpu_secs(path: &str) -> f64 {
    let s = std::fs::read_to_string(path).unwrap_or_default();
    let rest = s.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 of stat (utime, stime) are at 11 and 12 after the command name.
    (tick(11) + tick(12)) / 100.0
}

fn reset_peak() {
    // Linux: writing 5 to clear_refs resets VmHWM to the current RSS.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn main() {
    let target: u64 = std::env::var("KT_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000_000);
    let dir = tempfile::tempdir().expect("temp dir");
    // About 50 events per server-hour: scale the rate to reach the target in `days`
    // days (21 by default; more days at the same target give smaller hourly files).
    let days: u32 = std::env::var("KT_BENCH_DAYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(21);
    let cfg = ActivityConfig {
        servers: 60,
        ci: 6,
        humans: 20,
        days,
        ..ActivityConfig::default()
    };
    let per_unit = 60.0 * 24.0 * f64::from(days) * 48.0;
    let cfg = ActivityConfig {
        rate: (target as f64 / per_unit).max(0.05) * 1.02,
        ..cfg
    };
    let t = Instant::now();
    let written = write_activity(&cfg, dir.path()).expect("generate");
    let bytes: u64 = written
        .files
        .iter()
        .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
        .sum();
    println!(
        "generated {} events in {} files ({:.0} MiB JSON) in {:.1} s",
        written.events,
        written.files.len(),
        bytes as f64 / 1048576.0,
        t.elapsed().as_secs_f64()
    );
    let builder = EngineBuilder::new()
        .ipintel(keytrail_testkit::data::ipintel())
        .sigma_rules(keytrail_testkit::data::sigma_aws());
    let t = Instant::now();
    let (shared, diags) = builder.build_shared();
    println!(
        "loaded IP intelligence and {} Sigma rules in {:.2} s ({} diagnostics)",
        shared.sigma.len(),
        t.elapsed().as_secs_f64(),
        diags.iter().filter(|d| d.is_error).count()
    );
    let thread_counts: Vec<usize> = std::env::var("KT_BENCH_THREADS")
        .ok()
        .map(|v| v.split(',').filter_map(|t| t.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 2]);
    for threads in thread_counts {
        reset_peak();
        let t = Instant::now();
        let cpu0 = cpu_secs();
        let main0 = thread_cpu_secs();
        // Alerts stream to a counting sink as they close (as `keytrail detect --format
        // jsonl` writes them), so peak memory is the engine's own: state per identity,
        // open alerts and the files in flight, not the output.
        let evidence = Arc::new(AtomicU64::new(0));
        let ev2 = evidence.clone();
        let sink = FnSink(move |a: keytrail_detect::Alert| {
            ev2.fetch_add(a.event_ids.len() as u64, Ordering::Relaxed);
        });
        let (_, stats) = run_parallel_into(
            &builder,
            shared.clone(),
            &written.files,
            threads,
            Some(Box::new(sink)),
        );
        let secs = t.elapsed().as_secs_f64();
        let cpu = cpu_secs() - cpu0;
        let main = thread_cpu_secs() - main0;
        println!(
            "threads={threads}: CPU time {cpu:.2} s = {:.0} events per CPU-second (wall-clock figures below are affected by other load on the machine)",
            stats.events as f64 / cpu
        );
        if threads > 1 {
            // On `threads` otherwise idle cores the run takes at least the engine
            // thread's CPU time and at least the total CPU time spread over the cores.
            let other = cpu - main;
            let bound = main.max(cpu / threads as f64);
            println!(
                "threads={threads}: engine thread CPU {main:.2} s, parse workers CPU {other:.2} s: on {threads} idle cores at best {:.0} events/s ({bound:.2} s)",
                stats.events as f64 / bound
            );
        }
        println!(
            "threads={threads}: {} events in {secs:.2} s = {:.0} events/s ({:.1} MiB/s), {} identities, {} alerts ({} evidence ids), {} sigma matches, peak RSS {:.0} MiB",
            stats.events,
            stats.events as f64 / secs,
            bytes as f64 / 1048576.0 / secs,
            stats.identities,
            stats.alerts,
            evidence.load(Ordering::Relaxed),
            stats.sigma_matches,
            peak_rss_mib().unwrap_or(f64::NAN)
        );
        assert_eq!(stats.events, written.events);
    }
}

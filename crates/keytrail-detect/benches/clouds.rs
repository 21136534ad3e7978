//! Events per CPU-second for each log format of the other clouds (harness = false):
//! generates the test-kit's organisation (Google Cloud, Entra ID, Microsoft 365 and
//! Azure Activity records), writes each provider's records in each export format, and
//! runs one engine on one thread over each file (read, parse, baselines, detectors,
//! the embedded SigmaHQ rules of every cloud, IP intelligence), printing events per
//! CPU-second of the process. A CloudTrail file of the test-kit's activity is run the
//! same way for comparison on the same machine and load.
//!
//! `cargo bench -p keytrail-detect --bench clouds`; `KT_BENCH_DAYS` sets the days of
//! activity (default 60; about 1,500 records a day at scale 1), `KT_BENCH_SCALE` the
//! rate (default 4), `KT_BENCH_SIGMA=0` leaves the Sigma rules out.

use std::path::PathBuf;
use std::time::Instant;

use keytrail_detect::engine::{EngineBuilder, run_parallel};
use keytrail_testkit::cloudlogs::{self, Format};
use keytrail_testkit::cloudtrail::{ActivityConfig, Layout, write_activity};

fn cpu_secs() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = s.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}

fn main() {
    let days: u32 = std::env::var("KT_BENCH_DAYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let scale: f64 = std::env::var("KT_BENCH_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4.0);
    let dir = tempfile::tempdir().expect("temp dir");
    let t = Instant::now();
    let (records, _) = cloudlogs::activity(11, 1_709_510_400_000, days, scale);
    println!(
        "generated {} records in {:.1} s",
        records.len(),
        t.elapsed().as_secs_f64()
    );
    // `KT_BENCH_SIGMA=0`: without the embedded Sigma rules (the engine's own cost).
    let sigma = std::env::var("KT_BENCH_SIGMA").map_or(true, |v| v != "0");
    let builder = EngineBuilder::new()
        .ipintel(keytrail_testkit::data::ipintel())
        .builtin_sigma(sigma);
    let (shared, _) = builder.build_shared();
    println!("{} Sigma rules loaded", shared.sigma.len());
    let mut runs: Vec<(String, PathBuf, usize)> = Vec::new();
    for (name, formats) in [
        (
            "gcp",
            vec![
                Format::GcloudJson,
                Format::GcpSinkNdjson,
                Format::PubSubNdjson,
            ],
        ),
        ("entra", vec![Format::GraphJson, Format::DiagnosticRecords]),
        ("m365", vec![Format::ManagementApiJson, Format::PurviewCsv]),
        (
            "azure",
            vec![Format::ManagementApiJson, Format::DiagnosticRecords],
        ),
    ] {
        let recs: Vec<_> = records
            .iter()
            .filter(|r| r.provider == name)
            .cloned()
            .collect();
        for f in formats {
            let path = dir.path().join(format!("{name}-{f:?}.json"));
            std::fs::write(&path, cloudlogs::write(&recs, f)).expect("write");
            runs.push((format!("{name} {f:?}"), path, recs.len()));
        }
    }
    // CloudTrail of about the same size, one plain file, for comparison.
    let ct_dir = dir.path().join("cloudtrail");
    let w = write_activity(
        &ActivityConfig {
            days: 7,
            servers: 20,
            humans: 6,
            ci: 2,
            rate: 0.6,
            layout: Layout::Hourly,
            ..ActivityConfig::default()
        },
        &ct_dir,
    )
    .expect("generate CloudTrail");
    let ct_events = w.events as usize;
    let ct_files = w.files.clone();
    println!(
        "{:<28} {:>9} {:>10} {:>10} {:>16}",
        "format", "events", "MiB", "CPU-s", "events/CPU-s"
    );
    let run = |label: &str, files: &[PathBuf], events: usize| {
        let bytes: u64 = files
            .iter()
            .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
            .sum();
        let cpu0 = cpu_secs();
        let (alerts, stats) = run_parallel(&builder, shared.clone(), files, 1);
        let cpu = cpu_secs() - cpu0;
        assert_eq!(stats.events as usize, events, "{label}");
        println!(
            "{label:<28} {events:>9} {:>10.1} {cpu:>10.2} {:>16.0}   ({} alerts)",
            bytes as f64 / 1048576.0,
            events as f64 / cpu.max(0.01),
            alerts.len()
        );
    };
    for (label, path, n) in &runs {
        run(label, std::slice::from_ref(path), *n);
    }
    run("cloudtrail Records (hourly)", &ct_files, ct_events);
}

//! `run_parallel` gives exactly the alerts and statistics of one thread: parsing runs
//! ahead on worker threads, but one engine sees the same time-ordered stream.

mod common;

use std::io::Write;

use keytrail_detect::engine::{EngineBuilder, run_parallel};
use keytrail_testkit::cloudtrail::{ActivityConfig, write_activity};

#[test]
fn parallel_path_gives_the_sequential_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let w = write_activity(
        &ActivityConfig {
            servers: 8,
            humans: 5,
            ci: 2,
            rate: 0.3,
            ..ActivityConfig::default()
        },
        dir.path(),
    )
    .unwrap();
    // Mixed layouts: every third file gzipped, plus a damaged file.
    let mut files = Vec::new();
    for (i, f) in w.files.iter().enumerate() {
        if i % 3 == 0 {
            let body = std::fs::read(f).unwrap();
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(&body).unwrap();
            let gz = f.with_extension("json.gz");
            std::fs::write(&gz, enc.finish().unwrap()).unwrap();
            std::fs::remove_file(f).unwrap();
            files.push(gz);
        } else {
            files.push(f.clone());
        }
    }
    let bad = files[files.len() / 2].with_file_name("damaged_20240301T0000Z.json");
    std::fs::write(
        &bad,
        r#"{"Records":[{"eventTime":"2024-03-01T00:00:00Z"},{"eventTime": tru},"#,
    )
    .unwrap();
    files.push(bad);

    let builder = EngineBuilder::new()
        .ipintel(common::ipintel())
        .sigma_rules(common::sigma_aws());
    let (shared, _) = builder.build_shared();
    let run = |threads: usize| {
        let (alerts, stats) = run_parallel(&builder, shared.clone(), &files, threads);
        let jsonl: String = alerts
            .iter()
            .map(|a| serde_json::to_string(a).unwrap() + "\n")
            .collect();
        (jsonl, serde_json::to_string(&stats).unwrap())
    };
    let (one, one_stats) = run(1);
    assert!(one.lines().count() > 50, "too few alerts to compare");
    assert!(one_stats.contains("\"skipped_records\":1"), "{one_stats}");
    for threads in [2, 3] {
        let (many, many_stats) = run(threads);
        assert_eq!(many_stats, one_stats, "{threads} threads");
        assert!(many == one, "{threads} threads: alerts differ");
    }
}

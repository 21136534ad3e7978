//! A distributed run (route, one engine per partition of the identities, one per
//! partition of the access keys; `keytrail::distributed`) raises exactly the alerts
//! of one process over the same logs, for any number of partitions, alone and as a
//! chain of runs carried by checkpoints, like `keytrail detect --state`.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use keytrail_detect::Alert;
use keytrail_detect::baseline::State;
use keytrail_detect::distributed::{
    KnownRegions, memory_logs, merge_key, partition_of, route, run_keys, run_partition,
};
use keytrail_detect::engine::{EngineBuilder, Shared, run_parallel};
use keytrail_detect::reader::read_file;
use keytrail_testkit::cloudtrail::{ActivityConfig, Layout, write_org_trail};

fn jsonl(alerts: &[Alert]) -> Vec<String> {
    let mut a: Vec<&Alert> = alerts.iter().collect();
    a.sort_by(|a, b| {
        (a.time_ms, &a.rule_id, &a.principal, &a.id).cmp(&(
            b.time_ms,
            &b.rule_id,
            &b.principal,
            &b.id,
        ))
    });
    a.iter()
        .map(|a| serde_json::to_string(a).unwrap())
        .collect()
}

/// The checkpoints of a distributed chain: per stage and partition.
#[derive(Default)]
struct Checkpoints {
    parts: BTreeMap<u32, State>,
    keys: BTreeMap<u32, State>,
    known: KnownRegions,
}

/// One distributed run over `files` with `n` partitions, from and to `cp`.
fn distributed(
    builder: &EngineBuilder,
    shared: &Shared,
    files: &[PathBuf],
    n: u32,
    cp: &mut Checkpoints,
) -> (Vec<Alert>, u64) {
    // Route every file.
    let single = files.len() == 1;
    let mut shares: BTreeMap<u32, Vec<(String, i64, Vec<u8>)>> = BTreeMap::new();
    for f in files {
        let routed = route(read_file(f), n);
        assert_eq!(routed.parts.len(), n as usize);
        for (account, region, t) in routed.regions.iter() {
            cp.known.add(account, region, t);
        }
        let key = merge_key(f, true, single);
        for (p, part) in routed.parts.into_iter().enumerate() {
            if !part.is_empty() {
                shares
                    .entry(p as u32)
                    .or_default()
                    .push((f.display().to_string(), key, part));
            }
        }
    }
    // One engine per partition of the identities.
    let mut alerts = Vec::new();
    let mut events = 0;
    let mut handed: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
    for p in 0..n {
        let logs = memory_logs(shares.remove(&p).unwrap_or_default());
        let state = cp.parts.remove(&p).unwrap_or_default();
        let out = run_partition(builder, shared.clone(), state, cp.known.clone(), n, logs, 1);
        events += out.stats.events;
        alerts.extend(out.alerts);
        cp.parts.insert(p, out.state);
        for k in out.key_events {
            assert!(k.partition < n);
            let buf = handed.entry(k.partition).or_default();
            buf.extend_from_slice(k.raw.as_bytes());
            buf.push(b'\n');
        }
    }
    // One per partition of the access keys.
    for q in 0..n {
        let input = handed.remove(&q).unwrap_or_default();
        let state = cp.keys.remove(&q).unwrap_or_default();
        let sources: Vec<(String, Box<dyn std::io::Read + Send>)> =
            vec![(format!("keys/{q}"), Box::new(std::io::Cursor::new(input)))];
        let out = run_keys(builder, shared.clone(), state, sources, None);
        assert_eq!(
            out.stats.events, 0,
            "the key stage counts no events of its own"
        );
        alerts.extend(out.alerts);
        cp.keys.insert(q, out.state);
    }
    (alerts, events)
}

fn org_trail(dir: &std::path::Path) -> Vec<PathBuf> {
    let cfg = ActivityConfig {
        servers: 6,
        humans: 4,
        ci: 2,
        rate: 0.25,
        layout: Layout::S3 {
            org: Some("o-abc123".into()),
        },
        ..ActivityConfig::default()
    };
    let w = write_org_trail(&cfg, 2, dir).unwrap();
    assert!(w.files.len() > 1000, "{} files", w.files.len());
    w.files
}

#[test]
fn partitions_raise_the_alerts_of_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let files = org_trail(dir.path());
    let builder = EngineBuilder::new()
        .ipintel(common::ipintel())
        .sigma_rules(common::sigma_aws());
    let (shared, _) = builder.build_shared();
    let (whole, stats) = run_parallel(&builder, shared.clone(), &files, 1);
    let whole = jsonl(&whole);
    // The logs hold what only the whole can see: a key created by one identity
    // and used by another, and a launch in a region no identity of the account used.
    assert!(
        whole
            .iter()
            .any(|a| a.contains("behaviour.new-key-different-network")),
        "no new-key alert in the single run"
    );
    assert!(
        whole
            .iter()
            .any(|a| a.contains("region") && a.contains("never used")),
        "no new-region launch in the single run"
    );
    for n in [1, 2, 7] {
        let mut cp = Checkpoints::default();
        let (alerts, events) = distributed(&builder, &shared, &files, n, &mut cp);
        assert_eq!(events, stats.events, "{n} partitions: events");
        let got = jsonl(&alerts);
        assert_eq!(
            got.len(),
            whole.len(),
            "{n} partitions: {} alerts, one process {}",
            got.len(),
            whole.len()
        );
        for (g, w) in got.iter().zip(&whole) {
            assert_eq!(g, w, "{n} partitions");
        }
    }
}

#[test]
fn a_chain_of_runs_carried_by_checkpoints_is_the_chain_of_state_runs() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = org_trail(dir.path());
    files.sort_by_key(|f| merge_key(f, true, false));
    // Three runs over successive deliveries, as a schedule picks up new files.
    let thirds: Vec<Vec<PathBuf>> = files
        .chunks(files.len().div_ceil(3))
        .map(|c| c.to_vec())
        .collect();
    let state = tempfile::tempdir().unwrap();
    let builder = EngineBuilder::new()
        .ipintel(common::ipintel())
        .sigma_rules(common::sigma_aws());
    let (shared, _) = builder.build_shared();
    let with_state = builder.clone().state_dir(state.path());
    let mut whole = Vec::new();
    for run in &thirds {
        let (alerts, _) = run_parallel(&with_state, shared.clone(), run, 1);
        whole.extend(alerts);
    }
    let whole = jsonl(&whole);
    assert!(!whole.is_empty());

    let mut cp = Checkpoints::default();
    let mut got = Vec::new();
    for run in &thirds {
        let (alerts, _) = distributed(&builder, &shared, run, 3, &mut cp);
        got.extend(alerts);
    }
    let got = jsonl(&got);
    assert_eq!(got.len(), whole.len());
    for (g, w) in got.iter().zip(&whole) {
        assert_eq!(g, w);
    }
}

#[test]
fn partitions_are_stable_and_spread() {
    // Fixed values: a run's routed events and its checkpoints depend on them.
    assert_eq!(partition_of("", 8), partition_of("", 8));
    assert_eq!(partition_of("anything", 1), 0);
    assert_eq!(partition_of("anything", 0), 0);
    let mut counts = [0u32; 8];
    for i in 0..8000 {
        counts[partition_of(&format!("arn:aws:iam::123456789012:user/u{i}"), 8) as usize] += 1;
    }
    assert!(counts.iter().all(|c| (800..1200).contains(c)), "{counts:?}");
}

#[test]
fn routing_keeps_bad_records_as_a_single_run_reports_them() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("damaged_20240301T0000Z.json");
    std::fs::write(
        &f,
        r#"{"Records":[{"eventTime":"2024-03-01T00:00:00Z","eventName":"GetCallerIdentity","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::1:user/a"}},{"eventTime": tru},"#,
    )
    .unwrap();
    let routed = route(read_file(&f), 4);
    assert_eq!(routed.events, 1);
    assert!(!routed.diagnostics.is_empty());
    assert_eq!(routed.parts.iter().filter(|p| !p.is_empty()).count(), 1);
    let missing = route(read_file(&dir.path().join("missing.json")), 4);
    assert_eq!(missing.events, 0);
    assert!(
        missing
            .diagnostics
            .iter()
            .any(|d| d.kind == keytrail_detect::reader::kinds::UNREADABLE)
    );
}

//! Posture benchmark: generates an AWS snapshot of 10,000 roles and 5,000
//! users with realistic policies (keytrail-testkit), writes it to a temporary
//! directory in the CLI layout, then times `load_snapshot` + `check_all`
//! (and `inventory`). Target: under 5 seconds. Run with `cargo bench -p
//! keytrail-inventory --bench posture`; `ROLES` and `USERS` override the sizes.

use keytrail_inventory::{Facts, check_all, inventory_with, load_snapshot};
use keytrail_testkit::snapshot::{AwsSnapshotSpec, write_aws_snapshot};
use std::time::Instant;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument that is not ours means skip.
    if std::env::args()
        .skip(1)
        .any(|a| !a.starts_with('-') && !"posture".contains(a.as_str()))
    {
        return;
    }
    let spec = AwsSnapshotSpec {
        roles: env_usize("ROLES", 10_000),
        users: env_usize("USERS", 5_000),
        groups: 200,
        managed_policies: 600,
        buckets: 300,
        instances_per_region: 500,
        regions: vec!["us-east-1".into(), "us-west-2".into(), "eu-west-1".into()],
        ..AwsSnapshotSpec::default()
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let t = Instant::now();
    let stats = write_aws_snapshot(dir.path(), &spec).expect("write snapshot");
    println!(
        "generated {} roles, {} users, {} access keys: {} files, {:.1} MB in {:.2} s",
        stats.roles,
        stats.users,
        stats.access_keys,
        stats.files,
        stats.bytes as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    let now = keytrail_inventory::chrono::DateTime::parse_from_rfc3339("2025-06-01T00:00:00Z")
        .expect("time")
        .to_utc();
    let mut best = f64::MAX;
    for run in 1..=3 {
        let t = Instant::now();
        let (snap, diags) = load_snapshot(dir.path());
        let load = t.elapsed().as_secs_f64();
        let report = check_all(&snap, None, now);
        let total = t.elapsed().as_secs_f64();
        let inv = inventory_with(&snap, None, now, Facts::builtin(), &report);
        let with_inv = t.elapsed().as_secs_f64();
        assert!(diags.is_empty(), "{diags:?}");
        println!(
            "run {run}: load {load:.2} s, load+check_all {total:.2} s ({} findings, {} not evaluated), +inventory {with_inv:.2} s ({} records)",
            report.findings.len(),
            report.not_evaluated.len(),
            inv.len()
        );
        best = best.min(total);
    }
    println!("posture load+check_all: {best:.2} s (best of 3; target < 5 s)");
}

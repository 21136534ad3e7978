//! Importing 100,000 findings into the store, SQLite and PostgreSQL: the
//! figure README.md records. `cargo bench -p keytrail-store --bench import`
//! (`KT_STORE_FINDINGS=N` for another count). PostgreSQL is the local
//! server (127.0.0.1:5432, trust authentication, user postgres); the bench
//! makes its own database and drops it, and fails when the server is not
//! there.
//!
//! Each finding has one location, a distinct fake secret (made here) and
//! the shape of a scan finding. Three imports per database: into an empty
//! store, the same findings again as a second run (every row an update),
//! and a complete run that sees none of them (every finding marked fixed).

use keytrail_store::{Filter, RunRecord, Store};
use keytrail_types::{Confidence, Finding, Fingerprint, Location, Origin, Secret, Severity};
use sha2::{Digest, Sha256};
use std::time::Instant;

fn findings(n: usize) -> Vec<Finding> {
    let mut fake = keytrail_testkit::secrets::FakeSecrets::new(20);
    (0..n)
        .map(|i| {
            let secret = fake.github_classic();
            let mut h = Sha256::new();
            h.update(b"github.pat.classic\0");
            h.update(secret.as_bytes());
            let fp: String = h.finalize()[..16]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            let s = Secret::new(secret);
            Finding {
                rule_id: "github.pat.classic".into(),
                rule_name: "GitHub personal access token (classic)".into(),
                confidence: Confidence::High,
                severity: Severity::High,
                fingerprint: Fingerprint(fp),
                secret_redacted: s.redacted(),
                secret: s,
                context: Vec::new(),
                locations: vec![Location {
                    path: format!("services/svc{}/config/{}.env", i % 97, i),
                    line: (i % 300) as u64 + 1,
                    column: 14,
                    offset: (i % 300) as u64 * 40,
                    snippet: "GITHUB_TOKEN=ghp_…ab".into(),
                    origin: Origin::File,
                    decoded: None,
                }],
                notes: vec!["checksum valid".into()],
                remediation: None,
                verification: None,
                blast_radius: None,
            }
        })
        .collect()
}

fn run(key: &str, complete: bool) -> RunRecord {
    let mut r = RunRecord::new("import", "bench");
    r.run_key = key.into();
    r.keytrail_version = env!("CARGO_PKG_VERSION").into();
    r.complete = complete;
    r
}

fn measure(label: &str, url: &str, all: &[Finding]) {
    let mut s = Store::open(url).unwrap_or_else(|e| panic!("{label}: {e}"));
    let none = |_: &Finding| None;
    let t = Instant::now();
    let sum = s
        .record_run(&run("first", false), all, &none)
        .expect("first import");
    let first = t.elapsed().as_secs_f64();
    assert_eq!(sum.new, all.len());
    let t = Instant::now();
    let sum = s
        .record_run(&run("second", false), all, &none)
        .expect("second import");
    let second = t.elapsed().as_secs_f64();
    assert_eq!(sum.new, 0);
    let t = Instant::now();
    let sum = s
        .record_run(&run("gone", true), &[], &none)
        .expect("fixing run");
    let fixed = t.elapsed().as_secs_f64();
    assert_eq!(sum.fixed, all.len());
    let t = Instant::now();
    let listed = s.list_findings(&Filter::default()).expect("list").len();
    let list = t.elapsed().as_secs_f64();
    assert_eq!(listed, all.len());
    let n = all.len() as f64;
    println!(
        "{label}: {} findings: import into an empty store {first:.2} s ({:.0}/s); again as a second run {second:.2} s ({:.0}/s); \
complete run marking all fixed {fixed:.2} s; listing all {list:.2} s",
        all.len(),
        n / first,
        n / second
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n: usize = std::env::var("KT_STORE_FINDINGS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let all = findings(n);

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bench.db");
    measure("sqlite", path.to_str().expect("utf-8 path"), &all);
    let size: u64 = std::fs::read_dir(dir.path())
        .expect("read dir")
        .map(|e| e.expect("entry").metadata().expect("metadata").len())
        .sum();
    println!(
        "sqlite: database files {:.1} MiB",
        size as f64 / (1 << 20) as f64
    );

    let name = format!("kt_store_bench_{}", std::process::id());
    let admin = "host=127.0.0.1 port=5432 user=postgres dbname=postgres";
    let mut c = postgres::Client::connect(admin, postgres::NoTls).unwrap_or_else(|e| {
        panic!(
            "PostgreSQL must listen on 127.0.0.1:5432 (scripts/install-test-deps.sh starts it): {e}"
        )
    });
    c.batch_execute(&format!("CREATE DATABASE {name}"))
        .expect("create database");
    measure(
        "postgres",
        &format!("postgres://postgres@127.0.0.1:5432/{name}"),
        &all,
    );
    let size: i64 = c
        .query_one("SELECT pg_database_size($1)", &[&name])
        .expect("size")
        .get(0);
    println!(
        "postgres: database size {:.1} MiB",
        size as f64 / (1 << 20) as f64
    );
    c.batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .expect("drop database");
}

//! Latency of `keytrail serve` with 100,000 findings in the store, SQLite
//! and PostgreSQL: the figures README.md records.
//! `cargo bench -p keytrail-server --bench latency` (`KT_SERVE_FINDINGS=N`,
//! `KT_SERVE_SECONDS=S` per route, `KT_SERVE_CLIENTS=C`). PostgreSQL is
//! the local server (127.0.0.1:5432, trust authentication, user
//! postgres); the bench makes its own database and drops it, and fails
//! when the server is not there.
//!
//! The load generator is here, not oha or wrk: C client threads on
//! loopback, each with a keep-alive connection, send requests back to back
//! for S seconds per route; every latency is kept and the percentiles are
//! exact. Routes: a page of 100 findings at a random offset (the findings
//! list), the same filtered (open, high and above), and one finding by its
//! fingerprint with its locations, history and exposure records (a
//! credential's page). It also times filling the store (one run of N
//! findings, as `keytrail import` records them).

use keytrail_store::{Role, RunRecord, Store};
use keytrail_types::{Confidence, Finding, Fingerprint, Location, Origin, Secret, Severity};
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}: not a number: {v}"))
        })
        .unwrap_or(default)
}

fn findings(n: usize) -> Vec<Finding> {
    let mut fake = keytrail_testkit::secrets::FakeSecrets::new(21);
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
            let severity = [
                Severity::Low,
                Severity::Medium,
                Severity::High,
                Severity::Critical,
            ][i % 4];
            Finding {
                rule_id: "github.pat.classic".into(),
                rule_name: "GitHub personal access token (classic)".into(),
                confidence: Confidence::High,
                severity,
                fingerprint: Fingerprint(fp),
                secret_redacted: s.redacted(),
                secret: s,
                context: Vec::new(),
                locations: (0..2)
                    .map(|k| Location {
                        path: format!("services/svc{}/config/{i}-{k}.env", i % 97),
                        line: (i % 300) as u64 + 1,
                        column: 14,
                        offset: (i % 300) as u64 * 40,
                        snippet: "GITHUB_TOKEN=ghp_…ab".into(),
                        origin: Origin::File,
                        decoded: None,
                    })
                    .collect(),
                notes: vec!["checksum valid".into()],
                remediation: None,
                verification: None,
                blast_radius: None,
            }
        })
        .collect()
}

type PathOf<'a> = dyn Fn(u64) -> String + Sync + 'a;

/// Latencies (sorted) and requests per second of `clients` threads
/// sending `path(i)` for `secs` seconds.
fn load(
    base: &str,
    token: &str,
    clients: usize,
    secs: u64,
    path: &PathOf<'_>,
) -> (Vec<Duration>, f64) {
    let start = Instant::now();
    let until = start + Duration::from_secs(secs);
    let mut all: Vec<Duration> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                scope.spawn(move || {
                    let agent = ureq::Agent::config_builder()
                        .http_status_as_error(false)
                        .build()
                        .new_agent();
                    let mut out = Vec::new();
                    let mut i = c as u64 * 7_919 + 1;
                    while Instant::now() < until {
                        let t = Instant::now();
                        let mut r = agent
                            .get(format!("{base}{}", path(i)))
                            .header("Authorization", format!("Bearer {token}"))
                            .call()
                            .expect("request");
                        let status = r.status().as_u16();
                        let body = r.body_mut().read_to_vec().expect("body");
                        out.push(t.elapsed());
                        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
                        i = i
                            .wrapping_mul(6_364_136_223_846_793_005)
                            .wrapping_add(1_442_695_040_888_963_407);
                    }
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let elapsed = start.elapsed().as_secs_f64();
    all.sort();
    let rate = all.len() as f64 / elapsed;
    (all, rate)
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn measure(label: &str, url: &str, all: &[Finding], clients: usize, secs: u64) {
    let mut s = Store::open(url).unwrap_or_else(|e| panic!("{label}: {e}"));
    let mut run = RunRecord::new("import", "bench");
    run.complete = true;
    let t = Instant::now();
    s.record_run(&run, all, &|_| Some("payments".into()))
        .expect("fill the store");
    println!(
        "{label:<10} import of {} findings (one run)         {:.1} s",
        all.len(),
        t.elapsed().as_secs_f64()
    );
    let token = s.create_token("bench", Role::Viewer).unwrap();
    drop(s);
    let server = keytrail_server::spawn(url, "127.0.0.1:0".parse().unwrap()).expect("serve");
    let base = format!("http://{}", server.addr);
    let max_id = all.len() as u64;
    let fps: Vec<&str> = all.iter().map(|f| f.fingerprint.0.as_str()).collect();
    let list = move |i: u64| format!("/api/v1/findings?limit=100&after={}", i % max_id);
    let filtered = move |i: u64| {
        format!(
            "/api/v1/findings?status=open&min_severity=high&limit=100&after={}",
            i % max_id
        )
    };
    let page = |i: u64| format!("/api/v1/findings/{}", fps[(i % fps.len() as u64) as usize]);
    let routes: [(&str, &PathOf<'_>); 3] = [
        ("findings list (100, random page)", &list),
        ("findings list, open, high and above", &filtered),
        ("a credential's page", &page),
    ];
    for (name, path) in routes {
        let (lat, rate) = load(&base, &token, clients, secs, path);
        println!(
            "{label:<10} {name:<38} n={:<6} {rate:>6.0} req/s  p50 {:>6.1} ms  p95 {:>6.1} ms  p99 {:>6.1} ms",
            lat.len(),
            pct(&lat, 0.50),
            pct(&lat, 0.95),
            pct(&lat, 0.99)
        );
    }
}

fn main() {
    // `cargo test --benches` runs this without `--bench`: only `cargo
    // bench` measures.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let n = env_or("KT_SERVE_FINDINGS", 100_000);
    let secs = env_or("KT_SERVE_SECONDS", 10) as u64;
    let clients = env_or("KT_SERVE_CLIENTS", 4);
    let all = findings(n);
    println!("{n} findings (2 locations each), {clients} clients, {secs} s per route, loopback");
    let dir = tempfile::tempdir().unwrap();
    let sqlite = dir.path().join("bench.db").display().to_string();
    measure("SQLite", &sqlite, &all, clients, secs);

    let mut admin = postgres::Client::connect(
        "host=127.0.0.1 port=5432 user=postgres dbname=postgres",
        postgres::NoTls,
    )
    .expect("PostgreSQL must listen on 127.0.0.1:5432 with trust authentication (scripts/install-test-deps.sh starts it)");
    let name = format!("kt_serve_bench_{}", std::process::id());
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .unwrap();
    let pg = format!("postgres://postgres@127.0.0.1:5432/{name}");
    measure("PostgreSQL", &pg, &all, clients, secs);
    admin
        .batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .unwrap();
}

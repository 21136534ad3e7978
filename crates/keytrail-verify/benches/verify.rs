//! Verification benchmark (harness = false): 1,000 findings holding 100
//! distinct secrets (10 providers × 10 secrets, each secret in 10
//! findings) verified against loopback servers started here, one per
//! provider, each answering its verifier's live example. Prints wall time,
//! requests sent (counted by the servers and by the engine) and findings
//! per second, with the default limits (8 in flight, 4 per provider, 20
//! requests/s per provider) and with the rate limit off.
//!
//! `cargo bench -p keytrail-verify --bench verify`

use keytrail_testkit::recorder::{Answer, Recorder};
use keytrail_testkit::secrets::FakeSecrets;
use keytrail_types::{Confidence, Finding, Location, Origin, Secret, Severity};
use keytrail_verify::{Endpoints, Options, Verifier, defs};
use std::time::Instant;

const PROVIDERS: &[&str] = &[
    "github",
    "gitlab",
    "slack",
    "stripe",
    "openai",
    "anthropic",
    "npm",
    "huggingface",
    "sendgrid",
    "datadog",
];

fn main() {
    let all = defs::builtin().expect("definitions");
    let mut servers = Vec::new();
    let mut endpoints = Endpoints::new();
    let mut findings = Vec::new();
    let mut g = FakeSecrets::new(99);
    for id in PROVIDERS {
        let d = all.iter().find(|d| d.id == *id).expect("verifier");
        let live = d
            .examples
            .iter()
            .find(|e| e.expect == "live")
            .unwrap()
            .clone();
        let srv = Recorder::start(move |_| {
            let mut a = Answer::new(live.status, live.body.clone());
            for (k, v) in &live.headers {
                a = a.header(k, v);
            }
            a
        });
        endpoints.set(id, &srv.url()).unwrap();
        for _ in 0..10 {
            let secret = format!("kt{}", g.chars(b"abcdefghijklmnopqrstuvwxyz0123456789", 38));
            for copy in 0..10 {
                findings.push(finding(&d.rules[0], &secret, copy));
            }
        }
        servers.push(srv);
    }
    assert_eq!(findings.len(), 1000);
    for (label, rate) in [
        ("default limits (20 req/s per provider)", 20.0),
        ("rate limit off", 0.0),
    ] {
        let before: usize = servers.iter().map(|s| s.requests().len()).sum();
        let v = Verifier::new(Options {
            endpoints: endpoints.clone(),
            rate_per_second: rate,
            ..Options::default()
        })
        .unwrap();
        let mut fs = findings.clone();
        let t = Instant::now();
        let stats = v.verify(&mut fs);
        let wall = t.elapsed();
        let served: usize = servers.iter().map(|s| s.requests().len()).sum::<usize>() - before;
        let live = fs
            .iter()
            .filter(|f| {
                f.verification
                    .as_ref()
                    .is_some_and(|v| v.status.as_str() == "live")
            })
            .count();
        println!(
            "verify 1000 findings / {} distinct secrets / {} providers, {label}: wall {:.3} s, requests sent {} (servers saw {}), {} live, {:.0} findings/s",
            stats.distinct,
            PROVIDERS.len(),
            wall.as_secs_f64(),
            stats.requests,
            served,
            live,
            1000.0 / wall.as_secs_f64()
        );
        assert_eq!(served, 100);
        assert_eq!(live, 1000);
    }
}

fn finding(rule: &str, secret: &str, copy: usize) -> Finding {
    Finding {
        rule_id: rule.into(),
        rule_name: rule.into(),
        confidence: Confidence::High,
        severity: Severity::High,
        fingerprint: keytrail_types::Fingerprint(format!("{copy}")),
        secret_redacted: keytrail_types::redact(secret.as_bytes()),
        secret: Secret::new(secret.into()),
        context: Vec::new(),
        locations: vec![Location {
            path: format!("f{copy}.env"),
            line: 1,
            column: 1,
            offset: 0,
            snippet: String::new(),
            origin: Origin::File,
            decoded: None,
        }],
        notes: Vec::new(),
        remediation: None,
        verification: None,
        blast_radius: None,
    }
}

//! Every data-driven verifier against a loopback server started here: its
//! examples (live, invalid, provider error) give the verdict they name,
//! the request has the definition's method, path and authentication, and
//! it goes to the configured host only. Then the safety properties: one
//! request per distinct secret, 429 with Retry-After, 500, garbage, slow
//! providers, canaries (no request), a hostile secret that tries to name
//! another host, and the cache file.

use keytrail_testkit::recorder::{Answer, Recorder};
use keytrail_testkit::secrets::FakeSecrets;
use keytrail_types::{
    Confidence, Finding, Location, Origin, Privilege, Secret, Severity, VerificationStatus,
};
use keytrail_verify::defs::{self, HttpVerifier};
use keytrail_verify::{Endpoints, Options, Verifier};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

fn finding(rule: &str, secret: &str, ctx: &[(&str, &str)]) -> Finding {
    Finding {
        rule_id: rule.into(),
        rule_name: rule.into(),
        confidence: Confidence::High,
        severity: Severity::High,
        fingerprint: keytrail_scan::fingerprint(rule, secret.as_bytes()),
        secret_redacted: keytrail_types::redact(secret.as_bytes()),
        secret: Secret::new(secret.to_string()),
        context: ctx
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        locations: vec![Location {
            path: "app.env".into(),
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

fn opts_for(id: &str, url: &str) -> Options {
    let mut endpoints = Endpoints::new();
    endpoints.set(id, url).unwrap();
    Options {
        endpoints,
        timeout: Duration::from_secs(5),
        ..Options::default()
    }
}

fn fake_secret(g: &mut FakeSecrets) -> String {
    format!("kt{}", g.chars(b"abcdefghijklmnopqrstuvwxyz0123456789", 38))
}

#[test]
fn at_least_forty_providers_and_every_rule_exists() {
    let defs = defs::builtin().expect("definitions parse");
    let (rules, diags) = keytrail_rules::builtin();
    assert!(diags.is_empty(), "{diags:?}");
    let mut providers: Vec<&str> = defs.iter().map(|d| d.provider.as_str()).collect();
    providers.push("AWS");
    providers.push("Google Cloud");
    providers.sort();
    providers.dedup();
    assert!(
        providers.len() >= 40,
        "{} providers: {providers:?}",
        providers.len()
    );
    for d in &defs {
        for r in &d.rules {
            assert!(
                rules.iter().any(|x| x.id() == r),
                "{}: unknown rule {r}",
                d.id
            );
        }
        assert!(
            d.examples.len() >= 3,
            "{}: needs live, invalid and error examples",
            d.id
        );
    }
}

fn run_example(def: &HttpVerifier, ex: &defs::Example, g: &mut FakeSecrets) {
    let answer = {
        let mut a = Answer::new(ex.status, ex.body.clone());
        for (k, v) in &ex.headers {
            a = a.header(k, v);
        }
        a
    };
    let srv = Recorder::start(move |_| answer.clone());
    let decoy = Recorder::start(|_| Answer::new(200, "{}"));
    let v = Verifier::with_definitions(vec![def.clone()], opts_for(&def.id, &srv.url())).unwrap();
    let secret = fake_secret(g);
    let ctx: Vec<(&str, &str)> = ex
        .context
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut fs = vec![finding(&def.rules[0], &secret, &ctx)];
    let stats = v.verify(&mut fs);
    let got = fs[0].verification.as_ref().expect("verified");
    assert_eq!(
        got.status.as_str(),
        ex.expect,
        "{}: example {} {:?} gave {got:?}",
        def.id,
        ex.status,
        ex.body
    );
    for (k, want) in &ex.identity {
        assert!(
            got.identity.iter().any(|(ik, iv)| ik == k && iv == want),
            "{}: identity {k}={want} missing in {:?}",
            def.id,
            got.identity
        );
    }
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 1, "{}: one request per check", def.id);
    assert_eq!(stats.requests, 1);
    let r = &reqs[0];
    assert_eq!(
        r.method,
        def.request.method.to_ascii_uppercase(),
        "{}",
        def.id
    );
    let want_path = def.request.path.split("{{").next().unwrap();
    assert!(
        r.path.starts_with(want_path),
        "{}: path {} vs {}",
        def.id,
        r.path,
        want_path
    );
    assert_eq!(r.header("host"), Some(srv.authority()), "{}", def.id);
    // The secret travelled in the authentication the definition names.
    let carried = r.headers.iter().any(|(_, v)| v.contains(&secret))
        || r.path.contains(&secret)
        || r.body.contains(&secret)
        || r.header("authorization").is_some_and(|a| {
            use base64::Engine as _;
            a.strip_prefix("Basic ")
                .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                .is_some_and(|d| String::from_utf8_lossy(&d).contains(&secret))
        });
    assert!(carried, "{}: secret not sent: {r:?}", def.id);
    assert!(decoy.requests().is_empty());
    // Nothing the provider said puts the secret into the output.
    let shown = format!("{got:?}");
    assert!(!shown.contains(&secret), "{}: {shown}", def.id);
}

#[test]
fn every_verifier_gives_its_examples_verdicts() {
    let mut g = FakeSecrets::new(7);
    let defs = defs::builtin().unwrap();
    for d in &defs {
        for ex in &d.examples {
            run_example(d, ex, &mut g);
        }
    }
}

/// The invariant: with analysis on (follow-up requests included), every
/// request of every verifier goes to the configured host and nowhere else,
/// even when the secret and context try to name another host.
#[test]
fn a_verifier_only_contacts_its_providers_host() {
    let decoy = Recorder::start(|_| Answer::new(200, "{}"));
    let hostile = format!("x@{}/", decoy.authority());
    for d in defs::builtin().unwrap() {
        let live = d
            .examples
            .iter()
            .find(|e| e.expect == "live")
            .unwrap()
            .clone();
        let srv = Recorder::start(move |_| {
            let mut a = Answer::new(200, live.body.clone());
            for (k, v) in &live.headers {
                a = a.header(k, v);
            }
            a
        });
        let mut o = opts_for(&d.id, &srv.url());
        o.analyze = true;
        let v = Verifier::with_definitions(vec![d.clone()], o).unwrap();
        let ctx: Vec<(String, String)> = d
            .examples
            .iter()
            .flat_map(|e| e.context.keys().cloned())
            .map(|k| (k, format!("http://{}/", decoy.authority())))
            .collect();
        let ctx_ref: Vec<(&str, &str)> =
            ctx.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mut fs = vec![finding(&d.rules[0], &hostile, &ctx_ref)];
        v.verify(&mut fs);
        for r in srv.requests() {
            assert_eq!(r.header("host"), Some(srv.authority()), "{}: {r:?}", d.id);
        }
        assert!(!srv.requests().is_empty(), "{}", d.id);
    }
    assert!(
        decoy.requests().is_empty(),
        "a request reached another host: {:?}",
        decoy.requests()
    );
}

#[test]
fn self_hosted_providers_need_an_endpoint() {
    let defs = defs::builtin().unwrap();
    let vault = defs.iter().find(|d| d.id == "vault").unwrap().clone();
    let v = Verifier::with_definitions(vec![vault], Options::default()).unwrap();
    let mut fs = vec![finding(
        "vault.service_token",
        "hvs.abcdefghijklmnopqrstuvwx",
        &[],
    )];
    let s = v.verify(&mut fs);
    let got = fs[0].verification.as_ref().unwrap();
    assert_eq!(got.status, VerificationStatus::Skipped);
    assert!(
        got.detail
            .as_deref()
            .unwrap()
            .contains("KEYTRAIL_VERIFY_ENDPOINT_VAULT")
    );
    assert_eq!(s.requests, 0);
}

fn github() -> HttpVerifier {
    defs::builtin()
        .unwrap()
        .into_iter()
        .find(|d| d.id == "github")
        .unwrap()
}

#[test]
fn each_distinct_secret_is_checked_once() {
    let mut g = FakeSecrets::new(1);
    let srv = Recorder::start(|_| Answer::new(200, r#"{"login":"a"}"#));
    let v = Verifier::with_definitions(vec![github()], opts_for("github", &srv.url())).unwrap();
    let secrets: Vec<String> = (0..5).map(|_| g.github_classic()).collect();
    let mut fs: Vec<Finding> = (0..50)
        .map(|i| finding("github.pat.classic", &secrets[i % 5], &[]))
        .collect();
    let stats = v.verify(&mut fs);
    assert_eq!(srv.requests().len(), 5);
    assert_eq!((stats.distinct, stats.requests), (5, 5));
    assert!(
        fs.iter()
            .all(|f| f.verification.as_ref().unwrap().status == VerificationStatus::Live)
    );
    let auths: std::collections::BTreeSet<String> = srv
        .requests()
        .iter()
        .map(|r| r.header("authorization").unwrap().to_string())
        .collect();
    assert_eq!(auths.len(), 5);
}

#[test]
fn provider_errors_rate_limits_garbage_and_slowness_are_unknown() {
    let mut g = FakeSecrets::new(2);
    // 500.
    let srv = Recorder::start(|_| Answer::new(500, "internal error"));
    let v = Verifier::with_definitions(vec![github()], opts_for("github", &srv.url())).unwrap();
    let mut fs = vec![finding("github.pat.classic", &g.github_classic(), &[])];
    v.verify(&mut fs);
    let got = fs[0].verification.clone().unwrap();
    assert_eq!(got.status, VerificationStatus::Unknown);
    assert!(got.detail.unwrap().contains("HTTP 500"));

    // 429 with a short Retry-After: waited for, retried, then live.
    let n = Arc::new(AtomicUsize::new(0));
    let n2 = n.clone();
    let srv = Recorder::start(move |_| {
        if n2.fetch_add(1, Ordering::SeqCst) == 0 {
            Answer::new(429, "slow down").header("Retry-After", "1")
        } else {
            Answer::new(200, r#"{"login":"a"}"#)
        }
    });
    let v = Verifier::with_definitions(vec![github()], opts_for("github", &srv.url())).unwrap();
    let mut fs = vec![finding("github.pat.classic", &g.github_classic(), &[])];
    let t = std::time::Instant::now();
    v.verify(&mut fs);
    assert_eq!(
        fs[0].verification.as_ref().unwrap().status,
        VerificationStatus::Live
    );
    assert_eq!(srv.requests().len(), 2);
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "Retry-After honoured"
    );

    // 429 asking for an hour: not waited for.
    let srv = Recorder::start(|_| Answer::new(429, "").header("Retry-After", "3600"));
    let v = Verifier::with_definitions(vec![github()], opts_for("github", &srv.url())).unwrap();
    let mut fs = vec![finding("github.pat.classic", &g.github_classic(), &[])];
    v.verify(&mut fs);
    let got = fs[0].verification.clone().unwrap();
    assert_eq!(got.status, VerificationStatus::Unknown);
    assert!(
        got.detail
            .unwrap()
            .contains("rate limited (HTTP 429, retry after 3600 s)")
    );
    assert_eq!(srv.requests().len(), 1);

    // Garbage where Slack answers JSON.
    let slack = defs::builtin()
        .unwrap()
        .into_iter()
        .find(|d| d.id == "slack")
        .unwrap();
    let srv = Recorder::start(|_| Answer::new(200, "<html>\u{0}\u{1}garbage"));
    let v = Verifier::with_definitions(vec![slack], opts_for("slack", &srv.url())).unwrap();
    let mut fs = vec![finding("slack.token.bot", &g.slack_bot(), &[])];
    v.verify(&mut fs);
    let got = fs[0].verification.clone().unwrap();
    assert_eq!(got.status, VerificationStatus::Unknown, "{got:?}");

    // Slow: the timeout answers.
    let srv = Recorder::start(|_| Answer::new(200, "{}").delayed(Duration::from_secs(4)));
    let mut o = opts_for("github", &srv.url());
    o.timeout = Duration::from_millis(500);
    let v = Verifier::with_definitions(vec![github()], o).unwrap();
    let mut fs = vec![finding("github.pat.classic", &g.github_classic(), &[])];
    let t = std::time::Instant::now();
    v.verify(&mut fs);
    let got = fs[0].verification.clone().unwrap();
    assert_eq!(got.status, VerificationStatus::Unknown);
    assert!(got.detail.unwrap().contains("timed out"));
    assert!(t.elapsed() < Duration::from_secs(3));

    // Refused connection.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let v = Verifier::with_definitions(
        vec![github()],
        opts_for("github", &format!("http://127.0.0.1:{port}")),
    )
    .unwrap();
    let mut fs = vec![finding("github.pat.classic", &g.github_classic(), &[])];
    v.verify(&mut fs);
    assert_eq!(
        fs[0].verification.as_ref().unwrap().status,
        VerificationStatus::Unknown
    );
}

#[test]
fn aws_canaries_are_recognised_offline_and_never_sent() {
    let srv = Recorder::start(|_| Answer::new(200, ""));
    let mut o = Options::default();
    o.endpoints.set("aws.sts", &srv.url()).unwrap();
    let v = Verifier::new(o).unwrap();
    let mut fs = vec![
        finding(
            "aws.access_key.pair",
            "wJalrXUtnFEMIK7MDENGbPxRfiCYzzzzzzzzzzzz",
            &[("id", "AKIAQYLPMN5HHHFPZAM2")],
        ),
        finding("aws.access_key_id", "AKIAAYLPMN5HAAAAAAAA", &[]),
    ];
    let s = v.verify(&mut fs);
    for f in &fs {
        let got = f.verification.as_ref().unwrap();
        assert_eq!(got.status, VerificationStatus::Canary, "{got:?}");
        assert!(
            got.identity
                .contains(&("account".into(), "052310077262".into()))
        );
    }
    assert_eq!(s.requests, 0);
    assert!(srv.requests().is_empty());
}

#[test]
fn rules_without_a_verifier_are_skipped() {
    let v = Verifier::new(Options::default()).unwrap();
    let mut fs = vec![finding(
        "generic.password.env",
        "hunter2hunter2",
        &[("key", "DB_PASSWORD")],
    )];
    let s = v.verify(&mut fs);
    let got = fs[0].verification.as_ref().unwrap();
    assert_eq!(got.status, VerificationStatus::Skipped);
    assert_eq!(
        got.detail.as_deref(),
        Some("no verifier for rule generic.password.env")
    );
    assert_eq!(s.requests, 0);
}

#[test]
fn the_cache_file_answers_the_next_run_and_holds_no_secret() {
    let mut g = FakeSecrets::new(3);
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("verify-cache.json");
    let srv =
        Recorder::start(|_| Answer::new(200, r#"{"login":"a"}"#).header("X-OAuth-Scopes", "repo"));
    let secret = g.github_classic();
    for run in 0..2 {
        let mut o = opts_for("github", &srv.url());
        o.cache = Some(cache.clone());
        let v = Verifier::with_definitions(vec![github()], o).unwrap();
        let mut fs = vec![finding("github.pat.classic", &secret, &[])];
        let s = v.verify(&mut fs);
        v.save_cache().unwrap();
        assert_eq!(
            fs[0].verification.as_ref().unwrap().status,
            VerificationStatus::Live
        );
        assert_eq!(s.from_cache, run);
    }
    assert_eq!(srv.requests().len(), 1);
    let text = std::fs::read_to_string(&cache).unwrap();
    assert!(!text.contains(&secret) && !text.contains(&secret[4..20]));
    // A file that is not a cache is an error naming it.
    std::fs::write(&cache, "{not json").unwrap();
    let o = Options {
        cache: Some(cache.clone()),
        ..Options::default()
    };
    let err = Verifier::new(o).err().unwrap().to_string();
    assert!(
        err.contains("verify-cache.json") && err.contains("line 1"),
        "{err}"
    );
}

#[test]
fn github_analysis_reads_scopes_orgs_and_repositories() {
    let mut g = FakeSecrets::new(4);
    let srv = Recorder::start(|r| match r.path.split('?').next().unwrap() {
        "/user" => Answer::new(200, r#"{"login":"octo","id":1,"type":"User"}"#)
            .header("X-OAuth-Scopes", "repo, read:org"),
        "/user/orgs" => Answer::new(200, r#"[{"login":"acme"}]"#),
        "/user/repos" => Answer::new(200, r#"[{"full_name":"acme/infra"}]"#),
        _ => Answer::new(404, "{}"),
    });
    let mut o = opts_for("github", &srv.url());
    o.analyze = true;
    let v = Verifier::with_definitions(vec![github()], o).unwrap();
    let mut fs = vec![finding("github.pat.classic", &g.github_classic(), &[])];
    v.verify(&mut fs);
    let b = fs[0].blast_radius.clone().expect("blast radius");
    assert_eq!(b.privilege, Privilege::DataAccess);
    assert_eq!(b.scopes, vec!["read:org", "repo"]);
    assert!(b.resources.contains(&"org:acme".to_string()));
    assert!(b.resources.contains(&"repo:acme/infra".to_string()));
    assert!(b.resources.contains(&"user:octo".to_string()));
    assert_eq!(srv.requests().len(), 3);
}

#[test]
fn stripe_restricted_keys_are_probed() {
    let stripe = defs::builtin()
        .unwrap()
        .into_iter()
        .find(|d| d.id == "stripe")
        .unwrap();
    let srv = Recorder::start(|r| match r.path.split('?').next().unwrap() {
        "/v1/balance" => Answer::new(200, r#"{"livemode":true}"#),
        "/v1/customers" => Answer::new(200, r#"{"data":[]}"#),
        "/v1/account" => Answer::new(200, r#"{"id":"acct_1"}"#),
        _ => Answer::new(403, r#"{"error":{"type":"invalid_request_error"}}"#),
    });
    let mut o = opts_for("stripe", &srv.url());
    o.analyze = true;
    let v = Verifier::with_definitions(vec![stripe], o).unwrap();
    let mut g = FakeSecrets::new(5);
    let mut fs = vec![finding(
        "stripe.restricted_key.live",
        &g.stripe_restricted(),
        &[],
    )];
    v.verify(&mut fs);
    let b = fs[0].blast_radius.clone().unwrap();
    assert_eq!(b.privilege, Privilege::DataAccess, "{b:?}");
    assert_eq!(b.scopes, vec!["customers:read"]);
    assert!(
        b.unknowns.iter().any(|u| u.contains("charges: HTTP 403")),
        "{b:?}"
    );
    assert!(b.resources.contains(&"account:acct_1".to_string()));
}

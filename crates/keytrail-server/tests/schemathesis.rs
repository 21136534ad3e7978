//! schemathesis (PyPI; scripts/install-test-deps.sh installs it) against
//! the running server, on SQLite and PostgreSQL: requests generated from
//! /api/v1/openapi.json, valid and invalid, every check it has (no 5xx,
//! statuses, content types and bodies as documented, invalid input
//! refused, valid input accepted, auth not ignored). A missing schemathesis
//! fails the test.

use keytrail_store::{Role, RunRecord, Store};
use keytrail_types::{Confidence, Finding, Fingerprint, Location, Origin, Secret, Severity};
use std::process::Command;

fn schemathesis() -> Command {
    let ok = Command::new("schemathesis")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "schemathesis is not installed: run scripts/install-test-deps.sh (pip install schemathesis)"
    );
    Command::new("schemathesis")
}

/// A store with a finding of each kind the API lists, and an admin token.
fn fill(location: &str) -> (String, String) {
    let mut store = Store::open(location).expect("open");
    let secret = keytrail_testkit::secrets::FakeSecrets::new(7).github_classic();
    let s = Secret::new(secret);
    let f = Finding {
        rule_id: "github.pat.classic".into(),
        rule_name: "GitHub personal access token".into(),
        confidence: Confidence::High,
        severity: Severity::High,
        fingerprint: Fingerprint("0f1e2d3c4b5a69788796a5b4c3d2e1f0".into()),
        secret_redacted: s.redacted(),
        secret: s,
        context: Vec::new(),
        locations: vec![Location {
            path: "config/app.env".into(),
            line: 3,
            column: 7,
            offset: 40,
            snippet: "token = ************".into(),
            origin: Origin::File,
            decoded: None,
        }],
        notes: Vec::new(),
        remediation: None,
        verification: None,
        blast_radius: None,
    };
    store
        .record_run(&RunRecord::new("scan", "acme/api"), &[f], &|_| None)
        .unwrap();
    let token = store.create_token("schemathesis", Role::Admin).unwrap();
    (token, "0f1e2d3c4b5a69788796a5b4c3d2e1f0".into())
}

fn run(location: &str) {
    let (token, _fp) = fill(location);
    let server = keytrail_server::spawn(location, "127.0.0.1:0".parse().unwrap()).expect("serve");
    let report = tempfile::tempdir().unwrap();
    let out = schemathesis()
        .arg("run")
        .arg(format!("http://{}/api/v1/openapi.json", server.addr))
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--checks", "all"])
        .args(["--max-examples", "40", "--seed", "20261207"])
        // One worker: with two, Hypothesis (6.x) races on its AST cache while
        // describing strategies and schemathesis reports that as a runtime
        // error of the run, whatever the server answered.
        .args(["--workers", "1", "--no-color"])
        .args(["--generation-database", "none"])
        .arg("--report-dir")
        .arg(report.path())
        // Its caches (.schemathesis/, .hypothesis/) go to the temporary
        // directory, not into the source tree.
        .current_dir(report.path())
        .env("SCHEMATHESIS_HOOKS", "")
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .env_remove("ALL_PROXY")
        .output()
        .expect("run schemathesis");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "schemathesis found problems:\n{text}");
    // It tested every operation of the document, not nothing.
    let doc: serde_json::Value =
        serde_json::from_str(include_str!("../openapi.json")).expect("openapi.json");
    let operations: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| {
            p.as_object()
                .unwrap()
                .keys()
                .filter(|k| ["get", "post", "put", "patch", "delete"].contains(&k.as_str()))
                .count()
        })
        .sum::<usize>()
        // schemathesis leaves out the operation that serves the document
        // it loaded (GET /api/v1/openapi.json).
        - 1;
    assert!(
        (text.contains(&format!("Selected: {operations}/{operations}"))
            || text.contains(&format!("{operations} selected / {operations} total")))
            && text.contains(&format!("Tested: {operations}")),
        "{text}"
    );
    assert!(!text.contains(" 0 passed"), "{text}");
}

#[test]
fn schemathesis_finds_nothing_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    run(&dir.path().join("k.db").display().to_string());
}

#[test]
fn schemathesis_finds_nothing_on_postgres() {
    let mut admin = postgres::Client::connect(
        "host=127.0.0.1 port=5432 user=postgres dbname=postgres",
        postgres::NoTls,
    )
    .expect("PostgreSQL must listen on 127.0.0.1:5432 with trust authentication (scripts/install-test-deps.sh starts it)");
    let name = format!("kt_schemathesis_{}", std::process::id());
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .unwrap();
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .unwrap();
    struct Drop_(String);
    impl Drop for Drop_ {
        fn drop(&mut self) {
            if let Ok(mut c) = postgres::Client::connect(
                "host=127.0.0.1 port=5432 user=postgres dbname=postgres",
                postgres::NoTls,
            ) {
                let _ =
                    c.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.0));
            }
        }
    }
    let _drop = Drop_(name.clone());
    run(&format!("postgres://postgres@127.0.0.1:5432/{name}"));
}

//! `keytrail scan --verify/--analyze/--only-live/--fail-on` and `keytrail
//! verify FINDINGS` against a loopback GitHub stand-in (the endpoint comes
//! from `KEYTRAIL_VERIFY_ENDPOINT_GITHUB`); tokens are generated here.

use crate::CliTest;
use keytrail_testkit::recorder::{Answer, Recorder};
use serde_json::Value;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// A GitHub stand-in: tokens in `live` answer 200 as `octo`, others 401.
fn github(live: &[String]) -> Recorder {
    let live: HashSet<String> = live.iter().cloned().collect();
    Recorder::start(move |r| {
        let tok = r
            .header("authorization")
            .and_then(|a| a.strip_prefix("Bearer "))
            .unwrap_or("");
        if live.contains(tok) {
            Answer::new(200, r#"{"login":"octo","id":1,"type":"User"}"#)
                .header("X-OAuth-Scopes", "repo")
        } else {
            Answer::new(401, r#"{"message":"Bad credentials"}"#)
        }
    })
}

fn run(t: &CliTest, srv: &Recorder, args: &[&str]) -> crate::Run {
    let out = t
        .command(args)
        .env("KEYTRAIL_VERIFY_ENDPOINT_GITHUB", srv.url())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    crate::Run {
        code: out.status.code().unwrap(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

#[test]
fn scan_without_verify_sends_nothing() {
    let t = CliTest::new();
    let tok = crate::fake::github_pat();
    t.write("app.env", &format!("GITHUB_TOKEN={tok}\n"));
    let srv = github(&[tok]);
    let r = run(&t, &srv, &["scan", "--format", "json", "."]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(!r.stdout.contains("verification"));
    assert!(srv.requests().is_empty());
}

#[test]
fn scan_verify_checks_each_secret_once_and_reports_it() {
    let t = CliTest::new();
    let live = crate::fake::github_pat();
    let dead = crate::fake::github_pat();
    for i in 0..3 {
        t.write(
            &format!("svc{i}/.env"),
            &format!("GITHUB_TOKEN={live}\nOLD={dead}\n"),
        );
    }
    let srv = github(std::slice::from_ref(&live));
    let r = run(&t, &srv, &["scan", "--verify", "--format", "json", "."]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let fs = v["findings"].as_array().unwrap();
    assert_eq!(fs.len(), 2);
    let mut statuses: Vec<&str> = fs
        .iter()
        .map(|f| f["verification"]["status"].as_str().unwrap())
        .collect();
    statuses.sort();
    assert_eq!(statuses, vec!["invalid", "live"]);
    let l = fs
        .iter()
        .find(|f| f["verification"]["status"] == "live")
        .unwrap();
    assert_eq!(l["verification"]["identity"]["login"], "octo");
    assert_eq!(l["verification"]["verifier"], "github");
    assert_eq!(srv.requests().len(), 2, "one request per distinct secret");
    assert!(
        r.stderr
            .contains("verified 2 findings (2 distinct secrets, 2 requests"),
        "{}",
        r.stderr
    );
    assert!(!r.all().contains(&live[8..]), "never prints the secret");
    for req in srv.requests() {
        assert_eq!(req.path, "/user");
        assert_eq!(req.header("host"), Some(srv.authority()));
    }

    // CI policy: fail only on live secrets.
    let srv2 = github(&[]);
    let r = run(
        &t,
        &srv2,
        &["scan", "--fail-on", "live", "--format", "json", "."],
    );
    assert_eq!(r.code, 0, "no live secret: exit 0\n{}", r.stderr);
    let r = run(&t, &srv, &["scan", "--fail-on", "live", "-q", "."]);
    assert_eq!(r.code, 1);
    assert!(
        r.stdout.contains("verification: live as ") && r.stdout.contains("login=octo"),
        "{}",
        r.stdout
    );
    // Only live findings.
    let r = run(&t, &srv, &["scan", "--only-live", "--format", "jsonl", "."]);
    let lines: Vec<Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "the live token's three locations");
    assert!(lines.iter().all(|l| l["verification"]["status"] == "live"));
    // SARIF carries it too.
    let r = run(&t, &srv, &["scan", "--analyze", "--format", "sarif", "."]);
    let s: Value = serde_json::from_str(&r.stdout).unwrap();
    let results = s["runs"][0]["results"].as_array().unwrap();
    let live_r = results
        .iter()
        .find(|x| x["properties"]["verification"]["status"] == "live")
        .unwrap();
    assert_eq!(
        live_r["properties"]["blast_radius"]["privilege"],
        "data-access"
    );
}

#[test]
fn verify_rereads_secrets_from_a_report() {
    let t = CliTest::new();
    let tok = crate::fake::github_pat();
    t.write("conf/app.env", &format!("GITHUB_TOKEN={tok}\n"));
    let srv = github(std::slice::from_ref(&tok));
    let r = run(
        &t,
        &srv,
        &["scan", "--format", "json", "-o", "findings.json", "conf"],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        !t.read("findings.json").contains(&tok),
        "reports hold no secret"
    );
    run(
        &t,
        &srv,
        &["scan", "--format", "jsonl", "-o", "findings.jsonl", "conf"],
    );
    assert!(srv.requests().is_empty());

    for file in ["findings.json", "findings.jsonl"] {
        let r = run(&t, &srv, &["verify", "--format", "json", file]);
        assert_eq!(r.code, 1, "{}", r.stderr);
        let v: Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(
            v["findings"][0]["verification"]["status"], "live",
            "{file}: {}",
            r.stdout
        );
    }
    assert_eq!(srv.requests().len(), 2);
    let r = run(
        &t,
        &srv,
        &["verify", "--fail-on", "invalid", "-q", "findings.json"],
    );
    assert_eq!(r.code, 0, "live is not in --fail-on invalid");

    // The file changed: another token in its place is not verified in its stead.
    let other = crate::fake::github_pat();
    t.write("conf/app.env", &format!("GITHUB_TOKEN={other}\n"));
    let r = run(&t, &srv, &["verify", "--format", "json", "findings.json"]);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let ver = &v["findings"][0]["verification"];
    assert_eq!(ver["status"], "skipped");
    assert!(
        ver["detail"].as_str().unwrap().contains("no longer there"),
        "{ver}"
    );
    // The file is gone.
    std::fs::remove_file(t.root().join("conf/app.env")).unwrap();
    let r = run(&t, &srv, &["verify", "--format", "json", "findings.json"]);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(
        v["findings"][0]["verification"]["detail"]
            .as_str()
            .unwrap()
            .contains("no longer exists")
    );
    assert_eq!(
        srv.requests().len(),
        3,
        "nothing sent for unrecovered secrets"
    );
}

#[test]
fn malformed_reports_are_errors_naming_file_and_position() {
    let t = CliTest::new();
    let srv = github(&[]);
    t.write(
        "bad.json",
        "{\n  \"version\": 1,\n  \"findings\": [ {\"rule_id\": }\n]}\n",
    );
    let r = run(&t, &srv, &["verify", "bad.json"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("bad.json:3:"), "{}", r.stderr);
    let tok = crate::fake::github_pat();
    t.write("x.env", &format!("T={tok}\n"));
    run(
        &t,
        &srv,
        &["scan", "--format", "jsonl", "-o", "good.jsonl", "x.env"],
    );
    let good = t.read("good.jsonl");
    t.write("bad.jsonl", &format!("{good}{{\"rule_id\": 3\n"));
    let r = run(&t, &srv, &["verify", "bad.jsonl"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("bad.jsonl:2:"), "{}", r.stderr);
    t.write("sarif.json", "{\"runs\": []}");
    let r = run(&t, &srv, &["verify", "sarif.json"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("no `findings` array"), "{}", r.stderr);
    let r = run(&t, &srv, &["verify", "missing.json"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("missing.json: cannot be read"),
        "{}",
        r.stderr
    );
    assert!(srv.requests().is_empty());
    let _ = Arc::new(Mutex::new(()));
}

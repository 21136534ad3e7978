//! `keytrail revoke` for the token providers, against loopback HTTP servers
//! started by each test: the exact request each provider gets (method,
//! path, headers, body), nothing sent in a dry run or to another host,
//! retries and failures (500, 429, garbage, a slow server, a redirect),
//! refusals (a token of another provider, plain http, a token given no safe
//! way), runbooks, and the audit log.

use crate::{CliTest, Run, fake};
use serde_json::Value;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A request as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A scripted reply.
#[derive(Debug, Clone)]
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
    delay: Duration,
}

fn reply(status: u16, body: &str) -> Reply {
    Reply {
        status,
        headers: vec![],
        body: body.to_string(),
        delay: Duration::ZERO,
    }
}

/// A loopback HTTP server that records every request and answers from a
/// script (then with `fallback`).
struct Recorder {
    addr: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    script: Arc<Mutex<VecDeque<Reply>>>,
    stop: Arc<AtomicBool>,
}

impl Recorder {
    fn start(script: Vec<Reply>) -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let stop = Arc::new(AtomicBool::new(false));
        let (s2, sc2, st2) = (seen.clone(), script.clone(), stop.clone());
        std::thread::spawn(move || {
            while !st2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (s3, sc3) = (s2.clone(), sc2.clone());
                        std::thread::spawn(move || {
                            let _ = serve(stream, &s3, &sc3);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Recorder {
            addr,
            seen,
            script,
            stop,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = &self.script;
    }
}

fn serve(
    stream: TcpStream,
    seen: &Mutex<Vec<Seen>>,
    script: &Mutex<VecDeque<Reply>>,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let mut headers = Vec::new();
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        reader.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().unwrap_or(0);
            }
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let mut body = vec![0; len];
    reader.read_exact(&mut body)?;
    seen.lock().unwrap().push(Seen {
        method,
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let r = script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or_else(|| reply(404, "no more replies"));
    std::thread::sleep(r.delay);
    let mut out = stream;
    let mut head = format!(
        "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        r.status,
        r.body.len()
    );
    for (k, v) in &r.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())?;
    out.write_all(r.body.as_bytes())?;
    out.flush()
}

fn revoke(t: &CliTest, args: &[&str], token: &str) -> Run {
    let mut all = vec!["revoke"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--token-stdin", "--audit-log", "audit.jsonl"]);
    t.run_stdin(&all, &format!("{token}\n"))
}

fn audit(t: &CliTest) -> Vec<Value> {
    t.read("audit.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).expect("audit line is JSON"))
        .collect()
}

fn alnum(n: usize) -> String {
    fake::random(
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
        n,
    )
}

#[test]
fn github_dry_run_sends_nothing_and_logs_the_plan() {
    let t = CliTest::new();
    let server = Recorder::start(vec![reply(202, "")]);
    let token = fake::github_pat();
    let r = revoke(&t, &["github", "--base-url", &server.url()], &token);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        server.seen().is_empty(),
        "a dry run sent {:?}",
        server.seen()
    );
    assert!(
        r.stdout.contains("dry run: would send POST"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("/credentials/revoke"));
    assert!(!r.all().contains(&token), "token printed");
    let log = audit(&t);
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["provider"], "github");
    assert_eq!(log[0]["mode"], "dry-run");
    assert_eq!(log[0]["result"], "planned");
    assert!(
        !t.read("audit.jsonl").contains(&token),
        "token in the audit log"
    );
}

#[test]
fn github_revocation_request_is_the_documented_one() {
    let t = CliTest::new();
    let server = Recorder::start(vec![reply(202, "")]);
    let token = fake::github_pat();
    let r = revoke(
        &t,
        &[
            "github",
            "--base-url",
            &server.url(),
            "--yes",
            "--format",
            "json",
        ],
        &token,
    );
    assert_eq!(r.code, 0, "{}", r.all());
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    let s = &seen[0];
    assert_eq!(
        (s.method.as_str(), s.path.as_str()),
        ("POST", "/credentials/revoke")
    );
    let body: Value = serde_json::from_str(&s.body).unwrap();
    assert_eq!(body, serde_json::json!({ "credentials": [token] }));
    assert_eq!(s.header("accept"), Some("application/vnd.github+json"));
    assert_eq!(s.header("x-github-api-version"), Some("2022-11-28"));
    // Unauthenticated: GitHub answers 403 to authenticated calls.
    assert_eq!(s.header("authorization"), None);
    let out: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(out["result"], "revoked");
    assert_eq!(out["http_status"], 202);
    assert!(!r.all().contains(&token));
    let log = audit(&t);
    assert_eq!(log[0]["result"], "succeeded");
    assert_eq!(log[0]["mode"], "act");
}

/// One provider's expected request: method, path, the header carrying the
/// token and its exact value.
struct Case {
    provider: &'static str,
    token: String,
    method: &'static str,
    path: &'static str,
    header: &'static str,
    value: String,
    status: u16,
    body: &'static str,
}

#[test]
fn every_api_provider_gets_its_own_request() {
    let glpat = format!("glpat-{}", alnum(20));
    let xoxb = format!("xoxb-1234567890-1234567890-{}", alnum(24));
    let hvs = format!("hvs.{}", alnum(90));
    let okta = format!("00{}", alnum(40));
    let vercel = format!("vcp_{}", alnum(56));
    let bk = format!("bkua_{}", fake::random(b"0123456789abcdef", 40));
    let dbx = format!("sl.{}", alnum(140));
    let ghs = format!("ghs_{}", alnum(36));
    let cases = vec![
        Case {
            provider: "gitlab",
            token: glpat.clone(),
            method: "DELETE",
            path: "/api/v4/personal_access_tokens/self",
            header: "private-token",
            value: glpat,
            status: 204,
            body: "",
        },
        Case {
            provider: "slack",
            token: xoxb.clone(),
            method: "POST",
            path: "/api/auth.revoke",
            header: "authorization",
            value: format!("Bearer {xoxb}"),
            status: 200,
            body: r#"{"ok":true,"revoked":true}"#,
        },
        Case {
            provider: "vault",
            token: hvs.clone(),
            method: "POST",
            path: "/v1/auth/token/revoke-self",
            header: "x-vault-token",
            value: hvs,
            status: 204,
            body: "",
        },
        Case {
            provider: "okta",
            token: okta.clone(),
            method: "DELETE",
            path: "/api/v1/api-tokens/current",
            header: "authorization",
            value: format!("SSWS {okta}"),
            status: 204,
            body: "",
        },
        Case {
            provider: "vercel",
            token: vercel.clone(),
            method: "DELETE",
            path: "/v3/user/tokens/current",
            header: "authorization",
            value: format!("Bearer {vercel}"),
            status: 200,
            body: r#"{"tokenId":"x"}"#,
        },
        Case {
            provider: "buildkite",
            token: bk.clone(),
            method: "DELETE",
            path: "/v2/access-token",
            header: "authorization",
            value: format!("Bearer {bk}"),
            status: 204,
            body: "",
        },
        Case {
            provider: "dropbox",
            token: dbx.clone(),
            method: "POST",
            path: "/2/auth/token/revoke",
            header: "authorization",
            value: format!("Bearer {dbx}"),
            status: 200,
            body: "null",
        },
        Case {
            provider: "github",
            token: ghs.clone(),
            method: "DELETE",
            path: "/installation/token",
            header: "authorization",
            value: format!("Bearer {ghs}"),
            status: 204,
            body: "",
        },
    ];
    for c in cases {
        let t = CliTest::new();
        let server = Recorder::start(vec![reply(c.status, c.body)]);
        let r = revoke(
            &t,
            &[
                c.provider,
                "--base-url",
                &server.url(),
                "--yes",
                "--format",
                "json",
            ],
            &c.token,
        );
        assert_eq!(r.code, 0, "{}: {}", c.provider, r.all());
        let seen = server.seen();
        assert_eq!(seen.len(), 1, "{}: {seen:?}", c.provider);
        assert_eq!(
            (seen[0].method.as_str(), seen[0].path.as_str()),
            (c.method, c.path),
            "{}",
            c.provider
        );
        assert_eq!(
            seen[0].header(c.header),
            Some(c.value.as_str()),
            "{}",
            c.provider
        );
        let out: Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(out["result"], "revoked", "{}", c.provider);
        assert!(!r.all().contains(&c.token), "{}: token printed", c.provider);
        assert!(
            !t.read("audit.jsonl").contains(&c.token),
            "{}: token in the audit log",
            c.provider
        );
    }
}

#[test]
fn npm_deletes_the_listed_key_of_the_token_else_the_token_itself() {
    use sha2::Digest;
    let token = format!("npm_{}", alnum(36));
    let key: String = sha2::Sha512::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let listing = serde_json::json!({
        "objects": [
            { "key": "0".repeat(128), "token": "npm_ab…" },
            { "key": key, "token": format!("{}…", &token[..6]) }
        ],
        "urls": {}
    })
    .to_string();
    let t = CliTest::new();
    let server = Recorder::start(vec![reply(200, &listing), reply(204, "")]);
    let r = revoke(&t, &["npm", "--base-url", &server.url(), "--yes"], &token);
    assert_eq!(r.code, 0, "{}", r.all());
    let seen = server.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str()),
        ("GET", "/-/npm/v1/tokens")
    );
    assert_eq!(seen[1].method, "DELETE");
    assert_eq!(seen[1].path, format!("/-/npm/v1/tokens/token/{key}"));
    assert_eq!(
        seen[1].header("authorization"),
        Some(format!("Bearer {token}").as_str())
    );

    // Not listed (granular tokens may not be): deleted by value, as `npm token revoke` does.
    let t = CliTest::new();
    let server = Recorder::start(vec![
        reply(200, r#"{"objects":[],"urls":{}}"#),
        reply(204, ""),
    ]);
    let r = revoke(&t, &["npm", "--base-url", &server.url(), "--yes"], &token);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(
        server.seen()[1].path,
        format!("/-/npm/v1/tokens/token/{token}")
    );
    assert!(!r.all().contains(&token), "token printed: {}", r.all());
}

#[test]
fn slack_answers_are_read_not_just_the_status() {
    let token = format!(
        "xoxp-1234567890-1234567890-1234567890-{}",
        fake::random(b"0123456789abcdef", 32)
    );
    for (body, code, result) in [
        (
            r#"{"ok":false,"error":"invalid_auth"}"#,
            0,
            "already-invalid",
        ),
        (r#"{"ok":false,"error":"ratelimited"}"#, 2, "failed"),
        ("<html>gateway</html>", 2, "failed"),
        (r#"{"ok":true}"#, 2, "failed"),
    ] {
        let t = CliTest::new();
        let server = Recorder::start(vec![reply(200, body)]);
        let r = revoke(
            &t,
            &[
                "slack",
                "--base-url",
                &server.url(),
                "--yes",
                "--format",
                "json",
            ],
            &token,
        );
        assert_eq!(r.code, code, "{body}: {}", r.all());
        let out: Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(out["result"], result, "{body}");
        assert_eq!(
            audit(&t)[0]["result"],
            if code == 0 { "skipped" } else { "failed" }
        );
    }
}

#[test]
fn server_errors_and_rate_limits_are_retried_then_reported() {
    let token = fake::github_pat();
    // 500 three times: three attempts, then a failure.
    let t = CliTest::new();
    let server = Recorder::start(vec![
        reply(500, "boom"),
        reply(500, "boom"),
        reply(500, "boom"),
    ]);
    let r = revoke(
        &t,
        &["github", "--base-url", &server.url(), "--yes"],
        &token,
    );
    assert_eq!(r.code, 2, "{}", r.all());
    assert_eq!(server.seen().len(), 3);
    assert!(r.stdout.contains("HTTP 500"), "{}", r.stdout);
    assert_eq!(audit(&t)[0]["result"], "failed");
    // 429 with Retry-After, then accepted.
    let t = CliTest::new();
    let mut limited = reply(429, "slow down");
    limited.headers.push(("Retry-After", "1".into()));
    let server = Recorder::start(vec![limited, reply(202, "")]);
    let r = revoke(
        &t,
        &["github", "--base-url", &server.url(), "--yes"],
        &token,
    );
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(server.seen().len(), 2);
    // 422 (GitHub: validation failed or spammed) is not retried.
    let t = CliTest::new();
    let server = Recorder::start(vec![reply(422, r#"{"message":"Validation Failed"}"#)]);
    let r = revoke(
        &t,
        &["github", "--base-url", &server.url(), "--yes"],
        &token,
    );
    assert_eq!(r.code, 2, "{}", r.all());
    assert_eq!(server.seen().len(), 1);
    assert!(r.stdout.contains("Validation Failed"));
}

#[test]
fn a_slow_provider_is_given_up_on_within_the_timeout() {
    let t = CliTest::new();
    let mut slow = reply(202, "");
    slow.delay = Duration::from_secs(20);
    let server = Recorder::start(vec![slow.clone(), slow.clone(), slow]);
    let start = Instant::now();
    let r = revoke(
        &t,
        &[
            "github",
            "--base-url",
            &server.url(),
            "--yes",
            "--timeout",
            "2s",
        ],
        &fake::github_pat(),
    );
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "took {:?}",
        start.elapsed()
    );
    assert_eq!(audit(&t)[0]["result"], "failed");
}

#[test]
fn redirects_are_not_followed_to_another_host() {
    let t = CliTest::new();
    let other = Recorder::start(vec![reply(202, "")]);
    let mut moved = reply(307, "");
    moved
        .headers
        .push(("Location", format!("{}/credentials/revoke", other.url())));
    let server = Recorder::start(vec![moved]);
    let r = revoke(
        &t,
        &["github", "--base-url", &server.url(), "--yes"],
        &fake::github_pat(),
    );
    assert_eq!(r.code, 2, "{}", r.all());
    assert_eq!(server.seen().len(), 1);
    assert!(
        other.seen().is_empty(),
        "the token followed a redirect to another host"
    );
    assert!(r.stdout.contains("redirect not followed"), "{}", r.stdout);
}

#[test]
fn a_token_of_another_provider_or_an_unsafe_address_is_never_sent() {
    let server = Recorder::start(vec![reply(202, "")]);
    let t = CliTest::new();
    let glpat = format!("glpat-{}", alnum(20));
    let r = revoke(
        &t,
        &["github", "--base-url", &server.url(), "--yes"],
        &glpat,
    );
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("does not look like a GitHub token"),
        "{}",
        r.stderr
    );
    let r = revoke(
        &t,
        &["github", "--base-url", "http://github.example.com", "--yes"],
        &fake::github_pat(),
    );
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("plain http"), "{}", r.stderr);
    let r = revoke(&t, &["vault", "--yes"], &format!("hvs.{}", alnum(90)));
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("VAULT_ADDR"), "{}", r.stderr);
    assert!(server.seen().is_empty());
    // Refusals are audited too, without the token.
    let log = audit(&t);
    assert_eq!(log.len(), 3);
    assert!(log.iter().all(|l| l["result"] == "failed"));
    assert!(!t.read("audit.jsonl").contains(&glpat));
}

#[test]
fn the_token_comes_from_stdin_or_a_named_variable_only() {
    let t = CliTest::new();
    let r = t.run(&["revoke", "github", "--audit-log", "audit.jsonl"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("--token-stdin or --token-env"),
        "{}",
        r.stderr
    );
    // There is no flag taking the token itself.
    let r = t.run(&["revoke", "github", "--token", &fake::github_pat()]);
    assert_eq!(r.code, 2);
    let token = fake::github_pat();
    let r = t
        .command(&[
            "revoke",
            "github",
            "--token-env",
            "LEAKED",
            "--audit-log",
            "audit.jsonl",
        ])
        .env("LEAKED", &token)
        .output()
        .unwrap();
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let r = t.run(&[
        "revoke",
        "github",
        "--token-env",
        "NOT_SET_ANYWHERE",
        "--audit-log",
        "audit.jsonl",
    ]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("NOT_SET_ANYWHERE"));
    let r = revoke(&t, &["github"], "two tokens");
    assert_eq!(r.code, 2);
}

#[test]
fn providers_without_an_api_print_their_runbook() {
    let t = CliTest::new();
    let r = t.run(&["revoke", "stripe"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stdout.contains("https://dashboard.stripe.com/apikeys"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("afterwards, check:"));
    // A rule id finds its provider's runbook.
    let r = t.run(&["revoke", "openai.api_key.project"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("platform.openai.com/api-keys"));
    let r = t.run(&["revoke", "no-such-thing"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--list"));
    let r = t.run(&["revoke", "--list"]);
    assert_eq!(r.code, 0);
    for p in [
        "aws-key",
        "github",
        "gitlab",
        "slack",
        "npm",
        "stripe",
        "huggingface",
    ] {
        assert!(r.stdout.contains(p), "{p} missing from --list");
    }
}

#[test]
fn the_audit_log_defaults_to_the_state_folder() {
    let t = CliTest::new();
    let r = t
        .command(&["revoke", "github", "--token-env", "LEAKED"])
        .env("LEAKED", fake::github_pat())
        .env("XDG_STATE_HOME", t.root().join("state"))
        .env_remove("KEYTRAIL_AUDIT_LOG")
        .output()
        .unwrap();
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let log = t.read("state/keytrail/audit.jsonl");
    let line: Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    assert_eq!(line["command"], "revoke");
    assert!(line["operator"]["os_user"].is_string());
    // An audit log that cannot be written stops the run before anything is sent.
    let server = Recorder::start(vec![reply(202, "")]);
    t.write("blocker", "a file, not a folder");
    let r = t.run_stdin(
        &[
            "revoke",
            "github",
            "--base-url",
            &server.url(),
            "--yes",
            "--token-stdin",
            "--audit-log",
            "blocker/audit.jsonl",
        ],
        &fake::github_pat(),
    );
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("audit log"), "{}", r.stderr);
    assert!(server.seen().is_empty());
}

//! `keytrail token create` and `keytrail serve`: a token printed once and
//! kept hashed, the API answering with it over loopback, bad arguments
//! named (exit 2), and SIGTERM stopping the server cleanly (exit 0).

use crate::{CliTest, fake, with_test_rules};
use std::io::{BufRead, BufReader};
use std::process::Stdio;

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(30)))
        .build()
        .new_agent()
}

#[test]
fn a_token_is_printed_once_and_the_server_answers_with_it() {
    let t: CliTest = with_test_rules();
    let secret = fake::test_token();
    t.write("tree/a.env", &format!("TOKEN={secret}\n"));
    let r = t.run(&["scan", "--rules", "rules", "--db", "k.db", "tree"]);
    assert_eq!(r.code, 1, "{r:?}");

    let r = t.run(&[
        "token", "create", "--db", "k.db", "--role", "viewer", "--name", "dash",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let token = r.stdout.trim().to_string();
    assert!(token.starts_with("kttok_") && token.len() == 70, "{token}");
    assert_eq!(r.stdout.lines().count(), 1, "the token alone on stdout");
    assert!(
        r.stderr.contains("viewer") && r.stderr.contains("dash"),
        "{}",
        r.stderr
    );
    let bytes: Vec<u8> = std::fs::read_dir(t.root())
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            p.file_name()?
                .to_str()?
                .starts_with("k.db")
                .then(|| std::fs::read(p).unwrap())
        })
        .flatten()
        .collect();
    assert!(
        !bytes.windows(64).any(|w| w == &token.as_bytes()[6..]),
        "the token is stored in clear"
    );

    let mut child = t
        .command(&["serve", "--db", "k.db", "--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start keytrail serve");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let base = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in: {line}"))
        .to_string();
    assert!(line.contains("k.db"), "{line}");
    let a = agent();
    let mut resp = a
        .get(format!("{base}/findings"))
        .header("Authorization", format!("Bearer {token}"))
        .call()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let body = resp.body_mut().read_to_string().unwrap();
    assert!(!body.contains(&secret), "the API served the secret");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["findings"][0]["kind"], "secret");
    assert_eq!(v["findings"][0]["targets"].as_array().unwrap().len(), 1);
    let resp = a.get(format!("{base}/findings")).call().unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    // A viewer cannot triage.
    let fp = v["findings"][0]["fingerprint"].as_str().unwrap();
    let resp = a
        .patch(format!("{base}/findings/{fp}"))
        .header("Authorization", format!("Bearer {token}"))
        .send(r#"{"status": "revoked"}"#)
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);

    // SIGTERM: a clean stop.
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[test]
fn bad_arguments_are_named_with_exit_2() {
    let t = CliTest::new();
    let r = t.run(&[
        "token", "create", "--db", "k.db", "--role", "root", "--name", "x",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("root") && r.stderr.contains("viewer"),
        "{}",
        r.stderr
    );
    let r = t.run(&[
        "token", "create", "--db", "k.db", "--role", "admin", "--name", " ",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("name"), "{}", r.stderr);
    let r = t.run(&["serve", "--db", "missing.db", "--listen", "127.0.0.1:0"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("missing.db"), "{}", r.stderr);
    let r = t.run(&["serve", "--db", "k.db", "--listen", "localhost"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("--listen"), "{}", r.stderr);
    // An address in use is named.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let r = t.run(&[
        "token", "create", "--db", "k.db", "--role", "admin", "--name", "ops",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = t.run(&["serve", "--db", "k.db", "--listen", &addr]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains(&addr), "{}", r.stderr);
}

#[test]
fn tokens_are_listed_and_revoked_never_shown() {
    let t = CliTest::new();
    let mk = |name: &str, role: &str| {
        let r = t.run(&[
            "token", "create", "--db", "k.db", "--role", role, "--name", name,
        ]);
        assert_eq!(r.code, 0, "{r:?}");
        r.stdout.trim().to_string()
    };
    let a = mk("ci-bot", "triager");
    let b = mk("grafana", "viewer");
    let r = t.run(&["token", "list", "--db", "k.db"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        !r.stdout.contains(&a) && !r.stdout.contains(&b),
        "a token listed"
    );
    let listed: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["name"], "ci-bot");
    assert_eq!(listed[0]["role"], "triager");
    assert_eq!(listed[0]["revoked_at"], serde_json::Value::Null);
    let id = listed[0]["id"].as_i64().unwrap().to_string();
    let r = t.run(&["token", "revoke", "--db", "k.db", &id, "--actor", "alice"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("revoked"), "{}", r.stderr);
    let r = t.run(&["token", "list", "--db", "k.db", "--format", "human"]);
    assert_eq!(r.code, 0, "{r:?}");
    let line = r.stdout.lines().find(|l| l.contains("ci-bot")).unwrap();
    assert!(line.contains("by alice"), "{}", r.stdout);
    let line = r.stdout.lines().find(|l| l.contains("grafana")).unwrap();
    assert!(line.trim_end().ends_with('-'), "{}", r.stdout);
    // Bad input: an unknown id, not a number, a missing store: exit 2, named.
    let r = t.run(&["token", "revoke", "--db", "k.db", "999", "--actor", "alice"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("no API token has the id 999"),
        "{}",
        r.stderr
    );
    let r = t.run(&["token", "revoke", "--db", "k.db", "abc", "--actor", "alice"]);
    assert_eq!(r.code, 2, "{r:?}");
    let r = t.run(&["token", "list", "--db", "missing.db"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("missing.db"), "{}", r.stderr);
}

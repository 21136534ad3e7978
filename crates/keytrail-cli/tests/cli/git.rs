//! `keytrail scan` over git history: a secret deleted from HEAD, a secret in
//! a commit message, `--exclude` on history paths, and `--git-url` over
//! smart HTTP served on loopback by `git http-backend`.

use crate::{CliTest, fake};
use std::path::Path;
use std::process::Command;

#[cfg(feature = "git-https")]
#[path = "../../../keytrail-input/tests/support/git_http.rs"]
mod git_http;

/// Run git in `dir` with a fixed identity and no user config; returns stdout.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Dev")
        .env("GIT_AUTHOR_EMAIL", "dev@example.com")
        .env("GIT_AUTHOR_DATE", "@1700000000 +0000")
        .env("GIT_COMMITTER_NAME", "Dev")
        .env("GIT_COMMITTER_EMAIL", "dev@example.com")
        .env("GIT_COMMITTER_DATE", "@1700000000 +0000")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `git add -A && git commit -m MSG`; returns the commit id.
fn commit(dir: &Path, msg: &str) -> String {
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "--allow-empty", "-m", msg]);
    git(dir, &["rev-parse", "HEAD"]).trim().to_string()
}

/// JSONL records of a run.
fn records(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSONL record"))
        .collect()
}

/// A repository with a secret added then deleted, a secret in a commit
/// message and a secret under `vendor/`. Returns the secrets and commits.
struct History {
    deleted: String,
    in_message: String,
    vendored: String,
    added: String,
    messaged: String,
}

fn history(t: &CliTest) -> History {
    let repo = t.root().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["-c", "init.defaultBranch=main", "init", "-q"]);
    let h = History {
        deleted: fake::github_pat(),
        in_message: fake::github_pat(),
        vendored: fake::github_pat(),
        added: String::new(),
        messaged: String::new(),
    };
    t.write("repo/README.md", "demo\n");
    t.write(
        "repo/config/app.env",
        &format!("GITHUB_TOKEN={}\n", h.deleted),
    );
    t.write(
        "repo/vendor/lib/ci.env",
        &format!("GITHUB_TOKEN={}\n", h.vendored),
    );
    let added = commit(&repo, "add config");
    std::fs::remove_file(repo.join("config/app.env")).unwrap();
    let messaged = commit(
        &repo,
        &format!("remove config\n\nthe old token was {}\n", h.in_message),
    );
    History {
        added,
        messaged,
        ..h
    }
}

#[test]
fn history_scan_finds_deleted_secrets_and_commit_messages_and_honours_exclude() {
    let t = CliTest::new();
    let h = history(&t);
    let r = t.run(&["scan", "repo", "--format", "jsonl", "--exclude", "vendor"]);
    assert_eq!(r.code, 1, "findings exit 1: {}", r.stderr);
    let recs = records(&r.stdout);

    let deleted: Vec<_> = recs
        .iter()
        .filter(|v| v["path"] == "config/app.env")
        .collect();
    assert_eq!(deleted.len(), 1, "{}", r.stdout);
    assert_eq!(deleted[0]["rule_id"], "github.pat.classic");
    assert_eq!(deleted[0]["source"], "git");
    assert_eq!(deleted[0]["commit"], h.added.as_str());
    assert_eq!(deleted[0]["in_head"], false);

    let message: Vec<_> = recs
        .iter()
        .filter(|v| v["path"] == "<commit message>")
        .collect();
    assert_eq!(message.len(), 1, "{}", r.stdout);
    assert_eq!(message[0]["commit"], h.messaged.as_str());
    assert_eq!(message[0]["blob"], h.messaged.as_str());
    assert_eq!(message[0]["author"], "Dev <dev@example.com>");
    assert_eq!(message[0]["summary"], "remove config");
    assert_eq!(message[0]["line"], 3);

    assert!(
        recs.iter()
            .all(|v| !v["path"].as_str().unwrap_or("").starts_with("vendor/")),
        "excluded history paths are not scanned: {}",
        r.stdout
    );
    for s in [&h.deleted, &h.in_message, &h.vendored] {
        assert!(!r.all().contains(s.as_str()), "secrets are redacted");
    }

    // Without --exclude the vendored secret is found, in history and HEAD.
    let all = t.run(&["scan", "repo", "--format", "jsonl"]);
    let recs = records(&all.stdout);
    assert!(
        recs.iter()
            .any(|v| v["path"] == "vendor/lib/ci.env" && v["in_head"] == true),
        "{}",
        all.stdout
    );
}

/// SARIF from history: the run names the repository and HEAD's commit,
/// each history location carries its commit, a secret deleted from the
/// code says it is only in history, and `primaryLocationLineHash` is
/// keytrail's own (GitHub would hash today's line at that place).
#[test]
fn sarif_from_history_carries_commits() {
    let t = CliTest::new();
    let h = history(&t);
    let repo = t.root().join("repo");
    git(
        &repo,
        &[
            "remote",
            "add",
            "origin",
            "https://ci:tok3n@git.example/org/app.git",
        ],
    );
    let head = git(&repo, &["rev-parse", "HEAD"]).trim().to_string();
    let r = t.run(&["scan", "repo", "--format", "sarif", "--exclude", "vendor"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let errors: Vec<String> = crate::formats::sarif_validator()
        .iter_errors(&doc)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let run = &doc["runs"][0];
    assert_eq!(run["automationDetails"]["id"], "keytrail-scan/");
    let vcp = &run["versionControlProvenance"][0];
    assert_eq!(vcp["repositoryUri"], "https://git.example/org/app.git");
    assert_eq!(vcp["revisionId"], head.as_str());
    assert_eq!(vcp["branch"], "main");
    assert!(!r.stdout.contains("tok3n"), "no credentials in the URI");

    let results = run["results"].as_array().unwrap();
    let deleted = results
        .iter()
        .find(|x| {
            x["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "config/app.env"
        })
        .expect("the deleted secret");
    let msg = deleted["message"]["text"].as_str().unwrap();
    let want = format!(
        "Only in git history, not in HEAD: introduced by commit {} (`git show {}:config/app.env`)",
        h.added, h.added
    );
    assert!(msg.contains(&want), "{msg}");
    assert_eq!(deleted["properties"]["history_only"], true);
    let loc = &deleted["locations"][0];
    assert_eq!(loc["properties"]["commit"], h.added.as_str());
    assert_eq!(loc["properties"]["in_head"], false);
    assert!(loc["message"]["text"].as_str().unwrap().contains(&h.added));
    let hash = deleted["partialFingerprints"]["primaryLocationLineHash"]
        .as_str()
        .unwrap();
    assert!(hash.len() == 18 && hash.ends_with(":1"), "{hash}");

    let message = results
        .iter()
        .find(|x| x["properties"]["commit"] == h.messaged.as_str())
        .expect("the secret in a commit message");
    assert!(
        message["message"]["text"]
            .as_str()
            .unwrap()
            .contains(&format!("in the message of commit {}", h.messaged)),
        "{message}"
    );

    // `--sarif-category` names another category; empty leaves it out.
    let r = t.run(&[
        "scan",
        "repo",
        "--format",
        "sarif",
        "--sarif-category",
        "history",
    ]);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(doc["runs"][0]["automationDetails"]["id"], "history/");
    let r = t.run(&["scan", "repo", "--format", "sarif", "--sarif-category", ""]);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(doc["runs"][0].get("automationDetails").is_none());
}

#[cfg(feature = "git-https")]
#[test]
fn git_url_over_http_is_cloned_and_scanned() {
    let t = CliTest::new();
    let h = history(&t);
    let served = t.root().join("served");
    std::fs::create_dir_all(&served).unwrap();
    git(
        t.root(),
        &["clone", "-q", "--bare", "repo", "served/demo.git"],
    );
    let server = git_http::GitHttpServer::start(&served);
    let url = format!("{}/demo.git", server.base);
    let r = t.run(&["scan", "--git-url", &url, "--format", "jsonl"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let recs = records(&r.stdout);
    assert!(
        recs.iter()
            .any(|v| v["path"] == "config/app.env" && v["commit"] == h.added.as_str()),
        "{}",
        r.stdout
    );
    assert!(recs.iter().any(|v| v["path"] == "<commit message>"));
    assert!(
        recs.iter().all(|v| v["repository"] == url.as_str()),
        "findings name the URL, not the temporary clone: {}",
        r.stdout
    );
    assert!(
        server
            .requests
            .lock()
            .unwrap()
            .iter()
            .any(|r| r.starts_with("POST /demo.git/git-upload-pack")),
        "cloned over smart HTTP"
    );
}

#[cfg(feature = "git-https")]
#[test]
fn unreachable_git_url_is_a_clear_error() {
    let t = CliTest::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/gone.git");
    let r = t.run(&["scan", "--git-url", &url, "--fail-on-error"]);
    assert_eq!(r.code, 2, "a failed clone is an input error: {}", r.all());
    assert!(
        r.stderr.contains(&format!("cannot clone {url}")),
        "{}",
        r.stderr
    );
}

//! `scan --github-org` and `--gitlab-group` against loopback mock APIs
//! (the test-kit HTTP server on 127.0.0.1) whose repositories are bare git
//! repositories on disk (`file://` clone URLs): listing follows GitHub's
//! `Link` and GitLab's `X-Next-Page` paging, the token from the environment
//! is sent, every repository's full history, its wiki and its issue and
//! pull/merge request discussions are scanned with their web URLs as
//! locations, and the gists of the organisation's members; an unknown
//! organisation, a cut listing and a rate limit that does not reset soon
//! exit 2 naming the target. Never the internet.

use std::path::Path;
use std::process::Stdio;

use keytrail_testkit::history::git;
use keytrail_testkit::http::{Response, Server};
use serde_json::{Value, json};

use crate::{CliTest, Run, fake};

/// A bare repository at `dir/NAME.git` whose history once held `file`
/// with `text` (added, then deleted in a later commit).
pub(crate) fn repo(dir: &Path, name: &str, file: &str, text: &str) -> String {
    let work = dir.join(format!("work-{}", name.replace('/', "-")));
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q", "-b", "main"]).unwrap();
    git(&work, &["config", "user.email", "dev@example.com"]).unwrap();
    git(&work, &["config", "user.name", "Dev"]).unwrap();
    std::fs::write(work.join("README.md"), "# app\n").unwrap();
    std::fs::write(work.join(file), text).unwrap();
    git(&work, &["add", "-A"]).unwrap();
    git(&work, &["commit", "-q", "-m", "first"]).unwrap();
    git(&work, &["rm", "-q", file]).unwrap();
    git(&work, &["commit", "-q", "-m", "remove it"]).unwrap();
    let bare = dir.join(format!("{name}.git"));
    std::fs::create_dir_all(bare.parent().unwrap()).unwrap();
    git(
        dir,
        &[
            "clone",
            "-q",
            "--bare",
            work.to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
    )
    .unwrap();
    format!("file://{}", bare.display())
}

pub(crate) fn run_with(t: &CliTest, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut c = t.command(args);
    for v in [
        "GITHUB_TOKEN",
        "GITLAB_TOKEN",
        "GITHUB_API_URL",
        "GITLAB_API_URL",
    ] {
        c.env_remove(v);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.stdin(Stdio::null()).output().expect("run keytrail");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn locations(doc: &Value, secret: &str) -> Vec<Value> {
    let redacted = keytrail_types::redact(secret.as_bytes());
    doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["secret_redacted"] == redacted.as_str())
        .flat_map(|f| f["locations"].as_array().unwrap().clone())
        .collect()
}

#[test]
fn github_org_repositories_wikis_and_discussions() {
    let t = CliTest::new();
    let mut fs = fake::secrets();
    let (in_app, in_lib, in_wiki, in_issue, in_comment) = (
        fs.github_classic(),
        fs.github_classic(),
        fs.github_classic(),
        fs.slack_bot(),
        fs.github_classic(),
    );
    let app = repo(
        t.root(),
        "acme/app",
        ".env",
        &format!("GITHUB_TOKEN={in_app}\n"),
    );
    let lib = repo(
        t.root(),
        "acme/lib",
        "deploy.sh",
        &format!("export GH={in_lib}\n"),
    );
    repo(
        t.root(),
        "acme/app.wiki",
        "Home.md",
        &format!("token: {in_wiki}\n"),
    );
    let api = Server::start();
    let base = api.url();
    let page1 = "/orgs/acme/repos?per_page=100&type=all";
    let page2 = format!("{page1}&page=2");
    api.set(
        page1,
        Response::ok(
            json!([{"full_name": "acme/app", "clone_url": app, "has_wiki": true, "has_issues": true}])
                .to_string(),
        )
        .header("Link", &format!("<{base}{page2}>; rel=\"next\", <{base}{page2}>; rel=\"last\"")),
    );
    api.set(
        &page2,
        Response::ok(
            json!([{"full_name": "acme/lib", "clone_url": lib, "has_wiki": false, "has_issues": false}])
                .to_string(),
        ),
    );
    api.set(
        "/repos/acme/app/issues?state=all&per_page=100",
        Response::ok(
            json!([{"number": 3, "title": "bot broken", "body": format!("it used {in_issue}"),
                    "html_url": "https://github.example/acme/app/issues/3",
                    "user": {"login": "ada"}, "created_at": "2024-03-04T10:00:00Z"}])
            .to_string(),
        ),
    );
    api.set(
        "/repos/acme/app/issues/comments?per_page=100",
        Response::ok(
            json!([{"body": format!("try mine: {in_comment}"),
                    "html_url": "https://github.example/acme/app/issues/3#issuecomment-9",
                    "issue_url": format!("{base}/repos/acme/app/issues/3"),
                    "user": {"login": "bob"}, "created_at": "2024-03-04T11:00:00Z"}])
            .to_string(),
        ),
    );
    api.set(
        "/repos/acme/app/pulls/comments?per_page=100",
        Response::ok("[]"),
    );
    let in_gist = fs.github_classic();
    let gist = repo(
        t.root(),
        "gists/abc123",
        "notes.txt",
        &format!("mine: {in_gist}\n"),
    );
    api.set(
        "/orgs/acme/members?per_page=100",
        Response::ok(json!([{"login": "ada"}, {"login": "bob"}]).to_string()),
    );
    api.set(
        "/users/ada/gists?per_page=100",
        Response::ok(json!([{"id": "abc123", "git_pull_url": gist, "html_url": "https://gist.example/abc123"}]).to_string()),
    );
    api.set("/users/bob/gists?per_page=100", Response::ok("[]"));
    let r = run_with(
        &t,
        &[
            "scan",
            "--format",
            "json",
            "--github-org",
            "acme",
            "--github-api",
            &base,
        ],
        &[("GITHUB_TOKEN", "ghs_test-token-for-the-mock")],
    );
    assert_eq!(r.code, 1, "{r:?}");
    let doc: Value = serde_json::from_str(&r.stdout).unwrap();
    let l = &locations(&doc, &in_app)[0];
    assert_eq!(l["source"], "git");
    assert_eq!(l["repository"], app.as_str());
    assert_eq!(locations(&doc, &in_lib)[0]["repository"], lib.as_str());
    assert_eq!(locations(&doc, &in_gist)[0]["repository"], gist.as_str());
    let wiki = app.replace(".git", ".wiki.git");
    assert_eq!(locations(&doc, &in_wiki)[0]["repository"], wiki.as_str());
    let l = &locations(&doc, &in_issue)[0];
    assert_eq!(l["path"], "https://github.example/acme/app/issues/3");
    assert_eq!(l["export"], "github_issue");
    assert_eq!(l["item"], "issue #3");
    assert_eq!(l["author"], "ada");
    let l = &locations(&doc, &in_comment)[0];
    assert_eq!(
        l["path"],
        "https://github.example/acme/app/issues/3#issuecomment-9"
    );
    assert_eq!(l["item"], "comment on #3");
    assert_eq!(l["author"], "bob");
    assert_eq!(l["time"], "2024-03-04T11:00:00Z");
    // The token went to the API, and nowhere in the output.
    let heads = api.heads();
    assert!(
        heads.iter().all(|h| h
            .to_ascii_lowercase()
            .contains("authorization: bearer ghs_test-token-for-the-mock")),
        "{heads:#?}"
    );
    assert!(!r.all().contains("ghs_test-token-for-the-mock"));
    // Both pages were listed, lib's issues were not asked for (disabled).
    assert!(heads.iter().any(|h| h.contains("page=2")));
    assert!(!heads.iter().any(|h| h.contains("/repos/acme/lib/issues")));
}

#[test]
fn gitlab_group_projects_and_notes() {
    let t = CliTest::new();
    let mut fs = fake::secrets();
    let (in_repo, in_issue, in_note) = (fs.gitlab_pat(), fs.github_classic(), fs.slack_bot());
    let url = repo(
        t.root(),
        "platform/api",
        "ci.env",
        &format!("TOKEN={in_repo}\n"),
    );
    let api = Server::start();
    let base = api.url();
    let first = "/groups/acme%2Fplatform/projects?include_subgroups=true&per_page=100";
    api.set(
        first,
        Response::ok(
            json!([{"id": 7, "path_with_namespace": "acme/platform/api", "http_url_to_repo": url,
                    "wiki_enabled": false, "issues_enabled": true}])
            .to_string(),
        )
        .header("X-Next-Page", "2"),
    );
    api.set(
        &format!("{first}&page=2"),
        Response::ok("[]").header("X-Next-Page", ""),
    );
    api.set(
        "/projects/7/issues?scope=all&per_page=100",
        Response::ok(
            json!([{"iid": 1, "title": "ci", "description": format!("old token {in_issue}"),
                    "web_url": "https://gitlab.example/acme/platform/api/-/issues/1",
                    "author": {"username": "ada"}, "created_at": "2024-03-04T10:00:00Z"}])
            .to_string(),
        ),
    );
    api.set(
        "/projects/7/issues/1/notes?per_page=100",
        Response::ok(
            json!([
                {"id": 55, "body": format!("use {in_note}"), "system": false,
                 "author": {"username": "bob"}, "created_at": "2024-03-04T12:00:00Z"},
                {"id": 56, "body": "changed the description", "system": true,
                 "author": {"username": "bob"}, "created_at": "2024-03-04T12:01:00Z"}
            ])
            .to_string(),
        ),
    );
    let in_snippet = fs.github_classic();
    api.set(
        "/projects/7/snippets?per_page=100",
        Response::ok(
            json!([{"id": 12, "title": "deploy notes", "file_name": "deploy.sh",
                    "web_url": "https://gitlab.example/acme/platform/api/-/snippets/12",
                    "author": {"username": "carol"}, "created_at": "2024-03-06T08:00:00Z"}])
            .to_string(),
        ),
    );
    api.set(
        "/projects/7/snippets/12/raw",
        Response::ok(format!("#!/bin/sh\nexport GH={in_snippet}\n")),
    );
    api.set(
        "/projects/7/merge_requests?scope=all&per_page=100",
        Response::ok("[]"),
    );
    let r = run_with(
        &t,
        &[
            "scan",
            "--format",
            "json",
            "--gitlab-group",
            "acme/platform",
        ],
        &[
            ("GITLAB_TOKEN", "glpat-mock-token-value"),
            ("GITLAB_API_URL", &base),
        ],
    );
    assert_eq!(r.code, 1, "{r:?}");
    let doc: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(locations(&doc, &in_repo)[0]["repository"], url.as_str());
    let l = &locations(&doc, &in_issue)[0];
    assert_eq!(
        l["path"],
        "https://gitlab.example/acme/platform/api/-/issues/1"
    );
    assert_eq!(l["item"], "issue #1");
    let l = &locations(&doc, &in_snippet)[0];
    assert_eq!(
        l["path"],
        "https://gitlab.example/acme/platform/api/-/snippets/12"
    );
    assert_eq!(l["export"], "gitlab_snippet");
    assert_eq!(l["author"], "carol");
    assert_eq!(l["item"], "snippet $12 deploy notes");
    let l = &locations(&doc, &in_note)[0];
    assert_eq!(
        l["path"],
        "https://gitlab.example/acme/platform/api/-/issues/1#note_55"
    );
    assert_eq!(l["export"], "gitlab_note");
    assert_eq!(l["author"], "bob");
    assert!(
        api.heads().iter().all(|h| h
            .to_ascii_lowercase()
            .contains("private-token: glpat-mock-token-value")),
        "{:#?}",
        api.heads()
    );
    assert!(!r.all().contains("glpat-mock-token-value"));
}

#[test]
fn unknown_orgs_and_rate_limits_exit_2_naming_the_target() {
    let t = CliTest::new();
    let api = Server::start();
    let base = api.url();
    // `nobody`: 404 as an organisation and as a user.
    let r = run_with(
        &t,
        &["scan", "--github-org", "nobody", "--github-api", &base],
        &[],
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("github-org:nobody") && r.stderr.contains("HTTP 404"),
        "{}",
        r.stderr
    );
    // `busy`: rate limited for an hour.
    let reset = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600)
        .to_string();
    api.set(
        "/orgs/busy/repos?per_page=100&type=all",
        Response::status(403)
            .header("X-RateLimit-Remaining", "0")
            .header("X-RateLimit-Reset", &reset),
    );
    let r = run_with(
        &t,
        &["scan", "--github-org", "busy", "--github-api", &base],
        &[],
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("github-org:busy")
            && r.stderr.contains("rate limited")
            && r.stderr.contains("GITHUB_TOKEN"),
        "{}",
        r.stderr
    );
    // `later`: rate limited for a second, then served: waited out.
    let (mut fs, dir) = (fake::secrets(), t.root().join("later"));
    let in_later = fs.github_classic();
    let later = repo(&dir, "later/app", ".env", &format!("T={in_later}\n"));
    api.set_once(
        "/orgs/later/repos?per_page=100&type=all",
        Response::status(429).header("Retry-After", "1"),
        Response::ok(
            json!([{"full_name": "later/app", "clone_url": later, "has_issues": false}])
                .to_string(),
        ),
    );
    let started = std::time::Instant::now();
    let r = run_with(
        &t,
        &[
            "scan",
            "--format",
            "json",
            "--github-org",
            "later",
            "--github-api",
            &base,
        ],
        &[],
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(started.elapsed() >= std::time::Duration::from_secs(1));
    let doc: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(locations(&doc, &in_later)[0]["repository"], later.as_str());
    // A listing cut short: not JSON.
    api.set(
        "/orgs/cut/repos?per_page=100&type=all",
        Response::ok("[{\"full_name\": \"cut/a\", \"clone"),
    );
    let r = run_with(
        &t,
        &["scan", "--github-org", "cut", "--github-api", &base],
        &[],
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("github-org:cut") && r.stderr.contains("invalid JSON at line 1"),
        "{}",
        r.stderr
    );
    // An API that is not there.
    let r = run_with(
        &t,
        &[
            "scan",
            "--gitlab-group",
            "g",
            "--gitlab-api",
            "http://127.0.0.1:9/api/v4",
        ],
        &[],
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("gitlab-group:g"), "{}", r.stderr);
}

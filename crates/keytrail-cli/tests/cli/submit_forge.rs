//! `keytrail submit github-org` and `submit gitlab-group` against the
//! loopback stand-ins of the GitHub and GitLab REST APIs that the `scan
//! --github-org` tests use: the listing is paged, archived repositories and
//! forks are skipped unless asked for, wikis are jobs when asked for, the
//! token goes to the API and never into a job; the jobs are real (a
//! nats-server and PostgreSQL, a worker scans the `file://` repositories),
//! a second submission is deduplicated; an unknown organisation, a rate
//! limit that does not reset soon and a malformed listing exit 2 naming it.

use keytrail_testkit::http::{Response, Server};
use serde_json::{Value, json};

use crate::forge::{repo, run_with};
use crate::store::Pg;
use crate::worker::{Nats, Worker, jobs, lines};
use crate::{CliTest, Run, fake};

const TOKEN: &str = "ghs_submit-test-token-for-the-mock";

/// The jobs of a `--dry-run`: (target type, target value).
fn targets(r: &Run) -> Vec<(String, String)> {
    lines(r)
        .iter()
        .map(|j| {
            assert_eq!(j["kind"], "scan", "{j}");
            assert!(j["key"].as_str().unwrap().starts_with("scan-"), "{j}");
            (
                j["target"]["type"].as_str().unwrap().to_string(),
                j["target"]["value"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// An organisation `acme` of four repositories over two pages: `app`
/// (with a wiki), `old` (archived), `fork` (a fork), `lib`. Returns the
/// server and the four clone URLs.
fn acme(t: &CliTest) -> (Server, [String; 4]) {
    let mut fs = fake::secrets();
    let urls = ["app", "old", "fork", "lib"].map(|n| {
        repo(
            t.root(),
            &format!("acme/{n}"),
            ".env",
            &format!("GITHUB_TOKEN={}\n", fs.github_classic()),
        )
    });
    let api = Server::start();
    let base = api.url();
    let page1 = "/orgs/acme/repos?per_page=100&type=all";
    let page2 = format!("{page1}&page=2");
    api.set(
        page1,
        Response::ok(
            json!([
                {"full_name": "acme/app", "clone_url": urls[0], "has_wiki": true, "archived": false, "fork": false},
                {"full_name": "acme/old", "clone_url": urls[1], "has_wiki": false, "archived": true, "fork": false},
            ])
            .to_string(),
        )
        .header("Link", &format!("<{base}{page2}>; rel=\"next\"")),
    );
    api.set(
        &page2,
        Response::ok(
            json!([
                {"full_name": "acme/fork", "clone_url": urls[2], "has_wiki": false, "archived": false, "fork": true},
                {"full_name": "acme/lib", "clone_url": urls[3], "has_wiki": false, "archived": false, "fork": false},
            ])
            .to_string(),
        ),
    );
    (api, urls)
}

#[test]
fn github_org_dry_run_lists_pages_and_filters() {
    let t = CliTest::new();
    let (api, urls) = acme(&t);
    let base = api.url();
    let r = run_with(
        &t,
        &[
            "submit",
            "github-org",
            "acme",
            "--github-api",
            &base,
            "--dry-run",
        ],
        &[("GITHUB_TOKEN", TOKEN)],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let git = |u: &str| ("git_url".to_string(), u.to_string());
    assert_eq!(targets(&r), [git(&urls[0]), git(&urls[3])]);
    assert!(
        r.stderr.contains(
            "github-org:acme: 4 repositories listed, 2 to scan; skipped 1 archived (--include-archived) and 1 fork(s) (--include-forks)"
        ),
        "{}",
        r.stderr
    );
    // Both pages were asked for, with the token; the token is in no job.
    let heads = api.heads();
    assert!(heads.iter().any(|h| h.contains("page=2")), "{heads:#?}");
    assert!(heads.iter().all(|h| {
        h.to_ascii_lowercase()
            .contains(&format!("authorization: bearer {TOKEN}"))
    }));
    assert!(!r.all().contains(TOKEN));

    // Everything, wikis included, with keys made from --key.
    let r = run_with(
        &t,
        &[
            "submit",
            "github-org",
            "acme",
            "--include-archived",
            "--include-forks",
            "--wikis",
            "--key",
            "nightly-1",
            "--dry-run",
        ],
        &[("GITHUB_TOKEN", TOKEN), ("GITHUB_API_URL", &base)],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let wiki = urls[0].replace(".git", ".wiki.git");
    let jobs = lines(&r);
    let got: Vec<&str> = jobs
        .iter()
        .map(|j| j["target"]["value"].as_str().unwrap())
        .collect();
    assert_eq!(got, [&urls[0], &wiki, &urls[1], &urls[2], &urls[3]]);
    assert_eq!(jobs[0]["key"], format!("nightly-1:git:{}", urls[0]));
    assert!(
        r.stderr
            .contains("github-org:acme: 4 repositories listed, 4 to scan and 1 wiki(s)\n"),
        "{}",
        r.stderr
    );

    // HTTPS clone URLs: the jobs carry them as listed, without the token.
    let api2 = Server::start();
    api2.set(
        "/orgs/web/repos?per_page=100&type=all",
        Response::ok(
            json!([{"full_name": "web/site", "clone_url": "https://github.example/web/site.git"}])
                .to_string(),
        ),
    );
    let r = run_with(
        &t,
        &[
            "submit",
            "github-org",
            "web",
            "--github-api",
            &api2.url(),
            "--dry-run",
        ],
        &[("GITHUB_TOKEN", TOKEN)],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        targets(&r),
        [(
            "git_url".to_string(),
            "https://github.example/web/site.git".to_string()
        )]
    );
    assert!(!r.all().contains(TOKEN));
}

#[test]
fn gitlab_group_dry_run_pages_subgroups_archived_and_forks() {
    let t = CliTest::new();
    let api = Server::start();
    let base = api.url();
    let first = "/groups/acme%2Fplatform/projects?include_subgroups=true&per_page=100";
    api.set(
        first,
        Response::ok(
            json!([
                {"id": 1, "path_with_namespace": "acme/platform/api",
                 "http_url_to_repo": "https://gitlab.example/acme/platform/api.git", "wiki_enabled": true},
                {"id": 2, "path_with_namespace": "acme/platform/old",
                 "http_url_to_repo": "https://gitlab.example/acme/platform/old.git", "archived": true},
            ])
            .to_string(),
        )
        .header("X-Next-Page", "2"),
    );
    api.set(
        &format!("{first}&page=2"),
        Response::ok(
            json!([
                {"id": 3, "path_with_namespace": "acme/platform/sub/tool",
                 "http_url_to_repo": "https://gitlab.example/acme/platform/sub/tool.git",
                 "forked_from_project": {"id": 99}},
                {"id": 4, "path_with_namespace": "acme/platform/sub/svc",
                 "http_url_to_repo": "https://gitlab.example/acme/platform/sub/svc.git",
                 "forked_from_project": null},
            ])
            .to_string(),
        )
        .header("X-Next-Page", ""),
    );
    let r = run_with(
        &t,
        &[
            "submit",
            "gitlab-group",
            "acme/platform",
            "--gitlab-api",
            &base,
            "--wikis",
            "--dry-run",
        ],
        &[("GITLAB_TOKEN", "glpat-submit-mock-token")],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let got: Vec<String> = targets(&r).into_iter().map(|(_, v)| v).collect();
    assert_eq!(
        got,
        [
            "https://gitlab.example/acme/platform/api.git",
            "https://gitlab.example/acme/platform/api.wiki.git",
            "https://gitlab.example/acme/platform/sub/svc.git",
        ]
    );
    assert!(
        r.stderr
            .contains("gitlab-group:acme/platform: 4 repositories listed, 2 to scan and 1 wiki(s)"),
        "{}",
        r.stderr
    );
    assert!(
        api.heads().iter().all(|h| h
            .to_ascii_lowercase()
            .contains("private-token: glpat-submit-mock-token")),
        "{:#?}",
        api.heads()
    );
    assert!(!r.all().contains("glpat-submit-mock-token"));
}

#[test]
fn listing_failures_exit_2_naming_the_target() {
    let t = CliTest::new();
    let (api, urls) = acme(&t);
    let base = api.url();
    let run = |args: &[&str]| {
        let mut all = vec!["submit", "github-org", "--github-api", &base, "--dry-run"];
        all.extend_from_slice(args);
        run_with(&t, &all, &[])
    };
    // `nobody`: 404 as an organisation and as a user; acme's jobs are
    // still printed.
    let r = run(&["acme", "nobody"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("error: github-org:nobody: GET ")
            && r.stderr.contains("/users/nobody/repos")
            && r.stderr.contains("HTTP 404"),
        "{}",
        r.stderr
    );
    assert_eq!(targets(&r).len(), 2, "{}", r.stdout);
    assert!(r.stdout.contains(&urls[0]));
    // `busy`: rate limited for an hour (403 with X-RateLimit-Reset).
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
    let r = run(&["busy"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("github-org:busy")
            && r.stderr.contains("rate limited (HTTP 403)")
            && r.stderr.contains("GITHUB_TOKEN"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    // `slow`: 429 with a Retry-After of an hour.
    api.set(
        "/orgs/slow/repos?per_page=100&type=all",
        Response::status(429).header("Retry-After", "3600"),
    );
    let r = run(&["slow"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("github-org:slow") && r.stderr.contains("rate limited (HTTP 429)"),
        "{}",
        r.stderr
    );
    // `later`: 429 for a second, then served: waited out.
    api.set_once(
        "/orgs/later/repos?per_page=100&type=all",
        Response::status(429).header("Retry-After", "1"),
        Response::ok(json!([{"full_name": "later/a", "clone_url": urls[3]}]).to_string()),
    );
    let r = run(&["later"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(targets(&r).len(), 1);
    // `cut`: a listing that is not JSON.
    api.set(
        "/orgs/cut/repos?per_page=100&type=all",
        Response::ok("[{\"full_name\": \"cut/a\", \"clone"),
    );
    let r = run(&["cut"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("github-org:cut") && r.stderr.contains("invalid JSON at line 1"),
        "{}",
        r.stderr
    );
    // `empty`: an organisation without repositories.
    api.set(
        "/orgs/empty/repos?per_page=100&type=all",
        Response::ok("[]"),
    );
    let r = run(&["empty"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr
            .contains("github-org:empty: no repositories listed"),
        "{}",
        r.stderr
    );
    // A GitLab group that does not exist, and an API that is not there.
    let r = run_with(
        &t,
        &[
            "submit",
            "gitlab-group",
            "ghost/group",
            "--gitlab-api",
            &base,
            "--dry-run",
        ],
        &[],
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("gitlab-group:ghost/group") && r.stderr.contains("HTTP 404"),
        "{}",
        r.stderr
    );
    let r = run_with(
        &t,
        &[
            "submit",
            "gitlab-group",
            "g",
            "--gitlab-api",
            "http://127.0.0.1:9/api/v4",
            "--dry-run",
        ],
        &[],
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("error: gitlab-group:g: GET "),
        "{}",
        r.stderr
    );
}

#[test]
fn github_org_jobs_are_queued_once_and_scanned_by_workers() {
    let nats = Nats::start();
    let pg = Pg::new();
    let db = pg.url();
    let t = CliTest::new();
    let (api, urls) = acme(&t);
    let base = api.url();
    let url = nats.url();
    let submit = || {
        run_with(
            &t,
            &[
                "submit",
                "github-org",
                "acme",
                "--github-api",
                &base,
                "--nats",
                &url,
                "--db",
                &db,
            ],
            &[],
        )
    };
    let r = submit();
    assert_eq!(r.code, 0, "{r:?}");
    let first = lines(&r);
    let recorded: Vec<String> = [&urls[0], &urls[3]]
        .iter()
        .map(|u| format!("git:{u}"))
        .collect();
    let got: Vec<&str> = first
        .iter()
        .map(|j| j["target"].as_str().unwrap())
        .collect();
    assert_eq!(got, recorded);
    assert!(
        first
            .iter()
            .all(|j| j["created"] == true && j["state"] == "queued")
    );
    // Listed and submitted again while queued: the same jobs.
    let r = submit();
    assert_eq!(r.code, 0, "{r:?}");
    let again = lines(&r);
    for (a, b) in first.iter().zip(&again) {
        assert_eq!(a["job_key"], b["job_key"]);
        assert_eq!(b["created"], false);
        assert_eq!(b["duplicate"], true);
    }
    let w = Worker::start(&t, &nats, &db, "w", &["--exit-when-idle", "3s"]);
    let log = w.wait(120);
    let listed = jobs(&t, &db);
    assert_eq!(listed.len(), 2, "{listed:?}\n{log}");
    for j in &listed {
        assert_eq!(j["state"], "done", "{j}\n{log}");
        assert_eq!(j["findings"], 1, "{j}\n{log}");
    }
    let r = t.run(&["findings", "--db", &db]);
    assert_eq!(r.code, 1, "{r:?}");
    let mut seen: Vec<String> = lines(&r)
        .iter()
        .map(|f: &Value| f["store"]["targets"][0].as_str().unwrap().to_string())
        .collect();
    seen.sort();
    let mut want = recorded.clone();
    want.sort();
    assert_eq!(seen, want);
}

//! `keytrail submit registry` against Debian's reference registry
//! (`docker-registry`) with token authentication, as the `scan --image`
//! tests start it (`image_registry::setup`), holding four repositories and
//! six tags pushed by `skopeo`: the catalog and tag lists are followed over
//! several pages, a prefix selects repositories, `--max-tags` keeps the
//! highest versions, credentials come from the flags or docker's
//! `config.json`; without credentials the registry's 401 exits 2 naming
//! it. A loopback stand-in answers what the reference registry never does
//! (no catalog: 404; a malformed answer). A worker pulls and scans a
//! submitted tag end to end.

use crate::image::run;
use crate::image_registry::{Setup, base64, setup};
use crate::store::Pg;
use crate::worker::{Nats, Worker, jobs, lines};
use crate::{CliTest, Run};
use keytrail_testkit::http::{Response, Server};
use serde_json::{Value, json};
use std::process::{Command, Stdio};

/// Push the set-up's image as `repo:tag` for each tag.
fn push(s: &Setup, repo: &str, tags: &[&str]) {
    for tag in tags {
        run(Command::new("skopeo").args([
            "copy",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            "--src-creds",
            &format!("{}:{}", s.user, s.password),
            "--dest-creds",
            &format!("{}:{}", s.user, s.password),
            &format!("docker://{}", s.reference),
            &format!("docker://{}/{repo}:{tag}", s.registry.addr),
        ]));
    }
}

/// The image references of a `--dry-run`'s jobs, in order.
fn images(r: &Run) -> Vec<String> {
    lines(r)
        .iter()
        .map(|j| {
            assert_eq!(j["target"]["type"], "image", "{j}");
            j["target"]["value"].as_str().unwrap().to_string()
        })
        .collect()
}

#[test]
fn catalog_and_tags_over_pages_with_prefix_max_tags_and_credentials() {
    let s = setup();
    push(&s, "team/api", &["v1.9", "v1.10", "v2"]);
    push(&s, "team/web", &["latest"]);
    push(&s, "tools/cli", &["1.0"]);
    let host = s.registry.addr.clone();

    // Without credentials: the token service gives nothing, the registry
    // answers 401.
    let r = s.scan(&["submit", "registry", &host, "--dry-run"], None);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains(&format!("error: registry:{host}: "))
            && r.stderr.contains("401")
            && r.stderr.contains("catalog"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.is_empty(), "{}", r.stdout);

    // With the flags, two entries per page: 4 repositories over 2 catalog
    // pages, team/api's 3 tags over 2 tag pages.
    let r = s.scan(
        &[
            "submit",
            "registry",
            &host,
            "--registry-user",
            &s.user,
            "--registry-password",
            &s.password,
            "--page-size",
            "2",
            "--dry-run",
        ],
        None,
    );
    assert_eq!(r.code, 0, "{r:?}");
    let want: Vec<String> = [
        "secure/app:v1",
        "team/api:v1.10",
        "team/api:v1.9",
        "team/api:v2",
        "team/web:latest",
        "tools/cli:1.0",
    ]
    .iter()
    .map(|t| format!("{host}/{t}"))
    .collect();
    // Tags come in the registry's order (not lexical for this one).
    let mut got = images(&r);
    got.sort();
    assert_eq!(got, want);
    assert!(
        r.stderr.contains(&format!(
            "registry:{host}: 4 repositories listed, 6 tag(s) to scan\n"
        )),
        "{}",
        r.stderr
    );
    let log = s.tokens.log();
    assert!(
        log.iter()
            .any(|l| l.starts_with("GET basic:ci-bot granted registry:catalog:*")),
        "{log:?}"
    );

    // A prefix and the two highest versions, credentials from docker's
    // config.json.
    let auth = base64(format!("{}:{}", s.user, s.password).as_bytes());
    let config = json!({"auths": {host.clone(): {"auth": auth}}});
    let r = s.scan(
        &[
            "submit",
            "registry",
            &format!("{host}/team/"),
            "--max-tags",
            "2",
            "--page-size",
            "2",
            "--dry-run",
        ],
        Some(&config),
    );
    assert_eq!(r.code, 0, "{r:?}");
    let mut got = images(&r);
    got.sort();
    assert_eq!(
        got,
        [
            format!("{host}/team/api:v1.10"),
            format!("{host}/team/api:v2"),
            format!("{host}/team/web:latest"),
        ]
    );
    assert!(
        r.stderr.contains(&format!(
            "registry:{host}/team: 2 repositories listed, 3 tag(s) to scan; 1 older tag(s) skipped (--max-tags)"
        )),
        "{}",
        r.stderr
    );
    // A prefix nothing is under.
    let r = s.scan(
        &[
            "submit",
            "registry",
            &format!("{host}/nothing"),
            "--dry-run",
        ],
        Some(&config),
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr
            .contains(&format!("registry:{host}/nothing: no repositories listed")),
        "{}",
        r.stderr
    );
    // Bad input, refused before anything is listed.
    let r = s.scan(
        &[
            "submit",
            "registry",
            &format!("https://{host}"),
            "--dry-run",
        ],
        None,
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("without a scheme"), "{}", r.stderr);
}

#[test]
fn no_catalog_malformed_answers_and_unreachable_registries_exit_2() {
    let t = CliTest::new();
    let api = Server::start();
    let host = api.url().trim_start_matches("http://").to_string();
    api.set("/v2/", Response::ok("{}"));
    let run = |target: &str| -> Run {
        let out = t
            .command(&[
                "submit",
                "registry",
                target,
                "--plain-http",
                &host,
                "--dry-run",
            ])
            .env("DOCKER_CONFIG", t.root())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        Run {
            code: out.status.code().unwrap(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    };
    // No catalog (Docker Hub, GHCR): 404.
    api.set(
        "/v2/_catalog?n=100",
        Response::status(404).header("Content-Type", "application/json"),
    );
    let r = run(&host);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains(&format!("error: registry:{host}: GET "))
            && r.stderr.contains("HTTP 404")
            && r.stderr.contains("does not offer its catalog"),
        "{}",
        r.stderr
    );
    // A catalog that is not JSON, then one without `repositories`.
    api.set(
        "/v2/_catalog?n=100",
        Response::ok("{\"repositories\": [\"a"),
    );
    let r = run(&host);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains(&format!("registry:{host}")) && r.stderr.contains("invalid JSON"),
        "{}",
        r.stderr
    );
    api.set("/v2/_catalog?n=100", Response::ok("{\"errors\": []}"));
    let r = run(&host);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("no `repositories` list"), "{}", r.stderr);
    // Tags of one repository refused; a repository with its tags deleted
    // (`"tags": null`) has no job.
    api.set(
        "/v2/_catalog?n=100",
        Response::ok(json!({"repositories": ["gone", "locked"]}).to_string()),
    );
    api.set(
        "/v2/gone/tags/list?n=100",
        Response::ok(json!({"name": "gone", "tags": null}).to_string()),
    );
    api.set(
        "/v2/locked/tags/list?n=100",
        Response::status(403).header("Content-Type", "application/json"),
    );
    let r = run(&host);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("/v2/locked/tags/list") && r.stderr.contains("HTTP 403"),
        "{}",
        r.stderr
    );
    api.set(
        "/v2/locked/tags/list?n=100",
        Response::ok(json!({"name": "locked", "tags": ["1"]}).to_string()),
    );
    let r = run(&host);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(images(&r), [format!("{host}/locked:1")]);
    // Nothing listening.
    let r = run("127.0.0.1:9");
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr
            .contains("registry:127.0.0.1:9: cannot reach registry"),
        "{}",
        r.stderr
    );
}

#[test]
fn submitted_tags_are_pulled_and_scanned_by_workers() {
    let s = setup();
    let nats = Nats::start();
    let pg = Pg::new();
    let db = pg.url();
    let host = s.registry.addr.clone();
    let auth = base64(format!("{}:{}", s.user, s.password).as_bytes());
    let config = json!({"auths": {host.clone(): {"auth": auth}}});
    let dir = s.t.root().join("docker");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    let url = nats.url();
    let r = s.scan(
        &[
            "submit",
            "registry",
            &format!("{host}/secure"),
            "--nats",
            &url,
            "--db",
            &db,
        ],
        Some(&config),
    );
    assert_eq!(r.code, 0, "{r:?}");
    let submitted = lines(&r);
    assert_eq!(submitted.len(), 1, "{}", r.stdout);
    assert_eq!(submitted[0]["target"], format!("image:{}", s.reference));
    let w = Worker::start_env(
        &s.t,
        &nats,
        &db,
        "w",
        &["--exit-when-idle", "3s"],
        &[("DOCKER_CONFIG", dir.to_str().unwrap())],
    );
    let log = w.wait(120);
    let listed = jobs(&s.t, &db);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["state"], "done", "{:?}\n{log}", listed[0]);
    assert_eq!(listed[0]["findings"], 1, "{log}");
    let r = s.t.run(&["findings", "--db", &db]);
    assert_eq!(r.code, 1, "{r:?}");
    let found: Vec<Value> = lines(&r);
    assert_eq!(
        found[0]["store"]["targets"][0],
        format!("image:{}", s.reference)
    );
    assert!(!pg.dump().contains(&s.secret) && !log.contains(&s.secret));
}

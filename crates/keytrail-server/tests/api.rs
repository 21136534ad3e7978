//! `keytrail serve`'s API over loopback, against SQLite and PostgreSQL:
//! 401 and 403 on every route for every role, filters and paging, a
//! finding with its locations and history, triage by PATCH (concurrent
//! triagers, stale versions refused with 409), parameters and bodies that
//! are wrong (400 naming them), the database going away (503 JSON, nothing
//! lost), and that no response holds a secret; browser sessions (login
//! with a token, cookie flags, CSRF, roles, the login rate limit), the
//! inventory and the trend. PostgreSQL is the local
//! server (127.0.0.1:5432, trust authentication; scripts/install-test-deps.sh
//! starts it); each test makes its own database and drops it.

use keytrail_store::{Role, RunRecord, Store};
use keytrail_types::{Confidence, Finding, Fingerprint, Location, Origin, Secret, Severity};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};

const PG_ADMIN: &str = "host=127.0.0.1 port=5432 user=postgres dbname=postgres";

fn pg_admin() -> postgres::Client {
    postgres::Client::connect(PG_ADMIN, postgres::NoTls).unwrap_or_else(|e| {
        panic!(
            "PostgreSQL must listen on 127.0.0.1:5432 with trust authentication for user postgres \
(scripts/install-test-deps.sh starts it): {e}"
        )
    })
}

/// A store for one test: a SQLite file in a temporary directory, or a
/// PostgreSQL database dropped at the end.
enum Db {
    Sqlite(tempfile::TempDir),
    Postgres(String),
}

impl Db {
    fn sqlite() -> Db {
        Db::Sqlite(tempfile::tempdir().expect("temp dir"))
    }
    fn postgres() -> Db {
        static N: AtomicUsize = AtomicUsize::new(0);
        let mut r = [0u8; 4];
        rand::fill(&mut r);
        let name = format!(
            "kt_server_{}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst),
            u32::from_le_bytes(r)
        );
        pg_admin()
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("CREATE DATABASE");
        Db::Postgres(name)
    }
    fn url(&self) -> String {
        match self {
            Db::Sqlite(d) => d.path().join("keytrail.db").display().to_string(),
            Db::Postgres(name) => format!("postgres://postgres@127.0.0.1:5432/{name}"),
        }
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Db::Postgres(name) = self {
            let _ =
                pg_admin().batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}

/// Run a test on a SQLite file and on a PostgreSQL database.
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[test]
            fn sqlite() {
                super::$name(super::Db::sqlite());
            }
            #[test]
            fn postgres() {
                super::$name(super::Db::postgres());
            }
        }
    };
}

fn finding(secret: &str, path: &str, severity: Severity, n: u8) -> Finding {
    let s = Secret::new(secret.to_string());
    Finding {
        rule_id: "github.pat.classic".into(),
        rule_name: "GitHub personal access token".into(),
        confidence: Confidence::High,
        severity,
        // Distinct report fingerprints (the store keeps keyed ones).
        fingerprint: Fingerprint(format!(
            "{n:x}{n:x}{n:x}{n:x}{n:x}{n:x}00112233445566778899aabbcc"
        )),
        secret_redacted: s.redacted(),
        secret: s,
        context: Vec::new(),
        locations: vec![Location {
            path: path.into(),
            line: 3,
            column: 7,
            offset: 40,
            snippet: format!("token = {}", "*".repeat(12)),
            origin: Origin::File,
            // The first finding was found by decoding base64.
            decoded: (n == 1).then(|| "base64".to_string()),
        }],
        notes: vec!["checksum valid".into()],
        remediation: None,
        verification: None,
        blast_radius: None,
    }
}

/// A served store with three findings and a token per role.
struct Served {
    db: Db,
    server: keytrail_server::Running,
    secrets: Vec<String>,
    tokens: Vec<(Role, String)>,
    /// The fingerprints the store keeps and serves (keyed).
    fps: Vec<String>,
    /// The findings' report fingerprints.
    report_fps: Vec<String>,
    agent: ureq::Agent,
}

impl Served {
    fn new(db: Db) -> Served {
        Served::with(db, keytrail_server::ServeOptions::default())
    }

    fn with(db: Db, options: keytrail_server::ServeOptions) -> Served {
        let mut fake = keytrail_testkit::secrets::FakeSecrets::new(20);
        let secrets: Vec<String> = (0..3).map(|_| fake.github_classic()).collect();
        let findings = vec![
            finding(&secrets[0], "config/app.env", Severity::High, 1),
            finding(&secrets[1], "deploy/ci.yml", Severity::Critical, 2),
            finding(&secrets[2], "docs/readme.md", Severity::Low, 3),
        ];
        let mut store = Store::open(&db.url()).expect("open the store");
        let mut run = RunRecord::new("scan", "acme/api");
        run.complete = true;
        store
            .record_run(&run, &findings, &|_| Some("payments".to_string()))
            .expect("record");
        let tokens = Role::ALL
            .into_iter()
            .map(|r| (r, store.create_token(&format!("{r}-bot"), r).unwrap()))
            .collect();
        let fps = findings
            .iter()
            .map(|f| store.store_id(&f.fingerprint.0))
            .collect();
        drop(store);
        let server =
            keytrail_server::spawn_with(&db.url(), "127.0.0.1:0".parse().unwrap(), options)
                .expect("serve");
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(std::time::Duration::from_secs(30)))
            .build()
            .new_agent();
        Served {
            db,
            server,
            secrets,
            tokens,
            fps,
            report_fps: findings.iter().map(|f| f.fingerprint.0.clone()).collect(),
            agent,
        }
    }

    fn token(&self, role: Role) -> &str {
        &self.tokens.iter().find(|(r, _)| *r == role).unwrap().1
    }

    /// Send a request; the status and the body as JSON. Every body is
    /// JSON and holds none of the planted secrets.
    fn call(
        &self,
        method: &str,
        path: &str,
        auth: Option<&str>,
        body: Option<&str>,
    ) -> (u16, Value) {
        let url = format!("http://{}{path}", self.server.addr);
        let auth = auth.map(|a| {
            if a.contains(' ') {
                a.to_string()
            } else {
                format!("Bearer {a}")
            }
        });
        let resp = match method {
            "GET" => {
                let mut r = self.agent.get(&url);
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                r.call()
            }
            "PATCH" => {
                let mut r = self
                    .agent
                    .patch(&url)
                    .header("Content-Type", "application/json");
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                r.send(body.unwrap_or("{}"))
            }
            "POST" => {
                let mut r = self
                    .agent
                    .post(&url)
                    .header("Content-Type", "application/json");
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                r.send(body.unwrap_or("{}"))
            }
            m => panic!("method {m}"),
        };
        let mut resp = resp.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = resp.status().as_u16();
        let www = resp.headers().get("www-authenticate").is_some();
        let text = resp.body_mut().read_to_string().expect("body");
        for s in &self.secrets {
            assert!(
                !text.contains(s.as_str()),
                "{method} {path} served a secret"
            );
        }
        let v: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{method} {path}: {status} not JSON ({e}): {text}"));
        if status >= 400 {
            assert!(
                v["error"]["code"].is_string() && v["error"]["message"].is_string(),
                "{method} {path}: error shape: {v}"
            );
        }
        assert_eq!(
            status == 401,
            www,
            "{method} {path}: WWW-Authenticate on 401 only"
        );
        (status, v)
    }

    fn get(&self, path: &str, role: Role) -> (u16, Value) {
        self.call("GET", path, Some(self.token(role)), None)
    }

    fn patch(&self, path: &str, role: Role, body: &str) -> (u16, Value) {
        self.call("PATCH", path, Some(self.token(role)), Some(body))
    }

    fn post(&self, path: &str, role: Role, body: &str) -> (u16, Value) {
        self.call("POST", path, Some(self.token(role)), Some(body))
    }
}

/// A body that a route taking one (PATCH, POST) accepts: a comment, on
/// `fp` for the bulk route.
fn change_body(method: &str, fp: &str) -> String {
    match method {
        "POST" => format!(r#"{{"fingerprints": ["{fp}"], "comment": "looked at it"}}"#),
        _ => r#"{"comment": "looked at it"}"#.to_string(),
    }
}

/// Every route of the API with the role it needs (the OpenAPI document is
/// public). A new route goes here, in the router and in openapi.json.
fn routes(fp: &str) -> Vec<(&'static str, String, Role)> {
    vec![
        ("GET", "/api/v1/me".into(), Role::Viewer),
        ("GET", "/api/v1/findings".into(), Role::Viewer),
        ("GET", format!("/api/v1/findings/{fp}"), Role::Viewer),
        ("PATCH", format!("/api/v1/findings/{fp}"), Role::Triager),
        ("POST", "/api/v1/findings/triage".into(), Role::Triager),
        ("GET", "/api/v1/posture".into(), Role::Viewer),
        ("GET", "/api/v1/alerts".into(), Role::Viewer),
        ("GET", "/api/v1/exposure".into(), Role::Viewer),
        ("GET", "/api/v1/runs".into(), Role::Viewer),
        ("GET", "/api/v1/jobs".into(), Role::Viewer),
        ("GET", "/api/v1/inventory".into(), Role::Viewer),
        ("GET", "/api/v1/trends".into(), Role::Viewer),
    ]
}

both!(every_route_answers_401_without_a_token_and_403_without_its_role);
fn every_route_answers_401_without_a_token_and_403_without_its_role(db: Db) {
    let s = Served::new(db);
    let fp = s.fps[0].clone();
    for (method, path, need) in routes(&fp) {
        let body = change_body(method, &fp);
        let body = body.as_str();
        for auth in [
            None,
            Some("Bearer kttok_0000000000000000000000000000000000000000000000000000000000000000"),
            Some("Bearer "),
            Some("Basic dmlld2VyOnBhc3N3b3Jk"),
        ] {
            let (status, v) = s.call(method, &path, auth, Some(body));
            assert_eq!(status, 401, "{method} {path} with {auth:?}: {v}");
            assert_eq!(v["error"]["code"], "unauthorized");
        }
        for role in Role::ALL {
            let (status, v) = s.call(method, &path, Some(s.token(role)), Some(body));
            if role < need {
                assert_eq!(status, 403, "{method} {path} as {role}: {v}");
                let msg = v["error"]["message"].as_str().unwrap();
                assert!(msg.contains(need.as_str()), "{msg}");
            } else {
                assert_eq!(status, 200, "{method} {path} as {role}: {v}");
            }
        }
    }
    // A viewer's PATCH changed nothing.
    let (_, f) = s.get(&format!("/api/v1/findings/{fp}"), Role::Viewer);
    let actors: Vec<&str> = f["history"]["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["author"].as_str().unwrap())
        .collect();
    // (PATCH, then the bulk route.)
    assert_eq!(
        actors,
        ["triager-bot", "admin-bot", "triager-bot", "admin-bot"]
    );
    // The document is public and describes every route.
    let (status, doc) = s.call("GET", "/api/v1/openapi.json", None, None);
    assert_eq!(status, 200);
    for (method, path, _) in routes("{fingerprint}") {
        let op = &doc["paths"][&path][method.to_ascii_lowercase()];
        assert!(op.is_object(), "{method} {path} is not in openapi.json");
    }
    let documented: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| p.as_object().unwrap().len())
        .sum();
    assert_eq!(
        documented,
        routes("").len() + 1,
        "openapi.json documents a route the tests do not know"
    );
    // An unknown route: 404, JSON.
    let (status, _) = s.get("/api/v1/nope", Role::Admin);
    assert_eq!(status, 404);
}

both!(findings_are_listed_with_filters_and_pages);
fn findings_are_listed_with_filters_and_pages(db: Db) {
    let s = Served::new(db);
    let (status, all) = s.get("/api/v1/findings", Role::Viewer);
    assert_eq!(status, 200);
    let list = all["findings"].as_array().unwrap();
    assert_eq!(list.len(), 3);
    // The store serves its keyed fingerprints, never the reports' ones.
    for fp in &s.report_fps {
        assert!(!all.to_string().contains(fp.as_str()), "{fp} served");
    }
    assert_eq!(all["next_after"], Value::Null);
    let f = &list[0];
    assert_eq!(f["fingerprint"], s.fps[0].as_str());
    assert_eq!(f["status"], "open");
    assert_eq!(f["owner"], "payments");
    assert_eq!(f["targets"], json!(["acme/api"]));
    assert_eq!(f["occurrences"], 1);
    assert!(
        f["redacted"].as_str().unwrap().contains('…')
            || !f["redacted"].as_str().unwrap().is_empty()
    );
    // Pages of two.
    let (_, p1) = s.get("/api/v1/findings?limit=2", Role::Viewer);
    assert_eq!(p1["findings"].as_array().unwrap().len(), 2);
    let after = p1["next_after"].as_i64().expect("a next page");
    let (_, p2) = s.get(
        &format!("/api/v1/findings?limit=2&after={after}"),
        Role::Viewer,
    );
    let p2 = p2["findings"].as_array().unwrap();
    assert_eq!(p2.len(), 1);
    assert_eq!(p2[0]["fingerprint"], s.fps[2].as_str());
    // Filters.
    let count = |q: &str| {
        s.get(&format!("/api/v1/findings?{q}"), Role::Viewer).1["findings"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(count("min_severity=high"), 2);
    assert_eq!(count("min_severity=critical"), 1);
    assert_eq!(count("kind=secret&owner=payments"), 3);
    assert_eq!(count("owner=nobody"), 0);
    assert_eq!(count("target=acme%2Fapi&status=open"), 3);
    assert_eq!(count("status=fixed,revoked"), 0);
    s.patch(
        &format!("/api/v1/findings/{}", s.fps[1]),
        Role::Triager,
        r#"{"status": "revoked"}"#,
    );
    assert_eq!(count("status=fixed,revoked"), 1);
    assert_eq!(count("status=open"), 2);
    for kind in ["posture", "alerts", "exposure"] {
        let (status, v) = s.get(&format!("/api/v1/{kind}"), Role::Viewer);
        assert_eq!(status, 200);
        assert_eq!(v["findings"], json!([]), "{kind}: no secrets listed there");
    }
    let (_, runs) = s.get("/api/v1/runs", Role::Viewer);
    assert_eq!(runs["runs"][0]["target"], "acme/api");
    assert_eq!(runs["runs"][0]["findings"], 3);
}

both!(bulk_triage_changes_all_or_nothing_and_audits_each);
fn bulk_triage_changes_all_or_nothing_and_audits_each(db: Db) {
    let s = Served::new(db);
    let route = "/api/v1/findings/triage";
    let status_of = |fp: &str| {
        let (_, f) = s.get(&format!("/api/v1/findings/{fp}"), Role::Viewer);
        (
            f["status"].as_str().unwrap().to_string(),
            f["version"].as_i64().unwrap(),
        )
    };
    // One of them unknown: 404 naming it, and nothing changed.
    let (st, v) = s.post(
        route,
        Role::Triager,
        &format!(
            r#"{{"fingerprints": ["{}", "ffffffffffffffffffffffffffffffff"], "status": "false_positive"}}"#,
            s.fps[0]
        ),
    );
    assert_eq!(st, 404, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("ffffffff"),
        "{v}"
    );
    assert_eq!(status_of(&s.fps[0]), ("open".to_string(), 1));
    // Bad bodies: each a 400 naming what is wrong, nothing changed.
    let many: Vec<String> = (0..1001).map(|i| format!("\"{i:032x}\"")).collect();
    for (body, says) in [
        ("{}".to_string(), "fingerprints"),
        (
            r#"{"fingerprints": [], "status": "revoked"}"#.to_string(),
            "fingerprints",
        ),
        (
            r#"{"fingerprints": "abc", "status": "revoked"}"#.to_string(),
            "fingerprints",
        ),
        (
            r#"{"fingerprints": [1], "status": "revoked"}"#.to_string(),
            "fingerprints",
        ),
        (
            r#"{"fingerprints": [""], "status": "revoked"}"#.to_string(),
            "fingerprints",
        ),
        (
            format!(
                r#"{{"fingerprints": [{}], "status": "revoked"}}"#,
                many.join(",")
            ),
            "1 to 1000",
        ),
        (
            format!(r#"{{"fingerprints": ["{}"]}}"#, s.fps[0]),
            "nothing to change",
        ),
        (
            format!(r#"{{"fingerprints": ["{}"], "status": "gone"}}"#, s.fps[0]),
            "unknown status",
        ),
        (
            format!(
                r#"{{"fingerprints": ["{}"], "status": "revoked", "if_version": 1}}"#,
                s.fps[0]
            ),
            "unknown field `if_version`",
        ),
        (
            format!(r#"{{"fingerprints": ["{}"], "comment": "  "}}"#, s.fps[0]),
            "comment",
        ),
        ("[1, 2]".to_string(), "not a JSON object"),
        ("{".to_string(), "not JSON"),
    ] {
        let (st, v) = s.post(route, Role::Triager, &body);
        assert_eq!(st, 400, "{body}: {v}");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.contains(says), "{body}: {msg}");
    }
    let (st, v) = s.call(
        "POST",
        &format!("{route}?x=1"),
        Some(s.token(Role::Triager)),
        Some(&format!(
            r#"{{"fingerprints": ["{}"], "status": "revoked"}}"#,
            s.fps[0]
        )),
    );
    assert_eq!(st, 400, "{v}");
    assert_eq!(status_of(&s.fps[0]), ("open".to_string(), 1));
    // Two findings (one named by its report fingerprint, one by a prefix,
    // one twice): one change each, each audited as the token's name.
    let (st, v) = s.post(
        route,
        Role::Triager,
        &format!(
            r#"{{"fingerprints": ["{}", "{}", "{}"], "status": "false_positive", "assignee": "alice", "comment": "fixtures"}}"#,
            s.report_fps[0],
            &s.fps[1][..10],
            s.fps[1]
        ),
    );
    assert_eq!(st, 200, "{v}");
    let got = v["findings"].as_array().unwrap();
    assert_eq!(got.len(), 2, "{v}");
    for (f, fp) in got.iter().zip(&s.fps) {
        assert_eq!(f["fingerprint"], fp.as_str());
        assert_eq!(f["status"], "false_positive");
        assert_eq!(f["assignee"], "alice");
        assert_eq!(f["version"], 2);
        let (_, d) = s.get(&format!("/api/v1/findings/{fp}"), Role::Viewer);
        let audit: Vec<(String, String)> = d["history"]["audit"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["actor"].as_str().unwrap().to_string(),
                    a["field"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let by = |field: &str| ("triager-bot".to_string(), field.to_string());
        assert_eq!(audit, [by("status"), by("assignee"), by("comment")]);
        assert_eq!(d["history"]["comments"][0]["body"], "fixtures");
    }
    assert_eq!(status_of(&s.fps[2]), ("open".to_string(), 1));
}

both!(jobs_workers_and_throughput_are_served);
fn jobs_workers_and_throughput_are_served(db: Db) {
    let s = Served::new(db);
    let (status, v) = s.get("/api/v1/jobs", Role::Viewer);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["counts"]["done"], 0);
    assert_eq!(v["jobs"], json!([]));
    // A job a worker ran, one waiting, and the worker's heartbeat.
    let mut st = Store::open(&s.db.url()).unwrap();
    for (key, target) in [("scan-a", "acme/web"), ("scan-b", "acme/ops")] {
        st.submit_job(&keytrail_store::NewJob {
            job_key: key.into(),
            kind: "scan".into(),
            target: target.into(),
        })
        .unwrap();
    }
    st.worker_beat("w1", "node-1", 7, &keytrail_store::now(), Some("scan-a"))
        .unwrap();
    st.job_started("scan-a", "w1", 1).unwrap();
    let mut run = RunRecord::new("scan", "acme/web");
    run.run_key = "scan-a".into();
    st.record_run(&run, &[], &|_| None).unwrap();
    st.job_done("scan-a", "w1").unwrap();
    let (status, v) = s.get("/api/v1/jobs", Role::Viewer);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["counts"]["done"], 1);
    assert_eq!(v["counts"]["queued"], 1);
    assert_eq!(v["throughput"]["jobs_done"], 1);
    assert_eq!(v["throughput"]["window_seconds"], 300);
    assert_eq!(v["workers"][0]["name"], "w1");
    assert_eq!(v["workers"][0]["alive"], true);
    assert_eq!(v["workers"][0]["jobs_done"], 1);
    assert_eq!(v["jobs"][0]["job_key"], "scan-b", "newest first");
    assert_eq!(v["jobs"][0]["state"], "queued");
    assert_eq!(v["jobs"][1]["state"], "done");
    assert_eq!(v["jobs"][1]["findings"], 0);
    assert_eq!(v["jobs"][1]["worker"], "w1");
}

both!(a_finding_has_its_locations_and_its_triage_history);
fn a_finding_has_its_locations_and_its_triage_history(db: Db) {
    let s = Served::new(db);
    let path = format!("/api/v1/findings/{}", &s.fps[0][..8]);
    let (status, f) = s.get(&path, Role::Viewer);
    assert_eq!(status, 200, "a unique prefix will do: {f}");
    assert_eq!(f["fingerprint"], s.fps[0].as_str());
    assert_eq!(f["locations"][0]["path"], "config/app.env");
    assert_eq!(f["locations"][0]["line"], 3);
    assert_eq!(f["locations"][0]["decoded"], "base64");
    assert_eq!(f["notes"], json!(["checksum valid"]));
    assert_eq!(f["history"]["audit"], json!([]));
    // A report's fingerprint finds it too.
    let (status, by_report) = s.get(
        &format!("/api/v1/findings/{}", s.report_fps[0]),
        Role::Viewer,
    );
    assert_eq!(status, 200, "{by_report}");
    assert_eq!(by_report["fingerprint"], s.fps[0].as_str());
    let (status, t) = s.patch(
        &path,
        Role::Triager,
        r#"{"status": "acknowledged", "assignee": "alice", "comment": "rotating today", "if_version": 1}"#,
    );
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["status"], "acknowledged");
    assert_eq!(t["assignee"], "alice");
    assert_eq!(t["version"], 2);
    let audit = t["history"]["audit"].as_array().unwrap();
    assert!(
        audit.iter().all(|a| a["actor"] == "triager-bot"),
        "{audit:?}"
    );
    assert!(
        audit.iter().any(|a| a["field"] == "status"
            && a["before"] == "open"
            && a["after"] == "acknowledged")
    );
    assert_eq!(t["history"]["comments"][0]["body"], "rotating today");
    // null clears the assignee.
    let (_, t) = s.patch(&path, Role::Admin, r#"{"assignee": null}"#);
    assert_eq!(t["assignee"], Value::Null);
    assert_eq!(t["version"], 3);
    let (status, v) = s.get("/api/v1/findings/ffffffffffff", Role::Viewer);
    assert_eq!(status, 404, "{v}");
}

both!(concurrent_triagers_of_one_version_get_one_success_and_409s);
fn concurrent_triagers_of_one_version_get_one_success_and_409s(db: Db) {
    let s = Served::new(db);
    let path = format!("/api/v1/findings/{}", s.fps[0]);
    let results: Vec<(u16, Value)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let (s, path) = (&s, &path);
                scope.spawn(move || {
                    s.patch(
                        path,
                        Role::Triager,
                        &format!(r#"{{"assignee": "person{i}", "if_version": 1}}"#),
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ok: Vec<_> = results.iter().filter(|(st, _)| *st == 200).collect();
    let conflicts = results
        .iter()
        .filter(|(st, v)| *st == 409 && v["error"]["code"] == "version_conflict")
        .count();
    assert_eq!((ok.len(), conflicts), (1, 7), "{results:?}");
    let (_, f) = s.get(&path, Role::Viewer);
    assert_eq!(f["version"], 2);
    assert_eq!(f["assignee"], ok[0].1["assignee"]);
    assert_eq!(f["history"]["audit"].as_array().unwrap().len(), 1);
    // Without if_version, every change goes through, none lost.
    std::thread::scope(|scope| {
        for i in 0..6 {
            let (s, path) = (&s, &path);
            scope.spawn(move || {
                let (st, v) = s.patch(
                    path,
                    Role::Triager,
                    &format!(r#"{{"comment": "note {i}"}}"#),
                );
                assert_eq!(st, 200, "{v}");
            });
        }
    });
    let (_, f) = s.get(&path, Role::Viewer);
    assert_eq!(f["history"]["comments"].as_array().unwrap().len(), 6);
    assert_eq!(f["version"], 8);
}

#[test]
fn bad_parameters_and_bodies_are_400_naming_them() {
    let s = Served::new(Db::sqlite());
    for (query, name) in [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=ten", "limit"),
        ("after=-1", "after"),
        ("after=x", "after"),
        ("min_severity=urgent", "min_severity"),
        ("status=open,bogus", "status"),
        ("kind=bogus", "kind"),
        ("kind=", "kind"),
        ("colour=red", "colour"),
        ("limit=1&limit=2", "limit"),
        ("owner=a%00b", "owner"),
    ] {
        let (status, v) = s.get(&format!("/api/v1/findings?{query}"), Role::Viewer);
        assert_eq!(status, 400, "{query}: {v}");
        assert_eq!(v["error"]["code"], "bad_parameter", "{query}");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.contains(&format!("`{name}`")), "{query}: {msg}");
    }
    let (status, v) = s.get("/api/v1/posture?kind=secret", Role::Viewer);
    assert_eq!(status, 400, "the route fixes the kind: {v}");
    let (status, v) = s.get("/api/v1/runs?limit=3", Role::Viewer);
    assert_eq!(status, 400, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("`limit`"));
    let path = format!("/api/v1/findings/{}", s.fps[0]);
    for (body, needle) in [
        ("not json", "not JSON"),
        ("[1]", "not a JSON object"),
        ("{}", "nothing to change"),
        (r#"{"if_version": 1}"#, "nothing to change"),
        (r#"{"status": "done"}"#, "`status`"),
        (r#"{"status": 3}"#, "`status`"),
        (r#"{"assignee": 3}"#, "`assignee`"),
        (r#"{"comment": ""}"#, "`comment`"),
        (r#"{"if_version": 0, "comment": "x"}"#, "`if_version`"),
        (r#"{"colour": "red"}"#, "`colour`"),
        (r#"{"comment": "a\u0000b"}"#, "`comment`"),
    ] {
        let (status, v) = s.patch(&path, Role::Triager, body);
        assert_eq!(status, 400, "{body}: {v}");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.contains(needle), "{body}: {msg}");
    }
    // Nothing of it was applied.
    let (_, f) = s.get(&path, Role::Viewer);
    assert_eq!(f["version"], 1);
}

#[test]
fn postgres_going_away_is_a_503_in_json_and_loses_nothing() {
    let s = Served::new(Db::postgres());
    let Db::Postgres(name) = &s.db else {
        unreachable!()
    };
    let path = format!("/api/v1/findings/{}", s.fps[0]);
    let (status, _) = s.get(&path, Role::Viewer);
    assert_eq!(status, 200);
    // The server ends every session (a restart, a failover, an admin).
    let kill = || -> i64 {
        pg_admin()
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1",
                &[name],
            )
            .unwrap()
            .get(0)
    };
    assert!(kill() >= 1, "the server's connection was found");
    let (status, v) = s.patch(&path, Role::Triager, r#"{"status": "revoked"}"#);
    assert_eq!(status, 503, "{v}");
    assert_eq!(v["error"]["code"], "database_unavailable");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains(name.as_str()),
        "{v}"
    );
    // The next request opens a new connection; the refused change is not
    // there, and goes through when sent again.
    let (status, f) = s.get(&path, Role::Viewer);
    assert_eq!(status, 200, "{f}");
    assert_eq!(
        (f["status"].as_str(), f["version"].as_i64()),
        (Some("open"), Some(1))
    );
    let (status, f) = s.patch(
        &path,
        Role::Triager,
        r#"{"status": "revoked", "if_version": 1}"#,
    );
    assert_eq!(status, 200, "{f}");
    assert_eq!(f["status"], "revoked");
    // The database gone for good: 503 on every route, never a hang or a 200.
    let _ = pg_admin().batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"));
    for (method, path, _) in routes(&s.fps[0]) {
        let (status, v) = s.call(
            method,
            &path,
            Some(s.token(Role::Admin)),
            Some(&change_body(method, &s.fps[0])),
        );
        assert!(
            status == 503 || status == 500,
            "{method} {path}: {status} {v}"
        );
    }
}

/// A browser that keeps its cookies by hand (ureq has none here) and
/// follows no redirect.
struct Browser<'a> {
    s: &'a Served,
    agent: ureq::Agent,
    cookies: std::collections::BTreeMap<String, String>,
    /// The Set-Cookie headers of the last response.
    set_cookies: Vec<String>,
}

impl<'a> Browser<'a> {
    fn new(s: &'a Served) -> Browser<'a> {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(std::time::Duration::from_secs(30)))
            .build()
            .new_agent();
        Browser {
            s,
            agent,
            cookies: Default::default(),
            set_cookies: Vec::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn take<B>(&mut self, resp: ureq::http::Response<B>) -> (u16, ureq::http::HeaderMap, B) {
        let (parts, body) = resp.into_parts();
        self.set_cookies = parts
            .headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect();
        for c in &self.set_cookies {
            let (kv, attrs) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = kv.split_once('=').unwrap();
            if attrs.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_string(), v.to_string());
            }
        }
        (parts.status.as_u16(), parts.headers, body)
    }

    fn get(&mut self, path: &str) -> (u16, ureq::http::HeaderMap, String) {
        let url = format!("http://{}{path}", self.s.server.addr);
        let resp = self
            .agent
            .get(&url)
            .header("Cookie", self.cookie_header())
            .call()
            .unwrap();
        let (st, h, mut body) = self.take(resp);
        let text = body.read_to_string().unwrap();
        for secret in &self.s.secrets {
            assert!(
                !text.contains(secret.as_str()),
                "GET {path} served a secret"
            );
        }
        (st, h, text)
    }

    fn post_form(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
    ) -> (u16, ureq::http::HeaderMap, String) {
        let url = format!("http://{}{path}", self.s.server.addr);
        let resp = self
            .agent
            .post(&url)
            .header("Cookie", self.cookie_header())
            .send_form(form.iter().copied())
            .unwrap();
        let (st, h, mut body) = self.take(resp);
        (st, h, body.read_to_string().unwrap())
    }

    fn patch(&mut self, path: &str, csrf: Option<&str>, body: &str) -> (u16, Value) {
        self.send_json("PATCH", path, csrf, body)
    }

    /// A JSON request (PATCH or POST) with the session cookie.
    fn send_json(
        &mut self,
        method: &str,
        path: &str,
        csrf: Option<&str>,
        body: &str,
    ) -> (u16, Value) {
        let url = format!("http://{}{path}", self.s.server.addr);
        let r = match method {
            "PATCH" => self.agent.patch(&url),
            "POST" => self.agent.post(&url),
            m => panic!("method {m}"),
        };
        let mut r = r
            .header("Cookie", self.cookie_header())
            .header("Content-Type", "application/json");
        if let Some(c) = csrf {
            r = r.header("X-CSRF-Token", c);
        }
        let resp = r.send(body).unwrap();
        let (st, _, mut b) = self.take(resp);
        (
            st,
            serde_json::from_str(&b.read_to_string().unwrap()).unwrap(),
        )
    }

    /// The login form's hidden CSRF value.
    fn login_csrf(&mut self) -> String {
        let (st, _, page) = self.get("/login");
        assert_eq!(st, 200);
        let at = page.find("name=\"csrf\" value=\"").expect("csrf field") + 19;
        page[at..at + 64].to_string()
    }

    /// Log in with `token`; the session's CSRF token.
    fn login(&mut self, token: &str) -> String {
        let csrf = self.login_csrf();
        let (st, h, _) = self.post_form("/login", &[("token", token), ("csrf", &csrf)]);
        assert_eq!(st, 303, "login");
        assert_eq!(h.get("location").unwrap(), "/");
        let (st, _, me) = self.get("/api/v1/me");
        assert_eq!(st, 200, "{me}");
        let me: Value = serde_json::from_str(&me).unwrap();
        me["csrf"].as_str().expect("a session's csrf").to_string()
    }
}

both!(a_browser_session_has_strict_cookies_csrf_and_the_token_s_role);
fn a_browser_session_has_strict_cookies_csrf_and_the_token_s_role(db: Db) {
    let s = Served::new(db);
    let path = format!("/api/v1/findings/{}", s.fps[0]);
    // Without a session: the dashboard's API calls are 401.
    let mut b = Browser::new(&s);
    let (st, _, _) = b.get("/api/v1/findings");
    assert_eq!(st, 401);
    // The login form sets its own CSRF cookie, scoped to /login.
    let csrf = b.login_csrf();
    assert!(
        b.set_cookies
            .iter()
            .any(|c| c.starts_with("keytrail_login=")
                && c.contains("HttpOnly")
                && c.contains("SameSite=Strict")),
        "{:?}",
        b.set_cookies
    );
    // A login post without the form's CSRF value (another site's form) is refused.
    let (st, _, page) = b.post_form("/login", &[("token", s.token(Role::Admin)), ("csrf", "x")]);
    assert_eq!(st, 403, "{page}");
    assert!(!b.cookies.contains_key("keytrail_session"));
    // A wrong token: 401, no session.
    let csrf2 = b.login_csrf();
    let (st, _, page) = b.post_form("/login", &[("token", "kttok_nope"), ("csrf", &csrf2)]);
    assert_eq!(st, 401);
    assert!(page.contains("Unknown or revoked token"), "{page}");
    assert!(!b.cookies.contains_key("keytrail_session"));
    let _ = csrf;
    // A triager's session: HttpOnly, SameSite=Strict, no Secure by default.
    let session_csrf = b.login(s.token(Role::Triager));
    let cookie = b
        .set_cookies
        .iter()
        .find(|c| c.starts_with("keytrail_session="))
        .cloned();
    let _ = cookie;
    let (_, me) = {
        let (st, _, me) = b.get("/api/v1/me");
        (st, serde_json::from_str::<Value>(&me).unwrap())
    };
    assert_eq!(
        (me["name"].as_str(), me["role"].as_str()),
        (Some("triager-bot"), Some("triager"))
    );
    // A change with the cookie but without the CSRF token: 403, nothing changed.
    let (st, v) = b.patch(&path, None, r#"{"status": "acknowledged"}"#);
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (403, Some("csrf")),
        "{v}"
    );
    let (st, v) = b.patch(
        &path,
        Some("0".repeat(64).as_str()),
        r#"{"status": "acknowledged"}"#,
    );
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (403, Some("csrf")),
        "{v}"
    );
    let (_, f) = s.get(&path, Role::Viewer);
    assert_eq!(f["version"], 1);
    // With it: done, as the token's name.
    let (st, v) = b.patch(&path, Some(&session_csrf), r#"{"status": "acknowledged"}"#);
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["history"]["audit"][0]["actor"], "triager-bot");
    // The bulk route too: no CSRF token, 403 and nothing changed; with it, done.
    let bulk = format!(
        r#"{{"fingerprints": ["{}", "{}"], "status": "revoked"}}"#,
        s.fps[1], s.fps[2]
    );
    let (st, v) = b.send_json("POST", "/api/v1/findings/triage", None, &bulk);
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (403, Some("csrf")),
        "{v}"
    );
    let (_, f) = s.get(&format!("/api/v1/findings/{}", s.fps[1]), Role::Viewer);
    assert_eq!(f["status"], "open");
    let (st, v) = b.send_json(
        "POST",
        "/api/v1/findings/triage",
        Some(&session_csrf),
        &bulk,
    );
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["findings"][1]["status"], "revoked");
    // A viewer's session reads every route and triages none (403), even with its CSRF token.
    let mut viewer = Browser::new(&s);
    let viewer_csrf = viewer.login(s.token(Role::Viewer));
    for (method, route, need) in routes(&s.fps[0]) {
        let st = match method {
            "GET" => viewer.get(&route).0,
            m => {
                viewer
                    .send_json(m, &route, Some(&viewer_csrf), &change_body(m, &s.fps[0]))
                    .0
            }
        };
        assert_eq!(
            st,
            if need > Role::Viewer { 403 } else { 200 },
            "{method} {route}"
        );
    }
    // Logging out needs the session's CSRF token, then ends the session.
    let (st, _, _) = viewer.post_form("/logout", &[("csrf", "nope")]);
    assert_eq!(st, 403);
    let (st, _, _) = viewer.post_form("/logout", &[("csrf", &viewer_csrf)]);
    assert_eq!(st, 303);
    assert!(!viewer.cookies.contains_key("keytrail_session"));
    assert_eq!(viewer.get("/api/v1/me").0, 401);
    // A cookie the server never made: 401.
    let mut forged = Browser::new(&s);
    forged
        .cookies
        .insert("keytrail_session".into(), "ab".repeat(32));
    assert_eq!(forged.get("/api/v1/me").0, 401);
}

/// Another session holds the row lock of finding `fp` until the returned
/// client's transaction ends: a triage of it waits inside its own.
fn hold_row_lock(db: &str, fp: &str) -> postgres::Client {
    let mut c = postgres::Client::connect(
        &format!("host=127.0.0.1 port=5432 user=postgres dbname={db}"),
        postgres::NoTls,
    )
    .unwrap();
    c.batch_execute("BEGIN").unwrap();
    let n = c
        .execute(
            "SELECT 1 FROM findings WHERE fingerprint = $1 FOR UPDATE",
            &[&fp],
        )
        .unwrap();
    assert_eq!(n, 1, "the finding's row is locked");
    c
}

/// The pid of the server's session waiting for a lock in `db`, once there is one.
fn waiting_backend(db: &str) -> i32 {
    for _ in 0..200 {
        let rows = pg_admin()
            .query(
                "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'",
                &[&db],
            )
            .unwrap();
        if let Some(r) = rows.first() {
            return r.get(0);
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    panic!("no session of {db} waits for the lock");
}

#[test]
fn postgres_dropping_the_connection_mid_request_is_a_503_and_applies_nothing() {
    let s = Served::new(Db::postgres());
    let Db::Postgres(name) = &s.db else {
        unreachable!()
    };
    let path = format!("/api/v1/findings/{}", s.fps[0]);
    // The triage waits on the row inside its transaction (its SELECT …
    // FOR UPDATE) when the server ends its session.
    let mut holder = hold_row_lock(name, &s.fps[0]);
    let (status, v) = std::thread::scope(|scope| {
        let req = scope.spawn(|| {
            s.patch(
                &path,
                Role::Triager,
                r#"{"status": "revoked", "assignee": "bob", "comment": "mid-flight"}"#,
            )
        });
        let pid = waiting_backend(name);
        let killed: bool = pg_admin()
            .query_one("SELECT pg_terminate_backend($1)", &[&pid])
            .unwrap()
            .get(0);
        assert!(killed);
        req.join().unwrap()
    });
    assert_eq!(status, 503, "{v}");
    assert_eq!(v["error"]["code"], "database_unavailable");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("rolled back"),
        "{v}"
    );
    holder.batch_execute("ROLLBACK").unwrap();
    // The next request works, and nothing of the change was applied.
    let (status, f) = s.get(&path, Role::Viewer);
    assert_eq!(status, 200, "{f}");
    assert_eq!(
        (
            f["status"].as_str(),
            f["assignee"].as_str(),
            f["version"].as_i64()
        ),
        (Some("open"), None, Some(1))
    );
    assert_eq!(f["history"]["audit"], json!([]));
    assert_eq!(f["history"]["comments"], json!([]));
    // The same for the bulk route: all or nothing.
    let mut holder = hold_row_lock(name, &s.fps[1]);
    let bulk = format!(
        r#"{{"fingerprints": ["{}", "{}"], "status": "revoked"}}"#,
        s.fps[0], s.fps[1]
    );
    let (status, v) = std::thread::scope(|scope| {
        let req = scope.spawn(|| s.post("/api/v1/findings/triage", Role::Triager, &bulk));
        let pid = waiting_backend(name);
        pg_admin()
            .execute("SELECT pg_terminate_backend($1)", &[&pid])
            .unwrap();
        req.join().unwrap()
    });
    assert_eq!(status, 503, "{v}");
    holder.batch_execute("ROLLBACK").unwrap();
    for fp in &s.fps[..2] {
        let (_, f) = s.get(&format!("/api/v1/findings/{fp}"), Role::Viewer);
        assert_eq!(
            (f["status"].as_str(), f["version"].as_i64()),
            (Some("open"), Some(1))
        );
    }
    // Sent again, it goes through.
    let (status, v) = s.post("/api/v1/findings/triage", Role::Triager, &bulk);
    assert_eq!(status, 200, "{v}");
}

#[test]
fn a_statement_past_the_timeout_is_a_503_and_applies_nothing() {
    let s = Served::with(
        Db::postgres(),
        keytrail_server::ServeOptions {
            statement_timeout: Some(std::time::Duration::from_millis(500)),
            ..keytrail_server::ServeOptions::default()
        },
    );
    let Db::Postgres(name) = &s.db else {
        unreachable!()
    };
    let path = format!("/api/v1/findings/{}", s.fps[0]);
    let mut holder = hold_row_lock(name, &s.fps[0]);
    let started = std::time::Instant::now();
    let (status, v) = s.patch(&path, Role::Triager, r#"{"status": "revoked"}"#);
    let took = started.elapsed();
    assert_eq!(status, 503, "{v}");
    assert_eq!(v["error"]["code"], "database_timeout");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("statement timeout"),
        "{v}"
    );
    assert!(
        took >= std::time::Duration::from_millis(500) && took < std::time::Duration::from_secs(10),
        "{took:?}"
    );
    holder.batch_execute("ROLLBACK").unwrap();
    let (status, f) = s.get(&path, Role::Viewer);
    assert_eq!(status, 200, "{f}");
    assert_eq!(
        (f["status"].as_str(), f["version"].as_i64()),
        (Some("open"), Some(1))
    );
    let (status, f) = s.patch(&path, Role::Triager, r#"{"status": "revoked"}"#);
    assert_eq!(status, 200, "{f}");
}

#[test]
fn a_revoked_token_and_its_sessions_get_401_at_once() {
    let s = Served::new(Db::sqlite());
    let mut b = Browser::new(&s);
    let csrf = b.login(s.token(Role::Triager));
    assert_eq!(b.get("/api/v1/me").0, 200);
    assert_eq!(s.get("/api/v1/me", Role::Triager).0, 200);
    let mut store = Store::open(&s.db.url()).unwrap();
    let id = store
        .tokens()
        .unwrap()
        .into_iter()
        .find(|t| t.name == "triager-bot")
        .unwrap()
        .id;
    let t = store.revoke_token(id, "alice").unwrap();
    assert_eq!(t.revoked_by.as_deref(), Some("alice"));
    assert!(t.revoked_at.is_some());
    // The next request, by token or by the session opened with it: 401.
    let (st, v) = s.get("/api/v1/me", Role::Triager);
    assert_eq!(st, 401, "{v}");
    assert_eq!(b.get("/api/v1/me").0, 401);
    let (st, v) = b.patch(
        &format!("/api/v1/findings/{}", s.fps[0]),
        Some(&csrf),
        r#"{"status": "revoked"}"#,
    );
    assert_eq!(st, 401, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("revoked"),
        "{v}"
    );
    // Other tokens are untouched; revoking again keeps the first revocation.
    assert_eq!(s.get("/api/v1/me", Role::Viewer).0, 200);
    let again = store.revoke_token(id, "bob").unwrap();
    assert_eq!(again, t);
    assert_eq!(
        store.revoke_token(9999, "bob").unwrap_err().kind,
        keytrail_store::ErrorKind::NotFound
    );
    assert_eq!(
        store.revoke_token(id, " ").unwrap_err().kind,
        keytrail_store::ErrorKind::Invalid
    );
}

both!(trends_count_each_finding_by_its_triage_as_of_each_point);
fn trends_count_each_finding_by_its_triage_as_of_each_point(db: Db) {
    let mut fake = keytrail_testkit::secrets::FakeSecrets::new(31);
    let findings: Vec<Finding> = (1..=3u8)
        .map(|n| {
            finding(
                &fake.github_classic(),
                &format!("{n}.env"),
                Severity::High,
                n,
            )
        })
        .collect();
    let mut store = Store::open(&db.url()).unwrap();
    // Recorded a week ago; triaged now: one a false positive, one revoked,
    // one acknowledged.
    let mut run = RunRecord::new("scan", "acme/api");
    run.started_at = "2026-11-30T00:00:00.000000Z".into();
    run.finished_at = "2026-11-30T00:00:01.000000Z".into();
    run.complete = true;
    store.record_run(&run, &findings, &|_| None).unwrap();
    for (f, status) in findings.iter().zip([
        keytrail_store::Status::FalsePositive,
        keytrail_store::Status::Revoked,
        keytrail_store::Status::Acknowledged,
    ]) {
        store
            .triage(
                &f.fingerprint.0,
                &keytrail_store::Triage {
                    actor: "alice".into(),
                    status: Some(status),
                    ..keytrail_store::Triage::default()
                },
            )
            .unwrap();
    }
    let token = store.create_token("viewer", Role::Viewer).unwrap();
    drop(store);
    let server = keytrail_server::spawn(&db.url(), "127.0.0.1:0".parse().unwrap()).unwrap();
    let mut resp = ureq::get(format!("http://{}/api/v1/trends", server.addr))
        .header("Authorization", format!("Bearer {token}"))
        .call()
        .unwrap();
    let v: Value = serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    let points = v["points"].as_array().unwrap();
    assert_eq!(points.len(), 2, "{v}");
    // A week ago all three were open: the triage made today does not
    // rewrite the past. Now only the acknowledged one counts.
    assert_eq!(points[0]["at"], "2026-11-30T00:00:01.000000Z");
    assert_eq!(points[0]["total"], 3, "{v}");
    assert_eq!(points[1]["total"], 1, "{v}");
}

#[test]
fn sessions_outlive_a_restart_and_are_shared_by_instances() {
    let s = Served::new(Db::sqlite());
    let mut b = Browser::new(&s);
    let csrf = b.login(s.token(Role::Triager));
    assert_eq!(b.get("/api/v1/me").0, 200);
    // A second instance on the same store knows the session (and its
    // CSRF token); the store holds its id only hashed.
    let other = keytrail_server::spawn(&s.db.url(), "127.0.0.1:0".parse().unwrap()).unwrap();
    let id = b.cookies["keytrail_session"].clone();
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    let mut r = agent
        .get(format!("http://{}/api/v1/me", other.addr))
        .header("Cookie", format!("keytrail_session={id}"))
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let me: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(
        (me["name"].as_str(), me["csrf"].as_str()),
        (Some("triager-bot"), Some(csrf.as_str()))
    );
    let Db::Sqlite(dir) = &s.db else {
        unreachable!()
    };
    let mut bytes = Vec::new();
    for e in std::fs::read_dir(dir.path()).unwrap() {
        bytes.extend(std::fs::read(e.unwrap().path()).unwrap());
    }
    assert!(
        !bytes.windows(id.len()).any(|w| w == id.as_bytes()),
        "the session id is stored"
    );
    // Logged out on one: gone on both.
    let (st, _, _) = b.post_form("/logout", &[("csrf", &csrf)]);
    assert_eq!(st, 303);
    let r = agent
        .get(format!("http://{}/api/v1/me", other.addr))
        .header("Cookie", format!("keytrail_session={id}"))
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
}

#[test]
fn session_cookies_are_secure_when_asked() {
    let db = Db::sqlite();
    let mut store = Store::open(&db.url()).unwrap();
    let token = store.create_token("alice", Role::Viewer).unwrap();
    drop(store);
    let server = keytrail_server::spawn_with(
        &db.url(),
        "127.0.0.1:0".parse().unwrap(),
        keytrail_server::ServeOptions {
            secure_cookies: true,
            ..keytrail_server::ServeOptions::default()
        },
    )
    .unwrap();
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .new_agent();
    let url = format!("http://{}/login", server.addr);
    let mut page = agent.get(&url).call().unwrap();
    let login_cookie = page
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(login_cookie.contains("; Secure"), "{login_cookie}");
    let text = page.body_mut().read_to_string().unwrap();
    let at = text.find("name=\"csrf\" value=\"").unwrap() + 19;
    let csrf = &text[at..at + 64];
    let r = agent
        .post(&url)
        .header("Cookie", login_cookie.split(';').next().unwrap())
        .send_form([("token", token.as_str()), ("csrf", csrf)])
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let session = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("keytrail_session="))
        .unwrap();
    for attr in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
        assert!(session.contains(attr), "{attr}: {session}");
    }
}

#[test]
fn login_attempts_are_limited_per_ip() {
    let s = Served::new(Db::sqlite());
    let mut b = Browser::new(&s);
    let limit = keytrail_server::LOGIN_ATTEMPTS;
    for i in 0..limit {
        let csrf = b.login_csrf();
        let (st, _, _) = b.post_form("/login", &[("token", "kttok_guess"), ("csrf", &csrf)]);
        assert_eq!(st, 401, "attempt {i}");
    }
    // Over the limit: 429 with Retry-After, even with the right token.
    let csrf = b.login_csrf();
    let (st, h, page) = b.post_form(
        "/login",
        &[("token", s.token(Role::Admin)), ("csrf", &csrf)],
    );
    assert_eq!(st, 429, "{page}");
    assert_eq!(h.get("retry-after").unwrap(), "60");
    assert!(page.contains("Too many login attempts"), "{page}");
    assert!(!b.cookies.contains_key("keytrail_session"));
    // Bearer tokens are not a login: the API still answers them.
    assert_eq!(s.get("/api/v1/me", Role::Viewer).0, 200);
}

#[test]
fn the_dashboard_is_embedded_and_locked_down() {
    let s = Served::new(Db::sqlite());
    let mut b = Browser::new(&s);
    for (path, kind) in [
        ("/", "text/html"),
        ("/login", "text/html"),
        ("/assets/app.js", "text/javascript"),
        ("/assets/style.css", "text/css"),
        ("/favicon.svg", "image/svg+xml"),
    ] {
        let (st, h, body) = b.get(path);
        assert_eq!(st, 200, "{path}");
        assert!(
            h.get("content-type")
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with(kind),
            "{path}"
        );
        let csp = h.get("content-security-policy").unwrap().to_str().unwrap();
        assert!(
            csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
            "{csp}"
        );
        assert_eq!(h.get("x-frame-options").unwrap(), "DENY");
        // Nothing from another origin: no CDN, no remote fonts (the SVG
        // namespace is a name, not a place).
        let body = body.replace("http://www.w3.org/2000/svg", "");
        assert!(
            !body.contains("http://") && !body.contains("https://"),
            "{path} loads something remote"
        );
    }
}

both!(inventory_and_the_trend_of_long_lived_secrets);
fn inventory_and_the_trend_of_long_lived_secrets(db: Db) {
    let s = Served::new(db);
    let key = |id: &str, owner: &str, env: &str| keytrail_store::Record {
        kind: "inventory".into(),
        fingerprint: format!("inv-{id}"),
        rule_id: "aws.iam.access_key".into(),
        title: id.into(),
        severity: Severity::Info,
        detail: json!({"id": id, "kind": "aws.iam.access_key", "name": id, "owner": owner, "environment": env}),
        owner: Some(owner.into()),
    };
    let role = keytrail_store::Record {
        rule_id: "aws.iam.role".into(),
        ..key("role/deploy", "platform", "prod")
    };
    let mut store = Store::open(&s.db.url()).unwrap();
    let mut first = RunRecord::new("inventory", "snap");
    first.complete = true;
    store
        .record_records_of(
            &first,
            "inventory",
            &[
                key("AKIA1", "payments", "prod"),
                key("AKIA2", "platform", "dev"),
                role.clone(),
            ],
        )
        .unwrap();
    // A later complete inventory no longer lists AKIA2: rotated away.
    let mut second = RunRecord::new("inventory", "snap");
    second.complete = true;
    second.started_at = keytrail_store::now();
    second.finished_at = second.started_at.clone();
    store
        .record_records_of(
            &second,
            "inventory",
            &[key("AKIA1", "payments", "prod"), role],
        )
        .unwrap();
    drop(store);
    let (st, inv) = s.get("/api/v1/inventory", Role::Viewer);
    assert_eq!(st, 200, "{inv}");
    let inv = inv["findings"].as_array().unwrap();
    assert_eq!(inv.len(), 3);
    assert!(
        inv.iter()
            .all(|f| f["kind"] == "inventory" && f["record"]["environment"].is_string())
    );
    let gone: Vec<_> = inv
        .iter()
        .filter(|f| !f["fixed_at"].is_null())
        .map(|f| f["title"].clone())
        .collect();
    assert_eq!(gone, [json!("AKIA2")]);
    let (st, t) = s.get("/api/v1/trends", Role::Viewer);
    assert_eq!(st, 200, "{t}");
    let points = t["points"].as_array().unwrap();
    // The scan's run, the two inventories, and now.
    assert_eq!(points.len(), 4, "{t}");
    // After the scan: its 3 secrets (owned by payments, no environment).
    assert_eq!(points[0]["total"], 3, "{t}");
    assert_eq!(points[0]["by_environment"]["unknown"], 3);
    // After the first inventory: + 2 keys (the role is not a credential).
    assert_eq!(points[1]["total"], 5, "{t}");
    assert_eq!(points[1]["by_owner"]["platform"], 1);
    assert_eq!(points[1]["by_environment"]["prod"], 1);
    // After the second: AKIA2 is gone.
    assert_eq!(points[2]["total"], 4, "{t}");
    assert_eq!(points[2]["by_owner"].get("platform"), None);
    // A secret triaged as a false positive now stops counting now, and
    // still counts at the points before (its triage as of each point).
    let (st, _) = s.patch(
        &format!("/api/v1/findings/{}", s.fps[0]),
        Role::Triager,
        r#"{"status": "false_positive"}"#,
    );
    assert_eq!(st, 200);
    let (_, t) = s.get("/api/v1/trends", Role::Viewer);
    assert_eq!(t["points"][3]["total"], 3, "{t}");
    assert_eq!(t["points"][0]["total"], 3, "{t}");
    // Newest first.
    let (_, page) = s.get("/api/v1/findings?order=newest&limit=2", Role::Viewer);
    let ids: Vec<i64> = page["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_i64().unwrap())
        .collect();
    assert!(ids[0] > ids[1], "{ids:?}");
    let (_, next) = s.get(
        &format!(
            "/api/v1/findings?order=newest&limit=2&after={}",
            page["next_after"]
        ),
        Role::Viewer,
    );
    assert!(next["findings"][0]["id"].as_i64().unwrap() < ids[1]);
}

/// A store at schema version 1 (before API tokens), with findings.
fn sqlite_at_schema_1() -> (Db, Vec<String>) {
    let db = Db::sqlite();
    let opts = keytrail_store::OpenOptions {
        schema_version: Some(1),
        ..keytrail_store::OpenOptions::default()
    };
    let mut store = Store::open_with(&db.url(), &opts).expect("open at version 1");
    assert_eq!(store.schema_version().unwrap(), 1);
    let mut fake = keytrail_testkit::secrets::FakeSecrets::new(31);
    let secrets: Vec<String> = (0..2).map(|_| fake.github_classic()).collect();
    let fs = vec![
        finding(&secrets[0], "a.env", Severity::High, 4),
        finding(&secrets[1], "b.env", Severity::Low, 5),
    ];
    store
        .record_run(&RunRecord::new("scan", "old/repo"), &fs, &|_| None)
        .unwrap();
    drop(store);
    (db, secrets)
}

#[test]
fn a_store_of_an_older_schema_is_upgraded_and_served_whole() {
    let (db, secrets) = sqlite_at_schema_1();
    // Serving opens it first: it is brought to the current schema (the
    // token table appears), its findings kept.
    let server = keytrail_server::spawn(&db.url(), "127.0.0.1:0".parse().unwrap()).expect("serve");
    let mut store = Store::open(&db.url()).unwrap();
    assert_eq!(
        store.schema_version().unwrap(),
        keytrail_store::SCHEMA_VERSION
    );
    let token = store.create_token("carol", Role::Viewer).unwrap();
    drop(store);
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    let mut r = agent
        .get(format!("http://{}/api/v1/findings", server.addr))
        .header("Authorization", format!("Bearer {token}"))
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let text = r.body_mut().read_to_string().unwrap();
    for s in &secrets {
        assert!(!text.contains(s.as_str()));
    }
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["findings"].as_array().unwrap().len(), 2, "{v}");
}

#[test]
fn a_newer_corrupt_or_foreign_store_is_refused_before_listening() {
    let dir = tempfile::tempdir().unwrap();
    // Corrupt: the file is named, left as it is, and nothing listens.
    let corrupt = dir.path().join("corrupt.db");
    let junk: Vec<u8> = (0..8192u32).map(|i| (i * 7 + 3) as u8).collect();
    std::fs::write(&corrupt, &junk).unwrap();
    let err = keytrail_server::spawn(corrupt.to_str().unwrap(), "127.0.0.1:0".parse().unwrap())
        .err()
        .expect("a corrupt file is refused");
    assert!(err.contains("corrupt.db"), "{err}");
    assert_eq!(
        std::fs::read(&corrupt).unwrap(),
        junk,
        "the file is untouched"
    );
    // Newer than this keytrail: refused, named, untouched.
    let newer = dir.path().join("newer.db");
    drop(Store::open(newer.to_str().unwrap()).unwrap());
    let status = std::process::Command::new("sqlite3")
        .arg(&newer)
        .arg("UPDATE keytrail_meta SET value = '999' WHERE key = 'schema_version'")
        .status()
        .expect("sqlite3 is not installed: run scripts/install-test-deps.sh");
    assert!(status.success());
    let err = keytrail_server::spawn(newer.to_str().unwrap(), "127.0.0.1:0".parse().unwrap())
        .err()
        .expect("a newer schema is refused");
    assert!(err.contains("999") && err.contains("newer.db"), "{err}");
}

#[test]
fn a_locked_sqlite_store_is_a_503_and_loses_nothing() {
    let s = Served::new(Db::sqlite());
    let path = format!("/api/v1/findings/{}", s.fps[0]);
    // Another process (the sqlite3 shell) holds the write lock until its
    // standard input closes.
    let mut holder = std::process::Command::new("sqlite3")
        .arg(s.db.url())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sqlite3 is not installed: run scripts/install-test-deps.sh");
    {
        use std::io::{BufRead, Write};
        let stdin = holder.stdin.as_mut().unwrap();
        stdin
            .write_all(
                b"BEGIN IMMEDIATE; INSERT INTO keytrail_meta VALUES ('held', 'x'); SELECT 'locked';\n",
            )
            .unwrap();
        stdin.flush().unwrap();
        let mut line = String::new();
        std::io::BufReader::new(holder.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "locked");
    }
    // Reading goes on (WAL); a triage waits for the lock, then is refused
    // with 503 naming the lock, nothing written.
    let (status, _) = s.get(&path, Role::Viewer);
    assert_eq!(status, 200);
    let t0 = std::time::Instant::now();
    let (status, v) = s.patch(&path, Role::Triager, r#"{"status": "revoked"}"#);
    assert_eq!(status, 503, "{v}");
    assert_eq!(v["error"]["code"], "database_locked", "{v}");
    assert!(
        t0.elapsed() >= std::time::Duration::from_secs(4),
        "it waited for the lock"
    );
    drop(holder.stdin.take());
    let _ = holder.wait();
    let (_, f) = s.get(&path, Role::Viewer);
    assert_eq!(
        (f["status"].as_str(), f["version"].as_i64()),
        (Some("open"), Some(1))
    );
    let (status, f) = s.patch(
        &path,
        Role::Triager,
        r#"{"status": "revoked", "if_version": 1}"#,
    );
    assert_eq!(status, 200, "{f}");
}

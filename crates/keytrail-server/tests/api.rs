//! `keytrail serve`'s API over loopback, against SQLite and PostgreSQL:
//! 401 and 403 on every route for every role, filters and paging, a
//! finding with its locations and history, triage by PATCH (concurrent
//! triagers, stale versions refused with 409), parameters and bodies that
//! are wrong (400 naming them), the database going away (503 JSON, nothing
//! lost), and that no response holds a secret. PostgreSQL is the local
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
        // Distinct fingerprints that share no 6-digit prefix.
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
    fps: Vec<String>,
    agent: ureq::Agent,
}

impl Served {
    fn new(db: Db) -> Served {
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
        drop(store);
        let server =
            keytrail_server::spawn(&db.url(), "127.0.0.1:0".parse().unwrap()).expect("serve");
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
            fps: findings.iter().map(|f| f.fingerprint.0.clone()).collect(),
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
}

/// Every route of the API with the role it needs (the OpenAPI document is
/// public). A new route goes here, in the router and in openapi.json.
fn routes(fp: &str) -> Vec<(&'static str, String, Role)> {
    vec![
        ("GET", "/api/v1/me".into(), Role::Viewer),
        ("GET", "/api/v1/findings".into(), Role::Viewer),
        ("GET", format!("/api/v1/findings/{fp}"), Role::Viewer),
        ("PATCH", format!("/api/v1/findings/{fp}"), Role::Triager),
        ("GET", "/api/v1/posture".into(), Role::Viewer),
        ("GET", "/api/v1/alerts".into(), Role::Viewer),
        ("GET", "/api/v1/exposure".into(), Role::Viewer),
        ("GET", "/api/v1/runs".into(), Role::Viewer),
    ]
}

both!(every_route_answers_401_without_a_token_and_403_without_its_role);
fn every_route_answers_401_without_a_token_and_403_without_its_role(db: Db) {
    let s = Served::new(db);
    let body = r#"{"comment": "looked at it"}"#;
    let fp = s.fps[0].clone();
    for (method, path, need) in routes(&fp) {
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
    assert_eq!(actors, ["triager-bot", "admin-bot"]);
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

both!(a_finding_has_its_locations_and_its_triage_history);
fn a_finding_has_its_locations_and_its_triage_history(db: Db) {
    let s = Served::new(db);
    let path = format!("/api/v1/findings/{}", &s.fps[0][..8]);
    let (status, f) = s.get(&path, Role::Viewer);
    assert_eq!(status, 200, "a unique prefix will do: {f}");
    assert_eq!(f["fingerprint"], s.fps[0].as_str());
    assert_eq!(f["locations"][0]["path"], "config/app.env");
    assert_eq!(f["locations"][0]["line"], 3);
    assert_eq!(f["notes"], json!(["checksum valid"]));
    assert_eq!(f["history"]["audit"], json!([]));
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
            Some(r#"{"comment": "x"}"#),
        );
        assert!(
            status == 503 || status == 500,
            "{method} {path}: {status} {v}"
        );
    }
}

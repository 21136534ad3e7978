//! The dashboard end to end in headless Chromium, driven over WebDriver
//! (chromedriver; Debian's `chromium` and `chromium-driver`, installed by
//! scripts/install-test-deps.sh): a store filled by real `keytrail scan`,
//! `inventory`, `posture`, `exposure` and `detect` runs with `--db`, served
//! by `keytrail serve` on loopback; a triager logs in, reads the overview,
//! filters the findings, opens a credential, triages it, triages two in
//! bulk; a viewer cannot triage. A screenshot of each step is saved under
//! the target directory (its path is printed). A missing browser or
//! driver fails the test.

use crate::CliTest;
use base64::Engine;
use keytrail_testkit::exposure::write_exposure_scenario;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process killed when dropped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A WebDriver session of chromedriver (the W3C protocol: JSON over HTTP).
struct Driver {
    base: String,
    agent: ureq::Agent,
    shots: PathBuf,
    step: usize,
    _chromedriver: Guard,
}

impl Driver {
    fn start(shots: PathBuf) -> Driver {
        let chromium = ["chromium", "chromium-browser"]
            .into_iter()
            .find_map(|b| {
                let out = Command::new("sh")
                    .args(["-c", &format!("command -v {b}")])
                    .output()
                    .ok()?;
                out.status
                    .success()
                    .then(|| String::from_utf8(out.stdout).unwrap().trim().to_string())
            })
            .expect("chromium is not installed: run scripts/install-test-deps.sh (apt-get install chromium chromium-driver)");
        let port = free_port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver is not installed: run scripts/install-test-deps.sh (apt-get install chromium-driver)");
        let guard = Guard(child);
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .new_agent();
        let base = format!("http://127.0.0.1:{port}");
        let t0 = Instant::now();
        while agent.get(format!("{base}/status")).call().is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut d = Driver {
            base,
            agent,
            shots,
            step: 0,
            _chromedriver: guard,
        };
        let v = d.send(
            "POST",
            "/session",
            json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": chromium,
                    "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                             "--window-size=1440,1000", "--force-prefers-reduced-motion",
                             "--no-first-run", "--disable-extensions", "--disable-background-networking"]
                }
            }}}),
        );
        let id = v["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {v}"));
        d.base = format!("{}/session/{id}", d.base);
        d
    }

    fn send(&mut self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.base);
        let resp = match method {
            "GET" => self.agent.get(&url).call(),
            "DELETE" => self.agent.delete(&url).call(),
            _ => self.agent.post(&url).send_json(&body),
        };
        let mut resp = resp.unwrap_or_else(|e| panic!("webdriver {method} {path}: {e}"));
        let status = resp.status().as_u16();
        let v: Value = resp.body_mut().read_json().unwrap();
        assert!(status < 300, "webdriver {method} {path}: {status} {v}");
        v["value"].clone()
    }

    fn goto(&mut self, url: &str) {
        self.send("POST", "/url", json!({"url": url}));
    }

    fn script(&mut self, js: &str, args: Value) -> Value {
        self.send("POST", "/execute/sync", json!({"script": js, "args": args}))
    }

    /// Wait until `js` (a function body) returns true.
    fn wait(&mut self, what: &str, js: &str) {
        let t0 = Instant::now();
        loop {
            if self.script(js, json!([])) == json!(true) {
                return;
            }
            if t0.elapsed() > Duration::from_secs(20) {
                let seen = self.script(
                    "return [location.href, document.getElementById('toast') && document.getElementById('toast').innerText, \
                     document.querySelector('main') && document.querySelector('main').innerText.slice(0, 200), document.querySelector('#bulk-apply') && document.querySelector('#bulk-apply').disabled];",
                    json!([]),
                );
                panic!("timed out waiting for {what}; the page: {seen}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Wait for the app to have rendered route `path`.
    fn ready(&mut self, path: &str) {
        self.wait(
            path,
            &format!("return document.body.dataset.ready === {};", json!(path)),
        );
    }

    fn find(&mut self, css: &str) -> String {
        let v = self.send(
            "POST",
            "/element",
            json!({"using": "css selector", "value": css}),
        );
        v.as_object()
            .and_then(|o| o.values().next())
            .and_then(|e| e.as_str())
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_string()
    }

    fn click(&mut self, css: &str) {
        let e = self.find(css);
        self.send("POST", &format!("/element/{e}/click"), json!({}));
    }

    fn type_in(&mut self, css: &str, text: &str) {
        let e = self.find(css);
        self.send("POST", &format!("/element/{e}/clear"), json!({}));
        self.send(
            "POST",
            &format!("/element/{e}/value"),
            json!({"text": text}),
        );
    }

    fn select(&mut self, css: &str, value: &str) {
        self.click(&format!("{css} option[value=\"{value}\"]"));
    }

    fn text(&mut self, css: &str) -> String {
        self.script(
            "const e = document.querySelector(arguments[0]); return e ? e.innerText : null;",
            json!([css]),
        )
        .as_str()
        .unwrap_or_else(|| panic!("no element {css}"))
        .to_string()
    }

    fn exists(&mut self, css: &str) -> bool {
        self.script(
            "return !!document.querySelector(arguments[0]);",
            json!([css]),
        ) == json!(true)
    }

    /// Save a screenshot of the page as NN-name.png.
    fn shot(&mut self, name: &str) -> PathBuf {
        self.step += 1;
        // Full height: the page's own, as far as 4000 px.
        let h = self
            .script(
                "return Math.min(4000, document.documentElement.scrollHeight);",
                json!([]),
            )
            .as_i64()
            .unwrap_or(1000);
        self.send(
            "POST",
            "/window/rect",
            json!({"width": 1440, "height": h.max(900) + 140}),
        );
        let png = self.send("GET", "/screenshot", json!({}));
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        let path = self.shots.join(format!("{:02}-{name}.png", self.step));
        std::fs::write(&path, bytes).unwrap();
        self.send(
            "POST",
            "/window/rect",
            json!({"width": 1440, "height": 1000}),
        );
        path
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.agent.delete(&self.base).call();
    }
}

/// Where the screenshots go: under the target directory.
fn shots_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/cli-… → target/
    let target = exe
        .ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .unwrap_or_else(std::env::temp_dir);
    let dir = target.join("dashboard-screenshots");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn ok(r: &crate::Run, codes: &[i32], what: &str) {
    assert!(codes.contains(&r.code), "{what}: {r:?}");
}

#[test]
fn dashboard_end_to_end_in_headless_chromium() {
    let t = CliTest::new();
    let sc = write_exposure_scenario(&t.root().join("sc"), 5).expect("scenario");
    let repo = sc.repo.to_str().unwrap();
    let snap = sc.snapshot.to_str().unwrap();
    let owners = sc.owners.to_str().unwrap();
    let trail = sc.trail.to_str().unwrap();
    // The store, filled by the commands themselves.
    ok(
        &t.run(&[
            "scan",
            "--db",
            "k.db",
            "--format",
            "json",
            "-o",
            "findings.json",
            repo,
        ]),
        &[1],
        "scan",
    );
    ok(
        &t.run(&[
            "inventory",
            "--snapshot",
            snap,
            "--owners",
            owners,
            "--db",
            "k.db",
        ]),
        &[0, 1],
        "inventory",
    );
    ok(
        &t.run(&[
            "posture",
            "--snapshot",
            snap,
            "--owners",
            owners,
            "--db",
            "k.db",
        ]),
        &[0, 1],
        "posture",
    );
    ok(
        &t.run(&[
            "exposure",
            "--findings",
            "findings.json",
            "--snapshot",
            snap,
            "--cloudtrail",
            trail,
            "--owners",
            owners,
            "--threads",
            "2",
            "--db",
            "k.db",
        ]),
        &[0, 1],
        "exposure",
    );
    ok(
        &t.run(&["detect", "--db", "k.db", trail]),
        &[0, 1],
        "detect",
    );
    // Jobs and a worker, as `keytrail submit` and `keytrail worker` record
    // them (the queue itself is tested in worker.rs).
    {
        let mut st = keytrail_store::Store::open(t.root().join("k.db").to_str().unwrap()).unwrap();
        for (key, target) in [
            ("scan-done", "/srv/repos/billing"),
            ("scan-failed", "/srv/repos/gone"),
            ("scan-queued", "https://git.example/acme/web.git"),
        ] {
            st.submit_job(&keytrail_store::NewJob {
                job_key: key.into(),
                kind: "scan".into(),
                target: target.into(),
            })
            .unwrap();
        }
        st.job_started("scan-done", "scanner-1", 1).unwrap();
        st.job_done("scan-done", "scanner-1").unwrap();
        st.job_started("scan-failed", "scanner-1", 3).unwrap();
        st.job_failed(
            "scan-failed",
            "scanner-1",
            3,
            "`/srv/repos/gone` could not be read",
            true,
        )
        .unwrap();
    }
    let token = |role: &str, name: &str| {
        let r = t.run(&[
            "token", "create", "--db", "k.db", "--role", role, "--name", name,
        ]);
        ok(&r, &[0], "token create");
        r.stdout.trim().to_string()
    };
    let triager = token("triager", "alice");
    let viewer = token("viewer", "bob");

    let mut server = Guard(
        t.command(&["serve", "--db", "k.db", "--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start keytrail serve"),
    );
    let mut line = String::new();
    BufReader::new(server.0.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let api = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in: {line}"));
    let base = api.trim_end_matches("/api/v1").to_string();

    let shots = shots_dir();
    println!("dashboard screenshots: {}", shots.display());
    let mut d = Driver::start(shots.clone());

    // Log in as the triager.
    d.goto(&format!("{base}/login"));
    d.wait(
        "the login form",
        "return !!document.querySelector('#token');",
    );
    d.shot("login");
    d.type_in("#token", &triager);
    d.click("#login");
    d.ready("/");
    assert!(d.text("#who").contains("alice · triager"));
    let long_lived: i64 = d.text("#kpi-long-lived").trim().parse().unwrap();
    assert!(long_lived > 0, "the overview counts long-lived secrets");
    d.shot("overview");

    // Findings: all secrets, then filtered to critical.
    d.goto(&format!("{base}/#/findings"));
    d.ready("/findings");
    let all_rows = d.script(
        "return document.querySelectorAll('#findings-table tbody tr').length;",
        json!([]),
    );
    d.select("#f-severity", "critical");
    d.click("#apply-filters");
    d.wait(
        "the filtered list",
        "return (document.body.dataset.hash || '').includes('min_severity=critical');",
    );
    let rows = d.script(
        "return document.querySelectorAll('#findings-table tbody tr').length;",
        json!([]),
    );
    assert!(rows.as_i64().unwrap() >= 1, "critical findings listed");
    let sev = d.script(
        "return [...document.querySelectorAll('#findings-table tbody .sev')].every(e => e.textContent === 'critical');",
        json!([]),
    );
    assert_eq!(sev, json!(true), "the filter holds");
    assert!(all_rows.as_i64() >= rows.as_i64());
    d.shot("findings-filtered");

    // One credential: every place it lives, its exposure timeline.
    d.click("#findings-table tbody tr a");
    d.wait(
        "the credential page",
        "return (document.body.dataset.ready || '').startsWith('/finding/');",
    );
    let fp = d.script("return location.hash.split('/')[2];", json!([]));
    let fp = fp.as_str().unwrap().to_string();
    assert!(d.text("main").contains("Every place it lives"));
    assert!(d.exists("#timeline li"));
    d.shot("credential");

    // Triage it: revoked, with a comment.
    d.select("#t-status", "revoked");
    d.type_in("#t-comment", "rotated by the dashboard test");
    d.click("#t-save");
    d.wait("the triage", "return document.querySelector('#status') && document.querySelector('#status').innerText.includes('revoked');");
    assert!(d.text("#timeline").contains("alice set status"));
    d.shot("credential-triaged");

    // Bulk triage: the first two open secrets acknowledged.
    d.goto(&format!("{base}/#/findings?kind=secret&status=open"));
    d.wait(
        "the open secrets",
        "return document.body.dataset.hash === '#/findings?kind=secret&status=open';",
    );
    d.click("#findings-table tbody tr:nth-child(1) input.pick");
    d.click("#findings-table tbody tr:nth-child(2) input.pick");
    assert_eq!(d.text("#selected-count"), "2 selected");
    d.select("#bulk-status", "acknowledged");
    d.type_in("#bulk-assignee", "carol");
    d.shot("bulk-selected");
    d.click("#bulk-apply");
    d.wait(
        "the bulk triage",
        "return document.getElementById('toast').innerText.includes('2 finding(s) set to acknowledged');",
    );
    d.shot("bulk-done");
    // One request changed both (POST /api/v1/findings/triage): in the
    // store, two acknowledged secrets assigned to carol, each audited as alice.
    let r = t.run(&["findings", "--db", "k.db", "--status", "acknowledged"]);
    let acked: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut fps: Vec<&str> = acked
        .iter()
        .filter(|v| v["store"]["assignee"] == "carol")
        .map(|v| v["fingerprint"].as_str().unwrap())
        .collect();
    fps.dedup();
    assert_eq!(fps.len(), 2, "{}", r.stdout);
    for fp in fps {
        let r = t.run(&["triage", "--db", "k.db", fp]);
        assert!(
            r.stdout
                .lines()
                .any(|l| l.contains("\"actor\":\"alice\"")
                    && l.contains("\"after\":\"acknowledged\"")),
            "{}",
            r.stdout
        );
    }

    // Inventory and posture.
    d.goto(&format!("{base}/#/inventory"));
    d.ready("/inventory");
    assert!(d.text("main").contains("aws.iam.access_key"));
    d.shot("inventory");
    d.goto(&format!("{base}/#/posture"));
    d.ready("/posture");
    d.shot("posture");

    // Jobs and workers (the worker's heartbeat just now: alive).
    {
        let mut st = keytrail_store::Store::open(t.root().join("k.db").to_str().unwrap()).unwrap();
        let now = keytrail_store::now();
        st.worker_beat("scanner-1", "build-host", 4242, &now, None)
            .unwrap();
    }
    d.goto(&format!("{base}/#/jobs"));
    d.ready("/jobs");
    for (id, n) in [
        ("#jobs-queued", "1"),
        ("#jobs-running", "0"),
        ("#jobs-done", "1"),
        ("#jobs-failed", "1"),
    ] {
        assert_eq!(d.text(id), n, "{id}");
    }
    let main = d.text("main");
    let badges = d.script(
        "return [...document.querySelectorAll('main .badge')].map(b => b.textContent);",
        json!([]),
    );
    for b in ["alive", "done", "failed", "queued"] {
        assert!(
            badges.as_array().unwrap().contains(&json!(b)),
            "no `{b}` badge: {badges}"
        );
    }
    for expected in [
        "scanner-1",
        "build-host",
        "/srv/repos/billing",
        "https://git.example/acme/web.git",
        "could not be read",
    ] {
        assert!(
            main.contains(expected),
            "{expected} not on the jobs page: {main}"
        );
    }
    d.shot("jobs");

    // The viewer: no triage controls, and the API refuses a triage even with the CSRF token.
    d.click("#logout-form button");
    d.wait("the login page", "return location.pathname === '/login';");
    d.type_in("#token", &viewer);
    d.click("#login");
    d.ready("/");
    d.goto(&format!("{base}/#/finding/{fp}"));
    d.wait(
        "the credential page",
        "return (document.body.dataset.ready || '').startsWith('/finding/');",
    );
    assert!(d.exists("#read-only") && !d.exists("#triage-form"));
    let status = d.script(
        "const done = arguments[0]; \
         fetch('/api/v1/me').then(r => r.json()).then(me => fetch('/api/v1/findings/' + location.hash.split('/')[2], \
           {method: 'PATCH', headers: {'Content-Type': 'application/json', 'X-CSRF-Token': me.csrf}, body: '{\"status\":\"open\"}'})) \
         .then(r => { window.__status = r.status; });",
        json!([]),
    );
    let _ = status;
    d.wait(
        "the viewer's refused PATCH",
        "return window.__status !== undefined;",
    );
    assert_eq!(d.script("return window.__status;", json!([])), json!(403));
    d.shot("viewer-read-only");
    d.goto(&format!("{base}/#/findings"));
    d.ready("/findings");
    assert!(!d.exists("#bulk"));

    // The triages are in the store, with alice as the actor; the revoked one kept.
    let r = t.run(&[
        "findings", "--db", "k.db", "--status", "revoked", "--format", "jsonl",
    ]);
    assert!(r.stdout.contains(&fp[..12]), "{r:?}");
    let r = t.run(&[
        "findings",
        "--db",
        "k.db",
        "--assignee",
        "carol",
        "--format",
        "jsonl",
    ]);
    assert!(r.stdout.lines().count() >= 2, "{r:?}");
    drop(d);
    let _ = server.0.kill();
    println!("dashboard screenshots: {}", shots.display());
}

//! Google Workspace audit logs: the same activities read from a Reports API
//! response (pretty-printed, and on one line as `curl` writes it) and from Cloud
//! Logging (Workspace audit logs shared with Google Cloud) become the same events,
//! raise the same alerts (the SigmaHQ Workspace rules, a password spray and the
//! sign-in after it), and the look-alikes stay quiet.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use keytrail_detect::engine::{EngineBuilder, detect_path};
use keytrail_detect::event::{Event, Provider};
use keytrail_testkit::cloudlogs::{
    OFFICE_IP, SPRAY_IP, WORKSPACE_CUSTOMER, workspace_activity, workspace_log_entry,
};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::{Value, json};

const START: i64 = 1_709_510_400_000; // 2024-03-04T00:00:00Z
const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

/// One activity: time, application, actor, address, event type, name, parameters.
type Activity = (
    i64,
    &'static str,
    String,
    &'static str,
    &'static str,
    &'static str,
    Vec<(&'static str, Value)>,
);

fn user(name: &str) -> String {
    format!("{name}@corp.example")
}

fn scenario() -> Vec<Activity> {
    let mut v: Vec<Activity> = Vec::new();
    let people = ["alice", "bob", "carol", "dan", "erin"];
    let login = |t, who: &str, ip, name: &'static str| -> Activity {
        (
            t,
            "login",
            user(who),
            ip,
            "login",
            name,
            vec![("login_type", json!("google_password"))],
        )
    };
    // Three days of people signing in at the office.
    for d in 0..3 {
        for (i, p) in people.iter().enumerate() {
            v.push(login(
                START + d * DAY + 8 * HOUR + i as i64 * 60_000,
                p,
                OFFICE_IP,
                "login_success",
            ));
        }
    }
    // Look-alike: three people mistype at the office, then sign in.
    for (i, p) in people[..3].iter().enumerate() {
        let t = START + DAY + 13 * HOUR + i as i64 * 120_000;
        v.push(login(t, p, OFFICE_IP, "login_failure"));
        v.push(login(t + 30_000, p, OFFICE_IP, "login_success"));
    }
    // Look-alike: the administrator turns 2-step verification enforcement on.
    let mfa = |t, on: bool| -> Activity {
        (
            t,
            "admin",
            user("admin"),
            OFFICE_IP,
            "SECURITY_SETTINGS",
            "ENFORCE_STRONG_AUTHENTICATION",
            vec![
                ("ORG_UNIT_NAME", json!("corp.example")),
                ("NEW_VALUE", json!(if on { "true" } else { "false" })),
                ("OLD_VALUE", json!(if on { "false" } else { "true" })),
            ],
        )
    };
    v.push(mfa(START + DAY + 15 * HOUR, true));
    // The attack: a spray over seven accounts, Bob's password works, Google flags
    // the login, Bob's mail is forwarded out, enforcement is turned off and Bob is
    // made an administrator.
    let t0 = START + 2 * DAY + 10 * HOUR;
    for (i, p) in ["root", "test", "backup", "alice", "carol", "dan", "erin"]
        .iter()
        .enumerate()
    {
        v.push(login(t0 + i as i64 * 20_000, p, SPRAY_IP, "login_failure"));
    }
    v.push(login(t0 + 5 * 60_000, "bob", SPRAY_IP, "login_success"));
    v.push((
        t0 + 6 * 60_000,
        "login",
        user("bob"),
        SPRAY_IP,
        "account_warning",
        "suspicious_login",
        vec![("affected_email_address", json!(user("bob")))],
    ));
    v.push((
        t0 + 12 * 60_000,
        "login",
        user("bob"),
        SPRAY_IP,
        "account_warning",
        "email_forwarding_out_of_domain",
        vec![
            ("affected_email_address", json!(user("bob"))),
            (
                "email_forwarding_destination_address",
                json!("drop@mail.example"),
            ),
        ],
    ));
    v.push(mfa(t0 + 20 * 60_000, false));
    v.push((
        t0 + 22 * 60_000,
        "admin",
        user("admin"),
        OFFICE_IP,
        "DELEGATED_ADMIN_SETTINGS",
        "GRANT_ADMIN_PRIVILEGE",
        vec![("USER_EMAIL", json!(user("bob")))],
    ));
    v.sort_by_key(|a| a.0);
    v
}

/// The scenario as a Reports API response, pretty or on one line, and as Cloud
/// Logging entries (one per line).
fn write_all(dir: &Path) -> Vec<(&'static str, std::path::PathBuf)> {
    let acts = scenario();
    let mut rng = StdRng::seed_from_u64(5);
    let items: Vec<Value> = acts
        .iter()
        .map(|(t, app, who, ip, ty, name, params)| {
            workspace_activity(&mut rng, *t, app, who, ip, ty, name, params)
        })
        .collect();
    let response = json!({"kind": "admin#reports#activities", "etag": "\"x\"", "items": items, "nextPageToken": "A:1"});
    let logging: String = acts
        .iter()
        .map(|(t, app, who, ip, ty, name, params)| {
            workspace_log_entry(&mut rng, *t, app, who, ip, ty, name, params).to_string() + "\n"
        })
        .collect();
    let files = [
        (
            "reports-pretty",
            serde_json::to_string_pretty(&response).unwrap(),
        ),
        ("reports-one-line", response.to_string()),
        ("cloud-logging", logging),
    ];
    files
        .into_iter()
        .map(|(name, text)| {
            let p = dir.join(format!("{name}.json"));
            std::fs::write(&p, text).unwrap();
            (name, p)
        })
        .collect()
}

fn summary(e: &Event) -> (i64, String, String, String) {
    (
        e.time_ms,
        e.principal().to_string(),
        e.source_ip().to_string(),
        e.event_source().to_string(),
    )
}

#[test]
fn reports_api_and_cloud_logging_read_alike_and_the_attack_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_all(dir.path());
    let n = scenario().len();
    let b = EngineBuilder::new()
        .ipintel(common::ipintel())
        .builtin_sigma(true);
    let mut results = Vec::new();
    for (name, path) in &files {
        let items: Vec<_> = keytrail_detect::reader::read_path(path).collect();
        let errors: Vec<_> = items.iter().filter_map(|r| r.as_ref().err()).collect();
        assert!(errors.is_empty(), "{name}: {errors:?}");
        let events: Vec<Event> = items.into_iter().filter_map(Result::ok).collect();
        assert_eq!(events.len(), n, "{name}");
        assert!(
            events.iter().all(|e| e.provider() == Provider::Gcp),
            "{name}"
        );
        let login = events
            .iter()
            .find(|e| e.source_ip() == SPRAY_IP && e.principal() == "bob@corp.example")
            .expect("Bob's login from the spraying address");
        assert_eq!(login.event_source(), "login.googleapis.com", "{name}");
        let mut seen: Vec<_> = events.iter().map(summary).collect();
        seen.sort();
        let (alerts, stats) = detect_path(&b, path);
        assert_eq!(stats.events as usize, n, "{name}");
        let fired: BTreeSet<(String, String)> = alerts
            .iter()
            .map(|a| (a.title.clone(), a.principal.clone()))
            .collect();
        results.push((name, seen, fired, alerts));
    }
    // The three shapes give the same events and the same alerts.
    for r in &results[1..] {
        assert_eq!(
            r.1, results[0].1,
            "{} and {} read differently",
            r.0, results[0].0
        );
        assert_eq!(
            r.2, results[0].2,
            "{} and {} alert differently",
            r.0, results[0].0
        );
    }
    let (_, _, fired, alerts) = &results[0];
    for (title, who) in [
        (
            "One address failed sign-ins for many accounts (password spray or credential stuffing)",
            "carol@corp.example",
        ),
        (
            "Sign-in, or a correct password stopped only by MFA or Conditional Access, from an address that sprayed passwords",
            "bob@corp.example",
        ),
        (
            "Suspicious Login Activity Classified By Google",
            "bob@corp.example",
        ),
        (
            "Google Workspace Out Of Domain Email Forwarding",
            "bob@corp.example",
        ),
        ("Google Workspace MFA Disabled", "admin@corp.example"),
        (
            "Google Workspace User Granted Admin Privileges",
            "admin@corp.example",
        ),
    ] {
        assert!(
            fired.contains(&(title.to_string(), who.to_string())),
            "{title} on {who} did not fire: {fired:#?}"
        );
    }
    let spray = alerts
        .iter()
        .find(|a| a.rule_id == "keytrail.gcp.credential-access.password-spray")
        .unwrap();
    assert!(
        spray.explanation.contains(SPRAY_IP),
        "{}",
        spray.explanation
    );
    // Look-alikes: enforcement turned on, people mistyping at the office.
    let mfa: Vec<_> = alerts
        .iter()
        .filter(|a| a.title == "Google Workspace MFA Disabled")
        .collect();
    assert_eq!(mfa.len(), 1, "{mfa:#?}");
    assert!(
        mfa[0].time_ms > START + 2 * DAY,
        "the turn-on a day earlier is quiet"
    );
    assert!(
        alerts
            .iter()
            .filter(|a| a.rule_id.contains("password-spray"))
            .all(|a| a.source_ips.iter().all(|ip| ip == SPRAY_IP)),
        "{alerts:#?}"
    );
    // The customer is the account.
    let ev: Vec<Event> =
        keytrail_detect::reader::read_path(&results_path(&files, "reports-pretty"))
            .filter_map(Result::ok)
            .collect();
    assert!(
        ev.iter()
            .all(|e| e.recipient_account() == WORKSPACE_CUSTOMER)
    );
}

fn results_path(files: &[(&str, std::path::PathBuf)], name: &str) -> std::path::PathBuf {
    files.iter().find(|(n, _)| *n == name).unwrap().1.clone()
}

#[test]
fn every_workspace_rule_loads_and_none_is_skipped() {
    let b = EngineBuilder::new().builtin_sigma(true);
    let (_, diags) = b.build_shared();
    let skipped: Vec<_> = diags
        .iter()
        .filter(|d| d.subject.contains("gworkspace"))
        .collect();
    assert!(skipped.is_empty(), "{skipped:#?}");
}

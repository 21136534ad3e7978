//! Scheduled runs with `--state` on CloudTrail as S3 delivers it: files already read
//! are skipped, re-running the same day raises no alert twice, late files are read,
//! and the state stays bounded.

use std::path::PathBuf;
use std::sync::OnceLock;

use keytrail_detect::engine::{EngineBuilder, run_parallel};
use keytrail_detect::reader::{key_time, list_files};
use keytrail_testkit::cloudtrail::{ActivityConfig, Layout, write_activity};

/// Three weeks of a small account as S3 delivers it, generated once for these tests.
fn tree() -> &'static [PathBuf] {
    static TREE: OnceLock<(tempfile::TempDir, Vec<PathBuf>)> = OnceLock::new();
    &TREE
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let cfg = ActivityConfig {
                servers: 4,
                humans: 2,
                ci: 2,
                rate: 0.3,
                layout: Layout::S3 { org: None },
                ..ActivityConfig::default()
            };
            write_activity(&cfg, dir.path()).unwrap();
            let (files, diags) = list_files(&[dir.path().to_path_buf()]);
            assert!(diags.is_empty());
            (dir, files)
        })
        .1
}

/// Files delivered before `day` (days after the first file).
fn until(files: &[PathBuf], day: i64) -> Vec<PathBuf> {
    let first = files.iter().filter_map(|f| key_time(f)).min().unwrap();
    files
        .iter()
        .filter(|f| key_time(f).unwrap() < first + day * 86_400_000)
        .cloned()
        .collect()
}

fn ids(alerts: &[keytrail_detect::Alert]) -> Vec<String> {
    let mut v: Vec<String> = alerts.iter().map(|a| a.id.clone()).collect();
    v.sort();
    v
}

#[test]
fn daily_runs_read_each_file_once_and_raise_each_alert_once() {
    let files = tree();
    // One run over everything: the reference.
    let b0 = EngineBuilder::new();
    let (all, all_stats) = run_parallel(&b0, b0.build_shared().0, files, 1);
    assert!(!all.is_empty());

    // Daily runs over the growing tree (each lists every file so far).
    let state = tempfile::tempdir().unwrap();
    let b = EngineBuilder::new().state_dir(state.path());
    let mut daily = Vec::new();
    let mut events = 0;
    for day in (1..=22).step_by(3) {
        let (shared, _) = b.build_shared();
        let (alerts, stats) = run_parallel(&b, shared, &until(files, day), 2);
        events += stats.events;
        daily.extend(alerts);
        if day > 1 {
            assert!(stats.files_already_read > 0, "day {day}");
        }
    }
    // Every event was read exactly once.
    assert_eq!(events, all_stats.events);
    // No alert raised twice.
    let d = ids(&daily);
    let mut dedup = d.clone();
    dedup.dedup();
    assert_eq!(d.len(), dedup.len(), "an alert was raised twice");
    // Re-running the last day reads nothing and raises nothing.
    let (shared, _) = b.build_shared();
    let (again, stats) = run_parallel(&b, shared, files, 1);
    assert_eq!((again.len(), stats.events), (0, 0));
    assert_eq!(
        (stats.files_already_read + stats.files_too_old) as usize,
        files.len()
    );
    // Every attack alert of the one-pass run was raised by the daily runs too (alerts
    // whose window spans a run boundary may be split, so compare rules and identities).
    let key = |a: &keytrail_detect::Alert| (a.rule_id.clone(), a.principal.clone());
    let daily_keys: std::collections::HashSet<_> = daily.iter().map(key).collect();
    let missing: Vec<_> = all
        .iter()
        .filter(|a| a.severity >= keytrail_types::Severity::High)
        .map(key)
        .filter(|k| !daily_keys.contains(k))
        .collect();
    assert!(missing.is_empty(), "{missing:?}");
}

#[test]
fn a_run_repeated_from_the_same_state_copy_raises_no_alert_twice() {
    // A run that crashed after writing alerts but before saving state is repeated over
    // the same files: same events, same alert ids; the first run's copy of the state
    // knows them once it is saved, so a third run repeats nothing.
    let files = tree();
    let part = until(files, 12);
    let state = tempfile::tempdir().unwrap();
    let b = EngineBuilder::new().state_dir(state.path());
    let (first, _) = run_parallel(&b, b.build_shared().0, &part, 1);
    assert!(!first.is_empty());
    // Forget the files but keep the alerts: the same events are read again.
    let path = state.path().join("keytrail-detect-state.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    v["files"] = serde_json::json!({});
    std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
    let (second, stats) = run_parallel(&b, b.build_shared().0, &part, 1);
    assert!(stats.events > 0);
    let repeated: Vec<_> = second
        .iter()
        .filter(|a| first.iter().any(|f| f.id == a.id))
        .collect();
    assert!(repeated.is_empty(), "{repeated:?}");
    assert!(stats.repeated_alerts > 0);
}

#[test]
fn late_files_are_read_and_files_past_the_retention_are_not() {
    let files = tree();
    let state = tempfile::tempdir().unwrap();
    let b = EngineBuilder::new().state_dir(state.path());
    // Day 15 arrives, but one file of day 14 is delivered late (after the run).
    let upto = until(files, 15);
    let late = upto[upto.len() - 40].clone();
    let on_time: Vec<PathBuf> = upto.iter().filter(|f| **f != late).cloned().collect();
    let (_, s1) = run_parallel(&b, b.build_shared().0, &on_time, 1);
    let (_, s2) = run_parallel(&b, b.build_shared().0, &upto, 1);
    assert_eq!(
        (s2.files_already_read + s2.files_too_old) as usize,
        on_time.len()
    );
    assert!(s2.events > 0, "the late file is read");
    assert_eq!(s1.events + s2.events, {
        let b0 = EngineBuilder::new();
        let (_, s) = run_parallel(&b0, b0.build_shared().0, &upto, 1);
        s.events
    });
    // The state forgets files a week behind its watermark (it stays bounded) and
    // treats such old files as read.
    let text = std::fs::read_to_string(state.path().join("keytrail-detect-state.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let remembered = v["files"].as_object().unwrap().len();
    assert!(remembered < upto.len(), "{remembered} of {}", upto.len());
    let (_, s3) = run_parallel(&b, b.build_shared().0, &upto, 1);
    assert_eq!(s3.events, 0);
    assert_eq!(
        (s3.files_already_read + s3.files_too_old) as usize,
        upto.len()
    );
    assert!(s3.files_too_old > 0);
}

/// The other clouds' detectors remember across runs: credentials added to a
/// service principal in one run (a Log Analytics row, `TargetResources` as
/// JSON text) and its sign-in from a network it never used in the next run
/// raise the alert in the second run, as in one run over both files.
#[test]
fn entra_credential_added_in_one_run_and_used_in_the_next_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let sp = "8e0c7d1a-5b2f-4c3d-9e8f-0123456789ab";
    let added = serde_json::json!({
        "TimeGenerated": "2024-05-06T09:00:00Z", "OperationName": "Add service principal credentials",
        "ActivityDisplayName": "Add service principal credentials", "Category": "ApplicationManagement",
        "LoggedByService": "Core Directory", "Result": "success",
        "InitiatedBy": serde_json::json!({"user": {"userPrincipalName": "ops@contoso.example", "ipAddress": "203.0.113.7"}}).to_string(),
        "TargetResources": serde_json::json!([{"id": sp, "displayName": "billing-sync", "type": "ServicePrincipal",
            "modifiedProperties": [{"displayName": "KeyDescription", "oldValue": "[]",
                "newValue": "[\"[KeyIdentifier=4e5d1c2b-0000-4000-8000-000000000001,KeyType=Password,KeyUsage=Verify,DisplayName=x]\"]"}]}]).to_string(),
        "Id": "Directory_1", "TenantId": "72f988bf-86f1-41af-91ab-2d7cd011db47"
    });
    let signin = serde_json::json!({
        "createdDateTime": "2024-05-06T13:30:00Z", "id": "si-1", "appId": "c0ffee00-0000-4000-8000-000000000001",
        "appDisplayName": "billing-sync", "servicePrincipalId": sp, "servicePrincipalName": "billing-sync",
        "ipAddress": "198.51.100.23", "servicePrincipalCredentialKeyId": "4e5d1c2b-0000-4000-8000-000000000001",
        "resourceDisplayName": "Microsoft Graph", "status": {"errorCode": 0},
        "signInEventTypes": ["servicePrincipal"], "tenantId": "72f988bf-86f1-41af-91ab-2d7cd011db47"
    });
    let a = dir.path().join("audit.json");
    let b = dir.path().join("signins.json");
    std::fs::write(&a, format!("{added}\n")).unwrap();
    std::fs::write(&b, format!("{signin}\n")).unwrap();
    let rule = "keytrail.entra.persistence.new-credential-used-from-new-network";
    let fired = |alerts: &[keytrail_detect::Alert]| alerts.iter().any(|x| x.rule_id == rule);

    let first = caught_in_one_run_and_across_two(dir.path(), &a, &b, fired);
    assert!(!fired(&first));
}

/// What `fired` says of `a` then `b`: caught in one run over both, and in two
/// runs sharing a state directory (the second run); never by `b` alone. Returns
/// the first run's alerts.
fn caught_in_one_run_and_across_two(
    dir: &std::path::Path,
    a: &std::path::Path,
    b: &std::path::Path,
    fired: impl Fn(&[keytrail_detect::Alert]) -> bool,
) -> Vec<keytrail_detect::Alert> {
    let (a, b) = (a.to_path_buf(), b.to_path_buf());
    let builder = EngineBuilder::new();
    let (shared, _) = builder.build_shared();
    let (together, _) = run_parallel(&builder, shared, &[a.clone(), b.clone()], 1);
    assert!(fired(&together), "{together:#?}");

    let state = dir.join("state");
    let builder = EngineBuilder::new().state_dir(&state);
    let (shared, _) = builder.build_shared();
    let (first, _) = run_parallel(&builder, shared, std::slice::from_ref(&a), 1);
    let (shared, _) = builder.build_shared();
    let (second, _) = run_parallel(&builder, shared, std::slice::from_ref(&b), 1);
    assert!(fired(&second), "forgotten between runs: {second:#?}");

    let builder = EngineBuilder::new();
    let (shared, _) = builder.build_shared();
    let (alone, _) = run_parallel(&builder, shared, std::slice::from_ref(&b), 1);
    assert!(!fired(&alone), "{alone:#?}");
    first
}

#[test]
fn a_spray_in_one_run_and_the_sign_in_in_the_next_are_caught() {
    let dir = tempfile::tempdir().unwrap();
    // The unified audit log: a spray of six accounts from one address …
    let spray: String = ["root", "test", "alice", "bob", "carol", "dan"]
        .iter()
        .enumerate()
        .map(|(i, u)| {
            serde_json::json!({
                "CreationTime": format!("2024-05-06T09:00:{:02}", i * 5), "Id": format!("s-{i}"),
                "Operation": "UserLoginFailed", "OrganizationId": "72f988bf-86f1-41af-91ab-2d7cd011db47",
                "RecordType": 15, "ResultStatus": "Failed", "UserType": 0, "Workload": "AzureActiveDirectory",
                "ClientIP": "45.134.26.11", "UserId": format!("{u}@contoso.example"),
                "LogonError": "InvalidUserNameOrPassword"
            })
            .to_string()
                + "\n"
        })
        .collect();
    // … and, in the next day's file, Carol signing in from it.
    let signin = serde_json::json!({
        "CreationTime": "2024-05-06T15:00:00", "Id": "ok-1", "Operation": "UserLoggedIn",
        "OrganizationId": "72f988bf-86f1-41af-91ab-2d7cd011db47", "RecordType": 15, "ResultStatus": "Success",
        "UserType": 0, "Workload": "AzureActiveDirectory", "ClientIP": "45.134.26.11",
        "UserId": "carol@contoso.example"
    });
    let a = dir.path().join("spray.json");
    let b = dir.path().join("signin.json");
    std::fs::write(&a, spray).unwrap();
    std::fs::write(&b, format!("{signin}\n")).unwrap();
    let rule = "keytrail.entra.initial-access.sign-in-after-password-spray";
    let fired = |alerts: &[keytrail_detect::Alert]| {
        alerts
            .iter()
            .any(|x| x.rule_id == rule && x.principal == "carol@contoso.example")
    };

    let first = caught_in_one_run_and_across_two(dir.path(), &a, &b, fired);
    assert!(
        first
            .iter()
            .any(|x| x.rule_id == "keytrail.entra.credential-access.password-spray")
    );
    assert!(!fired(&first));
}

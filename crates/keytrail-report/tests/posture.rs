//! The encoders over a real report: JSONL findings, OCSF Compliance
//! Findings, and the human tables.

use keytrail_inventory::{CHECKS, Report, check_all, inventory, load_snapshot};
use keytrail_report::posture::{
    finding_uid, to_ocsf, write_findings_jsonl, write_findings_table, write_inventory_jsonl,
    write_inventory_table,
};
use std::path::Path;

fn now() -> keytrail_inventory::Timestamp {
    keytrail_inventory::chrono::DateTime::parse_from_rfc3339("2025-06-01T00:00:00Z")
        .unwrap()
        .to_utc()
}

fn bad() -> (keytrail_inventory::Snapshot, Report) {
    let (snap, _) = load_snapshot(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../keytrail-inventory/tests/fixtures/bad"),
    );
    let r = check_all(&snap, None, now());
    (snap, r)
}

#[test]
fn jsonl_has_one_finding_per_line_with_the_documented_fields() {
    let (_, r) = bad();
    let mut buf = Vec::new();
    write_findings_jsonl(&r, &mut buf).unwrap();
    let text = String::from_utf8(buf).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), r.findings.len());
    for l in lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        for field in [
            "check",
            "title",
            "severity",
            "provider",
            "resource",
            "identity",
            "fact",
            "evidence",
            "remediation",
        ] {
            assert!(v.get(field).is_some(), "{field} missing in {l}");
        }
        assert!(CHECKS.iter().any(|c| c.id == v["check"]));
        assert!(
            ["info", "low", "medium", "high", "critical"]
                .contains(&v["severity"].as_str().unwrap())
        );
        // Owner fields are omitted when no owners file is given.
        assert!(v.get("owner").is_none());
    }
}

#[test]
fn ocsf_compliance_findings() {
    let (_, r) = bad();
    let events = to_ocsf(&r, now());
    assert_eq!(events.len(), r.findings.len());
    let mut uids = std::collections::BTreeSet::new();
    for (e, f) in events.iter().zip(&r.findings) {
        assert_eq!(e["class_uid"], 2003);
        assert_eq!(e["category_uid"], 2);
        assert_eq!(e["type_uid"], 200301);
        assert_eq!(e["compliance"]["control"], f.check.as_str());
        assert_eq!(e["compliance"]["status_id"], 3);
        assert_eq!(e["resources"][0]["uid"], f.resource.as_str());
        assert_eq!(e["time"], now().timestamp_millis());
        let sev = e["severity_id"].as_u64().unwrap();
        assert!((1..=5).contains(&sev));
        assert!(e["metadata"]["product"]["name"] == "keytrail");
        uids.insert(e["finding_info"]["uid"].as_str().unwrap().to_string());
    }
    // Each finding has its own uid (the two unused keys of one user differ).
    assert_eq!(uids.len(), r.findings.len());
    let aws = events
        .iter()
        .find(|e| e["compliance"]["control"] == "aws.iam.workload_admin")
        .unwrap();
    assert_eq!(aws["cloud"]["provider"], "AWS");
    assert_eq!(aws["cloud"]["account"]["uid"], "111122223333");
}

#[test]
fn finding_uids_are_stable_across_runs() {
    let (_, a) = bad();
    let (_, b) = bad();
    let ua: Vec<String> = a.findings.iter().map(finding_uid).collect();
    let ub: Vec<String> = b.findings.iter().map(finding_uid).collect();
    assert_eq!(ua, ub);
}

#[test]
fn human_table_groups_by_identity() {
    let (_, r) = bad();
    let mut buf = Vec::new();
    write_findings_table(&r, &mut buf).unwrap();
    let text = String::from_utf8(buf).unwrap();
    // ci-deploy's three findings sit under one heading.
    let head = text
        .lines()
        .position(|l| l == "arn:aws:iam::111122223333:user/ci-deploy")
        .unwrap();
    let block: Vec<&str> = text
        .lines()
        .skip(head + 1)
        .take_while(|l| l.starts_with("  "))
        .collect();
    assert!(block.iter().any(|l| l.contains("aws.iam.access_key_age")));
    assert!(block.iter().any(|l| l.contains("aws.iam.two_active_keys")));
    assert!(
        block
            .iter()
            .any(|l| l.contains("aws.iam.access_key_unused"))
    );
    // The most severe identities come first.
    assert!(text.lines().nth(1).unwrap().contains("critical"), "{text}");
}

#[test]
fn inventory_outputs() {
    let (snap, _) = bad();
    let inv = inventory(&snap, None, now());
    let mut buf = Vec::new();
    write_inventory_jsonl(&inv, &mut buf).unwrap();
    let text = String::from_utf8(buf).unwrap();
    assert_eq!(text.lines().count(), inv.len());
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    for field in [
        "id",
        "kind",
        "provider",
        "owner",
        "privilege",
        "findings",
        "flags",
    ] {
        assert!(first.get(field).is_some(), "{field}");
    }
    let mut buf = Vec::new();
    write_inventory_table(&inv, &mut buf).unwrap();
    let table = String::from_utf8(buf).unwrap();
    let app = table
        .lines()
        .find(|l| l.contains("role/app-server"))
        .unwrap();
    assert!(
        app.starts_with('!'),
        "over-privileged and unowned rows stand out: {app}"
    );
    assert!(app.contains("UNOWNED") && app.contains("admin"));
    // Access keys are listed under their user.
    let user = table
        .lines()
        .position(|l| l.contains("user/ci-deploy"))
        .unwrap();
    assert!(
        table
            .lines()
            .nth(user + 1)
            .unwrap()
            .contains("└ AKIAFAKECIDEPLOYKEY")
    );
}

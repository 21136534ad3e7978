//! OCSF output against the published OCSF schema: the Detection Findings of every
//! Stratus Red Team capture (playbook, behaviour and Sigma alerts) and the Compliance
//! Findings of the posture fixture are each valid, strictly (no unknown attribute,
//! captions matching their ids), for the one OCSF version keytrail writes; and the
//! validator does reject what keytrail wrote before (OCSF 1.1 shapes).

use std::path::Path;

use keytrail_detect::engine::EngineBuilder;
use keytrail_report::{detect, ocsf, posture};
use keytrail_testkit::data;

fn alerts_of_every_capture() -> Vec<keytrail_detect::Alert> {
    let builder = EngineBuilder::new().sigma_rules(data::sigma_aws());
    let mut files: Vec<_> = std::fs::read_dir(data::stratus_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut alerts = Vec::new();
    for f in &files {
        let (a, _) = keytrail_detect::engine::detect_path(&builder, f);
        alerts.extend(a);
    }
    alerts
}

#[test]
fn detection_findings_are_valid_ocsf() {
    let alerts = alerts_of_every_capture();
    assert!(alerts.len() > 20, "too few alerts: {}", alerts.len());
    for source in ["playbook", "sigma"] {
        assert!(
            alerts
                .iter()
                .any(|a| serde_json::to_value(a.source).unwrap() == source),
            "no {source} alert to validate"
        );
    }
    let mut buf = Vec::new();
    detect::write_ocsf(&mut buf, &alerts).unwrap();
    let text = String::from_utf8(buf).unwrap();
    let errors = data::ocsf_errors(ocsf::VERSION, &text);
    assert!(errors.is_empty(), "{}", errors.join("\n"));

    let events: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(events.len(), alerts.len());
    for (e, a) in events.iter().zip(&alerts) {
        assert_eq!(e["class_uid"], 2004);
        assert_eq!(e["type_uid"], 200401);
        assert_eq!(e["metadata"]["version"], ocsf::VERSION);
        assert_eq!(e["finding_info"]["uid"], a.id.as_str());
        assert_eq!(e["finding_info"]["analytic"]["uid"], a.rule_id.as_str());
        assert_eq!(e["severity_id"], ocsf::severity_id(a.severity));
        assert_eq!(e["count"], a.event_count);
        let ev = e["evidences"].as_array().unwrap();
        assert_eq!(ev.len(), a.source_ips.len().max(1));
        assert!(
            ev.iter()
                .all(|x| x["actor"]["user"]["uid"] == a.principal.as_str())
        );
    }
    // A sub-technique is split into technique and sub-technique; tactics get their ids.
    let stop = events
        .iter()
        .find(|e| {
            e["finding_info"]["analytic"]["uid"] == "keytrail.aws.defense-evasion.logging-disabled"
        })
        .expect("the StopLogging alert");
    let attack = &stop["finding_info"]["attacks"][0];
    assert_eq!(attack["technique"]["uid"], "T1562");
    assert_eq!(attack["sub_technique"]["uid"], "T1562.008");
    assert_eq!(attack["tactic"]["uid"], "TA0005");
    assert_eq!(attack["tactic"]["name"], "Defense Evasion");
}

/// Alerts on Google Cloud, Entra ID, Microsoft 365 and Azure Activity records (the
/// test-kit's organisation and its injected attacks) are valid too, and name their
/// cloud; only AWS accounts get the AWS account type.
#[test]
fn detection_findings_of_the_other_clouds_are_valid_ocsf() {
    use keytrail_testkit::cloudlogs::{self, Format};
    let (records, _) = cloudlogs::activity(7, 1_709_510_400_000, 10, 0.5);
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (name, f) in [
        ("gcp", Format::GcpSinkNdjson),
        ("entra", Format::GraphJson),
        ("m365", Format::ManagementApiJson),
        ("azure", Format::DiagnosticRecords),
    ] {
        let recs: Vec<_> = records
            .iter()
            .filter(|r| r.provider == name)
            .cloned()
            .collect();
        let path = dir.path().join(format!("{name}.json"));
        std::fs::write(&path, cloudlogs::write(&recs, f)).unwrap();
        files.push(path);
    }
    let builder = EngineBuilder::new()
        .ipintel(data::ipintel())
        .builtin_sigma(true);
    let (shared, _) = builder.build_shared();
    let (alerts, _) = keytrail_detect::engine::run_parallel(&builder, shared, &files, 1);
    assert!(alerts.len() > 10, "too few alerts: {}", alerts.len());
    let mut buf = Vec::new();
    detect::write_ocsf(&mut buf, &alerts).unwrap();
    let text = String::from_utf8(buf).unwrap();
    let errors = data::ocsf_errors(ocsf::VERSION, &text);
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    let events: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    let mut clouds = std::collections::BTreeSet::new();
    for (e, a) in events.iter().zip(&alerts) {
        let want = match a.provider.as_str() {
            "gcp" => "GCP",
            "entra" | "azure" => "Azure",
            "m365" => "Microsoft 365",
            other => panic!("{other}"),
        };
        assert_eq!(e["cloud"]["provider"], want, "{e}");
        assert!(e["cloud"]["account"].get("type_id").is_none(), "{e}");
        clouds.insert(want);
    }
    assert_eq!(clouds.len(), 3, "{clouds:?}");
}

#[test]
fn compliance_findings_are_valid_ocsf() {
    let (snap, _) = keytrail_inventory::load_snapshot(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../keytrail-inventory/tests/fixtures/bad"),
    );
    let now = keytrail_inventory::chrono::DateTime::parse_from_rfc3339("2025-06-01T00:00:00Z")
        .unwrap()
        .to_utc();
    let report = keytrail_inventory::check_all(&snap, None, now);
    assert!(report.findings.len() > 5, "{}", report.findings.len());
    let mut buf = Vec::new();
    posture::write_ocsf_json(&report, now, &mut buf).unwrap();
    let text = String::from_utf8(buf).unwrap();
    let errors = data::ocsf_errors(ocsf::VERSION, &text);
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    let events: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(events.len(), report.findings.len());
    assert!(events.iter().all(|e| e["class_uid"] == 2003));
}

/// The validator is strict: the OCSF 1.1 Detection Finding keytrail wrote before
/// (lowercase severity, free-form evidences, top-level actor) fails on each point.
#[test]
fn the_validator_rejects_the_former_shape() {
    let old = serde_json::json!({
        "class_uid": 2004, "class_name": "Detection Finding", "category_uid": 2,
        "category_name": "Findings", "activity_id": 1, "activity_name": "Create",
        "type_uid": 200401, "type_name": "Detection Finding: Create",
        "severity_id": 4, "severity": "high", "status_id": 1, "status": "New",
        "time": 1_700_000_000_000_i64, "message": "m",
        "metadata": {"version": ocsf::VERSION, "profiles": ["cloud"],
            "product": {"name": "keytrail", "vendor_name": "keytrail", "version": "0.1.0"}},
        "finding_info": {"uid": "u", "title": "t"},
        "actor": {"user": {"uid": "arn:aws:iam::123456789012:user/a"}},
        "cloud": {"provider": "AWS"},
        "evidences": [{"src_endpoint_ips": ["192.0.2.1"], "event_count": 3}],
    });
    let errors = data::ocsf_errors(ocsf::VERSION, &format!("[{old}]"));
    let all = errors.join("\n");
    assert!(all.contains("'high' is not the caption"), "{all}");
    assert!(all.contains("src_endpoint_ips"), "{all}");
    assert!(all.contains("'actor'"), "{all}");
    // Without the version it was written for, an event is rejected too.
    let mut v11 = old.clone();
    v11["metadata"]["version"] = "1.1.0".into();
    let errors = data::ocsf_errors(ocsf::VERSION, &format!("[{v11}]"));
    assert!(
        errors.iter().any(|e| e.contains("metadata.version")),
        "{errors:?}"
    );
}

/// JSONL, OCSF and the human summary of one capture: the documented fields.
#[test]
fn encoders_write_documented_fields() {
    let path = data::stratus("aws.defense-evasion.cloudtrail-stop");
    let (alerts, _) = keytrail_detect::engine::detect_path(
        &EngineBuilder::new().sigma_rules(data::sigma_aws()),
        &path,
    );
    let mut buf = Vec::new();
    detect::write_jsonl(&mut buf, &alerts).unwrap();
    let lines: Vec<serde_json::Value> = String::from_utf8(buf)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), alerts.len());
    for l in &lines {
        for f in [
            "id",
            "rule_id",
            "severity",
            "time",
            "principal",
            "access_key_id",
            "event_ids",
            "source_ips",
            "explanation",
            "technique",
        ] {
            assert!(l.get(f).is_some(), "missing {f} in {l}");
        }
    }
    let sigma = lines
        .iter()
        .find(|l| l["source"] == "sigma")
        .expect("a sigma alert");
    assert_eq!(sigma["author"], "vitaliy0x1");
    let o = ocsf::detection_finding(&alerts[0]);
    assert_eq!(o["class_uid"], 2004);
    assert_eq!(o["type_uid"], 200401);
    assert!(o["finding_info"]["analytic"]["uid"].is_string());
    let with_author = alerts.iter().find(|a| a.author.is_some()).unwrap();
    assert_eq!(
        ocsf::detection_finding(with_author)["unmapped"]["rule_author"],
        "vitaliy0x1"
    );
    let s = detect::summary(&alerts);
    assert!(
        s.contains("alerts on 1 identities") && s.contains("Sigma rule author: vitaliy0x1"),
        "{s}"
    );
}

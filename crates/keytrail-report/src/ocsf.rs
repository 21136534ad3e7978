//! OCSF encoding, in one place and on one version ([`VERSION`]): detect alerts as
//! Detection Findings (class 2004) and posture findings as Compliance Findings
//! (class 2003), both with the `cloud` profile.
//!
//! Every event is valid against the published OCSF schema of [`VERSION`]: unknown
//! attributes are errors there, so anything without an OCSF attribute goes under
//! `unmapped`. `tests/ocsf.rs` validates real output with the schema (the
//! `ocsf-json-schema` package that `scripts/install-test-deps.sh` installs).
//! docs/output.md documents every field.

use keytrail_detect::alert::{Alert, AlertSource};
use keytrail_inventory::Timestamp;
use keytrail_inventory::checks::{PostureFinding, check_info};
use keytrail_types::Severity;
use serde_json::{Map, Value, json};

/// The OCSF schema version of every event (`metadata.version`).
pub const VERSION: &str = "1.3.0";

/// OCSF `severity_id` of a severity.
pub fn severity_id(s: Severity) -> u8 {
    match s {
        Severity::Info => 1,
        Severity::Low => 2,
        Severity::Medium => 3,
        Severity::High => 4,
        Severity::Critical => 5,
    }
}

/// OCSF `severity`: the schema's caption of [`severity_id`].
pub fn severity_caption(s: Severity) -> &'static str {
    match s {
        Severity::Info => "Informational",
        Severity::Low => "Low",
        Severity::Medium => "Medium",
        Severity::High => "High",
        Severity::Critical => "Critical",
    }
}

/// The attributes every keytrail event shares: class, category, activity Create,
/// type, severity, status New, time, message and metadata.
fn base(
    class_uid: u32,
    class_name: &str,
    severity: Severity,
    time_ms: i64,
    message: &str,
    uid: Option<&str>,
) -> Map<String, Value> {
    let mut metadata = json!({
        "version": VERSION,
        "product": {"name": "keytrail", "vendor_name": "keytrail", "version": env!("CARGO_PKG_VERSION")},
        "profiles": ["cloud"],
    });
    if let Some(uid) = uid {
        metadata["uid"] = json!(uid);
    }
    let v = json!({
        "class_uid": class_uid,
        "class_name": class_name,
        "category_uid": 2,
        "category_name": "Findings",
        "activity_id": 1,
        "activity_name": "Create",
        "type_uid": class_uid * 100 + 1,
        "type_name": format!("{class_name}: Create"),
        "severity_id": severity_id(severity),
        "severity": severity_caption(severity),
        "status_id": 1,
        "status": "New",
        "time": time_ms,
        "message": message,
        "metadata": metadata,
    });
    match v {
        Value::Object(m) => m,
        _ => unreachable!("json! of an object"),
    }
}

/// The MITRE ATT&CK tactic behind a keytrail tactic slug (`defense-evasion`): id and name.
fn tactic(slug: &str) -> Option<(&'static str, &'static str)> {
    Some(match slug {
        "reconnaissance" => ("TA0043", "Reconnaissance"),
        "resource-development" => ("TA0042", "Resource Development"),
        "initial-access" => ("TA0001", "Initial Access"),
        "execution" => ("TA0002", "Execution"),
        "persistence" => ("TA0003", "Persistence"),
        "privilege-escalation" => ("TA0004", "Privilege Escalation"),
        "defense-evasion" => ("TA0005", "Defense Evasion"),
        "credential-access" => ("TA0006", "Credential Access"),
        "discovery" => ("TA0007", "Discovery"),
        "lateral-movement" => ("TA0008", "Lateral Movement"),
        "collection" => ("TA0009", "Collection"),
        "command-and-control" => ("TA0011", "Command and Control"),
        "exfiltration" => ("TA0010", "Exfiltration"),
        "impact" => ("TA0040", "Impact"),
        _ => return None,
    })
}

/// `finding_info.attacks`: the technique (and sub-technique) and tactic of an alert.
fn attacks(technique: &str, tactic_slug: &str) -> Vec<Value> {
    let mut attack = Map::new();
    if !technique.is_empty() {
        match technique.split_once('.') {
            Some((parent, _)) => {
                attack.insert("technique".into(), json!({"uid": parent}));
                attack.insert("sub_technique".into(), json!({"uid": technique}));
            }
            None => {
                attack.insert("technique".into(), json!({"uid": technique}));
            }
        }
    }
    match tactic(tactic_slug) {
        Some((uid, name)) => {
            attack.insert("tactic".into(), json!({"uid": uid, "name": name}));
        }
        None if !tactic_slug.is_empty() => {
            attack.insert("tactic".into(), json!({"name": tactic_slug}));
        }
        None => {}
    }
    if attack.is_empty() {
        return Vec::new();
    }
    attack.insert("version".into(), json!("v15"));
    vec![Value::Object(attack)]
}

/// One alert as an OCSF Detection Finding (class 2004, activity Create).
///
/// `time` and `finding_info.first_seen_time` are the first evidence's event time,
/// `last_seen_time` the last one's (epoch milliseconds). Each evidence names the
/// identity (`actor.user`: principal, access key, account) and one source the
/// identity acted from: an IP (`src_endpoint.ip`) or, for calls AWS services made
/// on its behalf, the service (`src_endpoint.svc_name`).
pub fn detection_finding(a: &Alert) -> Value {
    let first = keytrail_detect::time::parse_rfc3339_ms(&a.time).unwrap_or(a.time_ms);
    let last = keytrail_detect::time::parse_rfc3339_ms(&a.last_time).unwrap_or(first);
    let mut v = base(
        2004,
        "Detection Finding",
        a.severity,
        first,
        &a.explanation,
        Some(&a.id),
    );
    let (type_id, type_name) = match a.source {
        AlertSource::Behaviour => (2, "Behavioral"),
        AlertSource::Playbook | AlertSource::Owners | AlertSource::Sigma => (1, "Rule"),
    };
    let source = serde_json::to_value(a.source).unwrap_or_default();
    let mut finding_info = json!({
        "uid": a.id,
        "title": a.title,
        "desc": a.explanation,
        "first_seen_time": first,
        "last_seen_time": last,
        "types": [source],
        "analytic": {"uid": a.rule_id, "name": a.title, "type_id": type_id, "type": type_name},
        "related_events": a.event_ids.iter().map(|id| json!({"uid": id})).collect::<Vec<_>>(),
    });
    let attacks = attacks(&a.technique, &a.tactic);
    if !attacks.is_empty() {
        finding_info["attacks"] = json!(attacks);
    }
    v.insert("finding_info".into(), finding_info);
    v.insert("count".into(), json!(a.event_count));

    let mut user = json!({"uid": a.principal});
    if let Some(k) = &a.access_key_id {
        user["credential_uid"] = json!(k);
    }
    // The account of the other clouds (a Google Cloud project, an Entra tenant, an
    // Azure subscription) is written without a type: only AWS's is named here.
    let aws = a.provider == keytrail_detect::Provider::Aws;
    let account = |acct: &str| {
        if aws {
            json!({"uid": acct, "type_id": 10, "type": "AWS Account"})
        } else {
            json!({"uid": acct})
        }
    };
    if let Some(acct) = &a.account_id {
        user["account"] = account(acct);
    }
    let actor = json!({"user": user});
    let mut evidences: Vec<Value> = a
        .source_ips
        .iter()
        .map(|src| {
            let endpoint = if src.parse::<std::net::IpAddr>().is_ok() {
                json!({"ip": src})
            } else {
                json!({"svc_name": src})
            };
            json!({"actor": actor, "src_endpoint": endpoint})
        })
        .collect();
    if evidences.is_empty() {
        evidences.push(json!({"actor": actor}));
    }
    v.insert("evidences".into(), json!(evidences));

    let provider = match a.provider {
        keytrail_detect::Provider::Aws => "AWS",
        keytrail_detect::Provider::Gcp => "GCP",
        keytrail_detect::Provider::Entra | keytrail_detect::Provider::Azure => "Azure",
        keytrail_detect::Provider::M365 => "Microsoft 365",
    };
    let mut cloud = json!({"provider": provider});
    if let Some(acct) = &a.account_id {
        cloud["account"] = account(acct);
    }
    v.insert("cloud".into(), cloud);
    let mut unmapped = json!({"event_names": a.event_names, "source_ips": a.source_ips});
    if let Some(author) = &a.author {
        unmapped["rule_author"] = json!(author);
    }
    v.insert("unmapped".into(), unmapped);
    Value::Object(v)
}

/// One posture finding as an OCSF Compliance Finding (class 2003, activity Create),
/// found at `now`.
pub fn compliance_finding(f: &PostureFinding, now: Timestamp) -> Value {
    let uid = crate::posture::finding_uid(f);
    let mut v = base(
        2003,
        "Compliance Finding",
        f.severity,
        now.timestamp_millis(),
        &f.fact,
        None,
    );
    let cloud_provider = match f.provider.as_str() {
        "aws" => "AWS",
        "gcp" => "GCP",
        "azure" => "Azure",
        other => other,
    };
    let mut cloud = json!({"provider": cloud_provider});
    if let Some(a) = f.resource.split(':').nth(4).filter(|a| a.len() == 12) {
        cloud["account"] = json!({"uid": a});
    }
    let desc = match check_info(&f.check) {
        Some(i) => format!("{} {}", f.fact, i.rationale),
        None => f.fact.clone(),
    };
    v.insert(
        "finding_info".into(),
        json!({"uid": uid, "title": f.title, "desc": desc, "types": [f.check]}),
    );
    v.insert(
        "compliance".into(),
        json!({
            "control": f.check,
            "standards": ["keytrail posture checks"],
            "status_id": 3,
            "status": "Fail",
            "status_detail": f.fact,
        }),
    );
    v.insert("remediation".into(), json!({"desc": f.remediation}));
    v.insert(
        "resources".into(),
        json!([{"uid": f.resource, "type": resource_type(&f.resource)}]),
    );
    v.insert("cloud".into(), cloud);
    let mut unmapped = json!({"evidence": f.evidence, "identity": f.identity});
    if let Some(o) = &f.owner {
        unmapped["owner"] = json!(o);
    }
    if let Some(e) = &f.environment {
        unmapped["environment"] = json!(e);
    }
    v.insert("unmapped".into(), unmapped);
    Value::Object(v)
}

/// The kind of a posture resource (`iam:user`, `gcp:service_account_key`).
fn resource_type(r: &str) -> String {
    if let Some(rest) = r.strip_prefix("arn:") {
        let parts: Vec<&str> = rest.splitn(5, ':').collect();
        if parts.len() == 5 {
            let kind = parts[4].split(['/', ':']).next().unwrap_or("");
            return format!("{}:{}", parts[1], kind);
        }
    }
    if r.starts_with("entra:") {
        return "entra:application".into();
    }
    if r.contains("/serviceAccounts/") {
        return if r.contains("/keys/") {
            "gcp:service_account_key".into()
        } else {
            "gcp:service_account".into()
        };
    }
    if r.contains("/clusters/") {
        return "gcp:gke_cluster".into();
    }
    if r.contains("Microsoft.ContainerService") {
        return "azure:aks_cluster".into();
    }
    if r.contains("Microsoft.Storage") {
        return "azure:storage".into();
    }
    "resource".into()
}

//! Alert encoders: JSONL (one [`Alert`] per line; the field docs of `Alert` are the
//! format), OCSF 1.1 Detection Finding (class_uid 2004) and a human summary grouped
//! by identity.

use std::collections::BTreeMap;
use std::io::{self, Write};

use keytrail_types::Severity;
use serde_json::{Value, json};

use crate::alert::Alert;
use crate::time::parse_rfc3339_ms;

/// Writes alerts as JSON Lines.
pub fn write_jsonl(w: &mut dyn Write, alerts: &[Alert]) -> io::Result<()> {
    for a in alerts {
        serde_json::to_writer(&mut *w, a)?;
        w.write_all(b"\n")?;
    }
    Ok(())
}

fn severity_id(s: Severity) -> u8 {
    match s {
        Severity::Info => 1,
        Severity::Low => 2,
        Severity::Medium => 3,
        Severity::High => 4,
        Severity::Critical => 5,
    }
}

/// One alert as an OCSF 1.1 Detection Finding (`class_uid` 2004, activity Create).
pub fn ocsf(a: &Alert) -> Value {
    let first = parse_rfc3339_ms(&a.time).unwrap_or(a.time_ms);
    let last = parse_rfc3339_ms(&a.last_time).unwrap_or(first);
    let sev = severity_id(a.severity);
    let mut attacks = Vec::new();
    if !a.technique.is_empty() {
        attacks.push(json!({
            "technique": {"uid": a.technique},
            "tactic": {"name": a.tactic},
            "version": "v15"
        }));
    }
    json!({
        "class_uid": 2004,
        "class_name": "Detection Finding",
        "category_uid": 2,
        "category_name": "Findings",
        "activity_id": 1,
        "activity_name": "Create",
        "type_uid": 200401,
        "type_name": "Detection Finding: Create",
        "severity_id": sev,
        "severity": a.severity.as_str(),
        "status_id": 1,
        "status": "New",
        "time": first,
        "message": a.explanation,
        "metadata": {
            "version": "1.1.0",
            "product": {"name": "keytrail", "vendor_name": "keytrail", "version": env!("CARGO_PKG_VERSION")},
            "uid": a.id,
        },
        "finding_info": {
            "uid": a.id,
            "title": a.title,
            "desc": a.explanation,
            "first_seen_time": first,
            "last_seen_time": last,
            "types": [format!("{:?}", a.source).to_ascii_lowercase()],
            "analytic": {"uid": a.rule_id, "name": a.title, "type_id": 1, "type": "Rule"},
            "attacks": attacks,
            "related_events": a.event_ids.iter().map(|id| json!({"uid": id})).collect::<Vec<_>>(),
        },
        "actor": {"user": {"uid": a.principal, "credential_uid": a.access_key_id}},
        "src_endpoint": a.source_ips.first().map(|ip| json!({"ip": ip})),
        "cloud": {"provider": "AWS", "account": {"uid": a.account_id}},
        "evidences": [{"src_endpoint_ips": a.source_ips, "event_count": a.event_count}],
        "unmapped": {"rule_author": a.author, "event_names": a.event_names},
    })
}

/// Writes alerts as a JSON array of OCSF Detection Findings.
pub fn write_ocsf(w: &mut dyn Write, alerts: &[Alert]) -> io::Result<()> {
    let v: Vec<Value> = alerts.iter().map(ocsf).collect();
    serde_json::to_writer_pretty(&mut *w, &v)?;
    w.write_all(b"\n")
}

/// A human summary: identities ordered by their worst alert, each with its alerts.
pub fn summary(alerts: &[Alert]) -> String {
    let mut by: BTreeMap<&str, Vec<&Alert>> = BTreeMap::new();
    for a in alerts {
        by.entry(&a.principal).or_default().push(a);
    }
    let mut ids: Vec<(&str, Vec<&Alert>)> = by.into_iter().collect();
    ids.sort_by(|a, b| {
        let wa = a.1.iter().map(|x| x.severity).max();
        let wb = b.1.iter().map(|x| x.severity).max();
        wb.cmp(&wa)
            .then(b.1.len().cmp(&a.1.len()))
            .then(a.0.cmp(b.0))
    });
    let mut out = String::new();
    out.push_str(&format!(
        "{} alerts on {} identities\n",
        alerts.len(),
        ids.len()
    ));
    for (who, list) in ids {
        let keys: Vec<&str> = {
            let mut k: Vec<&str> = list
                .iter()
                .filter_map(|a| a.access_key_id.as_deref())
                .collect();
            k.sort();
            k.dedup();
            k
        };
        out.push_str(&format!("\n{who}"));
        if !keys.is_empty() {
            out.push_str(&format!("  keys: {}", keys.join(", ")));
        }
        out.push('\n');
        let mut list = list;
        list.sort_by_key(|a| a.time_ms);
        for a in list {
            out.push_str(&format!(
                "  {:<8} {}  {}  [{}]  {} event(s)\n           {}\n",
                a.severity.as_str(),
                a.time,
                a.rule_id,
                a.technique,
                a.event_count,
                a.explanation
            ));
            if let Some(author) = &a.author {
                out.push_str(&format!("           Sigma rule author: {author}\n"));
            }
        }
    }
    out
}

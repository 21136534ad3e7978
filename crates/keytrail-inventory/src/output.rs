//! Encoders for posture reports and inventories: JSONL findings, OCSF
//! Compliance Finding (class 2003) JSON, and human tables grouped by
//! identity. Field lists are documented in docs/posture-checks.md.

use crate::Timestamp;
use crate::checks::{PostureFinding, Report, check_info};
use crate::inventory::IdentityRecord;
use keytrail_types::Severity;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{self, Write};

/// Writes one JSON object per finding and line: `check`, `title`,
/// `severity`, `provider`, `resource`, `identity`, `fact`, `evidence`,
/// `remediation`, and `owner`/`environment` when known.
pub fn write_findings_jsonl<W: Write>(report: &Report, mut w: W) -> io::Result<()> {
    for f in &report.findings {
        serde_json::to_writer(&mut w, f)?;
        w.write_all(b"\n")?;
    }
    Ok(())
}

/// Writes one JSON object per inventory record and line.
pub fn write_inventory_jsonl<W: Write>(records: &[IdentityRecord], mut w: W) -> io::Result<()> {
    for r in records {
        serde_json::to_writer(&mut w, r)?;
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

fn ocsf_severity(s: Severity) -> &'static str {
    match s {
        Severity::Info => "Informational",
        Severity::Low => "Low",
        Severity::Medium => "Medium",
        Severity::High => "High",
        Severity::Critical => "Critical",
    }
}

/// A stable id for a finding: FNV-1a over check and resource and the
/// evidence that distinguishes credentials of one resource.
pub fn finding_uid(f: &PostureFinding) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let key = format!(
        "{}\u{0}{}\u{0}{}\u{0}{}",
        f.check,
        f.resource,
        f.evidence
            .get("access_key_id")
            .map(Value::to_string)
            .unwrap_or_default(),
        f.evidence
            .get("key_id")
            .map(Value::to_string)
            .unwrap_or_default()
    );
    for b in key.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// One OCSF 1.3 Compliance Finding (class_uid 2003, category 2 Findings,
/// activity 1 Create) per finding.
pub fn to_ocsf(report: &Report, now: Timestamp) -> Vec<Value> {
    report
        .findings
        .iter()
        .map(|f| {
            let info = check_info(&f.check);
            let cloud_provider = match f.provider.as_str() {
                "aws" => "AWS",
                "gcp" => "GCP",
                "azure" => "Azure",
                other => other,
            };
            let account = f.resource.split(':').nth(4).filter(|a| a.len() == 12);
            let mut cloud = json!({"provider": cloud_provider});
            if let Some(a) = account {
                cloud["account"] = json!({"uid": a});
            }
            let mut v = json!({
                "class_uid": 2003,
                "class_name": "Compliance Finding",
                "category_uid": 2,
                "category_name": "Findings",
                "activity_id": 1,
                "activity_name": "Create",
                "type_uid": 200301,
                "type_name": "Compliance Finding: Create",
                "severity_id": severity_id(f.severity),
                "severity": ocsf_severity(f.severity),
                "status_id": 1,
                "status": "New",
                "time": now.timestamp_millis(),
                "message": f.fact,
                "metadata": {
                    "version": "1.3.0",
                    "product": {"name": "keytrail", "vendor_name": "keytrail", "version": env!("CARGO_PKG_VERSION")},
                },
                "finding_info": {
                    "uid": finding_uid(f),
                    "title": f.title,
                    "desc": f.fact,
                    "types": [f.check],
                },
                "compliance": {
                    "control": f.check,
                    "standards": ["keytrail posture checks"],
                    "status_id": 3,
                    "status": "Fail",
                    "status_detail": f.fact,
                },
                "remediation": {"desc": f.remediation},
                "resources": [{"uid": f.resource, "type": resource_type(&f.resource)}],
                "cloud": cloud,
                "unmapped": {"evidence": f.evidence, "identity": f.identity},
            });
            if let Some(i) = info {
                v["finding_info"]["desc"] = json!(format!("{} {}", f.fact, i.rationale));
            }
            if let Some(o) = &f.owner {
                v["unmapped"]["owner"] = json!(o);
            }
            if let Some(e) = &f.environment {
                v["unmapped"]["environment"] = json!(e);
            }
            v
        })
        .collect()
}

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

/// Writes the OCSF findings as a JSON array.
pub fn write_ocsf_json<W: Write>(report: &Report, now: Timestamp, w: W) -> io::Result<()> {
    serde_json::to_writer_pretty(w, &to_ocsf(report, now))?;
    Ok(())
}

/// Human table of findings grouped by identity (most severe first within
/// each group), followed by the not-evaluated checks.
pub fn write_findings_table<W: Write>(report: &Report, mut w: W) -> io::Result<()> {
    let mut groups: BTreeMap<&str, Vec<&PostureFinding>> = BTreeMap::new();
    for f in &report.findings {
        groups.entry(f.identity.as_str()).or_default().push(f);
    }
    let mut order: Vec<(&str, Vec<&PostureFinding>)> = groups.into_iter().collect();
    order.sort_by(|a, b| {
        let ma = a.1.iter().map(|f| f.severity).max();
        let mb = b.1.iter().map(|f| f.severity).max();
        mb.cmp(&ma).then(a.0.cmp(b.0))
    });
    for (identity, mut fs) in order {
        fs.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.check.cmp(&b.check)));
        let owner = fs.iter().find_map(|f| f.owner.as_deref()).unwrap_or("");
        if owner.is_empty() {
            writeln!(w, "{identity}")?;
        } else {
            writeln!(w, "{identity}  (owner: {owner})")?;
        }
        for f in fs {
            writeln!(w, "  {:<8} {:<48} {}", f.severity.as_str(), f.check, f.fact)?;
        }
        writeln!(w)?;
    }
    if !report.not_evaluated.is_empty() {
        writeln!(w, "not evaluated:")?;
        for n in &report.not_evaluated {
            match &n.resource {
                Some(r) => writeln!(w, "  {:<48} {r}: {}", n.check, n.reason)?,
                None => writeln!(w, "  {:<48} {}", n.check, n.reason)?,
            }
        }
    }
    Ok(())
}

/// Human table of the inventory: one line per identity, its credentials
/// indented beneath it; unowned, unused and over-privileged ones marked `!`.
pub fn write_inventory_table<W: Write>(records: &[IdentityRecord], mut w: W) -> io::Result<()> {
    writeln!(
        w,
        "  {:<24} {:<60} {:>6} {:>9} {:<16} {:<6} {:<28} FINDINGS",
        "KIND", "IDENTITY", "AGE(d)", "UNUSED(d)", "OWNER", "ENV", "PRIVILEGE"
    )?;
    let line = |w: &mut W, r: &IdentityRecord, indent: &str| -> io::Result<()> {
        let mark = if r
            .flags
            .iter()
            .any(|f| f == "unowned" || f == "unused" || f == "over-privileged")
        {
            "!"
        } else {
            " "
        };
        let num = |n: Option<i64>| n.map(|n| n.to_string()).unwrap_or_else(|| "-".into());
        let unused = if r.never_used {
            format!("never/{}", num(r.days_unused))
        } else {
            num(r.days_unused)
        };
        writeln!(
            w,
            "{mark} {:<24} {:<60} {:>6} {:>9} {:<16} {:<6} {:<28} {}",
            r.kind,
            format!(
                "{indent}{}",
                if indent.is_empty() { &r.id } else { &r.name }
            ),
            num(r.age_days),
            unused,
            r.owner,
            r.environment.map(|e| e.as_str()).unwrap_or("-"),
            r.privilege.join(","),
            r.findings.join(",")
        )
    };
    for r in records.iter().filter(|r| r.parent.is_none()) {
        line(&mut w, r, "")?;
        for c in records
            .iter()
            .filter(|c| c.parent.as_deref() == Some(r.id.as_str()))
        {
            line(&mut w, c, "  └ ")?;
        }
    }
    // Credentials whose parent is not itself listed.
    for c in records.iter().filter(|c| {
        c.parent
            .as_deref()
            .is_some_and(|p| !records.iter().any(|r| r.id == p))
    }) {
        line(&mut w, c, "")?;
    }
    Ok(())
}

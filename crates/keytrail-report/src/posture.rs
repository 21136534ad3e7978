//! Encoders for posture reports and inventories (`keytrail posture`): JSONL
//! findings and inventory records, OCSF Compliance Findings (the encoding is
//! [`ocsf::compliance_finding`]), and human tables grouped by identity. Field
//! lists are documented in docs/posture-checks.md and docs/output.md.

use crate::lines::{self, Framing, RecordWriter};
use crate::ocsf;
use keytrail_inventory::Timestamp;
use keytrail_inventory::checks::{PostureFinding, Report};
use keytrail_inventory::inventory::IdentityRecord;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{self, Write};

/// Writes one JSON object per finding and line: `check`, `title`,
/// `severity`, `provider`, `resource`, `identity`, `fact`, `evidence`,
/// `remediation`, and `owner`/`environment` when known.
pub fn write_findings_jsonl<W: Write>(report: &Report, mut w: W) -> io::Result<()> {
    lines::write_lines(&mut w, &report.findings)
}

/// Writes one JSON object per inventory record and line.
pub fn write_inventory_jsonl<W: Write>(records: &[IdentityRecord], mut w: W) -> io::Result<()> {
    lines::write_lines(&mut w, records)
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

/// One OCSF Compliance Finding per finding ([`ocsf::compliance_finding`]), found at `now`.
pub fn to_ocsf(report: &Report, now: Timestamp) -> Vec<Value> {
    report
        .findings
        .iter()
        .map(|f| ocsf::compliance_finding(f, now))
        .collect()
}

/// Writes the OCSF findings as a JSON array.
pub fn write_ocsf_json<W: Write>(report: &Report, now: Timestamp, mut w: W) -> io::Result<()> {
    let mut out = RecordWriter::new(&mut w, Framing::Array);
    for f in &report.findings {
        out.write(&ocsf::compliance_finding(f, now))?;
    }
    out.finish().map(drop)
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

//! Output of `ci-audit`: human text, JSON, JSONL and SARIF 2.1.0.
//!
//! The formats mirror `scan`'s (same names, same exit-code policy in the
//! CLI), with the fields of [`CiFinding`](super::CiFinding):
//! - JSON: `{"version": 1, "findings": [CiFinding...], "diagnostics":
//!   [Diagnostic...], "summary": {"files": N, "findings": N}}`
//! - JSONL: one CiFinding object per line.
//! - SARIF: one `run` whose `tool.driver.rules` are the checks in
//!   [`CHECKS`](super::CHECKS) (plus the secret rules of plaintext
//!   findings), one `result` per finding with `ruleId` = check id (or
//!   `ci.plaintext-credential/<rule-id>`), `partialFingerprints` and GitHub's
//!   `security-severity`.

use super::{AuditOutput, CHECKS, CiFinding, PLAINTEXT_CREDENTIAL};
use keytrail_report::sarif;
use serde_json::{Value, json};
use std::io::{self, Write};

/// Human text: one block per finding, then a summary line.
pub fn write_human(w: &mut dyn Write, out: &AuditOutput, color: bool) -> io::Result<()> {
    let (bold, dim, reset) = if color {
        ("\x1b[1m", "\x1b[2m", "\x1b[0m")
    } else {
        ("", "", "")
    };
    for f in &out.findings {
        let sev = f.severity.as_str().to_ascii_uppercase();
        writeln!(
            w,
            "{bold}{sev:<8}{reset} {} {bold}{}{reset}",
            f.check, f.title
        )?;
        writeln!(w, "  {}:{}:{}", f.path, f.line, f.column)?;
        writeln!(w, "  {}", f.message)?;
        if !f.snippet.is_empty() {
            writeln!(w, "  {dim}| {}{reset}", f.snippet)?;
        }
        writeln!(w, "  fix: {}", f.remediation)?;
        writeln!(w)?;
    }
    Ok(())
}

/// The one-line summary printed on stderr.
pub fn summary_line(out: &AuditOutput) -> String {
    let errors = out.diagnostics.iter().filter(|d| d.is_error).count();
    format!(
        "{} finding(s) in {} CI file(s){}",
        out.findings.len(),
        out.files.len(),
        if errors > 0 {
            format!(", {errors} file(s) with errors")
        } else {
            String::new()
        }
    )
}

/// One JSON document.
pub fn write_json(w: &mut dyn Write, out: &AuditOutput) -> io::Result<()> {
    let doc = json!({
        "version": 1,
        "findings": out.findings,
        "diagnostics": out.diagnostics,
        "summary": {"files": out.files.len(), "findings": out.findings.len()},
    });
    serde_json::to_writer_pretty(&mut *w, &doc)?;
    writeln!(w)
}

/// One JSON object per finding per line.
pub fn write_jsonl(w: &mut dyn Write, out: &AuditOutput) -> io::Result<()> {
    for f in &out.findings {
        serde_json::to_writer(&mut *w, f)?;
        writeln!(w)?;
    }
    Ok(())
}

fn rule_id(f: &CiFinding) -> String {
    match &f.rule_id {
        Some(r) if f.check == PLAINTEXT_CREDENTIAL => format!("{PLAINTEXT_CREDENTIAL}/{r}"),
        _ => f.check.clone(),
    }
}

/// The SARIF document as a JSON value.
pub fn sarif(out: &AuditOutput, tool_version: &str) -> Value {
    let mut rules: Vec<Value> = CHECKS
        .iter()
        .map(|c| {
            json!({
                "id": c.id,
                "name": c.title,
                "shortDescription": {"text": c.title},
                "fullDescription": {"text": c.description},
                "help": {"text": c.remediation, "markdown": c.remediation},
                "defaultConfiguration": {"level": sarif::level(c.severity)},
                "properties": {"security-severity": sarif::security_severity(c.severity), "tags": ["security", "ci"]},
            })
        })
        .collect();
    let mut ids: Vec<String> = CHECKS.iter().map(|c| c.id.to_string()).collect();
    for f in &out.findings {
        let id = rule_id(f);
        if !ids.contains(&id) {
            rules.push(json!({
                "id": id,
                "name": f.title,
                "shortDescription": {"text": f.title},
                "help": {"text": f.remediation},
                "defaultConfiguration": {"level": sarif::level(f.severity)},
                "properties": {"security-severity": sarif::security_severity(f.severity), "tags": ["security", "ci", "secret"]},
            }));
            ids.push(id);
        }
    }
    let results: Vec<Value> = out
        .findings
        .iter()
        .map(|f| {
            let id = rule_id(f);
            let index = ids.iter().position(|i| *i == id).unwrap_or(0);
            json!({
                "ruleId": id,
                "ruleIndex": index,
                "level": sarif::level(f.severity),
                "message": {"text": format!("{} Fix: {}", f.message, f.remediation)},
                "locations": [sarif::physical_location(&f.path, f.line, f.column, &f.snippet)],
                "partialFingerprints": {"keytrailCi/v1": f.fingerprint},
                "properties": {"security-severity": sarif::security_severity(f.severity), "severity": f.severity.as_str()},
            })
        })
        .collect();
    let mut doc = sarif::document(tool_version, rules, results);
    // Its own code-scanning category, apart from `keytrail scan`'s.
    sarif::set_automation_id(&mut doc, AUTOMATION_ID);
    doc
}

/// SARIF `automationDetails.id` of `ci-audit` runs.
pub const AUTOMATION_ID: &str = "keytrail-ci-audit/";

/// Write SARIF 2.1.0.
pub fn write_sarif(w: &mut dyn Write, out: &AuditOutput, tool_version: &str) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *w, &sarif(out, tool_version))?;
    writeln!(w)
}

//! GitLab's secret-detection report (`gl-secret-detection-report.json`),
//! which GitLab reads as a `reports: secret_detection` artifact to show
//! findings in merge requests and the vulnerability report (GitLab does not
//! read SARIF).
//!
//! One vulnerability per location (GitLab tracks a vulnerability per file
//! and line), each naming the rule, the commit (`0000000` outside git
//! history, as GitLab's own analyzer writes), the line, and the rule's
//! remediation. The secret is never written, even under `--reveal`: the
//! report is uploaded to GitLab and shown to everyone with project access.

use crate::{Report, ReportOptions};
use keytrail_types::{Location, Origin, Severity};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::io::{self, Write};

/// Version of GitLab's security report schema this output follows.
pub const SCHEMA_VERSION: &str = "15.2.1";
/// The commit GitLab's analyzer reports for content not from git history.
pub const NO_COMMIT: &str = "0000000";

fn severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "Critical",
        Severity::High => "High",
        Severity::Medium => "Medium",
        Severity::Low => "Low",
        Severity::Info => "Info",
    }
}

/// A stable UUID-shaped id of one (finding, location): SHA-256 of the
/// fingerprint, path, line and commit, as 8-4-4-4-12 hex digits.
fn vulnerability_id(fingerprint: &str, loc: &Location, commit: &str) -> String {
    let mut h = Sha256::new();
    let line = loc.line.to_string();
    for part in [fingerprint, loc.path.as_str(), line.as_str(), commit] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    let hex: String = h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// `YYYY-MM-DDTHH:MM:SS` (UTC, no zone: the schema's pattern) for Unix seconds.
pub fn timestamp(unix: u64) -> String {
    let t = i64::try_from(unix)
        .ok()
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC);
    t.format("%Y-%m-%dT%H:%M:%S").to_string()
}

pub(crate) fn write(
    w: &mut dyn Write,
    report: &Report<'_>,
    opts: &ReportOptions,
) -> io::Result<()> {
    let mut vulnerabilities = Vec::new();
    for f in report.findings {
        let meta = report.rule(&f.rule_id);
        let solution = meta
            .map(|m| m.remediation.trim())
            .filter(|r| !r.is_empty())
            .unwrap_or(
                "Revoke or rotate the credential, then remove it from the code and its history.",
            );
        let description = meta
            .map(|m| m.description.trim())
            .filter(|d| !d.is_empty())
            .unwrap_or(&f.rule_name);
        for loc in &f.locations {
            let (commit, history_only) = match &loc.origin {
                Origin::Git(g) => (
                    g.commit.clone().unwrap_or_else(|| NO_COMMIT.to_string()),
                    !g.in_head,
                ),
                _ => (NO_COMMIT.to_string(), false),
            };
            let mut text = format!(
                "{description} Found: {} (fingerprint {}).",
                f.secret_redacted, f.fingerprint
            );
            if history_only {
                text.push_str(&format!(
                    " Only in git history, not in HEAD: introduced by commit {commit}; \
                     deleting it from the current code is not enough."
                ));
            }
            vulnerabilities.push(json!({
                "id": vulnerability_id(&f.fingerprint.0, loc, &commit),
                "category": "secret_detection",
                "name": f.rule_name,
                "description": text,
                "severity": severity(f.severity),
                "solution": solution,
                "location": {
                    "file": loc.path,
                    "commit": { "sha": commit },
                    "start_line": loc.line.max(1),
                    "end_line": loc.line.max(1),
                },
                "identifiers": [{
                    "type": "keytrail_rule_id",
                    "name": format!("keytrail rule {}", f.rule_id),
                    "value": f.rule_id,
                }],
            }));
        }
    }
    let end = opts.finished_unix.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    });
    let start = end.saturating_sub(report.summary.elapsed_ms.div_ceil(1000));
    let tool = json!({
        "id": "keytrail",
        "name": "keytrail",
        "version": if opts.tool_version.is_empty() { "0" } else { opts.tool_version.as_str() },
        "vendor": { "name": "keytrail" },
    });
    let doc: Value = json!({
        "version": SCHEMA_VERSION,
        "vulnerabilities": vulnerabilities,
        "scan": {
            "analyzer": tool,
            "scanner": tool,
            "type": "secret_detection",
            "start_time": timestamp(start),
            "end_time": timestamp(end),
            "status": "success",
        },
    });
    serde_json::to_writer_pretty(&mut *w, &doc)?;
    w.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata;
    use crate::{Format, write_report};

    fn render() -> Value {
        let (findings, rules, summary) = testdata::sample();
        let report = Report {
            findings: &findings,
            rules: &rules,
            summary: &summary,
        };
        let opts = ReportOptions {
            reveal: true,
            tool_version: "0.1.0".into(),
            finished_unix: Some(1_700_000_000),
            ..Default::default()
        };
        let mut out = Vec::new();
        write_report(&mut out, Format::Gitlab, &report, &opts).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains(&testdata::github_secret()), "never reveals");
        assert!(!text.contains(&testdata::aws_secret()), "never reveals");
        serde_json::from_str(&text).unwrap()
    }

    /// The shape of GitLab's secret-detection report schema (checked field
    /// by field: the schema itself is not published on a registry this
    /// project can install from).
    #[test]
    fn report_has_the_secret_detection_shape() {
        let doc = render();
        assert_eq!(doc["version"], SCHEMA_VERSION);
        let scan = &doc["scan"];
        assert_eq!(scan["type"], "secret_detection");
        assert_eq!(scan["status"], "success");
        for part in ["analyzer", "scanner"] {
            for key in ["id", "name", "version"] {
                assert!(scan[part][key].is_string(), "scan.{part}.{key}");
            }
            assert_eq!(scan[part]["vendor"]["name"], "keytrail");
        }
        assert_eq!(scan["end_time"], "2023-11-14T22:13:20");
        assert_eq!(scan["start_time"], "2023-11-14T22:13:19");
        let re = |s: &str| {
            s.len() == 19
                && s.bytes().enumerate().all(|(i, b)| match i {
                    4 | 7 => b == b'-',
                    10 => b == b'T',
                    13 | 16 => b == b':',
                    _ => b.is_ascii_digit(),
                })
        };
        assert!(re(scan["start_time"].as_str().unwrap()));

        let vulns = doc["vulnerabilities"].as_array().unwrap();
        assert_eq!(vulns.len(), 3, "one per location");
        let mut ids = std::collections::HashSet::new();
        for v in vulns {
            assert!(
                ids.insert(v["id"].as_str().unwrap().to_string()),
                "ids unique"
            );
            assert_eq!(v["id"].as_str().unwrap().len(), 36);
            assert_eq!(v["category"], "secret_detection");
            assert!(v["name"].is_string() && v["description"].is_string());
            assert!(
                ["Critical", "High", "Medium", "Low", "Info"]
                    .contains(&v["severity"].as_str().unwrap())
            );
            assert!(v["solution"].is_string());
            let loc = &v["location"];
            assert!(loc["file"].is_string());
            assert!(loc["commit"]["sha"].is_string());
            assert!(loc["start_line"].as_u64().unwrap() >= 1);
            let ident = &v["identifiers"][0];
            for key in ["type", "name", "value"] {
                assert!(ident[key].is_string(), "identifiers[0].{key}");
            }
        }
        assert_eq!(vulns[0]["location"]["file"], "config/app.env");
        assert_eq!(vulns[0]["location"]["commit"]["sha"], NO_COMMIT);
        assert_eq!(vulns[0]["location"]["start_line"], 3);
        assert_eq!(vulns[0]["severity"], "High");
        assert_eq!(vulns[0]["identifiers"][0]["value"], "github.pat.classic");
        assert_eq!(
            vulns[0]["solution"],
            "Revoke it at https://github.com/settings/tokens."
        );
        assert_eq!(vulns[1]["location"]["commit"]["sha"], "0123abcd");
        assert!(
            vulns[1]["description"]
                .as_str()
                .unwrap()
                .contains("Only in git history, not in HEAD: introduced by commit 0123abcd"),
            "{}",
            vulns[1]["description"]
        );
        assert_eq!(vulns[2]["severity"], "Critical");
    }

    #[test]
    fn timestamps() {
        assert_eq!(timestamp(0), "1970-01-01T00:00:00");
        assert_eq!(timestamp(951_782_400), "2000-02-29T00:00:00");
        assert_eq!(timestamp(1_709_251_199), "2024-02-29T23:59:59");
    }
}

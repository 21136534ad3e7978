//! The SARIF 2.1.0 encoder, for GitHub code scanning and other dashboards.
//!
//! One `result` per finding; its `locations` are every place the secret
//! occurs (SARIF: several locations when the problem is fixed only by
//! changing all of them — a leaked secret must be revoked and removed
//! everywhere). The secret is never written, even under `--reveal`: SARIF
//! files are uploaded to third-party services.

use crate::{Report, ReportOptions, RepositoryInfo, RuleMeta};
use keytrail_types::{
    Confidence, Finding, GitBlobState, GitOrigin, Location, Origin, Remediation, Severity,
};
use serde_json::{Value, json};
use std::io::{self, Write};

const SCHEMA_URI: &str = "https://json.schemastore.org/sarif-2.1.0.json";
const INFORMATION_URI: &str = "https://github.com/keytrail/keytrail";

/// SARIF `level` for a severity.
pub fn level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// GitHub's `security-severity` score (a string holding a number in 0–10;
/// ≥ 9 critical, 7–8.9 high, 4–6.9 medium, 0.1–3.9 low).
pub fn security_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
        Severity::Info => "0.0",
    }
}

/// GitHub's `precision` property for a confidence.
fn precision(c: Confidence) -> &'static str {
    match c {
        Confidence::High => "high",
        Confidence::Medium => "medium",
        Confidence::Low => "low",
    }
}

/// Percent-encode a display path as a URI reference.
///
/// Relative paths stay relative (resolved against `%SRCROOT%`); absolute
/// paths become `file://` URIs. Backslashes become slashes. Everything
/// outside RFC 3986 unreserved characters, `/` and `!` (kept readable for
/// archive members, `a.zip!dir/f`) is percent-encoded, including `:` so that
/// a relative path is never read as a scheme.
pub fn path_to_uri(path: &str) -> (String, bool) {
    let path = path.replace('\\', "/");
    let absolute = path.starts_with('/');
    let mut out = String::with_capacity(path.len() + 8);
    if absolute {
        out.push_str("file://");
    }
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/' | b'!') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    (out, !absolute)
}

fn rule_descriptor(id: &str, name: &str, meta: Option<&RuleMeta>, f: &Finding) -> Value {
    let description = meta
        .map(|m| m.description.as_str())
        .filter(|d| !d.is_empty())
        .unwrap_or(name);
    let remediation = meta.map(|m| m.remediation.as_str()).unwrap_or("");
    let references: &[String] = meta.map(|m| m.references.as_slice()).unwrap_or(&[]);
    let mut help_text = if remediation.is_empty() {
        "Revoke or rotate the credential, then remove it from the code and its history.".to_string()
    } else {
        remediation.to_string()
    };
    let mut help_md = help_text.clone();
    if !references.is_empty() {
        help_text.push_str("\n\nReferences:");
        help_md.push_str("\n\n**References:**\n");
        for r in references {
            help_text.push_str(&format!("\n- {r}"));
            help_md.push_str(&format!("\n- <{r}>"));
        }
    }
    let confidence = meta.and_then(|m| m.confidence).unwrap_or(f.confidence);
    let severity = meta.and_then(|m| m.severity).unwrap_or(f.severity);
    let mut tags = vec!["security".to_string(), "secret".to_string()];
    if let Some(m) = meta {
        if !m.provider.is_empty() {
            tags.push(m.provider.clone());
        }
        tags.extend(m.categories.iter().cloned());
    }
    let mut d = json!({
        "id": id,
        "name": name,
        "shortDescription": { "text": name },
        "fullDescription": { "text": description },
        "help": { "text": help_text, "markdown": help_md },
        "defaultConfiguration": { "level": level(severity) },
        "properties": {
            "tags": tags,
            "precision": precision(confidence),
            "security-severity": security_severity(severity),
        },
    });
    if let Some(first) = references.first() {
        d["helpUri"] = json!(first);
    }
    d
}

/// The git provenance of a location, if it came from git.
fn git_origin(loc: &Location) -> Option<&GitOrigin> {
    match &loc.origin {
        Origin::Git(g) => Some(g),
        _ => None,
    }
}

/// Whether a location is in the code as it is now: any non-git location,
/// a git blob still at its path in HEAD, or a staged one.
pub(crate) fn is_current(loc: &Location) -> bool {
    git_origin(loc).is_none_or(|g| g.in_head || g.state == GitBlobState::Staged)
}

fn sarif_location(loc: &Location) -> Value {
    let mut v = physical_location(&loc.path, loc.line, loc.column, &loc.snippet);
    let Some(g) = git_origin(loc) else {
        if let Some(d) = &loc.decoded {
            v["properties"] = json!({ "decoded": d });
        }
        return v;
    };
    // Code scanning pins a location to the file as it is at the analysed
    // commit; a blob that is only in history says so, with its commit.
    let mut props = json!({
        "repository": g.repository,
        "blob": g.blob,
        "in_head": g.in_head,
        "state": state_name(g.state),
    });
    if let Some(d) = &loc.decoded {
        props["decoded"] = json!(d);
    }
    if let Some(c) = &g.commit {
        props["commit"] = json!(c);
    }
    if let Some(d) = &g.author_date {
        props["author_date"] = json!(d);
    }
    v["properties"] = props;
    let text = match (&g.commit, g.in_head) {
        (_, true) => None,
        (Some(c), false) if loc.path == "<commit message>" => Some(format!(
            "In the message of commit {c}, not in any file (`git show {c}`)."
        )),
        (Some(c), false) => Some(format!(
            "Only in git history, not in HEAD: introduced by commit {c} (`git show {c}:{}`).",
            loc.path
        )),
        (None, false) if g.state == GitBlobState::Staged => None,
        (None, false) => Some(format!(
            "In a git object no commit references (blob {}), not in HEAD.",
            g.blob
        )),
    };
    if let Some(text) = text {
        v["message"] = json!({ "text": text });
    }
    v
}

fn state_name(s: GitBlobState) -> &'static str {
    match s {
        GitBlobState::Committed => "committed",
        GitBlobState::Dangling => "dangling",
        GitBlobState::Unreachable => "unreachable",
        GitBlobState::Staged => "staged",
    }
}

/// `primaryLocationLineHash`: GitHub computes one from the line at the
/// analysed commit when a result has none, which pins a secret found only
/// in history to whatever line is there today. keytrail's own does not
/// depend on line numbers or file contents: the first 16 hex digits of
/// SHA-256(rule id ‖ 0 ‖ fingerprint ‖ 0 ‖ primary path), then `:1`, so
/// the alert survives the line moving and is distinct per file.
pub fn line_hash(rule_id: &str, fingerprint: &str, path: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for part in [rule_id, fingerprint, path] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    let digest = h.finalize();
    let mut s = String::with_capacity(18);
    for b in &digest[..8] {
        s.push_str(&format!("{b:02x}"));
    }
    s.push_str(":1");
    s
}

/// The sentence added to a result message when every location of the
/// finding is in git history and none is in HEAD, or `None`.
fn history_only_text(f: &Finding) -> Option<String> {
    if f.locations.iter().any(is_current) {
        return None;
    }
    let first = f.locations.iter().find_map(|l| {
        let g = git_origin(l)?;
        Some((l, g.commit.as_deref()?))
    });
    Some(match first {
        Some((l, c)) if l.path == "<commit message>" => format!(
            " Only in git history, not in HEAD: in the message of commit {c} (`git show {c}`). \
             Rewriting history does not un-leak it: revoke it."
        ),
        Some((l, c)) => format!(
            " Only in git history, not in HEAD: introduced by commit {c} (`git show {c}:{}`). \
             Deleting it from the current code is not enough: revoke it.",
            l.path
        ),
        None => " Only in git objects, not in HEAD.".to_string(),
    })
}

/// SARIF `versionControlProvenance` for the repositories the findings
/// came from (those with a URI: SARIF requires `repositoryUri`).
fn provenance(report: &Report<'_>, repos: &[RepositoryInfo]) -> Vec<Value> {
    let mut used: Vec<&str> = Vec::new();
    for f in report.findings {
        for l in &f.locations {
            if let Some(g) = git_origin(l)
                && !used.contains(&g.repository.as_str())
            {
                used.push(&g.repository);
            }
        }
    }
    repos
        .iter()
        .filter(|r| used.contains(&r.name.as_str()))
        .filter_map(|r| {
            let mut v = json!({ "repositoryUri": r.uri.as_ref()? });
            if let Some(rev) = &r.revision {
                v["revisionId"] = json!(rev);
            }
            if let Some(b) = &r.branch {
                v["branch"] = json!(b);
            }
            v["mappedTo"] = json!({ "uriBaseId": "%SRCROOT%" });
            Some(v)
        })
        .collect()
}

/// Set `run.automationDetails.id` on every run of a SARIF document.
pub fn set_automation_id(doc: &mut Value, id: &str) {
    if let Some(runs) = doc["runs"].as_array_mut() {
        for run in runs {
            run["automationDetails"] = json!({ "id": id });
        }
    }
}

/// A SARIF `location` with a physical location: the path as a URI
/// (relative ones against `%SRCROOT%`), 1-based line and column, and the
/// snippet when there is one.
pub fn physical_location(path: &str, line: u64, column: u64, snippet: &str) -> Value {
    let (uri, relative) = path_to_uri(path);
    let mut artifact = json!({ "uri": uri });
    if relative {
        artifact["uriBaseId"] = json!("%SRCROOT%");
    }
    let mut region = json!({
        "startLine": line.max(1),
        "startColumn": column.max(1),
    });
    if !snippet.is_empty() {
        region["snippet"] = json!({ "text": snippet });
    }
    json!({ "physicalLocation": { "artifactLocation": artifact, "region": region } })
}

/// The SARIF 2.1.0 document around one keytrail run: schema, version and
/// the tool driver with its rules.
pub fn document(tool_version: &str, rules: Vec<Value>, results: Vec<Value>) -> Value {
    let mut driver = json!({
        "name": "keytrail",
        "informationUri": INFORMATION_URI,
        "rules": rules,
    });
    if !tool_version.is_empty() {
        driver["version"] = json!(tool_version);
        driver["semanticVersion"] = json!(tool_version);
    }
    json!({
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": driver },
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    })
}

/// The run's one `invocation`: `executionSuccessful` is true when every
/// input was scanned whole; each input not scanned (unreadable, or an
/// archive cut by a limit) is a `toolExecutionNotifications` entry with
/// its kind as `descriptor.id` and its path as location.
pub fn invocation(not_scanned: &[crate::NotScanned]) -> Value {
    let notes: Vec<Value> = not_scanned
        .iter()
        .map(|n| {
            let mut loc = physical_location(&n.path, n.line.unwrap_or(1), 1, "");
            if n.line.is_none() {
                // No position known: the artifact alone.
                if let Some(p) = loc["physicalLocation"].as_object_mut() {
                    p.remove("region");
                }
            }
            json!({
                "level": "error",
                "descriptor": { "id": n.kind },
                "message": { "text": format!("not scanned: {}: {}", n.path, n.message) },
                "locations": [loc],
            })
        })
        .collect();
    json!({
        "executionSuccessful": not_scanned.is_empty(),
        "toolExecutionNotifications": notes,
    })
}

/// The remediation steps and affected images as plain text appended to a
/// result message (SARIF viewers show the message; the structured block is
/// in the result's `properties.remediation`).
fn remediation_text(r: &Remediation) -> String {
    let mut out = String::from(" Remediation:");
    for (i, step) in r.steps.iter().enumerate() {
        out.push_str(&format!(" {}) {}.", i + 1, step.summary));
    }
    if !r.references.is_empty() {
        out.push_str(&format!(
            " Images containing it: {}.",
            r.references.join(", ")
        ));
    }
    if !r.digests.is_empty() {
        out.push_str(&format!(" Manifest digests: {}.", r.digests.join(", ")));
    }
    out
}

pub(crate) fn write(
    w: &mut dyn Write,
    report: &Report<'_>,
    opts: &ReportOptions,
) -> io::Result<()> {
    // Rules referenced by the results, in order of first use.
    let mut rule_ids: Vec<&str> = Vec::new();
    let mut rules = Vec::new();
    let mut results = Vec::new();
    for f in report.findings {
        let index = match rule_ids.iter().position(|id| *id == f.rule_id) {
            Some(i) => i,
            None => {
                rule_ids.push(&f.rule_id);
                rules.push(rule_descriptor(
                    &f.rule_id,
                    &f.rule_name,
                    report.rule(&f.rule_id),
                    f,
                ));
                rule_ids.len() - 1
            }
        };
        let n = f.locations.len();
        let mut message = format!(
            "{} found: {} ({} location{}). Revoke or rotate it; removing it from the code is not enough.",
            f.rule_name,
            f.secret_redacted,
            n,
            if n == 1 { "" } else { "s" }
        );
        if let Some(r) = &f.remediation {
            message.push_str(&remediation_text(r));
        }
        if let Some(text) = history_only_text(f) {
            message.push_str(&text);
        }
        if let Some(v) = &f.verification {
            message.push_str(&format!(" Verification: {}", v.status));
            if let Some((k, val)) = v.identity.first() {
                message.push_str(&format!(" ({k} {val})"));
            }
            message.push('.');
        }
        if let Some(b) = &f.blast_radius {
            message.push_str(&format!(" Blast radius: {}.", b.privilege));
        }
        // The primary (first) location is the one code scanning shows:
        // a place in the current code when there is one.
        let mut locations: Vec<&Location> = f.locations.iter().collect();
        locations.sort_by_key(|l| !is_current(l));
        let mut properties = json!({
            "confidence": f.confidence.as_str(),
            "severity": f.severity.as_str(),
            "secret_redacted": f.secret_redacted,
        });
        if !f.context.is_empty() {
            let ctx: serde_json::Map<String, Value> = f
                .context
                .iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect();
            properties["context"] = Value::Object(ctx);
        }
        if let Some(r) = &f.remediation {
            properties["remediation"] = serde_json::to_value(r)?;
        }
        if let Some(v) = &f.verification {
            properties["verification"] =
                serde_json::to_value(crate::json::VerificationView::new(v))?;
        }
        if let Some(b) = &f.blast_radius {
            properties["blast_radius"] = serde_json::to_value(b)?;
        }
        let primary = locations.first().map(|l| l.path.as_str()).unwrap_or("");
        if let Some(g) = locations.first().and_then(|l| git_origin(l)) {
            properties["in_head"] = json!(g.in_head);
            if let Some(c) = &g.commit {
                properties["commit"] = json!(c);
            }
        }
        properties["history_only"] = json!(!f.locations.iter().any(is_current));
        results.push(json!({
            "ruleId": f.rule_id,
            "ruleIndex": index,
            "level": level(f.severity),
            "message": { "text": message },
            "locations": locations.into_iter().map(sarif_location).collect::<Vec<_>>(),
            "partialFingerprints": {
                "keytrail/v1": f.fingerprint.0,
                "primaryLocationLineHash": line_hash(&f.rule_id, &f.fingerprint.0, primary),
            },
            "properties": properties,
        }));
    }
    let mut doc = document(&opts.tool_version, rules, results);
    let vcp = provenance(report, &opts.repositories);
    if !vcp.is_empty() {
        doc["runs"][0]["versionControlProvenance"] = json!(vcp);
    }
    if let Some(id) = &opts.automation_id {
        set_automation_id(&mut doc, id);
    }
    doc["runs"][0]["invocations"] = json!([invocation(&report.summary.not_scanned)]);
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
        render_with(&findings, &rules, &summary)
    }

    fn render_with(findings: &[Finding], rules: &[RuleMeta], summary: &crate::Summary) -> Value {
        let report = Report {
            findings,
            rules,
            summary,
        };
        let opts = ReportOptions {
            reveal: true,
            tool_version: "0.1.0".into(),
            repositories: vec![RepositoryInfo {
                name: ".".into(),
                uri: Some("https://git.example/org/app.git".into()),
                revision: Some("89abcdef".into()),
                branch: Some("main".into()),
            }],
            automation_id: Some("keytrail-scan/".into()),
            ..Default::default()
        };
        let mut out = Vec::new();
        write_report(&mut out, Format::Sarif, &report, &opts).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            !text.contains(&testdata::github_secret()),
            "SARIF never reveals"
        );
        assert!(
            !text.contains(&testdata::aws_secret()),
            "SARIF never reveals"
        );
        serde_json::from_str(&text).unwrap()
    }

    /// The draft-4 validator for the official schema (see
    /// `keytrail_testkit::sarif::schema` for the one edit it needs).
    fn validator() -> jsonschema::Validator {
        jsonschema::draft4::new(&keytrail_testkit::sarif::schema()).expect("schema compiles")
    }

    #[test]
    fn validates_against_official_schema() {
        let validator = validator();
        let doc = render();
        let errors: Vec<String> = validator
            .iter_errors(&doc)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{errors:#?}");
    }

    #[test]
    fn schema_check_rejects_broken_sarif() {
        // Guards the test above: the validator must actually look at the document.
        let validator = validator();
        let mut doc = render();
        doc["runs"][0]["results"][0]["level"] = json!("fatal");
        assert!(!validator.is_valid(&doc));
    }

    #[test]
    fn inputs_not_scanned_are_tool_execution_notifications() {
        let doc = render();
        let inv = &doc["runs"][0]["invocations"][0];
        assert_eq!(inv["executionSuccessful"], false);
        let notes = inv["toolExecutionNotifications"].as_array().unwrap();
        assert_eq!(notes.len(), 2);
        assert_eq!(notes[0]["descriptor"]["id"], "archive_limit");
        assert_eq!(
            notes[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            "dist/big.zip!filler.bin"
        );
        assert!(
            notes[0]["message"]["text"]
                .as_str()
                .unwrap()
                .contains("not scanned")
        );
        assert_eq!(
            notes[1]["locations"][0]["physicalLocation"]["region"]["startLine"],
            7
        );
        let clean = invocation(&[]);
        assert_eq!(clean["executionSuccessful"], true);
        assert_eq!(clean["toolExecutionNotifications"], json!([]));
    }

    #[test]
    fn results_and_rules() {
        let doc = render();
        let run = &doc["runs"][0];
        let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0]["id"], "github.pat.classic");
        assert_eq!(rules[0]["properties"]["precision"], "high");
        assert_eq!(rules[0]["properties"]["security-severity"], "8.0");
        assert!(
            rules[0]["help"]["text"]
                .as_str()
                .unwrap()
                .contains("Revoke")
        );
        assert_eq!(rules[1]["properties"]["security-severity"], "9.5");
        let results = run["results"].as_array().unwrap();
        assert_eq!(results[0]["ruleId"], "github.pat.classic");
        assert_eq!(results[0]["level"], "error");
        assert_eq!(results[1]["ruleIndex"], 1);
        assert_eq!(
            results[0]["partialFingerprints"]["keytrail/v1"],
            "00112233445566778899aabbccddeeff"
        );
        assert!(results[0]["properties"].get("remediation").is_none());
        let r = &results[1]["properties"]["remediation"];
        assert_eq!(r["steps"][0]["action"], "rotate_credential");
        assert_eq!(r["affected"][0]["layers"][0]["instruction"], "COPY");
        let msg = results[1]["message"]["text"].as_str().unwrap();
        assert!(
            msg.contains("Remediation: 1) Revoke and rotate the credential first.")
                && msg.contains("Images containing it: registry.example/app:1.")
                && msg.contains("Manifest digests: sha256:m1."),
            "{msg}"
        );
        let locs = results[0]["locations"].as_array().unwrap();
        assert_eq!(locs.len(), 2);
        let pl = &locs[1]["physicalLocation"];
        assert_eq!(pl["artifactLocation"]["uri"], "src/my%20file%231.py");
        assert_eq!(pl["artifactLocation"]["uriBaseId"], "%SRCROOT%");
        assert_eq!(pl["region"]["startLine"], 10);
        assert_eq!(pl["region"]["startColumn"], 9);
        assert!(
            pl["region"]["snippet"]["text"]
                .as_str()
                .unwrap()
                .contains("****")
        );
    }

    /// The sample's GitHub finding with only its git location: a secret
    /// deleted from the code, still in history.
    fn history_only_sample() -> (Vec<Finding>, Vec<RuleMeta>, crate::Summary) {
        let (mut findings, rules, summary) = testdata::sample();
        findings[0].locations.remove(0);
        (findings, rules, summary)
    }

    #[test]
    fn git_history_results_carry_their_commit() {
        let (findings, rules, summary) = history_only_sample();
        let doc = render_with(&findings, &rules, &summary);
        let errors: Vec<String> = validator()
            .iter_errors(&doc)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{errors:#?}");
        let run = &doc["runs"][0];
        assert_eq!(run["automationDetails"]["id"], "keytrail-scan/");
        let vcp = run["versionControlProvenance"].as_array().unwrap();
        assert_eq!(vcp.len(), 1);
        assert_eq!(vcp[0]["repositoryUri"], "https://git.example/org/app.git");
        assert_eq!(vcp[0]["revisionId"], "89abcdef");
        assert_eq!(vcp[0]["branch"], "main");
        let r = &run["results"][0];
        let msg = r["message"]["text"].as_str().unwrap();
        assert!(
            msg.contains("Only in git history, not in HEAD: introduced by commit 0123abcd (`git show 0123abcd:src/my file#1.py`)"),
            "{msg}"
        );
        assert_eq!(r["properties"]["history_only"], true);
        assert_eq!(r["properties"]["commit"], "0123abcd");
        let loc = &r["locations"][0];
        assert_eq!(loc["properties"]["commit"], "0123abcd");
        assert_eq!(loc["properties"]["blob"], "feedface");
        assert_eq!(loc["properties"]["in_head"], false);
        assert_eq!(loc["properties"]["state"], "committed");
        assert!(
            loc["message"]["text"]
                .as_str()
                .unwrap()
                .contains("not in HEAD")
        );
        // The image finding is not from git: no history sentence.
        let img = run["results"][1]["message"]["text"].as_str().unwrap();
        assert!(!img.contains("git history"), "{img}");
        assert_eq!(run["results"][1]["properties"]["history_only"], false);
    }

    #[test]
    fn current_locations_come_first_and_history_is_not_claimed() {
        let (mut findings, rules, summary) = testdata::sample();
        findings[0].locations.reverse();
        let doc = render_with(&findings, &rules, &summary);
        let r = &doc["runs"][0]["results"][0];
        let msg = r["message"]["text"].as_str().unwrap();
        assert!(!msg.contains("git history"), "in a file too: {msg}");
        assert_eq!(
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            "config/app.env"
        );
        assert!(r["locations"][0].get("properties").is_none());
        assert_eq!(r["locations"][1]["properties"]["commit"], "0123abcd");
    }

    #[test]
    fn decoded_locations_say_how() {
        let (mut findings, rules, summary) = testdata::sample();
        for l in &mut findings[0].locations {
            l.decoded = Some(match l.origin {
                Origin::Git(_) => "base64+base64".into(),
                _ => "base64".into(),
            });
        }
        let doc = render_with(&findings, &rules, &summary);
        let locs = doc["runs"][0]["results"][0]["locations"]
            .as_array()
            .unwrap();
        assert_eq!(locs.len(), 2);
        for l in locs {
            let want = if l["properties"].get("commit").is_some() {
                "base64+base64"
            } else {
                "base64"
            };
            assert_eq!(l["properties"]["decoded"], want, "{l}");
        }
        let errors: Vec<String> = validator()
            .iter_errors(&doc)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{errors:#?}");
    }

    #[test]
    fn line_hash_ignores_lines_and_follows_rule_secret_and_path() {
        let (findings, rules, summary) = testdata::sample();
        let hash = |f: &[Finding]| {
            render_with(f, &rules, &summary)["runs"][0]["results"][0]["partialFingerprints"]
                ["primaryLocationLineHash"]
                .clone()
        };
        let base = hash(&findings);
        assert!(
            base.as_str().unwrap().ends_with(":1") && base.as_str().unwrap().len() == 18,
            "{base}"
        );
        let mut moved = findings.clone();
        moved[0].locations[0].line += 40;
        moved[0].locations[0].column = 1;
        moved[0].locations[0].snippet = "elsewhere".into();
        assert_eq!(hash(&moved), base, "a line move keeps the alert");
        let mut renamed = findings.clone();
        renamed[0].locations[0].path = "config/other.env".into();
        assert_ne!(hash(&renamed), base);
        let mut other_secret = findings.clone();
        other_secret[0].fingerprint.0 = "ffff".into();
        assert_ne!(hash(&other_secret), base);
    }

    #[test]
    fn no_provenance_for_repositories_without_findings_or_uri() {
        let (findings, rules, summary) = testdata::sample();
        let report = Report {
            findings: &findings[1..],
            rules: &rules,
            summary: &summary,
        };
        let opts = ReportOptions {
            repositories: vec![RepositoryInfo {
                name: ".".into(),
                uri: Some("https://git.example/org/app.git".into()),
                ..Default::default()
            }],
            ..Default::default()
        };
        let mut out = Vec::new();
        write_report(&mut out, Format::Sarif, &report, &opts).unwrap();
        let doc: Value = serde_json::from_slice(&out).unwrap();
        assert!(doc["runs"][0].get("versionControlProvenance").is_none());
        assert!(doc["runs"][0].get("automationDetails").is_none());
    }

    #[test]
    fn uri_encoding() {
        assert_eq!(path_to_uri("a b/c.txt"), ("a%20b/c.txt".into(), true));
        assert_eq!(path_to_uri("x.zip!in/f"), ("x.zip!in/f".into(), true));
        assert_eq!(path_to_uri("dir\\f:1"), ("dir/f%3A1".into(), true));
        assert_eq!(path_to_uri("/abs/é"), ("file:///abs/%C3%A9".into(), false));
    }
}

//! `keytrail verify FINDINGS`: read a JSON or JSONL report written by
//! `keytrail scan`, and get each finding's secret back.
//!
//! Reports hold no secrets (only with `--reveal`), so the secret is re-read
//! from where the finding says it is: the file at `path` (relative to the
//! root given, by default the working directory), or for git history the
//! blob or commit object (`git cat-file`). The finding's rule is run over
//! that content and the match whose fingerprint equals the finding's
//! `fingerprint` is the secret: a file that changed since the scan cannot
//! hand over a different secret. A `secret` field (reports written with
//! `--reveal`) is used when its fingerprint matches. When no location
//! yields the secret (the file is gone or changed, the source was stdin,
//! an archive member or an image layer) the finding is reported `skipped`
//! with the reason.

use keytrail_rules::Rule;
use keytrail_scan::Scanner;
use keytrail_types::{Confidence, Finding, Fingerprint, Location, Origin, Secret, Severity};
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;

/// Largest file re-read to recover a secret.
pub const MAX_REREAD: u64 = 256 << 20;

/// A finding read from a report, with its secret when it could be recovered.
#[derive(Debug, Clone)]
pub struct Recovered {
    /// The finding (its `secret` is empty when `missing` is set).
    pub finding: Finding,
    /// Why the secret could not be recovered.
    pub missing: Option<String>,
}

#[derive(Deserialize)]
struct FileFinding {
    rule_id: String,
    #[serde(default)]
    rule_name: String,
    confidence: Confidence,
    severity: Severity,
    fingerprint: String,
    #[serde(default)]
    secret_redacted: String,
    #[serde(default)]
    secret: Option<String>,
    #[serde(default)]
    context: serde_json::Map<String, Value>,
    #[serde(default)]
    notes: Vec<String>,
    #[serde(default)]
    locations: Vec<Location>,
}

fn to_finding(f: FileFinding) -> (Finding, Option<String>) {
    let context = f
        .context
        .into_iter()
        .filter_map(|(k, v)| crate::jsonpath::text(&v).map(|v| (k, v)))
        .collect();
    (
        Finding {
            rule_id: f.rule_id,
            rule_name: f.rule_name,
            confidence: f.confidence,
            severity: f.severity,
            fingerprint: Fingerprint(f.fingerprint),
            secret: Secret::new(String::new()),
            secret_redacted: f.secret_redacted,
            context,
            locations: f.locations,
            notes: f.notes,
            remediation: None,
            verification: None,
            blast_radius: None,
        },
        f.secret,
    )
}

/// Parse a report. Errors name the file and the line (and column).
pub fn read(path: &Path) -> Result<Vec<(Finding, Option<String>)>, String> {
    let name = path.display();
    let bytes = std::fs::read(path).map_err(|e| format!("{name}: cannot be read: {e}"))?;
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        let upto = &bytes[..e.valid_up_to()];
        let line = upto.iter().filter(|&&b| b == b'\n').count() + 1;
        format!("{name}:{line}: not UTF-8 text")
    })?;
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    if text.trim().is_empty() {
        return Err(format!(
            "{name}: empty: not a keytrail JSON or JSONL report"
        ));
    }
    let is_document = first.trim() == "{" || serde_json::from_str::<Value>(text).is_ok();
    if is_document {
        let v: Value = serde_json::from_str(text)
            .map_err(|e| format!("{name}:{}:{}: {e}", e.line(), e.column()))?;
        let Some(list) = v.get("findings").and_then(Value::as_array) else {
            if v.get("rule_id").is_some() {
                return read_lines(path, text);
            }
            return Err(format!(
                "{name}: not a keytrail JSON report (no `findings` array; SARIF and GitLab reports cannot be verified: write --format json or jsonl)"
            ));
        };
        let mut out = Vec::new();
        for (i, f) in list.iter().enumerate() {
            let f: FileFinding = serde_json::from_value(f.clone())
                .map_err(|e| format!("{name}: findings[{i}]: {e}"))?;
            out.push(to_finding(f));
        }
        return Ok(out);
    }
    read_lines(path, text)
}

fn read_lines(path: &Path, text: &str) -> Result<Vec<(Finding, Option<String>)>, String> {
    let name = path.display();
    let mut order: Vec<String> = Vec::new();
    let mut by_fp: HashMap<String, (Finding, Option<String>)> = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line)
            .map_err(|e| format!("{name}:{}:{}: {e}", n + 1, e.column()))?;
        if v.get("type").is_some() {
            continue; // not_scanned lines
        }
        let loc: Location = serde_json::from_value(v.clone())
            .map_err(|e| format!("{name}:{}: location: {e}", n + 1))?;
        let mut f: FileFinding =
            serde_json::from_value(v).map_err(|e| format!("{name}:{}: {e}", n + 1))?;
        f.locations = Vec::new();
        let fp = f.fingerprint.clone();
        match by_fp.get_mut(&fp) {
            Some((existing, _)) => existing.locations.push(loc),
            None => {
                let (mut finding, secret) = to_finding(f);
                finding.locations.push(loc);
                order.push(fp.clone());
                by_fp.insert(fp, (finding, secret));
            }
        }
    }
    Ok(order
        .into_iter()
        .filter_map(|fp| by_fp.remove(&fp))
        .collect())
}

/// Recovers secrets by re-reading the content the report points at.
pub struct Recoverer<'r> {
    root: std::path::PathBuf,
    rules: HashMap<&'r str, &'r Rule>,
    scanners: HashMap<String, Scanner>,
}

impl<'r> Recoverer<'r> {
    /// Paths in the report are relative to `root`; `rules` are the rules
    /// that may have produced the findings.
    pub fn new(root: &Path, rules: &'r [Rule]) -> Recoverer<'r> {
        Recoverer {
            root: root.to_path_buf(),
            rules: rules.iter().map(|r| (r.id(), r)).collect(),
            scanners: HashMap::new(),
        }
    }

    /// The finding with its secret, or why not.
    pub fn recover(&mut self, mut f: Finding, secret: Option<String>) -> Recovered {
        if let Some(s) = secret {
            if keytrail_scan::fingerprint(&f.rule_id, s.as_bytes()) == f.fingerprint {
                f.secret = Secret::new(s);
                return Recovered {
                    finding: f,
                    missing: None,
                };
            }
            return Recovered {
                finding: f,
                missing: Some("the report's `secret` does not match its fingerprint".into()),
            };
        }
        let Some(rule) = self.rules.get(f.rule_id.as_str()).copied() else {
            return Recovered {
                missing: Some(format!(
                    "rule {} is not known to this keytrail: the secret cannot be re-read",
                    f.rule_id
                )),
                finding: f,
            };
        };
        let scanner = self
            .scanners
            .entry(f.rule_id.clone())
            .or_insert_with(|| Scanner::new(vec![rule.clone()]).0);
        let mut reasons = Vec::new();
        for loc in &f.locations {
            let content = match read_location(&self.root, loc) {
                Ok(c) => c,
                Err(e) => {
                    reasons.push(e);
                    continue;
                }
            };
            let mut found: Option<(String, Vec<(String, String)>)> = None;
            scanner.scan(&content, &mut |m| {
                if found.is_some() {
                    return;
                }
                let s = &content[m.secret.clone()];
                if keytrail_scan::fingerprint(&f.rule_id, s) == f.fingerprint {
                    let ctx = m
                        .context
                        .iter()
                        .map(|(k, r)| {
                            (
                                k.to_string(),
                                String::from_utf8_lossy(&content[r.clone()]).into_owned(),
                            )
                        })
                        .collect();
                    found = Some((String::from_utf8_lossy(s).into_owned(), ctx));
                }
            });
            match found {
                Some((s, ctx)) => {
                    f.secret = Secret::new(s);
                    for (k, v) in ctx {
                        if !f.context.iter().any(|(ek, _)| *ek == k) {
                            f.context.push((k, v));
                        }
                    }
                    return Recovered {
                        finding: f,
                        missing: None,
                    };
                }
                None => reasons.push(format!(
                    "{}: the secret is no longer there (no match with this fingerprint)",
                    loc.path
                )),
            }
        }
        let why = if reasons.is_empty() {
            "the finding has no locations".to_string()
        } else {
            format!("source gone: {}", reasons.join("; "))
        };
        Recovered {
            finding: f,
            missing: Some(why),
        }
    }
}

fn read_capped(path: &Path) -> Result<Vec<u8>, String> {
    let meta = std::fs::metadata(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            format!("{}: no longer exists", path.display())
        } else {
            format!("{}: {e}", path.display())
        }
    })?;
    if meta.len() > MAX_REREAD {
        return Err(format!(
            "{}: larger than {} MiB: not re-read",
            path.display(),
            MAX_REREAD >> 20
        ));
    }
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn read_location(root: &Path, loc: &Location) -> Result<Vec<u8>, String> {
    match &loc.origin {
        Origin::File | Origin::Log => {
            if loc.path.contains('!') && !root.join(&loc.path).exists() {
                return Err(format!(
                    "{}: archive members are not re-read (scan with --verify instead)",
                    loc.path
                ));
            }
            read_capped(&root.join(&loc.path))
        }
        Origin::Stdin => Err("standard input is gone (scan with --verify instead)".into()),
        Origin::Image(_) => Err(format!(
            "{}: image layers are not re-read (scan with --verify instead)",
            loc.path
        )),
        Origin::Export(_) => Err(format!(
            "{}: export records are not re-read (scan with --verify instead)",
            loc.path
        )),
        Origin::Git(g) => {
            let repo = root.join(&g.repository);
            if !repo.is_dir() {
                return Err(format!("{}: repository not found locally", g.repository));
            }
            let is_message = loc.path == "<commit message>";
            let (kind, id) = if is_message {
                ("commit", g.commit.as_deref().unwrap_or(&g.blob))
            } else {
                ("blob", g.blob.as_str())
            };
            if !id.bytes().all(|b| b.is_ascii_hexdigit()) || id.is_empty() {
                return Err(format!("{}: malformed object id", loc.path));
            }
            let out = std::process::Command::new("git")
                .arg("-C")
                .arg(&repo)
                .args(["cat-file", kind, id])
                .output()
                .map_err(|e| format!("git: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "{}: object {id} is not in {}",
                    loc.path, g.repository
                ));
            }
            Ok(out.stdout)
        }
    }
}

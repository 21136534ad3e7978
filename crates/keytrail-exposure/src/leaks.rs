//! Leaked credentials from `keytrail scan` output: which credential, when it was
//! first exposed (`leaked_at`) and where.
//!
//! Input is the scan's `json` document or its `jsonl` lines (docs/output.md). The
//! earliest evidence of exposure is taken from each location's provenance: the
//! author date of every commit that introduced the blob (git), the creation time
//! of the image layer or config entry (image, when the location carries
//! `created`), the time at the start of the log line (log). A location without a
//! date (a plain file, stdin) gives none: the credential then has no `leaked_at`
//! unless `--leaked-at` says so, and carries a note saying why, never a guess.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use keytrail_detect::time::{format_rfc3339_ms, parse_rfc3339_ms};
use keytrail_types::Diagnostic;
use serde::Serialize;
use serde_json::Value;

/// Largest findings file read (a JSON document is parsed whole).
pub const MAX_FINDINGS_BYTES: u64 = 1 << 30;

/// What kind of credential leaked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    /// A long-term AWS access key (`AKIA…`).
    AwsAccessKey,
    /// Temporary AWS credentials (`ASIA…`).
    AwsSessionKey,
    /// A Google Cloud service-account key (its `private_key_id`).
    GcpServiceAccountKey,
    /// An Entra ID application's client secret (its `keyId` once the
    /// snapshot tells it, else the finding fingerprint).
    AzureClientSecret,
    /// A GitHub personal access token (classic or fine-grained).
    GithubPat,
    /// Any other credential (identified by its finding fingerprint).
    Other,
}

/// One place a credential was exposed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Place {
    /// `git`, `image`, `log`, `file` or `stdin`.
    pub source: String,
    /// Display path of the location (for git: the path in the commit).
    pub path: String,
    /// Line of the secret.
    pub line: u64,
    /// Time of this piece of evidence (RFC 3339, UTC), when its provenance has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// Repository (git).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// Commit that introduced it (git).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// Image reference (image).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Layer digest, or `config` for the image config (image).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer: Option<String>,
    /// Epoch ms of `time` (not serialised).
    #[serde(skip)]
    pub time_ms: Option<i64>,
}

/// One leaked credential, merged over every finding and location that names it.
#[derive(Debug, Clone, Serialize)]
pub struct Leak {
    /// The credential's id: the access key id for AWS keys, the key id
    /// (`private_key_id`) for Google Cloud service-account keys, else the
    /// finding fingerprint.
    pub credential_id: String,
    /// What it is.
    pub kind: CredentialKind,
    /// The identity the leaked text names next to the credential (the
    /// `client_email` of a service-account key file, the application id
    /// next to a client secret), when it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// The account the leaked text names (the Entra tenant id next to a
    /// client secret), when it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Rule ids that found it.
    pub rule_ids: Vec<String>,
    /// Fingerprints of the findings.
    pub fingerprints: Vec<String>,
    /// Redacted secret for display.
    pub secret_redacted: String,
    /// Earliest evidence of exposure (epoch ms).
    #[serde(skip)]
    pub leaked_at_ms: Option<i64>,
    /// What `leaked_at` comes from (`git commit 1a2b3c… (author date)`, `--leaked-at`).
    pub leaked_at_from: Option<String>,
    /// Every place it was seen, earliest first (places without a time last).
    pub leaked_where: Vec<Place>,
    /// Why something could not be established (no date, no key id, …).
    pub notes: Vec<String>,
}

/// Result of reading findings: the leaks and the problems met (each naming the
/// file and position).
#[derive(Debug, Default)]
pub struct Leaks {
    /// Leaked credentials, by credential id.
    pub leaks: Vec<Leak>,
    /// Findings that could not become a leak (with why), and malformed lines.
    pub diagnostics: Vec<Diagnostic>,
    /// Finding lines or documents read.
    pub findings_read: u64,
}

/// Reads one findings file (`keytrail scan --format json` or `jsonl`). A file that
/// cannot be read at all, or a JSON document that does not parse, is an `Err` naming
/// the file and position; a bad JSONL line is a diagnostic and the rest is read.
pub fn read_findings(path: &Path, into: &mut Leaks) -> Result<(), Diagnostic> {
    let name = path.display().to_string();
    let file = std::fs::File::open(path)
        .map_err(|e| Diagnostic::error("unreadable", &name, format!("cannot open: {e}")))?;
    let meta = file
        .metadata()
        .map_err(|e| Diagnostic::error("unreadable", &name, format!("cannot stat: {e}")))?;
    if !meta.is_file() {
        return Err(Diagnostic::error("unreadable", &name, "not a regular file"));
    }
    if meta.len() > MAX_FINDINGS_BYTES {
        return Err(Diagnostic::error(
            "too_large",
            &name,
            format!(
                "{} bytes: larger than the {} MiB a findings file may have",
                meta.len(),
                MAX_FINDINGS_BYTES >> 20
            ),
        ));
    }
    let mut reader = BufReader::new(file.take(MAX_FINDINGS_BYTES));
    // A JSON document starts with `{` and its first member is on the first line
    // or later; a JSONL file has one complete object per line. Tell them apart by
    // whether the first non-empty line parses as an object on its own.
    let mut first = String::new();
    let mut lineno = 0u64;
    loop {
        first.clear();
        let n = reader
            .read_line(&mut first)
            .map_err(|e| Diagnostic::error("unreadable", &name, format!("cannot read: {e}")))?;
        if n == 0 {
            return Err(Diagnostic::error(
                "invalid_findings",
                &name,
                "empty: expected the output of `keytrail scan --format json` or `--format jsonl`",
            ));
        }
        lineno += 1;
        if !first.trim().is_empty() {
            break;
        }
    }
    let mut acc = Acc::default();
    match serde_json::from_str::<Value>(first.trim()) {
        Ok(v) if v.get("findings").is_none() && v.is_object() => {
            // JSONL: this line and every following one. A first line that is no
            // finding means this is not scan output at all.
            if v.get("rule_id").is_none() && v.get("type").is_none() {
                return Err(Diagnostic::error(
                    "invalid_findings",
                    &name,
                    "neither a `findings` document nor finding lines (no `rule_id`): expected the output of `keytrail scan --format json` or `--format jsonl`",
                )
                .at(Some(lineno), Some(1)));
            }
            acc.jsonl_line(&v, &name, lineno);
            into.findings_read += 1;
            let mut line = String::new();
            loop {
                line.clear();
                match reader.read_line(&mut line) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) => {
                        into.diagnostics.push(
                            Diagnostic::error("unreadable", &name, format!("cannot read: {e}"))
                                .at(Some(lineno + 1), None),
                        );
                        break;
                    }
                }
                lineno += 1;
                if line.trim().is_empty() {
                    continue;
                }
                match serde_json::from_str::<Value>(line.trim()) {
                    Ok(v) if v.is_object() => {
                        acc.jsonl_line(&v, &name, lineno);
                        into.findings_read += 1;
                    }
                    Ok(_) => into.diagnostics.push(
                        Diagnostic::error(
                            "invalid_findings",
                            &name,
                            "not a JSON object (expected one finding location per line)",
                        )
                        .at(Some(lineno), Some(1)),
                    ),
                    Err(e) => into.diagnostics.push(
                        Diagnostic::error("invalid_findings", &name, format!("{e}"))
                            .at(Some(lineno), Some(e.column() as u64)),
                    ),
                }
            }
        }
        _ => {
            // A JSON document: parse it whole, positions relative to the file.
            let mut text = String::with_capacity(meta.len() as usize);
            text.push_str(&"\n".repeat(lineno as usize - 1));
            text.push_str(&first);
            reader
                .read_to_string(&mut text)
                .map_err(|e| Diagnostic::error("unreadable", &name, format!("cannot read: {e}")))?;
            let doc: Value = serde_json::from_str(&text).map_err(|e| {
                Diagnostic::error("invalid_findings", &name, format!("{e}"))
                    .at(Some(e.line() as u64), Some(e.column() as u64))
            })?;
            let Some(findings) = doc.get("findings").and_then(Value::as_array) else {
                return Err(Diagnostic::error(
                    "invalid_findings",
                    &name,
                    "no `findings` array: expected the output of `keytrail scan --format json` or `--format jsonl`",
                )
                .at(Some(1), Some(1)));
            };
            for (i, f) in findings.iter().enumerate() {
                into.findings_read += 1;
                let at = format!("findings[{i}]");
                let locs = f.get("locations").and_then(Value::as_array);
                match locs {
                    Some(locs) if !locs.is_empty() => {
                        for l in locs {
                            acc.add(f, l, &name, &at);
                        }
                    }
                    _ => acc.add(f, &Value::Null, &name, &at),
                }
            }
        }
    }
    acc.finish(into);
    Ok(())
}

/// Leaks being merged, by credential id.
#[derive(Default)]
struct Acc {
    by_id: BTreeMap<String, Leak>,
    diags: Vec<Diagnostic>,
    /// Secrets without a usable id already reported (by fingerprint).
    reported: std::collections::BTreeSet<String>,
}

impl Acc {
    fn jsonl_line(&mut self, v: &Value, file: &str, line: u64) {
        if v.get("type").and_then(Value::as_str) == Some("not_scanned") {
            return;
        }
        self.add(v, v, file, &format!("line {line}"));
    }

    /// Adds one (finding, location) pair; `at` names its position in the file.
    fn add(&mut self, f: &Value, loc: &Value, file: &str, at: &str) {
        let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let Some(rule_id) = s(f, "rule_id") else {
            self.diags.push(Diagnostic::error(
                "invalid_findings",
                file,
                format!("{at}: no `rule_id`: not a keytrail finding"),
            ));
            return;
        };
        let fingerprint = s(f, "fingerprint").unwrap_or_default();
        let Some((id, kind)) = credential_id(f, &rule_id, &fingerprint) else {
            if self.reported.insert(fingerprint.clone()) {
                self.diags.push(Diagnostic::skip(
                    "no_key_id",
                    file,
                    format!(
                        "{at}: {rule_id} finding {fingerprint} names no access key id (a secret key alone cannot be joined with CloudTrail; rerun the scan with --reveal if it is an `aws.access_key_id` finding)"
                    ),
                ));
            }
            return;
        };
        let principal = context(f, "client_email").or_else(|| context(f, "client_id"));
        let account = context(f, "tenant");
        let leak = self.by_id.entry(id.clone()).or_insert_with(|| Leak {
            credential_id: id,
            kind,
            principal: None,
            account: None,
            rule_ids: Vec::new(),
            fingerprints: Vec::new(),
            secret_redacted: s(f, "secret_redacted").unwrap_or_default(),
            leaked_at_ms: None,
            leaked_at_from: None,
            leaked_where: Vec::new(),
            notes: Vec::new(),
        });
        if leak.principal.is_none() {
            leak.principal = principal;
        }
        if leak.account.is_none() {
            leak.account = account;
        }
        if !leak.rule_ids.contains(&rule_id) {
            leak.rule_ids.push(rule_id);
        }
        if !fingerprint.is_empty() && !leak.fingerprints.contains(&fingerprint) {
            leak.fingerprints.push(fingerprint);
        }
        // Pairs carry the secret key; prefer their redacted form.
        if leak.secret_redacted.is_empty() {
            leak.secret_redacted = s(f, "secret_redacted").unwrap_or_default();
        }
        if loc.is_null() {
            return;
        }
        for p in places(loc) {
            if !leak.leaked_where.contains(&p) && leak.leaked_where.len() < MAX_PLACES {
                leak.leaked_where.push(p);
            }
        }
    }

    fn finish(self, into: &mut Leaks) {
        into.diagnostics.extend(self.diags);
        for (_, mut leak) in self.by_id {
            leak.leaked_where
                .sort_by_key(|p| (p.time_ms.is_none(), p.time_ms, p.path.clone()));
            if let Some(first) = leak.leaked_where.first()
                && let Some(t) = first.time_ms
            {
                leak.leaked_at_ms = Some(t);
                leak.leaked_at_from = Some(describe(first));
            }
            merge_into(&mut into.leaks, leak);
        }
    }
}

/// Most places kept per credential.
const MAX_PLACES: usize = 200;

/// Merges a leak into the list (the same credential read from several files).
fn merge_into(list: &mut Vec<Leak>, leak: Leak) {
    if let Some(old) = list
        .iter_mut()
        .find(|l| l.credential_id == leak.credential_id)
    {
        if old.principal.is_none() {
            old.principal = leak.principal;
        }
        if old.account.is_none() {
            old.account = leak.account;
        }
        for r in leak.rule_ids {
            if !old.rule_ids.contains(&r) {
                old.rule_ids.push(r);
            }
        }
        for f in leak.fingerprints {
            if !old.fingerprints.contains(&f) {
                old.fingerprints.push(f);
            }
        }
        for p in leak.leaked_where {
            if !old.leaked_where.contains(&p) && old.leaked_where.len() < MAX_PLACES {
                old.leaked_where.push(p);
            }
        }
        old.leaked_where
            .sort_by_key(|p| (p.time_ms.is_none(), p.time_ms, p.path.clone()));
        if let Some(first) = old.leaked_where.first()
            && let Some(t) = first.time_ms
        {
            old.leaked_at_ms = Some(t);
            old.leaked_at_from = Some(describe(first));
        }
    } else {
        list.push(leak);
    }
}

/// How a place dates the leak, for `leaked_at_from`.
fn describe(p: &Place) -> String {
    match p.source.as_str() {
        "git" => format!(
            "git commit {} (author date)",
            p.commit.as_deref().unwrap_or("?")
        ),
        "image" => format!(
            "image {} {} (creation time)",
            p.image.as_deref().unwrap_or("?"),
            p.layer.as_deref().unwrap_or("layer")
        ),
        "log" => format!("log line {}:{}", p.path, p.line),
        other => format!("{other} {}", p.path),
    }
}

/// A named value of a finding's `context`.
fn context(f: &Value, name: &str) -> Option<String> {
    match f.get("context") {
        // Serialised as a list of [name, value] pairs (or an object, tolerated).
        Some(Value::Array(pairs)) => pairs.iter().find_map(|p| {
            let a = p.as_array()?;
            (a.first()?.as_str()? == name).then(|| a.get(1)?.as_str().map(str::to_string))?
        }),
        Some(Value::Object(m)) => m.get(name).and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

/// Whether `s` has the shape of a Google Cloud service-account key id
/// (`private_key_id`: 40 lowercase hexadecimal digits).
pub fn is_gcp_key_id(s: &str) -> bool {
    s.len() == 40
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The credential id of a finding: the access key id for AWS keys (from
/// `context.id` of pairs, or the revealed secret of `aws.access_key_id`), the
/// key id of a Google Cloud service-account key file (`context.id`, its
/// `private_key_id`), else the fingerprint.
fn credential_id(f: &Value, rule_id: &str, fingerprint: &str) -> Option<(String, CredentialKind)> {
    let ctx_id = context(f, "id");
    if rule_id.starts_with("gcp.service_account.key")
        && let Some(id) = ctx_id.as_deref().filter(|i| is_gcp_key_id(i))
    {
        return Some((id.to_string(), CredentialKind::GcpServiceAccountKey));
    }
    if rule_id.starts_with("aws.") {
        let key = ctx_id.or_else(|| {
            (rule_id == "aws.access_key_id")
                .then(|| f.get("secret").and_then(Value::as_str).map(str::to_string))
                .flatten()
        })?;
        if !is_key_id(&key) {
            return None;
        }
        let kind = if key.starts_with("ASIA") {
            CredentialKind::AwsSessionKey
        } else {
            CredentialKind::AwsAccessKey
        };
        return Some((key, kind));
    }
    if fingerprint.is_empty() {
        return None;
    }
    let kind = if rule_id.starts_with("azure.entra.client_") {
        CredentialKind::AzureClientSecret
    } else if rule_id.starts_with("github.pat") {
        CredentialKind::GithubPat
    } else {
        CredentialKind::Other
    };
    Some((fingerprint.to_string(), kind))
}

/// Whether `s` has the shape of a GUID (an Entra ID `keyId`).
pub fn is_guid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// Whether `s` has the shape of an AWS access key id.
pub fn is_key_id(s: &str) -> bool {
    s.len() == 20
        && s.is_char_boundary(4)
        && s[..4].bytes().all(|b| b.is_ascii_uppercase())
        && s[4..]
            .bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
}

/// The places (with their times) of one location.
fn places(loc: &Value) -> Vec<Place> {
    let s = |k: &str| loc.get(k).and_then(Value::as_str).map(str::to_string);
    let source = s("source").unwrap_or_else(|| "file".into());
    let path = s("path").unwrap_or_default();
    let line = loc.get("line").and_then(Value::as_u64).unwrap_or(0);
    let base = Place {
        source: source.clone(),
        path: path.clone(),
        line,
        time: None,
        repository: None,
        commit: None,
        image: None,
        layer: None,
        time_ms: None,
    };
    let timed = |mut p: Place, t: Option<String>| {
        p.time_ms = t.as_deref().and_then(parse_rfc3339_ms);
        p.time = p.time_ms.map(format_rfc3339_ms);
        p
    };
    match source.as_str() {
        "git" => {
            let repo = s("repository");
            let intros = loc.get("introductions").and_then(Value::as_array);
            let mut out = Vec::new();
            if let Some(intros) = intros {
                for i in intros {
                    let is = |k: &str| i.get(k).and_then(Value::as_str).map(str::to_string);
                    out.push(timed(
                        Place {
                            path: is("path").unwrap_or_else(|| path.clone()),
                            repository: repo.clone(),
                            commit: is("commit"),
                            ..base.clone()
                        },
                        is("author_date"),
                    ));
                }
            }
            if out.is_empty() {
                out.push(timed(
                    Place {
                        repository: repo,
                        commit: s("commit"),
                        ..base
                    },
                    s("author_date"),
                ));
            }
            out
        }
        "image" => {
            let layer = s("layer_digest").or_else(|| {
                loc.get("layer")
                    .is_some_and(Value::is_null)
                    .then(|| "config".to_string())
            });
            vec![timed(
                Place {
                    image: s("image"),
                    layer,
                    ..base
                },
                s("created"),
            )]
        }
        "log" => {
            let t = s("snippet").and_then(|sn| log_time(&sn));
            vec![timed(base, t)]
        }
        _ => vec![base],
    }
}

/// The first timestamp on a log line (`2024-03-05T10:00:00.1234567Z`,
/// `2024-03-05 10:00:00,123`, …) as RFC 3339 text.
pub fn log_time(snippet: &str) -> Option<String> {
    for line in snippet.lines() {
        let b = line.as_bytes();
        let mut i = 0;
        while i + 19 <= b.len() {
            if b[i].is_ascii_digit() && b[i + 4] == b'-' && b[i + 7] == b'-' {
                let cand = &line[i..];
                // Take the timestamp's own characters.
                let end = cand
                    .char_indices()
                    .find(|&(k, c)| {
                        k >= 19
                            && !(c.is_ascii_digit()
                                || matches!(c, '.' | ',' | ':' | '+' | '-' | 'Z'))
                    })
                    .map_or(cand.len(), |(k, _)| k);
                let ts = cand[..end].replace(',', ".");
                if parse_rfc3339_ms(&ts).is_some() {
                    return Some(ts);
                }
                // `2024-03-05 10:00:00,123`: a comma before milliseconds.
                let alt = cand.get(..23).map(|s| s.replace(',', "."));
                if let Some(a) = alt
                    && parse_rfc3339_ms(&a).is_some()
                {
                    return Some(a);
                }
                if let Some(a) = cand.get(..19)
                    && parse_rfc3339_ms(a).is_some()
                {
                    return Some(a.to_string());
                }
            }
            i += 1;
        }
        // Only the first line that has one: snippets hold the secret's line first
        // or a few lines of context; a timestamp of another line is a weaker guess.
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_times() {
        assert_eq!(
            log_time("2024-03-05T10:00:00.1234567Z ##[group]Run aws s3 ls").as_deref(),
            Some("2024-03-05T10:00:00.1234567Z")
        );
        assert_eq!(
            parse_rfc3339_ms(&log_time("[2024-03-05 10:00:00,123] INFO key=…").unwrap()),
            parse_rfc3339_ms("2024-03-05T10:00:00.123Z")
        );
        assert_eq!(log_time("no time here AKIA…"), None);
    }

    #[test]
    fn key_ids() {
        assert!(is_key_id("AKIAZ3MRQ4TSW7NLKD5B"));
        assert!(!is_key_id("AKIA0000111188889999"));
        assert!(!is_key_id("AKIAZ3MRQ4TSW7NLKD5"));
    }
}

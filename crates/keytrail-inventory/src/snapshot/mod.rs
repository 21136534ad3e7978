//! The snapshot model and its loader: a directory of unmodified cloud CLI
//! outputs (layout in docs/snapshot-layout.md) becomes a [`Snapshot`] plus
//! diagnostics. Loading never fails wholesale: a truncated or malformed file
//! yields a diagnostic naming it, and the data it would have provided stays
//! [`Collected::Missing`], so the checks depending on it report "not
//! evaluated" instead of passing.

pub mod aws;
pub mod azure;
mod files;
pub mod gcp;

use crate::Timestamp;
use keytrail_types::Diagnostic;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use std::path::{Path, PathBuf};

pub use aws::AwsSnapshot;
pub use azure::AzureSnapshot;
pub use files::MAX_FILE_BYTES;
pub(crate) use files::is_plain_name;
pub use gcp::GcpProject;

/// Whether a piece of data was collected.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Collected<T> {
    /// The file is absent or unreadable: checks depending on it are not evaluated.
    #[default]
    Missing,
    /// The CLI said the thing does not exist (an empty file, or an AWS CLI
    /// error such as `NoSuchPublicAccessBlockConfiguration`): e.g. no bucket
    /// policy, no public access block.
    NotConfigured,
    /// The data.
    Present(T),
}

impl<T> Collected<T> {
    /// The data if present.
    pub fn present(&self) -> Option<&T> {
        match self {
            Collected::Present(t) => Some(t),
            _ => None,
        }
    }

    /// Whether the data was collected at all (present or known absent).
    pub fn is_collected(&self) -> bool {
        !matches!(self, Collected::Missing)
    }

    /// Maps the present value.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Collected<U> {
        match self {
            Collected::Missing => Collected::Missing,
            Collected::NotConfigured => Collected::NotConfigured,
            Collected::Present(t) => Collected::Present(f(t)),
        }
    }
}

/// Everything read from one snapshot directory.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The snapshot directory.
    pub root: PathBuf,
    /// `aws/`, if present.
    pub aws: Option<AwsSnapshot>,
    /// One entry per `gcp/<project>/` directory.
    pub gcp: Vec<GcpProject>,
    /// `azure/`, if present.
    pub azure: Option<AzureSnapshot>,
}

/// Reads the snapshot at `dir` (layout: docs/snapshot-layout.md).
pub fn load_snapshot(dir: &Path) -> (Snapshot, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let mut snap = Snapshot {
        root: dir.to_path_buf(),
        ..Snapshot::default()
    };
    if let Err(why) = check_snapshot_dir(dir) {
        diags.push(Diagnostic::error(
            "unreadable",
            dir.display().to_string(),
            why,
        ));
        return (snap, diags);
    }
    let _confined = files::RootGuard::enter(dir);
    let aws_dir = dir.join("aws");
    if aws_dir.is_dir() {
        snap.aws = Some(aws::load(&aws_dir, &mut diags));
    }
    let gcp_dir = dir.join("gcp");
    if gcp_dir.is_dir() {
        for sub in sorted_entries(&gcp_dir, &mut diags) {
            if sub.is_dir() {
                snap.gcp.push(gcp::load(&sub, &mut diags));
            }
        }
    }
    let az_dir = dir.join("azure");
    if az_dir.is_dir() {
        snap.azure = Some(azure::load(&az_dir, &mut diags));
    }
    if snap.aws.is_none() && snap.gcp.is_empty() && snap.azure.is_none() {
        diags.push(Diagnostic::error(
            "empty_snapshot",
            dir.display().to_string(),
            "no aws/, gcp/ or azure/ directory: nothing to evaluate",
        ));
    }
    // Parser errors quote the value they choke on (`invalid type: string
    // "AKIA…"`), and a misplaced value can be a secret: mask them all.
    for d in &mut diags {
        d.message = mask_quoted(&d.message);
    }
    (snap, diags)
}

/// `message` with every double-quoted value, and the name after `unknown
/// variant` / `unknown field`, masked: its first two characters and its
/// length (`"AKIA…"` becomes `"AK… (20 chars)"`). Values of up to three
/// characters stay: they cannot hide a credential.
pub fn mask_quoted(message: &str) -> String {
    fn mask(v: &str) -> String {
        let n = v.chars().count();
        if n <= 3 {
            v.to_string()
        } else {
            let head: String = v.chars().take(2).collect();
            format!("{head}… ({n} chars)")
        }
    }
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    loop {
        let quote = rest.find('"');
        let tick = ["unknown variant `", "unknown field `"]
            .iter()
            .filter_map(|p| rest.find(p).map(|i| i + p.len() - 1))
            .min();
        let (open, close) = match (quote, tick) {
            (Some(q), Some(t)) if t < q => (t, '`'),
            (Some(q), _) => (q, '"'),
            (None, Some(t)) => (t, '`'),
            (None, None) => break,
        };
        out.push_str(&rest[..=open]);
        let after = &rest[open + 1..];
        // serde_json escapes quotes inside strings; find the unescaped close.
        let mut end = None;
        let mut escaped = false;
        for (i, c) in after.char_indices() {
            match c {
                '\\' if !escaped => escaped = true,
                c if c == close && !escaped => {
                    end = Some(i);
                    break;
                }
                _ => escaped = false,
            }
        }
        match end {
            Some(e) => {
                out.push_str(&mask(&after[..e]));
                out.push(close);
                rest = &after[e + 1..];
            }
            None => {
                out.push_str(&mask(after));
                rest = "";
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Why `dir` cannot be a snapshot directory, if it cannot: it does not
/// exist, or it is a file (or something else) rather than a directory.
pub fn check_snapshot_dir(dir: &Path) -> Result<(), String> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => {
            Err("the snapshot must be a directory (aws/, gcp/, azure/ inside), not a file".into())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err("snapshot directory does not exist".into())
        }
        Err(e) => Err(format!("cannot open the snapshot directory: {e}")),
    }
}

/// Whether `name` from `file` may name a per-resource file or directory;
/// if not, a diagnostic says what was not read.
pub(crate) fn check_name(name: &str, what: &str, file: &Path, diags: &mut Vec<Diagnostic>) -> bool {
    if is_plain_name(name) {
        return true;
    }
    diags.push(Diagnostic::error(
        "unsafe_name",
        file.display().to_string(),
        format!(
            "{what} name {name:?} is not a plain file name (empty, `.`, `..` or with a separator): its per-{what} files were not read"
        ),
    ));
    false
}

/// Directory entries sorted by name (deterministic output).
pub(crate) fn sorted_entries(dir: &Path, diags: &mut Vec<Diagnostic>) -> Vec<PathBuf> {
    match std::fs::read_dir(dir) {
        Ok(rd) => {
            let mut v: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
            v.sort();
            v
        }
        Err(e) => {
            diags.push(Diagnostic::error(
                "unreadable",
                dir.display().to_string(),
                e.to_string(),
            ));
            Vec::new()
        }
    }
}

/// Files in `dir` whose name is `stem.json` or `stem.<anything>.json`
/// (pages of a paginated output), sorted.
pub(crate) fn page_files(dir: &Path, stem: &str, diags: &mut Vec<Diagnostic>) -> Vec<PathBuf> {
    if !dir.is_dir() {
        return Vec::new();
    }
    sorted_entries(dir, diags)
        .into_iter()
        // By name only: a page that is not a regular file (a symlink to a
        // device, a FIFO, a directory) is refused with a diagnostic when
        // read, never dropped in silence.
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n == format!("{stem}.json")
                    || (n.starts_with(&format!("{stem}.")) && n.ends_with(".json"))
            })
        })
        .collect()
}

/// Error codes of the AWS CLI that mean "this does not exist", so the
/// setting is simply not configured.
const NOT_FOUND_CODES: &[&str] = &[
    "NoSuchPublicAccessBlockConfiguration",
    "NoSuchBucketPolicy",
    "OwnershipControlsNotFoundError",
    "AWSOrganizationsNotInUseException",
    "NoSuchEntity",
    "ResourceNotFoundException",
];

/// Reads a JSON file as a [`Value`]: absent → `Missing`; empty or a
/// "not found" CLI error → `NotConfigured`; unparsable → diagnostic + `Missing`.
pub(crate) fn read_json_value(path: &Path, diags: &mut Vec<Diagnostic>) -> Collected<Value> {
    let bytes = match files::read_bounded(path, MAX_FILE_BYTES) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Collected::Missing,
        Err(e) => {
            diags.push(Diagnostic::error(
                "unreadable",
                path.display().to_string(),
                e.to_string(),
            ));
            return Collected::Missing;
        }
    };
    let text = String::from_utf8_lossy(&bytes);
    let trimmed = text.trim_start_matches('\u{feff}').trim();
    if trimmed.is_empty() {
        return Collected::NotConfigured;
    }
    if let Some(rest) = trimmed.strip_prefix("An error occurred (") {
        let code = rest.split(')').next().unwrap_or("");
        if NOT_FOUND_CODES.contains(&code) {
            return Collected::NotConfigured;
        }
        diags.push(Diagnostic::error(
            "cli_error",
            path.display().to_string(),
            format!("the file holds a CLI error ({code}), not data"),
        ));
        return Collected::Missing;
    }
    match serde_json::from_str::<Value>(trimmed) {
        Ok(v) => Collected::Present(v),
        Err(e) => {
            diags.push(
                Diagnostic::error(
                    "malformed_json",
                    path.display().to_string(),
                    format!("not valid JSON: {e}"),
                )
                .at(Some(e.line() as u64), Some(e.column() as u64)),
            );
            Collected::Missing
        }
    }
}

/// Reads and deserialises a JSON file, with [`read_json_value`]'s rules.
pub(crate) fn read_json<T: DeserializeOwned>(
    path: &Path,
    diags: &mut Vec<Diagnostic>,
) -> Collected<T> {
    match read_json_value(path, diags) {
        Collected::Present(v) => match serde_json::from_value::<T>(v) {
            Ok(t) => Collected::Present(t),
            Err(e) => {
                diags.push(Diagnostic::error(
                    "unexpected_shape",
                    path.display().to_string(),
                    format!("unexpected JSON shape: {e}"),
                ));
                Collected::Missing
            }
        },
        Collected::NotConfigured => Collected::NotConfigured,
        Collected::Missing => Collected::Missing,
    }
}

/// Deserialises each element of a JSON array on its own, so one odd element
/// costs only itself (with a diagnostic naming file, list and index).
pub(crate) fn parse_items<T: DeserializeOwned>(
    value: Option<&Value>,
    path: &Path,
    what: &str,
    diags: &mut Vec<Diagnostic>,
) -> Vec<T> {
    let Some(value) = value else {
        return Vec::new();
    };
    let Some(items) = value.as_array() else {
        if !value.is_null() {
            diags.push(Diagnostic::error(
                "unexpected_shape",
                path.display().to_string(),
                format!("`{what}` is not an array"),
            ));
        }
        return Vec::new();
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match T::deserialize(item) {
            Ok(t) => out.push(t),
            Err(e) => diags.push(Diagnostic::error(
                "unexpected_shape",
                path.display().to_string(),
                format!("`{what}` element {} skipped: {e}", i + 1),
            )),
        }
    }
    out
}

/// Parses a timestamp as the CLIs print it: RFC 3339 (`Z` or an offset,
/// optional fractional seconds), `YYYY-MM-DD HH:MM:SS+00:00`, or epoch
/// seconds.
pub fn parse_time(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    if s.is_empty() || s == "N/A" || s == "no_information" || s == "not_supported" {
        return None;
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&chrono::Utc));
    }
    if let Ok(t) = chrono::DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f%:z") {
        return Some(t.with_timezone(&chrono::Utc));
    }
    if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f") {
        return Some(t.and_utc());
    }
    if let Ok(secs) = s.parse::<f64>() {
        return chrono::DateTime::from_timestamp(secs as i64, 0);
    }
    None
}

/// A timestamp field that accepts strings, epoch numbers and null.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Time(pub Option<Timestamp>);

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Ok(Time(match v {
            Value::String(s) => parse_time(&s),
            Value::Number(n) => n
                .as_f64()
                .and_then(|f| chrono::DateTime::from_timestamp(f as i64, 0)),
            _ => None,
        }))
    }
}

/// AWS-style tags (`[{"Key": .., "Value": ..}]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
pub struct Tag {
    /// Tag key.
    #[serde(rename = "Key", alias = "key")]
    pub key: String,
    /// Tag value.
    #[serde(rename = "Value", alias = "value", default)]
    pub value: String,
}

/// Name of a file for messages.
pub(crate) fn file_name(p: &Path) -> String {
    p.display().to_string()
}

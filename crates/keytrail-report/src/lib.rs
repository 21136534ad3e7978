//! Output encoders for keytrail, one owner per format: scan findings (human
//! text, JSON, JSONL, SARIF and GitLab's secret-detection report), detect alerts
//! ([`detect`]: JSONL, OCSF Detection Findings, human summary) and posture
//! findings and inventories ([`posture`]: JSONL, OCSF Compliance Findings, human
//! tables). [`lines`] frames every JSONL and JSON-array stream; [`ocsf`] is the
//! one OCSF encoder (one schema version for every class).
//!
//! The CLI (and later the server) hands a [`Report`] — the findings, the
//! metadata of the rules that produced them and a run [`Summary`] — to
//! [`write_report`] with a [`Format`] and [`ReportOptions`]. Encoders never
//! decide policy: colour and `--reveal` arrive as options, so this crate
//! knows nothing about terminals or flags.
//!
//! Machine formats are an API; every field is documented in `docs/output.md`.
//! A secret reaches the output only when [`ReportOptions::reveal`] is set,
//! and never in SARIF, which is meant to be uploaded.

pub mod detect;
pub mod gitlab;
mod human;
mod json;
pub mod lines;
pub mod ocsf;
pub mod posture;
pub mod sarif;

use keytrail_types::{Confidence, Finding, Severity};
use serde::Serialize;
use std::io::{self, Write};

pub use human::summary_line;

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Text for people, grouped by finding.
    Human,
    /// One JSON document: `{"version": 1, "findings": [...], "summary": {...}}`.
    Json,
    /// One JSON object per line, one line per location of a finding, then
    /// one `{"type": "not_scanned", ...}` line per input not scanned.
    Jsonl,
    /// SARIF 2.1.0, for code-scanning dashboards.
    Sarif,
    /// GitLab's secret-detection report (`reports: secret_detection`).
    Gitlab,
}

impl Format {
    /// Every format, in documentation order.
    pub const ALL: [Format; 5] = [
        Format::Human,
        Format::Json,
        Format::Jsonl,
        Format::Sarif,
        Format::Gitlab,
    ];

    /// The name used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Human => "human",
            Format::Json => "json",
            Format::Jsonl => "jsonl",
            Format::Sarif => "sarif",
            Format::Gitlab => "gitlab",
        }
    }
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .into_iter()
            .find(|f| f.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                format!("unknown format `{s}` (expected human, json, jsonl, sarif or gitlab)")
            })
    }
}

/// What a report needs to know about a rule beyond what a [`Finding`] carries.
///
/// Built by the caller from its rule set; SARIF lists it under
/// `tool.driver.rules`, the other formats take the provider from it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuleMeta {
    /// Stable rule id (`github.pat.classic`).
    pub id: String,
    /// Human name.
    pub name: String,
    /// Provider (`GitHub`).
    pub provider: String,
    /// What the credential is and what it grants.
    pub description: String,
    /// How to revoke or rotate it.
    pub remediation: String,
    /// Where the format is documented.
    pub references: Vec<String>,
    /// Free-form categories (`cloud`, `api-token`).
    pub categories: Vec<String>,
    /// How sure the rule is.
    pub confidence: Option<Confidence>,
    /// How bad a real match is.
    pub severity: Option<Severity>,
}

/// Counters for one run, shown on stderr and embedded in JSON output.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Blobs (files, archive members, stdin) whose content was scanned.
    pub files_scanned: u64,
    /// Bytes of content scanned.
    pub bytes_scanned: u64,
    /// Findings reported (distinct rule + secret pairs).
    pub findings: u64,
    /// Locations of the reported findings.
    pub locations: u64,
    /// Findings suppressed because their key is in the baseline file.
    pub suppressed_by_baseline: u64,
    /// Inputs skipped on purpose (binary, excluded, too large ...).
    pub skipped: u64,
    /// Inputs that could not be read (errors).
    pub unreadable: u64,
    /// Findings not reported because the config file or `.keytrailignore`
    /// allow-lists them (by fingerprint or secret-value hash).
    pub allowed: u64,
    /// Archives scanned only in part: a decompression limit, the bomb
    /// ratio guard or the nesting limit stopped them.
    pub incomplete: u64,
    /// Wall-clock time of the run in milliseconds.
    pub elapsed_ms: u64,
    /// What was not scanned, or only in part: every unreadable input and
    /// every archive cut by a limit, sorted by path.
    pub not_scanned: Vec<NotScanned>,
}

/// One input, or part of one, that the run did not scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotScanned {
    /// Stable diagnostic kind: `archive_limit`, `archive_bomb` (limits),
    /// `unreadable`, `permission_denied`, `not_found`, `archive_corrupt`…
    pub kind: String,
    /// The file, archive member, image or repository concerned.
    pub path: String,
    /// 1-based line, where known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// What happened and what was left out.
    pub message: String,
}

impl NotScanned {
    /// The entry for a diagnostic.
    pub fn from_diagnostic(d: &keytrail_types::Diagnostic) -> Self {
        NotScanned {
            kind: d.kind.clone(),
            path: d.subject.clone(),
            line: d.line,
            message: d.message.clone(),
        }
    }
}

/// Everything an encoder writes about a run.
#[derive(Debug, Clone, Copy)]
pub struct Report<'a> {
    /// The findings, in the order to print them.
    pub findings: &'a [Finding],
    /// Metadata of the rules (at least those referenced by `findings`).
    pub rules: &'a [RuleMeta],
    /// Run counters.
    pub summary: &'a Summary,
}

impl Report<'_> {
    /// The metadata of rule `id`, if known.
    pub fn rule(&self, id: &str) -> Option<&RuleMeta> {
        self.rules.iter().find(|r| r.id == id)
    }
}

/// Choices made by the caller.
#[derive(Debug, Clone, Default)]
pub struct ReportOptions {
    /// Print full secrets (human) or add a `secret` field (JSON, JSONL).
    /// SARIF ignores it.
    pub reveal: bool,
    /// Use ANSI colours in human output.
    pub color: bool,
    /// Tool version reported in SARIF (`tool.driver.version`).
    pub tool_version: String,
    /// The git repositories the findings' `repository` names refer to,
    /// with what is known about them (SARIF `versionControlProvenance`).
    pub repositories: Vec<RepositoryInfo>,
    /// SARIF `run.automationDetails.id` (`category/` or `category/run`):
    /// GitHub code scanning keeps one set of alerts per category, so runs
    /// of different tools or targets need different ones. `None` leaves it out.
    pub automation_id: Option<String>,
    /// Human output: at most this many locations per finding, then
    /// "and N more" (`None`: all). Machine formats always carry all.
    pub max_locations: Option<usize>,
    /// When the run ended (Unix seconds) for the GitLab report's scan
    /// times; `None` reads the clock.
    pub finished_unix: Option<u64>,
}

/// A scanned git repository, as far as the caller knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepositoryInfo {
    /// The name findings carry in `GitOrigin::repository` (path or URL as given).
    pub name: String,
    /// An absolute URI of the repository: its `origin` remote (credentials
    /// masked), the `--git-url`, or a `file://` URI of its directory.
    pub uri: Option<String>,
    /// The commit HEAD points at (hex), when there is one.
    pub revision: Option<String>,
    /// The branch HEAD points at (`main`), when on a branch.
    pub branch: Option<String>,
}

/// Encode `report` as `format` into `w`.
///
/// Errors are IO errors of `w` only (a closed pipe shows up here as
/// [`io::ErrorKind::BrokenPipe`]).
pub fn write_report(
    w: &mut dyn Write,
    format: Format,
    report: &Report<'_>,
    opts: &ReportOptions,
) -> io::Result<()> {
    match format {
        Format::Human => human::write(w, report, opts),
        Format::Json => json::write_json(w, report, opts),
        Format::Jsonl => json::write_jsonl(w, report, opts),
        Format::Sarif => sarif::write(w, report, opts),
        Format::Gitlab => gitlab::write(w, report, opts),
    }?;
    w.flush()
}

#[cfg(test)]
pub(crate) mod testdata;

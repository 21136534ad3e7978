//! Shared vocabulary of keytrail: findings, locations, severities and the
//! redacting [`Secret`] wrapper.
//!
//! This crate has no IO and almost no dependencies. Every other crate speaks
//! in these types, so they are small, serialisable and stable: the JSON shape
//! of [`Finding`] and [`Location`] is part of keytrail's output API.

pub mod files;
mod secret;
mod verification;
pub mod yaml_depth;

pub use secret::{Secret, redact};
pub use verification::{BlastRadius, Privilege, Verification, VerificationStatus};

use serde::{Deserialize, Serialize};
use std::fmt;

/// How bad a finding is if it is real.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Informational: worth knowing, nothing to fix.
    Info,
    /// Low impact.
    Low,
    /// Medium impact.
    Medium,
    /// High impact: a usable credential to a meaningful system.
    High,
    /// Critical: a credential that likely grants broad access (cloud root keys, private keys).
    Critical,
}

impl Severity {
    /// The lowercase name used in every output format.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "info" => Ok(Severity::Info),
            "low" => Ok(Severity::Low),
            "medium" => Ok(Severity::Medium),
            "high" => Ok(Severity::High),
            "critical" => Ok(Severity::Critical),
            other => Err(format!(
                "unknown severity `{other}` (expected info, low, medium, high or critical)"
            )),
        }
    }
}

/// How sure keytrail is that a match is a real credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    /// Generic patterns (`password = ...`): expect false positives.
    Low,
    /// Vendor context plus an unprefixed value.
    Medium,
    /// Fixed vendor prefix, length, and checksum where the format has one.
    High,
}

impl Confidence {
    /// The lowercase name used in every output format.
    pub fn as_str(self) -> &'static str {
        match self {
            Confidence::Low => "low",
            Confidence::Medium => "medium",
            Confidence::High => "high",
        }
    }
}

impl fmt::Display for Confidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Confidence {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "low" => Ok(Confidence::Low),
            "medium" => Ok(Confidence::Medium),
            "high" => Ok(Confidence::High),
            other => Err(format!(
                "unknown confidence `{other}` (expected low, medium or high)"
            )),
        }
    }
}

/// Where a piece of scanned content came from, beyond its display path.
///
/// The plain file case carries nothing extra; later sources (git history,
/// container images, CI logs) add their own provenance here. Serialised
/// flattened into [`Location`], so new variants only add JSON fields.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum Origin {
    /// A file on disk (possibly inside an archive: see [`Location::path`]).
    #[default]
    File,
    /// Standard input.
    Stdin,
    /// A CI or other log file; line numbers are log line numbers.
    Log,
    /// A blob from git history.
    Git(GitOrigin),
    /// A file inside a container image layer, or the image config.
    Image(ImageOrigin),
    /// One record of a structured export (a Slack message, a Postman
    /// request or environment, a Jira issue or comment, a Confluence page):
    /// line, column and offset are those of the record's rendered text
    /// (one `field = value` line per field), and the path ends in
    /// `#POINTER`, the record's place in the export file.
    Export(ExportOrigin),
}

/// Provenance of a record of a structured export (Slack workspace export,
/// Postman collection or environment, Jira or Confluence export).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct ExportOrigin {
    /// What kind of export: `slack`, `postman_collection`,
    /// `postman_environment`, `jira`, `confluence`; forge discussions are
    /// `github_issue`, `github_comment`, `gitlab_issue`, `gitlab_note`,
    /// `gitlab_snippet`.
    pub export: String,
    /// The record inside the export file: a JSON pointer (`/3`,
    /// `/item/0/item/2`, `/issues/4/fields/comment/comments/1`), the
    /// element of an XML backup (`/entity-engine-xml/Issue[@id=10007]`), or
    /// a forge discussion's web URL; empty for a file's top level.
    pub record: String,
    /// What holds the record: the Slack channel (`#general`), the Postman
    /// collection or environment name, the Jira project or issue, the
    /// Confluence space.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// The record itself: a Postman request's folder path
    /// (`Admin/Create user`), a Jira issue key and field
    /// (`OPS-12 comment`), a Confluence page title and id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
    /// Who wrote it: a Slack user (`Ada Lovelace (U012AB3CD)`), a Jira
    /// reporter or comment author, a Confluence page creator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// When it was written (RFC 3339): a Slack message's `ts`, a Jira
    /// comment's or issue's creation time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
}

/// Provenance of a blob found in git history.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct GitOrigin {
    /// Repository path or URL as given by the user.
    pub repository: String,
    /// Blob object id (hex).
    pub blob: String,
    /// A commit that introduced the blob at `path`; `None` for unreachable blobs.
    pub commit: Option<String>,
    /// Author name and email of `commit`.
    pub author: Option<String>,
    /// Author date of `commit` (RFC 3339).
    pub author_date: Option<String>,
    /// First line of the commit message.
    pub summary: Option<String>,
    /// Whether the same blob is at `path` in the HEAD tree.
    pub in_head: bool,
    /// Where the blob sits in the repository: reachable history, only in
    /// commits no ref reaches, in no commit at all, or only in the index.
    #[serde(default)]
    pub state: GitBlobState,
    /// Every commit that introduced this blob at some path (the blob is at
    /// that path in the commit and at that path in none of its parents),
    /// oldest author date first. The first and last entries are the blob's
    /// first and last appearance; `commit`/`path` above is one of them (the
    /// one still in HEAD when there is one). Empty for unreachable and
    /// staged blobs. `git show COMMIT:PATH` reproduces each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub introductions: Vec<GitIntroduction>,
}

/// Where a git blob sits in the repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum GitBlobState {
    /// In at least one commit reachable from a ref (branch, tag, remote, HEAD).
    #[default]
    Committed,
    /// Only in commits no ref reaches any more (amended, reset or
    /// force-pushed away, or a deleted branch): still in this clone's object
    /// database, absent from fresh clones.
    Dangling,
    /// In no commit at all (a blob left behind by `git add` then reset, a
    /// stash, or history rewriting); `commit` is `None`.
    Unreachable,
    /// Staged in the index and not yet committed (`--staged`).
    Staged,
}

/// One commit that introduced a blob at a path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct GitIntroduction {
    /// Commit id (hex).
    pub commit: String,
    /// Path of the blob in that commit's tree (lossy UTF-8).
    pub path: String,
    /// Author name and email (`Name <email>`).
    pub author: String,
    /// Author date (RFC 3339 with the author's offset).
    pub author_date: String,
    /// First line of the commit message.
    pub summary: String,
    /// Whether a ref (branch, tag, remote, HEAD) reaches this commit.
    pub reachable: bool,
}

/// Provenance of content found in a container image.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct ImageOrigin {
    /// Image reference as given by the user.
    pub image: String,
    /// Manifest digest.
    pub manifest_digest: Option<String>,
    /// Platform (`linux/amd64`) for multi-platform images.
    pub platform: Option<String>,
    /// Layer index (0 = base); `None` for the image config.
    pub layer: Option<usize>,
    /// Layer digest; `None` for the image config.
    pub layer_digest: Option<String>,
    /// The history instruction that created the layer (`created_by`); for
    /// an image config history entry (`@config:history[N]`), that entry's
    /// own text. A secret found in it is masked in output.
    pub created_by: Option<String>,
    /// When what shipped the secret was made (RFC 3339, as the image config
    /// records it): the history entry's `created` for a layer or history entry,
    /// the image's `created` for other config entries. Absent when the config
    /// has no date (reproducible builds often write the epoch; that is kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Whether the file is still visible in the final filesystem.
    pub visible_in_final: bool,
}

/// One place where a secret was seen.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Location {
    /// Display path: a file path, `-` for stdin, `archive.zip!inner/path`
    /// for archive members.
    pub path: String,
    /// 1-based line of the first byte of the secret.
    pub line: u64,
    /// 1-based column (in bytes) of the first byte of the secret.
    pub column: u64,
    /// Byte offset of the secret within the scanned content.
    pub offset: u64,
    /// The line(s) around the secret with the secret masked. Never contains the secret.
    pub snippet: String,
    /// Where the content came from.
    #[serde(flatten)]
    pub origin: Origin,
    /// How the secret was encoded at this place, when the scanner found it
    /// by decoding (`base64`, or `base64+base64` for a value decoded twice):
    /// `line`, `column` and `offset` are then those of the encoded text.
    /// Absent for a secret found as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoded: Option<String>,
}

/// A stable, non-reversible identifier of (rule, secret).
///
/// Hex of the first 16 bytes of SHA-256 over the rule id and the secret.
/// The same secret found by the same rule anywhere yields the same
/// fingerprint, so it is used for de-duplication and SARIF
/// `partialFingerprints`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Fingerprint(pub String);

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A credential found by a rule, with every place it was seen.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Finding {
    /// Rule id, e.g. `github.pat.classic`.
    pub rule_id: String,
    /// Human rule name.
    pub rule_name: String,
    /// How sure the rule is.
    pub confidence: Confidence,
    /// How bad it is.
    pub severity: Severity,
    /// Stable id of (rule, secret).
    pub fingerprint: Fingerprint,
    /// The secret. Redacts itself when displayed or serialised.
    pub secret: Secret<String>,
    /// Redacted form for display (`ghp_…Xy`).
    pub secret_redacted: String,
    /// Other captured values that identify the credential but are not
    /// secret by themselves (an AWS access key id paired with its secret,
    /// a database host). Name → value.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub context: Vec<(String, String)>,
    /// Every place it was seen, in scan order.
    pub locations: Vec<Location>,
    /// Notes from the engine (`checksum valid`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// What to do about this finding beyond the rule's generic advice,
    /// built from where it was found. Set for findings in container images;
    /// `None` (and absent from JSON) otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediation: Option<Remediation>,
    /// What the provider said about the secret (`--verify`); `None` when
    /// verification was not asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<Verification>,
    /// What a live secret can reach (`--analyze`); `None` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blast_radius: Option<BlastRadius>,
}

/// A structured remediation: ordered steps, and every scanned image that
/// ships the secret (so all of them are deleted, not only the one looked at).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Remediation {
    /// Steps in the order to take them (rotate first).
    pub steps: Vec<RemediationStep>,
    /// Build instructions through which the secret got into the images
    /// (`ENV`, `ARG`, `LABEL`, `CMD`, `ENTRYPOINT`, `HEALTHCHECK`,
    /// `ONBUILD`, `RUN`, `COPY`, `ADD`), distinct and sorted; empty when no
    /// location tells.
    #[serde(default)]
    pub instructions: Vec<String>,
    /// Every scanned image (reference × manifest digest × platform) that
    /// contains the secret, sorted by reference then digest then platform.
    #[serde(default)]
    pub affected: Vec<AffectedImage>,
    /// Distinct image references (tags or digests as given) that contain
    /// the secret, sorted.
    #[serde(default)]
    pub references: Vec<String>,
    /// Distinct manifest digests that contain the secret, sorted.
    #[serde(default)]
    pub digests: Vec<String>,
}

/// One step of a [`Remediation`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct RemediationStep {
    /// Stable id: `rotate_credential`, `rebuild_without_secret`,
    /// `delete_images`, `invalidate_build_cache`.
    pub action: String,
    /// One-line summary.
    pub summary: String,
    /// How, specific to where the secret was found.
    pub detail: String,
}

/// One image (one platform of one reference) that contains the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct AffectedImage {
    /// Image reference as given.
    pub image: String,
    /// Manifest digest, when known.
    pub manifest_digest: Option<String>,
    /// Platform (`linux/amd64`), when known.
    pub platform: Option<String>,
    /// Layers holding the secret in a file, base first.
    #[serde(default)]
    pub layers: Vec<AffectedLayer>,
    /// Image config entries holding it, sorted by key.
    #[serde(default)]
    pub config: Vec<AffectedConfigEntry>,
    /// Whether the secret is visible in the image's final filesystem or
    /// config (false: only in layers whose files a later layer deleted or
    /// overwrote, still shipped and extractable).
    pub visible_in_final: bool,
}

/// A layer holding the secret in a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct AffectedLayer {
    /// Layer index, 0 = base.
    pub index: usize,
    /// Layer digest.
    pub digest: Option<String>,
    /// Build instruction that made the layer (`COPY`, `ADD`, `RUN`), when
    /// its history entry tells.
    pub instruction: Option<String>,
    /// Paths in the layer holding the secret, sorted.
    #[serde(default)]
    pub paths: Vec<String>,
    /// Whether at least one of those files is visible in the final filesystem.
    pub visible_in_final: bool,
}

/// An image config entry holding the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct AffectedConfigEntry {
    /// Entry key as in display paths: `Env[3]`, `Labels[k]`, `Cmd`,
    /// `Entrypoint`, `Healthcheck`, `OnBuild[0]`, `history[5]`.
    pub key: String,
    /// Build instruction that put the value there (`ENV`, `ARG`, `LABEL`,
    /// `RUN`, ...), when known.
    pub instruction: Option<String>,
}

/// A problem that degraded a run without stopping it: an unreadable file,
/// a malformed rule, a corrupt archive member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostic {
    /// What kind of problem (stable, snake_case): `unreadable`, `permission_denied`,
    /// `symlink_loop`, `archive_bomb`, `rule_invalid`, ...
    pub kind: String,
    /// The file, archive member, rule file or other thing concerned.
    pub subject: String,
    /// 1-based line within `subject`, where known.
    pub line: Option<u64>,
    /// 1-based column within `subject`, where known.
    pub column: Option<u64>,
    /// Human message without a trailing period.
    pub message: String,
    /// Whether this counts as an error for `--fail-on-error` (skips such as
    /// binary files are not errors).
    pub is_error: bool,
}

impl Diagnostic {
    /// An error diagnostic about `subject`.
    pub fn error(kind: &str, subject: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic {
            kind: kind.to_string(),
            subject: subject.into(),
            line: None,
            column: None,
            message: message.into(),
            is_error: true,
        }
    }

    /// A non-error notice (a skip) about `subject`.
    pub fn skip(kind: &str, subject: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic {
            is_error: false,
            ..Diagnostic::error(kind, subject, message)
        }
    }

    /// The same diagnostic with a position.
    pub fn at(mut self, line: Option<u64>, column: Option<u64>) -> Self {
        self.line = line;
        self.column = column;
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.subject)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        write!(f, ": {}", self.message)
    }
}

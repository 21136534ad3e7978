//! keytrail's store: the runs keytrail made, the findings they produced
//! (one per fingerprint, with where and when each was seen and whether it
//! was fixed), and their triage (status, assignee, owner, comments and an
//! audit trail of every change). The only crate that knows SQL.
//!
//! Two databases behind one [`Store`]: SQLite, embedded (a file: the
//! default), and PostgreSQL (`postgres://…`), with the same migrations
//! (`migrations/NNNN_name.sql`) and the same queries. Opening a database
//! brings it to this binary's [`SCHEMA_VERSION`]; a database written by a
//! newer keytrail is refused.
//!
//! **The store never holds a secret, nor its unkeyed fingerprint.** A
//! finding is stored by a keyed hash of its fingerprint (HMAC-SHA256
//! under the store's own key, kept outside the database: see [`StoreKey`]),
//! its redacted form, its
//! locations (whose snippets the scanner masked) and metadata; the raw
//! value inside [`keytrail_types::Secret`] is never bound to a statement,
//! and any text about to be stored that contains it has it replaced by the
//! redacted form first.
//!
//! Writes are idempotent, for jobs that run twice: a run carries a
//! `run_key` (one run per key), findings are upserted by fingerprint and
//! locations by a hash of where they are.
//!
//! ```no_run
//! use keytrail_store::{Filter, Store};
//! let mut store = Store::open("findings.db")?;
//! for f in store.list_findings(&Filter::default())? {
//!     println!("{} {}", f.finding.fingerprint, f.status);
//! }
//! # Ok::<(), keytrail_store::StoreError>(())
//! ```

mod db;
mod detect;
mod error;
mod jobs;
mod key;
mod migrations;
mod schedules;
mod tls;

pub use detect::{DetectRun, NewDetectRun};
pub use error::{ErrorKind, StoreError};
pub use jobs::{Job, JobCounts, JobFilter, JobState, NewJob, Submitted, WorkerBeat, time_ago};
pub use key::{KEY_ENV, KEY_FILE_ENV, StoreKey};
pub use migrations::SCHEMA_VERSION;
pub use schedules::{NewSchedule, Schedule, next_due_after, store_time};

use db::{Conn, Dialect, Row, Val};
use keytrail_types::{Confidence, Finding, Fingerprint, Location, Secret, Severity};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::Path;
use std::time::Duration;

/// Triage status of a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// New, or seen again after being fixed.
    Open,
    /// Someone has looked at it and it is being handled.
    Acknowledged,
    /// Not a credential. A scan with the store does not report it again.
    FalsePositive,
    /// A credential whose exposure is accepted. A scan with the store does
    /// not report it again.
    AcceptedRisk,
    /// The credential was revoked.
    Revoked,
    /// No longer seen: absent from a later complete scan of every target
    /// where it was seen (set by the store), or marked so by hand.
    Fixed,
}

impl Status {
    /// Every status, in the order they are documented.
    pub const ALL: [Status; 6] = [
        Status::Open,
        Status::Acknowledged,
        Status::FalsePositive,
        Status::AcceptedRisk,
        Status::Revoked,
        Status::Fixed,
    ];

    /// The name stored and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Acknowledged => "acknowledged",
            Status::FalsePositive => "false_positive",
            Status::AcceptedRisk => "accepted_risk",
            Status::Revoked => "revoked",
            Status::Fixed => "fixed",
        }
    }

    /// Whether a scan recording into the store leaves findings of this
    /// status out of its report.
    pub fn suppresses(self) -> bool {
        matches!(self, Status::FalsePositive | Status::AcceptedRisk)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown status `{s}` (expected open, acknowledged, false_positive, accepted_risk, revoked or fixed)"
                )
            })
    }
}

/// How to open a store.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// How long to wait for another writer's lock (SQLite) or for the
    /// connection (PostgreSQL) before giving up with an error.
    pub wait: Duration,
    /// Migrate up to this schema version only (tests of upgrades); `None`
    /// means [`SCHEMA_VERSION`].
    #[doc(hidden)]
    pub schema_version: Option<u32>,
    /// The store's fingerprint key; `None`: from the environment or the
    /// key file (see [`StoreKey`]).
    pub key: Option<StoreKey>,
    /// PostgreSQL: the longest a statement may run before the server
    /// cancels it ([`ErrorKind::Timeout`], nothing written); `None`: the
    /// server's setting. SQLite statements are not limited.
    pub statement_timeout: Option<Duration>,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            wait: Duration::from_secs(5),
            schema_version: None,
            key: None,
            statement_timeout: None,
        }
    }
}

/// A recorded run: what ran, on what, when, with which keytrail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Idempotency key: recording a run whose key is already stored
    /// changes nothing. [`RunRecord::new`] makes a random one.
    pub run_key: String,
    /// The command (`scan`, `import`).
    pub command: String,
    /// What was scanned, as the user named it (paths, URLs, images, a
    /// report file), normalised by the caller so that scans of the same
    /// thing compare equal.
    pub target: String,
    /// Start time, RFC 3339 UTC.
    pub started_at: String,
    /// End time, RFC 3339 UTC.
    pub finished_at: String,
    /// keytrail's version.
    pub keytrail_version: String,
    /// Whether the run read everything it was asked to: only a complete
    /// run marks findings it did not see as fixed.
    pub complete: bool,
    /// The rules the run used, when `complete`: a finding of another rule
    /// is not marked fixed by its absence. Empty means every rule.
    #[serde(default)]
    pub rules: Vec<String>,
    /// Fingerprints the run saw but does not record (a configuration
    /// allow-list dropped them): they are still there, so not fixed. Those
    /// among the recorded findings are ignored.
    #[serde(default)]
    pub present: Vec<String>,
}

impl RunRecord {
    /// A run of `command` on `target` that started now, with a random key.
    pub fn new(command: &str, target: &str) -> RunRecord {
        let now = now();
        let mut key = [0u8; 16];
        rand::fill(&mut key);
        RunRecord {
            run_key: hex(&key),
            command: command.to_string(),
            target: target.to_string(),
            started_at: now.clone(),
            finished_at: now,
            keytrail_version: String::new(),
            complete: false,
            rules: Vec::new(),
            present: Vec::new(),
        }
    }
}

/// What recording a run changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RunSummary {
    /// The run's id in the store.
    pub run_id: i64,
    /// False when the run's key was already recorded (nothing changed).
    pub recorded: bool,
    /// Findings the run saw (distinct fingerprints).
    pub seen: usize,
    /// Of those, first seen by this run.
    pub new: usize,
    /// Of those, fixed before and now seen again (reopened).
    pub reopened: usize,
    /// Findings of the same target the run did not see, now fixed.
    pub fixed: usize,
}

/// A finding as the store holds it: the finding (with an empty secret,
/// its redacted form kept) and its triage.
#[derive(Debug, Clone)]
pub struct StoredFinding {
    /// Stable id in this database.
    pub id: i64,
    /// `secret` (scan, import, verify) or the kind of a [`Record`].
    pub kind: String,
    /// For records that are not secrets: the record as stored.
    pub raw: Option<serde_json::Value>,
    /// The finding; `secret` is empty, `secret_redacted` is set.
    pub finding: Finding,
    /// Triage status.
    pub status: Status,
    /// Who handles it.
    pub assignee: Option<String>,
    /// Who owns the credential.
    pub owner: Option<String>,
    /// First seen (RFC 3339 UTC).
    pub first_seen: String,
    /// Last seen.
    pub last_seen: String,
    /// When it was found fixed (or marked fixed).
    pub fixed_at: Option<String>,
    /// Version, for optimistic concurrency ([`Triage::if_version`]).
    pub version: i64,
    /// The targets where it was seen, sorted.
    pub targets: Vec<String>,
}

/// A change of a finding's triage.
#[derive(Debug, Clone, Default)]
pub struct Triage {
    /// Who makes the change (recorded in the audit trail).
    pub actor: String,
    /// New status.
    pub status: Option<Status>,
    /// New assignee; `Some(None)` clears it.
    pub assignee: Option<Option<String>>,
    /// New owner; `Some(None)` clears it.
    pub owner: Option<Option<String>>,
    /// A comment to add.
    pub comment: Option<String>,
    /// Apply only if the finding is still at this version (what the caller
    /// read); otherwise [`ErrorKind::Conflict`].
    pub if_version: Option<i64>,
}

/// One entry of the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    /// Who.
    pub actor: String,
    /// When (RFC 3339 UTC).
    pub at: String,
    /// `status`, `assignee`, `owner` or `comment`.
    pub field: String,
    /// Value before (`None`: unset).
    pub before: Option<String>,
    /// Value after.
    pub after: Option<String>,
    /// The finding's version after the change.
    pub version: i64,
}

/// A comment on a finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Comment {
    /// Who wrote it.
    pub author: String,
    /// When (RFC 3339 UTC).
    pub created_at: String,
    /// The text.
    pub body: String,
}

/// Which findings [`Store::list_findings`] returns, in id order.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only this kind (`secret`, `posture`); any when `None`.
    pub kind: Option<String>,
    /// Only these statuses (any when empty).
    pub statuses: Vec<Status>,
    /// Only this rule.
    pub rule_id: Option<String>,
    /// Only findings seen in this target.
    pub target: Option<String>,
    /// Only at least this severe.
    pub min_severity: Option<Severity>,
    /// Only assigned to.
    pub assignee: Option<String>,
    /// Only owned by.
    pub owner: Option<String>,
    /// Only ids after this one in the listing's order (keyset paging):
    /// greater, or smaller when `newest_first`.
    pub after_id: Option<i64>,
    /// Newest (highest id) first.
    pub newest_first: bool,
    /// At most this many.
    pub limit: Option<usize>,
}

/// When a finding was present ([`Store::presence`]).
#[derive(Debug, Clone)]
pub struct Presence {
    /// `secret` or the kind of a [`Record`].
    pub kind: String,
    /// Its rule, check or (inventory) identity kind.
    pub rule_id: String,
    /// Who owns it.
    pub owner: Option<String>,
    /// Its triage status now.
    pub status: Status,
    /// First seen.
    pub first_seen: String,
    /// Found fixed (absent from a later complete run), if it was.
    pub fixed_at: Option<String>,
    /// For records that are not secrets: the record.
    pub raw: Option<serde_json::Value>,
    /// Its status changes from the audit trail, oldest first: when, the
    /// status before, the status after.
    pub status_changes: Vec<(String, Status, Status)>,
}

impl Presence {
    /// Its triage status at `at` (RFC 3339 UTC), from the audit trail:
    /// the status after the last change made by then, or before the first
    /// change when none was; its status now when it never changed.
    pub fn status_at(&self, at: &str) -> Status {
        match self
            .status_changes
            .iter()
            .rev()
            .find(|(when, _, _)| when.as_str() <= at)
        {
            Some((_, _, after)) => *after,
            None => self
                .status_changes
                .first()
                .map_or(self.status, |(_, before, _)| *before),
        }
    }
}

/// A summary of a recorded run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Run {
    /// Id in the store.
    pub id: i64,
    /// Idempotency key.
    pub run_key: String,
    /// Command.
    pub command: String,
    /// Target.
    pub target: String,
    /// Start.
    pub started_at: String,
    /// End.
    pub finished_at: String,
    /// keytrail's version.
    pub keytrail_version: String,
    /// Whether it was complete.
    pub complete: bool,
    /// Findings it saw.
    pub findings: i64,
}

/// What an API token of `keytrail serve` may do; each role may do what
/// the ones before it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Read findings, runs and history.
    Viewer,
    /// Read, and triage (status, assignee, owner, comments).
    Triager,
    /// Everything.
    Admin,
}

impl Role {
    /// Every role, least first.
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Triager, Role::Admin];

    /// The name stored and shown (`viewer`, `triager`, `admin`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Triager => "triager",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role `{s}` (viewer, triager or admin)"))
    }
}

/// An API token as the store knows it (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiToken {
    /// Row id.
    pub id: i64,
    /// Who the token acts as: the actor of its triage changes.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// When it was made.
    pub created_at: String,
}

/// An API token as `keytrail token list` shows it: never the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenInfo {
    /// Row id (what `keytrail token revoke` takes).
    pub id: i64,
    /// Who the token acts as.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// When it was made.
    pub created_at: String,
    /// When it was revoked, if it was.
    pub revoked_at: Option<String>,
    /// Who revoked it.
    pub revoked_by: Option<String>,
}

/// Prefix of every API token, so scanners (keytrail's own included) can
/// tell one apart.
pub const TOKEN_PREFIX: &str = "kttok_";

/// SHA-256 of a token, in hex: what the store keeps.
fn token_digest(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// An open store.
pub struct Store {
    conn: Conn,
    /// The fingerprint key; `None` only for a store opened at a schema
    /// version before keys (upgrade tests).
    key: Option<StoreKey>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Store({})", self.conn.shown())
    }
}

/// Current time, RFC 3339 UTC with microseconds (sorts as text).
pub fn now() -> String {
    let t: chrono::DateTime<chrono::Utc> = std::time::SystemTime::now().into();
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Seconds from a time the store wrote ([`now`]'s format, or any RFC 3339
/// time) to now; `None` when `t` is not such a time.
pub fn seconds_since(t: &str) -> Option<f64> {
    let t = chrono::DateTime::parse_from_rfc3339(t).ok()?;
    let now: chrono::DateTime<chrono::Utc> = std::time::SystemTime::now().into();
    let d = now.signed_duration_since(t);
    Some(d.num_microseconds()? as f64 / 1e6)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn severity_rank(s: Severity) -> i64 {
    match s {
        Severity::Info => 0,
        Severity::Low => 1,
        Severity::Medium => 2,
        Severity::High => 3,
        Severity::Critical => 4,
    }
}

/// Whether `location` names a PostgreSQL server rather than a SQLite file.
pub fn is_postgres_url(location: &str) -> bool {
    location.starts_with("postgres://") || location.starts_with("postgresql://")
}

/// Findings a run must add, reopen or fix for the store to refresh
/// PostgreSQL's statistics right after it.
const ANALYZE_AFTER: usize = 1000;

/// Rows per many-row statement (well under SQLite's and PostgreSQL's
/// placeholder limits for the widest table).
const CHUNK: usize = 500;

/// A record that is not a secret finding (a posture finding), stored
/// whole as JSON under its own fingerprint.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// What it is: `posture`.
    pub kind: String,
    /// Stable id, unique across kinds (the caller derives it, e.g. from
    /// check and resource).
    pub fingerprint: String,
    /// The check or rule that produced it.
    pub rule_id: String,
    /// Its title.
    pub title: String,
    /// Severity.
    pub severity: Severity,
    /// The record as its command writes it (never a secret).
    pub detail: serde_json::Value,
    /// Its owner (from the owners file), if known.
    pub owner: Option<String>,
}

/// What is recorded for one fingerprint.
struct Item<'a> {
    kind: &'a str,
    rule_id: &'a str,
    rule_name: &'a str,
    severity: Severity,
    confidence: Confidence,
    redacted: String,
    source: Source<'a>,
    owner: Option<String>,
    locations: Vec<&'a Location>,
}

/// Where an item's detail comes from.
#[derive(Clone, Copy)]
enum Source<'a> {
    Finding(&'a Finding),
    Raw(&'a serde_json::Value),
}

/// The detail JSON stored with a finding: what is not a column.
#[derive(Serialize, Deserialize, Default)]
struct Detail {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    context: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    notes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    remediation: Option<keytrail_types::Remediation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    verification: Option<keytrail_types::Verification>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    blast_radius: Option<keytrail_types::BlastRadius>,
}

/// `text` with every occurrence of `secret` replaced by its redacted form:
/// the last guard between a secret and the database.
fn scrub(text: String, secret: &Secret<String>) -> String {
    let raw = secret.expose();
    if raw.len() < 4 || !text.contains(raw.as_str()) {
        return text;
    }
    text.replace(raw.as_str(), &secret.redacted())
}

/// The identity of a location (where it is, not what the snippet says).
fn location_key(l: &Location) -> String {
    let mut h = Sha256::new();
    let origin = serde_json::to_string(&l.origin).unwrap_or_default();
    h.update(l.path.as_bytes());
    h.update([0]);
    h.update(l.line.to_string().as_bytes());
    h.update([0]);
    h.update(l.column.to_string().as_bytes());
    h.update([0]);
    h.update(l.offset.to_string().as_bytes());
    h.update([0]);
    h.update(origin.as_bytes());
    hex(&h.finalize()[..16])
}

fn source_name(l: &Location) -> &'static str {
    match l.origin {
        keytrail_types::Origin::File => "file",
        keytrail_types::Origin::Stdin => "stdin",
        keytrail_types::Origin::Log => "log",
        keytrail_types::Origin::Git(_) => "git",
        keytrail_types::Origin::Image(_) => "image",
        keytrail_types::Origin::Export(_) => "export",
    }
}

fn placeholders(rows: usize, cols: usize) -> String {
    let one = format!("({})", vec!["?"; cols].join(", "));
    vec![one; rows].join(", ")
}

impl Store {
    /// Open the store at `location`: a `postgres://` or `postgresql://`
    /// URL, or a SQLite file path (created when absent). Brings the schema
    /// to [`SCHEMA_VERSION`].
    pub fn open(location: &str) -> Result<Store, StoreError> {
        Store::open_with(location, &OpenOptions::default())
    }

    /// [`Store::open`] with options.
    pub fn open_with(location: &str, options: &OpenOptions) -> Result<Store, StoreError> {
        let mut conn = if is_postgres_url(location) {
            Conn::open_postgres(location, options.wait)?
        } else {
            let path = location.strip_prefix("sqlite:").unwrap_or(location);
            Conn::open_sqlite(Path::new(path), options.wait)?
        };
        if let Some(t) = options.statement_timeout
            && conn.dialect() == Dialect::Postgres
        {
            // Whole milliseconds, at least one (0 would mean no limit).
            let ms = t.as_millis().clamp(1, i32::MAX as u128);
            conn.batch(&format!("SET statement_timeout = {ms}"))?;
        }
        let target = options.schema_version.unwrap_or(SCHEMA_VERSION);
        if target < migrations::KEYED_SINCE {
            migrations::migrate_to(&mut conn, target, None)?;
            return Ok(Store { conn, key: None });
        }
        let shown = conn.shown();
        let before = migrations::current_version(&mut conn)?;
        migrations::check_not_newer(&shown, before)?;
        let (found, place) = key::find(location, &shown, options.key.as_ref())?;
        let key = match found {
            Some(k) => k,
            // A keyed store without its key: refused, never a new key.
            None if before >= migrations::KEYED_SINCE => return Err(key::missing(&shown, &place)),
            // A new store, or one from before keys: its first key.
            None => key::create(&place)?,
        };
        migrations::migrate_to(&mut conn, target, Some(&key))?;
        match key::stored_check(&mut conn)? {
            Some(c) if c == key.check() => {}
            Some(_) => return Err(key::wrong(&shown, &place)),
            None => {
                return Err(StoreError::new(
                    ErrorKind::Corrupt,
                    format!("{shown}: keytrail_meta has no fingerprint_key_check"),
                ));
            }
        }
        if before > 0 && before < migrations::KEYED_SINCE && conn.dialect() == Dialect::Sqlite {
            // The unkeyed fingerprints the upgrade replaced may linger in
            // free pages: rewrite the file without them.
            conn.batch("VACUUM")?;
            conn.query("PRAGMA wal_checkpoint(TRUNCATE)", &[])?;
        }
        Ok(Store {
            conn,
            key: Some(key),
        })
    }

    /// The identity this store keeps for a report's (or a record's)
    /// fingerprint: its keyed hash. Every method taking a fingerprint
    /// takes either form.
    pub fn store_id(&self, fingerprint: &str) -> String {
        match &self.key {
            Some(k) => k.id(fingerprint),
            None => fingerprint.to_string(),
        }
    }

    /// The database, as shown in messages (a file path, or a URL without
    /// its password).
    pub fn location(&self) -> String {
        self.conn.shown()
    }

    /// The database's schema version.
    pub fn schema_version(&mut self) -> Result<u32, StoreError> {
        migrations::current_version(&mut self.conn)
    }

    /// Record a run and the findings it produced, in one transaction.
    /// `owner_of` gives a default owner for a finding that has none yet
    /// (from the owners file). Recording a `run_key` already stored
    /// changes nothing.
    pub fn record_run(
        &mut self,
        run: &RunRecord,
        findings: &[Finding],
        owner_of: &dyn Fn(&Finding) -> Option<String>,
    ) -> Result<RunSummary, StoreError> {
        // One item per fingerprint (a many-row upsert may not touch a row
        // twice): later duplicates add their locations.
        let ids: Vec<String> = findings
            .iter()
            .map(|f| self.store_id(&f.fingerprint.0))
            .collect();
        let mut order: Vec<&str> = Vec::new();
        let mut merged: HashMap<&str, Item<'_>> = HashMap::new();
        for (f, id) in findings.iter().zip(&ids) {
            let fp = id.as_str();
            match merged.get_mut(fp) {
                Some(item) => item.locations.extend(f.locations.iter()),
                None => {
                    order.push(fp);
                    merged.insert(
                        fp,
                        Item {
                            kind: "secret",
                            rule_id: &f.rule_id,
                            rule_name: &f.rule_name,
                            severity: f.severity,
                            confidence: f.confidence,
                            redacted: if f.secret_redacted.is_empty() {
                                f.secret.redacted()
                            } else {
                                scrub(f.secret_redacted.clone(), &f.secret)
                            },
                            source: Source::Finding(f),
                            owner: owner_of(f).map(|o| scrub(o, &f.secret)),
                            locations: f.locations.iter().collect(),
                        },
                    );
                }
            }
        }
        self.record_items(run, "secret", &order, &merged)
    }

    /// Record a run of records that are not secrets (posture findings):
    /// each kept whole as JSON, under its own fingerprint. A complete run
    /// marks records of the same kind and target it did not see as fixed.
    pub fn record_records(
        &mut self,
        run: &RunRecord,
        records: &[Record],
    ) -> Result<RunSummary, StoreError> {
        let kind = records
            .first()
            .map(|r| r.kind.clone())
            .unwrap_or_else(|| "posture".to_string());
        self.record_records_of(run, &kind, records)
    }

    /// [`Store::record_records`] for records of `kind`: a run that found
    /// none still marks those of its kind and target as fixed (when
    /// complete), and never another kind's.
    pub fn record_records_of(
        &mut self,
        run: &RunRecord,
        kind: &str,
        records: &[Record],
    ) -> Result<RunSummary, StoreError> {
        let ids: Vec<String> = records
            .iter()
            .map(|r| self.store_id(&r.fingerprint))
            .collect();
        let mut order: Vec<&str> = Vec::new();
        let mut merged: HashMap<&str, Item<'_>> = HashMap::new();
        for (r, id) in records.iter().zip(&ids) {
            if r.kind != kind || r.kind == "secret" {
                return Err(StoreError::new(
                    ErrorKind::Invalid,
                    format!(
                        "records of one run have one kind, not `secret`: `{}`",
                        r.kind
                    ),
                ));
            }
            if merged.contains_key(id.as_str()) {
                continue;
            }
            order.push(id);
            merged.insert(
                id,
                Item {
                    kind: &r.kind,
                    rule_id: &r.rule_id,
                    rule_name: &r.title,
                    severity: r.severity,
                    confidence: Confidence::High,
                    redacted: String::new(),
                    source: Source::Raw(&r.detail),
                    owner: r.owner.clone(),
                    locations: Vec::new(),
                },
            );
        }
        self.record_items(run, kind, &order, &merged)
    }

    fn record_items(
        &mut self,
        run: &RunRecord,
        kind: &str,
        order: &[&str],
        merged: &HashMap<&str, Item<'_>>,
    ) -> Result<RunSummary, StoreError> {
        if run.target.is_empty() {
            return Err(StoreError::new(ErrorKind::Invalid, "a run needs a target"));
        }
        let actor = format!("keytrail {}", run.command);
        let present: Vec<String> = run.present.iter().map(|fp| self.store_id(fp)).collect();
        let summary = self.conn.write(|c| {
            let existing = c.query(
                "SELECT id FROM runs WHERE run_key = ?",
                &[Val::from(run.run_key.as_str())],
            )?;
            if let Some(r) = existing.first() {
                return Ok(RunSummary {
                    run_id: r.int(0),
                    recorded: false,
                    seen: order.len(),
                    ..RunSummary::default()
                });
            }
            let run_id = insert_returning_id(
                c,
                "INSERT INTO runs (run_key, command, target, started_at, finished_at, keytrail_version, complete, findings) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                vec![
                    run.run_key.as_str().into(),
                    run.command.as_str().into(),
                    run.target.as_str().into(),
                    run.started_at.as_str().into(),
                    run.finished_at.as_str().into(),
                    run.keytrail_version.as_str().into(),
                    Val::Int(run.complete.into()),
                    Val::Int(order.len() as i64),
                ],
            )?;
            let mut summary = RunSummary {
                run_id,
                recorded: true,
                seen: order.len(),
                ..RunSummary::default()
            };
            let at = run.finished_at.as_str();
            for chunk in order.chunks(CHUNK) {
                // What is there already: id, status and owner.
                let sql = format!(
                    "SELECT fingerprint, id, status, owner, version, detail FROM findings WHERE fingerprint IN ({})",
                    vec!["?"; chunk.len()].join(", ")
                );
                let params: Vec<Val> = chunk.iter().map(|fp| Val::from(*fp)).collect();
                let before: HashMap<String, Row> = c
                    .query(&sql, &params)?
                    .into_iter()
                    .map(|r| (r.text(0), r))
                    .collect();

                // Upsert the findings. A fixed finding seen again reopens.
                let cols = 15;
                let sql = format!(
                    "INSERT INTO findings (fingerprint, kind, rule_id, rule_name, severity, severity_rank, confidence, \
                     secret_redacted, detail, status, owner, first_seen, last_seen, first_run, last_run, version, updated_at) \
                     VALUES {} \
                     ON CONFLICT (fingerprint) DO UPDATE SET \
                       rule_name = excluded.rule_name, severity = excluded.severity, \
                       severity_rank = excluded.severity_rank, confidence = excluded.confidence, \
                       secret_redacted = excluded.secret_redacted, detail = excluded.detail, \
                       owner = COALESCE(findings.owner, excluded.owner), \
                       status = CASE WHEN findings.status = 'fixed' THEN 'open' ELSE findings.status END, \
                       fixed_at = CASE WHEN findings.status = 'fixed' THEN NULL ELSE findings.fixed_at END, \
                       version = CASE WHEN findings.status = 'fixed' OR (findings.owner IS NULL AND excluded.owner IS NOT NULL) \
                                 THEN findings.version + 1 ELSE findings.version END, \
                       last_seen = CASE WHEN excluded.last_seen > findings.last_seen THEN excluded.last_seen ELSE findings.last_seen END, \
                       last_run = CASE WHEN excluded.last_seen >= findings.last_seen THEN excluded.last_run ELSE findings.last_run END, \
                       updated_at = excluded.updated_at \
                     RETURNING fingerprint, id, version",
                    (0..chunk.len())
                        .map(|_| format!("({}, 1, ?)", vec!["?"; cols].join(", ")))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                let mut params = Vec::with_capacity(chunk.len() * (cols + 1));
                for fp in chunk {
                    let item = &merged[fp];
                    let detail = match item.source {
                        Source::Finding(f) => {
                            let mut detail = Detail {
                                context: f.context.clone(),
                                notes: f.notes.clone(),
                                remediation: f.remediation.clone(),
                                verification: f.verification.clone(),
                                blast_radius: f.blast_radius.clone(),
                            };
                            // A run that did not verify (a scan without --verify)
                            // keeps what an earlier verification found.
                            if detail.verification.is_none()
                                && let Some(old) = before.get(*fp)
                                && let Ok(old) = serde_json::from_str::<Detail>(&old.text(5))
                            {
                                detail.verification = old.verification;
                                detail.blast_radius = detail.blast_radius.or(old.blast_radius);
                            }
                            scrub(
                                serde_json::to_string(&detail).unwrap_or_else(|_| "{}".into()),
                                &f.secret,
                            )
                        }
                        Source::Raw(v) => v.to_string(),
                    };
                    let rule_name = match item.source {
                        Source::Finding(f) => scrub(item.rule_name.to_string(), &f.secret),
                        Source::Raw(_) => item.rule_name.to_string(),
                    };
                    params.extend([
                        Val::from(*fp),
                        Val::from(item.kind),
                        Val::from(item.rule_id),
                        Val::from(rule_name),
                        Val::from(item.severity.as_str()),
                        Val::Int(severity_rank(item.severity)),
                        Val::from(item.confidence.as_str()),
                        Val::from(item.redacted.as_str()),
                        Val::from(detail),
                        Val::from("open"),
                        Val::from(item.owner.clone()),
                        Val::from(at),
                        Val::from(at),
                        Val::Int(run_id),
                        Val::Int(run_id),
                        Val::from(at),
                    ]);
                }
                let ids: HashMap<String, (i64, i64)> = c
                    .query(&sql, &params)?
                    .into_iter()
                    .map(|r| (r.text(0), (r.int(1), r.int(2))))
                    .collect();

                // Audit what the upsert changed on findings already there.
                for fp in chunk {
                    let Some(b) = before.get(*fp) else {
                        summary.new += 1;
                        continue;
                    };
                    let (id, version) = ids[*fp];
                    if b.text(2) == "fixed" {
                        summary.reopened += 1;
                        audit(c, id, &actor, at, "status", Some("fixed"), Some("open"), version)?;
                    }
                    if b.opt_text(3).is_none()
                        && let Some(o) = &merged[fp].owner
                    {
                        audit(c, id, &actor, at, "owner", None, Some(o), version)?;
                    }
                }

                // Where: the target, then each location.
                let sql = format!(
                    "INSERT INTO finding_targets (finding_id, target, first_seen, last_seen, last_run) VALUES {} \
                     ON CONFLICT (finding_id, target) DO UPDATE SET \
                       last_seen = CASE WHEN excluded.last_seen > finding_targets.last_seen THEN excluded.last_seen ELSE finding_targets.last_seen END, \
                       last_run = excluded.last_run, fixed_at = NULL",
                    placeholders(chunk.len(), 5)
                );
                let mut params = Vec::with_capacity(chunk.len() * 5);
                for fp in chunk {
                    params.extend([
                        Val::Int(ids[*fp].0),
                        Val::from(run.target.as_str()),
                        Val::from(at),
                        Val::from(at),
                        Val::Int(run_id),
                    ]);
                }
                c.exec(&sql, &params)?;

                let mut rows: Vec<Val> = Vec::new();
                let mut n = 0;
                let mut seen_keys: HashSet<(i64, String)> = HashSet::new();
                for fp in chunk {
                    let item = &merged[fp];
                    let id = ids[*fp].0;
                    let Source::Finding(f) = item.source else {
                        continue;
                    };
                    for l in &item.locations {
                        let key = location_key(l);
                        if !seen_keys.insert((id, key.clone())) {
                            continue;
                        }
                        let detail = scrub(
                            serde_json::to_string(l).unwrap_or_else(|_| "{}".into()),
                            &f.secret,
                        );
                        rows.extend([
                            Val::Int(id),
                            Val::from(key),
                            Val::from(scrub(l.path.clone(), &f.secret)),
                            Val::Int(l.line as i64),
                            Val::Int(l.column as i64),
                            Val::from(source_name(l)),
                            Val::from(detail),
                            Val::from(at),
                            Val::from(at),
                        ]);
                        n += 1;
                        if n == CHUNK {
                            upsert_locations(c, n, std::mem::take(&mut rows))?;
                            n = 0;
                        }
                    }
                }
                if n > 0 {
                    upsert_locations(c, n, rows)?;
                }
            }

            if run.complete {
                // Seen but not recorded: still in the target.
                let recorded: HashSet<&str> = order.iter().copied().collect();
                let present: Vec<&str> = present
                    .iter()
                    .map(String::as_str)
                    .filter(|fp| !recorded.contains(fp))
                    .collect();
                for chunk in present.chunks(CHUNK) {
                    let mut params: Vec<Val> =
                        vec![at.into(), Val::Int(run_id), run.target.as_str().into()];
                    params.extend(chunk.iter().map(|fp| Val::from(*fp)));
                    c.exec(
                        &format!(
                            "UPDATE finding_targets SET last_seen = ?, last_run = ? WHERE target = ? \
                             AND finding_id IN (SELECT id FROM findings WHERE fingerprint IN ({}))",
                            vec!["?"; chunk.len()].join(", ")
                        ),
                        &params,
                    )?;
                }
                summary.fixed = mark_fixed(c, run, kind, run_id, &actor)?;
            }
            Ok(summary)
        })?;
        // A run that changed many findings leaves PostgreSQL's statistics
        // stale until its autovacuum comes by: right after importing
        // 100,000 findings it took every one as rare and read a filtered
        // listing's every match through the wrong index (30 ms a page
        // instead of 0.1). Refresh them now (a fraction of a second).
        if self.conn.dialect() == Dialect::Postgres
            && summary.new + summary.reopened + summary.fixed >= ANALYZE_AFTER
        {
            self.conn
                .batch("ANALYZE findings, finding_targets, locations")?;
        }
        Ok(summary)
    }

    /// Fingerprints whose status suppresses them from scan reports
    /// (false positive, accepted risk), as the store keeps them: test a
    /// report's fingerprint with [`Store::store_id`].
    pub fn suppressed(&mut self) -> Result<HashSet<String>, StoreError> {
        let rows = self.conn.query(
            "SELECT fingerprint FROM findings WHERE status IN (?, ?)",
            &[
                Status::FalsePositive.as_str().into(),
                Status::AcceptedRisk.as_str().into(),
            ],
        )?;
        Ok(rows.into_iter().map(|r| r.text(0)).collect())
    }

    /// Change a finding's triage; every changed field is recorded in the
    /// audit trail with `change.actor`. Two triagers never lose each
    /// other's change: the finding is locked while it is read and written,
    /// and `if_version` refuses a change based on a stale read.
    pub fn triage(
        &mut self,
        fingerprint: &str,
        change: &Triage,
    ) -> Result<StoredFinding, StoreError> {
        if change.actor.trim().is_empty() {
            return Err(StoreError::new(
                ErrorKind::Invalid,
                "a triage needs an actor (who makes the change)",
            ));
        }
        let shown = self.conn.shown();
        let at = now();
        let keyed = self.store_id(fingerprint);
        self.conn
            .write(|c| triage_one(c, &shown, fingerprint, &keyed, change, &at))?;
        self.finding(fingerprint)?.ok_or_else(|| {
            StoreError::new(
                ErrorKind::NotFound,
                format!("{shown}: finding `{fingerprint}` vanished after its triage"),
            )
        })
    }

    /// The same change to many findings, in one transaction: all are
    /// changed or none (an unknown fingerprint, or a database that goes
    /// away, changes nothing). Each finding's changes are in its own audit
    /// trail, as with [`Store::triage`]; `if_version` is refused (each
    /// finding has its own). Fingerprints are either form, or unique
    /// prefixes of the store's; the findings after the change, in the
    /// order given (a fingerprint given twice is changed once).
    pub fn triage_many(
        &mut self,
        fingerprints: &[String],
        change: &Triage,
    ) -> Result<Vec<StoredFinding>, StoreError> {
        if change.actor.trim().is_empty() {
            return Err(StoreError::new(
                ErrorKind::Invalid,
                "a triage needs an actor (who makes the change)",
            ));
        }
        if change.if_version.is_some() {
            return Err(StoreError::new(
                ErrorKind::Invalid,
                "a triage of many findings takes no version (each finding has its own)",
            ));
        }
        let mut ids: Vec<String> = Vec::with_capacity(fingerprints.len());
        for fp in fingerprints {
            let id = self.resolve(fp)?;
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        let shown = self.conn.shown();
        let at = now();
        self.conn.write(|c| {
            for id in &ids {
                triage_one(c, &shown, id, id, change, &at)?;
            }
            Ok(())
        })?;
        let mut out = Vec::with_capacity(ids.len());
        for id in &ids {
            out.push(self.finding(id)?.ok_or_else(|| {
                StoreError::new(
                    ErrorKind::NotFound,
                    format!("{shown}: finding `{id}` vanished after its triage"),
                )
            })?);
        }
        Ok(out)
    }

    /// The full fingerprint for `prefix`: itself when a finding has it,
    /// else the one fingerprint that starts with it (at least 6 hex
    /// digits). Ambiguous and unknown prefixes are errors.
    pub fn resolve(&mut self, prefix: &str) -> Result<String, StoreError> {
        let shown = self.conn.shown();
        let exact = self.conn.query(
            "SELECT fingerprint FROM findings WHERE fingerprint IN (?, ?)",
            &[Val::from(prefix), Val::from(self.store_id(prefix))],
        )?;
        if let Some(r) = exact.first() {
            return Ok(r.text(0));
        }
        let hex = prefix.len() >= 6 && prefix.bytes().all(|b| b.is_ascii_hexdigit());
        if hex {
            let rows = self.conn.query(
                "SELECT fingerprint FROM findings WHERE fingerprint LIKE ? ORDER BY fingerprint LIMIT 3",
                &[Val::from(format!("{}%", prefix.to_ascii_lowercase()))],
            )?;
            match rows.len() {
                1 => return Ok(rows[0].text(0)),
                0 => {}
                _ => {
                    let some: Vec<String> = rows.iter().map(|r| r.text(0)).collect();
                    return Err(StoreError::new(
                        ErrorKind::Invalid,
                        format!(
                            "fingerprint prefix `{prefix}` is ambiguous ({}…): give more digits",
                            some.join(", ")
                        ),
                    ));
                }
            }
        }
        Err(StoreError::new(
            ErrorKind::NotFound,
            format!("{shown}: no finding has the fingerprint `{prefix}`"),
        ))
    }

    /// The finding with this fingerprint.
    pub fn finding(&mut self, fingerprint: &str) -> Result<Option<StoredFinding>, StoreError> {
        let rows = self.conn.query(
            &format!("{FINDING_COLUMNS} WHERE fingerprint IN (?, ?)"),
            &[
                Val::from(fingerprint),
                Val::from(self.store_id(fingerprint)),
            ],
        )?;
        let mut out = self.complete(rows)?;
        Ok(out.pop())
    }

    /// Findings matching `filter`, in id order, each with its locations
    /// and targets.
    pub fn list_findings(&mut self, filter: &Filter) -> Result<Vec<StoredFinding>, StoreError> {
        let mut sql = format!("{FINDING_COLUMNS} WHERE 1 = 1");
        let mut params: Vec<Val> = Vec::new();
        if !filter.statuses.is_empty() {
            sql.push_str(&format!(
                " AND status IN ({})",
                vec!["?"; filter.statuses.len()].join(", ")
            ));
            params.extend(filter.statuses.iter().map(|s| Val::from(s.as_str())));
        }
        if let Some(k) = &filter.kind {
            sql.push_str(" AND kind = ?");
            params.push(k.as_str().into());
        }
        if let Some(r) = &filter.rule_id {
            sql.push_str(" AND rule_id = ?");
            params.push(r.as_str().into());
        }
        if let Some(t) = &filter.target {
            sql.push_str(" AND id IN (SELECT finding_id FROM finding_targets WHERE target = ?)");
            params.push(t.as_str().into());
        }
        if let Some(s) = filter.min_severity {
            sql.push_str(" AND severity_rank >= ?");
            params.push(Val::Int(severity_rank(s)));
        }
        if let Some(a) = &filter.assignee {
            sql.push_str(" AND assignee = ?");
            params.push(a.as_str().into());
        }
        if let Some(o) = &filter.owner {
            sql.push_str(" AND owner = ?");
            params.push(o.as_str().into());
        }
        if let Some(a) = filter.after_id {
            sql.push_str(if filter.newest_first {
                " AND id < ?"
            } else {
                " AND id > ?"
            });
            params.push(Val::Int(a));
        }
        sql.push_str(if filter.newest_first {
            " ORDER BY id DESC"
        } else {
            " ORDER BY id"
        });
        if let Some(n) = filter.limit {
            sql.push_str(" LIMIT ?");
            params.push(Val::Int(n as i64));
        }
        let rows = self.conn.query(&sql, &params)?;
        self.complete(rows)
    }

    /// When each finding of these kinds was present, for trends: its
    /// first sighting, when it was found fixed, its status and owner, and
    /// for records that are not secrets the record (which holds the
    /// environment); no locations.
    pub fn presence(&mut self, kinds: &[&str]) -> Result<Vec<Presence>, StoreError> {
        if kinds.is_empty() {
            return Ok(Vec::new());
        }
        let list = vec!["?"; kinds.len()].join(", ");
        let sql = format!(
            "SELECT kind, rule_id, owner, status, first_seen, fixed_at, \
             CASE WHEN kind = 'secret' THEN NULL ELSE detail END, id \
             FROM findings WHERE kind IN ({list}) ORDER BY id"
        );
        let params: Vec<Val> = kinds.iter().map(|k| Val::from(*k)).collect();
        let shown = self.conn.shown();
        let parse = |t: String| -> Result<Status, StoreError> {
            t.parse()
                .map_err(|e: String| StoreError::new(ErrorKind::Corrupt, format!("{shown}: {e}")))
        };
        // Every status change of these findings, in order.
        let mut changes: HashMap<i64, Vec<(String, Status, Status)>> = HashMap::new();
        for r in self.conn.query(
            &format!(
                "SELECT a.finding_id, a.at, a.before, a.after FROM audit a \
                 JOIN findings f ON f.id = a.finding_id \
                 WHERE a.field = 'status' AND f.kind IN ({list}) ORDER BY a.finding_id, a.id"
            ),
            &params,
        )? {
            changes.entry(r.int(0)).or_default().push((
                r.text(1),
                parse(r.text(2))?,
                parse(r.text(3))?,
            ));
        }
        self.conn
            .query(&sql, &params)?
            .into_iter()
            .map(|r| {
                Ok(Presence {
                    status_changes: changes.remove(&r.int(7)).unwrap_or_default(),
                    kind: r.text(0),
                    rule_id: r.text(1),
                    owner: r.opt_text(2),
                    status: r.text(3).parse().map_err(|e: String| {
                        StoreError::new(ErrorKind::Corrupt, format!("{shown}: {e}"))
                    })?,
                    first_seen: r.text(4),
                    fixed_at: r.opt_text(5),
                    raw: r.opt_text(6).and_then(|d| serde_json::from_str(&d).ok()),
                })
            })
            .collect()
    }

    /// A finding's audit trail (oldest first) and comments.
    pub fn history(
        &mut self,
        fingerprint: &str,
    ) -> Result<(Vec<AuditEntry>, Vec<Comment>), StoreError> {
        let fp = [
            Val::from(fingerprint),
            Val::from(self.store_id(fingerprint)),
        ];
        let audit = self
            .conn
            .query(
                "SELECT a.actor, a.at, a.field, a.before, a.after, a.version FROM audit a \
                 JOIN findings f ON f.id = a.finding_id WHERE f.fingerprint IN (?, ?) ORDER BY a.id",
                &fp,
            )?
            .into_iter()
            .map(|r| AuditEntry {
                actor: r.text(0),
                at: r.text(1),
                field: r.text(2),
                before: r.opt_text(3),
                after: r.opt_text(4),
                version: r.int(5),
            })
            .collect();
        let comments = self
            .conn
            .query(
                "SELECT c.author, c.created_at, c.body FROM comments c \
                 JOIN findings f ON f.id = c.finding_id WHERE f.fingerprint IN (?, ?) ORDER BY c.id",
                &fp,
            )?
            .into_iter()
            .map(|r| Comment {
                author: r.text(0),
                created_at: r.text(1),
                body: r.text(2),
            })
            .collect();
        Ok((audit, comments))
    }

    /// Make an API token for `name` with `role`. The token (`kttok_`
    /// and 64 hex digits: 32 random bytes) is returned once; the store
    /// keeps its SHA-256 only.
    pub fn create_token(&mut self, name: &str, role: Role) -> Result<String, StoreError> {
        let name = name.trim();
        if name.is_empty() {
            return Err(StoreError::new(
                ErrorKind::Invalid,
                "a token needs a name (who it acts as, recorded as the actor of its changes)",
            ));
        }
        let mut raw = [0u8; 32];
        rand::fill(&mut raw);
        let token: String = std::iter::once(TOKEN_PREFIX.to_string())
            .chain(raw.iter().map(|b| format!("{b:02x}")))
            .collect();
        let digest = token_digest(&token);
        let at = now();
        self.conn.write(|c| {
            c.exec(
                "INSERT INTO api_tokens (token_sha256, name, role, created_at) VALUES (?, ?, ?, ?)",
                &[
                    Val::from(digest),
                    Val::from(name),
                    Val::from(role.as_str()),
                    Val::from(at),
                ],
            )
        })?;
        Ok(token)
    }

    /// The live (not revoked) token whose SHA-256 matches `token`.
    pub fn token(&mut self, token: &str) -> Result<Option<ApiToken>, StoreError> {
        let shown = self.conn.shown();
        let rows = self.conn.query(
            "SELECT id, name, role, created_at FROM api_tokens \
             WHERE token_sha256 = ? AND revoked_at IS NULL",
            &[Val::from(token_digest(token))],
        )?;
        rows.first()
            .map(|r| {
                Ok(ApiToken {
                    id: r.int(0),
                    name: r.text(1),
                    role: r.text(2).parse().map_err(|e: String| {
                        StoreError::new(ErrorKind::Corrupt, format!("{shown}: api_tokens: {e}"))
                    })?,
                    created_at: r.text(3),
                })
            })
            .transpose()
    }

    /// Every API token ever made (revoked ones too), oldest first.
    pub fn tokens(&mut self) -> Result<Vec<TokenInfo>, StoreError> {
        let rows = self.conn.query(
            "SELECT id, name, role, created_at, revoked_at, revoked_by FROM api_tokens ORDER BY id",
            &[],
        )?;
        let shown = self.conn.shown();
        rows.into_iter()
            .map(|r| {
                Ok(TokenInfo {
                    id: r.int(0),
                    name: r.text(1),
                    role: r.text(2).parse().map_err(|e: String| {
                        StoreError::new(ErrorKind::Corrupt, format!("{shown}: api_tokens: {e}"))
                    })?,
                    created_at: r.text(3),
                    revoked_at: r.opt_text(4),
                    revoked_by: r.opt_text(5),
                })
            })
            .collect()
    }

    /// Revoke the token with row id `id`, recording when and by whom:
    /// from now on it lets nobody in, and sessions opened with it end.
    /// Revoking a revoked token changes nothing (it keeps its first
    /// revocation); an unknown id is [`ErrorKind::NotFound`].
    pub fn revoke_token(&mut self, id: i64, actor: &str) -> Result<TokenInfo, StoreError> {
        if actor.trim().is_empty() {
            return Err(StoreError::new(
                ErrorKind::Invalid,
                "a revocation needs an actor (who revokes the token)",
            ));
        }
        let at = now();
        self.conn.write(|c| {
            c.exec(
                "UPDATE api_tokens SET revoked_at = ?, revoked_by = ? WHERE id = ? AND revoked_at IS NULL",
                &[at.as_str().into(), actor.trim().into(), Val::Int(id)],
            )
        })?;
        let shown = self.conn.shown();
        self.tokens()?
            .into_iter()
            .find(|t| t.id == id)
            .ok_or_else(|| {
                StoreError::new(
                    ErrorKind::NotFound,
                    format!(
                        "{shown}: no API token has the id {id} (`keytrail token list` shows them)"
                    ),
                )
            })
    }

    /// The token with row id `id`, if it is still live (a session made
    /// with a token checks it on every request).
    pub fn live_token(&mut self, id: i64) -> Result<Option<ApiToken>, StoreError> {
        let shown = self.conn.shown();
        let rows = self.conn.query(
            "SELECT id, name, role, created_at FROM api_tokens WHERE id = ? AND revoked_at IS NULL",
            &[Val::Int(id)],
        )?;
        rows.first()
            .map(|r| {
                Ok(ApiToken {
                    id: r.int(0),
                    name: r.text(1),
                    role: r.text(2).parse().map_err(|e: String| {
                        StoreError::new(ErrorKind::Corrupt, format!("{shown}: api_tokens: {e}"))
                    })?,
                    created_at: r.text(3),
                })
            })
            .transpose()
    }

    /// Open a browser session: `id_sha256` is the SHA-256 (hex) of the
    /// session's random id, `token_id` the live token it acts with, `csrf`
    /// the token its changes must carry; it expires after `ttl`. Expired
    /// sessions are removed on the way.
    pub fn create_session(
        &mut self,
        id_sha256: &str,
        token_id: i64,
        csrf: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let now_t: chrono::DateTime<chrono::Utc> = std::time::SystemTime::now().into();
        let fmt = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
        let now = fmt(now_t);
        let expires =
            fmt(now_t + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::zero()));
        self.conn.write(|c| {
            c.exec("DELETE FROM sessions WHERE expires_at <= ?", &[now.as_str().into()])?;
            c.exec(
                "INSERT INTO sessions (id_sha256, token_id, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
                &[
                    id_sha256.into(),
                    Val::Int(token_id),
                    csrf.into(),
                    now.as_str().into(),
                    expires.as_str().into(),
                ],
            )?;
            Ok(())
        })
    }

    /// The live session with this id digest: the token it acts with (still
    /// live) and its CSRF token. `None` when unknown, expired, or its token
    /// was revoked.
    pub fn session(&mut self, id_sha256: &str) -> Result<Option<(ApiToken, String)>, StoreError> {
        let shown = self.conn.shown();
        let rows = self.conn.query(
            "SELECT t.id, t.name, t.role, t.created_at, s.csrf FROM sessions s \
             JOIN api_tokens t ON t.id = s.token_id \
             WHERE s.id_sha256 = ? AND s.expires_at > ? AND t.revoked_at IS NULL",
            &[id_sha256.into(), now().into()],
        )?;
        rows.first()
            .map(|r| {
                Ok((
                    ApiToken {
                        id: r.int(0),
                        name: r.text(1),
                        role: r.text(2).parse().map_err(|e: String| {
                            StoreError::new(ErrorKind::Corrupt, format!("{shown}: api_tokens: {e}"))
                        })?,
                        created_at: r.text(3),
                    },
                    r.text(4),
                ))
            })
            .transpose()
    }

    /// End a session (logging out).
    pub fn end_session(&mut self, id_sha256: &str) -> Result<(), StoreError> {
        self.conn.write(|c| {
            c.exec(
                "DELETE FROM sessions WHERE id_sha256 = ?",
                &[id_sha256.into()],
            )?;
            Ok(())
        })
    }

    /// Every recorded run, oldest first.
    pub fn runs(&mut self) -> Result<Vec<Run>, StoreError> {
        Ok(self
            .conn
            .query(
                "SELECT id, run_key, command, target, started_at, finished_at, keytrail_version, complete, findings \
                 FROM runs ORDER BY id",
                &[],
            )?
            .into_iter()
            .map(|r| Run {
                id: r.int(0),
                run_key: r.text(1),
                command: r.text(2),
                target: r.text(3),
                started_at: r.text(4),
                finished_at: r.text(5),
                keytrail_version: r.text(6),
                complete: r.int(7) != 0,
                findings: r.int(8),
            })
            .collect())
    }

    /// Rows of [`FINDING_COLUMNS`] into findings with locations and targets.
    fn complete(&mut self, rows: Vec<Row>) -> Result<Vec<StoredFinding>, StoreError> {
        let mut out: Vec<StoredFinding> = Vec::with_capacity(rows.len());
        for r in rows {
            let detail: Detail = serde_json::from_str(&r.text(9)).unwrap_or_default();
            let status = r.text(10).parse().map_err(|e: String| {
                StoreError::new(ErrorKind::Corrupt, format!("{}: {e}", self.conn.shown()))
            })?;
            let kind = r.text(2);
            let raw = (kind != "secret")
                .then(|| serde_json::from_str(&r.text(9)).ok())
                .flatten();
            out.push(StoredFinding {
                id: r.int(0),
                kind,
                raw,
                finding: Finding {
                    fingerprint: Fingerprint(r.text(1)),
                    rule_id: r.text(3),
                    rule_name: r.text(4),
                    severity: r.text(5).parse().unwrap_or(Severity::Medium),
                    confidence: r.text(6).parse().unwrap_or(Confidence::Medium),
                    secret: Secret::new(String::new()),
                    secret_redacted: r.text(7),
                    context: detail.context,
                    locations: Vec::new(),
                    notes: detail.notes,
                    remediation: detail.remediation,
                    verification: detail.verification,
                    blast_radius: detail.blast_radius,
                },
                status,
                assignee: r.opt_text(11),
                owner: r.opt_text(12),
                first_seen: r.text(13),
                last_seen: r.text(14),
                fixed_at: r.opt_text(15),
                version: r.int(16),
                targets: Vec::new(),
            });
        }
        let index: HashMap<i64, usize> = out.iter().enumerate().map(|(i, f)| (f.id, i)).collect();
        let ids: Vec<i64> = out.iter().map(|f| f.id).collect();
        // PostgreSQL takes every id in one array (one round trip per
        // table); SQLite takes lists of placeholders.
        let postgres = self.conn.dialect() == Dialect::Postgres;
        let chunks: Vec<&[i64]> = if postgres {
            vec![&ids[..]]
        } else {
            ids.chunks(CHUNK).collect()
        };
        for chunk in chunks.into_iter().filter(|c| !c.is_empty()) {
            let (cond, params) = if postgres {
                ("= ANY(?)".to_string(), vec![Val::Ints(chunk.to_vec())])
            } else {
                (
                    format!("IN ({})", vec!["?"; chunk.len()].join(", ")),
                    chunk.iter().map(|i| Val::Int(*i)).collect(),
                )
            };
            for r in self.conn.query(
                &format!(
                    "SELECT finding_id, detail FROM locations WHERE finding_id {cond} \
                     ORDER BY finding_id, path, line, col, location_key"
                ),
                &params,
            )? {
                if let Ok(l) = serde_json::from_str::<Location>(&r.text(1)) {
                    out[index[&r.int(0)]].finding.locations.push(l);
                }
            }
            for r in self.conn.query(
                &format!(
                    "SELECT finding_id, target FROM finding_targets WHERE finding_id {cond} \
                     ORDER BY finding_id, target"
                ),
                &params,
            )? {
                out[index[&r.int(0)]].targets.push(r.text(1));
            }
        }
        Ok(out)
    }
}

const FINDING_COLUMNS: &str = "SELECT id, fingerprint, kind, rule_id, rule_name, severity, confidence, \
secret_redacted, severity_rank, detail, status, assignee, owner, first_seen, last_seen, fixed_at, version FROM findings";

/// One finding's triage inside the caller's transaction (the finding
/// locked on PostgreSQL while it is read and written); its row id.
fn triage_one(
    c: &mut Conn,
    shown: &str,
    fingerprint: &str,
    keyed: &str,
    change: &Triage,
    at: &str,
) -> Result<i64, StoreError> {
    let lock = match c.dialect() {
        Dialect::Sqlite => "",
        Dialect::Postgres => " FOR UPDATE",
    };
    let at = at.to_string();
    let rows = c.query(
            &format!(
                "SELECT id, status, assignee, owner, version, fixed_at FROM findings WHERE fingerprint IN (?, ?){lock}"
            ),
            &[Val::from(fingerprint), Val::from(keyed)],
        )?;
    let Some(r) = rows.first() else {
        return Err(StoreError::new(
            ErrorKind::NotFound,
            format!("{shown}: no finding has the fingerprint `{fingerprint}`"),
        ));
    };
    let id = r.int(0);
    let status = r.text(1);
    let assignee = r.opt_text(2);
    let owner = r.opt_text(3);
    let version = r.int(4);
    let fixed_at = r.opt_text(5);
    if let Some(expected) = change.if_version
        && expected != version
    {
        return Err(StoreError::new(
            ErrorKind::Conflict,
            format!(
                "finding `{fingerprint}` changed since version {expected} (it is at version {version}): \
read it again (`keytrail findings`) and retry"
            ),
        ));
    }
    let mut changes: Vec<(&str, Option<String>, Option<String>)> = Vec::new();
    let mut new_status = status.clone();
    if let Some(s) = change.status
        && s.as_str() != status
    {
        new_status = s.as_str().to_string();
        changes.push(("status", Some(status.clone()), Some(new_status.clone())));
    }
    let mut new_assignee = assignee.clone();
    if let Some(a) = &change.assignee
        && *a != assignee
    {
        new_assignee = a.clone();
        changes.push(("assignee", assignee.clone(), a.clone()));
    }
    let mut new_owner = owner.clone();
    if let Some(o) = &change.owner
        && *o != owner
    {
        new_owner = o.clone();
        changes.push(("owner", owner.clone(), o.clone()));
    }
    if changes.is_empty() && change.comment.is_none() {
        return Ok(id);
    }
    let new_fixed_at = match (change.status, fixed_at) {
        (Some(Status::Fixed), None) => Some(at.clone()),
        (Some(s), _) if s != Status::Fixed => None,
        (_, f) => f,
    };
    let updated = c.exec(
            "UPDATE findings SET status = ?, assignee = ?, owner = ?, fixed_at = ?, version = ?, updated_at = ? \
             WHERE id = ? AND version = ?",
            &[
                new_status.into(),
                new_assignee.into(),
                new_owner.into(),
                new_fixed_at.into(),
                Val::Int(version + 1),
                at.as_str().into(),
                Val::Int(id),
                Val::Int(version),
            ],
        )?;
    if updated != 1 {
        return Err(StoreError::new(
            ErrorKind::Conflict,
            format!("finding `{fingerprint}` changed while it was being triaged: retry"),
        ));
    }
    for (field, before, after) in &changes {
        audit(
            c,
            id,
            &change.actor,
            &at,
            field,
            before.as_deref(),
            after.as_deref(),
            version + 1,
        )?;
    }
    if let Some(body) = &change.comment {
        c.exec(
            "INSERT INTO comments (finding_id, author, created_at, body) VALUES (?, ?, ?, ?)",
            &[
                Val::Int(id),
                change.actor.as_str().into(),
                at.as_str().into(),
                body.as_str().into(),
            ],
        )?;
        audit(
            c,
            id,
            &change.actor,
            &at,
            "comment",
            None,
            Some(body),
            version + 1,
        )?;
    }
    Ok(id)
}

fn insert_returning_id(c: &mut Conn, sql: &str, params: Vec<Val>) -> Result<i64, StoreError> {
    let rows = c.query(&format!("{sql} RETURNING id"), &params)?;
    Ok(rows.first().map(|r| r.int(0)).unwrap_or_default())
}

#[allow(clippy::too_many_arguments)]
fn audit(
    c: &mut Conn,
    finding_id: i64,
    actor: &str,
    at: &str,
    field: &str,
    before: Option<&str>,
    after: Option<&str>,
    version: i64,
) -> Result<(), StoreError> {
    c.exec(
        "INSERT INTO audit (finding_id, actor, at, field, before, after, version) VALUES (?, ?, ?, ?, ?, ?, ?)",
        &[
            Val::Int(finding_id),
            actor.into(),
            at.into(),
            field.into(),
            before.into(),
            after.into(),
            Val::Int(version),
        ],
    )?;
    Ok(())
}

fn upsert_locations(c: &mut Conn, n: usize, params: Vec<Val>) -> Result<(), StoreError> {
    let sql = format!(
        "INSERT INTO locations (finding_id, location_key, path, line, col, source, detail, first_seen, last_seen) \
         VALUES {} ON CONFLICT (finding_id, location_key) DO UPDATE SET \
           detail = excluded.detail, \
           last_seen = CASE WHEN excluded.last_seen > locations.last_seen THEN excluded.last_seen ELSE locations.last_seen END",
        placeholders(n, 9)
    );
    c.exec(&sql, &params)?;
    Ok(())
}

/// After a complete run of `run.target`: findings seen there before but not
/// by this run are fixed there; a finding fixed in every target where it
/// was seen, and still open or acknowledged, becomes `fixed` (audited); one
/// triaged otherwise keeps its status and gets `fixed_at`. Set-based: a
/// few statements per chunk of findings, not per finding.
fn mark_fixed(
    c: &mut Conn,
    run: &RunRecord,
    kind: &str,
    run_id: i64,
    actor: &str,
) -> Result<usize, StoreError> {
    let at = run.finished_at.as_str();
    // Only records of the run's kind: a posture run says nothing about
    // secrets recorded under the same target name.
    let mut sql = String::from(
        "UPDATE finding_targets SET fixed_at = ? \
         WHERE target = ? AND last_run <> ? AND fixed_at IS NULL \
         AND finding_id IN (SELECT id FROM findings WHERE kind = ?)",
    );
    let mut params: Vec<Val> = vec![
        at.into(),
        run.target.as_str().into(),
        Val::Int(run_id),
        kind.into(),
    ];
    if !run.rules.is_empty() {
        sql.push_str(&format!(
            " AND finding_id IN (SELECT id FROM findings WHERE rule_id IN ({}))",
            vec!["?"; run.rules.len()].join(", ")
        ));
        params.extend(run.rules.iter().map(|r| Val::from(r.as_str())));
    }
    sql.push_str(" RETURNING finding_id");
    let mut gone: Vec<i64> = c.query(&sql, &params)?.iter().map(|r| r.int(0)).collect();
    gone.sort_unstable();
    let mut fixed = 0;
    for chunk in gone.chunks(CHUNK) {
        let list = vec!["?"; chunk.len()].join(", ");
        let ids: Vec<Val> = chunk.iter().map(|i| Val::Int(*i)).collect();
        // Those no longer seen anywhere.
        let rows = c.query(
            &format!(
                "SELECT f.id, f.status, f.version FROM findings f WHERE f.id IN ({list}) \
                 AND NOT EXISTS (SELECT 1 FROM finding_targets ft WHERE ft.finding_id = f.id AND ft.fixed_at IS NULL)"
            ),
            &ids,
        )?;
        let (to_fix, keep): (Vec<Row>, Vec<Row>) = rows
            .into_iter()
            .partition(|r| matches!(r.text(1).as_str(), "open" | "acknowledged"));
        if !to_fix.is_empty() {
            let list = vec!["?"; to_fix.len()].join(", ");
            let mut params: Vec<Val> = vec![at.into(), at.into()];
            params.extend(to_fix.iter().map(|r| Val::Int(r.int(0))));
            c.exec(
                &format!(
                    "UPDATE findings SET status = 'fixed', fixed_at = ?, version = version + 1, updated_at = ? \
                     WHERE id IN ({list})"
                ),
                &params,
            )?;
            let mut params = Vec::with_capacity(to_fix.len() * 7);
            for r in &to_fix {
                params.extend([
                    Val::Int(r.int(0)),
                    actor.into(),
                    at.into(),
                    "status".into(),
                    Val::Text(r.text(1)),
                    "fixed".into(),
                    Val::Int(r.int(2) + 1),
                ]);
            }
            c.exec(
                &format!(
                    "INSERT INTO audit (finding_id, actor, at, field, before, after, version) VALUES {}",
                    placeholders(to_fix.len(), 7)
                ),
                &params,
            )?;
            fixed += to_fix.len();
        }
        if !keep.is_empty() {
            let list = vec!["?"; keep.len()].join(", ");
            let mut params: Vec<Val> = vec![at.into(), at.into()];
            params.extend(keep.iter().map(|r| Val::Int(r.int(0))));
            c.exec(
                &format!(
                    "UPDATE findings SET fixed_at = ?, updated_at = ? WHERE id IN ({list}) AND fixed_at IS NULL"
                ),
                &params,
            )?;
        }
    }
    Ok(fixed)
}

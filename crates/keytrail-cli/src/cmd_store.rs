//! The store from the command line: `scan --db` (record the run, leave out
//! what was triaged as false positive or accepted risk), `keytrail import`
//! (record reports written earlier), `keytrail findings` (what the store
//! holds, as JSONL like `scan`) and `keytrail triage` (status, assignee,
//! owner, comments). The SQL is `keytrail-store`'s; this module maps flags
//! to its typed API.

use crate::ExitStatus;
use anyhow::Context;
use clap::{Args, ValueEnum};
use keytrail_inventory::Owners;
use keytrail_report::{Format, Report, ReportOptions, Summary, write_report};
use keytrail_store::{Filter, RunRecord, Status, Store, StoredFinding, Triage};
use keytrail_types::Finding;
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The owners file used when `--owners` is not given, if it exists in the
/// working directory.
const DEFAULT_OWNERS: &str = "keytrail.owners.yaml";

/// `--db` and `--owners` of `scan`.
#[derive(Debug, Args)]
pub struct ScanStoreArgs {
    /// Record the run and its findings in the store at LOCATION (a SQLite
    /// file, created when absent, or `postgres://user@host/db`), and leave
    /// out of the report what was triaged there as false positive or
    /// accepted risk.
    ///
    /// The store never holds a secret: fingerprints, redacted forms,
    /// locations (masked snippets) and metadata. A complete run (nothing
    /// unreadable, no `--since-commit`/`--range`/`--staged`) marks the
    /// target's findings it no longer sees as fixed.
    /// Example: `keytrail scan --db findings.db .` or
    /// `KEYTRAIL_DB=postgres://keytrail@db.internal/keytrail keytrail scan .`
    #[arg(long, value_name = "LOCATION", env = "KEYTRAIL_DB")]
    pub db: Option<String>,

    /// Record into the default store, `$XDG_DATA_HOME/keytrail/keytrail.db`
    /// (else `~/.local/share/keytrail/keytrail.db`), when `--db` is not given.
    ///
    /// Example: `keytrail scan --record .`
    #[arg(long)]
    pub record: bool,

    /// The name the run is recorded under in the store [default: the
    /// scanned paths (absolute), URLs, images and logs].
    ///
    /// Runs of the same target are compared to find what was fixed: give
    /// CI jobs that check out to different directories one name.
    /// Example: `--target github.com/acme/api`
    #[arg(long, value_name = "NAME")]
    pub target: Option<String>,

    /// Record the run under KEY, once: a second run with the same KEY (a
    /// retried CI job, a job a worker ran twice) changes nothing in the
    /// store [default: a random key per run].
    ///
    /// Example: `--run-key "$CI_PIPELINE_ID-secrets"`
    #[arg(long, value_name = "KEY")]
    pub run_key: Option<String>,

    /// The owners file that gives a recorded finding its owner when it has
    /// none [default: `keytrail.owners.yaml` in the working directory, if
    /// there is one].
    ///
    /// An entry's `arn` or `pattern` is matched against the identity a
    /// verification found (an AWS key's user ARN), then against each
    /// location's path (`pattern: "services/payments/*"`).
    /// Example: `--owners keytrail.owners.yaml`
    #[arg(long, value_name = "FILE")]
    pub owners: Option<PathBuf>,
}

/// `--db` of the store commands.
#[derive(Debug, Args)]
pub struct DbArg {
    /// The store: a SQLite file or `postgres://user@host/db` [default:
    /// `$XDG_DATA_HOME/keytrail/keytrail.db`, else
    /// `~/.local/share/keytrail/keytrail.db`].
    ///
    /// Example: `--db findings.db`
    #[arg(long, value_name = "LOCATION", env = "KEYTRAIL_DB")]
    pub db: Option<String>,
}

/// `--db` and `--target` of commands whose results can be recorded
/// (`keytrail verify`, `keytrail posture`, `keytrail detect`, `keytrail exposure`).
#[derive(Debug, Clone, Args)]
pub struct RecordArgs {
    /// Record the run and its findings in the store at LOCATION (a SQLite
    /// file or `postgres://user@host/db`). `verify` records each finding's
    /// verification (a later scan without `--verify` keeps it); `posture`
    /// records its findings (kind `posture`), and a run that evaluated
    /// every check marks those of the same target it no longer finds as fixed.
    ///
    /// Example: `keytrail verify --db findings.db findings.json`
    #[arg(long, value_name = "LOCATION", env = "KEYTRAIL_DB")]
    pub db: Option<String>,

    /// The target the run is recorded under [default: the report's path,
    /// or the snapshot directory, made absolute].
    ///
    /// Example: `--target github.com/acme/api`
    #[arg(long, value_name = "NAME", requires = "db")]
    pub target: Option<String>,
}

/// Record `findings` as a run of `command` read from `report`, when
/// `args` names a store (an incomplete run: it never marks fixed).
pub fn record_report_run(
    args: &RecordArgs,
    command: &str,
    report: &Path,
    findings: &[Finding],
    quiet: bool,
) -> anyhow::Result<()> {
    let Some(db) = &args.db else {
        return Ok(());
    };
    let mut store = Store::open(db)?;
    let owners = load_owners(None, quiet)?;
    let owner = |f: &Finding| owners.as_ref().and_then(|o| owner_of(o, f));
    let target = match &args.target {
        Some(t) => t.clone(),
        None => std::fs::canonicalize(report)
            .unwrap_or_else(|_| report.to_path_buf())
            .display()
            .to_string(),
    };
    let mut run = RunRecord::new(command, &target);
    run.keytrail_version = env!("CARGO_PKG_VERSION").to_string();
    let sum = store.record_run(&run, findings, &owner)?;
    if !quiet {
        eprintln!(
            "recorded in {}: {} finding(s), {} new",
            store.location(),
            sum.seen,
            sum.new
        );
    }
    Ok(())
}

/// Record the findings of `keytrail posture` read from `snapshot`, when
/// `args` names a store. `complete`: every check was evaluated.
/// `run_key`: record the run once under this key (a posture job's key):
/// a run already recorded changes nothing. Returns what was recorded.
pub fn record_posture_run(
    args: &RecordArgs,
    run_key: Option<&str>,
    snapshot: &Path,
    findings: &[keytrail_inventory::PostureFinding],
    complete: bool,
    quiet: bool,
) -> anyhow::Result<Option<keytrail_store::RunSummary>> {
    let Some(db) = &args.db else {
        return Ok(None);
    };
    let mut store = Store::open(db)?;
    let target = match &args.target {
        Some(t) => t.clone(),
        None => std::fs::canonicalize(snapshot)
            .unwrap_or_else(|_| snapshot.to_path_buf())
            .display()
            .to_string(),
    };
    let mut records = Vec::with_capacity(findings.len());
    for f in findings {
        records.push(keytrail_store::Record {
            kind: "posture".into(),
            // Stable across runs: the check and the resource.
            fingerprint: posture_fingerprint(
                &f.check,
                &f.resource,
                &serde_json::to_value(&f.evidence)?,
            ),
            rule_id: f.check.clone(),
            title: f.title.clone(),
            severity: f.severity,
            detail: serde_json::to_value(f)?,
            owner: f.owner.clone(),
        });
    }
    let mut run = RunRecord::new("posture", &target);
    if let Some(k) = run_key {
        run.run_key = k.to_string();
    }
    run.keytrail_version = env!("CARGO_PKG_VERSION").to_string();
    run.complete = complete;
    let sum = store.record_records_of(&run, "posture", &records)?;
    if quiet {
        // Nothing to say.
    } else if !sum.recorded {
        eprintln!(
            "run `{}` was already recorded in {}: nothing changed",
            run.run_key,
            store.location()
        );
    } else {
        eprintln!(
            "recorded in {}: {} finding(s), {} new, {} fixed, {} reopened",
            store.location(),
            sum.seen,
            sum.new,
            sum.fixed,
            sum.reopened
        );
    }
    Ok(Some(sum))
}

/// Record the identities and credentials of `keytrail inventory` read
/// from `snapshot`, when `args` names a store: one record each (kind
/// `inventory`, rule id the identity's kind, fingerprint from its id), so
/// a later complete inventory of the same target marks the credentials it
/// no longer lists as fixed. This is what the server's trends count.
pub fn record_inventory_run(
    args: &RecordArgs,
    snapshot: &Path,
    records: &[keytrail_inventory::IdentityRecord],
    complete: bool,
    quiet: bool,
) -> anyhow::Result<()> {
    let Some(db) = &args.db else {
        return Ok(());
    };
    let mut store = Store::open(db)?;
    let target = match &args.target {
        Some(t) => t.clone(),
        None => std::fs::canonicalize(snapshot)
            .unwrap_or_else(|_| snapshot.to_path_buf())
            .display()
            .to_string(),
    };
    let mut out = Vec::with_capacity(records.len());
    for r in records {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(b"inventory\0");
        h.update(r.id.as_bytes());
        let fingerprint: String = h.finalize()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        out.push(keytrail_store::Record {
            kind: "inventory".into(),
            fingerprint,
            rule_id: r.kind.clone(),
            title: r.name.clone(),
            // Flagged identities (unowned, unused, over-privileged) stand
            // out; the others are information.
            severity: if r.flags.is_empty() {
                keytrail_types::Severity::Info
            } else {
                keytrail_types::Severity::Low
            },
            detail: serde_json::to_value(r)?,
            owner: (r.owner != keytrail_inventory::UNOWNED).then(|| r.owner.clone()),
        });
    }
    let mut run = RunRecord::new("inventory", &target);
    run.keytrail_version = env!("CARGO_PKG_VERSION").to_string();
    run.complete = complete;
    let sum = store.record_records_of(&run, "inventory", &out)?;
    if !quiet {
        eprintln!(
            "recorded in {}: {} identities and credentials, {} new, {} gone",
            store.location(),
            sum.seen,
            sum.new,
            sum.fixed
        );
    }
    Ok(())
}

/// Alerts as store records of kind `alert`, each under its own stable id
/// (rule, principal, first evidence), kept whole as JSON.
pub(crate) fn alert_records(
    alerts: &[keytrail_detect::Alert],
) -> serde_json::Result<Vec<keytrail_store::Record>> {
    alerts
        .iter()
        .map(|a| {
            Ok(keytrail_store::Record {
                kind: "alert".into(),
                fingerprint: a.id.clone(),
                rule_id: a.rule_id.clone(),
                title: a.title.clone(),
                severity: a.severity,
                detail: serde_json::to_value(a)?,
                owner: None,
            })
        })
        .collect()
}

/// Record the alerts of `keytrail detect` read from `paths`, when `args`
/// names a store. Alerts are events, not states: a run never marks an
/// earlier alert fixed.
pub fn record_alerts_run(
    args: &RecordArgs,
    paths: &[PathBuf],
    alerts: &[keytrail_detect::Alert],
    quiet: bool,
) -> anyhow::Result<()> {
    let Some(db) = &args.db else {
        return Ok(());
    };
    let mut store = Store::open(db)?;
    let target = match &args.target {
        Some(t) => t.clone(),
        None => paths
            .iter()
            .map(|p| match std::fs::canonicalize(p) {
                Ok(abs) => abs.display().to_string(),
                Err(_) => p.display().to_string(),
            })
            .collect::<Vec<_>>()
            .join(" "),
    };
    let records = alert_records(alerts)?;
    let mut run = RunRecord::new("detect", &target);
    run.keytrail_version = env!("CARGO_PKG_VERSION").to_string();
    run.complete = false;
    let sum = store.record_records(&run, &records)?;
    if !quiet {
        eprintln!(
            "recorded in {}: {} alert(s), {} new",
            store.location(),
            sum.seen,
            sum.new
        );
    }
    Ok(())
}

/// Record the records of `keytrail exposure` (one per credential), when
/// `args` names a store. A join at one time, not a state of a target: a run
/// never marks an earlier record fixed.
pub fn record_exposure_run(
    args: &RecordArgs,
    cloudtrail: &[PathBuf],
    records: &[keytrail_exposure::ExposureRecord],
    quiet: bool,
) -> anyhow::Result<()> {
    let Some(db) = &args.db else {
        return Ok(());
    };
    let mut store = Store::open(db)?;
    let target = match &args.target {
        Some(t) => t.clone(),
        None => cloudtrail
            .iter()
            .map(|p| match std::fs::canonicalize(p) {
                Ok(abs) => abs.display().to_string(),
                Err(_) => p.display().to_string(),
            })
            .collect::<Vec<_>>()
            .join(" "),
    };
    let mut out = Vec::with_capacity(records.len());
    for r in records {
        use sha2::Digest;
        // The key id (or the finding fingerprint for other credentials):
        // an identifier, not a secret.
        let mut h = sha2::Sha256::new();
        h.update(b"exposure\0");
        h.update(r.access_key_id.as_bytes());
        let digest = h.finalize();
        let verdict = serde_json::to_value(r.verdict)?;
        out.push(keytrail_store::Record {
            kind: "exposure".into(),
            fingerprint: digest[..16].iter().map(|b| format!("{b:02x}")).collect(),
            rule_id: "exposure".into(),
            title: verdict.as_str().unwrap_or("exposure").to_string(),
            severity: match r.action.kind.as_str() {
                "revoke_now" => keytrail_types::Severity::Critical,
                "rotate" => keytrail_types::Severity::High,
                _ => keytrail_types::Severity::Medium,
            },
            detail: serde_json::to_value(r)?,
            owner: r.identity.owner.clone().filter(|o| o != "UNOWNED"),
        });
    }
    let mut run = RunRecord::new("exposure", &target);
    run.keytrail_version = env!("CARGO_PKG_VERSION").to_string();
    let sum = store.record_records(&run, &out)?;
    if !quiet {
        eprintln!(
            "recorded in {}: {} credential(s), {} new",
            store.location(),
            sum.seen,
            sum.new
        );
    }
    Ok(())
}

/// `keytrail import`.
#[derive(Debug, Args)]
#[command(
    after_help = "Exit codes: 0 = imported, 2 = error (a FILE that cannot be read or is not a \
keytrail JSON or JSONL report, named with its line and column; a store that cannot be opened).\n\n\
Examples:\n  keytrail scan --format jsonl . > findings.jsonl && keytrail import --db findings.db findings.jsonl\n  \
keytrail import --db postgres://keytrail@db/keytrail --target github.com/acme/api report.json"
)]
pub struct ImportArgs {
    /// JSON or JSONL reports written by `keytrail scan`, or the JSONL of
    /// `keytrail posture` or `keytrail detect`; each file is one run.
    ///
    /// A `secret` field (reports written with `--reveal`) is never stored.
    /// Example: `keytrail import findings.jsonl`
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,

    /// The store.
    #[command(flatten)]
    pub db: DbArg,

    /// The target the runs are recorded under [default: the FILE's path].
    ///
    /// Example: `--target github.com/acme/api`
    #[arg(long, value_name = "NAME")]
    pub target: Option<String>,

    /// The owners file for findings without an owner [default:
    /// `keytrail.owners.yaml` in the working directory, if there is one].
    ///
    /// Example: `--owners keytrail.owners.yaml`
    #[arg(long, value_name = "FILE")]
    pub owners: Option<PathBuf>,

    /// Print nothing on stderr except errors.
    ///
    /// Example: `keytrail import -q findings.jsonl`
    #[arg(long, short)]
    pub quiet: bool,
}

/// Kinds of `keytrail findings`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KindArg {
    /// Secrets (`scan`, `import`, `verify`).
    Secret,
    /// Posture findings (`posture --db`).
    Posture,
    /// Alerts of `detect --db`.
    Alert,
    /// Credentials of `exposure --db`.
    Exposure,
    /// Identities and credentials of `inventory --db`.
    Inventory,
}

/// Formats of `keytrail findings`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FindingsFormat {
    /// One JSON object per location, as `scan --format jsonl`, plus the store's fields.
    Jsonl,
    /// One line per finding: fingerprint, status, severity, rule, first location.
    Human,
}

/// `keytrail findings`.
#[derive(Debug, Args)]
#[command(
    after_help = "Exit codes: 0 = nothing listed, 1 = findings listed, 2 = error.\n\n\
Examples:\n  keytrail findings --db findings.db\n  \
keytrail findings --db findings.db --status open --status acknowledged --min-severity high\n  \
keytrail findings --db findings.db --format human --owner payments"
)]
pub struct FindingsArgs {
    /// The store.
    #[command(flatten)]
    pub db: DbArg,

    /// Which findings: secrets, posture findings (`posture --db`) or alerts
    /// (`detect --db`); the JSONL of posture findings and alerts is that of
    /// `posture`/`detect --format jsonl`, plus `store`.
    ///
    /// Example: `--kind posture`
    #[arg(long, value_enum, default_value_t = KindArg::Secret)]
    pub kind: KindArg,

    /// Only findings with this status (repeatable): open, acknowledged,
    /// false_positive, accepted_risk, revoked, fixed.
    ///
    /// Example: `--status open --status acknowledged`
    #[arg(long = "status", value_name = "STATUS", value_parser = parse_status)]
    pub statuses: Vec<Status>,

    /// Only findings of this rule.
    ///
    /// Example: `--rule github.pat.classic`
    #[arg(long = "rule", value_name = "ID")]
    pub rule: Option<String>,

    /// Only findings seen in this target (as recorded by `scan --target`
    /// or the default: the absolute scanned paths).
    ///
    /// Example: `--target github.com/acme/api`
    #[arg(long, value_name = "NAME")]
    pub target: Option<String>,

    /// Only findings at least this severe.
    ///
    /// Example: `--min-severity high`
    #[arg(long, value_enum, value_name = "LEVEL")]
    pub min_severity: Option<crate::args::SeverityArg>,

    /// Only findings assigned to NAME.
    ///
    /// Example: `--assignee alice`
    #[arg(long, value_name = "NAME")]
    pub assignee: Option<String>,

    /// Only findings owned by NAME.
    ///
    /// Example: `--owner payments`
    #[arg(long, value_name = "NAME")]
    pub owner: Option<String>,

    /// At most N findings (in the order they were first recorded).
    ///
    /// Example: `--limit 100`
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,

    /// Output format.
    ///
    /// Example: `--format human`
    #[arg(long, value_enum, default_value_t = FindingsFormat::Jsonl)]
    pub format: FindingsFormat,

    /// Write to FILE instead of standard output.
    ///
    /// Example: `--output open.jsonl`
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `keytrail triage`.
#[derive(Debug, Args)]
#[command(
    after_help = "Without a change, prints the finding, its audit trail and comments.\n\n\
Exit codes: 0 = done, 2 = error (no such finding, a change based on a stale --if-version, \
a store that cannot be opened).\n\n\
Examples:\n  keytrail triage --db findings.db 3f2a9c01 --status false_positive --comment \"test fixture\"\n  \
keytrail triage --db findings.db 3f2a9c01 --assignee alice --status acknowledged\n  \
keytrail triage --db findings.db 3f2a9c01"
)]
pub struct TriageArgs {
    /// The finding's fingerprint (the `fingerprint` of scan reports and
    /// `keytrail findings`), or its first 6 or more hex digits when no
    /// other fingerprint starts with them.
    ///
    /// Example: `keytrail triage 0f1e2d3c4b5a69788796a5b4c3d2e1f0 --status revoked`
    #[arg(value_name = "FINGERPRINT")]
    pub fingerprint: String,

    /// The store.
    #[command(flatten)]
    pub db: DbArg,

    /// New status: open, acknowledged, false_positive, accepted_risk,
    /// revoked or fixed. False positives and accepted risks are left out
    /// of later `scan --db` reports.
    ///
    /// Example: `--status false_positive`
    #[arg(long, value_name = "STATUS", value_parser = parse_status)]
    pub status: Option<Status>,

    /// Assign the finding to NAME.
    ///
    /// Example: `--assignee alice`
    #[arg(long, value_name = "NAME", conflicts_with = "unassign")]
    pub assignee: Option<String>,

    /// Remove the assignee.
    ///
    /// Example: `--unassign`
    #[arg(long)]
    pub unassign: bool,

    /// Set the owner (by default the owners file's, when the finding was recorded).
    ///
    /// Example: `--owner payments`
    #[arg(long, value_name = "NAME")]
    pub owner: Option<String>,

    /// Add a comment.
    ///
    /// Example: `--comment "rotated on 2026-12-07, old key deleted"`
    #[arg(long, value_name = "TEXT")]
    pub comment: Option<String>,

    /// Who makes the change, for the audit trail [default: `$KEYTRAIL_ACTOR`,
    /// else `$USER`].
    ///
    /// Example: `--actor alice@example.com`
    #[arg(long, value_name = "NAME")]
    pub actor: Option<String>,

    /// Apply only if the finding is still at version N (the `version` you
    /// read): a change made in between by someone else is not overwritten.
    ///
    /// Example: `--if-version 3`
    #[arg(long, value_name = "N")]
    pub if_version: Option<i64>,
}

fn parse_status(s: &str) -> Result<Status, String> {
    s.parse()
}

/// The default store file: `$XDG_DATA_HOME/keytrail/keytrail.db`, else
/// `$HOME/.local/share/keytrail/keytrail.db`.
pub fn default_db() -> anyhow::Result<String> {
    let base = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty() && Path::new(v).is_absolute())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".local").join("share"))
        })
        .context("no data directory for the default store: set --db, XDG_DATA_HOME or HOME")?;
    Ok(base
        .join("keytrail")
        .join("keytrail.db")
        .display()
        .to_string())
}

/// Open the store; `existing`: a SQLite file must exist already (the
/// commands that read the store do not create an empty one at a mistyped
/// path).
pub(crate) fn open(db: Option<&str>, existing: bool) -> anyhow::Result<Store> {
    let location = match db {
        Some(d) => d.to_string(),
        None => default_db()?,
    };
    if existing && !keytrail_store::is_postgres_url(&location) {
        let path = location.strip_prefix("sqlite:").unwrap_or(&location);
        if !Path::new(path).exists() {
            anyhow::bail!(
                "{path}: no such store (`keytrail scan --db {path} PATH` or `keytrail import --db {path} FILE` makes one)"
            );
        }
    }
    Ok(Store::open(&location)?)
}

/// The owners file: `path`, else `keytrail.owners.yaml` when present.
fn load_owners(path: Option<&Path>, quiet: bool) -> anyhow::Result<Option<Owners>> {
    let path = match path {
        Some(p) => p.to_path_buf(),
        None => {
            let p = PathBuf::from(DEFAULT_OWNERS);
            if !p.is_file() {
                return Ok(None);
            }
            p
        }
    };
    if !path.is_file() {
        anyhow::bail!("owners file `{}` cannot be read", path.display());
    }
    let (owners, diags) = Owners::load(&path);
    if let Some(d) = diags.iter().find(|d| d.is_error && d.kind == "unreadable") {
        anyhow::bail!("{d}");
    }
    if !quiet {
        for d in &diags {
            eprintln!("warning: {d}");
        }
    }
    Ok(Some(owners))
}

/// The owner the owners file gives `f`: by the verified identity's ARN,
/// then by each location's path.
fn owner_of(owners: &Owners, f: &Finding) -> Option<String> {
    let identity = f
        .verification
        .iter()
        .flat_map(|v| v.identity.iter())
        .filter(|(k, _)| k == "arn")
        .map(|(_, v)| v.as_str());
    let paths = f.locations.iter().map(|l| l.path.as_str());
    identity
        .chain(paths)
        .find_map(|id| owners.lookup(id, &[]))
        .map(|o| o.owner)
}

/// A scan's store: opened before the scan, recorded after it.
pub struct ScanStore {
    store: Store,
    owners: Option<Owners>,
    /// Findings triaged as false positive or accepted risk, as the store
    /// keeps them (keyed: see [`ScanStore::suppresses`]).
    suppressed: HashSet<String>,
    target: String,
    started_at: String,
    run_key: Option<String>,
}

impl ScanStore {
    /// Whether the store's triage leaves the finding with this (report)
    /// fingerprint out of reports.
    pub fn suppresses(&self, fingerprint: &str) -> bool {
        self.suppressed.contains(&self.store.store_id(fingerprint))
    }

    /// Open the store `args` names (if any) and read what it suppresses.
    pub fn open(
        args: &ScanStoreArgs,
        input: &crate::args::InputArgs,
    ) -> anyhow::Result<Option<ScanStore>> {
        let location = match (&args.db, args.record) {
            (Some(d), _) => d.clone(),
            (None, true) => default_db()?,
            (None, false) => return Ok(None),
        };
        let started_at = keytrail_store::now();
        let mut store = Store::open(&location)?;
        let suppressed = store.suppressed()?;
        let owners = load_owners(args.owners.as_deref(), input.quiet)?;
        let target = match &args.target {
            Some(t) => t.clone(),
            None => scan_target(input),
        };
        Ok(Some(ScanStore {
            store,
            owners,
            suppressed,
            target,
            started_at,
            run_key: args.run_key.clone(),
        }))
    }

    /// Record the run: `reported` (the findings of the report) and
    /// `others` (left out of it: below the threshold, baselined, or
    /// triaged as false positive or accepted risk, `triaged` of them).
    // One call site, each argument named there: a struct would only move the list.
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &mut self,
        reported: &[Finding],
        others: &[Finding],
        triaged: usize,
        complete: bool,
        rules: Vec<String>,
        present: Vec<String>,
        quiet: bool,
    ) -> anyhow::Result<keytrail_store::RunSummary> {
        let mut run = RunRecord::new("scan", &self.target);
        if let Some(k) = &self.run_key {
            run.run_key = k.clone();
        }
        run.started_at = self.started_at.clone();
        run.finished_at = keytrail_store::now();
        run.keytrail_version = env!("CARGO_PKG_VERSION").to_string();
        run.complete = complete;
        run.rules = rules;
        run.present = present;
        let mut all: Vec<Finding> = reported.to_vec();
        all.extend(others.iter().cloned());
        let owners = self.owners.as_ref();
        let owner = |f: &Finding| owners.and_then(|o| owner_of(o, f));
        let sum = self.store.record_run(&run, &all, &owner)?;
        if !sum.recorded {
            if !quiet {
                eprintln!(
                    "run `{}` was already recorded in {}: nothing changed",
                    run.run_key,
                    self.store.location()
                );
            }
            return Ok(sum);
        }
        if !quiet {
            eprintln!(
                "recorded in {}: {} finding(s), {} new, {} fixed, {} reopened; {} triaged as false positive or accepted risk not reported",
                self.store.location(),
                sum.seen,
                sum.new,
                sum.fixed,
                sum.reopened,
                triaged
            );
        }
        Ok(sum)
    }
}

/// The default target of a scan: its inputs as given, paths made absolute.
fn scan_target(input: &crate::args::InputArgs) -> String {
    let mut parts: Vec<String> = Vec::new();
    for p in &input.paths {
        if p.as_os_str() == "-" {
            parts.push("-".into());
        } else {
            let abs = std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
            parts.push(abs.display().to_string());
        }
    }
    parts.extend(input.git_urls.iter().map(|u| format!("git:{u}")));
    parts.extend(input.images.iter().map(|i| format!("image:{i}")));
    // S3 URIs as given: what a worker's S3 job records too.
    parts.extend(input.s3.iter().cloned());
    for l in &input.logs {
        let abs = std::fs::canonicalize(l).unwrap_or_else(|_| l.clone());
        parts.push(format!("log:{}", abs.display()));
    }
    if input.staged && parts.is_empty() {
        let cwd = std::env::current_dir().unwrap_or_default();
        parts.push(cwd.display().to_string());
    }
    parts.join(" ")
}

/// Runs `keytrail import`.
pub fn run_import(args: &ImportArgs) -> anyhow::Result<ExitStatus> {
    // Read every file first: a bad one stops the import before anything
    // is recorded.
    let mut reports = Vec::new();
    for file in &args.files {
        let report = match read_records(file)? {
            Some(records) => Imported::Records(records),
            None => {
                let findings =
                    keytrail_verify::findings_file::read(file).map_err(anyhow::Error::msg)?;
                // A revealed `secret` field is dropped here: the store never sees it.
                Imported::Findings(findings.into_iter().map(|(f, _secret)| f).collect())
            }
        };
        reports.push((file, report));
    }
    let owners = load_owners(args.owners.as_deref(), args.quiet)?;
    let mut store = open(args.db.db.as_deref(), false)?;
    let owner = |f: &Finding| owners.as_ref().and_then(|o| owner_of(o, f));
    for (file, report) in reports {
        let target = match &args.target {
            Some(t) => t.clone(),
            None => std::fs::canonicalize(file)
                .unwrap_or_else(|_| file.clone())
                .display()
                .to_string(),
        };
        let mut run = RunRecord::new("import", &target);
        run.keytrail_version = env!("CARGO_PKG_VERSION").to_string();
        // What a report left out is unknown: an import never marks fixed.
        run.complete = false;
        let sum = match &report {
            Imported::Findings(findings) => store.record_run(&run, findings, &owner),
            Imported::Records(records) => store.record_records(&run, records),
        }
        .with_context(|| format!("importing `{}`", file.display()))?;
        if !args.quiet {
            eprintln!(
                "imported {}: {} finding(s), {} new, {} reopened, into {}",
                file.display(),
                sum.seen,
                sum.new,
                sum.reopened,
                store.location()
            );
        }
    }
    Ok(ExitStatus::Clean)
}

/// What an imported file holds.
enum Imported {
    /// A scan report.
    Findings(Vec<Finding>),
    /// JSONL of `posture` or `detect`.
    Records(Vec<keytrail_store::Record>),
}

/// Evidence fields that tell apart findings of one check on one resource
/// (two old access keys of one user): identifiers, never counts or ages,
/// so the fingerprint stays the same from run to run.
const POSTURE_DISCRIMINATORS: &[&str] = &[
    "access_key_id",
    "key_id",
    "principal",
    "trusted_account",
    "role",
    "member",
    "nodegroup",
    "instance_profile",
    "credential_type",
    "cluster",
    "application",
    "vendor",
    "region",
];

/// The fingerprint of a posture finding: its check, resource and the
/// identifying fields of its evidence.
fn posture_fingerprint(check: &str, resource: &str, evidence: &serde_json::Value) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(b"posture\0");
    h.update(check.as_bytes());
    h.update(b"\0");
    h.update(resource.as_bytes());
    for key in POSTURE_DISCRIMINATORS {
        if let Some(v) = evidence.get(*key).and_then(|v| v.as_str()) {
            h.update(b"\0");
            h.update(key.as_bytes());
            h.update(b"=");
            h.update(v.as_bytes());
        }
    }
    h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The JSONL of `keytrail posture` (lines with `check` and `resource`) or
/// `keytrail detect` (lines with `id`, `rule_id` and `principal`) as
/// records; `None` for anything else (a scan report). A bad line is an
/// error naming the file, line and column.
fn read_records(file: &Path) -> anyhow::Result<Option<Vec<keytrail_store::Record>>> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("{}: cannot be read", file.display()))?;
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let Ok(serde_json::Value::Object(head)) = serde_json::from_str(first) else {
        return Ok(None);
    };
    let kind = if head.contains_key("check") && head.contains_key("resource") {
        "posture"
    } else if head.contains_key("principal")
        && head.contains_key("id")
        && head.contains_key("rule_id")
    {
        "alert"
    } else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = |what: String| anyhow::anyhow!("{}:{}: {what}", file.display(), n + 1);
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| at(format!("{}: {e}", e.column())))?;
        let text_of = |key: &str| -> anyhow::Result<String> {
            v[key]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| at(format!("no `{key}` (a {kind} line needs one)")))
        };
        let severity: keytrail_types::Severity =
            text_of("severity")?.parse().map_err(|e: String| at(e))?;
        let (fingerprint, rule_id) = match kind {
            "posture" => (
                posture_fingerprint(&text_of("check")?, &text_of("resource")?, &v["evidence"]),
                text_of("check")?,
            ),
            _ => (text_of("id")?, text_of("rule_id")?),
        };
        out.push(keytrail_store::Record {
            kind: kind.into(),
            fingerprint,
            rule_id,
            title: text_of("title")?,
            severity,
            owner: v["owner"].as_str().map(str::to_string),
            detail: v,
        });
    }
    Ok(Some(out))
}

/// One finding as JSONL lines: the scan's record of each location plus
/// the store's fields.
fn write_stored(w: &mut dyn Write, f: &StoredFinding) -> anyhow::Result<()> {
    if let Some(raw) = &f.raw {
        let mut rec = raw.as_object().cloned().unwrap_or_default();
        rec.insert("store".into(), store_fields(f));
        serde_json::to_writer(&mut *w, &rec)?;
        w.write_all(b"\n")?;
        return Ok(());
    }
    let mut buf = Vec::new();
    let summary = Summary::default();
    let report = Report {
        findings: std::slice::from_ref(&f.finding),
        rules: &[],
        summary: &summary,
    };
    write_report(&mut buf, Format::Jsonl, &report, &ReportOptions::default())?;
    let store = store_fields(f);
    let lines: Vec<&[u8]> = buf
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    write_lines(w, f, store, lines)
}

/// The `store` object of a listed finding.
fn store_fields(f: &StoredFinding) -> serde_json::Value {
    serde_json::json!({
        "status": f.status,
        "assignee": f.assignee,
        "owner": f.owner,
        "first_seen": f.first_seen,
        "last_seen": f.last_seen,
        "fixed_at": f.fixed_at,
        "version": f.version,
        "targets": f.targets,
    })
}

fn write_lines(
    w: &mut dyn Write,
    f: &StoredFinding,
    store: serde_json::Value,
    lines: Vec<&[u8]>,
) -> anyhow::Result<()> {
    if lines.is_empty() {
        // A finding without locations (imported from a report that had none).
        let mut rec = serde_json::Map::new();
        rec.insert("rule_id".into(), f.finding.rule_id.clone().into());
        rec.insert("fingerprint".into(), f.finding.fingerprint.0.clone().into());
        rec.insert("severity".into(), f.finding.severity.as_str().into());
        rec.insert(
            "secret_redacted".into(),
            f.finding.secret_redacted.clone().into(),
        );
        rec.insert("occurrences".into(), 0.into());
        rec.insert("store".into(), store);
        serde_json::to_writer(&mut *w, &rec)?;
        w.write_all(b"\n")?;
        return Ok(());
    }
    for line in lines {
        let mut rec: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(line)?;
        rec.insert("store".into(), store.clone());
        serde_json::to_writer(&mut *w, &rec)?;
        w.write_all(b"\n")?;
    }
    Ok(())
}

/// Runs `keytrail findings`.
pub fn run_findings(args: &FindingsArgs) -> anyhow::Result<ExitStatus> {
    let mut store = open(args.db.db.as_deref(), true)?;
    let filter = Filter {
        kind: Some(
            match args.kind {
                KindArg::Secret => "secret",
                KindArg::Posture => "posture",
                KindArg::Alert => "alert",
                KindArg::Exposure => "exposure",
                KindArg::Inventory => "inventory",
            }
            .to_string(),
        ),
        statuses: args.statuses.clone(),
        rule_id: args.rule.clone(),
        target: args.target.clone(),
        min_severity: args.min_severity.map(Into::into),
        assignee: args.assignee.clone(),
        owner: args.owner.clone(),
        after_id: None,
        newest_first: false,
        limit: args.limit,
    };
    let found = store.list_findings(&filter)?;
    crate::term::write_output(args.output.as_deref(), |w| {
        for f in &found {
            match args.format {
                FindingsFormat::Jsonl => {
                    write_stored(w, f).map_err(|e| std::io::Error::other(e.to_string()))?
                }
                FindingsFormat::Human => {
                    let first = match &f.raw {
                        Some(raw) => raw["resource"]
                            .as_str()
                            .or(raw["principal"].as_str())
                            .or(raw["access_key_id"].as_str())
                            .unwrap_or_default()
                            .to_string(),
                        None => f
                            .finding
                            .locations
                            .first()
                            .map(|l| format!("{}:{}", l.path, l.line))
                            .unwrap_or_default(),
                    };
                    writeln!(
                        w,
                        "{}  {:<14} {:<8} {:<28} {} {}{}",
                        f.finding.fingerprint,
                        f.status.as_str(),
                        f.finding.severity.as_str(),
                        f.finding.rule_id,
                        f.finding.secret_redacted,
                        first,
                        f.assignee
                            .as_deref()
                            .map(|a| format!("  @{a}"))
                            .unwrap_or_default()
                    )?;
                }
            }
        }
        Ok(())
    })?;
    Ok(if found.is_empty() {
        ExitStatus::Clean
    } else {
        ExitStatus::Findings
    })
}

/// Runs `keytrail triage`.
pub fn run_triage(args: &TriageArgs) -> anyhow::Result<ExitStatus> {
    let mut store = open(args.db.db.as_deref(), true)?;
    let fp = store.resolve(args.fingerprint.trim())?;
    let fp = fp.as_str();
    let changing = args.status.is_some()
        || args.assignee.is_some()
        || args.unassign
        || args.owner.is_some()
        || args.comment.is_some();
    let mut out = std::io::stdout().lock();
    if !changing {
        let Some(f) = store.finding(fp)? else {
            anyhow::bail!(
                "{}: no finding has the fingerprint `{fp}`",
                store.location()
            );
        };
        let (audit, comments) = store.history(fp)?;
        write_stored(&mut out, &f)?;
        for a in audit {
            serde_json::to_writer(&mut out, &serde_json::json!({"type": "audit", "entry": a}))?;
            out.write_all(b"\n")?;
        }
        for c in comments {
            serde_json::to_writer(
                &mut out,
                &serde_json::json!({"type": "comment", "entry": c}),
            )?;
            out.write_all(b"\n")?;
        }
        return Ok(ExitStatus::Clean);
    }
    let actor = args
        .actor
        .clone()
        .or_else(|| std::env::var("KEYTRAIL_ACTOR").ok())
        .or_else(|| std::env::var("USER").ok())
        .filter(|a| !a.trim().is_empty())
        .context("who makes the change: pass --actor NAME (or set KEYTRAIL_ACTOR)")?;
    let change = Triage {
        actor,
        status: args.status,
        assignee: if args.unassign {
            Some(None)
        } else {
            args.assignee.clone().map(Some)
        },
        owner: args.owner.clone().map(Some),
        comment: args.comment.clone(),
        if_version: args.if_version,
    };
    let f = store.triage(fp, &change)?;
    write_stored(&mut out, &f)?;
    Ok(ExitStatus::Clean)
}

/// `keytrail runs`.
#[derive(Debug, Args)]
#[command(
    after_help = "JSONL (default): one object per run, oldest first: {\"id\", \"run_key\", \"command\", \
\"target\", \"started_at\", \"finished_at\", \"keytrail_version\", \"complete\", \"findings\"}; \
`--format json` writes them as one array, `--format human` as a table. Exit codes: 0 = listed, \
2 = error (a store that cannot be opened).\n\n\
Examples:\n  keytrail runs --db findings.db\n  keytrail runs --db findings.db --target /srv/repo --format human"
)]
pub struct RunsArgs {
    /// The store.
    #[command(flatten)]
    pub db: DbArg,

    /// Only the runs of this target (as recorded: `--target` of the run,
    /// or the scanned paths made absolute).
    ///
    /// Example: `--target github.com/acme/api`
    #[arg(long, value_name = "NAME")]
    pub target: Option<String>,

    /// `jsonl`, `json` or `human`.
    ///
    /// Example: `--format human`
    #[arg(long, value_name = "FORMAT", default_value = "jsonl", value_parser = ["jsonl", "json", "human"])]
    pub format: String,
}

/// Runs `keytrail runs`.
pub fn run_runs(args: &RunsArgs) -> anyhow::Result<ExitStatus> {
    let mut store = open(args.db.db.as_deref(), true)?;
    let runs: Vec<keytrail_store::Run> = store
        .runs()?
        .into_iter()
        .filter(|r| args.target.as_ref().is_none_or(|t| &r.target == t))
        .collect();
    let mut out = std::io::stdout().lock();
    match args.format.as_str() {
        "json" => {
            serde_json::to_writer_pretty(&mut out, &runs)?;
            out.write_all(b"\n")?;
        }
        "human" => {
            writeln!(
                out,
                "{:>5}  {:<8} {:<27} {:<9} {:>8}  target",
                "id", "command", "finished", "complete", "findings"
            )?;
            for r in &runs {
                writeln!(
                    out,
                    "{:>5}  {:<8} {:<27} {:<9} {:>8}  {}",
                    r.id,
                    r.command,
                    r.finished_at,
                    if r.complete { "yes" } else { "no" },
                    r.findings,
                    r.target
                )?;
            }
        }
        _ => {
            for r in &runs {
                serde_json::to_writer(&mut out, r)?;
                out.write_all(b"\n")?;
            }
        }
    }
    out.flush()?;
    Ok(ExitStatus::Clean)
}

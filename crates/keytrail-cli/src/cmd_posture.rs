//! `keytrail posture` and `keytrail inventory`: evaluate a snapshot of
//! cloud CLI outputs (docs/snapshot-layout.md) with keytrail-inventory and
//! print findings (human table, JSONL, OCSF) or the identity inventory.
//!
//! Exit codes: 0 = no findings, 1 = findings (posture) or flagged
//! identities (inventory: unowned, unused or over-privileged), 2 = error (no
//! snapshot, unreadable owners file, files of the snapshot that could not
//! be read while nothing was found, or no check could be evaluated).

use crate::ExitStatus;
use anyhow::bail;
use clap::{Args, ValueEnum};
use keytrail_inventory::{Owners, Timestamp};
use keytrail_report::posture as output;
use keytrail_types::Diagnostic;
use std::path::PathBuf;

/// Output formats of `posture`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PostureFormat {
    /// Findings grouped by identity, then the checks not evaluated.
    Human,
    /// One finding per line: check, severity, resource, fact, evidence, remediation.
    Jsonl,
    /// A JSON array of OCSF Compliance Findings (class 2003).
    Ocsf,
}

/// Output formats of `inventory`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InventoryFormat {
    /// One line per identity, credentials indented beneath it.
    Human,
    /// One identity or credential per line.
    Jsonl,
}

/// What `posture` and `inventory` read.
#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// Snapshot directory (aws/, gcp/, azure/ as in docs/snapshot-layout.md).
    ///
    /// Example: `--snapshot snap/` (written by `keytrail collect aws --out snap/`)
    #[arg(long, value_name = "DIR")]
    pub snapshot: PathBuf,

    /// Owners file mapping identities to owner, purpose and environment.
    ///
    /// Example: `--owners keytrail.owners.yaml`
    #[arg(long, value_name = "FILE")]
    pub owners: Option<PathBuf>,

    /// Write to FILE instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Print nothing on stderr except errors.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `keytrail posture`.
#[derive(Debug, Args)]
#[command(
    after_help = "Exit codes: 0 = no findings, 1 = findings, 2 = error.\n\n\
Examples:\n  keytrail posture --snapshot snap/\n  \
keytrail posture --snapshot snap/ --owners keytrail.owners.yaml --format jsonl --output findings.jsonl"
)]
pub struct PostureArgs {
    /// The snapshot, owners and output.
    #[command(flatten)]
    pub common: SnapshotArgs,

    /// Output format.
    #[arg(long, value_enum, default_value_t = PostureFormat::Human)]
    pub format: PostureFormat,

    /// The store (`--db`, `--target`).
    #[command(flatten, next_help_heading = "Store")]
    pub store: crate::cmd_store::RecordArgs,

    /// Record the run under KEY, once: a second run with the same KEY (a
    /// retried job, a posture job a worker ran twice) changes nothing in
    /// the store [default: a random key per run].
    ///
    /// Example: `--run-key "$CI_PIPELINE_ID-posture"`
    #[arg(long, value_name = "KEY", requires = "db", help_heading = "Store")]
    pub run_key: Option<String>,
}

/// `keytrail inventory`.
#[derive(Debug, Args)]
#[command(
    after_help = "Exit codes: 0 = nothing stands out, 1 = unowned, unused or \
over-privileged identities, 2 = error.\n\n\
Examples:\n  keytrail inventory --snapshot snap/ --owners keytrail.owners.yaml\n  \
keytrail inventory --snapshot snap/ --format jsonl\n  \
keytrail inventory --snapshot snap/ --owners keytrail.owners.yaml --db findings.db\n  \
keytrail inventory --snapshot snap/ --owners-template keytrail.owners.yaml"
)]
pub struct InventoryArgs {
    /// The snapshot, owners and output.
    #[command(flatten)]
    pub common: SnapshotArgs,

    /// Output format.
    #[arg(long, value_enum, default_value_t = InventoryFormat::Human)]
    pub format: InventoryFormat,

    /// Also write an owners file listing every machine identity whose owner
    /// is unknown (`owner: UNOWNED`, with kind, privilege and last use as a
    /// comment), to fill in and pass to `--owners`. With `--owners`, only
    /// the identities that file does not cover, to append to it. Never
    /// overwrites an existing file.
    /// Example: `keytrail inventory --snapshot snap/ --owners-template keytrail.owners.yaml`
    #[arg(long, value_name = "FILE")]
    pub owners_template: Option<std::path::PathBuf>,

    /// The store (`--db`, `--target`).
    #[command(flatten, next_help_heading = "Store")]
    pub store: crate::cmd_store::RecordArgs,
}

struct Loaded {
    snapshot: keytrail_inventory::Snapshot,
    owners: Option<Owners>,
    diags: Vec<Diagnostic>,
    now: Timestamp,
}

fn load(args: &SnapshotArgs) -> anyhow::Result<Loaded> {
    if let Err(why) = keytrail_inventory::check_snapshot_dir(&args.snapshot) {
        bail!("--snapshot {}: {why}", args.snapshot.display());
    }
    let owners = match &args.owners {
        None => None,
        Some(path) => {
            let (owners, diags) = Owners::load(path);
            if let Some(d) = diags.iter().find(|d| d.is_error) {
                bail!("owners file {d}");
            }
            Some(owners)
        }
    };
    let (snapshot, diags) = keytrail_inventory::load_snapshot(&args.snapshot);
    if !args.quiet {
        for d in &diags {
            eprintln!("warning: {d}");
        }
    }
    Ok(Loaded {
        snapshot,
        owners,
        diags,
        now: Timestamp::from(std::time::SystemTime::now()),
    })
}

/// The exit status for a result: findings win; otherwise unreadable input
/// is an error (the clean result is incomplete).
fn status(found: bool, diags: &[Diagnostic]) -> ExitStatus {
    if found {
        ExitStatus::Findings
    } else if diags.iter().any(|d| d.is_error) {
        ExitStatus::Error
    } else {
        ExitStatus::Clean
    }
}

/// Runs `keytrail posture`.
pub fn run_posture(args: &PostureArgs) -> anyhow::Result<ExitStatus> {
    Ok(posture(args)?.0)
}

/// `keytrail posture`: its exit status and, with `--db`, what it recorded
/// (what a posture job of a worker runs).
pub(crate) fn posture(
    args: &PostureArgs,
) -> anyhow::Result<(ExitStatus, Option<keytrail_store::RunSummary>)> {
    let l = load(&args.common)?;
    let report = keytrail_inventory::check_all(&l.snapshot, l.owners.as_ref(), l.now);
    crate::term::write_output(args.common.output.as_deref(), |w| match args.format {
        PostureFormat::Human => output::write_findings_table(&report, w),
        PostureFormat::Jsonl => output::write_findings_jsonl(&report, w),
        PostureFormat::Ocsf => output::write_ocsf_json(&report, l.now, w),
    })?;
    if !args.common.quiet {
        eprintln!(
            "{} finding(s), {} check(s) or resource(s) not evaluated",
            report.findings.len(),
            report.not_evaluated.len()
        );
    }
    let complete = report.not_evaluated.is_empty() && !l.diags.iter().any(|d| d.is_error);
    let recorded = crate::cmd_store::record_posture_run(
        &args.store,
        args.run_key.as_deref(),
        &args.common.snapshot,
        &report.findings,
        complete,
        args.common.quiet,
    )?;
    let nothing = nothing_evaluated(&l.snapshot, &report);
    if nothing && report.findings.is_empty() {
        eprintln!(
            "error: nothing could be evaluated: every check of the snapshot's providers lacks its input \
(see the checks not evaluated above; docs/snapshot-layout.md lists the files)"
        );
        return Ok((ExitStatus::Error, recorded));
    }
    Ok((status(!report.findings.is_empty(), &l.diags), recorded))
}

/// Whether no check could be evaluated at all: every check of the
/// providers present in the snapshot is wholly not evaluated (a clean
/// result would then mean nothing).
fn nothing_evaluated(
    snap: &keytrail_inventory::Snapshot,
    report: &keytrail_inventory::Report,
) -> bool {
    let present = |provider: &str| match provider {
        "aws" => snap.aws.is_some(),
        "gcp" => !snap.gcp.is_empty(),
        "azure" => snap.azure.is_some(),
        _ => false,
    };
    let mut applicable = keytrail_inventory::CHECKS
        .iter()
        .filter(|c| present(c.id.split('.').next().unwrap_or("")))
        .peekable();
    if applicable.peek().is_none() {
        return true;
    }
    applicable.all(|c| {
        report
            .not_evaluated
            .iter()
            .any(|n| n.check == c.id && n.resource.is_none())
    })
}

/// Runs `keytrail inventory`.
pub fn run_inventory(args: &InventoryArgs) -> anyhow::Result<ExitStatus> {
    let l = load(&args.common)?;
    let records = keytrail_inventory::inventory(&l.snapshot, l.owners.as_ref(), l.now);
    if let Some(path) = &args.owners_template {
        let (text, n) = keytrail_inventory::owners::template(
            &records,
            &args.common.snapshot.display().to_string(),
            l.now,
        );
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| anyhow::anyhow!("--owners-template {}: {e}", path.display()))?;
        std::io::Write::write_all(&mut file, text.as_bytes())
            .map_err(|e| anyhow::anyhow!("--owners-template {}: {e}", path.display()))?;
        if !args.common.quiet {
            eprintln!(
                "wrote {n} identities without an owner to {}: fill in each `owner: UNOWNED`",
                path.display()
            );
        }
    }
    crate::term::write_output(args.common.output.as_deref(), |w| match args.format {
        InventoryFormat::Human => output::write_inventory_table(&records, w),
        InventoryFormat::Jsonl => output::write_inventory_jsonl(&records, w),
    })?;
    let flagged = records.iter().filter(|r| !r.flags.is_empty()).count();
    if !args.common.quiet {
        eprintln!(
            "{} identities and credentials, {flagged} flagged (unowned, unused or over-privileged)",
            records.len()
        );
    }
    let complete = !l.diags.iter().any(|d| d.is_error);
    crate::cmd_store::record_inventory_run(
        &args.store,
        &args.common.snapshot,
        &records,
        complete,
        args.common.quiet,
    )?;
    Ok(status(flagged > 0, &l.diags))
}

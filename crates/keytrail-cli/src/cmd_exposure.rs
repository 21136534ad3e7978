//! `keytrail exposure`: joins leaked credentials (findings of `keytrail scan`)
//! with their identity and reach (a snapshot, or one collected live) and with
//! what CloudTrail saw them do after they leaked (keytrail-exposure does the
//! work; this module maps flags, reads inputs and chooses the exit code).
//!
//! Exit codes: 0 = no leaked credential was used after its leak, 1 = at least one
//! was (or its leak time is unknown and it was used), 2 = error (bad arguments, an
//! unreadable or malformed findings file, an input that cannot be read).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use keytrail_detect::engine::{EngineBuilder, Logs};
use keytrail_exposure::{Directory, Leaks, Options, Verdict, output};

/// Output format of `keytrail exposure`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExposureFormat {
    /// One block per credential, riskiest first.
    Human,
    /// One JSON document: records, coverage, plan, summary.
    Json,
    /// One record per line (then plan lines with `--plan`).
    Jsonl,
}

/// Arguments of `keytrail exposure`.
#[derive(Debug, Clone, Args)]
#[command(
    after_help = "Exit codes: 0 = no leaked credential was used after it leaked, 1 = at least one was, 2 = error.\n\n\
Examples:\n  keytrail scan --format json -o findings.json repo/\n  \
keytrail exposure --findings findings.json --snapshot snap/ --cloudtrail AWSLogs/\n  \
keytrail exposure --findings findings.jsonl --live --cloudtrail s3://trail-bucket/AWSLogs/o-abc123/ --plan --format json\n  \
keytrail collect gcp --project acme-prod --out snap/ && keytrail exposure --findings findings.json --snapshot snap/ --logs gcp-audit.json"
)]
pub struct ExposureArgs {
    /// Findings written by `keytrail scan --format json` or `--format jsonl`;
    /// repeatable. Each AWS key id (pairs, or `aws.access_key_id` findings scanned with
    /// --reveal) and each Google Cloud service-account key (its `private_key_id`) is
    /// one credential; its leak time is the earliest dated location:
    /// commit author dates, image creation times, log line times.
    /// Example: `--findings findings.json`
    #[arg(long = "findings", value_name = "FILE", required = true)]
    pub findings: Vec<PathBuf>,

    /// Audit logs: files or directories in any layout `keytrail detect` reads,
    /// each file's format detected: CloudTrail (the S3 layout `AWSLogs/…`, gzip,
    /// NDJSON, CSV…) for AWS keys, Google Cloud audit logs (`gcloud logging read
    /// --format=json`, Cloud Storage sink files, Pub/Sub JSON) for service-account
    /// keys; or `s3://BUCKET/PREFIX`; repeatable. `--logs` is the same option.
    /// Read once: the detect engine runs on the same pass for alerts.
    /// Example: `--cloudtrail AWSLogs/` or `--logs gcp-audit/`
    #[arg(long = "cloudtrail", visible_alias = "logs", value_name = "PATH")]
    pub cloudtrail: Vec<PathBuf>,

    /// Snapshot directory of the account (docs/snapshot-layout.md), as written by
    /// `keytrail collect aws` / `collect gcp` or the AWS and gcloud CLIs: resolves
    /// AWS key ids to IAM users and Google Cloud key ids to service accounts,
    /// with their status, privileges and reach.
    /// Example: `--snapshot snap/`
    #[arg(long, value_name = "DIR", conflicts_with = "live")]
    pub snapshot: Option<PathBuf>,

    /// Resolve identities live: collect the account with the ambient AWS credentials
    /// (environment, AWS_PROFILE, SSO, instance role; AWS_ENDPOINT_URL honoured)
    /// into a temporary snapshot (the cargo feature `collect-aws`, in the
    /// default install).
    #[arg(long)]
    pub live: bool,

    /// Owners file (keytrail.owners.yaml): owner, purpose and environment of each
    /// identity.
    /// Example: `--owners keytrail.owners.yaml`
    #[arg(long, value_name = "FILE")]
    pub owners: Option<PathBuf>,

    /// Leak time for credentials whose locations carry no date (plain files, stdin),
    /// or `KEY=TIME` for one credential (overriding its provenance); repeatable. An
    /// RFC 3339 time or a date.
    /// Example: `--leaked-at 2024-03-10T09:00:00Z --leaked-at AKIA…=2024-03-01`
    #[arg(long = "leaked-at", value_name = "[KEY=]TIME")]
    pub leaked_at: Vec<String>,

    /// Also plan the replacement of every long-lived key (leaked, and the snapshot's
    /// active keys) by short-lived credentials, from how each is used, and count the
    /// long-lived keys.
    #[arg(long)]
    pub plan: bool,

    /// IP-intelligence directory or file (as for `keytrail detect`); default: the
    /// cache of `keytrail intel update`. Without it, networks are /24 prefixes.
    /// Example: `--ipintel /var/lib/keytrail/ipintel`
    #[arg(long, value_name = "PATH")]
    pub ipintel: Vec<PathBuf>,

    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value_t = ExposureFormat::Human)]
    pub format: ExposureFormat,

    /// Write the report to FILE instead of stdout.
    /// Example: `--output exposure.json`
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Parse threads for the logs (0 = one per CPU).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub threads: usize,

    /// Print nothing on stderr except errors.
    #[arg(long, short)]
    pub quiet: bool,

    /// The store (`--db`, `--target`): one record per credential (kind `exposure`).
    #[command(flatten, next_help_heading = "Store")]
    pub store: crate::cmd_store::RecordArgs,
}

fn parse_time(s: &str) -> anyhow::Result<i64> {
    use keytrail_detect::time::parse_rfc3339_ms;
    if let Some(t) = parse_rfc3339_ms(s) {
        return Ok(t);
    }
    if s.trim().len() == 10
        && let Some(t) = parse_rfc3339_ms(&format!("{}T00:00:00Z", s.trim()))
    {
        return Ok(t);
    }
    bail!("`{s}` is not a date (2024-03-01) or an RFC 3339 time (2024-03-01T12:00:00Z)")
}

fn is_s3(p: &Path) -> bool {
    p.to_str().is_some_and(|s| s.starts_with("s3://"))
}

/// Runs `keytrail exposure`.
pub fn run(args: &ExposureArgs) -> anyhow::Result<crate::ExitStatus> {
    let mut opts = Options {
        plan: args.plan,
        threads: match crate::threads::clamp(args.threads, true) {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        },
        as_of: keytrail_detect::time::format_rfc3339_ms(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64),
        ),
        ..Options::default()
    };
    for v in &args.leaked_at {
        match v.split_once('=') {
            Some((k, t)) => {
                opts.leaked_at_by_key
                    .insert(k.trim().to_string(), parse_time(t).context("--leaked-at")?);
            }
            None => opts.leaked_at_default = Some(parse_time(v).context("--leaked-at")?),
        }
    }
    let s3 = args.cloudtrail.iter().any(|p| is_s3(p));
    if s3 && !args.cloudtrail.iter().all(|p| is_s3(p)) {
        bail!("`s3://` inputs cannot be combined with local paths in one run");
    }
    for p in &args.cloudtrail {
        if !is_s3(p) && !p.exists() {
            bail!("log input `{}` does not exist", p.display());
        }
    }
    if let Some(s) = &args.snapshot
        && !s.is_dir()
    {
        bail!("snapshot `{}` is not a directory", s.display());
    }
    if let Some(o) = &args.owners
        && !o.is_file()
    {
        bail!("owners file `{}` does not exist", o.display());
    }

    // Findings: a file that cannot be read or parsed stops the run (exit 2); a bad
    // JSONL line is a warning and the rest is read.
    let mut leaks = Leaks::default();
    for f in &args.findings {
        if let Err(d) = keytrail_exposure::read_findings(f, &mut leaks) {
            bail!("{d}");
        }
    }
    for d in &leaks.diagnostics {
        if !args.quiet || d.is_error {
            eprintln!("{}: {d}", if d.is_error { "warning" } else { "note" });
        }
    }

    // Identity source.
    let owners = args.owners.as_ref().map(|p| {
        let (o, diags) = keytrail_inventory::Owners::load(p);
        for d in diags {
            eprintln!("warning: {d}");
        }
        o
    });
    let now = keytrail_inventory::chrono::DateTime::from_timestamp(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64),
        0,
    )
    .unwrap_or_default();
    let live_dir;
    let snapshot_dir: Option<&Path> = if args.live {
        live_dir = tempfile::tempdir().context("cannot create a temporary directory")?;
        if !cfg!(feature = "collect-aws") {
            bail!(
                "--live needs the AWS SDK: this build left out the default cargo feature `collect-aws` (add `--features collect-aws`), or collect a snapshot with `keytrail collect aws` / the AWS CLI and pass --snapshot"
            );
        }
        let opts = keytrail_collect::AwsCollectOptions {
            credential_report_timeout_secs: Some(60),
            ..Default::default()
        };
        let diags = keytrail_collect::collect_aws_blocking(&opts, live_dir.path());
        let failed: Vec<_> = diags.iter().filter(|d| d.is_error).collect();
        for d in &failed {
            if !args.quiet {
                eprintln!("warning: live: {d}");
            }
        }
        if !live_dir
            .path()
            .join("aws/iam-get-account-authorization-details.json")
            .is_file()
        {
            bail!(
                "live: IAM could not be read with the ambient credentials ({} failed call(s){}); check the credentials or pass --snapshot",
                failed.len(),
                failed
                    .first()
                    .map(|d| format!(", first: {d}"))
                    .unwrap_or_default()
            );
        }
        Some(live_dir.path())
    } else {
        args.snapshot.as_deref()
    };
    let dir = match snapshot_dir {
        Some(p) => {
            let (snap, diags) = keytrail_inventory::load_snapshot(p);
            for d in diags.iter().filter(|d| d.is_error) {
                eprintln!("warning: {d}");
            }
            let mut dir = Directory::from_snapshot(&snap, owners.as_ref(), now);
            if args.live {
                dir.source = "live";
            }
            dir
        }
        None => Directory::default(),
    };

    // Logs, read once through the detect engine.
    let mut builder = EngineBuilder::new();
    if args.ipintel.is_empty() {
        if let Some(cache) = crate::cmd_intel::cache_dir(None).filter(|d| d.is_dir()) {
            builder = builder.ipintel(&cache);
        }
    } else {
        for p in &args.ipintel {
            if !p.exists() {
                bail!("`{}` does not exist", p.display());
            }
            builder = builder.ipintel(p);
        }
    }
    if let Some(o) = &args.owners {
        builder = builder.owners_file(o);
    }
    let mut list_diags = Vec::new();
    let logs = if args.cloudtrail.is_empty() {
        None
    } else if s3 {
        Some(s3_logs(&args.cloudtrail)?)
    } else {
        let (files, diags) = keytrail_detect::reader::list_files(&args.cloudtrail);
        list_diags = diags;
        Some(Logs::Files(files))
    };
    let (shared, load_diags) = builder.build_shared();
    for d in load_diags.iter().filter(|d| d.is_error) {
        if !args.quiet {
            eprintln!("warning: {}: {}", d.subject, d.message);
        }
    }
    let ticker =
        crate::term::Ticker::start_with(!args.quiet, || "exposure: reading the audit logs".into());
    let (outcome, diags) = keytrail_exposure::run(
        leaks.leaks,
        &dir,
        logs.map(|l| (l, &builder, shared)),
        &opts,
    );
    ticker.finish();
    for d in diags.iter().chain(&list_diags) {
        if !args.quiet {
            eprintln!("warning: {d}");
        }
    }
    let mut unreadable: Vec<String> = list_diags
        .iter()
        .filter(|d| d.kind == keytrail_detect::reader::kinds::UNREADABLE)
        .map(|d| d.subject.clone())
        .collect();
    if let Some(st) = &outcome.stats {
        unreadable.extend(st.unreadable_files.iter().cloned());
        if !args.quiet && st.skipped_records > 0 {
            eprintln!(
                "warning: {} audit-log record(s) could not be read and were skipped",
                st.skipped_records
            );
        }
    }

    let color = crate::term::color_for_stdout(args.output.is_some());
    let mut buf: Vec<u8> = Vec::new();
    match args.format {
        ExposureFormat::Json => output::write_json(&mut buf, &outcome)?,
        ExposureFormat::Jsonl => output::write_jsonl(&mut buf, &outcome)?,
        ExposureFormat::Human => output::write_human(&mut buf, &outcome, color)?,
    }
    match &args.output {
        Some(p) => {
            std::fs::write(p, &buf).with_context(|| format!("cannot write `{}`", p.display()))?
        }
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(&buf)?;
            out.flush()?;
        }
    }
    let s = output::summary(&outcome);
    if !args.quiet {
        eprintln!(
            "exposure: {} credential(s): {} used after the leak ({} from new sources), {} not used, {} inactive/deleted, {} with no leak time; {} events read",
            s.credentials,
            s.used_after_leak,
            s.compromised,
            s.not_used,
            s.inactive_or_deleted,
            s.leak_time_unknown,
            s.events
        );
    }
    crate::cmd_store::record_exposure_run(
        &args.store,
        &args.cloudtrail,
        &outcome.records,
        args.quiet,
    )?;
    let named = unreadable.iter().any(|u| {
        args.cloudtrail
            .iter()
            .any(|p| p.display().to_string() == *u)
    });
    if named {
        eprintln!(
            "error: log input(s) could not be read, the result is incomplete: {}",
            unreadable.join(", ")
        );
        return Ok(crate::ExitStatus::Error);
    }
    let used = outcome.records.iter().any(|r| {
        r.used_after_leak == Some(true)
            || matches!(r.verdict, Verdict::Compromised | Verdict::KnownSources)
    });
    Ok(if used {
        crate::ExitStatus::Findings
    } else {
        crate::ExitStatus::Clean
    })
}

#[cfg(feature = "detect-s3")]
fn s3_logs(targets: &[PathBuf]) -> anyhow::Result<Logs> {
    use keytrail_collect::s3logs::S3Logs;
    let targets: Vec<String> = targets.iter().map(|p| p.display().to_string()).collect();
    let s3 = S3Logs::connect().map_err(anyhow::Error::msg)?;
    let listing = s3.list(&targets, keytrail_detect::engine::TimeRange::default());
    for d in &listing.diagnostics {
        eprintln!("warning: {d}");
    }
    if listing.diagnostics.iter().any(|d| d.is_error) {
        bail!("CloudTrail on S3 could not be listed");
    }
    Ok(Logs::Objects(listing.objects, s3.fetcher()))
}

#[cfg(not(feature = "detect-s3"))]
fn s3_logs(_: &[PathBuf]) -> anyhow::Result<Logs> {
    bail!("this keytrail was built without S3 support (cargo feature `detect-s3`)")
}

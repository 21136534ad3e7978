//! `keytrail detect`: read CloudTrail logs (files, S3-style directory trees or stdin),
//! run keytrail's playbook and behavioural detectors, the embedded SigmaHQ AWS rules
//! and any Sigma rules given, write
//! the alerts (human summary, JSONL or OCSF) and choose the exit code
//! (0 = no alerts, 1 = alerts, 2 = error). Diagnostics go to stderr with counts.
//!
//! Self-contained: it owns its clap arguments ([`DetectArgs`]) and returns the exit
//! code as an integer, so wiring it needs one enum variant and one match arm.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use keytrail_detect::engine::{EngineBuilder, Progress, Stats, TimeRange};
use keytrail_detect::{Alert, AlertSink};
use keytrail_report::detect as output;
use keytrail_report::lines::{Framing, RecordWriter};
use keytrail_report::ocsf;
use keytrail_session::detect::LogInput;

/// Output format of `keytrail detect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DetectFormat {
    /// A summary grouped by identity, worst first.
    Human,
    /// One alert per line as JSON (fields documented in crates/keytrail-detect/README.md),
    /// written as alerts close.
    Jsonl,
    /// A JSON array of OCSF 1.3 Detection Findings (class_uid 2004), written as
    /// alerts close.
    Ocsf,
}

/// The flags of `keytrail detect` that shape its engine; `keytrail submit
/// detect` takes the same and hands them to the workers.
#[derive(Debug, Clone, Args)]
pub struct EngineArgs {
    /// Look only at events at or after this time: an RFC 3339 time or a date (its
    /// start, UTC). Files whose delivery time (in their name) is before it are not
    /// read; on S3 their day folders are not even listed.
    /// Example: `--since 2024-03-01` or `--since 2024-03-01T12:00:00Z`
    #[arg(long, value_name = "TIME", value_parser = parse_since)]
    pub since: Option<i64>,

    /// Look only at events at or before this time: an RFC 3339 time or a date (its
    /// end, UTC). Files delivered more than an hour after it are not read.
    /// Example: `--until 2024-03-07`
    #[arg(long, value_name = "TIME", value_parser = parse_until)]
    pub until: Option<i64>,

    /// More Sigma rules: a directory or file, repeatable. keytrail's playbook and
    /// behavioural detectors and the SigmaHQ cloud rules embedded in keytrail always run
    /// (SigmaHQ/sigma rules/cloud/{aws,azure,gcp,m365}, Detection Rule License 1.1: each alert names
    /// the rule's author), shaped by a default profile that turns off or lowers the
    /// noisiest (see `crates/keytrail-rules/data/sigma-profile.yml`). A rule given
    /// here with the id of an embedded rule replaces it.
    /// Example: `--sigma my-rules/ --sigma sigma/rules/cloud/aws`
    #[arg(long = "sigma", value_name = "DIR")]
    pub sigma: Vec<PathBuf>,

    /// Do not run the embedded SigmaHQ rules (only `--sigma` rules, if any).
    /// Example: `--no-default-sigma --sigma my-rules/`
    #[arg(long)]
    pub no_default_sigma: bool,

    /// IP-intelligence directory or file, repeatable, instead of the cache that
    /// `keytrail intel update` fills (used when this is not given). Files are
    /// recognised by content: MMDB country or ASN databases, `start,end,country` and
    /// `start,end,asn,org` CSV ranges (plain or gzip), and lists of addresses, CIDRs
    /// or ASNs whose name says `tor`, `vpn` or `datacenter`; other files are reported.
    /// Without IP intelligence the country, ASN, VPN and Tor detectors are off.
    /// Example: `--ipintel /var/lib/keytrail/ipintel`
    #[arg(long, value_name = "DIR")]
    pub ipintel: Vec<PathBuf>,

    /// Owners file declaring expected usage per identity (regions, networks, hours,
    /// services), as written by `keytrail inventory` (`keytrail.owners.yaml`).
    /// Example: `--owners keytrail.owners.yaml`
    #[arg(long, value_name = "FILE")]
    pub owners: Option<PathBuf>,

    /// Days at the start of each identity's history that only build its baseline
    /// (behavioural detectors stay quiet; playbook detectors still fire).
    /// Example: `--learning-days 14` (0 disables learning)
    #[arg(long, value_name = "N", default_value_t = 7)]
    pub learning_days: u32,

    /// Raise only alerts at least this severe (info, low, medium, high, critical).
    /// Example: `--min-severity medium`
    #[arg(long, value_name = "LEVEL", default_value = "info")]
    pub min_severity: keytrail_types::Severity,

    /// Raise no alert from rules whose id matches GLOB (repeatable; `*` and `?`
    /// wildcards; playbook ids look like `keytrail.aws.…`, Sigma rule ids are their
    /// UUIDs; `keytrail detect --format jsonl` shows each alert's `rule_id`).
    /// Example: `--exclude-rule 'keytrail.aws.behaviour.unusual-hour'`
    #[arg(long = "exclude-rule", value_name = "GLOB")]
    pub exclude_rules: Vec<String>,

    /// Raise every weak signal on its own (an odd hour, a new region, network,
    /// country or bucket, a read spike). By default they are raised only in
    /// combination: two kinds within a day for one identity make one incident alert,
    /// and weak signals next to a strong alert of the same identity are folded into it.
    /// Example: `keytrail detect --all-signals AWSLogs/`
    #[arg(long)]
    pub all_signals: bool,
}

/// Arguments of `keytrail detect`.
#[derive(Debug, Clone, Args)]
pub struct DetectArgs {
    /// Audit-log files or directories, the format sniffed per file: CloudTrail (S3
    /// layout `AWSLogs/<account>/CloudTrail/…`, gzip or plain, `{"Records":[…]}`,
    /// JSON arrays, NDJSON, `aws cloudtrail lookup-events` output, CloudWatch Logs
    /// exports, EventBridge envelopes or CSV such as Athena query results), Google
    /// Cloud audit logs (`gcloud logging read`, sinks, Pub/Sub), Entra ID sign-in
    /// and audit logs, the Microsoft 365 unified audit log and the Azure Activity
    /// log (Graph, Management Activity API, Purview CSV, diagnostic and Log
    /// Analytics exports; see docs/detect-clouds.md); `-` reads stdin; `s3://BUCKET/PREFIX` reads
    /// the trail where CloudTrail delivers it (the AWS credentials and region of the
    /// usual chain, `AWS_PROFILE`, `AWS_ENDPOINT_URL`): the account, region and date
    /// folders are listed, not the whole bucket, and `--since`/`--until` list only
    /// their days. Local paths and `s3://` cannot be mixed in one run.
    /// Examples: `keytrail detect AWSLogs/`,
    /// `keytrail detect s3://my-trail/AWSLogs/o-abc123/ --since 2024-03-01`
    #[arg(value_name = "PATH", required = true)]
    pub paths: Vec<PathBuf>,

    /// The engine: time range, rules, IP intelligence, owners, learning and
    /// alert filters (shared with `keytrail submit detect`).
    #[command(flatten)]
    pub engine: EngineArgs,

    /// Directory where per-identity baselines are loaded from and saved to, so that
    /// daily runs continue where the last one stopped.
    /// Example: `--state .keytrail-state`
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,

    /// Output format. Example: `--format jsonl`
    #[arg(long, value_enum, default_value_t = DetectFormat::Human)]
    pub format: DetectFormat,

    /// Write alerts to FILE instead of stdout. Example: `--output alerts.jsonl`
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Exit with code 2 when any file inside a directory could not be opened (a path
    /// named on the command line that cannot be read always exits 2).
    /// Example: `keytrail detect --fail-on-error AWSLogs/`
    #[arg(long)]
    pub fail_on_error: bool,

    /// Print nothing on stderr except errors: no progress, warnings or summary.
    /// Example: `keytrail detect -q --format jsonl AWSLogs/ > alerts.jsonl`
    #[arg(long, short)]
    pub quiet: bool,

    /// Threads; 0 (the default) picks one per CPU. With more than one, worker threads
    /// read, parse and match Sigma rules on the next files ahead of the one engine;
    /// the alerts are the same for every thread count. Stdin is always read by one
    /// thread. Example: `--threads 1`
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub threads: usize,

    /// The store (`--db`, `--target`): alerts recorded under their own kind.
    #[command(flatten, next_help_heading = "Store")]
    pub store: crate::cmd_store::RecordArgs,
}

/// Milliseconds of an RFC 3339 time, or of the start (`end` false) or the last
/// millisecond (`end` true) of a `YYYY-MM-DD` day.
fn parse_time(s: &str, end: bool) -> Result<i64, String> {
    use keytrail_detect::time::parse_rfc3339_ms;
    if let Some(t) = parse_rfc3339_ms(s) {
        return Ok(t);
    }
    match parse_rfc3339_ms(&format!("{}T00:00:00Z", s.trim())) {
        Some(t) if s.trim().len() == 10 => Ok(if end { t + 86_400_000 - 1 } else { t }),
        _ => Err(format!(
            "`{s}` is not a date (2024-03-01) or an RFC 3339 time (2024-03-01T12:00:00Z)"
        )),
    }
}

fn parse_since(s: &str) -> Result<i64, String> {
    parse_time(s, false)
}

fn parse_until(s: &str) -> Result<i64, String> {
    parse_time(s, true)
}

/// Whether a PATH argument is an `s3://` URI.
fn is_s3(p: &Path) -> bool {
    p.to_str().is_some_and(|s| s.starts_with("s3://"))
}

/// Runs `keytrail detect`; returns the exit code (0 no alerts, 1 alerts).
/// Errors (bad arguments, unreadable inputs, unwritable output) map to exit code 2.
/// The engine of `args` (time range, learning period, rules, filters, IP
/// intelligence, owners), and where its IP intelligence comes from; a
/// distributed run's workers build theirs from the same flags.
pub(crate) fn engine_builder(args: &EngineArgs) -> anyhow::Result<(EngineBuilder, String)> {
    let range = TimeRange {
        since_ms: args.since.unwrap_or(i64::MIN),
        until_ms: args.until.unwrap_or(i64::MAX),
    };
    let mut builder = EngineBuilder::new()
        .time_range(range)
        .learning_period_ms(i64::from(args.learning_days) * 86_400_000)
        .builtin_sigma(!args.no_default_sigma)
        .combine_weak_signals(!args.all_signals)
        .min_severity(args.min_severity)
        .exclude_rules(&args.exclude_rules)
        .map_err(anyhow::Error::msg)?;
    for d in &args.sigma {
        builder = builder.sigma_rules(d);
    }
    // The cache `keytrail intel update` fills, unless --ipintel says otherwise.
    let intel_from = if args.ipintel.is_empty() {
        match crate::cmd_intel::cache_dir(None).filter(|d| d.is_dir()) {
            Some(cache) => {
                builder = builder.ipintel(&cache);
                format!("cache {}", cache.display())
            }
            None => String::new(),
        }
    } else {
        for d in &args.ipintel {
            builder = builder.ipintel(d);
        }
        "--ipintel".to_string()
    };
    if let Some(o) = &args.owners {
        builder = builder.owners_file(o);
    }
    Ok((builder, intel_from))
}

pub fn run(args: &DetectArgs) -> anyhow::Result<i32> {
    let stdin = args.paths.iter().any(|p| p.as_os_str() == "-");
    if stdin && args.paths.len() > 1 {
        bail!("`-` (stdin) cannot be combined with other paths");
    }
    let s3 = args.paths.iter().any(|p| is_s3(p));
    if s3 && !args.paths.iter().all(|p| is_s3(p)) {
        bail!("`s3://` inputs cannot be combined with local paths in one run");
    }
    if s3 && !cfg!(feature = "detect-s3") {
        bail!(
            "this keytrail was built without S3 support: rebuild with the cargo feature `detect-s3` (cargo install keytrail-cli --features detect-s3)"
        );
    }
    if let (Some(a), Some(b)) = (args.engine.since, args.engine.until)
        && a > b
    {
        bail!("--since is after --until");
    }
    for p in &args.paths {
        if p.as_os_str() != "-" && !is_s3(p) && !p.exists() {
            bail!("input `{}` does not exist", p.display());
        }
    }
    for d in args.engine.sigma.iter().chain(&args.engine.ipintel) {
        if !d.exists() {
            bail!("`{}` does not exist", d.display());
        }
    }
    if let Some(o) = &args.engine.owners
        && !o.is_file()
    {
        bail!("owners file `{}` does not exist", o.display());
    }

    let range = TimeRange {
        since_ms: args.engine.since.unwrap_or(i64::MIN),
        until_ms: args.engine.until.unwrap_or(i64::MAX),
    };
    let (mut builder, intel_from) = engine_builder(&args.engine)?;
    if let Some(s) = &args.state {
        std::fs::create_dir_all(s)
            .with_context(|| format!("cannot create state directory `{}`", s.display()))?;
        builder = builder.state_dir(s);
    }

    let progress = Arc::new(Progress::default());
    builder = builder.progress(progress.clone());

    let (shared, load_diags) = builder.build_shared();
    let mut load_errors = 0u64;
    // Built-in rules for logs keytrail does not read are the same on every
    // run: one line says so, not one per rule. The user's own rules are
    // named one by one.
    let mut builtin_skipped = 0usize;
    for d in &load_diags {
        if d.is_error {
            load_errors += 1;
        }
        if !d.is_error && d.kind == "rule_skipped" && d.subject.starts_with("builtin:") {
            builtin_skipped += 1;
            continue;
        }
        if !args.quiet {
            eprintln!("warning: {}: {}: {}", d.subject, d.kind, d.message);
        }
    }
    if builtin_skipped > 0 && !args.quiet {
        eprintln!(
            "note: {builtin_skipped} built-in Sigma rule(s) not run: they are for logs keytrail does not read"
        );
    }
    if !args.engine.sigma.is_empty() && shared.sigma.len() <= shared.sigma_builtin.loaded {
        bail!("no Sigma rule could be loaded from the --sigma paths");
    }
    let content = content_lines(&shared, &intel_from);

    let threads = match crate::threads::clamp(args.threads, false) {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    // JSONL and OCSF are written as alerts close, so memory does not grow with the
    // alerts; the human summary groups them by identity once every alert is known.
    let stream = match args.format {
        DetectFormat::Jsonl | DetectFormat::Ocsf => {
            Some(AlertStream::open(args.output.as_deref(), args.format)?)
        }
        DetectFormat::Human => None,
    };
    // Progress on a terminal (stderr), silent when piped: events and alerts so far.
    let ticker = crate::term::Ticker::start_with(!args.quiet, move || {
        use std::sync::atomic::Ordering::Relaxed;
        format!(
            "detect: {} events, {} alerts",
            progress.events.load(Relaxed),
            progress.alerts.load(Relaxed)
        )
    });
    // With a store, streamed alerts are also kept to be recorded at the end.
    let kept: Arc<Mutex<Vec<Alert>>> = Arc::new(Mutex::new(Vec::new()));
    let sink = stream.as_ref().map(|s| -> Box<dyn AlertSink> {
        if args.store.db.is_some() {
            let (mut out, kept) = (s.clone(), kept.clone());
            Box::new(keytrail_detect::alert::FnSink(move |a: Alert| {
                kept.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(a.clone());
                out.alert(a);
            }))
        } else {
            Box::new(s.clone())
        }
    });
    let (input, listed) = if stdin {
        let input = LogInput::Stream {
            name: "<stdin>".to_string(),
            reader: Box::new(io::stdin()),
        };
        (input, None)
    } else if s3 {
        let (input, listed) = s3_input(args, range)?;
        (input, Some(listed))
    } else {
        // Files and directory trees, merged in event-time order; one thread or more.
        (LogInput::Paths(args.paths.clone()), None)
    };
    let (alerts, stats) = keytrail_session::detect::run(&builder, shared, input, threads, sink);
    if let Some(listed) = listed
        && !args.quiet
    {
        // An object that could not be fetched is not counted as read.
        let unreadable = stats.unreadable_files.len() as u64;
        let read = stats.files_read.saturating_sub(unreadable);
        if unreadable > 0 {
            eprintln!("{listed}; {read} object(s) read, {unreadable} unreadable");
        } else {
            eprintln!("{listed}; {read} object(s) read");
        }
    }

    ticker.finish();
    let emitted = match &stream {
        Some(s) => s.finish()?,
        None => {
            write_alerts(args, &alerts)?;
            alerts.len() as u64
        }
    };
    if args.store.db.is_some() {
        let kept = std::mem::take(&mut *kept.lock().unwrap_or_else(|e| e.into_inner()));
        let all = if stream.is_some() { &kept } else { &alerts };
        crate::cmd_store::record_alerts_run(&args.store, &args.paths, all, args.quiet)?;
    }
    if !args.quiet {
        report_diagnostics(&stats, load_errors, emitted);
        for line in &content {
            eprintln!("{line}");
        }
    }
    // A CI gate never passes on logs it did not read: a named file that could not be
    // read is an error, and so is any unreadable file with --fail-on-error.
    let named: Vec<String> = args.paths.iter().map(|p| p.display().to_string()).collect();
    let named = !keytrail_session::detect::failed_targets(&stats, &named).is_empty();
    if named || (args.fail_on_error && !stats.unreadable_files.is_empty()) {
        eprintln!(
            "error: {} input(s) could not be read, the result is incomplete: {}",
            stats.unreadable_files.len(),
            stats
                .unreadable_files
                .iter()
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        );
        return Ok(2);
    }
    Ok(if emitted == 0 { 0 } else { 1 })
}

/// Lists the `s3://` targets: the input, and the listing's line for stderr. A target
/// that cannot be listed is an unreadable input (the run exits 2).
#[cfg(feature = "detect-s3")]
fn s3_input(args: &DetectArgs, range: TimeRange) -> anyhow::Result<(LogInput, String)> {
    use keytrail_collect::s3logs::S3Logs;
    let targets: Vec<String> = args.paths.iter().map(|p| p.display().to_string()).collect();
    let s3 = S3Logs::connect().map_err(anyhow::Error::msg)?;
    let listing = s3.list(&targets, range);
    let bytes: u64 = listing.objects.iter().map(|o| o.size).sum();
    let line = format!(
        "s3: {} object(s) listed ({bytes} bytes) in {} list request(s), {} date folder(s) outside --since/--until not listed",
        listing.objects.len(),
        listing.requests,
        listing.pruned
    );
    let input = LogInput::Objects {
        objects: listing.objects,
        fetch: s3.fetcher(),
        diagnostics: listing.diagnostics,
    };
    Ok((input, line))
}

#[cfg(not(feature = "detect-s3"))]
fn s3_input(_: &DetectArgs, _: TimeRange) -> anyhow::Result<(LogInput, String)> {
    bail!("this keytrail was built without S3 support (cargo feature `detect-s3`)")
}

/// What detection content the run used, for the end of the report: the Sigma rules
/// (embedded and from `--sigma`) and the IP intelligence (which, from where, how
/// old), with a warning naming the detectors that are off for want of it.
fn content_lines(shared: &keytrail_detect::engine::Shared, intel_from: &str) -> Vec<String> {
    let b = &shared.sigma_builtin;
    let from_disk = shared.sigma.len().saturating_sub(b.loaded);
    let mut sigma = if b.loaded + b.off + b.replaced > 0 {
        format!(
            "sigma: {} embedded SigmaHQ cloud rules (AWS, Azure and Entra ID, Google Cloud, Microsoft 365; Detection Rule License 1.1; default profile: {} off, {} at another level",
            b.loaded, b.off, b.relevelled
        )
    } else {
        "sigma: embedded SigmaHQ rules off (--no-default-sigma)".to_string()
    };
    if b.replaced > 0 {
        sigma.push_str(&format!("; {} replaced from --sigma", b.replaced));
    }
    if b.loaded + b.off + b.replaced > 0 {
        sigma.push(')');
    }
    sigma.push_str(&format!(", {from_disk} from --sigma"));
    let mut lines = vec![sigma];
    lines.extend(intel_lines(&shared.intel, intel_from));
    lines
}

/// The IP-intelligence part of [`content_lines`].
fn intel_lines(intel: &keytrail_detect::ipintel::IpIntel, from: &str) -> Vec<String> {
    use crate::cmd_intel::{STALE_DAYS, age, age_days, day};
    let groups = [
        ("country", "new country, impossible travel"),
        ("ASN", "new ASN, residential versus hosting networks"),
        ("VPN", "VPN use"),
        ("datacenter", "hosting ranges beyond the big clouds' ASNs"),
        ("Tor exits", "Tor use"),
    ];
    let mut have = Vec::new();
    let mut missing = Vec::new();
    let mut stale = Vec::new();
    for (name, detectors) in groups {
        let files: Vec<_> = intel
            .files()
            .iter()
            .filter(|f| f.kind.describe() == name)
            .collect();
        if files.is_empty() {
            missing.push((name, detectors));
            continue;
        }
        let mut names: Vec<String> = files
            .iter()
            .filter_map(|f| f.path.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        names.dedup();
        match files.iter().filter_map(|f| f.date).min() {
            Some(oldest) => {
                have.push(format!(
                    "{name} ({}, data of {}, {})",
                    names.join(", "),
                    day(oldest),
                    age(oldest)
                ));
                if age_days(oldest) > STALE_DAYS {
                    stale.push(format!("{name} ({})", age(oldest)));
                }
            }
            None => have.push(format!("{name} ({})", names.join(", "))),
        }
    }
    let mut lines = Vec::new();
    if have.is_empty() {
        lines.push(
            "warning: no IP intelligence, so the geolocation, ASN, VPN and Tor detectors are off (new country, impossible travel, new ASN, residential versus hosting networks, anonymising networks): run `keytrail intel update` (or pass --ipintel DIR)"
                .to_string(),
        );
        return lines;
    }
    lines.push(format!("ipintel ({from}): {}", have.join("; ")));
    if !missing.is_empty() {
        let names: Vec<&str> = missing.iter().map(|m| m.0).collect();
        let detectors: Vec<&str> = missing.iter().map(|m| m.1).collect();
        lines.push(format!(
            "warning: no {} data, so these detectors are off: {}; run `keytrail intel update`",
            names.join(", "),
            detectors.join("; ")
        ));
    }
    if !stale.is_empty() {
        lines.push(format!(
            "warning: IP intelligence older than {STALE_DAYS} days: {}; run `keytrail intel update`",
            stale.join(", ")
        ));
    }
    lines
}

/// Machine output (JSONL, or the OCSF array) written as alerts close: shared between
/// the engine's sink and the command, which ends and flushes it and reports the first
/// write error at the end.
#[derive(Clone)]
struct AlertStream(Arc<Mutex<StreamState>>);

struct StreamState {
    out: RecordWriter<Box<dyn Write + Send>>,
    /// JSONL or OCSF.
    format: DetectFormat,
    /// Where the output goes, for error messages.
    name: Option<PathBuf>,
    error: Option<io::Error>,
}

impl AlertStream {
    fn open(path: Option<&Path>, format: DetectFormat) -> anyhow::Result<Self> {
        let out: Box<dyn Write + Send> = match path {
            Some(p) => Box::new(io::BufWriter::new(
                std::fs::File::create(p)
                    .with_context(|| format!("cannot create `{}`", p.display()))?,
            )),
            None => Box::new(io::BufWriter::new(io::stdout())),
        };
        let framing = match format {
            DetectFormat::Ocsf => Framing::Array,
            _ => Framing::Lines,
        };
        Ok(AlertStream(Arc::new(Mutex::new(StreamState {
            out: RecordWriter::new(out, framing),
            format,
            name: path.map(Path::to_path_buf),
            error: None,
        }))))
    }

    /// Ends the output (closes the OCSF array) and flushes it; returns the number of
    /// alerts written or the first error.
    fn finish(&self) -> anyhow::Result<u64> {
        let mut st = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let flushed = match st.error.take() {
            Some(e) => Err(e),
            None => st.out.finish(),
        };
        let context = match &st.name {
            Some(p) => format!("cannot write `{}`", p.display()),
            None => "cannot write the report".to_string(),
        };
        flushed.context(context)
    }
}

impl AlertSink for AlertStream {
    fn alert(&mut self, alert: Alert) {
        let mut st = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if st.error.is_some() {
            return;
        }
        let st = &mut *st;
        let res = match st.format {
            DetectFormat::Ocsf => st.out.write(&ocsf::detection_finding(&alert)),
            _ => st.out.write(&alert),
        };
        if let Err(e) = res {
            st.error = Some(e);
        }
    }
}

fn write_alerts(args: &DetectArgs, alerts: &[Alert]) -> anyhow::Result<()> {
    let write = |w: &mut dyn Write| -> io::Result<()> {
        match args.format {
            DetectFormat::Jsonl => output::write_jsonl(w, alerts)?,
            DetectFormat::Ocsf => output::write_ocsf(w, alerts)?,
            DetectFormat::Human => {
                if !alerts.is_empty() || args.output.is_some() {
                    w.write_all(output::summary(alerts).as_bytes())?;
                }
            }
        }
        w.flush()
    };
    crate::term::write_output(args.output.as_deref(), write)?;
    Ok(())
}

fn report_diagnostics(stats: &Stats, load_errors: u64, alerts: u64) {
    for d in &stats.diagnostics {
        let at = d.line.map(|l| format!(":{l}")).unwrap_or_default();
        eprintln!("warning: {}{at}: {}: {}", d.subject, d.kind, d.message);
    }
    let shown = stats.diagnostics.len() as u64;
    let total = stats.skipped_records + stats.other_diagnostics;
    if total > shown {
        eprintln!("warning: {} more diagnostics not shown", total - shown);
    }
    if stats.skipped_records > 0 {
        eprintln!(
            "skipped {} record(s) in {} file(s)",
            stats.skipped_records,
            stats.skipped_by_file.len()
        );
        for (file, n) in &stats.skipped_by_file {
            eprintln!("  {n:>8}  {file}");
        }
    }
    eprintln!(
        "detect: {} events, {} identities, {} alert(s); {} skipped records, {} other diagnostics, {} invalid IPs, {} out-of-order events, {} rule-load problems",
        stats.events,
        stats.identities,
        alerts,
        stats.skipped_records,
        stats.other_diagnostics,
        stats.invalid_ips,
        stats.out_of_order,
        load_errors
    );
    if stats.outside_range + stats.files_outside_range > 0 {
        eprintln!(
            "--since/--until: {} event(s) and {} file(s) outside the range left out",
            stats.outside_range, stats.files_outside_range
        );
    }
    if stats.files_already_read + stats.files_too_old + stats.repeated_alerts > 0 {
        eprintln!(
            "state: {} file(s) already read and {} older than the state's memory skipped; {} alert(s) raised by an earlier run not repeated",
            stats.files_already_read, stats.files_too_old, stats.repeated_alerts
        );
    }
    if stats.weak_signals_alone + stats.weak_signals_folded > 0 {
        eprintln!(
            "weak signals: {} alone not raised, {} folded into an incident or a stronger alert of the same identity (--all-signals shows each)",
            stats.weak_signals_alone, stats.weak_signals_folded
        );
    }
    if stats.filtered_alerts > 0 {
        eprintln!(
            "{} alert(s) left out by --min-severity/--exclude-rule",
            stats.filtered_alerts
        );
    }
    if !stats.alerts_by_rule.is_empty() {
        eprintln!("alerts by rule:");
        let mut by: Vec<(&String, &u64)> = stats.alerts_by_rule.iter().collect();
        by.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        for (rule, n) in by {
            eprintln!("  {n:>8}  {rule}");
        }
    }
}

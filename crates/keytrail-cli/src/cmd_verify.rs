//! Verification glue: the `--verify`/`--analyze` flags shared by `scan`
//! and `keytrail verify FINDINGS`, the post-scan step that hands findings
//! to `keytrail-verify`, the `--only-live` filter and the `--fail-on` exit
//! policy. All verification logic lives in `keytrail-verify`.

use crate::ExitStatus;
use crate::args::ScanFormatArg;
use crate::term;
use anyhow::Context;
use clap::Args;
use keytrail_report::{Report, ReportOptions, Summary, write_report};
use keytrail_types::{Finding, VerificationStatus};
use keytrail_verify::{Endpoints, Options, Verifier};
use std::path::PathBuf;
use std::time::Duration;

/// Verification flags (opt-in: nothing is sent anywhere without
/// `--verify`, `--analyze` or `keytrail verify`).
#[derive(Debug, Clone, Args, Default)]
pub struct VerifyArgs {
    /// Ask each finding's provider whether the secret works (live, invalid,
    /// unknown, canary, skipped), once per distinct secret. Opt-in: without
    /// it nothing is sent anywhere.
    ///
    /// Example: `keytrail scan --verify --format json .`
    #[arg(long)]
    pub verify: bool,

    /// Also work out what each live secret can reach (`blast_radius`:
    /// privilege class, scopes, organisations, projects). Implies --verify.
    ///
    /// Example: `keytrail scan --analyze .`
    #[arg(long)]
    pub analyze: bool,

    /// Keep only findings verified live (implies --verify).
    ///
    /// Example: `keytrail scan --only-live --format sarif -o live.sarif .`
    #[arg(long)]
    pub only_live: bool,

    /// Exit with code 1 only when a finding has one of these verification
    /// statuses (comma-separated: live, invalid, unknown, canary, skipped);
    /// otherwise 0. Implies --verify. For CI: fail only on live secrets.
    ///
    /// Example: `--fail-on live` or `--fail-on live,unknown`
    #[arg(long, value_name = "STATUSES", value_delimiter = ',')]
    pub fail_on: Vec<VerificationStatusArg>,

    /// Timeout of each request to a provider, in seconds.
    ///
    /// Example: `--verify-timeout 5`
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub verify_timeout: u64,

    /// Requests in flight at once, over all providers.
    ///
    /// Example: `--verify-concurrency 16`
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub verify_concurrency: usize,

    /// At most this many requests per second to one provider (and at most 4 at once).
    ///
    /// Example: `--verify-rate 5`
    #[arg(long, value_name = "N", default_value_t = 20.0)]
    pub verify_rate: f64,

    /// Keep verification results between runs in FILE (keyed hashes and
    /// results only, never secrets; owner-only permissions).
    ///
    /// Example: `--verify-cache ~/.cache/keytrail/verify.json`
    #[arg(long, value_name = "FILE")]
    pub verify_cache: Option<PathBuf>,

    /// How long a cached result stays valid, in hours.
    ///
    /// Example: `--verify-cache-ttl 1`
    #[arg(long, value_name = "HOURS", default_value_t = 24)]
    pub verify_cache_ttl: u64,

    /// Send verifier ID's requests to URL instead of the provider's public
    /// API (GitHub Enterprise, self-managed GitLab, Vault, Shopify shops).
    /// Also `KEYTRAIL_VERIFY_ENDPOINT_<ID>`; AWS follows `AWS_ENDPOINT_URL`
    /// and profiles. `keytrail verify --list` shows the ids.
    ///
    /// Example: `--verify-endpoint github=https://github.acme.test/api/v3`
    #[arg(long, value_name = "ID=URL")]
    pub verify_endpoint: Vec<String>,

    /// Never run verifier ID (its findings are `skipped`).
    ///
    /// Example: `--verify-disable slack`
    #[arg(long, value_name = "ID")]
    pub verify_disable: Vec<String>,

    /// Treat keys of this AWS account as canaries too (never sent).
    ///
    /// Example: `--canary-account 123456789012`
    #[arg(long, value_name = "ACCOUNT")]
    pub canary_account: Vec<String>,
}

/// A verification status on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum VerificationStatusArg {
    /// The provider accepted the secret.
    Live,
    /// The provider rejected it.
    Invalid,
    /// No answer either way.
    Unknown,
    /// A known honeytoken.
    Canary,
    /// Not checked.
    Skipped,
}

impl From<VerificationStatusArg> for VerificationStatus {
    fn from(s: VerificationStatusArg) -> Self {
        match s {
            VerificationStatusArg::Live => VerificationStatus::Live,
            VerificationStatusArg::Invalid => VerificationStatus::Invalid,
            VerificationStatusArg::Unknown => VerificationStatus::Unknown,
            VerificationStatusArg::Canary => VerificationStatus::Canary,
            VerificationStatusArg::Skipped => VerificationStatus::Skipped,
        }
    }
}

impl VerifyArgs {
    /// Whether any flag asks for verification.
    pub fn wanted(&self) -> bool {
        self.verify || self.analyze || self.only_live || !self.fail_on.is_empty()
    }

    fn options(&self) -> anyhow::Result<Options> {
        let ids: Vec<String> = keytrail_verify::catalogue()?
            .into_iter()
            .map(|(id, ..)| id)
            .collect();
        let mut endpoints =
            Endpoints::from_env(ids.iter().map(String::as_str)).map_err(anyhow::Error::msg)?;
        for e in &self.verify_endpoint {
            let (id, url) = e
                .split_once('=')
                .with_context(|| format!("--verify-endpoint `{e}`: expected ID=URL"))?;
            anyhow::ensure!(
                ids.iter().any(|i| i == id),
                "--verify-endpoint: no verifier `{id}` (see `keytrail verify --list`)"
            );
            endpoints
                .set(id, url)
                .map_err(|m| anyhow::anyhow!("--verify-endpoint {id}: {m}"))?;
        }
        for a in &self.canary_account {
            anyhow::ensure!(
                a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()),
                "--canary-account `{a}`: an AWS account id has 12 digits"
            );
        }
        Ok(Options {
            analyze: self.analyze,
            timeout: Duration::from_secs(self.verify_timeout.max(1)),
            concurrency: self.verify_concurrency.max(1),
            rate_per_second: self.verify_rate,
            endpoints,
            cache: self.verify_cache.clone(),
            cache_ttl: Duration::from_secs(self.verify_cache_ttl * 3600),
            canary_accounts: self.canary_account.clone(),
            disabled: self.verify_disable.clone(),
            ..Options::default()
        })
    }

    /// The exit status for findings: with `--fail-on`, 1 only when a
    /// finding has one of those statuses.
    pub fn exit_for(&self, findings: &[Finding]) -> ExitStatus {
        let hit = if self.fail_on.is_empty() {
            !findings.is_empty()
        } else {
            findings.iter().any(|f| {
                f.verification.as_ref().is_some_and(|v| {
                    self.fail_on
                        .iter()
                        .any(|s| VerificationStatus::from(*s) == v.status)
                })
            })
        };
        if hit {
            ExitStatus::Findings
        } else {
            ExitStatus::Clean
        }
    }
}

/// The post-scan step: verify `findings` in place, drop non-live ones with
/// `--only-live`, print the verification summary on stderr.
pub fn apply(args: &VerifyArgs, findings: &mut Vec<Finding>, quiet: bool) -> anyhow::Result<()> {
    let verifier = Verifier::new(args.options()?)?;
    let stats = verifier.verify(findings);
    verifier.save_cache()?;
    if !quiet {
        let count = |s| stats.by_status.get(&s).copied().unwrap_or(0);
        eprintln!(
            "verified {} findings ({} distinct secrets, {} requests, {} from cache): {} live, {} invalid, {} unknown, {} canary, {} skipped",
            stats.findings,
            stats.distinct,
            stats.requests,
            stats.from_cache,
            count(VerificationStatus::Live),
            count(VerificationStatus::Invalid),
            count(VerificationStatus::Unknown),
            count(VerificationStatus::Canary),
            count(VerificationStatus::Skipped),
        );
    }
    if args.only_live {
        findings.retain(|f| {
            f.verification
                .as_ref()
                .is_some_and(|v| v.status == VerificationStatus::Live)
        });
    }
    Ok(())
}

/// `keytrail verify FINDINGS`.
#[derive(Debug, Args)]
#[command(
    after_help = "Reports hold no secrets, so each finding's secret is re-read from the \
location it names (the file, or the git object) and must match the finding's fingerprint; \
a finding whose source is gone or changed is reported `skipped` with the reason.\n\n\
Exit codes: 0 = nothing to report (or nothing with a --fail-on status), 1 = findings, \
2 = error (an unreadable or malformed FINDINGS file: the message names file, line and column).\n\n\
Examples:\n  keytrail scan --format json -o findings.json . && keytrail verify findings.json\n  \
keytrail verify --analyze --fail-on live findings.jsonl\n  keytrail verify --list"
)]
pub struct VerifyCmdArgs {
    /// A JSON or JSONL report written by `keytrail scan`.
    ///
    /// Example: `keytrail verify findings.json`
    #[arg(value_name = "FINDINGS", required_unless_present = "list")]
    pub findings: Option<PathBuf>,

    /// Directory the report's paths are relative to [default: the working directory].
    ///
    /// Example: `--root /src/app`
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,

    /// List the verifiers (id, provider, endpoint, rules) and exit.
    ///
    /// Example: `keytrail verify --list`
    #[arg(long)]
    pub list: bool,

    /// Output format.
    ///
    /// Example: `--format sarif --output verified.sarif`
    #[arg(long, value_enum, default_value_t = ScanFormatArg::Human)]
    pub format: ScanFormatArg,

    /// Write the report to FILE instead of standard output.
    ///
    /// Example: `--output verified.json`
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Do not print the summary and notes on stderr.
    ///
    /// Example: `keytrail verify -q --fail-on live findings.json`
    #[arg(long, short)]
    pub quiet: bool,

    /// Verification flags.
    #[command(flatten)]
    pub verify: VerifyArgs,

    /// The store (`--db`, `--target`).
    #[command(flatten, next_help_heading = "Store")]
    pub store: crate::cmd_store::RecordArgs,
}

/// Run `keytrail verify`.
pub fn run(args: &VerifyCmdArgs) -> anyhow::Result<ExitStatus> {
    if args.list {
        for (id, provider, rules, base) in keytrail_verify::catalogue()? {
            println!(
                "{id}\t{provider}\t{}\t{}",
                base.as_deref().unwrap_or("(self-hosted: set an endpoint)"),
                rules.join(",")
            );
        }
        return Ok(ExitStatus::Clean);
    }
    let started = std::time::Instant::now();
    let path = args.findings.as_deref().expect("clap requires FINDINGS");
    let read = keytrail_verify::findings_file::read(path).map_err(anyhow::Error::msg)?;
    let root = match &args.root {
        Some(r) => r.clone(),
        None => std::env::current_dir()?,
    };
    let rules = crate::rule_set::load(&[])?;
    let mut recoverer = keytrail_verify::findings_file::Recoverer::new(&root, &rules);
    let mut ready = Vec::new();
    let mut missing = Vec::new();
    for (i, (f, secret)) in read.into_iter().enumerate() {
        let r = recoverer.recover(f, secret);
        match r.missing {
            None => ready.push((i, r.finding)),
            Some(why) => missing.push((i, r.finding, why)),
        }
    }
    let mut findings: Vec<Finding> = ready.iter().map(|(_, f)| f.clone()).collect();
    let mut opts_args = args.verify.clone();
    opts_args.verify = true;
    apply(
        &VerifyArgs {
            only_live: false,
            ..opts_args.clone()
        },
        &mut findings,
        args.quiet,
    )?;
    // Put the findings back in report order, the unrecoverable ones skipped.
    let mut all: Vec<(usize, Finding)> = ready.iter().map(|(i, _)| *i).zip(findings).collect();
    for (i, mut f, why) in missing {
        if !args.quiet {
            eprintln!("note: {} ({}): {why}", f.fingerprint, f.rule_id);
        }
        f.verification = Some(keytrail_types::Verification {
            status: VerificationStatus::Skipped,
            checked_at: keytrail_verify::time::rfc3339(keytrail_verify::time::now_unix()),
            verifier: None,
            detail: Some(why),
            identity: Vec::new(),
        });
        all.push((i, f));
    }
    all.sort_by_key(|(i, _)| *i);
    let mut findings: Vec<Finding> = all.into_iter().map(|(_, f)| f).collect();
    crate::cmd_store::record_report_run(&args.store, "verify", path, &findings, args.quiet)?;
    if args.verify.only_live {
        findings.retain(|f| {
            f.verification
                .as_ref()
                .is_some_and(|v| v.status == VerificationStatus::Live)
        });
    }
    let summary = Summary {
        findings: findings.len() as u64,
        locations: findings.iter().map(|f| f.locations.len() as u64).sum(),
        elapsed_ms: started.elapsed().as_millis() as u64,
        ..Summary::default()
    };
    let metas: Vec<_> = rules.iter().map(keytrail_session::rule_meta).collect();
    let report = Report {
        findings: &findings,
        rules: &metas,
        summary: &summary,
    };
    let opts = ReportOptions {
        color: term::color_for_stdout(args.output.is_some()),
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        automation_id: Some("keytrail-verify/".into()),
        max_locations: Some(5),
        ..ReportOptions::default()
    };
    match term::write_output(args.output.as_deref(), |w| {
        write_report(w, args.format.into(), &report, &opts)
    }) {
        Ok(()) => {}
        Err(e) if term::is_broken_pipe(&e) => {}
        Err(e) => return Err(e),
    }
    let mut policy = args.verify.clone();
    policy.verify = true;
    Ok(policy.exit_for(&findings))
}

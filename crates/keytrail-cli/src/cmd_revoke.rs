//! `keytrail revoke <provider>`: revoke a leaked credential through its
//! provider's API (keytrail-revoke does the work), or print the runbook of
//! a provider without one. Dry run unless `--yes`; every action, dry or
//! real, goes to the audit log. This module maps flags, reads the token
//! (stdin or a named environment variable, never an argument), prints and
//! sets the exit code.
//!
//! Exit codes: 0 = done (or planned, or the token was already invalid, or a
//! runbook printed), 2 = the revocation failed or could not be attempted.

use crate::ExitStatus;
use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use keytrail_revoke::audit::AuditLog;
use keytrail_revoke::token::{self, TokenResult};
use keytrail_revoke::{Mode, runbook};
use keytrail_types::Secret;
use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

/// Output of `revoke` and `rotate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutFormat {
    /// Lines for people.
    Human,
    /// One JSON document (docs/output.md).
    Json,
}

/// Flags shared by `revoke` and `rotate`: acting, auditing, output.
#[derive(Debug, Args)]
pub struct SafetyArgs {
    /// Act. Without it nothing is changed: the exact requests are printed
    /// and logged as planned (dry run).
    ///
    /// Example: `--yes`
    #[arg(long)]
    pub yes: bool,

    /// Append the audit log here instead of `$XDG_STATE_HOME/keytrail/audit.jsonl`
    /// (`~/.local/state/keytrail/audit.jsonl`). Also `KEYTRAIL_AUDIT_LOG`.
    ///
    /// Example: `--audit-log /var/log/keytrail/audit.jsonl`
    #[arg(long, value_name = "FILE", env = "KEYTRAIL_AUDIT_LOG")]
    pub audit_log: Option<PathBuf>,

    /// Output format on stdout.
    ///
    /// Example: `--format json`
    #[arg(long, value_enum, default_value_t = OutFormat::Human)]
    pub format: OutFormat,
}

/// AWS connection flags.
#[derive(Debug, Args)]
pub struct AwsConnArgs {
    /// Named profile from ~/.aws/config (else AWS_PROFILE or the default chain).
    ///
    /// Example: `--profile security-admin`
    #[arg(long, value_name = "PROFILE")]
    pub profile: Option<String>,

    /// Region for Secrets Manager and SSM (IAM and STS are global).
    ///
    /// Example: `--region eu-west-1`
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,

    /// Send every AWS request to URL (an emulator or proxy); AWS_ENDPOINT_URL
    /// is honoured without it.
    ///
    /// Example: `--endpoint-url http://127.0.0.1:5000`
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
}

/// `keytrail revoke`.
#[derive(Debug, Args)]
#[command(
    after_help = "Providers with a revocation API: aws-key (deactivate with your own AWS \
credentials, never with the leaked key), github, gitlab, slack, npm, vault, okta, vercel, \
buildkite, dropbox. Any other provider keytrail detects (`keytrail revoke --list`) prints its \
runbook: where to revoke and what to check afterwards.\n\n\
The token is read from standard input (--token-stdin) or from an environment variable \
(--token-env NAME), never from an argument, which would land in shell history and `ps`.\n\n\
Exit codes: 0 = revoked, planned (dry run), already invalid, or runbook printed; 2 = failed.\n\n\
Examples:\n  keytrail revoke aws-key --access-key-id AKIA...            # dry run\n  \
keytrail revoke aws-key --access-key-id AKIA... --delete --yes\n  \
printf %s \"$LEAKED\" | keytrail revoke github --token-stdin --yes\n  \
keytrail revoke gitlab --token-env LEAKED_TOKEN --base-url https://gitlab.example.com --yes\n  \
keytrail revoke stripe                                         # runbook"
)]
pub struct RevokeArgs {
    /// The provider (`aws-key`, `github`, `gitlab`, …), or any provider
    /// keytrail detects for its runbook.
    ///
    /// Example: `github`
    #[arg(value_name = "PROVIDER", required_unless_present = "list")]
    pub provider: Option<String>,

    /// List the providers: with a revocation API, or with a runbook.
    ///
    /// Example: `keytrail revoke --list`
    #[arg(long)]
    pub list: bool,

    /// aws-key: the access key id to deactivate.
    ///
    /// Example: `--access-key-id AKIAIOSFODNN7EXAMPLE`
    #[arg(long, value_name = "ID")]
    pub access_key_id: Option<String>,

    /// aws-key: its IAM user (checked); found with iam:GetAccessKeyLastUsed
    /// when not given.
    ///
    /// Example: `--user ci-deployer`
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,

    /// aws-key: delete the key after deactivating it (cannot be undone).
    ///
    /// Example: `--delete --yes`
    #[arg(long)]
    pub delete: bool,

    /// Read the token from standard input (one value; surrounding
    /// whitespace ignored).
    ///
    /// Example: `printf %s "$T" | keytrail revoke slack --token-stdin`
    #[arg(long, conflicts_with = "token_env")]
    pub token_stdin: bool,

    /// Read the token from this environment variable.
    ///
    /// Example: `--token-env LEAKED_TOKEN`
    #[arg(long, value_name = "NAME")]
    pub token_env: Option<String>,

    /// The provider's API address when not the public one: GitHub Enterprise
    /// (`https://HOST/api/v3`), a GitLab instance, Vault (else VAULT_ADDR),
    /// an Okta org. https only (http for loopback addresses).
    ///
    /// Example: `--base-url https://gitlab.example.com`
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,

    /// Give up on a token provider after this long (retries included).
    ///
    /// Example: `--timeout 20s`
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub timeout: Duration,

    #[command(flatten)]
    pub safety: SafetyArgs,

    #[command(flatten)]
    pub aws: AwsConnArgs,
}

/// Parses `0`, `90s`, `15m`, `24h`, `7d`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    keytrail_revoke::time::parse_duration(s)
}

/// Opens the audit log (before anything is sent: an action that cannot be
/// audited is not taken).
pub fn open_audit(path: Option<&PathBuf>, command: &str) -> anyhow::Result<AuditLog> {
    let path = match path {
        Some(p) => p.clone(),
        None => keytrail_revoke::audit::default_path()
            .context("no audit log path: set --audit-log, XDG_STATE_HOME or HOME")?,
    };
    AuditLog::open(&path, command)
        .with_context(|| format!("cannot open the audit log `{}`", path.display()))
}

/// Runs `keytrail revoke`.
pub fn run(args: &RevokeArgs) -> anyhow::Result<ExitStatus> {
    if args.list {
        println!("with a revocation API (keytrail revoke <provider> …):");
        println!(
            "  {:<10} AWS access keys (deactivate, optionally delete)",
            "aws-key"
        );
        for p in token::PROVIDERS {
            println!("  {:<10} {}: {}", p.name, p.display, p.kinds);
        }
        println!("with a runbook (keytrail revoke <provider>):");
        for r in runbook::all() {
            println!("  {:<14} {}", r.provider, r.name);
        }
        return Ok(ExitStatus::Clean);
    }
    let name = args.provider.as_deref().unwrap_or_default();
    if name == "aws-key" {
        return aws_key(args);
    }
    if let Some(p) = token::provider(name) {
        return token_revoke(args, p);
    }
    if let Some(rb) = runbook::find(name) {
        print!("{}", rb.render());
        return Ok(ExitStatus::Clean);
    }
    bail!("unknown provider `{name}`: `keytrail revoke --list` lists the providers and runbooks")
}

fn read_token(args: &RevokeArgs) -> anyhow::Result<Secret<String>> {
    let raw = if args.token_stdin {
        let mut s = String::new();
        std::io::stdin()
            .take(64 * 1024)
            .read_to_string(&mut s)
            .context("cannot read the token from standard input")?;
        s
    } else if let Some(var) = &args.token_env {
        std::env::var(var).with_context(|| format!("environment variable `{var}` is not set"))?
    } else {
        bail!(
            "give the token with --token-stdin or --token-env NAME (never as an argument: it would land in shell history and `ps`)"
        )
    };
    let t = raw.trim().to_string();
    if t.is_empty() || t.contains(char::is_whitespace) {
        bail!("the token read is empty or holds whitespace: give exactly one token");
    }
    Ok(Secret::new(t))
}

fn token_revoke(args: &RevokeArgs, p: &'static token::Provider) -> anyhow::Result<ExitStatus> {
    let secret = read_token(args)?;
    let mode = Mode::from_yes(args.safety.yes);
    let mut audit = open_audit(args.safety.audit_log.as_ref(), "revoke")?;
    let plan = match token::plan(p, secret, args.base_url.as_deref()) {
        Ok(plan) => plan,
        Err(e) => {
            audit.record(
                p.name,
                "revoke-token",
                "(not sent)",
                mode,
                keytrail_revoke::audit::Outcome::Failed,
                Some(e.to_string()),
            )?;
            return Err(e.into());
        }
    };
    let report = if mode.is_dry_run() {
        plan.dry_run()
    } else {
        plan.execute(args.timeout)
    };
    let outcome = match report.result {
        TokenResult::Planned => keytrail_revoke::audit::Outcome::Planned,
        TokenResult::Revoked => keytrail_revoke::audit::Outcome::Succeeded,
        TokenResult::AlreadyInvalid => keytrail_revoke::audit::Outcome::Skipped,
        TokenResult::Failed => keytrail_revoke::audit::Outcome::Failed,
    };
    let target = format!("{} (sha256:{})", report.target, report.fingerprint);
    audit
        .record(
            p.name,
            "revoke-token",
            &target,
            mode,
            outcome,
            report.detail.clone(),
        )
        .with_context(|| format!("cannot write the audit log `{}`", audit.path().display()))?;
    match args.safety.format {
        OutFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        OutFormat::Human => {
            let verb = match report.result {
                TokenResult::Planned => "dry run: would send",
                TokenResult::Revoked => "revoked: sent",
                TokenResult::AlreadyInvalid => "already invalid: sent",
                TokenResult::Failed => "FAILED: sent",
            };
            println!(
                "{} token {} (sha256:{})",
                p.display, report.target, report.fingerprint
            );
            for r in &report.requests {
                println!("  {verb} {} {}", r.method, r.url);
            }
            if let Some(d) = &report.detail {
                println!("  {d}");
            }
            if mode.is_dry_run() {
                println!("nothing was sent; add --yes to revoke");
            }
            if report.result != TokenResult::Planned
                && let Some(rb) = runbook::find(p.name)
            {
                println!("afterwards, check:");
                for c in &rb.check_after {
                    println!("  - {c}");
                }
            }
            eprintln!("audit log: {}", audit.path().display());
        }
    }
    Ok(if report.result == TokenResult::Failed {
        ExitStatus::Error
    } else {
        ExitStatus::Clean
    })
}

#[cfg(feature = "revoke-aws")]
fn aws_key(args: &RevokeArgs) -> anyhow::Result<ExitStatus> {
    use keytrail_revoke::aws;
    let key_id = args
        .access_key_id
        .as_deref()
        .context("aws-key needs --access-key-id ID")?;
    if !keytrail_revoke::stored::looks_like_key_id(key_id) {
        bail!("`{key_id}` is not an access key id (AKIA… or ASIA…, 20 characters)");
    }
    if key_id.starts_with("ASIA") {
        bail!(
            "{key_id} is a temporary (STS) key: it cannot be deactivated; revoke the role's sessions (IAM console: Revoke active sessions, or an aws:TokenIssueTime deny policy) and find the credentials that issued it"
        );
    }
    let mode = Mode::from_yes(args.safety.yes);
    let mut audit = open_audit(args.safety.audit_log.as_ref(), "revoke")?;
    let opts = aws::AwsOptions {
        profile: args.aws.profile.clone(),
        endpoint_url: args.aws.endpoint_url.clone(),
        region: args.aws.region.clone(),
    };
    let conn = match aws::Aws::connect(&opts, key_id) {
        Ok(c) => c,
        Err(e) => {
            audit.record(
                "aws",
                "connect",
                key_id,
                mode,
                keytrail_revoke::audit::Outcome::Failed,
                Some(e.message.clone()),
            )?;
            return Err(e.into());
        }
    };
    let report = aws::revoke_access_key(
        &conn,
        key_id,
        args.user.as_deref(),
        args.delete,
        mode,
        &mut audit,
    )?;
    match args.safety.format {
        OutFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        OutFormat::Human => {
            println!(
                "AWS access key {} of user {} (account {}), as {}",
                report.target, report.user, report.account, report.operator
            );
            for a in &report.actions {
                let what = match a.result {
                    keytrail_revoke::audit::Outcome::Planned => "would",
                    keytrail_revoke::audit::Outcome::Succeeded => "done:",
                    keytrail_revoke::audit::Outcome::Failed => "FAILED:",
                    keytrail_revoke::audit::Outcome::Skipped => "skipped:",
                };
                let detail = a
                    .detail
                    .as_deref()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default();
                println!("  {what} {} {}{detail}", a.action, a.target);
            }
            if mode.is_dry_run() {
                println!("nothing was changed; add --yes to act");
            } else if let Some(rb) = runbook::find("aws") {
                println!("afterwards, check:");
                for c in &rb.check_after {
                    println!("  - {c}");
                }
            }
            eprintln!("audit log: {}", audit.path().display());
        }
    }
    Ok(ExitStatus::Clean)
}

#[cfg(not(feature = "revoke-aws"))]
fn aws_key(_args: &RevokeArgs) -> anyhow::Result<ExitStatus> {
    bail!(
        "this keytrail was built without the `revoke-aws` feature; rebuild with `--features revoke-aws`, or follow `keytrail revoke aws`'s runbook"
    )
}

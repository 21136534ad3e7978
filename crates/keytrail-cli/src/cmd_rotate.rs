//! `keytrail rotate aws-key`: replace an AWS access key in the secret store
//! that holds it, verify the new key, deactivate and (after a grace period)
//! delete the old one, rolling back on failure and resumable from its
//! journal (keytrail-revoke does the work; this module maps flags, prints
//! and sets the exit code).
//!
//! Exit codes: 0 = rotated, planned (dry run), or waiting for the grace
//! period; 2 = failed (rolled back unless it says otherwise), bad input, or
//! a secret store holding a format keytrail will not rewrite.

use crate::ExitStatus;
use crate::cmd_revoke::{AwsConnArgs, SafetyArgs, parse_duration};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

/// `keytrail rotate`.
#[derive(Debug, Subcommand)]
pub enum RotateCommand {
    /// Rotate an IAM user's access key where it is stored (Secrets Manager or SSM).
    AwsKey(RotateAwsArgs),
}

/// `keytrail rotate aws-key`.
#[derive(Debug, Args)]
#[command(
    after_help = "Steps, each recorded in a journal: read the stored value and recognise \
its format (JSON with aws_access_key_id/aws_secret_access_key or a variant, or name=value \
lines); create a new key for the same user; write it into the store in the same format; wait \
until STS accepts it; deactivate the old key and confirm STS refuses it; delete it after the \
grace period. A failed step rolls back (new key deleted, previous value written back). An \
interrupted rotation continues with --resume; with a grace period, a later --resume deletes \
the old key once it has passed.\n\n\
Credentials: your own (environment, profile, SSO, instance role; AWS_ENDPOINT_URL honoured), \
never the key being rotated.\n\n\
Exit codes: 0 = rotated, planned, or waiting for the grace period; 2 = failed.\n\n\
Examples:\n  keytrail rotate aws-key --access-key-id AKIA... --secret-id prod/app/aws   # dry run\n  \
keytrail rotate aws-key --access-key-id AKIA... --ssm-parameter /app/aws --grace 0 --yes\n  \
keytrail rotate aws-key --access-key-id AKIA... --secret-id prod/app/aws --grace 24h --yes\n  \
keytrail rotate aws-key --access-key-id AKIA... --resume --yes            # next day: delete"
)]
pub struct RotateAwsArgs {
    /// The access key id to replace.
    ///
    /// Example: `--access-key-id AKIAIOSFODNN7EXAMPLE`
    #[arg(long, value_name = "ID")]
    pub access_key_id: String,

    /// Its IAM user (checked); found with iam:GetAccessKeyLastUsed when not given.
    ///
    /// Example: `--user ci-deployer`
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,

    /// The Secrets Manager secret (name or ARN) holding the key.
    ///
    /// Example: `--secret-id prod/app/aws`
    #[arg(long, value_name = "NAME|ARN", conflicts_with = "ssm_parameter", required_unless_present_any = ["ssm_parameter", "resume"])]
    pub secret_id: Option<String>,

    /// The SSM parameter (SecureString) holding the key.
    ///
    /// Example: `--ssm-parameter /app/aws-credentials`
    #[arg(long, value_name = "NAME")]
    pub ssm_parameter: Option<String>,

    /// Time between deactivating the old key and deleting it (`0` deletes at
    /// once); a later `--resume` deletes it once the time has passed.
    ///
    /// Example: `--grace 24h`
    #[arg(long, value_name = "DURATION", default_value = "0", value_parser = parse_duration)]
    pub grace: Duration,

    /// When the user already has two keys (the AWS limit) and the other one
    /// is inactive, delete it to make room.
    ///
    /// Example: `--delete-inactive-spare`
    #[arg(long)]
    pub delete_inactive_spare: bool,

    /// Continue the rotation of this key recorded in its journal
    /// (interrupted, or waiting for its grace period); `--finish` is the same.
    ///
    /// Example: `keytrail rotate aws-key --access-key-id AKIA... --resume --yes`
    #[arg(long, alias = "finish")]
    pub resume: bool,

    /// Folder of rotation journals (default `$XDG_STATE_HOME/keytrail/rotations`).
    ///
    /// Example: `--journal-dir /var/lib/keytrail/rotations`
    #[arg(long, value_name = "DIR")]
    pub journal_dir: Option<PathBuf>,

    /// How long to wait for STS to accept the new key (IAM is eventually
    /// consistent) and to refuse the old one.
    ///
    /// Example: `--verify-timeout 2m`
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub verify_timeout: Duration,

    #[command(flatten)]
    pub safety: SafetyArgs,

    #[command(flatten)]
    pub aws: AwsConnArgs,
}

/// Runs `keytrail rotate`.
pub fn run(cmd: &RotateCommand) -> anyhow::Result<ExitStatus> {
    match cmd {
        RotateCommand::AwsKey(a) => aws_key(a),
    }
}

#[cfg(feature = "revoke-aws")]
fn aws_key(args: &RotateAwsArgs) -> anyhow::Result<ExitStatus> {
    use crate::cmd_revoke::{OutFormat, open_audit};
    use anyhow::{Context, bail};
    use keytrail_revoke::Mode;
    use keytrail_revoke::audit::Outcome;
    use keytrail_revoke::aws;
    use keytrail_revoke::journal::StoreRef;
    let key_id = args.access_key_id.as_str();
    if !keytrail_revoke::stored::looks_like_key_id(key_id) || !key_id.starts_with("AKIA") {
        bail!("`{key_id}` is not a long-term access key id (AKIA…, 20 characters)");
    }
    let store = match (&args.secret_id, &args.ssm_parameter) {
        (Some(s), _) => StoreRef::SecretsManager {
            secret_id: s.clone(),
        },
        (None, Some(p)) => StoreRef::SsmParameter { name: p.clone() },
        (None, None) => StoreRef::None,
    };
    let journal_dir = match &args.journal_dir {
        Some(d) => d.clone(),
        None => keytrail_revoke::journal::default_dir()
            .context("no journal folder: set --journal-dir, XDG_STATE_HOME or HOME")?,
    };
    let mode = Mode::from_yes(args.safety.yes);
    let mut audit = open_audit(args.safety.audit_log.as_ref(), "rotate")?;
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
                Outcome::Failed,
                Some(e.message.clone()),
            )?;
            return Err(e.into());
        }
    };
    let req = aws::RotateRequest {
        key_id: key_id.to_string(),
        user: args.user.clone(),
        store,
        grace: args.grace,
        delete_inactive_spare: args.delete_inactive_spare,
        journal_dir,
        verify_timeout: args.verify_timeout,
        resume: args.resume,
        mode,
    };
    let report = aws::rotate(&conn, &req, &mut audit)?;
    match args.safety.format {
        OutFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        OutFormat::Human => {
            println!(
                "rotation of AWS access key {} of user {} in {}, as {}",
                report.old_key_id, report.user, report.store, report.operator
            );
            if let Some(f) = &report.format {
                println!("  stored format: {f}");
            }
            for a in &report.actions {
                let what = match a.result {
                    Outcome::Planned => "would",
                    Outcome::Succeeded => "done:",
                    Outcome::Failed => "FAILED:",
                    Outcome::Skipped => "skipped:",
                };
                let detail = a
                    .detail
                    .as_deref()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default();
                println!("  {what} {} {}{detail}", a.action, a.target);
            }
            if let Some(n) = &report.new_key_id {
                println!("  new key: {n}");
            }
            if let Some(ms) = report.time_to_revoke_ms {
                println!(
                    "  time to revoke (start to the old key refused by STS): {:.1} s",
                    ms as f64 / 1000.0
                );
            } else if let Some(ms) = report.deactivated_after_ms {
                println!(
                    "  old key deactivated {:.1} s after the start",
                    ms as f64 / 1000.0
                );
            }
            println!("  state: {}", report.state);
            if mode.is_dry_run() {
                println!("nothing was changed; add --yes to rotate");
            }
            eprintln!("journal: {}", report.journal.display());
            eprintln!("audit log: {}", audit.path().display());
        }
    }
    Ok(ExitStatus::Clean)
}

#[cfg(not(feature = "revoke-aws"))]
fn aws_key(_args: &RotateAwsArgs) -> anyhow::Result<ExitStatus> {
    anyhow::bail!(
        "this keytrail was built without the `revoke-aws` feature; rebuild with `--features revoke-aws`"
    )
}

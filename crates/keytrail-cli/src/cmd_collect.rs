//! `keytrail collect aws`: collects one AWS account with the AWS SDK into
//! the snapshot layout that `keytrail posture --snapshot` reads
//! (keytrail-collect does the work; this module only maps flags and exit
//! codes).
//!
//! Exit codes: 0 = every call succeeded; 1 = partial: some calls failed,
//! the rest of the snapshot is written and `aws/collection-errors.json`
//! lists what is missing (their checks will read "not evaluated"); 2 =
//! nothing could be collected (credentials, endpoint, or an output
//! directory that cannot be written).

use crate::ExitStatus;
use clap::{Args, Subcommand};
use std::path::PathBuf;

/// `keytrail collect`.
#[derive(Debug, Subcommand)]
pub enum CollectCommand {
    /// Collect an AWS account (IAM, credential report, access keys, S3, EC2, EKS, Organizations,
    /// Secrets Manager and SSM metadata).
    Aws(CollectAwsArgs),
    /// Collect Google Cloud projects (IAM policy, service accounts and keys, their last
    /// authentication, GKE clusters, Compute instances).
    Gcp(CollectGcpArgs),
}

/// `keytrail collect gcp`.
#[derive(Debug, Args)]
#[command(
    after_help = "Credentials (application-default, in this order): GOOGLE_OAUTH_ACCESS_TOKEN; \
--credentials or GOOGLE_APPLICATION_CREDENTIALS (a service-account key or the file of \
`gcloud auth application-default login`); gcloud's application_default_credentials.json; \
the Compute Engine metadata server. Read-only: roles/iam.securityReviewer plus \
roles/container.viewer, roles/compute.viewer and roles/policyanalyzer.activityAnalysisViewer \
cover every call.\n\n\
Exit codes: 0 = every call succeeded; 1 = partial: some calls failed, the rest is written \
and gcp/<project>/collection-errors.json lists the failures; 2 = nothing could be collected \
(credentials, every project unreachable, unwritable output).\n\n\
Examples:\n  keytrail collect gcp --project prod-123 --out snap/; [ $? -le 1 ] && keytrail posture --snapshot snap/\n  \
GOOGLE_APPLICATION_CREDENTIALS=auditor.json keytrail collect gcp --project a --project b --out snap/"
)]
pub struct CollectGcpArgs {
    /// Project id to collect; repeatable.
    ///
    /// Example: `--project prod-123 --project staging-456`
    #[arg(long = "project", value_name = "PROJECT_ID", required = true)]
    pub projects: Vec<String>,

    /// Credentials file: a service-account key or an authorized-user file.
    /// Default: GOOGLE_APPLICATION_CREDENTIALS, then gcloud's
    /// application-default credentials.
    ///
    /// Example: `--credentials ~/keys/auditor.json`
    #[arg(long, value_name = "FILE")]
    pub credentials: Option<PathBuf>,

    /// Send every request (and the token request, to URL/token) to URL, an
    /// emulator or proxy, instead of Google.
    ///
    /// Example: `--endpoint-url http://127.0.0.1:8085`
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,

    /// Snapshot directory to write (gcp/<project>/ is created inside it).
    ///
    /// Example: `--out snap/`
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// Print nothing on stderr except errors.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `keytrail collect aws`.
#[derive(Debug, Args)]
#[command(
    after_help = "Credentials and endpoints come from the usual AWS sources \
(environment, AWS_PROFILE or --profile, SSO, web identity, instance roles); \
AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE> are honoured. Read-only: the \
SecurityAudit managed policy covers every call.\n\n\
Exit codes: 0 = every call succeeded; 1 = partial: some calls failed, the \
rest of the snapshot is written and aws/collection-errors.json lists the \
failures (checks that need them read \"not evaluated\"); 2 = nothing could be \
collected (credentials, endpoint, unwritable output).\n\n\
Examples:\n  keytrail collect aws --out snap/; [ $? -le 1 ] && keytrail posture --snapshot snap/\n  \
keytrail collect aws --profile audit --region us-east-1 --region eu-west-1 --out snap/"
)]
pub struct CollectAwsArgs {
    /// Named profile from ~/.aws/config.
    ///
    /// Example: `--profile audit`
    #[arg(long, value_name = "PROFILE")]
    pub profile: Option<String>,

    /// Region to collect EC2 and EKS data from; repeatable. Default: every
    /// region enabled for the account.
    ///
    /// Example: `--region us-east-1 --region eu-west-1`
    #[arg(long = "region", value_name = "REGION")]
    pub regions: Vec<String>,

    /// Send every request to URL (an emulator or proxy) instead of AWS.
    ///
    /// Example: `--endpoint-url http://127.0.0.1:5000`
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,

    /// Snapshot directory to write (aws/ is created inside it).
    ///
    /// Example: `--out snap/`
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// Print nothing on stderr except errors.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Runs `keytrail collect`.
pub fn run(cmd: &CollectCommand) -> anyhow::Result<ExitStatus> {
    match cmd {
        CollectCommand::Aws(args) => aws(args),
        CollectCommand::Gcp(args) => gcp(args),
    }
}

#[cfg(feature = "collect-gcp")]
fn gcp(args: &CollectGcpArgs) -> anyhow::Result<ExitStatus> {
    let opts = keytrail_collect::GcpCollectOptions {
        projects: args.projects.clone(),
        endpoint_url: args.endpoint_url.clone(),
        credentials_file: args.credentials.clone(),
    };
    let diags = keytrail_collect::collect_gcp(&opts, &args.out);
    let dirs: Vec<PathBuf> = args
        .projects
        .iter()
        .map(|p| args.out.join("gcp").join(p))
        .collect();
    report_rest_collection(&diags, &dirs, &args.out.join("gcp"), args.quiet)
}

#[cfg(not(feature = "collect-gcp"))]
fn gcp(_: &CollectGcpArgs) -> anyhow::Result<ExitStatus> {
    eprintln!(
        "error: this keytrail was built without Google Cloud collection (it is in the default \
         install; a build with --no-default-features needs `--features collect-gcp`)"
    );
    Ok(ExitStatus::Error)
}

/// Prints the diagnostics of a REST collection and decides its exit code:
/// 0 when nothing failed; 1 (partial) when some calls failed but every
/// failure is recorded in a directory that holds data; 2 when no directory
/// got any data (credentials, unreachable API, unwritable output).
#[cfg(any(feature = "collect-gcp", feature = "collect-azure"))]
fn report_rest_collection(
    diags: &[keytrail_collect::Diagnostic],
    dirs: &[PathBuf],
    shown: &std::path::Path,
    quiet: bool,
) -> anyhow::Result<ExitStatus> {
    for d in diags {
        eprintln!("warning: {d}");
    }
    let failed = diags.iter().filter(|d| d.is_error).count();
    let has_data = |dir: &PathBuf| {
        std::fs::read_dir(dir).is_ok_and(|rd| {
            rd.flatten()
                .any(|e| e.file_name() != keytrail_collect::ERRORS_FILE)
        })
    };
    let reached = dirs.iter().filter(|d| has_data(d)).count();
    let status = if reached == 0 {
        eprintln!(
            "error: nothing collected into {} ({failed} failed call(s))",
            shown.display()
        );
        ExitStatus::Error
    } else if failed > 0 {
        eprintln!(
            "partial snapshot in {}: {failed} call(s) failed, listed in each directory's {}",
            shown.display(),
            keytrail_collect::ERRORS_FILE
        );
        ExitStatus::Findings
    } else {
        if !quiet {
            eprintln!("collected into {}", shown.display());
        }
        ExitStatus::Clean
    };
    Ok(status)
}

fn aws(args: &CollectAwsArgs) -> anyhow::Result<ExitStatus> {
    let opts = keytrail_collect::AwsCollectOptions {
        profile: args.profile.clone(),
        regions: args.regions.clone(),
        endpoint_url: args.endpoint_url.clone(),
        credential_report_timeout_secs: None,
    };
    let diags = keytrail_collect::collect_aws_blocking(&opts, &args.out);
    for d in &diags {
        // Failed calls are always shown: they make the snapshot incomplete.
        eprintln!("warning: {d}");
    }
    let aws = args.out.join("aws");
    let failed = diags.iter().filter(|d| d.is_error).count();
    let status = collect_status(&aws, failed);
    match status {
        ExitStatus::Error => eprintln!(
            "error: nothing collected into {} ({failed} failed call(s))",
            aws.display()
        ),
        ExitStatus::Findings => eprintln!(
            "partial snapshot in {}: {failed} call(s) failed, listed in {}",
            aws.display(),
            aws.join(keytrail_collect::ERRORS_FILE).display()
        ),
        ExitStatus::Clean if !args.quiet => {
            eprintln!("collected into {}", aws.display())
        }
        ExitStatus::Clean => {}
    }
    Ok(status)
}

/// 0 when nothing failed; 1 (partial) when calls failed but the account
/// was reached (its identity is in the snapshot) and the failures are
/// recorded in it; 2 when the account was never reached or the snapshot
/// could not be written.
fn collect_status(aws: &std::path::Path, failed: usize) -> ExitStatus {
    let reached = aws.join("sts-get-caller-identity.json").is_file();
    let recorded = aws.join(keytrail_collect::ERRORS_FILE).is_file();
    if !reached || !recorded {
        ExitStatus::Error
    } else if failed > 0 {
        ExitStatus::Findings
    } else {
        ExitStatus::Clean
    }
}

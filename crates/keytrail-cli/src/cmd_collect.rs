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
    /// Collect Azure subscriptions and their Entra ID tenant (applications, service principals,
    /// role assignments, storage containers, AKS clusters).
    Azure(CollectAzureArgs),
}

/// `keytrail collect azure`.
#[derive(Debug, Args)]
#[command(
    after_help = "Credentials, in this order: AZURE_TENANT_ID, AZURE_CLIENT_ID and \
AZURE_CLIENT_SECRET (a service principal); the az CLI's login (`az account get-access-token`); \
the machine's managed identity. Read-only: the Reader role on the subscriptions and the \
Application.Read.All Graph permission (or the Global Reader role) cover every call.\n\n\
Exit codes: 0 = every call succeeded; 1 = partial: some calls failed, the rest is written \
and azure/collection-errors.json lists the failures; 2 = nothing could be collected.\n\n\
Examples:\n  az login && keytrail collect azure --out snap/ && keytrail posture --snapshot snap/\n  \
keytrail collect azure --subscription 00000000-1111-2222-3333-444444444444 --out snap/"
)]
pub struct CollectAzureArgs {
    /// Subscription id to collect; repeatable. Default: every subscription
    /// the identity can see.
    ///
    /// Example: `--subscription 00000000-1111-2222-3333-444444444444`
    #[arg(long = "subscription", value_name = "ID")]
    pub subscriptions: Vec<String>,

    /// Send every request (Graph, ARM and the token request) to URL, an
    /// emulator or proxy, instead of Microsoft.
    ///
    /// Example: `--endpoint-url http://127.0.0.1:8086`
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,

    /// Snapshot directory to write (azure/ is created inside it).
    ///
    /// Example: `--out snap/`
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// Print nothing on stderr except errors.
    #[arg(long, short)]
    pub quiet: bool,
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

/// An IAM role ARN, `arn:PARTITION:iam::ACCOUNT_ID:role/NAME`.
pub(crate) fn parse_role_arn(s: &str) -> Result<String, String> {
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    let ok = parts.len() == 6
        && parts[0] == "arn"
        && !parts[1].is_empty()
        && parts[2] == "iam"
        && parts[3].is_empty()
        && parts[4].len() == 12
        && parts[4].bytes().all(|b| b.is_ascii_digit())
        && parts[5]
            .strip_prefix("role/")
            .is_some_and(|n| !n.is_empty());
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!(
            "`{s}`: a role ARN is arn:aws:iam::ACCOUNT_ID:role/NAME (12-digit account id)"
        ))
    }
}

/// `keytrail collect aws`.
#[derive(Debug, Args)]
#[command(
    after_help = "Credentials and endpoints come from the usual AWS sources \
(environment, AWS_PROFILE or --profile, SSO, web identity, instance roles); \
AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE> are honoured. Read-only: the \
SecurityAudit managed policy covers every call.\n\n\
With --role-arn, STS AssumeRole is called first with those credentials (session name \
keytrail-collect) and everything is collected with the role's: another account of an \
organization, or a read-only audit role. A role that cannot be assumed is exit 2 with STS's \
reason.\n\n\
Exit codes: 0 = every call succeeded; 1 = partial: some calls failed, the \
rest of the snapshot is written and aws/collection-errors.json lists the \
failures (checks that need them read \"not evaluated\"); 2 = nothing could be \
collected (credentials, a role that cannot be assumed, endpoint, unwritable output).\n\n\
Examples:\n  keytrail collect aws --out snap/; [ $? -le 1 ] && keytrail posture --snapshot snap/\n  \
keytrail collect aws --profile audit --region us-east-1 --region eu-west-1 --out snap/\n  \
keytrail collect aws --role-arn arn:aws:iam::210987654321:role/keytrail-audit --out snap/\n  \
keytrail collect aws --role-arn arn:aws:iam::464622532012:role/audit --external-id a1b2 --out s/"
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

    /// Assume this IAM role (STS AssumeRole with the credentials above)
    /// and collect the account it belongs to with the role's credentials.
    ///
    /// Example: `--role-arn arn:aws:iam::210987654321:role/OrganizationAccountAccessRole`
    #[arg(long, value_name = "ARN", value_parser = parse_role_arn)]
    pub role_arn: Option<String>,

    /// The external id the role's trust policy requires (third-party
    /// audit roles).
    ///
    /// Example: `--external-id a1b2c3`
    #[arg(long, value_name = "ID", requires = "role_arn")]
    pub external_id: Option<String>,

    /// Snapshot directory to write (aws/ is created inside it).
    ///
    /// Example: `--out snap/`
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// Print nothing on stderr except errors.
    ///
    /// Example: `keytrail collect aws -q --out snap/`
    #[arg(long, short)]
    pub quiet: bool,
}

/// Runs `keytrail collect`.
pub fn run(cmd: &CollectCommand) -> anyhow::Result<ExitStatus> {
    match cmd {
        CollectCommand::Aws(args) => aws(args),
        CollectCommand::Gcp(args) => gcp(args),
        CollectCommand::Azure(args) => azure(args),
    }
}

#[cfg(feature = "collect-azure")]
fn azure(args: &CollectAzureArgs) -> anyhow::Result<ExitStatus> {
    let opts = keytrail_collect::AzureCollectOptions {
        subscriptions: args.subscriptions.clone(),
        endpoint_url: args.endpoint_url.clone(),
        client_secret: None,
    };
    let started = std::time::SystemTime::now();
    let diags = keytrail_collect::collect_azure(&opts, &args.out);
    let dir = args.out.join("azure");
    report_rest_collection(
        &diags,
        std::slice::from_ref(&dir),
        &dir,
        started,
        args.quiet,
    )
}

#[cfg(not(feature = "collect-azure"))]
fn azure(_: &CollectAzureArgs) -> anyhow::Result<ExitStatus> {
    eprintln!(
        "error: this keytrail was built without Azure collection (it is in the default \
         install; a build with --no-default-features needs `--features collect-azure`)"
    );
    Ok(ExitStatus::Error)
}

#[cfg(feature = "collect-gcp")]
fn gcp(args: &CollectGcpArgs) -> anyhow::Result<ExitStatus> {
    let opts = keytrail_collect::GcpCollectOptions {
        projects: args.projects.clone(),
        endpoint_url: args.endpoint_url.clone(),
        credentials_file: args.credentials.clone(),
    };
    let started = std::time::SystemTime::now();
    let diags = keytrail_collect::collect_gcp(&opts, &args.out);
    let dirs: Vec<PathBuf> = args
        .projects
        .iter()
        .map(|p| args.out.join("gcp").join(p))
        .collect();
    report_rest_collection(&diags, &dirs, &args.out.join("gcp"), started, args.quiet)
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
/// got any data from this run (credentials, unreachable API, unwritable
/// output): files left by an earlier run in the same directory do not count.
#[cfg(any(feature = "collect-gcp", feature = "collect-azure"))]
fn report_rest_collection(
    diags: &[keytrail_collect::Diagnostic],
    dirs: &[PathBuf],
    shown: &std::path::Path,
    started: std::time::SystemTime,
    quiet: bool,
) -> anyhow::Result<ExitStatus> {
    for d in diags {
        eprintln!("warning: {d}");
    }
    let failed = diags.iter().filter(|d| d.is_error).count();
    // Second-granular file systems: allow the second the run started in.
    let since = started - std::time::Duration::from_secs(1);
    let has_data = |dir: &PathBuf| {
        std::fs::read_dir(dir).is_ok_and(|rd| {
            rd.flatten().any(|e| {
                e.file_name() != keytrail_collect::ERRORS_FILE
                    && e.metadata()
                        .and_then(|m| m.modified())
                        .is_ok_and(|t| t >= since)
            })
        })
    };
    let refused = diags
        .iter()
        .any(|d| d.is_error && matches!(d.kind.as_str(), "credentials" | "bad_option"));
    let reached = if refused {
        0
    } else {
        dirs.iter().filter(|d| has_data(d)).count()
    };
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
        role_arn: args.role_arn.clone(),
        external_id: args.external_id.clone(),
        session_name: None,
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

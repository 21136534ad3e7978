//! Live collection of cloud API snapshots: calls the cloud APIs and writes
//! the same directory layout that the cloud CLIs produce
//! (docs/snapshot-layout.md), so `keytrail_inventory::load_snapshot` reads a
//! collected snapshot exactly like a hand-made one.
//!
//! Each provider sits behind its own cargo feature (`aws`); without it the
//! entry point still exists and answers with a diagnostic, so front-ends need
//! no `cfg`. Collection never fails wholesale: every failed call becomes a
//! [`Diagnostic`] naming the call and the file it would have written, and the
//! file is left absent (the evaluator then reports "not evaluated").
//!
//! ```no_run
//! let opts = keytrail_collect::AwsCollectOptions {
//!     regions: vec!["us-east-1".into()],
//!     ..Default::default()
//! };
//! let diags = keytrail_collect::collect_aws_blocking(&opts, std::path::Path::new("snap"));
//! for d in &diags {
//!     eprintln!("{d}");
//! }
//! ```

#[cfg(feature = "aws")]
mod aws;
#[cfg(feature = "azure")]
pub mod azure;
#[cfg(feature = "gcp")]
pub mod gcp;
#[cfg(any(feature = "gcp", feature = "azure"))]
mod rest;
#[cfg(feature = "s3")]
pub mod s3logs;
#[cfg(feature = "s3-scan")]
pub mod s3scan;
#[cfg(feature = "s3")]
mod sdk;
pub mod writer;

pub use keytrail_types::Diagnostic;
use std::path::Path;
pub use writer::ERRORS_FILE;

/// What `keytrail collect aws` collects, and with which credentials.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsCollectOptions {
    /// Named profile from the shared config files (`--profile`); `None`
    /// uses the default credential chain (environment, `AWS_PROFILE`, SSO,
    /// web identity, container and instance credentials).
    pub profile: Option<String>,
    /// Regions to collect regional data from (EC2, EKS). Empty: every region
    /// enabled for the account (`ec2 describe-regions`), or the configured
    /// region if that call fails.
    pub regions: Vec<String>,
    /// Endpoint override for every service (`--endpoint-url`). `None` leaves
    /// the SDK's own resolution in charge, which honours `AWS_ENDPOINT_URL`
    /// and `AWS_ENDPOINT_URL_<SERVICE>` and the profile's `endpoint_url`.
    pub endpoint_url: Option<String>,
    /// How long to wait for the IAM credential report to be generated.
    /// `None`: 120 seconds.
    pub credential_report_timeout_secs: Option<u64>,
    /// A role to assume first (`--role-arn`): STS `AssumeRole` with the
    /// credentials above, then every call with the role's temporary
    /// credentials. A role that cannot be assumed stops the collection
    /// with STS's reason, as failed credentials do.
    pub role_arn: Option<String>,
    /// The external id the role's trust policy asks for (`--external-id`).
    pub external_id: Option<String>,
    /// The role session name (CloudTrail shows it; make one with
    /// [`session_name`]); `None`: `keytrail-collect`.
    pub session_name: Option<String>,
}

/// A valid STS role session name `keytrail-LABEL`: characters outside
/// `[A-Za-z0-9+=,.@_-]` become `-`, and it is cut to STS's 64 characters.
///
/// ```
/// assert_eq!(keytrail_collect::session_name("nightly-1:aws:123"), "keytrail-nightly-1-aws-123");
/// assert_eq!(keytrail_collect::session_name(&"x".repeat(100)).len(), 64);
/// ```
pub fn session_name(label: &str) -> String {
    let mut s = String::from("keytrail-");
    s.extend(label.chars().map(|c| {
        if c.is_ascii_alphanumeric() || "+=,.@_-".contains(c) {
            c
        } else {
            '-'
        }
    }));
    s.truncate(64);
    s
}

/// An account of an AWS organization, as `ListAccounts` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgAccount {
    /// The 12-digit account id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its state: `ACTIVE`, `SUSPENDED`, `PENDING_CLOSURE`, `CLOSED`,
    /// `PENDING_ACTIVATION` (`State`, else the retired `Status`).
    pub status: String,
}

/// Lists every account of the caller's organization (Organizations
/// `ListAccounts`, paged by `NextToken`), with the credentials, profile,
/// endpoint and role of `opts`. An `Err` names the call and AWS's reason:
/// access denied (not the management account nor a delegated
/// administrator), not in an organization, credentials, endpoint.
pub fn list_org_accounts_blocking(opts: &AwsCollectOptions) -> Result<Vec<OrgAccount>, String> {
    #[cfg(feature = "aws")]
    {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the async runtime: {e}"))?
            .block_on(aws::list_org_accounts(opts))
    }
    #[cfg(not(feature = "aws"))]
    {
        let _ = opts;
        Err("this keytrail was built without AWS collection (a build with --no-default-features needs `--features collect-aws`)".into())
    }
}

/// Collects one AWS account into `out/aws/` (created if needed) and returns
/// the diagnostics of every call that failed. Files of failed calls are not
/// written, except "does not exist" answers, which are written as the CLI's
/// error text (the layout's "not configured").
#[cfg(feature = "aws")]
pub async fn collect_aws(opts: &AwsCollectOptions, out: &Path) -> Vec<Diagnostic> {
    aws::collect(opts, out).await
}

/// [`collect_aws`] on a runtime of its own, for synchronous callers (the CLI).
pub fn collect_aws_blocking(opts: &AwsCollectOptions, out: &Path) -> Vec<Diagnostic> {
    #[cfg(feature = "aws")]
    {
        match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt.block_on(collect_aws(opts, out)),
            Err(e) => vec![Diagnostic::error(
                "runtime",
                "collect aws",
                format!("cannot start the async runtime: {e}"),
            )],
        }
    }
    #[cfg(not(feature = "aws"))]
    {
        let _ = (opts, out);
        vec![Diagnostic::error(
            "unsupported",
            "collect aws",
            "this keytrail was built without AWS collection (it is in the default install; a build with --no-default-features needs `--features collect-aws`)",
        )]
    }
}

/// Whether this build can collect from AWS (the `aws` feature).
pub const AWS_SUPPORTED: bool = cfg!(feature = "aws");

/// Whether this build can collect from Google Cloud (the `gcp` feature).
pub const GCP_SUPPORTED: bool = cfg!(feature = "gcp");

#[cfg(feature = "gcp")]
pub use gcp::GcpCollectOptions;

/// Collects Google Cloud projects into `out/gcp/<project>/` (see
/// [`gcp`]) and returns the diagnostics of every call that failed.
#[cfg(feature = "gcp")]
pub fn collect_gcp(opts: &GcpCollectOptions, out: &Path) -> Vec<Diagnostic> {
    gcp::collect(opts, out)
}

/// Reads at most `limit` bytes of `path` (a longer file is an error).
#[cfg(any(feature = "gcp", feature = "azure"))]
pub(crate) fn read_bounded(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let f = std::fs::File::open(path)?;
    let mut buf = Vec::new();
    f.take(limit + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {limit} bytes"),
        ));
    }
    Ok(buf)
}

/// Seconds since the Unix epoch.
#[cfg(any(feature = "gcp", feature = "azure"))]
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Whether this build can collect from Azure (the `azure` feature).
pub const AZURE_SUPPORTED: bool = cfg!(feature = "azure");

#[cfg(feature = "azure")]
pub use azure::{AzureCollectOptions, ClientSecret};

/// Collects Azure subscriptions and their Entra tenant into `out/azure/`
/// (see [`azure`]) and returns the diagnostics of every call that failed.
#[cfg(feature = "azure")]
pub fn collect_azure(opts: &AzureCollectOptions, out: &Path) -> Vec<Diagnostic> {
    azure::collect(opts, out)
}

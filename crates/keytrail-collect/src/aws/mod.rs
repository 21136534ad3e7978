//! AWS collection: loads the SDK configuration (profile, region, endpoint
//! overrides such as `AWS_ENDPOINT_URL`), then calls each API of the layout
//! and writes its CLI-shaped output under `OUT/aws/`. Every call that fails
//! becomes a diagnostic and leaves its file absent; "does not exist" answers
//! are written as the CLI's error text, which the layout reads as "not
//! configured". Per-user, per-bucket and per-region calls run a few at a
//! time.

mod convert;

use crate::AwsCollectOptions;
use crate::writer::{SnapshotWriter, safe_component};
use aws_config::SdkConfig;
use aws_sdk_iam::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_iam::types::ReportStateType;
use keytrail_types::Diagnostic;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// How many per-user / per-bucket / per-cluster calls run at once.
const CONCURRENCY: usize = 8;
/// How many regions are collected at once.
const REGION_CONCURRENCY: usize = 4;

type Writer = Arc<SnapshotWriter>;

/// Records a failed call. A service error whose code is in `not_found` is
/// the API's way of saying "not configured": its CLI error text is written
/// to `rel`. Any other failure is a diagnostic and `rel` stays absent.
fn failed<E>(w: &SnapshotWriter, rel: &str, operation: &str, not_found: &[&str], err: &E)
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    if let Some(code) = err.code()
        && not_found.contains(&code)
    {
        w.not_configured(rel, code, operation, err.message().unwrap_or(code));
        return;
    }
    let what = match err.code() {
        Some(code) => format!(
            "{operation} failed: {code}: {}",
            err.message().unwrap_or("no message")
        ),
        None => format!("{operation} failed: {}", DisplayErrorContext(err)),
    };
    w.error("api_error", rel, what);
}

/// A boxed future borrowing from the caller.
type Task<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// Drives the futures concurrently until all are done (a `join!` without
/// the macro crate).
async fn join_all(mut futures: Vec<Task<'_>>) {
    let mut done = vec![false; futures.len()];
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, d) in futures.iter_mut().zip(done.iter_mut()) {
            if !*d {
                if f.as_mut().poll(cx).is_ready() {
                    *d = true;
                } else {
                    pending = true;
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await
}

/// Runs `f` on every item, at most `limit` at a time.
async fn bounded<T, F, Fut>(w: &SnapshotWriter, items: Vec<T>, limit: usize, f: F)
where
    T: Send + 'static,
    F: Fn(T) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut set = JoinSet::new();
    let note = |r: Result<(), tokio::task::JoinError>| {
        if let Err(e) = r {
            w.push(Diagnostic::error(
                "internal",
                w.root().display().to_string(),
                format!("a collection task failed: {e}"),
            ));
        }
    };
    for item in items {
        while set.len() >= limit {
            if let Some(r) = set.join_next().await {
                note(r);
            }
        }
        set.spawn(f(item));
    }
    while let Some(r) = set.join_next().await {
        note(r);
    }
}

async fn load_config(opts: &AwsCollectOptions) -> SdkConfig {
    crate::sdk::load_config(opts.profile.as_deref(), opts.endpoint_url.as_deref()).await
}

/// The configuration to collect with: `opts`' own credentials, or with
/// `--role-arn` the role's, assumed once up front so that a refused role
/// is one clear error (STS's code and message) rather than a failed call
/// per API.
async fn credentials(opts: &AwsCollectOptions) -> Result<SdkConfig, String> {
    let config = load_config(opts).await;
    let Some(arn) = &opts.role_arn else {
        return Ok(config);
    };
    let session = opts
        .session_name
        .clone()
        .unwrap_or_else(|| crate::session_name("collect"));
    let sts = aws_sdk_sts::Client::new(&config);
    let mut req = sts.assume_role().role_arn(arn).role_session_name(session);
    if let Some(x) = &opts.external_id {
        req = req.external_id(x);
    }
    let out = req.send().await.map_err(|e| {
        let why = match e.code() {
            Some(code) => format!("{code}: {}", e.message().unwrap_or("no message")),
            None => DisplayErrorContext(&e).to_string(),
        };
        format!("AssumeRole {arn} failed, collection stopped: {why}")
    })?;
    let c = out
        .credentials()
        .ok_or_else(|| format!("AssumeRole {arn} returned no credentials"))?;
    let expiry = std::time::SystemTime::try_from(*c.expiration()).ok();
    let creds = aws_sdk_sts::config::Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token().to_string()),
        expiry,
        "keytrail-assume-role",
    );
    Ok(config
        .to_builder()
        .credentials_provider(aws_sdk_sts::config::SharedCredentialsProvider::new(creds))
        .build())
}

/// Every account of the caller's organization (see
/// [`crate::list_org_accounts_blocking`]).
pub(crate) async fn list_org_accounts(
    opts: &AwsCollectOptions,
) -> Result<Vec<crate::OrgAccount>, String> {
    let config = credentials(opts).await?;
    let client = aws_sdk_organizations::Client::new(&config);
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        // 20 is the most ListAccounts returns per page.
        let page = client
            .list_accounts()
            .max_results(20)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| {
                let hint = match e.code() {
                    Some("AccessDeniedException") => {
                        " (only the organization's management account or a delegated administrator may list its accounts)"
                    }
                    Some("AWSOrganizationsNotInUseException") => {
                        " (the caller's account is not in an organization)"
                    }
                    _ => "",
                };
                match e.code() {
                    Some(code) => format!(
                        "ListAccounts failed: {code}: {}{hint}",
                        e.message().unwrap_or("no message")
                    ),
                    None => format!("ListAccounts failed: {}", DisplayErrorContext(&e)),
                }
            })?;
        for a in page.accounts() {
            // `State` replaced `Status` (retired 2026-09-09); older
            // endpoints and emulators may send only `Status`.
            let status = match (a.state(), a.status()) {
                (Some(s), _) => s.as_str().to_string(),
                (None, Some(s)) => s.as_str().to_string(),
                (None, None) => String::new(),
            };
            out.push(crate::OrgAccount {
                id: a.id().unwrap_or_default().to_string(),
                name: a.name().unwrap_or_default().to_string(),
                status,
            });
        }
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => break,
        }
    }
    Ok(out)
}

/// Collects one account into `out/aws/`.
pub(crate) async fn collect(opts: &AwsCollectOptions, out: &Path) -> Vec<Diagnostic> {
    let w: Writer = Arc::new(SnapshotWriter::new(out.join("aws")));
    let config = match credentials(opts).await {
        Ok(c) => c,
        Err(why) => {
            w.error("api_error", "sts-get-caller-identity.json", why);
            w.write_error_record();
            return w.diagnostics();
        }
    };

    // STS first: without working credentials and endpoint every other call
    // would fail the same way, so one clear error is better than hundreds.
    let sts = aws_sdk_sts::Client::new(&config);
    let account = match sts.get_caller_identity().send().await {
        Ok(o) => {
            w.json(
                "sts-get-caller-identity.json",
                &convert::sts::caller_identity(&o),
            );
            o.account().map(str::to_string)
        }
        Err(e) => {
            w.error(
                "api_error",
                "sts-get-caller-identity.json",
                format!(
                    "GetCallerIdentity failed, collection stopped (check credentials, profile and endpoint): {}",
                    DisplayErrorContext(&e)
                ),
            );
            w.write_error_record();
            return w.diagnostics();
        }
    };

    let regions = resolve_regions(&config, opts, &w).await;
    join_all(vec![
        Box::pin(organizations(&config, &w, account.as_deref())),
        Box::pin(iam(&config, &w, opts)),
        Box::pin(s3(&config, &w, account.as_deref())),
        Box::pin(regional(&config, &w, regions)),
    ])
    .await;
    w.write_error_record();
    w.diagnostics()
}

async fn organizations(config: &SdkConfig, w: &Writer, account: Option<&str>) {
    let client = aws_sdk_organizations::Client::new(config);
    let rel = "organizations-describe-organization.json";
    let org = match client.describe_organization().send().await {
        Ok(o) => match o.organization() {
            Some(org) => {
                w.json(rel, &convert::organizations::describe_organization(org));
                org.master_account_id().map(str::to_string)
            }
            None => {
                w.error(
                    "api_error",
                    rel,
                    "DescribeOrganization returned no organization",
                );
                None
            }
        },
        Err(e) => {
            failed(
                w,
                rel,
                "DescribeOrganization",
                &["AWSOrganizationsNotInUseException"],
                &e,
            );
            None
        }
    };
    // Only the management account (or a delegated administrator) may list
    // the accounts; member accounts skip the call instead of logging a
    // predictable AccessDenied.
    if org.is_some() && org.as_deref() == account {
        let rel = "organizations-list-accounts.json";
        let mut pages = client.list_accounts().into_paginator().send();
        let mut accounts = Vec::new();
        while let Some(page) = pages.next().await {
            match page {
                Ok(p) => accounts.extend(p.accounts().iter().cloned()),
                Err(e) => {
                    failed(w, rel, "ListAccounts", &[], &e);
                    return;
                }
            }
        }
        w.json(rel, &convert::organizations::list_accounts(&accounts));
    }
}

async fn iam(config: &SdkConfig, w: &Writer, opts: &AwsCollectOptions) {
    let client = aws_sdk_iam::Client::new(config);
    join_all(vec![
        Box::pin(credential_report(&client, w, opts)),
        Box::pin(authorization_details(&client, w)),
        Box::pin(access_keys(&client, w)),
    ])
    .await;
}

async fn credential_report(client: &aws_sdk_iam::Client, w: &Writer, opts: &AwsCollectOptions) {
    let rel = "iam-get-credential-report.json";
    let timeout = Duration::from_secs(opts.credential_report_timeout_secs.unwrap_or(120));
    let deadline = Instant::now() + timeout;
    loop {
        match client.generate_credential_report().send().await {
            Ok(o) if o.state() == Some(&ReportStateType::Complete) => break,
            Ok(_) => {}
            Err(e) => {
                failed(w, rel, "GenerateCredentialReport", &[], &e);
                return;
            }
        }
        if Instant::now() >= deadline {
            w.error(
                "timeout",
                rel,
                format!(
                    "the credential report was not generated within {} s",
                    timeout.as_secs()
                ),
            );
            return;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let mut attempts = 0;
    loop {
        match client.get_credential_report().send().await {
            Ok(o) => {
                w.json(rel, &convert::iam::credential_report(&o));
                return;
            }
            Err(e)
                if attempts < 5
                    && matches!(
                        e.code(),
                        Some("ReportInProgress" | "ReportNotPresent" | "ReportExpired")
                    ) =>
            {
                attempts += 1;
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Err(e) => {
                failed(w, rel, "GetCredentialReport", &[], &e);
                return;
            }
        }
    }
}

async fn authorization_details(client: &aws_sdk_iam::Client, w: &Writer) {
    let rel = "iam-get-account-authorization-details.json";
    let mut details = convert::iam::AuthorizationDetails::default();
    let mut pages = client
        .get_account_authorization_details()
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        match page {
            Ok(p) => details.add_page(&p),
            Err(e) => {
                // A partial listing would make absent roles look compliant.
                failed(w, rel, "GetAccountAuthorizationDetails", &[], &e);
                return;
            }
        }
    }
    w.json(rel, &details.build());
}

async fn access_keys(client: &aws_sdk_iam::Client, w: &Writer) {
    let mut users = Vec::new();
    let mut pages = client.list_users().into_paginator().send();
    while let Some(page) = pages.next().await {
        match page {
            Ok(p) => users.extend(p.users().iter().map(|u| u.user_name().to_string())),
            Err(e) => {
                failed(w, "iam-list-access-keys/", "ListUsers", &[], &e);
                return;
            }
        }
    }
    // The directory exists even without users: "collected, no keys".
    if let Err(e) = std::fs::create_dir_all(w.root().join("iam-list-access-keys")) {
        w.error("write_failed", "iam-list-access-keys/", e.to_string());
    }
    bounded(w, users, CONCURRENCY, |user| {
        let client = client.clone();
        let w = w.clone();
        async move { user_keys(&client, &w, &user).await }
    })
    .await;
}

async fn user_keys(client: &aws_sdk_iam::Client, w: &Writer, user: &str) {
    if !safe_component(user) {
        w.error(
            "unsafe_name",
            "iam-list-access-keys/",
            format!("user name {user:?} cannot be a file name; skipped"),
        );
        return;
    }
    let rel = format!("iam-list-access-keys/{user}.json");
    let mut keys = Vec::new();
    let mut pages = client
        .list_access_keys()
        .user_name(user)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        match page {
            Ok(p) => keys.extend(p.access_key_metadata().iter().cloned()),
            Err(e) => {
                failed(w, &rel, "ListAccessKeys", &["NoSuchEntity"], &e);
                return;
            }
        }
    }
    w.json(&rel, &convert::iam::list_access_keys(&keys));
    for k in &keys {
        let Some(id) = k.access_key_id() else {
            continue;
        };
        if !safe_component(id) {
            continue;
        }
        let rel = format!("iam-get-access-key-last-used/{id}.json");
        match client
            .get_access_key_last_used()
            .access_key_id(id)
            .send()
            .await
        {
            Ok(o) => {
                w.json(&rel, &convert::iam::access_key_last_used(&o));
            }
            Err(e) => failed(w, &rel, "GetAccessKeyLastUsed", &[], &e),
        }
    }
}

use crate::sdk::s3_client;

async fn s3(config: &SdkConfig, w: &Writer, account: Option<&str>) {
    join_all(vec![
        Box::pin(account_public_access_block(config, w, account)),
        Box::pin(buckets(config, w)),
    ])
    .await;
}

async fn account_public_access_block(config: &SdkConfig, w: &Writer, account: Option<&str>) {
    let rel = "s3control-get-public-access-block.json";
    let Some(account) = account else {
        w.error(
            "api_error",
            rel,
            "no account id (GetCallerIdentity): skipped",
        );
        return;
    };
    let mut b = aws_sdk_s3control::config::Builder::from(config);
    if let Some(url) = config.endpoint_url() {
        // The S3 Control endpoint rules put the account id in front of the
        // host name (`ACCOUNT.s3-control...`), which an overridden endpoint
        // such as `http://127.0.0.1:5000` cannot serve: use it as given.
        b = b.endpoint_resolver(FixedEndpoint(url.to_string()));
    }
    let client = aws_sdk_s3control::Client::from_conf(b.build());
    match client
        .get_public_access_block()
        .account_id(account)
        .send()
        .await
    {
        Ok(o) => {
            let c = o.public_access_block_configuration();
            w.json(
                rel,
                &convert::s3::public_access_block(
                    c.and_then(|c| c.block_public_acls()),
                    c.and_then(|c| c.ignore_public_acls()),
                    c.and_then(|c| c.block_public_policy()),
                    c.and_then(|c| c.restrict_public_buckets()),
                ),
            );
        }
        Err(e) => failed(
            w,
            rel,
            "GetPublicAccessBlock",
            &["NoSuchPublicAccessBlockConfiguration"],
            &e,
        ),
    }
}

/// An endpoint resolver that always answers with one URL.
#[derive(Debug)]
struct FixedEndpoint(String);

impl aws_sdk_s3control::config::endpoint::ResolveEndpoint for FixedEndpoint {
    fn resolve_endpoint<'a>(
        &'a self,
        _params: &'a aws_sdk_s3control::config::endpoint::Params,
    ) -> aws_sdk_s3control::config::endpoint::EndpointFuture<'a> {
        aws_sdk_s3control::config::endpoint::EndpointFuture::ready(Ok(
            aws_sdk_s3control::config::endpoint::Endpoint::builder()
                .url(self.0.clone())
                .build(),
        ))
    }
}

async fn buckets(config: &SdkConfig, w: &Writer) {
    let rel = "s3api-list-buckets.json";
    let client = s3_client(config, None);
    let mut list = Vec::new();
    let mut owner = None;
    let mut pages = client.list_buckets().into_paginator().send();
    while let Some(page) = pages.next().await {
        match page {
            Ok(p) => {
                list.extend(p.buckets().iter().cloned());
                if owner.is_none() {
                    owner = p.owner().cloned();
                }
            }
            Err(e) => {
                failed(w, rel, "ListBuckets", &[], &e);
                return;
            }
        }
    }
    w.json(rel, &convert::s3::list_buckets(&list, owner.as_ref()));
    let items: Vec<(String, Option<String>)> = list
        .iter()
        .filter_map(|b| {
            b.name()
                .map(|n| (n.to_string(), b.bucket_region().map(str::to_string)))
        })
        .collect();
    let config = Arc::new(config.clone());
    bounded(w, items, CONCURRENCY, |(name, region)| {
        let config = config.clone();
        let w = w.clone();
        async move { bucket(&config, &w, &name, region).await }
    })
    .await;
}

async fn bucket(config: &SdkConfig, w: &Writer, name: &str, region: Option<String>) {
    if !safe_component(name) {
        w.error(
            "unsafe_name",
            "s3api/",
            format!("bucket name {name:?} cannot be a directory name; skipped"),
        );
        return;
    }
    // Per-bucket calls must go to the bucket's region (no redirects are
    // followed); ListBuckets reports it, older endpoints need a lookup.
    let region = match region {
        Some(r) => Some(r),
        None => {
            let client = s3_client(config, None);
            match client.get_bucket_location().bucket(name).send().await {
                Ok(o) => Some(match o.location_constraint().map(|c| c.as_str()) {
                    None | Some("") => "us-east-1".to_string(),
                    Some("EU") => "eu-west-1".to_string(),
                    Some(r) => r.to_string(),
                }),
                Err(e) => {
                    failed(w, &format!("s3api/{name}/"), "GetBucketLocation", &[], &e);
                    None
                }
            }
        }
    };
    let client = s3_client(config, region.as_deref());
    let rel = |f: &str| format!("s3api/{name}/{f}");

    let r = rel("get-public-access-block.json");
    match client.get_public_access_block().bucket(name).send().await {
        Ok(o) => {
            let c = o.public_access_block_configuration();
            w.json(
                &r,
                &convert::s3::public_access_block(
                    c.and_then(|c| c.block_public_acls()),
                    c.and_then(|c| c.ignore_public_acls()),
                    c.and_then(|c| c.block_public_policy()),
                    c.and_then(|c| c.restrict_public_buckets()),
                ),
            );
        }
        Err(e) => failed(
            w,
            &r,
            "GetPublicAccessBlock",
            &["NoSuchPublicAccessBlockConfiguration"],
            &e,
        ),
    }
    let r = rel("get-bucket-policy-status.json");
    match client.get_bucket_policy_status().bucket(name).send().await {
        // Without IsPublic the file would read as "not public": better absent.
        Ok(o) if o.policy_status().and_then(|p| p.is_public()).is_none() => w.error(
            "api_error",
            &r,
            "GetBucketPolicyStatus answered without PolicyStatus.IsPublic",
        ),
        Ok(o) => {
            w.json(&r, &convert::s3::policy_status(&o));
        }
        Err(e) => failed(w, &r, "GetBucketPolicyStatus", &["NoSuchBucketPolicy"], &e),
    }
    let r = rel("get-bucket-acl.json");
    match client.get_bucket_acl().bucket(name).send().await {
        Ok(o) => {
            w.json(&r, &convert::s3::acl(&o));
        }
        Err(e) => failed(w, &r, "GetBucketAcl", &[], &e),
    }
    let r = rel("get-bucket-ownership-controls.json");
    match client
        .get_bucket_ownership_controls()
        .bucket(name)
        .send()
        .await
    {
        Ok(o) => {
            w.json(&r, &convert::s3::ownership_controls(&o));
        }
        Err(e) => failed(
            w,
            &r,
            "GetBucketOwnershipControls",
            &["OwnershipControlsNotFoundError"],
            &e,
        ),
    }
    let r = rel("get-bucket-policy.json");
    match client.get_bucket_policy().bucket(name).send().await {
        Ok(o) => {
            w.json(&r, &convert::s3::policy(&o));
        }
        Err(e) => failed(w, &r, "GetBucketPolicy", &["NoSuchBucketPolicy"], &e),
    }
}

/// The regions to collect: the requested ones, else every region enabled
/// for the account, else the configured region.
async fn resolve_regions(config: &SdkConfig, opts: &AwsCollectOptions, w: &Writer) -> Vec<String> {
    if !opts.regions.is_empty() {
        let mut r = opts.regions.clone();
        r.sort();
        r.dedup();
        return r;
    }
    let fallback = || {
        config
            .region()
            .map(|r| vec![r.to_string()])
            .unwrap_or_else(|| vec!["us-east-1".to_string()])
    };
    let client = aws_sdk_ec2::Client::new(config);
    match client.describe_regions().send().await {
        Ok(o) => {
            let mut names: Vec<String> = o
                .regions()
                .iter()
                .filter_map(|r| r.region_name().map(str::to_string))
                .collect();
            names.sort();
            if names.is_empty() { fallback() } else { names }
        }
        Err(e) => {
            let fb = fallback();
            w.error(
                "api_error",
                "regions/",
                format!(
                    "DescribeRegions failed, collecting only {}: {}",
                    fb.join(", "),
                    DisplayErrorContext(&e)
                ),
            );
            fb
        }
    }
}

async fn regional(config: &SdkConfig, w: &Writer, regions: Vec<String>) {
    let config = Arc::new(config.clone());
    bounded(w, regions, REGION_CONCURRENCY, |region| {
        let config = config.clone();
        let w = w.clone();
        async move {
            if !safe_component(&region) {
                w.error(
                    "unsafe_name",
                    "regions/",
                    format!("region {region:?} cannot be a directory name; skipped"),
                );
                return;
            }
            let rc = config
                .to_builder()
                .region(aws_config::Region::new(region.clone()))
                .build();
            join_all(vec![
                Box::pin(ec2(&rc, &w, &region)),
                Box::pin(eks(&rc, &w, &region)),
                Box::pin(secrets(&rc, &w, &region)),
                Box::pin(parameters(&rc, &w, &region)),
            ])
            .await;
        }
    })
    .await;
}

async fn ec2(config: &SdkConfig, w: &Writer, region: &str) {
    let client = aws_sdk_ec2::Client::new(config);
    let rel = format!("regions/{region}/ec2-describe-instances.json");
    let mut reservations = Vec::new();
    let mut pages = client.describe_instances().into_paginator().send();
    let mut ok = true;
    while let Some(page) = pages.next().await {
        match page {
            Ok(p) => reservations.extend(p.reservations().iter().cloned()),
            Err(e) => {
                failed(w, &rel, "DescribeInstances", &[], &e);
                ok = false;
                break;
            }
        }
    }
    if ok {
        w.json(&rel, &convert::ec2::describe_instances(&reservations));
    }
    let rel = format!("regions/{region}/ec2-get-instance-metadata-defaults.json");
    match client.get_instance_metadata_defaults().send().await {
        Ok(o) => {
            w.json(&rel, &convert::ec2::metadata_defaults(&o));
        }
        Err(e) => failed(w, &rel, "GetInstanceMetadataDefaults", &[], &e),
    }
}

/// `secretsmanager list-secrets` (all pages): metadata only, never a
/// secret's value.
async fn secrets(config: &SdkConfig, w: &Writer, region: &str) {
    let client = aws_sdk_secretsmanager::Client::new(config);
    let rel = format!("regions/{region}/secretsmanager-list-secrets.json");
    let mut list = Vec::new();
    let mut pages = client.list_secrets().into_paginator().send();
    while let Some(page) = pages.next().await {
        match page {
            Ok(p) => list.extend(p.secret_list().iter().cloned()),
            Err(e) => {
                failed(w, &rel, "ListSecrets", &[], &e);
                return;
            }
        }
    }
    w.json(&rel, &convert::secretsmanager::list_secrets(&list));
}

/// `ssm describe-parameters` (all pages): names, types and dates, never a
/// parameter's value.
async fn parameters(config: &SdkConfig, w: &Writer, region: &str) {
    let client = aws_sdk_ssm::Client::new(config);
    let rel = format!("regions/{region}/ssm-describe-parameters.json");
    let mut list = Vec::new();
    let mut pages = client.describe_parameters().into_paginator().send();
    while let Some(page) = pages.next().await {
        match page {
            Ok(p) => list.extend(p.parameters().iter().cloned()),
            Err(e) => {
                failed(w, &rel, "DescribeParameters", &[], &e);
                return;
            }
        }
    }
    w.json(&rel, &convert::ssm::describe_parameters(&list));
}

async fn eks(config: &SdkConfig, w: &Writer, region: &str) {
    let client = aws_sdk_eks::Client::new(config);
    let rel = format!("regions/{region}/eks-list-clusters.json");
    let mut names = Vec::new();
    let mut pages = client.list_clusters().into_paginator().send();
    while let Some(page) = pages.next().await {
        match page {
            Ok(p) => names.extend(p.clusters().iter().cloned()),
            Err(e) => {
                failed(w, &rel, "ListClusters", &[], &e);
                return;
            }
        }
    }
    w.json(&rel, &convert::eks::list_clusters(&names));
    let region = region.to_string();
    bounded(w, names, CONCURRENCY, |name| {
        let client = client.clone();
        let w = w.clone();
        let region = region.clone();
        async move { eks_cluster(&client, &w, &region, &name).await }
    })
    .await;
}

async fn eks_cluster(client: &aws_sdk_eks::Client, w: &Writer, region: &str, name: &str) {
    if !safe_component(name) {
        w.error(
            "unsafe_name",
            &format!("regions/{region}/eks-describe-cluster/"),
            format!("cluster name {name:?} cannot be a file name; skipped"),
        );
        return;
    }
    let rel = format!("regions/{region}/eks-describe-cluster/{name}.json");
    match client.describe_cluster().name(name).send().await {
        Ok(o) => match o.cluster() {
            Some(c) => {
                w.json(&rel, &convert::eks::describe_cluster(c));
            }
            None => w.error("api_error", &rel, "DescribeCluster returned no cluster"),
        },
        Err(e) => failed(w, &rel, "DescribeCluster", &[], &e),
    }
    let dir = format!("regions/{region}/eks-describe-nodegroup/{name}");
    let mut groups = Vec::new();
    let mut pages = client
        .list_nodegroups()
        .cluster_name(name)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        match page {
            Ok(p) => groups.extend(p.nodegroups().iter().cloned()),
            Err(e) => {
                failed(w, &format!("{dir}/"), "ListNodegroups", &[], &e);
                return;
            }
        }
    }
    // The directory marks "node groups collected", even when there are none.
    if let Err(e) = std::fs::create_dir_all(w.root().join(&dir)) {
        w.error("write_failed", &dir, e.to_string());
        return;
    }
    for ng in groups {
        if !safe_component(&ng) {
            continue;
        }
        let rel = format!("{dir}/{ng}.json");
        match client
            .describe_nodegroup()
            .cluster_name(name)
            .nodegroup_name(&ng)
            .send()
            .await
        {
            Ok(o) => match o.nodegroup() {
                Some(n) => {
                    w.json(&rel, &convert::eks::describe_nodegroup(n));
                }
                None => w.error(
                    "api_error",
                    &rel,
                    "DescribeNodegroup returned no node group",
                ),
            },
            Err(e) => failed(w, &rel, "DescribeNodegroup", &[], &e),
        }
    }
}

//! AWS access keys: revoke (deactivate, optionally delete) and rotate
//! (`rotate.rs`), with the AWS SDK for Rust and the operator's own
//! credentials from the usual chain (environment, profiles, SSO, web
//! identity, instance roles; `AWS_ENDPOINT_URL` honoured). The key being
//! revoked is never used to act on itself: [`Aws::connect`] refuses when
//! the operator's credentials are that key.

mod rotate;

pub use rotate::{RotateReport, RotateRequest, rotate};

use crate::Mode;
use crate::audit::{AuditLog, Outcome};
use aws_config::BehaviorVersion;
use aws_config::SdkConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_iam::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_iam::types::StatusType;
use serde::Serialize;
use std::time::Duration;

/// What kind of failure an AWS call had (the CLI words its advice on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// The key, user, secret or parameter does not exist.
    NotFound,
    /// The operator may not do this.
    AccessDenied,
    /// The credentials used were rejected (unknown, inactive or deleted key).
    InvalidCredentials,
    /// A quota (two keys per user) stands in the way.
    Limit,
    /// The secret store holds something keytrail will not rewrite.
    UnexpectedFormat,
    /// The request would use the credential being revoked.
    UsesTargetKey,
    /// A rotation journal stands in the way (in progress, or none to resume).
    Journal,
    /// Anything else (network, throttling after retries, service errors).
    Other,
}

/// An error from an AWS step.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct AwsError {
    /// The kind of failure.
    pub kind: ErrorKind,
    /// What failed and why, for people.
    pub message: String,
}

impl AwsError {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        AwsError {
            kind,
            message: message.into(),
        }
    }
}

/// Maps an SDK error to an [`AwsError`] naming the call.
///
/// The error code comes from the SDK's parse of the body, else from the
/// `X-Amzn-ErrorType` header, else from the first `<Code>` element of an
/// XML body. AWS's query-protocol errors (IAM, STS) are
/// `<ErrorResponse><Error><Code>`, which the SDK reads; moto wraps them as
/// `<ErrorResponse><Errors><Error><Code>` without the header, which the SDK
/// does not read, so without the last fallback an `InvalidClientTokenId`
/// from moto's STS would be an unclassified error.
pub(crate) fn sdk_error<E>(
    what: &str,
    e: aws_sdk_iam::error::SdkError<E, aws_sdk_iam::config::http::HttpResponse>,
) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let raw = e.raw_response();
    let header_code = raw
        .and_then(|r| r.headers().get("x-amzn-errortype"))
        .and_then(|v| v.split(':').next())
        .filter(|c| !c.is_empty())
        .map(str::to_string);
    let body = raw.and_then(|r| r.body().bytes());
    let code = e
        .code()
        .map(str::to_string)
        .or(header_code)
        .or_else(|| body.and_then(|b| xml_element(b, "Code")));
    let message = e
        .message()
        .map(str::to_string)
        .or_else(|| body.and_then(|b| xml_element(b, "Message")))
        .unwrap_or_else(|| DisplayErrorContext(&e).to_string());
    let kind = match code.as_deref() {
        Some(
            "NoSuchEntity"
            | "ResourceNotFoundException"
            | "ParameterNotFound"
            | "ParameterVersionNotFound",
        ) => ErrorKind::NotFound,
        Some("AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation") => {
            ErrorKind::AccessDenied
        }
        Some(
            "InvalidClientTokenId"
            | "SignatureDoesNotMatch"
            | "ExpiredToken"
            | "UnrecognizedClientException"
            | "InvalidAccessKeyId",
        ) => ErrorKind::InvalidCredentials,
        Some("LimitExceeded") => ErrorKind::Limit,
        _ => ErrorKind::Other,
    };
    let code = code.map(|c| format!("{c}: ")).unwrap_or_default();
    AwsError::new(kind, format!("{what}: {code}{message}"))
}

/// The text of the first `<name>` element of an XML error body (an error
/// code or message: short, no markup).
fn xml_element(body: &[u8], name: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let open = format!("<{name}>");
    let start = text.find(&open)? + open.len();
    let len = text[start..].find(&format!("</{name}>"))?;
    let value = text[start..start + len].trim();
    (!value.is_empty() && value.len() <= 512 && !value.contains('<')).then(|| value.to_string())
}

/// Where the SDK gets credentials and endpoints.
#[derive(Debug, Clone, Default)]
pub struct AwsOptions {
    /// A named profile (else `AWS_PROFILE`/the default chain).
    pub profile: Option<String>,
    /// Send every request here (an emulator or proxy); `AWS_ENDPOINT_URL`
    /// is honoured without it.
    pub endpoint_url: Option<String>,
    /// The region (IAM and STS are global; Secrets Manager and SSM are not).
    pub region: Option<String>,
}

/// Connected clients and the operator's identity.
pub struct Aws {
    pub(crate) rt: tokio::runtime::Runtime,
    pub(crate) config: SdkConfig,
    pub(crate) iam: aws_sdk_iam::Client,
    /// The operator's ARN (STS GetCallerIdentity).
    pub operator_arn: String,
    /// The operator's account.
    pub account: String,
    operator_key_id: Option<String>,
}

/// Decodes the account id an access key id belongs to (an offline property
/// of keys issued since 2019; meaningless for older or emulated keys).
pub fn account_of_key_id(key_id: &str) -> Option<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let body = key_id.get(4..)?;
    let mut bits: u128 = 0;
    let mut n = 0u32;
    for c in body.bytes().take(10) {
        let v = ALPHABET.iter().position(|&a| a == c)? as u128;
        bits = (bits << 5) | v;
        n += 5;
    }
    // First 48 bits of the decoded body.
    let first48 = (bits >> (n - 48)) as u64;
    let account = (first48 & 0x7fff_ffff_ff80) >> 7;
    Some(format!("{account:012}"))
}

async fn load_config(opts: &AwsOptions) -> SdkConfig {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    // One HTTPS client (rustls with ring) for every client and credential
    // provider, as in keytrail-collect.
    let https = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(https)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(10))
                .operation_attempt_timeout(Duration::from_secs(30))
                .build(),
        );
    if let Some(p) = &opts.profile {
        loader = loader.profile_name(p);
    }
    if let Some(e) = &opts.endpoint_url {
        loader = loader.endpoint_url(e);
    }
    if let Some(r) = &opts.region {
        loader = loader.region(aws_config::Region::new(r.clone()));
    }
    let config = loader.load().await;
    if config.region().is_some() {
        config
    } else {
        config
            .to_builder()
            .region(aws_config::Region::new("us-east-1"))
            .build()
    }
}

impl Aws {
    /// Loads the operator's configuration and asks STS who the operator is.
    /// `target_key_id` is the key about to be revoked or rotated: if the
    /// operator's own credentials are that key, nothing is sent with them.
    pub fn connect(opts: &AwsOptions, target_key_id: &str) -> Result<Aws, AwsError> {
        use aws_credential_types::provider::ProvideCredentials;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| {
                AwsError::new(ErrorKind::Other, format!("cannot start the runtime: {e}"))
            })?;
        let config = rt.block_on(load_config(opts));
        let operator_key_id = match config.credentials_provider() {
            Some(p) => rt
                .block_on(p.provide_credentials())
                .map(|c| c.access_key_id().to_string())
                .map_err(|e| {
                    AwsError::new(
                        ErrorKind::InvalidCredentials,
                        format!(
                            "no operator credentials (environment, profile, SSO or instance role): {}",
                            DisplayErrorContext(&e)
                        ),
                    )
                })
                .map(Some)?,
            None => None,
        };
        if operator_key_id.as_deref() == Some(target_key_id) {
            return Err(AwsError::new(
                ErrorKind::UsesTargetKey,
                format!(
                    "the operator's credentials are {target_key_id} itself; keytrail never acts with the key it revokes or rotates: use other credentials (another user or role with iam:UpdateAccessKey)"
                ),
            ));
        }
        let iam = aws_sdk_iam::Client::new(&config);
        let sts = aws_sdk_sts::Client::new(&config);
        let who = rt
            .block_on(sts.get_caller_identity().send())
            .map_err(|e| sdk_error("sts:GetCallerIdentity with the operator's credentials", e))?;
        Ok(Aws {
            operator_arn: who.arn().unwrap_or_default().to_string(),
            account: who.account().unwrap_or_default().to_string(),
            rt,
            config,
            iam,
            operator_key_id,
        })
    }

    /// The operator's access key id, when the credentials are keys.
    pub fn operator_key_id(&self) -> Option<&str> {
        self.operator_key_id.as_deref()
    }

    /// The IAM user owning `key_id`: checked against `user` when given,
    /// else found with iam:GetAccessKeyLastUsed.
    pub fn owner(&self, key_id: &str, user: Option<&str>) -> Result<String, AwsError> {
        let user = match user {
            Some(u) => u.to_string(),
            None => {
                let out = self
                    .rt
                    .block_on(
                        self.iam
                            .get_access_key_last_used()
                            .access_key_id(key_id)
                            .send(),
                    )
                    .map_err(|e| {
                        self.not_found_hint(key_id, sdk_error("iam:GetAccessKeyLastUsed", e))
                    })?;
                match out.user_name() {
                    Some(u) if u != "root" && !u.is_empty() => u.to_string(),
                    _ => {
                        return Err(AwsError::new(
                            ErrorKind::Other,
                            format!(
                                "{key_id} belongs to the account's root user: sign in as root to deactivate it (Security credentials page), IAM cannot act on root keys"
                            ),
                        ));
                    }
                }
            }
        };
        let keys = self.keys(&user)?;
        if !keys.iter().any(|(id, _)| id == key_id) {
            return Err(self.not_found_hint(
                key_id,
                AwsError::new(
                    ErrorKind::NotFound,
                    format!("access key {key_id} is not one of user `{user}`'s keys"),
                ),
            ));
        }
        Ok(user)
    }

    fn not_found_hint(&self, key_id: &str, mut e: AwsError) -> AwsError {
        if e.kind == ErrorKind::NotFound
            && let Some(acct) = account_of_key_id(key_id).filter(|a| *a != self.account)
        {
            e.message.push_str(&format!(
                    " (the operator is in account {}; the key id decodes to account {acct} — use credentials of that account)",
                    self.account
                ));
        }
        e
    }

    /// `user`'s access keys with their status.
    pub fn keys(&self, user: &str) -> Result<Vec<(String, StatusType)>, AwsError> {
        let out = self
            .rt
            .block_on(self.iam.list_access_keys().user_name(user).send())
            .map_err(|e| sdk_error(&format!("iam:ListAccessKeys for `{user}`"), e))?;
        Ok(out
            .access_key_metadata()
            .iter()
            .filter_map(|m| {
                Some((
                    m.access_key_id()?.to_string(),
                    m.status().cloned().unwrap_or(StatusType::Active),
                ))
            })
            .collect())
    }

    pub(crate) fn deactivate(&self, user: &str, key_id: &str) -> Result<(), AwsError> {
        self.rt
            .block_on(
                self.iam
                    .update_access_key()
                    .user_name(user)
                    .access_key_id(key_id)
                    .status(StatusType::Inactive)
                    .send(),
            )
            .map(|_| ())
            .map_err(|e| sdk_error(&format!("iam:UpdateAccessKey {key_id} Inactive"), e))
    }

    pub(crate) fn delete(&self, user: &str, key_id: &str) -> Result<(), AwsError> {
        self.rt
            .block_on(
                self.iam
                    .delete_access_key()
                    .user_name(user)
                    .access_key_id(key_id)
                    .send(),
            )
            .map(|_| ())
            .map_err(|e| sdk_error(&format!("iam:DeleteAccessKey {key_id}"), e))
    }

    /// STS GetCallerIdentity signed with the given key: `Ok(arn)` when AWS
    /// accepts it.
    pub(crate) fn identity_of(&self, key_id: &str, secret: &str) -> Result<String, AwsError> {
        let creds =
            aws_credential_types::Credentials::new(key_id, secret, None, None, "keytrail-rotate");
        let conf = aws_sdk_sts::config::Builder::from(&self.config)
            .credentials_provider(creds)
            .build();
        let sts = aws_sdk_sts::Client::from_conf(conf);
        self.rt
            .block_on(sts.get_caller_identity().send())
            .map(|o| o.arn().unwrap_or_default().to_string())
            .map_err(|e| sdk_error(&format!("sts:GetCallerIdentity with {key_id}"), e))
    }
}

/// One action of a revocation or rotation, as reported.
#[derive(Debug, Clone, Serialize)]
pub struct ActionReport {
    /// What (`deactivate-access-key`, `delete-access-key`, …).
    pub action: String,
    /// On what.
    pub target: String,
    /// The result.
    pub result: Outcome,
    /// More, when there is something to say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The outcome of `keytrail revoke aws-key`.
#[derive(Debug, Clone, Serialize)]
pub struct RevokeReport {
    /// `aws`.
    pub provider: &'static str,
    /// The access key id.
    pub target: String,
    /// Its IAM user.
    pub user: String,
    /// The account.
    pub account: String,
    /// The operator's ARN.
    pub operator: String,
    /// `dry-run` or `act`.
    pub mode: Mode,
    /// Each action.
    pub actions: Vec<ActionReport>,
}

/// Deactivates (and with `delete`, deletes) `key_id`.
pub fn revoke_access_key(
    aws: &Aws,
    key_id: &str,
    user: Option<&str>,
    delete: bool,
    mode: Mode,
    audit: &mut AuditLog,
) -> Result<RevokeReport, AwsError> {
    audit.set_identity(Some(aws.operator_arn.clone()));
    let io = |e: std::io::Error| {
        AwsError::new(ErrorKind::Other, format!("cannot write the audit log: {e}"))
    };
    let user = match aws.owner(key_id, user) {
        Ok(u) => u,
        Err(e) => {
            audit
                .record(
                    "aws",
                    "find-key-owner",
                    key_id,
                    mode,
                    Outcome::Failed,
                    Some(e.message.clone()),
                )
                .map_err(io)?;
            return Err(e);
        }
    };
    let status = aws
        .keys(&user)?
        .into_iter()
        .find(|(id, _)| id == key_id)
        .map(|(_, s)| s)
        .unwrap_or(StatusType::Active);
    let mut report = RevokeReport {
        provider: "aws",
        target: key_id.to_string(),
        user: user.clone(),
        account: aws.account.clone(),
        operator: aws.operator_arn.clone(),
        mode,
        actions: vec![],
    };
    let mut steps: Vec<(&str, bool)> =
        vec![("deactivate-access-key", status == StatusType::Active)];
    if delete {
        steps.push(("delete-access-key", true));
    }
    for (action, needed) in steps {
        let (result, detail) = if !needed {
            (Outcome::Skipped, Some("already inactive".to_string()))
        } else if mode.is_dry_run() {
            (Outcome::Planned, None)
        } else {
            let r = if action == "deactivate-access-key" {
                aws.deactivate(&user, key_id).and_then(|()| {
                    // Read back: the key must now be listed as inactive.
                    match aws.keys(&user)?.into_iter().find(|(id, _)| id == key_id) {
                        Some((_, StatusType::Inactive)) => Ok(()),
                        other => Err(AwsError::new(
                            ErrorKind::Other,
                            format!(
                                "{key_id} still reads {:?} after UpdateAccessKey",
                                other.map(|o| o.1)
                            ),
                        )),
                    }
                })
            } else {
                aws.delete(&user, key_id)
            };
            match r {
                Ok(()) => (Outcome::Succeeded, None),
                Err(e) => {
                    audit
                        .record(
                            "aws",
                            action,
                            key_id,
                            mode,
                            Outcome::Failed,
                            Some(e.message.clone()),
                        )
                        .map_err(io)?;
                    return Err(e);
                }
            }
        };
        audit
            .record("aws", action, key_id, mode, result, detail.clone())
            .map_err(io)?;
        report.actions.push(ActionReport {
            action: action.to_string(),
            target: format!("{key_id} (user {user})"),
            result,
            detail,
        });
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_read_from_wrapped_xml_bodies() {
        let moto = br#"<?xml version="1.0" encoding="utf-8"?>
<ErrorResponse><Errors><Error><Code>InvalidClientTokenId</Code><Message>The security token included in the request is invalid.</Message><Type>Sender</Type></Error></Errors></ErrorResponse>"#;
        assert_eq!(
            xml_element(moto, "Code").as_deref(),
            Some("InvalidClientTokenId")
        );
        assert_eq!(
            xml_element(moto, "Message").as_deref(),
            Some("The security token included in the request is invalid.")
        );
        assert_eq!(xml_element(b"<Code><x/></Code>", "Code"), None);
        assert_eq!(xml_element(b"<Code></Code>", "Code"), None);
        assert_eq!(xml_element(b"not xml", "Code"), None);
    }

    #[test]
    fn decodes_the_account_of_a_key_id() {
        // The published example from AWS security research on key ids.
        assert_eq!(
            super::account_of_key_id("ASIAY34FZKBOKMUTVV7A").as_deref(),
            Some("609629065308")
        );
    }
}

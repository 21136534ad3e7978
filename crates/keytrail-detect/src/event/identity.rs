//! Who made a call: the principal kinds of `userIdentity.type`, the normalised
//! [`Identity`] view of an event, and role-session ARNs.

/// What kind of principal made the call (`userIdentity.type` for CloudTrail; the
/// kinds after `Unknown` are the other clouds').
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityKind {
    /// An IAM user (long-term access key or console password).
    IamUser,
    /// A role session (`sts:AssumeRole*`, instance profiles, SSO, Lambda…).
    AssumedRole,
    /// A session from `sts:GetFederationToken`.
    FederatedUser,
    /// The account root user.
    Root,
    /// An AWS service acting on its own.
    AwsService,
    /// Another AWS account.
    AwsAccount,
    /// A SAML-federated user (`AssumeRoleWithSAML`).
    SamlUser,
    /// A web-identity user (`AssumeRoleWithWebIdentity`).
    WebIdentityUser,
    /// An IAM Identity Center user.
    IdentityCenterUser,
    /// Missing or unknown `userIdentity`.
    Unknown,
    /// A Google Cloud service account (`…@….gserviceaccount.com`).
    GcpServiceAccount,
    /// A Google account (a person or a group) acting on Google Cloud.
    GcpUser,
    /// A Microsoft Entra ID user (also the users of Microsoft 365 and Azure).
    EntraUser,
    /// An Entra ID application's service principal (a workload identity).
    ServicePrincipal,
    /// An Azure managed identity.
    ManagedIdentity,
}

impl IdentityKind {
    pub(super) fn from_type(s: &str) -> Self {
        match s {
            "IAMUser" => Self::IamUser,
            "AssumedRole" => Self::AssumedRole,
            "FederatedUser" => Self::FederatedUser,
            "Root" => Self::Root,
            "AWSService" => Self::AwsService,
            "AWSAccount" => Self::AwsAccount,
            "SAMLUser" => Self::SamlUser,
            "WebIdentityUser" => Self::WebIdentityUser,
            "IdentityCenterUser" => Self::IdentityCenterUser,
            _ => Self::Unknown,
        }
    }
}

/// The credential and identity behind one event, normalised (a view into the event,
/// see [`Event::identity`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Identity<'a> {
    /// Principal type.
    pub kind: Option<IdentityKind>,
    /// Stable key of the identity that baselines and alerts are grouped by: the IAM user
    /// ARN, the *role* ARN for role sessions (the session issuer), the federated-user
    /// ARN, the root ARN, or `service:<name>` / `account:<id>` / `principal:<id>`.
    pub principal: &'a str,
    /// `userIdentity.arn` as logged (a session ARN for roles).
    pub arn: Option<&'a str>,
    /// `userIdentity.accessKeyId` (`AKIA…` long-term, `ASIA…` temporary).
    pub access_key_id: Option<&'a str>,
    /// Account id of the principal.
    pub account_id: Option<&'a str>,
    /// Role session name (assumed roles) or federated user name.
    pub session_name: Option<&'a str>,
    /// `sessionContext.sessionIssuer.arn`: the role behind a role session, the IAM
    /// user behind a federation token.
    pub issuer: Option<&'a str>,
    /// `sessionContext.attributes.mfaAuthenticated == "true"`.
    pub mfa: bool,
    /// The session credentials came from the console (`sessionCredentialFromConsole`).
    pub console_session: bool,
    /// `userIdentity.invokedBy` (an AWS service acting for the principal).
    pub invoked_by: Option<&'a str>,
}

impl Identity<'_> {
    /// Whether the access key is a long-term IAM user key (`AKIA`).
    pub fn long_term_key(&self) -> bool {
        self.access_key_id.is_some_and(|k| k.starts_with("AKIA"))
    }
    /// Whether the session is an EC2 instance-profile session (session name = instance id).
    pub fn ec2_instance_session(&self) -> bool {
        self.kind == Some(IdentityKind::AssumedRole)
            && self.session_name.is_some_and(|s| {
                s.len() >= 10
                    && s.starts_with("i-")
                    && s[2..].bytes().all(|b| b.is_ascii_hexdigit())
            })
    }
}

/// Converts a role-session ARN (`arn:aws:sts::1:assumed-role/R/S`) to the role ARN
/// (`arn:aws:iam::1:role/R`) and the session name.
pub fn role_from_session_arn(arn: &str) -> Option<(String, String)> {
    let (partition, account, role, session) = session_arn_parts(arn)?;
    Some((
        format!("arn:{partition}:iam::{account}:role/{role}"),
        session.to_string(),
    ))
}

/// Partition, account, role name and session name of a role-session ARN.
pub(super) fn session_arn_parts(arn: &str) -> Option<(&str, &str, &str, &str)> {
    let rest = arn.strip_prefix("arn:")?;
    let mut parts = rest.splitn(5, ':');
    let partition = parts.next()?;
    let _service = parts.next()?;
    let _region = parts.next()?;
    let account = parts.next()?;
    let resource = parts.next()?;
    let r = resource.strip_prefix("assumed-role/")?;
    let (role, session) = r.split_once('/')?;
    Some((partition, account, role, session))
}

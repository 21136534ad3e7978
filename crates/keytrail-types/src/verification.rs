//! What a provider said about a found secret ([`Verification`]) and what a
//! live secret can reach ([`BlastRadius`]). Filled by `keytrail-verify`,
//! shown by every report format; part of the JSON output API.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The outcome of asking a secret's provider whether it works.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VerificationStatus {
    /// The provider accepted the secret.
    Live,
    /// The provider rejected it: revoked, deleted, expired or wrong.
    Invalid,
    /// No answer either way: network error, rate limit, timeout, provider
    /// error, an answer keytrail does not understand (`detail` says which).
    Unknown,
    /// A known honeytoken (canary): never sent anywhere; using it alerts its owner.
    Canary,
    /// Not checked: no verifier for the rule, a policy forbade it, or the
    /// secret could not be recovered (`detail` says which).
    Skipped,
}

impl VerificationStatus {
    /// The lowercase name used in every output format.
    pub fn as_str(self) -> &'static str {
        match self {
            VerificationStatus::Live => "live",
            VerificationStatus::Invalid => "invalid",
            VerificationStatus::Unknown => "unknown",
            VerificationStatus::Canary => "canary",
            VerificationStatus::Skipped => "skipped",
        }
    }
}

impl fmt::Display for VerificationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for VerificationStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "live" => Ok(VerificationStatus::Live),
            "invalid" => Ok(VerificationStatus::Invalid),
            "unknown" => Ok(VerificationStatus::Unknown),
            "canary" => Ok(VerificationStatus::Canary),
            "skipped" => Ok(VerificationStatus::Skipped),
            other => Err(format!(
                "unknown verification status `{other}` (expected live, invalid, unknown, canary or skipped)"
            )),
        }
    }
}

/// What the provider said about one secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    /// The outcome.
    pub status: VerificationStatus,
    /// When the provider was asked (RFC 3339 UTC); for a result taken from
    /// the verification cache, when it was first asked.
    pub checked_at: String,
    /// Verifier id (`github`, `aws.sts`), absent when none applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verifier: Option<String>,
    /// Why: the HTTP status, the provider's error, the timeout, the canary
    /// vendor. Never contains the secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Who the secret acts as, as the provider named it: an ARN, a login,
    /// a team, an account id. Name → value, in the provider's order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identity: Vec<(String, String)>,
}

/// How much a live secret can do, most severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Privilege {
    /// Everything (`*` on `*`, an owner or admin scope).
    Admin,
    /// Can grant itself more (IAM privilege-escalation paths).
    PrivilegeEscalation,
    /// Can read data: secrets, objects, repositories, customer records.
    DataAccess,
    /// Can change things, but none of the above.
    Write,
    /// Can only read metadata.
    ReadOnly,
    /// Authenticates but is allowed nothing.
    None,
    /// Could not be determined (`unknowns` says why).
    Unknown,
}

impl Privilege {
    /// The name used in every output format.
    pub fn as_str(self) -> &'static str {
        match self {
            Privilege::Admin => "admin",
            Privilege::PrivilegeEscalation => "privilege-escalation",
            Privilege::DataAccess => "data-access",
            Privilege::Write => "write",
            Privilege::ReadOnly => "read-only",
            Privilege::None => "none",
            Privilege::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Privilege {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a live secret can reach (`--analyze`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlastRadius {
    /// The most severe privilege class found.
    pub privilege: Privilege,
    /// Scopes, permissions or roles the provider reported (`repo`,
    /// `chat:write`, `AdministratorAccess`), as the provider names them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// Reachable resources: organisations, projects, repositories,
    /// accounts, as `kind:name` (`org:acme`, `repo:acme/infra`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    /// Facts behind the classification (`policy AdministratorAccess allows * on *`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<String>,
    /// What could not be determined, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unknowns: Vec<String>,
}

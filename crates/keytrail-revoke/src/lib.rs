//! Taking a credential away: revocation through each provider's own API
//! (AWS access keys with the operator's credentials; GitHub, GitLab, Slack,
//! npm, Vault and Doppler tokens), rotation of AWS access keys in the secret
//! store that holds them (Secrets Manager, SSM Parameter Store) with a
//! journal that makes an interrupted rotation resumable, runbooks (data) for
//! the providers without a revocation API, and the audit log every action
//! (dry run or real) is appended to.
//!
//! Everything is a dry run until the caller says otherwise: a plan lists
//! exactly the requests that would be sent, and the same plan is executed
//! with `--yes`. A secret is held as [`keytrail_types::Secret`] and only
//! exposed to build the request to its own provider.

pub mod audit;
pub mod runbook;
pub mod stored;
pub mod time;
pub mod token;

#[cfg(feature = "aws")]
pub mod aws;
pub mod journal;

/// Whether an action is only described or carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Describe what would be done; send nothing that changes anything.
    DryRun,
    /// Act.
    Act,
}

impl Mode {
    /// `Act` when `yes`, else `DryRun`.
    pub fn from_yes(yes: bool) -> Self {
        if yes { Mode::Act } else { Mode::DryRun }
    }

    /// Whether this is a dry run.
    pub fn is_dry_run(self) -> bool {
        self == Mode::DryRun
    }
}

//! The audit log: one JSON line per action, dry run or real, appended to a
//! file (default `$XDG_STATE_HOME/keytrail/audit.jsonl`, else
//! `~/.local/state/keytrail/audit.jsonl`). Each line says who acted (the OS
//! user and, where the provider tells it, the operator's identity such as
//! the caller ARN), what was done to which target (never a secret: token
//! targets are redacted and fingerprinted), when, and the result.
//!
//! The log is opened before anything is sent, so an action that cannot be
//! audited is never taken. Lines are written whole with one `write` on a
//! file opened for appending, so concurrent runs interleave lines, never
//! bytes. The format is documented in docs/output.md.

use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The result of one audited action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Dry run: the action would be taken.
    Planned,
    /// The action was carried out and the provider confirmed it.
    Succeeded,
    /// The action was attempted and failed (see `detail`).
    Failed,
    /// The action was not needed or not attempted (see `detail`).
    Skipped,
}

/// Who acted.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Operator {
    /// The local user running keytrail (`$USER`/`$LOGNAME`).
    pub os_user: String,
    /// The identity the provider reports for the operator's own credentials
    /// (an ARN for AWS), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
}

impl Operator {
    /// The OS user, without a provider identity.
    pub fn local() -> Self {
        let os_user = ["USER", "LOGNAME", "USERNAME"]
            .iter()
            .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
            .unwrap_or_else(|| "unknown".into());
        Operator {
            os_user,
            identity: None,
        }
    }
}

/// One line of the audit log.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    /// When the action ended (RFC 3339, UTC, milliseconds).
    pub time: String,
    /// Identifies the keytrail run the action belongs to (shared by the
    /// lines of one `revoke` or `rotate`).
    pub run_id: String,
    /// Who acted.
    pub operator: Operator,
    /// `revoke` or `rotate`.
    pub command: String,
    /// The provider (`aws`, `github`, `gitlab`, …).
    pub provider: String,
    /// What was done (`deactivate-access-key`, `revoke-token`, …).
    pub action: String,
    /// What it was done to: an access key id, a user, a secret store entry,
    /// or a redacted token.
    pub target: String,
    /// `dry-run` or `act`.
    pub mode: crate::Mode,
    /// The result.
    pub result: Outcome,
    /// The provider's answer or the error, when there is something to say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// An open audit log.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    file: std::fs::File,
    run_id: String,
    operator: Operator,
    command: String,
}

/// The default audit log path.
pub fn default_path() -> Option<PathBuf> {
    let state = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".local/state"))
        })?;
    Some(state.join("keytrail").join("audit.jsonl"))
}

impl AuditLog {
    /// Opens (creating it and its folder, owner-only) the log at `path` for
    /// one run of `command`.
    pub fn open(path: &Path, command: &str) -> std::io::Result<AuditLog> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut opts = std::fs::OpenOptions::new();
        opts.append(true).create(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let file = opts.open(path)?;
        let run_id = format!("{}-{}", crate::time::now_unix(), std::process::id());
        Ok(AuditLog {
            path: path.to_path_buf(),
            file,
            run_id,
            operator: Operator::local(),
            command: command.to_string(),
        })
    }

    /// The log's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sets the operator identity the provider reported.
    pub fn set_identity(&mut self, identity: Option<String>) {
        self.operator.identity = identity;
    }

    /// Appends one record. An error here is an error of the whole run: the
    /// caller stops before its next action.
    pub fn record(
        &mut self,
        provider: &str,
        action: &str,
        target: &str,
        mode: crate::Mode,
        result: Outcome,
        detail: Option<String>,
    ) -> std::io::Result<()> {
        let rec = Record {
            time: crate::time::now_rfc3339(),
            run_id: self.run_id.clone(),
            operator: self.operator.clone(),
            command: self.command.clone(),
            provider: provider.to_string(),
            action: action.to_string(),
            target: target.to_string(),
            mode,
            result,
            detail,
        };
        let mut line = serde_json::to_string(&rec).map_err(std::io::Error::other)?;
        line.push('\n');
        self.file.write_all(line.as_bytes())?;
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_one_json_line_per_record_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/audit.jsonl");
        let mut log = AuditLog::open(&path, "revoke").unwrap();
        log.set_identity(Some("arn:aws:iam::123456789012:user/ops".into()));
        log.record(
            "aws",
            "deactivate-access-key",
            "AKIA0000",
            crate::Mode::DryRun,
            Outcome::Planned,
            None,
        )
        .unwrap();
        let mut log = AuditLog::open(&path, "revoke").unwrap();
        log.record(
            "github",
            "revoke-token",
            "ghp_…",
            crate::Mode::Act,
            Outcome::Failed,
            Some("HTTP 500".into()),
        )
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[0]["operator"]["identity"],
            "arn:aws:iam::123456789012:user/ops"
        );
        assert_eq!(lines[0]["mode"], "dry-run");
        assert_eq!(lines[0]["result"], "planned");
        assert_eq!(lines[1]["result"], "failed");
        assert_eq!(lines[1]["detail"], "HTTP 500");
        assert!(lines[1]["operator"].get("identity").is_none());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "audit log readable by others: {mode:o}");
        }
    }
}

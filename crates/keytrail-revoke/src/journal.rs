//! The journal of one AWS key rotation: a JSON file per rotated key
//! (default `$XDG_STATE_HOME/keytrail/rotations/<ACCESS_KEY_ID>.json`)
//! rewritten atomically after every completed step, so a rotation that is
//! interrupted (crash, lost network, Ctrl-C) is resumed from where it
//! stopped with `keytrail rotate aws-key --resume`, and the deletion of the
//! old key after its grace period is done by a later `--resume`.
//!
//! It records ids, versions and times, never a secret: the new secret lives
//! only in the secret store, and a resumed rotation reads it from there.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where the rotated key is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum StoreRef {
    /// A Secrets Manager secret (name or ARN).
    SecretsManager {
        /// `--secret-id`.
        secret_id: String,
    },
    /// An SSM parameter (SecureString).
    SsmParameter {
        /// `--ssm-parameter`.
        name: String,
    },
    /// Nowhere keytrail can write: the new key is only created and verified
    /// by the caller (not supported for rotation; kept for completeness of
    /// old journals).
    None,
}

impl std::fmt::Display for StoreRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreRef::SecretsManager { secret_id } => {
                write!(f, "Secrets Manager secret `{secret_id}`")
            }
            StoreRef::SsmParameter { name } => write!(f, "SSM parameter `{name}`"),
            StoreRef::None => write!(f, "no secret store"),
        }
    }
}

/// The steps of a rotation, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// The journal exists; the store's value was read and recognised.
    Started,
    /// An inactive spare key was deleted to make room (`--delete-inactive-spare`).
    SpareDeleted,
    /// The new key was created (its secret exists only in memory until stored).
    Created,
    /// The new key was written to the store.
    Stored,
    /// STS accepted the new key.
    Verified,
    /// The old key was deactivated.
    Deactivated,
    /// The old key was deleted: the rotation is complete.
    Deleted,
}

/// Where a rotation stands overall.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// Steps remain before the old key is unusable.
    InProgress,
    /// The old key is inactive; it is deleted after `delete_after`.
    AwaitingDelete,
    /// Every step is done.
    Done,
    /// A step failed and the earlier ones were undone.
    RolledBack,
    /// A step failed and undoing failed too: see `error`; act by hand.
    Failed,
}

/// One completed step.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepRecord {
    /// The step.
    pub step: Step,
    /// When it completed (RFC 3339).
    pub at: String,
    /// What it did (ids, versions), when useful.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The journal of one rotation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Journal {
    /// Format version (1).
    pub version: u32,
    /// The key being replaced.
    pub old_key_id: String,
    /// The IAM user owning it.
    pub user: String,
    /// Where the key is stored.
    pub store: StoreRef,
    /// Grace period before the old key is deleted, in seconds.
    pub grace_secs: u64,
    /// Whether an inactive spare key may be deleted to make room.
    #[serde(default)]
    pub delete_inactive_spare: bool,
    /// When the rotation started (RFC 3339) and as a Unix time.
    pub started_at: String,
    /// Unix milliseconds of `started_at` (the time to revoke is counted
    /// from here, across resumptions).
    pub started_unix_ms: i64,
    /// The store's version before the rotation (Secrets Manager version id
    /// or SSM parameter version), restored on rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_version: Option<String>,
    /// The new key's id, once created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_key_id: Option<String>,
    /// The store's version holding the new key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored_version: Option<String>,
    /// Unix seconds after which the old key is deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_after_unix: Option<i64>,
    /// Overall state.
    pub state: State,
    /// Completed steps, in order.
    pub steps: Vec<StepRecord>,
    /// The error that stopped the rotation, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Journal {
    /// The last completed step.
    pub fn last_step(&self) -> Option<Step> {
        self.steps.last().map(|s| s.step)
    }

    /// Whether `step` was completed.
    pub fn done(&self, step: Step) -> bool {
        self.steps.iter().any(|s| s.step == step)
    }

    /// Records a completed step.
    pub fn push(&mut self, step: Step, detail: Option<String>) {
        self.steps.push(StepRecord {
            step,
            at: crate::time::now_rfc3339(),
            detail,
        });
    }
}

/// The default folder of rotation journals.
pub fn default_dir() -> Option<PathBuf> {
    crate::audit::default_path().and_then(|p| p.parent().map(|d| d.join("rotations")))
}

/// The journal file of the rotation of `key_id` in `dir`.
pub fn path_for(dir: &Path, key_id: &str) -> PathBuf {
    dir.join(format!("{key_id}.json"))
}

/// Reads a journal; `Ok(None)` when there is none.
pub fn load(path: &Path) -> Result<Option<Journal>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read journal `{}`: {e}", path.display())),
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| format!("journal `{}` is not valid: {e}", path.display()))
}

/// Writes `journal` to `path` atomically (a temporary file renamed over it,
/// synced), owner-only.
pub fn save(path: &Path, journal: &Journal) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("cannot write journal `{}`: {e}", path.display());
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(fail)?;
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("journal")
    ));
    {
        use std::io::Write;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp).map_err(fail)?;
        let text =
            serde_json::to_string_pretty(journal).map_err(|e| fail(std::io::Error::other(e)))?;
        f.write_all(text.as_bytes()).map_err(fail)?;
        f.write_all(b"\n").map_err(fail)?;
        f.sync_all().map_err(fail)?;
    }
    std::fs::rename(&tmp, path).map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_and_loads_without_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_for(dir.path(), "AKIAOLDOLDOLDOLDOLD1");
        assert!(load(&path).unwrap().is_none());
        let mut j = Journal {
            version: 1,
            old_key_id: "AKIAOLDOLDOLDOLDOLD1".into(),
            user: "app".into(),
            store: StoreRef::SecretsManager {
                secret_id: "app/creds".into(),
            },
            grace_secs: 0,
            delete_inactive_spare: false,
            started_at: crate::time::now_rfc3339(),
            started_unix_ms: 0,
            previous_version: Some("v1".into()),
            new_key_id: None,
            stored_version: None,
            delete_after_unix: None,
            state: State::InProgress,
            steps: vec![],
            error: None,
        };
        j.push(Step::Started, None);
        j.push(Step::Created, Some("AKIANEW".into()));
        save(&path, &j).unwrap();
        let back = load(&path).unwrap().unwrap();
        assert_eq!(back.last_step(), Some(Step::Created));
        assert!(back.done(Step::Started) && !back.done(Step::Stored));
        assert_eq!(back.store, j.store);
        std::fs::write(&path, "{").unwrap();
        assert!(load(&path).unwrap_err().contains("not valid"));
    }
}

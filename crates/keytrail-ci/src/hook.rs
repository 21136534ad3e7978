//! `keytrail hook install` / `uninstall`: a git pre-commit hook that runs
//! `keytrail scan --staged` and blocks commits that add secrets.
//!
//! The hooks directory is asked from git itself (`git rev-parse
//! --git-path hooks`), which honours `core.hooksPath` and linked
//! worktrees. A hook keytrail wrote carries [`MARKER`]. Another existing
//! `pre-commit` is chained: it moves to [`CHAINED`] and keytrail's hook runs
//! it first (same arguments and stdin; its failure blocks the commit). With
//! `force` it is replaced instead and kept as [`BACKUP`]. Uninstalling
//! removes keytrail's hook and puts a chained or backed-up hook back.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

/// First-lines marker identifying a hook written by keytrail.
pub const MARKER: &str = "# keytrail-hook: pre-commit v1";
/// Where a pre-existing hook goes when keytrail's hook chains it.
pub const CHAINED: &str = "pre-commit.keytrail-chained";
/// Where a pre-existing hook goes when `--force` replaces it.
pub const BACKUP: &str = "pre-commit.keytrail-backup";

/// What [`install`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Installed {
    /// Wrote a new hook.
    Created(PathBuf),
    /// Replaced an earlier keytrail hook.
    Updated(PathBuf),
    /// Installed in front of an existing hook, which it runs first.
    Chained {
        /// The hook.
        hook: PathBuf,
        /// Where the existing hook was moved; keytrail's hook runs it.
        chained: PathBuf,
    },
    /// Replaced a foreign hook (with `force`), kept at `backup`.
    Replaced {
        /// The hook.
        hook: PathBuf,
        /// Where the previous hook was moved.
        backup: PathBuf,
    },
}

/// Errors of [`install`].
#[derive(Debug)]
pub enum HookError {
    /// `git` failed or `repo` is not inside a git repository.
    NotARepository(String),
    /// The pre-commit hook was not written by keytrail (uninstall leaves it).
    ForeignHook(PathBuf),
    /// A chained hook is already there: chaining another would lose one.
    AlreadyChained(PathBuf),
    /// Writing the hook failed.
    Io(PathBuf, io::Error),
}

impl std::fmt::Display for HookError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HookError::NotARepository(m) => write!(f, "not a git repository: {m}"),
            HookError::ForeignHook(p) => write!(
                f,
                "`{}` was not written by keytrail; left alone",
                p.display()
            ),
            HookError::AlreadyChained(p) => write!(
                f,
                "`{}` already holds a chained hook; move it away first, or pass --force to replace the current hook",
                p.display()
            ),
            HookError::Io(p, e) => write!(f, "cannot write `{}`: {e}", p.display()),
        }
    }
}

impl std::error::Error for HookError {}

/// The directory git runs hooks from for the repository at `repo`.
pub fn hooks_dir(repo: &Path) -> Result<PathBuf, HookError> {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["rev-parse", "--path-format=absolute", "--git-path", "hooks"])
        .output()
        .map_err(|e| HookError::NotARepository(format!("cannot run git: {e}")))?;
    if !out.status.success() {
        return Err(HookError::NotARepository(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    let p = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let p = PathBuf::from(p);
    Ok(if p.is_absolute() { p } else { repo.join(p) })
}

/// The hook script. `keytrail` is the command to run (an absolute path
/// to the installing binary, falling back to `keytrail` on PATH).
pub fn script(keytrail: &str) -> String {
    let quoted = keytrail.replace('\'', r"'\''");
    format!(
        r#"#!/bin/sh
{MARKER}
# Installed by `keytrail hook install`. Blocks commits that add secrets.
# To commit anyway (after checking it is not a real secret):
#   git commit --no-verify
# or mark the line with a `keytrail:allow` comment, or record the finding
# in a baseline (`keytrail baseline create`) and pass it with KEYTRAIL_ARGS.
# A hook that was here before keytrail's runs first (see `keytrail hook
# install`); its failure blocks the commit as it did before.
CHAINED="$(dirname "$0")/{CHAINED}"
if [ -f "$CHAINED" ]; then
  if [ -x "$CHAINED" ]; then "$CHAINED" "$@"; else sh "$CHAINED" "$@"; fi
  chained_status=$?
  if [ "$chained_status" -ne 0 ]; then
    exit "$chained_status"
  fi
fi
KEYTRAIL='{quoted}'
if [ ! -x "$KEYTRAIL" ]; then
  KEYTRAIL=$(command -v keytrail 2>/dev/null)
fi
if [ -z "$KEYTRAIL" ]; then
  echo "keytrail pre-commit hook: keytrail not found; commit not checked" >&2
  exit 0
fi
# KEYTRAIL_ARGS: extra scan flags, e.g. "--baseline .keytrail-baseline.json".
# shellcheck disable=SC2086
"$KEYTRAIL" scan --staged $KEYTRAIL_ARGS
status=$?
if [ "$status" -eq 1 ]; then
  echo "" >&2
  echo "keytrail: commit blocked: the staged changes contain the secret(s) above." >&2
  echo "  Remove the secret and rotate it, or, if it is not a real secret:" >&2
  echo "  - add a 'keytrail:allow' comment on its line, or" >&2
  echo "  - record it in a baseline: keytrail baseline create . -o .keytrail-baseline.json" >&2
  echo "    and export KEYTRAIL_ARGS='--baseline .keytrail-baseline.json', or" >&2
  echo "  - skip this check once: git commit --no-verify" >&2
  exit 1
elif [ "$status" -ne 0 ]; then
  echo "keytrail: the secret scan failed (exit $status); commit blocked. Skip once with: git commit --no-verify" >&2
  exit "$status"
fi
exit 0
"#
    )
}

/// Install the pre-commit hook for the repository at `repo`.
pub fn install(repo: &Path, keytrail: &str, force: bool) -> Result<Installed, HookError> {
    let dir = hooks_dir(repo)?;
    std::fs::create_dir_all(&dir).map_err(|e| HookError::Io(dir.clone(), e))?;
    let hook = dir.join("pre-commit");
    let mut result = Installed::Created(hook.clone());
    if let Ok(existing) = std::fs::read_to_string(&hook).or_else(|e| {
        if hook.exists() {
            Ok(String::from_utf8_lossy(&std::fs::read(&hook).map_err(|_| e)?).into_owned())
        } else {
            Err(e)
        }
    }) {
        if is_keytrail_hook(&existing) {
            result = Installed::Updated(hook.clone());
        } else if !force {
            let chained = dir.join(CHAINED);
            if chained.exists() {
                return Err(HookError::AlreadyChained(chained));
            }
            std::fs::rename(&hook, &chained).map_err(|e| HookError::Io(chained.clone(), e))?;
            result = Installed::Chained {
                hook: hook.clone(),
                chained,
            };
        } else {
            let backup = dir.join(BACKUP);
            std::fs::rename(&hook, &backup).map_err(|e| HookError::Io(backup.clone(), e))?;
            result = Installed::Replaced {
                hook: hook.clone(),
                backup,
            };
        }
    }
    std::fs::write(&hook, script(keytrail)).map_err(|e| HookError::Io(hook.clone(), e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| HookError::Io(hook.clone(), e))?;
    }
    Ok(result)
}

fn is_keytrail_hook(text: &str) -> bool {
    text.lines().take(3).any(|l| l.trim() == MARKER)
}

/// What [`uninstall`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uninstalled {
    /// Removed keytrail's hook; nothing was there before it.
    Removed(PathBuf),
    /// Removed keytrail's hook and put back the hook it had chained or
    /// replaced (moved from `from`).
    Restored {
        /// The hook path, now holding the earlier hook again.
        hook: PathBuf,
        /// Where the earlier hook was kept.
        from: PathBuf,
    },
    /// No pre-commit hook was installed.
    NotInstalled(PathBuf),
}

/// Remove keytrail's pre-commit hook from the repository at `repo`, and
/// put back a hook it chained (or, after `--force`, backed up). A hook
/// keytrail did not write is left alone ([`HookError::ForeignHook`]).
pub fn uninstall(repo: &Path) -> Result<Uninstalled, HookError> {
    let dir = hooks_dir(repo)?;
    let hook = dir.join("pre-commit");
    let existing = match std::fs::read(&hook) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(Uninstalled::NotInstalled(hook));
        }
        Err(e) => return Err(HookError::Io(hook, e)),
    };
    if !is_keytrail_hook(&existing) {
        return Err(HookError::ForeignHook(hook));
    }
    std::fs::remove_file(&hook).map_err(|e| HookError::Io(hook.clone(), e))?;
    for earlier in [dir.join(CHAINED), dir.join(BACKUP)] {
        if earlier.exists() {
            std::fs::rename(&earlier, &hook).map_err(|e| HookError::Io(hook.clone(), e))?;
            return Ok(Uninstalled::Restored {
                hook,
                from: earlier,
            });
        }
    }
    Ok(Uninstalled::Removed(hook))
}

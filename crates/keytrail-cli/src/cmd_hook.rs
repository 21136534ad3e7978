//! `keytrail hook install` / `uninstall`: the git pre-commit hook that runs
//! `keytrail scan --staged` and blocks commits that add secrets.

use crate::ExitStatus;
use clap::{Args, Subcommand};
use keytrail_ci::hook::{self, Installed, Uninstalled};
use std::path::PathBuf;

/// `keytrail hook ...`.
#[derive(Debug, Subcommand)]
pub enum HookCommand {
    /// Install a pre-commit hook running `keytrail scan --staged`.
    ///
    /// The hook goes where git runs hooks from (core.hooksPath is
    /// honoured). An existing pre-commit hook not written by keytrail is
    /// chained: it is kept as pre-commit.keytrail-chained and run first
    /// (its failure still blocks the commit). --force replaces it instead
    /// (kept as pre-commit.keytrail-backup).
    #[command(after_help = "To commit past the hook once: git commit --no-verify\n\
To allow one finding for good: a `keytrail:allow` comment on its line, or a baseline \
(export KEYTRAIL_ARGS='--baseline .keytrail-baseline.json').\n\n\
Examples:\n  keytrail hook install\n  keytrail hook install --force --repo ../other-repo")]
    Install(HookInstallArgs),
    /// Remove keytrail's pre-commit hook, putting back the hook it chained or replaced.
    ///
    /// A pre-commit hook keytrail did not write is left alone (exit 2).
    #[command(
        after_help = "Examples:\n  keytrail hook uninstall\n  keytrail hook uninstall --repo ../other-repo"
    )]
    Uninstall(HookUninstallArgs),
}

/// `keytrail hook uninstall`.
#[derive(Debug, Args)]
pub struct HookUninstallArgs {
    /// The repository (any directory inside it).
    ///
    /// Example: `--repo ../service`
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub repo: PathBuf,
}

/// `keytrail hook install`.
#[derive(Debug, Args)]
pub struct HookInstallArgs {
    /// The repository (any directory inside it).
    ///
    /// Example: `--repo ../service`
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub repo: PathBuf,

    /// Replace an existing pre-commit hook that keytrail did not write
    /// (kept as pre-commit.keytrail-backup) instead of chaining it.
    ///
    /// Example: `keytrail hook install --force`
    #[arg(long)]
    pub force: bool,
}

/// Run `keytrail hook ...`.
pub fn run(cmd: &HookCommand) -> anyhow::Result<ExitStatus> {
    match cmd {
        HookCommand::Install(a) => {
            let exe = std::env::current_exe()
                .ok()
                .and_then(|p| p.to_str().map(String::from))
                .unwrap_or_else(|| "keytrail".to_string());
            match hook::install(&a.repo, &exe, a.force)? {
                Installed::Created(p) => eprintln!("installed pre-commit hook at {}", p.display()),
                Installed::Updated(p) => eprintln!("updated pre-commit hook at {}", p.display()),
                Installed::Chained { hook, chained } => eprintln!(
                    "installed pre-commit hook at {}; the existing hook moved to {} and runs first",
                    hook.display(),
                    chained.display()
                ),
                Installed::Replaced { hook, backup } => eprintln!(
                    "installed pre-commit hook at {} (previous hook kept at {})",
                    hook.display(),
                    backup.display()
                ),
            }
            Ok(ExitStatus::Clean)
        }
        HookCommand::Uninstall(a) => {
            match hook::uninstall(&a.repo)? {
                Uninstalled::Removed(p) => eprintln!("removed pre-commit hook {}", p.display()),
                Uninstalled::Restored { hook, from } => eprintln!(
                    "removed keytrail's pre-commit hook; {} is back at {}",
                    from.display(),
                    hook.display()
                ),
                Uninstalled::NotInstalled(p) => {
                    eprintln!("no pre-commit hook at {}; nothing to do", p.display())
                }
            }
            Ok(ExitStatus::Clean)
        }
    }
}

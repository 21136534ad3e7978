//! `keytrail hook install`: install the git pre-commit hook that runs
//! `keytrail scan --staged` and blocks commits that add secrets.

use crate::ExitStatus;
use clap::{Args, Subcommand};
use keytrail_ci::hook::{self, Installed};
use std::path::PathBuf;

/// `keytrail hook ...`.
#[derive(Debug, Subcommand)]
pub enum HookCommand {
    /// Install a pre-commit hook running `keytrail scan --staged`.
    ///
    /// The hook goes where git runs hooks from (core.hooksPath is
    /// honoured). An existing pre-commit hook not written by keytrail is
    /// left alone unless --force (then it is kept as
    /// pre-commit.keytrail-backup).
    #[command(after_help = "To commit past the hook once: git commit --no-verify\n\
To allow one finding for good: a `keytrail:allow` comment on its line, or a baseline \
(export KEYTRAIL_ARGS='--baseline .keytrail-baseline.json').\n\n\
Examples:\n  keytrail hook install\n  keytrail hook install --force --repo ../other-repo")]
    Install(HookInstallArgs),
}

/// `keytrail hook install`.
#[derive(Debug, Args)]
pub struct HookInstallArgs {
    /// The repository (any directory inside it).
    ///
    /// Example: `--repo ../service`
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub repo: PathBuf,

    /// Replace an existing pre-commit hook that keytrail did not write.
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
                Installed::Replaced { hook, backup } => eprintln!(
                    "installed pre-commit hook at {} (previous hook kept at {})",
                    hook.display(),
                    backup.display()
                ),
            }
            Ok(ExitStatus::Clean)
        }
    }
}

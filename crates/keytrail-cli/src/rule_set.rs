//! Loading the rules a command runs with: the builtins plus `--rules DIR`s.

use anyhow::{Context, bail};
use keytrail_rules::Rule;
use keytrail_types::Confidence;
use std::path::PathBuf;

/// Builtin rules plus the rules in `dirs`.
///
/// A builtin diagnostic is a keytrail bug and only warns; a problem in a
/// user rule file is an error (exit 2), because silently dropping a rule
/// would silently miss secrets. Each diagnostic is printed before failing.
pub fn load(dirs: &[PathBuf]) -> anyhow::Result<Vec<Rule>> {
    let (mut rules, builtin_diags) = keytrail_rules::builtin();
    for d in &builtin_diags {
        eprintln!("warning: {d}");
    }
    let mut user_errors = 0;
    for dir in dirs {
        if !dir.exists() {
            bail!("rules directory `{}` does not exist", dir.display());
        }
        let (r, diags) = keytrail_rules::load_dir(dir);
        for d in &diags {
            eprintln!("error: {d}");
        }
        user_errors += diags.iter().filter(|d| d.is_error).count();
        rules.extend(r);
    }
    // A user rule may not shadow a builtin (or another user rule): ids are
    // the stable key of findings, fingerprints and baselines.
    let mut seen = std::collections::HashSet::new();
    for r in &rules {
        if !seen.insert(r.id().to_string()) {
            eprintln!("error: {}: duplicate rule id `{}`", r.origin, r.id());
            user_errors += 1;
        }
    }
    if user_errors > 0 {
        return Err(anyhow::anyhow!(
            "{user_errors} problem(s) in rule files; `keytrail rules check DIR` shows them with examples"
        ))
        .context("cannot load rules");
    }
    Ok(rules)
}

/// Keep only rules at least as confident as `min`.
pub fn at_least(rules: Vec<Rule>, min: Confidence) -> Vec<Rule> {
    rules
        .into_iter()
        .filter(|r| r.syntax.confidence >= min)
        .collect()
}

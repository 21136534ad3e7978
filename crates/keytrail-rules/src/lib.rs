//! Rule syntax, loading and structural linting for keytrail's secret rules.
//!
//! Rules are data: YAML files, one per provider, under `data/secrets/`,
//! embedded at build time. Users add their own with `--rules DIR`. This
//! crate parses them into [`Rule`]s and reports problems as
//! [`Diagnostic`]s naming file and line; loading never fails wholesale.
//! Compiling patterns and running the examples is the scan engine's job
//! (`keytrail_scan::check_rules`), since only it knows the matcher.

mod secret_rule;

pub use secret_rule::{Rule, RuleFileSyntax, RuleSyntax, load_dir, load_str};

use include_dir::{Dir, include_dir};
use keytrail_types::Diagnostic;

static BUILTIN_SECRETS: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/data/secrets");

/// The builtin secret rules, in file-name order, with any diagnostics.
///
/// Diagnostics here are bugs in keytrail; a test keeps the list empty.
pub fn builtin() -> (Vec<Rule>, Vec<Diagnostic>) {
    let mut files: Vec<_> = BUILTIN_SECRETS
        .files()
        .filter(|f| {
            matches!(
                f.path().extension().and_then(|e| e.to_str()),
                Some("yml" | "yaml")
            )
        })
        .collect();
    files.sort_by_key(|f| f.path());
    let mut rules = Vec::new();
    let mut diags = Vec::new();
    for f in files {
        let name = format!("builtin:{}", f.path().display());
        let text = String::from_utf8_lossy(f.contents());
        let (r, d) = load_str(&name, &text);
        rules.extend(r);
        diags.extend(d);
    }
    secret_rule::check_unique_ids(&rules, &mut diags);
    (rules, diags)
}

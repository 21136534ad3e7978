//! Rule syntax, loading and structural linting for keytrail's secret rules,
//! and the embedded detection content of `keytrail detect`.
//!
//! Rules are data: YAML files, one per provider, under `data/secrets/`,
//! embedded at build time. Users add their own with `--rules DIR`. This
//! crate parses them into [`Rule`]s and reports problems as
//! [`Diagnostic`]s naming file and line; loading never fails wholesale.
//! Compiling patterns and running the examples is the scan engine's job
//! (`keytrail_scan::check_rules`), since only it knows the matcher.
//!
//! The SigmaHQ cloud rules (`data/sigma/`, Detection Rule License 1.1) and
//! keytrail's default profile for them (`data/sigma-profile.yml`) are
//! embedded too, as text: [`builtin_sigma`], [`SIGMA_PROFILE`]. Compiling
//! Sigma is `keytrail_detect::sigma`'s job.

mod secret_rule;

pub use secret_rule::{Rule, RuleFileSyntax, RuleSyntax, load_dir, load_str};

use include_dir::{Dir, include_dir};
use keytrail_types::Diagnostic;

static BUILTIN_SECRETS: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/data/secrets");
static BUILTIN_SIGMA: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/data/sigma");
static BUILTIN_VERIFIERS: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/data/verifiers");

/// The embedded verifier definitions (`data/verifiers/<provider>.yml`), as
/// (file name, text), sorted by name. Their syntax and semantics belong to
/// `keytrail-verify`, which parses them; they live here, next to the rules
/// whose findings they check.
pub fn builtin_verifiers() -> Vec<(&'static str, &'static str)> {
    let mut v: Vec<(&'static str, &'static str)> = BUILTIN_VERIFIERS
        .files()
        .filter_map(|f| Some((f.path().to_str()?, f.contents_utf8()?)))
        .collect();
    v.sort();
    v
}

/// keytrail's default profile for the embedded SigmaHQ rules: which run, at
/// which level, and why (`data/sigma-profile.yml`).
pub const SIGMA_PROFILE: &str = include_str!("../data/sigma-profile.yml");

/// The Detection Rule License 1.1 of the embedded SigmaHQ rules.
pub const SIGMA_LICENSE: &str = include_str!("../data/sigma/LICENSE.Detection.Rules.md");

/// The SigmaHQ commit the embedded rules were copied from.
pub const SIGMA_COMMIT: &str = "8eaafff1f2845a696050e05e72ba1140ee190698";

/// One embedded Sigma rule file.
#[derive(Debug, Clone, Copy)]
pub struct SigmaFile {
    /// Path under `data/sigma/`, e.g. `aws/cloudtrail/aws_cloudtrail_disable_logging.yml`.
    pub path: &'static str,
    /// The YAML text.
    pub text: &'static str,
}

/// The embedded SigmaHQ rule files under `data/sigma/<folder>` (`aws`,
/// `azure`, `gcp`, `m365`; `""` for all), sorted by path.
pub fn builtin_sigma(folder: &str) -> Vec<SigmaFile> {
    fn walk(d: &'static Dir<'static>, out: &mut Vec<SigmaFile>) {
        for f in d.files() {
            if matches!(
                f.path().extension().and_then(|e| e.to_str()),
                Some("yml" | "yaml")
            ) && let (Some(path), Some(text)) = (f.path().to_str(), f.contents_utf8())
            {
                out.push(SigmaFile { path, text });
            }
        }
        for sub in d.dirs() {
            walk(sub, out);
        }
    }
    let mut out = Vec::new();
    let root: &'static Dir<'static> = &BUILTIN_SIGMA;
    let start = if folder.is_empty() {
        Some(root)
    } else {
        root.get_dir(folder)
    };
    if let Some(d) = start {
        walk(d, &mut out);
    }
    out.sort_by_key(|f| f.path);
    out
}

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

#[cfg(test)]
mod tests {
    #[test]
    fn the_sigmahq_cloud_rules_are_embedded_with_their_licence() {
        let aws = super::builtin_sigma("aws");
        assert_eq!(aws.len(), 57);
        assert!(aws.iter().all(|f| f.path.starts_with("aws/cloudtrail/")));
        assert_eq!(super::builtin_sigma("").len(), 225);
        for cloud in ["azure", "gcp", "m365"] {
            assert!(!super::builtin_sigma(cloud).is_empty(), "{cloud}");
        }
        assert!(super::SIGMA_LICENSE.starts_with("# Detection Rule License (DRL) 1.1"));
        assert!(super::builtin_sigma("no-such-cloud").is_empty());
    }
}

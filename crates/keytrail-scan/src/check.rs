//! `check_rules`: compile each rule alone and run its examples (macros
//! expanded) and negative examples through the full engine, prefilter,
//! validators, filters and all. Used by `keytrail rules check` and by the
//! builtin-rules test.

use crate::engine::Scanner;
use crate::fake::expand_macros;
use keytrail_rules::Rule;
use keytrail_types::{Diagnostic, Origin};
use rand::SeedableRng;
use sha2::{Digest, Sha256};

/// Compile `rules` and run every example and negative example through the
/// engine. Returns one diagnostic per problem (empty = all good).
///
/// Checks, per rule: the pattern compiles and names a known validator;
/// there is at least one example and one negative example; every example
/// (after `<<fake:…>>` expansion) produces a finding of the rule, and the
/// keyword prefilter does not hide any match the bare regex finds; no
/// negative example produces a finding of the rule.
pub fn check_rules(rules: &[Rule]) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    for rule in rules {
        let (scanner, d) = Scanner::new(vec![rule.clone()]);
        diags.extend(d);
        if scanner.rules().is_empty() {
            continue;
        }
        let problem = |msg: String| {
            Diagnostic::error(
                "rule_check",
                &rule.origin,
                format!("rule `{}`: {msg}", rule.id()),
            )
        };
        if rule.syntax.examples.is_empty() {
            diags.push(problem("needs at least one example".to_string()));
        }
        if rule.syntax.negative_examples.is_empty() {
            diags.push(problem("needs at least one negative example".to_string()));
        }
        // Deterministic per rule, so a failure reproduces.
        let seed = Sha256::digest(rule.id().as_bytes());
        let mut rng = rand::rngs::StdRng::from_seed(seed.into());
        for (i, ex) in rule.syntax.examples.iter().enumerate() {
            let text = match expand_macros(ex, &mut rng) {
                Ok(t) => t,
                Err(e) => {
                    diags.push(problem(format!("example {}: {e}", i + 1)));
                    continue;
                }
            };
            let (path, text) = example_path(&text);
            let found = scanner.scan_bytes(path, &Origin::File, text.as_bytes());
            if found.is_empty() {
                let bare = scanner.find_matches_unfiltered(text.as_bytes());
                let why = if bare == 0 {
                    "the pattern does not match it"
                } else {
                    "the pattern matches, but a validator, filter or the keyword prefilter drops it"
                };
                diags.push(problem(format!(
                    "example {} produces no finding ({why}): {ex:?}",
                    i + 1
                )));
                continue;
            }
            let bare = scanner.find_matches_unfiltered(text.as_bytes());
            let windowed = scanner.find_matches_windowed_unfiltered(Some(path), text.as_bytes());
            if windowed < bare {
                diags.push(problem(format!(
                    "example {}: the keyword prefilter misses {} of {bare} regex matches (a keyword must lie inside the match or at most 256 bytes before it)",
                    i + 1,
                    bare - windowed
                )));
            }
        }
        for (i, ex) in rule.syntax.negative_examples.iter().enumerate() {
            let text = match expand_macros(ex, &mut rng) {
                Ok(t) => t,
                Err(e) => {
                    diags.push(problem(format!("negative example {}: {e}", i + 1)));
                    continue;
                }
            };
            let (path, text) = example_path(&text);
            if !scanner
                .scan_bytes(path, &Origin::File, text.as_bytes())
                .is_empty()
            {
                diags.push(problem(format!(
                    "negative example {} produces a finding: {ex:?}",
                    i + 1
                )));
            }
        }
    }
    diags
}

/// The file an example names with a first line `<<path:NAME>>` (for
/// rules limited by `paths`), and the example without that line; else
/// `rule-example` and the whole example.
pub fn example_path(text: &str) -> (&str, &str) {
    if let Some(rest) = text.strip_prefix("<<path:")
        && let Some((name, body)) = rest.split_once(">>")
    {
        return (name, body.strip_prefix('\n').unwrap_or(body));
    }
    ("rule-example", text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(yaml: &str) -> Vec<Rule> {
        let (r, d) = keytrail_rules::load_str("t.yml", yaml);
        assert!(d.is_empty(), "{d:?}");
        r
    }

    const GOOD: &str = r#"
rules:
  - id: t.gh
    name: T
    pattern: '\b(ghp_[A-Za-z0-9]{36})\b'
    keywords: [ghp_]
    confidence: high
    validate: github_crc32
    description: d
    remediation: r
    examples: ['TOKEN=<<fake:github_crc32:ghp_:36>>']
    negative_examples: ['TOKEN=ghp_R3tW9zLq0xVbN7kYp2sDfG4hJm8cQe1aUo5i']
"#;

    #[test]
    fn good_rule_passes() {
        assert_eq!(check_rules(&rules(GOOD)), vec![]);
    }

    /// (edit applied to GOOD, substring expected in a diagnostic)
    const BROKEN: &[(&str, &str, &str)] = &[
        (
            "validate: github_crc32",
            "validate: luhn",
            "unknown validator `luhn`",
        ),
        (
            "<<fake:github_crc32:ghp_:36>>",
            "ghp_R3tW9zLq0xVbN7kYp2sDfG4hJm8cQe1aUo5i",
            "example 1 produces no finding",
        ),
        (
            "TOKEN=ghp_R3tW9zLq0xVbN7kYp2sDfG4hJm8cQe1aUo5i",
            "<<fake:github_crc32:ghp_:36>>",
            "negative example 1 produces a finding",
        ),
        (
            "'TOKEN=<<fake:github_crc32:ghp_:36>>'",
            "'<<fake:nope:ghp_:36>>'",
            "unknown ALGO",
        ),
        (
            "'\\b(ghp_[A-Za-z0-9]{36})\\b'",
            "'\\b(ghp_[A-Za-z0-9]{36}'",
            "does not parse",
        ),
        (
            "'\\b(ghp_[A-Za-z0-9]{36})\\b'",
            "'\\bghp_[A-Za-z0-9]{36}\\b'",
            "capture group",
        ),
        (
            "keywords: [ghp_]",
            "keywords: [zzzz]",
            "keyword prefilter drops it",
        ),
    ];

    #[test]
    fn broken_rules_are_diagnosed() {
        for (from, to, want) in BROKEN {
            assert!(GOOD.contains(from), "{from}");
            let yaml = GOOD.replace(from, to);
            let diags = check_rules(&rules(&yaml));
            assert!(
                diags.iter().any(|d| d.message.contains(want)),
                "{to}: want {want:?}, got {diags:?}"
            );
        }
    }
}

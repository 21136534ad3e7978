//! Secret rule syntax (`RuleSyntax`, as written in YAML) and the checked
//! [`Rule`] the engine compiles.

use keytrail_types::{Confidence, Diagnostic, Severity};
use serde::Deserialize;
use std::collections::HashSet;
use std::path::Path;

/// A rule file: an optional provider name and a list of rules.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFileSyntax {
    /// Provider shown in reports (`GitHub`, `AWS`). Defaults to the file stem.
    #[serde(default)]
    pub provider: Option<String>,
    /// The rules.
    pub rules: Vec<serde_yaml_ng::Value>,
}

/// One rule as written in YAML.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSyntax {
    /// Stable dotted id, e.g. `github.pat.classic`. Never reuse or rename.
    pub id: String,
    /// Human name.
    pub name: String,
    /// Regular expression (Rust `regex` syntax, matched on bytes). The
    /// secret is the named group `secret`, or else capture group 1. Other
    /// named groups are reported as context (e.g. `id` for an AWS key id).
    pub pattern: String,
    /// Literal strings, matched case-insensitively, of which at least one
    /// must occur near a match. They drive the prefilter: every rule needs
    /// one, except a rule with `paths`, which may list none (`[]`: it then
    /// runs on the whole of every file its `paths` name).
    pub keywords: Vec<String>,
    /// File names the rule is limited to (`.pgpass`, `sftp-config.json`,
    /// `doctl/config.yaml`, `*.ppk`): each is matched, ASCII
    /// case-insensitively, against as many trailing components of the
    /// blob's path as it has (`/`, `\\` and the archive separator `!`
    /// split components); `*` matches within one component. When set, the
    /// rule never fires on a blob without a matching path. Rule examples
    /// name their file with a first line `<<path:NAME>>`.
    #[serde(default)]
    pub paths: Vec<String>,
    /// Minimum Shannon entropy (bits per byte) of the secret.
    #[serde(default)]
    pub min_entropy: Option<f64>,
    /// Longest secret (bytes) the rule reports; longer matches are
    /// dropped. Lets a pattern use an open repetition (`{15,}`, cheap for
    /// the regex engine) instead of a long counted one (`{15,199}`).
    #[serde(default)]
    pub max_length: Option<usize>,
    /// How sure a match is.
    pub confidence: Confidence,
    /// How bad a real match is. Defaults from confidence.
    #[serde(default)]
    pub severity: Option<Severity>,
    /// Name of a structural or checksum validator the engine applies
    /// (e.g. `github_crc32`); a match that fails it is dropped.
    #[serde(default)]
    pub validate: Option<String>,
    /// What the credential is and what it grants.
    pub description: String,
    /// What to do when one is found.
    pub remediation: String,
    /// Where the format is documented.
    #[serde(default)]
    pub references: Vec<String>,
    /// Free-form categories (`cloud`, `api-token`, `private-key`, `generic`).
    #[serde(default)]
    pub categories: Vec<String>,
    /// Inputs that must produce a finding. May contain `<<fake:ALGO:PREFIX:LEN>>`
    /// macros, expanded at check time to a random token with a valid checksum.
    #[serde(default)]
    pub examples: Vec<String>,
    /// Inputs that must not produce a finding from this rule.
    #[serde(default)]
    pub negative_examples: Vec<String>,
}

/// A structurally valid rule, ready to compile.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The rule as written.
    pub syntax: RuleSyntax,
    /// Provider (file-level `provider` or file stem).
    pub provider: String,
    /// Where it was loaded from (`builtin:aws.yml` or a path).
    pub origin: String,
    /// Effective severity.
    pub severity: Severity,
}

impl Rule {
    /// The rule id.
    pub fn id(&self) -> &str {
        &self.syntax.id
    }
}

fn default_severity(c: Confidence) -> Severity {
    match c {
        Confidence::High => Severity::High,
        Confidence::Medium => Severity::Medium,
        Confidence::Low => Severity::Low,
    }
}

fn yaml_diag(origin: &str, err: &serde_yaml_ng::Error) -> Diagnostic {
    let (line, col) = match err.location() {
        Some(loc) => (Some(loc.line() as u64), Some(loc.column() as u64)),
        None => (None, None),
    };
    Diagnostic::error("rule_invalid", origin, err.to_string()).at(line, col)
}

/// Parse one rule file. `origin` names it in diagnostics.
///
/// A malformed file yields a diagnostic with its line and column; a
/// malformed rule inside a well-formed file yields a diagnostic naming the
/// rule and the other rules still load.
pub fn load_str(origin: &str, text: &str) -> (Vec<Rule>, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    if let Some((line, col)) =
        keytrail_types::yaml_depth::too_deep(text, keytrail_types::yaml_depth::MAX_DEPTH)
    {
        let msg = format!(
            "nested deeper than {} levels: not a rule file (not parsed)",
            keytrail_types::yaml_depth::MAX_DEPTH
        );
        return (
            Vec::new(),
            vec![Diagnostic::error("rule_invalid", origin, msg).at(Some(line), Some(col))],
        );
    }
    let file: RuleFileSyntax = match serde_yaml_ng::from_str(text) {
        Ok(f) => f,
        Err(e) => return (Vec::new(), vec![yaml_diag(origin, &e)]),
    };
    let provider = file.provider.clone().unwrap_or_else(|| {
        let base = origin.rsplit(['/', '\\', ':']).next().unwrap_or(origin);
        base.trim_end_matches(".yml")
            .trim_end_matches(".yaml")
            .to_string()
    });
    let mut rules = Vec::new();
    for (i, value) in file.rules.into_iter().enumerate() {
        let id_hint = value
            .get("id")
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .unwrap_or_else(|| format!("rules[{i}]"));
        let line = find_line(text, &id_hint);
        // Every missing or unknown field at once: serde stops at the first.
        let shape = shape_problems(&value);
        if !shape.is_empty() {
            for p in shape {
                diags.push(
                    Diagnostic::error("rule_invalid", origin, format!("rule `{id_hint}`: {p}"))
                        .at(line, None),
                );
            }
            continue;
        }
        let syntax: RuleSyntax = match serde_yaml_ng::from_value(value) {
            Ok(s) => s,
            Err(e) => {
                diags.push(
                    Diagnostic::error("rule_invalid", origin, format!("rule `{id_hint}`: {e}"))
                        .at(line, None),
                );
                continue;
            }
        };
        let mut problems = Vec::new();
        if syntax.id.trim().is_empty() {
            problems.push("empty id".to_string());
        }
        if syntax.keywords.iter().all(|k| k.trim().is_empty()) && syntax.paths.is_empty() {
            problems.push("needs at least one keyword for the prefilter (or `paths`)".to_string());
        }
        if syntax
            .paths
            .iter()
            .any(|p| p.trim().is_empty() || p.starts_with('/') || p.ends_with('/'))
        {
            problems.push("a `paths` entry must be a non-empty relative name".to_string());
        }
        if syntax.keywords.iter().any(|k| k.len() < 3) {
            problems.push("keywords must be at least 3 bytes long".to_string());
        }
        if let Some(e) = syntax.min_entropy
            && !(0.0..=8.0).contains(&e)
        {
            problems.push(format!("min_entropy {e} is outside 0..=8"));
        }
        if !problems.is_empty() {
            for p in problems {
                diags.push(
                    Diagnostic::error("rule_invalid", origin, format!("rule `{id_hint}`: {p}"))
                        .at(line, None),
                );
            }
            continue;
        }
        let severity = syntax
            .severity
            .unwrap_or_else(|| default_severity(syntax.confidence));
        rules.push(Rule {
            syntax,
            provider: provider.clone(),
            origin: origin.to_string(),
            severity,
        });
    }
    (rules, diags)
}

/// Fields a rule must have.
pub const REQUIRED_FIELDS: [&str; 7] = [
    "id",
    "name",
    "pattern",
    "keywords",
    "confidence",
    "description",
    "remediation",
];
/// Fields a rule may have besides the required ones.
pub const OPTIONAL_FIELDS: [&str; 9] = [
    "paths",
    "min_entropy",
    "max_length",
    "severity",
    "validate",
    "references",
    "categories",
    "examples",
    "negative_examples",
];

/// Every missing required field and every unknown field of a rule, each
/// as one message, so `rules check` reports them all in one run.
fn shape_problems(value: &serde_yaml_ng::Value) -> Vec<String> {
    let Some(map) = value.as_mapping() else {
        return vec!["a rule must be a mapping of fields".to_string()];
    };
    let mut problems = Vec::new();
    for field in REQUIRED_FIELDS {
        if !map.contains_key(field) {
            problems.push(format!("missing field `{field}`"));
        }
    }
    for key in map.keys() {
        let name = key.as_str().unwrap_or("");
        if !REQUIRED_FIELDS.contains(&name) && !OPTIONAL_FIELDS.contains(&name) {
            problems.push(format!(
                "unknown field `{}` (expected one of: {}, {})",
                key.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("{key:?}")),
                REQUIRED_FIELDS.join(", "),
                OPTIONAL_FIELDS.join(", ")
            ));
        }
    }
    problems
}

/// 1-based line of `id: <id>` in the text, for diagnostics.
fn find_line(text: &str, id: &str) -> Option<u64> {
    text.lines()
        .position(|l| {
            let t = l.trim_start().trim_start_matches("- ").trim_start();
            t.strip_prefix("id:")
                .map(|rest| rest.trim().trim_matches(['"', '\'']) == id)
                .unwrap_or(false)
        })
        .map(|i| i as u64 + 1)
}

/// Load every `*.yml`/`*.yaml` file under `dir` (recursively), sorted by path.
pub fn load_dir(dir: &Path) -> (Vec<Rule>, Vec<Diagnostic>) {
    let (files, mut diags) = keytrail_types::files::yaml_files(dir);
    let mut rules = Vec::new();
    for path in files {
        let origin = path.display().to_string();
        match std::fs::read(&path) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => {
                    let (r, d) = load_str(&origin, &text);
                    rules.extend(r);
                    diags.extend(d);
                }
                Err(e) => diags.push(Diagnostic::error(
                    "rule_invalid",
                    origin,
                    format!("not UTF-8: {e}"),
                )),
            },
            Err(e) => diags.push(Diagnostic::error("unreadable", origin, e.to_string())),
        }
    }
    check_unique_ids(&rules, &mut diags);
    (rules, diags)
}

/// Push a diagnostic for every rule id defined twice.
pub(crate) fn check_unique_ids(rules: &[Rule], diags: &mut Vec<Diagnostic>) {
    let mut seen = HashSet::new();
    for r in rules {
        if !seen.insert(r.id()) {
            diags.push(Diagnostic::error(
                "rule_invalid",
                &r.origin,
                format!("duplicate rule id `{}`", r.id()),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_yaml_names_line() {
        let (rules, diags) = load_str("x.yml", "rules:\n  - id: a\n   bad: [\n");
        assert!(rules.is_empty());
        assert_eq!(diags.len(), 1);
        assert!(diags[0].line.is_some(), "{:?}", diags[0]);
    }

    /// 100,000 levels of nesting (15 s in the YAML parser before the
    /// depth check) next to a good file: a diagnostic with the position,
    /// at once, and the good file's rule still loads.
    #[test]
    fn deep_nesting_is_refused_before_parsing_and_the_next_file_loads() {
        let dir = tempfile::tempdir().unwrap();
        let deep = format!("rules: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
        std::fs::write(dir.path().join("a-deep.yml"), deep).unwrap();
        let compact = format!("rules:\n{}x\n", "- ".repeat(100_000));
        std::fs::write(dir.path().join("b-compact.yml"), compact).unwrap();
        std::fs::write(
            dir.path().join("c-good.yml"),
            "rules:\n  - id: good.one\n    name: Good\n    pattern: 'good_([a-z]{10})'\n    keywords: [good_]\n    confidence: high\n    description: d\n    remediation: r\n",
        )
        .unwrap();
        let (rules, diags) = load_dir(dir.path());
        assert_eq!(rules.len(), 1, "{diags:?}");
        assert_eq!(diags.len(), 2, "{diags:?}");
        assert!(diags[0].subject.ends_with("a-deep.yml"));
        assert_eq!((diags[0].line, diags[0].column), (Some(1), Some(264)));
        assert!(
            diags[0].message.contains("nested deeper than 256"),
            "{:?}",
            diags[0]
        );
        assert!(diags[1].subject.ends_with("b-compact.yml"));
        assert_eq!(diags[1].line, Some(2));
    }

    #[test]
    fn one_bad_rule_keeps_others() {
        let text = r#"
rules:
  - id: good.one
    name: Good
    pattern: 'good_([a-z]{10})'
    keywords: [good_]
    confidence: high
    description: d
    remediation: r
    examples: ['good_abcdefghij']
    negative_examples: ['good_abc']
  - id: bad.one
    name: Bad
    confidence: high
"#;
        let (rules, diags) = load_str("x.yml", text);
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].provider, "x");
        // One diagnostic per missing field, all in one run.
        let missing: Vec<&str> = diags.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(
            missing,
            [
                "rule `bad.one`: missing field `pattern`",
                "rule `bad.one`: missing field `keywords`",
                "rule `bad.one`: missing field `description`",
                "rule `bad.one`: missing field `remediation`",
            ]
        );
        assert!(diags.iter().all(|d| d.line == Some(12)));
    }

    #[test]
    fn unknown_fields_are_named_with_the_missing_ones() {
        let text = "rules:\n  - id: a.b\n    name: A\n    patern: 'x'\n    confidence: high\n";
        let (rules, diags) = load_str("x.yml", text);
        assert!(rules.is_empty());
        let msgs: Vec<&str> = diags.iter().map(|d| d.message.as_str()).collect();
        assert!(
            msgs.contains(&"rule `a.b`: missing field `pattern`"),
            "{msgs:?}"
        );
        assert!(
            msgs.iter()
                .any(|m| m.starts_with("rule `a.b`: unknown field `patern`")),
            "{msgs:?}"
        );
        assert_eq!(msgs.len(), 5, "{msgs:?}");
    }
}

//! Compiling a [`Rule`] into a [`CompiledRule`]: the regex (built once,
//! with size limits), the secret and context capture groups, the bounds the
//! prefilter needs (how far a match can reach around a keyword), the
//! validator, and the shape facts the precision filters consult.

use crate::filters::FilterSet;
use crate::validate::Validator;
use keytrail_rules::Rule;
use keytrail_types::{Confidence, Diagnostic, Severity};
use regex_automata::meta;
use regex_syntax::hir::{Class, Hir, HirKind};

/// Longest compiled regex program we accept for one rule (bytes of NFA).
const NFA_SIZE_LIMIT: usize = 16 << 20;
/// Upper bound of the lazy DFA cache per rule per thread.
const DFA_CACHE_CAPACITY: usize = 2 << 20;

/// A rule compiled for matching.
#[derive(Debug)]
pub struct CompiledRule {
    /// The source rule.
    pub rule: Rule,
    pub(crate) regex: meta::Regex,
    pub(crate) secret_group: usize,
    /// Named groups other than `secret`: (name, group index).
    pub(crate) context_groups: Vec<(String, usize)>,
    /// Longest possible match in bytes, when the pattern is bounded.
    pub(crate) max_len: Option<usize>,
    /// Whether a long or unbounded part of the pattern can run across
    /// lines (`[\s\S]*?` in a PEM block), as opposed to only within a line
    /// or over whitespace.
    pub(crate) multiline: bool,
    pub(crate) validator: Option<Validator>,
    pub(crate) filters: FilterSet,
    pub(crate) min_entropy: Option<f64>,
    pub(crate) max_length: Option<usize>,
    /// The rule's `paths`, each split into lower-cased components; empty
    /// when the rule applies to every blob.
    pub(crate) paths: Vec<Vec<String>>,
}

impl CompiledRule {
    /// Rule id.
    pub fn id(&self) -> &str {
        self.rule.id()
    }
    /// Human name.
    pub fn name(&self) -> &str {
        &self.rule.syntax.name
    }
    /// Confidence.
    pub fn confidence(&self) -> Confidence {
        self.rule.syntax.confidence
    }
    /// Severity.
    pub fn severity(&self) -> Severity {
        self.rule.severity
    }
    /// Longest possible match in bytes, or `None` for unbounded patterns.
    pub fn max_match_len(&self) -> Option<usize> {
        self.max_len
    }
    /// Whether the rule applies to a blob at `path`: always for a rule
    /// without `paths`; for one with `paths`, only when one names the
    /// path's trailing components.
    pub fn applies_to(&self, path: Option<&str>) -> bool {
        if self.paths.is_empty() {
            return true;
        }
        let Some(path) = path else { return false };
        self.applies_to_components(&path_components(path))
    }
    /// [`CompiledRule::applies_to`] for a path already split by
    /// [`path_components`] (a scan splits each blob's path once for all
    /// its rules).
    pub(crate) fn applies_to_components(&self, parts: &[&str]) -> bool {
        if self.paths.is_empty() {
            return true;
        }
        self.paths.iter().any(|pat| {
            pat.len() <= parts.len()
                && pat
                    .iter()
                    .zip(&parts[parts.len() - pat.len()..])
                    .all(|(p, c)| glob_component(p.as_bytes(), c.as_bytes()))
        })
    }
    /// Whether the rule is a generic one (category `generic`): a key name
    /// and a value, no format of its own.
    pub fn is_generic(&self) -> bool {
        self.rule.syntax.categories.iter().any(|c| c == "generic")
    }
    /// Whether the rule runs on whole files its `paths` name rather than
    /// around keyword hits (it has `paths` and no keyword).
    pub(crate) fn whole_file(&self) -> bool {
        !self.paths.is_empty() && self.rule.syntax.keywords.iter().all(|k| k.is_empty())
    }
}

/// The non-empty components of a path, split at `/`, `\\` and `!` (the
/// separator of archive members).
pub(crate) fn path_components(path: &str) -> Vec<&str> {
    path.split(['/', '\\', '!'])
        .filter(|c| !c.is_empty())
        .collect()
}

/// `*`-glob match of one path component (`pat` lower-cased), ASCII
/// case-insensitive.
fn glob_component(pat: &[u8], name: &[u8]) -> bool {
    match pat.iter().position(|&b| b == b'*') {
        None => pat.eq_ignore_ascii_case(name),
        Some(star) => {
            let (head, rest) = (&pat[..star], &pat[star + 1..]);
            if name.len() < head.len() || !name[..head.len()].eq_ignore_ascii_case(head) {
                return false;
            }
            let name = &name[head.len()..];
            (0..=name.len()).any(|i| glob_component(rest, &name[i..]))
        }
    }
}

fn invalid(rule: &Rule, msg: String) -> Diagnostic {
    Diagnostic::error(
        "rule_invalid",
        &rule.origin,
        format!("rule `{}`: {msg}", rule.id()),
    )
}

/// Compile one rule, or explain why it cannot be.
pub(crate) fn compile(rule: Rule) -> Result<CompiledRule, Diagnostic> {
    let pattern = &rule.syntax.pattern;
    // Parse once to HIR: it gives us the maximum match length for the
    // prefilter windows, and the meta regex is built from the same HIR.
    //
    // Patterns are compiled in ASCII mode (`\w`, `\s`, `\b` and `(?i)` are
    // ASCII-only, `.` and negated classes match any byte): secrets are
    // ASCII, and Unicode classes make the lazy DFAs many times larger and
    // slower. A pattern that needs Unicode (a non-ASCII literal, `\p{..}`)
    // falls back to Unicode mode.
    let parse = |unicode: bool| {
        regex_syntax::ParserBuilder::new()
            .utf8(false)
            .unicode(unicode)
            .nest_limit(100)
            .build()
            .parse(pattern)
            .map_err(Box::new)
    };
    let hir = parse(false)
        .or_else(|_| parse(true))
        .map_err(|e| invalid(&rule, format!("pattern does not parse: {e}")))?;
    let max_len = hir.properties().maximum_len();
    let multiline = unbounded_multiline(&hir);
    let regex = meta::Builder::new()
        .configure(
            meta::Config::new()
                .utf8_empty(false)
                .nfa_size_limit(Some(NFA_SIZE_LIMIT))
                .onepass_size_limit(Some(1 << 20))
                .dfa_size_limit(Some(4 << 20))
                .hybrid_cache_capacity(DFA_CACHE_CAPACITY),
        )
        .build_from_hir(&hir)
        .map_err(|e| invalid(&rule, format!("pattern does not compile: {e}")))?;
    let names: Vec<Option<String>> = regex
        .group_info()
        .pattern_names(regex_automata::PatternID::ZERO)
        .map(|n| n.map(str::to_string))
        .collect();
    let secret_group = match names.iter().position(|n| n.as_deref() == Some("secret")) {
        Some(i) => i,
        None if names.len() > 1 => 1,
        None => {
            return Err(invalid(
                &rule,
                "pattern needs a capture group (or a group named `secret`) holding the secret"
                    .to_string(),
            ));
        }
    };
    let context_groups = names
        .iter()
        .enumerate()
        .filter_map(|(i, n)| match n {
            Some(n) if n != "secret" => Some((n.clone(), i)),
            _ => None,
        })
        .collect();
    let validator = match rule.syntax.validate.as_deref() {
        None => None,
        Some(name) => Some(Validator::from_name(name).ok_or_else(|| {
            invalid(
                &rule,
                format!(
                    "unknown validator `{name}` (known: {})",
                    Validator::ALL
                        .iter()
                        .map(|v| v.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?),
    };
    let filters = FilterSet::for_rule(&rule, validator);
    let min_entropy = rule.syntax.min_entropy.or(match rule.syntax.confidence {
        Confidence::Low => Some(crate::filters::DEFAULT_LOW_CONFIDENCE_MIN_ENTROPY),
        _ => None,
    });
    let max_length = rule.syntax.max_length;
    let paths = rule
        .syntax
        .paths
        .iter()
        .map(|p| {
            p.split(['/', '\\'])
                .filter(|c| !c.is_empty())
                .map(str::to_ascii_lowercase)
                .collect()
        })
        .collect();
    Ok(CompiledRule {
        rule,
        regex,
        secret_group,
        context_groups,
        max_len,
        multiline,
        validator,
        filters,
        min_entropy,
        max_length,
        paths,
    })
}

/// Whether `hir` can match a line feed.
fn can_match_newline(hir: &Hir) -> bool {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => false,
        HirKind::Literal(lit) => lit.0.contains(&b'\n'),
        HirKind::Class(Class::Bytes(c)) => c
            .ranges()
            .iter()
            .any(|r| r.start() <= b'\n' && b'\n' <= r.end()),
        HirKind::Class(Class::Unicode(c)) => c
            .ranges()
            .iter()
            .any(|r| r.start() <= '\n' && '\n' <= r.end()),
        HirKind::Repetition(r) => can_match_newline(&r.sub),
        HirKind::Capture(c) => can_match_newline(&c.sub),
        HirKind::Concat(v) | HirKind::Alternation(v) => v.iter().any(can_match_newline),
    }
}

/// Whether `hir` is a class of whitespace only (`\s`, `[ \t\r\n]`).
fn is_whitespace_class(hir: &Hir) -> bool {
    let ws = |c: u32| {
        matches!(c, 0x09..=0x0d | 0x20 | 0x85 | 0xa0)
            || (0x2000..=0x3000).contains(&c)
            || c == 0x1680
    };
    match hir.kind() {
        HirKind::Class(Class::Bytes(c)) => c
            .ranges()
            .iter()
            .all(|r| (r.start()..=r.end()).all(|b| ws(u32::from(b)))),
        HirKind::Class(Class::Unicode(c)) => c
            .ranges()
            .iter()
            .all(|r| (u32::from(r.start())..=u32::from(r.end())).all(ws)),
        HirKind::Capture(c) => is_whitespace_class(&c.sub),
        _ => false,
    }
}

/// Whether a long or unbounded repetition in `hir` can cross lines other
/// than by matching whitespace (`[\s\S]{60,12000}?`, `(?:.|\n)*`).
fn unbounded_multiline(hir: &Hir) -> bool {
    match hir.kind() {
        HirKind::Repetition(r) => {
            (r.max.is_none_or(|m| m > 64)
                && can_match_newline(&r.sub)
                && !is_whitespace_class(&r.sub))
                || unbounded_multiline(&r.sub)
        }
        HirKind::Capture(c) => unbounded_multiline(&c.sub),
        HirKind::Concat(v) | HirKind::Alternation(v) => v.iter().any(unbounded_multiline),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::glob_component;

    #[test]
    fn globs_match_one_component() {
        assert!(glob_component(b"*.ppk", b"Deploy.PPK"));
        assert!(glob_component(b"pgpass", b"pgpass"));
        assert!(glob_component(b"*secrets*.yml", b"secrets.yml"));
        assert!(!glob_component(b"*.ppk", b"ppk"));
        assert!(!glob_component(b".pgpass", b".pgpass.bak"));
    }
}

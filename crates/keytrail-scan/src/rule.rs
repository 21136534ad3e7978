//! Compiling a [`Rule`] into a [`CompiledRule`]: the regex (built once,
//! with size limits), the secret and context capture groups, the bounds the
//! prefilter needs (how far a match can reach around a keyword), the
//! validator, and the shape facts the precision filters consult.

use crate::filters::FilterSet;
use crate::validate::Validator;
use keytrail_rules::Rule;
use keytrail_types::{Confidence, Diagnostic, Severity};
use regex_automata::meta;

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
    pub(crate) validator: Option<Validator>,
    pub(crate) filters: FilterSet,
    pub(crate) min_entropy: Option<f64>,
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
    let hir = regex_syntax::ParserBuilder::new()
        .utf8(false)
        .nest_limit(100)
        .build()
        .parse(pattern)
        .map_err(|e| invalid(&rule, format!("pattern does not parse: {e}")))?;
    let max_len = hir.properties().maximum_len();
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
    Ok(CompiledRule {
        rule,
        regex,
        secret_group,
        context_groups,
        max_len,
        validator,
        filters,
        min_entropy,
    })
}

//! The secret-matching engine: compiles [`Rule`]s into a [`Scanner`] and
//! matches byte buffers against them.
//!
//! Knows nothing about files, terminals or output formats: callers hand it
//! bytes and receive [`Match`]es through a callback (push model, like
//! ripgrep's `Sink`). [`check_rules`] runs every rule's examples and negative
//! examples through the same engine.

use keytrail_rules::Rule;
use keytrail_types::{Confidence, Diagnostic, Severity};
use regex::bytes::Regex;
use std::ops::Range;

/// A rule compiled for matching.
#[derive(Debug)]
pub struct CompiledRule {
    /// The source rule.
    pub rule: Rule,
    regex: Regex,
    secret_group: usize,
    context_groups: Vec<(String, usize)>,
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
}

/// One match of one rule in a buffer.
#[derive(Debug, Clone)]
pub struct Match<'r> {
    /// The rule that matched.
    pub rule: &'r CompiledRule,
    /// Byte range of the secret in the buffer.
    pub secret: Range<usize>,
    /// Byte range of the whole match.
    pub whole: Range<usize>,
    /// Named context captures (name, range).
    pub context: Vec<(String, Range<usize>)>,
}

/// Compiled rule set.
#[derive(Debug)]
pub struct Scanner {
    rules: Vec<CompiledRule>,
}

impl Scanner {
    /// Compile rules. Rules whose pattern does not compile are dropped with
    /// a diagnostic; the rest still work.
    pub fn new(rules: Vec<Rule>) -> (Scanner, Vec<Diagnostic>) {
        let mut compiled = Vec::new();
        let mut diags = Vec::new();
        for rule in rules {
            match compile(rule) {
                Ok(c) => compiled.push(c),
                Err(d) => diags.push(d),
            }
        }
        (Scanner { rules: compiled }, diags)
    }

    /// The compiled rules.
    pub fn rules(&self) -> &[CompiledRule] {
        &self.rules
    }

    /// Match `data` against every rule, calling `on_match` for each match.
    pub fn scan<'s>(&'s self, data: &[u8], on_match: &mut dyn FnMut(Match<'s>)) {
        for rule in &self.rules {
            for caps in rule.regex.captures_iter(data) {
                let Some(secret) = caps.get(rule.secret_group) else {
                    continue;
                };
                let whole = caps.get(0).expect("group 0 always matches");
                let context = rule
                    .context_groups
                    .iter()
                    .filter_map(|(n, i)| caps.get(*i).map(|m| (n.clone(), m.range())))
                    .collect();
                on_match(Match {
                    rule,
                    secret: secret.range(),
                    whole: whole.range(),
                    context,
                });
            }
        }
    }
}

fn compile(rule: Rule) -> Result<CompiledRule, Diagnostic> {
    let regex = regex::bytes::RegexBuilder::new(&rule.syntax.pattern)
        .size_limit(64 << 20)
        .build()
        .map_err(|e| {
            Diagnostic::error(
                "rule_invalid",
                &rule.origin,
                format!("rule `{}`: pattern does not compile: {e}", rule.id()),
            )
        })?;
    let secret_group = match regex.capture_names().position(|n| n == Some("secret")) {
        Some(i) => i,
        None if regex.captures_len() > 1 => 1,
        None => {
            return Err(Diagnostic::error(
                "rule_invalid",
                &rule.origin,
                format!(
                    "rule `{}`: pattern needs a capture group (or a group named `secret`) holding the secret",
                    rule.id()
                ),
            ));
        }
    };
    let context_groups = regex
        .capture_names()
        .enumerate()
        .filter_map(|(i, n)| match n {
            Some(n) if n != "secret" => Some((n.to_string(), i)),
            _ => None,
        })
        .collect();
    Ok(CompiledRule {
        rule,
        regex,
        secret_group,
        context_groups,
    })
}

/// Compile `rules` and run every example and negative example through the
/// engine. Returns one diagnostic per problem (empty = all good).
pub fn check_rules(rules: &[Rule]) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    for rule in rules {
        let line = None;
        let (scanner, d) = Scanner::new(vec![rule.clone()]);
        diags.extend(d);
        if scanner.rules.is_empty() {
            continue;
        }
        if rule.syntax.examples.is_empty() {
            diags.push(
                Diagnostic::error(
                    "rule_check",
                    &rule.origin,
                    format!("rule `{}`: needs at least one example", rule.id()),
                )
                .at(line, None),
            );
        }
        if rule.syntax.negative_examples.is_empty() {
            diags.push(Diagnostic::error(
                "rule_check",
                &rule.origin,
                format!("rule `{}`: needs at least one negative example", rule.id()),
            ));
        }
        for ex in &rule.syntax.examples {
            let mut n = 0;
            scanner.scan(ex.as_bytes(), &mut |_| n += 1);
            if n == 0 {
                diags.push(Diagnostic::error(
                    "rule_check",
                    &rule.origin,
                    format!("rule `{}`: example does not match: {ex:?}", rule.id()),
                ));
            }
        }
        for ex in &rule.syntax.negative_examples {
            let mut n = 0;
            scanner.scan(ex.as_bytes(), &mut |_| n += 1);
            if n != 0 {
                diags.push(Diagnostic::error(
                    "rule_check",
                    &rule.origin,
                    format!("rule `{}`: negative example matches: {ex:?}", rule.id()),
                ));
            }
        }
    }
    diags
}

//! `keytrail rules list` and `keytrail rules check`.

use crate::ExitStatus;
use crate::args::{ListFormatArg, RulesCheckArgs, RulesCommand, RulesListArgs};
use crate::rule_set;
use anyhow::bail;
use keytrail_rules::Rule;
use keytrail_types::Diagnostic;
use std::collections::HashMap;
use std::io::Write;

/// Run a `keytrail rules` subcommand.
pub fn run(cmd: &RulesCommand) -> anyhow::Result<ExitStatus> {
    match cmd {
        RulesCommand::List(a) => list(a),
        RulesCommand::Check(a) => check(a),
    }
}

fn list(args: &RulesListArgs) -> anyhow::Result<ExitStatus> {
    let rules = rule_set::load(&args.rules)?;
    let mut out = String::new();
    match args.format {
        ListFormatArg::Json => {
            let items: Vec<_> = rules
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "id": r.id(),
                        "name": r.syntax.name,
                        "provider": r.provider,
                        "confidence": r.syntax.confidence,
                        "severity": r.severity,
                        "categories": r.syntax.categories,
                        "origin": r.origin,
                    })
                })
                .collect();
            out.push_str(&serde_json::to_string_pretty(&items)?);
            out.push('\n');
        }
        ListFormatArg::Human => {
            let w_id = rules.iter().map(|r| r.id().len()).max().unwrap_or(2).max(2);
            let w_prov = rules
                .iter()
                .map(|r| r.provider.len())
                .max()
                .unwrap_or(8)
                .max(8);
            out.push_str(&format!(
                "{:w_id$}  {:w_prov$}  {:10}  {:8}  NAME\n",
                "ID", "PROVIDER", "CONFIDENCE", "SEVERITY"
            ));
            for r in &rules {
                out.push_str(&format!(
                    "{:w_id$}  {:w_prov$}  {:10}  {:8}  {}\n",
                    r.id(),
                    r.provider,
                    r.syntax.confidence.as_str(),
                    r.severity.as_str(),
                    r.syntax.name
                ));
            }
        }
    }
    match std::io::stdout().lock().write_all(out.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(ExitStatus::Clean),
    }
}

/// Lint warnings: things a rule should have but that do not break it.
fn warnings(rule: &Rule) -> Vec<Diagnostic> {
    let mut w = Vec::new();
    let mut warn = |msg: String| {
        let mut d = Diagnostic::error("rule_lint", &rule.origin, msg);
        d.is_error = false;
        w.push(d);
    };
    if rule.syntax.references.is_empty() {
        warn(format!(
            "rule `{}`: no `references` (where is the format documented?)",
            rule.id()
        ));
    }
    if rule.syntax.categories.is_empty() {
        warn(format!("rule `{}`: no `categories`", rule.id()));
    }
    if rule.syntax.description.trim().is_empty() || rule.syntax.remediation.trim().is_empty() {
        warn(format!(
            "rule `{}`: empty `description` or `remediation`",
            rule.id()
        ));
    }
    w
}

/// The rule id a diagnostic message names (`rule `x.y`: ...`).
fn rule_in_message(msg: &str) -> Option<&str> {
    let rest = msg.strip_prefix("rule `")?;
    Some(&rest[..rest.find('`')?])
}

/// Give line numbers to diagnostics that name a rule but carry no line,
/// by finding the rule's `id:` line in its file.
fn add_lines(diags: &mut [Diagnostic]) {
    let mut files: HashMap<String, Option<String>> = HashMap::new();
    for d in diags.iter_mut().filter(|d| d.line.is_none()) {
        let Some(id) = rule_in_message(&d.message) else {
            continue;
        };
        let text = files
            .entry(d.subject.clone())
            .or_insert_with(|| std::fs::read_to_string(&d.subject).ok());
        if let Some(text) = text {
            d.line = text
                .lines()
                .position(|l| {
                    let t = l.trim_start().trim_start_matches('-').trim_start();
                    t.strip_prefix("id:")
                        .is_some_and(|v| v.trim().trim_matches(['"', '\'']) == id)
                })
                .map(|i| i as u64 + 1);
        }
    }
}

fn check(args: &RulesCheckArgs) -> anyhow::Result<ExitStatus> {
    let mut diags = Vec::new();
    let mut rules = Vec::new();
    let (builtin, builtin_diags) = keytrail_rules::builtin();
    if args.dirs.is_empty() {
        diags.extend(builtin_diags);
        rules = builtin;
    } else {
        for dir in &args.dirs {
            if !dir.exists() {
                bail!("`{}` does not exist", dir.display());
            }
            let (r, d) = keytrail_rules::load_dir(dir);
            diags.extend(d);
            rules.extend(r);
        }
        // User rules run next to the builtins: their ids must not collide.
        for r in &rules {
            if builtin.iter().any(|b| b.id() == r.id()) {
                diags.push(Diagnostic::error(
                    "rule_invalid",
                    &r.origin,
                    format!("rule `{}`: id is already used by a builtin rule", r.id()),
                ));
            }
        }
    }
    diags.extend(keytrail_scan::check_rules(&rules));
    for r in &rules {
        diags.extend(warnings(r));
    }
    add_lines(&mut diags);
    diags.sort_by(|a, b| (&a.subject, a.line).cmp(&(&b.subject, b.line)));

    let errors = diags.iter().filter(|d| d.is_error).count();
    let warns = diags.len() - errors;
    for d in &diags {
        let label = if d.is_error { "error" } else { "warning" };
        eprintln!("{label}: {d}");
    }
    // Rules that did not load count too: "checked 0 rule(s)" over a file
    // of broken rules would say nothing was looked at.
    let loaded: std::collections::BTreeSet<(&str, &str)> =
        rules.iter().map(|r| (r.origin.as_str(), r.id())).collect();
    let rejected: std::collections::BTreeSet<(&str, &str)> = diags
        .iter()
        .filter(|d| d.is_error && d.kind == "rule_invalid")
        .filter_map(|d| Some((d.subject.as_str(), rule_in_message(&d.message)?)))
        .filter(|key| !loaded.contains(key))
        .collect();
    let mut files: std::collections::BTreeSet<&str> =
        rules.iter().map(|r| r.origin.as_str()).collect();
    files.extend(diags.iter().map(|d| d.subject.as_str()));
    let invalid = if rejected.is_empty() {
        String::new()
    } else {
        format!(" ({} invalid)", rejected.len())
    };
    eprintln!(
        "checked {} rule(s){invalid} in {} file(s): {errors} error(s), {warns} warning(s)",
        rules.len() + rejected.len(),
        files.len()
    );
    if errors > 0 || (args.warnings_as_errors && warns > 0) {
        Ok(ExitStatus::Findings)
    } else {
        Ok(ExitStatus::Clean)
    }
}

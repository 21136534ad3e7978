//! Runbooks: for every provider keytrail's secret rules detect, where a
//! leaked credential is revoked and what to check afterwards, as data
//! (`data/runbooks.yml`, embedded). `keytrail revoke <provider>` prints the
//! runbook of a provider without a revocation API, and the "check
//! afterwards" list after an API revocation. A test keeps the file
//! covering every provider file of `keytrail-rules`.

use serde::Deserialize;
use std::sync::OnceLock;

/// One provider's runbook.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Runbook {
    /// The provider id: the name of its rule file in keytrail-rules
    /// (`stripe` for `data/secrets/stripe.yml`), which is also the first
    /// part of its rule ids.
    pub provider: String,
    /// The product name.
    pub name: String,
    /// Where the credential is revoked (a URL or a console path).
    pub revoke_at: String,
    /// How, step by step.
    pub steps: Vec<String>,
    /// What to check once it is revoked.
    pub check_after: Vec<String>,
    /// Other names it is found under (`keytrail revoke <alias>`).
    #[serde(default)]
    pub aliases: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    runbooks: Vec<Runbook>,
}

const DATA: &str = include_str!("../data/runbooks.yml");

/// Every runbook, in file order.
pub fn all() -> &'static [Runbook] {
    static ALL: OnceLock<Vec<Runbook>> = OnceLock::new();
    ALL.get_or_init(|| {
        serde_yaml_ng::from_str::<File>(DATA)
            .expect("data/runbooks.yml is checked by the crate's tests")
            .runbooks
    })
}

/// The runbook for a provider id, an alias, or a rule id (`stripe.secret_key.live`).
pub fn find(name: &str) -> Option<&'static Runbook> {
    let name = name.to_ascii_lowercase();
    let by = |n: &str| {
        all()
            .iter()
            .find(|r| r.provider == n || r.aliases.iter().any(|a| a == n))
    };
    by(&name).or_else(|| name.split('.').next().and_then(by))
}

impl Runbook {
    /// The runbook as text for a terminal.
    pub fn render(&self) -> String {
        let mut s = format!(
            "{}: no revocation API keytrail can call; revoke by hand\n",
            self.name
        );
        s.push_str(&format!("where: {}\n", self.revoke_at));
        s.push_str("steps:\n");
        for (i, step) in self.steps.iter().enumerate() {
            s.push_str(&format!("  {}. {step}\n", i + 1));
        }
        s.push_str("afterwards, check:\n");
        for c in &self.check_after {
            s.push_str(&format!("  - {c}\n"));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn the_data_parses_and_every_entry_is_complete() {
        let mut seen = BTreeSet::new();
        for r in all() {
            assert!(
                seen.insert(r.provider.clone()),
                "duplicate runbook {}",
                r.provider
            );
            assert!(
                !r.name.is_empty() && !r.revoke_at.is_empty(),
                "{}",
                r.provider
            );
            assert!(!r.steps.is_empty(), "{}: no steps", r.provider);
            assert!(
                !r.check_after.is_empty(),
                "{}: nothing to check afterwards",
                r.provider
            );
        }
    }

    #[test]
    fn every_rule_provider_has_a_runbook() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../keytrail-rules/data/secrets");
        let mut missing = Vec::new();
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).expect("keytrail-rules data") {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yml") {
                n += 1;
                let stem = path.file_stem().unwrap().to_str().unwrap().to_string();
                if find(&stem).is_none() {
                    missing.push(stem);
                }
            }
        }
        assert!(n > 100, "only {n} rule files found in {}", dir.display());
        assert!(
            missing.is_empty(),
            "providers without a runbook: {missing:?}"
        );
    }

    #[test]
    fn finds_by_rule_id_and_alias() {
        assert_eq!(find("github.pat.classic").unwrap().provider, "github");
        assert_eq!(find("aws-key").unwrap().provider, "aws");
        assert!(find("no-such-provider").is_none());
    }
}

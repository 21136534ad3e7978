//! Environment separation: the same credential in the configuration of
//! more than one environment (`.env.dev` and `.env.prod`,
//! `values.staging.yaml` and `values.prod.yaml`, `overlays/<env>/`,
//! `<env>.tfvars`, `config/<env>/`).
//!
//! [`shared_across_environments`] takes the findings of a scan and returns
//! one extra [`Finding`] per secret *value* seen in configuration for two
//! or more environments, with rule id [`RULE_ID`], the locations in those
//! configurations, and the environments in `context` (`environments`) and
//! `notes`. Grouping is by value, not fingerprint, so the same key found
//! by two rules counts once.
//!
//! The environment of a path comes from its file name first
//! (`.env.production`, `values-prod.yaml`, `staging.tfvars`,
//! `application-dev.yml`, `appsettings.Production.json`), then from the
//! nearest directory that is an environment name under a directory that
//! holds environments (`overlays/`, `environments/`, `envs/`, `env/`,
//! `config/`, `deploy/`, `clusters/`, `stages/`), or any directory named
//! for an unambiguous environment (`prod/`, `staging/`). Only
//! configuration files count (by extension or name), not source code.

use keytrail_types::{Confidence, Finding, Fingerprint, Severity};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

/// Rule id of the produced findings.
pub const RULE_ID: &str = "keytrail.shared-across-environments";
/// Rule name of the produced findings.
pub const RULE_NAME: &str = "Credential shared across environments";
/// What the finding means (for report rule metadata).
pub const DESCRIPTION: &str = "The same credential appears in the configuration of more than one environment, so a compromise of the least protected environment (a developer laptop, staging) gives access to the others, including production.";
/// What to do (for report rule metadata).
pub const REMEDIATION: &str = "Issue a separate credential per environment with only that environment's permissions, rotate the shared one, and keep production credentials out of non-production configuration (use a secret manager scoped per environment).";

/// Canonical environment for a word, if it names one.
pub fn canonical_env(word: &str) -> Option<&'static str> {
    Some(match word.to_ascii_lowercase().as_str() {
        "dev" | "develop" | "development" => "dev",
        "test" | "testing" => "test",
        "qa" => "qa",
        "uat" => "uat",
        "stage" | "staging" | "stg" => "staging",
        "preprod" | "pre-prod" | "preproduction" => "preprod",
        "prod" | "production" | "prd" | "live" => "prod",
        "sandbox" => "sandbox",
        "demo" => "demo",
        "local" => "local",
        "perf" | "performance" | "load" => "perf",
        "int" | "integration" => "integration",
        _ => return None,
    })
}

/// Words that name an environment without doubt even as a bare directory
/// (`test`, `local`, `int` are too often something else).
fn unambiguous(env: &str) -> bool {
    matches!(env, "dev" | "staging" | "preprod" | "prod" | "uat" | "qa")
}

const ENV_PARENTS: &[&str] = &[
    "overlays",
    "environments",
    "environment",
    "envs",
    "env",
    "config",
    "configs",
    "deploy",
    "deployments",
    "clusters",
    "stages",
    "values",
    "vars",
    "group_vars",
    "inventories",
    "tfvars",
];

const CONFIG_EXT: &[&str] = &[
    "env",
    "yaml",
    "yml",
    "json",
    "toml",
    "tfvars",
    "hcl",
    "tf",
    "properties",
    "ini",
    "conf",
    "cfg",
    "config",
    "xml",
    "plist",
];

/// Whether a path looks like configuration (not source code).
pub fn is_config_path(path: &str) -> bool {
    let name = path
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or(path)
        .to_ascii_lowercase();
    if name.starts_with(".env") || name.ends_with(".env") || name.contains(".tfvars") {
        return true;
    }
    let ext = name.rsplit('.').next().unwrap_or("");
    name.contains('.') && CONFIG_EXT.contains(&ext)
}

/// The environment a configuration path belongs to, if it says.
pub fn environment_of(path: &str) -> Option<&'static str> {
    if !is_config_path(path) {
        return None;
    }
    let path = path.replace('\\', "/");
    // Archive members and the like: use the innermost path.
    let path = path.rsplit('!').next().unwrap_or(&path);
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let (name, dirs) = parts.split_last()?;
    // File name tokens (drop the extension-only and common stems).
    for token in name.split(['.', '-', '_']).filter(|t| !t.is_empty()) {
        if let Some(env) = canonical_env(token) {
            return Some(env);
        }
    }
    for (i, dir) in dirs.iter().enumerate().rev() {
        if let Some(env) = canonical_env(dir) {
            let parent_holds_envs =
                i > 0 && ENV_PARENTS.contains(&dirs[i - 1].to_ascii_lowercase().as_str());
            if parent_holds_envs || unambiguous(env) {
                return Some(env);
            }
        }
    }
    None
}

/// Locations of one secret, by environment.
type EnvLocations = BTreeMap<&'static str, Vec<keytrail_types::Location>>;

/// One extra finding per secret value seen in configuration for two or
/// more environments. Deterministic order (by first location).
pub fn shared_across_environments(findings: &[Finding]) -> Vec<Finding> {
    // value hash -> (first finding, env -> locations)
    let mut groups: BTreeMap<[u8; 32], (usize, EnvLocations)> = BTreeMap::new();
    for (fi, f) in findings.iter().enumerate() {
        let key: [u8; 32] = Sha256::digest(f.secret.expose().as_bytes()).into();
        for loc in &f.locations {
            if let Some(env) = environment_of(&loc.path) {
                let g = groups.entry(key).or_insert((fi, BTreeMap::new()));
                let locs = g.1.entry(env).or_default();
                if !locs.contains(loc) {
                    locs.push(loc.clone());
                }
            }
        }
    }
    let mut out: Vec<Finding> = Vec::new();
    for (_, (fi, envs)) in groups {
        if envs.len() < 2 {
            continue;
        }
        let src = &findings[fi];
        let names: Vec<&str> = envs.keys().copied().collect();
        let mut locations: Vec<keytrail_types::Location> =
            envs.values().flatten().cloned().collect();
        locations.sort_by(|a, b| (&a.path, a.line, a.column).cmp(&(&b.path, b.line, b.column)));
        let rules: BTreeSet<&str> = findings
            .iter()
            .filter(|f| f.secret.expose() == src.secret.expose())
            .map(|f| f.rule_id.as_str())
            .collect();
        let fp = {
            let mut h = Sha256::new();
            h.update(RULE_ID.as_bytes());
            h.update([0u8]);
            h.update(src.secret.expose().as_bytes());
            Fingerprint(
                h.finalize()[..16]
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect(),
            )
        };
        let per_env: Vec<String> = envs
            .iter()
            .map(|(env, locs)| {
                let paths: BTreeSet<&str> = locs.iter().map(|l| l.path.as_str()).collect();
                format!(
                    "{env}: {}",
                    paths.into_iter().collect::<Vec<_>>().join(", ")
                )
            })
            .collect();
        out.push(Finding {
            rule_id: RULE_ID.to_string(),
            rule_name: RULE_NAME.to_string(),
            confidence: src.confidence.max(Confidence::Medium),
            severity: if names.contains(&"prod") {
                src.severity.max(Severity::High)
            } else {
                src.severity
            },
            fingerprint: fp,
            secret: src.secret.clone(),
            secret_redacted: src.secret_redacted.clone(),
            context: vec![
                ("environments".to_string(), names.join(",")),
                (
                    "rules".to_string(),
                    rules.into_iter().collect::<Vec<_>>().join(","),
                ),
            ],
            locations,
            notes: vec![format!(
                "same credential in the configuration of {} environments ({})",
                names.len(),
                per_env.join("; ")
            )],
            remediation: None,
            verification: None,
            blast_radius: None,
        });
    }
    out.sort_by(|a, b| {
        let (la, lb) = (&a.locations[0], &b.locations[0]);
        (&la.path, la.line, &a.fingerprint).cmp(&(&lb.path, lb.line, &b.fingerprint))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environments_from_paths() {
        for (path, env) in [
            (".env.dev", Some("dev")),
            (".env.production", Some("prod")),
            ("app/.env.staging.local", Some("staging")),
            ("charts/api/values.staging.yaml", Some("staging")),
            ("charts/api/values-prod.yaml", Some("prod")),
            ("k8s/overlays/production/secret.yaml", Some("prod")),
            ("k8s/overlays/test/kustomization.yaml", Some("test")),
            ("infra/prod.tfvars", Some("prod")),
            ("infra/dev.auto.tfvars", Some("dev")),
            ("config/qa/app.json", Some("qa")),
            ("src/main/resources/application-dev.yml", Some("dev")),
            ("appsettings.Production.json", Some("prod")),
            ("tests/fixtures/config.yaml", None),
            ("src/prod/server.py", None),
            ("test/settings.yaml", None),
            ("values.yaml", None),
        ] {
            assert_eq!(environment_of(path), env, "{path}");
        }
    }
}

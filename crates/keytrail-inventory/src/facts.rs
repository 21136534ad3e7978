//! Reference facts the checks rely on: known vendor AWS accounts
//! (fwdcloudsec/known_aws_accounts), privilege-escalation permission sets
//! (DataDog/pathfinding.cloud) and the effective content of common AWS
//! managed policies. All are embedded (see the crate's NOTICE) and can be
//! replaced at run time from the upstream files.

use crate::policy::PolicyDocument;
use keytrail_types::Diagnostic;
use serde::Deserialize;
use std::collections::HashMap;
use std::path::Path;
use std::sync::OnceLock;

const KNOWN_ACCOUNTS_YAML: &str = include_str!("../data/known_aws_accounts.yaml");
const PRIVESC_PATHS_YAML: &str = include_str!("../data/privesc_paths.yaml");
const MANAGED_POLICIES_JSON: &str = include_str!("../data/aws_managed_policies.json");

/// A vendor (or AWS service) that owns an AWS account id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vendor {
    /// Vendor name, e.g. `Datadog`.
    pub name: String,
    /// Whether the account belongs to an AWS service (`type: aws`).
    pub aws_service: bool,
    /// Whether the entry is current (`enabled: false` marks deprecated ids).
    pub enabled: bool,
}

/// Account id → vendor.
#[derive(Debug, Clone, Default)]
pub struct KnownAccounts {
    by_id: HashMap<String, Vendor>,
}

#[derive(Deserialize)]
struct AccountEntrySyntax {
    name: String,
    #[serde(default)]
    accounts: Vec<serde_yaml_ng::Value>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    enabled: Option<bool>,
}

impl KnownAccounts {
    /// Parses the `accounts.yaml` format of fwdcloudsec/known_aws_accounts.
    pub fn from_yaml(text: &str) -> Result<KnownAccounts, String> {
        let entries: Vec<AccountEntrySyntax> =
            serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?;
        let mut by_id = HashMap::new();
        for e in entries {
            let vendor = Vendor {
                name: e.name.clone(),
                aws_service: e.kind.as_deref() == Some("aws"),
                enabled: e.enabled.unwrap_or(true),
            };
            for id in e.accounts {
                let id = match id {
                    serde_yaml_ng::Value::String(s) => s,
                    serde_yaml_ng::Value::Number(n) => format!("{n:0>12}"),
                    _ => continue,
                };
                by_id.entry(id).or_insert_with(|| vendor.clone());
            }
        }
        Ok(KnownAccounts { by_id })
    }

    /// The vendor owning `account_id`, if known.
    pub fn vendor(&self, account_id: &str) -> Option<&Vendor> {
        self.by_id.get(account_id)
    }

    /// Number of known account ids.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether no account is known.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

/// One privilege-escalation path: the permissions that together escalate.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PrivescPath {
    /// pathfinding.cloud id, e.g. `iam-001`.
    pub id: String,
    /// Name, e.g. `iam:PassRole + ec2:RunInstances`.
    pub name: String,
    /// pathfinding.cloud category (`self-escalation`, `new-passrole` ...).
    pub category: String,
    /// Required permissions, lowercased `service:action`.
    pub required: Vec<String>,
}

/// The set of known privilege-escalation paths.
#[derive(Debug, Clone, Default)]
pub struct PrivescPaths {
    /// Paths in id order.
    pub paths: Vec<PrivescPath>,
}

#[derive(Deserialize)]
struct UpstreamPathSyntax {
    id: String,
    name: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    permissions: Option<UpstreamPermissionsSyntax>,
}

#[derive(Deserialize)]
struct UpstreamPermissionsSyntax {
    #[serde(default)]
    required: Vec<UpstreamPermissionSyntax>,
}

#[derive(Deserialize)]
struct UpstreamPermissionSyntax {
    permission: String,
}

impl PrivescPaths {
    /// Parses keytrail's compact list (`data/privesc_paths.yaml`).
    pub fn from_compact_yaml(text: &str) -> Result<PrivescPaths, String> {
        let mut paths: Vec<PrivescPath> =
            serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?;
        for p in &mut paths {
            for r in &mut p.required {
                *r = r.to_ascii_lowercase();
            }
        }
        paths.retain(|p| !p.required.is_empty());
        paths.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(PrivescPaths { paths })
    }

    /// Reads the upstream pathfinding.cloud layout: every `*.yaml` under
    /// `dir` (recursively) that has an `id` and `permissions.required`.
    /// Unreadable files become diagnostics.
    pub fn from_pathfinding_dir(dir: &Path) -> (PrivescPaths, Vec<Diagnostic>) {
        let (files, mut diags) = keytrail_types::files::yaml_files(dir);
        let mut paths = Vec::new();
        for f in files {
            let text = match std::fs::read_to_string(&f) {
                Ok(t) => t,
                Err(e) => {
                    diags.push(Diagnostic::error(
                        "unreadable",
                        f.display().to_string(),
                        e.to_string(),
                    ));
                    continue;
                }
            };
            match serde_yaml_ng::from_str::<UpstreamPathSyntax>(&text) {
                Ok(p) => {
                    let required: Vec<String> = p
                        .permissions
                        .map(|x| x.required)
                        .unwrap_or_default()
                        .into_iter()
                        .map(|r| r.permission.trim().to_ascii_lowercase())
                        .collect();
                    if !required.is_empty() {
                        paths.push(PrivescPath {
                            id: p.id,
                            name: p.name,
                            category: p.category,
                            required,
                        });
                    }
                }
                Err(e) => diags.push(Diagnostic::error(
                    "malformed_yaml",
                    f.display().to_string(),
                    e.to_string(),
                )),
            }
        }
        paths.sort_by(|a, b| a.id.cmp(&b.id));
        (PrivescPaths { paths }, diags)
    }
}

/// All reference facts used by the checks.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// Vendor account ids.
    pub accounts: KnownAccounts,
    /// Privilege-escalation paths.
    pub privesc: PrivescPaths,
    /// AWS managed policy name → document, for snapshots that attach a
    /// managed policy without including its document.
    pub managed_policies: HashMap<String, PolicyDocument>,
}

impl Facts {
    /// The embedded facts (parsed once).
    pub fn builtin() -> &'static Facts {
        static FACTS: OnceLock<Facts> = OnceLock::new();
        FACTS.get_or_init(|| {
            let accounts = KnownAccounts::from_yaml(KNOWN_ACCOUNTS_YAML)
                .expect("embedded known_aws_accounts.yaml parses (tested)");
            let privesc = PrivescPaths::from_compact_yaml(PRIVESC_PATHS_YAML)
                .expect("embedded privesc_paths.yaml parses (tested)");
            let raw: HashMap<String, serde_json::Value> =
                serde_json::from_str(MANAGED_POLICIES_JSON)
                    .expect("embedded aws_managed_policies.json parses (tested)");
            let managed_policies = raw
                .into_iter()
                .filter(|(k, _)| !k.starts_with('_'))
                .map(|(k, v)| {
                    let doc = PolicyDocument::from_value(&v)
                        .expect("embedded managed policy parses (tested)");
                    (k, doc)
                })
                .collect();
            Facts {
                accounts,
                privesc,
                managed_policies,
            }
        })
    }

    /// The embedded facts with the vendor list and/or the escalation paths
    /// replaced from upstream files: `accounts_yaml` is fwdcloudsec's
    /// `accounts.yaml`, `pathfinding_dir` pathfinding.cloud's `data/paths`.
    pub fn load(
        accounts_yaml: Option<&Path>,
        pathfinding_dir: Option<&Path>,
    ) -> (Facts, Vec<Diagnostic>) {
        let mut facts = Facts::builtin().clone();
        let mut diags = Vec::new();
        if let Some(p) = accounts_yaml {
            match std::fs::read_to_string(p)
                .map_err(|e| e.to_string())
                .and_then(|t| KnownAccounts::from_yaml(&t))
            {
                Ok(a) => facts.accounts = a,
                Err(e) => diags.push(Diagnostic::error(
                    "unreadable",
                    p.display().to_string(),
                    format!("{e}; using the embedded vendor list"),
                )),
            }
        }
        if let Some(d) = pathfinding_dir {
            let (paths, d2) = PrivescPaths::from_pathfinding_dir(d);
            diags.extend(d2);
            if paths.paths.is_empty() {
                diags.push(Diagnostic::error(
                    "no_data",
                    d.display().to_string(),
                    "no privilege-escalation paths found; using the embedded list",
                ));
            } else {
                facts.privesc = paths;
            }
        }
        (facts, diags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_facts_parse() {
        let f = Facts::builtin();
        assert!(f.accounts.len() > 100);
        assert_eq!(f.accounts.vendor("464622532012").unwrap().name, "Datadog");
        assert!(f.privesc.paths.len() >= 60);
        assert!(f.managed_policies.contains_key("AdministratorAccess"));
    }

    /// The embedded extract is what `from_pathfinding_dir` makes of the upstream
    /// paths committed in `testdata/pathfinding.cloud` (regenerate it when they change).
    #[test]
    fn embedded_privesc_paths_match_the_upstream_copy() {
        let dir = keytrail_testkit::data::pathfinding_paths();
        let (upstream, diags) = PrivescPaths::from_pathfinding_dir(&dir);
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(upstream.paths, Facts::builtin().privesc.paths);
    }

    #[test]
    fn load_reads_the_upstream_files_at_run_time() {
        // The upstream accounts.yaml (embedded verbatim) with one vendor added, so the
        // result shows the file was read.
        let dir = tempfile::tempdir().unwrap();
        let accounts = dir.path().join("accounts.yaml");
        std::fs::write(
            &accounts,
            format!("{KNOWN_ACCOUNTS_YAML}\n- name: Keytrail Test Vendor\n  accounts: ['000000000042']\n"),
        )
        .unwrap();
        let paths = keytrail_testkit::data::pathfinding_paths();
        let (facts, diags) = Facts::load(Some(&accounts), Some(&paths));
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(
            facts.accounts.vendor("454464851268").unwrap().name,
            "Cloudhealth"
        );
        assert_eq!(
            facts.accounts.vendor("000000000042").unwrap().name,
            "Keytrail Test Vendor"
        );
        assert!(facts.privesc.paths.iter().any(|p| p.id == "ec2-001"));
    }

    #[test]
    fn load_reports_bad_paths_and_keeps_builtins() {
        let (facts, diags) = Facts::load(
            Some(Path::new("/nonexistent/accounts.yaml")),
            Some(Path::new("/nonexistent/paths")),
        );
        assert!(diags.len() >= 2);
        assert!(diags[0].subject.contains("accounts.yaml"));
        assert!(!facts.privesc.paths.is_empty());
        assert!(!facts.accounts.is_empty());
    }
}

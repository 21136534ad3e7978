//! The inventory: every non-human identity and credential in a snapshot,
//! with age, last use, owner (or `UNOWNED`), environment, a privilege
//! summary and its findings.

use crate::Timestamp;
use crate::checks::{PostureFinding, Report, check_all_with, identity_tags};
use crate::facts::Facts;
use crate::owners::{Environment, Owners};
use crate::privilege::PrivilegeIndex;
use crate::snapshot::Snapshot;
use crate::snapshot::gcp::Binding;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// Owner shown for identities no owners entry matches.
pub const UNOWNED: &str = "UNOWNED";

/// Days without use after which an identity is flagged `unused`.
const UNUSED_DAYS: i64 = 90;

/// One identity or credential.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IdentityRecord {
    /// Stable id: an ARN (AWS), `projects/P/serviceAccounts/EMAIL` or a key
    /// name (GCP), `entra:application/APP_ID` (Entra ID).
    pub id: String,
    /// `aws.iam.role`, `aws.iam.user`, `aws.iam.access_key`,
    /// `gcp.service_account`, `gcp.service_account_key`,
    /// `entra.application`, `entra.client_secret`, `entra.certificate`,
    /// `entra.managed_identity`.
    pub kind: String,
    /// `aws`, `gcp` or `azure`.
    pub provider: String,
    /// Short name (role name, user name, key id, app display name).
    pub name: String,
    /// For credentials: the identity they belong to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// Creation time (RFC 3339).
    pub created: Option<String>,
    /// Age in days.
    pub age_days: Option<i64>,
    /// Last use (RFC 3339), when known.
    pub last_used: Option<String>,
    /// Days since last use; for never-used identities, their age.
    pub days_unused: Option<i64>,
    /// Whether it is known never to have been used.
    pub never_used: bool,
    /// Owner, or `UNOWNED`.
    pub owner: String,
    /// Purpose from the owners file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// Environment from the owners file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<Environment>,
    /// Privilege summary: `admin`, `privilege-escalation`, `data-access`,
    /// `write`, `read-only`, `none`, or `unknown`.
    pub privilege: Vec<String>,
    /// Ids of the checks that failed on it.
    pub findings: Vec<String>,
    /// What makes it stand out: `unowned`, `unused`, `over-privileged`.
    pub flags: Vec<String>,
}

/// Builds the inventory with the embedded facts.
pub fn inventory(
    snapshot: &Snapshot,
    owners: Option<&Owners>,
    now: Timestamp,
) -> Vec<IdentityRecord> {
    let facts = Facts::builtin();
    let report = check_all_with(snapshot, owners, now, facts);
    inventory_with(snapshot, owners, now, facts, &report)
}

struct Builder<'a> {
    now: Timestamp,
    owners: Option<&'a Owners>,
    tags: std::collections::HashMap<&'a str, Vec<(String, String)>>,
    out: Vec<IdentityRecord>,
}

impl Builder<'_> {
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        id: String,
        kind: &str,
        name: String,
        parent: Option<String>,
        created: Option<Timestamp>,
        last_used: Option<Timestamp>,
        never_used: bool,
        privilege: Vec<String>,
    ) {
        let age = created.map(|c| (self.now - c).num_days());
        let days_unused = match (last_used, never_used) {
            (Some(t), _) => Some((self.now - t).num_days()),
            (None, true) => age,
            _ => None,
        };
        let empty = Vec::new();
        let own_tags = self.tags.get(id.as_str()).unwrap_or(&empty);
        let ownership = self.owners.and_then(|o| {
            o.lookup(&id, own_tags).or_else(|| {
                let p = parent.as_deref()?;
                o.lookup(p, self.tags.get(p).unwrap_or(&empty))
            })
        });
        self.out.push(IdentityRecord {
            provider: kind
                .split('.')
                .next()
                .unwrap_or("")
                .replace("entra", "azure"),
            kind: kind.to_string(),
            name,
            parent,
            created: created.map(|t| t.to_rfc3339()),
            age_days: age,
            last_used: last_used.map(|t| t.to_rfc3339()),
            days_unused,
            never_used,
            owner: ownership
                .as_ref()
                .map(|o| o.owner.clone())
                .unwrap_or_else(|| UNOWNED.to_string()),
            purpose: ownership.as_ref().and_then(|o| o.purpose.clone()),
            environment: ownership.as_ref().and_then(|o| o.environment),
            privilege,
            findings: Vec::new(),
            flags: Vec::new(),
            id,
        });
    }
}

/// Privilege labels of each service principal's application id from the
/// role assignments (`admin` for Owner, Contributor and the access-granting
/// roles at any scope, `read-only` for Reader, `write` otherwise); empty
/// when the assignments were not collected.
pub fn azure_privileges(
    az: &crate::snapshot::azure::AzureSnapshot,
) -> HashMap<String, Vec<String>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    let (Some(sps), Some(assignments)) = (
        az.service_principals.present(),
        az.role_assignments.present(),
    ) else {
        return out;
    };
    let app_of: HashMap<&str, &str> = sps
        .iter()
        .map(|s| (s.id.as_str(), s.app_id.as_str()))
        .collect();
    for s in sps {
        out.insert(s.app_id.clone(), vec!["none".into()]);
    }
    for a in assignments {
        let Some(app) = app_of.get(a.principal_id.as_str()) else {
            continue;
        };
        let label = match a.role_definition_name.as_deref().unwrap_or("") {
            "Owner"
            | "Contributor"
            | "User Access Administrator"
            | "Role Based Access Control Administrator" => "admin",
            "Reader" => "read-only",
            r if r.ends_with("Reader") => "read-only",
            r if r.contains("Data") => "data-access",
            _ => "write",
        };
        let v = out.entry(app.to_string()).or_default();
        v.retain(|l| l != "none");
        if !v.iter().any(|l| l == label) {
            v.push(label.to_string());
        }
    }
    // Most severe first, as for the other clouds.
    let rank = |l: &String| {
        [
            "admin",
            "privilege-escalation",
            "data-access",
            "write",
            "read-only",
            "none",
        ]
        .iter()
        .position(|x| x == l)
        .unwrap_or(6)
    };
    for v in out.values_mut() {
        v.sort_by_key(rank);
    }
    out
}

/// GCP role → privilege label.
fn gcp_role_label(role: &str) -> &'static str {
    match role {
        "roles/owner" | "roles/editor" => "admin",
        "roles/iam.serviceAccountTokenCreator"
        | "roles/iam.serviceAccountUser"
        | "roles/iam.serviceAccountKeyAdmin"
        | "roles/resourcemanager.projectIamAdmin"
        | "roles/iam.securityAdmin"
        | "roles/iam.roleAdmin" => "privilege-escalation",
        r if r.ends_with(".objectViewer")
            || r.ends_with(".dataViewer")
            || r.ends_with(".secretAccessor")
            || r.starts_with("roles/storage.")
            || r.starts_with("roles/bigquery.data")
            || r == "roles/cloudkms.cryptoKeyDecrypter" =>
        {
            "data-access"
        }
        "roles/viewer" | "roles/browser" => "read-only",
        r if r.ends_with("viewer") || r.ends_with("Viewer") => "read-only",
        _ => "write",
    }
}

/// The privilege labels of a service account from the project's IAM
/// bindings that name it (most severe first; `none` when none does).
pub fn gcp_labels(bindings: &[Binding], email: &str) -> Vec<String> {
    let member = format!("serviceAccount:{email}");
    let mut labels: Vec<&str> = bindings
        .iter()
        .filter(|b| b.members.iter().any(|m| m == &member))
        .map(|b| gcp_role_label(&b.role))
        .collect();
    let rank = |l: &str| match l {
        "admin" => 0,
        "privilege-escalation" => 1,
        "data-access" => 2,
        "write" => 3,
        _ => 4,
    };
    labels.sort_by_key(|l| rank(l));
    labels.dedup();
    if labels.contains(&"admin") {
        labels.retain(|l| *l == "admin");
    } else if labels
        .iter()
        .any(|l| matches!(*l, "privilege-escalation" | "data-access"))
    {
        labels.retain(|l| *l != "write" && *l != "read-only");
    } else {
        labels.truncate(1);
    }
    if labels.is_empty() {
        vec!["none".into()]
    } else {
        labels.into_iter().map(String::from).collect()
    }
}

/// Builds the inventory from an existing report (avoids running the checks twice).
pub fn inventory_with(
    snapshot: &Snapshot,
    owners: Option<&Owners>,
    now: Timestamp,
    facts: &Facts,
    report: &Report,
) -> Vec<IdentityRecord> {
    let mut b = Builder {
        now,
        owners,
        tags: identity_tags(snapshot),
        out: Vec::new(),
    };
    if let Some(aws) = &snapshot.aws {
        let auth = aws.authorization.present();
        let mut idx = auth.map(|a| PrivilegeIndex::new(a, facts));
        let keys = crate::checks::access_keys(aws).unwrap_or_default();
        let report_rows = aws.credential_report.present();
        if let Some(auth) = auth {
            let idx = idx.as_mut().expect("auth present");
            for r in &auth.roles {
                if r.path.starts_with("/aws-service-role/") || r.path.starts_with("/aws-reserved/")
                {
                    continue;
                }
                let p = idx.role(r);
                let mut labels: Vec<String> = p.labels().into_iter().map(String::from).collect();
                if !p.unknown_policies.is_empty() && labels == ["none"] {
                    labels = vec!["unknown".into()];
                }
                b.push(
                    r.arn.clone(),
                    "aws.iam.role",
                    r.name.clone(),
                    None,
                    r.created,
                    r.last_used,
                    false,
                    labels,
                );
            }
            let mut keys_by_user: HashMap<&str, Vec<&crate::checks::KeyView>> = HashMap::new();
            for k in &keys {
                keys_by_user.entry(k.user.as_str()).or_default().push(k);
            }
            let report_by_user: HashMap<&str, bool> = report_rows
                .map(|rows| {
                    rows.iter()
                        .map(|r| (r.user.as_str(), r.password_enabled))
                        .collect()
                })
                .unwrap_or_default();
            for u in &auth.users {
                let user_keys: Vec<&crate::checks::KeyView> = keys_by_user
                    .get(u.name.as_str())
                    .cloned()
                    .unwrap_or_default();
                let console = report_by_user
                    .get(u.name.as_str())
                    .copied()
                    .unwrap_or(false);
                // A console user without keys is a person, not a machine identity.
                if console && user_keys.is_empty() {
                    continue;
                }
                let p = idx.user(u);
                let last = user_keys.iter().filter_map(|k| k.last_used.flatten()).max();
                let never =
                    !user_keys.is_empty() && user_keys.iter().all(|k| k.last_used == Some(None));
                b.push(
                    u.arn.clone(),
                    "aws.iam.user",
                    u.name.clone(),
                    None,
                    u.created,
                    last,
                    never,
                    p.labels().into_iter().map(String::from).collect(),
                );
            }
        }
        let privileges: HashMap<String, Vec<String>> = b
            .out
            .iter()
            .map(|r| (r.id.clone(), r.privilege.clone()))
            .collect();
        for k in &keys {
            let parent_priv = privileges
                .get(&k.user_arn)
                .cloned()
                .unwrap_or_else(|| vec!["unknown".into()]);
            b.push(
                format!("{}/access-key/{}", k.user_arn, k.label.replace(' ', "-")),
                "aws.iam.access_key",
                k.label.clone(),
                Some(k.user_arn.clone()),
                k.created,
                k.last_used.flatten(),
                k.last_used == Some(None),
                parent_priv,
            );
            if !k.active
                && let Some(r) = b.out.last_mut()
            {
                r.flags.push("inactive".into());
            }
        }
    }
    for p in &snapshot.gcp {
        let bindings = p.iam_policy.present().map(Vec::as_slice).unwrap_or(&[]);
        let mut sas: BTreeMap<String, ()> = BTreeMap::new();
        for bnd in bindings {
            for m in &bnd.members {
                if let Some(sa) = m.strip_prefix("serviceAccount:")
                    && (sa.ends_with(&format!("@{}.iam.gserviceaccount.com", p.id))
                        || sa.ends_with("-compute@developer.gserviceaccount.com")
                        || sa.ends_with("@appspot.gserviceaccount.com"))
                {
                    sas.insert(sa.to_string(), ());
                }
            }
        }
        let keys = p.keys.present().map(Vec::as_slice).unwrap_or(&[]);
        for k in keys {
            sas.insert(k.service_account.clone(), ());
        }
        // Every service account of the project, with or without keys and roles.
        for a in p
            .service_accounts
            .present()
            .map(Vec::as_slice)
            .unwrap_or(&[])
        {
            if !a.email.is_empty() {
                sas.insert(a.email.clone(), ());
            }
        }
        let last_auth = p.key_last_auth.present();
        for sa in sas.keys() {
            let labels = if p.iam_policy.present().is_some() {
                gcp_labels(bindings, sa)
            } else {
                vec!["unknown".into()]
            };
            b.push(
                format!("projects/{}/serviceAccounts/{sa}", p.id),
                "gcp.service_account",
                sa.clone(),
                None,
                None,
                None,
                false,
                labels.clone(),
            );
            for k in keys
                .iter()
                .filter(|k| &k.service_account == sa && k.key_type == "USER_MANAGED")
            {
                // With the activity file, a key without a recorded
                // authentication is known never to have been used.
                let id = crate::snapshot::gcp::key_id(&k.name);
                let used = last_auth.and_then(|m| m.get(id).copied());
                b.push(
                    k.name.clone(),
                    "gcp.service_account_key",
                    id.to_string(),
                    Some(format!("projects/{}/serviceAccounts/{sa}", p.id)),
                    k.valid_after,
                    used,
                    last_auth.is_some() && used.is_none(),
                    labels.clone(),
                );
            }
        }
    }
    let azure_labels = snapshot
        .azure
        .as_ref()
        .map(azure_privileges)
        .unwrap_or_default();
    let azure_label = |app_id: &str| {
        azure_labels
            .get(app_id)
            .cloned()
            .unwrap_or_else(|| vec!["unknown".into()])
    };
    if let Some(apps) = snapshot
        .azure
        .as_ref()
        .and_then(|a| a.applications.present())
    {
        for a in apps {
            let id = crate::checks::entra_app_id(&a.app_id);
            b.push(
                id.clone(),
                "entra.application",
                a.display_name.clone(),
                None,
                a.created,
                None,
                false,
                azure_label(&a.app_id),
            );
            for c in &a.credentials {
                let kind = if c.kind == "password" {
                    "entra.client_secret"
                } else {
                    "entra.certificate"
                };
                b.push(
                    format!("{id}/{}/{}", c.kind, c.key_id),
                    kind,
                    c.display_name.clone().unwrap_or_else(|| c.key_id.clone()),
                    Some(id.clone()),
                    c.start,
                    None,
                    false,
                    vec!["unknown".into()],
                );
            }
        }
    }
    // Managed identities: service principals without an application
    // object of their own, judged by their role assignments.
    if let Some(sps) = snapshot
        .azure
        .as_ref()
        .and_then(|a| a.service_principals.present())
    {
        for sp in sps
            .iter()
            .filter(|s| s.service_principal_type.as_deref() == Some("ManagedIdentity"))
        {
            b.push(
                crate::checks::entra_app_id(&sp.app_id),
                "entra.managed_identity",
                sp.display_name.clone().unwrap_or_else(|| sp.app_id.clone()),
                None,
                None,
                None,
                false,
                azure_label(&sp.app_id),
            );
        }
    }
    let mut records = b.out;
    // Index findings by resource and identity, and by credential id, so
    // attaching them is linear in the number of findings.
    let mut by_subject: HashMap<&str, Vec<&PostureFinding>> = HashMap::new();
    let mut by_credential: HashMap<&str, Vec<&PostureFinding>> = HashMap::new();
    for f in &report.findings {
        by_subject.entry(f.resource.as_str()).or_default().push(f);
        if f.identity != f.resource {
            by_subject.entry(f.identity.as_str()).or_default().push(f);
        }
        for key in ["access_key_id", "key_id"] {
            if let Some(k) = f.evidence.get(key).and_then(|v| v.as_str()) {
                by_credential.entry(k).or_default().push(f);
            }
        }
        if let Some(ids) = f.evidence.get("access_key_ids").and_then(|v| v.as_array()) {
            for k in ids.iter().filter_map(|v| v.as_str()) {
                by_credential.entry(k).or_default().push(f);
            }
        }
    }
    let none: Vec<&PostureFinding> = Vec::new();
    for r in &mut records {
        let key_id = r.id.rsplit('/').next().unwrap_or("");
        let candidates: &Vec<&PostureFinding> = match r.kind.as_str() {
            "aws.iam.access_key" => by_credential.get(r.name.as_str()).unwrap_or(&none),
            "entra.client_secret" | "entra.certificate" => {
                by_credential.get(key_id).unwrap_or(&none)
            }
            _ => by_subject.get(r.id.as_str()).unwrap_or(&none),
        };
        let mut ids: Vec<String> = candidates
            .iter()
            .filter(|f| match r.kind.as_str() {
                "entra.client_secret" | "entra.certificate" => {
                    r.parent.as_deref() == Some(f.resource.as_str())
                }
                "aws.iam.user" => !f.evidence.contains_key("access_key_id"),
                _ => true,
            })
            .map(|f| f.check.clone())
            .collect();
        ids.sort();
        ids.dedup();
        r.findings = ids;
        if r.owner == UNOWNED {
            r.flags.push("unowned".into());
        }
        if r.days_unused.is_some_and(|d| d >= UNUSED_DAYS) {
            r.flags.push("unused".into());
        }
        if r.privilege
            .iter()
            .any(|p| p == "admin" || p == "privilege-escalation")
        {
            r.flags.push("over-privileged".into());
        }
    }
    records
}

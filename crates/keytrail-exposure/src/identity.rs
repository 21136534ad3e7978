//! Who a leaked AWS key or Google Cloud service-account key belongs to, and
//! what it can reach, from a cloud snapshot (offline, or collected live into
//! one by the front-end).
//!
//! A Google Cloud key id is looked up in the projects' key lists; its service
//! account's roles come from the project's IAM policy, classed by the
//! inventory; its last authentication from the Policy Analyzer activity.
//!
//! A leaked Entra ID client secret names no key id, but the application
//! (client) id is next to it in the files that leak it, and Graph lists each
//! client secret of an application with its `keyId` and `hint` (its first
//! three characters, which the redacted secret keeps): the one secret of the
//! application with that hint is the leaked one ([`Directory::resolve`]), and
//! its `keyId` is what Entra's service-principal sign-ins name
//! (`servicePrincipalCredentialKeyId`).
//!
//! The key id is looked up in the IAM users' access keys; the user's policies
//! (inline, attached, its groups') go through the inventory's policy engine for
//! the privilege class, and are evaluated against the snapshot's buckets and roles
//! for the reach: the buckets it may read or write, the secrets it may read, and
//! the roles it may assume (both its own policy and the role's trust policy must
//! allow it).

use std::collections::HashMap;

use keytrail_inventory::facts::Facts;
use keytrail_inventory::owners::{Owners, Ownership};
use keytrail_inventory::policy::{Effect, PolicyDocument, covers};
use keytrail_inventory::privilege::PrivilegeIndex;
use keytrail_inventory::snapshot::aws::{AwsSnapshot, IamUser};
use keytrail_inventory::snapshot::azure::AzureSnapshot;
use keytrail_inventory::snapshot::gcp::{Binding, GcpProject};

use crate::leaks::{CredentialKind, Leak};
use keytrail_inventory::{Snapshot, Timestamp};
use serde::Serialize;

/// The identity behind a key, as the snapshot tells it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct KeyIdentity {
    /// ARN of the IAM user; for Google Cloud the service account's resource
    /// name (`projects/P/serviceAccounts/EMAIL`).
    pub arn: String,
    /// User name; for Google Cloud the service account's e-mail.
    pub name: String,
    /// Account id; for Google Cloud the project id.
    pub account_id: String,
    /// The principal the detect engine names in its alerts for this identity
    /// (the IAM user ARN, or the service account's e-mail in lower case).
    #[serde(skip)]
    pub principal: String,
    /// `active` or `inactive` (as listed), from the snapshot.
    pub key_status: String,
    /// When the key was created.
    pub key_created: Option<String>,
    /// Last use AWS recorded for the key (`get-access-key-last-used`), when known.
    pub key_last_used: Option<String>,
    /// Owner from the owners file (`UNOWNED` when no entry applies).
    pub owner: String,
    /// Purpose from the owners file.
    pub purpose: Option<String>,
    /// Environment from the owners file.
    pub environment: Option<String>,
    /// Privilege labels, most severe first (`admin`, `privilege-escalation`,
    /// `data-access`, `write`, `read-only`, `none`, `unknown`).
    pub privilege: Vec<String>,
    /// What it reaches.
    pub reach: Reach,
}

/// What an identity can reach.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Reach {
    /// Buckets of the snapshot it may read objects from.
    pub buckets_read: Vec<String>,
    /// Buckets of the snapshot it may write objects to.
    pub buckets_write: Vec<String>,
    /// Secrets Manager secrets it may read: the resource patterns its policies allow
    /// `secretsmanager:GetSecretValue` on (`*` = every secret).
    pub secrets: Vec<String>,
    /// Roles of the snapshot it may assume (its policy allows `sts:AssumeRole` on the
    /// role and the role's trust policy allows it).
    pub assumable_roles: Vec<String>,
    /// Whether Deny statements or conditions were ignored (the reach is then an upper
    /// bound).
    pub conditions_ignored: bool,
    /// Google Cloud: the roles the project's IAM policy grants the service
    /// account (conditional bindings included; a binding on a folder or the
    /// organisation is not in a project snapshot).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// Google Cloud: the service accounts of the project it can act as (a
    /// project-level `roles/iam.serviceAccountTokenCreator`,
    /// `roles/iam.serviceAccountUser` or owner/editor lets it mint their
    /// tokens or attach them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub impersonates: Vec<String>,
}

/// Key id → identity, over one or more AWS accounts of a snapshot.
#[derive(Default)]
pub struct Directory {
    keys: HashMap<String, KeyIdentity>,
    /// Account ids the snapshot describes (with their key lists collected).
    pub accounts: Vec<String>,
    /// Whether the snapshot lists access keys at all (without them a key not found is
    /// "unknown", not "deleted").
    pub has_key_lists: bool,
    /// Every long-lived key of the snapshot: (key id, user ARN, active).
    pub long_lived: Vec<(String, String, bool)>,
    /// What the records say the identities came from: `snapshot` (a directory the
    /// user gave) or `live` (collected for this run); empty means `snapshot`.
    pub source: &'static str,
    /// Google Cloud projects the snapshot describes with their key lists (a
    /// key of one of them not listed was deleted).
    pub gcp_projects: Vec<String>,
    /// Entra ID applications of the snapshot (application id, lower case),
    /// with their client secrets listed.
    pub azure_apps: Vec<String>,
    /// Every client secret of those applications.
    azure_secrets: Vec<AzureSecret>,
}

/// A client secret of an application, as Graph lists it.
#[derive(Debug, Clone)]
struct AzureSecret {
    app_id: String,
    key_id: String,
    hint: Option<String>,
}

impl Directory {
    /// Builds the directory from a snapshot.
    pub fn from_snapshot(snap: &Snapshot, owners: Option<&Owners>, now: Timestamp) -> Directory {
        let mut d = Directory::default();
        if let Some(aws) = &snap.aws {
            d.add_account(aws, owners, now);
        }
        for p in &snap.gcp {
            d.add_project(p, owners, now);
        }
        if let Some(az) = &snap.azure {
            d.add_azure(az, owners, now);
        }
        d
    }

    fn add_azure(&mut self, az: &AzureSnapshot, owners: Option<&Owners>, now: Timestamp) {
        let Some(apps) = az.applications.present() else {
            return;
        };
        let labels = keytrail_inventory::inventory::azure_privileges(az);
        let sps = az.service_principals.present();
        let assignments = az.role_assignments.present();
        for a in apps {
            let app_id = a.app_id.to_ascii_lowercase();
            self.azure_apps.push(app_id.clone());
            let sp = sps.and_then(|v| v.iter().find(|s| s.app_id.eq_ignore_ascii_case(&app_id)));
            let mut roles: Vec<String> = match (sp, assignments) {
                (Some(sp), Some(ra)) => ra
                    .iter()
                    .filter(|r| r.principal_id.eq_ignore_ascii_case(&sp.id))
                    .map(|r| {
                        format!(
                            "{} on {}",
                            r.role_definition_name
                                .as_deref()
                                .unwrap_or("(unnamed role)"),
                            r.scope
                        )
                    })
                    .collect(),
                _ => Vec::new(),
            };
            roles.sort();
            let privilege = if assignments.is_some() && sps.is_some() {
                labels
                    .get(&a.app_id)
                    .cloned()
                    .unwrap_or_else(|| vec!["none".into()])
            } else {
                vec!["unknown".into()]
            };
            let id = format!("entra:application/{}", a.app_id);
            let own = owners.and_then(|o| o.lookup(&id, &[]));
            for c in a.credentials.iter().filter(|c| c.kind == "password") {
                let key = c.key_id.to_ascii_lowercase();
                if key.is_empty() {
                    continue;
                }
                self.azure_secrets.push(AzureSecret {
                    app_id: app_id.clone(),
                    key_id: key.clone(),
                    hint: c.hint.clone(),
                });
                self.keys.insert(
                    key,
                    KeyIdentity {
                        arn: id.clone(),
                        name: a.display_name.clone(),
                        account_id: sp
                            .and_then(|s| s.app_owner_organization_id.clone())
                            .unwrap_or_default(),
                        principal: sp.map(|s| s.id.to_ascii_lowercase()).unwrap_or_default(),
                        key_status: if c.end.is_some_and(|e| e < now) {
                            "inactive"
                        } else {
                            "active"
                        }
                        .into(),
                        key_created: c.start.map(|t| t.to_rfc3339()),
                        key_last_used: None,
                        owner: owner(own.as_ref()),
                        purpose: own.as_ref().and_then(|o| o.purpose.clone()),
                        environment: environment(own.as_ref()),
                        privilege: privilege.clone(),
                        reach: Reach {
                            roles: roles.clone(),
                            ..Reach::default()
                        },
                    },
                );
            }
        }
    }

    /// Ties a leaked Entra ID client secret to its `keyId`: the one client
    /// secret of the application named next to it whose `hint` (first three
    /// characters) is the secret's. The leak's id becomes that key id, with a
    /// note; without a snapshot of the application, or with several secrets
    /// of the same hint, it keeps its fingerprint and says why.
    pub fn resolve(&self, leak: &mut Leak) {
        if leak.kind != CredentialKind::AzureClientSecret || self.azure_apps.is_empty() {
            return;
        }
        let Some(app) = leak.principal.as_deref().map(str::to_ascii_lowercase) else {
            return;
        };
        let hint: String = leak
            .secret_redacted
            .split('…')
            .next()
            .unwrap_or("")
            .chars()
            .take(3)
            .collect();
        if hint.chars().count() < 3 || !self.azure_apps.contains(&app) {
            return;
        }
        let same: Vec<&AzureSecret> = self
            .azure_secrets
            .iter()
            .filter(|s| s.app_id == app && s.hint.as_deref() == Some(hint.as_str()))
            .collect();
        match same.as_slice() {
            [one] => {
                leak.notes.push(format!(
                    "the secret is key {} of application {app}: the only client secret of the application whose first three characters (Graph's hint) are the leaked secret's",
                    one.key_id
                ));
                leak.credential_id = one.key_id.clone();
            }
            [] => {}
            many => leak.notes.push(format!(
                "{} client secrets of application {app} start with the leaked secret's first three characters: which one leaked cannot be told without the secret",
                many.len()
            )),
        }
    }

    fn add_project(&mut self, p: &GcpProject, owners: Option<&Owners>, now: Timestamp) {
        let Some(keys) = p.keys.present() else {
            return;
        };
        self.gcp_projects.push(p.id.clone());
        let bindings = p.iam_policy.present();
        let accounts: Vec<&str> = p
            .service_accounts
            .present()
            .map(|v| v.iter().map(|a| a.email.as_str()).collect())
            .unwrap_or_default();
        let last_auth = p.key_last_auth.present();
        for k in keys.iter().filter(|k| k.key_type != "SYSTEM_MANAGED") {
            let id = keytrail_inventory::snapshot::gcp::key_id(&k.name);
            if id.is_empty() {
                continue;
            }
            let sa = k.service_account.as_str();
            let resource = format!("projects/{}/serviceAccounts/{sa}", p.id);
            let (privilege, reach) = match bindings {
                Some(b) => gcp_reach(b, sa, &accounts),
                None => (vec!["unknown".into()], Reach::default()),
            };
            let own =
                owners.and_then(|o| o.lookup(&k.name, &[]).or_else(|| o.lookup(&resource, &[])));
            // Keys that expire (validBeforeTime; 9999-12-31 when they never do).
            let expired = k.valid_before.is_some_and(|t| t < now);
            self.keys.insert(
                id.to_string(),
                KeyIdentity {
                    arn: resource,
                    name: sa.to_string(),
                    account_id: p.id.clone(),
                    principal: sa.to_ascii_lowercase(),
                    key_status: if k.disabled || expired {
                        "inactive"
                    } else {
                        "active"
                    }
                    .into(),
                    key_created: k.valid_after.map(|t| t.to_rfc3339()),
                    key_last_used: last_auth.and_then(|m| m.get(id)).map(|t| t.to_rfc3339()),
                    owner: owner(own.as_ref()),
                    purpose: own.as_ref().and_then(|o| o.purpose.clone()),
                    environment: environment(own.as_ref()),
                    privilege,
                    reach,
                },
            );
        }
    }

    fn add_account(&mut self, aws: &AwsSnapshot, owners: Option<&Owners>, _now: Timestamp) {
        let account = aws.account_id().unwrap_or_default();
        if !account.is_empty() {
            self.accounts.push(account.clone());
        }
        let Some(keys) = aws.access_keys.present() else {
            return;
        };
        self.has_key_lists = true;
        let auth = aws.authorization.present();
        let facts = Facts::builtin();
        let mut idx = auth.map(|a| PrivilegeIndex::new(a, facts));
        let buckets: Vec<&str> = aws
            .buckets
            .present()
            .map(|b| b.iter().map(|b| b.name.as_str()).collect())
            .unwrap_or_default();
        let mut per_user: HashMap<String, (Vec<String>, Reach)> = HashMap::new();
        for k in keys {
            let user: Option<&IamUser> =
                auth.and_then(|a| a.users.iter().find(|u| u.name == k.user));
            let arn = user
                .map(|u| u.arn.clone())
                .unwrap_or_else(|| format!("arn:aws:iam::{account}:user/{}", k.user));
            self.long_lived.push((k.id.clone(), arn.clone(), k.active));
            let (privilege, reach) = per_user
                .entry(arn.clone())
                .or_insert_with(|| match (user, idx.as_mut(), auth) {
                    (Some(u), Some(idx), Some(auth)) => {
                        let p = idx.user(u);
                        let mut labels: Vec<String> =
                            p.labels().into_iter().map(String::from).collect();
                        if !p.unknown_policies.is_empty() && labels == ["none"] {
                            labels = vec!["unknown".into()];
                        }
                        let docs = user_documents(u, auth, facts);
                        (labels, reach(&docs, &u.arn, &account, auth, &buckets))
                    }
                    _ => (vec!["unknown".into()], Reach::default()),
                })
                .clone();
            let tags: Vec<(String, String)> = user
                .map(|u| {
                    u.tags
                        .iter()
                        .map(|t| (t.key.clone(), t.value.clone()))
                        .collect()
                })
                .unwrap_or_default();
            let own = owners.and_then(|o| o.lookup(&arn, &tags));
            self.keys.insert(
                k.id.clone(),
                KeyIdentity {
                    principal: arn.clone(),
                    arn,
                    name: k.user.clone(),
                    account_id: account.clone(),
                    key_status: if k.active { "active" } else { "inactive" }.into(),
                    key_created: k.created.map(|t| t.to_rfc3339()),
                    key_last_used: k.last_used.map(|t| t.to_rfc3339()),
                    owner: owner(own.as_ref()),
                    purpose: own.as_ref().and_then(|o| o.purpose.clone()),
                    environment: environment(own.as_ref()),
                    privilege,
                    reach,
                },
            );
        }
    }

    /// The identity of key `id`, if the snapshot lists it.
    pub fn lookup(&self, id: &str) -> Option<&KeyIdentity> {
        self.keys.get(id)
    }
}

/// The owner an owners-file entry names (`UNOWNED` without one).
fn owner(own: Option<&Ownership>) -> String {
    own.map_or_else(
        || keytrail_inventory::UNOWNED.to_string(),
        |o| o.owner.clone(),
    )
}

/// The environment an owners-file entry names.
fn environment(own: Option<&Ownership>) -> Option<String> {
    own.and_then(|o| o.environment.map(|e| e.as_str().to_string()))
}

/// A service account's privilege labels and reach from its project's IAM
/// bindings: the roles that name it, and the project's service accounts it
/// can act as.
fn gcp_reach(bindings: &[Binding], email: &str, accounts: &[&str]) -> (Vec<String>, Reach) {
    let member = format!("serviceAccount:{email}");
    let mut r = Reach::default();
    for b in bindings {
        if b.members.iter().any(|m| m.eq_ignore_ascii_case(&member)) && !r.roles.contains(&b.role) {
            r.roles.push(b.role.clone());
        }
    }
    r.roles.sort();
    let acts_as = r.roles.iter().any(|role| {
        matches!(
            role.as_str(),
            "roles/owner"
                | "roles/editor"
                | "roles/iam.serviceAccountTokenCreator"
                | "roles/iam.serviceAccountUser"
        )
    });
    if acts_as {
        r.impersonates = accounts
            .iter()
            .filter(|a| !a.eq_ignore_ascii_case(email))
            .map(|a| a.to_string())
            .collect();
        r.impersonates.sort();
    }
    (
        keytrail_inventory::inventory::gcp_labels(bindings, email),
        r,
    )
}

/// Every policy document that applies to a user (inline, attached managed, and its
/// groups' inline and attached), with managed documents from the snapshot or the
/// embedded AWS-managed policies.
fn user_documents<'a>(
    u: &'a IamUser,
    auth: &'a keytrail_inventory::snapshot::aws::AuthorizationDetails,
    facts: &'a Facts,
) -> Vec<&'a PolicyDocument> {
    let managed = |arn: &str| -> Option<&'a PolicyDocument> {
        auth.policies
            .get(arn)
            .and_then(|p| p.document.as_ref())
            .or_else(|| {
                let (prefix, name) = arn.rsplit_once('/')?;
                prefix
                    .contains(":iam::aws:policy")
                    .then(|| facts.managed_policies.get(name))
                    .flatten()
            })
    };
    let mut docs: Vec<&PolicyDocument> = u.inline.iter().map(|p| &p.document).collect();
    docs.extend(u.attached.iter().filter_map(|a| managed(&a.policy_arn)));
    for g in &u.groups {
        if let Some(g) = auth.groups.iter().find(|x| &x.name == g) {
            docs.extend(g.inline.iter().map(|p| &p.document));
            docs.extend(g.attached.iter().filter_map(|a| managed(&a.policy_arn)));
        }
    }
    docs
}

/// Whether the documents allow `action` on `resource` (an explicit Deny wins;
/// conditions are not evaluated, so this is an upper bound, flagged in `cond`).
fn allows(docs: &[&PolicyDocument], action: &str, resource: &str, cond: &mut bool) -> bool {
    let mut allowed = false;
    for d in docs {
        for st in &d.statements {
            if !st.matches_action(action) {
                continue;
            }
            let hits = st.covers_resource(resource);
            match st.effect {
                Effect::Deny if hits && st.conditions.is_empty() => return false,
                Effect::Deny if hits => *cond = true,
                Effect::Allow if hits => {
                    if !st.conditions.is_empty() {
                        *cond = true;
                    }
                    allowed = true;
                }
                _ => {}
            }
        }
    }
    allowed
}

fn reach(
    docs: &[&PolicyDocument],
    user_arn: &str,
    account: &str,
    auth: &keytrail_inventory::snapshot::aws::AuthorizationDetails,
    buckets: &[&str],
) -> Reach {
    let mut r = Reach::default();
    let mut cond = false;
    for b in buckets {
        let objects = format!("arn:aws:s3:::{b}/*");
        if allows(docs, "s3:getobject", &objects, &mut cond) {
            r.buckets_read.push(b.to_string());
        }
        if allows(docs, "s3:putobject", &objects, &mut cond) {
            r.buckets_write.push(b.to_string());
        }
    }
    // Secrets: the patterns granted (the snapshot has no secret list).
    for d in docs {
        for st in &d.statements {
            if st.effect == Effect::Allow && st.matches_action("secretsmanager:getsecretvalue") {
                match &st.resources {
                    keytrail_inventory::policy::ResourceSpec::Resource(p) => {
                        for p in p {
                            if !r.secrets.contains(p) {
                                r.secrets.push(p.clone());
                            }
                        }
                    }
                    keytrail_inventory::policy::ResourceSpec::NotResource(_) => {
                        if !r.secrets.iter().any(|s| s == "*") {
                            r.secrets.push("*".into());
                        }
                    }
                }
            }
        }
    }
    if r.secrets.iter().any(|s| s == "*") {
        r.secrets = vec!["*".into()];
    }
    for role in &auth.roles {
        if !allows(docs, "sts:assumerole", &role.arn, &mut cond) {
            continue;
        }
        let trusted = role
            .trust
            .as_ref()
            .is_some_and(|t| trusts(t, user_arn, account));
        if trusted {
            r.assumable_roles.push(role.arn.clone());
        }
    }
    r.buckets_read.sort();
    r.buckets_write.sort();
    r.secrets.sort();
    r.assumable_roles.sort();
    r.conditions_ignored = cond;
    r
}

/// Whether a role's trust policy lets `user_arn` (of `account`) call `sts:AssumeRole`.
fn trusts(trust: &PolicyDocument, user_arn: &str, account: &str) -> bool {
    let root = format!("arn:aws:iam::{account}:root");
    let mut allowed = false;
    for st in &trust.statements {
        if !st.matches_action("sts:assumerole") {
            continue;
        }
        let Some(p) = &st.principal else { continue };
        let names = p.any
            || p.aws.iter().any(|a| {
                a == "*" || a == user_arn || a == &root || a == account || covers(a, user_arn)
            });
        if !names {
            continue;
        }
        match st.effect {
            Effect::Deny => return false,
            Effect::Allow => allowed = true,
        }
    }
    allowed
}

/// The account id encoded in an AWS access key id (keys created since 2019 carry
/// it: base32 of the id after its 4-character prefix, bits 1–40 of the first 6
/// bytes shifted right by 7). `None` for ids too short or not base32.
pub fn account_of_key(key_id: &str) -> Option<String> {
    let body = key_id.get(4..)?;
    let mut bits: u128 = 0;
    let mut n = 0;
    for c in body.bytes().take(10) {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        bits = (bits << 5) | u128::from(v);
        n += 5;
    }
    if n < 48 {
        return None;
    }
    let first6 = (bits >> (n - 48)) as u64;
    let account = (first6 & 0x7fff_ffff_ff80) >> 7;
    Some(format!("{account:012}"))
}

/// A key id of `prefix` that encodes `account` (for tests and generated data):
/// the inverse of [`account_of_key`], with `fill` choosing the remaining characters.
pub fn key_for_account(prefix: &str, account: u64, fill: u64) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    // 80 bits of body: 1 bit 0, 40 bits account, 7 bits of fill, then 32 bits fill.
    let hi: u128 = (u128::from(account & 0xff_ffff_ffff) << 7) | u128::from(fill & 0x7f);
    let bits: u128 = (hi << 32) | u128::from((fill >> 7) as u32);
    let mut s = String::from(prefix);
    for i in (0..16).rev() {
        s.push(A[((bits >> (i * 5)) & 31) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_from_key_id() {
        // The example of AWS's sts get-access-key-info documentation style: a key
        // built for an account decodes back to it.
        for acct in [123_456_789_012u64, 111_122_223_333, 1] {
            let k = key_for_account("AKIA", acct, 0x0012_3456_789a);
            assert_eq!(k.len(), 20);
            assert!(crate::leaks::is_key_id(&k), "{k}");
            assert_eq!(account_of_key(&k).unwrap(), format!("{acct:012}"));
        }
        assert_eq!(account_of_key("AKIA1"), None);
    }
}

//! Who a leaked AWS key belongs to, and what it can reach, from a cloud snapshot
//! (offline, or collected live into one by the front-end).
//!
//! The key id is looked up in the IAM users' access keys; the user's policies
//! (inline, attached, its groups') go through the inventory's policy engine for
//! the privilege class, and are evaluated against the snapshot's buckets and roles
//! for the reach: the buckets it may read or write, the secrets it may read, and
//! the roles it may assume (both its own policy and the role's trust policy must
//! allow it).

use std::collections::HashMap;

use keytrail_inventory::facts::Facts;
use keytrail_inventory::owners::Owners;
use keytrail_inventory::policy::{Effect, PolicyDocument, covers};
use keytrail_inventory::privilege::PrivilegeIndex;
use keytrail_inventory::snapshot::aws::{AwsSnapshot, IamUser};
use keytrail_inventory::{Snapshot, Timestamp};
use serde::Serialize;

/// The identity behind a key, as the snapshot tells it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct KeyIdentity {
    /// ARN of the IAM user.
    pub arn: String,
    /// User name.
    pub name: String,
    /// Account id.
    pub account_id: String,
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
}

impl Directory {
    /// Builds the directory from a snapshot.
    pub fn from_snapshot(snap: &Snapshot, owners: Option<&Owners>, now: Timestamp) -> Directory {
        let mut d = Directory::default();
        if let Some(aws) = &snap.aws {
            d.add_account(aws, owners, now);
        }
        d
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
                    arn,
                    name: k.user.clone(),
                    account_id: account.clone(),
                    key_status: if k.active { "active" } else { "inactive" }.into(),
                    key_created: k.created.map(|t| t.to_rfc3339()),
                    key_last_used: k.last_used.map(|t| t.to_rfc3339()),
                    owner: own.as_ref().map_or_else(
                        || keytrail_inventory::UNOWNED.to_string(),
                        |o| o.owner.clone(),
                    ),
                    purpose: own.as_ref().and_then(|o| o.purpose.clone()),
                    environment: own
                        .as_ref()
                        .and_then(|o| o.environment.map(|e| e.as_str().to_string())),
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

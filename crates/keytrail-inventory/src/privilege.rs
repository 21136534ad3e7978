//! What an AWS principal can do: its effective permissions summarised from
//! every policy that applies to it (inline, attached managed, and for users
//! their groups' inline and managed policies).
//!
//! Each policy document is reduced once to a [`PolicyProfile`] (a bit per
//! interesting action, plus a few resource-scoped probes); managed policies
//! are shared between many principals, so their profiles are computed once
//! per snapshot. A principal's [`Privileges`] combine the profiles with IAM's
//! rule that an explicit deny wins.

use crate::facts::Facts;
use crate::policy::{
    ActionSpec, Effect, PolicyDocument, is_broad_write_pattern, is_read_only_pattern,
};
use crate::snapshot::aws::{AttachedPolicy, AuthorizationDetails, IamRole, IamUser, NamedPolicy};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;

/// A resource-scoped question: is `action` allowed on every resource `target` describes?
#[derive(Debug, Clone, Copy)]
pub struct Probe {
    /// Stable name used in evidence.
    pub name: &'static str,
    /// Lowercase action.
    pub action: &'static str,
    /// Target resource pattern (see [`crate::policy::covers`]).
    pub target: &'static str,
    /// Whether an allow means data access.
    pub data_access: bool,
}

/// The probes evaluated for every principal.
pub const PROBES: &[Probe] = &[
    Probe {
        name: "s3_read_all_buckets",
        action: "s3:getobject",
        target: "arn:aws:s3:::*/*",
        data_access: true,
    },
    Probe {
        name: "ssm_send_command_all_instances",
        action: "ssm:sendcommand",
        target: "arn:aws:ec2:*:*:instance/*",
        data_access: false,
    },
    Probe {
        name: "ssm_start_session_all_instances",
        action: "ssm:startsession",
        target: "arn:aws:ec2:*:*:instance/*",
        data_access: false,
    },
    Probe {
        name: "secretsmanager_read_all",
        action: "secretsmanager:getsecretvalue",
        target: "arn:aws:secretsmanager:*:*:secret:*",
        data_access: true,
    },
    Probe {
        name: "ssm_parameters_read_all",
        action: "ssm:getparameters",
        target: "arn:aws:ssm:*:*:parameter/*",
        data_access: true,
    },
    Probe {
        name: "dynamodb_read_all",
        action: "dynamodb:scan",
        target: "arn:aws:dynamodb:*:*:table/*",
        data_access: true,
    },
    Probe {
        name: "kms_decrypt_all",
        action: "kms:decrypt",
        target: "arn:aws:kms:*:*:key/*",
        data_access: true,
    },
];

/// Index of [`PROBES`] by name.
pub fn probe_bit(name: &str) -> u32 {
    PROBES
        .iter()
        .position(|p| p.name == name)
        .map(|i| 1u32 << i)
        .unwrap_or(0)
}

/// The actions whose broad grant matters (all privilege-escalation path permissions).
#[derive(Debug, Clone)]
struct ActionIndex {
    actions: Vec<String>,
}

/// A fixed-size bitset over [`ActionIndex`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Bits(Vec<u64>);

impl Bits {
    fn new(n: usize) -> Bits {
        Bits(vec![0; n.div_ceil(64)])
    }
    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn get(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }
    fn or(&mut self, o: &Bits) {
        for (a, b) in self.0.iter_mut().zip(&o.0) {
            *a |= b;
        }
    }
}

/// One policy document reduced to what the checks ask.
#[derive(Debug, Clone)]
pub struct PolicyProfile {
    admin: bool,
    admin_denied: bool,
    allow: Bits,
    deny: Bits,
    probe_allow: u32,
    probe_deny: u32,
    has_write: bool,
    broad_write: Option<String>,
}

impl PolicyProfile {
    fn compute(doc: &PolicyDocument, index: &ActionIndex) -> PolicyProfile {
        let n = index.actions.len();
        let mut p = PolicyProfile {
            admin: false,
            admin_denied: false,
            allow: Bits::new(n),
            deny: Bits::new(n),
            probe_allow: 0,
            probe_deny: 0,
            has_write: false,
            broad_write: None,
        };
        for st in &doc.statements {
            let star_action = matches!(&st.actions, ActionSpec::Action(a) if a.iter().any(|x| x == "*" || x == "*:*"));
            match st.effect {
                Effect::Allow => {
                    let all_res = st.all_resources();
                    if star_action && all_res {
                        p.admin = true;
                    }
                    let broad = st.has_broad_resource();
                    if broad {
                        for (i, a) in index.actions.iter().enumerate() {
                            if st.matches_action(a) {
                                p.allow.set(i);
                            }
                        }
                    }
                    for (i, probe) in PROBES.iter().enumerate() {
                        if st.matches_action(probe.action) && st.covers_resource(probe.target) {
                            p.probe_allow |= 1 << i;
                        }
                    }
                    match &st.actions {
                        ActionSpec::NotAction(_) => {
                            p.has_write = true;
                            if all_res && p.broad_write.is_none() {
                                p.broad_write = Some("NotAction".into());
                            }
                        }
                        ActionSpec::Action(list) => {
                            for a in list {
                                if !is_read_only_pattern(a) {
                                    p.has_write = true;
                                }
                                if all_res && is_broad_write_pattern(a) && p.broad_write.is_none() {
                                    p.broad_write = Some(a.clone());
                                }
                            }
                        }
                    }
                }
                Effect::Deny => {
                    // A conditional deny only denies sometimes: not counted.
                    if !st.conditions.is_empty() {
                        continue;
                    }
                    let all_res = st.all_resources();
                    if star_action && all_res {
                        p.admin_denied = true;
                    }
                    if all_res {
                        for (i, a) in index.actions.iter().enumerate() {
                            if st.matches_action(a) {
                                p.deny.set(i);
                            }
                        }
                    }
                    for (i, probe) in PROBES.iter().enumerate() {
                        if st.matches_action(probe.action) && st.covers_resource(probe.target) {
                            p.probe_deny |= 1 << i;
                        }
                    }
                }
            }
        }
        p
    }
}

/// A principal's effective privileges.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Privileges {
    /// Allowed `*` on `*` (AdministratorAccess or equivalent), not denied.
    pub admin: bool,
    /// Policies granting `*` on `*`.
    pub admin_via: Vec<String>,
    /// Privilege-escalation paths fully allowed: (path id, path name).
    pub privesc: Vec<(String, String)>,
    /// Probe names allowed (see [`PROBES`]).
    pub probes: Vec<String>,
    /// Whether any policy allows a non-read action.
    pub has_write: bool,
    /// Policies granting a wildcard write on every resource: (policy, pattern).
    pub broad_write: Vec<(String, String)>,
    /// Every policy considered (names).
    pub policies: Vec<String>,
    /// Attached managed policies whose document is not in the snapshot.
    pub unknown_policies: Vec<String>,
}

impl Privileges {
    /// Whether the given probe is allowed.
    pub fn probe(&self, name: &str) -> bool {
        self.probes.iter().any(|p| p == name)
    }

    /// Whether any data-access probe is allowed.
    pub fn data_access(&self) -> bool {
        PROBES.iter().any(|p| p.data_access && self.probe(p.name))
    }

    /// The privilege summary labels: `admin`, `privilege-escalation`,
    /// `data-access`, `write`, `read-only` or `none` (most severe first).
    pub fn labels(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.admin {
            v.push("admin");
        }
        if !self.privesc.is_empty() && !self.admin {
            v.push("privilege-escalation");
        }
        if self.data_access() && !self.admin {
            v.push("data-access");
        }
        if v.is_empty() {
            if self.has_write {
                v.push("write");
            } else if self.policies.is_empty() {
                v.push("none");
            } else {
                v.push("read-only");
            }
        }
        v
    }
}

/// Per-snapshot evaluator with cached managed-policy profiles.
pub struct PrivilegeIndex<'a> {
    facts: &'a Facts,
    auth: &'a AuthorizationDetails,
    index: ActionIndex,
    managed: HashMap<String, Option<Arc<PolicyProfile>>>,
}

impl<'a> PrivilegeIndex<'a> {
    /// Builds the evaluator for one account.
    pub fn new(auth: &'a AuthorizationDetails, facts: &'a Facts) -> PrivilegeIndex<'a> {
        let mut actions: Vec<String> = facts
            .privesc
            .paths
            .iter()
            .flat_map(|p| p.required.iter().cloned())
            .collect();
        actions.sort();
        actions.dedup();
        PrivilegeIndex {
            facts,
            auth,
            index: ActionIndex { actions },
            managed: HashMap::new(),
        }
    }

    fn managed_profile(&mut self, arn: &str) -> Option<Arc<PolicyProfile>> {
        if let Some(p) = self.managed.get(arn) {
            return p.clone();
        }
        let doc = self
            .auth
            .policies
            .get(arn)
            .and_then(|p| p.document.as_ref())
            .or_else(|| {
                let (prefix, name) = arn.rsplit_once('/')?;
                if prefix.ends_with(":iam::aws:policy") || prefix.contains(":iam::aws:policy/") {
                    self.facts.managed_policies.get(name)
                } else {
                    None
                }
            });
        let profile = doc.map(|d| Arc::new(PolicyProfile::compute(d, &self.index)));
        self.managed.insert(arn.to_string(), profile.clone());
        profile
    }

    fn combine(
        &mut self,
        inline: &[(String, &NamedPolicy)],
        attached: &[(String, &AttachedPolicy)],
    ) -> Privileges {
        let mut profiles: Vec<(String, Arc<PolicyProfile>)> = Vec::new();
        let mut out = Privileges::default();
        for (label, p) in inline {
            profiles.push((
                label.clone(),
                Arc::new(PolicyProfile::compute(&p.document, &self.index)),
            ));
        }
        for (label, a) in attached {
            match self.managed_profile(&a.policy_arn) {
                Some(p) => profiles.push((label.clone(), p)),
                None => out.unknown_policies.push(a.policy_arn.clone()),
            }
        }
        let n = self.index.actions.len();
        let (mut allow, mut deny) = (Bits::new(n), Bits::new(n));
        let (mut pa, mut pd) = (0u32, 0u32);
        let mut admin_denied = false;
        for (label, p) in &profiles {
            out.policies.push(label.clone());
            allow.or(&p.allow);
            deny.or(&p.deny);
            pa |= p.probe_allow;
            pd |= p.probe_deny;
            admin_denied |= p.admin_denied;
            out.has_write |= p.has_write;
            if p.admin {
                out.admin_via.push(label.clone());
            }
            if let Some(w) = &p.broad_write {
                out.broad_write.push((label.clone(), w.clone()));
            }
        }
        out.admin = !out.admin_via.is_empty() && !admin_denied;
        let effective = |i: usize| allow.get(i) && !deny.get(i);
        for path in &self.facts.privesc.paths {
            let all = path
                .required
                .iter()
                .all(|r| self.index.actions.binary_search(r).is_ok_and(&effective));
            if all {
                out.privesc.push((path.id.clone(), path.name.clone()));
            }
        }
        let probes = pa & !pd;
        for (i, p) in PROBES.iter().enumerate() {
            if probes & (1 << i) != 0 {
                out.probes.push(p.name.to_string());
            }
        }
        out
    }

    /// Privileges of a role (inline + attached managed policies).
    pub fn role(&mut self, role: &IamRole) -> Privileges {
        let inline: Vec<(String, &NamedPolicy)> = role
            .inline
            .iter()
            .map(|p| (format!("inline:{}", p.name), p))
            .collect();
        let attached: Vec<(String, &AttachedPolicy)> = role
            .attached
            .iter()
            .map(|a| (a.policy_arn.clone(), a))
            .collect();
        self.combine(&inline, &attached)
    }

    /// Privileges of a user, including its groups' policies.
    pub fn user(&mut self, user: &IamUser) -> Privileges {
        let auth = self.auth;
        let mut inline: Vec<(String, &NamedPolicy)> = user
            .inline
            .iter()
            .map(|p| (format!("inline:{}", p.name), p))
            .collect();
        let mut attached: Vec<(String, &AttachedPolicy)> = user
            .attached
            .iter()
            .map(|a| (a.policy_arn.clone(), a))
            .collect();
        for gname in &user.groups {
            if let Some(g) = auth.groups.iter().find(|g| &g.name == gname) {
                inline.extend(
                    g.inline
                        .iter()
                        .map(|p| (format!("group:{}:inline:{}", g.name, p.name), p)),
                );
                attached.extend(
                    g.attached
                        .iter()
                        .map(|a| (format!("group:{}:{}", g.name, a.policy_arn), a)),
                );
            }
        }
        self.combine(&inline, &attached)
    }

    /// Whether the managed policy ARN is one of the standard EKS/EC2 node
    /// policies (their wildcard grants are expected on a node role).
    pub fn is_standard_node_policy(arn: &str) -> bool {
        const STANDARD: &[&str] = &[
            "AmazonEKSWorkerNodePolicy",
            "AmazonEKS_CNI_Policy",
            "AmazonEC2ContainerRegistryReadOnly",
            "AmazonEC2ContainerRegistryPullOnly",
            "AmazonSSMManagedInstanceCore",
            "CloudWatchAgentServerPolicy",
            "AmazonEBSCSIDriverPolicy",
        ];
        arn.contains(":iam::aws:policy/")
            && arn
                .rsplit('/')
                .next()
                .is_some_and(|n| STANDARD.contains(&n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn role_with(docs: &[serde_json::Value], attached: &[&str]) -> IamRole {
        IamRole {
            arn: "arn:aws:iam::111122223333:role/r".into(),
            name: "r".into(),
            inline: docs
                .iter()
                .enumerate()
                .map(|(i, d)| NamedPolicy {
                    name: format!("p{i}"),
                    document: PolicyDocument::from_value(d).unwrap(),
                })
                .collect(),
            attached: attached
                .iter()
                .map(|a| AttachedPolicy {
                    policy_name: a.rsplit('/').next().unwrap().into(),
                    policy_arn: a.to_string(),
                })
                .collect(),
            ..IamRole::default()
        }
    }

    fn eval(role: &IamRole) -> Privileges {
        let auth = AuthorizationDetails::default();
        let mut idx = PrivilegeIndex::new(&auth, Facts::builtin());
        idx.role(role)
    }

    #[test]
    fn admin_from_managed_fallback_and_star() {
        let p = eval(&role_with(
            &[],
            &["arn:aws:iam::aws:policy/AdministratorAccess"],
        ));
        assert!(p.admin);
        assert_eq!(p.labels(), vec!["admin"]);
        let p = eval(&role_with(
            &[json!({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})],
            &[],
        ));
        assert!(p.admin);
    }

    #[test]
    fn deny_overrides_allow() {
        let p = eval(&role_with(
            &[json!({"Statement": [
                {"Effect": "Allow", "Action": "*", "Resource": "*"},
                {"Effect": "Deny", "Action": "*", "Resource": "*"}
            ]})],
            &[],
        ));
        assert!(!p.admin);
        let p = eval(&role_with(
            &[json!({"Statement": [
                {"Effect": "Allow", "Action": "iam:*", "Resource": "*"},
                {"Effect": "Deny", "Action": ["iam:Create*", "iam:Put*", "iam:Attach*", "iam:Update*", "iam:AddUserToGroup"], "Resource": "*"}
            ]})],
            &[],
        ));
        assert!(
            p.privesc.iter().all(|(id, _)| !id.starts_with("iam-")),
            "{:?}",
            p.privesc
        );
    }

    #[test]
    fn passrole_plus_runinstances_escalates() {
        let p = eval(&role_with(
            &[
                json!({"Statement": [{"Effect": "Allow", "Action": ["iam:PassRole", "ec2:RunInstances"], "Resource": "*"}]}),
            ],
            &[],
        ));
        assert!(
            p.privesc.iter().any(|(id, _)| id == "ec2-001"),
            "{:?}",
            p.privesc
        );
        assert!(p.labels().contains(&"privilege-escalation"));
        // PassRole alone does not.
        let p = eval(&role_with(
            &[
                json!({"Statement": [{"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"}]}),
            ],
            &[],
        ));
        assert!(p.privesc.is_empty());
    }

    #[test]
    fn not_action_grants_everything_else() {
        let p = eval(&role_with(
            &[],
            &["arn:aws:iam::aws:policy/PowerUserAccess"],
        ));
        assert!(!p.admin);
        assert!(p.probe("s3_read_all_buckets"));
        assert!(p.probe("ssm_send_command_all_instances"));
        assert!(!p.broad_write.is_empty());
    }

    #[test]
    fn read_only_and_scoped_grants() {
        let p = eval(&role_with(
            &[
                json!({"Statement": [{"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": ["arn:aws:s3:::app-assets", "arn:aws:s3:::app-assets/*"]}]}),
            ],
            &[],
        ));
        assert!(!p.probe("s3_read_all_buckets"));
        assert_eq!(p.labels(), vec!["read-only"]);
        let p = eval(&role_with(&[], &["arn:aws:iam::aws:policy/ReadOnlyAccess"]));
        assert!(p.probe("s3_read_all_buckets"));
        assert!(!p.has_write);
    }
}

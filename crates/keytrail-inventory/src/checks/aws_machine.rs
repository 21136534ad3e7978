//! Machine identities beyond workload roles: roles that CI systems and
//! other identity providers assume through web identity (OIDC), roles that
//! AWS services other than the workload ones assume (CodeBuild, Glue,
//! SageMaker…), roles that accounts outside the organisation assume, and IAM
//! users with active access keys. Each is judged for admin access and
//! privilege-escalation paths, as workload roles are in `aws_roles`; and
//! machine roles nobody has used for 90 days (or ever) are reported, since
//! they are the cheapest to delete.
//!
//! Not machine identities here: roles only the account's own principals or
//! SAML (people through SSO) assume, and roles trusted by the organisation's
//! other accounts (the management account's `OrganizationAccountAccessRole`
//! and hub-and-spoke human access look the same as a deployer from there).

use super::Ctx;
use super::aws_credentials::{MAX_UNUSED_DAYS, keys};
use super::aws_roles::{WORKLOAD_SERVICES, external_trusts, org_account_ids};
use crate::policy::Effect;
use crate::privilege::{PrivilegeIndex, Privileges};
use crate::snapshot::aws::IamRole;
use serde_json::json;
use std::collections::BTreeMap;

const ADMIN: &str = "aws.iam.machine_identity_admin";
const PRIVESC: &str = "aws.iam.machine_identity_privilege_escalation";
const UNUSED: &str = "aws.iam.machine_role_unused";

/// Who assumes a role, for the roles that are machine identities.
#[derive(Debug, Default)]
pub(crate) struct MachineTrust {
    /// Web-identity (OIDC) providers and other non-SAML federations:
    /// `token.actions.githubusercontent.com`, `cognito-identity.amazonaws.com`.
    pub federated: Vec<String>,
    /// Service principals (`codebuild.amazonaws.com`).
    pub services: Vec<String>,
    /// Accounts outside this account and its organisation (`*` = any).
    pub accounts: Vec<String>,
}

impl MachineTrust {
    /// Whether anything machine-like assumes the role.
    pub fn is_machine(&self) -> bool {
        !(self.federated.is_empty() && self.services.is_empty() && self.accounts.is_empty())
    }

    /// Whether a workload service (judged by the workload checks) assumes it.
    fn is_workload(&self) -> bool {
        self.services
            .iter()
            .any(|s| WORKLOAD_SERVICES.contains(&s.as_str()))
    }

    /// `oidc`, `service` or `cross-account`, in that order of precedence.
    fn kind(&self) -> &'static str {
        if !self.federated.is_empty() {
            "oidc"
        } else if !self.services.is_empty() {
            "service"
        } else {
            "cross-account"
        }
    }

    /// Who assumes the role, as one phrase.
    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.federated.is_empty() {
            parts.push(format!("web identity from {}", self.federated.join(", ")));
        }
        if !self.services.is_empty() {
            parts.push(format!("service {}", self.services.join(", ")));
        }
        if !self.accounts.is_empty() {
            parts.push(format!("account {}", self.accounts.join(", ")));
        }
        parts.join("; ")
    }
}

/// The provider a `Federated` principal names: the host of an
/// `oidc-provider/HOST` ARN, the principal itself otherwise (`cognito-
/// identity.amazonaws.com`, `accounts.google.com`); `None` for SAML.
fn federated_provider(p: &str) -> Option<String> {
    if p.contains(":saml-provider/") {
        return None;
    }
    Some(match p.split_once(":oidc-provider/") {
        Some((_, host)) => host.to_string(),
        None => p.to_string(),
    })
}

/// Who assumes `role` that makes it a machine identity.
pub(crate) fn machine_trust(role: &IamRole, own: &str, org: &[String]) -> MachineTrust {
    let mut t = MachineTrust::default();
    for st in role.trust.iter().flat_map(|d| &d.statements) {
        if st.effect != Effect::Allow {
            continue;
        }
        let Some(p) = &st.principal else { continue };
        t.federated
            .extend(p.federated.iter().filter_map(|f| federated_provider(f)));
        t.services.extend(p.service.iter().cloned());
    }
    t.accounts = external_trusts(role, own, org)
        .into_iter()
        .map(|e| e.account)
        .collect();
    for v in [&mut t.federated, &mut t.services, &mut t.accounts] {
        v.sort();
        v.dedup();
    }
    t
}

fn privesc_paths(p: &Privileges) -> Vec<String> {
    p.privesc
        .iter()
        .map(|(id, name)| format!("{id}: {name}"))
        .collect()
}

pub(crate) fn run(ctx: &mut Ctx<'_>) {
    let all = [ADMIN, PRIVESC, UNUSED];
    let Some((aws, auth)) = super::aws_authorization(ctx, &all) else {
        return;
    };
    let org = org_account_ids(aws);
    let facts = ctx.facts;
    let mut idx = PrivilegeIndex::new(auth, facts);
    for role in &auth.roles {
        if role.path.starts_with("/aws-service-role/") {
            continue;
        }
        let own = role.arn.split(':').nth(4).unwrap_or("").to_string();
        let trust = machine_trust(role, &own, &org);
        if !trust.is_machine() {
            continue;
        }
        unused(ctx, role, &trust);
        // Workload roles have their own checks; a role that only accounts
        // outside assume is judged for admin by the third-party check.
        if trust.is_workload() {
            continue;
        }
        let p = idx.role(role);
        let evidence = |extra: Vec<(&'static str, serde_json::Value)>| {
            let mut v = vec![
                ("kind", json!(trust.kind())),
                ("federated", json!(trust.federated)),
                ("services", json!(trust.services)),
                ("trusted_accounts", json!(trust.accounts)),
                ("policies", json!(p.policies)),
            ];
            v.extend(extra);
            v
        };
        let external_only = trust.federated.is_empty() && trust.services.is_empty();
        if p.admin {
            if !external_only {
                ctx.finding(
                    ADMIN,
                    role.arn.clone(),
                    None,
                    format!(
                        "role {} (assumed by {}) has * on * via {}",
                        role.name,
                        trust.describe(),
                        p.admin_via.join(", ")
                    ),
                    evidence(vec![("admin_via", json!(p.admin_via))]),
                );
            }
            continue;
        }
        if !p.privesc.is_empty() {
            ctx.finding(
                PRIVESC,
                role.arn.clone(),
                None,
                format!(
                    "role {} (assumed by {}) can escalate privileges ({})",
                    role.name,
                    trust.describe(),
                    privesc_paths(&p).join("; ")
                ),
                evidence(vec![(
                    "privesc_paths",
                    json!(p.privesc.iter().map(|(id, _)| id).collect::<Vec<_>>()),
                )]),
            );
        }
    }
    // IAM users with active access keys: a key is a machine credential,
    // whoever holds it.
    let Some(keys) = keys(aws) else {
        ctx.not_evaluated_all(
            &[ADMIN, PRIVESC],
            &format!(
                "users' access keys unknown: missing {} and {}",
                aws.path("iam-list-access-keys/"),
                aws.path("iam-get-credential-report.json")
            ),
        );
        return;
    };
    let mut active: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for k in keys.iter().filter(|k| k.active) {
        active
            .entry(k.user.as_str())
            .or_default()
            .push(k.label.as_str());
    }
    for user in &auth.users {
        let Some(labels) = active.get(user.name.as_str()) else {
            continue;
        };
        let p = idx.user(user);
        let base = |extra: Vec<(&'static str, serde_json::Value)>| {
            let mut v = vec![
                ("kind", json!("user-with-keys")),
                ("access_key_ids", json!(labels)),
                ("policies", json!(p.policies)),
            ];
            v.extend(extra);
            v
        };
        if p.admin {
            ctx.finding(
                ADMIN,
                user.arn.clone(),
                None,
                format!(
                    "user {} with active access key(s) {} has * on * via {}",
                    user.name,
                    labels.join(", "),
                    p.admin_via.join(", ")
                ),
                base(vec![("admin_via", json!(p.admin_via))]),
            );
        } else if !p.privesc.is_empty() {
            ctx.finding(
                PRIVESC,
                user.arn.clone(),
                None,
                format!(
                    "user {} with active access key(s) {} can escalate privileges ({})",
                    user.name,
                    labels.join(", "),
                    privesc_paths(&p).join("; ")
                ),
                base(vec![(
                    "privesc_paths",
                    json!(p.privesc.iter().map(|(id, _)| id).collect::<Vec<_>>()),
                )]),
            );
        }
    }
}

/// A machine role not used for [`MAX_UNUSED_DAYS`] days, or never used and
/// older than that.
fn unused(ctx: &mut Ctx<'_>, role: &IamRole, trust: &MachineTrust) {
    if !role.last_used_known {
        ctx.not_evaluated(
            UNUSED,
            Some(role.arn.clone()),
            "RoleLastUsed is not in the snapshot (`aws iam get-account-authorization-details` prints it)",
        );
        return;
    }
    let evidence = |extra: Vec<(&'static str, serde_json::Value)>| {
        let mut v = vec![
            ("kind", json!(trust.kind())),
            ("assumed_by", json!(trust.describe())),
            ("created", json!(role.created.map(|t| t.to_rfc3339()))),
        ];
        v.extend(extra);
        v
    };
    match role.last_used {
        Some(t) => {
            let days = ctx.days_since(t);
            if days > MAX_UNUSED_DAYS {
                ctx.finding(
                    UNUSED,
                    role.arn.clone(),
                    None,
                    format!(
                        "role {} (assumed by {}) was last used {days} days ago ({}{})",
                        role.name,
                        trust.describe(),
                        t.format("%Y-%m-%d"),
                        role.last_used_region
                            .as_deref()
                            .map(|r| format!(", {r}"))
                            .unwrap_or_default()
                    ),
                    evidence(vec![
                        ("last_used", json!(t.to_rfc3339())),
                        ("days_unused", json!(days)),
                        ("never_used", json!(false)),
                    ]),
                );
            }
        }
        None => {
            // Never used (in the 400 days IAM tracks): only once the role
            // has had the time to be.
            let age = role.created.map(|c| ctx.days_since(c));
            if age.is_none_or(|a| a > MAX_UNUSED_DAYS) {
                ctx.finding(
                    UNUSED,
                    role.arn.clone(),
                    None,
                    format!(
                        "role {} (assumed by {}) has never been used{}",
                        role.name,
                        trust.describe(),
                        age.map(|a| format!(" in the {a} days since it was created"))
                            .unwrap_or_default()
                    ),
                    evidence(vec![
                        ("last_used", json!(null)),
                        ("days_unused", json!(age)),
                        ("never_used", json!(true)),
                    ]),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::PolicyDocument;

    fn role(trust: serde_json::Value) -> IamRole {
        IamRole {
            arn: "arn:aws:iam::111122223333:role/r".into(),
            name: "r".into(),
            trust: Some(PolicyDocument::from_value(&trust).unwrap()),
            ..IamRole::default()
        }
    }

    #[test]
    fn who_makes_a_role_a_machine_identity() {
        let org = vec!["222233334444".to_string()];
        let t = |doc| machine_trust(&role(doc), "111122223333", &org);
        let gh = t(json!({"Statement": [{"Effect": "Allow",
            "Principal": {"Federated": "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com"},
            "Action": "sts:AssumeRoleWithWebIdentity"}]}));
        assert_eq!(gh.federated, vec!["token.actions.githubusercontent.com"]);
        assert_eq!(gh.kind(), "oidc");
        // People through SSO, the account itself and the organisation are not.
        for doc in [
            json!({"Statement": [{"Effect": "Allow", "Principal": {"Federated": "arn:aws:iam::111122223333:saml-provider/AWSSSO_x"}, "Action": "sts:AssumeRoleWithSAML"}]}),
            json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "sts:AssumeRole"}]}),
            json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::222233334444:root"}, "Action": "sts:AssumeRole"}]}),
            json!({"Statement": [{"Effect": "Deny", "Principal": {"Service": "codebuild.amazonaws.com"}, "Action": "sts:AssumeRole"}]}),
        ] {
            assert!(!t(doc.clone()).is_machine(), "{doc}");
        }
        let cb = t(
            json!({"Statement": [{"Effect": "Allow", "Principal": {"Service": ["codebuild.amazonaws.com"]}, "Action": "sts:AssumeRole"}]}),
        );
        assert_eq!((cb.kind(), cb.is_workload()), ("service", false));
        let ext = t(
            json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": "444455556666"}, "Action": "sts:AssumeRole"}]}),
        );
        assert_eq!(ext.accounts, vec!["444455556666"]);
        assert_eq!(ext.kind(), "cross-account");
    }
}

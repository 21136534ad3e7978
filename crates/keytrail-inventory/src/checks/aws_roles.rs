//! IAM roles: third-party trust (confused deputy, unknown external
//! accounts, over-privileged vendor roles) and over-privileged workload
//! roles (EC2, Lambda, ECS tasks).

use super::Ctx;
use crate::policy::{Effect, has_condition_key};
use crate::privilege::{PROBES, PrivilegeIndex};
use crate::snapshot::aws::{AwsSnapshot, IamRole};
use serde_json::json;

const NO_EXTERNAL_ID: &str = "aws.iam.third_party_role_without_external_id";
const UNKNOWN: &str = "aws.iam.trust_unknown_external_account";
const VENDOR_PRIV: &str = "aws.iam.third_party_role_overprivileged";
const VENDOR_DATA: &str = "aws.iam.third_party_role_data_read";
const W_ADMIN: &str = "aws.iam.workload_admin";
const W_PRIVESC: &str = "aws.iam.workload_privilege_escalation";
const W_SSM: &str = "aws.iam.workload_ssm_all_instances";
const W_S3: &str = "aws.iam.workload_s3_read_all";

/// Services whose roles are workloads.
pub(crate) const WORKLOAD_SERVICES: &[&str] = &[
    "ec2.amazonaws.com",
    "lambda.amazonaws.com",
    "ecs-tasks.amazonaws.com",
];

/// An external principal trusted by a role.
#[derive(Debug, Clone)]
pub(crate) struct ExternalTrust {
    /// 12-digit account id, or `*` for any account.
    pub account: String,
    /// The principal as written.
    pub principal: String,
    /// Whether the statement requires `sts:ExternalId`.
    pub external_id: bool,
}

/// Account id in an AWS principal (`123456789012` or an ARN).
fn principal_account(p: &str) -> Option<String> {
    if p.len() == 12 && p.bytes().all(|b| b.is_ascii_digit()) {
        return Some(p.to_string());
    }
    let acct = p.split(':').nth(4)?;
    (acct.len() == 12 && acct.bytes().all(|b| b.is_ascii_digit())).then(|| acct.to_string())
}

/// External AWS principals a role's trust policy allows.
pub(crate) fn external_trusts(role: &IamRole, own: &str, org: &[String]) -> Vec<ExternalTrust> {
    let mut out = Vec::new();
    let Some(trust) = &role.trust else {
        return out;
    };
    for st in &trust.statements {
        if st.effect != Effect::Allow {
            continue;
        }
        let Some(p) = &st.principal else { continue };
        let external_id = has_condition_key(st, "sts:ExternalId");
        if p.any {
            // Anyone, unless the statement narrows it to an org/account.
            let narrowed = st.conditions.iter().any(|c| {
                let k = c.key.to_ascii_lowercase();
                k == "aws:principalorgid"
                    || k == "aws:principalaccount"
                    || k == "aws:sourceaccount"
                    || k == "aws:principalarn"
                    || k == "aws:principalorgpaths"
            });
            if !narrowed {
                out.push(ExternalTrust {
                    account: "*".into(),
                    principal: "*".into(),
                    external_id,
                });
            }
        }
        for a in &p.aws {
            if let Some(acct) = principal_account(a)
                && acct != own
                && !org.contains(&acct)
            {
                out.push(ExternalTrust {
                    account: acct,
                    principal: a.clone(),
                    external_id,
                });
            }
        }
    }
    out
}

/// The ids of the organisation's accounts, when listed in the snapshot.
pub(crate) fn org_account_ids(aws: &AwsSnapshot) -> Vec<String> {
    aws.org_accounts
        .present()
        .map(|a| a.iter().map(|x| x.id.clone()).collect())
        .unwrap_or_default()
}

/// Workload services a role's trust policy allows.
pub(crate) fn workload_services(role: &IamRole) -> Vec<String> {
    let mut v: Vec<String> = role
        .trust
        .iter()
        .flat_map(|t| &t.statements)
        .filter(|s| s.effect == Effect::Allow)
        .filter_map(|s| s.principal.as_ref())
        .flat_map(|p| p.service.iter())
        .filter(|s| WORKLOAD_SERVICES.contains(&s.as_str()))
        .cloned()
        .collect();
    v.sort();
    v.dedup();
    v
}

pub(crate) fn run(ctx: &mut Ctx<'_>) {
    let all = [
        NO_EXTERNAL_ID,
        UNKNOWN,
        VENDOR_PRIV,
        VENDOR_DATA,
        W_ADMIN,
        W_PRIVESC,
        W_SSM,
        W_S3,
    ];
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
        let ext = external_trusts(role, &own, &org);
        let services = workload_services(role);
        if ext.is_empty() && services.is_empty() {
            continue;
        }
        let p = idx.role(role);
        let mut vendors: Vec<String> = Vec::new();
        for t in &ext {
            let vendor = facts.accounts.vendor(&t.account);
            let vname = vendor.map(|v| v.name.clone());
            if let Some(v) = &vname {
                vendors.push(v.clone());
            }
            if !t.external_id {
                let who = match (&vname, t.account.as_str()) {
                    (Some(v), _) => format!("vendor {v} (account {})", t.account),
                    (None, "*") => "any AWS account (Principal *)".to_string(),
                    (None, a) => format!("unknown account {a}"),
                };
                ctx.finding(
                    NO_EXTERNAL_ID,
                    role.arn.clone(),
                    None,
                    format!(
                        "role {} trusts {who} without an sts:ExternalId condition",
                        role.name
                    ),
                    vec![
                        ("trusted_account", json!(t.account)),
                        ("principal", json!(t.principal)),
                        ("vendor", json!(vname)),
                    ],
                );
            }
            if vendor.is_none() {
                ctx.finding(
                    UNKNOWN,
                    role.arn.clone(),
                    None,
                    if t.account == "*" {
                        format!("role {} can be assumed by any AWS account", role.name)
                    } else {
                        format!("role {} trusts account {}, which is not this account, the organization or a known vendor", role.name, t.account)
                    },
                    vec![("trusted_account", json!(t.account)), ("principal", json!(t.principal)), ("external_id_required", json!(t.external_id))],
                );
            }
        }
        vendors.sort();
        vendors.dedup();
        if !ext.is_empty() && !p.admin && p.broad_write.is_empty() && p.data_access() {
            // Data read, not metadata read: SecurityAudit and ViewOnlyAccess
            // grant no data-access probe.
            let accounts: Vec<&str> = ext.iter().map(|t| t.account.as_str()).collect();
            let grants: Vec<&str> = PROBES
                .iter()
                .filter(|x| x.data_access && p.probe(x.name))
                .map(|x| x.name)
                .collect();
            let who = if vendors.is_empty() {
                format!("account(s) {}", accounts.join(", "))
            } else {
                vendors.join(", ")
            };
            ctx.finding(
                VENDOR_DATA,
                role.arn.clone(),
                None,
                format!(
                    "role {} assumable by {who} can read data in every resource ({}) via {}",
                    role.name,
                    grants.join(", "),
                    p.policies.join(", ")
                ),
                vec![
                    ("trusted_accounts", json!(accounts)),
                    ("vendors", json!(vendors)),
                    ("data_access", json!(grants)),
                    ("policies", json!(p.policies)),
                ],
            );
        }
        if !ext.is_empty() && (p.admin || !p.broad_write.is_empty()) {
            let accounts: Vec<&str> = ext.iter().map(|t| t.account.as_str()).collect();
            let what = if p.admin {
                format!("admin access via {}", p.admin_via.join(", "))
            } else {
                format!(
                    "broad write access ({})",
                    p.broad_write
                        .iter()
                        .map(|(pol, pat)| format!("`{pat}` on * via {pol}"))
                        .collect::<Vec<_>>()
                        .join("; ")
                )
            };
            let who = if vendors.is_empty() {
                format!("account(s) {}", accounts.join(", "))
            } else {
                vendors.join(", ")
            };
            ctx.finding(
                VENDOR_PRIV,
                role.arn.clone(),
                None,
                format!("role {} assumable by {who} has {what}", role.name),
                vec![
                    ("trusted_accounts", json!(accounts)),
                    ("vendors", json!(vendors)),
                    ("admin", json!(p.admin)),
                    ("broad_write", json!(p.broad_write)),
                ],
            );
        }
        if services.is_empty() {
            continue;
        }
        let base = |extra: Vec<(&'static str, serde_json::Value)>| {
            let mut v = vec![
                ("services", json!(services)),
                ("policies", json!(p.policies)),
            ];
            v.extend(extra);
            v
        };
        if p.admin {
            ctx.finding(
                W_ADMIN,
                role.arn.clone(),
                None,
                format!(
                    "workload role {} ({}) has * on * via {}",
                    role.name,
                    services.join(", "),
                    p.admin_via.join(", ")
                ),
                base(vec![("admin_via", json!(p.admin_via))]),
            );
            // Admin subsumes the narrower workload checks.
            continue;
        }
        if !p.privesc.is_empty() {
            let paths: Vec<String> = p
                .privesc
                .iter()
                .map(|(id, name)| format!("{id}: {name}"))
                .collect();
            ctx.finding(
                W_PRIVESC,
                role.arn.clone(),
                None,
                format!(
                    "workload role {} can escalate privileges ({})",
                    role.name,
                    paths.join("; ")
                ),
                base(vec![(
                    "privesc_paths",
                    json!(p.privesc.iter().map(|(id, _)| id).collect::<Vec<_>>()),
                )]),
            );
        }
        let ssm: Vec<&str> = [
            "ssm_send_command_all_instances",
            "ssm_start_session_all_instances",
        ]
        .into_iter()
        .filter(|x| p.probe(x))
        .collect();
        if !ssm.is_empty() {
            ctx.finding(
                W_SSM,
                role.arn.clone(),
                None,
                format!(
                    "workload role {} can run commands or sessions on every instance ({})",
                    role.name,
                    ssm.join(", ")
                ),
                base(vec![("grants", json!(ssm))]),
            );
        }
        if p.probe("s3_read_all_buckets") {
            ctx.finding(
                W_S3,
                role.arn.clone(),
                None,
                format!(
                    "workload role {} can read objects in every S3 bucket",
                    role.name
                ),
                base(vec![]),
            );
        }
    }
}

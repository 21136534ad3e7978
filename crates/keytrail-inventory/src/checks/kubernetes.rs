//! Managed Kubernetes: public API endpoints (EKS, AKS, GKE), EKS audit
//! logging, risky EKS node roles, GKE nodes on the default compute SA.

use super::Ctx;
use crate::privilege::{PrivilegeIndex, Privileges};
use crate::snapshot::Collected;
use crate::snapshot::gcp::is_default_compute_sa;
use serde_json::json;

const EKS_PUBLIC: &str = "aws.eks.public_endpoint";
const EKS_AUDIT: &str = "aws.eks.audit_logging_disabled";
const EKS_NODE: &str = "aws.eks.node_role_risky";

/// The five EKS control-plane log types.
const EKS_LOG_TYPES: [&str; 5] = [
    "api",
    "audit",
    "authenticator",
    "controllerManager",
    "scheduler",
];
const AKS_PUBLIC: &str = "azure.aks.public_endpoint";
const GKE_PUBLIC: &str = "gcp.gke.public_endpoint";
const GKE_SA: &str = "gcp.gke.default_compute_service_account";

fn open_to_world(cidrs: &[String]) -> bool {
    cidrs.iter().any(|c| {
        let c = c.trim();
        c == "0.0.0.0/0" || c == "::/0" || c == "*" || c == "0.0.0.0"
    })
}

/// Why a node role is risky, or empty.
pub(crate) fn node_role_risks(p: &Privileges) -> Vec<String> {
    let mut r = Vec::new();
    if p.admin {
        r.push(format!("admin via {}", p.admin_via.join(", ")));
    }
    for (id, name) in &p.privesc {
        r.push(format!("privilege escalation {id} ({name})"));
    }
    if p.probe("s3_read_all_buckets") {
        r.push("read access to every S3 bucket".to_string());
    }
    for (pol, pat) in &p.broad_write {
        if !PrivilegeIndex::is_standard_node_policy(pol) {
            r.push(format!("wildcard write `{pat}` on * via {pol}"));
        }
    }
    r
}

pub(crate) fn run(ctx: &mut Ctx<'_>) {
    eks(ctx);
    aks(ctx);
    gke(ctx);
}

fn eks(ctx: &mut Ctx<'_>) {
    let all = [EKS_PUBLIC, EKS_AUDIT, EKS_NODE];
    let Some(aws) = ctx.snap.aws.as_ref() else {
        ctx.not_evaluated_all(&all, "no aws/ directory in the snapshot");
        return;
    };
    if aws.regions.is_empty() {
        ctx.not_evaluated_all(
            &all,
            &format!("no region directories under {}", aws.path("regions/")),
        );
        return;
    }
    let facts = ctx.facts;
    let mut index = aws
        .authorization
        .present()
        .map(|a| PrivilegeIndex::new(a, facts));
    for region in &aws.regions {
        let clusters = match &region.eks_clusters {
            Collected::Present(c) => c,
            _ => {
                let reason = format!(
                    "missing {}",
                    aws.path(&format!("regions/{}/eks-list-clusters.json", region.name))
                );
                for c in all {
                    ctx.not_evaluated(c, Some(format!("region {}", region.name)), reason.clone());
                }
                continue;
            }
        };
        for c in clusters {
            if !c.described {
                let reason = format!(
                    "missing {}",
                    aws.path(&format!(
                        "regions/{}/eks-describe-cluster/{}.json",
                        region.name, c.name
                    ))
                );
                ctx.not_evaluated(EKS_PUBLIC, Some(c.arn.clone()), reason.clone());
                ctx.not_evaluated(EKS_AUDIT, Some(c.arn.clone()), reason);
            } else {
                // No publicAccessCidrs with a public endpoint means the default, 0.0.0.0/0.
                if c.endpoint_public
                    && (c.public_access_cidrs.is_empty() || open_to_world(&c.public_access_cidrs))
                {
                    ctx.finding(
                        EKS_PUBLIC,
                        c.arn.clone(),
                        None,
                        format!(
                            "EKS cluster {} has a public API endpoint open to 0.0.0.0/0",
                            c.name
                        ),
                        vec![
                            ("endpoint_public_access", json!(true)),
                            ("public_access_cidrs", json!(c.public_access_cidrs)),
                        ],
                    );
                }
                // Every clusterLogging entry counts: a type may be enabled
                // in any of them (and disabled in another).
                let off: Vec<&str> = EKS_LOG_TYPES
                    .iter()
                    .copied()
                    .filter(|want| {
                        !c.logging
                            .iter()
                            .any(|(types, enabled)| *enabled && types.iter().any(|t| t == want))
                    })
                    .collect();
                if off.contains(&"audit") {
                    ctx.finding(
                        EKS_AUDIT,
                        c.arn.clone(),
                        None,
                        format!(
                            "EKS cluster {} does not send audit logs (control-plane log types off: {})",
                            c.name,
                            off.join(", ")
                        ),
                        vec![
                            ("log_types_off", json!(off)),
                            (
                            "cluster_logging",
                            json!(
                                c.logging
                                    .iter()
                                    .map(|(t, e)| json!({"types": t, "enabled": e}))
                                    .collect::<Vec<_>>()
                            ),
                            ),
                        ],
                    );
                }
            }
            match (&c.nodegroups, index.as_mut()) {
                (Collected::Present(ngs), Some(idx)) => {
                    let auth = aws.authorization.present().expect("index implies auth");
                    for (ng, role_arn) in ngs {
                        let Some(role) = auth.roles.iter().find(|r| &r.arn == role_arn) else {
                            ctx.not_evaluated(
                                EKS_NODE,
                                Some(role_arn.clone()),
                                format!(
                                    "node role of {}/{ng} not in the authorization details",
                                    c.name
                                ),
                            );
                            continue;
                        };
                        let p = idx.role(role);
                        let risks = node_role_risks(&p);
                        if !risks.is_empty() {
                            ctx.finding(
                                EKS_NODE,
                                role_arn.clone(),
                                None,
                                format!(
                                    "node role {} of EKS node group {}/{ng} has {}",
                                    role.name,
                                    c.name,
                                    risks.join("; ")
                                ),
                                vec![
                                    ("cluster", json!(c.arn)),
                                    ("nodegroup", json!(ng)),
                                    ("risks", json!(risks)),
                                    ("policies", json!(p.policies)),
                                ],
                            );
                        }
                    }
                }
                (Collected::Present(_), None) => ctx.not_evaluated(
                    EKS_NODE,
                    Some(c.arn.clone()),
                    format!(
                        "missing {}",
                        aws.path("iam-get-account-authorization-details.json")
                    ),
                ),
                _ => ctx.not_evaluated(
                    EKS_NODE,
                    Some(c.arn.clone()),
                    format!(
                        "missing {}",
                        aws.path(&format!(
                            "regions/{}/eks-describe-nodegroup/{}/",
                            region.name, c.name
                        ))
                    ),
                ),
            }
        }
    }
}

fn aks(ctx: &mut Ctx<'_>) {
    let Some(az) = ctx.snap.azure.as_ref() else {
        ctx.not_evaluated(AKS_PUBLIC, None, "no azure/ directory in the snapshot");
        return;
    };
    let Collected::Present(list) = &az.aks else {
        if !az.aks.is_collected() {
            ctx.not_evaluated(
                AKS_PUBLIC,
                None,
                format!("missing {}", az.dir.join("aks-list.json").display()),
            );
        }
        return;
    };
    for c in list {
        if !c.private_cluster
            && (c.authorized_ip_ranges.is_empty() || open_to_world(&c.authorized_ip_ranges))
        {
            ctx.finding(
                AKS_PUBLIC,
                c.id.clone(),
                None,
                format!("AKS cluster {} has a public API server with no authorized IP ranges restricting it", c.name),
                vec![("private_cluster", json!(false)), ("authorized_ip_ranges", json!(c.authorized_ip_ranges))],
            );
        }
    }
}

fn gke(ctx: &mut Ctx<'_>) {
    if ctx.snap.gcp.is_empty() {
        ctx.not_evaluated_all(&[GKE_PUBLIC, GKE_SA], "no gcp/ directory in the snapshot");
        return;
    }
    for p in &ctx.snap.gcp {
        let Collected::Present(list) = &p.clusters else {
            if !p.clusters.is_collected() {
                let reason = format!(
                    "missing {}",
                    p.dir.join("container-clusters-list.json").display()
                );
                ctx.not_evaluated(
                    GKE_PUBLIC,
                    Some(format!("projects/{}", p.id)),
                    reason.clone(),
                );
                ctx.not_evaluated(GKE_SA, Some(format!("projects/{}", p.id)), reason);
            }
            continue;
        };
        for c in list {
            let id = if c.self_link.is_empty() {
                format!(
                    "projects/{}/locations/{}/clusters/{}",
                    p.id, c.location, c.name
                )
            } else {
                c.self_link.clone()
            };
            if c.public_endpoint
                && (!c.authorized_networks_enabled || open_to_world(&c.authorized_cidrs))
            {
                ctx.finding(
                    GKE_PUBLIC,
                    id.clone(),
                    None,
                    format!(
                        "GKE cluster {} has a public control-plane endpoint open to 0.0.0.0/0",
                        c.name
                    ),
                    vec![
                        (
                            "authorized_networks_enabled",
                            json!(c.authorized_networks_enabled),
                        ),
                        ("authorized_cidrs", json!(c.authorized_cidrs)),
                    ],
                );
            }
            if c.node_service_accounts.is_empty() {
                ctx.not_evaluated(
                    GKE_SA,
                    Some(id.clone()),
                    "cluster listing has no node service account",
                );
                continue;
            }
            let default: Vec<&(String, String)> = c
                .node_service_accounts
                .iter()
                .filter(|(_, sa)| is_default_compute_sa(sa))
                .collect();
            if !default.is_empty() {
                ctx.finding(
                    GKE_SA,
                    id,
                    None,
                    format!(
                        "GKE cluster {} runs nodes as the Compute Engine default service account",
                        c.name
                    ),
                    vec![(
                        "node_pools",
                        json!(
                            default
                                .iter()
                                .map(|(n, sa)| json!({"pool": n, "service_account": sa}))
                                .collect::<Vec<_>>()
                        ),
                    )],
                );
            }
        }
    }
}

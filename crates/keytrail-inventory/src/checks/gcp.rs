//! GCP: user-managed service-account key age and last use, default compute
//! service account holding Editor or running instances with every scope.

use super::Ctx;
use crate::snapshot::Collected;
use crate::snapshot::gcp::is_default_compute_sa;
use serde_json::json;

const KEY_AGE: &str = "gcp.iam.service_account_key_age";
const EDITOR: &str = "gcp.iam.default_compute_sa_editor";
const KEY_UNUSED: &str = "gcp.iam.service_account_key_unused";
const FULL_SCOPE: &str = "gcp.compute.default_service_account_full_scope";

/// Days without authentication after which a key counts as unused.
const MAX_UNUSED_DAYS: i64 = 90;
/// The scope that lets a token do whatever its account's roles allow.
const CLOUD_PLATFORM: &str = "https://www.googleapis.com/auth/cloud-platform";

/// Maximum user-managed key age.
const MAX_KEY_AGE_DAYS: i64 = 365;

pub(crate) fn run_keys(ctx: &mut Ctx<'_>) {
    if ctx.snap.gcp.is_empty() {
        ctx.not_evaluated(KEY_AGE, None, "no gcp/ directory in the snapshot");
        ctx.not_evaluated(KEY_UNUSED, None, "no gcp/ directory in the snapshot");
        ctx.not_evaluated(FULL_SCOPE, None, "no gcp/ directory in the snapshot");
        return;
    }
    for p in &ctx.snap.gcp {
        unused_keys(ctx, p);
        full_scope(ctx, p);
    }
    for p in &ctx.snap.gcp {
        let Collected::Present(keys) = &p.keys else {
            ctx.not_evaluated(
                KEY_AGE,
                Some(format!("projects/{}", p.id)),
                format!(
                    "missing {}",
                    p.dir.join("iam-service-accounts-keys-list/").display()
                ),
            );
            continue;
        };
        for k in keys
            .iter()
            .filter(|k| k.key_type == "USER_MANAGED" && !k.disabled)
        {
            if k.valid_before.is_some_and(|t| t <= ctx.now) {
                continue; // expired: no longer usable
            }
            let Some(created) = k.valid_after else {
                ctx.not_evaluated(KEY_AGE, Some(k.name.clone()), "key has no validAfterTime");
                continue;
            };
            let age = ctx.days_since(created);
            if age > MAX_KEY_AGE_DAYS {
                ctx.finding(
                    KEY_AGE,
                    k.name.clone(),
                    Some(format!(
                        "projects/{}/serviceAccounts/{}",
                        p.id, k.service_account
                    )),
                    format!(
                        "user-managed key of {} is {age} days old",
                        k.service_account
                    ),
                    vec![
                        ("created", json!(created.to_rfc3339())),
                        ("expires", json!(k.valid_before.map(|t| t.to_rfc3339()))),
                        ("age_days", json!(age)),
                        ("threshold_days", json!(MAX_KEY_AGE_DAYS)),
                    ],
                );
            }
        }
    }
}

pub(crate) fn run_iam(ctx: &mut Ctx<'_>) {
    if ctx.snap.gcp.is_empty() {
        ctx.not_evaluated(EDITOR, None, "no gcp/ directory in the snapshot");
        return;
    }
    for p in &ctx.snap.gcp {
        let Collected::Present(bindings) = &p.iam_policy else {
            ctx.not_evaluated(
                EDITOR,
                Some(format!("projects/{}", p.id)),
                format!(
                    "missing {}",
                    p.dir.join("projects-get-iam-policy.json").display()
                ),
            );
            continue;
        };
        for b in bindings
            .iter()
            .filter(|b| b.role == "roles/editor" || b.role == "roles/owner")
        {
            for m in &b.members {
                if let Some(sa) = m.strip_prefix("serviceAccount:")
                    && sa.ends_with("-compute@developer.gserviceaccount.com")
                {
                    ctx.finding(
                        EDITOR,
                        format!("projects/{}/serviceAccounts/{sa}", p.id),
                        None,
                        format!(
                            "the default compute service account {sa} holds {} on project {}",
                            b.role, p.id
                        ),
                        vec![("role", json!(b.role)), ("member", json!(m))],
                    );
                }
            }
        }
    }
}

fn unused_keys(ctx: &mut Ctx<'_>, p: &crate::snapshot::gcp::GcpProject) {
    let (Collected::Present(keys), Collected::Present(last)) = (&p.keys, &p.key_last_auth) else {
        let missing = if p.keys.present().is_none() {
            "iam-service-accounts-keys-list/"
        } else {
            "policy-intelligence-query-activity-keys.json"
        };
        ctx.not_evaluated(
            KEY_UNUSED,
            Some(format!("projects/{}", p.id)),
            format!("missing {}", p.dir.join(missing).display()),
        );
        return;
    };
    let now = ctx.now;
    for k in keys
        .iter()
        .filter(|k| k.key_type == "USER_MANAGED" && !k.disabled)
        .filter(|k| k.valid_before.is_none_or(|t| t > now))
    {
        let identity = Some(format!(
            "projects/{}/serviceAccounts/{}",
            p.id, k.service_account
        ));
        let id = crate::snapshot::gcp::key_id(&k.name);
        match last.get(id) {
            Some(t) => {
                let days = ctx.days_since(*t);
                if days > MAX_UNUSED_DAYS {
                    ctx.finding(
                        KEY_UNUSED,
                        k.name.clone(),
                        identity,
                        format!(
                            "user-managed key of {} last authenticated {days} days ago ({})",
                            k.service_account,
                            t.format("%Y-%m-%d")
                        ),
                        vec![
                            ("last_authenticated", json!(t.to_rfc3339())),
                            ("days_unused", json!(days)),
                            ("never_used", json!(false)),
                        ],
                    );
                }
            }
            None => {
                let age = k.valid_after.map(|c| ctx.days_since(c));
                if age.is_some_and(|a| a > MAX_UNUSED_DAYS) {
                    ctx.finding(
                        KEY_UNUSED,
                        k.name.clone(),
                        identity,
                        format!(
                            "user-managed key of {} has no recorded authentication in the {} days since it was created",
                            k.service_account,
                            age.unwrap_or_default()
                        ),
                        vec![
                            ("last_authenticated", json!(null)),
                            ("days_unused", json!(age)),
                            ("never_used", json!(true)),
                        ],
                    );
                }
            }
        }
    }
}

fn full_scope(ctx: &mut Ctx<'_>, p: &crate::snapshot::gcp::GcpProject) {
    let Collected::Present(instances) = &p.instances else {
        ctx.not_evaluated(
            FULL_SCOPE,
            Some(format!("projects/{}", p.id)),
            format!(
                "missing {}",
                p.dir.join("compute-instances-list.json").display()
            ),
        );
        return;
    };
    // GKE nodes are judged by gcp.gke.default_compute_service_account.
    for i in instances.iter().filter(|i| !i.gke_node) {
        for (sa, scopes) in &i.service_accounts {
            if is_default_compute_sa(sa) && scopes.iter().any(|s| s == CLOUD_PLATFORM) {
                ctx.finding(
                    FULL_SCOPE,
                    i.resource.clone(),
                    Some(format!("projects/{}/serviceAccounts/{sa}", p.id)),
                    format!(
                        "instance {} in {} runs as the default compute service account {sa} with the cloud-platform scope",
                        i.name, i.zone
                    ),
                    vec![
                        ("service_account", json!(sa)),
                        ("scopes", json!(scopes)),
                        ("status", json!(i.status)),
                        ("zone", json!(i.zone)),
                    ],
                );
            }
        }
    }
}

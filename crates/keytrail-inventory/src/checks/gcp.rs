//! GCP: user-managed service-account key age, default compute service
//! account holding Editor.

use super::Ctx;
use crate::snapshot::Collected;
use serde_json::json;

const KEY_AGE: &str = "gcp.iam.service_account_key_age";
const EDITOR: &str = "gcp.iam.default_compute_sa_editor";

/// Maximum user-managed key age.
const MAX_KEY_AGE_DAYS: i64 = 365;

pub(crate) fn run_keys(ctx: &mut Ctx<'_>) {
    if ctx.snap.gcp.is_empty() {
        ctx.not_evaluated(KEY_AGE, None, "no gcp/ directory in the snapshot");
        return;
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

//! Azure: Entra ID application credential age and validity, anonymous blob
//! containers.

use super::Ctx;
use crate::snapshot::Collected;
use serde_json::json;

const CRED_AGE: &str = "azure.entra.app_credential_age";
const CRED_VALIDITY: &str = "azure.entra.app_credential_long_validity";
const CONTAINER: &str = "azure.storage.container_anonymous_access";

const MAX_DAYS: i64 = 365;

/// Identity id of an Entra application.
pub(crate) fn app_id(app_id: &str) -> String {
    format!("entra:application/{app_id}")
}

pub(crate) fn run_apps(ctx: &mut Ctx<'_>) {
    let Some(az) = ctx.snap.azure.as_ref() else {
        ctx.not_evaluated_all(
            &[CRED_AGE, CRED_VALIDITY],
            "no azure/ directory in the snapshot",
        );
        return;
    };
    let Collected::Present(apps) = &az.applications else {
        let reason = format!(
            "missing {}",
            az.dir.join("graph-applications.json").display()
        );
        ctx.not_evaluated_all(&[CRED_AGE, CRED_VALIDITY], &reason);
        return;
    };
    for app in apps {
        let id = app_id(&app.app_id);
        for c in &app.credentials {
            if c.end.is_some_and(|e| e <= ctx.now) {
                continue; // expired: no longer usable
            }
            let what = format!(
                "{} {}",
                c.kind,
                c.display_name.as_deref().unwrap_or(&c.key_id)
            );
            let ev = |extra: Vec<(&'static str, serde_json::Value)>| {
                let mut v = vec![
                    ("application", json!(app.display_name)),
                    ("credential_type", json!(c.kind)),
                    ("key_id", json!(c.key_id)),
                    ("start", json!(c.start.map(|t| t.to_rfc3339()))),
                    ("end", json!(c.end.map(|t| t.to_rfc3339()))),
                ];
                v.extend(extra);
                v
            };
            let Some(start) = c.start else {
                ctx.not_evaluated(
                    CRED_AGE,
                    Some(id.clone()),
                    format!("{what} has no startDateTime"),
                );
                continue;
            };
            let age = ctx.days_since(start);
            if age > MAX_DAYS {
                ctx.finding(
                    CRED_AGE,
                    id.clone(),
                    None,
                    format!(
                        "{what} of application {} is {age} days old",
                        app.display_name
                    ),
                    ev(vec![("age_days", json!(age))]),
                );
            }
            if let Some(end) = c.end {
                let validity = (end - start).num_days();
                if validity > MAX_DAYS {
                    ctx.finding(
                        CRED_VALIDITY,
                        id.clone(),
                        None,
                        format!(
                            "{what} of application {} is valid for {validity} days",
                            app.display_name
                        ),
                        ev(vec![("validity_days", json!(validity))]),
                    );
                }
            } else {
                ctx.finding(
                    CRED_VALIDITY,
                    id.clone(),
                    None,
                    format!("{what} of application {} never expires", app.display_name),
                    ev(vec![("validity_days", json!(null))]),
                );
            }
        }
    }
}

pub(crate) fn run_storage(ctx: &mut Ctx<'_>) {
    let Some(az) = ctx.snap.azure.as_ref() else {
        ctx.not_evaluated(CONTAINER, None, "no azure/ directory in the snapshot");
        return;
    };
    let Collected::Present(accounts) = &az.storage_accounts else {
        ctx.not_evaluated(
            CONTAINER,
            None,
            format!(
                "missing {}",
                az.dir.join("storage-account-list.json").display()
            ),
        );
        return;
    };
    for a in accounts {
        if a.allow_blob_public_access == Some(false) {
            continue; // the account overrides every container setting
        }
        let Collected::Present(containers) = &a.containers else {
            ctx.not_evaluated(
                CONTAINER,
                Some(a.id.clone()),
                format!(
                    "missing {}",
                    az.dir
                        .join(format!("storage-container-list/{}.json", a.name))
                        .display()
                ),
            );
            continue;
        };
        for c in containers {
            if let Some(level) = c
                .public_access
                .as_deref()
                .filter(|l| matches!(*l, "blob" | "container"))
            {
                ctx.finding(
                    CONTAINER,
                    format!("{}/blobServices/default/containers/{}", a.id, c.name),
                    Some(a.id.clone()),
                    format!(
                        "container {} in storage account {} allows anonymous {level} access",
                        c.name, a.name
                    ),
                    vec![
                        ("public_access", json!(level)),
                        (
                            "allow_blob_public_access",
                            json!(a.allow_blob_public_access),
                        ),
                    ],
                );
            }
        }
    }
}

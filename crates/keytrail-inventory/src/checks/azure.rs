//! Azure: Entra ID application credential age and validity, anonymous blob
//! containers, service principals holding subscription-wide control.

use super::Ctx;
use crate::snapshot::Collected;
use serde_json::json;

const CRED_AGE: &str = "azure.entra.app_credential_age";
const CRED_VALIDITY: &str = "azure.entra.app_credential_long_validity";
const CONTAINER: &str = "azure.storage.container_anonymous_access";
const SP_PRIV: &str = "azure.rbac.service_principal_privileged";

/// Roles that control a whole scope: change anything, or grant access.
const CONTROL_ROLES: &[&str] = &[
    "Owner",
    "Contributor",
    "User Access Administrator",
    "Role Based Access Control Administrator",
];

/// Whether `scope` is a subscription, a management group or the root.
fn broad_scope(scope: &str) -> bool {
    let s = scope.trim_end_matches('/');
    if s.is_empty() {
        return true;
    }
    let lower = s.to_ascii_lowercase();
    if lower.starts_with("/providers/microsoft.management/managementgroups/") {
        return true;
    }
    let parts: Vec<&str> = s.split('/').collect();
    parts.len() == 3 && parts[1].eq_ignore_ascii_case("subscriptions")
}

pub(crate) fn run_rbac(ctx: &mut Ctx<'_>) {
    let Some(az) = ctx.snap.azure.as_ref() else {
        ctx.not_evaluated(SP_PRIV, None, "no azure/ directory in the snapshot");
        return;
    };
    let Collected::Present(assignments) = &az.role_assignments else {
        let reason = format!(
            "missing {}",
            az.dir.join("role-assignment-list.json").display()
        );
        ctx.not_evaluated(SP_PRIV, None, reason);
        return;
    };
    let sps: std::collections::HashMap<&str, &crate::snapshot::azure::ServicePrincipal> = az
        .service_principals
        .present()
        .map(|l| l.iter().map(|s| (s.id.as_str(), s)).collect())
        .unwrap_or_default();
    for a in assignments {
        if a.principal_type.as_deref() != Some("ServicePrincipal") {
            continue;
        }
        let Some(role) = a.role_definition_name.as_deref() else {
            continue;
        };
        if !CONTROL_ROLES.iter().any(|r| r.eq_ignore_ascii_case(role)) || !broad_scope(&a.scope) {
            continue;
        }
        let sp = sps.get(a.principal_id.as_str());
        let name = sp
            .and_then(|s| s.display_name.clone())
            .unwrap_or_else(|| format!("service principal {}", a.principal_id));
        let kind = sp
            .and_then(|s| s.service_principal_type.as_deref())
            .map(|t| {
                if t == "ManagedIdentity" {
                    "managed identity"
                } else {
                    "application"
                }
            })
            .unwrap_or("service principal");
        let identity = sp
            .filter(|s| !s.app_id.is_empty())
            .map(|s| app_id(&s.app_id))
            .unwrap_or_else(|| format!("entra:servicePrincipal/{}", a.principal_id));
        let scope = if a.scope.is_empty() {
            "/"
        } else {
            a.scope.as_str()
        };
        ctx.finding(
            SP_PRIV,
            a.id.clone(),
            Some(identity),
            format!("{kind} {name} holds {role} on {scope}"),
            vec![
                ("principal_id", json!(a.principal_id)),
                ("role", json!(role)),
                ("scope", json!(scope)),
                (
                    "display_name",
                    json!(sp.and_then(|s| s.display_name.clone())),
                ),
                (
                    "service_principal_type",
                    json!(sp.and_then(|s| s.service_principal_type.clone())),
                ),
                (
                    "app_owner_organization_id",
                    json!(sp.and_then(|s| s.app_owner_organization_id.clone())),
                ),
            ],
        );
    }
}

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
            // The data plane (`az storage container list`) says `blob`,
            // ARM (`az storage container-rm list`) says `Blob`.
            let level = c.public_access.as_deref().map(str::to_ascii_lowercase);
            if let Some(level) = level.filter(|l| matches!(l.as_str(), "blob" | "container")) {
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

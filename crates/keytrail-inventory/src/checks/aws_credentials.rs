//! Long-lived AWS credentials: access key age and use, two active keys,
//! console users without MFA, root access keys.

use super::Ctx;
use crate::Timestamp;
use crate::snapshot::Collected;
use crate::snapshot::aws::{AwsSnapshot, CredentialReportRow};
use serde_json::json;
use std::collections::HashMap;

const AGE: &str = "aws.iam.access_key_age";
const UNUSED: &str = "aws.iam.access_key_unused";
const TWO: &str = "aws.iam.two_active_keys";
const MFA: &str = "aws.iam.console_user_without_mfa";
const ROOT: &str = "aws.iam.root_access_key";

/// Maximum key age before `access_key_age` fires.
pub(crate) const MAX_KEY_AGE_DAYS: i64 = 365;
/// Days without use before `access_key_unused` fires.
pub(crate) const MAX_UNUSED_DAYS: i64 = 90;

/// A key as the checks see it, from either source.
pub(crate) struct KeyView {
    pub user: String,
    pub user_arn: String,
    /// Access key id, or `key slot N` when only the credential report is available.
    pub label: String,
    pub active: bool,
    pub created: Option<Timestamp>,
    /// `Some(None)` = known never used; `None` = unknown.
    pub last_used: Option<Option<Timestamp>>,
}

/// Every access key of the account, from `list-access-keys` (+ last-used)
/// when collected, else from the credential report. `None` if neither.
pub(crate) fn keys(aws: &AwsSnapshot) -> Option<Vec<KeyView>> {
    let account = aws.account_id().unwrap_or_else(|| "unknown".into());
    let report = aws.credential_report.present();
    let mut arns: HashMap<&str, &str> = HashMap::new();
    if let Some(rows) = report {
        for r in rows {
            arns.insert(r.user.as_str(), r.arn.as_str());
        }
    }
    if let Some(auth) = aws.authorization.present() {
        for u in &auth.users {
            arns.insert(u.name.as_str(), u.arn.as_str());
        }
    }
    let user_arn = |user: &str| -> String {
        match arns.get(user) {
            Some(a) => a.to_string(),
            None => format!("arn:aws:iam::{account}:user/{user}"),
        }
    };
    let rows_by_user: HashMap<&str, &CredentialReportRow> = report
        .map(|rows| rows.iter().map(|r| (r.user.as_str(), r)).collect())
        .unwrap_or_default();
    match &aws.access_keys {
        Collected::Present(list) => Some(
            list.iter()
                .map(|k| {
                    let last_used = if k.last_used_known {
                        Some(k.last_used)
                    } else {
                        // Fall back to the credential report slot with the
                        // same creation (last rotation) time.
                        rows_by_user
                            .get(k.user.as_str())
                            .and_then(|row| {
                                row.keys.iter().find(|s| {
                                    s.last_rotated.is_some() && s.last_rotated == k.created
                                })
                            })
                            .map(|s| s.last_used)
                    };
                    KeyView {
                        user: k.user.clone(),
                        user_arn: user_arn(&k.user),
                        label: k.id.clone(),
                        active: k.active,
                        created: k.created,
                        last_used,
                    }
                })
                .collect(),
        ),
        _ => report.map(|rows| {
            rows.iter()
                .filter(|r| r.user != "<root_account>")
                .flat_map(|r| {
                    r.keys
                        .iter()
                        .enumerate()
                        .filter(|(_, s)| s.active || s.last_rotated.is_some())
                        .map(move |(i, s)| KeyView {
                            user: r.user.clone(),
                            user_arn: r.arn.clone(),
                            label: format!("key slot {}", i + 1),
                            active: s.active,
                            created: s.last_rotated,
                            last_used: Some(s.last_used),
                        })
                })
                .collect()
        }),
    }
}

pub(crate) fn run(ctx: &mut Ctx<'_>) {
    let Some(aws) = ctx.snap.aws.as_ref() else {
        ctx.not_evaluated_all(
            &[AGE, UNUSED, TWO, MFA, ROOT],
            "no aws/ directory in the snapshot",
        );
        return;
    };
    match keys(aws) {
        None => {
            let reason = format!(
                "missing {} and {}",
                aws.path("iam-list-access-keys/"),
                aws.path("iam-credential-report.csv")
            );
            ctx.not_evaluated_all(&[AGE, UNUSED, TWO], &reason);
        }
        Some(keys) => {
            for k in keys.iter().filter(|k| k.active) {
                let Some(created) = k.created else {
                    ctx.not_evaluated(
                        AGE,
                        Some(k.user_arn.clone()),
                        format!("{}: no creation date", k.label),
                    );
                    continue;
                };
                let age = ctx.days_since(created);
                if age > MAX_KEY_AGE_DAYS {
                    ctx.finding(
                        AGE,
                        k.user_arn.clone(),
                        None,
                        format!(
                            "access key {} of user {} is {age} days old",
                            k.label, k.user
                        ),
                        vec![
                            ("access_key_id", json!(k.label)),
                            ("created", json!(created.to_rfc3339())),
                            ("age_days", json!(age)),
                            ("threshold_days", json!(MAX_KEY_AGE_DAYS)),
                        ],
                    );
                }
                match k.last_used {
                    None => ctx.not_evaluated(
                        UNUSED,
                        Some(k.user_arn.clone()),
                        format!(
                            "{}: missing {}",
                            k.label,
                            aws.path(&format!("iam-get-access-key-last-used/{}.json", k.label))
                        ),
                    ),
                    Some(Some(used)) => {
                        let idle = ctx.days_since(used);
                        if idle >= MAX_UNUSED_DAYS {
                            ctx.finding(
                                UNUSED,
                                k.user_arn.clone(),
                                None,
                                format!(
                                    "access key {} of user {} was last used {idle} days ago",
                                    k.label, k.user
                                ),
                                vec![
                                    ("access_key_id", json!(k.label)),
                                    ("last_used", json!(used.to_rfc3339())),
                                    ("days_unused", json!(idle)),
                                    ("threshold_days", json!(MAX_UNUSED_DAYS)),
                                ],
                            );
                        }
                    }
                    Some(None) => {
                        if age >= MAX_UNUSED_DAYS {
                            ctx.finding(
                                UNUSED,
                                k.user_arn.clone(),
                                None,
                                format!(
                                    "access key {} of user {} was never used and is {age} days old",
                                    k.label, k.user
                                ),
                                vec![
                                    ("access_key_id", json!(k.label)),
                                    ("last_used", json!(null)),
                                    ("age_days", json!(age)),
                                    ("threshold_days", json!(MAX_UNUSED_DAYS)),
                                ],
                            );
                        }
                    }
                }
            }
            // Active keys per user, in one pass (not a pass per user).
            let mut by_user: std::collections::BTreeMap<&str, Vec<&KeyView>> =
                std::collections::BTreeMap::new();
            for k in &keys {
                let slot = by_user.entry(k.user.as_str()).or_default();
                if k.active {
                    slot.push(k);
                }
            }
            for (u, active) in by_user {
                if active.len() >= 2 {
                    ctx.finding(
                        TWO,
                        active[0].user_arn.clone(),
                        None,
                        format!("user {u} has {} active access keys", active.len()),
                        vec![(
                            "access_key_ids",
                            json!(active.iter().map(|k| &k.label).collect::<Vec<_>>()),
                        )],
                    );
                }
            }
        }
    }
    match aws.credential_report.present() {
        None => {
            let reason = format!("missing {}", aws.path("iam-credential-report.csv"));
            ctx.not_evaluated_all(&[MFA, ROOT], &reason);
        }
        Some(rows) => {
            for r in rows {
                console_and_root(ctx, r);
            }
        }
    }
}

fn console_and_root(ctx: &mut Ctx<'_>, r: &CredentialReportRow) {
    if r.user == "<root_account>" {
        let active: Vec<usize> = (0..2).filter(|i| r.keys[*i].active).collect();
        if !active.is_empty() {
            ctx.finding(
                ROOT,
                r.arn.clone(),
                None,
                "the root user has an active access key",
                vec![(
                    "active_key_slots",
                    json!(active.iter().map(|i| i + 1).collect::<Vec<_>>()),
                )],
            );
        }
        return;
    }
    if r.password_enabled && !r.mfa_active {
        ctx.finding(
            MFA,
            r.arn.clone(),
            None,
            format!(
                "user {} can sign in to the console with a password and has no MFA",
                r.user
            ),
            vec![
                (
                    "password_last_used",
                    json!(r.password_last_used.map(|t| t.to_rfc3339())),
                ),
                ("mfa_active", json!(false)),
            ],
        );
    }
}

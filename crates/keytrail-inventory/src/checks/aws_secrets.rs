//! Where machine credentials are kept in AWS: Secrets Manager (rotation
//! off, rotation configured but not happening, secrets nobody reads) and
//! SSM Parameter Store (credentials in plain `String` parameters, secure
//! parameters never changed). Metadata only: the snapshot never holds a
//! secret's or a parameter's value.

use super::Ctx;
use super::aws_credentials::{MAX_KEY_AGE_DAYS, MAX_UNUSED_DAYS};
use crate::snapshot::Collected;
use crate::snapshot::aws::{AwsSnapshot, ManagedSecret, Parameter, Region};
use serde_json::json;

/// A timestamp in evidence: whole seconds (the AWS CLI prints some dates
/// with fractions, the SDK others; the evidence must not depend on which).
fn rfc3339(t: crate::Timestamp) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}

const ROTATION_OFF: &str = "aws.secretsmanager.rotation_disabled";
const ROTATION_OVERDUE: &str = "aws.secretsmanager.rotation_overdue";
const SECRET_UNUSED: &str = "aws.secretsmanager.secret_unused";
const PLAINTEXT: &str = "aws.ssm.secret_in_plaintext_parameter";
const STALE: &str = "aws.ssm.secure_parameter_not_rotated";

const SECRET_CHECKS: [&str; 3] = [ROTATION_OFF, ROTATION_OVERDUE, SECRET_UNUSED];
const PARAMETER_CHECKS: [&str; 2] = [PLAINTEXT, STALE];

/// Rotation interval assumed when a schedule cannot be read (a `cron(...)`
/// expression): AWS's own default for managed rotation.
const DEFAULT_ROTATION_DAYS: i64 = 30;
/// Days a rotation may run late before it counts as overdue (the
/// rotation window plus retries).
const ROTATION_GRACE_DAYS: i64 = 2;

pub(crate) fn run(ctx: &mut Ctx<'_>) {
    let Some(aws) = ctx.snap.aws.as_ref() else {
        ctx.not_evaluated_all(&SECRET_CHECKS, "no aws/ directory in the snapshot");
        ctx.not_evaluated_all(&PARAMETER_CHECKS, "no aws/ directory in the snapshot");
        return;
    };
    if aws.regions.is_empty() {
        let reason = format!("no region directories under {}", aws.path("regions/"));
        ctx.not_evaluated_all(&SECRET_CHECKS, &reason);
        ctx.not_evaluated_all(&PARAMETER_CHECKS, &reason);
        return;
    }
    let account = aws.account_id().unwrap_or_else(|| "unknown".into());
    for region in &aws.regions {
        match &region.secrets {
            Collected::Present(list) => {
                for s in list.iter().filter(|s| s.deleted.is_none()) {
                    secret(ctx, region, s);
                }
            }
            _ => missing(
                ctx,
                aws,
                region,
                &SECRET_CHECKS,
                "secretsmanager-list-secrets",
            ),
        }
        match &region.parameters {
            Collected::Present(list) => {
                for p in list {
                    parameter(ctx, region, &account, p);
                }
            }
            _ => missing(
                ctx,
                aws,
                region,
                &PARAMETER_CHECKS,
                "ssm-describe-parameters",
            ),
        }
    }
}

fn missing(
    ctx: &mut Ctx<'_>,
    aws: &AwsSnapshot,
    region: &Region,
    checks: &[&'static str],
    file: &str,
) {
    let reason = format!(
        "missing {}",
        aws.path(&format!("regions/{}/{file}.json", region.name))
    );
    for c in checks {
        ctx.not_evaluated(c, Some(format!("region {}", region.name)), reason.clone());
    }
}

/// The rotation interval in days: `AutomaticallyAfterDays`, or a
/// `rate(N days|hours)` schedule; `None` for a schedule it cannot read.
fn rotation_days(s: &ManagedSecret) -> Option<i64> {
    if let Some(d) = s.rotation_days.filter(|d| *d > 0) {
        return Some(d);
    }
    let expr = s.rotation_schedule.as_deref()?.trim();
    let inner = expr.strip_prefix("rate(")?.strip_suffix(')')?;
    let (n, unit) = inner.trim().split_once(char::is_whitespace)?;
    let n: i64 = n.parse().ok().filter(|n| *n > 0)?;
    match unit.trim().trim_end_matches('s') {
        "day" => Some(n),
        "hour" => Some((n + 23) / 24),
        _ => None,
    }
}

fn secret(ctx: &mut Ctx<'_>, region: &Region, s: &ManagedSecret) {
    let resource = if s.arn.is_empty() {
        format!("secret {} in {}", s.name, region.name)
    } else {
        s.arn.clone()
    };
    let base = |extra: Vec<(&'static str, serde_json::Value)>| {
        let mut v = vec![
            ("name", json!(s.name)),
            ("region", json!(region.name)),
            ("created", json!(s.created.map(rfc3339))),
            ("last_rotated", json!(s.last_rotated.map(rfc3339))),
            ("owning_service", json!(s.owning_service)),
        ];
        v.extend(extra);
        v
    };
    if !s.rotation_enabled {
        let since = s.last_rotated.or(s.created).map(|t| ctx.days_since(t));
        ctx.finding(
            ROTATION_OFF,
            resource.clone(),
            None,
            format!(
                "secret {} in {} has automatic rotation off{}",
                s.name,
                region.name,
                match (s.last_rotated, since) {
                    (Some(_), Some(d)) => format!(" (last rotated {d} days ago)"),
                    (None, Some(d)) =>
                        format!(" and was never rotated in the {d} days since it was created"),
                    _ => String::new(),
                }
            ),
            base(vec![("days_since_rotation", json!(since))]),
        );
    } else {
        let interval = rotation_days(s);
        let expected = interval.unwrap_or(DEFAULT_ROTATION_DAYS);
        if let Some(newest) = s.last_rotated.or(s.created) {
            let days = ctx.days_since(newest);
            if days > expected + ROTATION_GRACE_DAYS {
                ctx.finding(
                    ROTATION_OVERDUE,
                    resource.clone(),
                    None,
                    format!(
                        "secret {} in {} should rotate every {expected} days but was {} {days} days ago: its rotation is failing",
                        s.name,
                        region.name,
                        if s.last_rotated.is_some() { "last rotated" } else { "created, and never rotated," }
                    ),
                    base(vec![
                        ("rotation_days", json!(interval)),
                        ("rotation_schedule", json!(s.rotation_schedule)),
                        ("days_since_rotation", json!(days)),
                    ]),
                );
            }
        }
    }
    match s.last_accessed {
        Some(t) => {
            let days = ctx.days_since(t);
            if days > MAX_UNUSED_DAYS {
                ctx.finding(
                    SECRET_UNUSED,
                    resource,
                    None,
                    format!(
                        "secret {} in {} was last read {days} days ago ({})",
                        s.name,
                        region.name,
                        t.format("%Y-%m-%d")
                    ),
                    base(vec![
                        ("last_accessed", json!(rfc3339(t))),
                        ("days_unused", json!(days)),
                        ("never_accessed", json!(false)),
                    ]),
                );
            }
        }
        None => {
            let age = s.created.map(|c| ctx.days_since(c));
            if age.is_some_and(|a| a > MAX_UNUSED_DAYS) {
                ctx.finding(
                    SECRET_UNUSED,
                    resource,
                    None,
                    format!(
                        "secret {} in {} has never been read in the {} days since it was created",
                        s.name,
                        region.name,
                        age.unwrap_or_default()
                    ),
                    base(vec![
                        ("last_accessed", json!(null)),
                        ("days_unused", json!(age)),
                        ("never_accessed", json!(true)),
                    ]),
                );
            }
        }
    }
}

/// Words of a parameter name's last segment that say it holds a credential.
const SECRET_WORDS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "passphrase",
    "secret",
    "secrets",
    "token",
    "apikey",
    "credential",
    "credentials",
    "privatekey",
    "dsn",
];
/// Word pairs that say the same (`api_key`, `private-key`, `AccessKey`).
const SECRET_PAIRS: &[(&str, &str)] = &[
    ("api", "key"),
    ("private", "key"),
    ("access", "key"),
    ("secret", "key"),
    ("signing", "key"),
    ("encryption", "key"),
    ("client", "secret"),
    ("connection", "string"),
    ("conn", "string"),
];
/// Words that make the name describe a credential rather than hold one
/// (`password_min_length`, `token_ttl`, `secret_arn`, `api_key_header`).
const METADATA_WORDS: &[&str] = &[
    "arn",
    "name",
    "id",
    "ids",
    "url",
    "uri",
    "endpoint",
    "ttl",
    "length",
    "len",
    "min",
    "max",
    "policy",
    "expiry",
    "expires",
    "expiration",
    "path",
    "file",
    "enabled",
    "type",
    "version",
    "region",
    "header",
    "format",
    "rotation",
    "lifetime",
    "timeout",
    "count",
    "prefix",
    "hint",
    "reset",
    "required",
    "issuer",
    "audience",
    "scope",
    "scopes",
    "location",
    "ref",
];

/// Lower-case words of `name`'s last path segment (`/app/dbPassword` →
/// `db`, `password`).
fn name_words(name: &str) -> Vec<String> {
    let leaf = name.rsplit('/').next().unwrap_or(name);
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in leaf.chars() {
        if !c.is_ascii_alphanumeric() {
            if !cur.is_empty() {
                words.push(std::mem::take(&mut cur));
            }
            prev_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && prev_lower && !cur.is_empty() {
            words.push(std::mem::take(&mut cur));
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        cur.push(c.to_ascii_lowercase());
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

/// Whether a parameter's name says it holds a credential.
pub(crate) fn names_a_secret(name: &str) -> bool {
    let words = name_words(name);
    if words.iter().any(|w| METADATA_WORDS.contains(&w.as_str())) {
        return false;
    }
    words.iter().any(|w| SECRET_WORDS.contains(&w.as_str()))
        || words
            .windows(2)
            .any(|p| SECRET_PAIRS.contains(&(p[0].as_str(), p[1].as_str())))
}

fn parameter(ctx: &mut Ctx<'_>, region: &Region, account: &str, p: &Parameter) {
    if !names_a_secret(&p.name) {
        return;
    }
    let resource = p.arn.clone().unwrap_or_else(|| {
        let sep = if p.name.starts_with('/') { "" } else { "/" };
        format!(
            "arn:aws:ssm:{}:{account}:parameter{sep}{}",
            region.name, p.name
        )
    });
    let modified_days = p.last_modified.map(|t| ctx.days_since(t));
    let evidence = vec![
        ("name", json!(p.name)),
        ("region", json!(region.name)),
        ("type", json!(p.kind)),
        ("last_modified", json!(p.last_modified.map(rfc3339))),
        ("last_modified_user", json!(p.last_modified_user)),
    ];
    match p.kind.as_str() {
        "String" | "StringList" => ctx.finding(
            PLAINTEXT,
            resource,
            None,
            format!(
                "parameter {} in {} is named like a credential but is a plain {} (not SecureString)",
                p.name, region.name, p.kind
            ),
            evidence,
        ),
        "SecureString" => {
            if let Some(days) = modified_days.filter(|d| *d > MAX_KEY_AGE_DAYS) {
                let mut evidence = evidence;
                evidence.push(("days_since_change", json!(days)));
                ctx.finding(
                    STALE,
                    resource,
                    None,
                    format!(
                        "secure parameter {} in {} has not changed in {days} days",
                        p.name, region.name
                    ),
                    evidence,
                );
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_names_and_look_alikes() {
        for name in [
            "/prod/db/password",
            "/prod/db/DB_PASSWORD",
            "/app/stripeApiKey",
            "/app/github-token",
            "/app/api_key",
            "/svc/oauth/client_secret",
            "/svc/signing-key",
            "/svc/AWS_SECRET_ACCESS_KEY",
            "/svc/sentry_dsn",
            "/svc/private.key",
            "db-pwd",
        ] {
            assert!(names_a_secret(name), "{name} names a credential");
        }
        for name in [
            "/prod/db/host",
            "/prod/db/password_min_length",
            "/app/token_ttl",
            "/app/secret_arn",
            "/app/api_key_header",
            "/app/keyboard_layout",
            "/app/tokenizer",
            "/app/passwordless_enabled",
            "/app/feature_flags",
            "/app/secretary_email",
            "/svc/access_key_id",
            "/svc/SecretName",
        ] {
            assert!(!names_a_secret(name), "{name} does not hold a credential");
        }
    }

    #[test]
    fn rotation_schedules() {
        let s = |days: Option<i64>, expr: Option<&str>| ManagedSecret {
            rotation_days: days,
            rotation_schedule: expr.map(str::to_string),
            ..ManagedSecret::default()
        };
        assert_eq!(rotation_days(&s(Some(7), None)), Some(7));
        assert_eq!(rotation_days(&s(None, Some("rate(10 days)"))), Some(10));
        assert_eq!(rotation_days(&s(None, Some("rate(1 day)"))), Some(1));
        assert_eq!(rotation_days(&s(None, Some("rate(4 hours)"))), Some(1));
        assert_eq!(rotation_days(&s(None, Some("cron(0 16 1,15 * ? *)"))), None);
        assert_eq!(rotation_days(&s(None, Some("rate(x days)"))), None);
        assert_eq!(rotation_days(&s(Some(0), None)), None);
    }
}

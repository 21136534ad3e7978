//! Public S3 storage: public buckets (policy or ACL, honouring object
//! ownership and Block Public Access), account- and bucket-level public
//! access blocks.

use super::Ctx;
use crate::policy::{Effect, PolicyDocument};
use crate::snapshot::Collected;
use crate::snapshot::aws::{Bucket, PublicAccessBlock};
use serde_json::json;

const PUBLIC: &str = "aws.s3.bucket_public";
const ACCOUNT_PAB: &str = "aws.s3.account_public_access_block";
const BUCKET_PAB: &str = "aws.s3.bucket_public_access_block";

const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
const AUTH_USERS: &str = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";

/// One Block Public Access setting combined over account and bucket:
/// `Some(true)` if either level has it on, `Some(false)` if both are known
/// off (or not configured), `None` if unknown.
fn effective(
    account: &Collected<PublicAccessBlock>,
    bucket: &Collected<PublicAccessBlock>,
    get: fn(&PublicAccessBlock) -> bool,
) -> Option<bool> {
    let level = |c: &Collected<PublicAccessBlock>| match c {
        Collected::Present(p) => Some(get(p)),
        Collected::NotConfigured => Some(false),
        Collected::Missing => None,
    };
    match (level(account), level(bucket)) {
        (Some(true), _) | (_, Some(true)) => Some(true),
        (Some(false), Some(false)) => Some(false),
        _ => None,
    }
}

/// Statements of a bucket policy that grant to anyone without a condition.
fn public_statements(doc: &PolicyDocument) -> Vec<String> {
    doc.statements
        .iter()
        .enumerate()
        .filter(|(_, s)| {
            s.effect == Effect::Allow
                && s.conditions.is_empty()
                && s.principal.as_ref().is_some_and(|p| p.any)
        })
        .map(|(i, s)| {
            s.sid
                .clone()
                .unwrap_or_else(|| format!("statement {}", i + 1))
        })
        .collect()
}

pub(crate) fn run(ctx: &mut Ctx<'_>) {
    let Some(aws) = ctx.snap.aws.as_ref() else {
        ctx.not_evaluated_all(
            &[PUBLIC, ACCOUNT_PAB, BUCKET_PAB],
            "no aws/ directory in the snapshot",
        );
        return;
    };
    let account = aws.account_id().unwrap_or_else(|| "unknown".into());
    let acct_pab = &aws.account_public_access_block;
    let acct_pab_path = aws.path("s3control-get-public-access-block.json");
    match acct_pab {
        Collected::Missing => {
            ctx.not_evaluated(ACCOUNT_PAB, None, format!("missing {acct_pab_path}"))
        }
        Collected::NotConfigured => ctx.finding(
            ACCOUNT_PAB,
            format!("arn:aws:s3:::account/{account}"),
            Some(format!("arn:aws:iam::{account}:root")),
            "the account has no S3 Block Public Access configuration",
            vec![(
                "off",
                json!([
                    "BlockPublicAcls",
                    "IgnorePublicAcls",
                    "BlockPublicPolicy",
                    "RestrictPublicBuckets"
                ]),
            )],
        ),
        Collected::Present(p) if !p.fully_on() => ctx.finding(
            ACCOUNT_PAB,
            format!("arn:aws:s3:::account/{account}"),
            Some(format!("arn:aws:iam::{account}:root")),
            format!(
                "account-level Block Public Access has {} off",
                p.off_settings().join(", ")
            ),
            vec![("off", json!(p.off_settings()))],
        ),
        Collected::Present(_) => {}
    }
    let buckets = match &aws.buckets {
        Collected::Present(b) => b,
        _ => {
            let reason = format!("missing {}", aws.path("s3api-list-buckets.json"));
            ctx.not_evaluated_all(&[PUBLIC, BUCKET_PAB], &reason);
            return;
        }
    };
    for b in buckets {
        bucket_public(ctx, b, acct_pab, &acct_pab_path);
        let bpath = aws.path(&format!("s3api/{}/get-public-access-block.json", b.name));
        let account_on = acct_pab.present().is_some_and(PublicAccessBlock::fully_on);
        if account_on {
            continue;
        }
        match &b.public_access_block {
            Collected::Missing => ctx.not_evaluated(BUCKET_PAB, Some(b.arn()), format!("missing {bpath}")),
            _ if !acct_pab.is_collected() => {
                ctx.not_evaluated(BUCKET_PAB, Some(b.arn()), format!("missing {acct_pab_path}"))
            }
            Collected::NotConfigured => ctx.finding(
                BUCKET_PAB,
                b.arn(),
                None,
                format!("bucket {} has no Block Public Access configuration and the account-level block is not fully on", b.name),
                vec![("off", json!(["BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"]))],
            ),
            Collected::Present(p) if !p.fully_on() => ctx.finding(
                BUCKET_PAB,
                b.arn(),
                None,
                format!("bucket {} has Block Public Access {} off and the account-level block is not fully on", b.name, p.off_settings().join(", ")),
                vec![("off", json!(p.off_settings()))],
            ),
            Collected::Present(_) => {}
        }
    }
}

fn bucket_public(
    ctx: &mut Ctx<'_>,
    b: &Bucket,
    acct_pab: &Collected<PublicAccessBlock>,
    acct_pab_path: &str,
) {
    let aws = ctx.snap.aws.as_ref().expect("checked by caller");
    let file = |f: &str| aws.path(&format!("s3api/{}/{f}", b.name));
    let mut unknown: Vec<String> = Vec::new();
    let mut via: Vec<&str> = Vec::new();
    let mut evidence = Vec::new();

    // Policy: AWS's own PolicyStatus first; our reading of the policy when
    // the status was not collected.
    let policy_public: Option<bool> = match (&b.policy_is_public, &b.policy) {
        (Collected::Present(p), _) => Some(*p),
        (Collected::NotConfigured, _) => Some(false),
        (Collected::Missing, Collected::Present(doc)) => Some(!public_statements(doc).is_empty()),
        (Collected::Missing, Collected::NotConfigured) => Some(false),
        (Collected::Missing, Collected::Missing) => None,
    };
    if let Collected::Present(doc) = &b.policy {
        let st = public_statements(doc);
        if !st.is_empty() {
            evidence.push(("public_statements", json!(st)));
        }
    }
    let restrict = effective(acct_pab, &b.public_access_block, |p| {
        p.restrict_public_buckets
    });
    match policy_public {
        None => unknown.push(format!(
            "missing {} and {}",
            file("get-bucket-policy-status.json"),
            file("get-bucket-policy.json")
        )),
        Some(true) => match restrict {
            Some(true) => {}
            Some(false) => via.push("policy"),
            None => unknown.push(format!(
                "public policy, but RestrictPublicBuckets unknown: missing {} or {acct_pab_path}",
                file("get-public-access-block.json")
            )),
        },
        Some(false) => {}
    }

    // ACL: public grants count unless ACLs are disabled (BucketOwnerEnforced)
    // or ignored (IgnorePublicAcls).
    match &b.acl {
        Collected::Missing => unknown.push(format!("missing {}", file("get-bucket-acl.json"))),
        Collected::NotConfigured => {}
        Collected::Present(grants) => {
            let public: Vec<String> = grants
                .iter()
                .filter(|g| g.grantee == ALL_USERS || g.grantee == AUTH_USERS)
                .map(|g| {
                    format!(
                        "{} {}",
                        g.grantee.rsplit('/').next().unwrap_or(""),
                        g.permission
                    )
                })
                .collect();
            if !public.is_empty() {
                let enforced = match &b.object_ownership {
                    Collected::Present(o) => Some(o == "BucketOwnerEnforced"),
                    Collected::NotConfigured => Some(false),
                    Collected::Missing => None,
                };
                let ignore = effective(acct_pab, &b.public_access_block, |p| p.ignore_public_acls);
                match (enforced, ignore) {
                    (Some(true), _) | (_, Some(true)) => {}
                    (Some(false), Some(false)) => {
                        via.push("acl");
                        evidence.push(("public_grants", json!(public)));
                    }
                    _ => unknown.push(format!(
                        "public ACL grants, but object ownership or IgnorePublicAcls unknown: missing {} or a public access block file",
                        file("get-bucket-ownership-controls.json")
                    )),
                }
            }
        }
    }
    if !via.is_empty() {
        evidence.push(("via", json!(via)));
        ctx.finding(
            PUBLIC,
            b.arn(),
            None,
            format!(
                "bucket {} is public through its {}",
                b.name,
                via.join(" and ")
            ),
            evidence,
        );
    } else if !unknown.is_empty() {
        ctx.not_evaluated(PUBLIC, Some(b.arn()), unknown.join("; "));
    }
}

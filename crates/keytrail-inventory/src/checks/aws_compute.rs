//! EC2 instance metadata (IMDSv1 on instances, account defaults) and
//! instances in the Organizations management account.

use super::Ctx;
use crate::snapshot::Collected;
use serde_json::json;

const IMDSV1: &str = "aws.ec2.imdsv1_allowed";
const DEFAULT: &str = "aws.ec2.imds_account_default";
const MGMT: &str = "aws.ec2.instances_in_management_account";

fn live(state: &str) -> bool {
    !matches!(state, "terminated" | "shutting-down")
}

pub(crate) fn run(ctx: &mut Ctx<'_>) {
    let Some(aws) = ctx.snap.aws.as_ref() else {
        ctx.not_evaluated_all(
            &[IMDSV1, DEFAULT, MGMT],
            "no aws/ directory in the snapshot",
        );
        return;
    };
    if aws.regions.is_empty() {
        let reason = format!("no region directories under {}", aws.path("regions/"));
        ctx.not_evaluated_all(&[IMDSV1, DEFAULT, MGMT], &reason);
        return;
    }
    let account = aws.account_id().unwrap_or_else(|| "unknown".into());
    let mut all_instances = Vec::new();
    let mut instances_complete = true;
    for region in &aws.regions {
        match &region.instances {
            Collected::Present(list) => {
                for i in list.iter().filter(|i| live(&i.state)) {
                    all_instances.push(i);
                    let tokens = i.http_tokens.as_deref().unwrap_or("");
                    let endpoint_off = i.http_endpoint.as_deref() == Some("disabled");
                    if tokens == "optional" && !endpoint_off {
                        ctx.finding(
                            IMDSV1,
                            i.arn(),
                            i.instance_profile_arn.clone(),
                            format!(
                                "instance {} in {} accepts IMDSv1 (HttpTokens: optional)",
                                i.id, region.name
                            ),
                            vec![
                                ("http_tokens", json!(tokens)),
                                ("http_endpoint", json!(i.http_endpoint)),
                                ("instance_profile", json!(i.instance_profile_arn)),
                                ("state", json!(i.state)),
                            ],
                        );
                    } else if tokens.is_empty() && !endpoint_off {
                        ctx.not_evaluated(
                            IMDSV1,
                            Some(i.arn()),
                            "instance has no MetadataOptions.HttpTokens",
                        );
                    }
                }
            }
            _ => {
                instances_complete = false;
                ctx.not_evaluated(
                    IMDSV1,
                    Some(format!("region {}", region.name)),
                    format!(
                        "missing {}",
                        aws.path(&format!(
                            "regions/{}/ec2-describe-instances.json",
                            region.name
                        ))
                    ),
                );
            }
        }
        match &region.metadata_defaults {
            Collected::Missing => ctx.not_evaluated(
                DEFAULT,
                Some(format!("region {}", region.name)),
                format!(
                    "missing {}",
                    aws.path(&format!(
                        "regions/{}/ec2-get-instance-metadata-defaults.json",
                        region.name
                    ))
                ),
            ),
            c => {
                let tokens = c.present().and_then(|d| d.http_tokens.clone());
                if tokens.as_deref() != Some("required") {
                    ctx.finding(
                        DEFAULT,
                        format!("arn:aws:ec2:{}:{account}:instance-metadata-defaults", region.name),
                        Some(format!("arn:aws:iam::{account}:root")),
                        format!(
                            "new instances in {} do not require IMDSv2 by default (account-level HttpTokens: {})",
                            region.name,
                            tokens.as_deref().unwrap_or("no preference")
                        ),
                        vec![("region", json!(region.name)), ("http_tokens", json!(tokens))],
                    );
                }
            }
        }
    }
    // Management account: needs the organization, the account id, and instances.
    match (&aws.organization, aws.caller_identity.present()) {
        (Collected::Missing, _) => ctx.not_evaluated(
            MGMT,
            None,
            format!(
                "missing {}",
                aws.path("organizations-describe-organization.json")
            ),
        ),
        (Collected::NotConfigured, _) => {}
        (Collected::Present(_), None) => ctx.not_evaluated(
            MGMT,
            None,
            format!("missing {}", aws.path("sts-get-caller-identity.json")),
        ),
        (Collected::Present(org), Some(me)) => {
            if org.master_account_id == me.account {
                if !all_instances.is_empty() {
                    let ids: Vec<String> = all_instances.iter().take(50).map(|i| i.arn()).collect();
                    ctx.finding(
                        MGMT,
                        format!("arn:aws:iam::{}:root", me.account),
                        None,
                        format!(
                            "{} EC2 instance(s) run in the Organizations management account {}",
                            all_instances.len(),
                            me.account
                        ),
                        vec![
                            ("organization", json!(org.id)),
                            ("instance_count", json!(all_instances.len())),
                            ("instances", json!(ids)),
                        ],
                    );
                } else if !instances_complete {
                    ctx.not_evaluated(MGMT, None, "instance listings missing for some regions");
                }
            }
        }
    }
}

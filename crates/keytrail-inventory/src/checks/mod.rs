//! The posture checks: one registry table ([`CHECKS`]) with each check's
//! stable id, severity, inputs, rationale and remediation, and the code that
//! evaluates them over a [`Snapshot`] into a [`Report`].
//!
//! A check whose input is missing is reported in [`Report::not_evaluated`]
//! (with the file it needed), never silently passed.

mod aws_compute;
mod aws_credentials;
mod aws_machine;
mod aws_roles;
mod aws_secrets;
mod aws_storage;
mod azure;
mod gcp;
mod kubernetes;

pub(crate) use aws_credentials::{KeyView, keys as access_keys};
pub(crate) use azure::app_id as entra_app_id;

use crate::Timestamp;
use crate::facts::Facts;
use crate::owners::{Environment, Owners};
use crate::snapshot::Snapshot;
use keytrail_types::Severity;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// Static description of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckInfo {
    /// Stable id, e.g. `aws.iam.access_key_age`.
    pub id: &'static str,
    /// One-line title.
    pub title: &'static str,
    /// Severity of its findings.
    pub severity: Severity,
    /// Snapshot files it reads (layout-relative).
    pub inputs: &'static [&'static str],
    /// Why it matters.
    pub rationale: &'static str,
    /// How to fix it.
    pub remediation: &'static str,
}

macro_rules! check {
    ($id:literal, $sev:ident, $title:literal, [$($input:literal),*], $why:literal, $fix:literal) => {
        CheckInfo {
            id: $id,
            title: $title,
            severity: Severity::$sev,
            inputs: &[$($input),*],
            rationale: $why,
            remediation: $fix,
        }
    };
}

/// Every check, in report order. docs/posture-checks.md documents each.
pub const CHECKS: &[CheckInfo] = &[
    check!(
        "aws.iam.access_key_age",
        High,
        "IAM access key older than 365 days",
        [
            "aws/iam-list-access-keys/*.json",
            "aws/iam-credential-report.csv"
        ],
        "A long-lived static key has had a year to leak into repositories, laptops, CI logs and images; every copy stays valid until the key is rotated.",
        "Rotate the key (create a new one, deploy it, deactivate then delete the old one), or better replace it with role-based short-lived credentials (IAM roles, OIDC federation, IAM Roles Anywhere)."
    ),
    check!(
        "aws.iam.access_key_unused",
        Medium,
        "Active IAM access key unused for 90 days or more",
        [
            "aws/iam-list-access-keys/*.json",
            "aws/iam-get-access-key-last-used/*.json",
            "aws/iam-credential-report.csv"
        ],
        "An active key nobody uses is pure risk: it can still be leaked and abused, and its abuse would not disrupt anyone who would notice. A key never used and older than 90 days counts.",
        "Deactivate the key, wait for complaints, then delete it."
    ),
    check!(
        "aws.iam.two_active_keys",
        Medium,
        "IAM user with two active access keys",
        [
            "aws/iam-list-access-keys/*.json",
            "aws/iam-credential-report.csv"
        ],
        "Two active keys usually means a rotation that never finished: the old key is still valid wherever it was copied.",
        "Find which key is in use (last-used data), deactivate the other, then delete it."
    ),
    check!(
        "aws.iam.console_user_without_mfa",
        High,
        "IAM user with console password and no MFA",
        ["aws/iam-credential-report.csv"],
        "A console password without MFA is one phishing page or password reuse away from account access.",
        "Enforce MFA for the user (virtual or hardware device, or passkey) or remove the login profile if the user is a machine identity."
    ),
    check!(
        "aws.iam.root_access_key",
        Critical,
        "Root user has an active access key",
        ["aws/iam-credential-report.csv"],
        "Root access keys cannot be restricted by IAM policies or SCPs; a leak is a full account compromise.",
        "Delete the root access keys; use IAM roles for automation."
    ),
    check!(
        "gcp.iam.service_account_key_age",
        High,
        "GCP user-managed service-account key older than 365 days",
        ["gcp/<project>/iam-service-accounts-keys-list/*.json"],
        "User-managed service-account keys are long-lived bearer credentials (the default expiry is year 9999); an old key has had a long time to leak.",
        "Rotate or delete the key; prefer Workload Identity Federation or attached service accounts, and set the iam.serviceAccountKeyExpiryHours / disableServiceAccountKeyCreation organization policies."
    ),
    check!(
        "azure.entra.app_credential_age",
        High,
        "Entra ID application secret or certificate older than 365 days",
        ["azure/graph-applications.json"],
        "An application client secret or certificate that has existed for over a year has had a long time to leak and is likely not rotated.",
        "Add a new credential, roll it out, and remove the old one; prefer managed identities or workload identity federation."
    ),
    check!(
        "azure.entra.app_credential_long_validity",
        Medium,
        "Entra ID application secret or certificate valid for more than 365 days",
        ["azure/graph-applications.json"],
        "A credential valid for more than a year defeats rotation: Microsoft recommends lifetimes well under 12 months.",
        "Replace it with a credential valid for at most 12 months and enforce an app management policy limiting credential lifetime."
    ),
    check!(
        "aws.s3.bucket_public",
        Critical,
        "S3 bucket public through its policy or ACL",
        [
            "aws/s3api-list-buckets.json",
            "aws/s3api/<bucket>/get-bucket-policy-status.json",
            "aws/s3api/<bucket>/get-bucket-policy.json",
            "aws/s3api/<bucket>/get-bucket-acl.json",
            "aws/s3api/<bucket>/get-bucket-ownership-controls.json",
            "aws/s3api/<bucket>/get-public-access-block.json",
            "aws/s3control-get-public-access-block.json"
        ],
        "A bucket readable or writable by anyone leaks data or hosts attacker content. ACL grants are ignored when object ownership is BucketOwnerEnforced or IgnorePublicAcls is on; policy grants when RestrictPublicBuckets is on.",
        "Remove the public statement or grant, set object ownership to BucketOwnerEnforced, and turn on S3 Block Public Access. Serve public content through CloudFront with origin access control."
    ),
    check!(
        "aws.s3.account_public_access_block",
        High,
        "Account-level S3 Block Public Access not fully on",
        ["aws/s3control-get-public-access-block.json"],
        "The account-level block is the guard rail that keeps any new or changed bucket from becoming public.",
        "aws s3control put-public-access-block --account-id ACCOUNT --public-access-block-configuration BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true"
    ),
    check!(
        "aws.s3.bucket_public_access_block",
        Medium,
        "Bucket-level S3 Block Public Access not fully on (and the account-level one is not either)",
        [
            "aws/s3api/<bucket>/get-public-access-block.json",
            "aws/s3control-get-public-access-block.json"
        ],
        "Without a block at either level, one policy or ACL change makes the bucket public.",
        "aws s3api put-public-access-block --bucket BUCKET --public-access-block-configuration BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true (or turn it on for the account)."
    ),
    check!(
        "azure.storage.container_anonymous_access",
        Critical,
        "Azure blob container allows anonymous access",
        [
            "azure/storage-account-list.json",
            "azure/storage-container-list/<account>.json"
        ],
        "A container with public access level `blob` or `container` serves its blobs to anyone on the internet, unless the storage account disallows blob public access.",
        "Set the container's public access level to private and set allowBlobPublicAccess=false on the storage account."
    ),
    check!(
        "aws.ec2.imdsv1_allowed",
        High,
        "EC2 instance allows IMDSv1",
        ["aws/regions/<region>/ec2-describe-instances.json"],
        "IMDSv1 answers plain GET requests, so an SSRF in any application on the instance hands out the instance role's credentials.",
        "aws ec2 modify-instance-metadata-options --instance-id ID --http-tokens required --http-endpoint enabled (after checking the SDKs in use support IMDSv2)."
    ),
    check!(
        "aws.ec2.imds_account_default",
        Medium,
        "Account default does not enforce IMDSv2 for new instances",
        ["aws/regions/<region>/ec2-get-instance-metadata-defaults.json"],
        "Without an account-level default, every new instance launched without explicit metadata options gets IMDSv1.",
        "aws ec2 modify-instance-metadata-defaults --region REGION --http-tokens required"
    ),
    check!(
        "aws.ec2.instances_in_management_account",
        High,
        "EC2 instances run in the Organizations management account",
        [
            "aws/organizations-describe-organization.json",
            "aws/sts-get-caller-identity.json",
            "aws/regions/<region>/ec2-describe-instances.json"
        ],
        "The management account is not restricted by SCPs and can act on every member account; a workload compromised there compromises the organization.",
        "Move workloads to member accounts; keep the management account for organization administration only."
    ),
    check!(
        "aws.eks.public_endpoint",
        High,
        "EKS API endpoint public to 0.0.0.0/0",
        [
            "aws/regions/<region>/eks-list-clusters.json",
            "aws/regions/<region>/eks-describe-cluster/<cluster>.json"
        ],
        "A Kubernetes API open to the internet exposes the cluster to credential stuffing, leaked kubeconfigs and API-server vulnerabilities.",
        "Disable public endpoint access or restrict publicAccessCidrs to known networks; use the private endpoint."
    ),
    check!(
        "aws.eks.audit_logging_disabled",
        Medium,
        "EKS audit logging off",
        ["aws/regions/<region>/eks-describe-cluster/<cluster>.json"],
        "Without audit logs there is no record of who did what in the cluster (every logging entry is read: audit may sit in any of them).",
        "aws eks update-cluster-config --name CLUSTER --logging '{\"clusterLogging\":[{\"types\":[\"audit\"],\"enabled\":true}]}'"
    ),
    check!(
        "aws.eks.node_role_risky",
        High,
        "EKS node role with risky policies",
        [
            "aws/regions/<region>/eks-describe-nodegroup/<cluster>/*.json",
            "aws/iam-get-account-authorization-details.json"
        ],
        "Every pod on a node can reach the node role's credentials through the instance metadata service; admin, privilege-escalation, read-all-data or wildcard-write grants there are granted to every pod.",
        "Keep node roles to AmazonEKSWorkerNodePolicy, AmazonEKS_CNI_Policy (or IRSA for the CNI) and ECR read-only; give pods their own permissions with IRSA or EKS Pod Identity."
    ),
    check!(
        "azure.aks.public_endpoint",
        High,
        "AKS API server public to 0.0.0.0/0",
        ["azure/aks-list.json"],
        "A public API server without authorized IP ranges is reachable by anyone on the internet.",
        "Enable a private cluster or set apiServerAccessProfile.authorizedIpRanges to known networks."
    ),
    check!(
        "gcp.gke.public_endpoint",
        High,
        "GKE control plane public to 0.0.0.0/0",
        ["gcp/<project>/container-clusters-list.json"],
        "A public control-plane endpoint without authorized networks (or with 0.0.0.0/0) is reachable by anyone on the internet.",
        "Enable authorized networks with specific CIDRs, or use a private endpoint."
    ),
    check!(
        "gcp.gke.default_compute_service_account",
        Medium,
        "GKE nodes use the Compute Engine default service account",
        ["gcp/<project>/container-clusters-list.json"],
        "The default compute service account often holds Editor on the project; every pod that reaches the metadata server inherits it.",
        "Create a minimal node service account (roles/container.defaultNodeServiceAccount) and use Workload Identity for pods."
    ),
    check!(
        "aws.iam.third_party_role_without_external_id",
        High,
        "Role trusts an external account without sts:ExternalId",
        ["aws/iam-get-account-authorization-details.json"],
        "A role that a vendor assumes without an external id is open to the confused-deputy problem: any other customer of the vendor can make the vendor assume your role.",
        "Add a Condition {\"StringEquals\": {\"sts:ExternalId\": \"<value from the vendor>\"}} to the trust statement."
    ),
    check!(
        "aws.iam.trust_unknown_external_account",
        Medium,
        "Role trusts an AWS account that is neither this account, the organization, nor a known vendor",
        ["aws/iam-get-account-authorization-details.json"],
        "Unknown external trust is how attackers persist (a backdoor role) and how forgotten integrations linger.",
        "Confirm who owns the account; remove the trust if nobody does. Record known partners in the owners file."
    ),
    check!(
        "aws.iam.third_party_role_overprivileged",
        High,
        "Role assumable by a third party has admin or broad write access",
        ["aws/iam-get-account-authorization-details.json"],
        "A vendor compromise becomes your compromise when the vendor's role can change anything.",
        "Give vendor roles the read-only or narrowly scoped policies their documentation asks for."
    ),
    check!(
        "aws.iam.workload_admin",
        Critical,
        "Workload role (EC2, Lambda, ECS) with AdministratorAccess or * on *",
        ["aws/iam-get-account-authorization-details.json"],
        "Any code execution in the workload (SSRF, RCE, dependency compromise) becomes full account control.",
        "Replace the policy with one listing the actions and resources the workload uses (IAM Access Analyzer policy generation helps)."
    ),
    check!(
        "aws.iam.workload_privilege_escalation",
        High,
        "Workload role can escalate privileges",
        ["aws/iam-get-account-authorization-details.json"],
        "The role's permissions combine into a known privilege-escalation path (pathfinding.cloud), so compromising the workload yields more than its own rights.",
        "Remove the permissions of the path or scope them to specific resources (e.g. iam:PassRole to named roles with iam:PassedToService)."
    ),
    check!(
        "aws.iam.workload_ssm_all_instances",
        High,
        "Workload role can run commands on every instance (ssm:SendCommand/StartSession)",
        ["aws/iam-get-account-authorization-details.json"],
        "SSM command execution on all instances is lateral movement to the whole fleet and to every instance role.",
        "Scope ssm:SendCommand/StartSession to specific instances or tags (ssm:resourceTag) and documents."
    ),
    check!(
        "aws.iam.workload_s3_read_all",
        Medium,
        "Workload role can read every S3 bucket",
        ["aws/iam-get-account-authorization-details.json"],
        "Read access to all buckets turns a compromised workload into a data breach of everything stored in S3.",
        "Scope s3:GetObject to the buckets and prefixes the workload needs."
    ),
    check!(
        "aws.iam.machine_identity_admin",
        Critical,
        "CI, service or cross-account role, or user with access keys, with AdministratorAccess or * on *",
        [
            "aws/iam-get-account-authorization-details.json",
            "aws/iam-list-access-keys/<user>.json"
        ],
        "A machine credential that reaches everything: a leaked CI token, a compromised pipeline or a leaked access key becomes full account control.",
        "Give the identity a policy listing the actions and resources it uses; for CI, one role per pipeline scoped by the OIDC subject (repository, branch, environment)."
    ),
    check!(
        "aws.iam.machine_identity_privilege_escalation",
        High,
        "CI, service or cross-account role, or user with access keys, can escalate privileges",
        [
            "aws/iam-get-account-authorization-details.json",
            "aws/iam-list-access-keys/<user>.json"
        ],
        "The identity's permissions combine into a known privilege-escalation path (pathfinding.cloud, e.g. iam:PassRole on * with ec2:RunInstances), so whoever holds its credential gets more than its own rights.",
        "Remove the permissions of the path or scope them to specific resources (iam:PassRole to named roles with iam:PassedToService)."
    ),
    check!(
        "aws.iam.machine_role_unused",
        Low,
        "Machine role not used for 90 days, or never used",
        ["aws/iam-get-account-authorization-details.json"],
        "A role nobody uses still carries its permissions and trust: it is attack surface with no business value, and the cheapest identity to remove.",
        "Confirm with the owner, then delete the role (or remove its trust policy's principals); keep break-glass roles trusted by people, not machines."
    ),
    check!(
        "aws.iam.third_party_role_data_read",
        Medium,
        "Role assumable by a third party can read data (objects, secrets, parameters, tables, KMS decrypt) in every resource",
        ["aws/iam-get-account-authorization-details.json"],
        "Metadata read (SecurityAudit, ViewOnlyAccess) lets a vendor see how the account is built; data read (ReadOnlyAccess, s3:GetObject on *) hands it the data itself, so a breach at the vendor becomes a breach of your data.",
        "Give the vendor the metadata-only policy its documentation asks for (SecurityAudit or ViewOnlyAccess), or scope data actions to the resources it must read."
    ),
    check!(
        "aws.secretsmanager.rotation_disabled",
        Medium,
        "Secrets Manager secret without automatic rotation",
        ["aws/regions/<region>/secretsmanager-list-secrets.json"],
        "A stored machine credential that never rotates stays valid for as long as any copy of it (a log, a laptop, a former employee) exists.",
        "Turn on rotation (aws secretsmanager rotate-secret --rotation-lambda-arn … --rotation-rules AutomaticallyAfterDays=30), or use the managed rotation of the owning service (RDS, Redshift)."
    ),
    check!(
        "aws.secretsmanager.rotation_overdue",
        Medium,
        "Secrets Manager rotation configured but not happening",
        ["aws/regions/<region>/secretsmanager-list-secrets.json"],
        "Rotation that is switched on but fails (a broken rotation function, a lost network path) gives the comfort of rotation without its protection.",
        "Read the rotation function's logs, fix it, then run aws secretsmanager rotate-secret --secret-id <name> and check LastRotatedDate."
    ),
    check!(
        "aws.secretsmanager.secret_unused",
        Low,
        "Secrets Manager secret not read for 90 days, or never read",
        ["aws/regions/<region>/secretsmanager-list-secrets.json"],
        "A credential nobody reads is still valid where it grants access: attack surface with no business value.",
        "Confirm with the owner, revoke the credential at its provider, then delete the secret (it stays recoverable during the deletion window)."
    ),
    check!(
        "aws.ssm.secret_in_plaintext_parameter",
        High,
        "SSM parameter named like a credential stored as plain String",
        ["aws/regions/<region>/ssm-describe-parameters.json"],
        "A String parameter is returned in clear to anyone with ssm:GetParameter* (ReadOnlyAccess includes it), without KMS, and shows in the console: a credential there is readable by every reader of the account.",
        "Re-create it as SecureString (aws ssm put-parameter --type SecureString --overwrite …) under a KMS key whose policy names the readers, then rotate the credential."
    ),
    check!(
        "aws.ssm.secure_parameter_not_rotated",
        Low,
        "SecureString parameter named like a credential unchanged for over a year",
        ["aws/regions/<region>/ssm-describe-parameters.json"],
        "Parameter Store has no rotation: a credential kept there changes only when someone changes it.",
        "Rotate the credential at its provider and update the parameter, or move it to Secrets Manager with rotation."
    ),
    check!(
        "gcp.iam.service_account_key_unused",
        Medium,
        "GCP user-managed service-account key not used for 90 days, or never used",
        [
            "gcp/<project>/iam-service-accounts-keys-list/<sa-email>.json",
            "gcp/<project>/policy-intelligence-query-activity-keys.json"
        ],
        "A key file nobody uses is still a working credential wherever a copy of it lies (a laptop, a repository, an image), with nothing in the logs to say it is missed when it is deleted.",
        "Disable the key (gcloud iam service-accounts keys disable KEY_ID --iam-account SA), wait for complaints, then delete it; prefer Workload Identity Federation or attached service accounts to key files."
    ),
    check!(
        "gcp.compute.default_service_account_full_scope",
        High,
        "Compute instance runs as the default compute service account with the cloud-platform scope",
        ["gcp/<project>/compute-instances-list.json"],
        "The default compute service account usually holds Editor; with the cloud-platform scope, any code on the instance (SSRF to the metadata server included) acts as Editor on the project.",
        "Give the instance a dedicated service account with the roles it needs (gcloud compute instances set-service-account INSTANCE --service-account SA --scopes cloud-platform), or at least narrow its scopes."
    ),
    check!(
        "azure.rbac.service_principal_privileged",
        High,
        "Service principal or managed identity holds Owner, Contributor or an access-granting role on a subscription or management group",
        [
            "azure/role-assignment-list.json",
            "azure/graph-service-principals.json"
        ],
        "An application's secret or certificate, or code running with a managed identity, then controls every resource of the subscription (and with Owner or User Access Administrator, who else may).",
        "Assign the narrowest built-in role at the resource group or resource the workload uses; keep Owner and User Access Administrator for people through Privileged Identity Management."
    ),
    check!(
        "gcp.iam.default_compute_sa_editor",
        High,
        "GCP default compute service account holds Editor",
        ["gcp/<project>/projects-get-iam-policy.json"],
        "Every VM and GKE node using the default compute service account gets project-wide write access.",
        "Remove roles/editor from the default compute service account (or set the iam.automaticIamGrantsForDefaultServiceAccounts organization policy) and grant minimal roles."
    ),
];

/// Looks a check up by id.
pub fn check_info(id: &str) -> Option<&'static CheckInfo> {
    CHECKS.iter().find(|c| c.id == id)
}

/// One failed check on one resource.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PostureFinding {
    /// Check id.
    pub check: String,
    /// Check title.
    pub title: String,
    /// Severity.
    pub severity: Severity,
    /// Cloud provider: `aws`, `gcp`, `azure`.
    pub provider: String,
    /// The resource: an ARN, GCP resource name or Azure/Entra id.
    pub resource: String,
    /// The identity the finding belongs to (for grouping); often the resource.
    pub identity: String,
    /// The fact that failed, in one sentence.
    pub fact: String,
    /// Structured evidence (field names depend on the check; documented in docs/posture-checks.md).
    pub evidence: BTreeMap<String, Value>,
    /// How to fix it.
    pub remediation: String,
    /// Owner from the owners file, when one is given and matches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Environment from the owners file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<Environment>,
}

/// A check (or one resource of it) that could not be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotEvaluated {
    /// Check id.
    pub check: String,
    /// The resource concerned, or `None` for the whole check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// Why: usually the missing or unreadable file.
    pub reason: String,
}

/// The result of [`check_all`].
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    /// Findings, grouped by check in registry order.
    pub findings: Vec<PostureFinding>,
    /// Checks or resources that were not evaluated.
    pub not_evaluated: Vec<NotEvaluated>,
}

impl Report {
    /// Findings of one check.
    pub fn of(&self, check: &str) -> impl Iterator<Item = &PostureFinding> {
        let check = check.to_string();
        self.findings.iter().filter(move |f| f.check == check)
    }

    /// Whether `check` was (at least partly) not evaluated.
    pub fn is_not_evaluated(&self, check: &str) -> bool {
        self.not_evaluated.iter().any(|n| n.check == check)
    }
}

/// Evaluation context shared by the check modules.
pub(crate) struct Ctx<'a> {
    pub snap: &'a Snapshot,
    pub now: Timestamp,
    pub facts: &'a Facts,
    pub report: Report,
}

impl Ctx<'_> {
    pub fn finding(
        &mut self,
        check: &'static str,
        resource: impl Into<String>,
        identity: Option<String>,
        fact: impl Into<String>,
        evidence: Vec<(&str, Value)>,
    ) {
        let info = check_info(check).expect("registered check");
        let resource = resource.into();
        self.report.findings.push(PostureFinding {
            check: check.to_string(),
            title: info.title.to_string(),
            severity: info.severity,
            provider: check.split('.').next().unwrap_or("").to_string(),
            identity: identity.unwrap_or_else(|| resource.clone()),
            resource,
            fact: fact.into(),
            evidence: evidence
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            remediation: info.remediation.to_string(),
            owner: None,
            environment: None,
        });
    }

    pub fn not_evaluated(
        &mut self,
        check: &'static str,
        resource: Option<String>,
        reason: impl Into<String>,
    ) {
        debug_assert!(check_info(check).is_some(), "unregistered check {check}");
        self.report.not_evaluated.push(NotEvaluated {
            check: check.to_string(),
            resource,
            reason: reason.into(),
        });
    }

    /// Marks every check in `checks` as not evaluated for `reason`.
    pub fn not_evaluated_all(&mut self, checks: &[&'static str], reason: &str) {
        for c in checks {
            self.not_evaluated(c, None, reason);
        }
    }

    pub fn days_since(&self, t: Timestamp) -> i64 {
        (self.now - t).num_days()
    }
}

/// The AWS part of the snapshot and its authorization details, or, when
/// either is missing, every check in `checks` marked not evaluated with the
/// reason (the prologue of the IAM checks).
pub(crate) fn aws_authorization<'a>(
    ctx: &mut Ctx<'a>,
    checks: &[&'static str],
) -> Option<(
    &'a crate::snapshot::aws::AwsSnapshot,
    &'a crate::snapshot::aws::AuthorizationDetails,
)> {
    let snap = ctx.snap;
    let Some(aws) = snap.aws.as_ref() else {
        ctx.not_evaluated_all(checks, "no aws/ directory in the snapshot");
        return None;
    };
    let Some(auth) = aws.authorization.present() else {
        let reason = format!(
            "missing {}",
            aws.path("iam-get-account-authorization-details.json")
        );
        ctx.not_evaluated_all(checks, &reason);
        return None;
    };
    Some((aws, auth))
}

/// Runs every check with the embedded facts.
pub fn check_all(snapshot: &Snapshot, owners: Option<&Owners>, now: Timestamp) -> Report {
    check_all_with(snapshot, owners, now, Facts::builtin())
}

/// Runs every check with the given facts (vendor list, escalation paths).
pub fn check_all_with(
    snapshot: &Snapshot,
    owners: Option<&Owners>,
    now: Timestamp,
    facts: &Facts,
) -> Report {
    let mut ctx = Ctx {
        snap: snapshot,
        now,
        facts,
        report: Report::default(),
    };
    aws_credentials::run(&mut ctx);
    gcp::run_keys(&mut ctx);
    azure::run_apps(&mut ctx);
    aws_storage::run(&mut ctx);
    azure::run_storage(&mut ctx);
    azure::run_rbac(&mut ctx);
    aws_compute::run(&mut ctx);
    kubernetes::run(&mut ctx);
    aws_roles::run(&mut ctx);
    aws_machine::run(&mut ctx);
    aws_secrets::run(&mut ctx);
    gcp::run_iam(&mut ctx);
    let mut report = ctx.report;
    // Registry order, then resource: stable output.
    let order: HashMap<&str, usize> = CHECKS.iter().enumerate().map(|(i, c)| (c.id, i)).collect();
    report.findings.sort_by(|a, b| {
        order[a.check.as_str()]
            .cmp(&order[b.check.as_str()])
            .then_with(|| a.resource.cmp(&b.resource))
    });
    if let Some(owners) = owners {
        let tags = identity_tags(snapshot);
        for f in &mut report.findings {
            let t = tags
                .get(f.identity.as_str())
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            if let Some(o) = owners.lookup(&f.identity, t) {
                f.owner = Some(o.owner);
                f.environment = o.environment;
            }
        }
    }
    report
}

/// Identity id → tags, for owner lookups by tag.
pub(crate) fn identity_tags(snapshot: &Snapshot) -> HashMap<&str, Vec<(String, String)>> {
    let mut m = HashMap::new();
    if let Some(auth) = snapshot
        .aws
        .as_ref()
        .and_then(|a| a.authorization.present())
    {
        for u in &auth.users {
            m.insert(
                u.arn.as_str(),
                u.tags
                    .iter()
                    .map(|t| (t.key.clone(), t.value.clone()))
                    .collect(),
            );
        }
        for r in &auth.roles {
            m.insert(
                r.arn.as_str(),
                r.tags
                    .iter()
                    .map(|t| (t.key.clone(), t.value.clone()))
                    .collect(),
            );
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_ids_are_unique_and_well_formed() {
        let mut ids: Vec<&str> = CHECKS.iter().map(|c| c.id).collect();
        ids.sort();
        let n = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), n);
        for c in CHECKS {
            assert!(
                c.id.split('.').count() == 3
                    && c.id.chars().all(|ch| ch.is_ascii_lowercase()
                        || ch == '.'
                        || ch == '_'
                        || ch.is_ascii_digit()),
                "{}",
                c.id
            );
            assert!(!c.rationale.is_empty() && !c.remediation.is_empty());
        }
    }

    #[test]
    fn every_check_is_documented() {
        let doc = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/posture-checks.md"
        ))
        .expect("docs/posture-checks.md");
        for c in CHECKS {
            assert!(
                doc.contains(&format!("`{}`", c.id)),
                "{} undocumented",
                c.id
            );
        }
    }
}

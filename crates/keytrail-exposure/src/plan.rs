//! Fewer static secrets: for each long-lived credential, the short-lived
//! replacement that fits how it is actually used, and the count of long-lived
//! keys to track over time.
//!
//! How a key is used comes from its CloudTrail calls (user agent and source
//! address, see [`crate::usage::Hints`]) and from where it leaked (a CI file):
//! GitHub Actions or GitLab CI → OIDC federation with a role (and the trust
//! policy to create); calls from private EC2 addresses → an instance profile;
//! EKS → IRSA or EKS Pod Identity; Lambda and ECS → their execution or task role;
//! a GitHub personal access token → a GitHub App.

use serde::Serialize;
use serde_json::json;

use crate::leaks::{CredentialKind, Leak};
use crate::usage::Tracked;

/// One step of the plan.
#[derive(Debug, Clone, Serialize)]
pub struct PlanItem {
    /// The credential (access key id, or fingerprint).
    pub credential_id: String,
    /// `aws_access_key`, `github_pat`.
    pub credential: CredentialKind,
    /// The identity it belongs to, when known.
    pub identity: Option<String>,
    /// Whether the key leaked.
    pub leaked: bool,
    /// How it is used: the markers seen (`github-actions`, `gitlab-ci`,
    /// `ec2-private`, `eks`, `lambda`, `ecs`, `console`, `public-address`) and
    /// `unused` when no call was seen.
    pub used_by: Vec<String>,
    /// The replacement: `github-oidc-role`, `gitlab-oidc-role`,
    /// `ec2-instance-profile`, `eks-pod-identity`, `lambda-execution-role`,
    /// `ecs-task-role`, `github-app`, `delete-unused-key`, `iam-roles-anywhere`;
    /// for Google Cloud service-account keys `gcp-workload-identity-github`,
    /// `gcp-workload-identity-gitlab`, `gcp-attached-service-account`,
    /// `gcp-workload-identity-federation`; for Entra ID client secrets
    /// `azure-federated-credential-github`, `azure-federated-credential-gitlab`,
    /// `azure-managed-identity`.
    pub replacement: String,
    /// What to do, in one paragraph.
    pub how: String,
    /// The trust policy of the role to create (for AWS replacements).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trust_policy: Option<serde_json::Value>,
}

/// The count of long-lived credentials.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LongLivedCount {
    /// Long-lived AWS access keys in the snapshot (active).
    pub aws_access_keys_active: u64,
    /// Long-lived AWS access keys in the snapshot (inactive).
    pub aws_access_keys_inactive: u64,
    /// Leaked long-lived AWS keys.
    pub aws_access_keys_leaked: u64,
    /// Leaked Google Cloud service-account keys.
    pub gcp_service_account_keys_leaked: u64,
    /// Leaked Entra ID client secrets.
    pub azure_client_secrets_leaked: u64,
    /// Leaked GitHub personal access tokens.
    pub github_pats_leaked: u64,
    /// Other leaked long-lived credentials.
    pub other_leaked: u64,
    /// Total of the snapshot's keys and the leaked credentials not in it.
    pub total: u64,
}

/// The whole plan.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Plan {
    /// When the count was taken (RFC 3339): track `long_lived` over time.
    pub as_of: String,
    /// The count.
    pub long_lived: LongLivedCount,
    /// One item per long-lived credential.
    pub items: Vec<PlanItem>,
}

/// Builds the plan.
pub fn build(
    leaks: &[Leak],
    tracked: &[Tracked],
    snapshot_keys: &[(String, String, bool)],
    account: Option<&str>,
    as_of: String,
) -> Plan {
    let mut plan = Plan {
        as_of,
        ..Plan::default()
    };
    let acct = account.unwrap_or("ACCOUNT_ID");
    for (_, _, active) in snapshot_keys {
        if *active {
            plan.long_lived.aws_access_keys_active += 1;
        } else {
            plan.long_lived.aws_access_keys_inactive += 1;
        }
    }
    plan.long_lived.total = snapshot_keys.len() as u64;
    let mut seen: Vec<&str> = Vec::new();
    for l in leaks {
        let in_snapshot = snapshot_keys.iter().any(|(k, _, _)| *k == l.credential_id);
        match l.kind {
            CredentialKind::AwsAccessKey => plan.long_lived.aws_access_keys_leaked += 1,
            CredentialKind::GithubPat => plan.long_lived.github_pats_leaked += 1,
            CredentialKind::GcpServiceAccountKey => {
                plan.long_lived.gcp_service_account_keys_leaked += 1
            }
            CredentialKind::AzureClientSecret => plan.long_lived.azure_client_secrets_leaked += 1,
            CredentialKind::Other => plan.long_lived.other_leaked += 1,
            CredentialKind::AwsSessionKey => continue,
        }
        if !in_snapshot {
            plan.long_lived.total += 1;
        }
        seen.push(&l.credential_id);
        let t = tracked.iter().find(|t| t.key == l.credential_id);
        let identity = snapshot_keys
            .iter()
            .find(|(k, _, _)| *k == l.credential_id)
            .map(|(_, u, _)| u.clone())
            .or_else(|| t.and_then(|t| t.usage.arn.clone()))
            .or_else(|| l.principal.clone());
        plan.items.push(item(
            l.credential_id.clone(),
            l.kind,
            identity,
            true,
            t,
            Some(l),
            acct,
        ));
    }
    for (k, user, active) in snapshot_keys {
        if seen.contains(&k.as_str()) || !active {
            continue;
        }
        let t = tracked.iter().find(|t| &t.key == k);
        plan.items.push(item(
            k.clone(),
            CredentialKind::AwsAccessKey,
            Some(user.clone()),
            false,
            t,
            None,
            acct,
        ));
    }
    plan
}

fn item(
    id: String,
    kind: CredentialKind,
    identity: Option<String>,
    leaked: bool,
    t: Option<&Tracked>,
    leak: Option<&Leak>,
    acct: &str,
) -> PlanItem {
    let mut used_by: Vec<String> = t
        .map(|t| {
            let mut m = t.usage.hints.markers.clone();
            for s in &t.sessions {
                m.extend(s.usage.hints.markers.iter());
            }
            m.into_iter().map(String::from).collect()
        })
        .unwrap_or_default();
    // Where it leaked says how it is used too: a CI file.
    let mut repo: Option<String> = None;
    if let Some(l) = leak {
        for p in &l.leaked_where {
            if p.path.contains(".github/workflows/")
                && !used_by.iter().any(|u| u == "github-actions")
            {
                used_by.push("github-actions".into());
            }
            if p.path.ends_with(".gitlab-ci.yml") && !used_by.iter().any(|u| u == "gitlab-ci") {
                used_by.push("gitlab-ci".into());
            }
            if repo.is_none() {
                repo = p.repository.clone();
            }
        }
    }
    let calls = t.map_or(0, |t| t.usage.uses_before + t.usage.uses_after);
    if calls == 0 && kind != CredentialKind::GithubPat {
        used_by.push("unused".into());
    }
    used_by.sort();
    used_by.dedup();
    let has = |m: &str| used_by.iter().any(|u| u == m);
    let repo_name = repo
        .as_deref()
        .map(|r| {
            let r = r.trim_end_matches('/').trim_end_matches(".git");
            let mut parts = r.rsplit(['/', ':']);
            let name = parts.next().unwrap_or("REPO");
            let owner = parts.next().unwrap_or("OWNER");
            format!("{owner}/{name}")
        })
        .unwrap_or_else(|| "OWNER/REPO".into());
    let (replacement, how, trust) = if kind == CredentialKind::GithubPat {
        (
            "github-app",
            "Replace the personal access token with a GitHub App installed on the repositories the automation needs, with only the permissions it uses; the automation mints one-hour installation tokens (actions/create-github-app-token in workflows). Then revoke the token.".to_string(),
            None,
        )
    } else if kind == CredentialKind::GcpServiceAccountKey {
        gcp_replacement(&used_by, &repo_name, identity.as_deref())
    } else if kind == CredentialKind::AzureClientSecret {
        azure_replacement(
            &used_by,
            &repo_name,
            leak.and_then(|l| l.principal.as_deref()),
        )
    } else if kind == CredentialKind::Other {
        (
            "rotate-and-vault",
            "No short-lived alternative is known to keytrail for this credential: rotate it at its provider and move it to a secrets manager read at run time.".to_string(),
            None,
        )
    } else if has("github-actions") {
        (
            "github-oidc-role",
            format!(
                "Create the IAM OIDC provider token.actions.githubusercontent.com (once per account), a role with this trust policy and the key's permissions, and use aws-actions/configure-aws-credentials with role-to-assume in the workflow of {repo_name}; then delete the key."
            ),
            Some(json!({
                "Version": "2012-10-17",
                "Statement": [{
                    "Effect": "Allow",
                    "Principal": {"Federated": format!("arn:aws:iam::{acct}:oidc-provider/token.actions.githubusercontent.com")},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": {
                        "StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"},
                        "StringLike": {"token.actions.githubusercontent.com:sub": format!("repo:{repo_name}:ref:refs/heads/main")}
                    }
                }]
            })),
        )
    } else if has("gitlab-ci") {
        (
            "gitlab-oidc-role",
            format!(
                "Create the IAM OIDC provider gitlab.com (or your GitLab host) with audience https://gitlab.com, a role with this trust policy, and in the job request an id_token and call aws sts assume-role-with-web-identity for {repo_name}; then delete the key."
            ),
            Some(json!({
                "Version": "2012-10-17",
                "Statement": [{
                    "Effect": "Allow",
                    "Principal": {"Federated": format!("arn:aws:iam::{acct}:oidc-provider/gitlab.com")},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": {
                        "StringEquals": {"gitlab.com:aud": "https://gitlab.com"},
                        "StringLike": {"gitlab.com:sub": format!("project_path:{repo_name}:ref_type:branch:ref:main")}
                    }
                }]
            })),
        )
    } else if has("eks") {
        (
            "eks-pod-identity",
            "Give the workload's Kubernetes service account a role through EKS Pod Identity (an association per namespace and service account; IRSA with the cluster's OIDC provider on older clusters) with the key's permissions; then delete the key.".to_string(),
            Some(json!({
                "Version": "2012-10-17",
                "Statement": [{
                    "Effect": "Allow",
                    "Principal": {"Service": "pods.eks.amazonaws.com"},
                    "Action": ["sts:AssumeRole", "sts:TagSession"]
                }]
            })),
        )
    } else if has("lambda") {
        (
            "lambda-execution-role",
            "Give the function's execution role the key's permissions and drop the key from its environment: the runtime already provides the role's credentials.".to_string(),
            Some(json!({
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]
            })),
        )
    } else if has("ecs") {
        (
            "ecs-task-role",
            "Give the task definition a task role with the key's permissions (taskRoleArn) and drop the key from the container environment.".to_string(),
            Some(json!({
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}]
            })),
        )
    } else if has("ec2-private") {
        (
            "ec2-instance-profile",
            "The key is used from private addresses inside a VPC: attach an instance profile with the key's permissions to the instances (require IMDSv2) and remove the key from their configuration.".to_string(),
            Some(json!({
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]
            })),
        )
    } else if has("unused") {
        (
            "delete-unused-key",
            "No call with this key was seen in the logs read: deactivate it, wait a cycle of the jobs that might use it, then delete it.".to_string(),
            None,
        )
    } else {
        (
            "iam-roles-anywhere",
            "The key is used from outside AWS by something keytrail cannot name: for workloads, IAM Roles Anywhere with an X.509 certificate from your CA; for people, IAM Identity Center. Then delete the key.".to_string(),
            None,
        )
    };
    PlanItem {
        credential_id: id,
        credential: kind,
        identity,
        leaked,
        used_by,
        replacement: replacement.into(),
        how,
        trust_policy: trust,
    }
}

/// The keyless replacement of a Google Cloud service-account key, from how
/// it is used: Workload Identity Federation for CI (a pool, a provider for
/// the CI's OIDC issuer, and `roles/iam.workloadIdentityUser` on the
/// service account for the repository's principal set), the attached
/// service account for Google Cloud workloads, or federation with another
/// identity provider for the rest.
fn gcp_replacement(
    used_by: &[String],
    repo: &str,
    account: Option<&str>,
) -> (&'static str, String, Option<serde_json::Value>) {
    let has = |m: &str| used_by.iter().any(|u| u == m);
    let sa = account.unwrap_or("SERVICE_ACCOUNT_EMAIL");
    if has("github-actions") {
        (
            "gcp-workload-identity-github",
            format!(
                "Create a workload identity pool with an OIDC provider for https://token.actions.githubusercontent.com (attribute condition assertion.repository == '{repo}'), grant roles/iam.workloadIdentityUser on {sa} to principalSet://iam.googleapis.com/projects/PROJECT_NUMBER/locations/global/workloadIdentityPools/POOL/attribute.repository/{repo}, and use google-github-actions/auth with workload_identity_provider and service_account in the workflow; then delete the key."
            ),
            None,
        )
    } else if has("gitlab-ci") {
        (
            "gcp-workload-identity-gitlab",
            format!(
                "Create a workload identity pool with an OIDC provider for https://gitlab.com (or your GitLab host; attribute condition on assertion.project_path == '{repo}'), grant roles/iam.workloadIdentityUser on {sa} to the project's principal set, and in the job request an id_token and exchange it with gcloud iam workload-identity-pools create-cred-config; then delete the key."
            ),
            None,
        )
    } else if has("unused") {
        (
            "delete-unused-key",
            "No call with this key was seen in the logs read: disable it (gcloud iam service-accounts keys disable), wait a cycle of the jobs that might use it, then delete it.".to_string(),
            None,
        )
    } else if has("gce") || has("gke") {
        (
            "gcp-attached-service-account",
            format!(
                "The key is used from Google Cloud itself: attach {sa} to the instances (or bind it to the Kubernetes service account with GKE Workload Identity) and drop the key file; the metadata server hands out short-lived tokens."
            ),
            None,
        )
    } else {
        (
            "gcp-workload-identity-federation",
            format!(
                "The key is used from outside Google Cloud by something keytrail cannot name: federate that workload's own identity (AWS, Azure, an OIDC or SAML provider, or X.509 certificates) through a workload identity pool with roles/iam.workloadIdentityUser on {sa}. Then delete the key."
            ),
            None,
        )
    }
}

/// The replacement of an Entra ID client secret: a federated identity
/// credential on the application for CI (GitHub Actions, GitLab), else a
/// managed identity for what runs in Azure (or a federated credential from
/// the workload's own identity provider).
fn azure_replacement(
    used_by: &[String],
    repo: &str,
    app: Option<&str>,
) -> (&'static str, String, Option<serde_json::Value>) {
    let has = |m: &str| used_by.iter().any(|u| u == m);
    let app = app.unwrap_or("APPLICATION_ID");
    if has("github-actions") {
        (
            "azure-federated-credential-github",
            format!(
                "Add a federated identity credential to application {app} for the workflow (az ad app federated-credential create --id {app} --parameters with the issuer and subject below) and use azure/login with client-id, tenant-id and subscription-id in {repo}; then delete the secret."
            ),
            Some(json!({
                "name": "github-main",
                "issuer": "https://token.actions.githubusercontent.com",
                "subject": format!("repo:{repo}:ref:refs/heads/main"),
                "audiences": ["api://AzureADTokenExchange"]
            })),
        )
    } else if has("gitlab-ci") {
        (
            "azure-federated-credential-gitlab",
            format!(
                "Add a federated identity credential to application {app} with GitLab as issuer (https://gitlab.com, or your host) and the project's branch as subject, request an id_token in the job and sign in with az login --federated-token; then delete the secret."
            ),
            Some(json!({
                "name": "gitlab-main",
                "issuer": "https://gitlab.com",
                "subject": format!("project_path:{repo}:ref_type:branch:ref:main"),
                "audiences": ["https://gitlab.com"]
            })),
        )
    } else if has("unused") {
        (
            "delete-unused-key",
            format!(
                "No sign-in with this secret was seen in the logs read: delete it from application {app} (az ad app credential delete) after a cycle of the jobs that might use it."
            ),
            None,
        )
    } else {
        (
            "azure-managed-identity",
            format!(
                "For what runs in Azure, give it a managed identity with the application's role assignments; for what runs elsewhere, a federated identity credential on application {app} from that workload's own identity provider (Kubernetes, another cloud, any OIDC issuer). Then delete the secret."
            ),
            None,
        )
    }
}

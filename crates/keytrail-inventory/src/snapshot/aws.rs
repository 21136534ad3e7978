//! The AWS part of a snapshot: `aws/` as written by the AWS CLI (IAM,
//! credential report, access keys, EC2, S3, EKS, Organizations, STS).

use super::{
    Collected, Tag, Time, file_name, page_files, parse_items, read_json, read_json_value,
    sorted_entries,
};
use crate::Timestamp;
use crate::policy::PolicyDocument;
use base64::Engine as _;
use keytrail_types::Diagnostic;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// `sts get-caller-identity`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct CallerIdentity {
    /// Account id.
    #[serde(default)]
    pub account: String,
    /// Caller ARN.
    #[serde(default)]
    pub arn: String,
}

/// `organizations describe-organization` → `Organization`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct Organization {
    /// Organization id.
    #[serde(default)]
    pub id: String,
    /// Management (master) account id.
    #[serde(default)]
    pub master_account_id: String,
    /// Management account ARN.
    #[serde(default)]
    pub master_account_arn: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct OrganizationOutput {
    organization: Organization,
}

/// An account of the organization (`organizations list-accounts`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct OrgAccount {
    /// Account id.
    #[serde(default)]
    pub id: String,
    /// Account name.
    #[serde(default)]
    pub name: String,
}

/// One row of the IAM credential report (only the columns keytrail uses).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CredentialReportRow {
    /// `user` (`<root_account>` for the root user).
    pub user: String,
    /// `arn`.
    pub arn: String,
    /// `user_creation_time`.
    pub created: Option<Timestamp>,
    /// `password_enabled` (`not_supported` for root reads as false).
    pub password_enabled: bool,
    /// `password_last_used`.
    pub password_last_used: Option<Timestamp>,
    /// `mfa_active`.
    pub mfa_active: bool,
    /// Access key slots 1 and 2.
    pub keys: [ReportKey; 2],
}

/// One access-key slot of a credential report row.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReportKey {
    /// `access_key_N_active`.
    pub active: bool,
    /// `access_key_N_last_rotated` (creation time of the current key).
    pub last_rotated: Option<Timestamp>,
    /// `access_key_N_last_used_date`.
    pub last_used: Option<Timestamp>,
    /// `access_key_N_last_used_service`.
    pub last_used_service: Option<String>,
}

/// A policy with a name and a parsed document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedPolicy {
    /// Policy name.
    pub name: String,
    /// The document.
    pub document: PolicyDocument,
}

/// A managed policy attachment.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct AttachedPolicy {
    /// Policy name.
    #[serde(default)]
    pub policy_name: String,
    /// Policy ARN.
    #[serde(default)]
    pub policy_arn: String,
}

/// An IAM user from `get-account-authorization-details`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IamUser {
    /// ARN.
    pub arn: String,
    /// Name.
    pub name: String,
    /// Path.
    pub path: String,
    /// Creation time.
    pub created: Option<Timestamp>,
    /// Inline policies.
    pub inline: Vec<NamedPolicy>,
    /// Attached managed policies.
    pub attached: Vec<AttachedPolicy>,
    /// Group names.
    pub groups: Vec<String>,
    /// Tags.
    pub tags: Vec<Tag>,
}

/// An IAM group.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IamGroup {
    /// ARN.
    pub arn: String,
    /// Name.
    pub name: String,
    /// Inline policies.
    pub inline: Vec<NamedPolicy>,
    /// Attached managed policies.
    pub attached: Vec<AttachedPolicy>,
}

/// An IAM role.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IamRole {
    /// ARN.
    pub arn: String,
    /// Name.
    pub name: String,
    /// Path (`/aws-service-role/` for service-linked roles).
    pub path: String,
    /// Creation time.
    pub created: Option<Timestamp>,
    /// Trust policy (`AssumeRolePolicyDocument`); `None` if absent or unparsable.
    pub trust: Option<PolicyDocument>,
    /// Inline policies.
    pub inline: Vec<NamedPolicy>,
    /// Attached managed policies.
    pub attached: Vec<AttachedPolicy>,
    /// Tags.
    pub tags: Vec<Tag>,
    /// `RoleLastUsed.LastUsedDate` (`None` with `last_used_known` = not used
    /// in the period IAM tracks, 400 days).
    pub last_used: Option<Timestamp>,
    /// Whether the snapshot says when the role was last used (`RoleLastUsed`
    /// present, even empty); `false` = unknown.
    pub last_used_known: bool,
    /// `RoleLastUsed.Region`.
    pub last_used_region: Option<String>,
    /// Instance profile ARNs that carry this role.
    pub instance_profiles: Vec<String>,
}

/// A managed policy with its default version's document.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ManagedPolicy {
    /// ARN.
    pub arn: String,
    /// Name.
    pub name: String,
    /// Default version document; `None` if absent or unparsable.
    pub document: Option<PolicyDocument>,
}

/// Merged `get-account-authorization-details` pages.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthorizationDetails {
    /// Users.
    pub users: Vec<IamUser>,
    /// Groups.
    pub groups: Vec<IamGroup>,
    /// Roles.
    pub roles: Vec<IamRole>,
    /// Managed policies by ARN.
    pub policies: BTreeMap<String, ManagedPolicy>,
}

/// An access key with what is known about its use.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AccessKey {
    /// Owning user name.
    pub user: String,
    /// Access key id (not secret).
    pub id: String,
    /// `Status == Active`.
    pub active: bool,
    /// `CreateDate`.
    pub created: Option<Timestamp>,
    /// Whether `get-access-key-last-used` output exists for this key.
    pub last_used_known: bool,
    /// `AccessKeyLastUsed.LastUsedDate` (`None` with `last_used_known` = never used).
    pub last_used: Option<Timestamp>,
    /// `AccessKeyLastUsed.ServiceName`.
    pub last_used_service: Option<String>,
    /// `AccessKeyLastUsed.Region`.
    pub last_used_region: Option<String>,
}

/// An EC2 instance.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Instance {
    /// Instance id.
    pub id: String,
    /// Region directory it came from.
    pub region: String,
    /// Owner account (reservation `OwnerId`).
    pub owner_id: String,
    /// `State.Name`.
    pub state: String,
    /// `MetadataOptions.HttpTokens` (`optional` / `required`).
    pub http_tokens: Option<String>,
    /// `MetadataOptions.HttpEndpoint` (`enabled` / `disabled`).
    pub http_endpoint: Option<String>,
    /// `IamInstanceProfile.Arn`.
    pub instance_profile_arn: Option<String>,
    /// Tags.
    pub tags: Vec<Tag>,
}

impl Instance {
    /// The instance ARN.
    pub fn arn(&self) -> String {
        format!(
            "arn:aws:ec2:{}:{}:instance/{}",
            self.region, self.owner_id, self.id
        )
    }
}

/// `ec2 get-instance-metadata-defaults` → `AccountLevel`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct MetadataDefaults {
    /// `optional`, `required`, or absent (no preference).
    #[serde(default)]
    pub http_tokens: Option<String>,
    /// `enabled` / `disabled`.
    #[serde(default)]
    pub http_endpoint: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MetadataDefaultsOutput {
    #[serde(default)]
    account_level: Option<MetadataDefaults>,
}

/// One region directory.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Region {
    /// Region name (directory name).
    pub name: String,
    /// `ec2 describe-instances` (all pages).
    pub instances: Collected<Vec<Instance>>,
    /// `ec2 get-instance-metadata-defaults`.
    pub metadata_defaults: Collected<MetadataDefaults>,
    /// `eks list-clusters` + `eks describe-cluster`.
    pub eks_clusters: Collected<Vec<EksCluster>>,
    /// `secretsmanager list-secrets` (all pages).
    pub secrets: Collected<Vec<ManagedSecret>>,
    /// `ssm describe-parameters` (all pages).
    pub parameters: Collected<Vec<Parameter>>,
}

/// One Secrets Manager secret's metadata (`list-secrets`; never its value).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ManagedSecret {
    /// `ARN`.
    pub arn: String,
    /// `Name`.
    pub name: String,
    /// `RotationEnabled`.
    pub rotation_enabled: bool,
    /// `RotationRules.AutomaticallyAfterDays`, when set.
    pub rotation_days: Option<i64>,
    /// `RotationRules.ScheduleExpression`, when set.
    pub rotation_schedule: Option<String>,
    /// `LastRotatedDate`.
    pub last_rotated: Option<Timestamp>,
    /// `LastAccessedDate` (AWS keeps it to the day).
    pub last_accessed: Option<Timestamp>,
    /// `CreatedDate`.
    pub created: Option<Timestamp>,
    /// `DeletedDate`: scheduled for deletion.
    pub deleted: Option<Timestamp>,
    /// `OwningService`: a secret another service manages (RDS, ...).
    pub owning_service: Option<String>,
    /// `Tags`.
    pub tags: Vec<Tag>,
}

/// One SSM parameter's metadata (`describe-parameters`; never its value).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Parameter {
    /// `Name` (`/app/db/password`).
    pub name: String,
    /// `ARN`, when the CLI printed it.
    pub arn: Option<String>,
    /// `Type`: `String`, `StringList` or `SecureString`.
    pub kind: String,
    /// `LastModifiedDate`.
    pub last_modified: Option<Timestamp>,
    /// `LastModifiedUser`.
    pub last_modified_user: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct SecretSyntax {
    #[serde(rename = "ARN", default)]
    arn: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    rotation_enabled: Option<bool>,
    #[serde(default)]
    rotation_rules: Option<RotationRulesSyntax>,
    #[serde(default)]
    last_rotated_date: Time,
    #[serde(default)]
    last_accessed_date: Time,
    #[serde(default)]
    created_date: Time,
    #[serde(default)]
    deleted_date: Time,
    #[serde(default)]
    owning_service: Option<String>,
    #[serde(default)]
    tags: Vec<Tag>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct RotationRulesSyntax {
    #[serde(default)]
    automatically_after_days: Option<i64>,
    #[serde(default)]
    schedule_expression: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct ParameterSyntax {
    #[serde(default)]
    name: String,
    #[serde(rename = "ARN", default)]
    arn: Option<String>,
    #[serde(rename = "Type", default)]
    kind: String,
    #[serde(default)]
    last_modified_date: Time,
    #[serde(default)]
    last_modified_user: Option<String>,
}

/// Reads a paged list (`BASE.json`, `BASE.2.json`, ...) of `member` items;
/// `Missing` when no page is readable.
fn load_paged<T: serde::de::DeserializeOwned>(
    rdir: &Path,
    base: &str,
    member: &str,
    diags: &mut Vec<Diagnostic>,
) -> Collected<Vec<T>> {
    let mut out = Vec::new();
    let mut any = false;
    for f in page_files(rdir, base, diags) {
        let Collected::Present(v) = read_json_value(&f, diags) else {
            continue;
        };
        any = true;
        out.extend(parse_items::<T>(v.get(member), &f, member, diags));
    }
    if any {
        Collected::Present(out)
    } else {
        Collected::Missing
    }
}

/// `s3api get-public-access-block` / `s3control get-public-access-block`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct PublicAccessBlock {
    /// `BlockPublicAcls`.
    #[serde(default)]
    pub block_public_acls: bool,
    /// `IgnorePublicAcls`.
    #[serde(default)]
    pub ignore_public_acls: bool,
    /// `BlockPublicPolicy`.
    #[serde(default)]
    pub block_public_policy: bool,
    /// `RestrictPublicBuckets`.
    #[serde(default)]
    pub restrict_public_buckets: bool,
}

impl PublicAccessBlock {
    /// All four settings on.
    pub fn fully_on(&self) -> bool {
        self.block_public_acls
            && self.ignore_public_acls
            && self.block_public_policy
            && self.restrict_public_buckets
    }

    /// The names of the settings that are off.
    pub fn off_settings(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if !self.block_public_acls {
            v.push("BlockPublicAcls");
        }
        if !self.ignore_public_acls {
            v.push("IgnorePublicAcls");
        }
        if !self.block_public_policy {
            v.push("BlockPublicPolicy");
        }
        if !self.restrict_public_buckets {
            v.push("RestrictPublicBuckets");
        }
        v
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PublicAccessBlockOutput {
    public_access_block_configuration: PublicAccessBlock,
}

/// An ACL grant.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Grant {
    /// Grantee `URI` (groups) or `ID`.
    pub grantee: String,
    /// `Permission` (READ, WRITE, READ_ACP, WRITE_ACP, FULL_CONTROL).
    pub permission: String,
}

/// One S3 bucket with its per-bucket settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bucket {
    /// Bucket name.
    pub name: String,
    /// `get-public-access-block`.
    pub public_access_block: Collected<PublicAccessBlock>,
    /// `get-bucket-policy-status` → `PolicyStatus.IsPublic`.
    pub policy_is_public: Collected<bool>,
    /// `get-bucket-acl` → grants.
    pub acl: Collected<Vec<Grant>>,
    /// `get-bucket-ownership-controls` → `ObjectOwnership` of the first rule.
    pub object_ownership: Collected<String>,
    /// `get-bucket-policy` → parsed `Policy`.
    pub policy: Collected<PolicyDocument>,
}

impl Bucket {
    /// The bucket ARN.
    pub fn arn(&self) -> String {
        format!("arn:aws:s3:::{}", self.name)
    }
}

/// An EKS cluster from `describe-cluster`, with node groups if collected.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EksCluster {
    /// Name.
    pub name: String,
    /// ARN.
    pub arn: String,
    /// Region.
    pub region: String,
    /// Whether `describe-cluster` output was available (else only the name is known).
    pub described: bool,
    /// `resourcesVpcConfig.endpointPublicAccess`.
    pub endpoint_public: bool,
    /// `resourcesVpcConfig.publicAccessCidrs`.
    pub public_access_cidrs: Vec<String>,
    /// `logging.clusterLogging[]`: (types, enabled), every entry.
    pub logging: Vec<(Vec<String>, bool)>,
    /// Node groups: (name, nodeRole ARN).
    pub nodegroups: Collected<Vec<(String, String)>>,
}

/// The `aws/` part of a snapshot.
#[derive(Debug, Clone, Default)]
pub struct AwsSnapshot {
    /// The `aws/` directory.
    pub dir: PathBuf,
    /// `sts get-caller-identity`.
    pub caller_identity: Collected<CallerIdentity>,
    /// `organizations describe-organization`.
    pub organization: Collected<Organization>,
    /// `organizations list-accounts` (optional).
    pub org_accounts: Collected<Vec<OrgAccount>>,
    /// The IAM credential report.
    pub credential_report: Collected<Vec<CredentialReportRow>>,
    /// `iam get-account-authorization-details` (all pages).
    pub authorization: Collected<AuthorizationDetails>,
    /// `iam list-access-keys` (+ `get-access-key-last-used`) for every user.
    pub access_keys: Collected<Vec<AccessKey>>,
    /// `s3api list-buckets` with per-bucket settings.
    pub buckets: Collected<Vec<Bucket>>,
    /// `s3control get-public-access-block`.
    pub account_public_access_block: Collected<PublicAccessBlock>,
    /// `regions/<region>/`.
    pub regions: Vec<Region>,
}

impl AwsSnapshot {
    /// The account id: from `sts get-caller-identity`, else from the first
    /// IAM ARN in the snapshot.
    pub fn account_id(&self) -> Option<String> {
        if let Some(c) = self.caller_identity.present()
            && !c.account.is_empty()
        {
            return Some(c.account.clone());
        }
        let auth = self.authorization.present()?;
        let arn = auth
            .roles
            .iter()
            .map(|r| &r.arn)
            .chain(auth.users.iter().map(|u| &u.arn))
            .next()?;
        arn.split(':').nth(4).map(str::to_string)
    }

    /// Path of a layout file, for "not evaluated" messages.
    pub fn path(&self, rel: &str) -> String {
        file_name(&self.dir.join(rel))
    }
}

/// Reads `aws/`.
pub fn load(dir: &Path, diags: &mut Vec<Diagnostic>) -> AwsSnapshot {
    let mut snap = AwsSnapshot {
        dir: dir.to_path_buf(),
        ..AwsSnapshot::default()
    };
    snap.caller_identity = read_json(&dir.join("sts-get-caller-identity.json"), diags);
    snap.organization = read_json::<OrganizationOutput>(
        &dir.join("organizations-describe-organization.json"),
        diags,
    )
    .map(|o| o.organization);
    snap.org_accounts = match read_json_value(&dir.join("organizations-list-accounts.json"), diags)
    {
        Collected::Present(v) => Collected::Present(parse_items(
            v.get("Accounts"),
            &dir.join("organizations-list-accounts.json"),
            "Accounts",
            diags,
        )),
        Collected::NotConfigured => Collected::NotConfigured,
        Collected::Missing => Collected::Missing,
    };
    snap.credential_report = load_credential_report(dir, diags);
    snap.authorization = load_authorization(dir, diags);
    snap.access_keys = load_access_keys(dir, diags);
    snap.buckets = load_buckets(dir, diags);
    snap.account_public_access_block = read_json::<PublicAccessBlockOutput>(
        &dir.join("s3control-get-public-access-block.json"),
        diags,
    )
    .map(|o| o.public_access_block_configuration);
    let regions_dir = dir.join("regions");
    if regions_dir.is_dir() {
        for rdir in sorted_entries(&regions_dir, diags) {
            if rdir.is_dir() {
                snap.regions.push(load_region(&rdir, diags));
            }
        }
    }
    snap
}

fn load_credential_report(
    dir: &Path,
    diags: &mut Vec<Diagnostic>,
) -> Collected<Vec<CredentialReportRow>> {
    let csv_path = dir.join("iam-credential-report.csv");
    let json_path = dir.join("iam-get-credential-report.json");
    if csv_path.exists() {
        return match super::files::read_bounded(&csv_path, super::MAX_FILE_BYTES) {
            Ok(b) => parse_credential_report(&b, &csv_path, diags),
            Err(e) => {
                diags.push(Diagnostic::error(
                    "unreadable",
                    file_name(&csv_path),
                    e.to_string(),
                ));
                Collected::Missing
            }
        };
    }
    match read_json_value(&json_path, diags) {
        Collected::Present(v) => {
            let Some(content) = v.get("Content").and_then(Value::as_str) else {
                diags.push(Diagnostic::error(
                    "unexpected_shape",
                    file_name(&json_path),
                    "no `Content` string",
                ));
                return Collected::Missing;
            };
            let cleaned: String = content.chars().filter(|c| !c.is_whitespace()).collect();
            match base64::engine::general_purpose::STANDARD.decode(cleaned.as_bytes()) {
                Ok(bytes) => parse_credential_report(&bytes, &json_path, diags),
                // The SDKs and some tools write the blob already decoded.
                Err(_) if content.starts_with("user,") => {
                    parse_credential_report(content.as_bytes(), &json_path, diags)
                }
                Err(e) => {
                    diags.push(Diagnostic::error(
                        "malformed_base64",
                        file_name(&json_path),
                        format!("`Content` is not base64: {e}"),
                    ));
                    Collected::Missing
                }
            }
        }
        other => other.map(|_| Vec::new()),
    }
}

fn report_bool(s: &str) -> bool {
    s.trim().eq_ignore_ascii_case("true")
}

fn report_opt(s: &str) -> Option<String> {
    let s = s.trim();
    if s.is_empty() || s == "N/A" || s == "no_information" || s == "not_supported" {
        None
    } else {
        Some(s.to_string())
    }
}

/// Parses the credential report CSV. Columns are found by header name, so
/// order changes and new columns are harmless; malformed rows become
/// diagnostics naming the line.
pub fn parse_credential_report(
    bytes: &[u8],
    path: &Path,
    diags: &mut Vec<Diagnostic>,
) -> Collected<Vec<CredentialReportRow>> {
    let mut rdr = csv::ReaderBuilder::new().flexible(false).from_reader(bytes);
    let headers = match rdr.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            diags.push(Diagnostic::error(
                "malformed_csv",
                file_name(path),
                format!("unreadable header: {e}"),
            ));
            return Collected::Missing;
        }
    };
    let col = |name: &str| headers.iter().position(|h| h.trim() == name);
    let (Some(c_user), Some(c_arn)) = (col("user"), col("arn")) else {
        diags.push(Diagnostic::error(
            "malformed_csv",
            file_name(path),
            "not a credential report: no `user` and `arn` columns",
        ));
        return Collected::Missing;
    };
    let cols = [
        col("user_creation_time"),
        col("password_enabled"),
        col("password_last_used"),
        col("mfa_active"),
        col("access_key_1_active"),
        col("access_key_1_last_rotated"),
        col("access_key_1_last_used_date"),
        col("access_key_1_last_used_service"),
        col("access_key_2_active"),
        col("access_key_2_last_rotated"),
        col("access_key_2_last_used_date"),
        col("access_key_2_last_used_service"),
    ];
    let mut rows = Vec::new();
    for rec in rdr.records() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| p.line());
                diags.push(
                    Diagnostic::error(
                        "malformed_csv",
                        file_name(path),
                        format!("row skipped: {e}"),
                    )
                    .at(line, None),
                );
                continue;
            }
        };
        let get = |c: Option<usize>| c.and_then(|i| rec.get(i)).unwrap_or("");
        let key = |base: usize| ReportKey {
            active: report_bool(get(cols[base])),
            last_rotated: super::parse_time(get(cols[base + 1])),
            last_used: super::parse_time(get(cols[base + 2])),
            last_used_service: report_opt(get(cols[base + 3])),
        };
        rows.push(CredentialReportRow {
            user: get(Some(c_user)).to_string(),
            arn: get(Some(c_arn)).to_string(),
            created: super::parse_time(get(cols[0])),
            password_enabled: report_bool(get(cols[1])),
            password_last_used: super::parse_time(get(cols[2])),
            mfa_active: report_bool(get(cols[3])),
            keys: [key(4), key(8)],
        });
    }
    Collected::Present(rows)
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct UserSyntax {
    #[serde(default)]
    arn: String,
    #[serde(default)]
    user_name: String,
    #[serde(default)]
    path: String,
    #[serde(default)]
    create_date: Time,
    #[serde(default)]
    user_policy_list: Vec<InlinePolicySyntax>,
    #[serde(default)]
    attached_managed_policies: Vec<AttachedPolicy>,
    #[serde(default)]
    group_list: Vec<String>,
    #[serde(default)]
    tags: Vec<Tag>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct GroupSyntax {
    #[serde(default)]
    arn: String,
    #[serde(default)]
    group_name: String,
    #[serde(default)]
    group_policy_list: Vec<InlinePolicySyntax>,
    #[serde(default)]
    attached_managed_policies: Vec<AttachedPolicy>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct RoleSyntax {
    #[serde(default)]
    arn: String,
    #[serde(default)]
    role_name: String,
    #[serde(default)]
    path: String,
    #[serde(default)]
    create_date: Time,
    #[serde(default)]
    assume_role_policy_document: Option<Value>,
    #[serde(default)]
    role_policy_list: Vec<InlinePolicySyntax>,
    #[serde(default)]
    attached_managed_policies: Vec<AttachedPolicy>,
    #[serde(default)]
    tags: Vec<Tag>,
    #[serde(default)]
    role_last_used: Option<RoleLastUsedSyntax>,
    #[serde(default)]
    instance_profile_list: Vec<InstanceProfileSyntax>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct RoleLastUsedSyntax {
    #[serde(default)]
    last_used_date: Time,
    #[serde(default)]
    region: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct InstanceProfileSyntax {
    #[serde(default)]
    arn: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct InlinePolicySyntax {
    #[serde(default)]
    policy_name: String,
    #[serde(default)]
    policy_document: Value,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct ManagedPolicySyntax {
    #[serde(default)]
    arn: String,
    #[serde(default)]
    policy_name: String,
    #[serde(default)]
    default_version_id: Option<String>,
    #[serde(default)]
    policy_version_list: Vec<PolicyVersionSyntax>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct PolicyVersionSyntax {
    #[serde(default)]
    document: Value,
    #[serde(default)]
    version_id: Option<String>,
    #[serde(default)]
    is_default_version: bool,
}

fn parse_inline(
    list: Vec<InlinePolicySyntax>,
    owner: &str,
    path: &Path,
    diags: &mut Vec<Diagnostic>,
) -> Vec<NamedPolicy> {
    let mut out = Vec::with_capacity(list.len());
    for p in list {
        match PolicyDocument::from_value(&p.policy_document) {
            Ok(document) => out.push(NamedPolicy {
                name: p.policy_name,
                document,
            }),
            Err(e) => diags.push(Diagnostic::error(
                "malformed_policy",
                file_name(path),
                format!("inline policy `{}` of {owner} skipped: {e}", p.policy_name),
            )),
        }
    }
    out
}

fn load_authorization(dir: &Path, diags: &mut Vec<Diagnostic>) -> Collected<AuthorizationDetails> {
    let files = page_files(dir, "iam-get-account-authorization-details", diags);
    if files.is_empty() {
        return Collected::Missing;
    }
    let mut auth = AuthorizationDetails::default();
    let mut any = false;
    for f in &files {
        let Collected::Present(v) = read_json_value(f, diags) else {
            continue;
        };
        any = true;
        for u in parse_items::<UserSyntax>(v.get("UserDetailList"), f, "UserDetailList", diags) {
            let owner = u.arn.clone();
            auth.users.push(IamUser {
                inline: parse_inline(u.user_policy_list, &owner, f, diags),
                arn: u.arn,
                name: u.user_name,
                path: u.path,
                created: u.create_date.0,
                attached: u.attached_managed_policies,
                groups: u.group_list,
                tags: u.tags,
            });
        }
        for g in parse_items::<GroupSyntax>(v.get("GroupDetailList"), f, "GroupDetailList", diags) {
            let owner = g.arn.clone();
            auth.groups.push(IamGroup {
                inline: parse_inline(g.group_policy_list, &owner, f, diags),
                arn: g.arn,
                name: g.group_name,
                attached: g.attached_managed_policies,
            });
        }
        for r in parse_items::<RoleSyntax>(v.get("RoleDetailList"), f, "RoleDetailList", diags) {
            let trust = match &r.assume_role_policy_document {
                None | Some(Value::Null) => None,
                Some(doc) => match PolicyDocument::from_value(doc) {
                    Ok(d) => Some(d),
                    Err(e) => {
                        diags.push(Diagnostic::error(
                            "malformed_policy",
                            file_name(f),
                            format!("trust policy of {} unreadable: {e}", r.arn),
                        ));
                        None
                    }
                },
            };
            let owner = r.arn.clone();
            let last_used_known = r.role_last_used.is_some();
            let (last_used, last_used_region) = match r.role_last_used {
                Some(l) => (l.last_used_date.0, l.region),
                None => (None, None),
            };
            auth.roles.push(IamRole {
                inline: parse_inline(r.role_policy_list, &owner, f, diags),
                arn: r.arn,
                name: r.role_name,
                path: r.path,
                created: r.create_date.0,
                trust,
                attached: r.attached_managed_policies,
                tags: r.tags,
                last_used,
                last_used_known,
                last_used_region,
                instance_profiles: r.instance_profile_list.into_iter().map(|p| p.arn).collect(),
            });
        }
        for p in parse_items::<ManagedPolicySyntax>(v.get("Policies"), f, "Policies", diags) {
            let version = p
                .policy_version_list
                .iter()
                .find(|v| v.is_default_version)
                .or_else(|| {
                    p.policy_version_list
                        .iter()
                        .find(|v| v.version_id.is_some() && v.version_id == p.default_version_id)
                });
            let document = match version {
                Some(v) => match PolicyDocument::from_value(&v.document) {
                    Ok(d) => Some(d),
                    Err(e) => {
                        diags.push(Diagnostic::error(
                            "malformed_policy",
                            file_name(f),
                            format!("managed policy {} unreadable: {e}", p.arn),
                        ));
                        None
                    }
                },
                None => None,
            };
            auth.policies.insert(
                p.arn.clone(),
                ManagedPolicy {
                    arn: p.arn,
                    name: p.policy_name,
                    document,
                },
            );
        }
    }
    if any {
        Collected::Present(auth)
    } else {
        Collected::Missing
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct AccessKeyMetadataSyntax {
    #[serde(default)]
    user_name: String,
    #[serde(default)]
    access_key_id: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    create_date: Time,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct LastUsedOutputSyntax {
    #[serde(default)]
    access_key_last_used: Option<LastUsedSyntax>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct LastUsedSyntax {
    #[serde(default)]
    last_used_date: Time,
    #[serde(default)]
    service_name: Option<String>,
    #[serde(default)]
    region: Option<String>,
}

fn load_access_keys(dir: &Path, diags: &mut Vec<Diagnostic>) -> Collected<Vec<AccessKey>> {
    let keys_dir = dir.join("iam-list-access-keys");
    if !keys_dir.is_dir() {
        return Collected::Missing;
    }
    let used_dir = dir.join("iam-get-access-key-last-used");
    let mut out: Vec<AccessKey> = Vec::new();
    let mut seen_ids: std::collections::HashSet<String> = std::collections::HashSet::new();
    for f in sorted_entries(&keys_dir, diags) {
        if f.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let Collected::Present(v) = read_json_value(&f, diags) else {
            continue;
        };
        for k in parse_items::<AccessKeyMetadataSyntax>(
            v.get("AccessKeyMetadata"),
            &f,
            "AccessKeyMetadata",
            diags,
        ) {
            if !seen_ids.insert(k.access_key_id.clone()) {
                continue;
            }
            let mut key = AccessKey {
                user: k.user_name,
                active: k.status.eq_ignore_ascii_case("active"),
                created: k.create_date.0,
                ..AccessKey::default()
            };
            let used_file = used_dir.join(format!("{}.json", k.access_key_id));
            let plain = super::check_name(&k.access_key_id, "access key", &f, diags);
            if !plain {
                // Not read: last use unknown.
            } else if let Collected::Present(u) =
                read_json::<LastUsedOutputSyntax>(&used_file, diags)
            {
                key.last_used_known = true;
                if let Some(l) = u.access_key_last_used {
                    key.last_used = l.last_used_date.0;
                    key.last_used_service = l.service_name.filter(|s| s != "N/A");
                    key.last_used_region = l.region.filter(|s| s != "N/A");
                }
            }
            key.id = k.access_key_id;
            out.push(key);
        }
    }
    Collected::Present(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BucketSyntax {
    name: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct PolicyStatusOutput {
    #[serde(default)]
    policy_status: PolicyStatusSyntax,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct PolicyStatusSyntax {
    #[serde(default)]
    is_public: bool,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct AclOutput {
    #[serde(default)]
    grants: Vec<GrantSyntax>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct GrantSyntax {
    #[serde(default)]
    grantee: GranteeSyntax,
    #[serde(default)]
    permission: String,
}

#[derive(Deserialize, Default)]
struct GranteeSyntax {
    #[serde(rename = "URI", default)]
    uri: Option<String>,
    #[serde(rename = "ID", default)]
    id: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct OwnershipOutput {
    #[serde(default)]
    ownership_controls: OwnershipControlsSyntax,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct OwnershipControlsSyntax {
    #[serde(default)]
    rules: Vec<OwnershipRuleSyntax>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct OwnershipRuleSyntax {
    #[serde(default)]
    object_ownership: String,
}

fn load_buckets(dir: &Path, diags: &mut Vec<Diagnostic>) -> Collected<Vec<Bucket>> {
    let list_path = dir.join("s3api-list-buckets.json");
    let Collected::Present(v) = read_json_value(&list_path, diags) else {
        return Collected::Missing;
    };
    let mut out = Vec::new();
    let per = dir.join("s3api");
    for b in parse_items::<BucketSyntax>(v.get("Buckets"), &list_path, "Buckets", diags) {
        let mut bucket = Bucket {
            name: b.name.clone(),
            ..Bucket::default()
        };
        if !super::check_name(&b.name, "bucket", &list_path, diags) {
            out.push(bucket);
            continue;
        }
        let bdir = per.join(&b.name);
        bucket.public_access_block =
            read_json::<PublicAccessBlockOutput>(&bdir.join("get-public-access-block.json"), diags)
                .map(|o| o.public_access_block_configuration);
        bucket.policy_is_public =
            read_json::<PolicyStatusOutput>(&bdir.join("get-bucket-policy-status.json"), diags)
                .map(|o| o.policy_status.is_public);
        bucket.acl = read_json::<AclOutput>(&bdir.join("get-bucket-acl.json"), diags).map(|o| {
            o.grants
                .into_iter()
                .map(|g| Grant {
                    grantee: g.grantee.uri.or(g.grantee.id).unwrap_or_default(),
                    permission: g.permission,
                })
                .collect()
        });
        bucket.object_ownership =
            read_json::<OwnershipOutput>(&bdir.join("get-bucket-ownership-controls.json"), diags)
                .map(|o| {
                    o.ownership_controls
                        .rules
                        .into_iter()
                        .next()
                        .map(|r| r.object_ownership)
                        .unwrap_or_default()
                });
        let pol_path = bdir.join("get-bucket-policy.json");
        bucket.policy = match read_json_value(&pol_path, diags) {
            Collected::Present(v) => match v.get("Policy") {
                Some(p) => match PolicyDocument::from_value(p) {
                    Ok(d) => Collected::Present(d),
                    Err(e) => {
                        diags.push(Diagnostic::error(
                            "malformed_policy",
                            file_name(&pol_path),
                            format!("bucket policy unreadable: {e}"),
                        ));
                        Collected::Missing
                    }
                },
                None => {
                    diags.push(Diagnostic::error(
                        "unexpected_shape",
                        file_name(&pol_path),
                        "no `Policy` field",
                    ));
                    Collected::Missing
                }
            },
            Collected::NotConfigured => Collected::NotConfigured,
            Collected::Missing => Collected::Missing,
        };
        out.push(bucket);
    }
    Collected::Present(out)
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct ReservationSyntax {
    #[serde(default)]
    owner_id: String,
    #[serde(default)]
    instances: Vec<InstanceSyntax>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct InstanceSyntax {
    #[serde(default)]
    instance_id: String,
    #[serde(default)]
    state: Option<StateSyntax>,
    #[serde(default)]
    metadata_options: Option<MetadataOptionsSyntax>,
    #[serde(default)]
    iam_instance_profile: Option<InstanceProfileSyntax>,
    #[serde(default)]
    tags: Vec<Tag>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct StateSyntax {
    #[serde(default)]
    name: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct MetadataOptionsSyntax {
    #[serde(default)]
    http_tokens: Option<String>,
    #[serde(default)]
    http_endpoint: Option<String>,
}

#[derive(Deserialize, Default)]
struct EksClusterOutput {
    #[serde(default)]
    cluster: EksClusterSyntax,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct EksClusterSyntax {
    #[serde(default)]
    arn: String,
    #[serde(default)]
    resources_vpc_config: EksVpcSyntax,
    #[serde(default)]
    logging: EksLoggingSyntax,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct EksVpcSyntax {
    #[serde(default)]
    endpoint_public_access: bool,
    #[serde(default)]
    public_access_cidrs: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct EksLoggingSyntax {
    #[serde(default)]
    cluster_logging: Vec<EksLogSetupSyntax>,
}

#[derive(Deserialize, Default)]
struct EksLogSetupSyntax {
    #[serde(default)]
    types: Vec<String>,
    #[serde(default)]
    enabled: bool,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct NodegroupOutput {
    #[serde(default)]
    nodegroup: NodegroupSyntax,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct NodegroupSyntax {
    #[serde(default)]
    nodegroup_name: String,
    #[serde(default)]
    node_role: String,
}

fn load_region(rdir: &Path, diags: &mut Vec<Diagnostic>) -> Region {
    let name = rdir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut region = Region {
        name: name.clone(),
        ..Region::default()
    };
    let pages = page_files(rdir, "ec2-describe-instances", diags);
    if !pages.is_empty() {
        let mut instances = Vec::new();
        let mut any = false;
        for f in &pages {
            let Collected::Present(v) = read_json_value(f, diags) else {
                continue;
            };
            any = true;
            for r in
                parse_items::<ReservationSyntax>(v.get("Reservations"), f, "Reservations", diags)
            {
                for i in r.instances {
                    let (http_tokens, http_endpoint) = match i.metadata_options {
                        Some(m) => (m.http_tokens, m.http_endpoint),
                        None => (None, None),
                    };
                    instances.push(Instance {
                        id: i.instance_id,
                        region: name.clone(),
                        owner_id: r.owner_id.clone(),
                        state: i.state.map(|s| s.name).unwrap_or_default(),
                        http_tokens,
                        http_endpoint,
                        instance_profile_arn: i.iam_instance_profile.map(|p| p.arn),
                        tags: i.tags,
                    });
                }
            }
        }
        if any {
            region.instances = Collected::Present(instances);
        }
    }
    region.metadata_defaults = read_json::<MetadataDefaultsOutput>(
        &rdir.join("ec2-get-instance-metadata-defaults.json"),
        diags,
    )
    .map(|o| o.account_level.unwrap_or_default());
    let list_path = rdir.join("eks-list-clusters.json");
    if let Collected::Present(v) = read_json_value(&list_path, diags) {
        let names: Vec<String> = parse_items(v.get("clusters"), &list_path, "clusters", diags);
        let mut clusters = Vec::new();
        for cname in names {
            if !super::check_name(&cname, "cluster", &list_path, diags) {
                continue;
            }
            let f = rdir
                .join("eks-describe-cluster")
                .join(format!("{cname}.json"));
            let mut c = EksCluster {
                name: cname.clone(),
                region: name.clone(),
                ..EksCluster::default()
            };
            if let Collected::Present(out) = read_json::<EksClusterOutput>(&f, diags) {
                c.described = true;
                c.arn = out.cluster.arn;
                c.endpoint_public = out.cluster.resources_vpc_config.endpoint_public_access;
                c.public_access_cidrs = out.cluster.resources_vpc_config.public_access_cidrs;
                c.logging = out
                    .cluster
                    .logging
                    .cluster_logging
                    .into_iter()
                    .map(|l| (l.types, l.enabled))
                    .collect();
            }
            if c.arn.is_empty() {
                c.arn = format!("arn:aws:eks:{name}:unknown:cluster/{cname}");
            }
            let ng_dir = rdir.join("eks-describe-nodegroup").join(&cname);
            if ng_dir.is_dir() {
                let mut ngs = Vec::new();
                for f in sorted_entries(&ng_dir, diags) {
                    if let Collected::Present(o) = read_json::<NodegroupOutput>(&f, diags) {
                        ngs.push((o.nodegroup.nodegroup_name, o.nodegroup.node_role));
                    }
                }
                c.nodegroups = Collected::Present(ngs);
            }
            clusters.push(c);
        }
        region.eks_clusters = Collected::Present(clusters);
    }
    region.secrets =
        load_paged::<SecretSyntax>(rdir, "secretsmanager-list-secrets", "SecretList", diags).map(
            |list| {
                list.into_iter()
                    .filter(|s| !s.arn.is_empty() || !s.name.is_empty())
                    .map(|s| ManagedSecret {
                        arn: s.arn,
                        name: s.name,
                        rotation_enabled: s.rotation_enabled.unwrap_or(false),
                        rotation_days: s
                            .rotation_rules
                            .as_ref()
                            .and_then(|r| r.automatically_after_days),
                        rotation_schedule: s.rotation_rules.and_then(|r| r.schedule_expression),
                        last_rotated: s.last_rotated_date.0,
                        last_accessed: s.last_accessed_date.0,
                        created: s.created_date.0,
                        deleted: s.deleted_date.0,
                        owning_service: s.owning_service,
                        tags: s.tags,
                    })
                    .collect()
            },
        );
    region.parameters =
        load_paged::<ParameterSyntax>(rdir, "ssm-describe-parameters", "Parameters", diags).map(
            |list| {
                list.into_iter()
                    .filter(|p| !p.name.is_empty())
                    .map(|p| Parameter {
                        name: p.name,
                        arn: p.arn,
                        kind: p.kind,
                        last_modified: p.last_modified_date.0,
                        last_modified_user: p.last_modified_user,
                    })
                    .collect()
            },
        );
    region
}

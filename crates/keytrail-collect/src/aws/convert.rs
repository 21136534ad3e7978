//! Converters from AWS SDK output types to the JSON the AWS CLI prints for
//! the same command: PascalCase (or, for EKS, camelCase) member names as in
//! the service model, absent members omitted, timestamps as ISO 8601 with a
//! `+00:00` offset, IAM policy documents left URL-encoded as the IAM API
//! returns them. The SDK types are not serialisable, so each command gets
//! an explicit converter; only members keytrail or a reader of the snapshot
//! plausibly needs are carried for the very wide types (EC2 instances).

use aws_sdk_iam::primitives::{DateTime, DateTimeFormat as Format};
use serde_json::{Map, Value, json};

/// A JSON object under construction that skips absent members.
#[derive(Default)]
pub(crate) struct Obj(Map<String, Value>);

/// A value that may be absent.
pub(crate) trait Member {
    fn member(self) -> Option<Value>;
}

impl Member for &str {
    fn member(self) -> Option<Value> {
        Some(Value::String(self.to_string()))
    }
}
impl Member for Option<&str> {
    fn member(self) -> Option<Value> {
        self.map(|s| Value::String(s.to_string()))
    }
}
impl Member for bool {
    fn member(self) -> Option<Value> {
        Some(Value::Bool(self))
    }
}
impl Member for Option<bool> {
    fn member(self) -> Option<Value> {
        self.map(Value::Bool)
    }
}
impl Member for Option<i32> {
    fn member(self) -> Option<Value> {
        self.map(|n| json!(n))
    }
}
impl Member for &DateTime {
    fn member(self) -> Option<Value> {
        Some(Value::String(timestamp(self)))
    }
}
impl Member for Option<&DateTime> {
    fn member(self) -> Option<Value> {
        self.map(|t| Value::String(timestamp(t)))
    }
}
impl Member for Value {
    fn member(self) -> Option<Value> {
        Some(self)
    }
}
impl Member for Option<Value> {
    fn member(self) -> Option<Value> {
        self
    }
}

impl Obj {
    pub(crate) fn new() -> Self {
        Obj::default()
    }

    /// Adds `key` if `value` is present.
    pub(crate) fn m(mut self, key: &str, value: impl Member) -> Self {
        if let Some(v) = value.member() {
            self.0.insert(key.to_string(), v);
        }
        self
    }

    /// Adds a list member (the CLI prints empty lists the service returned;
    /// the SDK cannot tell empty from absent, so empty lists are kept).
    pub(crate) fn list<T>(mut self, key: &str, items: &[T], f: impl Fn(&T) -> Value) -> Self {
        self.0
            .insert(key.to_string(), Value::Array(items.iter().map(f).collect()));
        self
    }

    /// Adds a list member only when it has elements.
    pub(crate) fn list_nonempty<T>(self, key: &str, items: &[T], f: impl Fn(&T) -> Value) -> Self {
        if items.is_empty() {
            self
        } else {
            self.list(key, items, f)
        }
    }

    pub(crate) fn build(self) -> Value {
        Value::Object(self.0)
    }
}

/// A timestamp as the AWS CLI prints it: `2024-01-02T03:04:05+00:00`
/// (fractional seconds kept when the service sent them).
pub(crate) fn timestamp(t: &DateTime) -> String {
    match t.fmt(Format::DateTime) {
        Ok(s) => match s.strip_suffix('Z') {
            Some(base) => format!("{base}+00:00"),
            None => s,
        },
        Err(_) => t.secs().to_string(),
    }
}

fn strings(items: &[String]) -> Value {
    Value::Array(items.iter().map(|s| Value::String(s.clone())).collect())
}

/// `HashMap` tags (EKS) as a sorted JSON object.
fn tag_map(m: Option<&std::collections::HashMap<String, String>>) -> Option<Value> {
    let m = m?;
    let mut keys: Vec<&String> = m.keys().collect();
    keys.sort();
    Some(Value::Object(
        keys.into_iter()
            .map(|k| (k.clone(), Value::String(m[k].clone())))
            .collect(),
    ))
}

pub(crate) mod sts {
    use super::Obj;
    use aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityOutput;
    use serde_json::Value;

    /// `aws sts get-caller-identity`.
    pub(crate) fn caller_identity(o: &GetCallerIdentityOutput) -> Value {
        Obj::new()
            .m("UserId", o.user_id())
            .m("Account", o.account())
            .m("Arn", o.arn())
            .build()
    }
}

pub(crate) mod organizations {
    use super::Obj;
    use aws_sdk_organizations::types::{Account, Organization};
    use serde_json::{Value, json};

    /// `aws organizations describe-organization`.
    pub(crate) fn describe_organization(o: &Organization) -> Value {
        let org = Obj::new()
            .m("Id", o.id())
            .m("Arn", o.arn())
            .m("FeatureSet", o.feature_set().map(|f| f.as_str()))
            .m("MasterAccountArn", o.master_account_arn())
            .m("MasterAccountId", o.master_account_id())
            .m("MasterAccountEmail", o.master_account_email())
            .list("AvailablePolicyTypes", o.available_policy_types(), |p| {
                Obj::new()
                    .m("Type", p.r#type().map(|t| t.as_str()))
                    .m("Status", p.status().map(|s| s.as_str()))
                    .build()
            })
            .build();
        json!({ "Organization": org })
    }

    /// `aws organizations list-accounts` (all pages).
    pub(crate) fn list_accounts(accounts: &[Account]) -> Value {
        Obj::new()
            .list("Accounts", accounts, |a| {
                Obj::new()
                    .m("Id", a.id())
                    .m("Arn", a.arn())
                    .m("Email", a.email())
                    .m("Name", a.name())
                    .m("Status", a.status().map(|s| s.as_str()))
                    .m("State", a.state().map(|s| s.as_str()))
                    .m("JoinedMethod", a.joined_method().map(|s| s.as_str()))
                    .m("JoinedTimestamp", a.joined_timestamp())
                    .build()
            })
            .build()
    }
}

pub(crate) mod iam {
    use super::Obj;
    use aws_sdk_iam::operation::get_access_key_last_used::GetAccessKeyLastUsedOutput;
    use aws_sdk_iam::operation::get_credential_report::GetCredentialReportOutput;
    use aws_sdk_iam::types::{
        AccessKeyMetadata, AttachedPermissionsBoundary, AttachedPolicy, GroupDetail,
        InstanceProfile, ManagedPolicyDetail, PolicyDetail, Role, RoleDetail, RoleLastUsed, Tag,
        UserDetail,
    };
    use base64::Engine as _;
    use serde_json::{Value, json};

    fn tag(t: &Tag) -> Value {
        json!({"Key": t.key(), "Value": t.value()})
    }

    fn inline(p: &PolicyDetail) -> Value {
        Obj::new()
            .m("PolicyName", p.policy_name())
            .m("PolicyDocument", p.policy_document())
            .build()
    }

    fn attached(p: &AttachedPolicy) -> Value {
        Obj::new()
            .m("PolicyName", p.policy_name())
            .m("PolicyArn", p.policy_arn())
            .build()
    }

    fn boundary(b: Option<&AttachedPermissionsBoundary>) -> Option<Value> {
        b.map(|b| {
            Obj::new()
                .m(
                    "PermissionsBoundaryType",
                    b.permissions_boundary_type().map(|t| t.as_str()),
                )
                .m("PermissionsBoundaryArn", b.permissions_boundary_arn())
                .build()
        })
    }

    fn last_used(l: Option<&RoleLastUsed>) -> Option<Value> {
        l.map(|l| {
            Obj::new()
                .m("LastUsedDate", l.last_used_date())
                .m("Region", l.region())
                .build()
        })
    }

    fn role(r: &Role) -> Value {
        Obj::new()
            .m("Path", r.path())
            .m("RoleName", r.role_name())
            .m("RoleId", r.role_id())
            .m("Arn", r.arn())
            .m("CreateDate", r.create_date())
            .m("AssumeRolePolicyDocument", r.assume_role_policy_document())
            .m("Description", r.description())
            .m("MaxSessionDuration", r.max_session_duration())
            .m("PermissionsBoundary", boundary(r.permissions_boundary()))
            .list_nonempty("Tags", r.tags(), tag)
            .m("RoleLastUsed", last_used(r.role_last_used()))
            .build()
    }

    fn instance_profile(p: &InstanceProfile) -> Value {
        Obj::new()
            .m("Path", p.path())
            .m("InstanceProfileName", p.instance_profile_name())
            .m("InstanceProfileId", p.instance_profile_id())
            .m("Arn", p.arn())
            .m("CreateDate", p.create_date())
            .list("Roles", p.roles(), role)
            .list_nonempty("Tags", p.tags(), tag)
            .build()
    }

    fn user(u: &UserDetail) -> Value {
        Obj::new()
            .m("Path", u.path())
            .m("UserName", u.user_name())
            .m("UserId", u.user_id())
            .m("Arn", u.arn())
            .m("CreateDate", u.create_date())
            .list("UserPolicyList", u.user_policy_list(), inline)
            .list("GroupList", u.group_list(), |g| Value::String(g.clone()))
            .list(
                "AttachedManagedPolicies",
                u.attached_managed_policies(),
                attached,
            )
            .m("PermissionsBoundary", boundary(u.permissions_boundary()))
            .list("Tags", u.tags(), tag)
            .build()
    }

    fn group(g: &GroupDetail) -> Value {
        Obj::new()
            .m("Path", g.path())
            .m("GroupName", g.group_name())
            .m("GroupId", g.group_id())
            .m("Arn", g.arn())
            .m("CreateDate", g.create_date())
            .list("GroupPolicyList", g.group_policy_list(), inline)
            .list(
                "AttachedManagedPolicies",
                g.attached_managed_policies(),
                attached,
            )
            .build()
    }

    fn role_detail(r: &RoleDetail) -> Value {
        Obj::new()
            .m("Path", r.path())
            .m("RoleName", r.role_name())
            .m("RoleId", r.role_id())
            .m("Arn", r.arn())
            .m("CreateDate", r.create_date())
            .m("AssumeRolePolicyDocument", r.assume_role_policy_document())
            .list(
                "InstanceProfileList",
                r.instance_profile_list(),
                instance_profile,
            )
            .list("RolePolicyList", r.role_policy_list(), inline)
            .list(
                "AttachedManagedPolicies",
                r.attached_managed_policies(),
                attached,
            )
            .m("PermissionsBoundary", boundary(r.permissions_boundary()))
            .list("Tags", r.tags(), tag)
            .m(
                "RoleLastUsed",
                last_used(r.role_last_used()).or(Some(json!({}))),
            )
            .build()
    }

    fn policy(p: &ManagedPolicyDetail) -> Value {
        Obj::new()
            .m("PolicyName", p.policy_name())
            .m("PolicyId", p.policy_id())
            .m("Arn", p.arn())
            .m("Path", p.path())
            .m("DefaultVersionId", p.default_version_id())
            .m("AttachmentCount", p.attachment_count())
            .m(
                "PermissionsBoundaryUsageCount",
                p.permissions_boundary_usage_count(),
            )
            .m("IsAttachable", p.is_attachable())
            .m("Description", p.description())
            .m("CreateDate", p.create_date())
            .m("UpdateDate", p.update_date())
            .list("PolicyVersionList", p.policy_version_list(), |v| {
                Obj::new()
                    .m("Document", v.document())
                    .m("VersionId", v.version_id())
                    .m("IsDefaultVersion", v.is_default_version())
                    .m("CreateDate", v.create_date())
                    .build()
            })
            .build()
    }

    /// Accumulates `get-account-authorization-details` pages into the one
    /// object the CLI prints after merging them.
    #[derive(Default)]
    pub(crate) struct AuthorizationDetails {
        users: Vec<Value>,
        groups: Vec<Value>,
        roles: Vec<Value>,
        policies: Vec<Value>,
    }

    impl AuthorizationDetails {
        pub(crate) fn add_page(
            &mut self,
            page: &aws_sdk_iam::operation::get_account_authorization_details::GetAccountAuthorizationDetailsOutput,
        ) {
            self.users.extend(page.user_detail_list().iter().map(user));
            self.groups
                .extend(page.group_detail_list().iter().map(group));
            self.roles
                .extend(page.role_detail_list().iter().map(role_detail));
            self.policies.extend(page.policies().iter().map(policy));
        }

        pub(crate) fn build(self) -> Value {
            json!({
                "UserDetailList": self.users,
                "GroupDetailList": self.groups,
                "RoleDetailList": self.roles,
                "Policies": self.policies,
            })
        }
    }

    /// `aws iam list-access-keys --user-name U` (all pages).
    pub(crate) fn list_access_keys(keys: &[AccessKeyMetadata]) -> Value {
        Obj::new()
            .list("AccessKeyMetadata", keys, |k| {
                Obj::new()
                    .m("UserName", k.user_name())
                    .m("AccessKeyId", k.access_key_id())
                    .m("Status", k.status().map(|s| s.as_str()))
                    .m("CreateDate", k.create_date())
                    .build()
            })
            .build()
    }

    /// `aws iam get-access-key-last-used --access-key-id K`.
    pub(crate) fn access_key_last_used(o: &GetAccessKeyLastUsedOutput) -> Value {
        Obj::new()
            .m("UserName", o.user_name())
            .m(
                "AccessKeyLastUsed",
                o.access_key_last_used().map(|l| {
                    Obj::new()
                        .m("LastUsedDate", l.last_used_date())
                        .m("ServiceName", l.service_name())
                        .m("Region", l.region())
                        .build()
                }),
            )
            .build()
    }

    /// `aws iam get-credential-report`: `Content` in base64, as printed.
    pub(crate) fn credential_report(o: &GetCredentialReportOutput) -> Value {
        Obj::new()
            .m(
                "Content",
                o.content().map(|b| {
                    Value::String(base64::engine::general_purpose::STANDARD.encode(b.as_ref()))
                }),
            )
            .m("ReportFormat", o.report_format().map(|f| f.as_str()))
            .m("GeneratedTime", o.generated_time())
            .build()
    }
}

pub(crate) mod ec2 {
    use super::Obj;
    use aws_sdk_ec2::operation::get_instance_metadata_defaults::GetInstanceMetadataDefaultsOutput;
    use aws_sdk_ec2::types::{GroupIdentifier, Instance, Reservation, Tag};
    use serde_json::{Value, json};

    fn tag(t: &Tag) -> Value {
        Obj::new().m("Key", t.key()).m("Value", t.value()).build()
    }

    fn group(g: &GroupIdentifier) -> Value {
        Obj::new()
            .m("GroupId", g.group_id())
            .m("GroupName", g.group_name())
            .build()
    }

    fn instance(i: &Instance) -> Value {
        Obj::new()
            .m("AmiLaunchIndex", i.ami_launch_index())
            .m("ImageId", i.image_id())
            .m("InstanceId", i.instance_id())
            .m("InstanceType", i.instance_type().map(|t| t.as_str()))
            .m("KeyName", i.key_name())
            .m("LaunchTime", i.launch_time())
            .m(
                "Placement",
                i.placement().map(|p| {
                    Obj::new()
                        .m("AvailabilityZone", p.availability_zone())
                        .m("GroupName", p.group_name())
                        .m("Tenancy", p.tenancy().map(|t| t.as_str()))
                        .build()
                }),
            )
            .m("Platform", i.platform().map(|p| p.as_str()))
            .m("PrivateDnsName", i.private_dns_name())
            .m("PrivateIpAddress", i.private_ip_address())
            .m("PublicDnsName", i.public_dns_name())
            .m("PublicIpAddress", i.public_ip_address())
            .m(
                "State",
                i.state().map(|s| {
                    Obj::new()
                        .m("Code", s.code())
                        .m("Name", s.name().map(|n| n.as_str()))
                        .build()
                }),
            )
            .m("SubnetId", i.subnet_id())
            .m("VpcId", i.vpc_id())
            .m("Architecture", i.architecture().map(|a| a.as_str()))
            .m(
                "IamInstanceProfile",
                i.iam_instance_profile()
                    .map(|p| Obj::new().m("Arn", p.arn()).m("Id", p.id()).build()),
            )
            .list("SecurityGroups", i.security_groups(), group)
            .list_nonempty("Tags", i.tags(), tag)
            .m(
                "MetadataOptions",
                i.metadata_options().map(|m| {
                    Obj::new()
                        .m("State", m.state().map(|s| s.as_str()))
                        .m("HttpTokens", m.http_tokens().map(|s| s.as_str()))
                        .m("HttpPutResponseHopLimit", m.http_put_response_hop_limit())
                        .m("HttpEndpoint", m.http_endpoint().map(|s| s.as_str()))
                        .m(
                            "InstanceMetadataTags",
                            m.instance_metadata_tags().map(|s| s.as_str()),
                        )
                        .build()
                }),
            )
            .build()
    }

    fn reservation(r: &Reservation) -> Value {
        Obj::new()
            .m("ReservationId", r.reservation_id())
            .m("OwnerId", r.owner_id())
            .m("RequesterId", r.requester_id())
            .list("Groups", r.groups(), group)
            .list("Instances", r.instances(), instance)
            .build()
    }

    /// `aws ec2 describe-instances` (all pages merged).
    pub(crate) fn describe_instances(reservations: &[Reservation]) -> Value {
        json!({ "Reservations": reservations.iter().map(reservation).collect::<Vec<_>>() })
    }

    /// `aws ec2 get-instance-metadata-defaults`.
    pub(crate) fn metadata_defaults(o: &GetInstanceMetadataDefaultsOutput) -> Value {
        let level = match o.account_level() {
            Some(a) => Obj::new()
                .m("HttpTokens", a.http_tokens().map(|s| s.as_str()))
                .m("HttpPutResponseHopLimit", a.http_put_response_hop_limit())
                .m("HttpEndpoint", a.http_endpoint().map(|s| s.as_str()))
                .m(
                    "InstanceMetadataTags",
                    a.instance_metadata_tags().map(|s| s.as_str()),
                )
                .m("ManagedBy", a.managed_by().map(|s| s.as_str()))
                .m("ManagedExceptionMessage", a.managed_exception_message())
                .build(),
            None => json!({}),
        };
        json!({ "AccountLevel": level })
    }
}

pub(crate) mod s3 {
    use super::Obj;
    use aws_sdk_s3::types::{Bucket, Owner};
    use serde_json::{Value, json};

    fn owner(o: Option<&Owner>) -> Option<Value> {
        o.map(|o| {
            Obj::new()
                .m("DisplayName", o.display_name())
                .m("ID", o.id())
                .build()
        })
    }

    /// `aws s3api list-buckets` (all pages merged).
    pub(crate) fn list_buckets(buckets: &[Bucket], o: Option<&aws_sdk_s3::types::Owner>) -> Value {
        Obj::new()
            .list("Buckets", buckets, |b| {
                Obj::new()
                    .m("Name", b.name())
                    .m("CreationDate", b.creation_date())
                    .m("BucketRegion", b.bucket_region())
                    .m("BucketArn", b.bucket_arn())
                    .build()
            })
            .m("Owner", owner(o))
            .build()
    }

    /// Public access block configuration (S3 and S3 Control share the shape).
    pub(crate) fn public_access_block(
        acls: Option<bool>,
        ignore: Option<bool>,
        policy: Option<bool>,
        restrict: Option<bool>,
    ) -> Value {
        json!({
            "PublicAccessBlockConfiguration": Obj::new()
                .m("BlockPublicAcls", acls)
                .m("IgnorePublicAcls", ignore)
                .m("BlockPublicPolicy", policy)
                .m("RestrictPublicBuckets", restrict)
                .build()
        })
    }

    /// `aws s3api get-bucket-policy-status`.
    pub(crate) fn policy_status(
        o: &aws_sdk_s3::operation::get_bucket_policy_status::GetBucketPolicyStatusOutput,
    ) -> Value {
        json!({
            "PolicyStatus": Obj::new()
                .m("IsPublic", o.policy_status().and_then(|p| p.is_public()))
                .build()
        })
    }

    /// `aws s3api get-bucket-acl`.
    pub(crate) fn acl(o: &aws_sdk_s3::operation::get_bucket_acl::GetBucketAclOutput) -> Value {
        Obj::new()
            .m("Owner", owner(o.owner()))
            .list("Grants", o.grants(), |g| {
                Obj::new()
                    .m(
                        "Grantee",
                        g.grantee().map(|e| {
                            Obj::new()
                                .m("DisplayName", e.display_name())
                                .m("EmailAddress", e.email_address())
                                .m("ID", e.id())
                                .m("Type", e.r#type().as_str())
                                .m("URI", e.uri())
                                .build()
                        }),
                    )
                    .m("Permission", g.permission().map(|p| p.as_str()))
                    .build()
            })
            .build()
    }

    /// `aws s3api get-bucket-ownership-controls`.
    pub(crate) fn ownership_controls(
        o: &aws_sdk_s3::operation::get_bucket_ownership_controls::GetBucketOwnershipControlsOutput,
    ) -> Value {
        let rules: Vec<Value> = o
            .ownership_controls()
            .map(|c| {
                c.rules()
                    .iter()
                    .map(|r| json!({"ObjectOwnership": r.object_ownership().as_str()}))
                    .collect()
            })
            .unwrap_or_default();
        json!({ "OwnershipControls": { "Rules": rules } })
    }

    /// `aws s3api get-bucket-policy`: the policy as one JSON string.
    pub(crate) fn policy(
        o: &aws_sdk_s3::operation::get_bucket_policy::GetBucketPolicyOutput,
    ) -> Value {
        Obj::new().m("Policy", o.policy()).build()
    }
}

pub(crate) mod secretsmanager {
    use super::Obj;
    use aws_sdk_secretsmanager::types::SecretListEntry;
    use serde_json::{Value, json};

    /// `aws secretsmanager list-secrets` (all pages).
    pub(crate) fn list_secrets(list: &[SecretListEntry]) -> Value {
        let secrets: Vec<Value> = list
            .iter()
            .map(|s| {
                Obj::new()
                    .m("ARN", s.arn())
                    .m("Name", s.name())
                    .m("Description", s.description())
                    .m("KmsKeyId", s.kms_key_id())
                    .m("RotationEnabled", s.rotation_enabled())
                    .m("RotationLambdaARN", s.rotation_lambda_arn())
                    .m(
                        "RotationRules",
                        s.rotation_rules().map(|r| {
                            Obj::new()
                                .m(
                                    "AutomaticallyAfterDays",
                                    r.automatically_after_days().map(|d| json!(d)),
                                )
                                .m("Duration", r.duration())
                                .m("ScheduleExpression", r.schedule_expression())
                                .build()
                        }),
                    )
                    .m("LastRotatedDate", s.last_rotated_date())
                    .m("LastChangedDate", s.last_changed_date())
                    .m("LastAccessedDate", s.last_accessed_date())
                    .m("DeletedDate", s.deleted_date())
                    .m("NextRotationDate", s.next_rotation_date())
                    .list_nonempty("Tags", s.tags(), |t| {
                        Obj::new().m("Key", t.key()).m("Value", t.value()).build()
                    })
                    .m("OwningService", s.owning_service())
                    .m("CreatedDate", s.created_date())
                    .m("PrimaryRegion", s.primary_region())
                    .build()
            })
            .collect();
        json!({ "SecretList": secrets })
    }
}

pub(crate) mod ssm {
    use super::Obj;
    use aws_sdk_ssm::types::ParameterMetadata;
    use serde_json::{Value, json};

    /// `aws ssm describe-parameters` (all pages).
    pub(crate) fn describe_parameters(list: &[ParameterMetadata]) -> Value {
        let params: Vec<Value> = list
            .iter()
            .map(|p| {
                Obj::new()
                    .m("Name", p.name())
                    .m("ARN", p.arn())
                    .m("Type", p.r#type().map(|t| t.as_str()))
                    .m("KeyId", p.key_id())
                    .m("LastModifiedDate", p.last_modified_date())
                    .m("LastModifiedUser", p.last_modified_user())
                    .m("Description", p.description())
                    .m("Version", Some(json!(p.version())))
                    .m("Tier", p.tier().map(|t| t.as_str()))
                    .list_nonempty("Policies", p.policies(), |x| {
                        Obj::new()
                            .m("PolicyText", x.policy_text())
                            .m("PolicyType", x.policy_type())
                            .m("PolicyStatus", x.policy_status())
                            .build()
                    })
                    .m("DataType", p.data_type())
                    .build()
            })
            .collect();
        json!({ "Parameters": params })
    }
}

pub(crate) mod eks {
    use super::{Obj, strings, tag_map};
    use aws_sdk_eks::types::{Cluster, Nodegroup};
    use serde_json::{Value, json};

    /// `aws eks list-clusters` (all pages).
    pub(crate) fn list_clusters(names: &[String]) -> Value {
        json!({ "clusters": names })
    }

    /// `aws eks describe-cluster --name C`.
    pub(crate) fn describe_cluster(c: &Cluster) -> Value {
        let cluster = Obj::new()
            .m("name", c.name())
            .m("arn", c.arn())
            .m("createdAt", c.created_at())
            .m("version", c.version())
            .m("endpoint", c.endpoint())
            .m("roleArn", c.role_arn())
            .m(
                "resourcesVpcConfig",
                c.resources_vpc_config().map(|v| {
                    Obj::new()
                        .m("subnetIds", strings(v.subnet_ids()))
                        .m("securityGroupIds", strings(v.security_group_ids()))
                        .m("clusterSecurityGroupId", v.cluster_security_group_id())
                        .m("vpcId", v.vpc_id())
                        .m("endpointPublicAccess", v.endpoint_public_access())
                        .m("endpointPrivateAccess", v.endpoint_private_access())
                        .m("publicAccessCidrs", strings(v.public_access_cidrs()))
                        .build()
                }),
            )
            .m(
                "logging",
                c.logging().map(|l| {
                    Obj::new()
                        .list("clusterLogging", l.cluster_logging(), |s| {
                            Obj::new()
                                .m(
                                    "types",
                                    Value::Array(
                                        s.types()
                                            .iter()
                                            .map(|t| Value::String(t.as_str().to_string()))
                                            .collect(),
                                    ),
                                )
                                .m("enabled", s.enabled())
                                .build()
                        })
                        .build()
                }),
            )
            .m("status", c.status().map(|s| s.as_str()))
            .m("platformVersion", c.platform_version())
            .m("tags", tag_map(c.tags()))
            .build();
        json!({ "cluster": cluster })
    }

    /// `aws eks describe-nodegroup --cluster-name C --nodegroup-name N`.
    pub(crate) fn describe_nodegroup(n: &Nodegroup) -> Value {
        let ng = Obj::new()
            .m("nodegroupName", n.nodegroup_name())
            .m("nodegroupArn", n.nodegroup_arn())
            .m("clusterName", n.cluster_name())
            .m("version", n.version())
            .m("createdAt", n.created_at())
            .m("status", n.status().map(|s| s.as_str()))
            .m("capacityType", n.capacity_type().map(|s| s.as_str()))
            .m("instanceTypes", strings(n.instance_types()))
            .m("subnets", strings(n.subnets()))
            .m("amiType", n.ami_type().map(|s| s.as_str()))
            .m("nodeRole", n.node_role())
            .m("tags", tag_map(n.tags()))
            .build();
        json!({ "nodegroup": ng })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_print_like_the_cli() {
        assert_eq!(
            timestamp(&DateTime::from_secs(1_700_000_000)),
            "2023-11-14T22:13:20+00:00"
        );
        let frac = DateTime::from_secs_and_nanos(1_700_000_000, 500_000_000);
        assert_eq!(timestamp(&frac), "2023-11-14T22:13:20.5+00:00");
    }

    #[test]
    fn authorization_details_merge_pages_in_cli_shape() {
        use aws_sdk_iam::operation::get_account_authorization_details::GetAccountAuthorizationDetailsOutput as Page;
        use aws_sdk_iam::types::{AttachedPolicy, RoleDetail, UserDetail};
        let encoded = "%7B%22Version%22%3A%222012-10-17%22%7D";
        let p1 = Page::builder()
            .user_detail_list(
                UserDetail::builder()
                    .user_name("ci")
                    .arn("arn:aws:iam::123456789012:user/ci")
                    .create_date(DateTime::from_secs(1_700_000_000))
                    .build(),
            )
            .is_truncated(true)
            .build();
        let p2 = Page::builder()
            .role_detail_list(
                RoleDetail::builder()
                    .role_name("app")
                    .assume_role_policy_document(encoded)
                    .attached_managed_policies(
                        AttachedPolicy::builder()
                            .policy_name("AdministratorAccess")
                            .policy_arn("arn:aws:iam::aws:policy/AdministratorAccess")
                            .build(),
                    )
                    .build(),
            )
            .build();
        let mut d = iam::AuthorizationDetails::default();
        d.add_page(&p1);
        d.add_page(&p2);
        let v = d.build();
        assert_eq!(v["UserDetailList"][0]["UserName"], "ci");
        assert_eq!(
            v["UserDetailList"][0]["CreateDate"],
            "2023-11-14T22:13:20+00:00"
        );
        // Left URL-encoded, as the IAM API returns it.
        assert_eq!(v["RoleDetailList"][0]["AssumeRolePolicyDocument"], encoded);
        assert_eq!(
            v["RoleDetailList"][0]["AttachedManagedPolicies"][0]["PolicyArn"],
            "arn:aws:iam::aws:policy/AdministratorAccess"
        );
        assert_eq!(v["RoleDetailList"][0]["RoleLastUsed"], json!({}));
        assert_eq!(v["GroupDetailList"], json!([]));
        assert!(v.get("IsTruncated").is_none() && v.get("Marker").is_none());
    }

    #[test]
    fn eks_cluster_keeps_every_logging_entry_in_camel_case() {
        use aws_sdk_eks::types::{Cluster, LogSetup, LogType, Logging, VpcConfigResponse};
        let c = Cluster::builder()
            .name("prod")
            .resources_vpc_config(
                VpcConfigResponse::builder()
                    .endpoint_public_access(true)
                    .public_access_cidrs("0.0.0.0/0")
                    .build(),
            )
            .logging(
                Logging::builder()
                    .cluster_logging(
                        LogSetup::builder()
                            .types(LogType::Api)
                            .enabled(false)
                            .build(),
                    )
                    .cluster_logging(
                        LogSetup::builder()
                            .types(LogType::Audit)
                            .enabled(true)
                            .build(),
                    )
                    .build(),
            )
            .build();
        let v = eks::describe_cluster(&c);
        assert_eq!(
            v["cluster"]["resourcesVpcConfig"]["endpointPublicAccess"],
            true
        );
        assert_eq!(
            v["cluster"]["resourcesVpcConfig"]["publicAccessCidrs"],
            json!(["0.0.0.0/0"])
        );
        assert_eq!(
            v["cluster"]["logging"]["clusterLogging"],
            json!([
                {"types": ["api"], "enabled": false},
                {"types": ["audit"], "enabled": true}
            ])
        );
    }
}

//! Generators of cloud account snapshots for posture tests and benchmarks
//! (owned by the inventory work).
//!
//! [`write_aws_snapshot`] writes an `aws/` directory in the layout of
//! docs/snapshot-layout.md, in the exact shapes the AWS CLI prints: IAM
//! authorization details with realistic policies (AWS managed and customer
//! managed attachments, inline policies, group policies, service, vendor and
//! cross-account trust; some documents URL-encoded as the raw API returns
//! them), the credential report, per-user access keys and last-used data,
//! S3 buckets with their settings, and EC2 instances per region. Output is a
//! pure function of the [`AwsSnapshotSpec`] (seeded RNG), so benchmark runs
//! are comparable. Access key ids are fake (`AKIAFAKE…`).

use serde_json::{Value, json};
use std::fmt::Write as _;
use std::io;
use std::path::Path;

/// What to generate.
#[derive(Debug, Clone)]
pub struct AwsSnapshotSpec {
    /// Account id.
    pub account: String,
    /// Number of IAM roles.
    pub roles: usize,
    /// Number of IAM users.
    pub users: usize,
    /// Number of IAM groups.
    pub groups: usize,
    /// Number of customer managed policies.
    pub managed_policies: usize,
    /// Number of S3 buckets.
    pub buckets: usize,
    /// Regions, each with EC2 instances.
    pub regions: Vec<String>,
    /// EC2 instances per region.
    pub instances_per_region: usize,
    /// Seed.
    pub seed: u64,
}

impl Default for AwsSnapshotSpec {
    fn default() -> Self {
        AwsSnapshotSpec {
            account: "123456789012".into(),
            roles: 100,
            users: 50,
            groups: 10,
            managed_policies: 40,
            buckets: 20,
            regions: vec!["us-east-1".into(), "eu-west-1".into()],
            instances_per_region: 20,
            seed: 7,
        }
    }
}

/// Counts of what was written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotStats {
    /// Files written.
    pub files: usize,
    /// Bytes written.
    pub bytes: u64,
    /// Roles.
    pub roles: usize,
    /// Users.
    pub users: usize,
    /// Access keys.
    pub access_keys: usize,
}

/// SplitMix64: small, fast, deterministic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const SERVICES: &[&str] = &[
    "s3",
    "dynamodb",
    "sqs",
    "sns",
    "kms",
    "logs",
    "cloudwatch",
    "lambda",
    "ecr",
    "ecs",
    "secretsmanager",
    "ssm",
    "events",
    "kinesis",
    "states",
    "glue",
    "athena",
    "rds",
    "ec2",
];
const VERBS: &[&str] = &[
    "Get", "List", "Describe", "Put", "Create", "Delete", "Update", "Send", "Receive", "Invoke",
    "Start", "Stop", "Tag", "BatchGet", "Query",
];
const NOUNS: &[&str] = &[
    "Object",
    "Item",
    "Message",
    "Function",
    "Queue",
    "Topic",
    "Secret",
    "Parameter",
    "Key",
    "Table",
    "Image",
    "Task",
    "Stream",
    "Record",
    "Execution",
    "Instance",
    "LogEvents",
];
const MANAGED: &[&str] = &[
    "ReadOnlyAccess",
    "AmazonS3ReadOnlyAccess",
    "AWSLambdaBasicExecutionRole",
    "AmazonSSMManagedInstanceCore",
    "AmazonEKSWorkerNodePolicy",
    "AmazonEKS_CNI_Policy",
    "AmazonEC2ContainerRegistryReadOnly",
    "CloudWatchAgentServerPolicy",
    "SecurityAudit",
    "ViewOnlyAccess",
];
/// Vendor accounts from known_aws_accounts (Datadog, New Relic, Cloudhealth).
const VENDORS: &[&str] = &["464622532012", "754728514883", "454464851268"];

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn action(rng: &mut Rng) -> String {
    let svc = rng.pick(SERVICES);
    match rng.below(10) {
        0 => format!("{svc}:*"),
        1 | 2 => format!("{svc}:{}*", rng.pick(&["Get", "List", "Describe"])),
        _ => format!("{svc}:{}{}", rng.pick(VERBS), rng.pick(NOUNS)),
    }
}

fn resource(rng: &mut Rng, account: &str, svc: &str, n: usize) -> Value {
    if rng.chance(30) {
        return json!("*");
    }
    let id = rng.below(n.max(1));
    let r = match svc {
        "s3" => format!("arn:aws:s3:::bucket-{id}/*"),
        "dynamodb" => format!("arn:aws:dynamodb:us-east-1:{account}:table/table-{id}"),
        "sqs" => format!("arn:aws:sqs:us-east-1:{account}:queue-{id}"),
        "kms" => {
            format!("arn:aws:kms:us-east-1:{account}:key/{id:08x}-aaaa-bbbb-cccc-000000000000")
        }
        "lambda" => format!("arn:aws:lambda:us-east-1:{account}:function:fn-{id}"),
        "secretsmanager" => {
            format!("arn:aws:secretsmanager:us-east-1:{account}:secret:app/{id}-AbCdEf")
        }
        _ => format!("arn:aws:{svc}:us-east-1:{account}:*"),
    };
    json!(r)
}

fn policy_document(rng: &mut Rng, account: &str, statements: usize) -> Value {
    let mut st = Vec::new();
    for i in 0..statements {
        let n = 1 + rng.below(6);
        let actions: Vec<String> = (0..n).map(|_| action(rng)).collect();
        let svc = actions[0].split(':').next().unwrap_or("s3").to_string();
        let mut s = json!({
            "Sid": format!("S{i}"),
            "Effect": if rng.chance(5) { "Deny" } else { "Allow" },
            "Action": actions,
            "Resource": resource(rng, account, &svc, 200),
        });
        if rng.chance(10) {
            s["Condition"] = json!({"StringEquals": {"aws:RequestedRegion": "us-east-1"}});
        }
        st.push(s);
    }
    // A minority of policies hold the risky grants the checks look for.
    match rng.below(40) {
        0 => st.push(json!({"Effect": "Allow", "Action": ["iam:PassRole", "ec2:RunInstances"], "Resource": "*"})),
        1 => st.push(json!({"Effect": "Allow", "Action": "ssm:SendCommand", "Resource": "*"})),
        2 => st.push(json!({"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": "*"})),
        3 => st.push(json!({"Effect": "Allow", "Action": "iam:*", "Resource": "*"})),
        _ => {}
    }
    json!({"Version": "2012-10-17", "Statement": st})
}

/// A document as `get-account-authorization-details` may carry it: an
/// object (the CLI decodes) or, for a tenth, URL-encoded text (raw API).
fn maybe_encoded(rng: &mut Rng, doc: Value) -> Value {
    if rng.chance(10) {
        json!(percent_encode(&doc.to_string()))
    } else {
        doc
    }
}

fn date(rng: &mut Rng, max_days_ago: u64) -> String {
    // Days before 2025-06-01.
    let days = rng.next() % max_days_ago.max(1);
    let base = 20_240; // 2025-06-01 as days since 1970-01-01 (approximately).
    let d = base - days as i64;
    civil(d)
}

/// Days since epoch → `YYYY-MM-DDT12:00:00+00:00`.
fn civil(days: i64) -> String {
    let t = chrono::DateTime::from_timestamp(days * 86_400 + 12 * 3600, 0)
        .expect("generated dates are within chrono's range");
    t.format("%Y-%m-%dT%H:%M:%S+00:00").to_string()
}

fn trust(rng: &mut Rng, account: &str) -> Value {
    let principal_stmt = match rng.below(20) {
        0..=5 => {
            json!({"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"})
        }
        6..=9 => {
            json!({"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"})
        }
        10..=12 => {
            json!({"Effect": "Allow", "Principal": {"Service": ["ecs-tasks.amazonaws.com"]}, "Action": "sts:AssumeRole"})
        }
        13 => {
            let v = rng.pick(VENDORS);
            let mut s = json!({"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{v}:root")}, "Action": "sts:AssumeRole"});
            if rng.chance(70) {
                s["Condition"] = json!({"StringEquals": {"sts:ExternalId": format!("ext-{}", rng.next() % 100_000)}});
            }
            s
        }
        14 => {
            json!({"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{:012}:root", 100_000_000_000u64 + rng.next() % 1_000_000)}, "Action": "sts:AssumeRole"})
        }
        15 => {
            json!({"Effect": "Allow", "Principal": {"Federated": format!("arn:aws:iam::{account}:saml-provider/okta")}, "Action": "sts:AssumeRoleWithSAML", "Condition": {"StringEquals": {"SAML:aud": "https://signin.aws.amazon.com/saml"}}})
        }
        _ => {
            json!({"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{account}:root")}, "Action": "sts:AssumeRole"})
        }
    };
    json!({"Version": "2012-10-17", "Statement": [principal_stmt]})
}

fn attached(rng: &mut Rng, account: &str, customer: usize) -> Vec<Value> {
    let mut v = Vec::new();
    for _ in 0..rng.below(4) {
        if rng.chance(50) && customer > 0 {
            let i = rng.below(customer);
            v.push(json!({"PolicyName": format!("app-policy-{i}"), "PolicyArn": format!("arn:aws:iam::{account}:policy/app-policy-{i}")}));
        } else {
            let name = if rng.chance(1) {
                "AdministratorAccess"
            } else {
                rng.pick(MANAGED)
            };
            let path = if name == "AWSLambdaBasicExecutionRole" {
                "service-role/"
            } else {
                ""
            };
            v.push(json!({"PolicyName": name, "PolicyArn": format!("arn:aws:iam::aws:policy/{path}{name}")}));
        }
    }
    v
}

fn inline(rng: &mut Rng, account: &str) -> Vec<Value> {
    (0..rng.below(3))
        .map(|i| {
            let statements = 2 + rng.below(5);
            let doc = policy_document(rng, account, statements);
            json!({"PolicyName": format!("inline-{i}"), "PolicyDocument": maybe_encoded(rng, doc)})
        })
        .collect()
}

struct Writer {
    stats: SnapshotStats,
}

impl Writer {
    fn write(&mut self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        if let Some(p) = path.parent() {
            std::fs::create_dir_all(p)?;
        }
        std::fs::write(path, bytes)?;
        self.stats.files += 1;
        self.stats.bytes += bytes.len() as u64;
        Ok(())
    }
    fn json(&mut self, path: &Path, v: &Value) -> io::Result<()> {
        self.write(
            path,
            serde_json::to_string_pretty(v).expect("json").as_bytes(),
        )
    }
}

/// Writes `<dir>/aws/` per `spec`.
pub fn write_aws_snapshot(dir: &Path, spec: &AwsSnapshotSpec) -> io::Result<SnapshotStats> {
    let mut rng = Rng(spec.seed);
    let mut w = Writer {
        stats: SnapshotStats::default(),
    };
    let aws = dir.join("aws");
    let acct = spec.account.as_str();
    w.json(&aws.join("sts-get-caller-identity.json"), &json!({"UserId": "AIDAFAKEBENCHAUDITOR", "Account": acct, "Arn": format!("arn:aws:iam::{acct}:user/auditor")}))?;
    w.json(
        &aws.join("organizations-describe-organization.json"),
        &json!({"Organization": {"Id": "o-bench00000", "Arn": "arn:aws:organizations::999999999999:organization/o-bench00000", "FeatureSet": "ALL", "MasterAccountArn": "arn:aws:organizations::999999999999:account/o-bench00000/999999999999", "MasterAccountId": "999999999999", "MasterAccountEmail": "root@example.com"}}),
    )?;

    // Customer managed policies (+ the AWS managed ones attached).
    let mut policies = Vec::new();
    for i in 0..spec.managed_policies {
        let statements = 3 + rng.below(8);
        let doc = policy_document(&mut rng, acct, statements);
        policies.push(json!({
            "PolicyName": format!("app-policy-{i}"), "PolicyId": format!("ANPAFAKE{i:012}"),
            "Arn": format!("arn:aws:iam::{acct}:policy/app-policy-{i}"), "Path": "/", "DefaultVersionId": "v3",
            "AttachmentCount": 1, "PermissionsBoundaryUsageCount": 0, "IsAttachable": true,
            "CreateDate": date(&mut rng, 2000), "UpdateDate": date(&mut rng, 300),
            "PolicyVersionList": [
                {"Document": maybe_encoded(&mut rng, doc), "VersionId": "v3", "IsDefaultVersion": true, "CreateDate": date(&mut rng, 300)},
                {"Document": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}]}, "VersionId": "v2", "IsDefaultVersion": false, "CreateDate": date(&mut rng, 2000)}
            ]
        }));
    }
    policies.push(json!({"PolicyName": "AdministratorAccess", "Arn": "arn:aws:iam::aws:policy/AdministratorAccess", "DefaultVersionId": "v1",
        "PolicyVersionList": [{"Document": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}, "VersionId": "v1", "IsDefaultVersion": true}]}));

    let groups: Vec<Value> = (0..spec.groups)
        .map(|i| {
            json!({"Path": "/", "GroupName": format!("group-{i}"), "GroupId": format!("AGPAFAKE{i:012}"),
                "Arn": format!("arn:aws:iam::{acct}:group/group-{i}"), "CreateDate": date(&mut rng, 2000),
                "GroupPolicyList": inline(&mut rng, acct), "AttachedManagedPolicies": attached(&mut rng, acct, spec.managed_policies)})
        })
        .collect();

    let mut roles = Vec::with_capacity(spec.roles);
    for i in 0..spec.roles {
        let t = trust(&mut rng, acct);
        let trust_doc = maybe_encoded(&mut rng, t);
        let mut r = json!({
            "Path": "/", "RoleName": format!("role-{i}"), "RoleId": format!("AROAFAKE{i:012}"),
            "Arn": format!("arn:aws:iam::{acct}:role/role-{i}"), "CreateDate": date(&mut rng, 2000),
            "AssumeRolePolicyDocument": trust_doc,
            "InstanceProfileList": [], "RolePolicyList": inline(&mut rng, acct),
            "AttachedManagedPolicies": attached(&mut rng, acct, spec.managed_policies),
            "Tags": if rng.chance(30) { json!([{"Key": "team", "Value": format!("team-{}", rng.below(20))}]) } else { json!([]) },
            "RoleLastUsed": {},
        });
        if rng.chance(70) {
            r["RoleLastUsed"] = json!({"LastUsedDate": date(&mut rng, 400), "Region": "us-east-1"});
        }
        roles.push(r);
    }
    w.stats.roles = roles.len();

    let mut users = Vec::with_capacity(spec.users);
    let mut csv = String::from(
        "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated\n",
    );
    let _ = writeln!(
        csv,
        "<root_account>,arn:aws:iam::{acct}:root,2019-01-01T00:00:00+00:00,not_supported,2025-05-01T00:00:00+00:00,not_supported,not_supported,true,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A"
    );
    for i in 0..spec.users {
        let name = format!("user-{i}");
        let arn = format!("arn:aws:iam::{acct}:user/{name}");
        let group_list: Vec<String> = (0..rng.below(3))
            .map(|_| format!("group-{}", rng.below(spec.groups.max(1))))
            .collect();
        users.push(json!({
            "Path": "/", "UserName": name, "UserId": format!("AIDAFAKE{i:012}"), "Arn": arn,
            "CreateDate": date(&mut rng, 2500), "UserPolicyList": inline(&mut rng, acct), "GroupList": group_list,
            "AttachedManagedPolicies": attached(&mut rng, acct, spec.managed_policies), "Tags": [],
        }));
        let console = rng.chance(30);
        let mfa = console && rng.chance(70);
        let nkeys = if console {
            rng.below(2)
        } else {
            1 + rng.below(2)
        };
        let mut meta = Vec::new();
        let mut slots = Vec::new();
        for k in 0..nkeys {
            let id = format!("AKIAFAKE{:012}", i * 2 + k);
            let created = date(&mut rng, 1500);
            let active = rng.chance(85);
            let used = if rng.chance(80) {
                Some(date(&mut rng, 200))
            } else {
                None
            };
            meta.push(json!({"UserName": name, "AccessKeyId": id, "Status": if active { "Active" } else { "Inactive" }, "CreateDate": created}));
            let lu = match &used {
                Some(d) => {
                    json!({"UserName": name, "AccessKeyLastUsed": {"LastUsedDate": d, "ServiceName": "s3", "Region": "us-east-1"}})
                }
                None => {
                    json!({"UserName": name, "AccessKeyLastUsed": {"ServiceName": "N/A", "Region": "N/A"}})
                }
            };
            w.json(
                &aws.join(format!("iam-get-access-key-last-used/{id}.json")),
                &lu,
            )?;
            slots.push(format!(
                "{active},{created},{},{},{}",
                used.as_deref().unwrap_or("N/A"),
                if used.is_some() { "us-east-1" } else { "N/A" },
                if used.is_some() { "s3" } else { "N/A" }
            ));
            w.stats.access_keys += 1;
        }
        while slots.len() < 2 {
            slots.push("false,N/A,N/A,N/A,N/A".into());
        }
        w.json(
            &aws.join(format!("iam-list-access-keys/{name}.json")),
            &json!({"AccessKeyMetadata": meta, "IsTruncated": false}),
        )?;
        let _ = writeln!(
            csv,
            "{name},{arn},2021-01-01T00:00:00+00:00,{console},{},N/A,N/A,{mfa},{},{},false,N/A,false,N/A",
            if console {
                "2025-05-20T00:00:00+00:00"
            } else {
                "N/A"
            },
            slots[0],
            slots[1]
        );
    }
    w.stats.users = users.len();
    w.write(&aws.join("iam-credential-report.csv"), csv.as_bytes())?;
    w.json(
        &aws.join("iam-get-account-authorization-details.json"),
        &json!({"UserDetailList": users, "GroupDetailList": groups, "RoleDetailList": roles, "Policies": policies, "IsTruncated": false}),
    )?;

    // S3.
    let names: Vec<String> = (0..spec.buckets).map(|i| format!("bucket-{i}")).collect();
    w.json(&aws.join("s3api-list-buckets.json"), &json!({"Buckets": names.iter().map(|n| json!({"Name": n, "CreationDate": "2023-01-01T00:00:00+00:00"})).collect::<Vec<_>>(), "Owner": {"ID": "abc"}}))?;
    w.json(&aws.join("s3control-get-public-access-block.json"), &json!({"PublicAccessBlockConfiguration": {"BlockPublicAcls": true, "IgnorePublicAcls": true, "BlockPublicPolicy": true, "RestrictPublicBuckets": false}}))?;
    for n in &names {
        let d = aws.join("s3api").join(n);
        let on = rng.chance(80);
        w.json(&d.join("get-public-access-block.json"), &json!({"PublicAccessBlockConfiguration": {"BlockPublicAcls": on, "IgnorePublicAcls": on, "BlockPublicPolicy": on, "RestrictPublicBuckets": on}}))?;
        let public = rng.chance(5);
        w.json(
            &d.join("get-bucket-policy-status.json"),
            &json!({"PolicyStatus": {"IsPublic": public}}),
        )?;
        w.json(&d.join("get-bucket-acl.json"), &json!({"Owner": {"ID": "abc"}, "Grants": [{"Grantee": {"ID": "abc", "Type": "CanonicalUser"}, "Permission": "FULL_CONTROL"}]}))?;
        w.json(
            &d.join("get-bucket-ownership-controls.json"),
            &json!({"OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}}),
        )?;
        let principal = if public {
            json!("*")
        } else {
            json!({"AWS": format!("arn:aws:iam::{acct}:root")})
        };
        let pol = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": principal, "Action": "s3:GetObject", "Resource": format!("arn:aws:s3:::{n}/*")}]});
        w.json(
            &d.join("get-bucket-policy.json"),
            &json!({"Policy": pol.to_string()}),
        )?;
    }

    // EC2.
    for region in &spec.regions {
        let d = aws.join("regions").join(region);
        let instances: Vec<Value> = (0..spec.instances_per_region)
            .map(|i| {
                json!({"InstanceId": format!("i-{:017x}", rng.next() >> 4), "InstanceType": "t3.micro", "State": {"Code": 16, "Name": "running"},
                    "MetadataOptions": {"State": "applied", "HttpTokens": if rng.chance(30) { "optional" } else { "required" }, "HttpPutResponseHopLimit": 2, "HttpEndpoint": "enabled"},
                    "IamInstanceProfile": {"Arn": format!("arn:aws:iam::{acct}:instance-profile/role-{}", rng.below(spec.roles.max(1))), "Id": format!("AIPAFAKE{i:012}")},
                    "Placement": {"AvailabilityZone": format!("{region}a")}, "Tags": [{"Key": "Name", "Value": format!("web-{i}")}]})
            })
            .collect();
        w.json(&d.join("ec2-describe-instances.json"), &json!({"Reservations": [{"ReservationId": "r-0bench", "OwnerId": acct, "Groups": [], "Instances": instances}]}))?;
        w.json(
            &d.join("ec2-get-instance-metadata-defaults.json"),
            &json!({"AccountLevel": {}}),
        )?;
        w.json(&d.join("eks-list-clusters.json"), &json!({"clusters": []}))?;
    }
    Ok(w.stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_the_layout_deterministically() {
        let a = tempfile_dir("a");
        let b = tempfile_dir("b");
        let spec = AwsSnapshotSpec {
            roles: 30,
            users: 10,
            ..AwsSnapshotSpec::default()
        };
        let sa = write_aws_snapshot(&a, &spec).unwrap();
        let sb = write_aws_snapshot(&b, &spec).unwrap();
        assert_eq!(sa, sb);
        assert_eq!(sa.roles, 30);
        let read = |d: &Path| {
            std::fs::read(d.join("aws/iam-get-account-authorization-details.json")).unwrap()
        };
        assert_eq!(read(&a), read(&b));
        let v: Value = serde_json::from_slice(&read(&a)).unwrap();
        assert_eq!(v["RoleDetailList"].as_array().unwrap().len(), 30);
        assert_eq!(v["UserDetailList"].as_array().unwrap().len(), 10);
        assert!(a.join("aws/iam-credential-report.csv").exists());
        let _ = std::fs::remove_dir_all(&a);
        let _ = std::fs::remove_dir_all(&b);
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil(0), "1970-01-01T12:00:00+00:00");
        assert_eq!(civil(20_240), "2025-06-01T12:00:00+00:00");
    }

    fn tempfile_dir(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!(
            "keytrail-testkit-snap-{}-{tag}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        d
    }
}

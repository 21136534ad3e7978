//! The `keytrail exposure` scenario (owned by the exposure work): AWS keys
//! committed to a git history on known dates, CloudTrail around them in the S3
//! layout, and the account's snapshot (IAM users, their keys and policies, roles,
//! buckets) in the AWS CLI's shapes.
//!
//! Four keys of account 111122223333 (and one of another account) leak:
//! - `used` (user `deploy-bot`, in `.github/workflows/deploy.yml`): used daily
//!   from a CI address before and after the leak; a day after the leak it is used
//!   from an unseen address and client, reads a secret and assumes role
//!   `ops-admin`; that session creates a user and a key and assumes
//!   `data-reader`, whose session reads a bucket (two hops of derived sessions).
//! - `unused` (user `report-job`): used before the leak, never after.
//! - `deleted` (user `old-ci`): used, then deleted (`DeleteAccessKey`) four days
//!   before it leaked; absent from the snapshot's key lists.
//! - `other_account`: a key of account 444455556666, never in the logs.
//!
//! A background role calls every hour, except during [`ExposureScenario::gap`]:
//! the logs have a 36-hour hole after the leaks. Key ids encode their account as
//! AWS key ids do. Everything is fake and generated from a seed.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use crate::cloudtrail::{format_time, write_s3_events};
use crate::secrets::FakeSecrets;

/// 2024-03-04T00:00:00Z (a Monday).
pub const START_MS: i64 = 1_709_510_400_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

/// Epoch ms of day `d` (from [`START_MS`]) at hour `h`.
pub fn at(d: i64, h: i64) -> i64 {
    START_MS + d * DAY + h * HOUR
}

/// The scenario's account.
pub const ACCOUNT: &str = "111122223333";
/// The other account.
pub const OTHER_ACCOUNT: &str = "444455556666";
/// The CI address `used` calls from before and after the leak.
pub const KNOWN_IP: &str = "20.42.10.5";
/// The attacker's address.
pub const ATTACKER_IP: &str = "185.220.101.7";
/// The attacker's user agent.
pub const ATTACKER_UA: &str =
    "Boto3/1.34.1 md/Botocore#1.34.1 ua/2.0 os/linux#6.1.0 md/arch#x86_64 lang/python#3.12.1";
/// The CI user agent.
pub const CI_UA: &str = "aws-cli/2.15.30 Python/3.11.8 Linux/6.5.0-1016-azure exe/x86_64.ubuntu.22 prompt/off command/s3.cp";

/// One leaked key.
#[derive(Debug, Clone)]
pub struct ScenarioKey {
    /// Access key id.
    pub id: String,
    /// Secret access key (fake).
    pub secret: String,
    /// IAM user (empty for the other account's key).
    pub user: String,
    /// When it was committed (epoch ms).
    pub leaked_ms: i64,
    /// Path of the file that leaked it.
    pub path: String,
    /// The commit that introduced it.
    pub commit: String,
}

/// What was generated.
#[derive(Debug, Clone)]
pub struct ExposureScenario {
    /// The git repository.
    pub repo: PathBuf,
    /// The CloudTrail S3 layout root (holds `AWSLogs/`).
    pub trail: PathBuf,
    /// The snapshot directory (holds `aws/`).
    pub snapshot: PathBuf,
    /// The owners file.
    pub owners: PathBuf,
    /// Used after the leak from new networks and through assumed roles.
    pub used: ScenarioKey,
    /// Not used after the leak.
    pub unused: ScenarioKey,
    /// Deleted before it leaked.
    pub deleted: ScenarioKey,
    /// A key of another account.
    pub other_account: ScenarioKey,
    /// The session key `used` got from `AssumeRole` on `ops-admin`.
    pub session1: String,
    /// The session key `session1` got from `AssumeRole` on `data-reader`.
    pub session2: String,
    /// The hole in the logs (epoch ms, from, to).
    pub gap: (i64, i64),
    /// Time of the attacker's first call.
    pub attack_ms: i64,
    /// When `deleted` was deleted.
    pub deleted_at_ms: i64,
}

/// A key id of `prefix` that encodes `account` as AWS key ids do (the account in
/// bits 1–40 of the base32-decoded body, after a zero bit and before 7 more bits).
pub fn key_for_account(prefix: &str, account: u64, fill: u64) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let hi: u128 = (u128::from(account & 0xff_ffff_ffff) << 7) | u128::from(fill & 0x7f);
    let bits: u128 = (hi << 32) | u128::from((fill >> 7) as u32);
    let mut s = String::from(prefix);
    for i in (0..16).rev() {
        s.push(A[((bits >> (i * 5)) & 31) as usize] as char);
    }
    s
}

fn user_identity(account: &str, user: &str, key: &str) -> String {
    json!({
        "type": "IAMUser",
        "principalId": format!("AIDA{}", &key[4..]),
        "arn": format!("arn:aws:iam::{account}:user/{user}"),
        "accountId": account,
        "accessKeyId": key,
        "userName": user,
    })
    .to_string()
}

fn role_identity(account: &str, role: &str, session: &str, key: &str) -> String {
    json!({
        "type": "AssumedRole",
        "principalId": format!("AROA{}:{session}", &key[4..]),
        "arn": format!("arn:aws:sts::{account}:assumed-role/{role}/{session}"),
        "accountId": account,
        "accessKeyId": key,
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "principalId": format!("AROA{}", &key[4..]),
                "arn": format!("arn:aws:iam::{account}:role/{role}"),
                "accountId": account,
                "userName": role,
            },
            "attributes": {"creationDate": "2024-03-01T00:00:00Z", "mfaAuthenticated": "false"}
        }
    })
    .to_string()
}

struct Call<'a> {
    t: i64,
    identity: &'a str,
    source: &'a str,
    name: &'a str,
    ip: &'a str,
    ua: &'a str,
    params: serde_json::Value,
    response: serde_json::Value,
    read_only: bool,
}

fn render(c: &Call<'_>, n: &mut u64) -> (i64, String) {
    *n += 1;
    let rec = format!(
        r#"{{"eventVersion":"1.09","userIdentity":{},"eventTime":"{}","eventSource":"{}","eventName":"{}","awsRegion":"eu-west-1","sourceIPAddress":"{}","userAgent":"{}","requestParameters":{},"responseElements":{},"requestID":"req-{n:08}","eventID":"00000000-0000-4000-8000-{n:012}","readOnly":{},"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"{ACCOUNT}","eventCategory":"Management"}}"#,
        c.identity,
        format_time(c.t),
        c.source,
        c.name,
        c.ip,
        c.ua,
        c.params,
        c.response,
        c.read_only,
    );
    (c.t, rec)
}

fn git(repo: &Path, args: &[&str], date_ms: Option<i64>) -> io::Result<String> {
    let mut cmd = Command::new("git");
    cmd.current_dir(repo)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Dev")
        .env("GIT_AUTHOR_EMAIL", "dev@example.com")
        .env("GIT_COMMITTER_NAME", "Dev")
        .env("GIT_COMMITTER_EMAIL", "dev@example.com");
    if let Some(t) = date_ms {
        let d = format_time(t);
        cmd.env("GIT_AUTHOR_DATE", &d).env("GIT_COMMITTER_DATE", &d);
    }
    let out = cmd.output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn write(path: &Path, text: &str) -> io::Result<()> {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p)?;
    }
    std::fs::write(path, text)
}

/// Generates the scenario under `dir`.
pub fn write_exposure_scenario(dir: &Path, seed: u64) -> io::Result<ExposureScenario> {
    let mut fake = FakeSecrets::new(seed);
    const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let acct: u64 = ACCOUNT.parse().expect("account");
    let other: u64 = OTHER_ACCOUNT.parse().expect("account");
    let mut key =
        |prefix: &str, account: u64, fill: u64, user: &str, leaked_ms: i64, path: &str| {
            ScenarioKey {
                id: key_for_account(prefix, account, fill.wrapping_mul(0x9E37_79B9) ^ seed),
                secret: fake.chars(B64, 40),
                user: user.into(),
                leaked_ms,
                path: path.into(),
                commit: String::new(),
            }
        };
    let mut used = key(
        "AKIA",
        acct,
        11,
        "deploy-bot",
        at(6, 9),
        ".github/workflows/deploy.yml",
    );
    let mut unused = key(
        "AKIA",
        acct,
        22,
        "report-job",
        at(8, 12),
        "scripts/report.env",
    );
    let mut deleted = key("AKIA", acct, 33, "old-ci", at(10, 8), "ci/old.env");
    let mut other_account = key("AKIA", other, 44, "", at(11, 0), "vendor/partner.env");
    let session1 = key_for_account("ASIA", acct, 55 ^ seed);
    let session2 = key_for_account("ASIA", acct, 66 ^ seed);
    let monitor_key = key_for_account("ASIA", acct, 77 ^ seed);
    let admin_key = key_for_account("AKIA", acct, 88 ^ seed);

    // Git history.
    let repo = dir.join("repo");
    std::fs::create_dir_all(&repo)?;
    git(&repo, &["init", "-q", "-b", "main"], None)?;
    write(&repo.join("README.md"), "# deploy tooling\n")?;
    git(&repo, &["add", "-A"], None)?;
    git(&repo, &["commit", "-q", "-m", "initial"], Some(at(-3, 10)))?;
    for k in [&mut used, &mut unused, &mut deleted, &mut other_account] {
        let text = if k.path.ends_with(".yml") {
            format!(
                "name: deploy\non: push\njobs:\n  deploy:\n    runs-on: ubuntu-latest\n    env:\n      AWS_ACCESS_KEY_ID: {}\n      AWS_SECRET_ACCESS_KEY: {}\n    steps:\n      - run: aws s3 cp build/ s3://prod-data/ --recursive\n",
                k.id, k.secret
            )
        } else {
            format!(
                "AWS_ACCESS_KEY_ID={}\nAWS_SECRET_ACCESS_KEY={}\n",
                k.id, k.secret
            )
        };
        write(&repo.join(&k.path), &text)?;
        git(&repo, &["add", "-A"], None)?;
        git(
            &repo,
            &["commit", "-q", "-m", &format!("add {}", k.path)],
            Some(k.leaked_ms),
        )?;
        k.commit = git(&repo, &["rev-parse", "HEAD"], None)?;
    }
    // The workflow file is removed later: the key stays in history only.
    std::fs::remove_file(repo.join(&used.path))?;
    git(&repo, &["add", "-A"], None)?;
    git(&repo, &["commit", "-q", "-m", "use OIDC"], Some(at(12, 9)))?;

    // CloudTrail.
    let gap = (at(16, 0), at(17, 12));
    let mut n = 0u64;
    let mut events = Vec::new();
    let monitor = role_identity(ACCOUNT, "monitor", "i-0abc1234def567890", &monitor_key);
    for h in 0..(20 * 24) {
        let t = START_MS + h * HOUR + 5 * 60_000;
        if t >= gap.0 && t < gap.1 {
            continue;
        }
        events.push(render(
            &Call {
                t,
                identity: &monitor,
                source: "ec2.amazonaws.com",
                name: "DescribeInstances",
                ip: "52.94.1.1",
                ua: "aws-sdk-go-v2/1.26.1 os/linux lang/go#1.22.1",
                params: json!({}),
                response: serde_json::Value::Null,
                read_only: true,
            },
            &mut n,
        ));
    }
    let deploy = user_identity(ACCOUNT, "deploy-bot", &used.id);
    for d in 0..20 {
        let t = at(d, 9) + 30 * 60_000;
        if t >= gap.0 && t < gap.1 {
            continue;
        }
        events.push(render(
            &Call {
                t,
                identity: &deploy,
                source: "s3.amazonaws.com",
                name: "PutObject",
                ip: KNOWN_IP,
                ua: CI_UA,
                params: json!({"bucketName": "prod-data", "key": format!("build/{d}.tar.gz")}),
                response: serde_json::Value::Null,
                read_only: false,
            },
            &mut n,
        ));
    }
    // The attack, a day after the leak.
    let attack_ms = at(7, 2);
    let s1 = role_identity(ACCOUNT, "ops-admin", "x", &session1);
    let s2 = role_identity(ACCOUNT, "data-reader", "y", &session2);
    let m = 60_000;
    let calls = [
        (
            attack_ms,
            &deploy,
            "sts.amazonaws.com",
            "GetCallerIdentity",
            json!({}),
            serde_json::Value::Null,
            true,
        ),
        (
            attack_ms + m,
            &deploy,
            "s3.amazonaws.com",
            "ListBuckets",
            json!({}),
            serde_json::Value::Null,
            true,
        ),
        (
            attack_ms + 2 * m,
            &deploy,
            "secretsmanager.amazonaws.com",
            "GetSecretValue",
            json!({"secretId": "prod/db"}),
            serde_json::Value::Null,
            true,
        ),
        (
            attack_ms + 3 * m,
            &deploy,
            "sts.amazonaws.com",
            "AssumeRole",
            json!({"roleArn": format!("arn:aws:iam::{ACCOUNT}:role/ops-admin"), "roleSessionName": "x"}),
            json!({"credentials": {"accessKeyId": session1, "expiration": "Mar 11, 2024, 3:03:00 AM", "sessionToken": "IQoJb3JpZ2luX2VjEXAMPLEFAKE"}, "assumedRoleUser": {"assumedRoleId": "AROAEXAMPLE:x", "arn": format!("arn:aws:sts::{ACCOUNT}:assumed-role/ops-admin/x")}}),
            false,
        ),
        (
            attack_ms + 5 * m,
            &s1,
            "iam.amazonaws.com",
            "ListUsers",
            json!({}),
            serde_json::Value::Null,
            true,
        ),
        (
            attack_ms + 6 * m,
            &s1,
            "iam.amazonaws.com",
            "CreateUser",
            json!({"userName": "backdoor"}),
            json!({"user": {"userName": "backdoor"}}),
            false,
        ),
        (
            attack_ms + 7 * m,
            &s1,
            "iam.amazonaws.com",
            "CreateAccessKey",
            json!({"userName": "backdoor"}),
            json!({"accessKey": {"userName": "backdoor", "status": "Active"}}),
            false,
        ),
        (
            attack_ms + 8 * m,
            &s1,
            "iam.amazonaws.com",
            "AttachUserPolicy",
            json!({"userName": "backdoor", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}),
            serde_json::Value::Null,
            false,
        ),
        (
            attack_ms + 9 * m,
            &s1,
            "sts.amazonaws.com",
            "AssumeRole",
            json!({"roleArn": format!("arn:aws:iam::{ACCOUNT}:role/data-reader"), "roleSessionName": "y"}),
            json!({"credentials": {"accessKeyId": session2, "expiration": "Mar 11, 2024, 3:09:00 AM", "sessionToken": "IQoJb3JpZ2luX2VjEXAMPLEFAKE2"}}),
            false,
        ),
        (
            attack_ms + 10 * m,
            &s2,
            "s3.amazonaws.com",
            "GetObject",
            json!({"bucketName": "prod-data", "key": "dump/db.sql"}),
            serde_json::Value::Null,
            true,
        ),
    ];
    for (t, id, source, name, params, response, ro) in calls {
        events.push(render(
            &Call {
                t,
                identity: id,
                source,
                name,
                ip: ATTACKER_IP,
                ua: ATTACKER_UA,
                params,
                response,
                read_only: ro,
            },
            &mut n,
        ));
    }
    let report = user_identity(ACCOUNT, "report-job", &unused.id);
    for d in 0..8 {
        events.push(render(
            &Call {
                t: at(d, 12) - 30 * 60_000,
                identity: &report,
                source: "s3.amazonaws.com",
                name: "GetObject",
                ip: "52.94.10.20",
                ua: "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#5.10.213 lang/python#3.11.8",
                params: json!({"bucketName": "reports", "key": format!("daily/{d}.csv")}),
                response: serde_json::Value::Null,
                read_only: true,
            },
            &mut n,
        ));
    }
    let old = user_identity(ACCOUNT, "old-ci", &deleted.id);
    for d in 0..3 {
        events.push(render(
            &Call {
                t: at(d, 15),
                identity: &old,
                source: "s3.amazonaws.com",
                name: "PutObject",
                ip: "20.42.30.7",
                ua: CI_UA,
                params: json!({"bucketName": "ci-artifacts", "key": format!("b/{d}")}),
                response: serde_json::Value::Null,
                read_only: false,
            },
            &mut n,
        ));
    }
    let deleted_at_ms = at(4, 10);
    let admin = user_identity(ACCOUNT, "admin", &admin_key);
    events.push(render(
        &Call {
            t: deleted_at_ms,
            identity: &admin,
            source: "iam.amazonaws.com",
            name: "DeleteAccessKey",
            ip: "79.192.20.30",
            ua: "aws-cli/2.15.30 Python/3.11.8 Darwin/23.4.0",
            params: json!({"userName": "old-ci", "accessKeyId": deleted.id}),
            response: serde_json::Value::Null,
            read_only: false,
        },
        &mut n,
    ));
    let trail = dir.join("trail");
    write_s3_events(&events, ACCOUNT, None, &trail, seed)?;

    // Snapshot.
    let snapshot = dir.join("snapshot");
    let aws = snapshot.join("aws");
    let user = |name: &str, policy: serde_json::Value| {
        json!({
            "Path": "/", "UserName": name, "UserId": format!("AIDA{name}"),
            "Arn": format!("arn:aws:iam::{ACCOUNT}:user/{name}"),
            "CreateDate": "2024-01-02T00:00:00+00:00",
            "UserPolicyList": [{"PolicyName": format!("{name}-policy"), "PolicyDocument": policy}],
            "GroupList": [], "AttachedManagedPolicies": [], "Tags": []
        })
    };
    let trust_account = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT}:root")}, "Action": "sts:AssumeRole"}]});
    let auth = json!({
        "UserDetailList": [
            user("deploy-bot", json!({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:ListBucket"], "Resource": ["arn:aws:s3:::prod-data", "arn:aws:s3:::prod-data/*"]},
                {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": format!("arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:prod/*")},
                {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": format!("arn:aws:iam::{ACCOUNT}:role/ops-admin")}
            ]})),
            user("report-job", json!({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": ["arn:aws:s3:::reports", "arn:aws:s3:::reports/*"]}
            ]})),
            user("admin", json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})),
        ],
        "GroupDetailList": [],
        "RoleDetailList": [
            {"Path": "/", "RoleName": "ops-admin", "RoleId": "AROAOPSADMIN", "Arn": format!("arn:aws:iam::{ACCOUNT}:role/ops-admin"),
             "CreateDate": "2024-01-02T00:00:00+00:00", "AssumeRolePolicyDocument": trust_account,
             "InstanceProfileList": [], "RolePolicyList": [],
             "AttachedManagedPolicies": [{"PolicyName": "AdministratorAccess", "PolicyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}],
             "Tags": [], "RoleLastUsed": {}},
            {"Path": "/", "RoleName": "data-reader", "RoleId": "AROADATAREADER", "Arn": format!("arn:aws:iam::{ACCOUNT}:role/data-reader"),
             "CreateDate": "2024-01-02T00:00:00+00:00", "AssumeRolePolicyDocument": trust_account,
             "InstanceProfileList": [], "AttachedManagedPolicies": [], "Tags": [], "RoleLastUsed": {},
             "RolePolicyList": [{"PolicyName": "read", "PolicyDocument": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::prod-data/*"}]}}]}
        ],
        "Policies": []
    });
    write(&aws.join("sts-get-caller-identity.json"), &json!({"UserId": "AIDAAUDITOR", "Account": ACCOUNT, "Arn": format!("arn:aws:iam::{ACCOUNT}:user/auditor")}).to_string())?;
    write(
        &aws.join("iam-get-account-authorization-details.json"),
        &serde_json::to_string_pretty(&auth).expect("json"),
    )?;
    for (u, keys) in [
        ("deploy-bot", vec![&used]),
        ("report-job", vec![&unused]),
        ("admin", vec![]),
    ] {
        let meta: Vec<_> = keys
            .iter()
            .map(|k| json!({"UserName": u, "AccessKeyId": k.id, "Status": "Active", "CreateDate": "2024-01-02T00:00:00+00:00"}))
            .collect();
        write(
            &aws.join(format!("iam-list-access-keys/{u}.json")),
            &json!({"AccessKeyMetadata": meta}).to_string(),
        )?;
    }
    write(
        &aws.join("s3api-list-buckets.json"),
        &json!({"Buckets": [
            {"Name": "ci-artifacts", "CreationDate": "2024-01-02T00:00:00+00:00"},
            {"Name": "prod-data", "CreationDate": "2024-01-02T00:00:00+00:00"},
            {"Name": "reports", "CreationDate": "2024-01-02T00:00:00+00:00"}
        ], "Owner": {"DisplayName": "owner", "ID": "abc"}})
        .to_string(),
    )?;
    let owners = dir.join("keytrail.owners.yaml");
    write(
        &owners,
        &format!(
            "version: 1\nidentities:\n  - arn: arn:aws:iam::{ACCOUNT}:user/deploy-bot\n    owner: platform-team\n    purpose: CI deploys to production\n    environment: prod\n"
        ),
    )?;
    Ok(ExposureScenario {
        repo,
        trail,
        snapshot,
        owners,
        used,
        unused,
        deleted,
        other_account,
        session1,
        session2,
        gap,
        attack_ms,
        deleted_at_ms,
    })
}

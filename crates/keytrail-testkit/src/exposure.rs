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

/// A new repository `dir/repo` with a README committed before the
/// scenario starts.
fn new_repo(dir: &Path, readme: &str) -> io::Result<PathBuf> {
    let repo = dir.join("repo");
    std::fs::create_dir_all(&repo)?;
    git(&repo, &["init", "-q", "-b", "main"], None)?;
    write(&repo.join("README.md"), readme)?;
    git(&repo, &["add", "-A"], None)?;
    git(&repo, &["commit", "-q", "-m", "initial"], Some(at(-3, 10)))?;
    Ok(repo)
}

/// Commit `text` as the file that leaks `k`, dated its leak time; the
/// commit is recorded in `k`.
fn commit_key(repo: &Path, k: &mut ScenarioKey, text: &str) -> io::Result<()> {
    write(&repo.join(&k.path), text)?;
    git(repo, &["add", "-A"], None)?;
    git(
        repo,
        &["commit", "-q", "-m", &format!("add {}", k.path)],
        Some(k.leaked_ms),
    )?;
    k.commit = git(repo, &["rev-parse", "HEAD"], None)?;
    Ok(())
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
    let repo = new_repo(dir, "# deploy tooling\n")?;
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
        commit_key(&repo, k, &text)?;
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

/// The Google Cloud project of [`write_gcp_exposure_scenario`] (the one the
/// audit-log generator writes).
pub const GCP_PROJECT: &str = crate::cloudlogs::PROJECT;
/// A project the snapshot does not describe.
pub const GCP_OTHER_PROJECT: &str = "vendor-proj-9";

/// The service account e-mail of `name` in `project`.
pub fn gcp_sa(name: &str, project: &str) -> String {
    format!("{name}@{project}.iam.gserviceaccount.com")
}

/// What [`write_gcp_exposure_scenario`] generated.
#[derive(Debug, Clone)]
pub struct GcpExposureScenario {
    /// The git repository with the key files in its history.
    pub repo: PathBuf,
    /// The audit logs, as a Cloud Storage log sink writes them
    /// (`cloudaudit.googleapis.com/{activity,data_access}/YYYY/MM/DD/…_S0.json`).
    pub logs: PathBuf,
    /// The snapshot directory (holds `gcp/<project>/`).
    pub snapshot: PathBuf,
    /// The owners file.
    pub owners: PathBuf,
    /// Used after the leak from a new network (`user` is its e-mail).
    pub used: ScenarioKey,
    /// Used before the leak only; its file has sorted keys (`jq -S`).
    pub unused: ScenarioKey,
    /// Deleted before it leaked.
    pub deleted: ScenarioKey,
    /// A key of a project the snapshot does not describe.
    pub other_project: ScenarioKey,
    /// Time of the attacker's first call.
    pub attack_ms: i64,
    /// When `deleted` was deleted.
    pub deleted_at_ms: i64,
}

/// A service-account key file as the console downloads it, or with its
/// members sorted (`jq -S`, Terraform's `jsonencode`).
fn gcp_key_file(k: &ScenarioKey, project: &str, sorted: bool) -> String {
    let pem = k.secret.replace('\n', "\\n");
    let email = &k.user;
    let mut members = vec![
        ("type", "service_account".to_string()),
        ("project_id", project.to_string()),
        ("private_key_id", k.id.clone()),
        ("private_key", pem),
        ("client_email", email.clone()),
        ("client_id", "104729384756102938475".to_string()),
        (
            "auth_uri",
            "https://accounts.google.com/o/oauth2/auth".into(),
        ),
        ("token_uri", "https://oauth2.googleapis.com/token".into()),
        (
            "auth_provider_x509_cert_url",
            "https://www.googleapis.com/oauth2/v1/certs".into(),
        ),
        ("universe_domain", "googleapis.com".into()),
    ];
    if sorted {
        members.sort_by(|a, b| a.0.cmp(b.0));
    }
    let body: Vec<String> = members
        .iter()
        .map(|(k, v)| format!("  \"{k}\": \"{v}\""))
        .collect();
    format!("{{\n{}\n}}\n", body.join(",\n"))
}

/// Generates the Google Cloud exposure scenario under `dir`: four
/// service-account keys committed on known dates, a month of audit logs
/// around them in the layout of a Cloud Storage sink, and the project's
/// snapshot as `keytrail collect gcp` writes it.
pub fn write_gcp_exposure_scenario(dir: &Path, seed: u64) -> io::Result<GcpExposureScenario> {
    use rand::SeedableRng;
    let mut fake = FakeSecrets::new(seed);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    const HEX: &[u8] = b"0123456789abcdef";
    let mut key = |sa: &str, project: &str, leaked_ms: i64, path: &str| ScenarioKey {
        id: fake.chars(HEX, 40),
        secret: fake.pem_pkcs8_private_key(),
        user: gcp_sa(sa, project),
        leaked_ms,
        path: path.into(),
        commit: String::new(),
    };
    let p = GCP_PROJECT;
    let mut used = key("deployer", p, at(6, 9), "deploy/gcp-sa.json");
    let mut unused = key("reporter", p, at(8, 12), "terraform/reporter-key.json");
    let mut deleted = key("old-ci", p, at(10, 8), "ci/old-sa.json");
    let mut other_project = key(
        "partner",
        GCP_OTHER_PROJECT,
        at(11, 0),
        "vendor/partner-sa.json",
    );

    // Git history.
    let repo = new_repo(dir, "# data pipelines\n")?;
    for (k, project) in [
        (&mut used, p),
        (&mut unused, p),
        (&mut deleted, p),
        (&mut other_project, GCP_OTHER_PROJECT),
    ] {
        let sorted = k.path.starts_with("terraform/");
        let text = gcp_key_file(k, project, sorted);
        commit_key(&repo, k, &text)?;
    }
    std::fs::remove_file(repo.join(&used.path))?;
    git(&repo, &["add", "-A"], None)?;
    git(&repo, &["commit", "-q", "-m", "use WIF"], Some(at(12, 9)))?;

    // Audit logs: (time, entry, data access?).
    let gcloud =
        "google-cloud-sdk gcloud/460.0.0 command/gcloud.storage.cp invocation-id/1 environment/GCE";
    let mut entries: Vec<(i64, serde_json::Value, bool)> = Vec::new();
    let mut add = |rng: &mut rand::rngs::StdRng,
                   t: i64,
                   who: &str,
                   key: Option<&str>,
                   ip: &str,
                   ua: &str,
                   service: &str,
                   method: &str,
                   resource: &str,
                   request: serde_json::Value,
                   data: bool| {
        let mut e = crate::cloudlogs::gcp_entry(
            rng,
            t,
            who,
            key,
            ip,
            service,
            method,
            resource,
            request,
            serde_json::Value::Null,
            data,
        );
        e["protoPayload"]["requestMetadata"]["callerSuppliedUserAgent"] = json!(ua);
        entries.push((t, e, data));
    };
    // An attached service account every hour: the logs have no gap.
    let monitor = gcp_sa("monitor", p);
    for h in 0..(20 * 24) {
        let t = START_MS + h * HOUR + 5 * 60_000;
        add(
            &mut rng,
            t,
            &monitor,
            None,
            "gce-internal-ip",
            "google-api-go-client/0.5 gce",
            "compute.googleapis.com",
            "v1.compute.instances.list",
            &format!("projects/{p}/zones/us-central1-a/instances"),
            serde_json::Value::Null,
            true,
        );
    }
    // The deployer's key, from CI every day.
    for d in 0..20 {
        let t = at(d, 9) + 30 * 60_000;
        add(
            &mut rng,
            t,
            &used.user,
            Some(&used.id),
            KNOWN_IP,
            gcloud,
            "storage.googleapis.com",
            "storage.objects.create",
            &format!("projects/_/buckets/{p}-builds/objects/build-{d}.tar.gz"),
            serde_json::Value::Null,
            true,
        );
    }
    // The reporter's key, before its leak only.
    for d in 0..6 {
        add(
            &mut rng,
            at(d, 6),
            &unused.user,
            Some(&unused.id),
            KNOWN_IP,
            gcloud,
            "bigquery.googleapis.com",
            "google.cloud.bigquery.v2.JobService.InsertJob",
            &format!("projects/{p}/jobs/report-{d}"),
            serde_json::Value::Null,
            true,
        );
    }
    // The attack, a day after the leak, from a hosting network.
    let attack_ms = at(7, 2);
    let attacker_ua = "python-requests/2.31.0";
    add(
        &mut rng,
        attack_ms,
        &used.user,
        Some(&used.id),
        ATTACKER_IP,
        attacker_ua,
        "storage.googleapis.com",
        "storage.objects.list",
        &format!("projects/_/buckets/{p}-data"),
        serde_json::Value::Null,
        true,
    );
    add(
        &mut rng,
        attack_ms + 60_000,
        &used.user,
        Some(&used.id),
        ATTACKER_IP,
        attacker_ua,
        "storage.googleapis.com",
        "storage.objects.get",
        &format!("projects/_/buckets/{p}-data/objects/customers.csv"),
        serde_json::Value::Null,
        true,
    );
    add(
        &mut rng,
        attack_ms + 120_000,
        &used.user,
        Some(&used.id),
        ATTACKER_IP,
        attacker_ua,
        "iam.googleapis.com",
        "google.iam.admin.v1.CreateServiceAccountKey",
        &format!("projects/-/serviceAccounts/{}", used.user),
        json!({"name": format!("projects/-/serviceAccounts/{}", used.user), "@type": "type.googleapis.com/google.iam.admin.v1.CreateServiceAccountKeyRequest"}),
        false,
    );
    // The old CI key, deleted by an admin before it leaked.
    let deleted_at_ms = at(3, 0);
    let name = format!(
        "projects/-/serviceAccounts/{}/keys/{}",
        deleted.user, deleted.id
    );
    add(
        &mut rng,
        deleted_at_ms,
        "admin@example.com",
        None,
        "198.51.100.20",
        "Mozilla/5.0 (X11; Linux x86_64)",
        "iam.googleapis.com",
        "google.iam.admin.v1.DeleteServiceAccountKey",
        &name,
        json!({"name": name, "@type": "type.googleapis.com/google.iam.admin.v1.DeleteServiceAccountKeyRequest"}),
        false,
    );
    entries.sort_by_key(|e| e.0);
    let logs = dir.join("gcp-audit");
    let mut files: std::collections::BTreeMap<PathBuf, String> = Default::default();
    for (t, e, data) in &entries {
        let day = &format_time(*t)[..10];
        let log = if *data { "data_access" } else { "activity" };
        let path = logs
            .join("cloudaudit.googleapis.com")
            .join(log)
            .join(day.replace('-', "/"))
            .join("00:00:00_23:59:59_S0.json");
        let f = files.entry(path).or_default();
        f.push_str(&e.to_string());
        f.push('\n');
    }
    for (path, text) in &files {
        write(path, text)?;
    }

    // The snapshot, as `keytrail collect gcp` writes it.
    let snap = dir.join("snapshot").join("gcp").join(p);
    let member = |sa: &str| format!("serviceAccount:{sa}");
    write(
        &snap.join("projects-get-iam-policy.json"),
        &json!({"bindings": [
            {"role": "roles/editor", "members": [member(&used.user)]},
            {"role": "roles/iam.serviceAccountTokenCreator", "members": [member(&used.user)]},
            {"role": "roles/bigquery.jobUser", "members": [member(&unused.user)]},
            {"role": "roles/viewer", "members": [member(&unused.user), member(&monitor)]}
        ], "etag": "BwX1", "version": 1})
        .to_string(),
    )?;
    let accounts: Vec<serde_json::Value> = [&used.user, &unused.user, &deleted.user, &monitor]
        .iter()
        .enumerate()
        .map(|(i, e)| {
            json!({"email": e, "name": format!("projects/{p}/serviceAccounts/{e}"),
                   "uniqueId": format!("10{i}4729384756102938"), "projectId": p,
                   "displayName": e.split('@').next()})
        })
        .collect();
    write(
        &snap.join("iam-service-accounts-list.json"),
        &serde_json::Value::Array(accounts).to_string(),
    )?;
    let key_entry = |sa: &str, id: &str, kind: &str, created: i64| {
        json!({"keyAlgorithm": "KEY_ALG_RSA_2048", "keyOrigin": "GOOGLE_PROVIDED", "keyType": kind,
               "name": format!("projects/{p}/serviceAccounts/{sa}/keys/{id}"),
               "validAfterTime": format_time(created),
               "validBeforeTime": "9999-12-31T23:59:59Z"})
    };
    let keys_dir = snap.join("iam-service-accounts-keys-list");
    write(
        &keys_dir.join(format!("{}.json", used.user)),
        &json!([
            key_entry(&used.user, &used.id, "USER_MANAGED", at(-30, 0)),
            key_entry(
                &used.user,
                "0f0e0d0c0b0a09080706050403020100ffeeddcc",
                "SYSTEM_MANAGED",
                at(-2, 0)
            )
        ])
        .to_string(),
    )?;
    write(
        &keys_dir.join(format!("{}.json", unused.user)),
        &json!([key_entry(
            &unused.user,
            &unused.id,
            "USER_MANAGED",
            at(-60, 0)
        )])
        .to_string(),
    )?;
    for sa in [&deleted.user, &monitor] {
        write(&keys_dir.join(format!("{sa}.json")), "[]")?;
    }
    let owners = dir.join("keytrail.owners.yaml");
    write(
        &owners,
        &format!(
            "version: 1\nidentities:\n  - arn: projects/{p}/serviceAccounts/{}\n    owner: data-platform\n    purpose: CI uploads builds\n    environment: prod\n",
            used.user
        ),
    )?;
    Ok(GcpExposureScenario {
        repo,
        logs,
        snapshot: dir.join("snapshot"),
        owners,
        used,
        unused,
        deleted,
        other_project,
        attack_ms,
        deleted_at_ms,
    })
}

/// What [`write_azure_exposure_scenario`] generated.
#[derive(Debug, Clone)]
pub struct AzureExposureScenario {
    /// The git repository with the secrets in its history.
    pub repo: PathBuf,
    /// Entra ID service-principal sign-ins, one Graph JSON page per day.
    pub logs: PathBuf,
    /// The snapshot directory (holds `azure/`).
    pub snapshot: PathBuf,
    /// The owners file.
    pub owners: PathBuf,
    /// The tenant.
    pub tenant: String,
    /// `deploy-automation`'s application id.
    pub app: String,
    /// `report-runner`'s application id.
    pub other_app: String,
    /// Used after the leak from a new network (`id` is its Graph `keyId`).
    pub used: ScenarioKey,
    /// Used before its leak only (`report-runner`).
    pub unused: ScenarioKey,
    /// Removed from its application before the snapshot (no listed secret
    /// has its hint); `id` is empty.
    pub removed: ScenarioKey,
    /// A secret with no application id next to it; `id` is empty.
    pub bare: ScenarioKey,
    /// Time of the attacker's first sign-in.
    pub attack_ms: i64,
}

/// Generates the Entra ID exposure scenario under `dir`: client secrets
/// committed on known dates (three next to their application and tenant
/// ids, one alone), the tenant's applications with each secret's `keyId`
/// and `hint` as Graph lists them, role assignments, and a month of
/// service-principal sign-ins.
pub fn write_azure_exposure_scenario(dir: &Path, seed: u64) -> io::Result<AzureExposureScenario> {
    use crate::secrets::{ALNUM, BASE64URL, DIGITS, HEX};
    use rand::SeedableRng;
    let mut fake = FakeSecrets::new(seed);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let guid = |f: &mut FakeSecrets| {
        format!(
            "{}-{}-4{}-8{}-{}",
            f.chars(HEX, 8),
            f.chars(HEX, 4),
            f.chars(HEX, 3),
            f.chars(HEX, 3),
            f.chars(HEX, 12)
        )
    };
    let tenant = guid(&mut fake);
    let app = guid(&mut fake);
    let other_app = guid(&mut fake);
    let sp = guid(&mut fake);
    let other_sp = guid(&mut fake);
    let monitor_sp = guid(&mut fake);
    let subscription = guid(&mut fake);
    let secret = |f: &mut FakeSecrets| {
        format!(
            "{}{}Q~{}",
            f.chars(ALNUM, 3),
            f.chars(DIGITS, 1),
            f.chars(BASE64URL, 34)
        )
    };
    let key =
        |f: &mut FakeSecrets, id: String, user: &str, leaked_ms: i64, path: &str| ScenarioKey {
            id,
            secret: secret(f),
            user: user.into(),
            leaked_ms,
            path: path.into(),
            commit: String::new(),
        };
    let k1 = guid(&mut fake);
    let k2 = guid(&mut fake);
    let mut used = key(&mut fake, k1, "deploy-automation", at(6, 9), "deploy/.env");
    let mut unused = key(
        &mut fake,
        k2,
        "report-runner",
        at(8, 12),
        "reports/settings.json",
    );
    let mut removed = key(
        &mut fake,
        String::new(),
        "deploy-automation",
        at(10, 8),
        "old/azure.env",
    );
    let mut bare = key(&mut fake, String::new(), "", at(11, 0), "notes/todo.md");

    // Git history.
    let repo = new_repo(dir, "# automation\n")?;
    for k in [&mut used, &mut unused, &mut removed, &mut bare] {
        let owner_app = if k.user == "report-runner" {
            &other_app
        } else {
            &app
        };
        let text = if k.path.ends_with(".json") {
            format!(
                "{{\n  \"appId\": \"{owner_app}\",\n  \"displayName\": \"report-runner\",\n  \"password\": \"{}\",\n  \"tenant\": \"{tenant}\"\n}}\n",
                k.secret
            )
        } else if k.path.ends_with(".md") {
            format!("# todo\n\n- rotate the old secret {} someday\n", k.secret)
        } else {
            format!(
                "AZURE_CLIENT_ID={owner_app}\nAZURE_TENANT_ID={tenant}\nAZURE_CLIENT_SECRET={}\n",
                k.secret
            )
        };
        commit_key(&repo, k, &text)?;
    }

    // Sign-ins: (time, record).
    let mut signins: Vec<(i64, serde_json::Value)> = Vec::new();
    let monitor_key = guid(&mut fake);
    for h in 0..(20 * 24) {
        let t = START_MS + h * HOUR + 5 * 60_000;
        let v = crate::cloudlogs::entra_sign_in(
            &mut rng,
            t,
            None,
            Some((&monitor_sp, "monitoring", &monitor_key)),
            "52.160.10.10",
            "US",
            "none",
        );
        signins.push((t, v));
    }
    for d in 0..20 {
        let t = at(d, 9) + 30 * 60_000;
        signins.push((
            t,
            crate::cloudlogs::entra_sign_in(
                &mut rng,
                t,
                None,
                Some((&sp, "deploy-automation", &used.id)),
                KNOWN_IP,
                "US",
                "none",
            ),
        ));
    }
    for d in 0..6 {
        let t = at(d, 6);
        signins.push((
            t,
            crate::cloudlogs::entra_sign_in(
                &mut rng,
                t,
                None,
                Some((&other_sp, "report-runner", &unused.id)),
                KNOWN_IP,
                "US",
                "none",
            ),
        ));
    }
    let attack_ms = at(7, 2);
    for i in 0..3 {
        let t = attack_ms + i * 600_000;
        // Entra writes the key id in upper case at times.
        signins.push((
            t,
            crate::cloudlogs::entra_sign_in(
                &mut rng,
                t,
                None,
                Some((&sp, "deploy-automation", &used.id.to_ascii_uppercase())),
                ATTACKER_IP,
                "NL",
                "none",
            ),
        ));
    }
    signins.sort_by_key(|s| s.0);
    let logs = dir.join("entra-signins");
    let mut days: std::collections::BTreeMap<String, Vec<serde_json::Value>> = Default::default();
    for (t, v) in signins {
        days.entry(format_time(t)[..10].to_string())
            .or_default()
            .push(v);
    }
    for (day, v) in days {
        write(
            &logs.join(format!("signins-{day}.json")),
            &json!({"@odata.context": "https://graph.microsoft.com/beta/$metadata#auditLogs/signIns", "value": v}).to_string(),
        )?;
    }

    // The snapshot, as `keytrail collect azure` writes it.
    let az = dir.join("snapshot").join("azure");
    let cred = |k: &ScenarioKey, name: &str, start: i64| {
        json!({"customKeyIdentifier": null, "displayName": name, "endDateTime": "2099-01-01T00:00:00Z",
               "hint": &k.secret[..3], "keyId": k.id, "secretText": null, "startDateTime": format_time(start)})
    };
    // Another secret of the used application, still listed.
    let hint = if removed.secret.starts_with("Zz9") {
        "Yy8"
    } else {
        "Zz9"
    };
    let spare = ScenarioKey {
        id: guid(&mut fake),
        secret: format!("{hint}{}", &removed.secret[3..]),
        ..removed.clone()
    };
    write(
        &az.join("graph-applications.json"),
        &json!({"value": [
            {"id": guid(&mut fake), "appId": app, "displayName": "deploy-automation",
             "createdDateTime": format_time(at(-90, 0)),
             "passwordCredentials": [cred(&used, "ci", at(-30, 0)), cred(&spare, "spare", at(-20, 0))],
             "keyCredentials": []},
            {"id": guid(&mut fake), "appId": other_app, "displayName": "report-runner",
             "createdDateTime": format_time(at(-90, 0)),
             "passwordCredentials": [cred(&unused, "reports", at(-60, 0))],
             "keyCredentials": []}
        ]})
        .to_string(),
    )?;
    write(
        &az.join("graph-service-principals.json"),
        &json!({"value": [
            {"id": sp, "appId": app, "displayName": "deploy-automation", "servicePrincipalType": "Application", "appOwnerOrganizationId": tenant},
            {"id": other_sp, "appId": other_app, "displayName": "report-runner", "servicePrincipalType": "Application", "appOwnerOrganizationId": tenant}
        ]})
        .to_string(),
    )?;
    write(
        &az.join("role-assignment-list.json"),
        &json!([
            {"id": format!("/subscriptions/{subscription}/providers/Microsoft.Authorization/roleAssignments/{}", guid(&mut fake)),
             "principalId": sp, "principalType": "ServicePrincipal", "roleDefinitionName": "Contributor",
             "scope": format!("/subscriptions/{subscription}")},
            {"id": format!("/subscriptions/{subscription}/providers/Microsoft.Authorization/roleAssignments/{}", guid(&mut fake)),
             "principalId": other_sp, "principalType": "ServicePrincipal", "roleDefinitionName": "Reader",
             "scope": format!("/subscriptions/{subscription}/resourceGroups/reports")}
        ])
        .to_string(),
    )?;
    let owners = dir.join("keytrail.owners.yaml");
    write(
        &owners,
        &format!(
            "version: 1\nidentities:\n  - arn: entra:application/{app}\n    owner: cloud-platform\n    purpose: deploys to the production subscription\n    environment: prod\n"
        ),
    )?;
    Ok(AzureExposureScenario {
        repo,
        logs,
        snapshot: dir.join("snapshot"),
        owners,
        tenant,
        app,
        other_app,
        used,
        unused,
        removed,
        bare,
        attack_ms,
    })
}

//! The replacement plan: every branch chosen from how the key is really used
//! (user agents and source addresses as CloudTrail records them, and the CI file
//! it leaked from), and the long-lived count.

use std::sync::Arc;

use keytrail_detect::Event;
use keytrail_detect::ipintel::IpIntel;
use keytrail_exposure::leaks::{CredentialKind, Leak, Place};
use keytrail_exposure::plan;
use keytrail_exposure::usage::Tracker;

const LEAK: i64 = 1_709_510_400_000; // 2024-03-04T00:00:00Z

fn ev(t: i64, key: &str, ip: &str, ua: &str) -> Event {
    let time = keytrail_testkit::cloudtrail::format_time(t);
    Event::parse_str(&format!(
        r#"{{"eventVersion":"1.09","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/{key}","accountId":"111122223333","accessKeyId":"{key}"}},"eventTime":"{time}","eventSource":"s3.amazonaws.com","eventName":"ListBuckets","awsRegion":"us-east-1","sourceIPAddress":"{ip}","userAgent":"{ua}","requestParameters":null,"responseElements":null,"eventID":"e","eventType":"AwsApiCall"}}"#
    ))
    .expect("event")
}

fn leak(id: &str, kind: CredentialKind, path: &str) -> Leak {
    Leak {
        credential_id: id.into(),
        kind,
        principal: None,
        account: None,
        rule_ids: vec![],
        fingerprints: vec![],
        secret_redacted: "AKIA…".into(),
        leaked_at_ms: Some(LEAK),
        leaked_at_from: None,
        leaked_where: vec![Place {
            source: "git".into(),
            path: path.into(),
            line: 3,
            time: None,
            repository: Some("https://gitlab.example.com/acme/payments.git".into()),
            commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
            image: None,
            layer: None,
            time_ms: Some(LEAK),
        }],
        notes: vec![],
    }
}

#[test]
fn each_use_gets_its_replacement() {
    // (key id, user agent, source address, file it leaked from, expected replacement, expected marker)
    let cases = [
        (
            "AKIAGITLABAAAAAAAAAA",
            "aws-cli/2.15.30 Python/3.11.8 Linux/6.5.0 exe/x86_64.ubuntu.22 gitlab-runner",
            "34.74.90.1",
            "deploy/config.env",
            "gitlab-oidc-role",
            "gitlab-ci",
        ),
        (
            "AKIAGITLABFILEAAAAAA",
            "aws-cli/2.15.30 Python/3.11.8 Linux/6.5.0",
            "34.74.90.2",
            ".gitlab-ci.yml",
            "gitlab-oidc-role",
            "gitlab-ci",
        ),
        (
            "AKIALAMBDAAAAAAAAAAA",
            "Boto3/1.34.34 md/Botocore#1.34.34 ua/2.0 os/linux#5.10 lang/python#3.12.1 exec-env/AWS_Lambda_python3.12",
            "3.120.5.1",
            "src/handler.py",
            "lambda-execution-role",
            "lambda",
        ),
        (
            "AKIAECSAAAAAAAAAAAAA",
            "aws-sdk-java/2.25.6 Linux/5.10 OpenJDK_64-Bit_Server_VM/17 exec-env/AWS_ECS_FARGATE",
            "3.120.5.2",
            "app/application.yml",
            "ecs-task-role",
            "ecs",
        ),
        (
            "AKIAEKSAAAAAAAAAAAAA",
            "aws-sdk-go-v2/1.24.1 os/linux lang/go#1.21 md/GOOS#linux app/kubernetes-external-secrets",
            "3.120.5.3",
            "charts/values.yaml",
            "eks-pod-identity",
            "eks",
        ),
        (
            "AKIAEC2PRIVATEAAAAAA",
            "aws-cli/2.15.30 Python/3.11.8 Linux/6.1.0 exe/x86_64.amzn.2023",
            "10.20.3.4",
            "scripts/backup.sh",
            "ec2-instance-profile",
            "ec2-private",
        ),
        (
            "AKIAOUTSIDEAAAAAAAAA",
            "aws-cli/2.15.30 Python/3.11.8 Darwin/23.1.0",
            "198.51.100.7",
            "notes.txt",
            "iam-roles-anywhere",
            "public-address",
        ),
        (
            "AKIANEVERUSEDAAAAAAA",
            "",
            "",
            "old/.env",
            "delete-unused-key",
            "unused",
        ),
    ];
    let keys = cases
        .iter()
        .map(|c| (c.0.to_string(), Some(LEAK), true))
        .collect();
    let mut t = Tracker::new(keys, Arc::new(IpIntel::empty()));
    for (i, c) in cases.iter().enumerate() {
        if c.1.is_empty() {
            continue;
        }
        for d in 0..3 {
            t.observe(&ev(LEAK - 86_400_000 * (3 - d) + i as i64, c.0, c.2, c.1));
        }
    }
    let mut leaks: Vec<Leak> = cases
        .iter()
        .map(|c| leak(c.0, CredentialKind::AwsAccessKey, c.3))
        .collect();
    leaks.push(leak(
        "ghp-fingerprint",
        CredentialKind::GithubPat,
        "ci/release.sh",
    ));
    leaks.push(leak(
        "slack-fingerprint",
        CredentialKind::Other,
        "ops/notify.sh",
    ));
    let snapshot_keys = vec![
        (
            "AKIAGITLABAAAAAAAAAA".to_string(),
            "arn:aws:iam::111122223333:user/gitlab".to_string(),
            true,
        ),
        (
            "AKIASNAPSHOTONLYAAAA".to_string(),
            "arn:aws:iam::111122223333:user/batch".to_string(),
            true,
        ),
        (
            "AKIAINACTIVEAAAAAAAA".to_string(),
            "arn:aws:iam::111122223333:user/old".to_string(),
            false,
        ),
    ];
    let p = plan::build(
        &leaks,
        &t.tracked,
        &snapshot_keys,
        Some("111122223333"),
        "2026-12-07T00:00:00Z".into(),
    );
    let item = |id: &str| {
        p.items
            .iter()
            .find(|i| i.credential_id == id)
            .unwrap_or_else(|| panic!("no item for {id}: {:#?}", p.items))
    };
    for c in &cases {
        let it = item(c.0);
        assert_eq!(it.replacement, c.4, "{}: {it:#?}", c.0);
        assert!(it.used_by.iter().any(|u| u == c.5), "{}: {it:#?}", c.0);
        assert!(it.leaked);
    }
    // The OIDC trust policies name the account and the repository of the leak.
    let gl = item("AKIAGITLABAAAAAAAAAA");
    let trust = gl.trust_policy.as_ref().expect("trust policy");
    let st = &trust["Statement"][0];
    assert_eq!(st["Action"], "sts:AssumeRoleWithWebIdentity");
    assert_eq!(
        st["Principal"]["Federated"],
        "arn:aws:iam::111122223333:oidc-provider/gitlab.com"
    );
    assert_eq!(
        st["Condition"]["StringLike"]["gitlab.com:sub"],
        "project_path:acme/payments:ref_type:branch:ref:main"
    );
    assert_eq!(
        gl.identity.as_deref(),
        Some("arn:aws:iam::111122223333:user/gitlab")
    );
    // Service roles trust their service.
    for (id, service) in [
        ("AKIALAMBDAAAAAAAAAAA", "lambda.amazonaws.com"),
        ("AKIAECSAAAAAAAAAAAAA", "ecs-tasks.amazonaws.com"),
        ("AKIAEKSAAAAAAAAAAAAA", "pods.eks.amazonaws.com"),
        ("AKIAEC2PRIVATEAAAAAA", "ec2.amazonaws.com"),
    ] {
        let t = item(id).trust_policy.as_ref().expect("trust policy");
        assert_eq!(t["Statement"][0]["Principal"]["Service"], service, "{id}");
    }
    assert!(item("AKIANEVERUSEDAAAAAAA").trust_policy.is_none());
    assert_eq!(item("ghp-fingerprint").replacement, "github-app");
    assert_eq!(item("slack-fingerprint").replacement, "rotate-and-vault");
    // A snapshot key that did not leak is planned too; an inactive one is only counted.
    let batch = item("AKIASNAPSHOTONLYAAAA");
    assert!(!batch.leaked);
    assert_eq!(batch.replacement, "delete-unused-key");
    assert!(
        p.items
            .iter()
            .all(|i| i.credential_id != "AKIAINACTIVEAAAAAAAA")
    );
    // The count: 2 active + 1 inactive snapshot keys, 8 leaked AWS keys (one of them
    // in the snapshot), 1 PAT, 1 other.
    let n = &p.long_lived;
    assert_eq!(n.aws_access_keys_active, 2);
    assert_eq!(n.aws_access_keys_inactive, 1);
    assert_eq!(n.aws_access_keys_leaked, 8);
    assert_eq!(n.github_pats_leaked, 1);
    assert_eq!(n.other_leaked, 1);
    assert_eq!(n.total, 3 + 7 + 2);
    assert_eq!(p.as_of, "2026-12-07T00:00:00Z");
}

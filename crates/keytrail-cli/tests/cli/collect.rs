//! `keytrail collect aws`: exit codes and the snapshot's own record of what
//! failed, against a real moto server (the same fixture as `exposure
//! --live`) and an endpoint that refuses connections.

use crate::{CliTest, Run};
use serde_json::Value;
use std::process::Stdio;

/// `keytrail collect aws` with only the test's AWS settings.
fn collect(t: &CliTest, endpoint: &str, out: &str) -> Run {
    let mut c = t.command(&["collect", "aws", "--region", "us-east-1", "--out", out]);
    crate::aws_test_env(&mut c, endpoint);
    let o = c
        .env("AWS_MAX_ATTEMPTS", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run keytrail");
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn errors(t: &CliTest, out: &str) -> Vec<Value> {
    let v: Value = serde_json::from_str(&t.read(&format!("{out}/aws/collection-errors.json")))
        .expect("collection-errors.json is JSON");
    v["Errors"].as_array().expect("Errors is a list").clone()
}

/// Plain moto lacks GetInstanceMetadataDefaults (as some partitions and
/// emulators do): the collection is partial, exit 1, the failure is in the
/// snapshot, everything else is written, and posture evaluates it with the
/// metadata check "not evaluated", never passed.
#[test]
fn a_failed_call_makes_a_partial_snapshot_not_a_failed_run() {
    let t = CliTest::new();
    t.write(
        "seed/aws/iam-get-account-authorization-details.json",
        r#"{"UserDetailList": [{"UserName": "ci-deploy", "Path": "/"}], "RoleDetailList": []}"#,
    );
    t.write(
        "seed/aws/iam-list-access-keys/ci-deploy.json",
        r#"{"AccessKeyMetadata": [{"UserName": "ci-deploy", "AccessKeyId": "AKIAQ6XLYV2HPRKD3MZE", "Status": "Active"}]}"#,
    );
    let (mut child, served) = crate::start_snapshot_moto(&t.root().join("seed"), "123456789012");
    let endpoint = served["endpoint"].as_str().unwrap().to_string();

    let r = collect(&t, &endpoint, "snap");
    drop(child.stdin.take());
    let _ = child.wait();
    assert_eq!(r.code, 1, "partial: {}", r.stderr);
    assert!(r.stderr.contains("partial snapshot"), "{}", r.stderr);
    assert!(r.stderr.contains("collection-errors.json"), "{}", r.stderr);
    let errs = errors(&t, "snap");
    assert!(
        errs.iter().any(|e| e["File"]
            == "regions/us-east-1/ec2-get-instance-metadata-defaults.json"
            && e["Message"]
                .as_str()
                .unwrap()
                .contains("GetInstanceMetadataDefaults")),
        "{errs:#?}"
    );
    for e in &errs {
        let file = e["File"].as_str().unwrap();
        assert!(
            !t.root().join("snap/aws").join(file).exists(),
            "a failed call writes no file: {file}"
        );
    }
    // The rest is there: the identity, IAM with the seeded key.
    assert!(
        t.root()
            .join("snap/aws/sts-get-caller-identity.json")
            .is_file()
    );
    let keys = t.read("snap/aws/iam-list-access-keys/ci-deploy.json");
    assert!(keys.contains("AKIAQ6XLYV2HPRKD3MZE"), "{keys}");

    let p = t.run(&["posture", "--snapshot", "snap"]);
    assert!(
        p.code <= 1,
        "posture reads a partial snapshot: {}",
        p.stderr
    );
    let (_, not_evaluated) = p
        .stdout
        .split_once("not evaluated:")
        .unwrap_or_else(|| panic!("a not-evaluated section: {}", p.stdout));
    assert!(
        not_evaluated.contains("ec2-get-instance-metadata-defaults"),
        "the metadata-defaults check is listed as not evaluated: {}",
        p.stdout
    );
}

/// An endpoint that refuses connections: nothing collected, exit 2, and the
/// output directory still says why.
#[test]
fn an_unreachable_account_is_an_error_with_the_reason_recorded() {
    let t = CliTest::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let r = collect(&t, &format!("http://127.0.0.1:{port}"), "snap");
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("nothing collected"), "{}", r.stderr);
    let errs = errors(&t, "snap");
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(errs[0]["File"], "sts-get-caller-identity.json");
    assert!(
        errs[0]["Message"]
            .as_str()
            .unwrap()
            .contains("GetCallerIdentity failed"),
        "{errs:#?}"
    );
}

/// An output path that cannot be a directory: exit 2, never "collected".
#[test]
fn an_unwritable_output_is_an_error() {
    let t = CliTest::new();
    t.write("snap", "a file where the snapshot directory should be");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let r = collect(&t, &format!("http://127.0.0.1:{port}"), "snap");
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("nothing collected"), "{}", r.stderr);
    assert!(
        r.stderr.contains("collection-errors.json: cannot create"),
        "the unwritable record is named: {}",
        r.stderr
    );
}

/// `keytrail collect gcp` against a loopback stand-in of Google's APIs
/// that answers `deny` paths with 403 and the rest with empty lists.
fn collect_gcp(
    t: &CliTest,
    deny: &'static [&'static str],
    token: Option<&str>,
) -> (Run, keytrail_testkit::recorder::Recorder) {
    use keytrail_testkit::recorder::{Answer, Recorder};
    let server = Recorder::start(move |req| {
        if deny.iter().any(|d| req.path.contains(d)) {
            return Answer::new(
                403,
                r#"{"error": {"code": 403, "status": "PERMISSION_DENIED", "message": "denied"}}"#,
            );
        }
        Answer::new(200, r#"{"bindings": []}"#)
    });
    let mut c = t.command(&[
        "collect",
        "gcp",
        "--project",
        "p1",
        "--endpoint-url",
        &server.url(),
        "--out",
        "snap",
    ]);
    c.env_remove("GOOGLE_APPLICATION_CREDENTIALS")
        .env("HOME", t.root())
        .env("CLOUDSDK_CONFIG", t.root().join("no-gcloud"))
        .env("GCE_METADATA_HOST", "127.0.0.1:9");
    match token {
        Some(tok) => c.env("GOOGLE_OAUTH_ACCESS_TOKEN", tok),
        None => c.env_remove("GOOGLE_OAUTH_ACCESS_TOKEN"),
    };
    let o = c.stdin(Stdio::null()).output().expect("run keytrail");
    let run = Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    };
    (run, server)
}

#[test]
fn gcp_collection_exit_codes_say_complete_partial_or_nothing() {
    let t = CliTest::new();
    let (r, server) = collect_gcp(&t, &[], Some("ya29.cli-test"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("collected into"), "{}", r.stderr);
    assert!(
        t.root()
            .join("snap/gcp/p1/projects-get-iam-policy.json")
            .is_file()
    );
    assert!(
        server
            .requests()
            .iter()
            .all(|q| q.header("authorization") == Some("Bearer ya29.cli-test"))
    );
    assert!(
        !r.stderr.contains("ya29.cli-test"),
        "the token is never printed"
    );

    let t = CliTest::new();
    let (r, _s) = collect_gcp(&t, &["activities:query"], Some("ya29.cli-test"));
    assert_eq!(r.code, 1, "partial: {}", r.stderr);
    assert!(r.stderr.contains("partial snapshot"), "{}", r.stderr);
    let v: Value = serde_json::from_str(&t.read("snap/gcp/p1/collection-errors.json")).unwrap();
    assert_eq!(v["Errors"].as_array().unwrap().len(), 2, "{v}");

    let t = CliTest::new();
    let (r, _s) = collect_gcp(&t, &["/projects/"], Some("ya29.cli-test"));
    assert_eq!(r.code, 2, "nothing: {}", r.stderr);
    assert!(r.stderr.contains("nothing collected"), "{}", r.stderr);

    let t = CliTest::new();
    let (r, s) = collect_gcp(&t, &[], None);
    assert_eq!(r.code, 2, "no credentials: {}", r.stderr);
    assert!(r.stderr.contains("no Google credentials"), "{}", r.stderr);
    assert!(s.requests().is_empty(), "nothing sent without credentials");
}

/// `keytrail collect azure` with the az CLI's login (a stand-in `az` that
/// prints what `az account get-access-token` prints) or a service
/// principal's secret from the environment.
#[test]
fn azure_collection_signs_in_through_the_az_cli_or_the_environment() {
    use keytrail_testkit::recorder::{Answer, Recorder};
    let server = Recorder::start(|req| {
        if req.path.contains("/oauth2/v2.0/token") {
            return Answer::new(
                401,
                r#"{"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."}"#,
            );
        }
        if req.header("authorization") != Some("Bearer az-cli-token") {
            return Answer::new(
                401,
                r#"{"error": {"code": "InvalidAuthenticationToken", "message": "no"}}"#,
            );
        }
        if req.path.starts_with("/subscriptions?") {
            return Answer::new(
                200,
                r#"{"value": [{"subscriptionId": "6f1c2b0e-3a44-4d7e-9b1a-2c5d8e7f9a10"}]}"#,
            );
        }
        Answer::new(200, r#"{"value": []}"#)
    });
    let t = CliTest::new();
    let az = t.root().join("fake-az");
    std::fs::write(
        &az,
        "#!/bin/sh\n[ \"$1 $2\" = \"account get-access-token\" ] || exit 3\necho '{\"accessToken\": \"az-cli-token\", \"tokenType\": \"Bearer\"}'\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&az, std::fs::Permissions::from_mode(0o755)).unwrap();
    let run = |env: &[(&str, &str)]| {
        let mut c = t.command(&[
            "collect",
            "azure",
            "--endpoint-url",
            &server.url(),
            "--out",
            "snap",
        ]);
        for v in ["AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET"] {
            c.env_remove(v);
        }
        c.env("KEYTRAIL_AZ", &az);
        for (k, v) in env {
            c.env(k, v);
        }
        let o = c.stdin(Stdio::null()).output().expect("run keytrail");
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    };
    let r = run(&[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for f in [
        "graph-applications.json",
        "storage-account-list.json",
        "aks-list.json",
        "role-assignment-list.json",
    ] {
        assert!(
            t.root().join("snap/azure").join(f).is_file(),
            "{f}: {}",
            r.stderr
        );
    }
    // A wrong secret in the environment: exit 2, the provider's reason, the
    // secret itself never printed.
    let r = run(&[
        ("AZURE_TENANT_ID", "72f988bf-86f1-41af-91ab-2d7cd011db47"),
        ("AZURE_CLIENT_ID", "0a1b2c3d-0000-4000-8000-00000000c11e"),
        ("AZURE_CLIENT_SECRET", "kt~not-a-real-secret-42"),
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("AADSTS7000215"), "{}", r.stderr);
    assert!(!r.stderr.contains("kt~not-a-real-secret-42"));
    // No az CLI, no managed identity: exit 2 saying how to sign in.
    let r = run(&[("KEYTRAIL_AZ", "/nonexistent/az")]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("no Azure credentials"), "{}", r.stderr);
}

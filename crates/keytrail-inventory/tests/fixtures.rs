//! Snapshot fixtures in the exact CLI output shapes: `bad/` makes every
//! check fail at least once, `good/` makes none fail and leaves nothing
//! unevaluated, `broken/` holds truncated, malformed and partial files.

use keytrail_inventory::{
    CHECKS, Report, Snapshot, check_all, inventory, load_snapshot, owners::Owners,
};
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn now() -> keytrail_inventory::Timestamp {
    chrono::DateTime::parse_from_rfc3339("2025-06-01T00:00:00Z")
        .unwrap()
        .to_utc()
}

fn load(name: &str) -> (Snapshot, Report, Vec<keytrail_types::Diagnostic>) {
    let (snap, diags) = load_snapshot(&fixture(name));
    let report = check_all(&snap, None, now());
    (snap, report, diags)
}

fn resources(r: &Report, check: &str) -> Vec<String> {
    let mut v: Vec<String> = r.of(check).map(|f| f.resource.clone()).collect();
    v.sort();
    v
}

#[test]
fn every_check_fails_on_the_bad_fixture() {
    let (_, r, diags) = load("bad");
    assert!(diags.is_empty(), "{diags:#?}");
    for c in CHECKS {
        assert!(
            r.of(c.id).count() > 0,
            "check {} did not fire on bad/",
            c.id
        );
    }
}

#[test]
fn no_check_fails_on_the_good_fixture_and_all_are_evaluated() {
    let (_, r, diags) = load("good");
    assert!(diags.is_empty(), "{diags:#?}");
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    assert!(r.not_evaluated.is_empty(), "{:#?}", r.not_evaluated);
}

#[test]
fn long_lived_aws_credentials() {
    let (_, r, _) = load("bad");
    let ci = "arn:aws:iam::111122223333:user/ci-deploy";
    let legacy = "arn:aws:iam::111122223333:user/legacy-sync";
    assert_eq!(resources(&r, "aws.iam.access_key_age"), vec![ci, legacy]);
    // ci-deploy key B: never used and 92 days old; legacy: 182 days idle.
    // ci-deploy key A: used two days ago, so not unused.
    let unused: Vec<(String, String)> = r
        .of("aws.iam.access_key_unused")
        .map(|f| {
            (
                f.resource.clone(),
                f.evidence["access_key_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        unused,
        vec![
            (ci.to_string(), "AKIAFAKECIDEPLOYKEYB".to_string()),
            (legacy.to_string(), "AKIAFAKELEGACYSYNCKA".to_string())
        ]
    );
    let never = r.of("aws.iam.access_key_unused").next().unwrap();
    assert!(never.evidence["last_used"].is_null());
    assert!(never.fact.contains("never used"));
    assert_eq!(resources(&r, "aws.iam.two_active_keys"), vec![ci]);
    assert_eq!(
        resources(&r, "aws.iam.console_user_without_mfa"),
        vec!["arn:aws:iam::111122223333:user/alice"]
    );
    assert_eq!(
        resources(&r, "aws.iam.root_access_key"),
        vec!["arn:aws:iam::111122223333:root"]
    );
}

#[test]
fn credential_report_alone_is_enough_for_key_checks() {
    // good/ has a CSV report; drop list-access-keys and the report must carry the checks.
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture("bad"), dir.path());
    std::fs::remove_dir_all(dir.path().join("aws/iam-list-access-keys")).unwrap();
    let (snap, diags) = load_snapshot(dir.path());
    assert!(diags.is_empty(), "{diags:?}");
    let r = check_all(&snap, None, now());
    assert_eq!(r.of("aws.iam.access_key_age").count(), 2);
    assert_eq!(r.of("aws.iam.access_key_unused").count(), 2);
    assert_eq!(r.of("aws.iam.two_active_keys").count(), 1);
    assert!(!r.is_not_evaluated("aws.iam.access_key_age"));
}

#[test]
fn public_storage_honours_ownership_and_access_blocks() {
    let (_, r, _) = load("bad");
    assert_eq!(
        resources(&r, "aws.s3.bucket_public"),
        vec!["arn:aws:s3:::legacy-logs", "arn:aws:s3:::public-assets"]
    );
    let via = |b: &str| {
        r.of("aws.s3.bucket_public")
            .find(|f| f.resource.ends_with(b))
            .unwrap()
            .evidence["via"]
            .clone()
    };
    assert_eq!(via("public-assets"), serde_json::json!(["policy"]));
    assert_eq!(via("legacy-logs"), serde_json::json!(["acl"]));
    // acl-disabled has an AllUsers grant but BucketOwnerEnforced: not public.
    assert_eq!(r.of("aws.s3.account_public_access_block").count(), 1);
    assert_eq!(
        resources(&r, "aws.s3.bucket_public_access_block"),
        vec!["arn:aws:s3:::legacy-logs", "arn:aws:s3:::public-assets"]
    );
    // `blob` as the data plane prints it, `Container` as ARM does
    // (`az storage container-rm list`); `None` is private.
    let az = resources(&r, "azure.storage.container_anonymous_access");
    assert_eq!(az.len(), 2, "{az:#?}");
    assert!(az[0].ends_with("storageAccounts/publicstore/blobServices/default/containers/images"));
    assert!(az[1].ends_with("storageAccounts/publicstore/blobServices/default/containers/reports"));
}

#[test]
fn ignore_public_acls_at_account_level_hides_acl_grants() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture("bad"), dir.path());
    std::fs::write(
        dir.path().join("aws/s3control-get-public-access-block.json"),
        r#"{"PublicAccessBlockConfiguration": {"BlockPublicAcls": false, "IgnorePublicAcls": true, "BlockPublicPolicy": false, "RestrictPublicBuckets": true}}"#,
    )
    .unwrap();
    let (snap, _) = load_snapshot(dir.path());
    let r = check_all(&snap, None, now());
    assert_eq!(r.of("aws.s3.bucket_public").count(), 0, "{:#?}", r.findings);
    assert_eq!(r.of("aws.s3.account_public_access_block").count(), 1);
}

#[test]
fn instance_metadata() {
    let (_, r, _) = load("bad");
    // The terminated eu-west-1 instance and the IMDSv2 ones are not flagged;
    // both describe-instances pages of eu-west-1 are read.
    assert_eq!(
        resources(&r, "aws.ec2.imdsv1_allowed"),
        vec!["arn:aws:ec2:us-east-1:111122223333:instance/i-0aaaaaaaaaaaaaaa1"]
    );
    let f = r.of("aws.ec2.imdsv1_allowed").next().unwrap();
    assert_eq!(
        f.identity,
        "arn:aws:iam::111122223333:instance-profile/app-server"
    );
    assert_eq!(
        resources(&r, "aws.ec2.imds_account_default"),
        vec!["arn:aws:ec2:us-east-1:111122223333:instance-metadata-defaults"]
    );
    let m = r
        .of("aws.ec2.instances_in_management_account")
        .next()
        .unwrap();
    assert_eq!(m.evidence["instance_count"], 3);
}

#[test]
fn managed_kubernetes() {
    let (_, r, _) = load("bad");
    assert_eq!(
        resources(&r, "aws.eks.public_endpoint"),
        vec!["arn:aws:eks:us-east-1:111122223333:cluster/prod"]
    );
    // staging has audit enabled in its second logging entry.
    assert_eq!(
        resources(&r, "aws.eks.audit_logging_disabled"),
        vec!["arn:aws:eks:us-east-1:111122223333:cluster/prod"]
    );
    // Which of the five control-plane log types are off, from every entry.
    let prod = r.of("aws.eks.audit_logging_disabled").next().unwrap();
    assert_eq!(
        prod.evidence["log_types_off"],
        serde_json::json!([
            "api",
            "audit",
            "authenticator",
            "controllerManager",
            "scheduler"
        ])
    );
    assert!(
        prod.fact.contains("log types off: api, audit"),
        "{}",
        prod.fact
    );
    // eks-node-safe (standard node policies only) is not flagged.
    assert_eq!(
        resources(&r, "aws.eks.node_role_risky"),
        vec!["arn:aws:iam::111122223333:role/eks-node-role"]
    );
    let n = r.of("aws.eks.node_role_risky").next().unwrap();
    assert!(n.fact.contains("`s3:*`"), "{}", n.fact);
    assert_eq!(r.of("azure.aks.public_endpoint").count(), 1);
    assert_eq!(r.of("gcp.gke.public_endpoint").count(), 1);
    assert_eq!(r.of("gcp.gke.default_compute_service_account").count(), 1);
}

#[test]
fn third_party_roles_name_the_vendor() {
    let (_, r, _) = load("bad");
    let no_ext: Vec<_> = r
        .of("aws.iam.third_party_role_without_external_id")
        .collect();
    assert_eq!(no_ext.len(), 1);
    assert!(no_ext[0].resource.ends_with("role/DatadogIntegrationRole"));
    assert!(no_ext[0].fact.contains("Datadog"));
    assert_eq!(no_ext[0].evidence["vendor"], "Datadog");
    assert_eq!(
        resources(&r, "aws.iam.trust_unknown_external_account"),
        vec!["arn:aws:iam::111122223333:role/partner-access"]
    );
    let over: Vec<_> = r.of("aws.iam.third_party_role_overprivileged").collect();
    assert_eq!(over.len(), 1);
    assert!(over[0].resource.ends_with("role/cloudhealth-admin"));
    assert!(over[0].fact.contains("Cloudhealth"), "{}", over[0].fact);
}

#[test]
fn over_privileged_workloads() {
    let (_, r, _) = load("bad");
    assert_eq!(
        resources(&r, "aws.iam.workload_admin"),
        vec!["arn:aws:iam::111122223333:role/app-server"]
    );
    let pe: Vec<_> = r.of("aws.iam.workload_privilege_escalation").collect();
    let lambda = pe
        .iter()
        .find(|f| f.resource.ends_with("role/lambda-escalator"))
        .expect("lambda-escalator");
    let paths = lambda.evidence["privesc_paths"].as_array().unwrap();
    assert!(
        paths.contains(&serde_json::json!("lambda-001")),
        "{paths:?}"
    );
    assert!(paths.contains(&serde_json::json!("iam-001")), "{paths:?}");
    assert_eq!(
        resources(&r, "aws.iam.workload_ssm_all_instances"),
        vec!["arn:aws:iam::111122223333:role/ecs-ops"]
    );
    assert_eq!(
        resources(&r, "aws.iam.workload_s3_read_all"),
        vec![
            "arn:aws:iam::111122223333:role/batch-reader",
            "arn:aws:iam::111122223333:role/eks-node-role"
        ]
    );
    assert_eq!(
        resources(&r, "gcp.iam.default_compute_sa_editor"),
        vec![
            "projects/prod-project-1/serviceAccounts/123456789012-compute@developer.gserviceaccount.com"
        ]
    );
}

#[test]
fn gcp_and_entra_credentials() {
    let (_, r, _) = load("bad");
    let k: Vec<_> = r.of("gcp.iam.service_account_key_age").collect();
    assert_eq!(k.len(), 1, "system-managed keys are ignored");
    assert!(
        k[0].resource
            .ends_with("/keys/1f2e3d4c5b6a79880011223344556677aabbccdd")
    );
    assert_eq!(
        resources(&r, "azure.entra.app_credential_age"),
        vec!["entra:application/11111111-2222-3333-4444-555555555555"]
    );
    // Both Graph pages are read; the expired certificate and the short secret are not flagged.
    assert_eq!(
        resources(&r, "azure.entra.app_credential_long_validity"),
        vec!["entra:application/11111111-2222-3333-4444-555555555555"]
    );
}

#[test]
fn stored_secrets_and_parameters() {
    let (_, r, _) = load("bad");
    assert_eq!(
        resources(&r, "aws.secretsmanager.rotation_disabled"),
        vec!["arn:aws:secretsmanager:us-east-1:111122223333:secret:prod/db/admin-AbCdEf"]
    );
    let off = r.of("aws.secretsmanager.rotation_disabled").next().unwrap();
    assert!(
        off.fact.contains("never rotated in the 507 days"),
        "{}",
        off.fact
    );
    let overdue: Vec<_> = r.of("aws.secretsmanager.rotation_overdue").collect();
    assert_eq!(overdue.len(), 1);
    assert!(overdue[0].resource.contains("prod/stripe/key"));
    assert_eq!(overdue[0].evidence["days_since_rotation"], 137);
    assert_eq!(overdue[0].evidence["rotation_days"], 30);
    let unused: Vec<_> = r.of("aws.secretsmanager.secret_unused").collect();
    assert_eq!(unused.len(), 1);
    assert!(unused[0].resource.contains("legacy/ftp"));
    assert_eq!(unused[0].evidence["days_unused"], 211);
    assert_eq!(
        resources(&r, "aws.ssm.secret_in_plaintext_parameter"),
        vec!["arn:aws:ssm:us-east-1:111122223333:parameter/prod/db/password"]
    );
    assert_eq!(
        resources(&r, "aws.ssm.secure_parameter_not_rotated"),
        vec!["arn:aws:ssm:eu-west-1:111122223333:parameter/payments/partnerApiKey"]
    );
    // Data read by a vendor is its own risk; SecurityAudit (metadata read,
    // on DatadogIntegrationRole and partner-access) is not reported.
    assert_eq!(
        resources(&r, "aws.iam.third_party_role_data_read"),
        vec!["arn:aws:iam::111122223333:role/vendor-data-reader"]
    );
    let data = r.of("aws.iam.third_party_role_data_read").next().unwrap();
    assert!(data.fact.contains("Datadog"), "{}", data.fact);
    let grants = data.evidence["data_access"].as_array().unwrap();
    assert!(
        grants.iter().any(|g| g == "s3_read_all_buckets"),
        "{grants:?}"
    );
}

#[test]
fn gcp_key_use_and_instance_scopes() {
    let (snap, r, _) = load("bad");
    let unused: Vec<_> = r.of("gcp.iam.service_account_key_unused").collect();
    assert_eq!(unused.len(), 1, "{unused:#?}");
    assert!(
        unused[0]
            .resource
            .ends_with("/keys/1f2e3d4c5b6a79880011223344556677aabbccdd")
    );
    assert_eq!(unused[0].evidence["days_unused"], 242);
    assert_eq!(
        resources(&r, "gcp.compute.default_service_account_full_scope"),
        vec![
            "https://www.googleapis.com/compute/v1/projects/prod-project-1/zones/us-central1-a/instances/web-1"
        ]
    );
    let p = &snap.gcp[0];
    assert_eq!(p.service_accounts.present().unwrap().len(), 2);
    assert_eq!(p.instances.present().unwrap().len(), 3);

    // Without the activity file, key use is not evaluated, never passed.
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture("good"), dir.path());
    std::fs::remove_file(
        dir.path()
            .join("gcp/prod-project-1/policy-intelligence-query-activity-keys.json"),
    )
    .unwrap();
    let (snap, _) = load_snapshot(dir.path());
    let r = check_all(&snap, None, now());
    let n = r
        .not_evaluated
        .iter()
        .find(|n| n.check == "gcp.iam.service_account_key_unused")
        .expect("not evaluated");
    assert!(
        n.reason
            .contains("policy-intelligence-query-activity-keys.json"),
        "{}",
        n.reason
    );
}

#[test]
fn azure_service_principals_with_subscription_control() {
    let (_, r, _) = load("bad");
    let found: Vec<_> = r.of("azure.rbac.service_principal_privileged").collect();
    let facts: Vec<&str> = found.iter().map(|f| f.fact.as_str()).collect();
    assert_eq!(found.len(), 2, "{facts:#?}");
    assert!(facts.contains(&"application ci-pipeline holds Owner on /subscriptions/6f1c2b0e-3a44-4d7e-9b1a-2c5d8e7f9a10"), "{facts:#?}");
    assert!(facts.contains(&"managed identity vm-backup-identity holds Contributor on /providers/Microsoft.Management/managementGroups/corp"), "{facts:#?}");
    // Grouped with the application's own credential findings.
    let owner = found
        .iter()
        .find(|f| f.fact.contains("ci-pipeline"))
        .unwrap();
    assert_eq!(
        owner.identity,
        "entra:application/11111111-2222-3333-4444-555555555555"
    );
}

#[test]
fn inventory_covers_collected_gcp_and_azure_identities() {
    let (snap, _, _) = load("bad");
    let inv = inventory(&snap, None, now());
    let rec = |id: &str| {
        inv.iter()
            .find(|r| r.id == id)
            .unwrap_or_else(|| panic!("{id} not in the inventory"))
    };
    // The default compute account comes from the service-account list.
    let sa = rec(
        "projects/prod-project-1/serviceAccounts/123456789012-compute@developer.gserviceaccount.com",
    );
    assert_eq!(sa.kind, "gcp.service_account");
    // A key's last authentication comes from Policy Analyzer's activity.
    let key = rec(
        "projects/prod-project-1/serviceAccounts/ci-bot@prod-project-1.iam.gserviceaccount.com/keys/1f2e3d4c5b6a79880011223344556677aabbccdd",
    );
    assert_eq!(key.days_unused, Some(242));
    assert!(!key.never_used);
    assert!(
        key.findings
            .iter()
            .any(|f| f == "gcp.iam.service_account_key_unused")
    );
    // Entra: privilege from role assignments; managed identities listed.
    let app = rec("entra:application/11111111-2222-3333-4444-555555555555");
    assert_eq!(app.privilege, ["admin"]);
    let mi = rec("entra:application/22222222-3333-4444-5555-666666666666");
    assert_eq!(mi.kind, "entra.managed_identity");
    assert_eq!(mi.provider, "azure");
    assert_eq!(mi.privilege, ["admin"]);
    assert!(
        mi.findings
            .iter()
            .any(|f| f == "azure.rbac.service_principal_privileged")
    );
}

#[test]
fn missing_files_are_not_evaluated_never_passed() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture("good"), dir.path());
    for f in [
        "aws/iam-credential-report.csv",
        "aws/s3control-get-public-access-block.json",
        "aws/regions/us-east-1/ec2-get-instance-metadata-defaults.json",
        "aws/iam-get-account-authorization-details.json",
        "aws/regions/us-east-1/secretsmanager-list-secrets.json",
        "azure/role-assignment-list.json",
    ] {
        std::fs::remove_file(dir.path().join(f)).unwrap();
    }
    std::fs::remove_dir_all(dir.path().join("gcp")).unwrap();
    let (snap, _) = load_snapshot(dir.path());
    let r = check_all(&snap, None, now());
    for c in [
        "aws.iam.console_user_without_mfa",
        "aws.iam.root_access_key",
        "aws.s3.account_public_access_block",
        "aws.ec2.imds_account_default",
        "aws.iam.workload_admin",
        "aws.iam.third_party_role_without_external_id",
        "aws.eks.node_role_risky",
        "aws.secretsmanager.rotation_disabled",
        "aws.secretsmanager.secret_unused",
        "azure.rbac.service_principal_privileged",
        "gcp.iam.service_account_key_age",
        "gcp.gke.public_endpoint",
    ] {
        assert!(
            r.is_not_evaluated(c),
            "{c} should be not evaluated: {:#?}",
            r.not_evaluated
        );
    }
    let reason = &r
        .not_evaluated
        .iter()
        .find(|n| n.check == "aws.iam.root_access_key")
        .unwrap()
        .reason;
    assert!(reason.contains("iam-credential-report.csv"), "{reason}");
    // Key checks still run from list-access-keys.
    assert!(!r.is_not_evaluated("aws.iam.access_key_age"));
}

#[test]
fn bad_input_names_the_file_and_keeps_the_rest() {
    let (snap, r, diags) = load("broken");
    let has = |file: &str, kind: &str| {
        diags
            .iter()
            .any(|d| d.subject.ends_with(file) && d.kind == kind && d.is_error)
    };
    assert!(
        has("iam-credential-report.csv", "malformed_csv"),
        "{diags:#?}"
    );
    let csv = diags.iter().find(|d| d.kind == "malformed_csv").unwrap();
    assert_eq!(csv.line, Some(3));
    assert!(
        has(
            "iam-get-account-authorization-details.json",
            "malformed_json"
        ),
        "{diags:#?}"
    );
    assert!(
        has(
            "iam-get-account-authorization-details.2.json",
            "unexpected_shape"
        ),
        "{diags:#?}"
    );
    assert!(
        has("us-east-1/ec2-describe-instances.json", "unexpected_shape"),
        "{diags:#?}"
    );
    assert!(
        has("container-clusters-list.json", "malformed_json"),
        "{diags:#?}"
    );
    assert!(
        has("s3control-get-public-access-block.json", "cli_error"),
        "{diags:#?}"
    );
    assert!(
        has("graph-applications.json", "unexpected_shape"),
        "{diags:#?}"
    );
    // One malformed secret entry: named, the other secret still judged;
    // a truncated parameter list: named, its checks not evaluated.
    assert!(
        has("secretsmanager-list-secrets.json", "unexpected_shape"),
        "{diags:#?}"
    );
    assert!(
        has("ssm-describe-parameters.json", "malformed_json"),
        "{diags:#?}"
    );
    assert_eq!(
        resources(&r, "aws.secretsmanager.rotation_disabled"),
        vec!["arn:aws:secretsmanager:us-east-1:111122223333:secret:b-2"]
    );
    assert!(
        r.of("aws.ssm.secret_in_plaintext_parameter")
            .next()
            .is_none()
    );
    assert!(
        r.not_evaluated
            .iter()
            .any(|n| n.check == "aws.ssm.secret_in_plaintext_parameter"
                && n.resource.as_deref() == Some("region us-east-1"))
    );

    // Everything else still yields results: the CSV rows after the bad one,
    // the intact second IAM page, the well-formed reservation.
    assert_eq!(
        resources(&r, "aws.iam.console_user_without_mfa"),
        vec!["arn:aws:iam::111122223333:user/carol"]
    );
    assert_eq!(
        resources(&r, "aws.iam.workload_admin"),
        vec!["arn:aws:iam::111122223333:role/web-admin"]
    );
    assert_eq!(
        resources(&r, "aws.ec2.imdsv1_allowed"),
        vec!["arn:aws:ec2:us-east-1:111122223333:instance/i-0eeeeeeeeeeeeeee5"]
    );
    // Partial region, uncollected bucket, denied account block: not evaluated.
    assert!(
        r.not_evaluated
            .iter()
            .any(|n| n.check == "aws.ec2.imdsv1_allowed"
                && n.resource.as_deref() == Some("region eu-west-1"))
    );
    assert!(
        r.not_evaluated
            .iter()
            .any(|n| n.check == "aws.s3.bucket_public"
                && n.resource.as_deref() == Some("arn:aws:s3:::uncollected"))
    );
    assert!(r.is_not_evaluated("aws.s3.account_public_access_block"));
    assert!(r.is_not_evaluated("gcp.gke.public_endpoint"));
    assert!(
        r.is_not_evaluated("azure.entra.app_credential_age")
            || snap
                .azure
                .as_ref()
                .unwrap()
                .applications
                .present()
                .is_some_and(Vec::is_empty)
    );
}

#[test]
fn missing_snapshot_dir_is_a_diagnostic() {
    let (snap, diags) = load_snapshot(Path::new("/nonexistent/keytrail-snapshot"));
    assert!(snap.aws.is_none());
    assert_eq!(diags[0].kind, "unreadable");
    let r = check_all(&snap, None, now());
    assert!(r.findings.is_empty());
    assert_eq!(
        r.not_evaluated
            .iter()
            .filter(|n| n.resource.is_none())
            .map(|n| n.check.as_str())
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        CHECKS.len()
    );
}

#[test]
fn inventory_lists_machine_identities_with_owners() {
    let (snap, _, _) = load("bad");
    let (owners, d) = Owners::parse(
        "identities:\n  - arn: arn:aws:iam::111122223333:role/app-server\n    owner: web-team\n    environment: prod\n  - tag: { key: team }\n",
        "keytrail.owners.yaml",
    );
    assert!(d.is_empty());
    let inv = inventory(&snap, Some(&owners), now());
    let get = |id: &str| {
        inv.iter()
            .find(|r| r.id == id)
            .unwrap_or_else(|| panic!("{id} missing"))
    };
    let app = get("arn:aws:iam::111122223333:role/app-server");
    assert_eq!(app.owner, "web-team");
    assert_eq!(app.privilege, vec!["admin"]);
    assert!(app.findings.contains(&"aws.iam.workload_admin".to_string()));
    assert!(app.flags.contains(&"over-privileged".to_string()));
    let ci = get("arn:aws:iam::111122223333:user/ci-deploy");
    assert_eq!(ci.owner, "release", "owner from the `team` tag");
    assert_eq!(
        ci.privilege,
        vec!["admin"],
        "admin through the deployers group"
    );
    let key_b = inv
        .iter()
        .find(|r| r.name == "AKIAFAKECIDEPLOYKEYB")
        .unwrap();
    assert_eq!(key_b.kind, "aws.iam.access_key");
    assert!(key_b.never_used);
    assert_eq!(
        key_b.owner, "release",
        "credentials inherit their identity's owner"
    );
    assert!(
        key_b
            .findings
            .contains(&"aws.iam.access_key_unused".to_string())
    );
    assert!(
        !key_b
            .findings
            .contains(&"aws.iam.access_key_age".to_string())
    );
    // alice is a console user without keys: a person, not listed.
    assert!(!inv.iter().any(|r| r.id.ends_with("user/alice")));
    // Service-linked roles are AWS's, not listed.
    assert!(!inv.iter().any(|r| r.id.contains("aws-service-role")));
    let partner = get("arn:aws:iam::111122223333:role/partner-access");
    assert_eq!(partner.owner, "UNOWNED");
    assert!(partner.flags.contains(&"unowned".to_string()));
    assert_eq!(partner.privilege, vec!["read-only"]);
    let legacy = get("arn:aws:iam::111122223333:user/legacy-sync");
    assert!(legacy.flags.contains(&"unused".to_string()));
    let sa = get(
        "projects/prod-project-1/serviceAccounts/123456789012-compute@developer.gserviceaccount.com",
    );
    assert_eq!(sa.privilege, vec!["admin"]);
    let app_secret = inv
        .iter()
        .find(|r| r.kind == "entra.client_secret" && r.name == "ci secret")
        .unwrap();
    assert_eq!(app_secret.findings.len(), 2, "{:?}", app_secret.findings);
}

#[test]
fn findings_carry_owners() {
    let (snap, _) = load_snapshot(&fixture("bad"));
    let (owners, _) = Owners::parse(
        "identities:\n  - pattern: 'arn:aws:iam::111122223333:role/*'\n    owner: platform\n    environment: stage\n",
        "o.yaml",
    );
    let r = check_all(&snap, Some(&owners), now());
    let f = r.of("aws.iam.workload_admin").next().unwrap();
    assert_eq!(f.owner.as_deref(), Some("platform"));
    let f = r.of("aws.iam.console_user_without_mfa").next().unwrap();
    assert_eq!(f.owner, None);
}

fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

#[test]
fn machine_identities_beyond_workloads() {
    let (_, r, _) = load("bad");
    // A GitHub Actions role with iam:PassRole and ec2:RunInstances on *.
    assert_eq!(
        resources(&r, "aws.iam.machine_identity_privilege_escalation"),
        vec!["arn:aws:iam::111122223333:role/gh-actions-deploy"]
    );
    let f = r
        .of("aws.iam.machine_identity_privilege_escalation")
        .next()
        .unwrap();
    assert_eq!(f.evidence["kind"], "oidc");
    assert_eq!(
        f.evidence["federated"],
        serde_json::json!(["token.actions.githubusercontent.com"])
    );
    // A user with active keys and AdministratorAccess through its group;
    // not the vendor role with admin (the third-party check reports it).
    assert_eq!(
        resources(&r, "aws.iam.machine_identity_admin"),
        vec!["arn:aws:iam::111122223333:user/ci-deploy"]
    );
    // Never-used machine roles are reported; used ones, the service-linked
    // role and the roles people assume are not.
    let unused = resources(&r, "aws.iam.machine_role_unused");
    assert!(
        unused.contains(&"arn:aws:iam::111122223333:role/lambda-escalator".to_string()),
        "{unused:?}"
    );
    for used in [
        "app-server",
        "gh-actions-deploy",
        "AWSServiceRoleForSupport",
    ] {
        assert!(
            !unused.iter().any(|u| u.ends_with(&format!("/{used}"))),
            "{used}: {unused:?}"
        );
    }
}

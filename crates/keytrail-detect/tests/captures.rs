//! Detectors and SigmaHQ rules on the real captures in `testdata/cloudtrail`:
//! every Stratus Red Team technique that a playbook detector covers fires that
//! detector, SigmaHQ AWS rules fire on the captures they describe, the OTRF
//! EC2-credentials-to-S3 exfiltration is caught, and so are the Entra ID steps
//! of OTRF's Golden SAML mail-access simulation, read from Log Analytics rows, its
//! Microsoft 365 atomic simulations read from Management Activity API records, and
//! plaso's Google Cloud, Azure Activity and Microsoft 365 samples (read whole, the
//! right fields, no alert where nothing happened).

mod common;

use std::collections::BTreeSet;

use keytrail_detect::engine::{EngineBuilder, detect_path};
use keytrail_detect::sigma::SigmaRules;

/// Stratus technique → the keytrail playbook rule that must fire on its capture.
const COVERED: &[(&str, &str)] = &[
    (
        "aws.credential-access.ec2-get-password-data",
        "credential-access.ec2-get-password-data",
    ),
    (
        "aws.credential-access.ec2-steal-instance-credentials",
        "credential-access.instance-credentials-outside-ec2",
    ),
    (
        "aws.credential-access.secretsmanager-batch-retrieve-secrets",
        "credential-access.secrets-bulk-read",
    ),
    (
        "aws.credential-access.secretsmanager-retrieve-secrets",
        "credential-access.secrets-bulk-read",
    ),
    (
        "aws.credential-access.ssm-retrieve-securestring-parameters",
        "credential-access.secrets-bulk-read",
    ),
    (
        "aws.defense-evasion.cloudtrail-delete",
        "defense-evasion.logging-disabled",
    ),
    (
        "aws.defense-evasion.cloudtrail-event-selectors",
        "defense-evasion.logging-disabled",
    ),
    (
        "aws.defense-evasion.cloudtrail-stop",
        "defense-evasion.logging-disabled",
    ),
    (
        "aws.defense-evasion.dns-delete-logs",
        "defense-evasion.logging-disabled",
    ),
    (
        "aws.defense-evasion.organizations-leave",
        "defense-evasion.security-service-disabled",
    ),
    (
        "aws.defense-evasion.vpc-remove-flow-logs",
        "defense-evasion.logging-disabled",
    ),
    (
        "aws.discovery.ec2-download-user-data",
        "discovery.ec2-user-data-read",
    ),
    (
        "aws.execution.ec2-launch-unusual-instances",
        "impact.crypto-mining-instances",
    ),
    (
        "aws.execution.ec2-user-data",
        "execution.ec2-user-data-modified",
    ),
    (
        "aws.execution.ssm-send-command",
        "execution.ssm-remote-command",
    ),
    (
        "aws.execution.ssm-start-session",
        "execution.ssm-remote-command",
    ),
    (
        "aws.exfiltration.ec2-security-group-open-port-22-ingress",
        "exfiltration.security-group-open-to-world",
    ),
    (
        "aws.exfiltration.ec2-share-ami",
        "exfiltration.share-with-external-account",
    ),
    (
        "aws.exfiltration.ec2-share-ebs-snapshot",
        "exfiltration.share-with-external-account",
    ),
    (
        "aws.exfiltration.rds-share-snapshot",
        "exfiltration.share-with-external-account",
    ),
    ("aws.impact.bedrock-invoke-model", "impact.bedrock-abuse"),
    (
        "aws.initial-access.console-login-without-mfa",
        "initial-access.console-login-without-mfa",
    ),
    (
        "aws.lateral-movement.ec2-instance-connect",
        "lateral-movement.ec2-ssh-key-push",
    ),
    (
        "aws.lateral-movement.ec2-serial-console-send-ssh-public-key",
        "lateral-movement.ec2-ssh-key-push",
    ),
    (
        "aws.persistence.iam-backdoor-role",
        "persistence.trust-policy-changed",
    ),
    (
        "aws.persistence.iam-backdoor-user",
        "persistence.access-key-for-other-user",
    ),
    (
        "aws.persistence.iam-create-admin-user",
        "privilege-escalation.admin-policy",
    ),
    (
        "aws.persistence.iam-create-backdoor-role",
        "persistence.trust-policy-changed",
    ),
    (
        "aws.persistence.iam-create-user-login-profile",
        "persistence.login-profile",
    ),
    (
        "aws.persistence.lambda-backdoor-function",
        "persistence.lambda-modified",
    ),
    (
        "aws.persistence.lambda-layer-extension",
        "persistence.lambda-modified",
    ),
    (
        "aws.persistence.lambda-overwrite-code",
        "persistence.lambda-modified",
    ),
    (
        "aws.persistence.rolesanywhere-create-trust-anchor",
        "persistence.rolesanywhere-trust-anchor",
    ),
    (
        "aws.persistence.sts-federation-token",
        "persistence.federation-token",
    ),
    (
        "aws.privilege-escalation.iam-update-user-login-profile",
        "persistence.login-profile",
    ),
];

/// Stratus technique → SigmaHQ AWS rule ids (by title) expected to fire.
const SIGMA_FIRES: &[(&str, &str)] = &[
    (
        "aws.defense-evasion.cloudtrail-stop",
        "AWS CloudTrail Important Change",
    ),
    (
        "aws.defense-evasion.cloudtrail-delete",
        "AWS CloudTrail Important Change",
    ),
    (
        "aws.defense-evasion.vpc-remove-flow-logs",
        "AWS VPC Flow Logs Deleted",
    ),
    (
        "aws.persistence.iam-backdoor-user",
        "AWS IAM Backdoor Users Keys",
    ),
    (
        "aws.privilege-escalation.iam-update-user-login-profile",
        "AWS User Login Profile Was Modified",
    ),
    (
        "aws.persistence.lambda-layer-extension",
        "AWS New Lambda Layer Attached",
    ),
    (
        "aws.exfiltration.ec2-share-ebs-snapshot",
        "AWS Snapshot Backup Exfiltration",
    ),
    (
        "aws.initial-access.console-login-without-mfa",
        "AWS Successful Console Login Without MFA",
    ),
    (
        "aws.exfiltration.ec2-security-group-open-port-22-ingress",
        "Ingress/Egress Security Group Modification",
    ),
];

#[test]
fn every_covered_stratus_technique_fires_its_detector() {
    let b = EngineBuilder::new();
    let mut missing = Vec::new();
    for (technique, rule) in COVERED {
        let path = common::stratus_dir().join(format!("{technique}.json"));
        let (alerts, stats) = detect_path(&b, &path);
        assert!(stats.events > 0, "{technique}: no events parsed");
        assert_eq!(
            stats.skipped_records, 0,
            "{technique}: {:?}",
            stats.diagnostics
        );
        let want = format!("keytrail.aws.{rule}");
        match alerts.iter().find(|a| a.rule_id == want) {
            Some(a) => {
                assert!(
                    !a.explanation.is_empty() && a.technique.starts_with('T'),
                    "{a:?}"
                );
                assert!(!a.event_ids.is_empty());
                assert!(!a.principal.is_empty() && a.principal != "unknown");
            }
            None => missing.push(format!(
                "{technique} → {want}; got {:?}",
                alerts.iter().map(|a| &a.rule_id).collect::<Vec<_>>()
            )),
        }
    }
    assert!(missing.is_empty(), "{missing:#?}");
    // Every capture in the directory is either covered or deliberately listed here.
    let all: BTreeSet<String> = std::fs::read_dir(common::stratus_dir())
        .unwrap()
        .map(|e| {
            e.unwrap()
                .path()
                .file_stem()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let covered: BTreeSet<String> = COVERED.iter().map(|(t, _)| t.to_string()).collect();
    let uncovered: Vec<_> = all.difference(&covered).collect();
    assert!(
        uncovered.is_empty(),
        "techniques without a detector: {uncovered:?}"
    );
}

#[test]
fn one_alert_per_identity_rule_and_window() {
    // The secrets capture has 20 GetSecretValue calls by one identity: one alert.
    let path =
        common::stratus_dir().join("aws.credential-access.secretsmanager-retrieve-secrets.json");
    let (alerts, _) = detect_path(&EngineBuilder::new(), &path);
    let bulk: Vec<_> = alerts
        .iter()
        .filter(|a| a.rule_id.ends_with("secrets-bulk-read"))
        .collect();
    assert_eq!(bulk.len(), 1, "{bulk:#?}");
    assert!(bulk[0].event_count >= 2 && bulk[0].event_ids.len() as u64 == bulk[0].event_count);
}

#[test]
fn otrf_ec2_credentials_to_s3_exfiltration_is_caught() {
    let path = common::otrf_ec2_exfiltration();
    let (alerts, stats) = detect_path(&EngineBuilder::new().ipintel(common::ipintel()), &path);
    assert_eq!(stats.events, 103);
    let a = alerts
        .iter()
        .find(|a| a.rule_id == "keytrail.aws.credential-access.instance-credentials-outside-ec2")
        .expect("instance credential exfiltration alert");
    assert!(
        a.principal
            .contains(":role/MordorNginxStack-BankingWAFRole"),
        "{}",
        a.principal
    );
    assert_eq!(a.access_key_id.as_deref(), Some("ASIA5FLZVX4OPVKKVBMX"));
    assert!(a.event_names.iter().any(|n| n == "GetObject"), "{a:?}");
    assert!(a.event_names.iter().any(|n| n == "ListBuckets"), "{a:?}");
    assert!(a.source_ips.iter().any(|ip| ip == "1.2.3.4"));
    assert_eq!(a.severity, keytrail_types::Severity::High);
    // The console user pedro is not flagged by it.
    assert!(
        !alerts
            .iter()
            .any(|a| a.rule_id.contains("instance-credentials") && a.principal.contains("pedro"))
    );
}

#[test]
fn every_sigmahq_aws_rule_loads() {
    let (rules, diags) = SigmaRules::load_paths(&[common::sigma_aws()]);
    let errors: Vec<_> = diags.iter().filter(|d| d.is_error).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let files = std::fs::read_dir(common::sigma_aws().join("cloudtrail"))
        .unwrap()
        .count();
    assert_eq!(rules.rules.len(), files);
    assert!(
        rules.rules.iter().all(|r| r.info.author.is_some()),
        "every SigmaHQ rule has an author"
    );
}

#[test]
fn sigmahq_rules_fire_on_matching_captures_and_keep_author() {
    let b = EngineBuilder::new().sigma_rules(common::sigma_aws());
    for (technique, title) in SIGMA_FIRES {
        let (alerts, stats) =
            detect_path(&b, &common::stratus_dir().join(format!("{technique}.json")));
        assert!(stats.sigma_matches > 0, "{technique}");
        let a = alerts
            .iter()
            .find(|a| a.title.starts_with(title))
            .unwrap_or_else(|| {
                panic!(
                    "{technique}: no `{title}`; got {:?}",
                    alerts.iter().map(|a| &a.title).collect::<Vec<_>>()
                )
            });
        assert!(a.author.as_deref().is_some_and(|s| !s.is_empty()), "{a:?}");
        assert!(a.explanation.contains("by "), "{}", a.explanation);
    }
    // A benign-looking capture does not trigger the CloudTrail rule.
    let (alerts, _) = detect_path(
        &b,
        &common::stratus_dir().join("aws.persistence.rolesanywhere-create-trust-anchor.json"),
    );
    assert!(
        !alerts
            .iter()
            .any(|a| a.title.starts_with("AWS CloudTrail Important Change"))
    );
}

#[test]
fn whole_stratus_directory_reads_in_time_order_with_invalid_ips_counted() {
    let (alerts, stats) = detect_path(&EngineBuilder::new(), &common::stratus_dir());
    assert_eq!(stats.events, 310, "{:?}", stats.diagnostics);
    assert_eq!(stats.skipped_records, 0);
    assert!(
        stats.invalid_ips > 0,
        "anonymised captures contain addresses such as 255.090.254.5"
    );
    assert!(alerts.windows(2).all(|w| w[0].time_ms <= w[1].time_ms));
}

#[test]
fn embedded_sigmahq_rules_fire_with_no_rule_path_and_keep_author() {
    let b = EngineBuilder::new().builtin_sigma(true);
    let (shared, diags) = b.build_shared();
    assert!(diags.iter().all(|d| !d.is_error), "{diags:?}");
    // Every embedded rule of the four folders (`tests/sigma_clouds.rs`).
    let files = ["aws", "azure", "gcp", "m365"]
        .iter()
        .map(|f| keytrail_rules::builtin_sigma(f).len())
        .sum::<usize>();
    let u = &shared.sigma_builtin;
    assert_eq!((u.loaded + u.off, u.replaced), (files, 0), "{u:?}");
    assert_eq!((u.off, u.relevelled), (2, 0), "the default profile: {u:?}");
    for (technique, title) in SIGMA_FIRES {
        let (alerts, _) = detect_path(&b, &common::stratus(technique));
        let a = alerts
            .iter()
            .find(|a| a.title.starts_with(title))
            .unwrap_or_else(|| panic!("{technique}: no embedded `{title}`"));
        assert!(a.author.as_deref().is_some_and(|s| !s.is_empty()), "{a:?}");
        assert!(a.explanation.contains("by "), "{}", a.explanation);
    }
}

/// The default profile names only embedded rules, by their titles; what it turns off
/// raises nothing and what it relevels runs at its level. A rule given on disk with an
/// embedded rule's id replaces it (one alert, not two), and runs as written even when
/// the profile turns the embedded copy off.
#[test]
fn the_default_profile_and_rules_from_disk() {
    use keytrail_detect::sigma::profile::Profile;
    let (all, _) = SigmaRules::load_paths(&[common::sigma_aws()]);
    for (id, entry) in Profile::builtin().entries() {
        let rule = all
            .rules
            .iter()
            .find(|r| r.info.id == id)
            .unwrap_or_else(|| panic!("the profile names {id}, which is not embedded"));
        assert_eq!(rule.info.title, entry.title, "{id}");
        assert!(entry.reason.len() > 80, "{id}: a measured reason");
    }
    // AssumeRole Misuse (off) matches every role-session call, such as these.
    let capture = common::stratus("aws.credential-access.ec2-get-password-data");
    let assume_role = "AWS STS AssumeRole Misuse";
    let titles = |b: &EngineBuilder| -> Vec<(String, keytrail_types::Severity)> {
        detect_path(b, &capture)
            .0
            .into_iter()
            .filter(|a| a.source == keytrail_detect::alert::AlertSource::Sigma)
            .map(|a| (a.title, a.severity))
            .collect()
    };
    let builtin = EngineBuilder::new().builtin_sigma(true);
    assert!(
        !titles(&builtin).iter().any(|(t, _)| t == assume_role),
        "profiled off"
    );
    let dir = tempfile::tempdir().unwrap();
    for f in [
        "aws_sts_assumerole_misuse.yml",
        "aws_cloudtrail_disable_logging.yml",
    ] {
        std::fs::copy(
            common::sigma_aws().join("cloudtrail").join(f),
            dir.path().join(f),
        )
        .unwrap();
    }
    let with_disk = builtin.clone().sigma_rules(dir.path());
    let (shared, _) = with_disk.build_shared();
    assert_eq!(shared.sigma_builtin.replaced, 2);
    assert!(titles(&with_disk).iter().any(|(t, _)| t == assume_role));
    let stop = common::stratus("aws.defense-evasion.cloudtrail-stop");
    let important = |b: &EngineBuilder| {
        detect_path(b, &stop)
            .0
            .iter()
            .filter(|a| a.title.starts_with("AWS CloudTrail Important Change"))
            .count()
    };
    assert_eq!(important(&builtin), 1);
    assert_eq!(important(&with_disk), 1, "a replaced rule runs once");
    // A level in a profile changes the embedded rule's severity, not a rule from disk.
    let raise = Profile::parse(
        "version: 1\nrules:\n  - {id: 4db60cc0-36fb-42b7-9b58-a5b53019fb74, title: AWS CloudTrail Important Change, level: critical, reason: test}\n",
    )
    .unwrap();
    let severity = |paths: &[std::path::PathBuf]| {
        let (rules, used, _) = SigmaRules::load(true, &raise, paths);
        let r = rules
            .rules
            .iter()
            .find(|r| r.info.title == "AWS CloudTrail Important Change")
            .unwrap();
        (r.info.severity, used.relevelled)
    };
    assert_eq!(severity(&[]), (keytrail_types::Severity::Critical, 1));
    assert_eq!(
        severity(&[dir.path().to_path_buf()]),
        (keytrail_types::Severity::Medium, 0)
    );
}

#[test]
fn otrf_golden_saml_entra_steps_are_caught_from_log_analytics_rows() {
    let dir = common::otrf_golden_saml();
    let (alerts, stats) = detect_path(&EngineBuilder::new().ipintel(common::ipintel()), &dir);
    // 4 audit rows (one duplicated upstream) and one OfficeActivity row.
    assert_eq!(stats.events, 5, "{stats:?}");
    let find = |rule: &str| {
        alerts
            .iter()
            .find(|a| a.rule_id == rule)
            .unwrap_or_else(|| panic!("{rule} did not fire: {alerts:#?}"))
    };
    // `InitiatedBy` is JSON text in these rows: the actor is still named.
    let added = find("keytrail.entra.persistence.application-credential-added");
    assert_eq!(added.principal, "pgustavo@simulandlabs.com");
    let consent = find("keytrail.entra.initial-access.risky-oauth-consent");
    assert_eq!(consent.principal, "pgustavo@simulandlabs.com");
    assert!(
        consent.explanation.contains("Mail.ReadWrite"),
        "{}",
        consent.explanation
    );
    // The credential's key id is read from `TargetResources` (JSON text too).
    let events: Vec<keytrail_detect::event::Event> =
        keytrail_detect::reader::read_path(&dir.join("AADAuditEvents.json"))
            .filter_map(Result::ok)
            .collect();
    let created: Vec<String> = events.iter().filter_map(|e| e.created_key()).collect();
    assert_eq!(
        created,
        [
            "59eaeebc-8a6b-44a6-9f24-7d55e64420c9",
            "59eaeebc-8a6b-44a6-9f24-7d55e64420c9"
        ]
    );
    assert!(
        alerts.iter().all(|a| a.principal != "unknown"),
        "{alerts:#?}"
    );
}

/// Alerts of `rule` in `alerts`, with a message listing every alert when none is.
fn of_rule<'a>(
    alerts: &'a [keytrail_detect::Alert],
    rule: &str,
) -> Vec<&'a keytrail_detect::Alert> {
    let v: Vec<_> = alerts.iter().filter(|a| a.rule_id == rule).collect();
    assert!(
        !v.is_empty(),
        "{rule} did not fire: {:#?}",
        alerts
            .iter()
            .map(|a| format!("{} {} {}", a.rule_id, a.principal, a.explanation))
            .collect::<Vec<_>>()
    );
    v
}

#[test]
fn otrf_m365_simulations_are_caught_from_management_api_records() {
    let dir = common::otrf_m365();
    let b = EngineBuilder::new()
        .ipintel(common::ipintel())
        .builtin_sigma(true);
    let (alerts, stats) = detect_path(&b, &dir);
    // 1 + 1 + 1 + 9 + 1 records, every one read.
    assert_eq!(stats.events, 13, "{stats:?}");
    assert_eq!(stats.skipped_records, 0, "{stats:?}");
    assert!(stats.diagnostics.is_empty(), "{:?}", stats.diagnostics);

    // o365spray: nine accounts fail from one address within a second.
    let spray = of_rule(&alerts, "keytrail.entra.credential-access.password-spray");
    assert_eq!(spray.len(), 1, "{spray:#?}");
    assert!(
        spray[0].explanation.contains("2a09:bac5:114:105::1a:9b"),
        "{}",
        spray[0].explanation
    );
    assert!(
        spray[0].explanation.contains("5 accounts"),
        "{}",
        spray[0].explanation
    );
    assert_eq!(spray[0].source_ips, ["2a09:bac5:114:105::1a:9b"]);
    // Nobody got in: no sign-in after it.
    assert!(
        alerts
            .iter()
            .all(|a| a.rule_id != "keytrail.entra.initial-access.sign-in-after-password-spray")
    );

    // Full access to Henrietta's mailbox for Lidia.
    let access = of_rule(
        &alerts,
        "keytrail.m365.collection.mailbox-permission-or-forwarding",
    );
    let full = access
        .iter()
        .find(|a| a.event_names == ["Add-MailboxPermission"])
        .expect("Add-MailboxPermission");
    assert_eq!(full.principal, "stinger@contoso.onmicrosoft.com");
    assert!(
        full.explanation
            .contains("FullAccess on mailbox Henrietta@contoso.onmicrosoft.com"),
        "{}",
        full.explanation
    );
    // IMAP and POP turned on for Lidia's mailbox.
    let legacy = access
        .iter()
        .find(|a| a.event_names == ["Set-CASMailbox"])
        .expect("Set-CASMailbox");
    assert!(
        legacy.explanation.contains("IMAP, POP"),
        "{}",
        legacy.explanation
    );
    assert_eq!(legacy.severity, keytrail_types::Severity::Low);

    // Alex made Company Administrator (Global Administrator).
    let role = of_rule(
        &alerts,
        "keytrail.entra.persistence.privileged-role-assigned",
    );
    assert_eq!(role[0].severity, keytrail_types::Severity::Critical);
    assert!(
        role[0]
            .explanation
            .contains("Alex@contoso.onmicrosoft.com to the Company Administrator role"),
        "{}",
        role[0].explanation
    );

    // Alex's mailbox exempted from auditing.
    let bypass = of_rule(&alerts, "keytrail.m365.defense-evasion.audit-disabled");
    assert!(
        bypass[0]
            .explanation
            .contains("exempted Alex@contoso.onmicrosoft.com"),
        "{}",
        bypass[0].explanation
    );
    assert_eq!(bypass[0].source_ips, ["104.28.196.199"], "port stripped");
}

#[test]
fn plaso_samples_read_with_their_fields_and_raise_only_what_happened() {
    let b = EngineBuilder::new()
        .ipintel(common::ipintel())
        .builtin_sigma(true);
    let read = |name: &str| -> (Vec<keytrail_detect::event::Event>, usize) {
        let items: Vec<_> = keytrail_detect::reader::read_path(&common::plaso(name)).collect();
        let errors = items.iter().filter(|r| r.is_err()).count();
        (items.into_iter().filter_map(Result::ok).collect(), errors)
    };

    // Google Cloud: nine audit entries; the two entries of another log (a
    // `jsonPayload` and a `textPayload`) are not audit logs and are skipped, said.
    let (gcp, skipped) = read("gcp_logging.jsonl");
    assert_eq!((gcp.len(), skipped), (9, 1));
    assert!(
        gcp.iter()
            .all(|e| e.provider() == keytrail_detect::event::Provider::Gcp)
    );
    let sa = gcp
        .iter()
        .find(|e| e.principal() == "dvwa-service-account@ketchup.iam.gserviceaccount.com")
        .expect("the service account's call");
    assert_eq!(sa.source_ip(), "34.72.217.225");
    assert_eq!(sa.event_name(), "google.iam.admin.v1.CreateServiceAccount");
    let (alerts, stats) = detect_path(&b, &common::plaso("gcp_logging.jsonl"));
    assert_eq!(stats.events, 9);
    assert_eq!(stats.skipped_records, 0, "a notice, not skipped records");
    let notice: Vec<_> = stats
        .diagnostics
        .iter()
        .filter(|d| d.kind == "not_audit_log")
        .collect();
    assert_eq!(notice.len(), 1, "{:?}", stats.diagnostics);
    assert!(
        notice[0].message.starts_with("2 Cloud Logging entries"),
        "{}",
        notice[0].message
    );
    // The firewall opened to 0.0.0.0/0 for RDP is SigmaHQ's firewall rule; the
    // e2-medium instance from a Debian image is no miner.
    let fired: BTreeSet<&str> = alerts.iter().map(|a| a.title.as_str()).collect();
    assert!(
        fired.contains("Google Cloud Firewall Modified or Deleted"),
        "{fired:?}"
    );
    assert!(
        alerts.iter().all(|a| !a.rule_id.contains("mining")),
        "{fired:?}"
    );

    // Azure Activity as the Azure SDK for Python writes it (snake_case members).
    let (azure, skipped) = read("azure_activity_log.jsonl");
    assert_eq!((azure.len(), skipped), (4, 0));
    let vm = azure
        .iter()
        .find(|e| e.event_name() == "Microsoft.Compute/virtualMachines/write")
        .expect("the VM write");
    assert_eq!(vm.provider(), keytrail_detect::event::Provider::Azure);
    assert_eq!(vm.principal(), "fakeemail@fakedomain.com");
    assert_eq!(vm.source_ip(), "1.2.3.4");
    assert_eq!(
        vm.recipient_account(),
        "12345678-9abc-defg-hijk-lmnopqrstuvw"
    );
    let app = azure
        .iter()
        .find(|e| e.event_name() == "Microsoft.Compute/disks/delete")
        .expect("the disk delete");
    assert_eq!(app.principal(), "12345678-9abc-defg-hijk-lmnopqrstuvw");

    // Microsoft 365: Exchange's own housekeeping (by SYSTEM, audit log kept on) and a
    // sign-in raise nothing.
    let (m365, skipped) = read("microsoft_audit_log.jsonl");
    assert_eq!((m365.len(), skipped), (4, 0));
    let (alerts, _) = detect_path(&b, &common::plaso("microsoft_audit_log.jsonl"));
    assert!(alerts.is_empty(), "{alerts:#?}");
}

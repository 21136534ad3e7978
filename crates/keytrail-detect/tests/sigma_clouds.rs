//! The embedded SigmaHQ rules for Azure and Entra ID, Google Cloud and Microsoft 365:
//! every one loads or is reported as unsupported with its reason, rules run only on
//! their own cloud's events (by `logsource`), and rules of each folder fire on
//! records in the shapes the exports write (see docs/detect-clouds.md for the field
//! mapping).

use std::collections::BTreeMap;

use keytrail_detect::event::Event;
use keytrail_detect::sigma::profile::Profile;
use keytrail_detect::sigma::{BUILTIN_PREFIX, SigmaRules};

fn rules() -> (SigmaRules, Vec<keytrail_types::Diagnostic>) {
    let (rules, _, diags) = SigmaRules::load(true, Profile::builtin(), &[]);
    (rules, diags)
}

#[test]
fn every_embedded_rule_of_the_other_clouds_loads_or_says_why_not() {
    let (rules, diags) = rules();
    let mut loaded: BTreeMap<&str, usize> = BTreeMap::new();
    let mut skipped: BTreeMap<&str, usize> = BTreeMap::new();
    for folder in ["azure", "gcp", "m365"] {
        for f in keytrail_rules::builtin_sigma(folder) {
            let name = format!("{BUILTIN_PREFIX}{}", f.path);
            let n = rules.rules.iter().filter(|r| r.path == name).count();
            let why = diags.iter().find(|d| d.subject == name);
            match (n, why) {
                (0, Some(d)) => {
                    assert!(!d.message.is_empty());
                    assert!(!d.is_error, "{name}: {d}");
                    *skipped.entry(folder).or_default() += 1;
                }
                (0, None) => panic!("{name}: neither loaded nor reported"),
                (_, _) => *loaded.entry(folder).or_default() += 1,
            }
        }
    }
    // Every Azure, Entra, Microsoft 365 and Google rule runs, the Google Workspace
    // ones included (`tests/workspace.rs`).
    assert_eq!(
        loaded.get("azure"),
        Some(&keytrail_rules::builtin_sigma("azure").len())
    );
    assert_eq!(
        loaded.get("m365"),
        Some(&keytrail_rules::builtin_sigma("m365").len())
    );
    assert!(skipped.is_empty(), "{skipped:?}");
    assert_eq!(loaded.get("gcp"), Some(&26), "{loaded:?}");
}

fn matched(rules: &SigmaRules, record: &str) -> Vec<String> {
    let ev = Event::parse_str(record).unwrap_or_else(|e| panic!("{e}: {record}"));
    let mut out = Vec::new();
    rules.matching(&ev, &mut String::new(), &mut out);
    out.iter()
        .map(|&i| rules.rules[i].info.id.clone())
        .collect()
}

#[test]
fn rules_fire_on_their_clouds_records_only() {
    let (rules, _) = rules();
    let cases: &[(&str, &str)] = &[
        // Google Cloud: firewall rule deleted (gcp.audit.method_name, case-insensitive).
        (
            "fe513c69-734c-4d4a-8548-ac5f609be82b",
            r#"{"protoPayload":{"@type":"type.googleapis.com/google.cloud.audit.AuditLog","authenticationInfo":{"principalEmail":"admin@corp.example"},
            "requestMetadata":{"callerIp":"73.15.20.40"},"serviceName":"compute.googleapis.com","methodName":"v1.compute.firewalls.delete",
            "resourceName":"projects/p/global/firewalls/allow-ssh"},"insertId":"x1","resource":{"type":"gce_firewall_rule","labels":{"project_id":"p"}},
            "timestamp":"2024-03-10T10:00:00.123456Z","logName":"projects/p/logs/cloudaudit.googleapis.com%2Factivity"}"#,
        ),
        // Azure Activity (REST shape): network security group written.
        (
            "d22b4df4-5a67-4859-a578-8c9a0b5af9df",
            r#"{"caller":"admin@corp.example","eventTimestamp":"2024-03-10T10:00:00.1234567Z","eventDataId":"e1",
            "operationName":{"value":"Microsoft.Network/networkSecurityGroups/write","localizedValue":"Create or Update Network Security Group"},
            "category":{"value":"Administrative"},"httpRequest":{"clientIpAddress":"73.15.20.40"},"status":{"value":"Succeeded"},
            "subscriptionId":"s1","resourceId":"/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Network/networkSecurityGroups/nsg"}"#,
        ),
        // Azure Activity (diagnostic export): the same, in upper case.
        (
            "d22b4df4-5a67-4859-a578-8c9a0b5af9df",
            r#"{"time":"2024-03-10T10:00:00.1234567Z","resourceId":"/SUBSCRIPTIONS/S1/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.NETWORK/NETWORKSECURITYGROUPS/NSG",
            "operationName":"MICROSOFT.NETWORK/NETWORKSECURITYGROUPS/WRITE","category":"Administrative","resultType":"Success",
            "callerIpAddress":"73.15.20.40","identity":{"claims":{"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn":"admin@corp.example"}}}"#,
        ),
        // Entra audit (Graph): owner added to an application (`properties.message`).
        (
            "74298991-9fc4-460e-a92e-511aa60baec1",
            r#"{"id":"Directory_1","category":"ApplicationManagement","result":"success","activityDisplayName":"Add owner to application",
            "activityDateTime":"2024-03-10T10:00:00Z","loggedByService":"Core Directory",
            "initiatedBy":{"user":{"userPrincipalName":"admin@corp.example","ipAddress":"73.15.20.40"}},"targetResources":[{"displayName":"billing-sync"}]}"#,
        ),
        // Entra sign-in (diagnostic export): a disabled account (`ResultType`, `ResultDescription`).
        (
            "4afac85c-224a-4dd7-b1af-8da40e1c60bd",
            r#"{"time":"2024-03-10T10:00:00Z","operationName":"Sign-in activity","category":"SignInLogs","resultType":"50057",
            "resultDescription":"Failure","callerIpAddress":"177.37.100.24",
            "properties":{"id":"s1","createdDateTime":"2024-03-10T10:00:00Z","userPrincipalName":"ex@corp.example","ipAddress":"177.37.100.24",
            "status":{"errorCode":50057,"failureReason":"Failure"}}}"#,
        ),
        // Microsoft 365 (Management API): MFA disabled.
        (
            "60de9b57-dc4d-48b9-a6a0-b39e0469f876",
            r#"{"CreationTime":"2024-03-10T10:00:00","Id":"m1","Operation":"Disable Strong Authentication.","OrganizationId":"t1","RecordType":8,
            "ResultStatus":"Success","UserId":"admin@corp.example","Workload":"AzureActiveDirectory","ClientIP":"73.15.20.40"}"#,
        ),
    ];
    for (id, record) in cases {
        let got = matched(&rules, record);
        assert!(
            got.contains(&id.to_string()),
            "{id} did not match; got {got:?} on {record}"
        );
    }
    // The same action names on another cloud's record match nothing of these rules:
    // an AWS record whose eventName is a Google method, a Google record whose method
    // is a CloudTrail name.
    let aws = r#"{"eventTime":"2024-03-10T10:00:00Z","eventName":"v1.compute.firewalls.delete","eventSource":"compute.googleapis.com",
        "userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::1:user/u"}}"#;
    assert!(!matched(&rules, aws).contains(&"fe513c69-734c-4d4a-8548-ac5f609be82b".to_string()));
    let gcp_named_like_aws = r#"{"protoPayload":{"methodName":"StopLogging","serviceName":"cloudtrail.amazonaws.com",
        "authenticationInfo":{"principalEmail":"a@corp.example"}},"timestamp":"2024-03-10T10:00:00Z","logName":"projects/p/logs/cloudaudit.googleapis.com%2Factivity"}"#;
    let got = matched(&rules, gcp_named_like_aws);
    assert!(
        got.iter().all(|id| rules
            .rules
            .iter()
            .find(|r| &r.info.id == id)
            .is_some_and(|r| !r.path.contains("/aws/"))),
        "{got:?}"
    );
}

//! The streaming join on hand-written events: sessions opened with
//! `GetSessionToken` and `GetFederationToken` are followed, chains stop at the
//! hop limit, per-key lists stay capped however many sources call, and calls
//! before the leak form the baseline.

use std::sync::Arc;

use keytrail_detect::Event;
use keytrail_detect::ipintel::IpIntel;
use keytrail_exposure::usage::{MAX_DEPTH, Tracker};

const LEAK: i64 = 1_709_510_400_000; // 2024-03-04T00:00:00Z

fn ev(t: i64, key: &str, name: &str, ip: &str, ua: &str, params: &str, resp: &str) -> Event {
    let time = keytrail_testkit::cloudtrail::format_time(t);
    Event::parse_str(&format!(
        r#"{{"eventVersion":"1.09","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/u","accountId":"111122223333","accessKeyId":"{key}"}},"eventTime":"{time}","eventSource":"sts.amazonaws.com","eventName":"{name}","awsRegion":"us-east-1","sourceIPAddress":"{ip}","userAgent":"{ua}","requestParameters":{params},"responseElements":{resp},"eventID":"e","eventType":"AwsApiCall"}}"#
    ))
    .expect("event")
}

fn tracker(key: &str) -> Tracker {
    Tracker::new(
        vec![(key.to_string(), Some(LEAK), true)],
        Arc::new(IpIntel::empty()),
    )
}

#[test]
fn session_and_federation_tokens_are_followed() {
    let mut t = tracker("AKIAAAAAAAAAAAAAAAAA");
    t.observe(&ev(
        LEAK - 1000,
        "AKIAAAAAAAAAAAAAAAAA",
        "GetCallerIdentity",
        "10.0.0.1",
        "aws-cli/2",
        "null",
        "null",
    ));
    // Before the leak: not followed.
    t.observe(&ev(
        LEAK - 500,
        "AKIAAAAAAAAAAAAAAAAA",
        "GetSessionToken",
        "10.0.0.1",
        "aws-cli/2",
        "{}",
        r#"{"credentials":{"accessKeyId":"ASIABEFORELEAKAAAAAA"}}"#,
    ));
    t.observe(&ev(
        LEAK + 1000,
        "AKIAAAAAAAAAAAAAAAAA",
        "GetSessionToken",
        "203.0.113.9",
        "Boto3/1",
        "{}",
        r#"{"credentials":{"accessKeyId":"ASIASESSIONAAAAAAAAA"}}"#,
    ));
    t.observe(&ev(LEAK + 2000, "AKIAAAAAAAAAAAAAAAAA", "GetFederationToken", "203.0.113.9", "Boto3/1", r#"{"name":"fed"}"#,
        r#"{"credentials":{"accessKeyId":"ASIAFEDERATEDAAAAAAA"},"federatedUser":{"arn":"arn:aws:sts::111122223333:federated-user/fed"}}"#));
    // A failed call returns nothing to follow.
    t.observe(&ev(
        LEAK + 2500,
        "AKIAAAAAAAAAAAAAAAAA",
        "AssumeRole",
        "203.0.113.9",
        "Boto3/1",
        "{}",
        "null",
    ));
    t.observe(&ev(
        LEAK + 3000,
        "ASIAFEDERATEDAAAAAAA",
        "ListBuckets",
        "198.51.100.7",
        "Boto3/1",
        "{}",
        "null",
    ));
    t.observe(&ev(
        LEAK + 3000,
        "ASIABEFORELEAKAAAAAA",
        "ListBuckets",
        "198.51.100.7",
        "Boto3/1",
        "{}",
        "null",
    ));
    let tr = &t.tracked[0];
    assert_eq!(tr.usage.uses_before, 2);
    assert_eq!(tr.usage.uses_after, 3);
    assert_eq!(tr.sessions.len(), 2);
    assert_eq!(tr.sessions[0].key, "ASIASESSIONAAAAAAAAA");
    assert_eq!(tr.sessions[0].via, "GetSessionToken");
    assert_eq!(tr.sessions[1].via, "GetFederationToken");
    assert_eq!(tr.sessions[1].session_name.as_deref(), Some("fed"));
    assert_eq!(
        tr.sessions[1].federated_user.as_deref(),
        Some("arn:aws:sts::111122223333:federated-user/fed")
    );
    assert_eq!(tr.sessions[1].usage.uses_after, 1);
    assert!(tr.sessions[1].usage.after.ips.has("198.51.100.7"));
    assert!(tr.usage.before.ips.has("10.0.0.1"));
    assert!(!tr.usage.before.ips.has("203.0.113.9"));
    assert!(tr.usage.after.clients.has("Boto3"));
}

#[test]
fn chains_stop_at_the_hop_limit() {
    let mut t = tracker("AKIAAAAAAAAAAAAAAAAA");
    let mut key = "AKIAAAAAAAAAAAAAAAAA".to_string();
    for i in 0..(MAX_DEPTH as usize + 3) {
        let next = format!("ASIACHAIN{i:011}")
            .replace('0', "A")
            .replace('1', "B")
            .replace('2', "C")
            .replace('3', "D")
            .replace('4', "E")
            .replace('5', "F")
            .replace('6', "G")
            .replace('7', "H");
        t.observe(&ev(
            LEAK + i as i64 * 1000,
            &key,
            "AssumeRole",
            "203.0.113.9",
            "Boto3/1",
            r#"{"roleArn":"arn:aws:iam::111122223333:role/r"}"#,
            &format!(r#"{{"credentials":{{"accessKeyId":"{next}"}}}}"#),
        ));
        key = next;
    }
    let tr = &t.tracked[0];
    assert_eq!(tr.sessions.len(), MAX_DEPTH as usize);
    assert_eq!(tr.sessions.last().unwrap().depth, MAX_DEPTH);
    assert_eq!(
        tr.sessions_not_followed, 1,
        "the chain ends at the first hop past the limit"
    );
}

#[test]
fn lists_stay_capped() {
    let mut t = tracker("AKIAAAAAAAAAAAAAAAAA");
    for i in 0..20_000u32 {
        let ip = format!("198.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        let ua = format!("client{i}/1.0");
        t.observe(&ev(
            LEAK + i64::from(i),
            "AKIAAAAAAAAAAAAAAAAA",
            "GetCallerIdentity",
            &ip,
            &ua,
            "null",
            "null",
        ));
    }
    let u = &t.tracked[0].usage;
    assert_eq!(u.uses_after, 20_000);
    assert_eq!(u.after.ips.values.len(), 64);
    assert_eq!(u.after.ips.more, 20_000 - 64);
    assert_eq!(u.after.clients.values.len(), 64);
    assert!(u.after.networks.values.len() <= 64);
}

/// A Google Cloud audit entry made with service-account key `key` (or by
/// `who` without a key), from `ip`.
fn gcp(t: i64, who: &str, key: Option<&str>, ip: &str, method: &str, request: &str) -> Event {
    let time = keytrail_testkit::cloudtrail::format_time(t);
    let key_name = key
        .map(|k| {
            format!(
                r#","serviceAccountKeyName":"//iam.googleapis.com/projects/p1/serviceAccounts/{who}/keys/{k}""#
            )
        })
        .unwrap_or_default();
    Event::parse_str(&format!(
        r#"{{"protoPayload":{{"@type":"type.googleapis.com/google.cloud.audit.AuditLog","authenticationInfo":{{"principalEmail":"{who}"{key_name}}},"requestMetadata":{{"callerIp":"{ip}","callerSuppliedUserAgent":"google-api-go-client/0.5"}},"serviceName":"iam.googleapis.com","methodName":"{method}","resourceName":"projects/p1/serviceAccounts/{who}","request":{request}}},"insertId":"i1","resource":{{"type":"service_account","labels":{{"project_id":"p1"}}}},"timestamp":"{time}","logName":"projects/p1/logs/cloudaudit.googleapis.com%2Factivity"}}"#
    ))
    .expect("event")
}

#[test]
fn google_cloud_keys_are_tracked_by_key_id() {
    const KEY: &str = "0123456789abcdef0123456789abcdef01234567";
    const SA: &str = "etl@p1.iam.gserviceaccount.com";
    let mut t = tracker(KEY);
    // From one of Google Cloud's own VMs, before the leak: the baseline.
    t.observe(&gcp(
        LEAK - 5000,
        SA,
        Some(KEY),
        "gce-internal-ip",
        "google.iam.admin.v1.GetServiceAccount",
        "null",
    ));
    // Another key of the same account, and the account without a key: not this key.
    t.observe(&gcp(
        LEAK + 1000,
        SA,
        Some("ffffffffffffffffffffffffffffffffffffffff"),
        "203.0.113.9",
        "google.iam.admin.v1.GetServiceAccount",
        "null",
    ));
    t.observe(&gcp(
        LEAK + 1500,
        SA,
        None,
        "203.0.113.9",
        "google.iam.admin.v1.GetServiceAccount",
        "null",
    ));
    // After the leak, from a new address.
    t.observe(&gcp(
        LEAK + 2000,
        SA,
        Some(KEY),
        "203.0.113.9",
        "google.iam.admin.v1.ListServiceAccountKeys",
        "null",
    ));
    // Disabled by an administrator, then deleted; a failed call changes nothing.
    let name = format!("projects/-/serviceAccounts/{SA}/keys/{KEY}");
    let req = format!(r#"{{"name":"{name}"}}"#);
    t.observe(&gcp(
        LEAK + 3000,
        "admin@example.com",
        None,
        "198.51.100.1",
        "google.iam.admin.v1.DisableServiceAccountKey",
        &req,
    ));
    t.observe(&gcp(
        LEAK + 4000,
        "admin@example.com",
        None,
        "198.51.100.1",
        "google.iam.admin.v1.DeleteServiceAccountKey",
        &req,
    ));
    let k = &t.tracked[0];
    assert_eq!((k.usage.uses_before, k.usage.uses_after), (1, 1));
    assert_eq!(k.usage.arn.as_deref(), Some(SA));
    assert_eq!(k.usage.account_id.as_deref(), Some("p1"));
    assert!(
        k.usage.hints.markers.contains("gce"),
        "{:?}",
        k.usage.hints.markers
    );
    assert!(k.usage.after.ips.has("203.0.113.9"));
    assert!(k.usage.before.ips.has("gce-internal-ip"));
    assert_eq!(
        k.usage.apis_after.values.keys().collect::<Vec<_>>(),
        ["iam:google.iam.admin.v1.ListServiceAccountKeys"]
    );
    let changes: Vec<(&str, &str)> = k
        .changes
        .iter()
        .map(|c| (c.status.as_str(), c.by.as_str()))
        .collect();
    assert_eq!(
        changes,
        [
            ("inactive", "admin@example.com"),
            ("deleted", "admin@example.com")
        ]
    );
    assert_eq!(t.coverage.events_by_cloud.get("gcp"), Some(&6));
    assert_eq!(
        t.coverage.span_by_cloud_ms.get("gcp"),
        Some(&(LEAK - 5000, LEAK + 4000))
    );
}

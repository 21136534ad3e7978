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

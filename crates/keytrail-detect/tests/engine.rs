//! Engine behaviour: learning period, state persistence across runs, owners-file
//! violations and bad input (Logstash NDJSON, gzip, truncation) through the public entry points.

mod common;

use std::io::Write;

use keytrail_detect::engine::EngineBuilder;
use keytrail_detect::event::Event;
use keytrail_detect::reader::read_path;

fn event(t: &str, ip: &str, ua: &str, name: &str) -> Event {
    Event::parse_str(&format!(
        r#"{{"eventTime":"{t}","eventID":"{t}-{name}","eventName":"{name}","eventSource":"s3.amazonaws.com","awsRegion":"eu-west-1",
        "sourceIPAddress":"{ip}","userAgent":"{ua}","requestParameters":{{"bucketName":"b1"}},
        "userIdentity":{{"type":"AssumedRole","arn":"arn:aws:sts::1:assumed-role/app/i-0123456789abcdef0","accessKeyId":"ASIAEXAMPLEEXAMPLE01",
        "sessionContext":{{"sessionIssuer":{{"arn":"arn:aws:iam::1:role/app"}}}}}}}}"#
    ))
    .unwrap()
}

fn day(d: u32, h: u32) -> String {
    format!("2024-03-{:02}T{:02}:00:00Z", d, h)
}

const SDK: &str = "aws-sdk-go-v2/1.26.1 os/linux lang/go#1.22.1";

/// A corrupt state file is kept aside (not silently replaced), the run goes
/// on from empty state, and a diagnostic names the file, position and the
/// copy.
#[test]
fn a_corrupt_state_file_is_kept_aside_and_reported() {
    let state = tempfile::tempdir().unwrap();
    let file = state.path().join("keytrail-detect-state.json");
    std::fs::write(&file, "{\"version\": 2, \"identities\": [}").unwrap();
    let b = EngineBuilder::new()
        .ipintel(common::ipintel())
        .state_dir(state.path());
    let (mut e, diags) = b.build();
    let d = diags
        .iter()
        .find(|d| d.kind == "state_invalid")
        .unwrap_or_else(|| panic!("{diags:#?}"));
    assert!(d.subject.ends_with("keytrail-detect-state.json"), "{d}");
    assert_eq!(d.line, Some(1));
    assert!(d.message.contains("kept aside as"), "{d}");
    let aside: Vec<_> = std::fs::read_dir(state.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("keytrail-detect-state.json.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(
        std::fs::read_to_string(state.path().join(&aside[0])).unwrap(),
        "{\"version\": 2, \"identities\": [}"
    );
    // The run goes on and saves fresh state next to the kept copy.
    e.process(&event(&day(1, 1), "52.94.10.10", SDK, "GetObject"));
    let (_, stats) = e.finish();
    assert_eq!(stats.events, 1);
    let saved = std::fs::read_to_string(&file).unwrap();
    assert!(
        saved.starts_with('{') && saved.contains("\"version\":2"),
        "{saved}"
    );
}

#[test]
fn learning_period_then_baseline_comparison_and_state_persistence() {
    let state = tempfile::tempdir().unwrap();
    // Each behavioural detector on its own (weak signals are not combined here).
    let b = EngineBuilder::new()
        .combine_weak_signals(false)
        .ipintel(common::ipintel())
        .state_dir(state.path());
    // Run 1: 8 days of SDK use from one AWS address: learning only, no behaviour alerts.
    let (mut e, _) = b.build();
    for d in 1..=8 {
        for h in 0..24 {
            e.process(&event(&day(d, h), "52.94.10.10", SDK, "GetObject"));
        }
    }
    // A curl call from the same network while still learning would be reported only
    // after the learning period: day 2 is inside it.
    let (alerts, stats) = e.finish();
    assert_eq!(stats.events, 8 * 24);
    assert!(
        alerts.iter().all(|a| !a.rule_id.contains("behaviour.")),
        "{alerts:#?}"
    );
    assert!(state.path().join("keytrail-detect-state.json").exists());
    // Run 2 continues from the saved baseline: a browser from a residential network.
    let (mut e, _) = b.build();
    e.process(&event(
        &day(10, 3),
        "79.200.20.30",
        "Mozilla/5.0 (X11; Linux x86_64)",
        "GetObject",
    ));
    let (alerts, _) = e.finish();
    let rules: Vec<&str> = alerts.iter().map(|a| a.rule_id.as_str()).collect();
    assert!(
        rules.contains(&"keytrail.aws.behaviour.server-key-interactive-client"),
        "{rules:?}"
    );
    assert!(
        rules.contains(&"keytrail.aws.behaviour.non-server-network"),
        "{rules:?}"
    );
    let nc = alerts
        .iter()
        .find(|a| a.rule_id == "keytrail.aws.behaviour.new-country")
        .expect("new country");
    assert!(
        nc.explanation.contains("baseline has"),
        "{}",
        nc.explanation
    );
    assert_eq!(nc.principal, "arn:aws:iam::1:role/app");
    assert_eq!(nc.access_key_id.as_deref(), Some("ASIAEXAMPLEEXAMPLE01"));
}

#[test]
fn owners_file_expectations() {
    let dir = tempfile::tempdir().unwrap();
    let owners = dir.path().join("keytrail.owners.yaml");
    std::fs::write(&owners, "version: 1\nidentities:\n  - arn: arn:aws:iam::1:role/app\n    owner: team-a\n    expected_usage:\n      regions: [eu-west-1]\n      source_networks: [52.94.10.0/24]\n      services: [s3]\n").unwrap();
    let (mut e, d) = EngineBuilder::new().owners_file(&owners).build();
    assert!(d.is_empty(), "{d:?}");
    e.process(&event(&day(1, 1), "52.94.10.10", SDK, "GetObject"));
    e.process(&event(&day(1, 2), "198.51.100.7", SDK, "GetObject"));
    let (alerts, _) = e.finish();
    let v: Vec<_> = alerts
        .iter()
        .filter(|a| a.rule_id == "keytrail.aws.owners.expected-usage-violation")
        .collect();
    assert_eq!(v.len(), 1, "{alerts:#?}");
    assert!(v[0].explanation.contains("team-a") && v[0].explanation.contains("198.51.100.7"));
}

#[test]
fn logstash_ndjson_gzip_and_truncated_inputs() {
    let dir = tempfile::tempdir().unwrap();
    // OTRF-style NDJSON with @timestamp, gzipped, then cut short.
    let src = std::fs::read(common::otrf_ec2_exfiltration()).unwrap();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&src).unwrap();
    let gz = enc.finish().unwrap();
    std::fs::write(dir.path().join("full.json.gz"), &gz).unwrap();
    let items: Vec<_> = read_path(&dir.path().join("full.json.gz")).collect();
    assert_eq!(items.iter().filter(|r| r.is_ok()).count(), 103);
    std::fs::write(dir.path().join("cut.json.gz"), &gz[..gz.len() / 2]).unwrap();
    let items: Vec<_> = read_path(&dir.path().join("cut.json.gz")).collect();
    let ok = items.iter().filter(|r| r.is_ok()).count();
    assert!(ok > 10 && ok < 103, "{ok}");
    assert!(
        items
            .iter()
            .any(|r| matches!(r, Err(d) if d.subject.ends_with("cut.json.gz")))
    );
    // Invalid lines are skipped and counted per file by the engine.
    let mut nd = String::from_utf8(src).unwrap();
    nd.insert_str(0, "{\"eventTime\": oops}\n");
    std::fs::write(dir.path().join("bad.ndjson"), nd).unwrap();
    let (mut e, _) = EngineBuilder::new().build();
    e.run(read_path(&dir.path().join("bad.ndjson")));
    let (_, stats) = e.finish();
    assert_eq!(stats.events, 103);
    assert_eq!(stats.skipped_records, 1);
    assert_eq!(stats.skipped_by_file.values().sum::<u64>(), 1);
    assert!(
        stats
            .skipped_by_file
            .keys()
            .next()
            .unwrap()
            .ends_with("bad.ndjson")
    );
}

/// Global services (IAM, STS's global endpoint, Organizations…) are logged in
/// us-east-1 wherever the caller works: they neither raise new-region alerts nor
/// mark us-east-1 as a region in use, so a later RunInstances there still stands out.
#[test]
fn global_service_calls_do_not_count_as_region_use() {
    let call = |t: &str, source: &str, name: &str, region: &str| {
        Event::parse_str(&format!(
            r#"{{"eventTime":"{t}","eventID":"{t}-{name}","eventName":"{name}","eventSource":"{source}","awsRegion":"{region}",
            "sourceIPAddress":"52.94.10.10","userAgent":"{SDK}","recipientAccountId":"1",
            "userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::1:user/deployer","accountId":"1","accessKeyId":"AKIAEXAMPLEEXAMPLE01"}}}}"#
        ))
        .unwrap()
    };
    // Nine days of EC2 work in eu-west-1 with daily IAM and STS calls, then `last`.
    let run = |last: Event| {
        let (mut e, _) = EngineBuilder::new().combine_weak_signals(false).build();
        for d in 1..=9 {
            for h in 0..24 {
                e.process(&call(
                    &day(d, h),
                    "ec2.amazonaws.com",
                    "DescribeInstances",
                    "eu-west-1",
                ));
            }
            e.process(&call(
                &day(d, 12),
                "iam.amazonaws.com",
                "ListRoles",
                "us-east-1",
            ));
            e.process(&call(
                &day(d, 13),
                "sts.amazonaws.com",
                "GetCallerIdentity",
                "us-east-1",
            ));
        }
        e.process(&last);
        e.finish().0
    };
    let alerts = run(call(
        &day(10, 2),
        "iam.amazonaws.com",
        "GetUser",
        "us-east-1",
    ));
    assert!(
        alerts.iter().all(|a| !a.rule_id.contains("new-region")),
        "{alerts:#?}"
    );
    let alerts = run(call(
        &day(10, 2),
        "ec2.amazonaws.com",
        "RunInstances",
        "us-east-1",
    ));
    let region = alerts
        .iter()
        .find(|a| a.rule_id == "keytrail.aws.behaviour.new-region")
        .unwrap_or_else(|| panic!("no new-region alert: {alerts:#?}"));
    assert_eq!(region.event_names, ["RunInstances"]);
}

/// A CloudTrail Insights record (unusual call volume in the account) is not a call by
/// an identity: it builds no baseline and raises no identity alert, whatever API it is
/// about.
#[test]
fn insights_records_are_not_identity_activity() {
    let insight = |t: &str, name: &str| {
        Event::parse_str(&format!(
            r#"{{"eventVersion":"1.08","eventTime":"{t}","awsRegion":"ap-southeast-3","eventID":"{t}-i",
            "eventType":"AwsCloudTrailInsight","recipientAccountId":"1","sharedEventID":"s","eventCategory":"Insight",
            "eventSource":"ec2.amazonaws.com","eventName":"{name}",
            "insightDetails":{{"state":"Start","eventSource":"ec2.amazonaws.com","eventName":"{name}","insightType":"ApiCallRateInsight",
            "insightContext":{{"statistics":{{"baseline":{{"average":0.1}},"insight":{{"average":40.0}}}}}}}}}}"#
        ))
        .unwrap()
    };
    let (mut e, _) = EngineBuilder::new().learning_period_ms(0).build();
    for d in 1..=3 {
        e.process(&event(&day(d, 10), "52.94.10.10", SDK, "GetObject"));
    }
    for h in 0..3 {
        e.process(&insight(&day(4, h), "RunInstances"));
        e.process(&insight(&day(4, h), "StopLogging"));
    }
    let (alerts, stats) = e.finish();
    assert_eq!(stats.events, 9);
    assert_eq!(stats.identities, 1, "an Insights record made an identity");
    assert!(alerts.is_empty(), "{alerts:#?}");
}

/// The engine publishes its counts for a progress display while it runs.
#[test]
fn progress_counts_are_published_while_running() {
    use std::sync::atomic::Ordering::Relaxed;
    let progress = std::sync::Arc::new(keytrail_detect::engine::Progress::default());
    let (mut e, _) = EngineBuilder::new().progress(progress.clone()).build();
    for i in 0..10_000u32 {
        let t = format!(
            "2024-03-01T{:02}:{:02}:{:02}Z",
            i / 3600,
            i / 60 % 60,
            i % 60
        );
        e.process(&event(&t, "52.94.10.10", SDK, "GetObject"));
    }
    assert_eq!(progress.events.load(Relaxed), 8192);
    let (_, stats) = e.finish();
    assert_eq!(stats.events, 10_000);
}

//! `keytrail detect`: exit codes, JSONL alerts on a real Stratus Red Team capture
//! (CloudTrail StopLogging), the embedded SigmaHQ rules and rules from disk with
//! author attribution, a benign
//! generated log, bad records counted on stderr, and stdin.

use crate::CliTest;

fn stratus(name: &str) -> String {
    keytrail_testkit::data::stratus(name).display().to_string()
}

fn alerts(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is a JSON alert"))
        .collect()
}

/// One benign programmatic read from a server key, as NDJSON.
fn benign_record(i: u32) -> String {
    format!(
        concat!(
            r#"{{"eventVersion":"1.08","userIdentity":{{"type":"IAMUser","principalId":"AIDAEXAMPLE","#,
            r#""arn":"arn:aws:iam::111122223333:user/app","accountId":"111122223333","#,
            r#""accessKeyId":"AKIAEXAMPLEEXAMPLE12","userName":"app"}},"#,
            r#""eventTime":"2024-05-01T10:{:02}:00Z","eventSource":"ec2.amazonaws.com","#,
            r#""eventName":"DescribeInstances","awsRegion":"us-east-1","#,
            r#""sourceIPAddress":"203.0.113.10","userAgent":"aws-sdk-go-v2/1.2","#,
            r#""eventID":"e{}","eventType":"AwsApiCall","recipientAccountId":"111122223333"}}"#
        ),
        i, i
    )
}

#[test]
fn stratus_stop_logging_exits_1_with_jsonl_alert() {
    let t = CliTest::new();
    let r = t.run(&[
        "detect",
        &stratus("aws.defense-evasion.cloudtrail-stop"),
        "--format",
        "jsonl",
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    let a = alerts(&r.stdout);
    let stop = a
        .iter()
        .find(|a| a["rule_id"] == "keytrail.aws.defense-evasion.logging-disabled")
        .unwrap_or_else(|| panic!("no logging-disabled alert in {}", r.stdout));
    assert_eq!(stop["technique"], "T1562.008");
    assert_eq!(stop["event_names"][0], "StopLogging");
    assert!(
        stop["principal"]
            .as_str()
            .unwrap()
            .starts_with("arn:aws:iam::")
    );
    assert!(!stop["event_ids"].as_array().unwrap().is_empty());
    assert!(r.stderr.contains("1 events"), "{}", r.stderr);
}

#[test]
fn sigma_rules_add_attributed_alerts_and_ocsf_output() {
    let t = CliTest::new();
    let sigma = keytrail_testkit::data::sigma_aws();
    let r = t.run(&[
        "detect",
        &stratus("aws.defense-evasion.cloudtrail-stop"),
        "--sigma",
        &sigma.display().to_string(),
        "--format",
        "jsonl",
        "--output",
        "alerts.jsonl",
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(r.stdout, "");
    let a = alerts(&t.read("alerts.jsonl"));
    let s = a
        .iter()
        .find(|a| a["source"] == "sigma")
        .unwrap_or_else(|| panic!("no Sigma alert in {a:?}"));
    assert!(s["author"].as_str().is_some_and(|x| !x.is_empty()), "{s}");

    let r = t.run(&[
        "detect",
        &stratus("aws.defense-evasion.cloudtrail-stop"),
        "--format",
        "ocsf",
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(v.as_array().unwrap().iter().all(|f| f["class_uid"] == 2004));
}

/// The SigmaHQ AWS rules embedded in keytrail run with no flag, each alert naming the
/// rule's author; `--no-default-sigma` turns them off.
#[test]
fn embedded_sigma_rules_run_by_default_and_can_be_turned_off() {
    let t = CliTest::new();
    let capture = stratus("aws.defense-evasion.cloudtrail-stop");
    let r = t.run(&["detect", &capture, "--format", "jsonl"]);
    assert_eq!(r.code, 1, "{r:?}");
    let a = alerts(&r.stdout);
    let s = a
        .iter()
        .find(|a| a["source"] == "sigma")
        .unwrap_or_else(|| panic!("no embedded Sigma alert in {a:?}"));
    assert_eq!(s["title"], "AWS CloudTrail Important Change");
    assert_eq!(s["author"], "vitaliy0x1");
    assert!(
        r.stderr.contains("embedded SigmaHQ cloud rules (AWS, Azure and Entra ID, Google Cloud, Microsoft 365; Detection Rule License 1.1; default profile: 2 off, 0 at another level), 0 from --sigma"),
        "{}",
        r.stderr
    );
    let off = t.run(&[
        "detect",
        &capture,
        "--format",
        "jsonl",
        "--no-default-sigma",
    ]);
    assert_eq!(off.code, 1, "{off:?}");
    assert!(alerts(&off.stdout).iter().all(|a| a["source"] != "sigma"));
    assert!(
        off.stderr.contains("embedded SigmaHQ rules off"),
        "{}",
        off.stderr
    );
}

#[test]
fn benign_log_exits_0_and_counts_bad_records() {
    let t = CliTest::new();
    let mut text: String = (0..20).map(|i| benign_record(i) + "\n").collect();
    text.push_str("{\"eventTime\": \"2024-05-01T11:00:00Z\", broken\n");
    t.write("logs/app.jsonl", &text);
    let r = t.run(&["detect", "logs", "--format", "jsonl"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout, "");
    assert!(r.stderr.contains("20 events"), "{}", r.stderr);
    assert!(
        r.stderr.contains("skipped 1 record(s) in 1 file(s)"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("app.jsonl"), "{}", r.stderr);
}

#[test]
fn stdin_and_two_threads_agree() {
    let t = CliTest::new();
    let capture =
        std::fs::read_to_string(stratus("aws.persistence.iam-create-admin-user")).unwrap();
    let r1 = t.run_stdin(&["detect", "-", "--format", "jsonl"], &capture);
    assert_eq!(r1.code, 1, "{r1:?}");
    t.write("c/capture.json", &capture);
    let r2 = t.run(&["detect", "c", "--format", "jsonl", "--threads", "2"]);
    assert_eq!(r2.code, 1, "{r2:?}");
    let ids = |s: &str| {
        let mut v: Vec<String> = alerts(s).iter().map(|a| a["rule_id"].to_string()).collect();
        v.sort();
        v
    };
    assert_eq!(ids(&r1.stdout), ids(&r2.stdout));
}

#[test]
fn missing_input_exits_2() {
    let t = CliTest::new();
    let r = t.run(&["detect", "no-such-dir"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("no-such-dir"), "{}", r.stderr);
}

/// JSONL and OCSF are streamed as alerts close: the same alerts in both, byte-identical
/// for one thread and the default (one per CPU), valid OCSF 1.3.0, an empty OCSF array
/// without alerts, and an unwritable output is an error naming the file.
#[test]
fn streamed_jsonl_and_ocsf_agree_across_thread_counts() {
    let t = CliTest::new();
    let dir = keytrail_testkit::data::stratus_dir();
    let dir = dir.display().to_string();
    let one = t.run(&["detect", &dir, "--format", "jsonl", "--threads", "1"]);
    assert_eq!(one.code, 1, "{one:?}");
    let auto = t.run(&["detect", &dir, "--format", "jsonl"]);
    assert_eq!(auto.code, 1, "{auto:?}");
    assert_eq!(one.stdout, auto.stdout, "thread count changed the JSONL");
    assert!(!auto.stderr.contains('\r'), "progress drawn on a pipe");
    let jsonl = alerts(&one.stdout);
    assert!(jsonl.len() > 10, "{} alerts", jsonl.len());
    let ocsf = t.run(&["detect", &dir, "--format", "ocsf", "--threads", "1"]);
    assert_eq!(ocsf.code, 1, "{ocsf:?}");
    let findings: Vec<serde_json::Value> = serde_json::from_str(&ocsf.stdout).unwrap();
    assert_eq!(findings.len(), jsonl.len());
    // The streamed array is valid OCSF, as the encoder's own output is.
    let errors = keytrail_testkit::data::ocsf_errors("1.3.0", &ocsf.stdout);
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    let mut a: Vec<String> = jsonl.iter().map(|a| a["explanation"].to_string()).collect();
    let mut b: Vec<String> = findings.iter().map(|f| f["message"].to_string()).collect();
    a.sort();
    b.sort();
    assert_eq!(a, b);
    assert!(
        one.stderr.contains(&format!("{} alert(s)", jsonl.len())),
        "{}",
        one.stderr
    );

    // No alerts: an empty OCSF array.
    t.write("benign/app.jsonl", &benign_record(1));
    let empty = t.run(&["detect", "benign", "--format", "ocsf"]);
    assert_eq!(empty.code, 0, "{empty:?}");
    let none: Vec<serde_json::Value> = serde_json::from_str(&empty.stdout).unwrap();
    assert!(none.is_empty());

    let bad = t.run(&[
        "detect",
        &dir,
        "--format",
        "jsonl",
        "-o",
        "no/such/dir/a.jsonl",
    ]);
    assert_eq!(bad.code, 2, "{bad:?}");
    assert!(bad.stderr.contains("a.jsonl"), "{}", bad.stderr);
}

/// A StopLogging call (raises the playbook's logging-disabled alert, high severity).
fn stop_logging(minute: u32) -> String {
    format!(
        concat!(
            r#"{{"eventVersion":"1.08","userIdentity":{{"type":"IAMUser","principalId":"AIDAEXAMPLE","#,
            r#""arn":"arn:aws:iam::111122223333:user/app","accountId":"111122223333","#,
            r#""accessKeyId":"AKIAEXAMPLEEXAMPLE12","userName":"app"}},"#,
            r#""eventTime":"2024-05-01T11:{:02}:00Z","eventSource":"cloudtrail.amazonaws.com","#,
            r#""eventName":"StopLogging","awsRegion":"us-east-1","#,
            r#""sourceIPAddress":"203.0.113.10","userAgent":"aws-cli/2.15.0","#,
            r#""requestParameters":{{"name":"main-trail"}},"#,
            r#""eventID":"stop{}","eventType":"AwsApiCall","recipientAccountId":"111122223333"}}"#
        ),
        minute, minute
    )
}

/// Five benign reads, then one StopLogging (one playbook alert).
fn benign_then_stop_logging() -> Vec<String> {
    (0..5).map(benign_record).chain([stop_logging(1)]).collect()
}

#[test]
fn hostile_files_beside_good_ones_end_with_diagnostics() {
    let t = CliTest::new();
    let good = benign_then_stop_logging();
    t.write("logs/a/good.json", &format!("[{}]", good.join(",")));
    // Each of these once hung the reader or grew its memory without bound.
    t.write("logs/b/stray-closer.json", "[}");
    t.write("logs/c/records.json", r#"{"Records":[}"#);
    t.write("logs/d/scalar.json", "[1}");
    let r = t.run(&[
        "detect",
        "logs",
        "--no-default-sigma",
        "--format",
        "jsonl",
        "--threads",
        "2",
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(alerts(&r.stdout).len(), 1, "{}", r.stdout);
    for f in ["stray-closer.json", "records.json", "scalar.json"] {
        assert!(r.stderr.contains(f), "no diagnostic for {f}: {}", r.stderr);
    }
}

#[test]
fn min_severity_exclude_rule_and_quiet() {
    let t = CliTest::new();
    let recs = benign_then_stop_logging();
    let log = t.write("log.json", &format!("[{}]", recs.join(",")));
    let log = log.display().to_string();
    let r = t.run(&["detect", "--no-default-sigma", &log, "--format", "jsonl"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("alerts by rule:"), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("keytrail.aws.defense-evasion.logging-disabled")
    );
    let r = t.run(&[
        "detect",
        "--no-default-sigma",
        &log,
        "--exclude-rule",
        "keytrail.aws.defense-evasion.*",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr
            .contains("left out by --min-severity/--exclude-rule"),
        "{}",
        r.stderr
    );
    let r = t.run(&[
        "detect",
        "--no-default-sigma",
        &log,
        "--min-severity",
        "critical",
        "-q",
    ]);
    assert_eq!((r.code, r.stderr.as_str()), (0, ""), "{r:?}");
    let r = t.run(&[
        "detect",
        "--no-default-sigma",
        &log,
        "--exclude-rule",
        "[unclosed",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("invalid rule glob"), "{}", r.stderr);
}

#[test]
fn state_runs_skip_files_already_read_and_repeat_no_alert() {
    let t = CliTest::new();
    let recs = benign_then_stop_logging();
    t.write("logs/one.json", &format!("[{}]", recs.join(",")));
    let state = t.root().join("state").display().to_string();
    let run = || {
        t.run(&[
            "detect",
            "--no-default-sigma",
            "logs",
            "--state",
            &state,
            "--format",
            "jsonl",
        ])
    };
    let r = run();
    assert_eq!(r.code, 1, "{r:?}");
    let r = run();
    assert_eq!((r.code, r.stdout.as_str()), (0, ""), "{r:?}");
    assert!(r.stderr.contains("1 file(s) already read"), "{}", r.stderr);
    // A new file with a second StopLogging: only it is read.
    t.write("logs/two.json", &format!("[{}]", stop_logging(30)));
    let r = run();
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(alerts(&r.stdout).len(), 1);
    assert!(r.stderr.contains("detect: 1 events"), "{}", r.stderr);
}

//! Sigma semantics on small hand-written rules and events: modifiers, null, lists
//! versus `|all`, wildcards and escapes, keywords, conditions, dotted paths and
//! correlation rules.

use keytrail_detect::event::Event;
use keytrail_detect::sigma::{SigmaRules, SigmaState};

fn ev(json: &str) -> Event {
    Event::parse_str(json).unwrap()
}

fn rules(yaml: &str) -> SigmaRules {
    let (r, d) = SigmaRules::from_sources([("test.yml", yaml)]);
    assert!(d.iter().all(|d| !d.is_error), "{d:?}");
    r
}

fn matches(yaml: &str, event: &str) -> bool {
    let r = rules(yaml);
    let e = ev(event);
    let mut out = Vec::new();
    r.matching(&e, &mut String::new(), &mut out);
    !out.is_empty()
}

fn rule(detection: &str) -> String {
    format!(
        "title: t\nid: r1\nauthor: Test Author\nlogsource: {{product: aws, service: cloudtrail}}\nlevel: high\ndetection:\n{detection}"
    )
}

const E: &str = r#"{"eventTime":"2024-01-01T00:00:00Z","eventName":"CreateUser","eventSource":"iam.amazonaws.com",
 "userAgent":"aws-cli/2.0 Python/3.11 Linux","sourceIPAddress":"10.1.2.3","errorCode":null,
 "requestParameters":{"userName":"Backdoor*Admin","tags":["a","B"],"count":7,"policy":"aHR0cDovL2V4YW1wbGU="},
 "userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::1:user/alice","userName":"alice"}}"#;

#[test]
fn case_insensitive_equality_and_lists_are_or() {
    assert!(matches(
        &rule("  sel:\n    eventName: createuser\n  condition: sel"),
        E
    ));
    assert!(matches(
        &rule("  sel:\n    eventName: [DeleteUser, CREATEUSER]\n  condition: sel"),
        E
    ));
    assert!(!matches(
        &rule("  sel:\n    eventName: [DeleteUser, CreateRole]\n  condition: sel"),
        E
    ));
    assert!(!matches(
        &rule("  sel:\n    eventName|cased: createuser\n  condition: sel"),
        E
    ));
}

#[test]
fn string_modifiers_and_all() {
    assert!(matches(
        &rule("  sel:\n    userAgent|contains: PYTHON\n  condition: sel"),
        E
    ));
    assert!(matches(
        &rule("  sel:\n    userAgent|startswith: aws-cli\n  condition: sel"),
        E
    ));
    assert!(matches(
        &rule("  sel:\n    userAgent|endswith: linux\n  condition: sel"),
        E
    ));
    assert!(matches(
        &rule("  sel:\n    userAgent|contains|all: [aws-cli, python]\n  condition: sel"),
        E
    ));
    assert!(!matches(
        &rule("  sel:\n    userAgent|contains|all: [aws-cli, windows]\n  condition: sel"),
        E
    ));
    assert!(matches(
        &rule("  sel:\n    userAgent|re: '^aws-cli/\\d'\n  condition: sel"),
        E
    ));
    assert!(!matches(
        &rule("  sel:\n    userAgent|re: '^AWS-CLI'\n  condition: sel"),
        E
    ));
    assert!(matches(
        &rule("  sel:\n    userAgent|re|i: '^AWS-CLI'\n  condition: sel"),
        E
    ));
    // Expressions with a required literal are prefiltered on it; the result is the same.
    assert!(matches(
        &rule(
            "  sel:\n    userAgent|re: '.+cli/\\d.+'\n  filter:\n    eventName: Nope\n  condition: sel and not filter"
        ),
        E
    ));
    assert!(!matches(
        &rule(
            "  sel:\n    userAgent|re: '.+cli/\\d.+zz'\n  filter:\n    eventName: Nope\n  condition: sel and not filter"
        ),
        E
    ));
    assert!(!matches(
        &rule("  sel:\n    requestParameters.nothing|re: '.+cli/.+'\n  condition: sel"),
        E
    ));
}

#[test]
fn wildcards_and_escapes() {
    assert!(matches(
        &rule("  sel:\n    userAgent: 'aws-cli/?.0 *'\n  condition: sel"),
        E
    ));
    assert!(!matches(
        &rule("  sel:\n    userAgent: 'aws-cli/?? *'\n  condition: sel"),
        E
    ));
    // `\*` is a literal star.
    assert!(matches(
        &rule("  sel:\n    requestParameters.userName: 'Backdoor\\*Admin'\n  condition: sel"),
        E
    ));
    let other = E.replace("Backdoor*Admin", "BackdoorXAdmin");
    assert!(!matches(
        &rule("  sel:\n    requestParameters.userName: 'Backdoor\\*Admin'\n  condition: sel"),
        &other
    ));
    assert!(matches(
        &rule("  sel:\n    requestParameters.userName: 'Backdoor*Admin'\n  condition: sel"),
        &other
    ));
}

#[test]
fn null_exists_numbers_cidr_base64_and_arrays() {
    // errorCode is JSON null; errorMessage is missing: both match null.
    assert!(matches(
        &rule("  sel:\n    errorCode: null\n    errorMessage: null\n  condition: sel"),
        E
    ));
    assert!(!matches(
        &rule("  sel:\n    eventName: null\n  condition: sel"),
        E
    ));
    assert!(matches(
        &rule(
            "  sel:\n    errorMessage|exists: false\n    eventName|exists: true\n  condition: sel"
        ),
        E
    ));
    assert!(matches(
        &rule("  sel:\n    requestParameters.count|gte: 7\n  condition: sel"),
        E
    ));
    assert!(!matches(
        &rule("  sel:\n    requestParameters.count|gt: 7\n  condition: sel"),
        E
    ));
    assert!(matches(
        &rule("  sel:\n    requestParameters.count: 7\n  condition: sel"),
        E
    ));
    assert!(matches(
        &rule("  sel:\n    sourceIPAddress|cidr: 10.0.0.0/8\n  condition: sel"),
        E
    ));
    assert!(!matches(
        &rule("  sel:\n    sourceIPAddress|cidr: 192.168.0.0/16\n  condition: sel"),
        E
    ));
    assert!(matches(
        &rule(
            "  sel:\n    requestParameters.policy|base64offset|contains: 'http://'\n  condition: sel"
        ),
        E
    ));
    assert!(matches(
        &rule("  sel:\n    requestParameters.tags: b\n  condition: sel"),
        E
    ));
    assert!(matches(
        &rule(
            "  sel:\n    userIdentity.userName|fieldref: userIdentity.userName\n  condition: sel"
        ),
        E
    ));
}

#[test]
fn keywords_conditions_and_list_of_maps() {
    assert!(matches(
        &rule("  keywords:\n    - 'user/ALICE'\n  condition: keywords"),
        E
    ));
    assert!(!matches(
        &rule("  keywords:\n    - bob\n  condition: keywords"),
        E
    ));
    let d = "  sel_a:\n    eventName: CreateUser\n  sel_b:\n    eventName: DeleteUser\n  filter_1:\n    userIdentity.type: Root\n  filter_2:\n    userAgent|contains: console\n";
    assert!(matches(
        &rule(&format!("{d}  condition: 1 of sel_* and not 1 of filter_*")),
        E
    ));
    assert!(!matches(&rule(&format!("{d}  condition: all of sel_*")), E));
    assert!(matches(
        &rule(&format!(
            "{d}  condition: (sel_b or sel_a) and not (filter_1 or filter_2)"
        )),
        E
    ));
    // `and` binds tighter than `or`; `not` tighter than `and`.
    assert!(matches(
        &rule(&format!("{d}  condition: sel_b and filter_1 or sel_a")),
        E
    ));
    assert!(!matches(
        &rule(&format!(
            "{d}  condition: sel_a and not (filter_1 or sel_a)"
        )),
        E
    ));
    assert!(!matches(
        &rule(&format!("{d}  condition: not sel_a and sel_a")),
        E
    ));
    // A list of maps is OR over maps, AND within each.
    let lm = "  sel:\n    - eventName: DeleteUser\n    - eventName: CreateUser\n      userAgent|contains: aws-cli\n  condition: sel";
    assert!(matches(&rule(lm), E));
    let (_, d) = SigmaRules::from_sources([(
        "bad.yml",
        rule("  sel:\n    eventName|nosuchmod: x\n  condition: sel").as_str(),
    )]);
    assert!(
        d.iter()
            .any(|d| d.is_error && d.subject == "bad.yml" && d.message.contains("nosuchmod")),
        "{d:?}"
    );
    let (_, d) = SigmaRules::from_sources([(
        "bad2.yml",
        rule("  sel:\n    eventName: x\n  condition: sel and missing").as_str(),
    )]);
    assert!(
        d.iter().any(|d| d.is_error && d.subject == "bad2.yml"),
        "{d:?}"
    );
}

fn at(t: &str, name: &str, user: &str, bucket: &str) -> Event {
    ev(&format!(
        r#"{{"eventTime":"{t}","eventName":"{name}","eventSource":"s3.amazonaws.com","eventID":"{t}{name}",
        "requestParameters":{{"bucketName":"{bucket}"}},"userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::1:user/{user}"}}}}"#
    ))
}

const CORR: &str = r#"
title: s3 get
id: base-get
name: s3_get
author: Base Author
logsource: {product: aws, service: cloudtrail}
detection:
  sel: {eventName: GetObject}
  condition: sel
---
title: s3 list
name: s3_list
logsource: {product: aws, service: cloudtrail}
detection:
  sel: {eventName: ListObjects}
  condition: sel
---
title: many gets
id: corr-count
author: Corr Author
level: high
correlation:
  type: event_count
  rules: [s3_get]
  group-by: [userIdentity.arn]
  timespan: 10m
  condition: {gte: 3}
---
title: many buckets
id: corr-values
correlation:
  type: value_count
  rules: [base-get]
  group-by: [userIdentity.arn]
  timespan: 1h
  condition: {field: requestParameters.bucketName, gte: 2}
---
title: list then get
id: corr-temporal
correlation:
  type: temporal_ordered
  rules: [s3_list, s3_get]
  group-by: [userIdentity.arn]
  timespan: 5m
"#;

#[test]
fn correlation_rules_count_values_and_order_per_group() {
    let r = rules(CORR);
    assert_eq!((r.rules.len(), r.correlations.len()), (2, 3));
    assert!(
        r.rules.iter().all(|x| !x.generate),
        "referenced rules do not alert on their own"
    );
    let mut st = SigmaState::default();
    let mut fired = |e: Event| {
        let mut hits = Vec::new();
        st.process(&r, &e, &mut hits);
        hits.into_iter()
            .map(|h| {
                (
                    h.rule.id.clone(),
                    h.group.unwrap_or_default(),
                    h.rule.author.clone(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert!(fired(at("2024-01-01T00:00:00Z", "GetObject", "a", "b1")).is_empty());
    assert!(
        fired(at("2024-01-01T00:01:00Z", "GetObject", "b", "b1")).is_empty(),
        "other group"
    );
    let h = fired(at("2024-01-01T00:02:00Z", "GetObject", "a", "b2"));
    assert_eq!(
        h.iter().map(|x| x.0.as_str()).collect::<Vec<_>>(),
        ["corr-values"]
    );
    let h = fired(at("2024-01-01T00:03:00Z", "GetObject", "a", "b2"));
    assert!(
        h.iter().any(|x| x.0 == "corr-count"
            && x.1 == "arn:aws:iam::1:user/a"
            && x.2.as_deref() == Some("Corr Author")),
        "{h:?}"
    );
    // Outside the 10 minute span the count restarts.
    let h = fired(at("2024-01-01T00:30:00Z", "GetObject", "a", "b2"));
    assert!(!h.iter().any(|x| x.0 == "corr-count"), "{h:?}");
    // Ordered: get before list does not fire; list then get within 5 minutes does.
    assert!(fired(at("2024-01-01T01:00:00Z", "ListObjects", "c", "b1")).is_empty());
    let h = fired(at("2024-01-01T01:04:00Z", "GetObject", "c", "b1"));
    assert!(h.iter().any(|x| x.0 == "corr-temporal"), "{h:?}");
    let h = fired(at("2024-01-01T02:00:00Z", "GetObject", "d", "b1"));
    assert!(!h.iter().any(|x| x.0 == "corr-temporal"));
    let h = fired(at("2024-01-01T02:01:00Z", "ListObjects", "d", "b1"));
    assert!(!h.iter().any(|x| x.0 == "corr-temporal"), "wrong order");
}

//! Detection rate and false alerts on generated activity: three weeks of CloudTrail for
//! tens of machine and human identities from `keytrail-testkit`, with injected attacks
//! and benign look-alikes (a person travelling, a planned deploy to a new region, a
//! backup catching up after an outage).

mod common;

use keytrail_detect::alert::Alert;
use keytrail_detect::engine::{EngineBuilder, run_parallel};
use keytrail_testkit::cloudtrail::{ActivityConfig, Truth, write_activity};
use keytrail_types::Severity;

fn overlaps(a: &Alert, t: &Truth) -> bool {
    let margin = 3_600_000;
    let last = keytrail_detect::time::parse_rfc3339_ms(&a.last_time).unwrap_or(a.time_ms);
    a.time_ms <= t.end_ms + margin && last >= t.start_ms - margin
}

fn attack_of<'a>(a: &Alert, truth: &'a [Truth]) -> Option<&'a Truth> {
    truth.iter().filter(|t| t.malicious).find(|t| {
        overlaps(a, t)
            && (a.principal == t.principal
                || a.principal.contains(":federated-user/")
                || a.principal.ends_with("user/support-admin"))
    })
}

#[test]
fn generated_weeks_detection_rate_and_false_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let w = write_activity(
        &ActivityConfig {
            servers: 12,
            humans: 8,
            ci: 3,
            rate: 0.5,
            ..ActivityConfig::default()
        },
        dir.path(),
    )
    .unwrap();
    let builder = EngineBuilder::new()
        .ipintel(common::ipintel())
        .sigma_rules(common::sigma_aws());
    let (shared, diags) = builder.build_shared();
    assert!(diags.iter().all(|d| !d.is_error), "{diags:?}");
    let (alerts, stats) = run_parallel(&builder, shared, &w.files, 1);
    assert_eq!(stats.events, w.events);
    assert_eq!(stats.skipped_records, 0);

    let mut detected = 0;
    let attacks: Vec<&Truth> = w.truth.iter().filter(|t| t.malicious).collect();
    for t in &attacks {
        let hits: Vec<&Alert> = alerts
            .iter()
            .filter(|a| {
                a.severity >= Severity::Medium
                    && attack_of(a, &w.truth).is_some_and(|x| std::ptr::eq(x, *t))
            })
            .collect();
        let rules: Vec<&str> = hits.iter().map(|a| a.rule_id.as_str()).collect();
        println!("attack `{}`: {} alert(s) {rules:?}", t.label, hits.len());
        if !hits.is_empty() {
            detected += 1;
        }
    }
    let false_alerts: Vec<&Alert> = alerts
        .iter()
        .filter(|a| attack_of(a, &w.truth).is_none())
        .collect();
    let count = |s: Severity| false_alerts.iter().filter(|a| a.severity == s).count();
    println!(
        "events {} identities {} alerts {}: detection rate {detected}/{} ; false alerts high+ {} medium {} low {} info {}",
        stats.events,
        stats.identities,
        alerts.len(),
        attacks.len(),
        count(Severity::High) + count(Severity::Critical),
        count(Severity::Medium),
        count(Severity::Low),
        count(Severity::Info)
    );
    let mut by_rule = std::collections::BTreeMap::<&str, usize>::new();
    for a in &false_alerts {
        *by_rule.entry(a.title.as_str()).or_default() += 1;
    }
    println!("false alerts by rule: {by_rule:?}");
    for a in false_alerts
        .iter()
        .filter(|a| a.severity >= Severity::Medium)
    {
        println!(
            "  false {} {} {} {}",
            a.severity, a.time, a.rule_id, a.explanation
        );
    }
    assert_eq!(attacks.len(), 6);
    assert_eq!(
        detected,
        attacks.len(),
        "every injected attack raises a medium+ alert"
    );
    // Benign look-alikes never raise high-severity alerts.
    for t in w.truth.iter().filter(|t| !t.malicious) {
        let high: Vec<_> = alerts
            .iter()
            .filter(|a| {
                a.principal == t.principal && overlaps(a, t) && a.severity >= Severity::High
            })
            .collect();
        assert!(high.is_empty(), "look-alike `{}` raised {high:#?}", t.label);
    }
    assert_eq!(
        count(Severity::High) + count(Severity::Critical),
        0,
        "no high-severity false alerts"
    );
}

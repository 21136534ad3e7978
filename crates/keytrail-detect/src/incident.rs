//! Weak signals combined into per-identity incidents.
//!
//! Some behavioural detectors fire on things benign identities do now and then: a call
//! outside the identity's usual hours, a first call in a new region (a planned deploy),
//! a new network or country (a person travelling), a first read of a bucket, a read
//! spike (a backup catching up). Alone, each is noise a responder learns to ignore;
//! together, within a day, for one identity, they are how a stolen key looks. This
//! stage sits between the alert aggregator and the output:
//!
//! - an alert of a [`WEAK_RULES`] rule is held back;
//! - when weak alerts of at least two different rules of one identity fall within
//!   [`INCIDENT_WINDOW_MS`] of each other, they are raised as one incident alert
//!   (`keytrail.aws.incident.combined-signals`; `keytrail.gcp.…` and so on for the
//!   other clouds' identities) as soon as the second kind arrives:
//!   medium, or high when three or more kinds are already held, with every reason in
//!   its explanation and the evidence of all; later weak signals of that identity
//!   within the window are folded into it;
//! - a weak alert of an identity that also raised a strong alert (any other rule)
//!   within the window is folded into it: the identity is already in front of the
//!   responder;
//! - a weak alert left alone is not raised (counted in the statistics, and raised as
//!   it is with [`crate::engine::EngineBuilder::combine_weak_signals`] off).
//!
//! Alerts reach this stage as their windows close, roughly but not exactly in time
//! order (windows differ in length, and which alerts close together depends on
//! the other identities' events). So weak alerts are held to the end of the run
//! and each identity is decided on its own alerts in time order: the outcome is
//! the same whatever the closing order, and the same when the run is split by
//! identity over many engines ([`crate::distributed`]). Past [`MAX_HELD`] held
//! alerts, those older than the newest alert by [`SETTLE_MS`] are decided early.

use std::collections::{BTreeMap, HashMap};

use keytrail_types::Severity;

use crate::alert::{Alert, AlertSource, fnv64};
use crate::time::{DAY_MS, HOUR_MS, format_rfc3339_ms, parse_rfc3339_ms};

/// Rules whose alerts are weak signals: raised only in combination.
pub const WEAK_RULES: &[&str] = &[
    "keytrail.aws.behaviour.outside-usual-hours",
    "keytrail.aws.behaviour.new-region",
    "keytrail.aws.behaviour.new-asn",
    "keytrail.aws.behaviour.new-country",
    "keytrail.aws.behaviour.first-bucket-access",
    "keytrail.aws.behaviour.s3-read-spike",
];

/// Rule id of a combined incident.
pub const INCIDENT_RULE: &str = "keytrail.aws.incident.combined-signals";

/// Weak signals of one identity this close in time combine.
pub const INCIDENT_WINDOW_MS: i64 = DAY_MS;

/// How far the alert stream must move past a held alert before it is decided
/// (longest aggregation window plus the engine's flush lag, with margin).
const SETTLE_MS: i64 = 2 * DAY_MS + 2 * HOUR_MS;

/// Whether alerts of `rule_id` are weak signals. The behavioural rules carry the
/// cloud of their evidence (`keytrail.gcp.behaviour.new-asn`): a weak rule is weak on
/// every cloud.
pub fn is_weak(rule_id: &str) -> bool {
    let Some((_, rest)) = rule_id
        .strip_prefix("keytrail.")
        .and_then(|r| r.split_once('.'))
    else {
        return false;
    };
    WEAK_RULES
        .iter()
        .any(|w| w.strip_prefix("keytrail.aws.") == Some(rest))
}

/// Weak alerts held at most; past this, those of every identity older than the
/// stream's newest alert by [`SETTLE_MS`] are decided early (memory stays bounded
/// on any input; a normal run decides everything at its end).
const MAX_HELD: usize = 200_000;

/// The combining stage (see the module docs).
#[derive(Debug, Default)]
pub struct Incidents {
    /// Held weak alerts by identity.
    held: BTreeMap<String, Vec<Alert>>,
    /// Weak alerts held.
    held_count: usize,
    /// Spans (start, end) of the strong alerts raised per identity.
    strong: HashMap<String, Vec<(i64, i64)>>,
    /// Latest alert time seen.
    latest: i64,
    /// Weak alerts dropped because nothing else of their identity happened near them.
    pub alone: u64,
    /// Weak alerts folded into a strong alert or an incident of their identity.
    pub folded: u64,
}

fn end_ms(a: &Alert) -> i64 {
    parse_rfc3339_ms(&a.last_time).unwrap_or(a.time_ms)
}

impl Incidents {
    /// Takes one alert; returns the alerts to raise now: a strong alert at once;
    /// weak alerts are held and decided by [`Incidents::finish`].
    pub fn push(&mut self, a: Alert) -> Vec<Alert> {
        self.latest = self.latest.max(a.time_ms);
        if is_weak(&a.rule_id) {
            self.held.entry(a.principal.clone()).or_default().push(a);
            self.held_count += 1;
            if self.held_count > MAX_HELD {
                return self.decide_before(self.latest - SETTLE_MS);
            }
            return Vec::new();
        }
        self.strong
            .entry(a.principal.clone())
            .or_default()
            .push((a.time_ms, end_ms(&a)));
        vec![a]
    }

    /// Decides every held weak alert at the end of the stream and returns the
    /// incidents. Each identity is decided on its own alerts only, in time order,
    /// so the outcome does not depend on the order alerts closed in or on other
    /// identities (a run split by identity over many engines decides the same).
    pub fn finish(&mut self) -> Vec<Alert> {
        self.decide_before(i64::MAX)
    }

    /// Decides the held weak alerts older than `before`.
    fn decide_before(&mut self, before: i64) -> Vec<Alert> {
        let mut out = Vec::new();
        let principals: Vec<String> = self.held.keys().cloned().collect();
        for p in principals {
            let Some(h) = self.held.get_mut(&p) else {
                continue;
            };
            let (now, later): (Vec<Alert>, Vec<Alert>) = std::mem::take(h)
                .into_iter()
                .partition(|w| w.time_ms < before);
            *h = later;
            if h.is_empty() {
                self.held.remove(&p);
            }
            self.held_count -= now.len();
            self.decide(&p, now, &mut out);
        }
        out
    }

    /// Decides weak alerts of one identity: those near a strong alert are folded
    /// into it; the others, in time order, combine into an incident when two kinds
    /// fall within [`INCIDENT_WINDOW_MS`] of the newest (later ones near an incident
    /// are folded into it); the rest are dropped as alone.
    fn decide(&mut self, principal: &str, mut weak: Vec<Alert>, out: &mut Vec<Alert>) {
        weak.sort_by(|a, b| (a.time_ms, &a.rule_id, &a.id).cmp(&(b.time_ms, &b.rule_id, &b.id)));
        let strong = self.strong.get(principal).cloned().unwrap_or_default();
        let mut raised: Vec<i64> = Vec::new();
        let mut held: Vec<Alert> = Vec::new();
        for w in weak {
            let (t0, t1) = (w.time_ms, end_ms(&w));
            let near_strong = strong
                .iter()
                .any(|&(s0, s1)| t0 <= s1 + INCIDENT_WINDOW_MS && t1 >= s0 - INCIDENT_WINDOW_MS);
            let near_incident = raised
                .iter()
                .any(|&t| t >= t0 - INCIDENT_WINDOW_MS && t <= t1 + INCIDENT_WINDOW_MS);
            if near_strong || near_incident {
                self.folded += 1;
                continue;
            }
            held.push(w);
            if let Some(incident) = combine(&mut held) {
                raised.push(end_ms(&incident));
                out.push(incident);
            }
        }
        self.alone += held.len() as u64;
    }
}

/// An incident when the held signals near the newest one are of two or more
/// rules (they leave `held`).
fn combine(held: &mut Vec<Alert>) -> Option<Alert> {
    let newest = held.last().map_or(0, |w| w.time_ms);
    let near = |w: &Alert| (w.time_ms - newest).abs() <= INCIDENT_WINDOW_MS;
    let mut kinds: Vec<&str> = held
        .iter()
        .filter(|w| near(w))
        .map(|w| w.rule_id.as_str())
        .collect();
    kinds.sort_unstable();
    kinds.dedup();
    let n = kinds.len();
    if n < 2 {
        return None;
    }
    let (mut parts, rest): (Vec<Alert>, Vec<Alert>) =
        std::mem::take(held).into_iter().partition(near);
    *held = rest;
    parts.sort_by(|a, b| (a.time_ms, &a.rule_id).cmp(&(b.time_ms, &b.rule_id)));
    Some(merge(&parts, n))
}

/// One incident alert from weak alerts of one identity (sorted by time).
fn merge(parts: &[Alert], kinds: usize) -> Alert {
    let first = &parts[0];
    let last_ms = parts.iter().map(end_ms).max().unwrap_or(first.time_ms);
    let ids: Vec<&str> = parts.iter().map(|a| a.id.as_str()).collect();
    let mut reasons = Vec::new();
    for a in parts {
        reasons.push(format!("{} ({})", a.title, a.explanation));
    }
    // `keytrail.aws.incident.combined-signals`, or the other cloud's namespace.
    let rule_id = INCIDENT_RULE.replacen("aws", first.provider.as_str(), 1);
    let mut out = Alert {
        id: format!(
            "{:016x}",
            fnv64(&[&rule_id, &first.principal, &ids.join(",")])
        ),
        rule_id,
        title: "Several unusual behaviours of one identity within a day".to_string(),
        severity: if kinds >= 3 {
            Severity::High
        } else {
            Severity::Medium
        },
        technique: first.technique.clone(),
        tactic: first.tactic.clone(),
        source: AlertSource::Behaviour,
        time: first.time.clone(),
        last_time: format_rfc3339_ms(last_ms),
        principal: first.principal.clone(),
        access_key_id: parts.iter().find_map(|a| a.access_key_id.clone()),
        account_id: parts.iter().find_map(|a| a.account_id.clone()),
        event_ids: Vec::new(),
        event_names: Vec::new(),
        source_ips: Vec::new(),
        event_count: parts.iter().map(|a| a.event_count).sum(),
        explanation: format!(
            "{kinds} kinds of unusual behaviour within a day, none decisive alone: {}",
            reasons.join("; ")
        ),
        author: None,
        provider: parts[0].provider,
        time_ms: first.time_ms,
    };
    for a in parts {
        for (dst, src) in [
            (&mut out.event_ids, &a.event_ids),
            (&mut out.event_names, &a.event_names),
            (&mut out.source_ips, &a.source_ips),
        ] {
            for v in src {
                if dst.len() < 1000 && !dst.contains(v) {
                    dst.push(v.clone());
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(rule: &str, who: &str, t_h: i64) -> Alert {
        let t = t_h * HOUR_MS;
        Alert {
            id: format!("{rule}-{who}-{t_h}"),
            rule_id: rule.to_string(),
            title: rule.to_string(),
            severity: Severity::Low,
            technique: String::new(),
            tactic: String::new(),
            source: AlertSource::Behaviour,
            time: format_rfc3339_ms(t),
            last_time: format_rfc3339_ms(t),
            principal: who.to_string(),
            access_key_id: None,
            account_id: None,
            event_ids: vec![format!("e{t_h}")],
            event_names: Vec::new(),
            source_ips: Vec::new(),
            event_count: 1,
            explanation: "x".into(),
            author: None,
            provider: Default::default(),
            time_ms: t,
        }
    }

    fn run(alerts: Vec<Alert>) -> (Vec<Alert>, Incidents) {
        let mut s = Incidents::default();
        let mut out = Vec::new();
        for a in alerts {
            out.extend(s.push(a));
        }
        out.extend(s.finish());
        (out, s)
    }

    const HOURS: &str = "keytrail.aws.behaviour.outside-usual-hours";
    const REGION: &str = "keytrail.aws.behaviour.new-region";
    const ASN: &str = "keytrail.aws.behaviour.new-asn";

    #[test]
    fn weak_rules_are_weak_on_every_cloud() {
        assert!(is_weak("keytrail.aws.behaviour.new-asn"));
        assert!(is_weak("keytrail.gcp.behaviour.new-asn"));
        assert!(is_weak("keytrail.entra.behaviour.new-country"));
        assert!(!is_weak("keytrail.entra.behaviour.impossible-travel"));
        assert!(!is_weak(
            "keytrail.gcp.persistence.service-account-key-created"
        ));
        assert!(!is_weak("new-asn"));
    }

    #[test]
    fn a_weak_signal_alone_is_not_raised() {
        let (out, s) = run(vec![
            alert(HOURS, "a", 10),
            alert(REGION, "b", 12),
            alert(HOURS, "a", 200),
        ]);
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(s.alone, 3);
    }

    #[test]
    fn two_kinds_within_a_day_make_a_medium_incident() {
        let (out, _) = run(vec![alert(HOURS, "a", 10), alert(REGION, "a", 20)]);
        assert_eq!(out.len(), 1);
        assert_eq!(
            (out[0].rule_id.as_str(), out[0].severity),
            (INCIDENT_RULE, Severity::Medium)
        );
        assert_eq!(out[0].event_ids, ["e10", "e20"]);
        assert!(out[0].explanation.contains(HOURS) && out[0].explanation.contains(REGION));
        let (out, _) = run(vec![
            alert(HOURS, "a", 10),
            alert(ASN, "a", 11),
            alert(REGION, "a", 12),
        ]);
        // The third arrives after the incident of the first two: folded into it.
        assert_eq!(out.len(), 1);
        let (out, _) = run(vec![alert(HOURS, "a", 10), alert(HOURS, "a", 11)]);
        assert!(out.is_empty(), "one kind twice is still one kind");
        let (out, _) = run(vec![alert(HOURS, "a", 10), alert(REGION, "a", 40)]);
        assert!(out.is_empty(), "more than a day apart");
        let (out, _) = run(vec![alert(HOURS, "a", 10), alert(REGION, "b", 11)]);
        assert!(out.is_empty(), "two identities");
    }

    #[test]
    fn the_outcome_does_not_depend_on_closing_order_or_other_identities() {
        // Identity a: an hours signal that closed late (a long window), after
        // other identities' alerts moved the stream days ahead.
        let mine = vec![alert(REGION, "a", 100), alert(HOURS, "a", 90)];
        let others: Vec<Alert> = (0..50).map(|i| alert(ASN, "b", 100 + i * 10)).collect();
        let mut interleaved = vec![mine[0].clone()];
        interleaved.extend(others.clone());
        interleaved.push(mine[1].clone());
        let (alone_a, _) = run(mine.clone());
        let (mixed, _) = run(interleaved);
        let reversed: Vec<Alert> = mine.iter().rev().cloned().collect();
        let (rev, _) = run(reversed);
        let incidents = |v: &[Alert]| -> Vec<String> {
            v.iter()
                .filter(|a| a.principal == "a")
                .map(|a| serde_json::to_string(a).unwrap())
                .collect()
        };
        assert_eq!(incidents(&alone_a).len(), 1);
        assert_eq!(incidents(&mixed), incidents(&alone_a));
        assert_eq!(incidents(&rev), incidents(&alone_a));
    }

    #[test]
    fn weak_signals_near_a_strong_alert_are_folded_into_it() {
        let strong = "keytrail.aws.behaviour.anonymising-network";
        let (out, s) = run(vec![
            alert(HOURS, "a", 10),
            alert(strong, "a", 11),
            alert(REGION, "a", 12),
        ]);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].rule_id, strong);
        assert_eq!(s.folded, 2);
    }
}

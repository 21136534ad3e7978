//! Alerts, the rule metadata behind them, and the aggregator that turns per-event hits
//! into one alert per identity, rule and time window.
//!
//! The JSON shape of [`Alert`] is keytrail's JSONL output format (an API): see the
//! field docs, and `docs` in the crate README.

use std::sync::Arc;

use keytrail_types::Severity;
use serde::{Deserialize, Serialize};

use crate::event::{Event, Provider};
use crate::time::format_rfc3339_ms;

/// Which engine raised an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertSource {
    /// A built-in attacker-playbook detector.
    Playbook,
    /// A per-identity behavioural detector (baseline versus observed).
    Behaviour,
    /// A declared-expected-usage check from an owners file.
    Owners,
    /// A Sigma rule (detection or correlation).
    Sigma,
}

/// Static description of a detector or rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleInfo {
    /// Stable rule id (`keytrail.aws.defense-evasion.stop-logging`, or a Sigma rule id).
    pub id: String,
    /// Short title.
    pub title: String,
    /// Severity.
    pub severity: Severity,
    /// MITRE ATT&CK technique id (`T1562.008`), empty when none applies.
    pub technique: String,
    /// ATT&CK tactic (`defense-evasion`).
    pub tactic: String,
    /// Which engine.
    pub source: AlertSource,
    /// Rule author (kept for Sigma rules: their licence requires attribution).
    pub author: Option<String>,
    /// Aggregation window: hits for the same identity within this long after the first
    /// become one alert.
    pub window_ms: i64,
}

/// A built-in rule as its registry declares it ([`crate::playbook::PlaybookRule::def`],
/// [`crate::baseline::BehaviourRule::def`]); [`RuleDef::info`] gives the [`RuleInfo`]
/// its alerts share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleDef {
    /// Rule id after `keytrail.aws.` (`defense-evasion.logging-disabled`).
    pub id: &'static str,
    /// Short title.
    pub title: &'static str,
    /// Severity.
    pub severity: Severity,
    /// MITRE ATT&CK technique id, empty when none applies.
    pub technique: &'static str,
    /// ATT&CK tactic.
    pub tactic: &'static str,
    /// Aggregation window in milliseconds.
    pub window_ms: i64,
    /// Which engine raises it.
    pub source: AlertSource,
}

impl RuleDef {
    /// The rule's metadata (`keytrail.aws.<id>`, no author).
    pub fn info(&self) -> RuleInfo {
        self.info_in("aws")
    }

    /// The rule's metadata in a provider's namespace (`keytrail.<provider>.<id>`).
    pub fn info_in(&self, provider: &str) -> RuleInfo {
        RuleInfo {
            id: format!("keytrail.{provider}.{}", self.id),
            title: self.title.to_string(),
            severity: self.severity,
            technique: self.technique.to_string(),
            tactic: self.tactic.to_string(),
            source: self.source,
            author: None,
            window_ms: self.window_ms,
        }
    }
}

/// One alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Stable id: hex of a hash over rule id, principal and first-evidence time.
    pub id: String,
    /// Rule id.
    pub rule_id: String,
    /// Rule title.
    pub title: String,
    /// Severity (`info` … `critical`).
    pub severity: Severity,
    /// ATT&CK technique id.
    pub technique: String,
    /// ATT&CK tactic.
    pub tactic: String,
    /// Which engine raised it (`playbook`, `behaviour`, `owners`, `sigma`).
    pub source: AlertSource,
    /// Event time of the first evidence (RFC 3339, UTC).
    pub time: String,
    /// Event time of the last evidence.
    pub last_time: String,
    /// The identity: IAM user / role / federated-user ARN (see `Identity::principal`).
    pub principal: String,
    /// Access key id of the first evidence, when logged.
    pub access_key_id: Option<String>,
    /// Account id of the principal.
    pub account_id: Option<String>,
    /// `eventID`s of the evidence (at most [`MAX_EVIDENCE`]).
    pub event_ids: Vec<String>,
    /// Distinct `eventName`s of the evidence.
    pub event_names: Vec<String>,
    /// Distinct source IPs (or service names) of the evidence.
    pub source_ips: Vec<String>,
    /// Number of evidence events (may exceed `event_ids.len()`).
    pub event_count: u64,
    /// One sentence: what was observed versus the baseline or expectation.
    pub explanation: String,
    /// Author of the Sigma rule, for attribution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// The cloud of the evidence (`gcp`, `entra`, `m365`, `azure`); not written for
    /// AWS, so CloudTrail alerts are unchanged.
    #[serde(default, skip_serializing_if = "Provider::is_aws")]
    pub provider: Provider,
    /// Epoch milliseconds of `time` (not serialised).
    #[serde(skip)]
    pub time_ms: i64,
}

/// Most event ids kept per alert.
pub const MAX_EVIDENCE: usize = 1000;

/// Receives alerts as they are closed.
pub trait AlertSink: Send {
    /// Takes one alert.
    fn alert(&mut self, alert: Alert);
}

impl AlertSink for Vec<Alert> {
    fn alert(&mut self, alert: Alert) {
        self.push(alert);
    }
}

/// A sink that calls a closure.
pub struct FnSink<F: FnMut(Alert) + Send>(pub F);

impl<F: FnMut(Alert) + Send> AlertSink for FnSink<F> {
    fn alert(&mut self, alert: Alert) {
        (self.0)(alert)
    }
}

/// A detector's verdict on one event.
#[derive(Debug, Clone)]
pub struct Hit {
    /// The rule.
    pub rule: Arc<RuleInfo>,
    /// Explanation sentence (baseline versus observed).
    pub explanation: String,
    /// Optional extra grouping key (a correlation group) beyond the principal.
    pub group: Option<String>,
    /// Severity override (a stronger variant of the same rule).
    pub severity: Option<Severity>,
    /// Builds the explanation from the rule and the event, called only when the hit
    /// opens a new alert or raises an open alert's severity (hits that only extend an
    /// open alert cost no text). When set, `explanation` is ignored.
    pub explain: Option<fn(&RuleInfo, &Event) -> String>,
}

impl Hit {
    /// A hit with an explanation.
    pub fn new(rule: &Arc<RuleInfo>, explanation: impl Into<String>) -> Self {
        Hit {
            rule: rule.clone(),
            explanation: explanation.into(),
            group: None,
            severity: None,
            explain: None,
        }
    }

    /// A hit whose explanation is built by `explain` only if an alert needs it.
    pub fn lazy(rule: &Arc<RuleInfo>, explain: fn(&RuleInfo, &Event) -> String) -> Self {
        Hit {
            rule: rule.clone(),
            explanation: String::new(),
            group: None,
            severity: None,
            explain: Some(explain),
        }
    }

    fn explanation_for(self, ev: &Event) -> String {
        match self.explain {
            Some(f) => f(&self.rule, ev),
            None => self.explanation,
        }
    }
}

/// Emits an open alert, filling in its last-evidence time and evidence lists.
fn close(o: Open) -> Alert {
    let mut a = o.alert;
    a.last_time = format_rfc3339_ms(o.last_ms);
    a.event_ids = o
        .evidence
        .ids
        .split_terminator('\n')
        .map(String::from)
        .collect();
    a.event_names = o.evidence.names.items;
    a.source_ips = o.evidence.ips.items;
    a
}

/// FNV-1a 64-bit, for stable alert ids.
pub fn fnv64(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0xff)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

struct Open {
    /// The alert without its evidence lists (filled in by [`close`]).
    alert: Alert,
    evidence: Evidence,
    last_ms: i64,
    window_ms: i64,
}

/// Most distinct event names and source IPs kept per alert.
const MAX_DISTINCT: usize = 50;

/// An open alert's evidence, kept compact: hits that extend an open alert are the
/// common case (one per event for broad rules), so they must not allocate per event.
#[derive(Default)]
struct Evidence {
    /// Event ids, each followed by `\n` (ids never contain a newline in practice; one
    /// that does is cut at it).
    ids: String,
    id_count: usize,
    names: Distinct,
    ips: Distinct,
}

/// Up to [`MAX_DISTINCT`] distinct strings in first-seen order, with a hash index so
/// that a repeated value costs one hash and one comparison.
#[derive(Default)]
struct Distinct {
    items: Vec<String>,
    /// Hash → index in `items` of the first value with that hash.
    index: foldhash::HashMap<u64, u32>,
}

impl Distinct {
    fn add(&mut self, v: &str) {
        if v.is_empty() || self.items.len() >= MAX_DISTINCT {
            return;
        }
        use std::hash::BuildHasher;
        let h = foldhash::fast::FixedState::with_seed(0).hash_one(v);
        match self.index.get(&h) {
            Some(&i) if self.items[i as usize] == v => return,
            // A hash collision: fall back to a scan.
            Some(_) if self.items.iter().any(|x| x == v) => return,
            Some(_) => {}
            None => {
                self.index.insert(h, self.items.len() as u32);
            }
        }
        self.items.push(v.to_string());
    }
}

impl Evidence {
    fn add(&mut self, ev: &Event) {
        if self.id_count < MAX_EVIDENCE && !ev.event_id().is_empty() {
            self.id_count += 1;
            let id = ev.event_id().split('\n').next().unwrap_or("");
            self.ids.push_str(id);
            self.ids.push('\n');
        }
        self.names.add(ev.event_name());
        self.ips.add(ev.source_ip());
    }
}

/// Turns hits into alerts: one per (rule, identity, group) and window.
#[derive(Default)]
pub struct Aggregator {
    /// Open alerts by a hash of (rule id, principal, group).
    open: foldhash::HashMap<u64, Open>,
    /// Total alerts emitted.
    pub emitted: u64,
}

impl Aggregator {
    /// Adds a hit for `ev`; alerts whose window closed are pushed into `sink`.
    pub fn hit(&mut self, hit: Hit, ev: &Event, sink: &mut dyn AlertSink) {
        // Every hit looks up its open alert: a fast fixed-seed hash (the key also
        // breaks ties in the close order, so it must not vary between runs).
        let key = {
            use std::hash::BuildHasher;
            foldhash::fast::FixedState::with_seed(0x6b74).hash_one((
                hit.rule.id.as_str(),
                ev.principal(),
                hit.group.as_deref().unwrap_or(""),
            ))
        };
        if let Some(o) = self.open.get_mut(&key) {
            if ev.time_ms <= o.alert.time_ms + o.window_ms
                && ev.time_ms >= o.alert.time_ms - o.window_ms
            {
                o.alert.event_count += 1;
                o.evidence.add(ev);
                o.last_ms = o.last_ms.max(ev.time_ms);
                if let Some(sev) = hit.severity
                    && sev > o.alert.severity
                {
                    o.alert.severity = sev;
                    o.alert.explanation = hit.explanation_for(ev);
                }
                return;
            }
            let old = self.open.remove(&key).expect("present");
            self.emitted += 1;
            sink.alert(close(old));
        }
        let t = format_rfc3339_ms(ev.time_ms);
        let id = fnv64(&[
            &hit.rule.id,
            ev.principal(),
            hit.group.as_deref().unwrap_or(""),
            &t,
            ev.event_id(),
        ]);
        let mut alert = Alert {
            id: format!("{id:016x}"),
            rule_id: hit.rule.id.clone(),
            title: hit.rule.title.clone(),
            severity: hit.severity.unwrap_or(hit.rule.severity),
            technique: hit.rule.technique.clone(),
            tactic: hit.rule.tactic.clone(),
            source: hit.rule.source,
            time: t.clone(),
            last_time: t,
            principal: ev.principal().to_string(),
            access_key_id: ev.access_key_id().map(String::from),
            account_id: ev.account_id().map(String::from).or_else(|| {
                (!ev.recipient_account().is_empty()).then(|| ev.recipient_account().to_string())
            }),
            event_ids: Vec::new(),
            event_names: Vec::new(),
            source_ips: Vec::new(),
            event_count: 0,
            explanation: String::new(),
            author: hit.rule.author.clone(),
            provider: ev.provider(),
            time_ms: ev.time_ms,
        };
        alert.event_count = 1;
        let mut evidence = Evidence::default();
        evidence.add(ev);
        let window_ms = hit.rule.window_ms.max(1);
        alert.explanation = hit.explanation_for(ev);
        self.open.insert(
            key,
            Open {
                alert,
                evidence,
                last_ms: ev.time_ms,
                window_ms,
            },
        );
    }

    /// Pushes every alert whose window ended before `watermark_ms`.
    pub fn flush_before(&mut self, watermark_ms: i64, sink: &mut dyn AlertSink) {
        let mut done: Vec<_> = self
            .open
            .iter()
            .filter(|(_, o)| o.alert.time_ms + o.window_ms < watermark_ms)
            .map(|(k, _)| *k)
            .collect();
        // Oldest first; the key breaks ties so the order never depends on the map.
        done.sort_by_key(|k| (self.open[k].alert.time_ms, *k));
        for k in done {
            if let Some(o) = self.open.remove(&k) {
                self.emitted += 1;
                sink.alert(close(o));
            }
        }
    }

    /// Pushes every open alert, oldest first.
    pub fn flush_all(&mut self, sink: &mut dyn AlertSink) {
        self.flush_before(i64::MAX, sink);
    }

    /// Number of alerts still open.
    pub fn open_count(&self) -> usize {
        self.open.len()
    }
}

//! Per-identity baselines learned from the data, and the behavioural detectors that
//! compare each event with its identity's baseline.
//!
//! A baseline holds countries, ASNs, networks (/24 or /48), network classes,
//! user-agent families, regions, services, APIs, hour-of-week, S3 buckets and hourly
//! volume statistics per API class (data reads, list/describe, writes). An identity's
//! first `learning` period (7 days by default) only builds its baseline. Baselines
//! serialise to JSON so `--state DIR` runs continue where the last one stopped; their
//! size is bounded per identity (capped maps), so memory grows with identities, not
//! events.

use foldhash::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, LazyLock};

use keytrail_types::{Diagnostic, Severity};
use serde::{Deserialize, Serialize};

use crate::alert::{AlertSource, Hit, RuleDef, RuleInfo};
use crate::event::{Event, Provider, UaFamily};
use crate::ipintel::{IpInfo, NetworkClass, country_distance_km};
use crate::owners::Owners;
use crate::time::{DAY_MS, HOUR_MS, format_rfc3339_ms, hour_of_week};

const MAX_KEYS: usize = 512;
const MAX_APIS: usize = 2048;
const MAX_BUCKETS: usize = 4096;

/// Welford running mean and variance.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct Stat {
    /// Samples.
    pub n: u64,
    /// Mean.
    pub mean: f64,
    m2: f64,
}

impl Stat {
    /// Adds a sample.
    pub fn add(&mut self, x: f64) {
        self.n += 1;
        let d = x - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (x - self.mean);
    }
    /// Standard deviation.
    pub fn std(&self) -> f64 {
        if self.n < 2 {
            0.0
        } else {
            (self.m2 / (self.n - 1) as f64).sqrt()
        }
    }
}

fn bump(m: &mut HashMap<Box<str>, u32>, k: &str, cap: usize) {
    if let Some(v) = m.get_mut(k) {
        *v = v.saturating_add(1);
    } else if m.len() < cap {
        m.insert(Box::from(k), 1);
    }
}

/// Whether the event is a global service's call, which CloudTrail logs in `us-east-1`
/// whichever region the caller works in (IAM, STS's global endpoint, Organizations,
/// Route 53, CloudFront, support, billing): it says nothing about regions in use.
pub fn global_service(ev: &Event) -> bool {
    ev.region() == "us-east-1"
        && matches!(
            ev.service(),
            "iam"
                | "sts"
                | "organizations"
                | "route53"
                | "route53domains"
                | "cloudfront"
                | "support"
                | "health"
                | "account"
                | "billing"
                | "budgets"
                | "ce"
                | "trustedadvisor"
                | "globalaccelerator"
                | "shield"
                | "waf"
                | "signin"
                | "sso"
                | "iam-identitycenter"
                | "notifications"
        )
}

/// API class for volume statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiClass {
    /// Object/data reads (S3 GetObject, DynamoDB GetItem, secrets).
    DataRead,
    /// List/Describe/Get of configuration.
    List,
    /// Everything that changes state.
    Write,
}

/// Classifies an event's API.
pub fn api_class(ev: &Event) -> ApiClass {
    let n = ev.event_name();
    if matches!(
        n,
        "GetObject"
            | "GetItem"
            | "BatchGetItem"
            | "Query"
            | "Scan"
            | "GetSecretValue"
            | "GetParameter"
            | "GetParameters"
            | "SelectObjectContent"
    ) {
        ApiClass::DataRead
    } else if ev.read_only == Some(true)
        || n.starts_with("List")
        || n.starts_with("Describe")
        || n.starts_with("Get")
        || n.starts_with("Head")
    {
        ApiClass::List
    } else {
        ApiClass::Write
    }
}

/// Network prefix of an address (/24 for IPv4, /48 for IPv6) as text.
pub fn net_prefix(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        IpAddr::V6(a) => {
            let s = a.segments();
            format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
    }
}

/// Network prefix of an address as an integer key: the /24 of an IPv4 address
/// (`1 << 32 | a.b.c`) or the /48 of an IPv6 address (`1 << 48 | first 48 bits`).
/// The tag bits keep the two families apart.
pub fn net_key(ip: IpAddr) -> u64 {
    match ip {
        IpAddr::V4(a) => (1u64 << 32) | u64::from(u32::from(a) >> 8),
        IpAddr::V6(a) => (1u64 << 48) | (u128::from(a) >> 80) as u64,
    }
}

/// One identity's learned behaviour.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Baseline {
    /// First event time.
    pub first_ms: i64,
    /// Last event time.
    pub last_ms: i64,
    /// Events seen.
    pub events: u64,
    /// Events that were human use (console, browser, MFA).
    pub human_events: u64,
    /// Country → events.
    pub countries: HashMap<Box<str>, u32>,
    /// ASN → events.
    pub asns: HashMap<u32, u32>,
    /// Network prefix ([`net_key`]: /24 or /48) → events.
    pub networks: HashMap<u64, u32>,
    /// Network class → events.
    pub classes: HashMap<NetworkClass, u32>,
    /// User-agent family → events.
    pub user_agents: HashMap<UaFamily, u32>,
    /// Region → events.
    pub regions: HashMap<Box<str>, u32>,
    /// Service → events.
    pub services: HashMap<Box<str>, u32>,
    /// API → events.
    pub apis: HashMap<Box<str>, u32>,
    /// Events per hour of week (Monday 00:00 UTC = 0).
    pub hours: Vec<u32>,
    /// S3 buckets accessed.
    pub buckets: HashSet<Box<str>>,
    /// Current hour bucket (epoch hours) of the volume counters.
    pub cur_hour: i64,
    /// Counts in the current hour: data reads, list, writes, S3 GetObject, S3 bytes out.
    pub cur: [u64; 5],
    /// Hourly statistics (active hours only) of the same five counters.
    pub hourly: [Stat; 5],
    /// Last geolocated event: time, country and whether its network was a datacenter.
    pub last_geo: Option<(i64, Box<str>, bool)>,
}

impl Baseline {
    /// Whether the identity called this API before.
    pub fn has_api(&self, api: &str) -> bool {
        self.apis.contains_key(api)
    }
    /// Times the identity called this API.
    pub fn api_count(&self, api: &str) -> u32 {
        self.apis.get(api).copied().unwrap_or(0)
    }
    /// Whether the identity used this service before.
    pub fn has_service(&self, svc: &str) -> bool {
        self.services.contains_key(svc)
    }
    /// Whether every event so far was programmatic (and there were enough to judge).
    pub fn machine_only(&self) -> bool {
        self.events >= 20 && self.human_events == 0
    }
    /// Whether the identity is mostly machine use.
    pub fn is_machine(&self) -> bool {
        self.human_events * 20 < self.events
    }
    /// Whether enough networks were learned to judge novelty.
    pub fn learned_networks(&self) -> bool {
        self.networks.values().map(|&v| u64::from(v)).sum::<u64>() >= 20
    }
    /// Whether the /24 (or /48) of `ip` was seen before.
    pub fn knows_network(&self, ip: &str) -> bool {
        ip.parse::<IpAddr>()
            .is_ok_and(|ip| self.networks.contains_key(&net_key(ip)))
    }

    fn top(m: &HashMap<Box<str>, u32>, n: usize) -> String {
        let mut v: Vec<_> = m.iter().collect();
        v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let parts: Vec<String> = v
            .iter()
            .take(n)
            .map(|(k, c)| format!("{k} ({c})"))
            .collect();
        if parts.is_empty() {
            "nothing".into()
        } else {
            parts.join(", ")
        }
    }

    fn roll_hour(&mut self, t: i64) {
        let h = t.div_euclid(HOUR_MS);
        if h != self.cur_hour {
            if self.cur.iter().any(|&c| c > 0) {
                for (s, &c) in self.hourly.iter_mut().zip(&self.cur) {
                    s.add(c as f64);
                }
            }
            self.cur = [0; 5];
            self.cur_hour = h;
        }
    }

    /// Adds one event.
    pub fn update(&mut self, ev: &Event, info: Option<&IpInfo>, bucket: Option<&str>, bytes: u64) {
        if self.events == 0 {
            self.first_ms = ev.time_ms;
            self.hours = vec![0; 168];
        }
        self.events += 1;
        self.last_ms = self.last_ms.max(ev.time_ms);
        if ev.human_use() {
            self.human_events += 1;
        }
        if let (Some(info), Some(ip)) = (info, ev.source_addr) {
            if let Some(c) = &info.country {
                bump(&mut self.countries, c, MAX_KEYS);
                self.last_geo = Some((
                    ev.time_ms,
                    c.clone(),
                    info.class == NetworkClass::Datacenter,
                ));
            }
            if let Some(a) = info.asn
                && (self.asns.len() < MAX_KEYS || self.asns.contains_key(&a))
            {
                *self.asns.entry(a).or_default() += 1;
            }
            *self.classes.entry(info.class).or_default() += 1;
            let n = net_key(ip);
            if let Some(v) = self.networks.get_mut(&n) {
                *v = v.saturating_add(1);
            } else if self.networks.len() < MAX_KEYS {
                self.networks.insert(n, 1);
            }
        }
        *self.user_agents.entry(ev.ua_family).or_default() += 1;
        if !global_service(ev) {
            bump(&mut self.regions, ev.region(), MAX_KEYS);
        }
        bump(&mut self.services, ev.service(), MAX_KEYS);
        bump(&mut self.apis, ev.event_name(), MAX_APIS);
        if self.hours.len() == 168 {
            self.hours[hour_of_week(ev.time_ms) as usize] += 1;
        }
        if let Some(b) = bucket
            && self.buckets.len() < MAX_BUCKETS
        {
            self.buckets.insert(Box::from(b));
        }
        self.roll_hour(ev.time_ms);
        let class = api_class(ev);
        self.cur[class as usize] += 1;
        if ev.event_name() == "GetObject" {
            self.cur[3] += 1;
            self.cur[4] += bytes;
        }
    }
}

/// Account-level state: regions in use.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AccountState {
    /// Account → (first event time, regions used).
    pub accounts: HashMap<Box<str>, (i64, HashSet<Box<str>>)>,
    /// Learning period (ms).
    pub learning_ms: i64,
    /// In a partition of a distributed run: the first successful call of every
    /// account in every region, over all partitions (gathered when the logs were
    /// routed), so that one identity's partition judges the account as a whole.
    /// `accounts` is then neither read nor written.
    #[serde(skip)]
    pub known: Option<KnownRegions>,
}

/// The earliest successful regional call of each account in each region (see
/// [`AccountState::known`] and [`regional_call`]).
#[derive(Debug, Clone, Default)]
pub struct KnownRegions {
    /// Account → its earliest call in any region.
    first: HashMap<Box<str>, i64>,
    /// (account, region) → the earliest call there.
    regions: HashMap<(Box<str>, Box<str>), i64>,
}

impl KnownRegions {
    /// Records a call of `account` in `region` at `time_ms` (the earliest counts).
    pub fn add(&mut self, account: &str, region: &str, time_ms: i64) {
        let f = self.first.entry(Box::from(account)).or_insert(time_ms);
        *f = (*f).min(time_ms);
        let r = self
            .regions
            .entry((Box::from(account), Box::from(region)))
            .or_insert(time_ms);
        *r = (*r).min(time_ms);
    }

    /// Every (account, region, earliest time).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str, i64)> {
        self.regions.iter().map(|((a, r), t)| (&**a, &**r, *t))
    }

    /// Whether nothing is known.
    pub fn is_empty(&self) -> bool {
        self.regions.is_empty()
    }
}

/// The account and region an event counts for in [`AccountState`]: a successful
/// call in a region, not of a global service; `None` for the others.
pub fn regional_call(ev: &Event) -> Option<(&str, &str)> {
    if ev.region().is_empty() || ev.error_code().is_some() || global_service(ev) {
        return None;
    }
    Some((AccountState::account(ev), ev.region()))
}

impl AccountState {
    fn account(ev: &Event) -> &str {
        if ev.recipient_account().is_empty() {
            ev.account_id().unwrap_or("")
        } else {
            ev.recipient_account()
        }
    }
    /// Whether the account of `ev` is past its learning period.
    pub fn learned(&self, ev: &Event) -> bool {
        if let Some(k) = &self.known {
            return k
                .first
                .get(Self::account(ev))
                .is_some_and(|f| ev.time_ms - f >= self.learning_ms);
        }
        self.accounts
            .get(Self::account(ev))
            .is_some_and(|(f, _)| ev.time_ms - f >= self.learning_ms)
    }
    /// Whether the account used the region of `ev` before.
    pub fn region_used(&self, ev: &Event) -> bool {
        if let Some(k) = &self.known {
            return k
                .regions
                .get(&(Box::from(Self::account(ev)), Box::from(ev.region())))
                .is_some_and(|t| *t < ev.time_ms);
        }
        self.accounts
            .get(Self::account(ev))
            .is_some_and(|(_, r)| r.contains(ev.region()))
    }
    /// Records the event's region.
    pub fn update(&mut self, ev: &Event) {
        if self.known.is_some() {
            return;
        }
        let Some((account, _)) = regional_call(ev) else {
            return;
        };
        if !self.accounts.contains_key(account) {
            self.accounts
                .insert(Box::from(account), (ev.time_ms, HashSet::default()));
        }
        let e = self.accounts.get_mut(account).expect("inserted");
        if !e.1.contains(ev.region()) && e.1.len() < 64 {
            e.1.insert(Box::from(ev.region()));
        }
    }
}

/// The behavioural detectors (baseline versus observed) and the owners-file check:
/// definitions in [`BehaviourRule::def`], logic in [`Baseline::observe`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BehaviourRule {
    /// Identity used from a country outside its baseline.
    NewCountry,
    /// Machine identity used from a network (ASN) outside its baseline.
    NewAsn,
    /// Identity used through Tor or a VPN provider.
    AnonNetwork,
    /// Datacenter-only machine identity used from a residential or office network.
    NonServerNetwork,
    /// Impossible travel between consecutive calls.
    ImpossibleTravel,
    /// S3 object reads far above the identity's hourly baseline.
    ReadSpike,
    /// First access to an S3 bucket.
    NewBucket,
    /// Identity active in a region outside its baseline.
    NewRegion,
    /// Machine identity active outside its usual hours of the week.
    OffHours,
    /// Server-only credential used from an interactive client (browser, curl, desktop tool).
    InteractiveClient,
    /// New access key first used from a different network than the one that created it.
    NewKeyNetwork,
    /// Usage outside the declared expectations of the owners file.
    OwnersViolation,
}

impl BehaviourRule {
    /// Every rule, in the order of [`RULES`].
    pub const ALL: [BehaviourRule; 12] = [
        BehaviourRule::NewCountry,
        BehaviourRule::NewAsn,
        BehaviourRule::AnonNetwork,
        BehaviourRule::NonServerNetwork,
        BehaviourRule::ImpossibleTravel,
        BehaviourRule::ReadSpike,
        BehaviourRule::NewBucket,
        BehaviourRule::NewRegion,
        BehaviourRule::OffHours,
        BehaviourRule::InteractiveClient,
        BehaviourRule::NewKeyNetwork,
        BehaviourRule::OwnersViolation,
    ];

    /// The rule's definition: id (after `keytrail.aws.`), title, severity,
    /// ATT&CK technique and tactic, aggregation window and engine.
    pub const fn def(self) -> RuleDef {
        match self {
            BehaviourRule::NewCountry => RuleDef {
                id: "behaviour.new-country",
                title: "Identity used from a country outside its baseline",
                severity: Severity::Medium,
                technique: "T1078.004",
                tactic: "initial-access",
                window_ms: DAY_MS,
                source: AlertSource::Behaviour,
            },
            BehaviourRule::NewAsn => RuleDef {
                id: "behaviour.new-asn",
                title: "Machine identity used from a network (ASN) outside its baseline",
                severity: Severity::Low,
                technique: "T1078.004",
                tactic: "initial-access",
                window_ms: DAY_MS,
                source: AlertSource::Behaviour,
            },
            BehaviourRule::AnonNetwork => RuleDef {
                id: "behaviour.anonymising-network",
                title: "Identity used through Tor or a VPN provider",
                severity: Severity::High,
                technique: "T1090.003",
                tactic: "command-and-control",
                window_ms: DAY_MS,
                source: AlertSource::Behaviour,
            },
            BehaviourRule::NonServerNetwork => RuleDef {
                id: "behaviour.non-server-network",
                title: "Datacenter-only machine identity used from a residential or office network",
                severity: Severity::High,
                technique: "T1078.004",
                tactic: "initial-access",
                window_ms: DAY_MS,
                source: AlertSource::Behaviour,
            },
            BehaviourRule::ImpossibleTravel => RuleDef {
                id: "behaviour.impossible-travel",
                title: "Impossible travel between consecutive calls",
                severity: Severity::High,
                technique: "T1078.004",
                tactic: "initial-access",
                window_ms: DAY_MS,
                source: AlertSource::Behaviour,
            },
            BehaviourRule::ReadSpike => RuleDef {
                id: "behaviour.s3-read-spike",
                title: "S3 object reads far above the identity's hourly baseline",
                severity: Severity::Medium,
                technique: "T1530",
                tactic: "collection",
                window_ms: HOUR_MS,
                source: AlertSource::Behaviour,
            },
            BehaviourRule::NewBucket => RuleDef {
                id: "behaviour.first-bucket-access",
                title: "First access to an S3 bucket",
                severity: Severity::Low,
                technique: "T1530",
                tactic: "collection",
                window_ms: DAY_MS,
                source: AlertSource::Behaviour,
            },
            BehaviourRule::NewRegion => RuleDef {
                id: "behaviour.new-region",
                title: "Identity active in a region outside its baseline",
                severity: Severity::Low,
                technique: "T1535",
                tactic: "defense-evasion",
                window_ms: DAY_MS,
                source: AlertSource::Behaviour,
            },
            BehaviourRule::OffHours => RuleDef {
                id: "behaviour.outside-usual-hours",
                title: "Machine identity active outside its usual hours of the week",
                severity: Severity::Low,
                technique: "T1078.004",
                tactic: "initial-access",
                window_ms: 6 * HOUR_MS,
                source: AlertSource::Behaviour,
            },
            BehaviourRule::InteractiveClient => RuleDef {
                id: "behaviour.server-key-interactive-client",
                title: "Server-only credential used from an interactive client (browser, curl, desktop tool)",
                severity: Severity::High,
                technique: "T1078.004",
                tactic: "initial-access",
                window_ms: DAY_MS,
                source: AlertSource::Behaviour,
            },
            BehaviourRule::NewKeyNetwork => RuleDef {
                id: "behaviour.new-key-different-network",
                title: "New access key first used from a different network than the one that created it",
                severity: Severity::Medium,
                technique: "T1098.001",
                tactic: "persistence",
                window_ms: DAY_MS,
                source: AlertSource::Behaviour,
            },
            BehaviourRule::OwnersViolation => RuleDef {
                id: "owners.expected-usage-violation",
                title: "Usage outside the declared expectations of the owners file",
                severity: Severity::Medium,
                technique: "T1078.004",
                tactic: "initial-access",
                window_ms: 6 * HOUR_MS,
                source: AlertSource::Owners,
            },
        }
    }

    /// The rule's metadata, shared by every alert it raises.
    pub fn info(self) -> &'static Arc<RuleInfo> {
        &RULES[self as usize]
    }
}

/// The metadata of every behavioural rule, in [`BehaviourRule::ALL`] order.
pub static RULES: LazyLock<Vec<Arc<RuleInfo>>> = LazyLock::new(|| {
    BehaviourRule::ALL
        .iter()
        .map(|r| Arc::new(r.def().info()))
        .collect()
});

/// The metadata of every behavioural rule in each other cloud's namespace
/// (`keytrail.gcp.…`), indexed by [`Provider`] then rule.
static PROVIDER_RULES: LazyLock<Vec<Vec<Arc<RuleInfo>>>> = LazyLock::new(|| {
    [
        Provider::Aws,
        Provider::Gcp,
        Provider::Entra,
        Provider::M365,
        Provider::Azure,
    ]
    .iter()
    .map(|p| {
        BehaviourRule::ALL
            .iter()
            .map(|r| Arc::new(r.def().info_in(p.as_str())))
            .collect()
    })
    .collect()
});

/// Moves a behavioural hit into the namespace of `provider` (a hit of another rule
/// is left alone).
pub fn in_provider(h: &mut Hit, provider: Provider) {
    if let Some(i) = RULES.iter().position(|r| Arc::ptr_eq(r, &h.rule)) {
        h.rule = PROVIDER_RULES[provider as usize][i].clone();
    }
}

fn bhit(r: BehaviourRule, sev: Option<Severity>, explanation: String) -> Hit {
    let mut h = Hit::new(r.info(), explanation);
    h.severity = sev;
    h
}

/// Where a newly created access key was created from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyOrigin {
    /// Creation time.
    pub time_ms: i64,
    /// Creator principal.
    pub creator: Box<str>,
    /// Creator's network prefix.
    pub network: Option<Box<str>>,
    /// Creator's ASN.
    pub asn: Option<u32>,
    /// Creator's country.
    pub country: Option<Box<str>>,
}

/// All learned state, persisted with `--state DIR`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    /// Format version (2: network prefixes are integer keys, see [`net_key`]).
    pub version: u32,
    /// Baselines by principal.
    pub identities: HashMap<Box<str>, Baseline>,
    /// Account-level state.
    pub accounts: AccountState,
    /// Keys created and not yet used: access key id → origin.
    pub new_keys: HashMap<Box<str>, KeyOrigin>,
    /// Latest event time processed.
    pub watermark_ms: i64,
    /// Files read by earlier runs (path as listed → its size and the time it stands
    /// for), so a scheduled run over the same tree reads only new files.
    #[serde(default)]
    pub files: HashMap<Box<str>, FileMark>,
    /// Alerts already raised (alert id → alert time), so a run never raises an alert
    /// an earlier run raised.
    #[serde(default)]
    pub alerted: HashMap<Box<str>, i64>,
    /// The other clouds' detectors' memory (credentials added and not yet
    /// used, risky sign-ins, sending windows).
    #[serde(default)]
    pub cloud: CloudMemory,
}

/// What the other clouds' playbook detectors remember between runs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CloudMemory {
    /// Credentials just added to applications: target (id, app id or name,
    /// lower-cased) → time added.
    pub new_credentials: std::collections::HashMap<Box<str>, i64>,
    /// Identities with a risky sign-in → its time.
    pub risky: std::collections::HashMap<Box<str>, i64>,
    /// Sending and sharing windows per identity.
    pub bursts: std::collections::HashMap<Box<str>, std::collections::VecDeque<i64>>,
    /// Sign-in attempts per source address in the last half hour.
    pub attempts: std::collections::HashMap<Box<str>, std::collections::VecDeque<Attempt>>,
    /// Addresses that sprayed passwords → the spray.
    pub sprayed: std::collections::HashMap<Box<str>, Spray>,
}

/// A sign-in attempt remembered for password-spray detection.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attempt {
    /// Event time.
    pub at_ms: i64,
    /// The account tried (lower-cased principal).
    pub account: Box<str>,
    /// Signed in, or passed its password.
    pub ok: bool,
}

/// An address that sprayed passwords.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Spray {
    /// When the spray was reported.
    pub at_ms: i64,
    /// The accounts it tried.
    pub accounts: Vec<Box<str>>,
    /// Accounts already reported signing in from it.
    pub reported: Vec<Box<str>>,
}

impl CloudMemory {
    /// Forgets everything no detector can use at `now`: credentials added over a
    /// week ago, risky sign-ins and sprays over a day ago, bursts and sign-in
    /// attempts quiet for an hour.
    pub fn forget_before(&mut self, now: i64) {
        use crate::time::{DAY_MS, HOUR_MS};
        self.risky.retain(|_, &mut at| now - at <= DAY_MS);
        self.new_credentials
            .retain(|_, &mut at| now - at <= 7 * DAY_MS);
        self.bursts
            .retain(|_, w| w.back().is_some_and(|&x| now - x <= HOUR_MS));
        self.attempts
            .retain(|_, w| w.back().is_some_and(|a| now - a.at_ms <= HOUR_MS));
        self.sprayed.retain(|_, s| now - s.at_ms <= DAY_MS);
    }
}

/// A file recorded as read in [`State::files`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMark {
    /// Size in bytes when read (a file that changed size is read again).
    pub size: u64,
    /// The time in its S3 key, or else the watermark when it was read (ms).
    pub time_ms: i64,
}

/// How long read files and raised alerts are remembered, behind the watermark.
/// CloudTrail delivers files within about 15 minutes, rarely hours later; a file whose
/// key time is older than this behind the watermark is taken as read.
pub const STATE_RETENTION_MS: i64 = 7 * 86_400_000;

/// File name of the state inside the state directory.
pub const STATE_FILE: &str = "keytrail-detect-state.json";

impl State {
    /// Loads state from `dir` (an absent file gives empty state).
    ///
    /// A state file that does not parse is never silently replaced: it is
    /// renamed to `keytrail-detect-state.json.corrupt-<unix seconds>` (kept
    /// for inspection) and the diagnostic says so; the run starts from
    /// empty state, which the end of the run saves as usual.
    pub fn load(dir: &Path) -> Result<Self, Diagnostic> {
        let p = dir.join(STATE_FILE);
        match std::fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| {
                let secs = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let aside = dir.join(format!("{STATE_FILE}.corrupt-{secs}"));
                let kept = match std::fs::rename(&p, &aside) {
                    Ok(()) => format!("kept aside as {}", aside.display()),
                    Err(re) => format!("could not be kept aside ({re}); it will be overwritten"),
                };
                Diagnostic::error(
                    "state_invalid",
                    p.display().to_string(),
                    format!(
                        "state file is corrupt ({e}); {kept}; starting from empty state (baselines are learnt again)"
                    ),
                )
                .at(Some(e.line() as u64), Some(e.column() as u64))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State {
                version: 2,
                ..State::default()
            }),
            Err(e) => Err(Diagnostic::error(
                "state_unreadable",
                p.display().to_string(),
                e.to_string(),
            )),
        }
    }

    /// Forgets files and alerts older than [`STATE_RETENTION_MS`] behind the
    /// watermark, so the state does not grow with the days read.
    pub fn prune(&mut self) {
        let horizon = self.watermark_ms.saturating_sub(STATE_RETENTION_MS);
        self.files.retain(|_, m| m.time_ms >= horizon);
        self.alerted.retain(|_, t| *t >= horizon);
        self.cloud.forget_before(self.watermark_ms);
    }

    /// Saves state atomically (write to a temporary file, then rename).
    pub fn save(&self, dir: &Path) -> Result<(), Diagnostic> {
        let p = dir.join(STATE_FILE);
        let err = |e: std::io::Error| {
            Diagnostic::error("state_unwritable", p.display().to_string(), e.to_string())
        };
        std::fs::create_dir_all(dir).map_err(err)?;
        let tmp = dir.join(format!("{STATE_FILE}.tmp"));
        let bytes = serde_json::to_vec(self).map_err(|e| {
            Diagnostic::error("state_unwritable", p.display().to_string(), e.to_string())
        })?;
        std::fs::write(&tmp, bytes).map_err(err)?;
        std::fs::rename(&tmp, &p).map_err(err)
    }
}

/// S3 bucket and response bytes of an S3 data event.
pub fn s3_bucket(ev: &Event) -> Option<(&str, u64)> {
    if ev.event_source() != "s3.amazonaws.com"
        || !matches!(
            ev.event_name(),
            "GetObject"
                | "PutObject"
                | "ListObjects"
                | "ListObjectsV2"
                | "HeadObject"
                | "CopyObject"
                | "DeleteObject"
        )
    {
        return None;
    }
    let b = ev.lookup_str("requestParameters.bucketName")?;
    let bytes = ev
        .lookup_raw("additionalEventData.bytesTransferredOut")
        .and_then(|r| serde_json::from_str::<f64>(r).ok())
        .unwrap_or(0.0) as u64;
    Some((b, bytes))
}

/// The new-key detector: the first use of an access key created in the logs is
/// compared with the network that created it (the origin is forgotten at that first
/// use). A key's creation and its use are usually two identities' events: a
/// distributed run joins them in a stage of their own, keyed by access key id
/// ([`crate::distributed`]).
pub fn new_key(
    ev: &Event,
    info: Option<&IpInfo>,
    new_keys: &mut HashMap<Box<str>, KeyOrigin>,
    hits: &mut Vec<Hit>,
) {
    let who = ev.principal();
    let ip = ev.source_ip();
    if let Some(k) = ev.access_key_id()
        && let Some(origin) = new_keys.remove(k)
        && let (Some(addr), Some(info)) = (ev.source_addr, info)
    {
        let net = net_prefix(addr);
        let same_net = origin.network.as_deref() == Some(net.as_str());
        let same_asn = origin.asn.is_some() && origin.asn == info.asn;
        if !same_net && !same_asn && origin.network.is_some() {
            let sev =
                (origin.country.as_deref() != info.country.as_deref()).then_some(Severity::High);
            hits.push(bhit(BehaviourRule::NewKeyNetwork, sev, format!(
                        "access key {k} was created by {} from {} (AS{}, {}) but first used from {ip} (AS{}, {})",
                        origin.creator,
                        origin.network.as_deref().unwrap_or("?"),
                        origin.asn.map_or("?".into(), |a| a.to_string()),
                        origin.country.as_deref().unwrap_or("?"),
                        info.asn.map_or("?".into(), |a| a.to_string()),
                        info.country.as_deref().unwrap_or("?"),
                    )));
        }
    }
    if let Some(k) = ev.created_key()
        && new_keys.len() < 100_000
    {
        new_keys.insert(
            Box::from(k.as_str()),
            KeyOrigin {
                time_ms: ev.time_ms,
                creator: Box::from(who),
                network: ev.source_addr.map(|a| Box::from(net_prefix(a).as_str())),
                asn: info.and_then(|i| i.asn),
                country: info.and_then(|i| i.country.clone()),
            },
        );
    }
}

/// Runs the behavioural and owners detectors on `ev` against `base` (the baseline
/// before this event); `bucket` is the event's [`s3_bucket`]. `learning` suppresses
/// baseline comparisons.
#[allow(clippy::too_many_arguments)]
pub fn detect(
    ev: &Event,
    base: &Baseline,
    info: Option<&IpInfo>,
    learning: bool,
    owners: Option<&Owners>,
    hits: &mut Vec<Hit>,
    bucket: Option<(&str, u64)>,
) {
    let who = ev.principal();
    let ua = ev.ua_family;
    // Judged on the identity's history, not on this event: a browser on a server key is
    // exactly what should stand out.
    let machine = base.is_machine();
    let human = !machine;
    let ip = ev.source_ip();
    let days = ((base.last_ms - base.first_ms) / DAY_MS).max(1);

    // Owners-file expectations apply from the first event.
    if let Some(o) = owners.and_then(|o| o.find(ev)) {
        let v = o.violations(ev, info);
        if !v.is_empty() {
            let sev = (v.len() >= 2 || (o.kind.as_deref() == Some("server") && ua.interactive()))
                .then_some(Severity::High);
            hits.push(bhit(
                BehaviourRule::OwnersViolation,
                sev,
                format!(
                    "{who} (owner {}) {}",
                    o.owner.as_deref().unwrap_or("unknown"),
                    v.join("; ")
                ),
            ));
        }
        if o.kind.as_deref() == Some("server") && ua.interactive() && !human {
            hits.push(bhit(
                BehaviourRule::InteractiveClient,
                None,
                format!(
                    "{who} is declared server-only but called {} with a client of family {} ({})",
                    ev.event_name(),
                    ua.as_str(),
                    ev.user_agent()
                ),
            ));
        }
    }

    if learning || base.events < 20 {
        return;
    }

    let mut net_new = false;
    if let Some(info) = info {
        let cc = info.country.as_deref();
        // Anonymising networks.
        if matches!(info.class, NetworkClass::Tor | NetworkClass::Vpn) {
            let seen = base.classes.get(&info.class).copied().unwrap_or(0);
            if seen == 0 {
                let sev = (info.class == NetworkClass::Vpn && human).then_some(Severity::Medium);
                hits.push(bhit(BehaviourRule::AnonNetwork, sev, format!(
                    "{who} called {} from {ip}, a {} address; in {days} days of baseline it never used {}",
                    ev.event_name(), info.class.as_str(), info.class.as_str()
                )));
            }
        }
        // Datacenter-only machine identity now from a residential network.
        let dc = base
            .classes
            .get(&NetworkClass::Datacenter)
            .copied()
            .unwrap_or(0);
        let total_classes: u32 = base.classes.values().sum();
        if machine
            && info.class == NetworkClass::Residential
            && total_classes >= 20
            && dc == total_classes
        {
            net_new = true;
            hits.push(bhit(BehaviourRule::NonServerNetwork, None, format!(
                "{who} called {} from {ip} (residential AS{} {}); all {total_classes} geolocated calls in its baseline came from datacenters",
                ev.event_name(),
                info.asn.map_or("?".into(), |a| a.to_string()),
                info.org.as_deref().unwrap_or("")
            )));
        }
        // New country.
        if let Some(c) = cc {
            if !base.countries.contains_key(c) && !base.countries.is_empty() {
                net_new = true;
                let sev = if human { Some(Severity::Low) } else { None };
                hits.push(bhit(
                    BehaviourRule::NewCountry,
                    sev,
                    format!(
                        "{who} called {} from {ip} in {c}; its {days}-day baseline has {}",
                        ev.event_name(),
                        Baseline::top(&base.countries, 4)
                    ),
                ));
            }
            // Impossible travel (not between two datacenter networks: cloud workloads
            // legitimately call from several regions).
            if let Some((t0, c0, dc0)) = &base.last_geo {
                let both_dc = *dc0 && info.class == NetworkClass::Datacenter;
                if &**c0 != c
                    && !both_dc
                    && !base.countries.contains_key(c)
                    && let Some(km) = country_distance_km(c0, c)
                {
                    let hours = ((ev.time_ms - t0) as f64 / HOUR_MS as f64).max(0.05);
                    let speed = km / hours;
                    if km > 1000.0 && speed > 1000.0 {
                        let sev = human.then_some(Severity::Medium);
                        hits.push(bhit(BehaviourRule::ImpossibleTravel, sev, format!(
                                "{who} called from {c0} at {} and from {c} ({ip}) at {}: {km:.0} km in {hours:.1} h ({speed:.0} km/h)",
                                format_rfc3339_ms(*t0),
                                format_rfc3339_ms(ev.time_ms)
                            )));
                    }
                }
            }
        }
        // New ASN for machine identities.
        if let Some(a) = info.asn
            && machine
            && !base.asns.contains_key(&a)
            && !base.asns.is_empty()
            && info.class != NetworkClass::Datacenter
        {
            net_new = true;
            hits.push(bhit(
                BehaviourRule::NewAsn,
                None,
                format!(
                    "{who} called {} from AS{a} ({}); its baseline has {} other ASNs",
                    ev.event_name(),
                    info.org.as_deref().unwrap_or("unknown org"),
                    base.asns.len()
                ),
            ));
        }
    }

    // Server-only (machine) identity with an interactive client.
    let ua_total: u32 = base.user_agents.values().sum();
    let interactive_seen: u32 = base
        .user_agents
        .iter()
        .filter(|(k, _)| k.interactive())
        .map(|(_, v)| *v)
        .sum();
    if ua.interactive()
        && base.machine_only()
        && interactive_seen == 0
        && ua_total >= 50
        && ua != UaFamily::AttackTool
    {
        hits.push(bhit(BehaviourRule::InteractiveClient, None, format!(
            "{who} called {} with a client of family {} ({}); all {ua_total} calls in its baseline used server SDKs or tools",
            ev.event_name(),
            ua.as_str(),
            ev.user_agent()
        )));
    }

    // New region.
    if !ev.region().is_empty()
        && !global_service(ev)
        && !base.regions.contains_key(ev.region())
        && ev.error_code().is_none()
    {
        let sev = (net_new && machine).then_some(Severity::Medium);
        hits.push(bhit(
            BehaviourRule::NewRegion,
            sev,
            format!(
                "{who} called {} in {}; its baseline regions are {}",
                ev.event_name(),
                ev.region(),
                Baseline::top(&base.regions, 4)
            ),
        ));
    }

    // Hours of week, for strongly periodic machine identities.
    if machine && base.hours.len() == 168 && base.events >= 500 {
        let how = hour_of_week(ev.time_ms) as usize;
        let active = base.hours.iter().filter(|&&c| c > 0).count();
        if base.hours[how] == 0 && active <= 84 {
            hits.push(bhit(BehaviourRule::OffHours, None, format!(
                "{who} called {} at hour {} of the week (UTC); in {days} days it was active only in {active} of 168 hours",
                ev.event_name(), how
            )));
        }
    }

    // S3: first access to a bucket, and read spikes.
    if let Some((b, _)) = bucket
        && !base.buckets.contains(b)
        && !base.buckets.is_empty()
    {
        hits.push(bhit(
            BehaviourRule::NewBucket,
            None,
            format!(
                "{who} accessed bucket {b} ({}) for the first time; it used {} other buckets",
                ev.event_name(),
                base.buckets.len()
            ),
        ));
    }
    if ev.event_name() == "GetObject" {
        let hour = ev.time_ms.div_euclid(HOUR_MS);
        let now = if hour == base.cur_hour {
            base.cur[3] + 1
        } else {
            1
        };
        let bytes_now = if hour == base.cur_hour {
            base.cur[4]
        } else {
            0
        };
        let s = base.hourly[3];
        let limit = (s.mean + 6.0 * s.std()).max(s.mean * 10.0).max(200.0);
        if (now as f64) > limit && (now as f64 - 1.0) <= limit {
            let sev = (net_new || ua.interactive()).then_some(Severity::High);
            hits.push(bhit(BehaviourRule::ReadSpike, sev, format!(
                "{who} read {now} S3 objects ({bytes_now} bytes) this hour; its baseline is {:.0} ± {:.0} per active hour over {} hours",
                s.mean,
                s.std(),
                s.n
            )));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_lists_every_rule_in_order_with_unique_ids() {
        let mut ids = std::collections::HashSet::new();
        for (i, r) in BehaviourRule::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i, "{r:?}");
            assert!(ids.insert(r.def().id), "{r:?}");
            assert!(r.def().technique.starts_with('T'), "{r:?}");
        }
        assert_eq!(RULES.len(), BehaviourRule::ALL.len());
        assert_eq!(
            BehaviourRule::OwnersViolation.info().source,
            AlertSource::Owners
        );
    }
}

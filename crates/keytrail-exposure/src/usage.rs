//! What CloudTrail saw each leaked key (and the sessions it opened) do, in one
//! streaming pass with bounded per-key aggregates.
//!
//! [`Tracker::observe`] is called once per event, in event-time order. Events
//! whose `userIdentity.accessKeyId` is a tracked key update that key's
//! aggregates: uses before and after the leak, the sources (IP addresses,
//! networks, countries, clients) split at the leak time, the APIs and resources
//! touched after it. `AssumeRole`, `GetSessionToken` and `GetFederationToken`
//! calls made with a tracked key after its leak add the temporary key they
//! returned (`responseElements.credentials.accessKeyId`) to the tracked keys, so
//! the sessions are followed too, up to [`MAX_DEPTH`] hops and
//! [`MAX_SESSIONS`] sessions per leak. `DeleteAccessKey` and `UpdateAccessKey`
//! on a tracked key record when (and by whom) it was deleted or deactivated.
//! No event is kept: memory grows with the tracked keys, each capped.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use keytrail_detect::alert::{Alert, AlertSink};
use keytrail_detect::ipintel::IpIntel;
use keytrail_detect::time::format_rfc3339_ms;
use keytrail_detect::{Event, Provider};
use serde::Serialize;

/// Most hops followed from a leaked key (key → session → session …).
pub const MAX_DEPTH: u8 = 4;
/// Most derived sessions followed per leaked key.
pub const MAX_SESSIONS: usize = 256;
/// Most distinct values kept per source list after the leak (more are counted).
const MAX_LIST: usize = 64;
/// Most distinct values kept per source list before the leak (the baseline).
const MAX_BASELINE: usize = 4096;
/// A stretch without any event this long is reported as a gap in the logs.
pub const GAP_MS: i64 = 12 * 3_600_000;
/// Most gaps remembered.
const MAX_GAPS: usize = 1000;
/// Most alerts kept per leaked key.
const MAX_ALERTS: usize = 100;

/// Distinct values with how often each was seen, capped.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Counted {
    /// Value → events.
    pub values: BTreeMap<String, u64>,
    /// Distinct values not kept (over the cap).
    pub more: u64,
}

impl Counted {
    fn add(&mut self, v: &str, cap: usize) {
        if let Some(n) = self.values.get_mut(v) {
            *n += 1;
        } else if self.values.len() < cap {
            self.values.insert(v.to_string(), 1);
        } else {
            self.more += 1;
        }
    }
    /// Whether `v` is among the values.
    pub fn has(&self, v: &str) -> bool {
        self.values.contains_key(v)
    }
}

/// The sources of calls over a period.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Sources {
    /// Source IP addresses (or AWS service names for calls made by a service).
    pub ips: Counted,
    /// Networks: `AS<n> <org>` with IP intelligence, else the /24 (IPv4) or /48
    /// (IPv6) prefix.
    pub networks: Counted,
    /// Countries (ISO codes; only with IP intelligence).
    pub countries: Counted,
    /// Clients: the product of the user agent (`aws-cli`, `Boto3`, `console`…).
    pub clients: Counted,
}

/// How a key was seen being used (for the replacement plan).
#[derive(Debug, Clone, Default)]
pub struct Hints {
    /// Usage markers: `github-actions`, `gitlab-ci`, `ec2-private`, `eks`, `gce`, `gke`,
    /// `lambda`, `ecs`, `on-premises`, `console`.
    pub markers: BTreeSet<&'static str>,
    /// Last user agent examined (markers are only re-derived when it changes).
    last_ua: u64,
}

/// Aggregates of one tracked key (a leaked key or a session derived from it).
#[derive(Debug, Clone, Default)]
pub struct Usage {
    /// Calls before the leak.
    pub uses_before: u64,
    /// Calls at or after the leak.
    pub uses_after: u64,
    /// First call at or after the leak (epoch ms).
    pub first_after_ms: Option<i64>,
    /// Last call seen (epoch ms).
    pub last_ms: Option<i64>,
    /// First call seen (epoch ms).
    pub first_ms: Option<i64>,
    /// Sources before the leak (the baseline).
    pub before: Sources,
    /// Sources at or after the leak.
    pub after: Sources,
    /// `service:EventName` → calls after the leak.
    pub apis_after: Counted,
    /// Resources named in requests after the leak (buckets, secrets, roles…).
    pub resources_after: Counted,
    /// Calls after the leak that were denied.
    pub denied_after: u64,
    /// `userIdentity.arn` of the calls (first seen).
    pub arn: Option<String>,
    /// `userIdentity.accountId` (first seen).
    pub account_id: Option<String>,
    /// `userIdentity.type` (first seen).
    pub identity_type: Option<String>,
    /// Usage markers for the plan.
    pub hints: Hints,
}

/// A temporary credential opened with a tracked key.
#[derive(Debug, Clone)]
pub struct Session {
    /// Its access key id (`ASIA…`).
    pub key: String,
    /// The call that returned it.
    pub via: String,
    /// The key that made the call.
    pub parent: String,
    /// Hops from the leaked key (1 = opened by the leaked key itself).
    pub depth: u8,
    /// Role assumed (`AssumeRole`).
    pub role_arn: Option<String>,
    /// Session name or federated user name.
    pub session_name: Option<String>,
    /// Federated user ARN (`GetFederationToken`).
    pub federated_user: Option<String>,
    /// When it was issued (epoch ms).
    pub issued_ms: i64,
    /// Source IP of the issuing call.
    pub issued_from: String,
    /// What it did.
    pub usage: Usage,
}

/// Deletion or deactivation of a tracked key, from CloudTrail.
#[derive(Debug, Clone, Serialize)]
pub struct KeyChange {
    /// `deleted` or `inactive` or `active`.
    pub status: String,
    /// When (RFC 3339).
    pub time: String,
    /// Epoch ms (not serialised).
    #[serde(skip)]
    pub time_ms: i64,
    /// Who made the call (ARN).
    pub by: String,
}

/// One leaked key being tracked.
#[derive(Debug, Clone)]
pub struct Tracked {
    /// The key id.
    pub key: String,
    /// Leak time (epoch ms), if known.
    pub leaked_at_ms: Option<i64>,
    /// What the key did.
    pub usage: Usage,
    /// Sessions opened from it (transitively).
    pub sessions: Vec<Session>,
    /// Sessions not followed (over [`MAX_SESSIONS`] or [`MAX_DEPTH`]).
    pub sessions_not_followed: u64,
    /// Last status change seen in CloudTrail.
    pub changes: Vec<KeyChange>,
    /// Whether this key is a leak (false: only tracked for the plan).
    pub leaked: bool,
}

#[derive(Debug, Clone, Copy)]
enum Slot {
    Leak(usize),
    Session(usize, usize),
}

/// Alerts of interest, filled by the detect engine's sink.
#[derive(Default)]
pub struct AlertBox {
    keys: HashMap<String, usize>,
    principals: HashMap<String, Vec<usize>>,
    /// (tracked index, alert).
    pub alerts: Vec<(usize, Alert)>,
    per: HashMap<usize, usize>,
}

/// An [`AlertSink`] that keeps the alerts of tracked keys and identities.
#[derive(Clone)]
pub struct AlertCatcher(pub Arc<Mutex<AlertBox>>);

impl AlertSink for AlertCatcher {
    fn alert(&mut self, alert: Alert) {
        let Ok(mut b) = self.0.lock() else { return };
        let mut targets: Vec<usize> = Vec::new();
        if let Some(k) = &alert.access_key_id
            && let Some(&i) = b.keys.get(k)
        {
            targets.push(i);
        }
        if let Some(v) = b.principals.get(&alert.principal) {
            for &i in v {
                if !targets.contains(&i) {
                    targets.push(i);
                }
            }
        }
        for i in targets {
            let n = b.per.entry(i).or_default();
            if *n < MAX_ALERTS {
                *n += 1;
                b.alerts.push((i, alert.clone()));
            }
        }
    }
}

/// Coverage of the logs read.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Coverage {
    /// Events seen.
    pub events: u64,
    /// Time of the first event (RFC 3339).
    pub first_event: Option<String>,
    /// Time of the last event (RFC 3339).
    pub last_event: Option<String>,
    /// Stretches of at least 12 hours without any event: (from, to), RFC 3339.
    pub gaps: Vec<(String, String)>,
    /// Epoch ms of the first and last events and gaps (not serialised).
    #[serde(skip)]
    pub span_ms: Option<(i64, i64)>,
    /// Gaps in epoch ms (not serialised).
    #[serde(skip)]
    pub gaps_ms: Vec<(i64, i64)>,
    /// Events read per cloud (`aws`, `gcp`, `entra`, `m365`, `azure`).
    pub events_by_cloud: BTreeMap<&'static str, u64>,
    /// Epoch ms of the first and last events of each cloud (not serialised).
    #[serde(skip)]
    pub span_by_cloud_ms: BTreeMap<&'static str, (i64, i64)>,
}

/// The streaming join.
pub struct Tracker {
    /// Tracked keys (leaks first, then keys tracked only for the plan).
    pub tracked: Vec<Tracked>,
    by_key: HashMap<String, Slot>,
    intel: Arc<IpIntel>,
    has_intel: bool,
    ip_cache: HashMap<IpAddr, Net>,
    /// Scratch text for the names counted per call (no allocation per event).
    scratch: String,
    /// Alerts caught by [`Tracker::alert_sink`].
    pub alerts: Arc<Mutex<AlertBox>>,
    /// Log coverage.
    pub coverage: Coverage,
    prev_ms: Option<i64>,
}

impl Tracker {
    /// A tracker for the given keys: (key id, leak time, leaked?). `intel` gives
    /// networks and countries ([`IpIntel::empty`] for none).
    pub fn new(keys: Vec<(String, Option<i64>, bool)>, intel: Arc<IpIntel>) -> Tracker {
        let mut by_key = HashMap::new();
        let mut tracked = Vec::new();
        let mut boxed = AlertBox::default();
        for (key, at, leaked) in keys {
            if by_key.contains_key(&key) {
                continue;
            }
            by_key.insert(key.clone(), Slot::Leak(tracked.len()));
            if leaked {
                boxed.keys.insert(key.clone(), tracked.len());
            }
            tracked.push(Tracked {
                key,
                leaked_at_ms: at,
                usage: Usage::default(),
                sessions: Vec::new(),
                sessions_not_followed: 0,
                changes: Vec::new(),
                leaked,
            });
        }
        let has_intel = intel.lookup("8.8.8.8".parse().expect("ip")).asn.is_some()
            || intel
                .lookup("8.8.8.8".parse().expect("ip"))
                .country
                .is_some();
        Tracker {
            tracked,
            by_key,
            intel,
            has_intel,
            ip_cache: HashMap::new(),
            scratch: String::new(),
            alerts: Arc::new(Mutex::new(boxed)),
            coverage: Coverage::default(),
            prev_ms: None,
        }
    }

    /// Whether IP intelligence resolved networks (else networks are prefixes).
    pub fn has_intel(&self) -> bool {
        self.has_intel
    }

    /// Watches the alerts of a leaked key's identity (its IAM user ARN).
    pub fn watch_principal(&self, leak: usize, principal: &str) {
        if let Ok(mut b) = self.alerts.lock() {
            let v = b.principals.entry(principal.to_string()).or_default();
            if !v.contains(&leak) {
                v.push(leak);
            }
        }
    }

    /// A sink for the detect engine that keeps the alerts of the tracked keys,
    /// their sessions and watched identities.
    pub fn alert_sink(&self) -> AlertCatcher {
        AlertCatcher(self.alerts.clone())
    }

    /// Takes one event (events come in time order).
    pub fn observe(&mut self, ev: &Event) {
        let t = ev.time_ms;
        self.coverage.events += 1;
        let cloud = ev.provider().as_str();
        *self.coverage.events_by_cloud.entry(cloud).or_default() += 1;
        let span = self
            .coverage
            .span_by_cloud_ms
            .entry(cloud)
            .or_insert((t, t));
        *span = (span.0.min(t), span.1.max(t));
        match self.coverage.span_ms {
            None => self.coverage.span_ms = Some((t, t)),
            Some((a, b)) => self.coverage.span_ms = Some((a.min(t), b.max(t))),
        }
        if let Some(p) = self.prev_ms {
            if t - p >= GAP_MS && self.coverage.gaps_ms.len() < MAX_GAPS {
                self.coverage.gaps_ms.push((p, t));
            }
            if t > p {
                self.prev_ms = Some(t);
            }
        } else {
            self.prev_ms = Some(t);
        }
        let name = ev.event_name();
        if matches!(name, "DeleteAccessKey" | "UpdateAccessKey") && ev.error_code().is_none() {
            self.key_change(ev, name);
        }
        if ev.provider() == Provider::Gcp
            && let Some(status) = gcp_key_change(name)
            && ev.error_code().is_none()
        {
            self.gcp_key_change(ev, status);
        }
        let Some(ak) = ev.access_key_id() else { return };
        let slot = match self.by_key.get(ak) {
            Some(&s) => s,
            // Entra ID writes key ids (GUIDs) in either case.
            None if ak.len() == 36 && ak.bytes().any(|b| b.is_ascii_uppercase()) => {
                match self.by_key.get(&ak.to_ascii_lowercase()) {
                    Some(&s) => s,
                    None => return,
                }
            }
            None => return,
        };
        let (leak, at) = match slot {
            Slot::Leak(i) => (i, self.tracked[i].leaked_at_ms),
            Slot::Session(i, _) => (i, self.tracked[i].leaked_at_ms),
        };
        let after = at.is_none_or(|a| t >= a);
        let net = self.network(ev);
        let usage = match slot {
            Slot::Leak(i) => &mut self.tracked[i].usage,
            Slot::Session(i, j) => &mut self.tracked[i].sessions[j].usage,
        };
        record(
            usage,
            ev,
            after && at.is_some(),
            at.is_none(),
            &net,
            &mut self.scratch,
        );
        // Sessions opened with this key after the leak.
        if after
            && self.tracked[leak].leaked
            && matches!(
                name,
                "AssumeRole" | "GetSessionToken" | "GetFederationToken"
            )
            && ev.error_code().is_none()
        {
            self.follow(ev, slot, leak);
        }
    }

    fn network(&mut self, ev: &Event) -> Net {
        let Some(ip) = ev.source_addr else {
            return (None, None);
        };
        if let Some(v) = self.ip_cache.get(&ip) {
            return v.clone();
        }
        let info = self.intel.lookup(ip);
        let net = match info.asn {
            Some(asn) => Some(match &info.org {
                Some(o) => format!("AS{asn} {o}"),
                None => format!("AS{asn}"),
            }),
            None => Some(prefix(ip)),
        };
        let v: Net = (net.map(Arc::from), info.country.map(Arc::from));
        if self.ip_cache.len() > 100_000 {
            self.ip_cache.clear();
        }
        self.ip_cache.insert(ip, v.clone());
        v
    }

    fn key_change(&mut self, ev: &Event, name: &str) {
        let Some(key) = ev.lookup_str("requestParameters.accessKeyId") else {
            return;
        };
        let Some(&Slot::Leak(i)) = self.by_key.get(key) else {
            return;
        };
        let status = if name == "DeleteAccessKey" {
            "deleted".to_string()
        } else {
            ev.lookup_str("requestParameters.status")
                .unwrap_or("")
                .to_ascii_lowercase()
        };
        let c = &mut self.tracked[i].changes;
        if c.len() < 32 {
            c.push(KeyChange {
                status,
                time: format_rfc3339_ms(ev.time_ms),
                time_ms: ev.time_ms,
                by: ev.arn().unwrap_or(ev.principal()).to_string(),
            });
        }
    }

    /// `DeleteServiceAccountKey`, `DisableServiceAccountKey` and
    /// `EnableServiceAccountKey` on a tracked Google Cloud key: the key is the
    /// last segment of the request's `name` (or of the resource name).
    fn gcp_key_change(&mut self, ev: &Event, status: &str) {
        let name = ev
            .lookup_str("protoPayload.request.name")
            .or_else(|| ev.lookup_str("protoPayload.resourceName"));
        let Some(key) = name.and_then(keytrail_detect::event::gcp_key_id) else {
            return;
        };
        let Some(&Slot::Leak(i)) = self.by_key.get(key) else {
            return;
        };
        let c = &mut self.tracked[i].changes;
        if c.len() < 32 {
            c.push(KeyChange {
                status: status.to_string(),
                time: format_rfc3339_ms(ev.time_ms),
                time_ms: ev.time_ms,
                by: ev.principal().to_string(),
            });
        }
    }

    fn follow(&mut self, ev: &Event, slot: Slot, leak: usize) {
        let Some(new_key) = ev.lookup_str("responseElements.credentials.accessKeyId") else {
            return;
        };
        if self.by_key.contains_key(new_key) {
            return;
        }
        let (depth, parent) = match slot {
            Slot::Leak(i) => (1, self.tracked[i].key.clone()),
            Slot::Session(i, j) => {
                let s = &self.tracked[i].sessions[j];
                (s.depth + 1, s.key.clone())
            }
        };
        let tr = &mut self.tracked[leak];
        if depth > MAX_DEPTH || tr.sessions.len() >= MAX_SESSIONS {
            tr.sessions_not_followed += 1;
            return;
        }
        let session_name = ev
            .lookup_str("requestParameters.roleSessionName")
            .or_else(|| ev.lookup_str("requestParameters.name"))
            .map(str::to_string);
        let s = Session {
            key: new_key.to_string(),
            via: ev.event_name().to_string(),
            parent,
            depth,
            role_arn: ev
                .lookup_str("requestParameters.roleArn")
                .map(str::to_string),
            session_name,
            federated_user: ev
                .lookup_str("responseElements.federatedUser.arn")
                .map(str::to_string),
            issued_ms: ev.time_ms,
            issued_from: ev.source_ip().to_string(),
            usage: Usage::default(),
        };
        let j = tr.sessions.len();
        tr.sessions.push(s);
        self.by_key
            .insert(new_key.to_string(), Slot::Session(leak, j));
        if let Ok(mut b) = self.alerts.lock() {
            b.keys.insert(new_key.to_string(), leak);
        }
    }
}

/// The network and country of a source address (shared with the address cache).
type Net = (Option<Arc<str>>, Option<Arc<str>>);

/// The /24 (IPv4) or /48 (IPv6) prefix of an address.
fn prefix(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v) => {
            let o = v.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        IpAddr::V6(v) => {
            let s = v.segments();
            format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
    }
}

/// The client product of a user agent: its first product token without the
/// version (`aws-cli/2.15 Python/3.11` → `aws-cli`), `console` for the console.
pub fn client_of(ua: &str) -> &str {
    let ua = ua.trim();
    if ua.is_empty() {
        return "(none)";
    }
    if ua.ends_with("console.amazonaws.com") || ua == "AWS Internal" {
        return ua;
    }
    let first = ua.split([' ', '(']).next().unwrap_or(ua);
    let name = first.split('/').next().unwrap_or(first);
    if name.eq_ignore_ascii_case("mozilla") {
        return "browser";
    }
    match name.char_indices().nth(64) {
        Some((end, _)) => &name[..end],
        None => name,
    }
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    }) | 1
}

/// The status a Google Cloud IAM method gives a service-account key.
fn gcp_key_change(method: &str) -> Option<&'static str> {
    let m = method.rsplit('.').next().unwrap_or(method);
    match m {
        "DeleteServiceAccountKey" => Some("deleted"),
        "DisableServiceAccountKey" => Some("inactive"),
        "EnableServiceAccountKey" => Some("active"),
        _ => None,
    }
}

/// Usage markers of one call (user agent and source address).
fn markers(ev: &Event, out: &mut BTreeSet<&'static str>) {
    let ua = ev.user_agent().to_ascii_lowercase();
    if ua.contains("github") {
        out.insert("github-actions");
    }
    if ua.contains("gitlab") {
        out.insert("gitlab-ci");
    }
    if ua.contains("exec-env/aws_lambda") || ua.contains("aws_lambda_") {
        out.insert("lambda");
    }
    if ua.contains("exec-env/aws_ecs") {
        out.insert("ecs");
    }
    if ua.contains("kubernetes") || ua.contains("eks") || ua.contains("k8s") {
        out.insert(if ev.provider() == Provider::Gcp {
            "gke"
        } else {
            "eks"
        });
    }
    if ua.contains("console.amazonaws.com") || ua.starts_with("mozilla") {
        out.insert("console");
    }
}

fn record(
    u: &mut Usage,
    ev: &Event,
    after: bool,
    unknown_leak: bool,
    net: &Net,
    scratch: &mut String,
) {
    let t = ev.time_ms;
    u.first_ms = Some(u.first_ms.map_or(t, |f| f.min(t)));
    u.last_ms = Some(u.last_ms.map_or(t, |l| l.max(t)));
    let gcp = ev.provider() == Provider::Gcp;
    if u.arn.is_none() {
        if gcp {
            // The service account's e-mail, its project, and the kind.
            u.arn = Some(ev.principal().to_string()).filter(|p| p != "unknown");
            u.identity_type = Some("serviceAccount".into());
        } else {
            u.arn = ev.arn().map(str::to_string);
            u.identity_type = ev.lookup_str("userIdentity.type").map(str::to_string);
        }
        u.account_id = ev.account_id().map(str::to_string);
    }
    let h = fnv(ev.user_agent());
    if h != u.hints.last_ua {
        u.hints.last_ua = h;
        markers(ev, &mut u.hints.markers);
    }
    if gcp && matches!(ev.source_ip(), "gce-internal-ip" | "private") {
        // Google Cloud's word for a call from one of its own VMs.
        u.hints.markers.insert("gce");
    } else if let Some(IpAddr::V4(v)) = ev.source_addr
        && v.is_private()
    {
        u.hints
            .markers
            .insert(if gcp { "gce" } else { "ec2-private" });
    } else if ev.source_addr.is_some() {
        u.hints.markers.insert("public-address");
    }
    let ip = ev.source_ip();
    let client = client_of(ev.user_agent());
    // With an unknown leak time every call is "after" for counting, but nothing is
    // a baseline, so sources are all listed as seen (never as new).
    let (side, cap) = if after || unknown_leak {
        u.uses_after += 1;
        if u.first_after_ms.is_none() {
            u.first_after_ms = Some(t);
        }
        if ev.access_denied() {
            u.denied_after += 1;
        }
        scratch.clear();
        scratch.push_str(ev.service());
        scratch.push(':');
        scratch.push_str(ev.event_name());
        u.apis_after.add(scratch, MAX_LIST);
        if gcp {
            // The resource the call was on (a bucket's object, a secret…).
            if let Some(r) = ev
                .lookup_str("protoPayload.resourceName")
                .filter(|r| !r.is_empty())
            {
                u.resources_after.add(r, MAX_LIST);
            }
        } else {
            resources(ev, scratch, |r| u.resources_after.add(r, MAX_LIST));
        }
        (&mut u.after, MAX_LIST)
    } else {
        u.uses_before += 1;
        (&mut u.before, MAX_BASELINE)
    };
    side.ips.add(ip, cap);
    if let Some(n) = &net.0 {
        side.networks.add(n, cap);
    }
    if let Some(c) = &net.1 {
        side.countries.add(c, cap);
    }
    side.clients.add(client, cap);
}

/// Resources named in a call's request (bucket, secret, role, user, table, …),
/// each given to `each` as its display text (built in `scratch`). The request
/// is read once, member by member.
fn resources(ev: &Event, scratch: &mut String, mut each: impl FnMut(&str)) {
    /// Request members naming a resource, and the prefix of their display text.
    const KEYS: &[(&str, &str)] = &[
        ("bucketName", "s3://"),
        ("secretId", "secret:"),
        ("roleArn", ""),
        ("userName", "user:"),
        ("roleName", "role:"),
        ("tableName", "dynamodb:"),
        ("functionName", "lambda:"),
        ("name", "ssm:"),
        ("keyId", "kms:"),
        ("policyArn", ""),
        ("instanceId", "ec2:"),
    ];
    let Some(req) = ev.lookup_raw("requestParameters") else {
        return;
    };
    let ssm = ev.service() == "ssm";
    keytrail_detect::event::for_each_member(req, |k, v| {
        let Some(&(_, prefix)) = KEYS.iter().find(|(name, _)| *name == k) else {
            return;
        };
        if k == "name" && !ssm {
            return;
        }
        // Only string values; escaped ones are decoded.
        let decoded;
        let text = match v.as_bytes() {
            [b'"', inner @ .., b'"'] if !inner.contains(&b'\\') => &v[1..v.len() - 1],
            [b'"', ..] => match serde_json::from_str::<String>(v) {
                Ok(t) => {
                    decoded = t;
                    decoded.as_str()
                }
                Err(_) => return,
            },
            _ => return,
        };
        scratch.clear();
        scratch.push_str(prefix);
        match text.char_indices().nth(256) {
            Some((end, _)) => scratch.push_str(&text[..end]),
            None => scratch.push_str(text),
        }
        each(scratch);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resources_of(source: &str, params: &str) -> Vec<String> {
        let ev = Event::parse_str(&format!(
            r#"{{"eventVersion":"1.09","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/u","accountId":"111122223333","accessKeyId":"AKIAAAAAAAAAAAAAAAAA"}},"eventTime":"2024-03-04T00:00:00Z","eventSource":"{source}","eventName":"X","awsRegion":"us-east-1","sourceIPAddress":"10.0.0.1","userAgent":"aws-cli/2","requestParameters":{params},"eventID":"e","eventType":"AwsApiCall"}}"#
        ))
        .expect("event");
        let mut out = Vec::new();
        let mut scratch = String::new();
        resources(&ev, &mut scratch, |r| out.push(r.to_string()));
        out
    }

    #[test]
    fn resources_are_read_in_one_pass() {
        assert_eq!(
            resources_of(
                "s3.amazonaws.com",
                r#"{"bucketName":"prod-data","key":"a/b","name":"not-ssm","instanceId":5}"#
            ),
            ["s3://prod-data"]
        );
        // Escaped text is decoded; `name` counts for SSM only.
        assert_eq!(
            resources_of(
                "ssm.amazonaws.com",
                r#"{"name":"/prod/db\u002Fpass","withDecryption":true}"#
            ),
            ["ssm:/prod/db/pass"]
        );
        assert!(resources_of("s3.amazonaws.com", "null").is_empty());
        assert!(resources_of("s3.amazonaws.com", "{}").is_empty());
        let long = "x".repeat(400);
        let r = resources_of(
            "secretsmanager.amazonaws.com",
            &format!(r#"{{"secretId":"{long}"}}"#),
        );
        assert_eq!(r[0].len(), "secret:".len() + 256);
    }

    #[test]
    fn clients() {
        assert_eq!(client_of("aws-cli/2.15.30 Python/3.11.8 Linux"), "aws-cli");
        assert_eq!(client_of("Boto3/1.34.69 md/Botocore#1.34.69"), "Boto3");
        assert_eq!(client_of("Mozilla/5.0 (Macintosh)"), "browser");
        assert_eq!(client_of(""), "(none)");
    }
}

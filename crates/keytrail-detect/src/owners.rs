//! Reader for the owners file (`keytrail.owners.yaml`, the format defined by
//! `keytrail_inventory::owners`): the detect engine uses each identity's
//! `expected_usage` (regions, source networks, hours and days, services) to flag use
//! outside what its owner declared.
//!
//! Only `arn` and `pattern` entries apply to CloudTrail (events carry no tags); `tag`
//! entries are accepted and ignored. Kept independent of the inventory crate so the
//! detect engine depends only on `keytrail-types`; the YAML format is the contract.

use std::net::IpAddr;
use std::path::Path;

use keytrail_types::Diagnostic;
use regex::Regex;
use serde_yaml_ng::Value as Yaml;

use crate::event::Event;
use crate::ipintel::{IpInfo, parse_cidr};
use crate::time::hour_of_week;

/// One applicable owners entry.
#[derive(Debug, Clone)]
pub struct OwnerEntry {
    /// Exact ARN.
    pub arn: Option<String>,
    /// Glob (`*` crosses `/`) compiled to a regex.
    pub pattern: Option<Regex>,
    /// Owner.
    pub owner: Option<String>,
    /// Purpose.
    pub purpose: Option<String>,
    /// Kind hint derived from the purpose (`server`, `ci`) when it says so.
    pub kind: Option<String>,
    /// Expected regions.
    pub regions: Vec<String>,
    /// Expected source networks (first, last address).
    pub networks: Vec<(IpAddr, IpAddr)>,
    /// Expected hours: start and end minute of the day (UTC; may wrap).
    pub hours: Option<(u16, u16)>,
    /// Expected weekdays, 0 = Monday.
    pub days: Vec<u8>,
    /// Expected services (`s3` or `s3.amazonaws.com`).
    pub services: Vec<String>,
}

/// A loaded owners file.
#[derive(Debug, Clone, Default)]
pub struct Owners {
    /// Entries in file order.
    pub entries: Vec<OwnerEntry>,
}

fn in_net(ip: IpAddr, (a, b): (IpAddr, IpAddr)) -> bool {
    match (ip, a, b) {
        (IpAddr::V4(x), IpAddr::V4(a), IpAddr::V4(b)) => (a..=b).contains(&x),
        (IpAddr::V6(x), IpAddr::V6(a), IpAddr::V6(b)) => (a..=b).contains(&x),
        _ => false,
    }
}

impl OwnerEntry {
    /// Every way `ev` departs from the declared expectations, as phrases.
    pub fn violations(&self, ev: &Event, _info: Option<&IpInfo>) -> Vec<String> {
        let mut v = Vec::new();
        if !self.regions.is_empty()
            && !ev.region().is_empty()
            && !self.regions.iter().any(|r| *r == *ev.region())
        {
            v.push(format!(
                "called {} in region {} but is declared for {}",
                ev.event_name(),
                ev.region(),
                self.regions.join(", ")
            ));
        }
        if !self.networks.is_empty()
            && let Some(ip) = ev.source_addr
            && !self.networks.iter().any(|n| in_net(ip, *n))
        {
            v.push(format!(
                "called from {ip}, outside its declared source networks"
            ));
        }
        let how = hour_of_week(ev.time_ms);
        let (day, minute) = (
            how / 24,
            (ev.time_ms.rem_euclid(86_400_000) / 60_000) as u16,
        );
        if !self.days.is_empty() && !self.days.contains(&day) {
            v.push(format!(
                "was active on weekday {} (0 = Monday), outside its declared days",
                day
            ));
        }
        if let Some((s, e)) = self.hours {
            let inside = if s <= e {
                minute >= s && minute < e
            } else {
                minute >= s || minute < e
            };
            if !inside {
                v.push(format!(
                    "was active at {:02}:{:02} UTC, outside its declared hours {:02}:{:02}-{:02}:{:02}",
                    minute / 60,
                    minute % 60,
                    s / 60,
                    s % 60,
                    e / 60,
                    e % 60
                ));
            }
        }
        if !self.services.is_empty() {
            let svc = ev.service();
            if !self
                .services
                .iter()
                .any(|s| s == svc || *s == *ev.event_source())
                && svc != "sts"
            {
                v.push(format!(
                    "used service {svc} ({}) outside its declared services {}",
                    ev.event_name(),
                    self.services.join(", ")
                ));
            }
        }
        v
    }
}

fn glob_regex(p: &str) -> Result<Regex, regex::Error> {
    let mut re = String::from("^");
    for c in p.chars() {
        match c {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    Regex::new(&re)
}

fn strings(v: Option<&Yaml>) -> Vec<String> {
    match v {
        Some(Yaml::Sequence(s)) => s
            .iter()
            .filter_map(|x| x.as_str().map(String::from))
            .collect(),
        Some(Yaml::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

fn parse_hm(x: &str) -> Option<u16> {
    let (h, m) = x.trim().split_once(':')?;
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (h <= 24 && m < 60 && h * 60 + m <= 1440).then_some(h * 60 + m)
}

impl Owners {
    /// Parses owners YAML; invalid entries become diagnostics naming `name`.
    pub fn parse(name: &str, text: &str) -> (Self, Vec<Diagnostic>) {
        let mut diags = Vec::new();
        let doc: Yaml = match serde_yaml_ng::from_str(text) {
            Ok(d) => d,
            Err(e) => {
                diags.push(Diagnostic::error("owners_invalid", name, e.to_string()));
                return (Owners::default(), diags);
            }
        };
        let mut entries = Vec::new();
        let items = doc
            .get("identities")
            .and_then(Yaml::as_sequence)
            .cloned()
            .unwrap_or_default();
        for (i, it) in items.iter().enumerate() {
            let arn = it.get("arn").and_then(Yaml::as_str).map(String::from);
            let pattern = match it.get("pattern").and_then(Yaml::as_str) {
                Some(p) => match glob_regex(p) {
                    Ok(r) => Some(r),
                    Err(e) => {
                        diags.push(Diagnostic::error(
                            "owners_invalid",
                            name,
                            format!("entry {}: bad pattern: {e}", i + 1),
                        ));
                        continue;
                    }
                },
                None => None,
            };
            if arn.is_none() && pattern.is_none() {
                continue;
            }
            let eu = it.get("expected_usage");
            let mut networks = Vec::new();
            for n in strings(eu.and_then(|e| e.get("source_networks"))) {
                match parse_cidr(&n) {
                    Some(r) => networks.push(r),
                    None => diags.push(Diagnostic::error(
                        "owners_invalid",
                        name,
                        format!("entry {}: `{n}` is not an IP network", i + 1),
                    )),
                }
            }
            let hours = eu
                .and_then(|e| e.get("hours"))
                .and_then(Yaml::as_str)
                .and_then(|h| {
                    let (a, b) = h.split_once('-')?;
                    Some((parse_hm(a)?, parse_hm(b)?))
                });
            let days = strings(eu.and_then(|e| e.get("days")))
                .iter()
                .filter_map(|d| {
                    ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
                        .iter()
                        .position(|x| d.to_ascii_lowercase().starts_with(x))
                        .map(|p| p as u8)
                })
                .collect();
            let purpose = it.get("purpose").and_then(Yaml::as_str).map(String::from);
            let kind = purpose
                .as_deref()
                .map(str::to_ascii_lowercase)
                .and_then(|p| {
                    if p.contains("server")
                        || p.contains("service account")
                        || p.contains("workload")
                    {
                        Some("server".to_string())
                    } else if p.contains("ci ")
                        || p.starts_with("ci")
                        || p.contains("deploy")
                        || p.contains("pipeline")
                    {
                        Some("ci".to_string())
                    } else {
                        None
                    }
                });
            entries.push(OwnerEntry {
                arn,
                pattern,
                owner: it.get("owner").and_then(Yaml::as_str).map(String::from),
                purpose,
                kind,
                regions: strings(eu.and_then(|e| e.get("regions"))),
                networks,
                hours,
                days,
                services: strings(eu.and_then(|e| e.get("services"))),
            });
        }
        (Owners { entries }, diags)
    }

    /// Loads an owners file.
    pub fn load(path: &Path) -> (Self, Vec<Diagnostic>) {
        match std::fs::read_to_string(path) {
            Ok(t) => Self::parse(&path.display().to_string(), &t),
            Err(e) => (
                Owners::default(),
                vec![Diagnostic::error(
                    "owners_unreadable",
                    path.display().to_string(),
                    e.to_string(),
                )],
            ),
        }
    }

    /// The entry for the event's identity: exact ARN first, then patterns, in file order.
    pub fn find(&self, ev: &Event) -> Option<&OwnerEntry> {
        let p = ev.principal();
        let arn = ev.arn().unwrap_or(p);
        self.entries
            .iter()
            .find(|e| e.arn.as_deref().is_some_and(|a| a == p || a == arn))
            .or_else(|| {
                self.entries.iter().find(|e| {
                    e.pattern
                        .as_ref()
                        .is_some_and(|r| r.is_match(p) || r.is_match(arn))
                })
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = r#"
version: 1
identities:
  - arn: arn:aws:iam::111122223333:role/ci-deploy
    owner: platform-team
    purpose: CI deploys to production
    expected_usage:
      regions: [eu-west-1]
      source_networks: [203.0.113.0/24]
      hours: "06:00-20:00"
      days: [mon, tue, wed, thu, fri]
      services: [s3, ecr, ecs]
  - pattern: "arn:aws:iam::*:role/data-*"
    owner: data-team
  - tag: { key: team }
"#;

    fn ev(t: &str, region: &str, ip: &str, src: &str) -> Event {
        Event::parse_str(&format!(
            r#"{{"eventTime":"{t}","awsRegion":"{region}","sourceIPAddress":"{ip}","eventSource":"{src}","eventName":"X",
            "userIdentity":{{"type":"AssumedRole","arn":"arn:aws:sts::111122223333:assumed-role/ci-deploy/s","sessionContext":{{"sessionIssuer":{{"arn":"arn:aws:iam::111122223333:role/ci-deploy"}}}}}}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn flags_each_declared_expectation() {
        let (o, d) = Owners::parse("o.yaml", YAML);
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(o.entries.len(), 2);
        // 2024-12-02 is a Monday.
        let good = ev(
            "2024-12-02T10:00:00Z",
            "eu-west-1",
            "203.0.113.7",
            "s3.amazonaws.com",
        );
        let e = o.find(&good).unwrap();
        assert_eq!(e.kind.as_deref(), Some("ci"));
        assert!(e.violations(&good, None).is_empty());
        let bad = ev(
            "2024-12-07T23:00:00Z",
            "ap-south-1",
            "198.51.100.1",
            "iam.amazonaws.com",
        );
        let v = e.violations(&bad, None);
        assert_eq!(v.len(), 5, "{v:?}");
    }
}

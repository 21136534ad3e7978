//! The owners file (`keytrail.owners.yaml`): who owns each machine identity,
//! what it is for, which environment it serves and how it is expected to be
//! used. The inventory shows owners (or `UNOWNED`); the detect engine can
//! reuse [`ExpectedUsage`] to flag use outside the declared regions,
//! networks, hours and services.
//!
//! ```yaml
//! version: 1
//! identities:
//!   - arn: arn:aws:iam::111122223333:role/ci-deploy     # exact identity
//!     owner: platform-team
//!     purpose: CI deploys to production
//!     environment: prod                                 # dev | stage | prod
//!     expected_usage:
//!       regions: [eu-west-1]
//!       source_networks: [203.0.113.0/24, "2001:db8::/32"]
//!       hours: "06:00-20:00"                            # UTC, may wrap midnight
//!       days: [mon, tue, wed, thu, fri]
//!       services: [s3, ecr, ecs]
//!   - pattern: "arn:aws:iam::*:role/data-*"             # glob; `*` crosses `/`
//!     owner: data-team
//!   - tag: { key: team }                                # owner = the tag's value
//!   - tag: { key: cost-center, value: "4711" }
//!     owner: payments
//! ```
//!
//! Precedence: an exact `arn` entry wins over a `tag` entry, which wins over
//! a `pattern` entry; within a kind the first entry in file order wins.
//! Invalid entries are skipped with a diagnostic; the rest still apply.

use globset::{Glob, GlobMatcher};
use keytrail_types::Diagnostic;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;
use std::path::Path;

/// Deployment environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// Development.
    Dev,
    /// Staging.
    Stage,
    /// Production.
    Prod,
}

impl Environment {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Dev => "dev",
            Environment::Stage => "stage",
            Environment::Prod => "prod",
        }
    }

    fn parse(s: &str) -> Option<Environment> {
        match s.trim().to_ascii_lowercase().as_str() {
            "dev" | "development" => Some(Environment::Dev),
            "stage" | "staging" => Some(Environment::Stage),
            "prod" | "production" => Some(Environment::Prod),
            _ => None,
        }
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An IP network in CIDR notation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    /// Network address.
    pub addr: IpAddr,
    /// Prefix length.
    pub prefix: u8,
}

impl Cidr {
    /// Parses `a.b.c.d/n`, `x::y/n`, or a bare address (a host network).
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let s = s.trim();
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .parse()
            .map_err(|_| format!("`{s}` is not an IP network"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{s}` has an invalid prefix length"))?,
            None => max,
        };
        Ok(Cidr { addr, prefix })
    }

    /// Whether `ip` is inside the network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(i)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - self.prefix)
                };
                u32::from(n) & mask == u32::from(i) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(i)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - self.prefix)
                };
                u128::from(n) & mask == u128::from(i) & mask
            }
            _ => false,
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// A daily time window in UTC, in minutes after midnight; `start > end`
/// wraps past midnight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HourWindow {
    /// Start minute (inclusive).
    pub start_minute: u16,
    /// End minute (exclusive).
    pub end_minute: u16,
    /// Allowed weekdays (empty = every day).
    pub days: Vec<chrono::Weekday>,
}

impl HourWindow {
    /// Parses `HH:MM-HH:MM`.
    pub fn parse(s: &str) -> Result<HourWindow, String> {
        let parse_hm = |x: &str| -> Option<u16> {
            let (h, m) = x.trim().split_once(':')?;
            let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
            (h <= 24 && m < 60 && h * 60 + m <= 1440).then_some(h * 60 + m)
        };
        let (a, b) = s
            .split_once('-')
            .ok_or_else(|| format!("hours `{s}` is not HH:MM-HH:MM"))?;
        match (parse_hm(a), parse_hm(b)) {
            (Some(start_minute), Some(end_minute)) => Ok(HourWindow {
                start_minute,
                end_minute,
                days: Vec::new(),
            }),
            _ => Err(format!("hours `{s}` is not HH:MM-HH:MM")),
        }
    }

    /// Whether `t` falls inside the window.
    pub fn contains(&self, t: &crate::Timestamp) -> bool {
        use chrono::{Datelike, Timelike};
        if !self.days.is_empty() && !self.days.contains(&t.weekday()) {
            return false;
        }
        let m = (t.hour() * 60 + t.minute()) as u16;
        if self.start_minute <= self.end_minute {
            m >= self.start_minute && m < self.end_minute
        } else {
            m >= self.start_minute || m < self.end_minute
        }
    }
}

/// How an identity is expected to be used (empty lists = not declared).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExpectedUsage {
    /// Cloud regions.
    pub regions: Vec<String>,
    /// Source networks.
    pub source_networks: Vec<Cidr>,
    /// Time window.
    pub hours: Option<HourWindow>,
    /// Services (`s3`, `ecr`, or event sources such as `s3.amazonaws.com`).
    pub services: Vec<String>,
}

impl ExpectedUsage {
    /// Whether `ip` is inside a declared network (true when none declared).
    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        self.source_networks.is_empty() || self.source_networks.iter().any(|c| c.contains(ip))
    }

    /// Whether `region` is declared (true when none declared).
    pub fn allows_region(&self, region: &str) -> bool {
        self.regions.is_empty() || self.regions.iter().any(|r| r == region)
    }

    /// Whether `service` is declared (true when none declared). `s3` and
    /// `s3.amazonaws.com` are the same service.
    pub fn allows_service(&self, service: &str) -> bool {
        let short = |s: &str| s.trim_end_matches(".amazonaws.com").to_ascii_lowercase();
        self.services.is_empty() || self.services.iter().any(|s| short(s) == short(service))
    }
}

/// How an entry selects identities.
#[derive(Debug, Clone)]
pub enum Selector {
    /// Exact identity id (ARN).
    Arn(String),
    /// Glob over identity ids.
    Pattern(String, GlobMatcher),
    /// A tag key, and optionally its value.
    Tag {
        /// Tag key (case-sensitive).
        key: String,
        /// Tag value; `None` matches any value.
        value: Option<String>,
    },
}

/// One entry of the owners file.
#[derive(Debug, Clone)]
pub struct OwnerEntry {
    /// What it selects.
    pub selector: Selector,
    /// Owner (team or person); `None` for tag entries that take the tag value.
    pub owner: Option<String>,
    /// Purpose.
    pub purpose: Option<String>,
    /// Environment.
    pub environment: Option<Environment>,
    /// Expected usage.
    pub expected_usage: ExpectedUsage,
}

/// The resolved ownership of one identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ownership {
    /// Owner.
    pub owner: String,
    /// Purpose.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// Environment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<Environment>,
}

/// A parsed owners file.
#[derive(Debug, Clone, Default)]
pub struct Owners {
    /// Entries in file order.
    pub entries: Vec<OwnerEntry>,
    /// Index of the first exact-ARN entry per ARN, and the tag and pattern
    /// entries in file order: a lookup costs a hash probe plus the (few)
    /// tag and pattern entries, not a pass over an entry per identity.
    index: SelectorIndex,
}

#[derive(Debug, Clone, Default)]
struct SelectorIndex {
    by_arn: std::collections::HashMap<String, usize>,
    tagged: Vec<usize>,
    patterns: Vec<usize>,
}

impl SelectorIndex {
    fn new(entries: &[OwnerEntry]) -> Self {
        let mut index = SelectorIndex::default();
        for (i, e) in entries.iter().enumerate() {
            match &e.selector {
                Selector::Arn(a) => {
                    index.by_arn.entry(a.clone()).or_insert(i);
                }
                Selector::Tag { .. } => index.tagged.push(i),
                Selector::Pattern(..) => index.patterns.push(i),
            }
        }
        index
    }
}

#[derive(Deserialize)]
struct OwnersSyntax {
    #[serde(default)]
    version: Option<u32>,
    #[serde(default)]
    identities: Vec<serde_yaml_ng::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntrySyntax {
    #[serde(default)]
    arn: Option<String>,
    #[serde(default)]
    pattern: Option<String>,
    #[serde(default)]
    tag: Option<TagSyntax>,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    purpose: Option<String>,
    #[serde(default)]
    environment: Option<String>,
    #[serde(default)]
    expected_usage: Option<UsageSyntax>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TagSyntax {
    key: String,
    #[serde(default)]
    value: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct UsageSyntax {
    #[serde(default)]
    regions: Vec<String>,
    #[serde(default)]
    source_networks: Vec<String>,
    #[serde(default)]
    hours: Option<String>,
    #[serde(default)]
    days: Vec<String>,
    #[serde(default)]
    services: Vec<String>,
}

fn parse_day(s: &str) -> Option<chrono::Weekday> {
    use chrono::Weekday::*;
    Some(match s.trim().to_ascii_lowercase().get(..3)? {
        "mon" => Mon,
        "tue" => Tue,
        "wed" => Wed,
        "thu" => Thu,
        "fri" => Fri,
        "sat" => Sat,
        "sun" => Sun,
        _ => return None,
    })
}

impl Owners {
    /// Reads and parses an owners file.
    pub fn load(path: &Path) -> (Owners, Vec<Diagnostic>) {
        match std::fs::read_to_string(path) {
            Ok(text) => Owners::parse(&text, &path.display().to_string()),
            Err(e) => (
                Owners::default(),
                vec![Diagnostic::error(
                    "unreadable",
                    path.display().to_string(),
                    e.to_string(),
                )],
            ),
        }
    }

    /// Parses owners YAML; `source` names the file in diagnostics.
    pub fn parse(text: &str, source: &str) -> (Owners, Vec<Diagnostic>) {
        let mut diags = Vec::new();
        if let Some((line, col)) =
            keytrail_types::yaml_depth::too_deep(text, keytrail_types::yaml_depth::MAX_DEPTH)
        {
            diags.push(
                Diagnostic::error(
                    "malformed_yaml",
                    source,
                    format!(
                        "owners file nested deeper than {} levels (not parsed)",
                        keytrail_types::yaml_depth::MAX_DEPTH
                    ),
                )
                .at(Some(line), Some(col)),
            );
            return (Owners::default(), diags);
        }
        let syntax: OwnersSyntax = match serde_yaml_ng::from_str(text) {
            Ok(s) => s,
            Err(e) => {
                let loc = e.location();
                diags.push(
                    Diagnostic::error("malformed_yaml", source, format!("owners file: {e}")).at(
                        loc.as_ref().map(|l| l.line() as u64),
                        loc.as_ref().map(|l| l.column() as u64),
                    ),
                );
                return (Owners::default(), diags);
            }
        };
        if let Some(v) = syntax.version
            && v != 1
        {
            diags.push(Diagnostic::error(
                "unsupported_version",
                source,
                format!(
                    "owners file version {v} is not supported (expected 1); reading it as version 1"
                ),
            ));
        }
        let mut entries = Vec::new();
        for (i, raw) in syntax.identities.into_iter().enumerate() {
            let n = i + 1;
            let e: EntrySyntax = match serde_yaml_ng::from_value(raw) {
                Ok(e) => e,
                Err(e) => {
                    diags.push(Diagnostic::error(
                        "invalid_owner_entry",
                        source,
                        format!("identities entry {n} skipped: {e}"),
                    ));
                    continue;
                }
            };
            match compile_entry(e) {
                Ok(entry) => entries.push(entry),
                Err(msg) => diags.push(Diagnostic::error(
                    "invalid_owner_entry",
                    source,
                    format!("identities entry {n} skipped: {msg}"),
                )),
            }
        }
        let index = SelectorIndex::new(&entries);
        (Owners { entries, index }, diags)
    }

    /// The entry that applies to identity `id` with `tags`, by precedence
    /// (exact ARN, then tag, then pattern).
    pub fn entry_for(&self, id: &str, tags: &[(String, String)]) -> Option<&OwnerEntry> {
        let entry = |i: &usize| &self.entries[*i];
        let exact = self.index.by_arn.get(id).map(entry);
        let tagged = || {
            self.index
                .tagged
                .iter()
                .map(entry)
                .find(|e| match &e.selector {
                    Selector::Tag { key, value } => tags
                        .iter()
                        .any(|(k, v)| k == key && value.as_ref().is_none_or(|x| x == v)),
                    _ => false,
                })
        };
        let pattern = || {
            self.index
                .patterns
                .iter()
                .map(entry)
                .find(|e| matches!(&e.selector, Selector::Pattern(_, m) if m.is_match(id)))
        };
        exact.or_else(tagged).or_else(pattern)
    }

    /// The resolved ownership of identity `id`, if any entry applies.
    pub fn lookup(&self, id: &str, tags: &[(String, String)]) -> Option<Ownership> {
        let e = self.entry_for(id, tags)?;
        let owner = match (&e.owner, &e.selector) {
            (Some(o), _) => o.clone(),
            (None, Selector::Tag { key, .. }) => tags.iter().find(|(k, _)| k == key)?.1.clone(),
            (None, _) => return None,
        };
        Some(Ownership {
            owner,
            purpose: e.purpose.clone(),
            environment: e.environment,
        })
    }
}

/// Identity kinds an owners file names (credentials take their identity's
/// owner).
pub const TEMPLATE_KINDS: &[&str] = &[
    "aws.iam.role",
    "aws.iam.user",
    "gcp.service_account",
    "entra.application",
];

/// An owners file listing every identity of `records` whose owner is
/// unknown (`owner: UNOWNED`, so each stays flagged `unowned` until its
/// owner is filled in), with what the inventory knows of it as a comment;
/// `source` (the snapshot) and `now` go into the header. Parses with
/// [`Owners::parse`] as it is.
pub fn template(
    records: &[crate::IdentityRecord],
    source: &str,
    now: crate::Timestamp,
) -> (String, usize) {
    let unowned: Vec<&crate::IdentityRecord> = records
        .iter()
        .filter(|r| r.owner == crate::UNOWNED && TEMPLATE_KINDS.contains(&r.kind.as_str()))
        .collect();
    let mut out = String::new();
    out.push_str("# keytrail owners file (docs/owners.md), written by\n");
    out.push_str("# `keytrail inventory --owners-template`");
    out.push_str(&format!(
        " from {} on {}:\n",
        source.replace('\n', " "),
        now.format("%Y-%m-%d")
    ));
    out.push_str(&format!(
        "# the {} machine identities no entry applies to. Replace each `owner: UNOWNED`\n",
        unowned.len()
    ));
    out.push_str("# with the team that owns it (until then it stays flagged `unowned`), and add\n");
    out.push_str(
        "# `purpose`, `environment` (dev, stage, prod) and `expected_usage` where known.\n",
    );
    out.push_str("version: 1\n");
    if unowned.is_empty() {
        out.push_str("identities: []\n");
        return (out, 0);
    }
    out.push_str("identities:\n");
    for r in &unowned {
        let mut about = vec![r.kind.clone()];
        if !r.privilege.is_empty() {
            about.push(format!("privilege {}", r.privilege.join("+")));
        }
        match (&r.last_used, r.never_used) {
            (Some(t), _) => about.push(format!("last used {}", t.get(..10).unwrap_or(t))),
            (None, true) => about.push("never used".into()),
            (None, false) => {}
        }
        // A JSON string is a YAML double-quoted scalar.
        let id = serde_json::to_string(&r.id).expect("a string serialises");
        out.push_str(&format!(
            "  - arn: {id}  # {}\n    owner: UNOWNED\n",
            about.join("; ").replace('\n', " ")
        ));
    }
    (out, unowned.len())
}

fn compile_entry(e: EntrySyntax) -> Result<OwnerEntry, String> {
    let selectors = e.arn.is_some() as u8 + e.pattern.is_some() as u8 + e.tag.is_some() as u8;
    if selectors != 1 {
        return Err("needs exactly one of `arn`, `pattern`, `tag`".into());
    }
    let selector = if let Some(a) = e.arn {
        Selector::Arn(a)
    } else if let Some(p) = e.pattern {
        let m = Glob::new(&p)
            .map_err(|err| format!("pattern `{p}`: {err}"))?
            .compile_matcher();
        Selector::Pattern(p, m)
    } else {
        let t = e.tag.expect("counted above");
        Selector::Tag {
            key: t.key,
            value: t.value,
        }
    };
    if e.owner.is_none() && !matches!(selector, Selector::Tag { value: None, .. }) {
        return Err(
            "needs `owner` (only a tag entry without `value` may take the owner from the tag)"
                .into(),
        );
    }
    let environment = match e.environment {
        Some(s) => Some(
            Environment::parse(&s)
                .ok_or_else(|| format!("environment `{s}` is not dev, stage or prod"))?,
        ),
        None => None,
    };
    let u = e.expected_usage.unwrap_or_default();
    let mut usage = ExpectedUsage {
        regions: u.regions,
        services: u.services,
        ..ExpectedUsage::default()
    };
    for n in &u.source_networks {
        usage.source_networks.push(Cidr::parse(n)?);
    }
    if let Some(h) = &u.hours {
        let mut w = HourWindow::parse(h)?;
        for d in &u.days {
            w.days
                .push(parse_day(d).ok_or_else(|| format!("`{d}` is not a weekday"))?);
        }
        usage.hours = Some(w);
    } else if !u.days.is_empty() {
        return Err("`days` needs `hours`".into());
    }
    Ok(OwnerEntry {
        selector,
        owner: e.owner,
        purpose: e.purpose,
        environment,
        expected_usage: usage,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_lists_unowned_identities_and_parses() {
        let rec = |id: &str, kind: &str, owner: &str| crate::IdentityRecord {
            id: id.into(),
            kind: kind.into(),
            provider: "aws".into(),
            name: id.rsplit('/').next().unwrap().into(),
            parent: None,
            created: None,
            age_days: None,
            last_used: Some("2025-05-31T10:00:00Z".into()),
            days_unused: Some(1),
            never_used: false,
            owner: owner.into(),
            purpose: None,
            environment: None,
            privilege: vec!["admin".into()],
            findings: vec![],
            flags: vec![],
        };
        let records = vec![
            rec(
                "arn:aws:iam::111122223333:role/ci-deploy",
                "aws.iam.role",
                crate::UNOWNED,
            ),
            rec(
                "arn:aws:iam::111122223333:role/owned",
                "aws.iam.role",
                "platform",
            ),
            // A credential takes its identity's owner: not listed.
            rec("AKIAEXAMPLEKEY", "aws.iam.access_key", crate::UNOWNED),
            rec(
                "projects/p/serviceAccounts/a\"b@p.iam.gserviceaccount.com",
                "gcp.service_account",
                crate::UNOWNED,
            ),
        ];
        let now = chrono::DateTime::parse_from_rfc3339("2025-06-01T00:00:00Z")
            .unwrap()
            .to_utc();
        let (text, n) = template(&records, "snap/\n# injected", now);
        assert_eq!(n, 2);
        assert!(text.contains("last used 2025-05-31"), "{text}");
        assert!(!text.contains("\n# injected"), "{text}");
        let (owners, diags) = Owners::parse(&text, "template");
        assert!(diags.is_empty(), "{diags:?}\n{text}");
        assert_eq!(owners.entries.len(), 2);
        for r in [&records[0], &records[3]] {
            assert_eq!(owners.lookup(&r.id, &[]).unwrap().owner, crate::UNOWNED);
        }
        assert!(owners.lookup(&records[1].id, &[]).is_none());
        let (empty, n) = template(&records[1..2], "snap", now);
        assert_eq!(n, 0);
        let (owners, diags) = Owners::parse(&empty, "template");
        assert!(diags.is_empty() && owners.entries.is_empty(), "{empty}");
    }

    const SAMPLE: &str = r#"
version: 1
identities:
  - pattern: "arn:aws:iam::*:role/ci-*"
    owner: platform
    environment: stage
  - arn: arn:aws:iam::111122223333:role/ci-deploy
    owner: release-team
    purpose: deploys
    environment: prod
    expected_usage:
      regions: [eu-west-1]
      source_networks: [203.0.113.0/24, "2001:db8::/32"]
      hours: "22:00-06:00"
      days: [mon, fri]
      services: [s3]
  - tag: { key: team }
  - tag: { key: cost-center, value: "4711" }
    owner: payments
"#;

    #[test]
    fn precedence_arn_then_tag_then_pattern() {
        let (o, d) = Owners::parse(SAMPLE, "owners.yaml");
        assert!(d.is_empty(), "{d:?}");
        let exact = o
            .lookup("arn:aws:iam::111122223333:role/ci-deploy", &[])
            .unwrap();
        assert_eq!(exact.owner, "release-team");
        assert_eq!(exact.environment, Some(Environment::Prod));
        let tagged = o
            .lookup(
                "arn:aws:iam::111122223333:role/ci-build",
                &[("team".into(), "blue".into())],
            )
            .unwrap();
        assert_eq!(tagged.owner, "blue");
        let pat = o
            .lookup("arn:aws:iam::111122223333:role/ci-build", &[])
            .unwrap();
        assert_eq!(pat.owner, "platform");
        assert!(
            o.lookup("arn:aws:iam::111122223333:role/other", &[])
                .is_none()
        );
        let cc = o
            .lookup("x", &[("cost-center".into(), "4711".into())])
            .unwrap();
        assert_eq!(cc.owner, "payments");
        assert!(
            o.lookup("x", &[("cost-center".into(), "1".into())])
                .is_none()
        );
    }

    #[test]
    fn expected_usage_is_typed() {
        let (o, _) = Owners::parse(SAMPLE, "owners.yaml");
        let u = &o.entries[1].expected_usage;
        assert!(u.allows_ip("203.0.113.9".parse().unwrap()));
        assert!(!u.allows_ip("198.51.100.1".parse().unwrap()));
        assert!(u.allows_ip("2001:db8::1".parse().unwrap()));
        assert!(u.allows_service("s3.amazonaws.com"));
        assert!(!u.allows_service("iam"));
        let h = u.hours.as_ref().unwrap();
        let mon_23 = chrono::DateTime::parse_from_rfc3339("2024-06-03T23:30:00Z")
            .unwrap()
            .to_utc();
        let mon_12 = chrono::DateTime::parse_from_rfc3339("2024-06-03T12:00:00Z")
            .unwrap()
            .to_utc();
        let tue_23 = chrono::DateTime::parse_from_rfc3339("2024-06-04T23:30:00Z")
            .unwrap()
            .to_utc();
        assert!(h.contains(&mon_23));
        assert!(!h.contains(&mon_12));
        assert!(!h.contains(&tue_23));
    }

    #[test]
    fn bad_entries_are_skipped_with_diagnostics() {
        let text = r#"
identities:
  - arn: a
    pattern: b
    owner: x
  - arn: arn:aws:iam::1:role/ok
    owner: fine
  - arn: c
    owner: y
    environment: qa
  - arn: d
    owner: z
    expected_usage: { source_networks: [not-a-cidr] }
  - arn: e
    owner: z
    colour: blue
"#;
        let (o, d) = Owners::parse(text, "o.yaml");
        assert_eq!(o.entries.len(), 1);
        assert_eq!(d.len(), 4, "{d:?}");
        assert!(d.iter().all(|x| x.subject == "o.yaml"));
        assert!(d[1].message.contains("qa"));
        let (o, d) = Owners::parse("identities: [", "broken.yaml");
        assert!(o.entries.is_empty());
        assert_eq!(d[0].kind, "malformed_yaml");
        assert!(d[0].line.is_some());
    }

    #[test]
    fn cidr_parsing() {
        assert!(
            Cidr::parse("10.0.0.0/8")
                .unwrap()
                .contains("10.2.3.4".parse().unwrap())
        );
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(
            Cidr::parse("10.0.0.1")
                .unwrap()
                .contains("10.0.0.1".parse().unwrap())
        );
    }
}

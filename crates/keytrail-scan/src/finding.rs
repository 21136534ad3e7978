//! Findings: [`BlobFinding`] (one match in one blob), the [`fingerprint`] of
//! (rule, secret), and the [`Aggregator`] that merges blob findings into
//! one [`Finding`] per fingerprint with every location.

use crate::engine::Scanner;
use keytrail_types::{Finding, Fingerprint, Location, Secret};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// One accepted match of one rule in one blob, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobFinding {
    /// Index of the rule in [`Scanner::rules`].
    pub rule: usize,
    /// The secret (redacts itself when displayed).
    pub secret: Secret<String>,
    /// Named context captures (name, value), e.g. an AWS key id.
    pub context: Vec<(String, String)>,
    /// Where it was found; the snippet has the secret masked.
    pub location: Location,
    /// Engine notes (`checksum valid`).
    pub notes: Vec<String>,
}

/// Stable id of (rule, secret): hex of the first 16 bytes of
/// SHA-256(`rule_id` NUL `secret`).
///
/// ```
/// let a = keytrail_scan::fingerprint("github.pat.classic", b"ghp_x");
/// assert_eq!(a.0.len(), 32);
/// assert_ne!(a, keytrail_scan::fingerprint("github.oauth", b"ghp_x"));
/// ```
pub fn fingerprint(rule_id: &str, secret: &[u8]) -> Fingerprint {
    let mut h = Sha256::new();
    h.update(rule_id.as_bytes());
    h.update([0u8]);
    h.update(secret);
    let digest = h.finalize();
    let mut s = String::with_capacity(32);
    for b in &digest[..16] {
        s.push_str(&format!("{b:02x}"));
    }
    Fingerprint(s)
}

/// Merges [`BlobFinding`]s into one [`Finding`] per fingerprint.
///
/// Locations are de-duplicated (the same place reported twice, e.g. by two
/// sources, counts once). [`Aggregator::finish`] orders locations by
/// (path, line, column, offset) and findings by their first location, then
/// rule id, so output does not depend on the order blobs were scanned in.
#[derive(Debug, Default)]
pub struct Aggregator {
    findings: HashMap<Fingerprint, Finding>,
}

impl Aggregator {
    /// An empty aggregator.
    pub fn new() -> Self {
        Aggregator::default()
    }

    /// Add one blob finding from `scanner`.
    pub fn add(&mut self, scanner: &Scanner, f: BlobFinding) {
        let rule = &scanner.rules()[f.rule];
        let fp = fingerprint(rule.id(), f.secret.expose().as_bytes());
        match self.findings.get_mut(&fp) {
            Some(existing) => {
                existing.locations.push(f.location);
                merge_unique(&mut existing.context, f.context);
                merge_unique(&mut existing.notes, f.notes);
            }
            None => {
                let secret_redacted = f.secret.redacted();
                self.findings.insert(
                    fp.clone(),
                    Finding {
                        rule_id: rule.id().to_string(),
                        rule_name: rule.name().to_string(),
                        confidence: rule.confidence(),
                        severity: rule.severity(),
                        fingerprint: fp,
                        secret: f.secret,
                        secret_redacted,
                        context: f.context,
                        locations: vec![f.location],
                        notes: f.notes,
                        remediation: None,
                        verification: None,
                        blast_radius: None,
                    },
                );
            }
        }
    }

    /// Merge another aggregator (e.g. from another thread) into this one.
    pub fn merge(&mut self, other: Aggregator) {
        for (fp, f) in other.findings {
            match self.findings.get_mut(&fp) {
                Some(existing) => {
                    existing.locations.extend(f.locations);
                    merge_unique(&mut existing.context, f.context);
                    merge_unique(&mut existing.notes, f.notes);
                }
                None => {
                    self.findings.insert(fp, f);
                }
            }
        }
    }

    /// Number of distinct findings so far.
    pub fn len(&self) -> usize {
        self.findings.len()
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.findings.is_empty()
    }

    /// The findings, in deterministic order.
    pub fn finish(self) -> Vec<Finding> {
        let mut out: Vec<Finding> = self
            .findings
            .into_values()
            .map(|mut f| {
                f.locations.sort_by(location_order);
                f.locations.dedup();
                f
            })
            .collect();
        out.sort_by(|a, b| {
            location_order(&a.locations[0], &b.locations[0])
                .then_with(|| a.rule_id.cmp(&b.rule_id))
                .then_with(|| a.fingerprint.cmp(&b.fingerprint))
        });
        out
    }
}

fn location_order(a: &Location, b: &Location) -> std::cmp::Ordering {
    (&a.path, a.line, a.column, a.offset)
        .cmp(&(&b.path, b.line, b.column, b.offset))
        .then_with(|| format!("{:?}", a.origin).cmp(&format!("{:?}", b.origin)))
}

fn merge_unique<T: PartialEq>(into: &mut Vec<T>, from: Vec<T>) {
    for x in from {
        if !into.contains(&x) {
            into.push(x);
        }
    }
}

//! The baseline file: salted, keyed hashes of (rule id, secret) that a scan
//! does not report again.
//!
//! Format (JSON, documented in docs/output.md):
//! `{"version":1,"salt":"<64 hex>","entries":[{"key":"<64 hex>","rule_id":…,"path":…,"created":…}]}`.
//! `key` = hex(HMAC-SHA256(salt, rule_id ‖ 0x00 ‖ secret)). There are no line
//! numbers, so moving code does not churn the file, and no secrets: the
//! per-file random salt keeps the keys from being checked against a list of
//! guessed secrets shared across repositories.

use anyhow::{Context, bail};
use hmac::{Hmac, Mac};
use keytrail_types::Finding;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::collections::HashSet;
use std::path::Path;

/// The only baseline format version.
const VERSION: u32 = 1;

/// One recorded finding.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    /// hex(HMAC-SHA256(salt, rule_id ‖ 0 ‖ secret)).
    pub key: String,
    /// The rule that found it (informational).
    pub rule_id: String,
    /// First path where it was found (informational; not used for matching).
    pub path: String,
    /// When the entry was recorded (RFC 3339, UTC).
    pub created: String,
}

/// A baseline file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Baseline {
    /// Format version, 1.
    pub version: u32,
    /// 32 random bytes, hex.
    pub salt: String,
    /// Recorded findings.
    pub entries: Vec<Entry>,
    #[serde(skip)]
    keys: HashSet<String>,
    #[serde(skip)]
    salt_bytes: Vec<u8>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Current UTC time as RFC 3339 (`2025-01-31T12:00:00Z`).
fn now_rfc3339() -> String {
    let now: chrono::DateTime<chrono::Utc> = std::time::SystemTime::now().into();
    now.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

impl Default for Baseline {
    /// An empty baseline with a fresh random salt.
    fn default() -> Self {
        Baseline::new()
    }
}

impl Baseline {
    /// An empty baseline with a fresh random salt.
    pub fn new() -> Baseline {
        let mut salt = [0u8; 32];
        rand::fill(&mut salt);
        Baseline {
            version: VERSION,
            salt: hex(&salt),
            entries: Vec::new(),
            keys: HashSet::new(),
            salt_bytes: salt.to_vec(),
        }
    }

    /// Read and check a baseline file.
    pub fn load(path: &Path) -> anyhow::Result<Baseline> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read baseline `{}`", path.display()))?;
        let mut b: Baseline = serde_json::from_str(&text)
            .with_context(|| format!("`{}` is not a keytrail baseline file", path.display()))?;
        if b.version != VERSION {
            bail!(
                "baseline `{}` has version {}, this keytrail reads version {VERSION}",
                path.display(),
                b.version
            );
        }
        b.salt_bytes = match unhex(&b.salt) {
            Some(s) if s.len() == 32 => s,
            _ => bail!(
                "baseline `{}`: `salt` must be 64 hex characters",
                path.display()
            ),
        };
        b.keys = b
            .entries
            .iter()
            .map(|e| e.key.to_ascii_lowercase())
            .collect();
        Ok(b)
    }

    /// The keyed hash of (rule, secret) under this file's salt.
    pub fn key(&self, rule_id: &str, secret: &str) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.salt_bytes).expect("HMAC takes any key length");
        mac.update(rule_id.as_bytes());
        mac.update(&[0]);
        mac.update(secret.as_bytes());
        hex(&mac.finalize().into_bytes())
    }

    /// Whether `f` is recorded.
    pub fn contains(&self, f: &Finding) -> bool {
        self.keys.contains(&self.key(&f.rule_id, f.secret.expose()))
    }

    /// Record `f` (once).
    pub fn add(&mut self, f: &Finding) {
        let key = self.key(&f.rule_id, f.secret.expose());
        if self.keys.insert(key.clone()) {
            self.entries.push(Entry {
                key,
                rule_id: f.rule_id.clone(),
                path: f
                    .locations
                    .first()
                    .map(|l| l.path.clone())
                    .unwrap_or_default(),
                created: now_rfc3339(),
            });
        }
    }

    /// Write the file (pretty JSON, stable entry order).
    pub fn save(&mut self, path: &Path) -> anyhow::Result<()> {
        self.entries
            .sort_by(|a, b| (&a.rule_id, &a.path, &a.key).cmp(&(&b.rule_id, &b.path, &b.key)));
        let mut text = serde_json::to_string_pretty(self)?;
        text.push('\n');
        std::fs::write(path, text)
            .with_context(|| format!("cannot write baseline `{}`", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keytrail_types::{Confidence, Fingerprint, Secret, Severity};

    fn finding(rule: &str, secret: &str, path: &str) -> Finding {
        Finding {
            rule_id: rule.into(),
            rule_name: rule.into(),
            confidence: Confidence::High,
            severity: Severity::High,
            fingerprint: Fingerprint("f".into()),
            secret: Secret::new(secret.into()),
            secret_redacted: String::new(),
            context: Vec::new(),
            locations: vec![keytrail_types::Location {
                path: path.into(),
                line: 1,
                column: 1,
                offset: 0,
                snippet: String::new(),
                origin: Default::default(),
                decoded: None,
            }],
            notes: Vec::new(),
            remediation: None,
            verification: None,
            blast_radius: None,
        }
    }

    #[test]
    fn round_trip_and_keying() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("b.json");
        let secret = format!("tok_{}", "q7".repeat(12));
        let mut b = Baseline::new();
        b.add(&finding("r.one", &secret, "a.txt"));
        b.add(&finding("r.one", &secret, "b.txt"));
        assert_eq!(b.entries.len(), 1, "one entry per (rule, secret)");
        b.save(&file).unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(!text.contains(&secret));
        assert!(!text.contains("\"line\""));
        let loaded = Baseline::load(&file).unwrap();
        assert!(loaded.contains(&finding("r.one", &secret, "moved/elsewhere.txt")));
        assert!(!loaded.contains(&finding("r.two", &secret, "a.txt")));
        assert!(!loaded.contains(&finding("r.one", &format!("{secret}x"), "a.txt")));
        assert_eq!(loaded.salt.len(), 64);
        assert_eq!(loaded.entries[0].key.len(), 64);
    }

    #[test]
    fn salts_differ_per_file() {
        let (a, b) = (Baseline::new(), Baseline::new());
        assert_ne!(a.salt, b.salt);
        assert_ne!(a.key("r", "s"), b.key("r", "s"));
    }

    #[test]
    fn rfc3339_shape() {
        let t = now_rfc3339();
        assert_eq!(t.len(), 20, "{t}");
        assert!(t.starts_with("20") && t.ends_with('Z'), "{t}");
    }
}

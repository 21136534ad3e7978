//! The verification cache kept between runs (`--verify-cache FILE`).
//!
//! It stores, per check, HMAC-SHA256(salt, check key) and the result
//! (status, detail, identity, blast radius, when it was checked, when it
//! expires): never a secret, and with a random salt per file, so its keys
//! cannot be matched against another file's or against guessed secrets.
//! Only definite answers (`live`, `invalid`) are kept; `unknown` is asked
//! again next time. A file that is not a cache is an error naming it; a
//! missing file is an empty cache.

use crate::Outcome;
use hmac::{Hmac, Mac};
use keytrail_types::{BlastRadius, Verification, VerificationStatus};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

#[derive(Serialize, Deserialize)]
struct File {
    version: u32,
    salt: String,
    entries: BTreeMap<String, Entry>,
}

#[derive(Serialize, Deserialize, Clone)]
struct Entry {
    expires: u64,
    verification: Verification,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    blast_radius: Option<BlastRadius>,
}

/// An open cache.
pub struct Cache {
    salt: Vec<u8>,
    entries: BTreeMap<String, Entry>,
    ttl: Duration,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
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

impl Cache {
    /// Open `path` (empty when it does not exist), dropping expired entries.
    pub fn load(path: &Path, ttl: Duration) -> Result<Cache, String> {
        let now = crate::time::now_unix();
        match std::fs::read(path) {
            Ok(bytes) => {
                let f: File = serde_json::from_slice(&bytes).map_err(|e| {
                    format!(
                        "not a keytrail verification cache (line {}, column {}): {e}",
                        e.line(),
                        e.column()
                    )
                })?;
                if f.version != 1 {
                    return Err(format!("unsupported version {}", f.version));
                }
                let salt = unhex(&f.salt)
                    .filter(|s| s.len() == 32)
                    .ok_or("salt must be 64 hex characters")?;
                let entries = f
                    .entries
                    .into_iter()
                    .filter(|(_, e)| e.expires > now)
                    .collect();
                Ok(Cache { salt, entries, ttl })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut salt = vec![0u8; 32];
                rand::rng().fill_bytes(&mut salt);
                Ok(Cache {
                    salt,
                    entries: BTreeMap::new(),
                    ttl,
                })
            }
            Err(e) => Err(e.to_string()),
        }
    }

    fn key(&self, job: &str) -> String {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.salt).expect("any key");
        m.update(job.as_bytes());
        hex(&m.finalize().into_bytes())
    }

    /// The cached outcome of a check.
    pub(crate) fn get(&self, job: &str) -> Option<Outcome> {
        let e = self.entries.get(&self.key(job))?;
        let v = &e.verification;
        Some(Outcome {
            status: v.status,
            detail: v.detail.clone(),
            identity: v.identity.clone(),
            blast: e.blast_radius.clone(),
            verifier: v.verifier.clone(),
            checked_at: Some(v.checked_at.clone()),
        })
    }

    /// Remember a definite outcome.
    pub(crate) fn put(&mut self, job: &str, o: &Outcome) {
        if !matches!(
            o.status,
            VerificationStatus::Live | VerificationStatus::Invalid
        ) {
            return;
        }
        let key = self.key(job);
        self.entries.insert(
            key,
            Entry {
                expires: crate::time::now_unix() + self.ttl.as_secs(),
                verification: Verification {
                    status: o.status,
                    checked_at: o.checked_at.clone().unwrap_or_default(),
                    verifier: o.verifier.clone(),
                    detail: o.detail.clone(),
                    identity: o.identity.clone(),
                },
                blast_radius: o.blast.clone(),
            },
        );
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Write it to `path` (owner-only permissions on Unix), atomically.
    pub fn save(&self, path: &Path) -> Result<(), String> {
        let f = File {
            version: 1,
            salt: hex(&self.salt),
            entries: self.entries.clone(),
        };
        let text = serde_json::to_vec_pretty(&f).map_err(|e| e.to_string())?;
        let tmp = path.with_extension("tmp");
        {
            let mut o = std::fs::OpenOptions::new();
            o.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                o.mode(0o600);
            }
            let mut file = o.open(&tmp).map_err(|e| e.to_string())?;
            std::io::Write::write_all(&mut file, &text).map_err(|e| e.to_string())?;
        }
        std::fs::rename(&tmp, path).map_err(|e| e.to_string())
    }
}

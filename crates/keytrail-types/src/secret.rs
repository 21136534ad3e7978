//! The [`Secret`] wrapper: a value that cannot be printed by accident.

use serde::{Deserialize, Serialize, Serializer};
use std::fmt;

/// A secret value whose `Display`, `Debug` and `Serialize` impls redact it.
///
/// The raw value is only reachable through [`Secret::expose`], which the CLI
/// calls at the `--reveal` boundary and engines call to hash or compare.
///
/// ```
/// use keytrail_types::Secret;
/// let s = Secret::new("ghp_abcdefghijklmnopqrstuvwxyz0123456789".to_string());
/// assert_eq!(format!("{s}"), "ghp_…89");
/// assert!(!format!("{s:?}").contains("abcdefghij"));
/// assert!(!serde_json::to_string(&s).unwrap().contains("abcdefghij"));
/// assert_eq!(s.expose().len(), 40);
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(transparent)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wrap a value.
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    /// The raw value. Call only to hash, compare, verify, or print under `--reveal`.
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// Unwrap the raw value. Same rules as [`Secret::expose`].
    pub fn into_exposed(self) -> T {
        self.0
    }
}

impl<T: AsRef<[u8]>> Secret<T> {
    /// The redacted display form.
    pub fn redacted(&self) -> String {
        redact(self.0.as_ref())
    }
}

impl<T: AsRef<[u8]>> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl<T: AsRef<[u8]>> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({})", self.redacted())
    }
}

impl<T: AsRef<[u8]>> Serialize for Secret<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.redacted())
    }
}

/// Redact a secret for display.
///
/// Keeps at most the first 4 and last 2 characters, and only when the value
/// is long enough that they reveal little (≥ 16 characters for the prefix,
/// ≥ 24 for the suffix). Shorter values become `…` plus nothing.
///
/// ```
/// use keytrail_types::redact;
/// assert_eq!(redact(b"hunter2"), "…");
/// assert_eq!(redact(b"AKIAABCDEFGHIJKLMNOP"), "AKIA…");
/// assert_eq!(redact(b"sk_live_0123456789abcdefghijklmn"), "sk_l…mn");
/// ```
pub fn redact(value: &[u8]) -> String {
    let s = String::from_utf8_lossy(value);
    let chars: Vec<char> = s.chars().collect();
    let n = chars.len();
    let mut out = String::new();
    if n >= 16 {
        out.extend(&chars[..4]);
    }
    out.push('…');
    if n >= 24 {
        out.extend(&chars[n - 2..]);
    }
    out
}

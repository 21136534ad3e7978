//! The store's fingerprint key. A report's fingerprint is SHA-256 of the
//! rule and the secret, unkeyed: whoever holds it can test guesses of a
//! weak secret (a password) offline. The store therefore keeps, as each
//! finding's identity, HMAC-SHA256 under a random 32-byte key of its own
//! (the first 16 bytes, in hex: the shape of a report fingerprint), never
//! the report fingerprint itself, and keeps the key *outside* the
//! database: a copy of the database alone allows no such guessing.
//!
//! Where the key is, first found wins:
//! 1. [`crate::OpenOptions::key`] (tests, embedders);
//! 2. `KEYTRAIL_STORE_KEY`: 64 hex digits (every process of a deployment,
//!    `keytrail serve` and each worker, must have the same);
//! 3. `KEYTRAIL_STORE_KEY_FILE`: a file holding them;
//! 4. beside a SQLite file: `<file>.key`; for PostgreSQL:
//!    `$XDG_DATA_HOME/keytrail/store-keys/<hash of server, port, user and
//!    database>.key`.
//!
//! A key file is made (mode 0600) only for a store that has no key yet: a
//! new one, or one written before keys (schema version 4 and earlier,
//! whose fingerprints the upgrade replaces). A keyed store whose key is
//! missing or different is refused with [`ErrorKind::Key`]: a new key
//! would orphan every finding and its triage.

use crate::db::{Conn, Val};
use crate::error::{ErrorKind, StoreError};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::{Path, PathBuf};

/// The environment variable holding the key (64 hex digits).
pub const KEY_ENV: &str = "KEYTRAIL_STORE_KEY";
/// The environment variable naming a file that holds the key.
pub const KEY_FILE_ENV: &str = "KEYTRAIL_STORE_KEY_FILE";
/// The `keytrail_meta` entry that lets a key be checked: the keyed hash
/// of a fixed text (it says nothing about the key).
pub(crate) const CHECK: &str = "fingerprint_key_check";

/// A store's fingerprint key. Its `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct StoreKey([u8; 32]);

impl fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoreKey(…)")
    }
}

impl StoreKey {
    /// A new random key.
    pub fn generate() -> StoreKey {
        let mut k = [0u8; 32];
        rand::fill(&mut k);
        StoreKey(k)
    }

    /// The key from 64 hex digits (surrounding white space ignored).
    pub fn from_hex(text: &str) -> Result<StoreKey, String> {
        let t = text.trim();
        if t.len() != 64 || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "a store key is 64 hex digits (32 bytes); this is {} characters{}",
                t.len(),
                if t.bytes().all(|b| b.is_ascii_hexdigit()) {
                    ""
                } else {
                    ", not all hex digits"
                }
            ));
        }
        let mut k = [0u8; 32];
        for (i, b) in k.iter_mut().enumerate() {
            *b = u8::from_str_radix(&t[2 * i..2 * i + 2], 16).map_err(|e| e.to_string())?;
        }
        Ok(StoreKey(k))
    }

    /// The key as 64 hex digits (what a key file holds).
    pub fn to_hex(&self) -> String {
        crate::hex(&self.0)
    }

    /// The store's identity of a report fingerprint (or of a record's
    /// fingerprint): HMAC-SHA256 under this key, first 16 bytes in hex.
    pub fn id(&self, fingerprint: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(fingerprint.as_bytes());
        crate::hex(&mac.finalize().into_bytes()[..16])
    }

    /// What `keytrail_meta` keeps to tell this key from another.
    pub(crate) fn check(&self) -> String {
        self.id("keytrail store key check")
    }
}

/// Where a store's key is, or would be made.
#[derive(Debug, Clone)]
pub(crate) enum Place {
    Given,
    Env,
    File(PathBuf),
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Given => f.write_str("the key given"),
            Place::Env => write!(f, "{KEY_ENV}"),
            Place::File(path) => write!(f, "key file {}", path.display()),
        }
    }
}

/// The key file of a store when no variable names one.
fn default_file(location: &str, shown: &str) -> Result<PathBuf, StoreError> {
    if !crate::is_postgres_url(location) {
        let path = location.strip_prefix("sqlite:").unwrap_or(location);
        let mut name = Path::new(path).as_os_str().to_owned();
        name.push(".key");
        return Ok(PathBuf::from(name));
    }
    let base = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty() && Path::new(v).is_absolute())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".local").join("share"))
        })
        .ok_or_else(|| {
            StoreError::new(
                ErrorKind::Key,
                format!("{shown}: no place for the store's fingerprint key: set {KEY_ENV} (64 hex digits, the same for every process using this database) or {KEY_FILE_ENV}"),
            )
        })?;
    // The database, not the URL's spelling, names the file: servers,
    // ports, user and database name (parameters such as sslmode left out).
    // libpq's TLS settings tokio-postgres does not parse are taken out first.
    let parsed = crate::tls::split(location).map(|s| s.url);
    let identity = match parsed
        .as_deref()
        .unwrap_or(location)
        .parse::<postgres::Config>()
    {
        Ok(c) => {
            let user = c.get_user().unwrap_or_default().to_string();
            format!(
                "{:?}|{:?}|{user}|{}",
                c.get_hosts(),
                c.get_ports(),
                c.get_dbname().map_or(user.clone(), str::to_string)
            )
        }
        Err(_) => shown.to_string(),
    };
    let digest = Sha256::digest(identity.as_bytes());
    Ok(base
        .join("keytrail")
        .join("store-keys")
        .join(format!("{}.key", crate::hex(&digest[..8]))))
}

/// Find the key: `(key if found, where it is or would be)`.
pub(crate) fn find(
    location: &str,
    shown: &str,
    given: Option<&StoreKey>,
) -> Result<(Option<StoreKey>, Place), StoreError> {
    if let Some(k) = given {
        return Ok((Some(k.clone()), Place::Given));
    }
    if let Some(v) = std::env::var_os(KEY_ENV).filter(|v| !v.is_empty()) {
        let k = StoreKey::from_hex(&v.to_string_lossy())
            .map_err(|e| StoreError::new(ErrorKind::Key, format!("{KEY_ENV}: {e}")))?;
        return Ok((Some(k), Place::Env));
    }
    let place = match std::env::var_os(KEY_FILE_ENV).filter(|v| !v.is_empty()) {
        Some(p) => Place::File(PathBuf::from(p)),
        None => Place::File(default_file(location, shown)?),
    };
    let Place::File(path) = &place else {
        unreachable!("a file place")
    };
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let k = StoreKey::from_hex(&text).map_err(|e| {
                StoreError::new(
                    ErrorKind::Key,
                    format!("{}: not a keytrail store key: {e}", path.display()),
                )
            })?;
            Ok((Some(k), place))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((None, place)),
        Err(e) => Err(StoreError::new(
            ErrorKind::Key,
            format!(
                "{}: the store's key file cannot be read: {e}",
                path.display()
            ),
        )),
    }
}

/// Make a new key at `place` (a file, mode 0600, never over an existing
/// one: a process that made one first wins, and its key is returned).
pub(crate) fn create(place: &Place) -> Result<StoreKey, StoreError> {
    let Place::File(path) = place else {
        return Err(StoreError::new(
            ErrorKind::Key,
            format!("{place}: no key to make there"),
        ));
    };
    let fail = |what: &str, e: std::io::Error| {
        StoreError::new(
            ErrorKind::Key,
            format!("{}: {what} the store's key file: {e}", path.display()),
        )
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.is_dir()
    {
        std::fs::create_dir_all(dir).map_err(|e| fail("cannot create the directory of", e))?;
    }
    // Written whole to a file of its own, then linked into place: a
    // process that finds the key file finds all of it (one racing to make
    // the first key of the same store reads the winner's, never half).
    let key = StoreKey::generate();
    let tmp = path.with_extension(format!(
        "key.{}.{:08x}.tmp",
        std::process::id(),
        rand::random::<u32>()
    ));
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let written = o.open(&tmp).and_then(|mut f| {
        use std::io::Write;
        f.write_all(format!("{}\n", key.to_hex()).as_bytes())
            .and_then(|()| f.sync_all())
    });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail("cannot write", e));
    }
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(key),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let text = std::fs::read_to_string(path).map_err(|e| fail("cannot read", e))?;
            StoreKey::from_hex(&text).map_err(|e| {
                StoreError::new(
                    ErrorKind::Key,
                    format!("{}: not a keytrail store key: {e}", path.display()),
                )
            })
        }
        Err(e) => Err(fail("cannot create", e)),
    }
}

/// The key check the database holds, if it has one.
pub(crate) fn stored_check(conn: &mut Conn) -> Result<Option<String>, StoreError> {
    let rows = conn.query(
        "SELECT value FROM keytrail_meta WHERE key = ?",
        &[Val::from(CHECK)],
    )?;
    Ok(rows.first().map(|r| r.text(0)))
}

/// The error for a keyed store whose key is not there.
pub(crate) fn missing(shown: &str, place: &Place) -> StoreError {
    StoreError::new(
        ErrorKind::Key,
        format!(
            "{shown}: the store's fingerprint key is missing (looked for {place}): restore it, or set \
{KEY_ENV} or {KEY_FILE_ENV}; a new key would orphan every finding and its triage, so none was made"
        ),
    )
}

/// The error for a key that is not the store's.
pub(crate) fn wrong(shown: &str, place: &Place) -> StoreError {
    StoreError::new(
        ErrorKind::Key,
        format!(
            "{shown}: {place} is not this store's fingerprint key (the database was written with another): \
give the store's key ({KEY_ENV} or {KEY_FILE_ENV}); nothing was written"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_keyed_and_shaped_like_fingerprints() {
        let a = StoreKey::from_hex(&"11".repeat(32)).unwrap();
        let b = StoreKey::from_hex(&"22".repeat(32)).unwrap();
        let fp = "00112233445566778899aabbccddeeff";
        assert_eq!(a.id(fp).len(), 32);
        assert_eq!(a.id(fp), a.id(fp));
        assert_ne!(a.id(fp), b.id(fp));
        assert_ne!(a.id(fp), fp);
        // RFC 4231 test case 2 ("Jefe"): HMAC-SHA256 itself, truncated.
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            crate::hex(&mac.finalize().into_bytes()[..16]),
            "5bdcc146bf60754e6a042426089575c7"
        );
    }

    #[test]
    fn bad_keys_are_refused() {
        assert!(
            StoreKey::from_hex("abc")
                .unwrap_err()
                .contains("64 hex digits")
        );
        assert!(
            StoreKey::from_hex(&"zz".repeat(32))
                .unwrap_err()
                .contains("not all hex digits")
        );
        let k = StoreKey::generate();
        assert_eq!(StoreKey::from_hex(&k.to_hex()).unwrap(), k);
        assert_eq!(format!("{k:?}"), "StoreKey(…)");
    }
}

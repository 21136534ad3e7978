//! Slack workspace exports: `users.json`, `channels.json` and one directory
//! per channel of `YYYY-MM-DD.json` files, each an array of messages
//! (`user`, `ts`, `text`, `files`, `attachments`, `edited`, thread fields).
//! Each message is one record: channel, author (name from `users.json`, or
//! from the message's own `user_profile`), time (from `ts`) and its index in
//! the day file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use keytrail_types::ExportOrigin;
use serde_json::Value;

use super::{render, str_at};
use crate::content::Ctx;

/// User id → display name (`Ada Lovelace`), from an export's `users.json`.
pub(crate) type Users = HashMap<String, String>;

/// Largest `users.json` read for names (bytes).
pub(crate) const MAX_USERS_JSON: u64 = 64 << 20;

/// Whether `display` ends in `<channel>/<YYYY-MM-DD>.json`.
pub(crate) fn is_day_file(display: &str) -> bool {
    let inner = display.rsplit('!').next().unwrap_or(display);
    let mut parts = inner.rsplit(['/', '\\']);
    let (Some(file), Some(channel)) = (parts.next(), parts.next()) else {
        return false;
    };
    let Some(date) = file.strip_suffix(".json") else {
        return false;
    };
    !channel.is_empty()
        && date.len() == 10
        && date.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        })
}

/// Parse a `users.json`: id → real name (or display name, or user name).
pub(crate) fn parse_users(bytes: &[u8]) -> Option<Users> {
    let v: Value = serde_json::from_slice(bytes).ok()?;
    let mut users = Users::new();
    for u in v.as_array()? {
        let Some(id) = str_at(u, "id") else { continue };
        let profile = u.get("profile").unwrap_or(&Value::Null);
        let name = str_at(u, "real_name")
            .or_else(|| str_at(profile, "real_name"))
            .or_else(|| str_at(profile, "display_name"))
            .or_else(|| str_at(u, "name"));
        if let Some(name) = name {
            users.insert(id.to_string(), name.to_string());
        }
    }
    Some(users)
}

/// The `users.json` of the export holding the on-disk day file `display`
/// (two directories up), read once per export and kept for the run.
fn users_on_disk(display: &str) -> Option<Arc<Users>> {
    static CACHE: OnceLock<Mutex<HashMap<PathBuf, Option<Arc<Users>>>>> = OnceLock::new();
    let root = Path::new(display).parent()?.parent()?;
    let path = root.join("users.json");
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    cache
        .entry(path.clone())
        .or_insert_with(|| {
            let meta = std::fs::metadata(&path).ok()?;
            if !meta.is_file() || meta.len() > MAX_USERS_JSON {
                return None;
            }
            parse_users(&std::fs::read(&path).ok()?).map(Arc::new)
        })
        .clone()
}

/// A Slack `ts` (`"1700000000.000100"`, seconds since the epoch) as RFC 3339.
pub(crate) fn ts_to_rfc3339(ts: &str) -> Option<String> {
    let (secs, frac) = ts.split_once('.').unwrap_or((ts, ""));
    let secs: i64 = secs.parse().ok()?;
    let micros: u32 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<6}").get(..6)?.parse().ok()?
    };
    let t = chrono::DateTime::from_timestamp(secs, micros * 1000)?;
    Some(t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
}

/// One record per message of the day file `display`.
pub(crate) fn split(
    ctx: Ctx<'_>,
    display: &str,
    doc: Value,
    out: &mut dyn FnMut(ExportOrigin, String),
) -> Result<(), String> {
    let Value::Array(messages) = doc else {
        return Err(
            "not a Slack day file: not a JSON array of messages; scanned as plain text".into(),
        );
    };
    let inner = display.rsplit('!').next().unwrap_or(display);
    let channel = inner
        .rsplit(['/', '\\'])
        .nth(1)
        .unwrap_or_default()
        .to_string();
    let disk_users = if display.contains('!') {
        None
    } else {
        users_on_disk(display)
    };
    let users = ctx.slack_users.or(disk_users.as_deref());
    for (i, m) in messages.iter().enumerate() {
        let mut text = String::new();
        render("", m, &["blocks", "user_profile", "reactions"], &mut text);
        let id = str_at(m, "user").or_else(|| str_at(m, "bot_id"));
        let profile = m.get("user_profile").unwrap_or(&Value::Null);
        let name = id
            .and_then(|id| users.and_then(|u| u.get(id)).map(String::as_str))
            .or_else(|| str_at(profile, "real_name"))
            .or_else(|| str_at(profile, "display_name"))
            .or_else(|| str_at(profile, "name"))
            .or_else(|| str_at(m, "username"));
        let author = match (name, id) {
            (Some(n), Some(id)) => Some(format!("{n} ({id})")),
            (Some(n), None) => Some(n.to_string()),
            (None, Some(id)) => Some(id.to_string()),
            (None, None) => None,
        };
        out(
            ExportOrigin {
                export: "slack".into(),
                record: format!("/{i}"),
                container: Some(format!("#{channel}")),
                item: None,
                author,
                time: str_at(m, "ts").and_then(ts_to_rfc3339),
            },
            text,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_file_names() {
        assert!(is_day_file("export/general/2024-01-02.json"));
        assert!(is_day_file("slack.zip!general/2024-01-02.json"));
        assert!(!is_day_file("2024-01-02.json"));
        assert!(!is_day_file("export/general/2024-1-02.json"));
        assert!(!is_day_file("export/general/channels.json"));
    }

    #[test]
    fn ts_conversion() {
        assert_eq!(
            ts_to_rfc3339("1700000000.000100").as_deref(),
            Some("2023-11-14T22:13:20.000100Z")
        );
        assert_eq!(
            ts_to_rfc3339("1700000000").as_deref(),
            Some("2023-11-14T22:13:20.000000Z")
        );
        assert_eq!(ts_to_rfc3339("x"), None);
    }
}

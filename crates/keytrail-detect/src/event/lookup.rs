//! Field access by path for Sigma rules and explanations: lazily parsed JSON trees of
//! the record and its subtrees, raw member text, and strict IP parsing.

use super::*;

impl Event {
    pub(super) fn trees(&self) -> &Trees {
        self.trees.get_or_init(Box::default)
    }

    /// The whole record as a JSON value (parsed on first use, then cached).
    pub fn json(&self) -> &Value {
        self.trees()
            .whole
            .get_or_init(|| serde_json::from_str(self.raw()).unwrap_or(Value::Null))
    }

    /// A nested value by dotted path (`requestParameters.userName`), from the raw record.
    /// Paths under the members in [`SUBTREES`] parse only that member (once per event).
    pub fn lookup(&self, path: &str) -> Option<&Value> {
        let (first, rest) = match path.split_once('.') {
            Some((f, r)) => (f, Some(r)),
            None => (path, None),
        };
        let mut v = match SUBTREES.iter().position(|s| *s == first) {
            Some(i) => {
                let (a, b) = self.sub_range(i);
                if a == b {
                    return None;
                }
                let sub = self.trees().subs[i].get_or_init(|| {
                    serde_json::from_str(&self.raw()[a as usize..b as usize]).unwrap_or(Value::Null)
                });
                match rest {
                    None => return Some(sub),
                    Some(_) => sub,
                }
            }
            None => self.json().get(first)?,
        };
        let Some(rest) = rest else { return Some(v) };
        for part in rest.split('.') {
            v = match v {
                Value::Object(m) => m.get(part)?,
                _ => return None,
            };
        }
        Some(v)
    }

    /// A nested string by dotted path. Strings without escapes are borrowed straight
    /// from the record text (no parsing); others go through [`Event::lookup`].
    pub fn lookup_str(&self, path: &str) -> Option<&str> {
        let raw = self.lookup_raw(path)?;
        let b = raw.as_bytes();
        if b.first() != Some(&b'"') {
            return None;
        }
        let inner = &raw[1..raw.len() - 1];
        if !inner.as_bytes().contains(&b'\\') {
            return Some(inner);
        }
        self.lookup(path).and_then(Value::as_str)
    }

    /// The JSON text of the value at a dotted path, found by scanning the record text
    /// without building a JSON tree. For an object with a repeated member the last one
    /// wins, as in [`Event::lookup`].
    pub fn lookup_raw(&self, path: &str) -> Option<&str> {
        let (first, rest) = match path.split_once('.') {
            Some((f, r)) => (f, Some(r)),
            None => (path, None),
        };
        let mut v: &str = match SUBTREES.iter().position(|s| *s == first) {
            Some(i) => {
                let (a, b) = self.sub_range(i);
                if a == b {
                    return None;
                }
                &self.raw()[a as usize..b as usize]
            }
            None => raw_member(self.raw(), first)?,
        };
        if let Some(rest) = rest {
            for part in rest.split('.') {
                v = raw_member(v, part)?;
            }
        }
        Some(v)
    }
}

/// The JSON text of member `key` of the object whose text is `obj` (`None` when `obj`
/// is not an object or has no such member; the last of repeated members wins).
/// `obj` must be valid JSON (records are validated when parsed).
pub fn raw_member<'a>(obj: &'a str, key: &str) -> Option<&'a str> {
    let mut found = None;
    for_each_member(obj, |k, v| {
        let hit = if k.as_bytes().contains(&b'\\') {
            serde_json::from_str::<String>(&format!("\"{k}\"")).is_ok_and(|k| k == key)
        } else {
            k == key
        };
        if hit {
            found = Some(v);
        }
    });
    found
}

/// Calls `f` with the key (its raw text between the quotes, escapes kept) and the
/// JSON text of the value of every member of the object whose text is `obj`, in
/// order, in one pass. Nothing when `obj` is not an object; stops at the first
/// malformed member. `obj` must be valid JSON (records are validated when parsed).
pub fn for_each_member<'a>(obj: &'a str, mut f: impl FnMut(&'a str, &'a str)) {
    let b = obj.as_bytes();
    let ws = |mut i: usize| {
        while i < b.len() && matches!(b[i], b' ' | b'\n' | b'\r' | b'\t') {
            i += 1;
        }
        i
    };
    let mut i = ws(0);
    if b.get(i) != Some(&b'{') {
        return;
    }
    i = ws(i + 1);
    while b.get(i) == Some(&b'"') {
        let Ok(kend) = crate::json::string_end(b, i) else {
            return;
        };
        let kraw = &obj[i + 1..kend - 1];
        i = ws(kend);
        if b.get(i) != Some(&b':') {
            return;
        }
        i = ws(i + 1);
        let Ok(vend) = crate::json::value_end(b, i) else {
            return;
        };
        f(kraw, &obj[i..vend]);
        i = ws(vend);
        if b.get(i) == Some(&b',') {
            i = ws(i + 1);
        }
    }
}

/// Parses a `sourceIPAddress`: a strict IPv4/IPv6 address (values such as
/// `255.090.254.5` with leading zeros are rejected as invalid, as are service names).
pub fn parse_ip(s: &str) -> Option<IpAddr> {
    let b = s.as_bytes();
    if b.is_empty() || !(b[0].is_ascii_hexdigit() || b[0] == b':') {
        return None;
    }
    s.parse().ok()
}

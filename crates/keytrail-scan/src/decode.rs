//! Encoded values: base64 text that decodes to text holding a secret.
//!
//! Two kinds of values are decoded:
//! - values a format *declares* base64 (short ones too, from 4 characters):
//!   every `data:` value of a buffer holding a Kubernetes `Secret` (any
//!   document of a multi-document file or of a `kind: List`), and values of
//!   keys named so (`client-key-data`, `.dockerconfigjson`, `.dockercfg`,
//!   `auth`, `…_b64`, `…base64`);
//! - other base64 *blobs* of at least [`MIN_BLOB`] characters standing alone
//!   as a value (between quotes, after `:` or `=`, or on their own).
//!
//! A value is decoded only when it is at most [`MAX_ENCODED`] characters,
//! decodes (standard or URL-safe alphabet, padding optional) to at least
//! 4 bytes of UTF-8 text without control characters, and was not already
//! reported as a secret where it is written (a Docker `auth`, a kubeconfig
//! key blob). The decoded text is scanned with the same rules (a short
//! single-line value of a declared key is scanned as `key: value`, so the
//! key names the secret), and is itself searched for encoded values once
//! more ([`MAX_DEPTH`] = 2: the `auth` inside a `.dockerconfigjson` inside a
//! `Secret`). At most [`MAX_DECODED_PER_BUFFER`] bytes are decoded per
//! buffer. Findings keep the position of the encoded text.

use crate::dedup::dedup;
use crate::engine::{RawMatch, Scanner};
use crate::finding::BlobFinding;
use crate::locate::{Base, snippet};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use keytrail_types::{Location, Origin, Secret};
use std::ops::Range;

/// Note added to a finding made by decoding.
pub const DECODED_NOTE: &str = "found by decoding base64";

impl Scanner {
    /// Push the findings in the encoded values of `data` whose encoded
    /// text starts where `accept` says, located at the encoded text.
    /// `direct` are the matches found in `data` as written: their secrets
    /// are not decoded again.
    ///
    /// A value a generic rule (`generic` category: `token: <base64>`)
    /// matched as written is decoded all the same; when its decoded text
    /// holds a secret, that generic finding of the encoded text is dropped
    /// from `out` in favour of what the decoding found.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn push_decoded(
        &self,
        path: &str,
        origin: &Origin,
        data: &[u8],
        direct: &[RawMatch],
        accept: impl Fn(usize) -> bool,
        base: Base,
        out: &mut Vec<BlobFinding>,
    ) {
        let taken: Vec<Range<usize>> = direct
            .iter()
            .filter(|m| !self.rules()[m.rule].is_generic())
            .map(|m| m.secret.clone())
            .collect();
        let values = encoded_values(data, &taken);
        if values.is_empty() {
            return;
        }
        let before = out.len();
        let (mut pos, mut line, mut line_start) = (0usize, base.line, None::<usize>);
        for e in values.into_iter().filter(|e| accept(e.span.start)) {
            let mut found = Vec::new();
            self.decoded_matches(data, &e, 1, &mut found);
            if found.is_empty() {
                continue;
            }
            let off = e.span.start;
            let seg = &data[pos..off];
            let nl = memchr::memchr_iter(b'\n', seg).count();
            if nl > 0 {
                line += nl as u64;
                line_start = memchr::memrchr(b'\n', seg).map(|i| pos + i + 1);
            }
            pos = off;
            let abs_line_start = line_start.map_or(base.line_start, |ls| base.offset + ls as u64);
            let abs = base.offset + off as u64;
            let at = RawMatch {
                rule: 0,
                secret: e.span.clone(),
                whole: e.span.clone(),
                context: Vec::new(),
                note: None,
            };
            let snip = snippet(data, &at, &[]);
            for (rule, secret, context, note, depth) in found {
                if out.iter().any(|f: &BlobFinding| {
                    f.rule == rule && f.location.offset == abs && f.secret.expose() == &secret
                }) {
                    continue;
                }
                let label = vec!["base64"; depth as usize].join("+");
                out.push(BlobFinding {
                    rule,
                    secret: Secret::new(secret),
                    context,
                    location: Location {
                        path: path.to_string(),
                        line,
                        column: abs - abs_line_start + 1,
                        offset: abs,
                        snippet: snip.clone(),
                        origin: origin.clone(),
                        decoded: Some(label),
                    },
                    notes: note.into_iter().chain([DECODED_NOTE.to_string()]).collect(),
                });
            }
            // The generic finding of the encoded text itself gives way.
            let enc = &data[e.span.clone()];
            let mut i = 0;
            out.retain(|f| {
                i += 1;
                i > before
                    || f.location.offset != abs
                    || f.location.decoded.is_some()
                    || f.secret.expose().as_bytes() != enc
                    || !self.rules()[f.rule].is_generic()
            });
        }
        if out.len() > before {
            out.sort_by_key(|f| f.location.offset);
        }
    }

    /// The matches in one decoded value (and, below [`MAX_DEPTH`], in the
    /// values encoded inside it): (rule, secret, context, note, depth).
    #[allow(clippy::type_complexity)]
    fn decoded_matches(
        &self,
        data: &[u8],
        e: &Encoded,
        depth: u8,
        out: &mut Vec<(usize, String, Vec<(String, String)>, Option<String>, u8)>,
    ) {
        let key = e.key.as_ref().map(|k| &data[k.clone()]);
        // A short one-line value is scanned after its key, which names it.
        let prefixed = match key {
            Some(k) if !e.text.contains(&b'\n') && e.text.len() <= 4096 => {
                let mut t = k.to_vec();
                t.extend_from_slice(b": ");
                t.extend_from_slice(&e.text);
                Some(t)
            }
            _ => None,
        };
        let text = prefixed.as_deref().unwrap_or(&e.text);
        let sub_path = key.and_then(|k| std::str::from_utf8(k).ok());
        let (matches, _) = dedup(self, text, self.find_matches(sub_path, text));
        for m in &matches {
            let rule = &self.rules()[m.rule];
            let context = m
                .context
                .iter()
                .map(|(ci, r)| {
                    (
                        rule.context_groups[*ci].0.clone(),
                        String::from_utf8_lossy(&text[r.clone()]).into_owned(),
                    )
                })
                .collect();
            out.push((
                m.rule,
                String::from_utf8_lossy(&text[m.secret.clone()]).into_owned(),
                context,
                m.note.clone(),
                depth,
            ));
        }
        if depth < MAX_DEPTH {
            let shift = prefixed.as_ref().map_or(0, |_| text.len() - e.text.len());
            let taken: Vec<Range<usize>> = matches
                .iter()
                .filter(|m| m.secret.start >= shift)
                .map(|m| m.secret.start - shift..m.secret.end - shift)
                .collect();
            for inner in encoded_values(&e.text, &taken) {
                self.decoded_matches(&e.text, &inner, depth + 1, out);
            }
        }
    }
}

/// Shortest undeclared base64 blob that is decoded.
pub const MIN_BLOB: usize = 24;
/// Shortest value a format declares base64 that is decoded.
pub const MIN_DECLARED: usize = 4;
/// Longest encoded value decoded (longer ones are binary payloads).
pub const MAX_ENCODED: usize = 1 << 20;
/// How many times a value may be decoded (a value inside a decoded value).
pub const MAX_DEPTH: u8 = 2;
/// Most bytes decoded in one buffer.
pub const MAX_DECODED_PER_BUFFER: usize = 8 << 20;

/// One encoded value in a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Encoded {
    /// The encoded text (without padding quotes).
    pub span: Range<usize>,
    /// The key it is the value of, when the line names one.
    pub key: Option<Range<usize>>,
    /// The decoded text.
    pub text: Vec<u8>,
}

/// Bytes of either base64 alphabet (`=` padding aside).
static B64: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric() || c == b'+' || c == b'/' || c == b'-' || c == b'_';
        b += 1;
    }
    t
};

#[inline]
fn is_b64(b: u8) -> bool {
    B64[b as usize]
}

/// Whether a byte may stand before a value.
fn opens(b: u8) -> bool {
    matches!(
        b,
        b' ' | b'\t' | b'\n' | b'\r' | b'"' | b'\'' | b':' | b'=' | b'>' | b',' | b'[' | b'('
    )
}

/// Whether a byte may stand after a value.
fn closes(b: u8) -> bool {
    matches!(
        b,
        b' ' | b'\t' | b'\n' | b'\r' | b'"' | b'\'' | b'<' | b',' | b']' | b')' | b'}' | b';'
    )
}

/// The key of the `key: value` / `"key": "value"` / `key=value` line whose
/// value starts at `start`, if the text between the line start and `start`
/// is only that.
fn key_before(data: &[u8], start: usize) -> Option<Range<usize>> {
    let line_start = memchr::memrchr(b'\n', &data[start.saturating_sub(256)..start])
        .map_or(start.saturating_sub(256), |i| {
            start.saturating_sub(256) + i + 1
        });
    let mut head = &data[line_start..start];
    let mut lo = line_start;
    // Trim the separator and quotes before the value.
    while let Some((&b, rest)) = head.split_last() {
        if matches!(b, b' ' | b'\t' | b'"' | b'\'') {
            head = rest;
        } else {
            break;
        }
    }
    let (&sep, rest) = head.split_last()?;
    if sep != b':' && sep != b'=' {
        return None;
    }
    head = rest;
    let trim_end = head
        .iter()
        .rposition(|&b| !matches!(b, b' ' | b'\t' | b'"' | b'\''))?;
    head = &head[..=trim_end];
    let key_start = head
        .iter()
        .rposition(|&b| !(b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')))
        .map_or(0, |i| i + 1);
    let before = &head[..key_start];
    // Only indentation, a list dash, quotes or `export` before the key.
    if !before
        .iter()
        .all(|&b| matches!(b, b' ' | b'\t' | b'-' | b'"' | b'\'' | b'{' | b','))
        && !before.trim_ascii().eq_ignore_ascii_case(b"export")
    {
        return None;
    }
    lo += key_start;
    (key_start < head.len()).then_some(lo..lo + head.len() - key_start)
}

/// Whether a key names a base64 value.
fn declares_base64(key: &[u8]) -> bool {
    let k = key.to_ascii_lowercase();
    k.ends_with(b"-data")
        || k.ends_with(b"b64")
        || k.ends_with(b"base64")
        || k == b".dockerconfigjson"
        || k == b".dockercfg"
        || k == b"auth"
}

/// Whether `data` holds a Kubernetes Secret (or a list of them).
fn holds_k8s_secret(data: &[u8]) -> bool {
    // One pass for `Secret`, then `kind` just before it (YAML or JSON).
    memchr::memmem::find_iter(data, b"Secret").any(|at| {
        let before = &data[at.saturating_sub(12)..at];
        memchr::memmem::find(before, b"kind").is_some()
    })
}

/// Decode base64 text (either alphabet, padding optional) to printable
/// UTF-8 text, or `None`.
pub(crate) fn decode_text(enc: &[u8]) -> Option<Vec<u8>> {
    let body = enc
        .strip_suffix(b"==")
        .or_else(|| enc.strip_suffix(b"="))
        .unwrap_or(enc);
    if body.len() % 4 == 1 || body.contains(&b'=') {
        return None;
    }
    let url = body.iter().any(|&b| b == b'-' || b == b'_');
    let std = body.iter().any(|&b| b == b'+' || b == b'/');
    if url && std {
        return None;
    }
    let engine = if url {
        &URL_SAFE_NO_PAD
    } else {
        &STANDARD_NO_PAD
    };
    // Reject binary early: the first quantum decides for most blobs.
    if body.len() >= 8 {
        let head = engine.decode(&body[..8]).ok()?;
        if !printable(&head) {
            return None;
        }
    }
    let out = engine.decode(body).ok()?;
    (out.len() >= 4 && printable(&out) && std::str::from_utf8(&out).is_ok()).then_some(out)
}

/// Text without control characters other than tab, CR and LF.
fn printable(b: &[u8]) -> bool {
    b.iter()
        .all(|&c| (c >= 0x20 && c != 0x7f) || matches!(c, b'\t' | b'\n' | b'\r'))
}

/// Every decodable encoded value in `data`, in order, skipping `taken`
/// ranges (secrets already reported where they are written), within the
/// decode budget.
pub(crate) fn encoded_values(data: &[u8], taken: &[Range<usize>]) -> Vec<Encoded> {
    let mut out = Vec::new();
    // Whether the buffer holds a Kubernetes Secret: looked up once, the
    // first time a short value after a key is not declared by its key.
    let mut k8s: Option<bool> = None;
    let mut budget = MAX_DECODED_PER_BUFFER;
    let mut i = 0;
    let n = data.len();
    while i < n {
        if !is_b64(data[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < n && is_b64(data[i]) {
            i += 1;
        }
        let mut end = i;
        while end < n && end - i < 2 && data[end] == b'=' {
            end += 1;
        }
        i = end;
        let len = end - start;
        if !(MIN_DECLARED..=MAX_ENCODED).contains(&len)
            || (start > 0 && !opens(data[start - 1]))
            || (end < n && !closes(data[end]))
        {
            continue;
        }
        // A short value must follow `:` or `=` (a key); a blob must mix
        // upper case, lower case and digits, as base64 of text does
        // (identifiers and words do not).
        let after_sep = data[start.saturating_sub(4)..start]
            .iter()
            .rev()
            .find(|&&b| !matches!(b, b' ' | b'\t' | b'"' | b'\''))
            .is_some_and(|&b| b == b':' || b == b'=');
        if len < MIN_BLOB && !after_sep {
            continue;
        }
        let run = &data[start..end];
        let mixed = run.iter().any(u8::is_ascii_uppercase)
            && run.iter().any(u8::is_ascii_lowercase)
            && run.iter().any(u8::is_ascii_digit);
        if !mixed && !after_sep {
            continue;
        }
        let key = if after_sep {
            key_before(data, start)
        } else {
            None
        };
        let declared = key.as_ref().is_some_and(|k| {
            declares_base64(&data[k.clone()])
                || (*k8s.get_or_insert_with(|| holds_k8s_secret(data))
                    && in_data_block(data, k.start))
        });
        if !declared && len < MIN_BLOB {
            continue;
        }
        if taken.iter().any(|t| t.start < end && start < t.end) {
            continue;
        }
        if budget < len {
            break;
        }
        if let Some(text) = decode_text(&data[start..end]) {
            budget -= len;
            out.push(Encoded {
                span: start..end,
                key,
                text,
            });
        }
    }
    out
}

/// Whether the mapping entry at `pos` lies in a `data:` block (a line
/// `data:` at a smaller indentation above it, with no other key at that
/// indentation between).
fn in_data_block(data: &[u8], pos: usize) -> bool {
    let line_start = memchr::memrchr(b'\n', &data[..pos]).map_or(0, |i| i + 1);
    let indent = data[line_start..pos]
        .iter()
        .take_while(|&&b| b == b' ' || b == b'-' || b == b'"' || b == b'\t')
        .count();
    // JSON: `"data": {` somewhere before on the way up is enough.
    let mut end = line_start;
    let floor = pos.saturating_sub(64 << 10);
    while end > floor {
        let prev_start = memchr::memrchr(b'\n', &data[..end - 1]).map_or(0, |i| i + 1);
        let line = &data[prev_start..end - 1];
        end = prev_start;
        let t = line.trim_ascii();
        if t.is_empty() || t.starts_with(b"#") {
            continue;
        }
        let ind = line
            .iter()
            .take_while(|&&b| b == b' ' || b == b'\t')
            .count();
        if ind < indent {
            return t == b"data:" || t.starts_with(b"\"data\":") || t.starts_with(b"data: {");
        }
        if prev_start == 0 {
            break;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;

    #[test]
    fn text_decodes_and_binary_does_not() {
        assert_eq!(
            decode_text(STANDARD.encode("user:hunter22").as_bytes()).unwrap(),
            b"user:hunter22"
        );
        assert_eq!(decode_text(b"////////////////"), None);
        assert_eq!(decode_text(b"not base64 at all"), None);
        assert_eq!(decode_text(b"abcde"), None);
        // A hex digest is base64-shaped but decodes to binary.
        assert_eq!(
            decode_text(b"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b"),
            None
        );
    }

    #[test]
    fn secret_data_values_are_declared() {
        let pw = STANDARD.encode("s3cr3t-pw");
        let yaml = format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ndata:\n  password: {pw}\n  user: YWRtaW4=\n"
        );
        let found = encoded_values(yaml.as_bytes(), &[]);
        let texts: Vec<&[u8]> = found.iter().map(|e| e.text.as_slice()).collect();
        assert_eq!(texts, [b"s3cr3t-pw".as_slice(), b"admin".as_slice()]);
        assert_eq!(&yaml.as_bytes()[found[0].key.clone().unwrap()], b"password");
        // The same short values outside a Secret's data are not decoded.
        let plain = format!("metadata:\n  password: {pw}\n");
        assert!(encoded_values(plain.as_bytes(), &[]).is_empty());
    }

    #[test]
    fn bounds_hold() {
        let huge = format!("blob: {}\n", STANDARD.encode(vec![b'a'; MAX_ENCODED]));
        assert!(encoded_values(huge.as_bytes(), &[]).is_empty());
        assert!(encoded_values(b"key: ====\n", &[]).is_empty());
        assert!(encoded_values(b"", &[]).is_empty());
    }
}

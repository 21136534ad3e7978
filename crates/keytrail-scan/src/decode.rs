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
    let ends = |suffix: &[u8]| {
        key.len() >= suffix.len() && key[key.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
    };
    ends(b"-data")
        || ends(b"b64")
        || ends(b"base64")
        || key.eq_ignore_ascii_case(b".dockerconfigjson")
        || key.eq_ignore_ascii_case(b".dockercfg")
        || key.eq_ignore_ascii_case(b"auth")
}

/// Whether a key ending in `prev`, `last` can declare base64
/// ([`declares_base64`]: `-data`, `b64`, `base64`, `.dockerconfigjson`,
/// `.dockercfg`, `auth`): a cheap test made before the key is looked up.
fn may_declare(prev: u8, last: u8) -> bool {
    matches!(
        [prev.to_ascii_lowercase(), last.to_ascii_lowercase()],
        [b't', b'a'] | [b'6', b'4'] | [b'o', b'n'] | [b'f', b'g'] | [b't', b'h']
    )
}

/// Whether the key just before the separator at `sep` (quotes and blanks
/// skipped) can declare base64.
fn key_may_declare(data: &[u8], sep: usize) -> bool {
    let head = &data[sep.saturating_sub(256)..sep];
    match head
        .iter()
        .rposition(|&b| !matches!(b, b' ' | b'\t' | b'"' | b'\''))
    {
        Some(i) if i > 0 => may_declare(head[i - 1], head[i]),
        _ => false,
    }
}

/// Whether the key before the separator a value at `start` follows can
/// declare base64 ([`key_may_declare`]).
fn value_key_may_declare(data: &[u8], start: usize) -> bool {
    let head = &data[start.saturating_sub(4)..start];
    head.iter()
        .rposition(|&b| b == b':' || b == b'=')
        .is_some_and(|i| key_may_declare(data, start.saturating_sub(4) + i))
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
    // Whether the buffer holds a Kubernetes Secret (one pass).
    let k8s = holds_k8s_secret(data);
    let mut budget = MAX_DECODED_PER_BUFFER;
    let taken = Taken::new(taken);
    let n = data.len();
    for (start, run_end) in candidate_runs(data, k8s) {
        let mut end = run_end;
        while end < n && end - run_end < 2 && data[end] == b'=' {
            end += 1;
        }
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
        let after_sep = follows_separator(data, start);
        if len < MIN_BLOB && !after_sep {
            continue;
        }
        if !after_sep {
            let run = &data[start..end];
            let mixed = run.iter().any(u8::is_ascii_uppercase)
                && run.iter().any(u8::is_ascii_lowercase)
                && run.iter().any(u8::is_ascii_digit);
            if !mixed {
                continue;
            }
        }
        if taken.overlaps(start..end) {
            continue;
        }
        // A short value is decoded only when declared: by its key, whose
        // last byte tells at once whether it can, or by a `Secret`'s
        // `data:` block.
        if len < MIN_BLOB && !k8s && !value_key_may_declare(data, start) {
            continue;
        }
        let key = if after_sep {
            key_before(data, start)
        } else {
            None
        };
        let declared = key.as_ref().is_some_and(|k| {
            declares_base64(&data[k.clone()]) || (k8s && in_data_block(data, k.start))
        });
        if !declared && len < MIN_BLOB {
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

/// Ranges already reported, sorted by start with the running maximum of
/// their ends, so whether one overlaps a range is a binary search.
struct Taken {
    ranges: Vec<Range<usize>>,
    max_end: Vec<usize>,
}

impl Taken {
    fn new(taken: &[Range<usize>]) -> Taken {
        let mut ranges = taken.to_vec();
        ranges.sort_by_key(|r| r.start);
        let max_end = ranges
            .iter()
            .scan(0, |m, r| {
                *m = (*m).max(r.end);
                Some(*m)
            })
            .collect();
        Taken { ranges, max_end }
    }

    /// Whether a taken range overlaps `r`.
    fn overlaps(&self, r: Range<usize>) -> bool {
        // Ranges starting before `r` ends; one of them must end after it starts.
        let before = self.ranges.partition_point(|t| t.start < r.end);
        before > 0 && self.max_end[before - 1] > r.start
    }
}

/// Whether the text just before `start` (at most three spaces, tabs or
/// quotes back) is a `:` or `=`: the value of a key.
fn follows_separator(data: &[u8], start: usize) -> bool {
    data[start.saturating_sub(4)..start]
        .iter()
        .rev()
        .find(|&&b| !matches!(b, b' ' | b'\t' | b'"' | b'\''))
        .is_some_and(|&b| b == b':' || b == b'=')
}

/// Base64 characters a run needs, padding aside, to be long enough for a
/// blob ([`MIN_BLOB`] counts up to two `=`).
const MIN_BLOB_RUN: usize = MIN_BLOB - 2;
const _: () = assert!(MIN_BLOB_RUN == 22, "runs_of_at_least is written for 22");

/// The maximal runs of base64 characters (`start..end`, padding excluded)
/// that can be encoded values, in order: those long enough to be a blob
/// and those that follow a `:` or `=`. Every other run is too short to be
/// decoded, so it is never visited byte by byte: long runs are found 64
/// bytes at a time on a bit mask of the base64 bytes (most blocks of text
/// hold none), short values by jumping from separator to separator. With
/// `k8s` false (the buffer holds no Kubernetes `Secret`) the short values
/// left out are those whose key cannot declare base64 ([`may_declare`]).
fn candidate_runs(data: &[u8], k8s: bool) -> Vec<(usize, usize)> {
    let n = data.len();
    let run_end = |mut i: usize| {
        while i < n && is_b64(data[i]) {
            i += 1;
        }
        i
    };
    let mut runs = Vec::new();
    // Long runs, block by block. `carry`: base64 bytes just before `o`.
    let mut o = 0;
    let mut carry = 0usize;
    while o < n {
        let len = (n - o).min(64);
        let m = b64_mask(&data[o..o + len]);
        // A run continuing from the previous block, or one inside this block.
        let start = if carry > 0 && carry + (m.trailing_ones() as usize) >= MIN_BLOB_RUN {
            Some(o - carry)
        } else {
            let r = runs_of_at_least(m);
            (r != 0).then(|| o + r.trailing_zeros() as usize)
        };
        match start {
            Some(s) => {
                let e = run_end(s.max(o));
                runs.push((s, e));
                o = e + 1;
                carry = 0;
            }
            None if len < 64 => break,
            None => {
                carry = if m == u64::MAX {
                    carry + 64
                } else {
                    m.leading_ones() as usize
                };
                o += 64;
            }
        }
    }
    // Values after separators (short or long: the merge drops repeats).
    // Outside a Kubernetes `Secret` a short value is decoded only when its
    // key declares base64, which the key's last byte rules out for most.
    let mut short = Vec::new();
    let mut last = usize::MAX;
    for sep in memchr::memchr2_iter(b':', b'=', data) {
        if !k8s && !key_may_declare(data, sep) {
            continue;
        }
        let mut s = sep + 1;
        while s < n && s - sep <= 3 && matches!(data[s], b' ' | b'\t' | b'"' | b'\'') {
            s += 1;
        }
        if s >= n || s - sep > 4 || !is_b64(data[s]) || (last != usize::MAX && s <= last) {
            continue;
        }
        last = s;
        short.push((s, run_end(s)));
    }
    if short.is_empty() {
        return runs;
    }
    let mut merged = Vec::with_capacity(runs.len() + short.len());
    let (mut a, mut b) = (runs.into_iter().peekable(), short.into_iter().peekable());
    loop {
        let next = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if x.0 < y.0 => a.next(),
            (Some(x), Some(y)) if x.0 == y.0 => {
                b.next();
                a.next()
            }
            (_, Some(_)) => b.next(),
            (Some(_), None) => a.next(),
            (None, None) => break,
        };
        merged.extend(next);
    }
    merged
}

/// Bit `k` set when `block[k]` (at most 64 bytes) is a base64 byte.
#[inline]
fn b64_mask(block: &[u8]) -> u64 {
    match <&[u8; 64]>::try_from(block) {
        Ok(full) => b64_mask_64(full),
        Err(_) => block
            .iter()
            .enumerate()
            .fold(0, |m, (k, &b)| m | ((B64[b as usize] as u64) << k)),
    }
}

/// [`b64_mask`] of a whole block: byte-wise comparisons on a fixed-size
/// array (which the compiler turns into vector compares; no `unsafe`, no
/// per-byte table load), then the 0/1 bytes gathered into bits eight at a
/// time by one multiplication.
#[inline]
fn b64_mask_64(block: &[u8; 64]) -> u64 {
    let mut class = [0u8; 64];
    for (c, &b) in class.iter_mut().zip(block) {
        let letter = (b | 0x20).wrapping_sub(b'a') < 26;
        let digit = b.wrapping_sub(b'0') < 10;
        let sign = (b == b'+') | (b == b'/') | (b == b'-') | (b == b'_');
        *c = (letter | digit | sign) as u8;
    }
    let mut m = 0u64;
    for (i, eight) in class.chunks_exact(8).enumerate() {
        let x = u64::from_le_bytes(eight.try_into().expect("8 bytes"));
        // Byte i (0 or 1) lands on bit 56 + i; the top byte is the mask.
        m |= (x.wrapping_mul(0x0102_0408_1020_4080) >> 56) << (8 * i);
    }
    m
}

/// Bit `k` set when bits `k..k + MIN_BLOB_RUN` of `m` are all set: where
/// runs of at least [`MIN_BLOB_RUN`] ones start (and every later bit of
/// those runs that still has that many ones after it).
#[inline]
fn runs_of_at_least(m: u64) -> u64 {
    let r2 = m & (m >> 1);
    let r4 = r2 & (r2 >> 2);
    let r8 = r4 & (r4 >> 4);
    let r16 = r8 & (r8 >> 8);
    // 22 = 16 + 4 + 2.
    r16 & (r4 >> 16) & (r2 >> 20)
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

    /// Every run the byte-by-byte walk would decode, for comparison.
    fn runs_walked(data: &[u8]) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < data.len() {
            if !is_b64(data[i]) {
                i += 1;
                continue;
            }
            let start = i;
            while i < data.len() && is_b64(data[i]) {
                i += 1;
            }
            let pad = data[i..].iter().take(2).take_while(|&&b| b == b'=').count();
            if i - start + pad >= MIN_BLOB
                || (i - start + pad >= MIN_DECLARED && follows_separator(data, start))
            {
                out.push((start, i));
            }
        }
        out
    }

    #[test]
    fn candidate_runs_are_those_of_a_byte_walk() {
        // Random texts over an alphabet heavy in separators, quotes,
        // padding and base64 characters, of lengths around the window.
        let alphabet = b"aZ9+/-_= :\t\"'\nxQ";
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..20_000 {
            let len = (next() % 300) as usize;
            // Some texts mostly base64, some mostly separators.
            let bias = round % 3;
            let text: Vec<u8> = (0..len)
                .map(|_| {
                    let r = next() as usize;
                    match bias {
                        0 => alphabet[r % alphabet.len()],
                        1 => alphabet[r % 5],
                        _ => {
                            if r.is_multiple_of(7) {
                                alphabet[5 + r % (alphabet.len() - 5)]
                            } else {
                                alphabet[r % 3]
                            }
                        }
                    }
                })
                .collect();
            let want = runs_walked(&text);
            // The runs found, less those the filters drop at once (22 or 23
            // characters without padding or a separator): exactly the walk's.
            let got: Vec<(usize, usize)> = candidate_runs(&text, true)
                .into_iter()
                .filter(|&(s, e)| {
                    let pad = text[e..].iter().take(2).take_while(|&&b| b == b'=').count();
                    e - s + pad >= MIN_BLOB
                        || (e - s + pad >= MIN_DECLARED && follows_separator(&text, s))
                })
                .collect();
            assert_eq!(got, want, "{:?}", String::from_utf8_lossy(&text));
        }
    }

    #[test]
    fn block_mask_agrees_with_the_table() {
        for b in 0..=255u8 {
            let block = [b; 64];
            let want = if is_b64(b) { u64::MAX } else { 0 };
            assert_eq!(b64_mask_64(&block), want, "byte {b:#x}");
            assert_eq!(b64_mask(&block[..5]), want & 0x1f, "byte {b:#x}");
        }
    }

    /// The values a byte-by-byte walk decodes, every run checked in full:
    /// the reference [`encoded_values`] must agree with.
    fn encoded_walked(data: &[u8]) -> Vec<Range<usize>> {
        let mut out = Vec::new();
        for (start, run_end) in runs_walked(data) {
            let mut end = run_end;
            while end < data.len() && end - run_end < 2 && data[end] == b'=' {
                end += 1;
            }
            let len = end - start;
            if len > MAX_ENCODED
                || (start > 0 && !opens(data[start - 1]))
                || (end < data.len() && !closes(data[end]))
            {
                continue;
            }
            let after_sep = follows_separator(data, start);
            let run = &data[start..end];
            let mixed = run.iter().any(u8::is_ascii_uppercase)
                && run.iter().any(u8::is_ascii_lowercase)
                && run.iter().any(u8::is_ascii_digit);
            if !mixed && !after_sep {
                continue;
            }
            let key = after_sep.then(|| key_before(data, start)).flatten();
            let declared = key.as_ref().is_some_and(|k| {
                declares_base64(&data[k.clone()])
                    || (holds_k8s_secret(data) && in_data_block(data, k.start))
            });
            if (declared || len >= MIN_BLOB) && decode_text(&data[start..end]).is_some() {
                out.push(start..end);
            }
        }
        out
    }

    #[test]
    fn encoded_values_are_those_of_a_byte_walk() {
        // Texts made of keys (declaring base64 or not), separators, quotes,
        // line breaks, Secret markers and base64 of short and long texts.
        let values: Vec<String> = [
            "pw",
            "user:pw-123",
            "hunter2hunter2",
            "a long line of text, 40+",
        ]
        .iter()
        .map(|t| STANDARD.encode(t))
        .chain(["notbase64".to_string(), "QUJD".to_string()])
        .collect();
        let keys = [
            "auth",
            "token",
            "client-key-data",
            "metadata",
            "KEY_B64",
            "base64",
            "json",
            ".dockercfg",
            "version",
            "x",
        ];
        let glue = [
            ": ",
            "=",
            "\": \"",
            " = '",
            "\n",
            "\n  ",
            " ",
            "\"",
            "kind: Secret\ndata:\n  ",
        ];
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as usize
        };
        let mut decoded = 0;
        for _ in 0..20_000 {
            let mut text = String::new();
            for _ in 0..next() % 16 {
                match next() % 3 {
                    0 => text.push_str(keys[next() % keys.len()]),
                    1 => text.push_str(glue[next() % glue.len()]),
                    _ => text.push_str(&values[next() % values.len()]),
                }
            }
            let want = encoded_walked(text.as_bytes());
            let got: Vec<Range<usize>> = encoded_values(text.as_bytes(), &[])
                .into_iter()
                .map(|e| e.span)
                .collect();
            assert_eq!(got, want, "{text:?}");
            decoded += got.len();
        }
        // The texts do exercise decoding.
        assert!(decoded > 1_000, "{decoded}");
    }

    #[test]
    fn taken_overlaps_as_a_scan_would() {
        let ranges = [10..20, 0..5, 12..40, 50..51, 30..31];
        let t = Taken::new(&ranges);
        for a in 0..60 {
            for b in a + 1..62 {
                let want = ranges.iter().any(|r| r.start < b && a < r.end);
                assert_eq!(t.overlaps(a..b), want, "{a}..{b}");
            }
        }
        assert!(!Taken::new(&[]).overlaps(0..10));
    }

    #[test]
    fn short_values_are_decoded_only_where_declared() {
        let v = STANDARD.encode("user:pw-123");
        for (text, decoded) in [
            (format!("client-key-data: {v}\n"), true),
            (format!("SECRET_B64=\"{v}\"\n"), true),
            (format!("\"auth\": \"{v}\"\n"), true),
            (format!("password: {v}\n"), false),
            (format!("x = {v}\n"), false),
        ] {
            let found = encoded_values(text.as_bytes(), &[]);
            assert_eq!(!found.is_empty(), decoded, "{text}");
        }
    }

    #[test]
    fn bounds_hold() {
        let huge = format!("blob: {}\n", STANDARD.encode(vec![b'a'; MAX_ENCODED]));
        assert!(encoded_values(huge.as_bytes(), &[]).is_empty());
        assert!(encoded_values(b"key: ====\n", &[]).is_empty());
        assert!(encoded_values(b"", &[]).is_empty());
    }
}

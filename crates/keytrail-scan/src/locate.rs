//! Turning [`RawMatch`]es (byte ranges in a buffer) into [`BlobFinding`]s:
//! 1-based line and byte column, absolute offset, and a snippet of the
//! secret's line with every secret on it masked.

use crate::engine::{RawMatch, Scanner};
use crate::finding::BlobFinding;
use keytrail_types::{Location, Origin, Secret, redact};

/// Most bytes of context kept on each side of a secret in a snippet.
const SNIPPET_SIDE: usize = 70;

/// Where a buffer sits in its blob, for line and offset arithmetic.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Base {
    /// Absolute offset of the buffer's first byte.
    pub offset: u64,
    /// 1-based line number of the buffer's first byte.
    pub line: u64,
    /// Absolute offset of the start of the line holding the buffer's first byte.
    pub line_start: u64,
}

impl Base {
    /// A buffer that is the whole blob.
    pub const START: Base = Base {
        offset: 0,
        line: 1,
        line_start: 0,
    };
}

/// Locate every match (sorted by secret start) and push findings.
#[allow(clippy::too_many_arguments)]
pub(crate) fn locate(
    scanner: &Scanner,
    path: &str,
    origin: &Origin,
    data: &[u8],
    matches: &[RawMatch],
    also: &[Vec<usize>],
    accept: impl Fn(&RawMatch) -> bool,
    base: Base,
    out: &mut Vec<BlobFinding>,
) {
    let mut pos = 0usize;
    let mut line = base.line;
    // Relative offset of the current line's start, or None if it begins
    // before the buffer.
    let mut line_start: Option<usize> = None;
    for (mi, m) in matches.iter().enumerate() {
        if !accept(m) {
            continue;
        }
        let off = m.secret.start;
        if off > pos {
            let seg = &data[pos..off];
            let n = memchr::memchr_iter(b'\n', seg).count();
            if n > 0 {
                line += n as u64;
                line_start = memchr::memrchr(b'\n', seg).map(|i| pos + i + 1);
            }
            pos = off;
        }
        let abs_line_start = match line_start {
            Some(ls) => base.offset + ls as u64,
            None => base.line_start,
        };
        let abs = base.offset + off as u64;
        let rule = &scanner.rules()[m.rule];
        let context = m
            .context
            .iter()
            .map(|(ci, r)| {
                (
                    rule.context_groups[*ci].0.clone(),
                    String::from_utf8_lossy(&data[r.clone()]).into_owned(),
                )
            })
            .collect();
        out.push(BlobFinding {
            rule: m.rule,
            secret: Secret::new(String::from_utf8_lossy(&data[m.secret.clone()]).into_owned()),
            context,
            location: Location {
                path: path.to_string(),
                line,
                column: abs - abs_line_start + 1,
                offset: abs,
                snippet: snippet(data, m, matches),
                origin: origin.clone(),
                decoded: None,
            },
            notes: m
                .note
                .iter()
                .cloned()
                .chain(
                    also.get(mi).into_iter().flatten().map(|&r| {
                        format!("{}{}", crate::dedup::ALSO_MATCHED, scanner.rules()[r].id())
                    }),
                )
                .collect(),
        });
    }
}

/// The secret's line, cut to [`SNIPPET_SIDE`] bytes around the secret,
/// with every matched secret in it replaced by its redacted form.
pub(crate) fn snippet(data: &[u8], m: &RawMatch, all: &[RawMatch]) -> String {
    let s = m.secret.start;
    let line_lo = memchr::memrchr(b'\n', &data[s.saturating_sub(4096)..s])
        .map_or(s.saturating_sub(4096), |i| s.saturating_sub(4096) + i + 1);
    let line_hi = memchr::memchr(b'\n', &data[s..(s + 4096).min(data.len())])
        .map_or((s + 4096).min(data.len()), |i| s + i);
    let mut lo = line_lo.max(s.saturating_sub(SNIPPET_SIDE));
    let mut hi = line_hi.min(m.secret.end.max(s) + SNIPPET_SIDE);
    hi = hi.max(s.min(line_hi));
    while lo > line_lo && lo < data.len() && (data[lo] & 0xC0) == 0x80 {
        lo -= 1;
    }
    while hi < line_hi && (data[hi] & 0xC0) == 0x80 {
        hi += 1;
    }
    // Every secret overlapping [lo, hi), clipped, merged.
    let mut masks: Vec<(usize, usize)> = all
        .iter()
        .filter(|o| o.secret.start < hi && o.secret.end > lo)
        .map(|o| (o.secret.start.max(lo), o.secret.end.min(hi)))
        .collect();
    if masks.is_empty() || !masks.iter().any(|&(a, _)| a <= s && s < hi) {
        masks.push((s, m.secret.end.min(hi).max(s)));
    }
    masks.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::with_capacity(masks.len());
    for (a, b) in masks {
        match merged.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    let mut out = String::new();
    if lo > line_lo {
        out.push('…');
    }
    let mut at = lo;
    for (a, b) in merged {
        out.push_str(&String::from_utf8_lossy(&data[at..a]));
        // The secret this finding is about is redacted from its full value,
        // so the snippet shows the same form as `secret_redacted`.
        if a == s {
            out.push_str(&redact(&data[m.secret.clone()]));
        } else {
            out.push_str(&redact(&data[a..b]));
        }
        at = b;
    }
    out.push_str(&String::from_utf8_lossy(&data[at..hi]));
    if hi < line_hi {
        out.push('…');
    }
    out.replace(['\r', '\0'], "").trim().to_string()
}

//! The `redact` engine: a streaming filter (any [`Read`] to any [`Write`])
//! that masks secrets in logs as they pass through.
//!
//! Three sources of ranges to mask, merged per window:
//! 1. every accepted match of the secret rules ([`Scanner::find_matches`],
//!    the low-level match API), masking the secret group only, so
//!    `password=***` stays readable;
//! 2. every *known* value (from `--secret-env`, `--secrets-file`) in every
//!    encoded form ([`forms::encoded_forms`]);
//!
//! Source 1 is the scan engine's own keyword-windowed matcher over each
//! window; source 2 is one leftmost-longest Aho-Corasick automaton over
//! every form of every known value;
//! 3. the body lines of a PEM private key block (`-----BEGIN … PRIVATE
//!    KEY-----` to `-----END`), tracked line by line so a key printed by
//!    `cat key.pem` is masked even when its lines arrive one read apart.
//!
//! Sources 1 and 2 also look at the window with its ANSI escape sequences
//! removed (a secret split by colour codes), and rules at the window read
//! as UTF-16 in both alignments (known values have UTF-16 forms of their
//! own); a match there masks the original bytes it spans, and a secret
//! found in UTF-16 gets its mask written in UTF-16.
//!
//! # Streaming
//!
//! Each round does one `read` (so a pipe delivers what is available and
//! `tail -f | keytrail redact` stays live), then emits every *complete*
//! line, masked, and flushes. An incomplete last line is held back until
//! its newline arrives or the input ends; if a line grows beyond
//! [`RedactorBuilder::max_window`] bytes, all but the last `overlap` bytes
//! are emitted, where `overlap` is at least the longest known form and the
//! longest bounded rule match, so a secret that straddles a read boundary
//! or a window edge is still seen whole. The last [`CONTEXT`] bytes already
//! emitted are kept as matching context (rule keywords may precede a secret
//! on an earlier line) but are never re-emitted. Memory is bounded by
//! `max_window + read_size + CONTEXT` whatever the input.
//!
//! Bytes are bytes: binary input passes through unchanged except for
//! masked ranges. Errors are IO errors of the reader or writer; a closed
//! output pipe surfaces as [`io::ErrorKind::BrokenPipe`] for the caller to
//! turn into a quiet exit.

pub mod forms;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use keytrail_scan::Scanner;
use keytrail_types::Secret;
use std::io::{self, Read, Write};
use std::ops::Range;

/// Bytes of already-emitted input kept as matching context.
pub const CONTEXT: usize = 1024;
/// Default size of one read.
pub const DEFAULT_READ_SIZE: usize = 1 << 20;
/// Default longest run of bytes without a newline held back at once.
pub const DEFAULT_MAX_WINDOW: usize = 1 << 20;
/// Smallest overlap kept between windows of one long line.
pub const MIN_OVERLAP: usize = 4096;
/// Shortest known value accepted: shorter ones would mask ordinary words.
pub const MIN_KNOWN_LEN: usize = 4;

/// How a masked range is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MaskStyle {
    /// `[REDACTED:<label>]`: the rule id for rule matches, the value's
    /// label (`env:NAME`, `secrets-file`) for known values, `private-key`
    /// for PEM bodies. Tells the reader what was there without saying what
    /// it was. The default.
    Labeled,
    /// The same fixed text for everything, e.g. `***`.
    Fixed(String),
}

/// A known secret value to mask, with the label shown in its mask.
#[derive(Debug, Clone)]
pub struct KnownSecret {
    /// Shown in `[REDACTED:<label>]`; must not contain the value.
    pub label: String,
    /// The value.
    pub value: Secret<Vec<u8>>,
}

/// Counters of one [`Redactor::redact_stream`] run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedactStats {
    /// Bytes read.
    pub bytes_in: u64,
    /// Bytes written.
    pub bytes_out: u64,
    /// Ranges masked.
    pub masked: u64,
}

/// Builds a [`Redactor`].
#[derive(Debug)]
pub struct RedactorBuilder {
    scanner: Option<Scanner>,
    known: Vec<KnownSecret>,
    mask: MaskStyle,
    read_size: usize,
    max_window: usize,
}

impl Default for RedactorBuilder {
    fn default() -> Self {
        RedactorBuilder {
            scanner: None,
            known: Vec::new(),
            mask: MaskStyle::Labeled,
            read_size: DEFAULT_READ_SIZE,
            max_window: DEFAULT_MAX_WINDOW,
        }
    }
}

impl RedactorBuilder {
    /// A builder with no rules and no known values.
    pub fn new() -> Self {
        Self::default()
    }

    /// Mask every accepted match of `scanner`'s rules.
    pub fn scanner(mut self, scanner: Scanner) -> Self {
        self.scanner = Some(scanner);
        self
    }

    /// Mask `value` (and its encoded forms), labelled `label`. Values
    /// shorter than [`MIN_KNOWN_LEN`] bytes (after trimming a trailing
    /// newline) are ignored by [`RedactorBuilder::build`], which says so.
    pub fn known(mut self, label: impl Into<String>, value: Secret<Vec<u8>>) -> Self {
        self.known.push(KnownSecret {
            label: label.into(),
            value,
        });
        self
    }

    /// How masks are written.
    pub fn mask(mut self, mask: MaskStyle) -> Self {
        self.mask = mask;
        self
    }

    /// Bytes requested per read (tests use tiny sizes to split secrets).
    pub fn read_size(mut self, n: usize) -> Self {
        self.read_size = n.max(1);
        self
    }

    /// Longest run without a newline held back before a window is emitted.
    pub fn max_window(mut self, n: usize) -> Self {
        self.max_window = n.max(64);
        self
    }

    /// Compile the known values' forms. Returns warnings (as messages
    /// without the value) for values that were skipped.
    pub fn build(self) -> (Redactor, Vec<String>) {
        let mut warnings = Vec::new();
        let mut patterns: Vec<Vec<u8>> = Vec::new();
        let mut pattern_label: Vec<usize> = Vec::new();
        let mut pattern_enc: Vec<Enc> = Vec::new();
        let mut labels: Vec<String> = Vec::new();
        let mut longest = 0usize;
        for k in &self.known {
            let v = k.value.expose();
            let v = v.strip_suffix(b"\n").unwrap_or(v);
            let v = v.strip_suffix(b"\r").unwrap_or(v);
            if v.len() < MIN_KNOWN_LEN {
                warnings.push(format!(
                    "{}: value shorter than {MIN_KNOWN_LEN} bytes is not masked",
                    k.label
                ));
                continue;
            }
            let li = labels.len();
            labels.push(k.label.clone());
            for f in forms::encoded_forms(v) {
                longest = longest.max(f.bytes.len());
                pattern_enc.push(match f.kind {
                    forms::FormKind::Utf16Le => Enc::Utf16Le,
                    forms::FormKind::Utf16Be => Enc::Utf16Be,
                    _ => Enc::Bytes,
                });
                patterns.push(f.bytes);
                pattern_label.push(li);
            }
        }
        // Known forms: leftmost-longest (the raw value wins over one of
        // its lines, the padded base64 over its core). Up to 64 forms
        // (about 8 values) go to the packed SIMD searcher (Teddy), which
        // skips log text many bytes at a time. Larger sets use a plain
        // DFA: the forms start with random bytes, so the rare-byte
        // prefilter aho-corasick would pick fires all the time on log
        // text, while the DFA runs at a steady pace.
        let automaton = (!patterns.is_empty()).then(|| {
            let packed = aho_corasick::packed::Config::new()
                .match_kind(aho_corasick::packed::MatchKind::LeftmostLongest)
                .builder()
                .extend(&patterns)
                .build();
            match packed {
                Some(p) if patterns.len() <= 64 => KnownForms::Packed(p),
                _ => KnownForms::Dfa(
                    AhoCorasickBuilder::new()
                        .match_kind(MatchKind::LeftmostLongest)
                        .prefilter(false)
                        .kind(Some(AhoCorasickKind::DFA))
                        .build(&patterns)
                        .or_else(|_| {
                            AhoCorasickBuilder::new()
                                .match_kind(MatchKind::LeftmostLongest)
                                .build(&patterns)
                        })
                        .expect("literal patterns always build without a size limit"),
                ),
            }
        });
        let rule_reach = self.scanner.as_ref().map_or(0, |s| {
            s.rules()
                .iter()
                .filter_map(|r| r.max_match_len())
                .max()
                .unwrap_or(0)
        });
        let overlap = (longest + 1)
            .max(rule_reach.min(64 << 10) + 1)
            .max(MIN_OVERLAP);
        let max_window = self.max_window.max(overlap * 2);
        let redactor = Redactor {
            scanner: self.scanner,
            automaton,
            pattern_label,
            pattern_enc,
            labels,
            mask: self.mask,
            read_size: self.read_size,
            max_window,
            overlap,
        };
        (redactor, warnings)
    }
}

/// The searcher over every encoded form of the known values.
enum KnownForms {
    /// SIMD multi-literal search, for small sets.
    Packed(aho_corasick::packed::Searcher),
    /// Byte-at-a-time DFA, for any size.
    Dfa(AhoCorasick),
}

impl KnownForms {
    /// Leftmost-longest occurrences: (pattern, start, end).
    fn for_each(&self, hay: &[u8], mut f: impl FnMut(usize, usize, usize)) {
        match self {
            KnownForms::Packed(p) => {
                for m in p.find_iter(hay) {
                    f(m.pattern().as_usize(), m.start(), m.end());
                }
            }
            KnownForms::Dfa(ac) => {
                for m in ac.find_iter(hay) {
                    f(m.pattern().as_usize(), m.start(), m.end());
                }
            }
        }
    }
}

/// A compiled redaction filter. Build with [`RedactorBuilder`].
pub struct Redactor {
    scanner: Option<Scanner>,
    /// Every form of every known value.
    automaton: Option<KnownForms>,
    pattern_label: Vec<usize>,
    /// How the mask of each pattern is written (UTF-16 forms get a UTF-16 mask).
    pattern_enc: Vec<Enc>,
    labels: Vec<String>,
    mask: MaskStyle,
    read_size: usize,
    max_window: usize,
    overlap: usize,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field(
                "rules",
                &self.scanner.as_ref().map_or(0, |s| s.rules().len()),
            )
            .field("known_values", &self.labels.len())
            .field("known_forms", &self.pattern_label.len())
            .field("overlap", &self.overlap)
            .field(
                "automaton",
                &self.automaton.as_ref().map(|a| match a {
                    KnownForms::Packed(_) => "packed",
                    KnownForms::Dfa(_) => "dfa",
                }),
            )
            .finish()
    }
}

/// What a masked range is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Label {
    Rule(usize),
    Known(usize),
    PrivateKey,
}

/// How a mask is written over a masked range: as bytes, or as UTF-16 in
/// the byte order of the text it replaces (so the rest of a UTF-16 stream
/// stays aligned).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Enc {
    Bytes,
    Utf16Le,
    Utf16Be,
}

/// A range to mask, what it is, and how to write its mask.
type Span = (Range<usize>, Label, Enc);

/// Streaming state that outlives one window.
#[derive(Debug, Default)]
struct PemState {
    /// Inside a PEM private key body.
    open: bool,
    /// Body lines masked in the current block (a safety cap).
    lines: usize,
}

/// Longest PEM body tracked before the block is considered closed (an
/// RSA-16384 key is about 250 lines).
const PEM_MAX_LINES: usize = 512;

impl Redactor {
    /// The overlap kept between windows of one long line.
    pub fn overlap(&self) -> usize {
        self.overlap
    }

    /// Redact all of `data` in memory (tests, small inputs).
    pub fn redact_bytes(&self, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len());
        self.redact_stream(data, &mut out)
            .expect("in-memory IO does not fail");
        out
    }

    /// Copy `r` to `w`, masking secrets, flushing `w` after every round
    /// (one read). See the module docs for the windowing.
    pub fn redact_stream<R: Read, W: Write>(&self, mut r: R, mut w: W) -> io::Result<RedactStats> {
        let mut stats = RedactStats::default();
        // buf = [context (already emitted) | pending]
        let mut buf: Vec<u8> = Vec::with_capacity(self.read_size + CONTEXT + 4096);
        let mut ctx_len = 0usize;
        let mut pem = PemState::default();
        let mut ranges: Vec<Span> = Vec::new();
        loop {
            let before = buf.len();
            buf.resize(before + self.read_size, 0);
            let n = loop {
                match r.read(&mut buf[before..]) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        buf.truncate(before);
                        return Err(e);
                    }
                }
            };
            buf.truncate(before + n);
            stats.bytes_in += n as u64;
            let eof = n == 0;
            let pending = buf.len() - ctx_len;
            if pending == 0 {
                if eof {
                    break;
                }
                continue;
            }
            // How far this round may emit.
            let mut safe_end = if eof {
                buf.len()
            } else {
                match memchr::memrchr(b'\n', &buf[ctx_len..]) {
                    Some(i) => ctx_len + i + 1,
                    None => ctx_len,
                }
            };
            if !eof && buf.len() - safe_end > self.max_window {
                safe_end = buf.len() - self.overlap;
            }
            if safe_end == ctx_len {
                continue;
            }
            ranges.clear();
            self.collect(&buf, ctx_len, safe_end, &mut pem, &mut ranges);
            // A masked range that starts before the emit point is emitted
            // whole: it is masked, so what follows it is not needed to
            // decide anything.
            for (range, _, _) in &ranges {
                if range.start < safe_end && range.end > safe_end {
                    safe_end = range.end;
                }
            }
            self.emit(&buf[..safe_end], ctx_len, &ranges, &mut w, &mut stats)?;
            w.flush()?;
            // Keep CONTEXT bytes of emitted input before the pending rest.
            let keep_from = safe_end.saturating_sub(CONTEXT);
            buf.drain(..keep_from);
            ctx_len = safe_end - keep_from;
            if eof && ctx_len == buf.len() {
                break;
            }
        }
        w.flush()?;
        Ok(stats)
    }

    /// Every range to mask that ends after `from` (the first pending byte),
    /// sorted and merged; starts are clipped to `from`.
    ///
    /// Besides the bytes as they are, two views are searched when they can
    /// hide a secret from a byte search: the text without its ANSI escape
    /// sequences (a secret split by colour codes), and the two UTF-16
    /// alignments narrowed to one byte per code unit (a secret written in
    /// UTF-16). A match in a view is mapped back to the original bytes it
    /// spans, escape sequences or zero bytes included.
    fn collect(
        &self,
        buf: &[u8],
        from: usize,
        safe_end: usize,
        pem: &mut PemState,
        out: &mut Vec<Span>,
    ) {
        self.find_all(buf, true, |r, label, enc| {
            if r.end > from {
                out.push((r.start.max(from)..r.end, label, enc));
            }
        });
        if memchr::memchr(0x1b, buf).is_some() {
            let (view, map) = strip_ansi(buf);
            self.find_all(&view, true, |r, label, enc| {
                let (start, end) = (map[r.start], map[r.end - 1] + 1);
                if end > from {
                    out.push((start.max(from)..end, label, enc));
                }
            });
        }
        if memchr::memchr(0, buf).is_some() {
            for parity in 0..2 {
                let view = narrow_utf16(buf, parity);
                // Rules only: known values have exact UTF-16 forms.
                self.find_all(&view, false, |r, label, _| {
                    let start = parity + 2 * r.start;
                    let end = (parity + 2 * r.end).min(buf.len());
                    if end > from {
                        out.push((start.max(from)..end, label, Enc::Utf16Le));
                    }
                });
            }
        }
        pem_ranges(buf, from, safe_end, pem, out);
        if out.len() > 1 {
            out.sort_by_key(|(r, _, _)| (r.start, std::cmp::Reverse(r.end)));
            let mut merged: Vec<Span> = Vec::with_capacity(out.len());
            for (r, l, e) in out.drain(..) {
                match merged.last_mut() {
                    Some((last, _, _)) if r.start <= last.end => last.end = last.end.max(r.end),
                    _ => merged.push((r, l, e)),
                }
            }
            *out = merged;
        }
    }

    /// Rule matches in `hay`, and with `known` the known forms (non-empty
    /// ranges).
    fn find_all(&self, hay: &[u8], known: bool, mut f: impl FnMut(Range<usize>, Label, Enc)) {
        if let Some(ac) = self.automaton.as_ref().filter(|_| known) {
            ac.for_each(hay, |pattern, s, e| {
                if e > s {
                    f(
                        s..e,
                        Label::Known(self.pattern_label[pattern]),
                        self.pattern_enc[pattern],
                    );
                }
            });
        }
        if let Some(scanner) = &self.scanner {
            for m in scanner.find_matches(None, hay) {
                if m.secret.end > m.secret.start {
                    f(m.secret.clone(), Label::Rule(m.rule), Enc::Bytes);
                }
            }
        }
    }

    fn emit<W: Write>(
        &self,
        data: &[u8],
        from: usize,
        ranges: &[Span],
        w: &mut W,
        stats: &mut RedactStats,
    ) -> io::Result<()> {
        let mut pos = from;
        for (range, label, enc) in ranges {
            if range.start >= data.len() {
                break;
            }
            w.write_all(&data[pos..range.start])?;
            stats.bytes_out += (range.start - pos) as u64;
            let n = self.write_mask(w, *label, *enc)?;
            stats.bytes_out += n as u64;
            stats.masked += 1;
            pos = range.end.min(data.len());
        }
        w.write_all(&data[pos..])?;
        stats.bytes_out += (data.len() - pos) as u64;
        Ok(())
    }

    fn write_mask<W: Write>(&self, w: &mut W, label: Label, enc: Enc) -> io::Result<usize> {
        let text = match &self.mask {
            MaskStyle::Fixed(text) => text.clone(),
            MaskStyle::Labeled => {
                let name = match label {
                    Label::Rule(ri) => self
                        .scanner
                        .as_ref()
                        .map_or("secret", |s| s.rules()[ri].id()),
                    Label::Known(li) => self.labels[li].as_str(),
                    Label::PrivateKey => "private-key",
                };
                format!("[REDACTED:{name}]")
            }
        };
        let bytes: Vec<u8> = match enc {
            Enc::Bytes => text.into_bytes(),
            Enc::Utf16Le => text.encode_utf16().flat_map(u16::to_le_bytes).collect(),
            Enc::Utf16Be => text.encode_utf16().flat_map(u16::to_be_bytes).collect(),
        };
        w.write_all(&bytes)?;
        Ok(bytes.len())
    }
}

/// `buf` without its ANSI escape sequences, and for each byte kept its
/// index in `buf`.
fn strip_ansi(buf: &[u8]) -> (Vec<u8>, Vec<usize>) {
    let mut view = Vec::with_capacity(buf.len());
    let mut map = Vec::with_capacity(buf.len());
    let mut i = 0;
    while i < buf.len() {
        if buf[i] == 0x1b {
            i = keytrail_input::log::escape_end(buf, i).max(i + 1);
        } else {
            view.push(buf[i]);
            map.push(i);
            i += 1;
        }
    }
    (view, map)
}

/// The UTF-16 code units of `buf` starting at byte `parity`, read
/// little-endian, narrowed to one byte each: the low byte when the high
/// byte is zero (ASCII and Latin-1 text), a zero byte otherwise (which no
/// secret contains, so a match never spans it). Byte `i` of the view is
/// bytes `parity + 2i ..= parity + 2i + 1` of `buf`; big-endian text is the
/// other parity.
fn narrow_utf16(buf: &[u8], parity: usize) -> Vec<u8> {
    buf.get(parity..)
        .unwrap_or(&[])
        .chunks_exact(2)
        .map(|u| if u[1] == 0 { u[0] } else { 0 })
        .collect()
}

/// Mask the body lines of PEM private key blocks among the complete lines
/// of `buf[from..safe_end]` (and a trailing partial line inside a block).
fn pem_ranges(buf: &[u8], from: usize, safe_end: usize, pem: &mut PemState, out: &mut Vec<Span>) {
    let region = &buf[from..safe_end];
    // Fast path: nothing open and no marker in sight.
    if !pem.open && memchr::memmem::find(region, b"-----BEGIN").is_none() {
        return;
    }
    let mut pos = from;
    while pos < safe_end {
        let end = memchr::memchr(b'\n', &buf[pos..safe_end]).map_or(safe_end, |i| pos + i);
        let line = &buf[pos..end];
        let content = line.strip_suffix(b"\r").unwrap_or(line);
        if pem.open {
            if memchr::memmem::find(content, b"-----END").is_some() || pem.lines >= PEM_MAX_LINES {
                pem.open = false;
            } else {
                let t = content.trim_ascii();
                if !t.is_empty() {
                    let lead = content.len() - content.trim_ascii_start().len();
                    out.push((
                        pos + lead..pos + lead + t.len(),
                        Label::PrivateKey,
                        Enc::Bytes,
                    ));
                }
                pem.lines += 1;
            }
        } else if let Some(b) = memchr::memmem::find(content, b"-----BEGIN") {
            let rest = &content[b..];
            let header_end = memchr::memmem::find(&rest[10..], b"-----").map(|i| 10 + i + 5);
            if let Some(he) = header_end
                && memchr::memmem::find(&rest[..he], b"PRIVATE KEY").is_some()
                && rest[he..].trim_ascii().is_empty()
                && end < safe_end
            {
                pem.open = true;
                pem.lines = 0;
            }
        }
        pos = end + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(value: &str) -> Redactor {
        RedactorBuilder::new()
            .known("env:TOKEN", Secret::new(value.as_bytes().to_vec()))
            .read_size(3)
            .build()
            .0
    }

    #[test]
    fn masks_known_value_split_across_tiny_reads() {
        let r = known("hunter2-is-long-enough");
        let out = r.redact_bytes(b"login with hunter2-is-long-enough ok\nnext\n");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "login with [REDACTED:env:TOKEN] ok\nnext\n"
        );
    }

    #[test]
    fn incomplete_last_line_is_emitted_at_eof() {
        let r = known("abcdefgh1234");
        let out = r.redact_bytes(b"x abcdefgh1234");
        assert_eq!(out, b"x [REDACTED:env:TOKEN]");
    }

    #[test]
    fn fixed_mask_text() {
        let (r, _) = RedactorBuilder::new()
            .known("k", Secret::new(b"abcdefgh1234".to_vec()))
            .mask(MaskStyle::Fixed("***".into()))
            .build();
        assert_eq!(r.redact_bytes(b"[abcdefgh1234]"), b"[***]");
    }

    #[test]
    fn short_values_are_refused_with_a_warning_that_omits_them() {
        let (_, warnings) = RedactorBuilder::new()
            .known("env:SHORT", Secret::new(b"ab\n".to_vec()))
            .build();
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].starts_with("env:SHORT"));
        assert!(!warnings[0].contains("ab\n"));
    }

    #[test]
    fn pem_body_lines_masked_when_lines_arrive_separately() {
        let r = RedactorBuilder::new().read_size(7).build().0;
        let text = "before\n-----BEGIN RSA PRIVATE KEY-----\nMIIEabcdefghijkl\n  QUJDREVGR0hJSktM\n-----END RSA PRIVATE KEY-----\nafter\n";
        let out = String::from_utf8(r.redact_bytes(text.as_bytes())).unwrap();
        assert_eq!(
            out,
            "before\n-----BEGIN RSA PRIVATE KEY-----\n[REDACTED:private-key]\n  [REDACTED:private-key]\n-----END RSA PRIVATE KEY-----\nafter\n"
        );
    }
}

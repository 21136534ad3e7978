//! The matcher: one Aho-Corasick automaton over every rule's keywords finds
//! candidate positions ([`crate::keywords`]); each rule's regex then runs only on bounded windows
//! around its keywords' hits.
//!
//! # Windows
//!
//! A rule's keyword lies inside its match or at most [`KEYWORD_LEAD`] bytes
//! before it (the rule-file contract). For a keyword hit at `k..k+len` the
//! rule's match therefore lies within
//! `k - max_len .. k + len + KEYWORD_LEAD + max_len`, where `max_len` is the
//! longest match the pattern allows (from its HIR), capped for unbounded
//! patterns. Windows are widened to line boundaries (within
//! [`LINE_WIDEN`] bytes) so a single-line secret is never cut by a window
//! edge, and the regex runs on the window as a *span* of the whole buffer,
//! so `\b` and `^` see the real neighbouring bytes.
//!
//! Per rule, windows are merged while the hits arrive (hits come in
//! increasing order), and a merged window is searched once when the next
//! hit falls beyond it. A later window never starts before the end of an
//! already-searched one, so a match is never reported twice.
//!
//! # Candidates
//!
//! Every regex match then goes through, in order: the rule's validator,
//! its minimum entropy, the precision filters ([`crate::filters`]) and the
//! inline allow comments ([`crate::allow`]). Survivors are [`RawMatch`]es.

use crate::allow;
use crate::filters::{Candidate, shannon_entropy};
use crate::keywords::KeywordMatcher;
use crate::rule::{CompiledRule, compile};
use keytrail_rules::Rule;
use keytrail_types::Diagnostic;
use regex_automata::Input;
use regex_automata::util::captures::Captures;
use std::collections::HashMap;
use std::ops::Range;

/// How far before a match a keyword may be (rule-file contract).
pub const KEYWORD_LEAD: usize = 256;
/// Window reach for patterns without a maximum length (`.*`, `+`): enough
/// for a PEM-armoured RSA-4096 private key.
pub const UNBOUNDED_REACH: usize = 8 << 10;
/// How far before its keyword a line-oriented match may start (beyond the
/// start of the keyword's line): room for a long key name before `token`.
pub const LINE_ORIENTED_BACK: usize = 128;
/// Longest bounded pattern whose exact maximum length is used as reach.
pub const BOUNDED_REACH: usize = 16 << 10;
/// How far a window is widened to reach the start or end of its line.
pub const LINE_WIDEN: usize = 512;
/// Bytes of a line examined around a secret for filters and allow comments.
pub(crate) const LINE_CONTEXT: usize = 4 << 10;

/// Default streaming chunk size for [`Scanner::scan_reader`](crate::Scanner::scan_reader).
pub const DEFAULT_CHUNK: usize = 8 << 20;
/// Default overlap between consecutive chunks.
pub const DEFAULT_OVERLAP: usize = 64 << 10;

/// One accepted match of one rule in a buffer: byte ranges into the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawMatch {
    /// Index of the rule in [`Scanner::rules`].
    pub rule: usize,
    /// Byte range of the secret.
    pub secret: Range<usize>,
    /// Byte range of the whole regex match.
    pub whole: Range<usize>,
    /// Named context captures: (index into the rule's context groups, range).
    pub context: Vec<(usize, Range<usize>)>,
    /// Validator note (`checksum valid`), if any.
    pub note: Option<String>,
}

/// A compiled rule set with its keyword prefilter.
#[derive(Debug)]
pub struct Scanner {
    pub(crate) rules: Vec<CompiledRule>,
    prefilter: Option<KeywordMatcher>,
    /// For each prefilter pattern, the rules owning that keyword.
    keyword_rules: Vec<Vec<u32>>,
    /// The rules limited to some file names (`paths`), checked once per blob.
    path_rules: Vec<usize>,
    /// Per rule: (bytes before a keyword, bytes after its end) a match may reach.
    reach: Vec<(usize, usize)>,
    pub(crate) chunk: usize,
    pub(crate) overlap: usize,
    /// Whether encoded values are decoded and scanned ([`crate::decode`]).
    pub(crate) decode: bool,
}

/// Per-rule state during one buffer scan.
#[derive(Clone, Default)]
struct RuleState {
    pending: Option<(usize, usize)>,
    done_until: usize,
}

impl Scanner {
    /// Compile rules. A rule whose pattern does not compile, that has no
    /// usable keyword, or names an unknown validator is dropped with a
    /// diagnostic; the rest still work.
    pub fn new(rules: Vec<Rule>) -> (Scanner, Vec<Diagnostic>) {
        let mut compiled = Vec::with_capacity(rules.len());
        let mut diags = Vec::new();
        for rule in rules {
            if rule.syntax.keywords.iter().all(|k| k.trim().is_empty())
                && rule.syntax.paths.is_empty()
            {
                diags.push(Diagnostic::error(
                    "rule_invalid",
                    &rule.origin,
                    format!("rule `{}`: needs at least one keyword", rule.id()),
                ));
                continue;
            }
            match compile(rule) {
                Ok(c) => compiled.push(c),
                Err(d) => diags.push(d),
            }
        }
        let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
        let mut patterns: Vec<Vec<u8>> = Vec::new();
        let mut keyword_rules: Vec<Vec<u32>> = Vec::new();
        for (ri, r) in compiled.iter().enumerate() {
            for kw in &r.rule.syntax.keywords {
                if kw.is_empty() {
                    continue;
                }
                let key = kw.as_bytes().to_ascii_lowercase();
                let pi = *index.entry(key.clone()).or_insert_with(|| {
                    patterns.push(key);
                    keyword_rules.push(Vec::new());
                    patterns.len() - 1
                });
                if !keyword_rules[pi].contains(&(ri as u32)) {
                    keyword_rules[pi].push(ri as u32);
                }
            }
        }
        let prefilter = if patterns.is_empty() {
            None
        } else {
            match KeywordMatcher::new(&patterns) {
                Ok(m) => Some(m),
                Err(e) => {
                    diags.push(Diagnostic::error(
                        "rule_invalid",
                        "keywords",
                        format!("keyword prefilter does not build: {e}"),
                    ));
                    None
                }
            }
        };
        let reach = compiled.iter().map(reach_of).collect();
        let path_rules = (0..compiled.len())
            .filter(|&i| !compiled[i].paths.is_empty())
            .collect();
        let scanner = Scanner {
            rules: compiled,
            prefilter,
            keyword_rules,
            path_rules,
            reach,
            chunk: DEFAULT_CHUNK,
            overlap: DEFAULT_OVERLAP,
            decode: true,
        };
        (scanner, diags)
    }

    /// The same scanner with another streaming chunk size and overlap (in
    /// bytes) for [`Scanner::scan_reader`]. The overlap is clamped to at
    /// most a quarter of the chunk; matches longer than half the overlap
    /// may be missed across a chunk boundary.
    pub fn with_chunking(mut self, chunk: usize, overlap: usize) -> Scanner {
        self.chunk = chunk.max(64);
        self.overlap = overlap.clamp(2, self.chunk / 4).max(2) & !1;
        self
    }

    /// The same scanner with decoding of encoded values
    /// ([`crate::decode`]) on or off (on by default).
    pub fn with_decoding(mut self, on: bool) -> Scanner {
        self.decode = on;
        self
    }

    /// The compiled rules.
    pub fn rules(&self) -> &[CompiledRule] {
        &self.rules
    }

    /// Find every accepted match in `data`, sorted by secret offset then
    /// rule. `path` (when known) lets path-aware filters (lockfiles) work.
    pub fn find_matches(&self, path: Option<&str>, data: &[u8]) -> Vec<RawMatch> {
        self.find_windowed(path, data, true)
    }

    /// Number of bare regex matches (no prefilter, validator or filter):
    /// what the rule would find on its own. For rule checking.
    pub(crate) fn find_matches_unfiltered(&self, data: &[u8]) -> usize {
        let mut out = Vec::new();
        for ri in 0..self.rules.len() {
            self.search_window(
                ri,
                None,
                data,
                (0, data.len()),
                0,
                &mut None,
                false,
                &mut out,
            );
        }
        out.len()
    }

    /// Number of regex matches inside the prefilter windows, without
    /// validators or filters. For rule checking.
    pub(crate) fn find_matches_windowed_unfiltered(
        &self,
        path: Option<&str>,
        data: &[u8],
    ) -> usize {
        self.find_windowed(path, data, false).len()
    }

    fn find_windowed(&self, path: Option<&str>, data: &[u8], filtered: bool) -> Vec<RawMatch> {
        let mut out = Vec::new();
        // Rules limited to file names: off unless this blob's path is one
        // of them; those without keywords run once over the whole blob.
        let mut off = Vec::new();
        let mut whole = Vec::new();
        let parts = match path {
            Some(p) if !self.path_rules.is_empty() => Some(crate::rule::path_components(p)),
            _ => None,
        };
        for &ri in &self.path_rules {
            let r = &self.rules[ri];
            let applies = match &parts {
                Some(parts) => r.applies_to_components(parts),
                None => r.applies_to(path),
            };
            if !applies {
                off.push(ri);
            } else if r.whole_file() {
                whole.push(ri);
            }
        }
        for &ri in &whole {
            let mut caps = None;
            self.search_window(
                ri,
                path,
                data,
                (0, data.len()),
                0,
                &mut caps,
                filtered,
                &mut out,
            );
        }
        let Some(ac) = &self.prefilter else {
            out.sort_by_key(|m| (m.secret.start, m.rule));
            return out;
        };
        let mut states = vec![RuleState::default(); self.rules.len()];
        let mut caps: Vec<Option<Captures>> = (0..self.rules.len()).map(|_| None).collect();
        // Search one merged window of rule `ri`; returns how far it searched.
        let mut search = |ri: usize, window, floor| {
            self.search_window(
                ri,
                path,
                data,
                window,
                floor,
                &mut caps[ri],
                filtered,
                &mut out,
            )
        };
        ac.for_each_block(data, |hits| {
            for hit in hits {
                for &ri in &self.keyword_rules[hit.pattern as usize] {
                    let ri = ri as usize;
                    if !off.is_empty() && off.contains(&ri) {
                        continue;
                    }
                    let (back, fwd) = self.reach[ri];
                    let start = hit.start.saturating_sub(back);
                    let end = (hit.end + fwd).min(data.len());
                    let st = &mut states[ri];
                    match st.pending {
                        // Overlapping: extend the pending window.
                        Some((ps, pe)) if start <= pe => {
                            st.pending = Some((ps.min(start), pe.max(end)));
                        }
                        Some(window) => {
                            st.done_until = search(ri, window, st.done_until);
                            st.pending = Some((start, end));
                        }
                        None => st.pending = Some((start, end)),
                    }
                }
            }
        });
        for (ri, st) in states.iter_mut().enumerate() {
            if let Some(window) = st.pending.take() {
                search(ri, window, st.done_until);
            }
        }
        out.sort_by_key(|m| (m.secret.start, m.rule));
        out
    }

    /// Run rule `ri` over `data[window]` and push accepted matches (all
    /// matches when not `filtered`).
    #[allow(clippy::too_many_arguments)]
    fn search_window(
        &self,
        ri: usize,
        path: Option<&str>,
        data: &[u8],
        (start, end): (usize, usize),
        floor: usize,
        caps: &mut Option<Captures>,
        filtered: bool,
        out: &mut Vec<RawMatch>,
    ) -> usize {
        // Widen to whole lines here, once per merged window, rather than
        // per hit; never back over an already-searched region.
        let start = widen_back(data, start).max(floor);
        let end = widen_forward(data, end);
        if start >= end {
            return end.max(floor);
        }
        let rule = &self.rules[ri];
        let caps = caps.get_or_insert_with(|| rule.regex.create_captures());
        let mut input = Input::new(data).span(start..end);
        loop {
            // The forward DFA alone answers "no match" (the common case)
            // without touching the capture engines.
            if rule.regex.search_half(&input).is_none() {
                break;
            }
            rule.regex.search_captures(&input, caps);
            let Some(m) = caps.get_match() else { break };
            if let Some(secret) = caps.get_group(rule.secret_group)
                && !secret.is_empty()
            {
                if !filtered {
                    out.push(RawMatch {
                        rule: ri,
                        secret: secret.range(),
                        whole: m.range(),
                        context: Vec::new(),
                        note: None,
                    });
                } else if let Some(raw) =
                    self.accept(ri, path, data, secret.range(), m.range(), caps)
                {
                    out.push(raw);
                }
            }
            let next = if m.is_empty() { m.end() + 1 } else { m.end() };
            if next >= end {
                break;
            }
            input.set_start(next);
        }
        end
    }

    /// Validator, entropy, filters and allow comments for one match.
    fn accept(
        &self,
        ri: usize,
        path: Option<&str>,
        data: &[u8],
        secret: Range<usize>,
        whole: Range<usize>,
        caps: &Captures,
    ) -> Option<RawMatch> {
        let rule = &self.rules[ri];
        let s = &data[secret.clone()];
        let note = match rule.validator {
            Some(v) => v.check(s, &data[whole.clone()]).ok()?,
            None => None,
        };
        if rule.max_length.is_some_and(|max| s.len() > max) {
            return None;
        }
        if let Some(min) = rule.min_entropy
            && shannon_entropy(s) < min
        {
            return None;
        }
        let (line_start, line_end) = line_bounds(data, secret.start, LINE_CONTEXT);
        let before_start = line_start.max(secret.start.saturating_sub(KEYWORD_LEAD));
        let lower = s.to_ascii_lowercase();
        let cand = Candidate {
            secret: s,
            lower: &lower,
            before: &data[before_start..secret.start],
            line: &data[line_start..line_end.max(line_start)],
            path,
        };
        if rule.filters.drops(&cand).is_some() {
            return None;
        }
        if allow::is_allowed(data, secret.clone()) {
            return None;
        }
        let context = rule
            .context_groups
            .iter()
            .enumerate()
            .filter_map(|(ci, (_, gi))| caps.get_group(*gi).map(|g| (ci, g.range())))
            .collect();
        Some(RawMatch {
            rule: ri,
            secret,
            whole,
            context,
            note,
        })
    }
}

/// How far (before a keyword, after its end) a rule's match can reach.
///
/// Bounded patterns (up to [`BOUNDED_REACH`]) get their exact maximum
/// length, so no match is ever cut. Unbounded patterns whose unbounded
/// parts can cross lines (PEM blocks) reach [`UNBOUNDED_REACH`] forward.
/// Other unbounded patterns are line-oriented (`key\s*=\s*"[^"]+"`): they
/// reach [`LINE_ORIENTED_BACK`] back and [`KEYWORD_LEAD`] forward, and
/// every window is then widened to whole lines.
fn reach_of(r: &CompiledRule) -> (usize, usize) {
    match r.max_len {
        Some(l) if l <= BOUNDED_REACH => (l, KEYWORD_LEAD + l),
        _ if r.multiline => (LINE_WIDEN, KEYWORD_LEAD + UNBOUNDED_REACH),
        _ => (LINE_ORIENTED_BACK, KEYWORD_LEAD),
    }
}

/// Start of the line containing `pos` if within [`LINE_WIDEN`] bytes, else `pos`.
fn widen_back(data: &[u8], pos: usize) -> usize {
    let lo = pos.saturating_sub(LINE_WIDEN);
    match memchr::memrchr(b'\n', &data[lo..pos]) {
        Some(i) => lo + i + 1,
        None if lo == 0 => 0,
        None => pos,
    }
}

/// End of the line containing `pos` (after its `\n`) if within
/// [`LINE_WIDEN`] bytes, else `pos`.
fn widen_forward(data: &[u8], pos: usize) -> usize {
    let hi = (pos + LINE_WIDEN).min(data.len());
    match memchr::memchr(b'\n', &data[pos..hi]) {
        Some(i) => pos + i + 1,
        None if hi == data.len() => hi,
        None => pos,
    }
}

/// The line around `pos` (excluding its `\n`), cut to `cap` bytes each side.
pub(crate) fn line_bounds(data: &[u8], pos: usize, cap: usize) -> (usize, usize) {
    let pos = pos.min(data.len());
    let lo = pos.saturating_sub(cap);
    let start = memchr::memrchr(b'\n', &data[lo..pos]).map_or(lo, |i| lo + i + 1);
    let hi = (pos + cap).min(data.len());
    let end = memchr::memchr(b'\n', &data[pos..hi]).map_or(hi, |i| pos + i);
    (start, end)
}

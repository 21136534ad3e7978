//! The keyword pass: every occurrence of every rule keyword (ASCII
//! case-insensitive, overlapping) in a buffer.
//!
//! Hundreds of keywords defeat SIMD literal prefilters, so the pass is a
//! byte-at-a-time Aho-Corasick DFA walk. A single walk is bound by the
//! latency of one table load per byte (each step needs the previous state).
//! [`KeywordMatcher`] therefore walks [`LANES`] independent slices of a
//! block in lockstep: the loads of different lanes overlap in the CPU, so
//! the pass runs several times faster than one walk over the same bytes.
//!
//! # Lanes
//!
//! A block is cut into lanes `[s, e)`. A lane's walk starts fresh at `s`
//! and continues `max_len - 1` bytes past `e`, and it reports exactly the
//! occurrences that *start* in `[s, e)`: a fresh walk from `s` sees every
//! occurrence starting at or after `s`, and an occurrence starting before
//! `e` ends before `e + max_len`. Every occurrence is therefore reported
//! once, by the lane holding its first byte.

use aho_corasick::automaton::Automaton;
use aho_corasick::automaton::StateID;
use aho_corasick::dfa::DFA;
use aho_corasick::{Anchored, MatchKind};

/// Independent walks interleaved per block.
pub const LANES: usize = 4;
/// Bytes per block (all lanes together).
const BLOCK: usize = 64 << 10;
/// Below this many bytes a buffer is walked in a single lane.
const MIN_LANED: usize = 4 << 10;

/// One keyword occurrence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    /// Index of the keyword (pattern) that occurred.
    pub pattern: u32,
    /// Byte offset of its first byte.
    pub start: usize,
    /// Byte offset just past its last byte.
    pub end: usize,
}

/// A compiled keyword set.
#[derive(Debug)]
pub struct KeywordMatcher {
    engine: Engine,
    max_len: usize,
}

/// The automaton walked: a DFA, or for keyword sets too large for one, a
/// contiguous NFA (slower, same answers).
#[derive(Debug)]
enum Engine {
    Dfa(DFA),
    Nfa(aho_corasick::nfa::contiguous::NFA),
}

impl KeywordMatcher {
    /// Compile keywords (matched ASCII case-insensitively).
    pub fn new<P: AsRef<[u8]>>(patterns: &[P]) -> Result<KeywordMatcher, String> {
        let engine = match aho_corasick::dfa::Builder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .prefilter(false)
            .build(patterns)
        {
            Ok(dfa) => Engine::Dfa(dfa),
            Err(_) => Engine::Nfa(
                aho_corasick::nfa::contiguous::Builder::new()
                    .ascii_case_insensitive(true)
                    .match_kind(MatchKind::Standard)
                    .prefilter(false)
                    .build(patterns)
                    .map_err(|e| e.to_string())?,
            ),
        };
        let max_len = patterns
            .iter()
            .map(|p| p.as_ref().len())
            .max()
            .unwrap_or(1)
            .max(1);
        Ok(KeywordMatcher { engine, max_len })
    }

    /// Every occurrence in `hay`, in order of end offset (then pattern).
    pub fn find_all(&self, hay: &[u8]) -> Vec<Hit> {
        let mut out = Vec::new();
        self.for_each_block(hay, |hits| out.extend_from_slice(hits));
        out
    }

    /// Calls `f` with the occurrences of each consecutive block of `hay`,
    /// each batch sorted by end offset (then pattern). Batches come in
    /// order; an occurrence near a block edge may end a few bytes after the
    /// first occurrence of the next batch ends.
    pub fn for_each_block(&self, hay: &[u8], mut f: impl FnMut(&[Hit])) {
        let mut hits = Vec::new();
        let mut at = 0;
        while at < hay.len() {
            let end = (at + BLOCK).min(hay.len());
            hits.clear();
            let laned = end - at >= MIN_LANED;
            match &self.engine {
                Engine::Dfa(a) => self.walk(a, laned, hay, at, end, &mut hits),
                Engine::Nfa(a) => self.walk(a, laned, hay, at, end, &mut hits),
            }
            if laned {
                hits.sort_unstable_by_key(|h| (h.end, h.pattern));
            }
            if !hits.is_empty() {
                f(&hits);
            }
            at = end;
        }
    }

    /// Push the occurrences at state `sid` after the byte at `pos`, keeping
    /// those that start before `limit`.
    #[inline(always)]
    fn emit<A: Automaton>(aut: &A, sid: StateID, pos: usize, limit: usize, out: &mut Vec<Hit>) {
        let end = pos + 1;
        for i in 0..aut.match_len(sid) {
            let pid = aut.match_pattern(sid, i);
            let start = end - aut.pattern_len(pid);
            if start < limit {
                out.push(Hit {
                    pattern: pid.as_u32(),
                    start,
                    end,
                });
            }
        }
    }

    /// Walk `[s, e)` with `aut`, in lanes or in one.
    fn walk<A: Automaton>(
        &self,
        aut: &A,
        laned: bool,
        hay: &[u8],
        s: usize,
        e: usize,
        out: &mut Vec<Hit>,
    ) {
        // An unanchored start state always exists.
        let Ok(start) = aut.start_state(Anchored::No) else {
            return;
        };
        if laned {
            self.walk_laned(aut, start, hay, s, e, out);
        } else {
            self.walk_one(aut, start, hay, s, e, out);
        }
    }

    /// One walk over `[s, e)` plus its tail.
    fn walk_one<A: Automaton>(
        &self,
        aut: &A,
        start: StateID,
        hay: &[u8],
        s: usize,
        e: usize,
        out: &mut Vec<Hit>,
    ) {
        let stop = (e + self.max_len - 1).min(hay.len());
        Self::walk_from(aut, start, hay, s..stop, e, out);
    }

    /// Continue a walk in state `sid` over `hay[range]`, reporting the
    /// occurrences that start before `limit`.
    #[inline(always)]
    fn walk_from<A: Automaton>(
        aut: &A,
        mut sid: StateID,
        hay: &[u8],
        range: std::ops::Range<usize>,
        limit: usize,
        out: &mut Vec<Hit>,
    ) {
        let from = range.start;
        for (pos, &b) in (from..).zip(&hay[range]) {
            sid = aut.next_state(Anchored::No, sid, b);
            if aut.is_special(sid) && aut.is_match(sid) {
                Self::emit(aut, sid, pos, limit, out);
            }
        }
    }

    /// [`LANES`] walks over equal slices of `[s, e)` in lockstep, then each
    /// lane's tail on its own.
    fn walk_laned<A: Automaton>(
        &self,
        aut: &A,
        start: StateID,
        hay: &[u8],
        s: usize,
        e: usize,
        out: &mut Vec<Hit>,
    ) {
        let len = (e - s) / LANES;
        let starts: [usize; LANES] = std::array::from_fn(|l| s + l * len);
        let ends: [usize; LANES] =
            std::array::from_fn(|l| if l + 1 == LANES { e } else { s + (l + 1) * len });
        let lanes: [&[u8]; LANES] = std::array::from_fn(|l| &hay[starts[l]..starts[l] + len]);
        let mut sids = [start; LANES];
        #[allow(clippy::needless_range_loop)] // lockstep over LANES slices
        for k in 0..len {
            for l in 0..LANES {
                let sid = aut.next_state(Anchored::No, sids[l], lanes[l][k]);
                sids[l] = sid;
                if aut.is_special(sid) && aut.is_match(sid) {
                    Self::emit(aut, sid, starts[l] + k, ends[l], out);
                }
            }
        }
        // Tails: the rest of the last lane's slice, then up to
        // `max_len - 1` bytes past each lane's end.
        for l in 0..LANES {
            let stop = (ends[l] + self.max_len - 1).min(hay.len());
            Self::walk_from(aut, sids[l], hay, starts[l] + len..stop, ends[l], out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aho_corasick::AhoCorasickBuilder;

    /// The reference: aho-corasick's own overlapping search.
    fn reference(patterns: &[&str], hay: &[u8]) -> Vec<Hit> {
        let ac = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .build(patterns)
            .unwrap();
        let mut v: Vec<Hit> = ac
            .find_overlapping_iter(hay)
            .map(|m| Hit {
                pattern: m.pattern().as_u32(),
                start: m.start(),
                end: m.end(),
            })
            .collect();
        v.sort_unstable_by_key(|h| (h.end, h.pattern));
        v
    }

    fn sorted(mut v: Vec<Hit>) -> Vec<Hit> {
        v.sort_unstable_by_key(|h| (h.end, h.pattern));
        v
    }

    #[test]
    fn laned_walk_equals_reference_at_every_boundary() {
        let patterns = ["token", "ok", "ghp_", "secret", "SECRET_KEY", "aaa", "a"];
        // Keywords planted everywhere, including across lane and block
        // edges, in mixed case, overlapping each other.
        let unit = b"xx tOkEn=ghp_abc SeCrEt_KeY aaaa ok ";
        let mut hay = Vec::new();
        while hay.len() < 3 * BLOCK + 777 {
            hay.extend_from_slice(unit);
            hay.push(b'z');
        }
        let m = KeywordMatcher::new(&patterns).unwrap();
        for cut in [
            0,
            1,
            5,
            MIN_LANED - 1,
            MIN_LANED + 3,
            BLOCK - 2,
            BLOCK + 9,
            hay.len(),
        ] {
            let h = &hay[..cut.min(hay.len())];
            assert_eq!(sorted(m.find_all(h)), reference(&patterns, h), "cut {cut}");
        }
    }

    #[test]
    fn nfa_fallback_gives_the_same_answers() {
        let patterns = ["token", "ok", "ghp_", "secret", "SECRET_KEY", "aaa", "a"];
        let nfa = aho_corasick::nfa::contiguous::Builder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .prefilter(false)
            .build(patterns)
            .unwrap();
        let m = KeywordMatcher {
            engine: Engine::Nfa(nfa),
            max_len: 10,
        };
        let hay = b"x tOkEn=ghp_abc SeCrEt_KeY aaaa ok ".repeat(3000);
        assert_eq!(sorted(m.find_all(&hay)), reference(&patterns, &hay));
    }

    #[test]
    fn occurrences_straddling_lane_edges_are_reported_once() {
        let hay_len = BLOCK;
        let lane = hay_len / LANES;
        let mut hay = vec![b'.'; hay_len];
        for l in 1..LANES {
            let at = l * lane - 3;
            hay[at..at + 6].copy_from_slice(b"secret");
        }
        let m = KeywordMatcher::new(&["secret"]).unwrap();
        let hits = m.find_all(&hay);
        assert_eq!(hits.len(), LANES - 1);
        for (i, h) in hits.iter().enumerate() {
            assert_eq!(h.start, (i + 1) * lane - 3);
        }
    }

    #[test]
    fn batches_are_sorted_within() {
        let hay = b"token ".repeat(40_000);
        let m = KeywordMatcher::new(&["token", "oken", "ken"]).unwrap();
        m.for_each_block(&hay, |hits| {
            assert!(
                hits.windows(2)
                    .all(|w| (w[0].end, w[0].pattern) <= (w[1].end, w[1].pattern))
            );
        });
        assert_eq!(m.find_all(&hay).len(), 120_000);
    }
}

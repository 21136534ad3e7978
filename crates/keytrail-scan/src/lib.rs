//! The secret-matching engine: compiles [`Rule`](keytrail_rules::Rule)s
//! into a [`Scanner`] and matches byte buffers and streams against them.
//!
//! Knows nothing about files, terminals or output formats: callers hand it
//! bytes (with a display path and an [`Origin`](keytrail_types::Origin)) and
//! receive [`BlobFinding`]s, which an [`Aggregator`] merges into
//! [`Finding`](keytrail_types::Finding)s, one per (rule, secret).
//!
//! Pipeline for one buffer:
//! 1. keyword prefilter: one Aho-Corasick automaton over every rule's
//!    keywords ([`engine`]);
//! 2. each hit rule's regex on bounded, merged windows around its hits;
//! 3. the rule's validator ([`validate`]), minimum entropy and the
//!    engine-wide precision filters ([`filters`]);
//! 4. inline allow comments ([`allow`]);
//! 5. cross-rule de-duplication of equal or nested secrets ([`dedup`]);
//! 6. line, column and masked snippet ([`Scanner::scan_bytes`]), or the
//!    same over a stream in bounded memory ([`Scanner::scan_reader`]);
//! 7. encoded values (base64 a format declares, base64 blobs) decoded and
//!    scanned again, located at the encoded text ([`decode`]).
//!
//! [`check_rules`] runs every rule's examples (with `<<fake:…>>` macros
//! expanded, see [`fake`]) and negative examples through the same engine.

pub mod allow;
mod check;
pub mod decode;
pub mod dedup;
pub mod encoding;
mod engine;
pub mod fake;
pub mod filters;
mod finding;
pub mod keywords;
mod locate;
mod rule;
mod stream;
pub mod validate;

pub use check::check_rules;
pub use engine::{DEFAULT_CHUNK, DEFAULT_OVERLAP, KEYWORD_LEAD, RawMatch, Scanner};
pub use finding::{Aggregator, BlobFinding, fingerprint};
pub use rule::CompiledRule;

/// One accepted match, as passed to [`Scanner::scan`].
#[derive(Debug, Clone)]
pub struct Match<'r> {
    /// The rule that matched.
    pub rule: &'r CompiledRule,
    /// Byte range of the secret in the buffer.
    pub secret: std::ops::Range<usize>,
    /// Byte range of the whole match.
    pub whole: std::ops::Range<usize>,
    /// Named context captures (name, range).
    pub context: Vec<(&'r str, std::ops::Range<usize>)>,
    /// Validator note, if any.
    pub note: Option<String>,
}

impl Scanner {
    /// Low-level: call `on_match` for every accepted match in `data` (in
    /// offset order), without computing lines or snippets. Path-aware
    /// filters are off (no path).
    pub fn scan<'s>(&'s self, data: &[u8], on_match: &mut dyn FnMut(Match<'s>)) {
        for m in self.find_matches(None, data) {
            let rule = &self.rules()[m.rule];
            on_match(Match {
                rule,
                secret: m.secret,
                whole: m.whole,
                context: m
                    .context
                    .into_iter()
                    .map(|(ci, r)| (rule.context_groups[ci].0.as_str(), r))
                    .collect(),
                note: m.note,
            });
        }
    }
}

//! Prints how often each builtin keyword hits on generated source-like
//! text, and how long the keyword automaton alone takes: the prefilter's
//! side of scan cost.
//!
//! `cargo run --release -p keytrail-scan --example keyword_hits -- [MB]`

use aho_corasick::{AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use std::collections::BTreeSet;

/// CPU time of this thread in seconds (Linux `schedstat`), so figures are
/// per core even on a busy machine; falls back to 0.
fn cpu_now() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |ns| ns / 1e9)
}

fn main() {
    let mb: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20);
    let (rules, _) = keytrail_rules::builtin();
    let kws: Vec<String> = rules
        .iter()
        .flat_map(|r| r.syntax.keywords.iter().map(|k| k.to_ascii_lowercase()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let (text, _) = match std::env::args().nth(2) {
        Some(path) => (std::fs::read(path).expect("readable file"), Vec::new()),
        None => keytrail_testkit::secrets::source_like_corpus(mb << 20, 100_000, 1),
    };
    for kind in [AhoCorasickKind::DFA, AhoCorasickKind::ContiguousNFA] {
        let ac = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostLongest)
            .kind(Some(kind))
            .build(&kws)
            .unwrap();
        let t = cpu_now();
        let mut hits = 0usize;
        let mut input = aho_corasick::Input::new(&text);
        while let Some(m) = ac.find(input.clone()) {
            hits += 1;
            input.set_start(m.start() + 1);
        }
        let dt = cpu_now() - t;
        println!(
            "leftmost-longest {kind:?}: {hits} hits, {:.0} MB/s",
            text.len() as f64 / 1e6 / dt
        );
    }
    for kind in [AhoCorasickKind::DFA, AhoCorasickKind::ContiguousNFA] {
        let ac = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .kind(Some(kind))
            .build(&kws)
            .unwrap();
        let t = cpu_now();
        let mut counts = vec![0usize; kws.len()];
        for m in ac.find_overlapping_iter(&text) {
            counts[m.pattern().as_usize()] += 1;
        }
        let dt = cpu_now() - t;
        let total: usize = counts.iter().sum();
        println!(
            "{kind:?}: {} keywords, {total} hits, {:.0} MB/s",
            kws.len(),
            text.len() as f64 / 1e6 / dt
        );
        let mut top: Vec<(usize, &String)> = counts.iter().copied().zip(kws.iter()).collect();
        top.sort_by_key(|b| std::cmp::Reverse(b.0));
        for (n, k) in top.iter().take(25) {
            println!("  {n:8} {k}");
        }
    }
}

//! Cross-rule de-duplication: when several rules match the same secret
//! bytes at the same place (an AWS secret key found by both the key-pair
//! and the `aws_secret_access_key = …` rule; an `npm_` token in `.npmrc`;
//! the PEM key inside a GCP service-account JSON), one finding is kept.
//!
//! Matches whose secret ranges are equal or nested form one group. The
//! kept match is the most specific: highest confidence, then a rule with a
//! validator or whose secret starts with one of its keywords (a fixed
//! prefix), then the longer whole match, then more context captures, then
//! the earlier rule. The others are named in the kept finding's notes.

use crate::engine::{RawMatch, Scanner};
use std::cmp::Reverse;

/// Note prefix naming a rule whose match was folded into another.
pub const ALSO_MATCHED: &str = "also matched by rule ";

/// How specific a match is: greater is kept.
fn rank(scanner: &Scanner, data: &[u8], m: &RawMatch) -> impl Ord + use<> {
    let rule = &scanner.rules()[m.rule];
    let secret = &data[m.secret.clone()];
    let fixed_prefix = rule.rule.syntax.keywords.iter().any(|k| {
        !k.is_empty()
            && secret.len() >= k.len()
            && secret[..k.len()].eq_ignore_ascii_case(k.as_bytes())
    });
    (
        rule.confidence(),
        rule.validator.is_some() || fixed_prefix,
        m.whole.len(),
        m.context.len(),
        Reverse(m.rule),
    )
}

/// Fold matches with equal or nested secret ranges into one. Input and
/// output are sorted by secret start; the returned vector holds, per kept
/// match, the indices of the rules folded into it.
pub(crate) fn dedup(
    scanner: &Scanner,
    data: &[u8],
    mut matches: Vec<RawMatch>,
) -> (Vec<RawMatch>, Vec<Vec<usize>>) {
    if matches.len() < 2 {
        let n = matches.len();
        return (matches, vec![Vec::new(); n]);
    }
    // Containers first: start ascending, end descending.
    matches.sort_by_key(|m| (m.secret.start, Reverse(m.secret.end), m.rule));
    let mut kept: Vec<RawMatch> = Vec::with_capacity(matches.len());
    let mut also: Vec<Vec<usize>> = Vec::with_capacity(matches.len());
    let mut group: Vec<RawMatch> = Vec::new();
    let mut bounds = 0..0;
    let mut flush = |group: &mut Vec<RawMatch>| {
        if group.is_empty() {
            return;
        }
        let best = (0..group.len())
            .max_by_key(|&i| rank(scanner, data, &group[i]))
            .unwrap_or(0);
        let winner = group.swap_remove(best);
        let mut others: Vec<usize> = group
            .drain(..)
            .map(|m| m.rule)
            .filter(|&r| r != winner.rule)
            .collect();
        others.sort_unstable();
        others.dedup();
        kept.push(winner);
        also.push(others);
    };
    for m in matches {
        let nested =
            !group.is_empty() && m.secret.start >= bounds.start && m.secret.end <= bounds.end;
        if !nested {
            flush(&mut group);
            bounds = m.secret.clone();
        }
        group.push(m);
    }
    flush(&mut group);
    // Kept matches stay in secret-start order (groups are disjoint
    // or ordered by their container's start).
    let mut order: Vec<usize> = (0..kept.len()).collect();
    order.sort_by_key(|&i| (kept[i].secret.start, kept[i].rule));
    let kept_sorted = order.iter().map(|&i| kept[i].clone()).collect();
    let also_sorted = order.iter().map(|&i| also[i].clone()).collect();
    (kept_sorted, also_sorted)
}

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
//!
//! A match whose secret is a *context* capture of another kept match (the
//! AWS access key id inside an id + secret pair, found alone by
//! `aws.access_key_id`) is folded into that match too: the pair is one
//! credential, reported once at its own severity.

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
    let kept_sorted: Vec<RawMatch> = order.iter().map(|&i| kept[i].clone()).collect();
    let also_sorted: Vec<Vec<usize>> = order.iter().map(|&i| also[i].clone()).collect();
    fold_context(kept_sorted, also_sorted)
}

/// Fold every match whose secret lies inside a context capture of another
/// match into that match (its rule joins the other's "also matched").
fn fold_context(
    kept: Vec<RawMatch>,
    mut also: Vec<Vec<usize>>,
) -> (Vec<RawMatch>, Vec<Vec<usize>>) {
    // Context ranges of the kept matches, by start: (range, owner index).
    let mut ctx: Vec<(std::ops::Range<usize>, usize)> = kept
        .iter()
        .enumerate()
        .flat_map(|(i, m)| m.context.iter().map(move |(_, r)| (r.clone(), i)))
        .collect();
    if ctx.is_empty() {
        return (kept, also);
    }
    ctx.sort_by_key(|(r, i)| (r.start, *i));
    let mut folded_into: Vec<Option<usize>> = vec![None; kept.len()];
    for (i, m) in kept.iter().enumerate() {
        // Only a match without context of its own is folded, and only into
        // one with context: an owner is never folded itself.
        if !m.context.is_empty() {
            continue;
        }
        let upto = ctx.partition_point(|(r, _)| r.start <= m.secret.start);
        // Context captures are short and rarely overlap: a few
        // candidates before the position are enough.
        folded_into[i] = ctx[..upto]
            .iter()
            .rev()
            .take(8)
            .find(|(r, owner)| *owner != i && r.end >= m.secret.end)
            .map(|(_, owner)| *owner);
    }
    let mut out = Vec::with_capacity(kept.len());
    let mut out_also = Vec::with_capacity(kept.len());
    let mut index_of = vec![usize::MAX; kept.len()];
    for (i, m) in kept.iter().enumerate() {
        if folded_into[i].is_none() {
            index_of[i] = out.len();
            out.push(m.clone());
            out_also.push(std::mem::take(&mut also[i]));
        }
    }
    for (i, m) in kept.iter().enumerate() {
        let Some(owner) = folded_into[i] else {
            continue;
        };
        let at = index_of[owner];
        let list = &mut out_also[at];
        if !list.contains(&m.rule) && out[at].rule != m.rule {
            list.push(m.rule);
            list.sort_unstable();
        }
    }
    (out, out_also)
}

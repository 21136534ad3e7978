//! Work a parse worker does ahead of the engine and hands over with an event: the
//! indices of the rules of one rule set that matched it. The event model carries a
//! [`Prematch`] without knowing what computed it; the Sigma engine fills it
//! (`SigmaRules::prematch`) and uses it only with the rule set whose id it bears.

/// The rules of rule set `set` that matched an event.
#[derive(Debug, Clone, Default)]
pub(crate) struct Prematch {
    /// Id of the rule set that computed the matches.
    pub(crate) set: u64,
    /// Indices of the matched rules in that set.
    pub(crate) ids: RuleIds,
}

/// Indices of matched rules, stored inline up to six (no allocation for the usual
/// zero to a few matches per event).
#[derive(Debug, Clone, Default)]
pub(crate) struct RuleIds {
    len: u8,
    inline: [u16; 6],
    spill: Vec<u32>,
}

impl RuleIds {
    pub(crate) fn push(&mut self, i: usize) {
        let l = usize::from(self.len);
        if l < self.inline.len() && self.spill.is_empty() && i <= usize::from(u16::MAX) {
            self.inline[l] = i as u16;
            self.len += 1;
        } else {
            if self.spill.is_empty() {
                self.spill
                    .extend(self.inline[..l].iter().map(|&x| u32::from(x)));
            }
            self.spill.push(i as u32);
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        let inline = if self.spill.is_empty() {
            &self.inline[..usize::from(self.len)]
        } else {
            &[]
        };
        inline
            .iter()
            .map(|&x| usize::from(x))
            .chain(self.spill.iter().map(|&x| x as usize))
    }
}

#[cfg(test)]
mod tests {
    use super::RuleIds;

    #[test]
    fn rule_ids_keep_every_index_in_order_inline_and_spilled() {
        for n in [0usize, 1, 6, 7, 40] {
            let mut ids = RuleIds::default();
            let want: Vec<usize> = (0..n).map(|i| i * 3).collect();
            for &i in &want {
                ids.push(i);
            }
            assert_eq!(ids.iter().collect::<Vec<_>>(), want, "{n} ids");
        }
        let mut big = RuleIds::default();
        for i in [1, 70_000, 2] {
            big.push(i);
        }
        assert_eq!(big.iter().collect::<Vec<_>>(), vec![1, 70_000, 2]);
    }
}

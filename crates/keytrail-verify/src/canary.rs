//! Offline canary detection: the AWS account id inside an access key id,
//! and the accounts that publish honeytoken keys.
//!
//! Since 2019 an AWS access key id (`AKIA…`/`ASIA…`) encodes its account:
//! base32-decode the 16 characters after the 4-character prefix, take the
//! first 6 bytes as a big-endian integer, mask with `0x7fff_ffff_ff80` and
//! shift right by 7. Keys of the accounts below are canaries: using them
//! (even for `GetCallerIdentity`) alerts their owner, so they are reported
//! `canary` and never sent anywhere.

/// Thinkst Canarytokens (canarytokens.org) AWS accounts, as published by
/// secret scanners that detect them (TruffleHog, Kingfisher).
pub const THINKST: &[&str] = &[
    "052310077262",
    "171436882533",
    "266735846894",
    "534261010715",
    "595918472158",
    "717712589309",
    "729780141977",
    "730335385048",
    "819147034852",
    "992382622183",
];

/// Accounts of other honeytoken services modelled on Canarytokens
/// ("knock-offs"), and further accounts other scanners skip as canaries.
pub const LOOKALIKES: &[&str] = &[
    "044858866125",
    "251535659677",
    "344043088457",
    "351906852752",
    "390477818340",
    "426127672474",
    "427150556519",
    "439872796651",
    "445142720921",
    "465867158099",
    "528757803018",
    "538784191382",
    "637958123769",
    "693412236332",
    "732624840810",
    "735421457923",
    "893192397702",
    "959235150393",
    "982842642351",
];

/// The 12-digit account id encoded in an `AKIA`/`ASIA` key id (`None` for
/// other prefixes, wrong lengths, or characters outside base32).
pub fn aws_account_id(key_id: &str) -> Option<String> {
    let k = key_id.trim().as_bytes();
    if k.len() != 20 || !(k.starts_with(b"AKIA") || k.starts_with(b"ASIA")) {
        return None;
    }
    let mut bits: u128 = 0;
    for &c in &k[4..] {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        bits = (bits << 5) | u128::from(v);
    }
    // 16 characters = 80 bits; the first 48 are the prefix we need.
    let first48 = (bits >> 32) as u64;
    let account = (first48 & 0x7fff_ffff_ff80) >> 7;
    Some(format!("{account:012}"))
}

/// Which canary service an account belongs to, if any.
pub fn canary_vendor(account: &str, extra: &[String]) -> Option<&'static str> {
    if THINKST.contains(&account) {
        Some("Thinkst Canarytokens")
    } else if LOOKALIKES.contains(&account) {
        Some("a Canarytokens look-alike honeytoken service")
    } else if extra.iter().any(|a| a == account) {
        Some("an account configured as a canary")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_published_examples() {
        // Published decodings: a canarytokens.org key and AWS's documentation key.
        assert_eq!(
            aws_account_id("AKIAAYLPMN5HAAAAAAAA").as_deref(),
            Some("052310077262")
        );
        assert_eq!(
            aws_account_id("AKIAQYLPMN5HHHFPZAM2").as_deref(),
            Some("052310077262")
        );
        assert_eq!(aws_account_id("AKIA1234"), None);
        assert_eq!(aws_account_id("AKIAAYLPMN5HAAAAAAA1"), None);
        assert_eq!(aws_account_id("AIDAAYLPMN5HAAAAAAAA"), None);
        assert!(canary_vendor("052310077262", &[]).is_some());
        assert!(canary_vendor("123456789012", &[]).is_none());
        assert!(canary_vendor("123456789012", &["123456789012".into()]).is_some());
    }
}

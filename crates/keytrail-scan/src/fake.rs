//! Random token generation for rule examples: the
//! `<<fake:ALGO:PREFIX:LEN>>` macro that rule files use instead of
//! committing live-looking tokens, expanded by [`crate::check_rules`].
//!
//! `LEN` counts the characters after `PREFIX`. ALGOs: `github_crc32`
//! (base62 body of `LEN - 6` characters plus the 6-character checksum),
//! `alnum`/`base62`, `hex`, `upper_hex`, `base64`, `base64url`,
//! `upper_alnum`, `lower_alnum`, `digits`.
//! Generated tokens avoid runs that the precision filters would drop
//! (`abcdef`, `000000`), so an example never fails by bad luck.

use crate::encoding::{BASE62, github_checksum};
use crate::filters;
use rand::Rng;

/// The alphabet of a non-checksummed ALGO.
pub fn alphabet(algo: &str) -> Option<&'static [u8]> {
    Some(match algo {
        "alnum" | "base62" | "github_crc32" => BASE62,
        "hex" => b"0123456789abcdef",
        "upper_hex" => b"0123456789ABCDEF",
        "base64" => b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
        "base64url" => b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
        "upper_alnum" => b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
        "lower_alnum" => b"abcdefghijklmnopqrstuvwxyz0123456789",
        "digits" => b"0123456789",
        _ => return None,
    })
}

/// `len` random characters from `alphabet`, free of the repeated or
/// sequential runs the precision filters reject.
pub fn random_string<R: Rng + ?Sized>(rng: &mut R, alphabet: &[u8], len: usize) -> String {
    loop {
        let s: Vec<u8> = (0..len)
            .map(|_| alphabet[rng.random_range(0..alphabet.len())])
            .collect();
        if len < 6 || !filters::is_repetitive(&s) {
            return String::from_utf8(s).expect("alphabets are ASCII");
        }
    }
}

/// `prefix` + a random token of `len` characters valid for `algo`.
/// `None` for an unknown ALGO or a `github_crc32` length under 7.
pub fn fake_token<R: Rng + ?Sized>(
    rng: &mut R,
    algo: &str,
    prefix: &str,
    len: usize,
) -> Option<String> {
    if algo == "github_crc32" {
        if len < 7 {
            return None;
        }
        let body = random_string(rng, BASE62, len - 6);
        let sum = github_checksum(body.as_bytes());
        return Some(format!("{prefix}{body}{sum}"));
    }
    let a = alphabet(algo)?;
    Some(format!("{prefix}{}", random_string(rng, a, len)))
}

/// Expand every `<<fake:ALGO:PREFIX:LEN>>` in `text`.
///
/// ```
/// use rand::SeedableRng;
/// let mut rng = rand::rngs::StdRng::seed_from_u64(1);
/// let t = keytrail_scan::fake::expand_macros("T=<<fake:hex:abc_:8>>;", &mut rng).unwrap();
/// assert!(t.starts_with("T=abc_") && t.ends_with(';') && t.len() == 15);
/// ```
pub fn expand_macros<R: Rng + ?Sized>(text: &str, rng: &mut R) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("<<fake:") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 7..];
        let end = after
            .find(">>")
            .ok_or_else(|| format!("unterminated macro in {text:?}"))?;
        let spec = &after[..end];
        // ALGO:PREFIX:LEN, where PREFIX may itself contain `:`.
        let (algo, tail) = spec
            .split_once(':')
            .ok_or_else(|| format!("macro `{spec}` needs ALGO:PREFIX:LEN"))?;
        let (prefix, len) = tail
            .rsplit_once(':')
            .ok_or_else(|| format!("macro `{spec}` needs ALGO:PREFIX:LEN"))?;
        let len: usize = len
            .parse()
            .map_err(|_| format!("macro `{spec}`: LEN `{len}` is not a number"))?;
        let token = fake_token(rng, algo, prefix, len)
            .ok_or_else(|| format!("macro `{spec}`: unknown ALGO `{algo}` or bad LEN"))?;
        out.push_str(&token);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::Validator;
    use rand::SeedableRng;

    #[test]
    fn github_tokens_pass_the_validator() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for prefix in ["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "npm_"] {
            let t = fake_token(&mut rng, "github_crc32", prefix, 36).unwrap();
            assert_eq!(t.len(), prefix.len() + 36);
            assert!(
                Validator::GithubCrc32
                    .check(t.as_bytes(), t.as_bytes())
                    .is_ok(),
                "{t}"
            );
        }
    }

    #[test]
    fn macros_expand_with_alphabet_and_length() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let cases = [
            ("<<fake:hex:k-:32>>", "k-", 32, alphabet("hex").unwrap()),
            (
                "<<fake:upper_alnum:AKIA:16>>",
                "AKIA",
                16,
                alphabet("upper_alnum").unwrap(),
            ),
            (
                "<<fake:base64url:a:b:20>>",
                "a:b",
                20,
                alphabet("base64url").unwrap(),
            ),
        ];
        for (m, prefix, len, alpha) in cases {
            let t = expand_macros(m, &mut rng).unwrap();
            let body = t.strip_prefix(prefix).unwrap();
            assert_eq!(body.len(), len, "{t}");
            assert!(body.bytes().all(|c| alpha.contains(&c)), "{t}");
        }
    }

    #[test]
    fn bad_macros_are_errors() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for bad in [
            "<<fake:nope:x:10>>",
            "<<fake:hex:x:ten>>",
            "<<fake:hex:x:10",
            "<<fake:hex>>",
            "<<fake:github_crc32:x:5>>",
        ] {
            assert!(expand_macros(bad, &mut rng).is_err(), "{bad}");
        }
        assert_eq!(expand_macros("no macros", &mut rng).unwrap(), "no macros");
    }
}

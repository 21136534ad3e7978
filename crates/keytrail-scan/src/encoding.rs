//! Small, allocation-light encoders and decoders the validators need:
//! base62 (GitHub checksums), base64 in its standard and URL-safe
//! alphabets (tolerant of missing padding), and base32 alphabet checks.
//!
//! Kept in-house because the needs are tiny and tolerant decoding (padding
//! optional, either alphabet) is exactly what scanning wants.

/// The base62 alphabet GitHub uses for token checksums: `0-9A-Za-z`.
pub const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// CRC-32 (IEEE) of `data`.
pub fn crc32(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

/// Encode `n` in base62 ([`BASE62`]), left-padded with `0` to at least
/// `width` characters.
///
/// ```
/// assert_eq!(keytrail_scan::encoding::base62_u32(0, 6), "000000");
/// assert_eq!(keytrail_scan::encoding::base62_u32(61, 2), "0z");
/// assert_eq!(keytrail_scan::encoding::base62_u32(62, 1), "10");
/// ```
pub fn base62_u32(mut n: u32, width: usize) -> String {
    let mut digits = Vec::with_capacity(8);
    while n > 0 {
        digits.push(BASE62[(n % 62) as usize]);
        n /= 62;
    }
    while digits.len() < width {
        digits.push(b'0');
    }
    digits.reverse();
    String::from_utf8(digits).expect("base62 digits are ASCII")
}

/// The 6-character checksum GitHub (and npm) append to a token body:
/// base62 of the CRC-32 of `body`, zero-padded to 6.
pub fn github_checksum(body: &[u8]) -> String {
    base62_u32(crc32(body), 6)
}

/// Value of one base64 digit in either the standard (`+/`) or URL-safe
/// (`-_`) alphabet.
fn b64_value(c: u8) -> Option<u8> {
    Some(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' | b'-' => 62,
        b'/' | b'_' => 63,
        _ => return None,
    })
}

/// Decode base64 in either alphabet. Padding is optional; whitespace is not
/// allowed (strip it first). Returns `None` on any invalid character, on a
/// length that cannot be base64 (`len % 4 == 1`), or on padding in the
/// middle.
///
/// ```
/// use keytrail_scan::encoding::decode_base64;
/// assert_eq!(decode_base64(b"aGVsbG8=").unwrap(), b"hello");
/// assert_eq!(decode_base64(b"aGVsbG8").unwrap(), b"hello");
/// assert!(decode_base64(b"a").is_none());
/// ```
pub fn decode_base64(input: &[u8]) -> Option<Vec<u8>> {
    let trimmed = {
        let mut end = input.len();
        while end > 0 && input[end - 1] == b'=' {
            end -= 1;
        }
        if input.len() - end > 2 {
            return None;
        }
        &input[..end]
    };
    if trimmed.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(trimmed.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for &c in trimmed {
        let v = b64_value(c)?;
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// Encode bytes as standard base64 with padding.
pub fn encode_base64(data: &[u8]) -> String {
    encode_b64_with(
        data,
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
        true,
    )
}

/// Encode bytes as URL-safe base64 without padding (as in JWTs).
pub fn encode_base64url(data: &[u8]) -> String {
    encode_b64_with(
        data,
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
        false,
    )
}

fn encode_b64_with(data: &[u8], alphabet: &[u8; 64], pad: bool) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let digits = chunk.len() + 1;
        for i in 0..4 {
            if i < digits {
                out.push(alphabet[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else if pad {
                out.push('=');
            }
        }
    }
    out
}

/// Whether every byte is in the RFC 4648 base32 alphabet `A-Z2-7`.
pub fn is_base32_upper(data: &[u8]) -> bool {
    data.iter().all(|c| matches!(c, b'A'..=b'Z' | b'2'..=b'7'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_every_length() {
        for len in 0..40 {
            let data: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let std = encode_base64(&data);
            let url = encode_base64url(&data);
            assert_eq!(
                decode_base64(std.as_bytes()).unwrap(),
                data,
                "std len {len}"
            );
            assert_eq!(
                decode_base64(url.as_bytes()).unwrap(),
                data,
                "url len {len}"
            );
        }
    }

    #[test]
    fn base64_rejects_garbage() {
        for bad in [&b"ab$d"[..], b"abcde", b"ab=c", b"a==="] {
            assert!(
                decode_base64(bad).is_none(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn checksum_matches_known_crc() {
        // CRC-32 of "123456789" is the standard check value 0xCBF43926.
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        let s = github_checksum(b"123456789");
        assert_eq!(s.len(), 6);
        // Decode the base62 back and compare.
        let n = s.bytes().fold(0u64, |acc, c| {
            acc * 62 + BASE62.iter().position(|&d| d == c).unwrap() as u64
        });
        assert_eq!(n, 0xCBF4_3926);
    }

    #[test]
    fn base32_alphabet() {
        assert!(is_base32_upper(b"ABCXYZ234567"));
        assert!(!is_base32_upper(b"ABC1"));
        assert!(!is_base32_upper(b"abc"));
    }
}

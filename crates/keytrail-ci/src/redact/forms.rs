//! The encoded forms of a known secret value that `redact` looks for: the
//! raw bytes, base64 and base64url (for each of the three alignments the
//! value can have inside a longer base64 stream), percent-encoding, hex,
//! JSON string escaping and UTF-16 (both byte orders).
//!
//! # Base64 alignments
//!
//! Base64 turns every 3 input bytes into 4 output characters. A secret
//! embedded in a longer input (`user:SECRET` in a Basic auth header, a
//! secret inside a base64-encoded config file) starts at offset 0, 1 or 2
//! within its first 3-byte group, and the characters of the groups it
//! shares with its neighbours depend on those neighbours. What does not
//! depend on them is the encoding of the *whole groups inside the value*:
//! for alignment `k` (k bytes of the group before the value), skip the
//! first `(3 - k) % 3` bytes of the value, take as many whole 3-byte groups
//! as fit, and encode them without padding. That "stable core" appears
//! verbatim in every base64 stream holding the value at that alignment, so
//! one literal per alignment finds it. The at most two characters at each
//! edge of the encoded value that mix in neighbouring bytes stay visible:
//! they carry at most 4 bits of the secret each.

/// Shortest core (in characters) worth matching: shorter literals would
/// mask unrelated base64 text.
const MIN_ENCODED_LEN: usize = 8;

/// Which encoding a form is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FormKind {
    /// The value itself.
    Raw,
    /// One line of a multi-line value (PEM keys, certificates).
    RawLine,
    /// Standard base64, stable core for the given alignment (0, 1, 2).
    Base64(u8),
    /// Standard base64 of the whole value, with padding.
    Base64Padded,
    /// URL-safe base64, stable core for the given alignment.
    Base64Url(u8),
    /// Percent-encoding with upper-case hex (`%2F`).
    PercentUpper,
    /// Percent-encoding with lower-case hex (`%2f`).
    PercentLower,
    /// HTML form encoding: percent-encoding with spaces as `+`.
    FormEncoded,
    /// Lower-case hex of the bytes.
    HexLower,
    /// Upper-case hex of the bytes.
    HexUpper,
    /// The contents of a JSON string holding the value (without quotes).
    JsonEscaped,
    /// JSON escaping that also escapes `/` as `\/` (PHP, some loggers).
    JsonEscapedSlash,
    /// UTF-16 little-endian (Windows tools, PowerShell output).
    Utf16Le,
    /// UTF-16 big-endian.
    Utf16Be,
}

/// One literal to look for, and which encoding of the value it is.
#[derive(Clone, PartialEq, Eq)]
pub struct EncodedForm {
    /// Which encoding.
    pub kind: FormKind,
    /// The literal bytes (secret material: never print them).
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for EncodedForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "EncodedForm({:?}, {} bytes)",
            self.kind,
            self.bytes.len()
        )
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const B64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Base64 of `data` with `alphabet`, padded with `=` when `pad`.
pub fn base64(data: &[u8], alphabet: &[u8; 64], pad: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len().div_ceil(3) * 4);
    for group in data.chunks(3) {
        let b = [
            group[0],
            group.get(1).copied().unwrap_or(0),
            group.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = group.len() + 1;
        for i in 0..4 {
            if i < chars {
                out.push(alphabet[((n >> (18 - 6 * i)) & 63) as usize]);
            } else if pad {
                out.push(b'=');
            }
        }
    }
    out
}

/// Standard base64 with padding (for tests and callers that plant values).
pub fn base64_std(data: &[u8]) -> Vec<u8> {
    base64(data, B64, true)
}

/// The stable base64 core of `value` at alignment `k` (see the module docs).
pub fn base64_core(value: &[u8], k: u8, alphabet: &[u8; 64]) -> Vec<u8> {
    let skip = (3 - usize::from(k % 3)) % 3;
    if value.len() <= skip {
        return Vec::new();
    }
    let rest = &value[skip..];
    let whole = rest.len() / 3 * 3;
    base64(&rest[..whole], alphabet, false)
}

fn percent(value: &[u8], upper: bool, space_plus: bool) -> Vec<u8> {
    let hex: &[u8; 16] = if upper {
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    let mut out = Vec::with_capacity(value.len() * 3);
    for &b in value {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b);
        } else if b == b' ' && space_plus {
            out.push(b'+');
        } else {
            out.extend_from_slice(&[b'%', hex[usize::from(b >> 4)], hex[usize::from(b & 15)]]);
        }
    }
    out
}

fn hex(value: &[u8], upper: bool) -> Vec<u8> {
    let digits: &[u8; 16] = if upper {
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    value
        .iter()
        .flat_map(|&b| [digits[usize::from(b >> 4)], digits[usize::from(b & 15)]])
        .collect()
}

fn json_escape(value: &[u8], slash: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 8);
    for &b in value {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'/' if slash => out.extend_from_slice(b"\\/"),
            0..=0x1f => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
            _ => out.push(b),
        }
    }
    out
}

/// Every form of `value` worth looking for, de-duplicated, raw first.
///
/// Forms shorter than a few characters are left out (they would mask
/// unrelated text); the raw value is always included.
pub fn encoded_forms(value: &[u8]) -> Vec<EncodedForm> {
    let mut out: Vec<EncodedForm> = Vec::new();
    let mut push = |kind: FormKind, bytes: Vec<u8>, min: usize| {
        if bytes.len() >= min && !out.iter().any(|f| f.bytes == bytes) {
            out.push(EncodedForm { kind, bytes });
        }
    };
    push(FormKind::Raw, value.to_vec(), 1);
    if value.contains(&b'\n') {
        for line in value.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let trimmed = line.trim_ascii();
            push(FormKind::RawLine, trimmed.to_vec(), MIN_ENCODED_LEN);
        }
    }
    for k in 0..3u8 {
        push(
            FormKind::Base64(k),
            base64_core(value, k, B64),
            MIN_ENCODED_LEN,
        );
        push(
            FormKind::Base64Url(k),
            base64_core(value, k, B64URL),
            MIN_ENCODED_LEN,
        );
    }
    push(
        FormKind::Base64Padded,
        base64(value, B64, true),
        MIN_ENCODED_LEN,
    );
    push(FormKind::PercentUpper, percent(value, true, false), 1);
    push(FormKind::PercentLower, percent(value, false, false), 1);
    push(FormKind::FormEncoded, percent(value, true, true), 1);
    push(FormKind::HexLower, hex(value, false), MIN_ENCODED_LEN);
    push(FormKind::HexUpper, hex(value, true), MIN_ENCODED_LEN);
    push(FormKind::JsonEscaped, json_escape(value, false), 1);
    push(FormKind::JsonEscapedSlash, json_escape(value, true), 1);
    if let Ok(text) = std::str::from_utf8(value) {
        let units: Vec<u16> = text.encode_utf16().collect();
        push(
            FormKind::Utf16Le,
            units.iter().flat_map(|u| u.to_le_bytes()).collect(),
            1,
        );
        push(
            FormKind::Utf16Be,
            units.iter().flat_map(|u| u.to_be_bytes()).collect(),
            1,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_std(i.as_bytes()), o.as_bytes(), "{i}");
        }
    }

    #[test]
    fn every_alignment_core_occurs_in_embedding_stream() {
        let value = b"s3cr3t-Value/with+odd?chars";
        for k in 0..3u8 {
            for prefix_len in [k as usize, k as usize + 3, k as usize + 6] {
                let mut data = vec![b'P'; prefix_len];
                data.extend_from_slice(value);
                data.extend_from_slice(b"tail");
                let stream = base64(&data, B64, true);
                let core = base64_core(value, k, B64);
                assert!(core.len() >= 32, "core of alignment {k} is {}", core.len());
                assert!(
                    memchr::memmem::find(&stream, &core).is_some(),
                    "alignment {k}, prefix {prefix_len}"
                );
            }
        }
    }

    #[test]
    fn forms_cover_each_encoding_and_skip_duplicates() {
        let forms = encoded_forms(b"a b/c\"d");
        let kinds: Vec<FormKind> = forms.iter().map(|f| f.kind).collect();
        assert!(kinds.contains(&FormKind::PercentUpper));
        assert!(kinds.contains(&FormKind::FormEncoded));
        assert!(kinds.contains(&FormKind::JsonEscaped));
        let pct = forms
            .iter()
            .find(|f| f.kind == FormKind::PercentUpper)
            .unwrap();
        assert_eq!(pct.bytes, b"a%20b%2Fc%22d");
        let json = forms
            .iter()
            .find(|f| f.kind == FormKind::JsonEscapedSlash)
            .unwrap();
        assert_eq!(json.bytes, b"a b\\/c\\\"d");
        // A plain alphanumeric value has no distinct percent or JSON form.
        let plain = encoded_forms(b"xyzXYZ123456");
        assert!(
            !plain
                .iter()
                .any(|f| matches!(f.kind, FormKind::PercentUpper | FormKind::JsonEscaped))
        );
        assert!(plain.iter().any(|f| f.kind == FormKind::HexUpper));
    }
}

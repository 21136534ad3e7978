//! Structural and checksum validators a rule can name with `validate:`.
//!
//! Each validator looks at the secret (and, where it needs to, the whole
//! match) and either accepts it, optionally with a note for the finding
//! (`checksum valid`), or rejects it with a reason; a rejected match is
//! dropped. The set is closed: [`Validator::ALL`] is the registry, and an
//! unknown name in a rule is a compile diagnostic.

use crate::encoding::{decode_base64, github_checksum, is_base32_upper};
use crate::filters;

/// A named validator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validator {
    /// Last 6 characters are base62(CRC-32(body)) zero-padded; the body is
    /// what follows the prefix (up to and including the last `_`). GitHub
    /// `ghp_`/`gho_`/`ghu_`/`ghs_`/`ghr_` tokens and npm `npm_` tokens.
    GithubCrc32,
    /// Three base64url segments; the header is a JSON object with an `alg`
    /// other than `none`; the payload is a JSON object.
    Jwt,
    /// A PEM private key block whose body is base64 of plausible length,
    /// not a public key, certificate, or elided placeholder.
    PemPrivateKey,
    /// `pypi-` + base64url decoding to a macaroon that names pypi.org.
    PypiMacaroon,
    /// The password part of a URL is not empty, a placeholder or a variable.
    UrlPassword,
    /// Standard base64 (padding optional) decoding to at least 16 bytes.
    Base64Key,
    /// AWS access key id: the body after the 4-character prefix is base32.
    AwsKeyId,
}

/// Outcome of a validator on one match.
pub type Verdict = Result<Option<String>, &'static str>;

impl Validator {
    /// Every validator, in documentation order.
    pub const ALL: &'static [Validator] = &[
        Validator::GithubCrc32,
        Validator::Jwt,
        Validator::PemPrivateKey,
        Validator::PypiMacaroon,
        Validator::UrlPassword,
        Validator::Base64Key,
        Validator::AwsKeyId,
    ];

    /// The name used in rule files.
    pub fn name(self) -> &'static str {
        match self {
            Validator::GithubCrc32 => "github_crc32",
            Validator::Jwt => "jwt",
            Validator::PemPrivateKey => "pem_private_key",
            Validator::PypiMacaroon => "pypi_macaroon",
            Validator::UrlPassword => "url_password",
            Validator::Base64Key => "base64_key",
            Validator::AwsKeyId => "aws_key_id",
        }
    }

    /// Look a validator up by its rule-file name.
    pub fn from_name(name: &str) -> Option<Validator> {
        Validator::ALL.iter().copied().find(|v| v.name() == name)
    }

    /// Run the validator on `secret` (the secret group) within `whole`
    /// (the whole regex match).
    pub fn check(self, secret: &[u8], whole: &[u8]) -> Verdict {
        match self {
            Validator::GithubCrc32 => github_crc32(secret),
            Validator::Jwt => jwt(secret),
            Validator::PemPrivateKey => pem_private_key(secret, whole),
            Validator::PypiMacaroon => pypi_macaroon(secret),
            Validator::UrlPassword => url_password(secret, whole),
            Validator::Base64Key => base64_key(secret),
            Validator::AwsKeyId => aws_key_id(secret),
        }
    }
}

fn github_crc32(secret: &[u8]) -> Verdict {
    let start = secret.iter().rposition(|&c| c == b'_').map_or(0, |i| i + 1);
    let token = &secret[start..];
    if token.len() < 7 {
        return Err("token too short for a checksum");
    }
    let (body, check) = token.split_at(token.len() - 6);
    if github_checksum(body).as_bytes() == check {
        Ok(Some("checksum valid".to_string()))
    } else {
        Err("checksum mismatch")
    }
}

fn json_object(segment: &[u8]) -> Option<serde_json::Map<String, serde_json::Value>> {
    let raw = decode_base64(segment)?;
    serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&raw).ok()
}

fn jwt(secret: &[u8]) -> Verdict {
    let mut parts = secret.split(|&c| c == b'.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("not three dot-separated segments");
    };
    if s.is_empty() {
        return Err("empty signature");
    }
    if s.iter()
        .any(|c| !(c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'=')))
    {
        return Err("signature is not base64url");
    }
    let header = json_object(h).ok_or("header is not a base64url JSON object")?;
    let alg = header
        .get("alg")
        .and_then(|a| a.as_str())
        .ok_or("header has no alg")?;
    if alg.eq_ignore_ascii_case("none") {
        return Err("unsigned token (alg none)");
    }
    json_object(p).ok_or("payload is not a base64url JSON object")?;
    Ok(Some(format!("jwt structure valid (alg {alg})")))
}

/// Minimum base64 body length of a real private key: an Ed25519 PKCS#8
/// key, the smallest common one, is 48 bytes = 64 characters.
const MIN_PEM_BODY: usize = 60;

fn pem_private_key(secret: &[u8], whole: &[u8]) -> Verdict {
    // Work on the secret when it holds the block, else on the whole match.
    let block = if memchr::memmem::find(secret, b"-----BEGIN").is_some() {
        secret
    } else {
        whole
    };
    let begin = memchr::memmem::find(block, b"-----BEGIN").ok_or("no BEGIN line")?;
    let after_begin = &block[begin + 10..];
    let label_end = memchr::memmem::find(after_begin, b"-----").ok_or("unterminated BEGIN line")?;
    let label = &after_begin[..label_end];
    if !filters::contains_ci(label, b"PRIVATE KEY") {
        return Err("not a private key block");
    }
    let body_start = begin + 10 + label_end + 5;
    let body_end = memchr::memmem::find(&block[body_start..], b"-----END")
        .map_or(block.len(), |i| body_start + i);
    let body = &block[body_start..body_end];
    // Collect base64 characters, skipping whitespace, literal `\n`/`\r`
    // escapes (keys embedded in JSON or YAML strings), quotes and string
    // concatenation, and RFC 1421 headers (`Proc-Type:`, `DEK-Info:`,
    // `Comment:`).
    let mut b64 = Vec::with_capacity(body.len());
    for raw_line in split_pem_lines(body) {
        let line = raw_line.trim_ascii();
        if line.is_empty() || line.contains(&b':') {
            continue;
        }
        for &c in line {
            match c {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'+' | b'/' | b'=' => b64.push(c),
                b'"' | b'\'' | b'\t' | b' ' | b'\\' | b',' => {}
                b'.' => return Err("elided body (`...`)"),
                _ => return Err("body has non-base64 characters"),
            }
        }
    }
    if b64.len() < MIN_PEM_BODY {
        return Err("body too short for a private key");
    }
    // A random body uses most of the alphabet; `AAAA…` or `abcabc…` does not.
    let mut seen = [false; 256];
    b64.iter().for_each(|&c| seen[c as usize] = true);
    if seen.iter().filter(|&&s| s).count() < 16 {
        return Err("placeholder body");
    }
    // Padding may only end the body.
    let unpadded_len = b64.iter().position(|&c| c == b'=').unwrap_or(b64.len());
    if b64[unpadded_len..].iter().any(|&c| c != b'=') {
        return Err("padding inside body");
    }
    let decoded = decode_base64(&b64).ok_or("body is not base64")?;
    // DER starts with a SEQUENCE (0x30); OpenSSH keys start with
    // "openssh-key-v1"; PuTTY and PGP use other wrappers we accept as is.
    let label_s = String::from_utf8_lossy(label);
    let plausible = decoded.first() == Some(&0x30)
        || decoded.starts_with(b"openssh-key-v1")
        || label_s.contains("PGP")
        || label_s.contains("ENCRYPTED");
    if !plausible {
        return Err("body does not decode to a key structure");
    }
    Ok(Some(format!("{} block structure valid", label_s.trim())))
}

/// Split a PEM body into lines on real newlines and on literal `\n` escapes.
fn split_pem_lines(body: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < body.len() {
        if body[i] == b'\n' {
            out.push(&body[start..i]);
            start = i + 1;
        } else if body[i] == b'\\' && matches!(body.get(i + 1), Some(b'n' | b'r')) {
            out.push(&body[start..i]);
            i += 1;
            start = i + 1;
        }
        i += 1;
    }
    out.push(&body[start..]);
    out
}

fn pypi_macaroon(secret: &[u8]) -> Verdict {
    let body = secret.strip_prefix(b"pypi-").ok_or("no pypi- prefix")?;
    // Decode a prefix of whole quanta: the location is in the first bytes.
    let n = body.len().min(200) / 4 * 4;
    let decoded = decode_base64(&body[..n]).ok_or("body is not base64url")?;
    if memchr::memmem::find(&decoded, b"pypi.org").is_some() {
        Ok(Some("macaroon names pypi.org".to_string()))
    } else {
        Err("macaroon does not name pypi.org")
    }
}

/// Hosts reserved for documentation (RFC 2606) and obvious stand-ins.
const DOC_HOSTS: &[&[u8]] = &[
    b"@example.com",
    b"@example.org",
    b"@example.net",
    b".example.com",
    b".example.org",
    b"@host:",
    b"@hostname",
    b"@your-",
    b"@your_",
    b"@<",
];

fn url_password(secret: &[u8], whole: &[u8]) -> Verdict {
    if secret.is_empty() {
        return Err("empty password");
    }
    let lower = whole.to_ascii_lowercase();
    if DOC_HOSTS
        .iter()
        .any(|h| memchr::memmem::find(&lower, h).is_some())
    {
        return Err("documentation host");
    }
    if let Some(why) = filters::template_syntax(secret) {
        return Err(why);
    }
    if let Some(why) = filters::placeholder_word(secret, true) {
        return Err(why);
    }
    if filters::is_redacted(secret) {
        return Err("already redacted");
    }
    const DUMMIES: &[&str] = &[
        "password",
        "passwd",
        "pass",
        "pwd",
        "secret",
        "user",
        "username",
        "pw",
        "mypassword",
    ];
    if DUMMIES
        .iter()
        .any(|d| d.as_bytes().eq_ignore_ascii_case(secret))
    {
        return Err("dummy password");
    }
    Ok(None)
}

fn base64_key(secret: &[u8]) -> Verdict {
    if secret.iter().any(|&c| c == b'-' || c == b'_') {
        return Err("not standard base64");
    }
    let decoded = decode_base64(secret).ok_or("not base64")?;
    if decoded.len() < 16 {
        return Err("decodes to fewer than 16 bytes");
    }
    Ok(None)
}

fn aws_key_id(secret: &[u8]) -> Verdict {
    if secret.len() != 20 {
        return Err("not 20 characters");
    }
    let (prefix, body) = secret.split_at(4);
    if !prefix.iter().all(u8::is_ascii_uppercase) {
        return Err("prefix is not upper case");
    }
    if !is_base32_upper(body) {
        return Err("body is not base32");
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::{encode_base64, encode_base64url};

    fn gh(prefix: &str, body: &str) -> String {
        format!("{prefix}{body}{}", github_checksum(body.as_bytes()))
    }

    fn pem(label: &str, der: &[u8]) -> String {
        let b = encode_base64(der);
        let lines: Vec<&str> = b
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            lines.join("\n")
        )
    }

    fn der_like(len: usize) -> Vec<u8> {
        let mut v = vec![0x30, 0x82, (len >> 8) as u8, len as u8];
        v.extend((0..len).map(|i| (i * 131 + 7) as u8));
        v
    }

    fn jwt_of(header: &str, payload: &str, sig: &str) -> String {
        format!(
            "{}.{}.{sig}",
            encode_base64url(header.as_bytes()),
            encode_base64url(payload.as_bytes())
        )
    }

    /// (validator, secret, whole match or "" for the secret, accepted?)
    fn cases() -> Vec<(Validator, String, String, bool)> {
        use Validator::*;
        let good_pem = pem("RSA PRIVATE KEY", &der_like(600));
        let json_pem = good_pem.replace('\n', "\\n");
        let mut macaroon = vec![0x02, 0x01, 0x08];
        macaroon.extend_from_slice(b"pypi.org");
        macaroon.extend((0..80).map(|i| (i * 7) as u8));
        let mut other = vec![0x02, 0x01, 0x08];
        other.extend_from_slice(b"example.com");
        other.extend((0..80).map(|i| (i * 7) as u8));
        vec![
            (
                GithubCrc32,
                gh("ghp_", "Zq3Vb8Kw1LmN0pRsTuXyAbCdEf"),
                String::new(),
                true,
            ),
            (
                GithubCrc32,
                gh("npm_", "Zq3Vb8Kw1LmN0pRsTuXyAbCdEf"),
                String::new(),
                true,
            ),
            (
                GithubCrc32,
                "ghp_Zq3Vb8Kw1LmN0pRsTuXyAbCdEf000000".into(),
                String::new(),
                false,
            ),
            (GithubCrc32, "ghp_abc".into(), String::new(), false),
            (
                Jwt,
                jwt_of(
                    r#"{"alg":"HS256","typ":"JWT"}"#,
                    r#"{"sub":"42"}"#,
                    "c2lnbmF0dXJl",
                ),
                String::new(),
                true,
            ),
            (
                Jwt,
                jwt_of(r#"{"alg":"none"}"#, r#"{"sub":"42"}"#, "c2ln"),
                String::new(),
                false,
            ),
            (
                Jwt,
                jwt_of(r#"{"typ":"JWT"}"#, r#"{"sub":"42"}"#, "c2ln"),
                String::new(),
                false,
            ),
            (
                Jwt,
                jwt_of(r#"{"alg":"HS256"}"#, "not json", "c2ln"),
                String::new(),
                false,
            ),
            (Jwt, "eyJhbGciOi.eyJzdWIi".into(), String::new(), false),
            (PemPrivateKey, good_pem.clone(), String::new(), true),
            (PemPrivateKey, json_pem, String::new(), true),
            (
                PemPrivateKey,
                pem("PUBLIC KEY", &der_like(300)),
                String::new(),
                false,
            ),
            (
                PemPrivateKey,
                pem("CERTIFICATE", &der_like(300)),
                String::new(),
                false,
            ),
            (
                PemPrivateKey,
                "-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----".into(),
                String::new(),
                false,
            ),
            (
                PemPrivateKey,
                "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----".into(),
                String::new(),
                false,
            ),
            (
                PemPrivateKey,
                format!(
                    "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----",
                    "A".repeat(200)
                ),
                String::new(),
                false,
            ),
            (
                PypiMacaroon,
                format!("pypi-{}", encode_base64url(&macaroon)),
                String::new(),
                true,
            ),
            (
                PypiMacaroon,
                format!("pypi-{}", encode_base64url(&other)),
                String::new(),
                false,
            ),
            (UrlPassword, "s3cr3t-Pa55w0rd!".into(), String::new(), true),
            (
                UrlPassword,
                "s3cr3t-Pa55w0rd!".into(),
                "postgres://app:s3cr3t-Pa55w0rd!@db.prod.internal:5432".into(),
                true,
            ),
            (
                UrlPassword,
                "s3cr3t-Pa55w0rd!".into(),
                "https://user:s3cr3t-Pa55w0rd!@example.com/path".into(),
                false,
            ),
            (UrlPassword, "${DB_PASSWORD}".into(), String::new(), false),
            (UrlPassword, "password".into(), String::new(), false),
            (UrlPassword, "****".into(), String::new(), false),
            (UrlPassword, "<password>".into(), String::new(), false),
            (Base64Key, encode_base64(&[7u8; 32]), String::new(), true),
            (Base64Key, encode_base64(&[7u8; 8]), String::new(), false),
            (Base64Key, "not*base64*at*all".into(), String::new(), false),
            (AwsKeyId, "AKIADEADBEEFDEADBEEF".into(), String::new(), true),
            (
                AwsKeyId,
                "AKIA0123456789ABCDEF".into(),
                String::new(),
                false,
            ),
            (AwsKeyId, "AKIADEADBEEF".into(), String::new(), false),
        ]
    }

    #[test]
    fn validators_accept_and_reject() {
        for (v, secret, whole, ok) in cases() {
            let whole = if whole.is_empty() {
                secret.clone()
            } else {
                whole
            };
            let got = v.check(secret.as_bytes(), whole.as_bytes());
            assert_eq!(got.is_ok(), ok, "{} on {secret:?}: {got:?}", v.name());
        }
    }

    #[test]
    fn names_round_trip() {
        for v in Validator::ALL {
            assert_eq!(Validator::from_name(v.name()), Some(*v));
        }
        assert_eq!(Validator::from_name("luhn"), None);
    }

    #[test]
    fn github_checksum_note() {
        let t = gh("gho_", "AbCdEfGhIjKlMnOpQrStUvWxYz0123");
        assert_eq!(
            Validator::GithubCrc32.check(t.as_bytes(), t.as_bytes()),
            Ok(Some("checksum valid".to_string()))
        );
    }
}

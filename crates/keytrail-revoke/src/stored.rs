//! The formats an AWS access key is kept in inside a secret store entry
//! (a Secrets Manager secret string or an SSM parameter value), read and
//! rewritten without changing anything but the two values:
//!
//! - JSON with the key id and secret in one object, under any of the names
//!   people use (`aws_access_key_id`/`aws_secret_access_key`,
//!   `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, `AccessKeyId`/
//!   `SecretAccessKey` as in `aws iam create-access-key` output,
//!   `accessKeyId`/`secretAccessKey`, …), at the top level or nested;
//!   other fields, order and whitespace are kept.
//! - Lines of `name = value` / `NAME=value` / `export NAME=value` /
//!   `name: value`: the shared credentials file, a dotenv file, YAML.
//!
//! Anything else (a bare secret, two key pairs, a different key than the one
//! being rotated) is an error and the entry is left as it is.

use keytrail_types::Secret;

/// How a stored value was recognised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// A JSON document; the field names holding the key id and the secret.
    Json {
        /// The key id field (`aws_access_key_id`, `AccessKeyId`, …).
        id_field: String,
        /// The secret field.
        secret_field: String,
    },
    /// `name = value` lines (credentials file, dotenv, YAML).
    Lines {
        /// The key id name.
        id_field: String,
        /// The secret name.
        secret_field: String,
    },
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Format::Json {
                id_field,
                secret_field,
            } => write!(f, "JSON with `{id_field}`/`{secret_field}`"),
            Format::Lines {
                id_field,
                secret_field,
            } => write!(f, "lines `{id_field}`/`{secret_field}`"),
        }
    }
}

/// An access key read from a stored value.
#[derive(Debug)]
pub struct Stored {
    /// The format, kept when the value is rewritten.
    pub format: Format,
    /// The access key id found.
    pub key_id: String,
    /// The secret access key found.
    pub secret: Secret<String>,
}

/// Why a stored value cannot be rotated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// No recognised key id and secret pair.
    #[error(
        "no AWS access key found in a known format (JSON with aws_access_key_id/aws_secret_access_key or a variant, or name=value lines); the value is left untouched"
    )]
    Unrecognised,
    /// More than one pair: which one to rotate is not clear.
    #[error(
        "{0} AWS access key pairs found; rotating one of several is not supported, the value is left untouched"
    )]
    Several(usize),
    /// A field is there but is not a string / not an access key id.
    #[error("field `{0}` does not hold an access key id; the value is left untouched")]
    NotAKeyId(String),
}

fn norm(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn is_id_name(name: &str) -> bool {
    matches!(
        norm(name).as_str(),
        "awsaccesskeyid" | "accesskeyid" | "awsaccesskey" | "accesskey" | "awskeyid" | "keyid"
    )
}

fn is_secret_name(name: &str) -> bool {
    matches!(
        norm(name).as_str(),
        "awssecretaccesskey" | "secretaccesskey" | "awssecretkey" | "secretkey" | "awssecret"
    )
}

/// Whether `s` looks like an access key id (`AKIA`/`ASIA` and 16 more).
pub fn looks_like_key_id(s: &str) -> bool {
    s.len() == 20
        && (s.starts_with("AKIA") || s.starts_with("ASIA"))
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// Reads the access key in `text`.
pub fn parse(text: &str) -> Result<Stored, FormatError> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|_| FormatError::Unrecognised)?;
        let mut found = Vec::new();
        find_json(&v, 0, &mut found)?;
        return match found.len() {
            0 => Err(FormatError::Unrecognised),
            1 => {
                let (id_field, key_id, secret_field, secret) = found.pop().expect("one");
                Ok(Stored {
                    format: Format::Json {
                        id_field,
                        secret_field,
                    },
                    key_id,
                    secret: Secret::new(secret),
                })
            }
            n => Err(FormatError::Several(n)),
        };
    }
    parse_lines(text)
}

type Pair = (String, String, String, String);

fn find_json(v: &serde_json::Value, depth: usize, out: &mut Vec<Pair>) -> Result<(), FormatError> {
    if depth > 8 {
        return Ok(());
    }
    match v {
        serde_json::Value::Object(map) => {
            let id = map.iter().find(|(k, _)| is_id_name(k));
            let secret = map.iter().find(|(k, _)| is_secret_name(k));
            if let (Some((ik, iv)), Some((sk, sv))) = (id, secret) {
                let iv = iv
                    .as_str()
                    .filter(|s| looks_like_key_id(s))
                    .ok_or_else(|| FormatError::NotAKeyId(ik.clone()))?;
                let sv = sv
                    .as_str()
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| FormatError::NotAKeyId(sk.clone()))?;
                out.push((ik.clone(), iv.to_string(), sk.clone(), sv.to_string()));
            }
            for (_, child) in map {
                find_json(child, depth + 1, out)?;
            }
        }
        serde_json::Value::Array(items) => {
            for child in items {
                find_json(child, depth + 1, out)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Splits `line` into (name, value) for `name = value`, `NAME=value`,
/// `export NAME=value` and `name: value`, unquoting the value.
fn split_line(line: &str) -> Option<(&str, &str)> {
    let line = line.trim();
    if line.starts_with('#') || line.starts_with(';') {
        return None;
    }
    let line = line.strip_prefix("export ").unwrap_or(line);
    let at = line.find(['=', ':'])?;
    let name = line[..at].trim();
    let value = line[at + 1..].trim();
    let value = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
        .unwrap_or(value);
    Some((name, value))
}

fn parse_lines(text: &str) -> Result<Stored, FormatError> {
    let mut ids = Vec::new();
    let mut secrets = Vec::new();
    for line in text.lines() {
        if let Some((name, value)) = split_line(line) {
            if is_id_name(name) {
                if !looks_like_key_id(value) {
                    return Err(FormatError::NotAKeyId(name.to_string()));
                }
                ids.push((name.to_string(), value.to_string()));
            } else if is_secret_name(name) && !value.is_empty() {
                secrets.push((name.to_string(), value.to_string()));
            }
        }
    }
    match (ids.len(), secrets.len()) {
        (1, 1) => {
            let (id_field, key_id) = ids.pop().expect("one");
            let (secret_field, secret) = secrets.pop().expect("one");
            Ok(Stored {
                format: Format::Lines {
                    id_field,
                    secret_field,
                },
                key_id,
                secret: Secret::new(secret),
            })
        }
        (0, _) | (_, 0) => Err(FormatError::Unrecognised),
        (a, b) => Err(FormatError::Several(a.max(b))),
    }
}

/// `text` with `old`'s key id and secret replaced by the new ones, nothing
/// else changed; checked by reading the result back.
pub fn replace(
    text: &str,
    old: &Stored,
    new_id: &str,
    new_secret: &Secret<String>,
) -> Result<String, FormatError> {
    let old_secret = old.secret.expose();
    let mut out = text.replace(&old.key_id, new_id);
    out = out.replace(old_secret.as_str(), new_secret.expose());
    if matches!(old.format, Format::Json { .. }) && old_secret.contains('/') {
        // JSON may escape the solidus.
        out = out.replace(
            &old_secret.replace('/', "\\/"),
            &new_secret.expose().replace('/', "\\/"),
        );
    }
    let back = parse(&out)?;
    if back.key_id != new_id
        || back.secret.expose() != new_secret.expose()
        || back.format != old.format
    {
        return Err(FormatError::Unrecognised);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "AKIAOLDOLDOLDOLDOLD1";
    const SECRET: &str = "old/secret+value0123456789abcdefghijklmno";
    const NEW_ID: &str = "AKIANEWNEWNEWNEWNEW2";
    const NEW_SECRET: &str = "new+secret/value9876543210zyxwvutsrqponml";

    fn roundtrip(text: &str) -> (Format, String) {
        let s = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(s.key_id, ID);
        assert_eq!(s.secret.expose(), SECRET);
        let out = replace(text, &s, NEW_ID, &Secret::new(NEW_SECRET.to_string())).unwrap();
        assert!(!out.contains(ID) && !out.contains("old/secret") && !out.contains("old\\/secret"));
        (s.format, out)
    }

    #[test]
    fn json_variants_keep_names_order_and_other_fields() {
        for (id_f, sec_f) in [
            ("aws_access_key_id", "aws_secret_access_key"),
            ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
            ("AccessKeyId", "SecretAccessKey"),
            ("accessKeyId", "secretAccessKey"),
        ] {
            let text = format!(
                "{{\n  \"region\": \"eu-west-1\",\n  \"{id_f}\": \"{ID}\",\n  \"{sec_f}\": \"{SECRET}\",\n  \"zeta\": 1\n}}\n"
            );
            let (format, out) = roundtrip(&text);
            assert_eq!(
                format,
                Format::Json {
                    id_field: id_f.into(),
                    secret_field: sec_f.into()
                }
            );
            assert_eq!(
                out,
                format!(
                    "{{\n  \"region\": \"eu-west-1\",\n  \"{id_f}\": \"{NEW_ID}\",\n  \"{sec_f}\": \"{NEW_SECRET}\",\n  \"zeta\": 1\n}}\n"
                )
            );
        }
    }

    #[test]
    fn create_access_key_output_and_escaped_solidus() {
        let text = format!(
            r#"{{"AccessKey":{{"UserName":"app","AccessKeyId":"{ID}","Status":"Active","SecretAccessKey":"{}"}}}}"#,
            SECRET.replace('/', "\\/")
        );
        let (_, out) = roundtrip(&text);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["AccessKey"]["SecretAccessKey"], NEW_SECRET);
        assert_eq!(v["AccessKey"]["UserName"], "app");
    }

    #[test]
    fn line_formats() {
        for text in [
            format!(
                "[default]\naws_access_key_id = {ID}\naws_secret_access_key = {SECRET}\nregion = us-east-1\n"
            ),
            format!(
                "export AWS_ACCESS_KEY_ID=\"{ID}\"\nexport AWS_SECRET_ACCESS_KEY=\"{SECRET}\"\n"
            ),
            format!("access_key_id: '{ID}'\nsecret_access_key: '{SECRET}'\n"),
        ] {
            let (format, out) = roundtrip(&text);
            assert!(matches!(format, Format::Lines { .. }));
            assert_eq!(out, text.replace(ID, NEW_ID).replace(SECRET, NEW_SECRET));
        }
    }

    #[test]
    fn unexpected_formats_are_refused() {
        assert_eq!(parse(SECRET).unwrap_err(), FormatError::Unrecognised);
        assert_eq!(
            parse("{\"password\": \"x\"}").unwrap_err(),
            FormatError::Unrecognised
        );
        assert_eq!(parse("{not json").unwrap_err(), FormatError::Unrecognised);
        assert_eq!(
            parse("{\"aws_access_key_id\": 5, \"aws_secret_access_key\": \"x\"}").unwrap_err(),
            FormatError::NotAKeyId("aws_access_key_id".into())
        );
        let two = format!(
            r#"[{{"AccessKeyId":"{ID}","SecretAccessKey":"a"}},{{"AccessKeyId":"{NEW_ID}","SecretAccessKey":"b"}}]"#
        );
        assert_eq!(
            parse(&format!("{{\"k\": {two}}}")).unwrap_err(),
            FormatError::Several(2)
        );
        assert_eq!(
            parse(&format!(
                "AWS_ACCESS_KEY_ID={ID}\nAWS_ACCESS_KEY_ID={NEW_ID}\nAWS_SECRET_ACCESS_KEY=x\n"
            ))
            .unwrap_err(),
            FormatError::Several(2)
        );
    }
}

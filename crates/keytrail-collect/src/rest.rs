//! The HTTP client of the REST collectors (Google Cloud, Azure): JSON
//! requests with a bearer token, bounded answers, retries of throttled and
//! unavailable answers, and the error text each API puts in its body.
//!
//! Requests go to an API's base URL (its public host, or the one override
//! the user gave with `--endpoint-url`); redirects are never followed, so a
//! token never reaches another host. Tokens are held in
//! [`keytrail_types::Secret`] and never printed.

use keytrail_types::Secret;
use serde_json::Value;
use std::time::Duration;

/// Largest answer read (a page of a list is far smaller).
const MAX_BODY: u64 = 64 * 1024 * 1024;
/// Most pages read from one list (a loop guard: real lists end far sooner).
pub(crate) const MAX_PAGES: usize = 10_000;
/// How often a throttled (429) or unavailable (5xx) answer is retried.
const RETRIES: u32 = 3;

/// One API answer.
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: u16,
    pub body: Value,
    /// `Retry-After` in seconds, when sent.
    pub retry_after: Option<u64>,
}

impl Answer {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// A failed call: what to tell the user.
#[derive(Debug, Clone)]
pub(crate) struct CallError {
    /// HTTP status, when an answer came.
    pub status: Option<u16>,
    /// The API's error code (`PERMISSION_DENIED`, `AuthorizationFailed`).
    pub code: Option<String>,
    pub message: String,
    /// Google's `error.details[].reason` (`SERVICE_DISABLED`, ...).
    pub reasons: Vec<String>,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.status, &self.code) {
            (Some(s), Some(c)) => write!(f, "HTTP {s} {c}: {}", self.message),
            (Some(s), None) => write!(f, "HTTP {s}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

/// The error code and message of a Google (`{"error": {"status", "message"}}`),
/// Microsoft Graph / ARM (`{"error": {"code", "message"}}`) or OAuth
/// (`{"error": "...", "error_description": "..."}`) error body.
pub(crate) fn error_of(status: u16, body: &Value) -> CallError {
    let e = body.get("error");
    let (code, message) = match e {
        Some(Value::Object(o)) => (
            o.get("status")
                .or_else(|| o.get("code"))
                .and_then(|v| match v {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                }),
            o.get("message").and_then(Value::as_str).map(str::to_string),
        ),
        Some(Value::String(s)) => (
            Some(s.clone()),
            body.get("error_description")
                .and_then(Value::as_str)
                .map(str::to_string),
        ),
        _ => (None, None),
    };
    let reasons = e
        .and_then(|e| e.get("details"))
        .and_then(Value::as_array)
        .map(|d| {
            d.iter()
                .filter_map(|x| x.get("reason").and_then(Value::as_str))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    CallError {
        status: Some(status),
        code,
        message: message.unwrap_or_else(|| "no error message in the answer".into()),
        reasons,
    }
}

/// The REST client: one agent, a per-request timeout.
#[derive(Clone)]
pub(crate) struct Rest {
    agent: ureq::Agent,
    direct: ureq::Agent,
}

impl Rest {
    pub fn new(timeout: Duration) -> Rest {
        let config = |proxy: bool| {
            let b = ureq::Agent::config_builder()
                .timeout_global(Some(timeout))
                .http_status_as_error(false)
                .max_redirects(0)
                .user_agent(concat!("keytrail/", env!("CARGO_PKG_VERSION")));
            if proxy {
                b.build()
            } else {
                b.proxy(None).build()
            }
        };
        Rest {
            agent: config(true).into(),
            direct: config(false).into(),
        }
    }

    fn agent_for(&self, url: &str) -> &ureq::Agent {
        let host = url
            .split_once("://")
            .map(|(_, r)| r.split(['/', '?', '#']).next().unwrap_or(""))
            .unwrap_or("");
        let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
        if matches!(host, "127.0.0.1" | "localhost" | "[::1]") {
            &self.direct
        } else {
            &self.agent
        }
    }

    /// Sends one request; a body that is not JSON becomes `Value::Null`
    /// (with its text under `"text"` for error messages).
    pub fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<Answer, CallError> {
        let mut b = ureq::http::Request::builder().method(method).uri(url);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let agent = self.agent_for(url);
        let result = match body {
            Some((ctype, bytes)) => b
                .header("content-type", ctype)
                .body(bytes)
                .map_err(|e| transport(format!("building the request: {e}")))
                .and_then(|r| agent.run(r).map_err(describe)),
            None => b
                .body(())
                .map_err(|e| transport(format!("building the request: {e}")))
                .and_then(|r| agent.run(r).map_err(describe)),
        };
        let mut resp = result?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_vec()
            .map_err(describe)?;
        let body = serde_json::from_slice::<Value>(&bytes).unwrap_or_else(|_| {
            let text: String = String::from_utf8_lossy(&bytes).chars().take(300).collect();
            serde_json::json!({ "text": text })
        });
        Ok(Answer {
            status,
            body,
            retry_after,
        })
    }

    /// A JSON call with a bearer token: retried on 429 and 5xx (waiting
    /// `Retry-After`, at most 30 s, else 1, 2, 4 s); any other non-2xx
    /// answer is an error with the API's own message.
    pub fn call(
        &self,
        method: &str,
        url: &str,
        token: &Secret<String>,
        json_body: Option<&Value>,
    ) -> Result<Value, CallError> {
        let auth = format!("Bearer {}", token.expose());
        let headers = [
            ("authorization", auth.as_str()),
            ("accept", "application/json"),
        ];
        let mut attempt = 0;
        loop {
            let body = json_body.map(|b| ("application/json", b.to_string().into_bytes()));
            let a = self.send(method, url, &headers, body)?;
            if a.ok() {
                return Ok(a.body);
            }
            let retryable = a.status == 429 || (500..600).contains(&a.status);
            if !retryable || attempt >= RETRIES {
                return Err(error_of(a.status, &a.body));
            }
            let wait = a.retry_after.unwrap_or(1 << attempt).min(30);
            std::thread::sleep(Duration::from_secs(wait));
            attempt += 1;
        }
    }
}

fn transport(message: String) -> CallError {
    CallError {
        status: None,
        code: None,
        message,
        reasons: Vec::new(),
    }
}

fn describe(e: ureq::Error) -> CallError {
    transport(match e {
        ureq::Error::Timeout(t) => format!("timed out ({t})"),
        ureq::Error::Io(io) => format!("network error: {io}"),
        other => format!("network error: {other}"),
    })
}

/// `s` percent-encoded for a URL path segment or query value.
pub(crate) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Trims a base URL's trailing slash and checks it is http(s).
pub(crate) fn base(url: &str) -> Result<String, String> {
    let u = url.trim().trim_end_matches('/');
    if !(u.starts_with("https://") || u.starts_with("http://")) || u.len() < 10 {
        return Err(format!("{url:?} is not an http(s) URL"));
    }
    Ok(u.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_of_each_api() {
        let g = serde_json::json!({"error": {"code": 403, "status": "PERMISSION_DENIED", "message": "denied"}});
        let e = error_of(403, &g);
        assert_eq!(e.code.as_deref(), Some("PERMISSION_DENIED"));
        assert_eq!(e.to_string(), "HTTP 403 PERMISSION_DENIED: denied");
        let m = serde_json::json!({"error": {"code": "AuthorizationFailed", "message": "no"}});
        assert_eq!(
            error_of(403, &m).code.as_deref(),
            Some("AuthorizationFailed")
        );
        let o = serde_json::json!({"error": "invalid_grant", "error_description": "Bad"});
        assert_eq!(error_of(400, &o).to_string(), "HTTP 400 invalid_grant: Bad");
        let t = serde_json::json!({"text": "<html>"});
        assert_eq!(
            error_of(502, &t).to_string(),
            "HTTP 502: no error message in the answer"
        );
    }

    #[test]
    fn encoding_and_bases() {
        assert_eq!(encode("a b/c@d.e"), "a%20b%2Fc%40d.e");
        assert_eq!(base("http://127.0.0.1:9/").unwrap(), "http://127.0.0.1:9");
        assert!(base("ftp://x").is_err());
        assert!(base("file:///etc").is_err());
    }
}

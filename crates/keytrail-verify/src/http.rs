//! The one HTTP client of verification, the endpoint of each verifier, and
//! the placeholder expansion of request templates.
//!
//! A request is always `base + path` where `base` comes from a verifier
//! definition or an explicit [`Endpoints`] override, never from a finding;
//! values put into a path are percent-encoded, and the final URL is checked
//! to still have the base's scheme, host and port before anything is sent.
//! Redirects are never followed (a redirect could carry the secret to
//! another host).

use std::collections::BTreeMap;
use std::time::Duration;

/// Endpoint overrides: verifier id → base URL. Tests and private
/// installations point verifiers at their own servers with them; nothing
/// else can change where a secret is sent.
#[derive(Debug, Clone, Default)]
pub struct Endpoints {
    overrides: BTreeMap<String, String>,
}

/// Environment variable prefix of endpoint overrides:
/// `KEYTRAIL_VERIFY_ENDPOINT_GITHUB=https://github.example.com/api/v3`.
pub const ENDPOINT_ENV_PREFIX: &str = "KEYTRAIL_VERIFY_ENDPOINT_";

/// The environment variable that overrides verifier `id`.
pub fn env_name(id: &str) -> String {
    let mut s = String::from(ENDPOINT_ENV_PREFIX);
    for c in id.chars() {
        s.push(if c.is_ascii_alphanumeric() {
            c.to_ascii_uppercase()
        } else {
            '_'
        });
    }
    s
}

impl Endpoints {
    /// No overrides.
    pub fn new() -> Endpoints {
        Endpoints::default()
    }

    /// Overrides from `KEYTRAIL_VERIFY_ENDPOINT_<ID>` variables for the
    /// given verifier ids. A malformed URL is an error naming the variable.
    pub fn from_env<'a>(ids: impl IntoIterator<Item = &'a str>) -> Result<Endpoints, String> {
        let mut e = Endpoints::new();
        for id in ids {
            let var = env_name(id);
            if let Ok(v) = std::env::var(&var)
                && !v.trim().is_empty()
            {
                e.set(id, v.trim()).map_err(|err| format!("{var}: {err}"))?;
            }
        }
        Ok(e)
    }

    /// Point verifier `id` at `base` (`http(s)://host[:port][/prefix]`).
    pub fn set(&mut self, id: &str, base: &str) -> Result<(), String> {
        parse_base(base)?;
        self.overrides
            .insert(id.to_string(), base.trim_end_matches('/').to_string());
        Ok(())
    }

    /// The override of `id`, if any.
    pub fn get(&self, id: &str) -> Option<&str> {
        self.overrides.get(id).map(String::as_str)
    }

    /// The base URL of `id`: its override, else `default`.
    pub fn resolve(&self, id: &str, default: Option<&str>) -> Option<String> {
        self.get(id)
            .map(str::to_string)
            .or_else(|| default.map(|d| d.trim_end_matches('/').to_string()))
    }
}

/// (scheme, authority) of a base URL, checked: http or https, a host, no
/// user info, no query or fragment.
pub fn parse_base(base: &str) -> Result<(String, String), String> {
    let (scheme, rest) = base
        .split_once("://")
        .ok_or_else(|| format!("`{base}` is not an http(s) URL"))?;
    if scheme != "http" && scheme != "https" {
        return Err(format!("`{base}`: scheme must be http or https"));
    }
    let authority = rest.split('/').next().unwrap_or("");
    if authority.is_empty()
        || authority.contains('@')
        || rest.contains('?')
        || rest.contains('#')
        || rest.contains('\\')
    {
        return Err(format!(
            "`{base}`: needs a host and no user info, query or fragment"
        ));
    }
    Ok((scheme.to_string(), authority.to_ascii_lowercase()))
}

/// Values available to a template.
pub struct Vars<'a> {
    /// The secret.
    pub secret: &'a str,
    /// The finding's context values.
    pub context: &'a [(String, String)],
}

/// How a placeholder value is written where it lands.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// As is (headers; CR/LF rejected).
    Raw,
    /// Percent-encoded (paths, queries, form bodies).
    Url,
}

/// Percent-encode everything but RFC 3986 unreserved characters.
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Expand `{{secret}}`, `{{context.NAME}}` and their `|url`/`|json`
/// variants. An unknown placeholder or a missing context value is an error.
pub fn expand(template: &str, vars: &Vars<'_>, default: Escape) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let j = after
            .find("}}")
            .ok_or_else(|| format!("unclosed placeholder in `{template}`"))?;
        let inner = after[..j].trim();
        let (name, filter) = match inner.split_once('|') {
            Some((n, f)) => (n.trim(), Some(f.trim())),
            None => (inner, None),
        };
        let value = if name == "secret" {
            vars.secret.to_string()
        } else if let Some(key) = name.strip_prefix("context.") {
            vars.context
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
                .ok_or_else(|| format!("the finding has no context value `{key}`"))?
        } else {
            return Err(format!("unknown placeholder `{{{{{inner}}}}}`"));
        };
        let written = match (filter, default) {
            (Some("url"), _) | (None, Escape::Url) => url_encode(&value),
            (Some("json"), _) => {
                let q = serde_json::to_string(&value).unwrap_or_default();
                q[1..q.len() - 1].to_string()
            }
            (Some("raw"), Escape::Raw) | (None, Escape::Raw) => {
                if value.contains(['\r', '\n']) {
                    return Err("a value holds a line break: not sent in a header".into());
                }
                value
            }
            (Some(f), _) => return Err(format!("unknown filter `{f}`")),
        };
        out.push_str(&written);
        rest = &after[j + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A request ready to send.
#[derive(Debug, Clone)]
pub struct Request {
    /// Method.
    pub method: String,
    /// Base URL (from the definition or an override).
    pub base: String,
    /// Expanded path and query, starting with `/`.
    pub path: String,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Option<Vec<u8>>,
}

/// An answer.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers, names lowercase.
    pub headers: Vec<(String, String)>,
    /// Body (at most [`MAX_BODY`] bytes, lossy UTF-8).
    pub body: String,
}

impl Response {
    /// A header value by (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON, if it is.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_str(&self.body).ok()
    }
}

/// Largest answer body read.
pub const MAX_BODY: u64 = 4 << 20;

/// The HTTP client.
#[derive(Clone)]
pub struct Client {
    agent: ureq::Agent,
    /// No proxy: for loopback endpoints (tests, local stand-ins).
    direct: ureq::Agent,
    sent: std::sync::Arc<std::sync::atomic::AtomicU64>,
    limits: std::sync::Arc<crate::limits::Limits>,
}

impl Client {
    /// A client with a whole-request timeout.
    pub fn new(timeout: Duration) -> Client {
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
        Client {
            agent: config(true).into(),
            direct: config(false).into(),
            sent: Default::default(),
            limits: std::sync::Arc::new(crate::limits::Limits::new(
                4,
                20.0,
                Default::default(),
                Duration::from_secs(10),
            )),
        }
    }

    /// The same client with other per-provider limits.
    pub(crate) fn with_limits(mut self, limits: crate::limits::Limits) -> Client {
        self.limits = std::sync::Arc::new(limits);
        self
    }

    /// Send `req` within `provider`'s limits. A `429` with a `Retry-After`
    /// of at most the configured maximum pauses the provider for that long
    /// and is retried (twice at most); a longer one is returned as is.
    pub fn send_limited(&self, req: &Request, provider: &str) -> Result<Response, String> {
        let mut tries = 0;
        loop {
            let r = {
                let _slot = self.limits.acquire(provider);
                self.send(req)?
            };
            if r.status != 429 || tries >= 2 {
                return Ok(r);
            }
            let wait = r
                .header("retry-after")
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            match wait {
                Some(w) if w <= self.limits.max_retry_after => {
                    self.limits.pause(provider, w);
                    tries += 1;
                }
                _ => return Ok(r),
            }
        }
    }

    /// Requests sent so far by this client and its clones.
    pub fn sent(&self) -> u64 {
        self.sent.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Send `req`. `Err` carries a transport problem (timeout, refused,
    /// TLS), never the secret.
    pub fn send(&self, req: &Request) -> Result<Response, String> {
        let url = format!("{}{}", req.base, req.path);
        // Defence in depth: the expanded URL still names the base's host.
        let (scheme, authority) = parse_base(&req.base)?;
        let (s2, rest) = url.split_once("://").ok_or("bad url")?;
        let a2 = rest.split(['/', '?', '#']).next().unwrap_or("");
        if s2 != scheme || a2.to_ascii_lowercase() != authority || !req.path.starts_with('/') {
            return Err("request would leave the verifier's host: not sent".into());
        }
        let host = authority
            .rsplit_once(':')
            .map_or(authority.as_str(), |(h, _)| h);
        let agent = if matches!(host, "127.0.0.1" | "localhost" | "[::1]") {
            &self.direct
        } else {
            &self.agent
        };
        let mut b = ureq::http::Request::builder()
            .method(req.method.as_str())
            .uri(&url);
        for (k, v) in &req.headers {
            b = b.header(k.as_str(), v.as_str());
        }
        self.sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let result = match &req.body {
            Some(body) => b
                .body(body.clone())
                .map_err(|e| format!("building the request: {e}"))
                .and_then(|r| agent.run(r).map_err(describe)),
            None => b
                .body(())
                .map_err(|e| format!("building the request: {e}"))
                .and_then(|r| agent.run(r).map_err(describe)),
        };
        let mut resp = result?;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_vec()
            .map_err(describe)?;
        Ok(Response {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        })
    }
}

fn describe(e: ureq::Error) -> String {
    match e {
        ureq::Error::Timeout(t) => format!("timed out ({t})"),
        ureq::Error::Io(io) => format!("network error: {io}"),
        other => format!("network error: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion_encodes_paths_and_refuses_unknowns() {
        let ctx = vec![("id".to_string(), "AC/1".to_string())];
        let v = Vars {
            secret: "a b/../@x",
            context: &ctx,
        };
        assert_eq!(
            expand("/bot{{secret}}/x", &v, Escape::Url).unwrap(),
            "/bota%20b%2F..%2F%40x/x"
        );
        assert_eq!(
            expand("Bearer {{ secret }}", &v, Escape::Raw).unwrap(),
            "Bearer a b/../@x"
        );
        assert_eq!(
            expand("{{context.id|url}}", &v, Escape::Raw).unwrap(),
            "AC%2F1"
        );
        assert!(expand("{{context.nope}}", &v, Escape::Raw).is_err());
        assert!(expand("{{env.HOME}}", &v, Escape::Raw).is_err());
        let nl = Vars {
            secret: "x\r\nHost: evil",
            context: &[],
        };
        assert!(expand("{{secret}}", &nl, Escape::Raw).is_err());
    }

    #[test]
    fn bases_are_checked() {
        assert!(parse_base("https://api.github.com").is_ok());
        assert!(parse_base("http://127.0.0.1:9/api/v3").is_ok());
        assert!(parse_base("https://u:p@evil.example").is_err());
        assert!(parse_base("ftp://x").is_err());
        assert!(parse_base("https://x?y").is_err());
        assert_eq!(env_name("aws.sts"), "KEYTRAIL_VERIFY_ENDPOINT_AWS_STS");
    }
}

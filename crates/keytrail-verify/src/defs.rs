//! Verifier definitions as data (`keytrail-rules/data/verifiers/*.yml`):
//! an HTTP request template, what answer means live or invalid, where the
//! identity is in the answer, and for `--analyze` how scopes map to a
//! privilege class.
//!
//! The request's host is never a template: it is the definition's
//! `base_url` (or an explicit endpoint override, see [`crate::Endpoints`]),
//! and the path must start with `/`, so a secret can only go to its
//! provider's host.

use keytrail_types::Privilege;
use serde::Deserialize;
use std::collections::BTreeMap;

/// A verifier file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifierFile {
    /// The verifiers of the file.
    pub verifiers: Vec<HttpVerifier>,
}

/// One data-driven verifier.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpVerifier {
    /// Stable id (`github`, `slack`); names the endpoint override
    /// `KEYTRAIL_VERIFY_ENDPOINT_<ID>` (upper case, `.`/`-` as `_`).
    pub id: String,
    /// Provider name for people.
    pub provider: String,
    /// Rule ids whose findings it verifies.
    pub rules: Vec<String>,
    /// `https://host[:port]` of the provider's API. `None` for self-hosted
    /// products (Vault, Artifactory…): verified only when an endpoint is
    /// configured.
    #[serde(default)]
    pub base_url: Option<String>,
    /// The request.
    pub request: RequestTemplate,
    /// What answer means the secret works.
    pub live: Criteria,
    /// What answer means it does not. Anything else is `unknown`.
    pub invalid: Criteria,
    /// Identity fields: output name → JSON path in the answer (`login`,
    /// `user.email`, `[0].name`), or `header:Name`.
    #[serde(default)]
    pub identity: BTreeMap<String, String>,
    /// Requests per second to this provider at most (default 10).
    #[serde(default)]
    pub rate_per_second: Option<f64>,
    /// Blast radius (`--analyze`).
    #[serde(default)]
    pub analyze: Option<Analyze>,
    /// Canned answers and the verdict they must give; run by the tests
    /// against a loopback server, as rules run their examples.
    #[serde(default)]
    pub examples: Vec<Example>,
    /// Why this verifier exists in this shape (API reference).
    #[serde(default)]
    pub references: Vec<String>,
}

/// An HTTP request with `{{secret}}` and `{{context.NAME}}` placeholders
/// (in path, query, headers and body; `{{secret|url}}` URL-encodes).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestTemplate {
    /// HTTP method (default GET).
    #[serde(default = "get")]
    pub method: String,
    /// Path and query, starting with `/`.
    pub path: String,
    /// Headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// HTTP basic authentication (both parts templated).
    #[serde(default)]
    pub basic_auth: Option<BasicAuth>,
    /// Body.
    #[serde(default)]
    pub body: Option<String>,
}

fn get() -> String {
    "GET".into()
}

/// Basic authentication parts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    /// User name template.
    pub username: String,
    /// Password template.
    #[serde(default)]
    pub password: String,
}

/// Conditions on an answer; all given ones must hold.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Criteria {
    /// Status codes.
    #[serde(default)]
    pub status: Vec<u16>,
    /// JSON path → expected value.
    #[serde(default)]
    pub json: BTreeMap<String, serde_json::Value>,
    /// A JSON path → one of these values.
    #[serde(default)]
    pub json_any: BTreeMap<String, Vec<serde_json::Value>>,
    /// The body contains this text.
    #[serde(default)]
    pub body_contains: Option<String>,
}

/// How scopes and reach are read and classified.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Analyze {
    /// Response header with a comma- or space-separated scope list.
    #[serde(default)]
    pub scopes_header: Option<String>,
    /// JSON path in the verification answer to the scopes (array or
    /// space/comma-separated string).
    #[serde(default)]
    pub scopes_json: Option<String>,
    /// Resources read from the verification answer: JSON path → prefix.
    #[serde(default)]
    pub resources: BTreeMap<String, String>,
    /// Resources read from the identity: identity field → prefix.
    #[serde(default)]
    pub identity_resources: BTreeMap<String, String>,
    /// More requests (same host, same authentication) for reach.
    #[serde(default)]
    pub requests: Vec<AnalyzeRequest>,
    /// Classification, first match wins.
    #[serde(default)]
    pub privilege: Vec<PrivilegeRule>,
    /// What the provider's API does not tell, stated on every analysis.
    #[serde(default)]
    pub unknowns: Vec<String>,
}

/// A follow-up request of an analysis.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalyzeRequest {
    /// Path and query (templated like the verification request's).
    pub path: String,
    /// What it lists (`organisations`), for the unknowns when it fails.
    pub what: String,
    /// JSON path → resource prefix.
    #[serde(default)]
    pub resources: BTreeMap<String, String>,
    /// JSON path → scopes.
    #[serde(default)]
    pub scopes: Option<String>,
    /// A scope the secret has when this request succeeds (permission
    /// probing for keys whose permissions the provider does not list).
    #[serde(default)]
    pub scope_if_ok: Option<String>,
}

/// One classification rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivilegeRule {
    /// Any of these scopes (exact, or a `prefix*`).
    #[serde(default)]
    pub scopes_any: Vec<String>,
    /// The secret starts with one of these.
    #[serde(default)]
    pub secret_prefix: Vec<String>,
    /// Identity field → value.
    #[serde(default)]
    pub identity: BTreeMap<String, String>,
    /// Matches when scopes were read and none matched an earlier rule.
    #[serde(default)]
    pub any_scopes: bool,
    /// Always matches (a default).
    #[serde(default)]
    pub always: bool,
    /// The class given.
    pub privilege: Privilege,
    /// Why (evidence).
    pub because: String,
}

/// A canned answer and the verdict it must give.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Example {
    /// Context values of the finding (`id`, `account_sid`).
    #[serde(default)]
    pub context: BTreeMap<String, String>,
    /// Status code answered.
    pub status: u16,
    /// Headers answered.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Body answered.
    #[serde(default)]
    pub body: String,
    /// Expected status (`live`, `invalid`, `unknown`).
    pub expect: String,
    /// Expected identity fields.
    #[serde(default)]
    pub identity: BTreeMap<String, String>,
}

/// Structural problems of a definition (wrong host, path, placeholders).
pub fn check(v: &HttpVerifier) -> Result<(), String> {
    if v.id.is_empty()
        || !v
            .id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return Err(format!(
            "verifier id `{}` must be lowercase [a-z0-9.-]",
            v.id
        ));
    }
    if let Some(base) = &v.base_url {
        crate::http::parse_base(base).map_err(|e| format!("{}: base_url: {e}", v.id))?;
        if !base.starts_with("https://") {
            return Err(format!("{}: base_url must be https", v.id));
        }
    }
    let paths = std::iter::once(&v.request.path).chain(
        v.analyze
            .iter()
            .flat_map(|a| a.requests.iter().map(|r| &r.path)),
    );
    for p in paths {
        check_path(p).map_err(|e| format!("{}: {e}", v.id))?;
    }
    if v.rules.is_empty() {
        return Err(format!("{}: no rules", v.id));
    }
    if v.live.is_empty() || v.invalid.is_empty() {
        return Err(format!("{}: `live` and `invalid` need a condition", v.id));
    }
    Ok(())
}

/// A request path must start with `/` and, before placeholders are
/// expanded, name no other host (`//`, `@`, `\`).
pub fn check_path(p: &str) -> Result<(), String> {
    if !p.starts_with('/') || p.starts_with("//") || p.contains('\\') {
        return Err(format!(
            "request path `{p}` must start with a single `/` and name no host"
        ));
    }
    if let Some(i) = p.find("{{") {
        let prefix = &p[..i];
        if !prefix.contains('/') {
            return Err(format!("request path `{p}` starts with a placeholder"));
        }
    }
    Ok(())
}

impl Criteria {
    /// Whether no condition is set.
    pub fn is_empty(&self) -> bool {
        self.status.is_empty()
            && self.json.is_empty()
            && self.json_any.is_empty()
            && self.body_contains.is_none()
    }

    /// Whether an answer meets every condition.
    pub fn matches(&self, status: u16, body: &str, json: Option<&serde_json::Value>) -> bool {
        if self.is_empty() {
            return false;
        }
        if !self.status.is_empty() && !self.status.contains(&status) {
            return false;
        }
        if let Some(needle) = &self.body_contains
            && !body.contains(needle.as_str())
        {
            return false;
        }
        for (path, want) in &self.json {
            let Some(j) = json else { return false };
            if !crate::jsonpath::get(j, path).contains(&want) {
                return false;
            }
        }
        for (path, wants) in &self.json_any {
            let Some(j) = json else { return false };
            let got = crate::jsonpath::get(j, path);
            if !got.iter().any(|v| wants.contains(v)) {
                return false;
            }
        }
        true
    }
}

/// Parse every embedded definition. Errors name the file.
pub fn builtin() -> Result<Vec<HttpVerifier>, String> {
    let mut out = Vec::new();
    for (name, text) in keytrail_rules::builtin_verifiers() {
        out.extend(parse(name, text)?);
    }
    Ok(out)
}

/// Parse one verifier file; `origin` names it in errors.
pub fn parse(origin: &str, text: &str) -> Result<Vec<HttpVerifier>, String> {
    let f: VerifierFile = serde_yaml_ng::from_str(text).map_err(|e| match e.location() {
        Some(l) => format!("{origin}:{}:{}: {e}", l.line(), l.column()),
        None => format!("{origin}: {e}"),
    })?;
    for v in &f.verifiers {
        check(v).map_err(|e| format!("{origin}: {e}"))?;
    }
    Ok(f.verifiers)
}

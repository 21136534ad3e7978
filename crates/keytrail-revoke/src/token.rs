//! Token revocation through each provider's own API, for the providers
//! that document one a leaked token can be revoked with:
//!
//! | provider  | request                                              | success |
//! |-----------|------------------------------------------------------|---------|
//! | github    | `POST /credentials/revoke` `{"credentials":[token]}`, unauthenticated (ghp_, github_pat_, gho_, ghu_, ghr_) | 202 |
//! | github    | `DELETE /installation/token` as the token (ghs_ installation tokens) | 204 |
//! | gitlab    | `DELETE /api/v4/personal_access_tokens/self`, `PRIVATE-TOKEN` | 204 |
//! | slack     | `POST /api/auth.revoke`, `Authorization: Bearer`      | 200 `{"ok":true,"revoked":true}` |
//! | npm       | `GET /-/npm/v1/tokens` then `DELETE /-/npm/v1/tokens/token/{key}` as the token | 2xx |
//! | vault     | `POST /v1/auth/token/revoke-self`, `X-Vault-Token`    | 204 |
//! | okta      | `DELETE /api/v1/api-tokens/current`, `Authorization: SSWS` | 204 |
//! | vercel    | `DELETE /v3/user/tokens/current`, `Authorization: Bearer` | 200 |
//! | buildkite | `DELETE /v2/access-token`, `Authorization: Bearer`    | 204 |
//! | dropbox   | `POST /2/auth/token/revoke`, `Authorization: Bearer`  | 200 |
//!
//! A token is sent only to its own provider: it must have that provider's
//! format, the base URL is the provider's unless the user names another
//! (GitHub Enterprise, self-managed GitLab, a Vault or Okta address; HTTPS
//! unless loopback), and redirects are never followed. 429, 5xx and
//! network errors are retried twice within the timeout; the provider
//! rejecting the token (401/403, Slack's `invalid_auth`) means it is
//! already invalid, reported as such — except for GitHub's credential
//! revocation API, which never judges the token (202 for any, 403 for an
//! authenticated call, 422 for a bad body or too many calls).

use keytrail_types::Secret;
use serde::Serialize;
use std::time::{Duration, Instant};

/// A provider with a token revocation API.
#[derive(Debug)]
pub struct Provider {
    /// The name on the command line (`github`).
    pub name: &'static str,
    /// The product name.
    pub display: &'static str,
    /// The default API base URL, if there is one.
    pub default_base: Option<&'static str>,
    /// The environment variable naming the base URL, as the provider's own
    /// tools read it (`VAULT_ADDR`).
    pub base_env: Option<&'static str>,
    /// The token formats accepted (anchored regex).
    pub pattern: &'static str,
    /// What it revokes, for `--help` and the runbook listing.
    pub kinds: &'static str,
}

/// Every provider `keytrail revoke <provider>` handles with an API.
pub const PROVIDERS: &[Provider] = &[
    Provider {
        name: "github",
        display: "GitHub",
        default_base: Some("https://api.github.com"),
        base_env: None,
        pattern: r"^(?:ghp_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}|gho_[A-Za-z0-9]{36}|ghu_[A-Za-z0-9]{36}|ghr_[A-Za-z0-9]{36,76}|ghs_[A-Za-z0-9]{36})$",
        kinds: "personal access tokens (classic and fine-grained), OAuth and GitHub App user tokens, refresh tokens, installation tokens",
    },
    Provider {
        name: "gitlab",
        display: "GitLab",
        default_base: Some("https://gitlab.com"),
        base_env: None,
        pattern: r"^glpat-[A-Za-z0-9_.-]{20,300}$",
        kinds: "personal, project and group access tokens (glpat-)",
    },
    Provider {
        name: "slack",
        display: "Slack",
        default_base: Some("https://slack.com"),
        base_env: None,
        pattern: r"^(?:xox[abeprs]|xoxe\.xox[bp])-[A-Za-z0-9-]{10,250}$",
        kinds: "bot, user and legacy tokens (xoxb-, xoxp-, xoxa-, xoxe.xoxp-)",
    },
    Provider {
        name: "npm",
        display: "npm",
        default_base: Some("https://registry.npmjs.org"),
        base_env: None,
        pattern: r"^npm_[A-Za-z0-9]{36}$",
        kinds: "access tokens (npm_)",
    },
    Provider {
        name: "vault",
        display: "HashiCorp Vault",
        default_base: None,
        base_env: Some("VAULT_ADDR"),
        pattern: r"^(?:hvs\.|hvb\.|s\.|b\.)[A-Za-z0-9_.-]{20,400}$",
        kinds: "service and batch tokens (hvs., hvb., s.)",
    },
    Provider {
        name: "okta",
        display: "Okta",
        default_base: None,
        base_env: None,
        pattern: r"^00[A-Za-z0-9_-]{40}$",
        kinds: "API tokens (SSWS)",
    },
    Provider {
        name: "vercel",
        display: "Vercel",
        default_base: Some("https://api.vercel.com"),
        base_env: None,
        pattern: r"^(?:vc[pikar]_[A-Za-z0-9_-]{50,60}|[A-Za-z0-9]{24})$",
        kinds: "access tokens",
    },
    Provider {
        name: "buildkite",
        display: "Buildkite",
        default_base: Some("https://api.buildkite.com"),
        base_env: None,
        pattern: r"^bkua_[a-f0-9]{40}$",
        kinds: "API access tokens (bkua_)",
    },
    Provider {
        name: "dropbox",
        display: "Dropbox",
        default_base: Some("https://api.dropboxapi.com"),
        base_env: None,
        pattern: r"^sl\.(?:u\.)?[A-Za-z0-9_-]{130,1400}$",
        kinds: "OAuth access tokens (sl.)",
    },
];

/// The provider called `name`.
pub fn provider(name: &str) -> Option<&'static Provider> {
    PROVIDERS.iter().find(|p| p.name == name)
}

/// Why a token revocation could not be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The token does not have this provider's format.
    #[error("the token does not look like a {0} token ({1}); it is not sent")]
    WrongFormat(&'static str, &'static str),
    /// No base URL known.
    #[error("{0} has no public API address: give it with --base-url{1}")]
    NoBase(&'static str, String),
    /// The base URL is unusable.
    #[error("base URL `{0}`: {1}")]
    BadBase(String, String),
}

/// One HTTP request, with the token inside.
#[derive(Debug, Clone)]
struct Request {
    method: &'static str,
    url: String,
    headers: Vec<(&'static str, String)>,
    body: Option<String>,
}

/// A request as shown and logged: the token redacted.
#[derive(Debug, Clone, Serialize)]
pub struct ShownRequest {
    /// `POST`, `DELETE`, …
    pub method: String,
    /// The URL.
    pub url: String,
    /// Headers, the token redacted.
    pub headers: Vec<(String, String)>,
    /// The body, the token redacted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

/// A planned revocation.
#[derive(Debug)]
pub struct Plan {
    /// The provider.
    pub provider: &'static Provider,
    token: Secret<String>,
    base: String,
    kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    GitHubRevoke,
    GitHubInstallation,
    GitLabSelf,
    Slack,
    Npm,
    Vault,
    Okta,
    Vercel,
    Buildkite,
    Dropbox,
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host == "127.0.0.1" || host == "[::1]" || host.starts_with("127.")
}

/// Checks a base URL: `https://host[:port][/path]`, or `http://` to a
/// loopback address; returned without a trailing slash.
pub fn check_base(url: &str) -> Result<String, PlanError> {
    let bad = |why: &str| PlanError::BadBase(url.to_string(), why.to_string());
    let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("not a URL"))?;
    let host_port = rest.split('/').next().unwrap_or_default();
    if host_port.is_empty() || host_port.contains('@') {
        return Err(bad("no host, or credentials in the URL"));
    }
    let host = if host_port.starts_with('[') {
        host_port
            .split(']')
            .next()
            .map(|h| format!("{h}]"))
            .unwrap_or_default()
    } else {
        host_port.split(':').next().unwrap_or_default().to_string()
    };
    match scheme {
        "https" => {}
        "http" if is_loopback(&host) => {}
        "http" => return Err(bad("plain http would send the token in clear; use https")),
        _ => return Err(bad("only https (or http to a loopback address) is allowed")),
    }
    if rest.contains(['?', '#']) {
        return Err(bad("no query or fragment allowed"));
    }
    Ok(url.trim_end_matches('/').to_string())
}

/// Plans the revocation of `token` at `provider` (`base` overrides the API
/// address: GitHub Enterprise `https://HOST/api/v3`, a GitLab instance, a
/// Vault or Okta address).
pub fn plan(
    provider: &'static Provider,
    token: Secret<String>,
    base: Option<&str>,
) -> Result<Plan, PlanError> {
    let re = regex::Regex::new(provider.pattern).expect("provider patterns compile");
    if !re.is_match(token.expose()) {
        return Err(PlanError::WrongFormat(provider.display, provider.kinds));
    }
    let env_base = provider
        .base_env
        .and_then(|k| std::env::var(k).ok())
        .filter(|v| !v.is_empty());
    let base = match base
        .map(str::to_string)
        .or(env_base)
        .or(provider.default_base.map(str::to_string))
    {
        Some(b) => check_base(&b)?,
        None => {
            return Err(PlanError::NoBase(
                provider.display,
                provider
                    .base_env
                    .map(|e| format!(" or {e}"))
                    .unwrap_or_default(),
            ));
        }
    };
    let t = token.expose();
    let kind = match provider.name {
        "github" if t.starts_with("ghs_") => Kind::GitHubInstallation,
        "github" => Kind::GitHubRevoke,
        "gitlab" => Kind::GitLabSelf,
        "slack" => Kind::Slack,
        "npm" => Kind::Npm,
        "vault" => Kind::Vault,
        "okta" => Kind::Okta,
        "vercel" => Kind::Vercel,
        "buildkite" => Kind::Buildkite,
        _ => Kind::Dropbox,
    };
    Ok(Plan {
        provider,
        token,
        base,
        kind,
    })
}

/// The result of a revocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TokenResult {
    /// Dry run: nothing sent.
    Planned,
    /// The provider confirmed the revocation.
    Revoked,
    /// The provider refused the token itself: already revoked, expired or
    /// never valid.
    AlreadyInvalid,
    /// The revocation failed (see `detail`).
    Failed,
}

/// What `revoke` did with one token.
#[derive(Debug, Clone, Serialize)]
pub struct TokenReport {
    /// The provider name.
    pub provider: &'static str,
    /// The token, redacted.
    pub target: String,
    /// The first 16 hex digits of the token's SHA-256, to match it with
    /// findings and logs.
    pub fingerprint: String,
    /// `dry-run` or `act`.
    pub mode: crate::Mode,
    /// The requests (the token redacted): planned, or sent.
    pub requests: Vec<ShownRequest>,
    /// The result.
    pub result: TokenResult,
    /// The last HTTP status received.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// The provider's answer or the error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The SHA-256 fingerprint of a token (first 16 hex digits).
pub fn fingerprint(token: &str) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(token.as_bytes());
    d.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

impl Plan {
    /// The token, redacted.
    pub fn target(&self) -> String {
        self.token.redacted()
    }

    fn first_request(&self) -> Request {
        let t = self.token.expose().clone();
        let b = &self.base;
        let json = || ("Content-Type", "application/json".to_string());
        match self.kind {
            Kind::GitHubRevoke => Request {
                method: "POST",
                url: format!("{b}/credentials/revoke"),
                headers: vec![
                    ("Accept", "application/vnd.github+json".into()),
                    ("X-GitHub-Api-Version", "2022-11-28".into()),
                    json(),
                ],
                body: Some(serde_json::json!({ "credentials": [t] }).to_string()),
            },
            Kind::GitHubInstallation => Request {
                method: "DELETE",
                url: format!("{b}/installation/token"),
                headers: vec![
                    ("Accept", "application/vnd.github+json".into()),
                    ("X-GitHub-Api-Version", "2022-11-28".into()),
                    ("Authorization", format!("Bearer {t}")),
                ],
                body: None,
            },
            Kind::GitLabSelf => Request {
                method: "DELETE",
                url: format!("{b}/api/v4/personal_access_tokens/self"),
                headers: vec![("PRIVATE-TOKEN", t)],
                body: None,
            },
            Kind::Slack => Request {
                method: "POST",
                url: format!("{b}/api/auth.revoke"),
                headers: vec![
                    ("Authorization", format!("Bearer {t}")),
                    ("Content-Type", "application/x-www-form-urlencoded".into()),
                ],
                body: Some(String::new()),
            },
            Kind::Npm => Request {
                method: "GET",
                url: format!("{b}/-/npm/v1/tokens"),
                headers: vec![
                    ("Authorization", format!("Bearer {t}")),
                    ("Accept", "application/json".into()),
                ],
                body: None,
            },
            Kind::Vault => Request {
                method: "POST",
                url: format!("{b}/v1/auth/token/revoke-self"),
                headers: vec![("X-Vault-Token", t)],
                body: Some(String::new()),
            },
            Kind::Okta => Request {
                method: "DELETE",
                url: format!("{b}/api/v1/api-tokens/current"),
                headers: vec![
                    ("Authorization", format!("SSWS {t}")),
                    ("Accept", "application/json".into()),
                ],
                body: None,
            },
            Kind::Vercel => Request {
                method: "DELETE",
                url: format!("{b}/v3/user/tokens/current"),
                headers: vec![("Authorization", format!("Bearer {t}"))],
                body: None,
            },
            Kind::Buildkite => Request {
                method: "DELETE",
                url: format!("{b}/v2/access-token"),
                headers: vec![("Authorization", format!("Bearer {t}"))],
                body: None,
            },
            Kind::Dropbox => Request {
                method: "POST",
                url: format!("{b}/2/auth/token/revoke"),
                headers: vec![("Authorization", format!("Bearer {t}"))],
                body: None,
            },
        }
    }

    fn npm_delete(&self, key: &str) -> Request {
        Request {
            method: "DELETE",
            url: format!("{}/-/npm/v1/tokens/token/{key}", self.base),
            headers: vec![("Authorization", format!("Bearer {}", self.token.expose()))],
            body: None,
        }
    }

    fn show(&self, r: &Request) -> ShownRequest {
        let t = self.token.expose();
        let red = self.token.redacted();
        ShownRequest {
            method: r.method.to_string(),
            url: r.url.replace(t.as_str(), &red),
            headers: r
                .headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.replace(t.as_str(), &red)))
                .collect(),
            body: r.body.as_ref().map(|b| b.replace(t.as_str(), &red)),
        }
    }

    /// The requests a dry run shows (npm's second request is decided by the
    /// answer to its first; it is shown with the token's key as `{key}`).
    pub fn shown_requests(&self) -> Vec<ShownRequest> {
        let mut v = vec![self.show(&self.first_request())];
        if self.kind == Kind::Npm {
            v.push(self.show(&self.npm_delete("{key}")));
        }
        v
    }

    fn report(
        &self,
        mode: crate::Mode,
        requests: Vec<ShownRequest>,
        result: TokenResult,
        status: Option<u16>,
        detail: Option<String>,
    ) -> TokenReport {
        TokenReport {
            provider: self.provider.name,
            target: self.target(),
            fingerprint: fingerprint(self.token.expose()),
            mode,
            requests,
            result,
            http_status: status,
            detail,
        }
    }

    /// The dry-run report.
    pub fn dry_run(&self) -> TokenReport {
        self.report(
            crate::Mode::DryRun,
            self.shown_requests(),
            TokenResult::Planned,
            None,
            None,
        )
    }

    /// Sends the revocation; never fails as a call: a failure is a report
    /// with `result: failed`.
    pub fn execute(&self, timeout: Duration) -> TokenReport {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(timeout))
            .user_agent(concat!("keytrail/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        let deadline = Instant::now() + timeout;
        let first = self.first_request();
        let mut shown = vec![self.show(&first)];
        let (status, body) = match send(&agent, &first, deadline) {
            Ok(r) => r,
            Err(e) => {
                return self.report(crate::Mode::Act, shown, TokenResult::Failed, None, Some(e));
            }
        };
        let (result, detail) = match self.kind {
            Kind::Slack => slack_result(status, &body),
            Kind::Npm if status == 200 => {
                let key = npm_key(&body, self.token.expose());
                let del = self.npm_delete(key.as_deref().unwrap_or(self.token.expose()));
                shown.push(self.show(&del));
                match send(&agent, &del, deadline) {
                    Ok((s, b)) => {
                        let (r, d) = status_result(s, &[200, 202, 204], &b);
                        return self.report(crate::Mode::Act, shown, r, Some(s), d);
                    }
                    Err(e) => {
                        return self.report(
                            crate::Mode::Act,
                            shown,
                            TokenResult::Failed,
                            Some(status),
                            Some(e),
                        );
                    }
                }
            }
            Kind::GitHubRevoke => github_revoke_result(status, &body),
            Kind::Vercel | Kind::Dropbox => status_result(status, &[200], &body),
            _ => status_result(status, &[200, 204], &body),
        };
        self.report(crate::Mode::Act, shown, result, Some(status), detail)
    }
}

/// The npm token key of `token` in a `GET /-/npm/v1/tokens` answer: the
/// entry whose key is the token's SHA-512 (hex), else none (the token
/// itself is then used as the key, as `npm token revoke` does).
fn npm_key(body: &str, token: &str) -> Option<String> {
    use sha2::Digest;
    let want: String = sha2::Sha512::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    v.get("objects")?
        .as_array()?
        .iter()
        .filter_map(|o| o.get("key")?.as_str())
        .find(|k| *k == want)
        .map(str::to_string)
}

fn snippet(body: &str) -> String {
    let s: String = body.chars().take(200).collect();
    s.replace(['\n', '\r'], " ")
}

fn status_result(status: u16, ok: &[u16], body: &str) -> (TokenResult, Option<String>) {
    if ok.contains(&status) {
        (TokenResult::Revoked, None)
    } else if status == 401 || status == 403 || (status == 404 && body.contains("token")) {
        (
            TokenResult::AlreadyInvalid,
            Some(format!(
                "HTTP {status}: the provider rejected the token (already revoked, expired or not valid)"
            )),
        )
    } else if (300..400).contains(&status) {
        (
            TokenResult::Failed,
            Some(format!(
                "HTTP {status}: redirect not followed (a token is only sent to the address given)"
            )),
        )
    } else {
        (
            TokenResult::Failed,
            Some(format!("HTTP {status}: {}", snippet(body))),
        )
    }
}

/// GitHub's credential revocation API takes tokens it may not be able to
/// check and answers 202 whatever they were; it does not judge the token,
/// so no status means "already invalid": 403 is its answer to an
/// authenticated request, 422 to an invalid body or too many requests.
fn github_revoke_result(status: u16, body: &str) -> (TokenResult, Option<String>) {
    match status {
        202 => (TokenResult::Revoked, None),
        403 => (
            TokenResult::Failed,
            Some(format!(
                "HTTP 403: GitHub refuses authenticated calls to the credential revocation API: {}",
                snippet(body)
            )),
        ),
        422 => (
            TokenResult::Failed,
            Some(format!(
                "HTTP 422: validation failed, or the endpoint is rate limited (60 requests an hour): {}",
                snippet(body)
            )),
        ),
        300..400 => status_result(status, &[202], body),
        _ => (
            TokenResult::Failed,
            Some(format!("HTTP {status}: {}", snippet(body))),
        ),
    }
}

fn slack_result(status: u16, body: &str) -> (TokenResult, Option<String>) {
    if status != 200 {
        return status_result(status, &[], body);
    }
    let v: serde_json::Value = match serde_json::from_str(body) {
        Ok(v) => v,
        Err(_) => {
            return (
                TokenResult::Failed,
                Some(format!("unexpected answer (not JSON): {}", snippet(body))),
            );
        }
    };
    match (
        v.get("ok").and_then(|o| o.as_bool()),
        v.get("error").and_then(|e| e.as_str()),
    ) {
        (Some(true), _) if v.get("revoked").and_then(|r| r.as_bool()) == Some(true) => {
            (TokenResult::Revoked, None)
        }
        (Some(true), _) => (
            TokenResult::Failed,
            Some("Slack answered ok but did not say `revoked: true`".into()),
        ),
        (
            Some(false),
            Some(
                e @ ("invalid_auth" | "token_revoked" | "account_inactive" | "token_expired"
                | "not_authed"),
            ),
        ) => (TokenResult::AlreadyInvalid, Some(format!("Slack: {e}"))),
        (Some(false), Some(e)) => (TokenResult::Failed, Some(format!("Slack: {e}"))),
        _ => (
            TokenResult::Failed,
            Some(format!("unexpected answer: {}", snippet(body))),
        ),
    }
}

/// Sends `r`, retrying 429, 5xx and network errors twice (waiting as
/// `Retry-After` says, within the deadline); the status and at most 64 KiB
/// of the body.
fn send(agent: &ureq::Agent, r: &Request, deadline: Instant) -> Result<(u16, String), String> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = (|| -> Result<(u16, String, Option<u64>), ureq::Error> {
            let mut resp = match r.method {
                "GET" | "DELETE" => {
                    let mut b = if r.method == "GET" {
                        agent.get(&r.url)
                    } else {
                        agent.delete(&r.url)
                    };
                    for (k, v) in &r.headers {
                        b = b.header(*k, v);
                    }
                    b.call()?
                }
                _ => {
                    let mut b = agent.post(&r.url);
                    for (k, v) in &r.headers {
                        b = b.header(*k, v);
                    }
                    match &r.body {
                        Some(body) => b.send(body.as_bytes())?,
                        None => b.send_empty()?,
                    }
                }
            };
            let status = resp.status().as_u16();
            let retry_after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            let body = resp
                .body_mut()
                .with_config()
                .limit(64 * 1024)
                .read_to_string()
                .unwrap_or_else(|e| format!("<unreadable body: {e}>"));
            Ok((status, body, retry_after))
        })();
        let (wait, last) = match result {
            Ok((s, body, ra)) if s == 429 || s >= 500 => (
                Duration::from_secs(ra.unwrap_or(attempt).min(10)),
                Ok((s, body)),
            ),
            Ok((s, body, _)) => return Ok((s, body)),
            Err(e) => (
                Duration::from_secs(attempt),
                Err(format!("{} {}: {e}", r.method, redact_url(&r.url))),
            ),
        };
        if attempt >= 3 || Instant::now() + wait >= deadline {
            return match last {
                Ok((429, body)) => Err(format!(
                    "HTTP 429: rate limited after {attempt} attempt(s): {}",
                    snippet(&body)
                )),
                Ok((s, body)) => Err(format!(
                    "HTTP {s} after {attempt} attempt(s): {}",
                    snippet(&body)
                )),
                Err(e) => Err(format!("{e} (after {attempt} attempt(s))")),
            };
        }
        std::thread::sleep(wait);
    }
}

/// The URL without its last path segment when that segment could be a
/// token (npm's delete by token).
fn redact_url(url: &str) -> String {
    match url.rsplit_once('/') {
        Some((head, tail)) if tail.len() > 20 => {
            format!("{head}/{}", keytrail_types::redact(tail.as_bytes()))
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_revocation_statuses_never_mean_already_invalid() {
        assert_eq!(github_revoke_result(202, "").0, TokenResult::Revoked);
        for status in [401, 403, 404, 422, 500] {
            let (result, detail) = github_revoke_result(status, "{}");
            assert_eq!(result, TokenResult::Failed, "{status}");
            assert!(detail.unwrap().starts_with(&format!("HTTP {status}")));
        }
    }

    #[test]
    fn base_urls_must_be_https_unless_loopback() {
        assert_eq!(
            check_base("https://ghe.example.com/api/v3/").unwrap(),
            "https://ghe.example.com/api/v3"
        );
        assert!(check_base("http://127.0.0.1:8080").is_ok());
        assert!(check_base("http://localhost:1").is_ok());
        for bad in [
            "http://example.com",
            "ftp://x",
            "https://",
            "https://u:p@host",
            "https://h/?x=1",
            "example.com",
        ] {
            assert!(check_base(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tokens_of_another_provider_are_refused() {
        let gh = provider("github").unwrap();
        let e = plan(
            gh,
            Secret::new("glpat-abcdefghijklmnopqrstuvwxyz".into()),
            None,
        )
        .unwrap_err();
        assert!(matches!(e, PlanError::WrongFormat("GitHub", _)));
        assert!(
            plan(
                provider("okta").unwrap(),
                Secret::new(format!("00{}", "a".repeat(40))),
                None
            )
            .is_err_and(|e| matches!(e, PlanError::NoBase(..)))
        );
    }

    #[test]
    fn shown_requests_never_hold_the_token() {
        let token = format!("ghp_{}", "A1b2".repeat(9));
        let p = plan(
            provider("github").unwrap(),
            Secret::new(token.clone()),
            None,
        )
        .unwrap();
        let shown = serde_json::to_string(&p.dry_run()).unwrap();
        assert!(!shown.contains(&token));
        assert!(shown.contains("https://api.github.com/credentials/revoke"));
    }
}

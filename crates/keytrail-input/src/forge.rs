//! GitHub organisations and GitLab groups (`keytrail scan --github-org ORG`,
//! `--gitlab-group GROUP`): every repository listed through the REST API
//! (paged: GitHub's `Link: <…>; rel="next"`, GitLab's `X-Next-Page`), to be
//! cloned and scanned through the git URL source, with the gists of a
//! GitHub organisation's members (or of a user); plus the discussions the
//! API offers, delivered here as export records: GitHub issue and pull
//! request bodies, issue and pull request comments and review comments;
//! GitLab issue and merge request descriptions and their notes, and project
//! snippets. Each is
//! located by its web URL, with the author and creation time.
//!
//! Tokens come from the caller (the CLI reads `GITHUB_TOKEN` and
//! `GITLAB_TOKEN`); they are sent as `Authorization: Bearer` (GitHub) or
//! `PRIVATE-TOKEN` (GitLab), put in HTTPS clone URLs as user info (which the
//! git source never shows), and never printed. The API base is overridable
//! (GitHub Enterprise `https://HOST/api/v3`, self-managed GitLab
//! `https://HOST/api/v4`, tests). Rate limits: a `429`, or a `403` with
//! `X-RateLimit-Remaining: 0` or `Retry-After`, is waited out when the
//! wait is at most [`ForgeClient::max_wait`], else it is an error saying
//! until when and what to do. Every failure is a message naming the URL.

use std::time::Duration;

use keytrail_types::{Diagnostic, ExportOrigin, Origin, Secret};
use serde_json::Value;
use ureq::Agent;

use crate::export::{render, str_at};
use crate::link::next_link;
use crate::{Blob, BlobSink, Content};

/// Largest API response read (bytes).
const MAX_RESPONSE: u64 = 64 << 20;
/// Pages followed at most per listing (100 items each).
const MAX_PAGES: usize = 10_000;

/// Which forge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForgeKind {
    /// GitHub (or GitHub Enterprise Server).
    GitHub,
    /// GitLab (gitlab.com or self-managed).
    GitLab,
}

impl ForgeKind {
    /// The public API base.
    pub fn default_api(self) -> &'static str {
        match self {
            ForgeKind::GitHub => "https://api.github.com",
            ForgeKind::GitLab => "https://gitlab.com/api/v4",
        }
    }
}

/// A repository of an organisation or group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForgeRepo {
    /// `org/repo` (`group/sub/project` for GitLab).
    pub full_name: String,
    /// The URL to clone (HTTPS ones carry the token as user info).
    pub clone_url: String,
    /// The clone URL as the forge lists it, without the token: what may be
    /// shown, stored or put on a queue.
    pub url: String,
    /// The wiki's clone URL, when the repository has a wiki (with the
    /// token, as `clone_url`).
    pub wiki_url: Option<String>,
    /// The wiki's clone URL without the token.
    pub wiki: Option<String>,
    /// Archived (read-only) on the forge (GitHub's and GitLab's `archived`).
    pub archived: bool,
    /// A fork of another repository (GitHub's `fork`, GitLab's
    /// `forked_from_project`).
    pub fork: bool,
    /// GitLab's project id (issues and notes are under it).
    pub id: Option<u64>,
    /// Whether issues or merge requests may exist (GitHub's `has_issues`, GitLab's `issues_enabled`).
    pub has_issues: bool,
}

/// A REST client for one forge.
pub struct ForgeClient {
    kind: ForgeKind,
    api: String,
    token: Option<Secret<String>>,
    agent: Agent,
    /// Longest wait for a rate limit to reset before giving up.
    pub max_wait: Duration,
}

impl ForgeClient {
    /// A client for `kind` at `api` (default: the public API), with `token`.
    pub fn new(kind: ForgeKind, api: Option<&str>, token: Option<Secret<String>>) -> ForgeClient {
        let agent: Agent = Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(120)))
            .timeout_per_read(Some(Duration::from_secs(120)))
            .user_agent(concat!("keytrail/", env!("CARGO_PKG_VERSION")))
            .max_redirects(5)
            .build()
            .into();
        ForgeClient {
            kind,
            api: api
                .unwrap_or(kind.default_api())
                .trim_end_matches('/')
                .to_string(),
            token,
            agent,
            max_wait: Duration::from_secs(60),
        }
    }

    /// Every repository of organisation (GitHub; a user's when no
    /// organisation has the name) or group with its subgroups (GitLab).
    pub fn repositories(&self, owner: &str) -> Result<Vec<ForgeRepo>, String> {
        let enc = encode(owner);
        let items = match self.kind {
            ForgeKind::GitHub => {
                let org = format!("{}/orgs/{enc}/repos?per_page=100&type=all", self.api);
                match self.get_all(&org) {
                    Err(e) if e.contains("HTTP 404") => self.get_all(&format!(
                        "{}/users/{enc}/repos?per_page=100&type=all",
                        self.api
                    ))?,
                    other => other?,
                }
            }
            ForgeKind::GitLab => self.get_all(&format!(
                "{}/groups/{enc}/projects?include_subgroups=true&per_page=100",
                self.api
            ))?,
        };
        Ok(items.iter().filter_map(|r| self.repo(r)).collect())
    }

    /// GitHub: the gists of the organisation's (public, or visible to the
    /// token) members, or of the user, as repositories to clone.
    pub fn gists(&self, owner: &str) -> Result<Vec<ForgeRepo>, String> {
        if self.kind != ForgeKind::GitHub {
            return Ok(Vec::new());
        }
        let enc = encode(owner);
        let logins: Vec<String> =
            match self.get_all(&format!("{}/orgs/{enc}/members?per_page=100", self.api)) {
                Ok(members) => members
                    .iter()
                    .filter_map(|u| str_at(u, "login"))
                    .map(str::to_string)
                    .collect(),
                Err(e) if e.contains("HTTP 404") => vec![owner.to_string()],
                Err(e) => return Err(e),
            };
        let mut out = Vec::new();
        for login in logins {
            let url = format!("{}/users/{}/gists?per_page=100", self.api, encode(&login));
            for g in self.get_all(&url)? {
                let (Some(id), Some(pull)) = (str_at(&g, "id"), str_at(&g, "git_pull_url")) else {
                    continue;
                };
                out.push(ForgeRepo {
                    full_name: format!("gist {id} of {login}"),
                    clone_url: self.with_token(pull),
                    url: pull.to_string(),
                    wiki_url: None,
                    wiki: None,
                    archived: false,
                    fork: false,
                    id: None,
                    has_issues: false,
                });
            }
        }
        Ok(out)
    }

    fn repo(&self, r: &Value) -> Option<ForgeRepo> {
        let (name, url, wiki, issues) = match self.kind {
            ForgeKind::GitHub => (
                str_at(r, "full_name")?,
                str_at(r, "clone_url")?,
                r.get("has_wiki").and_then(Value::as_bool).unwrap_or(false),
                r.get("has_issues").and_then(Value::as_bool).unwrap_or(true),
            ),
            ForgeKind::GitLab => (
                str_at(r, "path_with_namespace")?,
                str_at(r, "http_url_to_repo")?,
                r.get("wiki_enabled")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                r.get("issues_enabled")
                    .and_then(Value::as_bool)
                    .unwrap_or(true)
                    || r.get("merge_requests_enabled")
                        .and_then(Value::as_bool)
                        .unwrap_or(true),
            ),
        };
        let wiki_of = |u: &str| {
            let base = u.strip_suffix(".git").unwrap_or(u);
            format!("{base}.wiki.git")
        };
        let clone_url = self.with_token(url);
        let flag = |k: &str| r.get(k).and_then(Value::as_bool).unwrap_or(false);
        let fork = match self.kind {
            ForgeKind::GitHub => flag("fork"),
            ForgeKind::GitLab => r.get("forked_from_project").is_some_and(|p| !p.is_null()),
        };
        Some(ForgeRepo {
            full_name: name.to_string(),
            wiki_url: wiki.then(|| wiki_of(&clone_url)),
            wiki: wiki.then(|| wiki_of(url)),
            clone_url,
            url: url.to_string(),
            archived: flag("archived"),
            fork,
            id: r.get("id").and_then(Value::as_u64),
            has_issues: issues,
        })
    }

    /// `url` with the token as user info, for HTTPS (and HTTP) clone URLs.
    fn with_token(&self, url: &str) -> String {
        let Some(token) = &self.token else {
            return url.to_string();
        };
        let user = match self.kind {
            ForgeKind::GitHub => "x-access-token",
            ForgeKind::GitLab => "oauth2",
        };
        for scheme in ["https://", "http://"] {
            if let Some(rest) = url.strip_prefix(scheme)
                && !rest.split('/').next().unwrap_or("").contains('@')
            {
                return format!("{scheme}{user}:{}@{rest}", token.expose());
            }
        }
        url.to_string()
    }

    /// Deliver the repository's issues, pull/merge requests and their
    /// comments to `sink` as export records; returns how many.
    pub fn discussions(&self, repo: &ForgeRepo, sink: &dyn BlobSink) -> Result<u64, String> {
        if !repo.has_issues {
            return Ok(0);
        }
        let mut n = 0;
        let mut out =
            |kind: &str, item: &Value, fields: &[&str], container: &str, title: String| {
                let mut text = String::new();
                for f in fields {
                    if let Some(v) = item.get(*f) {
                        render(f, v, &[], &mut text);
                    }
                }
                if text.is_empty() {
                    return;
                }
                let url = str_at(item, "html_url")
                    .or_else(|| str_at(item, "web_url"))
                    .or_else(|| str_at(item, "url"))
                    .unwrap_or(container)
                    .to_string();
                let author = item
                    .get("user")
                    .or_else(|| item.get("author"))
                    .and_then(|u| str_at(u, "login").or_else(|| str_at(u, "username")))
                    .map(str::to_string);
                n += 1;
                sink.blob(Blob {
                    path: url.clone(),
                    origin: Origin::Export(ExportOrigin {
                        export: kind.to_string(),
                        record: url,
                        container: Some(container.to_string()),
                        item: Some(title),
                        author,
                        time: str_at(item, "created_at").map(str::to_string),
                    }),
                    content: Content::Bytes(text.into_bytes()),
                });
            };
        let name = repo.full_name.as_str();
        match self.kind {
            ForgeKind::GitHub => {
                let base = format!("{}/repos/{}", self.api, name);
                for issue in self.get_all(&format!("{base}/issues?state=all&per_page=100"))? {
                    let pr = issue.get("pull_request").is_some();
                    let num = issue.get("number").and_then(Value::as_u64).unwrap_or(0);
                    let what = if pr { "pull request" } else { "issue" };
                    out(
                        "github_issue",
                        &issue,
                        &["title", "body"],
                        name,
                        format!("{what} #{num}"),
                    );
                }
                for c in self.get_all(&format!("{base}/issues/comments?per_page=100"))? {
                    let num = str_at(&c, "issue_url")
                        .and_then(|u| u.rsplit('/').next())
                        .unwrap_or("?");
                    out(
                        "github_comment",
                        &c,
                        &["body"],
                        name,
                        format!("comment on #{num}"),
                    );
                }
                for c in self.get_all(&format!("{base}/pulls/comments?per_page=100"))? {
                    let num = str_at(&c, "pull_request_url")
                        .and_then(|u| u.rsplit('/').next())
                        .unwrap_or("?");
                    let file = str_at(&c, "path").unwrap_or("");
                    out(
                        "github_comment",
                        &c,
                        &["body", "diff_hunk"],
                        name,
                        format!("review comment on #{num} {file}"),
                    );
                }
            }
            ForgeKind::GitLab => {
                let Some(id) = repo.id else { return Ok(0) };
                let base = format!("{}/projects/{id}", self.api);
                for sn in self.get_all(&format!("{base}/snippets?per_page=100"))? {
                    let Some(sid) = sn.get("id").and_then(Value::as_u64) else {
                        continue;
                    };
                    let (raw, _) = self.fetch(&format!("{base}/snippets/{sid}/raw"))?;
                    let mut sn = sn;
                    sn["content"] = Value::String(String::from_utf8_lossy(&raw).into_owned());
                    let title = str_at(&sn, "title").unwrap_or("").to_string();
                    out(
                        "gitlab_snippet",
                        &sn,
                        &["title", "description", "content"],
                        name,
                        format!("snippet ${sid} {title}"),
                    );
                }
                for (list, noun, sigil) in [
                    ("issues", "issue", '#'),
                    ("merge_requests", "merge request", '!'),
                ] {
                    for it in self.get_all(&format!("{base}/{list}?scope=all&per_page=100"))? {
                        let iid = it.get("iid").and_then(Value::as_u64).unwrap_or(0);
                        out(
                            "gitlab_issue",
                            &it,
                            &["title", "description"],
                            name,
                            format!("{noun} {sigil}{iid}"),
                        );
                        for note in
                            self.get_all(&format!("{base}/{list}/{iid}/notes?per_page=100"))?
                        {
                            if note.get("system").and_then(Value::as_bool) == Some(true) {
                                continue;
                            }
                            let mut note = note;
                            if note.get("web_url").is_none()
                                && let (Some(w), Some(nid)) = (
                                    str_at(&it, "web_url"),
                                    note.get("id").and_then(Value::as_u64),
                                )
                            {
                                let u = format!("{w}#note_{nid}");
                                note["web_url"] = Value::String(u);
                            }
                            out(
                                "gitlab_note",
                                &note,
                                &["body"],
                                name,
                                format!("note on {noun} {sigil}{iid}"),
                            );
                        }
                    }
                }
            }
        }
        Ok(n)
    }

    /// Every item of a paged JSON array listing.
    fn get_all(&self, first: &str) -> Result<Vec<Value>, String> {
        let mut items = Vec::new();
        let mut next = Some(first.to_string());
        let mut pages = 0;
        while let Some(url) = next {
            pages += 1;
            if pages > MAX_PAGES {
                return Err(format!("{first}: more than {MAX_PAGES} pages"));
            }
            let (doc, following) = self.get(&url)?;
            match doc {
                Value::Array(v) => items.extend(v),
                _ => return Err(format!("{}: not a JSON array", shown(&url))),
            }
            next = following;
        }
        Ok(items)
    }

    /// GET one page: its JSON and the next page's URL. Waits out a rate
    /// limit when it resets within `max_wait`.
    fn get(&self, url: &str) -> Result<(Value, Option<String>), String> {
        let (body, next) = self.fetch(url)?;
        let doc = serde_json::from_slice(&body).map_err(|e| {
            format!(
                "GET {}: invalid JSON at line {} column {}: {e}",
                shown(url),
                e.line(),
                e.column()
            )
        })?;
        Ok((doc, next))
    }

    /// GET one response body and the next page's URL (see [`Self::get`]).
    fn fetch(&self, url: &str) -> Result<(Vec<u8>, Option<String>), String> {
        let mut waited = false;
        loop {
            let mut req = self.agent.get(url).header(
                "Accept",
                match self.kind {
                    ForgeKind::GitHub => "application/vnd.github+json",
                    ForgeKind::GitLab => "application/json",
                },
            );
            if let Some(t) = &self.token {
                req = match self.kind {
                    ForgeKind::GitHub => {
                        req.header("Authorization", format!("Bearer {}", t.expose()))
                    }
                    ForgeKind::GitLab => req.header("PRIVATE-TOKEN", t.expose().as_str()),
                };
            }
            let resp = req.call().map_err(|e| format!("GET {}: {e}", shown(url)))?;
            let status = resp.status().as_u16();
            let header = |n: &str| {
                resp.headers()
                    .get(n)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            let limited = status == 429
                || (status == 403
                    && (header("x-ratelimit-remaining").as_deref() == Some("0")
                        || header("retry-after").is_some()));
            if limited {
                let wait = rate_limit_wait(
                    header("retry-after").as_deref(),
                    header("x-ratelimit-reset")
                        .or_else(|| header("ratelimit-reset"))
                        .as_deref(),
                );
                match wait {
                    Some(w) if !waited && w <= self.max_wait => {
                        std::thread::sleep(w);
                        waited = true;
                        continue;
                    }
                    _ => {
                        let when = wait.map_or("an unknown time".to_string(), |w| {
                            format!("{} s", w.as_secs())
                        });
                        let hint = match (self.kind, self.token.is_some()) {
                            (ForgeKind::GitHub, false) => "; set GITHUB_TOKEN for a higher limit",
                            (ForgeKind::GitLab, false) => "; set GITLAB_TOKEN for a higher limit",
                            _ => "",
                        };
                        return Err(format!(
                            "GET {}: rate limited (HTTP {status}); the limit resets in {when}, longer than the {} s keytrail waits{hint}",
                            shown(url),
                            self.max_wait.as_secs()
                        ));
                    }
                }
            }
            let next = match self.kind {
                ForgeKind::GitHub => header("link").and_then(|l| next_link(&l)),
                ForgeKind::GitLab => header("x-next-page")
                    .filter(|p| !p.trim().is_empty())
                    .map(|p| with_page(url, p.trim())),
            };
            let body = resp
                .into_body()
                .into_with_config()
                .limit(MAX_RESPONSE)
                .read_to_vec()
                .map_err(|e| format!("GET {}: {e}", shown(url)))?;
            if !(200..300).contains(&status) {
                let text = String::from_utf8_lossy(&body);
                let msg = serde_json::from_slice::<Value>(&body)
                    .ok()
                    .and_then(|v| str_at(&v, "message").map(str::to_string))
                    .unwrap_or_else(|| text.chars().take(200).collect());
                return Err(format!("GET {}: HTTP {status}: {msg}", shown(url)));
            }
            return Ok((body, next));
        }
    }
}

/// The diagnostic for a forge problem about `subject`.
pub fn error(subject: &str, message: String) -> Diagnostic {
    Diagnostic::error("forge", subject, message)
}

/// A URL for messages: without user info.
fn shown(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s && !url[s + 3..at].contains('/') => {
            format!("{}{}", &url[..s + 3], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

/// Percent-encode a name for a path segment (GitLab group paths hold `/`).
fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `url` with its `page` query parameter set to `page`.
fn with_page(url: &str, page: &str) -> String {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut params: Vec<String> = query
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("page="))
        .map(str::to_string)
        .collect();
    params.push(format!("page={page}"));
    format!("{base}?{}", params.join("&"))
}

/// How long until a rate limit resets: `Retry-After` seconds, else the
/// reset epoch (`X-RateLimit-Reset`) minus now.
fn rate_limit_wait(retry_after: Option<&str>, reset: Option<&str>) -> Option<Duration> {
    if let Some(s) = retry_after.and_then(|s| s.trim().parse::<u64>().ok()) {
        return Some(Duration::from_secs(s));
    }
    let reset: u64 = reset?.trim().parse().ok()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs();
    Some(Duration::from_secs(reset.saturating_sub(now) + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_headers() {
        let link = "<https://api.example/orgs/a/repos?page=2>; rel=\"next\", <https://api.example/orgs/a/repos?page=5>; rel=\"last\"";
        assert_eq!(
            next_link(link).as_deref(),
            Some("https://api.example/orgs/a/repos?page=2")
        );
        assert_eq!(next_link("<x>; rel=\"prev\""), None);
        assert_eq!(
            with_page("http://h/g/projects?per_page=100&page=1", "2"),
            "http://h/g/projects?per_page=100&page=2"
        );
        assert_eq!(encode("group/sub"), "group%2Fsub");
        assert_eq!(shown("https://u:t@h/x"), "https://h/x");
        assert_eq!(
            rate_limit_wait(Some("7"), None),
            Some(Duration::from_secs(7))
        );
    }

    #[test]
    fn listed_repositories_say_archived_fork_and_url_without_token() {
        let token = Some(Secret::new("T".into()));
        let gh = ForgeClient::new(ForgeKind::GitHub, None, token.clone());
        let r = gh
            .repo(
                &serde_json::json!({"full_name": "a/b", "clone_url": "https://github.com/a/b.git",
                "has_wiki": true, "archived": true, "fork": true}),
            )
            .unwrap();
        assert!(r.archived && r.fork);
        assert_eq!(r.url, "https://github.com/a/b.git");
        assert_eq!(r.clone_url, "https://x-access-token:T@github.com/a/b.git");
        assert_eq!(r.wiki.as_deref(), Some("https://github.com/a/b.wiki.git"));
        let r = gh
            .repo(
                &serde_json::json!({"full_name": "a/c", "clone_url": "https://github.com/a/c.git"}),
            )
            .unwrap();
        assert!(!r.archived && !r.fork && r.wiki.is_none());
        let gl = ForgeClient::new(ForgeKind::GitLab, None, token);
        let p = |v: serde_json::Value| gl.repo(&v).unwrap();
        let base = serde_json::json!({"path_with_namespace": "g/p", "http_url_to_repo": "https://gitlab.com/g/p.git"});
        assert!(!p(base.clone()).fork);
        let mut forked = base.clone();
        forked["forked_from_project"] = serde_json::json!({"id": 1});
        forked["archived"] = serde_json::json!(true);
        let f = p(forked);
        assert!(f.fork && f.archived);
        let mut null = base;
        null["forked_from_project"] = serde_json::Value::Null;
        assert!(!p(null).fork);
    }

    #[test]
    fn clone_urls_carry_the_token_only_over_http() {
        let c = ForgeClient::new(
            ForgeKind::GitHub,
            Some("http://127.0.0.1:1"),
            Some(Secret::new("T".into())),
        );
        assert_eq!(
            c.with_token("https://github.com/a/b.git"),
            "https://x-access-token:T@github.com/a/b.git"
        );
        assert_eq!(c.with_token("file:///srv/a.git"), "file:///srv/a.git");
        let g = ForgeClient::new(ForgeKind::GitLab, None, Some(Secret::new("T".into())));
        assert_eq!(
            g.with_token("https://gitlab.com/g/p.git"),
            "https://oauth2:T@gitlab.com/g/p.git"
        );
    }
}

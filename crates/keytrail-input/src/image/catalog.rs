//! A registry's catalog (`keytrail submit registry HOST[/PREFIX]`): every
//! repository the registry lists (`GET /v2/_catalog?n=N`) and every tag of
//! each (`GET /v2/NAME/tags/list?n=N`), both paged through the `Link:
//! <…>; rel="next"` header of the OCI distribution API. Authentication is
//! the pull client's ([`super::registry`]): basic credentials or a bearer
//! token from the challenge's token service (scope `registry:catalog:*`
//! for the catalog, `repository:NAME:pull` for tags), with credentials
//! from the flags or docker's `config.json`.
//!
//! Every failure is a message naming the URL and the HTTP status; a catalog
//! the registry does not offer (404, as Docker Hub and GHCR answer) says
//! so. Credentials never appear in messages.

use super::registry::Registry;
use super::{ImageOptions, RegistryRef};
use crate::link::next_link;

/// Pages followed at most per listing.
const MAX_PAGES: usize = 100_000;

/// A repository of a registry and its tags, as listed (in the registry's
/// order, which the API leaves open).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogRepository {
    /// `team/app`.
    pub name: String,
    /// Its tags.
    pub tags: Vec<String>,
}

/// A catalog target: `HOST[:PORT][/PREFIX]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogTarget {
    /// `host[:port]`.
    pub host: String,
    /// Only repositories named `PREFIX/…` (or `PREFIX`); empty: all.
    pub prefix: String,
}

impl CatalogTarget {
    /// Parses `HOST[:PORT][/PREFIX]` (a leading `https://` or `http://` is
    /// refused: the scheme is chosen as for pulls).
    pub fn parse(s: &str) -> Result<CatalogTarget, String> {
        let t = s.trim().trim_end_matches('/');
        if t.contains("://") {
            return Err(format!(
                "`{s}`: a registry is HOST[:PORT][/PREFIX], without a scheme (--plain-http HOST:PORT for plain HTTP)"
            ));
        }
        let (host, prefix) = t.split_once('/').unwrap_or((t, ""));
        if host.is_empty()
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c))
        {
            return Err(format!("`{s}`: a registry is HOST[:PORT][/PREFIX]"));
        }
        if prefix.split('/').any(str::is_empty) && !prefix.is_empty() {
            return Err(format!("`{s}`: an empty path segment in the prefix"));
        }
        Ok(CatalogTarget {
            host: host.to_ascii_lowercase(),
            prefix: prefix.to_string(),
        })
    }

    fn wants(&self, name: &str) -> bool {
        self.prefix.is_empty()
            || name == self.prefix
            || name
                .strip_prefix(&self.prefix)
                .is_some_and(|rest| rest.starts_with('/'))
    }
}

/// Every repository of `target` (under its prefix) with its tags, listed
/// `page_size` at a time.
pub fn list(
    target: &CatalogTarget,
    opts: &ImageOptions,
    page_size: usize,
) -> Result<Vec<CatalogRepository>, String> {
    let r = RegistryRef {
        registry: target.host.clone(),
        repository: String::new(),
        tag: None,
        digest: None,
    };
    let registry = Registry::connect(&r, opts).map_err(|e| e.message)?;
    let n = page_size.max(1);
    let mut names = Vec::new();
    let catalog = format!("/v2/_catalog?n={n}");
    for page in pages(&registry, &catalog, "catalog")? {
        let list = page
            .get("repositories")
            .and_then(|v| v.as_array())
            .ok_or_else(|| {
                format!(
                    "GET {}{catalog}: no `repositories` list in the answer",
                    registry.base()
                )
            })?;
        names.extend(
            list.iter()
                .filter_map(|v| v.as_str())
                .filter(|name| target.wants(name))
                .map(str::to_string),
        );
    }
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let first = format!("/v2/{name}/tags/list?n={n}");
        let mut tags = Vec::new();
        for page in pages(&registry, &first, "tags")? {
            // `"tags": null` is a repository whose tags were all deleted.
            if let Some(list) = page.get("tags").and_then(|v| v.as_array()) {
                tags.extend(list.iter().filter_map(|v| v.as_str()).map(str::to_string));
            }
        }
        out.push(CatalogRepository { name, tags });
    }
    Ok(out)
}

/// Every page of a listing that starts at `first` (a path and query).
fn pages(registry: &Registry, first: &str, what: &str) -> Result<Vec<serde_json::Value>, String> {
    let mut out = Vec::new();
    let mut next = Some(format!("{}{first}", registry.base()));
    while let Some(url) = next {
        if out.len() >= MAX_PAGES {
            return Err(format!("{first}: more than {MAX_PAGES} pages"));
        }
        let (body, link) = registry.get_listing(&url, what)?;
        let doc: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
            format!(
                "GET {url}: invalid JSON at line {} column {}: {e}",
                e.line(),
                e.column()
            )
        })?;
        out.push(doc);
        next = link.and_then(|l| next_link(&l)).map(|n| {
            if n.starts_with('/') {
                format!("{}{n}", registry.base())
            } else {
                n
            }
        });
    }
    Ok(out)
}

/// Keep the last `n` of `tags` in version order: split into runs of digits
/// and of other characters, digits compared as numbers (`v1.9` < `v1.10`),
/// so for version-like tags the last ones are the highest versions. The
/// registry API does not say when a tag was pushed; this is by name.
pub fn last_tags(tags: &[String], n: usize) -> Vec<String> {
    let mut sorted: Vec<&String> = tags.iter().collect();
    sorted.sort_by(|a, b| version_key(a).cmp(&version_key(b)).then(a.cmp(b)));
    let skip = sorted.len().saturating_sub(n);
    sorted.into_iter().skip(skip).cloned().collect()
}

/// A run of a tag's name. Numbers sort before text (the derived order).
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Part<'a> {
    /// Digits: the value, then the length (leading zeros break ties).
    Num(u128, usize),
    /// Anything else, compared as text.
    Text(&'a str),
}

fn version_key(s: &str) -> Vec<Part<'_>> {
    let mut out = Vec::new();
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let digit = bytes[i].is_ascii_digit();
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() == digit {
            i += 1;
        }
        let run = &s[start..i];
        out.push(match (digit, run.parse::<u128>()) {
            (true, Ok(v)) => Part::Num(v, run.len()),
            _ => Part::Text(run),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse() {
        assert_eq!(
            CatalogTarget::parse("registry.local:5000/team").unwrap(),
            CatalogTarget {
                host: "registry.local:5000".into(),
                prefix: "team".into()
            }
        );
        assert_eq!(CatalogTarget::parse("r.io/").unwrap().prefix, "");
        assert!(CatalogTarget::parse("https://r.io").is_err());
        assert!(CatalogTarget::parse("").is_err());
        assert!(CatalogTarget::parse("r.io/a//b").is_err());
        let t = CatalogTarget::parse("r.io/team").unwrap();
        assert!(t.wants("team/app") && t.wants("team") && !t.wants("teamx/app"));
    }

    #[test]
    fn last_tags_are_the_highest_versions() {
        let tags: Vec<String> = ["v1.9", "v1.10", "latest", "v1.2", "v2.0", "1.0.0"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(last_tags(&tags, 2), ["v1.10", "v2.0"]);
        assert_eq!(last_tags(&tags, 99).len(), 6);
        assert_eq!(last_tags(&tags, 0), Vec::<String>::new());
    }
}

//! Structured exports found among files: Slack workspace exports, Postman
//! collections and environments, Jira issue exports (REST JSON), Confluence
//! HTML space exports and the `entities.xml` of Jira and Confluence
//! backups. A recognised file is split into its
//! records (a message, a request, an environment, an issue or comment, a
//! page), and each record is delivered as its own blob with
//! [`ExportOrigin`] provenance (channel, user and time; request path;
//! issue key and author; page title and id), so a finding says where in
//! the tool to go and fix it, not only which line of a big JSON file.
//!
//! A record's blob is its fields rendered one per line as `field = value`
//! (dotted paths, `[i]` for array elements, key/value lists such as
//! Postman's headers and variables flattened to `prefix.KEY = VALUE`), with
//! JSON string escapes undone (Slack writes `\/` for `/`). The rules then
//! see the names of the fields next to their values, as in a `.env` file.
//! The blob's path is the file's display path plus `#POINTER`, the record's
//! JSON pointer (no `#` for the file's top level); its line and column are
//! those of the rendered record. A Confluence page is one record scanned as
//! written (the file's own lines).
//!
//! Recognition looks at the name and the first bytes only; a file that
//! looks like an export but does not parse (truncated, not JSON) gets an
//! `export_corrupt` error naming the position, and is then scanned as plain
//! text, so nothing in it goes unscanned. Files larger than
//! [`FsOptions::max_in_memory`](crate::FsOptions::max_in_memory) are not
//! split (an `export_limit` skip says so) and are scanned as plain text.

mod atlassian_xml;
mod confluence;
mod jira;
mod postman;
pub(crate) mod slack;

use keytrail_types::{Diagnostic, ExportOrigin, Origin};
use serde_json::Value;

use crate::content::Ctx;
use crate::{Blob, Content};

/// Diagnostic kind: a file recognised as an export that does not parse
/// (error; the file is scanned as plain text instead).
pub const EXPORT_CORRUPT: &str = "export_corrupt";
/// Diagnostic kind: an export file too large to split into records (skip;
/// the file is scanned as plain text instead).
pub const EXPORT_LIMIT: &str = "export_limit";

/// The kinds of export file recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `<channel>/<YYYY-MM-DD>.json` of a Slack workspace export.
    SlackDay,
    /// A Postman collection (v2.0/v2.1) or environment / globals file.
    Postman,
    /// Jira issues as the REST API returns them (`{"issues": [...]}` or one issue).
    Jira,
    /// One page of a Confluence HTML space export.
    ConfluencePage,
    /// The `entities.xml` of a Jira or Confluence backup.
    AtlassianXml(atlassian_xml::Backup),
}

/// What `display` (with first bytes `head`) is, if it is an export file.
pub(crate) fn recognise(display: &str, head: &[u8]) -> Option<Kind> {
    let name = crate::sniff::file_name(display);
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(".json") {
        let start = head.iter().position(|b| !b.is_ascii_whitespace());
        let first = start.map(|i| head[i]);
        if first == Some(b'[') && slack::is_day_file(display) {
            return Some(Kind::SlackDay);
        }
        if first != Some(b'{') {
            return None;
        }
        if lower.ends_with(".postman_collection.json")
            || lower.ends_with(".postman_environment.json")
            || lower.ends_with(".postman_globals.json")
            || contains(head, b"\"_postman_")
            || contains(head, b"schema.getpostman.com")
        {
            return Some(Kind::Postman);
        }
        if contains(head, b"\"fields\"")
            && contains(head, b"\"key\"")
            && (contains(head, b"\"issues\"") || contains(head, b"/rest/api/"))
        {
            return Some(Kind::Jira);
        }
        return None;
    }
    if lower == "entities.xml" {
        return atlassian_xml::backup_kind(head).map(Kind::AtlassianXml);
    }
    if (lower.ends_with(".html") || lower.ends_with(".htm")) && confluence::is_page(head) {
        return Some(Kind::ConfluencePage);
    }
    None
}

/// Split `bytes` (the whole file `display`) into records and deliver them.
/// `Ok(false)`: not an export after all (deliver the file as it is);
/// `Err`: it looked like one and did not parse.
pub(crate) fn split(ctx: Ctx<'_>, kind: Kind, display: &str, bytes: &[u8]) -> Result<bool, String> {
    let out = &mut |origin: ExportOrigin, text: String| deliver(ctx, display, origin, text);
    match kind {
        Kind::SlackDay => slack::split(ctx, display, parse(bytes)?, out).map(|()| true),
        Kind::Postman => Ok(postman::split(parse(bytes)?, out)),
        Kind::Jira => Ok(jira::split(parse(bytes)?, out)),
        Kind::ConfluencePage => Ok(confluence::split(display, bytes, out)),
        Kind::AtlassianXml(b) => atlassian_xml::split(b, bytes, out).map(|()| true),
    }
}

/// The file as JSON, or the parser's message with line and column.
fn parse(bytes: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(bytes).map_err(|e| {
        let what = match e.classify() {
            serde_json::error::Category::Eof => "truncated JSON",
            serde_json::error::Category::Syntax => "invalid JSON",
            serde_json::error::Category::Data | serde_json::error::Category::Io => {
                "unreadable JSON"
            }
        };
        format!(
            "{what} at line {} column {}: {e}; scanned as plain text",
            e.line(),
            e.column()
        )
    })
}

/// The diagnostic for an export that did not parse.
pub(crate) fn corrupt(display: &str, message: String) -> Diagnostic {
    Diagnostic::error(EXPORT_CORRUPT, display, message)
}

fn deliver(ctx: Ctx<'_>, display: &str, origin: ExportOrigin, text: String) {
    if text.is_empty() {
        return;
    }
    let path = if origin.record.is_empty() {
        display.to_string()
    } else {
        format!("{display}#{}", origin.record)
    };
    ctx.sink.blob(Blob {
        path,
        origin: Origin::Export(origin),
        content: Content::Bytes(text.into_bytes()),
    });
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(hay, needle).is_some()
}

/// Render `v` under `prefix` as `field = value` lines into `out`: objects
/// as `prefix.key`, arrays as `prefix[i]`, except arrays of
/// `{"key": K, "value": V}` objects (headers, query parameters, variables,
/// auth parameters), which become `prefix.K = V`. Only strings are written
/// (numbers and booleans hold no secrets); `skip` names object keys not to
/// descend (fields rendered elsewhere or duplicating others).
pub(crate) fn render(prefix: &str, v: &Value, skip: &[&str], out: &mut String) {
    match v {
        Value::String(s) => {
            if s.trim().is_empty() {
                return;
            }
            out.push_str(prefix);
            out.push_str(" = ");
            out.push_str(s);
            out.push('\n');
        }
        Value::Object(map) => {
            for (k, v) in map {
                if skip.contains(&k.as_str()) {
                    continue;
                }
                render(&join(prefix, k), v, skip, out);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                if let Some(key) = item.get("key").and_then(Value::as_str)
                    && let Some(value) = item.get("value")
                {
                    render(&join(prefix, key), value, skip, out);
                    // Anything else in the entry (a description) under its index.
                    if let Value::Object(m) = item {
                        for (k, v) in m {
                            if !matches!(
                                k.as_str(),
                                "key" | "value" | "type" | "disabled" | "enabled"
                            ) && !skip.contains(&k.as_str())
                            {
                                render(&format!("{prefix}[{i}].{k}"), v, skip, out);
                            }
                        }
                    }
                } else {
                    render(&format!("{prefix}[{i}]"), item, skip, out);
                }
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

pub(crate) fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// The string at `v[key]`, if non-empty.
pub(crate) fn str_at<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_flattens_key_value_lists_and_skips() {
        let v: Value = serde_json::json!({
            "auth": {"type": "bearer", "bearer": [{"key": "token", "value": "abc", "type": "string"}]},
            "header": [{"key": "X-Api-Key", "value": "k1", "description": "the key"}],
            "blocks": [{"text": "dup"}],
            "n": 3,
            "list": ["a", "b"],
        });
        let mut out = String::new();
        render("", &v, &["blocks"], &mut out);
        assert_eq!(
            out,
            "auth.bearer.token = abc\nauth.type = bearer\nheader.X-Api-Key = k1\n\
             header[0].description = the key\nlist[0] = a\nlist[1] = b\n"
        );
    }

    #[test]
    fn recognition_by_name_and_head() {
        assert_eq!(
            recognise("x/general/2024-01-02.json", b" [{\"ts\":\"1\"}]"),
            Some(Kind::SlackDay)
        );
        assert_eq!(recognise("x/general/notes.json", b"[{}]"), None);
        assert_eq!(
            recognise("api.json", b"{\"info\":{\"_postman_id\":\"1\"}}"),
            Some(Kind::Postman)
        );
        assert_eq!(
            recognise("prod.postman_environment.json", b"{\"values\":[]}"),
            Some(Kind::Postman)
        );
        assert_eq!(
            recognise(
                "issues.json",
                b"{\"issues\":[{\"key\":\"A-1\",\"fields\":{}}]}"
            ),
            Some(Kind::Jira)
        );
        assert_eq!(recognise("package.json", b"{\"name\":\"x\"}"), None);
        assert_eq!(recognise("readme.txt", b"{\"_postman_id\":1}"), None);
    }
}

//! Jira issues as the REST API exports them (`/rest/api/2|3/search`:
//! `{"issues": [...]}`, or one issue): each issue's fields (summary,
//! description, custom fields; plain text or Atlassian document format) are
//! one record located by the issue key, its reporter and creation time, and
//! each comment is one record with its author and time.

use keytrail_types::ExportOrigin;
use serde_json::Value;

use super::{render, str_at};

/// Split parsed Jira JSON; `false` when it holds no issue.
pub(crate) fn split(doc: Value, out: &mut dyn FnMut(ExportOrigin, String)) -> bool {
    if let Some(issues) = doc.get("issues").and_then(Value::as_array) {
        for (i, issue) in issues.iter().enumerate() {
            one(issue, &format!("/issues/{i}"), out);
        }
        return true;
    }
    if doc.get("fields").is_some() && str_at(&doc, "key").is_some() {
        one(&doc, "", out);
        return true;
    }
    false
}

fn one(issue: &Value, pointer: &str, out: &mut dyn FnMut(ExportOrigin, String)) {
    let key = str_at(issue, "key").unwrap_or("(no key)");
    let fields = issue.get("fields").unwrap_or(&Value::Null);
    let project = fields
        .get("project")
        .and_then(|p| str_at(p, "key"))
        .map(str::to_string)
        .or_else(|| key.split_once('-').map(|(p, _)| p.to_string()));
    let mut text = String::new();
    render(
        "",
        issue,
        &["comment", "avatarUrls", "renderedFields", "self", "iconUrl"],
        &mut text,
    );
    out(
        ExportOrigin {
            export: "jira".into(),
            record: pointer.into(),
            container: project.clone(),
            item: Some(key.to_string()),
            author: person(fields.get("reporter").or_else(|| fields.get("creator"))),
            time: str_at(fields, "created").map(time),
        },
        text,
    );
    let comments = fields
        .get("comment")
        .and_then(|c| c.get("comments"))
        .and_then(Value::as_array);
    for (j, c) in comments.into_iter().flatten().enumerate() {
        let mut text = String::new();
        render(
            "",
            c,
            &["avatarUrls", "self", "author", "updateAuthor"],
            &mut text,
        );
        out(
            ExportOrigin {
                export: "jira".into(),
                record: format!("{pointer}/fields/comment/comments/{j}"),
                container: project.clone(),
                item: Some(format!("{key} comment")),
                author: person(c.get("author")),
                time: str_at(c, "created").map(time),
            },
            text,
        );
    }
}

/// `Display Name <email>` (or whichever of the two Jira gives) of a user object.
fn person(u: Option<&Value>) -> Option<String> {
    let u = u?;
    let name = str_at(u, "displayName").or_else(|| str_at(u, "name"));
    match (name, str_at(u, "emailAddress")) {
        (Some(n), Some(e)) => Some(format!("{n} <{e}>")),
        (Some(n), None) => Some(n.to_string()),
        (None, Some(e)) => Some(e.to_string()),
        (None, None) => str_at(u, "accountId").map(str::to_string),
    }
}

/// Jira's `2024-01-02T10:00:00.000+0000` as RFC 3339 (kept as written if it
/// does not parse).
fn time(s: &str) -> String {
    chrono::DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z")
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|_| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issues_and_comments() {
        let doc = serde_json::json!({"issues": [{
            "key": "OPS-12",
            "fields": {
                "summary": "deploy broken",
                "project": {"key": "OPS"},
                "reporter": {"displayName": "Ada"},
                "created": "2024-01-02T10:00:00.000+0100",
                "comment": {"comments": [{
                    "author": {"displayName": "Bob", "emailAddress": "bob@example.com"},
                    "created": "2024-01-03T11:00:00.000+0000",
                    "body": "try token X1"
                }]}
            }
        }]});
        let mut got = Vec::new();
        assert!(split(doc, &mut |o, t| got.push((o, t))));
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0.item.as_deref(), Some("OPS-12"));
        assert_eq!(
            got[0].0.time.as_deref(),
            Some("2024-01-02T10:00:00.000+01:00")
        );
        assert!(got[0].1.contains("fields.summary = deploy broken"));
        assert!(!got[0].1.contains("try token"));
        assert_eq!(got[1].0.record, "/issues/0/fields/comment/comments/0");
        assert_eq!(got[1].0.author.as_deref(), Some("Bob <bob@example.com>"));
        assert_eq!(
            got[1].1,
            "body = try token X1\ncreated = 2024-01-03T11:00:00.000+0000\n"
        );
    }
}

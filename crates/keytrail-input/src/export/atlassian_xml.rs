//! The `entities.xml` of Jira and Confluence backups.
//!
//! Jira (`<entity-engine-xml>`): one element per entity, its fields as
//! attributes or child elements (`<Issue id="10000" key="OPS-7"
//! summary="…" reporter="ada" created="…"/>`, `<Action type="comment"
//! issue="10000" author="bob" body="…"/>`). Each entity is a record located
//! by its type and id, with the issue key (or the issue id a comment is on),
//! the author (`reporter`, `author`, `creator`) and `created`.
//!
//! Confluence (`<hibernate-generic>`): one `<object class="…">` per stored
//! object, with `<id>` and `<property name="…">` children (CDATA text, or
//! a reference holding an `<id>`). Each object is a record located by class
//! and id; a page's body (`BodyContent`) is named after its page, whose
//! title is looked up in a first pass over the file.

use std::collections::HashMap;

use keytrail_types::ExportOrigin;
use xmlparser::{ElementEnd, Token, Tokenizer};

use super::{contains, join};

/// Which backup an `entities.xml` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backup {
    /// `<entity-engine-xml>`.
    Jira,
    /// `<hibernate-generic>`.
    Confluence,
}

/// What the first bytes of an `entities.xml` say it is.
pub(crate) fn backup_kind(head: &[u8]) -> Option<Backup> {
    if contains(head, b"<entity-engine-xml") {
        Some(Backup::Jira)
    } else if contains(head, b"<hibernate-generic") {
        Some(Backup::Confluence)
    } else {
        None
    }
}

/// A parsed element: name, attributes (unescaped), direct text, children.
#[derive(Debug, Default)]
struct El {
    name: String,
    /// Byte offset of its start tag.
    start: usize,
    attrs: Vec<(String, String)>,
    text: String,
    children: Vec<El>,
}

impl El {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// The text of a child element named `name` (Jira's field elements).
    fn child_text(&self, name: &str) -> Option<&str> {
        self.children
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.text.trim())
            .filter(|t| !t.is_empty())
    }

    /// Confluence: the `<id>` text of this object or reference.
    fn id(&self) -> Option<&str> {
        self.child_text("id")
    }

    /// Confluence: the property named `name` (its text, or its reference's id).
    fn property(&self, name: &str) -> Option<&str> {
        let p = self
            .children
            .iter()
            .find(|c| c.name == "property" && c.attr("name") == Some(name))?;
        let t = p.text.trim();
        if t.is_empty() { p.id() } else { Some(t) }
    }
}

/// Every element at depth 1 (the entities or objects), in order.
fn entities(xml: &str, mut each: impl FnMut(El)) -> Result<(), String> {
    let mut stack: Vec<El> = Vec::new();
    for token in Tokenizer::from(xml) {
        let token = token.map_err(|e| {
            let pos = e.pos();
            format!(
                "invalid XML at line {} column {}: {e}; scanned as plain text",
                pos.row, pos.col
            )
        })?;
        match token {
            Token::ElementStart { local, span, .. } => stack.push(El {
                name: local.as_str().to_string(),
                start: span.start(),
                ..El::default()
            }),
            Token::Attribute { local, value, .. } => {
                if let Some(el) = stack.last_mut() {
                    el.attrs
                        .push((local.as_str().to_string(), unescape(value.as_str())));
                }
            }
            Token::Text { text } => {
                if let Some(el) = stack.last_mut() {
                    el.text.push_str(&unescape(text.as_str()));
                }
            }
            Token::Cdata { text, .. } => {
                if let Some(el) = stack.last_mut() {
                    el.text.push_str(text.as_str());
                }
            }
            Token::ElementEnd { end, .. } => {
                if matches!(end, ElementEnd::Open) {
                    continue;
                }
                let Some(el) = stack.pop() else { continue };
                match stack.len() {
                    0 => {}
                    1 => each(el),
                    _ => stack.last_mut().expect("a parent").children.push(el),
                }
            }
            _ => {}
        }
    }
    if let Some(open) = stack.last() {
        let line = xml.as_bytes()[..open.start.min(xml.len())]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        return Err(format!(
            "truncated XML: <{}> opened at line {line} is not closed; scanned as plain text",
            open.name
        ));
    }
    Ok(())
}

/// Split an `entities.xml` into records.
pub(crate) fn split(
    backup: Backup,
    bytes: &[u8],
    out: &mut dyn FnMut(ExportOrigin, String),
) -> Result<(), String> {
    let xml = std::str::from_utf8(bytes).map_err(|e| {
        format!(
            "not UTF-8 at byte {}; scanned as plain text",
            e.valid_up_to()
        )
    })?;
    match backup {
        Backup::Jira => entities(xml, |el| jira(&el, out)),
        Backup::Confluence => {
            let mut titles: HashMap<String, String> = HashMap::new();
            entities(xml, |el| {
                if let (Some(id), Some(title)) = (el.id(), el.property("title")) {
                    titles.insert(id.to_string(), title.to_string());
                }
            })?;
            entities(xml, |el| confluence(&el, &titles, out))
        }
    }
}

fn jira(el: &El, out: &mut dyn FnMut(ExportOrigin, String)) {
    let mut text = String::new();
    for (k, v) in &el.attrs {
        line(&mut text, k, v);
    }
    for c in &el.children {
        line(&mut text, &c.name, c.text.trim());
    }
    if text.is_empty() {
        return;
    }
    let field = |n: &str| el.attr(n).or_else(|| el.child_text(n));
    let id = field("id").unwrap_or("?");
    let item = match (el.name.as_str(), field("key"), field("issue")) {
        (_, Some(key), _) => Some(key.to_string()),
        ("Action", None, Some(issue)) => Some(format!(
            "{} on issue {issue}",
            field("type").unwrap_or("action")
        )),
        (name, None, _) => Some(format!("{name} {id}")),
    };
    out(
        ExportOrigin {
            export: "jira".into(),
            record: format!("/entity-engine-xml/{}[@id={id}]", el.name),
            container: field("project").map(|p| format!("project {p}")),
            item,
            author: field("author")
                .or_else(|| field("reporter"))
                .or_else(|| field("creator"))
                .map(str::to_string),
            time: field("created").map(str::to_string),
        },
        text,
    );
}

fn confluence(
    el: &El,
    titles: &HashMap<String, String>,
    out: &mut dyn FnMut(ExportOrigin, String),
) {
    if el.name != "object" {
        return;
    }
    let class = el.attr("class").unwrap_or("object");
    let mut text = String::new();
    for c in &el.children {
        let name = c.attr("name").unwrap_or(&c.name);
        let key = join(&c.name, name);
        let value = c.text.trim();
        if value.is_empty() {
            if let Some(id) = c.id() {
                line(&mut text, &format!("{key}.id"), id);
            }
        } else {
            line(&mut text, &key, value);
        }
    }
    if text.is_empty() {
        return;
    }
    let id = el.id().unwrap_or("?");
    let page = el.property("content").or_else(|| el.property("page"));
    let titled = |pid: &str| match titles.get(pid) {
        Some(t) => format!("{t} (id {pid})"),
        None => format!("id {pid}"),
    };
    let item = match (el.property("title"), page) {
        (Some(t), _) => format!("{class} {t} (id {id})"),
        (None, Some(pid)) => format!("{class} {id} of {}", titled(pid)),
        (None, None) => format!("{class} {id}"),
    };
    out(
        ExportOrigin {
            export: "confluence".into(),
            record: format!("/hibernate-generic/object[@class={class}][@id={id}]"),
            container: el.property("space").map(|s| format!("space {s}")),
            item: Some(item),
            author: el.property("creator").map(str::to_string),
            time: el.property("creationDate").map(str::to_string),
        },
        text,
    );
}

fn line(out: &mut String, key: &str, value: &str) {
    if value.trim().is_empty() {
        return;
    }
    out.push_str(key);
    out.push_str(" = ");
    out.push_str(value);
    out.push('\n');
}

/// XML entity and character references.
fn unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';').filter(|&e| e <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let ent = &rest[1..end];
        let c = match ent {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => ent
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| ent.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match c {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(backup: Backup, xml: &str) -> Vec<(ExportOrigin, String)> {
        let mut got = Vec::new();
        split(backup, xml.as_bytes(), &mut |o, t| got.push((o, t))).unwrap();
        got
    }

    #[test]
    fn jira_entities() {
        let xml = "<?xml version=\"1.0\"?>\n<entity-engine-xml date=\"1\">\n\
            <Project id=\"10000\" key=\"OPS\" name=\"Operations\"/>\n\
            <Issue id=\"10007\" key=\"OPS-7\" project=\"10000\" reporter=\"ada\" created=\"2024-03-04 10:00:00.0\" summary=\"CI &amp; tokens\">\n\
            <description><![CDATA[use T1 for now]]></description>\n</Issue>\n\
            <Action id=\"2002\" issue=\"10007\" author=\"bob\" type=\"comment\" body=\"try&#10;T2\" created=\"2024-03-05 09:30:00.0\"/>\n\
            </entity-engine-xml>\n";
        let got = records(Backup::Jira, xml);
        assert_eq!(got.len(), 3);
        let (o, t) = &got[1];
        assert_eq!(o.record, "/entity-engine-xml/Issue[@id=10007]");
        assert_eq!(o.item.as_deref(), Some("OPS-7"));
        assert_eq!(o.author.as_deref(), Some("ada"));
        assert!(
            t.contains("summary = CI & tokens\n") && t.contains("description = use T1 for now\n"),
            "{t}"
        );
        let (o, t) = &got[2];
        assert_eq!(o.item.as_deref(), Some("comment on issue 10007"));
        assert_eq!(o.author.as_deref(), Some("bob"));
        assert!(t.contains("body = try\nT2\n"), "{t}");
    }

    #[test]
    fn confluence_objects_name_their_page() {
        let xml = "<hibernate-generic datetime=\"x\">\n\
            <object class=\"BodyContent\" package=\"p\"><id name=\"id\">555</id>\
            <property name=\"body\"><![CDATA[<p>token T3</p>]]></property>\
            <property name=\"content\" class=\"Page\" package=\"p\"><id name=\"id\">98765</id></property></object>\n\
            <object class=\"Page\" package=\"p\"><id name=\"id\">98765</id>\
            <property name=\"title\"><![CDATA[Deploy runbook]]></property>\
            <property name=\"creationDate\">2024-03-04 10:00:00.000</property></object>\n\
            </hibernate-generic>";
        let got = records(Backup::Confluence, xml);
        let (o, t) = &got[0];
        assert_eq!(
            o.item.as_deref(),
            Some("BodyContent 555 of Deploy runbook (id 98765)")
        );
        assert!(t.contains("property.body = <p>token T3</p>\n"), "{t}");
        assert_eq!(
            got[1].0.item.as_deref(),
            Some("Page Deploy runbook (id 98765)")
        );
        assert_eq!(got[1].0.time.as_deref(), Some("2024-03-04 10:00:00.000"));
    }

    #[test]
    fn truncated_xml_is_an_error_with_its_place() {
        let mut sink = |_: ExportOrigin, _: String| {};
        let e = split(
            Backup::Jira,
            b"<entity-engine-xml>\n<Issue id=\"1\" key=\"A-1\"",
            &mut sink,
        )
        .unwrap_err();
        assert!(e.contains("line 2"), "{e}");
        let e = split(
            Backup::Jira,
            b"<entity-engine-xml>\n<Issue id=\"1\"/>\n",
            &mut sink,
        )
        .unwrap_err();
        assert!(e.contains("not closed"), "{e}");
    }
}

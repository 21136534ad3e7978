//! Pages of a Confluence HTML space export (`Title_123456.html`, or
//! `123456.html`, with `<title>SPACE : Title</title>`, the page body in
//! `<div id="main-content">` and `Created by <span class='author'>…`). The
//! page is scanned as written (line numbers are the file's) with the space,
//! the page title and id, and its creator in the location.

use keytrail_types::ExportOrigin;

use super::contains;

/// Whether the first bytes of an `.html` file are those of an exported page.
pub(crate) fn is_page(head: &[u8]) -> bool {
    contains(head, b"<title>")
        && (contains(head, b"id=\"main-content\"") || contains(head, b"id=\"title-text\""))
}

/// The page as one record (always `true`: recognition already looked).
pub(crate) fn split(
    display: &str,
    bytes: &[u8],
    out: &mut dyn FnMut(ExportOrigin, String),
) -> bool {
    let html = String::from_utf8_lossy(bytes);
    let title = between(&html, "<title>", "</title>").map(unescape);
    let (space, title) = match title.as_deref().and_then(|t| t.split_once(" : ")) {
        Some((s, t)) => (Some(s.trim().to_string()), Some(t.trim().to_string())),
        None => (None, title.map(|t| t.trim().to_string())),
    };
    let id = page_id(crate::sniff::file_name(display));
    let item = match (title, id) {
        (Some(t), Some(id)) => Some(format!("{t} (id {id})")),
        (Some(t), None) => Some(t),
        (None, Some(id)) => Some(format!("id {id}")),
        (None, None) => None,
    };
    let author = between(&html, "class='author'>", "<")
        .or_else(|| between(&html, "class=\"author\">", "<"))
        .map(|a| unescape(a).trim().to_string())
        .filter(|a| !a.is_empty());
    out(
        ExportOrigin {
            export: "confluence".into(),
            record: String::new(),
            container: space,
            item,
            author,
            time: None,
        },
        html.into_owned(),
    );
    true
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = s.find(start)? + start.len();
    let len = s[from..].find(end)?;
    Some(&s[from..from + len])
}

/// The page id of `Title_123456.html` or `123456.html`.
fn page_id(name: &str) -> Option<&str> {
    let stem = name
        .strip_suffix(".html")
        .or_else(|| name.strip_suffix(".htm"))?;
    let id = stem.rsplit('_').next()?;
    (!id.is_empty() && id.bytes().all(|b| b.is_ascii_digit())).then_some(id)
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_title_space_id_and_author() {
        let html = "<html><head><title>Ops &amp; Infra : Deploy notes</title></head>\n\
            <div class=\"page-metadata\">Created by <span class='author'> Ada Lovelace</span></div>\n\
            <div id=\"main-content\" class=\"wiki-content group\"><p>x</p></div>";
        assert!(is_page(html.as_bytes()));
        let mut got = Vec::new();
        split(
            "space/Deploy-notes_98765.html",
            html.as_bytes(),
            &mut |o, t| got.push((o, t)),
        );
        let o = &got[0].0;
        assert_eq!(o.container.as_deref(), Some("Ops & Infra"));
        assert_eq!(o.item.as_deref(), Some("Deploy notes (id 98765)"));
        assert_eq!(o.author.as_deref(), Some("Ada Lovelace"));
        assert_eq!(got[0].1, html);
        assert!(!is_page(b"<html><title>x</title><body>plain</body>"));
    }
}

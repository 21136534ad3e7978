//! Postman collections (v2.0 and v2.1: `info`, nested `item[]` folders and
//! requests with `auth`, `header`, `url.query`, `body`, scripts in
//! `event[]`, and `variable[]`) and environments or globals (`values[]` of
//! `key`/`value`). A collection gives one record for its own fields
//! (collection auth, variables, scripts) and one per folder or request,
//! located by the folder path (`Admin/Create user`); an environment is one
//! record of `values.NAME = VALUE` lines.

use keytrail_types::ExportOrigin;
use serde_json::Value;

use super::{render, str_at};

/// Split a parsed Postman file; `false` when it is neither a collection nor
/// an environment.
pub(crate) fn split(doc: Value, out: &mut dyn FnMut(ExportOrigin, String)) -> bool {
    if let Some(items) = doc.get("item").and_then(Value::as_array) {
        let name = doc
            .get("info")
            .and_then(|i| str_at(i, "name"))
            .map(str::to_string);
        let mut text = String::new();
        render("", &doc, &["item"], &mut text);
        out(origin("postman_collection", "", &name, None), text);
        walk(items, "/item", "", &name, out);
        return true;
    }
    if let Some(values) = doc.get("values").filter(|v| v.is_array()) {
        let name = str_at(&doc, "name").map(str::to_string);
        let mut text = String::new();
        render("values", values, &[], &mut text);
        out(origin("postman_environment", "/values", &name, None), text);
        return true;
    }
    false
}

fn walk(
    items: &[Value],
    pointer: &str,
    folder: &str,
    collection: &Option<String>,
    out: &mut dyn FnMut(ExportOrigin, String),
) {
    for (i, item) in items.iter().enumerate() {
        let here = format!("{pointer}/{i}");
        let name = str_at(item, "name").unwrap_or("(unnamed)");
        let path = if folder.is_empty() {
            name.to_string()
        } else {
            format!("{folder}/{name}")
        };
        let mut text = String::new();
        render("", item, &["item"], &mut text);
        out(
            origin("postman_collection", &here, collection, Some(path.clone())),
            text,
        );
        if let Some(children) = item.get("item").and_then(Value::as_array) {
            walk(children, &format!("{here}/item"), &path, collection, out);
        }
    }
}

fn origin(
    export: &str,
    record: &str,
    container: &Option<String>,
    item: Option<String>,
) -> ExportOrigin {
    ExportOrigin {
        export: export.into(),
        record: record.into(),
        container: container.clone(),
        item,
        author: None,
        time: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collection_records_carry_folder_paths() {
        let doc = serde_json::json!({
            "info": {"_postman_id": "1", "name": "Shop API"},
            "variable": [{"key": "base", "value": "https://api.example"}],
            "item": [{
                "name": "Admin",
                "item": [{
                    "name": "Create user",
                    "request": {
                        "auth": {"type": "bearer", "bearer": [{"key": "token", "value": "T1"}]},
                        "url": {"raw": "{{base}}/users?api_key=Q1", "query": [{"key": "api_key", "value": "Q1"}]}
                    }
                }]
            }]
        });
        let mut got = Vec::new();
        assert!(split(doc, &mut |o, t| got.push((o, t))));
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].0.record, "");
        assert!(got[0].1.contains("variable.base = https://api.example"));
        assert_eq!(got[2].0.record, "/item/0/item/0");
        assert_eq!(got[2].0.item.as_deref(), Some("Admin/Create user"));
        assert_eq!(got[2].0.container.as_deref(), Some("Shop API"));
        assert!(
            got[2].1.contains("request.auth.bearer.token = T1\n"),
            "{}",
            got[2].1
        );
        assert!(
            got[2].1.contains("request.url.query.api_key = Q1\n"),
            "{}",
            got[2].1
        );
    }

    #[test]
    fn environment_values() {
        let doc = serde_json::json!({
            "name": "Prod",
            "values": [{"key": "api_token", "value": "V1", "enabled": true}],
            "_postman_variable_scope": "environment"
        });
        let mut got = Vec::new();
        assert!(split(doc, &mut |o, t| got.push((o, t))));
        assert_eq!(got[0].0.export, "postman_environment");
        assert_eq!(got[0].1, "values.api_token = V1\n");
        assert!(!split(serde_json::json!({"name": "x"}), &mut |_, _| {}));
    }
}

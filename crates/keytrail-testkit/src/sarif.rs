//! The official SARIF 2.1.0 schema (committed in `testdata/sarif`), made
//! loadable by strict JSON Schema validators, for tests that check SARIF
//! output.

use serde_json::Value;

/// The schema, with one kind of edit: its language-tag patterns end in a
/// stray `]` (`...{2}]?$`) that ECMA-262 reads as a literal but strict
/// regex checks reject; it is escaped (`\]`, same meaning). Nothing else is
/// touched. Panics when the schema file is missing or has no such pattern
/// (the edit would then be silently stale).
pub fn schema() -> Value {
    let path = crate::data::sarif_schema();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read the SARIF schema {}: {e}", path.display()));
    let mut schema: Value = serde_json::from_str(&text).expect("the SARIF schema is JSON");
    assert!(
        escape_language_patterns(&mut schema) >= 1,
        "the schema's language-tag patterns changed: revisit this edit"
    );
    schema
}

/// Escape the stray `]`; returns how many patterns were edited.
fn escape_language_patterns(v: &mut Value) -> usize {
    match v {
        Value::Object(map) => {
            let mut n = 0;
            for (k, child) in map.iter_mut() {
                if k == "pattern"
                    && let Value::String(p) = child
                    && p.ends_with("{2}]?$")
                {
                    *p = p.replace("{2}]?$", "{2}\\]?$");
                    n += 1;
                } else {
                    n += escape_language_patterns(child);
                }
            }
            n
        }
        Value::Array(items) => items.iter_mut().map(escape_language_patterns).sum(),
        _ => 0,
    }
}

//! A tiny JSON path: `a.b`, `a.0.b`, `[].login` (every element), `[0]`.

use serde_json::Value;

/// Every value at `path` in `v` (several when the path maps over an array).
pub fn get<'a>(v: &'a Value, path: &str) -> Vec<&'a Value> {
    let mut cur = vec![v];
    let path = path.trim();
    if path.is_empty() || path == "." {
        return cur;
    }
    for seg in path.replace('[', ".[").split('.').filter(|s| !s.is_empty()) {
        let mut next = Vec::new();
        for c in cur {
            if seg == "[]" {
                if let Some(a) = c.as_array() {
                    next.extend(a.iter());
                }
            } else if let Some(i) = seg
                .strip_prefix('[')
                .and_then(|s| s.strip_suffix(']'))
                .and_then(|s| s.parse::<usize>().ok())
                .or_else(|| c.is_array().then(|| seg.parse::<usize>().ok()).flatten())
            {
                if let Some(x) = c.get(i) {
                    next.push(x);
                }
            } else if let Some(x) = c.get(seg) {
                next.push(x);
            }
        }
        cur = next;
    }
    cur
}

/// A scalar as text (strings unquoted); `None` for null, objects and arrays.
pub fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Every scalar at `path`, as text, flattening arrays of scalars.
pub fn texts(v: &Value, path: &str) -> Vec<String> {
    let mut out = Vec::new();
    for x in get(v, path) {
        match x {
            Value::Array(a) => out.extend(a.iter().filter_map(text)),
            other => out.extend(text(other)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let v: Value = serde_json::json!({"a": {"b": [{"c": 1}, {"c": "x"}]}, "l": ["p", "q"]});
        assert_eq!(texts(&v, "a.b[].c"), vec!["1", "x"]);
        assert_eq!(texts(&v, "a.b[1].c"), vec!["x"]);
        assert_eq!(texts(&v, "a.b.0.c"), vec!["1"]);
        assert_eq!(texts(&v, "l"), vec!["p", "q"]);
        assert!(texts(&v, "nope.x").is_empty());
    }
}

//! A linear pre-check of YAML nesting depth, run before a YAML parser sees
//! untrusted text (rule files, Sigma rules, owners files): parsers take
//! time and stack that grow faster than linearly with nesting (100,000
//! levels of `[[[…` took 15 s), and no real file nests more than a few
//! dozen levels.
//!
//! The estimate is an upper bound of the real depth: flow brackets open
//! outside quotes and comments, plus, on each line, the indentation
//! (counted as one level per two columns) and the compact block entries
//! (`- - - x`) that start it.

/// Deepest nesting accepted by default (see [`too_deep`]).
pub const MAX_DEPTH: usize = 256;

/// Where `text` first nests deeper than `max`: 1-based line and column.
pub fn too_deep(text: &str, max: usize) -> Option<(u64, u64)> {
    let mut flow = 0usize;
    for (li, line) in text.lines().enumerate() {
        let bytes = line.as_bytes();
        let indent = bytes.iter().take_while(|&&b| b == b' ').count();
        let mut i = indent;
        let mut compact = 0usize;
        while i + 1 < bytes.len() && matches!(bytes[i], b'-' | b'?') && bytes[i + 1] == b' ' {
            compact += 1;
            i += 2;
            while i < bytes.len() && bytes[i] == b' ' {
                i += 1;
            }
        }
        let block = indent / 2 + compact;
        if flow + block > max {
            return Some((li as u64 + 1, i as u64 + 1));
        }
        let mut quote: Option<u8> = None;
        while i < bytes.len() {
            let b = bytes[i];
            match quote {
                Some(q) => {
                    if b == q {
                        quote = None;
                    } else if b == b'\\' && q == b'"' {
                        i += 1;
                    }
                }
                None => match b {
                    b'"' | b'\'' if i == 0 || !bytes[i - 1].is_ascii_alphanumeric() => {
                        quote = Some(b)
                    }
                    b'#' if i == 0 || bytes[i - 1] == b' ' => break,
                    b'[' | b'{' => {
                        flow += 1;
                        if flow + block > max {
                            return Some((li as u64 + 1, i as u64 + 1));
                        }
                    }
                    b']' | b'}' => flow = flow.saturating_sub(1),
                    _ => {}
                },
            }
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_files_pass_and_deep_ones_are_located() {
        let ok = "rules:\n  - id: a\n    pattern: '[a-z]{3}\\['\n    keywords: [abc, \"d[e\"]\n    # [[[[[[\n";
        assert_eq!(too_deep(ok, 4), None);
        let flow = format!("a: {}1{}\n", "[".repeat(300), "]".repeat(300));
        assert_eq!(too_deep(&flow, MAX_DEPTH), Some((1, 4 + MAX_DEPTH as u64)));
        let compact = format!("x: 1\n{}y\n", "- ".repeat(300));
        assert_eq!(too_deep(&compact, MAX_DEPTH).map(|p| p.0), Some(2));
        let indented: String = (0..300)
            .map(|i| format!("{}k{i}:\n", "  ".repeat(i)))
            .collect();
        assert_eq!(
            too_deep(&indented, MAX_DEPTH).map(|p| p.0),
            Some(MAX_DEPTH as u64 + 2)
        );
        assert_eq!(too_deep(&indented, 400), None);
    }
}

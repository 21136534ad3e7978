//! Inline allow comments: a line that carries `keytrail:allow`,
//! `gitleaks:allow` or `pragma: allowlist secret` suppresses the secrets on
//! it; `pragma: allowlist nextline secret` suppresses those on the next
//! line (the detect-secrets convention).

use crate::engine::{LINE_CONTEXT, line_bounds};
use crate::filters::contains_ci;
use std::ops::Range;

/// Markers that allow the secrets on their own line (lowercase; matched
/// case-insensitively).
pub const SAME_LINE: &[&str] = &[
    "keytrail:allow",
    "gitleaks:allow",
    "pragma: allowlist secret",
];
/// Marker that allows the secrets on the following line.
pub const NEXT_LINE: &str = "pragma: allowlist nextline secret";

/// Whether the secret at `secret` in `data` is allowed by a comment on its
/// first or last line, or by a `nextline` pragma on the line before.
pub fn is_allowed(data: &[u8], secret: Range<usize>) -> bool {
    let (start, end) = line_bounds(data, secret.start, LINE_CONTEXT);
    if line_allows(&data[start..end]) {
        return true;
    }
    if secret.end > end {
        let (s2, e2) = line_bounds(data, secret.end.saturating_sub(1), LINE_CONTEXT);
        if line_allows(&data[s2..e2]) {
            return true;
        }
    }
    if start > 0 {
        let (ps, pe) = line_bounds(data, start - 1, LINE_CONTEXT);
        if contains_ci(&data[ps..pe], NEXT_LINE.as_bytes()) {
            return true;
        }
    }
    false
}

fn line_allows(line: &[u8]) -> bool {
    // Cheap pre-check: every marker contains `allow`.
    contains_ci(line, b"allow") && SAME_LINE.iter().any(|m| contains_ci(line, m.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (text, secret, allowed?)
    const CASES: &[(&str, &str, bool)] = &[
        (
            "token = \"SECRETVALUE\" # keytrail:allow\n",
            "SECRETVALUE",
            true,
        ),
        (
            "token = \"SECRETVALUE\" // gitleaks:allow\n",
            "SECRETVALUE",
            true,
        ),
        (
            "token = \"SECRETVALUE\"  # pragma: allowlist secret\n",
            "SECRETVALUE",
            true,
        ),
        (
            "# pragma: allowlist nextline secret\ntoken = \"SECRETVALUE\"\n",
            "SECRETVALUE",
            true,
        ),
        ("token = \"SECRETVALUE\"\n", "SECRETVALUE", false),
        (
            "# keytrail:allow\ntoken = \"SECRETVALUE\"\n",
            "SECRETVALUE",
            false,
        ),
        (
            "# pragma: allowlist nextline secret\n\ntoken = \"SECRETVALUE\"\n",
            "SECRETVALUE",
            false,
        ),
        (
            "token = \"SECRETVALUE\"\n# keytrail:allow\n",
            "SECRETVALUE",
            false,
        ),
        ("allowed = \"SECRETVALUE\"\n", "SECRETVALUE", false),
    ];

    #[test]
    fn allow_comments() {
        for (text, secret, want) in CASES {
            let at = text.find(secret).unwrap();
            assert_eq!(
                is_allowed(text.as_bytes(), at..at + secret.len()),
                *want,
                "{text:?}"
            );
        }
    }
}

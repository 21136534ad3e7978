//! Byte-level JSON scanning: where a value or string that starts at an offset ends,
//! without parsing it (string- and escape-aware bracket matching). The readers split
//! records with it and the event model finds members of raw record text; a malformed
//! value costs only itself.

/// Finds the end (exclusive) of the JSON value starting at `start`. `Err(len)` when the
/// input ends first.
pub(crate) fn value_end(b: &[u8], start: usize) -> Result<usize, usize> {
    let mut i = start;
    match b.get(i) {
        None => return Err(b.len()),
        Some(b'{' | b'[') => {}
        Some(b'"') => return string_end(b, i),
        Some(_) => {
            // A scalar, or a stray closing bracket: at least one byte, so a caller that
            // moves on to the end always makes progress (`[}` is one bad value, not an
            // endless run of empty ones).
            i += 1;
            while i < b.len() && !matches!(b[i], b',' | b']' | b'}' | b' ' | b'\n' | b'\r' | b'\t')
            {
                i += 1;
            }
            return Ok(i);
        }
    }
    let mut depth = 0usize;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i = string_end(b, i)?;
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return Ok(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    Err(b.len())
}

/// Finds the end (exclusive) of the JSON string starting at `start` (its opening
/// quote). `Err(len)` when the input ends first.
pub(crate) fn string_end(b: &[u8], start: usize) -> Result<usize, usize> {
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Ok(i + 1),
            _ => i += 1,
        }
    }
    Err(b.len())
}

//! The CI log source of `scan --log`: strip what CI systems add around
//! each line (ANSI colour and control sequences, timestamp prefixes) and
//! hand the cleaned text out in chunks, with a map that places a position
//! of the cleaned text at its *original* log line, column and byte offset.
//! The scan session scans each chunk and moves its findings back.
//!
//! Recognised line prefixes (after ANSI sequences are removed):
//! - GitHub Actions and Azure Pipelines: `2024-05-01T12:34:56.1234567Z `
//! - GitLab job logs with timestamps: `2024-05-01T12:34:56.123456Z 00O `
//!   (stream number, `O`/`E` for stdout/stderr, optional `+` for a
//!   continued line)
//! - Jenkins Timestamper: `[2024-05-01T12:34:56.123Z] ` and `[12:34:56] `
//! - Buildkite: its `ESC _bk;t=…BEL` timing markers are escape sequences;
//!   plain ISO 8601 prefixes (`2024-05-01 12:34:56,123+02:00 `) too
//! - syslog (RFC 3164): `May  1 12:34:56 host prog[123]: `
//!
//! Lines stay one-for-one, so line numbers map directly; each cleaned line
//! keeps a list of breakpoints (cleaned column → original column) so
//! columns and byte offsets point into the original file.
//!
//! Memory is bounded: lines are cleaned into chunks of about [`CHUNK`]
//! bytes ([`LogChunks`]), and the last [`KEEP`] bytes of lines are carried
//! into the next chunk; a match is accepted only in the chunk where its
//! line is in [`LogChunk::accept`], the same accept-once scheme as
//! `Scanner::scan_reader` at line granularity. A line longer than
//! [`MAX_LINE`] bytes is cut into pieces of that size.

use regex::bytes::Regex;
use std::io::{self, BufRead, BufReader, Read};
use std::sync::LazyLock;

/// Cleaned bytes scanned at once.
pub const CHUNK: usize = 4 << 20;
/// Bytes of trailing lines carried into the next chunk.
pub const KEEP: usize = 64 << 10;
/// Longest line piece cleaned as one line.
pub const MAX_LINE: usize = 1 << 20;

static PREFIX: LazyLock<Regex> = LazyLock::new(|| {
    let date = r"[0-9]{4}-[0-9]{2}-[0-9]{2}";
    let time = r"[0-9]{2}:[0-9]{2}:[0-9]{2}(?:[.,][0-9]+)?";
    let zone = r"(?:Z|[+-][0-9]{2}:?[0-9]{2})?";
    let pattern = format!(
        r"^(?:{date}T{time}Z [0-9a-fA-F]{{2}}[OE]\+? |\[{date}[T ]{time}{zone}\] |\[{time}\] |{date}[T ]{time}{zone} |[A-Z][a-z]{{2}} [ 0-9][0-9] [0-9]{{2}}:[0-9]{{2}}:[0-9]{{2}} [^ ]+ [^ :\[]+(?:\[[0-9]+\])?: )"
    );
    Regex::new(&pattern).expect("log prefix pattern compiles")
});

/// One cleaned line: where it came from and how its columns map back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineMap {
    /// 1-based line number in the original log.
    pub line: u64,
    /// Byte offset of the original line (or line piece) start.
    pub offset: u64,
    /// Column (0-based, bytes) of the piece start within the original line.
    pub column: u64,
    /// Breakpoints `(cleaned, original)`: cleaned column `c >= cleaned`
    /// (up to the next breakpoint) is original column `original + c - cleaned`
    /// (both 0-based, relative to the piece).
    pub breaks: Vec<(u32, u32)>,
}

impl LineMap {
    /// Original 0-based column (relative to the line start) of cleaned column `c`.
    pub fn original_column(&self, c: u64) -> u64 {
        let c32 = u32::try_from(c).unwrap_or(u32::MAX);
        let i = self.breaks.partition_point(|(clean, _)| *clean <= c32);
        let (clean, orig) = if i == 0 { (0, 0) } else { self.breaks[i - 1] };
        self.column + u64::from(orig) + (c - u64::from(clean))
    }
}

/// Append the cleaned form of one raw log line (without its newline) to
/// `out` and return its breakpoints (relative to the line start in `out`).
pub fn clean_line(raw: &[u8], out: &mut Vec<u8>) -> Vec<(u32, u32)> {
    let start = out.len();
    let mut breaks: Vec<(u32, u32)> = Vec::new();
    let mut i = 0usize;
    let mut seg_start = 0usize;
    while let Some(rel) = memchr::memchr(0x1b, &raw[i..]) {
        let esc = i + rel;
        out.extend_from_slice(&raw[seg_start..esc]);
        let end = escape_end(raw, esc);
        let clean_pos = (out.len() - start) as u32;
        breaks.push((clean_pos, end as u32));
        i = end;
        seg_start = end;
    }
    out.extend_from_slice(&raw[seg_start..]);
    // A prefix is recognised on the cleaned text (GitLab puts colour
    // after its timestamp, Buildkite puts a marker before it).
    if let Some(m) = PREFIX.find(&out[start..]) {
        let cut = m.end();
        let orig_at_cut = map_col(&breaks, cut as u32);
        out.drain(start..start + cut);
        let mut shifted = vec![(0u32, orig_at_cut)];
        shifted.extend(
            breaks
                .iter()
                .filter(|(c, _)| *c as usize > cut)
                .map(|(c, o)| (c - cut as u32, *o)),
        );
        breaks = shifted;
    }
    // Drop a trailing `\r` (CRLF logs): it is not part of any secret.
    if out.len() > start && out[out.len() - 1] == b'\r' {
        out.pop();
    }
    breaks
}

fn map_col(breaks: &[(u32, u32)], c: u32) -> u32 {
    let i = breaks.partition_point(|(clean, _)| *clean <= c);
    let (clean, orig) = if i == 0 { (0, 0) } else { breaks[i - 1] };
    orig + (c - clean)
}

/// End (exclusive) of the terminal escape sequence (CSI, OSC/DCS/APC
/// strings, two- and three-byte sequences) starting with ESC at `i`.
pub fn escape_end(raw: &[u8], i: usize) -> usize {
    let n = raw.len();
    if i + 1 >= n {
        return n;
    }
    match raw[i + 1] {
        // CSI: parameters, intermediates, one final byte.
        b'[' => {
            let mut j = i + 2;
            while j < n && (0x20..=0x3f).contains(&raw[j]) {
                j += 1;
            }
            if j < n && (0x40..=0x7e).contains(&raw[j]) {
                j + 1
            } else {
                j
            }
        }
        // OSC, DCS, SOS, PM, APC: a string ended by BEL or ESC \.
        b']' | b'P' | b'X' | b'^' | b'_' => {
            let mut j = i + 2;
            while j < n {
                if raw[j] == 0x07 {
                    return j + 1;
                }
                if raw[j] == 0x1b {
                    return if j + 1 < n && raw[j + 1] == b'\\' {
                        j + 2
                    } else {
                        j
                    };
                }
                j += 1;
            }
            n
        }
        // Two-byte sequences (ESC 7, ESC =, ESC (B ...).
        b'(' | b')' | b'*' | b'+' => (i + 3).min(n),
        _ => i + 2,
    }
}

/// A whole log cleaned in memory, with its line maps.
#[derive(Debug, Clone, Default)]
pub struct CleanedLog {
    /// Cleaned text, one line per original line (or line piece).
    pub text: Vec<u8>,
    /// One map per cleaned line.
    pub lines: Vec<LineMap>,
}

/// Clean a whole log held in memory.
pub fn clean_log(data: &[u8]) -> CleanedLog {
    let mut out = CleanedLog::default();
    let mut r = LineReader::new(data);
    while let Some((piece, map)) = r.next_piece().expect("reading memory does not fail") {
        let breaks = clean_line(&piece, &mut out.text);
        out.text.push(b'\n');
        out.lines.push(LineMap { breaks, ..map });
    }
    out
}

/// Reads raw lines (without `\n`) in pieces of at most [`MAX_LINE`] bytes.
struct LineReader<R: Read> {
    r: BufReader<R>,
    line: u64,
    offset: u64,
    /// Column of the next piece within the current line.
    column: u64,
}

impl<R: Read> LineReader<R> {
    fn new(r: R) -> Self {
        LineReader {
            r: BufReader::with_capacity(64 << 10, r),
            line: 1,
            offset: 0,
            column: 0,
        }
    }

    /// The next piece and its (breakless) map; `None` at the end.
    fn next_piece(&mut self) -> io::Result<Option<(Vec<u8>, LineMap)>> {
        let mut piece = Vec::new();
        let map = LineMap {
            line: self.line,
            offset: self.offset,
            column: self.column,
            breaks: Vec::new(),
        };
        loop {
            let avail = match self.r.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if avail.is_empty() {
                if piece.is_empty() {
                    return Ok(None);
                }
                self.offset += piece.len() as u64;
                return Ok(Some((piece, map)));
            }
            let room = MAX_LINE - piece.len();
            let look = &avail[..avail.len().min(room)];
            if let Some(i) = memchr::memchr(b'\n', look) {
                piece.extend_from_slice(&look[..i]);
                self.r.consume(i + 1);
                self.offset += piece.len() as u64 + 1;
                self.line += 1;
                self.column = 0;
                return Ok(Some((piece, map)));
            }
            let n = look.len();
            piece.extend_from_slice(look);
            self.r.consume(n);
            if piece.len() >= MAX_LINE {
                self.offset += piece.len() as u64;
                self.column += piece.len() as u64;
                return Ok(Some((piece, map)));
            }
        }
    }
}

/// The cleaned text of a log, chunk by chunk (see the module docs).
pub struct LogChunks<R: Read> {
    reader: LineReader<R>,
    text: Vec<u8>,
    lines: Vec<LineMap>,
    /// Line starts in `text`, parallel to `lines`.
    starts: Vec<usize>,
    /// Lines accepted by the chunk handed out last, dropped on the next call.
    handed: Option<usize>,
    done: bool,
}

/// One chunk of cleaned text: whole cleaned lines, `\n`-terminated.
pub struct LogChunk<'a> {
    /// The cleaned text.
    pub text: &'a [u8],
    /// One map per line of `text`.
    pub lines: &'a [LineMap],
    /// The 0-based lines of `text` whose matches belong to this chunk
    /// (later lines come again at the start of the next chunk).
    pub accept: std::ops::Range<usize>,
}

/// Where a position of the cleaned text is in the original log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    /// 1-based line.
    pub line: u64,
    /// 1-based column (bytes).
    pub column: u64,
    /// Byte offset from the start of the log.
    pub offset: u64,
}

impl LogChunk<'_> {
    /// The original place of 1-based `line` and `column` of this chunk's
    /// text, if that line is accepted in this chunk.
    pub fn place(&self, line: u64, column: u64) -> Option<Place> {
        let li = (line as usize).saturating_sub(1);
        if !self.accept.contains(&li) || li >= self.lines.len() {
            return None;
        }
        let map = &self.lines[li];
        let col = map.original_column(column.saturating_sub(1));
        Some(Place {
            line: map.line,
            column: col + 1,
            offset: map.offset - map.column + col,
        })
    }
}

impl<R: Read> LogChunks<R> {
    /// Read the log from `r`.
    pub fn new(r: R) -> Self {
        LogChunks {
            reader: LineReader::new(r),
            text: Vec::with_capacity(CHUNK + MAX_LINE),
            lines: Vec::new(),
            starts: Vec::new(),
            handed: None,
            done: false,
        }
    }

    /// Bytes of the original log read so far (all of it once
    /// [`LogChunks::next_chunk`] returned `None`).
    pub fn bytes_read(&self) -> u64 {
        self.reader.offset
    }

    /// The next chunk, or `None` at the end of the log.
    pub fn next_chunk(&mut self) -> io::Result<Option<LogChunk<'_>>> {
        if let Some(keep) = self.handed.take() {
            let cut = self.starts.get(keep).copied().unwrap_or(self.text.len());
            self.text.drain(..cut);
            self.lines.drain(..keep);
            self.starts.drain(..keep);
            for s in &mut self.starts {
                *s -= cut;
            }
        }
        if self.done {
            return Ok(None);
        }
        loop {
            let piece = self.reader.next_piece()?;
            let eof = piece.is_none();
            if let Some((raw, map)) = piece {
                self.starts.push(self.text.len());
                let breaks = clean_line(&raw, &mut self.text);
                self.text.push(b'\n');
                self.lines.push(LineMap { breaks, ..map });
                if self.text.len() < CHUNK {
                    continue;
                }
            }
            if self.lines.is_empty() {
                self.done = true;
                return Ok(None);
            }
            // Lines from `keep` on are carried into the next chunk and accepted there.
            let keep = if eof {
                self.done = true;
                self.lines.len()
            } else {
                let limit = self.text.len().saturating_sub(KEEP);
                let keep = self.starts.partition_point(|&s| s < limit).max(1);
                self.handed = Some(keep);
                keep
            };
            return Ok(Some(LogChunk {
                text: &self.text,
                lines: &self.lines,
                accept: 0..keep,
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cleaned(line: &str) -> String {
        let mut out = Vec::new();
        clean_line(line.as_bytes(), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn strips_each_ci_prefix() {
        for (raw, want) in [
            ("2024-05-01T12:34:56.1234567Z Run make", "Run make"),
            ("2024-05-01T12:34:56.123456Z 00O $ make", "$ make"),
            ("2024-05-01T12:34:56.123456Z 01E+ warn", "warn"),
            ("[2024-05-01T12:34:56.123Z] + make", "+ make"),
            ("[12:34:56] + make", "+ make"),
            ("2024-05-01 12:34:56,123+02:00 started", "started"),
            ("May  1 12:34:56 runner-7 dockerd[812]: pulling", "pulling"),
            ("\x1b_bk;t=1714566896123\x07~~~ Running", "~~~ Running"),
            (
                "plain line 2024-05-01T12:34:56Z kept",
                "plain line 2024-05-01T12:34:56Z kept",
            ),
        ] {
            assert_eq!(cleaned(raw), want, "{raw:?}");
        }
    }

    #[test]
    fn strips_ansi_and_maps_columns_back() {
        let raw = "2024-05-01T12:34:56.1234567Z \x1b[32;1mtoken:\x1b[0m value";
        let mut out = Vec::new();
        let breaks = clean_line(raw.as_bytes(), &mut out);
        assert_eq!(out, b"token: value");
        let map = LineMap {
            line: 1,
            offset: 0,
            column: 0,
            breaks,
        };
        // `v` of value: cleaned column 7.
        let col = map.original_column(7) as usize;
        assert_eq!(&raw[col..col + 5], "value");
        let t = map.original_column(0) as usize;
        assert_eq!(&raw[t..t + 5], "token");
    }
}

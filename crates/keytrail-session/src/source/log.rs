//! The CI log source: `keytrail_input::log` cleans the log (ANSI sequences
//! and CI timestamp prefixes removed) into chunks with a map back to the
//! original text; each chunk is scanned with the run's scanner and every
//! finding placed at its line, column and byte offset in the original log.
//! UTF-16 logs (Windows runners, PowerShell transcripts) are read as their
//! text, as files are.

use super::{Context, Source};
use keytrail_input::log::LogChunks;
use keytrail_scan::{BlobFinding, Scanner};
use keytrail_types::{Diagnostic, Origin};
use std::io::Read;
use std::path::PathBuf;

/// A CI log file, or standard input as `-`.
#[derive(Debug, Clone)]
pub struct Log {
    /// The log as named.
    pub path: PathBuf,
}

impl Source for Log {
    fn scan(&self, cx: &mut Context<'_>) -> anyhow::Result<()> {
        let sink = cx.sink;
        let log = &self.path;
        let display = log.display().to_string();
        let result = if log.as_os_str() == "-" {
            keytrail_input::utf8_text(std::io::stdin().lock())
                .and_then(|r| scan_log(sink.scanner(), "-", r))
        } else {
            std::fs::File::open(log)
                .and_then(|f| keytrail_input::utf8_text(std::io::BufReader::new(f)))
                .and_then(|r| scan_log(sink.scanner(), &display, r))
        };
        match result {
            Ok((found, bytes)) => sink.record(found, bytes),
            Err(e) => super::failed(
                sink,
                Diagnostic::error("unreadable", display.clone(), e.to_string()),
                &display,
            ),
        }
        Ok(())
    }
}

/// Scan a CI log from `r`: findings located in the original log
/// (`Origin::Log`, original line, column and offset; the snippet is
/// cleaned text with the secret masked), and the bytes read.
pub fn scan_log<R: Read>(
    scanner: &Scanner,
    path: &str,
    r: R,
) -> std::io::Result<(Vec<BlobFinding>, u64)> {
    let origin = Origin::Log;
    let mut chunks = LogChunks::new(r);
    let mut out = Vec::new();
    while let Some(chunk) = chunks.next_chunk()? {
        for mut f in scanner.scan_bytes(path, &origin, chunk.text) {
            if let Some(place) = chunk.place(f.location.line, f.location.column) {
                f.location.line = place.line;
                f.location.column = place.column;
                f.location.offset = place.offset;
                out.push(f);
            }
        }
    }
    Ok((out, chunks.bytes_read()))
}

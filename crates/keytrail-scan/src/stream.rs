//! Whole-buffer and streaming entry points: [`Scanner::scan_bytes`] and
//! [`Scanner::scan_reader`].
//!
//! Streaming reads fixed-size chunks; each chunk after the first begins
//! with the last `overlap` bytes of the previous one. A match belongs to the
//! chunk in which its secret *starts* within that chunk's accepting region:
//! the previous chunk accepts up to `overlap / 2` bytes before its end, the
//! next one from `overlap / 2` bytes after its start, which is the same
//! absolute offset. So every match is reported once, every match shorter
//! than `overlap / 2` is seen whole, and every accepted match has at least
//! `overlap / 2` bytes of preceding context. Memory is one chunk, whatever
//! the input size.

use crate::dedup::dedup;
use crate::engine::{RawMatch, Scanner};
use crate::finding::BlobFinding;
use crate::locate::{Base, locate};
use keytrail_types::Origin;
use std::io::Read;

impl Scanner {
    /// All findings in one in-memory buffer, in offset order: validators,
    /// filters and allow comments applied; line, column and snippet
    /// computed (the snippet has the secret masked).
    pub fn scan_bytes(&self, path: &str, origin: &Origin, data: &[u8]) -> Vec<BlobFinding> {
        let (matches, also) = dedup(self, data, self.find_matches(Some(path), data));
        let mut out = Vec::with_capacity(matches.len());
        locate(
            self,
            path,
            origin,
            data,
            &matches,
            &also,
            |_| true,
            Base::START,
            &mut out,
        );
        if self.decode {
            self.push_decoded(
                path,
                origin,
                data,
                &matches,
                |_| true,
                Base::START,
                &mut out,
            );
        }
        out
    }

    /// Same as [`Scanner::scan_bytes`] for a stream, in bounded memory
    /// (chunks with overlap, see [`Scanner::with_chunking`]), with correct
    /// line numbers and offsets. Returns the findings and the number of
    /// bytes read.
    pub fn scan_reader<R: Read>(
        &self,
        path: &str,
        origin: &Origin,
        mut r: R,
    ) -> std::io::Result<(Vec<BlobFinding>, u64)> {
        let chunk = self.chunk;
        let overlap = self.overlap;
        let half = overlap / 2;
        let mut buf: Vec<u8> = Vec::with_capacity(chunk);
        let mut base = Base::START;
        let mut out = Vec::new();
        let mut total: u64 = 0;
        loop {
            let eof = fill(&mut r, &mut buf, chunk, &mut total)?;
            let first = base.offset == 0;
            let lo = if first { 0 } else { half };
            let hi = if eof { buf.len() } else { buf.len() - half };
            let (matches, also) = dedup(self, &buf, self.find_matches(Some(path), &buf));
            let accept = |m: &RawMatch| (lo..hi).contains(&m.secret.start);
            locate(
                self, path, origin, &buf, &matches, &also, accept, base, &mut out,
            );
            if self.decode {
                let accept = |at: usize| (lo..hi).contains(&at);
                self.push_decoded(path, origin, &buf, &matches, accept, base, &mut out);
            }
            if eof {
                return Ok((out, total));
            }
            // Keep the last `overlap` bytes; advance the line bookkeeping
            // over what is dropped.
            let keep_from = buf.len() - overlap;
            let dropped = &buf[..keep_from];
            let newlines = memchr::memchr_iter(b'\n', dropped).count() as u64;
            if let Some(i) = memchr::memrchr(b'\n', dropped) {
                base.line_start = base.offset + i as u64 + 1;
            }
            base.line += newlines;
            base.offset += keep_from as u64;
            buf.drain(..keep_from);
        }
    }
}

/// Read until `buf` holds `cap` bytes or the reader ends; returns whether
/// it ended. Interrupted reads are retried.
fn fill<R: Read>(
    r: &mut R,
    buf: &mut Vec<u8>,
    cap: usize,
    total: &mut u64,
) -> std::io::Result<bool> {
    let mut filled = buf.len();
    buf.resize(cap, 0);
    while filled < cap {
        match r.read(&mut buf[filled..]) {
            Ok(0) => {
                buf.truncate(filled);
                return Ok(true);
            }
            Ok(n) => {
                filled += n;
                *total += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                buf.truncate(filled);
                return Err(e);
            }
        }
    }
    Ok(false)
}

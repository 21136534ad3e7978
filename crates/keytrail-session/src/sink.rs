//! The sink every source pushes into: each blob is scanned on the thread
//! that read it, and only the (rare) findings take the aggregator lock.
//! Diagnostics are sorted into errors, skips and archives cut by a limit;
//! an error about a target the user named fails that target.

use keytrail_input::{Blob, BlobSink, Content};
use keytrail_scan::{Aggregator, BlobFinding, Scanner};
use keytrail_types::{Diagnostic, Finding};
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Counters a run updates from its worker threads, readable at any time
/// (the CLI's progress line reads them a few times a second).
#[derive(Debug, Default)]
pub struct Progress {
    /// Blobs scanned.
    pub files: AtomicU64,
    /// Bytes scanned.
    pub bytes: AtomicU64,
    /// Raw matches found so far (before de-duplication).
    pub matches: AtomicU64,
}

/// The [`BlobSink`] of a run: scanner, aggregator and diagnostics.
pub struct ScanSink<'a> {
    scanner: &'a Scanner,
    agg: Mutex<Aggregator>,
    progress: Arc<Progress>,
    errors: Mutex<Vec<Diagnostic>>,
    skips: Mutex<Vec<Diagnostic>>,
    incomplete: Mutex<Vec<Diagnostic>>,
    skipped: AtomicU64,
    keep_skips: bool,
    /// Display names of the paths the user named: an error about one of
    /// them (not about a file inside it) fails the target.
    roots: HashSet<String>,
    failed_targets: Mutex<Vec<String>>,
}

/// What a sink collected, unsorted.
pub(crate) struct Parts {
    pub findings: Vec<Finding>,
    pub errors: Vec<Diagnostic>,
    pub skips: Vec<Diagnostic>,
    pub incomplete: Vec<Diagnostic>,
    pub skipped: u64,
    pub failed_targets: Vec<String>,
}

impl<'a> ScanSink<'a> {
    /// A sink scanning with `scanner`, counting into `progress`; skip
    /// diagnostics are kept only with `keep_skips`.
    pub(crate) fn new(
        scanner: &'a Scanner,
        progress: Arc<Progress>,
        keep_skips: bool,
        roots: &[PathBuf],
    ) -> ScanSink<'a> {
        ScanSink {
            scanner,
            agg: Mutex::new(Aggregator::new()),
            progress,
            errors: Mutex::new(Vec::new()),
            skips: Mutex::new(Vec::new()),
            incomplete: Mutex::new(Vec::new()),
            skipped: AtomicU64::new(0),
            keep_skips,
            roots: roots
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect(),
            failed_targets: Mutex::new(Vec::new()),
        }
    }

    /// The scanner blobs are matched with (sources that transform text
    /// before scanning, such as CI logs, scan through it and then
    /// [`ScanSink::record`]).
    pub fn scanner(&self) -> &Scanner {
        self.scanner
    }

    /// A target the user named could not be read at all.
    pub fn target_failed(&self, name: &str) {
        let mut failed = self
            .failed_targets
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if !failed.iter().any(|f| f == name) {
            failed.push(name.to_string());
        }
    }

    /// Count one scanned input of `bytes` bytes and aggregate its matches.
    pub fn record(&self, found: Vec<BlobFinding>, bytes: u64) {
        self.progress.files.fetch_add(1, Ordering::Relaxed);
        self.progress.bytes.fetch_add(bytes, Ordering::Relaxed);
        if found.is_empty() {
            return;
        }
        self.progress
            .matches
            .fetch_add(found.len() as u64, Ordering::Relaxed);
        let mut agg = self.agg.lock().unwrap_or_else(|e| e.into_inner());
        for f in found {
            agg.add(self.scanner, f);
        }
    }

    /// The findings and diagnostics, once every source is done.
    pub(crate) fn into_parts(self) -> Parts {
        let inner = |m: Mutex<Vec<Diagnostic>>| m.into_inner().unwrap_or_else(|e| e.into_inner());
        Parts {
            findings: self
                .agg
                .into_inner()
                .unwrap_or_else(|e| e.into_inner())
                .finish(),
            errors: inner(self.errors),
            skips: inner(self.skips),
            incomplete: inner(self.incomplete),
            skipped: self.skipped.load(Ordering::Relaxed),
            failed_targets: self
                .failed_targets
                .into_inner()
                .unwrap_or_else(|e| e.into_inner()),
        }
    }
}

impl BlobSink for ScanSink<'_> {
    fn blob(&self, blob: Blob) {
        match blob.content {
            Content::Bytes(data) => {
                let found = self.scanner.scan_bytes(&blob.path, &blob.origin, &data);
                self.record(found, data.len() as u64);
            }
            Content::File { path, .. } => {
                // Too big for memory: stream it in bounded chunks.
                let result = std::fs::File::open(&path).and_then(|f| {
                    self.scanner
                        .scan_reader(&blob.path, &blob.origin, std::io::BufReader::new(f))
                });
                match result {
                    Ok((found, bytes)) => self.record(found, bytes),
                    Err(e) => self.diagnostic(Diagnostic::error(
                        "unreadable",
                        blob.path.clone(),
                        e.to_string(),
                    )),
                }
            }
        }
    }

    fn diagnostic(&self, diag: Diagnostic) {
        if diag.is_error && self.roots.contains(&diag.subject) {
            self.target_failed(&diag.subject);
        }
        if keytrail_input::kinds::is_incomplete(&diag.kind) {
            self.incomplete
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(diag);
        } else if diag.is_error {
            self.errors
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(diag);
        } else {
            self.skipped.fetch_add(1, Ordering::Relaxed);
            if self.keep_skips {
                self.skips
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(diag);
            }
        }
    }
}

//! The scan pipeline shared by `scan` and `baseline create`:
//! input walker → [`Scanner`] → [`Aggregator`] → findings + summary.
//!
//! The walker pushes blobs into [`ScanSink`] from its worker threads; each
//! blob is scanned on the thread that read it, and only the (rare)
//! findings take the aggregator lock.

use crate::args::InputArgs;
use crate::config::Settings;
use crate::rule_set;
use crate::sources;
use crate::term::{Counters, Ticker};
use keytrail_input::{Blob, BlobSink, Content, FsOptions};
use keytrail_report::{NotScanned, RuleMeta, Summary};
use keytrail_scan::{Aggregator, Scanner};
use keytrail_types::{Confidence, Diagnostic, Finding};
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// What a scan produced, before baseline filtering and reporting.
pub struct ScanOutput {
    /// De-duplicated findings, in the aggregator's deterministic order.
    pub findings: Vec<Finding>,
    /// Metadata of every rule the scan ran.
    pub rules: Vec<RuleMeta>,
    /// Counters; `findings`/`locations`/`suppressed_by_baseline` are filled by the caller.
    pub summary: Summary,
    /// Error diagnostics (unreadable inputs), sorted.
    pub errors: Vec<Diagnostic>,
    /// Skip diagnostics, sorted; kept only when verbose.
    pub skips: Vec<Diagnostic>,
    /// Archives (and image layers) cut by a limit, sorted: always kept,
    /// always shown, part of the report.
    pub incomplete: Vec<Diagnostic>,
    /// Targets named by the user (paths, `--git-url`, `--image`, `--log`)
    /// that could not be read at all: the run fails (exit 2) whatever
    /// `--fail-on-error` says.
    pub failed_targets: Vec<String>,
    /// Start of the run, for the elapsed time.
    pub started: Instant,
    /// The git repositories scanned, for SARIF's version-control provenance.
    pub repositories: Vec<keytrail_report::RepositoryInfo>,
}

pub(crate) struct ScanSink<'a> {
    scanner: &'a Scanner,
    agg: Mutex<Aggregator>,
    counters: Arc<Counters>,
    errors: Mutex<Vec<Diagnostic>>,
    skips: Mutex<Vec<Diagnostic>>,
    incomplete: Mutex<Vec<Diagnostic>>,
    skipped: std::sync::atomic::AtomicU64,
    keep_skips: bool,
    /// Display names of the paths named on the command line: an error
    /// about one of them (not about a file inside it) fails the target.
    roots: HashSet<String>,
    failed_targets: Mutex<Vec<String>>,
}

impl ScanSink<'_> {
    /// A target the user named could not be read at all.
    pub(crate) fn target_failed(&self, name: &str) {
        let mut failed = self
            .failed_targets
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if !failed.iter().any(|f| f == name) {
            failed.push(name.to_string());
        }
    }

    pub(crate) fn record(&self, found: Vec<keytrail_scan::BlobFinding>, bytes: u64) {
        self.counters.files.fetch_add(1, Ordering::Relaxed);
        self.counters.bytes.fetch_add(bytes, Ordering::Relaxed);
        if found.is_empty() {
            return;
        }
        self.counters
            .matches
            .fetch_add(found.len() as u64, Ordering::Relaxed);
        let mut agg = self.agg.lock().unwrap_or_else(|e| e.into_inner());
        for f in found {
            agg.add(self.scanner, f);
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

/// Load rules, walk `input.paths` and scan everything; drop findings the
/// settings allow-list (counted in `summary.allowed`).
pub fn scan(
    input: &InputArgs,
    min_confidence: Confidence,
    settings: &Settings,
) -> anyhow::Result<ScanOutput> {
    let started = Instant::now();
    // A path that does not exist is a usage error (a typo), not a degraded
    // run: fail before loading anything.
    for p in &input.paths {
        if p.as_os_str() != "-" && std::fs::symlink_metadata(p).is_err() {
            anyhow::bail!("path `{}` does not exist", p.display());
        }
    }
    let mut dirs = settings.rule_dirs.clone();
    dirs.extend(input.rules.iter().cloned());
    let all = rule_set::load(&dirs)?;
    settings.check_selectors(&all)?;
    let rules: Vec<_> = all
        .into_iter()
        .filter(|r| settings.selects(r, min_confidence))
        .collect();
    let (scanner, diags) = Scanner::new(rules);
    if let Some(d) = diags.iter().find(|d| d.is_error) {
        for d in &diags {
            eprintln!("error: {d}");
        }
        anyhow::bail!("cannot compile rules: {d}");
    }
    let meta = scanner
        .rules()
        .iter()
        .map(|c| rule_set::meta(&c.rule))
        .collect();

    let defaults = FsOptions::default();
    let mut excludes = settings.excludes.clone();
    excludes.extend(input.exclude.iter().cloned());
    let opts = FsOptions {
        excludes,
        max_archive_depth: input
            .max_archive_depth
            .or(settings.limits.max_archive_depth)
            .unwrap_or(3),
        max_archive_bytes: input
            .max_archive_bytes
            .or(settings.limits.max_archive_bytes)
            .unwrap_or(defaults.max_archive_bytes),
        max_archive_ratio: input.max_archive_ratio,
        threads: crate::threads::clamp(input.threads, input.quiet),
        scan_archives: !input.no_archives,
        max_in_memory: input.max_in_memory,
        ..FsOptions::default()
    };
    check_excludes(&opts)?;
    let counters = Arc::new(Counters::default());
    let sink = ScanSink {
        scanner: &scanner,
        agg: Mutex::new(Aggregator::new()),
        counters: counters.clone(),
        errors: Mutex::new(Vec::new()),
        skips: Mutex::new(Vec::new()),
        incomplete: Mutex::new(Vec::new()),
        skipped: Default::default(),
        keep_skips: input.verbose && !input.quiet,
        roots: input
            .paths
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect(),
        failed_targets: Mutex::new(Vec::new()),
    };
    let ticker = Ticker::start(!input.quiet, counters.clone());
    let mut repositories = Vec::new();
    let images = sources::scan_all(
        input,
        &opts,
        &settings.limits,
        &scanner,
        &sink,
        &mut repositories,
    )?;
    ticker.finish();

    let mut findings = sink
        .agg
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .finish();
    sources::finish_findings(images.as_ref(), &mut findings);
    let before = findings.len();
    findings.retain(|f| !settings.allows(f));
    let allowed = (before - findings.len()) as u64;
    let mut errors = sink.errors.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut skips = sink.skips.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut incomplete = sink
        .incomplete
        .into_inner()
        .unwrap_or_else(|e| e.into_inner());
    let mut failed_targets = sink
        .failed_targets
        .into_inner()
        .unwrap_or_else(|e| e.into_inner());
    failed_targets.sort();
    let by_place = |a: &Diagnostic, b: &Diagnostic| {
        (&a.subject, a.line, &a.message).cmp(&(&b.subject, b.line, &b.message))
    };
    errors.sort_by(by_place);
    skips.sort_by(by_place);
    incomplete.sort_by(by_place);
    let mut not_scanned: Vec<NotScanned> = errors
        .iter()
        .chain(&incomplete)
        .map(NotScanned::from_diagnostic)
        .collect();
    not_scanned.sort_by(|a, b| (&a.path, a.line, &a.message).cmp(&(&b.path, b.line, &b.message)));
    let summary = Summary {
        files_scanned: counters.files.load(Ordering::Relaxed),
        bytes_scanned: counters.bytes.load(Ordering::Relaxed),
        skipped: sink.skipped.load(Ordering::Relaxed),
        unreadable: errors.len() as u64,
        allowed,
        incomplete: incomplete.len() as u64,
        not_scanned,
        ..Summary::default()
    };
    Ok(ScanOutput {
        findings,
        rules: meta,
        summary,
        errors,
        skips,
        incomplete,
        failed_targets,
        started,
        repositories,
    })
}

/// A bad `--exclude` glob is a usage error (exit 2), not a warning after a
/// long scan that silently excluded nothing. The walker compiles the globs
/// with `globset` too, so a pattern that parses here parses there.
fn check_excludes(opts: &FsOptions) -> anyhow::Result<()> {
    for pattern in &opts.excludes {
        let trimmed = pattern.trim_start_matches('/').trim_end_matches('/');
        if let Err(e) = globset::Glob::new(trimmed) {
            anyhow::bail!("invalid --exclude `{pattern}`: {e}");
        }
    }
    Ok(())
}

/// Print diagnostics on stderr as `warning: path:line: message` (errors
/// and archives cut by a limit) and `note: ...` (skips, only collected
/// when verbose). Targets that could not be read at all are `error:`
/// lines, even with `--quiet`.
pub fn print_diagnostics(out: &ScanOutput, quiet: bool) {
    for t in &out.failed_targets {
        eprintln!("error: `{t}` could not be read: nothing of it was scanned");
    }
    if quiet {
        return;
    }
    for d in &out.errors {
        eprintln!("warning: {d}");
    }
    for d in &out.incomplete {
        eprintln!("warning: {d}");
    }
    for d in &out.skips {
        eprintln!("note: {d}");
    }
}

//! keytrail's scan session: the one pipeline every front-end runs (the CLI
//! today; the HTTP server, the store and distributed workers next).
//!
//! ```text
//! Targets ──plan──▶ [Source]… ──Blob──▶ ScanSink (Scanner on the reading thread)
//!                                          └─▶ Aggregator ──▶ [Step]… ──▶ ScanOutput
//! ```
//!
//! - [`source`]: what a run reads. [`plan`] turns the targets a user named
//!   (paths, git URLs, CI logs, images) into an ordered list of
//!   [`Source`]s behind one trait: git repositories (history, gates, the
//!   index) before the file walker (which also reads their changed
//!   work-tree files), then logs, then images.
//! - [`sink`]: [`sink::ScanSink`], the [`keytrail_input::BlobSink`] every
//!   source pushes into. It scans each blob on the thread that read it,
//!   merges matches in one [`keytrail_scan::Aggregator`], sorts
//!   diagnostics into errors, skips and incomplete archives, and notes the
//!   targets that could not be read at all.
//! - [`steps`]: the post-scan steps, an explicit ordered list
//!   ([`steps::Step`]) run over the aggregated findings: image expansion and
//!   remediation, environment separation, the allow-list, the severity
//!   threshold, the baseline.
//! - [`baseline`]: the baseline file format.
//! - [`detect`]: the detection session: one engine run over stdin, files
//!   and directory trees, or listed objects (S3), with the input's own
//!   diagnostics counted.
//!
//! The session prints nothing: progress goes to an [`Observer`] (the CLI
//! draws it on a terminal), diagnostics come back in the [`ScanOutput`],
//! and errors that stop a run are `anyhow` errors naming what failed.

pub mod baseline;
pub mod detect;
pub mod sink;
pub mod source;
pub mod steps;

pub use sink::Progress;
pub use source::{Options, Plan, Source, Targets, plan};
pub use steps::Step;

use keytrail_input::FsOptions;
use keytrail_report::{NotScanned, RuleMeta, Summary};
use keytrail_rules::Rule;
use keytrail_scan::Scanner;
use keytrail_types::{Diagnostic, Finding};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// What a scan produced: findings after the post-scan steps, the summary,
/// and the diagnostics in a stable order.
pub struct ScanOutput {
    /// De-duplicated findings, in the aggregator's deterministic order,
    /// after the post-scan steps.
    pub findings: Vec<Finding>,
    /// Metadata of every rule the scan ran.
    pub rules: Vec<RuleMeta>,
    /// Counters, filled in full (findings, locations, elapsed time included).
    pub summary: Summary,
    /// Error diagnostics (unreadable inputs), sorted.
    pub errors: Vec<Diagnostic>,
    /// Skip diagnostics, sorted; kept only when [`Options::keep_skips`].
    pub skips: Vec<Diagnostic>,
    /// Archives (and image layers) cut by a limit, sorted: always kept,
    /// always shown, part of the report.
    pub incomplete: Vec<Diagnostic>,
    /// Targets named by the user (paths, git URLs, images, logs) that could
    /// not be read at all: the run fails whatever else happened.
    pub failed_targets: Vec<String>,
    /// The git repositories scanned, for SARIF's version-control provenance.
    pub repositories: Vec<keytrail_report::RepositoryInfo>,
    /// With [`source::GitSelection::since_refs`]: each git repository's ref tips
    /// and whether only new commits were read.
    pub git_refs: Vec<GitRefs>,
    /// Each container image named: the digest it resolved to, and whether
    /// it was left unread as unchanged ([`Options::image_skip_digest`]).
    pub image_digests: Vec<ImageDigest>,
}

/// What an image reference resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageDigest {
    /// The reference as named.
    pub reference: String,
    /// Its digest (see `keytrail_input::image::ImageStats::digest`), when
    /// it could be resolved.
    pub digest: Option<String>,
    /// It still had [`Options::image_skip_digest`]: nothing of it was read
    /// (the run proves nothing fixed).
    pub unchanged: bool,
}

/// A recurring scan of one git repository ([`source::GitSelection::since_refs`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitRefs {
    /// The repository as findings name it (the URL without credentials,
    /// or the path).
    pub repository: String,
    /// Every ref's tip (full ref name → commit id), for the next scan.
    pub refs: std::collections::BTreeMap<String, String>,
    /// `None`: only the commits new since the earlier tips were read (the
    /// run is partial: it proves nothing fixed). `Some(why)`: the whole
    /// repository (no earlier scan, a ref rewritten).
    pub full_because: Option<String>,
    /// Commits read.
    pub commits: u64,
}

/// Told about the progress of a run. Every method has an empty default.
pub trait Observer {
    /// The sources start reading; `progress` is updated from worker
    /// threads until [`Observer::scan_finished`] (read it from another
    /// thread to draw a progress line).
    fn scan_started(&mut self, progress: Arc<Progress>) {
        let _ = progress;
    }
    /// Every source has been read; the post-scan steps follow.
    fn scan_finished(&mut self) {}
}

/// An observer that ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Observer for NoProgress {}

/// A compiled rule set, ready to run scans.
pub struct Session {
    scanner: Scanner,
    rules: Vec<RuleMeta>,
}

impl Session {
    /// Compile `rules`. On a compile error, every diagnostic of the
    /// compilation comes back (the errors among them say what is wrong).
    pub fn new(rules: Vec<Rule>) -> Result<Session, Vec<Diagnostic>> {
        let (scanner, diags) = Scanner::new(rules);
        if diags.iter().any(|d| d.is_error) {
            return Err(diags);
        }
        let rules = scanner.rules().iter().map(|c| rule_meta(&c.rule)).collect();
        Ok(Session { scanner, rules })
    }

    /// The compiled scanner.
    pub fn scanner(&self) -> &Scanner {
        &self.scanner
    }

    /// Read every source in order into one aggregator, run `steps` in
    /// order over the findings, and return them with the summary and the
    /// sorted diagnostics. Only a source that cannot start at all (a
    /// temporary directory for a clone cannot be made) stops the run; a
    /// target that cannot be read is reported in
    /// [`ScanOutput::failed_targets`].
    pub fn run(
        &self,
        plan: &Plan,
        options: &Options,
        steps: &[Step<'_>],
        observer: &mut dyn Observer,
    ) -> anyhow::Result<ScanOutput> {
        let progress = Arc::new(Progress::default());
        let sink = sink::ScanSink::new(
            &self.scanner,
            progress.clone(),
            options.keep_skips,
            &plan.roots,
        );
        observer.scan_started(progress.clone());
        let mut cx = source::Context::new(&sink, options);
        for s in &plan.sources {
            s.scan(&mut cx)?;
        }
        observer.scan_finished();
        let source::Context {
            repositories,
            git_refs,
            image_digests,
            images,
            ..
        } = cx;

        let parts = sink.into_parts();
        let mut findings = parts.findings;
        let counts = steps::run(steps, images.as_ref(), &mut findings)?;
        let mut errors = parts.errors;
        let mut skips = parts.skips;
        let mut incomplete = parts.incomplete;
        let mut failed_targets = parts.failed_targets;
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
        not_scanned
            .sort_by(|a, b| (&a.path, a.line, &a.message).cmp(&(&b.path, b.line, &b.message)));
        let summary = Summary {
            files_scanned: progress.files.load(Ordering::Relaxed),
            bytes_scanned: progress.bytes.load(Ordering::Relaxed),
            skipped: parts.skipped,
            unreadable: errors.len() as u64,
            allowed: counts.allowed,
            incomplete: incomplete.len() as u64,
            not_scanned,
            suppressed_by_baseline: counts.suppressed_by_baseline,
            findings: findings.len() as u64,
            locations: findings.iter().map(|f| f.locations.len() as u64).sum(),
            elapsed_ms: options.started.elapsed().as_millis() as u64,
        };
        Ok(ScanOutput {
            findings,
            rules: self.rules.clone(),
            summary,
            errors,
            skips,
            incomplete,
            failed_targets,
            repositories,
            git_refs,
            image_digests,
        })
    }
}

/// Report metadata of a rule.
pub fn rule_meta(r: &Rule) -> RuleMeta {
    RuleMeta {
        id: r.id().to_string(),
        name: r.syntax.name.clone(),
        provider: r.provider.clone(),
        description: r.syntax.description.trim().to_string(),
        remediation: r.syntax.remediation.trim().to_string(),
        references: r.syntax.references.clone(),
        categories: r.syntax.categories.clone(),
        confidence: Some(r.syntax.confidence),
        severity: Some(r.severity),
    }
}

/// A bad exclude glob is a usage error, not a warning after a long scan
/// that silently excluded nothing. The walker compiles the globs with
/// `globset` too, so a pattern that parses here parses there.
pub fn check_excludes(opts: &FsOptions) -> anyhow::Result<()> {
    for pattern in &opts.excludes {
        let trimmed = pattern.trim_start_matches('/').trim_end_matches('/');
        if let Err(e) = globset::Glob::new(trimmed) {
            anyhow::bail!("invalid --exclude `{pattern}`: {e}");
        }
    }
    Ok(())
}

//! What a run reads, behind one trait: [`Source`]. [`plan`] decides which
//! source reads which target: a path that is a git repository goes to the
//! git source (history, gates, the index) and its changed work-tree files
//! to the file walker; other paths (and `-`, standard input) to the file
//! walker, which opens archives; git URLs are cloned into a temporary
//! directory and scanned as repositories; CI logs and container images
//! have their own sources. Every source pushes into the same
//! [`ScanSink`], so every finding goes through one aggregator.

mod git;
mod image;
mod log;

use crate::sink::ScanSink;
use keytrail_input::{BlobSink, FsOptions};
use keytrail_report::RepositoryInfo;
use keytrail_types::Secret;
use std::path::PathBuf;
use std::time::Instant;

/// The targets a user named.
#[derive(Debug, Clone, Default)]
pub struct Targets {
    /// Files, directories, archives, git repositories; `-` is standard input.
    pub paths: Vec<PathBuf>,
    /// Git repositories to clone and scan.
    pub git_urls: Vec<String>,
    /// CI logs (`-` is standard input).
    pub logs: Vec<PathBuf>,
    /// Container image references (registry, `docker-archive:`, `oci:`, `oci-archive:`).
    pub images: Vec<String>,
}

impl Targets {
    /// A path that does not exist is a usage error (a typo), not a
    /// degraded run: check before loading anything.
    pub fn check_paths_exist(&self) -> anyhow::Result<()> {
        for p in &self.paths {
            if p.as_os_str() != "-" && std::fs::symlink_metadata(p).is_err() {
                anyhow::bail!("path `{}` does not exist", p.display());
            }
        }
        Ok(())
    }
}

/// Which part of a git repository to read.
#[derive(Debug, Clone, Default)]
pub struct GitSelection {
    /// Treat repositories as plain directories (no history).
    pub no_history: bool,
    /// Only blobs introduced by commits after this revision.
    pub since_commit: Option<String>,
    /// Only blobs introduced by the commits of `BASE..HEAD`.
    pub range: Option<String>,
    /// Only what is staged in the index.
    pub staged: bool,
    /// A recurring scan: the ref tips an earlier scan saw (full ref name →
    /// commit id; empty: none yet). Only commits new since are read, unless
    /// a ref was rewritten; each repository's tips and what was read are
    /// in [`crate::ScanOutput::git_refs`]. Not a gate: no repository is
    /// assumed, and it applies to every repository of the run.
    pub since_refs: Option<std::collections::BTreeMap<String, String>>,
}

impl GitSelection {
    /// Whether a gate (since-commit, range, staged) is asked for.
    fn gated(&self) -> bool {
        self.staged || self.since_commit.is_some() || self.range.is_some()
    }
}

/// How to reach container registries.
#[derive(Debug, Clone, Default)]
pub struct RegistryAccess {
    /// Platforms to scan in multi-platform images; empty: all.
    pub platforms: Vec<String>,
    /// Registry user name.
    pub username: Option<String>,
    /// Registry password.
    pub password: Option<Secret<String>>,
    /// Registry hosts spoken to over plain HTTP.
    pub plain_http: Vec<String>,
}

/// How a run reads its sources.
#[derive(Debug, Clone)]
pub struct Options {
    /// File walking and content handling (excludes, archives and their
    /// limits, threads, memory), for every source that reads files.
    pub fs: FsOptions,
    /// Git gates.
    pub git: GitSelection,
    /// Largest git blob scanned (default: the git source's).
    pub git_max_blob_bytes: Option<u64>,
    /// Registry access for images.
    pub registry: RegistryAccess,
    /// Largest image layer read (default: the image source's).
    pub image_max_layer_bytes: Option<u64>,
    /// A recurring scan of an image: the digest its last scan saw. An image
    /// that still has it is not read (see [`crate::ScanOutput::image_digests`]).
    pub image_skip_digest: Option<String>,
    /// Keep skip diagnostics (verbose output); they are always counted.
    pub keep_skips: bool,
    /// When the run started, for the elapsed time of the summary (a
    /// front-end may start counting before loading rules).
    pub started: Instant,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            fs: FsOptions::default(),
            git: GitSelection::default(),
            git_max_blob_bytes: None,
            registry: RegistryAccess::default(),
            image_max_layer_bytes: None,
            image_skip_digest: None,
            keep_skips: false,
            started: Instant::now(),
        }
    }
}

/// What a source reads into and leaves for the sources after it and the
/// post-scan steps.
pub struct Context<'a> {
    /// The sink of the run.
    pub sink: &'a ScanSink<'a>,
    /// The run's options.
    pub options: &'a Options,
    /// Files a source found for the file walker (the changed work-tree
    /// files of a git repository), read by the [`Files`] source.
    pub pending_files: Vec<PathBuf>,
    /// The git repositories scanned, for SARIF's provenance.
    pub repositories: Vec<RepositoryInfo>,
    /// The recurring scans of git repositories ([`GitSelection::since_refs`]).
    pub git_refs: Vec<crate::GitRefs>,
    /// What each image reference resolved to.
    pub image_digests: Vec<crate::ImageDigest>,
    /// What the image sources saw, for the image step.
    pub images: Option<image::ImageState>,
}

impl<'a> Context<'a> {
    pub(crate) fn new(sink: &'a ScanSink<'a>, options: &'a Options) -> Context<'a> {
        Context {
            sink,
            options,
            pending_files: Vec::new(),
            repositories: Vec::new(),
            git_refs: Vec::new(),
            image_digests: Vec::new(),
            images: None,
        }
    }
}

/// Something a run reads: it pushes blobs, findings and diagnostics into
/// the context's sink, and tells the sink when a target the user named
/// could not be read at all. An `Err` stops the whole run (only for a
/// failure of the machine, not of the input).
pub trait Source: Send + Sync {
    /// Read everything.
    fn scan(&self, cx: &mut Context<'_>) -> anyhow::Result<()>;
}

/// Files, directories and archives (and standard input as `-`), walked in
/// parallel, plus the files earlier sources left in
/// [`Context::pending_files`].
#[derive(Debug, Clone)]
pub struct Files {
    /// Paths as named.
    pub paths: Vec<PathBuf>,
}

impl Source for Files {
    fn scan(&self, cx: &mut Context<'_>) -> anyhow::Result<()> {
        let mut files = self.paths.clone();
        files.append(&mut cx.pending_files);
        if !files.is_empty() {
            keytrail_input::scan_paths(&files, &cx.options.fs, cx.sink);
        }
        Ok(())
    }
}

pub use git::{GitRepository, GitUrl};
pub use image::{ImageState, Images};
pub use log::{Log, scan_log};

/// The sources of a run, in reading order, and the paths whose own
/// errors fail the run.
pub struct Plan {
    /// Sources, read in this order.
    pub sources: Vec<Box<dyn Source>>,
    /// The paths the user named.
    pub roots: Vec<PathBuf>,
}

/// Decide which source reads which target: git repositories first (their
/// changed work-tree files go to the file walker), then files, then logs,
/// then images. A git gate (since-commit, range, staged) needs
/// repositories: without any path it reads the current directory's.
pub fn plan(targets: &Targets, options: &Options) -> anyhow::Result<Plan> {
    let gated = options.git.gated();
    let mut files: Vec<PathBuf> = Vec::new();
    let mut repos: Vec<PathBuf> = Vec::new();
    for p in &targets.paths {
        if git::is_repository(p, &options.git) {
            repos.push(p.clone());
        } else {
            if gated {
                anyhow::bail!(
                    "`{}` is not a git repository (--staged, --since-commit and --range need one)",
                    p.display()
                );
            }
            files.push(p.clone());
        }
    }
    if gated && repos.is_empty() && targets.git_urls.is_empty() {
        repos.push(PathBuf::from("."));
    }
    let mut sources: Vec<Box<dyn Source>> = Vec::new();
    git::plan(targets, options, repos, &mut sources, &mut files)?;
    sources.push(Box::new(Files { paths: files }));
    for log in &targets.logs {
        sources.push(Box::new(Log { path: log.clone() }));
    }
    image::plan(targets, &mut sources)?;
    Ok(Plan {
        sources,
        roots: targets.paths.clone(),
    })
}

/// Report a target that could not be read at all, with its diagnostic.
fn failed(sink: &ScanSink<'_>, diag: keytrail_types::Diagnostic, name: &str) {
    sink.diagnostic(diag);
    sink.target_failed(name);
}

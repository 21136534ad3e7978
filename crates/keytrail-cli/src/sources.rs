//! Which sources a scan reads, beyond plain files: git repositories (whole
//! history, gates, the index), cloned URLs, container images and CI logs.
//! Each source pushes blobs into the same sink as the file walker, so every
//! finding goes through one aggregator.

use crate::args::InputArgs;
use crate::config::Limits;
use crate::run::ScanSink;
use keytrail_input::{BlobSink, FsOptions};
use keytrail_scan::Scanner;
use keytrail_types::{Diagnostic, Finding};
use std::path::PathBuf;

/// State kept from the image scans for the findings pass.
#[cfg(feature = "image")]
pub(crate) type ImageState = keytrail_input::image::ContentSeen;
/// Without the `image` feature there is no image state.
#[cfg(not(feature = "image"))]
pub(crate) type ImageState = ();

/// Scan every source named by `input` into `sink`. Returns the image state
/// when images were scanned.
pub(crate) fn scan_all(
    input: &InputArgs,
    opts: &FsOptions,
    limits: &Limits,
    scanner: &Scanner,
    sink: &ScanSink<'_>,
    repositories: &mut Vec<keytrail_report::RepositoryInfo>,
) -> anyhow::Result<Option<ImageState>> {
    let mut files: Vec<PathBuf> = Vec::new();
    let git_gate = input.staged || input.since_commit.is_some() || input.range.is_some();
    let mut repos: Vec<PathBuf> = Vec::new();
    for p in &input.paths {
        if is_repo(p, input) {
            repos.push(p.clone());
        } else {
            if git_gate {
                anyhow::bail!(
                    "`{}` is not a git repository (--staged, --since-commit and --range need one)",
                    p.display()
                );
            }
            files.push(p.clone());
        }
    }
    if git_gate && repos.is_empty() && input.git_urls.is_empty() {
        repos.push(PathBuf::from("."));
    }
    scan_git(input, opts, limits, &repos, sink, &mut files, repositories)?;
    if !files.is_empty() {
        keytrail_input::scan_paths(&files, opts, sink);
    }
    for log in &input.logs {
        scan_log(scanner, log, sink);
    }
    scan_images(input, opts, limits, sink)
}

fn is_repo(p: &std::path::Path, input: &InputArgs) -> bool {
    #[cfg(feature = "git")]
    {
        !input.no_history && p.as_os_str() != "-" && keytrail_input::git::is_repository(p)
    }
    #[cfg(not(feature = "git"))]
    {
        let _ = (p, input);
        false
    }
}

#[cfg(feature = "git")]
fn scan_git(
    input: &InputArgs,
    opts: &FsOptions,
    limits: &Limits,
    repos: &[PathBuf],
    sink: &ScanSink<'_>,
    files: &mut Vec<PathBuf>,
    repositories: &mut Vec<keytrail_report::RepositoryInfo>,
) -> anyhow::Result<()> {
    use keytrail_input::git::{GitOptions, clone_url, scan_repository};
    let gopts = GitOptions {
        since_commit: input.since_commit.clone(),
        range: input.range.clone(),
        staged: input.staged,
        threads: opts.threads,
        content: opts.clone(),
        max_blob_bytes: limits
            .git_max_blob_bytes
            .unwrap_or(GitOptions::default().max_blob_bytes),
        ..GitOptions::default()
    };
    for repo in repos {
        let stats = scan_repository(repo, &gopts, sink);
        if stats.errors > 0 && stats.commits == 0 && stats.blobs == 0 {
            sink.target_failed(&repo.to_string_lossy());
        }
        files.extend(stats.worktree_paths);
        repositories.push(repository_info(repo, repo.display().to_string(), None));
    }
    let mut clones = Vec::new();
    for url in &input.git_urls {
        let dir = tempfile::Builder::new()
            .prefix("keytrail-clone-")
            .tempdir()?;
        match clone_url(url, dir.path()) {
            Ok(path) => {
                // Findings name the URL, not the temporary clone.
                let named = GitOptions {
                    name: Some(keytrail_input::git::display_url(url)),
                    ..gopts.clone()
                };
                let stats = scan_repository(&path, &named, sink);
                // A fresh clone has no work-tree changes worth scanning.
                if stats.errors > 0 && stats.commits == 0 && stats.blobs == 0 {
                    sink.target_failed(&keytrail_input::git::display_url(url));
                }
                repositories.push(repository_info(
                    &path,
                    keytrail_input::git::display_url(url),
                    Some(url),
                ));
            }
            Err(d) => {
                sink.diagnostic(d);
                sink.target_failed(&keytrail_input::git::display_url(url));
            }
        }
        clones.push(dir);
    }
    Ok(())
}

/// What SARIF's `versionControlProvenance` says about a scanned
/// repository: its URI (the `--git-url`, else its `origin` remote, else its
/// directory as a `file://` URI; never with credentials), HEAD's commit and branch.
#[cfg(feature = "git")]
fn repository_info(
    path: &std::path::Path,
    name: String,
    url: Option<&str>,
) -> keytrail_report::RepositoryInfo {
    use keytrail_input::git::{file_uri, remote_uri, repository_head};
    let head = repository_head(path);
    let uri = url
        .and_then(remote_uri)
        .or_else(|| head.origin_url.as_deref().and_then(remote_uri))
        .or_else(|| {
            std::fs::canonicalize(path)
                .ok()
                .and_then(|p| p.to_str().map(file_uri))
        });
    keytrail_report::RepositoryInfo {
        name,
        uri,
        revision: head.commit,
        branch: head.branch,
    }
}

#[cfg(not(feature = "git"))]
fn scan_git(
    input: &InputArgs,
    _opts: &FsOptions,
    _limits: &Limits,
    repos: &[PathBuf],
    _sink: &ScanSink<'_>,
    files: &mut Vec<PathBuf>,
    _repositories: &mut Vec<keytrail_report::RepositoryInfo>,
) -> anyhow::Result<()> {
    if !input.git_urls.is_empty() || input.staged {
        anyhow::bail!("this keytrail was built without the `git` feature");
    }
    files.extend(repos.iter().cloned());
    Ok(())
}

fn scan_log(scanner: &Scanner, log: &PathBuf, sink: &ScanSink<'_>) {
    let display = log.display().to_string();
    // UTF-16 logs (Windows runners, PowerShell transcripts) are read as
    // their text, as `scan FILE` reads them.
    let result = if log.as_os_str() == "-" {
        keytrail_input::utf8_text(std::io::stdin().lock())
            .and_then(|r| keytrail_ci::log::scan_log(scanner, "-", r))
    } else {
        std::fs::File::open(log)
            .and_then(|f| keytrail_input::utf8_text(std::io::BufReader::new(f)))
            .and_then(|r| keytrail_ci::log::scan_log(scanner, &display, r))
    };
    match result {
        Ok((found, bytes)) => sink.record(found, bytes),
        Err(e) => {
            sink.diagnostic(Diagnostic::error(
                "unreadable",
                display.clone(),
                e.to_string(),
            ));
            sink.target_failed(&display);
        }
    }
}

#[cfg(feature = "image")]
fn scan_images(
    input: &InputArgs,
    opts: &FsOptions,
    limits: &Limits,
    sink: &ScanSink<'_>,
) -> anyhow::Result<Option<ImageState>> {
    use keytrail_input::image::{ContentSeen, ImageOptions, scan_image};
    if input.images.is_empty() {
        return Ok(None);
    }
    let iopts = ImageOptions {
        platforms: input.platforms.clone(),
        username: input.registry_user.clone(),
        password: input
            .registry_password
            .clone()
            .map(keytrail_types::Secret::new),
        plain_http: input.plain_http.clone(),
        threads: opts.threads,
        content: opts.clone(),
        max_layer_bytes: limits
            .image_max_layer_bytes
            .unwrap_or(ImageOptions::default().max_layer_bytes),
        ..ImageOptions::default()
    };
    let seen = ContentSeen::new();
    for reference in &input.images {
        let stats = scan_image(reference, &iopts, sink, &seen);
        // A malformed reference, an unreachable registry, a missing
        // archive, or no manifest to scan: nothing of the image was read.
        if stats.images.is_empty() {
            sink.target_failed(reference);
        }
    }
    Ok(Some(seen))
}

#[cfg(not(feature = "image"))]
fn scan_images(
    input: &InputArgs,
    _opts: &FsOptions,
    _limits: &Limits,
    _sink: &ScanSink<'_>,
) -> anyhow::Result<Option<ImageState>> {
    if !input.images.is_empty() {
        anyhow::bail!("this keytrail was built without the `image` feature");
    }
    Ok(None)
}

/// After the scan: add the image locations that were not scanned again
/// (identical content in other layers, tags and images), give each image
/// finding its structured remediation (and mask secrets in image history
/// lines), and report credentials shared across
/// environment-specific configuration.
pub(crate) fn finish_findings(images: Option<&ImageState>, findings: &mut Vec<Finding>) {
    #[cfg(feature = "image")]
    if let Some(seen) = images {
        seen.expand_findings(findings);
        keytrail_input::image::finish_findings(findings);
    }
    #[cfg(not(feature = "image"))]
    let _ = images;
    let shared = keytrail_ci::envsep::shared_across_environments(findings);
    findings.extend(shared);
}

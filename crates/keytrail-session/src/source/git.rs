//! Git sources: a local repository (every blob of its object database
//! once, or the blobs a gate selects) and a URL cloned into a temporary
//! directory. Without the `git` feature, repositories are read as plain
//! directories and URLs and `--staged` are refused.

use super::{Context, GitSelection, Options, Source, Targets};
use std::path::{Path, PathBuf};

/// Whether `p` is read as a git repository.
pub(super) fn is_repository(p: &Path, git: &GitSelection) -> bool {
    #[cfg(feature = "git")]
    {
        !git.no_history && p.as_os_str() != "-" && keytrail_input::git::is_repository(p)
    }
    #[cfg(not(feature = "git"))]
    {
        let _ = (p, git);
        false
    }
}

/// A local git repository.
#[derive(Debug, Clone)]
pub struct GitRepository {
    /// The repository (work tree, bare repository or `.git` directory).
    pub path: PathBuf,
}

/// A repository cloned from a URL into a temporary directory.
#[derive(Debug, Clone)]
pub struct GitUrl {
    /// The URL as named (findings show it without credentials).
    pub url: String,
}

#[cfg(feature = "git")]
pub(super) fn plan(
    targets: &Targets,
    _options: &Options,
    repos: Vec<PathBuf>,
    sources: &mut Vec<Box<dyn Source>>,
    _files: &mut Vec<PathBuf>,
) -> anyhow::Result<()> {
    for path in repos {
        sources.push(Box::new(GitRepository { path }));
    }
    for url in &targets.git_urls {
        sources.push(Box::new(GitUrl { url: url.clone() }));
    }
    Ok(())
}

#[cfg(not(feature = "git"))]
pub(super) fn plan(
    targets: &Targets,
    options: &Options,
    repos: Vec<PathBuf>,
    _sources: &mut Vec<Box<dyn Source>>,
    files: &mut Vec<PathBuf>,
) -> anyhow::Result<()> {
    if !targets.git_urls.is_empty() || options.git.staged {
        anyhow::bail!("this keytrail was built without the `git` feature");
    }
    files.extend(repos);
    Ok(())
}

#[cfg(feature = "git")]
fn git_options(options: &Options) -> keytrail_input::git::GitOptions {
    use keytrail_input::git::GitOptions;
    GitOptions {
        since_commit: options.git.since_commit.clone(),
        range: options.git.range.clone(),
        staged: options.git.staged,
        since_refs: options.git.since_refs.clone(),
        threads: options.fs.threads,
        content: options.fs.clone(),
        max_blob_bytes: options
            .git_max_blob_bytes
            .unwrap_or(GitOptions::default().max_blob_bytes),
        ..GitOptions::default()
    }
}

#[cfg(feature = "git")]
impl Source for GitRepository {
    fn scan(&self, cx: &mut Context<'_>) -> anyhow::Result<()> {
        use keytrail_input::git::scan_repository;
        let repo = &self.path;
        let mut stats = scan_repository(repo, &git_options(cx.options), cx.sink);
        if stats.errors > 0 && stats.commits == 0 && stats.blobs == 0 {
            cx.sink.target_failed(&repo.to_string_lossy());
        }
        cx.pending_files
            .extend(std::mem::take(&mut stats.worktree_paths));
        push_refs(cx, repo.display().to_string(), &mut stats);
        cx.repositories
            .push(repository_info(repo, repo.display().to_string(), None));
        Ok(())
    }
}

#[cfg(feature = "git")]
impl Source for GitUrl {
    fn scan(&self, cx: &mut Context<'_>) -> anyhow::Result<()> {
        use keytrail_input::git::{GitOptions, clone_url, display_url, scan_repository};
        let url = &self.url;
        let dir = tempfile::Builder::new()
            .prefix("keytrail-clone-")
            .tempdir()?;
        match clone_url(url, dir.path()) {
            Ok(path) => {
                // Findings name the URL, not the temporary clone.
                let named = GitOptions {
                    name: Some(display_url(url)),
                    ..git_options(cx.options)
                };
                let mut stats = scan_repository(&path, &named, cx.sink);
                // A fresh clone has no work-tree changes worth scanning.
                if stats.errors > 0 && stats.commits == 0 && stats.blobs == 0 {
                    cx.sink.target_failed(&display_url(url));
                }
                push_refs(cx, display_url(url), &mut stats);
                cx.repositories
                    .push(repository_info(&path, display_url(url), Some(url)));
            }
            Err(d) => super::failed(cx.sink, d, &display_url(url)),
        }
        Ok(())
    }
}

/// A recurring scan's tips and what it read, for the front-end to keep.
#[cfg(feature = "git")]
fn push_refs(cx: &mut Context<'_>, repository: String, stats: &mut keytrail_input::git::GitStats) {
    use keytrail_input::git::SinceRefs;
    let Some(since) = stats.since_refs.take() else {
        return;
    };
    cx.git_refs.push(crate::GitRefs {
        repository,
        refs: std::mem::take(&mut stats.refs),
        full_because: match since {
            SinceRefs::New => None,
            SinceRefs::Full(why) => Some(why),
        },
        commits: stats.commits,
    });
}

#[cfg(not(feature = "git"))]
impl Source for GitRepository {
    fn scan(&self, _cx: &mut Context<'_>) -> anyhow::Result<()> {
        anyhow::bail!("this keytrail was built without the `git` feature")
    }
}

#[cfg(not(feature = "git"))]
impl Source for GitUrl {
    fn scan(&self, _cx: &mut Context<'_>) -> anyhow::Result<()> {
        anyhow::bail!("this keytrail was built without the `git` feature")
    }
}

/// What SARIF's `versionControlProvenance` says about a scanned
/// repository: its URI (the URL it was cloned from, else its `origin`
/// remote, else its directory as a `file://` URI; never with credentials),
/// HEAD's commit and branch.
#[cfg(feature = "git")]
fn repository_info(
    path: &Path,
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

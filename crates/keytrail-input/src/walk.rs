//! The parallel directory walk: roots → entries → [`content::scan_file`],
//! with `--exclude` globs, `.git` pruning, symlink policy and special-file
//! skipping. Ignore files (`.gitignore`, `.ignore`, git excludes) and the
//! hidden-file rule are deliberately off: a git-ignored `.env` is the first
//! place a credential leaks.

use std::path::{Component, Path, PathBuf};

use globset::{Candidate, GlobBuilder, GlobSet, GlobSetBuilder};
use ignore::{DirEntry, WalkBuilder, WalkState};
use keytrail_types::{Diagnostic, Origin};

use crate::content::{self, Ctx, io_diagnostic, is_symlink_loop};
use crate::{BlobSink, FsOptions, kinds};

/// Compiled `--exclude` patterns, with gitignore's anchoring rule: a glob
/// with a `/` in it (`docs/**`, `test/*.pem`, `**/fixtures/*`) matches the
/// root-relative path; a glob without one (`vendor`, `*.min.js`) matches the
/// name at any depth.
pub(crate) struct Excludes {
    anchored: GlobSet,
    names: GlobSet,
}

impl Excludes {
    /// Compile `globs`; a bad glob becomes an `invalid_exclude` diagnostic
    /// and is left out.
    pub(crate) fn new(globs: &[String], sink: &dyn BlobSink) -> Excludes {
        let mut anchored = GlobSetBuilder::new();
        let mut names = GlobSetBuilder::new();
        for raw in globs {
            let glob = raw.trim_end_matches('/');
            let glob = glob.strip_prefix("./").unwrap_or(glob);
            let glob = glob.strip_prefix('/').unwrap_or(glob);
            if glob.is_empty() {
                continue;
            }
            let mut variants = vec![glob];
            // `dir/**` also prunes the directory `dir` itself.
            if let Some(dir) = glob.strip_suffix("/**")
                && !dir.is_empty()
            {
                variants.push(dir);
            }
            let is_anchored = glob.contains('/');
            for v in variants {
                match GlobBuilder::new(v)
                    .literal_separator(is_anchored)
                    .backslash_escape(true)
                    .build()
                {
                    Ok(g) if is_anchored => {
                        anchored.add(g);
                    }
                    Ok(g) => {
                        names.add(g);
                    }
                    Err(e) => {
                        sink.diagnostic(Diagnostic::error(
                            kinds::INVALID_EXCLUDE,
                            raw.as_str(),
                            format!("invalid --exclude glob ignored: {e}"),
                        ));
                        break;
                    }
                }
            }
        }
        let build = |b: GlobSetBuilder| {
            b.build().unwrap_or_else(|e| {
                sink.diagnostic(Diagnostic::error(
                    kinds::INVALID_EXCLUDE,
                    globs.join(" "),
                    format!("--exclude globs ignored: {e}"),
                ));
                GlobSet::empty()
            })
        };
        Excludes {
            anchored: build(anchored),
            names: build(names),
        }
    }

    /// Whether the entry at `path`, `depth` levels below its root, is
    /// excluded. Roots (depth 0) never are: the user named them.
    pub(crate) fn is_excluded(&self, path: &Path, depth: usize) -> bool {
        if depth == 0 || (self.anchored.is_empty() && self.names.is_empty()) {
            return false;
        }
        if !self.names.is_empty()
            && path
                .file_name()
                .is_some_and(|name| self.names.is_match_candidate(&Candidate::new(name)))
        {
            return true;
        }
        !self.anchored.is_empty()
            && self
                .anchored
                .is_match_candidate(&Candidate::new(&relative(path, depth)))
    }
}

/// The last `depth` components of `path`: the path relative to its root.
fn relative(path: &Path, depth: usize) -> PathBuf {
    let comps: Vec<Component<'_>> = path.components().collect();
    comps[comps.len().saturating_sub(depth)..].iter().collect()
}

/// Walk `roots` in parallel and scan every regular file.
pub(crate) fn walk(roots: &[&PathBuf], opts: &FsOptions, sink: &dyn BlobSink) {
    let ctx = Ctx::new(opts, sink);
    let mut existing = Vec::with_capacity(roots.len());
    for root in roots {
        let shown = root.to_string_lossy().into_owned();
        match std::fs::metadata(root) {
            Ok(m) if is_fifo(&m.file_type()) => {
                // `keytrail scan <(cat f)`: a pipe the user named is read
                // as a stream, like stdin. (Devices and sockets are not:
                // `/dev/zero` never ends.)
                match std::fs::File::open(root) {
                    Ok(f) => content::scan_stream(f, &shown, Origin::File, opts, sink),
                    Err(e) => sink.diagnostic(io_diagnostic(&e, shown, "cannot open")),
                }
            }
            Ok(_) => existing.push(root.as_path()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let dangling = std::fs::symlink_metadata(root).is_ok();
                let why = if dangling {
                    "is a broken symbolic link"
                } else {
                    "does not exist"
                };
                sink.diagnostic(Diagnostic::error(
                    kinds::NOT_FOUND,
                    shown,
                    format!("path {why}"),
                ));
            }
            Err(e) => sink.diagnostic(io_diagnostic(&e, shown, "cannot access path")),
        }
    }
    let Some((first, rest)) = existing.split_first() else {
        return;
    };
    let excludes = Excludes::new(&opts.excludes, sink);
    let mut builder = WalkBuilder::new(first);
    for root in rest {
        builder.add(root);
    }
    builder
        .standard_filters(false)
        .follow_links(opts.follow_symlinks)
        .threads(opts.threads);
    builder.build_parallel().run(|| {
        let excludes = &excludes;
        Box::new(move |entry| match entry {
            Ok(dent) => visit(ctx, excludes, &dent),
            Err(err) => {
                report_walk_error(ctx, &err);
                WalkState::Continue
            }
        })
    });
}

fn visit(ctx: Ctx<'_>, excludes: &Excludes, dent: &DirEntry) -> WalkState {
    let path = dent.path();
    let depth = dent.depth();
    let Some(ft) = dent.file_type() else {
        // Only stdin has no file type, and `-` never reaches the walker.
        return WalkState::Continue;
    };
    let display = || path.to_string_lossy().into_owned();
    if ft.is_dir() {
        if depth > 0 && path.file_name().is_some_and(|n| n == ".git") {
            ctx.diag(Diagnostic::skip(
                kinds::GIT_DIR,
                display(),
                "git directory not descended (scan git history separately)",
            ));
            return WalkState::Skip;
        }
        if excludes.is_excluded(path, depth) {
            ctx.diag(Diagnostic::skip(
                kinds::EXCLUDED,
                display(),
                "directory excluded by --exclude",
            ));
            return WalkState::Skip;
        }
        return WalkState::Continue;
    }
    if excludes.is_excluded(path, depth) {
        ctx.diag(Diagnostic::skip(
            kinds::EXCLUDED,
            display(),
            "excluded by --exclude",
        ));
        return WalkState::Continue;
    }
    if ft.is_file() {
        content::scan_file(ctx, path, display());
    } else if ft.is_symlink() {
        // Only reached when not following symlinks.
        ctx.diag(symlink_diagnostic(path, display()));
    } else {
        ctx.diag(Diagnostic::skip(
            kinds::SPECIAL_FILE,
            display(),
            format!("{} skipped (not a regular file)", special_kind(&ft)),
        ));
    }
    WalkState::Continue
}

fn symlink_diagnostic(path: &Path, display: String) -> Diagnostic {
    match std::fs::metadata(path) {
        Ok(_) => Diagnostic::skip(
            kinds::SYMLINK,
            display,
            "symbolic link not followed (enable following symlinks to scan its target)",
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Diagnostic::skip(
            kinds::BROKEN_SYMLINK,
            display,
            "broken symbolic link (target does not exist)",
        ),
        Err(e) if is_symlink_loop(&e) => {
            Diagnostic::skip(kinds::SYMLINK_LOOP, display, "symbolic link loop")
        }
        Err(e) => Diagnostic::skip(
            kinds::SYMLINK,
            display,
            format!("symbolic link not followed (target not accessible: {e})"),
        ),
    }
}

#[cfg(unix)]
fn is_fifo(ft: &std::fs::FileType) -> bool {
    use std::os::unix::fs::FileTypeExt;
    ft.is_fifo()
}

#[cfg(not(unix))]
fn is_fifo(_ft: &std::fs::FileType) -> bool {
    false
}

#[cfg(unix)]
fn special_kind(ft: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_fifo() {
        "FIFO"
    } else if ft.is_socket() {
        "socket"
    } else if ft.is_block_device() {
        "block device"
    } else if ft.is_char_device() {
        "character device"
    } else {
        "special file"
    }
}

#[cfg(not(unix))]
fn special_kind(_ft: &std::fs::FileType) -> &'static str {
    "special file"
}

/// Turn a walker error into a diagnostic, finding the path it concerns.
fn report_walk_error(ctx: Ctx<'_>, err: &ignore::Error) {
    fn inner<'e>(
        err: &'e ignore::Error,
        path: Option<&'e Path>,
    ) -> (&'e ignore::Error, Option<&'e Path>) {
        match err {
            ignore::Error::WithPath { path, err } => inner(err, Some(path)),
            ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
                inner(err, path)
            }
            ignore::Error::Partial(errs) if errs.len() == 1 => inner(&errs[0], path),
            other => (other, path),
        }
    }
    let (err, path) = inner(err, None);
    let shown = path.map_or_else(String::new, |p| p.to_string_lossy().into_owned());
    let diag = match err {
        ignore::Error::Loop { child, ancestor } => Diagnostic::skip(
            kinds::SYMLINK_LOOP,
            child.to_string_lossy(),
            format!(
                "symbolic link loop (points back to {})",
                ancestor.to_string_lossy()
            ),
        ),
        ignore::Error::Io(e) => {
            let is_link = path.is_some_and(|p| {
                std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink())
            });
            if is_link && e.kind() == std::io::ErrorKind::NotFound {
                Diagnostic::skip(
                    kinds::BROKEN_SYMLINK,
                    shown,
                    "broken symbolic link (target does not exist)",
                )
            } else {
                io_diagnostic(e, shown, "cannot access")
            }
        }
        other => Diagnostic::error(kinds::UNREADABLE, shown, other.to_string()),
    };
    ctx.diag(diag);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_takes_the_last_depth_components() {
        assert_eq!(
            relative(Path::new("./a/b/c.txt"), 2),
            PathBuf::from("b/c.txt")
        );
        assert_eq!(relative(Path::new("/x/y"), 1), PathBuf::from("y"));
    }
}

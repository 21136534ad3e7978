//! The git source: every blob of a repository's object database exactly
//! once, with provenance, plus the gates used in CI (`--since-commit`,
//! `--range`, `--staged`) and `--git-url` cloning. Built on gix; the
//! implementation never runs a `git` subprocess (gix itself spawns
//! `git-upload-pack`/`ssh` for `file://` and ssh clone URLs, as git does).
//!
//! How a full scan works ([`scan_repository`]):
//! 1. **Enumerate** every object id in every pack (multi-pack indices and
//!    alternates included) and every loose object, in pack-offset order, and
//!    read each object's header (kind and size) without decoding it
//!    ([`history::enumerate`]). Corrupt objects become diagnostics.
//! 2. **Provenance**: every commit object found (reachable from a ref or
//!    not) is decoded once, and its tree is diffed against the trees of all
//!    its parents at once: a blob at a path is *introduced* by the commit
//!    when no parent has the same blob at that path, and subtrees equal to
//!    the same subtree of any parent are skipped without being read. For a
//!    merge this yields only what the merge itself brought in (conflict
//!    resolutions, evil merges). Each commit is independent, so this runs in
//!    parallel and never grows worse than linear in the number of commits.
//!    The result is a compact, sorted `(blob id, commit, path)` table; blob
//!    contents are never held. A full scan first decodes every tree of the
//!    packs once, by traversing each pack's delta forest of trees, into
//!    tables of interned names and object ids ([`trees`]), so the diffs
//!    compare integers and read no tree twice; gates, loose trees and
//!    histories whose trees exceed [`trees::MAX_TREE_BYTES`] read trees by
//!    random access.
//! 3. **Deliver**: each pack's delta forest of blobs is traversed once, in
//!    parallel ([`packs`]): every base is inflated a single time and its
//!    deltas are applied from memory, and each unique blob is pushed to the sink once,
//!    with every introduction in its [`GitOrigin`]. Blobs no traversal
//!    delivered (loose objects, unreadable packs) are then read by random
//!    access. Blobs larger than [`GitOptions::max_blob_bytes`] are skipped
//!    with a diagnostic (a traversal does not decode them).
//! 4. **Commit messages**: each commit's full message is delivered once as
//!    its own content, at the path [`COMMIT_MESSAGE_PATH`], with the commit
//!    id as both `commit` and `blob` of its [`GitOrigin`] (the commit object
//!    holds the text), its author and date, and no introductions.
//! 5. **Work tree**: files that differ from HEAD, or are untracked, are
//!    returned in [`GitStats::worktree_paths`] for the file source to scan
//!    (their committed versions were already delivered as blobs).
//!
//! `--exclude` globs ([`FsOptions::excludes`], anchored as for files, at
//! the repository root) apply to history paths: an introduction at an
//! excluded path is not recorded, and a blob whose every introduction is
//! excluded is not scanned (an `excluded` skip, counted in
//! [`GitStats::blobs_excluded`]); a blob also introduced at a path not
//! excluded is scanned and shows only those paths. They apply to staged
//! paths and work-tree paths too.
//!
//! Diagnostic kinds produced here are listed in [`kinds`].

mod history;
mod packs;
mod time;
mod trees;
mod worktree;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use gix::ObjectId;
use gix::bstr::ByteSlice;
use gix::objs::FindExt;
use keytrail_types::{Diagnostic, GitBlobState, GitIntroduction, GitOrigin, Origin};

use crate::{BlobSink, FsOptions};

/// Options of a git history scan.
///
/// Construct with `GitOptions { staged: true, ..GitOptions::default() }`:
/// fields may be added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitOptions {
    /// Scan only the blobs introduced by commits after this revision up to
    /// HEAD (`REV..HEAD`): a pull-request gate. Unreachable blobs and the
    /// work tree are not scanned.
    pub since_commit: Option<String>,
    /// Scan only the blobs introduced by the commits of this range
    /// (`BASE..HEAD`, or a single `REV` meaning everything reachable from it).
    pub range: Option<String>,
    /// Scan only the index entries that differ from HEAD (pre-commit hook).
    pub staged: bool,
    /// A recurring scan: the tips of the refs (full ref name → commit id)
    /// an earlier scan saw. Only the commits no earlier tip reaches are
    /// scanned (as a gate scans a range: the blobs they introduce and their
    /// messages), unless a ref was rewritten (its earlier tip is not an
    /// ancestor of its tip now, or is gone) or the map is empty (no earlier
    /// scan): then the whole repository is scanned. Either way the refs'
    /// tips now are in [`GitStats::refs`] and how it went in
    /// [`GitStats::since_refs`]. Ignored by gates.
    pub since_refs: Option<BTreeMap<String, String>>,
    /// Blobs larger than this are skipped with a `git_blob_too_large`
    /// diagnostic, before being decoded. Default 64 MiB.
    pub max_blob_bytes: u64,
    /// Scan the repositories of submodules found in the work tree or in
    /// `.git/modules`. When false, each submodule path is listed once with
    /// a `git_submodule` notice.
    pub follow_submodules: bool,
    /// Worker threads; `0` picks from the number of CPUs.
    pub threads: usize,
    /// How the repository is named in origins (`repository`) and
    /// diagnostics; `None` for the path as given. A scan of a `--git-url`
    /// clone names the URL ([`display_url`]), not the temporary directory.
    pub name: Option<String>,
    /// Report work-tree files that differ from HEAD or are untracked in
    /// [`GitStats::worktree_paths`] (full scans only). Default true.
    pub worktree: bool,
    /// Deliver each scanned commit's message as content (full scans and
    /// gates). Default true.
    pub messages: bool,
    /// How blob contents are handled, as for files: archive opening and
    /// its limits, binary skipping, UTF-16, and `excludes` applied to
    /// history, staged and work-tree paths (`threads` and `follow_symlinks`
    /// are not used here).
    pub content: FsOptions,
}

impl Default for GitOptions {
    fn default() -> Self {
        GitOptions {
            since_commit: None,
            range: None,
            staged: false,
            since_refs: None,
            max_blob_bytes: 64 << 20,
            follow_submodules: false,
            threads: 0,
            name: None,
            worktree: true,
            messages: true,
            content: FsOptions::default(),
        }
    }
}

/// What a git scan did. Every count is of unique objects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GitStats {
    /// Commits examined (all commit objects for a full scan; the commits of
    /// the range for a gate).
    pub commits: u64,
    /// Of those, commits no ref reaches (full scans only).
    pub dangling_commits: u64,
    /// Unique blobs found (in the object database, or introduced by the
    /// range for a gate; index entries for `staged`).
    pub blobs: u64,
    /// Blobs decoded and handed on: text reaches the sink, archives are
    /// opened, binary blobs become `binary` skips (as for files).
    pub blobs_delivered: u64,
    /// Bytes of the blobs decoded and handed on.
    pub bytes_delivered: u64,
    /// Blobs in no commit (delivered with `commit: None`).
    pub unreachable_blobs: u64,
    /// Blobs skipped because they exceed [`GitOptions::max_blob_bytes`].
    pub blobs_too_large: u64,
    /// Blobs not scanned because every path that introduced them matches
    /// an `--exclude` glob.
    pub blobs_excluded: u64,
    /// Commit messages delivered as content.
    pub messages_delivered: u64,
    /// Bytes of those commit messages.
    pub message_bytes: u64,
    /// Submodule paths (gitlink entries) seen.
    pub submodules: u64,
    /// Objects that could not be read or decoded, or are referenced but
    /// missing. Each produced an error diagnostic (up to a cap per kind).
    pub errors: u64,
    /// Whether the repository is a shallow clone (history incomplete).
    pub shallow: bool,
    /// Work-tree files (absolute paths) that differ from HEAD or are
    /// untracked, for the file source to scan. Empty for bare
    /// repositories, gates and `staged`.
    pub worktree_paths: Vec<PathBuf>,
    /// With [`GitOptions::since_refs`]: every ref that points (peeled) at a
    /// commit, full name → commit id, as the scan found them.
    pub refs: BTreeMap<String, String>,
    /// With [`GitOptions::since_refs`]: what was scanned.
    pub since_refs: Option<SinceRefs>,
}

/// What a scan with [`GitOptions::since_refs`] read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinceRefs {
    /// Only the commits new since the earlier tips (maybe none).
    New,
    /// The whole repository, and why (`no earlier scan`, `refs/heads/main
    /// was rewritten: …`).
    Full(String),
}

/// Stable diagnostic kinds produced by the git source.
pub mod kinds {
    /// The path is not a repository or cannot be opened (error).
    pub const GIT_OPEN: &str = "git_open";
    /// An object cannot be read or decoded (error).
    pub const GIT_OBJECT_CORRUPT: &str = "git_object_corrupt";
    /// An object referenced by a tree or commit is missing (error).
    pub const GIT_OBJECT_MISSING: &str = "git_object_missing";
    /// A revision or range given to a gate does not resolve (error).
    pub const GIT_REVISION: &str = "git_revision";
    /// A blob larger than the cap, not scanned (skip).
    pub const GIT_BLOB_TOO_LARGE: &str = "git_blob_too_large";
    /// A submodule (gitlink) not followed (skip).
    pub const GIT_SUBMODULE: &str = "git_submodule";
    /// A shallow clone: history before the shallow boundary is absent (warning, not an error).
    pub const GIT_SHALLOW: &str = "git_shallow";
    /// More diagnostics of one kind than are reported individually (summary).
    pub const GIT_DIAGNOSTICS_CAPPED: &str = "git_diagnostics_capped";
    /// Cloning `--git-url` failed (error).
    pub const GIT_CLONE: &str = "git_clone";
}

/// The path under which a commit message is delivered: not a file in any
/// tree, so `git show COMMIT` (not `COMMIT:PATH`) reproduces it.
pub const COMMIT_MESSAGE_PATH: &str = "<commit message>";

/// Individual diagnostics reported per kind before a summary replaces them.
const MAX_DIAGNOSTICS_PER_KIND: usize = 100;

/// Whether `path` is a git repository: a work tree containing `.git` (a
/// directory or a `gitdir:` file), a bare repository, or a `.git` directory.
pub fn is_repository(path: &Path) -> bool {
    if gix::discover::is_git(path).is_ok() {
        return true;
    }
    let dot_git = path.join(".git");
    if dot_git.is_dir() {
        return gix::discover::is_git(&dot_git).is_ok();
    }
    // Worktrees and submodules have a `.git` file pointing at the git dir.
    dot_git.is_file() && open(path).is_ok()
}

/// Open a repository without reading the user's or system's git config or
/// the environment: a scan must not depend on who runs it.
pub(crate) fn open(path: &Path) -> Result<gix::ThreadSafeRepository, String> {
    let opts = gix::open::Options::isolated().with(gix::sec::Trust::Full);
    gix::ThreadSafeRepository::open_opts(path, opts).map_err(|e| e.to_string())
}

/// Clone `url` (anything gix can fetch: `file://`, a local path, `ssh://`;
/// `http://` and `https://` when built with the `git-https` feature) as a
/// bare repository into `into`, which must not exist or be empty, and
/// return the repository path. All refs are fetched, so every branch and
/// tag is scanned.
///
/// The error diagnostic names the URL (user info masked) in its subject and
/// its message, with gix's reason (connection refused, not found, TLS...).
pub fn clone_url(url: &str, into: &Path) -> Result<PathBuf, Diagnostic> {
    let shown = display_url(url);
    // User info (`user:token`) never reaches a diagnostic, even inside a
    // transport error that quotes the URL.
    let user_info = match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme + 3 => &url[scheme + 3..at],
        _ => "",
    };
    let fail = |e: String| {
        let e = if user_info.is_empty() {
            e
        } else {
            e.replace(user_info, "***")
        };
        Diagnostic::error(
            kinds::GIT_CLONE,
            &shown,
            format!("cannot clone {shown}: {e}"),
        )
    };
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        #[cfg(feature = "git-https")]
        {
            // reqwest is built without a crypto provider: use ring. An error
            // means a provider is already installed, which is as good.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        #[cfg(not(feature = "git-https"))]
        {
            return Err(fail(
                "this build has no HTTP transport (enable the `git-https` feature)".into(),
            ));
        }
    }
    let interrupt = AtomicBool::new(false);
    let mut prepare = gix::prepare_clone_bare(url, into).map_err(|e| fail(e.to_string()))?;
    // Fetch every branch and tag, not only the default branch.
    prepare = prepare.configure_remote(|remote| {
        remote
            .with_refspecs(
                ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"],
                gix::remote::Direction::Fetch,
            )
            .map_err(gix::Error::from_error)
    });
    let (repo, _outcome) = prepare
        .fetch_only(gix::progress::Discard, &interrupt)
        .map_err(|e| fail(error_chain(&e)))?;
    Ok(repo.path().to_path_buf())
}

/// Scan the repository at `path` (work tree, bare repository or `.git`
/// directory) and push every unique blob, once, to `sink`.
///
/// Never fails: problems become diagnostics on the sink and counts in the
/// returned stats. See the module documentation for what is delivered.
pub fn scan_repository(path: &Path, opts: &GitOptions, sink: &dyn BlobSink) -> GitStats {
    let display = opts
        .name
        .clone()
        .unwrap_or_else(|| path.display().to_string());
    let mut stats = GitStats::default();
    let ts_repo = match open(path) {
        Ok(r) => r,
        Err(e) => {
            sink.diagnostic(Diagnostic::error(
                kinds::GIT_OPEN,
                &display,
                format!("not a readable git repository: {e}"),
            ));
            stats.errors += 1;
            return stats;
        }
    };
    let diags = Diags::new(sink);
    let excludes = (!opts.content.excludes.is_empty())
        .then(|| crate::walk::Excludes::new(&opts.content.excludes, sink));
    let threads = if opts.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        opts.threads
    };
    let ctx = Ctx {
        repo: &ts_repo,
        display: &display,
        opts,
        threads,
        sink,
        diags: &diags,
        excludes: excludes.as_ref(),
    };

    let repo = ts_repo.to_thread_local();
    stats.shallow = repo.is_shallow().unwrap_or(false);
    if stats.shallow {
        sink.diagnostic(Diagnostic::skip(
            kinds::GIT_SHALLOW,
            &display,
            "shallow clone: history before the shallow boundary is absent and was not scanned \
             (fetch the full history with `git fetch --unshallow`)",
        ));
    }

    // A recurring scan: the commits no earlier tip reaches, or everything.
    let mut since: Option<Vec<ObjectId>> = None;
    if let Some(old) = opts.since_refs.as_ref().filter(|_| !opts.staged)
        && gate_range(opts).is_none()
    {
        let tips = history::named_tips(&repo);
        stats.refs = tips
            .iter()
            .map(|(n, id)| (n.clone(), id.to_string()))
            .collect();
        match history::since_refs(&repo, old, &tips) {
            Ok(history::Since::New(commits)) => {
                stats.since_refs = Some(SinceRefs::New);
                since = Some(commits);
            }
            Ok(history::Since::Full(why)) => stats.since_refs = Some(SinceRefs::Full(why)),
            Err(e) => {
                stats.since_refs = Some(SinceRefs::Full(format!(
                    "the earlier tips could not be compared: {e}"
                )))
            }
        }
    }

    if opts.staged {
        worktree::scan_staged(&ctx, &mut stats);
    } else if let Some(commits) = since {
        let index = history::provenance(&ctx, &commits, false, None, &mut stats);
        let blobs = index.introduced_blobs(&ctx, &mut stats);
        deliver(&ctx, &index, &blobs, false, &mut stats);
        if opts.messages {
            index.deliver_messages(&ctx, &mut stats);
        }
    } else if let Some(range) = gate_range(opts) {
        match history::range_commits(&repo, &range) {
            Ok(commits) => {
                let index = history::provenance(&ctx, &commits, false, None, &mut stats);
                let blobs = index.introduced_blobs(&ctx, &mut stats);
                // A gate reads few blobs: random access, no pack traversal.
                deliver(&ctx, &index, &blobs, false, &mut stats);
                if opts.messages {
                    index.deliver_messages(&ctx, &mut stats);
                }
            }
            Err(e) => {
                diags.error(kinds::GIT_REVISION, &display, format!("`{range}`: {e}"));
            }
        }
    } else {
        let objects = history::enumerate(&ctx);
        let index = {
            // Every tree decoded once, ahead of the diffs (dropped after).
            let blob_ids: Vec<ObjectId> = objects.blobs.iter().map(|b| b.id).collect();
            let trees = trees::load(&ctx, &objects.trees, &blob_ids);
            history::provenance(&ctx, &objects.commits, true, trees.as_ref(), &mut stats)
        };
        index.check_missing(&ctx, &objects.blobs, &objects.unreadable);
        deliver(&ctx, &index, &objects.blobs, true, &mut stats);
        if opts.messages {
            index.deliver_messages(&ctx, &mut stats);
        }
        if opts.worktree {
            // A HEAD blob missing from the object database (or unreadable)
            // was not scanned from history: its work-tree copy must be,
            // even though it matches HEAD.
            let readable: std::collections::HashSet<gix::ObjectId> = objects
                .blobs
                .iter()
                .map(|b| b.id)
                .filter(|id| !objects.unreadable.contains(id))
                .collect();
            stats.worktree_paths = worktree::changed_paths(&ctx, &index.head, &readable);
        }
    }
    if opts.follow_submodules {
        let sub_opts = GitOptions {
            name: None,
            ..opts.clone()
        };
        for sub in worktree::submodule_repositories(&repo) {
            let sub_stats = scan_repository(&sub, &sub_opts, sink);
            stats.errors += sub_stats.errors;
            stats.worktree_paths.extend(sub_stats.worktree_paths);
        }
    }
    stats.submodules = diags.submodules.load(Ordering::Relaxed);
    stats.errors += diags.errors.load(Ordering::Relaxed);
    stats
}

/// The range a gate scans, if any: `--range` as given, `--since-commit REV`
/// as `REV..HEAD`.
fn gate_range(opts: &GitOptions) -> Option<String> {
    opts.range
        .clone()
        .or_else(|| opts.since_commit.as_ref().map(|rev| format!("{rev}..HEAD")))
}

/// What every phase of a scan shares.
pub(crate) struct Ctx<'a> {
    pub(crate) repo: &'a gix::ThreadSafeRepository,
    pub(crate) display: &'a str,
    pub(crate) opts: &'a GitOptions,
    pub(crate) threads: usize,
    pub(crate) sink: &'a dyn BlobSink,
    pub(crate) diags: &'a Diags<'a>,
    /// `--exclude` globs, when any.
    pub(crate) excludes: Option<&'a crate::walk::Excludes>,
}

impl Ctx<'_> {
    /// Whether the repository-relative `path` matches an `--exclude` glob
    /// (itself, not through a parent directory: callers check directories
    /// as they descend).
    pub(crate) fn is_excluded(&self, path: &[u8]) -> bool {
        let Some(ex) = self.excludes else {
            return false;
        };
        let depth = path.split(|&b| b == b'/').count();
        match gix::path::from_bstr(path.as_bstr()) {
            Ok(p) => ex.is_excluded(&p, depth),
            // Not representable as a path on this platform: match it lossily.
            Err(_) => ex.is_excluded(Path::new(&*path.to_str_lossy()), depth),
        }
    }

    /// Whether `path` or one of its parent directories is excluded.
    pub(crate) fn is_excluded_or_below(&self, path: &[u8]) -> bool {
        if self.excludes.is_none() {
            return false;
        }
        path.iter()
            .enumerate()
            .filter(|&(_, &b)| b == b'/')
            .any(|(i, _)| self.is_excluded(&path[..i]))
            || self.is_excluded(path)
    }
}

impl Ctx<'_> {
    /// Run `work(thread_repo, item_index)` over `0..n` on the worker
    /// threads, handing out consecutive chunks of `chunk` items so each
    /// thread reads neighbouring objects, and collect each thread's state.
    /// Each thread's repository handle gets an `object_cache`-byte cache of
    /// decoded objects (0 for none).
    pub(crate) fn parallel<S: Send>(
        &self,
        n: usize,
        chunk: usize,
        object_cache: usize,
        init: impl Fn() -> S + Sync,
        work: impl Fn(&gix::Repository, &mut S, usize) + Sync,
    ) -> Vec<S> {
        let next = AtomicUsize::new(0);
        let threads = self.threads.min(n.div_ceil(chunk)).max(1);
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    s.spawn(|| {
                        let mut repo = self.repo.to_thread_local();
                        repo.object_cache_size(object_cache);
                        // A hashed delta-base cache: gix's default (a 64-entry
                        // list) is searched linearly at every step of every
                        // delta chain, and evicts bases too soon for histories
                        // whose objects are long delta chains.
                        let pack_cache = pack_cache_bytes(threads);
                        repo.objects.set_pack_cache(move || {
                            Box::new(gix::odb::pack::cache::lru::MemoryCappedHashmap::new(
                                pack_cache,
                            ))
                        });
                        let mut state = init();
                        loop {
                            let start = next.fetch_add(chunk, Ordering::Relaxed);
                            if start >= n {
                                break;
                            }
                            for i in start..(start + chunk).min(n) {
                                work(&repo, &mut state, i);
                            }
                        }
                        state
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("git worker thread panicked"))
                .collect()
        })
    }
}

/// Delta-base cache per thread: 256 MiB shared out, 16 to 64 MiB each.
/// On a 100k-commit history this halves the CPU time of diffing trees.
fn pack_cache_bytes(threads: usize) -> usize {
    ((256usize << 20) / threads.max(1)).clamp(16 << 20, 64 << 20)
}

/// Diagnostics with a cap per kind, and the error/submodule counters.
pub(crate) struct Diags<'a> {
    sink: &'a dyn BlobSink,
    errors: AtomicU64,
    submodules: AtomicU64,
    per_kind: std::sync::Mutex<std::collections::HashMap<&'static str, usize>>,
}

impl<'a> Diags<'a> {
    fn new(sink: &'a dyn BlobSink) -> Self {
        Diags {
            sink,
            errors: AtomicU64::new(0),
            submodules: AtomicU64::new(0),
            per_kind: Default::default(),
        }
    }

    /// Whether another diagnostic of `kind` may be reported individually;
    /// sends one summary notice when the cap is first exceeded.
    fn admit(&self, kind: &'static str, subject: &str) -> bool {
        let mut map = self.per_kind.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(kind).or_default();
        *n += 1;
        if *n == MAX_DIAGNOSTICS_PER_KIND + 1 {
            self.sink.diagnostic(Diagnostic::skip(
                kinds::GIT_DIAGNOSTICS_CAPPED,
                subject,
                format!(
                    "more than {MAX_DIAGNOSTICS_PER_KIND} `{kind}` diagnostics: further ones are \
                     counted but not listed"
                ),
            ));
        }
        *n <= MAX_DIAGNOSTICS_PER_KIND
    }

    /// An error about an object: counted, reported up to the cap.
    pub(crate) fn error(&self, kind: &'static str, subject: &str, message: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        if self.admit(kind, subject) {
            self.sink
                .diagnostic(Diagnostic::error(kind, subject, message));
        }
    }

    /// A notice (not an error), reported up to the cap.
    pub(crate) fn notice(&self, kind: &'static str, subject: &str, message: String) {
        if kind == kinds::GIT_SUBMODULE {
            self.submodules.fetch_add(1, Ordering::Relaxed);
        }
        if self.admit(kind, subject) {
            self.sink
                .diagnostic(Diagnostic::skip(kind, subject, message));
        }
    }
}

/// One blob to deliver: its id and its size from the object header.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BlobRef {
    pub(crate) id: ObjectId,
    pub(crate) size: u64,
}

/// Counters of [`deliver`], shared by its threads.
#[derive(Default)]
struct Delivery {
    delivered: AtomicU64,
    bytes: AtomicU64,
    too_large: AtomicU64,
    unreachable: AtomicU64,
    excluded: AtomicU64,
}

/// Decode `blobs` and push each, once, with its provenance: with
/// `traverse_packs` (a full scan, which reads nearly every object) first by
/// traversing every pack's delta forest ([`packs::traverse`]); then the rest
/// (loose objects, anything a traversal did not decode, or everything) by
/// random access, in parallel and in the given order.
fn deliver(
    ctx: &Ctx<'_>,
    index: &history::Provenance,
    blobs: &[BlobRef],
    traverse_packs: bool,
    stats: &mut GitStats,
) {
    let counts = Delivery::default();
    let done: Vec<AtomicBool> = blobs.iter().map(|_| AtomicBool::new(false)).collect();
    let traverse = if traverse_packs { blobs } else { &[] };
    packs::traverse(ctx, gix::object::Kind::Blob, traverse, &done, &|i, data| {
        if let Some((path, origin)) = prepare(ctx, index, blobs[i], &counts) {
            counts.delivered.fetch_add(1, Ordering::Relaxed);
            counts.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
            hand_over(ctx, path, origin, data.to_vec());
        }
    });
    let rest: Vec<BlobRef> = blobs
        .iter()
        .zip(&done)
        .filter(|(_, d)| !d.load(Ordering::Relaxed))
        .map(|(b, _)| *b)
        .collect();
    ctx.parallel(
        rest.len(),
        64,
        0,
        || (),
        |repo, (), i| {
            let blob = rest[i];
            let Some((path, origin)) = prepare(ctx, index, blob, &counts) else {
                return;
            };
            let mut buf = Vec::with_capacity(blob.size as usize);
            if let Err(e) = repo.objects.find_blob(&blob.id, &mut buf) {
                ctx.diags.error(
                    kinds::GIT_OBJECT_CORRUPT,
                    ctx.display,
                    format!("blob {} ({path}) cannot be read: {e}", blob.id),
                );
                return;
            }
            counts.delivered.fetch_add(1, Ordering::Relaxed);
            counts.bytes.fetch_add(buf.len() as u64, Ordering::Relaxed);
            hand_over(ctx, path, origin, buf);
        },
    );
    stats.blobs_excluded += counts.excluded.into_inner();
    stats.blobs_delivered += counts.delivered.into_inner();
    stats.bytes_delivered += counts.bytes.into_inner();
    stats.blobs_too_large += counts.too_large.into_inner();
    stats.unreachable_blobs += counts.unreachable.into_inner();
    stats.blobs += blobs.len() as u64;
}

/// The display path and origin of `blob`, or `None` when it is not to be
/// read: every introducing path is excluded, or it is over the size cap
/// (both counted and reported here).
fn prepare(
    ctx: &Ctx<'_>,
    index: &history::Provenance,
    blob: BlobRef,
    counts: &Delivery,
) -> Option<(String, GitOrigin)> {
    let max = ctx.opts.max_blob_bytes;
    let (path, origin) = index.describe(ctx.display, blob.id);
    if origin.state == GitBlobState::Unreachable && index.is_excluded(blob.id) {
        counts.excluded.fetch_add(1, Ordering::Relaxed);
        ctx.diags.notice(
            crate::kinds::EXCLUDED,
            ctx.display,
            format!(
                "blob {} not scanned: every path that introduced it is excluded by \
                 --exclude (first: `{}`)",
                blob.id,
                index.excluded_path(blob.id)
            ),
        );
        return None;
    }
    if origin.state == GitBlobState::Unreachable {
        counts.unreachable.fetch_add(1, Ordering::Relaxed);
    }
    if blob.size > max {
        counts.too_large.fetch_add(1, Ordering::Relaxed);
        ctx.diags.notice(
            kinds::GIT_BLOB_TOO_LARGE,
            &format!("{}:{path}", ctx.display),
            format!(
                "blob {} is {} bytes, over the {max}-byte cap: not scanned",
                blob.id, blob.size
            ),
        );
        return None;
    }
    Some((path, origin))
}

/// Give a decoded blob to the content handling shared with the file
/// source: archives (a committed `.zip` or `.gz`) are opened, binary blobs
/// become `binary` skips, UTF-16 is transcoded, text reaches the sink.
pub(crate) fn hand_over(ctx: &Ctx<'_>, path: String, origin: GitOrigin, bytes: Vec<u8>) {
    let content = crate::content::Ctx::new(&ctx.opts.content, ctx.sink);
    crate::content::handle(
        content,
        path,
        &Origin::Git(origin),
        crate::spill::Data::Mem(bytes),
        crate::content::Level::TOP,
    );
}

/// Lossy UTF-8 of a git path.
pub(crate) fn lossy(path: &[u8]) -> String {
    path.to_str_lossy().into_owned()
}

/// Build an introduction record (used by [`history`]).
pub(crate) fn introduction(commit: &history::CommitInfo, path: &[u8]) -> GitIntroduction {
    GitIntroduction {
        commit: commit.hex.clone(),
        path: lossy(path),
        author: commit.author.clone(),
        author_date: commit.date.clone(),
        summary: commit.summary.clone(),
        reachable: commit.reachable,
    }
}

/// An error and its causes, `outer: inner: root` ("Transport handshake
/// failed" alone does not say that the connection was refused).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// `url` with any user info (`user:token@`) masked, as shown in origins and
/// diagnostics: `https://user:token@host/r.git` → `https://***@host/r.git`.
pub fn display_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

/// What reports say about a repository besides its findings: the commit
/// and branch HEAD points at, and the URL of its `origin` remote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepositoryHead {
    /// The commit HEAD points at (hex); `None` for an empty repository.
    pub commit: Option<String>,
    /// The branch HEAD points at (`main`); `None` when detached.
    pub branch: Option<String>,
    /// The fetch URL of the `origin` remote as configured, if any.
    pub origin_url: Option<String>,
}

/// HEAD and `origin` of the repository at `path`; empty when it cannot be
/// opened (the scan itself reports that).
pub fn repository_head(path: &Path) -> RepositoryHead {
    let Ok(repo) = open(path) else {
        return RepositoryHead::default();
    };
    let repo = repo.to_thread_local();
    let commit = repo.head_id().ok().map(|id| id.to_string());
    let branch = repo
        .head_name()
        .ok()
        .flatten()
        .map(|n| n.shorten().to_string());
    let origin_url = repo.find_remote("origin").ok().and_then(|r| {
        r.url(gix::remote::Direction::Fetch)
            .map(|u| u.to_bstring().to_string())
    });
    RepositoryHead {
        commit,
        branch,
        origin_url,
    }
}

/// An absolute URI for a remote URL as git accepts it, without user info
/// (credentials never reach a report): `https://host/org/r.git` stays,
/// scp-like `git@host:org/r.git` becomes `ssh://host/org/r.git`, and an
/// absolute local path becomes a `file://` URI. `None` for anything else.
pub fn remote_uri(url: &str) -> Option<String> {
    if let Some(scheme_end) = url.find("://") {
        let (scheme, rest) = (&url[..scheme_end], &url[scheme_end + 3..]);
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let host = authority.rsplit('@').next().unwrap_or(authority);
        return Some(format!("{scheme}://{host}{path}"));
    }
    if url.starts_with('/') {
        return Some(file_uri(url));
    }
    // scp-like syntax: [user@]host:path, where host has no slash.
    let (host, path) = url.split_once(':')?;
    if host.is_empty() || host.contains('/') {
        return None;
    }
    let host = host.rsplit('@').next().unwrap_or(host);
    let path = path.trim_start_matches('/');
    Some(format!("ssh://{host}/{path}"))
}

/// A `file://` URI for an absolute path, percent-encoding what a URI
/// path cannot hold.
pub fn file_uri(path: &str) -> String {
    let mut out = String::from("file://");
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod uri_tests {
    use super::*;

    #[test]
    fn remote_uris_lose_credentials_and_become_absolute() {
        let cases = [
            (
                "https://github.com/org/r.git",
                Some("https://github.com/org/r.git"),
            ),
            ("https://u:tok@host:8443/r", Some("https://host:8443/r")),
            (
                "git@github.com:org/r.git",
                Some("ssh://github.com/org/r.git"),
            ),
            ("ssh://git@host/r.git", Some("ssh://host/r.git")),
            ("/srv/git/r b.git", Some("file:///srv/git/r%20b.git")),
            ("../relative", None),
            ("C", None),
        ];
        for (url, want) in cases {
            assert_eq!(remote_uri(url).as_deref(), want, "{url}");
        }
    }
}

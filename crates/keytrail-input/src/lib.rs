//! Input sources for keytrail: the file, directory, stdin and archive source
//! behind `keytrail scan PATH... | -`, the git history source (`git`), the
//! container image source (`image`), GitHub organisations and GitLab groups
//! (`forge`) and CI log cleaning (`log`).
//!
//! The crate turns paths into [`Blob`]s (display path + provenance + bytes)
//! and pushes them into a [`BlobSink`]. It knows nothing about rules or
//! matching: the sink (`keytrail-session`'s, wrapping `keytrail-scan`) does the scanning,
//! on the walker's own threads, so a directory walk is as parallel as the
//! scan itself.
//!
//! What a walk does, in order:
//! - directories are walked in parallel (`ignore::WalkParallel`) with every
//!   ignore-file filter disabled: hidden files, `.gitignore`, `.ignore` and
//!   git excludes are *not* honoured, because git-ignored files such as `.env`
//!   are exactly where credentials live. Only `--exclude GLOB` patterns
//!   ([`FsOptions::excludes`]) prune the walk;
//! - `.git` directories are skipped (git history is a separate source);
//! - symlinks are skipped unless [`FsOptions::follow_symlinks`] is set;
//! - FIFOs, sockets and devices are skipped without ever being opened, except
//!   a FIFO named on the command line (`keytrail scan <(cat f)`), which is
//!   read as a stream, like stdin;
//! - binary content (found by sniffing) is delivered as its printable runs,
//!   ASCII and UTF-16 ([`strings`]), or skipped when
//!   [`FsOptions::scan_binary`] is off; UTF-16 text with a BOM is
//!   transcoded to UTF-8;
//! - zip-family, tar, tar.gz/tgz and .gz files are opened and their members
//!   handled the same way, recursively, under a decompression budget
//!   ([`FsOptions::max_archive_bytes`]) and a nesting limit;
//! - structured exports (Slack workspace exports, Postman collections and
//!   environments, Jira issue JSON, Confluence HTML pages) are split into
//!   records, one blob each with [`Origin::Export`] provenance ([`export`]);
//! - empty files are delivered as empty blobs (so they count as scanned);
//! - every skip or failure becomes a [`Diagnostic`] on the sink: a bad input
//!   never aborts the walk and never disappears silently.
//!
//! Stdin (`-`) is held in memory up to [`FsOptions::max_in_memory`] and
//! spilled beyond that to a private (0600) temporary file handed as
//! [`Content::File`] and deleted when [`BlobSink::blob`] returns; stdin
//! carrying an archive (`tar cz . | keytrail scan -`) is opened like a file.
//!
//! Diagnostic kinds produced here (stable, see [`kinds`]): errors are
//! `not_found`, `permission_denied`, `unreadable`, `archive_corrupt`,
//! `invalid_exclude`; skips are `binary`, `excluded`, `git_dir`, `symlink`,
//! `broken_symlink`, `symlink_loop`, `special_file`, `archive_bomb`,
//! `archive_limit`, `archive_encrypted`, `archive_unsupported`,
//! `archive_disabled`; [`export`] adds `export_corrupt` (error) and
//! `export_limit` (skip).
//!
//! Memory: a blob is at most [`FsOptions::max_in_memory`] bytes in memory;
//! larger content (files, stdin, archive members) is streamed from a file.
//! An archive member being read sits in memory next to its enclosing
//! archives, so the peak per walker thread is about
//! `(max_archive_depth + 1) * max_in_memory` in the worst case.

mod archive;
mod content;
pub mod export;
#[cfg(feature = "forge")]
pub mod forge;
#[cfg(feature = "git")]
pub mod git;
#[cfg(feature = "image")]
pub mod image;
#[cfg(any(feature = "forge", feature = "image"))]
mod link;
pub mod log;
mod sniff;
mod spill;
pub mod strings;
mod walk;

use std::io::Read;
use std::path::PathBuf;

pub use content::utf8_text;

pub use keytrail_types::{Diagnostic, Origin};

/// The bytes of one blob.
#[derive(Debug)]
pub enum Content {
    /// The whole content, in memory.
    Bytes(Vec<u8>),
    /// Content too big to hold in memory (more than [`FsOptions::max_in_memory`]):
    /// the consumer streams it from `path`.
    ///
    /// `path` is either the user's file or a private temporary file (0600)
    /// holding spilled stdin or a large archive member. Temporary files are
    /// deleted as soon as [`BlobSink::blob`] returns, so the consumer must
    /// read the file during that call.
    File {
        /// Where to read the content from.
        path: PathBuf,
        /// Its length in bytes when it was handed over.
        len: u64,
    },
}

impl Content {
    /// Length of the content in bytes.
    pub fn len(&self) -> u64 {
        match self {
            Content::Bytes(b) => b.len() as u64,
            Content::File { len, .. } => *len,
        }
    }

    /// Whether the content is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One piece of text to scan.
#[derive(Debug)]
pub struct Blob {
    /// Display path: the file path as reached from the given root (lossy
    /// UTF-8 for non-UTF-8 names), `-` for stdin, `outer.zip!dir/f.txt` for
    /// archive members and `a.zip!b.jar!c/config.properties` when nested.
    pub path: String,
    /// Where the content came from ([`Origin::File`] or [`Origin::Stdin`]).
    pub origin: Origin,
    /// The bytes (UTF-8 or other ASCII-compatible text; UTF-16 is transcoded).
    pub content: Content,
}

/// Receiver of blobs and diagnostics.
///
/// Both methods are called concurrently from the walker's worker threads;
/// the consumer is expected to scan the blob inside [`BlobSink::blob`], which
/// is how scanning runs in parallel with the walk.
pub trait BlobSink: Send + Sync {
    /// A blob to scan. Called concurrently from worker threads.
    fn blob(&self, blob: Blob);
    /// An error (`is_error`) or a skip (binary file, excluded path, ...).
    fn diagnostic(&self, diag: Diagnostic);
}

/// Options of a filesystem / stdin scan.
///
/// Construct with `FsOptions { excludes, ..FsOptions::default() }`: fields
/// may be added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsOptions {
    /// Glob patterns (`globset` syntax) of paths not to scan, anchored as
    /// in `.gitignore`: a glob without `/` (`vendor`, `*.min.js`, `.env.*`)
    /// matches a file or directory name at any depth; a glob with `/`
    /// (`docs/**`, `test/fixtures/*.pem`, `**/testdata/**`) matches the path
    /// relative to the root it was found under, and there `*` does not cross
    /// `/`. An excluded directory is not descended; `dir/**` prunes `dir`
    /// too. Leading `./` or `/` and a trailing `/` are ignored. Paths given
    /// directly on the command line are never excluded.
    pub excludes: Vec<String>,
    /// How many archives may be nested (`a.zip!b.jar!c.zip!f` is 3). An
    /// archive deeper than this is skipped with an `archive_limit`
    /// diagnostic. `0` opens no archives at all. Default 3.
    pub max_archive_depth: usize,
    /// Decompressed bytes read, in total, out of one top-level archive
    /// (including everything nested in it). Reaching it stops that archive
    /// with an `archive_limit` (or `archive_bomb`) diagnostic; members
    /// already read are still scanned, and so is the part of the member
    /// read before the limit (not after a suspected bomb). Content growing
    /// past 200× the outermost archive's size beyond 16 MiB of output is
    /// called a bomb and stopped early. Default 256 MiB.
    pub max_archive_bytes: u64,
    /// Output-to-input ratio (beyond 16 MiB of output) at which an archive
    /// or image layer is called a decompression bomb and stopped; `0` turns
    /// the test off (the byte limits still hold). Default 200.
    pub max_archive_ratio: u64,
    /// Files up to this size are read into memory ([`Content::Bytes`]);
    /// larger ones are handed as [`Content::File`]. Default 64 MiB.
    pub max_in_memory: u64,
    /// Walker threads; `0` picks from the number of CPUs.
    pub threads: usize,
    /// Whether to open archives. When false they are skipped
    /// (`archive_disabled`).
    pub scan_archives: bool,
    /// Follow symbolic links (with loop detection). When false (the
    /// default) symlinks below a root are reported as `symlink` skips; a
    /// root given on the command line is always followed.
    pub follow_symlinks: bool,
    /// Whether binary content (`.pyc`, `.class`, executables, archive
    /// members that are not text) is scanned through its printable runs
    /// ([`strings`]); when false it is skipped (`binary`). Compressed data
    /// that is not decoded (bzip2, xz, zstd, 7-zip, RAR), images and
    /// UTF-32 are skipped either way. Default true.
    pub scan_binary: bool,
}

impl Default for FsOptions {
    fn default() -> Self {
        FsOptions {
            excludes: Vec::new(),
            max_archive_depth: 3,
            max_archive_bytes: 256 << 20,
            max_archive_ratio: archive::BOMB_RATIO,
            max_in_memory: 64 << 20,
            threads: 0,
            scan_archives: true,
            follow_symlinks: false,
            scan_binary: true,
        }
    }
}

/// Stable diagnostic kinds produced by this crate.
pub mod kinds {
    /// A path given on the command line does not exist (error).
    pub const NOT_FOUND: &str = "not_found";
    /// Permission denied opening or reading a file or directory (error).
    pub const PERMISSION_DENIED: &str = "permission_denied";
    /// Any other IO error opening or reading (error).
    pub const UNREADABLE: &str = "unreadable";
    /// An `--exclude` glob that does not parse (error; the glob is ignored).
    pub const INVALID_EXCLUDE: &str = "invalid_exclude";
    /// Content sniffed as binary (skip).
    pub const BINARY: &str = "binary";
    /// Path matched an `--exclude` glob (skip).
    pub const EXCLUDED: &str = "excluded";
    /// A `.git` directory, not descended (skip).
    pub const GIT_DIR: &str = "git_dir";
    /// A symlink not followed (skip).
    pub const SYMLINK: &str = "symlink";
    /// A symlink whose target does not exist (skip).
    pub const BROKEN_SYMLINK: &str = "broken_symlink";
    /// A symlink loop (skip).
    pub const SYMLINK_LOOP: &str = "symlink_loop";
    /// FIFO, socket or device: never opened (skip).
    pub const SPECIAL_FILE: &str = "special_file";
    /// Decompression stopped: the archive expands far beyond its size (skip).
    pub const ARCHIVE_BOMB: &str = "archive_bomb";
    /// Decompression budget or nesting depth reached (skip).
    pub const ARCHIVE_LIMIT: &str = "archive_limit";
    /// Encrypted archive member (skip).
    pub const ARCHIVE_ENCRYPTED: &str = "archive_encrypted";
    /// Archive not opened because archive scanning is disabled (skip).
    pub const ARCHIVE_DISABLED: &str = "archive_disabled";
    /// Whether a diagnostic of `kind` means content was left unscanned
    /// because of a limit (decompression budget, bomb ratio, nesting depth):
    /// the run is incomplete and a higher limit would scan more.
    pub fn is_incomplete(kind: &str) -> bool {
        matches!(kind, ARCHIVE_BOMB | ARCHIVE_LIMIT | "image_limit")
    }
    /// Corrupt or truncated archive or member (error).
    pub const ARCHIVE_CORRUPT: &str = "archive_corrupt";
    /// Member compressed with a method we do not decode: bzip2, lzma, zstd... (skip).
    pub const ARCHIVE_UNSUPPORTED: &str = "archive_unsupported";
}

/// Walk `paths` (files, directories, or `-` for stdin) and push every text
/// blob and every diagnostic to `sink`.
///
/// Never fails: problems become diagnostics. Returns when everything has
/// been delivered. Stdin (`-`, read once however often it is given) is
/// read on its own thread while the directory walk runs on the walker's
/// threads. A path given twice is walked once.
pub fn scan_paths(paths: &[PathBuf], opts: &FsOptions, sink: &dyn BlobSink) {
    let mut seen = std::collections::HashSet::new();
    let (stdin, fs_paths): (Vec<&PathBuf>, Vec<&PathBuf>) = paths
        .iter()
        .filter(|p| seen.insert(p.as_path()))
        .partition(|p| p.as_os_str() == "-");
    std::thread::scope(|s| {
        if !stdin.is_empty() {
            s.spawn(|| {
                let stdin = std::io::stdin();
                scan_reader(stdin.lock(), "-", Origin::Stdin, opts, sink);
            });
        }
        walk::walk(&fs_paths, opts, sink);
    });
}

/// Scan one stream (stdin, or anything readable) as if it were a file named
/// `display`: archives in it are opened, binary content is skipped.
///
/// Up to [`FsOptions::max_in_memory`] bytes are held in memory; beyond that
/// the stream is spilled to a private temporary file and handed as
/// [`Content::File`], so a multi-GB stream is never held in memory.
pub fn scan_reader<R: Read>(
    reader: R,
    display: &str,
    origin: Origin,
    opts: &FsOptions,
    sink: &dyn BlobSink,
) {
    content::scan_stream(reader, display, origin, opts, sink);
}

//! Archive members as content: zip family, tar, gzip (single file or tar),
//! nested up to [`crate::FsOptions::max_archive_depth`], never extracted to
//! disk (members live in memory, or in a private temporary file above
//! [`crate::FsOptions::max_in_memory`]).
//!
//! Every byte that comes out of a decompressor (gzip streams, zip members,
//! stored or deflated) goes through [`Capped`], which charges it to the
//! [`Budget`] of the outermost archive. Bytes of an uncompressed tar read
//! from disk are not charged: their size is real, they cannot be a bomb.
//! When the budget is spent, or the output grows past [`BOMB_RATIO`] (or
//! [`crate::FsOptions::max_archive_ratio`]) times
//! the size of the outermost archive, every further read fails, every
//! enclosing loop stops, and the outermost caller reports one diagnostic.
//! Members delivered before that point stay delivered, and the member being
//! read is delivered up to where it stopped (not after a suspected bomb:
//! that output is filler). A corrupt or truncated member is likewise
//! scanned up to the damage, with an `archive_corrupt` diagnostic.

use std::cell::{Cell, RefCell};
use std::io::{self, Cursor, Read, Seek};

use flate2::read::MultiGzDecoder;
use keytrail_types::{Diagnostic, Origin};
use zip::ZipArchive;
use zip::result::ZipError;

use crate::content::{Ctx, Level, handle, read_sniffed, skip_binary};
use crate::kinds;
use crate::sniff::{self, ArchiveKind, HEAD_LEN};
use crate::spill::{Data, read_spill_after};

/// Output-to-input ratio beyond which an archive is called a bomb. Real
/// source trees and logs compress 3–30×, very repetitive logs ~100×; deflate
/// tops out near 1030× (runs of one byte), and nested bombs go far beyond.
pub(crate) const BOMB_RATIO: u64 = 200;

/// The ratio test starts after this many decompressed bytes, so small
/// archives of repetitive text are never called bombs.
pub(crate) const BOMB_MIN_BYTES: u64 = 16 << 20;

/// Decompression budget of one top-level archive (single-threaded: an
/// archive is read by one walker thread).
#[derive(Debug)]
pub(crate) struct Budget {
    limit: u64,
    used: Cell<u64>,
    /// Size of the outermost archive, for the ratio test.
    compressed: u64,
    /// Output-to-input ratio called a bomb; `0`: no ratio test.
    ratio: u64,
    tripped: Cell<Option<&'static str>>,
    /// Display path of the member being read when the budget tripped.
    at: RefCell<Option<String>>,
    /// Bytes of that member delivered anyway (a prefix, on `archive_limit`).
    partial: Cell<Option<u64>>,
}

impl Budget {
    pub(crate) fn new(limit: u64, compressed: u64) -> Self {
        Budget {
            limit,
            used: Cell::new(0),
            compressed: compressed.max(1),
            ratio: BOMB_RATIO,
            tripped: Cell::new(None),
            at: RefCell::new(None),
            partial: Cell::new(None),
        }
    }

    /// The same budget with another bomb ratio (`0` turns the test off).
    pub(crate) fn with_ratio(mut self, ratio: u64) -> Self {
        self.ratio = ratio;
        self
    }

    pub(crate) fn is_tripped(&self) -> bool {
        self.tripped.get().is_some()
    }

    fn is_bomb(&self) -> bool {
        self.tripped.get() == Some(kinds::ARCHIVE_BOMB)
    }

    fn ratio_exceeded(&self) -> bool {
        let used = self.used.get();
        self.ratio > 0 && used > BOMB_MIN_BYTES && used / self.compressed >= self.ratio
    }

    fn trip(&self) -> io::Error {
        if self.tripped.get().is_none() {
            let kind = if self.ratio_exceeded() {
                kinds::ARCHIVE_BOMB
            } else {
                kinds::ARCHIVE_LIMIT
            };
            self.tripped.set(Some(kind));
        }
        io::Error::other("archive decompression budget exhausted")
    }

    /// Remember the innermost member that was being read when it tripped.
    fn note_at(&self, member: &str) {
        let mut at = self.at.borrow_mut();
        if at.is_none() {
            *at = Some(member.to_string());
        }
    }

    /// The diagnostic for a tripped budget of the archive `display`.
    pub(crate) fn report(&self, display: &str) -> Option<Diagnostic> {
        let kind = self.tripped.get()?;
        let subject = self
            .at
            .borrow()
            .clone()
            .unwrap_or_else(|| display.to_string());
        let used = self.used.get();
        let why = if kind == kinds::ARCHIVE_BOMB {
            format!(
                "decompression bomb suspected: {used} bytes out of a {}-byte archive (over {}:1; raise --max-archive-ratio to read on)",
                self.compressed, self.ratio
            )
        } else {
            format!(
                "decompression limit of {} bytes reached for archive {display} (raise --max-archive-bytes to read on)",
                self.limit
            )
        };
        let partial = match self.partial.get() {
            Some(n) => format!(" (its first {n} bytes were)"),
            None => String::new(),
        };
        Some(Diagnostic::skip(
            kind,
            subject,
            format!("{why}; from this member{partial} on the archive was not scanned"),
        ))
    }
}

/// A reader that charges everything it yields to a [`Budget`].
pub(crate) struct Capped<'b, R> {
    inner: R,
    budget: &'b Budget,
}

impl<'b, R: Read> Capped<'b, R> {
    pub(crate) fn new(inner: R, budget: &'b Budget) -> Self {
        Capped { inner, budget }
    }
}

impl<R: Read> Read for Capped<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let budget = self.budget;
        if budget.is_tripped() {
            return Err(io::Error::other("archive decompression budget exhausted"));
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let left = budget.limit - budget.used.get();
        if left == 0 {
            // Only an error if there is more to come.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(budget.trip()),
            };
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        budget.used.set(budget.used.get() + n as u64);
        if budget.ratio_exceeded() {
            return Err(budget.trip());
        }
        Ok(n)
    }
}

/// Whether `data` opens as a zip archive (central directory found).
pub(crate) fn is_zip(data: &Data) -> bool {
    data.reader()
        .map(|r| ZipArchive::new(r).is_ok())
        .unwrap_or(false)
}

/// Scan the members of archive `data` (shown as `display`), whose members
/// sit at nesting depth `depth`.
pub(crate) fn scan(
    ctx: Ctx<'_>,
    kind: ArchiveKind,
    display: &str,
    origin: &Origin,
    data: &Data,
    depth: usize,
    budget: &Budget,
) {
    let reader = match data.reader() {
        Ok(r) => r,
        Err(e) => {
            return ctx.diag(Diagnostic::error(
                kinds::UNREADABLE,
                display,
                format!("cannot read archive: {e}"),
            ));
        }
    };
    let level = Level {
        depth,
        budget: Some(budget),
    };
    match kind {
        ArchiveKind::Zip => scan_zip(ctx, reader, display, origin, level, budget),
        ArchiveKind::Tar => scan_tar(ctx, reader, display, origin, level, budget),
        ArchiveKind::Gzip => scan_gzip(ctx, reader, display, origin, level, budget),
    }
}

fn corrupt(display: &str, what: impl std::fmt::Display) -> Diagnostic {
    Diagnostic::error(kinds::ARCHIVE_CORRUPT, display, what.to_string())
}

/// Settle a member read that may have stopped on an error: returns the
/// content to hand on (the whole member, or the prefix read before the
/// error) and whether the whole archive must stop (budget spent).
///
/// What was read is scanned, unless it is the output of a suspected bomb or
/// itself an (unusable, truncated) archive: truncated logs and downloads are
/// common and their first part still holds whatever secrets it holds.
fn settle(
    ctx: Ctx<'_>,
    budget: &Budget,
    member: &str,
    data: Data,
    err: Option<io::Error>,
) -> (Option<Data>, bool) {
    let Some(err) = err else {
        return (Some(data), false);
    };
    let tripped = budget.is_tripped();
    let keep = !budget.is_bomb()
        && data.len() > 0
        && data
            .head()
            .is_ok_and(|h| sniff::archive_kind(&h, sniff::file_name(member)).is_none());
    if tripped {
        budget.note_at(member);
        if keep && budget.at.borrow().as_deref() == Some(member) {
            budget.partial.set(Some(data.len()));
        }
    } else {
        let scanned = if keep {
            format!("; the {} bytes before the error were scanned", data.len())
        } else {
            String::new()
        };
        ctx.diag(corrupt(
            member,
            format_args!("cannot read archive member: {err}{scanned}"),
        ));
    }
    (keep.then_some(data), tripped)
}

fn scan_zip<R: Read + Seek>(
    ctx: Ctx<'_>,
    reader: R,
    display: &str,
    origin: &Origin,
    level: Level<'_>,
    budget: &Budget,
) {
    let mut zip = match ZipArchive::new(reader) {
        Ok(z) => z,
        Err(e) => {
            return ctx.diag(corrupt(
                display,
                format_args!("cannot open zip archive: {e}"),
            ));
        }
    };
    let users = slack_users(&mut zip, budget);
    let ctx = Ctx {
        slack_users: users.as_ref().or(ctx.slack_users),
        ..ctx
    };
    for i in 0..zip.len() {
        if budget.is_tripped() {
            return;
        }
        let name = match zip.name_for_index(i) {
            Some(Ok(n)) => n.into_owned(),
            _ => format!("#{i}"),
        };
        let member = format!("{display}!{name}");
        let mut entry = match zip.by_index(i) {
            Ok(e) => e,
            Err(ZipError::UnsupportedArchive(msg)) if msg == ZipError::PASSWORD_REQUIRED => {
                ctx.diag(Diagnostic::skip(
                    kinds::ARCHIVE_ENCRYPTED,
                    member,
                    "encrypted archive member skipped",
                ));
                continue;
            }
            Err(
                e @ (ZipError::CompressionMethodNotSupported(_) | ZipError::UnsupportedArchive(_)),
            ) => {
                ctx.diag(Diagnostic::skip(
                    kinds::ARCHIVE_UNSUPPORTED,
                    member,
                    format!("archive member skipped: {e}"),
                ));
                continue;
            }
            Err(e) => {
                ctx.diag(corrupt(
                    &member,
                    format_args!("cannot read archive member: {e}"),
                ));
                continue;
            }
        };
        if entry.is_dir() || entry.is_symlink() {
            continue;
        }
        let method = entry.compression();
        if !matches!(
            method,
            zip::CompressionMethod::Stored | zip::CompressionMethod::Deflated
        ) {
            // bzip2, lzma, zstd, deflate64...: rare in the archives we scan
            // (jars, wheels, packages use deflate); not worth the decoders.
            ctx.diag(Diagnostic::skip(
                kinds::ARCHIVE_UNSUPPORTED,
                member,
                format!("archive member skipped: compression method {method} not supported"),
            ));
            continue;
        }
        let hint = entry.size();
        // A binary member costs one 8 KiB read: by-index zip entries need
        // no draining.
        let read = read_sniffed(ctx, &member, Capped::new(&mut entry, budget), hint);
        drop(entry);
        let Some((data, err)) = read else {
            continue;
        };
        let (data, stop) = settle(ctx, budget, &member, data, err);
        if let Some(data) = data {
            handle(ctx, member, origin, data, level);
        }
        if stop {
            return;
        }
    }
}

/// The user names of a Slack export zipped whole: its `users.json` (at
/// the top or one directory down, next to `channels.json`), read within
/// the archive's budget. `None` for any other zip.
fn slack_users<R: Read + Seek>(
    zip: &mut ZipArchive<R>,
    budget: &Budget,
) -> Option<crate::export::slack::Users> {
    let users = zip
        .file_names()
        .filter_map(Result::ok)
        .find(|n| {
            let dir = n.strip_suffix("users.json");
            dir.is_some_and(|d| {
                d.is_empty() || (d.ends_with('/') && !d[..d.len() - 1].contains('/'))
            })
        })?
        .into_owned();
    let dir = &users[..users.len() - "users.json".len()];
    zip.index_for_name(&format!("{dir}channels.json"))?;
    let entry = zip.by_name(&users).ok()?;
    if entry.size() > crate::export::slack::MAX_USERS_JSON {
        return None;
    }
    let mut bytes = Vec::new();
    Capped::new(entry, budget).read_to_end(&mut bytes).ok()?;
    crate::export::slack::parse_users(&bytes)
}

fn scan_tar<R: Read>(
    ctx: Ctx<'_>,
    reader: R,
    display: &str,
    origin: &Origin,
    level: Level<'_>,
    budget: &Budget,
) {
    let mut tar = tar::Archive::new(reader);
    let entries = match tar.entries() {
        Ok(e) => e,
        Err(e) => {
            return ctx.diag(corrupt(
                display,
                format_args!("cannot read tar archive: {e}"),
            ));
        }
    };
    for entry in entries {
        let mut entry = match entry {
            Ok(e) => e,
            Err(e) => {
                if budget.is_tripped() {
                    budget.note_at(display);
                } else {
                    ctx.diag(corrupt(
                        display,
                        format_args!("cannot read tar archive: {e}"),
                    ));
                }
                return;
            }
        };
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind.is_contiguous() || kind.is_gnu_sparse()) {
            continue;
        }
        let member = format!("{display}!{}", String::from_utf8_lossy(&entry.path_bytes()));
        let hint = entry.size();
        let Some((data, err)) = read_sniffed(ctx, &member, &mut entry, hint) else {
            continue;
        };
        // After an error, budget or not, the stream position is lost.
        let failed = err.is_some();
        let (data, _) = settle(ctx, budget, &member, data, err);
        if let Some(data) = data {
            handle(ctx, member, origin, data, level);
        }
        if failed || budget.is_tripped() {
            return;
        }
    }
}

fn scan_gzip<R: Read>(
    ctx: Ctx<'_>,
    reader: R,
    display: &str,
    origin: &Origin,
    level: Level<'_>,
    budget: &Budget,
) {
    let mut gz = Capped::new(MultiGzDecoder::new(reader), budget);
    let mut head = Vec::with_capacity(HEAD_LEN);
    // On error the bytes decoded so far stay in `head`.
    let head_err = (&mut gz).take(HEAD_LEN as u64).read_to_end(&mut head).err();
    let inner_name = gz
        .inner
        .header()
        .and_then(|h| h.filename())
        .map(String::from_utf8_lossy)
        .map(|n| sniff::file_name(&n).to_string())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| sniff::gunzipped_name(display));
    let tar_hint = inner_name.to_ascii_lowercase().ends_with(".tar");
    if head_err.is_none() && sniff::is_tar_header(&head, tar_hint) {
        // `a.tar.gz!member`: the gzip layer is transparent.
        return scan_tar(
            ctx,
            Cursor::new(head).chain(gz),
            display,
            origin,
            level,
            budget,
        );
    }
    let (member, data, err) = match head_err {
        // A `.tar.gz` that fails before its first header: no partial tar.
        Some(e) if tar_hint => (display.to_string(), Data::Mem(Vec::new()), Some(e)),
        Some(e) => (format!("{display}!{inner_name}"), Data::Mem(head), Some(e)),
        None => {
            let member = format!("{display}!{inner_name}");
            if skip_binary(ctx, &member, &head) {
                return;
            }
            let (data, err) = read_spill_after(head, gz, ctx.opts.max_in_memory);
            (member, data, err)
        }
    };
    if let (Some(data), _) = settle(ctx, budget, &member, data, err) {
        handle(ctx, member, origin, data, level);
    }
}

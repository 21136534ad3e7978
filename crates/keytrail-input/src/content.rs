//! What happens to one piece of content, wherever it came from (a file, an
//! archive member, stdin): open it as an archive, skip it as binary,
//! transcode UTF-16, or deliver it to the sink. Also the mapping of IO
//! errors to diagnostic kinds.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use keytrail_types::{Diagnostic, Origin};

use crate::archive::{self, Budget};
use crate::kinds;
use crate::sniff::{self, TextKind};
use crate::spill::{self, Data, read_spill, read_spill_partial};
use crate::{Blob, BlobSink, Content, FsOptions};

/// Options and sink, passed down every call.
#[derive(Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub(crate) opts: &'a FsOptions,
    pub(crate) sink: &'a dyn BlobSink,
    /// User names of the Slack export being read from an archive (its
    /// `users.json`), for the messages of its day files.
    pub(crate) slack_users: Option<&'a crate::export::slack::Users>,
}

impl<'a> Ctx<'a> {
    /// A context with no export state.
    pub(crate) fn new(opts: &'a FsOptions, sink: &'a dyn BlobSink) -> Self {
        Ctx {
            opts,
            sink,
            slack_users: None,
        }
    }
}

impl Ctx<'_> {
    pub(crate) fn diag(&self, d: Diagnostic) {
        self.sink.diagnostic(d);
    }
}

/// Where a piece of content sits: how many archives enclose it and the
/// decompression budget of the outermost one.
#[derive(Clone, Copy)]
pub(crate) struct Level<'b> {
    pub(crate) depth: usize,
    pub(crate) budget: Option<&'b Budget>,
}

impl Level<'_> {
    /// Content not inside any archive.
    pub(crate) const TOP: Level<'static> = Level {
        depth: 0,
        budget: None,
    };
}

/// Scan a regular file at `path` (already known not to be a FIFO, socket or
/// device), shown as `display`.
pub(crate) fn scan_file(ctx: Ctx<'_>, path: &Path, display: String) {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) => return ctx.diag(io_diagnostic(&e, display, "cannot open")),
    };
    let meta = match file.metadata() {
        Ok(m) => m,
        Err(e) => return ctx.diag(io_diagnostic(&e, display, "cannot stat")),
    };
    if !meta.is_file() {
        return ctx.diag(Diagnostic::skip(
            kinds::SPECIAL_FILE,
            display,
            "not a regular file",
        ));
    }
    let len = meta.len();
    let data = if len > ctx.opts.max_in_memory {
        Data::Disk(file, path.to_path_buf(), len)
    } else {
        // Read even when the size says 0: procfs-like files lie about it.
        match read_sniffed(ctx, &display, &file, len) {
            None => return,
            Some((d, None)) => d,
            Some((d, Some(e))) => return read_failed(ctx, display, &Origin::File, d, &e),
        }
    };
    handle(ctx, display, &Origin::File, data, Level::TOP);
}

/// Read content named `display` from `r`, but stop after its first
/// [`HEAD_LEN`](sniff::HEAD_LEN) bytes if they show a binary that is not an
/// archive: a skip diagnostic is sent and `None` returned, so a large
/// binary costs one small read, not a full one. Otherwise the rest follows
/// into the same buffer (read once, copied never), spilling beyond
/// `max_in_memory`; the error, if reading stopped on one, comes with what
/// was read before it.
pub(crate) fn read_sniffed<R: Read>(
    ctx: Ctx<'_>,
    display: &str,
    mut r: R,
    hint: u64,
) -> Option<(Data, Option<io::Error>)> {
    let mut buf = spill::with_capacity_for(hint, ctx.opts.max_in_memory);
    let head_len = (sniff::HEAD_LEN as u64).min(ctx.opts.max_in_memory);
    if let Err(e) = (&mut r).take(head_len).read_to_end(&mut buf) {
        return Some((Data::Mem(buf), Some(e)));
    }
    if skip_binary(ctx, display, &buf) {
        return None;
    }
    Some(spill::read_spill_after(buf, r, ctx.opts.max_in_memory))
}

/// Whether `head` shows a binary that is not an archive; if so the skip
/// diagnostic for `display` is sent. Archives go on to [`handle`], which
/// opens them or reports them disabled.
pub(crate) fn skip_binary(ctx: Ctx<'_>, display: &str, head: &[u8]) -> bool {
    let name = sniff::file_name(display);
    let maybe_archive = sniff::archive_kind(head, name).is_some()
        || (ctx.opts.scan_archives && sniff::has_zip_extension(name));
    if !maybe_archive
        && let TextKind::Binary(what) = sniff::text_kind(head)
        && !(ctx.opts.scan_binary && sniff::has_strings(head))
    {
        ctx.diag(binary_skip(display.to_string(), what));
        return true;
    }
    false
}

fn binary_skip(display: String, what: &str) -> Diagnostic {
    Diagnostic::skip(
        kinds::BINARY,
        display,
        format!("binary file skipped ({what})"),
    )
}

/// A read that failed part-way: report it, and scan what came before.
fn read_failed(ctx: Ctx<'_>, display: String, origin: &Origin, data: Data, e: &io::Error) {
    let what = if data.len() > 0 {
        format!(
            "cannot read past byte {} (the bytes before were scanned)",
            data.len()
        )
    } else {
        "cannot read".to_string()
    };
    ctx.diag(io_diagnostic(e, display.clone(), &what));
    if data.len() > 0 {
        handle(ctx, display, origin, data, Level::TOP);
    }
}

/// Scan a whole stream as content named `display`.
pub(crate) fn scan_stream<R: Read>(
    reader: R,
    display: &str,
    origin: Origin,
    opts: &FsOptions,
    sink: &dyn BlobSink,
) {
    let ctx = Ctx::new(opts, sink);
    match read_spill_partial(reader, opts.max_in_memory, 0) {
        (data, None) => handle(ctx, display.to_string(), &origin, data, Level::TOP),
        (data, Some(e)) => read_failed(ctx, display.to_string(), &origin, data, &e),
    }
}

/// Classify `data` and open, skip or deliver it.
pub(crate) fn handle(ctx: Ctx<'_>, display: String, origin: &Origin, data: Data, level: Level<'_>) {
    let head = match data.head() {
        Ok(h) => h,
        Err(e) => return ctx.diag(io_diagnostic(&e, display, "cannot read")),
    };
    let name = sniff::file_name(&display);
    let kind = match sniff::archive_kind(&head, name) {
        Some(kind) => Some(kind),
        // A zip-family name without `PK` up front: maybe a zip with a prefix
        // (self-executing jar). Opened only if a central directory is found.
        None if sniff::has_zip_extension(name)
            && ctx.opts.scan_archives
            && level.depth < ctx.opts.max_archive_depth
            && !head.is_empty()
            && archive::is_zip(&data) =>
        {
            Some(sniff::ArchiveKind::Zip)
        }
        None => None,
    };
    drop(head);
    match kind {
        Some(kind) => open_archive(ctx, kind, &display, origin, &data, level),
        None => classify_text(ctx, display, origin, data),
    }
}

/// Apply the archive switches and the depth limit, give a top-level archive
/// its budget, scan it, and report a tripped budget once.
fn open_archive(
    ctx: Ctx<'_>,
    kind: sniff::ArchiveKind,
    display: &str,
    origin: &Origin,
    data: &Data,
    level: Level<'_>,
) {
    if !ctx.opts.scan_archives {
        return ctx.diag(Diagnostic::skip(
            kinds::ARCHIVE_DISABLED,
            display,
            "archive not opened (archive scanning is disabled)",
        ));
    }
    if level.depth >= ctx.opts.max_archive_depth {
        return ctx.diag(Diagnostic::skip(
            kinds::ARCHIVE_LIMIT,
            display,
            format!(
                "archive not opened: nested deeper than {} archive levels (raise --max-archive-depth to open it)",
                ctx.opts.max_archive_depth
            ),
        ));
    }
    match level.budget {
        Some(budget) => archive::scan(ctx, kind, display, origin, data, level.depth + 1, budget),
        None => {
            let budget = Budget::new(ctx.opts.max_archive_bytes, data.len())
                .with_ratio(ctx.opts.max_archive_ratio);
            archive::scan(ctx, kind, display, origin, data, 1, &budget);
            if let Some(d) = budget.report(display) {
                ctx.diag(d);
            }
        }
    }
}

/// Skip binary content, transcode UTF-16, deliver text.
fn classify_text(ctx: Ctx<'_>, display: String, origin: &Origin, data: Data) {
    let kind = match data.head() {
        Ok(h) => sniff::text_kind(&h),
        Err(e) => return ctx.diag(io_diagnostic(&e, display, "cannot read")),
    };
    match kind {
        TextKind::Text => {
            if matches!(origin, Origin::File)
                && let Some(export) = data
                    .head()
                    .ok()
                    .and_then(|h| crate::export::recognise(&display, &h))
            {
                match &data {
                    Data::Mem(bytes) => match crate::export::split(ctx, export, &display, bytes) {
                        Ok(true) => return,
                        Ok(false) => {}
                        Err(message) => ctx.diag(crate::export::corrupt(&display, message)),
                    },
                    _ => ctx.diag(Diagnostic::skip(
                        crate::export::EXPORT_LIMIT,
                        display.clone(),
                        format!(
                            "export file larger than {} bytes: not split into records, scanned as plain text",
                            ctx.opts.max_in_memory
                        ),
                    )),
                }
            }
            deliver(ctx, display, origin, data)
        }
        TextKind::Binary(_)
            if ctx.opts.scan_binary && data.head().is_ok_and(|h| sniff::has_strings(&h)) =>
        {
            let strings = match data {
                Data::Mem(v) => {
                    let mut out = Vec::with_capacity(v.len());
                    crate::strings::extract(&v, &mut out);
                    Ok(Data::Mem(out))
                }
                other => other.reader().and_then(|r| {
                    read_spill(
                        crate::strings::Strings::new(r),
                        ctx.opts.max_in_memory,
                        other.len(),
                    )
                }),
            };
            match strings {
                Ok(text) => deliver(ctx, display, origin, text),
                Err(e) => ctx.diag(io_diagnostic(&e, display, "cannot read binary content")),
            }
        }
        TextKind::Binary(what) => ctx.diag(binary_skip(display, what)),
        TextKind::Utf16 { big_endian, skip } => {
            let transcoded = data.reader().and_then(|mut r| {
                io::copy(&mut (&mut r).take(skip as u64), &mut io::sink())?;
                read_spill(
                    Utf16ToUtf8::new(r, big_endian),
                    ctx.opts.max_in_memory,
                    data.len(),
                )
            });
            drop(data);
            match transcoded {
                Ok(utf8) => deliver(ctx, display, origin, utf8),
                Err(e) => ctx.diag(io_diagnostic(&e, display, "cannot read UTF-16 text")),
            }
        }
    }
}

/// Hand text to the sink. A temporary file lives until `blob` returns.
fn deliver(ctx: Ctx<'_>, display: String, origin: &Origin, data: Data) {
    let (content, _keep) = match data {
        Data::Mem(v) => (Content::Bytes(v), None),
        Data::Temp(tmp, len) => (
            Content::File {
                path: tmp.path().to_path_buf(),
                len,
            },
            Some(tmp),
        ),
        Data::Disk(_, path, len) => (Content::File { path, len }, None),
    };
    ctx.sink.blob(Blob {
        path: display,
        origin: origin.clone(),
        content,
    });
}

/// `ELOOP`: too many levels of symbolic links.
pub(crate) fn is_symlink_loop(e: &io::Error) -> bool {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    const ELOOP: i32 = 40;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    const ELOOP: i32 = 62;
    e.raw_os_error() == Some(ELOOP)
}

/// The diagnostic for an IO error on `subject` while doing `what`.
pub(crate) fn io_diagnostic(e: &io::Error, subject: String, what: &str) -> Diagnostic {
    let kind = match e.kind() {
        io::ErrorKind::PermissionDenied => kinds::PERMISSION_DENIED,
        io::ErrorKind::NotFound => kinds::NOT_FOUND,
        _ if is_symlink_loop(e) => {
            return Diagnostic::skip(kinds::SYMLINK_LOOP, subject, format!("{what}: {e}"));
        }
        _ => kinds::UNREADABLE,
    };
    Diagnostic::error(kind, subject, format!("{what}: {e}"))
}

/// `r` as UTF-8 text: UTF-16 (with a BOM, or recognised by its zero bytes,
/// as for files) is transcoded on the fly; anything else passes through
/// unchanged. Reads the first [`HEAD_LEN`](sniff::HEAD_LEN) bytes to decide.
pub fn utf8_text<'a, R: Read + 'a>(mut r: R) -> io::Result<Box<dyn Read + 'a>> {
    let mut head = Vec::with_capacity(sniff::HEAD_LEN);
    (&mut r)
        .take(sniff::HEAD_LEN as u64)
        .read_to_end(&mut head)?;
    Ok(match sniff::text_kind(&head) {
        TextKind::Utf16 { big_endian, skip } => {
            let body = head.split_off(skip.min(head.len()));
            Box::new(Utf16ToUtf8::new(io::Cursor::new(body).chain(r), big_endian))
        }
        _ => Box::new(io::Cursor::new(head).chain(r)),
    })
}

/// Streaming UTF-16 → UTF-8 transcoder; unpaired surrogates and a trailing
/// odd byte become U+FFFD.
struct Utf16ToUtf8<R> {
    inner: R,
    big_endian: bool,
    /// Undecoded input bytes (at most one odd byte or one high surrogate carried over).
    pending: Vec<u8>,
    out: Vec<u8>,
    out_pos: usize,
    eof: bool,
}

impl<R: Read> Utf16ToUtf8<R> {
    fn new(inner: R, big_endian: bool) -> Self {
        Utf16ToUtf8 {
            inner,
            big_endian,
            pending: Vec::with_capacity(64 << 10),
            out: Vec::with_capacity(64 << 10),
            out_pos: 0,
            eof: false,
        }
    }

    fn refill(&mut self) -> io::Result<()> {
        self.out.clear();
        self.out_pos = 0;
        let start = self.pending.len();
        self.pending.resize(start + (32 << 10), 0);
        let n = loop {
            match self.inner.read(&mut self.pending[start..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.pending.truncate(start);
                    return Err(e);
                }
            }
        };
        self.pending.truncate(start + n);
        if n == 0 {
            self.eof = true;
        }
        let mut usable = self.pending.len() & !1;
        let unit = |b: &[u8]| {
            if self.big_endian {
                u16::from_be_bytes([b[0], b[1]])
            } else {
                u16::from_le_bytes([b[0], b[1]])
            }
        };
        // Keep a trailing high surrogate for the next round unless at the end.
        if !self.eof
            && usable >= 2
            && (0xD800..0xDC00).contains(&unit(&self.pending[usable - 2..usable]))
        {
            usable -= 2;
        }
        let units = self.pending[..usable].chunks_exact(2).map(unit);
        let mut tmp = [0u8; 4];
        for c in char::decode_utf16(units) {
            let c = c.unwrap_or(char::REPLACEMENT_CHARACTER);
            self.out
                .extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
        }
        self.pending.drain(..usable);
        if self.eof && !self.pending.is_empty() {
            self.pending.clear();
            self.out
                .extend_from_slice(char::REPLACEMENT_CHARACTER.encode_utf8(&mut tmp).as_bytes());
        }
        Ok(())
    }
}

impl<R: Read> Read for Utf16ToUtf8<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.out_pos == self.out.len() {
            if self.eof {
                return Ok(0);
            }
            self.refill()?;
        }
        let n = buf.len().min(self.out.len() - self.out_pos);
        buf[..n].copy_from_slice(&self.out[self.out_pos..self.out_pos + n]);
        self.out_pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transcode(bytes: &[u8], be: bool, chunk: usize) -> String {
        struct Chunked<'a>(&'a [u8], usize);
        impl Read for Chunked<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = buf.len().min(self.1).min(self.0.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut out = String::new();
        Utf16ToUtf8::new(Chunked(bytes, chunk), be)
            .read_to_string(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn utf16_transcoding_handles_split_surrogates() {
        let text = "key=😀 abc\r\nñ";
        let le: Vec<u8> = text.encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
        let be: Vec<u8> = text.encode_utf16().flat_map(|u| u.to_be_bytes()).collect();
        for chunk in [1, 2, 3, 5, 7, 1000] {
            assert_eq!(transcode(&le, false, chunk), text, "chunk {chunk}");
            assert_eq!(transcode(&be, true, chunk), text, "chunk {chunk}");
        }
    }

    #[test]
    fn utf16_odd_trailing_byte_and_lone_surrogate_are_replaced() {
        let mut le: Vec<u8> = "ab".encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
        le.extend_from_slice(&0xD800u16.to_le_bytes());
        le.push(b'x');
        assert_eq!(transcode(&le, false, 3), "ab\u{FFFD}\u{FFFD}");
    }

    #[test]
    fn io_error_kinds() {
        let denied = io::Error::from(io::ErrorKind::PermissionDenied);
        let d = io_diagnostic(&denied, "f".into(), "cannot open");
        assert_eq!((d.kind.as_str(), d.is_error), ("permission_denied", true));
        let other = io::Error::other("boom");
        assert_eq!(io_diagnostic(&other, "f".into(), "x").kind, "unreadable");
    }
}

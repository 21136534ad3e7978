//! One file or stream, whatever its layout: gzip detected by its magic bytes, the
//! layout sniffed from the first bytes (JSON document, NDJSON, CloudTrail CSV), small
//! files read whole, and the run of unreadable records after which a file is not a log.

use super::*;

/// The stream with gzip decompressed when its magic bytes say so, or the error that
/// stopped reading its first bytes.
pub(super) fn maybe_gunzip(
    mut r: Box<dyn Read + Send>,
) -> Result<Box<dyn Read + Send>, std::io::Error> {
    let mut head = [0u8; 2];
    let mut got = 0;
    while got < 2 {
        match r.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let prefix = std::io::Cursor::new(head[..got].to_vec());
    let chained = prefix.chain(r);
    Ok(if got == 2 && head == [0x1f, 0x8b] {
        Box::new(MultiGzDecoder::new(chained))
    } else {
        Box::new(chained)
    })
}

/// Records of one file or stream, whatever its layout.
///
/// A file that yields [`MAX_BAD_RUN`] unreadable records in a row with no event between
/// them is not a log this reader understands: the rest of it is skipped with one
/// diagnostic, so random bytes cost a bounded number of diagnostics, not one per byte.
pub struct FileRecords {
    name: String,
    format: Format,
    /// Unreadable records since the last event.
    bad_run: usize,
    /// Cloud Logging entries of other logs than the audit logs, skipped, and the
    /// first few of their log names (and whether there were more).
    not_audit: (u64, Vec<String>, bool),
}

/// How a file's records are read.
pub(super) enum Format {
    /// Whole-file mode (arrays, wrappers, objects).
    Slice(Box<SliceRecords>, Option<Diagnostic>),
    /// NDJSON streaming mode.
    Lines(Box<LineRecords<BufReader<Box<dyn Read + Send>>>>),
    /// CSV with a header naming CloudTrail fields (Athena results, console exports).
    Csv(Box<csvlog::CsvRecords>),
    /// Nothing to read (the diagnostic says why).
    Failed(Option<Diagnostic>),
    /// Reading stopped after too many unreadable records (the diagnostic says so).
    Abandoned(Option<Diagnostic>),
}

/// Unreadable records in a row after which the rest of a file is skipped.
pub const MAX_BAD_RUN: usize = 1000;

impl FileRecords {
    pub(super) fn new(name: &str, format: Format) -> Self {
        FileRecords {
            name: name.to_string(),
            format,
            bad_run: 0,
            not_audit: (0, Vec::new(), false),
        }
    }

    /// A log that could not be opened: its only item is `d`.
    pub fn failed(name: &str, d: Diagnostic) -> Self {
        FileRecords::new(name, Format::Failed(Some(d)))
    }

    /// Whether the file could not be read at all and its one diagnostic was taken.
    pub(super) fn is_spent_failure(&self) -> bool {
        matches!(self.format, Format::Failed(None))
    }
}

impl Iterator for FileRecords {
    type Item = ReadItem;
    fn next(&mut self) -> Option<ReadItem> {
        let item = loop {
            let item = match &mut self.format {
                Format::Slice(s, tail) => s.next().or_else(|| tail.take().map(Err)),
                Format::Lines(l) => l.next(),
                Format::Csv(c) => c.next(),
                Format::Failed(d) | Format::Abandoned(d) => d.take().map(Err),
            };
            match item {
                // Entries of other logs are no error: counted, said once at the end.
                Some(Err(d)) if d.kind == kinds::NOT_AUDIT_LOG => {
                    self.not_audit.0 += 1;
                    let log = d.message.split('`').nth(1).unwrap_or("").to_string();
                    if !self.not_audit.1.contains(&log) {
                        if self.not_audit.1.len() < 3 {
                            self.not_audit.1.push(log);
                        } else {
                            self.not_audit.2 = true;
                        }
                    }
                }
                Some(item) => break item,
                None => return self.not_audit_notice().map(Err),
            }
        };
        if matches!(self.format, Format::Failed(_) | Format::Abandoned(_)) {
            return Some(item);
        }
        match &item {
            Ok(_) => self.bad_run = 0,
            Err(d)
                if matches!(
                    d.kind.as_str(),
                    kinds::INVALID_RECORD | kinds::GARBAGE | kinds::MISSING_TIME
                ) =>
            {
                self.bad_run += 1;
                if self.bad_run >= MAX_BAD_RUN {
                    self.format = Format::Abandoned(Some(
                        Diagnostic::error(
                            kinds::NOT_A_LOG,
                            &self.name,
                            format!(
                                "{MAX_BAD_RUN} unreadable records in a row: not a CloudTrail log? \
                                 the rest of the file is skipped"
                            ),
                        )
                        .at(d.line, None),
                    ));
                }
            }
            Err(_) => {}
        }
        Some(item)
    }
}

impl FileRecords {
    /// The one notice of the Cloud Logging entries of other logs skipped, once.
    fn not_audit_notice(&mut self) -> Option<Diagnostic> {
        let (n, logs, more) = std::mem::take(&mut self.not_audit);
        (n > 0).then(|| {
            Diagnostic::skip(
                kinds::NOT_AUDIT_LOG,
                &self.name,
                format!(
                    "{n} Cloud Logging entr{} of other logs than the audit logs skipped ({}{}): \
                     keytrail reads cloudaudit.googleapis.com (Admin Activity, Data Access, \
                     System Event, Policy Denied)",
                    if n == 1 { "y" } else { "ies" },
                    logs.join(", "),
                    if more { ", …" } else { "" }
                ),
            )
        })
    }
}

/// Reads records from any stream (a file, stdin). `name` names it in diagnostics.
///
/// Gzip is detected by its magic bytes. A stream whose first line is a complete JSON
/// object other than a `Records` wrapper is NDJSON and is streamed; anything else is
/// read in windows and split into records ([`SliceRecords::streaming`]).
pub fn read_stream(name: &str, reader: Box<dyn Read + Send>) -> FileRecords {
    read_stream_sized(name, reader, 0, WINDOW_BYTES)
}

/// [`read_stream`] of an object whose stored size is known (an S3 object a
/// distributed run's route job reads outside a merge), read as a merge reads it.
pub fn read_object_stream(name: &str, reader: Box<dyn Read + Send>, size: u64) -> FileRecords {
    read_stream_sized(
        name,
        reader,
        usize::try_from(size).unwrap_or(0),
        WINDOW_BYTES,
    )
}

/// [`read_stream`] with the stream's expected length (a plain file's size, 0 when
/// unknown), so whole files are read into a buffer of the right size in one copy, and
/// the window size for array files read in windows.
pub(super) fn read_stream_sized(
    name: &str,
    reader: Box<dyn Read + Send>,
    size_hint: usize,
    window: usize,
) -> FileRecords {
    let mut br = BufReader::with_capacity(1 << 16, reader);
    let head = match br.fill_buf() {
        Ok(h) => h.to_vec(),
        Err(e) => {
            return FileRecords::failed(
                name,
                Diagnostic::error(kinds::UNREADABLE, name, e.to_string()),
            );
        }
    };
    let gz = head.starts_with(&[0x1f, 0x8b]);
    let reader: Box<dyn Read + Send> = Box::new(br);
    if gz {
        // Decompress, then sniff the decompressed stream the same way.
        let dec: Box<dyn Read + Send> = Box::new(MultiGzDecoder::new(reader));
        let mut br = BufReader::with_capacity(1 << 16, dec);
        let head = match br.fill_buf() {
            Ok(h) => h.to_vec(),
            Err(e) => {
                return FileRecords::failed(
                    name,
                    Diagnostic::error(
                        kinds::TRUNCATED,
                        name,
                        format!("gzip stream unreadable: {e}"),
                    ),
                );
            }
        };
        return sniff(name, head, Box::new(br), 0, window);
    }
    sniff(name, head, reader, size_hint, window)
}

/// How a stream lays out its records, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Layout {
    /// One record per line.
    Ndjson,
    /// CSV with a CloudTrail header.
    Csv,
    /// Arrays, `Records` wrappers, objects (split by the byte scanner).
    Json,
}

pub(super) fn layout(head: &[u8]) -> Layout {
    let rest = &head[skip_ws(head, 0)..];
    // One search for the end of the first line (a delivered CloudTrail file is one
    // line of tens of kilobytes).
    let nl = memchr::memchr(b'\n', rest);
    let first = &rest[..nl.unwrap_or(rest.len())];
    if nl.is_some()
        && rest
            .first()
            .is_some_and(|&c| c == b'{' || c.is_ascii_digit())
    {
        let line = strip_time_prefix(first.trim_ascii_end());
        if value_end(line, 0) == Ok(line.len()) && !is_wrapper(line) {
            return Layout::Ndjson;
        }
    }
    let first = first.strip_prefix(b"\xef\xbb\xbf").unwrap_or(first);
    if csvlog::is_cloudtrail_header(first.trim_ascii_end()) {
        return Layout::Csv;
    }
    Layout::Json
}

pub(super) fn sniff(
    name: &str,
    head: Vec<u8>,
    reader: Box<dyn Read + Send>,
    size_hint: usize,
    window: usize,
) -> FileRecords {
    let format = match layout(&head) {
        Layout::Ndjson => {
            let br = BufReader::with_capacity(1 << 16, reader);
            Format::Lines(Box::new(LineRecords::new(name, br)))
        }
        Layout::Csv => Format::Csv(Box::new(csvlog::CsvRecords::new(name, reader))),
        Layout::Json => Format::Slice(
            Box::new(SliceRecords::streaming_in_windows(
                name, reader, size_hint, window,
            )),
            None,
        ),
    };
    FileRecords::new(name, format)
}

/// Files up to this size (compressed) are read and decompressed in one piece: an S3
/// tree holds many thousands of files of a few kilobytes, and this path costs one
/// read, one inflate and two exact-size allocations per file.
pub(super) const SMALL_FILE_BYTES: usize = 1 << 20;

/// Records of a whole small file in memory (gzip is decompressed); `None` when it
/// decompresses to more than a window (then it is read as a stream).
pub(super) fn read_small(name: &str, raw: Vec<u8>) -> Option<FileRecords> {
    let buf = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity((raw.len() * 6).min(FIRST_READ_BYTES.max(raw.len())));
        let res = MultiGzDecoder::new(&raw[..])
            .take(WINDOW_BYTES as u64 + 1)
            .read_to_end(&mut out);
        if out.len() > WINDOW_BYTES {
            return None;
        }
        if let Err(e) = res {
            // As the streaming path does: the complete records before the damage,
            // then a diagnostic.
            let d = Diagnostic::error(kinds::TRUNCATED, name, format!("read stopped: {e}"));
            let mut r = slice_file(name, out);
            if let Format::Slice(_, tail) = &mut r.format {
                *tail = Some(d);
            }
            return Some(r);
        }
        if out.capacity() - out.len() > out.len() / 4 + 4096 {
            out.shrink_to_fit();
        }
        out
    } else {
        raw
    };
    Some(slice_file(name, buf))
}

/// Records of a file held whole in memory.
pub(super) fn slice_file(name: &str, buf: Vec<u8>) -> FileRecords {
    let head = &buf[..buf.len().min(1 << 16)];
    let format = match layout(head) {
        Layout::Ndjson => {
            let src: Box<dyn Read + Send> = Box::new(std::io::Cursor::new(buf));
            Format::Lines(Box::new(LineRecords::new(name, BufReader::new(src))))
        }
        Layout::Csv => Format::Csv(Box::new(csvlog::CsvRecords::new(
            name,
            Box::new(std::io::Cursor::new(buf)),
        ))),
        Layout::Json => Format::Slice(Box::new(SliceRecords::new(name, buf)), None),
    };
    FileRecords::new(name, format)
}

/// Reads one file (gzipped or not). `-` means standard input.
pub fn read_file(path: &Path) -> FileRecords {
    let name = path.display().to_string();
    if name == "-" {
        return read_stream("<stdin>", Box::new(std::io::stdin()));
    }
    match File::open(path) {
        Ok(mut f) => {
            let meta = f.metadata().ok();
            let len = meta.as_ref().map_or(0, |m| m.len() as usize);
            if meta.is_some_and(|m| m.is_file()) && len <= SMALL_FILE_BYTES {
                let mut raw = Vec::with_capacity(len);
                if let Err(e) = (&mut f).take(len as u64).read_to_end(&mut raw) {
                    return FileRecords::failed(
                        &name,
                        Diagnostic::error(kinds::UNREADABLE, &name, e.to_string()),
                    );
                }
                if let Some(r) = read_small(&name, raw) {
                    return r;
                }
                // Decompresses past a window: read it as a stream instead.
                match File::open(path) {
                    Ok(f) => return read_stream_sized(&name, Box::new(f), 0, WINDOW_BYTES),
                    Err(e) => {
                        return FileRecords::failed(
                            &name,
                            Diagnostic::error(kinds::UNREADABLE, &name, e.to_string()),
                        );
                    }
                }
            }
            read_stream_sized(&name, Box::new(f), len, WINDOW_BYTES)
        }
        Err(e) => FileRecords::failed(
            &name,
            Diagnostic::error(kinds::UNREADABLE, &name, e.to_string()),
        ),
    }
}

/// Reads a file, `-` (stdin) or a directory tree (merged in event-time order).
pub fn read_path(path: &Path) -> Box<dyn Iterator<Item = ReadItem> + Send> {
    if path.is_dir() {
        Box::new(DirRecords::new(path))
    } else {
        Box::new(read_file(path))
    }
}

/// Reads several paths (files or directories) merged in event-time order.
pub fn read_paths(paths: &[PathBuf]) -> Box<dyn Iterator<Item = ReadItem> + Send> {
    if paths.len() == 1 {
        return read_path(&paths[0]);
    }
    let (files, diags) = list_files(paths);
    Box::new(DirRecords::from_files(files, diags))
}

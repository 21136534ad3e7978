//! Input readers: CloudTrail files as delivered to S3 (gzipped `{"Records":[…]}`),
//! JSON arrays, single objects, concatenated objects, NDJSON (including Logstash
//! exports with `@timestamp`), stdin, and directory trees merged in event-time order.
//!
//! Every reader yields `Result<Event, Diagnostic>`: a bad record, a truncated gzip
//! stream or an unreadable file becomes a diagnostic naming the file and position, and
//! reading goes on. Records are delimited by a byte-level scanner (string- and
//! escape-aware brace matching), so one invalid record is skipped on its own instead of
//! failing the whole file.
//!
//! Memory: NDJSON is streamed line by line. Array and `Records` files are read in 32 MiB
//! windows (a plain file up to 256 MiB in one piece), the incomplete record at the end
//! of a window carried into the next, so a file of any size is read whole in bounded
//! memory; events keep their record text as ranges of the window they came from.
//! Directory merging keeps only the files whose time ranges overlap open at once.
//! [`DirRecords::from_files_parallel`] adds worker threads that read and parse the next
//! few files (one per worker plus one) in merge order and hand over parsed records in
//! chunks of 256 while they work; the merge, and so every item and its order, is
//! unchanged.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

use flate2::read::MultiGzDecoder;
use keytrail_types::Diagnostic;

pub mod csvlog;

use crate::event::{Event, RecordError};
use crate::json::{string_end, value_end};
use crate::time::parse_rfc3339_ms;

/// Largest single record (decompressed): a record that does not end within this many
/// bytes is reported as truncated and reading stops.
pub const MAX_RECORD_BYTES: u64 = 64 << 20;

/// Array and `Records` files are read in windows of this many bytes (a file up to
/// [`WHOLE_FILE_BYTES`] with a known size is read in one piece): memory per file stays
/// bounded however large the file, and nothing past a fixed size is dropped.
const WINDOW_BYTES: usize = 32 << 20;

/// Plain files up to this size are read into memory in one piece.
const WHOLE_FILE_BYTES: usize = 256 << 20;

/// First allocation for a stream of unknown length (a gzipped file): larger contents
/// grow the buffer as they are read. Below the allocator's mmap threshold, so the
/// thousands of small files of an S3 tree cost no `mmap`/`munmap` each.
const FIRST_READ_BYTES: usize = 64 << 10;

/// One item from a reader.
pub type ReadItem = Result<Event, Diagnostic>;

/// Diagnostic kinds produced by readers (stable strings).
pub mod kinds {
    /// A record that is not valid JSON or not an object; skipped.
    pub const INVALID_RECORD: &str = "invalid_record";
    /// A record without a usable time; skipped.
    pub const MISSING_TIME: &str = "missing_time";
    /// A file that ends in the middle of a record or gzip stream.
    pub const TRUNCATED: &str = "truncated";
    /// A file that could not be opened or read.
    pub const UNREADABLE: &str = "unreadable";
    /// Bytes between records that are not JSON; skipped.
    pub const GARBAGE: &str = "garbage";
    /// A file whose records could not be read [`super::MAX_BAD_RUN`] times in a row;
    /// the rest of it is skipped.
    pub const NOT_A_LOG: &str = "not_a_log";
}

fn record_diag(name: &str, line: u64, err: RecordError) -> Diagnostic {
    let kind = match err {
        RecordError::MissingTime => kinds::MISSING_TIME,
        _ => kinds::INVALID_RECORD,
    };
    Diagnostic::error(kind, name, format!("skipped record: {err}")).at(Some(line), None)
}

/// The stream with gzip decompressed when its magic bytes say so, or the error that
/// stopped reading its first bytes.
fn maybe_gunzip(mut r: Box<dyn Read + Send>) -> Result<Box<dyn Read + Send>, std::io::Error> {
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

/// Length of an incomplete UTF-8 sequence at the end of `b` (0 when `b` ends on a
/// character boundary), so a window can stop before it.
fn utf8_partial_tail(b: &[u8]) -> usize {
    for back in 1..=b.len().min(3) {
        let c = b[b.len() - back];
        if c & 0xC0 == 0x80 {
            continue; // continuation byte
        }
        let need = match c {
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => return 0,
        };
        return if need > back { back } else { 0 };
    }
    0
}

/// Whether a line starts a wrapper object around records: CloudTrail's `{"Records":[…]}`
/// or `aws cloudtrail lookup-events` output `{"Events":[…]}`.
fn is_wrapper(line: &[u8]) -> bool {
    WRAPPER_KEYS.iter().any(|k| {
        line.strip_prefix(b"{\"")
            .and_then(|l| l.strip_prefix(*k))
            .is_some_and(|l| l.starts_with(b"\""))
    })
}

/// Members whose array holds the records: CloudTrail's `Records`, `aws cloudtrail
/// lookup-events`'s `Events`, and `aws logs filter-log-events`'s `events` (each record a
/// JSON string in `message`).
const WRAPPER_KEYS: [&[u8]; 3] = [b"Records", b"Events", b"events"];

/// The JSON part of a line exported from CloudWatch Logs (`<timestamp> <message>`): the
/// line after a leading RFC 3339 timestamp, when there is one; else the line.
fn strip_time_prefix(line: &[u8]) -> &[u8] {
    if !line.first().is_some_and(u8::is_ascii_digit) {
        return line;
    }
    let Some(sp) = line.iter().position(|&c| c == b' ' || c == b'\t') else {
        return line;
    };
    let (ts, rest) = line.split_at(sp);
    let rest = rest.trim_ascii_start();
    let is_time = std::str::from_utf8(ts)
        .ok()
        .and_then(parse_rfc3339_ms)
        .is_some();
    if rest.starts_with(b"{") && is_time {
        rest
    } else {
        line
    }
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\n' | b'\r' | b'\t' | b',') {
        i += 1;
    }
    // A UTF-8 byte-order mark at the start of a file.
    if b[i..].starts_with(&[0xef, 0xbb, 0xbf]) {
        return skip_ws(b, i + 3);
    }
    i
}

fn line_of(b: &[u8], offset: usize) -> u64 {
    1 + b[..offset.min(b.len())]
        .iter()
        .filter(|&&c| c == b'\n')
        .count() as u64
}

/// A file's bytes: text when valid UTF-8 (checked once), else raw bytes.
enum Data {
    /// Shared with the events parsed from it (they keep their record text here).
    Text(Arc<String>),
    Bytes(Vec<u8>),
}

impl Data {
    fn new(buf: Vec<u8>) -> Self {
        match String::from_utf8(buf) {
            Ok(t) => Data::Text(Arc::new(t)),
            Err(e) => Data::Bytes(e.into_bytes()),
        }
    }
    fn bytes(&self) -> &[u8] {
        match self {
            Data::Text(t) => t.as_bytes(),
            Data::Bytes(v) => v,
        }
    }
}

/// Records of one in-memory file: arrays, `{"Records":[…]}` wrappers, single and
/// concatenated objects.
pub struct SliceRecords {
    name: String,
    /// The file bytes, as text when they are valid UTF-8 (then records are parsed
    /// without validating each string again).
    buf: Data,
    pos: usize,
    /// Inside an array whose elements are records; `Some(true)` when the array is the
    /// `Records` member of a wrapper object (its closing `}` must be skipped).
    in_array: Option<bool>,
    /// Skipping the rest of a `Records` wrapper object: its nesting depth so far.
    skip_depth: usize,
    pending: Option<Diagnostic>,
    done: bool,
    /// The rest of the stream when the file is read in windows (`None`: all of it is
    /// in `buf`).
    src: Option<Box<dyn Read + Send>>,
    /// Bytes of an incomplete UTF-8 character held back from the last window.
    utf8_tail: Vec<u8>,
    /// Lines before the start of `buf` (windows already consumed).
    base_line: u64,
    /// Why the stream stopped early (a read error), reported after its records.
    end_diag: Option<Diagnostic>,
    /// Bytes read per window.
    window: usize,
}

impl SliceRecords {
    /// Records in `buf`, named `name` in diagnostics.
    pub fn new(name: impl Into<String>, buf: Vec<u8>) -> Self {
        SliceRecords {
            name: name.into(),
            buf: Data::new(buf),
            pos: 0,
            in_array: None,
            skip_depth: 0,
            pending: None,
            done: false,
            src: None,
            utf8_tail: Vec::new(),
            base_line: 0,
            end_diag: None,
            window: WINDOW_BYTES,
        }
    }

    /// Records of a stream (gzip is decompressed), read in windows so memory does not
    /// grow with the stream. `size_hint` is the stream's length when known (a plain
    /// file's size): files up to 256 MiB are then read in one piece.
    pub fn streaming(
        name: impl Into<String>,
        reader: Box<dyn Read + Send>,
        size_hint: usize,
    ) -> Self {
        Self::streaming_in_windows(name, reader, size_hint, WINDOW_BYTES)
    }

    /// [`SliceRecords::streaming`] with windows of `window` bytes.
    fn streaming_in_windows(
        name: impl Into<String>,
        reader: Box<dyn Read + Send>,
        size_hint: usize,
        window: usize,
    ) -> Self {
        let mut r = SliceRecords::new(name, Vec::new());
        r.window = window.max(1);
        match maybe_gunzip(reader) {
            Ok(src) => {
                r.src = Some(src);
                let first = if size_hint > 0 && size_hint <= WHOLE_FILE_BYTES {
                    size_hint + 1
                } else {
                    r.window
                };
                r.refill(0, first);
            }
            Err(e) => {
                r.end_diag = Some(Diagnostic::error(kinds::UNREADABLE, &r.name, e.to_string()));
            }
        }
        r
    }

    /// Reads up to `want` more bytes of the stream after `buf[keep..]` (the part not
    /// consumed yet); the read position moves to the start of the kept part. Returns
    /// false (and changes nothing) at the end of the stream.
    fn refill(&mut self, keep: usize, want: usize) -> bool {
        let Some(src) = self.src.as_mut() else {
            return false;
        };
        let old = self.buf.bytes();
        let kept = old.len() - keep;
        if kept as u64 >= MAX_RECORD_BYTES {
            self.src = None;
            self.end_diag = Some(
                Diagnostic::error(
                    kinds::TRUNCATED,
                    &self.name,
                    format!(
                        "record larger than {MAX_RECORD_BYTES} bytes; the rest of the file is skipped"
                    ),
                )
                .at(Some(self.base_line + line_of(old, keep)), None),
            );
            return false;
        }
        // Sized for what is read, not for the window: most delivered files are a few
        // kilobytes, and a buffer stays alive as long as any event parsed from it, so
        // a window-sized buffer per file would hold gigabytes across thousands of
        // files. A known size is allocated exactly; otherwise the buffer grows as the
        // stream is read (large buffers grow by remapping, not copying) and is trimmed.
        let head = kept + self.utf8_tail.len();
        let mut v = Vec::with_capacity(head + want.min(FIRST_READ_BYTES));
        v.extend_from_slice(&old[keep..]);
        v.append(&mut self.utf8_tail);
        let before = v.len();
        let res = src.take(want as u64).read_to_end(&mut v);
        let read = v.len() - before;
        if v.capacity() - v.len() > v.len() / 4 + 4096 {
            v.shrink_to_fit();
        }
        match res {
            Err(e) => {
                self.src = None;
                self.end_diag = Some(Diagnostic::error(
                    kinds::TRUNCATED,
                    &self.name,
                    format!("read stopped: {e}"),
                ));
            }
            Ok(_) if read < want => self.src = None,
            Ok(_) => {
                let partial = utf8_partial_tail(&v);
                self.utf8_tail = v.split_off(v.len() - partial);
            }
        }
        if read == 0 && self.src.is_none() && self.utf8_tail.is_empty() && v.len() == kept {
            // Nothing new: keep the current window as it is.
            return false;
        }
        self.base_line += line_of(old, keep) - 1;
        self.buf = Data::new(v);
        self.pos = 0;
        true
    }

    /// Line number (1-based, in the whole stream) of byte `offset` of the window.
    fn line(&self, offset: usize) -> u64 {
        self.base_line + line_of(self.buf.bytes(), offset)
    }

    fn truncated(&mut self, at: usize) -> Option<ReadItem> {
        self.done = true;
        Some(Err(Diagnostic::error(
            kinds::TRUNCATED,
            &self.name,
            "file ends inside a record; the partial record is skipped",
        )
        .at(Some(self.line(at)), None)))
    }

    fn emit(&mut self, s: usize, e: usize) -> ReadItem {
        let b = self.buf.bytes();
        let line = self.line(s);
        match std::str::from_utf8(&b[s..e]) {
            Ok(text) => Event::parse_str(text).map_err(|err| record_diag(&self.name, line, err)),
            Err(err) => Err(record_diag(
                &self.name,
                line,
                RecordError::InvalidJson(err.to_string()),
            )),
        }
    }

    /// Inspects an object at `start`: if it has a `Records` (or `lookup-events`
    /// `Events`) array member, positions
    /// the reader inside it and returns `None`; else returns the object's end.
    fn wrapper_records(&self, start: usize) -> Result<Option<usize>, usize> {
        let b = self.buf.bytes();
        let mut i = skip_ws(b, start + 1);
        loop {
            match b.get(i) {
                None => return Err(b.len()),
                Some(b'}') => return Ok(Some(i + 1)),
                Some(b'"') => {}
                Some(_) => return value_end(b, start).map(Some),
            }
            let kend = string_end(b, i)?;
            let key = &b[i + 1..kend - 1];
            let mut j = kend;
            while j < b.len() && b[j].is_ascii_whitespace() {
                j += 1;
            }
            if b.get(j) != Some(&b':') {
                return value_end(b, start).map(Some);
            }
            j += 1;
            while j < b.len() && b[j].is_ascii_whitespace() {
                j += 1;
            }
            if WRAPPER_KEYS.contains(&key) && b.get(j) == Some(&b'[') {
                return Ok(None);
            }
            if matches!(b.get(j), Some(b'}' | b']' | b',')) {
                // A member without a value: the object is one invalid record.
                return value_end(b, start).map(Some);
            }
            let vend = value_end(b, j)?;
            i = skip_ws(b, vend);
        }
    }

    fn records_array_start(&self, start: usize) -> usize {
        // Position just after the `[` of the Records member (wrapper_records checked it exists).
        let b = self.buf.bytes();
        let mut i = skip_ws(b, start + 1);
        loop {
            let kend = string_end(b, i).unwrap_or(b.len());
            let key = &b[i + 1..kend.saturating_sub(1).max(i + 1)];
            let mut j = kend;
            while j < b.len() && (b[j].is_ascii_whitespace() || b[j] == b':') {
                j += 1;
            }
            if WRAPPER_KEYS.contains(&key) && b.get(j) == Some(&b'[') {
                return j + 1;
            }
            let vend = value_end(b, j).unwrap_or(b.len());
            i = skip_ws(b, vend);
        }
    }
}

impl Iterator for SliceRecords {
    type Item = ReadItem;

    fn next(&mut self) -> Option<ReadItem> {
        if let Some(d) = self.pending.take() {
            return Some(Err(d));
        }
        loop {
            if self.done {
                return self.end_diag.take().map(Err);
            }
            if self.skip_depth > 0 {
                // Skip the rest of a `Records` wrapper object (other members, closing
                // brace), possibly across windows.
                let b = self.buf.bytes();
                let mut j = self.pos;
                while j < b.len() && self.skip_depth > 0 {
                    match b[j] {
                        b'"' => match string_end(b, j) {
                            Ok(e) => {
                                j = e;
                                continue;
                            }
                            Err(_) => break,
                        },
                        b'{' | b'[' => self.skip_depth += 1,
                        b'}' | b']' => self.skip_depth -= 1,
                        _ => {}
                    }
                    j += 1;
                }
                self.pos = j;
                if self.skip_depth > 0 && !self.refill(j, self.window) {
                    self.skip_depth = 0;
                    self.pos = self.buf.bytes().len();
                }
                continue;
            }
            let b = self.buf.bytes();
            let len = b.len();
            let i = skip_ws(b, self.pos);
            if i >= len {
                if self.refill(i.min(len), self.window) {
                    continue;
                }
                self.done = true;
                if self.in_array.is_some() {
                    return self.truncated(len);
                }
                return self.end_diag.take().map(Err);
            }
            if let Some(wrapper) = self.in_array {
                if b[i] == b']' {
                    self.in_array = None;
                    self.pos = i + 1;
                    if wrapper {
                        self.skip_depth = 1;
                    }
                    continue;
                }
                let fast = match &self.buf {
                    _ if b[i] != b'{' => None,
                    Data::Text(t) => Event::parse_prefix_shared(t, i),
                    Data::Bytes(_) => Event::parse_prefix(&b[i..]),
                };
                if let Some((res, n)) = fast {
                    self.pos = i + n;
                    return Some(res.map_err(|err| record_diag(&self.name, self.line(i), err)));
                }
                match value_end(b, i) {
                    Ok(e) => {
                        self.pos = e;
                        return Some(self.emit(i, e));
                    }
                    Err(at) => {
                        if self.refill(i, self.window) {
                            continue;
                        }
                        return self.truncated(at.min(i));
                    }
                }
            }
            match b[i] {
                b'[' => {
                    self.in_array = Some(false);
                    self.pos = i + 1;
                }
                b'{' => match self.wrapper_records(i) {
                    Ok(None) => {
                        self.pos = self.records_array_start(i);
                        self.in_array = Some(true);
                    }
                    Ok(Some(e)) => {
                        self.pos = e;
                        return Some(self.emit(i, e));
                    }
                    Err(_) => {
                        if self.refill(i, self.window) {
                            continue;
                        }
                        return self.truncated(i);
                    }
                },
                _ => {
                    // Not JSON: skip to the next line (read ahead up to 1 MiB to find
                    // it; a longer run of garbage is skipped a window at a time).
                    let nl = b[i..].iter().position(|&c| c == b'\n');
                    if nl.is_none() && len - i < (1 << 20) && self.refill(i, self.window) {
                        continue;
                    }
                    let b = self.buf.bytes();
                    let e = nl.map_or(b.len(), |p| i + p + 1);
                    let line = self.line(i);
                    self.pos = e;
                    return Some(Err(Diagnostic::error(
                        kinds::GARBAGE,
                        &self.name,
                        "skipped bytes that are not a JSON record",
                    )
                    .at(Some(line), None)));
                }
            }
        }
    }
}

/// NDJSON records streamed line by line (one record per line).
pub struct LineRecords<R: BufRead> {
    name: String,
    reader: R,
    line: u64,
    buf: Vec<u8>,
    queue: std::collections::VecDeque<ReadItem>,
    done: bool,
}

impl<R: BufRead> LineRecords<R> {
    /// Records of the NDJSON stream `reader`.
    pub fn new(name: impl Into<String>, reader: R) -> Self {
        LineRecords {
            name: name.into(),
            reader,
            line: 0,
            buf: Vec::with_capacity(4096),
            queue: Default::default(),
            done: false,
        }
    }
}

impl<R: BufRead> Iterator for LineRecords<R> {
    type Item = ReadItem;
    fn next(&mut self) -> Option<ReadItem> {
        loop {
            if let Some(x) = self.queue.pop_front() {
                return Some(x);
            }
            if self.done {
                return None;
            }
            self.buf.clear();
            if self.buf.capacity() > 1 << 20 {
                self.buf = Vec::with_capacity(4096);
            }
            match (&mut self.reader)
                .take(MAX_RECORD_BYTES + 1)
                .read_until(b'\n', &mut self.buf)
            {
                Ok(0) => {
                    self.done = true;
                    return None;
                }
                Ok(n) if n as u64 > MAX_RECORD_BYTES && !self.buf.ends_with(b"\n") => {
                    // A line longer than any record: skip to its end without keeping it.
                    self.line += 1;
                    let diag = Diagnostic::error(
                        kinds::INVALID_RECORD,
                        &self.name,
                        format!("line longer than {MAX_RECORD_BYTES} bytes; skipped"),
                    )
                    .at(Some(self.line), None);
                    if let Err(e) = skip_line(&mut self.reader) {
                        self.done = true;
                        self.queue.push_back(Err(Diagnostic::error(
                            kinds::TRUNCATED,
                            &self.name,
                            format!("read stopped: {e}"),
                        )));
                    }
                    return Some(Err(diag));
                }
                Ok(_) => {}
                Err(e) => {
                    self.done = true;
                    return Some(Err(Diagnostic::error(
                        kinds::TRUNCATED,
                        &self.name,
                        format!("read stopped: {e}"),
                    )
                    .at(Some(self.line + 1), None)));
                }
            }
            self.line += 1;
            let t = strip_time_prefix(self.buf.trim_ascii());
            if t.is_empty() {
                continue;
            }
            if is_wrapper(t) || t.starts_with(b"[") {
                // A whole CloudTrail file on one line inside an NDJSON stream.
                let inner = SliceRecords::new(format!("{}:{}", self.name, self.line), t.to_vec());
                self.queue.extend(inner);
                continue;
            }
            let line = self.line;
            return Some(match std::str::from_utf8(t) {
                Ok(text) => Event::parse_str(text).map_err(|e| record_diag(&self.name, line, e)),
                Err(e) => Err(record_diag(
                    &self.name,
                    line,
                    RecordError::InvalidJson(e.to_string()),
                )),
            });
        }
    }
}

/// Consumes the rest of the current line (up to and including its newline) without
/// keeping it.
fn skip_line(r: &mut impl BufRead) -> std::io::Result<()> {
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Ok(());
        }
        if let Some(p) = memchr::memchr(b'\n', buf) {
            r.consume(p + 1);
            return Ok(());
        }
        let n = buf.len();
        r.consume(n);
    }
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
}

/// How a file's records are read.
enum Format {
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
    fn new(name: &str, format: Format) -> Self {
        FileRecords {
            name: name.to_string(),
            format,
            bad_run: 0,
        }
    }

    fn failed(name: &str, d: Diagnostic) -> Self {
        FileRecords::new(name, Format::Failed(Some(d)))
    }

    /// Whether the file could not be read at all and its one diagnostic was taken.
    fn is_spent_failure(&self) -> bool {
        matches!(self.format, Format::Failed(None))
    }
}

impl Iterator for FileRecords {
    type Item = ReadItem;
    fn next(&mut self) -> Option<ReadItem> {
        let item = match &mut self.format {
            Format::Slice(s, tail) => s.next().or_else(|| tail.take().map(Err)),
            Format::Lines(l) => l.next(),
            Format::Csv(c) => c.next(),
            Format::Failed(d) | Format::Abandoned(d) => return d.take().map(Err),
        }?;
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

/// Reads records from any stream (a file, stdin). `name` names it in diagnostics.
///
/// Gzip is detected by its magic bytes. A stream whose first line is a complete JSON
/// object other than a `Records` wrapper is NDJSON and is streamed; anything else is
/// read in windows and split into records ([`SliceRecords::streaming`]).
pub fn read_stream(name: &str, reader: Box<dyn Read + Send>) -> FileRecords {
    read_stream_sized(name, reader, 0, WINDOW_BYTES)
}

/// [`read_stream`] with the stream's expected length (a plain file's size, 0 when
/// unknown), so whole files are read into a buffer of the right size in one copy, and
/// the window size for array files read in windows.
fn read_stream_sized(
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
enum Layout {
    /// One record per line.
    Ndjson,
    /// CSV with a CloudTrail header.
    Csv,
    /// Arrays, `Records` wrappers, objects (split by the byte scanner).
    Json,
}

fn layout(head: &[u8]) -> Layout {
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

fn sniff(
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
const SMALL_FILE_BYTES: usize = 1 << 20;

/// Records of a whole small file in memory (gzip is decompressed); `None` when it
/// decompresses to more than a window (then it is read as a stream).
fn read_small(name: &str, raw: Vec<u8>) -> Option<FileRecords> {
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
fn slice_file(name: &str, buf: Vec<u8>) -> FileRecords {
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
    let mut files = Vec::new();
    let mut diags = Vec::new();
    for p in paths {
        if p.is_dir() {
            collect_files(p, &mut files, &mut diags);
        } else {
            files.push(p.clone());
        }
    }
    Box::new(DirRecords::from_files(files, diags))
}

/// Lists the log files under `paths` (directories are walked; files are kept as given),
/// with a diagnostic for each directory that cannot be read. Used to split files
/// between threads ([`crate::engine::run_parallel`]).
pub fn list_files(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<Diagnostic>) {
    let mut files = Vec::new();
    let mut diags = Vec::new();
    for p in paths {
        if p.is_dir() {
            collect_files(p, &mut files, &mut diags);
        } else {
            files.push(p.clone());
        }
    }
    (files, diags)
}

/// Time encoded in a CloudTrail object key: `…_20240101T0005Z_…` or a
/// `YYYY/MM/DD` directory path. Milliseconds since the epoch.
pub fn key_time(path: &Path) -> Option<i64> {
    let s = path.to_string_lossy();
    let b = s.as_bytes();
    // 20240101T0005Z
    for i in 0..b.len().saturating_sub(13) {
        let w = &b[i..i + 14];
        if w[8] == b'T'
            && w[13] == b'Z'
            && w[..8].iter().all(u8::is_ascii_digit)
            && w[9..13].iter().all(u8::is_ascii_digit)
        {
            let t = format!(
                "{}-{}-{}T{}:{}:00Z",
                &s[i..i + 4],
                &s[i + 4..i + 6],
                &s[i + 6..i + 8],
                &s[i + 9..i + 11],
                &s[i + 11..i + 13]
            );
            if let Some(ms) = parse_rfc3339_ms(&t) {
                return Some(ms);
            }
        }
    }
    // …/YYYY/MM/DD/…
    let parts: Vec<&str> = s.split(['/', '\\']).collect();
    for w in parts.windows(3) {
        if w[0].len() == 4
            && w[1].len() == 2
            && w[2].len() == 2
            && w.iter().all(|p| p.bytes().all(|c| c.is_ascii_digit()))
            && let Some(ms) = parse_rfc3339_ms(&format!("{}-{}-{}T00:00:00Z", w[0], w[1], w[2]))
        {
            return Some(ms);
        }
    }
    None
}

/// `objects` in merge order: by the time in their name ([`key_time`]; none first),
/// then by name compared as a path, as [`DirRecords::from_files`] orders files.
pub fn merge_order(objects: Vec<LogObject>) -> Vec<LogObject> {
    let mut keyed: Vec<(i64, PathBuf, LogObject)> = objects
        .into_iter()
        .map(|o| (o.key_time().unwrap_or(i64::MIN), PathBuf::from(&o.name), o))
        .collect();
    keyed.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    keyed.into_iter().map(|(_, _, o)| o).collect()
}

/// Whether a file name is one of the log files a directory walk reads (`.json`,
/// `.json.gz`, `.jsonl`, `.ndjson`, `.gz`, `.log` and their gzipped forms; not hidden).
pub fn is_log_name(fname: &str) -> bool {
    if fname.starts_with('.') {
        return false;
    }
    let lower = fname.to_ascii_lowercase();
    [
        ".json",
        ".json.gz",
        ".jsonl",
        ".ndjson",
        ".gz",
        ".log",
        ".jsonl.gz",
        ".ndjson.gz",
    ]
    .iter()
    .any(|ext| lower.ends_with(ext))
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>, diags: &mut Vec<Diagnostic>) {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) => {
            diags.push(Diagnostic::error(
                kinds::UNREADABLE,
                dir.display().to_string(),
                e.to_string(),
            ));
            return;
        }
    };
    // The entry's type comes from the directory listing (no `stat` per file); a
    // symlink is followed to see what it points at.
    let mut entries: Vec<(PathBuf, bool)> = rd
        .filter_map(|e| {
            let e = e.ok()?;
            let dir = match e.file_type() {
                Ok(t) if t.is_symlink() => e.path().is_dir(),
                Ok(t) => t.is_dir(),
                Err(_) => e.path().is_dir(),
            };
            Some((e.path(), dir))
        })
        .collect();
    entries.sort();
    for (p, is_dir) in entries {
        let fname = p
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        if fname.starts_with('.') || fname == "CloudTrail-Digest" {
            continue;
        }
        if is_dir {
            collect_files(&p, out, diags);
        } else if is_log_name(&fname) {
            out.push(p);
        }
    }
}

/// Time of the first record in a file, for ordering files without a key time.
/// Reads only as far as the first record (1 MiB windows, not the whole file).
fn first_event_time(path: &Path) -> Option<i64> {
    let f = File::open(path).ok()?;
    read_stream_sized(&path.display().to_string(), Box::new(f), 0, 1 << 20)
        .find_map(|r| r.ok())
        .map(|e| e.time_ms)
}

/// A log read through a [`Fetch`] instead of from the file system (an S3 object).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogObject {
    /// Its name in diagnostics and in the `--state` file (`s3://bucket/key`); the
    /// time in it ([`key_time`]) orders the merge as a file path's does.
    pub name: String,
    /// Its size in bytes as stored (a changed size means a changed object).
    pub size: u64,
}

impl LogObject {
    /// The time in its name ([`key_time`]), in milliseconds.
    pub fn key_time(&self) -> Option<i64> {
        key_time(Path::new(&self.name))
    }
}

/// Opens the objects of a merge ([`DirRecords::from_objects`]); the network side of
/// a remote source lives in its implementation, not here.
pub trait Fetch: Send + Sync {
    /// Told once, before any [`Fetch::open`], which objects will be opened and in
    /// which order, so that it can fetch ahead.
    fn plan(&self, objects: &[LogObject]);
    /// Object `idx` of the plan as a stream (gzip is recognised as in files), or why
    /// it cannot be read. Called once per object, roughly in plan order (parse
    /// workers open the next few objects at once).
    fn open(&self, idx: usize) -> Result<Box<dyn Read + Send>, String>;
}

/// What a merge reads: local files or fetched objects, in merge order.
enum Inputs {
    Files(Vec<PathBuf>),
    Objects(Vec<LogObject>, Arc<dyn Fetch>),
}

impl Inputs {
    fn len(&self) -> usize {
        match self {
            Inputs::Files(f) => f.len(),
            Inputs::Objects(o, _) => o.len(),
        }
    }

    /// The records of input `idx`.
    fn read(&self, idx: usize) -> FileRecords {
        match self {
            Inputs::Files(f) => read_file(&f[idx]),
            Inputs::Objects(o, fetch) => {
                let name = &o[idx].name;
                match fetch.open(idx) {
                    Ok(r) => read_stream_sized(
                        name,
                        r,
                        usize::try_from(o[idx].size).unwrap_or(0),
                        WINDOW_BYTES,
                    ),
                    Err(e) => {
                        FileRecords::failed(name, Diagnostic::error(kinds::UNREADABLE, name, e))
                    }
                }
            }
        }
    }
}

struct OpenFile {
    records: Source,
    head: Option<Event>,
    /// The worker that parsed the file (`usize::MAX` when read on this thread).
    worker: usize,
}

/// Where an open file's records come from.
enum Source {
    /// Read and parsed on the merging thread.
    Live(FileRecords),
    /// Parsed by a worker, received in chunks as they are parsed.
    Streamed(Stream),
    /// Finished (the slot can be reused).
    Closed,
}

impl Iterator for Source {
    type Item = ReadItem;
    fn next(&mut self) -> Option<ReadItem> {
        match self {
            Source::Live(r) => r.next(),
            Source::Streamed(s) => s.next(),
            Source::Closed => None,
        }
    }
}

impl Source {
    /// Whether an exhausted file's slot may be reused: closed by the merge, or a file
    /// that could not be read (the same slots as without workers, so events with
    /// equal times keep their order).
    fn reusable(&self) -> bool {
        match self {
            Source::Closed => true,
            Source::Live(r) if r.is_spent_failure() => true,
            // Asked only once the file is exhausted.
            Source::Streamed(s) => match &s.end {
                Some((Some(r), _)) => r.is_spent_failure(),
                Some((None, failed)) => *failed,
                None => false,
            },
            Source::Live(_) => false,
        }
    }
}

/// Per-event work a parse worker does after parsing (see
/// [`DirRecords::from_files_enriched`]).
pub type Enrich = Arc<dyn Fn(&mut Event) + Send + Sync>;

/// Processed events handed back to a parse worker at a time.
const RECYCLE_BATCH: usize = 1024;

/// Most records a worker parses ahead from one file; the rest of a larger file is
/// parsed by the merging thread as it goes, so memory stays bounded.
const PREFETCH_MAX_ITEMS: usize = 1 << 17;

/// Most files parsed ahead of the merge.
const MAX_FILES_AHEAD: usize = 256;

/// Parsed items waiting for the merge past which workers take no further file (beyond
/// one file each).
const MAX_ITEMS_AHEAD: usize = 1 << 13;

/// Items per chunk of a parsed file: the merge consumes a file while it is being
/// parsed, so events are still in cache when the engine sees them.
const CHUNK: usize = 256;

/// How a parsed file ends: the rest of a file too large to parse ahead, and whether
/// the file could not be read (as `FileRecords::Failed`).
type End = (Option<FileRecords>, bool);

/// A file taken by a worker: its parsed chunks so far, and its end once parsed.
struct Slot {
    worker: usize,
    chunks: std::collections::VecDeque<Vec<ReadItem>>,
    end: Option<End>,
}

/// The merge's side of a file parsed by a worker.
struct Stream {
    state: Arc<(Mutex<PrefetchState>, Condvar)>,
    idx: usize,
    cur: std::vec::IntoIter<ReadItem>,
    end: Option<End>,
}

impl Stream {
    fn next(&mut self) -> Option<ReadItem> {
        loop {
            if let Some(it) = self.cur.next() {
                return Some(it);
            }
            if let Some((rest, _)) = &mut self.end {
                return rest.as_mut().and_then(Iterator::next);
            }
            let (lock, cv) = &*self.state;
            let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                let slot = st.ready.get_mut(&self.idx)?;
                if let Some(chunk) = slot.chunks.pop_front() {
                    st.buffered -= chunk.len();
                    self.cur = chunk.into_iter();
                    cv.notify_all();
                    break;
                }
                if slot.end.is_some() {
                    self.end = st.ready.remove(&self.idx).and_then(|s| s.end);
                    break;
                }
                st = cv.wait(st).unwrap_or_else(|e| e.into_inner());
            }
        }
    }
}

#[derive(Default)]
struct PrefetchState {
    /// Next file index a worker will take.
    next: usize,
    /// Files taken by the merge so far.
    taken: usize,
    /// Number of files.
    total: usize,
    ready: std::collections::HashMap<usize, Slot>,
    /// Parsed items waiting for the merge, across files.
    buffered: usize,
    /// Events the merge is done with, dropped by the workers that allocated them
    /// (freeing memory on the allocating threads keeps their allocator caches warm).
    graveyards: Vec<Vec<Vec<Event>>>,
    stop: bool,
}

/// Worker threads that read, decompress and parse files in merge order, at most
/// `lookahead` files ahead of the merge.
struct Prefetch {
    state: Arc<(Mutex<PrefetchState>, Condvar)>,
    workers: Vec<std::thread::JoinHandle<()>>,
}

impl Prefetch {
    fn start(paths: Arc<Inputs>, workers: usize, max_items: usize, enrich: Option<Enrich>) -> Self {
        let state: Arc<(Mutex<PrefetchState>, Condvar)> = Arc::new((
            Mutex::new(PrefetchState {
                total: paths.len(),
                graveyards: (0..workers).map(|_| Vec::new()).collect(),
                ..PrefetchState::default()
            }),
            Condvar::new(),
        ));
        // Each worker may always be one file ahead; beyond that, workers go on to
        // further files while few parsed items wait, so small files (a delivered
        // CloudTrail file holds a few dozen records) do not make the merge and the
        // workers wait for each other file by file.
        let lookahead = workers + 1;
        let handles = (0..workers)
            .map(|worker| {
                let state = state.clone();
                let paths = paths.clone();
                let enrich = enrich.clone();
                std::thread::spawn(move || {
                    let (lock, cv) = &*state;
                    loop {
                        let idx = {
                            let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
                            while !st.stop
                                && st.next < paths.len()
                                && st.next >= st.taken + lookahead
                                && (st.next >= st.taken + MAX_FILES_AHEAD
                                    || st.buffered >= MAX_ITEMS_AHEAD)
                            {
                                st = cv.wait(st).unwrap_or_else(|e| e.into_inner());
                            }
                            if st.stop || st.next >= paths.len() {
                                return;
                            }
                            st.next += 1;
                            let idx = st.next - 1;
                            st.ready.insert(
                                idx,
                                Slot {
                                    worker,
                                    chunks: Default::default(),
                                    end: None,
                                },
                            );
                            cv.notify_all();
                            (idx, std::mem::take(&mut st.graveyards[worker]))
                        };
                        let (idx, dead) = idx;
                        drop(dead);
                        let push = |chunk: Vec<ReadItem>, end: Option<End>| {
                            let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
                            let n = chunk.len();
                            if let Some(slot) = st.ready.get_mut(&idx) {
                                if !chunk.is_empty() {
                                    slot.chunks.push_back(chunk);
                                }
                                slot.end = end;
                                st.buffered += n;
                            }
                            cv.notify_all();
                        };
                        let mut records = paths.read(idx);
                        let mut chunk = Vec::with_capacity(CHUNK);
                        let mut n = 0;
                        let mut done = false;
                        while n < max_items {
                            match records.next() {
                                Some(mut it) => {
                                    if let (Ok(ev), Some(f)) = (&mut it, &enrich) {
                                        f(ev);
                                    }
                                    chunk.push(it);
                                    n += 1;
                                    if chunk.len() == CHUNK {
                                        push(
                                            std::mem::replace(
                                                &mut chunk,
                                                Vec::with_capacity(CHUNK),
                                            ),
                                            None,
                                        );
                                    }
                                }
                                None => {
                                    done = true;
                                    break;
                                }
                            }
                        }
                        let failed = records.is_spent_failure();
                        push(chunk, Some(((!done).then_some(records), failed)));
                    }
                })
            })
            .collect();
        Prefetch {
            state,
            workers: handles,
        }
    }

    /// Hands processed events to the workers to free (or frees them here when every
    /// file has been handed out, or when the workers are far behind).
    fn recycle(&self, worker: usize, events: Vec<Event>) {
        let (lock, _) = &*self.state;
        let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
        if st.next >= st.total || st.stop || st.graveyards.get(worker).is_none_or(|g| g.len() >= 4)
        {
            drop(st);
            drop(events);
            return;
        }
        st.graveyards[worker].push(events);
    }

    /// Opens file `idx` (files must be opened in order): waits until a worker has
    /// taken it and returns the worker's id and the stream of its records.
    fn take(&self, idx: usize) -> (usize, Stream) {
        let (lock, cv) = &*self.state;
        let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(slot) = st.ready.get(&idx) {
                let worker = slot.worker;
                st.taken = idx + 1;
                cv.notify_all();
                return (
                    worker,
                    Stream {
                        state: self.state.clone(),
                        idx,
                        cur: Vec::new().into_iter(),
                        end: None,
                    },
                );
            }
            st = cv.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        {
            let (lock, cv) = &*self.state;
            lock.lock().unwrap_or_else(|e| e.into_inner()).stop = true;
            cv.notify_all();
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// A directory tree read in event-time order: files are sorted by the time in their
/// S3 key (or their first record) and merged by event time with a heap, opening a file
/// only when the merge reaches its start time.
pub struct DirRecords {
    /// Key time of each input, in merge order.
    keys: Vec<i64>,
    inputs: Arc<Inputs>,
    next_file: usize,
    open: Vec<OpenFile>,
    heap: BinaryHeap<Reverse<(i64, usize)>>,
    pending: std::collections::VecDeque<Diagnostic>,
    prefetch: Option<Prefetch>,
    /// The worker that parsed the event last returned (`usize::MAX`: none).
    last_worker: usize,
    /// Returned events waiting to go back to their worker, per worker.
    dead: Vec<Vec<Event>>,
}

/// How far ahead of the merge head a file's key time may be before it is opened.
/// CloudTrail names a file by its delivery time, up to ~15 minutes after its events.
const OPEN_SLACK_MS: i64 = 20 * 60 * 1000;

impl DirRecords {
    /// Reads every log file under `dir`.
    pub fn new(dir: &Path) -> Self {
        let mut files = Vec::new();
        let mut diags = Vec::new();
        collect_files(dir, &mut files, &mut diags);
        Self::from_files(files, diags)
    }

    /// Merges the given files.
    pub fn from_files(files: Vec<PathBuf>, diags: Vec<Diagnostic>) -> Self {
        // One file needs no ordering (and no read ahead to find its first time).
        let single = files.len() == 1;
        let mut keyed: Vec<(i64, PathBuf)> = files
            .into_iter()
            .map(|p| {
                let key = if single {
                    None
                } else {
                    key_time(&p).or_else(|| first_event_time(&p))
                };
                (key.unwrap_or(i64::MIN), p)
            })
            .collect();
        keyed.sort();
        let (keys, files) = keyed.into_iter().unzip();
        Self::merging(keys, Inputs::Files(files), diags)
    }

    fn merging(keys: Vec<i64>, inputs: Inputs, diags: Vec<Diagnostic>) -> Self {
        DirRecords {
            keys,
            inputs: Arc::new(inputs),
            next_file: 0,
            open: Vec::new(),
            heap: BinaryHeap::new(),
            pending: diags.into(),
            prefetch: None,
            last_worker: usize::MAX,
            dead: Vec::new(),
        }
    }

    /// Merges objects opened by `fetch` (such as S3 objects), in the order and with
    /// the `workers` of [`DirRecords::from_files_enriched`]: objects are ordered by
    /// the time in their name (those without one first) then by name as paths, so
    /// objects named like the files of a directory tree give the same items in the
    /// same order.
    pub fn from_objects(
        objects: Vec<LogObject>,
        fetch: Arc<dyn Fetch>,
        diags: Vec<Diagnostic>,
        workers: usize,
        enrich: Option<Enrich>,
    ) -> Self {
        let objects = merge_order(objects);
        fetch.plan(&objects);
        let keys = objects
            .iter()
            .map(|o| o.key_time().unwrap_or(i64::MIN))
            .collect();
        let mut d = Self::merging(keys, Inputs::Objects(objects, fetch), diags);
        d.start_workers(workers, enrich);
        d
    }

    fn start_workers(&mut self, workers: usize, enrich: Option<Enrich>) {
        if workers > 0 && self.inputs.len() > 0 {
            self.prefetch = Some(Prefetch::start(
                self.inputs.clone(),
                workers,
                PREFETCH_MAX_ITEMS,
                enrich,
            ));
            self.dead = (0..workers).map(|_| Vec::new()).collect();
        }
    }

    /// Merges the given files like [`DirRecords::from_files`], with `workers` threads
    /// reading, decompressing and parsing files ahead of the merge (a few files ahead,
    /// in merge order). The items, their order and the diagnostics are the same as
    /// with [`DirRecords::from_files`].
    pub fn from_files_parallel(
        files: Vec<PathBuf>,
        diags: Vec<Diagnostic>,
        workers: usize,
    ) -> Self {
        Self::from_files_enriched(files, diags, workers, None)
    }

    /// [`DirRecords::from_files_parallel`] where the workers also run `enrich` on each
    /// event they parse (stateless per-event work done ahead of the merge, such as
    /// [`crate::sigma::SigmaRules::prematch`]). Events parsed on the merging thread
    /// (the tail of a file too large to parse ahead) are not enriched.
    pub fn from_files_enriched(
        files: Vec<PathBuf>,
        diags: Vec<Diagnostic>,
        workers: usize,
        enrich: Option<Enrich>,
    ) -> Self {
        let mut d = Self::from_files(files, diags);
        d.start_workers(workers, enrich);
        d
    }

    fn advance(&mut self, idx: usize) {
        let f = &mut self.open[idx];
        loop {
            match f.records.next() {
                Some(Ok(e)) => {
                    self.heap.push(Reverse((e.time_ms, idx)));
                    f.head = Some(e);
                    return;
                }
                Some(Err(d)) => self.pending.push_back(d),
                None => {
                    f.head = None;
                    return;
                }
            }
        }
    }

    /// Gives back the event last returned by `next` once the caller is done with it,
    /// so that the worker thread that parsed it frees it (freeing memory on the
    /// thread that allocated it is much cheaper); without workers it is dropped.
    pub fn recycle(&mut self, ev: Event) {
        let (Some(p), Some(batch)) = (&self.prefetch, self.dead.get_mut(self.last_worker)) else {
            return;
        };
        batch.push(ev);
        if batch.len() >= RECYCLE_BATCH {
            let full = std::mem::replace(batch, Vec::with_capacity(RECYCLE_BATCH));
            p.recycle(self.last_worker, full);
        }
    }

    fn open_next(&mut self) {
        let mut worker = usize::MAX;
        let records = match &self.prefetch {
            Some(p) => {
                let (w, stream) = p.take(self.next_file);
                worker = w;
                Source::Streamed(stream)
            }
            None => Source::Live(self.inputs.read(self.next_file)),
        };
        self.next_file += 1;
        let idx = self
            .open
            .iter()
            .position(|f| f.head.is_none() && f.records.reusable());
        let of = OpenFile {
            records,
            head: None,
            worker,
        };
        let idx = match idx {
            Some(i) => {
                self.open[i] = of;
                i
            }
            None => {
                self.open.push(of);
                self.open.len() - 1
            }
        };
        self.advance(idx);
    }
}

impl Iterator for DirRecords {
    type Item = ReadItem;
    fn next(&mut self) -> Option<ReadItem> {
        loop {
            if let Some(d) = self.pending.pop_front() {
                return Some(Err(d));
            }
            // Open files whose key time is not after the current merge head.
            if self.next_file < self.keys.len() {
                let head = self.heap.peek().map(|Reverse((t, _))| *t);
                let next_key = self.keys[self.next_file];
                if head.is_none_or(|h| {
                    next_key == i64::MIN || next_key <= h.saturating_add(OPEN_SLACK_MS)
                }) {
                    self.open_next();
                    continue;
                }
            }
            let Reverse((_, idx)) = self.heap.pop()?;
            let ev = self.open[idx].head.take();
            self.last_worker = self.open[idx].worker;
            self.advance(idx);
            if self.open[idx].head.is_none() {
                // Release the file's memory.
                self.open[idx].records = Source::Closed;
            }
            if let Some(ev) = ev {
                return Some(Ok(ev));
            }
        }
    }
}

/// The readers' guarantees on arbitrary bytes, for fuzzing and tests; panics when one
/// is broken: reading ends, yields at most one item per input byte (plus the end), and
/// gives the same items whether the bytes come in one piece or in small windows, plain
/// or gzipped.
#[doc(hidden)]
pub fn check_reader_invariants(data: &[u8]) {
    let limit = data.len() + 8;
    let describe = |items: &mut dyn Iterator<Item = ReadItem>| -> Vec<String> {
        let v: Vec<String> = items
            .take(limit + 1)
            .map(|r| match r {
                Ok(e) => format!("event {} {}", e.event_name(), e.event_id()),
                Err(d) => format!("{} {:?}", d.kind, d.line),
            })
            .collect();
        assert!(
            v.len() <= limit,
            "{} items from {} bytes",
            v.len(),
            data.len()
        );
        v
    };
    let same = |a: &[String], b: &[String], what: &str| {
        if let Some(i) = (0..a.len().max(b.len())).find(|&i| a.get(i) != b.get(i)) {
            panic!(
                "{what}: item {i} differs: {:?} vs {:?} (of {} and {})",
                &a[i.saturating_sub(2)..(i + 3).min(a.len())],
                &b[i.saturating_sub(2)..(i + 3).min(b.len())],
                a.len(),
                b.len()
            );
        }
    };
    let whole = describe(&mut read_stream(
        "f",
        Box::new(std::io::Cursor::new(data.to_vec())),
    ));
    let sliced = describe(&mut SliceRecords::new("f", data.to_vec()));
    // Small windows cost a copy of the pending record per refill: keep them for small
    // inputs.
    // (Gzip is decompressed by the windowed reader, not by `SliceRecords::new`: such
    // input is compared through `read_stream` below only.)
    let windows: &[usize] = if data.starts_with(&[0x1f, 0x8b]) {
        &[]
    } else if data.len() <= 4096 {
        &[1, 7, 64]
    } else {
        &[4096, 65_536]
    };
    for &window in windows {
        let src = Box::new(std::io::Cursor::new(data.to_vec()));
        let r = SliceRecords::streaming_in_windows("f", src, 0, window);
        same(
            &describe(&mut r.into_iter()),
            &sliced,
            &format!("window {window}"),
        );
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, data).expect("gzip into memory");
    let gz = gz.finish().expect("gzip into memory");
    let unzipped = describe(&mut read_stream("f", Box::new(std::io::Cursor::new(gz))));
    same(&unzipped, &whole, "gzip");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(name: &str, data: &[u8]) -> (Vec<Event>, Vec<Diagnostic>) {
        let mut evs = Vec::new();
        let mut diags = Vec::new();
        for r in read_stream(name, Box::new(std::io::Cursor::new(data.to_vec()))) {
            match r {
                Ok(e) => evs.push(e),
                Err(d) => diags.push(d),
            }
        }
        (evs, diags)
    }

    const R1: &str = r#"{"eventTime":"2024-01-01T00:00:01Z","eventName":"A","eventID":"1"}"#;
    const R2: &str = r#"{"eventTime":"2024-01-01T00:00:02Z","eventName":"B}","eventID":"2"}"#;

    #[test]
    fn reads_records_wrapper_array_object_and_ndjson() {
        let wrapper = format!(r#"{{"Records":[{R1},{R2}],"x":1}}"#);
        assert_eq!(collect("w", wrapper.as_bytes()).0.len(), 2);
        let pretty = format!("{{\n \"Records\" : [\n{R1},\n{R2}\n]\n}}");
        assert_eq!(collect("p", pretty.as_bytes()).0.len(), 2);
        let arr = format!("[{R1}, {R2}]");
        assert_eq!(collect("a", arr.as_bytes()).0.len(), 2);
        let nd = format!("{R1}\n\n{R2}\n");
        let (evs, d) = collect("n", nd.as_bytes());
        assert_eq!((evs.len(), d.len()), (2, 0));
        assert_eq!(evs[1].event_name(), "B}");
        let single = "{\n\"eventTime\": \"2024-01-01T00:00:01Z\"\n}";
        assert_eq!(collect("s", single.as_bytes()).0.len(), 1);
    }

    #[test]
    fn skips_and_counts_invalid_records_naming_the_file() {
        let nd = format!("{R1}\n{{\"eventTime\": tru}}\nnot json\n{R2}\n");
        let (evs, d) = collect("bad.ndjson", nd.as_bytes());
        assert_eq!(evs.len(), 2);
        assert_eq!(d.len(), 2);
        assert!(d.iter().all(|d| d.subject == "bad.ndjson"));
        assert_eq!(d[0].line, Some(2));
        let arr =
            format!("[{R1}, {{\"eventTime\": tru}}, {{\"eventTime\": 5, \"x\": [1]}}, 7, {R2}]");
        let (evs, d) = collect("bad.json", arr.as_bytes());
        assert_eq!(evs.len(), 2, "{d:?}");
        let k: Vec<&str> = d.iter().map(|d| d.kind.as_str()).collect();
        assert_eq!(
            k,
            [
                kinds::INVALID_RECORD,
                kinds::MISSING_TIME,
                kinds::INVALID_RECORD
            ]
        );
    }

    /// A CloudTrail record as text.
    fn inner_record(name: &str, secs: u32) -> String {
        format!(
            r#"{{"eventVersion":"1.08","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::1:user/u","accessKeyId":"AKIAEXAMPLE"}},"eventTime":"2024-05-01T10:00:{secs:02}Z","eventSource":"iam.amazonaws.com","eventName":"{name}","awsRegion":"us-east-1","sourceIPAddress":"203.0.113.7","eventID":"id-{name}"}}"#
        )
    }

    #[test]
    fn lookup_events_cloudwatch_and_eventbridge_envelopes_give_the_inner_records() {
        // `aws cloudtrail lookup-events` output (pretty-printed, as the CLI writes it):
        // each record is a JSON string in `CloudTrailEvent`.
        let events: Vec<String> = [("CreateUser", 1), ("CreateAccessKey", 2)]
            .iter()
            .map(|(n, s)| {
                let inner = serde_json::to_string(&inner_record(n, *s)).unwrap();
                format!(
                    "{{\n  \"EventId\": \"id-{n}\",\n  \"EventName\": \"{n}\",\n  \"EventTime\": \"2024-05-01T10:00:0{s}+00:00\",\n  \"CloudTrailEvent\": {inner}\n}}"
                )
            })
            .collect();
        let lookup = format!(
            "{{\n \"Events\": [\n{}\n ],\n \"NextToken\": \"x\"\n}}\n",
            events.join(",\n")
        );
        let (evs, diags) = collect("lookup.json", lookup.as_bytes());
        assert!(diags.is_empty(), "{diags:?}");
        let names: Vec<&str> = evs.iter().map(|e| e.event_name()).collect();
        assert_eq!(names, ["CreateUser", "CreateAccessKey"]);
        assert_eq!(evs[0].principal(), "arn:aws:iam::1:user/u");
        assert_eq!(evs[1].lookup_str("eventName"), Some("CreateAccessKey"));
        assert_eq!(
            evs[1].time_ms,
            parse_rfc3339_ms("2024-05-01T10:00:02Z").unwrap()
        );
        // The same output on one line.
        let one_line = lookup.replace('\n', "");
        let (evs, diags) = collect("lookup1.json", one_line.as_bytes());
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(evs.len(), 2);

        // EventBridge "AWS API Call via CloudTrail" envelopes, one per line.
        let bridge: String = [("StopLogging", 3), ("DeleteTrail", 4)]
            .iter()
            .map(|(n, s)| {
                format!(
                    r#"{{"version":"0","id":"e","detail-type":"AWS API Call via CloudTrail","source":"aws.cloudtrail","time":"2024-05-01T10:00:0{s}Z","region":"us-east-1","detail":{}}}"#,
                    inner_record(n, *s)
                ) + "\n"
            })
            .collect();
        let (evs, diags) = collect("bridge.jsonl", bridge.as_bytes());
        assert!(diags.is_empty(), "{diags:?}");
        let names: Vec<&str> = evs.iter().map(|e| e.event_name()).collect();
        assert_eq!(names, ["StopLogging", "DeleteTrail"]);
        assert!(
            evs[0].raw().starts_with("{\"eventVersion\""),
            "raw is the inner record"
        );

        // CloudWatch Logs: an S3 export (`<timestamp> <record>` per line, gzipped) and
        // `aws logs filter-log-events` output (records as strings in `message`).
        let export: String = [("ListUsers", 5), ("ListRoles", 6)]
            .iter()
            .map(|(n, s)| format!("2024-05-01T10:00:0{s}.000Z {}\n", inner_record(n, *s)))
            .collect();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, export.as_bytes()).unwrap();
        let (evs, diags) = collect("000000.gz", &gz.finish().unwrap());
        assert!(diags.is_empty(), "{diags:?}");
        let names: Vec<&str> = evs.iter().map(|e| e.event_name()).collect();
        assert_eq!(names, ["ListUsers", "ListRoles"]);
        let filtered = format!(
            "{{\n  \"events\": [\n    {{\"logStreamName\": \"1_CloudTrail_us-east-1\", \"timestamp\": 1714557607000, \"message\": {}, \"eventId\": \"1\"}}\n  ],\n  \"searchedLogStreams\": []\n}}\n",
            serde_json::to_string(&inner_record("GetSendQuota", 7)).unwrap()
        );
        let (evs, diags) = collect("filtered.json", filtered.as_bytes());
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(evs.len(), 1);
        assert_eq!(evs[0].event_name(), "GetSendQuota");

        // An envelope without a record is still a record without a time.
        let (evs, diags) = collect("x.json", br#"{"detail":"text","CloudTrailEvent":7}"#);
        assert!(evs.is_empty());
        assert_eq!(diags[0].kind, kinds::MISSING_TIME);
    }

    /// Items as comparable text: events by time, id and user agent; diagnostics by
    /// kind, line and message.
    fn describe(items: impl Iterator<Item = ReadItem>) -> Vec<String> {
        items
            .map(|it| match it {
                Ok(e) => format!("{} {} {}", e.time_ms, e.event_id(), e.user_agent()),
                Err(d) => format!("{} {:?} {}", d.kind, d.line, d.message),
            })
            .collect()
    }

    #[test]
    fn windowed_reading_gives_the_same_items_as_one_piece() {
        let mut recs: Vec<String> = (0..300)
            .map(|i| {
                format!(
                    r#"{{"eventTime":"2024-01-01T00:{:02}:{:02}Z","eventName":"Get\u004fbject","eventID":"é{i}","userAgent":"agent ü€𝄞 {i}","awsRegion":"eu-west-1"}}"#,
                    i / 60,
                    i % 60
                )
            })
            .collect();
        recs.insert(150, r#"{"eventName":"no time"}"#.into());
        // A wrapper with members after the array (one holds brackets in a string), a
        // garbage line, a one-line array, and a wrapper cut off at the end.
        let text = format!(
            "{{\"Records\":[\n{}\n],\"tail\":{{\"s\":\"]}}\\\"[\"}}}}\ngarbage line\n[{}]\n{{\"Records\":[{}",
            recs.join(",\n"),
            recs.join(","),
            recs[..3].join(",")
        );
        let whole = describe(SliceRecords::new("f", text.clone().into_bytes()));
        assert_eq!(whole.iter().filter(|l| l.contains("é")).count(), 603);
        assert!(
            whole.iter().any(|l| l.starts_with("garbage Some(304)")),
            "{whole:?}"
        );
        assert!(whole.last().unwrap().starts_with("truncated"), "{whole:?}");
        for window in [1, 2, 3, 7, 64, 1000, 4096, 1 << 20] {
            let src = Box::new(std::io::Cursor::new(text.clone().into_bytes()));
            let r = SliceRecords::streaming_in_windows("f", src, 0, window);
            assert_eq!(describe(r), whole, "window {window}");
        }
        // Through gzip, as files are read.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, text.as_bytes()).unwrap();
        let gz = gz.finish().unwrap();
        let r = SliceRecords::streaming_in_windows("f", Box::new(std::io::Cursor::new(gz)), 0, 777);
        assert_eq!(describe(r), whole);
    }

    #[test]
    fn small_files_read_whole_give_the_same_items_as_the_stream() {
        let dir = tempfile::tempdir().unwrap();
        let gz = |b: &[u8]| {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut e, b).unwrap();
            e.finish().unwrap()
        };
        let wrapper = format!(r#"{{"Records":[{R1},{{"eventTime": tru}},{R2}]}}"#);
        let nd = format!("{R1}\n{{bad\n{R2}\n");
        let csv = "eventName,eventTime,eventID\nA,2024-01-01T00:00:01Z,1\nB,,2\n".to_string();
        let mut cut = gz(wrapper.as_bytes());
        cut.truncate(cut.len() - 12);
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("w.json", wrapper.clone().into_bytes()),
            ("w.json.gz", gz(wrapper.as_bytes())),
            ("n.ndjson.gz", gz(nd.as_bytes())),
            ("c.csv.gz", gz(csv.as_bytes())),
            ("cut.json.gz", cut),
            (
                "two-members.json.gz",
                [
                    gz(b"[").as_slice(),
                    gz(format!("{R1}]").as_bytes()).as_slice(),
                ]
                .concat(),
            ),
            ("empty.json", Vec::new()),
        ];
        for (file, bytes) in cases {
            let p = dir.path().join(file);
            std::fs::write(&p, &bytes).unwrap();
            let name = p.display().to_string();
            let whole = describe(read_file(&p));
            let stream = describe(read_stream(&name, Box::new(std::io::Cursor::new(bytes))));
            assert_eq!(whole, stream, "{file}");
        }
    }

    #[test]
    fn hostile_bytes_end_with_bounded_diagnostics() {
        // Each once made the reader loop forever (a stray closer inside an array was an
        // empty value that did not advance) or grow memory without bound.
        let mut cases: Vec<Vec<u8>> = [
            "[}",
            "[1}",
            "{\"Records\":[}",
            "{\"Records\":[1,}",
            "[,,,}]]",
            "]]]]",
            "{\"a\":}",
            "{\"a\":]",
            "{\"Records\":}",
            "[[[[[[",
            "{{{{",
            "\"",
            "[\"",
            "{\"Records\":[{\"a\":}]}",
            "\u{feff}[}",
            "[\n}\n",
            "eventName,eventTime\n\"",
            "{\"Events\":[}",
        ]
        .iter()
        .map(|c| c.as_bytes().to_vec())
        .collect();
        // 100 KB of pseudo-random bytes, and the same made of JSON punctuation only.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        cases.push((0..100_000).map(|_| next() as u8).collect());
        let punct = b"[]{},:\"\\ 1\n";
        cases.push(
            (0..100_000)
                .map(|_| punct[next() as usize % punct.len()])
                .collect(),
        );
        for data in &cases {
            check_reader_invariants(data);
            let (_, diags) = collect("bad", data);
            assert!(
                diags.len() <= MAX_BAD_RUN + 2,
                "{} diagnostics",
                diags.len()
            );
        }
    }

    #[test]
    fn a_run_of_unreadable_records_abandons_the_file_and_says_so() {
        let mut text = format!("[{R1},");
        for _ in 0..MAX_BAD_RUN + 50 {
            text.push_str("7,");
        }
        text.push_str(R2);
        text.push(']');
        let (evs, d) = collect("noise.json", text.as_bytes());
        assert_eq!(evs.len(), 1);
        assert_eq!(d.len(), MAX_BAD_RUN + 1);
        let last = d.last().unwrap();
        assert_eq!(last.kind, kinds::NOT_A_LOG);
        assert_eq!(last.subject, "noise.json");
        // Bad records between good ones never add up to it.
        let mut text = String::from("[");
        for _ in 0..MAX_BAD_RUN + 50 {
            text.push_str(&format!("7,{R1},"));
        }
        text.push_str(R2);
        text.push(']');
        let (evs, d) = collect("mixed.json", text.as_bytes());
        assert_eq!((evs.len(), d.len()), (MAX_BAD_RUN + 51, MAX_BAD_RUN + 50));
    }

    #[test]
    fn an_overlong_ndjson_line_is_skipped_without_keeping_it() {
        let long = format!(
            "{R1}\n{{\"x\":\"{}\"}}\n{R2}\n",
            "a".repeat(MAX_RECORD_BYTES as usize + 10)
        );
        let (evs, d) = collect("long.ndjson", long.as_bytes());
        assert_eq!(evs.len(), 2, "{d:?}");
        assert_eq!(d.len(), 1);
        assert_eq!(
            (d[0].kind.as_str(), d[0].line),
            (kinds::INVALID_RECORD, Some(2))
        );
    }

    #[test]
    fn a_bad_file_in_a_directory_does_not_stop_the_others() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a-bad.json"), "[}").unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, b"{\"Records\":[}").unwrap();
        std::fs::write(dir.path().join("b-bad.json.gz"), gz.finish().unwrap()).unwrap();
        std::fs::write(dir.path().join("c-good.json"), format!("[{R1},{R2}]")).unwrap();
        let items: Vec<ReadItem> = DirRecords::new(dir.path()).take(100).collect();
        assert_eq!(items.iter().filter(|r| r.is_ok()).count(), 2);
        let bad: Vec<&Diagnostic> = items.iter().filter_map(|r| r.as_ref().err()).collect();
        assert!(
            bad.iter().any(|d| d.subject.ends_with("a-bad.json")),
            "{bad:?}"
        );
        assert!(
            bad.iter().any(|d| d.subject.ends_with("b-bad.json.gz")),
            "{bad:?}"
        );
        assert!(items.len() < 10, "{items:?}");
    }

    #[test]
    fn time_prefixes_are_stripped_only_before_an_object() {
        let rec = br#"{"a":1}"#;
        assert_eq!(
            strip_time_prefix(b"2024-05-01T10:00:00.000Z {\"a\":1}"),
            rec
        );
        assert_eq!(strip_time_prefix(b"2024-05-01T10:00:00Z\t{\"a\":1}"), rec);
        for same in [
            &b"2024 was a year {x}"[..],
            b"2024-05-01T10:00:00Z text",
            b"{\"a\":1}",
            b"12",
        ] {
            assert_eq!(strip_time_prefix(same), same);
        }
    }

    #[test]
    fn utf8_partial_tails() {
        let s = "a€𝄞".as_bytes();
        assert_eq!(utf8_partial_tail(s), 0);
        assert_eq!(utf8_partial_tail(&s[..s.len() - 1]), 3);
        assert_eq!(utf8_partial_tail(&s[..s.len() - 3]), 1);
        assert_eq!(utf8_partial_tail(&s[..2]), 1);
        assert_eq!(utf8_partial_tail(b""), 0);
        assert_eq!(utf8_partial_tail(b"\xff"), 0);
    }

    #[test]
    fn truncated_gzip_keeps_complete_records() {
        use std::io::Write;
        let body = format!(r#"{{"Records":[{R1},{R2},{R1},{R2}]}}"#).repeat(1);
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(body.as_bytes()).unwrap();
        let gz = enc.finish().unwrap();
        let (evs, d) = collect("ok.json.gz", &gz);
        assert_eq!((evs.len(), d.len()), (4, 0));
        let cut = &gz[..gz.len() - 12];
        let (evs, d) = collect("cut.json.gz", cut);
        assert!(evs.len() <= 4);
        assert!(
            d.iter()
                .any(|d| d.kind == kinds::TRUNCATED && d.subject == "cut.json.gz"),
            "{d:?}"
        );
        let (evs, d) = collect("half.json", &body.as_bytes()[..body.len() / 2]);
        assert!(!evs.is_empty() && evs.len() < 4);
        assert_eq!(d.last().unwrap().kind, kinds::TRUNCATED);
    }

    #[test]
    fn parallel_reading_gives_the_same_items_in_the_same_order() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let mk = |t: &str, id: &str| format!(r#"{{"eventTime":"{t}","eventID":"{id}"}}"#);
        let mut files = Vec::new();
        for f in 0..9 {
            let mut recs = Vec::new();
            for r in 0..7 {
                // Overlapping files, equal times across files, a bad record in some.
                recs.push(mk(
                    &format!("2024-01-01T00:{:02}:{:02}Z", f / 3, r * 5),
                    &format!("{f}-{r}"),
                ));
                if f % 4 == 1 && r == 3 {
                    recs.push("{\"eventTime\": tru}".into());
                }
            }
            let body = format!("{{\"Records\":[{}]}}", recs.join(","));
            let name = format!("1_CloudTrail_x_2024010{}T0000Z_{f}.json", 1 + f % 2);
            let path = dir.path().join(&name);
            if f % 2 == 0 {
                let mut enc =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                enc.write_all(body.as_bytes()).unwrap();
                std::fs::write(path.with_extension("json.gz"), enc.finish().unwrap()).unwrap();
                files.push(path.with_extension("json.gz"));
            } else {
                std::fs::write(&path, body).unwrap();
                files.push(path);
            }
        }
        files.push(dir.path().join("missing.json"));
        std::fs::write(dir.path().join("cut.json"), "[{\"eventTime\":").unwrap();
        files.push(dir.path().join("cut.json"));
        let show = |it: ReadItem| match it {
            Ok(e) => format!("{} {}", e.time_ms, e.event_id()),
            Err(d) => format!("{} {} {:?}", d.kind, d.subject, d.line),
        };
        let seq: Vec<String> = DirRecords::from_files(files.clone(), Vec::new())
            .map(show)
            .collect();
        assert!(seq.len() > 63, "{seq:?}");
        for (workers, max_items) in [(1, 1000), (2, 3), (3, 1)] {
            let mut d = DirRecords::from_files(files.clone(), Vec::new());
            d.prefetch = Some(Prefetch::start(d.inputs.clone(), workers, max_items, None));
            let par: Vec<String> = d.map(show).collect();
            assert_eq!(par, seq, "{workers} workers, {max_items} items ahead");
        }
        // The same files as objects of a fetcher: the same items in the same order.
        struct Disk(Mutex<Vec<LogObject>>);
        impl Fetch for Disk {
            fn plan(&self, objects: &[LogObject]) {
                *self.0.lock().unwrap() = objects.to_vec();
            }
            fn open(&self, idx: usize) -> Result<Box<dyn Read + Send>, String> {
                let name = self.0.lock().unwrap()[idx].name.clone();
                File::open(&name)
                    .map(|f| Box::new(f) as Box<dyn Read + Send>)
                    .map_err(|e| e.to_string())
            }
        }
        let objects: Vec<LogObject> = files
            .iter()
            .rev()
            .map(|p| LogObject {
                name: p.display().to_string(),
                size: std::fs::metadata(p).map_or(0, |m| m.len()),
            })
            .collect();
        for workers in [0, 1, 3] {
            let fetch = Arc::new(Disk(Mutex::new(Vec::new())));
            let got: Vec<String> =
                DirRecords::from_objects(objects.clone(), fetch, Vec::new(), workers, None)
                    .map(show)
                    .collect();
            assert_eq!(got, seq, "objects, {workers} workers");
        }
    }

    #[test]
    fn key_time_from_cloudtrail_names() {
        let p = Path::new(
            "AWSLogs/1/CloudTrail/eu-west-1/2024/01/02/1_CloudTrail_eu-west-1_20240102T0105Z_abc.json.gz",
        );
        assert_eq!(key_time(p), parse_rfc3339_ms("2024-01-02T01:05:00Z"));
        assert_eq!(
            key_time(Path::new("x/2024/01/02/f.json")),
            parse_rfc3339_ms("2024-01-02T00:00:00Z")
        );
    }

    #[test]
    fn directory_merge_is_in_event_time_order() {
        let dir = tempfile::tempdir().unwrap();
        let mk = |t: &str, id: &str| format!(r#"{{"eventTime":"{t}","eventID":"{id}"}}"#);
        std::fs::write(
            dir.path().join("b.json"),
            format!(
                "[{},{}]",
                mk("2024-01-01T00:00:02Z", "b1"),
                mk("2024-01-01T00:00:05Z", "b2")
            ),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("a.json"),
            format!(
                "[{},{}]",
                mk("2024-01-01T00:00:01Z", "a1"),
                mk("2024-01-01T00:00:03Z", "a2")
            ),
        )
        .unwrap();
        std::fs::write(dir.path().join("c.json"), "[{\"eventTime\":").unwrap();
        let items: Vec<ReadItem> = read_path(dir.path()).collect();
        let ids: Vec<String> = items
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .map(|e| e.event_id().to_string())
            .collect();
        assert_eq!(ids, ["a1", "b1", "a2", "b2"]);
        assert!(
            items
                .iter()
                .any(|r| matches!(r, Err(d) if d.subject.ends_with("c.json")))
        );
    }
}

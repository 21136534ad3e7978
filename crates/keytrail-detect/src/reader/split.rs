//! Record splitting of JSON held in memory: arrays, CloudTrail's `{"Records":[…]}`
//! and `lookup-events`' `{"Events":[…]}` wrappers, single and concatenated objects,
//! read whole or in windows with the incomplete record carried over. Records are
//! delimited by the byte-level scanner of [`crate::json`], so one invalid record is
//! skipped on its own.

use super::*;

/// Length of an incomplete UTF-8 sequence at the end of `b` (0 when `b` ends on a
/// character boundary), so a window can stop before it.
pub(super) fn utf8_partial_tail(b: &[u8]) -> usize {
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

/// Whether a line starts a wrapper object around records: CloudTrail's `{"Records":[…]}`,
/// `aws cloudtrail lookup-events` output `{"Events":[…]}`, or a Graph API response
/// (`{"@odata.context":…,"value":[…]}`, written on one line by `curl`), or a Google
/// Workspace Reports API response (`{"kind":"admin#reports#activities",…,"items":[…]}`).
pub(super) fn is_wrapper(line: &[u8]) -> bool {
    if line.starts_with(b"{\"@odata.") {
        return memchr::memmem::find(line, b"\"value\":[").is_some()
            || memchr::memmem::find(line, b"\"value\": [").is_some();
    }
    if memchr::memmem::find(&line[..line.len().min(64)], b"admin#reports#activities").is_some() {
        return memchr::memmem::find(line, b"\"items\":[").is_some()
            || memchr::memmem::find(line, b"\"items\": [").is_some();
    }
    WRAPPER_KEYS.iter().any(|k| {
        line.strip_prefix(b"{\"")
            .and_then(|l| l.strip_prefix(*k))
            .is_some_and(|l| l.starts_with(b"\""))
    })
}

/// Members whose array holds the records: CloudTrail's `Records`, `aws cloudtrail
/// lookup-events`'s `Events`, `aws logs filter-log-events`'s `events` (each record a
/// JSON string in `message`), Azure diagnostic exports' `records` and Graph API
/// responses' `value` (Entra sign-ins and audits) and the Google Workspace Reports
/// API's `items`.
pub(super) const WRAPPER_KEYS: [&[u8]; 6] = [
    b"Records", b"Events", b"events", b"records", b"value", b"items",
];

/// The JSON part of a line exported from CloudWatch Logs (`<timestamp> <message>`): the
/// line after a leading RFC 3339 timestamp, when there is one; else the line.
pub(super) fn strip_time_prefix(line: &[u8]) -> &[u8] {
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

pub(super) fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\n' | b'\r' | b'\t' | b',') {
        i += 1;
    }
    // A UTF-8 byte-order mark at the start of a file.
    if b[i..].starts_with(&[0xef, 0xbb, 0xbf]) {
        return skip_ws(b, i + 3);
    }
    i
}

pub(super) fn line_of(b: &[u8], offset: usize) -> u64 {
    1 + b[..offset.min(b.len())]
        .iter()
        .filter(|&&c| c == b'\n')
        .count() as u64
}

/// A file's bytes: text when valid UTF-8 (checked once), else raw bytes.
pub(super) enum Data {
    /// Shared with the events parsed from it (they keep their record text here).
    Text(Arc<String>),
    Bytes(Vec<u8>),
}

impl Data {
    pub(super) fn new(buf: Vec<u8>) -> Self {
        match String::from_utf8(buf) {
            Ok(t) => Data::Text(Arc::new(t)),
            Err(e) => Data::Bytes(e.into_bytes()),
        }
    }
    pub(super) fn bytes(&self) -> &[u8] {
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
    pub(super) fn streaming_in_windows(
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
    pub(super) fn refill(&mut self, keep: usize, want: usize) -> bool {
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
    pub(super) fn line(&self, offset: usize) -> u64 {
        self.base_line + line_of(self.buf.bytes(), offset)
    }

    pub(super) fn truncated(&mut self, at: usize) -> Option<ReadItem> {
        self.done = true;
        Some(Err(Diagnostic::error(
            kinds::TRUNCATED,
            &self.name,
            "file ends inside a record; the partial record is skipped",
        )
        .at(Some(self.line(at)), None)))
    }

    pub(super) fn emit(&mut self, s: usize, e: usize) -> ReadItem {
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
    pub(super) fn wrapper_records(&self, start: usize) -> Result<Option<usize>, usize> {
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
            if j >= b.len() {
                // The window ends after a key: whether a colon follows is not known yet.
                return Err(b.len());
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

    pub(super) fn records_array_start(&self, start: usize) -> usize {
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
                // The fast parser decides only records it parsed whole: an error
                // may mean the window ends inside the record, and where a bad
                // record ends must not depend on where a window ends, so bad
                // records are delimited by the byte scanner below in every mode.
                if let Some((Ok(event), n)) = fast {
                    self.pos = i + n;
                    return Some(Ok(event));
                }
                let end = value_end(b, i);
                // A bare value (a number, a literal, garbage) that runs to the end
                // of the window may go on in the next one: read on before deciding.
                if matches!(end, Ok(e) if e >= len) && self.refill(i, self.window) {
                    continue;
                }
                match end {
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
                    // Delimited only by the end of the window: it may go on.
                    Ok(Some(e)) if e >= len && self.refill(i, self.window) => continue,
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

//! NDJSON (one record per line, including Logstash exports with `@timestamp` and
//! lines prefixed by a timestamp), streamed line by line.

use super::*;

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
pub(super) fn skip_line(r: &mut impl BufRead) -> std::io::Result<()> {
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

//! The JSON framings every machine format of keytrail shares: JSON Lines (one
//! compact document per line) and a pretty-printed JSON array, each written one
//! record at a time so a stream of results never has to be held in memory.
//!
//! Scan JSONL, detect JSONL and OCSF, and posture JSONL and OCSF all go through
//! [`write_line`] or a [`RecordWriter`].

use std::io::{self, Write};

use serde::Serialize;

/// How a sequence of records is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// One compact JSON document per line, each ended by `\n`; nothing for no records.
    Lines,
    /// One pretty-printed JSON array (`[]` for no records), ended by `\n`.
    Array,
}

/// Writes `record` as one compact JSON line.
pub fn write_line<T: Serialize + ?Sized>(w: &mut dyn Write, record: &T) -> io::Result<()> {
    serde_json::to_writer(&mut *w, record)?;
    w.write_all(b"\n")
}

/// Writes every record as one JSON line.
pub fn write_lines<'a, T: Serialize + 'a>(
    w: &mut dyn Write,
    records: impl IntoIterator<Item = &'a T>,
) -> io::Result<()> {
    for r in records {
        write_line(w, r)?;
    }
    Ok(())
}

/// Writes records one at a time in a [`Framing`]; [`RecordWriter::finish`] closes
/// the array and flushes.
pub struct RecordWriter<W: Write> {
    out: W,
    framing: Framing,
    written: u64,
}

impl<W: Write> RecordWriter<W> {
    /// A writer into `out`.
    pub fn new(out: W, framing: Framing) -> Self {
        RecordWriter {
            out,
            framing,
            written: 0,
        }
    }

    /// Writes one record.
    pub fn write<T: Serialize + ?Sized>(&mut self, record: &T) -> io::Result<()> {
        match self.framing {
            Framing::Lines => write_line(&mut self.out, record)?,
            Framing::Array => {
                self.out
                    .write_all(if self.written == 0 { b"[\n" } else { b",\n" })?;
                serde_json::to_writer_pretty(&mut self.out, record)?;
            }
        }
        self.written += 1;
        Ok(())
    }

    /// Records written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Ends the framing (closes the array) and flushes; returns the records written.
    pub fn finish(&mut self) -> io::Result<u64> {
        if self.framing == Framing::Array {
            self.out
                .write_all(if self.written == 0 { b"[]\n" } else { b"\n]\n" })?;
        }
        self.out.flush()?;
        Ok(self.written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(framing: Framing, n: u32) -> String {
        let mut buf = Vec::new();
        let mut w = RecordWriter::new(&mut buf, framing);
        for i in 0..n {
            w.write(&serde_json::json!({"n": i})).unwrap();
        }
        assert_eq!(w.finish().unwrap(), n as u64);
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn arrays_parse_whole_and_lines_line_by_line() {
        for n in [0, 1, 3] {
            let a: Vec<serde_json::Value> =
                serde_json::from_str(&framed(Framing::Array, n)).unwrap();
            assert_eq!(a.len(), n as usize);
            let l = framed(Framing::Lines, n);
            assert_eq!(l.lines().count(), n as usize);
            for (i, line) in l.lines().enumerate() {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                assert_eq!(v["n"], i as u64);
            }
        }
        assert_eq!(framed(Framing::Array, 0), "[]\n");
        assert_eq!(framed(Framing::Lines, 0), "");
    }
}

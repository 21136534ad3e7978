//! Owned content on its way to the sink: bytes in memory, a private
//! temporary file (a stream that outgrew the memory limit), or the user's
//! own large file. Reading a stream fills memory first and spills to a
//! 0600 temporary file only beyond the limit, so small content is copied
//! exactly once (kernel or decompressor → the `Vec` handed to the sink).

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, BufReader, Cursor, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

use tempfile::NamedTempFile;

use crate::sniff::HEAD_LEN;

/// Content owned by this crate until it is delivered or opened as an archive.
#[derive(Debug)]
pub(crate) enum Data {
    /// In memory.
    Mem(Vec<u8>),
    /// In a private temporary file, deleted on drop; with its length.
    Temp(NamedTempFile, u64),
    /// The user's file, too large for memory: opened handle, path, length.
    Disk(File, PathBuf, u64),
}

impl Data {
    /// Length in bytes.
    pub(crate) fn len(&self) -> u64 {
        match self {
            Data::Mem(v) => v.len() as u64,
            Data::Temp(_, len) | Data::Disk(_, _, len) => *len,
        }
    }

    /// The first [`HEAD_LEN`] bytes (fewer if the content is shorter).
    pub(crate) fn head(&self) -> io::Result<Cow<'_, [u8]>> {
        match self {
            Data::Mem(v) => Ok(Cow::Borrowed(&v[..v.len().min(HEAD_LEN)])),
            Data::Temp(t, _) => read_head(t.as_file()).map(Cow::Owned),
            Data::Disk(f, _, _) => read_head(f).map(Cow::Owned),
        }
    }

    /// A seekable reader over the whole content, from its start.
    pub(crate) fn reader(&self) -> io::Result<DataReader<'_>> {
        match self {
            Data::Mem(v) => Ok(DataReader::Mem(Cursor::new(v))),
            Data::Temp(t, _) => file_reader(t.as_file()),
            Data::Disk(f, _, _) => file_reader(f),
        }
    }
}

fn read_head(mut f: &File) -> io::Result<Vec<u8>> {
    f.seek(SeekFrom::Start(0))?;
    let mut buf = Vec::with_capacity(HEAD_LEN);
    f.take(HEAD_LEN as u64).read_to_end(&mut buf)?;
    f.seek(SeekFrom::Start(0))?;
    Ok(buf)
}

fn file_reader(mut f: &File) -> io::Result<DataReader<'_>> {
    f.seek(SeekFrom::Start(0))?;
    Ok(DataReader::File(BufReader::with_capacity(64 << 10, f)))
}

/// A seekable reader over [`Data`].
pub(crate) enum DataReader<'a> {
    /// Over memory.
    Mem(Cursor<&'a Vec<u8>>),
    /// Over a file.
    File(BufReader<&'a File>),
}

impl Read for DataReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            DataReader::Mem(c) => c.read(buf),
            DataReader::File(f) => f.read(buf),
        }
    }
}

impl Seek for DataReader<'_> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        match self {
            DataReader::Mem(c) => c.seek(pos),
            DataReader::File(f) => f.seek(pos),
        }
    }
}

/// Read `r` to its end: into memory while it fits in `mem_limit` bytes,
/// into a private temporary file beyond. `hint` is the expected length
/// (capped by `mem_limit` for the allocation, so a lying header cannot make
/// us allocate much).
pub(crate) fn read_spill<R: Read>(r: R, mem_limit: u64, hint: u64) -> io::Result<Data> {
    match read_spill_partial(r, mem_limit, hint) {
        (data, None) => Ok(data),
        (_, Some(e)) => Err(e),
    }
}

/// [`read_spill`] that keeps what was read before an error: the content
/// so far, and the error if reading stopped on one.
pub(crate) fn read_spill_partial<R: Read>(
    r: R,
    mem_limit: u64,
    hint: u64,
) -> (Data, Option<io::Error>) {
    read_spill_after(with_capacity_for(hint, mem_limit), r, mem_limit)
}

/// An empty buffer sized for `hint` bytes, but never more than `mem_limit`.
pub(crate) fn with_capacity_for(hint: u64, mem_limit: u64) -> Vec<u8> {
    let cap = hint.min(mem_limit).saturating_add(1);
    Vec::with_capacity(usize::try_from(cap).unwrap_or(usize::MAX))
}

/// [`read_spill_partial`] continuing after bytes already read into `buf`
/// (the sniffed head), so they are not read or copied twice.
pub(crate) fn read_spill_after<R: Read>(
    mut buf: Vec<u8>,
    mut r: R,
    mem_limit: u64,
) -> (Data, Option<io::Error>) {
    let room = mem_limit.saturating_add(1).saturating_sub(buf.len() as u64);
    // On error, `read_to_end` leaves the bytes read so far in `buf`.
    if let Err(e) = (&mut r).take(room).read_to_end(&mut buf) {
        buf.truncate(usize::try_from(mem_limit).unwrap_or(usize::MAX));
        return (Data::Mem(buf), Some(e));
    }
    if buf.len() as u64 <= mem_limit {
        return (Data::Mem(buf), None);
    }
    let mut tmp = match tempfile::Builder::new()
        .prefix("keytrail-spill-")
        .tempfile()
        .and_then(|mut t| t.write_all(&buf).map(|()| t))
    {
        Ok(t) => t,
        Err(e) => {
            buf.truncate(usize::try_from(mem_limit).unwrap_or(usize::MAX));
            return (Data::Mem(buf), Some(e));
        }
    };
    let mut len = buf.len() as u64;
    // Reuse the allocation as the copy buffer.
    buf.clear();
    buf.resize(buf.capacity().clamp(8 << 10, 256 << 10), 0);
    let err = loop {
        match r.read(&mut buf) {
            Ok(0) => break None,
            Ok(n) => match tmp.write_all(&buf[..n]) {
                Ok(()) => len += n as u64,
                Err(e) => break Some(e),
            },
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break Some(e),
        }
    };
    let err = err.or_else(|| tmp.as_file_mut().flush().err());
    (Data::Temp(tmp, len), err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_stays_in_memory() {
        let data = read_spill(&b"hello"[..], 10, 0).unwrap();
        assert!(matches!(&data, Data::Mem(v) if v == b"hello"));
        assert_eq!(&*data.head().unwrap(), b"hello");
    }

    #[test]
    fn exactly_the_limit_stays_in_memory() {
        let data = read_spill(&b"0123456789"[..], 10, 10).unwrap();
        assert!(matches!(data, Data::Mem(_)));
    }

    #[test]
    fn a_read_error_keeps_what_came_before() {
        let failing = (&b"abcdef"[..]).chain(FailingReader);
        let (data, err) = read_spill_partial(failing, 100, 0);
        assert!(err.is_some());
        assert!(matches!(&data, Data::Mem(v) if v == b"abcdef"));
        let big = vec![b'z'; 5000];
        let (data, err) = read_spill_partial((&big[..]).chain(FailingReader), 1000, 0);
        assert!(err.is_some());
        assert!(matches!(data, Data::Temp(_, 5000)), "{data:?}");
    }

    struct FailingReader;
    impl Read for FailingReader {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::other("boom"))
        }
    }

    #[test]
    fn large_spills_to_a_private_file() {
        let input: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let data = read_spill(&input[..], 1000, 0).unwrap();
        let Data::Temp(tmp, len) = &data else {
            panic!("expected a spill, got {data:?}")
        };
        assert_eq!(*len, input.len() as u64);
        assert_eq!(std::fs::read(tmp.path()).unwrap(), input);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(tmp.path()).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "spill file must be private");
        }
        assert_eq!(&*data.head().unwrap(), &input[..HEAD_LEN]);
        let mut back = Vec::new();
        data.reader().unwrap().read_to_end(&mut back).unwrap();
        assert_eq!(back, input);
    }
}

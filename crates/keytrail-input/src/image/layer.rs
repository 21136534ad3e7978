//! One layer: decompress it (gzip, zstd or none, told apart by magic bytes,
//! not by media type, which docker-archive layers do not carry), walk its
//! tar entries, and hand every regular file's bytes to the content handling
//! shared with the file source, each with its provenance; whiteouts and
//! opaque directories are recorded, not applied.
//!
//! Visibility in the final filesystem: layers are read from the top (last)
//! layer down. Before a layer is read, the [`Shadow`] holds every entry of
//! the layers above it, so whether a file is still visible is known when it
//! is read, in one pass: it is hidden when an upper layer has an entry at the
//! same path (overwritten or replaced), a whiteout of it or of a parent
//! directory, an opaque marker on a parent directory, or a non-directory at a
//! parent path.
//!
//! Nothing is written to disk except private spill files for members larger
//! than the in-memory limit; entry names are only used as display paths
//! (normalised: `./`, `/`, `..` cannot climb above the layer root).

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use keytrail_types::{Diagnostic, Origin};
use ruzstd::decoding::{FrameDecoder, StreamingDecoder};

use super::kinds;
use super::seen::{ContentId, ContentSeen, LayerRecord};
use crate::archive::{Budget, Capped};
use crate::content::{self, Ctx, Level};
use crate::spill::Data;
use crate::{BlobSink, FsOptions};

/// What an entry of a layer does to the paths below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mark {
    /// A directory: replaces a lower non-directory at its path only.
    Dir,
    /// A file, symlink, hard link or device: replaces the path and hides
    /// everything below it.
    NonDir,
    /// `.wh.NAME`: deletes NAME (and everything below it) from lower layers.
    Whiteout,
    /// `.wh..wh..opq` in a directory: hides the lower layers' contents of it.
    Opaque,
}

/// The entries of the layers above the one being read.
#[derive(Debug, Default)]
pub(crate) struct Shadow {
    marks: HashMap<Box<str>, Mark>,
}

impl Shadow {
    /// Whether a lower-layer file at `path` is hidden in the final filesystem.
    pub(crate) fn hides(&self, path: &str) -> bool {
        if self.marks.contains_key(path) {
            return true;
        }
        let mut end = path.len();
        while let Some(i) = path[..end].rfind('/') {
            if let Some(m) = self.marks.get(&path[..i])
                && *m != Mark::Dir
            {
                return true;
            }
            end = i;
        }
        false
    }

    /// Add the entries of a layer (once it has been read).
    pub(crate) fn add(&mut self, entries: &[(Box<str>, Mark)]) {
        for (path, mark) in entries {
            let slot = self.marks.entry(path.clone()).or_insert(*mark);
            if *slot == Mark::Dir {
                *slot = *mark;
            }
        }
    }
}

/// An entry name as a clean path relative to the layer root, and whether
/// the raw name tried to climb above the root with `..`.
pub(crate) fn normalize(raw: &[u8]) -> (String, bool) {
    let text = String::from_utf8_lossy(raw);
    let mut parts: Vec<&str> = Vec::new();
    let mut escaped = false;
    for c in text.split('/') {
        match c {
            "" | "." => {}
            ".." => escaped |= parts.pop().is_none(),
            c => parts.push(c),
        }
    }
    (parts.join("/"), escaped)
}

/// What a whiteout-named entry means, if it is one: the marked path.
fn whiteout(path: &str) -> Option<(String, Mark)> {
    let (dir, name) = match path.rsplit_once('/') {
        Some((d, n)) => (d, n),
        None => ("", path),
    };
    let target = name.strip_prefix(".wh.")?;
    if target == ".wh..opq" {
        return Some((dir.to_string(), Mark::Opaque));
    }
    if target.starts_with(".wh.") || target.is_empty() {
        // Other AUFS metadata (`.wh..wh.plnk`, `.wh..wh.aufs`): no meaning here.
        return Some((String::new(), Mark::Dir));
    }
    let joined = if dir.is_empty() {
        target.to_string()
    } else {
        format!("{dir}/{target}")
    };
    Some((joined, Mark::Whiteout))
}

/// Compression of a layer stream, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compression {
    /// gzip (`tar+gzip`, and most docker-archive-less layers).
    Gzip,
    /// zstd (`tar+zstd`, including zstd:chunked).
    Zstd,
    /// A plain tar.
    None,
}

pub(crate) fn sniff_compression(head: &[u8]) -> Compression {
    if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) || is_skippable_frame(head) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

fn is_skippable_frame(head: &[u8]) -> bool {
    head.len() >= 4 && head[1..4] == [0x2a, 0x4d, 0x18] && head[0] & 0xf0 == 0x50
}

/// Every zstd frame of a stream, in order; skippable frames (zstd:chunked
/// tables of contents) are skipped.
struct ZstdFrames<R: BufRead> {
    current: Option<StreamingDecoder<R, FrameDecoder>>,
    idle: Option<(R, FrameDecoder)>,
}

impl<R: BufRead> ZstdFrames<R> {
    fn new(source: R) -> Self {
        ZstdFrames {
            current: None,
            idle: Some((source, FrameDecoder::new())),
        }
    }

    /// Start the next frame; false at the end of the stream.
    fn next_frame(&mut self) -> io::Result<bool> {
        let (mut source, decoder) = match (self.current.take(), self.idle.take()) {
            (Some(d), _) => d.into_parts(),
            (None, Some(idle)) => idle,
            (None, None) => return Ok(false),
        };
        loop {
            let head = source.fill_buf()?;
            if head.is_empty() {
                return Ok(false);
            }
            if head.len() >= 8 && is_skippable_frame(head) {
                let len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
                source.consume(8);
                io::copy(&mut (&mut source).take(u64::from(len)), &mut io::sink())?;
                continue;
            }
            break;
        }
        match StreamingDecoder::new_with_decoder(source, decoder) {
            Ok(d) => {
                self.current = Some(d);
                Ok(true)
            }
            Err(e) => Err(io::Error::new(io::ErrorKind::InvalidData, e)),
        }
    }
}

impl<R: BufRead> Read for ZstdFrames<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if let Some(d) = &mut self.current {
                let n = d.read(buf)?;
                if n > 0 {
                    return Ok(n);
                }
            }
            if !self.next_frame()? {
                return Ok(0);
            }
        }
    }
}

/// Counts the bytes that pass.
struct Counting<'c, R> {
    inner: R,
    count: &'c AtomicU64,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// What a layer scan shares with the rest of the image scan.
pub(crate) struct Env<'a> {
    pub(crate) sink: &'a dyn BlobSink,
    pub(crate) seen: &'a ContentSeen,
    pub(crate) content: &'a FsOptions,
    pub(crate) threads: usize,
    pub(crate) max_layer_bytes: u64,
}

/// One layer of one image to read.
pub(crate) struct Job<'a> {
    /// Display path prefix (`IMAGE@layerN:`); a file is `PREFIX/PATH`.
    pub(crate) prefix: String,
    /// Provenance of files still visible in the final filesystem.
    pub(crate) visible: Arc<Origin>,
    /// Provenance of files deleted or overwritten by a later layer.
    pub(crate) hidden: Arc<Origin>,
    /// The layers above.
    pub(crate) shadow: &'a Shadow,
}

impl Job<'_> {
    fn place(&self, path: &str) -> (String, &Arc<Origin>) {
        let origin = if self.shadow.hides(path) {
            &self.hidden
        } else {
            &self.visible
        };
        (format!("{}/{path}", self.prefix), origin)
    }
}

/// What reading a layer did.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// Entries and text files (complete only if `complete`).
    pub(crate) record: LayerRecord,
    /// Whether the whole layer was read without error.
    pub(crate) complete: bool,
    /// Decompressed bytes read.
    pub(crate) bytes: u64,
    /// Regular files seen.
    pub(crate) files: u64,
    /// Contents delivered to the sink (first seen here).
    pub(crate) scanned: u64,
    /// Contents seen before (not delivered again).
    pub(crate) duplicates: u64,
    /// Entries whose name tried to climb above the layer root.
    pub(crate) escaped: u64,
}

/// A file read from the layer, on its way to a worker.
struct Item {
    rel: Box<str>,
    display: String,
    origin: Arc<Origin>,
    data: Data,
}

/// Replay a layer read earlier in the run for another image: record each
/// text file's location as a duplicate; nothing is decompressed.
pub(crate) fn replay(env: &Env<'_>, job: &Job<'_>, record: &LayerRecord) -> u64 {
    let mut n = 0;
    for (rel, id) in &record.files {
        let (display, origin) = job.place(rel);
        if !env.seen.claim(*id, &display, origin) {
            n += 1;
        }
    }
    n
}

/// Read one layer from `raw` (its blob, compressed or not) and deliver its
/// files. `compressed` is the blob size, for the bomb ratio.
pub(crate) fn scan(
    env: &Env<'_>,
    job: &Job<'_>,
    subject: &str,
    raw: Box<dyn Read + Send + '_>,
    compressed: Option<u64>,
) -> Outcome {
    let mut raw = BufReader::with_capacity(256 << 10, raw);
    let compression = match raw.fill_buf() {
        Ok(head) => sniff_compression(head),
        Err(e) => {
            env.sink.diagnostic(Diagnostic::error(
                kinds::IMAGE_UNREADABLE,
                subject,
                format!("cannot read layer: {e}"),
            ));
            return Outcome::default();
        }
    };
    let decoded: Box<dyn Read + '_> = match compression {
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(raw)),
        Compression::Zstd => Box::new(ZstdFrames::new(raw)),
        Compression::None => Box::new(raw),
    };
    let budget = Budget::new(
        env.max_layer_bytes,
        compressed.unwrap_or(env.max_layer_bytes),
    )
    .with_ratio(env.content.max_archive_ratio);
    let bytes = AtomicU64::new(0);
    let capped = Capped::new(
        Counting {
            inner: decoded,
            count: &bytes,
        },
        &budget,
    );
    let files = Mutex::new(Vec::new());
    let scanned = AtomicU64::new(0);
    let duplicates = AtomicU64::new(0);
    let ctx = Ctx::new(env.content, env.sink);
    let mut outcome = Outcome::default();
    let threads = env.threads.max(1);
    let (tx, rx) = mpsc::sync_channel::<Item>(threads * 2);
    // Each worker owns a handle on the receiver: if every worker died (a
    // panic), the receiver is dropped and the producer's send fails instead
    // of blocking forever.
    let rx = Arc::new(Mutex::new(rx));
    std::thread::scope(|s| {
        for _ in 0..threads {
            let rx = Arc::clone(&rx);
            let (files, scanned, duplicates) = (&files, &scanned, &duplicates);
            s.spawn(move || {
                loop {
                    let item = match rx.lock().unwrap_or_else(|e| e.into_inner()).recv() {
                        Ok(item) => item,
                        Err(_) => return,
                    };
                    let id = match content_id(&item.data) {
                        Ok(id) => id,
                        Err(e) => {
                            ctx.diag(content::io_diagnostic(&e, item.display, "cannot read"));
                            continue;
                        }
                    };
                    if env.seen.claim(id, &item.display, &item.origin) {
                        scanned.fetch_add(1, Ordering::Relaxed);
                        content::handle(ctx, item.display, &item.origin, item.data, Level::TOP);
                    } else {
                        duplicates.fetch_add(1, Ordering::Relaxed);
                    }
                    files
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((item.rel, id));
                }
            });
        }
        drop(rx);
        outcome.complete = read_entries(env, job, subject, capped, &budget, &tx, &mut outcome);
        drop(tx);
    });
    if let Some(d) = budget.report(subject) {
        env.sink.diagnostic(d);
    }
    outcome.record.files = files.into_inner().unwrap_or_else(|e| e.into_inner());
    outcome.record.files.sort();
    outcome.bytes = bytes.load(Ordering::Relaxed);
    outcome.scanned = scanned.load(Ordering::Relaxed);
    outcome.duplicates = duplicates.load(Ordering::Relaxed);
    outcome
}

fn content_id(data: &Data) -> io::Result<ContentId> {
    match data {
        Data::Mem(v) => Ok(ContentId::of(v)),
        _ => {
            use sha2::Digest;
            let mut h = sha2::Sha256::new();
            let mut r = data.reader()?;
            let mut buf = vec![0u8; 256 << 10];
            loop {
                match r.read(&mut buf)? {
                    0 => break,
                    n => h.update(&buf[..n]),
                }
            }
            Ok(ContentId(h.finalize().into()))
        }
    }
}

/// The producer: walk the tar entries, read each regular file and send it
/// to the workers. Returns whether the layer was read to its end.
fn read_entries<R: Read>(
    env: &Env<'_>,
    job: &Job<'_>,
    subject: &str,
    reader: R,
    budget: &Budget,
    tx: &mpsc::SyncSender<Item>,
    outcome: &mut Outcome,
) -> bool {
    let ctx = Ctx::new(env.content, env.sink);
    let corrupt = |what: String| {
        if !budget.is_tripped() {
            env.sink
                .diagnostic(Diagnostic::error(kinds::IMAGE_CORRUPT, subject, what));
        }
    };
    let mut tar = tar::Archive::new(reader);
    let entries = match tar.entries() {
        Ok(e) => e,
        Err(e) => {
            corrupt(format!("cannot read layer tar: {e}"));
            return false;
        }
    };
    let mut first_escape: Option<String> = None;
    for entry in entries {
        let mut entry = match entry {
            Ok(e) => e,
            Err(e) => {
                corrupt(format!(
                    "layer truncated or corrupt after {} files: {e}",
                    outcome.files
                ));
                return false;
            }
        };
        let (path, escaped) = normalize(&entry.path_bytes());
        if escaped {
            outcome.escaped += 1;
            first_escape
                .get_or_insert_with(|| String::from_utf8_lossy(&entry.path_bytes()).into_owned());
        }
        if path.is_empty() {
            continue;
        }
        if let Some((target, mark)) = whiteout(&path) {
            if !target.is_empty() {
                outcome.record.entries.push((target.into(), mark));
            }
            continue;
        }
        let kind = entry.header().entry_type();
        let is_file = kind.is_file() || kind.is_contiguous() || kind.is_gnu_sparse();
        let mark = if kind.is_dir() {
            Mark::Dir
        } else {
            Mark::NonDir
        };
        if kind.is_pax_global_extensions() || kind.is_pax_local_extensions() {
            continue;
        }
        outcome.record.entries.push((path.as_str().into(), mark));
        if !is_file {
            continue;
        }
        outcome.files += 1;
        let (display, origin) = job.place(&path);
        let size = entry.size();
        let Some((data, err)) = content::read_sniffed(ctx, &display, &mut entry, size) else {
            continue;
        };
        let failed = err.is_some();
        if let Some(e) = err {
            if budget.is_tripped() {
                // Reported once by the caller; a bomb's output is not scanned.
                return false;
            }
            corrupt(format!(
                "cannot read {path} from the layer: {e}; the {} bytes before the error were \
                 scanned",
                data.len()
            ));
        }
        if data.len() > 0 || !failed {
            let item = Item {
                rel: path.into(),
                display,
                origin: origin.clone(),
                data,
            };
            if tx.send(item).is_err() {
                return false;
            }
        }
        if failed {
            return false;
        }
    }
    // Read what follows the end marker to the end of the blob, so a
    // verifying reader below sees the whole blob.
    drop(io::copy(&mut tar.into_inner(), &mut io::sink()));
    if let Some(name) = first_escape {
        env.sink.diagnostic(Diagnostic::skip(
            kinds::IMAGE_UNSAFE_PATH,
            subject,
            format!(
                "{} entries name paths above the layer root (first: `{name}`); they are shown \
                 relative to the root and never extracted",
                outcome.escaped
            ),
        ));
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shadow(entries: &[(&str, Mark)]) -> Shadow {
        let mut s = Shadow::default();
        let v: Vec<(Box<str>, Mark)> = entries.iter().map(|(p, m)| ((*p).into(), *m)).collect();
        s.add(&v);
        s
    }

    #[test]
    fn visibility_rules() {
        let s = shadow(&[
            ("etc", Mark::Dir),
            ("etc/app.conf", Mark::NonDir),
            ("secrets", Mark::Whiteout),
            ("cache", Mark::Opaque),
            ("cache", Mark::Dir),
            ("lib", Mark::NonDir),
        ]);
        assert!(s.hides("etc/app.conf"), "overwritten");
        assert!(
            !s.hides("etc/other.conf"),
            "a directory entry hides nothing below"
        );
        assert!(s.hides("secrets/key.pem"), "whiteout of a parent");
        assert!(s.hides("cache/blob"), "opaque parent");
        assert!(s.hides("lib/x.so"), "a file replaced the directory");
        assert!(!s.hides("usr/bin/env"));
    }

    #[test]
    fn whiteout_names() {
        assert_eq!(
            whiteout("app/.wh.secret.env"),
            Some(("app/secret.env".into(), Mark::Whiteout))
        );
        assert_eq!(
            whiteout("app/.wh..wh..opq"),
            Some(("app".into(), Mark::Opaque))
        );
        assert_eq!(whiteout(".wh.top"), Some(("top".into(), Mark::Whiteout)));
        assert_eq!(whiteout("a/.wh..wh.plnk"), Some((String::new(), Mark::Dir)));
        assert_eq!(whiteout("app/x.wh.y"), None);
    }

    #[test]
    fn names_never_climb() {
        assert_eq!(normalize(b"./app/x"), ("app/x".into(), false));
        assert_eq!(normalize(b"/etc/passwd"), ("etc/passwd".into(), false));
        assert_eq!(normalize(b"../../etc/shadow"), ("etc/shadow".into(), true));
        assert_eq!(normalize(b"a/../../b"), ("b".into(), true));
    }

    #[test]
    fn compression_magic() {
        assert_eq!(sniff_compression(&[0x1f, 0x8b, 8]), Compression::Gzip);
        assert_eq!(
            sniff_compression(&[0x28, 0xb5, 0x2f, 0xfd]),
            Compression::Zstd
        );
        assert_eq!(sniff_compression(b"app/"), Compression::None);
    }
}

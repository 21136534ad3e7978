//! Test helpers: a collecting sink, fixture builders for zip/tar/gzip, and a
//! runner that walks with a timeout (a hang is a failure, not a stuck CI).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::Duration;

use keytrail_input::{Blob, BlobSink, Content, Diagnostic, FsOptions, Origin, scan_paths};

/// One delivered blob, with its content read during the `blob` call.
#[derive(Debug, Clone)]
pub struct Got {
    pub path: String,
    pub origin: Origin,
    pub bytes: Vec<u8>,
    /// Whether it came as `Content::File`, and from which path.
    pub file: Option<PathBuf>,
}

/// Collects everything; reads `Content::File` inside the call, as the
/// contract requires.
#[derive(Default)]
pub struct Collect {
    pub blobs: Mutex<Vec<Got>>,
    pub diags: Mutex<Vec<Diagnostic>>,
}

impl BlobSink for Collect {
    fn blob(&self, blob: Blob) {
        let (bytes, file) = match blob.content {
            Content::Bytes(b) => (b, None),
            Content::File { path, len } => {
                let bytes = std::fs::read(&path).expect("Content::File must be readable in blob()");
                assert_eq!(bytes.len() as u64, len, "len of {}", blob.path);
                (bytes, Some(path))
            }
        };
        self.blobs.lock().unwrap().push(Got {
            path: blob.path,
            origin: blob.origin,
            bytes,
            file,
        });
    }

    fn diagnostic(&self, diag: Diagnostic) {
        self.diags.lock().unwrap().push(diag);
    }
}

/// What a walk produced, with paths made relative to the fixture root.
#[derive(Debug)]
pub struct Outcome {
    /// Relative display path → content.
    pub blobs: BTreeMap<String, Got>,
    pub diags: Vec<Diagnostic>,
}

impl Outcome {
    pub fn paths(&self) -> Vec<&str> {
        self.blobs.keys().map(String::as_str).collect()
    }

    pub fn text(&self, path: &str) -> String {
        let got = self
            .blobs
            .get(path)
            .unwrap_or_else(|| panic!("no blob {path}; have {:?}", self.paths()));
        String::from_utf8(got.bytes.clone()).expect("utf-8 blob")
    }

    /// Diagnostics of `kind`, as (relative subject, is_error).
    pub fn diags_of(&self, kind: &str) -> Vec<(String, bool)> {
        let mut v: Vec<_> = self
            .diags
            .iter()
            .filter(|d| d.kind == kind)
            .map(|d| (d.subject.clone(), d.is_error))
            .collect();
        v.sort();
        v
    }

    pub fn kinds(&self) -> Vec<String> {
        let mut v: Vec<_> = self.diags.iter().map(|d| d.kind.clone()).collect();
        v.sort();
        v
    }
}

/// Scan `paths` and relativise display paths against `root`. Fails the
/// test if the walk takes more than 60 s (a FIFO read would hang forever).
pub fn scan(root: &Path, paths: &[PathBuf], opts: &FsOptions) -> Outcome {
    let (tx, rx) = mpsc::channel();
    let paths = paths.to_vec();
    let opts = opts.clone();
    std::thread::spawn(move || {
        let sink = Collect::default();
        scan_paths(&paths, &opts, &sink);
        let _ = tx.send(sink);
    });
    let sink = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("scan_paths hung or panicked");
    outcome(root, sink)
}

/// Relativise a collected sink.
pub fn outcome(root: &Path, sink: Collect) -> Outcome {
    let prefix = format!("{}/", root.to_string_lossy());
    let rel = |s: &str| s.strip_prefix(&prefix).unwrap_or(s).to_string();
    let mut blobs = BTreeMap::new();
    for mut got in sink.blobs.into_inner().unwrap() {
        got.path = rel(&got.path);
        let key = got.path.clone();
        assert!(
            blobs.insert(key.clone(), got).is_none(),
            "blob {key} delivered twice"
        );
    }
    let diags = sink
        .diags
        .into_inner()
        .unwrap()
        .into_iter()
        .map(|mut d| {
            d.subject = rel(&d.subject);
            d
        })
        .collect();
    Outcome { blobs, diags }
}

/// Scan one directory root.
pub fn scan_dir(root: &Path, opts: &FsOptions) -> Outcome {
    scan(root, &[root.to_path_buf()], opts)
}

/// Write `contents` at `root/rel`, creating parents.
pub fn write(root: &Path, rel: &str, contents: impl AsRef<[u8]>) -> PathBuf {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, contents).unwrap();
    path
}

/// A zip archive of `(name, bytes)` members, deflated.
pub fn zip(members: &[(&str, &[u8])]) -> Vec<u8> {
    use zip::write::SimpleFileOptions;
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(false);
    for (name, bytes) in members {
        if name.ends_with('/') {
            w.add_directory(*name, opts).unwrap();
        } else {
            w.start_file(*name, opts).unwrap();
            w.write_all(bytes).unwrap();
        }
    }
    w.finish().unwrap().into_inner()
}

/// A ustar archive of `(name, bytes)` members.
pub fn tar(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, bytes) in members {
        let mut h = tar::Header::new_ustar();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, *bytes).unwrap();
    }
    b.into_inner().unwrap()
}

/// gzip of `bytes`, with an optional FNAME in the header.
pub fn gzip(bytes: &[u8], name: Option<&str>) -> Vec<u8> {
    let mut builder = flate2::GzBuilder::new();
    if let Some(n) = name {
        builder = builder.filename(n);
    }
    let mut enc = builder.write(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// Whether this process can read a file whose mode is 000 (root, or
/// CAP_DAC_OVERRIDE): then permission tests cannot observe a denial.
pub fn can_bypass_permissions(dir: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let probe = dir.join(".perm-probe");
    std::fs::write(&probe, b"x").unwrap();
    std::fs::set_permissions(&probe, std::fs::Permissions::from_mode(0o000)).unwrap();
    let readable = std::fs::read(&probe).is_ok();
    std::fs::set_permissions(&probe, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::remove_file(&probe).unwrap();
    readable
}

/// Drops, for the calling thread (and the threads it starts), the capabilities
/// that let root read any file (`CAP_DAC_OVERRIDE`, `CAP_DAC_READ_SEARCH`). A
/// no-op for an unprivileged process.
#[cfg(target_os = "linux")]
pub fn drop_permission_bypass() {
    use rustix::thread::{CapabilitySet, capabilities, set_capabilities};
    let mut caps = capabilities(None).expect("capget");
    caps.effective -= CapabilitySet::DAC_OVERRIDE | CapabilitySet::DAC_READ_SEARCH;
    set_capabilities(None, caps).expect("capset: drop CAP_DAC_OVERRIDE");
}

/// Elsewhere nothing is dropped: the test fails loudly when run with privileges.
#[cfg(not(target_os = "linux"))]
pub fn drop_permission_bypass() {}

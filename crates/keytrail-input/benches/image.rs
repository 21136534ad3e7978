//! Image scan benchmark: an OCI image of real files (this machine's
//! `/usr/share` and `~/.cargo/registry/src`, at least 300 MB uncompressed)
//! built with `umoci` at bench time and cached under the target directory;
//! reports decompressed layer MB/s of a first scan and the time to scan a
//! second tag that shares all but one small layer (scan once).
//!
//! `cargo bench -p keytrail-input --features image --bench image`
//! (`KEYTRAIL_BENCH_IMAGE_MB` caps the size taken from each source, default 400).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use keytrail_input::image::{ContentSeen, ImageOptions, scan_image};
use keytrail_input::{Blob, BlobSink, Content, Diagnostic};

/// Reads every delivered byte (as a scanner would) and counts.
#[derive(Default)]
struct Count {
    blobs: AtomicU64,
    bytes: AtomicU64,
    checksum: AtomicU64,
    errors: AtomicU64,
}

impl BlobSink for Count {
    fn blob(&self, blob: Blob) {
        let data = match blob.content {
            Content::Bytes(b) => b,
            Content::File { path, .. } => std::fs::read(path).unwrap_or_default(),
        };
        let sum = data.iter().fold(0u64, |a, b| a.wrapping_add(u64::from(*b)));
        self.checksum.fetch_add(sum, Ordering::Relaxed);
        self.blobs.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
    }
    fn diagnostic(&self, d: Diagnostic) {
        if d.is_error {
            self.errors.fetch_add(1, Ordering::Relaxed);
            eprintln!("error: {d}");
        }
    }
}

fn run(cmd: &mut Command) {
    let st = cmd.status().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(st.success(), "{cmd:?} failed");
}

/// Copy up to `cap` bytes of regular files from `src` into `dst`.
fn copy_tree(src: &Path, dst: &Path, cap: u64, copied: &mut u64) {
    let Ok(rd) = std::fs::read_dir(src) else {
        return;
    };
    let mut entries: Vec<_> = rd.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        if *copied >= cap {
            return;
        }
        let Ok(ft) = e.file_type() else { continue };
        let to = dst.join(e.file_name());
        if ft.is_dir() {
            std::fs::create_dir_all(&to).unwrap();
            copy_tree(&e.path(), &to, cap, copied);
        } else if ft.is_file() && std::fs::copy(e.path(), &to).is_ok() {
            *copied += e.metadata().map(|m| m.len()).unwrap_or(0);
        }
    }
}

fn build(dir: &Path, cap: u64) -> PathBuf {
    let layout = dir.join("layout");
    if layout.join("index.json").exists() {
        return layout;
    }
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let home = std::env::var("HOME").unwrap_or_default();
    let sources = [
        PathBuf::from("/usr/share"),
        Path::new(&home).join(".cargo/registry/src"),
    ];
    run(Command::new("umoci")
        .args(["init", "--layout"])
        .arg(&layout));
    let img = format!("{}:v1", layout.display());
    run(Command::new("umoci").args(["new", "--image", &img]));
    let bundle = dir.join("bundle");
    run(Command::new("umoci")
        .args(["unpack", "--rootless", "--image", &img])
        .arg(&bundle));
    for (i, src) in sources.iter().enumerate() {
        let mut copied = 0;
        let dst = bundle.join("rootfs").join(format!("data{i}"));
        std::fs::create_dir_all(&dst).unwrap();
        copy_tree(src, &dst, cap, &mut copied);
        eprintln!("layer {i}: {} MB from {}", copied >> 20, src.display());
        run(Command::new("umoci")
            .args(["repack", "--refresh-bundle", "--image", &img])
            .arg(&bundle));
    }
    // v2: v1 plus one small layer.
    run(Command::new("umoci").args(["tag", "--image", &img, "v2"]));
    let img2 = format!("{}:v2", layout.display());
    let bundle2 = dir.join("bundle2");
    run(Command::new("umoci")
        .args(["unpack", "--rootless", "--image", &img2])
        .arg(&bundle2));
    std::fs::write(bundle2.join("rootfs/app.conf"), "version = 2\n").unwrap();
    run(Command::new("umoci")
        .args(["repack", "--image", &img2])
        .arg(&bundle2));
    let _ = std::fs::remove_dir_all(&bundle);
    let _ = std::fs::remove_dir_all(&bundle2);
    layout
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let target = std::env::var("CARGO_TARGET_DIR").map_or_else(
        |_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"),
        PathBuf::from,
    );
    let cap_mb: u64 = std::env::var("KEYTRAIL_BENCH_IMAGE_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400);
    let dir = target.join(format!("keytrail-bench-image-{cap_mb}"));
    let layout = build(&dir, cap_mb << 20);
    let opts = ImageOptions::default();
    let seen = ContentSeen::new();

    let sink = Count::default();
    let t = Instant::now();
    let s1 = scan_image(&format!("oci:{}:v1", layout.display()), &opts, &sink, &seen);
    let d1 = t.elapsed();
    let mb = s1.layer_bytes as f64 / (1 << 20) as f64;
    println!(
        "v1: {} layers, {:.0} MB decompressed, {} files ({} scanned, {} duplicates, {} MB delivered) \
         in {:.2} s = {:.0} MB/s",
        s1.layers,
        mb,
        s1.files,
        s1.scanned,
        s1.duplicates,
        sink.bytes.load(Ordering::Relaxed) >> 20,
        d1.as_secs_f64(),
        mb / d1.as_secs_f64()
    );

    let sink2 = Count::default();
    let t = Instant::now();
    let s2 = scan_image(
        &format!("oci:{}:v2", layout.display()),
        &opts,
        &sink2,
        &seen,
    );
    let d2 = t.elapsed();
    println!(
        "v2 (shares {} of {} layers): {} layer(s) read, {} reused, {} contents scanned, {} \
         duplicates in {:.3} s",
        s2.layers_reused,
        s2.layers + s2.layers_reused,
        s2.layers,
        s2.layers_reused,
        s2.scanned,
        s2.duplicates,
        d2.as_secs_f64()
    );
    assert_eq!(
        sink.errors.load(Ordering::Relaxed) + sink2.errors.load(Ordering::Relaxed),
        0
    );
}

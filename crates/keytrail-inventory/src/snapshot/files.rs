//! How snapshot files are opened: the snapshot is untrusted input (a
//! directory handed over by someone else, or collected from an account an
//! attacker controls), so every read is bounded, refuses anything but a
//! regular file (devices, FIFOs, sockets, and symlinks to them), and stays
//! inside the snapshot root (a symlink or a resource name such as a bucket
//! called `../x` cannot lead it elsewhere).

use std::cell::RefCell;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Largest snapshot file read: the largest CLI outputs (credential reports
/// and policy lists of big accounts) are tens of MB.
pub const MAX_FILE_BYTES: u64 = 256 << 20;

thread_local! {
    /// Canonical root of the snapshot being loaded on this thread.
    static ROOT: RefCell<Option<PathBuf>> = const { RefCell::new(None) };
}

/// While alive, reads on this thread must stay inside `root`.
pub(crate) struct RootGuard(Option<PathBuf>);

impl RootGuard {
    /// Confine reads on this thread to `root` (canonicalised).
    pub(crate) fn enter(root: &Path) -> Self {
        let canonical = std::fs::canonicalize(root).ok();
        RootGuard(ROOT.with(|r| r.replace(canonical)))
    }
}

impl Drop for RootGuard {
    fn drop(&mut self) {
        let previous = self.0.take();
        ROOT.with(|r| *r.borrow_mut() = previous);
    }
}

fn refused(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, what)
}

#[cfg(unix)]
fn kind_of(ft: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_block_device() || ft.is_char_device() {
        "a device"
    } else {
        "not a regular file"
    }
}

#[cfg(not(unix))]
fn kind_of(ft: &std::fs::FileType) -> &'static str {
    if ft.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

/// Read the snapshot file at `path` whole, at most `limit` bytes. Errors
/// (`NotFound` when it is absent) say why a file was refused: not a regular
/// file (checked through symlinks, before opening, so a FIFO never blocks
/// the run), outside the snapshot root, or too big.
pub(crate) fn read_bounded(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    // Follows symlinks: a link to /dev/zero is a device.
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(refused(format!(
            "refused: {} (snapshot files must be regular files)",
            kind_of(&meta.file_type())
        )));
    }
    if let Some(root) = ROOT.with(|r| r.borrow().clone()) {
        let real = std::fs::canonicalize(path)?;
        if !real.starts_with(&root) {
            return Err(refused(format!(
                "refused: resolves to {}, outside the snapshot directory",
                real.display()
            )));
        }
    }
    let file = File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(refused("refused: not a regular file".to_string()));
    }
    if meta.len() > limit {
        return Err(refused(format!(
            "refused: {} bytes, over the {limit}-byte limit for a snapshot file",
            meta.len()
        )));
    }
    let mut buf = Vec::with_capacity(meta.len() as usize);
    file.take(limit + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > limit {
        return Err(refused(format!(
            "refused: grew past the {limit}-byte limit for a snapshot file while being read"
        )));
    }
    Ok(buf)
}

/// Whether `name` (a resource name from the snapshot: bucket, key id,
/// cluster, storage account) can be used as one file-name component: not
/// empty, not `.` or `..`, no separator or NUL.
pub(crate) fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names() {
        for ok in ["bucket", "my.bucket-1", "AKIA0123", "a..b"] {
            assert!(is_plain_name(ok), "{ok}");
        }
        for bad in ["", ".", "..", "../x", "a/b", "a\\b", "x\0"] {
            assert!(!is_plain_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn limits_and_special_files() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.json");
        std::fs::write(&f, "0123456789").unwrap();
        assert_eq!(read_bounded(&f, 10).unwrap(), b"0123456789");
        let e = read_bounded(&f, 9).unwrap_err();
        assert!(e.to_string().contains("over the 9-byte limit"), "{e}");
        let e = read_bounded(dir.path(), 10).unwrap_err();
        assert!(e.to_string().contains("a directory"), "{e}");
        #[cfg(unix)]
        {
            let link = dir.path().join("zero.json");
            std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
            let e = read_bounded(&link, 10).unwrap_err();
            assert!(e.to_string().contains("a device"), "{e}");
        }
        assert_eq!(
            read_bounded(&dir.path().join("absent"), 10)
                .unwrap_err()
                .kind(),
            io::ErrorKind::NotFound
        );
    }

    #[test]
    fn reads_stay_inside_the_root() {
        let outside = tempfile::tempdir().unwrap();
        let secret = outside.path().join("secret.json");
        std::fs::write(&secret, "{}").unwrap();
        let root = tempfile::tempdir().unwrap();
        let inside = root.path().join("in.json");
        std::fs::write(&inside, "{}").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(&secret, root.path().join("link.json")).unwrap();
        let _guard = RootGuard::enter(root.path());
        assert!(read_bounded(&inside, 10).is_ok());
        let e = read_bounded(
            &root
                .path()
                .join("../")
                .join(outside.path().file_name().unwrap())
                .join("secret.json"),
            10,
        )
        .unwrap_err();
        assert!(e.to_string().contains("outside the snapshot"), "{e}");
        #[cfg(unix)]
        {
            let e = read_bounded(&root.path().join("link.json"), 10).unwrap_err();
            assert!(e.to_string().contains("outside the snapshot"), "{e}");
        }
    }
}

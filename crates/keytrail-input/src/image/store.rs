//! Where image blobs are read from: an OCI layout directory, a tar file
//! (docker save output or an OCI layout archive, read in place by member
//! offset, never extracted), or a registry (see [`super::registry`]).
//! A gzip-compressed archive is decompressed once, under the layer budget,
//! into a private temporary file.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::oci::valid_digest;
use super::{BlobError, kinds};

/// A readable blob and its size, when known.
pub(crate) type Opened<'a> = (Box<dyn Read + Send + 'a>, Option<u64>);

/// A source of blobs.
pub(crate) trait Store: Sync {
    /// Open the blob with this digest.
    fn open_digest(&self, digest: &str) -> Result<Opened<'_>, BlobError>;
    /// Open a blob by its path inside the image (docker save archives name
    /// layers and configs by path). Registries have no paths.
    fn open_path(&self, path: &str) -> Result<Opened<'_>, BlobError>;
    /// Whether a path exists.
    fn has_path(&self, path: &str) -> bool;
}

/// Path of a digest's blob in an OCI layout.
fn digest_path(digest: &str) -> Result<String, BlobError> {
    if !valid_digest(digest) {
        return Err(BlobError::new(
            kinds::IMAGE_CORRUPT,
            format!("invalid digest `{digest}`"),
        ));
    }
    let (alg, hex) = digest.split_once(':').unwrap_or_default();
    Ok(format!("blobs/{alg}/{hex}"))
}

fn missing(path: &str, e: &io::Error) -> BlobError {
    let kind = if e.kind() == io::ErrorKind::NotFound {
        kinds::IMAGE_BLOB_MISSING
    } else {
        kinds::IMAGE_UNREADABLE
    };
    BlobError::new(kind, format!("cannot open blob {path}: {e}"))
}

/// An OCI image layout directory.
pub(crate) struct DirStore {
    root: PathBuf,
}

impl DirStore {
    pub(crate) fn new(root: &Path) -> Self {
        DirStore {
            root: root.to_path_buf(),
        }
    }
}

/// A relative path without `..`, absolute parts or backslashes.
fn safe_rel(path: &str) -> Option<&str> {
    let path = path.strip_prefix("./").unwrap_or(path);
    let ok = !path.is_empty()
        && !path.starts_with('/')
        && !path.contains('\\')
        && path.split('/').all(|c| !c.is_empty() && c != "..");
    ok.then_some(path)
}

impl Store for DirStore {
    fn open_digest(&self, digest: &str) -> Result<Opened<'_>, BlobError> {
        self.open_path(&digest_path(digest)?)
    }

    fn open_path(&self, path: &str) -> Result<Opened<'_>, BlobError> {
        let rel = safe_rel(path).ok_or_else(|| {
            BlobError::new(kinds::IMAGE_CORRUPT, format!("unsafe blob path `{path}`"))
        })?;
        let file = File::open(self.root.join(rel)).map_err(|e| missing(path, &e))?;
        let len = file.metadata().map(|m| m.len()).ok();
        Ok((Box::new(io::BufReader::with_capacity(256 << 10, file)), len))
    }

    fn has_path(&self, path: &str) -> bool {
        safe_rel(path).is_some_and(|rel| self.root.join(rel).is_file())
    }
}

/// A member of a tar archive.
#[derive(Debug, Clone)]
enum Member {
    /// Data at this offset, of this size.
    File { offset: u64, size: u64 },
    /// A symbolic or hard link to another member (legacy docker save links
    /// `<id>/layer.tar` to `../<diffid>.tar`).
    Link(String),
}

/// A tar archive read in place.
pub(crate) struct TarStore {
    path: PathBuf,
    members: HashMap<String, Member>,
    /// The decompressed copy of a gzip-compressed archive, deleted on drop.
    _temp: Option<tempfile::NamedTempFile>,
}

impl TarStore {
    /// Index the members of the tar at `path` (gzip-compressed or not).
    /// `max_bytes` caps the decompressed size of a compressed archive.
    pub(crate) fn open(path: &Path, max_bytes: u64) -> Result<TarStore, BlobError> {
        let unreadable =
            |e: io::Error| BlobError::new(kinds::IMAGE_UNREADABLE, format!("cannot read: {e}"));
        let mut file = File::open(path).map_err(|e| {
            let kind = if e.kind() == io::ErrorKind::NotFound {
                crate::kinds::NOT_FOUND
            } else {
                kinds::IMAGE_UNREADABLE
            };
            BlobError::new(kind, format!("cannot open: {e}"))
        })?;
        let mut magic = [0u8; 2];
        let n = file.read(&mut magic).map_err(unreadable)?;
        file.seek(SeekFrom::Start(0)).map_err(unreadable)?;
        let mut temp = None;
        let mut tar_path = path.to_path_buf();
        if n == 2 && magic == [0x1f, 0x8b] {
            let len = file.metadata().map(|m| m.len()).unwrap_or(0);
            let t = gunzip_to_temp(file, len, max_bytes)?;
            tar_path = t.path().to_path_buf();
            file = t.reopen().map_err(unreadable)?;
            temp = Some(t);
        }
        let members = index(file)?;
        Ok(TarStore {
            path: tar_path,
            members,
            _temp: temp,
        })
    }

    fn resolve(&self, name: &str) -> Option<(u64, u64)> {
        let mut name = normalize_member(name)?;
        for _ in 0..16 {
            match self.members.get(&name)? {
                Member::File { offset, size } => return Some((*offset, *size)),
                Member::Link(target) => name = target.clone(),
            }
        }
        None
    }
}

/// Decompress a gzip stream into a private temporary file, capped.
fn gunzip_to_temp(
    file: File,
    compressed: u64,
    max_bytes: u64,
) -> Result<tempfile::NamedTempFile, BlobError> {
    let budget = crate::archive::Budget::new(max_bytes, compressed);
    let mut reader = crate::archive::Capped::new(
        flate2::read::MultiGzDecoder::new(io::BufReader::new(file)),
        &budget,
    );
    let mut temp = tempfile::Builder::new()
        .prefix("keytrail-image-")
        .tempfile()
        .map_err(|e| BlobError::new(kinds::IMAGE_UNREADABLE, format!("temporary file: {e}")))?;
    if let Err(e) = io::copy(&mut reader, temp.as_file_mut()) {
        let kind = if budget.is_tripped() {
            kinds::IMAGE_LIMIT
        } else {
            kinds::IMAGE_CORRUPT
        };
        return Err(BlobError::new(
            kind,
            format!("cannot decompress the gzip-compressed archive: {e}"),
        ));
    }
    Ok(temp)
}

/// A member name as a clean relative path (`./a//b` → `a/b`); `None` for
/// names that climb out with `..`.
fn normalize_member(name: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(parts.join("/"))
}

/// Offsets of every member, by reading headers only (data is seeked over).
fn index(file: File) -> Result<HashMap<String, Member>, BlobError> {
    let corrupt =
        |e: io::Error| BlobError::new(kinds::IMAGE_CORRUPT, format!("cannot read the tar: {e}"));
    let mut tar = tar::Archive::new(file);
    let mut members = HashMap::new();
    for entry in tar.entries_with_seek().map_err(corrupt)? {
        let entry = entry.map_err(corrupt)?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let Some(name) = normalize_member(&raw) else {
            continue;
        };
        let kind = entry.header().entry_type();
        let member = if kind.is_symlink() || kind.is_hard_link() {
            let Some(target) = entry.link_name_bytes() else {
                continue;
            };
            let target = String::from_utf8_lossy(&target).into_owned();
            // Symlinks are relative to the link's directory; hard links to the root.
            let joined = match (kind.is_symlink(), name.rsplit_once('/')) {
                (true, Some((dir, _))) if !target.starts_with('/') => format!("{dir}/{target}"),
                _ => target,
            };
            match normalize_member(&joined) {
                Some(t) => Member::Link(t),
                None => continue,
            }
        } else if kind.is_file() || kind.is_contiguous() {
            Member::File {
                offset: entry.raw_file_position(),
                size: entry.size(),
            }
        } else {
            continue;
        };
        members.insert(name, member);
    }
    Ok(members)
}

impl Store for TarStore {
    fn open_digest(&self, digest: &str) -> Result<Opened<'_>, BlobError> {
        self.open_path(&digest_path(digest)?)
    }

    fn open_path(&self, path: &str) -> Result<Opened<'_>, BlobError> {
        let (offset, size) = self.resolve(path).ok_or_else(|| {
            BlobError::new(
                kinds::IMAGE_BLOB_MISSING,
                format!("blob {path} is not in the archive"),
            )
        })?;
        let mut file = File::open(&self.path).map_err(|e| missing(path, &e))?;
        let file_len = file.metadata().map(|m| m.len()).unwrap_or(u64::MAX);
        if offset.saturating_add(size) > file_len {
            return Err(BlobError::new(
                kinds::IMAGE_CORRUPT,
                format!(
                    "blob {path} is truncated: the archive ends {} bytes before its end",
                    offset.saturating_add(size) - file_len
                ),
            ));
        }
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| missing(path, &e))?;
        let reader = io::BufReader::with_capacity(256 << 10, file).take(size);
        Ok((Box::new(reader), Some(size)))
    }

    fn has_path(&self, path: &str) -> bool {
        self.resolve(path).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_names_are_normalised_and_never_climb() {
        assert_eq!(normalize_member("./a//b/./c").as_deref(), Some("a/b/c"));
        assert_eq!(normalize_member("x/../y").as_deref(), Some("y"));
        assert_eq!(normalize_member("../etc/passwd"), None);
        assert_eq!(safe_rel("blobs/sha256/ab"), Some("blobs/sha256/ab"));
        assert_eq!(safe_rel("../x"), None);
        assert_eq!(safe_rel("/etc/passwd"), None);
    }

    #[test]
    fn tar_store_follows_relative_symlinks() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_size(5);
        h.set_mode(0o644);
        b.append_data(&mut h, "abc.tar", &b"hello"[..]).unwrap();
        let mut l = tar::Header::new_ustar();
        l.set_entry_type(tar::EntryType::Symlink);
        l.set_size(0);
        b.append_link(&mut l, "id/layer.tar", "../abc.tar").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.tar");
        std::fs::write(&p, b.into_inner().unwrap()).unwrap();
        let store = TarStore::open(&p, 1 << 20).unwrap();
        let (mut r, len) = store.open_path("id/layer.tar").unwrap();
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        assert_eq!((s.as_str(), len), ("hello", Some(5)));
        assert_eq!(
            store.open_path("nope").err().unwrap().kind,
            kinds::IMAGE_BLOB_MISSING
        );
    }
}

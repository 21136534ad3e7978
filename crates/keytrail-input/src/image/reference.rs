//! What `--image REF` names: a `docker save` archive, an OCI layout
//! (directory or tar), or an image in a registry, with the same syntax as
//! skopeo and docker (`docker-archive:PATH`, `oci:PATH[:TAG]`,
//! `oci-archive:PATH[:TAG]`, `[docker://]HOST[:PORT]/REPO[:TAG][@DIGEST]`,
//! Docker Hub short names). A bare existing local path is recognised by
//! its contents.

use std::io::Read;
use std::path::{Path, PathBuf};

/// Where an image comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    /// A `docker save` tarball (optionally gzip-compressed): `manifest.json`
    /// plus layer tars, legacy or OCI-in-docker-save layout.
    DockerArchive(PathBuf),
    /// An OCI image layout directory, optionally one tag of it.
    OciDir {
        /// The layout directory (holds `index.json`).
        path: PathBuf,
        /// Only the manifests annotated with this `org.opencontainers.image.ref.name`.
        tag: Option<String>,
    },
    /// An OCI image layout in a tar file, optionally one tag of it.
    OciArchive {
        /// The tar file.
        path: PathBuf,
        /// Only the manifests annotated with this ref name.
        tag: Option<String>,
    },
    /// An image in a registry.
    Registry(RegistryRef),
}

/// A parsed registry reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryRef {
    /// `host[:port]` as written (`docker.io` for Docker Hub).
    pub registry: String,
    /// Repository path (`library/alpine`).
    pub repository: String,
    /// Tag, if any (`latest` when neither tag nor digest is given).
    pub tag: Option<String>,
    /// `sha256:...` digest, if given.
    pub digest: Option<String>,
}

impl RegistryRef {
    /// Host to talk to: Docker Hub's API host for `docker.io`.
    pub fn api_host(&self) -> &str {
        if self.registry == "docker.io" || self.registry == "index.docker.io" {
            "registry-1.docker.io"
        } else {
            &self.registry
        }
    }

    /// The tag or digest to fetch (a digest wins).
    pub fn reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// Canonical text: `registry/repository[:tag][@digest]`.
    pub fn canonical(&self) -> String {
        let mut s = format!("{}/{}", self.registry, self.repository);
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
        s
    }
}

/// Parse an image reference. Errors are messages for a diagnostic.
pub fn parse(reference: &str) -> Result<ImageSource, String> {
    if let Some(rest) = reference.strip_prefix("docker-archive:") {
        return Ok(ImageSource::DockerArchive(PathBuf::from(
            strip_existing_suffix(rest).0,
        )));
    }
    if let Some(rest) = reference.strip_prefix("oci-archive:") {
        let (path, tag) = strip_existing_suffix(rest);
        return Ok(ImageSource::OciArchive {
            path: PathBuf::from(path),
            tag,
        });
    }
    if let Some(rest) = reference.strip_prefix("oci:") {
        let (path, tag) = strip_existing_suffix(rest);
        return Ok(ImageSource::OciDir {
            path: PathBuf::from(path),
            tag,
        });
    }
    if let Some(rest) = reference.strip_prefix("docker://") {
        return parse_registry(rest).map(ImageSource::Registry);
    }
    let path = Path::new(reference);
    if path.exists() {
        return detect_local(path);
    }
    // `LAYOUT:TAG`, the way skopeo writes `oci:LAYOUT:TAG` without the
    // transport: an existing OCI layout directory before the last `:`.
    if let Some((dir, tag)) = reference.rsplit_once(':')
        && !tag.is_empty()
        && !tag.contains('/')
        && Path::new(dir).join("index.json").is_file()
    {
        return Ok(ImageSource::OciDir {
            path: PathBuf::from(dir),
            tag: Some(tag.to_string()),
        });
    }
    if reference.starts_with('/') || reference.starts_with('.') {
        return detect_local(path);
    }
    parse_registry(reference).map(ImageSource::Registry)
}

/// `PATH[:TAG]` where PATH itself may contain `:`: the whole string is a
/// path if it exists, otherwise the part after the last `:` is the tag.
fn strip_existing_suffix(s: &str) -> (String, Option<String>) {
    if Path::new(s).exists() {
        return (s.to_string(), None);
    }
    match s.rsplit_once(':') {
        Some((p, t)) if !t.is_empty() && !t.contains('/') && Path::new(p).exists() => {
            (p.to_string(), Some(t.to_string()))
        }
        _ => (s.to_string(), None),
    }
}

/// A local path: an OCI layout directory, or a tar (gzip-compressed or
/// not) holding `manifest.json` (docker save) or `index.json` (OCI).
fn detect_local(path: &Path) -> Result<ImageSource, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot open: {e}"))?;
    if meta.is_dir() {
        if path.join("index.json").is_file() {
            return Ok(ImageSource::OciDir {
                path: path.to_path_buf(),
                tag: None,
            });
        }
        return Err("directory is not an OCI image layout (no index.json)".into());
    }
    let mut head = [0u8; 2];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|e| format!("cannot read: {e}"))?;
    if n == 2 && head == [0x1f, 0x8b] {
        // `docker save | gzip`: the archive module tells the layouts apart.
        return Ok(ImageSource::DockerArchive(path.to_path_buf()));
    }
    let mut saw_index = false;
    let file = std::fs::File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let mut tar = tar::Archive::new(file);
    let entries = tar.entries().map_err(|e| format!("not a tar: {e}"))?;
    for entry in entries {
        let Ok(entry) = entry else { break };
        let name = entry.path_bytes();
        let name = name.strip_prefix(b"./").unwrap_or(&name);
        match name {
            b"manifest.json" => return Ok(ImageSource::DockerArchive(path.to_path_buf())),
            b"index.json" => saw_index = true,
            _ => {}
        }
    }
    if saw_index {
        return Ok(ImageSource::OciArchive {
            path: path.to_path_buf(),
            tag: None,
        });
    }
    Err("not an image archive (no manifest.json or index.json)".into())
}

/// `[HOST[:PORT]/]REPO[:TAG][@DIGEST]`, docker's rules: the first path
/// component is a registry host if it contains `.` or `:` or is `localhost`;
/// otherwise the image is on Docker Hub, and a one-component name is under
/// `library/`.
pub fn parse_registry(s: &str) -> Result<RegistryRef, String> {
    if s.is_empty() || s.chars().any(|c| c.is_whitespace()) {
        return Err(format!("invalid image reference `{s}`"));
    }
    let (rest, digest) = match s.split_once('@') {
        Some((r, d)) => {
            if !super::oci::valid_digest(d) {
                return Err(format!("invalid digest `{d}` in image reference"));
            }
            (r, Some(d.to_string()))
        }
        None => (s, None),
    };
    // A tag is after the last `:` that comes after the last `/`.
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => (
            &rest[..last_slash + i],
            Some(rest[last_slash + i + 1..].to_string()),
        ),
        None => (rest, None),
    };
    if let Some(t) = &tag
        && (t.is_empty()
            || t.len() > 128
            || !t
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)))
    {
        return Err(format!("invalid tag `{t}` in image reference"));
    }
    let (registry, repository) = match name.split_once('/') {
        Some((first, repo))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (first.to_string(), repo.to_string())
        }
        Some(_) => ("docker.io".to_string(), name.to_string()),
        None => ("docker.io".to_string(), format!("library/{name}")),
    };
    if repository.is_empty()
        || !repository
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/".contains(&b))
        || repository
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(format!("invalid repository name `{repository}`"));
    }
    let tag = if tag.is_none() && digest.is_none() {
        Some("latest".to_string())
    } else {
        tag
    };
    Ok(RegistryRef {
        registry,
        repository,
        tag,
        digest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(s: &str) -> RegistryRef {
        match parse(s).unwrap() {
            ImageSource::Registry(r) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn registry_references() {
        let r = reg("alpine");
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.reference()),
            ("docker.io", "library/alpine", "latest")
        );
        assert_eq!(r.api_host(), "registry-1.docker.io");
        let r = reg("localhost:5000/team/app:v1.2");
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("localhost:5000", "team/app", Some("v1.2"))
        );
        let d = format!("sha256:{}", "ab".repeat(32));
        let r = reg(&format!("ghcr.io/o/r@{d}"));
        assert_eq!((r.tag, r.digest.as_deref()), (None, Some(d.as_str())));
        let r = reg(&format!("docker://quay.io/o/r:t@{d}"));
        assert_eq!(r.reference(), d);
        assert_eq!(r.canonical(), format!("quay.io/o/r:t@{d}"));
        assert_eq!(reg("user/app:1").repository, "user/app");
        assert_eq!(reg("127.0.0.1:5000/x:y").registry, "127.0.0.1:5000");
    }

    #[test]
    fn bad_references_are_errors() {
        for bad in [
            "",
            "Upper/Case",
            "x@sha256:zz",
            "a:b c",
            "host.io/../x",
            "x:",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn transports_and_tags() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().to_str().unwrap();
        assert_eq!(
            parse(&format!("oci:{p}:v2")).unwrap(),
            ImageSource::OciDir {
                path: dir.path().to_path_buf(),
                tag: Some("v2".into())
            }
        );
        assert_eq!(
            parse(&format!("docker-archive:{p}/x.tar")).unwrap(),
            ImageSource::DockerArchive(dir.path().join("x.tar"))
        );
        std::fs::write(dir.path().join("index.json"), "{}").unwrap();
        assert!(matches!(
            parse(p).unwrap(),
            ImageSource::OciDir { tag: None, .. }
        ));
        // A layout directory with a tag and no transport is the layout, not
        // a Docker Hub name.
        assert_eq!(
            parse(&format!("{p}:v2")).unwrap(),
            ImageSource::OciDir {
                path: dir.path().to_path_buf(),
                tag: Some("v2".into())
            }
        );
    }

    /// A relative layout path (`layout`, `build/layout:1.0`) with no `./`
    /// and no transport: taken as a Docker Hub name before.
    #[test]
    fn relative_layout_paths_without_transport() {
        // Relative to the working directory, with a name that is also a
        // valid repository name (lowercase, no leading dot).
        let dir = tempfile::Builder::new()
            .prefix("kt-layout-")
            .rand_bytes(0)
            .suffix(&std::process::id().to_string())
            .tempdir_in(".")
            .unwrap();
        let name = dir
            .path()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        std::fs::create_dir(dir.path().join("layout")).unwrap();
        std::fs::write(dir.path().join("layout/index.json"), "{}").unwrap();
        let rel = format!("{name}/layout");
        assert!(matches!(
            parse(&rel).unwrap(),
            ImageSource::OciDir { tag: None, .. }
        ));
        assert_eq!(
            parse(&format!("{rel}:1.0")).unwrap(),
            ImageSource::OciDir {
                path: PathBuf::from(&rel),
                tag: Some("1.0".into())
            }
        );
        // Not a layout: still a registry name.
        assert!(matches!(
            parse(&format!("{name}/missing:1.0")).unwrap(),
            ImageSource::Registry(_)
        ));
    }
}

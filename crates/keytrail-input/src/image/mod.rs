//! The container image source behind `keytrail scan --image REF`: every
//! layer of every selected platform of an image, each on its own and before
//! whiteouts are applied, plus the image config (Env, Cmd, Entrypoint,
//! Labels, health check, ONBUILD and every history `created_by`, where ARG
//! and ENV values and RUN lines live).
//!
//! Inputs ([`reference`]): `docker save` archives (legacy and
//! OCI-in-docker-save layouts, optionally gzip-compressed), OCI image
//! layouts (directory or tar), and registries over the OCI distribution API
//! ([`registry`]: anonymous, basic, bearer-token; credentials from flags or
//! docker's `config.json`), including multi-platform indexes. [`catalog`]
//! lists a registry's repositories and tags with the same client.
//!
//! How an image is scanned ([`scan_image`]):
//! 1. **Resolve** the reference to one manifest per selected platform
//!    (indexes are followed; BuildKit attestation manifests are scanned too:
//!    provenance can record build arguments).
//! 2. **Config**: each config entry is a blob of its own, shown as
//!    `@config:Cmd`, `@config:Labels[key]`, `@config:history[5]`, except
//!    the environment: every `Env` entry is one line of the one blob
//!    `IMAGE@config:Env` (line N is `Env[N-1]`; line breaks inside a value
//!    become spaces), so a key id and its secret set by two `ENV`
//!    instructions are read together and paired, as in a `.env` file;
//!    history entries that made a layer carry that layer's index and digest.
//! 3. **Layers**, top (last) layer first, so whether a file is still visible
//!    in the final filesystem is known as it is read ([`layer`]). Files are
//!    shown as `IMAGE@layerN:/path` (with `[os/arch]` after IMAGE for
//!    multi-platform images); archives inside (jars, wheels) are opened as
//!    for files. Reading is streamed; the layer's decompression goes through
//!    the crate's capped reader (a per-layer budget and the bomb ratio).
//! 4. **Scan once** ([`ContentSeen`]): a content already scanned in this run
//!    (same SHA-256) is not delivered again, and a layer already read (same
//!    digest) is not even decompressed; their locations are recorded and
//!    [`ContentSeen::expand_findings`] adds them to the findings.
//!
//! Bad input (truncated tars, corrupt compression, missing blobs, bombs,
//! registry and auth errors) becomes diagnostics naming the image and layer;
//! other layers and images go on. Diagnostic kinds are listed in [`kinds`].

pub mod catalog;
mod layer;
mod oci;
pub mod reference;
mod registry;
mod remediation;
mod seen;
mod store;

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use keytrail_types::{Diagnostic, ImageOrigin, Origin, Secret};

use crate::content::{self, Ctx, Level};
use crate::spill::Data;
use crate::{Blob, BlobSink, FsOptions};
use oci::{Descriptor, DockerSaveEntry, ImageConfig, ManifestOrIndex, Platform};
use reference::ImageSource;
use store::{DirStore, Store, TarStore};

pub use keytrail_types::{
    AffectedConfigEntry, AffectedImage, AffectedLayer, Remediation, RemediationStep,
};
pub use reference::{RegistryRef, parse as parse_reference};
pub use remediation::{ImageRemediation, finish_findings, remediation};
pub use seen::{ContentId, ContentSeen, DuplicateLocation};

/// Options of an image scan.
///
/// Construct with `ImageOptions { platforms, ..ImageOptions::default() }`:
/// fields may be added.
#[derive(Debug, Clone)]
pub struct ImageOptions {
    /// Platforms to scan from multi-platform images, `os/arch[/variant]`
    /// (`linux/arm64`, `linux/arm/v7`; a filter without variant matches
    /// every variant). Empty: every platform.
    pub platforms: Vec<String>,
    /// Registry user name (HTTP basic, or sent to the token service).
    pub username: Option<String>,
    /// Registry password or access token used as a password.
    pub password: Option<Secret<String>>,
    /// A registry bearer token, sent as is (takes precedence).
    pub token: Option<Secret<String>>,
    /// Docker `config.json` to read `auths` from when no credentials are
    /// given; `None`: `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`.
    pub docker_config: Option<PathBuf>,
    /// Registry hosts (`host:port`) spoken to over plain HTTP. Loopback
    /// registries (`localhost`, `127.*`) fall back to HTTP without it.
    pub plain_http: Vec<String>,
    /// Decompressed bytes read at most from one layer (and from a
    /// gzip-compressed archive). Reaching it stops that layer with an
    /// `archive_limit` (or, far beyond the compressed size, `archive_bomb`)
    /// diagnostic. Default 8 GiB.
    pub max_layer_bytes: u64,
    /// Worker threads scanning a layer's files; `0` picks from the CPUs.
    pub threads: usize,
    /// How file contents are handled, as for files: archives in layers
    /// (jars, wheels, tarballs) and their limits, binary skipping, memory
    /// limit (`excludes` and `follow_symlinks` are not used).
    pub content: FsOptions,
    /// A recurring scan: the digest an earlier scan of this reference saw
    /// ([`ImageStats::digest`]). When the image still has it, nothing is
    /// read and [`ImageStats::unchanged`] is set.
    pub skip_digest: Option<String>,
}

impl Default for ImageOptions {
    fn default() -> Self {
        ImageOptions {
            platforms: Vec::new(),
            username: None,
            password: None,
            token: None,
            docker_config: None,
            plain_http: Vec::new(),
            max_layer_bytes: 8 << 30,
            threads: 0,
            content: FsOptions::default(),
            skip_digest: None,
        }
    }
}

/// One image (one platform of one reference) that was scanned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannedImage {
    /// Image reference, as in [`ImageOrigin::image`].
    pub image: String,
    /// Manifest digest, when known.
    pub manifest_digest: Option<String>,
    /// Platform, when known.
    pub platform: Option<String>,
    /// Layer digests, base first.
    pub layers: Vec<String>,
}

/// What an image scan did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageStats {
    /// Every image manifest scanned (one per platform).
    pub images: Vec<ScannedImage>,
    /// Layers decompressed and read.
    pub layers: u64,
    /// Layers not read again because a layer with the same digest was
    /// already read in this run (their locations are still recorded).
    pub layers_reused: u64,
    /// Decompressed layer bytes read.
    pub layer_bytes: u64,
    /// Regular files seen in the layers read.
    pub files: u64,
    /// Contents delivered to the sink (first seen in this run).
    pub scanned: u64,
    /// Contents (files and config entries) identical to one scanned before:
    /// recorded, not delivered again.
    pub duplicates: u64,
    /// Config entries delivered or recorded.
    pub config_entries: u64,
    /// Error diagnostics sent.
    pub errors: u64,
    /// What the reference named when it was resolved: the digest of the
    /// manifest or index a registry served for it, else of the one
    /// manifest selected (or, for several, a SHA-256 of their digests).
    /// `None` when it could not be resolved.
    pub digest: Option<String>,
    /// The digest was [`ImageOptions::skip_digest`]: nothing was read.
    pub unchanged: bool,
}

/// Stable diagnostic kinds produced by the image source (plus the
/// crate-wide ones: `binary`, `archive_bomb`, `archive_limit`, ...).
pub mod kinds {
    /// The reference does not parse or names no image (error).
    pub const IMAGE_REFERENCE: &str = "image_reference";
    /// A manifest, index, config or layer is malformed, truncated or
    /// corrupt, or a blob does not match its digest (error).
    pub const IMAGE_CORRUPT: &str = "image_corrupt";
    /// A blob the image needs is missing from the archive, layout or
    /// registry (error).
    pub const IMAGE_BLOB_MISSING: &str = "image_blob_missing";
    /// A file or blob cannot be read (error).
    pub const IMAGE_UNREADABLE: &str = "image_unreadable";
    /// A registry cannot be reached or answers with an error (error).
    pub const IMAGE_REGISTRY: &str = "image_registry";
    /// Authentication to a registry failed (error).
    pub const IMAGE_AUTH: &str = "image_auth";
    /// Decompressing a compressed image archive hit the byte cap (error).
    pub const IMAGE_LIMIT: &str = "image_limit";
    /// Layer entries named above the layer root (`../x`): shown relative
    /// to the root, never extracted (notice).
    pub const IMAGE_UNSAFE_PATH: &str = "image_unsafe_path";
    /// A non-distributable (foreign) layer absent from the image (notice).
    pub const IMAGE_FOREIGN_LAYER: &str = "image_foreign_layer";
    /// No manifest matched the platform or tag selection (notice).
    pub const IMAGE_NO_MATCH: &str = "image_no_match";
}

/// An error reading part of an image: a diagnostic kind and message.
#[derive(Debug, Clone)]
pub(crate) struct BlobError {
    pub(crate) kind: &'static str,
    pub(crate) message: String,
}

impl BlobError {
    pub(crate) fn new(kind: &'static str, message: impl Into<String>) -> Self {
        BlobError {
            kind,
            message: message.into(),
        }
    }

    fn diagnostic(&self, subject: &str) -> Diagnostic {
        let is_error = !matches!(self.kind, kinds::IMAGE_FOREIGN_LAYER);
        let d = Diagnostic::error(self.kind, subject, self.message.clone());
        Diagnostic { is_error, ..d }
    }
}

/// Largest manifest, index or config read.
const MAX_DOCUMENT: u64 = 32 << 20;

/// Passes everything on and counts errors.
struct Counted<'a> {
    inner: &'a dyn BlobSink,
    errors: AtomicU64,
}

impl BlobSink for Counted<'_> {
    fn blob(&self, blob: Blob) {
        self.inner.blob(blob);
    }
    fn diagnostic(&self, diag: Diagnostic) {
        if diag.is_error {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        self.inner.diagnostic(diag);
    }
}

/// Where the blobs of the image come from.
enum Source {
    Local(Box<dyn Store>),
    Registry(registry::Registry),
}

impl Source {
    fn store(&self) -> &dyn Store {
        match self {
            Source::Local(s) => s.as_ref(),
            Source::Registry(r) => r,
        }
    }

    /// A manifest or index by digest, with its content type if the source
    /// reports one.
    fn document(&self, digest: &str, what: &str) -> Result<(Vec<u8>, Option<String>), BlobError> {
        match self {
            Source::Registry(r) => r.manifest(digest, what).map(|d| (d.bytes, d.content_type)),
            Source::Local(s) => {
                let (r, _) = s.open_digest(digest)?;
                read_document(r, what).map(|b| (b, None))
            }
        }
    }
}

fn read_document(r: Box<dyn Read + Send + '_>, what: &str) -> Result<Vec<u8>, BlobError> {
    let mut buf = Vec::new();
    r.take(MAX_DOCUMENT + 1)
        .read_to_end(&mut buf)
        .map_err(|e| BlobError::new(kinds::IMAGE_CORRUPT, format!("cannot read {what}: {e}")))?;
    if buf.len() as u64 > MAX_DOCUMENT {
        return Err(BlobError::new(
            kinds::IMAGE_CORRUPT,
            format!("{what} is larger than {MAX_DOCUMENT} bytes"),
        ));
    }
    Ok(buf)
}

fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, BlobError> {
    serde_json::from_slice(bytes).map_err(|e| {
        BlobError::new(
            kinds::IMAGE_CORRUPT,
            format!("{what} is not valid JSON: {e}"),
        )
    })
}

/// A blob named by digest (OCI, registries) or by path (docker save).
#[derive(Debug, Clone)]
enum BlobRef {
    Digest(String),
    Path(String),
}

impl BlobRef {
    fn open<'s>(&self, store: &'s dyn Store) -> Result<store::Opened<'s>, BlobError> {
        match self {
            BlobRef::Digest(d) => store.open_digest(d),
            BlobRef::Path(p) => store.open_path(p),
        }
    }
}

/// One layer of a resolved image.
#[derive(Debug, Clone)]
struct LayerRef {
    blob: BlobRef,
    /// Digest (compressed for OCI/registries; the layer tar's for docker save).
    digest: Option<String>,
    media_type: String,
    size: Option<u64>,
}

/// One image manifest to scan.
#[derive(Debug, Clone)]
struct Resolved {
    image: String,
    /// Shown in display paths: `image` plus `[platform]` when from an index.
    display: String,
    manifest_digest: Option<String>,
    platform: Option<String>,
    config: BlobRef,
    layers: Vec<LayerRef>,
}

/// Scan the image named by `reference` (see [`reference`] for the syntax)
/// and push every layer file and config entry, once per content in the
/// run, to `sink`. Never fails: problems become diagnostics and counts.
///
/// Share one `seen` across all images of a run; after the scan, pass the
/// findings to [`ContentSeen::expand_findings`] to add the locations that
/// were not scanned again, then [`finish_findings`] gives each image finding
/// its remediation block (see [`remediation`]) and masks secrets in history
/// lines.
pub fn scan_image(
    reference: &str,
    opts: &ImageOptions,
    sink: &dyn BlobSink,
    seen: &ContentSeen,
) -> ImageStats {
    let counted = Counted {
        inner: sink,
        errors: AtomicU64::new(0),
    };
    let mut stats = ImageStats::default();
    let fail = |e: BlobError| counted.diagnostic(e.diagnostic(reference));
    let source = match reference::parse(reference) {
        Ok(s) => s,
        Err(m) => {
            fail(BlobError::new(kinds::IMAGE_REFERENCE, m));
            stats.errors = counted.errors.load(Ordering::Relaxed);
            return stats;
        }
    };
    match resolve(reference, &source, opts, &counted) {
        Ok((src, images, root)) => {
            let digest = root.or_else(|| images_digest(&images));
            if digest.is_some() && digest == opts.skip_digest {
                stats.digest = digest;
                stats.unchanged = true;
                return stats;
            }
            stats.digest = digest;
            if images.is_empty() {
                counted.diagnostic(Diagnostic::skip(
                    kinds::IMAGE_NO_MATCH,
                    reference,
                    match opts.platforms.is_empty() {
                        true => "no image manifest found".to_string(),
                        false => format!(
                            "no image manifest for platform {}",
                            opts.platforms.join(", ")
                        ),
                    },
                ));
            }
            let threads = if opts.threads == 0 {
                std::thread::available_parallelism().map_or(1, |n| n.get())
            } else {
                opts.threads
            };
            let env = layer::Env {
                sink: &counted,
                seen,
                content: &opts.content,
                threads,
                max_layer_bytes: opts.max_layer_bytes,
            };
            for image in &images {
                scan_resolved(&env, src.store(), image, &mut stats);
            }
        }
        Err(e) => fail(e),
    }
    stats.errors = counted.errors.load(Ordering::Relaxed);
    stats
}

/// Open the source and list the manifests to scan.
fn resolve(
    reference: &str,
    source: &ImageSource,
    opts: &ImageOptions,
    sink: &dyn BlobSink,
) -> Result<(Source, Vec<Resolved>, Option<String>), BlobError> {
    match source {
        ImageSource::DockerArchive(path) => {
            let store = TarStore::open(path, opts.max_layer_bytes)?;
            if !store.has_path("manifest.json") {
                if store.has_path("index.json") {
                    let src = Source::Local(Box::new(store));
                    let images = resolve_layout(reference, &src, None, opts, sink)?;
                    return Ok((src, images, None));
                }
                return Err(BlobError::new(
                    kinds::IMAGE_CORRUPT,
                    "not a docker-archive: no manifest.json",
                ));
            }
            let images = resolve_docker_save(reference, &store)?;
            Ok((Source::Local(Box::new(store)), images, None))
        }
        ImageSource::OciDir { path, tag } => {
            let src = Source::Local(Box::new(DirStore::new(path)));
            let images = resolve_layout(reference, &src, tag.as_deref(), opts, sink)?;
            Ok((src, images, None))
        }
        ImageSource::OciArchive { path, tag } => {
            let src = Source::Local(Box::new(TarStore::open(path, opts.max_layer_bytes)?));
            let images = resolve_layout(reference, &src, tag.as_deref(), opts, sink)?;
            Ok((src, images, None))
        }
        ImageSource::Registry(r) => {
            let reg = registry::Registry::connect(r, opts)?;
            let doc = reg.manifest(r.reference(), "manifest")?;
            let src = Source::Registry(reg);
            if opts.skip_digest.as_deref() == Some(doc.digest.as_str()) {
                // Unchanged since a recurring scan: not even walked.
                return Ok((src, Vec::new(), Some(doc.digest)));
            }
            let digest = doc.digest.clone();
            let mut images = Vec::new();
            let root = Descriptor {
                media_type: doc.content_type.clone().unwrap_or_default(),
                digest: doc.digest.clone(),
                ..Descriptor::default()
            };
            walk(
                &src,
                reference,
                &root,
                Some((doc.bytes, doc.content_type)),
                None,
                opts,
                sink,
                0,
                &mut images,
            )?;
            Ok((src, images, Some(digest)))
        }
    }
}

/// What a local reference names, for a recurring scan: the digest of its
/// one manifest (a `docker save` entry has none: its config's), or a
/// SHA-256 of all of them, in order.
fn images_digest(images: &[Resolved]) -> Option<String> {
    use sha2::{Digest, Sha256};
    let ids: Vec<String> = images
        .iter()
        .map(|i| {
            i.manifest_digest.clone().or_else(|| match &i.config {
                BlobRef::Digest(d) => Some(d.clone()),
                BlobRef::Path(p) => {
                    let hex = p
                        .strip_prefix("blobs/sha256/")
                        .or_else(|| p.strip_suffix(".json"))?;
                    Some(format!("sha256:{hex}"))
                }
            })
        })
        .collect::<Option<_>>()?;
    match ids.as_slice() {
        [] => None,
        [one] => Some(one.clone()),
        many => {
            let mut h = Sha256::new();
            for d in many {
                h.update(d.as_bytes());
                h.update(b"\n");
            }
            Some(format!("sha256:{:x}", h.finalize()))
        }
    }
}

/// `manifest.json` of a `docker save` archive.
fn resolve_docker_save(reference: &str, store: &TarStore) -> Result<Vec<Resolved>, BlobError> {
    let (r, _) = store.open_path("manifest.json")?;
    let bytes = read_document(r, "manifest.json")?;
    let entries: Vec<DockerSaveEntry> = parse_json(&bytes, "manifest.json")?;
    let many = entries.len() > 1;
    Ok(entries
        .into_iter()
        .enumerate()
        .map(|(i, e)| {
            let image = match (many, e.repo_tags.as_ref().and_then(|t| t.first())) {
                (false, _) => reference.to_string(),
                (true, Some(tag)) => format!("{reference}#{tag}"),
                (true, None) => format!("{reference}#{i}"),
            };
            let layers = e
                .layers
                .iter()
                .map(|p| LayerRef {
                    blob: BlobRef::Path(p.clone()),
                    digest: p
                        .strip_prefix("blobs/sha256/")
                        .map(|h| format!("sha256:{h}")),
                    media_type: String::new(),
                    size: None,
                })
                .collect();
            Resolved {
                display: image.clone(),
                image,
                manifest_digest: None,
                platform: None,
                config: BlobRef::Path(e.config),
                layers,
            }
        })
        .collect())
}

/// `index.json` of an OCI layout, optionally only entries tagged `tag`.
fn resolve_layout(
    reference: &str,
    src: &Source,
    tag: Option<&str>,
    opts: &ImageOptions,
    sink: &dyn BlobSink,
) -> Result<Vec<Resolved>, BlobError> {
    let (r, _) = src.store().open_path("index.json")?;
    let bytes = read_document(r, "index.json")?;
    let index: ManifestOrIndex = parse_json(&bytes, "index.json")?;
    let entries = index.manifests.unwrap_or_default();
    let ref_name = |d: &Descriptor| {
        d.annotations
            .get("org.opencontainers.image.ref.name")
            .or_else(|| d.annotations.get("io.containerd.image.name"))
            .cloned()
    };
    let selected: Vec<&Descriptor> = entries
        .iter()
        .filter(|d| match tag {
            None => true,
            Some(t) => ref_name(d).is_some_and(|n| n == t || n.ends_with(&format!(":{t}"))),
        })
        .collect();
    if selected.is_empty() && tag.is_some() {
        return Err(BlobError::new(
            kinds::IMAGE_REFERENCE,
            format!(
                "no manifest tagged `{}` in index.json",
                tag.unwrap_or_default()
            ),
        ));
    }
    let many = selected.len() > 1;
    let mut images = Vec::new();
    for (i, d) in selected.into_iter().enumerate() {
        let name = match (many, ref_name(d)) {
            (false, _) => reference.to_string(),
            (true, Some(n)) => format!("{reference}:{n}"),
            (true, None) => format!(
                "{reference}@{}",
                if d.digest.is_empty() {
                    i.to_string()
                } else {
                    d.digest.clone()
                }
            ),
        };
        if let Err(e) = walk(src, &name, d, None, None, opts, sink, 0, &mut images) {
            sink.diagnostic(e.diagnostic(&name));
        }
    }
    Ok(images)
}

fn platform_selected(p: &Platform, wanted: &[String]) -> bool {
    if wanted.is_empty() {
        return true;
    }
    wanted.iter().any(|w| {
        let mut parts = w.split('/');
        let (os, arch, variant) = (parts.next(), parts.next(), parts.next());
        os == Some(p.os.as_str())
            && arch.is_none_or(|a| a == p.architecture)
            && variant.is_none_or(|v| p.variant.as_deref() == Some(v))
    })
}

/// Follow `desc` (an index or a manifest) down to image manifests.
#[allow(clippy::too_many_arguments)]
fn walk(
    src: &Source,
    image: &str,
    desc: &Descriptor,
    fetched: Option<(Vec<u8>, Option<String>)>,
    platform: Option<String>,
    opts: &ImageOptions,
    sink: &dyn BlobSink,
    depth: usize,
    out: &mut Vec<Resolved>,
) -> Result<(), BlobError> {
    if depth > 4 {
        return Err(BlobError::new(
            kinds::IMAGE_CORRUPT,
            "indexes nested more than 4 levels deep",
        ));
    }
    let (bytes, content_type) = match fetched {
        Some(f) => f,
        None => src.document(&desc.digest, "manifest")?,
    };
    let doc: ManifestOrIndex = parse_json(&bytes, &format!("manifest {}", desc.digest))?;
    let content_type = content_type.or(Some(desc.media_type.clone()).filter(|m| !m.is_empty()));
    if doc.is_index(content_type.as_deref()) {
        let children = doc.manifests.unwrap_or_default();
        for child in &children {
            let attestation = child
                .annotations
                .get("vnd.docker.reference.type")
                .is_some_and(|t| t == "attestation-manifest");
            let p = child.platform.clone().unwrap_or_default();
            let wanted = if attestation || p.os == "unknown" {
                opts.platforms.is_empty()
            } else {
                child.platform.is_none() || platform_selected(&p, &opts.platforms)
            };
            if !wanted {
                continue;
            }
            let plat = child
                .platform
                .as_ref()
                .map(|p| {
                    if attestation {
                        format!("attestation:{}", p.display())
                    } else {
                        p.display()
                    }
                })
                .or(platform.clone());
            if let Err(e) = walk(src, image, child, None, plat, opts, sink, depth + 1, out) {
                sink.diagnostic(e.diagnostic(image));
            }
        }
        return Ok(());
    }
    if doc.schema_version == 1 {
        return Err(BlobError::new(
            kinds::IMAGE_CORRUPT,
            "Docker schema 1 manifests (deprecated since 2017) are not supported",
        ));
    }
    let config = doc.config.ok_or_else(|| {
        BlobError::new(
            kinds::IMAGE_CORRUPT,
            format!("manifest {} has no config", desc.digest),
        )
    })?;
    let display = match &platform {
        Some(p) if depth > 0 => format!("{image}[{p}]"),
        _ => image.to_string(),
    };
    out.push(Resolved {
        image: image.to_string(),
        display,
        manifest_digest: Some(desc.digest.clone()).filter(|d| !d.is_empty()),
        platform,
        config: BlobRef::Digest(config.digest),
        layers: doc
            .layers
            .unwrap_or_default()
            .into_iter()
            .map(|l| LayerRef {
                blob: BlobRef::Digest(l.digest.clone()),
                digest: Some(l.digest),
                media_type: l.media_type,
                size: Some(l.size),
            })
            .collect(),
    });
    Ok(())
}

/// One text entry of a config: its key, its text, the index of the layer a
/// history entry made (if any), and its date.
struct ConfigEntry {
    key: String,
    text: String,
    made: Option<usize>,
    created: Option<String>,
}

/// The text entries of a config; history entries carry the index of the layer
/// they made, if any, and their own date (the others the image's).
fn config_entries(config: &ImageConfig) -> Vec<ConfigEntry> {
    let raw = config_texts(config);
    raw.into_iter()
        .map(|(key, text, made, h)| ConfigEntry {
            created: h
                .and_then(|i| config.history.get(i))
                .and_then(|h| h.created.clone())
                .or_else(|| config.created.clone()),
            key,
            text,
            made,
        })
        .collect()
}

/// `(key, text, layer made, history index)` of every text entry of a config.
#[allow(clippy::type_complexity)]
fn config_texts(config: &ImageConfig) -> Vec<(String, String, Option<usize>, Option<usize>)> {
    let mut out = Vec::new();
    if let Some(rc) = &config.config {
        if let Some(env) = rc.env.as_ref().filter(|e| !e.is_empty()) {
            out.push(("Env".to_string(), env_text(env), None, None));
        }
        if let Some(cmd) = &rc.cmd {
            out.push(("Cmd".to_string(), cmd.join(" "), None, None));
        }
        if let Some(ep) = &rc.entrypoint {
            out.push(("Entrypoint".to_string(), ep.join(" "), None, None));
        }
        for (k, v) in rc.labels.iter().flatten() {
            out.push((format!("Labels[{k}]"), format!("{k}={v}"), None, None));
        }
        if let Some(test) = rc.healthcheck.as_ref().and_then(|h| h.test.as_ref()) {
            out.push(("Healthcheck".to_string(), test.join(" "), None, None));
        }
        for (i, t) in rc.on_build.iter().flatten().enumerate() {
            out.push((format!("OnBuild[{i}]"), t.clone(), None, None));
        }
    }
    let mut layer = 0;
    for (i, h) in config.history.iter().enumerate() {
        let made = (!h.empty_layer).then(|| {
            layer += 1;
            layer - 1
        });
        if let Some(text) = h.created_by.as_ref().filter(|t| !t.is_empty()) {
            out.push((format!("history[{i}]"), text.clone(), made, Some(i)));
        }
    }
    out
}

/// The `Env` entries of a config as one text, an entry per line (line N is
/// `Env[N-1]`). Line breaks inside an entry become spaces, which keeps
/// offsets within the entry and the line numbering.
fn env_text(env: &[String]) -> String {
    let mut text = String::with_capacity(env.iter().map(|e| e.len() + 1).sum());
    for e in env {
        text.extend(
            e.chars()
                .map(|c| if c == '\n' || c == '\r' { ' ' } else { c }),
        );
        text.push('\n');
    }
    text
}

/// `created_by` and `created` of the history entry that made each layer, in
/// order.
fn layer_history(config: &ImageConfig) -> Vec<(Option<String>, Option<String>)> {
    config
        .history
        .iter()
        .filter(|h| !h.empty_layer)
        .map(|h| (h.created_by.clone(), h.created.clone()))
        .collect()
}

/// Deliver one in-memory text (a config entry, an attestation) through the
/// content handling, once per content in the run.
fn deliver_bytes(
    env: &layer::Env<'_>,
    display: String,
    origin: &Arc<Origin>,
    bytes: Vec<u8>,
) -> bool {
    let id = ContentId::of(&bytes);
    if !env.seen.claim(id, &display, origin) {
        return false;
    }
    let ctx = Ctx::new(env.content, env.sink);
    content::handle(ctx, display, origin, Data::Mem(bytes), Level::TOP);
    true
}

fn scan_resolved(
    env: &layer::Env<'_>,
    store: &dyn Store,
    image: &Resolved,
    stats: &mut ImageStats,
) {
    let config_subject = format!("{}@config", image.display);
    let config = match image
        .config
        .open(store)
        .and_then(|(r, _)| read_document(r, "image config"))
        .and_then(|b| parse_json::<ImageConfig>(&b, "image config"))
    {
        Ok(c) => c,
        Err(e) => {
            env.sink.diagnostic(e.diagnostic(&config_subject));
            ImageConfig::default()
        }
    };
    let platform = image.platform.clone().or_else(|| config.platform());
    let base = ImageOrigin {
        image: image.image.clone(),
        manifest_digest: image.manifest_digest.clone(),
        platform: platform.clone(),
        layer: None,
        layer_digest: None,
        created_by: None,
        created: None,
        visible_in_final: true,
    };
    let diff_ids = config
        .rootfs
        .as_ref()
        .map(|r| r.diff_ids.clone())
        .unwrap_or_default();
    let digests: Vec<String> = image
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            l.digest
                .clone()
                .or_else(|| diff_ids.get(i).cloned())
                .unwrap_or_else(|| match &l.blob {
                    BlobRef::Path(p) => format!("{}#{p}", image.image),
                    BlobRef::Digest(d) => d.clone(),
                })
        })
        .collect();
    stats.images.push(ScannedImage {
        image: image.image.clone(),
        manifest_digest: image.manifest_digest.clone(),
        platform: platform.clone(),
        layers: digests.clone(),
    });

    // The config, entry by entry; a history entry carries its own text.
    for ConfigEntry {
        key,
        text,
        made,
        created,
    } in config_entries(&config)
    {
        let origin = Arc::new(Origin::Image(ImageOrigin {
            layer: made.filter(|i| *i < digests.len()),
            layer_digest: made.and_then(|i| digests.get(i).cloned()),
            created_by: key.starts_with("history[").then(|| text.clone()),
            created,
            ..base.clone()
        }));
        stats.config_entries += 1;
        if deliver_bytes(
            env,
            format!("{config_subject}:{key}"),
            &origin,
            text.into_bytes(),
        ) {
            stats.scanned += 1;
        } else {
            stats.duplicates += 1;
        }
    }

    // The layers, top first.
    let history = layer_history(&config);
    let mut shadow = layer::Shadow::default();
    for (i, l) in image.layers.iter().enumerate().rev() {
        let digest = &digests[i];
        let origin = |visible: bool| {
            Arc::new(Origin::Image(ImageOrigin {
                layer: Some(i),
                layer_digest: Some(digest.clone()),
                created_by: history.get(i).and_then(|h| h.0.clone()),
                created: history
                    .get(i)
                    .and_then(|h| h.1.clone())
                    .or_else(|| config.created.clone()),
                visible_in_final: visible,
                ..base.clone()
            }))
        };
        let prefix = format!("{}@layer{i}:", image.display);
        let job = layer::Job {
            prefix: prefix.clone(),
            visible: origin(true),
            hidden: origin(false),
            shadow: &shadow,
        };
        if let Some(record) = env.seen.layer(digest) {
            stats.layers_reused += 1;
            stats.duplicates += layer::replay(env, &job, &record);
            shadow.add(&record.entries);
            continue;
        }
        let subject = format!("{}@layer{i}", image.display);
        let mt = l.media_type.as_str();
        let tar_layer = mt.is_empty()
            || mt.contains("tar")
            || mt.contains("rootfs.diff")
            || mt == "application/octet-stream";
        let (reader, size) = match l.blob.open(store) {
            Ok(o) => o,
            Err(e) => {
                let e = if mt.contains("foreign") || mt.contains("nondistributable") {
                    BlobError::new(
                        kinds::IMAGE_FOREIGN_LAYER,
                        format!(
                            "non-distributable layer {digest} is not in the image: not scanned"
                        ),
                    )
                } else {
                    BlobError::new(e.kind, format!("layer {digest}: {}", e.message))
                };
                env.sink.diagnostic(e.diagnostic(&subject));
                continue;
            }
        };
        if !tar_layer {
            // An artifact layer (attestation statement, SBOM, config file).
            match read_document(reader, "layer") {
                Ok(bytes) => {
                    stats.layer_bytes += bytes.len() as u64;
                    if deliver_bytes(env, prefix, &job.visible, bytes) {
                        stats.scanned += 1;
                    } else {
                        stats.duplicates += 1;
                    }
                }
                Err(e) => env.sink.diagnostic(e.diagnostic(&subject)),
            }
            continue;
        }
        let outcome = layer::scan(env, &job, &subject, reader, size.or(l.size));
        stats.layers += 1;
        stats.layer_bytes += outcome.bytes;
        stats.files += outcome.files;
        stats.scanned += outcome.scanned;
        stats.duplicates += outcome.duplicates;
        shadow.add(&outcome.record.entries);
        if outcome.complete {
            env.seen.put_layer(digest, outcome.record);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_maps_to_layers_skipping_empty_layers() {
        let config: ImageConfig = serde_json::from_str(
            r#"{"created":"2024-03-09T12:00:00.123456789Z",
               "config":{"Env":["PATH=/bin","TOKEN=x"],"Cmd":["run","--fast"],"Labels":{"a":"b"}},
               "history":[{"created":"2024-01-01T00:00:00Z","created_by":"ADD rootfs /"},
                          {"created":"2024-03-09T11:59:00Z","created_by":"ARG TOKEN=x","empty_layer":true},
                          {"created_by":"RUN build"}]}"#,
        )
        .unwrap();
        assert_eq!(
            layer_history(&config),
            vec![
                (
                    Some("ADD rootfs /".to_string()),
                    Some("2024-01-01T00:00:00Z".to_string())
                ),
                (Some("RUN build".to_string()), None)
            ]
        );
        let keys: Vec<(String, Option<usize>, Option<String>)> = config_entries(&config)
            .into_iter()
            .map(|e| (e.key, e.made, e.created))
            .collect();
        let image = Some("2024-03-09T12:00:00.123456789Z".to_string());
        assert_eq!(
            keys,
            vec![
                ("Env".into(), None, image.clone()),
                ("Cmd".into(), None, image.clone()),
                ("Labels[a]".into(), None, image.clone()),
                (
                    "history[0]".into(),
                    Some(0),
                    Some("2024-01-01T00:00:00Z".into())
                ),
                (
                    "history[1]".into(),
                    None,
                    Some("2024-03-09T11:59:00Z".into())
                ),
                // An entry without a date takes the image's.
                ("history[2]".into(), Some(1), image.clone()),
            ]
        );
    }

    #[test]
    fn env_entries_are_lines_of_one_text() {
        let env = vec![
            "A=1".to_string(),
            "MULTI=x\ny\r\nz".to_string(),
            "B=2".to_string(),
        ];
        let text = env_text(&env);
        assert_eq!(text, "A=1\nMULTI=x y  z\nB=2\n");
        // Line N holds Env[N-1].
        assert_eq!(text.lines().nth(2), Some("B=2"));
    }

    #[test]
    fn platform_filters() {
        let p = Platform {
            os: "linux".into(),
            architecture: "arm".into(),
            variant: Some("v7".into()),
        };
        assert!(platform_selected(&p, &[]));
        assert!(platform_selected(&p, &["linux/arm".into()]));
        assert!(platform_selected(&p, &["linux/arm/v7".into()]));
        assert!(!platform_selected(
            &p,
            &["linux/arm/v6".into(), "linux/amd64".into()]
        ));
    }
}

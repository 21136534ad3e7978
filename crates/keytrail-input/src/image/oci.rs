//! The JSON documents of container images, as far as scanning needs them:
//! OCI image indexes and Docker manifest lists, OCI and Docker v2 image
//! manifests, the image config (runtime config, labels, history, diff ids),
//! and the `manifest.json` of `docker save` archives. Unknown fields are
//! ignored; missing optional fields default, so hand-made and old images
//! parse.

use std::collections::BTreeMap;

use serde::Deserialize;

/// OCI image index.
pub(crate) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker manifest list (multi-platform).
pub(crate) const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// Every manifest media type a registry is asked for, best first.
pub(crate) const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// A content descriptor: what a manifest or index points at.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Descriptor {
    /// Media type of the target.
    #[serde(default)]
    pub(crate) media_type: String,
    /// `sha256:<hex>`.
    pub(crate) digest: String,
    /// Size in bytes of the target blob.
    #[serde(default)]
    pub(crate) size: u64,
    /// Platform of an index entry.
    #[serde(default)]
    pub(crate) platform: Option<Platform>,
    /// Annotations (`org.opencontainers.image.ref.name` holds a tag in OCI layouts).
    #[serde(default)]
    pub(crate) annotations: BTreeMap<String, String>,
}

/// An index entry's platform.
#[derive(Debug, Clone, Deserialize, Default, PartialEq, Eq)]
pub(crate) struct Platform {
    /// `linux`, `windows`, or `unknown` for attestation manifests.
    #[serde(default)]
    pub(crate) os: String,
    /// `amd64`, `arm64`...
    #[serde(default)]
    pub(crate) architecture: String,
    /// `v7`, `v8`...
    #[serde(default)]
    pub(crate) variant: Option<String>,
}

impl Platform {
    /// `os/arch[/variant]`.
    pub(crate) fn display(&self) -> String {
        match &self.variant {
            Some(v) if !v.is_empty() => format!("{}/{}/{v}", self.os, self.architecture),
            _ => format!("{}/{}", self.os, self.architecture),
        }
    }
}

/// A manifest or an index: both are read through this one shape and told
/// apart by `mediaType` (or by which of `manifests`/`layers` is present,
/// for documents without one).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ManifestOrIndex {
    /// Schema version: 2 for everything we read; 1 is the deprecated Docker v1 format.
    #[serde(default)]
    pub(crate) schema_version: u32,
    /// Media type, when the document carries it.
    #[serde(default)]
    pub(crate) media_type: Option<String>,
    /// Index entries.
    #[serde(default)]
    pub(crate) manifests: Option<Vec<Descriptor>>,
    /// The image config of a manifest.
    #[serde(default)]
    pub(crate) config: Option<Descriptor>,
    /// Layers of a manifest, base first.
    #[serde(default)]
    pub(crate) layers: Option<Vec<Descriptor>>,
}

impl ManifestOrIndex {
    /// Whether this is an index / manifest list.
    pub(crate) fn is_index(&self, content_type: Option<&str>) -> bool {
        let mt = self.media_type.as_deref().or(content_type).unwrap_or("");
        mt == OCI_INDEX || mt == DOCKER_LIST || (self.manifests.is_some() && self.layers.is_none())
    }
}

/// The image config (`application/vnd.oci.image.config.v1+json`).
#[derive(Debug, Clone, Deserialize, Default)]
pub(crate) struct ImageConfig {
    /// `linux`...
    #[serde(default)]
    pub(crate) os: String,
    /// `amd64`...
    #[serde(default)]
    pub(crate) architecture: String,
    /// `v8`...
    #[serde(default)]
    pub(crate) variant: Option<String>,
    /// The runtime config.
    #[serde(default)]
    pub(crate) config: Option<RuntimeConfig>,
    /// When the image was made (RFC 3339).
    #[serde(default)]
    pub(crate) created: Option<String>,
    /// Layer history, including entries that made no layer.
    #[serde(default)]
    pub(crate) history: Vec<History>,
    /// Uncompressed layer digests.
    #[serde(default)]
    pub(crate) rootfs: Option<RootFs>,
}

impl ImageConfig {
    /// `os/arch[/variant]`, when the config names them.
    pub(crate) fn platform(&self) -> Option<String> {
        if self.os.is_empty() && self.architecture.is_empty() {
            return None;
        }
        Some(
            Platform {
                os: self.os.clone(),
                architecture: self.architecture.clone(),
                variant: self.variant.clone(),
            }
            .display(),
        )
    }
}

/// The parts of the runtime config that hold text an image author wrote.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct RuntimeConfig {
    /// `KEY=value` environment.
    #[serde(default)]
    pub(crate) env: Option<Vec<String>>,
    /// Default command.
    #[serde(default)]
    pub(crate) cmd: Option<Vec<String>>,
    /// Entrypoint.
    #[serde(default)]
    pub(crate) entrypoint: Option<Vec<String>>,
    /// Labels.
    #[serde(default)]
    pub(crate) labels: Option<BTreeMap<String, String>>,
    /// Health check command, `ONBUILD` triggers, user, working dir: text too.
    #[serde(default)]
    pub(crate) healthcheck: Option<HealthCheck>,
    /// `ONBUILD` instructions.
    #[serde(default)]
    pub(crate) on_build: Option<Vec<String>>,
}

/// `HEALTHCHECK` of the runtime config.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct HealthCheck {
    /// The test command.
    #[serde(default)]
    pub(crate) test: Option<Vec<String>>,
}

/// One history entry.
#[derive(Debug, Clone, Deserialize, Default)]
pub(crate) struct History {
    /// The instruction (`RUN ...`, `ENV ...`, `COPY ...`), as the builder recorded it.
    #[serde(default)]
    pub(crate) created_by: Option<String>,
    /// When the instruction ran (RFC 3339).
    #[serde(default)]
    pub(crate) created: Option<String>,
    /// True for instructions that made no layer (`ENV`, `ARG`, `CMD`...).
    #[serde(default)]
    pub(crate) empty_layer: bool,
}

/// `rootfs` of the config.
#[derive(Debug, Clone, Deserialize, Default)]
pub(crate) struct RootFs {
    /// Digests of the uncompressed layers, base first.
    #[serde(default)]
    pub(crate) diff_ids: Vec<String>,
}

/// One image of a `docker save` archive's `manifest.json`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DockerSaveEntry {
    /// Path of the config inside the archive.
    pub(crate) config: String,
    /// `repo:tag` names of the image.
    #[serde(default)]
    pub(crate) repo_tags: Option<Vec<String>>,
    /// Paths of the layer tars inside the archive, base first.
    #[serde(default)]
    pub(crate) layers: Vec<String>,
}

/// Whether `digest` looks like `algorithm:hex` with a safe algorithm name
/// and hex (so it can be used as a path component and in URLs).
pub(crate) fn valid_digest(digest: &str) -> bool {
    let Some((alg, hex)) = digest.split_once(':') else {
        return false;
    };
    !alg.is_empty()
        && alg
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b))
        && !alg.starts_with('.')
        && hex.len() >= 32
        && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_index_and_manifest() {
        let idx: ManifestOrIndex = serde_json::from_str(
            r#"{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json",
            "digest":"sha256:aa","size":1,"platform":{"os":"linux","architecture":"arm","variant":"v7"}}]}"#,
        )
        .unwrap();
        assert!(idx.is_index(None));
        let p = idx.manifests.unwrap()[0].platform.clone().unwrap();
        assert_eq!(p.display(), "linux/arm/v7");
        let m: ManifestOrIndex = serde_json::from_str(
            r#"{"schemaVersion":2,"config":{"digest":"sha256:bb","size":2},"layers":[]}"#,
        )
        .unwrap();
        assert!(!m.is_index(Some("application/vnd.oci.image.manifest.v1+json")));
    }

    #[test]
    fn digests_are_checked_before_use_as_paths() {
        assert!(valid_digest(&format!("sha256:{}", "a".repeat(64))));
        assert!(!valid_digest("sha256:../../etc/passwd"));
        assert!(!valid_digest(&format!("../x:{}", "a".repeat(64))));
        assert!(!valid_digest("nocolon"));
    }
}

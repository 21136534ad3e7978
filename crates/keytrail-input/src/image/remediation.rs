//! What to do about a secret baked into an image, as data every output
//! format can print: ordered steps (rotate first, since a rebuilt image does
//! not un-leak a pushed one; rebuild with build secrets; delete the tags and
//! digests; invalidate build caches) and every scanned image, platform and
//! layer that ships the secret. Built from a finding's locations after
//! [`ContentSeen::expand_findings`](super::ContentSeen::expand_findings), so
//! identical layers and files in other tags are included.

use std::collections::BTreeMap;

use keytrail_types::{Finding, ImageOrigin, Origin};
use serde::Serialize;

/// The remediation block of one finding that was seen in container images.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageRemediation {
    /// Steps in the order to take them.
    pub steps: Vec<RemediationStep>,
    /// Every scanned image (reference × manifest digest × platform) that
    /// contains the secret, sorted by reference then digest.
    pub affected: Vec<AffectedImage>,
    /// Distinct image references (tags or digests as given) to delete or
    /// rebuild, sorted.
    pub references: Vec<String>,
    /// Distinct manifest digests that contain the secret, sorted.
    pub digests: Vec<String>,
}

/// One step of a remediation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RemediationStep {
    /// Stable id: `rotate_credential`, `rebuild_without_secret`,
    /// `delete_images`, `invalidate_build_cache`.
    pub action: &'static str,
    /// One-line summary.
    pub summary: String,
    /// How, specific to where the secret was found.
    pub detail: String,
}

/// One image (one platform of one reference) that contains the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AffectedImage {
    /// Image reference as given.
    pub image: String,
    /// Manifest digest, when known.
    pub manifest_digest: Option<String>,
    /// Platform (`linux/amd64`), when known.
    pub platform: Option<String>,
    /// Layers holding the secret in a file.
    pub layers: Vec<AffectedLayer>,
    /// Image config entries holding it (`Env[3]`, `history[5]`, `Labels[k]`).
    pub config: Vec<String>,
    /// Whether the secret is visible in the image's final filesystem or
    /// config (false: only in layers whose files a later layer deleted or
    /// overwrote, still shipped and extractable).
    pub visible_in_final: bool,
}

/// A layer holding the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AffectedLayer {
    /// Layer index, 0 = base.
    pub index: usize,
    /// Layer digest.
    pub digest: Option<String>,
    /// History instruction that created the layer.
    pub created_by: Option<String>,
    /// Paths in the layer holding the secret.
    pub paths: Vec<String>,
    /// Whether at least one of those files is visible in the final filesystem.
    pub visible_in_final: bool,
}

/// The remediation block for `finding`, if any of its locations is in a
/// container image.
pub fn remediation(finding: &Finding) -> Option<ImageRemediation> {
    let mut by_image: BTreeMap<(String, Option<String>, Option<String>), AffectedImage> =
        BTreeMap::new();
    for loc in &finding.locations {
        let Origin::Image(o) = &loc.origin else {
            continue;
        };
        let key = (
            o.image.clone(),
            o.manifest_digest.clone(),
            o.platform.clone(),
        );
        let entry = by_image.entry(key).or_insert_with(|| AffectedImage {
            image: o.image.clone(),
            manifest_digest: o.manifest_digest.clone(),
            platform: o.platform.clone(),
            layers: Vec::new(),
            config: Vec::new(),
            visible_in_final: false,
        });
        entry.visible_in_final |= o.visible_in_final;
        let in_config = loc.path.rsplit_once("@config:").map(|(_, k)| k.to_string());
        match (in_config, o.layer) {
            (Some(key), _) => {
                if !entry.config.contains(&key) {
                    entry.config.push(key);
                }
            }
            (None, Some(index)) => add_layer(entry, o, index, &loc.path),
            (None, None) => {}
        }
    }
    if by_image.is_empty() {
        return None;
    }
    let mut affected: Vec<AffectedImage> = by_image.into_values().collect();
    for a in &mut affected {
        a.layers.sort_by_key(|l| l.index);
        a.config.sort();
    }
    let mut references: Vec<String> = affected.iter().map(|a| a.image.clone()).collect();
    references.sort();
    references.dedup();
    let mut digests: Vec<String> = affected
        .iter()
        .filter_map(|a| a.manifest_digest.clone())
        .collect();
    digests.sort();
    digests.dedup();
    let steps = steps(&affected, &references, &digests);
    Some(ImageRemediation {
        steps,
        affected,
        references,
        digests,
    })
}

fn add_layer(entry: &mut AffectedImage, o: &ImageOrigin, index: usize, path: &str) {
    let file = path
        .split_once(&format!("@layer{index}:"))
        .map_or(path, |(_, p)| p)
        .to_string();
    match entry.layers.iter_mut().find(|l| l.index == index) {
        Some(l) => {
            l.visible_in_final |= o.visible_in_final;
            if !l.paths.contains(&file) {
                l.paths.push(file);
                l.paths.sort();
            }
        }
        None => entry.layers.push(AffectedLayer {
            index,
            digest: o.layer_digest.clone(),
            created_by: o.created_by.clone(),
            paths: vec![file],
            visible_in_final: o.visible_in_final,
        }),
    }
}

fn steps(
    affected: &[AffectedImage],
    references: &[String],
    digests: &[String],
) -> Vec<RemediationStep> {
    let in_config = affected.iter().any(|a| !a.config.is_empty());
    let in_files = affected.iter().any(|a| !a.layers.is_empty());
    let hidden_only = affected
        .iter()
        .flat_map(|a| &a.layers)
        .any(|l| !l.visible_in_final);
    let mut rebuild = Vec::new();
    if in_config {
        rebuild.push(
            "The value is in the image config (ENV, LABEL, CMD/ENTRYPOINT or an ARG/RUN line \
             recorded in history): anyone who can pull the image reads it with `docker image \
             inspect` or `docker history --no-trunc`. Remove the ARG/ENV; pass the secret at \
             build time with `RUN --mount=type=secret,id=NAME` (`docker build --secret \
             id=NAME,src=FILE`) and at run time through the orchestrator's secret store."
                .to_string(),
        );
    }
    if in_files {
        rebuild.push(
            "The value is in a file of an image layer: do not COPY/ADD it. Mount it only for \
             the build step that needs it (`RUN --mount=type=secret`) or inject it at run \
             time; add the file to .dockerignore."
                .to_string(),
        );
    }
    if hidden_only {
        rebuild.push(
            "Deleting the file in a later layer (RUN rm) does not remove it: the earlier layer \
             still ships it and `docker save` or any registry client extracts it. A multi-stage \
             build whose final stage never receives the file, or squashing, does."
                .to_string(),
        );
    }
    vec![
        RemediationStep {
            action: "rotate_credential",
            summary: "Revoke and rotate the credential first".to_string(),
            detail: "Everyone who pulled any affected image, and every registry mirror, cache \
                     and CI runner that stored it, may hold the secret: a rebuilt image does not \
                     un-leak it. Revoke it at the issuer, issue a new one, and review the \
                     issuer's access logs for use since the first affected image was pushed."
                .to_string(),
        },
        RemediationStep {
            action: "rebuild_without_secret",
            summary: "Rebuild without baking the secret into the image".to_string(),
            detail: rebuild.join(" "),
        },
        RemediationStep {
            action: "delete_images",
            summary: format!(
                "Delete the {} affected reference(s) and {} manifest digest(s) from every registry",
                references.len(),
                digests.len()
            ),
            detail: format!(
                "Delete by digest, not only by tag (a deleted tag leaves the manifest pullable by \
                 digest): e.g. `skopeo delete docker://REGISTRY/REPO@DIGEST` or the registry's \
                 API/console, then run its garbage collection. Check mirrors and pull-through \
                 caches. References: {}. Digests: {}.",
                list(references),
                list(digests)
            ),
        },
        RemediationStep {
            action: "invalidate_build_cache",
            summary: "Invalidate build caches that hold the secret".to_string(),
            detail: "Layer caches keep the secret-bearing layers: prune builder caches (`docker \
                     builder prune --all`, `buildx prune`), rebuild with `--no-cache`, and \
                     delete registry cache images (`--cache-to type=registry`) and CI caches \
                     keyed on the old Dockerfile."
                .to_string(),
        },
    ]
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "(none known)".to_string()
    } else {
        items.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keytrail_types::{Confidence, Fingerprint, Location, Secret, Severity};

    fn loc(path: &str, o: ImageOrigin) -> Location {
        Location {
            path: path.into(),
            line: 1,
            column: 1,
            offset: 0,
            snippet: String::new(),
            origin: Origin::Image(o),
        }
    }

    #[test]
    fn groups_locations_by_image_and_layer() {
        let base = ImageOrigin {
            image: "reg/app:1".into(),
            manifest_digest: Some("sha256:m1".into()),
            platform: Some("linux/amd64".into()),
            ..ImageOrigin::default()
        };
        let layer = ImageOrigin {
            layer: Some(2),
            layer_digest: Some("sha256:l2".into()),
            created_by: Some("COPY .env /app/".into()),
            visible_in_final: false,
            ..base.clone()
        };
        let other_tag = ImageOrigin {
            image: "reg/app:2".into(),
            manifest_digest: Some("sha256:m2".into()),
            ..layer.clone()
        };
        let config = ImageOrigin {
            visible_in_final: true,
            ..base.clone()
        };
        let finding = Finding {
            rule_id: "x".into(),
            rule_name: "x".into(),
            confidence: Confidence::High,
            severity: Severity::High,
            fingerprint: Fingerprint("f".into()),
            secret: Secret::new("s".into()),
            secret_redacted: "s".into(),
            context: vec![],
            locations: vec![
                loc("reg/app:1@layer2:/app/.env", layer),
                loc("reg/app:1@config:Env[0]", config),
                loc("reg/app:2@layer2:/app/.env", other_tag),
            ],
            notes: vec![],
        };
        let r = remediation(&finding).unwrap();
        assert_eq!(r.references, vec!["reg/app:1", "reg/app:2"]);
        assert_eq!(r.digests, vec!["sha256:m1", "sha256:m2"]);
        assert_eq!(r.steps[0].action, "rotate_credential");
        let first = &r.affected[0];
        assert_eq!(first.config, vec!["Env[0]"]);
        assert_eq!(first.layers[0].paths, vec!["/app/.env"]);
        assert!(!first.layers[0].visible_in_final);
        assert!(first.visible_in_final, "config is visible");
        assert!(r.steps[1].detail.contains("RUN rm"));
        assert!(r.steps[2].detail.contains("sha256:m2"));
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["affected"][1]["layers"][0]["index"], 2);
    }
}

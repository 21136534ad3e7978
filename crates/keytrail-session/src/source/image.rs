//! The container image source: every layer (before whiteouts) and the
//! config of each image, with identical content read once across layers,
//! tags and images (the image step adds the other locations back).

use super::{Context, Source, Targets};

/// What the image sources saw, for the post-scan image step.
#[cfg(feature = "image")]
pub type ImageState = keytrail_input::image::ContentSeen;
/// Without the `image` feature there is no image state.
#[cfg(not(feature = "image"))]
pub type ImageState = ();

/// Container images, read in order with one content cache.
#[derive(Debug, Clone)]
pub struct Images {
    /// References as named.
    pub references: Vec<String>,
}

#[cfg(feature = "image")]
pub(super) fn plan(targets: &Targets, sources: &mut Vec<Box<dyn Source>>) -> anyhow::Result<()> {
    if !targets.images.is_empty() {
        sources.push(Box::new(Images {
            references: targets.images.clone(),
        }));
    }
    Ok(())
}

#[cfg(not(feature = "image"))]
pub(super) fn plan(targets: &Targets, _sources: &mut Vec<Box<dyn Source>>) -> anyhow::Result<()> {
    if !targets.images.is_empty() {
        anyhow::bail!("this keytrail was built without the `image` feature");
    }
    Ok(())
}

#[cfg(feature = "image")]
impl Source for Images {
    fn scan(&self, cx: &mut Context<'_>) -> anyhow::Result<()> {
        use keytrail_input::image::{ContentSeen, ImageOptions, scan_image};
        let options = cx.options;
        let iopts = ImageOptions {
            platforms: options.registry.platforms.clone(),
            username: options.registry.username.clone(),
            password: options.registry.password.clone(),
            plain_http: options.registry.plain_http.clone(),
            threads: options.fs.threads,
            content: options.fs.clone(),
            max_layer_bytes: options
                .image_max_layer_bytes
                .unwrap_or(ImageOptions::default().max_layer_bytes),
            skip_digest: options.image_skip_digest.clone(),
            ..ImageOptions::default()
        };
        let seen = cx.images.get_or_insert_with(ContentSeen::new);
        for reference in &self.references {
            let stats = scan_image(reference, &iopts, cx.sink, seen);
            // A malformed reference, an unreachable registry, a missing
            // archive, or no manifest to scan: nothing of the image was read.
            if stats.images.is_empty() && !stats.unchanged {
                cx.sink.target_failed(reference);
            }
            cx.image_digests.push(crate::ImageDigest {
                reference: reference.clone(),
                digest: stats.digest,
                unchanged: stats.unchanged,
            });
        }
        Ok(())
    }
}

#[cfg(not(feature = "image"))]
impl Source for Images {
    fn scan(&self, _cx: &mut Context<'_>) -> anyhow::Result<()> {
        anyhow::bail!("this keytrail was built without the `image` feature")
    }
}

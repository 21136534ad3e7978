//! Scan once: the set of contents already scanned in a run, shared by every
//! image (and tag, and platform) scanned in it, and the locations of each
//! content, so a secret found once is reported everywhere it ships.
//!
//! Two levels:
//! - **contents**: a file (or config entry) is identified by the SHA-256 of
//!   its bytes. The first location to claim a content is delivered to the
//!   sink and scanned; every later location is recorded as a *duplicate* of
//!   it and not delivered again.
//! - **layers**: a layer already read in this run (same digest) is not
//!   decompressed again; its recorded listing (entries, and the content id of
//!   every text file) is replayed for the new image, which records the
//!   duplicate locations with the new image's provenance and visibility.
//!
//! After the scan, [`ContentSeen::expand_findings`] copies every finding
//! location that falls in a scanned content to each of that content's
//! duplicate locations (same line, column and snippet; the duplicate's path
//! and origin). A location inside a nested archive (`…/app.jar!conf/x`)
//! follows its enclosing file.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use keytrail_types::{Finding, Location, Origin};
use sha2::{Digest, Sha256};

/// SHA-256 of a content's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentId(pub [u8; 32]);

impl ContentId {
    /// The id of `bytes`.
    pub fn of(bytes: &[u8]) -> ContentId {
        ContentId(Sha256::digest(bytes).into())
    }

    /// Lowercase hex.
    pub fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// What a layer holds, kept so a layer seen again needs no decompression.
#[derive(Debug, Default)]
pub(crate) struct LayerRecord {
    /// Every entry with its kind, for the final-filesystem computation.
    pub(crate) entries: Vec<(Box<str>, super::layer::Mark)>,
    /// Every text file (normalised path) with its content id.
    pub(crate) files: Vec<(Box<str>, ContentId)>,
}

/// A place a content was seen: display path and origin.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Place {
    path: Box<str>,
    origin: Arc<Origin>,
}

#[derive(Default)]
struct Inner {
    /// Content → its scanned place (first) and duplicates (rest).
    contents: HashMap<ContentId, Vec<Place>>,
    /// Display path of each scanned place → (origin, content). Several
    /// origins may share a path (two images with one name never do, but
    /// nothing forbids it).
    scanned: HashMap<Box<str>, Vec<(Arc<Origin>, ContentId)>>,
    /// Layers fully read in this run, by digest.
    layers: HashMap<String, Arc<LayerRecord>>,
    duplicates: u64,
}

/// Contents and layers already scanned in one run, with every location of
/// each content. Share one across all `scan_image` calls of a run.
#[derive(Default)]
pub struct ContentSeen {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for ContentSeen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.lock();
        f.debug_struct("ContentSeen")
            .field("contents", &inner.contents.len())
            .field("layers", &inner.layers.len())
            .field("duplicates", &inner.duplicates)
            .finish()
    }
}

/// One duplicate location of a scanned location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateLocation {
    /// Display path of the duplicate (nested members carry their suffix).
    pub path: String,
    /// Its provenance.
    pub origin: Origin,
}

impl ContentSeen {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Claim `id` for the place `(path, origin)`: true if this is the first
    /// place (the caller must deliver it), false if it was seen before (the
    /// place is recorded as a duplicate).
    pub(crate) fn claim(&self, id: ContentId, path: &str, origin: &Arc<Origin>) -> bool {
        let mut inner = self.lock();
        let place = Place {
            path: path.into(),
            origin: origin.clone(),
        };
        match inner.contents.get_mut(&id) {
            Some(places) => {
                if !places.contains(&place) {
                    places.push(place);
                    inner.duplicates += 1;
                }
                false
            }
            None => {
                inner.contents.insert(id, vec![place]);
                inner
                    .scanned
                    .entry(path.into())
                    .or_default()
                    .push((origin.clone(), id));
                true
            }
        }
    }

    /// The record of a layer read earlier in this run.
    pub(crate) fn layer(&self, digest: &str) -> Option<Arc<LayerRecord>> {
        self.lock().layers.get(digest).cloned()
    }

    /// Remember a fully read layer.
    pub(crate) fn put_layer(&self, digest: &str, record: LayerRecord) {
        self.lock()
            .layers
            .entry(digest.to_string())
            .or_insert_with(|| Arc::new(record));
    }

    /// Number of distinct contents scanned.
    pub fn contents(&self) -> usize {
        self.lock().contents.len()
    }

    /// Number of locations recorded as duplicates (not rescanned).
    pub fn duplicates(&self) -> u64 {
        self.lock().duplicates
    }

    /// Every other location of the content scanned at `(path, origin)`.
    /// `path` may also be a member inside it (`scanned!inner/file`, nested
    /// archives): the duplicates then carry the same member suffix.
    pub fn duplicates_of(&self, path: &str, origin: &Origin) -> Vec<DuplicateLocation> {
        let inner = self.lock();
        // The scanned path itself, then each enclosing archive, innermost first.
        let mut cut = path.len();
        loop {
            let prefix = &path[..cut];
            if let Some(list) = inner.scanned.get(prefix)
                && let Some((_, id)) = list.iter().find(|(o, _)| **o == *origin)
                && let Some(places) = inner.contents.get(id)
            {
                let suffix = &path[cut..];
                let mut out: Vec<DuplicateLocation> = places[1..]
                    .iter()
                    .map(|p| DuplicateLocation {
                        path: format!("{}{suffix}", p.path),
                        origin: (*p.origin).clone(),
                    })
                    .collect();
                out.sort_by(|a, b| a.path.cmp(&b.path));
                return out;
            }
            match prefix.rfind('!') {
                Some(i) => cut = i,
                None => return Vec::new(),
            }
        }
    }

    /// Add to each finding every duplicate location of its locations: the
    /// same secret at the same line and column of an identical file (or
    /// config entry) elsewhere, which was not scanned again. Locations
    /// already present are not repeated.
    pub fn expand_findings(&self, findings: &mut [Finding]) {
        for finding in findings {
            let mut extra: Vec<Location> = Vec::new();
            for loc in &finding.locations {
                for dup in self.duplicates_of(&loc.path, &loc.origin) {
                    extra.push(Location {
                        path: dup.path,
                        origin: dup.origin,
                        ..loc.clone()
                    });
                }
            }
            for loc in extra {
                if !finding.locations.contains(&loc) {
                    finding.locations.push(loc);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keytrail_types::ImageOrigin;

    fn origin(image: &str, layer: usize) -> Arc<Origin> {
        Arc::new(Origin::Image(ImageOrigin {
            image: image.into(),
            layer: Some(layer),
            ..ImageOrigin::default()
        }))
    }

    #[test]
    fn first_claim_wins_and_duplicates_replay_with_member_suffix() {
        let seen = ContentSeen::new();
        let id = ContentId::of(b"jar bytes");
        let a = origin("a:1", 0);
        let b = origin("b:2", 3);
        assert!(seen.claim(id, "a:1@layer0:/app.jar", &a));
        assert!(!seen.claim(id, "b:2@layer3:/lib/app.jar", &b));
        assert!(
            !seen.claim(id, "b:2@layer3:/lib/app.jar", &b),
            "same place twice"
        );
        assert_eq!(seen.duplicates(), 1);
        let dups = seen.duplicates_of("a:1@layer0:/app.jar!conf/x.properties", &a);
        assert_eq!(
            dups,
            vec![DuplicateLocation {
                path: "b:2@layer3:/lib/app.jar!conf/x.properties".into(),
                origin: (*b).clone()
            }]
        );
        // Another origin with the same path is not the scanned place.
        assert!(seen.duplicates_of("a:1@layer0:/app.jar", &b).is_empty());
    }
}

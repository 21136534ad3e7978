//! Blob delivery by whole-pack traversal. Each pack's delta forest is
//! resolved once with gix's delta-tree traversal: every base object is
//! inflated a single time and its deltas are applied from memory, children
//! after parents. Random access per blob (the fallback) inflates a blob's
//! whole delta chain again whenever the delta-base cache has evicted a base,
//! which on real histories re-inflates pack data several times over.
//!
//! Blobs no traversal delivers (loose objects, packs that cannot be opened,
//! objects a traversal could not decode) are left to the random-access path,
//! which reports what it cannot read.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use gix::ObjectId;
use gix::odb::pack;

use super::{BlobRef, Ctx};

/// Run `each(i, bytes)` for every blob `blobs[i]` found in a pack of the
/// repository (or its alternates), exactly once, on the traversal's worker
/// threads; `done[i]` is set for each one delivered.
pub(crate) fn traverse(
    ctx: &Ctx<'_>,
    blobs: &[BlobRef],
    done: &[AtomicBool],
    each: &(dyn Fn(usize, &[u8]) + Sync),
) {
    if blobs.is_empty() {
        return;
    }
    let mut by_id: Vec<(ObjectId, u32)> = blobs
        .iter()
        .enumerate()
        .map(|(i, b)| (b.id, i as u32))
        .collect();
    by_id.sort_unstable();
    let by_id = &by_id;
    for idx in pack_indices(ctx) {
        // A pack that does not open is left to the random-access path,
        // which reports its objects as unreadable if they are.
        let Ok(bundle) = pack::Bundle::at(&idx, gix::hash::Kind::Sha1) else {
            continue;
        };
        let interrupt = AtomicBool::new(false);
        let processor = |kind: gix::object::Kind,
                         data: &[u8],
                         entry: &pack::index::Entry,
                         _: &dyn gix::Progress|
         -> gix::Result {
            if kind != gix::object::Kind::Blob {
                return Ok(());
            }
            if let Ok(pos) = by_id.binary_search_by_key(&entry.oid, |e| e.0) {
                let i = by_id[pos].1 as usize;
                if !done[i].swap(true, Ordering::AcqRel) {
                    each(i, data);
                }
            }
            Ok(())
        };
        let _ = bundle.index.traverse(
            &bundle.pack,
            &mut gix::progress::Discard,
            &interrupt,
            processor,
            pack::index::traverse::Options {
                traversal: pack::index::traverse::Algorithm::DeltaTreeLookup,
                thread_limit: Some(ctx.threads),
                // Object ids come from the index; hashing every object
                // again would cost more than inflating it.
                check: pack::index::traverse::SafetyCheck::SkipFileAndObjectChecksumVerificationAndNoAbortOnDecodeError,
                // Blobs over the size cap are not decoded here; the
                // random-access path skips them unread.
                alloc_limit_bytes: Some(
                    usize::try_from(ctx.opts.max_blob_bytes)
                        .unwrap_or(usize::MAX)
                        .saturating_add(1),
                ),
                make_pack_lookup_cache: || pack::cache::Never,
            },
        );
        if done.iter().all(|d| d.load(Ordering::Relaxed)) {
            break;
        }
    }
}

/// Every `.idx` file of the repository's object directory and of its
/// alternates, largest pack first.
fn pack_indices(ctx: &Ctx<'_>) -> Vec<PathBuf> {
    let repo = ctx.repo.to_thread_local();
    let objects = repo.common_dir().join("objects");
    let mut dirs = vec![objects.clone()];
    if let Ok(cwd) = std::env::current_dir()
        && let Ok(alternates) = gix::odb::alternate::resolve(objects, &cwd)
    {
        dirs.extend(alternates);
    }
    let mut out: Vec<(u64, PathBuf)> = Vec::new();
    for dir in dirs {
        let Ok(read) = std::fs::read_dir(dir.join("pack")) else {
            continue;
        };
        for entry in read.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "idx") {
                let size = std::fs::metadata(path.with_extension("pack")).map_or(0, |m| m.len());
                out.push((size, path));
            }
        }
    }
    out.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    out.into_iter().map(|(_, p)| p).collect()
}

//! Blob (and tree) decoding by whole-pack traversal. Each pack's delta
//! forest is resolved once with gix's delta-tree traversal: every base
//! object is inflated a single time and its deltas are applied from
//! memory, children after parents. Random access per object (the fallback)
//! inflates an object's whole delta chain again whenever the delta-base
//! cache has evicted a base, which on real histories re-inflates pack data
//! several times over.
//!
//! Only the entries of the kind asked for are put in the delta forest: a
//! delta's base is always an object of its own kind, so the blobs form
//! delta trees of their own, as do the trees. Delivering blobs never
//! decodes trees and commits (which in histories of many small files
//! inflate to more bytes than the blobs), and the trees decoded for
//! provenance ([`super::trees`]) never decode a blob. A pack whose listed
//! entries do not form a closed forest (a base not listed) is traversed
//! whole instead.
//!
//! Objects no traversal delivers (loose objects, packs that cannot be
//! opened, objects a traversal could not decode) are left to the
//! random-access path, which reports what it cannot read.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use gix::ObjectId;
use gix::odb::pack;

use super::{BlobRef, Ctx};

/// Run `each(i, bytes)` for every object `blobs[i]` (all of kind `kind`:
/// blobs, or trees) found in a pack of the repository (or its
/// alternates), exactly once, on the traversal's worker threads;
/// `done[i]` is set for each one delivered.
pub(crate) fn traverse(
    ctx: &Ctx<'_>,
    kind: gix::object::Kind,
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
        if !traverse_listed(ctx, &bundle, by_id, done, each) {
            traverse_all(ctx, kind, &bundle, by_id, done, each);
        }
        if done.iter().all(|d| d.load(Ordering::Relaxed)) {
            break;
        }
    }
}

/// The marker of a pack entry put in a delta forest though not listed.
const UNLISTED: u32 = u32::MAX;

/// Blobs over the size cap are not decoded by a traversal; the
/// random-access path skips them unread.
fn alloc_limit(ctx: &Ctx<'_>) -> Option<usize> {
    Some(
        usize::try_from(ctx.opts.max_blob_bytes)
            .unwrap_or(usize::MAX)
            .saturating_add(1),
    )
}

/// Traverse the delta forest of the entries of `bundle` whose id is in
/// `by_id` only (all of one kind). Returns false, having decoded nothing,
/// when that forest cannot be built (an entry's delta base is not listed).
fn traverse_listed(
    ctx: &Ctx<'_>,
    bundle: &pack::Bundle,
    by_id: &[(ObjectId, u32)],
    done: &[AtomicBool],
    each: &(dyn Fn(usize, &[u8]) + Sync),
) -> bool {
    let index = &bundle.index;
    let mut first = u64::MAX;
    let mut entries: Vec<(u64, u32)> = index
        .iter()
        .filter_map(|e| {
            first = first.min(e.pack_offset);
            let pos = by_id.binary_search_by_key(&e.oid, |b| b.0).ok()?;
            Some((e.pack_offset, by_id[pos].1))
        })
        .collect();
    if entries.is_empty() {
        return true;
    }
    entries.sort_unstable();
    // The forest is built by reading entry headers from the start of the
    // pack on, so it must begin with the pack's first entry, listed or
    // not (`UNLISTED`: decoded, then ignored).
    if entries[0].0 != first {
        entries.insert(0, (first, UNLISTED));
    }
    let interrupt = AtomicBool::new(false);
    let Ok(tree) = pack::cache::delta::Tree::from_offsets_in_pack(
        bundle.pack.path(),
        entries.into_iter(),
        &|e| e.0,
        &|id| Ok(index.lookup(id).map(|i| index.pack_offset_at_index(i))),
        &mut gix::progress::Discard,
        &interrupt,
        gix::hash::Kind::Sha1,
    ) else {
        return false;
    };
    // The pack data is not hashed: object ids come from the index.
    let _ = tree.traverse(
        |range, data: &pack::data::File| data.entry_slice(range),
        &bundle.pack,
        bundle.pack.pack_end() as u64,
        |&mut (_, i): &mut (u64, u32), _: &dyn gix::Progress, cx| {
            if i == UNLISTED {
                return Ok(());
            }
            let i = i as usize;
            if !done[i].swap(true, Ordering::AcqRel) {
                each(i, cx.decompressed);
            }
            Ok(())
        },
        pack::cache::delta::traverse::Options {
            object_progress: Box::new(gix::progress::Discard),
            size_progress: &mut gix::progress::Discard,
            thread_limit: Some(ctx.threads),
            should_interrupt: &interrupt,
            object_hash: gix::hash::Kind::Sha1,
            alloc_limit_bytes: alloc_limit(ctx),
        },
    );
    true
}

/// Traverse every object of `bundle` (gix's own pack traversal), handing
/// on the objects of kind `wanted` in `by_id`.
fn traverse_all(
    ctx: &Ctx<'_>,
    wanted: gix::object::Kind,
    bundle: &pack::Bundle,
    by_id: &[(ObjectId, u32)],
    done: &[AtomicBool],
    each: &(dyn Fn(usize, &[u8]) + Sync),
) {
    let interrupt = AtomicBool::new(false);
    let processor = |kind: gix::object::Kind,
                     data: &[u8],
                     entry: &pack::index::Entry,
                     _: &dyn gix::Progress|
     -> gix::Result {
        if kind != wanted {
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
            alloc_limit_bytes: alloc_limit(ctx),
            make_pack_lookup_cache: || pack::cache::Never,
        },
    );
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

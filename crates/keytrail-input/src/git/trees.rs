//! Every tree of the packs, decoded once and kept parsed in a compact
//! form for the provenance diffs of a full scan.
//!
//! Diffing each commit against its parents reads every tree version about
//! twice (as a commit's tree and as its child's parent tree) by random
//! access, and random access re-applies delta chains whenever the
//! delta-base cache has evicted a base. On histories of many commits of
//! small files that was most of a scan. Here the trees are decoded by one
//! traversal of each pack's delta forest of trees ([`super::packs`]),
//! every delta applied once, and each tree is kept as a list of 8-byte
//! entries: an interned file name, and the interned object id with the
//! entry's kind. Diffs then compare integers.
//!
//! The tables are built only when the trees' decoded size is under
//! [`MAX_TREE_BYTES`]; a tree the traversal did not decode (a loose
//! object, an unreadable one) is read by random access as before.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};

use gix::ObjectId;
use gix::bstr::BString;
use gix::hashtable::hash_table::HashTable;
use gix::objs::tree::EntryKind;

use super::{BlobRef, Ctx};

/// Trees are kept parsed only when their decoded bytes sum to at most
/// this: about 65 bytes of tree per entry become 8 bytes of table, so
/// 1 GiB of trees costs about 130 MiB.
pub(crate) const MAX_TREE_BYTES: u64 = 1 << 30;

/// Object indices use the low 29 bits of an entry's `oid`; the kind the
/// top 3.
const KIND_SHIFT: u32 = 29;
const INDEX_MASK: u32 = (1 << KIND_SHIFT) - 1;

/// Shards of the file-name table (by name hash), so decoding threads
/// rarely wait on each other.
const NAME_SHARDS: usize = 64;

/// One tree entry: its file name and its object, as table indices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    /// Index into [`Trees::name`].
    name: u32,
    /// Object index (low bits) and kind (top bits): two entries with the
    /// same `oid` point at the same object with the same kind.
    oid: u32,
}

impl Entry {
    pub(crate) fn kind(self) -> EntryKind {
        match self.oid >> KIND_SHIFT {
            0 => EntryKind::Tree,
            1 => EntryKind::Blob,
            2 => EntryKind::BlobExecutable,
            3 => EntryKind::Link,
            _ => EntryKind::Commit,
        }
    }

    fn is_tree(self) -> bool {
        self.oid >> KIND_SHIFT == 0
    }

    /// Same object, same kind.
    pub(crate) fn same_object(self, other: Entry) -> bool {
        self.oid == other.oid
    }
}

fn kind_code(kind: EntryKind) -> u32 {
    match kind {
        EntryKind::Tree => 0,
        EntryKind::Blob => 1,
        EntryKind::BlobExecutable => 2,
        EntryKind::Link => 3,
        EntryKind::Commit => 4,
    }
}

/// The decoded trees.
pub(crate) struct Trees {
    /// Tree id → its entries.
    trees: gix::hashtable::HashMap<ObjectId, Box<[Entry]>>,
    /// Object index → id: the listed objects, then ids met only in trees
    /// (submodule commits, missing objects).
    oids: Vec<ObjectId>,
    /// Name index → file name.
    names: Vec<BString>,
}

impl Trees {
    /// The entries of tree `id`, in git's order, if it was decoded.
    pub(crate) fn get(&self, id: &ObjectId) -> Option<&[Entry]> {
        self.trees.get(id).map(|e| &e[..])
    }

    /// The object an entry points at.
    pub(crate) fn oid(&self, e: Entry) -> ObjectId {
        self.oids[(e.oid & INDEX_MASK) as usize]
    }

    /// The file name of an entry.
    pub(crate) fn name(&self, e: Entry) -> &[u8] {
        &self.names[e.name as usize]
    }

    /// Git's order of tree entries (a tree's name compares as if it ended
    /// in `/`), as [`gix::objs::tree::EntryRef`] orders them.
    pub(crate) fn cmp(&self, a: Entry, b: Entry) -> std::cmp::Ordering {
        if a.name == b.name && a.is_tree() == b.is_tree() {
            return std::cmp::Ordering::Equal;
        }
        gix::objs::tree::name_order(self.name(a), a.is_tree(), self.name(b), b.is_tree())
    }
}

/// Decode every tree of `trees` that sits in a pack, unless their sizes
/// sum to more than [`MAX_TREE_BYTES`] (then `None`). `objects` are the
/// ids entries are expected to point at (blobs and trees); others are
/// added as met.
pub(crate) fn load(ctx: &Ctx<'_>, trees: &[BlobRef], objects: &[ObjectId]) -> Option<Trees> {
    let total: u64 = trees.iter().map(|t| t.size).sum();
    if total > MAX_TREE_BYTES || objects.len() + trees.len() > INDEX_MASK as usize / 2 {
        return None;
    }
    let mut index: gix::hashtable::HashMap<ObjectId, u32> = gix::hashtable::HashMap::default();
    index.reserve(objects.len() + trees.len());
    let mut oids: Vec<ObjectId> = Vec::with_capacity(objects.len() + trees.len());
    for id in objects.iter().chain(trees.iter().map(|t| &t.id)) {
        index.entry(*id).or_insert_with(|| {
            oids.push(*id);
            (oids.len() - 1) as u32
        });
    }
    let extra = Mutex::new((
        gix::hashtable::HashMap::<ObjectId, u32>::default(),
        Vec::new(),
    ));
    let next_oid = AtomicU32::new(oids.len() as u32);
    let names = Names::default();
    let parsed: Vec<OnceLock<Box<[Entry]>>> = trees.iter().map(|_| OnceLock::new()).collect();
    let done: Vec<AtomicBool> = trees.iter().map(|_| AtomicBool::new(false)).collect();
    let overflow = AtomicBool::new(false);

    super::packs::traverse(ctx, gix::object::Kind::Tree, trees, &done, &|i, data| {
        // An entry takes at least 28 bytes (mode, space, name, NUL, id).
        let mut out = Vec::with_capacity(data.len() / 28);
        for entry in gix::objs::TreeRefIter::from_bytes(data, gix::hash::Kind::Sha1) {
            // Unparsable: left to random access, which reports it.
            let Ok(entry) = entry else { return };
            let id = entry.oid.to_owned();
            let oid = match index.get(&id) {
                Some(&o) => o,
                None => {
                    let mut extra = extra.lock().unwrap_or_else(|e| e.into_inner());
                    let (map, list) = &mut *extra;
                    *map.entry(id).or_insert_with(|| {
                        list.push(id);
                        next_oid.fetch_add(1, Ordering::Relaxed)
                    })
                }
            };
            if oid > INDEX_MASK {
                overflow.store(true, Ordering::Relaxed);
                return;
            }
            out.push(Entry {
                name: names.intern(entry.filename),
                oid: oid | (kind_code(entry.mode.kind()) << KIND_SHIFT),
            });
        }
        let _ = parsed[i].set(out.into_boxed_slice());
    });
    if overflow.into_inner() {
        return None;
    }
    let (_, extra_ids) = extra.into_inner().unwrap_or_else(|e| e.into_inner());
    oids.extend(extra_ids);
    let mut map: gix::hashtable::HashMap<ObjectId, Box<[Entry]>> = Default::default();
    map.reserve(trees.len());
    for (t, p) in trees.iter().zip(parsed) {
        if let Some(entries) = p.into_inner() {
            map.insert(t.id, entries);
        }
    }
    Some(Trees {
        trees: map,
        oids,
        names: names.into_table(),
    })
}

/// Interned file names, shared by the decoding threads.
struct Names {
    shards: Vec<Mutex<HashTable<(BString, u32)>>>,
    next: AtomicU32,
}

impl Default for Names {
    fn default() -> Self {
        Names {
            shards: (0..NAME_SHARDS).map(|_| Mutex::default()).collect(),
            next: AtomicU32::new(0),
        }
    }
}

/// A fast hash of a file name, eight bytes at a step.
fn name_hash(name: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let step = |h: u64, w: u64| (h.rotate_left(5) ^ w).wrapping_mul(K);
    let mut h = name.len() as u64;
    let mut chunks = name.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = step(h, u64::from_le_bytes(w));
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        h = step(h, u64::from_le_bytes(w));
    }
    h ^ (h >> 32)
}

impl Names {
    fn intern(&self, name: &[u8]) -> u32 {
        let h = name_hash(name);
        let mut shard = self.shards[(h >> 58) as usize % NAME_SHARDS]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some((_, id)) = shard.find(h, |(n, _)| n.as_slice() == name) {
            return *id;
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let _ = shard.insert_unique(h, (BString::from(name), id), |(n, _)| name_hash(n));
        id
    }

    fn into_table(self) -> Vec<BString> {
        let mut names = vec![BString::default(); self.next.into_inner() as usize];
        for shard in self.shards {
            for (name, id) in shard.into_inner().unwrap_or_else(|e| e.into_inner()) {
                names[id as usize] = name;
            }
        }
        names
    }
}

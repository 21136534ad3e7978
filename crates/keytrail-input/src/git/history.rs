//! Object enumeration and blob provenance: which commits introduced which
//! blob at which path, computed by diffing every commit against all of its
//! parents, in parallel, without ever holding blob contents.

use std::collections::{BTreeMap, HashMap, HashSet};

use gix::ObjectId;
use gix::bstr::{BStr, BString, ByteSlice, ByteVec};
use gix::objs::tree::EntryKind;
use gix::objs::{FindExt, TreeRef};
use gix::odb::store::iter::Ordering as IterOrdering;
use gix::prelude::Header;
use keytrail_types::{GitBlobState, GitOrigin};

use super::{BlobRef, Ctx, GitStats, kinds};

/// Bytes of decoded trees each diffing thread keeps in gix's object cache.
/// Measured: no gain over the delta-base cache alone, so none.
const TREE_CACHE_BYTES: usize = 0;

/// Every blob and commit of the object database.
pub(crate) struct Objects {
    /// Unique blobs in pack order (then loose objects).
    pub(crate) blobs: Vec<BlobRef>,
    /// Unique commits, in pack order.
    pub(crate) commits: Vec<ObjectId>,
    /// Unique trees, in pack order.
    pub(crate) trees: Vec<BlobRef>,
    /// Objects whose header could not be read (already reported).
    pub(crate) unreadable: HashSet<ObjectId>,
}

/// What one enumeration thread collects: blobs, commits and trees with
/// their position in pack order, and unreadable objects.
type Sorted = (
    Vec<(usize, BlobRef)>,
    Vec<(usize, ObjectId)>,
    Vec<(usize, BlobRef)>,
    Vec<ObjectId>,
);

/// List every object of every pack (in pack-offset order) and every loose
/// object, and sort blobs and commits out by their headers.
pub(crate) fn enumerate(ctx: &Ctx<'_>) -> Objects {
    let repo = ctx.repo.to_thread_local();
    let mut ids = Vec::new();
    match repo.objects.iter() {
        Ok(iter) => {
            for id in iter.with_ordering(IterOrdering::PackAscendingOffsetThenLooseLexicographical)
            {
                match id {
                    Ok(id) => ids.push(id),
                    Err(e) => ctx.diags.error(
                        kinds::GIT_OBJECT_CORRUPT,
                        ctx.display,
                        format!("cannot list objects: {e}"),
                    ),
                }
            }
        }
        Err(e) => ctx.diags.error(
            kinds::GIT_OBJECT_CORRUPT,
            ctx.display,
            format!("cannot list objects: {e}"),
        ),
    }
    // The same object may sit in several packs, or in a pack and loose:
    // keep the first occurrence, preserving pack order.
    let mut seen: HashSet<ObjectId> = HashSet::with_capacity(ids.len());
    ids.retain(|id| seen.insert(*id));
    drop(seen);

    // Headers in parallel: for deltified objects this walks the delta chain
    // to its base, which is the expensive part of enumeration.
    let per_thread = ctx.parallel(
        ids.len(),
        512,
        0,
        || (Vec::new(), Vec::new(), Vec::new(), Vec::new()),
        |repo, (blobs, commits, trees, bad): &mut Sorted, i| {
            let id = ids[i];
            match repo.objects.try_header(&id) {
                Ok(Some(h)) => match h.kind() {
                    gix::object::Kind::Blob => blobs.push((i, BlobRef { id, size: h.size() })),
                    gix::object::Kind::Commit => commits.push((i, id)),
                    gix::object::Kind::Tree => trees.push((i, BlobRef { id, size: h.size() })),
                    gix::object::Kind::Tag => {}
                },
                Ok(None) => ctx.diags.error(
                    kinds::GIT_OBJECT_MISSING,
                    ctx.display,
                    format!("object {id} is listed but cannot be found"),
                ),
                Err(e) => {
                    bad.push(id);
                    ctx.diags.error(
                        kinds::GIT_OBJECT_CORRUPT,
                        ctx.display,
                        format!("object {id} cannot be read: {e}"),
                    )
                }
            }
        },
    );
    let mut blobs = Vec::new();
    let mut commits = Vec::new();
    let mut trees = Vec::new();
    let mut unreadable = HashSet::new();
    for (b, c, t, u) in per_thread {
        blobs.extend(b);
        commits.extend(c);
        trees.extend(t);
        unreadable.extend(u);
    }
    // Back to pack order (threads took interleaved chunks). Packs store
    // commits newest first along each line of history, so neighbouring
    // commits are mostly parent and child: diffing them in this order lets
    // each thread's object cache serve the parent's trees.
    blobs.sort_unstable_by_key(|(i, _)| *i);
    commits.sort_unstable_by_key(|(i, _)| *i);
    trees.sort_unstable_by_key(|(i, _)| *i);
    Objects {
        blobs: blobs.into_iter().map(|(_, b)| b).collect(),
        commits: commits.into_iter().map(|(_, c)| c).collect(),
        trees: trees.into_iter().map(|(_, t)| t).collect(),
        unreadable,
    }
}

/// The commits of a gate: `BASE..TIP` (reachable from TIP, not from BASE)
/// or everything reachable from a single revision.
pub(crate) fn range_commits(repo: &gix::Repository, range: &str) -> Result<Vec<ObjectId>, String> {
    let (base, tip) = match range.split_once("..") {
        Some((base, tip)) => (
            Some(base.trim_end_matches('.')),
            if tip.is_empty() { "HEAD" } else { tip },
        ),
        None => (None, range),
    };
    let resolve = |rev: &str| -> Result<ObjectId, String> {
        let id = repo
            .rev_parse_single(rev)
            .map_err(|e| format!("cannot resolve `{rev}`: {e}"))?;
        let commit = id
            .object()
            .and_then(|o| o.peel_to_commit())
            .map_err(|e| format!("`{rev}` is not a commit: {e}"))?;
        Ok(commit.id)
    };
    let tip = resolve(tip)?;
    let mut walk = repo.rev_walk([tip]);
    if let Some(base) = base {
        let base = if base.is_empty() { "HEAD" } else { base };
        walk = walk.with_hidden([resolve(base)?]);
    }
    let mut out = Vec::new();
    for info in walk.all().map_err(|e| e.to_string())? {
        out.push(info.map_err(|e| e.to_string())?.id);
    }
    Ok(out)
}

/// Decoded metadata of one commit.
#[derive(Debug, Clone)]
pub(crate) struct CommitInfo {
    pub(crate) id: ObjectId,
    /// `id` in hex, formatted once for every introduction that names it.
    pub(crate) hex: String,
    pub(crate) author: String,
    pub(crate) seconds: i64,
    /// The author date as RFC 3339, formatted once.
    pub(crate) date: String,
    pub(crate) summary: String,
    pub(crate) reachable: bool,
}

/// One introduction: blob `id` appeared at `paths[path]` in `commits[commit]`.
#[derive(Debug, Clone, Copy)]
struct Intro {
    blob: ObjectId,
    commit: u32,
    path: u32,
}

/// The blob → introductions table and the HEAD tree.
pub(crate) struct Provenance {
    commits: Vec<CommitInfo>,
    paths: Vec<BString>,
    /// Sorted by blob id, then in history order (ancestors first, then by
    /// commit date).
    intros: Vec<Intro>,
    /// Blobs introduced at a path matching `--exclude`, with one such
    /// path; sorted by blob id, one entry per blob.
    excluded: Vec<(ObjectId, u32)>,
    /// HEAD's tree, flattened: path → blob id.
    pub(crate) head: HashMap<BString, ObjectId>,
    /// The blob at each of `paths` in HEAD, if any (looked up once, not
    /// for every introduction).
    head_at: Vec<Option<ObjectId>>,
}

/// What a worker collects while diffing commits.
#[derive(Default)]
struct Local {
    intros: Vec<(ObjectId, u32, BString)>,
    /// Introductions at excluded paths (blob, path).
    excluded: Vec<(ObjectId, BString)>,
    gitlinks: Vec<(BString, ObjectId)>,
}

/// A decoded commit: metadata plus the links needed to diff it.
struct Decoded {
    info: CommitInfo,
    tree: ObjectId,
    parents: Vec<ObjectId>,
}

/// Compute the provenance of every blob introduced by `commits`. With
/// `reachability`, commits are marked by whether a ref reaches them;
/// otherwise (gates) all are considered reachable. Trees found in
/// `trees` (decoded ahead by a full scan) are not read again.
pub(crate) fn provenance(
    ctx: &Ctx<'_>,
    commits: &[ObjectId],
    reachability: bool,
    trees: Option<&super::trees::Trees>,
    stats: &mut GitStats,
) -> Provenance {
    // Phase A: decode every commit once.
    let decoded: Vec<Option<Decoded>> = {
        let per_thread = ctx.parallel(commits.len(), 256, 0, Vec::new, |repo, out, i| {
            out.push((i, decode_commit(ctx, repo, commits[i])));
        });
        let mut all: Vec<(usize, Option<Decoded>)> = per_thread.into_iter().flatten().collect();
        all.sort_unstable_by_key(|(i, _)| *i);
        all.into_iter().map(|(_, d)| d).collect()
    };
    let index: HashMap<ObjectId, u32> = decoded
        .iter()
        .enumerate()
        .filter_map(|(i, d)| d.as_ref().map(|d| (d.info.id, i as u32)))
        .collect();
    let shallow: HashSet<ObjectId> = {
        let repo = ctx.repo.to_thread_local();
        repo.shallow_commits()
            .ok()
            .flatten()
            .map(|c| c.iter().copied().collect())
            .unwrap_or_default()
    };

    // Phase B: diff each commit against all of its parents.
    let locals = ctx.parallel(
        decoded.len(),
        64,
        TREE_CACHE_BYTES,
        Local::default,
        |repo, local, i| {
            let Some(d) = &decoded[i] else { return };
            let mut parent_trees = Vec::with_capacity(d.parents.len());
            if !shallow.contains(&d.info.id) {
                for p in &d.parents {
                    let tree = match index.get(p) {
                        Some(&pi) => decoded[pi as usize].as_ref().map(|pd| pd.tree),
                        // Outside the set (a gate's base): read it.
                        None => match repo.objects.find_commit(p, &mut Vec::new()) {
                            Ok(c) => Some(c.tree()),
                            Err(e) => {
                                ctx.diags.error(
                                    kinds::GIT_OBJECT_MISSING,
                                    ctx.display,
                                    format!(
                                        "parent {p} of commit {} cannot be read: {e}",
                                        d.info.id
                                    ),
                                );
                                None
                            }
                        },
                    };
                    parent_trees.extend(tree);
                }
            }
            let mut prefix = BString::default();
            let mut walk = TreeWalk {
                ctx,
                repo,
                trees,
                commit: d,
                commit_idx: i as u32,
                out: local,
            };
            walk.diff_tree(d.tree, &parent_trees, &mut prefix, false);
        },
    );

    // Merge: intern paths, sort by blob then date.
    let mut commits_info: Vec<CommitInfo> = Vec::with_capacity(decoded.len());
    let mut trees_and_parents = Vec::with_capacity(decoded.len());
    for d in decoded {
        match d {
            Some(d) => {
                commits_info.push(d.info);
                trees_and_parents.push(Some(d.parents));
            }
            None => {
                commits_info.push(CommitInfo {
                    id: ObjectId::null(gix::hash::Kind::Sha1),
                    hex: String::new(),
                    author: String::new(),
                    seconds: 0,
                    date: String::new(),
                    summary: String::new(),
                    reachable: false,
                });
                trees_and_parents.push(None);
            }
        }
    }
    let mut path_ids: HashMap<BString, u32> = HashMap::new();
    let mut paths: Vec<BString> = Vec::new();
    let mut intros = Vec::new();
    let mut excluded = Vec::new();
    let mut gitlinks: HashMap<BString, ObjectId> = HashMap::new();
    for local in locals {
        for (blob, path) in local.excluded {
            let next = paths.len() as u32;
            let pid = *path_ids.entry(path.clone()).or_insert_with(|| {
                paths.push(path);
                next
            });
            excluded.push((blob, pid));
        }
        for (blob, commit, path) in local.intros {
            let next = paths.len() as u32;
            let pid = *path_ids.entry(path.clone()).or_insert_with(|| {
                paths.push(path);
                next
            });
            intros.push(Intro {
                blob,
                commit,
                path: pid,
            });
        }
        for (path, id) in local.gitlinks {
            gitlinks.entry(path).or_insert(id);
        }
    }
    drop(path_ids);

    // Reachability from every ref and HEAD.
    let repo = ctx.repo.to_thread_local();
    if reachability {
        let mut stack: Vec<u32> = ref_tips(&repo)
            .into_iter()
            .filter_map(|t| index.get(&t).copied())
            .collect();
        while let Some(i) = stack.pop() {
            let c = &mut commits_info[i as usize];
            if c.reachable {
                continue;
            }
            c.reachable = true;
            if let Some(parents) = &trees_and_parents[i as usize] {
                stack.extend(parents.iter().filter_map(|p| index.get(p).copied()));
            }
        }
    } else {
        for c in &mut commits_info {
            c.reachable = true;
        }
    }
    stats.commits += commits_info.iter().filter(|c| !c.id.is_null()).count() as u64;
    stats.dangling_commits += commits_info
        .iter()
        .filter(|c| !c.id.is_null() && !c.reachable)
        .count() as u64;

    // History order: an ancestor always comes before its descendants
    // (generation numbers), whatever the dates say; scripted histories share
    // timestamps and rebases reorder them. Dates only order commits on
    // separate lines of history.
    let generation = generations(&trees_and_parents, &index);
    intros.sort_unstable_by(|a, b| {
        let (ca, cb) = (
            &commits_info[a.commit as usize],
            &commits_info[b.commit as usize],
        );
        a.blob
            .cmp(&b.blob)
            .then(generation[a.commit as usize].cmp(&generation[b.commit as usize]))
            .then(ca.seconds.cmp(&cb.seconds))
            .then(ca.id.cmp(&cb.id))
            .then(paths[a.path as usize].cmp(&paths[b.path as usize]))
    });
    intros.dedup_by(|a, b| a.blob == b.blob && a.commit == b.commit && a.path == b.path);
    excluded.sort_unstable_by(|a, b| {
        a.0.cmp(&b.0)
            .then(paths[a.1 as usize].cmp(&paths[b.1 as usize]))
    });
    excluded.dedup_by_key(|e| e.0);

    let mut gitlinks: Vec<_> = gitlinks.into_iter().collect();
    gitlinks.sort();
    for (path, id) in gitlinks {
        ctx.diags.notice(
            kinds::GIT_SUBMODULE,
            &format!("{}:{}", ctx.display, super::lossy(&path)),
            format!(
                "submodule at `{}` (commit {id}) is not followed{}",
                super::lossy(&path),
                if ctx.opts.follow_submodules {
                    " through history; its checked-out repository is scanned if present"
                } else {
                    "; enable submodule scanning to include it"
                }
            ),
        );
    }

    let head = head_tree(ctx, &repo);
    let head_at = paths.iter().map(|p| head.get(p).copied()).collect();
    Provenance {
        commits: commits_info,
        paths,
        intros,
        excluded,
        head,
        head_at,
    }
}

/// Decode one commit's metadata, tree and parents.
fn decode_commit(ctx: &Ctx<'_>, repo: &gix::Repository, id: ObjectId) -> Option<Decoded> {
    let mut buf = Vec::new();
    let commit = match repo.objects.find_commit(&id, &mut buf) {
        Ok(c) => c,
        Err(e) => {
            ctx.diags.error(
                kinds::GIT_OBJECT_CORRUPT,
                ctx.display,
                format!("commit {id} cannot be read: {e}"),
            );
            return None;
        }
    };
    let (author, seconds, offset) = match commit.author() {
        Ok(sig) => {
            let time = sig.time().unwrap_or_default();
            (
                format!("{} <{}>", sig.name.to_str_lossy(), sig.email.to_str_lossy()),
                time.seconds,
                time.offset,
            )
        }
        Err(_) => (super::lossy(commit.author), 0, 0),
    };
    let summary = commit.message().summary();
    Some(Decoded {
        info: CommitInfo {
            id,
            hex: id.to_string(),
            author,
            seconds,
            date: super::time::rfc3339(seconds, offset),
            summary: super::lossy(&summary),
            reachable: false,
        },
        tree: commit.tree(),
        parents: commit.parents().collect(),
    })
}

/// Read the tree `id` into `buf` and parse it.
fn read_tree<'b>(
    repo: &gix::Repository,
    id: &ObjectId,
    buf: &'b mut Vec<u8>,
) -> Result<TreeRef<'b>, String> {
    repo.objects.find_tree(id, buf).map_err(|e| e.to_string())
}

/// One commit's tree diff: where introductions are collected.
struct TreeWalk<'a, 'r> {
    ctx: &'a Ctx<'a>,
    repo: &'r gix::Repository,
    trees: Option<&'a super::trees::Trees>,
    commit: &'a Decoded,
    commit_idx: u32,
    out: &'a mut Local,
}

impl TreeWalk<'_, '_> {
    /// Record every blob of `tree` (at `prefix`) that is not at the same
    /// path in any of `parents` (the trees at the same path in the parent
    /// commits). Under an `excluded` directory, or at an excluded path,
    /// the introduction goes to the excluded list instead.
    fn diff_tree(
        &mut self,
        tree: ObjectId,
        parents: &[ObjectId],
        prefix: &mut BString,
        excluded: bool,
    ) {
        if let Some(trees) = self.trees
            && let Some(t) = trees.get(&tree)
        {
            let ptrees: Vec<&[super::trees::Entry]> =
                parents.iter().filter_map(|p| trees.get(p)).collect();
            if ptrees.len() == parents.len() {
                return self.diff_decoded(trees, t, &ptrees, prefix, excluded);
            }
        }
        let (ctx, repo) = (self.ctx, self.repo);
        let mut buf = Vec::new();
        let t = match read_tree(repo, &tree, &mut buf) {
            Ok(t) => t,
            Err(e) => {
                ctx.diags.error(
                    kinds::GIT_OBJECT_CORRUPT,
                    ctx.display,
                    format!(
                        "tree {tree} at `{}` in commit {} cannot be read: {e}",
                        super::lossy(prefix),
                        self.commit.info.id
                    ),
                );
                return;
            }
        };
        let mut pbufs: Vec<Vec<u8>> = vec![Vec::new(); parents.len()];
        let mut ptrees: Vec<TreeRef<'_>> = Vec::with_capacity(parents.len());
        for (p, b) in parents.iter().zip(pbufs.iter_mut()) {
            // An unreadable parent tree was or will be reported with that
            // parent's own diff; treat it as empty here.
            if let Ok(pt) = read_tree(repo, p, b) {
                ptrees.push(pt);
            }
        }
        let base_len = prefix.len();
        // Trees are sorted in git's order (a tree's name compares as if it
        // ended in `/`), so one forward pass over each parent finds, for
        // every entry, the parent entry of the same name and tree-ness.
        let mut cursors = vec![0usize; ptrees.len()];
        let mut matched: Vec<usize> = Vec::with_capacity(ptrees.len());
        for entry in &t.entries {
            let kind = entry.mode.kind();
            matched.clear();
            for (p, pt) in ptrees.iter().enumerate() {
                let c = &mut cursors[p];
                while *c < pt.entries.len() && pt.entries[*c] < *entry {
                    *c += 1;
                }
                if *c < pt.entries.len() && pt.entries[*c].cmp(entry) == std::cmp::Ordering::Equal {
                    matched.push(p);
                }
            }
            let parent_entry = |p: usize| &ptrees[p].entries[cursors[p]];
            let same_in_parent = || {
                matched.iter().any(|&p| {
                    let pe = parent_entry(p);
                    pe.oid == entry.oid && pe.mode.kind() == kind
                })
            };
            match kind {
                EntryKind::Blob | EntryKind::BlobExecutable | EntryKind::Link => {
                    if !same_in_parent() {
                        prefix.truncate(base_len);
                        push_component(prefix, entry.filename);
                        if excluded || ctx.is_excluded(prefix) {
                            self.out
                                .excluded
                                .push((entry.oid.to_owned(), prefix.clone()));
                        } else {
                            self.out.intros.push((
                                entry.oid.to_owned(),
                                self.commit_idx,
                                prefix.clone(),
                            ));
                        }
                    }
                }
                EntryKind::Tree => {
                    if same_in_parent() {
                        continue;
                    }
                    let sub_parents: Vec<ObjectId> = matched
                        .iter()
                        .map(|&p| parent_entry(p))
                        .filter(|pe| pe.mode.is_tree())
                        .map(|pe| pe.oid.to_owned())
                        .collect();
                    prefix.truncate(base_len);
                    push_component(prefix, entry.filename);
                    let sub_excluded = excluded || ctx.is_excluded(prefix);
                    self.diff_tree(entry.oid.to_owned(), &sub_parents, prefix, sub_excluded);
                }
                EntryKind::Commit => {
                    if !same_in_parent() {
                        prefix.truncate(base_len);
                        push_component(prefix, entry.filename);
                        self.out
                            .gitlinks
                            .push((prefix.clone(), entry.oid.to_owned()));
                    }
                }
            }
        }
        prefix.truncate(base_len);
    }
}

impl TreeWalk<'_, '_> {
    /// [`TreeWalk::diff_tree`] over trees decoded ahead ([`super::trees`]):
    /// the same walk, comparing table indices instead of names and ids.
    fn diff_decoded(
        &mut self,
        trees: &super::trees::Trees,
        t: &[super::trees::Entry],
        ptrees: &[&[super::trees::Entry]],
        prefix: &mut BString,
        excluded: bool,
    ) {
        let ctx = self.ctx;
        let base_len = prefix.len();
        let mut cursors = vec![0usize; ptrees.len()];
        let mut matched: Vec<usize> = Vec::with_capacity(ptrees.len());
        for &entry in t {
            matched.clear();
            for (p, pt) in ptrees.iter().enumerate() {
                let c = &mut cursors[p];
                while *c < pt.len() && trees.cmp(pt[*c], entry) == std::cmp::Ordering::Less {
                    *c += 1;
                }
                if *c < pt.len() && trees.cmp(pt[*c], entry) == std::cmp::Ordering::Equal {
                    matched.push(p);
                }
            }
            let same_in_parent = matched
                .iter()
                .any(|&p| ptrees[p][cursors[p]].same_object(entry));
            match entry.kind() {
                EntryKind::Blob | EntryKind::BlobExecutable | EntryKind::Link => {
                    if !same_in_parent {
                        prefix.truncate(base_len);
                        push_component(prefix, trees.name(entry).as_bstr());
                        if excluded || ctx.is_excluded(prefix) {
                            self.out.excluded.push((trees.oid(entry), prefix.clone()));
                        } else {
                            self.out.intros.push((
                                trees.oid(entry),
                                self.commit_idx,
                                prefix.clone(),
                            ));
                        }
                    }
                }
                EntryKind::Tree => {
                    if same_in_parent {
                        continue;
                    }
                    let sub_parents: Vec<ObjectId> = matched
                        .iter()
                        .map(|&p| ptrees[p][cursors[p]])
                        .filter(|pe| pe.kind() == EntryKind::Tree)
                        .map(|pe| trees.oid(pe))
                        .collect();
                    prefix.truncate(base_len);
                    push_component(prefix, trees.name(entry).as_bstr());
                    let sub_excluded = excluded || ctx.is_excluded(prefix);
                    self.diff_tree(trees.oid(entry), &sub_parents, prefix, sub_excluded);
                }
                EntryKind::Commit => {
                    if !same_in_parent {
                        prefix.truncate(base_len);
                        push_component(prefix, trees.name(entry).as_bstr());
                        self.out.gitlinks.push((prefix.clone(), trees.oid(entry)));
                    }
                }
            }
        }
        prefix.truncate(base_len);
    }
}

fn push_component(prefix: &mut BString, name: &BStr) {
    if !prefix.is_empty() {
        prefix.push_byte(b'/');
    }
    prefix.push_str(name);
}

/// Every ref that points (tags peeled) at a commit, by full name
/// (`refs/heads/main`, `refs/tags/v1.2`): what a recurring scan remembers.
pub(crate) fn named_tips(repo: &gix::Repository) -> BTreeMap<String, ObjectId> {
    let mut tips = BTreeMap::new();
    if let Ok(platform) = repo.references()
        && let Ok(all) = platform.all()
    {
        for r in all.flatten() {
            let name = r.name().as_bstr().to_string();
            if let Ok(id) = r.into_fully_peeled_id()
                && repo.find_commit(id.detach()).is_ok()
            {
                tips.insert(name, id.detach());
            }
        }
    }
    tips
}

/// What a recurring scan reads.
pub(crate) enum Since {
    /// These commits: reachable from a tip now, from no earlier tip.
    New(Vec<ObjectId>),
    /// Everything, for this reason.
    Full(String),
}

/// The commits new since the earlier tips `old` (ref name → commit id),
/// given the tips now: a ref whose earlier tip is gone or is no longer an
/// ancestor of its tip was rewritten (force-pushed, a moved tag), and
/// then the whole repository is read. A ref deleted since is no reason:
/// its earlier tip, when still there, hides what it reached.
pub(crate) fn since_refs(
    repo: &gix::Repository,
    old: &BTreeMap<String, String>,
    now: &BTreeMap<String, ObjectId>,
) -> Result<Since, String> {
    if old.is_empty() {
        return Ok(Since::Full("no earlier scan".into()));
    }
    let short = |id: &ObjectId| id.to_hex_with_len(12).to_string();
    let mut hidden = Vec::new();
    for (name, hex) in old {
        let Ok(id) = ObjectId::from_hex(hex.as_bytes()) else {
            return Ok(Since::Full(format!("{name}: `{hex}` is not a commit id")));
        };
        let present = repo.find_commit(id).is_ok();
        match now.get(name) {
            Some(tip) if *tip == id => {}
            Some(tip) => {
                let base = if present {
                    repo.merge_base(id, *tip)
                        .map_err(|e| e.to_string())?
                        .map(|b| b.detach())
                } else {
                    None
                };
                if base != Some(id) {
                    return Ok(Since::Full(format!(
                        "{name} was rewritten: {} is no longer an ancestor of its tip {}",
                        short(&id),
                        short(tip)
                    )));
                }
            }
            None => {}
        }
        if present {
            hidden.push(id);
        }
    }
    if now.is_empty() {
        return Ok(Since::New(Vec::new()));
    }
    let walk = repo
        .rev_walk(now.values().copied().collect::<HashSet<_>>())
        .with_hidden(hidden);
    let mut out = Vec::new();
    for info in walk.all().map_err(|e| e.to_string())? {
        out.push(info.map_err(|e| e.to_string())?.id);
    }
    Ok(Since::New(out))
}

/// Every commit a ref or HEAD points at (tags peeled).
fn ref_tips(repo: &gix::Repository) -> Vec<ObjectId> {
    let mut tips = Vec::new();
    if let Ok(platform) = repo.references()
        && let Ok(all) = platform.all()
    {
        for r in all.flatten() {
            if let Ok(id) = r.into_fully_peeled_id() {
                tips.push(id.detach());
            }
        }
    }
    if let Ok(id) = repo.head_id() {
        tips.push(id.detach());
    }
    tips
}

/// HEAD's tree flattened to path → blob id (empty for an unborn HEAD).
pub(crate) fn head_tree(ctx: &Ctx<'_>, repo: &gix::Repository) -> HashMap<BString, ObjectId> {
    let mut out = HashMap::new();
    let Ok(commit) = repo.head_commit() else {
        return out;
    };
    let Ok(tree) = commit.tree_id() else {
        return out;
    };
    let mut stack = vec![(BString::default(), tree.detach())];
    while let Some((prefix, id)) = stack.pop() {
        let mut buf = Vec::new();
        let t = match read_tree(repo, &id, &mut buf) {
            Ok(t) => t,
            Err(e) => {
                ctx.diags.error(
                    kinds::GIT_OBJECT_CORRUPT,
                    ctx.display,
                    format!(
                        "HEAD tree {id} at `{}` cannot be read: {e}",
                        super::lossy(&prefix)
                    ),
                );
                continue;
            }
        };
        for entry in t.entries {
            let mut path = prefix.clone();
            push_component(&mut path, entry.filename);
            match entry.mode.kind() {
                EntryKind::Tree => stack.push((path, entry.oid.to_owned())),
                EntryKind::Blob | EntryKind::BlobExecutable | EntryKind::Link => {
                    out.insert(path, entry.oid.to_owned());
                }
                EntryKind::Commit => {}
            }
        }
    }
    out
}

impl Provenance {
    /// The introductions of `blob`, oldest first.
    fn intros_of(&self, blob: ObjectId) -> &[Intro] {
        let start = self.intros.partition_point(|i| i.blob < blob);
        let end = start + self.intros[start..].partition_point(|i| i.blob == blob);
        &self.intros[start..end]
    }

    /// Display path and origin of `blob`. The commit (with its author,
    /// date and summary) is the earliest introduction in history order: the
    /// commit that brought the content in, not a later rename or copy. The
    /// path is where the blob is in HEAD, if it still is (where to fix it),
    /// else the earliest introduction's.
    pub(crate) fn describe(&self, display: &str, blob: ObjectId) -> (String, GitOrigin) {
        let intros = self.intros_of(blob);
        let in_head = |i: &&Intro| self.head_at[i.path as usize] == Some(blob);
        let Some(primary) = intros.first() else {
            return (
                format!("<unreachable>/{blob}"),
                GitOrigin {
                    repository: display.to_string(),
                    blob: blob.to_string(),
                    state: GitBlobState::Unreachable,
                    ..GitOrigin::default()
                },
            );
        };
        let commit = &self.commits[primary.commit as usize];
        let path_id = intros.iter().find(in_head).unwrap_or(primary).path as usize;
        let path = &self.paths[path_id];
        let introductions: Vec<_> = intros
            .iter()
            .map(|i| {
                super::introduction(
                    &self.commits[i.commit as usize],
                    &self.paths[i.path as usize],
                )
            })
            .collect();
        let state = if introductions.iter().any(|i| i.reachable) {
            GitBlobState::Committed
        } else {
            GitBlobState::Dangling
        };
        let first = &introductions[0];
        (
            super::lossy(path),
            GitOrigin {
                repository: display.to_string(),
                blob: blob.to_string(),
                commit: Some(commit.hex.clone()),
                author: Some(first.author.clone()),
                author_date: Some(first.author_date.clone()),
                summary: Some(first.summary.clone()),
                in_head: self.head_at[path_id] == Some(blob),
                state,
                introductions,
            },
        )
    }

    /// Whether `blob` was introduced at a path matching `--exclude`.
    pub(crate) fn is_excluded(&self, blob: ObjectId) -> bool {
        self.excluded.binary_search_by_key(&blob, |e| e.0).is_ok()
    }

    /// One excluded path that introduced `blob` (empty if none).
    pub(crate) fn excluded_path(&self, blob: ObjectId) -> String {
        self.excluded
            .binary_search_by_key(&blob, |e| e.0)
            .map(|i| super::lossy(&self.paths[self.excluded[i].1 as usize]))
            .unwrap_or_default()
    }

    /// Push the full message of every scanned commit, once per commit, at
    /// [`super::COMMIT_MESSAGE_PATH`] (empty messages are skipped).
    pub(crate) fn deliver_messages(&self, ctx: &Ctx<'_>, stats: &mut GitStats) {
        let per_thread = ctx.parallel(
            self.commits.len(),
            256,
            0,
            || (0u64, 0u64),
            |repo, (delivered, bytes), i| {
                let info = &self.commits[i];
                if info.id.is_null() {
                    return;
                }
                let mut buf = Vec::new();
                let message = match repo.objects.find_commit(&info.id, &mut buf) {
                    Ok(c) => c.message.to_vec(),
                    Err(e) => {
                        ctx.diags.error(
                            kinds::GIT_OBJECT_CORRUPT,
                            ctx.display,
                            format!("commit {} cannot be read: {e}", info.id),
                        );
                        return;
                    }
                };
                if message.trim().is_empty() {
                    return;
                }
                *delivered += 1;
                *bytes += message.len() as u64;
                let origin = GitOrigin {
                    repository: ctx.display.to_string(),
                    blob: info.hex.clone(),
                    commit: Some(info.hex.clone()),
                    author: Some(info.author.clone()),
                    author_date: Some(info.date.clone()),
                    summary: Some(info.summary.clone()),
                    in_head: false,
                    state: if info.reachable {
                        GitBlobState::Committed
                    } else {
                        GitBlobState::Dangling
                    },
                    introductions: Vec::new(),
                };
                super::hand_over(ctx, super::COMMIT_MESSAGE_PATH.to_string(), origin, message);
            },
        );
        for (delivered, bytes) in per_thread {
            stats.messages_delivered += delivered;
            stats.message_bytes += bytes;
        }
    }

    /// The unique blobs introduced by the scanned commits (gates), with
    /// their sizes; unreadable ones are reported.
    pub(crate) fn introduced_blobs(&self, ctx: &Ctx<'_>, _stats: &mut GitStats) -> Vec<BlobRef> {
        let mut ids: Vec<ObjectId> = self.intros.iter().map(|i| i.blob).collect();
        ids.dedup();
        let per_thread = ctx.parallel(ids.len(), 256, 0, Vec::new, |repo, out, i| {
            let id = ids[i];
            match repo.objects.try_header(&id) {
                Ok(Some(h)) => out.push((i, BlobRef { id, size: h.size() })),
                Ok(None) => ctx.diags.error(
                    kinds::GIT_OBJECT_MISSING,
                    ctx.display,
                    format!("blob {id} is referenced but missing"),
                ),
                Err(e) => ctx.diags.error(
                    kinds::GIT_OBJECT_CORRUPT,
                    ctx.display,
                    format!("blob {id} cannot be read: {e}"),
                ),
            }
        });
        let mut all: Vec<_> = per_thread.into_iter().flatten().collect();
        all.sort_unstable_by_key(|(i, _)| *i);
        all.into_iter().map(|(_, b)| b).collect()
    }

    /// Report blobs that trees reference but the object database lacks.
    pub(crate) fn check_missing(
        &self,
        ctx: &Ctx<'_>,
        present: &[BlobRef],
        unreadable: &HashSet<ObjectId>,
    ) {
        let present: HashSet<ObjectId> = present.iter().map(|b| b.id).collect();
        let mut last = None;
        for intro in &self.intros {
            if last == Some(intro.blob) {
                continue;
            }
            last = Some(intro.blob);
            if !present.contains(&intro.blob) && !unreadable.contains(&intro.blob) {
                let commit = &self.commits[intro.commit as usize];
                ctx.diags.error(
                    kinds::GIT_OBJECT_MISSING,
                    ctx.display,
                    format!(
                        "blob {} at `{}` in commit {} is missing from the object database",
                        intro.blob,
                        super::lossy(&self.paths[intro.path as usize]),
                        commit.id
                    ),
                );
            }
        }
    }
}

/// Generation number of every commit: 1 for a root (or a commit whose
/// parents are outside the set), else one more than its highest parent. An
/// ancestor's number is always lower than its descendants'. Iterative: a
/// history may be hundreds of thousands of commits deep. `parents[i]` is
/// `None` for an unreadable commit (generation 1).
fn generations(parents: &[Option<Vec<ObjectId>>], index: &HashMap<ObjectId, u32>) -> Vec<u32> {
    const UNSEEN: u32 = 0;
    const IN_PROGRESS: u32 = u32::MAX;
    let mut generation = vec![UNSEEN; parents.len()];
    let parents_of = |i: usize| {
        parents[i]
            .as_deref()
            .unwrap_or(&[])
            .iter()
            .filter_map(|p| index.get(p).map(|&p| p as usize))
    };
    let mut stack: Vec<(usize, bool)> = Vec::new();
    for start in 0..parents.len() {
        if generation[start] != UNSEEN {
            continue;
        }
        stack.push((start, false));
        while let Some((c, parents_done)) = stack.pop() {
            if parents_done {
                // A parent still in progress would be a cycle, which object
                // ids make impossible; it counts as outside the set.
                let highest = parents_of(c)
                    .map(|p| generation[p])
                    .filter(|&g| g != IN_PROGRESS)
                    .max()
                    .unwrap_or(0);
                generation[c] = highest.saturating_add(1).min(IN_PROGRESS - 1);
            } else if generation[c] == UNSEEN {
                generation[c] = IN_PROGRESS;
                stack.push((c, true));
                stack.extend(
                    parents_of(c)
                        .filter(|&p| generation[p] == UNSEEN)
                        .map(|p| (p, false)),
                );
            }
        }
    }
    generation
}

//! The index and the work tree: `--staged` (index entries that differ from
//! HEAD), the work-tree files that differ from HEAD or are untracked, and
//! the repositories of submodules.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use gix::ObjectId;
use gix::bstr::BString;
use gix::objs::FindExt;
use gix::prelude::Header;
use keytrail_types::{GitBlobState, GitOrigin};

use super::{Ctx, GitStats, kinds};

/// Push every index entry whose blob differs from the one at the same path
/// in HEAD (new and modified files, staged), as [`GitBlobState::Staged`].
pub(crate) fn scan_staged(ctx: &Ctx<'_>, stats: &mut GitStats) {
    let repo = ctx.repo.to_thread_local();
    let index = match repo.open_index() {
        Ok(i) => i,
        // No index file: nothing is staged.
        Err(_) => return,
    };
    let head = super::history::head_tree(ctx, &repo);
    let mut seen = std::collections::HashSet::new();
    for entry in index.entries() {
        if entry.mode.is_submodule() || entry.mode.is_sparse() {
            continue;
        }
        let path = entry.path(&index);
        if head.get(path) == Some(&entry.id) || !seen.insert(entry.id) {
            continue;
        }
        if ctx.is_excluded_or_below(path) {
            ctx.diags.notice(
                crate::kinds::EXCLUDED,
                &format!("{}:{}", ctx.display, super::lossy(path)),
                "staged file excluded by --exclude".into(),
            );
            continue;
        }
        stats.blobs += 1;
        let display = super::lossy(path);
        let size = match repo.objects.try_header(&entry.id) {
            Ok(Some(h)) => h.size(),
            Ok(None) => {
                ctx.diags.error(
                    kinds::GIT_OBJECT_MISSING,
                    ctx.display,
                    format!("staged blob {} for `{display}` is missing", entry.id),
                );
                continue;
            }
            Err(e) => {
                ctx.diags.error(
                    kinds::GIT_OBJECT_CORRUPT,
                    ctx.display,
                    format!(
                        "staged blob {} for `{display}` cannot be read: {e}",
                        entry.id
                    ),
                );
                continue;
            }
        };
        if size > ctx.opts.max_blob_bytes {
            stats.blobs_too_large += 1;
            ctx.diags.notice(
                kinds::GIT_BLOB_TOO_LARGE,
                &format!("{}:{display}", ctx.display),
                format!(
                    "staged blob {} is {size} bytes, over the {}-byte cap: not scanned",
                    entry.id, ctx.opts.max_blob_bytes
                ),
            );
            continue;
        }
        let mut buf = Vec::new();
        if let Err(e) = repo.objects.find_blob(&entry.id, &mut buf) {
            ctx.diags.error(
                kinds::GIT_OBJECT_CORRUPT,
                ctx.display,
                format!(
                    "staged blob {} for `{display}` cannot be read: {e}",
                    entry.id
                ),
            );
            continue;
        }
        stats.blobs_delivered += 1;
        stats.bytes_delivered += buf.len() as u64;
        let origin = GitOrigin {
            repository: ctx.display.to_string(),
            blob: entry.id.to_string(),
            state: GitBlobState::Staged,
            ..GitOrigin::default()
        };
        super::hand_over(ctx, display, origin, buf);
    }
}

/// Work-tree files whose content differs from HEAD's blob at the same path,
/// or that HEAD does not have (untracked, ignored or newly added), as
/// absolute paths. `.git` and nested repositories (submodules) are not
/// descended; symlinks are not followed.
///
/// A file whose index entry matches HEAD and whose size and modification
/// time match the index is unchanged without being read; otherwise its
/// content is hashed and compared. A file whose HEAD blob is not in
/// `readable` (missing from the object database, or corrupt) counts as
/// changed: history could not show its content, so the file walk must.
pub(crate) fn changed_paths(
    ctx: &Ctx<'_>,
    head: &HashMap<BString, ObjectId>,
    readable: &HashSet<ObjectId>,
) -> Vec<PathBuf> {
    let repo = ctx.repo.to_thread_local();
    let Some(workdir) = repo.workdir().map(Path::to_path_buf) else {
        return Vec::new();
    };
    let index: HashMap<BString, (ObjectId, u64, u32, u32)> = match repo.open_index() {
        Ok(index) => index
            .entries()
            .iter()
            .map(|e| {
                (
                    e.path(&index).to_owned(),
                    (
                        e.id,
                        u64::from(e.stat.size),
                        e.stat.mtime.secs,
                        e.stat.mtime.nsecs,
                    ),
                )
            })
            .collect(),
        Err(_) => HashMap::new(),
    };
    let mut out = Vec::new();
    let mut stack = vec![(workdir.clone(), BString::default())];
    while let Some((dir, rel)) = stack.pop() {
        let Ok(read) = std::fs::read_dir(&dir) else {
            // The file source reports unreadable directories; listing it
            // lets it do so.
            out.push(dir);
            continue;
        };
        for entry in read.flatten() {
            let name = entry.file_name();
            if name == ".git" {
                continue;
            }
            let Ok(ft) = entry.file_type() else { continue };
            let path = entry.path();
            let mut rel_path = rel.clone();
            if !rel_path.is_empty() {
                rel_path.push(b'/');
            }
            rel_path.extend_from_slice(name.as_encoded_bytes());
            if ctx.is_excluded(&rel_path) {
                // The file walk does not see it: it is given only the
                // changed paths, and never excludes a path it is given.
                continue;
            }
            if ft.is_dir() {
                if path.join(".git").exists() {
                    // A nested repository (submodule): scanned on its own
                    // when submodules are followed.
                    continue;
                }
                stack.push((path, rel_path));
            } else if ft.is_file() && !unchanged(&path, &rel_path, head, &index, readable) {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Whether the file at `path` has the same content as HEAD's blob at `rel`.
fn unchanged(
    path: &Path,
    rel: &BString,
    head: &HashMap<BString, ObjectId>,
    index: &HashMap<BString, (ObjectId, u64, u32, u32)>,
    readable: &HashSet<ObjectId>,
) -> bool {
    let Some(head_id) = head.get(rel) else {
        return false;
    };
    if !readable.contains(head_id) {
        return false;
    }
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    if let Some((id, size, secs, nsecs)) = index.get(rel)
        && id == head_id
        && *size == meta.len()
        && mtime(&meta) == Some((*secs, *nsecs))
    {
        return true;
    }
    let Ok(data) = std::fs::read(path) else {
        return false;
    };
    gix::objs::compute_hash(head_id.kind(), gix::object::Kind::Blob, &data)
        .is_ok_and(|id| id == *head_id)
}

/// Modification time as the index stores it (seconds, nanoseconds).
fn mtime(meta: &std::fs::Metadata) -> Option<(u32, u32)> {
    let t = meta
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    Some((t.as_secs() as u32, t.subsec_nanos()))
}

/// Repositories of the submodules registered in the index: the checked-out
/// work tree when present, else the repository under `.git/modules`.
pub(crate) fn submodule_repositories(repo: &gix::Repository) -> Vec<PathBuf> {
    let Ok(index) = repo.open_index() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in index.entries() {
        if !entry.mode.is_submodule() {
            continue;
        }
        let Ok(rel) = gix::path::from_bstr(entry.path(&index)) else {
            continue;
        };
        let candidates = [
            repo.workdir().map(|w| w.join(&rel)),
            Some(repo.git_dir().join("modules").join(&rel)),
        ];
        if let Some(found) = candidates
            .into_iter()
            .flatten()
            .find(|p| p.join(".git").exists() || gix::discover::is_git(p).is_ok())
        {
            out.push(found);
        }
    }
    out
}

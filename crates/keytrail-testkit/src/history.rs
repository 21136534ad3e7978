//! A real-content git history for benchmarks: the source trees in the
//! local cargo registry (`$CARGO_HOME/registry/src`) committed round after
//! round, successive versions of a crate sharing one directory, one line
//! changed per file per round, then packed with `git gc` so blobs are delta
//! chains as in real projects. Built with the `git` command (this is test
//! tooling; keytrail itself reads repositories with gix).

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Files larger than this are left out of the history.
const MAX_FILE: u64 = 4 << 20;

/// Run `git` in `dir` with a fixed identity and no user or system config;
/// returns its standard output.
pub fn git(dir: &Path, args: &[&str]) -> io::Result<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Bench")
        .env("GIT_AUTHOR_EMAIL", "bench@example.com")
        .env("GIT_COMMITTER_NAME", "Bench")
        .env("GIT_COMMITTER_EMAIL", "bench@example.com")
        .output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Build the history in a new work tree at `work` (removed first if it
/// exists): `rounds` rounds, one commit per top-level directory per round.
/// Returns the number of files per round.
pub fn build_registry_history(work: &Path, rounds: usize) -> io::Result<usize> {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .ok_or_else(|| io::Error::other("neither CARGO_HOME nor HOME is set"))?;
    build_history_from(&cargo_home.join("registry/src"), work, rounds)
}

/// [`build_registry_history`] from any directory laid out like
/// `registry/src`: `<index>/<crate>-<version>/...`.
pub fn build_history_from(registry_src: &Path, work: &Path, rounds: usize) -> io::Result<usize> {
    let _ = std::fs::remove_dir_all(work);
    std::fs::create_dir_all(work)?;
    git(work, &["-c", "init.defaultBranch=main", "init", "-q"])?;
    let mut crates: Vec<PathBuf> = Vec::new();
    for index in std::fs::read_dir(registry_src)? {
        for c in std::fs::read_dir(index?.path())? {
            crates.push(c?.path());
        }
    }
    crates.sort();
    let mut files: Vec<(PathBuf, PathBuf)> = Vec::new();
    for c in &crates {
        let name = c
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // `serde-1.0.200` → `serde`: successive versions share a directory.
        let stem = match name.rfind('-') {
            Some(i) if name[i + 1..].starts_with(|ch: char| ch.is_ascii_digit()) => &name[..i],
            _ => &name,
        };
        source_files(c, &PathBuf::from(stem), &mut files);
    }
    for round in 0..rounds {
        let mut current: Option<PathBuf> = None;
        for (src, rel) in &files {
            let top = rel
                .components()
                .next()
                .map(|c| PathBuf::from(c.as_os_str()));
            if let Some(done) = &current
                && current != top
            {
                commit_round(work, round, done)?;
            }
            current = top;
            let Ok(mut data) = std::fs::read(src) else {
                continue;
            };
            if round > 0 {
                // Change one line per round, at a different place each time.
                let lines = data.iter().filter(|b| **b == b'\n').count().max(1);
                let at = (round * 7919) % lines;
                let pos = data
                    .iter()
                    .enumerate()
                    .filter(|(_, b)| **b == b'\n')
                    .nth(at)
                    .map_or(data.len(), |(i, _)| i + 1);
                let line = format!("// keytrail bench revision {round}\n");
                data.splice(pos..pos, line.bytes());
            }
            let dst = work.join(rel);
            if let Some(parent) = dst.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(dst, data)?;
        }
        if let Some(d) = current {
            commit_round(work, round, &d)?;
        }
    }
    git(work, &["gc", "-q"])?;
    Ok(files.len())
}

fn commit_round(repo: &Path, round: usize, dir: &Path) -> io::Result<()> {
    git(repo, &["add", "-A"])?;
    let msg = format!("{} round {round}", dir.display());
    git(repo, &["commit", "-q", "--allow-empty", "-m", &msg])?;
    Ok(())
}

/// Regular files under `dir` (at most [`MAX_FILE`] each), mapped to `rel`.
fn source_files(dir: &Path, rel: &Path, out: &mut Vec<(PathBuf, PathBuf)>) {
    let Ok(read) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = read.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name();
        if name == ".git" {
            continue;
        }
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            source_files(&e.path(), &rel.join(&name), out);
        } else if ft.is_file() && e.metadata().is_ok_and(|m| m.len() <= MAX_FILE) {
            out.push((e.path(), rel.join(&name)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_share_a_directory_and_each_round_changes_every_file() {
        let root = std::env::temp_dir().join(format!("keytrail-history-{}", std::process::id()));
        let src = root.join("src/index.example");
        for (krate, body) in [
            ("demo-1.0.0", "fn a() {}\n"),
            ("demo-1.1.0", "fn b() {}\n"),
            ("other-0.1.0", "x\ny\n"),
        ] {
            std::fs::create_dir_all(src.join(krate).join("src")).unwrap();
            std::fs::write(src.join(krate).join("src/lib.rs"), body).unwrap();
        }
        let work = root.join("work");
        let files = build_history_from(&root.join("src"), &work, 3).unwrap();
        assert_eq!(files, 3);
        // Two top-level directories (demo, other), one commit each per round.
        let commits = git(&work, &["rev-list", "--count", "HEAD"]).unwrap();
        assert_eq!(commits.trim(), "6");
        let lib = std::fs::read_to_string(work.join("demo/src/lib.rs")).unwrap();
        assert!(lib.contains("fn b()"), "the later version wins: {lib}");
        assert!(lib.contains("keytrail bench revision 2"), "{lib}");
        let revisions = git(&work, &["log", "--format=%H", "--", "other/src/lib.rs"]).unwrap();
        assert_eq!(revisions.lines().count(), 3, "one revision per round");
        std::fs::remove_dir_all(&root).unwrap();
    }
}

//! Throughput of the git source on a real history: unique blob bytes
//! enumerated and decoded per second (no matching), and peak memory.
//!
//! `KEYTRAIL_BENCH_REPO=/path/to/repo cargo bench -p keytrail-input --features git --bench git_history`
//! measures any repository. Without it, a history is built once (and kept
//! under the target directory) by committing successive revisions of the
//! real source trees in `~/.cargo/registry/src`: every crate is committed
//! `KEYTRAIL_BENCH_ROUNDS` times (default 5), each round changing one line
//! of every file, then the repository is packed with `git gc` so blobs are
//! delta chains, as in real projects. The history is kept in
//! `target/tmp/keytrail-bench-git-ROUNDS` and reused by later runs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use keytrail_input::git::{self, GitOptions};
use keytrail_input::{Blob, BlobSink, Content};
use keytrail_types::Diagnostic;

/// Counts what it is given; does no scanning.
#[derive(Default)]
struct Count {
    blobs: AtomicU64,
    bytes: AtomicU64,
    diags: AtomicU64,
}

impl BlobSink for Count {
    fn blob(&self, blob: Blob) {
        self.blobs.fetch_add(1, Ordering::Relaxed);
        let n = match &blob.content {
            Content::Bytes(b) => b.len() as u64,
            Content::File { len, .. } => *len,
        };
        self.bytes.fetch_add(n, Ordering::Relaxed);
    }
    fn diagnostic(&self, _diag: Diagnostic) {
        self.diags.fetch_add(1, Ordering::Relaxed);
    }
}

fn main() {
    let repo = match std::env::var_os("KEYTRAIL_BENCH_REPO") {
        Some(p) => PathBuf::from(p),
        None => build_repo(),
    };
    let threads: usize = std::env::var("KEYTRAIL_BENCH_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let opts = GitOptions {
        threads,
        worktree: false,
        ..GitOptions::default()
    };
    let sink = Count::default();
    let start = Instant::now();
    let stats = git::scan_repository(&repo, &opts, &sink);
    let secs = start.elapsed().as_secs_f64();
    let mb = stats.bytes_delivered as f64 / 1e6;
    println!("repository:       {}", repo.display());
    println!(
        "commits:          {} ({} dangling)",
        stats.commits, stats.dangling_commits
    );
    println!(
        "unique blobs:     {} ({} delivered, {} too large, {} unreachable)",
        stats.blobs, stats.blobs_delivered, stats.blobs_too_large, stats.unreachable_blobs
    );
    println!("unique blob MB:   {mb:.1} decoded");
    println!(
        "text to sink:     {} blobs, {:.1} MB ({} diagnostics: binary skips and others)",
        sink.blobs.load(Ordering::Relaxed),
        sink.bytes.load(Ordering::Relaxed) as f64 / 1e6,
        sink.diags.load(Ordering::Relaxed)
    );
    println!("errors:           {}", stats.errors);
    println!("elapsed:          {secs:.2} s");
    println!("throughput:       {:.1} MB/s", mb / secs);
    println!("peak memory:      {} MB (VmHWM)", peak_rss_kb() / 1024);
}

/// Peak resident set size of this process, from /proc/self/status.
fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Bench")
        .env("GIT_AUTHOR_EMAIL", "bench@example.com")
        .env("GIT_COMMITTER_NAME", "Bench")
        .env("GIT_COMMITTER_EMAIL", "bench@example.com")
        .status()
        .expect("git runs");
    assert!(status.success(), "git {args:?} failed");
}

/// Build (once) a history from the cargo registry's source trees.
fn build_repo() -> PathBuf {
    let rounds: usize = std::env::var("KEYTRAIL_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    // Cargo's scratch directory for benches: kept between runs.
    let repo = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("keytrail-bench-git-{rounds}"));
    if repo.join(".git/BENCH_DONE").exists() {
        return repo;
    }
    let _ = std::fs::remove_dir_all(&repo);
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["-c", "init.defaultBranch=main", "init", "-q"]);
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .expect("HOME or CARGO_HOME");
    let mut crates: Vec<PathBuf> = Vec::new();
    for index in std::fs::read_dir(home.join("registry/src")).expect("cargo registry sources") {
        let index = index.unwrap().path();
        for c in std::fs::read_dir(&index).unwrap() {
            crates.push(c.unwrap().path());
        }
    }
    crates.sort();
    eprintln!(
        "building bench history: {} crates x {rounds} rounds in {}",
        crates.len(),
        repo.display()
    );
    let mut files: Vec<(PathBuf, PathBuf)> = Vec::new();
    for c in &crates {
        let name = c.file_name().unwrap().to_string_lossy().into_owned();
        // `serde-1.0.200` → `serde`: successive versions share a directory.
        let stem = match name.rfind('-') {
            Some(i) if name[i + 1..].starts_with(|ch: char| ch.is_ascii_digit()) => &name[..i],
            _ => &name,
        };
        collect(c, &PathBuf::from(stem), &mut files);
    }
    for round in 0..rounds {
        let mut current_dir: Option<PathBuf> = None;
        for (src, rel) in &files {
            let top = rel
                .components()
                .next()
                .map(|c| PathBuf::from(c.as_os_str()));
            if let Some(done) = &current_dir
                && current_dir != top
            {
                commit(&repo, round, done);
            }
            current_dir = top;
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
            let dst = repo.join(rel);
            std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
            std::fs::write(dst, data).unwrap();
        }
        if let Some(d) = current_dir {
            commit(&repo, round, &d);
        }
    }
    git(&repo, &["gc", "-q"]);
    std::fs::write(repo.join(".git/BENCH_DONE"), b"").unwrap();
    repo
}

fn commit(repo: &Path, round: usize, dir: &Path) {
    git(repo, &["add", "-A"]);
    let msg = format!("{} round {round}", dir.display());
    git(repo, &["commit", "-q", "--allow-empty", "-m", &msg]);
}

/// Regular files under `dir` (at most 4 MB each), mapped to `rel`.
fn collect(dir: &Path, rel: &Path, out: &mut Vec<(PathBuf, PathBuf)>) {
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
            collect(&e.path(), &rel.join(&name), out);
        } else if ft.is_file() && e.metadata().is_ok_and(|m| m.len() <= 4 << 20) {
            out.push((e.path(), rel.join(&name)));
        }
    }
}

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
    eprintln!(
        "building bench history from the cargo registry sources x {rounds} rounds in {}",
        repo.display()
    );
    keytrail_testkit::history::build_registry_history(&repo, rounds).expect("bench history builds");
    std::fs::write(repo.join(".git/BENCH_DONE"), b"").unwrap();
    repo
}

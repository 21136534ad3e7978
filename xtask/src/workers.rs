//! `cargo xtask bench-workers`: the scaling curve of distributed scanning.
//! Generates `--jobs` small repositories (source-like files with fake
//! secrets from the test-kit), then, against the NATS server and the
//! PostgreSQL server on loopback (scripts/install-test-deps.sh starts
//! both):
//!
//! 1. the single-process run: one `keytrail scan --db` of every
//!    repository, and, as the per-target cost of running alone, one
//!    `keytrail scan --db` process per repository, one after the other;
//! 2. for each worker count in `--workers` (default 1, 2, 4): a fresh
//!    database and queue prefix, `keytrail submit scan` of every
//!    repository, then that many `keytrail worker --exit-when-idle`
//!    processes; the span from the first job's start to the last job's end
//!    (from the store's `jobs`) gives jobs per minute.
//!
//! Prints a table and checks that every run found the same findings.

use anyhow::{Context, Result, bail};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

/// The options both worker benchmarks take (`--workers`, `--nats`, `--pg`,
/// `--bin`, `--dir`).
pub(crate) struct Cluster {
    pub(crate) workers: Vec<usize>,
    pub(crate) nats: String,
    pub(crate) pg: String,
    pub(crate) bin: PathBuf,
    pub(crate) dir: PathBuf,
}

impl Cluster {
    /// The defaults: 1, 2 and 4 workers, the local servers, the release
    /// binary, `dir_name` in the temporary folder.
    pub(crate) fn new(dir_name: &str) -> Cluster {
        Cluster {
            workers: vec![1, 2, 4],
            nats: "nats://127.0.0.1:4222".into(),
            pg: "postgres://postgres@127.0.0.1:5432".into(),
            bin: crate::target_dir().join("release").join("keytrail"),
            dir: std::env::temp_dir().join(dir_name),
        }
    }

    /// Takes `flag` when it is one of these options, its value from `val`;
    /// false when it is not.
    pub(crate) fn take(
        &mut self,
        flag: &str,
        val: &mut dyn FnMut() -> Result<String>,
    ) -> Result<bool> {
        match flag {
            "--workers" => {
                self.workers = val()?
                    .split(',')
                    .map(|n| n.trim().parse())
                    .collect::<Result<_, _>>()?
            }
            "--nats" => self.nats = val()?,
            "--pg" => self.pg = val()?.trim_end_matches('/').to_string(),
            "--bin" => self.bin = PathBuf::from(val()?),
            "--dir" => self.dir = PathBuf::from(val()?),
            _ => return Ok(false),
        }
        Ok(true)
    }
}

struct Opts {
    jobs: usize,
    files: usize,
    c: Cluster,
}

fn parse(args: &[String]) -> Result<Opts> {
    let mut o = Opts {
        jobs: 200,
        files: 20,
        c: Cluster::new("keytrail-bench-workers"),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || {
            it.next()
                .cloned()
                .with_context(|| format!("{a} needs a value"))
        };
        match a.as_str() {
            "--jobs" => o.jobs = val()?.parse()?,
            "--files" => o.files = val()?.parse()?,
            other => {
                if !o.c.take(other, &mut val)? {
                    bail!("unknown argument {other}")
                }
            }
        }
    }
    Ok(o)
}

/// `jobs` repositories of `files` files (16 KiB each, a fake secret every
/// 8 KiB on average). Returns the repositories and their total bytes.
fn corpus(o: &Opts) -> Result<(Vec<PathBuf>, u64)> {
    let marker = o.c.dir.join(format!(".complete-{}-{}", o.jobs, o.files));
    let repos: Vec<PathBuf> = (0..o.jobs)
        .map(|i| o.c.dir.join(format!("repo{i:05}")))
        .collect();
    if !marker.exists() {
        if o.c.dir.exists() {
            std::fs::remove_dir_all(&o.c.dir)?;
        }
        for (i, r) in repos.iter().enumerate() {
            std::fs::create_dir_all(r.join("src"))?;
            for f in 0..o.files {
                let seed = (i * 1000 + f) as u64;
                let (data, _) =
                    keytrail_testkit::secrets::source_like_corpus(16 << 10, 8 << 10, seed);
                let ext = ["rs", "py", "js", "go", "yaml", "env"][f % 6];
                std::fs::write(r.join("src").join(format!("f{f:03}.{ext}")), data)?;
            }
        }
        std::fs::write(&marker, "")?;
    }
    let bytes = repos.iter().map(|r| crate::dir_size(r).unwrap_or(0)).sum();
    Ok((repos, bytes))
}

fn psql(pg: &str, sql: &str) -> Result<()> {
    let status = Command::new("psql")
        .arg(format!("{pg}/postgres"))
        .args(["-q", "-c", sql])
        .stdout(Stdio::null())
        .status()
        .context("psql (PostgreSQL's client) runs the benchmark's CREATE DATABASE")?;
    if !status.success() {
        bail!("psql {sql}: {status}");
    }
    Ok(())
}

/// A fresh database on the server `pg`; its URL.
pub(crate) fn fresh_db(pg: &str, name: &str) -> Result<String> {
    psql(pg, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))?;
    psql(pg, &format!("CREATE DATABASE {name}"))?;
    Ok(format!("{pg}/{name}"))
}

fn keytrail(o: &Opts, args: &[&str]) -> Result<std::process::Output> {
    run_keytrail(&o.c.bin, args)
}

/// Runs the keytrail binary `bin`; exit codes 0 and 1 are success.
pub(crate) fn run_keytrail(bin: &std::path::Path, args: &[&str]) -> Result<std::process::Output> {
    let out = Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("{} (cargo build --release -p keytrail-cli)", bin.display()))?;
    if !matches!(out.status.code(), Some(0 | 1)) {
        bail!(
            "keytrail {args:?}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out)
}

/// Distinct fingerprints in the store.
fn stored_findings(o: &Opts, db: &str) -> Result<usize> {
    let out = keytrail(o, &["findings", "--db", db])?;
    let mut fps: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["fingerprint"].as_str().map(str::to_string))
        .collect();
    fps.sort();
    fps.dedup();
    Ok(fps.len())
}

/// Seconds since an arbitrary origin of an RFC 3339 UTC time the store
/// wrote (`2026-12-07T08:00:00.123456Z`); within one month.
pub(crate) fn secs(t: &str) -> Result<f64> {
    let day: f64 = t.get(8..10).context("a date")?.parse()?;
    let h: f64 = t.get(11..13).context("an hour")?.parse()?;
    let m: f64 = t.get(14..16).context("a minute")?.parse()?;
    let s: f64 = t.get(17..t.len() - 1).context("seconds")?.parse()?;
    Ok(day * 86400.0 + h * 3600.0 + m * 60.0 + s)
}

/// Starts `k` workers that exit when the queue stays empty for `idle`, waits
/// for them, and returns the store's jobs and the span from the first job's
/// start to the last one's end, in seconds.
pub(crate) fn run_workers(
    bin: &std::path::Path,
    nats: &str,
    prefix: &str,
    db: &str,
    k: usize,
    idle: &str,
) -> Result<(Vec<serde_json::Value>, f64)> {
    let mut children = Vec::new();
    for i in 0..k {
        children.push(
            Command::new(bin)
                .args([
                    "worker",
                    "--quiet",
                    "--nats",
                    nats,
                    "--queue-prefix",
                    prefix,
                    "--db",
                    db,
                    "--name",
                    &format!("bench-{i}"),
                    "--exit-when-idle",
                    idle,
                ])
                .stdin(Stdio::null())
                .spawn()
                .context("start a worker")?,
        );
    }
    for mut c in children {
        let s = c.wait()?;
        if !s.success() {
            bail!("a worker failed: {s}");
        }
    }
    let out = run_keytrail(bin, &["jobs", "--db", db])?;
    let jobs: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let mut first = f64::MAX;
    let mut last = 0f64;
    for j in &jobs {
        first = first.min(secs(j["started_at"].as_str().context("started_at")?)?);
        last = last.max(secs(j["finished_at"].as_str().context("finished_at")?)?);
    }
    Ok((jobs, last - first))
}

/// Run the benchmark.
pub fn bench_workers(args: &[String]) -> Result<()> {
    let o = parse(args)?;
    if !o.c.bin.is_file() {
        bail!(
            "{} is missing: cargo build --release -p keytrail-cli (or pass --bin)",
            o.c.bin.display()
        );
    }
    let (repos, bytes) = corpus(&o)?;
    let paths: Vec<String> = repos.iter().map(|r| r.display().to_string()).collect();
    let mib = bytes as f64 / (1 << 20) as f64;
    println!(
        "corpus: {} repositories x {} files, {mib:.1} MiB; {} cores",
        o.jobs,
        o.files,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let tag = std::process::id();

    // 1. One process, every repository.
    let db = fresh_db(&o.c.pg, &format!("kt_bench_single_{tag}"))?;
    let mut args = vec!["scan", "--quiet", "--format", "jsonl", "--db", &db];
    args.extend(paths.iter().map(String::as_str));
    let start = Instant::now();
    keytrail(&o, &args)?;
    let single = start.elapsed().as_secs_f64();
    let expected = stored_findings(&o, &db)?;
    println!(
        "single process, one scan of all: {single:.2} s, {:.0} targets/min, {expected} findings",
        o.jobs as f64 * 60.0 / single
    );

    // One process per repository (what a shell loop or a CI matrix does).
    let db = fresh_db(&o.c.pg, &format!("kt_bench_each_{tag}"))?;
    let start = Instant::now();
    for p in &paths {
        keytrail(
            &o,
            &["scan", "--quiet", "--format", "jsonl", "--db", &db, p],
        )?;
    }
    let each = start.elapsed().as_secs_f64();
    let n = stored_findings(&o, &db)?;
    if n != expected {
        bail!("one process per repository found {n} findings, not {expected}");
    }
    println!(
        "single process per target, sequential: {each:.2} s, {:.0} jobs/min",
        o.jobs as f64 * 60.0 / each
    );

    // 2. Workers.
    println!(
        "| workers | submit s | span s | jobs/min | MiB/s | vs one scan of all | vs one process per target |"
    );
    println!("|---|---|---|---|---|---|---|");
    for &k in &o.c.workers {
        let db = fresh_db(&o.c.pg, &format!("kt_bench_w{k}_{tag}"))?;
        let prefix = format!("bench{tag}w{k}");
        let mut args = vec![
            "submit",
            "scan",
            "--nats",
            &o.c.nats,
            "--queue-prefix",
            &prefix,
            "--db",
            &db,
        ];
        args.extend(paths.iter().map(String::as_str));
        let start = Instant::now();
        keytrail(&o, &args)?;
        let submit = start.elapsed().as_secs_f64();
        let (jobs, span) = run_workers(&o.c.bin, &o.c.nats, &prefix, &db, k, "3s")?;
        let done = jobs.iter().filter(|j| j["state"] == "done").count();
        if done != o.jobs {
            bail!("{k} worker(s): {done} of {} jobs done", o.jobs);
        }
        let n = stored_findings(&o, &db)?;
        if n != expected {
            bail!("{k} worker(s) found {n} findings, not {expected}");
        }
        println!(
            "| {k} | {submit:.2} | {span:.2} | {:.0} | {:.1} | {:.2}x | {:.2}x |",
            o.jobs as f64 * 60.0 / span,
            mib / span,
            span / single,
            span / each,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn store_times_are_read_in_seconds() {
        let a = super::secs("2026-12-07T08:00:00.500000Z").unwrap();
        let b = super::secs("2026-12-07T08:01:02.000000Z").unwrap();
        assert!((b - a - 61.5).abs() < 1e-6);
    }
}

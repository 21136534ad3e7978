//! `cargo xtask`: developer tasks that are not part of keytrail itself.
//!
//! - `cargo xtask bench-scan [--mb N] [--dir DIR]`: generates a source-like
//!   corpus with sparse fake secrets (test-kit), then scans it with the release
//!   `keytrail` binary and, when it is installed, Kingfisher (PyPI package
//!   `kingfisher-bin`), side by side in one run, at 1 thread and at all cores.
//!   Reports MB/s and peak resident memory (from GNU time).

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("bench-scan") => bench_scan(&args[1..]),
        _ => {
            eprintln!("usage: cargo xtask bench-scan [--mb N] [--dir DIR] [--keep]");
            std::process::exit(2)
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace root")
        .to_path_buf()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// Options of `bench-scan`.
struct BenchOpts {
    mb: u64,
    dir: PathBuf,
    keep: bool,
}

fn parse_opts(args: &[String]) -> Result<BenchOpts> {
    let mut opts = BenchOpts {
        mb: 512,
        dir: std::env::temp_dir().join("keytrail-bench-corpus"),
        keep: false,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--mb" => opts.mb = it.next().context("--mb needs a value")?.parse()?,
            "--dir" => opts.dir = PathBuf::from(it.next().context("--dir needs a value")?),
            "--keep" => opts.keep = true,
            other => bail!("unknown argument {other}"),
        }
    }
    Ok(opts)
}

/// Write `mb` MiB of source-like files (about 256 KiB each, in nested
/// directories) with a fake secret roughly every 64 KiB. Returns bytes written.
fn generate_corpus(dir: &Path, mb: u64) -> Result<(u64, usize)> {
    let marker = dir.join(format!(".complete-{mb}"));
    if marker.exists() {
        let bytes = dir_size(dir)?;
        let planted: usize = std::fs::read_to_string(&marker)?.trim().parse()?;
        return Ok((bytes, planted));
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    let target = mb << 20;
    let file_size = 256 << 10;
    let mut written = 0u64;
    let mut planted = 0usize;
    let mut i = 0u64;
    while written < target {
        let sub = dir.join(format!("pkg{:03}/src/mod{:02}", i / 100, (i / 10) % 10));
        std::fs::create_dir_all(&sub)?;
        let (data, secrets) =
            keytrail_testkit::secrets::source_like_corpus(file_size, 64 << 10, 0x5eed + i);
        let ext = ["rs", "py", "js", "go", "yaml", "java", "env", "json"][(i % 8) as usize];
        std::fs::write(sub.join(format!("file{i:05}.{ext}")), &data)?;
        written += data.len() as u64;
        planted += secrets.len();
        i += 1;
    }
    std::fs::write(&marker, planted.to_string())?;
    Ok((written, planted))
}

fn dir_size(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let ft = entry.file_type()?;
        if ft.is_dir() {
            total += dir_size(&entry.path())?;
        } else if ft.is_file() && !entry.file_name().to_string_lossy().starts_with(".complete") {
            total += entry.metadata()?.len();
        }
    }
    Ok(total)
}

/// One measured run: wall seconds and peak RSS in MiB.
struct Run {
    secs: f64,
    peak_mib: f64,
    findings_lines: usize,
}

fn measure(cmd: Command, out: &Path) -> Result<Run> {
    // GNU time reports the child's peak RSS; stdout goes to a file.
    let time_out = out.with_extension("time");
    let mut timed = Command::new("/usr/bin/time");
    timed
        .arg("-f")
        .arg("%e %M")
        .arg("-o")
        .arg(&time_out)
        .arg(cmd.get_program());
    timed.args(cmd.get_args());
    timed.stdout(std::fs::File::create(out)?);
    timed.stderr(std::process::Stdio::null());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => timed.env(k, v),
            None => timed.env_remove(k),
        };
    }
    let start = Instant::now();
    let status = timed
        .status()
        .context("running /usr/bin/time (apt-get install time)")?;
    let wall = start.elapsed().as_secs_f64();
    // Exit 1 = findings for keytrail; Kingfisher uses 200/205 for findings.
    if status.code().is_none() {
        bail!("benchmark command was killed: {cmd:?}");
    }
    let t = std::fs::read_to_string(&time_out)?;
    let last = t.lines().last().unwrap_or("");
    let mut parts = last.split_whitespace();
    let _secs: f64 = parts.next().unwrap_or("0").parse().unwrap_or(0.0);
    let kib: f64 = parts.next().unwrap_or("0").parse().unwrap_or(0.0);
    let findings_lines = std::fs::read_to_string(out)
        .map(|s| s.lines().count())
        .unwrap_or(0);
    // Keep `cmd` alive until here so its configuration is used above.
    drop(cmd);
    Ok(Run {
        secs: wall,
        peak_mib: kib / 1024.0,
        findings_lines,
    })
}

fn bench_scan(args: &[String]) -> Result<()> {
    let opts = parse_opts(args)?;
    let root = workspace_root();
    eprintln!("building keytrail (release)…");
    let st = Command::new(env!("CARGO"))
        .args(["build", "--release", "-p", "keytrail-cli"])
        .current_dir(&root)
        .status()?;
    if !st.success() {
        bail!("cargo build failed");
    }
    let keytrail = target_dir().join("release/keytrail");

    eprintln!(
        "generating {} MiB corpus in {} …",
        opts.mb,
        opts.dir.display()
    );
    let (bytes, planted) = generate_corpus(&opts.dir, opts.mb)?;
    let mb = bytes as f64 / (1024.0 * 1024.0);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let kingfisher = which("kingfisher");
    let scratch = std::env::temp_dir().join("keytrail-bench-out");
    std::fs::create_dir_all(&scratch)?;

    println!(
        "corpus: {mb:.0} MiB in {} files, {planted} planted fake secrets, {cores} cores",
        count_files(&opts.dir)?
    );
    println!(
        "| tool | threads | seconds | MiB/s | MiB/s per thread | peak RSS MiB | output lines |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut thread_counts = vec![1];
    if cores > 1 {
        thread_counts.push(cores);
    }
    for &threads in &thread_counts {
        // Warm the page cache and Kingfisher's rule cache once, untimed.
        let mut tools: Vec<(&str, Command)> = Vec::new();
        let mut k = Command::new(&keytrail);
        k.arg("scan")
            .arg(&opts.dir)
            .args(["--format", "jsonl", "--threads", &threads.to_string()])
            .env("NO_COLOR", "1");
        tools.push(("keytrail", k));
        if let Some(kf) = &kingfisher {
            let mut c = Command::new(kf);
            c.arg("scan")
                .arg(&opts.dir)
                .args([
                    "--no-validate",
                    "--format",
                    "jsonl",
                    "--git-history",
                    "none",
                    "-j",
                    &threads.to_string(),
                ])
                .env("NO_COLOR", "1");
            tools.push(("kingfisher", c));
        }
        for (name, cmd) in tools {
            let out = scratch.join(format!("{name}-{threads}.out"));
            let mut warm = Command::new(cmd.get_program());
            warm.args(cmd.get_args())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
            let _ = warm.status();
            let run = measure(cmd, &out)?;
            println!(
                "| {name} | {threads} | {:.2} | {:.0} | {:.0} | {:.0} | {} |",
                run.secs,
                mb / run.secs,
                mb / run.secs / threads as f64,
                run.peak_mib,
                run.findings_lines
            );
        }
    }
    if kingfisher.is_none() {
        println!("(kingfisher not found on PATH: `pip install kingfisher-bin` to compare)");
    }
    if !opts.keep {
        std::fs::remove_dir_all(&opts.dir).ok();
    }
    Ok(())
}

fn count_files(dir: &Path) -> Result<usize> {
    let mut n = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            n += count_files(&entry.path())?;
        } else {
            n += 1;
        }
    }
    Ok(n)
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|p| p.join(name))
        .find(|p| p.is_file())
}

//! `cargo xtask`: developer tasks that are not part of keytrail itself.
//!
//! - `cargo xtask bench-scan [--mb N] [--dir DIR]`: generates a source-like
//!   corpus with sparse fake secrets (test-kit), then scans it with the release
//!   `keytrail` binary and, when it is installed, Kingfisher (PyPI package
//!   `kingfisher-bin`), side by side in one run, at 1 thread and at all cores.
//!   Reports MB/s and peak resident memory (from GNU time).
//! - `cargo xtask bench-git [--repo PATH] [--rounds N] [--runs N]`: scans a
//!   real project's full git history with keytrail (`keytrail scan REPO
//!   --format jsonl`) and Kingfisher (`kingfisher scan REPO --no-validate`)
//!   side by side in one run, at 1 thread and at all cores. Without
//!   `--repo`, a history is built once from successive versions of the source
//!   trees in `~/.cargo/registry/src` (see [`build_history`]). Reports
//!   seconds, MB/s of unique blob bytes (summed from `git cat-file`, the
//!   same denominator for both tools), CPU seconds, peak RSS and output
//!   records, best of `--runs` (default 2) runs per cell.
//! - `cargo xtask bench-hostile [--users N] [--dir DIR]`: the hardening
//!   issue's bad inputs run against the release binary (see [`hostile`]).
//! - `cargo xtask bench-detect [--accounts N] [--days N]`: `keytrail detect`
//!   on the S3 layout and on one file per account, beside a naive rsigma-eval
//!   evaluator (see [`detect`]).
//! - `cargo xtask bench-workers [--jobs N] [--workers 1,2,4]`: distributed
//!   scanning (`keytrail submit` and `keytrail worker` on NATS JetStream and
//!   PostgreSQL) against the single-process run (see [`workers`]).
//! - `cargo xtask bench-detect-workers [--accounts N] [--workers 1,2,4]`:
//!   distributed CloudTrail detection (`keytrail submit detect`) against the
//!   single-process `keytrail detect` (see [`detect_workers`]).
//! - `cargo xtask bench-posture [--bin PATH] [--runs N]`: `keytrail collect
//!   aws` then `keytrail posture` on the planted moto accounts of the
//!   collector's tests, timed, with planted problems found and clean
//!   look-alikes flagged (see [`posture`]).
//! - `cargo xtask dist [--out DIR]`: the release binary as shipped: built
//!   with `--locked` and the default features, its debug line tables moved to a
//!   separate `keytrail.debug` (linked back by `.gnu_debuglink`, so gdb,
//!   perf and addr2line find them), the binary stripped; prints both sizes.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

mod detect;
mod detect_workers;
mod hostile;
mod posture;
mod workers;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("bench-scan") => bench_scan(&args[1..]),
        Some("bench-git") => bench_git(&args[1..]),
        Some("bench-hostile") => hostile::bench_hostile(&args[1..]),
        Some("bench-detect") => detect::bench_detect(&args[1..]),
        Some("bench-workers") => workers::bench_workers(&args[1..]),
        Some("bench-detect-workers") => detect_workers::bench_detect_workers(&args[1..]),
        Some("bench-posture") => posture::bench_posture(&args[1..]),
        Some("dist") => dist(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask bench-scan [--mb N] [--dir DIR] [--keep]\n       \
                 cargo xtask bench-git [--repo PATH] [--rounds N] [--runs N]\n       \
                 cargo xtask bench-hostile [--users N] [--dir DIR]\n       \
                 cargo xtask bench-detect [--accounts N] [--days N] [--rate R] [--dir DIR] [--runs N]\n       \
                 cargo xtask bench-workers [--jobs N] [--files N] [--workers 1,2,4] [--nats URL] [--pg URL] [--bin PATH]\n       \
                 cargo xtask bench-detect-workers [--accounts N] [--rate X] [--partitions N] [--workers 1,2,4] [--bin PATH]\n       \
                 cargo xtask bench-posture [--bin PATH] [--runs N]\n       \
                 cargo xtask dist [--out DIR]"
            );
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
    // v3: with credential files, encoded secrets and structured exports.
    let marker = dir.join(format!(".complete-v3-{mb}"));
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
        // Every 32 files, the credential files of tools (by name) and
        // files with base64-encoded secrets, under a config folder.
        if i.is_multiple_of(32) {
            let conf = dir.join(format!("pkg{:03}/conf{i:05}", i / 100));
            let files = keytrail_testkit::tool_files::credential_files(0x5eed + i)
                .into_iter()
                .chain(keytrail_testkit::tool_files::encoded_files(0x5eed + i));
            for f in files {
                let path = conf.join(&f.path);
                std::fs::create_dir_all(path.parent().expect("a file path"))?;
                std::fs::write(&path, &f.text)?;
                written += f.text.len() as u64;
                planted += f.secrets.len();
            }
            let (bytes, n) = write_exports(&conf.join("exports"), 0x5eed + i)?;
            written += bytes;
            planted += n;
        }
        i += 1;
    }
    std::fs::write(&marker, planted.to_string())?;
    Ok((written, planted))
}

/// A Slack workspace export, a Postman collection and environment, Jira
/// issues and a Confluence page (test-kit fixtures) under `dir`: bytes
/// written and secrets planted.
fn write_exports(dir: &Path, seed: u64) -> Result<(u64, usize)> {
    use keytrail_testkit::exports;
    let mut fs = keytrail_testkit::secrets::FakeSecrets::new(seed);
    let slack = exports::slack_export(&mut fs);
    let postman = exports::postman(&mut fs);
    let jira = exports::jira(&mut fs);
    let (page, _) = exports::confluence_page(&mut fs);
    let mut files: Vec<(String, Vec<u8>)> = slack
        .files
        .into_iter()
        .map(|(name, bytes)| (format!("slack/{name}"), bytes))
        .collect();
    files.push((
        "Shop API.postman_collection.json".into(),
        postman.collection.into_bytes(),
    ));
    files.push((
        "Prod.postman_environment.json".into(),
        postman.environment.into_bytes(),
    ));
    files.push(("jira/search.json".into(), jira.json.into_bytes()));
    files.push((
        "confluence/Ops/Deploy-runbook_98765.html".into(),
        page.into_bytes(),
    ));
    let mut written = 0;
    for (name, bytes) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().expect("a file path"))?;
        std::fs::write(&path, &bytes)?;
        written += bytes.len() as u64;
    }
    // Slack: bot token, GitHub token, webhook; Postman: bearer, header key,
    // variable, environment value, Stripe key; Jira: a token and a key
    // pair; Confluence: a token.
    Ok((written, 3 + 5 + 2 + 1))
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

/// One measured run: wall seconds, CPU seconds (user + system), peak RSS in
/// MiB and stdout lines.
struct Run {
    secs: f64,
    cpu_secs: f64,
    peak_mib: f64,
    findings_lines: usize,
}

fn measure(cmd: Command, out: &Path) -> Result<Run> {
    // GNU time reports the child's peak RSS; stdout goes to a file.
    let time_out = out.with_extension("time");
    let mut timed = Command::new("/usr/bin/time");
    timed
        .arg("-f")
        .arg("%e %M %U %S")
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
    let user: f64 = parts.next().unwrap_or("0").parse().unwrap_or(0.0);
    let sys: f64 = parts.next().unwrap_or("0").parse().unwrap_or(0.0);
    let findings_lines = std::fs::read_to_string(out)
        .map(|s| s.lines().count())
        .unwrap_or(0);
    // Keep `cmd` alive until here so its configuration is used above.
    drop(cmd);
    Ok(Run {
        secs: wall,
        cpu_secs: user + sys,
        peak_mib: kib / 1024.0,
        findings_lines,
    })
}

/// `cargo xtask dist`: a stripped release binary and its symbols beside
/// it. objcopy (binutils) does the split: `--only-keep-debug` copies the
/// debug sections out, `--strip-debug --strip-unneeded` drops them and the
/// symbol table from the binary, `--add-gnu-debuglink` records the debug
/// file's name and checksum so debuggers load it.
fn dist(args: &[String]) -> Result<()> {
    let mut out = target_dir().join("dist");
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--out" => out = PathBuf::from(it.next().context("--out needs a value")?),
            other => bail!("unknown argument {other}"),
        }
    }
    eprintln!("building keytrail (release, --locked, default features)…");
    let st = Command::new(env!("CARGO"))
        .args(["build", "--release", "--locked", "-p", "keytrail-cli"])
        .current_dir(workspace_root())
        .status()?;
    if !st.success() {
        bail!("cargo build failed");
    }
    let built = target_dir().join("release/keytrail");
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let bin = out.join("keytrail");
    let debug = out.join("keytrail.debug");
    std::fs::copy(&built, &bin).with_context(|| format!("copying {}", built.display()))?;
    let objcopy = |args: &[&std::ffi::OsStr]| -> Result<()> {
        let st = Command::new("objcopy")
            .args(args)
            .status()
            .context("objcopy (Debian package binutils) is needed for dist")?;
        if !st.success() {
            bail!("objcopy {args:?} failed");
        }
        Ok(())
    };
    objcopy(&[
        "--only-keep-debug".as_ref(),
        bin.as_os_str(),
        debug.as_os_str(),
    ])?;
    objcopy(&[
        "--strip-debug".as_ref(),
        "--strip-unneeded".as_ref(),
        bin.as_os_str(),
    ])?;
    // The link names the debug file, found beside the binary or under
    // /usr/lib/debug; objcopy runs in `out` so the recorded name is bare.
    let st = Command::new("objcopy")
        .arg("--add-gnu-debuglink=keytrail.debug")
        .arg("keytrail")
        .current_dir(&out)
        .status()?;
    if !st.success() {
        bail!("objcopy --add-gnu-debuglink failed");
    }
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len() as f64 / 1e6);
    println!(
        "{}: {:.1} MB (unstripped {:.1} MB)\n{}: {:.1} MB",
        bin.display(),
        size(&bin)?,
        size(&built)?,
        debug.display(),
        size(&debug)?
    );
    Ok(())
}

/// Build the release `keytrail` binary and return its path.
fn build_keytrail() -> Result<PathBuf> {
    eprintln!("building keytrail (release)…");
    let st = Command::new(env!("CARGO"))
        .args(["build", "--release", "-p", "keytrail-cli"])
        .current_dir(workspace_root())
        .status()?;
    if !st.success() {
        bail!("cargo build failed");
    }
    Ok(target_dir().join("release/keytrail"))
}

fn bench_scan(args: &[String]) -> Result<()> {
    let opts = parse_opts(args)?;
    let keytrail = build_keytrail()?;

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

/// Options of `bench-git`.
struct GitBenchOpts {
    repo: Option<PathBuf>,
    rounds: usize,
    runs: usize,
}

fn parse_git_opts(args: &[String]) -> Result<GitBenchOpts> {
    let mut opts = GitBenchOpts {
        repo: None,
        rounds: 5,
        runs: 2,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--repo" => opts.repo = Some(PathBuf::from(it.next().context("--repo needs a value")?)),
            "--rounds" => opts.rounds = it.next().context("--rounds needs a value")?.parse()?,
            "--runs" => opts.runs = it.next().context("--runs needs a value")?.parse()?,
            other => bail!("unknown argument {other}"),
        }
    }
    opts.runs = opts.runs.max(1);
    Ok(opts)
}

/// Run `git` in `dir` with a fixed identity and no user or system config.
fn git(dir: &Path, args: &[&str]) -> Result<String> {
    Ok(keytrail_testkit::history::git(dir, args)?)
}

/// What the object database holds, per git itself.
struct HistorySize {
    commits: u64,
    blobs: u64,
    blob_bytes: u64,
    pack_bytes: u64,
}

fn history_size(repo: &Path) -> Result<HistorySize> {
    let listing = git(
        repo,
        &[
            "cat-file",
            "--batch-all-objects",
            "--batch-check=%(objecttype) %(objectsize) %(objectsize:disk)",
        ],
    )?;
    let mut size = HistorySize {
        commits: 0,
        blobs: 0,
        blob_bytes: 0,
        pack_bytes: 0,
    };
    for line in listing.lines() {
        let mut parts = line.split_whitespace();
        let kind = parts.next().unwrap_or("");
        let bytes: u64 = parts.next().unwrap_or("0").parse().unwrap_or(0);
        let disk: u64 = parts.next().unwrap_or("0").parse().unwrap_or(0);
        size.pack_bytes += disk;
        match kind {
            "blob" => {
                size.blobs += 1;
                size.blob_bytes += bytes;
            }
            "commit" => size.commits += 1,
            _ => {}
        }
    }
    Ok(size)
}

/// Build (once) a bare repository whose history commits successive
/// versions of the real source trees in `~/.cargo/registry/src`: every
/// crate directory (versions of one crate share a directory) is committed
/// `rounds` times, each round changing one line of every file, then the
/// repository is packed with `git gc` so blobs are delta chains as in real
/// projects. Kept in the target directory and reused.
fn build_history(rounds: usize) -> Result<PathBuf> {
    let base = target_dir().join(format!("tmp/keytrail-bench-git-history-{rounds}"));
    let bare = base.join("repo.git");
    if bare.join("BENCH_DONE").exists() {
        return Ok(bare);
    }
    let work = base.join("work");
    let _ = std::fs::remove_dir_all(&base);
    eprintln!(
        "building a history from the cargo registry sources x {rounds} rounds in {}",
        work.display()
    );
    keytrail_testkit::history::build_registry_history(&work, rounds)?;
    git(
        &base,
        &[
            "clone",
            "-q",
            "--bare",
            "work",
            bare.to_str().context("UTF-8 path")?,
        ],
    )?;
    std::fs::remove_dir_all(&work)?;
    std::fs::write(bare.join("BENCH_DONE"), b"")?;
    Ok(bare)
}

/// The system load average over the last minute.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

fn bench_git(args: &[String]) -> Result<()> {
    let opts = parse_git_opts(args)?;
    let keytrail = build_keytrail()?;
    let repo = match &opts.repo {
        Some(r) => r.clone(),
        None => build_history(opts.rounds)?,
    };
    let size = history_size(&repo)?;
    let mb = size.blob_bytes as f64 / 1e6;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let kingfisher = which("kingfisher");
    let scratch = std::env::temp_dir().join("keytrail-bench-git-out");
    std::fs::create_dir_all(&scratch)?;
    println!(
        "repository: {} — {} commits, {} unique blobs, {mb:.0} MB of unique blob bytes \
         ({:.0} MB packed), {cores} cores, load average {} at start",
        repo.display(),
        size.commits,
        size.blobs,
        size.pack_bytes as f64 / 1e6,
        load_average()
    );
    println!(
        "| tool | threads | seconds | MB/s | CPU seconds | MB per CPU-second | peak RSS MiB | findings (locations) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut thread_counts = vec![1];
    if cores > 1 {
        thread_counts.push(cores);
    }
    let mut best: Vec<(String, usize, f64)> = Vec::new();
    for &threads in &thread_counts {
        let mut tools: Vec<(&str, Command)> = Vec::new();
        let mut k = Command::new(&keytrail);
        k.arg("scan")
            .arg(&repo)
            .args(["--format", "jsonl", "--threads", &threads.to_string()])
            .env("NO_COLOR", "1");
        tools.push(("keytrail", k));
        if let Some(kf) = &kingfisher {
            let mut c = Command::new(kf);
            c.arg("scan")
                .arg(&repo)
                .args([
                    "--no-validate",
                    "--no-update-check",
                    "--format",
                    "jsonl",
                    "-j",
                    &threads.to_string(),
                ])
                .env("NO_COLOR", "1");
            tools.push(("kingfisher", c));
        }
        // Runs alternate between the tools so a change in machine load
        // hits both; the best run of each is reported.
        let mut results: Vec<Option<Run>> = tools.iter().map(|_| None).collect();
        for run in 0..=opts.runs {
            for (i, (name, cmd)) in tools.iter().enumerate() {
                let out = scratch.join(format!("{name}-{threads}.out"));
                let mut again = Command::new(cmd.get_program());
                again.args(cmd.get_args());
                for (k, v) in cmd.get_envs() {
                    if let Some(v) = v {
                        again.env(k, v);
                    }
                }
                let r = measure(again, &out)?;
                // Run 0 warms the page cache and Kingfisher's rule cache.
                if run == 0 {
                    continue;
                }
                if results[i].as_ref().is_none_or(|b| r.secs < b.secs) {
                    results[i] = Some(r);
                }
            }
        }
        for ((name, _), r) in tools.iter().zip(results) {
            let Some(r) = r else { continue };
            let records = count_findings(name, &scratch.join(format!("{name}-{threads}.out")));
            println!(
                "| {name} | {threads} | {:.2} | {:.0} | {:.2} | {:.0} | {:.0} | {records} |",
                r.secs,
                mb / r.secs,
                r.cpu_secs,
                mb / r.cpu_secs.max(0.001),
                r.peak_mib,
            );
            best.push((name.to_string(), threads, r.secs));
        }
    }
    for &threads in &thread_counts {
        let secs = |tool: &str| {
            best.iter()
                .find(|(n, t, _)| n == tool && *t == threads)
                .map(|b| b.2)
        };
        if let (Some(k), Some(f)) = (secs("keytrail"), secs("kingfisher")) {
            println!(
                "{threads} thread(s): keytrail is {:.2}x Kingfisher's throughput",
                f / k
            );
        }
    }
    println!("load average {} at the end", load_average());
    if kingfisher.is_none() {
        println!("(kingfisher not found on PATH: `pip install kingfisher-bin` to compare)");
    }
    Ok(())
}

/// Findings in a tool's JSONL output, as `N (L locations)`: keytrail writes
/// one record per location, with the finding's `fingerprint`; Kingfisher
/// writes one `{"rule":...}` record per finding, then summary records.
fn count_findings(tool: &str, out: &Path) -> String {
    let text = std::fs::read_to_string(out).unwrap_or_default();
    if tool == "kingfisher" {
        let n = text.lines().filter(|l| l.starts_with("{\"rule\"")).count();
        return format!("{n}");
    }
    let mut fingerprints = std::collections::HashSet::new();
    let mut locations = 0;
    for line in text.lines() {
        locations += 1;
        if let Some(rest) = line.split("\"fingerprint\":\"").nth(1)
            && let Some(fp) = rest.split('"').next()
        {
            fingerprints.insert(fp.to_string());
        }
    }
    format!("{} ({locations})", fingerprints.len())
}

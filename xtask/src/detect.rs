//! `cargo xtask bench-detect`: `keytrail detect` end to end (the release
//! binary, embedded Sigma rules and all detectors) on CloudTrail as S3
//! delivers it and on the same events in one file per account, side by side
//! with a naive single-threaded Sigma evaluator (`bench/naive-sigma`, built
//! on rsigma-eval) reading the same S3 tree with the same SigmaHQ AWS rules.
//! Each command runs under GNU time: wall, CPU, peak RSS, events per CPU-second.
//!
//! The trees are generated once with the test-kit (`write_org_trail`) into
//! `--dir` and reused while the sizes stay the same.

use anyhow::{Context, Result, bail};
use keytrail_testkit::cloudtrail::{ActivityConfig, Layout, write_org_trail};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Options of `bench-detect`.
struct Opts {
    accounts: usize,
    days: u32,
    rate: f64,
    dir: PathBuf,
    runs: usize,
}

fn parse(args: &[String]) -> Result<Opts> {
    let mut o = Opts {
        accounts: 1,
        days: 14,
        rate: 1.0,
        dir: std::env::temp_dir().join("keytrail-bench-detect"),
        runs: 2,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--accounts" => o.accounts = val()?.parse()?,
            "--days" => o.days = val()?.parse()?,
            "--rate" => o.rate = val()?.parse()?,
            "--dir" => o.dir = PathBuf::from(val()?),
            "--runs" => o.runs = val()?.parse()?,
            other => bail!("unknown argument {other}"),
        }
    }
    Ok(o)
}

/// Generate (or reuse) the two layouts; returns the event count.
fn generate(o: &Opts) -> Result<u64> {
    let marker = o
        .dir
        .join(format!(".complete-{}x{}x{}", o.accounts, o.days, o.rate));
    if let Ok(n) = std::fs::read_to_string(&marker) {
        return Ok(n.trim().parse()?);
    }
    if o.dir.exists() {
        std::fs::remove_dir_all(&o.dir)?;
    }
    let cfg = ActivityConfig {
        days: o.days,
        rate: o.rate,
        ..ActivityConfig::default()
    };
    let s3 = write_org_trail(
        &ActivityConfig {
            layout: Layout::S3 {
                org: Some("o-kt0example".into()),
            },
            ..cfg.clone()
        },
        o.accounts,
        &o.dir.join("s3"),
    )?;
    let one = write_org_trail(
        &ActivityConfig {
            layout: Layout::OneFile,
            ..cfg
        },
        o.accounts,
        &o.dir.join("one"),
    )?;
    if s3.events != one.events {
        bail!("layouts differ: {} vs {} events", s3.events, one.events);
    }
    eprintln!(
        "generated {} events: {} files in the S3 layout, {} in one file per account",
        s3.events,
        s3.files.len(),
        one.files.len()
    );
    std::fs::write(&marker, s3.events.to_string())?;
    Ok(s3.events)
}

/// Build `bench/naive-sigma` (its own workspace, its committed lock file: the
/// newest rsigma dependencies need a newer Rust) and return the binary.
fn build_naive() -> Result<PathBuf> {
    let root = crate::workspace_root();
    let target = crate::target_dir().join("naive-sigma");
    let st = Command::new(env!("CARGO"))
        .args(["build", "--release", "--locked", "--manifest-path"])
        .arg(root.join("bench/naive-sigma/Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target)
        .status()?;
    if !st.success() {
        bail!("building bench/naive-sigma failed");
    }
    Ok(target.join("release/naive-sigma"))
}

struct Timed {
    wall: f64,
    cpu: f64,
    peak_mib: f64,
    stdout: String,
}

fn timed(program: &Path, args: &[&std::ffi::OsStr]) -> Result<Timed> {
    let tmp =
        std::env::temp_dir().join(format!("keytrail-bench-detect-{}.time", std::process::id()));
    let out = Command::new("/usr/bin/time")
        .args(["-f", "%e %M %U %S", "-o"])
        .arg(&tmp)
        .arg(program)
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .context("running /usr/bin/time (apt-get install time)")?;
    if !matches!(out.status.code(), Some(0..=1)) {
        bail!("{} {args:?} failed: {:?}", program.display(), out.status);
    }
    let t = std::fs::read_to_string(&tmp)?;
    let f: Vec<f64> = t
        .lines()
        .last()
        .unwrap_or("")
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0.0))
        .collect();
    if f.len() < 4 {
        bail!("unexpected GNU time output: {t}");
    }
    Ok(Timed {
        wall: f[0],
        cpu: f[2] + f[3],
        peak_mib: f[1] / 1024.0,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
    })
}

/// Best (least CPU) of `runs` runs.
fn best(runs: usize, program: &Path, args: &[&std::ffi::OsStr]) -> Result<Timed> {
    let mut best: Option<Timed> = None;
    for _ in 0..runs.max(1) {
        let t = timed(program, args)?;
        if best.as_ref().is_none_or(|b| t.cpu < b.cpu) {
            best = Some(t);
        }
    }
    Ok(best.expect("at least one run"))
}

/// Entry point of `cargo xtask bench-detect [--accounts N] [--days N] [--rate R] [--dir DIR] [--runs N]`.
pub fn bench_detect(args: &[String]) -> Result<()> {
    let o = parse(args)?;
    let events = generate(&o)?;
    let keytrail = crate::build_keytrail()?;
    let naive = build_naive()?;
    let rules = crate::workspace_root().join("crates/keytrail-rules/data/sigma/aws");
    let files = |d: &Path| -> usize {
        fn count(d: &Path) -> usize {
            std::fs::read_dir(d).map_or(0, |rd| {
                rd.flatten()
                    .map(|e| {
                        if e.path().is_dir() {
                            count(&e.path())
                        } else {
                            1
                        }
                    })
                    .sum()
            })
        }
        count(d)
    };
    let s3 = o.dir.join("s3");
    let one = o.dir.join("one");
    println!(
        "{} accounts x 3 regions x {} days: {events} events; S3 layout {} files, one file per account {} files",
        o.accounts,
        o.days,
        files(&s3),
        files(&one)
    );
    println!(
        "| reader | layout | threads | wall s | CPU s | events per CPU-s | peak RSS MiB | output |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let row = |who: &str, layout: &str, threads: &str, t: &Timed, output: String| {
        println!(
            "| {who} | {layout} | {threads} | {:.2} | {:.2} | {:.0} | {:.0} | {output} |",
            t.wall,
            t.cpu,
            events as f64 / t.cpu.max(0.001),
            t.peak_mib
        );
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut thread_counts = vec![1];
    if cores > 1 {
        thread_counts.push(cores);
    }
    for (layout, dir) in [("S3", &s3), ("one file", &one)] {
        for &n in &thread_counts {
            let n = n.to_string();
            let args: Vec<&std::ffi::OsStr> = vec![
                "detect".as_ref(),
                dir.as_os_str(),
                "--format".as_ref(),
                "jsonl".as_ref(),
                "--threads".as_ref(),
                n.as_ref(),
            ];
            let t = best(o.runs, &keytrail, &args)?;
            let alerts = t.stdout.lines().count();
            row(
                "keytrail detect",
                layout,
                &n,
                &t,
                format!("{alerts} JSONL lines"),
            );
        }
    }
    let t = best(o.runs, &naive, &[rules.as_os_str(), s3.as_os_str()])?;
    let summary = t.stdout.trim().to_string();
    row("naive rsigma-eval", "S3", "1", &t, summary);
    Ok(())
}

//! The exposure join against `keytrail detect` on the same logs: a month of
//! CloudTrail for 40 identities (the test-kit's generator, S3 layout: gzip per
//! region and five minutes) and 100 leaked keys (the 40 identities' keys, leaked
//! on dates spread over the month, and 60 keys the logs never show).
//!
//! Each measurement runs in a child process (this binary re-executed with
//! `--child MODE`), so its peak RSS is its own. Run with
//! `cargo bench -p keytrail-exposure --bench exposure` (add `-- --threads N`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use keytrail_detect::engine::{EngineBuilder, Logs, run_logs_into};
use keytrail_exposure::{Directory, Leaks, Options};
use keytrail_testkit::cloudtrail::{ActivityConfig, Layout, write_activity};

const DAYS: u32 = 30;

fn data_dir() -> PathBuf {
    let base = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"));
    base.join("exposure-bench")
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Writes the logs and the findings once (kept between runs).
fn prepare(dir: &Path) -> (PathBuf, PathBuf) {
    let logs = dir.join("logs");
    let findings = dir.join("findings.jsonl");
    if findings.is_file() {
        return (logs, findings);
    }
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("mkdir");
    let cfg = ActivityConfig {
        days: DAYS,
        servers: 20,
        ci: 4,
        humans: 15,
        layout: Layout::S3 { org: None },
        ..ActivityConfig::default()
    };
    let w = write_activity(&cfg, &logs).expect("write logs");
    eprintln!("wrote {} events in {} files", w.events, w.files.len());
    // The identities' keys, from the logs themselves.
    let (files, _) = keytrail_detect::reader::list_files(std::slice::from_ref(&logs));
    let mut keys: Vec<String> = Vec::new();
    for it in keytrail_detect::reader::DirRecords::from_files(files, Vec::new()) {
        if let Ok(ev) = it
            && let Some(k) = ev.access_key_id()
            && !keys.iter().any(|x| x == k)
        {
            keys.push(k.to_string());
        }
    }
    keys.sort();
    eprintln!("{} distinct keys in the logs", keys.len());
    let mut n = 0u64;
    while keys.len() < 100 {
        n += 1;
        keys.push(
            format!("AKIAZZZZ{n:012}")
                .replace('0', "Q")
                .replace('1', "R")
                .replace('8', "S")
                .replace('9', "T"),
        );
    }
    let mut f = std::fs::File::create(&findings).expect("findings");
    for (i, k) in keys.iter().take(100).enumerate() {
        // Leaked between day 5 and day 25, at a commit's author date.
        let day = 5 + (i as i64 * 20 / 100);
        let ms = cfg.start_ms + day * 86_400_000 + (i as i64 % 24) * 3_600_000;
        let date = keytrail_testkit::cloudtrail::format_time(ms);
        writeln!(
            f,
            r#"{{"rule_id":"aws.access_key.pair","rule_name":"AWS access key id with its secret access key","confidence":"high","severity":"critical","fingerprint":"fp{i:030}","secret_redacted":"abcd…yz","context":{{"id":"{k}"}},"path":"config/{i}.env","line":1,"column":1,"offset":0,"snippet":"AWS_ACCESS_KEY_ID=…","source":"git","repository":"repo","blob":"b{i}","commit":"c{i:039}","author":"Dev <dev@example.com>","author_date":"{date}","summary":"add config","in_head":true,"state":"committed","occurrences":1}}"#
        )
        .expect("write");
    }
    (logs, findings)
}

fn child(mode: &str, threads: usize) {
    let dir = data_dir();
    let (logs, findings) = prepare(&dir);
    let (files, _) = keytrail_detect::reader::list_files(std::slice::from_ref(&logs));
    let builder = EngineBuilder::new();
    let start = Instant::now();
    let (events, extra) = match mode {
        "detect" => {
            let (shared, _) = builder.build_shared();
            let (_, stats) = run_logs_into(&builder, shared, Logs::Files(files), threads, None);
            (stats.events, String::new())
        }
        "exposure" => {
            let mut leaks = Leaks::default();
            keytrail_exposure::read_findings(&findings, &mut leaks).expect("findings");
            let (shared, _) = builder.build_shared();
            let opts = Options {
                threads,
                ..Options::default()
            };
            let (o, _) = keytrail_exposure::run(
                leaks.leaks,
                &Directory::default(),
                Some((Logs::Files(files), &builder, shared)),
                &opts,
            );
            let used = o
                .records
                .iter()
                .filter(|r| r.used_after_leak == Some(true))
                .count();
            (
                o.coverage.events,
                format!("{} records, {used} used after the leak", o.records.len()),
            )
        }
        _ => panic!("mode"),
    };
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{mode} {events} {secs:.3} {} {:.2} {extra}",
        peak_rss_kib(),
        cpu_secs()
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let threads = args
        .iter()
        .position(|a| a == "--threads")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(2usize);
    if let Some(i) = args.iter().position(|a| a == "--child") {
        child(&args[i + 1], threads);
        return;
    }
    let dir = data_dir();
    prepare(&dir);
    let size: u64 = walk_size(&dir.join("logs"));
    println!(
        "exposure bench: {DAYS} days, 40 identities, 100 leaked keys, {:.1} MiB of gzip S3-layout logs, {threads} thread(s)",
        size as f64 / 1048576.0
    );
    let me = std::env::current_exe().expect("exe");
    for mode in [
        "detect", "exposure", "detect", "exposure", "detect", "exposure",
    ] {
        let out = Command::new(&me)
            .args(["--child", mode, "--threads", &threads.to_string()])
            .output()
            .expect("child");
        let line = String::from_utf8_lossy(&out.stdout);
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 4 {
            panic!("child failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let events: f64 = f[1].parse().unwrap_or(0.0);
        let secs: f64 = f[2].parse().unwrap_or(0.0);
        let rss: f64 = f[3].parse().unwrap_or(0.0);
        let cpu: f64 = f[4].parse().unwrap_or(0.0);
        println!(
            "{mode:>8}: {events:.0} events in {secs:.2} s wall, {cpu:.2} CPU-s ({:.0} events per CPU-second), peak RSS {:.0} MiB {}",
            events / cpu.max(1e-9),
            rss / 1024.0,
            f[5..].join(" ")
        );
    }
}

/// User plus system CPU time of this process, all its threads (`/proc/self/stat`,
/// in clock ticks of 1/100 s as Linux reports them to user space).
fn cpu_secs() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // Fields after the command name (which may hold spaces) end at ')'.
            let rest = &s[s.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            let utime: f64 = f.get(11)?.parse().ok()?;
            let stime: f64 = f.get(12)?.parse().ok()?;
            Some((utime + stime) / 100.0)
        })
        .unwrap_or(0.0)
}

fn walk_size(p: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(p) else {
        return std::fs::metadata(p).map_or(0, |m| m.len());
    };
    rd.flatten().map(|e| walk_size(&e.path())).sum()
}

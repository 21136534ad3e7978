//! Measures `Scanner::scan_bytes` throughput with the builtin rules, on
//! generated source-like text with sparse secrets, or on real files.
//!
//! `cargo run --release -p keytrail-scan --example throughput -- [MB] [secret_every_bytes] [DIR]`
//!
//! With `DIR`, the text is the concatenation of the files under it (up to
//! `MB`), and findings are listed (real trees contain test fixtures).

use keytrail_scan::Scanner;
use keytrail_types::Origin;
use std::path::Path;
use std::time::Instant;

/// CPU time of this thread in seconds (Linux `schedstat`), so figures are
/// per core even on a busy machine; falls back to 0.
fn cpu_now() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |ns| ns / 1e9)
}

fn collect(dir: &Path, out: &mut Vec<u8>, cap: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if out.len() >= cap {
            return;
        }
        if p.is_dir() {
            collect(&p, out, cap);
        } else if let Ok(bytes) = std::fs::read(&p)
            && !bytes.contains(&0)
        {
            out.extend_from_slice(&bytes);
            out.push(b'\n');
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mb: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let every: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let dir = args.next();
    let (rules, diags) = keytrail_rules::builtin();
    let n_rules = rules.len();
    let t = Instant::now();
    let (scanner, d2) = Scanner::new(rules);
    let compile = t.elapsed();
    let (text, planted) = match &dir {
        Some(d) => {
            let mut text = Vec::new();
            collect(Path::new(d), &mut text, mb << 20);
            (text, Vec::new())
        }
        None => keytrail_testkit::secrets::source_like_corpus(mb << 20, every, 1),
    };
    let t = Instant::now();
    let c = cpu_now();
    let found = scanner.scan_bytes("corpus", &Origin::File, &text);
    let secs = t.elapsed().as_secs_f64();
    let cpu = cpu_now() - c;
    let planted_found = planted
        .iter()
        .filter(|p| found.iter().any(|f| f.location.offset == p.offset as u64))
        .count();
    println!(
        "rules {n_rules} ({} diagnostics), compile {:.0} ms; scanned {:.1} MB in {secs:.3} s wall = {:.0} MB/s, {cpu:.3} s CPU = {:.0} MB/s per core; findings {}, planted {} (found {planted_found})",
        diags.len() + d2.len(),
        compile.as_secs_f64() * 1e3,
        text.len() as f64 / 1e6,
        text.len() as f64 / 1e6 / secs,
        text.len() as f64 / 1e6 / cpu,
        found.len(),
        planted.len(),
    );
    if std::env::var_os("COUNTS").is_some() {
        let mut counts = std::collections::BTreeMap::new();
        for f in &found {
            *counts.entry(scanner.rules()[f.rule].id()).or_insert(0usize) += 1;
        }
        for (id, n) in counts {
            println!("  count {id} {n}");
        }
    }
    if dir.is_some() || std::env::var_os("SHOW").is_some() {
        for f in found
            .iter()
            .filter(|f| !planted.iter().any(|p| p.offset as u64 == f.location.offset))
            .take(60)
        {
            println!(
                "  {:40} line {:8} {}",
                scanner.rules()[f.rule].id(),
                f.location.line,
                f.location.snippet.chars().take(150).collect::<String>()
            );
        }
    }
    let t = Instant::now();
    let (streamed, _) = scanner
        .scan_reader("corpus", &Origin::File, &text[..])
        .expect("in-memory reader");
    let secs = t.elapsed().as_secs_f64();
    println!(
        "scan_reader: {:.0} MB/s, findings {}",
        text.len() as f64 / 1e6 / secs,
        streamed.len()
    );
}

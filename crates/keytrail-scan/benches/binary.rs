//! What scanning binary content costs: native libraries of this machine
//! (`/usr/lib/x86_64-linux-gnu/*.so*`, or `KEYTRAIL_BENCH_BINARY_DIR`, up to
//! `KEYTRAIL_BENCH_BINARY_MB`, default 256) turned into their printable runs
//! (`keytrail_input::strings`) and scanned with the builtin rules, beside
//! the same scanner on the generated source-like corpus (with and without
//! the decoding of base64 values). One thread; MiB/s
//! of input bytes, best of three.
//!
//! `cargo bench -p keytrail-scan --bench binary`

use keytrail_scan::Scanner;
use keytrail_types::Origin;
use std::time::Instant;

fn best_of_three(mut f: impl FnMut() -> usize) -> (f64, usize) {
    let mut best = f64::MAX;
    let mut n = 0;
    for _ in 0..3 {
        let t = Instant::now();
        n = f();
        best = best.min(t.elapsed().as_secs_f64());
    }
    (best, n)
}

fn main() {
    let dir = std::env::var("KEYTRAIL_BENCH_BINARY_DIR")
        .unwrap_or_else(|_| "/usr/lib/x86_64-linux-gnu".to_string());
    let cap: usize = std::env::var("KEYTRAIL_BENCH_BINARY_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
        << 20;
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.to_string_lossy().contains(".so"))
        .collect();
    files.sort();
    let mut bins = Vec::new();
    let mut total = 0;
    for p in files {
        if total >= cap {
            break;
        }
        if let Ok(b) = std::fs::read(&p) {
            total += b.len();
            bins.push(b);
        }
    }
    let mib = total as f64 / (1 << 20) as f64;
    let (rules, _) = keytrail_rules::builtin();
    let (scanner, _) = Scanner::new(rules);

    let (t_extract, _) = best_of_three(|| {
        let mut out = Vec::new();
        for b in &bins {
            out.clear();
            keytrail_input::strings::extract(b, &mut out);
        }
        out.len()
    });
    let texts: Vec<Vec<u8>> = bins
        .iter()
        .map(|b| {
            let mut out = Vec::new();
            keytrail_input::strings::extract(b, &mut out);
            out
        })
        .collect();
    let (t_scan, found) = best_of_three(|| {
        texts
            .iter()
            .map(|t| scanner.scan_bytes("lib.so", &Origin::File, t).len())
            .sum()
    });
    let (corpus, _) =
        keytrail_testkit::secrets::source_like_corpus(total.min(128 << 20), 64 << 10, 7);
    let cmib = corpus.len() as f64 / (1 << 20) as f64;
    let (t_text, _) = best_of_three(|| {
        scanner
            .scan_bytes("corpus.py", &Origin::File, &corpus)
            .len()
    });
    let plain = Scanner::new(keytrail_rules::builtin().0)
        .0
        .with_decoding(false);
    let (t_plain, _) =
        best_of_three(|| plain.scan_bytes("corpus.py", &Origin::File, &corpus).len());
    println!("binary: {} files, {mib:.0} MiB from {dir}", bins.len());
    println!("| step | MiB/s (1 thread) |");
    println!("|---|---|");
    println!(
        "| printable runs of binaries (extract) | {:.0} |",
        mib / t_extract
    );
    println!("| scan of the extracted runs | {:.0} |", mib / t_scan);
    println!(
        "| binaries end to end (extract + scan) | {:.0} |",
        mib / (t_extract + t_scan)
    );
    println!(
        "| source-like text, for comparison ({cmib:.0} MiB) | {:.0} |",
        cmib / t_text
    );
    println!(
        "| the same text without decoding base64 | {:.0} |",
        cmib / t_plain
    );
    println!("findings in the binaries: {found}");
}

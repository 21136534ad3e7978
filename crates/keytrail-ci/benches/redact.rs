//! Throughput of `redact` (builtin rules + known values) over a generated
//! CI log with sparse secrets.
//!
//! `cargo bench -p keytrail-ci --bench redact` streams 1 GiB (set
//! `KEYTRAIL_BENCH_MB` for another size) through the redactor into a
//! counting sink and prints MB/s. The log is a 64 MiB block of CI-like
//! lines (timestamps, ANSI colour, package installs, compiler and test
//! output, URLs, digests, keyword-bearing near misses such as
//! `token: ***` and `${{ secrets.X }}`), with a real-format fake secret
//! about every 100 KB, repeated to the requested size.

use keytrail_ci::redact::RedactorBuilder;
use keytrail_scan::Scanner;
use keytrail_testkit::secrets::{BASE64, FakeSecrets, LOWER_ALNUM};
use keytrail_types::Secret;
use rand::Rng;
use std::io::{Read, Write};
use std::time::Instant;

const HEX: &[u8] = b"0123456789abcdef";

fn block(bytes: usize, g: &mut FakeSecrets, known: &[String]) -> (Vec<u8>, usize) {
    let mut out = Vec::with_capacity(bytes + 4096);
    let mut planted = 0;
    let mut next_secret = 50_000;
    let mut n = 0u64;
    while out.len() < bytes {
        n += 1;
        let ts = format!(
            "2024-05-01T12:{:02}:{:02}.{:07}Z ",
            (n / 60) % 60,
            n % 60,
            n % 10_000_000
        );
        out.extend_from_slice(ts.as_bytes());
        if out.len() >= next_secret {
            planted += 1;
            next_secret = out.len() + 80_000 + g.rng().random_range(0..40_000);
            let line = match planted % 6 {
                0 => format!("remote: Using token {} for push", g.github_classic()),
                1 => format!(
                    "export AWS_SECRET_ACCESS_KEY={}",
                    g.aws_key_pair().secret_access_key
                ),
                2 => format!(
                    "curl -H 'Authorization: Bearer {}' https://api.example.net",
                    g.openai()
                ),
                3 => format!("npm notice using {}", g.npm()),
                4 => format!("debug: env DEPLOY_KEY={}", known[0]),
                _ => format!("slack notify {}", g.slack_bot()),
            };
            out.extend_from_slice(line.as_bytes());
            out.push(b'\n');
            continue;
        }
        let kind = match std::env::var("KEYTRAIL_BENCH_DENSE") {
            Ok(_) => g.rng().random_range(0..12),
            // Keyword-bearing near misses on about 1 line in 40.
            Err(_) => [0, 1, 2, 3, 4, 5, 9, 10, 11][g.rng().random_range(0..9)],
        };
        let kind = if g.rng().random_range(0..40) == 0 {
            6 + n as usize % 3
        } else {
            kind
        };
        let line = match kind {
            0 => "\x1b[36;1mRun npm ci\x1b[0m".to_string(),
            1 => format!(
                "added {} packages, and audited {} packages in {}s",
                n % 900,
                n % 1200,
                n % 60
            ),
            2 => format!(
                "   Compiling serde v1.0.{} (registry+https://github.com/rust-lang/crates.io-index)",
                n % 200
            ),
            3 => format!("test tests::case_{} ... ok", n),
            4 => format!(
                "#{} sha256:{} {}B / {}MB 1.{}s",
                n % 40,
                g.chars(HEX, 64),
                n % 999,
                n % 300,
                n % 9
            ),
            5 => format!(
                "Downloading https://registry.npmjs.org/pkg-{}/-/pkg-{}-1.2.{}.tgz",
                g.chars(LOWER_ALNUM, 8),
                n,
                n % 30
            ),
            6 => "token: ***".to_string(),
            7 => format!(
                "  env:\n    NPM_TOKEN: ${{{{ secrets.NPM_TOKEN }}}}\n    CACHE_KEY: node-{}",
                g.chars(HEX, 40)
            ),
            8 => format!(
                "warning: unused variable `key_{}` at src/lib.rs:{}:9",
                n % 100,
                n % 3000
            ),
            9 => format!(
                "[INFO] Building jar: /home/runner/work/app/target/app-{}.jar",
                n % 50
            ),
            10 => format!(
                "Step {}/24 : RUN apt-get install -y --no-install-recommends curl ca-certificates",
                n % 24
            ),
            _ => format!(
                "{{\"level\":\"info\",\"msg\":\"request done\",\"status\":200,\"duration_ms\":{},\"trace\":\"{}\"}}",
                n % 500,
                g.chars(HEX, 32)
            ),
        };
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    (out, planted)
}

/// Serves `block` repeatedly until `total` bytes.
struct Repeat<'a> {
    block: &'a [u8],
    pos: usize,
    left: u64,
}

impl Read for Repeat<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let n = buf
            .len()
            .min(self.block.len() - self.pos)
            .min(self.left as usize);
        buf[..n].copy_from_slice(&self.block[self.pos..self.pos + n]);
        self.pos = (self.pos + n) % self.block.len();
        self.left -= n as u64;
        Ok(n)
    }
}

#[derive(Default)]
struct Count(u64);

impl Write for Count {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let mb: u64 = std::env::var("KEYTRAIL_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let mut g = FakeSecrets::new(2024);
    let known: Vec<String> = (0..3).map(|_| g.chars(BASE64, 40)).collect();
    let (data, planted) = block(64 << 20, &mut g, &known);
    let (mut rules, _) = keytrail_rules::builtin();
    // KEYTRAIL_BENCH_CONFIDENCE=medium leaves out the generic rules.
    if let Ok(c) = std::env::var("KEYTRAIL_BENCH_CONFIDENCE") {
        let min: keytrail_types::Confidence = c.parse().expect("low, medium or high");
        rules.retain(|r| r.syntax.confidence >= min);
    }
    let n_rules = rules.len();
    let (scanner, _) = Scanner::new(rules);
    let mode = std::env::var("KEYTRAIL_BENCH_MODE").unwrap_or_default();
    if mode == "scan" {
        let t = Instant::now();
        let n = scanner.find_matches(None, &data).len();
        let secs = t.elapsed().as_secs_f64();
        println!(
            "scanner alone: {n} matches, {:.0} MB/s",
            data.len() as f64 / 1e6 / secs
        );
        return;
    }
    let mut b = RedactorBuilder::new();
    if mode != "known" {
        b = b.scanner(scanner);
    }
    for (i, k) in known.iter().enumerate() {
        b = b.known(format!("env:K{i}"), Secret::new(k.clone().into_bytes()));
    }
    let (redactor, _) = b.build();
    eprintln!("{redactor:?}");
    let total = mb << 20;
    let reader = Repeat {
        block: &data,
        pos: 0,
        left: total,
    };
    let mut sink = Count::default();
    let t = Instant::now();
    let stats = redactor.redact_stream(reader, &mut sink).expect("redact");
    let secs = t.elapsed().as_secs_f64();
    let mbps = stats.bytes_in as f64 / 1e6 / secs;
    println!(
        "redact: {} rules + {} known values, {:.0} MB in {secs:.2} s = {mbps:.0} MB/s ({} secrets per 64 MiB block, {} ranges masked, output {} bytes)",
        n_rules,
        known.len(),
        stats.bytes_in as f64 / 1e6,
        planted,
        stats.masked,
        sink.0
    );
}

//! `naive-sigma RULES_DIR LOG_DIR`: loads every Sigma rule under RULES_DIR
//! with rsigma, then reads every CloudTrail file under LOG_DIR one after the
//! other (gzip or plain `{"Records":[…]}`), parses it whole with serde_json
//! and evaluates every record against every rule. Prints files, events and
//! matches. This is the straightforward evaluator the detection benchmark
//! compares `keytrail detect` with: no baselines, no state, one thread.

use std::io::Read;
use std::path::{Path, PathBuf};

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => walk(&p, out),
            Ok(t) if t.is_file() => out.push(p),
            _ => {}
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [rules, logs] = args.as_slice() else {
        eprintln!("usage: naive-sigma RULES_DIR LOG_DIR");
        std::process::exit(2);
    };
    let mut engine = rsigma_eval::Engine::new();
    let mut rule_files = Vec::new();
    walk(Path::new(rules), &mut rule_files);
    let mut loaded = 0;
    for f in rule_files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
    {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        match rsigma_parser::parse_sigma_yaml(&text) {
            Ok(c) => {
                if engine.add_collection(&c).is_ok() {
                    loaded += 1;
                }
            }
            Err(e) => eprintln!("{}: {e}", f.display()),
        }
    }
    let mut files = Vec::new();
    walk(Path::new(logs), &mut files);
    files.sort();
    let (mut events, mut matches) = (0u64, 0u64);
    let mut buf = Vec::new();
    for f in &files {
        buf.clear();
        let Ok(raw) = std::fs::read(f) else { continue };
        if f.extension().is_some_and(|e| e == "gz") {
            if flate2::read::MultiGzDecoder::new(&raw[..])
                .read_to_end(&mut buf)
                .is_err()
            {
                continue;
            }
        } else {
            buf = raw;
        }
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&buf) else {
            continue;
        };
        let Some(records) = v.get("Records").and_then(|r| r.as_array()) else {
            continue;
        };
        for r in records {
            events += 1;
            let ev = rsigma_eval::JsonEvent::borrow(r);
            matches += engine.evaluate(&ev).len() as u64;
        }
    }
    println!(
        "rules {loaded} files {} events {events} matches {matches}",
        files.len()
    );
}

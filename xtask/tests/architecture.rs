//! The invariants of ARCHITECTURE.md that the compiler does not check,
//! checked over the workspace's manifests and sources: the direction of
//! dependencies between crates, which crates may reach terminals, the
//! network or the test-kit, and where decompression happens. A failure
//! names the crate or file and the ARCHITECTURE.md rule it breaks; change
//! the rule there and here together, never one alone.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The workspace root (xtask lives one level below it).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask has a parent")
        .to_path_buf()
}

/// Layer of each workspace crate: a crate's normal dependencies on other
/// workspace crates must be in a strictly lower layer (ARCHITECTURE.md,
/// "Layers"). A new crate must be added here and there.
const LAYERS: &[(&str, u32)] = &[
    ("keytrail-types", 0),
    ("keytrail-rules", 1),
    ("keytrail-input", 1),
    ("keytrail-inventory", 1),
    ("keytrail-testkit", 1),
    ("keytrail-revoke", 1),
    ("keytrail-store", 1),
    ("keytrail-scan", 2),
    ("keytrail-detect", 2),
    ("keytrail-server", 2),
    ("keytrail-worker", 2),
    ("keytrail-report", 3),
    ("keytrail-collect", 3),
    ("keytrail-exposure", 3),
    ("keytrail-verify", 3),
    ("keytrail-ci", 4),
    ("keytrail-session", 5),
    ("keytrail-fuzz", 5),
    ("keytrail-cli", 6),
    ("xtask", 6),
];

/// Crates that are front-ends: the only ones allowed to depend on the session.
const FRONT_ENDS: &[&str] = &["keytrail-cli"];

/// Crates of the terminal: argument parsing, colours, progress bars.
const TERMINAL_CRATES: &[&str] = &[
    "clap",
    "anstream",
    "anstyle",
    "termcolor",
    "colored",
    "owo-colors",
    "yansi",
    "nu-ansi-term",
    "crossterm",
    "indicatif",
    "console",
    "is-terminal",
];

/// Crates that open network connections, and who may use them
/// (ARCHITECTURE.md, "Engines never do network IO").
const NETWORK_CRATES: &[&str] = &[
    "ureq",
    "reqwest",
    "hyper",
    "tokio",
    "aws-config",
    "aws-sdk-",
    "aws-smithy-",
    "postgres",
    "tokio-postgres",
    "async-nats",
];
const NETWORK_USERS: &[&str] = &[
    "keytrail-input",
    "keytrail-collect",
    "keytrail-verify",
    "keytrail-revoke",
    "keytrail-store",
    "keytrail-server",
    "keytrail-worker",
    "keytrail-cli",
];

/// Database crates: only the store knows SQL (ARCHITECTURE.md, "Only
/// keytrail-store knows SQL").
const SQL_CRATES: &[&str] = &[
    "rusqlite",
    "libsqlite3-sys",
    "sqlite",
    "postgres",
    "tokio-postgres",
    "sqlx",
    "diesel",
    "sea-orm",
    "mysql",
];

struct Manifest {
    name: String,
    dir: PathBuf,
    /// Normal dependencies (all targets), by name.
    deps: Vec<String>,
    publish: bool,
}

fn manifests() -> Vec<Manifest> {
    let root = root();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root.join("crates"))
        .expect("crates/ is readable")
        .map(|e| e.expect("crates/ entry").path())
        .filter(|p| p.join("Cargo.toml").is_file())
        .collect();
    dirs.push(root.join("xtask"));
    dirs.sort();
    dirs.into_iter()
        .map(|dir| {
            let text = std::fs::read_to_string(dir.join("Cargo.toml")).expect("Cargo.toml");
            let doc: toml::Table = text.parse().expect("Cargo.toml parses");
            let package = doc["package"].as_table().expect("[package]");
            let name = package["name"].as_str().expect("package.name").to_string();
            let publish = package.get("publish").and_then(|p| p.as_bool()) != Some(false);
            let mut deps = Vec::new();
            if let Some(t) = doc.get("dependencies").and_then(|d| d.as_table()) {
                deps.extend(t.keys().cloned());
            }
            if let Some(targets) = doc.get("target").and_then(|d| d.as_table()) {
                for cfg in targets.values() {
                    if let Some(t) = cfg.get("dependencies").and_then(|d| d.as_table()) {
                        deps.extend(t.keys().cloned());
                    }
                }
            }
            Manifest {
                name,
                dir,
                deps,
                publish,
            }
        })
        .collect()
}

#[test]
fn every_crate_has_a_layer_and_depends_only_downwards() {
    let layers: BTreeMap<&str, u32> = LAYERS.iter().copied().collect();
    let mut problems = Vec::new();
    for m in manifests() {
        let Some(&mine) = layers.get(m.name.as_str()) else {
            problems.push(format!(
                "{}: no layer (add it to ARCHITECTURE.md's layers and to LAYERS in {})",
                m.name,
                file!()
            ));
            continue;
        };
        for d in m.deps.iter().filter(|d| d.starts_with("keytrail-")) {
            match layers.get(d.as_str()) {
                Some(&theirs) if theirs < mine => {}
                Some(&theirs) => problems.push(format!(
                    "{} (layer {mine}) depends on {d} (layer {theirs}): dependencies point downwards only",
                    m.name
                )),
                None => problems.push(format!("{}: unknown workspace crate {d}", m.name)),
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn only_front_ends_depend_on_the_session_and_nothing_on_the_cli() {
    for m in manifests() {
        if m.deps.iter().any(|d| d == "keytrail-session") {
            assert!(
                FRONT_ENDS.contains(&m.name.as_str()),
                "{} depends on keytrail-session: only front-ends ({FRONT_ENDS:?}) run sessions",
                m.name
            );
        }
        assert!(
            !m.deps.iter().any(|d| d == "keytrail-cli"),
            "{} depends on keytrail-cli",
            m.name
        );
    }
}

#[test]
fn the_testkit_is_never_a_dependency_of_a_published_crate() {
    let manifests = manifests();
    let testkit = manifests
        .iter()
        .find(|m| m.name == "keytrail-testkit")
        .expect("keytrail-testkit exists");
    assert!(!testkit.publish, "keytrail-testkit must be publish = false");
    for m in &manifests {
        if m.deps.iter().any(|d| d == "keytrail-testkit") {
            assert!(
                !m.publish,
                "{} (published) has keytrail-testkit as a normal dependency: make it a dev-dependency",
                m.name
            );
        }
    }
}

#[test]
fn only_the_cli_depends_on_terminal_crates() {
    for m in manifests() {
        if m.name == "keytrail-cli" {
            continue;
        }
        for d in &m.deps {
            assert!(
                !TERMINAL_CRATES.contains(&d.as_str()),
                "{} depends on the terminal crate {d}: only keytrail-cli knows the terminal",
                m.name
            );
        }
    }
}

#[test]
fn only_the_named_crates_depend_on_network_crates() {
    for m in manifests() {
        for d in &m.deps {
            let network = NETWORK_CRATES
                .iter()
                .any(|n| d == n || (n.ends_with('-') && d.starts_with(n)));
            if network {
                assert!(
                    NETWORK_USERS.contains(&m.name.as_str()),
                    "{} depends on the network crate {d}: only {NETWORK_USERS:?} open connections",
                    m.name
                );
            }
        }
    }
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries {
        let p = e.expect("directory entry").path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The code lines of a library source: comments and `#[cfg(test)]`
/// modules (which close the files that have them) left out.
fn code_lines(path: &Path) -> Vec<(usize, String)> {
    let text = std::fs::read_to_string(path).expect("source is readable");
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_start();
        if t.starts_with("#[cfg(test)]") {
            break;
        }
        if t.starts_with("//") {
            continue;
        }
        out.push((i + 1, line.to_string()));
    }
    out
}

/// The library sources (`src/`) of every crate but the named ones.
fn library_sources(except: &[&str]) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for m in manifests() {
        if except.contains(&m.name.as_str()) || m.name == "xtask" {
            continue;
        }
        let mut files = Vec::new();
        rust_files(&m.dir.join("src"), &mut files);
        files.sort();
        out.extend(files.into_iter().map(|f| (m.name.clone(), f)));
    }
    out
}

#[test]
fn only_the_cli_prints_or_looks_at_the_terminal() {
    // The test-kit's external-tool checks print why a tool is missing.
    let needles = [
        "println!",
        "eprintln!",
        "print!(",
        "eprint!(",
        "is_terminal",
        "NO_COLOR",
        "std::io::stdout()",
        "io::stdout()",
    ];
    let mut problems = Vec::new();
    for (krate, file) in library_sources(&["keytrail-cli", "keytrail-testkit", "keytrail-fuzz"]) {
        for (n, line) in code_lines(&file) {
            if let Some(needle) = needles.iter().find(|x| line.contains(*x)) {
                problems.push(format!("{krate}: {}:{n}: {needle}", file.display()));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "only keytrail-cli writes to the terminal:\n{}",
        problems.join("\n")
    );
}

#[test]
fn only_the_store_knows_sql() {
    let mut problems = Vec::new();
    for m in manifests() {
        if m.name == "keytrail-store" {
            continue;
        }
        for d in &m.deps {
            if SQL_CRATES.contains(&d.as_str()) {
                problems.push(format!(
                    "{} depends on the database crate {d}: only keytrail-store knows SQL",
                    m.name
                ));
            }
        }
    }
    // Statements in library code elsewhere (the test-kit writes SQL-like
    // text into generated source corpora, which is data, not queries).
    let needles = [
        "INSERT INTO",
        "CREATE TABLE",
        "DELETE FROM",
        "ON CONFLICT",
        "ALTER TABLE",
        "DROP TABLE",
    ];
    for (krate, file) in library_sources(&["keytrail-store", "keytrail-testkit", "keytrail-fuzz"]) {
        for (n, line) in code_lines(&file) {
            let upper = line.to_ascii_uppercase();
            if let Some(needle) = needles.iter().find(|x| upper.contains(*x)) {
                problems.push(format!(
                    "{krate}: {}:{n}: `{needle}`: only keytrail-store knows SQL",
                    file.display()
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Every place (file, or directory ending in `/`) that builds a
/// decompressor, and how it is bounded
/// (ARCHITECTURE.md, "Untrusted input is read with bounds").
const DECOMPRESSION: &[(&str, &str)] = &[
    // Archive members, gzip files: `Capped` under a `Budget` (bytes, ratio).
    ("crates/keytrail-input/src/archive.rs", "capped"),
    // Image layers (gzip, zstd) and docker-archive gzip: `Capped` under a `Budget`.
    ("crates/keytrail-input/src/image/layer.rs", "capped"),
    ("crates/keytrail-input/src/image/store.rs", "capped"),
    // CloudTrail gzip (the readers) and IP intelligence the user chose
    // (--ipintel, the intel cache): streamed, never held whole; each
    // CloudTrail record is bounded (64 MiB), small files are read with
    // `take(WINDOW_BYTES + 1)`, intelligence files line by line.
    ("crates/keytrail-detect/src/", "streamed"),
];

#[test]
fn every_decompressor_is_in_a_listed_place() {
    let needles = [
        "GzDecoder",
        "ZlibDecoder",
        "DeflateDecoder",
        "StreamingDecoder",
        "FrameDecoder",
        "ZipArchive::new",
        "BzDecoder",
        "XzDecoder",
    ];
    let root = root();
    let mut problems = Vec::new();
    for (krate, file) in library_sources(&["keytrail-testkit", "keytrail-fuzz"]) {
        let rel = file.strip_prefix(&root).expect("under the root");
        let rel = rel.to_string_lossy().replace('\\', "/");
        for (n, line) in code_lines(&file) {
            if let Some(needle) = needles.iter().find(|x| line.contains(*x))
                && !DECOMPRESSION
                    .iter()
                    .any(|(f, _)| *f == rel || (f.ends_with('/') && rel.starts_with(f)))
            {
                problems.push(format!(
                    "{krate}: {rel}:{n}: {needle} outside the places ARCHITECTURE.md lists"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

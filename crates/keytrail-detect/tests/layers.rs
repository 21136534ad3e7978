//! The module graph of `keytrail-detect` reads top-down: every top-level module uses
//! only modules of lower layers (`crate::…` paths in code; doc comments may point
//! anywhere), so there is no cycle. A new module must be given a layer here; a use
//! that points up or sideways fails this test (ARCHITECTURE.md describes the layers).

use std::collections::BTreeMap;
use std::path::Path;

/// Layers, lowest first. A module may use the modules of the layers below its own.
const LAYERS: &[&[&str]] = &[
    // Building blocks: time, JSON scanning, prematched-rule ids, IP intelligence.
    &["time", "json", "prematch", "ipintel"],
    // The record model.
    &["event"],
    // Alerts and rule metadata; reading files and streams into events.
    &["alert", "reader"],
    // The owners file, the Sigma engine, the incident stage.
    &["owners", "sigma", "incident"],
    // Per-identity baselines and the behavioural detectors.
    &["baseline"],
    // Playbook detectors (they read baselines): CloudTrail's and the other clouds'.
    &["playbook", "cloudplay"],
    // The engine that runs them all.
    &["engine"],
    // Its stages on many machines.
    &["distributed"],
];

fn layer(module: &str) -> usize {
    LAYERS
        .iter()
        .position(|l| l.contains(&module))
        .unwrap_or_else(|| panic!("module `{module}` has no layer in tests/layers.rs"))
}

/// `crate::x` references of the code (not comments) of each top-level module.
fn uses() -> BTreeMap<String, Vec<(String, String)>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path
                .strip_prefix(&src)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            let top = rel
                .split('/')
                .next()
                .unwrap()
                .trim_end_matches(".rs")
                .to_string();
            if top == "lib" {
                continue;
            }
            out.entry(top.clone()).or_default();
            for line in std::fs::read_to_string(&path).unwrap().lines() {
                let code = line.split("//").next().unwrap();
                let mut rest = code;
                while let Some(i) = rest.find("crate::") {
                    rest = &rest[i + "crate::".len()..];
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if name != top {
                        out.get_mut(&top).unwrap().push((name, rel.clone()));
                    }
                }
            }
        }
    }
    out
}

#[test]
fn modules_only_use_lower_layers() {
    let graph = uses();
    assert!(graph.len() >= 13, "too few modules found: {graph:?}");
    let mut wrong = Vec::new();
    for (module, used) in &graph {
        for (dep, file) in used {
            if layer(dep) >= layer(module) {
                wrong.push(format!("{file}: `{module}` uses `{dep}`"));
            }
        }
    }
    wrong.sort();
    wrong.dedup();
    assert!(
        wrong.is_empty(),
        "uses that point up or sideways:\n{}",
        wrong.join("\n")
    );
    // Every layer names modules that exist.
    for m in LAYERS.iter().flat_map(|l| l.iter()) {
        assert!(
            graph.contains_key(*m),
            "tests/layers.rs lists `{m}`, which is gone"
        );
    }
}

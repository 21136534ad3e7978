//! Every fuzz target's body over its committed corpus
//! (`fuzz/corpus/<target>/`): CI runs each target briefly on every run,
//! and a crash the fuzzer found (its input is committed to the corpus)
//! stays fixed.

use std::path::Path;

#[test]
fn every_target_runs_over_its_corpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    for (name, body) in keytrail_fuzz::TARGETS {
        let dir = root.join(name);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("corpus {} is missing: {e}", dir.display()))
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "corpus {} is empty", dir.display());
        for f in files {
            let data = std::fs::read(&f).unwrap();
            if std::panic::catch_unwind(|| body(&data)).is_err() {
                panic!("target {name} failed on {}", f.display());
            }
        }
    }
}

//! `keytrail baseline create` and `keytrail scan --baseline`.

use crate::{fake, with_test_rules};
use serde_json::Value;

#[test]
fn create_then_suppress() {
    let t = with_test_rules();
    let token = fake::test_token();
    t.write("tree/a.py", &format!("import os\nTOKEN = \"{token}\"\n"));
    let r = t.run(&[
        "baseline",
        "create",
        "--rules",
        "rules",
        "tree",
        "-o",
        "baseline.json",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    // The default records every confidence level (a generic rule may match too).
    assert!(r.stderr.contains("recorded "), "{}", r.stderr);

    let text = t.read("baseline.json");
    assert!(!text.contains(&token), "baseline holds no secret");
    let b: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(b["version"], 1);
    let salt = b["salt"].as_str().unwrap();
    assert_eq!(salt.len(), 64);
    assert!(salt.bytes().all(|c| c.is_ascii_hexdigit()));
    let entries = b["entries"].as_array().unwrap();
    let mine: Vec<_> = entries
        .iter()
        .filter(|e| e["rule_id"] == "testing.token")
        .collect();
    assert_eq!(mine.len(), 1, "{text}");
    assert_eq!(mine[0]["path"], "tree/a.py");
    assert_eq!(mine[0]["key"].as_str().unwrap().len(), 64);
    assert!(mine[0]["created"].as_str().unwrap().ends_with('Z'));
    for e in entries {
        assert!(e.get("line").is_none(), "no line numbers: {e}");
    }

    let r = t.run(&[
        "scan",
        "--rules",
        "rules",
        "--baseline",
        "baseline.json",
        "tree",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout, "");
    assert!(
        r.stderr.contains("1 suppressed by baseline"),
        "{}",
        r.stderr
    );

    let r = t.run(&[
        "scan",
        "--rules",
        "rules",
        "--format",
        "json",
        "--baseline",
        "baseline.json",
        "tree",
    ]);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["summary"]["suppressed_by_baseline"], 1);
    assert_eq!(v["findings"].as_array().unwrap().len(), 0);
}

#[test]
fn moved_code_stays_suppressed_new_secret_reported() {
    let t = with_test_rules();
    let old = fake::test_token();
    t.write("tree/a.py", &format!("TOKEN = \"{old}\"\n"));
    assert_eq!(
        t.run(&[
            "baseline", "create", "--rules", "rules", "tree", "-o", "b.json"
        ])
        .code,
        0
    );

    // Move the line down and into another file: still suppressed.
    std::fs::remove_file(t.root().join("tree/a.py")).unwrap();
    t.write(
        "tree/lib/moved.py",
        &format!("\n\n\n# moved\nX = 1\nTOKEN = \"{old}\"\n"),
    );
    let r = t.run(&["scan", "--rules", "rules", "--baseline", "b.json", "tree"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("1 suppressed by baseline"),
        "{}",
        r.stderr
    );

    // A different secret on the very same line is reported.
    let new = fake::test_token();
    t.write(
        "tree/lib/moved.py",
        &format!("\n\n\n# moved\nX = 1\nTOKEN = \"{new}\"\n"),
    );
    let r = t.run(&[
        "scan",
        "--rules",
        "rules",
        "--format",
        "jsonl",
        "--baseline",
        "b.json",
        "tree",
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    let rec: Value = serde_json::from_str(r.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(rec["path"], "tree/lib/moved.py");
    assert_eq!(rec["line"], 6);
    assert_eq!(r.stdout.lines().count(), 1);
}

#[test]
fn bad_baseline_file_exits_2() {
    let t = with_test_rules();
    t.write("tree/a.txt", "x\n");
    t.write(
        "b.json",
        "{\"version\": 1, \"salt\": \"zz\", \"entries\": []}",
    );
    let r = t.run(&["scan", "--baseline", "b.json", "tree"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("salt"), "{}", r.stderr);
    let r = t.run(&["scan", "--baseline", "missing.json", "tree"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("missing.json"), "{}", r.stderr);
}

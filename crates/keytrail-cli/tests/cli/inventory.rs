//! `inventory --owners-template`: an owners file listing every identity
//! without an owner, valid as written, that keeps them flagged until
//! filled in; never overwriting a file.

use crate::CliTest;
use serde_json::Value;
use std::path::PathBuf;

/// The inventory crate's snapshot fixture that fails every check.
fn snapshot() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../keytrail-inventory/tests/fixtures/bad")
        .display()
        .to_string()
}

fn records(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn unowned_identities(rs: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = rs
        .iter()
        .filter(|r| {
            r["owner"] == "UNOWNED"
                && [
                    "aws.iam.role",
                    "aws.iam.user",
                    "gcp.service_account",
                    "entra.application",
                ]
                .contains(&r["kind"].as_str().unwrap())
        })
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn owners_template_lists_the_unowned_and_is_a_valid_owners_file() {
    let t = CliTest::new();
    let snap = snapshot();
    let r = t.run(&[
        "inventory",
        "--snapshot",
        &snap,
        "--format",
        "jsonl",
        "--owners-template",
        "owners.yaml",
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    let unowned = unowned_identities(&records(&r.stdout));
    assert!(unowned.len() >= 5, "{unowned:?}");
    assert!(
        r.stderr.contains(&format!(
            "wrote {} identities without an owner",
            unowned.len()
        )),
        "{}",
        r.stderr
    );
    let template = t.read("owners.yaml");
    for id in &unowned {
        assert!(
            template.contains(&format!("\"{id}\"")),
            "{id} in {template}"
        );
    }

    // As written, it is accepted and changes nothing.
    let same = t.run(&[
        "inventory",
        "--snapshot",
        &snap,
        "--format",
        "jsonl",
        "--owners",
        "owners.yaml",
    ]);
    assert_eq!(same.code, 1, "{same:?}");
    assert_eq!(unowned_identities(&records(&same.stdout)), unowned);

    // Filling in one owner takes it off the list, and a second template
    // made with the file lists only the rest.
    // The first entry's owner (the header's instructions name it too).
    let filled = template.replacen("\n    owner: UNOWNED", "\n    owner: platform-team", 1);
    t.write("owners.yaml", &filled);
    let first = unowned[..]
        .iter()
        .find(|id| {
            let at = filled.find(&format!("\"{id}\"")).unwrap();
            filled[at..]
                .lines()
                .nth(1)
                .unwrap()
                .contains("platform-team")
        })
        .expect("the filled entry")
        .clone();
    let after = t.run(&[
        "inventory",
        "--snapshot",
        &snap,
        "--format",
        "jsonl",
        "--owners",
        "owners.yaml",
        "--owners-template",
        "rest.yaml",
    ]);
    let rs = records(&after.stdout);
    let owned = rs.iter().find(|r| r["id"] == first.as_str()).unwrap();
    assert_eq!(owned["owner"], "platform-team");
    assert!(!owned["flags"].to_string().contains("unowned"), "{owned}");
    let rest = t.read("rest.yaml");
    assert!(!rest.contains(&format!("\"{first}\"")), "{rest}");
    assert_eq!(
        rest.matches("\n    owner: UNOWNED").count(),
        unowned.len() - 1
    );
}

#[test]
fn owners_template_never_overwrites() {
    let t = CliTest::new();
    t.write("keytrail.owners.yaml", "version: 1\nidentities: []\n");
    let r = t.run(&[
        "inventory",
        "--snapshot",
        &snapshot(),
        "--owners-template",
        "keytrail.owners.yaml",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("--owners-template keytrail.owners.yaml"),
        "{}",
        r.stderr
    );
    assert_eq!(
        t.read("keytrail.owners.yaml"),
        "version: 1\nidentities: []\n"
    );
}

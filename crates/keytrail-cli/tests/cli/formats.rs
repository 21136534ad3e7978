//! Each `--format`, and `--reveal` versus redacted output.

use crate::{CliTest, fake, with_test_rules};
use serde_json::Value;

/// A tree with one test token twice (two files) and one GitHub token.
fn fixture() -> (CliTest, String, String) {
    let t = with_test_rules();
    let (mine, gh) = (fake::test_token(), fake::github_pat());
    t.write(
        "tree/app/settings.py",
        &format!("DEBUG = False\nAPI_TOKEN = \"{mine}\"\n"),
    );
    t.write(
        "tree/deploy/.env",
        &format!("GITHUB_TOKEN={gh}\nTOKEN={mine}\n"),
    );
    (t, mine, gh)
}

const FORMATS: [&str; 4] = ["human", "json", "jsonl", "sarif"];

#[test]
fn secrets_never_printed_without_reveal() {
    let (t, mine, gh) = fixture();
    for format in FORMATS {
        let r = t.run(&["scan", "--rules", "rules", "--format", format, "tree"]);
        assert_eq!(r.code, 1, "{format}: {r:?}");
        for secret in [&mine, &gh] {
            assert!(
                !r.all().contains(secret.as_str()),
                "{format} leaked a secret"
            );
        }
        // The redacted form keeps the first 4 and last 2 characters.
        let redacted = format!("{}…{}", &mine[..4], &mine[mine.len() - 2..]);
        assert!(
            r.stdout.contains(&redacted),
            "{format}: redacted form shown"
        );
    }
}

#[test]
fn reveal_prints_secrets_except_in_sarif() {
    let (t, mine, gh) = fixture();
    for format in ["human", "json", "jsonl"] {
        let r = t.run(&[
            "scan", "--rules", "rules", "--reveal", "--format", format, "tree",
        ]);
        assert_eq!(r.code, 1);
        assert!(r.stdout.contains(&mine), "{format}: {}", r.stdout);
        assert!(r.stdout.contains(&gh), "{format}: {}", r.stdout);
    }
    let r = t.run(&[
        "scan", "--rules", "rules", "--reveal", "--format", "sarif", "tree",
    ]);
    assert!(
        !r.all().contains(&mine) && !r.all().contains(&gh),
        "SARIF never reveals"
    );

    let r = t.run(&[
        "scan", "--rules", "rules", "--reveal", "--format", "json", "tree",
    ]);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let f = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule_id"] == "testing.token")
        .unwrap();
    assert_eq!(f["secret"], mine.as_str());
}

#[test]
fn json_document() {
    let (t, _, _) = fixture();
    let r = t.run(&["scan", "--rules", "rules", "--format", "json", "tree"]);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["version"], 1);
    let findings = v["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 2, "{}", r.stdout);
    let mine = findings
        .iter()
        .find(|f| f["rule_id"] == "testing.token")
        .unwrap();
    assert_eq!(mine["rule_name"], "Testing token");
    assert_eq!(mine["provider"], "Testing");
    assert_eq!(mine["confidence"], "high");
    assert_eq!(mine["severity"], "medium");
    assert_eq!(mine["fingerprint"].as_str().unwrap().len(), 32);
    assert!(mine.get("secret").is_none());
    let locs = mine["locations"].as_array().unwrap();
    assert_eq!(locs.len(), 2);
    let settings = locs
        .iter()
        .find(|l| l["path"] == "tree/app/settings.py")
        .unwrap();
    assert_eq!(settings["line"], 2);
    assert_eq!(settings["column"], 14);
    assert_eq!(settings["source"], "file");
    assert!(
        settings["snippet"]
            .as_str()
            .unwrap()
            .starts_with("API_TOKEN = \"")
    );
    let s = &v["summary"];
    assert_eq!(s["files_scanned"], 2);
    assert_eq!(s["findings"], 2);
    assert_eq!(s["locations"], 3);
    assert_eq!(s["suppressed_by_baseline"], 0);
    assert!(s["bytes_scanned"].as_u64().unwrap() > 50);
}

#[test]
fn jsonl_records() {
    let (t, _, _) = fixture();
    let r = t.run(&["scan", "--rules", "rules", "--format", "jsonl", "tree"]);
    let recs: Vec<Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(recs.len(), 3, "one line per location");
    for rec in &recs {
        for key in [
            "rule_id",
            "rule_name",
            "path",
            "line",
            "column",
            "fingerprint",
            "secret_redacted",
            "confidence",
            "severity",
            "snippet",
            "source",
        ] {
            assert!(rec.get(key).is_some(), "{key} missing in {rec}");
        }
    }
    let fps: std::collections::HashSet<_> = recs.iter().map(|r| r["fingerprint"].clone()).collect();
    assert_eq!(fps.len(), 2);
}

/// The draft-4 validator of the official SARIF 2.1.0 schema.
pub(crate) fn sarif_validator() -> jsonschema::Validator {
    jsonschema::draft4::new(&keytrail_testkit::sarif::schema()).unwrap()
}

#[test]
fn sarif_valid_against_schema() {
    let (t, _, _) = fixture();
    t.write(
        "tree/dir with space/f#1.txt",
        &format!("k={}\n", fake::test_token()),
    );
    let r = t.run(&["scan", "--rules", "rules", "--format", "sarif", "tree"]);
    assert_eq!(r.code, 1);
    let doc: Value = serde_json::from_str(&r.stdout).unwrap();
    let v = sarif_validator();
    let errors: Vec<String> = v
        .iter_errors(&doc)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");

    let run = &doc["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "keytrail");
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    let uris: Vec<&str> = results
        .iter()
        .flat_map(|r| r["locations"].as_array().unwrap())
        .map(|l| {
            l["physicalLocation"]["artifactLocation"]["uri"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert!(
        uris.contains(&"tree/dir%20with%20space/f%231.txt"),
        "{uris:?}"
    );
    for r in results {
        assert_eq!(
            r["partialFingerprints"]["keytrail/v1"]
                .as_str()
                .unwrap()
                .len(),
            32
        );
    }
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    let mine = rules.iter().find(|r| r["id"] == "testing.token").unwrap();
    assert_eq!(
        mine["help"]["text"]
            .as_str()
            .unwrap()
            .lines()
            .next()
            .unwrap(),
        "Nothing to revoke; it is a test fixture."
    );
    assert_eq!(mine["properties"]["security-severity"], "5.5");
}

#[test]
fn sarif_valid_when_clean() {
    let t = CliTest::new();
    t.write("a.txt", "nothing here\n");
    let r = t.run(&["scan", "--format", "sarif", "a.txt"]);
    assert_eq!(r.code, 0);
    let doc: Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(sarif_validator().is_valid(&doc));
    assert_eq!(doc["runs"][0]["results"].as_array().unwrap().len(), 0);
}

#[test]
fn human_snapshot() {
    let t = with_test_rules();
    // A fixed token so the snapshot is stable; it matches only the test rule.
    let token = "ktq_q2w3e4r5t6y7u8i9o0p1a2s3";
    t.write(
        "tree/app/settings.py",
        &format!("DEBUG = False\nAPI_TOKEN = \"{token}\"\n"),
    );
    t.write("tree/b.txt", &format!("token: {token}\n"));
    let r = t.run(&["scan", "--rules", "rules", "tree"]);
    assert_eq!(r.code, 1);
    insta::assert_snapshot!("human_stdout", t.filter(&r.stdout));
    insta::assert_snapshot!("human_stderr", t.filter(&r.stderr));
}

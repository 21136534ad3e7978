//! Credential files of common tools, generated at test time: each secret is
//! reported by its rule at its place, and the same shapes in other files
//! are not reported at all.

use keytrail_scan::Scanner;
use keytrail_testkit::tool_files::{ToolFile, credential_file_negatives, credential_files};
use keytrail_types::{Confidence, Origin};

fn scanner() -> Scanner {
    let (rules, _) = keytrail_rules::builtin();
    let (s, diags) = Scanner::new(rules);
    assert!(diags.is_empty(), "{diags:?}");
    s
}

fn found(s: &Scanner, f: &ToolFile) -> Vec<(String, String)> {
    s.scan_bytes(&f.path, &Origin::File, f.text.as_bytes())
        .iter()
        .map(|x| {
            (
                s.rules()[x.rule].id().to_string(),
                x.secret.expose().to_string(),
            )
        })
        .collect()
}

#[test]
fn every_credential_file_is_found_by_its_rule() {
    let s = scanner();
    let mut problems = Vec::new();
    for seed in 0..8 {
        for f in credential_files(seed) {
            let got = found(&s, &f);
            for (rule, secret) in &f.secrets {
                if !got
                    .iter()
                    .any(|(r, v)| rule.split('|').any(|x| x == r) && v == secret)
                {
                    problems.push(format!("{}: {rule} missing, got {got:?}", f.path));
                }
            }
            for (rule, secret) in &got {
                if !f.secrets.iter().any(|(_, v)| v == secret) {
                    problems.push(format!("{}: unexpected {rule} {secret:?}", f.path));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Findings of the rules that run by default (medium and high confidence).
fn found_by_default(s: &Scanner, f: &ToolFile) -> Vec<(String, String)> {
    s.scan_bytes(&f.path, &Origin::File, f.text.as_bytes())
        .iter()
        .filter(|x| s.rules()[x.rule].confidence() != Confidence::Low)
        .map(|x| {
            (
                s.rules()[x.rule].id().to_string(),
                x.secret.expose().to_string(),
            )
        })
        .collect()
}

#[test]
fn the_same_shapes_elsewhere_are_not_reported() {
    let s = scanner();
    for f in credential_file_negatives(3) {
        assert_eq!(found_by_default(&s, &f), vec![], "{}", f.path);
    }
    // Each credential file moved to a source path: the rules limited to
    // file names stay silent.
    for f in credential_files(5) {
        let moved = ToolFile {
            path: format!("src/fixtures/{}.txt", f.path.replace('/', "_")),
            ..f.clone()
        };
        for (rule, _) in found(&s, &moved) {
            let limited = s
                .rules()
                .iter()
                .find(|r| r.id() == rule)
                .is_some_and(|r| !r.rule.syntax.paths.is_empty());
            assert!(!limited, "{rule} fired on {}", moved.path);
        }
    }
}

/// Bad inputs: a truncated file, an empty one, a huge one and binary noise
/// under a credential file's name end without a false finding.
#[test]
fn bad_inputs_under_credential_file_names() {
    let s = scanner();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (".pgpass", b"db.acme.internal:5432:orders".to_vec()),
        ("config/master.key", Vec::new()),
        ("config/master.key", vec![b'a'; 1 << 20]),
        ("sftp-config.json", b"{\n  \"password\": \"".to_vec()),
        (
            ".git-credentials",
            (0..=255u8).cycle().take(1 << 16).collect(),
        ),
    ];
    for (path, data) in cases {
        assert!(
            s.scan_bytes(path, &Origin::File, &data).is_empty(),
            "{path}"
        );
    }
}

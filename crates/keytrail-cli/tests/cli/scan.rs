//! `keytrail scan`: exit codes, inputs (files, directories, stdin),
//! excludes, confidence threshold, broken pipes, redaction.

use crate::{CliTest, fake, with_test_rules};
use std::io::Read;
use std::process::Stdio;

#[test]
fn clean_tree_exits_0() {
    let t = CliTest::new();
    t.write("src/main.rs", "fn main() { println!(\"hello\"); }\n");
    let r = t.run(&["scan", "."]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout, "");
    assert!(r.stderr.contains("scanned 1 file"), "{}", r.stderr);
    assert!(r.stderr.contains("0 findings"), "{}", r.stderr);
}

#[test]
fn builtin_github_token_exits_1() {
    let t = CliTest::new();
    let token = fake::github_pat();
    t.write("config/app.env", &format!("APP=1\nGITHUB_TOKEN={token}\n"));
    let r = t.run(&["scan", "."]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.contains("github.pat.classic"), "{}", r.stdout);
    assert!(r.stdout.contains("config/app.env:2:14"), "{}", r.stdout);
    assert!(!r.all().contains(&token), "secret leaked without --reveal");
    assert!(r.stderr.contains("1 finding (1 location)"), "{}", r.stderr);
}

#[test]
fn missing_path_exits_2() {
    let t = CliTest::new();
    let r = t.run(&["scan", "does-not-exist"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("does-not-exist"), "{}", r.stderr);
}

#[test]
fn bad_arguments_exit_2() {
    let t = CliTest::new();
    assert_eq!(t.run(&["scan", "--format", "xml", "."]).code, 2);
    assert_eq!(t.run(&["scan"]).code, 2);
    assert_eq!(t.run(&["scan", "--min-confidence", "certain", "."]).code, 2);
}

#[test]
fn unreadable_rules_exit_2() {
    let t = CliTest::new();
    t.write("a.txt", "nothing\n");
    let r = t.run(&["scan", "--rules", "no-such-dir", "a.txt"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("no-such-dir"), "{}", r.stderr);

    t.write("bad/rules.yml", "rules:\n  - id: x\n   oops: [\n");
    let r = t.run(&["scan", "--rules", "bad", "a.txt"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("bad/rules.yml:"), "{}", r.stderr);
}

#[test]
fn user_rules_add_to_builtins() {
    let t = with_test_rules();
    let (mine, gh) = (fake::test_token(), fake::github_pat());
    t.write("a.txt", &format!("x = {mine}\ny = {gh}\n"));
    let r = t.run(&["scan", "--rules", "rules", "--format", "jsonl", "a.txt"]);
    assert_eq!(r.code, 1, "{r:?}");
    let ids: Vec<String> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["rule_id"].to_string())
        .collect();
    assert!(ids.contains(&"\"testing.token\"".to_string()), "{ids:?}");
    assert!(
        ids.contains(&"\"github.pat.classic\"".to_string()),
        "{ids:?}"
    );
}

#[test]
fn stdin_dash() {
    let t = with_test_rules();
    let token = fake::test_token();
    let r = t.run_stdin(
        &["scan", "--rules", "rules", "--format", "jsonl", "-"],
        &format!("line one\nauth: {token}\n"),
    );
    assert_eq!(r.code, 1, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(r.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(v["path"], "-");
    assert_eq!(v["line"], 2);
    assert_eq!(v["column"], 7);
    assert!(!r.all().contains(&token));
}

#[test]
fn exclude_globs() {
    let t = with_test_rules();
    t.write(
        "tree/vendor/lib/x.txt",
        &format!("k={}\n", fake::test_token()),
    );
    t.write("tree/src/keep.txt", &format!("k={}\n", fake::test_token()));
    t.write(
        "tree/dist/app.min.js",
        &format!("k=\"{}\"\n", fake::test_token()),
    );
    let r = t.run(&[
        "scan",
        "--rules",
        "rules",
        "--format",
        "jsonl",
        "--exclude",
        "vendor/**",
        "--exclude",
        "*.min.js",
        "tree",
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    let paths: Vec<String> = r
        .stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["path"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(paths.len(), 1, "{paths:?}");
    assert!(paths[0].ends_with("src/keep.txt"), "{paths:?}");

    // Without the excludes all three are found.
    let r = t.run(&["scan", "--rules", "rules", "--format", "jsonl", "tree"]);
    assert_eq!(r.stdout.lines().count(), 3, "{}", r.stdout);
}

#[test]
fn invalid_exclude_exits_2() {
    let t = CliTest::new();
    t.write("tree/a.txt", "x\n");
    let r = t.run(&["scan", "--exclude", "a/[b", "tree"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("a/[b"), "{}", r.stderr);
}

#[test]
fn min_confidence_filters_rules() {
    let t = CliTest::new();
    t.write(
        "rules/low.yml",
        &crate::TEST_RULES.replace("confidence: high", "confidence: low"),
    );
    t.write("a.txt", &format!("k={}\n", fake::test_token()));
    // Default (medium) leaves the low-confidence rule out.
    let r = t.run(&["scan", "--rules", "rules", "a.txt"]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = t.run(&[
        "scan",
        "--rules",
        "rules",
        "--min-confidence",
        "low",
        "a.txt",
    ]);
    assert_eq!(r.code, 1, "{r:?}");
}

#[test]
fn output_file_and_quiet() {
    let t = with_test_rules();
    t.write("a.txt", &format!("k={}\n", fake::test_token()));
    let r = t.run(&[
        "scan", "--rules", "rules", "--format", "json", "--output", "out.json", "--quiet", "a.txt",
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(r.stdout, "");
    assert_eq!(r.stderr, "");
    let v: serde_json::Value = serde_json::from_str(&t.read("out.json")).unwrap();
    assert_eq!(v["findings"].as_array().unwrap().len(), 1);
}

#[test]
fn no_colour_when_piped() {
    let t = CliTest::new();
    t.write("a.env", &format!("GITHUB_TOKEN={}\n", fake::github_pat()));
    let mut c = t.command(&["scan", "a.env"]);
    c.env_remove("NO_COLOR");
    let out = c.output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(!out.stdout.contains(&0x1b), "escape codes in piped output");
    assert!(!out.stderr.contains(&0x1b), "escape codes in piped stderr");
}

#[test]
fn duplicates_grouped_by_secret() {
    let t = with_test_rules();
    let token = fake::test_token();
    t.write("tree/a.txt", &format!("k={token}\n"));
    t.write("tree/b/c.txt", &format!("\n\n  other: {token}\n"));
    let r = t.run(&["scan", "--rules", "rules", "--format", "json", "tree"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let findings = v["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{}", r.stdout);
    assert_eq!(findings[0]["locations"].as_array().unwrap().len(), 2);
    assert_eq!(v["summary"]["findings"], 1);
    assert_eq!(v["summary"]["locations"], 2);
    assert_eq!(v["summary"]["files_scanned"], 2);
    let lines: Vec<_> = findings[0]["locations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["path"].as_str().unwrap().to_string(),
                l["line"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(lines.contains(&("tree/a.txt".to_string(), 1)), "{lines:?}");
    assert!(
        lines.contains(&("tree/b/c.txt".to_string(), 3)),
        "{lines:?}"
    );
}

#[test]
fn broken_pipe_is_quiet() {
    let t = with_test_rules();
    // Enough output to overflow a pipe buffer.
    let mut text = String::new();
    for _ in 0..3000 {
        text.push_str(&format!("k={}\n", fake::test_token()));
    }
    t.write("many.txt", &text);
    let mut child = t
        .command(&["scan", "--rules", "rules", "--format", "jsonl", "many.txt"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read one byte, then hang up like `head -c1`.
    let mut stdout = child.stdout.take().unwrap();
    let mut one = [0u8; 1];
    stdout.read_exact(&mut one).unwrap();
    drop(stdout);
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(1),
        "keeps the exit code of the scan: {stderr}"
    );
    assert!(!stderr.contains("error"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn builtin_providers_found_and_redacted() {
    let t = CliTest::new();
    let mut fs = fake::secrets();
    let gh = fs.github_classic();
    let aws = fs.aws_key_pair();
    let slack = fs.slack_bot();
    let stripe = fs.stripe_live_secret();
    t.write(
        "tree/.env",
        &format!(
            "GITHUB_TOKEN={gh}\nAWS_ACCESS_KEY_ID={}\nAWS_SECRET_ACCESS_KEY={}\nSLACK_TOKEN={slack}\nSTRIPE_KEY={stripe}\n",
            aws.access_key_id, aws.secret_access_key
        ),
    );
    for format in ["human", "json", "jsonl", "sarif"] {
        let r = t.run(&["scan", "--format", format, "tree"]);
        assert_eq!(r.code, 1, "{format}: {r:?}");
        for secret in [&gh, &aws.secret_access_key, &slack, &stripe] {
            assert!(
                !r.all().contains(secret.as_str()),
                "{format} leaked a secret"
            );
        }
    }
    let r = t.run(&["scan", "--format", "jsonl", "tree"]);
    let ids: std::collections::BTreeSet<String> = r
        .stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["rule_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    for prefix in ["github.", "aws.", "slack.", "stripe."] {
        assert!(
            ids.iter().any(|i| i.starts_with(prefix)),
            "{prefix}: {ids:?}"
        );
    }
}

/// A file that claims to be a zip but is truncated: an unreadable input.
fn corrupt_zip(t: &CliTest) {
    let mut bytes = b"PK\x03\x04\x14\x00\x00\x00\x08\x00".to_vec();
    bytes.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef, 0x01, 0x02]);
    std::fs::create_dir_all(t.root().join("tree")).unwrap();
    std::fs::write(t.root().join("tree/broken.zip"), bytes).unwrap();
}

#[test]
fn unreadable_input_warns_and_fail_on_error_exits_2() {
    let t = CliTest::new();
    corrupt_zip(&t);
    t.write("tree/ok.txt", "fine\n");
    let r = t.run(&["scan", "tree"]);
    assert_eq!(r.code, 0, "{r:?}");
    let warning = r
        .stderr
        .lines()
        .find(|l| l.starts_with("warning: "))
        .unwrap_or_else(|| panic!("{}", r.stderr));
    assert!(warning.contains("tree/broken.zip"), "{warning}");
    assert!(r.stderr.contains("1 unreadable"), "{}", r.stderr);
    assert!(r.stderr.contains("--fail-on-error"), "hint: {}", r.stderr);

    let r = t.run(&["scan", "--fail-on-error", "tree"]);
    assert_eq!(r.code, 2, "{r:?}");

    // Errors win over findings with --fail-on-error.
    t.write(
        "tree/.env",
        &format!("GITHUB_TOKEN={}\n", fake::github_pat()),
    );
    assert_eq!(t.run(&["scan", "--fail-on-error", "tree"]).code, 2);
    assert_eq!(t.run(&["scan", "tree"]).code, 1);
}

#[test]
fn verbose_lists_skips_quiet_hides_them() {
    let t = CliTest::new();
    std::fs::create_dir_all(t.root().join("tree")).unwrap();
    // A PNG: binary content that stays skipped (other binaries are
    // scanned through their printable runs unless --no-binary).
    std::fs::write(
        t.root().join("tree/blob.bin"),
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\x01\0",
    )
    .unwrap();
    let r = t.run(&["scan", "-v", "tree"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr
            .lines()
            .any(|l| l.starts_with("note: ") && l.contains("blob.bin")),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("1 skipped"), "{}", r.stderr);
    let r = t.run(&["scan", "tree"]);
    assert!(!r.stderr.contains("note: "), "{}", r.stderr);
    let r = t.run(&["scan", "-q", "tree"]);
    assert_eq!(r.stderr, "");
    // Another binary is scanned, not skipped, unless --no-binary.
    std::fs::write(
        t.root().join("tree/blob.bin"),
        [0u8, 159, 146, 150, 0, 0, 1, 2, 3, 0],
    )
    .unwrap();
    let r = t.run(&["scan", "-v", "tree"]);
    assert!(r.stderr.contains("0 skipped"), "{}", r.stderr);
    let r = t.run(&["scan", "-v", "--no-binary", "tree"]);
    assert!(r.stderr.contains("1 skipped"), "{}", r.stderr);
}

#[test]
fn large_inputs_are_streamed_with_correct_lines() {
    let t = with_test_rules();
    let token = fake::test_token();
    let mut text = String::new();
    for i in 1..=2000 {
        text.push_str(&format!(
            "filler line {i} with some words to take up space\n"
        ));
    }
    text.push_str(&format!("key = {token}\n"));
    t.write("tree/big.txt", &text);
    // With a 4 KiB in-memory limit the file (~100 KiB) goes through the
    // streaming path; stdin of the same size is spilled and streamed too.
    let args = [
        "scan",
        "--rules",
        "rules",
        "--max-in-memory",
        "4096",
        "--format",
        "jsonl",
    ];
    let mut file_args = args.to_vec();
    file_args.push("tree/big.txt");
    let r = t.run(&file_args);
    assert_eq!(r.code, 1, "{r:?}");
    let rec: serde_json::Value = serde_json::from_str(r.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(rec["line"], 2001);
    assert_eq!(rec["column"], 7);
    assert!(
        r.stderr
            .contains(&format!("({:.1} KiB)", text.len() as f64 / 1024.0)),
        "{}",
        r.stderr
    );

    let mut stdin_args = args.to_vec();
    stdin_args.push("-");
    let r = t.run_stdin(&stdin_args, &text);
    assert_eq!(r.code, 1, "{r:?}");
    let rec: serde_json::Value = serde_json::from_str(r.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(rec["path"], "-");
    assert_eq!(rec["line"], 2001);
}

//! `keytrail rules list` and `keytrail rules check`.

use crate::{CliTest, TEST_RULES, with_test_rules};
use serde_json::Value;

#[test]
fn list_json_has_builtins_and_user_rules() {
    let t = with_test_rules();
    let r = t.run(&["rules", "list", "--rules", "rules", "--format", "json"]);
    assert_eq!(r.code, 0, "{r:?}");
    let v: Vec<Value> = serde_json::from_str(&r.stdout).unwrap();
    let gh = v.iter().find(|r| r["id"] == "github.pat.classic").unwrap();
    assert_eq!(gh["provider"], "GitHub");
    assert_eq!(gh["confidence"], "high");
    let mine = v.iter().find(|r| r["id"] == "testing.token").unwrap();
    assert_eq!(mine["provider"], "Testing");
}

#[test]
fn list_human_table() {
    let t = CliTest::new();
    let r = t.run(&["rules", "list"]);
    assert_eq!(r.code, 0);
    let header = r.stdout.lines().next().unwrap();
    assert!(
        header.starts_with("ID") && header.contains("PROVIDER") && header.contains("CONFIDENCE")
    );
    assert!(
        r.stdout
            .lines()
            .any(|l| l.starts_with("github.pat.classic "))
    );
}

#[test]
fn check_clean_user_rules() {
    let t = with_test_rules();
    let r = t.run(&["rules", "check", "--warnings-as-errors", "rules"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr
            .contains("checked 1 rule(s) in 1 file(s): 0 error(s), 0 warning(s)"),
        "{}",
        r.stderr
    );
}

#[test]
fn check_malformed_file_names_file_and_line() {
    let t = CliTest::new();
    t.write(
        "rules/broken.yml",
        "provider: X\nrules:\n  - id: x.one\n    name: [unclosed\n",
    );
    let r = t.run(&["rules", "check", "rules"]);
    assert_eq!(r.code, 1, "{r:?}");
    let line = r.stderr.lines().find(|l| l.starts_with("error: ")).unwrap();
    assert!(line.contains("rules/broken.yml:"), "{line}");
    let pos: Vec<&str> = line.split(':').collect();
    assert!(
        pos[2].trim().parse::<u64>().is_ok(),
        "line number in {line}"
    );
}

#[test]
fn check_failing_example_names_rule_line() {
    let t = CliTest::new();
    let text = TEST_RULES.replace(
        "examples: ['TOKEN=ktq_7fk2m9xq4bz1w8jd5hn3vc6r']",
        "examples: ['TOKEN=ktq_TOOSHORT']",
    );
    t.write("rules/mine.yml", &text);
    let r = t.run(&["rules", "check", "rules"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("rules/mine.yml:3:") && r.stderr.contains("testing.token"),
        "{}",
        r.stderr
    );
}

#[test]
fn check_warnings_as_errors() {
    let t = CliTest::new();
    let text = TEST_RULES.replace("    references: [https://example.com/testing-token]\n", "");
    t.write("rules/mine.yml", &text);
    let r = t.run(&["rules", "check", "rules"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("warning: "), "{}", r.stderr);
    let r = t.run(&["rules", "check", "-W", "rules"]);
    assert_eq!(r.code, 1, "{r:?}");
}

#[test]
fn check_id_clash_with_builtin() {
    let t = CliTest::new();
    t.write(
        "rules/mine.yml",
        &TEST_RULES.replace("id: testing.token", "id: github.pat.classic"),
    );
    let r = t.run(&["rules", "check", "rules"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("already used by a builtin"),
        "{}",
        r.stderr
    );
}

#[test]
fn check_missing_dir_exits_2() {
    let t = CliTest::new();
    assert_eq!(t.run(&["rules", "check", "nope"]).code, 2);
}

#[test]
fn builtin_rules_pass_check() {
    let t = CliTest::new();
    let r = t.run(&["rules", "check"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

/// Every missing field of every rule in one run, and broken rules counted.
#[test]
fn check_reports_every_missing_field_and_counts_broken_rules() {
    let t = CliTest::new();
    let text = format!(
        "{TEST_RULES}  - id: testing.broken_one\n    name: One\n    confidence: high\n    description: d\n  - id: testing.broken_two\n    name: Two\n    pattern: 'x(abc)'\n    keywords: [xabc]\n    colour: red\n"
    );
    t.write("rules/mine.yml", &text);
    let r = t.run(&["rules", "check", "rules"]);
    assert_eq!(r.code, 1, "{r:?}");
    for want in [
        "rule `testing.broken_one`: missing field `pattern`",
        "rule `testing.broken_one`: missing field `keywords`",
        "rule `testing.broken_one`: missing field `remediation`",
        "rule `testing.broken_two`: missing field `confidence`",
        "rule `testing.broken_two`: missing field `description`",
        "rule `testing.broken_two`: missing field `remediation`",
        "rule `testing.broken_two`: unknown field `colour`",
    ] {
        assert!(r.stderr.contains(want), "missing {want}: {}", r.stderr);
    }
    assert!(
        r.stderr
            .contains("checked 3 rule(s) (2 invalid) in 1 file(s): 7 error(s)"),
        "{}",
        r.stderr
    );
}

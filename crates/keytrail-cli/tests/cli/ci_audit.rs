//! `keytrail ci-audit`: exit codes, formats (SARIF included) and an
//! invalid file that does not stop the run.

use crate::CliTest;

const WORKFLOW: &str = "on: push\njobs:\n  build:\n    permissions: write-all\n    runs-on: ubuntu-latest\n    steps:\n      - uses: someone/action@v1\n      - run: echo ${{ secrets.NPM_TOKEN }}\n";

#[test]
fn ci_audit_reports_findings_with_exit_code_1() {
    let t = CliTest::new();
    t.write(".github/workflows/ci.yml", WORKFLOW);
    let r = t.run(&["ci-audit", "."]);
    assert_eq!(r.code, 1, "{}", r.all());
    for id in [
        "ci.permissions-write-all",
        "ci.unpinned-action",
        "ci.secret-echoed",
    ] {
        assert!(r.stdout.contains(id), "{id} missing:\n{}", r.stdout);
    }
    assert!(
        r.stdout.contains(".github/workflows/ci.yml:8:"),
        "{}",
        r.stdout
    );
    assert!(
        r.stderr.contains("finding(s) in 1 CI file(s)"),
        "{}",
        r.stderr
    );
}

#[test]
fn ci_audit_clean_repo_exits_0() {
    let t = CliTest::new();
    t.write(
        ".github/workflows/ci.yml",
        "on: push\npermissions:\n  contents: read\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: make\n",
    );
    let r = t.run(&["ci-audit", "."]);
    assert_eq!(r.code, 0, "{}", r.all());
}

#[test]
fn ci_audit_json_jsonl_sarif() {
    let t = CliTest::new();
    t.write(".github/workflows/ci.yml", WORKFLOW);
    let j = t.run(&["ci-audit", "--format", "json", "."]);
    let v: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    assert_eq!(v["version"], 1);
    assert!(v["findings"].as_array().unwrap().len() >= 3);
    let l = t.run(&[
        "ci-audit",
        "--format",
        "jsonl",
        "--min-severity",
        "high",
        ".",
    ]);
    for line in l.stdout.lines() {
        let f: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(
            matches!(f["severity"].as_str(), Some("high" | "critical")),
            "{line}"
        );
    }
    let s = t.run(&["ci-audit", "--format", "sarif", "-o", "out.sarif", "."]);
    assert_eq!(s.code, 1);
    let sarif: serde_json::Value = serde_json::from_str(&t.read("out.sarif")).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    assert!(!sarif["runs"][0]["results"].as_array().unwrap().is_empty());
    let validator = crate::formats::sarif_validator();
    let errors: Vec<String> = validator
        .iter_errors(&sarif)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "ci-audit SARIF invalid: {errors:?}");
}

#[test]
fn ci_audit_invalid_yaml_is_reported_and_the_rest_goes_on() {
    let t = CliTest::new();
    t.write(".github/workflows/bad.yml", "on: push\njobs: [\n");
    t.write(".github/workflows/ci.yml", WORKFLOW);
    let r = t.run(&["ci-audit", "."]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr.contains(".github/workflows/bad.yml:"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("invalid YAML"), "{}", r.stderr);
    let strict = t.run(&["ci-audit", "--fail-on-error", "."]);
    assert_eq!(strict.code, 2);
}

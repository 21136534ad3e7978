//! The integrations shipped at the repository root: `.pre-commit-hooks.yaml`
//! (run through `pre-commit try-repo`), `action.yml` (schema-checked, and its
//! shell steps run the way the runner would), and the `Dockerfile` (built
//! and run only on request: it needs a docker daemon).

use crate::ci_snippets::{check_schema, require};
use crate::{CliTest, fake};
use serde_yaml_ng::Value as Yaml;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// PATH with the binary under test first.
fn path_with_keytrail() -> String {
    let bin = Path::new(env!("CARGO_BIN_EXE_keytrail")).parent().unwrap();
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

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

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn pre_commit_framework_hook_blocks_staged_secrets() {
    require("pre-commit", "pip install pre-commit");
    let t = CliTest::new();
    let repo = t.root().join("work");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["-c", "init.defaultBranch=main", "init", "-q"]);
    t.write("work/README.md", "demo\n");
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "init"]);
    // The hook repository: this repository's .pre-commit-hooks.yaml,
    // committed on its own (try-repo reads committed files).
    let hooks = t.root().join("hooks-repo");
    std::fs::create_dir_all(&hooks).unwrap();
    git(&hooks, &["-c", "init.defaultBranch=main", "init", "-q"]);
    std::fs::copy(
        repo_root().join(".pre-commit-hooks.yaml"),
        hooks.join(".pre-commit-hooks.yaml"),
    )
    .unwrap();
    git(&hooks, &["add", "-A"]);
    git(&hooks, &["commit", "-q", "-m", "hooks"]);
    let home = t.root().join("pre-commit-home");
    let try_repo = || {
        Command::new("pre-commit")
            .args(["try-repo", hooks.to_str().unwrap(), "keytrail", "--verbose"])
            .current_dir(&repo)
            .env("PATH", path_with_keytrail())
            .env("PRE_COMMIT_HOME", &home)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("NO_COLOR", "1")
            .output()
            .expect("run pre-commit")
    };
    let pat = fake::github_pat();
    t.write("work/app.env", &format!("GITHUB_TOKEN={pat}\n"));
    git(&repo, &["add", "app.env"]);
    let out = try_repo();
    let all = text(&out);
    assert!(
        !out.status.success(),
        "a staged secret fails the hook: {all}"
    );
    assert!(all.contains("github.pat.classic"), "{all}");
    assert!(!all.contains(&pat), "the secret is masked: {all}");

    t.write("work/app.env", "GITHUB_TOKEN=${GITHUB_TOKEN}\n");
    git(&repo, &["add", "app.env"]);
    let out = try_repo();
    assert!(
        out.status.success(),
        "clean staged changes pass: {}",
        text(&out)
    );
}

/// `${{ inputs.NAME }}` and `${{ steps.ID.outputs.NAME }}` of a composite
/// action, the two expression forms `action.yml` uses in `env` and `with`.
fn expand(
    value: &str,
    inputs: &HashMap<String, String>,
    outputs: &HashMap<String, String>,
) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(i) = rest.find("${{") {
        out.push_str(&rest[..i]);
        let end = rest[i..].find("}}").expect("closed expression") + i;
        let expr = rest[i + 3..end].trim();
        let v = if let Some(name) = expr.strip_prefix("inputs.") {
            inputs[name].clone()
        } else if let Some(path) = expr.strip_prefix("steps.") {
            let (id, name) = path.split_once(".outputs.").expect("steps.ID.outputs.NAME");
            outputs[&format!("{id}.{name}")].clone()
        } else {
            panic!("unexpected expression `{expr}`")
        };
        out.push_str(&v);
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

/// What [`run_action`] saw: each shell step's exit code by name, the step
/// outputs (`ID.NAME`), and the upload step's `with:` (expanded).
type ActionRun = (
    Vec<(String, i32)>,
    HashMap<String, String>,
    HashMap<String, String>,
);

/// Run the action's shell steps as the runner would, with `overrides` on
/// the input defaults. Returns the exit code of each shell step by name,
/// the step outputs, and the `with:` of the upload step (expanded).
fn run_action(repo: &Path, overrides: &[(&str, &str)]) -> ActionRun {
    let action: Yaml =
        serde_yaml_ng::from_str(&std::fs::read_to_string(repo_root().join("action.yml")).unwrap())
            .unwrap();
    let mut inputs: HashMap<String, String> = action["inputs"]
        .as_mapping()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            let default = match &v["default"] {
                Yaml::String(s) => s.clone(),
                other => panic!("input default {other:?}"),
            };
            (k.as_str().unwrap().to_string(), default)
        })
        .collect();
    for (k, v) in overrides {
        assert!(inputs.contains_key(*k), "no input {k}");
        inputs.insert(k.to_string(), v.to_string());
    }
    let mut outputs = HashMap::new();
    let mut codes = Vec::new();
    let mut upload = HashMap::new();
    let github_output = repo.join("github-output");
    for step in action["runs"]["steps"].as_sequence().unwrap() {
        let name = step["name"].as_str().unwrap().to_string();
        if let Some(uses) = step["uses"].as_str() {
            assert!(
                uses.starts_with("github/codeql-action/upload-sarif@"),
                "{uses}"
            );
            for (k, v) in step["with"].as_mapping().unwrap() {
                upload.insert(
                    k.as_str().unwrap().to_string(),
                    expand(v.as_str().unwrap(), &inputs, &outputs),
                );
            }
            continue;
        }
        assert_eq!(step["shell"].as_str(), Some("bash"), "{name}");
        let script = step["run"].as_str().unwrap();
        assert!(
            !script.contains("${{"),
            "{name}: inputs reach scripts through env only"
        );
        std::fs::write(&github_output, "").unwrap();
        let mut c = Command::new("bash");
        c.args(["--noprofile", "--norc", "-eo", "pipefail", "-c", script])
            .current_dir(repo)
            .env("PATH", path_with_keytrail())
            .env("GITHUB_OUTPUT", &github_output)
            .env("GITHUB_ACTION_PATH", repo_root())
            .env("GITHUB_WORKSPACE", repo)
            .env("NO_COLOR", "1");
        if let Some(env) = step["env"].as_mapping() {
            for (k, v) in env {
                c.env(
                    k.as_str().unwrap(),
                    expand(v.as_str().unwrap(), &inputs, &outputs),
                );
            }
        }
        let out = c.output().unwrap();
        codes.push((name.clone(), out.status.code().unwrap_or(-1)));
        if let Some(id) = step["id"].as_str() {
            for line in std::fs::read_to_string(&github_output).unwrap().lines() {
                let (k, v) = line.split_once('=').unwrap();
                outputs.insert(format!("{id}.{k}"), v.to_string());
            }
        }
    }
    (codes, outputs, upload)
}

#[test]
fn github_action_scans_uploads_and_gates() {
    let t = CliTest::new();
    let (ok, out) = check_schema("vendor.github-actions", &repo_root().join("action.yml"));
    assert!(ok, "{out}");
    let repo = t.root().join("work");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["-c", "init.defaultBranch=main", "init", "-q"]);
    let pat = fake::github_pat();
    t.write("work/app.env", &format!("GITHUB_TOKEN={pat}\n"));
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "add"]);

    let (codes, outputs, upload) = run_action(&repo, &[("category", "secrets-main")]);
    let code = |step: &str| codes.iter().find(|(n, _)| n == step).unwrap().1;
    assert_eq!(
        code("Install keytrail"),
        0,
        "keytrail already on PATH: no build"
    );
    assert_eq!(
        code("Scan"),
        0,
        "the scan step records its code and continues"
    );
    assert_eq!(outputs["scan.exit-code"], "1");
    assert_eq!(code("Gate on findings"), 1, "findings fail the action");
    assert_eq!(upload["category"], "secrets-main");
    let sarif: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo.join(&upload["sarif_file"])).unwrap())
            .unwrap();
    assert_eq!(sarif["runs"][0]["automationDetails"]["id"], "secrets-main/");
    assert_eq!(
        sarif["runs"][0]["results"][0]["ruleId"],
        "github.pat.classic"
    );

    let (codes, _, _) = run_action(&repo, &[("fail-on-findings", "false")]);
    assert!(codes.iter().all(|(_, c)| *c == 0), "{codes:?}");
    // Extra flags pass through: a disabled rule finds nothing.
    let (codes, outputs, _) = run_action(&repo, &[("args", "--disable-rule github.*")]);
    assert_eq!(outputs["scan.exit-code"], "0", "{codes:?}");
}

/// Builds the image and scans a directory mounted into it. Needs a docker
/// daemon, so it runs only on request:
/// `cargo test -p keytrail-cli --test cli integrations::docker -- --ignored`.
#[test]
#[ignore = "needs a docker daemon: cargo test -p keytrail-cli --test cli integrations::docker -- --ignored"]
fn docker_image_builds_and_scans() {
    require("docker", "install docker and start its daemon");
    let info = Command::new("docker").arg("info").output().unwrap();
    assert!(
        info.status.success(),
        "the docker daemon is not reachable: {}",
        text(&info)
    );
    let tag = "keytrail-test:latest";
    let build = Command::new("docker")
        .args(["build", "-t", tag])
        .arg(repo_root())
        .output()
        .unwrap();
    assert!(build.status.success(), "docker build: {}", text(&build));
    let t = CliTest::new();
    let pat = fake::github_pat();
    t.write("app.env", &format!("GITHUB_TOKEN={pat}\n"));
    let run = Command::new("docker")
        .args(["run", "--rm", "-v"])
        .arg(format!("{}:/scan:ro", t.root().display()))
        .args([tag, "scan", "--format", "json", "."])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1), "{}", text(&run));
    let v: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(v["findings"][0]["rule_id"], "github.pat.classic");
    assert!(!text(&run).contains(&pat));
}

//! GitHub Actions: workflows (`.github/workflows/*.yml`) and composite
//! actions (`action.yml`).
//!
//! Secret references are `${{ secrets.NAME }}` (and `secrets['NAME']`,
//! `toJSON(secrets)`), plus environment variables whose value is one (at
//! workflow, job or step level), used as `$NAME`, `${NAME}`, `$env:NAME`
//! or `${{ env.NAME }}`. In composite actions, inputs with secret-looking
//! names (`token`, `api-key`, `password`) count as secrets.

use super::shell::{self, ScriptLine, SecretUse};
use super::yaml::Node;
use super::*;
use regex::Regex;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

static EXPR: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\$\{\{(.*?)\}\}").expect("expression regex"));
static SECRET_REF: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"\bsecrets\s*(?:\.\s*([A-Za-z_][A-Za-z0-9_-]*)|\[\s*['"]([^'"]+)['"]\s*\])|\btojson\(\s*secrets\s*\)"#)
        .expect("secret ref regex")
});
static INPUT_REF: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\binputs\.([A-Za-z_][A-Za-z0-9_-]*)").expect("input ref regex"));
static ENV_EXPR_REF: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\benv\.([A-Za-z_][A-Za-z0-9_]*)").expect("env ref regex"));
static SHELL_VAR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?|\$env:([A-Za-z_][A-Za-z0-9_]*)|%([A-Za-z_][A-Za-z0-9_]*)%")
        .expect("shell var regex")
});
static UNTRUSTED_REF: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"github\.event\.pull_request\.head\.(?:sha|ref|repo)|github\.head_ref|github\.event\.workflow_run\.head_(?:sha|branch|repository)|refs/pull/")
        .expect("untrusted ref regex")
});
static UNTRUSTED_RUN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\bgh\s+pr\s+checkout\b|\bgit\s+fetch\b.*\bpull/|\bgit\s+(?:checkout|switch)\b.*(?:github\.event\.pull_request\.head|github\.head_ref|workflow_run\.head)")
        .expect("untrusted run regex")
});

/// Secret names referenced by `${{ … }}` expressions in `text` (and
/// secret-named `inputs.X` in composite actions).
pub fn expression_secrets(text: &str, inputs_are_secrets: bool) -> Vec<String> {
    let mut out = Vec::new();
    for e in EXPR.captures_iter(text) {
        let inner = e[1].to_ascii_lowercase();
        let original = &e[1];
        for c in SECRET_REF.captures_iter(&inner) {
            let name = match (c.get(1), c.get(2)) {
                (Some(m), _) | (None, Some(m)) => {
                    original.get(m.range()).unwrap_or(m.as_str()).to_string()
                }
                _ => "*".to_string(),
            };
            if !out.contains(&name) {
                out.push(name);
            }
        }
        if inputs_are_secrets {
            for c in INPUT_REF.captures_iter(original) {
                if is_secret_name(&c[1].replace('-', "_")) {
                    let name = format!("inputs.{}", &c[1]);
                    if !out.contains(&name) {
                        out.push(name);
                    }
                }
            }
        }
    }
    out
}

/// Env var names whose value (in this mapping) holds a secret reference.
fn secret_env(env: Option<&Node>, inputs_are_secrets: bool, into: &mut BTreeSet<String>) {
    let Some(env) = env else { return };
    for (k, v) in env.entries() {
        if let (Some(name), Some(val)) = (k.as_str(), v.as_str())
            && !expression_secrets(val, inputs_are_secrets).is_empty()
        {
            into.insert(name.to_string());
        }
    }
}

/// Secret references in a run line: expressions plus variables that hold secrets.
fn line_refs(text: &str, env: &BTreeSet<String>, inputs_are_secrets: bool) -> Vec<String> {
    let mut out = expression_secrets(text, inputs_are_secrets);
    for e in EXPR.captures_iter(text) {
        for c in ENV_EXPR_REF.captures_iter(&e[1]) {
            if env.contains(&c[1]) && !out.contains(&c[1].to_string()) {
                out.push(c[1].to_string());
            }
        }
    }
    let outside = EXPR.replace_all(text, "");
    for c in SHELL_VAR.captures_iter(&outside) {
        let name = c
            .get(1)
            .or_else(|| c.get(2))
            .or_else(|| c.get(3))
            .map(|m| m.as_str())
            .unwrap_or("");
        if env.contains(name) && !out.iter().any(|o| o == name) {
            out.push(name.to_string());
        }
    }
    out
}

/// Every `${{ secrets.X }}` under `node`: (name, line, column).
fn secret_refs_in(node: &Node) -> Vec<(String, u64, u64)> {
    let mut out = Vec::new();
    for s in node.scalars() {
        let Some(text) = s.as_str() else { continue };
        if !text.contains("secrets") {
            continue;
        }
        for (i, l) in text.lines().enumerate() {
            for name in expression_secrets(l, false) {
                let line = if s.block { s.text_line(i) } else { s.line };
                out.push((name, line, s.column));
            }
        }
    }
    out
}

fn triggers(root: &Node) -> Vec<String> {
    let on = root.get("on").or_else(|| root.get("true"));
    let Some(on) = on else { return Vec::new() };
    match &on.value {
        yaml::Value::Scalar(s) => vec![s.clone()],
        yaml::Value::Seq(items) => items
            .iter()
            .filter_map(|i| i.as_str())
            .map(String::from)
            .collect(),
        yaml::Value::Map(_) => on
            .entries()
            .iter()
            .filter_map(|(k, _)| k.as_str())
            .map(String::from)
            .collect(),
    }
}

/// Audit one workflow or composite action file.
pub fn audit(ctx: &FileCtx<'_>, kind: CiFileKind, diags: &mut Vec<Diagnostic>) -> Vec<CiFinding> {
    let mut out = ctx.plaintext_credentials();
    let Some(docs) = parse_or_diagnose(ctx.path, ctx.text, diags) else {
        return out;
    };
    let Some(root) = docs.first().filter(|d| d.as_map().is_some()) else {
        diags.push(Diagnostic::skip(
            "not_a_workflow",
            ctx.path,
            "not a YAML mapping; skipped",
        ));
        return out;
    };
    if root.get("jobs").is_some() {
        workflow(ctx, root, &mut out);
    } else if let Some(runs) = root.get("runs") {
        if kind == CiFileKind::GithubWorkflow && root.get("on").is_none() {
            // An action.yml under a workflows directory: still an action.
        }
        composite_action(ctx, runs, &mut out);
    } else if kind == CiFileKind::GithubWorkflow {
        diags.push(Diagnostic::skip(
            "not_a_workflow",
            ctx.path,
            "no `jobs:` key; not a GitHub Actions workflow",
        ));
    }
    out
}

/// Per-job facts gathered for cross-job checks.
struct JobInfo {
    environment: Option<String>,
    secret_refs: Vec<(String, u64, u64)>,
}

fn workflow(ctx: &FileCtx<'_>, root: &Node, out: &mut Vec<CiFinding>) {
    let trig = triggers(root);
    let privileged: Vec<&str> = trig
        .iter()
        .map(String::as_str)
        .filter(|t| *t == "pull_request_target" || *t == "workflow_run")
        .collect();
    let top_perm = root.get_entry("permissions");
    if let Some((k, v)) = top_perm {
        write_all(ctx, k, v, "workflow", out);
    }
    let mut wf_env = BTreeSet::new();
    secret_env(root.get("env"), false, &mut wf_env);
    let wf_env_secrets = root.get("env").map(secret_refs_in).unwrap_or_default();
    long_lived_env(ctx, root.get("env"), out);
    let Some(jobs) = root.get("jobs") else { return };
    let mut infos: Vec<JobInfo> = Vec::new();
    for (jk, job) in jobs.entries() {
        let id = jk.as_str().unwrap_or("");
        if job.as_map().is_none() {
            continue;
        }
        let name = job.get("name").and_then(Node::as_str).unwrap_or("");
        let job_perm = job.get_entry("permissions");
        if let Some((k, v)) = job_perm {
            write_all(ctx, k, v, &format!("job `{id}`"), out);
        }
        if top_perm.is_none() && job_perm.is_none() {
            out.push(ctx.finding(
                PERMISSIONS_MISSING,
                jk.line,
                jk.column,
                format!("job `{id}` runs with the repository's default GITHUB_TOKEN permissions (no `permissions:` in the workflow or the job)"),
                id,
            ));
        }
        let mut env = wf_env.clone();
        secret_env(job.get("env"), false, &mut env);
        long_lived_env(ctx, job.get("env"), out);
        let environment = job.get("environment").and_then(|e| {
            e.as_str()
                .or_else(|| e.get("name").and_then(Node::as_str))
                .map(String::from)
        });
        // Reusable workflow call.
        if let Some(u) = job.get("uses") {
            pin_check(ctx, u, out);
        }
        let steps: Vec<&Node> = job
            .get("steps")
            .and_then(Node::as_seq)
            .map(|s| s.iter().collect())
            .unwrap_or_default();
        let mut written: Vec<(String, u64)> = Vec::new();
        let mut deploy_cmd = false;
        let mut untrusted: Option<(u64, u64, String)> = None;
        for step in &steps {
            let mut step_env = env.clone();
            secret_env(step.get("env"), false, &mut step_env);
            long_lived_env(ctx, step.get("env"), out);
            if let Some(u) = step.get("uses") {
                let spec = u.as_str().unwrap_or("");
                let lower = spec.to_ascii_lowercase();
                pin_check(ctx, u, out);
                cloud_login_action(ctx, &lower, step, out);
                if lower.starts_with("actions/checkout@")
                    && let Some(with) = step.get("with")
                {
                    for key in ["ref", "repository"] {
                        if let Some(v) = with.get(key)
                            && let Some(t) = v.as_str()
                            && UNTRUSTED_REF.is_match(t)
                        {
                            untrusted.get_or_insert((
                                v.line,
                                v.column,
                                format!("actions/checkout with {key}: {}", t.trim()),
                            ));
                        }
                    }
                }
                if lower.starts_with("actions/upload-artifact@") {
                    artifact_check(
                        ctx,
                        step.get("with").and_then(|w| w.get("path")),
                        &written,
                        out,
                    );
                }
                if DEPLOY_ACTIONS.iter().any(|d| lower.starts_with(d)) {
                    deploy_cmd = true;
                }
            }
            if let Some(run) = step.get("run") {
                let lines = shell::script_lines(run);
                for l in &lines {
                    if is_deploy_command(&l.text) {
                        deploy_cmd = true;
                    }
                    if UNTRUSTED_RUN.is_match(&l.text) {
                        untrusted.get_or_insert((l.line, 1, format!("`{}`", l.text.trim())));
                    }
                    if let Some(what) = shell::static_cloud_login(&l.text) {
                        out.push(ctx.finding(
                            LONG_LIVED_CLOUD_KEY,
                            l.line,
                            1,
                            format!("{what}; use OIDC federation instead"),
                            &format!("{id}:{}", l.text.trim()),
                        ));
                    }
                }
                script_uses(
                    ctx,
                    &lines,
                    &|t| line_refs(t, &step_env, false),
                    id,
                    &mut written,
                    out,
                );
            }
        }
        let mut secret_refs = secret_refs_in(job);
        secret_refs.extend(wf_env_secrets.iter().cloned());
        if !privileged.is_empty()
            && let Some((line, col, what)) = untrusted
        {
            let inherit = job.get("secrets").and_then(Node::as_str) == Some("inherit");
            let named: BTreeSet<&str> = secret_refs
                .iter()
                .map(|(n, _, _)| n.as_str())
                .filter(|n| *n != "GITHUB_TOKEN")
                .collect();
            let mut f = ctx.finding(UNTRUSTED_CHECKOUT, line, col, String::new(), id);
            if named.is_empty() && !inherit {
                f.severity = Severity::High;
                f.message = format!(
                    "job `{id}` in a `{}` workflow checks out untrusted pull request code ({what}) while holding the GITHUB_TOKEN",
                    privileged.join("`/`")
                );
            } else {
                let list = if inherit {
                    "all (secrets: inherit)".to_string()
                } else {
                    named.into_iter().collect::<Vec<_>>().join(", ")
                };
                f.message = format!(
                    "job `{id}` in a `{}` workflow checks out untrusted pull request code ({what}) with secrets in reach: {list}",
                    privileged.join("`/`")
                );
            }
            out.push(f);
        }
        let label = format!("{id} {name}");
        let w = words(&label);
        let deploy_word = w
            .iter()
            .any(|x| matches!(x.as_str(), "deploy" | "deployment" | "rollout" | "promote"));
        let builds = w.iter().any(|x| {
            matches!(
                x.as_str(),
                "build" | "test" | "tests" | "lint" | "check" | "ci"
            )
        });
        let prod_deploy = (is_prod_name(&label) && !builds)
            || (!is_nonprod_name(&label) && (deploy_word || deploy_cmd));
        if environment.is_none() && job.get("uses").is_none() && prod_deploy {
            out.push(ctx.finding(
                DEPLOY_WITHOUT_ENVIRONMENT,
                jk.line,
                jk.column,
                format!("job `{id}` deploys{} without an `environment:`, so no protection rule can gate it", if is_prod_name(&label) { " to production" } else { "" }),
                id,
            ));
        }
        infos.push(JobInfo {
            environment,
            secret_refs,
        });
    }
    shared_secrets(ctx, &infos, out);
}

/// Actions that deploy.
const DEPLOY_ACTIONS: &[&str] = &[
    "aws-actions/amazon-ecs-deploy-task-definition@",
    "azure/webapps-deploy@",
    "azure/functions-action@",
    "azure/k8s-deploy@",
    "google-github-actions/deploy-cloudrun@",
    "google-github-actions/deploy-appengine@",
    "google-github-actions/deploy-cloud-functions@",
    "amondnet/vercel-action@",
    "cloudflare/wrangler-action@",
    "peaceiris/actions-gh-pages@",
    "superfly/flyctl-actions@",
];

fn write_all(ctx: &FileCtx<'_>, k: &Node, v: &Node, scope: &str, out: &mut Vec<CiFinding>) {
    if v.as_str() == Some("write-all") {
        out.push(ctx.finding(
            PERMISSIONS_WRITE_ALL,
            k.line,
            k.column,
            format!("{scope} grants the GITHUB_TOKEN `write-all`"),
            scope,
        ));
    }
}

fn pin_check(ctx: &FileCtx<'_>, u: &Node, out: &mut Vec<CiFinding>) {
    let Some(spec) = u.as_str().map(str::trim) else {
        return;
    };
    if spec.starts_with("./") || spec.starts_with(".\\") {
        return;
    }
    if let Some(image) = spec.strip_prefix("docker://") {
        if !image.contains("@sha256:") {
            out.push(ctx.finding(
                UNPINNED_ACTION,
                u.line,
                u.column,
                format!("container image `{image}` is referenced by tag, not by digest"),
                spec,
            ));
        }
        return;
    }
    let (name, r#ref) = spec.split_once('@').unwrap_or((spec, ""));
    if is_full_sha(r#ref) {
        return;
    }
    let owner = name.split('/').next().unwrap_or("").to_ascii_lowercase();
    let id = if owner == "actions" || owner == "github" {
        UNPINNED_FIRST_PARTY_ACTION
    } else {
        UNPINNED_ACTION
    };
    let how = if r#ref.is_empty() {
        "has no version".to_string()
    } else {
        format!("is pinned to `{ref}`, which can move", ref = r#ref)
    };
    out.push(ctx.finding(
        id,
        u.line,
        u.column,
        format!("`{name}` {how}; pin a full commit SHA"),
        spec,
    ));
}

fn cloud_login_action(ctx: &FileCtx<'_>, uses: &str, step: &Node, out: &mut Vec<CiFinding>) {
    let Some(with) = step.get("with") else { return };
    let (keys, what): (&[&str], &str) = if uses
        .starts_with("aws-actions/configure-aws-credentials@")
    {
        (
            &["aws-secret-access-key", "aws-access-key-id"],
            "aws-actions/configure-aws-credentials with a static IAM access key instead of `role-to-assume` via OIDC",
        )
    } else if uses.starts_with("google-github-actions/auth@") {
        (
            &["credentials_json"],
            "google-github-actions/auth with a service-account key (`credentials_json`) instead of `workload_identity_provider`",
        )
    } else if uses.starts_with("azure/login@") {
        (
            &["creds", "client-secret", "client_secret"],
            "azure/login with a client secret (`creds`) instead of an OIDC federated credential",
        )
    } else {
        return;
    };
    if let Some(key) = keys
        .iter()
        .find_map(|k| with.get_entry(k).map(|(kn, _)| kn))
    {
        let mut msg = what.to_string();
        if uses.starts_with("aws-actions/") && with.get("role-to-assume").is_some() {
            msg.push_str(" (the role is assumed from a long-lived key)");
        }
        out.push(ctx.finding(LONG_LIVED_CLOUD_KEY, key.line, key.column, msg, uses));
    }
}

/// Env vars that hand a long-lived cloud key to tools.
const CLOUD_KEY_ENV: &[&str] = &[
    "AWS_SECRET_ACCESS_KEY",
    "AZURE_CLIENT_SECRET",
    "ARM_CLIENT_SECRET",
    "GOOGLE_CREDENTIALS",
    "GOOGLE_APPLICATION_CREDENTIALS_JSON",
    "GCP_SA_KEY",
    "GCLOUD_SERVICE_KEY",
];

fn long_lived_env(ctx: &FileCtx<'_>, env: Option<&Node>, out: &mut Vec<CiFinding>) {
    let Some(env) = env else { return };
    for (k, v) in env.entries() {
        let (Some(name), Some(val)) = (k.as_str(), v.as_str()) else {
            continue;
        };
        if CLOUD_KEY_ENV.contains(&name) && !expression_secrets(val, true).is_empty() {
            out.push(ctx.finding(
                LONG_LIVED_CLOUD_KEY,
                k.line,
                k.column,
                format!("`{name}` hands a long-lived cloud key from a secret to the job; use OIDC federation instead"),
                name,
            ));
        }
    }
}

/// Echo and file-write findings for one script; records written files.
pub(crate) fn script_uses(
    ctx: &FileCtx<'_>,
    lines: &[ScriptLine],
    refs: &dyn Fn(&str) -> Vec<String>,
    job: &str,
    written: &mut Vec<(String, u64)>,
    out: &mut Vec<CiFinding>,
) {
    for u in shell::secret_uses(lines, refs) {
        match u {
            SecretUse::Echoed { refs, line } => out.push(ctx.finding(
                SECRET_ECHOED,
                line,
                1,
                format!("prints {} to the job log", names(&refs)),
                &format!("{job}:{}", refs.join(",")),
            )),
            SecretUse::Written { refs, target, line } => {
                let mut f = ctx.finding(
                    SECRET_WRITTEN,
                    line,
                    1,
                    format!("writes {} to `{target}`", names(&refs)),
                    &format!("{job}:{}:{target}", refs.join(",")),
                );
                if target.to_ascii_uppercase().contains("GITHUB_STEP_SUMMARY") {
                    f.severity = Severity::High;
                    f.message
                        .push_str(" (the job summary is shown to everyone who can read the run)");
                }
                out.push(f);
                written.push((target, line));
            }
        }
    }
}

fn names(refs: &[String]) -> String {
    let shown: Vec<String> = refs
        .iter()
        .map(|r| {
            if r == "*" {
                "all secrets (toJSON(secrets))".to_string()
            } else {
                format!("`{r}`")
            }
        })
        .collect();
    let s = if refs.len() == 1 { "secret" } else { "secrets" };
    format!("{s} {}", shown.join(", "))
}

/// Whether an artifact path entry covers a written file.
pub(crate) fn artifact_covers(entry: &str, target: &str) -> bool {
    let norm = |s: &str| {
        let s = s.trim().trim_matches(|c| c == '"' || c == '\'');
        let s = s
            .strip_prefix("${{ github.workspace }}/")
            .or_else(|| s.strip_prefix("$GITHUB_WORKSPACE/"))
            .or_else(|| s.strip_prefix("${GITHUB_WORKSPACE}/"))
            .or_else(|| s.strip_prefix("$CI_PROJECT_DIR/"))
            .or_else(|| s.strip_prefix("${CI_PROJECT_DIR}/"))
            .unwrap_or(s);
        let s = s.strip_prefix("./").unwrap_or(s);
        s.trim_end_matches('/').to_string()
    };
    let (e, t) = (norm(entry), norm(target));
    if e.is_empty() || e.starts_with('!') || t.is_empty() {
        return false;
    }
    let relative = !(t.starts_with('/') || t.starts_with('~') || t.starts_with('$'));
    if e == t || t.starts_with(&format!("{e}/")) {
        return true;
    }
    if matches!(e.as_str(), "." | "*" | "**" | "**/*") {
        return relative;
    }
    if e.contains('*') || e.contains('?') {
        let mut re = String::from("^");
        let mut chars = e.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '*' if chars.peek() == Some(&'*') => {
                    chars.next();
                    re.push_str(".*");
                }
                '*' => re.push_str("[^/]*"),
                '?' => re.push_str("[^/]"),
                c => re.push_str(&regex::escape(&c.to_string())),
            }
        }
        re.push_str("(?:/.*)?$");
        return Regex::new(&re).is_ok_and(|r| r.is_match(&t));
    }
    false
}

pub(crate) fn artifact_check(
    ctx: &FileCtx<'_>,
    paths: Option<&Node>,
    written: &[(String, u64)],
    out: &mut Vec<CiFinding>,
) {
    let Some(paths) = paths else { return };
    let entries: Vec<(String, u64, u64)> = match paths.as_seq() {
        Some(items) => items
            .iter()
            .filter_map(|i| i.as_str().map(|s| (s.to_string(), i.line, i.column)))
            .collect(),
        None => paths
            .as_str()
            .map(|s| {
                s.lines()
                    .enumerate()
                    .map(|(i, l)| {
                        (
                            l.to_string(),
                            if paths.block {
                                paths.text_line(i)
                            } else {
                                paths.line
                            },
                            paths.column,
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
    };
    for (entry, line, col) in entries {
        for (target, wline) in written {
            if artifact_covers(&entry, target) {
                out.push(ctx.finding(
                    SECRET_IN_ARTIFACT,
                    line,
                    col,
                    format!("artifact path `{}` includes `{target}`, which line {wline} writes a secret into", entry.trim()),
                    &format!("{}:{target}", entry.trim()),
                ));
            }
        }
    }
}

fn shared_secrets(ctx: &FileCtx<'_>, infos: &[JobInfo], out: &mut Vec<CiFinding>) {
    let mut by_secret: BTreeMap<&str, (BTreeSet<&str>, u64, u64)> = BTreeMap::new();
    for info in infos {
        let Some(env) = info.environment.as_deref() else {
            continue;
        };
        if env.contains("${{") {
            continue;
        }
        for (name, line, col) in &info.secret_refs {
            if name == "GITHUB_TOKEN" || name == "*" {
                continue;
            }
            let e = by_secret
                .entry(name)
                .or_insert((BTreeSet::new(), *line, *col));
            e.0.insert(env);
        }
    }
    for (name, (envs, line, col)) in by_secret {
        if envs.len() >= 2 {
            out.push(ctx.finding(
                SECRET_SHARED_ACROSS_ENVIRONMENTS,
                line,
                col,
                format!(
                    "secret `{name}` is used by jobs for environments {}; unless it is an environment secret in each, they share one credential",
                    envs.into_iter().map(|e| format!("`{e}`")).collect::<Vec<_>>().join(", ")
                ),
                name,
            ));
        }
    }
}

fn composite_action(ctx: &FileCtx<'_>, runs: &Node, out: &mut Vec<CiFinding>) {
    let Some(steps) = runs.get("steps").and_then(Node::as_seq) else {
        return;
    };
    let mut written = Vec::new();
    for step in steps {
        let mut env = BTreeSet::new();
        secret_env(step.get("env"), true, &mut env);
        long_lived_env(ctx, step.get("env"), out);
        if let Some(u) = step.get("uses") {
            let lower = u.as_str().unwrap_or("").to_ascii_lowercase();
            pin_check(ctx, u, out);
            cloud_login_action(ctx, &lower, step, out);
            if lower.starts_with("actions/upload-artifact@") {
                artifact_check(
                    ctx,
                    step.get("with").and_then(|w| w.get("path")),
                    &written,
                    out,
                );
            }
        }
        if let Some(run) = step.get("run") {
            let lines = shell::script_lines(run);
            for l in &lines {
                if let Some(what) = shell::static_cloud_login(&l.text) {
                    out.push(ctx.finding(
                        LONG_LIVED_CLOUD_KEY,
                        l.line,
                        1,
                        format!("{what}; use OIDC federation instead"),
                        l.text.trim(),
                    ));
                }
            }
            script_uses(
                ctx,
                &lines,
                &|t| line_refs(t, &env, true),
                "action",
                &mut written,
                out,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expression_references() {
        assert_eq!(
            expression_secrets(
                "echo ${{ secrets.NPM_TOKEN }} ${{ secrets['Other'] }}",
                false
            ),
            vec!["NPM_TOKEN".to_string(), "Other".to_string()]
        );
        assert_eq!(
            expression_secrets("${{ toJSON(secrets) }}", false),
            vec!["*".to_string()]
        );
        assert!(expression_secrets("secrets.X outside an expression", false).is_empty());
        assert_eq!(
            expression_secrets("${{ inputs.api-token }} ${{ inputs.name }}", true),
            vec!["inputs.api-token".to_string()]
        );
    }

    #[test]
    fn artifact_path_matching() {
        assert!(artifact_covers("dist/", "dist/creds.json"));
        assert!(artifact_covers("./creds.txt", "creds.txt"));
        assert!(artifact_covers("**/*.json", "out/a.json"));
        assert!(artifact_covers(".", "creds.txt"));
        assert!(!artifact_covers(".", "~/.npmrc"));
        assert!(!artifact_covers("dist/", "build/creds.json"));
        assert!(!artifact_covers("!dist/creds.json", "dist/creds.json"));
    }
}

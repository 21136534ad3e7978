//! GitLab CI: `.gitlab-ci.yml` and the local files it includes
//! (`include: 'path'`, `include: [{local: path}]`, wildcards such as
//! `ci/*.yml` and `**/*.yml`), resolved relative to the repository root and
//! never outside it (at most 150 included files).
//!
//! GitLab has no secret-reference syntax: CI/CD variables are plain
//! `$NAME`s. A variable counts as a secret when its name says so
//! (`*TOKEN*`, `*SECRET*`, `*PASSWORD*`, `*API_KEY*` ...; see
//! `is_secret_name`), which includes GitLab's own `CI_JOB_TOKEN` and
//! `CI_REGISTRY_PASSWORD`. Jobs inherit through `extends:` (and `<<:`
//! merges, resolved by the YAML reader) and `default:`.

use super::github::{artifact_check, script_uses};
use super::shell;
use super::yaml::Node;
use super::*;
use regex::Regex;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

/// Top-level keys that are not jobs.
const RESERVED: &[&str] = &[
    "default",
    "include",
    "stages",
    "variables",
    "workflow",
    "image",
    "services",
    "cache",
    "before_script",
    "after_script",
    "types",
    "spec",
];

static VAR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?").expect("gitlab variable regex")
});

/// Secret-named variables referenced in `text`.
pub fn var_refs(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for c in VAR.captures_iter(text) {
        let n = c[1].to_string();
        if is_secret_name(&n) && !out.contains(&n) {
            out.push(n);
        }
    }
    out
}

/// One parsed file of the pipeline.
struct Doc {
    path: String,
    text: String,
    root: Node,
}

/// Audit a GitLab pipeline starting at its `.gitlab-ci.yml`.
#[allow(clippy::too_many_arguments)]
pub fn audit(
    shown: &str,
    text: &str,
    repo_root: &Path,
    display_base: &Path,
    scanner: Option<&Scanner>,
    diags: &mut Vec<Diagnostic>,
    files: &mut Vec<String>,
) -> Vec<CiFinding> {
    let mut out = Vec::new();
    let mut docs: Vec<Doc> = Vec::new();
    let mut queue: Vec<(String, String)> = vec![(shown.to_string(), text.to_string())];
    let mut seen: BTreeSet<String> = BTreeSet::new();
    seen.insert(shown.to_string());
    while let Some((path, text)) = queue.pop() {
        let ctx = FileCtx::new(&path, &text, scanner);
        out.extend(ctx.plaintext_credentials());
        let Some(parsed) = parse_or_diagnose(&path, &text, diags) else {
            continue;
        };
        let Some(root) = parsed.into_iter().find(|d| d.as_map().is_some()) else {
            continue;
        };
        // Local includes.
        if let Some(inc) = root.get("include") {
            for local in local_includes(inc) {
                let matched = match resolve_local(repo_root, &local) {
                    Ok(m) => m,
                    Err(why) => {
                        diags.push(
                            Diagnostic::error("include_refused", path.as_str(), why)
                                .at(Some(inc.line), Some(inc.column)),
                        );
                        continue;
                    }
                };
                if matched.is_empty() {
                    diags.push(
                        Diagnostic::error(
                            "include_missing",
                            path.as_str(),
                            format!("local include `{local}` matches no file"),
                        )
                        .at(Some(inc.line), Some(inc.column)),
                    );
                }
                for file in matched {
                    let disp = file
                        .strip_prefix(display_base)
                        .unwrap_or(&file)
                        .display()
                        .to_string();
                    if seen.contains(&disp) {
                        continue;
                    }
                    if seen.len() > MAX_INCLUDED_FILES {
                        diags.push(
                            Diagnostic::error(
                                "include_refused",
                                path.as_str(),
                                format!(
                                    "more than {MAX_INCLUDED_FILES} included files: `{disp}` and the rest not read"
                                ),
                            )
                            .at(Some(inc.line), Some(inc.column)),
                        );
                        break;
                    }
                    seen.insert(disp.clone());
                    if let Some(t) = read_text(&file, &disp, diags) {
                        files.push(disp.clone());
                        queue.push((disp, t));
                    }
                }
            }
            unpinned_includes(&FileCtx::new(&path, &text, scanner), inc, &mut out);
        }
        docs.push(Doc { path, text, root });
    }
    // Every job and template across files, by name.
    let mut jobs: Vec<(usize, &Node, &Node)> = Vec::new();
    let mut by_name: BTreeMap<&str, &Node> = BTreeMap::new();
    for (di, d) in docs.iter().enumerate() {
        for (k, v) in d.root.entries() {
            let Some(name) = k.as_str() else { continue };
            if RESERVED.contains(&name) || v.as_map().is_none() {
                continue;
            }
            by_name.insert(name, v);
            jobs.push((di, k, v));
        }
    }
    let default = docs.iter().find_map(|d| d.root.get("default"));
    let global_vars = docs.iter().find_map(|d| d.root.get("variables"));
    let lookup = |job: &Node, key: &str| -> Option<Node> { inherited(job, key, &by_name, 0) };
    let mut env_secrets: BTreeMap<String, (BTreeSet<String>, usize, u64, u64)> = BTreeMap::new();
    for (di, k, job) in &jobs {
        let d = &docs[*di];
        let ctx = FileCtx::new(&d.path, &d.text, scanner);
        let name = k.as_str().unwrap_or("");
        let hidden = name.starts_with('.');
        // Scripts written in this job (inherited scripts are checked where written).
        let mut lines = Vec::new();
        for key in ["before_script", "script", "after_script"] {
            if let Some(s) = job.get(key) {
                lines.extend(shell::script_lines(s));
            }
        }
        let mut written = Vec::new();
        script_uses(&ctx, &lines, &|t| var_refs(t), name, &mut written, &mut out);
        if !written.is_empty()
            && let Some(art) = lookup(job, "artifacts")
        {
            artifact_check(&ctx, art.get("paths"), &written, &mut out);
        }
        let has_id_tokens = lookup(job, "id_tokens").is_some()
            || default.and_then(|d| d.get("id_tokens")).is_some();
        let all_lines: Vec<shell::ScriptLine> = ["before_script", "script", "after_script"]
            .iter()
            .filter_map(|key| {
                lookup(job, key).or_else(|| default.and_then(|d| d.get(key)).cloned())
            })
            .flat_map(|n| shell::script_lines(&n))
            .collect();
        let oidc_in_script = all_lines.iter().any(|l| {
            l.text.contains("assume-role-with-web-identity") || l.text.contains("--federated-token")
        });
        if !has_id_tokens && !oidc_in_script {
            for l in &lines {
                if let Some(what) = shell::static_cloud_login(&l.text) {
                    out.push(ctx.finding(
                        LONG_LIVED_CLOUD_KEY,
                        l.line,
                        1,
                        format!(
                            "job `{name}`: {what}; use `id_tokens:` with OIDC federation instead"
                        ),
                        &format!("{name}:{}", l.text.trim()),
                    ));
                }
            }
            if let Some(vars) = job.get("variables") {
                static_key_vars(&ctx, vars, name, &mut out);
            }
        }
        if hidden {
            continue;
        }
        let environment = lookup(job, "environment").and_then(|e| {
            e.as_str()
                .or_else(|| e.get("name").and_then(Node::as_str))
                .map(String::from)
        });
        let stage = lookup(job, "stage")
            .and_then(|s| s.as_str().map(String::from))
            .unwrap_or_default();
        let label = format!("{name} {stage}");
        let w = words(&label);
        let deploy_word = w
            .iter()
            .any(|x| matches!(x.as_str(), "deploy" | "deployment" | "rollout" | "promote"));
        let builds = w
            .iter()
            .any(|x| matches!(x.as_str(), "build" | "test" | "tests" | "lint" | "check"));
        let deploy_cmd = all_lines.iter().any(|l| is_deploy_command(&l.text));
        let prod_deploy = (is_prod_name(name) && !builds)
            || (!is_nonprod_name(&label) && (deploy_cmd || deploy_word && !builds));
        if environment.is_none() && prod_deploy && lookup(job, "trigger").is_none() {
            out.push(ctx.finding(
                DEPLOY_WITHOUT_ENVIRONMENT,
                k.line,
                k.column,
                format!("job `{name}` deploys without an `environment:`, so no protected environment can gate it"),
                name,
            ));
        }
        if let Some(env) = environment.filter(|e| !e.contains('$')) {
            let mut refs: Vec<(String, u64, u64)> = Vec::new();
            for l in &all_lines {
                for r in var_refs(&l.text) {
                    refs.push((r, l.line, 1));
                }
            }
            if let Some(vars) = job.get("variables") {
                for (vk, vv) in vars.entries() {
                    if let Some(t) = vv
                        .as_str()
                        .or_else(|| vv.get("value").and_then(Node::as_str))
                    {
                        for r in var_refs(t) {
                            refs.push((r, vk.line, vk.column));
                        }
                    }
                }
            }
            for (r, line, col) in refs {
                if r.starts_with("CI_") {
                    continue;
                }
                let e = env_secrets
                    .entry(r)
                    .or_insert((BTreeSet::new(), *di, line, col));
                e.0.insert(env.clone());
            }
        }
    }
    if let Some(vars) = global_vars
        && !docs.iter().any(|d| d.root.get("id_tokens").is_some())
        && default.and_then(|d| d.get("id_tokens")).is_none()
    {
        let d = docs
            .iter()
            .find(|d| d.root.get("variables").is_some())
            .expect("found above");
        static_key_vars(
            &FileCtx::new(&d.path, &d.text, scanner),
            vars,
            "(global)",
            &mut out,
        );
    }
    for (name, (envs, di, line, col)) in env_secrets {
        if envs.len() >= 2 {
            let d = &docs[di];
            let ctx = FileCtx::new(&d.path, &d.text, scanner);
            out.push(ctx.finding(
                SECRET_SHARED_ACROSS_ENVIRONMENTS,
                line,
                col,
                format!(
                    "variable `{name}` is used by jobs for environments {}; unless it is environment-scoped, they share one credential",
                    envs.iter().map(|e| format!("`{e}`")).collect::<Vec<_>>().join(", ")
                ),
                &name,
            ));
        }
    }
    out
}

/// `key` of `job`, through `extends:` (templates first-listed win over
/// later ones, the job's own keys win over all).
fn inherited(job: &Node, key: &str, by_name: &BTreeMap<&str, &Node>, depth: usize) -> Option<Node> {
    if let Some(v) = job.get(key) {
        return Some(v.clone());
    }
    if depth > 8 {
        return None;
    }
    let ext = job.get("extends")?;
    let parents: Vec<&str> = match ext.as_seq() {
        Some(items) => items.iter().filter_map(Node::as_str).collect(),
        None => ext.as_str().into_iter().collect(),
    };
    parents
        .iter()
        .rev()
        .filter_map(|p| by_name.get(p))
        .find_map(|p| inherited(p, key, by_name, depth + 1))
}

fn static_key_vars(ctx: &FileCtx<'_>, vars: &Node, job: &str, out: &mut Vec<CiFinding>) {
    for (k, v) in vars.entries() {
        let Some(name) = k.as_str() else { continue };
        let val = v
            .as_str()
            .or_else(|| v.get("value").and_then(Node::as_str))
            .unwrap_or("");
        if matches!(
            name,
            "AWS_SECRET_ACCESS_KEY"
                | "AWS_ACCESS_KEY_ID"
                | "ARM_CLIENT_SECRET"
                | "AZURE_CLIENT_SECRET"
                | "GOOGLE_CREDENTIALS"
                | "GOOGLE_APPLICATION_CREDENTIALS"
        ) && val.contains('$')
        {
            out.push(ctx.finding(
                LONG_LIVED_CLOUD_KEY,
                k.line,
                k.column,
                format!("job `{job}` sets `{name}` from a stored variable and has no `id_tokens:`; use OIDC federation instead"),
                &format!("{job}:{name}"),
            ));
        }
    }
}

/// Local include paths named by an `include:` value.
fn local_includes(inc: &Node) -> Vec<String> {
    let items: Vec<&Node> = match inc.as_seq() {
        Some(s) => s.iter().collect(),
        None => vec![inc],
    };
    let mut out = Vec::new();
    for i in items {
        if let Some(s) = i.as_str() {
            if !s.starts_with("http://") && !s.starts_with("https://") {
                out.push(s.to_string());
            }
        } else if let Some(l) = i.get("local").and_then(Node::as_str) {
            out.push(l.to_string());
        }
    }
    out
}

/// Most files one wildcard include may match, and most files a pipeline
/// may include in all (GitLab's own limit is 150 includes).
const MAX_INCLUDED_FILES: usize = 150;

/// Most directory entries looked at to resolve one wildcard include.
const MAX_INCLUDE_WALK: usize = 100_000;

/// Files under `root` matching the local include `spec`: a path relative to
/// the repository root (a leading `/` is the root too), or a glob (`*`
/// within one directory, `**` across directories, `?`, `[..]`, `{a,b}`),
/// as GitLab resolves `include: local:`. An include naming a path outside
/// the repository (`../x`, or a symlink whose target is outside) is
/// refused with the reason; a wildcard walk is bounded (entries looked at,
/// matches kept, depth) and skips `.git` and symlinks.
fn resolve_local(root: &Path, spec: &str) -> Result<Vec<PathBuf>, String> {
    let rel = spec.trim_start_matches('/');
    if Path::new(rel).components().any(|c| {
        !matches!(
            c,
            std::path::Component::Normal(_) | std::path::Component::CurDir
        )
    }) {
        return Err(format!(
            "local include `{spec}` leaves the repository: refused (local includes must stay inside it)"
        ));
    }
    let real_root = std::fs::canonicalize(root).map_err(|e| format!("repository root: {e}"))?;
    let inside = |p: &Path| std::fs::canonicalize(p).is_ok_and(|real| real.starts_with(&real_root));
    if !rel.contains(['*', '?', '[', '{']) {
        let p = root.join(rel);
        if !p.is_file() {
            return Ok(Vec::new());
        }
        if !inside(&p) {
            return Err(format!(
                "local include `{spec}` resolves outside the repository (a symbolic link): refused"
            ));
        }
        return Ok(vec![p]);
    }
    let glob = globset::GlobBuilder::new(rel)
        .literal_separator(true)
        .build()
        .map_err(|e| format!("local include `{spec}` is not a valid pattern: {e}"))?
        .compile_matcher();
    let mut out = Vec::new();
    let mut looked = 0usize;
    let mut stack = vec![(root.to_path_buf(), PathBuf::new(), 0usize)];
    while let Some((dir, rel_dir, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            looked += 1;
            if looked > MAX_INCLUDE_WALK {
                return Err(format!(
                    "local include `{spec}`: more than {MAX_INCLUDE_WALK} directory entries looked at; narrow the pattern"
                ));
            }
            let Ok(ft) = e.file_type() else { continue };
            let name = e.file_name();
            let rel_path = rel_dir.join(&name);
            if ft.is_dir() && name != ".git" && depth < 32 {
                stack.push((e.path(), rel_path, depth + 1));
            } else if ft.is_file() && glob.is_match(&rel_path) {
                out.push(e.path());
            }
        }
    }
    out.sort();
    if out.len() > MAX_INCLUDED_FILES {
        return Err(format!(
            "local include `{spec}` matches {} files, more than {MAX_INCLUDED_FILES}: refused",
            out.len()
        ));
    }
    Ok(out)
}

fn unpinned_includes(ctx: &FileCtx<'_>, inc: &Node, out: &mut Vec<CiFinding>) {
    let items: Vec<&Node> = match inc.as_seq() {
        Some(s) => s.iter().collect(),
        None => vec![inc],
    };
    for i in items {
        if let Some(s) = i.as_str() {
            if s.starts_with("http://") || s.starts_with("https://") {
                out.push(ctx.finding(
                    UNPINNED_INCLUDE,
                    i.line,
                    i.column,
                    format!("remote include `{s}` can change under the pipeline"),
                    s,
                ));
            }
            continue;
        }
        if let Some(r) = i.get("remote") {
            let s = r.as_str().unwrap_or("");
            if i.get("integrity").is_none() {
                out.push(ctx.finding(UNPINNED_INCLUDE, r.line, r.column, format!("remote include `{s}` has no `integrity:` hash and can change under the pipeline"), s));
            }
        }
        if let Some(p) = i.get("project") {
            let project = p.as_str().unwrap_or("");
            match i.get("ref") {
                Some(r) if r.as_str().is_some_and(is_full_sha) => {}
                Some(r) => out.push(ctx.finding(
                    UNPINNED_INCLUDE,
                    r.line,
                    r.column,
                    format!(
                        "include of project `{project}` follows `{}`, which can move",
                        r.as_str().unwrap_or("")
                    ),
                    project,
                )),
                None => out.push(ctx.finding(
                    UNPINNED_INCLUDE,
                    p.line,
                    p.column,
                    format!("include of project `{project}` follows its default branch"),
                    project,
                )),
            }
        }
        if let Some(c) = i.get("component") {
            let s = c.as_str().unwrap_or("");
            let version = s.rsplit_once('@').map(|(_, v)| v).unwrap_or("");
            if !is_full_sha(version) {
                out.push(ctx.finding(
                    UNPINNED_INCLUDE,
                    c.line,
                    c.column,
                    format!("component `{s}` is not pinned to a commit SHA"),
                    s,
                ));
            }
        }
    }
}

//! `ci-audit`: checks over CI configuration — GitHub Actions workflows
//! (`.github/workflows/*.yml`), composite actions (`action.yml`) and
//! GitLab CI (`.gitlab-ci.yml` and the local files it includes).
//!
//! Every check has a stable id, a severity and a remediation in one table,
//! [`CHECKS`]; the platform modules ([`github`], [`gitlab`]) produce
//! [`CiFinding`]s that name the check, the file and the line of the key or
//! script line concerned. Plaintext credentials come from the secret
//! [`Scanner`] run over each file's text. A file that is not valid YAML
//! yields a [`Diagnostic`] with its position; the other files are still
//! audited.
//!
//! [`encode`] writes findings as human text, JSON, JSONL and SARIF 2.1.0.

pub mod encode;
pub mod github;
pub mod gitlab;
pub mod shell;
pub mod yaml;

use keytrail_scan::Scanner;
use keytrail_types::{Diagnostic, Origin, Severity};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// One check: stable id, what it flags, how bad, and what to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Check {
    /// Stable id (`ci.unpinned-action`), used in output and SARIF rule ids.
    pub id: &'static str,
    /// Short title.
    pub title: &'static str,
    /// Default severity (some findings raise or lower it, and say why).
    pub severity: Severity,
    /// What it flags and why it matters.
    pub description: &'static str,
    /// How to fix it.
    pub remediation: &'static str,
}

/// Plaintext credential in a CI file.
pub const PLAINTEXT_CREDENTIAL: &str = "ci.plaintext-credential";
/// Long-lived cloud key where OIDC/workload identity exists.
pub const LONG_LIVED_CLOUD_KEY: &str = "ci.long-lived-cloud-key";
/// A secret printed to the job log.
pub const SECRET_ECHOED: &str = "ci.secret-echoed";
/// A secret written to a file.
pub const SECRET_WRITTEN: &str = "ci.secret-written-to-file";
/// A file holding a secret uploaded as an artifact.
pub const SECRET_IN_ARTIFACT: &str = "ci.secret-in-artifact";
/// Untrusted code checked out in a privileged trigger.
pub const UNTRUSTED_CHECKOUT: &str = "ci.untrusted-checkout";
/// No `permissions:` for the GITHUB_TOKEN.
pub const PERMISSIONS_MISSING: &str = "ci.permissions-missing";
/// `permissions: write-all`.
pub const PERMISSIONS_WRITE_ALL: &str = "ci.permissions-write-all";
/// A production deploy job without an environment.
pub const DEPLOY_WITHOUT_ENVIRONMENT: &str = "ci.deploy-without-environment";
/// One secret name used by jobs of several environments.
pub const SECRET_SHARED_ACROSS_ENVIRONMENTS: &str = "ci.secret-shared-across-environments";
/// A third-party action or image not pinned to a digest.
pub const UNPINNED_ACTION: &str = "ci.unpinned-action";
/// A first-party (`actions/*`, `github/*`) action not pinned to a commit.
pub const UNPINNED_FIRST_PARTY_ACTION: &str = "ci.unpinned-first-party-action";
/// A GitLab include of another project, component or URL not pinned to a commit.
pub const UNPINNED_INCLUDE: &str = "ci.unpinned-include";

/// Every check, in documentation order.
pub const CHECKS: &[Check] = &[
    Check {
        id: PLAINTEXT_CREDENTIAL,
        title: "Plaintext credential in CI configuration",
        severity: Severity::High,
        description: "A credential is written in the CI file itself, readable by everyone who can read the repository and kept in its history.",
        remediation: "Revoke the credential, then store the new one as an encrypted secret (GitHub: repository or environment secret; GitLab: masked and protected CI/CD variable) and reference it (`${{ secrets.NAME }}`, `$NAME`).",
    },
    Check {
        id: LONG_LIVED_CLOUD_KEY,
        title: "Long-lived cloud key where OIDC is available",
        severity: Severity::Medium,
        description: "A cloud login uses a static access key, service-account key or client secret although the CI system can federate short-lived credentials with OIDC. A stored key works from anywhere until someone rotates it.",
        remediation: "Use OIDC: AWS `role-to-assume` with `permissions: id-token: write` (GitLab: `id_tokens:` + `assume-role-with-web-identity`); Google `workload_identity_provider` + `service_account`; Azure `client-id`/`tenant-id`/`subscription-id` with a federated credential. Then delete the stored key.",
    },
    Check {
        id: SECRET_ECHOED,
        title: "Secret printed to the job log",
        severity: Severity::High,
        description: "A step prints a secret. Log masking only catches the exact value: any transformation (base64, URL-encoding, a substring, a JSON dump) leaks it to everyone who can read the logs.",
        remediation: "Do not print secrets. Pass them through environment variables or stdin (`--password-stdin`); if a derived value must appear, register it with `::add-mask::` first.",
    },
    Check {
        id: SECRET_WRITTEN,
        title: "Secret written to a file",
        severity: Severity::Low,
        description: "A step writes a secret to a file in the workspace. The file outlives the step: caches, artifacts, later steps and third-party actions can read it.",
        remediation: "Prefer tools that read the secret from the environment or stdin. If a file is needed, write it outside the workspace (`$RUNNER_TEMP`), restrict its mode (`umask 077`) and delete it in an `always()` cleanup step.",
    },
    Check {
        id: SECRET_IN_ARTIFACT,
        title: "File holding a secret uploaded as an artifact",
        severity: Severity::Critical,
        description: "A file that a step wrote a secret into is uploaded as a build artifact, which anyone with read access to the repository can download.",
        remediation: "Exclude the file from the artifact paths (or write it outside the uploaded directory), delete the uploaded artifacts, and rotate the secret.",
    },
    Check {
        id: UNTRUSTED_CHECKOUT,
        title: "Untrusted code checked out in a privileged workflow",
        severity: Severity::Critical,
        description: "A `pull_request_target` or `workflow_run` workflow runs with the base repository's secrets and a write token, and checks out the pull request's code. Any build script, test or action in that code runs with those secrets (a \"pwn request\").",
        remediation: "Run untrusted code in a `pull_request` workflow (no secrets), and pass results to a privileged `workflow_run` workflow as artifacts that are treated as data. If the checkout is needed, do not run anything from it and keep secrets out of that job.",
    },
    Check {
        id: PERMISSIONS_MISSING,
        title: "No permissions set for the GITHUB_TOKEN",
        severity: Severity::Low,
        description: "Neither the workflow nor the job sets `permissions:`, so the GITHUB_TOKEN gets the repository's default, which is read/write on many repositories and organisations.",
        remediation: "Add `permissions: contents: read` at the top of the workflow and grant more per job only where needed.",
    },
    Check {
        id: PERMISSIONS_WRITE_ALL,
        title: "GITHUB_TOKEN with write-all permissions",
        severity: Severity::High,
        description: "`permissions: write-all` gives every step write access to code, releases, packages, issues and more: a compromised step can push code or publish packages.",
        remediation: "Replace `write-all` with the specific scopes the job needs (e.g. `contents: read`, `packages: write`).",
    },
    Check {
        id: DEPLOY_WITHOUT_ENVIRONMENT,
        title: "Production deploy without an environment gate",
        severity: Severity::Medium,
        description: "A job that deploys (to production) has no `environment:`, so no protection rule (required reviewers, branch restrictions, wait timer) can gate it and its secrets are available to every branch.",
        remediation: "Add `environment: production` to the job, move its deployment secrets to that environment, and protect it (GitHub: required reviewers and deployment branches; GitLab: protected environments).",
    },
    Check {
        id: SECRET_SHARED_ACROSS_ENVIRONMENTS,
        title: "One secret name used for several environments",
        severity: Severity::Medium,
        description: "Jobs deploying to different environments read the same secret name. Unless it is defined separately in each environment, staging and production share one credential, so a staging compromise reaches production.",
        remediation: "Define the secret as an environment secret (GitHub) or environment-scoped variable (GitLab) in each environment with its own credential, or use distinct names per environment.",
    },
    Check {
        id: UNPINNED_ACTION,
        title: "Third-party action not pinned to a commit",
        severity: Severity::Medium,
        description: "A third-party action (or container image) is referenced by a tag or branch, which its owner — or whoever compromises it — can move to new code that then runs with this job's secrets.",
        remediation: "Pin to a full 40-character commit SHA (`uses: owner/repo@<sha> # v1.2.3`) or an image digest (`docker://image@sha256:...`), and let Dependabot or Renovate update the pins.",
    },
    Check {
        id: UNPINNED_FIRST_PARTY_ACTION,
        title: "First-party action not pinned to a commit",
        severity: Severity::Low,
        description: "An action from `actions/*` or `github/*` is referenced by a tag. GitHub maintains these, so the risk is lower than for third-party actions, but a tag can still move.",
        remediation: "Pin to a full commit SHA with the version in a comment, and let Dependabot update it.",
    },
    Check {
        id: UNPINNED_INCLUDE,
        title: "GitLab include not pinned to a commit",
        severity: Severity::Medium,
        description: "A GitLab `include:` of another project, a CI/CD component or a remote URL follows a branch, tag or URL whose content can change and then runs with this pipeline's variables.",
        remediation: "Pin `include: project:` with `ref: <commit sha>`, components with `@<commit sha>`, and replace `remote:` includes with pinned project includes.",
    },
];

/// The check with `id`.
pub fn check(id: &str) -> &'static Check {
    CHECKS
        .iter()
        .find(|c| c.id == id)
        .expect("every check id used is in CHECKS")
}

/// One problem found by `ci-audit`.
///
/// JSON shape (documented in docs/ci.md): `check`, `title`, `severity`,
/// `path`, `line`, `column`, `message`, `remediation`, `snippet`,
/// `fingerprint`, and `rule_id` for plaintext credentials. Never contains
/// a secret value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CiFinding {
    /// Check id (see [`CHECKS`]).
    pub check: String,
    /// Check title.
    pub title: String,
    /// Severity of this finding.
    pub severity: Severity,
    /// File, relative to the audited root where possible.
    pub path: String,
    /// 1-based line.
    pub line: u64,
    /// 1-based column.
    pub column: u64,
    /// What exactly is wrong here.
    pub message: String,
    /// How to fix it.
    pub remediation: String,
    /// The source line, trimmed, with secrets masked.
    pub snippet: String,
    /// Stable id of (check, path, what): the same problem keeps its
    /// fingerprint when lines move.
    pub fingerprint: String,
    /// For plaintext credentials: the secret rule that matched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<String>,
}

/// Everything `ci-audit` produced.
#[derive(Debug, Default)]
pub struct AuditOutput {
    /// Findings, ordered by path, line, check.
    pub findings: Vec<CiFinding>,
    /// Files that could not be read or parsed (with positions), and skips.
    pub diagnostics: Vec<Diagnostic>,
    /// Files audited (display paths).
    pub files: Vec<String>,
}

/// What a CI file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CiFileKind {
    /// `.github/workflows/*.yml`.
    GithubWorkflow,
    /// `action.yml` / `action.yaml`.
    GithubAction,
    /// `.gitlab-ci.yml` (included files are found through it).
    GitlabCi,
}

/// Classify a file by its path.
pub fn classify(path: &Path) -> Option<CiFileKind> {
    let name = path.file_name()?.to_str()?;
    let ext_yaml = name.ends_with(".yml") || name.ends_with(".yaml");
    if name == "action.yml" || name == "action.yaml" {
        return Some(CiFileKind::GithubAction);
    }
    if name == ".gitlab-ci.yml" || name == ".gitlab-ci.yaml" {
        return Some(CiFileKind::GitlabCi);
    }
    let parent = path.parent()?;
    if ext_yaml
        && parent.file_name().and_then(|n| n.to_str()) == Some("workflows")
        && parent
            .parent()
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str())
            == Some(".github")
    {
        return Some(CiFileKind::GithubWorkflow);
    }
    None
}

/// Directories never descended into when looking for CI files.
const SKIP_DIRS: &[&str] = &[".git", "node_modules", "target", "vendor", ".venv", "dist"];

fn walk(
    dir: &Path,
    depth: usize,
    out: &mut Vec<(PathBuf, CiFileKind)>,
    diags: &mut Vec<Diagnostic>,
) {
    if depth > 12 {
        return;
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            diags.push(Diagnostic::error(
                "unreadable",
                dir.display().to_string(),
                format!("cannot list directory: {e}"),
            ));
            return;
        }
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            let name = e.file_name();
            if SKIP_DIRS.iter().any(|s| name == *s) {
                continue;
            }
            walk(&p, depth + 1, out, diags);
        } else if ft.is_file()
            && let Some(k) = classify(&p)
        {
            out.push((p, k));
        }
    }
}

fn display(path: &Path, root: &Path) -> String {
    path.strip_prefix(root)
        .ok()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Audit every CI file under `root` (a directory, or one CI file).
/// `scanner` (when given) finds plaintext credentials and masks snippets.
pub fn audit_path(root: &Path, scanner: Option<&Scanner>) -> AuditOutput {
    let mut out = AuditOutput::default();
    let mut files = Vec::new();
    let base: PathBuf;
    if root.is_dir() {
        base = root.to_path_buf();
        walk(root, 0, &mut files, &mut out.diagnostics);
    } else {
        base = root.parent().map(Path::to_path_buf).unwrap_or_default();
        match classify(root) {
            Some(k) => files.push((root.to_path_buf(), k)),
            // An explicitly named file of unknown kind: guess from content.
            None => files.push((root.to_path_buf(), CiFileKind::GithubWorkflow)),
        }
    }
    for (path, kind) in files {
        let shown = display(&path, &base);
        let text = match read_text(&path, &shown, &mut out.diagnostics) {
            Some(t) => t,
            None => continue,
        };
        out.files.push(shown.clone());
        match kind {
            CiFileKind::GithubWorkflow | CiFileKind::GithubAction => {
                let ctx = FileCtx::new(&shown, &text, scanner);
                let f = github::audit(&ctx, kind, &mut out.diagnostics);
                out.findings.extend(f);
            }
            CiFileKind::GitlabCi => {
                let repo_root = path.parent().unwrap_or(Path::new("."));
                let f = gitlab::audit(
                    &shown,
                    &text,
                    repo_root,
                    &base,
                    scanner,
                    &mut out.diagnostics,
                    &mut out.files,
                );
                out.findings.extend(f);
            }
        }
    }
    out.findings.sort_by(|a, b| {
        (&a.path, a.line, a.column, &a.check).cmp(&(&b.path, b.line, b.column, &b.check))
    });
    out.findings.dedup();
    out
}

/// Largest CI file read (real pipelines are a few hundred KB).
const MAX_CI_FILE_BYTES: u64 = 16 << 20;

/// A CI file's bytes: a regular file (a FIFO or device, even through a
/// symlink, is refused without being opened) of at most
/// [`MAX_CI_FILE_BYTES`].
fn read_bounded(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file: refused"));
    }
    if meta.len() > MAX_CI_FILE_BYTES {
        return Err(std::io::Error::other(format!(
            "{} bytes, over the {MAX_CI_FILE_BYTES}-byte limit for a CI file",
            meta.len()
        )));
    }
    let mut buf = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_CI_FILE_BYTES + 1)
        .read_to_end(&mut buf)?;
    if buf.len() as u64 > MAX_CI_FILE_BYTES {
        return Err(std::io::Error::other(format!(
            "over the {MAX_CI_FILE_BYTES}-byte limit for a CI file"
        )));
    }
    Ok(buf)
}

pub(crate) fn read_text(path: &Path, shown: &str, diags: &mut Vec<Diagnostic>) -> Option<String> {
    match read_bounded(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(t) => Some(t),
            Err(e) => {
                diags.push(Diagnostic::error(
                    "invalid_utf8",
                    shown,
                    format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
                ));
                None
            }
        },
        Err(e) => {
            diags.push(Diagnostic::error(
                "unreadable",
                shown,
                format!("cannot read: {e}"),
            ));
            None
        }
    }
}

/// One file being audited: its display path, text and the scanner.
pub struct FileCtx<'a> {
    /// Display path.
    pub path: &'a str,
    /// Whole text.
    pub text: &'a str,
    lines: Vec<&'a str>,
    scanner: Option<&'a Scanner>,
}

impl<'a> FileCtx<'a> {
    /// A context over `text`.
    pub fn new(path: &'a str, text: &'a str, scanner: Option<&'a Scanner>) -> Self {
        FileCtx {
            path,
            text,
            lines: text.lines().collect(),
            scanner,
        }
    }

    /// Line `line` (1-based), trimmed, with anything a secret rule matches masked.
    pub fn snippet(&self, line: u64) -> String {
        let raw = self
            .lines
            .get((line as usize).saturating_sub(1))
            .copied()
            .unwrap_or("")
            .trim();
        let Some(s) = self.scanner else {
            return raw.to_string();
        };
        let matches = s.find_matches(None, raw.as_bytes());
        if matches.is_empty() {
            return raw.to_string();
        }
        let mut out = String::new();
        let mut pos = 0;
        for m in matches {
            if m.secret.start < pos {
                continue;
            }
            out.push_str(&raw[pos..m.secret.start]);
            out.push_str(&keytrail_types::redact(&raw.as_bytes()[m.secret.clone()]));
            pos = m.secret.end;
        }
        out.push_str(&raw[pos..]);
        out
    }

    /// A finding of check `id` at `line`/`column`; `key` distinguishes
    /// several findings of one check in one file for the fingerprint.
    pub fn finding(
        &self,
        id: &str,
        line: u64,
        column: u64,
        message: String,
        key: &str,
    ) -> CiFinding {
        let c = check(id);
        CiFinding {
            check: c.id.to_string(),
            title: c.title.to_string(),
            severity: c.severity,
            path: self.path.to_string(),
            line,
            column,
            message,
            remediation: c.remediation.to_string(),
            snippet: self.snippet(line),
            fingerprint: finding_fingerprint(c.id, self.path, key),
            rule_id: None,
        }
    }

    /// Plaintext credentials: the secret scanner over the whole file.
    pub fn plaintext_credentials(&self) -> Vec<CiFinding> {
        let Some(s) = self.scanner else {
            return Vec::new();
        };
        let c = check(PLAINTEXT_CREDENTIAL);
        s.scan_bytes(self.path, &Origin::File, self.text.as_bytes())
            .into_iter()
            .map(|bf| {
                let rule = &s.rules()[bf.rule];
                let fp = keytrail_scan::fingerprint(rule.id(), bf.secret.expose().as_bytes());
                let remediation = if rule.rule.syntax.remediation.trim().is_empty() {
                    c.remediation.to_string()
                } else {
                    format!("{} {}", rule.rule.syntax.remediation.trim(), c.remediation)
                };
                CiFinding {
                    check: c.id.to_string(),
                    title: c.title.to_string(),
                    severity: rule.severity().max(Severity::High),
                    path: self.path.to_string(),
                    line: bf.location.line,
                    column: bf.location.column,
                    message: format!(
                        "{} ({}) written in plain text: {}",
                        rule.name(),
                        rule.id(),
                        bf.secret.redacted()
                    ),
                    remediation,
                    snippet: bf.location.snippet.trim().to_string(),
                    fingerprint: fp.0,
                    rule_id: Some(rule.id().to_string()),
                }
            })
            .collect()
    }
}

/// Hex of the first 16 bytes of SHA-256(check NUL path NUL key).
pub fn finding_fingerprint(check: &str, path: &str, key: &str) -> String {
    let mut h = Sha256::new();
    for part in [check, path, key] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Parse `text` as YAML, or push a diagnostic naming the file and position.
pub(crate) fn parse_or_diagnose(
    path: &str,
    text: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<Vec<yaml::Node>> {
    match yaml::parse(text) {
        Ok(docs) => Some(docs),
        Err(e) => {
            diags.push(
                Diagnostic::error("invalid_yaml", path, format!("invalid YAML: {}", e.message))
                    .at(Some(e.line), Some(e.column)),
            );
            None
        }
    }
}

/// Words of an identifier or name (`deploy-prod`, `Deploy to Production`).
pub(crate) fn words(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect()
}

/// Whether a name says production.
pub(crate) fn is_prod_name(s: &str) -> bool {
    words(s)
        .iter()
        .any(|w| matches!(w.as_str(), "prod" | "production" | "prd" | "live"))
}

/// Whether a name says a non-production environment.
pub(crate) fn is_nonprod_name(s: &str) -> bool {
    words(s).iter().any(|w| {
        matches!(
            w.as_str(),
            "dev"
                | "development"
                | "staging"
                | "stage"
                | "stg"
                | "test"
                | "testing"
                | "qa"
                | "preview"
                | "review"
                | "sandbox"
                | "uat"
                | "nonprod"
        )
    })
}

/// Whether a script line deploys somewhere.
pub(crate) fn is_deploy_command(line: &str) -> bool {
    static DEPLOY: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(
            r"\b(?:terraform\s+apply|tofu\s+apply|kubectl\s+(?:apply|rollout|set\s+image)|helm\s+(?:upgrade|install)|helmfile\s+(?:apply|sync)|(?:serverless|sls|cdk|firebase|flyctl|fly|eb|vercel|netlify|wrangler|railway)\s+deploy|gcloud\s+(?:run|app|functions)\s+deploy|aws\s+(?:cloudformation\s+deploy|ecs\s+update-service|lambda\s+update-function-code|deploy\s+create-deployment)|az\s+(?:webapp|functionapp)\s+deploy|vercel\s+.*--prod|ansible-playbook|kustomize\s+build\s+.*\|\s*kubectl|cap\s+production\s+deploy)\b",
        )
        .expect("deploy regex")
    });
    DEPLOY.is_match(line)
}

/// Whether a secret-looking name (for GitLab variables and action inputs).
pub(crate) fn is_secret_name(name: &str) -> bool {
    let u = name.to_ascii_uppercase();
    [
        "TOKEN",
        "SECRET",
        "PASSWORD",
        "PASSWD",
        "API_KEY",
        "APIKEY",
        "PRIVATE_KEY",
        "ACCESS_KEY",
        "CREDENTIAL",
        "AUTH",
        "PASS",
    ]
    .iter()
    .any(|w| u.contains(w))
        && !u.ends_with("_FILE_PATH")
}

/// 40 lower/upper hex characters.
pub(crate) fn is_full_sha(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

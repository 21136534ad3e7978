//! The CLI side of a scan: turn `InputArgs` and the settings into the
//! session's targets, options and rules, draw the progress line, and print
//! the diagnostics. The scan itself (sources, scanner, aggregator,
//! post-scan steps) is `keytrail_session`'s.

use crate::args::InputArgs;
use crate::config::Settings;
use crate::rule_set;
use crate::term::Ticker;
use anyhow::Context;
use keytrail_input::FsOptions;
use keytrail_session::source::{GitSelection, RegistryAccess};
use keytrail_session::{Observer, Options, Progress, ScanOutput, Session, Step, Targets};
use keytrail_types::Confidence;
use std::sync::Arc;
use std::time::Instant;

/// Load and select rules, plan the sources of `input`, scan, and run the
/// default steps with `before_allow` just before the allow-list and
/// `extra_steps` after it.
pub fn scan<'s>(
    input: &InputArgs,
    min_confidence: Confidence,
    settings: &'s Settings,
    before_allow: Vec<Step<'s>>,
    extra_steps: Vec<Step<'s>>,
) -> anyhow::Result<ScanOutput> {
    let started = Instant::now();
    let targets = Targets {
        paths: input.paths.clone(),
        git_urls: input.git_urls.clone(),
        logs: input.logs.clone(),
        images: input.images.clone(),
    };
    targets.check_paths_exist()?;
    let mut dirs = settings.rule_dirs.clone();
    dirs.extend(input.rules.iter().cloned());
    let all = rule_set::load(&dirs)?;
    settings.check_selectors(&all)?;
    let rules: Vec<_> = all
        .into_iter()
        .filter(|r| settings.selects(r, min_confidence))
        .collect();
    let session = match compiled(rules) {
        Ok(s) => s,
        Err(diags) => {
            for d in &diags {
                eprintln!("error: {d}");
            }
            let d = diags.iter().find(|d| d.is_error).expect("a compile error");
            anyhow::bail!("cannot compile rules: {d}");
        }
    };

    let defaults = FsOptions::default();
    let mut excludes = settings.excludes.clone();
    excludes.extend(input.exclude.iter().cloned());
    let fs = FsOptions {
        excludes,
        max_archive_depth: input
            .max_archive_depth
            .or(settings.limits.max_archive_depth)
            .unwrap_or(3),
        max_archive_bytes: input
            .max_archive_bytes
            .or(settings.limits.max_archive_bytes)
            .unwrap_or(defaults.max_archive_bytes),
        max_archive_ratio: input.max_archive_ratio,
        threads: crate::threads::clamp(input.threads, input.quiet),
        scan_archives: !input.no_archives,
        scan_binary: !input.no_binary,
        max_in_memory: input.max_in_memory,
        ..FsOptions::default()
    };
    keytrail_session::check_excludes(&fs)?;
    let options = Options {
        fs,
        git: GitSelection {
            no_history: input.no_history,
            since_commit: input.since_commit.clone(),
            range: input.range.clone(),
            staged: input.staged,
            since_refs: input
                .since_refs
                .as_deref()
                .map(read_since_refs)
                .transpose()?,
        },
        git_max_blob_bytes: settings.limits.git_max_blob_bytes,
        registry: RegistryAccess {
            platforms: input.platforms.clone(),
            username: input.registry_user.clone(),
            password: input
                .registry_password
                .clone()
                .map(keytrail_types::Secret::new),
            plain_http: input.plain_http.clone(),
        },
        image_max_layer_bytes: settings.limits.image_max_layer_bytes,
        image_skip_digest: input.since_digest.clone(),
        keep_skips: input.verbose && !input.quiet,
        started,
    };
    let mut plan = keytrail_session::plan(&targets, &options)?;
    if !input.s3.is_empty() {
        plan.sources.push(s3_source(input)?);
    }
    if !input.github_orgs.is_empty() || !input.gitlab_groups.is_empty() {
        forge_sources(input, &mut plan.sources)?;
    }
    let mut steps = Step::scan_defaults(|f| settings.allows(f));
    // The allow-list is the last default step.
    let allow = steps
        .pop()
        .expect("the default steps end with the allow-list");
    steps.extend(before_allow);
    steps.push(allow);
    steps.extend(extra_steps);
    let mut progress = ProgressLine {
        enabled: !input.quiet,
        ticker: None,
    };
    session.run(&plan, &options, &steps, &mut progress)
}

/// The compiled rules of this process's last scan, reused when the next
/// scan selects the same rules: a worker's jobs (or any embedder scanning
/// many targets one by one) compile the rules once, not once a job, and
/// compiling them is most of a small target's scan. Any change of the
/// selected rules (a rule file edited, another `--rules` or config)
/// compiles again.
fn compiled(
    rules: Vec<keytrail_rules::Rule>,
) -> Result<Arc<Session>, Vec<keytrail_types::Diagnostic>> {
    use std::hash::{Hash, Hasher};
    static LAST: std::sync::Mutex<Option<(u64, usize, Arc<Session>)>> = std::sync::Mutex::new(None);
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for r in &rules {
        format!("{r:?}").hash(&mut h);
    }
    let key = (h.finish(), rules.len());
    let mut last = LAST.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((k, n, s)) = &*last
        && (*k, *n) == key
    {
        return Ok(s.clone());
    }
    let s = Arc::new(Session::new(rules)?);
    *last = Some((key.0, key.1, s.clone()));
    Ok(s)
}

/// The source of the `--s3` targets, read after every other source.
#[cfg(feature = "scan-s3")]
fn s3_source(input: &InputArgs) -> anyhow::Result<Box<dyn keytrail_session::Source>> {
    for t in &input.s3 {
        keytrail_collect::s3scan::S3Target::parse(t).map_err(|e| anyhow::anyhow!("--s3: {e}"))?;
    }
    Ok(Box::new(S3Source {
        targets: input.s3.clone(),
        endpoint: input.s3_endpoint.clone(),
    }))
}

#[cfg(not(feature = "scan-s3"))]
fn s3_source(_: &InputArgs) -> anyhow::Result<Box<dyn keytrail_session::Source>> {
    anyhow::bail!("--s3 needs keytrail built with the `scan-s3` feature")
}

/// `--s3` targets: each listed and read through the file content pipeline;
/// one that cannot be read at all fails the run.
#[cfg(feature = "scan-s3")]
struct S3Source {
    targets: Vec<String>,
    endpoint: Option<String>,
}

#[cfg(feature = "scan-s3")]
impl keytrail_session::Source for S3Source {
    fn scan(&self, cx: &mut keytrail_session::source::Context<'_>) -> anyhow::Result<()> {
        use keytrail_input::BlobSink;
        let fail = |t: &str, msg: String| {
            cx.sink
                .diagnostic(keytrail_types::Diagnostic::error("unreadable", t, msg));
            cx.sink.target_failed(t);
        };
        let s3 = match keytrail_collect::s3scan::S3Scan::connect(self.endpoint.as_deref()) {
            Ok(s) => s,
            Err(e) => {
                for t in &self.targets {
                    fail(t, e.clone());
                }
                return Ok(());
            }
        };
        for t in &self.targets {
            if let Err(e) = s3.scan(t, &cx.options.fs, cx.sink) {
                fail(t, e);
            }
        }
        Ok(())
    }
}

/// One source per `--github-org` and `--gitlab-group`, read last.
#[cfg(feature = "forge")]
fn forge_sources(
    input: &InputArgs,
    sources: &mut Vec<Box<dyn keytrail_session::Source>>,
) -> anyhow::Result<()> {
    use keytrail_input::forge::ForgeKind;
    let token = |var: &str| {
        std::env::var(var)
            .ok()
            .filter(|t| !t.trim().is_empty())
            .map(|t| keytrail_types::Secret::new(t.trim().to_string()))
    };
    for org in &input.github_orgs {
        sources.push(Box::new(ForgeSource {
            kind: ForgeKind::GitHub,
            owner: org.clone(),
            api: input.github_api.clone(),
            token: token("GITHUB_TOKEN"),
        }));
    }
    for group in &input.gitlab_groups {
        sources.push(Box::new(ForgeSource {
            kind: ForgeKind::GitLab,
            owner: group.clone(),
            api: input.gitlab_api.clone(),
            token: token("GITLAB_TOKEN"),
        }));
    }
    Ok(())
}

#[cfg(not(feature = "forge"))]
fn forge_sources(
    _: &InputArgs,
    _: &mut Vec<Box<dyn keytrail_session::Source>>,
) -> anyhow::Result<()> {
    anyhow::bail!("--github-org and --gitlab-group need keytrail built with the `forge` feature")
}

/// A GitHub organisation or GitLab group: its repositories listed through
/// the REST API, each cloned and scanned as a git URL (full history), its
/// wiki when it has one, and its issue and pull/merge request discussions;
/// then the gists of a GitHub organisation's members (or of the user).
/// A listing that fails fails the target (`github-org:ORG`); a repository
/// that cannot be cloned fails as a git URL does; a wiki that cannot be
/// cloned (no page yet) is a skip; discussions that cannot be read are an
/// error naming the repository.
#[cfg(feature = "forge")]
struct ForgeSource {
    kind: keytrail_input::forge::ForgeKind,
    owner: String,
    api: Option<String>,
    token: Option<keytrail_types::Secret<String>>,
}

#[cfg(feature = "forge")]
impl keytrail_session::Source for ForgeSource {
    fn scan(&self, cx: &mut keytrail_session::source::Context<'_>) -> anyhow::Result<()> {
        use keytrail_input::BlobSink;
        use keytrail_input::forge::{ForgeClient, ForgeKind, error};
        use keytrail_input::git::{GitOptions, clone_url, display_url, scan_repository};
        let target = match self.kind {
            ForgeKind::GitHub => format!("github-org:{}", self.owner),
            ForgeKind::GitLab => format!("gitlab-group:{}", self.owner),
        };
        let client = ForgeClient::new(self.kind, self.api.as_deref(), self.token.clone());
        let repos = match client.repositories(&self.owner) {
            Ok(r) if r.is_empty() => Err("no repositories".to_string()),
            other => other,
        };
        let repos = match repos {
            Ok(r) => r,
            Err(e) => {
                cx.sink.diagnostic(error(&target, e));
                cx.sink.target_failed(&target);
                return Ok(());
            }
        };
        for repo in &repos {
            keytrail_session::source::GitUrl {
                url: repo.clone_url.clone(),
            }
            .scan(cx)?;
            if let Some(wiki) = &repo.wiki_url {
                let dir = tempfile::Builder::new()
                    .prefix("keytrail-clone-")
                    .tempdir()?;
                match clone_url(wiki, dir.path()) {
                    Ok(path) => {
                        let opts = GitOptions {
                            name: Some(display_url(wiki)),
                            threads: cx.options.fs.threads,
                            content: cx.options.fs.clone(),
                            ..GitOptions::default()
                        };
                        scan_repository(&path, &opts, cx.sink);
                    }
                    Err(d) => cx.sink.diagnostic(keytrail_types::Diagnostic::skip(
                        "forge_wiki",
                        display_url(wiki),
                        format!(
                            "wiki not cloned (a wiki with no page has no repository): {}",
                            d.message
                        ),
                    )),
                }
            }
            if let Err(e) = client.discussions(repo, cx.sink) {
                cx.sink.diagnostic(error(&repo.full_name, e));
            }
        }
        match client.gists(&self.owner) {
            Ok(gists) => {
                for gist in gists {
                    keytrail_session::source::GitUrl {
                        url: gist.clone_url,
                    }
                    .scan(cx)?;
                }
            }
            Err(e) => cx.sink.diagnostic(error(&format!("{target} gists"), e)),
        }
        Ok(())
    }
}

/// The progress line on a terminal (see [`Ticker`]).
struct ProgressLine {
    enabled: bool,
    ticker: Option<Ticker>,
}

impl Observer for ProgressLine {
    fn scan_started(&mut self, progress: Arc<Progress>) {
        self.ticker = Some(Ticker::start(self.enabled, progress));
    }

    fn scan_finished(&mut self) {
        if let Some(t) = self.ticker.take() {
            t.finish();
        }
    }
}

/// Print diagnostics on stderr as `warning: path:line: message` (errors
/// and archives cut by a limit) and `note: ...` (skips, only collected
/// when verbose). Targets that could not be read at all are `error:`
/// lines, even with `--quiet`.
pub fn print_diagnostics(out: &ScanOutput, quiet: bool) {
    for t in &out.failed_targets {
        eprintln!("error: `{t}` could not be read: nothing of it was scanned");
    }
    if quiet {
        return;
    }
    for d in &out.errors {
        eprintln!("warning: {d}");
    }
    for d in &out.incomplete {
        eprintln!("warning: {d}");
    }
    for d in &out.skips {
        eprintln!("note: {d}");
    }
}

/// The ref tips of `--since-refs FILE`: a JSON object, ref name → commit id.
fn read_since_refs(
    path: &std::path::Path,
) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read --since-refs `{}`", path.display()))?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "--since-refs `{}`: not a JSON object of ref names and commit ids",
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_rules_are_compiled_once() {
        let (all, _) = keytrail_rules::builtin();
        let some: Vec<_> = all.iter().take(20).cloned().collect();
        let a = compiled(all.clone()).unwrap();
        let b = compiled(all.clone()).unwrap();
        assert!(
            Arc::ptr_eq(&a, &b),
            "the same rules: the same compiled session"
        );
        let c = compiled(some.clone()).unwrap();
        assert!(!Arc::ptr_eq(&a, &c), "other rules: compiled again");
        assert_eq!(c.scanner().rules().len(), 20);
        let d = compiled(some).unwrap();
        assert!(Arc::ptr_eq(&c, &d));
    }
}

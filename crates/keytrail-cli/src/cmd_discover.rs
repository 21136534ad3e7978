//! Discovery submitters: `keytrail submit github-org`, `submit
//! gitlab-group` and `submit registry` list what an organisation holds
//! (repositories through the forge's REST API, `keytrail-input`'s
//! `forge`; a registry's catalog and tags, `keytrail-input`'s
//! `image::catalog`) and submit one scan job per repository or image tag,
//! exactly as `keytrail submit scan` submits one per target; `submit
//! aws-org` lists an AWS organization's accounts (`keytrail-collect`'s
//! `list_org_accounts_blocking`) and submits one posture job per account.
//! The listing is here; the queue and the store are `keytrail-worker`'s.

use crate::ExitStatus;
use crate::cmd_store::DbArg;
use crate::cmd_worker::{NatsArgs, print_submitted};
use clap::Args;
use keytrail_worker::{Job, Target};
use std::io::Write;

/// What every discovery submitter takes besides what it lists.
#[derive(Debug, Args)]
pub struct DiscoverArgs {
    /// The queue.
    #[command(flatten)]
    pub nats: NatsArgs,

    /// The store the workers record into (the jobs are recorded there too).
    #[command(flatten)]
    pub db: DbArg,

    /// List and print the jobs that would be submitted, one JSON object
    /// per line (the message body: key, kind, target, submitted_at),
    /// without a queue or a store.
    ///
    /// Example: `--dry-run`
    #[arg(long)]
    pub dry_run: bool,

    /// Job keys KEY:TARGET (TARGET as recorded, e.g.
    /// `nightly-1:git:https://github.com/acme/api.git`) instead of fresh
    /// ones: a scheduler's retried submission submits nothing new.
    ///
    /// Example: `--key nightly-2026-12-07`
    #[arg(long, value_name = "KEY")]
    pub key: Option<String>,
}

/// Which repositories of a GitHub organisation or GitLab group get jobs.
#[derive(Debug, Args)]
pub struct ForgeFilter {
    /// Submit archived repositories too (skipped by default: read-only,
    /// usually scanned before they were archived).
    ///
    /// Example: `--include-archived`
    #[arg(long)]
    pub include_archived: bool,

    /// Submit forks too (skipped by default: their history is mostly their
    /// upstream's).
    ///
    /// Example: `--include-forks`
    #[arg(long)]
    pub include_forks: bool,

    /// Submit each repository's wiki (`REPO.wiki.git`) as a job of its own
    /// when the forge says it has one. A wiki with no page has no git
    /// repository: its job fails (and is dead-lettered) saying it cannot be
    /// cloned.
    ///
    /// Example: `--wikis`
    #[arg(long)]
    pub wikis: bool,
}

/// `keytrail submit github-org`.
#[derive(Debug, Args)]
#[command(
    after_help = "Lists every repository of each ORG through the GitHub REST API \
(a user's when no organisation has the name; token from GITHUB_TOKEN) and submits one \
`scan --git-url` job per repository, as `keytrail submit scan` does. Jobs carry the clone URL \
without the token: workers clone with credentials of their own.\n\n\
Prints one JSON line per job as `keytrail submit scan` does (with --dry-run: the jobs), and a \
summary per ORG on stderr.\n\n\
Exit codes: 0 = submitted, 2 = error (an ORG that cannot be listed, named; the other ORGs' jobs \
are submitted; the store or the NATS server cannot be reached).\n\n\
Examples:\n  keytrail submit github-org acme --db postgres://keytrail@db/keytrail\n  \
GITHUB_TOKEN=… keytrail submit github-org acme acme-labs --include-forks --dry-run\n  \
keytrail submit github-org acme --github-api https://github.example.com/api/v3"
)]
pub struct SubmitGithubArgs {
    /// GitHub organisations (or users).
    ///
    /// Example: `acme acme-labs`
    #[arg(value_name = "ORG", required = true)]
    pub orgs: Vec<String>,

    /// GitHub API base URL (GitHub Enterprise Server).
    ///
    /// Example: `--github-api https://github.example.com/api/v3`
    #[arg(long = "github-api", value_name = "URL", env = "GITHUB_API_URL")]
    pub github_api: Option<String>,

    /// Which repositories.
    #[command(flatten)]
    pub filter: ForgeFilter,

    /// Queue, store, dry run, keys.
    #[command(flatten)]
    pub common: DiscoverArgs,
}

/// `keytrail submit gitlab-group`.
#[derive(Debug, Args)]
#[command(
    after_help = "Lists every project of each GROUP and its subgroups through the \
GitLab REST API (token from GITLAB_TOKEN) and submits one `scan --git-url` job per project, as \
`keytrail submit scan` does. Jobs carry the clone URL without the token: workers clone with \
credentials of their own.\n\n\
Prints one JSON line per job as `keytrail submit scan` does (with --dry-run: the jobs), and a \
summary per GROUP on stderr.\n\n\
Exit codes: 0 = submitted, 2 = error (a GROUP that cannot be listed, named; the other GROUPs' \
jobs are submitted; the store or the NATS server cannot be reached).\n\n\
Examples:\n  keytrail submit gitlab-group acme/platform --db postgres://keytrail@db/keytrail\n  \
keytrail submit gitlab-group acme --gitlab-api https://gitlab.example.com/api/v4 --dry-run"
)]
pub struct SubmitGitlabArgs {
    /// GitLab groups (full paths; subgroups included).
    ///
    /// Example: `acme/platform`
    #[arg(value_name = "GROUP", required = true)]
    pub groups: Vec<String>,

    /// GitLab API base URL (self-managed GitLab).
    ///
    /// Example: `--gitlab-api https://gitlab.example.com/api/v4`
    #[arg(long = "gitlab-api", value_name = "URL", env = "GITLAB_API_URL")]
    pub gitlab_api: Option<String>,

    /// Which projects.
    #[command(flatten)]
    pub filter: ForgeFilter,

    /// Queue, store, dry run, keys.
    #[command(flatten)]
    pub common: DiscoverArgs,
}

/// `keytrail submit registry`.
#[derive(Debug, Args)]
#[command(
    after_help = "Lists the registry's catalog (GET /v2/_catalog, paged) and the tags \
of each repository (GET /v2/NAME/tags/list, paged) and submits one `scan --image HOST/NAME:TAG` \
job per tag, as `keytrail submit scan` does. Credentials as for `scan --image`: the flags, else \
docker's config.json (credHelpers, credsStore, auths); basic and bearer-token registries. \
Workers pull with credentials of their own.\n\n\
Prints one JSON line per job as `keytrail submit scan` does (with --dry-run: the jobs), and a \
summary per REGISTRY on stderr.\n\n\
Exit codes: 0 = submitted, 2 = error (a REGISTRY that cannot be listed, named: unreachable, \
401 without credentials, no catalog (404); the others' jobs are submitted; the store or the \
NATS server cannot be reached).\n\n\
Examples:\n  keytrail submit registry registry.internal:5000 --db postgres://keytrail@db/keytrail\n  \
keytrail submit registry registry.internal:5000/team --max-tags 3 --dry-run"
)]
pub struct SubmitRegistryArgs {
    /// Registries, each `HOST[:PORT]`, with `/PREFIX` for only the
    /// repositories named `PREFIX/…`.
    ///
    /// Example: `registry.internal:5000/team`
    #[arg(value_name = "REGISTRY", required = true)]
    pub registries: Vec<String>,

    /// At most N tags per repository: the last N in version order (digits
    /// compared as numbers, so `v1.10` comes after `v1.9`); the registry
    /// API does not say when a tag was pushed [default: every tag].
    ///
    /// Example: `--max-tags 3`
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_tags: Option<u64>,

    /// Entries asked for per catalog or tags page (`?n=N`; registries may
    /// answer fewer and cap it).
    ///
    /// Example: `--page-size 1000`
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub page_size: u64,

    /// Registry user name. Without it, credentials come from the docker
    /// config, as for `scan --image`.
    ///
    /// Example: `--registry-user ci-bot`
    #[arg(long = "registry-user", value_name = "USER")]
    pub registry_user: Option<String>,

    /// Registry password; prefer the environment variable.
    ///
    /// Example: `KEYTRAIL_REGISTRY_PASSWORD=… keytrail submit registry …`
    #[arg(
        long = "registry-password",
        value_name = "PASSWORD",
        env = "KEYTRAIL_REGISTRY_PASSWORD",
        hide_env_values = true
    )]
    pub registry_password: Option<String>,

    /// Registry hosts to speak plain HTTP to (loopback registries fall back
    /// to HTTP anyway); repeatable.
    ///
    /// Example: `--plain-http registry.internal:5000`
    #[arg(long = "plain-http", value_name = "HOST:PORT")]
    pub plain_http: Vec<String>,

    /// Queue, store, dry run, keys.
    #[command(flatten)]
    pub common: DiscoverArgs,
}

/// What listing the named sources gave: jobs, and the sources that could
/// not be listed (each message names its source).
#[derive(Default)]
struct Discovered {
    jobs: Vec<Job>,
    failed: Vec<String>,
}

impl Discovered {
    fn job(&mut self, target: Target, key: Option<&str>) {
        let key = key.map(|k| format!("{k}:{}", target.recorded()));
        self.jobs.push(Job::new(target.kind(), target, key));
    }
}

/// Runs `keytrail submit github-org`.
pub fn run_github(args: &SubmitGithubArgs) -> anyhow::Result<ExitStatus> {
    let found = forge_jobs(
        Forge::GitHub,
        &args.orgs,
        args.github_api.as_deref(),
        &args.filter,
        args.common.key.as_deref(),
    )?;
    submit(&args.common, found)
}

/// Runs `keytrail submit gitlab-group`.
pub fn run_gitlab(args: &SubmitGitlabArgs) -> anyhow::Result<ExitStatus> {
    let found = forge_jobs(
        Forge::GitLab,
        &args.groups,
        args.gitlab_api.as_deref(),
        &args.filter,
        args.common.key.as_deref(),
    )?;
    submit(&args.common, found)
}

/// Which forge (the CLI's, so that it exists without the `forge` feature).
#[derive(Debug, Clone, Copy)]
enum Forge {
    GitHub,
    GitLab,
}

#[cfg(feature = "forge")]
fn forge_jobs(
    forge: Forge,
    owners: &[String],
    api: Option<&str>,
    filter: &ForgeFilter,
    key: Option<&str>,
) -> anyhow::Result<Discovered> {
    use keytrail_input::forge::{ForgeClient, ForgeKind};
    let (kind, var, prefix) = match forge {
        Forge::GitHub => (ForgeKind::GitHub, "GITHUB_TOKEN", "github-org"),
        Forge::GitLab => (ForgeKind::GitLab, "GITLAB_TOKEN", "gitlab-group"),
    };
    let token = std::env::var(var)
        .ok()
        .filter(|t| !t.trim().is_empty())
        .map(|t| keytrail_types::Secret::new(t.trim().to_string()));
    let client = ForgeClient::new(kind, api, token);
    let mut out = Discovered::default();
    for owner in owners {
        let target = format!("{prefix}:{owner}");
        let repos = match client.repositories(owner) {
            Ok(r) if r.is_empty() => Err("no repositories listed".to_string()),
            other => other,
        };
        let repos = match repos {
            Ok(r) => r,
            Err(e) => {
                out.failed.push(format!("{target}: {e}"));
                continue;
            }
        };
        let (mut archived, mut forks, mut jobs, mut wikis) = (0, 0, 0, 0);
        for repo in &repos {
            if repo.archived && !filter.include_archived {
                archived += 1;
                continue;
            }
            if repo.fork && !filter.include_forks {
                forks += 1;
                continue;
            }
            out.job(Target::GitUrl(repo.url.clone()), key);
            jobs += 1;
            if filter.wikis
                && let Some(wiki) = &repo.wiki
            {
                out.job(Target::GitUrl(wiki.clone()), key);
                wikis += 1;
            }
        }
        let mut skipped = Vec::new();
        if archived > 0 {
            skipped.push(format!("{archived} archived (--include-archived)"));
        }
        if forks > 0 {
            skipped.push(format!("{forks} fork(s) (--include-forks)"));
        }
        eprintln!(
            "{target}: {} repositor{} listed, {jobs} to scan{}{}",
            repos.len(),
            if repos.len() == 1 { "y" } else { "ies" },
            if wikis > 0 {
                format!(" and {wikis} wiki(s)")
            } else {
                String::new()
            },
            if skipped.is_empty() {
                String::new()
            } else {
                format!("; skipped {}", skipped.join(" and "))
            }
        );
    }
    Ok(out)
}

#[cfg(not(feature = "forge"))]
fn forge_jobs(
    _: Forge,
    _: &[String],
    _: Option<&str>,
    _: &ForgeFilter,
    _: Option<&str>,
) -> anyhow::Result<Discovered> {
    anyhow::bail!(
        "`submit github-org` and `submit gitlab-group` need keytrail built with the `forge` feature"
    )
}

/// Runs `keytrail submit registry`.
pub fn run_registry(args: &SubmitRegistryArgs) -> anyhow::Result<ExitStatus> {
    let found = registry_jobs(args)?;
    submit(&args.common, found)
}

#[cfg(feature = "image")]
fn registry_jobs(args: &SubmitRegistryArgs) -> anyhow::Result<Discovered> {
    use keytrail_input::image::ImageOptions;
    use keytrail_input::image::catalog::{CatalogTarget, last_tags, list};
    // Every REGISTRY is checked before anything is listed.
    let targets = args
        .registries
        .iter()
        .map(|r| CatalogTarget::parse(r).map_err(anyhow::Error::msg))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let opts = ImageOptions {
        username: args.registry_user.clone(),
        password: args
            .registry_password
            .clone()
            .map(keytrail_types::Secret::new),
        plain_http: args.plain_http.clone(),
        ..ImageOptions::default()
    };
    let mut out = Discovered::default();
    for (named, target) in args.registries.iter().zip(&targets) {
        let shown = format!("registry:{}", named.trim().trim_end_matches('/'));
        let repos = match list(target, &opts, args.page_size as usize) {
            Ok(r) if r.is_empty() => Err("no repositories listed".to_string()),
            other => other,
        };
        let repos = match repos {
            Ok(r) => r,
            Err(e) => {
                out.failed.push(format!("{shown}: {e}"));
                continue;
            }
        };
        let (mut tags, mut skipped) = (0, 0);
        for repo in &repos {
            let chosen = match args.max_tags {
                Some(n) => last_tags(&repo.tags, n as usize),
                None => repo.tags.clone(),
            };
            skipped += repo.tags.len() - chosen.len();
            for tag in chosen {
                let reference = format!("{}/{}:{tag}", target.host, repo.name);
                out.job(Target::Image(reference), args.common.key.as_deref());
                tags += 1;
            }
        }
        eprintln!(
            "{shown}: {} repositor{} listed, {tags} tag(s) to scan{}",
            repos.len(),
            if repos.len() == 1 { "y" } else { "ies" },
            if skipped > 0 {
                format!("; {skipped} older tag(s) skipped (--max-tags)")
            } else {
                String::new()
            }
        );
    }
    Ok(out)
}

#[cfg(not(feature = "image"))]
fn registry_jobs(_: &SubmitRegistryArgs) -> anyhow::Result<Discovered> {
    anyhow::bail!("`submit registry` needs keytrail built with the `image` feature")
}

/// The role posture jobs assume in each account by default: the one AWS
/// Organizations creates in the accounts it creates.
const DEFAULT_ORG_ROLE: &str = "OrganizationAccountAccessRole";

/// `keytrail submit aws-org`.
#[derive(Debug, Args)]
#[command(
    after_help = "Lists the accounts of the caller's AWS organization (Organizations \
ListAccounts, paged; run it with the management account's credentials or a delegated \
administrator's, from the usual AWS sources: environment, AWS_PROFILE or --profile, SSO, \
instance roles; AWS_ENDPOINT_URL is honoured) and submits one posture job per account \
(target aws:ACCOUNT_ID). A worker runs each job with its own AWS credentials: it assumes \
arn:aws:iam::ACCOUNT_ID:role/ROLE (session name keytrail-JOB_KEY), collects the account as \
`keytrail collect aws --role-arn` does and records `keytrail posture` of it in the store \
under the job's key (findings of kind posture, once per job). Jobs carry the role's name, \
never a credential. The management account has no OrganizationAccountAccessRole unless \
one was created: create it, or --exclude-account it.\n\n\
Prints one JSON line per job as `keytrail submit scan` does (with --dry-run: the jobs), and a \
summary on stderr.\n\n\
Exit codes: 0 = submitted, 2 = error (`error: aws-org: …`: access denied (not the \
management account nor a delegated administrator), not in an organization, credentials; the \
store or the NATS server cannot be reached).\n\n\
Examples:\n  keytrail submit aws-org --nats nats://nats.internal:4222 --db postgres://keytrail@db/keytrail\n  \
AWS_PROFILE=org-management keytrail submit aws-org --role-name keytrail-audit --dry-run\n  \
keytrail submit aws-org --exclude-account 123456789012 --include-suspended"
)]
pub struct SubmitAwsOrgArgs {
    /// The role each posture job assumes in its account
    /// (`arn:aws:iam::ACCOUNT_ID:role/ROLE`).
    ///
    /// Example: `--role-name keytrail-audit`
    #[arg(long, value_name = "ROLE", default_value = DEFAULT_ORG_ROLE, value_parser = parse_role_name)]
    pub role_name: String,

    /// Submit accounts that are not ACTIVE too (SUSPENDED, PENDING_CLOSURE,
    /// CLOSED; skipped by default: their roles usually cannot be assumed).
    ///
    /// Example: `--include-suspended`
    #[arg(long)]
    pub include_suspended: bool,

    /// An account not to submit; repeatable.
    ///
    /// Example: `--exclude-account 123456789012 --exclude-account 210987654321`
    #[arg(long = "exclude-account", value_name = "ID", value_parser = parse_account_id)]
    pub exclude_accounts: Vec<String>,

    /// Named profile from ~/.aws/config to list the organization with.
    ///
    /// Example: `--profile org-management`
    #[arg(long, value_name = "PROFILE")]
    pub profile: Option<String>,

    /// Queue, store, dry run, keys.
    #[command(flatten)]
    pub common: DiscoverArgs,
}

/// A 12-digit AWS account id.
fn parse_account_id(s: &str) -> Result<String, String> {
    let t = s.trim();
    if t.len() == 12 && t.bytes().all(|b| b.is_ascii_digit()) {
        Ok(t.to_string())
    } else {
        Err(format!("`{s}`: an AWS account id is 12 digits"))
    }
}

/// An IAM role name (with an optional path, `team/audit`).
fn parse_role_name(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 64 + 512
        && !s.starts_with('/')
        && !s.ends_with('/')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-/".contains(c));
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!(
            "`{s}`: a role name is letters, digits and +=,.@_- (a path before it with /), not an ARN"
        ))
    }
}

/// Runs `keytrail submit aws-org`.
pub fn run_aws_org(args: &SubmitAwsOrgArgs) -> anyhow::Result<ExitStatus> {
    let opts = keytrail_collect::AwsCollectOptions {
        profile: args.profile.clone(),
        ..Default::default()
    };
    let mut out = Discovered::default();
    match keytrail_collect::list_org_accounts_blocking(&opts) {
        Err(e) => out.failed.push(format!("aws-org: {e}")),
        Ok(accounts) => {
            let (mut inactive, mut excluded, mut jobs) = (0, 0, 0);
            for a in &accounts {
                if args.exclude_accounts.contains(&a.id) {
                    excluded += 1;
                    continue;
                }
                if a.status != "ACTIVE" && !args.include_suspended {
                    inactive += 1;
                    continue;
                }
                let target = Target::AwsAccount {
                    account: a.id.clone(),
                    role: args.role_name.clone(),
                };
                out.job(target, args.common.key.as_deref());
                jobs += 1;
            }
            for x in &args.exclude_accounts {
                if !accounts.iter().any(|a| &a.id == x) {
                    eprintln!(
                        "warning: aws-org: --exclude-account {x}: not an account of the organization"
                    );
                }
            }
            let mut skipped = Vec::new();
            if inactive > 0 {
                skipped.push(format!("{inactive} not active (--include-suspended)"));
            }
            if excluded > 0 {
                skipped.push(format!("{excluded} excluded (--exclude-account)"));
            }
            eprintln!(
                "aws-org: {} account(s) listed, {jobs} to collect through role {}{}",
                accounts.len(),
                args.role_name,
                if skipped.is_empty() {
                    String::new()
                } else {
                    format!("; skipped {}", skipped.join(" and "))
                }
            );
        }
    }
    submit(&args.common, out)
}

/// Submit (or with `--dry-run` print) what was found, then name the
/// sources that could not be listed: exit 2 when there is one.
fn submit(common: &DiscoverArgs, found: Discovered) -> anyhow::Result<ExitStatus> {
    if common.dry_run {
        let mut out = std::io::stdout().lock();
        for job in &found.jobs {
            serde_json::to_writer(&mut out, job)?;
            out.write_all(b"\n")?;
        }
    } else if !found.jobs.is_empty() {
        let db = crate::cmd_worker::db_location(&common.db)?;
        let results = keytrail_worker::submit(&common.nats.config(), &db, &found.jobs)
            .map_err(anyhow::Error::msg)?;
        print_submitted(&results)?;
    }
    if found.failed.is_empty() {
        return Ok(ExitStatus::Clean);
    }
    for f in &found.failed {
        eprintln!("error: {f}");
    }
    Ok(ExitStatus::Error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids_and_role_names_are_checked() {
        assert_eq!(parse_account_id(" 123456789012").unwrap(), "123456789012");
        for bad in ["12345678901", "1234567890123", "12345678901a", ""] {
            assert!(
                parse_account_id(bad).unwrap_err().contains("12 digits"),
                "{bad}"
            );
        }
        assert!(parse_role_name("OrganizationAccountAccessRole").is_ok());
        assert!(parse_role_name("team/keytrail-audit").is_ok());
        for bad in ["arn:aws:iam::123456789012:role/x", "", "/x", "a b"] {
            assert!(
                parse_role_name(bad).unwrap_err().contains("not an ARN"),
                "{bad}"
            );
        }
    }
}

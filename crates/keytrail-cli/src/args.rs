//! Command-line syntax: every subcommand and flag, with its help text.
//!
//! Only this module knows clap. Each `cmd_*` module receives the parsed
//! struct for its subcommand.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Find machine credentials (API keys, tokens, private keys, cloud keys) in files.
#[derive(Debug, Parser)]
#[command(
    name = "keytrail",
    version,
    about,
    long_about = None,
    propagate_version = true,
    after_help = "Exit codes: 0 = nothing found, 1 = findings, 2 = error.\n\nExamples:\n  keytrail scan .\n  keytrail scan --format sarif --output keytrail.sarif src/\n  git diff | keytrail scan -"
)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
// Parsed once per process: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Scan files, directories, archives or stdin for secrets.
    Scan(ScanArgs),
    /// List or check secret rules.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Record known findings so later scans report only new ones.
    #[command(subcommand)]
    Baseline(BaselineCommand),
    /// Mask secrets in a stream (CI logs) as it passes from stdin to stdout.
    Redact(crate::cmd_redact::RedactArgs),
    /// Audit GitHub Actions and GitLab CI files for credential risks.
    CiAudit(crate::cmd_ci_audit::CiAuditArgs),
    /// Install or remove the pre-commit hook that blocks commits with secrets.
    #[command(subcommand)]
    Hook(crate::cmd_hook::HookCommand),
    /// Evaluate posture checks over a cloud account snapshot.
    Posture(crate::cmd_posture::PostureArgs),
    /// List every machine identity and credential with owner, age and privileges.
    Inventory(crate::cmd_posture::InventoryArgs),
    /// Collect a cloud account snapshot with the cloud APIs (read-only).
    #[command(subcommand)]
    Collect(crate::cmd_collect::CollectCommand),
    /// Detect credential abuse in audit logs (CloudTrail, Google Cloud, Entra ID, M365, Azure).
    Detect(crate::cmd_detect::DetectArgs),
    /// Was a leaked key used after it leaked? Joins findings, identity and audit logs.
    Exposure(crate::cmd_exposure::ExposureArgs),
    /// Download and check the IP intelligence `keytrail detect` uses.
    #[command(subcommand)]
    Intel(crate::cmd_intel::IntelCommand),
    /// Verify the findings of a JSON/JSONL report with their providers (live, invalid…).
    Verify(crate::cmd_verify::VerifyCmdArgs),
    /// Revoke a leaked credential through its provider's API, or print its runbook (dry run unless --yes).
    Revoke(crate::cmd_revoke::RevokeArgs),
    /// Rotate an AWS access key where it is stored (dry run unless --yes).
    #[command(subcommand)]
    Rotate(crate::cmd_rotate::RotateCommand),
    /// Record JSON/JSONL reports of `keytrail scan` in the store (never a secret).
    Import(crate::cmd_store::ImportArgs),
    /// List what the store holds: findings with status, owner, first and last seen (JSONL).
    Findings(crate::cmd_store::FindingsArgs),
    /// Triage a finding in the store: status, assignee, owner, comment (audited).
    Triage(crate::cmd_store::TriageArgs),
    /// List the runs the store recorded: command, target, times, completeness, findings.
    Runs(crate::cmd_store::RunsArgs),
    /// Serve the store over HTTP: a JSON API under /api/v1 with API tokens and roles.
    Serve(crate::cmd_serve::ServeArgs),
    /// Make, list and revoke API tokens for `keytrail serve`.
    #[command(subcommand)]
    Token(crate::cmd_serve::TokenCommand),
    /// Submit jobs to the NATS JetStream queue for `keytrail worker`s (many machines, one store).
    #[command(subcommand)]
    Submit(crate::cmd_worker::SubmitCommand),
    /// Run jobs from the NATS JetStream queue, recording each run once in the store.
    Worker(crate::cmd_worker::WorkerArgs),
    /// List the store's jobs and their state (queued, running, done, failed), or the workers.
    Jobs(crate::cmd_worker::JobsArgs),
    /// Recurring scans: schedules in the store, fired as jobs by `schedule run`.
    #[command(subcommand)]
    Schedule(crate::cmd_schedule::ScheduleCommand),
}

/// Output formats of `scan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// Text for people, grouped by finding.
    Human,
    /// One JSON document with all findings and a summary.
    Json,
    /// One JSON object per line, one line per location.
    Jsonl,
    /// SARIF 2.1.0 for code-scanning dashboards (never contains secrets).
    Sarif,
}

impl From<FormatArg> for keytrail_report::Format {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Human => keytrail_report::Format::Human,
            FormatArg::Json => keytrail_report::Format::Json,
            FormatArg::Jsonl => keytrail_report::Format::Jsonl,
            FormatArg::Sarif => keytrail_report::Format::Sarif,
        }
    }
}

/// Output formats of `scan`: the common ones plus GitLab's report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScanFormatArg {
    /// Text for people, grouped by rule.
    Human,
    /// One JSON document with all findings and a summary.
    Json,
    /// One JSON object per line, one line per location.
    Jsonl,
    /// SARIF 2.1.0 for code-scanning dashboards (never contains secrets).
    Sarif,
    /// GitLab secret-detection report, for `artifacts: reports:
    /// secret_detection` (never contains secrets).
    Gitlab,
}

impl From<ScanFormatArg> for keytrail_report::Format {
    fn from(f: ScanFormatArg) -> Self {
        match f {
            ScanFormatArg::Human => keytrail_report::Format::Human,
            ScanFormatArg::Json => keytrail_report::Format::Json,
            ScanFormatArg::Jsonl => keytrail_report::Format::Jsonl,
            ScanFormatArg::Sarif => keytrail_report::Format::Sarif,
            ScanFormatArg::Gitlab => keytrail_report::Format::Gitlab,
        }
    }
}

/// Confidence levels accepted by `--min-confidence`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ConfidenceArg {
    /// Everything, including generic patterns (`password = ...`).
    Low,
    /// Vendor-specific rules; no generic patterns.
    Medium,
    /// Only fixed-prefix, checksummed or otherwise unambiguous formats.
    High,
}

impl From<ConfidenceArg> for keytrail_types::Confidence {
    fn from(c: ConfidenceArg) -> Self {
        match c {
            ConfidenceArg::Low => keytrail_types::Confidence::Low,
            ConfidenceArg::Medium => keytrail_types::Confidence::Medium,
            ConfidenceArg::High => keytrail_types::Confidence::High,
        }
    }
}

/// Severity levels accepted by `--min-severity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SeverityArg {
    /// Everything.
    Info,
    /// Low and above.
    Low,
    /// Medium and above.
    Medium,
    /// High and critical.
    High,
    /// Only critical.
    Critical,
}

impl From<SeverityArg> for keytrail_types::Severity {
    fn from(s: SeverityArg) -> Self {
        match s {
            SeverityArg::Info => keytrail_types::Severity::Info,
            SeverityArg::Low => keytrail_types::Severity::Low,
            SeverityArg::Medium => keytrail_types::Severity::Medium,
            SeverityArg::High => keytrail_types::Severity::High,
            SeverityArg::Critical => keytrail_types::Severity::Critical,
        }
    }
}

/// Formats of `rules list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormatArg {
    /// An aligned table.
    Human,
    /// A JSON array of rule objects.
    Json,
}

/// What to scan and how to walk it; shared by `scan` and `baseline create`.
#[derive(Debug, Args)]
pub struct InputArgs {
    /// Files, directories or archives to scan; `-` reads standard input.
    ///
    /// Example: `keytrail scan src/ config/app.env`
    #[arg(value_name = "PATH", required_unless_present_any = ["images", "git_urls", "logs", "staged", "s3", "github_orgs", "gitlab_groups"])]
    pub paths: Vec<PathBuf>,

    /// Scan only the files of git repositories, not their history.
    ///
    /// By default a PATH that is a git repository (work tree, bare repository
    /// or `.git` directory) is scanned whole: every blob in its object
    /// database once (reachable or not), plus uncommitted and untracked files.
    /// Example: `keytrail scan --no-history .`
    #[arg(long)]
    pub no_history: bool,

    /// Clone the repository at URL into a temporary directory and scan its history; repeatable.
    ///
    /// Example: `--git-url https://github.com/org/repo.git` or `--git-url file:///srv/repo.git`
    #[arg(long = "git-url", value_name = "URL")]
    pub git_urls: Vec<String>,

    /// Scan only the blobs introduced by commits after REV (up to HEAD): a pull-request gate.
    ///
    /// Example: `keytrail scan --since-commit origin/main .`
    #[arg(long, value_name = "REV")]
    pub since_commit: Option<String>,

    /// Scan only the blobs introduced by the commits of BASE..HEAD.
    ///
    /// Example: `keytrail scan --range origin/main..HEAD .`
    #[arg(long, value_name = "BASE..HEAD")]
    pub range: Option<String>,

    /// A scheduled job's recurring scan (`keytrail schedule`): a JSON file
    /// of the ref tips the schedule's last run saw (`{"refs/heads/main":
    /// "COMMIT", …}`; `{}` for none). Only commits new since are scanned
    /// (a partial run: it never marks findings fixed) unless a ref was
    /// rewritten; set by workers, not by hand.
    #[arg(long, value_name = "FILE", hide = true)]
    pub since_refs: Option<PathBuf>,

    /// A scheduled job's recurring image scan: the digest the schedule's
    /// last run saw. An image that still has it is not read again; set by
    /// workers, not by hand.
    #[arg(long, value_name = "DIGEST", hide = true)]
    pub since_digest: Option<String>,

    /// Scan only what is staged in the index (differs from HEAD): for pre-commit hooks.
    ///
    /// Without a PATH the current directory's repository is used.
    /// Example: `keytrail scan --staged`
    #[arg(long)]
    pub staged: bool,

    /// Scan a container image: every layer (before whiteouts) and its config; repeatable.
    ///
    /// REF is a registry reference (`registry/repo:tag`, `repo@sha256:…`),
    /// `docker-archive:PATH` (docker save output), `oci:DIR` or `oci-archive:PATH`;
    /// an existing local path (an OCI layout directory, a docker save or OCI
    /// tar) is read from disk without a prefix.
    /// Example: `--image docker-archive:app.tar --image ghcr.io/org/app:1.2`
    #[arg(long = "image", value_name = "REF")]
    pub images: Vec<String>,

    /// Platforms to scan in multi-platform images (`os/arch[/variant]`); repeatable. Default: all.
    ///
    /// Example: `--platform linux/amd64`
    #[arg(long = "platform", value_name = "OS/ARCH")]
    pub platforms: Vec<String>,

    /// Registry user name. Without it, credentials come from the docker
    /// config (`$DOCKER_CONFIG/config.json` or ~/.docker/config.json):
    /// `credHelpers` for the registry, then `credsStore`, then `auths`
    /// (user and password, or an `identitytoken` exchanged for a bearer
    /// token). Basic and bearer-token registries are both supported.
    ///
    /// Example: `--registry-user ci-bot`
    #[arg(long = "registry-user", value_name = "USER")]
    pub registry_user: Option<String>,

    /// Registry password; prefer the environment variable.
    ///
    /// Example: `KEYTRAIL_REGISTRY_PASSWORD=… keytrail scan --image …`
    #[arg(
        long = "registry-password",
        value_name = "PASSWORD",
        env = "KEYTRAIL_REGISTRY_PASSWORD",
        hide_env_values = true
    )]
    pub registry_password: Option<String>,

    /// Registry hosts to speak plain HTTP to (loopback registries fall back to HTTP anyway); repeatable.
    ///
    /// Example: `--plain-http registry.internal:5000`
    #[arg(long = "plain-http", value_name = "HOST:PORT")]
    pub plain_http: Vec<String>,

    /// Scan every object under an S3 prefix like files (archives opened,
    /// exports split); `s3://BUCKET/KEY?versionId=ID` scans one version of
    /// one object; repeatable.
    ///
    /// Credentials and region come from the AWS default chain. A bucket that
    /// cannot be listed (AccessDenied, NoSuchBucket) or an empty prefix fails
    /// the run (exit 2). Example: `--s3 s3://backups/exports/`
    #[arg(long = "s3", value_name = "S3_URI")]
    pub s3: Vec<String>,

    /// S3 endpoint URL (S3-compatible stores, emulators); default: the SDK's
    /// resolution, which honours `AWS_ENDPOINT_URL`.
    ///
    /// Example: `--s3-endpoint http://127.0.0.1:9000`
    #[arg(long = "s3-endpoint", value_name = "URL")]
    pub s3_endpoint: Option<String>,

    /// Scan every repository of a GitHub organisation (or user), full
    /// history, with its wiki and its issue and pull request discussions;
    /// repeatable.
    ///
    /// The token comes from `GITHUB_TOKEN` (needed for private repositories
    /// and a higher rate limit). Example: `--github-org acme`
    #[arg(long = "github-org", value_name = "ORG")]
    pub github_orgs: Vec<String>,

    /// Scan every project of a GitLab group and its subgroups, full history,
    /// with wikis and issue and merge request discussions; repeatable.
    ///
    /// The token comes from `GITLAB_TOKEN`. Example: `--gitlab-group acme/platform`
    #[arg(long = "gitlab-group", value_name = "GROUP")]
    pub gitlab_groups: Vec<String>,

    /// GitHub API base (GitHub Enterprise Server: `https://HOST/api/v3`).
    ///
    /// Example: `--github-api https://github.example.com/api/v3`
    #[arg(long = "github-api", value_name = "URL", env = "GITHUB_API_URL")]
    pub github_api: Option<String>,

    /// GitLab API base (self-managed GitLab: `https://HOST/api/v4`).
    ///
    /// Example: `--gitlab-api https://gitlab.example.com/api/v4`
    #[arg(long = "gitlab-api", value_name = "URL", env = "GITLAB_API_URL")]
    pub gitlab_api: Option<String>,

    /// Scan a CI log file (`-` for stdin): ANSI codes and timestamp prefixes are stripped; repeatable.
    ///
    /// Example: `keytrail scan --log build.log`
    #[arg(long = "log", value_name = "FILE")]
    pub logs: Vec<PathBuf>,

    /// Read settings from FILE instead of the `keytrail.toml` or
    /// `.keytrail.toml` found from the scanned root upwards.
    ///
    /// The file can disable and enable rules, add rule directories, exclude
    /// paths, allow-list fingerprints and secret values (as SHA-256), set
    /// the confidence and severity thresholds and per-source limits; see
    /// docs/configuration.md. Example: `--config ci/keytrail.toml`
    #[arg(long, value_name = "FILE", conflicts_with = "no_config")]
    pub config: Option<PathBuf>,

    /// Read no config file and no `.keytrailignore`.
    ///
    /// Example: `keytrail scan --no-config .`
    #[arg(long)]
    pub no_config: bool,

    /// Do not run the rule ID (or every rule whose id starts with PREFIX, as `PREFIX*`); repeatable.
    ///
    /// Example: `--disable-rule aws.access_key_id --disable-rule 'slack.*'`
    #[arg(long = "disable-rule", value_name = "ID")]
    pub disable_rule: Vec<String>,

    /// Run the rule ID even below `--min-confidence` or disabled by a
    /// `disable`; `PREFIX*` selects many; repeatable.
    ///
    /// Example: `--enable-rule 'generic.password.*'`
    #[arg(long = "enable-rule", value_name = "ID")]
    pub enable_rule: Vec<String>,

    /// Add the rules in DIR (YAML files, searched recursively) to the builtin rules.
    ///
    /// Repeatable. A rule file with errors stops the run with exit code 2;
    /// `keytrail rules check DIR` explains them.
    /// Example: `--rules ./keytrail-rules`
    #[arg(long = "rules", value_name = "DIR")]
    pub rules: Vec<PathBuf>,

    /// Skip paths matching GLOB (gitignore-style, matched against paths under the scanned roots).
    ///
    /// Repeatable. Example: `--exclude 'vendor/**' --exclude '*.min.js'`
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,

    /// Do not look inside archives (zip, tar, tar.gz, gz ...); scan them as plain files.
    ///
    /// Example: `keytrail scan --no-archives dist/`
    #[arg(long)]
    pub no_archives: bool,

    /// Skip binary files instead of scanning their printable strings.
    ///
    /// By default the printable runs (ASCII and UTF-16, 8 characters or
    /// more) of binary content are scanned: tokens compiled into `.pyc`,
    /// `.class` and native binaries. Example: `keytrail scan --no-binary dist/`
    #[arg(long)]
    pub no_binary: bool,

    /// Maximum nesting of archives inside archives to open [default: 3, or
    /// `limits.max_archive_depth` in the config file].
    ///
    /// Example: `--max-archive-depth 1` opens `a.zip` but not `a.zip!b.tar`.
    #[arg(long, value_name = "N")]
    pub max_archive_depth: Option<usize>,

    /// Most bytes decompressed out of one archive, nested ones included
    /// [default: 256M, or `limits.max_archive_bytes` in the config file].
    ///
    /// Past it the rest of the archive is not scanned: a warning, a
    /// `not_scanned` entry in the report, and exit code 2 with
    /// `--fail-on-error`. Suffixes K, M, G (powers of 1024).
    /// Example: `--max-archive-bytes 2G`
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_archive_bytes: Option<u64>,

    /// Output-to-input ratio past which an archive or image layer is called a
    /// decompression bomb and its rest is not scanned; 0 turns the test off.
    ///
    /// The test starts after 16 MiB of output; `--max-archive-bytes` still holds.
    /// Example: `--max-archive-ratio 0 --max-archive-bytes 4G`
    #[arg(long, value_name = "N", default_value_t = 200)]
    pub max_archive_ratio: u64,

    /// Worker threads for reading and scanning; 0 picks one per CPU.
    ///
    /// More than 8 per CPU is lowered to that (with a note).
    /// Example: `--threads 4`
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub threads: usize,

    /// Largest input held in memory in one piece; bigger files are streamed
    /// in bounded chunks. Hidden: a tuning knob for tests and debugging.
    #[arg(long, value_name = "BYTES", default_value_t = 64 << 20, hide = true)]
    pub max_in_memory: u64,

    /// Print nothing on stderr except errors: no progress, summary or warnings.
    ///
    /// Example: `keytrail scan -q . && echo clean`
    #[arg(long, short)]
    pub quiet: bool,

    /// Also list skipped inputs (binary files, excluded paths ...) on stderr.
    ///
    /// Example: `keytrail scan -v .`
    #[arg(long, short)]
    pub verbose: bool,
}

/// A byte size: digits with an optional K, M or G suffix (powers of 1024).
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (digits, shift) = match t.char_indices().last() {
        Some((i, 'k' | 'K')) => (&t[..i], 10),
        Some((i, 'm' | 'M')) => (&t[..i], 20),
        Some((i, 'g' | 'G')) => (&t[..i], 30),
        _ => (t, 0),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1u64 << shift))
        .ok_or_else(|| format!("`{s}` is not a size (examples: 1048576, 512K, 256M, 2G)"))
}

/// `keytrail scan`.
#[derive(Debug, Args)]
#[command(after_help = "Exit codes: 0 = nothing found, 1 = findings, 2 = error \
(bad arguments, unreadable rules, a --db store that cannot be opened or written, \
a named target that cannot be read, or an \
unreadable input or partly scanned archive with --fail-on-error).\n\n\
Examples:\n  keytrail scan .\n  keytrail scan --format jsonl --min-confidence low repo/ > findings.jsonl\n  \
keytrail scan --baseline .keytrail-baseline.json .\n  keytrail scan --db findings.db .\n  cat app.log | keytrail scan -")]
pub struct ScanArgs {
    /// Inputs and walking options.
    #[command(flatten)]
    pub input: InputArgs,

    /// Output format.
    ///
    /// Example: `--format sarif --output keytrail.sarif`, or in GitLab CI
    /// `--format gitlab --output gl-secret-detection-report.json`
    #[arg(long, value_enum, default_value_t = ScanFormatArg::Human)]
    pub format: ScanFormatArg,

    /// Write the report to FILE instead of standard output.
    ///
    /// Example: `--output findings.json`
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Do not report findings recorded in this baseline file (see `keytrail baseline create`).
    ///
    /// Example: `--baseline .keytrail-baseline.json`
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,

    /// Print full secret values: adds a `secret` field to JSON/JSONL and shows it in human output.
    ///
    /// Never affects SARIF. Without this flag no output contains a secret.
    /// Example: `keytrail scan --reveal --format json .`
    #[arg(long)]
    pub reveal: bool,

    /// Exit with code 2 when an input inside a target could not be read, or
    /// an archive was only partly scanned (a limit cut it); otherwise these
    /// are warnings. A target named on the command line (a PATH, `--git-url`,
    /// `--image`, `--log`) that cannot be read at all always exits 2.
    ///
    /// Example: `keytrail scan --fail-on-error /srv`
    #[arg(long)]
    pub fail_on_error: bool,

    /// Report only findings of rules at least this confident [default:
    /// medium, or `scan.min_confidence` in the config file].
    ///
    /// Medium leaves out generic patterns (`password = ...`) that are noisy
    /// on real code. Example: `--min-confidence low`
    #[arg(long, value_enum, value_name = "LEVEL")]
    pub min_confidence: Option<ConfidenceArg>,

    /// Report only findings at least this severe [default: all, or
    /// `scan.min_severity` in the config file].
    ///
    /// Example: `--min-severity high`
    #[arg(long, value_enum, value_name = "LEVEL")]
    pub min_severity: Option<SeverityArg>,

    /// Human output: show at most N locations per finding, then "… and M more"; 0 shows all.
    ///
    /// Machine formats (json, jsonl, sarif) always carry every location.
    /// Example: `--max-locations 0`
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub max_locations: usize,

    /// SARIF `automationDetails.id` category: GitHub code scanning keeps one
    /// set of alerts per category, so give each SARIF file you upload its own.
    ///
    /// Written as `NAME/`. An empty NAME leaves the field out (then the
    /// upload action's `category:` input applies).
    /// Example: `--sarif-category keytrail-images`
    #[arg(long, value_name = "NAME", default_value = "keytrail-scan")]
    pub sarif_category: String,

    /// Verification (`--verify`, `--analyze`, `--only-live`, `--fail-on`).
    #[command(flatten, next_help_heading = "Verification")]
    pub verify: crate::cmd_verify::VerifyArgs,

    /// The store (`--db`, `--record`, `--target`, `--owners`).
    #[command(flatten, next_help_heading = "Store")]
    pub store: crate::cmd_store::ScanStoreArgs,
}

/// `keytrail rules ...`.
#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// List the rules a scan would use: id, provider, confidence.
    #[command(
        after_help = "Examples:\n  keytrail rules list\n  keytrail rules list --rules ./my-rules --format json"
    )]
    List(RulesListArgs),
    /// Check rule files: syntax, patterns, examples and negative examples.
    #[command(
        after_help = "Exit codes: 0 = clean, 1 = problems found, 2 = a DIR cannot be read.\n\n\
Examples:\n  keytrail rules check ./my-rules\n  keytrail rules check --warnings-as-errors"
    )]
    Check(RulesCheckArgs),
}

/// `keytrail rules list`.
#[derive(Debug, Args)]
pub struct RulesListArgs {
    /// Also list the rules in DIR (repeatable).
    ///
    /// Example: `--rules ./my-rules`
    #[arg(long = "rules", value_name = "DIR")]
    pub rules: Vec<PathBuf>,

    /// Output format.
    ///
    /// Example: `--format json`
    #[arg(long, value_enum, default_value_t = ListFormatArg::Human)]
    pub format: ListFormatArg,
}

/// `keytrail rules check`.
#[derive(Debug, Args)]
pub struct RulesCheckArgs {
    /// Rule files or directories to check; without any, the builtin rules are checked.
    ///
    /// Example: `keytrail rules check ./my-rules extra.yml`
    #[arg(value_name = "DIR")]
    pub dirs: Vec<PathBuf>,

    /// Treat warnings (missing references or categories) as errors.
    ///
    /// Example: `keytrail rules check --warnings-as-errors ./my-rules`
    #[arg(long, short = 'W')]
    pub warnings_as_errors: bool,
}

/// `keytrail baseline ...`.
#[derive(Debug, Subcommand)]
pub enum BaselineCommand {
    /// Scan PATHs and record every finding in a baseline file.
    ///
    /// The file holds salted hashes of (rule, secret), never secrets or line
    /// numbers: moving code keeps findings suppressed, a new secret on the
    /// same line is still reported.
    #[command(
        after_help = "Examples:\n  keytrail baseline create . -o .keytrail-baseline.json\n  \
keytrail scan --baseline .keytrail-baseline.json ."
    )]
    Create(BaselineCreateArgs),
}

/// `keytrail baseline create`.
#[derive(Debug, Args)]
pub struct BaselineCreateArgs {
    /// Inputs and walking options.
    #[command(flatten)]
    pub input: InputArgs,

    /// Baseline file to write (overwritten).
    ///
    /// Example: `-o .keytrail-baseline.json`
    #[arg(long, short, value_name = "FILE")]
    pub output: PathBuf,

    /// Record only findings of rules at least this confident. The default
    /// records everything, so lowering `scan --min-confidence` later does
    /// not surface known findings.
    ///
    /// Example: `--min-confidence medium`
    #[arg(long, value_enum, value_name = "LEVEL", default_value_t = ConfidenceArg::Low)]
    pub min_confidence: ConfidenceArg,
}

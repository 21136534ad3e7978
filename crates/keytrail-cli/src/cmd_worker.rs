//! keytrail on many machines from the command line: `keytrail submit scan`
//! (jobs into the store and onto the NATS JetStream queue), `keytrail
//! worker` (take jobs and run each as `keytrail scan --db` runs, recorded
//! under the job's key) and `keytrail jobs` (their state, and the workers'
//! heartbeats). The queue is `keytrail-worker`'s; the scan is the one of
//! `cmd_scan.rs`, parsed from the same flags. The discovery submitters
//! (`submit github-org`, `gitlab-group`, `registry`) are `cmd_discover.rs`.

use crate::ExitStatus;
use crate::args::{Cli, Command};
use crate::cmd_store::DbArg;
use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use keytrail_store::{JobFilter, JobState};
use keytrail_worker::{Event, Job, JobKind, Outcome, QueueConfig, Runner, Target, WorkerOptions};
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

/// Where the queue is: `--nats` and `--queue-prefix`.
#[derive(Debug, Clone, Args)]
pub struct NatsArgs {
    /// The NATS server with JetStream (`nats-server -js`).
    ///
    /// Example: `--nats nats://nats.internal:4222`
    #[arg(
        long,
        value_name = "URL",
        env = "KEYTRAIL_NATS",
        default_value = "nats://127.0.0.1:4222"
    )]
    pub nats: String,

    /// Prefix of the queue's streams, subjects and consumer (`keytrail`:
    /// streams KEYTRAIL_JOBS and KEYTRAIL_DEAD, subjects keytrail.jobs.*
    /// and keytrail.dead.*, consumer keytrail-workers): two deployments on
    /// one server use two prefixes.
    ///
    /// Example: `--queue-prefix staging`
    #[arg(long, value_name = "NAME", default_value = "keytrail", value_parser = parse_prefix)]
    pub queue_prefix: String,
}

impl NatsArgs {
    /// The queue's configuration.
    pub(crate) fn config(&self) -> QueueConfig {
        let mut c = QueueConfig::new(&self.nats);
        c.prefix = self.queue_prefix.clone();
        c
    }
}

fn parse_prefix(s: &str) -> Result<String, String> {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        Ok(s.to_string())
    } else {
        Err(format!(
            "`{s}`: a prefix is letters, digits, `-` and `_` (it names streams and subjects)"
        ))
    }
}

/// A duration: `500ms`, `30s`, `5m`, or seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}`: a duration is a number and a unit (500ms, 30s, 5m)"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(format!("`{s}`: unknown unit `{unit}` (ms, s or m)")),
    }
}

/// `keytrail submit`.
#[derive(Debug, Subcommand)]
pub enum SubmitCommand {
    /// Submit scan jobs: one per TARGET, for `keytrail worker`s to run.
    Scan(SubmitScanArgs),
    /// Submit a scan job per repository of GitHub organisations (listed
    /// through the REST API).
    #[command(name = "github-org")]
    GithubOrg(crate::cmd_discover::SubmitGithubArgs),
    /// Submit a scan job per project of GitLab groups and their subgroups
    /// (listed through the REST API).
    #[command(name = "gitlab-group")]
    GitlabGroup(crate::cmd_discover::SubmitGitlabArgs),
    /// Submit a scan job per image tag of a registry's catalog (OCI
    /// distribution API).
    Registry(crate::cmd_discover::SubmitRegistryArgs),
    /// Submit a posture job per account of an AWS organization (listed
    /// through Organizations; workers collect each through a role).
    #[command(name = "aws-org")]
    AwsOrg(crate::cmd_discover::SubmitAwsOrgArgs),
    /// Submit a detection run over log files (CloudTrail as S3 delivers it):
    /// workers route the events by identity, detect per partition and join
    /// new keys with their first use; alerts go to the store.
    Detect(crate::cmd_detect_dist::SubmitDetectArgs),
}

/// `keytrail submit scan`.
#[derive(Debug, Args)]
#[command(
    after_help = "Prints one JSON line per TARGET: {\"job_key\", \"kind\", \"target\", \
\"state\", \"created\", \"published\", \"duplicate\"} (docs/workers.md).\n\n\
Exit codes: 0 = submitted (or already queued), 2 = error (a TARGET that is not a path, git URL, \
image or S3 URI; the store or the NATS server cannot be reached).\n\n\
Whole organisations: `keytrail submit github-org`, `gitlab-group`, `registry`; AWS \
organizations' accounts (posture jobs): `keytrail submit aws-org`.\n\n\
Examples:\n  keytrail submit scan --nats nats://127.0.0.1:4222 --db postgres://keytrail@db/keytrail \
/srv/repos/api https://github.com/acme/web.git image:registry.local/app:1.2\n  \
keytrail submit scan s3://backups/exports/\n  \
keytrail submit scan --key nightly-2026-12-07 /srv/repos/api"
)]
pub struct SubmitScanArgs {
    /// What to scan, one job each: a path the workers can reach (made
    /// absolute here), a git URL (`https://…`, `ssh://…`, `git@host:path`,
    /// or `git:URL` for any other), an image (`image:REF`,
    /// `docker://REF`), or an S3 prefix (`s3://BUCKET/PREFIX`, read by the
    /// workers with their own AWS credentials and `--s3-endpoint`). A
    /// target already queued or running is not submitted again: its job
    /// is printed.
    ///
    /// Example: `/srv/repos/api https://github.com/acme/web.git image:alpine:3.20 s3://backups/exports/`
    #[arg(value_name = "TARGET", required = true)]
    pub targets: Vec<String>,

    /// The queue.
    #[command(flatten)]
    pub nats: NatsArgs,

    /// The store the workers record into (the jobs are recorded there too).
    #[command(flatten)]
    pub db: DbArg,

    /// The job key [default: a fresh one per job]: a job whose key was
    /// submitted before is that job (a scheduler's retried submission
    /// submits nothing new). With several TARGETs each key is KEY:N, N
    /// the target's position from 1.
    ///
    /// Example: `--key nightly-2026-12-07`
    #[arg(long, value_name = "KEY")]
    pub key: Option<String>,
}

/// `keytrail worker`.
#[derive(Debug, Args)]
#[command(
    after_help = "Runs until SIGTERM or Ctrl-C (the job under way is finished first), \
or --max-jobs, or --exit-when-idle. Each scan job is a `keytrail scan --db LOCATION --run-key JOB \
--target TARGET` of its target; each posture job (`submit aws-org`) assumes \
arn:aws:iam::ACCOUNT:role/ROLE with the worker's own AWS credentials, collects the account as \
`keytrail collect aws --role-arn` does (regions: --aws-region) and records `keytrail posture --db \
LOCATION --run-key JOB --target aws:ACCOUNT` of it. A job's run is recorded once even when the \
job runs twice; a try that fails \
is retried after 1, 2, 4… s, and a job failing its last try is dead-lettered on \
PREFIX.dead.KIND with the reason in the Keytrail-Error header.\n\n\
Exit codes: 0 = stopped, 2 = error (the store or the NATS server cannot be reached at start).\n\n\
Examples:\n  keytrail worker --nats nats://nats.internal:4222 --db postgres://keytrail@db/keytrail\n  \
keytrail worker --db findings.db --exit-when-idle 10s\n  \
keytrail worker --aws-region us-east-1 --aws-region eu-west-1"
)]
pub struct WorkerArgs {
    /// The queue.
    #[command(flatten)]
    pub nats: NatsArgs,

    /// The store jobs are recorded into (PostgreSQL when workers run on
    /// several machines; a SQLite file serves workers of one machine).
    #[command(flatten)]
    pub db: DbArg,

    /// This worker's name, in the store's heartbeats and the jobs it ran
    /// [default: HOST-PID].
    ///
    /// Example: `--name scan-node-3`
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// How long a job may go without a heartbeat before JetStream gives it
    /// to another worker (a worker sends three per period while a job
    /// runs, so only a dead or cut-off worker loses its job). Applies when
    /// the first worker creates the consumer.
    ///
    /// Example: `--ack-wait 30s`
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub ack_wait: Duration,

    /// Deliveries of a job before it is dead-lettered (crashed workers'
    /// included). Applies when the first worker creates the consumer.
    ///
    /// Example: `--max-deliver 3`
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(i64).range(1..))]
    pub max_deliver: i64,

    /// Stop after N jobs (done or dead-lettered).
    ///
    /// Example: `--max-jobs 100`
    #[arg(long, value_name = "N")]
    pub max_jobs: Option<u64>,

    /// Stop once the queue has had nothing for this long.
    ///
    /// Example: `--exit-when-idle 30s`
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub exit_when_idle: Option<Duration>,

    /// Region to collect EC2 and EKS data from in posture jobs (`submit
    /// aws-org`), as `collect aws --region`; repeatable [default: every
    /// region enabled for each account].
    ///
    /// Example: `--aws-region us-east-1 --aws-region eu-west-1`
    #[arg(long = "aws-region", value_name = "REGION")]
    pub aws_regions: Vec<String>,

    /// S3 endpoint URL for S3 jobs (S3-compatible stores, emulators), as
    /// `scan --s3-endpoint` [default: the SDK's, or `AWS_ENDPOINT_URL`].
    /// S3 credentials are the worker's own (the SDK's usual chain).
    ///
    /// Example: `--s3-endpoint http://minio.internal:9000`
    #[arg(long = "s3-endpoint", value_name = "URL")]
    pub s3_endpoint: Option<String>,

    /// Print nothing on stderr except errors.
    ///
    /// Example: `keytrail worker -q`
    #[arg(long, short)]
    pub quiet: bool,

    /// Fault injection for the crash tests: pause PHASE
    /// (`before-record`, `after-record`, `before-checkpoint`) of every job
    /// for DURATION.
    #[arg(long, value_name = "PHASE:DURATION", hide = true, value_parser = parse_pause)]
    pub fault_pause: Option<(Phase, Duration)>,
}

/// Where `--fault-pause` pauses a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// After the scan, before its run is recorded.
    BeforeRecord,
    /// After the run is recorded, before the job is marked done and acknowledged.
    AfterRecord,
    /// A detection partition's step, after its engine ran, before its
    /// checkpoint is recorded.
    BeforeCheckpoint,
}

fn parse_pause(s: &str) -> Result<(Phase, Duration), String> {
    let (phase, d) = s
        .split_once(':')
        .ok_or_else(|| format!("`{s}`: PHASE:DURATION"))?;
    let phase = match phase {
        "before-record" => Phase::BeforeRecord,
        "after-record" => Phase::AfterRecord,
        "before-checkpoint" => Phase::BeforeCheckpoint,
        _ => {
            return Err(format!(
                "`{phase}`: before-record, after-record or before-checkpoint"
            ));
        }
    };
    Ok((phase, parse_duration(d)?))
}

/// Formats of `keytrail jobs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum JobsFormat {
    /// One JSON object per job (or worker).
    Jsonl,
    /// One line per job: state, tries, key, target, findings or error.
    Human,
}

/// `keytrail jobs`.
#[derive(Debug, Args)]
#[command(after_help = "JSONL fields: docs/workers.md.\n\n\
Exit codes: 0 = listed, 2 = error (no such store).\n\n\
Examples:\n  keytrail jobs --db postgres://keytrail@db/keytrail --state failed\n  \
keytrail jobs --db findings.db --format human\n  keytrail jobs --db findings.db --workers")]
pub struct JobsArgs {
    /// The store.
    #[command(flatten)]
    pub db: DbArg,

    /// Only jobs in this state (repeatable): queued, running, done, failed.
    ///
    /// Example: `--state queued --state running`
    #[arg(long = "state", value_name = "STATE", value_parser = parse_state)]
    pub states: Vec<JobState>,

    /// At most N jobs, newest first.
    ///
    /// Example: `--limit 20`
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,

    /// List the workers (their last heartbeat, the job under way, jobs
    /// done and failed) instead of the jobs.
    ///
    /// Example: `--workers`
    #[arg(long)]
    pub workers: bool,

    /// Output format.
    ///
    /// Example: `--format human`
    #[arg(long, value_enum, default_value_t = JobsFormat::Jsonl)]
    pub format: JobsFormat,
}

fn parse_state(s: &str) -> Result<JobState, String> {
    s.parse()
}

/// Runs `keytrail submit`.
pub fn run_submit(cmd: &SubmitCommand) -> anyhow::Result<ExitStatus> {
    let args = match cmd {
        SubmitCommand::Scan(a) => a,
        SubmitCommand::GithubOrg(a) => return crate::cmd_discover::run_github(a),
        SubmitCommand::GitlabGroup(a) => return crate::cmd_discover::run_gitlab(a),
        SubmitCommand::Registry(a) => return crate::cmd_discover::run_registry(a),
        SubmitCommand::AwsOrg(a) => return crate::cmd_discover::run_aws_org(a),
        SubmitCommand::Detect(a) => return crate::cmd_detect_dist::run_submit(a),
    };
    let cwd = std::env::current_dir().context("the working directory")?;
    let mut jobs = Vec::with_capacity(args.targets.len());
    for (i, t) in args.targets.iter().enumerate() {
        let target = Target::parse(t, &cwd).map_err(anyhow::Error::msg)?;
        #[cfg(feature = "scan-s3")]
        if let Target::S3(u) = &target {
            // What `scan --s3` will refuse is refused here, not by the workers.
            keytrail_collect::s3scan::S3Target::parse(u).map_err(anyhow::Error::msg)?;
        }
        let key = args.key.as_ref().map(|k| {
            if args.targets.len() == 1 {
                k.clone()
            } else {
                format!("{k}:{}", i + 1)
            }
        });
        jobs.push(Job::new(JobKind::Scan, target, key));
    }
    let db = db_location(&args.db)?;
    let results =
        keytrail_worker::submit(&args.nats.config(), &db, &jobs).map_err(anyhow::Error::msg)?;
    print_submitted(&results)?;
    Ok(ExitStatus::Clean)
}

/// One JSON line per submitted job on stdout (docs/workers.md).
pub(crate) fn print_submitted(results: &[keytrail_worker::SubmitResult]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    for r in results {
        let line = serde_json::json!({
            "job_key": r.job.job_key,
            "kind": r.job.kind,
            "target": r.job.target,
            "state": r.job.state,
            "created": r.created,
            "published": r.published.is_some(),
            "duplicate": r.published.as_ref().is_some_and(|p| p.duplicate),
        });
        serde_json::to_writer(&mut out, &line)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// The store: `--db`, else the default one.
pub(crate) fn db_location(db: &DbArg) -> anyhow::Result<String> {
    match &db.db {
        Some(d) => Ok(d.clone()),
        None => crate::cmd_store::default_db(),
    }
}

/// Runs `keytrail worker`.
pub fn run_worker(args: &WorkerArgs) -> anyhow::Result<ExitStatus> {
    let mut config = args.nats.config();
    config.ack_wait = args.ack_wait;
    config.max_deliver = args.max_deliver;
    let mut options = WorkerOptions::new();
    if let Some(n) = &args.name {
        options.name = n.clone();
    }
    options.max_jobs = args.max_jobs;
    options.idle_exit = args.exit_when_idle;
    let db = db_location(&args.db)?;
    let runner = Arc::new(ScanRunner {
        quiet: args.quiet,
        pause: args.fault_pause,
        s3_endpoint: args.s3_endpoint.clone(),
        aws_regions: args.aws_regions.clone(),
        queue: config.clone(),
        detect: crate::cmd_detect_dist::DetectCache::default(),
    });
    let summary =
        keytrail_worker::work(&config, &db, runner, &options).map_err(anyhow::Error::msg)?;
    if !args.quiet {
        eprintln!(
            "worker {} stopped: {} job(s) done, {} failed tr(ies), {} dead-lettered",
            options.name, summary.done, summary.failed, summary.dead
        );
    }
    Ok(ExitStatus::Clean)
}

/// A worker's jobs, run as `keytrail scan --db` runs.
struct ScanRunner {
    quiet: bool,
    pause: Option<(Phase, Duration)>,
    /// `--s3-endpoint` of S3 jobs.
    s3_endpoint: Option<String>,
    /// `--aws-region` of posture jobs.
    aws_regions: Vec<String>,
    /// The queue (detection steps publish and read routed events, and
    /// submit the next steps).
    queue: QueueConfig,
    /// Detection engines kept between steps.
    detect: crate::cmd_detect_dist::DetectCache,
}

impl ScanRunner {
    fn pause(&self, phase: Phase) {
        if let Some((p, d)) = self.pause
            && p == phase
        {
            std::thread::sleep(d);
        }
    }
}

impl Runner for ScanRunner {
    fn run(&self, job: &Job, db: &str) -> Result<Outcome, String> {
        match job.kind {
            JobKind::Scan => self.scan(job, db),
            JobKind::Posture => {
                let outcome = self.posture(job, db)?;
                if let Some(sched) = &job.schedule {
                    let what = format!("posture: {} finding(s)", outcome.findings);
                    schedule_succeeded(db, sched.id, &job.key, &what, None)?;
                }
                Ok(outcome)
            }
            JobKind::Detect => {
                let pause = |p: Phase| self.pause(p);
                let cx = crate::cmd_detect_dist::StepContext {
                    queue: &self.queue,
                    cache: &self.detect,
                    pause: &pause,
                    s3_endpoint: self.s3_endpoint.as_deref(),
                };
                crate::cmd_detect_dist::run_step(&cx, job, db)
            }
        }
    }

    fn event(&self, event: &Event<'_>) {
        self.print(event)
    }
}

impl ScanRunner {
    /// A posture job: `collect aws --role-arn arn:aws:iam::ACCOUNT:role/ROLE`
    /// into a temporary snapshot, then `posture --db DB --run-key JOB
    /// --target aws:ACCOUNT` of it, parsed by the command's own parser.
    fn posture(&self, job: &Job, db: &str) -> Result<Outcome, String> {
        let Target::AwsAccount { account, role } = &job.target else {
            return Err(format!(
                "a posture job's target is an AWS account, not `{}`",
                job.target.recorded()
            ));
        };
        let arn = format!("arn:aws:iam::{account}:role/{role}");
        crate::cmd_collect::parse_role_arn(&arn)?;
        let dir = tempfile::tempdir()
            .map_err(|e| format!("cannot create a temporary snapshot directory: {e}"))?;
        let opts = keytrail_collect::AwsCollectOptions {
            regions: self.aws_regions.clone(),
            role_arn: Some(arn.clone()),
            session_name: Some(keytrail_collect::session_name(&job.key)),
            ..Default::default()
        };
        let diags = keytrail_collect::collect_aws_blocking(&opts, dir.path());
        let identity = dir.path().join("aws/sts-get-caller-identity.json");
        let reached: Option<serde_json::Value> = std::fs::read(&identity)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let Some(reached) = reached else {
            // The role could not be assumed (STS's reason) or the account
            // not reached: nothing to evaluate.
            let why: Vec<String> = diags.iter().take(3).map(|d| d.message.clone()).collect();
            return Err(if why.is_empty() {
                format!("{arn}: the account could not be reached")
            } else {
                why.join("; ")
            });
        };
        if reached["Account"].as_str() != Some(account.as_str()) {
            return Err(format!(
                "{arn} led to account {}, not {account}: nothing recorded",
                reached["Account"]
            ));
        }
        if !self.quiet {
            // Calls that failed: the run is recorded as incomplete.
            for d in &diags {
                eprintln!("warning: job {}: {d}", job.key);
            }
        }
        let snapshot = dir.path().display().to_string();
        let output = dir.path().join("posture.jsonl").display().to_string();
        let target = job.target.recorded();
        let argv = [
            "keytrail",
            "posture",
            "--quiet",
            "--snapshot",
            &snapshot,
            "--format",
            "jsonl",
            "--output",
            &output,
            "--db",
            db,
            "--run-key",
            &job.key,
            "--target",
            &target,
        ];
        let cli = Cli::try_parse_from(argv).map_err(|e| format!("job {}: {e}", job.key))?;
        let Command::Posture(args) = cli.command else {
            unreachable!("parsed as `posture`")
        };
        self.pause(Phase::BeforeRecord);
        let (status, sum) = crate::cmd_posture::posture(&args).map_err(|e| format!("{e:#}"))?;
        let sum = sum.ok_or("the posture run had no store")?;
        self.pause(Phase::AfterRecord);
        if status == ExitStatus::Error && sum.seen == 0 {
            return Err(format!(
                "{target}: nothing could be evaluated in the collected snapshot"
            ));
        }
        Ok(Outcome {
            findings: sum.seen as u64,
            recorded: sum.recorded,
        })
    }

    fn scan(&self, job: &Job, db: &str) -> Result<Outcome, String> {
        let target = job.target.recorded();
        // The flags of `keytrail scan`, parsed by the same parser: the
        // job's scan is the command's scan.
        let mut argv: Vec<String> = [
            "keytrail",
            "scan",
            "--quiet",
            "--db",
            db,
            "--run-key",
            &job.key,
            "--target",
            &target,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // A scheduled job scans what changed since its schedule's last
        // successful run: a repository's new commits, an image whose
        // digest moved.
        let cursor = job
            .schedule
            .as_ref()
            .and_then(|s| s.cursor.clone())
            .unwrap_or_default();
        let refs_file = match (&job.schedule, &job.target) {
            (Some(_), Target::Path(_) | Target::GitUrl(_)) => {
                let mut f = tempfile::Builder::new()
                    .prefix("keytrail-since-refs-")
                    .tempfile()
                    .map_err(|e| format!("cannot write the schedule's ref tips: {e}"))?;
                serde_json::to_writer(&mut f, &cursor.git_refs.clone().unwrap_or_default())
                    .map_err(|e| format!("cannot write the schedule's ref tips: {e}"))?;
                argv.extend(["--since-refs".into(), f.path().display().to_string()]);
                Some(f)
            }
            (Some(_), Target::Image(_)) => {
                if let Some(d) = &cursor.image_digest {
                    argv.extend(["--since-digest".into(), d.clone()]);
                }
                None
            }
            _ => None,
        };
        match &job.target {
            Target::Path(p) => argv.push(p.display().to_string()),
            Target::GitUrl(u) => argv.extend(["--git-url".into(), u.clone()]),
            Target::Image(r) => argv.extend(["--image".into(), r.clone()]),
            Target::S3(u) => {
                argv.extend(["--s3".into(), u.clone()]);
                if let Some(e) = &self.s3_endpoint {
                    argv.extend(["--s3-endpoint".into(), e.clone()]);
                }
            }
            Target::AwsAccount { .. } | Target::DetectStep { .. } | Target::DetectChain(_) => {
                return Err(format!("`{target}` is not a scan job's target"));
            }
        }
        let cli = Cli::try_parse_from(&argv).map_err(|e| format!("job {}: {e}", job.key))?;
        let Command::Scan(args) = cli.command else {
            unreachable!("parsed as `scan`")
        };
        let mut scanned = crate::cmd_scan::scan(&args).map_err(|e| format!("{e:#}"))?;
        if !scanned.out.failed_targets.is_empty() {
            let why: Vec<String> = scanned
                .out
                .errors
                .iter()
                .take(3)
                .map(|d| d.to_string())
                .collect();
            return Err(format!(
                "`{}` could not be read: nothing of it was scanned{}{}",
                scanned.out.failed_targets.join("`, `"),
                if why.is_empty() { "" } else { ": " },
                why.join("; ")
            ));
        }
        drop(refs_file);
        if let Some(sched) = &job.schedule
            && let Some(img) = scanned.out.image_digests.iter().find(|i| i.unchanged)
        {
            // Nothing was read: no run is recorded (it would prove nothing).
            let outcome = format!(
                "unchanged: {}",
                img.digest.as_deref().unwrap_or("the same digest")
            );
            schedule_succeeded(db, sched.id, &job.key, &outcome, None)?;
            if !self.quiet {
                eprintln!(
                    "job {}: {} {outcome} since schedule {}'s last run: not scanned, no run recorded",
                    job.key, img.reference, sched.id
                );
            }
            return Ok(Outcome {
                findings: 0,
                recorded: false,
            });
        }
        self.pause(Phase::BeforeRecord);
        let sum = scanned
            .record(&args)
            .map_err(|e| format!("{e:#}"))?
            .ok_or("the scan had no store")?;
        self.pause(Phase::AfterRecord);
        if let Some(sched) = &job.schedule {
            let (outcome, cursor) = schedule_outcome(&scanned, sum.seen);
            schedule_succeeded(db, sched.id, &job.key, &outcome, cursor.as_ref())?;
        }
        Ok(Outcome {
            findings: sum.seen as u64,
            recorded: sum.recorded,
        })
    }

    fn print(&self, event: &Event<'_>) {
        // Problems are always shown; the rest unless --quiet.
        match event {
            Event::Trouble { error } => eprintln!("warning: {error}"),
            Event::DeadLettered { key, error } => eprintln!(
                "error: job {} dead-lettered: {error}",
                key.unwrap_or("(not a job)")
            ),
            _ if self.quiet => {}
            Event::Ready {
                worker,
                ack_wait,
                max_deliver,
            } => eprintln!(
                "worker {worker} ready (ack wait {} s, {max_deliver} deliveries at most)",
                ack_wait.as_secs_f64()
            ),
            Event::Started { job, attempt } => eprintln!(
                "job {} started (try {attempt}): {}",
                job.key,
                job.target.recorded()
            ),
            Event::Done { job, outcome } => eprintln!(
                "job {} done: {} finding(s){}",
                job.key,
                outcome.findings,
                if outcome.recorded {
                    ""
                } else {
                    " (its run was recorded already)"
                }
            ),
            Event::AlreadyDone { key } => eprintln!("job {key} was done already"),
            Event::Retry {
                key,
                attempt,
                error,
            } => eprintln!("warning: job {key} failed (try {attempt}), will retry: {error}"),
        }
    }
}

/// What a scheduled job's scan did, for `schedule list`, and what the
/// schedule's next job starts from: the ref tips and the digest the scan
/// saw, or `None` (keep the earlier ones) when part of it could not be
/// read, so the next job reads it again.
fn schedule_outcome(
    scanned: &crate::cmd_scan::Scanned,
    findings: usize,
) -> (String, Option<keytrail_worker::Cursor>) {
    let out = &scanned.out;
    let mut cursor = keytrail_worker::Cursor::default();
    let mut what = Vec::new();
    if let Some(g) = out.git_refs.first() {
        what.push(match &g.full_because {
            None => format!("{} new commit(s)", g.commits),
            Some(why) => format!("full scan ({why}): {} commit(s)", g.commits),
        });
        cursor.git_refs = Some(g.refs.clone());
    }
    if let Some(i) = out.image_digests.first() {
        what.push(format!(
            "image {}",
            i.digest.as_deref().unwrap_or("(digest unknown)")
        ));
        cursor.image_digest = i.digest.clone();
    }
    if what.is_empty() {
        what.push("full scan".into());
    }
    let mut outcome = format!("{}: {findings} finding(s)", what.join(", "));
    let keep = scanned.incomplete_run;
    if keep {
        outcome.push_str("; part of it could not be read: the next job starts from the same point");
    }
    let changed = cursor.git_refs.is_some() || cursor.image_digest.is_some();
    (outcome, (changed && !keep).then_some(cursor))
}

/// Tell the store a job of schedule `id` succeeded.
pub(crate) fn schedule_succeeded(
    db: &str,
    id: i64,
    key: &str,
    outcome: &str,
    cursor: Option<&keytrail_worker::Cursor>,
) -> Result<(), String> {
    let cursor = cursor
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| e.to_string())?;
    let mut store = keytrail_store::Store::open(db).map_err(|e| e.to_string())?;
    store
        .schedule_succeeded(id, key, outcome, cursor.as_deref())
        .map_err(|e| format!("schedule {id}: {e}"))?;
    Ok(())
}

/// Runs `keytrail jobs`.
pub fn run_jobs(args: &JobsArgs) -> anyhow::Result<ExitStatus> {
    let mut store = crate::cmd_store::open(args.db.db.as_deref(), true)?;
    let mut out = std::io::stdout().lock();
    if args.workers {
        for w in store.workers()? {
            match args.format {
                JobsFormat::Jsonl => {
                    serde_json::to_writer(&mut out, &w)?;
                    out.write_all(b"\n")?;
                }
                JobsFormat::Human => writeln!(
                    out,
                    "{:<24} {:<24} done {:<6} failed {:<4} {}",
                    w.name,
                    w.heartbeat_at,
                    w.jobs_done,
                    w.jobs_failed,
                    w.job_key.as_deref().unwrap_or("idle")
                )?,
            }
        }
        return Ok(ExitStatus::Clean);
    }
    let jobs = store.jobs(&JobFilter {
        states: args.states.clone(),
        kind: None,
        limit: args.limit,
    })?;
    for j in jobs {
        match args.format {
            JobsFormat::Jsonl => {
                serde_json::to_writer(&mut out, &j)?;
                out.write_all(b"\n")?;
            }
            JobsFormat::Human => writeln!(
                out,
                "{:<8} {:>2}  {}  {}  {}",
                j.state.as_str(),
                j.attempts,
                j.job_key,
                j.target,
                match (&j.findings, &j.error) {
                    (Some(n), _) if j.state == JobState::Done => format!("{n} finding(s)"),
                    (_, Some(e)) => e.clone(),
                    _ => String::new(),
                }
            )?,
        }
    }
    Ok(ExitStatus::Clean)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_pauses_parse() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("7").unwrap(), Duration::from_secs(7));
        assert!(parse_duration("1h").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("s").is_err());
        assert_eq!(
            parse_pause("before-record:2s").unwrap(),
            (Phase::BeforeRecord, Duration::from_secs(2))
        );
        assert!(parse_pause("later:2s").is_err());
        assert!(parse_prefix("staging_1").is_ok());
        assert!(parse_prefix("a.b").is_err());
    }
}

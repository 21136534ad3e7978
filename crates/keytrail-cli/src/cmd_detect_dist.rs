//! Detection on many machines: `keytrail submit detect` (a run of log files
//! into the store, its route jobs onto the queue) and the steps a `keytrail
//! worker` runs for it (route, partition, keys), chained through the store.
//! The stages are `keytrail_detect::distributed`'s; the event stream is
//! `keytrail_worker::events`'. Guarantees and limits: docs/detect-distributed.md.

use crate::cmd_store::DbArg;
use crate::cmd_worker::{NatsArgs, Phase, db_location};
use crate::{ExitStatus, args::Cli, args::Command};
use anyhow::{Context, bail};
use clap::{Args, Parser};
use keytrail_detect::Alert;
use keytrail_detect::baseline::State;
use keytrail_detect::distributed::{
    KnownRegions, memory_logs, merge_key, route, run_keys, run_partition, slice_of,
};
use keytrail_detect::engine::{EngineBuilder, Shared};
use keytrail_detect::reader::{kinds, list_files, read_file};
use keytrail_store::{DetectRun, NewDetectRun, RunRecord, Store};
use keytrail_worker::{DetectChain, EventBus, Job, JobKind, Outcome, QueueConfig, Target};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// `keytrail submit detect`.
#[derive(Debug, Args)]
#[command(
    after_help = "Prints one JSON line: {\"run\", \"chain\", \"previous\", \"files\", \
\"already_read\", \"routes\", \"slices\", \"partitions\"} (docs/detect-distributed.md); \"run\" is \
null when every file was read by an earlier run of the chain.\n\n\
Exit codes: 0 = submitted (or nothing new), 2 = error (a LOG that does not exist or cannot be \
listed; the store or the NATS server cannot be reached).\n\n\
Runs of one --chain continue each other's state, as `keytrail detect --state DIR` runs do: \
submit the same tree every five minutes (or let `keytrail schedule detect` do it) and each run \
reads only the files new since the last.\n\n\
Examples:\n  keytrail submit detect --db postgres://keytrail@db/keytrail /srv/trail/AWSLogs\n  \
keytrail submit detect --chain org-trail --partitions 16 --ipintel /srv/intel /srv/trail/AWSLogs\n  \
keytrail submit detect --chain org-trail --since 2026-12-01 s3://org-trail/AWSLogs/o-abc123/"
)]
pub struct SubmitDetectArgs {
    /// Log files and directories (CloudTrail as S3 delivers it, or any log
    /// `keytrail detect` reads as JSON) at paths the workers can reach (made
    /// absolute here), or `s3://BUCKET/PREFIX` (listed here in the
    /// CloudTrail layout, read by the workers with their own credentials).
    /// Local paths and `s3://` cannot be mixed in one chain.
    ///
    /// Example: `/srv/trail/AWSLogs/o-abc123` or `s3://org-trail/AWSLogs/o-abc123/`
    #[arg(value_name = "LOG", required = true)]
    pub logs: Vec<PathBuf>,

    #[command(flatten)]
    pub chain_args: ChainArgs,

    /// The run's id [default: the chain, the time and a random suffix].
    ///
    /// Example: `--run nightly-2026-12-07`
    #[arg(long, value_name = "ID", value_parser = parse_name)]
    pub run: Option<String>,

    /// S3 endpoint URL for listing `s3://` LOGs (S3-compatible stores,
    /// emulators) [default: the SDK's, or `AWS_ENDPOINT_URL`]; the workers
    /// read the objects through their own `keytrail worker --s3-endpoint`.
    ///
    /// Example: `--s3-endpoint http://minio.internal:9000`
    #[arg(long = "s3-endpoint", value_name = "URL")]
    pub s3_endpoint: Option<String>,

    /// The queue.
    #[command(flatten)]
    pub nats: NatsArgs,

    /// The store the workers record alerts into (the run is recorded there).
    #[command(flatten)]
    pub db: DbArg,
}

/// How a chain's runs are cut and run: shared by `keytrail submit detect`
/// and `keytrail schedule detect`.
#[derive(Debug, Args)]
pub struct ChainArgs {
    /// The chain this run continues: its engines start from the state the
    /// chain's last run reached, and files it read already are left out.
    ///
    /// Example: `--chain org-trail`
    #[arg(long, value_name = "NAME", default_value = "default", value_parser = parse_name)]
    pub chain: String,

    /// Partitions of the identities (and of the access key ids): at most
    /// this many workers detect at once. Fixed per chain by its first run's
    /// checkpoints: keep it the same across a chain's runs.
    ///
    /// Example: `--partitions 16`
    #[arg(long, value_name = "N", default_value_t = 8,
          value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub partitions: u32,

    /// The time span of a route job: a route job reads the files of one
    /// account and region (of one folder, outside the CloudTrail layout)
    /// delivered in one span (`30m`, `1h`, `1d`), at most --files-per-job
    /// of them.
    ///
    /// Example: `--slice 1h`
    #[arg(long, value_name = "SPAN", default_value = "1d",
          value_parser = crate::cmd_schedule::parse_every)]
    pub slice: u64,

    /// Log files per route job at most.
    ///
    /// Example: `--files-per-job 500`
    #[arg(long, value_name = "N", default_value_t = 200,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub files_per_job: u32,

    /// The engine, as `keytrail detect` takes it (paths must exist where the
    /// workers run).
    #[command(flatten)]
    pub engine: crate::cmd_detect::EngineArgs,
}

fn parse_name(s: &str) -> Result<String, String> {
    if !s.is_empty()
        && s.len() <= 100
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        Ok(s.to_string())
    } else {
        Err(format!(
            "`{s}`: letters, digits, `-` and `_`, at most 100 (it names queue subjects)"
        ))
    }
}

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    std::fs::canonicalize(p).with_context(|| format!("`{}` cannot be read", p.display()))
}

fn is_s3(name: &str) -> bool {
    name.starts_with("s3://")
}

/// The engine's flags as `keytrail detect` arguments (paths made absolute,
/// times as RFC 3339), the settings a run records for its workers.
fn engine_argv(e: &crate::cmd_detect::EngineArgs) -> anyhow::Result<Vec<String>> {
    use keytrail_detect::time::format_rfc3339_ms;
    let mut a: Vec<String> = Vec::new();
    if let Some(t) = e.since {
        a.extend(["--since".into(), format_rfc3339_ms(t)]);
    }
    if let Some(t) = e.until {
        a.extend(["--until".into(), format_rfc3339_ms(t)]);
    }
    for s in &e.sigma {
        a.extend(["--sigma".into(), absolute(s)?.display().to_string()]);
    }
    if e.no_default_sigma {
        a.push("--no-default-sigma".into());
    }
    for s in &e.ipintel {
        a.extend(["--ipintel".into(), absolute(s)?.display().to_string()]);
    }
    if let Some(o) = &e.owners {
        a.extend(["--owners".into(), absolute(o)?.display().to_string()]);
    }
    a.extend(["--learning-days".into(), e.learning_days.to_string()]);
    a.extend(["--min-severity".into(), e.min_severity.as_str().to_string()]);
    for r in &e.exclude_rules {
        a.extend(["--exclude-rule".into(), r.clone()]);
    }
    if e.all_signals {
        a.push("--all-signals".into());
    }
    Ok(a)
}

/// `keytrail detect`'s arguments of a run's settings (its engine flags).
fn detect_args(flags: &[String]) -> Result<crate::cmd_detect::DetectArgs, String> {
    let mut argv: Vec<String> = vec!["keytrail".into(), "detect".into(), "--quiet".into()];
    argv.extend(flags.iter().cloned());
    argv.push("-".into());
    let cli = Cli::try_parse_from(&argv).map_err(|e| format!("the run's settings: {e}"))?;
    let Command::Detect(args) = cli.command else {
        unreachable!("parsed as `detect`")
    };
    Ok(args)
}

/// The engine of a run's settings (its `keytrail detect` flags, as JSON).
fn engine_of(settings: &str) -> Result<(EngineBuilder, Shared), String> {
    let flags: Vec<String> =
        serde_json::from_str(settings).map_err(|e| format!("the run's settings: {e}"))?;
    let args = detect_args(&flags)?;
    for d in args.engine.sigma.iter().chain(&args.engine.ipintel) {
        if !d.exists() {
            return Err(format!("`{}` does not exist on this worker", d.display()));
        }
    }
    let (builder, _) =
        crate::cmd_detect::engine_builder(&args.engine).map_err(|e| format!("{e:#}"))?;
    let (shared, diags) = builder.build_shared();
    if let Some(d) = diags.iter().find(|d| d.is_error) {
        return Err(format!("{}: {}: {}", d.subject, d.kind, d.message));
    }
    Ok((builder, shared))
}

/// A chain's runs as `submit detect` (or a schedule) describes them, checked
/// here: LOGs exist (made absolute) or are S3 URIs, not mixed; the engine's
/// settings make an engine (a typo fails now, not on every worker).
pub(crate) fn chain_of(logs: &[PathBuf], r: &ChainArgs) -> anyhow::Result<DetectChain> {
    let mut names = Vec::new();
    for p in logs {
        let text = p.to_string_lossy();
        if is_s3(&text) {
            s3_uri(&text)?;
            names.push(text.into_owned());
        } else {
            if !p.exists() {
                bail!("log `{}` does not exist", p.display());
            }
            names.push(absolute(p)?.display().to_string());
        }
    }
    if names.iter().any(|n| is_s3(n)) && !names.iter().all(|n| is_s3(n)) {
        bail!("`s3://` logs cannot be combined with local paths in one chain");
    }
    let settings = engine_argv(&r.engine)?;
    engine_of(&serde_json::to_string(&settings)?).map_err(anyhow::Error::msg)?;
    Ok(DetectChain {
        chain: r.chain.clone(),
        logs: names,
        partitions: r.partitions,
        files_per_job: r.files_per_job,
        slice_seconds: r.slice,
        settings,
    })
}

#[cfg(feature = "detect-s3")]
fn s3_uri(text: &str) -> anyhow::Result<()> {
    match keytrail_collect::s3logs::S3Uri::parse(text) {
        Some(Err(e)) => bail!("{e}"),
        _ => Ok(()),
    }
}

#[cfg(not(feature = "detect-s3"))]
fn s3_uri(_: &str) -> anyhow::Result<()> {
    bail!("this keytrail was built without S3 support: rebuild with the cargo feature `detect-s3`")
}

/// The log files of a chain's LOGs as listed now: (name, size); names are
/// absolute paths or `s3://` URIs. A LOG that cannot be listed is an error
/// (a run never passes on logs it did not read).
/// On S3, date folders ending before `listed_since` are not listed.
fn list_logs(
    chain: &DetectChain,
    s3_endpoint: Option<&str>,
    listed_since: Option<i64>,
) -> Result<Vec<(String, u64)>, String> {
    if chain.logs.iter().any(|n| is_s3(n)) {
        let args = detect_args(&chain.settings)?;
        let range = keytrail_detect::engine::TimeRange {
            since_ms: args
                .engine
                .since
                .unwrap_or(i64::MIN)
                .max(listed_since.unwrap_or(i64::MIN)),
            until_ms: args.engine.until.unwrap_or(i64::MAX),
        };
        return list_s3(&chain.logs, range, s3_endpoint);
    }
    let mut roots = Vec::new();
    for l in &chain.logs {
        let p = PathBuf::from(l);
        if !p.exists() {
            return Err(format!("log `{l}` does not exist"));
        }
        roots.push(p);
    }
    let (files, diags) = list_files(&roots);
    if let Some(d) = diags.first() {
        return Err(format!("{}: {}", d.subject, d.message));
    }
    files
        .into_iter()
        .map(|f| {
            let size = std::fs::metadata(&f)
                .map_err(|e| format!("`{}` cannot be read: {e}", f.display()))?
                .len();
            Ok((f.display().to_string(), size))
        })
        .collect()
}

#[cfg(feature = "detect-s3")]
fn list_s3(
    logs: &[String],
    range: keytrail_detect::engine::TimeRange,
    endpoint: Option<&str>,
) -> Result<Vec<(String, u64)>, String> {
    let s3 = keytrail_collect::s3logs::S3Logs::connect_to(endpoint)?;
    let listing = s3.list(logs, range);
    if let Some(d) = listing.diagnostics.first() {
        return Err(format!("{}: {}", d.subject, d.message));
    }
    if let Some(t) = listing.failed.first() {
        return Err(format!("`{t}` cannot be listed or holds no log"));
    }
    Ok(listing
        .objects
        .into_iter()
        .map(|o| (o.name, o.size))
        .collect())
}

#[cfg(not(feature = "detect-s3"))]
fn list_s3(
    _: &[String],
    _: keytrail_detect::engine::TimeRange,
    _: Option<&str>,
) -> Result<Vec<(String, u64)>, String> {
    Err("this keytrail was built without S3 support (cargo feature `detect-s3`)".into())
}

/// How far before the newest delivery a chain has read an S3 chain's next
/// run lists (a day: late deliveries land in the folder of their own day).
const LIST_BACK_MS: i64 = 86_400_000;

/// The time a log is merged by, as one process merges these logs: local
/// files by the time in their name or their first record (for a run of
/// more than one file); S3 objects by the time in their name.
fn log_key(name: &str, single: bool) -> i64 {
    merge_key(Path::new(name), !is_s3(name), single)
}

/// Cuts a run's files, in merge order, into route jobs: one per slice (the
/// account and region, or folder, and the time span), split past
/// `per_job` files. Returns (name, size, route) and the number of slices.
fn routes_of(
    files: Vec<(String, u64)>,
    per_job: u32,
    slice_ms: i64,
) -> (Vec<(String, u64, u32)>, usize) {
    let single = files.len() == 1;
    let mut keyed: Vec<(i64, String, u64)> = files
        .into_iter()
        .map(|(n, size)| (log_key(&n, single), n, size))
        .collect();
    keyed.sort_by(|a, b| (a.0, Path::new(&a.1)).cmp(&(b.0, Path::new(&b.1))));
    // Slices in the order of their first file; files in merge order within.
    let mut slices: Vec<Vec<(String, u64)>> = Vec::new();
    let mut index: HashMap<(String, i64), usize> = HashMap::new();
    for (key, name, size) in keyed {
        let s = slice_of(&name, key, slice_ms);
        let i = *index.entry(s).or_insert_with(|| {
            slices.push(Vec::new());
            slices.len() - 1
        });
        slices[i].push((name, size));
    }
    let count = slices.len();
    let mut out = Vec::new();
    let mut route = 0u32;
    for slice in slices {
        for chunk in slice.chunks(per_job as usize) {
            out.extend(chunk.iter().map(|(n, s)| (n.clone(), *s, route)));
            route += 1;
        }
    }
    (out, count)
}

/// A fresh run id of `chain`: the chain, the time and a random suffix.
fn fresh_run_id(chain: &str) -> String {
    let now = keytrail_store::now();
    let t: String = now
        .chars()
        .take_while(|c| *c != '.')
        .filter(char::is_ascii_alphanumeric)
        .collect();
    // Two submissions in one second differ by the clock's fraction and the
    // process.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let hex = format!(
        "{:x}",
        (nanos ^ std::process::id().rotate_left(16)) & 0xffffff
    );
    format!("{chain}-{t}-{hex}")
}

/// Records the next run of `chain` with id `run_id` (the files listed now
/// that no earlier run of the chain read with the same size, cut into route
/// jobs by slice) and submits its route jobs. Returns the JSON line `submit
/// detect` prints. A run of that id recorded already (a scheduled
/// submission delivered again) has its route jobs submitted again: the same
/// jobs, once.
fn submit_run(
    chain: &DetectChain,
    run_id: &str,
    db: &str,
    queue: &QueueConfig,
    s3_endpoint: Option<&str>,
) -> Result<Value, String> {
    let mut store = Store::open(db).map_err(store_err)?;
    if let Some(run) = store.detect_run(run_id).map_err(store_err)? {
        submit_routes(queue, db, &run)?;
        let mut files = 0;
        for r in 0..run.routes {
            files += store
                .detect_route_files(&run.run, r)
                .map_err(store_err)?
                .len();
        }
        return Ok(json!({
            "run": run.run, "chain": run.chain, "previous": run.previous, "files": files,
            "already_read": 0, "routes": run.routes, "slices": Value::Null,
            "partitions": run.partitions,
        }));
    }
    // CloudTrail files a delivery under the day it is delivered and names it
    // by that time: nothing new is older than the newest delivery read, so
    // an S3 chain lists from a day before the newest its last run read, not
    // the whole trail again.
    let listed_since = store
        .detect_last_run_files(&chain.chain)
        .map_err(store_err)?
        .iter()
        .filter_map(|n| keytrail_detect::reader::key_time(Path::new(n)))
        .max()
        .map(|t| t.saturating_sub(LIST_BACK_MS));
    let listed = list_logs(chain, s3_endpoint, listed_since)?;
    let names: Vec<String> = listed.iter().map(|(n, _)| n.clone()).collect();
    let read = store
        .detect_read_sizes(&chain.chain, &names)
        .map_err(store_err)?;
    let mut new = Vec::new();
    let mut already = 0u64;
    for (name, size) in listed {
        if read.get(&name) == Some(&size) {
            already += 1;
        } else {
            new.push((name, size));
        }
    }
    if new.is_empty() {
        return Ok(json!({
            "run": null, "chain": chain.chain, "previous": null, "files": 0,
            "already_read": already, "routes": 0, "slices": 0, "partitions": chain.partitions,
        }));
    }
    let n = new.len();
    let slice_ms = i64::try_from(chain.slice_seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
    let (files, slices) = routes_of(new, chain.files_per_job, slice_ms);
    let run = store
        .create_detect_run(&NewDetectRun {
            run: run_id.to_string(),
            chain: chain.chain.clone(),
            partitions: chain.partitions,
            settings: serde_json::to_string(&chain.settings).map_err(|e| e.to_string())?,
            target: chain.logs.join(" "),
            files,
        })
        .map_err(store_err)?;
    drop(store);
    submit_routes(queue, db, &run)?;
    Ok(json!({
        "run": run.run, "chain": run.chain, "previous": run.previous, "files": n,
        "already_read": already, "routes": run.routes, "slices": slices,
        "partitions": run.partitions,
    }))
}

fn submit_routes(queue: &QueueConfig, db: &str, run: &DetectRun) -> Result<(), String> {
    let jobs: Vec<Job> = (0..run.routes)
        .map(|i| step_job(&run.run, &format!("route:{i}")))
        .collect();
    keytrail_worker::submit(queue, db, &jobs).map(|_| ())
}

/// Runs `keytrail submit detect`.
pub fn run_submit(args: &SubmitDetectArgs) -> anyhow::Result<ExitStatus> {
    let chain = chain_of(&args.logs, &args.chain_args)?;
    let db = db_location(&args.db)?;
    let run_id = args
        .run
        .clone()
        .unwrap_or_else(|| fresh_run_id(&chain.chain));
    let line = submit_run(
        &chain,
        &run_id,
        &db,
        &args.nats.config(),
        args.s3_endpoint.as_deref(),
    )
    .map_err(anyhow::Error::msg)?;
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, &line)?;
    out.write_all(b"\n")?;
    Ok(ExitStatus::Clean)
}

/// A scheduled run of a chain (`keytrail schedule detect`), as a worker runs
/// it: the run's id is made from the job's key (the schedule and its due
/// time), so a job delivered again records one run.
pub(crate) fn run_scheduled(
    cx: &StepContext<'_>,
    job: &Job,
    chain: &DetectChain,
    db: &str,
) -> Result<(Outcome, String), String> {
    let key: String = job
        .key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let run_id = format!("{}-{key}", chain.chain);
    let line = submit_run(chain, &run_id, db, cx.queue, cx.s3_endpoint)?;
    let what = match line["run"].as_str() {
        Some(run) => format!(
            "run {run}: {} new file(s) in {} route job(s)",
            line["files"], line["routes"]
        ),
        None => format!(
            "nothing new: {} file(s) read by earlier runs",
            line["already_read"]
        ),
    };
    Ok((Outcome::default(), what))
}

/// The job of a step (its key names the run and the step, so a step
/// submitted twice is one job).
fn step_job(run: &str, step: &str) -> Job {
    Job::new(
        JobKind::Detect,
        Target::DetectStep {
            run: run.to_string(),
            step: step.to_string(),
        },
        Some(format!("detect-{run}-{}", step.replace(':', "-"))),
    )
}

/// What a worker keeps between detection steps: each run's engine (rules
/// loaded once per worker and settings).
#[derive(Default)]
pub(crate) struct DetectCache {
    engines: Mutex<HashMap<String, (EngineBuilder, Shared)>>,
}

impl DetectCache {
    fn engine(&self, settings: &str) -> Result<(EngineBuilder, Shared), String> {
        let mut m = self.engines.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = m.get(settings) {
            return Ok(e.clone());
        }
        let e = engine_of(settings)?;
        if m.len() >= 8 {
            m.clear();
        }
        m.insert(settings.to_string(), e.clone());
        Ok(e)
    }
}

/// What a step needs from its worker.
pub(crate) struct StepContext<'a> {
    pub queue: &'a QueueConfig,
    pub cache: &'a DetectCache,
    pub pause: &'a dyn Fn(Phase),
    /// `keytrail worker --s3-endpoint`, for route jobs of `s3://` logs.
    pub s3_endpoint: Option<&'a str>,
}

fn store_err(e: keytrail_store::StoreError) -> String {
    e.to_string()
}

/// Runs one step of a distributed detection run.
pub(crate) fn run_step(cx: &StepContext<'_>, job: &Job, db: &str) -> Result<Outcome, String> {
    let (run, step) = match &job.target {
        Target::DetectStep { run, step } => (run, step),
        Target::DetectChain(chain) => {
            let (outcome, what) = run_scheduled(cx, job, chain, db)?;
            if let Some(sched) = &job.schedule {
                crate::cmd_worker::schedule_succeeded(db, sched.id, &job.key, &what, None)?;
            }
            return Ok(outcome);
        }
        _ => return Err(format!("job {} is not a detection step", job.key)),
    };
    let mut store = Store::open(db).map_err(store_err)?;
    let run = store
        .detect_run(run)
        .map_err(store_err)?
        .ok_or_else(|| format!("run `{run}` is not in the store {db}"))?;
    let (stage, n) = step
        .split_once(':')
        .and_then(|(s, n)| Some((s, n.parse::<u32>().ok()?)))
        .ok_or_else(|| format!("`{step}`: a step is route:N, part:N or keys:N"))?;
    let bus = EventBus::connect(cx.queue, "keytrail-worker-detect")?;
    match stage {
        "route" if n < run.routes => route_step(cx, &mut store, &bus, &run, step, n, db),
        "part" if n < run.partitions => part_step(cx, &mut store, &bus, &run, step, n, job, db),
        "keys" if n < run.partitions => keys_step(cx, &mut store, &bus, &run, step, n, job, db),
        _ => Err(format!(
            "`{step}` is not a step of run `{}` ({} route jobs, {} partitions)",
            run.run, run.routes, run.partitions
        )),
    }
}

fn submit_steps(cx: &StepContext<'_>, db: &str, run: &str, steps: &[String]) -> Result<(), String> {
    if steps.is_empty() {
        return Ok(());
    }
    let jobs: Vec<Job> = steps.iter().map(|s| step_job(run, s)).collect();
    keytrail_worker::submit(cx.queue, db, &jobs).map(|_| ())
}

/// How a route job reads its logs: local files, or S3 objects fetched ahead
/// in the job's order (as `keytrail detect s3://…` fetches them).
enum RouteLogs {
    Local,
    #[cfg(feature = "detect-s3")]
    S3(std::sync::Arc<keytrail_collect::s3logs::S3Fetch>),
}

impl RouteLogs {
    fn open(files: &[(String, u64)], s3_endpoint: Option<&str>) -> Result<RouteLogs, String> {
        if !files.iter().any(|(n, _)| is_s3(n)) {
            return Ok(RouteLogs::Local);
        }
        #[cfg(feature = "detect-s3")]
        {
            use keytrail_detect::reader::{Fetch, LogObject};
            let s3 = keytrail_collect::s3logs::S3Logs::connect_to(s3_endpoint)?;
            let fetch = s3.fetcher();
            let objects: Vec<LogObject> = files
                .iter()
                .map(|(name, size)| LogObject {
                    name: name.clone(),
                    size: *size,
                })
                .collect();
            fetch.plan(&objects);
            Ok(RouteLogs::S3(fetch))
        }
        #[cfg(not(feature = "detect-s3"))]
        {
            let _ = s3_endpoint;
            Err("this worker was built without S3 support (cargo feature `detect-s3`): it cannot read `s3://` logs".into())
        }
    }

    /// The records of file `idx` of the job (named `name`).
    fn read(&self, idx: usize, name: &str, size: u64) -> keytrail_detect::reader::FileRecords {
        match self {
            RouteLogs::Local => {
                let _ = (idx, size);
                read_file(Path::new(name))
            }
            #[cfg(feature = "detect-s3")]
            RouteLogs::S3(fetch) => {
                use keytrail_detect::reader::{Fetch, FileRecords, read_object_stream};
                match fetch.open(idx) {
                    Ok(r) => read_object_stream(name, r, size),
                    Err(e) => FileRecords::failed(
                        name,
                        keytrail_types::Diagnostic::error(kinds::UNREADABLE, name, e),
                    ),
                }
            }
        }
    }
}

/// Route job `n`: its files split by identity onto the event stream, the
/// accounts' regions into the store; the last route job of a run submits the
/// partitions whose previous run is done.
fn route_step(
    cx: &StepContext<'_>,
    store: &mut Store,
    bus: &EventBus,
    run: &DetectRun,
    step: &str,
    n: u32,
    db: &str,
) -> Result<Outcome, String> {
    let recorded = !store
        .detect_step_is_done(&run.run, step)
        .map_err(store_err)?;
    if recorded {
        let files = store.detect_route_files(&run.run, n).map_err(store_err)?;
        let single = run.routes == 1 && files.len() == 1;
        let logs = RouteLogs::open(&files, cx.s3_endpoint)?;
        let mut regions = KnownRegions::default();
        let mut events = 0;
        for (i, (f, size)) in files.iter().enumerate() {
            let routed = route(logs.read(i, f, *size), run.partitions);
            if let Some(d) = routed
                .diagnostics
                .iter()
                .find(|d| d.kind == kinds::UNREADABLE)
            {
                // A log the run names that cannot be read fails the run: it
                // never passes on logs it did not read.
                return Err(format!("log `{f}` cannot be read: {}", d.message));
            }
            let key = log_key(f, single);
            for (p, part) in routed.parts.iter().enumerate() {
                if !part.is_empty() {
                    bus.publish(&run.run, "part", p as u32, f, key, part)?;
                }
            }
            for (a, r, t) in routed.regions.iter() {
                regions.add(a, r, t);
            }
            events += routed.events;
        }
        bus.confirm()?;
        let rows: Vec<(String, String, i64)> = regions
            .iter()
            .map(|(a, r, t)| (a.to_string(), r.to_string(), t))
            .collect();
        store
            .detect_add_regions(&run.chain, &rows)
            .map_err(store_err)?;
        (cx.pause)(Phase::BeforeRecord);
        store
            .detect_step_done(&run.run, step, events)
            .map_err(store_err)?;
    }
    // Whoever finds every route done submits the partitions (a step that
    // ran again submits again: the same jobs, once).
    if store
        .detect_steps_done(&run.run, "route")
        .map_err(store_err)?
        == run.routes
    {
        let mut ready = Vec::new();
        for p in 0..run.partitions {
            if previous_done(store, run, &format!("part:{p}"))? {
                ready.push(format!("part:{p}"));
            }
        }
        submit_steps(cx, db, &run.run, &ready)?;
    }
    Ok(Outcome {
        findings: 0,
        recorded,
    })
}

/// Whether the previous run of the chain did `step` (true for a first run).
fn previous_done(store: &mut Store, run: &DetectRun, step: &str) -> Result<bool, String> {
    match &run.previous {
        None => Ok(true),
        Some(prev) => store.detect_step_is_done(prev, step).map_err(store_err),
    }
}

/// The state a step starts from: the chain's checkpoint of the step, which
/// must be the previous run's.
fn checkpoint(store: &mut Store, run: &DetectRun, step: &str) -> Result<State, String> {
    match store
        .detect_checkpoint(&run.chain, step)
        .map_err(store_err)?
    {
        None if run.previous.is_none() => Ok(State::default()),
        Some((at, state)) if Some(&at) == run.previous.as_ref() => serde_json::from_str(&state)
            .map_err(|e| format!("checkpoint {step} of chain `{}`: {e}", run.chain)),
        other => Err(format!(
            "checkpoint {step} of chain `{}` is at run `{}`, not at `{}`: the previous run's step is not done",
            run.chain,
            other.map(|(r, _)| r).unwrap_or_default(),
            run.previous.as_deref().unwrap_or("")
        )),
    }
}

/// A log's chunks of a share: (position, gzip bytes).
type Chunks = Vec<(u32, Vec<u8>)>;

/// Alerts recorded under the job's key (a step that runs twice records once).
fn record_alerts(
    store: &mut Store,
    run: &DetectRun,
    job: &Job,
    alerts: &[Alert],
) -> Result<bool, String> {
    let records = crate::cmd_store::alert_records(alerts).map_err(|e| e.to_string())?;
    let mut rec = RunRecord::new("detect", &run.target);
    rec.run_key = job.key.clone();
    rec.keytrail_version = env!("CARGO_PKG_VERSION").to_string();
    rec.complete = false;
    let sum = store
        .record_records_of(&rec, "alert", &records)
        .map_err(store_err)?;
    Ok(sum.recorded)
}

/// Unless `step` is done: runs its stage from the chain's checkpoint
/// (`stage` gets the store and the state, and gives the stage's output and
/// the events it read), records the alerts under the job's key (once) and
/// moves the chain's checkpoint of `step` to this run's state, marking the
/// step done.
fn run_stage(
    cx: &StepContext<'_>,
    store: &mut Store,
    run: &DetectRun,
    job: &Job,
    step: &str,
    stage: impl FnOnce(
        &mut Store,
        State,
    ) -> Result<(keytrail_detect::distributed::StageOutput, u64), String>,
) -> Result<Outcome, String> {
    if store
        .detect_step_is_done(&run.run, step)
        .map_err(store_err)?
    {
        return Ok(Outcome::default());
    }
    let state = checkpoint(store, run, step)?;
    let (out, events) = stage(store, state)?;
    let recorded = record_alerts(store, run, job, &out.alerts)?;
    let state = serde_json::to_string(&out.state).map_err(|e| e.to_string())?;
    (cx.pause)(Phase::BeforeCheckpoint);
    store
        .detect_commit(run, step, &state, events)
        .map_err(store_err)?;
    (cx.pause)(Phase::AfterRecord);
    Ok(Outcome {
        findings: out.alerts.len() as u64,
        recorded,
    })
}

/// Submits `step` of the chain's next run when that run finished the stage
/// before (`before`: `route` for a partition, `part` for a key partition).
fn continue_chain(
    cx: &StepContext<'_>,
    store: &mut Store,
    db: &str,
    run: &DetectRun,
    step: &str,
    before: &str,
) -> Result<(), String> {
    let Some(next) = store.detect_next(run).map_err(store_err)? else {
        return Ok(());
    };
    let needed = if before == "route" {
        next.routes
    } else {
        next.partitions
    };
    if store
        .detect_steps_done(&next.run, before)
        .map_err(store_err)?
        == needed
    {
        submit_steps(cx, db, &next.run, &[step.to_string()])?;
    }
    Ok(())
}

/// Partition `n`: its engine over its share of the run's logs, from the
/// chain's checkpoint; the alerts and the new checkpoint recorded; what the
/// key stage needs handed over. The last partition submits the key stage;
/// each partition submits itself in the chain's next run when that run is
/// routed.
#[allow(clippy::too_many_arguments)]
fn part_step(
    cx: &StepContext<'_>,
    store: &mut Store,
    bus: &EventBus,
    run: &DetectRun,
    step: &str,
    n: u32,
    job: &Job,
    db: &str,
) -> Result<Outcome, String> {
    let outcome = run_stage(cx, store, run, job, step, |store, state| {
        let mut known = KnownRegions::default();
        for (a, r, t) in store.detect_regions(&run.chain).map_err(store_err)? {
            known.add(&a, &r, t);
        }
        // Each log's chunks, in order.
        let mut logs: BTreeMap<String, (i64, Chunks)> = BTreeMap::new();
        for c in bus.read(&run.run, "part", n)? {
            let e = logs.entry(c.log).or_insert((c.key, Vec::new()));
            e.1.push((c.chunk, c.data.to_vec()));
        }
        let logs: Vec<(String, i64, Vec<u8>)> = logs
            .into_iter()
            .map(|(name, (key, mut chunks))| {
                chunks.sort_by_key(|c| c.0);
                let bytes = chunks.into_iter().flat_map(|c| c.1).collect();
                (name, key, bytes)
            })
            .collect();
        let (builder, shared) = cx.cache.engine(&run.settings)?;
        let out = run_partition(
            &builder,
            shared,
            state,
            known,
            run.partitions,
            memory_logs(logs),
            // Parse workers ahead of the engine, as `keytrail detect` runs.
            std::thread::available_parallelism().map_or(1, |n| n.get()),
        );
        let mut handed: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
        for k in &out.key_events {
            let buf = handed.entry(k.partition).or_default();
            buf.extend_from_slice(k.raw.as_bytes());
            buf.push(b'\n');
        }
        for (q, records) in &handed {
            bus.publish(&run.run, "keys", *q, step, 0, records)?;
        }
        bus.confirm()?;
        let events = out.stats.events;
        Ok((out, events))
    })?;
    bus.purge(&run.run, "part", n)?;
    if store
        .detect_steps_done(&run.run, "part")
        .map_err(store_err)?
        == run.partitions
    {
        let mut ready = Vec::new();
        for q in 0..run.partitions {
            if previous_done(store, run, &format!("keys:{q}"))? {
                ready.push(format!("keys:{q}"));
            }
        }
        submit_steps(cx, db, &run.run, &ready)?;
    }
    continue_chain(cx, store, db, run, step, "route")?;
    Ok(outcome)
}

/// Key partition `n`: joins the key creations and first uses the partitions
/// handed over, from the chain's checkpoint.
#[allow(clippy::too_many_arguments)]
fn keys_step(
    cx: &StepContext<'_>,
    store: &mut Store,
    bus: &EventBus,
    run: &DetectRun,
    step: &str,
    n: u32,
    job: &Job,
    db: &str,
) -> Result<Outcome, String> {
    let outcome = run_stage(cx, store, run, job, step, |_, state| {
        let sources: Vec<(String, Box<dyn std::io::Read + Send>)> = bus
            .read(&run.run, "keys", n)?
            .into_iter()
            .map(|c| {
                let r: Box<dyn std::io::Read + Send> =
                    Box::new(std::io::Cursor::new(c.data.to_vec()));
                (format!("{}#{}", c.log, c.chunk), r)
            })
            .collect();
        let (builder, shared) = cx.cache.engine(&run.settings)?;
        let out = run_keys(&builder, shared, state, sources, None);
        let events = out.stats.key_events;
        Ok((out, events))
    })?;
    bus.purge(&run.run, "keys", n)?;
    continue_chain(cx, store, db, run, step, "part")?;
    Ok(outcome)
}

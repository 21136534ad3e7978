//! Recurring scans from the command line: `keytrail schedule add`, `list`,
//! `remove`, `enable`, `disable` (schedules in the store) and `keytrail
//! schedule run` (the due ones fired as jobs onto the queue, once per due
//! time whatever the number of schedulers: `keytrail_worker::fire_due`).
//! What a scheduled job scans (only what changed) is the worker's runner,
//! `cmd_worker.rs`.

use crate::ExitStatus;
use crate::cmd_store::DbArg;
use crate::cmd_worker::{NatsArgs, db_location};
use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand, ValueEnum};
use keytrail_store::{NewSchedule, Schedule, StoreError};
use keytrail_worker::{Job, Target};
use serde_json::{Value, json};
use std::io::{BufRead, Write};
use std::time::Duration;

/// `keytrail schedule`.
#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Schedule targets to be scanned every interval (one schedule each).
    Add(AddArgs),
    /// Schedule a chain of CloudTrail detection runs on the workers: every
    /// interval the logs are listed again and a run of the files new since
    /// the chain's last run is submitted, as `keytrail submit detect` does.
    Detect(DetectArgs),
    /// List the schedules: interval, next due time, last run and what it saw.
    List(ListArgs),
    /// Remove schedules (their jobs, runs and findings stay).
    Remove(IdsArgs),
    /// Enable schedules again.
    Enable(IdsArgs),
    /// Disable schedules: they stay, and do not fire.
    Disable(IdsArgs),
    /// Fire the due schedules: submit their jobs to the queue (one pass, or
    /// for ever with --loop).
    Run(RunArgs),
}

/// `keytrail schedule add`.
#[derive(Debug, Args)]
#[command(
    after_help = "Prints one JSON line per schedule, as `schedule list` does, with \
\"created\" (false: that target was scheduled already, and is left as it was).\n\n\
Each firing submits one scan job, as `keytrail submit scan TARGET` does; a git repository's \
job scans only the commits new since the schedule's last successful run (all of it after a \
force-push), an image's job is skipped while its digest is unchanged, a path or S3 prefix is \
scanned whole (docs/workers.md).\n\n\
Exit codes: 0 = added (or there already), 2 = error (a bad interval or target; the store).\n\n\
Examples:\n  keytrail schedule add --db postgres://keytrail@db/keytrail --every 1h \
https://github.com/acme/api.git image:registry.local/app:latest\n  \
keytrail schedule add --every 1d --start 2026-12-08T02:00:00Z /srv/repos/api s3://backups/exports/\n  \
keytrail submit github-org acme --dry-run | keytrail schedule add --every 6h --jobs -"
)]
pub struct AddArgs {
    /// What to scan, one schedule each: any TARGET of `keytrail submit
    /// scan` (a path the workers can reach, made absolute here; a git URL;
    /// `image:REF`; `s3://BUCKET/PREFIX`).
    ///
    /// Example: `https://github.com/acme/api.git image:registry.local/app:latest`
    #[arg(value_name = "TARGET", required_unless_present = "jobs")]
    pub targets: Vec<String>,

    /// The interval: a number and a unit, `m` (minutes), `h`, `d` or `w`
    /// (at least one minute).
    ///
    /// Example: `--every 30m`, `--every 1h`, `--every 1d`
    #[arg(long, value_name = "INTERVAL", value_parser = parse_every)]
    pub every: u64,

    /// The first firing (RFC 3339), later ones every INTERVAL after it
    /// [default: now, so the next `schedule run` fires it].
    ///
    /// Example: `--start 2026-12-08T02:00:00Z`
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub start: Option<DateTime<Utc>>,

    /// Also schedule the targets of job lines (JSONL, as `keytrail submit
    /// github-org|gitlab-group|registry --dry-run` prints them; `-` reads
    /// standard input): an organisation's repositories or a registry's
    /// tags as listed now.
    ///
    /// Example: `--jobs -`
    #[arg(long, value_name = "FILE")]
    pub jobs: Option<String>,

    /// The store.
    #[command(flatten)]
    pub db: DbArg,
}

/// `keytrail schedule detect`.
#[derive(Debug, Args)]
#[command(
    after_help = "Prints one JSON line, as `schedule list` does, with \"created\" (false: the \
chain was scheduled already, and is left as it was).\n\n\
Each firing submits one job; the worker that takes it lists the LOGs, records a run of the \
files no earlier run of the chain read (nothing when there are none) and submits its route jobs, \
exactly as `keytrail submit detect --chain NAME` (docs/detect-distributed.md). A firing while the \
last one's job is still queued or running submits nothing. The run continues the chain's state, \
so alerts are those of `keytrail detect --state` over the same deliveries.\n\n\
Exit codes: 0 = added (or there already), 2 = error (a LOG that does not exist, bad engine \
settings, a bad interval; the store).\n\n\
Examples:\n  keytrail schedule detect --every 5m --chain org-trail s3://org-trail/AWSLogs/o-abc123/\n  \
keytrail schedule detect --every 15m --chain lab --partitions 4 /srv/trail/AWSLogs"
)]
pub struct DetectArgs {
    /// Log files and directories at paths the workers can reach (made
    /// absolute here), or `s3://BUCKET/PREFIX` (listed and read by the
    /// workers, with their credentials and `--s3-endpoint`).
    ///
    /// Example: `s3://org-trail/AWSLogs/o-abc123/`
    #[arg(value_name = "LOG", required = true)]
    pub logs: Vec<std::path::PathBuf>,

    /// The interval: a number and a unit, `m` (minutes), `h`, `d` or `w`
    /// (at least one minute).
    ///
    /// Example: `--every 5m`
    #[arg(long, value_name = "INTERVAL", value_parser = parse_every)]
    pub every: u64,

    /// The first firing (RFC 3339), later ones every INTERVAL after it
    /// [default: now, so the next `schedule run` fires it].
    ///
    /// Example: `--start 2026-12-08T02:00:00Z`
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub start: Option<DateTime<Utc>>,

    /// The runs.
    #[command(flatten)]
    pub run: crate::cmd_detect_dist::ChainArgs,

    /// The store.
    #[command(flatten)]
    pub db: DbArg,
}

/// Formats of `keytrail schedule list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    /// One JSON object per schedule.
    Jsonl,
    /// One line per schedule: id, interval, next due, enabled, target, last outcome.
    Human,
}

/// `keytrail schedule list`.
#[derive(Debug, Args)]
#[command(
    after_help = "JSONL fields: {\"id\", \"kind\", \"target\", \"job_target\", \"every\", \
\"every_seconds\", \"next_due\", \"enabled\", \"created_at\", \"last_fired_at\", \"last_job_key\", \
\"last_success_at\", \"last_success_job\", \"last_outcome\", \"cursor\"} (docs/workers.md).\n\n\
Exit codes: 0 = listed, 2 = error (no such store).\n\n\
Examples:\n  keytrail schedule list --db postgres://keytrail@db/keytrail\n  \
keytrail schedule list --db findings.db --format human"
)]
pub struct ListArgs {
    /// The store.
    #[command(flatten)]
    pub db: DbArg,

    /// Output format.
    ///
    /// Example: `--format human`
    #[arg(long, value_enum, default_value_t = ListFormat::Jsonl)]
    pub format: ListFormat,
}

/// `keytrail schedule remove|enable|disable`.
#[derive(Debug, Args)]
#[command(
    after_help = "Exit codes: 0 = done, 2 = error (an ID that is no schedule: \
the others are still changed).\n\n\
Examples:\n  keytrail schedule remove --db findings.db 3\n  \
keytrail schedule disable 3 4"
)]
pub struct IdsArgs {
    /// Schedule ids (`keytrail schedule list`).
    ///
    /// Example: `3 4`
    #[arg(value_name = "ID", required = true)]
    pub ids: Vec<i64>,

    /// The store.
    #[command(flatten)]
    pub db: DbArg,
}

/// `keytrail schedule run`.
#[derive(Debug, Args)]
#[command(
    after_help = "Prints one JSON line per schedule fired: {\"schedule\", \"target\", \
\"due\", \"next_due\", \"claimed\", \"job_key\", \"state\", \"created\", \"published\", \
\"duplicate\", \"error\"}. Several schedulers may run at once: each due time is fired once \
(\"claimed\": false for the others, whose submission is the same job).\n\n\
Exit codes: 0 = done, 2 = error (the store or the NATS server cannot be reached; with --loop, \
a failed pass is reported and the next one tried).\n\n\
Examples:\n  keytrail schedule run --nats nats://nats.internal:4222 --db postgres://keytrail@db/keytrail\n  \
keytrail schedule run --loop --every-pass 30s"
)]
pub struct RunArgs {
    /// The queue.
    #[command(flatten)]
    pub nats: NatsArgs,

    /// The store.
    #[command(flatten)]
    pub db: DbArg,

    /// Keep running: a pass every --every-pass, until killed (a pass
    /// interrupted anywhere loses nothing: the next one completes it).
    ///
    /// Example: `--loop`
    #[arg(long = "loop")]
    pub repeat: bool,

    /// Time between passes with --loop.
    ///
    /// Example: `--every-pass 10s`
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_pass)]
    pub every_pass: Duration,

    /// Print nothing on stderr except errors.
    ///
    /// Example: `keytrail schedule run -q`
    #[arg(long, short)]
    pub quiet: bool,

    /// The time a pass takes for now (tests of due times).
    #[arg(long, value_name = "TIME", hide = true, value_parser = parse_time)]
    pub now: Option<DateTime<Utc>>,
}

/// An interval of `--every`: `30m`, `1h`, `1d`, `2w` (or seconds, `90s`),
/// at least a minute.
pub(crate) fn parse_every(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let i = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(i);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}`: an interval is a number and a unit (30m, 1h, 1d, 2w)"))?;
    let unit_secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        "" => return Err(format!("`{s}`: the unit is missing (m, h, d or w)")),
        _ => return Err(format!("`{s}`: unknown unit `{unit}` (m, h, d or w)")),
    };
    let secs = n
        .checked_mul(unit_secs)
        .filter(|v| *v <= 366 * 86_400)
        .ok_or_else(|| format!("`{s}`: an interval is at most a year"))?;
    if secs < 60 {
        return Err(format!("`{s}`: an interval is at least a minute"));
    }
    Ok(secs)
}

fn parse_pass(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let i = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(i);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}`: a duration is a number and a unit (500ms, 30s, 5m)"))?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" | "" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        _ => return Err(format!("`{s}`: unknown unit `{unit}` (ms, s or m)")),
    };
    if d.is_zero() {
        return Err(format!("`{s}`: a pass interval is more than zero"));
    }
    Ok(d)
}

/// The time now (chrono is built without its clock).
fn now() -> DateTime<Utc> {
    std::time::SystemTime::now().into()
}

fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("`{s}`: not an RFC 3339 time (2026-12-08T02:00:00Z): {e}"))
}

/// An interval as `--every` takes it: the largest unit that divides it.
fn every_text(secs: i64) -> String {
    for (unit, n) in [("w", 604_800), ("d", 86_400), ("h", 3600), ("m", 60)] {
        if secs > 0 && secs % n == 0 {
            return format!("{}{unit}", secs / n);
        }
    }
    format!("{secs}s")
}

/// A schedule as `schedule list` writes it.
fn schedule_json(s: &Schedule) -> Value {
    let parsed = |t: &Option<String>| {
        t.as_deref()
            .map(|c| serde_json::from_str::<Value>(c).unwrap_or_else(|_| Value::from(c)))
            .unwrap_or(Value::Null)
    };
    json!({
        "id": s.id,
        "kind": s.kind,
        "target": s.target,
        "job_target": parsed(&Some(s.spec.clone())),
        "every": every_text(s.every_seconds),
        "every_seconds": s.every_seconds,
        "next_due": s.next_due,
        "enabled": s.enabled,
        "created_at": s.created_at,
        "last_fired_at": s.last_fired_at,
        "last_job_key": s.last_job_key,
        "last_success_at": s.last_success_at,
        "last_success_job": s.last_success_job,
        "last_outcome": s.last_outcome,
        "cursor": parsed(&s.cursor),
    })
}

fn write_line(out: &mut impl Write, v: &Value) -> anyhow::Result<()> {
    serde_json::to_writer(&mut *out, v)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// Runs `keytrail schedule`.
pub fn run(cmd: &ScheduleCommand) -> anyhow::Result<ExitStatus> {
    match cmd {
        ScheduleCommand::Add(a) => add(a),
        ScheduleCommand::Detect(a) => add_detect(a),
        ScheduleCommand::List(a) => list(a),
        ScheduleCommand::Remove(a) => change(a, "removed", |s, id| s.remove_schedule(id)),
        ScheduleCommand::Enable(a) => {
            change(a, "enabled", |s, id| s.set_schedule_enabled(id, true))
        }
        ScheduleCommand::Disable(a) => {
            change(a, "disabled", |s, id| s.set_schedule_enabled(id, false))
        }
        ScheduleCommand::Run(a) => fire(a),
    }
}

/// The targets of `--jobs FILE`: job lines as `submit … --dry-run` prints them.
fn job_lines(file: &str) -> anyhow::Result<Vec<Target>> {
    let reader: Box<dyn BufRead> = if file == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::io::BufReader::new(
            std::fs::File::open(file).with_context(|| format!("cannot read --jobs `{file}`"))?,
        ))
    };
    let mut out = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("cannot read --jobs `{file}`"))?;
        if line.trim().is_empty() {
            continue;
        }
        let job: Job = serde_json::from_str(&line).with_context(|| {
            format!(
                "--jobs `{file}` line {}: not a job (the lines `keytrail submit … --dry-run` prints)",
                i + 1
            )
        })?;
        out.push(job.target);
    }
    Ok(out)
}

fn add(args: &AddArgs) -> anyhow::Result<ExitStatus> {
    let cwd = std::env::current_dir().context("the working directory")?;
    let mut targets = Vec::new();
    for t in &args.targets {
        let target = Target::parse(t, &cwd).map_err(anyhow::Error::msg)?;
        #[cfg(feature = "scan-s3")]
        if let Target::S3(u) = &target {
            keytrail_collect::s3scan::S3Target::parse(u).map_err(anyhow::Error::msg)?;
        }
        targets.push(target);
    }
    if let Some(f) = &args.jobs {
        for t in job_lines(f)? {
            if let Target::DetectStep { .. } = t {
                anyhow::bail!(
                    "--jobs `{f}`: `{}` is a step of a detection run: a chain of detection runs \
is scheduled with `keytrail schedule detect --chain NAME` (each firing reads only new files)",
                    t.recorded()
                );
            }
            targets.push(t);
        }
    }
    let first_due = args.start.unwrap_or_else(now);
    add_targets(&args.db, targets, args.every, first_due)
}

fn add_detect(args: &DetectArgs) -> anyhow::Result<ExitStatus> {
    let chain = crate::cmd_detect_dist::chain_of(&args.logs, &args.run)?;
    let first_due = args.start.unwrap_or_else(now);
    add_targets(
        &args.db,
        vec![Target::DetectChain(chain)],
        args.every,
        first_due,
    )
}

/// Adds one schedule per target and prints each.
fn add_targets(
    db: &DbArg,
    targets: Vec<Target>,
    every: u64,
    first_due: DateTime<Utc>,
) -> anyhow::Result<ExitStatus> {
    let mut store = crate::cmd_store::open(db.db.as_deref(), false)?;
    let mut out = std::io::stdout().lock();
    for target in targets {
        let new = NewSchedule {
            kind: target.kind().as_str().to_string(),
            target: target.recorded(),
            spec: serde_json::to_string(&target)?,
            every_seconds: every as i64,
            first_due,
        };
        let (schedule, created) = match store.add_schedule(&new) {
            Ok(s) => (s, true),
            Err(StoreError {
                kind: keytrail_store::ErrorKind::Conflict,
                ..
            }) => {
                let s = store
                    .schedules()?
                    .into_iter()
                    .find(|s| s.kind == new.kind && s.target == new.target)
                    .context("a schedule conflicted and then was gone")?;
                if s.every_seconds != new.every_seconds {
                    eprintln!(
                        "warning: `{}` is scheduled already (schedule {}, every {}): left as it is \
(`keytrail schedule remove {}` first to change it)",
                        s.target,
                        s.id,
                        every_text(s.every_seconds),
                        s.id
                    );
                }
                (s, false)
            }
            Err(e) => return Err(e.into()),
        };
        let mut line = schedule_json(&schedule);
        line["created"] = Value::Bool(created);
        write_line(&mut out, &line)?;
    }
    Ok(ExitStatus::Clean)
}

fn list(args: &ListArgs) -> anyhow::Result<ExitStatus> {
    let mut store = crate::cmd_store::open(args.db.db.as_deref(), true)?;
    let mut out = std::io::stdout().lock();
    for s in store.schedules()? {
        match args.format {
            ListFormat::Jsonl => write_line(&mut out, &schedule_json(&s))?,
            ListFormat::Human => writeln!(
                out,
                "{:>4}  every {:<4}  next {}  {:<8}  {}  {}",
                s.id,
                every_text(s.every_seconds),
                s.next_due,
                if s.enabled { "enabled" } else { "disabled" },
                s.target,
                s.last_outcome.as_deref().unwrap_or("never run")
            )?,
        }
    }
    Ok(ExitStatus::Clean)
}

fn change(
    args: &IdsArgs,
    done: &str,
    f: impl Fn(&mut keytrail_store::Store, i64) -> Result<bool, StoreError>,
) -> anyhow::Result<ExitStatus> {
    let mut store = crate::cmd_store::open(args.db.db.as_deref(), true)?;
    let mut status = ExitStatus::Clean;
    for &id in &args.ids {
        if f(&mut store, id)? {
            eprintln!("schedule {id} {done}");
        } else {
            eprintln!("error: no schedule {id} (`keytrail schedule list` lists them)");
            status = ExitStatus::Error;
        }
    }
    Ok(status)
}

fn fire(args: &RunArgs) -> anyhow::Result<ExitStatus> {
    let config = args.nats.config();
    let db = db_location(&args.db)?;
    loop {
        let at = args.now.unwrap_or_else(now);
        match keytrail_worker::fire_due(&config, &db, at) {
            Ok(fired) => print_fired(&fired, args.quiet)?,
            Err(e) if args.repeat => eprintln!(
                "error: schedule pass failed, next in {:?}: {e}",
                args.every_pass
            ),
            Err(e) => return Err(anyhow::Error::msg(e)),
        }
        if !args.repeat {
            return Ok(ExitStatus::Clean);
        }
        std::thread::sleep(args.every_pass);
    }
}

fn print_fired(fired: &[keytrail_worker::Fired], quiet: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    for f in fired {
        let sub = f.submitted.as_ref();
        let line = json!({
            "schedule": f.schedule.id,
            "target": f.schedule.target,
            "due": f.schedule.next_due,
            "next_due": f.next_due,
            "claimed": f.claimed,
            "job_key": sub.map(|s| s.job.job_key.clone()),
            "state": sub.map(|s| s.job.state),
            "created": sub.is_some_and(|s| s.created),
            "published": sub.is_some_and(|s| s.published.is_some()),
            "duplicate": sub.is_some_and(|s| s.published.as_ref().is_some_and(|p| p.duplicate)),
            "error": f.error,
        });
        write_line(&mut out, &line)?;
        out.flush()?;
        if let Some(e) = &f.error {
            eprintln!("error: {e}");
        } else if !quiet {
            match sub {
                Some(s) if !s.created && f.claimed => eprintln!(
                    "schedule {}: job {} of {} is still {}: not submitted again",
                    f.schedule.id, s.job.job_key, f.schedule.target, s.job.state
                ),
                Some(s) if !f.claimed => eprintln!(
                    "schedule {}: due {} was fired by another scheduler (job {})",
                    f.schedule.id, f.schedule.next_due, s.job.job_key
                ),
                Some(s) => eprintln!(
                    "schedule {}: job {} submitted for {}; next due {}",
                    f.schedule.id, s.job.job_key, f.schedule.target, f.next_due
                ),
                None => {}
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_parse_and_print_back() {
        assert_eq!(parse_every("30m").unwrap(), 1800);
        assert_eq!(parse_every("1h").unwrap(), 3600);
        assert_eq!(parse_every("1d").unwrap(), 86_400);
        assert_eq!(parse_every("2w").unwrap(), 1_209_600);
        assert_eq!(parse_every("90s").unwrap(), 90);
        assert!(
            parse_every("30s")
                .unwrap_err()
                .contains("at least a minute")
        );
        assert!(parse_every("0m").unwrap_err().contains("at least a minute"));
        assert!(parse_every("1y").unwrap_err().contains("unknown unit"));
        assert!(parse_every("5").unwrap_err().contains("unit is missing"));
        assert!(parse_every("h").unwrap_err().contains("number and a unit"));
        assert!(parse_every("400d").unwrap_err().contains("at most a year"));
        assert!(parse_every("99999999999999999w").is_err());
        for (secs, text) in [
            (1800, "30m"),
            (3600, "1h"),
            (86_400, "1d"),
            (90, "90s"),
            (604_800, "1w"),
        ] {
            assert_eq!(every_text(secs), text);
        }
        assert!(parse_pass("0s").is_err());
        assert_eq!(parse_pass("500ms").unwrap(), Duration::from_millis(500));
        assert!(parse_time("tomorrow").unwrap_err().contains("RFC 3339"));
    }
}

//! Detection over many machines, the parts that need no queue: how events are
//! partitioned, what a log file becomes when it is routed, and the three stages
//! a distributed run chains (`keytrail submit detect`, run by `keytrail worker`).
//!
//! 1. **Route**: a log file is read and its records are split by identity
//!    ([`partition_of`] the principal), each partition's records kept in file order
//!    ([`route`]). Every account's earliest successful call in every region is
//!    gathered on the way ([`KnownRegions`]): the only account-wide memory the
//!    detectors use (an instance launched in a region the *account* never used).
//! 2. **Partition**: one engine per partition of the identities
//!    ([`Stage::Partition`]) reads that partition's share of every file, merged in
//!    the same order a single process merges the files ([`Logs::Keyed`], keys from
//!    [`merge_key`]), so every identity's events reach its detectors in the same
//!    order. It judges accounts by the gathered regions, and hands the new-key join
//!    (a key created by one identity and first used by another) to the third stage:
//!    the events that create a key and the first use of every key
//!    ([`crate::engine::KeyEvent`]).
//! 3. **Keys**: one engine per partition of the access key ids ([`Stage::Keys`])
//!    joins each key's creation with its first use ([`run_keys`]).
//!
//! Each stage's engine starts from the state the same stage of the same partition
//! reached in the previous run of the chain (its checkpoint), so a chain of runs over
//! successive logs is the chain of `keytrail detect --state` runs over them.
//!
//! What a single process sees that a partition does not (docs/detect-distributed.md):
//! Sigma correlation rules of the user's that group by something other than the
//! identity see one partition's events; the other clouds' cross-identity rules
//! (password spray from one address, a credential added to an application and then
//! used) see one partition's sign-ins; a weak signal of an identity is not folded
//! into a new-key alert of the same identity (the alert is the key stage's).

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use keytrail_types::Diagnostic;

use crate::alert::{Alert, AlertSink};
pub use crate::baseline::KnownRegions;
use crate::baseline::{State, regional_call};
use crate::engine::{EngineBuilder, KeyEvent, Logs, Shared, Stage, Stats};
use crate::reader::{ReadItem, read_stream};

pub use crate::event::partition_of;

/// What routing one log file gave.
#[derive(Debug, Default)]
pub struct Routed {
    /// Each partition's records, one per line (NDJSON), in file order; empty
    /// for a partition none of the file's identities falls in.
    pub parts: Vec<Vec<u8>>,
    /// Events routed.
    pub events: u64,
    /// The accounts' earliest regional calls in the file.
    pub regions: KnownRegions,
    /// Records skipped and files that could not be read, as a single run reports them.
    pub diagnostics: Vec<Diagnostic>,
}

/// Splits the records of one file into `partitions` by principal.
pub fn route(records: impl IntoIterator<Item = ReadItem>, partitions: u32) -> Routed {
    let n = partitions.max(1);
    let mut out = Routed {
        parts: vec![Vec::new(); n as usize],
        ..Routed::default()
    };
    for item in records {
        match item {
            Ok(ev) => {
                let part = &mut out.parts[partition_of(ev.principal(), n) as usize];
                part.extend_from_slice(ev.raw().as_bytes());
                part.push(b'\n');
                out.events += 1;
                if let Some((account, region)) = regional_call(&ev) {
                    out.regions.add(account, region, ev.time_ms);
                }
            }
            Err(d) => out.diagnostics.push(d),
        }
    }
    out
}

/// The time a single process orders a log by in its merge
/// ([`crate::reader::DirRecords`]): the time in its name; for local files of a run
/// of more than one file, else the time of its first record; `i64::MIN` when none.
pub fn merge_key(path: &Path, local: bool, single: bool) -> i64 {
    let key = crate::reader::key_time(path);
    let key = if local && !single {
        key.or_else(|| crate::reader::first_event_time_of(path))
    } else {
        key
    };
    key.unwrap_or(i64::MIN)
}

/// The slice of a run a log is routed in: where it was delivered (the account and
/// region of a CloudTrail delivery path, `…/AWSLogs/[o-ORG/]ACCOUNT/CloudTrail/REGION/…`,
/// as `ACCOUNT/REGION`; else the log's folder) and its merge key ([`merge_key`])
/// floored to a multiple of `slice_ms` (`i64::MIN` for a log without a time). A
/// distributed run's route jobs are slices (split when a slice holds more files than
/// a job takes): a failed route job names one account, region and time span.
pub fn slice_of(name: &str, key: i64, slice_ms: i64) -> (String, i64) {
    let parts: Vec<&str> = name.split('/').collect();
    let place = parts
        .iter()
        .rposition(|p| *p == "AWSLogs")
        .and_then(|i| {
            let rest = &parts[i + 1..];
            // An organisation trail has its id before the account.
            let rest = match rest.first() {
                Some(o) if o.starts_with("o-") => &rest[1..],
                _ => rest,
            };
            match rest {
                [account, service, region, ..] if service.starts_with("CloudTrail") => {
                    Some(format!("{account}/{region}"))
                }
                _ => None,
            }
        })
        .unwrap_or_else(|| match name.rsplit_once('/') {
            Some((folder, _)) => folder.to_string(),
            None => String::new(),
        });
    let time = if key == i64::MIN || slice_ms <= 0 {
        key
    } else {
        key.div_euclid(slice_ms) * slice_ms
    };
    (place, time)
}

/// What one stage's engine produced.
pub struct StageOutput {
    /// Alerts (sorted as a single run sorts them).
    pub alerts: Vec<Alert>,
    /// Statistics.
    pub stats: Stats,
    /// The state reached: the next run's checkpoint.
    pub state: State,
    /// Events handed to the key stage ([`Stage::Partition`]).
    pub key_events: Vec<KeyEvent>,
}

/// Runs a partition's engine over its share of the run's logs (`logs`: each file's
/// routed records, named and keyed as the file is), from `state`.
pub fn run_partition(
    builder: &EngineBuilder,
    shared: Shared,
    state: State,
    known: KnownRegions,
    key_partitions: u32,
    logs: Logs,
    threads: usize,
) -> StageOutput {
    let builder = builder
        .clone()
        .stage(Stage::Partition {
            key_partitions: key_partitions.max(1),
        })
        .initial_state(state)
        .known_regions(known);
    let mut engine = crate::engine::run_logs_engine(&builder, shared, logs, threads, None);
    let key_events = engine.take_key_events();
    let (alerts, stats, state) = engine.finish_with_state();
    StageOutput {
        alerts,
        stats,
        state,
        key_events,
    }
}

/// Runs a key stage's engine over the records the partitions handed to it (each
/// `source` a stream of records, one per line, as [`KeyEvent::raw`]), from `state`.
/// The events are joined in time order, a key's creation before a use in the same
/// millisecond.
pub fn run_keys(
    builder: &EngineBuilder,
    shared: Shared,
    state: State,
    sources: Vec<(String, Box<dyn Read + Send>)>,
    sink: Option<Box<dyn AlertSink>>,
) -> StageOutput {
    let builder = builder.clone().stage(Stage::Keys).initial_state(state);
    let (mut engine, diags) = builder.build_with(shared);
    if let Some(s) = sink {
        engine.set_sink(s);
    }
    for d in diags {
        engine.diagnostic(d);
    }
    let mut events = Vec::new();
    for (name, r) in sources {
        for item in read_stream(&name, r) {
            match item {
                Ok(ev) => events.push(ev),
                Err(d) => engine.diagnostic(d),
            }
        }
    }
    events.sort_by(|a, b| {
        (a.time_ms, a.created_key().is_none(), a.raw()).cmp(&(
            b.time_ms,
            b.created_key().is_none(),
            b.raw(),
        ))
    });
    // A record handed over twice (a partition's try repeated) counts once.
    events.dedup_by(|a, b| a.raw() == b.raw());
    for ev in &events {
        engine.process(ev);
    }
    let (alerts, stats, state) = engine.finish_with_state();
    StageOutput {
        alerts,
        stats,
        state,
        key_events: Vec::new(),
    }
}

/// Logs held in memory (a test, a benchmark, or a stage that fetched its input):
/// name, merge key and bytes (plain or gzip, one or more gzip members). Names are
/// unique.
pub fn memory_logs(logs: Vec<(String, i64, Vec<u8>)>) -> Logs {
    let mut objects = Vec::with_capacity(logs.len());
    let mut data = std::collections::HashMap::with_capacity(logs.len());
    for (name, key, bytes) in logs {
        objects.push((
            key,
            crate::reader::LogObject {
                name: name.clone(),
                size: bytes.len() as u64,
            },
        ));
        data.insert(name, Arc::new(bytes));
    }
    Logs::Keyed(
        objects,
        Arc::new(MemoryFetch {
            data,
            planned: Default::default(),
        }),
    )
}

/// Serves [`memory_logs`] to the merge.
struct MemoryFetch {
    data: std::collections::HashMap<String, Arc<Vec<u8>>>,
    /// The names in plan order.
    planned: std::sync::Mutex<Vec<String>>,
}

impl crate::reader::Fetch for MemoryFetch {
    fn plan(&self, objects: &[crate::reader::LogObject]) {
        *self.planned.lock().unwrap_or_else(|p| p.into_inner()) =
            objects.iter().map(|o| o.name.clone()).collect();
    }
    fn open(&self, idx: usize) -> Result<Box<dyn Read + Send>, String> {
        let planned = self.planned.lock().unwrap_or_else(|p| p.into_inner());
        let name = planned.get(idx).ok_or("not in the plan")?;
        let bytes = self.data.get(name).ok_or("no such log")?.clone();
        Ok(Box::new(std::io::Cursor::new(ArcBytes(bytes))))
    }
}

struct ArcBytes(Arc<Vec<u8>>);

impl AsRef<[u8]> for ArcBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::slice_of;

    #[test]
    fn slices_are_account_region_and_time_span() {
        let day = 86_400_000;
        let t = 1_709_510_400_000 + 3_600_000; // 2024-03-04T01:00Z
        let org =
            "s3://trail/AWSLogs/o-abc123/111122223333/CloudTrail/eu-west-1/2024/03/04/x.json.gz";
        assert_eq!(
            slice_of(org, t, day),
            ("111122223333/eu-west-1".to_string(), t - 3_600_000)
        );
        let own = "/srv/logs/AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/04/x.json.gz";
        assert_eq!(slice_of(own, t, 3_600_000).0, "111122223333/us-east-1");
        assert_eq!(slice_of(own, t, 3_600_000).1, t);
        // Digests and other services are not CloudTrail deliveries: their folder.
        let other = "/srv/logs/AWSLogs/111122223333/elasticloadbalancing/x.log";
        assert_eq!(
            slice_of(other, t, day).0,
            "/srv/logs/AWSLogs/111122223333/elasticloadbalancing"
        );
        assert_eq!(slice_of("/tmp/a.json", t, day).0, "/tmp");
        assert_eq!(slice_of("a.json", i64::MIN, day), (String::new(), i64::MIN));
        // Times before 1970 floor downwards.
        assert_eq!(slice_of("a.json", -1, day).1, -day);
        // A truncated layout is a folder.
        assert_eq!(
            slice_of("/x/AWSLogs/1/CloudTrail", t, day).0,
            "/x/AWSLogs/1"
        );
    }
}

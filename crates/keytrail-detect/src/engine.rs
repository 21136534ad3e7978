//! The detection engine: configuration ([`EngineBuilder`]), the per-event pipeline
//! ([`Engine::process`]: IP intelligence → playbook (CloudTrail) or the other
//! clouds' playbook (`cloudplay`) → baselines → Sigma → alert aggregation) and run
//! statistics ([`Stats`]).
//!
//! One `Engine` is single-threaded: baselines and detector state never need locks.
//! [`run_parallel`] parallelises reading, decompression and parsing ahead of the one
//! engine, so its results never depend on the thread count. The read-only parts
//! ([`Shared`]: IP intelligence, Sigma rules, owners) can be shared between engines.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use keytrail_types::{Diagnostic, Severity};
use serde::Serialize;

use crate::alert::{Aggregator, Alert, AlertSink, Hit};
use crate::baseline::{self, Baseline, State, s3_bucket};
use crate::cloudplay::CloudPlaybook;
use crate::event::{Event, Provider};
use crate::incident::Incidents;
use crate::ipintel::{IpInfo, IpIntel};
use crate::owners::Owners;
use crate::playbook::{self, Playbook, PlaybookRule};
use crate::reader::ReadItem;
use crate::sigma::profile::Profile;
use crate::sigma::{BuiltinUse, SigmaRules, SigmaState};
use crate::time::{DAY_MS, HOUR_MS, MINUTE_MS};

/// Default learning period: an identity's first 7 days only build its baseline.
pub const DEFAULT_LEARNING_MS: i64 = 7 * DAY_MS;

/// Read-only parts shared between engines (and threads).
#[derive(Clone)]
pub struct Shared {
    /// IP intelligence.
    pub intel: Arc<IpIntel>,
    /// Sigma rules.
    pub sigma: Arc<SigmaRules>,
    /// What became of the embedded SigmaHQ rules (all zero when they are not used).
    pub sigma_builtin: BuiltinUse,
    /// Owners file.
    pub owners: Option<Arc<Owners>>,
}

/// Configures an [`Engine`].
#[derive(Debug, Clone)]
pub struct EngineBuilder {
    ipintel: Vec<PathBuf>,
    sigma: Vec<PathBuf>,
    builtin_sigma: bool,
    owners: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    learning_ms: i64,
    progress: Option<Arc<Progress>>,
    filter: AlertFilter,
    combine_weak: bool,
    range: TimeRange,
    stage: Stage,
    initial: Option<State>,
    known: Option<crate::baseline::KnownRegions>,
}

/// Which part of a detection an engine runs. A single process runs everything
/// ([`Stage::Whole`]); a distributed run ([`crate::distributed`]) runs one engine per
/// partition of the identities and one per partition of the access keys.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Stage {
    /// Every detector over every event.
    #[default]
    Whole,
    /// The events of one partition of the identities: every detector but the
    /// new-key join, which it hands over ([`Engine::take_key_events`]) to
    /// [`Stage::Keys`], split into `key_partitions` partitions of access key ids.
    Partition {
        /// Partitions of the key stage.
        key_partitions: u32,
    },
    /// The events that create access keys and first use them, of one partition of
    /// the access key ids: only the new-key join.
    Keys,
}

/// An event a partition hands to the key stage: its time, the key stage's
/// partition, and the record text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyEvent {
    /// Partition of the key stage ([`crate::event::partition_of`] of the key).
    pub partition: u32,
    /// Event time (ms).
    pub time_ms: i64,
    /// The record as read.
    pub raw: String,
}

/// Access keys a partition remembers having handed over in one run; past this,
/// every use is handed over (more than needed, never less).
const MAX_SEEN_KEYS: usize = 1_000_000;

/// The events a run looks at (`--since`/`--until`), inclusive, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    /// Earliest event time kept (`i64::MIN`: no bound).
    pub since_ms: i64,
    /// Latest event time kept (`i64::MAX`: no bound).
    pub until_ms: i64,
}

impl Default for TimeRange {
    fn default() -> Self {
        TimeRange {
            since_ms: i64::MIN,
            until_ms: i64::MAX,
        }
    }
}

/// How long after its last event CloudTrail may deliver a file: a file whose key time
/// (its delivery time) is more than this after `--until` is not read.
pub const LATE_DELIVERY_MS: i64 = HOUR_MS;

impl TimeRange {
    /// Whether an event at `t` is in the range.
    pub fn contains(&self, t: i64) -> bool {
        self.since_ms <= t && t <= self.until_ms
    }

    /// Whether a log delivered at `key_ms` (the time in its name, minute precision:
    /// its events are before the end of that minute) may hold events in the range.
    pub fn may_hold(&self, key_ms: i64) -> bool {
        key_ms.saturating_add(MINUTE_MS) > self.since_ms
            && key_ms <= self.until_ms.saturating_add(LATE_DELIVERY_MS)
    }

    /// Whether logs delivered from `from_ms` until before `to_ms` (a date prefix such
    /// as `2024/03/` of the CloudTrail layout) may hold events in the range.
    pub fn may_hold_span(&self, from_ms: i64, to_ms: i64) -> bool {
        to_ms > self.since_ms && from_ms <= self.until_ms.saturating_add(LATE_DELIVERY_MS)
    }
}

/// Which alerts are raised (see [`EngineBuilder::min_severity`] and
/// [`EngineBuilder::exclude_rules`]).
#[derive(Debug, Clone)]
struct AlertFilter {
    min_severity: Severity,
    exclude: Option<Arc<globset::GlobSet>>,
}

impl Default for AlertFilter {
    fn default() -> Self {
        AlertFilter {
            min_severity: Severity::Info,
            exclude: None,
        }
    }
}

impl AlertFilter {
    fn allows(&self, a: &Alert) -> bool {
        a.severity >= self.min_severity
            && !self
                .exclude
                .as_ref()
                .is_some_and(|g| g.is_match(&a.rule_id))
    }
}

/// Counters an engine publishes while it runs (every few thousand events), for a
/// progress display on another thread.
#[derive(Debug, Default)]
pub struct Progress {
    /// Events processed.
    pub events: std::sync::atomic::AtomicU64,
    /// Alerts emitted (closed) so far.
    pub alerts: std::sync::atomic::AtomicU64,
}

impl Default for EngineBuilder {
    fn default() -> Self {
        EngineBuilder {
            ipintel: Vec::new(),
            sigma: Vec::new(),
            builtin_sigma: false,
            owners: None,
            state_dir: None,
            learning_ms: DEFAULT_LEARNING_MS,
            progress: None,
            filter: AlertFilter::default(),
            combine_weak: true,
            range: TimeRange::default(),
            stage: Stage::Whole,
            initial: None,
            known: None,
        }
    }
}

impl EngineBuilder {
    /// A builder with defaults (no IP intelligence, no Sigma rules, 7-day learning).
    /// `keytrail detect` adds the embedded SigmaHQ rules ([`EngineBuilder::builtin_sigma`])
    /// and the cached IP intelligence.
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds an IP-intelligence directory (searched recursively) or file; repeatable, the
    /// files of every path are loaded together (see [`IpIntel::add_path`]).
    pub fn ipintel(mut self, path: impl Into<PathBuf>) -> Self {
        self.ipintel.push(path.into());
        self
    }
    /// Adds a Sigma rule directory or file.
    pub fn sigma_rules(mut self, path: impl Into<PathBuf>) -> Self {
        self.sigma.push(path.into());
        self
    }
    /// Runs the SigmaHQ cloud rules embedded in keytrail (AWS, Azure, GCP, M365;
    /// Detection Rule License 1.1),
    /// shaped by the default profile (`keytrail-rules/data/sigma-profile.yml`); rules
    /// added with [`EngineBuilder::sigma_rules`] replace embedded ones with the same id.
    pub fn builtin_sigma(mut self, on: bool) -> Self {
        self.builtin_sigma = on;
        self
    }
    /// Sets the owners file (`keytrail.owners.yaml`).
    pub fn owners_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.owners = Some(path.into());
        self
    }
    /// Persists baselines in `dir` (loaded at build, saved at finish).
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = Some(dir.into());
        self
    }
    /// Whether weak signals (odd hours, a new region, network, country or bucket, a
    /// read spike) are raised only in combination ([`crate::incident`]; the default)
    /// or each on its own.
    pub fn combine_weak_signals(mut self, on: bool) -> Self {
        self.combine_weak = on;
        self
    }
    /// Raises only alerts of `severity` or above (the others are counted in
    /// [`Stats::filtered_alerts`]).
    pub fn min_severity(mut self, severity: Severity) -> Self {
        self.filter.min_severity = severity;
        self
    }
    /// Raises no alert of a rule whose id matches one of `globs` (`*` and `?`
    /// wildcards, as in `keytrail.aws.*`; a Sigma rule's id is its UUID). Errors name
    /// the first invalid glob.
    pub fn exclude_rules(mut self, globs: &[String]) -> Result<Self, String> {
        let mut b = globset::GlobSetBuilder::new();
        for g in globs {
            b.add(globset::Glob::new(g).map_err(|e| format!("invalid rule glob `{g}`: {e}"))?);
        }
        self.filter.exclude = Some(Arc::new(b.build().map_err(|e| e.to_string())?));
        Ok(self)
    }
    /// Looks only at events in `range` (the others are counted in
    /// [`Stats::outside_range`]) and skips files whose key time says they hold none
    /// ([`TimeRange::may_hold`], counted in [`Stats::files_outside_range`]).
    pub fn time_range(mut self, range: TimeRange) -> Self {
        self.range = range;
        self
    }
    /// Publishes the engine's event and alert counts in `progress` as it runs.
    pub fn progress(mut self, progress: Arc<Progress>) -> Self {
        self.progress = Some(progress);
        self
    }
    /// Sets the learning period in milliseconds (0 disables learning).
    pub fn learning_period_ms(mut self, ms: i64) -> Self {
        self.learning_ms = ms.max(0);
        self
    }

    /// Loads the shared read-only parts.
    pub fn build_shared(&self) -> (Shared, Vec<Diagnostic>) {
        let mut diags = Vec::new();
        let mut intel = IpIntel::empty();
        for p in &self.ipintel {
            diags.extend(intel.add_path(p));
        }
        intel.finish();
        let (sigma, sigma_builtin, d) =
            SigmaRules::load(self.builtin_sigma, Profile::builtin(), &self.sigma);
        diags.extend(d);
        let owners = self.owners.as_ref().map(|p| {
            let (o, d) = Owners::load(p);
            diags.extend(d);
            Arc::new(o)
        });
        (
            Shared {
                intel: Arc::new(intel),
                sigma: Arc::new(sigma),
                sigma_builtin,
                owners,
            },
            diags,
        )
    }

    /// Builds an engine, loading everything configured.
    pub fn build(&self) -> (Engine, Vec<Diagnostic>) {
        let (shared, mut diags) = self.build_shared();
        let (engine, d) = self.build_with(shared);
        diags.extend(d);
        (engine, diags)
    }

    /// The part of a distributed detection the engine runs (default: everything).
    pub fn stage(mut self, stage: Stage) -> Self {
        self.stage = stage;
        self
    }

    /// Starts from `state` (a distributed run's checkpoint) instead of an empty
    /// state or the state directory's.
    pub fn initial_state(mut self, state: State) -> Self {
        self.initial = Some(state);
        self
    }

    /// Judges accounts by what every partition saw (a distributed run's partition):
    /// the regions an account used and when it was first seen.
    pub fn known_regions(mut self, known: crate::baseline::KnownRegions) -> Self {
        self.known = Some(known);
        self
    }

    /// Builds an engine over already-loaded shared parts.
    pub fn build_with(&self, shared: Shared) -> (Engine, Vec<Diagnostic>) {
        let mut diags = Vec::new();
        let mut state = State {
            version: 2,
            ..State::default()
        };
        if let Some(s) = &self.initial {
            state = s.clone();
        } else if let Some(dir) = &self.state_dir {
            match State::load(dir) {
                Ok(s) => state = s,
                Err(d) => diags.push(d),
            }
        }
        state.accounts.learning_ms = self.learning_ms;
        state.accounts.known = self.known.clone();
        let cloud = CloudPlaybook::from_memory(std::mem::take(&mut state.cloud));
        let engine = Engine {
            shared,
            state,
            playbook: Playbook::default(),
            cloud,
            sigma: SigmaState::default(),
            agg: Aggregator::default(),
            sink: None,
            collected: Vec::new(),
            stats: Stats::default(),
            ip_cache: Default::default(),
            hits: Vec::new(),
            state_dir: self.state_dir.clone(),
            learning_ms: self.learning_ms,
            filter: self.filter.clone(),
            incidents: self.combine_weak.then(Incidents::default),
            range: self.range,
            since_flush: 0,
            progress: self.progress.clone(),
            reading: Vec::new(),
            unopened: Default::default(),
            stage: self.stage,
            key_events: Vec::new(),
            seen_keys: Default::default(),
        };
        (engine, diags)
    }
}

/// What a run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    /// Events processed.
    pub events: u64,
    /// Distinct identities with a baseline at the end.
    pub identities: u64,
    /// Records skipped (invalid JSON, not an object, no time).
    pub skipped_records: u64,
    /// Other diagnostics (truncated files, unreadable files, garbage).
    pub other_diagnostics: u64,
    /// Skipped records per file.
    pub skipped_by_file: BTreeMap<String, u64>,
    /// Events whose `sourceIPAddress` looked like an IP but was invalid.
    pub invalid_ips: u64,
    /// Events more than 15 minutes older than the newest event seen (clock skew, late files).
    pub out_of_order: u64,
    /// Sigma detection-rule matches.
    pub sigma_matches: u64,
    /// Alerts emitted.
    pub alerts: u64,
    /// Alerts per rule id.
    pub alerts_by_rule: BTreeMap<String, u64>,
    /// Files (and directories) that could not be opened or read at all.
    pub unreadable_files: Vec<String>,
    /// Weak-signal alerts not raised because nothing else of their identity happened
    /// within a day ([`crate::incident`]).
    pub weak_signals_alone: u64,
    /// Weak-signal alerts folded into an incident or a strong alert of their identity.
    pub weak_signals_folded: u64,
    /// Alerts left out by `--min-severity` or `--exclude-rule`.
    pub filtered_alerts: u64,
    /// Alerts not raised again because an earlier run (in the state) raised them.
    pub repeated_alerts: u64,
    /// Files skipped because an earlier run (in the state) read them.
    pub files_already_read: u64,
    /// Files skipped because their key time is older than the state remembers
    /// ([`crate::baseline::STATE_RETENTION_MS`] behind its watermark).
    pub files_too_old: u64,
    /// Files skipped because their key time is outside `--since`/`--until`.
    pub files_outside_range: u64,
    /// Events left out because they are outside `--since`/`--until`.
    pub outside_range: u64,
    /// Files (or objects) read.
    pub files_read: u64,
    /// Events a key stage of a distributed run joined (not counted in `events`:
    /// their partitions counted them).
    #[serde(skip_serializing_if = "is_zero")]
    pub key_events: u64,
    /// The first diagnostics (at most 200).
    pub diagnostics: Vec<Diagnostic>,
}

impl Stats {
    /// Adds another run's statistics.
    pub fn merge(&mut self, o: Stats) {
        self.events += o.events;
        self.identities += o.identities;
        self.skipped_records += o.skipped_records;
        self.other_diagnostics += o.other_diagnostics;
        for (k, v) in o.skipped_by_file {
            *self.skipped_by_file.entry(k).or_default() += v;
        }
        self.invalid_ips += o.invalid_ips;
        self.out_of_order += o.out_of_order;
        self.sigma_matches += o.sigma_matches;
        self.alerts += o.alerts;
        self.repeated_alerts += o.repeated_alerts;
        self.weak_signals_alone += o.weak_signals_alone;
        self.weak_signals_folded += o.weak_signals_folded;
        self.unreadable_files.extend(o.unreadable_files);
        self.filtered_alerts += o.filtered_alerts;
        self.files_already_read += o.files_already_read;
        self.files_too_old += o.files_too_old;
        self.files_outside_range += o.files_outside_range;
        self.outside_range += o.outside_range;
        self.files_read += o.files_read;
        self.key_events += o.key_events;
        for (k, v) in o.alerts_by_rule {
            *self.alerts_by_rule.entry(k).or_default() += v;
        }
        let room = 200usize.saturating_sub(self.diagnostics.len());
        self.diagnostics
            .extend(o.diagnostics.into_iter().take(room));
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

struct CountingSink<'a> {
    inner: &'a mut dyn AlertSink,
    stats: &'a mut Stats,
    /// Alerts raised before (kept in the state): not raised again.
    alerted: &'a mut foldhash::HashMap<Box<str>, i64>,
    filter: &'a AlertFilter,
    /// Combines weak signals (`None`: every alert is raised as it is).
    incidents: Option<&'a mut Incidents>,
}

impl AlertSink for CountingSink<'_> {
    fn alert(&mut self, a: Alert) {
        match self.incidents.as_deref_mut() {
            Some(inc) => {
                for a in inc.push(a) {
                    self.raise(a);
                }
            }
            None => self.raise(a),
        }
    }
}

impl CountingSink<'_> {
    /// Raises an alert that passed the incident stage: filters, dedupe, counts.
    fn raise(&mut self, a: Alert) {
        if !self.filter.allows(&a) {
            self.stats.filtered_alerts += 1;
            return;
        }
        if self
            .alerted
            .insert(Box::from(a.id.as_str()), a.time_ms)
            .is_some()
        {
            self.stats.repeated_alerts += 1;
            return;
        }
        self.stats.alerts += 1;
        *self
            .stats
            .alerts_by_rule
            .entry(a.rule_id.clone())
            .or_default() += 1;
        self.inner.alert(a);
    }
}

/// The detection engine. Feed events with [`Engine::process`] or [`Engine::run`];
/// alerts go to the sink (or are collected and returned by [`Engine::finish`]).
pub struct Engine {
    shared: Shared,
    state: State,
    playbook: Playbook,
    cloud: CloudPlaybook,
    sigma: SigmaState,
    agg: Aggregator,
    sink: Option<Box<dyn AlertSink>>,
    collected: Vec<Alert>,
    stats: Stats,
    ip_cache: foldhash::HashMap<IpAddr, Arc<IpInfo>>,
    hits: Vec<Hit>,
    state_dir: Option<PathBuf>,
    learning_ms: i64,
    since_flush: u32,
    progress: Option<Arc<Progress>>,
    /// Files this run reads (name, size, key time), recorded in the state at the end.
    reading: Vec<(Box<str>, u64, Option<i64>)>,
    /// Files that could not be opened (not recorded as read).
    unopened: foldhash::HashSet<Box<str>>,
    filter: AlertFilter,
    incidents: Option<Incidents>,
    range: TimeRange,
    stage: Stage,
    /// Events handed to the key stage ([`Stage::Partition`]).
    key_events: Vec<KeyEvent>,
    /// Access keys whose first use of the run was handed over.
    seen_keys: foldhash::HashSet<Box<str>>,
}

/// Playbook rules judged by novelty: while an identity is still learning they are
/// reported at low severity.
const NOVELTY_RULES: &[PlaybookRule] = &[
    PlaybookRule::EcsSetup,
    PlaybookRule::RemoteCommand,
    PlaybookRule::SshKeyPush,
    PlaybookRule::LambdaBackdoor,
];

fn looks_like_ip(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b'.' || b == b':')
        && (s.contains('.') || s.contains(':'))
}

impl Engine {
    /// Sends alerts to `sink` as they close instead of collecting them.
    pub fn set_sink(&mut self, sink: Box<dyn AlertSink>) {
        self.sink = Some(sink);
    }

    /// The shared parts (to build more engines over the same rules and data).
    pub fn shared(&self) -> &Shared {
        &self.shared
    }

    /// Current learned state.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Records a reader diagnostic.
    pub fn diagnostic(&mut self, d: Diagnostic) {
        if d.kind == crate::reader::kinds::INVALID_RECORD
            || d.kind == crate::reader::kinds::MISSING_TIME
        {
            self.stats.skipped_records += 1;
            *self
                .stats
                .skipped_by_file
                .entry(d.subject.clone())
                .or_default() += 1;
        } else {
            self.stats.other_diagnostics += 1;
            if d.kind == crate::reader::kinds::UNREADABLE {
                self.stats.unreadable_files.push(d.subject.clone());
                if !self.reading.is_empty() {
                    self.unopened.insert(Box::from(d.subject.as_str()));
                }
            }
        }
        if self.stats.diagnostics.len() < 200 {
            self.stats.diagnostics.push(d);
        }
    }

    /// Consumes a reader.
    pub fn run(&mut self, items: impl IntoIterator<Item = ReadItem>) {
        for it in items {
            match it {
                Ok(ev) => self.process(&ev),
                Err(d) => self.diagnostic(d),
            }
        }
    }

    fn emit(&mut self, f: impl FnOnce(&mut Aggregator, &mut dyn AlertSink)) {
        let Engine {
            agg,
            sink,
            collected,
            stats,
            state,
            filter,
            incidents,
            ..
        } = self;
        let inner: &mut dyn AlertSink = match sink {
            Some(s) => s.as_mut(),
            None => collected,
        };
        let mut cs = CountingSink {
            inner,
            stats,
            alerted: &mut state.alerted,
            filter,
            incidents: incidents.as_mut(),
        };
        f(agg, &mut cs);
    }

    /// Processes one event.
    pub fn process(&mut self, ev: &Event) {
        if !self.range.contains(ev.time_ms) {
            self.stats.outside_range += 1;
            return;
        }
        if self.stage == Stage::Keys {
            self.stats.key_events += 1;
        } else {
            self.stats.events += 1;
        }
        let t = ev.time_ms;
        if t < self.state.watermark_ms - 15 * MINUTE_MS {
            self.stats.out_of_order += 1;
        }
        self.state.watermark_ms = self.state.watermark_ms.max(t);
        let mut hits = std::mem::take(&mut self.hits);
        if let Stage::Keys = self.stage {
            let info = self.ip_info(ev);
            let before = hits.len();
            baseline::new_key(ev, info.as_deref(), &mut self.state.new_keys, &mut hits);
            if ev.provider() != Provider::Aws {
                for h in &mut hits[before..] {
                    baseline::in_provider(h, ev.provider());
                }
            }
        } else {
            if let Stage::Partition { key_partitions } = self.stage {
                self.hand_over_keys(ev, key_partitions);
            }
            // CloudTrail Insights records describe unusual call volume in an account,
            // not a call by an identity: no baselines or identity detectors (an
            // Insight about RunInstances is not a launch); Sigma rules still see them.
            if ev.event_type() != "AwsCloudTrailInsight" {
                self.identity_detectors(ev, &mut hits);
            }
            if !self.shared.sigma.is_empty() {
                self.sigma.process(&self.shared.sigma, ev, &mut hits);
            }
        }
        if !hits.is_empty() {
            let drained: Vec<Hit> = std::mem::take(&mut hits);
            self.emit(|agg, sink| {
                for h in drained {
                    agg.hit(h, ev, sink);
                }
            });
        }
        self.hits = hits;
        self.since_flush += 1;
        if self.since_flush.is_multiple_of(4096)
            && let Some(p) = &self.progress
        {
            use std::sync::atomic::Ordering::Relaxed;
            p.events.store(self.stats.events, Relaxed);
            p.alerts.store(self.stats.alerts, Relaxed);
        }
        if self.since_flush >= 16_384 {
            self.since_flush = 0;
            let wm = self.state.watermark_ms;
            self.emit(|agg, sink| agg.flush_before(wm - HOUR_MS, sink));
            self.playbook.prune(wm);
            let sigma = self.shared.sigma.clone();
            self.sigma.prune(&sigma, wm);
        }
    }

    /// Hands the events the new-key join needs to the key stage: those creating a
    /// key (under the created key) and the first use of each key in this run (under
    /// the key used), once per key-stage partition.
    fn hand_over_keys(&mut self, ev: &Event, partitions: u32) {
        let mut parts: [Option<u32>; 2] = [None, None];
        if let Some(k) = ev.created_key() {
            parts[0] = Some(crate::event::partition_of(&k, partitions));
        }
        if let Some(k) = ev.access_key_id()
            && !self.seen_keys.contains(k)
        {
            if self.seen_keys.len() < MAX_SEEN_KEYS {
                self.seen_keys.insert(Box::from(k));
            }
            let p = crate::event::partition_of(k, partitions);
            if parts[0] != Some(p) {
                parts[1] = Some(p);
            }
        }
        for p in parts.into_iter().flatten() {
            self.key_events.push(KeyEvent {
                partition: p,
                time_ms: ev.time_ms,
                raw: ev.raw().to_string(),
            });
        }
    }

    /// The events handed to the key stage so far ([`Stage::Partition`]), in the
    /// order the engine processed them.
    pub fn take_key_events(&mut self) -> Vec<KeyEvent> {
        std::mem::take(&mut self.key_events)
    }

    /// The IP intelligence of the event's source address (cached).
    fn ip_info(&mut self, ev: &Event) -> Option<Arc<IpInfo>> {
        match ev.source_addr {
            Some(ip) => {
                if self.ip_cache.len() > 200_000 {
                    self.ip_cache.clear();
                }
                let intel = &self.shared.intel;
                Some(
                    self.ip_cache
                        .entry(ip)
                        .or_insert_with(|| Arc::new(intel.lookup(ip)))
                        .clone(),
                )
            }
            None => {
                if looks_like_ip(ev.source_ip()) {
                    self.stats.invalid_ips += 1;
                }
                None
            }
        }
    }

    /// IP intelligence, playbook and behavioural detectors, then the baseline update.
    fn identity_detectors(&mut self, ev: &Event, hits: &mut Vec<Hit>) {
        let t = ev.time_ms;
        let info = self.ip_info(ev);
        let empty = Baseline::default();
        let base = self.state.identities.get(ev.principal());
        let learning = base.is_none_or(|b| t - b.first_ms < self.learning_ms);
        let aws = ev.provider() == Provider::Aws;
        if aws {
            self.playbook.process(ev, base, &self.state.accounts, hits);
        } else {
            self.cloud
                .process(ev, base, info.as_deref(), &self.state.accounts, hits);
        }
        if learning && aws {
            for h in hits.iter_mut() {
                if NOVELTY_RULES
                    .iter()
                    .any(|r| Arc::ptr_eq(&h.rule, playbook::rule(*r)))
                {
                    h.severity = Some(Severity::Low);
                }
            }
        }
        let s3 = s3_bucket(ev);
        let before = hits.len();
        if self.stage == Stage::Whole {
            baseline::new_key(ev, info.as_deref(), &mut self.state.new_keys, hits);
        }
        baseline::detect(
            ev,
            base.unwrap_or(&empty),
            info.as_deref(),
            learning,
            self.shared.owners.as_deref(),
            hits,
            s3,
        );
        if !aws {
            // The behavioural rules judge every cloud's identities the same way; their
            // ids name the cloud of the evidence.
            for h in &mut hits[before..] {
                baseline::in_provider(h, ev.provider());
            }
        }
        let (bucket, bytes) = s3.map_or((None, 0), |(b, n)| (Some(b), n));
        match self.state.identities.get_mut(ev.principal()) {
            Some(b) => b.update(ev, info.as_deref(), bucket, bytes),
            None => {
                let mut b = Baseline::default();
                b.update(ev, info.as_deref(), bucket, bytes);
                self.state.identities.insert(Box::from(ev.principal()), b);
            }
        }
        self.state.accounts.update(ev);
    }

    /// The files of `files` still to read: with a state directory, files an earlier
    /// run read (same path and size) and files whose S3 key time is older than the
    /// state remembers are left out (and counted in the statistics); files whose key
    /// time is outside the time range are left out. The others are recorded as read
    /// when the run finishes, except those that could not be opened.
    /// Takes the list by value and filters it in place: a listing of hundreds of
    /// thousands of files is held once.
    pub fn unread_files(&mut self, files: Vec<PathBuf>) -> Vec<PathBuf> {
        files
            .into_iter()
            .filter(|f| {
                let size = if self.state_dir.is_some() {
                    std::fs::metadata(f).map_or(0, |m| m.len())
                } else {
                    0
                };
                self.unread(f.display().to_string(), size, crate::reader::key_time(f))
            })
            .collect()
    }

    /// [`Engine::unread_files`] for objects read through a
    /// [`crate::reader::Fetch`] (named by URI, with their stored size).
    pub fn unread_objects(
        &mut self,
        objects: Vec<crate::reader::LogObject>,
    ) -> Vec<crate::reader::LogObject> {
        objects
            .into_iter()
            .filter(|o| self.unread(o.name.clone(), o.size, o.key_time()))
            .collect()
    }

    /// Whether to read a log named `name` of `size` bytes with key time `key`
    /// (recorded as read when it is).
    fn unread(&mut self, name: String, size: u64, key: Option<i64>) -> bool {
        if key.is_some_and(|k| !self.range.may_hold(k)) {
            self.stats.files_outside_range += 1;
            return false;
        }
        if self.state_dir.is_none() {
            self.stats.files_read += 1;
            return true;
        }
        let horizon = if self.state.watermark_ms > 0 {
            self.state.watermark_ms - crate::baseline::STATE_RETENTION_MS
        } else {
            i64::MIN
        };
        if self
            .state
            .files
            .get(name.as_str())
            .is_some_and(|m| m.size == size)
        {
            self.stats.files_already_read += 1;
            false
        } else if key.is_some_and(|k| k < horizon) {
            self.stats.files_too_old += 1;
            false
        } else {
            self.stats.files_read += 1;
            self.reading.push((name.into(), size, key));
            true
        }
    }

    /// Closes every open alert, saves state (with `state_dir`), and returns the
    /// collected alerts (empty when a sink was set) and statistics.
    pub fn finish(self) -> (Vec<Alert>, Stats) {
        let (alerts, stats, _) = self.finish_with_state();
        (alerts, stats)
    }

    /// [`Engine::finish`], also returning the state it reached (a distributed run's
    /// checkpoint).
    pub fn finish_with_state(mut self) -> (Vec<Alert>, Stats, State) {
        self.emit(|agg, sink| agg.flush_all(sink));
        if let Some(mut inc) = self.incidents.take() {
            // The held weak signals decided; their incidents raised (past the
            // incident stage, now gone).
            let incidents = inc.finish();
            self.emit(|_, sink| {
                for a in incidents {
                    sink.alert(a);
                }
            });
            self.stats.weak_signals_alone = inc.alone;
            self.stats.weak_signals_folded = inc.folded;
        }
        self.stats.sigma_matches = self.sigma.matches;
        self.stats.identities = self.state.identities.len() as u64;
        let wm = self.state.watermark_ms;
        for (name, size, key) in std::mem::take(&mut self.reading) {
            if !self.unopened.contains(&name) {
                let mark = crate::baseline::FileMark {
                    size,
                    time_ms: key.unwrap_or(wm),
                };
                self.state.files.insert(name, mark);
            }
        }
        self.state.cloud = std::mem::take(&mut self.cloud).into_memory();
        self.state.prune();
        if let Some(dir) = self.state_dir.clone()
            && let Err(d) = self.state.save(&dir)
        {
            self.diagnostic(d);
        }
        let mut alerts = std::mem::take(&mut self.collected);
        sort_alerts(&mut alerts);
        let state = std::mem::take(&mut self.state);
        (alerts, self.stats, state)
    }
}

/// Orders alerts by time, then rule, identity and id (a total order, so the output
/// does not depend on how alerts were produced).
fn sort_alerts(alerts: &mut [Alert]) {
    alerts.sort_by(|a, b| {
        (a.time_ms, &a.rule_id, &a.principal, &a.id).cmp(&(
            b.time_ms,
            &b.rule_id,
            &b.principal,
            &b.id,
        ))
    });
}

/// Runs one engine over `files` merged in event-time order. With more than one
/// thread, `threads` workers read, decompress and parse files ahead of the merge
/// while the calling thread merges and runs the engine (baselines, detectors, Sigma)
/// on the merged stream, so the alerts and statistics are exactly those of one
/// thread. Processed events go back to the workers to be freed (freeing on the
/// allocating thread is much cheaper than freeing here).
pub fn run_parallel(
    builder: &EngineBuilder,
    shared: Shared,
    files: &[PathBuf],
    threads: usize,
) -> (Vec<Alert>, Stats) {
    run_parallel_into(builder, shared, files, threads, None)
}

/// [`run_parallel`] sending alerts to `sink` as they close (the returned list is then
/// empty), so that memory does not grow with the number of alerts.
pub fn run_parallel_into(
    builder: &EngineBuilder,
    shared: Shared,
    files: &[PathBuf],
    threads: usize,
    sink: Option<Box<dyn AlertSink>>,
) -> (Vec<Alert>, Stats) {
    run_logs_into(builder, shared, Logs::Files(files.to_vec()), threads, sink)
}

/// What [`run_logs_into`] reads.
pub enum Logs {
    /// Local files (directories already listed, see [`crate::reader::list_files`]).
    Files(Vec<PathBuf>),
    /// Objects opened by a fetcher (S3), named by URI.
    Objects(Vec<crate::reader::LogObject>, Arc<dyn crate::reader::Fetch>),
    /// Objects each with the time that orders it in the merge (a distributed
    /// run's share of files: [`crate::distributed`]); no `--state` file list.
    Keyed(
        Vec<(i64, crate::reader::LogObject)>,
        Arc<dyn crate::reader::Fetch>,
    ),
}

/// [`run_parallel_into`] over files or fetched objects: the logs a `--state` says
/// were read and those outside the time range are left out, the rest merged in
/// event-time order exactly as files are.
pub fn run_logs_into(
    builder: &EngineBuilder,
    shared: Shared,
    logs: Logs,
    threads: usize,
    sink: Option<Box<dyn AlertSink>>,
) -> (Vec<Alert>, Stats) {
    run_logs_engine(builder, shared, logs, threads, sink).finish()
}

/// [`run_logs_into`] up to the end of the logs: the engine, not finished yet.
pub fn run_logs_engine(
    builder: &EngineBuilder,
    shared: Shared,
    logs: Logs,
    threads: usize,
    sink: Option<Box<dyn AlertSink>>,
) -> Engine {
    use crate::reader::DirRecords;
    let threads = threads.max(1);
    let (mut e, diags) = builder.build_with(shared);
    if let Some(sink) = sink {
        e.set_sink(sink);
    }
    for d in diags {
        e.diagnostic(d);
    }
    // Workers also do the stateless part of Sigma: matching detection rules.
    let enrich: Option<crate::reader::Enrich> =
        (threads > 1 && !e.shared.sigma.is_empty()).then(|| {
            let sigma = e.shared.sigma.clone();
            Arc::new(move |ev: &mut Event| sigma.prematch(ev)) as crate::reader::Enrich
        });
    let workers = if threads == 1 { 0 } else { threads };
    let mut dir = match logs {
        Logs::Files(files) => {
            let files = e.unread_files(files);
            if workers == 0 {
                DirRecords::from_files(files, Vec::new())
            } else {
                DirRecords::from_files_enriched(files, Vec::new(), workers, enrich)
            }
        }
        Logs::Objects(objects, fetch) => {
            let objects = e.unread_objects(objects);
            DirRecords::from_objects(objects, fetch, Vec::new(), workers, enrich)
        }
        Logs::Keyed(objects, fetch) => {
            e.stats.files_read += objects.len() as u64;
            DirRecords::from_keyed_objects(objects, fetch, Vec::new(), workers, enrich)
        }
    };
    while let Some(it) = dir.next() {
        match it {
            Ok(ev) => {
                e.process(&ev);
                dir.recycle(ev);
            }
            Err(d) => e.diagnostic(d),
        }
    }
    e
}

/// Convenience: one engine over one path (file, directory or `-`).
pub fn detect_path(builder: &EngineBuilder, path: &Path) -> (Vec<Alert>, Stats) {
    let (mut e, diags) = builder.build();
    for d in diags {
        e.diagnostic(d);
    }
    e.run(crate::reader::read_path(path));
    e.finish()
}

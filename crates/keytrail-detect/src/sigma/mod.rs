//! A Sigma engine for CloudTrail: loads SigmaHQ-format rules (detection and
//! correlation rules, multi-document YAML), compiles them to matchers and evaluates
//! them on [`Event`]s.
//!
//! Written here rather than taken from crates.io: the one maintained Rust Sigma crate
//! (`sigma-rust`) evaluates its own event type (a JSON copy per event) and has no
//! correlation rules; keytrail needs both correlation and a fast path that reads typed
//! CloudTrail fields without building a JSON tree per event.
//!
//! Semantics follow the Sigma specification: string matching is case-insensitive
//! unless `|cased`; `*`/`?` are wildcards (`\` escapes them); a list of values is OR,
//! `|all` makes it AND; a list of maps is OR of ANDs; `null` matches a missing or null
//! field; keywords search the whole record; `|re` is case-sensitive unless `|re|i`.
//! Every alert keeps the rule's `author` (the SigmaHQ Detection Rule License requires it).
//!
//! [`SigmaRules::load`] compiles the SigmaHQ cloud rules embedded in `keytrail-rules`
//! (AWS, Azure and Entra ID, Google Cloud, Microsoft 365; shaped by the default
//! [`profile::Profile`]) together with rule files from disk; a rule from disk
//! replaces an embedded rule with the same `id`. A rule's `logsource` routes it to
//! one cloud's events ([`fields::Route`]); the other clouds' field names are mapped
//! by [`fields::get`].

pub mod condition;
pub mod correlation;
pub mod fields;
pub mod matcher;
pub mod profile;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use keytrail_types::{Diagnostic, Severity};
use serde::Deserialize;
use serde_yaml_ng::Value as Yaml;

use crate::alert::{AlertSource, Hit, RuleInfo};
use crate::event::Event;
use crate::prematch::{Prematch, RuleIds};
use crate::time::{DAY_MS, HOUR_MS};
use condition::Cond;
use correlation::{CorrState, Correlation};
use fields::Route;
use matcher::{FieldCond, Matcher};

/// One selection of a detection.
#[derive(Debug, Clone)]
pub enum Selection {
    /// A list of maps: OR over maps, AND within a map.
    Maps(Vec<Vec<FieldCond>>),
    /// Keywords: OR over full-text searches.
    Keywords(Vec<Matcher>),
}

impl Selection {
    fn eval(&self, ev: &Event) -> bool {
        match self {
            Selection::Maps(maps) => maps.iter().any(|m| m.iter().all(|f| f.eval(ev))),
            Selection::Keywords(ks) => ks.iter().any(|k| matcher::keyword_match(k, ev)),
        }
    }

    /// `eventName` literals this selection requires (every alternative names some).
    fn event_names(&self) -> Option<Vec<String>> {
        let Selection::Maps(maps) = self else {
            return None;
        };
        let mut out = Vec::new();
        for m in maps {
            let f = m.iter().find(|f| f.path.path == "eventName")?;
            out.extend(f.exact_literals()?);
        }
        Some(out)
    }
}

/// A compiled Sigma detection rule.
#[derive(Debug, Clone)]
pub struct SigmaRule {
    /// Metadata shared with alerts.
    pub info: Arc<RuleInfo>,
    /// `name` (used by correlation rules to reference it).
    pub name: Option<String>,
    /// File it came from.
    pub path: String,
    /// Whether matches raise alerts on their own (false when only a correlation uses it).
    pub generate: bool,
    /// The events the rule runs on (from its `logsource`).
    pub route: Route,
    /// Selection names, in detection order.
    pub selection_names: Vec<String>,
    selections: Vec<Selection>,
    cond: Cond,
    /// Necessary conditions checked before the detection: the field must be a string
    /// containing one of the literals (from `|re` expressions with a required literal).
    required: Vec<(matcher::FieldPath, Vec<String>)>,
}

impl SigmaRule {
    /// Whether the rule's detection matches the event.
    pub fn matches(&self, ev: &Event) -> bool {
        for (path, lits) in &self.required {
            match path.get(ev) {
                matcher::FieldVal::Str(s) => {
                    if !lits.iter().any(|l| s.contains(l.as_str())) {
                        return false;
                    }
                }
                matcher::FieldVal::Missing | matcher::FieldVal::Null => return false,
                matcher::FieldVal::Json(_) | matcher::FieldVal::Many(_) => {}
            }
        }
        let mut cache: [Option<bool>; 16] = [None; 16];
        let sels = &self.selections;
        self.cond.eval(&mut |i| {
            if i < 16 {
                *cache[i].get_or_insert_with(|| sels[i].eval(ev))
            } else {
                sels[i].eval(ev)
            }
        })
    }

    fn event_name_index(&self) -> Option<Vec<String>> {
        fn walk(c: &Cond, sels: &[Selection]) -> Option<Vec<String>> {
            match c {
                Cond::Sel(i) => sels[*i].event_names(),
                Cond::And(cs) => cs.iter().filter_map(|c| walk(c, sels)).min_by_key(Vec::len),
                Cond::Or(cs) => {
                    let mut out = Vec::new();
                    for c in cs {
                        out.extend(walk(c, sels)?);
                    }
                    Some(out)
                }
                Cond::Of(n, ids) if *n == usize::MAX => ids
                    .iter()
                    .filter_map(|&i| sels[i].event_names())
                    .min_by_key(Vec::len),
                Cond::Of(_, ids) => {
                    let mut out = Vec::new();
                    for &i in ids {
                        out.extend(sels[i].event_names()?);
                    }
                    Some(out)
                }
                Cond::Not(_) => None,
            }
        }
        walk(&self.cond, &self.selections)
    }
}

/// A loaded, indexed rule set.
#[derive(Debug, Default)]
pub struct SigmaRules {
    /// Detection rules.
    pub rules: Vec<SigmaRule>,
    /// Correlation rules.
    pub correlations: Vec<Correlation>,
    by_event_name: foldhash::HashMap<String, Vec<usize>>,
    unindexed: Vec<usize>,
    /// Rules of the other clouds, by [`crate::event::Provider`] (not indexed by name).
    by_provider: [Vec<usize>; 5],
    corr_by_rule: Vec<Vec<usize>>,
    /// Unique id of this indexed set, so matches computed ahead ([`Event`]'s
    /// prematched rules) are only used with the set that computed them.
    id: u64,
}

/// Source of [`SigmaRules`] ids.
static NEXT_RULES_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

#[derive(Deserialize, Default)]
#[serde(default)]
struct LogSourceSyntax {
    product: Option<String>,
    service: Option<String>,
}

/// Maps a Sigma `level` to a severity.
pub fn level_severity(level: Option<&str>) -> Severity {
    match level.map(str::to_ascii_lowercase).as_deref() {
        Some("critical") => Severity::Critical,
        Some("high") => Severity::High,
        Some("medium") => Severity::Medium,
        Some("low") => Severity::Low,
        _ => Severity::Info,
    }
}

fn technique_and_tactic(tags: &[String]) -> (String, String) {
    let mut technique = String::new();
    let mut tactic = String::new();
    for t in tags {
        let Some(rest) = t.strip_prefix("attack.") else {
            continue;
        };
        let is_tech = rest.len() >= 5
            && rest.as_bytes()[0].eq_ignore_ascii_case(&b't')
            && rest[1..5].bytes().all(|b| b.is_ascii_digit());
        if is_tech {
            if technique.is_empty() {
                technique = rest.to_ascii_uppercase();
            }
        } else if tactic.is_empty() && !rest.starts_with('g') && !rest.starts_with('s') {
            tactic = rest.to_string();
        }
    }
    (technique, tactic)
}

fn str_field(doc: &Yaml, key: &str) -> Option<String> {
    doc.get(key).and_then(|v| match v {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

fn compile_selection(name: &str, v: &Yaml) -> Result<Selection, String> {
    let compile_map = |m: &serde_yaml_ng::Mapping| -> Result<Vec<FieldCond>, String> {
        if m.is_empty() {
            return Err(format!("selection `{name}` is an empty map"));
        }
        m.iter()
            .map(|(k, v)| {
                let k = k
                    .as_str()
                    .ok_or_else(|| format!("selection `{name}` has a non-string key"))?;
                matcher::compile_field(k, v)
            })
            .collect()
    };
    match v {
        Yaml::Mapping(m) => Ok(Selection::Maps(vec![compile_map(m)?])),
        Yaml::Sequence(items) if items.iter().all(|i| matches!(i, Yaml::Mapping(_))) => {
            let maps = items
                .iter()
                .map(|i| compile_map(i.as_mapping().expect("checked")))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Selection::Maps(maps))
        }
        Yaml::Sequence(items) => Ok(Selection::Keywords(
            items
                .iter()
                .map(matcher::compile_keyword)
                .collect::<Result<Vec<_>, _>>()?,
        )),
        scalar => Ok(Selection::Keywords(vec![matcher::compile_keyword(scalar)?])),
    }
}

/// Compiles one detection-rule document.
pub fn compile_rule(doc: &Yaml, path: &str) -> Result<SigmaRule, String> {
    let title = str_field(doc, "title").ok_or("rule has no title")?;
    let id = str_field(doc, "id").unwrap_or_else(|| format!("{path}#{title}"));
    let author = str_field(doc, "author");
    let level = str_field(doc, "level");
    let tags: Vec<String> = doc
        .get("tags")
        .and_then(Yaml::as_sequence)
        .map(|s| {
            s.iter()
                .filter_map(|t| t.as_str().map(str::to_ascii_lowercase))
                .collect()
        })
        .unwrap_or_default();
    let (technique, tactic) = technique_and_tactic(&tags);
    let det = doc
        .get("detection")
        .and_then(Yaml::as_mapping)
        .ok_or("rule has no detection map")?;
    let mut names = Vec::new();
    let mut selections = Vec::new();
    let mut cond_src: Option<Vec<String>> = None;
    for (k, v) in det {
        let k = k.as_str().ok_or("detection has a non-string key")?;
        match k {
            "condition" => {
                cond_src = Some(match v {
                    Yaml::String(s) => vec![s.clone()],
                    Yaml::Sequence(s) => s
                        .iter()
                        .filter_map(|c| c.as_str().map(String::from))
                        .collect(),
                    _ => return Err("condition is not a string".into()),
                })
            }
            "timeframe" => {}
            _ => {
                selections.push(compile_selection(k, v)?);
                names.push(k.to_string());
            }
        }
    }
    let cond_src = cond_src.ok_or("detection has no condition")?;
    let mut conds = cond_src
        .iter()
        .map(|c| condition::parse(c, &names))
        .collect::<Result<Vec<_>, _>>()?;
    let cond = if conds.len() == 1 {
        conds.pop().expect("one")
    } else {
        Cond::Or(conds)
    };
    let severity = level_severity(level.as_deref());
    let required = required_literals(&cond, &selections);
    Ok(SigmaRule {
        info: Arc::new(RuleInfo {
            id,
            title,
            severity,
            technique,
            tactic,
            source: AlertSource::Sigma,
            author,
            window_ms: window_for(severity),
        }),
        name: str_field(doc, "name"),
        path: path.to_string(),
        generate: true,
        route: route_of(doc).unwrap_or(Route::Aws),
        selection_names: names,
        selections,
        cond,
        required,
    })
}

/// Field conditions every match of `cond` must satisfy whose matchers are all regular
/// expressions with a required literal: `(field, literals)` where the field's value
/// must contain one of the literals (a cheap test before the expressions run).
fn required_literals(cond: &Cond, sels: &[Selection]) -> Vec<(matcher::FieldPath, Vec<String>)> {
    let from_sel = |i: usize| -> Vec<(matcher::FieldPath, Vec<String>)> {
        let Selection::Maps(maps) = &sels[i] else {
            return Vec::new();
        };
        let [map] = maps.as_slice() else {
            return Vec::new();
        };
        map.iter()
            .filter(|f| !f.all)
            .filter_map(|f| {
                let lits: Option<Vec<String>> = f
                    .matchers
                    .iter()
                    .map(|m| match m {
                        Matcher::Regex(r) => matcher::required_literal(r.as_str()),
                        _ => None,
                    })
                    .collect();
                Some((f.path.clone(), lits?))
            })
            .collect()
    };
    match cond {
        Cond::Sel(i) => from_sel(*i),
        Cond::And(cs) => cs.iter().flat_map(|c| required_literals(c, sels)).collect(),
        Cond::Of(n, ids) if *n == usize::MAX => ids.iter().flat_map(|&i| from_sel(i)).collect(),
        _ => Vec::new(),
    }
}

/// Where a rule document runs (its `logsource`), or why it cannot.
fn route_of(doc: &Yaml) -> Result<Route, String> {
    let ls: LogSourceSyntax = doc
        .get("logsource")
        .and_then(|v| serde_yaml_ng::from_value(v.clone()).ok())
        .unwrap_or_default();
    Route::of(ls.product.as_deref(), ls.service.as_deref())
}

/// The embedded SigmaHQ rule folders that run: CloudTrail, Entra ID and the Azure
/// Activity log, Google Cloud, Microsoft 365.
pub const BUILTIN_FOLDERS: [&str; 4] = ["aws", "azure", "gcp", "m365"];

/// Prefix of the names of embedded rules (`builtin:sigma/aws/cloudtrail/…yml`).
pub const BUILTIN_PREFIX: &str = "builtin:sigma/";

/// What [`SigmaRules::load`] did with the embedded rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuiltinUse {
    /// Embedded rules loaded.
    pub loaded: usize,
    /// Embedded rules the profile turned off.
    pub off: usize,
    /// Embedded rules the profile runs at another level.
    pub relevelled: usize,
    /// Embedded rules replaced by a rule with the same id from disk.
    pub replaced: usize,
}

impl SigmaRules {
    /// Loads the embedded SigmaHQ cloud rules (AWS, Azure, GCP, M365; when `builtin`,
    /// shaped by `profile`)
    /// and every rule file under `paths`. A rule from `paths` with the `id` of an
    /// embedded rule replaces it; rules from `paths` are never profiled.
    pub fn load(
        builtin: bool,
        profile: &profile::Profile,
        paths: &[PathBuf],
    ) -> (Self, BuiltinUse, Vec<Diagnostic>) {
        let (mut docs, mut diags) = read_rule_files(paths);
        if builtin {
            for folder in BUILTIN_FOLDERS {
                docs.extend(
                    keytrail_rules::builtin_sigma(folder)
                        .into_iter()
                        .map(|f| (format!("{BUILTIN_PREFIX}{}", f.path), f.text.to_string())),
                );
            }
        }
        let mut use_ = BuiltinUse::default();
        let (rules, more) = Self::compile(
            docs.iter().map(|(n, t)| (n.as_str(), t.as_str())),
            |rules| shape_builtin(rules, profile, &mut use_),
        );
        diags.extend(more);
        (rules, use_, diags)
    }

    /// Loads every `*.yml`/`*.yaml` under the given directories (or files). Rules for
    /// other log sources are skipped with a notice; invalid rules give an error
    /// diagnostic naming the file, and loading goes on.
    pub fn load_paths(paths: &[PathBuf]) -> (Self, Vec<Diagnostic>) {
        let (docs, mut diags) = read_rule_files(paths);
        let (rules, more) = Self::from_sources(docs.iter().map(|(n, t)| (n.as_str(), t.as_str())));
        diags.extend(more);
        (rules, diags)
    }

    /// Compiles rules from `(name, yaml text)` pairs.
    pub fn from_sources<'a>(
        sources: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> (Self, Vec<Diagnostic>) {
        Self::compile(sources, |_| {})
    }

    /// Compiles detection rules, lets `shape` edit the list (before correlation rules,
    /// which refer to detection rules by position, are compiled), then compiles the
    /// correlations and indexes the set.
    fn compile<'a>(
        sources: impl IntoIterator<Item = (&'a str, &'a str)>,
        shape: impl FnOnce(&mut Vec<SigmaRule>),
    ) -> (Self, Vec<Diagnostic>) {
        let mut set = SigmaRules::default();
        let mut diags = Vec::new();
        let mut corr_docs = Vec::new();
        for (name, text) in sources {
            if let Some((line, col)) =
                keytrail_types::yaml_depth::too_deep(text, keytrail_types::yaml_depth::MAX_DEPTH)
            {
                diags.push(
                    Diagnostic::error(
                        "rule_invalid",
                        name,
                        format!(
                            "nested deeper than {} levels: not a Sigma rule (not parsed)",
                            keytrail_types::yaml_depth::MAX_DEPTH
                        ),
                    )
                    .at(Some(line), Some(col)),
                );
                continue;
            }
            for (i, doc) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
                let doc = match Yaml::deserialize(doc) {
                    Ok(d) => d,
                    Err(e) => {
                        diags.push(Diagnostic::error(
                            "rule_invalid",
                            name,
                            format!("YAML error: {e}"),
                        ));
                        break;
                    }
                };
                if matches!(doc, Yaml::Null) {
                    continue;
                }
                if doc.get("correlation").is_some() {
                    corr_docs.push((name.to_string(), doc));
                    continue;
                }
                if doc.get("action").is_some() {
                    diags.push(Diagnostic::skip(
                        "rule_unsupported",
                        name,
                        "legacy multi-document `action` collections are not supported",
                    ));
                    continue;
                }
                if let Err(why) = route_of(&doc) {
                    diags.push(Diagnostic::skip("rule_skipped", name, why));
                    continue;
                }
                match compile_rule(&doc, name) {
                    Ok(r) => set.rules.push(r),
                    Err(e) => diags.push(
                        Diagnostic::error("rule_invalid", name, e)
                            .at(if i > 0 { Some(i as u64 + 1) } else { None }, None),
                    ),
                }
            }
        }
        shape(&mut set.rules);
        for (name, doc) in corr_docs {
            match correlation::compile(&doc, &name, &set.rules) {
                Ok(c) => set.correlations.push(c),
                Err(e) => diags.push(Diagnostic::error("rule_invalid", name, e)),
            }
        }
        set.index();
        (set, diags)
    }

    fn index(&mut self) {
        self.id = NEXT_RULES_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.by_event_name.clear();
        self.unindexed.clear();
        self.by_provider = Default::default();
        self.corr_by_rule = vec![Vec::new(); self.rules.len()];
        for (ci, c) in self.correlations.iter().enumerate() {
            for &r in &c.rules {
                self.corr_by_rule[r].push(ci);
                if !c.generate {
                    self.rules[r].generate = false;
                }
            }
        }
        for (i, r) in self.rules.iter().enumerate() {
            if r.route != Route::Aws {
                self.by_provider[r.route.provider() as usize].push(i);
                continue;
            }
            match r.event_name_index() {
                Some(names) => {
                    let mut names = names;
                    names.sort();
                    names.dedup();
                    for n in names {
                        self.by_event_name.entry(n).or_default().push(i);
                    }
                }
                None => self.unindexed.push(i),
            }
        }
    }

    /// Number of detection plus correlation rules.
    pub fn len(&self) -> usize {
        self.rules.len() + self.correlations.len()
    }

    /// Whether no rule is loaded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Computes the detection rules that match `ev` and stores them in the event, so
    /// that a parse worker can do the stateless part of Sigma evaluation ahead of the
    /// engine ([`SigmaState::process`] then uses them instead of matching again).
    pub fn prematch(&self, ev: &mut Event) {
        thread_local! {
            static SCRATCH: std::cell::RefCell<(String, Vec<usize>)> = Default::default();
        }
        SCRATCH.with(|s| {
            let (scratch, out) = &mut *s.borrow_mut();
            self.matching(ev, scratch, out);
            let mut ids = RuleIds::default();
            for &i in out.iter() {
                ids.push(i);
            }
            ev.prematch = Some(Prematch { set: self.id, ids });
        });
    }

    /// Indices of the detection rules that match `ev`. `scratch` is reused between calls.
    pub fn matching(&self, ev: &Event, scratch: &mut String, out: &mut Vec<usize>) {
        out.clear();
        let provider = ev.provider();
        if provider != crate::event::Provider::Aws {
            out.extend(
                self.by_provider[provider as usize]
                    .iter()
                    .copied()
                    .filter(|&i| self.rules[i].route.applies(ev) && self.rules[i].matches(ev)),
            );
            return;
        }
        scratch.clear();
        scratch.push_str(ev.event_name());
        scratch.make_ascii_lowercase();
        if let Some(list) = self.by_event_name.get(scratch.as_str()) {
            out.extend(list.iter().copied().filter(|&i| self.rules[i].matches(ev)));
        }
        out.extend(
            self.unindexed
                .iter()
                .copied()
                .filter(|&i| self.rules[i].matches(ev)),
        );
    }
}

/// Reads every rule file under `paths` as `(name, text)`, sorted and once each.
fn read_rule_files(paths: &[PathBuf]) -> (Vec<(String, String)>, Vec<Diagnostic>) {
    let mut files = Vec::new();
    let mut diags = Vec::new();
    for p in paths {
        let (found, d) = keytrail_types::files::yaml_files(p);
        files.extend(found);
        diags.extend(d);
    }
    files.sort();
    files.dedup();
    let mut docs = Vec::new();
    for f in &files {
        let name = f.display().to_string();
        match std::fs::read_to_string(f) {
            Ok(text) => docs.push((name, text)),
            Err(e) => diags.push(Diagnostic::error("rule_unreadable", name, e.to_string())),
        }
    }
    (docs, diags)
}

/// Applies the profile to the embedded rules and drops the embedded rules that a
/// rule from disk replaces (same id).
fn shape_builtin(rules: &mut Vec<SigmaRule>, profile: &profile::Profile, use_: &mut BuiltinUse) {
    let builtin = |r: &SigmaRule| r.path.starts_with(BUILTIN_PREFIX);
    let from_disk: HashSet<String> = rules
        .iter()
        .filter(|r| !builtin(r))
        .map(|r| r.info.id.clone())
        .collect();
    rules.retain_mut(|r| {
        if !builtin(r) {
            return true;
        }
        if from_disk.contains(&r.info.id) {
            use_.replaced += 1;
            return false;
        }
        if let Some(e) = profile.get(&r.info.id) {
            if !e.enabled {
                use_.off += 1;
                return false;
            }
            if let Some(level) = e.level {
                let mut info = (*r.info).clone();
                info.severity = level;
                info.window_ms = window_for(level);
                r.info = Arc::new(info);
                use_.relevelled += 1;
            }
        }
        use_.loaded += 1;
        true
    });
}

/// Aggregation window of a Sigma rule's alerts: low and informational rules describe
/// routine activity as often as not, so one alert per identity and day keeps them
/// readable; others one per hour.
fn window_for(severity: Severity) -> i64 {
    if severity <= Severity::Low {
        DAY_MS
    } else {
        HOUR_MS
    }
}

/// The explanation of a Sigma detection-rule alert (built only when an alert opens).
fn sigma_explanation(info: &RuleInfo, ev: &Event) -> String {
    let by = info.author.as_deref().unwrap_or("unknown author");
    format!(
        "Sigma rule \"{}\" (by {by}) matched {} on {} by {} from {}",
        info.title,
        ev.event_name(),
        ev.event_source(),
        ev.principal(),
        if ev.source_ip().is_empty() {
            "an unknown address"
        } else {
            ev.source_ip()
        }
    )
}

/// Per-run Sigma evaluation state (correlation windows).
#[derive(Default)]
pub struct SigmaState {
    corr: Vec<CorrState>,
    scratch: String,
    matched: Vec<usize>,
    /// Detection-rule matches so far.
    pub matches: u64,
}

impl SigmaState {
    /// Evaluates every rule on `ev`, appending hits.
    pub fn process(&mut self, rules: &SigmaRules, ev: &Event, hits: &mut Vec<Hit>) {
        if self.corr.len() != rules.correlations.len() {
            self.corr = rules
                .correlations
                .iter()
                .map(|_| CorrState::default())
                .collect();
        }
        match &ev.prematch {
            Some(pre) if pre.set == rules.id => {
                self.matched.clear();
                self.matched.extend(pre.ids.iter());
            }
            _ => rules.matching(ev, &mut self.scratch, &mut self.matched),
        }
        for &ri in &self.matched {
            self.matches += 1;
            let r = &rules.rules[ri];
            if r.generate {
                hits.push(Hit::lazy(&r.info, sigma_explanation));
            }
            for &ci in &rules.corr_by_rule[ri] {
                if let Some(h) = self.corr[ci].observe(&rules.correlations[ci], ri, ev) {
                    hits.push(h);
                }
            }
        }
    }

    /// Drops correlation windows that ended before `watermark_ms`.
    pub fn prune(&mut self, rules: &SigmaRules, watermark_ms: i64) {
        for (s, c) in self.corr.iter_mut().zip(&rules.correlations) {
            s.prune(c, watermark_ms);
        }
    }
}

//! Sigma correlation rules: `event_count`, `value_count`, `temporal` and
//! `temporal_ordered`, with `group-by` fields and a `timespan`.
//!
//! State is kept per correlation and group: a window of recent matches, pruned by event
//! time, so memory is bounded by the number of groups active within a timespan.

use std::collections::VecDeque;

use foldhash::HashMap;
use std::sync::Arc;

use serde_yaml_ng::Value as Yaml;

use super::matcher::FieldPath;
use super::{SigmaRule, level_severity, str_field, technique_and_tactic};
use crate::alert::{AlertSource, Hit, RuleInfo};
use crate::event::Event;
use crate::time::parse_duration_ms;

/// Correlation type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CorrKind {
    /// Number of matching events per group.
    EventCount,
    /// Number of distinct values of a field per group.
    ValueCount,
    /// All referenced rules match within the timespan, any order.
    Temporal,
    /// All referenced rules match within the timespan, in the listed order.
    TemporalOrdered,
}

/// A threshold such as `gte: 10`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Threshold {
    gt: Option<u64>,
    gte: Option<u64>,
    lt: Option<u64>,
    lte: Option<u64>,
    eq: Option<u64>,
}

impl Threshold {
    /// Whether `n` satisfies every bound.
    pub fn ok(&self, n: u64) -> bool {
        self.gt.is_none_or(|v| n > v)
            && self.gte.is_none_or(|v| n >= v)
            && self.lt.is_none_or(|v| n < v)
            && self.lte.is_none_or(|v| n <= v)
            && self.eq.is_none_or(|v| n == v)
    }
    fn describe(&self) -> String {
        let mut p = Vec::new();
        for (name, v) in [
            (">", self.gt),
            (">=", self.gte),
            ("<", self.lt),
            ("<=", self.lte),
            ("=", self.eq),
        ] {
            if let Some(v) = v {
                p.push(format!("{name} {v}"));
            }
        }
        p.join(" and ")
    }
}

/// A compiled correlation rule.
#[derive(Debug, Clone)]
pub struct Correlation {
    /// Metadata shared with alerts.
    pub info: Arc<RuleInfo>,
    /// Type.
    pub kind: CorrKind,
    /// Referenced detection rules (indices).
    pub rules: Vec<usize>,
    /// Group-by fields.
    pub group_by: Vec<FieldPath>,
    /// Window length.
    pub timespan_ms: i64,
    /// Threshold (count types).
    pub threshold: Threshold,
    /// Field counted by `value_count`.
    pub field: Option<FieldPath>,
    /// Whether the referenced rules also raise their own alerts.
    pub generate: bool,
}

/// Compiles a correlation document, resolving rule references by `name` or `id`.
pub fn compile(doc: &Yaml, path: &str, rules: &[SigmaRule]) -> Result<Correlation, String> {
    let title = str_field(doc, "title").ok_or("correlation has no title")?;
    let id = str_field(doc, "id").unwrap_or_else(|| format!("{path}#{title}"));
    let c = doc.get("correlation").ok_or("no correlation section")?;
    let kind = match c.get("type").and_then(Yaml::as_str) {
        Some("event_count") => CorrKind::EventCount,
        Some("value_count") => CorrKind::ValueCount,
        Some("temporal") => CorrKind::Temporal,
        Some("temporal_ordered") => CorrKind::TemporalOrdered,
        Some(other) => return Err(format!("unsupported correlation type `{other}`")),
        None => return Err("correlation has no type".into()),
    };
    let refs: Vec<String> = match c.get("rules") {
        Some(Yaml::Sequence(s)) => s
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect(),
        Some(Yaml::String(s)) => vec![s.clone()],
        _ => return Err("correlation has no rules".into()),
    };
    let mut idx = Vec::new();
    for r in &refs {
        let i = rules
            .iter()
            .position(|x| x.name.as_deref() == Some(r.as_str()) || x.info.id == *r)
            .ok_or_else(|| format!("correlation references unknown rule `{r}`"))?;
        idx.push(i);
    }
    let group_by = match c.get("group-by") {
        Some(Yaml::Sequence(s)) => s
            .iter()
            .filter_map(|v| v.as_str().map(FieldPath::new))
            .collect(),
        Some(Yaml::String(s)) => vec![FieldPath::new(s)],
        _ => Vec::new(),
    };
    let span = c
        .get("timespan")
        .or_else(|| c.get("timeframe"))
        .and_then(Yaml::as_str)
        .ok_or("correlation has no timespan")?;
    let timespan_ms =
        parse_duration_ms(span).ok_or_else(|| format!("invalid timespan `{span}`"))?;
    let mut threshold = Threshold {
        gt: None,
        gte: None,
        lt: None,
        lte: None,
        eq: None,
    };
    let mut field = c.get("field").and_then(Yaml::as_str).map(FieldPath::new);
    if let Some(Yaml::Mapping(m)) = c.get("condition") {
        for (k, v) in m {
            let n = v.as_u64();
            match k.as_str() {
                Some("gt") => threshold.gt = n,
                Some("gte") => threshold.gte = n,
                Some("lt") => threshold.lt = n,
                Some("lte") => threshold.lte = n,
                Some("eq") => threshold.eq = n,
                Some("field") => field = v.as_str().map(FieldPath::new),
                Some(other) => return Err(format!("unsupported correlation condition `{other}`")),
                None => {}
            }
        }
    } else if matches!(kind, CorrKind::EventCount | CorrKind::ValueCount) {
        return Err("count correlation needs a condition".into());
    }
    if kind == CorrKind::ValueCount && field.is_none() {
        return Err("value_count correlation needs a field".into());
    }
    if c.get("aliases").is_some() {
        return Err("correlation field aliases are not supported".into());
    }
    let tags: Vec<String> = doc
        .get("tags")
        .and_then(Yaml::as_sequence)
        .map(|s| {
            s.iter()
                .filter_map(|t| t.as_str().map(str::to_ascii_lowercase))
                .collect()
        })
        .unwrap_or_default();
    let (mut technique, mut tactic) = technique_and_tactic(&tags);
    if technique.is_empty() {
        technique = rules[idx[0]].info.technique.clone();
        tactic = rules[idx[0]].info.tactic.clone();
    }
    let author = str_field(doc, "author").or_else(|| rules[idx[0]].info.author.clone());
    Ok(Correlation {
        info: Arc::new(RuleInfo {
            id,
            title,
            severity: level_severity(str_field(doc, "level").as_deref()),
            technique,
            tactic,
            source: AlertSource::Sigma,
            author,
            window_ms: timespan_ms,
        }),
        kind,
        rules: idx,
        group_by,
        timespan_ms,
        threshold,
        field,
        generate: c.get("generate").and_then(Yaml::as_bool).unwrap_or(false),
    })
}

#[derive(Default)]
struct Group {
    events: VecDeque<(i64, Box<str>)>,
    values: VecDeque<(i64, String)>,
    value_counts: HashMap<String, u32>,
    /// Temporal: last time each referenced rule matched (chain start for ordered).
    seen: Vec<Option<i64>>,
    last_ms: i64,
}

/// Runtime state of one correlation.
#[derive(Default)]
pub struct CorrState {
    groups: HashMap<String, Group>,
}

impl CorrState {
    /// Feeds a match of rule `rule_idx`; returns a hit when the correlation fires.
    pub fn observe(&mut self, c: &Correlation, rule_idx: usize, ev: &Event) -> Option<Hit> {
        let key = c
            .group_by
            .iter()
            .map(|f| f.get_string(ev))
            .collect::<Vec<_>>()
            .join("|");
        let g = self.groups.entry(key.clone()).or_default();
        let t = ev.time_ms;
        g.last_ms = g.last_ms.max(t);
        let cutoff = t - c.timespan_ms;
        let (fired, explanation) = match c.kind {
            CorrKind::EventCount => {
                g.events.push_back((t, Box::from(ev.event_id())));
                while g.events.front().is_some_and(|(ts, _)| *ts < cutoff) {
                    g.events.pop_front();
                }
                let n = g.events.len() as u64;
                (
                    c.threshold.ok(n),
                    format!(
                        "{n} matching events within {} s for group [{key}] (threshold {})",
                        c.timespan_ms / 1000,
                        c.threshold.describe()
                    ),
                )
            }
            CorrKind::ValueCount => {
                let field = c.field.as_ref().expect("checked at compile");
                let v = field.get_string(ev);
                *g.value_counts.entry(v.clone()).or_default() += 1;
                g.values.push_back((t, v));
                while g.values.front().is_some_and(|(ts, _)| *ts < cutoff) {
                    let (_, old) = g.values.pop_front().expect("front");
                    if let Some(n) = g.value_counts.get_mut(&old) {
                        *n -= 1;
                        if *n == 0 {
                            g.value_counts.remove(&old);
                        }
                    }
                }
                let n = g.value_counts.len() as u64;
                (
                    c.threshold.ok(n),
                    format!(
                        "{n} distinct values of {} within {} s for group [{key}] (threshold {})",
                        field.path,
                        c.timespan_ms / 1000,
                        c.threshold.describe()
                    ),
                )
            }
            CorrKind::Temporal | CorrKind::TemporalOrdered => {
                if g.seen.len() != c.rules.len() {
                    g.seen = vec![None; c.rules.len()];
                }
                let ordered = c.kind == CorrKind::TemporalOrdered;
                for (pos, &r) in c.rules.iter().enumerate() {
                    if r != rule_idx {
                        continue;
                    }
                    if !ordered {
                        g.seen[pos] = Some(t);
                    } else if pos == 0 {
                        g.seen[0] = Some(t);
                    } else if let Some(start) = g.seen[pos - 1]
                        && t - start <= c.timespan_ms
                    {
                        g.seen[pos] = Some(start);
                    }
                }
                let all = if ordered {
                    g.seen
                        .last()
                        .copied()
                        .flatten()
                        .is_some_and(|s| t - s <= c.timespan_ms)
                } else {
                    g.seen.iter().all(|s| s.is_some_and(|s| s >= cutoff))
                };
                (
                    all,
                    format!(
                        "all {} correlated rules matched within {} s for group [{key}]",
                        c.rules.len(),
                        c.timespan_ms / 1000
                    ),
                )
            }
        };
        if !fired {
            return None;
        }
        let mut h = Hit::new(&c.info, explanation);
        h.group = Some(key);
        Some(h)
    }

    /// Drops groups idle for longer than the timespan.
    pub fn prune(&mut self, c: &Correlation, watermark_ms: i64) {
        self.groups
            .retain(|_, g| g.last_ms + c.timespan_ms >= watermark_ms);
    }
}

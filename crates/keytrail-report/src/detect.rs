//! Encoders for the alerts of `keytrail detect`: JSONL (one [`Alert`] per line; the
//! field docs of `Alert` are the format), OCSF Detection Findings (the encoding is
//! [`ocsf::detection_finding`]) and a human summary grouped by identity.

use std::collections::BTreeMap;
use std::io::{self, Write};

use keytrail_detect::Alert;

use crate::lines::{self, Framing, RecordWriter};
use crate::ocsf;

/// Writes alerts as JSON Lines: one [`Alert`] per line, its serde shape.
pub fn write_jsonl(w: &mut dyn Write, alerts: &[Alert]) -> io::Result<()> {
    lines::write_lines(w, alerts)
}

/// Writes alerts as a JSON array of OCSF Detection Findings ([`ocsf::detection_finding`]).
pub fn write_ocsf(w: &mut dyn Write, alerts: &[Alert]) -> io::Result<()> {
    let mut out = RecordWriter::new(w, Framing::Array);
    for a in alerts {
        out.write(&ocsf::detection_finding(a))?;
    }
    out.finish().map(drop)
}

/// A human summary: identities ordered by their worst alert, each with its alerts.
pub fn summary(alerts: &[Alert]) -> String {
    let mut by: BTreeMap<&str, Vec<&Alert>> = BTreeMap::new();
    for a in alerts {
        by.entry(&a.principal).or_default().push(a);
    }
    let mut ids: Vec<(&str, Vec<&Alert>)> = by.into_iter().collect();
    ids.sort_by(|a, b| {
        let wa = a.1.iter().map(|x| x.severity).max();
        let wb = b.1.iter().map(|x| x.severity).max();
        wb.cmp(&wa)
            .then(b.1.len().cmp(&a.1.len()))
            .then(a.0.cmp(b.0))
    });
    let mut out = String::new();
    out.push_str(&format!(
        "{} alerts on {} identities\n",
        alerts.len(),
        ids.len()
    ));
    for (who, list) in ids {
        let keys: Vec<&str> = {
            let mut k: Vec<&str> = list
                .iter()
                .filter_map(|a| a.access_key_id.as_deref())
                .collect();
            k.sort();
            k.dedup();
            k
        };
        out.push_str(&format!("\n{who}"));
        if !keys.is_empty() {
            out.push_str(&format!("  keys: {}", keys.join(", ")));
        }
        out.push('\n');
        let mut list = list;
        list.sort_by_key(|a| a.time_ms);
        for a in list {
            out.push_str(&format!(
                "  {:<8} {}  {}  [{}]  {} event(s)\n           {}\n",
                a.severity.as_str(),
                a.time,
                a.rule_id,
                a.technique,
                a.event_count,
                a.explanation
            ));
            if let Some(author) = &a.author {
                out.push_str(&format!("           Sigma rule author: {author}\n"));
            }
        }
    }
    out
}

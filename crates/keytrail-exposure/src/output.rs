//! Encoders for exposure records: a JSON document, JSONL (one record per line,
//! then plan lines), and human text. The JSON shapes are an API documented in
//! docs/output.md (`keytrail exposure`).

use std::io::{self, Write};

use serde::Serialize;
use serde_json::json;

use crate::Outcome;
use crate::record::ExposureRecord;

/// Version of the JSON and JSONL shapes.
pub const VERSION: u32 = 1;

/// Counts for the summary.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Leaked credentials.
    pub credentials: u64,
    /// Used after the leak.
    pub used_after_leak: u64,
    /// Used from new sources (treat as compromised).
    pub compromised: u64,
    /// Not used since the leak.
    pub not_used: u64,
    /// Inactive or deleted.
    pub inactive_or_deleted: u64,
    /// Leak time unknown.
    pub leak_time_unknown: u64,
    /// Events read.
    pub events: u64,
}

/// The summary of an outcome.
pub fn summary(o: &Outcome) -> Summary {
    use crate::Verdict as V;
    let n = |v: V| o.records.iter().filter(|r| r.verdict == v).count() as u64;
    Summary {
        credentials: o.records.len() as u64,
        used_after_leak: o
            .records
            .iter()
            .filter(|r| r.used_after_leak == Some(true))
            .count() as u64,
        compromised: n(V::Compromised),
        not_used: n(V::NotUsed),
        inactive_or_deleted: n(V::InactiveOrDeleted),
        leak_time_unknown: n(V::LeakTimeUnknown),
        events: o.coverage.events,
    }
}

/// Writes the JSON document.
pub fn write_json(w: &mut dyn Write, o: &Outcome) -> io::Result<()> {
    let doc = json!({
        "version": VERSION,
        "records": o.records,
        "coverage": o.coverage,
        "plan": o.plan,
        "summary": summary(o),
    });
    serde_json::to_writer_pretty(&mut *w, &doc)?;
    writeln!(w)
}

/// Writes JSONL: one record per line, then with a plan one `"type": "plan"` line
/// per item and one `"type": "long_lived_keys"` line.
pub fn write_jsonl(w: &mut dyn Write, o: &Outcome) -> io::Result<()> {
    for r in &o.records {
        serde_json::to_writer(&mut *w, r)?;
        writeln!(w)?;
    }
    if let Some(p) = &o.plan {
        for item in &p.items {
            let mut v = serde_json::to_value(item)?;
            v["type"] = json!("plan");
            serde_json::to_writer(&mut *w, &v)?;
            writeln!(w)?;
        }
        let mut v = serde_json::to_value(&p.long_lived)?;
        v["type"] = json!("long_lived_keys");
        v["as_of"] = json!(p.as_of);
        serde_json::to_writer(&mut *w, &v)?;
        writeln!(w)?;
    }
    Ok(())
}

fn join(v: &[String]) -> String {
    if v.is_empty() {
        "-".into()
    } else {
        v.join(", ")
    }
}

fn record_text(w: &mut dyn Write, r: &ExposureRecord, color: bool) -> io::Result<()> {
    let (on, off) = if color {
        match r.verdict {
            crate::Verdict::Compromised => ("\x1b[1;31m", "\x1b[0m"),
            crate::Verdict::KnownSources => ("\x1b[1;33m", "\x1b[0m"),
            _ => ("\x1b[1m", "\x1b[0m"),
        }
    } else {
        ("", "")
    };
    writeln!(w, "{on}{} — {}{off}", r.access_key_id, r.verdict.as_str())?;
    let who = match (&r.identity.arn, &r.identity.account_id) {
        (Some(a), _) => a.clone(),
        (None, Some(acct)) => format!("account {acct}"),
        _ => "unknown".into(),
    };
    writeln!(
        w,
        "  identity: {who} (from {}), status {}{}",
        r.identity.from,
        r.status,
        if r.live { ", live" } else { "" }
    )?;
    if let Some(o) = &r.identity.owner {
        writeln!(
            w,
            "  owner: {o}{}{}",
            r.identity
                .purpose
                .as_ref()
                .map(|p| format!(", purpose: {p}"))
                .unwrap_or_default(),
            r.identity
                .environment
                .as_ref()
                .map(|e| format!(", environment: {e}"))
                .unwrap_or_default()
        )?;
    }
    if !r.privilege.is_empty() {
        writeln!(w, "  privilege: {}", r.privilege.join(", "))?;
        if r.credential == crate::leaks::CredentialKind::GcpServiceAccountKey {
            writeln!(
                w,
                "  reach: roles {}; acts as {}",
                join(&r.reach.roles),
                join(&r.reach.impersonates)
            )?;
        } else {
            writeln!(
                w,
                "  reach: buckets read {}; write {}; secrets {}; roles {}",
                join(&r.reach.buckets_read),
                join(&r.reach.buckets_write),
                join(&r.reach.secrets),
                join(&r.reach.assumable_roles)
            )?;
        }
    }
    writeln!(
        w,
        "  leaked: {} ({})",
        r.leaked_at.as_deref().unwrap_or("unknown"),
        r.leaked_at_from.as_deref().unwrap_or("no dated location")
    )?;
    for p in r.leaked_where.iter().take(5) {
        let what = match (&p.commit, &p.image) {
            (Some(c), _) => format!("commit {c} {}", p.path),
            (_, Some(i)) => format!("image {i} {}", p.path),
            _ => format!("{}:{}", p.path, p.line),
        };
        writeln!(
            w,
            "    {} {what}{}",
            p.source,
            p.time
                .as_ref()
                .map(|t| format!(" at {t}"))
                .unwrap_or_default()
        )?;
    }
    if r.leaked_where.len() > 5 {
        writeln!(w, "    … and {} more places", r.leaked_where.len() - 5)?;
    }
    if let Some(u) = r.used_after_leak {
        writeln!(
            w,
            "  used after leak: {} ({} calls; first {}, last {}; {} before the leak)",
            if u { "yes" } else { "no" },
            r.uses_after_leak,
            r.first_use_after_leak.as_deref().unwrap_or("-"),
            r.last_use.as_deref().unwrap_or("-"),
            r.uses_before_leak
        )?;
    }
    let ns = &r.new_sources;
    if !(ns.ips.is_empty()
        && ns.networks.is_empty()
        && ns.countries.is_empty()
        && ns.clients.is_empty())
    {
        writeln!(
            w,
            "  new sources: ips {}; networks {}; countries {}; clients {}",
            join(&ns.ips),
            join(&ns.networks),
            join(&ns.countries),
            join(&ns.clients)
        )?;
    }
    for s in &r.derived_sessions {
        writeln!(
            w,
            "  session {} via {}{} at {}: {} calls from {} ({})",
            s.access_key_id,
            s.via,
            s.role_arn
                .as_ref()
                .map(|a| format!(" {a}"))
                .unwrap_or_default(),
            s.issued_at,
            s.uses,
            join(&s.source_ips),
            s.apis.keys().cloned().collect::<Vec<_>>().join(", ")
        )?;
    }
    for a in &r.alerts {
        writeln!(
            w,
            "  alert {} [{}] {} at {}",
            a.rule_id, a.severity, a.title, a.time
        )?;
    }
    writeln!(w, "  action: {}", r.action.summary)?;
    for c in &r.action.commands {
        writeln!(w, "    $ {c}")?;
    }
    for c in &r.action.clean {
        writeln!(w, "    remove: {c}")?;
    }
    for n in &r.notes {
        writeln!(w, "  note: {n}")?;
    }
    writeln!(w)
}

/// Writes human text (not an API).
pub fn write_human(w: &mut dyn Write, o: &Outcome, color: bool) -> io::Result<()> {
    for r in &o.records {
        record_text(w, r, color)?;
    }
    if let Some(p) = &o.plan {
        writeln!(
            w,
            "long-lived keys as of {}: {} active and {} inactive AWS keys in the snapshot; leaked: {} AWS keys, {} GitHub tokens, {} others (total {})",
            p.as_of,
            p.long_lived.aws_access_keys_active,
            p.long_lived.aws_access_keys_inactive,
            p.long_lived.aws_access_keys_leaked,
            p.long_lived.github_pats_leaked,
            p.long_lived.other_leaked,
            p.long_lived.total
        )?;
        for i in &p.items {
            writeln!(
                w,
                "  {} ({}{}): {} — used by {}",
                i.credential_id,
                i.identity.as_deref().unwrap_or("unknown identity"),
                if i.leaked { ", leaked" } else { "" },
                i.replacement,
                join(&i.used_by)
            )?;
            writeln!(w, "    {}", i.how)?;
            if let Some(t) = &i.trust_policy {
                writeln!(w, "    trust policy: {t}")?;
            }
        }
    }
    Ok(())
}

//! Exposure: leaked credential → identity → reach → was it used after it leaked?
//!
//! Joins three things keytrail already knows: where a credential leaked and when
//! ([`leaks`], from `keytrail scan` output), whom it belongs to and what it can
//! reach ([`identity`], from a cloud snapshot and the inventory's policy engine),
//! and what the audit logs saw it do ([`usage`], one streaming pass that also runs
//! the `keytrail detect` engine for alerts): CloudTrail for AWS access keys,
//! Google Cloud's audit logs for service-account keys (whose calls carry the
//! key's id in `authenticationInfo.serviceAccountKeyName`). [`record`] turns the join into one
//! [`record::ExposureRecord`] per credential with a verdict and an action, ordered
//! by risk; [`plan`] recommends the short-lived replacement of every long-lived
//! key; [`output`] writes human text, JSON and JSONL (docs/output.md).
//!
//! Pure: no network IO. Logs that are not local files come in through the detect
//! reader's `Fetch` seam, implemented elsewhere.

pub mod identity;
pub mod leaks;
pub mod output;
pub mod plan;
pub mod record;
pub mod usage;

use std::collections::HashMap;
use std::sync::Arc;

use keytrail_detect::engine::{EngineBuilder, Logs, Shared, Stats};
use keytrail_detect::reader::DirRecords;
use keytrail_types::Diagnostic;

pub use identity::Directory;
pub use leaks::{Leak, Leaks, read_findings};
pub use plan::Plan;
pub use record::{ExposureRecord, Verdict};
pub use usage::{Coverage, Tracker};

/// What the join needs besides its inputs.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--leaked-at TIME`: the leak time of credentials whose locations carry none.
    pub leaked_at_default: Option<i64>,
    /// `--leaked-at KEY=TIME`: the leak time of one credential (overrides its
    /// provenance).
    pub leaked_at_by_key: HashMap<String, i64>,
    /// Build the replacement plan (tracks the snapshot's other long-lived keys too).
    pub plan: bool,
    /// Parse workers (0 or 1: read on the calling thread).
    pub threads: usize,
    /// Time of the run (RFC 3339): the plan's count, and the cut-off of the
    /// session-revocation commands (sessions issued before it are denied).
    pub as_of: String,
}

/// Everything a run produced.
pub struct Outcome {
    /// One record per leaked credential, riskiest first.
    pub records: Vec<ExposureRecord>,
    /// The replacement plan (with [`Options::plan`]).
    pub plan: Option<Plan>,
    /// What the logs covered.
    pub coverage: Coverage,
    /// Statistics of the detect engine (events, files, unreadable records).
    pub stats: Option<Stats>,
    /// Whether IP intelligence resolved networks.
    pub has_intel: bool,
}

/// Applies the `--leaked-at` overrides.
pub fn apply_leaked_at(leaks: &mut [Leak], opts: &Options) {
    for l in leaks {
        if let Some(&t) = opts.leaked_at_by_key.get(&l.credential_id) {
            l.leaked_at_ms = Some(t);
            l.leaked_at_from = Some("--leaked-at".into());
        } else if l.leaked_at_ms.is_none()
            && let Some(t) = opts.leaked_at_default
        {
            l.leaked_at_ms = Some(t);
            l.leaked_at_from = Some("--leaked-at (no date in its locations)".into());
        }
    }
}

/// Runs the join. `logs` (with the detect `builder` and its `shared` parts) are
/// read once, in event-time order: every event goes to the detect engine (whose
/// alerts on tracked keys and identities are kept) and to the [`Tracker`].
pub fn run(
    mut leaks: Vec<Leak>,
    dir: &Directory,
    logs: Option<(Logs, &EngineBuilder, Shared)>,
    opts: &Options,
) -> (Outcome, Vec<Diagnostic>) {
    for l in &mut leaks {
        dir.resolve(l);
    }
    apply_leaked_at(&mut leaks, opts);
    let mut keys: Vec<(String, Option<i64>, bool)> = leaks
        .iter()
        .filter(|l| {
            matches!(
                l.kind,
                leaks::CredentialKind::AwsAccessKey
                    | leaks::CredentialKind::AwsSessionKey
                    | leaks::CredentialKind::GcpServiceAccountKey
                    | leaks::CredentialKind::AzureClientSecret
            )
        })
        .map(|l| (l.credential_id.clone(), l.leaked_at_ms, true))
        .collect();
    if opts.plan {
        for (k, _, _) in &dir.long_lived {
            keys.push((k.clone(), None, false));
        }
    }
    let intel = logs
        .as_ref()
        .map(|(_, _, s)| s.intel.clone())
        .unwrap_or_else(|| Arc::new(keytrail_detect::ipintel::IpIntel::empty()));
    let mut tracker = Tracker::new(keys, intel);
    for (i, t) in tracker.tracked.iter().enumerate() {
        if t.leaked
            && let Some(k) = dir.lookup(&t.key)
        {
            tracker.watch_principal(i, &k.principal);
        }
    }
    let mut diags = Vec::new();
    let logs_read = logs.is_some();
    let stats = logs.map(|(logs, builder, shared)| {
        let (mut e, d) = builder.build_with(shared);
        diags.extend(d);
        e.set_sink(Box::new(tracker.alert_sink()));
        let workers = if opts.threads <= 1 { 0 } else { opts.threads };
        let sigma = e.shared().sigma.clone();
        let enrich: Option<keytrail_detect::reader::Enrich> = (workers > 0 && !sigma.is_empty())
            .then(|| {
                Arc::new(move |ev: &mut keytrail_detect::Event| sigma.prematch(ev))
                    as keytrail_detect::reader::Enrich
            });
        let mut reader = match logs {
            Logs::Files(files) => {
                let files = e.unread_files(files);
                DirRecords::from_files_enriched(files, Vec::new(), workers, enrich)
            }
            Logs::Objects(objects, fetch) => {
                let objects = e.unread_objects(objects);
                DirRecords::from_objects(objects, fetch, Vec::new(), workers, enrich)
            }
            Logs::Keyed(objects, fetch) => {
                DirRecords::from_keyed_objects(objects, fetch, Vec::new(), workers, enrich)
            }
        };
        while let Some(it) = reader.next() {
            match it {
                Ok(ev) => {
                    e.process(&ev);
                    tracker.observe(&ev);
                    reader.recycle(ev);
                }
                Err(d) => e.diagnostic(d),
            }
        }
        let (_, stats) = e.finish();
        stats
    });
    let coverage = {
        let mut c = tracker.coverage.clone();
        if let Some((a, b)) = c.span_ms {
            c.first_event = Some(keytrail_detect::time::format_rfc3339_ms(a));
            c.last_event = Some(keytrail_detect::time::format_rfc3339_ms(b));
        }
        c.gaps = c
            .gaps_ms
            .iter()
            .map(|(a, b)| {
                (
                    keytrail_detect::time::format_rfc3339_ms(*a),
                    keytrail_detect::time::format_rfc3339_ms(*b),
                )
            })
            .collect();
        c
    };
    let alerts = tracker
        .alerts
        .lock()
        .map(|b| b.alerts.clone())
        .unwrap_or_default();
    let has_intel = tracker.has_intel();
    let records = record::build(
        &leaks,
        dir,
        &tracker.tracked,
        &alerts,
        record::RunFacts {
            coverage: &coverage,
            logs_read,
            has_intel,
            as_of: &opts.as_of,
        },
    );
    let plan = opts.plan.then(|| {
        plan::build(
            &leaks,
            &tracker.tracked,
            &dir.long_lived,
            dir.accounts.first().map(String::as_str),
            opts.as_of.clone(),
        )
    });
    (
        Outcome {
            records,
            plan,
            coverage,
            stats,
            has_intel,
        },
        diags,
    )
}

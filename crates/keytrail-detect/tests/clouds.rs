//! The other clouds end to end: Google Cloud audit logs, Entra ID sign-in and audit
//! logs, the Microsoft 365 unified audit log and the Azure Activity log, in every
//! export format, read into the one event model (the same records give the same
//! events whatever the format), run through the engine (the injected attacks of the
//! test-kit fire, the look-alikes stay quiet, one thread or two give the same
//! alerts), and the readers' invariants on them.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use keytrail_detect::engine::{EngineBuilder, run_parallel};
use keytrail_detect::event::{Event, IdentityKind, Provider};
use keytrail_detect::reader::{check_reader_invariants, read_path};
use keytrail_testkit::cloudlogs::{self, Format, Record};

/// 2024-03-04, a Monday.
const START: i64 = 1_709_510_400_000;

fn records() -> (Vec<Record>, cloudlogs::Truth) {
    cloudlogs::activity(7, START, 10, 0.5)
}

fn of(records: &[Record], provider: &str) -> Vec<Record> {
    records
        .iter()
        .filter(|r| r.provider == provider)
        .cloned()
        .collect()
}

fn read(path: &Path) -> Vec<Event> {
    let mut evs = Vec::new();
    for item in read_path(path) {
        match item {
            Ok(e) => evs.push(e),
            Err(d) => panic!("{}: {d}", path.display()),
        }
    }
    evs
}

/// What an event says, format-independently.
/// (Graph sign-ins carry no tenant id, their diagnostic exports do: the account is
/// checked separately.)
fn summary(e: &Event) -> String {
    format!(
        "{} {:?} {} {} {} {} {:?} {:?} {:?}",
        e.time_ms,
        e.provider(),
        e.principal(),
        e.event_name(),
        e.source_ip(),
        e.service(),
        e.identity_kind(),
        e.access_key_id(),
        e.error_code()
    )
}

/// One directory holding each provider's records in each of its formats.
fn write_all(dir: &Path, records: &[Record]) -> Vec<(Provider, Format, PathBuf)> {
    let mut out = Vec::new();
    let sets = [
        (
            Provider::Gcp,
            "gcp",
            vec![
                Format::GcloudJson,
                Format::GcpSinkNdjson,
                Format::PubSubNdjson,
            ],
        ),
        (
            Provider::Entra,
            "entra",
            vec![Format::GraphJson, Format::DiagnosticRecords],
        ),
        (
            Provider::M365,
            "m365",
            vec![Format::ManagementApiJson, Format::PurviewCsv],
        ),
        (
            Provider::Azure,
            "azure",
            vec![Format::ManagementApiJson, Format::DiagnosticRecords],
        ),
    ];
    for (p, name, formats) in sets {
        let recs = of(records, name);
        assert!(!recs.is_empty(), "{name}");
        for f in formats {
            let path = dir.join(format!("{name}-{f:?}.log"));
            std::fs::write(&path, cloudlogs::write(&recs, f)).unwrap();
            out.push((p, f, path));
        }
    }
    out
}

#[test]
fn every_format_reads_into_the_same_events() {
    let (records, _) = records();
    let dir = tempfile::tempdir().unwrap();
    let files = write_all(dir.path(), &records);
    let mut by_provider: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (p, f, path) in &files {
        let evs = read(path);
        let want = of(&records, p.as_str()).len();
        assert_eq!(evs.len(), want, "{p:?} {f:?}");
        assert!(evs.iter().all(|e| e.provider() == *p), "{p:?} {f:?}");
        assert!(
            evs.iter().all(|e| e.principal() != "unknown"),
            "{p:?} {f:?}: {:?}",
            evs.iter()
                .find(|e| e.principal() == "unknown")
                .map(|e| e.raw())
        );
        let mut s: Vec<String> = evs.iter().map(summary).collect();
        s.sort();
        // Diagnostic exports of sign-ins carry the category, Graph derives it: compare
        // the fields both carry.
        let key = format!("{p:?}");
        match by_provider.get(&key) {
            None => {
                by_provider.insert(key, s);
            }
            Some(first) => {
                if *p != Provider::Azure {
                    if let Some(i) =
                        (0..s.len().max(first.len())).find(|&i| s.get(i) != first.get(i))
                    {
                        panic!(
                            "{p:?} {f:?} reads differently at {i}: {:?} against {:?}",
                            s.get(i),
                            first.get(i)
                        );
                    }
                } else {
                    // The diagnostic export of the Activity log has no event time
                    // beyond `time` and names operations in upper case.
                    assert_eq!(s.len(), first.len());
                }
            }
        }
    }
    // Field mapping, on one record of each kind.
    let gcp = read(&files[0].2);
    let key_use = gcp
        .iter()
        .find(|e| e.access_key_id().is_some())
        .expect("a key use");
    assert_eq!(
        key_use.identity_kind(),
        Some(IdentityKind::GcpServiceAccount)
    );
    assert_eq!(key_use.recipient_account(), cloudlogs::PROJECT);
    assert_eq!(key_use.account_id(), Some(cloudlogs::PROJECT));
    assert_eq!(key_use.region(), "us-central1");
    assert_eq!(key_use.event_type(), "data_access");
    assert!(key_use.source_addr.is_some());
    let entra = read(&files[3].2);
    let sp = entra
        .iter()
        .find(|e| e.identity_kind() == Some(IdentityKind::ServicePrincipal))
        .expect("a service principal sign-in");
    assert_eq!(sp.arn(), Some("billing-sync"));
    assert!(sp.access_key_id().is_some());
    assert_eq!(sp.service(), "signin");
    let user = entra
        .iter()
        .find(|e| e.identity_kind() == Some(IdentityKind::EntraUser) && e.service() == "signin")
        .unwrap();
    assert!(user.human_use());
    assert_eq!(user.event_type(), "SignInLogs");
    let csv = read(&files[6].2);
    let m = csv
        .iter()
        .find(|e| e.event_name() == "Set-Mailbox")
        .unwrap();
    assert_eq!(m.source_ip(), cloudlogs::FOREIGN_IP, "port stripped");
    assert_eq!(m.service(), "Exchange");
    assert_eq!(m.account_id(), Some(cloudlogs::TENANT));
}

fn builder() -> EngineBuilder {
    EngineBuilder::new()
        .ipintel(common::ipintel())
        .builtin_sigma(true)
}

#[test]
fn attacks_fire_and_look_alikes_stay_quiet_on_any_thread_count() {
    let (records, truth) = records();
    let dir = tempfile::tempdir().unwrap();
    // One format per provider (the others read the same, above), mixed in one tree.
    let mut files = Vec::new();
    for (name, f) in [
        ("gcp", Format::PubSubNdjson),
        ("entra", Format::DiagnosticRecords),
        ("m365", Format::PurviewCsv),
        ("azure", Format::ManagementApiJson),
    ] {
        let path = dir.path().join(format!("{name}.json"));
        std::fs::write(&path, cloudlogs::write(&of(&records, name), f)).unwrap();
        files.push(path);
    }
    let b = builder();
    let (shared, diags) = b.build_shared();
    assert!(
        !diags.iter().any(|d| d.is_error),
        "{:?}",
        diags.iter().filter(|d| d.is_error).collect::<Vec<_>>()
    );
    let (alerts, stats) = run_parallel(&b, shared.clone(), &files, 1);
    assert_eq!(stats.events as usize, records.len());
    let fired: BTreeSet<(String, String)> = alerts
        .iter()
        .map(|a| (a.rule_id.clone(), a.principal.clone()))
        .collect();
    for a in &truth.attacks {
        assert!(
            fired.contains(&(a.rule.to_string(), a.principal.clone())),
            "{} on {} ({}) did not fire; fired: {fired:#?}",
            a.rule,
            a.principal,
            a.what
        );
    }
    for l in &truth.lookalikes {
        assert!(
            !fired.contains(&(l.rule.to_string(), l.principal.clone())),
            "look-alike {} fired {} on {}",
            l.what,
            l.rule,
            l.principal
        );
    }
    // Every alert of the other clouds says which cloud, and the cloud rules are
    // namespaced by it.
    for a in &alerts {
        assert_ne!(a.provider, Provider::Aws, "{a:?}");
        assert!(
            a.rule_id
                .starts_with(&format!("keytrail.{}.", a.provider.as_str()))
                || a.source == keytrail_detect::alert::AlertSource::Sigma,
            "{} on a {:?} event",
            a.rule_id,
            a.provider
        );
        let json = serde_json::to_value(a).unwrap();
        assert_eq!(json["provider"], a.provider.as_str());
    }
    // Routine activity raises nothing before the attacks.
    let attacks_from = START + 8 * 86_400_000;
    let early: Vec<_> = alerts
        .iter()
        .filter(|a| a.time_ms < attacks_from)
        .map(|a| format!("{} {} {}", a.rule_id, a.principal, a.explanation))
        .collect();
    assert!(early.is_empty(), "alerts on routine activity: {early:#?}");
    let jsonl = |alerts: &[keytrail_detect::Alert]| -> String {
        alerts
            .iter()
            .map(|a| serde_json::to_string(a).unwrap() + "\n")
            .collect()
    };
    let (two, stats2) = run_parallel(&b, shared, &files, 2);
    assert_eq!(jsonl(&two), jsonl(&alerts), "2 threads differ");
    assert_eq!(
        serde_json::to_string(&stats2).unwrap(),
        serde_json::to_string(&stats).unwrap()
    );
}

#[test]
fn reader_invariants_hold_on_every_format_and_on_damage() {
    let (records, _) = cloudlogs::activity(3, START, 1, 1.0);
    for (name, formats) in [
        (
            "gcp",
            vec![
                Format::GcloudJson,
                Format::GcpSinkNdjson,
                Format::PubSubNdjson,
            ],
        ),
        ("entra", vec![Format::GraphJson, Format::DiagnosticRecords]),
        ("m365", vec![Format::ManagementApiJson, Format::PurviewCsv]),
        (
            "azure",
            vec![Format::ManagementApiJson, Format::DiagnosticRecords],
        ),
    ] {
        let recs: Vec<Record> = of(&records, name).into_iter().take(12).collect();
        assert!(!recs.is_empty(), "{name}");
        for f in formats {
            let bytes = cloudlogs::write(&recs, f);
            check_reader_invariants(&bytes);
            // Cut anywhere: still bounded, still the same in windows and gzipped.
            for cut in [bytes.len() / 3, bytes.len() / 2, bytes.len() - 7] {
                check_reader_invariants(&bytes[..cut]);
            }
        }
    }
    // A Pub/Sub message whose data is not base64, or holds no log entry, is one
    // diagnostic naming the file and line, and reading goes on.
    let text = "{\"message\":{\"data\":\"%%%\"}}\n{\"message\":{\"data\":\"e30=\"}}\n";
    let mut good = String::from(text);
    let (one, _) = cloudlogs::activity(3, START, 1, 0.05);
    let gcp = of(&one, "gcp");
    good.push_str(std::str::from_utf8(&cloudlogs::write(&gcp[..1], Format::PubSubNdjson)).unwrap());
    check_reader_invariants(good.as_bytes());
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("pubsub.json");
    std::fs::write(&p, &good).unwrap();
    let items: Vec<_> = read_path(&p).collect();
    assert_eq!(items.len(), 3);
    let d = items[0].as_ref().unwrap_err();
    assert_eq!(d.line, Some(1));
    assert!(d.message.contains("Pub/Sub message data"), "{d}");
    assert!(d.subject.ends_with("pubsub.json"), "{d}");
    assert!(items[1].is_err());
    assert!(
        items[2]
            .as_ref()
            .is_ok_and(|e| e.provider() == Provider::Gcp)
    );
}

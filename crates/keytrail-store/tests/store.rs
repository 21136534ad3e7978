//! The store against both databases: schema versions and upgrades, runs and
//! de-duplication, fixed and reopened findings, triage and its audit trail,
//! concurrent triagers, and that no secret ever reaches the database.
//! PostgreSQL is the local server (127.0.0.1:5432); each test makes its own
//! database and drops it.

mod common;

use common::{Db, contains, finding, secrets};
use keytrail_store::{
    ErrorKind, Filter, OpenOptions, Role, RunRecord, SCHEMA_VERSION, Status, Store, StoreKey,
    TOKEN_PREFIX, Triage,
};

/// Run `check` on a SQLite file and on a PostgreSQL database.
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[test]
            fn sqlite() {
                super::$name(super::Db::sqlite());
            }
            #[test]
            fn postgres() {
                super::$name(super::Db::postgres());
            }
        }
    };
}

fn no_owner(_: &keytrail_types::Finding) -> Option<String> {
    None
}

fn run(target: &str, complete: bool, at: &str) -> RunRecord {
    let mut r = RunRecord::new("scan", target);
    r.started_at = at.to_string();
    r.finished_at = at.to_string();
    r.keytrail_version = "0.1.0".into();
    r.complete = complete;
    r
}

fn triage(actor: &str) -> Triage {
    Triage {
        actor: actor.into(),
        ..Triage::default()
    }
}

both!(empty_database_reaches_the_current_schema);
fn empty_database_reaches_the_current_schema(db: Db) {
    let mut s = Store::open(&db.url()).expect("open");
    assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
    assert!(s.list_findings(&Filter::default()).unwrap().is_empty());
    assert!(s.runs().unwrap().is_empty());
}

both!(processes_opening_a_new_store_at_once_share_its_first_key);
/// Workers and a submitter starting together on a new database: each
/// opens it (one makes the first key, the others read that key whole) and
/// they keep the same identities. On SQLite, turning the new file to WAL
/// meets the others' locks without SQLite's busy wait: the open tries again.
fn processes_opening_a_new_store_at_once_share_its_first_key(db: Db) {
    let url = db.url();
    let start = std::sync::Arc::new(std::sync::Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let (u, b) = (url.clone(), start.clone());
            std::thread::spawn(move || {
                b.wait();
                let s = Store::open(&u).map_err(|e| e.to_string())?;
                Ok::<_, String>(s.store_id("00112233445566778899aabbccddeeff"))
            })
        })
        .collect();
    let ids: Vec<String> = handles
        .into_iter()
        .map(|h| h.join().unwrap().expect("every opener succeeds"))
        .collect();
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "{ids:?}");
    let mut s = Store::open(&url).unwrap();
    assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
}

both!(current_database_reopens_unchanged);
fn current_database_reopens_unchanged(db: Db) {
    let sec = secrets(1, 2);
    {
        let mut s = Store::open(&db.url()).expect("open");
        let f = vec![
            finding("github.pat.classic", &sec[0], "a.env", 1),
            finding("github.pat.classic", &sec[1], "b.env", 2),
        ];
        let sum = s
            .record_run(
                &run("repo", true, "2026-12-01T00:00:00.000000Z"),
                &f,
                &no_owner,
            )
            .unwrap();
        assert_eq!((sum.seen, sum.new), (2, 2));
    }
    let mut s = Store::open(&db.url()).expect("reopen");
    assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
    let all = s.list_findings(&Filter::default()).unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].finding.locations[0].path, "a.env");
    assert_eq!(all[0].targets, vec!["repo".to_string()]);
    assert_eq!(s.runs().unwrap().len(), 1);
}

/// Data written at schema version 1, with that version's SQL: a fixture
/// frozen here, so later migrations are tested against what v1 held.
fn fill_v1(db: &Db) {
    db.raw(
        "INSERT INTO runs (run_key, command, target, started_at, finished_at, keytrail_version, complete, findings)
           VALUES ('k1', 'scan', 'repo', '2026-11-01T00:00:00.000000Z', '2026-11-01T00:00:01.000000Z', '0.1.0', 1, 1);
         INSERT INTO findings (fingerprint, kind, rule_id, rule_name, severity, severity_rank, confidence,
             secret_redacted, detail, status, assignee, owner, first_seen, last_seen, first_run, last_run,
             fixed_at, version, updated_at)
           VALUES ('00112233445566778899aabbccddeeff', 'secret', 'github.pat.classic', 'GitHub token', 'high', 3,
             'high', 'ghp_…xy', '{\"notes\":[\"checksum valid\"]}', 'false_positive', 'alice', 'platform',
             '2026-11-01T00:00:01.000000Z', '2026-11-01T00:00:01.000000Z', 1, 1, NULL, 2,
             '2026-11-02T00:00:00.000000Z');
         INSERT INTO finding_targets (finding_id, target, first_seen, last_seen, last_run, fixed_at)
           VALUES (1, 'repo', '2026-11-01T00:00:01.000000Z', '2026-11-01T00:00:01.000000Z', 1, NULL);
         INSERT INTO locations (finding_id, location_key, path, line, col, source, detail, first_seen, last_seen)
           VALUES (1, 'aa', 'config/app.env', 3, 9, 'file',
             '{\"path\":\"config/app.env\",\"line\":3,\"column\":9,\"offset\":40,\"snippet\":\"TOKEN=****\",\"source\":\"file\"}',
             '2026-11-01T00:00:01.000000Z', '2026-11-01T00:00:01.000000Z');
         INSERT INTO comments (finding_id, author, created_at, body)
           VALUES (1, 'alice', '2026-11-02T00:00:00.000000Z', 'test fixture');
         INSERT INTO audit (finding_id, actor, at, field, before, after, version)
           VALUES (1, 'alice', '2026-11-02T00:00:00.000000Z', 'status', 'open', 'false_positive', 2);",
    );
}

/// Fill a database at `version` with that version's fixture (`key`: the
/// store's fingerprint key, from version 5).
fn fill(db: &Db, version: u32, key: &StoreKey) {
    match version {
        0 => {}
        1 => fill_v1(db),
        // Version 3 adds an index only: version 2's fixture.
        2 | 3 => {
            fill_v1(db);
            db.raw(
                "INSERT INTO api_tokens (token_sha256, name, role, created_at)
                   VALUES ('2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae', 'ci-bot',
                     'triager', '2026-11-03T00:00:00.000000Z');",
            );
        }
        // Version 4: a job done by a worker that beat.
        4 => {
            fill(db, 3, key);
            db.raw(
                "INSERT INTO jobs (job_key, kind, target, state, attempts, worker, submitted_at,
                   started_at, finished_at, run_id, findings)
                   VALUES ('scan-1', 'scan', 'repo', 'done', 1, 'w1', '2026-11-04T00:00:00.000000Z',
                     '2026-11-04T00:00:01.000000Z', '2026-11-04T00:00:02.000000Z', 1, 1);
                 INSERT INTO workers (name, host, pid, started_at, heartbeat_at, job_key, jobs_done, jobs_failed)
                   VALUES ('w1', 'node', 42, '2026-11-04T00:00:00.000000Z', '2026-11-04T00:00:03.000000Z',
                     NULL, 1, 0);",
            );
        }
        // Version 5: version 4's, its fingerprint keyed (version 6 adds an
        // index, version 7 a column of tokens: none revoked; version 8 adds
        // a table).
        5..=8 => {
            fill(db, 4, key);
            db.raw(&format!(
                "UPDATE findings SET fingerprint = '{}' WHERE fingerprint = '{FIXTURE_FP}'",
                key.id(FIXTURE_FP)
            ));
        }
        // Version 9: a distributed detection run, routed.
        9 => {
            fill(db, 8, key);
            db.raw(
                "INSERT INTO detect_runs (run, chain, previous, partitions, routes, settings, target,
                   created_at) VALUES ('r1', 'org', '', 2, 1, '[]', '/srv/trail',
                   '2026-12-07T00:00:00.000000Z');
                 INSERT INTO detect_files (chain, name, size, run, route) VALUES ('org', 'a', 1, 'r1', 0);
                 INSERT INTO detect_steps (run, step, events, done_at)
                   VALUES ('r1', 'route:0', 3, '2026-12-07T00:00:01.000000Z');",
            );
        }
        // Version 10 adds the schedules: version 9's.
        10 => fill(db, 9, key),
        v => panic!("no fixture for schema version {v}: add one with the migration"),
    }
}

/// The report fingerprint of the fixtures' finding.
const FIXTURE_FP: &str = "00112233445566778899aabbccddeeff";

/// What every fixture holds, checked after upgrading to the current schema.
fn check_fixture(s: &mut Store, version: u32) {
    let all = s.list_findings(&Filter::default()).unwrap();
    if version == 0 {
        assert!(all.is_empty());
        return;
    }
    assert_eq!(all.len(), 1);
    let f = &all[0];
    // Kept keyed (before version 5, as the report has it: the upgrade
    // replaced it).
    assert_eq!(f.finding.fingerprint.0, s.store_id(FIXTURE_FP));
    assert_ne!(f.finding.fingerprint.0, FIXTURE_FP);
    assert_eq!(f.status, Status::FalsePositive);
    assert_eq!(f.assignee.as_deref(), Some("alice"));
    assert_eq!(f.owner.as_deref(), Some("platform"));
    assert_eq!(f.version, 2);
    assert_eq!(f.finding.locations[0].path, "config/app.env");
    assert_eq!(f.finding.notes, vec!["checksum valid".to_string()]);
    // Looked up by the report's fingerprint or by the store's.
    let (audit, comments) = s.history(FIXTURE_FP).unwrap();
    assert_eq!(s.history(&f.finding.fingerprint.0).unwrap().0, audit);
    assert_eq!(audit.len(), 1);
    assert_eq!(comments[0].body, "test fixture");
    assert!(s.suppressed().unwrap().contains(&s.store_id(FIXTURE_FP)));
    // From version 2: the token whose SHA-256 the fixture holds ("foo").
    let token = s.token("foo").unwrap();
    if version >= 2 {
        let t = token.expect("the fixture's token");
        assert_eq!((t.name.as_str(), t.role), ("ci-bot", Role::Triager));
    } else {
        assert_eq!(token, None);
    }
    // From version 4: the fixture's job and worker.
    let jobs = s.jobs(&keytrail_store::JobFilter::default()).unwrap();
    if version >= 4 {
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].state, keytrail_store::JobState::Done);
        assert_eq!(jobs[0].run_id, Some(1));
        assert_eq!(s.workers().unwrap()[0].jobs_done, 1);
    } else {
        assert!(jobs.is_empty());
    }
    // From version 9: the fixture's detection run, its route step done.
    let run = s.detect_run("r1").unwrap();
    if version >= 9 {
        let run = run.expect("the fixture's run");
        assert_eq!((run.chain.as_str(), run.previous), ("org", None));
        assert!(s.detect_step_is_done("r1", "route:0").unwrap());
        assert_eq!(
            s.detect_route_files("r1", 0).unwrap(),
            vec![("a".to_string(), 1)]
        );
    } else {
        assert!(run.is_none());
    }
}

both!(jobs_are_submitted_once_per_target_while_active);
fn jobs_are_submitted_once_per_target_while_active(db: Db) {
    let mut s = Store::open(&db.url()).unwrap();
    let job = |key: &str, target: &str| keytrail_store::NewJob {
        job_key: key.into(),
        kind: "scan".into(),
        target: target.into(),
    };
    let a = s.submit_job(&job("k1", "/srv/a")).unwrap();
    assert!(a.created);
    assert_eq!(a.job.state, keytrail_store::JobState::Queued);
    // Another key, same target while queued: the queued job.
    let again = s.submit_job(&job("k2", "/srv/a")).unwrap();
    assert!(!again.created);
    assert_eq!(again.job.job_key, "k1");
    // The same key: that job.
    assert!(!s.submit_job(&job("k1", "/srv/other")).unwrap().created);
    // Running, failed once (queued again), then done; then a new job.
    let j = s.job_started("k1", "w1", 1).unwrap().unwrap();
    assert_eq!(j.state, keytrail_store::JobState::Running);
    let j = s.job_failed("k1", "w1", 1, "boom", false).unwrap().unwrap();
    assert_eq!(
        (j.state, j.error.as_deref()),
        (keytrail_store::JobState::Queued, Some("boom"))
    );
    s.job_started("k1", "w1", 2).unwrap();
    let mut run = RunRecord::new("scan", "/srv/a");
    run.run_key = "k1".into();
    s.record_run(&run, &[], &|_| None).unwrap();
    let j = s.job_done("k1", "w1").unwrap().unwrap();
    assert_eq!(j.state, keytrail_store::JobState::Done);
    assert_eq!((j.attempts, j.findings, j.error), (2, Some(0), None));
    assert!(j.run_id.is_some());
    // A late redelivery of a done job changes nothing.
    let j = s.job_started("k1", "w2", 3).unwrap().unwrap();
    assert_eq!((j.state, j.attempts), (keytrail_store::JobState::Done, 2));
    let fresh = s.submit_job(&job("k3", "/srv/a")).unwrap();
    assert!(fresh.created);
    let counts = s.job_counts("2000-01-01T00:00:00Z").unwrap();
    assert_eq!((counts.queued, counts.done, counts.done_since), (1, 1, 1));
    assert_eq!(s.job("nope").unwrap(), None);
}

both!(detection_runs_chain_and_checkpoints_move_once);
fn detection_runs_chain_and_checkpoints_move_once(db: Db) {
    use keytrail_store::NewDetectRun;
    let mut s = Store::open(&db.url()).unwrap();
    let new = |run: &str, files: &[(&str, u64, u32)]| NewDetectRun {
        run: run.into(),
        chain: "org".into(),
        partitions: 2,
        settings: "[]".into(),
        target: "/srv/trail".into(),
        files: files
            .iter()
            .map(|(n, s, r)| (n.to_string(), *s, *r))
            .collect(),
    };
    let r1 = s
        .create_detect_run(&new("r1", &[("a", 10, 0), ("b", 20, 0), ("c", 30, 1)]))
        .unwrap();
    assert_eq!((r1.previous.as_deref(), r1.routes), (None, 2));
    assert_eq!(
        s.detect_route_files("r1", 0).unwrap(),
        vec![("a".to_string(), 10), ("b".to_string(), 20)]
    );
    assert_eq!(
        s.detect_route_files("r1", 1).unwrap(),
        vec![("c".to_string(), 30)]
    );
    // The next run continues the chain; a run id is never reused.
    let r2 = s.create_detect_run(&new("r2", &[("d", 5, 0)])).unwrap();
    assert_eq!(r2.previous.as_deref(), Some("r1"));
    assert_eq!(s.detect_next(&r1).unwrap().unwrap().run, "r2");
    assert!(s.detect_next(&r2).unwrap().is_none());
    let e = s.create_detect_run(&new("r2", &[])).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conflict, "{e}");
    let e = s.create_detect_run(&new("bad id", &[])).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid, "{e}");
    let names: Vec<String> = ["a", "c", "d", "never"].map(String::from).to_vec();
    let read = s.detect_read_sizes("org", &names).unwrap();
    assert_eq!((read.len(), read["c"], read["d"]), (3, 30, 5));
    assert!(s.detect_read_sizes("other", &names).unwrap().is_empty());
    // More names than one batch.
    let many: Vec<String> = (0..1200)
        .map(|i| format!("x{i}"))
        .chain(["b".to_string()])
        .collect();
    assert_eq!(s.detect_read_sizes("org", &many).unwrap()["b"], 20);
    assert_eq!(s.detect_last_run_files("org").unwrap(), vec!["d"]);
    assert!(s.detect_last_run_files("other").unwrap().is_empty());

    // Steps count once.
    assert_eq!(s.detect_step_done("r1", "route:0", 7).unwrap(), 1);
    assert_eq!(s.detect_step_done("r1", "route:0", 7).unwrap(), 1);
    assert_eq!(s.detect_step_done("r1", "route:1", 3).unwrap(), 2);
    assert!(s.detect_step_is_done("r1", "route:1").unwrap());
    assert!(!s.detect_step_is_done("r1", "part:0").unwrap());

    // A checkpoint moves from the previous run's only: run 2 before run 1 is
    // refused, run 1 moves it, a repeat changes nothing, then run 2 moves it.
    let e = s.detect_commit(&r2, "part:0", "{\"s\":2}", 1).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conflict, "{e}");
    assert_eq!(s.detect_commit(&r1, "part:0", "{\"s\":1}", 4).unwrap(), 1);
    assert_eq!(s.detect_commit(&r1, "part:0", "{\"s\":9}", 4).unwrap(), 1);
    assert_eq!(
        s.detect_checkpoint("org", "part:0").unwrap(),
        Some(("r1".to_string(), "{\"s\":1}".to_string()))
    );
    assert_eq!(s.detect_commit(&r2, "part:0", "{\"s\":2}", 1).unwrap(), 1);
    assert_eq!(
        s.detect_checkpoint("org", "part:0").unwrap().unwrap().0,
        "r2"
    );
    assert_eq!(s.detect_run_events("r1").unwrap(), (10, 4, 0));

    // Regions: the earliest time wins, whatever the order.
    s.detect_add_regions(
        "org",
        &[
            ("1".into(), "eu-west-1".into(), 500),
            ("1".into(), "us-east-1".into(), 900),
        ],
    )
    .unwrap();
    s.detect_add_regions(
        "org",
        &[
            ("1".into(), "eu-west-1".into(), 700),
            ("1".into(), "us-east-1".into(), 100),
        ],
    )
    .unwrap();
    let mut regions = s.detect_regions("org").unwrap();
    regions.sort();
    assert_eq!(
        regions,
        vec![
            ("1".to_string(), "eu-west-1".to_string(), 500),
            ("1".to_string(), "us-east-1".to_string(), 100)
        ]
    );
    assert!(s.detect_regions("other").unwrap().is_empty());
}

both!(schedules_fire_once_per_due_time);
/// A schedule fires when due, once per due time whatever the number of
/// schedulers, moves on by whole intervals, and keeps its cursor until a
/// job of it succeeds.
fn schedules_fire_once_per_due_time(db: Db) {
    use chrono::{DateTime, Utc};
    use keytrail_store::{NewSchedule, next_due_after};
    let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
    let mut s = Store::open(&db.url()).unwrap();
    let new = NewSchedule {
        kind: "scan".into(),
        target: "git:https://git.example/acme/api.git".into(),
        spec: r#"{"type":"git_url","value":"https://git.example/acme/api.git"}"#.into(),
        every_seconds: 3600,
        first_due: t("2026-12-07T10:00:00Z"),
    };
    let a = s.add_schedule(&new).unwrap();
    assert!(a.enabled);
    assert_eq!(a.next_due, "2026-12-07T10:00:00.000000Z");
    // One schedule per kind and target.
    let e = s.add_schedule(&new).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conflict, "{e}");
    assert!(e.to_string().contains(&format!("schedule {}", a.id)), "{e}");
    let bad = NewSchedule {
        every_seconds: 0,
        target: "other".into(),
        ..new.clone()
    };
    assert_eq!(s.add_schedule(&bad).unwrap_err().kind, ErrorKind::Invalid);
    // Not due before its time; due at it.
    assert!(
        s.due_schedules(t("2026-12-07T09:59:59Z"))
            .unwrap()
            .is_empty()
    );
    let due = s.due_schedules(t("2026-12-07T10:00:01Z")).unwrap();
    assert_eq!(due.len(), 1);
    // Two schedulers read the same due time: one claims it.
    let mut other = Store::open(&db.url()).unwrap();
    let seen_by_other = other.due_schedules(t("2026-12-07T10:00:01Z")).unwrap();
    let next = next_due_after(t("2026-12-07T10:00:00Z"), 3600, t("2026-12-07T10:00:01Z"));
    assert!(
        s.fire_schedule(a.id, &due[0].next_due, next, "sched-1")
            .unwrap()
    );
    assert!(
        !other
            .fire_schedule(a.id, &seen_by_other[0].next_due, next, "sched-1")
            .unwrap()
    );
    let after = s.schedule(a.id).unwrap().unwrap();
    assert_eq!(after.next_due, "2026-12-07T11:00:00.000000Z");
    assert_eq!(after.last_job_key.as_deref(), Some("sched-1"));
    assert!(
        s.due_schedules(t("2026-12-07T10:59:00Z"))
            .unwrap()
            .is_empty()
    );
    // The cursor: kept until a job succeeds with one.
    assert_eq!(after.cursor, None);
    assert!(
        s.schedule_succeeded(a.id, "sched-1", "scanned", Some(r#"{"refs":{}}"#))
            .unwrap()
    );
    assert!(
        s.schedule_succeeded(a.id, "sched-2", "unchanged", None)
            .unwrap()
    );
    let after = s.schedule(a.id).unwrap().unwrap();
    assert_eq!(after.cursor.as_deref(), Some(r#"{"refs":{}}"#));
    assert_eq!(after.last_success_job.as_deref(), Some("sched-2"));
    assert_eq!(after.last_outcome.as_deref(), Some("unchanged"));
    // Disabled: never due, never fired.
    assert!(s.set_schedule_enabled(a.id, false).unwrap());
    assert!(
        s.due_schedules(t("2027-01-01T00:00:00Z"))
            .unwrap()
            .is_empty()
    );
    assert!(
        !s.fire_schedule(a.id, &after.next_due, next, "sched-3")
            .unwrap()
    );
    assert!(s.set_schedule_enabled(a.id, true).unwrap());
    // Removed: gone, and the same target may be scheduled again.
    assert_eq!(s.schedules().unwrap().len(), 1);
    assert!(s.remove_schedule(a.id).unwrap());
    assert!(!s.remove_schedule(a.id).unwrap());
    assert!(!s.schedule_succeeded(a.id, "sched-9", "late", None).unwrap());
    assert!(!s.set_schedule_enabled(a.id, true).unwrap());
    assert!(s.schedules().unwrap().is_empty());
    s.add_schedule(&new).unwrap();
}

both!(every_earlier_schema_upgrades_to_the_current_one);
fn every_earlier_schema_upgrades_to_the_current_one(db: Db) {
    // One database per earlier version, of this test's kind.
    let postgres = matches!(db, Db::Postgres(_));
    let key = StoreKey::generate();
    let mut first = Some(db);
    for from in 0..=SCHEMA_VERSION {
        let db = match first.take() {
            Some(d) => d,
            None if postgres => Db::postgres(),
            None => Db::sqlite(),
        };
        let opts = OpenOptions {
            schema_version: Some(from),
            key: Some(key.clone()),
            ..OpenOptions::default()
        };
        let mut s = Store::open_with(&db.url(), &opts).expect("open at an earlier version");
        assert_eq!(s.schema_version().unwrap(), from);
        drop(s);
        fill(&db, from, &key);
        let opts = OpenOptions {
            key: Some(key.clone()),
            ..OpenOptions::default()
        };
        let mut s = Store::open_with(&db.url(), &opts).expect("upgrade");
        assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION, "from {from}");
        check_fixture(&mut s, from);
        drop(s);
        // The unkeyed fingerprint the earlier version held is gone, from
        // the file (free pages, journal) as from the tables.
        // (From version 5 the fixture is keyed by an update of its own.)
        let bytes = db.contents();
        if from < 5 {
            assert!(
                !contains(&bytes, FIXTURE_FP),
                "from {from}: unkeyed fingerprint left"
            );
        }
        if from >= 1 {
            assert!(
                contains(&bytes, "ghp_…xy"),
                "from {from}: the contents are real"
            );
        }
    }
}

both!(a_newer_database_is_refused_and_left_alone);
fn a_newer_database_is_refused_and_left_alone(db: Db) {
    drop(Store::open(&db.url()).unwrap());
    let newer = SCHEMA_VERSION + 1;
    db.raw(&format!(
        "UPDATE keytrail_meta SET value = '{newer}' WHERE key = 'schema_version'"
    ));
    let err = Store::open(&db.url()).unwrap_err();
    assert_eq!(err.kind, ErrorKind::TooNew, "{err}");
    let msg = err.to_string();
    assert!(msg.contains(&format!("schema version {newer}")), "{msg}");
    assert!(msg.contains("upgrade keytrail"), "{msg}");
    match &db {
        Db::Sqlite(_) => assert!(msg.contains("keytrail.db"), "{msg}"),
        Db::Postgres(p) => assert!(msg.contains(&p.name), "{msg}"),
    }
    // Still the newer version: nothing was migrated down or over.
    let err = Store::open(&db.url()).unwrap_err();
    assert_eq!(err.kind, ErrorKind::TooNew);
}

both!(runs_deduplicate_findings_by_fingerprint);
fn runs_deduplicate_findings_by_fingerprint(db: Db) {
    let sec = secrets(2, 3);
    let mut s = Store::open(&db.url()).unwrap();
    let a = finding("github.pat.classic", &sec[0], "a.env", 1);
    let b = finding("github.pat.classic", &sec[1], "b.env", 1);
    let c = finding("github.pat.classic", &sec[2], "c.env", 1);
    let mut a_elsewhere = a.clone();
    a_elsewhere.locations[0].path = "moved/a.env".into();
    let s1 = s
        .record_run(
            &run("repo", true, "2026-12-01T00:00:00.000000Z"),
            &[a.clone(), b.clone()],
            &no_owner,
        )
        .unwrap();
    assert_eq!((s1.seen, s1.new, s1.fixed), (2, 2, 0));
    let s2 = s
        .record_run(
            &run("repo", false, "2026-12-02T00:00:00.000000Z"),
            &[a_elsewhere, b.clone(), c.clone()],
            &no_owner,
        )
        .unwrap();
    assert_eq!((s2.seen, s2.new), (3, 1));
    let all = s.list_findings(&Filter::default()).unwrap();
    assert_eq!(all.len(), 3, "one row per fingerprint");
    let fa = s.finding(&a.fingerprint.0).unwrap().unwrap();
    assert_eq!(fa.first_seen, "2026-12-01T00:00:00.000000Z");
    assert_eq!(fa.last_seen, "2026-12-02T00:00:00.000000Z");
    let paths: Vec<_> = fa
        .finding
        .locations
        .iter()
        .map(|l| l.path.as_str())
        .collect();
    assert_eq!(paths, vec!["a.env", "moved/a.env"], "both locations kept");
    let fc = s.finding(&c.fingerprint.0).unwrap().unwrap();
    assert_eq!(fc.first_seen, "2026-12-02T00:00:00.000000Z");
    assert_eq!(fc.status, Status::Open);
    // Filters and keyset paging.
    let page1 = s
        .list_findings(&Filter {
            limit: Some(2),
            ..Filter::default()
        })
        .unwrap();
    assert_eq!(page1.len(), 2);
    let page2 = s
        .list_findings(&Filter {
            after_id: Some(page1[1].id),
            ..Filter::default()
        })
        .unwrap();
    assert_eq!(page2.len(), 1);
    assert_eq!(page2[0].finding.fingerprint.0, s.store_id(&c.fingerprint.0));
    let none = s
        .list_findings(&Filter {
            target: Some("other".into()),
            ..Filter::default()
        })
        .unwrap();
    assert!(none.is_empty());
}

both!(a_run_key_is_recorded_once);
fn a_run_key_is_recorded_once(db: Db) {
    let sec = secrets(3, 1);
    let mut s = Store::open(&db.url()).unwrap();
    let r = run("repo", true, "2026-12-01T00:00:00.000000Z");
    let f = [finding("github.pat.classic", &sec[0], "a.env", 1)];
    let first = s.record_run(&r, &f, &no_owner).unwrap();
    assert!(first.recorded);
    let again = s.record_run(&r, &f, &no_owner).unwrap();
    assert!(!again.recorded, "the same job twice records one run");
    assert_eq!(again.run_id, first.run_id);
    assert_eq!(s.runs().unwrap().len(), 1);
    let stored = s.finding(&f[0].fingerprint.0).unwrap().unwrap();
    assert_eq!(stored.version, 1);
    assert_eq!(stored.finding.locations.len(), 1);
}

both!(complete_scans_fix_what_they_no_longer_see_and_reopen_what_returns);
fn complete_scans_fix_what_they_no_longer_see_and_reopen_what_returns(db: Db) {
    let sec = secrets(4, 2);
    let mut s = Store::open(&db.url()).unwrap();
    let a = finding("github.pat.classic", &sec[0], "a.env", 1);
    let b = finding("github.pat.classic", &sec[1], "b.env", 1);
    s.record_run(
        &run("repo", true, "2026-12-01T00:00:00.000000Z"),
        &[a.clone(), b.clone()],
        &no_owner,
    )
    .unwrap();
    // A finding also seen in another target stays open until it is gone there too.
    s.record_run(
        &run("other", true, "2026-12-01T01:00:00.000000Z"),
        std::slice::from_ref(&b),
        &no_owner,
    )
    .unwrap();
    // An incomplete run proves nothing.
    let sum = s
        .record_run(
            &run("repo", false, "2026-12-02T00:00:00.000000Z"),
            &[],
            &no_owner,
        )
        .unwrap();
    assert_eq!(sum.fixed, 0);
    assert_eq!(
        s.finding(&a.fingerprint.0).unwrap().unwrap().status,
        Status::Open
    );
    // A complete run of the same target without `a`: fixed.
    let sum = s
        .record_run(
            &run("repo", true, "2026-12-03T00:00:00.000000Z"),
            &[],
            &no_owner,
        )
        .unwrap();
    assert_eq!(sum.fixed, 1);
    let fa = s.finding(&a.fingerprint.0).unwrap().unwrap();
    assert_eq!(fa.status, Status::Fixed);
    assert_eq!(fa.fixed_at.as_deref(), Some("2026-12-03T00:00:00.000000Z"));
    assert_eq!(
        s.finding(&b.fingerprint.0).unwrap().unwrap().status,
        Status::Open
    );
    let (audit, _) = s.history(&a.fingerprint.0).unwrap();
    assert_eq!(audit.last().unwrap().field, "status");
    assert_eq!(audit.last().unwrap().after.as_deref(), Some("fixed"));
    assert_eq!(audit.last().unwrap().actor, "keytrail scan");
    // Nor does a complete run that saw `b` but did not record it (allow-listed).
    let mut r = run("other", true, "2026-12-03T00:30:00.000000Z");
    r.present = vec![b.fingerprint.0.clone()];
    assert_eq!(s.record_run(&r, &[], &no_owner).unwrap().fixed, 0);
    assert_eq!(
        s.finding(&b.fingerprint.0).unwrap().unwrap().status,
        Status::Open
    );
    // A complete run of a rule set without `a`'s rule does not fix it.
    let mut r = run("other", true, "2026-12-03T01:00:00.000000Z");
    r.rules = vec!["slack.bot".into()];
    assert_eq!(s.record_run(&r, &[], &no_owner).unwrap().fixed, 0);
    // Seen again: reopened, audited.
    let sum = s
        .record_run(
            &run("repo", true, "2026-12-04T00:00:00.000000Z"),
            std::slice::from_ref(&a),
            &no_owner,
        )
        .unwrap();
    assert_eq!(sum.reopened, 1);
    let fa = s.finding(&a.fingerprint.0).unwrap().unwrap();
    assert_eq!(fa.status, Status::Open);
    assert_eq!(fa.fixed_at, None);
    let (audit, _) = s.history(&a.fingerprint.0).unwrap();
    let last = audit.last().unwrap();
    assert_eq!(
        (last.before.as_deref(), last.after.as_deref()),
        (Some("fixed"), Some("open"))
    );
}

both!(triage_changes_are_audited_and_false_positives_suppressed);
fn triage_changes_are_audited_and_false_positives_suppressed(db: Db) {
    let sec = secrets(5, 2);
    let mut s = Store::open(&db.url()).unwrap();
    let a = finding("github.pat.classic", &sec[0], "a.env", 1);
    let b = finding("github.pat.classic", &sec[1], "b.env", 1);
    let owners = |f: &keytrail_types::Finding| {
        f.locations[0]
            .path
            .starts_with('a')
            .then(|| "payments".to_string())
    };
    s.record_run(
        &run("repo", true, "2026-12-01T00:00:00.000000Z"),
        &[a.clone(), b.clone()],
        &owners,
    )
    .unwrap();
    assert_eq!(
        s.finding(&a.fingerprint.0)
            .unwrap()
            .unwrap()
            .owner
            .as_deref(),
        Some("payments")
    );
    assert!(s.suppressed().unwrap().is_empty());
    let t = Triage {
        status: Some(Status::FalsePositive),
        assignee: Some(Some("bob".into())),
        comment: Some("test data, not a key".into()),
        ..triage("alice")
    };
    let after = s.triage(&a.fingerprint.0, &t).unwrap();
    assert_eq!(after.status, Status::FalsePositive);
    assert_eq!(after.assignee.as_deref(), Some("bob"));
    assert_eq!(after.version, 2);
    let t = Triage {
        status: Some(Status::AcceptedRisk),
        ..triage("carol")
    };
    s.triage(&b.fingerprint.0, &t).unwrap();
    let sup = s.suppressed().unwrap();
    assert!(sup.contains(&s.store_id(&a.fingerprint.0)));
    assert!(sup.contains(&s.store_id(&b.fingerprint.0)));
    assert!(!sup.contains(&a.fingerprint.0), "kept keyed");
    let (audit, comments) = s.history(&a.fingerprint.0).unwrap();
    let fields: Vec<_> = audit
        .iter()
        .map(|e| {
            (
                e.actor.as_str(),
                e.field.as_str(),
                e.before.as_deref(),
                e.after.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        fields,
        vec![
            ("alice", "status", Some("open"), Some("false_positive")),
            ("alice", "assignee", None, Some("bob")),
            ("alice", "comment", None, Some("test data, not a key")),
        ]
    );
    assert_eq!(comments[0].author, "alice");
    // A false positive that a later complete scan no longer sees keeps its status.
    s.record_run(
        &run("repo", true, "2026-12-02T00:00:00.000000Z"),
        &[],
        &no_owner,
    )
    .unwrap();
    let fa = s.finding(&a.fingerprint.0).unwrap().unwrap();
    assert_eq!(fa.status, Status::FalsePositive);
    assert!(fa.fixed_at.is_some());
    // Prefixes of 6 or more hex digits resolve when only one finding has them.
    // (of the fingerprint the store shows); the report's whole
    // fingerprint resolves too.
    let id_a = s.store_id(&a.fingerprint.0);
    assert_eq!(s.resolve(&id_a[..8]).unwrap(), id_a);
    assert_eq!(s.resolve(&id_a).unwrap(), id_a);
    assert_eq!(s.resolve(&a.fingerprint.0).unwrap(), id_a);
    assert_eq!(s.resolve(&id_a[..4]).unwrap_err().kind, ErrorKind::NotFound);
    assert_eq!(s.resolve("zzzzzzzz").unwrap_err().kind, ErrorKind::NotFound);
    // Unknown fingerprints and missing actors are errors.
    let e = s.triage("0000", &triage("alice")).unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    let e = s.triage(&a.fingerprint.0, &triage(" ")).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid);
    // Filters by status and owner.
    let fps = s
        .list_findings(&Filter {
            statuses: vec![Status::AcceptedRisk],
            ..Filter::default()
        })
        .unwrap();
    assert_eq!(fps.len(), 1);
    assert_eq!(fps[0].finding.fingerprint.0, s.store_id(&b.fingerprint.0));
    let owned = s
        .list_findings(&Filter {
            owner: Some("payments".into()),
            ..Filter::default()
        })
        .unwrap();
    assert_eq!(owned.len(), 1);
}

both!(a_stale_triage_is_refused);
fn a_stale_triage_is_refused(db: Db) {
    let sec = secrets(6, 1);
    let mut alice = Store::open(&db.url()).unwrap();
    let mut bob = Store::open(&db.url()).unwrap();
    let a = finding("github.pat.classic", &sec[0], "a.env", 1);
    alice
        .record_run(
            &run("repo", true, "2026-12-01T00:00:00.000000Z"),
            std::slice::from_ref(&a),
            &no_owner,
        )
        .unwrap();
    let read_by_alice = alice.finding(&a.fingerprint.0).unwrap().unwrap().version;
    let read_by_bob = bob.finding(&a.fingerprint.0).unwrap().unwrap().version;
    let t = Triage {
        status: Some(Status::Revoked),
        if_version: Some(read_by_alice),
        ..triage("alice")
    };
    alice.triage(&a.fingerprint.0, &t).unwrap();
    let t = Triage {
        status: Some(Status::FalsePositive),
        if_version: Some(read_by_bob),
        ..triage("bob")
    };
    let e = bob.triage(&a.fingerprint.0, &t).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conflict, "{e}");
    assert!(e.to_string().contains("changed since version 1"), "{e}");
    let now = bob.finding(&a.fingerprint.0).unwrap().unwrap();
    assert_eq!(
        now.status,
        Status::Revoked,
        "alice's change stands, bob's was not applied"
    );
    assert_eq!(now.version, 2);
}

both!(two_triagers_at_once_lose_no_update);
fn two_triagers_at_once_lose_no_update(db: Db) {
    let sec = secrets(7, 1);
    let url = db.url();
    let a = finding("github.pat.classic", &sec[0], "a.env", 1);
    Store::open(&url)
        .unwrap()
        .record_run(
            &run("repo", true, "2026-12-01T00:00:00.000000Z"),
            std::slice::from_ref(&a),
            &no_owner,
        )
        .unwrap();
    const EACH: usize = 20;
    let handles: Vec<_> = ["alice", "bob"]
        .into_iter()
        .map(|who| {
            let url = url.clone();
            let fp = a.fingerprint.0.clone();
            std::thread::spawn(move || {
                let opts = OpenOptions {
                    wait: std::time::Duration::from_secs(30),
                    ..OpenOptions::default()
                };
                let mut s = Store::open_with(&url, &opts).unwrap();
                for i in 0..EACH {
                    let t = Triage {
                        assignee: Some(Some(format!("{who}-{i}"))),
                        comment: Some(format!("{who} {i}")),
                        ..triage(who)
                    };
                    s.triage(&fp, &t).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("triager thread");
    }
    let mut s = Store::open(&url).unwrap();
    let f = s.finding(&a.fingerprint.0).unwrap().unwrap();
    assert_eq!(f.version, 1 + 2 * EACH as i64, "every change counted once");
    let (audit, comments) = s.history(&a.fingerprint.0).unwrap();
    assert_eq!(comments.len(), 2 * EACH, "no comment lost");
    let assignments: Vec<_> = audit.iter().filter(|e| e.field == "assignee").collect();
    assert_eq!(assignments.len(), 2 * EACH);
    // Each change saw the one before it: the trail is one chain.
    let mut prev: Option<String> = None;
    for (i, e) in assignments.iter().enumerate() {
        assert_eq!(
            e.before, prev,
            "change {i} read the value the previous change wrote"
        );
        assert_eq!(e.version, 2 + i as i64);
        prev = e.after.clone();
    }
    assert_eq!(f.assignee, prev);
}

both!(no_secret_reaches_the_database);
fn no_secret_reaches_the_database(db: Db) {
    let planted = secrets(8, 20);
    let mut s = Store::open(&db.url()).unwrap();
    let mut findings: Vec<_> = planted
        .iter()
        .enumerate()
        .map(|(i, sec)| {
            finding(
                "github.pat.classic",
                sec,
                &format!("f{i}.env"),
                i as u64 + 1,
            )
        })
        .collect();
    // A careless caller: the secret in a context value, a note and a
    // rule name. The store's guard masks it before it is written.
    findings[0]
        .context
        .push(("url".into(), format!("https://x:{}@h", planted[0])));
    findings[1].notes.push(format!("value {}", planted[1]));
    findings[2].rule_name = format!("rule {}", planted[2]);
    s.record_run(
        &run("repo", true, "2026-12-01T00:00:00.000000Z"),
        &findings,
        &no_owner,
    )
    .unwrap();
    s.triage(
        &findings[3].fingerprint.0,
        &Triage {
            status: Some(Status::Acknowledged),
            ..triage("alice")
        },
    )
    .unwrap();
    let kept = s.store_id(&findings[5].fingerprint.0);
    drop(s);
    let bytes = db.contents_without_key();
    // The dump is real: keyed fingerprints and redacted forms are in it.
    assert!(contains(&bytes, &kept));
    assert!(contains(&bytes, &findings[5].secret_redacted));
    for (i, sec) in planted.iter().enumerate() {
        assert!(!contains(&bytes, sec), "secret {i} is in the database");
        // Nor its unkeyed fingerprint, which allows testing guesses.
        assert!(
            !contains(&bytes, &findings[i].fingerprint.0),
            "secret {i}'s report fingerprint is in the database"
        );
        // Nor its body without the prefix.
        assert!(
            !contains(&bytes, &sec[4..]),
            "secret {i}'s body is in the database"
        );
    }
}

#[test]
fn a_corrupt_sqlite_file_is_named_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("findings.db");
    let junk: Vec<u8> = (0..8192u32).map(|i| (i * 7 + 3) as u8).collect();
    std::fs::write(&path, &junk).unwrap();
    let err = Store::open(path.to_str().unwrap()).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Corrupt, "{err}");
    assert!(err.to_string().contains("findings.db"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), junk, "the file is untouched");
}

#[test]
fn a_foreign_sqlite_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE notes (x TEXT)")
        .unwrap();
    let err = Store::open(path.to_str().unwrap()).unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotKeytrail, "{err}");
    assert!(err.to_string().contains("other.db"), "{err}");
}

#[test]
fn a_locked_sqlite_file_fails_clearly_and_loses_nothing() {
    let db = Db::sqlite();
    let url = db.url();
    let sec = secrets(9, 2);
    let a = finding("github.pat.classic", &sec[0], "a.env", 1);
    let b = finding("github.pat.classic", &sec[1], "b.env", 1);
    Store::open(&url)
        .unwrap()
        .record_run(
            &run("repo", true, "2026-12-01T00:00:00.000000Z"),
            std::slice::from_ref(&a),
            &no_owner,
        )
        .unwrap();
    // Another process holds the write lock.
    let other = rusqlite::Connection::open(&url).unwrap();
    other
        .execute_batch("BEGIN IMMEDIATE; INSERT INTO keytrail_meta VALUES ('x', 'y');")
        .unwrap();
    let opts = OpenOptions {
        wait: std::time::Duration::from_millis(200),
        ..OpenOptions::default()
    };
    let mut s = Store::open_with(&url, &opts).expect("reading is not blocked (WAL)");
    let r2 = run("repo", true, "2026-12-02T00:00:00.000000Z");
    let err = s
        .record_run(&r2, &[a.clone(), b.clone()], &no_owner)
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Locked, "{err}");
    assert!(err.to_string().contains("keytrail.db"), "{err}");
    assert!(err.to_string().contains("nothing was written"), "{err}");
    let t = Triage {
        status: Some(Status::Revoked),
        ..triage("alice")
    };
    assert_eq!(
        s.triage(&a.fingerprint.0, &t).unwrap_err().kind,
        ErrorKind::Locked
    );
    other.execute_batch("ROLLBACK").unwrap();
    // Nothing lost, nothing half-written; the same calls now go through.
    assert_eq!(s.runs().unwrap().len(), 1);
    assert!(s.finding(&b.fingerprint.0).unwrap().is_none());
    let sum = s
        .record_run(&r2, &[a.clone(), b.clone()], &no_owner)
        .unwrap();
    assert_eq!((sum.seen, sum.new), (2, 1));
    s.triage(&a.fingerprint.0, &t).unwrap();
    assert_eq!(
        s.finding(&a.fingerprint.0).unwrap().unwrap().status,
        Status::Revoked
    );
}

#[test]
fn postgres_going_away_mid_operation_is_a_clear_error() {
    let db = common::PgDb::new();
    let sec = secrets(10, 2);
    let a = finding("github.pat.classic", &sec[0], "a.env", 1);
    let mut s = Store::open(&db.url()).unwrap();
    s.record_run(
        &run("repo", true, "2026-12-01T00:00:00.000000Z"),
        std::slice::from_ref(&a),
        &no_owner,
    )
    .unwrap();
    // The server ends the session (a restart, a failover, an admin).
    let killed: i64 = common::pg_admin()
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1",
            &[&db.name],
        )
        .unwrap()
        .get(0);
    assert!(killed >= 1, "the store's session was found");
    let b = finding("github.pat.classic", &sec[1], "b.env", 1);
    let err = s
        .record_run(
            &run("repo", true, "2026-12-02T00:00:00.000000Z"),
            std::slice::from_ref(&b),
            &no_owner,
        )
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unreachable, "{err}");
    let msg = err.to_string();
    assert!(msg.contains(&db.name), "{msg}");
    assert!(
        msg.contains("rolled back") || msg.contains("connection"),
        "{msg}"
    );
    // What was committed before is there; the failed run is not half-written.
    let mut again = Store::open(&db.url()).unwrap();
    assert_eq!(again.runs().unwrap().len(), 1);
    assert!(again.finding(&a.fingerprint.0).unwrap().is_some());
    assert!(again.finding(&b.fingerprint.0).unwrap().is_none());
    // An unreachable server is named, without its password.
    let err = Store::open("postgres://kt:hunter2@127.0.0.1:1/keytrail").unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unreachable, "{err}");
    assert!(err.to_string().contains("127.0.0.1:1"), "{err}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

both!(an_ambiguous_fingerprint_prefix_is_refused);
fn an_ambiguous_fingerprint_prefix_is_refused(db: Db) {
    let sec = secrets(11, 2);
    let key = StoreKey::generate();
    // Two report fingerprints whose keyed forms share 6 hex digits (a
    // birthday search: a few thousand tries).
    let mut by_prefix = std::collections::HashMap::new();
    let (fa, fb) = (0u32..)
        .find_map(|i| {
            let fp = format!("{i:032x}");
            let id = key.id(&fp);
            by_prefix
                .insert(id[..6].to_string(), fp.clone())
                .map(|other| (other, fp))
        })
        .unwrap();
    let (ia, ib) = (key.id(&fa), key.id(&fb));
    let opts = OpenOptions {
        key: Some(key),
        ..OpenOptions::default()
    };
    let mut s = Store::open_with(&db.url(), &opts).unwrap();
    let mut a = finding("github.pat.classic", &sec[0], "a.env", 1);
    let mut b = finding("github.pat.classic", &sec[1], "b.env", 1);
    a.fingerprint.0 = fa;
    b.fingerprint.0 = fb;
    s.record_run(
        &run("repo", true, "2026-12-01T00:00:00.000000Z"),
        &[a, b],
        &no_owner,
    )
    .unwrap();
    let e = s.resolve(&ia[..6]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid);
    assert!(e.to_string().contains("ambiguous"), "{e}");
    // The first digit where they differ settles it (upper case too).
    let n = (0..32)
        .find(|&i| ia.as_bytes()[i] != ib.as_bytes()[i])
        .unwrap()
        + 1;
    assert_eq!(s.resolve(&ia[..n].to_ascii_uppercase()).unwrap(), ia);
    assert_eq!(s.resolve(&ib[..n]).unwrap(), ib);
}

both!(the_fingerprint_key_is_kept_apart_and_checked);
fn the_fingerprint_key_is_kept_apart_and_checked(db: Db) {
    let sec = secrets(13, 1);
    let f = finding("github.pat.classic", &sec[0], "a.env", 1);
    let key = StoreKey::generate();
    let with = |k: Option<StoreKey>| OpenOptions {
        key: k,
        ..OpenOptions::default()
    };
    let mut s = Store::open_with(&db.url(), &with(Some(key.clone()))).unwrap();
    s.record_run(
        &run("repo", true, "2026-12-01T00:00:00.000000Z"),
        std::slice::from_ref(&f),
        &no_owner,
    )
    .unwrap();
    assert_eq!(s.store_id(&f.fingerprint.0), key.id(&f.fingerprint.0));
    drop(s);
    // Another key: refused, naming the database; nothing changed.
    let e = Store::open_with(&db.url(), &with(Some(StoreKey::generate()))).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Key, "{e}");
    assert!(
        e.to_string().contains("not this store's fingerprint key"),
        "{e}"
    );
    assert!(e.to_string().contains("KEYTRAIL_STORE_KEY"), "{e}");
    // No key anywhere (it was given, so no file was made): refused, and
    // no new key is made that would orphan the findings.
    let e = Store::open(&db.url()).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Key, "{e}");
    assert!(e.to_string().contains("fingerprint key is missing"), "{e}");
    if let Db::Sqlite(dir) = &db {
        let file = dir.path().join("keytrail.db.key");
        assert!(e.to_string().contains(&file.display().to_string()), "{e}");
        assert!(!file.exists(), "no key file was made");
        // The right key in the file beside it opens it.
        std::fs::write(&file, format!("{}\n", key.to_hex())).unwrap();
        let mut s = Store::open(&db.url()).unwrap();
        assert_eq!(s.finding(&f.fingerprint.0).unwrap().unwrap().kind, "secret");
        drop(s);
        // A damaged key file: named.
        std::fs::write(&file, "not a key").unwrap();
        let e = Store::open(&db.url()).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Key, "{e}");
        assert!(
            e.to_string()
                .contains("keytrail.db.key: not a keytrail store key"),
            "{e}"
        );
    }
    let mut s = Store::open_with(&db.url(), &with(Some(key))).unwrap();
    assert_eq!(s.list_findings(&Filter::default()).unwrap().len(), 1);
}

#[cfg(unix)]
#[test]
fn a_new_sqlite_store_gets_its_key_file_beside_it() {
    use std::os::unix::fs::PermissionsExt;
    let db = Db::sqlite();
    let sec = secrets(14, 1);
    let f = finding("github.pat.classic", &sec[0], "a.env", 1);
    let mut s = Store::open(&db.url()).unwrap();
    s.record_run(
        &run("repo", true, "2026-12-01T00:00:00.000000Z"),
        std::slice::from_ref(&f),
        &no_owner,
    )
    .unwrap();
    let id = s.store_id(&f.fingerprint.0);
    drop(s);
    let file = std::path::PathBuf::from(format!("{}.key", db.url()));
    let text = std::fs::read_to_string(&file).unwrap();
    let key = StoreKey::from_hex(&text).unwrap();
    assert_eq!(key.id(&f.fingerprint.0), id);
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // Reopened with the same file: the same identities.
    let mut s = Store::open(&db.url()).unwrap();
    assert_eq!(s.store_id(&f.fingerprint.0), id);
    assert_eq!(
        s.list_findings(&Filter::default()).unwrap()[0]
            .finding
            .fingerprint
            .0,
        id
    );
}

#[cfg(unix)]
#[test]
fn a_new_sqlite_store_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let db = Db::sqlite();
    let sec = secrets(12, 1);
    Store::open(&db.url())
        .unwrap()
        .record_run(
            &run("repo", true, "2026-12-01T00:00:00.000000Z"),
            &[finding("github.pat.classic", &sec[0], "a.env", 1)],
            &no_owner,
        )
        .unwrap();
    let Db::Sqlite(dir) = &db else { unreachable!() };
    let mut seen = 0;
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let p = e.unwrap().path();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", p.display());
        seen += 1;
    }
    assert!(seen >= 1);
}

fn posture(check: &str, resource: &str) -> keytrail_store::Record {
    keytrail_store::Record {
        kind: "posture".into(),
        fingerprint: common::fingerprint(check, resource).0,
        rule_id: check.into(),
        title: format!("{check} failed"),
        severity: keytrail_types::Severity::High,
        detail: serde_json::json!({"check": check, "resource": resource, "fact": "old key"}),
        owner: Some("platform".into()),
    }
}

both!(posture_records_live_beside_secrets_and_are_fixed_by_their_own_runs);
fn posture_records_live_beside_secrets_and_are_fixed_by_their_own_runs(db: Db) {
    let sec = secrets(13, 1);
    let mut s = Store::open(&db.url()).unwrap();
    let a = finding("github.pat.classic", &sec[0], "a.env", 1);
    s.record_run(
        &run("acct", true, "2026-12-01T00:00:00.000000Z"),
        std::slice::from_ref(&a),
        &no_owner,
    )
    .unwrap();
    let p1 = posture("aws.iam.key_age", "arn:aws:iam::123456789012:user/ci");
    let p2 = posture("aws.iam.key_age", "arn:aws:iam::123456789012:user/deploy");
    let mut r = run("acct", true, "2026-12-02T00:00:00.000000Z");
    r.command = "posture".into();
    let sum = s.record_records(&r, &[p1.clone(), p2.clone()]).unwrap();
    assert_eq!(
        (sum.seen, sum.new, sum.fixed),
        (2, 2, 0),
        "a posture run does not fix secrets"
    );
    assert_eq!(
        s.finding(&a.fingerprint.0).unwrap().unwrap().status,
        Status::Open
    );
    let listed = s
        .list_findings(&Filter {
            kind: Some("posture".into()),
            ..Filter::default()
        })
        .unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].kind, "posture");
    assert_eq!(listed[0].owner.as_deref(), Some("platform"));
    assert_eq!(
        listed[0].raw.as_ref().unwrap()["resource"],
        "arn:aws:iam::123456789012:user/ci"
    );
    // The next complete posture run no longer sees p2: fixed; the secret is untouched.
    let mut r = run("acct", true, "2026-12-03T00:00:00.000000Z");
    r.command = "posture".into();
    let sum = s.record_records(&r, std::slice::from_ref(&p1)).unwrap();
    assert_eq!((sum.new, sum.fixed), (0, 1));
    assert_eq!(
        s.finding(&p2.fingerprint).unwrap().unwrap().status,
        Status::Fixed
    );
    assert_eq!(
        s.finding(&a.fingerprint.0).unwrap().unwrap().status,
        Status::Open
    );
    let secrets_only = s
        .list_findings(&Filter {
            kind: Some("secret".into()),
            ..Filter::default()
        })
        .unwrap();
    assert_eq!(secrets_only.len(), 1);
    // A record may not pose as a secret.
    let mut bad = p1.clone();
    bad.kind = "secret".into();
    assert_eq!(
        s.record_records(&r, &[bad]).unwrap_err().kind,
        ErrorKind::Invalid
    );
}

both!(api_tokens_are_kept_hashed_and_shown_once);
fn api_tokens_are_kept_hashed_and_shown_once(db: Db) {
    let mut s = Store::open(&db.url()).unwrap();
    let viewer = s.create_token("alice", Role::Viewer).unwrap();
    let admin = s.create_token("ops", Role::Admin).unwrap();
    assert!(viewer.starts_with(TOKEN_PREFIX) && viewer.len() == TOKEN_PREFIX.len() + 64);
    assert_ne!(viewer, admin);
    let t = s.token(&viewer).unwrap().expect("the viewer token");
    assert_eq!((t.name.as_str(), t.role), ("alice", Role::Viewer));
    assert_eq!(s.token(&admin).unwrap().unwrap().role, Role::Admin);
    // One character off, or no prefix: no token.
    let mut wrong = viewer.clone();
    wrong.pop();
    wrong.push(if viewer.ends_with('0') { '1' } else { '0' });
    assert_eq!(s.token(&wrong).unwrap(), None);
    assert_eq!(s.token("").unwrap(), None);
    assert_eq!(
        s.create_token("  ", Role::Viewer).unwrap_err().kind,
        ErrorKind::Invalid
    );
    drop(s);
    // The database holds the digest, never the token.
    let bytes = db.contents();
    assert!(contains(&bytes, "alice"), "the dump holds the tokens' rows");
    for token in [&viewer, &admin] {
        assert!(
            !contains(&bytes, &token[TOKEN_PREFIX.len()..]),
            "token stored in clear"
        );
    }
}

both!(a_bulk_triage_changes_all_or_nothing);
fn a_bulk_triage_changes_all_or_nothing(db: Db) {
    let sec = secrets(15, 3);
    let mut s = Store::open(&db.url()).unwrap();
    let f: Vec<_> = sec
        .iter()
        .enumerate()
        .map(|(i, x)| finding("github.pat.classic", x, &format!("{i}.env"), 1))
        .collect();
    s.record_run(
        &run("repo", true, "2026-12-01T00:00:00.000000Z"),
        &f,
        &no_owner,
    )
    .unwrap();
    let change = Triage {
        status: Some(Status::Revoked),
        comment: Some("rotated".into()),
        ..triage("alice")
    };
    // One unknown: nothing changes, the error names it.
    let e = s
        .triage_many(
            &[f[0].fingerprint.0.clone(), "00ff00ff00ff".into()],
            &change,
        )
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    assert!(e.to_string().contains("00ff00ff00ff"), "{e}");
    assert_eq!(s.history(&f[0].fingerprint.0).unwrap().0, vec![]);
    // A version, or no actor: refused.
    let stale = Triage {
        if_version: Some(1),
        ..change.clone()
    };
    let fps = vec![f[0].fingerprint.0.clone(), f[1].fingerprint.0.clone()];
    assert_eq!(
        s.triage_many(&fps, &stale).unwrap_err().kind,
        ErrorKind::Invalid
    );
    assert_eq!(
        s.triage_many(&fps, &triage(" ")).unwrap_err().kind,
        ErrorKind::Invalid
    );
    // Both (one named twice, by either form): each changed once, audited.
    let mut named = fps.clone();
    named.push(s.store_id(&f[1].fingerprint.0));
    let out = s.triage_many(&named, &change).unwrap();
    assert_eq!(out.len(), 2);
    for (o, fp) in out.iter().zip(&fps) {
        assert_eq!(o.finding.fingerprint.0, s.store_id(fp));
        assert_eq!((o.status, o.version), (Status::Revoked, 2));
        let (audit, comments) = s.history(fp).unwrap();
        let fields: Vec<_> = audit
            .iter()
            .map(|a| (a.actor.as_str(), a.field.as_str(), a.version))
            .collect();
        assert_eq!(fields, [("alice", "status", 2), ("alice", "comment", 2)]);
        assert_eq!(comments.len(), 1);
    }
    let third = s.finding(&f[2].fingerprint.0).unwrap().unwrap();
    assert_eq!((third.status, third.version), (Status::Open, 1));
}

/// Whether the store's connections to `db` are encrypted, as the server
/// sees them (None: no connection of the store).
fn encrypted(db: &common::PgDb) -> Option<bool> {
    let rows = common::pg_admin()
        .query(
            "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.datname = $1",
            &[&db.name],
        )
        .unwrap();
    rows.first().map(|r| r.get(0))
}

/// The certificate the local server presents, and the name it is for.
fn server_certificate() -> (std::path::PathBuf, String) {
    let mut admin = common::pg_admin();
    let ssl: String = admin.query_one("SHOW ssl", &[]).unwrap().get(0);
    assert_eq!(
        ssl, "on",
        "PostgreSQL on 127.0.0.1:5432 must have ssl=on for the TLS tests (scripts/install-test-deps.sh turns it on)"
    );
    let file: String = admin.query_one("SHOW ssl_cert_file", &[]).unwrap().get(0);
    let path = if std::path::Path::new(&file).is_absolute() {
        std::path::PathBuf::from(&file)
    } else {
        let data: String = admin.query_one("SHOW data_directory", &[]).unwrap().get(0);
        std::path::Path::new(&data).join(&file)
    };
    let out = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-subject", "-nameopt", "multiline", "-in"])
        .arg(&path)
        .output()
        .expect("openssl (scripts/install-test-deps.sh installs it)");
    assert!(
        out.status.success(),
        "openssl x509 {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let cn = text
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("commonName")
                .map(|v| v.trim().trim_start_matches('=').trim().to_string())
        })
        .unwrap_or_else(|| panic!("no commonName in {}: {text}", path.display()));
    (path, cn)
}

#[test]
fn postgres_url_parameters_are_honoured_or_refused_clearly() {
    let db = common::PgDb::new();
    let (cert, name) = server_certificate();
    // disable: plain text; prefer (the default) and require: encrypted,
    // the certificate not checked (libpq's meanings).
    for (mode, tls) in [("disable", false), ("prefer", true), ("require", true)] {
        let mut s = Store::open(&format!("{}?sslmode={mode}", db.url())).expect(mode);
        assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
        assert_eq!(encrypted(&db), Some(tls), "sslmode={mode}");
        drop(s);
    }
    // verify-ca: the chain must lead to sslrootcert (the server's
    // self-signed certificate here), whatever the host is called.
    let rooted = format!(
        "{}?sslmode=verify-ca&sslrootcert={}",
        db.url(),
        cert.display()
    );
    let mut s = Store::open(&rooted).expect("verify-ca");
    assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(encrypted(&db), Some(true));
    drop(s);
    // verify-full: and the name too: 127.0.0.1 is not the certificate's
    // name; the name, with the address to connect to, is.
    let url = format!(
        "postgres://postgres:hunter2@127.0.0.1:5432/{}?sslmode=verify-full&sslrootcert={}",
        db.name,
        cert.display()
    );
    let e = Store::open(&url).unwrap_err();
    assert!(e.to_string().contains("TLS"), "{e}");
    assert!(e.to_string().contains("not valid for name"), "{e}");
    assert!(!e.to_string().contains("hunter2"), "{e}");
    assert_ne!(e.kind, ErrorKind::Unreachable, "{e}");
    // (Another database: a store named by another host name has a key
    // file of its own.)
    let db2 = common::PgDb::new();
    let full = format!(
        "postgres://postgres@{name}:5432/{}?hostaddr=127.0.0.1&sslmode=verify-full&sslrootcert={}",
        db2.name,
        cert.display()
    );
    let mut s = Store::open(&full).expect("verify-full with the certificate's name");
    assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
    assert!(s.location().starts_with("postgres://"), "{}", s.location());
    assert_eq!(encrypted(&db2), Some(true));
    drop(s);
    // A root the server's certificate does not chain to.
    let other = tempfile::tempdir().unwrap();
    let (other_pem, _) = keytrail_testkit::tools::self_signed_cert(other.path(), "other-ca");
    let e = Store::open(&format!(
        "{}?sslmode=verify-ca&sslrootcert={}",
        db.url(),
        other_pem.display()
    ))
    .unwrap_err();
    assert!(e.to_string().contains("UnknownIssuer"), "{e}");
    // Without sslrootcert, the system's trust store: a self-signed
    // certificate is not in it.
    let e = Store::open(&format!("{}?sslmode=verify-full", db.url())).unwrap_err();
    assert!(e.to_string().contains("TLS"), "{e}");
    // A missing root file and an unknown mode: named, before connecting.
    let e = Store::open(&format!(
        "{}?sslmode=verify-ca&sslrootcert=/nonexistent/ca.pem",
        db.url()
    ))
    .unwrap_err();
    assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
    let e = Store::open(&format!("{}?sslmode=verify", db.url())).unwrap_err();
    assert!(e.to_string().contains("verify-full"), "{e}");
    // A statement past the timeout is cancelled: a clear error, nothing written.
    let opts = OpenOptions {
        statement_timeout: Some(std::time::Duration::from_millis(200)),
        ..OpenOptions::default()
    };
    let mut s = Store::open_with(&db.url(), &opts).unwrap();
    let sec = secrets(16, 1);
    let f = finding("github.pat.classic", &sec[0], "a.env", 1);
    s.record_run(
        &run("repo", true, "2026-12-01T00:00:00.000000Z"),
        std::slice::from_ref(&f),
        &no_owner,
    )
    .unwrap();
    let id = s.store_id(&f.fingerprint.0);
    let mut holder = db.client();
    holder.batch_execute("BEGIN").unwrap();
    holder
        .execute(
            "SELECT 1 FROM findings WHERE fingerprint = $1 FOR UPDATE",
            &[&id],
        )
        .unwrap();
    let t = Triage {
        status: Some(Status::Revoked),
        ..triage("alice")
    };
    let e = s.triage(&f.fingerprint.0, &t).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
    assert!(e.to_string().contains("nothing was written"), "{e}");
    holder.batch_execute("ROLLBACK").unwrap();
    let now = s.finding(&f.fingerprint.0).unwrap().unwrap();
    assert_eq!((now.status, now.version), (Status::Open, 1));
    assert_eq!(
        s.triage(&f.fingerprint.0, &t).unwrap().status,
        Status::Revoked
    );
}

both!(a_decoded_location_keeps_how_it_was_encoded);
fn a_decoded_location_keeps_how_it_was_encoded(db: Db) {
    let sec = secrets(17, 1);
    let mut f = finding("github.pat.classic", &sec[0], "ci.yml", 4);
    f.locations[0].decoded = Some("base64".into());
    let mut plain = f.locations[0].clone();
    plain.path = "plain.env".into();
    plain.decoded = None;
    f.locations.push(plain);
    let mut s = Store::open(&db.url()).unwrap();
    s.record_run(
        &run("repo", true, "2026-12-01T00:00:00.000000Z"),
        std::slice::from_ref(&f),
        &no_owner,
    )
    .unwrap();
    let got = s.finding(&f.fingerprint.0).unwrap().unwrap();
    let by_path = |p: &str| {
        got.finding
            .locations
            .iter()
            .find(|l| l.path == p)
            .unwrap()
            .decoded
            .clone()
    };
    assert_eq!(by_path("ci.yml").as_deref(), Some("base64"));
    assert_eq!(by_path("plain.env"), None);
}

both!(sessions_expire_and_end_with_their_token);
fn sessions_expire_and_end_with_their_token(db: Db) {
    let mut s = Store::open(&db.url()).unwrap();
    s.create_token("alice", Role::Triager).unwrap();
    let id = s.tokens().unwrap()[0].id;
    let hour = std::time::Duration::from_secs(3600);
    s.create_session("aa", id, "csrf-a", hour).unwrap();
    s.create_session("bb", id, "csrf-b", std::time::Duration::ZERO)
        .unwrap();
    let (t, csrf) = s.session("aa").unwrap().expect("a live session");
    assert_eq!(
        (t.name.as_str(), t.role, csrf.as_str()),
        ("alice", Role::Triager, "csrf-a")
    );
    assert_eq!(s.session("bb").unwrap(), None, "expired");
    assert_eq!(s.session("cc").unwrap(), None, "unknown");
    // Reopened (another process, a restart): still there.
    drop(s);
    let mut s = Store::open(&db.url()).unwrap();
    assert!(s.session("aa").unwrap().is_some());
    s.revoke_token(id, "bob").unwrap();
    assert_eq!(s.session("aa").unwrap(), None, "its token was revoked");
    s.end_session("aa").unwrap();
}

//! Shared fixtures of the store tests: findings holding fake secrets made
//! at test time, and throw-away PostgreSQL databases on the local server.

#![allow(dead_code)]

use keytrail_types::{Confidence, Finding, Fingerprint, Location, Origin, Secret, Severity};
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The local PostgreSQL server of the tests (trust authentication).
pub const PG_ADMIN: &str = "host=127.0.0.1 port=5432 user=postgres dbname=postgres";

/// A connection to the local server's maintenance database; panics naming
/// what to start when the server is not there (tests never skip).
pub fn pg_admin() -> postgres::Client {
    postgres::Client::connect(PG_ADMIN, postgres::NoTls).unwrap_or_else(|e| {
        panic!(
            "PostgreSQL must listen on 127.0.0.1:5432 with trust authentication for user postgres \
(scripts/install-test-deps.sh starts it): {e}"
        )
    })
}

/// A database created for one test and dropped when it ends.
pub struct PgDb {
    pub name: String,
}

impl PgDb {
    pub fn new() -> PgDb {
        static N: AtomicUsize = AtomicUsize::new(0);
        let mut r = [0u8; 4];
        rand::fill(&mut r);
        let name = format!(
            "kt_store_{}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst),
            u32::from_le_bytes(r)
        );
        pg_admin()
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("CREATE DATABASE");
        PgDb { name }
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.name)
    }

    pub fn client(&self) -> postgres::Client {
        postgres::Client::connect(
            &format!(
                "host=127.0.0.1 port=5432 user=postgres dbname={}",
                self.name
            ),
            postgres::NoTls,
        )
        .expect("connect to the test database")
    }

    /// Every row of every table of the database, as text (a dump).
    pub fn dump(&self) -> String {
        let mut c = self.client();
        let tables: Vec<String> = c
            .query(
                "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'",
                &[],
            )
            .expect("list tables")
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert!(tables.len() >= 5, "the store's tables exist: {tables:?}");
        let mut out = String::new();
        for t in tables {
            for r in c
                .query(&format!("SELECT t::text FROM {t} t"), &[])
                .expect("dump table")
            {
                out.push_str(&t);
                out.push(' ');
                out.push_str(&r.get::<_, String>(0));
                out.push('\n');
            }
        }
        out
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let _ = pg_admin().batch_execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
    }
}

/// A store location of each kind for one test: a SQLite file in a
/// temporary directory, or a fresh PostgreSQL database.
pub enum Db {
    Sqlite(tempfile::TempDir),
    Postgres(PgDb),
}

impl Db {
    pub fn sqlite() -> Db {
        Db::Sqlite(tempfile::tempdir().expect("tempdir"))
    }
    pub fn postgres() -> Db {
        Db::Postgres(PgDb::new())
    }
    pub fn url(&self) -> String {
        match self {
            Db::Sqlite(d) => d.path().join("keytrail.db").display().to_string(),
            Db::Postgres(p) => p.url(),
        }
    }
    /// Everything the database holds on disk (SQLite: every file's bytes;
    /// PostgreSQL: a dump of every table).
    pub fn contents(&self) -> Vec<u8> {
        match self {
            Db::Sqlite(d) => {
                let mut out = Vec::new();
                for e in std::fs::read_dir(d.path()).expect("read dir") {
                    let p = e.expect("entry").path();
                    out.extend(std::fs::read(&p).expect("read db file"));
                }
                assert!(!out.is_empty(), "the SQLite file exists");
                out
            }
            Db::Postgres(p) => p.dump().into_bytes(),
        }
    }
    /// [`Db::contents`] without the key file beside a SQLite file (its
    /// hex digits could hold any short text by chance).
    pub fn contents_without_key(&self) -> Vec<u8> {
        match self {
            Db::Sqlite(d) => {
                let mut out = Vec::new();
                for e in std::fs::read_dir(d.path()).expect("read dir") {
                    let p = e.expect("entry").path();
                    if p.extension().is_some_and(|x| x == "key") {
                        continue;
                    }
                    out.extend(std::fs::read(&p).expect("read db file"));
                }
                assert!(!out.is_empty(), "the SQLite file exists");
                out
            }
            Db::Postgres(p) => p.dump().into_bytes(),
        }
    }
    /// Run raw SQL on the database (fixtures of earlier schema versions).
    pub fn raw(&self, sql: &str) {
        match self {
            Db::Sqlite(_) => rusqlite::Connection::open(self.url())
                .expect("open")
                .execute_batch(sql)
                .expect("raw SQL"),
            Db::Postgres(p) => p.client().batch_execute(sql).expect("raw SQL"),
        }
    }
}

/// Fingerprint as the scanner computes it (first 16 bytes of SHA-256 of
/// rule NUL secret).
pub fn fingerprint(rule: &str, secret: &str) -> Fingerprint {
    let mut h = Sha256::new();
    h.update(rule.as_bytes());
    h.update([0]);
    h.update(secret.as_bytes());
    Fingerprint(
        h.finalize()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
    )
}

/// A finding of `rule` for `secret` at `path:line`, its snippet masked as
/// the scanner masks it.
pub fn finding(rule: &str, secret: &str, path: &str, line: u64) -> Finding {
    let s = Secret::new(secret.to_string());
    Finding {
        rule_id: rule.to_string(),
        rule_name: format!("{rule} rule"),
        confidence: Confidence::High,
        severity: Severity::High,
        fingerprint: fingerprint(rule, secret),
        secret_redacted: s.redacted(),
        secret: s,
        context: Vec::new(),
        locations: vec![Location {
            path: path.to_string(),
            line,
            column: 7,
            offset: 100 * line,
            snippet: format!("token = {}", "*".repeat(12)),
            origin: Origin::File,
            decoded: None,
        }],
        notes: vec!["checksum valid".into()],
        remediation: None,
        verification: None,
        blast_radius: None,
    }
}

/// `n` distinct fake GitHub tokens.
pub fn secrets(seed: u64, n: usize) -> Vec<String> {
    let mut f = keytrail_testkit::secrets::FakeSecrets::new(seed);
    (0..n).map(|_| f.github_classic()).collect()
}

/// Whether `needle` occurs in `hay`.
pub fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

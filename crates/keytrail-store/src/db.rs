//! The two database back-ends behind one small interface: run a statement,
//! run a query, run a batch of statements. SQL is written once with `?`
//! placeholders (numbered `$1…` for PostgreSQL here) and values are
//! [`Val`]s, so the store's queries do not care which database they run on.

use crate::error::{ErrorKind, StoreError};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A value bound to a placeholder or read from a column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Val {
    Int(i64),
    Text(String),
    /// NULL where a text is expected.
    Null,
    /// An array of integers (PostgreSQL only: `= ANY(?)`).
    Ints(Vec<i64>),
}

impl From<i64> for Val {
    fn from(v: i64) -> Self {
        Val::Int(v)
    }
}
impl From<&str> for Val {
    fn from(v: &str) -> Self {
        Val::Text(v.to_string())
    }
}
impl From<String> for Val {
    fn from(v: String) -> Self {
        Val::Text(v)
    }
}
impl From<Option<String>> for Val {
    fn from(v: Option<String>) -> Self {
        v.map_or(Val::Null, Val::Text)
    }
}
impl From<Option<&str>> for Val {
    fn from(v: Option<&str>) -> Self {
        v.map_or(Val::Null, |s| Val::Text(s.to_string()))
    }
}

/// One result row.
#[derive(Debug, Clone)]
pub(crate) struct Row(pub Vec<Val>);

impl Row {
    pub fn int(&self, i: usize) -> i64 {
        match &self.0[i] {
            Val::Int(v) => *v,
            Val::Text(t) => t.parse().unwrap_or(0),
            Val::Null | Val::Ints(_) => 0,
        }
    }
    pub fn text(&self, i: usize) -> String {
        self.opt_text(i).unwrap_or_default()
    }
    pub fn opt_text(&self, i: usize) -> Option<String> {
        match &self.0[i] {
            Val::Int(v) => Some(v.to_string()),
            Val::Text(t) => Some(t.clone()),
            Val::Null | Val::Ints(_) => None,
        }
    }
}

/// Which SQL dialect a connection speaks, where the store's SQL differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// An open connection.
pub(crate) enum Conn {
    Sqlite {
        conn: rusqlite::Connection,
        path: PathBuf,
    },
    Postgres {
        client: Box<postgres::Client>,
        /// Prepared statements by SQL text (prepared once per connection).
        prepared: HashMap<String, postgres::Statement>,
        /// The URL without its password, for messages.
        shown: String,
    },
}

/// `?` placeholders to PostgreSQL's `$1`, `$2`… (the store's SQL has no
/// `?` inside string literals).
pub(crate) fn number_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    out
}

/// A PostgreSQL URL with its password replaced by `***`.
pub(crate) fn hide_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (auth_end, _) = match rest.find(['/', '?']) {
        Some(i) => (i, ()),
        None => (rest.len(), ()),
    };
    let authority = &rest[..auth_end];
    match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!(
                    "{scheme}://{user}:***@{}{}",
                    &authority[at + 1..],
                    &rest[auth_end..]
                ),
                None => url.to_string(),
            }
        }
        None => url.to_string(),
    }
}

impl Conn {
    /// Open (creating it when absent) the SQLite file at `path`.
    pub fn open_sqlite(path: &Path, busy: Duration) -> Result<Conn, StoreError> {
        let shown = path.display().to_string();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && !dir.is_dir()
        {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::new(
                    ErrorKind::Other,
                    format!("{shown}: cannot create its directory: {e}"),
                )
            })?;
        }
        // A new store is readable by its owner only (SQLite gives its
        // journal files the same mode): it names files, identities and
        // owners, if never a secret.
        if !path.exists() {
            let mut o = std::fs::OpenOptions::new();
            o.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
            if let Err(e) = o.open(path)
                && e.kind() != std::io::ErrorKind::AlreadyExists
            {
                return Err(StoreError::new(
                    ErrorKind::Other,
                    format!("{shown}: cannot be created: {e}"),
                ));
            }
        }
        let conn = rusqlite::Connection::open(path)
            .map_err(|e| sqlite_error(&shown, "cannot be opened", e))?;
        conn.busy_timeout(busy)
            .map_err(|e| sqlite_error(&shown, "cannot be opened", e))?;
        let mut c = Conn::Sqlite {
            conn,
            path: path.to_path_buf(),
        };
        // Foreign keys are off by default in SQLite: the schema's
        // references and cascades hold only with them on. WAL lets readers
        // (the coming `keytrail serve`) read while a scan writes; its
        // default synchronous level (FULL) keeps every commit through a
        // power loss. Reading the journal mode is the first read of the
        // file, so a file that is not a database fails here, naming it.
        c.batch("PRAGMA foreign_keys = ON")?;
        // Turning a new file to WAL takes its exclusive lock, and SQLite
        // answers "busy" at once (no busy handler) while another process
        // opening the same new file holds a lock: processes that start
        // together on a new store try again until `busy` has passed.
        let deadline = std::time::Instant::now() + busy;
        let mut pause = Duration::from_millis(5);
        loop {
            match c.query("PRAGMA journal_mode = WAL", &[]) {
                Err(e) if e.kind == ErrorKind::Locked && std::time::Instant::now() < deadline => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(100));
                }
                r => {
                    r?;
                    break;
                }
            }
        }
        Ok(c)
    }

    /// Connect to the PostgreSQL server `url` names.
    pub fn open_postgres(url: &str, timeout: Duration) -> Result<Conn, StoreError> {
        let shown = hide_password(url);
        let tls = crate::tls::split(url)
            .map_err(|e| StoreError::new(ErrorKind::Other, format!("{shown}: {e}")))?;
        let mut config: postgres::Config = tls.url.parse().map_err(|e| {
            StoreError::new(
                ErrorKind::Other,
                format!("{shown}: not a PostgreSQL URL: {e}"),
            )
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(timeout);
        }
        let client = if tls.mode == crate::tls::Mode::Disable {
            config.connect(postgres::NoTls)
        } else {
            let rustls = crate::tls::client_config(tls.mode, tls.root_cert.as_deref())
                .map_err(|e| StoreError::new(ErrorKind::Other, format!("{shown}: {e}")))?;
            config.connect(tokio_postgres_rustls::MakeRustlsConnect::new(rustls))
        }
        .map_err(|e| postgres_error(&shown, e))?;
        Ok(Conn::Postgres {
            client: Box::new(client),
            prepared: HashMap::new(),
            shown,
        })
    }

    pub fn dialect(&self) -> Dialect {
        match self {
            Conn::Sqlite { .. } => Dialect::Sqlite,
            Conn::Postgres { .. } => Dialect::Postgres,
        }
    }

    /// The file path or the URL without its password.
    pub fn shown(&self) -> String {
        match self {
            Conn::Sqlite { path, .. } => path.display().to_string(),
            Conn::Postgres { shown, .. } => shown.clone(),
        }
    }

    /// Run statements without parameters.
    pub fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        let shown = self.shown();
        match self {
            Conn::Sqlite { conn, .. } => conn
                .execute_batch(sql)
                .map_err(|e| sqlite_error(&shown, "", e)),
            Conn::Postgres { client, .. } => client
                .batch_execute(sql)
                .map_err(|e| postgres_error(&shown, e)),
        }
    }

    /// Run one statement; the number of rows it changed.
    pub fn exec(&mut self, sql: &str, params: &[Val]) -> Result<u64, StoreError> {
        let shown = self.shown();
        match self {
            Conn::Sqlite { conn, .. } => {
                let mut st = conn
                    .prepare_cached(sql)
                    .map_err(|e| sqlite_error(&shown, "", e))?;
                let n = st
                    .execute(rusqlite::params_from_iter(params.iter().map(sqlite_value)))
                    .map_err(|e| sqlite_error(&shown, "", e))?;
                Ok(n as u64)
            }
            Conn::Postgres {
                client, prepared, ..
            } => {
                let st =
                    pg_prepare(client, prepared, sql).map_err(|e| postgres_error(&shown, e))?;
                let boxed = pg_params(params);
                let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
                    boxed.iter().map(|b| b.as_ref()).collect();
                client
                    .execute(&st, &refs)
                    .map_err(|e| postgres_error(&shown, e))
            }
        }
    }

    /// Run one query; every row.
    pub fn query(&mut self, sql: &str, params: &[Val]) -> Result<Vec<Row>, StoreError> {
        let shown = self.shown();
        match self {
            Conn::Sqlite { conn, .. } => {
                let mut st = conn
                    .prepare_cached(sql)
                    .map_err(|e| sqlite_error(&shown, "", e))?;
                let n = st.column_count();
                let mut rows = st
                    .query(rusqlite::params_from_iter(params.iter().map(sqlite_value)))
                    .map_err(|e| sqlite_error(&shown, "", e))?;
                let mut out = Vec::new();
                while let Some(r) = rows.next().map_err(|e| sqlite_error(&shown, "", e))? {
                    let mut vals = Vec::with_capacity(n);
                    for i in 0..n {
                        use rusqlite::types::ValueRef;
                        let v = match r.get_ref(i).map_err(|e| sqlite_error(&shown, "", e))? {
                            ValueRef::Null => Val::Null,
                            ValueRef::Integer(i) => Val::Int(i),
                            ValueRef::Real(f) => Val::Text(f.to_string()),
                            ValueRef::Text(t) | ValueRef::Blob(t) => {
                                Val::Text(String::from_utf8_lossy(t).into_owned())
                            }
                        };
                        vals.push(v);
                    }
                    out.push(Row(vals));
                }
                Ok(out)
            }
            Conn::Postgres {
                client, prepared, ..
            } => {
                let st =
                    pg_prepare(client, prepared, sql).map_err(|e| postgres_error(&shown, e))?;
                let boxed = pg_params(params);
                let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
                    boxed.iter().map(|b| b.as_ref()).collect();
                let rows = client
                    .query(&st, &refs)
                    .map_err(|e| postgres_error(&shown, e))?;
                let mut out = Vec::with_capacity(rows.len());
                for r in rows {
                    let mut vals = Vec::with_capacity(r.len());
                    for (i, col) in r.columns().iter().enumerate() {
                        use postgres::types::Type;
                        let ty = col.type_();
                        let v = if *ty == Type::INT8 {
                            r.get::<_, Option<i64>>(i).map_or(Val::Null, Val::Int)
                        } else if *ty == Type::INT4 {
                            r.get::<_, Option<i32>>(i)
                                .map_or(Val::Null, |v| Val::Int(v.into()))
                        } else if *ty == Type::INT2 {
                            r.get::<_, Option<i16>>(i)
                                .map_or(Val::Null, |v| Val::Int(v.into()))
                        } else if *ty == Type::BOOL {
                            r.get::<_, Option<bool>>(i)
                                .map_or(Val::Null, |v| Val::Int(v.into()))
                        } else {
                            r.get::<_, Option<String>>(i).map_or(Val::Null, Val::Text)
                        };
                        vals.push(v);
                    }
                    out.push(Row(vals));
                }
                Ok(out)
            }
        }
    }

    /// Run `f` in a write transaction: committed when it returns `Ok`,
    /// rolled back otherwise. SQLite takes the write lock at the start
    /// (`BEGIN IMMEDIATE`), so two writers never both read then write.
    pub fn write<T>(
        &mut self,
        f: impl FnOnce(&mut Conn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        match self.dialect() {
            Dialect::Sqlite => self.batch("BEGIN IMMEDIATE")?,
            Dialect::Postgres => self.batch("BEGIN")?,
        }
        match f(self) {
            Ok(v) => {
                if let Err(e) = self.batch("COMMIT") {
                    let _ = self.batch("ROLLBACK");
                    return Err(e);
                }
                Ok(v)
            }
            Err(e) => {
                // The error that stopped the work is the one to report; a
                // failed rollback (connection gone) changes nothing stored.
                let _ = self.batch("ROLLBACK");
                Err(e)
            }
        }
    }
}

fn sqlite_value(v: &Val) -> rusqlite::types::Value {
    match v {
        Val::Int(i) => rusqlite::types::Value::Integer(*i),
        Val::Text(t) => rusqlite::types::Value::Text(t.clone()),
        // Never bound on SQLite (the store uses `IN (…)` lists there).
        Val::Null | Val::Ints(_) => rusqlite::types::Value::Null,
    }
}

fn pg_params(params: &[Val]) -> Vec<Box<dyn postgres::types::ToSql + Sync>> {
    params
        .iter()
        .map(|v| -> Box<dyn postgres::types::ToSql + Sync> {
            match v {
                Val::Int(i) => Box::new(*i),
                Val::Text(t) => Box::new(t.clone()),
                Val::Null => Box::new(None::<String>),
                Val::Ints(v) => Box::new(v.clone()),
            }
        })
        .collect()
}

fn pg_prepare(
    client: &mut postgres::Client,
    prepared: &mut HashMap<String, postgres::Statement>,
    sql: &str,
) -> Result<postgres::Statement, postgres::Error> {
    if let Some(st) = prepared.get(sql) {
        return Ok(st.clone());
    }
    let st = client.prepare(&number_placeholders(sql))?;
    // Statements of many-row inserts differ by their row count; keep the
    // cache from growing without bound.
    if prepared.len() > 256 {
        prepared.clear();
    }
    prepared.insert(sql.to_string(), st.clone());
    Ok(st)
}

/// A SQLite error as a store error naming the file.
pub(crate) fn sqlite_error(shown: &str, what: &str, e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode;
    let what = if what.is_empty() {
        String::new()
    } else {
        format!("{what}: ")
    };
    if let rusqlite::Error::SqliteFailure(f, _) = &e {
        match f.code {
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => {
                return StoreError::new(
                    ErrorKind::Locked,
                    format!(
                        "{shown}: {what}the database is locked by another process or connection \
(gave up waiting); nothing was written: try again when it is released"
                    ),
                );
            }
            ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt => {
                return StoreError::new(
                    ErrorKind::Corrupt,
                    format!(
                        "{shown}: {what}not a keytrail database or corrupt ({e}); nothing was written: \
restore it from a copy, or move it away to start a new one"
                    ),
                );
            }
            ErrorCode::CannotOpen | ErrorCode::ReadOnly | ErrorCode::PermissionDenied => {
                return StoreError::new(ErrorKind::Other, format!("{shown}: {what}{e}"));
            }
            _ => {}
        }
    }
    StoreError::new(ErrorKind::Other, format!("{shown}: {what}{e}"))
}

/// A PostgreSQL error as a store error naming the server (without password).
pub(crate) fn postgres_error(shown: &str, e: postgres::Error) -> StoreError {
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        // Class 08 (connection exception) and 57P0x (the server shut down
        // or terminated the session): the database went away.
        let kind = if code.starts_with("08") || code.starts_with("57P") {
            ErrorKind::Unreachable
        } else if code == "57014" {
            // query_canceled: the statement timeout (or an admin's cancel).
            ErrorKind::Timeout
        } else if code == "40001" || code == "40P01" {
            ErrorKind::Conflict
        } else {
            ErrorKind::Other
        };
        let mut msg = format!("{shown}: {} ({code})", db.message());
        if kind == ErrorKind::Unreachable {
            msg.push_str("; the connection is gone: what was not committed was rolled back");
        }
        if kind == ErrorKind::Timeout {
            msg.push_str(
                "; the statement ran past the statement timeout and was cancelled: nothing was written",
            );
        }
        return StoreError::new(kind, msg);
    }
    let mut detail = e.to_string();
    // An I/O error anywhere in the chain (a reset, a refused or broken
    // socket) is the server going away too: which one the client sees
    // depends on whether the server's goodbye arrived before the reset.
    let mut io = false;
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        detail.push_str(": ");
        detail.push_str(&s.to_string());
        io |= s.downcast_ref::<std::io::Error>().is_some();
        src = s.source();
    }
    let lower = detail.to_ascii_lowercase();
    if lower.contains("invalid peer certificate") || lower.contains("tls handshake") {
        // Reachable, but not the server the URL's TLS settings accept:
        // retrying will not help.
        return StoreError::new(
            ErrorKind::Other,
            format!(
                "{shown}: TLS: {detail}; sslmode=verify-ca checks the server's certificate against sslrootcert (or the system's trust store), verify-full also its name against the host"
            ),
        );
    }
    if lower.contains("server does not support tls") {
        return StoreError::new(
            ErrorKind::Other,
            format!("{shown}: {detail}: the URL's sslmode requires TLS and the server has none"),
        );
    }
    if e.is_closed()
        || io
        || lower.contains("connection")
        || lower.contains("error connecting")
        || lower.contains("error communicating with the server")
    {
        return StoreError::new(
            ErrorKind::Unreachable,
            format!(
                "{shown}: the PostgreSQL server cannot be reached or closed the connection ({detail}); \
what was not committed was rolled back"
            ),
        );
    }
    StoreError::new(ErrorKind::Other, format!("{shown}: {detail}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_in_order() {
        assert_eq!(
            number_placeholders("SELECT a FROM t WHERE b = ? AND c IN (?, ?)"),
            "SELECT a FROM t WHERE b = $1 AND c IN ($2, $3)"
        );
    }

    #[test]
    fn passwords_are_hidden_in_urls() {
        assert_eq!(
            hide_password("postgres://kt:hunter2@db.example:5432/keytrail?sslmode=disable"),
            "postgres://kt:***@db.example:5432/keytrail?sslmode=disable"
        );
        assert_eq!(
            hide_password("postgres://postgres@127.0.0.1/test"),
            "postgres://postgres@127.0.0.1/test"
        );
    }
}

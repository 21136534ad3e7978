//! The store's one error type: a kind callers can act on and a message that
//! names the database (the file, or the URL without its password).

use std::fmt;

/// What went wrong, for callers that react differently (exit codes, HTTP
/// statuses, retries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Another process or connection holds the database's write lock
    /// longer than the wait allows. Nothing was written.
    Locked,
    /// The file is not a SQLite database, or is damaged.
    Corrupt,
    /// The server cannot be reached, or the connection went away.
    Unreachable,
    /// The database was written by a newer keytrail (schema version above
    /// the one this binary knows).
    TooNew,
    /// The database holds tables that are not keytrail's.
    NotKeytrail,
    /// No finding has that fingerprint.
    NotFound,
    /// The finding changed since the version the caller read.
    Conflict,
    /// A PostgreSQL statement ran past the statement timeout and was
    /// cancelled. Nothing was written.
    Timeout,
    /// The store's fingerprint key is missing, unreadable or not this
    /// store's (see [`crate::StoreKey`]). Nothing was written.
    Key,
    /// A value the store refuses (an unknown status, an empty actor).
    Invalid,
    /// Anything else the database reported.
    Other,
}

/// An error of the store.
#[derive(Debug, Clone)]
pub struct StoreError {
    /// What went wrong.
    pub kind: ErrorKind,
    /// Human message naming the database; no trailing period.
    pub message: String,
}

impl StoreError {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> StoreError {
        StoreError {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StoreError {}

//! keytrail's CI guard: everything about credentials in CI pipelines.
//!
//! - [`redact`]: a streaming filter that masks secrets (rule matches and
//!   known values in their encoded forms) in logs as they pass through.
//! - [`audit`]: `ci-audit`, checks over GitHub Actions workflows,
//!   composite actions and GitLab CI files, with [`audit::CiFinding`]
//!   records and their JSON, JSONL, SARIF and human encoders.
//! - [`hook`]: installing the git pre-commit hook.
//!
//! Engines here take bytes and paths and return records plus
//! [`Diagnostic`](keytrail_types::Diagnostic)s; only [`hook`] runs `git`.
//! Nothing here prints: the CLI decides what reaches the terminal.

pub mod audit;
pub mod hook;
pub mod redact;

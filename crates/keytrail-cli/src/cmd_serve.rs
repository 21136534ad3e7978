//! `keytrail serve` (the store over HTTP: keytrail-server's API) and
//! `keytrail token create` (an API token for it, printed once, kept
//! hashed in the store).

use crate::ExitStatus;
use crate::cmd_store::{DbArg, open};
use clap::{Args, Subcommand};
use keytrail_store::Role;
use std::io::Write;
use std::net::SocketAddr;

/// `keytrail serve`.
#[derive(Debug, Args)]
#[command(
    after_help = "Every route but /api/v1/openapi.json needs `Authorization: Bearer TOKEN` \
(`keytrail token create`) or a dashboard session (log in at /login by pasting a token): 401 \
without either, 403 without the route's role. The dashboard is at /. Runs until \
Ctrl-C or SIGTERM. Exit codes: 0 = stopped, 2 = error (a store that cannot be opened, an address \
in use).\n\n\
Examples:\n  keytrail token create --db findings.db --role viewer --name dashboard\n  \
keytrail serve --db findings.db --listen 127.0.0.1:8080\n  \
curl -H \"Authorization: Bearer $TOKEN\" 'http://127.0.0.1:8080/api/v1/findings?status=open&min_severity=high'"
)]
pub struct ServeArgs {
    /// The store.
    #[command(flatten)]
    pub db: DbArg,

    /// The address to listen on (port 0 picks a free one, printed on
    /// stderr). The API has no TLS: keep it on loopback or behind a
    /// reverse proxy that terminates TLS.
    ///
    /// Example: `--listen 127.0.0.1:8080`
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Mark the dashboard's session cookie `Secure`, so browsers send it
    /// over HTTPS only: use it behind a reverse proxy that terminates TLS.
    ///
    /// Example: `keytrail serve --db findings.db --secure-cookies`
    #[arg(long)]
    pub secure_cookies: bool,

    /// PostgreSQL: the longest one database statement of a request may
    /// run, in seconds, before the server cancels it (the request answers
    /// 503 `database_timeout`, nothing is written); 0: no limit.
    ///
    /// Example: `--statement-timeout 5`
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub statement_timeout: u64,
}

/// `keytrail token …`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make an API token for `keytrail serve` and print it once (the store keeps its SHA-256).
    Create(TokenCreateArgs),
    /// Every API token (never the token itself): id, name, role, made, revoked, by whom.
    List(TokenListArgs),
    /// Revoke an API token: from now on it and the sessions opened with it get 401.
    Revoke(TokenRevokeArgs),
}

/// `keytrail token list`.
#[derive(Debug, Args)]
#[command(
    after_help = "One JSON object per line: {\"id\", \"name\", \"role\", \"created_at\", \"revoked_at\", \"revoked_by\"}; \
`--format human` writes a table. Exit codes: 0 = listed, 2 = error.\n\n\
Examples:\n  keytrail token list --db findings.db\n  keytrail token list --db findings.db --format human"
)]
pub struct TokenListArgs {
    /// The store.
    #[command(flatten)]
    pub db: DbArg,

    /// `jsonl` (one object per token) or `human` (a table).
    ///
    /// Example: `--format human`
    #[arg(long, value_name = "FORMAT", default_value = "jsonl", value_parser = ["jsonl", "human"])]
    pub format: String,
}

/// `keytrail token revoke`.
#[derive(Debug, Args)]
#[command(
    after_help = "The token keeps its row (its name stays the actor of its changes), with when \
and by whom it was revoked. Exit codes: 0 = revoked (or already), 2 = error (an unknown id).\n\n\
Examples:\n  keytrail token revoke --db findings.db 3 --actor alice"
)]
pub struct TokenRevokeArgs {
    /// The store.
    #[command(flatten)]
    pub db: DbArg,

    /// The token's id, as `keytrail token list` shows it.
    ///
    /// Example: `3`
    #[arg(value_name = "ID")]
    pub id: i64,

    /// Who revokes it [default: $KEYTRAIL_ACTOR, else $USER].
    ///
    /// Example: `--actor alice`
    #[arg(long, value_name = "NAME")]
    pub actor: Option<String>,
}

/// `keytrail token create`.
#[derive(Debug, Args)]
#[command(
    after_help = "The token is printed once on stdout; the store keeps only its SHA-256, \
so a lost token cannot be shown again: make another. Exit codes: 0 = made, 2 = error.\n\n\
Examples:\n  keytrail token create --db findings.db --role triager --name alice\n  \
TOKEN=$(keytrail token create --db postgres://keytrail@db.internal/keytrail --role viewer --name grafana)"
)]
pub struct TokenCreateArgs {
    /// The store (a SQLite file is created when absent).
    #[command(flatten)]
    pub db: DbArg,

    /// What the token may do: `viewer` reads, `triager` reads and triages,
    /// `admin` may do everything.
    ///
    /// Example: `--role triager`
    #[arg(long, value_name = "ROLE", value_parser = parse_role)]
    pub role: Role,

    /// Who the token acts as: the actor recorded in the audit trail of its
    /// triage changes.
    ///
    /// Example: `--name alice`
    #[arg(long, value_name = "NAME")]
    pub name: String,
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse()
}

/// `keytrail serve`: until Ctrl-C or SIGTERM.
pub fn run_serve(args: &ServeArgs) -> anyhow::Result<ExitStatus> {
    let store = open(args.db.db.as_deref(), true)?;
    let location = store.location();
    drop(store);
    let db = match args.db.db.as_deref() {
        Some(d) => d.to_string(),
        None => crate::cmd_store::default_db()?,
    };
    let options = keytrail_server::ServeOptions {
        secure_cookies: args.secure_cookies,
        statement_timeout: (args.statement_timeout > 0)
            .then(|| std::time::Duration::from_secs(args.statement_timeout)),
    };
    keytrail_server::run(&db, args.listen, options, |addr| {
        eprintln!(
            "keytrail serve: {location} on http://{addr}/api/v1 (the dashboard: http://{addr}/; Ctrl-C stops)"
        );
    })
    .map_err(anyhow::Error::msg)?;
    Ok(ExitStatus::Clean)
}

/// `keytrail token …`.
pub fn run_token(cmd: &TokenCommand) -> anyhow::Result<ExitStatus> {
    match cmd {
        TokenCommand::Create(args) => {
            let mut store = open(args.db.db.as_deref(), false)?;
            let token = store.create_token(&args.name, args.role)?;
            let mut out = std::io::stdout().lock();
            writeln!(out, "{token}")?;
            out.flush()?;
            eprintln!(
                "keytrail token: made a {} token for `{}` in {}; it is shown this once (the store keeps its SHA-256)",
                args.role,
                args.name.trim(),
                store.location()
            );
            Ok(ExitStatus::Clean)
        }
        TokenCommand::List(args) => {
            let mut store = open(args.db.db.as_deref(), true)?;
            let tokens = store.tokens()?;
            let mut out = std::io::stdout().lock();
            if args.format == "human" {
                writeln!(
                    out,
                    "{:>4}  {:<24} {:<8} {:<27} revoked",
                    "id", "name", "role", "created"
                )?;
                for t in &tokens {
                    let revoked = match (&t.revoked_at, &t.revoked_by) {
                        (Some(at), Some(by)) => format!("{at} by {by}"),
                        (Some(at), None) => at.clone(),
                        _ => "-".to_string(),
                    };
                    writeln!(
                        out,
                        "{:>4}  {:<24} {:<8} {:<27} {revoked}",
                        t.id, t.name, t.role, t.created_at
                    )?;
                }
            } else {
                for t in &tokens {
                    serde_json::to_writer(&mut out, t)?;
                    out.write_all(b"\n")?;
                }
            }
            out.flush()?;
            Ok(ExitStatus::Clean)
        }
        TokenCommand::Revoke(args) => {
            let actor = args
                .actor
                .clone()
                .or_else(|| std::env::var("KEYTRAIL_ACTOR").ok())
                .or_else(|| std::env::var("USER").ok())
                .filter(|a| !a.trim().is_empty())
                .ok_or_else(|| {
                    anyhow::anyhow!("who revokes it: pass --actor NAME (or set KEYTRAIL_ACTOR)")
                })?;
            let mut store = open(args.db.db.as_deref(), true)?;
            let t = store.revoke_token(args.id, &actor)?;
            let mut out = std::io::stdout().lock();
            serde_json::to_writer(&mut out, &t)?;
            out.write_all(b"\n")?;
            out.flush()?;
            eprintln!(
                "keytrail token: token {} of `{}` revoked ({} by {})",
                t.id,
                t.name,
                t.revoked_at.as_deref().unwrap_or("?"),
                t.revoked_by.as_deref().unwrap_or("?")
            );
            Ok(ExitStatus::Clean)
        }
    }
}

//! The `keytrail` binary: parses arguments, runs one subcommand, prints an
//! error's cause chain once and maps the outcome to an exit code.
//!
//! Exit codes (documented in `--help` and docs/output.md): 0 = nothing
//! found, 1 = findings (or rule problems for `rules check`), 2 = error.

mod args;
mod cmd_baseline;
mod cmd_ci_audit;
mod cmd_collect;
mod cmd_detect;
mod cmd_detect_dist;
mod cmd_discover;
mod cmd_exposure;
mod cmd_hook;
mod cmd_intel;
mod cmd_posture;
mod cmd_redact;
mod cmd_revoke;
mod cmd_rotate;
mod cmd_rules;
mod cmd_scan;
mod cmd_schedule;
mod cmd_serve;
mod cmd_store;
mod cmd_verify;
mod cmd_worker;
mod config;
mod rule_set;
mod run;
mod term;
mod threads;

use clap::Parser;

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Nothing found, or the command succeeded.
    Clean = 0,
    /// Findings were reported (or `rules check` found problems, or `collect`
    /// wrote a partial snapshot).
    Findings = 1,
    /// An error: bad arguments, unreadable rules, or a failed input with `--fail-on-error`.
    Error = 2,
}

fn main() -> std::process::ExitCode {
    let cli = args::Cli::parse();
    let result = match &cli.command {
        args::Command::Scan(a) => cmd_scan::run(a),
        args::Command::Rules(c) => cmd_rules::run(c),
        args::Command::Baseline(c) => cmd_baseline::run(c),
        args::Command::Redact(a) => cmd_redact::run(a),
        args::Command::CiAudit(a) => cmd_ci_audit::run(a),
        args::Command::Hook(c) => cmd_hook::run(c),
        args::Command::Posture(a) => cmd_posture::run_posture(a),
        args::Command::Inventory(a) => cmd_posture::run_inventory(a),
        args::Command::Collect(c) => cmd_collect::run(c),
        args::Command::Intel(c) => cmd_intel::run(c),
        args::Command::Exposure(a) => cmd_exposure::run(a),
        args::Command::Verify(a) => cmd_verify::run(a),
        args::Command::Revoke(a) => cmd_revoke::run(a),
        args::Command::Rotate(c) => cmd_rotate::run(c),
        args::Command::Import(a) => cmd_store::run_import(a),
        args::Command::Findings(a) => cmd_store::run_findings(a),
        args::Command::Runs(a) => cmd_store::run_runs(a),
        args::Command::Triage(a) => cmd_store::run_triage(a),
        args::Command::Serve(a) => cmd_serve::run_serve(a),
        args::Command::Token(c) => cmd_serve::run_token(c),
        args::Command::Submit(c) => cmd_worker::run_submit(c),
        args::Command::Worker(a) => cmd_worker::run_worker(a),
        args::Command::Jobs(a) => cmd_worker::run_jobs(a),
        args::Command::Schedule(c) => cmd_schedule::run(c),
        args::Command::Detect(a) => cmd_detect::run(a).map(|code| match code {
            0 => ExitStatus::Clean,
            1 => ExitStatus::Findings,
            _ => ExitStatus::Error,
        }),
    };
    let status = match result {
        Ok(s) => s,
        Err(e) => {
            if term::is_broken_pipe(&e) {
                return std::process::ExitCode::SUCCESS;
            }
            eprint!("error: {e}");
            for cause in e.chain().skip(1) {
                eprint!(": {cause}");
            }
            eprintln!();
            ExitStatus::Error
        }
    };
    std::process::ExitCode::from(status as u8)
}

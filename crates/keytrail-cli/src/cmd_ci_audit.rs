//! `keytrail ci-audit`: audit GitHub Actions workflows, composite actions
//! and GitLab CI files for credential risks, and report them in the same
//! formats as `scan`.

use crate::ExitStatus;
use crate::args::{ConfidenceArg, FormatArg};
use crate::rule_set;
use crate::term;
use clap::Args;
use keytrail_ci::audit::{self, encode};
use keytrail_scan::Scanner;
use keytrail_types::Severity;
use std::io::{self, Write};
use std::path::PathBuf;

/// `keytrail ci-audit`.
#[derive(Debug, Args)]
#[command(
    after_help = "Reads .github/workflows/*.yml, action.yml/action.yaml and \
.gitlab-ci.yml (with its local includes) under PATH.\n\n\
Exit codes: 0 = nothing found, 1 = findings, 2 = error (or an unreadable/invalid file with --fail-on-error).\n\n\
Examples:\n  keytrail ci-audit .\n  keytrail ci-audit --format sarif -o ci-audit.sarif .\n  \
keytrail ci-audit --min-severity high .github/workflows/release.yml"
)]
pub struct CiAuditArgs {
    /// Repository directory or a single CI file.
    ///
    /// Example: `keytrail ci-audit .`
    #[arg(value_name = "PATH", default_value = ".")]
    pub path: PathBuf,

    /// Output format.
    ///
    /// Example: `--format sarif --output ci-audit.sarif`
    #[arg(long, value_enum, default_value_t = FormatArg::Human)]
    pub format: FormatArg,

    /// Write the report to FILE instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Report only findings at least this severe (info, low, medium, high, critical).
    ///
    /// Example: `--min-severity medium`
    #[arg(long, value_name = "LEVEL", default_value = "info")]
    pub min_severity: Severity,

    /// Add the rules in DIR to the builtin secret rules (repeatable).
    #[arg(long = "rules", value_name = "DIR")]
    pub rules: Vec<PathBuf>,

    /// Secret rules used for plaintext credentials: at least this confident.
    #[arg(long, value_enum, value_name = "LEVEL", default_value_t = ConfidenceArg::Low)]
    pub min_confidence: ConfidenceArg,

    /// Exit with code 2 when a file could not be read or parsed.
    #[arg(long)]
    pub fail_on_error: bool,

    /// Print nothing on stderr except errors.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Run `keytrail ci-audit`.
pub fn run(args: &CiAuditArgs) -> anyhow::Result<ExitStatus> {
    if !args.path.exists() {
        anyhow::bail!("`{}` does not exist", args.path.display());
    }
    let rules = rule_set::at_least(rule_set::load(&args.rules)?, args.min_confidence.into());
    let (scanner, diags) = Scanner::new(rules);
    for d in diags {
        eprintln!("warning: {d}");
    }
    let mut out = audit::audit_path(&args.path, Some(&scanner));
    out.findings.retain(|f| f.severity >= args.min_severity);

    let color = term::color_for_stdout(args.output.is_some());
    let version = env!("CARGO_PKG_VERSION");
    let write = |w: &mut dyn Write| -> io::Result<()> {
        match args.format {
            FormatArg::Human => encode::write_human(w, &out, color),
            FormatArg::Json => encode::write_json(w, &out),
            FormatArg::Jsonl => encode::write_jsonl(w, &out),
            FormatArg::Sarif => encode::write_sarif(w, &out, version),
        }?;
        w.flush()
    };
    match crate::term::write_output(args.output.as_deref(), write) {
        Err(e) if !crate::term::is_broken_pipe(&e) => return Err(e),
        _ => {}
    }
    let errors = out.diagnostics.iter().filter(|d| d.is_error).count();
    for d in &out.diagnostics {
        if d.is_error {
            eprintln!("error: {d}");
        } else if !args.quiet {
            eprintln!("note: {d}");
        }
    }
    if !args.quiet {
        eprintln!("{}", encode::summary_line(&out));
    }
    Ok(if args.fail_on_error && errors > 0 {
        ExitStatus::Error
    } else if out.findings.is_empty() {
        ExitStatus::Clean
    } else {
        ExitStatus::Findings
    })
}

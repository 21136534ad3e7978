//! `keytrail redact`: copy standard input to standard output with secrets
//! masked — every secret-rule match and every known value given with
//! `--secret-env`/`--secrets-file`, also base64, URL, hex and JSON
//! encoded. A streaming filter for CI logs: line-buffered, bounded memory,
//! binary-safe; a closed output pipe ends it quietly with exit code 0.

use crate::ExitStatus;
use crate::args::ConfidenceArg;
use crate::rule_set;
use anyhow::Context;
use clap::Args;
use keytrail_ci::redact::{MaskStyle, RedactorBuilder};
use keytrail_scan::Scanner;
use keytrail_types::Secret;
use std::io::{self, Write};
use std::path::PathBuf;

/// `keytrail redact`.
#[derive(Debug, Args)]
#[command(
    after_help = "Masks are written as [REDACTED:<rule-id>] for rule matches, \
[REDACTED:env:NAME] / [REDACTED:secrets-file:LINE] for known values and \
[REDACTED:private-key] for PEM key bodies; --mask TEXT writes TEXT instead.\n\n\
Exit codes: 0 = done (also when the reader of stdout went away), 2 = error.\n\n\
Examples:\n  ./build.sh 2>&1 | keytrail redact --secret-env NPM_TOKEN AWS_SECRET_ACCESS_KEY\n  \
tail -f app.log | keytrail redact --secrets-file /run/secrets/values --mask '***'"
)]
pub struct RedactArgs {
    /// Mask the value of each environment variable NAME (and its encoded forms).
    ///
    /// Takes one or more names. Example: `--secret-env NPM_TOKEN GITHUB_TOKEN`
    #[arg(long = "secret-env", value_name = "NAME", num_args = 1..)]
    pub secret_env: Vec<String>,

    /// Mask every value listed in FILE: one value per line, exactly as
    /// written (a trailing CR is dropped); empty lines and lines starting
    /// with `#` are skipped. Repeatable.
    ///
    /// Example: `--secrets-file .ci/secret-values`
    #[arg(long = "secrets-file", value_name = "FILE")]
    pub secrets_file: Vec<PathBuf>,

    /// Write TEXT for every masked secret instead of `[REDACTED:<what>]`.
    ///
    /// Example: `--mask '***'`
    #[arg(long, value_name = "TEXT")]
    pub mask: Option<String>,

    /// Add the rules in DIR to the builtin rules (repeatable).
    ///
    /// Example: `--rules ./keytrail-rules`
    #[arg(long = "rules", value_name = "DIR")]
    pub rules: Vec<PathBuf>,

    /// Mask only known values (`--secret-env`, `--secrets-file`), not rule matches.
    #[arg(long)]
    pub no_rules: bool,

    /// Use only rules at least this confident. The default masks generic
    /// `password=...` matches too: over-masking a log costs little.
    #[arg(long, value_enum, value_name = "LEVEL", default_value_t = ConfidenceArg::Low)]
    pub min_confidence: ConfidenceArg,
}

/// Run `keytrail redact`.
pub fn run(args: &RedactArgs) -> anyhow::Result<ExitStatus> {
    let mut b = RedactorBuilder::new();
    if !args.no_rules {
        let rules = rule_set::at_least(rule_set::load(&args.rules)?, args.min_confidence.into());
        let (scanner, diags) = Scanner::new(rules);
        for d in diags {
            eprintln!("warning: {d}");
        }
        b = b.scanner(scanner);
    }
    for name in &args.secret_env {
        match std::env::var_os(name) {
            Some(v) if !v.is_empty() => {
                b = b.known(format!("env:{name}"), Secret::new(v.into_encoded_bytes()));
            }
            _ => eprintln!(
                "warning: environment variable `{name}` is not set or empty; nothing to mask for it"
            ),
        }
    }
    for path in &args.secrets_file {
        let data = std::fs::read(path)
            .with_context(|| format!("cannot read secrets file `{}`", path.display()))?;
        for (i, line) in data.split(|&c| c == b'\n').enumerate() {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() || line.starts_with(b"#") {
                continue;
            }
            b = b.known(
                format!("secrets-file:{}", i + 1),
                Secret::new(line.to_vec()),
            );
        }
    }
    if let Some(m) = &args.mask {
        b = b.mask(MaskStyle::Fixed(m.clone()));
    }
    let (redactor, warnings) = b.build();
    for w in warnings {
        eprintln!("warning: {w}");
    }
    let stdin = io::stdin();
    let stdout = io::stdout();
    let mut out = io::BufWriter::with_capacity(256 << 10, stdout.lock());
    match redactor
        .redact_stream(stdin.lock(), &mut out)
        .and_then(|_| out.flush())
    {
        Ok(()) => Ok(ExitStatus::Clean),
        // The reader went away (`keytrail redact | head`): stop quietly.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(ExitStatus::Clean),
        Err(e) => Err(anyhow::Error::new(e).context("redact failed")),
    }
}

//! `keytrail baseline create`: scan and record every finding's keyed hash.

use crate::ExitStatus;
use crate::args::{BaselineCommand, BaselineCreateArgs};
use crate::run;
use keytrail_session::baseline::Baseline;

/// Run a `keytrail baseline` subcommand.
pub fn run(cmd: &BaselineCommand) -> anyhow::Result<ExitStatus> {
    match cmd {
        BaselineCommand::Create(args) => create(args),
    }
}

fn create(args: &BaselineCreateArgs) -> anyhow::Result<ExitStatus> {
    let settings = crate::config::load(&args.input)?;
    let out = run::scan(
        &args.input,
        args.min_confidence.into(),
        &settings,
        Vec::new(),
        Vec::new(),
    )?;
    let mut baseline = Baseline::new();
    for f in &out.findings {
        baseline.add(f);
    }
    baseline.save(&args.output)?;
    run::print_diagnostics(&out, args.input.quiet);
    if !args.input.quiet {
        eprintln!(
            "recorded {} finding(s) from {} file(s) in {}",
            baseline.entries.len(),
            out.summary.files_scanned,
            args.output.display()
        );
    }
    // Creating a baseline succeeds even with findings: recording them is the point.
    Ok(ExitStatus::Clean)
}

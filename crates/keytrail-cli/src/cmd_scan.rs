//! `keytrail scan`: scan inputs, drop baselined findings, write the report,
//! print the summary on stderr and choose the exit code.

use crate::ExitStatus;
use crate::args::ScanArgs;
use crate::run;
use crate::term;
use keytrail_report::{Report, ReportOptions, write_report};
use keytrail_session::Step;
use keytrail_session::baseline::Baseline;

/// Run `keytrail scan`.
pub fn run(args: &ScanArgs) -> anyhow::Result<ExitStatus> {
    // Read the baseline before scanning: a bad file is a usage error, and
    // finding out after a long scan would waste it.
    let baseline = args.baseline.as_deref().map(Baseline::load).transpose()?;
    let mut settings = crate::config::load(&args.input)?;
    // A config file found in the scanned tree can switch rules off and
    // allow-list findings: say which files were read and what they do,
    // so a tree that hides its own secrets is never silent about it.
    if !args.input.quiet
        && let Some(note) = settings.describe()
    {
        eprintln!("note: {note}");
    }
    if let Some(s) = args.min_severity {
        settings.min_severity = Some(s.into());
    }
    let min_confidence = args
        .min_confidence
        .map(Into::into)
        .or(settings.min_confidence)
        .unwrap_or(keytrail_types::Confidence::Medium);
    // After the steps every scan runs: the severity threshold, then the baseline.
    let mut steps = vec![Step::Keep(Box::new(|f| settings.severe_enough(f)))];
    if let Some(b) = &baseline {
        steps.push(Step::Baseline(b));
    }
    // Opt-in, last: verification and blast radius (keytrail-verify), so
    // only the findings the report keeps are sent to their providers.
    if args.verify.wanted() {
        let quiet = args.input.quiet;
        steps.push(Step::Enrich(Box::new(move |findings| {
            crate::cmd_verify::apply(&args.verify, findings, quiet)
        })));
    }
    let out = run::scan(&args.input, min_confidence, &settings, steps)?;

    let opts = ReportOptions {
        reveal: args.reveal,
        color: term::color_for_stdout(args.output.is_some()),
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        repositories: out.repositories.clone(),
        automation_id: category_id(&args.sarif_category),
        max_locations: (args.max_locations > 0).then_some(args.max_locations),
        finished_unix: None,
    };
    let report = Report {
        findings: &out.findings,
        rules: &out.rules,
        summary: &out.summary,
    };
    let incomplete_run = !out.errors.is_empty() || !out.incomplete.is_empty();
    let status = if !out.failed_targets.is_empty() || (args.fail_on_error && incomplete_run) {
        ExitStatus::Error
    } else {
        args.verify.exit_for(&out.findings)
    };

    let written = match term::write_output(args.output.as_deref(), |w| {
        write_report(w, args.format.into(), &report, &opts)
    }) {
        Ok(()) => true,
        // The reader went away (`keytrail scan . | head`): stop quietly
        // and keep the exit code the scan earned.
        Err(e) if term::is_broken_pipe(&e) => false,
        Err(e) => return Err(e),
    };

    run::print_diagnostics(&out, args.input.quiet);
    if !args.input.quiet && written {
        eprintln!("{}", keytrail_report::summary_line(&out.summary));
        if incomplete_run && !args.fail_on_error {
            eprintln!(
                "\nhint: {} input(s) could not be read and {} archive(s) were only partly scanned; \
pass --fail-on-error to exit with code 2",
                out.errors.len(),
                out.incomplete.len()
            );
        }
    }
    Ok(status)
}

/// `--sarif-category NAME` as an `automationDetails.id`: `NAME/` (GitHub
/// takes the category up to the last slash), or none for an empty NAME.
pub(crate) fn category_id(name: &str) -> Option<String> {
    let name = name.trim().trim_end_matches('/');
    (!name.is_empty()).then(|| format!("{name}/"))
}

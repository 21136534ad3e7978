//! `keytrail scan`: scan inputs, drop baselined findings (and, with `--db`,
//! findings triaged as false positive or accepted risk), write the report,
//! record the run in the store, print the summary on stderr and choose the
//! exit code.

use crate::ExitStatus;
use crate::args::ScanArgs;
use crate::cmd_store::ScanStore;
use crate::run;
use crate::term;
use keytrail_report::{Report, ReportOptions, write_report};
use keytrail_session::baseline::Baseline;
use keytrail_session::{ScanOutput, Step};
use keytrail_store::RunSummary;
use keytrail_types::Finding;
use std::cell::RefCell;
use std::collections::HashSet;

/// A scan done, its report not written yet, its run not recorded yet.
pub struct Scanned {
    /// What the session produced (findings after every step).
    pub out: ScanOutput,
    /// The exit status the scan earned.
    pub status: ExitStatus,
    /// Inputs could not be read or archives were cut by a limit.
    pub incomplete_run: bool,
    store: Option<ScanStore>,
    everything: Vec<Finding>,
    triaged: Vec<Finding>,
    present: Vec<String>,
}

impl Scanned {
    /// Record the run in the store `--db` named, if any: the report's
    /// findings (verified, when asked), then the ones left out of it, as
    /// the scan made them. `None` without a store.
    pub fn record(&mut self, args: &ScanArgs) -> anyhow::Result<Option<RunSummary>> {
        let Some(st) = &mut self.store else {
            return Ok(None);
        };
        let out = &self.out;
        let reported: HashSet<&str> = out
            .findings
            .iter()
            .map(|f| f.fingerprint.0.as_str())
            .collect();
        let others: Vec<Finding> = std::mem::take(&mut self.everything)
            .into_iter()
            .filter(|f| !reported.contains(f.fingerprint.0.as_str()))
            .collect();
        // A recurring scan that read only new commits is partial too.
        let gate = args.input.since_commit.is_some()
            || args.input.range.is_some()
            || args.input.staged
            || out.git_refs.iter().any(|g| g.full_because.is_none())
            || out.image_digests.iter().any(|i| i.unchanged);
        let complete = !self.incomplete_run && out.failed_targets.is_empty() && !gate;
        let rules = out.rules.iter().map(|r| r.id.clone()).collect();
        st.record(
            &out.findings,
            &others,
            self.triaged.len(),
            complete,
            rules,
            std::mem::take(&mut self.present),
            args.input.quiet,
        )
        .map(Some)
    }
}

/// Run `keytrail scan`.
pub fn run(args: &ScanArgs) -> anyhow::Result<ExitStatus> {
    let mut scanned = scan(args)?;
    let out = &scanned.out;
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
    let written = match term::write_output(args.output.as_deref(), |w| {
        write_report(w, args.format.into(), &report, &opts)
    }) {
        Ok(()) => true,
        // The reader went away (`keytrail scan . | head`): stop quietly
        // and keep the exit code the scan earned.
        Err(e) if term::is_broken_pipe(&e) => false,
        Err(e) => return Err(e),
    };

    run::print_diagnostics(out, args.input.quiet);
    scanned.record(args)?;
    let out = &scanned.out;
    if !args.input.quiet && written {
        eprintln!("{}", keytrail_report::summary_line(&out.summary));
        if scanned.incomplete_run && !args.fail_on_error {
            eprintln!(
                "\nhint: {} input(s) could not be read and {} archive(s) were only partly scanned; \
pass --fail-on-error to exit with code 2",
                out.errors.len(),
                out.incomplete.len()
            );
        }
    }
    Ok(scanned.status)
}

/// The scan of `keytrail scan` (and of a worker's scan job) up to its
/// report: the store opened, the session run with the threshold,
/// baseline, triage and verification steps, the exit status chosen.
pub fn scan(args: &ScanArgs) -> anyhow::Result<Scanned> {
    // Read the baseline before scanning: a bad file is a usage error, and
    // finding out after a long scan would waste it.
    let baseline = args.baseline.as_deref().map(Baseline::load).transpose()?;
    // The store too: a store that cannot be opened (locked, corrupt, too
    // new, unreachable) stops the run before the scan.
    let store = ScanStore::open(&args.store, &args.input)?;
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
    // With a store, every finding the scan made is recorded, including
    // those the threshold and baseline leave out of the report (so a later
    // complete run does not call them fixed): a copy is taken first.
    let everything: RefCell<Vec<Finding>> = RefCell::new(Vec::new());
    let triaged: RefCell<Vec<Finding>> = RefCell::new(Vec::new());
    let mut steps = Vec::new();
    if store.is_some() {
        steps.push(Step::Enrich(Box::new(|findings| {
            everything.borrow_mut().clone_from(findings);
            Ok(())
        })));
    }
    // After the steps every scan runs: the severity threshold, then the baseline.
    steps.push(Step::Keep(Box::new(|f| settings.severe_enough(f))));
    if let Some(b) = &baseline {
        steps.push(Step::Baseline(b));
    }
    // Then what the store's triage leaves out (before verification: a
    // false positive is sent nowhere).
    if let Some(st) = &store {
        let triaged = &triaged;
        steps.push(Step::Enrich(Box::new(move |findings| {
            let (out, keep): (Vec<Finding>, Vec<Finding>) = std::mem::take(findings)
                .into_iter()
                .partition(|f| st.suppresses(&f.fingerprint.0));
            *findings = keep;
            triaged.borrow_mut().extend(out);
            Ok(())
        })));
    }
    // Opt-in, last: verification and blast radius (keytrail-verify), so
    // only the findings the report keeps are sent to their providers.
    if args.verify.wanted() {
        let quiet = args.input.quiet;
        steps.push(Step::Enrich(Box::new(move |findings| {
            crate::cmd_verify::apply(&args.verify, findings, quiet)
        })));
    }
    // The fingerprints the allow-list will drop: still there, so not fixed.
    let present: RefCell<Vec<String>> = RefCell::new(Vec::new());
    let mut before_allow = Vec::new();
    if store.is_some() {
        before_allow.push(Step::Enrich(Box::new(|findings: &mut Vec<Finding>| {
            present
                .borrow_mut()
                .extend(findings.iter().map(|f| f.fingerprint.0.clone()));
            Ok(())
        })));
    }
    let out = run::scan(&args.input, min_confidence, &settings, before_allow, steps)?;
    let present = present.into_inner();
    let everything = everything.into_inner();
    let triaged = triaged.into_inner();
    let incomplete_run = !out.errors.is_empty() || !out.incomplete.is_empty();
    let status = if !out.failed_targets.is_empty() || (args.fail_on_error && incomplete_run) {
        ExitStatus::Error
    } else {
        args.verify.exit_for(&out.findings)
    };
    Ok(Scanned {
        out,
        status,
        incomplete_run,
        store,
        everything,
        triaged,
        present,
    })
}

/// `--sarif-category NAME` as an `automationDetails.id`: `NAME/` (GitHub
/// takes the category up to the last slash), or none for an empty NAME.
pub(crate) fn category_id(name: &str) -> Option<String> {
    let name = name.trim().trim_end_matches('/');
    (!name.is_empty()).then(|| format!("{name}/"))
}

//! The post-scan steps: what happens to the aggregated findings before
//! they are reported, as an explicit ordered list. A front-end builds the
//! list it needs (`keytrail scan` runs [`Step::scan_defaults`] plus the
//! severity threshold and the baseline; `keytrail baseline create` stops
//! before them), and [`run`] applies it in order. A new step (such as
//! verifying findings against their provider) is a new variant placed in
//! the list where it belongs: after the filters that drop findings, so it
//! only works on what will be reported.

pub mod envsep;

use crate::baseline::Baseline;
use crate::source::ImageState;
use keytrail_types::Finding;

/// A post-scan stage that adds to (or drops from) the findings kept so far.
pub type Enricher<'a> = Box<dyn Fn(&mut Vec<Finding>) -> anyhow::Result<()> + 'a>;

/// One post-scan step.
pub enum Step<'a> {
    /// Add the image locations that were not scanned again (identical
    /// content in other layers, tags and images), give each image finding
    /// its structured remediation, and mask secrets in image history
    /// lines. Does nothing when no image was scanned.
    ImageFindings,
    /// Add one finding per credential found in the configuration of two or
    /// more environments ([`envsep`]).
    SharedAcrossEnvironments,
    /// Drop the findings the predicate allow-lists (configuration
    /// allow-lists); counted in `summary.allowed`.
    AllowList(Box<dyn Fn(&Finding) -> bool + 'a>),
    /// Keep only the findings the predicate accepts (a severity
    /// threshold); not counted.
    Keep(Box<dyn Fn(&Finding) -> bool + 'a>),
    /// Drop the findings a baseline records; counted in
    /// `summary.suppressed_by_baseline`.
    Baseline(&'a Baseline),
    /// Add to the findings kept so far what a later stage learns about
    /// them (verification and blast radius, from `keytrail-verify`): runs
    /// where it is placed, so after the filters only kept findings are
    /// sent anywhere. An error stops the run.
    Enrich(Enricher<'a>),
}

impl<'a> Step<'a> {
    /// The steps every scan runs, in order: image findings, environment
    /// separation, then the allow-list `allows`.
    pub fn scan_defaults(allows: impl Fn(&Finding) -> bool + 'a) -> Vec<Step<'a>> {
        vec![
            Step::ImageFindings,
            Step::SharedAcrossEnvironments,
            Step::AllowList(Box::new(allows)),
        ]
    }
}

/// What the steps dropped.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Findings dropped by allow-lists.
    pub allowed: u64,
    /// Findings dropped by a baseline.
    pub suppressed_by_baseline: u64,
}

/// Apply `steps` in order to `findings`.
pub fn run(
    steps: &[Step<'_>],
    images: Option<&ImageState>,
    findings: &mut Vec<Finding>,
) -> anyhow::Result<Counts> {
    let mut counts = Counts::default();
    for step in steps {
        match step {
            Step::ImageFindings => image_findings(images, findings),
            Step::SharedAcrossEnvironments => {
                let shared = envsep::shared_across_environments(findings);
                findings.extend(shared);
            }
            Step::AllowList(allows) => {
                let before = findings.len();
                findings.retain(|f| !allows(f));
                counts.allowed += (before - findings.len()) as u64;
            }
            Step::Keep(keep) => findings.retain(|f| keep(f)),
            Step::Baseline(b) => {
                let before = findings.len();
                findings.retain(|f| !b.contains(f));
                counts.suppressed_by_baseline += (before - findings.len()) as u64;
            }
            Step::Enrich(enrich) => enrich(findings)?,
        }
    }
    Ok(counts)
}

fn image_findings(images: Option<&ImageState>, findings: &mut [Finding]) {
    #[cfg(feature = "image")]
    if let Some(seen) = images {
        seen.expand_findings(findings);
        keytrail_input::image::finish_findings(findings);
    }
    #[cfg(not(feature = "image"))]
    let _ = (images, findings);
}

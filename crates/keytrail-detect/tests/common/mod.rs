//! Shared helpers for the integration tests: the committed captures, the SigmaHQ AWS
//! rules and the test IP intelligence, through `keytrail_testkit::data` (which fails
//! naming what to install when something is missing).
#![allow(dead_code, unused_imports)]

use std::path::PathBuf;

pub use keytrail_testkit::data::{
    ipintel, otrf_ec2_exfiltration, otrf_golden_saml, otrf_m365, plaso, sigma_aws, stratus_dir,
};

/// The Stratus Red Team capture of one technique.
pub fn stratus(technique: &str) -> PathBuf {
    keytrail_testkit::data::stratus(technique)
}

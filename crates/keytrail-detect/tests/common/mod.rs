//! Shared helpers for the integration tests: paths into `../shared`.
#![allow(dead_code)]

use std::path::PathBuf;

/// `../shared` relative to the repository root.
pub fn shared() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared"))
}

/// The Stratus Red Team detonation logs.
pub fn stratus_dir() -> PathBuf {
    shared().join("data/cloudtrail/stratus-red-team-detonation-logs")
}

/// SigmaHQ AWS rules.
pub fn sigma_aws() -> PathBuf {
    shared().join("reference/sigma/rules/cloud/aws")
}

/// IP intelligence directory.
pub fn ipintel() -> PathBuf {
    shared().join("data/ipintel")
}

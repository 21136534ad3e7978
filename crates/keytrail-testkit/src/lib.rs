//! Test-only fixtures for keytrail: fake secrets with valid checksums,
//! CloudTrail activity generators, cloud snapshot generators, and the paths
//! of the third-party test data (failing loudly when it is missing).
//!
//! Never a production dependency (publish = false; used from
//! `[dev-dependencies]` and benchmarks only). Nothing here is a real
//! credential: every value is generated at test time from a seeded RNG.

pub mod cloudlogs;
pub mod cloudtrail;
pub mod data;
pub mod exports;
pub mod exposure;
pub mod history;
pub mod http;
pub mod mmdb;
pub mod recorder;
pub mod sarif;
pub mod secrets;
pub mod snapshot;
pub mod tool_files;
pub mod tools;

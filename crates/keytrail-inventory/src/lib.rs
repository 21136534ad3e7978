//! Credential inventory and posture checks over cloud API snapshots (pure:
//! no cloud calls).
//!
//! Pipeline: a snapshot directory of unmodified cloud CLI outputs
//! ([`load_snapshot`], layout in docs/snapshot-layout.md) → [`Snapshot`] →
//! [`check_all`] → [`Report`] of findings and not-evaluated checks, and
//! [`inventory`] → one [`IdentityRecord`] per machine identity and
//! credential. `keytrail_report::posture` encodes both (JSONL, OCSF, human tables).
//!
//! ```no_run
//! let (snap, diags) = keytrail_inventory::load_snapshot(std::path::Path::new("snap"));
//! let now = keytrail_inventory::chrono::DateTime::parse_from_rfc3339("2025-06-01T00:00:00Z")
//!     .unwrap()
//!     .to_utc();
//! let report = keytrail_inventory::check_all(&snap, None, now);
//! for f in &report.findings {
//!     println!("{} {} {}", f.severity, f.check, f.resource);
//! }
//! # let _ = diags;
//! ```

pub mod checks;
pub mod facts;
pub mod inventory;
pub mod owners;
pub mod policy;
pub mod privilege;
pub mod snapshot;

/// Timestamps throughout the crate (UTC).
pub type Timestamp = chrono::DateTime<chrono::Utc>;

pub use checks::{
    CHECKS, CheckInfo, NotEvaluated, PostureFinding, Report, check_all, check_all_with,
};
pub use chrono;
pub use facts::Facts;
pub use inventory::{IdentityRecord, UNOWNED, inventory, inventory_with};
pub use owners::Owners;
pub use snapshot::{Collected, Snapshot, check_snapshot_dir, load_snapshot, mask_quoted};

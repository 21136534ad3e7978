//! Cloud-log abuse detection (CloudTrail, Google Cloud audit logs, Entra ID, Microsoft
//! 365, Azure Activity): identity normalisation, baselines, detectors and a Sigma engine.
//!
//! Data flows one way: [`reader`] turns files and streams into [`event::Event`]s
//! (or diagnostics), the [`engine::Engine`] runs the playbook detectors, the
//! per-identity baselines and the Sigma rules over each event and pushes
//! [`alert::Alert`]s into a sink; `keytrail_report::detect` encodes alerts as JSONL,
//! OCSF or a human summary. Nothing here does network IO.

pub mod alert;
pub mod baseline;
pub mod cloudplay;
pub mod distributed;
pub mod engine;
pub mod event;
pub mod incident;
pub mod ipintel;
mod json;
pub mod owners;
pub mod playbook;
mod prematch;
pub mod reader;
pub mod sigma;
pub mod time;

pub use event::{Event, Identity, IdentityKind, Provider, UaFamily};
/// CSV CloudTrail (Athena results, exports): now [`reader::csvlog`].
pub use reader::csvlog;
pub use reader::{read_path, read_paths, read_stream};

pub use alert::{Alert, AlertSink};
pub use engine::{Engine, EngineBuilder, Stats};

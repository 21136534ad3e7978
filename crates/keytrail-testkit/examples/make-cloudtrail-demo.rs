//! Writes three weeks of generated CloudTrail for `scripts/demo.sh`: machine, CI and
//! human identities going about their work in an S3-style tree
//! (`AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/*.json`), with attacks and
//! benign look-alikes injected. Everything is generated now from a fixed seed.

use keytrail_testkit::cloudtrail::{ActivityConfig, write_activity};
use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "keytrail-demo-cloudtrail".to_string()),
    );
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    let cfg = ActivityConfig {
        rate: 0.3,
        ..ActivityConfig::default()
    };
    let w = write_activity(&cfg, &dir)?;
    println!(
        "wrote {} CloudTrail events in {} files under {}; injected:",
        w.events,
        w.files.len(),
        dir.display()
    );
    for t in &w.truth {
        let kind = if t.malicious {
            "attack"
        } else {
            "benign look-alike"
        };
        println!("  {kind:>17}: {} ({})", t.label, t.principal);
    }
    Ok(())
}

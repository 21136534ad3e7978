//! Writes snapshot files in the layout of docs/snapshot-layout.md: JSON the
//! way the AWS CLI prints it (4-space indentation, trailing newline), the
//! CLI's error text for "does not exist" answers, and a shared list of
//! diagnostics. Path components that come from the cloud (user, bucket,
//! cluster names) are checked so that no name can escape the snapshot
//! directory.

use keytrail_types::Diagnostic;
use serde::Serialize;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The file, at the root of a collected snapshot, listing the calls that
/// failed (docs/collect-aws.md).
pub const ERRORS_FILE: &str = "collection-errors.json";

/// A snapshot directory being written, plus the diagnostics of the run.
/// Shared between concurrent collection tasks (`Arc<SnapshotWriter>`).
#[derive(Debug)]
pub struct SnapshotWriter {
    root: PathBuf,
    diags: Mutex<Vec<Diagnostic>>,
}

impl SnapshotWriter {
    /// A writer for files under `root` (e.g. `OUT/aws`).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        SnapshotWriter {
            root: root.into(),
            diags: Mutex::new(Vec::new()),
        }
    }

    /// The directory written to.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The full path of a layout-relative file, for messages.
    pub fn display(&self, rel: &str) -> String {
        self.root.join(rel).display().to_string()
    }

    /// Records a diagnostic.
    pub fn push(&self, d: Diagnostic) {
        self.diags
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(d);
    }

    /// Records an error diagnostic about the layout file `rel`.
    pub fn error(&self, kind: &str, rel: &str, message: impl Into<String>) {
        self.push(Diagnostic::error(kind, self.display(rel), message));
    }

    /// The diagnostics recorded so far, in order.
    pub fn diagnostics(&self) -> Vec<Diagnostic> {
        self.diags
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Writes `collection-errors.json`: every error recorded so far (the
    /// layout file each failed call would have written, relative to the
    /// root, and the message), so the snapshot itself says what it lacks.
    /// Always written, `{"Errors": []}` when nothing failed; a failure to
    /// write it is one more diagnostic.
    pub fn write_error_record(&self) {
        let root = self.root.display().to_string();
        let errors: Vec<Value> = self
            .diagnostics()
            .iter()
            .filter(|d| d.is_error)
            .map(|d| {
                let file = d
                    .subject
                    .strip_prefix(&root)
                    .map(|r| r.trim_start_matches(['/', '\\']))
                    .unwrap_or(&d.subject);
                serde_json::json!({"File": file, "Kind": d.kind, "Message": d.message})
            })
            .collect();
        self.json(ERRORS_FILE, &serde_json::json!({ "Errors": errors }));
    }

    /// Writes `value` as pretty JSON (4-space indentation, as the AWS CLI
    /// prints it) to `rel`, creating directories. A failure is recorded as a
    /// diagnostic; returns whether the file was written.
    pub fn json(&self, rel: &str, value: &Value) -> bool {
        let mut buf = Vec::with_capacity(256);
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
        let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
        if let Err(e) = value.serialize(&mut ser) {
            self.error("write_failed", rel, format!("cannot encode JSON: {e}"));
            return false;
        }
        buf.push(b'\n');
        self.bytes(rel, &buf)
    }

    /// Writes the AWS CLI's error text for a "does not exist" answer (what
    /// `aws ... 2>&1` saves), which the layout reads as "not configured".
    pub fn not_configured(&self, rel: &str, code: &str, operation: &str, message: &str) -> bool {
        let text = format!(
            "\nAn error occurred ({code}) when calling the {operation} operation: {message}\n"
        );
        self.bytes(rel, text.as_bytes())
    }

    /// Writes raw bytes to `rel`, creating directories. A failure is
    /// recorded as a diagnostic; returns whether the file was written.
    pub fn bytes(&self, rel: &str, data: &[u8]) -> bool {
        let path = self.root.join(rel);
        if let Some(parent) = path.parent()
            && let Err(e) = std::fs::create_dir_all(parent)
        {
            self.error(
                "write_failed",
                rel,
                format!("cannot create {}: {e}", parent.display()),
            );
            return false;
        }
        match std::fs::write(&path, data) {
            Ok(()) => true,
            Err(e) => {
                self.error("write_failed", rel, e.to_string());
                false
            }
        }
    }
}

/// Whether a name from the cloud can be used as one path component: not
/// empty, not `.` or `..`, no separators or NUL. IAM user names, bucket
/// names, EKS cluster and node group names always pass; anything else is a
/// sign of a hostile or broken answer.
pub fn safe_component(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', '\0'])
        && name.len() <= 255
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn writes_cli_style_json_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let w = SnapshotWriter::new(dir.path().join("aws"));
        assert!(w.json("a/b.json", &json!({"Users": [{"UserName": "x"}]})));
        let text = std::fs::read_to_string(dir.path().join("aws/a/b.json")).unwrap();
        assert_eq!(
            text,
            "{\n    \"Users\": [\n        {\n            \"UserName\": \"x\"\n        }\n    ]\n}\n"
        );
        assert!(w.not_configured(
            "s3api/b/get-bucket-policy.json",
            "NoSuchBucketPolicy",
            "GetBucketPolicy",
            "The bucket policy does not exist"
        ));
        let err =
            std::fs::read_to_string(dir.path().join("aws/s3api/b/get-bucket-policy.json")).unwrap();
        assert!(
            err.trim()
                .starts_with("An error occurred (NoSuchBucketPolicy)")
        );
        assert!(w.diagnostics().is_empty());
    }

    #[test]
    fn write_failure_is_a_diagnostic() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("aws"), b"a file, not a directory").unwrap();
        let w = SnapshotWriter::new(dir.path().join("aws"));
        assert!(!w.json("x.json", &json!({})));
        let d = w.diagnostics();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].kind, "write_failed");
        assert!(d[0].subject.ends_with("x.json"), "{}", d[0].subject);
    }

    #[test]
    fn failed_calls_are_recorded_in_the_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let w = SnapshotWriter::new(dir.path().join("aws"));
        w.write_error_record();
        let read = || -> Value {
            serde_json::from_slice(
                &std::fs::read(dir.path().join("aws").join(ERRORS_FILE)).unwrap(),
            )
            .unwrap()
        };
        assert_eq!(read(), json!({"Errors": []}), "written when nothing failed");
        w.error(
            "api_error",
            "regions/eu-west-1/ec2-get-instance-metadata-defaults.json",
            "GetInstanceMetadataDefaults failed: UnsupportedOperation: no",
        );
        w.push(Diagnostic::skip("unsafe_name", "x", "not an error"));
        w.write_error_record();
        assert_eq!(
            read(),
            json!({"Errors": [{
                "File": "regions/eu-west-1/ec2-get-instance-metadata-defaults.json",
                "Kind": "api_error",
                "Message": "GetInstanceMetadataDefaults failed: UnsupportedOperation: no"
            }]})
        );
    }

    #[test]
    fn hostile_names_are_rejected() {
        for bad in ["", ".", "..", "a/b", "..\\x", "a\0b"] {
            assert!(!safe_component(bad), "{bad:?}");
        }
        for good in ["ci-bot", "user+tag=x,y.z@corp_1", "my.bucket-1", "prod"] {
            assert!(safe_component(good), "{good}");
        }
    }
}

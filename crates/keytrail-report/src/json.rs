//! JSON and JSONL encoders and the serialisable views they share.
//!
//! The views borrow from [`Finding`] so that the output shape is decided
//! here, in one place, and documented in `docs/output.md`. The secret is
//! written only under `reveal`, as an explicit `secret` field.

use crate::{Report, ReportOptions, Summary};
use keytrail_types::{
    BlastRadius, Confidence, Finding, Location, Remediation, Severity, Verification,
    VerificationStatus,
};
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use std::io::{self, Write};

/// Version of the JSON document and JSONL record shapes. Bumped only on
/// incompatible changes; new fields are added without a bump.
pub(crate) const FORMAT_VERSION: u32 = 1;

/// Name → value pairs written as a JSON object (first value wins on duplicates).
struct ContextMap<'a>(&'a [(String, String)]);

impl Serialize for ContextMap<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seen = std::collections::HashSet::new();
        let mut map = s.serialize_map(None)?;
        for (k, v) in self.0 {
            if seen.insert(k.as_str()) {
                map.serialize_entry(k, v)?;
            }
        }
        map.end()
    }
}

fn is_empty_ctx(c: &ContextMap<'_>) -> bool {
    c.0.is_empty()
}

/// `verification` as written: `identity` is an object.
#[derive(Serialize)]
pub(crate) struct VerificationView<'a> {
    status: VerificationStatus,
    checked_at: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    verifier: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a str>,
    #[serde(skip_serializing_if = "is_empty_ctx")]
    identity: ContextMap<'a>,
}

impl<'a> VerificationView<'a> {
    pub(crate) fn new(v: &'a Verification) -> Self {
        VerificationView {
            status: v.status,
            checked_at: &v.checked_at,
            verifier: v.verifier.as_deref(),
            detail: v.detail.as_deref(),
            identity: ContextMap(&v.identity),
        }
    }
}

/// One finding in the JSON document.
#[derive(Serialize)]
struct FindingView<'a> {
    rule_id: &'a str,
    rule_name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    provider: Option<&'a str>,
    confidence: Confidence,
    severity: Severity,
    fingerprint: &'a str,
    secret_redacted: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<&'a str>,
    #[serde(skip_serializing_if = "is_empty_ctx")]
    context: ContextMap<'a>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    notes: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    remediation: Option<&'a Remediation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    verification: Option<VerificationView<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    blast_radius: Option<&'a BlastRadius>,
    locations: &'a [Location],
}

impl<'a> FindingView<'a> {
    fn new(f: &'a Finding, report: &'a Report<'a>, opts: &ReportOptions) -> Self {
        FindingView {
            rule_id: &f.rule_id,
            rule_name: &f.rule_name,
            provider: report.rule(&f.rule_id).map(|r| r.provider.as_str()),
            confidence: f.confidence,
            severity: f.severity,
            fingerprint: &f.fingerprint.0,
            secret_redacted: &f.secret_redacted,
            secret: opts.reveal.then(|| f.secret.expose().as_str()),
            context: ContextMap(&f.context),
            notes: &f.notes,
            remediation: f.remediation.as_ref(),
            verification: f.verification.as_ref().map(VerificationView::new),
            blast_radius: f.blast_radius.as_ref(),
            locations: &f.locations,
        }
    }
}

/// One location of one finding: a JSONL record.
#[derive(Serialize)]
struct LocationView<'a> {
    rule_id: &'a str,
    rule_name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    provider: Option<&'a str>,
    confidence: Confidence,
    severity: Severity,
    fingerprint: &'a str,
    secret_redacted: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<&'a str>,
    /// `path`, `line`, `column`, `offset`, `snippet`, `source` and the
    /// origin's own fields, flattened so that later sources only add fields.
    #[serde(flatten)]
    location: &'a Location,
    #[serde(skip_serializing_if = "is_empty_ctx")]
    context: ContextMap<'a>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    notes: &'a [String],
    /// The finding's remediation, on the first line of the finding only:
    /// its affected-image list grows with the locations, so repeating it
    /// on every line would make the output quadratic.
    #[serde(skip_serializing_if = "Option::is_none")]
    remediation: Option<&'a Remediation>,
    /// The finding's verification and blast radius, on every line (small,
    /// and what a line-by-line consumer filters on).
    #[serde(skip_serializing_if = "Option::is_none")]
    verification: Option<VerificationView<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    blast_radius: Option<&'a BlastRadius>,
    /// Number of locations of the same finding, so a consumer of one line
    /// knows the secret occurs elsewhere too.
    occurrences: usize,
}

#[derive(Serialize)]
struct Document<'a> {
    version: u32,
    findings: Vec<FindingView<'a>>,
    summary: &'a Summary,
}

/// Write the single JSON document, pretty-printed, with a final newline.
pub(crate) fn write_json(
    w: &mut dyn Write,
    report: &Report<'_>,
    opts: &ReportOptions,
) -> io::Result<()> {
    let doc = Document {
        version: FORMAT_VERSION,
        findings: report
            .findings
            .iter()
            .map(|f| FindingView::new(f, report, opts))
            .collect(),
        summary: report.summary,
    };
    serde_json::to_writer_pretty(&mut *w, &doc)?;
    w.write_all(b"\n")
}

/// Write one compact JSON object per location, each on its own line.
pub(crate) fn write_jsonl(
    w: &mut dyn Write,
    report: &Report<'_>,
    opts: &ReportOptions,
) -> io::Result<()> {
    for f in report.findings {
        let base = FindingView::new(f, report, opts);
        for (i, loc) in f.locations.iter().enumerate() {
            let rec = LocationView {
                rule_id: base.rule_id,
                rule_name: base.rule_name,
                provider: base.provider,
                confidence: base.confidence,
                severity: base.severity,
                fingerprint: base.fingerprint,
                secret_redacted: base.secret_redacted,
                secret: base.secret,
                location: loc,
                context: ContextMap(&f.context),
                notes: &f.notes,
                remediation: base.remediation.filter(|_| i == 0),
                verification: f.verification.as_ref().map(VerificationView::new),
                blast_radius: f.blast_radius.as_ref(),
                occurrences: f.locations.len(),
            };
            crate::lines::write_line(w, &rec)?;
        }
    }
    for n in &report.summary.not_scanned {
        crate::lines::write_line(
            w,
            &NotScannedLine {
                kind_of_line: "not_scanned",
                entry: n,
            },
        )?;
    }
    Ok(())
}

/// A JSONL line for an input that was not (fully) scanned.
#[derive(Serialize)]
struct NotScannedLine<'a> {
    #[serde(rename = "type")]
    kind_of_line: &'static str,
    #[serde(flatten)]
    entry: &'a crate::NotScanned,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata;
    use crate::{Format, write_report};
    use serde_json::Value;

    fn render(format: Format, reveal: bool) -> String {
        let (findings, rules, summary) = testdata::sample();
        let report = Report {
            findings: &findings,
            rules: &rules,
            summary: &summary,
        };
        let opts = ReportOptions {
            reveal,
            ..Default::default()
        };
        let mut out = Vec::new();
        write_report(&mut out, format, &report, &opts).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// Verification and blast radius in every format; absent when not asked.
    #[test]
    fn verification_and_blast_radius_in_every_format() {
        use keytrail_types::{BlastRadius, Privilege};
        let (mut findings, rules, summary) = testdata::sample();
        findings[0].verification = Some(Verification {
            status: VerificationStatus::Live,
            checked_at: "2025-01-31T12:00:00Z".into(),
            verifier: Some("github".into()),
            detail: Some("HTTP 200".into()),
            identity: vec![("login".into(), "octo".into())],
        });
        findings[0].blast_radius = Some(BlastRadius {
            privilege: Privilege::DataAccess,
            scopes: vec!["repo".into()],
            resources: vec!["org:acme".into()],
            evidence: vec!["the repo scope".into()],
            unknowns: vec!["fine-grained permissions".into()],
        });
        let report = Report {
            findings: &findings,
            rules: &rules,
            summary: &summary,
        };
        let render = |format| {
            let mut out = Vec::new();
            write_report(&mut out, format, &report, &ReportOptions::default()).unwrap();
            String::from_utf8(out).unwrap()
        };
        let v: Value = serde_json::from_str(&render(Format::Json)).unwrap();
        let f = &v["findings"][0];
        assert_eq!(f["verification"]["status"], "live");
        assert_eq!(f["verification"]["identity"]["login"], "octo");
        assert_eq!(f["verification"]["checked_at"], "2025-01-31T12:00:00Z");
        assert_eq!(f["blast_radius"]["privilege"], "data-access");
        assert_eq!(f["blast_radius"]["resources"][0], "org:acme");
        assert!(v["findings"][1].get("verification").is_none());
        for line in render(Format::Jsonl).lines().take(2) {
            let l: Value = serde_json::from_str(line).unwrap();
            assert_eq!(l["verification"]["status"], "live", "{l}");
            assert_eq!(l["blast_radius"]["privilege"], "data-access");
        }
        let s: Value = serde_json::from_str(&render(Format::Sarif)).unwrap();
        let r = &s["runs"][0]["results"][0];
        assert_eq!(r["properties"]["verification"]["status"], "live");
        assert_eq!(r["properties"]["blast_radius"]["privilege"], "data-access");
        assert!(
            r["message"]["text"]
                .as_str()
                .unwrap()
                .contains("Verification: live (login octo).")
        );
        let h = render(Format::Human);
        assert!(
            h.contains("verification: live as login=octo (HTTP 200)"),
            "{h}"
        );
        assert!(h.contains("blast radius: data-access"));
        assert!(h.contains("not determined: fine-grained permissions"));
    }

    #[test]
    fn json_document_shape() {
        let v: Value = serde_json::from_str(&render(Format::Json, false)).unwrap();
        assert_eq!(v["version"], 1);
        let fs = v["findings"].as_array().unwrap();
        assert_eq!(fs.len(), 2);
        let f = &fs[0];
        assert_eq!(f["rule_id"], "github.pat.classic");
        assert_eq!(f["provider"], "GitHub");
        assert_eq!(f["confidence"], "high");
        assert_eq!(f["severity"], "high");
        assert!(f.get("secret").is_none(), "no secret without reveal: {f}");
        assert_eq!(f["locations"].as_array().unwrap().len(), 2);
        assert_eq!(f["locations"][0]["path"], "config/app.env");
        assert_eq!(f["locations"][0]["source"], "file");
        assert_eq!(f["locations"][1]["source"], "git");
        assert_eq!(f["locations"][1]["commit"], "0123abcd");
        assert_eq!(fs[1]["context"]["id"], "AKIAQWERTYUIOPASDFGH");
        assert!(
            f.get("remediation").is_none(),
            "no remediation outside images"
        );
        let r = &fs[1]["remediation"];
        assert_eq!(r["steps"][0]["action"], "rotate_credential");
        assert_eq!(r["steps"].as_array().unwrap().len(), 4);
        assert_eq!(r["instructions"], serde_json::json!(["COPY", "ENV"]));
        assert_eq!(r["affected"][0]["image"], "registry.example/app:1");
        assert_eq!(r["affected"][0]["manifest_digest"], "sha256:m1");
        assert_eq!(r["affected"][0]["layers"][0]["instruction"], "COPY");
        assert_eq!(r["affected"][0]["config"][0]["key"], "Env[1]");
        assert_eq!(r["references"][0], "registry.example/app:1");
        assert_eq!(r["digests"][0], "sha256:m1");
        let back: keytrail_types::Remediation = serde_json::from_value(r.clone()).unwrap();
        assert_eq!(back, testdata::image_remediation());
        assert_eq!(v["summary"]["files_scanned"], 3);
        assert_eq!(v["summary"]["findings"], 2);
        assert_eq!(v["summary"]["incomplete"], 1);
        let ns = &v["summary"]["not_scanned"];
        assert_eq!(ns[0]["kind"], "archive_limit");
        assert_eq!(ns[0]["path"], "dist/big.zip!filler.bin");
        assert!(ns[0].get("line").is_none());
        assert_eq!(ns[1]["line"], 7);
    }

    #[test]
    fn jsonl_one_record_per_location() {
        let text = render(Format::Jsonl, false);
        let recs: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(recs.len(), 5);
        let (recs, not_scanned) = recs.split_at(3);
        assert!(recs.iter().all(|r| r.get("type").is_none()));
        assert_eq!(not_scanned[0]["type"], "not_scanned");
        assert_eq!(not_scanned[0]["kind"], "archive_limit");
        assert_eq!(not_scanned[0]["path"], "dist/big.zip!filler.bin");
        assert_eq!(not_scanned[1]["kind"], "unreadable");
        assert_eq!(not_scanned[1]["line"], 7);
        for key in [
            "rule_id",
            "rule_name",
            "path",
            "line",
            "column",
            "fingerprint",
            "secret_redacted",
            "confidence",
            "severity",
            "snippet",
            "source",
        ] {
            assert!(recs.iter().all(|r| r.get(key).is_some()), "missing {key}");
        }
        assert_eq!(recs[0]["occurrences"], 2);
        assert_eq!(recs[1]["in_head"], false);
        assert_eq!(recs[1]["author_date"], "2024-01-02T03:04:05Z");
        assert_eq!(recs[2]["image"], "registry.example/app:1");
        assert_eq!(recs[2]["layer"], 2);
        assert!(recs[0].get("remediation").is_none());
        assert_eq!(
            recs[2]["remediation"]["affected"][0]["layers"][0]["paths"][0],
            "/etc/aws/credentials"
        );
        assert_eq!(
            recs[2]["remediation"]["steps"][1]["action"],
            "rebuild_without_secret"
        );
        assert!(recs.iter().all(|r| r.get("secret").is_none()));
    }

    /// An image finding seen in many places: the affected-image list is
    /// written once (on the finding's first line), so the output grows
    /// linearly with the locations, not with their square.
    #[test]
    fn jsonl_remediation_only_on_first_line_of_a_finding() {
        let (mut findings, rules, summary) = testdata::sample();
        let image = findings[1].clone();
        let loc = image.locations[0].clone();
        let remediation = image.remediation.clone().unwrap();
        let one = remediation.affected[0].clone();
        let grown = |n: usize| {
            let mut f = image.clone();
            f.locations = vec![loc.clone(); n];
            let mut r = remediation.clone();
            r.affected = vec![one.clone(); n];
            f.remediation = Some(r);
            f
        };
        let mut size = |n: usize| {
            findings[1] = grown(n);
            let report = Report {
                findings: &findings,
                rules: &rules,
                summary: &summary,
            };
            let mut out = Vec::new();
            write_jsonl(&mut out, &report, &ReportOptions::default()).unwrap();
            out
        };
        let small = size(100);
        let big = size(400);
        // 4x the locations (and affected images): about 4x the bytes, not 16x.
        assert!(
            big.len() < small.len() * 5,
            "{} bytes for 100, {} for 400",
            small.len(),
            big.len()
        );
        let text = String::from_utf8(big).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .filter(|v: &Value| v["fingerprint"] == image.fingerprint.0.as_str())
            .collect();
        assert_eq!(lines.len(), 400);
        assert_eq!(
            lines[0]["remediation"]["affected"]
                .as_array()
                .unwrap()
                .len(),
            400
        );
        assert!(lines[1..].iter().all(|l| l.get("remediation").is_none()));
    }

    #[test]
    fn reveal_adds_secret_field() {
        let v: Value = serde_json::from_str(&render(Format::Json, true)).unwrap();
        assert_eq!(v["findings"][0]["secret"], testdata::github_secret());
        let text = render(Format::Jsonl, true);
        let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(first["secret"], testdata::github_secret());
    }
}

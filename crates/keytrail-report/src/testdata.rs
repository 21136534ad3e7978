//! Sample findings shared by the encoder tests. Secrets are generated at
//! test time from a fixed seed; they are not real credentials (no valid
//! checksum) and never appear as literals in the source.

use crate::{RuleMeta, Summary};
use keytrail_types::{
    AffectedConfigEntry, AffectedImage, AffectedLayer, Confidence, Finding, Fingerprint, GitOrigin,
    ImageOrigin, Location, Origin, Remediation, RemediationStep, Secret, Severity, redact,
};

/// `n` base62 characters from a small deterministic generator.
fn fake_body(seed: u64, n: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut x = seed;
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ALPHABET[((x >> 33) % 62) as usize] as char
        })
        .collect()
}

/// The fake GitHub token of the first sample finding.
pub(crate) fn github_secret() -> String {
    format!("ghp_{}", fake_body(7, 36))
}

/// The fake AWS secret key of the second sample finding.
pub(crate) fn aws_secret() -> String {
    fake_body(11, 40)
}

fn finding(
    rule_id: &str,
    rule_name: &str,
    c: Confidence,
    s: Severity,
    secret: String,
    fp: &str,
    locations: Vec<Location>,
) -> Finding {
    Finding {
        rule_id: rule_id.into(),
        rule_name: rule_name.into(),
        confidence: c,
        severity: s,
        fingerprint: Fingerprint(fp.into()),
        secret_redacted: redact(secret.as_bytes()),
        secret: Secret::new(secret),
        context: Vec::new(),
        locations,
        notes: Vec::new(),
        remediation: None,
        verification: None,
        blast_radius: None,
    }
}

fn loc(path: &str, line: u64, column: u64, snippet: &str, origin: Origin) -> Location {
    Location {
        path: path.into(),
        line,
        column,
        offset: 100,
        snippet: snippet.into(),
        origin,
        decoded: None,
    }
}

/// Two findings (one with a file and a git location, one in an image) and
/// the rule metadata and summary to go with them.
pub(crate) fn sample() -> (Vec<Finding>, Vec<RuleMeta>, Summary) {
    let gh = finding(
        "github.pat.classic",
        "GitHub personal access token (classic)",
        Confidence::High,
        Severity::High,
        github_secret(),
        "00112233445566778899aabbccddeeff",
        vec![
            loc(
                "config/app.env",
                3,
                14,
                "GITHUB_TOKEN=ghp_************************************",
                Origin::File,
            ),
            loc(
                "src/my file#1.py",
                10,
                9,
                "token = \"ghp_************************************\"",
                Origin::Git(GitOrigin {
                    repository: ".".into(),
                    blob: "feedface".into(),
                    commit: Some("0123abcd".into()),
                    author: Some("Dev <dev@example.com>".into()),
                    author_date: Some("2024-01-02T03:04:05Z".into()),
                    summary: Some("add config".into()),
                    in_head: false,
                    ..GitOrigin::default()
                }),
            ),
        ],
    );
    let mut aws = finding(
        "aws.secret_access_key",
        "AWS secret access key",
        Confidence::Medium,
        Severity::Critical,
        aws_secret(),
        "ffeeddccbbaa99887766554433221100",
        vec![loc(
            "etc/aws/credentials",
            2,
            23,
            "aws_secret_access_key = ****************************************",
            Origin::Image(ImageOrigin {
                image: "registry.example/app:1".into(),
                layer: Some(2),
                layer_digest: Some("sha256:abc".into()),
                visible_in_final: true,
                ..Default::default()
            }),
        )],
    );
    aws.context = vec![("id".into(), "AKIAQWERTYUIOPASDFGH".into())];
    aws.notes = vec!["paired with an access key id".into()];
    aws.remediation = Some(image_remediation());
    let rules = vec![
        RuleMeta {
            id: "github.pat.classic".into(),
            name: "GitHub personal access token (classic)".into(),
            provider: "GitHub".into(),
            description: "A classic GitHub personal access token.".into(),
            remediation: "Revoke it at https://github.com/settings/tokens.".into(),
            references: vec!["https://docs.github.com/en/authentication".into()],
            categories: vec!["forge".into(), "api-token".into()],
            confidence: Some(Confidence::High),
            severity: Some(Severity::High),
        },
        RuleMeta {
            id: "aws.secret_access_key".into(),
            name: "AWS secret access key".into(),
            provider: "AWS".into(),
            description: "The secret half of an AWS access key.".into(),
            remediation: "Deactivate and delete the key in IAM.".into(),
            references: Vec::new(),
            categories: vec!["cloud".into()],
            confidence: Some(Confidence::Medium),
            severity: Some(Severity::Critical),
        },
    ];
    let summary = Summary {
        files_scanned: 3,
        bytes_scanned: 1234,
        findings: 2,
        locations: 3,
        elapsed_ms: 5,
        incomplete: 1,
        unreadable: 1,
        not_scanned: vec![
            crate::NotScanned {
                kind: "archive_limit".into(),
                path: "dist/big.zip!filler.bin".into(),
                line: None,
                message: "decompression limit of 268435456 bytes reached for archive dist/big.zip; from this member on the archive was not scanned".into(),
            },
            crate::NotScanned {
                kind: "unreadable".into(),
                path: "logs/app.log".into(),
                line: Some(7),
                message: "cannot read past byte 512".into(),
            },
        ],
        ..Default::default()
    };
    (vec![gh, aws], rules, summary)
}

/// The image remediation block of the second sample finding.
pub(crate) fn image_remediation() -> Remediation {
    let step = |action: &str, summary: &str, detail: &str| RemediationStep {
        action: action.into(),
        summary: summary.into(),
        detail: detail.into(),
    };
    Remediation {
        steps: vec![
            step(
                "rotate_credential",
                "Revoke and rotate the credential first",
                "A rebuilt image does not un-leak it.",
            ),
            step(
                "rebuild_without_secret",
                "Rebuild without baking the secret into the image (it leaked through COPY, ENV)",
                "COPY/ADD put the file into a layer.",
            ),
            step(
                "delete_images",
                "Delete the 1 affected reference(s) and 1 manifest digest(s)",
                "Digests: sha256:m1.",
            ),
            step(
                "invalidate_build_cache",
                "Invalidate build caches",
                "docker builder prune --all",
            ),
        ],
        instructions: vec!["COPY".into(), "ENV".into()],
        affected: vec![AffectedImage {
            image: "registry.example/app:1".into(),
            manifest_digest: Some("sha256:m1".into()),
            platform: Some("linux/amd64".into()),
            layers: vec![AffectedLayer {
                index: 2,
                digest: Some("sha256:abc".into()),
                instruction: Some("COPY".into()),
                paths: vec!["/etc/aws/credentials".into()],
                visible_in_final: true,
            }],
            config: vec![AffectedConfigEntry {
                key: "Env[1]".into(),
                instruction: Some("ENV".into()),
            }],
            visible_in_final: true,
        }],
        references: vec!["registry.example/app:1".into()],
        digests: vec!["sha256:m1".into()],
    }
}

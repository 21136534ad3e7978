//! Credential files of common tools, generated at test time: each secret is
//! reported by its rule at its place, and the same shapes in other files
//! are not reported at all.

use keytrail_scan::Scanner;
use keytrail_testkit::tool_files::{ToolFile, credential_file_negatives, credential_files};
use keytrail_types::{Confidence, Origin};

fn scanner() -> Scanner {
    let (rules, _) = keytrail_rules::builtin();
    let (s, diags) = Scanner::new(rules);
    assert!(diags.is_empty(), "{diags:?}");
    s
}

fn found(s: &Scanner, f: &ToolFile) -> Vec<(String, String)> {
    s.scan_bytes(&f.path, &Origin::File, f.text.as_bytes())
        .iter()
        .map(|x| {
            (
                s.rules()[x.rule].id().to_string(),
                x.secret.expose().to_string(),
            )
        })
        .collect()
}

#[test]
fn every_credential_file_is_found_by_its_rule() {
    let s = scanner();
    let mut problems = Vec::new();
    for seed in 0..8 {
        for f in credential_files(seed) {
            let got = found(&s, &f);
            for (rule, secret) in &f.secrets {
                if !got
                    .iter()
                    .any(|(r, v)| rule.split('|').any(|x| x == r) && v == secret)
                {
                    problems.push(format!("{}: {rule} missing, got {got:?}", f.path));
                }
            }
            for (rule, secret) in &got {
                if !f.secrets.iter().any(|(_, v)| v == secret) {
                    problems.push(format!("{}: unexpected {rule} {secret:?}", f.path));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Findings of the rules that run by default (medium and high confidence).
fn found_by_default(s: &Scanner, f: &ToolFile) -> Vec<(String, String)> {
    s.scan_bytes(&f.path, &Origin::File, f.text.as_bytes())
        .iter()
        .filter(|x| s.rules()[x.rule].confidence() != Confidence::Low)
        .map(|x| {
            (
                s.rules()[x.rule].id().to_string(),
                x.secret.expose().to_string(),
            )
        })
        .collect()
}

#[test]
fn the_same_shapes_elsewhere_are_not_reported() {
    let s = scanner();
    for f in credential_file_negatives(3) {
        assert_eq!(found_by_default(&s, &f), vec![], "{}", f.path);
    }
    // Each credential file moved to a source path: the rules limited to
    // file names stay silent.
    for f in credential_files(5) {
        let moved = ToolFile {
            path: format!("src/fixtures/{}.txt", f.path.replace('/', "_")),
            ..f.clone()
        };
        for (rule, _) in found(&s, &moved) {
            let limited = s
                .rules()
                .iter()
                .find(|r| r.id() == rule)
                .is_some_and(|r| !r.rule.syntax.paths.is_empty());
            assert!(!limited, "{rule} fired on {}", moved.path);
        }
    }
}

/// Bad inputs: a truncated file, an empty one, a huge one and binary noise
/// under a credential file's name end without a false finding.
#[test]
fn bad_inputs_under_credential_file_names() {
    let s = scanner();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (".pgpass", b"db.acme.internal:5432:orders".to_vec()),
        ("config/master.key", Vec::new()),
        ("config/master.key", vec![b'a'; 1 << 20]),
        ("sftp-config.json", b"{\n  \"password\": \"".to_vec()),
        (
            ".git-credentials",
            (0..=255u8).cycle().take(1 << 16).collect(),
        ),
    ];
    for (path, data) in cases {
        assert!(
            s.scan_bytes(path, &Origin::File, &data).is_empty(),
            "{path}"
        );
    }
}

/// Base64 values are decoded where the format says so and as blobs; the
/// finding is located at the encoded text and says it was decoded.
#[test]
fn encoded_secrets_are_found_at_the_encoded_text() {
    use keytrail_testkit::tool_files::encoded_files;
    let s = scanner();
    let mut problems = Vec::new();
    for seed in 0..6 {
        for f in encoded_files(seed) {
            let got = s.scan_bytes(&f.path, &Origin::File, f.text.as_bytes());
            for (rule, secret) in &f.secrets {
                let hit = got.iter().find(|x| {
                    rule.split('|').any(|r| r == s.rules()[x.rule].id())
                        && x.secret.expose() == secret
                });
                match hit {
                    None => problems.push(format!(
                        "{}: {rule} missing, got {:?}",
                        f.path,
                        got.iter()
                            .map(|x| (s.rules()[x.rule].id(), x.secret.expose()))
                            .collect::<Vec<_>>()
                    )),
                    Some(x) => {
                        let decoded = x.location.decoded.as_deref().unwrap_or("");
                        if !decoded.starts_with("base64") {
                            problems.push(format!("{}: {rule} not marked decoded", f.path));
                        }
                        // The location points at base64 text on its line.
                        let at = &f.text.as_bytes()[x.location.offset as usize..];
                        if !at[0].is_ascii_alphanumeric() || x.snippet_has_secret(secret) {
                            problems.push(format!("{}: {rule} located badly", f.path));
                        }
                        let line = f.text[..x.location.offset as usize].matches('\n').count() + 1;
                        if line as u64 != x.location.line {
                            problems.push(format!("{}: {rule} line", f.path));
                        }
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

trait SnippetCheck {
    fn snippet_has_secret(&self, secret: &str) -> bool;
}

impl SnippetCheck for keytrail_scan::BlobFinding {
    fn snippet_has_secret(&self, secret: &str) -> bool {
        self.location.snippet.contains(secret)
    }
}

/// Bad encoded input: truncated YAML, invalid base64, a huge blob and a
/// binary payload end the scan quickly with no false finding.
#[test]
fn bad_encoded_inputs() {
    use base64::Engine as _;
    let s = scanner();
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let huge = format!("data:\n  blob: {}\n", b64(&vec![b'x'; 3 << 20]));
    let binary: Vec<u8> = (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect();
    let cases: Vec<(&str, String)> = vec![
        (
            "t.yaml",
            "kind: Secret\ndata:\n  password: c2VjcmV0".to_string(),
        ),
        (
            "t.yaml",
            "kind: Secret\ndata:\n  config: !!!not-base64!!!\n".to_string(),
        ),
        (
            "t.yaml",
            "kind: Secret\ndata:\n  password: YQ\n  b: =\n".to_string(),
        ),
        ("t.yaml", huge),
        (
            "t.yaml",
            format!("kind: Secret\ndata:\n  payload: {}\n", b64(&binary)),
        ),
        (
            "t.json",
            format!(
                "{{\"kind\": \"Secret\", \"data\": {{\"x\": \"{}",
                &b64(b"password: hunter2hunter2")[..10]
            ),
        ),
    ];
    for (path, text) in cases {
        let t = std::time::Instant::now();
        let got = s.scan_bytes(path, &Origin::File, text.as_bytes());
        assert!(got.is_empty(), "{path}: {got:?}");
        assert!(t.elapsed().as_secs() < 5, "{path}: slow");
    }
}

/// Streaming in small chunks finds the decoded secrets at the same places
/// as scanning the whole buffer, each once.
#[test]
fn decoded_findings_stream_like_whole_buffers() {
    use keytrail_testkit::tool_files::encoded_files;
    let s = scanner().with_chunking(4096, 1024);
    let mut text = String::new();
    for f in encoded_files(9) {
        text.push_str(&"# filler line to move things across chunk edges\n".repeat(37));
        text.push_str(&f.text);
        text.push_str("---\n");
    }
    let key = |f: &keytrail_scan::BlobFinding| {
        (
            f.rule,
            f.location.offset,
            f.location.line,
            f.location.column,
            f.location.decoded.clone(),
            f.secret.expose().clone(),
        )
    };
    let whole: Vec<_> = s
        .scan_bytes("all.yaml", &Origin::File, text.as_bytes())
        .iter()
        .map(key)
        .collect();
    let (streamed, _) = s
        .scan_reader("all.yaml", &Origin::File, text.as_bytes())
        .unwrap();
    let mut streamed: Vec<_> = streamed.iter().map(key).collect();
    streamed.sort();
    let mut sorted = whole.clone();
    sorted.sort();
    assert_eq!(streamed, sorted);
    assert!(
        whole.iter().filter(|k| k.4.is_some()).count() >= 6,
        "{whole:?}"
    );
    // Decoding off: none of them.
    let off = scanner().with_decoding(false);
    assert!(
        off.scan_bytes("all.yaml", &Origin::File, text.as_bytes())
            .iter()
            .all(|f| f.location.decoded.is_none())
    );
}

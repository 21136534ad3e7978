//! End-to-end engine behaviour on generated text: recall and precision on
//! a source-like corpus, checksums, placeholders, allow comments,
//! streaming across chunk boundaries, locations and snippets, and
//! aggregation across files.

use keytrail_scan::{Aggregator, BlobFinding, Scanner, check_rules, fingerprint};
use keytrail_testkit::secrets::{FakeSecrets, PLANTED_KINDS, source_like_corpus};
use keytrail_types::Origin;
use std::collections::BTreeMap;

const RULES: &str = include_str!("fixtures/rules.yml");

fn scanner() -> Scanner {
    let (rules, diags) = keytrail_rules::load_str("fixtures/rules.yml", RULES);
    assert!(diags.is_empty(), "{diags:?}");
    let (scanner, diags) = Scanner::new(rules);
    assert!(diags.is_empty(), "{diags:?}");
    scanner
}

fn scan(s: &Scanner, text: &str) -> Vec<BlobFinding> {
    s.scan_bytes("t.txt", &Origin::File, text.as_bytes())
}

fn rule_id(s: &Scanner, f: &BlobFinding) -> String {
    s.rules()[f.rule].id().to_string()
}

#[test]
fn fixture_rules_pass_their_examples() {
    let (rules, _) = keytrail_rules::load_str("fixtures/rules.yml", RULES);
    assert_eq!(check_rules(&rules), vec![]);
}

/// Every planted secret is found at its offset and line, and nothing else
/// in the corpus (full of near-misses) is reported.
#[test]
fn corpus_recall_and_precision() {
    let s = scanner();
    let (text, planted) = source_like_corpus(2_000_000, 20_000, 11);
    let found = s.scan_bytes("corpus.txt", &Origin::File, &text);
    let by_offset: BTreeMap<u64, &BlobFinding> =
        found.iter().map(|f| (f.location.offset, f)).collect();
    let mut kinds_seen = std::collections::BTreeSet::new();
    for p in &planted {
        let f = by_offset
            .get(&(p.offset as u64))
            .unwrap_or_else(|| panic!("planted {} at {} not found", p.kind, p.offset));
        assert_eq!(f.secret.expose(), &p.secret, "{}", p.kind);
        assert_eq!(f.location.line, p.line, "{}", p.kind);
        kinds_seen.insert(p.kind);
    }
    assert_eq!(kinds_seen.len(), PLANTED_KINDS.len());
    let planted_offsets: std::collections::HashSet<u64> =
        planted.iter().map(|p| p.offset as u64).collect();
    // The corpus plants an AWS key id with its secret as one secret (the
    // builtin pair rules report them together); these test rules have no
    // pair rule, so the id of each pair is found on its own, rightly.
    let pair_id = |f: &&BlobFinding| {
        rule_id(&s, f) == "test.aws.key_id"
            && f.location.snippet.starts_with("aws_access_key_id = AKIA")
    };
    let extra: Vec<String> = found
        .iter()
        .filter(|f| !planted_offsets.contains(&f.location.offset))
        .filter(|f| !pair_id(f))
        .map(|f| {
            format!(
                "{} {}: {}",
                rule_id(&s, f),
                f.location.line,
                f.location.snippet
            )
        })
        .collect();
    assert!(extra.is_empty(), "false positives:\n{}", extra.join("\n"));
}

#[test]
fn wrong_checksum_is_not_reported() {
    let s = scanner();
    let mut g = FakeSecrets::new(5);
    let good = g.github_classic();
    let bad = g.github_classic_bad_checksum();
    let found = scan(&s, &format!("a = \"{good}\"\nb = \"{bad}\"\n"));
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].secret.expose(), &good);
    assert_eq!(found[0].notes, vec!["checksum valid".to_string()]);
}

#[test]
fn placeholders_are_not_reported() {
    let s = scanner();
    for text in [
        "GITHUB_TOKEN=ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "token: ${{ secrets.GITHUB_TOKEN }}",
        "aws_access_key_id = AKIAIOSFODNN7EXAMPLE",
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "STRIPE_KEY=sk_live_000000000000000000000000",
        "STRIPE_KEY=sk_live_abcdefghijklmnopqrstuvwx",
        "DATABASE_URL=postgres://app:${DB_PASSWORD}@db:5432/app",
        "DATABASE_URL=postgres://app:<password>@db:5432/app",
        "api_key = \"your_api_key_here\"",
        "password = \"changeme\"",
        "password = \"REDACTED\"",
        "api_token = \"{{ .Values.token }}\"",
        "-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----",
        "api_key = \"123e4567-e89b-42d3-a456-426614174000\"",
    ] {
        let found = scan(&s, text);
        assert!(
            found.is_empty(),
            "{text:?} gave {:?}",
            found.iter().map(|f| rule_id(&s, f)).collect::<Vec<_>>()
        );
    }
}

#[test]
fn allow_comments_are_honoured() {
    let s = scanner();
    let mut g = FakeSecrets::new(6);
    let t = g.github_classic();
    let u = g.github_classic();
    let text = format!(
        "a = \"{t}\"  # keytrail:allow\n# pragma: allowlist nextline secret\nb = \"{t}\"\nc = \"{u}\" // gitleaks:allow\nd = \"{u}\"\n"
    );
    let found = scan(&s, &text);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].location.line, 5);
}

#[test]
fn location_and_snippet() {
    let s = scanner();
    let mut g = FakeSecrets::new(7);
    let t = g.github_classic();
    let text = format!("line one\n\tconst token = \"{t}\"; // ci\nlast\n");
    let found = scan(&s, &text);
    assert_eq!(found.len(), 1);
    let loc = &found[0].location;
    assert_eq!((loc.line, loc.column), (2, 17));
    assert_eq!(loc.offset, text.find(&t).unwrap() as u64);
    assert!(!loc.snippet.contains(&t));
    assert_eq!(
        loc.snippet,
        format!("const token = \"{}\"; // ci", found[0].secret.redacted())
    );

    // A long line is cut around the secret, and a second secret on the
    // line is masked too.
    let u = g.github_classic();
    let long = format!(
        "{} x=\"{t}\" y=\"{u}\" {}\n",
        "a".repeat(500),
        "b".repeat(500)
    );
    let found = scan(&s, &long);
    assert_eq!(found.len(), 2);
    for f in &found {
        let snip = &f.location.snippet;
        assert!(snip.chars().count() <= 200, "{snip}");
        assert!(!snip.contains(&t) && !snip.contains(&u), "{snip}");
        assert!(snip.starts_with('…') && snip.ends_with('…'), "{snip}");
    }
}

#[test]
fn pem_key_in_json_and_multiline() {
    let s = scanner();
    let mut g = FakeSecrets::new(8);
    let sa = g.gcp_service_account_json();
    let pem = g.pem_rsa_private_key();
    let text = format!("{sa}\n{pem}");
    let found = scan(&s, &text);
    let ids: Vec<String> = found.iter().map(|f| rule_id(&s, f)).collect();
    assert_eq!(
        ids,
        vec!["test.private_key", "test.private_key"],
        "{found:?}"
    );
    assert_eq!(found[1].secret.expose(), pem.trim_end());
    for f in &found {
        assert!(
            !f.location.snippet.contains("MII"),
            "{}",
            f.location.snippet
        );
    }
}

/// The keyword may lie inside the match, after its start.
#[test]
fn keyword_inside_match_is_found() {
    let s = scanner();
    let mut g = FakeSecrets::new(9);
    let k = g.openai();
    let text = format!("{}\nOPENAI_API_KEY={k}\n", "filler text\n".repeat(50));
    let found = scan(&s, &text);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].secret.expose(), &k);
}

/// Dense keyword hits: windows overlap and merge, each match once.
#[test]
fn dense_hits_report_each_match_once() {
    let s = scanner();
    let mut g = FakeSecrets::new(10);
    let tokens: Vec<String> = (0..200).map(|_| g.github_classic()).collect();
    let text = tokens.join(" ghp_ ");
    let found = scan(&s, &text);
    assert_eq!(found.len(), 200);
    let mut offsets: Vec<u64> = found.iter().map(|f| f.location.offset).collect();
    offsets.dedup();
    assert_eq!(offsets.len(), 200);
}

fn key(f: &BlobFinding) -> (u64, u64, u64, String, usize, String) {
    (
        f.location.offset,
        f.location.line,
        f.location.column,
        f.secret.expose().clone(),
        f.rule,
        f.location.snippet.clone(),
    )
}

/// Streaming gives the same findings as scanning the whole buffer, for
/// several chunk sizes, including secrets that straddle chunk boundaries.
#[test]
fn streaming_matches_whole_buffer() {
    let (text, planted) = source_like_corpus(600_000, 7_000, 12);
    let whole = scanner().scan_bytes("c", &Origin::File, &text);
    for p in &planted {
        assert!(
            whole.iter().any(|f| f.location.offset == p.offset as u64),
            "{} {:?} at {} line {}",
            p.kind,
            p.secret,
            p.offset,
            p.line
        );
    }
    for (chunk, overlap) in [(16 << 10, 4 << 10), (50_000, 12_000), (1 << 20, 64 << 10)] {
        let s = scanner().with_chunking(chunk, overlap);
        let (streamed, n) = s.scan_reader("c", &Origin::File, &text[..]).unwrap();
        assert_eq!(n, text.len() as u64);
        assert_eq!(
            streamed.iter().map(key).collect::<Vec<_>>(),
            whole.iter().map(key).collect::<Vec<_>>(),
            "chunk {chunk}"
        );
    }
}

/// A secret placed exactly across a chunk boundary is found once.
#[test]
fn secret_straddling_a_chunk_boundary() {
    let mut g = FakeSecrets::new(13);
    let t = g.github_classic();
    let chunk = 4096;
    for shift in [0usize, 1, 10, 20, 39, 40, 41] {
        // Put the token so it crosses the first chunk's end (and the
        // acceptance boundary, chunk - overlap/2) at various points.
        for boundary in [chunk, chunk - 512] {
            let pad = boundary - shift;
            let mut text = String::new();
            while text.len() + 12 < pad {
                text.push_str("filler line\n");
            }
            while text.len() < pad {
                text.push('x');
            }
            text.push(' ');
            let at = text.len();
            text.push_str(&t);
            text.push('\n');
            text.push_str(&"more text\n".repeat(1000));
            let s = scanner().with_chunking(chunk, 1024);
            let (found, _) = s.scan_reader("f", &Origin::File, text.as_bytes()).unwrap();
            assert_eq!(found.len(), 1, "shift {shift} boundary {boundary}");
            assert_eq!(found[0].location.offset, at as u64);
            let line = 1 + text[..at].matches('\n').count() as u64;
            assert_eq!(found[0].location.line, line);
        }
    }
}

/// Streaming counts lines and columns across chunks, even for a line
/// longer than a chunk.
#[test]
fn streaming_lines_and_columns_across_chunks() {
    let mut g = FakeSecrets::new(14);
    let t = g.github_classic();
    let text = format!("{}\n{} {t}\n", "a\n".repeat(3000), "z".repeat(20_000));
    let s = scanner().with_chunking(4096, 1024);
    let (found, _) = s.scan_reader("f", &Origin::File, text.as_bytes()).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].location.line, 3002);
    assert_eq!(found[0].location.column, 20_002);
}

#[test]
fn aggregator_merges_one_secret_across_files() {
    let s = scanner();
    let mut g = FakeSecrets::new(15);
    let t = g.github_classic();
    let other = g.npm();
    let mut blobs: Vec<(String, String)> = (0..20)
        .map(|i| {
            (
                format!("dir/f{i:02}.env"),
                format!("# file {i}\nTOKEN={t}\n"),
            )
        })
        .collect();
    blobs.push(("a.env".into(), format!("NPM={other}\n")));
    let run = |order: &[usize]| {
        let mut agg = Aggregator::new();
        let mut second = Aggregator::new();
        for &i in order {
            let (p, text) = &blobs[i];
            for f in s.scan_bytes(p, &Origin::File, text.as_bytes()) {
                // Same location twice (e.g. two sources): kept once.
                second.add(&s, f.clone());
                agg.add(&s, f);
            }
        }
        agg.merge(second);
        agg.finish()
    };
    let forward: Vec<usize> = (0..blobs.len()).collect();
    let backward: Vec<usize> = forward.iter().rev().copied().collect();
    let a = run(&forward);
    let b = run(&backward);
    assert_eq!(a.len(), 2);
    assert_eq!(a[0].locations[0].path, "a.env");
    assert_eq!(a[1].locations.len(), 20);
    assert_eq!(a[1].locations[0].path, "dir/f00.env");
    assert_eq!(
        a[1].fingerprint,
        fingerprint("test.github.token", t.as_bytes())
    );
    assert_eq!(a[1].notes, vec!["checksum valid".to_string()]);
    let json = |v: &Vec<keytrail_types::Finding>| serde_json::to_string(v).unwrap();
    assert_eq!(json(&a), json(&b));
    assert!(!json(&a).contains(&t));
}

#[test]
fn context_captures_are_reported() {
    let yaml = RULES.replace(
        r"'\b((?:AKIA|ASIA)[A-Z2-7]{16})\b'",
        r"'\b((?:AKIA|ASIA)[A-Z2-7]{16})\b(?:.|\n){0,80}?(?P<region>[a-z]{2}-[a-z]+-[0-9])'",
    );
    let (rules, _) = keytrail_rules::load_str("t.yml", &yaml);
    let (s, d) = Scanner::new(rules);
    assert!(d.is_empty(), "{d:?}");
    let found = scan(&s, "id = AKIADEADBEEFDEADBEEF in eu-west-1\n");
    assert_eq!(found.len(), 1);
    assert_eq!(
        found[0].context,
        vec![("region".to_string(), "eu-west-1".to_string())]
    );
}

#[test]
fn unknown_validator_and_bad_pattern_are_diagnosed() {
    let yaml = RULES
        .replace("validate: aws_key_id", "validate: nope")
        .replace(
            r"'\b(glpat-[A-Za-z0-9_-]{20})\b'",
            r"'\b(glpat-[A-Za-z0-9_-]{20}\b'",
        );
    let (rules, _) = keytrail_rules::load_str("t.yml", &yaml);
    let n = rules.len();
    let (s, d) = Scanner::new(rules);
    assert_eq!(d.len(), 2, "{d:?}");
    assert!(
        d.iter()
            .any(|d| d.message.contains("unknown validator `nope`"))
    );
    assert!(d.iter().any(|d| d.message.contains("test.gitlab")));
    assert_eq!(s.rules().len(), n - 2);
}

#[test]
fn scanner_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Scanner>();
    let s = scanner();
    let mut g = FakeSecrets::new(16);
    let text = format!("t = {}\n", g.github_classic());
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| assert_eq!(scan(&s, &text).len(), 1));
        }
    });
}

/// Arbitrary bytes (invalid UTF-8, NULs, CRs, keywords at the edges)
/// never panic, in memory or streamed with tiny chunks.
#[test]
fn arbitrary_bytes_do_not_panic() {
    use rand::{Rng, SeedableRng};
    let s = scanner().with_chunking(256, 64);
    let mut rng = rand::rngs::StdRng::seed_from_u64(17);
    let pieces: [&[u8]; 8] = [
        b"ghp_",
        b"-----BEGIN PRIVATE KEY-----",
        b"\n",
        b"\r\n",
        b"\xff\xfe",
        b"\0",
        b"password = \"",
        b"eyJ",
    ];
    for _ in 0..200 {
        let mut data = Vec::new();
        while data.len() < 2000 {
            if rng.random_bool(0.3) {
                data.extend_from_slice(pieces[rng.random_range(0..pieces.len())]);
            } else {
                data.push(rng.random());
            }
        }
        let whole = s.scan_bytes("x", &Origin::File, &data);
        let (streamed, n) = s.scan_reader("x", &Origin::File, &data[..]).unwrap();
        assert_eq!(n as usize, data.len());
        assert_eq!(streamed.len(), whole.len());
    }
}

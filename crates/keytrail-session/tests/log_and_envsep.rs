//! The CI log source (original line numbers through ANSI and timestamp
//! prefixes, across chunk boundaries, over lines longer than a piece) and
//! the environment-separation step over real scan findings.

use keytrail_input::log::{CHUNK, MAX_LINE};
use keytrail_scan::{Aggregator, Scanner};
use keytrail_session::source::scan_log;
use keytrail_session::steps::envsep;
use keytrail_testkit::secrets::FakeSecrets;
use keytrail_types::Origin;

fn scanner() -> Scanner {
    let (rules, _) = keytrail_rules::builtin();
    Scanner::new(rules).0
}

#[test]
fn scan_log_reports_original_lines_and_columns() {
    let mut g = FakeSecrets::new(21);
    let token = g.github_classic();
    let raw = format!(
        "2024-05-01T12:34:56.1234567Z ##[group]Run ./release.sh\n\
         2024-05-01T12:34:56.2234567Z \x1b[36;1mpushing with\x1b[0m GITHUB_TOKEN=\x1b[32m{token}\x1b[0m\n\
         2024-05-01T12:34:57.0000000Z done\n"
    );
    let (found, bytes) = scan_log(&scanner(), "job.log", raw.as_bytes()).unwrap();
    assert_eq!(bytes, raw.len() as u64);
    let f = found
        .iter()
        .find(|f| f.secret.expose() == &token)
        .expect("token found");
    assert_eq!(f.location.line, 2);
    assert_eq!(f.location.origin, Origin::Log);
    let off = f.location.offset as usize;
    assert_eq!(
        &raw[off..off + token.len()],
        token,
        "offset points into the raw log"
    );
    let line_start = raw[..off].rfind('\n').unwrap() + 1;
    assert_eq!(f.location.column as usize, off - line_start + 1);
    assert!(!f.location.snippet.contains(&token));
    assert!(
        !f.location.snippet.contains('\x1b'),
        "snippet is cleaned text"
    );
}

#[test]
fn scan_log_across_chunks_and_gitlab_prefixes() {
    let mut g = FakeSecrets::new(23);
    let mut raw = String::new();
    let mut planted = Vec::new();
    let mut line = 0u64;
    while raw.len() < CHUNK * 2 + 100_000 {
        line += 1;
        if line.is_multiple_of(4_001) {
            let t = g.github_classic();
            raw.push_str(&format!("2024-05-01T12:34:56.123456Z 00O+ export GH={t}\n"));
            planted.push((line, t));
        } else {
            raw.push_str(&format!(
                "2024-05-01T12:34:56.123456Z 01E \x1b[0;m step {line} of the build is running\n"
            ));
        }
    }
    let (found, _) = scan_log(&scanner(), "-", raw.as_bytes()).unwrap();
    assert!(planted.len() >= 10);
    for (line, t) in &planted {
        let hits: Vec<_> = found.iter().filter(|f| f.secret.expose() == t).collect();
        assert_eq!(hits.len(), 1, "secret on line {line} reported once");
        assert_eq!(hits[0].location.line, *line);
    }
}

#[test]
fn scan_log_handles_a_line_longer_than_max_line() {
    let mut g = FakeSecrets::new(41);
    let token = g.github_classic();
    let mut raw = String::from("2024-05-01T12:34:56.1234567Z start\n");
    let line_start = raw.len();
    raw.push_str("2024-05-01T12:34:56.1234567Z ");
    while raw.len() - line_start < MAX_LINE * 2 + 12_345 {
        raw.push_str("abc def ");
    }
    let at = raw.len();
    raw.push_str(&format!(" token {token} tail\nlast line\n"));
    let (found, bytes) = scan_log(&scanner(), "big.log", raw.as_bytes()).unwrap();
    assert_eq!(bytes, raw.len() as u64);
    let f = found
        .iter()
        .find(|f| f.secret.expose() == &token)
        .expect("token on the long line");
    assert_eq!(f.location.line, 2);
    let off = f.location.offset as usize;
    assert_eq!(&raw[off..off + token.len()], token);
    assert_eq!(off, at + " token ".len());
    assert_eq!(f.location.column as usize, off - line_start + 1);
}

#[test]
fn shared_credential_across_environments_from_a_scan() {
    let mut g = FakeSecrets::new(29);
    let shared = g.stripe_live_secret();
    let only_dev = g.stripe_live_secret();
    let s = scanner();
    let mut agg = Aggregator::new();
    for (path, text) in [
        (
            ".env.dev",
            format!("STRIPE_KEY={shared}\nOTHER={only_dev}\n"),
        ),
        (
            "deploy/overlays/production/secret.env",
            format!("STRIPE_KEY={shared}\n"),
        ),
        (
            "charts/app/values.staging.yaml",
            format!("stripe: {shared}\n"),
        ),
        ("src/app.py", format!("KEY = '{only_dev}'\n")),
    ] {
        for f in s.scan_bytes(path, &Origin::File, text.as_bytes()) {
            agg.add(&s, f);
        }
    }
    let findings = agg.finish();
    let extra = envsep::shared_across_environments(&findings);
    assert_eq!(extra.len(), 1, "{extra:#?}");
    let f = &extra[0];
    assert_eq!(f.rule_id, envsep::RULE_ID);
    assert_eq!(f.secret.expose(), &shared);
    assert_eq!(
        f.context
            .iter()
            .find(|(k, _)| k == "environments")
            .unwrap()
            .1,
        "dev,prod,staging"
    );
    assert_eq!(f.locations.len(), 3);
    assert_eq!(
        f.severity,
        keytrail_types::Severity::Critical.max(f.severity)
    );
    assert!(!serde_json::to_string(&extra).unwrap().contains(&shared));
}

//! Every builtin rule loads, compiles, and passes its own examples and
//! negative examples.

#[test]
fn builtin_rules_load_without_diagnostics() {
    let (rules, diags) = keytrail_rules::builtin();
    let msgs: Vec<String> = diags.iter().map(|d| d.to_string()).collect();
    assert!(
        msgs.is_empty(),
        "rule load diagnostics:\n{}",
        msgs.join("\n")
    );
    assert!(!rules.is_empty());
}

#[test]
fn builtin_rules_pass_their_examples() {
    let (rules, _) = keytrail_rules::builtin();
    let diags = keytrail_scan::check_rules(&rules);
    let msgs: Vec<String> = diags.iter().map(|d| d.to_string()).collect();
    assert!(
        msgs.is_empty(),
        "{} problems:\n{}",
        msgs.len(),
        msgs.join("\n")
    );
}

/// The builtin rules find every secret planted in generated source-like
/// text, and report nothing else there (the filler is full of near-misses:
/// placeholders, digests, references, documentation keys).
#[test]
fn builtin_rules_find_planted_secrets_and_nothing_else() {
    use keytrail_testkit::secrets::source_like_corpus;
    let (rules, _) = keytrail_rules::builtin();
    let (scanner, _) = keytrail_scan::Scanner::new(rules);
    let (text, planted) = source_like_corpus(1 << 20, 5_000, 21);
    let found = scanner.scan_bytes("corpus.txt", &keytrail_types::Origin::File, &text);
    let missed: Vec<&str> = planted
        .iter()
        .filter(|p| {
            !found
                .iter()
                .any(|f| f.location.offset == p.offset as u64 && f.secret.expose() == &p.secret)
        })
        .map(|p| p.kind)
        .collect();
    assert!(missed.is_empty(), "planted secrets missed: {missed:?}");
    let extra: Vec<String> = found
        .iter()
        .filter(|f| !planted.iter().any(|p| p.offset as u64 == f.location.offset))
        .map(|f| {
            format!(
                "{} line {}: {}",
                scanner.rules()[f.rule].id(),
                f.location.line,
                f.location.snippet
            )
        })
        .collect();
    assert!(
        extra.is_empty(),
        "findings on filler:\n{}",
        extra.join("\n")
    );
}

/// Rules that match the same secret bytes at the same place are reported
/// once, by the most specific rule, naming the others in the notes.
mod cross_rule_dedup {
    use keytrail_scan::Scanner;
    use keytrail_testkit::secrets::FakeSecrets;
    use keytrail_types::Origin;

    fn scanner() -> Scanner {
        let (rules, _) = keytrail_rules::builtin();
        let (s, diags) = Scanner::new(rules);
        assert!(diags.is_empty(), "{diags:?}");
        s
    }

    /// Raw matches (before de-duplication) must come from all `rules` on
    /// `secret`; `scan_bytes` must then report it once, by `keep`, with
    /// the others noted.
    fn check(s: &Scanner, text: &str, secret: &str, rules: &[&str], keep: &str) {
        let raw: Vec<&str> = s
            .find_matches(Some("t"), text.as_bytes())
            .iter()
            .filter(|m| &text[m.secret.clone()] == secret)
            .map(|m| s.rules()[m.rule].id())
            .collect();
        for r in rules {
            assert!(raw.contains(r), "{r} should match on its own: {raw:?}");
        }
        let found = s.scan_bytes("t", &Origin::File, text.as_bytes());
        let on_secret: Vec<_> = found
            .iter()
            .filter(|f| f.secret.expose() == secret)
            .collect();
        assert_eq!(on_secret.len(), 1, "{found:?}");
        let f = on_secret[0];
        assert_eq!(s.rules()[f.rule].id(), keep);
        for r in rules.iter().filter(|r| **r != keep) {
            let note = format!("also matched by rule {r}");
            assert!(f.notes.contains(&note), "{:?} lacks {note}", f.notes);
        }
    }

    #[test]
    fn aws_pair_and_secret_access_key() {
        let s = scanner();
        let mut g = FakeSecrets::new(7);
        let k = g.aws_key_pair();
        let text = format!(
            "[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            k.access_key_id, k.secret_access_key
        );
        check(
            &s,
            &text,
            &k.secret_access_key,
            &["aws.access_key.pair", "aws.secret_access_key"],
            "aws.access_key.pair",
        );
    }

    #[test]
    fn npmrc_and_npm_token() {
        let s = scanner();
        let mut g = FakeSecrets::new(8);
        let tok = g.npm();
        let text = format!(
            "registry=https://registry.npmjs.org/\n//registry.npmjs.org/:_authToken={tok}\n"
        );
        check(
            &s,
            &text,
            &tok,
            &["config.npmrc_auth_token", "npm.access_token"],
            "npm.access_token",
        );
    }

    #[test]
    fn gcp_service_account_and_pkcs8() {
        let s = scanner();
        let mut g = FakeSecrets::new(9);
        let json = g.gcp_service_account_json();
        let found = s.find_matches(Some("sa.json"), json.as_bytes());
        let m = found
            .iter()
            .find(|m| s.rules()[m.rule].id() == "gcp.service_account.key")
            .expect("gcp rule matches");
        let secret = json[m.secret.clone()].to_string();
        check(
            &s,
            &json,
            &secret,
            &["gcp.service_account.key", "private_key.pkcs8"],
            "gcp.service_account.key",
        );
    }

    /// The key id of an id + secret pair is part of the pair: it is not
    /// reported again alone (at low severity) by `aws.access_key_id`; a
    /// key id elsewhere without its secret still is.
    #[test]
    fn aws_pair_reports_its_key_id_once() {
        let s = scanner();
        let mut g = FakeSecrets::new(11);
        let k = g.aws_key_pair();
        let lone = g.aws_key_pair().access_key_id;
        for text in [
            format!(
                "[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
                k.access_key_id, k.secret_access_key
            ),
            format!(
                "export AWS_SECRET_ACCESS_KEY={}\nexport AWS_ACCESS_KEY_ID={}\n",
                k.secret_access_key, k.access_key_id
            ),
        ] {
            let raw: Vec<&str> = s
                .find_matches(Some("t"), text.as_bytes())
                .iter()
                .map(|m| s.rules()[m.rule].id())
                .collect();
            assert!(raw.contains(&"aws.access_key_id"), "{raw:?}");
            // Far enough (> 320 bytes) that no pair rule reaches it.
            let filler = "# unrelated line\n".repeat(30);
            let text = format!("{text}{filler}key_id = {lone}\n");
            let found = s.scan_bytes("t", &Origin::File, text.as_bytes());
            let ids: Vec<(&str, String)> = found
                .iter()
                .map(|f| (s.rules()[f.rule].id(), f.secret.expose().clone()))
                .collect();
            assert_eq!(ids.len(), 2, "{ids:?}");
            assert!(ids[0].0.starts_with("aws.access_key.pair"), "{ids:?}");
            assert_eq!(ids[0].1, k.secret_access_key);
            assert_eq!(ids[1], ("aws.access_key_id", lone.clone()));
            let note = "also matched by rule aws.access_key_id".to_string();
            assert!(found[0].notes.contains(&note), "{:?}", found[0].notes);
        }
    }

    /// Distinct secrets side by side are not merged.
    #[test]
    fn distinct_secrets_stay_apart() {
        let s = scanner();
        let mut g = FakeSecrets::new(10);
        let (a, b) = (g.github_classic(), g.npm());
        let text = format!("A={a} B={b}\n");
        let found = s.scan_bytes("t", &Origin::File, text.as_bytes());
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found
                .iter()
                .all(|f| f.notes.iter().all(|n| !n.starts_with("also")))
        );
    }
}

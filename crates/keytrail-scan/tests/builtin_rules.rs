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

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

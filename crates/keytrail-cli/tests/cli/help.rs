//! `--help` output is part of the interface: snapshot it.

use crate::CliTest;

#[test]
fn help_snapshots() {
    let t = CliTest::new();
    for (name, args) in [
        ("help_top", &["--help"][..]),
        ("help_scan", &["scan", "--help"][..]),
        ("help_rules_check", &["rules", "check", "--help"][..]),
        (
            "help_baseline_create",
            &["baseline", "create", "--help"][..],
        ),
        ("help_schedule_add", &["schedule", "add", "--help"][..]),
        ("help_schedule_run", &["schedule", "run", "--help"][..]),
        (
            "help_schedule_detect",
            &["schedule", "detect", "--help"][..],
        ),
        ("help_submit_detect", &["submit", "detect", "--help"][..]),
    ] {
        let r = t.run(args);
        assert_eq!(r.code, 0, "{name}: {r:?}");
        insta::assert_snapshot!(name, r.stdout);
    }
}

#[test]
fn every_flag_has_an_example() {
    let t = CliTest::new();
    for sub in [
        &["scan"][..],
        &["baseline", "create"],
        &["rules", "list"],
        &["rules", "check"],
        &["verify"],
        &["revoke"],
        &["rotate", "aws-key"],
        &["import"],
        &["findings"],
        &["triage"],
        &["serve"],
        &["token", "create"],
        &["submit", "scan"],
        &["submit", "github-org"],
        &["submit", "gitlab-group"],
        &["submit", "registry"],
        &["submit", "aws-org"],
        &["submit", "detect"],
        &["collect", "aws"],
        &["worker"],
        &["jobs"],
        &["schedule", "add"],
        &["schedule", "detect"],
        &["schedule", "list"],
        &["schedule", "remove"],
        &["schedule", "run"],
    ] {
        let mut args = sub.to_vec();
        args.push("--help");
        let r = t.run(&args);
        // Split the long help into one section per argument: a section
        // starts at a line indented by at most 6 spaces that names a flag
        // or positional, and runs until the next one.
        let mut sections: Vec<String> = Vec::new();
        for line in r.stdout.lines() {
            let indent = line.len() - line.trim_start().len();
            let head = line.trim_start();
            if (1..=6).contains(&indent)
                && (head.starts_with('-') || head.starts_with('<') || head.starts_with('['))
            {
                sections.push(String::new());
            } else if !line.starts_with(' ') && !line.is_empty() {
                sections.push("[end]".into());
            }
            if let Some(s) = sections.last_mut() {
                s.push_str(line);
                s.push('\n');
            }
        }
        let mut checked = 0;
        for s in sections.iter().filter(|s| !s.starts_with("[end]")) {
            let head = s.trim_start();
            if head.starts_with("-h, --help") || head.starts_with("-V, --version") {
                continue;
            }
            assert!(s.contains("Example"), "{sub:?}: no example in:\n{s}");
            checked += 1;
        }
        assert!(checked >= 2, "{sub:?}: parsed only {checked} arguments");
    }
}

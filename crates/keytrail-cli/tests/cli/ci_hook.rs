//! `keytrail hook install`: writes the pre-commit hook, refuses to
//! overwrite a foreign one without --force.

use crate::CliTest;
use std::process::Command;

fn git(t: &CliTest, args: &[&str]) {
    let ok = Command::new("git")
        .args(args)
        .current_dir(t.root())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .status()
        .unwrap()
        .success();
    assert!(ok, "git {args:?}");
}

#[test]
fn hook_install_writes_chains_and_uninstalls() {
    let t = CliTest::new();
    git(&t, &["init", "-q"]);
    let r = t.run(&["hook", "install"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let hook = t.read(".git/hooks/pre-commit");
    assert!(hook.contains("scan --staged"));
    assert!(hook.contains("--no-verify"));
    // Installing again updates our own hook.
    assert_eq!(t.run(&["hook", "install"]).code, 0);
    // Uninstall removes it; a second uninstall has nothing to do.
    let r = t.run(&["hook", "uninstall"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(!t.root().join(".git/hooks/pre-commit").exists());
    assert_eq!(t.run(&["hook", "uninstall"]).code, 0);

    // A foreign hook is chained, not replaced, and comes back on uninstall.
    t.write(".git/hooks/pre-commit", "#!/bin/sh\necho mine\n");
    let r = t.run(&["hook", "install"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stderr.contains("runs first"), "{}", r.stderr);
    assert!(t.read(".git/hooks/pre-commit").contains("keytrail-hook"));
    assert_eq!(
        t.read(".git/hooks/pre-commit.keytrail-chained"),
        "#!/bin/sh\necho mine\n"
    );
    assert_eq!(t.run(&["hook", "uninstall"]).code, 0);
    assert_eq!(t.read(".git/hooks/pre-commit"), "#!/bin/sh\necho mine\n");
    assert!(
        !t.root()
            .join(".git/hooks/pre-commit.keytrail-chained")
            .exists()
    );

    // Uninstall leaves a foreign hook alone.
    let r = t.run(&["hook", "uninstall"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("was not written by keytrail"),
        "{}",
        r.stderr
    );
    assert_eq!(t.read(".git/hooks/pre-commit"), "#!/bin/sh\necho mine\n");

    // --force replaces it (kept as a backup), and uninstall restores it.
    assert_eq!(t.run(&["hook", "install", "--force"]).code, 0);
    assert_eq!(
        t.read(".git/hooks/pre-commit.keytrail-backup"),
        "#!/bin/sh\necho mine\n"
    );
    assert_eq!(t.run(&["hook", "uninstall"]).code, 0);
    assert_eq!(t.read(".git/hooks/pre-commit"), "#!/bin/sh\necho mine\n");
}

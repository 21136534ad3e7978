//! The pre-commit hook in real git repositories. (CI log scanning and
//! environment separation are tested with the scan session, in
//! crates/keytrail-session/tests.)

use keytrail_ci::hook;
use std::path::Path;
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .expect("git runs")
}

fn repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    assert!(git(dir.path(), &["init", "-q"]).status.success());
    git(dir.path(), &["config", "user.email", "t@example.com"]);
    git(dir.path(), &["config", "user.name", "T"]);
    dir
}

/// A stand-in for the keytrail binary: exits with `code`.
fn fake_keytrail(dir: &Path, code: i32) -> String {
    let p = dir.join(format!("fake-keytrail-{code}"));
    std::fs::write(
        &p,
        format!("#!/bin/sh\necho \"scan $*\" >&2\nexit {code}\n"),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    p.display().to_string()
}

#[test]
fn hook_blocks_commits_with_findings_and_allows_clean_ones() {
    let r = repo();
    let bin = tempfile::tempdir().unwrap();
    let blocking = fake_keytrail(bin.path(), 1);
    let installed = hook::install(r.path(), &blocking, false).unwrap();
    let hook_path = r.path().join(".git/hooks/pre-commit");
    assert!(matches!(installed, hook::Installed::Created(ref p) if *p == hook_path));
    std::fs::write(r.path().join("a.txt"), "x\n").unwrap();
    git(r.path(), &["add", "a.txt"]);
    let out = git(r.path(), &["commit", "-q", "-m", "x"]);
    assert!(!out.status.success(), "commit must be blocked");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("scan --staged"), "{stderr}");
    assert!(stderr.contains("git commit --no-verify"), "{stderr}");
    assert!(stderr.contains("keytrail:allow"), "{stderr}");
    // Reinstalling (own hook) with a scanner that finds nothing.
    let clean = fake_keytrail(bin.path(), 0);
    assert!(matches!(
        hook::install(r.path(), &clean, false).unwrap(),
        hook::Installed::Updated(_)
    ));
    assert!(git(r.path(), &["commit", "-q", "-m", "x"]).status.success());
}

/// An existing hook is chained: it runs first, with the same arguments,
/// and its failure blocks the commit; keytrail's scan runs after it.
#[test]
fn hook_chains_a_foreign_hook() {
    let r = repo();
    let hooks = r.path().join(".git/hooks");
    std::fs::create_dir_all(&hooks).unwrap();
    let log = r.path().join("order.log");
    std::fs::write(
        hooks.join("pre-commit"),
        format!(
            "#!/bin/sh\necho previous >> '{}'\n[ -f '{}' ] && exit 3\nexit 0\n",
            log.display(),
            r.path().join("fail-previous").display()
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            hooks.join("pre-commit"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
    }
    let bin = tempfile::tempdir().unwrap();
    let scanner = bin.path().join("fake-keytrail");
    std::fs::write(
        &scanner,
        format!("#!/bin/sh\necho scan >> '{}'\nexit 0\n", log.display()),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&scanner, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    match hook::install(r.path(), &scanner.display().to_string(), false).unwrap() {
        hook::Installed::Chained { chained, .. } => {
            assert_eq!(chained, hooks.join(hook::CHAINED));
        }
        other => panic!("{other:?}"),
    }
    std::fs::write(r.path().join("a.txt"), "x\n").unwrap();
    git(r.path(), &["add", "a.txt"]);
    assert!(git(r.path(), &["commit", "-q", "-m", "x"]).status.success());
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "previous\nscan\n");

    // The chained hook failing blocks the commit, before keytrail runs.
    std::fs::write(r.path().join("fail-previous"), "").unwrap();
    std::fs::write(&log, "").unwrap();
    std::fs::write(r.path().join("b.txt"), "y\n").unwrap();
    git(r.path(), &["add", "b.txt"]);
    assert!(!git(r.path(), &["commit", "-q", "-m", "y"]).status.success());
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "previous\n");

    // A second foreign hook would lose the chained one: refused.
    std::fs::write(hooks.join("pre-commit"), "#!/bin/sh\nexit 0\n").unwrap();
    let err = hook::install(r.path(), "keytrail", false).unwrap_err();
    assert!(matches!(err, hook::HookError::AlreadyChained(_)), "{err}");
}

#[test]
fn hook_force_replaces_and_uninstall_restores() {
    let r = repo();
    let hooks = r.path().join(".git/hooks");
    std::fs::create_dir_all(&hooks).unwrap();
    std::fs::write(hooks.join("pre-commit"), "#!/bin/sh\nexit 0\n").unwrap();
    match hook::install(r.path(), "keytrail", true).unwrap() {
        hook::Installed::Replaced { backup, .. } => {
            assert_eq!(
                std::fs::read_to_string(backup).unwrap(),
                "#!/bin/sh\nexit 0\n"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(
        std::fs::read_to_string(hooks.join("pre-commit"))
            .unwrap()
            .contains(hook::MARKER)
    );
    assert!(matches!(
        hook::uninstall(r.path()).unwrap(),
        hook::Uninstalled::Restored { .. }
    ));
    assert_eq!(
        std::fs::read_to_string(hooks.join("pre-commit")).unwrap(),
        "#!/bin/sh\nexit 0\n"
    );
    let err = hook::uninstall(r.path()).unwrap_err();
    assert!(matches!(err, hook::HookError::ForeignHook(_)), "{err}");
}

#[test]
fn hook_honours_core_hooks_path() {
    let r = repo();
    git(r.path(), &["config", "core.hooksPath", "tools/githooks"]);
    hook::install(r.path(), "keytrail", false).unwrap();
    assert!(r.path().join("tools/githooks/pre-commit").is_file());
    assert!(!r.path().join(".git/hooks/pre-commit").exists());
}

#[test]
fn hook_outside_a_repository_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = hook::install(dir.path(), "keytrail", false).unwrap_err();
    assert!(matches!(err, hook::HookError::NotARepository(_)), "{err}");
}

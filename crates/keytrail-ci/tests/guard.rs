//! CI log scanning (original line numbers through ANSI and timestamp
//! prefixes, across chunk boundaries), environment separation over real
//! scan findings, and the pre-commit hook in real git repositories.

use keytrail_ci::{envsep, hook, log};
use keytrail_scan::{Aggregator, Scanner};
use keytrail_testkit::secrets::FakeSecrets;
use keytrail_types::Origin;
use std::path::Path;
use std::process::Command;

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
    let (found, bytes) = log::scan_log(&scanner(), "job.log", raw.as_bytes()).unwrap();
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
    while raw.len() < log::CHUNK * 2 + 100_000 {
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
    let (found, _) = log::scan_log(&scanner(), "-", raw.as_bytes()).unwrap();
    assert!(planted.len() >= 10);
    for (line, t) in &planted {
        let hits: Vec<_> = found.iter().filter(|f| f.secret.expose() == t).collect();
        assert_eq!(hits.len(), 1, "secret on line {line} reported once");
        assert_eq!(hits[0].location.line, *line);
    }
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

#[test]
fn scan_log_handles_a_line_longer_than_max_line() {
    let mut g = FakeSecrets::new(41);
    let token = g.github_classic();
    let mut raw = String::from("2024-05-01T12:34:56.1234567Z start\n");
    let line_start = raw.len();
    raw.push_str("2024-05-01T12:34:56.1234567Z ");
    while raw.len() - line_start < log::MAX_LINE * 2 + 12_345 {
        raw.push_str("abc def ");
    }
    let at = raw.len();
    raw.push_str(&format!(" token {token} tail\nlast line\n"));
    let (found, bytes) = log::scan_log(&scanner(), "big.log", raw.as_bytes()).unwrap();
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

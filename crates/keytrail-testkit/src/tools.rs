//! External programs the integration tests drive (umoci, skopeo,
//! docker-registry, openssl, git): whether they are installed, and running
//! them with their errors in the panic message.

use std::process::{Command, Stdio};

/// Whether every program in `names` is installed. When one is missing the
/// test is skipped with a loud message naming `install_hint`, except under
/// CI (`CI=true`), where a missing tool is a failure: CI must run every
/// test.
pub fn available(names: &[&str], install_hint: &str) -> bool {
    let missing: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| {
            Command::new("sh")
                .args(["-c", &format!("command -v {n} || test -x /usr/bin/{n}")])
                .stdout(Stdio::null())
                .status()
                .map(|s| !s.success())
                .unwrap_or(true)
        })
        .collect();
    if missing.is_empty() {
        return true;
    }
    let msg = format!("these tests need {missing:?} ({install_hint})");
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg}");
    }
    eprintln!("\n!!!!!!!!!! SKIPPED: {msg} !!!!!!!!!!\n");
    false
}

/// Run `cmd` and return its standard output; panics with its standard
/// error when it cannot start or fails.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_installed_programs_and_runs_them() {
        assert!(available(&["sh"], "POSIX shell"));
        assert_eq!(run(Command::new("sh").args(["-c", "printf ok"])), "ok");
    }

    #[test]
    #[should_panic(expected = "failed")]
    fn a_failing_program_panics_with_its_error() {
        run(Command::new("sh").args(["-c", "echo boom >&2; exit 3"]));
    }
}

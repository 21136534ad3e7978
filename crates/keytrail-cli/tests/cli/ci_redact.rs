//! `keytrail redact`: known values from the environment and a file, rule
//! matches, binary stdin, and a closed output pipe.

use crate::CliTest;
use keytrail_testkit::secrets::{BASE64, FakeSecrets};
use std::io::{Read, Write};
use std::process::Stdio;

#[test]
fn redact_masks_env_and_file_values_and_rule_matches() {
    let t = CliTest::new();
    let mut g = FakeSecrets::new(31);
    let env_value = g.chars(BASE64, 32);
    let file_value = g.chars(BASE64, 28);
    let token = g.github_classic();
    t.write("values.txt", &format!("# deploy values\n{file_value}\n"));
    let input = format!("step 1\nenv {env_value}\nfile {file_value}\nrule {token}\nbye\n");
    let mut c = t.command(&[
        "redact",
        "--secret-env",
        "DEPLOY_KEY",
        "--secrets-file",
        "values.txt",
    ]);
    c.env("DEPLOY_KEY", &env_value);
    let out = run_with(c, input.as_bytes());
    assert_eq!(out.0, 0, "{}", out.2);
    let stdout = String::from_utf8(out.1).unwrap();
    assert_eq!(
        stdout,
        "step 1\nenv [REDACTED:env:DEPLOY_KEY]\nfile [REDACTED:secrets-file:2]\nrule [REDACTED:github.pat.classic]\nbye\n"
    );
}

#[test]
fn redact_fixed_mask_and_binary_stdin() {
    let t = CliTest::new();
    let mut g = FakeSecrets::new(37);
    let value = g.chars(BASE64, 30);
    let mut input: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    input.extend_from_slice(value.as_bytes());
    input.extend((0..=255u8).rev().cycle().take(70_000));
    let mut c = t.command(&["redact", "--no-rules", "--mask", "***", "--secret-env", "V"]);
    c.env("V", &value);
    let (code, stdout, stderr) = run_with(c, &input);
    assert_eq!(code, 0, "{stderr}");
    let mut expected: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    expected.extend_from_slice(b"***");
    expected.extend((0..=255u8).rev().cycle().take(70_000));
    assert!(stdout == expected, "binary output differs");
}

#[test]
fn redact_warns_about_unset_variables() {
    let t = CliTest::new();
    let mut c = t.command(&[
        "redact",
        "--no-rules",
        "--secret-env",
        "KEYTRAIL_TEST_UNSET_VAR",
    ]);
    c.env_remove("KEYTRAIL_TEST_UNSET_VAR");
    let (code, stdout, stderr) = run_with(c, b"hello\n");
    assert_eq!(code, 0);
    assert_eq!(stdout, b"hello\n");
    assert!(stderr.contains("KEYTRAIL_TEST_UNSET_VAR"), "{stderr}");
}

#[test]
fn redact_exits_quietly_when_the_reader_goes_away() {
    let t = CliTest::new();
    let mut child = t
        .command(&["redact", "--no-rules"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let feeder = std::thread::spawn(move || {
        let line = vec![b'x'; 1023];
        for _ in 0..20_000 {
            if stdin
                .write_all(&line)
                .and_then(|()| stdin.write_all(b"\n"))
                .is_err()
            {
                break;
            }
        }
    });
    let mut first = [0u8; 16];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Run a prepared command with `input` on stdin: (code, stdout, stderr).
fn run_with(mut c: std::process::Command, input: &[u8]) -> (i32, Vec<u8>, String) {
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    (
        out.status.code().unwrap(),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

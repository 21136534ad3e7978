//! Hostile and failing inputs at the command line (issue 15): archives cut
//! by a limit are visible in every format and fail `--fail-on-error`;
//! FIFOs named on the command line are read; a target the user named that
//! cannot be read fails the run; huge thread counts are clamped; UTF-16
//! logs are read; posture says when nothing was evaluated. Each bad input
//! sits next to a good one whose finding must still be reported.

use super::{CliTest, fake};
use serde_json::Value;
use std::io::Write;

/// A gzip of 40 MiB of filler (far over the 200:1 bomb ratio) then a
/// credentials line: the ratio guard stops it before the secret.
fn cut_gz(t: &CliTest, secret: &str) {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&vec![b'a'; 40 << 20]).unwrap();
    gz.write_all(format!("\nGITHUB_TOKEN={secret}\n").as_bytes())
        .unwrap();
    std::fs::create_dir_all(t.root().join("tree")).unwrap();
    std::fs::write(t.root().join("tree/cut.log.gz"), gz.finish().unwrap()).unwrap();
}

#[test]
fn an_archive_cut_by_a_limit_is_visible_everywhere_and_fails_with_fail_on_error() {
    let t = CliTest::new();
    let hidden = fake::github_pat();
    let visible = fake::github_pat();
    cut_gz(&t, &hidden);
    t.write("tree/ok.env", &format!("TOKEN={visible}\n"));

    // Human: a warning (without -v), the summary counts it, the hint.
    let r = t.run(&["scan", "tree"]);
    assert_eq!(r.code, 1, "the neighbour's finding: {r:?}");
    assert!(
        r.stderr.contains("warning: tree/cut.log.gz!cut.log")
            && r.stderr.contains("--max-archive-ratio"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("1 archive only partly scanned"),
        "{}",
        r.stderr
    );
    assert!(!r.all().contains(&hidden));

    // JSON: summary.incomplete and summary.not_scanned.
    let r = t.run(&["scan", "--format", "json", "tree"]);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["summary"]["incomplete"], 1);
    assert_eq!(v["summary"]["not_scanned"][0]["kind"], "archive_bomb");
    assert_eq!(
        v["summary"]["not_scanned"][0]["path"],
        "tree/cut.log.gz!cut.log"
    );
    assert_eq!(v["findings"].as_array().unwrap().len(), 1);

    // JSONL: a not_scanned line after the finding lines.
    let r = t.run(&["scan", "--format", "jsonl", "tree"]);
    let lines: Vec<Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{}", r.stdout);
    assert_eq!(lines[1]["type"], "not_scanned");
    assert_eq!(lines[1]["path"], "tree/cut.log.gz!cut.log");

    // SARIF: a tool execution notification, execution not successful.
    let r = t.run(&["scan", "--format", "sarif", "tree"]);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let inv = &v["runs"][0]["invocations"][0];
    assert_eq!(inv["executionSuccessful"], false);
    assert_eq!(
        inv["toolExecutionNotifications"][0]["descriptor"]["id"],
        "archive_bomb"
    );

    // --fail-on-error: incomplete is an error (2 wins over 1).
    assert_eq!(t.run(&["scan", "--fail-on-error", "tree"]).code, 2);

    // Raised limits: the member after the filler is scanned.
    let r = t.run(&[
        "scan",
        "--format",
        "json",
        "--fail-on-error",
        "--max-archive-ratio",
        "0",
        "--max-archive-bytes",
        "64M",
        "tree",
    ]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["findings"].as_array().unwrap().len(), 2);
    assert_eq!(v["summary"]["not_scanned"], serde_json::json!([]));

    // A byte limit too small is the same kind of cut.
    let r = t.run(&[
        "scan",
        "--max-archive-ratio",
        "0",
        "--max-archive-bytes",
        "1M",
        "tree",
    ]);
    assert!(r.stderr.contains("--max-archive-bytes"), "{}", r.stderr);
    let bad = t.run(&["scan", "--max-archive-bytes", "lots", "tree"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("is not a size"), "{}", bad.stderr);
}

#[test]
fn a_fifo_named_on_the_command_line_is_read() {
    let t = CliTest::new();
    let secret = fake::github_pat();
    let fifo = t.root().join("pipe");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo (coreutils) must be installed")
            .success()
    );
    t.write("ok.txt", "nothing here\n");
    let writer_path = fifo.clone();
    let line = format!("TOKEN={secret}\n");
    let writer = std::thread::spawn(move || {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(writer_path)
            .unwrap();
        f.write_all(line.as_bytes()).unwrap();
    });
    let r = t.run(&["scan", "--format", "jsonl", "ok.txt", "pipe"]);
    writer.join().unwrap();
    assert_eq!(r.code, 1, "{r:?}");
    let v: Value = serde_json::from_str(r.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(v["path"], "pipe");
}

#[test]
fn a_named_target_that_cannot_be_read_fails_the_run() {
    let t = CliTest::new();
    t.write("ok.env", &format!("TOKEN={}\n", fake::github_pat()));
    let gone = t.root().join("no-such-repo.git");
    let url = format!("file://{}", gone.display());
    let r = t.run(&["scan", "--git-url", &url, "ok.env"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr
            .contains(&format!("error: `{url}` could not be read")),
        "{}",
        r.stderr
    );
    // The rest of the run went on: the finding is reported.
    assert!(r.stdout.contains("ok.env"), "{}", r.stdout);

    // A closed loopback port: an unreachable registry, without the network.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let unreachable = format!("127.0.0.1:{port}/app:1");
    for image in [
        "docker-archive:missing.tar",
        "UPPER/Case::bad",
        &unreachable,
    ] {
        let r = t.run(&["scan", "--image", image, "ok.env"]);
        assert_eq!(r.code, 2, "{image}: {r:?}");
        assert!(r.stderr.contains("could not be read"), "{}", r.stderr);
        assert!(
            r.stderr.contains("0 findings") || r.stderr.contains("1 finding"),
            "{}",
            r.stderr
        );
    }

    let r = t.run(&["scan", "--log", "missing.log", "ok.env"]);
    assert_eq!(r.code, 2, "{r:?}");

    // A file inside a tree that cannot be read stays a warning.
    std::fs::create_dir_all(t.root().join("tree")).unwrap();
    std::fs::write(
        t.root().join("tree/broken.zip"),
        b"PK\x03\x04\x14\x00\x00\x00\x08\x00\xde\xad",
    )
    .unwrap();
    t.write("tree/fine.txt", "fine\n");
    assert_eq!(t.run(&["scan", "tree"]).code, 0);
    // The same file named directly is a target that cannot be read.
    assert_eq!(t.run(&["scan", "tree/broken.zip"]).code, 2);
}

#[test]
fn huge_thread_counts_are_clamped_with_a_note() {
    let t = CliTest::new();
    t.write("a.env", &format!("TOKEN={}\n", fake::github_pat()));
    let r = t.run(&["scan", "--threads", "100000", "a.env"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("note: --threads 100000 lowered to"),
        "{}",
        r.stderr
    );
    t.write("trail.json", "{\"Records\": []}\n");
    let r = t.run(&["detect", "--threads", "100000", "trail.json"]);
    assert!(
        r.stderr.contains("note: --threads 100000 lowered to"),
        "{}",
        r.stderr
    );
    assert_ne!(r.code, 101, "no panic: {r:?}");
}

#[test]
fn a_utf16_log_is_scanned_like_a_utf16_file() {
    let t = CliTest::new();
    let secret = fake::github_pat();
    let text = format!("\u{1b}[32m2024-05-01T12:00:00.0000000Z\u{1b}[0m token {secret}\r\n");
    let mut bytes = vec![0xFF, 0xFE];
    bytes.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    std::fs::write(t.root().join("build.log"), &bytes).unwrap();
    let as_file = t.run(&["scan", "build.log"]);
    assert_eq!(as_file.code, 1, "{as_file:?}");
    let as_log = t.run(&["scan", "--format", "jsonl", "--log", "build.log"]);
    assert_eq!(as_log.code, 1, "{as_log:?}");
    let v: Value = serde_json::from_str(as_log.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(v["source"], "log");
}

#[test]
fn posture_snapshot_problems_are_named_and_fail() {
    let t = CliTest::new();
    t.write("snap.json", "{}");
    let r = t.run(&["posture", "--snapshot", "snap.json"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("must be a directory"), "{}", r.stderr);
    assert!(!r.stderr.contains("does not exist"), "{}", r.stderr);

    // An aws/ directory without any of the files: nothing can be evaluated.
    std::fs::create_dir_all(t.root().join("empty/aws")).unwrap();
    let r = t.run(&["posture", "--snapshot", "empty"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("nothing could be evaluated"),
        "{}",
        r.stderr
    );

    // A secret in a wrong-typed field is not quoted in the warning.
    let secret = fake::github_pat();
    t.write(
        "leaky/aws/s3api-list-buckets.json",
        r#"{"Buckets": [{"Name": "b"}]}"#,
    );
    t.write(
        "leaky/aws/s3api/b/get-bucket-policy-status.json",
        &format!(r#"{{"PolicyStatus": {{"IsPublic": "{secret}"}}}}"#),
    );
    let r = t.run(&["posture", "--snapshot", "leaky"]);
    assert!(
        r.stderr.contains("get-bucket-policy-status.json"),
        "{}",
        r.stderr
    );
    assert!(!r.all().contains(&secret), "{}", r.all());
}

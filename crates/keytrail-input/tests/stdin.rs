//! Stdin handling through `scan_reader`: small streams in memory, large
//! streams spilled to a private temporary file, archives on stdin opened.

mod common;

use std::io::Cursor;
use std::path::Path;

use common::{Collect, gzip, outcome, tar};
use keytrail_input::{FsOptions, Origin, scan_reader};

fn run(input: Vec<u8>, opts: &FsOptions) -> common::Outcome {
    let sink = Collect::default();
    scan_reader(Cursor::new(input), "-", Origin::Stdin, opts, &sink);
    outcome(Path::new("/nonexistent-root"), sink)
}

#[test]
fn small_stdin_is_one_in_memory_blob() {
    let out = run(b"export API_TOKEN=abc\n".to_vec(), &FsOptions::default());
    assert_eq!(out.paths(), vec!["-"]);
    let got = &out.blobs["-"];
    assert_eq!(got.origin, Origin::Stdin);
    assert_eq!(got.file, None);
    assert_eq!(got.bytes, b"export API_TOKEN=abc\n");
}

#[test]
fn large_stdin_spills_to_a_private_file_removed_after_delivery() {
    let text = "2024-01-01 INFO request ok\n".repeat(10_000);
    let opts = FsOptions {
        max_in_memory: 4096,
        ..FsOptions::default()
    };
    let out = run(text.clone().into_bytes(), &opts);
    let got = &out.blobs["-"];
    assert_eq!(got.bytes, text.as_bytes());
    let spill = got.file.as_ref().expect("handed as Content::File");
    assert!(
        !spill.exists(),
        "spill file must be deleted after blob() returns"
    );
}

#[test]
fn archives_on_stdin_are_opened() {
    let tgz = gzip(&tar(&[("etc/secret.env", b"X=1\n")]), None);
    let out = run(tgz, &FsOptions::default());
    assert_eq!(out.paths(), vec!["-!etc/secret.env"]);
    assert_eq!(out.blobs["-!etc/secret.env"].origin, Origin::Stdin);
}

#[test]
fn binary_stdin_is_a_skip_diagnostic() {
    let off = FsOptions {
        scan_binary: false,
        ..FsOptions::default()
    };
    let out = run(b"\0\x01\x02binary".to_vec(), &off);
    assert!(out.blobs.is_empty());
    assert_eq!(out.diags_of("binary"), vec![("-".to_string(), false)]);
}

#[test]
fn a_failing_stream_is_an_unreadable_diagnostic() {
    struct Failing;
    impl std::io::Read for Failing {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("pipe broke"))
        }
    }
    let sink = Collect::default();
    scan_reader(Failing, "-", Origin::Stdin, &FsOptions::default(), &sink);
    let out = outcome(Path::new("/"), sink);
    assert!(out.blobs.is_empty());
    assert_eq!(out.diags_of("unreadable"), vec![("-".to_string(), true)]);
}

#[test]
fn a_stream_failing_midway_is_scanned_up_to_the_failure() {
    struct Failing;
    impl std::io::Read for Failing {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("pipe broke"))
        }
    }
    use std::io::Read;
    let reader = Cursor::new(b"TOKEN=before-the-break\n".to_vec()).chain(Failing);
    let sink = Collect::default();
    scan_reader(reader, "-", Origin::Stdin, &FsOptions::default(), &sink);
    let out = outcome(Path::new("/"), sink);
    assert_eq!(out.text("-"), "TOKEN=before-the-break\n");
    assert_eq!(out.diags_of("unreadable"), vec![("-".to_string(), true)]);
}

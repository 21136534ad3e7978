//! Directory walk behaviour: what is delivered, what is skipped and which
//! diagnostic says so. Fixtures are built in temp dirs at test time.

mod common;

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::path::PathBuf;

use common::{can_bypass_permissions, drop_permission_bypass, scan, scan_dir, write};
use keytrail_input::{FsOptions, Origin};

fn opts() -> FsOptions {
    FsOptions {
        threads: 4,
        ..FsOptions::default()
    }
}

#[test]
fn nested_dirs_hidden_and_git_ignored_files_are_scanned_but_not_dot_git() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, ".gitignore", ".env\nsecret/\n*.txt\n");
    write(root, ".ignore", "*\n");
    write(root, ".env", "DB_PASSWORD=from-env\n");
    write(root, "secret/creds.txt", "token: one\n");
    write(root, "a/b/c/deep.yml", "key: deep\n");
    write(root, ".hidden/h.conf", "hidden=1\n");
    write(root, ".git/config", "[core]\n");
    write(root, ".git/objects/ab/cdef", "loose object");
    write(root, "sub/.git/HEAD", "ref: refs/heads/main\n");
    write(root, "gitlink/.git", "gitdir: ../x\n");

    let out = scan_dir(root, &opts());
    assert_eq!(
        out.paths(),
        vec![
            ".env",
            ".gitignore",
            ".hidden/h.conf",
            ".ignore",
            "a/b/c/deep.yml",
            "gitlink/.git",
            "secret/creds.txt",
        ]
    );
    assert_eq!(out.text(".env"), "DB_PASSWORD=from-env\n");
    assert_eq!(out.blobs[".env"].origin, Origin::File);
    assert_eq!(
        out.diags_of("git_dir"),
        vec![(".git".to_string(), false), ("sub/.git".to_string(), false)]
    );
    assert_eq!(out.diags.len(), 2, "{:?}", out.diags);
}

#[test]
fn excludes_match_relative_paths_and_names_and_prune_directories() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "keep.txt", "k");
    write(root, "vendor/lib/a.txt", "v");
    write(root, "src/vendor/b.txt", "v");
    write(root, "web/app.min.js", "m");
    write(root, "web/app.js", "j");
    write(root, "docs/guide/x.md", "d");
    write(
        root,
        "src/docs/y.md",
        "kept: docs/** is anchored at the root",
    );
    write(root, "test/fixtures/key.pem", "p");
    write(
        root,
        "test/fixtures/sub/deeper.pem",
        "kept: * does not cross /",
    );
    write(root, "a/b/testdata/t.json", "t");
    let opts = FsOptions {
        excludes: vec![
            "vendor/".into(),
            "*.min.js".into(),
            "docs/**".into(),
            "test/fixtures/*.pem".into(),
            "**/testdata/**".into(),
        ],
        ..opts()
    };
    let out = scan_dir(root, &opts);
    assert_eq!(
        out.paths(),
        vec![
            "keep.txt",
            "src/docs/y.md",
            "test/fixtures/sub/deeper.pem",
            "web/app.js"
        ]
    );
    // Excluded directories are reported once and not descended.
    assert_eq!(
        out.diags_of("excluded"),
        vec![
            ("a/b/testdata".to_string(), false),
            ("docs".to_string(), false),
            ("src/vendor".to_string(), false),
            ("test/fixtures/key.pem".to_string(), false),
            ("vendor".to_string(), false),
            ("web/app.min.js".to_string(), false),
        ]
    );
}

#[test]
fn a_root_given_directly_is_never_excluded_and_bad_globs_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let file = write(root, "app.min.js", "x");
    write(root, "other.min.js", "y");
    let opts = FsOptions {
        excludes: vec!["*.min.js".into(), "a[".into()],
        ..opts()
    };
    let out = scan(root, &[file, root.join("other.min.js")], &opts);
    assert_eq!(out.paths(), vec!["app.min.js", "other.min.js"]);
    assert_eq!(
        out.diags_of("invalid_exclude"),
        vec![("a[".to_string(), true)]
    );
}

#[test]
fn binary_files_are_skipped_and_utf16_is_transcoded() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "image.png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR");
    write(root, "blob.bin", b"abc\0def");
    let mut utf16 = vec![0xFF, 0xFE];
    utf16.extend(
        "password=hunter2\r\n"
            .encode_utf16()
            .flat_map(|u| u.to_le_bytes()),
    );
    write(root, "win.reg", &utf16);
    write(root, "latin1.txt", b"caf\xe9 secret=1\n");
    write(root, "empty.txt", b"");

    let off = FsOptions {
        scan_binary: false,
        ..opts()
    };
    let out = scan_dir(root, &off);
    assert_eq!(out.paths(), vec!["empty.txt", "latin1.txt", "win.reg"]);
    assert_eq!(out.text("win.reg"), "password=hunter2\r\n");
    assert_eq!(out.blobs["latin1.txt"].bytes, b"caf\xe9 secret=1\n");
    assert!(out.blobs["empty.txt"].bytes.is_empty());
    assert_eq!(
        out.diags_of("binary"),
        vec![
            ("blob.bin".to_string(), false),
            ("image.png".to_string(), false)
        ]
    );
}

#[test]
fn large_files_are_handed_as_files_small_ones_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let big: String = "line of text\n".repeat(1000);
    let big_path = write(root, "big.log", &big);
    write(root, "small.txt", "tiny");
    let opts = FsOptions {
        max_in_memory: 1024,
        ..opts()
    };
    let out = scan_dir(root, &opts);
    assert_eq!(out.text("big.log"), big);
    assert_eq!(
        out.blobs["big.log"].file.as_deref(),
        Some(big_path.as_path())
    );
    assert_eq!(out.blobs["small.txt"].file, None);
}

#[test]
fn nonexistent_paths_are_errors_and_the_rest_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let real = write(root, "real.txt", "r");
    let out = scan(root, &[root.join("missing"), real], &opts());
    assert_eq!(out.paths(), vec!["real.txt"]);
    assert_eq!(
        out.diags_of("not_found"),
        vec![("missing".to_string(), true)]
    );
}

#[test]
fn symlinks_are_skipped_by_default_and_followed_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "real/secret.txt", "s");
    symlink("real/secret.txt", root.join("link.txt")).unwrap();
    symlink("real", root.join("linkdir")).unwrap();
    symlink("nowhere", root.join("broken")).unwrap();

    let out = scan_dir(root, &opts());
    assert_eq!(out.paths(), vec!["real/secret.txt"]);
    assert_eq!(
        out.diags_of("symlink"),
        vec![
            ("link.txt".to_string(), false),
            ("linkdir".to_string(), false)
        ]
    );
    assert_eq!(
        out.diags_of("broken_symlink"),
        vec![("broken".to_string(), false)]
    );

    let follow = FsOptions {
        follow_symlinks: true,
        ..opts()
    };
    let out = scan_dir(root, &follow);
    assert_eq!(
        out.paths(),
        vec!["link.txt", "linkdir/secret.txt", "real/secret.txt"]
    );
    assert_eq!(
        out.diags_of("broken_symlink"),
        vec![("broken".to_string(), false)]
    );
    assert!(out.diags_of("symlink").is_empty());
}

#[test]
fn symlink_loops_are_reported_not_followed_forever() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "d/file.txt", "f");
    symlink("..", root.join("d/up")).unwrap();
    symlink("self", root.join("self")).unwrap();

    let out = scan_dir(root, &opts());
    assert_eq!(out.paths(), vec!["d/file.txt"]);
    assert_eq!(out.diags_of("symlink"), vec![("d/up".to_string(), false)]);
    assert_eq!(
        out.diags_of("symlink_loop"),
        vec![("self".to_string(), false)]
    );

    let follow = FsOptions {
        follow_symlinks: true,
        ..opts()
    };
    let out = scan_dir(root, &follow);
    assert_eq!(out.paths(), vec!["d/file.txt"]);
    assert_eq!(
        out.diags_of("symlink_loop"),
        vec![("d/up".to_string(), false), ("self".to_string(), false)]
    );
}

#[test]
fn fifos_in_a_walk_are_skipped_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "a.txt", "a");
    let fifo = root.join("pipe");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo available");
    assert!(status.success());
    // Inside a walk it is never opened (opening would block: no writer).
    let out = scan(root, &[root.to_path_buf()], &opts());
    assert_eq!(out.paths(), vec!["a.txt"]);
    assert_eq!(
        out.diags_of("special_file"),
        vec![("pipe".to_string(), false)]
    );
}

/// `keytrail scan <(cat f)`: a FIFO named on the command line is read as a
/// stream, next to a regular file, and its secrets are delivered.
#[test]
fn a_fifo_named_on_the_command_line_is_read_as_a_stream() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "a.txt", "a");
    let fifo = root.join("pipe");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo available");
    assert!(status.success());
    let writer_path = fifo.clone();
    let writer = std::thread::spawn(move || {
        // Blocks until the scan opens the FIFO for reading.
        std::fs::write(writer_path, "TOKEN=from-the-pipe\n").unwrap();
    });
    let out = scan(root, &[root.join("a.txt"), fifo], &opts());
    writer.join().unwrap();
    assert_eq!(out.paths(), vec!["a.txt", "pipe"]);
    assert_eq!(out.text("pipe"), "TOKEN=from-the-pipe\n");
    assert!(out.diags_of("special_file").is_empty(), "{:?}", out.diags);
}

#[test]
fn devices_are_skipped() {
    let root = PathBuf::from("/dev");
    let out = scan(
        &root,
        &[PathBuf::from("/dev/null"), PathBuf::from("/dev/zero")],
        &opts(),
    );
    assert!(out.blobs.is_empty());
    assert_eq!(
        out.diags_of("special_file"),
        vec![("null".to_string(), false), ("zero".to_string(), false)]
    );
}

#[test]
fn non_utf8_file_names_are_read_with_lossy_display_paths() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let name = std::ffi::OsStr::from_bytes(b"bad\xffname.env");
    std::fs::write(root.join(name), "KEY=value\n").unwrap();
    let out = scan_dir(root, &opts());
    assert_eq!(out.paths(), vec!["bad\u{FFFD}name.env"]);
    assert_eq!(out.text("bad\u{FFFD}name.env"), "KEY=value\n");
}

#[test]
fn permission_denied_is_an_error_diagnostic() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let locked = write(root, "locked.txt", "x");
    write(root, "closed/inner.txt", "y");
    write(root, "open.txt", "z");
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    std::fs::set_permissions(root.join("closed"), std::fs::Permissions::from_mode(0o000)).unwrap();
    // Root (CI runs as root) reads mode-000 files through CAP_DAC_OVERRIDE: the scan
    // runs on a thread without the capabilities that bypass permissions (they are per
    // thread on Linux, and the walker's threads inherit them), so the denial is real
    // whoever runs the test.
    let out = std::thread::scope(|s| {
        s.spawn(|| {
            drop_permission_bypass();
            assert!(
                !can_bypass_permissions(root),
                "this thread still reads mode-000 files: the test cannot produce a denial"
            );
            scan_dir(root, &opts())
        })
        .join()
        .unwrap()
    });
    std::fs::set_permissions(root.join("closed"), std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(out.paths(), vec!["open.txt"]);
    assert_eq!(
        out.diags_of("permission_denied"),
        vec![
            ("closed".to_string(), true),
            ("locked.txt".to_string(), true)
        ]
    );
}

#[test]
#[cfg(target_os = "linux")]
fn a_read_error_is_an_unreadable_diagnostic() {
    // /proc/self/mem is a regular file that fails with EIO when read at
    // offset 0, even for root: a real read error we can produce on Linux.
    let mem = PathBuf::from("/proc/self/mem");
    let out = scan(&PathBuf::from("/proc/self"), &[mem], &opts());
    assert!(out.blobs.is_empty());
    assert_eq!(out.diags_of("unreadable"), vec![("mem".to_string(), true)]);
}

#[test]
fn many_files_are_each_delivered_exactly_once_in_parallel() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for i in 0..40 {
        for j in 0..50 {
            write(root, &format!("d{i}/f{j}.txt"), format!("{i}-{j}"));
        }
    }
    let out = scan_dir(root, &FsOptions::default());
    assert_eq!(out.blobs.len(), 2000);
    assert_eq!(out.text("d39/f49.txt"), "39-49");
    assert!(out.diags.is_empty());
}

#[test]
fn a_path_given_twice_is_walked_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "x.txt", "x");
    let out = scan(root, &[root.to_path_buf(), root.to_path_buf()], &opts());
    assert_eq!(out.paths(), vec!["x.txt"]);
}

#[test]
fn sockets_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let _listener = std::os::unix::net::UnixListener::bind(root.join("agent.sock")).unwrap();
    write(root, "a.txt", "a");
    let out = scan_dir(root, &opts());
    assert_eq!(out.paths(), vec!["a.txt"]);
    assert_eq!(
        out.diags_of("special_file"),
        vec![("agent.sock".to_string(), false)]
    );
}

/// By default binary content is delivered as its printable runs (ASCII and
/// UTF-16), at the offsets of the ASCII ones; a binary with no run is
/// delivered as line feeds only; images stay skipped.
#[test]
fn binary_files_are_scanned_through_their_strings() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "image.png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR");
    let mut elf = b"\x7FELF\x02\x01\x01\0\0\0".to_vec();
    elf.extend_from_slice(b"TOKEN=ghp_abcdefghij\0\x01");
    elf.extend(
        "Server=db;Password=Zq9xWv2Lk8"
            .encode_utf16()
            .flat_map(|u| u.to_le_bytes()),
    );
    elf.extend_from_slice(&[0xFE, 0xFD]);
    write(root, "app.so", &elf);
    write(root, "noise.bin", [0u8, 1, 2, 0xFE].repeat(4096));
    let out = scan_dir(root, &opts());
    assert_eq!(out.paths(), vec!["app.so", "noise.bin"]);
    let so = &out.blobs["app.so"].bytes;
    assert_eq!(so.len(), elf.len());
    assert_eq!(&so[10..30], b"TOKEN=ghp_abcdefghij");
    let text = String::from_utf8_lossy(so);
    assert!(text.contains("Server=db;Password=Zq9xWv2Lk8"), "{text:?}");
    assert!(out.blobs["noise.bin"].bytes.iter().all(|&b| b == b'\n'));
    assert_eq!(
        out.diags_of("binary"),
        vec![("image.png".to_string(), false)]
    );
}

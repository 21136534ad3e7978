//! Archive members as blobs: zip family, tar, tar.gz/tgz, .gz, nesting,
//! depth limit, decompression bombs, corrupt archives. Archives are built at
//! test time.

mod common;

use common::{gzip, scan_dir, tar, write, zip};
use keytrail_input::FsOptions;

/// Binary members are skipped here (as before binary scanning): these
/// tests are about archives; `walk.rs` tests binary content.
fn opts() -> FsOptions {
    FsOptions {
        threads: 2,
        scan_binary: false,
        ..FsOptions::default()
    }
}

#[test]
fn zip_family_members_are_scanned_with_bang_paths() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let members: &[(&str, &[u8])] = &[
        ("META-INF/", b""),
        ("META-INF/app.properties", b"db.password=zip-member\n"),
        ("lib/native.so", b"\x7fELF\0\0\0binary"),
    ];
    let archive = zip(members);
    for ext in ["zip", "jar", "war", "ear", "whl", "apk", "nupkg"] {
        write(root, &format!("pkg/app.{ext}"), &archive);
    }
    // Detected by magic, not by name.
    write(root, "renamed.dat", &archive);

    let out = scan_dir(root, &opts());
    let mut expected: Vec<String> = ["apk", "ear", "jar", "nupkg", "war", "whl", "zip"]
        .iter()
        .map(|e| format!("pkg/app.{e}!META-INF/app.properties"))
        .collect();
    expected.push("renamed.dat!META-INF/app.properties".into());
    expected.sort();
    assert_eq!(out.paths(), expected);
    assert_eq!(
        out.text("pkg/app.jar!META-INF/app.properties"),
        "db.password=zip-member\n"
    );
    // The binary member is skipped and named.
    assert_eq!(out.diags_of("binary").len(), 8);
    assert!(
        out.diags_of("binary")
            .contains(&("pkg/app.whl!lib/native.so".to_string(), false))
    );
}

#[test]
fn tar_tar_gz_tgz_and_gz_members_are_scanned() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let t = tar(&[
        ("etc/app/config.ini", b"secret=in-tar\n"),
        ("README", b"readme\n"),
    ]);
    write(root, "backup.tar", &t);
    write(root, "backup.tar.gz", gzip(&t, None));
    write(root, "backup.tgz", gzip(&t, None));
    write(root, "logs/app.log.gz", gzip(b"token=gz-only\n", None));
    write(
        root,
        "logs/renamed.gz",
        gzip(b"named inside\n", Some("original.txt")),
    );

    let out = scan_dir(root, &opts());
    assert_eq!(
        out.paths(),
        vec![
            "backup.tar!README",
            "backup.tar!etc/app/config.ini",
            "backup.tar.gz!README",
            "backup.tar.gz!etc/app/config.ini",
            "backup.tgz!README",
            "backup.tgz!etc/app/config.ini",
            "logs/app.log.gz!app.log",
            "logs/renamed.gz!original.txt",
        ]
    );
    assert_eq!(out.text("backup.tgz!etc/app/config.ini"), "secret=in-tar\n");
    assert_eq!(out.text("logs/app.log.gz!app.log"), "token=gz-only\n");
    assert!(out.diags.is_empty(), "{:?}", out.diags);
}

#[test]
fn nested_archives_get_nested_paths() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let inner_jar = zip(&[("c/config.properties", b"aws.secret=nested\n")]);
    let war = zip(&[("WEB-INF/lib/b.jar", &inner_jar), ("index.html", b"<html>")]);
    write(root, "a.zip", zip(&[("b.war", &war)]));
    let tgz = gzip(
        &tar(&[("lib/inner.zip", &zip(&[("conf/app.env", b"K=v\n")]))]),
        None,
    );
    write(root, "release.tar.gz", tgz);

    let out = scan_dir(root, &opts());
    assert_eq!(
        out.paths(),
        vec![
            "a.zip!b.war!WEB-INF/lib/b.jar!c/config.properties",
            "a.zip!b.war!index.html",
            "release.tar.gz!lib/inner.zip!conf/app.env",
        ]
    );
    assert_eq!(
        out.text("release.tar.gz!lib/inner.zip!conf/app.env"),
        "K=v\n"
    );
}

#[test]
fn nesting_stops_at_max_archive_depth() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let d = zip(&[("d.txt", b"depth 4\n")]);
    let c = zip(&[("c.txt", b"depth 3\n"), ("d.zip", &d)]);
    let b = zip(&[("b.txt", b"depth 2\n"), ("c.zip", &c)]);
    write(
        root,
        "a.zip",
        zip(&[("a.txt", b"depth 1\n"), ("b.zip", &b)]),
    );

    let out = scan_dir(root, &opts());
    assert_eq!(
        out.paths(),
        vec![
            "a.zip!a.txt",
            "a.zip!b.zip!b.txt",
            "a.zip!b.zip!c.zip!c.txt"
        ]
    );
    assert_eq!(
        out.diags_of("archive_limit"),
        vec![("a.zip!b.zip!c.zip!d.zip".to_string(), false)]
    );

    let shallow = FsOptions {
        max_archive_depth: 1,
        ..opts()
    };
    let out = scan_dir(root, &shallow);
    assert_eq!(out.paths(), vec!["a.zip!a.txt"]);
    assert_eq!(
        out.diags_of("archive_limit"),
        vec![("a.zip!b.zip".to_string(), false)]
    );
}

#[test]
fn archives_can_be_disabled() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "a.zip", zip(&[("x.txt", b"x")]));
    write(root, "plain.txt", "p");
    let out = scan_dir(
        root,
        &FsOptions {
            scan_archives: false,
            ..opts()
        },
    );
    assert_eq!(out.paths(), vec!["plain.txt"]);
    assert_eq!(
        out.diags_of("archive_disabled"),
        vec![("a.zip".to_string(), false)]
    );
}

#[test]
fn zip_bomb_is_stopped_after_the_members_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let zeros = vec![0u8; 64 << 20];
    let filler = vec![b'a'; 64 << 20];
    let bomb = zip(&[
        ("first.txt", b"before the bomb\n"),
        // Binary: skipped after its first 8 KiB, never fully inflated.
        ("zeros.bin", &zeros),
        ("bomb.txt", &filler),
        ("after.txt", b"never reached\n"),
    ]);
    assert!(bomb.len() < 1 << 20, "fixture must compress well");
    write(root, "bomb.zip", &bomb);
    write(root, "neighbour.txt", "still scanned");

    let out = scan_dir(root, &opts());
    assert_eq!(out.paths(), vec!["bomb.zip!first.txt", "neighbour.txt"]);
    assert_eq!(
        out.diags_of("binary"),
        vec![("bomb.zip!zeros.bin".to_string(), false)]
    );
    assert_eq!(
        out.diags_of("archive_bomb"),
        vec![("bomb.zip!bomb.txt".to_string(), false)]
    );
}

/// The case: filler that trips the ratio guard, then a credentials
/// file. By default the rest is cut (and said so); with the ratio test off
/// and a budget big enough, the credentials file is scanned.
#[test]
fn raised_limits_read_past_the_filler() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let filler = vec![b'a'; 40 << 20];
    write(
        root,
        "cut.zip",
        zip(&[
            ("filler.txt", &filler),
            ("creds.env", b"KEY=after-filler\n"),
        ]),
    );
    let out = scan_dir(root, &opts());
    assert!(!out.blobs.contains_key("cut.zip!creds.env"));
    assert_eq!(
        out.diags_of("archive_bomb"),
        vec![("cut.zip!filler.txt".to_string(), false)]
    );
    assert!(keytrail_input::kinds::is_incomplete("archive_bomb"));
    assert!(keytrail_input::kinds::is_incomplete("archive_limit"));
    assert!(!keytrail_input::kinds::is_incomplete("binary"));

    let raised = FsOptions {
        max_archive_ratio: 0,
        max_archive_bytes: 64 << 20,
        ..opts()
    };
    let out = scan_dir(root, &raised);
    assert_eq!(out.text("cut.zip!creds.env"), "KEY=after-filler\n");
    assert!(out.diags.is_empty(), "{:?}", out.diags);
}

#[test]
fn nested_zip_bomb_is_charged_to_the_outer_budget() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let zeros = vec![b'A'; 8 << 20];
    let layer1 = zip(&[("a.txt", &zeros), ("b.txt", &zeros), ("c.txt", &zeros)]);
    let layer2 = zip(&[("1.zip", &layer1), ("2.zip", &layer1), ("3.zip", &layer1)]);
    write(
        root,
        "42.zip",
        zip(&[("ok.txt", b"fine\n"), ("x.zip", &layer2)]),
    );
    let out = scan_dir(root, &opts());
    assert!(out.blobs.contains_key("42.zip!ok.txt"));
    let bombs = out.diags_of("archive_bomb");
    assert_eq!(bombs.len(), 1, "{:?}", out.diags);
    assert!(bombs[0].0.starts_with("42.zip!x.zip!"), "{bombs:?}");
    // Each member is 8 MiB; at most two fit under the 16 MiB ratio floor.
    assert!(out.blobs.len() <= 3, "{:?}", out.paths());
}

#[test]
fn gzip_bomb_is_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let zeros = vec![b' '; 64 << 20];
    write(root, "huge.log.gz", gzip(&zeros, None));
    write(root, "next.txt", "n");
    let out = scan_dir(root, &opts());
    assert_eq!(out.paths(), vec!["next.txt"]);
    assert_eq!(
        out.diags_of("archive_bomb"),
        vec![("huge.log.gz!huge.log".to_string(), false)]
    );
}

#[test]
fn decompression_budget_limits_an_archive_but_keeps_earlier_members() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let member = [b'x'; 60];
    write(
        root,
        "many.zip",
        zip(&[("1.txt", &member), ("2.txt", &member), ("3.txt", &member)]),
    );
    write(
        root,
        "logs.tar.gz",
        gzip(&tar(&[("a", &member), ("b", &[b'y'; 4000])]), None),
    );
    let out = scan_dir(
        root,
        &FsOptions {
            max_archive_bytes: 100,
            ..opts()
        },
    );
    // The member that hits the limit is scanned up to it.
    assert_eq!(out.paths(), vec!["many.zip!1.txt", "many.zip!2.txt"]);
    assert_eq!(out.blobs["many.zip!2.txt"].bytes, [b'x'; 40]);
    assert_eq!(
        out.diags_of("archive_limit"),
        vec![
            ("logs.tar.gz".to_string(), false),
            ("many.zip!2.txt".to_string(), false)
        ]
    );
    assert_eq!(out.diags.len(), 2, "{:?}", out.diags);
}

#[test]
fn a_truncated_gzip_log_is_scanned_up_to_the_damage() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let log: String = (0..5000)
        .map(|i| format!("{i} request id={}\n", i * 7919 % 10007))
        .collect();
    let gz = gzip(log.as_bytes(), None);
    write(root, "app.log.gz", &gz[..gz.len() / 2]);
    let out = scan_dir(root, &opts());
    let got = out.text("app.log.gz!app.log");
    assert!(got.len() > 1000, "{} bytes", got.len());
    assert!(log.starts_with(&got));
    let corrupt = out.diags_of("archive_corrupt");
    assert_eq!(corrupt, vec![("app.log.gz!app.log".to_string(), true)]);
}

#[test]
fn corrupt_archives_are_reported_and_the_walk_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        root,
        "garbage.zip",
        b"PK\x03\x04 this is not really a zip file at all",
    );
    // Flip bytes inside the deflated data of the second member.
    let bad = "bad member with enough text to deflate ".repeat(20);
    let mut z = zip(&[("good.txt", b"good member\n"), ("bad.txt", bad.as_bytes())]);
    let at = z
        .windows(7)
        .position(|w| w == b"bad.txt")
        .expect("local header of bad.txt")
        + 7
        + 10;
    for b in &mut z[at..at + 8] {
        *b ^= 0x5a;
    }
    write(root, "damaged.jar", &z);
    // Incompressible enough that half the gzip still inflates past the
    // first tar header, so the failure is inside the member.
    let mut x: u32 = 1;
    let noise: Vec<u8> = (0..40_000)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            b'a' + (x >> 16) as u8 % 26
        })
        .collect();
    let t = gzip(&tar(&[("a.txt", &noise)]), None);
    write(root, "truncated.tgz", &t[..t.len() / 2]);
    write(root, "fine.txt", "fine");

    let out = scan_dir(root, &opts());
    // What was decoded before the damage is scanned. A truncated stream
    // yields a true prefix (20 KB of the tar member inflate before the cut);
    // corrupt deflate data yields whatever the decoder produced before the
    // CRC check failed, flagged by the diagnostic.
    assert!(out.blobs.contains_key("damaged.jar!good.txt"));
    assert!(out.blobs.contains_key("fine.txt"));
    let truncated = &out.blobs["truncated.tgz!a.txt"].bytes;
    assert!(truncated.len() > 10_000, "{} bytes", truncated.len());
    assert!(noise.starts_with(truncated));
    assert!(out.blobs.len() <= 4, "{:?}", out.paths());
    let corrupt: Vec<String> = out
        .diags_of("archive_corrupt")
        .into_iter()
        .map(|(subject, is_error)| {
            assert!(is_error);
            subject
        })
        .collect();
    assert_eq!(
        corrupt,
        vec!["damaged.jar!bad.txt", "garbage.zip", "truncated.tgz!a.txt"]
    );
}

#[test]
fn self_executing_jar_with_a_script_prefix_is_opened() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut jar = b"#!/bin/bash\nexec java -jar \"$0\" \"$@\"\n".to_vec();
    jar.extend(zip(&[(
        "BOOT-INF/classes/application.yml",
        b"password: boot\n",
    )]));
    write(root, "app.jar", &jar);
    let out = scan_dir(root, &opts());
    assert_eq!(
        out.paths(),
        vec!["app.jar!BOOT-INF/classes/application.yml"]
    );
    assert_eq!(
        out.text("app.jar!BOOT-INF/classes/application.yml"),
        "password: boot\n"
    );
}

#[test]
fn large_members_spill_to_private_files_and_are_cleaned_up() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let text = "some log line with a key=value pair\n".repeat(200);
    write(root, "big.zip", zip(&[("big.log", text.as_bytes())]));
    let out = scan_dir(
        root,
        &FsOptions {
            max_in_memory: 1000,
            ..opts()
        },
    );
    let got = &out.blobs["big.zip!big.log"];
    assert_eq!(got.bytes, text.as_bytes());
    let spill = got.file.as_ref().expect("handed as a file");
    assert!(
        !spill.starts_with(root),
        "spill is not next to the user's files"
    );
    assert!(!spill.exists(), "spill file removed after blob() returned");
}

/// Patch a stored single-member zip's headers: `flags` ORed into the general
/// purpose bits, and the compression method replaced by `method`.
fn patch_zip(mut z: Vec<u8>, flags: u16, method: u16) -> Vec<u8> {
    let local = z.windows(4).position(|w| w == b"PK\x03\x04").unwrap();
    let central = z.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
    for (flag_at, method_at) in [(local + 6, local + 8), (central + 8, central + 10)] {
        let old = u16::from_le_bytes([z[flag_at], z[flag_at + 1]]);
        z[flag_at..flag_at + 2].copy_from_slice(&(old | flags).to_le_bytes());
        z[method_at..method_at + 2].copy_from_slice(&method.to_le_bytes());
    }
    z
}

fn stored_zip(name: &str, bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    use zip::write::SimpleFileOptions;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    w.start_file(name, opts).unwrap();
    w.write_all(bytes).unwrap();
    w.finish().unwrap().into_inner()
}

#[test]
fn encrypted_and_unsupported_members_are_skipped_with_diagnostics() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        root,
        "enc.zip",
        patch_zip(stored_zip("s.txt", b"ciphertext"), 1, 0),
    );
    write(
        root,
        "bz.zip",
        patch_zip(stored_zip("b.txt", b"not bzip2"), 0, 12),
    );
    let out = scan_dir(root, &opts());
    assert!(out.blobs.is_empty(), "{:?}", out.paths());
    assert_eq!(
        out.diags_of("archive_encrypted"),
        vec![("enc.zip!s.txt".to_string(), false)]
    );
    assert_eq!(
        out.diags_of("archive_unsupported"),
        vec![("bz.zip!b.txt".to_string(), false)]
    );
}

#[test]
fn a_nested_archive_larger_than_memory_is_opened_from_its_spill_file() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut x: u32 = 7;
    let noise: Vec<u8> = (0..20_000)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            b'a' + (x >> 16) as u8 % 26
        })
        .collect();
    let inner = zip(&[("noise.txt", &noise), ("conf/app.ini", b"pw=inner\n")]);
    assert!(inner.len() > 4000);
    write(
        root,
        "outer.tgz",
        gzip(&tar(&[("inner.zip", &inner)]), None),
    );
    let out = scan_dir(
        root,
        &FsOptions {
            max_in_memory: 4000,
            ..opts()
        },
    );
    assert_eq!(
        out.paths(),
        vec![
            "outer.tgz!inner.zip!conf/app.ini",
            "outer.tgz!inner.zip!noise.txt"
        ]
    );
    assert_eq!(out.text("outer.tgz!inner.zip!conf/app.ini"), "pw=inner\n");
    assert_eq!(out.blobs["outer.tgz!inner.zip!noise.txt"].bytes, noise);
}

#[test]
fn traversal_and_absolute_member_names_are_only_display_paths() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("scan");
    write(
        &root,
        "evil.zip",
        zip(&[("../../escape.txt", b"e=1\n"), ("/abs/path.txt", b"a=1\n")]),
    );
    // tar::Builder refuses `..`, as an extractor should: write the name raw.
    let mut h = tar::Header::new_ustar();
    h.as_old_mut().name[..9].copy_from_slice(b"../up.txt");
    h.set_size(4);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    b.append(&h, &b"u=1\n"[..]).unwrap();
    write(&root, "evil.tar", b.into_inner().unwrap());
    let out = scan_dir(&root, &opts());
    assert_eq!(
        out.paths(),
        vec![
            "evil.tar!../up.txt",
            "evil.zip!../../escape.txt",
            "evil.zip!/abs/path.txt"
        ]
    );
    // Nothing was extracted anywhere near the scanned tree.
    assert!(!dir.path().join("escape.txt").exists());
    assert!(!dir.path().join("up.txt").exists());
}

//! Hostile snapshots: special files, symlinks out of the root, resource
//! names that are paths, oversized values quoted in errors. Each bad file
//! sits next to a good one: the good one is read, the bad one gets a
//! diagnostic naming it, and nothing hangs or leaves the snapshot.

use keytrail_inventory::{check_snapshot_dir, load_snapshot, mask_quoted};
use keytrail_types::Diagnostic;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// Load on another thread, failing (not hanging) after 60 s.
fn load(dir: &Path) -> (keytrail_inventory::Snapshot, Vec<Diagnostic>) {
    let (tx, rx) = mpsc::channel();
    let dir = dir.to_path_buf();
    std::thread::spawn(move || {
        let _ = tx.send(load_snapshot(&dir));
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("load_snapshot hung on a hostile snapshot")
}

fn diag_for<'a>(diags: &'a [Diagnostic], file_end: &str) -> &'a Diagnostic {
    diags
        .iter()
        .find(|d| d.subject.ends_with(file_end))
        .unwrap_or_else(|| panic!("no diagnostic for {file_end}: {diags:#?}"))
}

const BUCKETS: &str = r#"{"Buckets": [
  {"Name": "good-bucket"},
  {"Name": "../../../escape"}
]}"#;

#[test]
fn bucket_names_cannot_lead_outside_the_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let snap = tmp.path().join("snap");
    write(&snap, "aws/s3api-list-buckets.json", BUCKETS);
    write(
        &snap,
        "aws/s3api/good-bucket/get-bucket-policy-status.json",
        r#"{"PolicyStatus": {"IsPublic": true}}"#,
    );
    // Where `s3api/../../../escape` points: outside `snap`.
    write(
        tmp.path(),
        "escape/get-bucket-policy-status.json",
        r#"{"PolicyStatus": {"IsPublic": true}}"#,
    );
    let (s, diags) = load(&snap);
    let buckets = &s.aws.as_ref().unwrap().buckets.present().unwrap();
    assert_eq!(buckets.len(), 2);
    assert_eq!(buckets[0].policy_is_public.present(), Some(&true));
    assert!(
        !buckets[1].policy_is_public.is_collected(),
        "read outside the root"
    );
    let d = diag_for(&diags, "s3api-list-buckets.json");
    assert_eq!(d.kind, "unsafe_name");
    assert!(
        d.is_error && d.message.contains("not a plain file name"),
        "{d}"
    );
}

#[cfg(unix)]
#[test]
fn special_files_and_symlinks_out_of_the_root_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let snap = tmp.path().join("snap");
    write(
        &snap,
        "aws/s3api-list-buckets.json",
        r#"{"Buckets": [{"Name": "b"}]}"#,
    );
    write(
        &snap,
        "aws/s3api/b/get-bucket-policy-status.json",
        r#"{"PolicyStatus": {"IsPublic": false}}"#,
    );
    // A device through a symlink: would read forever.
    std::os::unix::fs::symlink("/dev/zero", snap.join("aws/sts-get-caller-identity.json")).unwrap();
    // The same for a file read as pages (`NAME.json`, `NAME.2.json`, ...).
    std::os::unix::fs::symlink(
        "/dev/zero",
        snap.join("aws/iam-get-account-authorization-details.json"),
    )
    .unwrap();
    // A FIFO without a writer: opening it would block forever.
    let fifo = snap.join("aws/organizations-describe-organization.json");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo (coreutils) must be installed")
            .success()
    );
    // A symlink to a regular file outside the snapshot.
    write(
        tmp.path(),
        "outside.json",
        r#"{"PublicAccessBlockConfiguration": {}}"#,
    );
    std::os::unix::fs::symlink(
        tmp.path().join("outside.json"),
        snap.join("aws/s3control-get-public-access-block.json"),
    )
    .unwrap();
    let (s, diags) = load(&snap);
    let aws = s.aws.as_ref().unwrap();
    assert_eq!(
        aws.buckets.present().unwrap()[0].policy_is_public.present(),
        Some(&false),
        "the good file next to the bad ones is read"
    );
    let zero = diag_for(&diags, "sts-get-caller-identity.json");
    assert!(zero.message.contains("a device"), "{zero}");
    let paged = diag_for(&diags, "iam-get-account-authorization-details.json");
    assert!(paged.message.contains("a device"), "{paged}");
    let pipe = diag_for(&diags, "organizations-describe-organization.json");
    assert!(pipe.message.contains("a FIFO"), "{pipe}");
    let out = diag_for(&diags, "s3control-get-public-access-block.json");
    assert!(out.message.contains("outside the snapshot"), "{out}");
    assert!(!aws.account_public_access_block.is_collected());
}

#[test]
fn values_quoted_in_shape_errors_are_masked() {
    let tmp = tempfile::tempdir().unwrap();
    let snap = tmp.path();
    let secret = format!("wJalrXUtnFEMI{}EXAMPLEKEY", "K7MDENG/bPxRfiCY");
    write(
        snap,
        "aws/s3api-list-buckets.json",
        r#"{"Buckets": [{"Name": "a"}, {"Name": "b"}]}"#,
    );
    write(
        snap,
        "aws/s3api/a/get-bucket-policy-status.json",
        &format!(r#"{{"PolicyStatus": {{"IsPublic": "{secret}"}}}}"#),
    );
    write(
        snap,
        "aws/s3api/b/get-bucket-policy-status.json",
        r#"{"PolicyStatus": {"IsPublic": true}}"#,
    );
    let (s, diags) = load(snap);
    let d = diag_for(&diags, "a/get-bucket-policy-status.json");
    assert_eq!(d.kind, "unexpected_shape");
    assert!(!d.message.contains(&secret), "secret quoted: {d}");
    let masked = format!("wJ… ({} chars)", secret.len());
    assert!(d.message.contains(&masked), "{d}");
    let buckets = s.aws.as_ref().unwrap().buckets.present().unwrap();
    assert_eq!(buckets[1].policy_is_public.present(), Some(&true));
}

#[test]
fn mask_quoted_masks_strings_and_unknown_names_only() {
    assert_eq!(
        mask_quoted(r#"invalid type: string "supersecretvalue", expected a boolean at line 1"#),
        r#"invalid type: string "su… (16 chars)", expected a boolean at line 1"#
    );
    assert_eq!(
        mask_quoted("unknown variant `hunter22`, expected one of `Allow`, `Deny`"),
        "unknown variant `hu… (8 chars)`, expected one of `Allow`, `Deny`"
    );
    assert_eq!(mask_quoted(r#"a "x\"yzw" b"#), r#"a "x\… (6 chars)" b"#);
    assert_eq!(mask_quoted(r#"short "abc" kept"#), r#"short "abc" kept"#);
    assert_eq!(
        mask_quoted(r#"open "unterminated"#),
        r#"open "un… (12 chars)"#
    );
}

#[test]
fn a_file_given_as_snapshot_is_not_a_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("snap.json");
    std::fs::write(&file, "{}").unwrap();
    let why = check_snapshot_dir(&file).unwrap_err();
    assert!(why.contains("must be a directory"), "{why}");
    let why = check_snapshot_dir(&tmp.path().join("absent")).unwrap_err();
    assert!(why.contains("does not exist"), "{why}");
    let (_, diags) = load_snapshot(&file);
    assert!(
        diags[0].message.contains("must be a directory"),
        "{diags:?}"
    );
}

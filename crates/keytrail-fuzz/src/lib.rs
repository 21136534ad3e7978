//! The bodies of keytrail's fuzz targets, one function per parser of
//! untrusted bytes. `fuzz/` (a cargo-fuzz project, outside the workspace)
//! wraps each in `fuzz_target!`; `tests/corpus.rs` runs each over its
//! committed corpus (`fuzz/corpus/<target>/`), so CI exercises every
//! target on every run without a fuzzer.
//!
//! A body may return early on input it does not apply to, but never
//! panics on any input: a panic, a hang or unbounded memory is the bug a
//! fuzzer reports. Bodies also check invariants that must hold for every
//! input (a known secret never survives `redact`).

use keytrail_input::{Blob, BlobSink, Diagnostic, FsOptions, Origin};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

/// A fuzz target's body.
pub type Body = fn(&[u8]);

/// Every target: its name (the corpus directory and the cargo-fuzz
/// binary) and its body.
pub const TARGETS: &[(&str, Body)] = &[
    ("archive", archive),
    ("zip", zip),
    ("image_archive", image_archive),
    ("git_object", git_object),
    ("rule_yaml", rule_yaml),
    ("workflow_yaml", workflow_yaml),
    ("snapshot_json", snapshot_json),
    ("redact_stream", redact_stream),
    ("cloudtrail", cloudtrail),
    ("cloudtrail_csv", cloudtrail_csv),
];

/// A sink that drains every blob (reading temporary files while they exist).
struct Drain;

impl BlobSink for Drain {
    fn blob(&self, blob: Blob) {
        if let keytrail_input::Content::File { path, .. } = &blob.content {
            let _ = std::fs::read(path);
        }
    }
    fn diagnostic(&self, diag: Diagnostic) {
        // A diagnostic must name what it is about.
        assert!(!diag.kind.is_empty());
    }
}

/// Small limits, so a bomb is found in milliseconds, not minutes.
fn small_opts() -> FsOptions {
    FsOptions {
        max_archive_bytes: 4 << 20,
        max_in_memory: 1 << 20,
        threads: 1,
        ..FsOptions::default()
    }
}

/// Archives and compressed streams as the file source opens them: tar,
/// gzip (single file or tar.gz), nested archives, UTF-16 sniffing. The
/// first byte picks the name the content is given (which steers sniffing).
pub fn archive(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let name = ["in.tar", "in.tar.gz", "in.gz", "in.txt", "in.tgz", "in.jar"][pick as usize % 6];
    keytrail_input::scan_reader(rest, name, Origin::File, &small_opts(), &Drain);
}

/// Zip archives (and zips nested in zips), by central directory.
pub fn zip(data: &[u8]) {
    keytrail_input::scan_reader(data, "in.zip", Origin::File, &small_opts(), &Drain);
}

/// A private scratch directory for the targets that read files.
fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("keytrail-fuzz-")
            .tempdir()
            .expect("temporary directory");
        dir.keep()
    })
}

/// Scratch files are shared: one body at a time uses them.
static SCRATCH_LOCK: Mutex<()> = Mutex::new(());

/// Container image archives: `docker save` tarballs and OCI archives
/// (index, manifests, configs, gzip/zstd/plain layers). The first byte
/// picks the transport.
pub fn image_archive(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let _guard = SCRATCH_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let path = scratch().join("image.tar");
    std::fs::write(&path, rest).expect("write scratch file");
    let transport = if pick % 2 == 0 {
        "docker-archive"
    } else {
        "oci-archive"
    };
    let opts = keytrail_input::image::ImageOptions {
        max_layer_bytes: 4 << 20,
        threads: 1,
        content: small_opts(),
        ..Default::default()
    };
    let seen = keytrail_input::image::ContentSeen::new();
    let reference = format!("{transport}:{}", path.display());
    keytrail_input::image::scan_image(&reference, &opts, &Drain, &seen);
}

/// Git objects: the input becomes a loose object of a fresh repository
/// (raw file bytes, or zlib of a commit, tree or blob whose body is the
/// input), referenced from `HEAD`, and the repository is scanned whole.
pub fn git_object(data: &[u8]) {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let _guard = SCRATCH_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let repo = scratch().join("repo.git");
    let _ = std::fs::remove_dir_all(&repo);
    for d in ["objects/ab", "refs/heads"] {
        std::fs::create_dir_all(repo.join(d)).expect("scratch repository");
    }
    std::fs::write(repo.join("HEAD"), "ref: refs/heads/main\n").unwrap();
    std::fs::write(
        repo.join("config"),
        "[core]\n\trepositoryformatversion = 0\n\tbare = true\n",
    )
    .unwrap();
    let id = "ab".to_string() + &"cd".repeat(19);
    std::fs::write(repo.join("refs/heads/main"), format!("{id}\n")).unwrap();
    let object = match pick % 4 {
        0 => body.to_vec(),
        k => {
            let kind = ["commit", "tree", "blob"][k as usize - 1];
            let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
            z.write_all(format!("{kind} {}\0", body.len()).as_bytes())
                .unwrap();
            z.write_all(body).unwrap();
            z.finish().unwrap()
        }
    };
    std::fs::write(repo.join("objects/ab").join(&id[2..]), object).unwrap();
    let opts = keytrail_input::git::GitOptions {
        threads: 1,
        content: small_opts(),
        ..Default::default()
    };
    keytrail_input::git::scan_repository(&repo, &opts, &Drain);
}

/// Secret rule files (YAML), through the checks a rule file gets.
pub fn rule_yaml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (rules, _diags) = keytrail_rules::load_str("fuzz.yml", text);
    // Rules that load must compile or be reported, never panic.
    let _ = keytrail_scan::Scanner::new(rules);
}

/// CI files: GitHub workflows and actions, GitLab CI with local includes.
/// The first byte picks which file the input is.
pub fn workflow_yaml(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let _guard = SCRATCH_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let root = scratch().join("ci");
    let _ = std::fs::remove_dir_all(&root);
    let rel = [
        ".github/workflows/ci.yml",
        ".github/actions/a/action.yml",
        ".gitlab-ci.yml",
        "ci/included.yml",
    ][pick as usize % 4];
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, rest).unwrap();
    if rel == "ci/included.yml" {
        std::fs::write(
            root.join(".gitlab-ci.yml"),
            "include:\n  - local: 'ci/*.yml'\njob:\n  script: [make]\n",
        )
        .unwrap();
    }
    let _ = keytrail_ci::audit::audit_path(&root, None);
}

/// Snapshot files: the input becomes one of the snapshot's files (the
/// first byte picks which), then the snapshot is loaded, checked and
/// inventoried.
pub fn snapshot_json(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let _guard = SCRATCH_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let root = scratch().join("snapshot");
    let _ = std::fs::remove_dir_all(&root);
    let files = [
        "aws/iam-get-account-authorization-details.json",
        "aws/iam-credential-report.csv",
        "aws/s3api-list-buckets.json",
        "aws/iam-list-access-keys/u.json",
        "aws/regions/us-east-1/eks-list-clusters.json",
        "gcp/p/projects-get-iam-policy.json",
        "gcp/p/iam-service-accounts-keys-list/sa.json",
        "azure/storage-account-list.json",
        "azure/ad-app-list.json",
        "aws/organizations-list-accounts.json",
    ];
    let rel = files[pick as usize % files.len()];
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, rest).unwrap();
    let (snap, _diags) = keytrail_inventory::load_snapshot(&root);
    let now = keytrail_inventory::chrono::DateTime::from_timestamp(1_750_000_000, 0).unwrap();
    let _ = keytrail_inventory::inventory(&snap, None, now);
}

/// The redact stream: the builtin rules and one known value, at a read
/// size the first byte picks. The known value never survives.
pub fn redact_stream(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    const KNOWN: &[u8] = b"kt-fuzz-known-value-7Q2x";
    const READ_SIZES: [usize; 4] = [1, 3, 17, 4096];
    static REDACTORS: OnceLock<Vec<keytrail_ci::redact::Redactor>> = OnceLock::new();
    let redactors = REDACTORS.get_or_init(|| {
        READ_SIZES
            .iter()
            .map(|&n| {
                let (rules, _) = keytrail_rules::builtin();
                let scanner = keytrail_scan::Scanner::new(rules).0;
                keytrail_ci::redact::RedactorBuilder::new()
                    .scanner(scanner)
                    .known("env:FUZZ", keytrail_types::Secret::new(KNOWN.to_vec()))
                    .read_size(n)
                    .build()
                    .0
            })
            .collect()
    });
    let r = &redactors[pick as usize % READ_SIZES.len()];
    let out = r.redact_bytes(rest);
    assert!(
        !out.windows(KNOWN.len()).any(|w| w == KNOWN),
        "the known value survived redaction"
    );
}

/// The readers of `keytrail detect` on arbitrary bytes (CloudTrail and the other
/// clouds' records: Google Cloud entries and Pub/Sub envelopes, Entra, Microsoft 365
/// and Azure Activity records; seeds of each in the corpus): format sniffing,
/// JSON arrays and `Records` wrappers split by the byte scanner (whole and in small
/// windows), NDJSON, envelopes, gzip. Reading ends with at most one item per byte,
/// and windowed, whole and gzipped reading agree
/// ([`keytrail_detect::reader::check_reader_invariants`]).
pub fn cloudtrail(data: &[u8]) {
    keytrail_detect::reader::check_reader_invariants(data);
}

/// The CSV reader (Athena results, exports with Python-dict or Presto struct cells):
/// the bytes after a CloudTrail CSV header.
pub fn cloudtrail_csv(data: &[u8]) {
    let mut v = b"eventversion,useridentity,eventtime,eventsource,eventname,awsregion,sourceipaddress,useragent,requestparameters,responseelements\n".to_vec();
    v.extend_from_slice(data);
    keytrail_detect::reader::check_reader_invariants(&v);
}

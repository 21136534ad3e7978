//! Tests of the image source against real artefacts built at test time:
//! OCI layouts made with `umoci`, converted by `skopeo` to docker-archives,
//! OCI archives and zstd layers, pushed to Debian's reference registry
//! (`docker-registry`) on 127.0.0.1 with and without htpasswd auth; plus
//! hand-made layers for what the tools never produce (opaque whiteouts,
//! `..` names, bombs, corrupt and truncated blobs).
//!
//! Without the tools, tests fail naming the packages to install
//! (`scripts/install-test-deps.sh` installs them).
#![cfg(feature = "image")]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use keytrail_input::image::{
    self, ContentSeen, ImageOptions, ImageStats, kinds, remediation, scan_image,
};
use keytrail_input::{Blob, BlobSink, Content};
use keytrail_testkit::secrets::FakeSecrets;
use keytrail_types::{
    Confidence, Diagnostic, Finding, Fingerprint, ImageOrigin, Location, Origin, Secret, Severity,
};

// ---------------------------------------------------------------- helpers

/// Fails the test, naming the Debian packages, when an external tool is missing.
fn tools(names: &[&str]) {
    keytrail_testkit::tools::require(
        names,
        "Debian: apt-get install umoci skopeo docker-registry; scripts/install-test-deps.sh installs them",
    )
}

use keytrail_testkit::tools::{Registry, run};

/// An image built with umoci, layer by layer.
struct Umoci {
    dir: PathBuf,
    layout: PathBuf,
    bundle: PathBuf,
    tag: String,
}

impl Umoci {
    fn new(dir: &Path, tag: &str) -> Umoci {
        let layout = dir.join("layout");
        if !layout.exists() {
            run(Command::new("umoci")
                .args(["init", "--layout"])
                .arg(&layout));
        }
        let image = format!("{}:{tag}", layout.display());
        run(Command::new("umoci").args(["new", "--image", &image]));
        let bundle = dir.join(format!("bundle-{tag}"));
        run(Command::new("umoci")
            .args(["unpack", "--rootless", "--image", &image])
            .arg(&bundle));
        Umoci {
            dir: dir.to_path_buf(),
            layout,
            bundle,
            tag: tag.to_string(),
        }
    }

    fn image(&self) -> String {
        format!("{}:{}", self.layout.display(), self.tag)
    }

    fn rootfs(&self) -> PathBuf {
        self.bundle.join("rootfs")
    }

    fn write(&self, rel: &str, text: &str) {
        let p = self.rootfs().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn remove(&self, rel: &str) {
        let p = self.rootfs().join(rel);
        if p.is_dir() {
            std::fs::remove_dir_all(p).unwrap();
        } else {
            std::fs::remove_file(p).unwrap();
        }
    }

    /// Commit the bundle as a new layer made by `created_by`.
    fn layer(&self, created_by: &str) {
        run(Command::new("umoci")
            .args([
                "repack",
                "--refresh-bundle",
                "--history.created_by",
                created_by,
                "--image",
                &self.image(),
            ])
            .arg(&self.bundle));
    }

    fn config(&self, args: &[&str]) {
        run(Command::new("umoci")
            .args(["config", "--image", &self.image()])
            .args(args));
    }

    /// Tag the current image as `tag` too, and continue building `tag`.
    fn fork(&self, tag: &str) -> Umoci {
        run(Command::new("umoci").args(["tag", "--image", &self.image(), tag]));
        let image = format!("{}:{tag}", self.layout.display());
        let bundle = self.dir.join(format!("bundle-{tag}"));
        run(Command::new("umoci")
            .args(["unpack", "--rootless", "--image", &image])
            .arg(&bundle));
        Umoci {
            dir: self.dir.clone(),
            layout: self.layout.clone(),
            bundle,
            tag: tag.to_string(),
        }
    }
}

/// One delivered blob.
#[derive(Debug, Clone)]
struct Got {
    path: String,
    origin: ImageOrigin,
    text: String,
}

#[derive(Default)]
struct Collect {
    blobs: Mutex<Vec<Got>>,
    diags: Mutex<Vec<Diagnostic>>,
}

impl BlobSink for Collect {
    fn blob(&self, blob: Blob) {
        let bytes = match blob.content {
            Content::Bytes(b) => b,
            Content::File { path, .. } => std::fs::read(path).unwrap(),
        };
        let Origin::Image(origin) = blob.origin else {
            panic!("not an image origin: {:?}", blob.origin)
        };
        self.blobs.lock().unwrap().push(Got {
            path: blob.path,
            origin,
            text: String::from_utf8_lossy(&bytes).into_owned(),
        });
    }
    fn diagnostic(&self, diag: Diagnostic) {
        self.diags.lock().unwrap().push(diag);
    }
}

impl Collect {
    fn blobs(&self) -> Vec<Got> {
        self.blobs.lock().unwrap().clone()
    }
    fn with(&self, needle: &str) -> Vec<Got> {
        let mut v: Vec<Got> = self
            .blobs()
            .into_iter()
            .filter(|b| b.text.contains(needle))
            .collect();
        v.sort_by(|a, b| a.path.cmp(&b.path));
        v
    }
    fn kinds(&self) -> Vec<String> {
        self.diags
            .lock()
            .unwrap()
            .iter()
            .filter(|d| d.kind != "binary")
            .map(|d| d.kind.clone())
            .collect()
    }
    fn diag(&self, kind: &str) -> Diagnostic {
        // Release the lock before panicking: the message locks it again.
        let found = self
            .diags
            .lock()
            .unwrap()
            .iter()
            .find(|d| d.kind == kind)
            .cloned();
        found.unwrap_or_else(|| panic!("no {kind} diagnostic; have {:?}", self.kinds()))
    }
}

fn scan(reference: &str, opts: &ImageOptions, seen: &ContentSeen) -> (Collect, ImageStats) {
    let sink = Collect::default();
    let stats = scan_image(reference, opts, &sink, seen);
    (sink, stats)
}

/// What a scanner would report: one finding for `secret`, located in
/// every delivered blob holding it (line 1 column of its first byte).
fn finding_for(sink: &Collect, secret: &str) -> Finding {
    let locations = sink
        .with(secret)
        .into_iter()
        .map(|g| {
            let offset = g.text.find(secret).unwrap() as u64;
            Location {
                path: g.path,
                line: 1,
                column: offset + 1,
                offset,
                snippet: String::new(),
                origin: Origin::Image(g.origin),
                decoded: None,
            }
        })
        .collect();
    Finding {
        rule_id: "test".into(),
        rule_name: "test".into(),
        confidence: Confidence::High,
        severity: Severity::High,
        fingerprint: Fingerprint("f".into()),
        secret: Secret::new(secret.to_string()),
        secret_redacted: "x".into(),
        context: vec![],
        locations,
        notes: vec![],
        remediation: None,
        verification: None,
        blast_radius: None,
    }
}

fn image_origin(l: &Location) -> &ImageOrigin {
    match &l.origin {
        Origin::Image(o) => o,
        other => panic!("{other:?}"),
    }
}

/// The fixture image: three layers and a config with secrets.
struct Fixture {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    layout: PathBuf,
    /// In /app/.env of layer 0, deleted by layer 1 (whiteout).
    deleted: String,
    /// In /etc/app/db.conf of layer 0, overwritten in layer 2.
    overwritten: String,
    /// In /srv/keep.txt of layer 1, still visible.
    kept: String,
    /// In the config Env.
    env: String,
    /// In a history entry (`ARG`).
    arg: String,
}

fn fixture() -> Fixture {
    tools(&["umoci", "skopeo"]);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let mut fake = FakeSecrets::new(5);
    let (deleted, overwritten, kept) = (fake.github_classic(), fake.github_classic(), fake.npm());
    let env = fake.aws_key_pair().secret_access_key;
    let arg = fake.github_classic();
    let img = Umoci::new(&dir, "v1");
    img.write("app/.env", &format!("GITHUB_TOKEN={deleted}\n"));
    img.write("etc/app/db.conf", &format!("token = {overwritten}\n"));
    img.write("usr/share/doc/readme.txt", "nothing here\n");
    img.layer("COPY . /");
    img.remove("app/.env");
    img.write("srv/keep.txt", &format!("NPM_TOKEN={kept}\n"));
    img.layer(&format!(
        "RUN rm /app/.env && echo $TOKEN # ARG TOKEN={arg}"
    ));
    img.write("etc/app/db.conf", "token = from-vault\n");
    img.layer("COPY db.conf /etc/app/");
    img.config(&[
        "--config.env",
        &format!("AWS_SECRET_ACCESS_KEY={env}"),
        "--history.created_by",
        &format!("ENV AWS_SECRET_ACCESS_KEY={env}"),
    ]);
    Fixture {
        layout: img.layout.clone(),
        _tmp: tmp,
        dir,
        deleted,
        overwritten,
        kept,
        env,
        arg,
    }
}

fn opts() -> ImageOptions {
    ImageOptions {
        threads: 2,
        docker_config: Some(PathBuf::from("/nonexistent/config.json")),
        ..ImageOptions::default()
    }
}

/// The facts every transport must deliver for the fixture.
fn check_fixture(f: &Fixture, sink: &Collect, stats: &ImageStats, image: &str) {
    assert!(sink.kinds().is_empty(), "{:?}", sink.diags.lock().unwrap());
    assert_eq!(stats.images.len(), 1);
    assert_eq!(stats.images[0].image, image);
    assert_eq!(stats.layers, 3, "{stats:?}");

    let deleted = sink.with(&f.deleted);
    assert_eq!(deleted.len(), 1, "{deleted:?}");
    assert_eq!(deleted[0].path, format!("{image}@layer0:/app/.env"));
    assert_eq!(deleted[0].origin.layer, Some(0));
    assert_eq!(deleted[0].origin.created_by.as_deref(), Some("COPY . /"));
    assert!(!deleted[0].origin.visible_in_final, "deleted by a whiteout");
    assert_eq!(
        deleted[0].origin.layer_digest.as_deref(),
        Some(stats.images[0].layers[0].as_str())
    );

    let over = sink.with(&f.overwritten);
    assert_eq!(over.len(), 1);
    assert!(!over[0].origin.visible_in_final, "overwritten by layer 2");

    let kept = sink.with(&f.kept);
    assert_eq!(kept[0].path, format!("{image}@layer1:/srv/keep.txt"));
    assert!(kept[0].origin.visible_in_final);

    let env = sink.with(&f.env);
    let paths: Vec<&str> = env.iter().map(|g| g.path.as_str()).collect();
    assert!(
        paths.contains(&format!("{image}@config:Env").as_str()),
        "{paths:?}"
    );
    assert!(
        paths.iter().any(|p| p.contains("@config:history[")),
        "{paths:?}"
    );
    assert!(
        env.iter()
            .all(|g| g.origin.visible_in_final && g.origin.platform.is_some())
    );

    // The ARG value lives only in history; that entry made layer 1.
    let arg = sink.with(&f.arg);
    assert_eq!(arg.len(), 1, "{arg:?}");
    assert_eq!(arg[0].path, format!("{image}@config:history[1]"));
    assert_eq!(arg[0].origin.layer, Some(1));
    assert_eq!(
        arg[0].origin.layer_digest.as_deref(),
        Some(stats.images[0].layers[1].as_str())
    );
}

// ---------------------------------------------------------------- tests

#[test]
fn oci_layout_every_layer_whiteouts_and_config() {
    let f = fixture();
    let reference = format!("oci:{}:v1", f.layout.display());
    let (sink, stats) = scan(&reference, &opts(), &ContentSeen::new());
    check_fixture(&f, &sink, &stats, &reference);
    assert!(
        stats.images[0]
            .manifest_digest
            .as_deref()
            .unwrap()
            .starts_with("sha256:")
    );
    // A bare directory path is recognised as a layout.
    let (sink2, stats2) = scan(f.layout.to_str().unwrap(), &opts(), &ContentSeen::new());
    assert_eq!(stats2.layers, 3);
    assert_eq!(sink2.with(&f.deleted).len(), 1);
}

#[test]
fn docker_archive_and_oci_archive_from_skopeo() {
    let f = fixture();
    let src = format!("oci:{}:v1", f.layout.display());
    let docker = f.dir.join("saved.tar");
    run(Command::new("skopeo").args([
        "copy",
        &src,
        &format!("docker-archive:{}:example/app:v1", docker.display()),
    ]));
    let reference = format!("docker-archive:{}", docker.display());
    let (sink, stats) = scan(&reference, &opts(), &ContentSeen::new());
    check_fixture(&f, &sink, &stats, &reference);
    // Auto-detected from the path alone, also gzip-compressed.
    let gz = f.dir.join("saved.tar.gz");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::fast(),
    );
    enc.write_all(&std::fs::read(&docker).unwrap()).unwrap();
    enc.finish().unwrap();
    let (sink, stats) = scan(gz.to_str().unwrap(), &opts(), &ContentSeen::new());
    check_fixture(&f, &sink, &stats, gz.to_str().unwrap());

    let oci_tar = f.dir.join("image.oci.tar");
    run(Command::new("skopeo").args([
        "copy",
        &src,
        &format!("oci-archive:{}:v1", oci_tar.display()),
    ]));
    let reference = format!("oci-archive:{}", oci_tar.display());
    let (sink, stats) = scan(&reference, &opts(), &ContentSeen::new());
    check_fixture(&f, &sink, &stats, &reference);
}

#[test]
fn zstd_layers() {
    let f = fixture();
    let dest = f.dir.join("zstd");
    run(Command::new("skopeo").args([
        "copy",
        "--dest-compress-format",
        "zstd",
        "--dest-compress",
        &format!("oci:{}:v1", f.layout.display()),
        &format!("oci:{}:v1", dest.display()),
    ]));
    let manifest_has_zstd = std::fs::read_dir(dest.join("blobs/sha256"))
        .unwrap()
        .any(|e| {
            std::fs::read(e.unwrap().path())
                .unwrap()
                .starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        });
    assert!(manifest_has_zstd, "skopeo did not write zstd layers");
    let reference = format!("oci:{}:v1", dest.display());
    let (sink, stats) = scan(&reference, &opts(), &ContentSeen::new());
    check_fixture(&f, &sink, &stats, &reference);
}

#[test]
fn scan_once_across_tags_with_every_location_reported() {
    let f = fixture();
    // v2 = v1 + one layer with a copy of the kept file elsewhere.
    let v1 = Umoci {
        dir: f.dir.clone(),
        layout: f.layout.clone(),
        bundle: f.dir.join("bundle-v1"),
        tag: "v1".into(),
    };
    let v2 = v1.fork("v2");
    v2.write("opt/copy/keep.txt", &format!("NPM_TOKEN={}\n", f.kept));
    v2.layer("COPY keep.txt /opt/copy/");
    let seen = ContentSeen::new();
    let r1 = format!("oci:{}:v1", f.layout.display());
    let r2 = format!("oci:{}:v2", f.layout.display());
    let (s1, st1) = scan(&r1, &opts(), &seen);
    let (s2, st2) = scan(&r2, &opts(), &seen);
    assert_eq!(st1.layers, 3);
    assert_eq!((st2.layers, st2.layers_reused), (1, 3), "{st2:?}");
    // Only v2's new history entry is new content.
    assert_eq!(st2.scanned, 1, "{st2:?}");
    let new: Vec<String> = s2.blobs().into_iter().map(|g| g.path).collect();
    assert_eq!(new, vec![format!("{r2}@config:history[4]")]);
    assert!(st2.duplicates >= 4, "{st2:?}");
    assert!(s2.with(&f.kept).is_empty(), "nothing rescanned");

    // The scanner saw the secret once; expanding gives every place.
    let mut findings = vec![finding_for(&s1, &f.kept), finding_for(&s1, &f.deleted)];
    assert_eq!(findings[0].locations.len(), 1);
    seen.expand_findings(&mut findings);
    let kept: BTreeMap<String, bool> = findings[0]
        .locations
        .iter()
        .map(|l| (l.path.clone(), image_origin(l).visible_in_final))
        .collect();
    assert_eq!(
        kept,
        BTreeMap::from([
            (format!("{r1}@layer1:/srv/keep.txt"), true),
            (format!("{r2}@layer1:/srv/keep.txt"), true),
            (format!("{r2}@layer3:/opt/copy/keep.txt"), true),
        ])
    );
    let deleted: Vec<(String, bool)> = findings[1]
        .locations
        .iter()
        .map(|l| (l.path.clone(), image_origin(l).visible_in_final))
        .collect();
    assert_eq!(deleted.len(), 2);
    assert!(deleted.iter().all(|(_, v)| !v));

    // Remediation lists both tags and both manifest digests.
    let r = remediation(&findings[0]).unwrap();
    assert_eq!(r.references, vec![r1.clone(), r2.clone()]);
    assert_eq!(r.digests.len(), 2);
    assert_eq!(r.steps[0].action, "rotate_credential");
    let r = remediation(&findings[1]).unwrap();
    assert!(r.affected.iter().all(|a| !a.visible_in_final));
}

// ------------------------------------------------ hand-made layouts

/// Write an OCI layout with these raw layer blobs and config.
fn hand_layout(dir: &Path, layers: &[Vec<u8>], config: serde_json::Value) -> PathBuf {
    use sha2::{Digest, Sha256};
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| {
        let hex: String = Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        std::fs::write(blobs.join(&hex), bytes).unwrap();
        (format!("sha256:{hex}"), bytes.len())
    };
    let layer_descs: Vec<serde_json::Value> = layers
        .iter()
        .map(|l| {
            let (d, n) = put(l);
            serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": n})
        })
        .collect();
    let (cd, cn) = put(config.to_string().as_bytes());
    let manifest = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cn},
        "layers": layer_descs});
    let (md, mn) = put(manifest.to_string().as_bytes());
    std::fs::write(
        dir.join("index.json"),
        serde_json::json!({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": mn}]}).to_string(),
    )
    .unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    dir.to_path_buf()
}

/// A gzip-compressed layer tar; names are written raw (so `../x` and
/// `/abs` survive); a `None` body is a directory.
fn layer_tar(entries: &[(&str, Option<&[u8]>)]) -> Vec<u8> {
    layer_tar_at(entries, flate2::Compression::fast())
}

/// [`layer_tar`] at a chosen gzip level.
fn layer_tar_at(entries: &[(&str, Option<&[u8]>)], level: flate2::Compression) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, body) in entries {
        let mut h = tar::Header::new_gnu();
        let raw = name.as_bytes();
        h.as_old_mut().name[..raw.len()].copy_from_slice(raw);
        match body {
            Some(data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(data.len() as u64);
                h.set_mode(0o644);
                h.set_cksum();
                b.append(&h, *data).unwrap();
            }
            None => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                h.set_mode(0o755);
                h.set_cksum();
                b.append(&h, &[][..]).unwrap();
            }
        }
    }
    let tar = b.into_inner().unwrap();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), level);
    enc.write_all(&tar).unwrap();
    enc.finish().unwrap()
}

fn config_json(history: &[&str]) -> serde_json::Value {
    serde_json::json!({"os": "linux", "architecture": "amd64", "config": {},
        "history": history.iter().map(|h| serde_json::json!({"created_by": h})).collect::<Vec<_>>()})
}

#[test]
fn opaque_whiteouts_and_paths_above_the_root() {
    let tmp = tempfile::tempdir().unwrap();
    let mut fake = FakeSecrets::new(9);
    let (a, b, c) = (fake.github_classic(), fake.github_classic(), fake.npm());
    let escape = format!("TOKEN={c}\n");
    let l0 = layer_tar(&[
        ("cache/", None),
        ("cache/old.txt", Some(format!("T={a}").as_bytes())),
        ("../../../escaped.txt", Some(escape.as_bytes())),
        ("/abs/file.txt", Some(format!("T={b}").as_bytes())),
    ]);
    let l1 = layer_tar(&[
        ("cache/", None),
        ("cache/.wh..wh..opq", Some(b"")),
        ("cache/new.txt", Some(b"fresh")),
    ]);
    let dir = hand_layout(
        tmp.path(),
        &[l0, l1],
        config_json(&["ADD a /", "RUN clean"]),
    );
    let reference = format!("oci:{}", dir.display());
    let (sink, _) = scan(&reference, &opts(), &ContentSeen::new());
    let old = sink.with(&a);
    assert_eq!(old[0].path, format!("{reference}@layer0:/cache/old.txt"));
    assert!(
        !old[0].origin.visible_in_final,
        "hidden by the opaque directory above"
    );
    let esc = sink.with(&c);
    assert_eq!(esc[0].path, format!("{reference}@layer0:/escaped.txt"));
    assert!(esc[0].origin.visible_in_final);
    assert_eq!(
        sink.with(&b)[0].path,
        format!("{reference}@layer0:/abs/file.txt")
    );
    assert!(!sink.diag(kinds::IMAGE_UNSAFE_PATH).is_error);
    assert!(!tmp.path().join("escaped.txt").exists());
    assert!(!Path::new("/escaped.txt").exists());
    assert!(sink.with("fresh")[0].origin.visible_in_final);
}

#[test]
fn corrupt_truncated_missing_and_bomb_layers_do_not_stop_the_others() {
    let tmp = tempfile::tempdir().unwrap();
    let mut fake = FakeSecrets::new(11);
    let good = fake.github_classic();
    let l_good = layer_tar(&[("ok.txt", Some(format!("T={good}").as_bytes()))]);
    // Corrupt compression: valid header, garbage body.
    let mut l_corrupt = layer_tar(&[("x.txt", Some(&[b'x'; 100_000][..]))]);
    let mid = l_corrupt.len() / 2;
    for byte in &mut l_corrupt[20..mid] {
        *byte ^= 0x5a;
    }
    // Truncated: the second half is gone.
    let big: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
    let l_trunc_full = layer_tar(&[
        ("a.txt", Some(format!("A={good}").as_bytes())),
        ("big.bin.txt", Some(&big[..])),
    ]);
    let l_trunc = l_trunc_full[..l_trunc_full.len() / 2].to_vec();
    // A bomb: 64 MiB of zeros compress to ~64 KiB (1000:1).
    let zeros = vec![0u8; 64 << 20];
    let l_bomb = layer_tar_at(
        &[("zeros.txt", Some(&zeros[..]))],
        flate2::Compression::best(),
    );
    let l_missing = layer_tar(&[("never.txt", Some(b"x"))]);
    let dir = hand_layout(
        tmp.path(),
        &[l_good, l_corrupt, l_trunc, l_bomb, l_missing.clone()],
        config_json(&["A", "B", "C", "D", "E"]),
    );
    use sha2::{Digest, Sha256};
    let hex: String = Sha256::digest(&l_missing)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    std::fs::remove_file(dir.join("blobs/sha256").join(&hex)).unwrap();
    let reference = format!("oci:{}", dir.display());
    let (sink, stats) = scan(&reference, &opts(), &ContentSeen::new());
    let found = sink.with(&good);
    assert_eq!(
        found.len(),
        2,
        "layer 0 and the head of the truncated layer 2: {found:?}"
    );
    let missing = sink.diag(kinds::IMAGE_BLOB_MISSING);
    assert_eq!(missing.subject, format!("{reference}@layer4"));
    assert!(missing.message.contains(&hex), "{}", missing.message);
    let corrupt: Vec<String> = sink
        .diags
        .lock()
        .unwrap()
        .iter()
        .filter(|d| d.kind == kinds::IMAGE_CORRUPT)
        .map(|d| d.subject.clone())
        .collect();
    assert!(
        corrupt.contains(&format!("{reference}@layer1")),
        "{corrupt:?}"
    );
    assert!(
        corrupt.contains(&format!("{reference}@layer2")),
        "{corrupt:?}"
    );
    assert_eq!(
        sink.diag("archive_bomb").subject,
        format!("{reference}@layer3")
    );
    assert!(stats.errors >= 3);
}

#[test]
fn bad_references_and_missing_files_are_diagnostics() {
    let (sink, stats) = scan("Not A Ref", &opts(), &ContentSeen::new());
    assert_eq!(sink.diag(kinds::IMAGE_REFERENCE).subject, "Not A Ref");
    assert_eq!(stats.errors, 1);
    let (sink, _) = scan(
        "docker-archive:/nonexistent/x.tar",
        &opts(),
        &ContentSeen::new(),
    );
    assert!(sink.diag("not_found").is_error);
    let tmp = tempfile::tempdir().unwrap();
    let dir = hand_layout(tmp.path(), &[], config_json(&[]));
    let (sink, _) = scan(
        &format!("oci:{}:nosuchtag", dir.display()),
        &opts(),
        &ContentSeen::new(),
    );
    assert!(
        sink.diag(kinds::IMAGE_REFERENCE)
            .message
            .contains("nosuchtag")
    );
}

// ---------------------------------------------------------------- registry

/// Debian's reference registry on a free loopback port (with htpasswd auth when
/// given), and the directory it stores in.
fn start_registry(htpasswd: Option<(&str, &str)>) -> (Registry, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let auth = match htpasswd {
        Some((user, pass)) => {
            let hash = bcrypt::hash(pass, 4).unwrap();
            let file = dir.path().join("htpasswd");
            std::fs::write(&file, format!("{user}:{hash}\n")).unwrap();
            format!(
                "auth:\n  htpasswd:\n    realm: keytrail-test\n    path: {}\n",
                file.display()
            )
        }
        None => String::new(),
    };
    (Registry::start(dir.path(), &auth), dir)
}

fn push(src: &str, dest: &str, creds: Option<&str>) {
    let mut cmd = Command::new("skopeo");
    cmd.args(["copy", "--dest-tls-verify=false"]);
    if let Some(c) = creds {
        cmd.args(["--dest-creds", c]);
    }
    run(cmd.args([src, dest]));
}

#[test]
fn registry_anonymous_pull_and_errors() {
    tools(&["docker-registry"]);
    let f = fixture();
    let (reg, _dir) = start_registry(None);
    let src = format!("oci:{}:v1", f.layout.display());
    push(&src, &format!("docker://{}/team/app:v1", reg.addr), None);
    let reference = format!("{}/team/app:v1", reg.addr);
    let (sink, stats) = scan(&reference, &opts(), &ContentSeen::new());
    check_fixture(&f, &sink, &stats, &reference);
    let digest = stats.images[0].manifest_digest.clone().unwrap();
    // By digest, and the same layers found again in one run are reused.
    let seen = ContentSeen::new();
    let by_digest = format!("{}/team/app@{digest}", reg.addr);
    let (_, first) = scan(&reference, &opts(), &seen);
    let (sink, again) = scan(&by_digest, &opts(), &seen);
    assert_eq!((first.layers, again.layers, again.layers_reused), (3, 0, 3));
    assert!(sink.kinds().is_empty(), "{:?}", sink.kinds());
    // Unknown tag: the status and the reference are in the message.
    let missing = format!("{}/team/app:nope", reg.addr);
    let (sink, stats) = scan(&missing, &opts(), &ContentSeen::new());
    let d = sink.diag(kinds::IMAGE_REGISTRY);
    assert_eq!(d.subject, missing);
    assert!(
        d.message.contains("404") && d.message.contains("MANIFEST_UNKNOWN"),
        "{}",
        d.message
    );
    assert_eq!(stats.errors, 1);
}

#[test]
fn registry_basic_auth_flags_docker_config_and_failures() {
    tools(&["docker-registry"]);
    let f = fixture();
    let (user, pass) = ("ci-bot", "s3cret-test-password");
    let (reg, _dir) = start_registry(Some((user, pass)));
    let src = format!("oci:{}:v1", f.layout.display());
    push(
        &src,
        &format!("docker://{}/secure/app:v1", reg.addr),
        Some(&format!("{user}:{pass}")),
    );
    let reference = format!("{}/secure/app:v1", reg.addr);

    let (sink, stats) = scan(&reference, &opts(), &ContentSeen::new());
    let d = sink.diag(kinds::IMAGE_AUTH);
    assert!(d.message.contains("401"), "{}", d.message);
    assert_eq!(d.subject, reference);
    assert!(stats.images.is_empty());

    let wrong = ImageOptions {
        username: Some(user.into()),
        password: Some(Secret::new("wrong".into())),
        ..opts()
    };
    let (sink, _) = scan(&reference, &wrong, &ContentSeen::new());
    let d = sink.diag(kinds::IMAGE_AUTH);
    assert!(
        !d.message.contains("wrong"),
        "password leaked: {}",
        d.message
    );

    let flags = ImageOptions {
        username: Some(user.into()),
        password: Some(Secret::new(pass.into())),
        ..opts()
    };
    let (sink, stats) = scan(&reference, &flags, &ContentSeen::new());
    check_fixture(&f, &sink, &stats, &reference);

    let cfg = f.dir.join("docker-config.json");
    let auth = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    };
    std::fs::write(
        &cfg,
        format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, reg.addr),
    )
    .unwrap();
    let from_config = ImageOptions {
        docker_config: Some(cfg),
        ..opts()
    };
    let (sink, stats) = scan(&reference, &from_config, &ContentSeen::new());
    check_fixture(&f, &sink, &stats, &reference);
}

#[test]
fn registry_multi_platform_index_and_platform_filter() {
    tools(&["docker-registry"]);
    let f = fixture();
    // A second platform: same layers, config says arm64 and a different Env.
    let v1 = Umoci {
        dir: f.dir.clone(),
        layout: f.layout.clone(),
        bundle: f.dir.join("bundle-v1"),
        tag: "v1".into(),
    };
    let arm = v1.fork("arm");
    arm.config(&["--architecture", "arm64", "--config.env", "ARM_ONLY=1"]);
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(f.layout.join("index.json")).unwrap()).unwrap();
    let pick = |tag: &str| {
        index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
            .unwrap()
            .clone()
    };
    let (amd, arm) = (pick("v1"), pick("arm"));
    let child = |m: &serde_json::Value, arch: &str| {
        serde_json::json!({"mediaType": m["mediaType"], "digest": m["digest"], "size": m["size"],
            "platform": {"os": "linux", "architecture": arch}})
    };
    let multi = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [child(&amd, "amd64"), child(&arm, "arm64")]});
    let bytes = multi.to_string();
    use sha2::{Digest, Sha256};
    let hex: String = Sha256::digest(bytes.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    std::fs::write(f.layout.join("blobs/sha256").join(&hex), &bytes).unwrap();
    let mut index = index;
    index["manifests"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
        "mediaType": "application/vnd.oci.image.index.v1+json", "digest": format!("sha256:{hex}"),
        "size": bytes.len(), "annotations": {"org.opencontainers.image.ref.name": "multi"}}));
    std::fs::write(f.layout.join("index.json"), index.to_string()).unwrap();

    let (reg, _dir) = start_registry(None);
    run(Command::new("skopeo").args([
        "copy",
        "--all",
        "--dest-tls-verify=false",
        &format!("oci:{}:multi", f.layout.display()),
        &format!("docker://{}/multi/app:latest", reg.addr),
    ]));
    let reference = format!("{}/multi/app", reg.addr);
    let seen = ContentSeen::new();
    let (sink, stats) = scan(&reference, &opts(), &seen);
    assert!(sink.kinds().is_empty(), "{:?}", sink.kinds());
    let platforms: Vec<Option<String>> = stats.images.iter().map(|i| i.platform.clone()).collect();
    assert_eq!(
        platforms,
        vec![Some("linux/amd64".into()), Some("linux/arm64".into())]
    );
    assert_eq!(
        (stats.layers, stats.layers_reused),
        (3, 3),
        "shared layers read once"
    );
    let arm_env = sink.with("ARM_ONLY=1");
    assert_eq!(
        arm_env[0].path,
        format!("{reference}[linux/arm64]@config:Env")
    );

    let only_arm = ImageOptions {
        platforms: vec!["linux/arm64".into()],
        ..opts()
    };
    let (_, stats) = scan(&reference, &only_arm, &ContentSeen::new());
    assert_eq!(stats.images.len(), 1);
    assert_eq!(stats.images[0].platform.as_deref(), Some("linux/arm64"));
    let none = ImageOptions {
        platforms: vec!["windows/amd64".into()],
        ..opts()
    };
    let (sink, _) = scan(&reference, &none, &ContentSeen::new());
    assert!(
        sink.diag(kinds::IMAGE_NO_MATCH)
            .message
            .contains("windows/amd64")
    );
    let _ = image::parse_reference(&reference).unwrap();
}

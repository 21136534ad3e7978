//! `cargo xtask bench-hostile`: the bad-input campaign of the hardening
//! issue, re-run against the release binary as a benchmark. Each case writes
//! its hostile input (next to a good file where the issue did), runs one
//! `keytrail` command under GNU time with a hard timeout, and prints wall
//! seconds, peak RSS, exit code and output size in one table.
//!
//! The cases and the figures measured before the fixes (from the issue):
//!
//! | case | before |
//! |---|---|
//! | `detect` on `[}`, `[1}`, `{"Records":[}`, 300 KB random (plain, gzipped, in a directory) | endless 100 % CPU; 6–15 GB then abort |
//! | `ci-audit` on a 520-byte workflow of YAML aliases | memory exhausted, abort |
//! | `scan --fail-on-error` on a 277 KB zip: 272 MB filler, then a credential | exit 0, secret unseen |
//! | `posture` on a snapshot with a symlink to `/dev/zero` | 23 GB, killed |
//! | `scan --format jsonl` of one image with 300 platforms | 102 MB (JSON 1.1 MB) |
//! | `scan --format jsonl` of 5,000 layers shared by two platforms | 12 s (JSON 0.17 s) |
//! | `rules check` of a rule file nested 100,000 levels | 14.7 s |
//! | `inventory` of 80,000 users with an owners entry each | 4.8 s (posture 0.18 s) |
//! | `scan --threads 2000` | > 30 s |
//! | `detect --threads 100000` | panic |

use anyhow::{Context, Result, bail};
use keytrail_testkit::secrets::FakeSecrets;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// Seconds after which a case is killed (and reported as a hang).
const TIMEOUT_SECS: u32 = 300;

/// What one measured command did.
struct Outcome {
    wall: f64,
    peak_mib: f64,
    code: String,
    stdout_bytes: u64,
    stderr_head: String,
}

/// Run `keytrail ARGS` in `dir` under GNU time and `timeout`.
fn run(keytrail: &Path, dir: &Path, args: &[&str]) -> Result<Outcome> {
    let time_out = dir.join(".time");
    let out = dir.join(".stdout");
    let err = dir.join(".stderr");
    let start = Instant::now();
    let status = Command::new("/usr/bin/time")
        .args(["-f", "%e %M", "-o"])
        .arg(&time_out)
        .args(["timeout", "-s", "KILL", &TIMEOUT_SECS.to_string()])
        .arg(keytrail)
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out)?)
        .stderr(std::fs::File::create(&err)?)
        .status()
        .context("running /usr/bin/time (apt-get install time)")?;
    let wall = start.elapsed().as_secs_f64();
    let t = std::fs::read_to_string(&time_out)?;
    let kib: f64 = t
        .lines()
        .last()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    let code = match status.code() {
        // GNU time reports the child's status; timeout -s KILL gives 137.
        Some(137) => format!("killed after {TIMEOUT_SECS} s"),
        Some(c) => c.to_string(),
        None => "signal".into(),
    };
    let stderr = std::fs::read_to_string(&err).unwrap_or_default();
    let stderr_head = stderr
        .lines()
        .find(|l| l.contains("error") || l.contains("warning") || l.contains("note"))
        .unwrap_or("")
        .chars()
        .take(110)
        .collect();
    Ok(Outcome {
        wall,
        peak_mib: kib / 1024.0,
        code,
        stdout_bytes: std::fs::metadata(&out)?.len(),
        stderr_head,
    })
}

fn fresh(root: &Path, name: &str) -> Result<PathBuf> {
    let d = root.join(name);
    if d.exists() {
        std::fs::remove_dir_all(&d)?;
    }
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

fn gzip(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes)?;
    Ok(e.finish()?)
}

/// One benign CloudTrail file to sit next to the bad ones.
fn good_trail() -> String {
    json!({"Records": [{
        "eventVersion": "1.08", "eventTime": "2024-05-01T12:00:00Z",
        "eventSource": "s3.amazonaws.com", "eventName": "ListBuckets",
        "awsRegion": "us-east-1", "sourceIPAddress": "198.51.100.7",
        "userAgent": "aws-cli/2.15.0", "eventID": "e1", "eventType": "AwsApiCall",
        "recipientAccountId": "123456789012",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::123456789012:user/ci",
            "accountId": "123456789012", "accessKeyId": "AKIAEXAMPLEEXAMPLE01", "userName": "ci"}
    }]})
    .to_string()
}

fn case_detect(root: &Path) -> Result<PathBuf> {
    let d = fresh(root, "detect")?;
    std::fs::write(d.join("good.json"), good_trail())?;
    for (i, bad) in [&b"[}"[..], b"[1}", b"{\"Records\":[}"].iter().enumerate() {
        std::fs::write(d.join(format!("bad{i}.json")), bad)?;
        std::fs::write(d.join(format!("bad{i}.json.gz")), gzip(bad)?)?;
    }
    let mut rng = FakeSecrets::new(0xbad);
    let mut random = vec![0u8; 300_000];
    rand::RngCore::fill_bytes(rng.rng(), &mut random);
    std::fs::write(d.join("random.json"), &random)?;
    std::fs::write(d.join("random.json.gz"), gzip(&random)?)?;
    Ok(d)
}

fn case_alias_bomb(root: &Path) -> Result<PathBuf> {
    let d = fresh(root, "ci-audit")?;
    std::fs::create_dir_all(d.join(".github/workflows"))?;
    // Nine levels of nine aliases: 9^9 (387 million) nodes once expanded.
    let mut y = String::from(
        "on: push\nx:\n  a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
    for w in names.windows(2) {
        let (prev, cur) = (w[0], w[1]);
        let refs = vec![format!("*{prev}"); 9].join(",");
        y.push_str(&format!("  {cur}: &{cur} [{refs}]\n"));
    }
    y.push_str("jobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo *i\n");
    std::fs::write(d.join(".github/workflows/bomb.yml"), &y)?;
    std::fs::write(
        d.join(".github/workflows/good.yml"),
        "on: pull_request_target\njobs:\n  t:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n        with:\n          ref: ${{ github.event.pull_request.head.sha }}\n",
    )?;
    Ok(d)
}

fn case_zip(root: &Path) -> Result<PathBuf> {
    let d = fresh(root, "zip")?;
    let f = std::fs::File::create(d.join("filler.zip"))?;
    let mut z = zip::ZipWriter::new(f);
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(true);
    z.start_file("filler.bin", opts)?;
    let chunk = vec![b'A'; 1 << 20];
    for _ in 0..272 {
        z.write_all(&chunk)?;
    }
    let mut rng = FakeSecrets::new(0x21b);
    let key = rng.aws_key_pair();
    z.start_file("config/credentials", opts)?;
    writeln!(
        z,
        "[default]\naws_access_key_id = {}\naws_secret_access_key = {}",
        key.access_key_id, key.secret_access_key
    )?;
    z.finish()?;
    Ok(d)
}

fn case_posture_devzero(root: &Path) -> Result<PathBuf> {
    let d = fresh(root, "posture")?;
    let aws = d.join("snap/aws");
    std::fs::create_dir_all(&aws)?;
    std::fs::write(
        aws.join("s3api-list-buckets.json"),
        r#"{"Buckets": [{"Name": "b"}]}"#,
    )?;
    std::os::unix::fs::symlink(
        "/dev/zero",
        aws.join("iam-get-account-authorization-details.json"),
    )?;
    Ok(d)
}

/// An OCI layout with one index of `platforms` manifests that all list the
/// same `layers` layers; layer `i` holds `app/conf{i}.env` with one fake
/// secret (the same secret in every layer).
fn write_oci(dir: &Path, platforms: usize, layers: usize) -> Result<()> {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs)?;
    let put = |bytes: &[u8]| -> Result<(String, usize)> {
        let hex = format!("{:x}", Sha256::digest(bytes));
        std::fs::write(blobs.join(&hex), bytes)?;
        Ok((format!("sha256:{hex}"), bytes.len()))
    };
    let mut rng = FakeSecrets::new(0x0c1);
    let secret = rng.github_classic();
    let mut layer_descs = Vec::new();
    let mut diff_ids = Vec::new();
    for i in 0..layers {
        let body = format!("# layer {i}\nGITHUB_TOKEN={secret}\n");
        let mut tar = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, format!("app/conf{i}.env"), body.as_bytes())?;
        let raw = tar.into_inner()?;
        diff_ids.push(format!("sha256:{:x}", Sha256::digest(&raw)));
        let (digest, size) = put(&gzip(&raw)?)?;
        layer_descs.push(json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest, "size": size}));
    }
    let mut manifests = Vec::new();
    for p in 0..platforms {
        let (os, arch, variant) = ("linux", "arm", format!("v{p}"));
        let config = json!({
            "architecture": arch, "os": os, "variant": variant,
            "config": {"Env": ["PATH=/usr/bin"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": (0..layers).map(|i| json!({"created_by": format!("COPY conf{i}.env /app/")})).collect::<Vec<_>>(),
        });
        let (cd, cs) = put(config.to_string().as_bytes())?;
        let manifest = json!({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
            "layers": layer_descs,
        });
        let (md, ms) = put(manifest.to_string().as_bytes())?;
        manifests.push(json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms,
            "platform": {"os": os, "architecture": arch, "variant": variant},
        }));
    }
    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests});
    let (id, is) = put(index.to_string().as_bytes())?;
    let top = json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.index.v1+json", "digest": id, "size": is,
        "annotations": {"org.opencontainers.image.ref.name": "latest"}}]});
    std::fs::write(dir.join("index.json"), top.to_string())?;
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)?;
    Ok(())
}

fn case_rule_nesting(root: &Path) -> Result<PathBuf> {
    let d = fresh(root, "rules")?;
    std::fs::create_dir_all(d.join("rules"))?;
    let depth = 100_000;
    let mut y = String::from("rules:\n  - id: deep.nesting\n    name: nested\n    pattern: ");
    y.push_str(&"[".repeat(depth));
    y.push_str(&"]".repeat(depth));
    y.push('\n');
    std::fs::write(d.join("rules/deep.yml"), y)?;
    Ok(d)
}

fn case_inventory(root: &Path, users: usize) -> Result<PathBuf> {
    let d = fresh(root, "inventory")?;
    let spec = keytrail_testkit::snapshot::AwsSnapshotSpec {
        users,
        roles: 1_000,
        ..Default::default()
    };
    keytrail_testkit::snapshot::write_aws_snapshot(&d.join("snap"), &spec)?;
    let mut owners = String::from("version: 1\nidentities:\n");
    for i in 0..users {
        owners.push_str(&format!(
            "  - arn: arn:aws:iam::{}:user/user-{i}\n    owner: team-{}\n    environment: prod\n",
            spec.account,
            i % 40
        ));
    }
    std::fs::write(d.join("owners.yaml"), owners)?;
    Ok(d)
}

fn case_threads(root: &Path) -> Result<PathBuf> {
    let d = fresh(root, "threads")?;
    let mut rng = FakeSecrets::new(0x7d);
    for i in 0..200 {
        std::fs::write(
            d.join(format!("f{i}.env")),
            format!("TOKEN={}\n", rng.github_classic()),
        )?;
    }
    std::fs::write(d.join("trail.json"), good_trail())?;
    Ok(d)
}

/// Options of `bench-hostile`.
struct Opts {
    users: usize,
    dir: PathBuf,
}

fn parse(args: &[String]) -> Result<Opts> {
    let mut o = Opts {
        users: 80_000,
        dir: std::env::temp_dir().join("keytrail-bench-hostile"),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--users" => o.users = it.next().context("--users needs a value")?.parse()?,
            "--dir" => o.dir = PathBuf::from(it.next().context("--dir needs a value")?),
            other => bail!("unknown argument {other}"),
        }
    }
    Ok(o)
}

/// Entry point of `cargo xtask bench-hostile [--users N] [--dir DIR]`.
pub fn bench_hostile(args: &[String]) -> Result<()> {
    let opts = parse(args)?;
    let keytrail = crate::build_keytrail()?;
    std::fs::create_dir_all(&opts.dir)?;
    let root = opts.dir.as_path();
    println!("| case | command | wall s | peak RSS MiB | exit | stdout bytes | first diagnostic |");
    println!("|---|---|---|---|---|---|---|");
    let row = |case: &str, dir: &Path, args: &[&str]| -> Result<()> {
        let o = run(&keytrail, dir, args)?;
        println!(
            "| {case} | `keytrail {}` | {:.2} | {:.0} | {} | {} | {} |",
            args.join(" "),
            o.wall,
            o.peak_mib,
            o.code,
            o.stdout_bytes,
            o.stderr_head.replace('|', "\\|")
        );
        Ok(())
    };

    let d = case_detect(root)?;
    row(
        "bad CloudTrail next to a good file",
        &d,
        &["detect", "--no-default-sigma", "."],
    )?;
    let d = case_alias_bomb(root)?;
    row("520-byte YAML alias bomb", &d, &["ci-audit", "."])?;
    let d = case_zip(root)?;
    row(
        "zip: 272 MB filler, then a credential",
        &d,
        &["scan", "--fail-on-error", "."],
    )?;
    row(
        "same, limit raised",
        &d,
        &[
            "scan",
            "--max-archive-bytes",
            "1073741824",
            "--max-archive-ratio",
            "100000",
            ".",
        ],
    )?;
    let d = case_posture_devzero(root)?;
    row(
        "snapshot file is a symlink to /dev/zero",
        &d,
        &["posture", "--snapshot", "snap"],
    )?;

    let d = fresh(root, "platforms")?;
    write_oci(&d.join("img"), 300, 1)?;
    row(
        "one image, 300 platforms",
        &d,
        &["scan", "--format", "json", "--image", "oci:img"],
    )?;
    row(
        "one image, 300 platforms",
        &d,
        &["scan", "--format", "jsonl", "--image", "oci:img"],
    )?;
    let d = fresh(root, "layers")?;
    write_oci(&d.join("img"), 2, 5_000)?;
    row(
        "5,000 layers, 2 platforms",
        &d,
        &["scan", "--format", "json", "--image", "oci:img"],
    )?;
    row(
        "5,000 layers, 2 platforms",
        &d,
        &["scan", "--format", "jsonl", "--image", "oci:img"],
    )?;

    let d = case_rule_nesting(root)?;
    row(
        "rule file nested 100,000 levels",
        &d,
        &["rules", "check", "rules"],
    )?;
    let d = case_inventory(root, opts.users)?;
    let users = format!("{} users, owners entry each", opts.users);
    row(
        &users,
        &d,
        &["posture", "--snapshot", "snap", "--format", "jsonl"],
    )?;
    row(
        &users,
        &d,
        &[
            "inventory",
            "--snapshot",
            "snap",
            "--owners",
            "owners.yaml",
            "--format",
            "jsonl",
        ],
    )?;
    let d = case_threads(root)?;
    row("200 files", &d, &["scan", "--threads", "2000", "."])?;
    row(
        "one trail file",
        &d,
        &["detect", "--threads", "100000", "trail.json"],
    )?;
    Ok(())
}

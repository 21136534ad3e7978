//! Generators of realistic CloudTrail activity with injected attacks (owned by the detect work).
//!
//! [`write_activity`] writes weeks of CloudTrail for tens of machine and human
//! identities into an S3-style tree (`AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/`,
//! one `{"Records":[…]}` file per hour, named with the hour like CloudTrail does), with
//! optional injected attacks and benign look-alikes, and returns the ground truth.
//!
//! Identities: server roles (instance-profile sessions from AWS addresses, SDK user
//! agents, steady 24/7 load on their own buckets and tables), CI roles (weekday release
//! windows from a CI provider network), a nightly backup job, and people (console with
//! MFA, office hours, home-country ISP addresses). Addresses come from well-known
//! allocations (AWS, Microsoft, Deutsche Telekom, Comcast, SoftBank, Brazilian ISPs and a
//! VPN range from the x4bnet list) so offline IP intelligence classifies them.
//! Everything is generated from a seed; nothing is a real credential.

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// What to generate.
#[derive(Debug, Clone)]
pub struct ActivityConfig {
    /// RNG seed.
    pub seed: u64,
    /// First hour (epoch ms, should be a Monday 00:00 UTC).
    pub start_ms: i64,
    /// Number of days.
    pub days: u32,
    /// Server (machine) identities.
    pub servers: usize,
    /// CI identities.
    pub ci: usize,
    /// Human identities.
    pub humans: usize,
    /// Multiplier on per-identity event rates.
    pub rate: f64,
    /// Inject attacks.
    pub attacks: bool,
    /// Inject benign look-alikes.
    pub lookalikes: bool,
    /// How files are laid out.
    pub layout: Layout,
}

/// How generated events are written to files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// One plain `{"Records":[…]}` file per hour, all regions together (compact, for
    /// tests and benchmarks of large files).
    Hourly,
    /// As CloudTrail delivers to S3: one gzipped file per account, region and five
    /// minutes of events, named and filed by its delivery time (5 to 15 minutes after
    /// the events), under `AWSLogs/[<org-id>/]<account>/CloudTrail/<region>/YYYY/MM/DD/`.
    S3 {
        /// The organisation id of an organisation trail (`o-…`), or `None` for an
        /// account trail.
        org: Option<String>,
    },
    /// Every event of an account in one plain `{"Records":[…]}` file (the same events
    /// as the other layouts, for comparing per-file costs).
    OneFile,
}

impl Default for ActivityConfig {
    fn default() -> Self {
        ActivityConfig {
            seed: 7,
            // 2024-03-04 was a Monday.
            start_ms: 1_709_510_400_000,
            days: 21,
            servers: 20,
            ci: 4,
            humans: 12,
            rate: 1.0,
            attacks: true,
            lookalikes: true,
            layout: Layout::Hourly,
        }
    }
}

/// One injected scenario and where to find it.
#[derive(Debug, Clone)]
pub struct Truth {
    /// Scenario name.
    pub label: String,
    /// Principal as the detect engine normalises it (user or role ARN).
    pub principal: String,
    /// Start (epoch ms).
    pub start_ms: i64,
    /// End (epoch ms).
    pub end_ms: i64,
    /// Attack (true) or benign look-alike (false).
    pub malicious: bool,
}

/// Summary of what was written.
#[derive(Debug, Clone, Default)]
pub struct Written {
    /// Events written.
    pub events: u64,
    /// Files written.
    pub files: Vec<PathBuf>,
    /// Injected scenarios.
    pub truth: Vec<Truth>,
}

const ACCOUNT: &str = "123456789012";
const HOUR: i64 = 3_600_000;
const DAY: i64 = 86_400_000;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Server,
    Ci,
    Backup,
    Human,
}

#[derive(Clone)]
struct Ident {
    kind: Kind,
    name: String,
    /// Normalised principal (role or user ARN).
    principal: String,
    key: String,
    ips: Vec<String>,
    ua: String,
    region: String,
    bucket: String,
    rate: f64,
}

/// A pseudo-random 20-character access key id with the given prefix.
fn key_id(rng: &mut StdRng, prefix: &str) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut s = String::from(prefix);
    while s.len() < 20 {
        s.push(A[rng.random_range(0..A.len())] as char);
    }
    s
}

fn uuid(rng: &mut StdRng) -> String {
    let a: u128 = rng.random();
    let h = format!("{a:032x}");
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

/// `YYYY-MM-DDTHH:MM:SSZ`, CloudTrail's `eventTime`, for epoch milliseconds.
fn fmt_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .expect("generated times are within chrono's range")
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// One event to render.
struct Ev<'a> {
    t: i64,
    id: &'a Ident,
    source: &'a str,
    name: &'a str,
    ip: &'a str,
    ua: &'a str,
    region: &'a str,
    params: String,
    response: String,
    error: Option<&'a str>,
    read_only: bool,
    extra: &'a str,
}

fn render(out: &mut String, e: &Ev<'_>, rng: &mut StdRng) {
    let id = e.id;
    let identity = match id.kind {
        Kind::Human => format!(
            r#"{{"type":"IAMUser","principalId":"AIDA{}","arn":"{}","accountId":"{ACCOUNT}","accessKeyId":"{}","userName":"{}","sessionContext":{{"sessionIssuer":{{}},"webIdFederationData":{{}},"attributes":{{"creationDate":"{}","mfaAuthenticated":"true"}}}}}}"#,
            &id.key[4..],
            id.principal,
            id.key,
            id.name,
            fmt_time(e.t - HOUR)
        ),
        _ if id.principal.contains(":user/") => format!(
            r#"{{"type":"IAMUser","principalId":"AIDA{}","arn":"{}","accountId":"{ACCOUNT}","accessKeyId":"{}","userName":"{}"}}"#,
            &id.key[4..],
            id.principal,
            id.key,
            id.name
        ),
        _ => {
            let session = if id.kind == Kind::Server {
                format!("i-0{:016x}", crate_hash(&id.name))
            } else {
                format!("{}-session", id.name)
            };
            format!(
                r#"{{"type":"AssumedRole","principalId":"AROA{}:{session}","arn":"arn:aws:sts::{ACCOUNT}:assumed-role/{}/{session}","accountId":"{ACCOUNT}","accessKeyId":"{}","sessionContext":{{"sessionIssuer":{{"type":"Role","principalId":"AROA{}","arn":"{}","accountId":"{ACCOUNT}","userName":"{}"}},"webIdFederationData":{{}},"attributes":{{"creationDate":"{}","mfaAuthenticated":"false"}}}}}}"#,
                &id.key[4..],
                id.name,
                id.key,
                &id.key[4..],
                id.principal,
                id.name,
                fmt_time(e.t - HOUR)
            )
        }
    };
    let err = match e.error {
        Some(code) => format!(
            r#""errorCode":"{code}","errorMessage":"User is not authorized to perform {}","#,
            e.name
        ),
        None => String::new(),
    };
    let _ = write!(
        out,
        r#"{{"eventVersion":"1.09","userIdentity":{identity},"eventTime":"{}","eventSource":"{}","eventName":"{}","awsRegion":"{}","sourceIPAddress":"{}","userAgent":"{}",{err}"requestParameters":{},"responseElements":{},{}"requestID":"{}","eventID":"{}","readOnly":{},"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"{ACCOUNT}","eventCategory":"Management","tlsDetails":{{"tlsVersion":"TLSv1.3","cipherSuite":"TLS_AES_128_GCM_SHA256","clientProvidedHostHeader":"{}.{}.amazonaws.com"}}}}"#,
        fmt_time(e.t),
        e.source,
        e.name,
        e.region,
        e.ip,
        e.ua,
        if e.params.is_empty() {
            "null"
        } else {
            &e.params
        },
        if e.response.is_empty() {
            "null"
        } else {
            &e.response
        },
        e.extra,
        uuid(rng),
        uuid(rng),
        e.read_only,
        e.source.split('.').next().unwrap_or(""),
        e.region,
    );
}

fn crate_hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

struct Hour {
    events: Vec<(i64, String)>,
}

impl Hour {
    fn push(&mut self, e: Ev<'_>, rng: &mut StdRng) {
        let mut s = String::with_capacity(1200);
        render(&mut s, &e, rng);
        self.events.push((e.t, s));
    }
}

fn idents(cfg: &ActivityConfig, rng: &mut StdRng) -> Vec<Ident> {
    let mut v = Vec::new();
    let sdk = [
        "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#5.10.213 md/arch#x86_64 lang/python#3.11.8 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.69",
        "aws-sdk-go-v2/1.26.1 os/linux lang/go#1.22.1 md/GOOS#linux md/GOARCH#amd64 api/s3#1.53.0",
        "aws-sdk-java/2.25.16 Linux/5.10.213 OpenJDK_64-Bit_Server_VM/17.0.10+7-LTS Java/17.0.10 vendor/Amazon.com_Inc. io/sync http/Apache cfg/retry-mode/legacy",
    ];
    let regions = ["eu-west-1", "us-east-1", "eu-central-1"];
    for i in 0..cfg.servers {
        let name = format!("svc-{i:02}-app");
        v.push(Ident {
            kind: Kind::Server,
            principal: format!("arn:aws:iam::{ACCOUNT}:role/{name}"),
            key: key_id(rng, "ASIA"),
            ips: (0..3)
                .map(|k| format!("52.94.{}.{}", 10 + i % 200, 10 + k))
                .collect(),
            ua: sdk[i % sdk.len()].to_string(),
            region: regions[i % 2].to_string(),
            bucket: format!("svc-{i:02}-data"),
            rate: 30.0 + (i % 5) as f64 * 10.0,
            name,
        });
    }
    for i in 0..cfg.ci {
        let name = format!("ci-deploy-{i}");
        v.push(Ident {
            kind: Kind::Ci,
            principal: format!("arn:aws:iam::{ACCOUNT}:role/{name}"),
            key: key_id(rng, "ASIA"),
            ips: (0..4).map(|k| format!("20.{}.{}.{}", 42 + i, 30 + k, 7 + k)).collect(),
            ua: "APN/1.0 HashiCorp/1.0 Terraform/1.7.5 (+https://www.terraform.io) terraform-provider-aws/5.42.0 aws-sdk-go-v2/1.26.0 os/linux lang/go#1.21.8".into(),
            region: "eu-west-1".into(),
            bucket: format!("ci-artifacts-{i}"),
            rate: 40.0,
            name,
        });
    }
    v.push(Ident {
        kind: Kind::Backup,
        name: "backup-job".into(),
        principal: format!("arn:aws:iam::{ACCOUNT}:user/backup-job"),
        key: key_id(rng, "AKIA"),
        ips: vec!["52.94.250.20".into()],
        ua: "aws-cli/2.15.30 Python/3.11.8 Linux/5.10.213 exe/x86_64.amzn.2 prompt/off command/s3.cp".into(),
        region: "eu-west-1".into(),
        bucket: "backups-primary".into(),
        rate: 400.0,
    });
    let homes = ["79.192", "79.200", "79.210", "73.10", "73.40"];
    for i in 0..cfg.humans {
        let name = format!("person{i:02}");
        v.push(Ident {
            kind: Kind::Human,
            principal: format!("arn:aws:iam::{ACCOUNT}:user/{name}"),
            key: key_id(rng, "ASIA"),
            ips: vec![format!("{}.{}.{}", homes[i % homes.len()], 20 + i, 30 + i)],
            ua: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.0.0 Safari/537.36".into(),
            region: "eu-west-1".into(),
            bucket: "team-shared".into(),
            rate: 25.0,
            name,
        });
    }
    v
}

#[allow(clippy::too_many_arguments)]
fn normal_hour(
    id: &Ident,
    hour_start: i64,
    cfg: &ActivityConfig,
    rng: &mut StdRng,
    out: &mut Hour,
    ip_override: Option<&str>,
    region_override: Option<&str>,
    scale: f64,
) {
    let how = ((hour_start / HOUR).rem_euclid(168) + 72) % 168; // 0 = Monday 00:00
    let (dow, hod) = (how / 24, how % 24);
    let weekday = dow < 5;
    let base = match id.kind {
        Kind::Server => id.rate * if (8..20).contains(&hod) { 1.3 } else { 0.7 },
        Kind::Ci => {
            if weekday && (8..18).contains(&hod) {
                id.rate
            } else {
                0.0
            }
        }
        Kind::Backup => {
            if (1..3).contains(&hod) {
                id.rate
            } else {
                0.0
            }
        }
        Kind::Human => {
            if weekday && (7..17).contains(&hod) {
                id.rate
            } else {
                0.0
            }
        }
    } * cfg.rate
        * scale;
    if base <= 0.0 {
        return;
    }
    let n = (base * rng.random_range(0.7..1.3)).round() as usize;
    let region = region_override.unwrap_or(&id.region);
    for _ in 0..n {
        let t = hour_start + rng.random_range(0..HOUR);
        let ip = ip_override.unwrap_or_else(|| &id.ips[rng.random_range(0..id.ips.len())]);
        let (source, name, params, ro): (&str, &str, String, bool) = match id.kind {
            Kind::Server => match rng.random_range(0..10) {
                0..=3 => ("s3.amazonaws.com", "GetObject", format!(r#"{{"bucketName":"{}","key":"objects/{}.json","Host":"{}.s3.amazonaws.com"}}"#, id.bucket, rng.random_range(0..5000), id.bucket), true),
                4 => ("s3.amazonaws.com", "PutObject", format!(r#"{{"bucketName":"{}","key":"out/{}.json"}}"#, id.bucket, rng.random_range(0..5000)), false),
                5 | 6 => ("dynamodb.amazonaws.com", "GetItem", format!(r#"{{"tableName":"{}-table","key":{{"pk":{{"S":"id-{}"}}}}}}"#, id.name, rng.random_range(0..9999)), true),
                7 => ("sqs.amazonaws.com", "ReceiveMessage", format!(r#"{{"queueUrl":"https://sqs.{region}.amazonaws.com/{ACCOUNT}/{}-q","maxNumberOfMessages":10}}"#, id.name), true),
                8 => ("kms.amazonaws.com", "Decrypt", r#"{"encryptionAlgorithm":"SYMMETRIC_DEFAULT"}"#.into(), true),
                _ => ("secretsmanager.amazonaws.com", "GetSecretValue", format!(r#"{{"secretId":"{}/db"}}"#, id.name), true),
            },
            Kind::Ci => match rng.random_range(0..10) {
                0 | 1 => ("ecr.amazonaws.com", "GetAuthorizationToken", "{}".into(), true),
                2 => ("ecr.amazonaws.com", "PutImage", format!(r#"{{"repositoryName":"{}","imageTag":"v{}"}}"#, id.name, rng.random_range(0..999)), false),
                3 => ("ecs.amazonaws.com", "RegisterTaskDefinition", format!(r#"{{"family":"{}-task"}}"#, id.name), false),
                4 => ("ecs.amazonaws.com", "UpdateService", format!(r#"{{"cluster":"prod","service":"{}"}}"#, id.name), false),
                5 => ("ec2.amazonaws.com", "DescribeInstances", "{}".into(), true),
                6 => ("ec2.amazonaws.com", "RunInstances", r#"{"instanceType":"t3.medium","instancesSet":{"items":[{"imageId":"ami-0abc","minCount":1,"maxCount":2}]}}"#.into(), false),
                7 => ("s3.amazonaws.com", "PutObject", format!(r#"{{"bucketName":"{}","key":"build/{}.tar.gz"}}"#, id.bucket, rng.random_range(0..999)), false),
                8 => ("cloudformation.amazonaws.com", "DescribeStacks", "{}".into(), true),
                _ => ("sts.amazonaws.com", "GetCallerIdentity", "{}".into(), true),
            },
            Kind::Backup => match rng.random_range(0..4) {
                0 => ("s3.amazonaws.com", "ListObjectsV2", format!(r#"{{"bucketName":"{}","prefix":"db/"}}"#, id.bucket), true),
                1 | 2 => ("s3.amazonaws.com", "GetObject", format!(r#"{{"bucketName":"{}","key":"db/{}.dump"}}"#, id.bucket, rng.random_range(0..100_000)), true),
                _ => ("s3.amazonaws.com", "PutObject", format!(r#"{{"bucketName":"backups-replica","key":"db/{}.dump"}}"#, rng.random_range(0..100_000)), false),
            },
            Kind::Human => match rng.random_range(0..8) {
                0 => ("ec2.amazonaws.com", "DescribeInstances", "{}".into(), true),
                1 => ("s3.amazonaws.com", "ListBuckets", "{}".into(), true),
                2 => ("cloudwatch.amazonaws.com", "GetMetricData", "{}".into(), true),
                3 => ("logs.amazonaws.com", "FilterLogEvents", "{}".into(), true),
                4 => ("s3.amazonaws.com", "GetObject", format!(r#"{{"bucketName":"{}","key":"docs/{}.pdf"}}"#, id.bucket, rng.random_range(0..300)), true),
                5 => ("iam.amazonaws.com", "ListRoles", "{}".into(), true),
                6 => ("lambda.amazonaws.com", "ListFunctions20150331", "{}".into(), true),
                _ => ("ecs.amazonaws.com", "DescribeServices", "{}".into(), true),
            },
        };
        let bucket_extra;
        let extra = if name == "GetObject" {
            bucket_extra = format!(
                r#""additionalEventData":{{"bytesTransferredOut":{}}},"#,
                rng.random_range(1_000..200_000)
            );
            bucket_extra.as_str()
        } else {
            ""
        };
        let ua = if id.kind == Kind::Human {
            "console.amazonaws.com"
        } else {
            &id.ua
        };
        out.push(
            Ev {
                t,
                id,
                source,
                name,
                ip,
                ua,
                region,
                params,
                response: String::new(),
                error: None,
                read_only: ro,
                extra,
            },
            rng,
        );
    }
}

/// Writes an organisation trail under `dir`: `accounts` accounts, each with the
/// activity of `cfg` (its own seed and account id; attacks and look-alikes in each),
/// laid out as `cfg.layout` says.
pub fn write_org_trail(cfg: &ActivityConfig, accounts: usize, dir: &Path) -> io::Result<Written> {
    let mut all = Written::default();
    for k in 0..accounts {
        let account = format!("{:012}", 100_000_000_000u64 + k as u64 * 7_919);
        let cfg = ActivityConfig {
            seed: cfg.seed.wrapping_add(k as u64 * 1_000_003),
            ..cfg.clone()
        };
        let w = write_account(&cfg, &account, dir)?;
        all.events += w.events;
        all.files.extend(w.files);
        all.truth.extend(w.truth);
    }
    Ok(all)
}

/// Writes the activity under `dir` and returns what was written.
pub fn write_activity(cfg: &ActivityConfig, dir: &Path) -> io::Result<Written> {
    write_account(cfg, ACCOUNT, dir)
}

/// The value of a top-level string member in a rendered record.
fn member<'a>(rec: &'a str, key: &str) -> &'a str {
    let pat = format!("\"{key}\":\"");
    rec.find(&pat)
        .map(|i| {
            let rest = &rec[i + pat.len()..];
            &rest[..rest.find('"').unwrap_or(rest.len())]
        })
        .unwrap_or("")
}

/// `YYYYMMDDTHHMMZ` and `YYYY/MM/DD` of a time.
fn key_parts(ms: i64) -> (String, String) {
    let t = fmt_time(ms);
    (
        format!(
            "{}{}{}T{}{}Z",
            &t[0..4],
            &t[5..7],
            &t[8..10],
            &t[11..13],
            &t[14..16]
        ),
        t[..10].replace('-', "/"),
    )
}

fn records_body<'a>(events: impl Iterator<Item = &'a str>) -> String {
    let mut body = String::from("{\"Records\":[");
    for (i, e) in events.enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(e);
    }
    body.push_str("]}");
    body
}

/// Writes rendered CloudTrail records (epoch ms, record JSON) of one account in the
/// S3 layout CloudTrail delivers (gzip per region and five minutes, filed by
/// delivery time; under `AWSLogs/<org>/` for an organisation trail); returns the
/// files written. For scenarios whose events a test writes itself.
pub fn write_s3_events(
    events: &[(i64, String)],
    account: &str,
    org: Option<&str>,
    dir: &Path,
    seed: u64,
) -> io::Result<Vec<PathBuf>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut sorted = events.to_vec();
    sorted.sort_by_key(|e| e.0);
    write_hour(
        &sorted,
        0,
        account,
        &Layout::S3 {
            org: org.map(str::to_string),
        },
        dir,
        &mut rng,
    )
}

/// Formats epoch milliseconds as CloudTrail does (`2024-03-04T10:00:00Z`).
pub fn format_time(ms: i64) -> String {
    fmt_time(ms)
}

/// Writes one hour of events as `layout` says; returns the files written.
fn write_hour(
    events: &[(i64, String)],
    hs: i64,
    account: &str,
    layout: &Layout,
    dir: &Path,
    rng: &mut StdRng,
) -> io::Result<Vec<PathBuf>> {
    let swap = |e: &str| -> String {
        if account == ACCOUNT {
            e.to_string()
        } else {
            e.replace(ACCOUNT, account)
        }
    };
    match layout {
        Layout::Hourly => {
            let (hm, date) = key_parts(hs);
            let sub = dir
                .join(format!("AWSLogs/{account}/CloudTrail/eu-west-1"))
                .join(date);
            std::fs::create_dir_all(&sub)?;
            let path = sub.join(format!(
                "{account}_CloudTrail_eu-west-1_{hm}_{:016x}.json",
                rng.random::<u64>()
            ));
            let swapped: Vec<String> = events.iter().map(|(_, e)| swap(e)).collect();
            std::fs::write(&path, records_body(swapped.iter().map(String::as_str)))?;
            Ok(vec![path])
        }
        Layout::OneFile => unreachable!("written whole by write_account"),
        Layout::S3 { org } => {
            // (region, five-minute slot) → events, in time order within each.
            let mut groups: std::collections::BTreeMap<(String, i64), Vec<String>> =
                Default::default();
            for (t, e) in events {
                let region = member(e, "awsRegion").to_string();
                groups
                    .entry((region, t.div_euclid(300_000)))
                    .or_default()
                    .push(swap(e));
            }
            let mut out = Vec::new();
            for ((region, slot), recs) in groups {
                let delivered = (slot + 1) * 300_000 + rng.random_range(0..600_000);
                let (stamp, date) = key_parts(delivered);
                let mut base = dir.join("AWSLogs");
                if let Some(o) = org {
                    base = base.join(o);
                }
                let sub = base
                    .join(account)
                    .join("CloudTrail")
                    .join(&region)
                    .join(date);
                std::fs::create_dir_all(&sub)?;
                const ALNUM: &[u8] =
                    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
                let tag: String = (0..16)
                    .map(|_| ALNUM[rng.random_range(0..ALNUM.len())] as char)
                    .collect();
                let path = sub.join(format!(
                    "{account}_CloudTrail_{region}_{stamp}_{tag}.json.gz"
                ));
                let mut gz = flate2::write::GzEncoder::new(
                    std::fs::File::create(&path)?,
                    flate2::Compression::fast(),
                );
                io::Write::write_all(
                    &mut gz,
                    records_body(recs.iter().map(String::as_str)).as_bytes(),
                )?;
                gz.finish()?;
                out.push(path);
            }
            Ok(out)
        }
    }
}

/// Writes one account's activity under `dir`.
fn write_account(cfg: &ActivityConfig, account: &str, dir: &Path) -> io::Result<Written> {
    let mut rng = StdRng::seed_from_u64(cfg.seed);
    let ids = idents(cfg, &mut rng);
    let mut w = Written::default();
    let day = |d: i64| cfg.start_ms + d * DAY;
    let find = |k: Kind, n: usize| ids.iter().filter(|i| i.kind == k).nth(n).cloned();
    // Scenario clocks (day offsets) when the period is long enough.
    let long = cfg.days >= 18;
    let attacks = cfg.attacks && long;
    let looks = cfg.lookalikes && long;
    let server0 = find(Kind::Server, 0);
    let server1 = find(Kind::Server, 1);
    let server2 = find(Kind::Server, 2);
    let ci0 = find(Kind::Ci, 0);
    let ci1 = find(Kind::Ci, 1);
    let human0 = find(Kind::Human, 0);
    let human1 = find(Kind::Human, 1);
    let backup = find(Kind::Backup, 0);
    let mut truth = Vec::new();
    let mut t_push = |label: &str, id: &Option<Ident>, s: i64, e: i64, m: bool| {
        if let Some(id) = id {
            truth.push(Truth {
                label: label.into(),
                principal: id.principal.replace(ACCOUNT, account),
                start_ms: s,
                end_ms: e,
                malicious: m,
            });
        }
    };
    if attacks {
        t_push(
            "stolen server key: enumeration and S3 exfiltration from abroad",
            &server0,
            day(10) + 14 * HOUR,
            day(10) + 17 * HOUR,
            true,
        );
        t_push(
            "stolen CI key: GPU mining in an unused region",
            &ci1,
            day(12) + 3 * HOUR,
            day(12) + 5 * HOUR,
            true,
        );
        t_push(
            "leaked user key: SES enumeration and console pivot",
            &backup,
            day(13) + 20 * HOUR,
            day(13) + 22 * HOUR,
            true,
        );
        t_push(
            "LLM hijacking through a VPN",
            &server1,
            day(15) + 9 * HOUR,
            day(15) + 11 * HOUR,
            true,
        );
        t_push(
            "persistence: admin user and backdoor key",
            &server2,
            day(17) + 2 * HOUR,
            day(17) + 4 * HOUR,
            true,
        );
        t_push(
            "defense evasion: logging and GuardDuty disabled",
            &human1,
            day(18) + 23 * HOUR,
            day(19) + HOUR,
            true,
        );
    }
    if looks {
        t_push(
            "look-alike: person travelling to Japan",
            &human0,
            day(12),
            day(16),
            false,
        );
        t_push(
            "look-alike: planned deploy to a new region",
            &ci0,
            day(14) + 10 * HOUR,
            day(14) + 12 * HOUR,
            false,
        );
        t_push(
            "look-alike: backup catching up after an outage",
            &backup,
            day(9),
            day(12),
            false,
        );
    }
    w.truth = truth;

    let hours = i64::from(cfg.days) * 24;
    let mut layout_rng = StdRng::seed_from_u64(cfg.seed ^ 0x5eed_1a70);
    let mut whole: Vec<(i64, String)> = Vec::new();
    for h in 0..hours {
        let hs = cfg.start_ms + h * HOUR;
        let mut hour = Hour { events: Vec::new() };
        for id in &ids {
            let mut ip = None;
            let mut region = None;
            let mut scale = 1.0;
            if looks {
                if Some(&id.name) == human0.as_ref().map(|x| &x.name)
                    && hs >= day(12) + 14 * HOUR
                    && hs < day(16)
                {
                    // Flight DE → JP takes 14 hours; then works from Japan on a SoftBank line.
                    if hs < day(13) + 4 * HOUR {
                        continue;
                    }
                    ip = Some("126.10.20.30");
                }
                if Some(&id.name) == ci0.as_ref().map(|x| &x.name)
                    && hs >= day(14) + 10 * HOUR
                    && hs < day(14) + 12 * HOUR
                {
                    region = Some("eu-central-2");
                }
                if id.kind == Kind::Backup {
                    if hs >= day(9) && hs < day(11) {
                        continue; // outage: nothing runs
                    }
                    if hs >= day(11) && hs < day(12) {
                        scale = 3.0; // catch-up
                    }
                }
            }
            normal_hour(id, hs, cfg, &mut rng, &mut hour, ip, region, scale);
            if region.is_some() {
                // The planned deploy launches instances in the new region too.
                let t = hs + 30 * 60_000;
                let params = r#"{"instanceType":"t3.medium","instancesSet":{"items":[{"imageId":"ami-0abc","minCount":1,"maxCount":2}]}}"#.to_string();
                hour.push(
                    Ev {
                        t,
                        id,
                        source: "ec2.amazonaws.com",
                        name: "RunInstances",
                        ip: &id.ips[0],
                        ua: &id.ua,
                        region: "eu-central-2",
                        params,
                        response: String::new(),
                        error: None,
                        read_only: false,
                        extra: "",
                    },
                    &mut rng,
                );
            }
        }
        if attacks {
            inject(
                &mut hour,
                hs,
                &day,
                &mut rng,
                server0.as_ref(),
                ci1.as_ref(),
                backup.as_ref(),
                server1.as_ref(),
                server2.as_ref(),
                human1.as_ref(),
            );
        }
        if hour.events.is_empty() {
            continue;
        }
        hour.events.sort_by_key(|e| e.0);
        w.events += hour.events.len() as u64;
        if cfg.layout == Layout::OneFile {
            whole.append(&mut hour.events);
            continue;
        }
        // The S3 layout draws from its own generator, so it holds the same events as
        // `OneFile` (hourly files keep drawing their names from the activity's, as
        // they always have, so existing fixtures stay the same).
        let names = match cfg.layout {
            Layout::Hourly => &mut rng,
            _ => &mut layout_rng,
        };
        let files = write_hour(&hour.events, hs, account, &cfg.layout, dir, names)?;
        w.files.extend(files);
    }
    if cfg.layout == Layout::OneFile {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{account}_CloudTrail_all.json"));
        let swapped: Vec<String> = whole
            .iter()
            .map(|(_, e)| e.replace(ACCOUNT, account))
            .collect();
        std::fs::write(&path, records_body(swapped.iter().map(String::as_str)))?;
        w.files.push(path);
    }
    Ok(w)
}

#[allow(clippy::too_many_arguments)]
// One block per injected scenario, each gated on its identity and hour.
#[allow(clippy::collapsible_if)]
fn inject(
    hour: &mut Hour,
    hs: i64,
    day: &dyn Fn(i64) -> i64,
    rng: &mut StdRng,
    server0: Option<&Ident>,
    ci1: Option<&Ident>,
    user: Option<&Ident>,
    server1: Option<&Ident>,
    server2: Option<&Ident>,
    human1: Option<&Ident>,
) {
    let at = |d: i64, h: i64| day(d) + h * HOUR;
    let ev = |hour: &mut Hour,
              rng: &mut StdRng,
              id: &Ident,
              t: i64,
              source: &str,
              name: &str,
              ip: &str,
              ua: &str,
              region: &str,
              params: &str,
              response: &str,
              error: Option<&str>| {
        hour.push(
            Ev {
                t,
                id,
                source,
                name,
                ip,
                ua,
                region,
                params: params.to_string(),
                response: response.to_string(),
                error,
                read_only: name.starts_with("List")
                    || name.starts_with("Get")
                    || name.starts_with("Describe"),
                extra: "",
            },
            rng,
        );
    };
    const CLI_MAC: &str = "aws-cli/2.15.30 Python/3.11.8 Darwin/23.4.0 exe/x86_64 prompt/off command/s3api.list-buckets";
    // 1. Stolen server key, from a Brazilian ISP, desktop CLI: enumeration then exfiltration.
    if let Some(id) = server0 {
        if hs == at(10, 14) {
            let ip = "177.37.100.23";
            let apis = [
                ("iam", "ListUsers"),
                ("iam", "ListRoles"),
                ("iam", "ListPolicies"),
                ("iam", "GetAccountAuthorizationDetails"),
                ("ec2", "DescribeInstances"),
                ("ec2", "DescribeVpcs"),
                ("ec2", "DescribeSecurityGroups"),
                ("lambda", "ListFunctions20150331"),
                ("rds", "DescribeDBInstances"),
                ("s3", "ListBuckets"),
                ("kms", "ListKeys"),
                ("sns", "ListTopics"),
                ("sqs", "ListQueues"),
                ("dynamodb", "ListTables"),
                ("secretsmanager", "ListSecrets"),
                ("ssm", "DescribeParameters"),
                ("organizations", "DescribeOrganization"),
                ("iam", "ListAccessKeys"),
            ];
            for (k, (svc, name)) in apis.iter().enumerate() {
                let err = (k % 2 == 0).then_some("AccessDenied");
                ev(
                    hour,
                    rng,
                    id,
                    hs + 60_000 + k as i64 * 20_000,
                    &format!("{svc}.amazonaws.com"),
                    name,
                    ip,
                    CLI_MAC,
                    "eu-west-1",
                    "{}",
                    "",
                    err,
                );
            }
            for k in 0..400 {
                let p = format!(
                    r#"{{"bucketName":"{}","key":"objects/{k}.json"}}"#,
                    id.bucket
                );
                hour.push(
                    Ev {
                        t: hs + 20 * 60_000 + k * 4_000,
                        id,
                        source: "s3.amazonaws.com",
                        name: "GetObject",
                        ip,
                        ua: CLI_MAC,
                        region: "eu-west-1",
                        params: p,
                        response: String::new(),
                        error: None,
                        read_only: true,
                        extra: r#""additionalEventData":{"bytesTransferredOut":5242880},"#,
                    },
                    rng,
                );
            }
        }
    }
    // 2. Stolen CI key at night: GPU instances in an unused region, ECS, quota case.
    if let Some(id) = ci1 {
        if hs == at(12, 3) {
            let ip = "37.0.12.227";
            for (k, region) in ["ap-southeast-3", "sa-east-1"].iter().enumerate() {
                ev(
                    hour,
                    rng,
                    id,
                    hs + 600_000 + k as i64 * 60_000,
                    "ec2.amazonaws.com",
                    "RunInstances",
                    ip,
                    &id.ua,
                    region,
                    r#"{"instanceType":"p3.16xlarge","instancesSet":{"items":[{"imageId":"ami-0mine","minCount":1,"maxCount":20}]}}"#,
                    "",
                    None,
                );
            }
            ev(
                hour,
                rng,
                id,
                hs + 900_000,
                "ecs.amazonaws.com",
                "CreateCluster",
                ip,
                &id.ua,
                "ap-southeast-3",
                r#"{"clusterName":"x"}"#,
                "",
                None,
            );
            ev(
                hour,
                rng,
                id,
                hs + 960_000,
                "support.amazonaws.com",
                "CreateCase",
                ip,
                &id.ua,
                "us-east-1",
                r#"{"subject":"Limit increase","serviceCode":"service-limit-increase"}"#,
                "",
                None,
            );
        }
    }
    // 3. Leaked long-term user key: SES enumeration, federation token, console pivot.
    if let Some(id) = user {
        if hs == at(13, 20) {
            let ip = "177.37.200.9";
            let ua = "Boto3/1.28.0 Python/3.10.12 Windows/10 Botocore/1.31.0";
            for (k, n) in ["GetSendQuota", "ListIdentities", "GetAccountSendingEnabled"]
                .iter()
                .enumerate()
            {
                ev(
                    hour,
                    rng,
                    id,
                    hs + 60_000 + k as i64 * 30_000,
                    "ses.amazonaws.com",
                    n,
                    ip,
                    ua,
                    "us-east-1",
                    "{}",
                    "",
                    None,
                );
            }
            ev(
                hour,
                rng,
                id,
                hs + 300_000,
                "sts.amazonaws.com",
                "GetFederationToken",
                ip,
                ua,
                "us-east-1",
                r#"{"name":"admin","policy":"{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"}]}"}"#,
                "",
                None,
            );
            let fed = Ident {
                principal: format!("arn:aws:sts::{ACCOUNT}:federated-user/admin"),
                ..id.clone()
            };
            let fed_identity = format!(
                r#"{{"type":"FederatedUser","principalId":"{ACCOUNT}:admin","arn":"{}","accountId":"{ACCOUNT}","sessionContext":{{"sessionIssuer":{{"type":"IAMUser","arn":"{}"}}}}}}"#,
                fed.principal, id.principal
            );
            let mut s = String::new();
            let _ = write!(
                s,
                r#"{{"eventVersion":"1.09","userIdentity":{fed_identity},"eventTime":"{}","eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","awsRegion":"us-east-1","sourceIPAddress":"{ip}","userAgent":"Mozilla/5.0 (Windows NT 10.0; Win64; x64)","requestParameters":null,"responseElements":{{"ConsoleLogin":"Success"}},"additionalEventData":{{"MFAUsed":"No"}},"eventID":"{}","eventType":"AwsConsoleSignIn","recipientAccountId":"{ACCOUNT}"}}"#,
                fmt_time(hs + 420_000),
                uuid(rng)
            );
            hour.events.push((hs + 420_000, s));
        }
    }
    // 4. LLM hijacking through a VPN with an app role's key.
    if let Some(id) = server1 {
        if hs == at(15, 9) {
            let ip = "37.0.12.228";
            for (k, n) in [
                "ListFoundationModels",
                "GetFoundationModelAvailability",
                "PutUseCaseForModelAccess",
                "InvokeModel",
                "InvokeModel",
                "InvokeModel",
            ]
            .iter()
            .enumerate()
            {
                ev(
                    hour,
                    rng,
                    id,
                    hs + 60_000 + k as i64 * 45_000,
                    "bedrock.amazonaws.com",
                    n,
                    ip,
                    "python-requests/2.31.0",
                    "us-east-1",
                    r#"{"modelId":"anthropic.claude-3-sonnet"}"#,
                    "",
                    None,
                );
            }
        }
    }
    // 5. Persistence with a stolen app key: new admin user with a key, used from elsewhere.
    if let Some(id) = server2 {
        if hs == at(17, 2) {
            let ip = "177.37.150.77";
            let ua = CLI_MAC;
            ev(
                hour,
                rng,
                id,
                hs + 60_000,
                "iam.amazonaws.com",
                "CreateUser",
                ip,
                ua,
                "us-east-1",
                r#"{"userName":"support-admin"}"#,
                "",
                None,
            );
            ev(
                hour,
                rng,
                id,
                hs + 90_000,
                "iam.amazonaws.com",
                "AttachUserPolicy",
                ip,
                ua,
                "us-east-1",
                r#"{"userName":"support-admin","policyArn":"arn:aws:iam::aws:policy/AdministratorAccess"}"#,
                "",
                None,
            );
            ev(
                hour,
                rng,
                id,
                hs + 120_000,
                "iam.amazonaws.com",
                "CreateAccessKey",
                ip,
                ua,
                "us-east-1",
                r#"{"userName":"support-admin"}"#,
                r#"{"accessKey":{"userName":"support-admin","accessKeyId":"AKIA123456789012BDR1","status":"Active"}}"#,
                None,
            );
            let newid = Ident {
                principal: format!("arn:aws:iam::{ACCOUNT}:user/support-admin"),
                name: "support-admin".into(),
                // Key ids are unique across accounts: this one carries the account id.
                key: "AKIA123456789012BDR1".into(),
                ..id.clone()
            };
            let newid = Ident {
                kind: Kind::Backup,
                ..newid
            };
            ev(
                hour,
                rng,
                &newid,
                hs + 1_800_000,
                "sts.amazonaws.com",
                "GetCallerIdentity",
                "37.0.12.229",
                ua,
                "us-east-1",
                "{}",
                "",
                None,
            );
        }
    }
    // 6. Defense evasion by a person's stolen key at night from a VPN.
    if let Some(id) = human1 {
        if hs == at(18, 23) {
            let ip = "37.0.12.230";
            let ua = "aws-cli/2.15.30 Python/3.11.8 Linux/6.5.0-kali3-amd64 exe/x86_64";
            ev(
                hour,
                rng,
                id,
                hs + 60_000,
                "cloudtrail.amazonaws.com",
                "StopLogging",
                ip,
                ua,
                "eu-west-1",
                r#"{"name":"org-trail"}"#,
                "",
                None,
            );
            ev(
                hour,
                rng,
                id,
                hs + 120_000,
                "guardduty.amazonaws.com",
                "DeleteDetector",
                ip,
                ua,
                "eu-west-1",
                r#"{"detectorId":"abc"}"#,
                "",
                None,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_format_matches_known_dates() {
        assert_eq!(fmt_time(1_709_510_400_000), "2024-03-04T00:00:00Z");
        assert_eq!(fmt_time(0), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn writes_valid_json_records_with_truth() {
        let dir = std::env::temp_dir().join(format!("kt-gen-{}", std::process::id()));
        let cfg = ActivityConfig {
            days: 2,
            servers: 2,
            ci: 1,
            humans: 1,
            ..ActivityConfig::default()
        };
        let w = write_activity(&cfg, &dir).unwrap();
        assert!(w.events > 100);
        for f in &w.files {
            let v: serde_json::Value = serde_json::from_slice(&std::fs::read(f).unwrap()).unwrap();
            assert!(v["Records"].as_array().is_some_and(|r| !r.is_empty()));
        }
        assert!(w.truth.is_empty(), "2 days are too short for scenarios");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn s3_layout_holds_the_same_events_as_one_file_in_delivered_files() {
        let tmp = std::env::temp_dir().join(format!("kt-gen-s3-{}", std::process::id()));
        let cfg = ActivityConfig {
            days: 2,
            servers: 3,
            ci: 1,
            humans: 1,
            ..ActivityConfig::default()
        };
        let records = |files: &[PathBuf]| -> Vec<String> {
            let mut v: Vec<String> = files
                .iter()
                .flat_map(|f| {
                    let raw = std::fs::read(f).unwrap();
                    let text = if f.extension().is_some_and(|e| e == "gz") {
                        let mut s = String::new();
                        io::Read::read_to_string(
                            &mut flate2::read::GzDecoder::new(&raw[..]),
                            &mut s,
                        )
                        .unwrap();
                        s
                    } else {
                        String::from_utf8(raw).unwrap()
                    };
                    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
                    v["Records"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|r| r.to_string())
                        .collect::<Vec<_>>()
                })
                .collect();
            v.sort();
            v
        };
        let s3 = ActivityConfig {
            layout: Layout::S3 {
                org: Some("o-abc123".into()),
            },
            ..cfg.clone()
        };
        let a = write_org_trail(&s3, 2, &tmp.join("s3")).unwrap();
        let one = ActivityConfig {
            layout: Layout::OneFile,
            ..cfg
        };
        let b = write_org_trail(&one, 2, &tmp.join("one")).unwrap();
        assert_eq!(a.events, b.events);
        assert_eq!(b.files.len(), 2);
        assert!(a.files.len() > 100, "{} files", a.files.len());
        assert_eq!(records(&a.files), records(&b.files));
        for f in &a.files {
            let rel = f
                .strip_prefix(tmp.join("s3"))
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let parts: Vec<&str> = rel.split('/').collect();
            assert_eq!(&parts[..2], ["AWSLogs", "o-abc123"], "{rel}");
            assert_eq!(parts[3], "CloudTrail");
            let name = parts[parts.len() - 1];
            assert!(
                name.starts_with(&format!("{}_CloudTrail_{}_", parts[2], parts[4])),
                "{rel}"
            );
            assert!(name.ends_with(".json.gz"));
            // Every event of a file is from its region and before its delivery time.
            let stamp = &name[name.len() - 39..name.len() - 25];
            for r in records(std::slice::from_ref(f)) {
                assert_eq!(member(&r, "awsRegion"), parts[4]);
                let t = member(&r, "eventTime");
                let compact = format!(
                    "{}{}{}T{}{}Z",
                    &t[0..4],
                    &t[5..7],
                    &t[8..10],
                    &t[11..13],
                    &t[14..16]
                );
                assert!(compact.as_str() <= stamp, "{t} after delivery {stamp}");
            }
        }
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}

//! `keytrail intel`: the IP intelligence that `keytrail detect` uses without flags.
//!
//! `intel update` downloads the free databases (ip-location-db country MMDB and ASN
//! ranges, X4BNet VPN and datacenter lists, the Tor bulk exit list) into the user's
//! cache directory (`$XDG_CACHE_HOME/keytrail/ipintel`, else
//! `~/.cache/keytrail/ipintel`), or installs them from a folder with `--from DIR`
//! (air-gapped machines). Each file is checked before it replaces the cached copy:
//! it must be of the expected format (recognised by `keytrail_detect::ipintel`, with
//! at least one entry), not much smaller than the copy it replaces, and not older
//! than it. A failed download or check keeps the previous copy. `intel status` shows
//! what is cached and how old it is.
//!
//! The only network code of the detect side: the engine reads the files, it never
//! fetches them.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use keytrail_detect::ipintel::{IntelKind, IpIntel};

use crate::ExitStatus;

/// One database `intel update` keeps.
struct Source {
    /// Short name (`--source NAME=URL`).
    name: &'static str,
    /// File name in the cache (and what `--from` looks for).
    file: &'static str,
    /// Where it is downloaded from by default.
    url: &'static str,
    /// What the file must hold.
    kind: IntelKind,
    /// Licence and attribution, shown by `intel status`.
    licence: &'static str,
}

/// The free databases, in update order.
const SOURCES: &[Source] = &[
    Source {
        name: "country",
        file: "geo-whois-asn-country.mmdb",
        url: concat!(
            "https://cdn.jsdelivr.net/npm/@ip-location-db",
            "/geo-whois-asn-country-mmdb/geo-whois-asn-country.mmdb"
        ),
        kind: IntelKind::CountryMmdb,
        licence: "ip-location-db geo-whois-asn-country: CC0, NRO data CC BY 4.0 (nro.net)",
    },
    Source {
        name: "asn-ipv4",
        file: "asn-ipv4.csv",
        url: concat!(
            "https://cdn.jsdelivr.net/npm/@ip-location-db",
            "/asn/asn-ipv4.csv"
        ),
        kind: IntelKind::AsnRanges,
        licence: "ip-location-db asn: CC BY 4.0 (RouteViews, DB-IP db-ip.com, NRO)",
    },
    Source {
        name: "asn-ipv6",
        file: "asn-ipv6.csv",
        url: concat!(
            "https://cdn.jsdelivr.net/npm/@ip-location-db",
            "/asn/asn-ipv6.csv"
        ),
        kind: IntelKind::AsnRanges,
        licence: "ip-location-db asn: CC BY 4.0 (RouteViews, DB-IP db-ip.com, NRO)",
    },
    Source {
        name: "vpn-ipv4",
        file: "x4bnet-vpn-ipv4.txt",
        url: concat!(
            "https://raw.githubusercontent.com/X4BNet/lists_vpn/main",
            "/output/vpn/ipv4.txt"
        ),
        kind: IntelKind::VpnRanges,
        licence: "X4BNet/lists_vpn: MIT",
    },
    Source {
        name: "vpn-ipv6",
        file: "x4bnet-vpn-ipv6.txt",
        url: concat!(
            "https://raw.githubusercontent.com/X4BNet/lists_vpn/main",
            "/output/vpn/ipv6.txt"
        ),
        kind: IntelKind::VpnRanges,
        licence: "X4BNet/lists_vpn: MIT",
    },
    Source {
        name: "vpn-asn",
        file: "x4bnet-vpn-ASN.txt",
        url: concat!(
            "https://raw.githubusercontent.com/X4BNet/lists_vpn/main",
            "/input/vpn/ASN.txt"
        ),
        kind: IntelKind::VpnAsns,
        licence: "X4BNet/lists_vpn: MIT",
    },
    Source {
        name: "datacenter-ipv4",
        file: "x4bnet-datacenter-ipv4.txt",
        url: concat!(
            "https://raw.githubusercontent.com/X4BNet/lists_vpn/main",
            "/output/datacenter/ipv4.txt"
        ),
        kind: IntelKind::DatacenterRanges,
        licence: "X4BNet/lists_vpn: MIT",
    },
    Source {
        name: "datacenter-ipv6",
        file: "x4bnet-datacenter-ipv6.txt",
        url: concat!(
            "https://raw.githubusercontent.com/X4BNet/lists_vpn/main",
            "/output/datacenter/ipv6.txt"
        ),
        kind: IntelKind::DatacenterRanges,
        licence: "X4BNet/lists_vpn: MIT",
    },
    Source {
        name: "datacenter-asn",
        file: "x4bnet-datacenter-ASN.txt",
        url: concat!(
            "https://raw.githubusercontent.com/X4BNet/lists_vpn/main",
            "/input/datacenter/ASN.txt"
        ),
        kind: IntelKind::DatacenterAsns,
        licence: "X4BNet/lists_vpn: MIT",
    },
    Source {
        name: "tor-exits",
        file: "tor-exits.txt",
        url: "https://check.torproject.org/torbulkexitlist",
        kind: IntelKind::TorExits,
        licence: "The Tor Project bulk exit list (public data)",
    },
];

/// Largest file `intel update` downloads (the ASN ranges are about 25 MB).
const MAX_DOWNLOAD: u64 = 512 << 20;

/// A new copy smaller than this fraction of the cached one is refused (a truncated
/// or emptied list).
const MIN_SIZE_RATIO: f64 = 0.5;

/// Cached intel older than this is reported as stale by `keytrail detect`.
pub const STALE_DAYS: u64 = 30;

/// `keytrail intel ...`.
#[derive(Debug, Subcommand)]
pub enum IntelCommand {
    /// Download the free IP-intelligence databases into the cache that `keytrail
    /// detect` reads: countries (MMDB), ASN ranges, VPN and datacenter ranges and ASNs,
    /// the Tor exit list. Each file is checked (format, entries, size against the
    /// cached copy, date) before it replaces the cached copy; a failed download keeps
    /// the previous copy and exits 2.
    #[command(
        after_help = "Examples:\n  keytrail intel update\n  keytrail intel update --from /media/usb/ipintel    # air-gapped: files copied from a connected machine\n  keytrail intel update --mirror https://mirror.example/ipintel\n  keytrail intel status"
    )]
    Update(UpdateArgs),
    /// Show the cached IP intelligence: each file, what it holds and how old it is.
    Status(DirArgs),
}

/// Where the cache is.
#[derive(Debug, Args)]
pub struct DirArgs {
    /// Cache directory (default: `$XDG_CACHE_HOME/keytrail/ipintel`, else
    /// `~/.cache/keytrail/ipintel`). Example: `--dir /var/lib/keytrail/ipintel`
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// `keytrail intel update`.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    #[command(flatten)]
    pub dir: DirArgs,

    /// Install from a folder instead of downloading: each database is looked for by
    /// its file name anywhere under DIR (plain or `.gz`), for example a copy of
    /// another machine's cache or `node_modules/@ip-location-db` plus the X4BNet lists.
    /// Databases not found there keep their cached copy.
    /// Example: `--from /media/usb/ipintel`
    #[arg(long, value_name = "DIR", conflicts_with = "mirror")]
    pub from: Option<PathBuf>,

    /// Download every database from URL/<file name> instead (a mirror of the files).
    /// Example: `--mirror https://mirror.example/ipintel`
    #[arg(long, value_name = "URL")]
    pub mirror: Option<String>,

    /// Download one database from another URL, repeatable; NAME is one of country,
    /// asn-ipv4, asn-ipv6, vpn-ipv4, vpn-ipv6, vpn-asn, datacenter-ipv4,
    /// datacenter-ipv6, datacenter-asn, tor-exits.
    /// Example: `--source tor-exits=https://mirror.example/torbulkexitlist`
    #[arg(long, value_name = "NAME=URL")]
    pub source: Vec<String>,
}

/// The cache directory: `--dir`, else `$XDG_CACHE_HOME/keytrail/ipintel`, else
/// `$HOME/.cache/keytrail/ipintel`.
pub fn cache_dir(dir: Option<&Path>) -> Option<PathBuf> {
    if let Some(d) = dir {
        return Some(d.to_path_buf());
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty() && Path::new(v).is_absolute())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".cache"))
        })?;
    Some(base.join("keytrail").join("ipintel"))
}

/// Runs `keytrail intel ...`.
pub fn run(cmd: &IntelCommand) -> anyhow::Result<ExitStatus> {
    match cmd {
        IntelCommand::Update(a) => update(a),
        IntelCommand::Status(a) => status(a),
    }
}

fn dir_or_bail(dir: Option<&Path>) -> anyhow::Result<PathBuf> {
    cache_dir(dir).context("no cache directory: set HOME or XDG_CACHE_HOME, or pass --dir")
}

/// The URL of every source after `--mirror` and `--source`.
fn urls(a: &UpdateArgs) -> anyhow::Result<Vec<String>> {
    let mut urls: Vec<String> = SOURCES
        .iter()
        .map(|s| match &a.mirror {
            Some(m) => format!("{}/{}", m.trim_end_matches('/'), s.file),
            None => s.url.to_string(),
        })
        .collect();
    for o in &a.source {
        let Some((name, url)) = o.split_once('=') else {
            bail!("--source `{o}` is not NAME=URL");
        };
        let Some(i) = SOURCES.iter().position(|s| s.name == name) else {
            let names: Vec<&str> = SOURCES.iter().map(|s| s.name).collect();
            bail!(
                "--source: unknown database `{name}` (one of {})",
                names.join(", ")
            );
        };
        urls[i] = url.to_string();
    }
    Ok(urls)
}

/// How one database fared.
enum Outcome {
    Installed { bytes: u64, date: SystemTime },
    NotFound,
    Failed(String),
}

fn update(a: &UpdateArgs) -> anyhow::Result<ExitStatus> {
    let dir = dir_or_bail(a.dir.dir.as_deref())?;
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create the cache directory `{}`", dir.display()))?;
    if let Some(from) = &a.from
        && !from.is_dir()
    {
        bail!("--from `{}` is not a directory", from.display());
    }
    let urls = urls(a)?;
    let agent = (a.from.is_none()).then(agent);
    let mut failed = 0;
    let mut installed = 0;
    println!("IP intelligence in {}", dir.display());
    for (s, url) in SOURCES.iter().zip(&urls) {
        let outcome = match &a.from {
            Some(from) => match find_file(from, s.file) {
                Some(p) => install_from_file(&dir, s, &p),
                None => Outcome::NotFound,
            },
            None => download(agent.as_ref().expect("agent"), &dir, s, url),
        };
        let kept = || match cached(&dir, s) {
            Some((_, date)) => format!("kept the copy of {}", day(date)),
            None => "none cached".to_string(),
        };
        match outcome {
            Outcome::Installed { bytes, date } => {
                installed += 1;
                println!(
                    "  {:<16} {:<28} {:>10}  data of {}",
                    s.name,
                    s.file,
                    human_bytes(bytes),
                    day(date)
                );
            }
            Outcome::NotFound => println!(
                "  {:<16} {:<28} not in --from folder: {}",
                s.name,
                s.file,
                kept()
            ),
            Outcome::Failed(why) => {
                failed += 1;
                println!("  {:<16} {:<28} FAILED: {why}; {}", s.name, s.file, kept());
            }
        }
    }
    if failed > 0 {
        eprintln!(
            "error: {failed} of {} databases could not be updated; the previous copies were kept",
            SOURCES.len()
        );
        return Ok(ExitStatus::Error);
    }
    if installed == 0 {
        eprintln!("error: no database found to install");
        return Ok(ExitStatus::Error);
    }
    Ok(ExitStatus::Clean)
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(120)))
        .timeout_per_read(Some(Duration::from_secs(120)))
        .user_agent(concat!("keytrail/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// The partial file a database is written to before it is checked (named like the
/// final file, so the format check sees the same name).
fn partial_path(dir: &Path, file: &str) -> PathBuf {
    dir.join(format!(".partial-{file}"))
}

fn download(agent: &ureq::Agent, dir: &Path, s: &Source, url: &str) -> Outcome {
    let partial = partial_path(dir, s.file);
    let result = (|| -> Result<Option<SystemTime>, String> {
        let resp = agent.get(url).call().map_err(|e| format!("{url}: {e}"))?;
        let status = resp.status();
        if status.as_u16() != 200 {
            return Err(format!("{url}: HTTP {status}"));
        }
        let last_modified = resp
            .headers()
            .get("last-modified")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_http_date);
        let mut body = resp.into_body().into_reader().take(MAX_DOWNLOAD + 1);
        let mut out = std::fs::File::create(&partial)
            .map_err(|e| format!("cannot write `{}`: {e}", partial.display()))?;
        let n = std::io::copy(&mut body, &mut out).map_err(|e| format!("{url}: {e}"))?;
        if n > MAX_DOWNLOAD {
            return Err(format!("{url}: larger than {}", human_bytes(MAX_DOWNLOAD)));
        }
        out.flush().map_err(|e| e.to_string())?;
        Ok(last_modified)
    })();
    match result {
        Ok(date) => check_and_install(dir, s, &partial, date),
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Outcome::Failed(e)
        }
    }
}

fn install_from_file(dir: &Path, s: &Source, src: &Path) -> Outcome {
    let gz = src.extension().is_some_and(|e| e == "gz");
    let name = if gz {
        format!("{}.gz", s.file)
    } else {
        s.file.to_string()
    };
    let partial = partial_path(dir, &name);
    if let Err(e) = std::fs::copy(src, &partial) {
        return Outcome::Failed(format!("cannot copy `{}`: {e}", src.display()));
    }
    let date = std::fs::metadata(src).and_then(|m| m.modified()).ok();
    check_and_install(dir, s, &partial, date)
}

/// The cached copy of a database (plain or gzipped) and its data date.
fn cached(dir: &Path, s: &Source) -> Option<(PathBuf, SystemTime)> {
    [dir.join(s.file), dir.join(format!("{}.gz", s.file))]
        .into_iter()
        .find(|p| p.is_file())
        .map(|p| {
            let date = std::fs::metadata(&p)
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            (p, date)
        })
}

/// Checks a downloaded or copied file and moves it over the cached copy; on any
/// problem the partial file is removed and the cached copy stays.
fn check_and_install(dir: &Path, s: &Source, partial: &Path, date: Option<SystemTime>) -> Outcome {
    let checked = (|| -> Result<(u64, SystemTime), String> {
        let bytes = std::fs::metadata(partial).map_err(|e| e.to_string())?.len();
        if bytes == 0 {
            return Err("empty file".into());
        }
        let mut probe = IpIntel::empty();
        probe.add_file(partial).map_err(|d| d.message)?;
        let loaded = &probe.files()[0];
        if loaded.kind != s.kind {
            return Err(format!(
                "expected {} data ({:?}), got {:?}",
                s.kind.describe(),
                s.kind,
                loaded.kind
            ));
        }
        let is_mmdb = matches!(s.kind, IntelKind::CountryMmdb | IntelKind::AsnMmdb);
        if !is_mmdb && loaded.entries == 0 {
            return Err("no entries".into());
        }
        // An MMDB carries its build date; otherwise the server's or the file's date.
        let date = if is_mmdb { loaded.date } else { date }.unwrap_or_else(SystemTime::now);
        if let Some((old, old_date)) = cached(dir, s) {
            let old_bytes = std::fs::metadata(&old).map(|m| m.len()).unwrap_or(0);
            let same_encoding = old.extension() == partial.extension();
            if same_encoding && (bytes as f64) < old_bytes as f64 * MIN_SIZE_RATIO {
                return Err(format!(
                    "{} is less than half the cached copy ({}): truncated or emptied at the source?",
                    human_bytes(bytes),
                    human_bytes(old_bytes)
                ));
            }
            if date + Duration::from_secs(3600) < old_date {
                return Err(format!(
                    "its data ({}) is older than the cached copy ({})",
                    day(date),
                    day(old_date)
                ));
            }
        }
        Ok((bytes, date))
    })();
    match checked {
        Ok((bytes, date)) => {
            let name = partial
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix(".partial-"))
                .expect("partial name")
                .to_string();
            let dest = dir.join(&name);
            let placed = std::fs::File::options()
                .write(true)
                .open(partial)
                .and_then(|f| f.set_modified(date))
                .and_then(|()| std::fs::rename(partial, &dest));
            if let Err(e) = placed {
                let _ = std::fs::remove_file(partial);
                return Outcome::Failed(format!("cannot install `{}`: {e}", dest.display()));
            }
            // One encoding per database: a `.gz` copy replaces a plain one and back.
            let other = if name.ends_with(".gz") {
                dir.join(s.file)
            } else {
                dir.join(format!("{}.gz", s.file))
            };
            let _ = std::fs::remove_file(other);
            Outcome::Installed { bytes, date }
        }
        Err(why) => {
            let _ = std::fs::remove_file(partial);
            Outcome::Failed(why)
        }
    }
}

/// The first file named `file` or `file.gz` under `dir` (recursively, sorted).
fn find_file(dir: &Path, file: &str) -> Option<PathBuf> {
    fn walk(d: &Path, file: &str, depth: usize) -> Option<PathBuf> {
        let mut entries: Vec<_> = std::fs::read_dir(d).ok()?.filter_map(Result::ok).collect();
        entries.sort_by_key(|e| e.file_name());
        let gz = format!("{file}.gz");
        for e in &entries {
            let n = e.file_name();
            if (n == file || n.to_str() == Some(gz.as_str())) && e.path().is_file() {
                return Some(e.path());
            }
        }
        if depth >= 8 {
            return None;
        }
        entries
            .iter()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .find_map(|e| walk(&e.path(), file, depth + 1))
    }
    walk(dir, file, 0)
}

fn status(a: &DirArgs) -> anyhow::Result<ExitStatus> {
    let dir = dir_or_bail(a.dir.as_deref())?;
    println!("IP intelligence in {}", dir.display());
    let mut missing = 0;
    for s in SOURCES {
        match cached(&dir, s) {
            Some((p, date)) => {
                let bytes = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
                println!(
                    "  {:<16} {:<31} {:>10}  data of {} ({})  {}",
                    s.name,
                    p.file_name().and_then(|n| n.to_str()).unwrap_or(s.file),
                    human_bytes(bytes),
                    day(date),
                    age(date),
                    s.licence
                );
            }
            None => {
                missing += 1;
                println!("  {:<16} {:<31} not cached", s.name, s.file);
            }
        }
    }
    if missing > 0 {
        println!("run `keytrail intel update` to fetch what is missing");
    }
    Ok(ExitStatus::Clean)
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` (the IMF-fixdate of HTTP) as a time.
fn parse_http_date(s: &str) -> Option<SystemTime> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let [_, d, mon, y, hms, "GMT"] = parts.as_slice() else {
        return None;
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let m = MONTHS.iter().position(|x| x == mon)? + 1;
    let iso = format!("{y}-{m:02}-{:0>2}T{hms}Z", d);
    let ms = keytrail_detect::time::parse_rfc3339_ms(&iso)?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).ok()?))
}

/// `2026-06-17`.
pub fn day(t: SystemTime) -> String {
    let ms = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    keytrail_detect::time::format_rfc3339_ms(ms)[..10].to_string()
}

/// Whole days since `t`.
pub fn age_days(t: SystemTime) -> u64 {
    SystemTime::now()
        .duration_since(t)
        .map(|d| d.as_secs() / 86_400)
        .unwrap_or(0)
}

/// `today`, `1 day old`, `172 days old`.
pub fn age(t: SystemTime) -> String {
    match age_days(t) {
        0 => "today".into(),
        1 => "1 day old".into(),
        n => format!("{n} days old"),
    }
}

fn human_bytes(n: u64) -> String {
    if n >= 1 << 20 {
        format!("{:.1} MiB", n as f64 / 1_048_576.0)
    } else if n >= 1 << 10 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{n} B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_and_sources() {
        let t = parse_http_date("Wed, 17 Jun 2026 19:00:00 GMT").unwrap();
        assert_eq!(day(t), "2026-06-17");
        assert!(parse_http_date("yesterday").is_none());
        let names: std::collections::HashSet<&str> = SOURCES.iter().map(|s| s.name).collect();
        assert_eq!(names.len(), SOURCES.len());
        for s in SOURCES {
            assert!(s.url.starts_with("https://"), "{}", s.name);
            assert!(!s.licence.is_empty(), "{}", s.name);
        }
    }
}

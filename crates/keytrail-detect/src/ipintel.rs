//! Offline IP intelligence: country (MMDB files and IP-range CSVs), ASN and
//! organisation (range CSV), and network class (datacenter, VPN, Tor, residential).
//!
//! Files are recognised by their content ([`IpIntel::add_path`]), whatever their
//! names: MMDB databases (country records of the flat `{"country_code": "US"}` shape
//! used by the ip-location-db packages or MaxMind's nested `country.iso_code`; ASN
//! records with `autonomous_system_number`), `start,end,CC` and `start,end,ASN,org`
//! range CSVs, and one-address-per-line lists (Tor exits, VPN and datacenter ranges,
//! told apart by their names). Range files are loaded into sorted tables searched
//! with binary search; MMDB files are read with the `maxminddb` crate. A file that is
//! none of these is reported, not ignored. Nothing is fetched from the network here:
//! `keytrail intel update` (the CLI) fills the cache directory this reads.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use keytrail_types::Diagnostic;
use serde::{Deserialize, Serialize};

/// What kind of network an address belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkClass {
    /// A hosting provider or cloud (datacenter ranges or ASN lists).
    Datacenter,
    /// A commercial VPN provider.
    Vpn,
    /// A Tor exit node (from a user-supplied exit list).
    Tor,
    /// An ISP network that is neither datacenter nor VPN: homes, offices, mobile.
    Residential,
    /// Private, reserved or unknown addresses.
    Unknown,
}

impl NetworkClass {
    /// Snake-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Datacenter => "datacenter",
            Self::Vpn => "vpn",
            Self::Tor => "tor",
            Self::Residential => "residential",
            Self::Unknown => "unknown",
        }
    }
}

/// Everything known about one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpInfo {
    /// ISO country code.
    pub country: Option<Box<str>>,
    /// Autonomous system number.
    pub asn: Option<u32>,
    /// AS organisation.
    pub org: Option<Arc<str>>,
    /// Network class.
    pub class: NetworkClass,
}

#[derive(Default)]
struct Ranges<K: Ord + Copy, V> {
    rows: Vec<(K, K, V)>,
}

impl<K: Ord + Copy, V> Ranges<K, V> {
    fn finish(&mut self) {
        self.rows.sort_by_key(|a| a.0);
    }
    fn find(&self, k: K) -> Option<&V> {
        let i = self.rows.partition_point(|r| r.0 <= k);
        let r = self.rows.get(i.checked_sub(1)?)?;
        (k <= r.1).then_some(&r.2)
    }
}

#[derive(Default)]
struct RangeTable<V> {
    v4: Ranges<u32, V>,
    v6: Ranges<u128, V>,
}

impl<V> RangeTable<V> {
    fn insert(&mut self, start: IpAddr, end: IpAddr, v: V) -> bool {
        match (start, end) {
            (IpAddr::V4(a), IpAddr::V4(b)) => self.v4.rows.push((u32::from(a), u32::from(b), v)),
            (IpAddr::V6(a), IpAddr::V6(b)) => self.v6.rows.push((u128::from(a), u128::from(b), v)),
            _ => return false,
        }
        true
    }
    fn insert_cidr(&mut self, cidr: &str, v: V) -> bool {
        match parse_cidr(cidr) {
            Some((a, b)) => self.insert(a, b, v),
            None => false,
        }
    }
    fn finish(&mut self) {
        self.v4.finish();
        self.v6.finish();
    }
    fn find(&self, ip: IpAddr) -> Option<&V> {
        match ip {
            IpAddr::V4(a) => self.v4.find(u32::from(a)),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => self.v4.find(u32::from(v4)),
                None => self.v6.find(u128::from(a)),
            },
        }
    }
    fn len(&self) -> usize {
        self.v4.rows.len() + self.v6.rows.len()
    }
}

/// Parses `a.b.c.d/n` or `x::/n` (or a bare address) into its first and last address.
pub fn parse_cidr(s: &str) -> Option<(IpAddr, IpAddr)> {
    let s = s.trim();
    let (addr, bits) = match s.split_once('/') {
        Some((a, b)) => (a, Some(b.trim().parse::<u32>().ok()?)),
        None => (s, None),
    };
    match addr.trim().parse::<IpAddr>().ok()? {
        IpAddr::V4(a) => {
            let bits = bits.unwrap_or(32);
            if bits > 32 {
                return None;
            }
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            let start = u32::from(a) & mask;
            Some((IpAddr::V4(start.into()), IpAddr::V4((start | !mask).into())))
        }
        IpAddr::V6(a) => {
            let bits = bits.unwrap_or(128);
            if bits > 128 {
                return None;
            }
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            let start = u128::from(a) & mask;
            Some((IpAddr::V6(start.into()), IpAddr::V6((start | !mask).into())))
        }
    }
}

/// An MMDB record: the flat ip-location-db shape (`{"country_code": "US"}`),
/// MaxMind's nested country (`country.iso_code`) and the ASN fields of GeoLite2-ASN
/// style databases; any of them may be absent.
#[derive(Deserialize)]
struct MmdbRecord<'a> {
    #[serde(borrow, default)]
    country_code: Option<&'a str>,
    #[serde(borrow, default)]
    country: Option<NestedCountry<'a>>,
    #[serde(default)]
    autonomous_system_number: Option<u32>,
    #[serde(borrow, default)]
    autonomous_system_organization: Option<&'a str>,
}

#[derive(Deserialize)]
struct NestedCountry<'a> {
    #[serde(borrow, default)]
    iso_code: Option<&'a str>,
}

/// What one IP-intelligence file holds, recognised from its content (and, for plain
/// address lists, whose content says nothing of their meaning, from its name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntelKind {
    /// An MMDB database of countries (ip-location-db or MaxMind country shape).
    CountryMmdb,
    /// An MMDB database of ASNs (`autonomous_system_number`, GeoLite2-ASN shape).
    AsnMmdb,
    /// `start,end,CC` ranges (ip-location-db country CSV, Tor's `geoip` files).
    CountryRanges,
    /// `start,end,ASN[,organisation]` ranges (ip-location-db `asn-ipv4.csv`).
    AsnRanges,
    /// Addresses or CIDRs of VPN providers, one per line.
    VpnRanges,
    /// Addresses or CIDRs of hosting providers, one per line.
    DatacenterRanges,
    /// Tor exit addresses: one per line (the bulk exit list) or `ExitAddress` lines.
    TorExits,
    /// ASNs of VPN providers (`AS123` or `123` per line).
    VpnAsns,
    /// ASNs of hosting providers.
    DatacenterAsns,
}

impl IntelKind {
    /// What the kind provides, for summaries.
    pub fn describe(self) -> &'static str {
        match self {
            Self::CountryMmdb | Self::CountryRanges => "country",
            Self::AsnMmdb | Self::AsnRanges => "ASN",
            Self::VpnRanges | Self::VpnAsns => "VPN",
            Self::DatacenterRanges | Self::DatacenterAsns => "datacenter",
            Self::TorExits => "Tor exits",
        }
    }
}

/// One file that was loaded.
#[derive(Debug, Clone)]
pub struct LoadedFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// What it holds.
    pub kind: IntelKind,
    /// Ranges, addresses or ASNs read (MMDB: 0, the database is searched in place).
    pub entries: usize,
    /// When its data was made: an MMDB's build time, else the file's modification time
    /// (`keytrail intel update` sets it to the server's date of the download).
    pub date: Option<SystemTime>,
}

/// Which detectors' inputs the loaded intelligence provides.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Country of an address (new country, impossible travel).
    pub country: bool,
    /// ASN and organisation (new ASN, residential versus hosting networks).
    pub asn: bool,
    /// VPN providers.
    pub vpn: bool,
    /// Hosting providers beyond the built-in cloud ASNs.
    pub datacenter: bool,
    /// Tor exit nodes.
    pub tor: bool,
}

/// The loaded IP intelligence. Cheap to share behind an `Arc`.
#[derive(Default)]
pub struct IpIntel {
    country_mmdb: Vec<maxminddb::Reader<Vec<u8>>>,
    asn_mmdb: Vec<maxminddb::Reader<Vec<u8>>>,
    countries: RangeTable<[u8; 2]>,
    asn: RangeTable<(u32, u32)>,
    orgs: Vec<Arc<str>>,
    datacenter: RangeTable<()>,
    vpn: RangeTable<()>,
    tor: RangeTable<()>,
    datacenter_asns: HashSet<u32>,
    vpn_asns: HashSet<u32>,
    files: Vec<LoadedFile>,
}

/// Well-known cloud and hosting ASNs, always treated as datacenter: AWS, Google,
/// Microsoft, DigitalOcean, OVH, Hetzner, Linode/Akamai, Oracle, Alibaba, Vultr.
const CLOUD_ASNS: &[u32] = &[
    16509, 14618, 8987, 15169, 396982, 8075, 14061, 16276, 24940, 63949, 31898, 45102, 20473,
];

/// Deepest directory nesting followed below an `--ipintel` directory.
const MAX_DEPTH: usize = 8;

fn open_maybe_gz(path: &Path) -> std::io::Result<Box<dyn BufRead>> {
    let mut f = std::fs::File::open(path)?;
    let mut magic = [0u8; 2];
    let n = f.read(&mut magic)?;
    let head = std::io::Cursor::new(magic[..n].to_vec());
    let chained = head.chain(f);
    if n == 2 && magic == [0x1f, 0x8b] {
        Ok(Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(
            chained,
        ))))
    } else {
        Ok(Box::new(BufReader::new(chained)))
    }
}

/// An address, or an integer (IPv4 `u32` or IPv6 `u128`, as in Tor's `geoip` files and
/// ip-location-db's `-num.csv` files).
fn parse_addr_or_int(s: &str, v6: bool) -> Option<IpAddr> {
    let s = s.trim().trim_matches('"');
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    if v6 {
        s.parse::<u128>().ok().map(|n| IpAddr::V6(n.into()))
    } else {
        s.parse::<u32>().ok().map(|n| IpAddr::V4(n.into()))
    }
}

/// Documentation and packaging files that sit beside databases (licences, READMEs,
/// npm manifests, hidden files such as `keytrail intel update`'s partial downloads):
/// read past without a notice.
fn is_documentation(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    name.starts_with('.')
        || [
            "README",
            "LICENSE",
            "LICENCE",
            "NOTICE",
            "COPYING",
            "MODIFICATIONS",
        ]
        .iter()
        .any(|d| upper.starts_with(d) || upper.ends_with(&format!("{d}.TXT")) || upper.ends_with(d))
        || [".md", ".html", ".pdf", ".sha256", ".asc", ".sig"]
            .iter()
            .any(|e| name.to_ascii_lowercase().ends_with(e))
        || matches!(name, "package.json" | "package-lock.json")
}

/// Lower-case alphanumeric words of a file name (`x4bnet-vpn-ipv4.txt` → x4bnet, vpn, ipv4, txt).
fn name_words(name: &str) -> Vec<String> {
    name.to_ascii_lowercase()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// The meaning a file name gives to a plain list: Tor exits, VPN or datacenter.
fn list_meaning(name: &str) -> Option<NetworkClass> {
    let words = name_words(name);
    let has = |f: &dyn Fn(&str) -> bool| words.iter().any(|w| f(w));
    if has(&|w| w == "tor" || w.starts_with("torbulkexit") || w == "exits")
        || (has(&|w| w == "exit") && has(&|w| w == "addresses"))
    {
        Some(NetworkClass::Tor)
    } else if has(&|w| w.contains("vpn")) {
        Some(NetworkClass::Vpn)
    } else if has(&|w| {
        w.contains("datacenter") || w.contains("datacentre") || w.contains("hosting")
    }) {
        Some(NetworkClass::Datacenter)
    } else {
        None
    }
}

/// The shape of a text file's first data line.
enum LineShape {
    /// `start,end,CC…`
    CountryRange,
    /// `start,end,ASN…`
    AsnRange,
    /// An address or CIDR.
    Address,
    /// `ExitAddress 1.2.3.4 …` (Tor's exit-addresses format).
    ExitAddress,
    /// `AS123` or `123`.
    Asn,
}

fn parse_asn(t: &str) -> Option<u32> {
    let t = t.trim();
    let t = t
        .strip_prefix("AS")
        .or_else(|| t.strip_prefix("as"))
        .unwrap_or(t);
    t.parse().ok()
}

fn line_shape(line: &str) -> Option<LineShape> {
    let t = line.split('#').next().unwrap_or("").trim();
    if t.is_empty() {
        return None;
    }
    if let Some(rest) = t.strip_prefix("ExitAddress ") {
        return rest
            .split_whitespace()
            .next()
            .and_then(|a| a.parse::<IpAddr>().ok())
            .map(|_| LineShape::ExitAddress);
    }
    let cols: Vec<&str> = t.split(',').map(|c| c.trim().trim_matches('"')).collect();
    if cols.len() >= 3 {
        let v6 = cols[0].contains(':') || cols[0].len() > 10;
        parse_addr_or_int(cols[0], v6)?;
        parse_addr_or_int(cols[1], v6)?;
        let v = cols[2];
        if v.len() == 2 && v.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Some(LineShape::CountryRange);
        }
        return parse_asn(v).map(|_| LineShape::AsnRange);
    }
    if cols.len() == 1 {
        if parse_cidr(t).is_some() && (t.contains('.') || t.contains(':')) {
            return Some(LineShape::Address);
        }
        return parse_asn(t).map(|_| LineShape::Asn);
    }
    None
}

/// Recognises a text file from its first data lines (a header line, comments and
/// Tor's `ExitNode`/`Published` lines are passed over).
fn sniff_text(p: &Path, name: &str) -> Result<IntelKind, String> {
    let r = open_maybe_gz(p).map_err(|e| e.to_string())?;
    let mut shape = None;
    for line in r.lines().take(64) {
        let Ok(line) = line else {
            return Err("not a text file".into());
        };
        if let Some(s) = line_shape(&line) {
            shape = Some(s);
            break;
        }
    }
    let meaning = list_meaning(name);
    let unnamed = |what: &str| {
        format!(
            "a list of {what}, but its name does not say what they are: put `tor`, `vpn` or `datacenter` in it (for example `vpn-ipv4.txt`)"
        )
    };
    match shape {
        Some(LineShape::CountryRange) => Ok(IntelKind::CountryRanges),
        Some(LineShape::AsnRange) => Ok(IntelKind::AsnRanges),
        Some(LineShape::ExitAddress) => Ok(IntelKind::TorExits),
        Some(LineShape::Address) => match meaning {
            Some(NetworkClass::Tor) => Ok(IntelKind::TorExits),
            Some(NetworkClass::Vpn) => Ok(IntelKind::VpnRanges),
            Some(NetworkClass::Datacenter) => Ok(IntelKind::DatacenterRanges),
            _ => Err(unnamed("addresses")),
        },
        Some(LineShape::Asn) => match meaning {
            Some(NetworkClass::Vpn) => Ok(IntelKind::VpnAsns),
            Some(NetworkClass::Datacenter) => Ok(IntelKind::DatacenterAsns),
            _ => Err(unnamed("ASNs")),
        },
        None => Err(
            "not a recognised format (MMDB, `start,end,country` or `start,end,asn` CSV ranges, or one address, CIDR or ASN per line)"
                .into(),
        ),
    }
}

/// Files of one directory that repeat another file's data (`asn-ipv4-num.csv` beside
/// `asn-ipv4.csv`, `X-ipv4.mmdb` beside `X.mmdb`): passed over, the data is loaded once.
fn repeats_a_sibling(name: &str, siblings: &HashSet<String>) -> bool {
    let lower = name.to_ascii_lowercase();
    if let Some(stem) = lower.strip_suffix("-num.csv") {
        return siblings.contains(&format!("{stem}.csv"));
    }
    for split in ["-ipv4.mmdb", "-ipv6.mmdb"] {
        if let Some(stem) = lower.strip_suffix(split) {
            return siblings.contains(&format!("{stem}.mmdb"));
        }
    }
    false
}

impl IpIntel {
    /// An empty database (every lookup is unknown).
    pub fn empty() -> Self {
        let mut s = Self::default();
        s.datacenter_asns.extend(CLOUD_ASNS);
        s
    }

    /// Loads every recognised file under a directory (recursively): see [`IpIntel::add_path`].
    pub fn load_dir(dir: &Path) -> (Self, Vec<Diagnostic>) {
        let mut s = Self::empty();
        let diags = s.add_path(dir);
        s.finish();
        (s, diags)
    }

    /// Adds a file, or every file under a directory (recursively, sorted by path).
    /// Files are recognised by content: MMDB country or ASN databases, `start,end,CC`
    /// and `start,end,ASN,org` range CSVs (plain or gzip, addresses or integers), and
    /// lists with one address, CIDR or ASN per line, which need `tor`, `vpn` or
    /// `datacenter` in their name. Licences and READMEs are passed over; any other
    /// file gives an `ipintel_unrecognised` notice naming it. Call
    /// [`IpIntel::finish`] after the last path.
    pub fn add_path(&mut self, path: &Path) -> Vec<Diagnostic> {
        let mut diags = Vec::new();
        if path.is_dir() {
            self.add_dir(path, 0, &mut diags);
        } else if let Err(d) = self.add_file(path) {
            diags.push(d);
        }
        diags
    }

    fn add_dir(&mut self, dir: &Path, depth: usize, diags: &mut Vec<Diagnostic>) {
        let mut entries: Vec<_> = match std::fs::read_dir(dir) {
            Ok(rd) => rd.filter_map(Result::ok).collect(),
            Err(e) => {
                diags.push(Diagnostic::error(
                    "unreadable",
                    dir.display().to_string(),
                    e.to_string(),
                ));
                return;
            }
        };
        entries.sort_by_key(|e| e.file_name());
        let names: HashSet<String> = entries
            .iter()
            .map(|e| e.file_name().to_string_lossy().to_ascii_lowercase())
            .collect();
        for e in entries {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                if depth < MAX_DEPTH && !name.starts_with('.') {
                    self.add_dir(&p, depth + 1, diags);
                }
            } else if !is_documentation(&name)
                && !repeats_a_sibling(&name, &names)
                && let Err(d) = self.add_file(&p)
            {
                diags.push(d);
            }
        }
    }

    /// Adds one file, recognised by its content (see [`IpIntel::add_path`]). An
    /// unrecognised file is an `ipintel_unrecognised` notice, an unreadable or
    /// corrupt one an `ipintel_unreadable` error. Call [`IpIntel::finish`] after the last.
    pub fn add_file(&mut self, p: &Path) -> Result<(), Diagnostic> {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let subject = p.display().to_string();
        let err = |e: String| Diagnostic::error("ipintel_unreadable", subject.clone(), e);
        let modified = std::fs::metadata(p).and_then(|m| m.modified()).ok();
        let (kind, entries, date) = if name.to_ascii_lowercase().ends_with(".mmdb") {
            let r = maxminddb::Reader::open_readfile(p).map_err(|e| err(e.to_string()))?;
            let kind = mmdb_kind(&r);
            let built = SystemTime::UNIX_EPOCH + Duration::from_secs(r.metadata.build_epoch);
            match kind {
                IntelKind::AsnMmdb => self.asn_mmdb.push(r),
                _ => self.country_mmdb.push(r),
            }
            (kind, 0, Some(built))
        } else {
            let kind = sniff_text(p, &name).map_err(|why| {
                Diagnostic::skip(
                    "ipintel_unrecognised",
                    subject.clone(),
                    format!("not loaded: {why}"),
                )
            })?;
            let n = self.load_text(p, kind).map_err(|e| err(e.to_string()))?;
            (kind, n, modified)
        };
        self.files.push(LoadedFile {
            path: p.to_path_buf(),
            kind,
            entries,
            date,
        });
        Ok(())
    }

    fn load_text(&mut self, p: &Path, kind: IntelKind) -> std::io::Result<usize> {
        match kind {
            IntelKind::AsnRanges => self.load_asn_csv(p),
            IntelKind::CountryRanges => self.load_country_csv(p),
            IntelKind::VpnRanges => load_cidrs(p, &mut self.vpn),
            IntelKind::DatacenterRanges => load_cidrs(p, &mut self.datacenter),
            IntelKind::TorExits => load_cidrs(p, &mut self.tor),
            IntelKind::VpnAsns => {
                let v = read_asn_list(p)?;
                let n = v.len();
                self.vpn_asns.extend(v);
                Ok(n)
            }
            IntelKind::DatacenterAsns => {
                let v = read_asn_list(p)?;
                let n = v.len();
                self.datacenter_asns.extend(v);
                Ok(n)
            }
            IntelKind::CountryMmdb | IntelKind::AsnMmdb => Ok(0),
        }
    }

    /// Adds a Tor exit list (one address or CIDR per line, or `ExitAddress` lines),
    /// whatever its name.
    pub fn add_tor_exits(&mut self, p: &Path) -> Result<(), Diagnostic> {
        let n = load_cidrs(p, &mut self.tor).map_err(|e| {
            Diagnostic::error("ipintel_unreadable", p.display().to_string(), e.to_string())
        })?;
        self.files.push(LoadedFile {
            path: p.to_path_buf(),
            kind: IntelKind::TorExits,
            entries: n,
            date: std::fs::metadata(p).and_then(|m| m.modified()).ok(),
        });
        Ok(())
    }

    /// Sorts the tables; call once after adding files.
    pub fn finish(&mut self) {
        self.countries.finish();
        self.asn.finish();
        self.datacenter.finish();
        self.vpn.finish();
        self.tor.finish();
    }

    /// The files loaded, in load order.
    pub fn files(&self) -> &[LoadedFile] {
        &self.files
    }

    /// Which detector inputs the loaded files provide.
    pub fn coverage(&self) -> Coverage {
        let has = |k: &[IntelKind]| self.files.iter().any(|f| k.contains(&f.kind));
        Coverage {
            country: has(&[IntelKind::CountryMmdb, IntelKind::CountryRanges]),
            asn: has(&[IntelKind::AsnMmdb, IntelKind::AsnRanges]),
            vpn: has(&[IntelKind::VpnRanges, IntelKind::VpnAsns]),
            datacenter: has(&[IntelKind::DatacenterRanges, IntelKind::DatacenterAsns]),
            tor: has(&[IntelKind::TorExits]),
        }
    }

    /// Number of loaded ranges and databases (for logging and tests).
    pub fn size(&self) -> usize {
        self.country_mmdb.len()
            + self.asn_mmdb.len()
            + self.countries.len()
            + self.asn.len()
            + self.datacenter.len()
            + self.vpn.len()
            + self.tor.len()
    }

    fn load_asn_csv(&mut self, p: &Path) -> std::io::Result<usize> {
        let r = open_maybe_gz(p)?;
        let mut last_org: Option<Arc<str>> = None;
        let mut n = 0;
        for line in r.lines() {
            let line = line?;
            let mut it = line.splitn(4, ',');
            let (Some(a), Some(b), Some(asn)) = (it.next(), it.next(), it.next()) else {
                continue;
            };
            let v6 = a.contains(':') || a.trim().len() > 10;
            let (Some(a), Some(b), Some(asn)) = (
                parse_addr_or_int(a, v6),
                parse_addr_or_int(b, v6),
                parse_asn(asn.trim().trim_matches('"')),
            ) else {
                continue;
            };
            let org = it.next().unwrap_or("").trim().trim_matches('"');
            let idx = match &last_org {
                Some(o) if &**o == org => self.orgs.len() as u32 - 1,
                _ => {
                    let o: Arc<str> = Arc::from(org);
                    self.orgs.push(o.clone());
                    last_org = Some(o);
                    self.orgs.len() as u32 - 1
                }
            };
            n += usize::from(self.asn.insert(a, b, (asn, idx)));
        }
        Ok(n)
    }

    fn load_country_csv(&mut self, p: &Path) -> std::io::Result<usize> {
        let r = open_maybe_gz(p)?;
        let mut n = 0;
        for line in r.lines() {
            let line = line?;
            if line.starts_with('#') {
                continue;
            }
            let mut it = line.split(',');
            let (Some(a), Some(b), Some(cc)) = (it.next(), it.next(), it.next()) else {
                continue;
            };
            let cc = cc.trim().trim_matches('"').as_bytes();
            if cc.len() != 2 || cc == b"??" {
                continue;
            }
            let v6 = a.contains(':') || a.trim().len() > 10;
            if let (Some(a), Some(b)) = (parse_addr_or_int(a, v6), parse_addr_or_int(b, v6)) {
                n += usize::from(self.countries.insert(
                    a,
                    b,
                    [cc[0].to_ascii_uppercase(), cc[1].to_ascii_uppercase()],
                ));
            }
        }
        Ok(n)
    }

    /// Country code of an address.
    pub fn country(&self, ip: IpAddr) -> Option<Box<str>> {
        for r in &self.country_mmdb {
            if let Ok(res) = r.lookup(ip)
                && let Ok(Some(rec)) = res.decode::<MmdbRecord<'_>>()
                && let Some(cc) = rec.country_code.or(rec.country.and_then(|c| c.iso_code))
            {
                return Some(Box::from(cc));
            }
        }
        self.countries
            .find(ip)
            .map(|cc| Box::from(std::str::from_utf8(cc).unwrap_or("??")))
    }

    fn asn_of(&self, ip: IpAddr) -> (Option<u32>, Option<Arc<str>>) {
        if let Some(&(asn, idx)) = self.asn.find(ip) {
            return (Some(asn), self.orgs.get(idx as usize).cloned());
        }
        for r in &self.asn_mmdb {
            if let Ok(res) = r.lookup(ip)
                && let Ok(Some(rec)) = res.decode::<MmdbRecord<'_>>()
                && let Some(asn) = rec.autonomous_system_number
            {
                return (Some(asn), rec.autonomous_system_organization.map(Arc::from));
            }
        }
        (None, None)
    }

    /// Everything known about an address.
    pub fn lookup(&self, ip: IpAddr) -> IpInfo {
        let country = self.country(ip);
        let (asn, org) = self.asn_of(ip);
        let class = if self.tor.find(ip).is_some() {
            NetworkClass::Tor
        } else if self.vpn.find(ip).is_some() || asn.is_some_and(|a| self.vpn_asns.contains(&a)) {
            NetworkClass::Vpn
        } else if self.datacenter.find(ip).is_some()
            || asn.is_some_and(|a| self.datacenter_asns.contains(&a))
        {
            NetworkClass::Datacenter
        } else if asn.is_some() {
            NetworkClass::Residential
        } else {
            NetworkClass::Unknown
        };
        IpInfo {
            country,
            asn,
            org,
            class,
        }
    }
}

/// Whether an MMDB database holds ASNs or countries: a probe of well-known addresses
/// shows its record shape; failing that, its `database_type` decides.
fn mmdb_kind(r: &maxminddb::Reader<Vec<u8>>) -> IntelKind {
    for probe in ["8.8.8.8", "1.1.1.1", "52.94.10.10", "2001:4860:4860::8888"] {
        let ip: IpAddr = probe.parse().expect("probe address");
        if let Ok(res) = r.lookup(ip)
            && let Ok(Some(rec)) = res.decode::<MmdbRecord<'_>>()
        {
            if rec.autonomous_system_number.is_some() {
                return IntelKind::AsnMmdb;
            }
            if rec.country_code.is_some() || rec.country.is_some() {
                return IntelKind::CountryMmdb;
            }
        }
    }
    let t = r.metadata.database_type.to_ascii_lowercase();
    if t.contains("asn") && !t.contains("country") {
        IntelKind::AsnMmdb
    } else {
        IntelKind::CountryMmdb
    }
}

fn read_asn_list(p: &Path) -> std::io::Result<Vec<u32>> {
    let r = open_maybe_gz(p)?;
    let mut out = Vec::new();
    for line in r.lines() {
        let line = line?;
        if let Some(n) = parse_asn(line.split('#').next().unwrap_or("")) {
            out.push(n);
        }
    }
    Ok(out)
}

/// Loads one address or CIDR per line; Tor's `ExitAddress ADDR …` lines give ADDR and
/// its other lines (`ExitNode`, `Published`, `LastStatus`) are passed over.
fn load_cidrs(p: &Path, table: &mut RangeTable<()>) -> std::io::Result<usize> {
    let r = open_maybe_gz(p)?;
    let mut n = 0;
    for line in r.lines() {
        let line = line?;
        let t = line.split('#').next().unwrap_or("").trim();
        let t = match t.strip_prefix("ExitAddress ") {
            Some(rest) => rest.split_whitespace().next().unwrap_or(""),
            None => t,
        };
        if !t.is_empty() && table.insert_cidr(t, ()) {
            n += 1;
        }
    }
    Ok(n)
}

/// Approximate geographic centre (latitude, longitude) of a country, for
/// impossible-travel estimates. Covers the countries that carry most traffic;
/// others give `None` and impossible travel is not evaluated for them.
pub fn country_centroid(cc: &str) -> Option<(f64, f64)> {
    let v = match cc {
        "US" => (39.8, -98.6),
        "CA" => (56.1, -106.3),
        "MX" => (23.6, -102.6),
        "BR" => (-14.2, -51.9),
        "AR" => (-38.4, -63.6),
        "CL" => (-35.7, -71.5),
        "CO" => (4.6, -74.3),
        "PE" => (-9.2, -75.0),
        "GB" => (54.0, -2.0),
        "IE" => (53.4, -8.2),
        "FR" => (46.2, 2.2),
        "DE" => (51.2, 10.4),
        "NL" => (52.1, 5.3),
        "BE" => (50.5, 4.5),
        "LU" => (49.8, 6.1),
        "CH" => (46.8, 8.2),
        "AT" => (47.5, 14.6),
        "ES" => (40.5, -3.7),
        "PT" => (39.4, -8.2),
        "IT" => (41.9, 12.6),
        "SE" => (60.1, 18.6),
        "NO" => (60.5, 8.5),
        "FI" => (61.9, 25.7),
        "DK" => (56.3, 9.5),
        "PL" => (51.9, 19.1),
        "CZ" => (49.8, 15.5),
        "HU" => (47.2, 19.5),
        "RO" => (45.9, 25.0),
        "BG" => (42.7, 25.5),
        "GR" => (39.1, 21.8),
        "UA" => (48.4, 31.2),
        "RU" => (61.5, 105.3),
        "TR" => (39.0, 35.2),
        "IL" => (31.0, 34.9),
        "AE" => (23.4, 53.8),
        "SA" => (23.9, 45.1),
        "IR" => (32.4, 53.7),
        "EG" => (26.8, 30.8),
        "ZA" => (-30.6, 22.9),
        "NG" => (9.1, 8.7),
        "KE" => (-0.02, 37.9),
        "MA" => (31.8, -7.1),
        "IN" => (20.6, 79.0),
        "PK" => (30.4, 69.3),
        "BD" => (23.7, 90.4),
        "CN" => (35.9, 104.2),
        "HK" => (22.3, 114.2),
        "TW" => (23.7, 121.0),
        "JP" => (36.2, 138.3),
        "KR" => (35.9, 127.8),
        "KP" => (40.3, 127.5),
        "SG" => (1.35, 103.8),
        "MY" => (4.2, 101.9),
        "TH" => (15.9, 101.0),
        "VN" => (14.1, 108.3),
        "ID" => (-0.8, 113.9),
        "PH" => (12.9, 121.8),
        "AU" => (-25.3, 133.8),
        "NZ" => (-40.9, 174.9),
        "LT" => (55.2, 23.9),
        "LV" => (56.9, 24.6),
        "EE" => (58.6, 25.0),
        "BY" => (53.7, 28.0),
        "KZ" => (48.0, 66.9),
        "IS" => (65.0, -19.0),
        "VE" => (6.4, -66.6),
        "SC" => (-4.7, 55.5),
        "PA" => (8.5, -80.8),
        "MD" => (47.4, 28.4),
        "RS" => (44.0, 21.0),
        "HR" => (45.1, 15.2),
        "SK" => (48.7, 19.7),
        "SI" => (46.2, 14.9),
        _ => return None,
    };
    Some(v)
}

/// Great-circle distance in km between two country centres.
pub fn country_distance_km(a: &str, b: &str) -> Option<f64> {
    let (la1, lo1) = country_centroid(a)?;
    let (la2, lo2) = country_centroid(b)?;
    let (p1, p2) = (la1.to_radians(), la2.to_radians());
    let dp = p2 - p1;
    let dl = (lo2 - lo1).to_radians();
    let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    Some(2.0 * 6371.0 * h.sqrt().asin())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_ranges() {
        let (a, b) = parse_cidr("10.1.2.3/16").unwrap();
        assert_eq!(
            (a.to_string(), b.to_string()),
            ("10.1.0.0".into(), "10.1.255.255".into())
        );
        let (a, b) = parse_cidr("2001:db8::/32").unwrap();
        assert_eq!(a.to_string(), "2001:db8::");
        assert_eq!(b.to_string(), "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff");
        assert!(parse_cidr("1.2.3.4/33").is_none());
    }

    #[test]
    fn range_table_binary_search() {
        let mut t = RangeTable::default();
        t.insert_cidr("10.0.0.0/8", 1);
        t.insert_cidr("192.168.1.0/24", 2);
        t.finish();
        assert_eq!(t.find("10.200.0.1".parse().unwrap()), Some(&1));
        assert_eq!(t.find("192.168.1.255".parse().unwrap()), Some(&2));
        assert_eq!(t.find("192.168.2.0".parse().unwrap()), None);
        assert_eq!(t.find("9.255.255.255".parse().unwrap()), None);
    }

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    #[test]
    fn files_are_recognised_by_content_and_unknown_ones_reported() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        write(
            d,
            "routes.csv",
            "start,end,asn,org\n1.0.0.0,1.0.0.255,13335,\"Cloudflare, Inc.\"\n",
        );
        write(
            d,
            "routes-v6-num.csv",
            "42540528726795050063891204319802818560,42540528726795050063891204319802818815,2500,WIDE\n",
        );
        write(d, "geo.csv", "# header\n16777216,16777471,au\n");
        write(d, "my-vpn-ranges.txt", "# VPN\n203.0.113.0/24\n");
        write(d, "hosting.txt", "198.51.100.0/24\n");
        write(d, "torbulkexitlist", "192.0.2.7\n");
        write(
            d,
            "exit-addresses",
            "ExitNode ABC\nPublished 2026-01-01 00:00:00\nExitAddress 192.0.2.9 2026-01-01 00:00:00\n",
        );
        write(d, "vpn-asns.txt", "AS9009\n");
        write(d, "addresses.txt", "192.0.2.1\n");
        write(d, "notes.csv", "name,value\nx,y\n");
        write(d, "README.md", "about\n");
        write(d, "LICENSE", "CC BY 4.0\n");
        write(d, "package.json", "{}\n");
        std::fs::create_dir(d.join("nested")).unwrap();
        write(&d.join("nested"), "more-datacenter.txt", "100.64.0.0/10\n");
        let (intel, diags) = IpIntel::load_dir(d);
        let unrecognised: Vec<_> = diags
            .iter()
            .map(|x| {
                (
                    x.kind.as_str(),
                    x.subject.rsplit('/').next().unwrap(),
                    x.is_error,
                )
            })
            .collect();
        assert_eq!(
            unrecognised,
            vec![
                ("ipintel_unrecognised", "addresses.txt", false),
                ("ipintel_unrecognised", "notes.csv", false)
            ]
        );
        assert!(
            diags[0]
                .message
                .contains("put `tor`, `vpn` or `datacenter`"),
            "{}",
            diags[0].message
        );
        let kinds: Vec<IntelKind> = intel.files().iter().map(|f| f.kind).collect();
        assert_eq!(kinds.len(), 9, "{kinds:?}");
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let cf = intel.lookup(ip("1.0.0.1"));
        assert_eq!(
            (cf.asn, cf.org.as_deref(), cf.country.as_deref()),
            (Some(13335), Some("Cloudflare, Inc."), Some("AU"))
        );
        assert_eq!(intel.lookup(ip("2001:200::1")).asn, Some(2500));
        assert_eq!(intel.lookup(ip("203.0.113.5")).class, NetworkClass::Vpn);
        assert_eq!(
            intel.lookup(ip("198.51.100.5")).class,
            NetworkClass::Datacenter
        );
        assert_eq!(
            intel.lookup(ip("100.64.1.1")).class,
            NetworkClass::Datacenter
        );
        assert_eq!(intel.lookup(ip("192.0.2.7")).class, NetworkClass::Tor);
        assert_eq!(intel.lookup(ip("192.0.2.9")).class, NetworkClass::Tor);
        assert_eq!(intel.lookup(ip("192.0.2.1")).class, NetworkClass::Unknown);
        assert_eq!(
            intel.coverage(),
            Coverage {
                country: true,
                asn: true,
                vpn: true,
                datacenter: true,
                tor: true
            }
        );
    }

    #[test]
    fn a_file_repeating_a_sibling_is_loaded_once() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        write(d, "asn-ipv4.csv", "1.0.0.0,1.0.0.255,13335,Cloudflare\n");
        write(
            d,
            "asn-ipv4-num.csv",
            "16777216,16777471,13335,Cloudflare\n",
        );
        let (intel, diags) = IpIntel::load_dir(d);
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(intel.files().len(), 1);
        assert!(intel.files()[0].path.ends_with("asn-ipv4.csv"));
    }

    #[test]
    fn a_corrupt_mmdb_is_an_error_and_the_rest_loads() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        write(d, "country.mmdb", "not an mmdb");
        write(d, "vpn.txt", "203.0.113.0/24\n");
        let (intel, diags) = IpIntel::load_dir(d);
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert!(diags[0].is_error && diags[0].kind == "ipintel_unreadable");
        assert_eq!(
            intel.coverage(),
            Coverage {
                vpn: true,
                ..Coverage::default()
            }
        );
    }

    #[test]
    fn mmdb_country_and_asn_databases_are_told_apart_and_dated() {
        use keytrail_testkit::mmdb::{Value, write};
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        write(
            &d.join("asn.mmdb"),
            "GeoLite2-ASN",
            1_780_000_000,
            &[(
                "52.94.0.0/16",
                vec![
                    ("autonomous_system_number", Value::U32(16509)),
                    (
                        "autonomous_system_organization",
                        Value::Str("AMAZON-02".into()),
                    ),
                ],
            )],
        )
        .unwrap();
        write(
            &d.join("countries.mmdb"),
            "ip-location-db country",
            1_780_000_000,
            &[
                (
                    "52.94.0.0/16",
                    vec![("country_code", Value::Str("US".into()))],
                ),
                (
                    "79.192.0.0/10",
                    vec![("country_code", Value::Str("DE".into()))],
                ),
            ],
        )
        .unwrap();
        let (intel, diags) = IpIntel::load_dir(d);
        assert!(diags.is_empty(), "{diags:?}");
        let kinds: Vec<IntelKind> = intel.files().iter().map(|f| f.kind).collect();
        assert_eq!(kinds, vec![IntelKind::AsnMmdb, IntelKind::CountryMmdb]);
        assert_eq!(
            intel.files()[0].date,
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_780_000_000))
        );
        let aws = intel.lookup("52.94.10.10".parse().unwrap());
        assert_eq!(
            (
                aws.country.as_deref(),
                aws.asn,
                aws.org.as_deref(),
                aws.class
            ),
            (
                Some("US"),
                Some(16509),
                Some("AMAZON-02"),
                NetworkClass::Datacenter
            )
        );
        let home = intel.lookup("79.200.1.1".parse().unwrap());
        assert_eq!((home.country.as_deref(), home.asn), (Some("DE"), None));
        assert_eq!(
            intel.coverage(),
            Coverage {
                country: true,
                asn: true,
                ..Coverage::default()
            }
        );
    }

    #[test]
    fn distances() {
        let d = country_distance_km("DE", "AU").unwrap();
        assert!(d > 13_000.0 && d < 16_000.0, "{d}");
        assert!(country_distance_km("DE", "ZZ").is_none());
    }
}

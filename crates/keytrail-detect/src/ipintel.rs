//! Offline IP intelligence: country (MMDB files and IP-range CSVs), ASN and
//! organisation (range CSV), and network class (datacenter, VPN, Tor, residential).
//!
//! Range CSVs are loaded into sorted tables searched with binary search; MMDB files
//! are read with the `maxminddb` crate (records of the flat `{"country_code": "US"}`
//! shape used by the ip-location-db packages, or MaxMind's nested `country.iso_code`).
//! Nothing is fetched from the network.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read};
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

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

#[derive(Deserialize)]
struct FlatCountry<'a> {
    #[serde(borrow, default)]
    country_code: Option<&'a str>,
    #[serde(borrow, default)]
    country: Option<NestedCountry<'a>>,
}

#[derive(Deserialize)]
struct NestedCountry<'a> {
    #[serde(borrow, default)]
    iso_code: Option<&'a str>,
}

/// The loaded IP intelligence. Cheap to share behind an `Arc`.
#[derive(Default)]
pub struct IpIntel {
    mmdb: Vec<maxminddb::Reader<Vec<u8>>>,
    countries: RangeTable<[u8; 2]>,
    asn: RangeTable<(u32, u32)>,
    orgs: Vec<Arc<str>>,
    datacenter: RangeTable<()>,
    vpn: RangeTable<()>,
    tor: RangeTable<()>,
    datacenter_asns: HashSet<u32>,
    vpn_asns: HashSet<u32>,
}

/// Well-known cloud and hosting ASNs, always treated as datacenter: AWS, Google,
/// Microsoft, DigitalOcean, OVH, Hetzner, Linode/Akamai, Oracle, Alibaba, Vultr.
const CLOUD_ASNS: &[u32] = &[
    16509, 14618, 8987, 15169, 396982, 8075, 14061, 16276, 24940, 63949, 31898, 45102, 20473,
];

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

fn parse_addr_or_int(s: &str, v6: bool) -> Option<IpAddr> {
    let s = s.trim();
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    // Tor's geoip format writes IPv4 ranges as integers.
    if !v6 {
        return s.parse::<u32>().ok().map(|n| IpAddr::V4(n.into()));
    }
    None
}

impl IpIntel {
    /// An empty database (every lookup is unknown).
    pub fn empty() -> Self {
        let mut s = Self::default();
        s.datacenter_asns.extend(CLOUD_ASNS);
        s
    }

    /// Loads every known file from a directory laid out like `../shared/data/ipintel`
    /// (`*.mmdb`, `asn-ipv{4,6}.csv.gz`, `tor-geoip-ipv{4,6}.csv.gz`, `x4bnet-*`,
    /// optional `tor-exits.txt`). Missing files are skipped; bad files give diagnostics.
    pub fn load_dir(dir: &Path) -> (Self, Vec<Diagnostic>) {
        let mut s = Self::empty();
        let mut diags = Vec::new();
        let mut names: Vec<_> = match std::fs::read_dir(dir) {
            Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
            Err(e) => {
                diags.push(Diagnostic::error(
                    "unreadable",
                    dir.display().to_string(),
                    e.to_string(),
                ));
                return (s, diags);
            }
        };
        names.sort();
        for p in names {
            if let Err(d) = s.add_file(&p) {
                diags.push(d);
            }
        }
        s.finish();
        (s, diags)
    }

    /// Adds one file, recognised by its name. Call [`IpIntel::finish`] after the last.
    pub fn add_file(&mut self, p: &Path) -> Result<(), Diagnostic> {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        let subject = p.display().to_string();
        let err = |e: String| Diagnostic::error("ipintel_unreadable", subject.clone(), e);
        if name.ends_with(".mmdb") {
            let r = maxminddb::Reader::open_readfile(p).map_err(|e| err(e.to_string()))?;
            self.mmdb.push(r);
        } else if name.starts_with("asn-ipv") && name.contains(".csv") {
            self.load_asn_csv(p).map_err(|e| err(e.to_string()))?;
        } else if (name.starts_with("tor-geoip") || name.contains("country"))
            && name.contains(".csv")
        {
            self.load_country_csv(p, name.contains("ipv6"))
                .map_err(|e| err(e.to_string()))?;
        } else if name.contains("datacenter") && name.contains("asn") {
            self.datacenter_asns
                .extend(read_asn_list(p).map_err(|e| err(e.to_string()))?);
        } else if name.contains("vpn") && name.contains("asn") {
            self.vpn_asns
                .extend(read_asn_list(p).map_err(|e| err(e.to_string()))?);
        } else if name.contains("datacenter") {
            load_cidrs(p, &mut self.datacenter).map_err(|e| err(e.to_string()))?;
        } else if name.contains("vpn") {
            load_cidrs(p, &mut self.vpn).map_err(|e| err(e.to_string()))?;
        } else if name.contains("tor-exit") || name.contains("torbulkexit") {
            load_cidrs(p, &mut self.tor).map_err(|e| err(e.to_string()))?;
        }
        Ok(())
    }

    /// Adds a Tor exit list (one address or CIDR per line).
    pub fn add_tor_exits(&mut self, p: &Path) -> Result<(), Diagnostic> {
        load_cidrs(p, &mut self.tor).map_err(|e| {
            Diagnostic::error("ipintel_unreadable", p.display().to_string(), e.to_string())
        })
    }

    /// Sorts the tables; call once after adding files.
    pub fn finish(&mut self) {
        self.countries.finish();
        self.asn.finish();
        self.datacenter.finish();
        self.vpn.finish();
        self.tor.finish();
    }

    /// Number of loaded ranges and databases (for logging and tests).
    pub fn size(&self) -> usize {
        self.mmdb.len()
            + self.countries.len()
            + self.asn.len()
            + self.datacenter.len()
            + self.vpn.len()
            + self.tor.len()
    }

    fn load_asn_csv(&mut self, p: &Path) -> std::io::Result<()> {
        let v6 = p.to_string_lossy().contains("ipv6");
        let r = open_maybe_gz(p)?;
        let mut last_org: Option<Arc<str>> = None;
        for line in r.lines() {
            let line = line?;
            let mut it = line.splitn(4, ',');
            let (Some(a), Some(b), Some(asn)) = (it.next(), it.next(), it.next()) else {
                continue;
            };
            let (Some(a), Some(b), Ok(asn)) = (
                parse_addr_or_int(a, v6),
                parse_addr_or_int(b, v6),
                asn.trim().parse::<u32>(),
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
            self.asn.insert(a, b, (asn, idx));
        }
        Ok(())
    }

    fn load_country_csv(&mut self, p: &Path, v6: bool) -> std::io::Result<()> {
        let r = open_maybe_gz(p)?;
        for line in r.lines() {
            let line = line?;
            if line.starts_with('#') {
                continue;
            }
            let mut it = line.split(',');
            let (Some(a), Some(b), Some(cc)) = (it.next(), it.next(), it.next()) else {
                continue;
            };
            let cc = cc.trim().as_bytes();
            if cc.len() != 2 || cc == b"??" {
                continue;
            }
            if let (Some(a), Some(b)) = (parse_addr_or_int(a, v6), parse_addr_or_int(b, v6)) {
                self.countries.insert(
                    a,
                    b,
                    [cc[0].to_ascii_uppercase(), cc[1].to_ascii_uppercase()],
                );
            }
        }
        Ok(())
    }

    /// Country code of an address.
    pub fn country(&self, ip: IpAddr) -> Option<Box<str>> {
        for r in &self.mmdb {
            if let Ok(res) = r.lookup(ip)
                && let Ok(Some(rec)) = res.decode::<FlatCountry<'_>>()
                && let Some(cc) = rec.country_code.or(rec.country.and_then(|c| c.iso_code))
            {
                return Some(Box::from(cc));
            }
        }
        self.countries
            .find(ip)
            .map(|cc| Box::from(std::str::from_utf8(cc).unwrap_or("??")))
    }

    /// Everything known about an address.
    pub fn lookup(&self, ip: IpAddr) -> IpInfo {
        let country = self.country(ip);
        let (asn, org) = match self.asn.find(ip) {
            Some(&(asn, idx)) => (Some(asn), self.orgs.get(idx as usize).cloned()),
            None => (None, None),
        };
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

fn read_asn_list(p: &Path) -> std::io::Result<Vec<u32>> {
    let r = open_maybe_gz(p)?;
    let mut out = Vec::new();
    for line in r.lines() {
        let line = line?;
        let t = line.split('#').next().unwrap_or("").trim();
        let t = t
            .strip_prefix("AS")
            .or_else(|| t.strip_prefix("as"))
            .unwrap_or(t);
        if let Ok(n) = t.parse() {
            out.push(n);
        }
    }
    Ok(out)
}

fn load_cidrs(p: &Path, table: &mut RangeTable<()>) -> std::io::Result<()> {
    let r = open_maybe_gz(p)?;
    for line in r.lines() {
        let line = line?;
        let t = line.split('#').next().unwrap_or("").trim();
        if !t.is_empty() {
            table.insert_cidr(t, ());
        }
    }
    Ok(())
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

    #[test]
    fn distances() {
        let d = country_distance_km("DE", "AU").unwrap();
        assert!(d > 13_000.0 && d < 16_000.0, "{d}");
        assert!(country_distance_km("DE", "ZZ").is_none());
    }
}

//! A minimal MaxMind DB (MMDB) writer for tests: IPv4 networks mapped to flat records
//! of string and unsigned-integer fields. Enough to build country
//! (`{"country_code": "DE"}`) and ASN (`{"autonomous_system_number": 3320, …}`)
//! databases at test time, so tests of MMDB reading need no committed database file.
//!
//! Format: MaxMind DB 2.0 (a binary search tree of 32-bit records, a 16-byte
//! separator, the data section, then the metadata map after its marker). Read back
//! with the `maxminddb` crate by keytrail-detect's IP-intelligence tests.

use std::io;
use std::path::Path;

/// A field value.
#[derive(Debug, Clone)]
pub enum Value {
    /// UTF-8 string.
    Str(String),
    /// Unsigned 32-bit integer.
    U32(u32),
}

/// One network (`a.b.c.d/n`) and its record's fields.
pub type Network<'a> = (&'a str, Vec<(&'a str, Value)>);

#[derive(Clone, Copy)]
enum Rec {
    Empty,
    Node(usize),
    Data(usize),
}

fn ctrl(out: &mut Vec<u8>, ty: u8, size: usize) {
    let (first, extra): (u8, Vec<u8>) = if size < 29 {
        (size as u8, vec![])
    } else if size < 285 {
        (29, vec![(size - 29) as u8])
    } else {
        let s = size - 285;
        (30, vec![(s >> 8) as u8, s as u8])
    };
    if ty <= 7 {
        out.push((ty << 5) | first);
    } else {
        out.push(first);
        out.push(ty - 7);
    }
    out.extend(extra);
}

fn string(out: &mut Vec<u8>, s: &str) {
    ctrl(out, 2, s.len());
    out.extend_from_slice(s.as_bytes());
}

fn uint(out: &mut Vec<u8>, ty: u8, v: u64) {
    let bytes = v.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    ctrl(out, ty, 8 - skip);
    out.extend_from_slice(&bytes[skip..]);
}

fn value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Str(s) => string(out, s),
        Value::U32(n) => uint(out, 6, u64::from(*n)),
    }
}

fn parse_net(cidr: &str) -> (u32, u32) {
    let (a, n) = cidr.split_once('/').unwrap_or((cidr, "32"));
    let addr: std::net::Ipv4Addr = a.parse().expect("IPv4 network");
    (u32::from(addr), n.parse().expect("prefix length"))
}

/// Writes an IPv4 MMDB database of `database_type` built at `build_epoch` (Unix
/// seconds) with the given networks (which must not nest).
pub fn write(
    path: &Path,
    database_type: &str,
    build_epoch: u64,
    networks: &[Network<'_>],
) -> io::Result<()> {
    let mut data = Vec::new();
    let mut nodes: Vec<[Rec; 2]> = vec![[Rec::Empty; 2]];
    for (cidr, fields) in networks {
        let offset = data.len();
        ctrl(&mut data, 7, fields.len());
        for (k, v) in fields {
            string(&mut data, k);
            value(&mut data, v);
        }
        let (addr, bits) = parse_net(cidr);
        let mut node = 0;
        for i in 0..bits {
            let bit = ((addr >> (31 - i)) & 1) as usize;
            if i + 1 == bits {
                nodes[node][bit] = Rec::Data(offset);
                break;
            }
            node = match nodes[node][bit] {
                Rec::Node(n) => n,
                Rec::Empty | Rec::Data(_) => {
                    nodes.push([Rec::Empty; 2]);
                    let n = nodes.len() - 1;
                    nodes[node][bit] = Rec::Node(n);
                    n
                }
            };
        }
    }
    let count = nodes.len();
    let mut out = Vec::new();
    for n in &nodes {
        for r in n {
            let v = match *r {
                Rec::Empty => count,
                Rec::Node(i) => i,
                Rec::Data(off) => count + 16 + off,
            };
            out.extend_from_slice(&(v as u32).to_be_bytes());
        }
    }
    out.extend_from_slice(&[0u8; 16]);
    out.extend_from_slice(&data);
    out.extend_from_slice(b"\xAB\xCD\xEFMaxMind.com");
    let mut meta = Vec::new();
    ctrl(&mut meta, 7, 9);
    string(&mut meta, "binary_format_major_version");
    uint(&mut meta, 5, 2);
    string(&mut meta, "binary_format_minor_version");
    uint(&mut meta, 5, 0);
    string(&mut meta, "build_epoch");
    uint(&mut meta, 9, build_epoch);
    string(&mut meta, "database_type");
    string(&mut meta, database_type);
    string(&mut meta, "description");
    ctrl(&mut meta, 7, 1);
    string(&mut meta, "en");
    string(&mut meta, "keytrail test database");
    string(&mut meta, "ip_version");
    uint(&mut meta, 5, 4);
    string(&mut meta, "languages");
    ctrl(&mut meta, 11, 1);
    string(&mut meta, "en");
    string(&mut meta, "node_count");
    uint(&mut meta, 6, count as u64);
    string(&mut meta, "record_size");
    uint(&mut meta, 5, 32);
    out.extend_from_slice(&meta);
    std::fs::write(path, out)
}

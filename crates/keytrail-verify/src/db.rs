//! Database connection strings: log in to the server the URI itself names,
//! with a short timeout, then close. PostgreSQL (and wire-compatible
//! servers), MySQL/MariaDB and Redis speak their own protocols, so these
//! verifiers are code, not data.
//!
//! What is sent, and where: only to the host and port of the URI that
//! holds the password (the database is its own provider), and never the
//! password in clear over an unencrypted connection: PostgreSQL's MD5 and
//! SCRAM-SHA-256, MySQL's `mysql_native_password` and
//! `caching_sha2_password` (fast path) send proofs, not the password. A
//! server that asks for the clear password on a plain connection gets
//! nothing (`unknown`). Redis `AUTH` sends the password as Redis clients
//! do; `rediss://` (TLS) is not verified yet (`unknown`). No query is run:
//! the check stops at the login's answer.

use crate::Outcome;
use keytrail_types::VerificationStatus;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// The database kinds these verifiers speak, by rule id.
pub fn kind_of_rule(rule: &str) -> Option<Kind> {
    match rule {
        "database.postgres" => Some(Kind::Postgres),
        "database.mysql" => Some(Kind::Mysql),
        "database.redis" => Some(Kind::Redis),
        _ => None,
    }
}

/// A database protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// PostgreSQL and wire-compatible servers (CockroachDB, Redshift, Timescale).
    Postgres,
    /// MySQL and MariaDB.
    Mysql,
    /// Redis and Valkey.
    Redis,
}

impl Kind {
    /// The verifier id.
    pub fn verifier_id(self) -> &'static str {
        match self {
            Kind::Postgres => "database.postgres",
            Kind::Mysql => "database.mysql",
            Kind::Redis => "database.redis",
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Kind::Postgres => 5432,
            Kind::Mysql => 3306,
            Kind::Redis => 6379,
        }
    }
}

/// Largest server message read (a login answer is a few hundred bytes).
const MAX_MESSAGE: usize = 64 * 1024;

/// Log in as `user` with `password` at `host` (`name[:port]`) of a URI
/// with `scheme`, within `timeout`.
pub fn verify(
    kind: Kind,
    scheme: &str,
    user: &str,
    password: &str,
    host: &str,
    timeout: Duration,
) -> Outcome {
    let scheme = scheme.to_ascii_lowercase();
    if kind == Kind::Redis && scheme == "rediss" {
        return Outcome::unknown("rediss:// (TLS) is not verified yet: nothing was sent");
    }
    let (name, port) = match split_host(host, kind.default_port()) {
        Ok(h) => h,
        Err(e) => return Outcome::unknown(e),
    };
    let deadline = Instant::now() + timeout;
    let mut stream = match connect(&name, port, timeout) {
        Ok(s) => s,
        Err(e) => return Outcome::unknown(format!("cannot connect to {name}:{port}: {e}")),
    };
    let mut conn = Conn {
        stream: &mut stream,
        deadline,
    };
    let mut o = match kind {
        Kind::Postgres => postgres_login(&mut conn, user, password),
        Kind::Mysql => mysql_login(&mut conn, user, password),
        Kind::Redis => redis_login(&mut conn, user, password),
    }
    .unwrap_or_else(io_unknown);
    if o.status == VerificationStatus::Live {
        o.identity = vec![
            ("user".into(), user.to_string()),
            ("server".into(), format!("{name}:{port}")),
        ];
    }
    o
}

fn split_host(host: &str, default_port: u16) -> Result<(String, u16), String> {
    match host.rsplit_once(':') {
        Some((h, p)) => {
            let port = p
                .parse::<u16>()
                .map_err(|_| format!("bad port in {host:?}"))?;
            Ok((h.to_string(), port))
        }
        None => Ok((host.to_string(), default_port)),
    }
}

fn connect(name: &str, port: u16, timeout: Duration) -> std::io::Result<TcpStream> {
    let mut last = None;
    for addr in (name, port).to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no address")))
}

/// A connection with one deadline for the whole login.
struct Conn<'a> {
    stream: &'a mut TcpStream,
    deadline: Instant,
}

impl Conn<'_> {
    fn left(&self) -> std::io::Result<Duration> {
        let d = self.deadline.saturating_duration_since(Instant::now());
        if d.is_zero() {
            Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "timed out",
            ))
        } else {
            Ok(d)
        }
    }

    fn write(&mut self, b: &[u8]) -> std::io::Result<()> {
        let t = self.left()?;
        self.stream.set_write_timeout(Some(t))?;
        self.stream.write_all(b)
    }

    fn read_exact(&mut self, b: &mut [u8]) -> std::io::Result<()> {
        let t = self.left()?;
        self.stream.set_read_timeout(Some(t))?;
        self.stream.read_exact(b)
    }

    fn read_vec(&mut self, n: usize) -> std::io::Result<Vec<u8>> {
        if n > MAX_MESSAGE {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("a {n}-byte message is too long for a login answer"),
            ));
        }
        let mut v = vec![0; n];
        self.read_exact(&mut v)?;
        Ok(v)
    }
}

fn io_unknown(e: std::io::Error) -> Outcome {
    Outcome::unknown(format!("login did not finish: {e}"))
}

fn invalid(detail: impl Into<String>) -> Outcome {
    Outcome::new(VerificationStatus::Invalid, Some(detail.into()))
}

fn live(detail: impl Into<String>) -> Outcome {
    Outcome::new(VerificationStatus::Live, Some(detail.into()))
}

// ---------------------------------------------------------------- PostgreSQL

fn pg_message(c: &mut Conn<'_>) -> std::io::Result<(u8, Vec<u8>)> {
    let mut head = [0u8; 5];
    c.read_exact(&mut head)?;
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if len < 4 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not a PostgreSQL server (bad message length)",
        ));
    }
    let body = c.read_vec(len - 4)?;
    Ok((head[0], body))
}

fn pg_send(c: &mut Conn<'_>, tag: u8, body: &[u8]) -> std::io::Result<()> {
    let mut m = Vec::with_capacity(body.len() + 5);
    m.push(tag);
    m.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    m.extend_from_slice(body);
    c.write(&m)
}

/// SQLSTATE and message of an ErrorResponse body.
fn pg_error(body: &[u8]) -> (String, String) {
    let (mut code, mut message) = (String::new(), String::new());
    for field in body.split(|&b| b == 0) {
        if let Some((&t, v)) = field.split_first() {
            let v = String::from_utf8_lossy(v).into_owned();
            match t {
                b'C' => code = v,
                b'M' => message = v,
                _ => {}
            }
        }
    }
    (code, crate::excerpt(&message))
}

fn postgres_login(c: &mut Conn<'_>, user: &str, password: &str) -> std::io::Result<Outcome> {
    let user = if user.is_empty() { "postgres" } else { user };
    // StartupMessage: protocol 3.0, user, database = user.
    let mut body = Vec::new();
    body.extend_from_slice(&196608u32.to_be_bytes());
    for (k, v) in [("user", user), ("database", user)] {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut m = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    m.extend_from_slice(&body);
    c.write(&m)?;
    let mut scram: Option<Scram> = None;
    loop {
        let (tag, body) = pg_message(c)?;
        match tag {
            b'R' if body.len() >= 4 => {
                let code = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
                let rest = &body[4..];
                match code {
                    0 => {
                        return Ok(live("the server accepted the login (AuthenticationOk)"));
                    }
                    3 => {
                        return Ok(Outcome::unknown(
                            "the server asked for the password in clear over an unencrypted connection: not sent",
                        ));
                    }
                    5 if rest.len() >= 4 => {
                        let proof = pg_md5(user, password, &rest[..4]);
                        let mut b = proof.into_bytes();
                        b.push(0);
                        pg_send(c, b'p', &b)?;
                    }
                    10 => {
                        let mechs: Vec<&[u8]> =
                            rest.split(|&b| b == 0).filter(|m| !m.is_empty()).collect();
                        if !mechs.contains(&&b"SCRAM-SHA-256"[..]) {
                            return Ok(Outcome::unknown(format!(
                                "no supported SASL mechanism offered ({})",
                                mechs
                                    .iter()
                                    .map(|m| String::from_utf8_lossy(m).into_owned())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )));
                        }
                        let s = Scram::new(password);
                        let first = s.client_first();
                        let mut b = b"SCRAM-SHA-256\0".to_vec();
                        b.extend_from_slice(&(first.len() as u32).to_be_bytes());
                        b.extend_from_slice(first.as_bytes());
                        pg_send(c, b'p', &b)?;
                        scram = Some(s);
                    }
                    11 => {
                        let Some(s) = scram.as_mut() else {
                            return Ok(Outcome::unknown("SASL continue before SASL start"));
                        };
                        let server_first = String::from_utf8_lossy(rest).into_owned();
                        match s.client_final(&server_first) {
                            Ok(f) => pg_send(c, b'p', f.as_bytes())?,
                            Err(e) => return Ok(Outcome::unknown(e)),
                        }
                    }
                    12 => {
                        // The server's proof: checked, although the
                        // AuthenticationOk that follows is what decides.
                        if let Some(s) = &scram
                            && !s.server_final_ok(&String::from_utf8_lossy(rest))
                        {
                            return Ok(Outcome::unknown(
                                "the server's SCRAM signature does not match: not a server that knows this password",
                            ));
                        }
                    }
                    other => {
                        return Ok(Outcome::unknown(format!(
                            "unsupported authentication method {other}"
                        )));
                    }
                }
            }
            b'E' => {
                let (code, message) = pg_error(&body);
                return Ok(match code.as_str() {
                    // invalid_password
                    "28P01" => invalid(format!("{code}: {message}")),
                    // A missing database after a successful login never
                    // reaches here: AuthenticationOk comes first.
                    _ => Outcome::unknown(format!("{code}: {message}")),
                });
            }
            b'N' => {} // a notice
            _ => {
                return Ok(Outcome::unknown(format!(
                    "unexpected message {:?} during login",
                    tag as char
                )));
            }
        }
    }
}

fn pg_md5(user: &str, password: &str, salt: &[u8]) -> String {
    use md5::Digest;
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let inner = md5::Md5::digest(format!("{password}{user}").as_bytes());
    let mut outer = md5::Md5::new();
    outer.update(hex(&inner).as_bytes());
    outer.update(salt);
    format!("md5{}", hex(&outer.finalize()))
}

/// The client side of SCRAM-SHA-256 (RFC 5802, RFC 7677), without channel
/// binding.
pub struct Scram {
    password: String,
    nonce: String,
    client_first_bare: String,
    server_signature: Option<Vec<u8>>,
}

fn b64(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn hmac256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    ring::hmac::sign(&k, data).as_ref().to_vec()
}

impl Scram {
    /// A new exchange with a random nonce.
    pub fn new(password: &str) -> Scram {
        use rand::Rng as _;
        let raw: [u8; 18] = rand::rng().random();
        Scram::with_nonce(password, &b64(&raw))
    }

    /// A new exchange with a given nonce (tests use RFC 7677's).
    pub fn with_nonce(password: &str, nonce: &str) -> Scram {
        Scram {
            password: password.to_string(),
            nonce: nonce.to_string(),
            // PostgreSQL ignores the SCRAM user name (it has the startup one).
            client_first_bare: format!("n=,r={nonce}"),
            server_signature: None,
        }
    }

    /// With a user name in the first message (RFC test vectors).
    pub fn with_user(mut self, user: &str) -> Scram {
        self.client_first_bare = format!("n={user},r={}", self.nonce);
        self
    }

    /// `client-first-message`.
    pub fn client_first(&self) -> String {
        format!("n,,{}", self.client_first_bare)
    }

    /// `client-final-message` for `server_first`.
    pub fn client_final(&mut self, server_first: &str) -> Result<String, String> {
        use base64::Engine as _;
        let mut nonce = None;
        let mut salt = None;
        let mut iterations = None;
        for part in server_first.split(',') {
            match part.split_once('=') {
                Some(("r", v)) => nonce = Some(v),
                Some(("s", v)) => salt = Some(v),
                Some(("i", v)) => iterations = v.parse::<u32>().ok(),
                _ => {}
            }
        }
        let (Some(nonce), Some(salt), Some(iterations)) = (nonce, salt, iterations) else {
            return Err("malformed SCRAM server-first message".into());
        };
        if !nonce.starts_with(&self.nonce) {
            return Err("the server's SCRAM nonce does not extend ours".into());
        }
        // A server could ask for billions of iterations to stall the run.
        if !(1..=1_000_000).contains(&iterations) {
            return Err(format!(
                "SCRAM iteration count {iterations} is out of range"
            ));
        }
        let salt = base64::engine::general_purpose::STANDARD
            .decode(salt)
            .map_err(|_| "the SCRAM salt is not base64".to_string())?;
        let mut salted = [0u8; 32];
        ring::pbkdf2::derive(
            ring::pbkdf2::PBKDF2_HMAC_SHA256,
            std::num::NonZeroU32::new(iterations).expect("checked above"),
            &salt,
            self.password.as_bytes(),
            &mut salted,
        );
        let client_key = hmac256(&salted, b"Client Key");
        let stored_key = ring::digest::digest(&ring::digest::SHA256, &client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!(
            "{},{},{}",
            self.client_first_bare, server_first, without_proof
        );
        let signature = hmac256(stored_key.as_ref(), auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(a, b)| a ^ b)
            .collect();
        let server_key = hmac256(&salted, b"Server Key");
        self.server_signature = Some(hmac256(&server_key, auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", b64(&proof)))
    }

    /// Whether `server_final` (`v=...`) proves the server knows the password.
    pub fn server_final_ok(&self, server_final: &str) -> bool {
        let Some(expected) = &self.server_signature else {
            return false;
        };
        server_final
            .split(',')
            .find_map(|p| p.strip_prefix("v="))
            .is_some_and(|v| v == b64(expected))
    }
}

// ---------------------------------------------------------------- MySQL

const CLIENT_LONG_PASSWORD: u32 = 0x1;
const CLIENT_PROTOCOL_41: u32 = 0x200;
const CLIENT_TRANSACTIONS: u32 = 0x2000;
const CLIENT_SECURE_CONNECTION: u32 = 0x8000;
const CLIENT_PLUGIN_AUTH: u32 = 0x8_0000;

fn my_packet(c: &mut Conn<'_>) -> std::io::Result<(u8, Vec<u8>)> {
    let mut head = [0u8; 4];
    c.read_exact(&mut head)?;
    let len = u32::from_le_bytes([head[0], head[1], head[2], 0]) as usize;
    Ok((head[3], c.read_vec(len)?))
}

fn my_send(c: &mut Conn<'_>, seq: u8, body: &[u8]) -> std::io::Result<()> {
    let len = (body.len() as u32).to_le_bytes();
    let mut m = vec![len[0], len[1], len[2], seq];
    m.extend_from_slice(body);
    c.write(&m)
}

fn bad(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string())
}

/// `(error code, message)` of an ERR packet.
fn my_error(p: &[u8]) -> (u16, String) {
    let code = if p.len() >= 3 {
        u16::from_le_bytes([p[1], p[2]])
    } else {
        0
    };
    // Protocol 4.1: '#' and a 5-byte SQL state before the message.
    let msg = if p.len() > 9 && p[3] == b'#' {
        &p[9..]
    } else {
        p.get(3..).unwrap_or(&[])
    };
    (code, crate::excerpt(&String::from_utf8_lossy(msg)))
}

/// The scramble of `plugin` for `password` and the server's `nonce`.
pub fn mysql_scramble(plugin: &str, password: &str, nonce: &[u8]) -> Option<Vec<u8>> {
    use ring::digest::{SHA1_FOR_LEGACY_USE_ONLY as SHA1, SHA256, digest};
    if password.is_empty() {
        return Some(Vec::new());
    }
    match plugin {
        "mysql_native_password" => {
            // SHA1(password) XOR SHA1(nonce + SHA1(SHA1(password)))
            let h1 = digest(&SHA1, password.as_bytes());
            let h2 = digest(&SHA1, h1.as_ref());
            let mut x = nonce.to_vec();
            x.extend_from_slice(h2.as_ref());
            let h3 = digest(&SHA1, &x);
            Some(
                h1.as_ref()
                    .iter()
                    .zip(h3.as_ref())
                    .map(|(a, b)| a ^ b)
                    .collect(),
            )
        }
        "caching_sha2_password" => {
            // SHA256(password) XOR SHA256(SHA256(SHA256(password)) + nonce)
            let h1 = digest(&SHA256, password.as_bytes());
            let h2 = digest(&SHA256, h1.as_ref());
            let mut x = h2.as_ref().to_vec();
            x.extend_from_slice(nonce);
            let h3 = digest(&SHA256, &x);
            Some(
                h1.as_ref()
                    .iter()
                    .zip(h3.as_ref())
                    .map(|(a, b)| a ^ b)
                    .collect(),
            )
        }
        _ => None,
    }
}

fn mysql_login(c: &mut Conn<'_>, user: &str, password: &str) -> std::io::Result<Outcome> {
    let (_, hs) = my_packet(c)?;
    if hs.first() == Some(&0xff) {
        let (code, msg) = my_error(&hs);
        return Ok(Outcome::unknown(format!(
            "the server refused the connection before login: {code} {msg}"
        )));
    }
    if hs.first() != Some(&10) {
        return Ok(Outcome::unknown("not a MySQL protocol 10 server"));
    }
    let mut at = 1;
    let version_end = hs[at..]
        .iter()
        .position(|&b| b == 0)
        .ok_or_else(|| bad("handshake without a server version"))?;
    at += version_end + 1;
    // connection id (4), nonce part 1 (8), filler (1)
    let part1 = hs
        .get(at + 4..at + 12)
        .ok_or_else(|| bad("short handshake"))?;
    let mut nonce = part1.to_vec();
    at += 13;
    let caps_lo = hs.get(at..at + 2).ok_or_else(|| bad("short handshake"))?;
    let mut caps = u16::from_le_bytes([caps_lo[0], caps_lo[1]]) as u32;
    at += 2;
    let mut plugin = "mysql_native_password".to_string();
    if hs.len() >= at + 16 {
        // charset (1), status (2), caps high (2), nonce length (1), reserved (10)
        caps |= (u16::from_le_bytes([hs[at + 3], hs[at + 4]]) as u32) << 16;
        let nonce_len = hs[at + 5] as usize;
        at += 16;
        let part2_len = nonce_len.saturating_sub(8).max(13);
        if let Some(p2) = hs.get(at..(at + part2_len).min(hs.len())) {
            // The last byte of part 2 is a NUL terminator.
            let p2 = p2.strip_suffix(&[0]).unwrap_or(p2);
            nonce.extend_from_slice(p2);
            at += part2_len;
        }
        if caps & CLIENT_PLUGIN_AUTH != 0
            && let Some(rest) = hs.get(at..)
        {
            let name = rest.split(|&b| b == 0).next().unwrap_or(&[]);
            if !name.is_empty() {
                plugin = String::from_utf8_lossy(name).into_owned();
            }
        }
    }
    nonce.truncate(20);
    let scramble = mysql_scramble(&plugin, password, &nonce).unwrap_or_default();
    let flags = CLIENT_LONG_PASSWORD
        | CLIENT_PROTOCOL_41
        | CLIENT_TRANSACTIONS
        | CLIENT_SECURE_CONNECTION
        | CLIENT_PLUGIN_AUTH;
    let mut r = Vec::new();
    r.extend_from_slice(&flags.to_le_bytes());
    r.extend_from_slice(&(16u32 * 1024 * 1024).to_le_bytes());
    r.push(45); // utf8mb4
    r.extend_from_slice(&[0; 23]);
    r.extend_from_slice(user.as_bytes());
    r.push(0);
    r.push(scramble.len() as u8);
    r.extend_from_slice(&scramble);
    r.extend_from_slice(plugin.as_bytes());
    r.push(0);
    my_send(c, 1, &r)?;
    // At most a few round trips: auth switch, fast-auth result, OK/ERR.
    for _ in 0..4 {
        let (seq, p) = my_packet(c)?;
        match p.first() {
            Some(0x00) => return Ok(live("the server accepted the login (OK packet)")),
            Some(0xff) => {
                let (code, msg) = my_error(&p);
                return Ok(match code {
                    // ER_ACCESS_DENIED_ERROR
                    1045 => invalid(format!("{code}: {msg}")),
                    _ => Outcome::unknown(format!("{code}: {msg}")),
                });
            }
            Some(0xfe) => {
                // Auth switch: plugin name, then a new nonce.
                let mut parts = p[1..].splitn(2, |&b| b == 0);
                let name = String::from_utf8_lossy(parts.next().unwrap_or(&[])).into_owned();
                let data = parts.next().unwrap_or(&[]);
                let data = data.strip_suffix(&[0]).unwrap_or(data);
                let Some(s) = mysql_scramble(&name, password, data) else {
                    return Ok(Outcome::unknown(format!(
                        "the server asked for the unsupported authentication plugin {name}"
                    )));
                };
                plugin = name;
                my_send(c, seq.wrapping_add(1), &s)?;
            }
            Some(0x01) if plugin == "caching_sha2_password" => match p.get(1) {
                Some(3) => {} // fast authentication succeeded; OK follows
                Some(4) => {
                    return Ok(Outcome::unknown(
                        "the server wants full caching_sha2_password authentication (the password over TLS or RSA): not sent",
                    ));
                }
                _ => return Ok(Outcome::unknown("unexpected caching_sha2_password answer")),
            },
            _ => return Ok(Outcome::unknown("unexpected packet during login")),
        }
    }
    Ok(Outcome::unknown(
        "the login did not end after four round trips",
    ))
}

// ---------------------------------------------------------------- Redis

fn resp_command(args: &[&str]) -> Vec<u8> {
    let mut m = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        m.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        m.extend_from_slice(a.as_bytes());
        m.extend_from_slice(b"\r\n");
    }
    m
}

fn resp_line(c: &mut Conn<'_>) -> std::io::Result<String> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while line.len() < 4096 {
        c.read_exact(&mut b)?;
        if b[0] == b'\n' {
            break;
        }
        line.push(b[0]);
    }
    let line = line.strip_suffix(b"\r").unwrap_or(&line);
    Ok(String::from_utf8_lossy(line).into_owned())
}

fn redis_login(c: &mut Conn<'_>, user: &str, password: &str) -> std::io::Result<Outcome> {
    let cmd = if user.is_empty() {
        resp_command(&["AUTH", password])
    } else {
        resp_command(&["AUTH", user, password])
    };
    c.write(&cmd)?;
    let reply = resp_line(c)?;
    let _ = c.write(&resp_command(&["QUIT"]));
    let upper = reply.to_ascii_uppercase();
    Ok(if reply.starts_with("+OK") {
        live("the server accepted AUTH")
    } else if upper.starts_with("-WRONGPASS") || upper.contains("INVALID PASSWORD") {
        invalid(crate::excerpt(&reply))
    } else if upper.contains("WITHOUT ANY PASSWORD CONFIGURED") {
        Outcome::unknown(
            "the server has no password: anyone who can reach it has access, whatever the URI says",
        )
    } else {
        Outcome::unknown(crate::excerpt(&reply))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677, section 3.
    #[test]
    fn scram_matches_the_rfc_7677_example() {
        let mut s = Scram::with_nonce("pencil", "rOprNGfwEbeRWgbNEkqO").with_user("user");
        assert_eq!(s.client_first(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let fin = s.client_final(server_first).unwrap();
        assert_eq!(
            fin,
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        assert!(s.server_final_ok("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="));
        assert!(!s.server_final_ok("v=AAAATRBi23WpRR/wtup+mMhUZUn/dkB2fnhSd62t8w0="));
    }

    #[test]
    fn scram_refuses_a_foreign_nonce_and_huge_iteration_counts() {
        let mut s = Scram::with_nonce("pw", "abc");
        assert!(s.client_final("r=zzz,s=AAAA,i=4096").is_err());
        assert!(s.client_final("r=abcd,s=AAAA,i=4000000000").is_err());
        assert!(s.client_final("garbage").is_err());
    }

    #[test]
    fn md5_proof_has_postgres_shape() {
        // md5(md5(password + user) + salt), hex, with an "md5" prefix.
        let p = pg_md5("u", "p", &[1, 2, 3, 4]);
        assert!(p.starts_with("md5") && p.len() == 35);
        assert_ne!(p, pg_md5("u", "q", &[1, 2, 3, 4]));
    }

    #[test]
    fn hosts_split_with_default_ports() {
        assert_eq!(split_host("db:6543", 5432).unwrap(), ("db".into(), 6543));
        assert_eq!(split_host("db", 5432).unwrap(), ("db".into(), 5432));
        assert!(split_host("db:x", 5432).is_err());
    }
}

//! Database connection strings, through the verification engine: found by
//! the scanner's own rules, then logged in to (1) loopback servers started
//! here that speak the PostgreSQL and MySQL login protocols and check the
//! proofs with their own arithmetic, and (2) the real PostgreSQL and Redis
//! servers on 127.0.0.1 that `scripts/install-test-deps.sh` makes sure are
//! running. Nothing here reaches another host.

use keytrail_testkit::secrets::FakeSecrets;
use keytrail_types::{Finding, VerificationStatus};
use keytrail_verify::{Options, Verifier};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

/// Scan `text` with the builtin rules and return the findings of `rule`.
fn scan(text: &str, rule: &str) -> Vec<Finding> {
    let (rules, diags) = keytrail_rules::builtin();
    assert!(diags.is_empty(), "{diags:?}");
    let (scanner, diags) = keytrail_scan::Scanner::new(rules);
    assert!(diags.iter().all(|d| !d.is_error), "{diags:?}");
    let mut agg = keytrail_scan::Aggregator::new();
    for b in scanner.scan_bytes("app.env", &keytrail_types::Origin::File, text.as_bytes()) {
        agg.add(&scanner, b);
    }
    let v: Vec<Finding> = agg
        .finish()
        .into_iter()
        .filter(|f| f.rule_id == rule)
        .collect();
    assert!(!v.is_empty(), "{rule} did not match {text:?}");
    v
}

fn verify(findings: &mut [Finding]) {
    let v = Verifier::new(Options {
        timeout: Duration::from_secs(5),
        ..Options::default()
    })
    .unwrap();
    v.verify(findings);
}

fn status(f: &Finding) -> VerificationStatus {
    f.verification.as_ref().expect("verified").status
}

fn detail(f: &Finding) -> String {
    f.verification
        .as_ref()
        .and_then(|v| v.detail.clone())
        .unwrap_or_default()
}

fn password(g: &mut FakeSecrets) -> String {
    g.chars(
        b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789",
        20,
    )
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

// ---------------------------------------------------------------- PostgreSQL

fn pg_read(s: &mut TcpStream, tagged: bool) -> (u8, Vec<u8>) {
    let mut tag = [0u8; 1];
    if tagged {
        s.read_exact(&mut tag).unwrap();
    }
    let mut len = [0u8; 4];
    s.read_exact(&mut len).unwrap();
    let mut body = vec![0; u32::from_be_bytes(len) as usize - 4];
    s.read_exact(&mut body).unwrap();
    (tag[0], body)
}

fn pg_write(s: &mut TcpStream, tag: u8, body: &[u8]) {
    let mut m = vec![tag];
    m.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    m.extend_from_slice(body);
    s.write_all(&m).unwrap();
}

/// A PostgreSQL server that asks for `method` (3 = clear, 5 = MD5) and
/// accepts `password` for `user`.
fn pg_server(
    user: &'static str,
    password: String,
    method: u32,
) -> (u16, std::thread::JoinHandle<Vec<u8>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let (_, startup) = pg_read(&mut s, false);
        let text = String::from_utf8_lossy(&startup[4..]).into_owned();
        assert!(text.contains(&format!("user\0{user}\0")), "{text:?}");
        let salt = [7u8, 1, 9, 3];
        let mut r = method.to_be_bytes().to_vec();
        if method == 5 {
            r.extend_from_slice(&salt);
        }
        pg_write(&mut s, b'R', &r);
        if method == 3 {
            // The client must not answer a clear-password request.
            let mut rest = Vec::new();
            let _ = s.read_to_end(&mut rest);
            return rest;
        }
        let (tag, body) = pg_read(&mut s, true);
        assert_eq!(tag, b'p');
        // md5(md5(password || user) || salt), computed here with the md-5 crate.
        use md5::Digest;
        let inner = hex(&md5::Md5::digest(format!("{password}{user}").as_bytes()));
        let mut outer = md5::Md5::new();
        outer.update(inner.as_bytes());
        outer.update(salt);
        let expected = format!("md5{}\0", hex(&outer.finalize()));
        if body == expected.as_bytes() {
            pg_write(&mut s, b'R', &0u32.to_be_bytes());
        } else {
            pg_write(
                &mut s,
                b'E',
                format!("SFATAL\0C28P01\0Mpassword authentication failed for user \"{user}\"\0\0")
                    .as_bytes(),
            );
        }
        body
    });
    (port, h)
}

#[test]
fn postgres_md5_login_decides_live_and_invalid() {
    let mut g = FakeSecrets::new(11);
    let right = password(&mut g);
    let (port, h) = pg_server("app_user", right.clone(), 5);
    let mut f = scan(
        &format!("DATABASE_URL=postgres://app_user:{right}@127.0.0.1:{port}/app\n"),
        "database.postgres",
    );
    verify(&mut f);
    h.join().unwrap();
    assert_eq!(status(&f[0]), VerificationStatus::Live, "{}", detail(&f[0]));
    let v = f[0].verification.as_ref().unwrap();
    assert_eq!(v.verifier.as_deref(), Some("database.postgres"));
    assert!(
        v.identity
            .iter()
            .any(|(k, x)| k == "user" && x == "app_user")
    );

    let wrong = password(&mut g);
    let (port, h) = pg_server("app_user", right.clone(), 5);
    let mut f = scan(
        &format!("DATABASE_URL=postgresql://app_user:{wrong}@127.0.0.1:{port}/app\n"),
        "database.postgres",
    );
    verify(&mut f);
    let sent = h.join().unwrap();
    assert_eq!(
        status(&f[0]),
        VerificationStatus::Invalid,
        "{}",
        detail(&f[0])
    );
    assert!(detail(&f[0]).contains("28P01"), "{}", detail(&f[0]));
    // MD5 sends a proof, never the password.
    assert!(!String::from_utf8_lossy(&sent).contains(&wrong));
}

#[test]
fn postgres_clear_password_requests_get_nothing() {
    let mut g = FakeSecrets::new(12);
    let pw = password(&mut g);
    let (port, h) = pg_server("app_user", pw.clone(), 3);
    let mut f = scan(
        &format!("DATABASE_URL=postgres://app_user:{pw}@127.0.0.1:{port}/app\n"),
        "database.postgres",
    );
    verify(&mut f);
    let after = h.join().unwrap();
    assert_eq!(status(&f[0]), VerificationStatus::Unknown);
    assert!(detail(&f[0]).contains("in clear"), "{}", detail(&f[0]));
    assert!(
        !String::from_utf8_lossy(&after).contains(&pw),
        "the password was sent"
    );
}

/// The real server on 127.0.0.1:5432 (trust authentication for local
/// connections, as the test machines run it): the startup and login
/// protocol against real PostgreSQL.
#[test]
fn real_postgres_accepts_the_login() {
    TcpStream::connect("127.0.0.1:5432").expect(
        "PostgreSQL must listen on 127.0.0.1:5432 (scripts/install-test-deps.sh starts it)",
    );
    let mut g = FakeSecrets::new(13);
    let pw = password(&mut g);
    let mut f = scan(
        &format!("DATABASE_URL=postgres://postgres:{pw}@127.0.0.1:5432/postgres\n"),
        "database.postgres",
    );
    verify(&mut f);
    assert_eq!(status(&f[0]), VerificationStatus::Live, "{}", detail(&f[0]));
}

#[test]
fn a_closed_port_a_garbage_server_and_a_silent_server_are_unknown() {
    let mut g = FakeSecrets::new(14);
    let pw = password(&mut g);
    // Closed: bind, take the port, drop the listener.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut f = scan(
        &format!("DATABASE_URL=postgres://app:{pw}@127.0.0.1:{port}/app\n"),
        "database.postgres",
    );
    verify(&mut f);
    assert_eq!(status(&f[0]), VerificationStatus::Unknown);

    // Garbage: an HTTP answer, and a message claiming 2 GB.
    for answer in [
        &b"HTTP/1.1 400 Bad Request\r\n\r\n"[..],
        &b"R\x7f\xff\xff\xff"[..],
    ] {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let answer = answer.to_vec();
        let h = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut b = [0u8; 256];
            let _ = s.read(&mut b);
            let _ = s.write_all(&answer);
            std::thread::sleep(Duration::from_millis(200));
        });
        let mut f = scan(
            &format!("DATABASE_URL=postgres://app:{pw}@127.0.0.1:{port}/app\n"),
            "database.postgres",
        );
        verify(&mut f);
        h.join().unwrap();
        assert_eq!(
            status(&f[0]),
            VerificationStatus::Unknown,
            "{}",
            detail(&f[0])
        );
    }

    // Silent: accepts and never answers; the timeout ends it.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        std::thread::sleep(Duration::from_secs(7));
        drop(s);
    });
    let mut f = scan(
        &format!("DATABASE_URL=mysql://app:{pw}@127.0.0.1:{port}/app\n"),
        "database.mysql",
    );
    let v = Verifier::new(Options {
        timeout: Duration::from_secs(1),
        ..Options::default()
    })
    .unwrap();
    let t = std::time::Instant::now();
    v.verify(&mut f);
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert_eq!(status(&f[0]), VerificationStatus::Unknown);
    h.join().unwrap();
}

// ---------------------------------------------------------------- MySQL

fn my_write(s: &mut TcpStream, seq: u8, body: &[u8]) {
    let len = (body.len() as u32).to_le_bytes();
    let mut m = vec![len[0], len[1], len[2], seq];
    m.extend_from_slice(body);
    s.write_all(&m).unwrap();
}

fn my_read(s: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut h = [0u8; 4];
    s.read_exact(&mut h).unwrap();
    let mut b = vec![0; u32::from_le_bytes([h[0], h[1], h[2], 0]) as usize];
    s.read_exact(&mut b).unwrap();
    (h[3], b)
}

fn sha1(b: &[u8]) -> Vec<u8> {
    use sha1::Digest;
    sha1::Sha1::digest(b).to_vec()
}

/// A MariaDB-like server offering `mysql_native_password`, accepting
/// `password` for `user`; with `switch`, it first asks to switch plugin
/// with a new nonce.
fn my_server(
    user: &'static str,
    password: String,
    switch: bool,
) -> (u16, std::thread::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let n1 = *b"abcdefgh";
        let n2 = *b"ijklmnopqrst";
        let mut hs = vec![10u8];
        hs.extend_from_slice(b"10.11.0-MariaDB-test\0");
        hs.extend_from_slice(&7u32.to_le_bytes());
        hs.extend_from_slice(&n1);
        hs.push(0);
        let caps: u32 = 0xffff_f7ff;
        hs.extend_from_slice(&(caps as u16).to_le_bytes());
        hs.push(45);
        hs.extend_from_slice(&2u16.to_le_bytes());
        hs.extend_from_slice(&((caps >> 16) as u16).to_le_bytes());
        hs.push(21);
        hs.extend_from_slice(&[0; 10]);
        hs.extend_from_slice(&n2);
        hs.push(0);
        hs.extend_from_slice(b"mysql_native_password\0");
        my_write(&mut s, 0, &hs);
        let (seq, resp) = my_read(&mut s);
        assert_eq!(seq, 1);
        // flags(4) max(4) charset(1) filler(23) user NUL len scramble plugin NUL
        let rest = &resp[32..];
        let end = rest.iter().position(|&b| b == 0).unwrap();
        assert_eq!(&rest[..end], user.as_bytes());
        let len = rest[end + 1] as usize;
        let mut scramble = rest[end + 2..end + 2 + len].to_vec();
        let mut nonce: Vec<u8> = n1.iter().chain(&n2).copied().collect();
        let mut seq = 2;
        if switch {
            let n3 = b"ZYXWVUTSRQPONMLKJIHG".to_vec();
            let mut sw = vec![0xfe];
            sw.extend_from_slice(b"mysql_native_password\0");
            sw.extend_from_slice(&n3);
            sw.push(0);
            my_write(&mut s, seq, &sw);
            let (_, again) = my_read(&mut s);
            scramble = again;
            nonce = n3;
            seq += 2;
        }
        let h1 = sha1(password.as_bytes());
        let mut x = nonce.clone();
        x.extend_from_slice(&sha1(&h1));
        let expected: Vec<u8> = h1.iter().zip(sha1(&x)).map(|(a, b)| a ^ b).collect();
        if scramble == expected {
            my_write(&mut s, seq, &[0, 0, 0, 2, 0, 0, 0]);
        } else {
            let mut e = vec![0xff];
            e.extend_from_slice(&1045u16.to_le_bytes());
            e.extend_from_slice(b"#28000Access denied for user");
            my_write(&mut s, seq, &e);
        }
    });
    (port, h)
}

#[test]
fn mysql_native_password_decides_live_and_invalid_with_and_without_a_plugin_switch() {
    let mut g = FakeSecrets::new(21);
    for switch in [false, true] {
        let right = password(&mut g);
        let (port, h) = my_server("wordpress", right.clone(), switch);
        let mut f = scan(
            &format!("DB_URL=mysql://wordpress:{right}@127.0.0.1:{port}/wp\n"),
            "database.mysql",
        );
        verify(&mut f);
        h.join().unwrap();
        assert_eq!(status(&f[0]), VerificationStatus::Live, "{}", detail(&f[0]));

        let wrong = password(&mut g);
        let (port, h) = my_server("wordpress", right.clone(), switch);
        let mut f = scan(
            &format!("DB_URL=mariadb://wordpress:{wrong}@127.0.0.1:{port}/wp\n"),
            "database.mysql",
        );
        verify(&mut f);
        h.join().unwrap();
        assert_eq!(
            status(&f[0]),
            VerificationStatus::Invalid,
            "{}",
            detail(&f[0])
        );
        assert!(detail(&f[0]).contains("1045"), "{}", detail(&f[0]));
    }
}

// ---------------------------------------------------------------- Redis

fn redis_command(args: &[&str]) -> String {
    let mut s = TcpStream::connect("127.0.0.1:6379")
        .expect("Redis must listen on 127.0.0.1:6379 (scripts/install-test-deps.sh starts it)");
    let mut m = format!("*{}\r\n", args.len());
    for a in args {
        m.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    s.write_all(m.as_bytes()).unwrap();
    let mut b = [0u8; 512];
    let n = s.read(&mut b).unwrap();
    String::from_utf8_lossy(&b[..n]).into_owned()
}

/// The real Redis on 127.0.0.1:6379 with an ACL user made for this test.
#[test]
fn real_redis_acl_user_is_live_with_its_password_and_invalid_without() {
    let mut g = FakeSecrets::new(31);
    let pw = password(&mut g);
    let user = format!("kt-verify-{}", std::process::id());
    let made = redis_command(&[
        "ACL",
        "SETUSER",
        &user,
        "on",
        &format!(">{pw}"),
        "~kt:*",
        "+get",
    ]);
    assert!(made.starts_with("+OK"), "{made}");
    let mut f = scan(
        &format!("REDIS_URL=redis://{user}:{pw}@127.0.0.1:6379/0\n"),
        "database.redis",
    );
    verify(&mut f);
    assert_eq!(status(&f[0]), VerificationStatus::Live, "{}", detail(&f[0]));

    let wrong = password(&mut g);
    let mut f = scan(
        &format!("REDIS_URL=redis://{user}:{wrong}@127.0.0.1:6379/0\n"),
        "database.redis",
    );
    verify(&mut f);
    assert_eq!(
        status(&f[0]),
        VerificationStatus::Invalid,
        "{}",
        detail(&f[0])
    );
    redis_command(&["ACL", "DELUSER", &user]);

    // TLS URIs are not sent anywhere yet.
    let mut f = scan(
        &format!("REDIS_URL=rediss://{user}:{pw}@127.0.0.1:6379/0\n"),
        "database.redis",
    );
    verify(&mut f);
    assert_eq!(status(&f[0]), VerificationStatus::Unknown);
}

//! The redact engine end to end: known values in every encoded form,
//! secrets split across tiny reads, rule matches over a realistic corpus,
//! binary input, very long lines in bounded memory, and line-by-line
//! liveness. Every secret is generated at test time.

use keytrail_ci::redact::forms::{base64, base64_std};
use keytrail_ci::redact::{MaskStyle, Redactor, RedactorBuilder};
use keytrail_scan::Scanner;
use keytrail_testkit::secrets::{BASE64, FakeSecrets};
use keytrail_types::Secret;
use std::cell::RefCell;
use std::io::{Read, Write};
use std::rc::Rc;

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const B64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(hay, needle).is_some()
}

/// The characters of `base64(prefix + secret + suffix)` that depend only
/// on secret bytes (whole 3-byte groups inside the secret), computed
/// independently of the engine's own core computation.
fn secret_only_chars(prefix_len: usize, secret_len: usize, encoded: &[u8]) -> Vec<u8> {
    let first_group = prefix_len.div_ceil(3);
    let last_group_end = (prefix_len + secret_len) / 3;
    encoded[first_group * 4..last_group_end * 4].to_vec()
}

/// Assert that no 12-byte window of `core` survives in `out`.
fn assert_no_window(out: &[u8], core: &[u8], what: &str) {
    assert!(core.len() >= 12, "{what}: core too short to test");
    for w in core.windows(12) {
        assert!(
            !contains(out, w),
            "{what}: a piece of the encoded secret survived"
        );
    }
}

fn redactor(value: &str, read_size: usize) -> Redactor {
    let (r, warnings) = RedactorBuilder::new()
        .known("env:DEPLOY_KEY", Secret::new(value.as_bytes().to_vec()))
        .read_size(read_size)
        .build();
    assert!(warnings.is_empty());
    r
}

fn hex(data: &[u8], upper: bool) -> String {
    data.iter()
        .map(|b| {
            if upper {
                format!("{b:02X}")
            } else {
                format!("{b:02x}")
            }
        })
        .collect()
}

fn percent(data: &[u8], upper: bool) -> String {
    data.iter()
        .map(|&b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else if upper {
                format!("%{b:02X}")
            } else {
                format!("%{b:02x}")
            }
        })
        .collect()
}

#[test]
fn every_encoded_form_is_masked_at_every_read_size() {
    let mut g = FakeSecrets::new(7);
    // A value with characters every encoding treats specially.
    let value = format!("{}/\"q\\ +{}", g.chars(BASE64, 20), g.chars(BASE64, 12));
    let v = value.as_bytes();
    let mut log = Vec::new();
    let mut cores: Vec<(String, Vec<u8>)> = Vec::new();
    writeln!(log, "raw: {value} end").unwrap();
    cores.push(("raw".into(), v.to_vec()));
    // Base64 and base64url at all three alignments, inside longer streams.
    for prefix in ["u:", "us:", "use:", "user:", "login:"] {
        let mut data = prefix.as_bytes().to_vec();
        data.extend_from_slice(v);
        data.extend_from_slice(b"@host");
        for (name, alphabet) in [("base64", B64), ("base64url", B64URL)] {
            let enc = base64(&data, alphabet, true);
            writeln!(
                log,
                "Authorization: Basic {}",
                String::from_utf8_lossy(&enc)
            )
            .unwrap();
            cores.push((
                format!("{name} prefix {}", prefix.len()),
                secret_only_chars(prefix.len(), v.len(), &enc),
            ));
        }
    }
    let padded = base64_std(v);
    writeln!(log, "b64 alone {}", String::from_utf8_lossy(&padded)).unwrap();
    cores.push(("base64 alone".into(), padded));
    for upper in [true, false] {
        let p = percent(v, upper);
        writeln!(log, "GET /login?password={p}&x=1").unwrap();
        cores.push((format!("percent upper={upper}"), p.into_bytes()));
        let h = hex(v, upper);
        writeln!(log, "hexdump {h}").unwrap();
        cores.push((format!("hex upper={upper}"), h.into_bytes()));
    }
    let json = serde_json::to_string(&value).unwrap();
    let json_inner = &json[1..json.len() - 1];
    writeln!(log, "{{\"token\":{json}}}").unwrap();
    cores.push(("json".into(), json_inner.as_bytes().to_vec()));
    let json_slash = json_inner.replace('/', "\\/");
    writeln!(log, "{{\"token\":\"{json_slash}\"}}").unwrap();
    cores.push(("json slash".into(), json_slash.into_bytes()));

    for read_size in [1, 2, 3, 5, 7, 64, 1 << 20] {
        let r = redactor(&value, read_size);
        let out = r.redact_bytes(&log);
        for (what, core) in &cores {
            assert_no_window(&out, core, &format!("{what} (read size {read_size})"));
        }
        let text = String::from_utf8_lossy(&out);
        // Everything around the secrets is still there, line for line.
        assert_eq!(text.lines().count(), log.split(|&b| b == b'\n').count() - 1);
        assert!(
            text.contains("raw: [REDACTED:env:DEPLOY_KEY] end"),
            "{text}"
        );
        assert!(text.contains("GET /login?password=[REDACTED:env:DEPLOY_KEY]&x=1"));
        assert_eq!(
            text.matches("[REDACTED:env:DEPLOY_KEY]").count(),
            cores.len(),
            "one mask per planted form at read size {read_size}"
        );
    }
}

#[test]
fn secret_split_at_every_offset_is_masked() {
    let mut g = FakeSecrets::new(11);
    let value = g.chars(BASE64, 32);
    let line = format!("key={value};\n");
    for read_size in 1..=line.len() + 1 {
        let out = redactor(&value, read_size).redact_bytes(line.as_bytes());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "key=[REDACTED:env:DEPLOY_KEY];\n",
            "read size {read_size}"
        );
    }
}

/// Small sets of known values go to the SIMD searcher, large ones to the
/// DFA: both must mask the same forms the same way.
#[test]
fn many_known_values_mask_like_few() {
    let mut g = FakeSecrets::new(23);
    let values: Vec<String> = (0..12).map(|_| g.chars(BASE64, 28)).collect();
    let mut log = Vec::new();
    for (i, v) in values.iter().enumerate() {
        writeln!(log, "step {i}: raw {v} hex {}", hex(v.as_bytes(), false)).unwrap();
        writeln!(
            log,
            "b64 {}",
            String::from_utf8_lossy(&base64_std(v.as_bytes()))
        )
        .unwrap();
    }
    let build = |vals: &[String]| {
        let mut b = RedactorBuilder::new().read_size(4096);
        for (i, v) in vals.iter().enumerate() {
            b = b.known(format!("env:V{i}"), Secret::new(v.as_bytes().to_vec()));
        }
        b.build().0
    };
    let all = build(&values);
    assert!(format!("{all:?}").contains("dfa"), "{all:?}");
    let out_all = all.redact_bytes(&log);
    for (i, v) in values.iter().enumerate() {
        let one = build(std::slice::from_ref(v));
        assert!(format!("{one:?}").contains("packed"), "{one:?}");
        let out_one = String::from_utf8(one.redact_bytes(&log)).unwrap();
        let line =
            |text: &str, n: usize| text.lines().nth(n).unwrap().replace("V0", &format!("V{i}"));
        let text_all = String::from_utf8(out_all.clone()).unwrap();
        for n in [2 * i, 2 * i + 1] {
            assert_eq!(line(&text_all, n), line(&out_one, n), "value {i}, line {n}");
        }
        assert!(!contains(&out_all, v.as_bytes()));
        assert!(!contains(&out_all, &base64_std(v.as_bytes())[..20]));
    }
}

fn builtin_scanner() -> Scanner {
    let (rules, _) = keytrail_rules::builtin();
    Scanner::new(rules).0
}

#[test]
fn rule_matches_in_a_corpus_never_survive() {
    let (corpus, planted) = keytrail_testkit::secrets::source_like_corpus(2 << 20, 20_000, 3);
    assert!(planted.len() > 50);
    let (r, _) = RedactorBuilder::new()
        .scanner(builtin_scanner())
        .read_size(4093)
        .build();
    let out = r.redact_bytes(&corpus);
    let mut survived = Vec::new();
    for p in &planted {
        // The longest single-line piece of the secret (PEM keys span lines).
        let piece = p
            .secret
            .split(['\n'])
            .flat_map(|l| l.split("\\n"))
            .max_by_key(|l| l.len())
            .unwrap();
        if piece.len() >= 12 && contains(&out, piece.as_bytes()) {
            survived.push(p.kind);
        }
    }
    assert!(
        survived.is_empty(),
        "unmasked planted secrets: {survived:?}"
    );
    assert!(
        out.len() < corpus.len(),
        "masks are shorter than the secrets"
    );
}

#[test]
fn rule_match_split_across_tiny_reads() {
    let mut g = FakeSecrets::new(5);
    let token = g.github_classic();
    let text = format!("Run git push\nremote: using {token} for auth\ndone\n");
    let (r, _) = RedactorBuilder::new()
        .scanner(builtin_scanner())
        .read_size(3)
        .build();
    let out = String::from_utf8(r.redact_bytes(text.as_bytes())).unwrap();
    assert!(!out.contains(&token));
    assert!(out.contains("remote: using [REDACTED:github."), "{out}");
    assert!(out.ends_with("for auth\ndone\n"));
}

#[test]
fn binary_passes_through_except_masked_secret() {
    let mut g = FakeSecrets::new(9);
    let value = g.chars(BASE64, 24);
    let mut data: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
    let at = 150_001;
    data.splice(at..at, value.bytes());
    let (r, _) = RedactorBuilder::new()
        .known("k", Secret::new(value.clone().into_bytes()))
        .mask(MaskStyle::Fixed("***".into()))
        .read_size(4096)
        .build();
    let out = r.redact_bytes(&data);
    let mut expected: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
    expected.splice(at..at, b"***".iter().copied());
    assert!(out == expected, "binary bytes changed");
}

/// A reader serving `total` bytes of one endless line with secrets, and a
/// writer checking that output keeps up with input.
struct Shared {
    given: usize,
    written: usize,
    max_lag: usize,
}

struct LongLine {
    state: Rc<RefCell<Shared>>,
    data: Vec<u8>,
    pos: usize,
    chunk: usize,
}

impl Read for LongLine {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.chunk).min(self.data.len() - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        self.state.borrow_mut().given += n;
        Ok(n)
    }
}

struct Lagging {
    state: Rc<RefCell<Shared>>,
    out: Vec<u8>,
}

impl Write for Lagging {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.out.extend_from_slice(buf);
        let mut s = self.state.borrow_mut();
        s.written += buf.len();
        let lag = s.given.saturating_sub(s.written);
        s.max_lag = s.max_lag.max(lag);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn very_long_line_is_processed_in_bounded_windows() {
    let mut g = FakeSecrets::new(13);
    let value = g.chars(BASE64, 40);
    let filler = b"0123456789abcdefghijklmnopqrstuvwxyz-";
    let mut data = Vec::new();
    let mut expected = Vec::new();
    let mut i = 0;
    while data.len() < 6 << 20 {
        data.extend_from_slice(filler);
        expected.extend_from_slice(filler);
        i += 1;
        if i % 9_001 == 0 {
            data.extend_from_slice(value.as_bytes());
            expected.extend_from_slice(b"***");
        }
    }
    let max_window = 256 << 10;
    let (r, _) = RedactorBuilder::new()
        .known("k", Secret::new(value.into_bytes()))
        .mask(MaskStyle::Fixed("***".into()))
        .read_size(65_521)
        .max_window(max_window)
        .build();
    let state = Rc::new(RefCell::new(Shared {
        given: 0,
        written: 0,
        max_lag: 0,
    }));
    let reader = LongLine {
        state: state.clone(),
        data,
        pos: 0,
        chunk: 65_521,
    };
    let mut w = Lagging {
        state: state.clone(),
        out: Vec::new(),
    };
    r.redact_stream(reader, &mut w).unwrap();
    assert!(w.out == expected, "long-line output differs");
    let lag = state.borrow().max_lag;
    // Masks shrink output a little; the held-back input stays bounded.
    assert!(
        lag <= max_window + 65_521 + r.overlap() + (64 << 10),
        "held back {lag} bytes"
    );
}

/// A reader that serves lines one read at a time and checks that each
/// earlier line was already written (and flushed) before the next read.
struct Live {
    lines: Vec<Vec<u8>>,
    next: usize,
    seen: Rc<RefCell<Vec<u8>>>,
    flushed: Rc<RefCell<usize>>,
    expect: Vec<Vec<u8>>,
}

impl Read for Live {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.next > 0 {
            let flushed = *self.flushed.borrow();
            let seen = self.seen.borrow();
            let want: Vec<u8> = self.expect[..self.next].concat();
            assert_eq!(
                &seen[..flushed.min(seen.len())],
                &want[..],
                "line {} not flushed before the next read",
                self.next
            );
        }
        let Some(line) = self.lines.get(self.next) else {
            return Ok(0);
        };
        buf[..line.len()].copy_from_slice(line);
        self.next += 1;
        Ok(line.len())
    }
}

struct Recording {
    seen: Rc<RefCell<Vec<u8>>>,
    flushed: Rc<RefCell<usize>>,
}

impl Write for Recording {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.seen.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        *self.flushed.borrow_mut() = self.seen.borrow().len();
        Ok(())
    }
}

#[test]
fn each_complete_line_is_flushed_before_the_next_read() {
    let mut g = FakeSecrets::new(17);
    let value = g.chars(BASE64, 30);
    let lines: Vec<Vec<u8>> = vec![
        b"step 1 starting\n".to_vec(),
        format!("token={value}\n").into_bytes(),
        b"step 2 done\n".to_vec(),
    ];
    let expect: Vec<Vec<u8>> = vec![
        b"step 1 starting\n".to_vec(),
        b"token=[REDACTED:k]\n".to_vec(),
        b"step 2 done\n".to_vec(),
    ];
    let seen = Rc::new(RefCell::new(Vec::new()));
    let flushed = Rc::new(RefCell::new(0));
    let (r, _) = RedactorBuilder::new()
        .known("k", Secret::new(value.into_bytes()))
        .build();
    let reader = Live {
        lines,
        next: 0,
        seen: seen.clone(),
        flushed: flushed.clone(),
        expect: expect.clone(),
    };
    r.redact_stream(
        reader,
        Recording {
            seen: seen.clone(),
            flushed,
        },
    )
    .unwrap();
    assert_eq!(*seen.borrow(), expect.concat());
}

#[test]
fn multi_line_known_value_masked_line_by_line() {
    let mut g = FakeSecrets::new(19);
    let key = g.pem_rsa_private_key();
    let (r, _) = RedactorBuilder::new()
        .known("secrets-file:1", Secret::new(key.clone().into_bytes()))
        .read_size(5)
        .build();
    let out =
        String::from_utf8(r.redact_bytes(format!("$ cat key\n{key}ok\n").as_bytes())).unwrap();
    for l in key.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!out.contains(l), "a key line survived");
    }
    assert!(out.ends_with("ok\n"));
}

fn utf16(text: &str, big_endian: bool) -> Vec<u8> {
    text.encode_utf16()
        .flat_map(|u| {
            if big_endian {
                u.to_be_bytes()
            } else {
                u.to_le_bytes()
            }
        })
        .collect()
}

fn from_utf16(bytes: &[u8], big_endian: bool) -> String {
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|b| {
            if big_endian {
                u16::from_be_bytes([b[0], b[1]])
            } else {
                u16::from_le_bytes([b[0], b[1]])
            }
        })
        .collect();
    String::from_utf16(&units).expect("output stays valid UTF-16")
}

/// A token written in UTF-16 (PowerShell, Windows tools), by rule and as
/// a `--secret-env` value, in both byte orders and at tiny read sizes: the
/// secret is masked, the mask is UTF-16 too, and the rest of the stream
/// still decodes, next to a plain line that stays as it was.
#[test]
fn utf16_secrets_are_masked_by_rule_and_by_known_value() {
    let mut g = FakeSecrets::new(16);
    let token = g.github_classic();
    let known = g.chars(BASE64, 40);
    let text = format!("login {token} ok\r\nenv: {known} end\r\n");
    for be in [false, true] {
        for read_size in [1, 3, 4096] {
            let (r, _) = RedactorBuilder::new()
                .scanner(builtin_scanner())
                .known("env:DEPLOY_KEY", Secret::new(known.as_bytes().to_vec()))
                .read_size(read_size)
                .build();
            let mut input = b"plain line\n".to_vec();
            let wide = utf16(&text, be);
            input.extend_from_slice(&wide);
            let out = r.redact_bytes(&input);
            assert!(out.starts_with(b"plain line\n"));
            let decoded = from_utf16(&out[11..], be);
            assert!(
                !decoded.contains(&token),
                "be={be} read={read_size}: {decoded}"
            );
            assert!(
                !decoded.contains(&known),
                "be={be} read={read_size}: {decoded}"
            );
            assert!(decoded.starts_with("login [REDACTED:github."), "{decoded}");
            assert!(
                decoded.contains("env: [REDACTED:env:DEPLOY_KEY] end\r\n"),
                "{decoded}"
            );
        }
    }
}

/// A secret split by ANSI colour codes (`ghp_ab<ESC>[31mcd…`), by rule and
/// as a known value, is masked whole, escape codes included.
#[test]
fn secrets_split_by_ansi_colour_codes_are_masked() {
    let mut g = FakeSecrets::new(17);
    let token = g.github_classic();
    let known = g.chars(BASE64, 32);
    let split = |s: &str| format!("{}\x1b[1;31m{}\x1b[0m{}", &s[..6], &s[6..20], &s[20..]);
    let text = format!(
        "\x1b[32mok\x1b[0m line\nusing {} now\nkey={} done\n",
        split(&token),
        split(&known)
    );
    for read_size in [2, 4096] {
        let (r, _) = RedactorBuilder::new()
            .scanner(builtin_scanner())
            .known("env:K", Secret::new(known.as_bytes().to_vec()))
            .read_size(read_size)
            .build();
        let out = String::from_utf8(r.redact_bytes(text.as_bytes())).unwrap();
        for piece in [&token[6..20], &token[20..], &known[6..20], &known[20..]] {
            assert!(!out.contains(piece), "read={read_size}: {out:?}");
        }
        assert!(
            out.starts_with("\x1b[32mok\x1b[0m line\nusing [REDACTED:github."),
            "{out:?}"
        );
        assert!(out.ends_with("key=[REDACTED:env:K] done\n"), "{out:?}");
    }
}

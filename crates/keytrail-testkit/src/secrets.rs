//! Fake secrets for tests and benchmarks, generated at test time from a
//! seeded RNG: realistic formats with valid checksums and structures
//! (GitHub, npm, AWS, GCP service accounts, Slack, Stripe, OpenAI,
//! Anthropic, GitLab, JWTs, PEM private keys, database URLs), and
//! [`source_like_corpus`], realistic source-like text with sparse planted
//! secrets and plenty of near-misses (placeholders, digests, references).
//!
//! Nothing here is a real credential. Checksums and encodings are computed
//! here, independently of the scanner (which this crate does not depend on),
//! so `keytrail-scan`'s tests (`tests/fakes.rs`) cross-check its validators
//! against them.

use base64::Engine as _;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Standard base64 with padding.
pub fn encode_base64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// URL-safe base64 without padding (as in JWTs).
fn encode_base64url(data: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

/// GitHub's token checksum: the CRC-32 of the body in base62 (`0-9A-Za-z`),
/// left-padded with `0` to 6 characters.
fn github_checksum(body: &[u8]) -> String {
    let mut n = crc32fast::hash(body);
    let mut digits = [b'0'; 6];
    for d in digits.iter_mut().rev() {
        *d = ALNUM[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8(digits.to_vec()).expect("base62 digits are ASCII")
}

/// `len` random characters of `alphabet`, drawn again until the value has
/// nothing a scanner's placeholder filter could take for filler: no run of
/// five or more equal or consecutive alphanumerics (`aaaaa`, `12345`,
/// `fedcb`), no short unit repeated over the whole value, and at least four
/// distinct characters from twelve on. This is stricter than
/// `keytrail_scan::filters::is_repetitive`, so no generated secret is ever
/// dropped as a placeholder.
pub fn random_string<R: Rng + ?Sized>(rng: &mut R, alphabet: &[u8], len: usize) -> String {
    loop {
        let s: Vec<u8> = (0..len)
            .map(|_| alphabet[rng.random_range(0..alphabet.len())])
            .collect();
        if len < 6 || !looks_like_filler(&s) {
            return String::from_utf8(s).expect("alphabets are ASCII");
        }
    }
}

fn looks_like_filler(s: &[u8]) -> bool {
    let step = |a: u8, b: u8| -> Option<i8> {
        if !a.is_ascii_alphanumeric() || !b.is_ascii_alphanumeric() {
            return (a == b).then_some(0);
        }
        match i16::from(b) - i16::from(a) {
            0 => Some(0),
            1 => Some(1),
            -1 => Some(-1),
            _ => None,
        }
    };
    let (mut run, mut dir) = (1usize, None::<i8>);
    for w in s.windows(2) {
        match step(w[0], w[1]) {
            Some(d) if run == 1 || dir == Some(d) => {
                run += 1;
                dir = Some(d);
            }
            Some(d) => {
                run = 2;
                dir = Some(d);
            }
            None => {
                run = 1;
                dir = None;
            }
        }
        if run >= 5 {
            return true;
        }
    }
    for period in 1..=4 {
        if s.len() >= 3 * period && (period..s.len()).all(|i| s[i] == s[i - period]) {
            return true;
        }
    }
    let mut seen = [false; 256];
    s.iter().for_each(|&c| seen[c as usize] = true);
    s.len() >= 12 && seen.iter().filter(|&&x| x).count() <= 3
}

/// `0-9A-Za-z`.
pub const ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Lowercase hex.
pub const HEX: &[u8] = b"0123456789abcdef";
/// Standard base64 without padding.
pub const BASE64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
/// URL-safe base64 without padding.
pub const BASE64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
/// RFC 4648 base32.
pub const BASE32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
/// Decimal digits.
pub const DIGITS: &[u8] = b"0123456789";
/// Lowercase letters and digits.
pub const LOWER_ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// An AWS access key pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsKeyPair {
    /// `AKIA` + 16 base32 characters.
    pub access_key_id: String,
    /// 40 characters of `[A-Za-z0-9/+]`.
    pub secret_access_key: String,
}

/// A database connection URL and its password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbUrl {
    /// The whole URL.
    pub url: String,
    /// The password part (what a scanner should report).
    pub password: String,
}

/// A deterministic generator of fake secrets.
///
/// ```
/// let mut a = keytrail_testkit::secrets::FakeSecrets::new(42);
/// let mut b = keytrail_testkit::secrets::FakeSecrets::new(42);
/// assert_eq!(a.github_classic(), b.github_classic());
/// assert!(a.github_classic().starts_with("ghp_"));
/// ```
pub struct FakeSecrets {
    rng: StdRng,
}

impl FakeSecrets {
    /// A generator seeded with `seed`: the same seed yields the same secrets.
    pub fn new(seed: u64) -> Self {
        FakeSecrets {
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// The underlying RNG, for callers that need more randomness in step.
    pub fn rng(&mut self) -> &mut StdRng {
        &mut self.rng
    }

    /// `len` random characters of `alphabet` (without the repeated or
    /// sequential runs that scanners treat as placeholders).
    pub fn chars(&mut self, alphabet: &[u8], len: usize) -> String {
        random_string(&mut self.rng, alphabet, len)
    }

    /// `prefix` + `len` random characters of `alphabet`.
    pub fn fake(&mut self, prefix: &str, alphabet: &[u8], len: usize) -> String {
        format!("{prefix}{}", self.chars(alphabet, len))
    }

    /// `prefix` + 30 base62 characters + their CRC-32 checksum (6 base62).
    fn checksummed(&mut self, prefix: &str) -> String {
        let body = self.chars(ALNUM, 30);
        format!("{prefix}{body}{}", github_checksum(body.as_bytes()))
    }

    /// GitHub personal access token (classic), `ghp_`, valid checksum.
    pub fn github_classic(&mut self) -> String {
        self.checksummed("ghp_")
    }
    /// GitHub OAuth access token, `gho_`, valid checksum.
    pub fn github_oauth(&mut self) -> String {
        self.checksummed("gho_")
    }
    /// GitHub App user-to-server token, `ghu_`, valid checksum.
    pub fn github_app_user(&mut self) -> String {
        self.checksummed("ghu_")
    }
    /// GitHub App installation (server-to-server) token, `ghs_`, valid checksum.
    pub fn github_app_installation(&mut self) -> String {
        self.checksummed("ghs_")
    }
    /// GitHub refresh token, `ghr_`, valid checksum.
    pub fn github_refresh(&mut self) -> String {
        self.checksummed("ghr_")
    }
    /// GitHub fine-grained personal access token: `github_pat_` + 22 + `_` + 59.
    pub fn github_fine_grained(&mut self) -> String {
        let a = self.chars(ALNUM, 22);
        let b = self.chars(ALNUM, 59);
        format!("github_pat_{a}_{b}")
    }
    /// A GitHub classic token with a wrong checksum (must not be reported).
    pub fn github_classic_bad_checksum(&mut self) -> String {
        let good = self.github_classic();
        let (head, sum) = good.split_at(good.len() - 6);
        let mut bad: Vec<u8> = sum.bytes().collect();
        bad[5] = if bad[5] == b'Q' { b'R' } else { b'Q' };
        format!("{head}{}", String::from_utf8(bad).expect("ascii"))
    }
    /// npm access token, `npm_`, valid checksum.
    pub fn npm(&mut self) -> String {
        self.checksummed("npm_")
    }

    /// AWS access key id (`AKIA` + 16 base32) and a 40-character secret key.
    pub fn aws_key_pair(&mut self) -> AwsKeyPair {
        AwsKeyPair {
            access_key_id: self.fake("AKIA", BASE32, 16),
            secret_access_key: self.chars(BASE64, 40),
        }
    }

    /// Slack bot token, `xoxb-<team>-<bot>-<24 alnum>`.
    pub fn slack_bot(&mut self) -> String {
        let a = self.fake("", DIGITS, 12);
        let b = self.fake("", DIGITS, 13);
        let c = self.chars(ALNUM, 24);
        format!("xoxb-{}-{}-{c}", nonzero(a), nonzero(b))
    }
    /// Slack user token, `xoxp-<n>-<n>-<n>-<32 hex>`.
    pub fn slack_user(&mut self) -> String {
        let a = nonzero(self.chars(DIGITS, 12));
        let b = nonzero(self.chars(DIGITS, 12));
        let c = nonzero(self.chars(DIGITS, 13));
        let d = self.chars(HEX, 32);
        format!("xoxp-{a}-{b}-{c}-{d}")
    }
    /// Slack incoming webhook URL.
    pub fn slack_webhook(&mut self) -> String {
        let t = self.chars(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 10);
        let b = self.chars(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 10);
        let k = self.chars(ALNUM, 24);
        format!("https://hooks.slack.com/services/T{t}/B{b}/{k}")
    }
    /// Stripe live secret key, `sk_live_` + 24 alnum.
    pub fn stripe_live_secret(&mut self) -> String {
        self.fake("sk_live_", ALNUM, 24)
    }
    /// Stripe live restricted key, `rk_live_` + 24 alnum.
    pub fn stripe_restricted(&mut self) -> String {
        self.fake("rk_live_", ALNUM, 24)
    }
    /// OpenAI project API key: `sk-proj-` + 74 + `T3BlbkFJ` + 74.
    pub fn openai(&mut self) -> String {
        let a = self.chars(ALNUM, 74);
        let b = self.chars(ALNUM, 74);
        format!("sk-proj-{a}T3BlbkFJ{b}")
    }
    /// OpenAI legacy user key: `sk-` + 20 + `T3BlbkFJ` + 20.
    pub fn openai_legacy(&mut self) -> String {
        let a = self.chars(ALNUM, 20);
        let b = self.chars(ALNUM, 20);
        format!("sk-{a}T3BlbkFJ{b}")
    }
    /// Anthropic API key: `sk-ant-api03-` + 93 base64url + `AA`.
    pub fn anthropic(&mut self) -> String {
        format!("sk-ant-api03-{}AA", self.chars(BASE64URL, 93))
    }
    /// GitLab personal access token: `glpat-` + 20 characters.
    pub fn gitlab_pat(&mut self) -> String {
        self.fake("glpat-", ALNUM, 20)
    }

    /// A structurally valid HS256 JWT (random signature).
    pub fn jwt(&mut self) -> String {
        let header = r#"{"alg":"HS256","typ":"JWT"}"#;
        let sub = self.chars(DIGITS, 10);
        let iat = 1_600_000_000 + self.rng.random_range(0..100_000_000u64);
        let payload = format!(
            r#"{{"sub":"{sub}","name":"svc-{}","iat":{iat}}}"#,
            self.chars(LOWER_ALNUM, 6)
        );
        let sig: Vec<u8> = (0..32).map(|_| self.rng.random()).collect();
        format!(
            "{}.{}.{}",
            encode_base64url(header.as_bytes()),
            encode_base64url(payload.as_bytes()),
            encode_base64url(&sig)
        )
    }

    fn random_bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.rng.random()).collect()
    }

    /// A positive DER INTEGER of `n` random bytes.
    fn der_int(&mut self, n: usize) -> Vec<u8> {
        let mut v = self.random_bytes(n);
        v[0] |= 0x80;
        let mut body = vec![0u8];
        body.extend(v);
        der(0x02, &body)
    }

    /// DER of an RSA private key (PKCS#1) with random numbers: parses as
    /// ASN.1, is not a usable key.
    fn rsa_der(&mut self) -> Vec<u8> {
        let mut seq = der(0x02, &[0]);
        seq.extend(self.der_int(256)); // n
        seq.extend(der(0x02, &[0x01, 0x00, 0x01])); // e
        seq.extend(self.der_int(256)); // d
        for _ in 0..5 {
            seq.extend(self.der_int(128)); // p, q, dp, dq, qinv
        }
        der(0x30, &seq)
    }

    /// `-----BEGIN RSA PRIVATE KEY-----` block (PKCS#1), fake body.
    pub fn pem_rsa_private_key(&mut self) -> String {
        let d = self.rsa_der();
        pem("RSA PRIVATE KEY", &d)
    }

    /// `-----BEGIN PRIVATE KEY-----` block (PKCS#8 wrapping RSA), fake body.
    pub fn pem_pkcs8_private_key(&mut self) -> String {
        pem("PRIVATE KEY", &self.pkcs8_der())
    }

    fn pkcs8_der(&mut self) -> Vec<u8> {
        let rsa = self.rsa_der();
        let mut seq = der(0x02, &[0]);
        // AlgorithmIdentifier { rsaEncryption, NULL }
        let mut alg = der(
            0x06,
            &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01],
        );
        alg.extend(der(0x05, &[]));
        seq.extend(der(0x30, &alg));
        seq.extend(der(0x04, &rsa));
        der(0x30, &seq)
    }

    /// `-----BEGIN EC PRIVATE KEY-----` block (SEC1, P-256), fake body.
    pub fn pem_ec_private_key(&mut self) -> String {
        let mut seq = der(0x02, &[1]);
        let k = self.random_bytes(32);
        seq.extend(der(0x04, &k));
        let oid = der(0x06, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]);
        seq.extend(der(0xa0, &oid));
        let mut point = vec![0x00, 0x04];
        point.extend(self.random_bytes(64));
        seq.extend(der(0xa1, &der(0x03, &point)));
        pem("EC PRIVATE KEY", &der(0x30, &seq))
    }

    /// `-----BEGIN OPENSSH PRIVATE KEY-----` block (ed25519 layout), fake body.
    pub fn openssh_private_key(&mut self) -> String {
        let mut v = b"openssh-key-v1\0".to_vec();
        let sshstr = |v: &mut Vec<u8>, s: &[u8]| {
            v.extend((s.len() as u32).to_be_bytes());
            v.extend(s);
        };
        sshstr(&mut v, b"none");
        sshstr(&mut v, b"none");
        sshstr(&mut v, b"");
        v.extend(1u32.to_be_bytes());
        let mut public = Vec::new();
        sshstr(&mut public, b"ssh-ed25519");
        let pk = self.random_bytes(32);
        sshstr(&mut public, &pk);
        sshstr(&mut v, &public);
        let mut private = Vec::new();
        let check: u32 = self.rng.random();
        private.extend(check.to_be_bytes());
        private.extend(check.to_be_bytes());
        sshstr(&mut private, b"ssh-ed25519");
        sshstr(&mut private, &pk);
        let mut sk = self.random_bytes(32);
        sk.extend(&pk);
        sshstr(&mut private, &sk);
        sshstr(&mut private, b"deploy@build");
        let mut pad = 1u8;
        while private.len() % 8 != 0 {
            private.push(pad);
            pad += 1;
        }
        sshstr(&mut v, &private);
        let b = encode_base64(&v);
        let lines: Vec<&str> = b
            .as_bytes()
            .chunks(70)
            .map(|c| std::str::from_utf8(c).expect("ascii"))
            .collect();
        format!(
            "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----\n",
            lines.join("\n")
        )
    }

    /// A GCP service-account key file (JSON), with a fake PKCS#8 key.
    pub fn gcp_service_account_json(&mut self) -> String {
        let project = format!(
            "{}-{}",
            pick(&mut self.rng, &["billing", "data", "ml", "infra", "web"]),
            self.chars(DIGITS, 6)
        );
        let key_id = self.chars(HEX, 40);
        let pem = pem("PRIVATE KEY", &self.pkcs8_der()).replace('\n', "\\n");
        let account = pick(&mut self.rng, &["deployer", "ci-runner", "etl", "backup"]);
        let client_id = nonzero(self.chars(DIGITS, 21));
        format!(
            concat!(
                "{{\n",
                "  \"type\": \"service_account\",\n",
                "  \"project_id\": \"{p}\",\n",
                "  \"private_key_id\": \"{k}\",\n",
                "  \"private_key\": \"{pem}\",\n",
                "  \"client_email\": \"{a}@{p}.iam.gserviceaccount.com\",\n",
                "  \"client_id\": \"{c}\",\n",
                "  \"auth_uri\": \"https://accounts.google.com/o/oauth2/auth\",\n",
                "  \"token_uri\": \"https://oauth2.googleapis.com/token\",\n",
                "  \"auth_provider_x509_cert_url\": \"https://www.googleapis.com/oauth2/v1/certs\",\n",
                "  \"client_x509_cert_url\": \"https://www.googleapis.com/robot/v1/metadata/x509/{a}%40{p}.iam.gserviceaccount.com\",\n",
                "  \"universe_domain\": \"googleapis.com\"\n",
                "}}\n"
            ),
            p = project,
            k = key_id,
            pem = pem,
            a = account,
            c = client_id
        )
    }

    fn db_url(&mut self, scheme: &str, port: u16, host_suffix: &str) -> DbUrl {
        let user = pick(
            &mut self.rng,
            &["app", "svc_orders", "reporting", "admin_rw"],
        )
        .to_string();
        let password = self.chars(ALNUM, 20);
        let host = format!("db-{}.{host_suffix}", self.chars(LOWER_ALNUM, 8));
        let db = pick(&mut self.rng, &["orders", "users", "analytics", "main"]);
        let url = if port == 0 {
            format!("{scheme}://{user}:{password}@{host}/{db}")
        } else {
            format!("{scheme}://{user}:{password}@{host}:{port}/{db}")
        };
        DbUrl { url, password }
    }
    /// A PostgreSQL URL with a random password.
    pub fn postgres_url(&mut self) -> DbUrl {
        self.db_url("postgres", 5432, "internal.corp.net")
    }
    /// A MySQL URL with a random password.
    pub fn mysql_url(&mut self) -> DbUrl {
        self.db_url("mysql", 3306, "eu-west-1.rds.amazonaws.com")
    }
    /// A MongoDB Atlas (`mongodb+srv`) URL with a random password.
    pub fn mongodb_url(&mut self) -> DbUrl {
        self.db_url("mongodb+srv", 0, "mongodb.net")
    }
}

fn nonzero(mut s: String) -> String {
    if s.starts_with('0') {
        s.replace_range(0..1, "7");
    }
    s
}

fn pick<'a>(rng: &mut StdRng, items: &[&'a str]) -> &'a str {
    items[rng.random_range(0..items.len())]
}

/// DER tag-length-value.
fn der(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    let n = body.len();
    if n < 0x80 {
        v.push(n as u8);
    } else if n < 0x100 {
        v.extend([0x81, n as u8]);
    } else {
        v.extend([0x82, (n >> 8) as u8, n as u8]);
    }
    v.extend(body);
    v
}

/// PEM armour with 64-character lines.
fn pem(label: &str, der: &[u8]) -> String {
    let b = encode_base64(der);
    let lines: Vec<&str> = b
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).expect("ascii"))
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

/// A secret planted in a generated corpus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlantedSecret {
    /// What it is: `github_classic`, `aws_secret_key`, `pem_rsa`, `postgres_password`, ….
    pub kind: &'static str,
    /// The secret exactly as it appears in the corpus (a PEM key inside a
    /// JSON string keeps its `\n` escapes).
    pub secret: String,
    /// Byte offset of its first byte.
    pub offset: usize,
    /// 1-based line of its first byte.
    pub line: u64,
}

/// Every kind [`source_like_corpus`] plants, in rotation order.
pub const PLANTED_KINDS: &[&str] = &[
    "github_classic",
    "aws_key_id",
    "aws_secret_key",
    "slack_bot",
    "stripe_live",
    "github_oauth",
    "npm",
    "openai",
    "anthropic",
    "gitlab_pat",
    "jwt",
    "pem_rsa",
    "postgres_password",
    "github_fine_grained",
    "slack_webhook",
    "gcp_service_account",
    "pem_openssh",
    "github_app_installation",
];

/// Generate about `bytes` bytes of realistic source-like text (Python,
/// JavaScript, Go, YAML, shell, JSON, lockfile lines, logs) with one secret
/// planted every `secret_every_bytes` bytes on average (0 = none), rotating
/// through [`PLANTED_KINDS`]. The filler is full of near-misses a precise
/// scanner must ignore: keyword-bearing code (`token = lexer.next()`),
/// placeholders, `${{ secrets.X }}`, digests, UUIDs, integrity hashes,
/// public keys and documentation example keys.
pub fn source_like_corpus(
    bytes: usize,
    secret_every_bytes: usize,
    seed: u64,
) -> (Vec<u8>, Vec<PlantedSecret>) {
    let mut g = FakeSecrets::new(seed);
    let mut out: Vec<u8> = Vec::with_capacity(bytes + 4096);
    let mut planted = Vec::new();
    let mut line: u64 = 1;
    let mut next_secret = if secret_every_bytes == 0 {
        usize::MAX
    } else {
        secret_every_bytes / 2
    };
    let mut kind_i = 0usize;
    let mut filler = String::new();
    while out.len() < bytes {
        if out.len() >= next_secret {
            let kind = PLANTED_KINDS[kind_i % PLANTED_KINDS.len()];
            kind_i += 1;
            plant(&mut g, kind, &mut out, &mut line, &mut planted);
            let jitter = g.rng.random_range(0..secret_every_bytes.max(2) / 2);
            next_secret = out.len() + secret_every_bytes / 2 + jitter;
            continue;
        }
        filler.clear();
        filler_line(&mut g, &mut filler);
        filler.push('\n');
        out.extend_from_slice(filler.as_bytes());
        line += filler.matches('\n').count() as u64;
    }
    (out, planted)
}

/// Append a text containing one or more secrets of `kind`.
fn plant(
    g: &mut FakeSecrets,
    kind: &'static str,
    out: &mut Vec<u8>,
    line: &mut u64,
    planted: &mut Vec<PlantedSecret>,
) {
    let text: String;
    let mut secrets: Vec<(&'static str, String)> = Vec::new();
    match kind {
        "github_classic" => {
            let t = g.github_classic();
            text = format!("    GITHUB_TOKEN = \"{t}\"  # used by the release job\n");
            secrets.push((kind, t));
        }
        "aws_key_id" => {
            // A key id alone (its secret elsewhere); the brackets keep a
            // pair rule from reaching a neighbouring secret.
            let id = g.aws_key_pair().access_key_id;
            text = format!("known_key_ids = [\"{id}\"]\n");
            secrets.push((kind, id));
        }
        "aws_secret_key" => {
            // A pair: one finding, the secret with its key id as context
            // (the id is not reported again on its own).
            let p = g.aws_key_pair();
            text = format!(
                "[default]\naws_access_key_id = {}\naws_secret_access_key = {}\nregion = eu-west-1\n",
                p.access_key_id, p.secret_access_key
            );
            secrets.push(("aws_secret_key", p.secret_access_key));
        }
        "slack_bot" => {
            let t = g.slack_bot();
            text = format!("const slackClient = new WebClient(\"{t}\");\n");
            secrets.push((kind, t));
        }
        "stripe_live" => {
            let t = g.stripe_live_secret();
            text = format!("STRIPE_SECRET_KEY={t}\n");
            secrets.push((kind, t));
        }
        "github_oauth" => {
            let t = g.github_oauth();
            text = format!("  \"access_token\": \"{t}\",\n");
            secrets.push((kind, t));
        }
        "npm" => {
            let t = g.npm();
            text = format!("//registry.npmjs.org/:_authToken={t}\n");
            secrets.push((kind, t));
        }
        "openai" => {
            let t = g.openai();
            text = format!("client = OpenAI(api_key=\"{t}\")\n");
            secrets.push((kind, t));
        }
        "anthropic" => {
            let t = g.anthropic();
            text = format!("export ANTHROPIC_API_KEY='{t}'\n");
            secrets.push((kind, t));
        }
        "gitlab_pat" => {
            let t = g.gitlab_pat();
            text = format!("git clone https://oauth2:{t}@gitlab.example.org/group/project.git\n");
            secrets.push((kind, t));
        }
        "jwt" => {
            let t = g.jwt();
            text = format!("curl -H \"Authorization: Bearer {t}\" https://api.internal/v1/me\n");
            secrets.push((kind, t));
        }
        "pem_rsa" => {
            let t = g.pem_rsa_private_key();
            text = t.clone();
            secrets.push((kind, t.trim_end().to_string()));
        }
        "pem_openssh" => {
            let t = g.openssh_private_key();
            text = t.clone();
            secrets.push((kind, t.trim_end().to_string()));
        }
        "postgres_password" => {
            let u = g.postgres_url();
            text = format!("DATABASE_URL={}\n", u.url);
            secrets.push((kind, u.password));
        }
        "github_fine_grained" => {
            let t = g.github_fine_grained();
            text = format!("gh_token: {t}\n");
            secrets.push((kind, t));
        }
        "slack_webhook" => {
            let t = g.slack_webhook();
            text = format!("SLACK_WEBHOOK_URL = \"{t}\"\n");
            secrets.push((kind, t));
        }
        "gcp_service_account" => {
            let t = g.gcp_service_account_json();
            let start = t.find("-----BEGIN").expect("pem in json");
            let end = t.find("-----END PRIVATE KEY-----").expect("pem end")
                + "-----END PRIVATE KEY-----".len();
            secrets.push((kind, t[start..end].to_string()));
            text = t;
        }
        "github_app_installation" => {
            let t = g.github_app_installation();
            text = format!("\tinstallationToken := \"{t}\"\n");
            secrets.push((kind, t));
        }
        other => panic!("unknown planted kind {other}"),
    }
    let base = out.len();
    let mut search_from = 0;
    for (k, s) in secrets {
        let at = text[search_from..].find(&s).expect("secret in its text") + search_from;
        search_from = at + s.len();
        let line_of = *line + text[..at].matches('\n').count() as u64;
        planted.push(PlantedSecret {
            kind: k,
            secret: s,
            offset: base + at,
            line: line_of,
        });
    }
    *line += text.matches('\n').count() as u64;
    out.extend_from_slice(text.as_bytes());
}

const IDENTS: &[&str] = &[
    "user", "order", "session", "request", "client", "config", "index", "cache", "item", "account",
    "parser", "handler", "record", "payload", "result", "buffer", "queue", "value", "entry",
    "node",
];

/// One line of filler text, chosen from many shapes.
///
/// About 97% of lines are ordinary code, config and log lines; the rest
/// carry credential-ish words in harmless roles or near-miss values. That
/// is roughly the density of such words in real application code (a few
/// hundred per MB), so throughput measured on this text is representative.
fn filler_line(g: &mut FakeSecrets, s: &mut String) {
    use std::fmt::Write;
    let r = &mut g.rng;
    let a = IDENTS[r.random_range(0..IDENTS.len())];
    let b = IDENTS[r.random_range(0..IDENTS.len())];
    let n: u32 = r.random_range(0..10_000);
    let roll = r.random_range(0..1000u32);
    if roll >= 30 {
        let _ = match roll % 16 {
            0 | 1 => write!(s, "    let {a}_{b} = {b}.get_{a}({n})?;"),
            2 => write!(s, "def handle_{a}(self, {b}, timeout={n}):"),
            3 => write!(s, "        return self._{a}_map.get({b}_id, None)"),
            4 => write!(
                s,
                "// TODO: cache the {a} lookup, it costs {n} ms on cold start"
            ),
            5 => write!(s, "import {{ {}Service }} from './services/{b}';", cap(a)),
            6 => write!(
                s,
                "  {a}: {{ type: String, required: true, maxLength: {n} }},"
            ),
            7 => write!(
                s,
                "func (s *{}Store) Get{}(ctx context.Context, id int64) error {{",
                cap(a),
                cap(b)
            ),
            8 => write!(s, "  - name: {a}-{b}\n    image: registry.internal/{a}:{n}"),
            9 => write!(s, "    \"version\": \"{}.{}.{}\",", n % 5, n % 17, n % 9),
            10 => write!(
                s,
                "2024-05-{:02}T10:{:02}:00Z INFO request {a} completed status=200 in {n}ms",
                n % 28 + 1,
                n % 60
            ),
            11 => write!(s, "    }} else if {a}.len() > {n} {{"),
            12 => write!(
                s,
                "        for {a} in {b}s.iter().filter(|x| x.is_active()) {{"
            ),
            13 => write!(s, "    {a}.{b} = {b}_{a}(x, y, {n})"),
            14 => write!(
                s,
                "SELECT id, {a}_id, created_at FROM {b}s WHERE {a}_id = $1 LIMIT {n};"
            ),
            _ => write!(s, "}}"),
        };
        return;
    }
    let _ = match roll {
        0 => write!(s, "    token = lexer.next_token()"),
        1 => write!(
            s,
            "if (password.length < {}) throw new Error('password too short');",
            n % 20
        ),
        2 => write!(s, "  api_key: ${{{{ secrets.API_KEY }}}}"),
        3 => write!(s, "AWS_SECRET_ACCESS_KEY=<your-secret-access-key>"),
        4 => write!(s, "password = \"changeme\""),
        5 => write!(s, "export GITHUB_TOKEN=$GITHUB_TOKEN"),
        6 => {
            let d = g.chars(HEX, 64);
            write!(s, "FROM python:3.12-slim@sha256:{d}")
        }
        7 => {
            let sha = g.chars(HEX, 40);
            write!(s, "commit {sha}")
        }
        8 => {
            let u = uuid(g);
            write!(s, "  \"requestId\": \"{u}\",")
        }
        9 => {
            let h = g.chars(BASE64, 86);
            write!(s, "      \"integrity\": \"sha512-{h}==\",")
        }
        10 => {
            let h = g.chars(BASE64, 43);
            write!(s, "golang.org/x/net v0.{}.0 h1:{h}=", n % 40)
        }
        11 => {
            let k = g.chars(BASE64, 68);
            write!(s, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{k} deploy@ci")
        }
        12 => write!(s, "aws_access_key_id = AKIAIOSFODNN7EXAMPLE"),
        13 => write!(s, "    secret_key = settings.SECRET_KEY"),
        14 => write!(s, "const apiKey = process.env.API_KEY;"),
        15 => write!(s, "token: \"{{{{ .Values.token }}}}\""),
        16 => write!(s, "api_token = \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\""),
        17 => write!(s, "password: \"{{{{ vault_db_password }}}}\""),
        18 => write!(
            s,
            "      - run: echo \"token is ${{{{ steps.auth.outputs.token }}}}\""
        ),
        19 => write!(s, "# Set your API key in the environment before running."),
        20 => write!(s, "secret_name = \"prod/{a}/{b}\""),
        21 => write!(s, "key_file = \"/etc/ssl/private/{a}.key\""),
        22 => write!(
            s,
            "    let cache_key = format!(\"{{}}:{{}}\", {a}.id, {b}.id);"
        ),
        23 => write!(s, "        if let Some(tok) = self.tokens.get(&{a}_key) {{"),
        24 => write!(s, "    auth_header = f\"Bearer {{self.access_token}}\""),
        25 => write!(s, "  const {{ token }} = await auth.refresh({a}Id);"),
        26 => write!(s, "// keys are rotated every {n} hours by the {a} job"),
        27 => write!(s, "    private_key_path: Option<PathBuf>,"),
        28 => write!(s, "const KEY_{}: &str = \"{a}.{b}\";", n % 100),
        _ => write!(
            s,
            "    password_hash = bcrypt.hashpw({a}.encode(), bcrypt.gensalt())"
        ),
    };
}

fn cap(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
        .unwrap_or_default()
}

fn uuid(g: &mut FakeSecrets) -> String {
    format!(
        "{}-{}-4{}-a{}-{}",
        g.chars(HEX, 8),
        g.chars(HEX, 4),
        g.chars(HEX, 3),
        g.chars(HEX, 3),
        g.chars(HEX, 12)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_and_filler_rules() {
        // GitHub's documented example shape: 30 base62 + 6 checksum characters.
        assert_eq!(github_checksum(b""), "000000");
        assert_eq!(github_checksum(b"a").len(), 6);
        assert_eq!(encode_base64(b"hello"), "aGVsbG8=");
        assert_eq!(encode_base64url(&[0xfb, 0xff]), "-_8");
        for filler in [
            "aaaaaXyZ",
            "x12345yz",
            "zfedcbxq",
            "abababababab",
            "abcabcabcabcab",
        ] {
            assert!(looks_like_filler(filler.as_bytes()), "{filler}");
        }
        for ok in ["aaaaXyZq", "x1234yzQ", "Zq8Lm3Rt"] {
            assert!(!looks_like_filler(ok.as_bytes()), "{ok}");
        }
    }

    #[test]
    fn formats_have_documented_shapes() {
        let mut g = FakeSecrets::new(3);
        let fg = g.github_fine_grained();
        assert_eq!(fg.len(), "github_pat_".len() + 22 + 1 + 59);
        assert!(g.anthropic().starts_with("sk-ant-api03-") && g.anthropic().ends_with("AA"));
        assert!(g.openai().contains("T3BlbkFJ"));
        assert_eq!(g.gitlab_pat().len(), 26);
        let u = g.postgres_url();
        assert!(u.url.contains(&format!(":{}@", u.password)));
        assert!(g.slack_bot().starts_with("xoxb-"));
        assert!(g.fake("pre_", HEX, 10).len() == 14);
    }

    #[test]
    fn corpus_plants_where_it_says() {
        let (text, planted) = source_like_corpus(200_000, 5_000, 9);
        assert!(text.len() >= 200_000);
        assert!(planted.len() >= 30, "{}", planted.len());
        for p in &planted {
            assert_eq!(
                &text[p.offset..p.offset + p.secret.len()],
                p.secret.as_bytes(),
                "{}",
                p.kind
            );
            let line = 1 + text[..p.offset].iter().filter(|&&c| c == b'\n').count() as u64;
            assert_eq!(line, p.line, "{}", p.kind);
        }
        let (again, _) = source_like_corpus(200_000, 5_000, 9);
        assert_eq!(text, again);
        let (none, planted) = source_like_corpus(10_000, 0, 9);
        assert!(none.len() >= 10_000 && planted.is_empty());
    }
}

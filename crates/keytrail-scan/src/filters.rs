//! Engine-wide precision filters: the checks every match of every rule goes
//! through after its regex (and validator) accepted it, so that rule
//! authors need not repeat them.
//!
//! The filters are one table, [`FILTERS`]. Each entry has a name (used in
//! tests and debugging output), the confidences it applies to, a one-line
//! description, and a check returning the reason for dropping a candidate.
//! A rule's [`FilterSet`] is computed once at compile time from its
//! confidence and shape: a rule whose own pattern describes UUIDs is not
//! subject to the UUID filter, a rule whose pattern describes hex is not
//! subject to the hex-digest filters, and so on, because there the shape
//! is the credential (Heroku API keys are UUIDs).
//!
//! Besides the table, each rule has a minimum Shannon entropy: its own
//! `min_entropy`, or [`DEFAULT_LOW_CONFIDENCE_MIN_ENTROPY`] for
//! low-confidence rules that set none.
//!
//! | filter | applies to | drops |
//! |---|---|---|
//! | `template` | all | `${VAR}`, `$VAR`, `{{ x }}`, `<YOUR_KEY>`, `%(x)s`, `%s`, `#{x}`, `__VAR__`, `{key}` |
//! | `placeholder_word` | all | `changeme`, `your_api_key`, `example`, `dummy`, `xxxx`, `placeholder`… |
//! | `test_word` | low | `test`, `sample`, `fake`, `demo`, `mock`, `foo`, `lorem` |
//! | `repetitive` | all | `000000`, `abcdef123456`, `abababab`, few distinct characters |
//! | `vendor_example` | all | documented example keys (`AKIAIOSFODNN7EXAMPLE`, Stripe's docs keys…) |
//! | `reference` | all | `secrets.X`, `vars.X`, `env.X`, `process.env.X`, `os.environ[…]` |
//! | `redacted` | all | `REDACTED`, `[MASKED]`, `***`, `<hidden>`, `•••` |
//! | `lockfile_integrity` | all | `sha512-…`/`sha1-…` integrity values, go.sum `h1:` hashes |
//! | `lockfile_line` | low, medium | anything on an integrity/checksum line of a lockfile |
//! | `hex_digest` | low, medium (not hex rules) | `sha256:…`-labelled digests, git SHAs next to commit/hash words |
//! | `uuid` | low, medium (not UUID rules) | `123e4567-e89b-…` |
//! | `public_key` | low, medium | `ssh-rsa AAAA…` bodies, `BEGIN PUBLIC KEY`/`CERTIFICATE` blocks |
//! | `identifier` | low | words (`getApiKey`, `API_KEY_NAME`, `config.token`), file paths |

use crate::validate::Validator;
use keytrail_rules::Rule;
use keytrail_types::Confidence;

/// Minimum entropy (bits per byte) of a low-confidence rule's secret when
/// the rule sets no `min_entropy`. Random 16-character alphanumerics score
/// about 3.7; English words and `password123` score under 3.
pub const DEFAULT_LOW_CONFIDENCE_MIN_ENTROPY: f64 = 3.0;

/// Which confidences a filter applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every rule.
    All,
    /// Low- and medium-confidence rules.
    LowMedium,
    /// Low-confidence (generic) rules only.
    Low,
}

/// What a filter sees of one candidate match.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    /// The secret.
    pub secret: &'a [u8],
    /// The secret, ASCII-lowercased.
    pub lower: &'a [u8],
    /// The text before the secret on its line (at most a few hundred bytes).
    pub before: &'a [u8],
    /// The secret's whole line (possibly cut for very long lines).
    pub line: &'a [u8],
    /// The display path of the blob, when known.
    pub path: Option<&'a str>,
}

/// One precision filter.
pub struct Filter {
    /// Stable name.
    pub name: &'static str,
    /// Which rules it applies to.
    pub scope: Scope,
    /// What it drops.
    pub description: &'static str,
    /// Returns why the candidate is dropped, or `None` to keep it.
    pub check: fn(&Candidate<'_>) -> Option<&'static str>,
}

/// The filter table, applied in order.
pub static FILTERS: &[Filter] = &[
    Filter {
        name: "template",
        scope: Scope::All,
        description: "templating and variable syntax instead of a value",
        check: |c| template_syntax(c.secret),
    },
    Filter {
        name: "placeholder_word",
        scope: Scope::All,
        description: "placeholder words such as changeme, your_api_key, example, dummy, xxxx",
        check: |c| placeholder_word(c.lower, false),
    },
    Filter {
        name: "test_word",
        scope: Scope::Low,
        description: "test-ish words (test, sample, fake, demo, mock) in generic matches",
        check: |c| placeholder_word(c.lower, true),
    },
    Filter {
        name: "repetitive",
        scope: Scope::All,
        description: "repeated or sequential characters (000000, abcdef123456)",
        check: |c| is_repetitive(c.secret).then_some("repeated or sequential characters"),
    },
    Filter {
        name: "vendor_example",
        scope: Scope::All,
        description: "example keys from vendor documentation",
        check: |c| vendor_example(c.secret),
    },
    Filter {
        name: "reference",
        scope: Scope::All,
        description: "references to a secret store or environment (secrets.X, env.X)",
        check: reference,
    },
    Filter {
        name: "redacted",
        scope: Scope::All,
        description: "values that are already masked (REDACTED, ***, [MASKED])",
        check: |c| is_redacted(c.secret).then_some("already redacted"),
    },
    Filter {
        name: "lockfile_integrity",
        scope: Scope::All,
        description: "package integrity hashes (sha512-…, go.sum h1:…)",
        check: lockfile_integrity,
    },
    Filter {
        name: "lockfile_line",
        scope: Scope::LowMedium,
        description: "integrity and checksum lines of lockfiles",
        check: lockfile_line,
    },
    Filter {
        name: "hex_digest",
        scope: Scope::LowMedium,
        description: "labelled hex digests (sha256:…) and git commit SHAs",
        check: hex_digest,
    },
    Filter {
        name: "uuid",
        scope: Scope::LowMedium,
        description: "UUIDs, unless the rule's own pattern describes a UUID",
        check: |c| is_uuid(c.secret).then_some("uuid"),
    },
    Filter {
        name: "public_key",
        scope: Scope::LowMedium,
        description: "public keys and certificates",
        check: public_key,
    },
    Filter {
        name: "identifier",
        scope: Scope::Low,
        description: "identifiers made of words, member accesses and file paths",
        check: identifier,
    },
];

/// The set of filters that apply to one rule (a bit per [`FILTERS`] entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FilterSet(u32);

impl FilterSet {
    /// Compute the filters for a rule from its confidence and shape.
    pub fn for_rule(rule: &Rule, validator: Option<Validator>) -> FilterSet {
        let conf = rule.syntax.confidence;
        let pattern = rule.syntax.pattern.as_str();
        let describes_uuid = pattern.contains("{8}-") || pattern.contains("{8}\\-");
        let describes_hex =
            pattern.contains("a-f") || pattern.contains("A-F") || pattern.contains("xdigit");
        let mut bits = 0u32;
        for (i, f) in FILTERS.iter().enumerate() {
            let in_scope = match f.scope {
                Scope::All => true,
                Scope::LowMedium => conf != Confidence::High,
                Scope::Low => conf == Confidence::Low,
            };
            let exempt = match f.name {
                "uuid" => describes_uuid && conf != Confidence::Low,
                "hex_digest" => describes_hex && conf != Confidence::Low,
                // Private key blocks are long structured base64: DER runs of
                // `AAAA` are normal there. The validator checks the body.
                "repetitive" => validator == Some(Validator::PemPrivateKey),
                _ => false,
            };
            if in_scope && !exempt {
                bits |= 1 << i;
            }
        }
        FilterSet(bits)
    }

    /// Every filter (for tests).
    pub fn all() -> FilterSet {
        FilterSet((1u32 << FILTERS.len()) - 1)
    }

    /// Whether the filter named `name` is in the set.
    pub fn contains(self, name: &str) -> bool {
        FILTERS
            .iter()
            .position(|f| f.name == name)
            .is_some_and(|i| self.0 & (1 << i) != 0)
    }

    /// The first filter in the set that drops `c`: (filter name, reason).
    pub fn drops(self, c: &Candidate<'_>) -> Option<(&'static str, &'static str)> {
        FILTERS
            .iter()
            .enumerate()
            .filter(|(i, _)| self.0 & (1 << i) != 0)
            .find_map(|(_, f)| (f.check)(c).map(|why| (f.name, why)))
    }
}

/// Shannon entropy of `data` in bits per byte.
pub fn shannon_entropy(data: &[u8]) -> f64 {
    if data.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &b in data {
        counts[b as usize] += 1;
    }
    let n = data.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

/// Case-insensitive substring test (`needle` must be lowercase).
pub fn contains_ci(hay: &[u8], needle: &[u8]) -> bool {
    if needle.len() > hay.len() {
        return false;
    }
    hay.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

fn is_ident(s: &[u8]) -> bool {
    !s.is_empty()
        && !s[0].is_ascii_digit()
        && s.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// Templating or variable syntax standing in for a value.
pub fn template_syntax(s: &[u8]) -> Option<&'static str> {
    const MARKERS: &[&[u8]] = &[b"${", b"{{", b"}}", b"#{", b"$(", b"<%", b"%>", b"%("];
    if MARKERS.iter().any(|m| memchr::memmem::find(s, m).is_some()) {
        return Some("template syntax");
    }
    if let Some(rest) = s.strip_prefix(b"$")
        && is_ident(rest)
    {
        return Some("shell variable");
    }
    let wrapped = |open: u8, close: u8| s.len() >= 3 && s[0] == open && s[s.len() - 1] == close;
    if wrapped(b'<', b'>') || wrapped(b'{', b'}') || wrapped(b'[', b']') || wrapped(b'%', b'%') {
        return Some("placeholder in brackets");
    }
    if s.len() > 4 && s.starts_with(b"__") && s.ends_with(b"__") {
        return Some("__VAR__ placeholder");
    }
    // printf-style conversions (`%s`), but not URL escapes (`%40`).
    if s.windows(2)
        .any(|w| w[0] == b'%' && matches!(w[1], b's' | b'd' | b'v' | b'r' | b'q'))
    {
        return Some("format string");
    }
    None
}

/// Placeholder words. With `low_only`, the extra test-ish words that only
/// generic rules drop. `lower` must be ASCII-lowercased.
pub fn placeholder_word(lower: &[u8], low_only: bool) -> Option<&'static str> {
    const ALL: &[&str] = &[
        "changeme",
        "change_me",
        "change-me",
        "changeit",
        "your_",
        "your-",
        "yourapi",
        "yourkey",
        "yoursecret",
        "yourtoken",
        "yourpass",
        "replace_me",
        "replaceme",
        "replace-me",
        "placeholder",
        "example",
        "dummy",
        "xxxx",
        "insert_",
        "insert-",
        "enter_your",
        "notreal",
        "not_real",
        "not-a-real",
        "not_a_real",
        "fakekey",
        "fake_key",
        "fake-key",
        "secret_here",
        "key_here",
        "token_here",
        "keyhere",
        "tokenhere",
    ];
    const LOW: &[&str] = &[
        "test",
        "sample",
        "fake",
        "demo",
        "mock",
        "foo",
        "lorem",
        "qwerty",
        "letmein",
        "hunter2",
        "passw0rd",
        "password",
        "secret",
        "undefined",
        "null",
        "none",
        "true",
        "false",
    ];
    let list = if low_only { LOW } else { ALL };
    list.iter()
        .find(|w| {
            memchr::memmem::find(lower, w.as_bytes()).is_some()
                && (**w != "xxxx" || mostly_x(lower))
        })
        .map(|_| {
            if low_only {
                "test or dummy word"
            } else {
                "placeholder word"
            }
        })
}

/// Whether `xxxx` in a lowercased value marks a placeholder. A short value
/// holding `xxxx` is one; in a long value (a 1,700-character PEM body
/// holds `xxxx` by chance in about 0.2% of real keys) the x's must make up
/// a quarter of it or form a run of 16.
fn mostly_x(lower: &[u8]) -> bool {
    if lower.len() <= 64 {
        return true;
    }
    let xs = lower.iter().filter(|&&c| c == b'x').count();
    xs * 4 >= lower.len() || memchr::memmem::find(lower, b"xxxxxxxxxxxxxxxx").is_some()
}

/// Shortest high-entropy remainder that keeps a value with a long run of
/// one character (X/Twitter bearer tokens start with 21 `A`s).
const RUN_TAIL_MIN: usize = 20;
/// Minimum Shannon entropy (bits/byte) of that remainder.
const RUN_TAIL_ENTROPY: f64 = 3.8;

/// Repeated or sequential characters, or a short repeating unit, in a
/// token-sized secret (longer values such as key blocks are not checked).
/// A run (`000000`, `abcdef`) does not make a value repetitive when the
/// rest of it is long and random: real tokens may embed padding runs.
pub fn is_repetitive(s: &[u8]) -> bool {
    if s.len() < 6 || s.len() > 256 {
        return false;
    }
    if let Some(run) = longest_run(s)
        && run.len() >= 6
    {
        let mut rest = Vec::with_capacity(s.len() - run.len());
        rest.extend_from_slice(&s[..run.start]);
        rest.extend_from_slice(&s[run.end..]);
        if rest.len() < RUN_TAIL_MIN || shannon_entropy(&rest) < RUN_TAIL_ENTROPY {
            return true;
        }
    }
    // A short unit repeated over the whole value (abababab, 12341234).
    for period in 1..=4 {
        if s.len() >= 3 * period && (period..s.len()).all(|i| s[i] == s[i - period]) {
            return true;
        }
    }
    // Very few distinct characters for the length.
    let mut seen = [false; 256];
    s.iter().for_each(|&c| seen[c as usize] = true);
    let distinct = seen.iter().filter(|&&x| x).count();
    s.len() >= 12 && distinct <= 3
}

/// The longest run of one repeated character or of consecutive ascending or
/// descending alphanumerics (`aaaa`, `1234`, `fedc`), as a byte range.
fn longest_run(s: &[u8]) -> Option<std::ops::Range<usize>> {
    let mut best: Option<std::ops::Range<usize>> = None;
    let (mut same, mut up, mut down) = (0usize, 0usize, 0usize);
    for (i, w) in s.windows(2).enumerate() {
        let alnum = w[0].is_ascii_alphanumeric() && w[1].is_ascii_alphanumeric();
        same = if w[0] == w[1] { same } else { i + 1 };
        up = if alnum && w[1] == w[0].wrapping_add(1) {
            up
        } else {
            i + 1
        };
        down = if alnum && w[1].wrapping_add(1) == w[0] {
            down
        } else {
            i + 1
        };
        let start = same.min(up).min(down);
        if best.as_ref().is_none_or(|b| i + 2 - start > b.len()) {
            best = Some(start..i + 2);
        }
    }
    best
}

/// Example keys published in vendor documentation; matching any of them
/// (as a substring of the secret) drops the match.
pub const VENDOR_EXAMPLES: &[&str] = &[
    // AWS documentation.
    "AKIAIOSFODNN7EXAMPLE",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "AKIAI44QH8DHBEXAMPLE",
    "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY",
    "ASIAIOSFODNN7EXAMPLE",
    // GitHub REST API documentation.
    "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
    // Stripe API reference test keys.
    "sk_test_4eC39HqLyjWDarjtT1zdp7dc",
    "pk_test_TYooMQauvdEDq54NiTphI7jx",
    "sk_test_BQokikJOvBiI2HlWgH4olfQ2",
    "pk_test_6pRNASCoBOKtIshFeQd4XMUh",
    // Slack documentation.
    "xoxb-not-a-real-token-this-will-not-work",
    "T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
    // Twilio documentation.
    "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
    // Azurite / Azure Storage Emulator well-known development account key
    // (devstoreaccount1), published by Microsoft.
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw",
    // JWT.io's default example token signature.
    "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
];

fn vendor_example(s: &[u8]) -> Option<&'static str> {
    VENDOR_EXAMPLES
        .iter()
        .any(|e| memchr::memmem::find(s, e.as_bytes()).is_some())
        .then_some("vendor documentation example")
}

const REFERENCE_PREFIXES: &[&str] = &[
    "secrets.",
    "vars.",
    "env.",
    "process.env",
    "os.environ",
    "os.getenv",
    "getenv(",
    "inputs.",
    "steps.",
    "needs.",
    "matrix.",
    "github.",
    "import.meta.env",
    "system.getenv",
    "env[",
    "environment.getenvironmentvariable",
];

fn reference(c: &Candidate<'_>) -> Option<&'static str> {
    if REFERENCE_PREFIXES
        .iter()
        .any(|p| c.lower.starts_with(p.as_bytes()))
    {
        return Some("reference to a secret store or environment");
    }
    let before = trim_end_quotes(c.before);
    let n = before.len().min(40);
    let tail = before[before.len() - n..].to_ascii_lowercase();
    const BEFORE: &[&str] = &[
        "secrets.",
        "vars.",
        "env.",
        "process.env.",
        "os.environ[",
        "getenv(",
    ];
    BEFORE
        .iter()
        .any(|p| tail.ends_with(p.as_bytes()))
        .then_some("reference to a secret store or environment")
}

fn trim_end_quotes(b: &[u8]) -> &[u8] {
    let mut b = b;
    while let [rest @ .., b'"' | b'\'' | b'`'] = b {
        b = rest;
    }
    b
}

/// Masked values: `REDACTED`, `[MASKED]`, runs of `*`, bullets, ellipses.
pub fn is_redacted(s: &[u8]) -> bool {
    const MARKS: &[&[u8]] = &[
        b"***",
        b"[masked]",
        b"redacted",
        b"<hidden>",
        b"[filtered]",
        b"[removed]",
        b"<masked>",
        "\u{2022}\u{2022}".as_bytes(),
        "\u{2026}".as_bytes(),
        b"...",
    ];
    let lower = s.to_ascii_lowercase();
    MARKS
        .iter()
        .any(|m| memchr::memmem::find(&lower, m).is_some())
}

const INTEGRITY_LABELS: &[&str] = &["sha512-", "sha384-", "sha256-", "sha1-", "md5-", "h1:"];

fn lockfile_integrity(c: &Candidate<'_>) -> Option<&'static str> {
    let tail = &c.before[c.before.len().saturating_sub(8)..];
    let tail = tail.to_ascii_lowercase();
    INTEGRITY_LABELS
        .iter()
        .any(|l| c.lower.starts_with(l.as_bytes()) || tail.ends_with(l.as_bytes()))
        .then_some("package integrity hash")
}

const LOCKFILES: &[&str] = &[
    "package-lock.json",
    "npm-shrinkwrap.json",
    "yarn.lock",
    "pnpm-lock.yaml",
    "go.sum",
    "Cargo.lock",
    "poetry.lock",
    "Pipfile.lock",
    "composer.lock",
    "Gemfile.lock",
    "packages.lock.json",
    "bun.lock",
    "uv.lock",
    "pdm.lock",
    "flake.lock",
    "Podfile.lock",
    "mix.lock",
    "pubspec.lock",
];

fn lockfile_line(c: &Candidate<'_>) -> Option<&'static str> {
    let path = c.path?;
    let name = path.rsplit(['/', '\\', '!']).next().unwrap_or(path);
    if !LOCKFILES.contains(&name) {
        return None;
    }
    const WORDS: &[&[u8]] = &[
        b"integrity",
        b"resolved",
        b"checksum",
        b"sha",
        b"hash",
        b"h1:",
        b"narhash",
        b"rev",
    ];
    WORDS
        .iter()
        .any(|w| contains_ci(c.line, w))
        .then_some("lockfile checksum line")
}

fn all_hex(s: &[u8]) -> bool {
    s.iter().all(u8::is_ascii_hexdigit)
}

fn hex_digest(c: &Candidate<'_>) -> Option<&'static str> {
    let hex_body = |s: &[u8]| s.len() >= 32 && all_hex(s);
    const LABELS: &[&str] = &[
        "sha256:", "sha1:", "sha512:", "sha384:", "md5:", "sha256=", "sha1=", "sha512=",
        "blake2b:", "blake3:",
    ];
    for l in LABELS {
        if let Some(rest) = c.lower.strip_prefix(l.as_bytes())
            && hex_body(rest)
        {
            return Some("labelled digest");
        }
    }
    if !hex_body(c.secret) {
        return None;
    }
    let tail = c.before[c.before.len().saturating_sub(12)..].to_ascii_lowercase();
    if LABELS.iter().any(|l| tail.ends_with(l.as_bytes())) {
        return Some("labelled digest");
    }
    // Git SHA-1/SHA-256 next to words that say so.
    if matches!(c.secret.len(), 40 | 64) {
        const WORDS: &[&[u8]] = &[
            b"commit",
            b"sha",
            b"digest",
            b"hash",
            b"checksum",
            b"revision",
            b"\"rev\"",
            b"rev:",
            b"rev =",
        ];
        if WORDS.iter().any(|w| contains_ci(c.line, w)) {
            return Some("git object id or digest");
        }
    }
    None
}

/// Whether `s` is a UUID (8-4-4-4-12 hex).
pub fn is_uuid(s: &[u8]) -> bool {
    s.len() == 36
        && s.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

fn public_key(c: &Candidate<'_>) -> Option<&'static str> {
    const SSH_BODIES: &[&[u8]] = &[
        b"AAAAB3NzaC1",
        b"AAAAC3NzaC1",
        b"AAAAE2VjZHNh",
        b"AAAAB3NzaC1kc3",
        b"AAAAGnNrLXNzaC",
    ];
    if SSH_BODIES.iter().any(|p| c.secret.starts_with(p)) {
        return Some("ssh public key");
    }
    const MARKERS: &[&[u8]] = &[
        b"ssh-rsa ",
        b"ssh-ed25519 ",
        b"ssh-dss ",
        b"ecdsa-sha2-",
        b"sk-ssh-",
        b"public key-----",
        b"begin certificate",
        b"public_key",
        b"publickey",
        b"pubkey",
    ];
    let window = &c.before[c.before.len().saturating_sub(64)..];
    if MARKERS.iter().any(|m| contains_ci(window, m)) {
        return Some("public key or certificate");
    }
    if contains_ci(c.secret, b"public key-----") || contains_ci(c.secret, b"begin certificate") {
        return Some("public key or certificate");
    }
    None
}

fn identifier(c: &Candidate<'_>) -> Option<&'static str> {
    let s = c.secret;
    // File paths.
    if s.starts_with(b"/")
        || s.starts_with(b"./")
        || s.starts_with(b"../")
        || s.starts_with(b"~/")
        || s.starts_with(b"file:")
        || (s.len() > 2 && s[1] == b':' && s[2] == b'\\')
    {
        return Some("file path");
    }
    const EXT: &[&str] = &[
        ".pem",
        ".key",
        ".json",
        ".txt",
        ".yml",
        ".yaml",
        ".p12",
        ".pfx",
        ".crt",
        ".env",
        ".cer",
        ".der",
        ".jks",
        ".keystore",
        ".ppk",
        ".pub",
        ".gpg",
        ".asc",
        ".js",
        ".py",
        ".rb",
        ".go",
        ".ts",
    ];
    if EXT.iter().any(|e| c.lower.ends_with(e.as_bytes()))
        && s.iter().any(|&b| b == b'/' || b == b'.')
    {
        return Some("file name");
    }
    // Code: calls, member accesses, words.
    if s.iter()
        .any(|b| matches!(b, b'(' | b')' | b'[' | b']' | b';'))
    {
        return Some("code expression");
    }
    let wordish = s
        .iter()
        .all(|b| b.is_ascii_alphabetic() || matches!(b, b'_' | b'-' | b'.'));
    if wordish {
        return Some("identifier made of words");
    }
    // `config.apiKey2`, `this.token`: dotted identifiers.
    let parts: Vec<&[u8]> = s.split(|&b| b == b'.').collect();
    if parts.len() >= 2 && parts.iter().all(|p| is_ident(p)) {
        return Some("member access");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use keytrail_testkit::secrets::{ALNUM, BASE64, FakeSecrets};

    #[test]
    fn xxxx_in_a_long_random_value_is_not_a_placeholder() {
        let mut g = FakeSecrets::new(3);
        let body = format!("{}xXxX{}", g.chars(BASE64, 800), g.chars(BASE64, 900));
        let lower = body.to_ascii_lowercase();
        assert_eq!(placeholder_word(lower.as_bytes(), false), None);
        // Mostly x's, or a short value, still is.
        let xs = format!("{}{}", "x".repeat(600), g.chars(BASE64, 900));
        assert!(placeholder_word(xs.as_bytes(), false).is_some());
        assert!(placeholder_word(b"sk_live_xxxx1234", false).is_some());
    }

    #[test]
    fn azurite_development_key_is_a_vendor_example() {
        let key = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
        assert!(vendor_example(key.as_bytes()).is_some());
        let mut g = FakeSecrets::new(4);
        assert!(vendor_example(g.chars(BASE64, 88).as_bytes()).is_none());
    }

    #[test]
    fn a_leading_run_with_a_random_tail_is_not_repetitive() {
        let mut g = FakeSecrets::new(5);
        let bearer = format!("{}{}", "A".repeat(21), g.chars(ALNUM, 90));
        assert!(!is_repetitive(bearer.as_bytes()));
        // Runs with little else stay placeholders.
        assert!(is_repetitive(b"ghp_000000000000000000000000000000000000"));
        assert!(is_repetitive(b"AAAAAAAAAAAAAAAAAAAAAAAAabc123"));
        assert!(is_repetitive(b"key_abcdefghij"));
        assert!(!is_repetitive(g.chars(ALNUM, 40).as_bytes()));
    }

    fn cand<'a>(
        secret: &'a [u8],
        lower: &'a [u8],
        before: &'a [u8],
        line: &'a [u8],
        path: Option<&'a str>,
    ) -> Candidate<'a> {
        Candidate {
            secret,
            lower,
            before,
            line,
            path,
        }
    }

    /// Runs one filter on `before + secret`, as a line.
    fn drops(filter: &str, path: Option<&str>, before: &str, secret: &str) -> bool {
        let f = FILTERS
            .iter()
            .find(|f| f.name == filter)
            .expect("known filter");
        let lower = secret.to_ascii_lowercase();
        let line = format!("{before}{secret}");
        (f.check)(&cand(
            secret.as_bytes(),
            lower.as_bytes(),
            before.as_bytes(),
            line.as_bytes(),
            path,
        ))
        .is_some()
    }

    // Real-looking (random) values every filter must keep.
    const REALISTIC: &[&str] = &[
        "ghp_R3tW9zLq0xVbN7kYp2sDfG4hJm8cQe1aUo5i",
        "sk_live_51Hx9QeL2mZr8TvY0wKpN3bGdF",
        "AKIAQ7ZP3N2WJ4XK6YRV",
        "Zr8TvY0wKpN3bGdF/q2+Lm9XcV1sAe7HuJ4iOy6T",
        "xoxb-2943857261-5938472615-Qk3vTz9LpW2mXe8RbNd1YfGh",
        "9f8e1c2b7a6d5e4f3a2b1c0d9e8f7a6b",
        "P4s-W0rd!Kx9#Lz2",
    ];

    #[test]
    fn every_filter_keeps_realistic_secrets() {
        for f in FILTERS {
            for s in REALISTIC {
                let lower = s.to_ascii_lowercase();
                let line = format!("api_key = \"{s}\"");
                let c = cand(
                    s.as_bytes(),
                    lower.as_bytes(),
                    b"api_key = \"",
                    line.as_bytes(),
                    Some("src/config.py"),
                );
                assert!((f.check)(&c).is_none(), "filter {} dropped {s:?}", f.name);
            }
        }
    }

    /// (filter, path, text before the secret, secret, dropped?)
    const CASES: &[(&str, Option<&str>, &str, &str, bool)] = &[
        ("template", None, "key=", "${API_KEY}", true),
        ("template", None, "key=", "$API_KEY", true),
        ("template", None, "key: ", "{{ .Values.apiKey }}", true),
        ("template", None, "key=", "<YOUR_KEY>", true),
        ("template", None, "key=", "%(api_key)s", true),
        ("template", None, "key=", "#{apiKey}", true),
        ("template", None, "key=", "__API_KEY__", true),
        ("template", None, "key=", "abc%sdef", true),
        ("template", None, "pw=", "p%40ssW0rd9x", false),
        ("template", None, "key=", "$6$rounds", false),
        ("placeholder_word", None, "k=", "changeme", true),
        ("placeholder_word", None, "k=", "your_api_key_here", true),
        (
            "placeholder_word",
            None,
            "k=",
            "sk_live_EXAMPLEKEY123456789",
            true,
        ),
        (
            "placeholder_word",
            None,
            "k=",
            "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            true,
        ),
        ("placeholder_word", None, "k=", "dummy-token-123", true),
        (
            "placeholder_word",
            None,
            "k=",
            "sk_test_4Qx9LmW2pZr8TvY0wKpN3bGd",
            false,
        ),
        ("test_word", None, "k=", "test-password-123", true),
        ("test_word", None, "k=", "sampleKey99", true),
        ("test_word", None, "k=", "Qx9LmW2pZr8TvY0w", false),
        ("repetitive", None, "k=", "000000000000", true),
        ("repetitive", None, "k=", "abcdef123456", true),
        (
            "repetitive",
            None,
            "k=",
            "ghp_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            true,
        ),
        ("repetitive", None, "k=", "abababababab", true),
        ("repetitive", None, "k=", "9876543210ab", true),
        ("repetitive", None, "k=", "aabbaabbabab", true),
        ("repetitive", None, "k=", "Qx9LmW2pZr8TvY0w", false),
        ("vendor_example", None, "k=", "AKIAIOSFODNN7EXAMPLE", true),
        (
            "vendor_example",
            None,
            "k=",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            true,
        ),
        (
            "vendor_example",
            None,
            "k=",
            "sk_test_4eC39HqLyjWDarjtT1zdp7dc",
            true,
        ),
        (
            "vendor_example",
            None,
            "k=",
            "sk_test_4eC39HqLyjWDarjtT1zdp7dX",
            false,
        ),
        ("reference", None, "token: ", "secrets.GITHUB_TOKEN", true),
        ("reference", None, "token: ", "env.API_TOKEN", true),
        ("reference", None, "key = ", "process.env.STRIPE_KEY", true),
        (
            "reference",
            None,
            "token: ${{ secrets.",
            "GITHUB_TOKEN",
            true,
        ),
        ("reference", None, "key = os.environ[\"", "AWS_KEY", true),
        ("reference", None, "token: ", "Sq9vR2kLw8ZtP3xY", false),
        ("redacted", None, "k=", "REDACTED", true),
        ("redacted", None, "k=", "[MASKED]", true),
        ("redacted", None, "k=", "sk_live_****************", true),
        (
            "redacted",
            None,
            "k=",
            "ghp_\u{2022}\u{2022}\u{2022}\u{2022}",
            true,
        ),
        ("redacted", None, "k=", "Sq9vR2kLw8ZtP3xY", false),
        (
            "lockfile_integrity",
            None,
            "\"integrity\": \"",
            "sha512-Xk8Qz3vL0pW9mN2bR7tY4uI1oE6aS5dF",
            true,
        ),
        (
            "lockfile_integrity",
            None,
            "integrity sha1-",
            "Xk8Qz3vL0pW9mN2bR7tY4uI1oE6",
            true,
        ),
        (
            "lockfile_integrity",
            None,
            "golang.org/x/net v0.1.0 h1:",
            "Xk8Qz3vL0pW9mN2bR7tY4uI1oE6aS5dF=",
            true,
        ),
        (
            "lockfile_integrity",
            None,
            "token=",
            "Xk8Qz3vL0pW9mN2bR7tY4uI1oE6aS5dF",
            false,
        ),
        (
            "lockfile_line",
            Some("web/package-lock.json"),
            "\"integrity\": \"",
            "Xk8Qz3vL0pW9mN2bR7tY4uI1oE6aS5dF",
            true,
        ),
        (
            "lockfile_line",
            Some("web/app.js"),
            "\"integrity\": \"",
            "Xk8Qz3vL0pW9mN2bR7tY4uI1oE6aS5dF",
            false,
        ),
        (
            "lockfile_line",
            Some("package-lock.json"),
            "\"token\": \"",
            "Xk8Qz3vL0pW9mN2bR7tY4uI1oE6aS5dF",
            false,
        ),
        (
            "hex_digest",
            None,
            "image: app@",
            "sha256:9f8e1c2b7a6d5e4f3a2b1c0d9e8f7a6b9f8e1c2b7a6d5e4f3a2b1c0d9e8f7a6b",
            true,
        ),
        (
            "hex_digest",
            None,
            "commit ",
            "9f8e1c2b7a6d5e4f3a2b1c0d9e8f7a6b9f8e1c2b",
            true,
        ),
        (
            "hex_digest",
            None,
            "api_key = ",
            "9f8e1c2b7a6d5e4f3a2b1c0d9e8f7a6b9f8e1c2b",
            false,
        ),
        (
            "uuid",
            None,
            "id = ",
            "123e4567-e89b-42d3-a456-426614174000",
            true,
        ),
        (
            "uuid",
            None,
            "id = ",
            "123e4567e89b42d3a456426614174000",
            false,
        ),
        (
            "public_key",
            None,
            "ssh-rsa ",
            "AAAAB3NzaC1yc2EAAAADAQABAAABAQC7",
            true,
        ),
        (
            "public_key",
            None,
            "key: ",
            "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0",
            true,
        ),
        (
            "public_key",
            None,
            "public_key = \"",
            "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA",
            true,
        ),
        (
            "public_key",
            None,
            "private_key = \"",
            "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEA",
            false,
        ),
        (
            "identifier",
            None,
            "password = ",
            "getPasswordFromVault",
            true,
        ),
        ("identifier", None, "token = ", "API_TOKEN_NAME", true),
        ("identifier", None, "key = ", "config.apiKey2", true),
        (
            "identifier",
            None,
            "key_file = ",
            "/etc/ssl/private/server.key",
            true,
        ),
        ("identifier", None, "key_file = ", "certs/server.pem", true),
        ("identifier", None, "secret = ", "getSecret(name)", true),
        ("identifier", None, "secret = ", "k3Y9-vQ2.xLp8Zr", false),
    ];

    #[test]
    fn filters_drop_what_they_should() {
        for (filter, path, before, secret, want) in CASES {
            assert_eq!(
                drops(filter, *path, before, secret),
                *want,
                "{filter} on {before}{secret}"
            );
        }
    }

    fn rule(conf: &str, pattern: &str, validate: Option<&str>) -> Rule {
        let v = validate
            .map(|v| format!("    validate: {v}\n"))
            .unwrap_or_default();
        let yaml = format!(
            "rules:\n  - id: t.r\n    name: T\n    pattern: '{pattern}'\n    keywords: [abc]\n    confidence: {conf}\n{v}    description: d\n    remediation: r\n"
        );
        let (mut rules, d) = keytrail_rules::load_str("t.yml", &yaml);
        assert!(d.is_empty(), "{d:?}");
        rules.remove(0)
    }

    #[test]
    fn filter_sets_follow_confidence_and_shape() {
        let high = FilterSet::for_rule(&rule("high", "(abc_[a-z]{10})", None), None);
        assert!(
            high.contains("template") && !high.contains("uuid") && !high.contains("identifier")
        );
        let low = FilterSet::for_rule(&rule("low", "(abc_[a-z]{10})", None), None);
        assert!(low.contains("uuid") && low.contains("identifier") && low.contains("test_word"));
        let heroku = FilterSet::for_rule(
            &rule(
                "medium",
                "heroku.{0,20}([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})",
                None,
            ),
            None,
        );
        assert!(
            !heroku.contains("uuid")
                && !heroku.contains("hex_digest")
                && heroku.contains("public_key")
        );
        let pem = FilterSet::for_rule(
            &rule("high", "(abc[\\s\\S]{10,})", Some("pem_private_key")),
            Some(Validator::PemPrivateKey),
        );
        assert!(!pem.contains("repetitive"));
    }

    #[test]
    fn entropy_is_bits_per_byte() {
        assert_eq!(shannon_entropy(b""), 0.0);
        assert_eq!(shannon_entropy(b"aaaa"), 0.0);
        assert!((shannon_entropy(b"abcd") - 2.0).abs() < 1e-9);
        assert!(shannon_entropy(b"Qx9LmW2pZr8TvY0w") > 3.5);
        assert!(shannon_entropy(b"password") < DEFAULT_LOW_CONFIDENCE_MIN_ENTROPY);
    }
}

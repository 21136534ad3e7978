//! Integration tests of the `keytrail` binary: one test binary, one module
//! per subcommand. Every test runs the built binary in a fresh temporary
//! directory with fixtures (and fake secrets) generated at test time.

mod baseline;
mod ci_audit;
mod ci_hook;
mod ci_redact;
mod ci_snippets;
#[cfg(feature = "collect-aws")]
mod collect;
mod config;
mod dashboard;
mod detect;
mod detect_dist;
#[cfg(feature = "detect-s3")]
mod detect_s3;
mod exports;
mod exposure;
#[cfg(feature = "forge")]
mod forge;
mod formats;
mod git;
mod hardening;
mod help;
mod image;
mod image_registry;
mod integrations;
mod intel;
mod inventory;
mod revoke;
mod rotate;
mod rules;
mod scan;
#[cfg(feature = "scan-s3")]
mod scan_s3;
#[cfg(feature = "git")]
mod schedule;
mod serve;
mod store;
#[cfg(feature = "collect-aws")]
mod submit_aws_org;
#[cfg(feature = "forge")]
mod submit_forge;
#[cfg(feature = "image")]
mod submit_registry;
mod verify;
mod worker;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A temporary working directory and a way to run `keytrail` in it.
pub struct CliTest {
    dir: tempfile::TempDir,
}

/// What a run produced.
#[derive(Debug)]
pub struct Run {
    /// Exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// stdout and stderr together, for "never contains" checks.
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

impl Default for CliTest {
    fn default() -> Self {
        Self::new()
    }
}

impl CliTest {
    /// A new empty directory.
    pub fn new() -> CliTest {
        CliTest {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Write `content` to `rel` (creating parent directories).
    pub fn write(&self, rel: &str, content: &str) -> PathBuf {
        let p = self.root().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content).unwrap();
        p
    }

    /// Read a file written by a run.
    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.root().join(rel)).unwrap()
    }

    /// The command, with a clean colour environment, run in the directory.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_keytrail"));
        c.args(args)
            .current_dir(self.root())
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .env("COLUMNS", "100")
            // The user's cache (IP intelligence) is never read: each test has its own.
            .env("XDG_CACHE_HOME", self.root().join(".cache"));
        // The store's key comes from the key file beside it unless a test
        // says otherwise.
        c.env_remove("KEYTRAIL_STORE_KEY")
            .env_remove("KEYTRAIL_STORE_KEY_FILE");
        // Loopback servers of the tests are reached directly, never through a proxy.
        for v in [
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "http_proxy",
            "https_proxy",
            "all_proxy",
        ] {
            c.env_remove(v);
        }
        c
    }

    /// Run `keytrail ARGS` with empty stdin.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_stdin(args, "")
    }

    /// Run `keytrail ARGS` with these environment variables set.
    pub fn run_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut c = self.command(args);
        for (k, v) in env {
            c.env(k, v);
        }
        let out = c.stdin(Stdio::null()).output().expect("run keytrail");
        Run {
            code: out.status.code().expect("exited normally"),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    }

    /// Run `keytrail ARGS` feeding `stdin`.
    pub fn run_stdin(&self, args: &[&str], stdin: &str) -> Run {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run keytrail");
        let mut input = child.stdin.take().unwrap();
        let data = stdin.as_bytes().to_vec();
        let feeder = std::thread::spawn(move || {
            let _ = input.write_all(&data);
        });
        let out = child.wait_with_output().unwrap();
        feeder.join().unwrap();
        Run {
            code: out.status.code().expect("exited normally"),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    }

    /// Replace what changes between runs (temp dir, timings) for snapshots.
    pub fn filter(&self, text: &str) -> String {
        let root = self.root().display().to_string();
        let text = text.replace(&root, "[TMP]");
        let re = regex::Regex::new(r"in \d+\.\d+s").unwrap();
        re.replace_all(&text, "in [ELAPSED]").into_owned()
    }
}

/// Fake secrets, generated at test time. Not real credentials.
pub mod fake {
    use rand::Rng;

    /// Random characters from `alphabet`.
    pub fn random(alphabet: &[u8], n: usize) -> String {
        let mut rng = rand::rng();
        (0..n)
            .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
            .collect()
    }

    /// A generator of fake provider secrets with a fresh random seed.
    pub fn secrets() -> keytrail_testkit::secrets::FakeSecrets {
        keytrail_testkit::secrets::FakeSecrets::new(rand::random())
    }

    /// A GitHub classic PAT (`ghp_` + 30 base62 + valid CRC32 checksum).
    pub fn github_pat() -> String {
        secrets().github_classic()
    }

    /// A token for the test rule in [`TEST_RULES`](super::TEST_RULES).
    pub fn test_token() -> String {
        format!(
            "ktq_{}",
            random(b"abcdefghijklmnopqrstuvwxyz0123456789", 24)
        )
    }
}

/// A user rule file used by tests that should not depend on builtin rules.
pub const TEST_RULES: &str = r#"provider: Testing
rules:
  - id: testing.token
    name: Testing token
    pattern: '\b(ktq_[a-z0-9]{24})\b'
    keywords: [ktq_]
    confidence: high
    severity: medium
    description: A token format that exists only in keytrail's tests.
    remediation: Nothing to revoke; it is a test fixture.
    references: [https://example.com/testing-token]
    categories: [testing]
    examples: ['TOKEN=ktq_7fk2m9xq4bz1w8jd5hn3vc6r']
    negative_examples: ['TOKEN=ktq_short']
"#;

/// A CliTest with `rules/testing.yml` holding [`TEST_RULES`].
pub fn with_test_rules() -> CliTest {
    let t = CliTest::new();
    t.write("rules/testing.yml", TEST_RULES);
    t
}

/// moto serving the account a snapshot describes (`tests/exposure_moto.py`):
/// the child (its standard input closed stops it) and what it printed
/// (`endpoint`, `created`). Fails loudly when Python with moto is missing.
#[cfg(feature = "collect-aws")]
pub fn start_snapshot_moto(
    snapshot: &Path,
    account: &str,
) -> (std::process::Child, serde_json::Value) {
    let snapshot = snapshot.to_string_lossy();
    start_python_fixture(
        "exposure_moto.py",
        &[&snapshot],
        &[("MOTO_ACCOUNT_ID", account)],
    )
}

/// A Python fixture of `tests/` (a moto server and its seed): the child (its
/// standard input closed stops it) and the JSON line it printed first. Fails
/// loudly when Python with moto is missing.
pub fn start_python_fixture(
    script: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> (std::process::Child, serde_json::Value) {
    use std::io::{BufRead, BufReader};
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(script);
    let mut child = Command::new(&python)
        .arg(path)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {python} (install moto[server] and boto3 with scripts/install-test-deps.sh): {e}"));
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let served = serde_json::from_str(&line).unwrap_or_else(|e| {
        panic!("{script} did not start (is moto[server] installed? scripts/install-test-deps.sh): {e}: {line:?}")
    });
    (child, served)
}

/// `command` with only the test's AWS settings: moto at `endpoint`, fake
/// credentials, no shared config files, no instance metadata.
#[cfg(feature = "collect-aws")]
pub fn aws_test_env(command: &mut Command, endpoint: &str) {
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") {
            command.env_remove(k);
        }
    }
    command
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", "AKIAFAKEFAKEFAKEFAKE")
        .env("AWS_SECRET_ACCESS_KEY", "fake-secret-for-moto")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null");
}

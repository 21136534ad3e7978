//! External programs the integration tests drive (umoci, skopeo,
//! docker-registry, openssl, git): whether they are installed, and running
//! them with their errors in the panic message.

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Checks that every program in `names` is installed; when one is missing
/// the test fails with a message naming the missing programs and
/// `install_hint`. A test never skips for want of a tool, on a developer's
/// machine or in CI: `scripts/install-test-deps.sh` installs them all.
pub fn require(names: &[&str], install_hint: &str) {
    let missing: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| {
            Command::new("sh")
                .args(["-c", &format!("command -v {n} || test -x /usr/bin/{n}")])
                .stdout(Stdio::null())
                .status()
                .map(|s| !s.success())
                .unwrap_or(true)
        })
        .collect();
    assert!(
        missing.is_empty(),
        "this test needs {missing:?}, which is not installed: {install_hint}"
    );
}

/// Run `cmd` and return its standard output; panics with its standard
/// error when it cannot start or fails.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Debian's reference registry (`docker-registry serve`) on a free loopback
/// port, killed on drop.
pub struct Registry {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
}

impl Registry {
    /// Starts a registry storing under `dir` (which must outlive it), with
    /// deletes enabled and `auth` (a YAML `auth:` section, or "" for none),
    /// and waits until it accepts connections.
    pub fn start(dir: &Path, auth: &str) -> Registry {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let addr = format!("127.0.0.1:{port}");
        let config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n{auth}",
            dir.join("registry-data").display()
        );
        let cfg = dir.join("registry.yml");
        std::fs::write(&cfg, config).expect("write the registry config");
        let child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start docker-registry");
        let registry = Registry { child, addr };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(&registry.addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "registry did not start on {}",
                registry.addr
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        registry
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A new 2048-bit RSA key made with `openssl` in `dir` (files `NAME.pem` and
/// `NAME.pub.der`): its PKCS#8 PEM and its RSAPublicKey DER (what `ring`
/// verifies signatures with). Made at test time, so no private key is ever
/// committed; `scripts/install-test-deps.sh` installs openssl.
pub fn rsa_keypair(dir: &Path, name: &str) -> (String, Vec<u8>) {
    require(
        &["openssl"],
        "install it with `bash scripts/install-test-deps.sh`",
    );
    let pem = dir.join(format!("{name}.pem"));
    let der = dir.join(format!("{name}.pub.der"));
    run(Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&pem));
    run(Command::new("openssl")
        .args(["rsa", "-in"])
        .arg(&pem)
        .args(["-RSAPublicKey_out", "-outform", "DER", "-out"])
        .arg(&der));
    (
        std::fs::read_to_string(&pem).expect("the new key"),
        std::fs::read(&der).expect("the new public key"),
    )
}

/// A new self-signed certificate for `name` made with `openssl` in `dir`:
/// the paths of its PEM certificate and of its private key.
pub fn self_signed_cert(dir: &Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    require(
        &["openssl"],
        "install it with `bash scripts/install-test-deps.sh`",
    );
    let cert = dir.join(format!("{name}.crt.pem"));
    let key = dir.join(format!("{name}.key.pem"));
    run(Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
        ])
        .arg(format!("/CN={name}"))
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert));
    (cert, key)
}

/// Every regular file below `dir`, depth first (for tests that check what a
/// run wrote).
pub fn files_below(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_below(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_installed_programs_and_runs_them() {
        require(&["sh"], "POSIX shell");
        assert_eq!(run(Command::new("sh").args(["-c", "printf ok"])), "ok");
    }

    #[test]
    #[should_panic(expected = "run scripts/install-test-deps.sh")]
    fn a_missing_program_fails_naming_the_install() {
        require(
            &["sh", "keytrail-no-such-program"],
            "run scripts/install-test-deps.sh",
        );
    }

    #[test]
    #[should_panic(expected = "failed")]
    fn a_failing_program_panics_with_its_error() {
        run(Command::new("sh").args(["-c", "echo boom >&2; exit 3"]));
    }
}

//! `scan --image` against Debian's reference registry (`docker-registry`)
//! configured for token authentication, end to end: a token service on
//! 127.0.0.1 in the test process (basic credentials or an OAuth2 refresh
//! token in, an RS256 JWT with the registry's `access` claim out, signed
//! with a key and self-signed certificate made by `openssl` at test time and
//! named in the JWT header's `x5c`), an image pushed by `skopeo` through the
//! same service, and keytrail pulling it with `--registry-user`/
//! `--registry-password`, docker `config.json` `auths`, `credHelpers`,
//! `credsStore` (fake `docker-credential-*` scripts on `PATH`) and
//! `identitytoken`.

use crate::image::{Umoci, run, tools};
use crate::{CliTest, Run, fake};
use keytrail_testkit::tools::Registry;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const SERVICE: &str = "keytrail-test-registry";
const ISSUER: &str = "keytrail-test-issuer";

// ------------------------------------------------------------ encodings

const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub(crate) fn base64(data: &[u8]) -> String {
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Unpadded base64url, as JWTs use.
fn base64url(data: &[u8]) -> String {
    base64(data)
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_")
}

/// Decode a query or form component (`%XX`, `+` as space).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `a=1&b=2&b=3` → {a: [1], b: [2, 3]}.
fn parse_form(s: &str) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for pair in s.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        m.entry(percent_decode(k))
            .or_default()
            .push(percent_decode(v));
    }
    m
}

// ------------------------------------------------------------ token service

/// A signing key and its self-signed certificate, made with openssl.
struct SigningKey {
    key: PathBuf,
    cert: PathBuf,
    /// Base64 DER of the certificate, for the JWT `x5c` header.
    cert_der_b64: String,
}

impl SigningKey {
    fn new(dir: &Path) -> SigningKey {
        let (key, cert) = (dir.join("token-key.pem"), dir.join("token-cert.pem"));
        run(Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args(["-subj", "/CN=keytrail-test-token-issuer", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stderr(Stdio::null()));
        let pem = std::fs::read_to_string(&cert).unwrap();
        let cert_der_b64: String = pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<Vec<_>>()
            .concat();
        SigningKey {
            key,
            cert,
            cert_der_b64,
        }
    }

    /// An RS256 JWT with these claims.
    fn jwt(&self, claims: &Value) -> String {
        let header = json!({"typ": "JWT", "alg": "RS256", "x5c": [self.cert_der_b64]});
        let input = format!(
            "{}.{}",
            base64url(header.to_string().as_bytes()),
            base64url(claims.to_string().as_bytes())
        );
        let mut child = Command::new("openssl")
            .args(["dgst", "-sha256", "-binary", "-sign"])
            .arg(&self.key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "openssl dgst -sign failed");
        format!("{input}.{}", base64url(&out.stdout))
    }
}

/// What the token service was asked, one line per request:
/// `GET basic:USER granted SCOPE`, `POST refresh_token denied`, ...
type Log = Arc<Mutex<Vec<String>>>;

/// A token service on 127.0.0.1 (one thread per connection, for the life
/// of the test process).
pub(crate) struct TokenServer {
    realm: String,
    log: Log,
}

struct Accounts {
    user: String,
    password: String,
    refresh_token: String,
}

impl TokenServer {
    fn start(key: SigningKey, accounts: Accounts) -> TokenServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let realm = format!("http://{}/token", listener.local_addr().unwrap());
        let log: Log = Arc::default();
        let state = Arc::new((key, accounts, log.clone()));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = state.clone();
                std::thread::spawn(move || {
                    let _ = serve(stream, &state.0, &state.1, &state.2);
                });
            }
        });
        TokenServer { realm, log }
    }

    pub(crate) fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

/// Answer one HTTP request on `stream`.
fn serve(
    stream: TcpStream,
    key: &SigningKey,
    accounts: &Accounts,
    log: &Log,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut headers = BTreeMap::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body)?;
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut params = parse_form(query);
    if method == "POST" {
        params.extend(parse_form(&String::from_utf8_lossy(&body)));
    }
    let first = |k: &str| params.get(k).and_then(|v| v.first()).cloned();
    // Who is asking.
    let who: Result<String, String> = if method == "POST" {
        match first("grant_type").as_deref() {
            Some("refresh_token")
                if first("refresh_token") == Some(accounts.refresh_token.clone()) =>
            {
                Ok("refresh_token".into())
            }
            Some("password")
                if first("username") == Some(accounts.user.clone())
                    && first("password") == Some(accounts.password.clone()) =>
            {
                Ok(format!("password:{}", accounts.user))
            }
            other => Err(other.unwrap_or("no_grant").to_string()),
        }
    } else {
        match headers
            .get("authorization")
            .and_then(|a| a.strip_prefix("Basic "))
        {
            Some(b)
                if b == base64(format!("{}:{}", accounts.user, accounts.password).as_bytes()) =>
            {
                Ok(format!("basic:{}", accounts.user))
            }
            Some(_) => Err("basic".into()),
            None => Err("anonymous".into()),
        }
    };
    let scopes: Vec<String> = params
        .get("scope")
        .into_iter()
        .flatten()
        .flat_map(|s| s.split(' ').map(str::to_string).collect::<Vec<_>>())
        .filter(|s| !s.is_empty())
        .collect();
    let mut stream = stream;
    let respond = |stream: &mut TcpStream, status: &str, body: String| {
        write!(
            stream,
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    if path != "/token" {
        return respond(&mut stream, "404 Not Found", "{}".into());
    }
    match who {
        Err(what) => {
            log.lock()
                .unwrap()
                .push(format!("{method} {what} denied {}", scopes.join(" ")));
            respond(
                &mut stream,
                "401 Unauthorized",
                json!({"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]})
                    .to_string(),
            )
        }
        Ok(subject) => {
            log.lock()
                .unwrap()
                .push(format!("{method} {subject} granted {}", scopes.join(" ")));
            let access: Vec<Value> = scopes
                .iter()
                .filter_map(|s| {
                    let (kind, rest) = s.split_once(':')?;
                    let (name, actions) = rest.rsplit_once(':')?;
                    Some(json!({"type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}))
                })
                .collect();
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs();
            let claims = json!({
                "iss": ISSUER,
                "sub": subject,
                "aud": first("service").unwrap_or_default(),
                "exp": now + 300,
                "nbf": now - 30,
                "iat": now - 30,
                "jti": fake::random(b"0123456789abcdef", 16),
                "access": access,
            });
            let token = key.jwt(&claims);
            let body = if method == "POST" {
                json!({"access_token": token, "token_type": "Bearer", "expires_in": 300, "refresh_token": accounts.refresh_token})
            } else {
                json!({"token": token, "access_token": token, "expires_in": 300})
            };
            respond(&mut stream, "200 OK", body.to_string())
        }
    }
}

// ------------------------------------------------------------ registry

/// `docker-registry` with token auth on a free loopback port, killed on drop.
fn start_registry(dir: &Path, realm: &str, cert: &Path) -> Registry {
    Registry::start(
        dir,
        &format!(
            "auth:\n  token:\n    realm: {realm}\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
            cert.display()
        ),
    )
}

/// A token-auth registry holding `secure/app:v1`, an image with a fake
/// GitHub token in `/app/.env`.
pub(crate) struct Setup {
    pub(crate) t: CliTest,
    pub(crate) tokens: TokenServer,
    pub(crate) registry: Registry,
    pub(crate) user: String,
    pub(crate) password: String,
    refresh_token: String,
    pub(crate) secret: String,
    pub(crate) reference: String,
}

pub(crate) fn setup() -> Setup {
    tools(&["umoci", "skopeo", "docker-registry", "openssl"]);
    let t = CliTest::new();
    let key = SigningKey::new(t.root());
    let cert = key.cert.clone();
    let (user, password) = (
        "ci-bot".to_string(),
        format!(
            "pw-{}",
            fake::random(b"abcdefghjkmnpqrstuvwxyz23456789", 20)
        ),
    );
    let refresh_token = format!(
        "rt-{}",
        fake::random(b"abcdefghjkmnpqrstuvwxyz23456789", 32)
    );
    let tokens = TokenServer::start(
        key,
        Accounts {
            user: user.clone(),
            password: password.clone(),
            refresh_token: refresh_token.clone(),
        },
    );
    let registry = start_registry(t.root(), &tokens.realm, &cert);
    let secret = fake::github_pat();
    let image = Umoci::new(t.root(), "v1");
    image.write("app/.env", &format!("GITHUB_TOKEN={secret}\n"));
    image.layer("COPY . /app # buildkit");
    let reference = format!("{}/secure/app:v1", registry.addr);
    run(Command::new("skopeo").args([
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        &format!("{user}:{password}"),
        &image.reference(),
        &format!("docker://{reference}"),
    ]));
    assert!(
        tokens
            .log()
            .iter()
            .any(|l| l.starts_with("GET basic:ci-bot granted")
                && l.contains("repository:secure/app:")
                && l.contains("push")),
        "skopeo pushed through the token service: {:?}",
        tokens.log()
    );
    Setup {
        t,
        tokens,
        registry,
        user,
        password,
        refresh_token,
        secret,
        reference,
    }
}

impl Setup {
    /// Run keytrail with `DOCKER_CONFIG` holding `config` (none: an empty
    /// directory) and `bin` first on `PATH`.
    pub(crate) fn scan(&self, args: &[&str], config: Option<&Value>) -> Run {
        let dir = tempfile::tempdir_in(self.t.root()).unwrap();
        if let Some(c) = config {
            std::fs::write(dir.path().join("config.json"), c.to_string()).unwrap();
        }
        let path = format!(
            "{}:{}",
            self.t.root().join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let out = self
            .t
            .command(args)
            .env("DOCKER_CONFIG", dir.path())
            .env("PATH", path)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let r = Run {
            code: out.status.code().unwrap(),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        };
        for s in [&self.password, &self.refresh_token, &self.secret] {
            assert!(!r.all().contains(s.as_str()), "a secret was printed: {r:?}");
        }
        r
    }

    /// `scan --format json --image REF` plus `extra`: the findings.
    fn findings(&self, extra: &[&str], config: Option<&Value>) -> Vec<Value> {
        let mut args = vec!["scan", "--format", "json", "--image", &self.reference];
        args.extend_from_slice(extra);
        let r = self.scan(&args, config);
        assert_eq!(r.code, 1, "{r:?}");
        let doc: Value = serde_json::from_str(&r.stdout).unwrap();
        doc["findings"].as_array().unwrap().clone()
    }

    /// The pushed secret was found in the registry image, with its remediation.
    fn assert_found(&self, findings: &[Value]) {
        let redacted = keytrail_types::redact(self.secret.as_bytes());
        let f = findings
            .iter()
            .find(|f| f["secret_redacted"] == redacted.as_str())
            .unwrap_or_else(|| panic!("not found: {findings:?}"));
        assert_eq!(
            f["locations"][0]["path"],
            format!("{}@layer0:/app/.env", self.reference)
        );
        let r = &f["remediation"];
        assert_eq!(r["references"], json!([self.reference]));
        assert_eq!(r["digests"].as_array().unwrap().len(), 1);
        assert_eq!(r["instructions"], json!(["COPY"]));
    }

    /// Write a fake `docker-credential-NAME` into `bin/` answering `answer`
    /// for this registry (and "not found" for any other), logging what it
    /// was asked to `bin/NAME.asked`.
    fn helper(&self, name: &str, answer: &Value) {
        let log = self.t.root().join("bin").join(format!("{name}.asked"));
        self.script(
            &format!("docker-credential-{name}"),
            &format!(
                "#!/bin/sh\n[ \"$1\" = get ] || exit 3\nread server\necho \"$server\" >> '{log}'\nif [ \"$server\" = '{addr}' ]; then\n  printf '%s' '{answer}'\nelse\n  echo 'credentials not found in native keychain'\n  exit 1\nfi\n",
                log = log.display(),
                addr = self.registry.addr,
            ),
        );
    }

    /// Write an executable `bin/NAME` (on the `PATH` of the scans).
    fn script(&self, name: &str, body: &str) {
        use std::os::unix::fs::PermissionsExt;
        let bin = self.t.root().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let p = bin.join(name);
        std::fs::write(&p, body).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// Scan the image with `--fail-on-error` and the Docker `config`.
    fn scan_failing(&self, config: &Value) -> Run {
        self.scan(
            &[
                "scan",
                "--fail-on-error",
                "--format",
                "json",
                "--image",
                &self.reference,
            ],
            Some(config),
        )
    }

    fn asked(&self, name: &str) -> String {
        std::fs::read_to_string(self.t.root().join("bin").join(format!("{name}.asked")))
            .unwrap_or_default()
    }

    fn grants(&self, prefix: &str) -> usize {
        self.tokens
            .log()
            .iter()
            .filter(|l| {
                l.starts_with(prefix)
                    && l.contains(" granted ")
                    && l.contains("repository:secure/app:pull")
            })
            .count()
    }
}

#[test]
fn bearer_token_auth_with_flags_and_docker_config_auths() {
    let s = setup();
    let before = s.grants("GET basic:ci-bot");
    let findings = s.findings(
        &[
            "--registry-user",
            &s.user,
            "--registry-password",
            &s.password,
        ],
        None,
    );
    s.assert_found(&findings);
    assert!(
        s.grants("GET basic:ci-bot") > before,
        "{:?}",
        s.tokens.log()
    );

    let before = s.grants("GET basic:ci-bot");
    let auth = base64(format!("{}:{}", s.user, s.password).as_bytes());
    let config = json!({"auths": {s.registry.addr.clone(): {"auth": auth}}});
    s.assert_found(&s.findings(&[], Some(&config)));
    assert!(
        s.grants("GET basic:ci-bot") > before,
        "{:?}",
        s.tokens.log()
    );
}

#[test]
fn bearer_token_auth_failures_name_status_and_reference_and_the_run_goes_on() {
    let s = setup();
    // A local image scanned in the same run, after the registry one.
    let local_secret = fake::github_pat();
    let dir = s.t.root().join("local");
    std::fs::create_dir_all(&dir).unwrap();
    let local = Umoci::new(&dir, "v1");
    local.write("etc/token", &format!("token={local_secret}\n"));
    local.layer("COPY token /etc/");
    for (what, args) in [
        (
            "wrong password",
            vec![
                "--registry-user",
                s.user.as_str(),
                "--registry-password",
                "not-the-password",
            ],
        ),
        ("anonymous", vec![]),
    ] {
        let local_ref = local.reference();
        let mut all = vec![
            "scan",
            "--format",
            "json",
            "--image",
            &s.reference,
            "--image",
            &local_ref,
        ];
        all.extend(args.iter().copied());
        let r = s.scan(&all, None);
        // The secure image named on the command line could not be read:
        // the run fails (exit 2), and the local image is still scanned.
        assert_eq!(r.code, 2, "{what}: a named image unreadable: {r:?}");
        assert!(
            r.stderr
                .contains(&format!("error: `{}` could not be read", s.reference)),
            "{what}: {}",
            r.stderr
        );
        let warning = r
            .stderr
            .lines()
            .find(|l| l.starts_with("warning:") && l.contains(&s.reference))
            .unwrap_or_else(|| panic!("{what}: no diagnostic naming the reference: {}", r.stderr));
        assert!(
            warning.contains("401 Unauthorized") && warning.contains(&s.tokens.realm),
            "{what}: {warning}"
        );
        assert!(!r.stderr.contains("not-the-password"), "password printed");
        let doc: Value = serde_json::from_str(&r.stdout).unwrap();
        let redacted = keytrail_types::redact(local_secret.as_bytes());
        assert!(
            doc["findings"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["secret_redacted"] == redacted.as_str()),
            "{what}: the local image was still scanned: {}",
            r.stdout
        );
        assert_eq!(doc["summary"]["unreadable"], 1, "{what}");
    }
    assert!(
        s.tokens
            .log()
            .iter()
            .any(|l| l.starts_with("GET basic denied"))
    );
    assert!(
        s.tokens
            .log()
            .iter()
            .any(|l| l.starts_with("GET anonymous denied"))
    );
}

#[test]
fn credential_helpers_and_identity_tokens() {
    let s = setup();
    let addr = s.registry.addr.clone();

    // credHelpers: the helper for this host gives user name and password.
    s.helper(
        "kt-basic",
        &json!({"ServerURL": addr, "Username": s.user, "Secret": s.password}),
    );
    let config = json!({"credHelpers": {addr.clone(): "kt-basic"}, "auths": {addr.clone(): {}}});
    let before = s.grants("GET basic:ci-bot");
    s.assert_found(&s.findings(&[], Some(&config)));
    assert_eq!(s.asked("kt-basic").lines().next(), Some(addr.as_str()));
    assert!(s.grants("GET basic:ci-bot") > before);

    // credsStore: a helper answering `<token>` gives an identity token,
    // exchanged with a refresh-token grant.
    s.helper(
        "kt-store",
        &json!({"ServerURL": addr, "Username": "<token>", "Secret": s.refresh_token}),
    );
    let config = json!({"credsStore": "kt-store", "auths": {addr.clone(): {}}});
    let before = s.grants("POST refresh_token");
    s.assert_found(&s.findings(&[], Some(&config)));
    assert_eq!(s.asked("kt-store").lines().next(), Some(addr.as_str()));
    assert!(
        s.grants("POST refresh_token") > before,
        "{:?}",
        s.tokens.log()
    );

    // auths identitytoken, as `docker login` leaves it for OAuth registries.
    let config = json!({"auths": {addr.clone(): {"identitytoken": s.refresh_token}}});
    let before = s.grants("POST refresh_token");
    s.assert_found(&s.findings(&[], Some(&config)));
    assert!(s.grants("POST refresh_token") > before);

    // A stale identity token: the token service's status, and the reference.
    let config = json!({"auths": {addr.clone(): {"identitytoken": "rt-revoked"}}});
    let r = s.scan_failing(&config);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains(&s.reference)
            && r.stderr.contains("401 Unauthorized")
            && r.stderr.contains("identity token"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("rt-revoked"), "token printed");

    // A helper that fails for another reason is an error naming it.
    s.script(
        "docker-credential-kt-broken",
        "#!/bin/sh\necho 'keychain locked' >&2\nexit 5\n",
    );
    let config = json!({"credsStore": "kt-broken"});
    let r = s.scan_failing(&config);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("docker-credential-kt-broken") && r.stderr.contains("keychain locked"),
        "{}",
        r.stderr
    );
}

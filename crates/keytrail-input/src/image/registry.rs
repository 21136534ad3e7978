//! A blocking client of the OCI distribution API, just enough to pull:
//! manifests and blobs by digest, anonymous or with credentials (HTTP basic,
//! or a bearer token obtained through the `WWW-Authenticate` challenge from
//! the registry's token service), over HTTPS (rustls) or plain HTTP for the
//! hosts the user names and for loopback registries that do not speak TLS.
//!
//! Credentials come from the flags, else from docker's `config.json` as
//! docker reads it: the `credHelpers` entry for the registry host, else the
//! `credsStore` helper (each run as `docker-credential-NAME get` with the
//! server address on stdin, answering `{"Username", "Secret"}`), else the
//! `auths` entry (`auth`, `username`/`password`, `identitytoken`,
//! `registrytoken`). An identity token (an `auths` `identitytoken`, or a
//! helper answer with user name `<token>`) is an OAuth2 refresh token: it
//! is exchanged at the token service with a `grant_type=refresh_token` POST,
//! as docker does.
//!
//! Every downloaded blob is hashed while it streams and checked against its
//! digest at its end. Credentials and tokens never appear in diagnostics.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use keytrail_types::Secret;
use sha2::{Digest, Sha256};
use ureq::Agent;

use super::reference::RegistryRef;
use super::store::{Opened, Store};
use super::{BlobError, ImageOptions, kinds};

/// Largest manifest or token response read.
const MAX_DOCUMENT: u64 = 8 << 20;

/// Credentials for one registry.
#[derive(Clone)]
pub(crate) enum Credentials {
    /// User name and password (or personal access token used as a password).
    Basic(String, Secret<String>),
    /// A bearer token to send as is.
    Bearer(Secret<String>),
    /// An OAuth2 refresh token (docker's `identitytoken`), exchanged at the
    /// token service for an access token.
    IdentityToken(Secret<String>),
}

/// A registry repository being pulled from.
pub(crate) struct Registry {
    agent: Agent,
    /// `https://host[:port]` or `http://...`.
    base: String,
    repository: String,
    credentials: Option<Credentials>,
    /// The `Authorization` header value in use, once authenticated.
    authorization: Mutex<Option<Secret<String>>>,
}

/// A fetched manifest or index.
pub(crate) struct Document {
    pub(crate) bytes: Vec<u8>,
    pub(crate) content_type: Option<String>,
    pub(crate) digest: String,
}

fn is_loopback(host: &str) -> bool {
    let h = host
        .rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(host, |(h, _)| h);
    h == "localhost" || h.starts_with("127.") || h == "[::1]"
}

impl Registry {
    /// Connect to the registry of `r`: pick the scheme and remember the
    /// credentials to answer a challenge with.
    pub(crate) fn connect(r: &RegistryRef, opts: &ImageOptions) -> Result<Registry, BlobError> {
        let host = r.api_host().to_string();
        let agent: Agent = Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(120)))
            .timeout_per_read(Some(Duration::from_secs(120)))
            .user_agent(concat!("keytrail/", env!("CARGO_PKG_VERSION")))
            .max_redirects(5)
            .build()
            .into();
        let plain = opts
            .plain_http
            .iter()
            .any(|h| h == &host || h == &r.registry);
        let schemes: &[&str] = if plain {
            &["http"]
        } else if is_loopback(&host) {
            &["https", "http"]
        } else {
            &["https"]
        };
        let credentials = credentials_for(r, opts)?;
        let mut last = None;
        for scheme in schemes {
            let base = format!("{scheme}://{host}");
            // A ping: any HTTP answer (even 401) settles the scheme.
            match agent.get(format!("{base}/v2/")).call() {
                Ok(_) => {
                    return Ok(Registry {
                        agent,
                        base,
                        repository: r.repository.clone(),
                        credentials,
                        authorization: Mutex::new(None),
                    });
                }
                Err(e) => last = Some(format!("{base}/v2/: {e}")),
            }
        }
        Err(BlobError::new(
            kinds::IMAGE_REGISTRY,
            format!(
                "cannot reach registry {}: {}",
                r.registry,
                last.unwrap_or_default()
            ),
        ))
    }

    /// GET `url`, answering one authentication challenge.
    fn get(
        &self,
        url: &str,
        accept: Option<&str>,
    ) -> Result<ureq::http::Response<ureq::Body>, BlobError> {
        let send = |auth: Option<&Secret<String>>| {
            let mut req = self.agent.get(url);
            if let Some(a) = accept {
                req = req.header("Accept", a);
            }
            if let Some(auth) = auth {
                req = req.header("Authorization", auth.expose().as_str());
            }
            req.call()
                .map_err(|e| BlobError::new(kinds::IMAGE_REGISTRY, format!("GET {url}: {e}")))
        };
        let current = self.lock_auth().clone();
        let resp = send(current.as_ref())?;
        if resp.status() != 401 {
            return Ok(resp);
        }
        let challenge = resp
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let auth = self.authenticate(&challenge, url)?;
        *self.lock_auth() = Some(auth.clone());
        let resp = send(Some(&auth))?;
        if resp.status() == 401 {
            return Err(BlobError::new(
                kinds::IMAGE_AUTH,
                format!(
                    "GET {url}: HTTP 401 Unauthorized even with {} credentials",
                    self.credential_kind()
                ),
            ));
        }
        Ok(resp)
    }

    fn lock_auth(&self) -> std::sync::MutexGuard<'_, Option<Secret<String>>> {
        self.authorization.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn credential_kind(&self) -> &'static str {
        match &self.credentials {
            None => "anonymous",
            Some(Credentials::Basic(..)) => "user name and password",
            Some(Credentials::Bearer(_)) => "bearer token",
            Some(Credentials::IdentityToken(_)) => "identity token",
        }
    }

    /// The `Authorization` header answering `challenge`.
    fn authenticate(&self, challenge: &str, url: &str) -> Result<Secret<String>, BlobError> {
        let (scheme, params) = parse_challenge(challenge);
        let auth_err = |m: String| BlobError::new(kinds::IMAGE_AUTH, m);
        match (scheme.to_ascii_lowercase().as_str(), &self.credentials) {
            ("basic", Some(Credentials::Basic(user, pass))) => {
                Ok(Secret::new(basic_header(user, pass.expose())))
            }
            ("basic", Some(Credentials::IdentityToken(_))) => Err(auth_err(format!(
                "GET {url}: HTTP 401 Unauthorized: the registry wants a user name and password; \
                 the docker config holds an identity token, which only a token service accepts"
            ))),
            ("basic", _) => Err(auth_err(format!(
                "GET {url}: HTTP 401 Unauthorized: the registry wants a user name and password \
                 (--username/--password or docker login)"
            ))),
            ("bearer", Some(Credentials::Bearer(token))) => {
                Ok(Secret::new(format!("Bearer {}", token.expose())))
            }
            ("bearer", creds) => {
                let realm = params.get("realm").ok_or_else(|| {
                    auth_err(format!(
                        "GET {url}: HTTP 401 with a bearer challenge without realm"
                    ))
                })?;
                let scope = params
                    .get("scope")
                    .cloned()
                    .unwrap_or_else(|| format!("repository:{}:pull", self.repository));
                let service = params.get("service");
                let resp = match creds {
                    Some(Credentials::IdentityToken(refresh)) => {
                        // OAuth2 refresh-token grant, as docker does.
                        let mut form = format!(
                            "grant_type=refresh_token&refresh_token={}&client_id=keytrail&scope={}",
                            percent_encode(refresh.expose()),
                            percent_encode(&scope)
                        );
                        if let Some(service) = service {
                            form.push_str(&format!("&service={}", percent_encode(service)));
                        }
                        self.agent
                            .post(realm.as_str())
                            .header("Content-Type", "application/x-www-form-urlencoded")
                            .send(form.as_str())
                    }
                    _ => {
                        let mut token_url = format!("{realm}?scope={}", percent_encode(&scope));
                        if let Some(service) = service {
                            token_url.push_str(&format!("&service={}", percent_encode(service)));
                        }
                        if let Some(Credentials::Basic(user, _)) = creds {
                            token_url.push_str(&format!("&account={}", percent_encode(user)));
                        }
                        let mut req = self.agent.get(&token_url);
                        if let Some(Credentials::Basic(user, pass)) = creds {
                            req = req.header("Authorization", basic_header(user, pass.expose()));
                        }
                        req.call()
                    }
                }
                .map_err(|e| auth_err(format!("token request to {realm} failed: {e}")))?;
                let status = resp.status();
                if !status.is_success() {
                    return Err(auth_err(format!(
                        "token request to {realm} for `{scope}` ({} credentials): HTTP {}{}",
                        self.credential_kind(),
                        status_text(status),
                        error_detail(resp)
                    )));
                }
                let body = resp
                    .into_body()
                    .into_with_config()
                    .limit(MAX_DOCUMENT)
                    .read_to_vec()
                    .map_err(|e| auth_err(format!("token response from {realm}: {e}")))?;
                #[derive(serde::Deserialize)]
                struct TokenResponse {
                    token: Option<String>,
                    access_token: Option<String>,
                }
                let parsed: TokenResponse = serde_json::from_slice(&body)
                    .map_err(|e| auth_err(format!("token response from {realm}: {e}")))?;
                let token = parsed.token.or(parsed.access_token).ok_or_else(|| {
                    auth_err(format!("token response from {realm} holds no token"))
                })?;
                Ok(Secret::new(format!("Bearer {token}")))
            }
            (other, _) => Err(auth_err(format!(
                "GET {url}: HTTP 401 Unauthorized with an unsupported challenge `{other}`"
            ))),
        }
    }

    /// `https://host[:port]` (or `http://…`): where the API is.
    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    /// GET one page of a JSON listing (`what`: `catalog` or `tags`): its
    /// body and its `Link` header. A status other than 2xx is an error
    /// naming the URL, the status and the registry's error codes.
    pub(crate) fn get_listing(
        &self,
        url: &str,
        what: &str,
    ) -> Result<(Vec<u8>, Option<String>), String> {
        let resp = self
            .get(url, Some("application/json"))
            .map_err(|e| e.message)?;
        let status = resp.status();
        if !status.is_success() {
            let hint = match (status.as_u16(), what) {
                (404, "catalog") => {
                    " (the registry does not offer its catalog: name its images with `keytrail submit scan image:REF`)"
                }
                (401 | 403, _) => {
                    " (credentials: --registry-user/--registry-password or docker login)"
                }
                _ => "",
            };
            return Err(format!(
                "GET {url} ({what}): HTTP {}{}{hint}",
                status_text(status),
                error_detail(resp)
            ));
        }
        let link = resp
            .headers()
            .get("link")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = resp
            .into_body()
            .into_with_config()
            .limit(MAX_DOCUMENT)
            .read_to_vec()
            .map_err(|e| format!("GET {url}: {e}"))?;
        Ok((body, link))
    }

    /// Fetch a manifest or index by tag or digest.
    pub(crate) fn manifest(&self, reference: &str, what: &str) -> Result<Document, BlobError> {
        let url = format!("{}/v2/{}/manifests/{reference}", self.base, self.repository);
        let resp = self.get(&url, Some(super::oci::ACCEPT_MANIFESTS))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(http_error(&url, what, resp));
        }
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(|s| s.split(';').next().unwrap_or(s).trim().to_string());
        let bytes = resp
            .into_body()
            .into_with_config()
            .limit(MAX_DOCUMENT)
            .read_to_vec()
            .map_err(|e| BlobError::new(kinds::IMAGE_REGISTRY, format!("GET {url}: {e}")))?;
        let digest = format!("sha256:{}", hex(&Sha256::digest(&bytes)));
        if reference.starts_with("sha256:") && reference != digest {
            return Err(BlobError::new(
                kinds::IMAGE_CORRUPT,
                format!("manifest {reference} from {url} has digest {digest}"),
            ));
        }
        Ok(Document {
            bytes,
            content_type,
            digest,
        })
    }
}

impl Store for Registry {
    fn open_digest(&self, digest: &str) -> Result<Opened<'_>, BlobError> {
        if !super::oci::valid_digest(digest) {
            return Err(BlobError::new(
                kinds::IMAGE_CORRUPT,
                format!("invalid digest `{digest}`"),
            ));
        }
        let url = format!("{}/v2/{}/blobs/{digest}", self.base, self.repository);
        let resp = self.get(&url, None)?;
        if !resp.status().is_success() {
            return Err(http_error(&url, "blob", resp));
        }
        let len = resp
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let reader = resp.into_body().into_reader();
        Ok((
            Box::new(Verified {
                inner: reader,
                hasher: digest.starts_with("sha256:").then(Sha256::new),
                expected: digest.to_string(),
            }),
            len,
        ))
    }

    fn open_path(&self, path: &str) -> Result<Opened<'_>, BlobError> {
        Err(BlobError::new(
            kinds::IMAGE_BLOB_MISSING,
            format!("registries have no blob paths ({path})"),
        ))
    }

    fn has_path(&self, _: &str) -> bool {
        false
    }
}

/// A blob stream checked against its sha256 digest at its end.
struct Verified<R> {
    inner: R,
    hasher: Option<Sha256>,
    expected: String,
}

impl<R: Read> Read for Verified<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(h) = &mut self.hasher {
            if n > 0 {
                h.update(&buf[..n]);
            } else if !buf.is_empty() {
                let got = format!(
                    "sha256:{}",
                    hex(&self.hasher.take().unwrap_or_default().finalize())
                );
                if got != self.expected {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "blob digest mismatch: expected {}, got {got}",
                            self.expected
                        ),
                    ));
                }
            }
        }
        Ok(n)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn basic_header(user: &str, pass: &str) -> String {
    let raw = format!("{user}:{pass}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

fn status_text(status: ureq::http::StatusCode) -> String {
    match status.canonical_reason() {
        Some(r) => format!("{} {r}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

/// `: CODE message` from a registry's JSON error body, if it has one.
fn error_detail(resp: ureq::http::Response<ureq::Body>) -> String {
    let Ok(body) = resp
        .into_body()
        .into_with_config()
        .limit(64 << 10)
        .read_to_vec()
    else {
        return String::new();
    };
    #[derive(serde::Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<ErrorEntry>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorEntry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    match serde_json::from_slice::<Errors>(&body) {
        Ok(e) if !e.errors.is_empty() => {
            let parts: Vec<String> = e
                .errors
                .iter()
                .map(|x| format!("{} {}", x.code, x.message).trim().to_string())
                .collect();
            format!(": {}", parts.join("; "))
        }
        _ => String::new(),
    }
}

fn http_error(url: &str, what: &str, resp: ureq::http::Response<ureq::Body>) -> BlobError {
    let status = resp.status();
    let kind = match status.as_u16() {
        401 | 403 => kinds::IMAGE_AUTH,
        404 if what == "blob" => kinds::IMAGE_BLOB_MISSING,
        _ => kinds::IMAGE_REGISTRY,
    };
    BlobError::new(
        kind,
        format!(
            "GET {url} ({what}): HTTP {}{}",
            status_text(status),
            error_detail(resp)
        ),
    )
}

/// `Bearer realm="x",service="y"` → ("Bearer", {realm: x, service: y}).
pub(crate) fn parse_challenge(header: &str) -> (String, BTreeMap<String, String>) {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let mut params = BTreeMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek().copied() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        params.insert(key.trim().to_ascii_lowercase(), value.trim().to_string());
    }
    (scheme.to_string(), params)
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Credentials for the registry of `r`: the flags first, then the docker
/// config (see the module documentation). A credential helper that fails
/// (other than "not found") is an error.
fn credentials_for(r: &RegistryRef, opts: &ImageOptions) -> Result<Option<Credentials>, BlobError> {
    if let Some(token) = &opts.token {
        return Ok(Some(Credentials::Bearer(token.clone())));
    }
    if let Some(user) = &opts.username {
        let pass = opts
            .password
            .clone()
            .unwrap_or_else(|| Secret::new(String::new()));
        return Ok(Some(Credentials::Basic(user.clone(), pass)));
    }
    let path = match &opts.docker_config {
        Some(p) => p.clone(),
        None => match default_docker_config() {
            Some(p) => p,
            None => return Ok(None),
        },
    };
    docker_config_auth(&path, &r.registry)
}

/// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
fn default_docker_config() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return Some(Path::new(&dir).join("config.json"));
    }
    let home = std::env::var_os("HOME")?;
    Some(Path::new(&home).join(".docker").join("config.json"))
}

/// The registry host an `auths` key names (`https://index.docker.io/v1/` → `docker.io`).
fn auths_host(key: &str) -> String {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = k.split('/').next().unwrap_or(k);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".to_string()
        }
        h => h.to_string(),
    }
}

/// The credentials a docker `config.json` holds for `registry`: its
/// `credHelpers` entry, else `credsStore`, else its `auths` entry. A missing
/// or unparsable file holds none.
pub(crate) fn docker_config_auth(
    path: &Path,
    registry: &str,
) -> Result<Option<Credentials>, BlobError> {
    let Ok(text) = std::fs::read(path) else {
        return Ok(None);
    };
    #[derive(serde::Deserialize)]
    struct Config {
        #[serde(default)]
        auths: BTreeMap<String, AuthEntry>,
        #[serde(default, rename = "credsStore")]
        creds_store: Option<String>,
        #[serde(default, rename = "credHelpers")]
        cred_helpers: BTreeMap<String, String>,
    }
    #[derive(serde::Deserialize)]
    struct AuthEntry {
        auth: Option<String>,
        username: Option<String>,
        password: Option<String>,
        identitytoken: Option<String>,
        registrytoken: Option<String>,
    }
    let Ok(config) = serde_json::from_slice::<Config>(&text) else {
        return Ok(None);
    };
    let want = auths_host(registry);
    // The address helpers are asked about: docker's for Docker Hub, else the host.
    let server = if want == "docker.io" {
        "https://index.docker.io/v1/".to_string()
    } else {
        registry.to_string()
    };
    if let Some((_, helper)) = config
        .cred_helpers
        .iter()
        .find(|(k, _)| auths_host(k) == want)
    {
        return run_helper(helper, &server);
    }
    if let Some(store) = config.creds_store.as_deref().filter(|s| !s.is_empty())
        && let Some(c) = run_helper(store, &server)?
    {
        return Ok(Some(c));
    }
    let Some((_, entry)) = config
        .auths
        .into_iter()
        .find(|(k, _)| auths_host(k) == want)
    else {
        return Ok(None);
    };
    if let Some(token) = entry.identitytoken.filter(|t| !t.is_empty()) {
        return Ok(Some(Credentials::IdentityToken(Secret::new(token))));
    }
    if let Some(token) = entry.registrytoken.filter(|t| !t.is_empty()) {
        return Ok(Some(Credentials::Bearer(Secret::new(token))));
    }
    if let Some(auth) = entry.auth.filter(|a| !a.trim().is_empty()) {
        let bad = || {
            BlobError::new(
                kinds::IMAGE_AUTH,
                format!(
                    "{}: the `auths` entry for {registry} is not base64 of `user:password`",
                    path.display()
                ),
            )
        };
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| bad())?;
        let text = String::from_utf8(decoded).map_err(|_| bad())?;
        let (user, pass) = text.split_once(':').ok_or_else(bad)?;
        return Ok(Some(Credentials::Basic(
            user.to_string(),
            Secret::new(pass.to_string()),
        )));
    }
    Ok(entry
        .username
        .map(|u| Credentials::Basic(u, Secret::new(entry.password.unwrap_or_default()))))
}

/// How long a credential helper may take.
const HELPER_TIMEOUT: Duration = Duration::from_secs(30);

/// Ask `docker-credential-NAME get` for the credentials of `server`.
/// "Not found" (a failure saying so, or an empty secret) is `None`.
fn run_helper(name: &str, server: &str) -> Result<Option<Credentials>, BlobError> {
    let program = format!("docker-credential-{name}");
    let err = |m: String| {
        BlobError::new(
            kinds::IMAGE_AUTH,
            format!("credential helper {program}: {m}"),
        )
    };
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(err("invalid helper name".to_string()));
    }
    run_helper_program(Path::new(&program), server)
}

/// Run the credential helper `program` (found on `PATH` unless a path).
fn run_helper_program(program: &Path, server: &str) -> Result<Option<Credentials>, BlobError> {
    let shown = program
        .file_name()
        .unwrap_or(program.as_os_str())
        .to_string_lossy();
    let err =
        |m: String| BlobError::new(kinds::IMAGE_AUTH, format!("credential helper {shown}: {m}"));
    let mut child = Command::new(program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| err(format!("cannot run it: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading closes the pipe: not an error here.
        let _ = stdin.write_all(server.as_bytes());
    }
    let deadline = Instant::now() + HELPER_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(err(format!(
                    "no answer for {server} within {}s",
                    HELPER_TIMEOUT.as_secs()
                )));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(err(e.to_string())),
        }
    }
    let out = child.wait_with_output().map_err(|e| err(e.to_string()))?;
    if !out.status.success() {
        let text = String::from_utf8_lossy(if out.stdout.is_empty() {
            &out.stderr
        } else {
            &out.stdout
        })
        .trim()
        .to_string();
        if text.to_ascii_lowercase().contains("credentials not found") {
            return Ok(None);
        }
        let first: String = text
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(200)
            .collect();
        return Err(err(format!(
            "`get` for {server} failed ({}): {first}",
            out.status
        )));
    }
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(rename = "Username", default)]
        username: String,
        #[serde(rename = "Secret", default)]
        secret: String,
    }
    let answer: Answer = serde_json::from_slice(&out.stdout).map_err(|e| {
        err(format!(
            "`get` for {server} answered no credentials JSON: {e}"
        ))
    })?;
    if answer.secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(if answer.username == "<token>" {
        Credentials::IdentityToken(Secret::new(answer.secret))
    } else {
        Credentials::Basic(answer.username, Secret::new(answer.secret))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        let (s, p) = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#,
        );
        assert_eq!(s, "Bearer");
        assert_eq!(p["realm"], "https://auth.docker.io/token");
        assert_eq!(p["scope"], "repository:library/alpine:pull");
        let (s, p) = parse_challenge(r#"Basic realm="basic-realm""#);
        assert_eq!((s.as_str(), p["realm"].as_str()), ("Basic", "basic-realm"));
        let (_, p) = parse_challenge("Bearer realm=http://x/t, service=reg");
        assert_eq!(
            (p["realm"].as_str(), p["service"].as_str()),
            ("http://x/t", "reg")
        );
    }

    #[test]
    fn docker_config_auths() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.json");
        let auth = base64::engine::general_purpose::STANDARD.encode("ci-user:pa:ss");
        std::fs::write(
            &p,
            format!(
                r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{auth}"}},"127.0.0.1:5000":{{"username":"u","password":"p"}}}}}}"#
            ),
        )
        .unwrap();
        match docker_config_auth(&p, "docker.io").unwrap() {
            Some(Credentials::Basic(u, pw)) => {
                assert_eq!((u.as_str(), pw.expose().as_str()), ("ci-user", "pa:ss"))
            }
            _ => panic!("docker.io auth not found"),
        }
        assert!(matches!(
            docker_config_auth(&p, "127.0.0.1:5000").unwrap(),
            Some(Credentials::Basic(u, _)) if u == "u"
        ));
        assert!(docker_config_auth(&p, "ghcr.io").unwrap().is_none());
    }

    /// A fake helper script answering `answer` with exit status `code`.
    fn helper(dir: &Path, answer: &str, code: i32) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.join(format!("docker-credential-fake{code}"));
        std::fs::write(
            &p,
            format!(
                "#!/bin/sh\n[ \"$1\" = get ] || exit 3\nread server\necho \"$server\" > {}/asked\nprintf '%s' '{answer}'\nexit {code}\n",
                dir.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    #[test]
    fn credential_helper_answers() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let basic = helper(
            d,
            r#"{"ServerURL":"reg:5000","Username":"ci","Secret":"pw"}"#,
            0,
        );
        match run_helper_program(&basic, "reg:5000").unwrap() {
            Some(Credentials::Basic(u, p)) => {
                assert_eq!((u.as_str(), p.expose().as_str()), ("ci", "pw"))
            }
            _ => panic!("basic credentials expected"),
        }
        assert_eq!(
            std::fs::read_to_string(d.join("asked")).unwrap(),
            "reg:5000\n"
        );
        let token = helper(d, r#"{"Username":"<token>","Secret":"refresh-1"}"#, 0);
        assert!(matches!(
            run_helper_program(&token, "reg").unwrap(),
            Some(Credentials::IdentityToken(t)) if t.expose() == "refresh-1"
        ));
        let missing = helper(d, "credentials not found in native keychain", 1);
        assert!(run_helper_program(&missing, "reg").unwrap().is_none());
        let broken = helper(d, "keychain locked", 2);
        let e = run_helper_program(&broken, "reg").err().unwrap();
        assert_eq!(e.kind, kinds::IMAGE_AUTH);
        assert!(
            e.message.contains("docker-credential-fake2") && e.message.contains("keychain locked"),
            "{}",
            e.message
        );
        let e = run_helper("../evil", "reg").err().unwrap();
        assert!(e.message.contains("invalid helper name"), "{}", e.message);
        let e = run_helper("keytrail-no-such-helper", "reg").err().unwrap();
        assert!(e.message.contains("cannot run"), "{}", e.message);
    }

    #[test]
    fn docker_config_identity_token_and_helper_order() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.json");
        std::fs::write(
            &p,
            r#"{"auths":{"reg.example:5000":{"identitytoken":"refresh-2"},"other.example":{}}}"#,
        )
        .unwrap();
        assert!(matches!(
            docker_config_auth(&p, "reg.example:5000").unwrap(),
            Some(Credentials::IdentityToken(t)) if t.expose() == "refresh-2"
        ));
        assert!(docker_config_auth(&p, "other.example").unwrap().is_none());
        // credHelpers wins over auths; a helper that cannot run is an error.
        std::fs::write(
            &p,
            r#"{"auths":{"reg.example:5000":{"identitytoken":"x"}},"credHelpers":{"reg.example:5000":"keytrail-no-such-helper"}}"#,
        )
        .unwrap();
        let e = docker_config_auth(&p, "reg.example:5000").err().unwrap();
        assert!(
            e.message
                .contains("docker-credential-keytrail-no-such-helper")
        );
        assert!(
            docker_config_auth(&p, "elsewhere.example")
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("localhost"));
        assert!(!is_loopback("registry.example.com:5000"));
    }
}

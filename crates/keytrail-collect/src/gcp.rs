//! Google Cloud collection: application-default credentials, then the REST
//! APIs behind the layout's `gcp/<project>/` files, written as `gcloud …
//! --format=json` prints them (bare arrays for list commands).
//!
//! Credentials, in order: `GOOGLE_OAUTH_ACCESS_TOKEN` (a token obtained
//! elsewhere, e.g. `gcloud auth print-access-token`); the credentials file
//! (`--credentials`, `GOOGLE_APPLICATION_CREDENTIALS`, or gcloud's
//! `application_default_credentials.json`) of type `service_account`
//! (JWT-bearer grant, RS256) or `authorized_user` (refresh-token grant); the
//! Compute Engine metadata server. Every token asks for the
//! `cloud-platform.read-only` scope where the grant lets it choose.

use crate::rest::{CallError, MAX_PAGES, Rest, base, encode};
use crate::writer::{SnapshotWriter, safe_component};
use base64::Engine as _;
use keytrail_types::{Diagnostic, Secret};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What `keytrail collect gcp` collects, and with which credentials.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcpCollectOptions {
    /// Project ids to collect (`--project`, at least one).
    pub projects: Vec<String>,
    /// One base URL for every Google API and the token endpoint
    /// (`--endpoint-url`: an emulator or proxy). `None`: Google's hosts.
    pub endpoint_url: Option<String>,
    /// Credentials file (`--credentials`); `None` uses the
    /// application-default search.
    pub credentials_file: Option<PathBuf>,
}

/// The scope every minted token asks for.
const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform.read-only";
/// Google's token endpoint.
const TOKEN_URL: &str = "https://oauth2.googleapis.com/token";
/// The metadata server's token path.
const METADATA_TOKEN: &str = "/computeMetadata/v1/instance/service-accounts/default/token";
/// Largest credentials file read.
const MAX_CREDENTIALS_BYTES: u64 = 1024 * 1024;

/// Base URLs of the APIs used.
struct Apis {
    crm: String,
    iam: String,
    container: String,
    compute: String,
    analyzer: String,
    token: Option<String>,
}

impl Apis {
    fn new(endpoint: Option<&str>) -> Result<Apis, String> {
        match endpoint {
            Some(e) => {
                let b = base(e)?;
                Ok(Apis {
                    crm: b.clone(),
                    iam: b.clone(),
                    container: b.clone(),
                    compute: b.clone(),
                    analyzer: b.clone(),
                    token: Some(format!("{b}/token")),
                })
            }
            None => Ok(Apis {
                crm: "https://cloudresourcemanager.googleapis.com".into(),
                iam: "https://iam.googleapis.com".into(),
                container: "https://container.googleapis.com".into(),
                compute: "https://compute.googleapis.com".into(),
                analyzer: "https://policyanalyzer.googleapis.com".into(),
                token: None,
            }),
        }
    }
}

/// Collects every project into `out/gcp/<project>/` and returns the
/// diagnostics. With no usable credentials nothing is written and the one
/// diagnostic says why.
pub fn collect(opts: &GcpCollectOptions, out: &Path) -> Vec<Diagnostic> {
    let apis = match Apis::new(opts.endpoint_url.as_deref()) {
        Ok(a) => a,
        Err(e) => return vec![Diagnostic::error("bad_option", "--endpoint-url", e)],
    };
    if opts.projects.is_empty() {
        return vec![Diagnostic::error(
            "bad_option",
            "--project",
            "name at least one project (--project PROJECT_ID)",
        )];
    }
    let rest = Rest::new(Duration::from_secs(60));
    let token = match token(opts, &apis, &rest) {
        Ok(t) => t,
        Err(e) => return vec![Diagnostic::error("credentials", "collect gcp", e)],
    };
    let mut diags = Vec::new();
    for project in &opts.projects {
        let dir = out.join("gcp");
        if !safe_component(project) || project.contains(['?', '#', '%']) {
            diags.push(Diagnostic::error(
                "bad_option",
                "--project",
                format!("{project:?} is not a project id"),
            ));
            continue;
        }
        let w = SnapshotWriter::new(dir.join(project));
        collect_project(&rest, &apis, &token, project, &w);
        w.write_error_record();
        diags.extend(w.diagnostics());
    }
    diags
}

// --- credentials -----------------------------------------------------------

fn token(opts: &GcpCollectOptions, apis: &Apis, rest: &Rest) -> Result<Secret<String>, String> {
    if let Ok(t) = std::env::var("GOOGLE_OAUTH_ACCESS_TOKEN")
        && !t.trim().is_empty()
    {
        return Ok(Secret::new(t.trim().to_string()));
    }
    if let Some(path) = credentials_path(opts) {
        return token_from_file(&path, apis, rest);
    }
    metadata_token().map_err(|e| {
        format!(
            "no Google credentials: set GOOGLE_APPLICATION_CREDENTIALS or --credentials to a key or \
             `gcloud auth application-default login` file, or GOOGLE_OAUTH_ACCESS_TOKEN \
             (the metadata server was tried too: {e})"
        )
    })
}

/// The credentials file to use: `--credentials`, then
/// `GOOGLE_APPLICATION_CREDENTIALS`, then gcloud's application-default file
/// when it exists.
fn credentials_path(opts: &GcpCollectOptions) -> Option<PathBuf> {
    if let Some(p) = &opts.credentials_file {
        return Some(p.clone());
    }
    if let Ok(p) = std::env::var("GOOGLE_APPLICATION_CREDENTIALS")
        && !p.trim().is_empty()
    {
        return Some(PathBuf::from(p.trim()));
    }
    let config = std::env::var_os("CLOUDSDK_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config/gcloud")))?;
    let adc = config.join("application_default_credentials.json");
    adc.is_file().then_some(adc)
}

fn token_from_file(path: &Path, apis: &Apis, rest: &Rest) -> Result<Secret<String>, String> {
    let shown = path.display();
    let bytes = crate::read_bounded(path, MAX_CREDENTIALS_BYTES)
        .map_err(|e| format!("cannot read the credentials file {shown}: {e}"))?;
    let v: Value = serde_json::from_slice(&bytes)
        .map_err(|e| format!("the credentials file {shown} is not JSON: {e}"))?;
    let field = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("");
    let token_url = apis.token.clone().unwrap_or_else(|| {
        let u = field("token_uri");
        if u.starts_with("https://") {
            u.to_string()
        } else {
            TOKEN_URL.to_string()
        }
    });
    let form = match field("type") {
        "service_account" => {
            let email = field("client_email");
            if email.is_empty() {
                return Err(format!("the credentials file {shown} has no client_email"));
            }
            let key = Secret::new(field("private_key").to_string());
            let jwt = jwt_assertion(email, &key, &token_url, crate::unix_now())
                .map_err(|e| format!("the credentials file {shown}: {e}"))?;
            format!(
                "grant_type={}&assertion={jwt}",
                encode("urn:ietf:params:oauth:grant-type:jwt-bearer")
            )
        }
        "authorized_user" => format!(
            "grant_type=refresh_token&client_id={}&client_secret={}&refresh_token={}",
            encode(field("client_id")),
            encode(field("client_secret")),
            encode(field("refresh_token"))
        ),
        "" => return Err(format!("the credentials file {shown} has no \"type\"")),
        other => {
            return Err(format!(
                "credentials of type {other:?} ({shown}) are not supported: set \
                 GOOGLE_OAUTH_ACCESS_TOKEN=$(gcloud auth print-access-token) instead"
            ));
        }
    };
    let a = rest
        .send(
            "POST",
            &token_url,
            &[("accept", "application/json")],
            Some(("application/x-www-form-urlencoded", form.into_bytes())),
        )
        .map_err(|e| format!("token request to {token_url}: {e}"))?;
    if !a.ok() {
        return Err(format!(
            "token request to {token_url} refused: {}",
            crate::rest::error_of(a.status, &a.body)
        ));
    }
    access_token(&a.body).ok_or_else(|| format!("the answer of {token_url} has no access_token"))
}

fn access_token(body: &Value) -> Option<Secret<String>> {
    body.get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(|t| Secret::new(t.to_string()))
}

fn metadata_token() -> Result<Secret<String>, String> {
    let host = std::env::var("GCE_METADATA_HOST")
        .ok()
        .filter(|h| !h.trim().is_empty())
        .unwrap_or_else(|| "metadata.google.internal".into());
    let url = format!("http://{}{METADATA_TOKEN}", host.trim());
    let rest = Rest::new(Duration::from_secs(2));
    let a = rest
        .send("GET", &url, &[("metadata-flavor", "Google")], None)
        .map_err(|e| e.to_string())?;
    if !a.ok() {
        return Err(format!("HTTP {}", a.status));
    }
    access_token(&a.body).ok_or_else(|| "no access_token in its answer".into())
}

/// A signed JWT-bearer assertion (RFC 7523) for a service account's key:
/// RS256 over the PKCS#8 PEM `private_key` of its key file.
pub fn jwt_assertion(
    email: &str,
    private_key_pem: &Secret<String>,
    audience: &str,
    now: u64,
) -> Result<String, String> {
    let der = pem_der(private_key_pem.expose())?;
    let key = ring::signature::RsaKeyPair::from_pkcs8(&der)
        .map_err(|e| format!("the private key is not a usable RSA PKCS#8 key: {e}"))?;
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let header = b64(br#"{"alg":"RS256","typ":"JWT"}"#);
    let claims =
        json!({"iss": email, "scope": SCOPE, "aud": audience, "iat": now, "exp": now + 600});
    let input = format!("{header}.{}", b64(claims.to_string().as_bytes()));
    let mut sig = vec![0u8; key.public().modulus_len()];
    key.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        input.as_bytes(),
        &mut sig,
    )
    .map_err(|_| "signing the JWT failed".to_string())?;
    Ok(format!("{input}.{}", b64(&sig)))
}

/// The DER of a PEM block (JSON-escaped newlines allowed).
pub fn pem_der(pem: &str) -> Result<Vec<u8>, String> {
    let text = pem.replace("\\n", "\n").replace("\\r", "");
    if !text.contains("-----BEGIN") {
        return Err("no PEM private key".into());
    }
    let body: String = text
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .flat_map(|l| l.chars().filter(|c| !c.is_whitespace()))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|e| format!("the private key is not base64: {e}"))
}

// --- calls -----------------------------------------------------------------

/// Whether a Google error says the API is not enabled in the project (then
/// the project has none of that API's resources).
fn service_disabled(e: &CallError) -> bool {
    e.reasons.iter().any(|r| r == "SERVICE_DISABLED")
        || (e.status == Some(403)
            && (e.message.contains("has not been used in project")
                || e.message.contains("it is disabled")))
}

/// Every item of a paged list (`pageToken` / `nextPageToken`).
fn list(
    rest: &Rest,
    token: &Secret<String>,
    url: &str,
    member: &str,
) -> Result<Vec<Value>, CallError> {
    let mut items = Vec::new();
    let mut page: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let sep = if url.contains('?') { '&' } else { '?' };
        let u = match &page {
            Some(p) => format!("{url}{sep}pageToken={}", encode(p)),
            None => url.to_string(),
        };
        let v = rest.call("GET", &u, token, None)?;
        match v.get(member) {
            Some(Value::Array(a)) => items.extend(a.iter().cloned()),
            None | Some(Value::Null) => {}
            Some(_) => return Err(shape(member)),
        }
        match v.get("nextPageToken").and_then(Value::as_str) {
            Some(next) if !next.is_empty() && page.as_deref() != Some(next) => {
                page = Some(next.to_string())
            }
            _ => return Ok(items),
        }
    }
    Err(CallError {
        status: None,
        code: None,
        message: format!("more than {MAX_PAGES} pages: stopped"),
        reasons: Vec::new(),
    })
}

fn shape(member: &str) -> CallError {
    CallError {
        status: None,
        code: None,
        message: format!("unexpected answer: `{member}` is not a list"),
        reasons: Vec::new(),
    }
}

fn collect_project(
    rest: &Rest,
    apis: &Apis,
    token: &Secret<String>,
    project: &str,
    w: &SnapshotWriter,
) {
    let p = encode(project);
    // IAM policy (version 3: conditional bindings included).
    let rel = "projects-get-iam-policy.json";
    match rest.call(
        "POST",
        &format!("{}/v1/projects/{p}:getIamPolicy", apis.crm),
        token,
        Some(&json!({"options": {"requestedPolicyVersion": 3}})),
    ) {
        Ok(v) => {
            w.json(rel, &v);
        }
        Err(e) => w.error(
            "api_error",
            rel,
            format!("projects.getIamPolicy failed: {e}"),
        ),
    }
    // Service accounts, then each one's keys.
    let rel = "iam-service-accounts-list.json";
    let accounts = list(
        rest,
        token,
        &format!("{}/v1/projects/{p}/serviceAccounts?pageSize=100", apis.iam),
        "accounts",
    );
    match accounts {
        Ok(accounts) => {
            w.json(rel, &Value::Array(accounts.clone()));
            let kdir = "iam-service-accounts-keys-list";
            // The directory says "keys collected", even with no accounts.
            if let Err(e) = std::fs::create_dir_all(w.root().join(kdir)) {
                w.error("write_failed", kdir, e.to_string());
            }
            for a in &accounts {
                let Some(email) = a.get("email").and_then(Value::as_str) else {
                    continue;
                };
                let rel = format!("{kdir}/{email}.json");
                if !safe_component(email) || !email.contains('@') {
                    w.error(
                        "unsafe_name",
                        &format!("{kdir}/"),
                        format!("service account {email:?} cannot be a file name; skipped"),
                    );
                    continue;
                }
                match rest.call(
                    "GET",
                    &format!(
                        "{}/v1/projects/{p}/serviceAccounts/{}/keys",
                        apis.iam,
                        encode(email)
                    ),
                    token,
                    None,
                ) {
                    Ok(v) => {
                        let keys = v.get("keys").cloned().unwrap_or(Value::Array(Vec::new()));
                        w.json(&rel, &keys);
                    }
                    Err(e) => w.error(
                        "api_error",
                        &rel,
                        format!("serviceAccounts.keys.list failed: {e}"),
                    ),
                }
            }
        }
        Err(e) => w.error(
            "api_error",
            rel,
            format!("serviceAccounts.list failed: {e}"),
        ),
    }
    // GKE clusters in every location.
    let rel = "container-clusters-list.json";
    match rest.call(
        "GET",
        &format!("{}/v1/projects/{p}/locations/-/clusters", apis.container),
        token,
        None,
    ) {
        Ok(v) => {
            w.json(
                rel,
                &v.get("clusters")
                    .cloned()
                    .unwrap_or(Value::Array(Vec::new())),
            );
        }
        Err(e) if service_disabled(&e) => {
            w.json(rel, &Value::Array(Vec::new()));
        }
        Err(e) => w.error(
            "api_error",
            rel,
            format!("projects.locations.clusters.list failed: {e}"),
        ),
    }
    // Compute instances of every zone, flattened as gcloud prints them.
    let rel = "compute-instances-list.json";
    match aggregated_instances(rest, apis, token, &p) {
        Ok(list) => {
            w.json(rel, &Value::Array(list));
        }
        Err(e) if service_disabled(&e) => {
            w.json(rel, &Value::Array(Vec::new()));
        }
        Err(e) => w.error(
            "api_error",
            rel,
            format!("instances.aggregatedList failed: {e}"),
        ),
    }
    // Last authentication of keys and accounts (Policy Analyzer).
    for (kind, rel) in [
        (
            "serviceAccountKeyLastAuthentication",
            "policy-intelligence-query-activity-keys.json",
        ),
        (
            "serviceAccountLastAuthentication",
            "policy-intelligence-query-activity-service-accounts.json",
        ),
    ] {
        let url = format!(
            "{}/v1/projects/{p}/locations/global/activityTypes/{kind}/activities:query?pageSize=1000",
            apis.analyzer
        );
        match list(rest, token, &url, "activities") {
            Ok(a) => {
                w.json(rel, &Value::Array(a));
            }
            Err(e) => w.error(
                "api_error",
                rel,
                format!("activities.query ({kind}) failed: {e}"),
            ),
        }
    }
}

fn aggregated_instances(
    rest: &Rest,
    apis: &Apis,
    token: &Secret<String>,
    p: &str,
) -> Result<Vec<Value>, CallError> {
    let url = format!(
        "{}/compute/v1/projects/{p}/aggregated/instances?maxResults=500&returnPartialSuccess=true",
        apis.compute
    );
    let mut out = Vec::new();
    let mut page: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let u = match &page {
            Some(t) => format!("{url}&pageToken={}", encode(t)),
            None => url.clone(),
        };
        let v = rest.call("GET", &u, token, None)?;
        if let Some(Value::Object(items)) = v.get("items") {
            for scope in items.values() {
                if let Some(Value::Array(list)) = scope.get("instances") {
                    out.extend(list.iter().cloned());
                }
            }
        }
        match v.get("nextPageToken").and_then(Value::as_str) {
            Some(next) if !next.is_empty() && page.as_deref() != Some(next) => {
                page = Some(next.to_string())
            }
            _ => return Ok(out),
        }
    }
    Err(CallError {
        status: None,
        code: None,
        message: format!("more than {MAX_PAGES} pages: stopped"),
        reasons: Vec::new(),
    })
}

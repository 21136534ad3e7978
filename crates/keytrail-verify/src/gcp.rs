//! Google Cloud service-account keys: the OAuth 2.0 JWT-bearer grant
//! (RFC 7523) at Google's token endpoint, signed RS256 with the found key.
//! A deleted or disabled key gets `invalid_grant`; a working one an access
//! token, which is dropped at once (never printed, never stored).

use crate::Outcome;
use crate::http::{Client, Request};
use base64::Engine as _;
use keytrail_types::{BlastRadius, Privilege, VerificationStatus};

/// Google's token endpoint.
pub const TOKEN_BASE: &str = "https://oauth2.googleapis.com";

/// Cloud Resource Manager, asked which permissions the account holds on
/// its project (`--analyze`; endpoint override id `gcp.crm`).
pub const CRM_BASE: &str = "https://cloudresourcemanager.googleapis.com";

/// Permissions asked about with `projects.testIamPermissions` (which needs
/// no permission itself), strongest class first: what the account holds
/// decides its privilege.
const PROBES: &[(&str, Privilege)] = &[
    ("resourcemanager.projects.setIamPolicy", Privilege::Admin),
    ("iam.roles.create", Privilege::Admin),
    ("iam.roles.update", Privilege::Admin),
    (
        "iam.serviceAccountKeys.create",
        Privilege::PrivilegeEscalation,
    ),
    ("iam.serviceAccounts.actAs", Privilege::PrivilegeEscalation),
    (
        "iam.serviceAccounts.getAccessToken",
        Privilege::PrivilegeEscalation,
    ),
    (
        "iam.serviceAccounts.signJwt",
        Privilege::PrivilegeEscalation,
    ),
    (
        "compute.instances.setMetadata",
        Privilege::PrivilegeEscalation,
    ),
    (
        "cloudfunctions.functions.create",
        Privilege::PrivilegeEscalation,
    ),
    ("run.services.create", Privilege::PrivilegeEscalation),
    ("secretmanager.versions.access", Privilege::DataAccess),
    ("storage.objects.get", Privilege::DataAccess),
    ("bigquery.tables.getData", Privilege::DataAccess),
    ("cloudsql.instances.connect", Privilege::DataAccess),
    ("storage.objects.create", Privilege::Write),
    ("storage.objects.delete", Privilege::Write),
    ("compute.instances.create", Privilege::Write),
    ("pubsub.topics.publish", Privilege::Write),
    ("resourcemanager.projects.get", Privilege::ReadOnly),
    ("compute.instances.list", Privilege::ReadOnly),
    ("storage.buckets.list", Privilege::ReadOnly),
    ("logging.logEntries.list", Privilege::ReadOnly),
];

/// Ask Cloud Resource Manager which of [`PROBES`] `token` holds on
/// `project`, and classify.
fn analyze_project(
    client: &Client,
    crm_base: &str,
    token: &str,
    project: &str,
    email: &str,
) -> BlastRadius {
    let mut blast = BlastRadius {
        privilege: Privilege::Unknown,
        scopes: Vec::new(),
        resources: vec![format!("gcp-project:{project}")],
        evidence: vec![format!("service account {email} can obtain tokens")],
        unknowns: Vec::new(),
    };
    let body = serde_json::json!({
        "permissions": PROBES.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
    });
    let req = Request {
        method: "POST".into(),
        base: crm_base.trim_end_matches('/').to_string(),
        path: format!(
            "/v1/projects/{}:testIamPermissions",
            crate::http::url_encode(project)
        ),
        headers: vec![
            ("authorization".into(), format!("Bearer {token}")),
            ("content-type".into(), "application/json".into()),
        ],
        body: Some(body.to_string().into_bytes()),
    };
    let r = match client.send_limited(&req, "gcp.crm") {
        Ok(r) => r,
        Err(e) => {
            blast.unknowns.push(format!(
                "projects.testIamPermissions on {project} failed: {e}"
            ));
            return blast;
        }
    };
    let held: Vec<String> = match (r.status, r.json()) {
        (200, Some(j)) => j
            .get("permissions")
            .and_then(|p| p.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .filter(|p| PROBES.iter().any(|(q, _)| q == p))
                    .collect()
            })
            .unwrap_or_default(),
        (status, _) => {
            blast.unknowns.push(format!(
                "projects.testIamPermissions on {project}: HTTP {status}: {}",
                crate::excerpt(&r.body)
            ));
            return blast;
        }
    };
    blast.privilege = PROBES
        .iter()
        .find(|(p, _)| held.iter().any(|h| h == p))
        .map(|(_, class)| *class)
        .unwrap_or(Privilege::None);
    for p in &held {
        blast
            .evidence
            .push(format!("holds {p} on project {project}"));
    }
    blast.scopes = held;
    blast.unknowns.push(format!(
        "only {} permissions on the project itself were tested; roles granted on folders, the organisation or single resources (buckets, secrets) are not seen",
        PROBES.len()
    ));
    blast
}

fn b64url(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// The PKCS#8 DER of a PEM key as found (JSON-escaped newlines allowed).
fn pem_der(pem: &str) -> Result<Vec<u8>, String> {
    let text = pem.replace("\\n", "\n").replace("\\r", "");
    let body: String = text
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .flat_map(|l| l.chars().filter(|c| !c.is_whitespace()))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|e| format!("the private key is not base64: {e}"))
}

/// Verify a service-account key by exchanging a signed JWT for a token.
pub fn verify(
    client: &Client,
    base: &str,
    crm_base: &str,
    pem: &str,
    context: &[(String, String)],
    analyze: bool,
) -> Outcome {
    let Some(email) = context
        .iter()
        .find(|(k, _)| k == "client_email")
        .map(|(_, v)| v.clone())
    else {
        return Outcome::new(
            VerificationStatus::Skipped,
            Some("the key file's client_email was not found next to the key".into()),
        );
    };
    let der = match pem_der(pem) {
        Ok(d) => d,
        Err(e) => return Outcome::new(VerificationStatus::Invalid, Some(e)),
    };
    let key = match ring::signature::RsaKeyPair::from_pkcs8(&der) {
        Ok(k) => k,
        Err(e) => {
            return Outcome::new(
                VerificationStatus::Invalid,
                Some(format!("not a usable RSA PKCS#8 key: {e}")),
            );
        }
    };
    let now = crate::time::now_unix();
    let header = b64url(br#"{"alg":"RS256","typ":"JWT"}"#);
    let claims = serde_json::json!({
        "iss": email,
        "scope": "https://www.googleapis.com/auth/cloud-platform.read-only",
        "aud": "https://oauth2.googleapis.com/token",
        "iat": now,
        "exp": now + 600,
    });
    let payload = b64url(claims.to_string().as_bytes());
    let signing_input = format!("{header}.{payload}");
    let mut sig = vec![0u8; key.public().modulus_len()];
    if key
        .sign(
            &ring::signature::RSA_PKCS1_SHA256,
            &ring::rand::SystemRandom::new(),
            signing_input.as_bytes(),
            &mut sig,
        )
        .is_err()
    {
        return Outcome::unknown("signing the JWT failed");
    }
    let jwt = format!("{signing_input}.{}", b64url(&sig));
    let body = format!(
        "grant_type={}&assertion={}",
        crate::http::url_encode("urn:ietf:params:oauth:grant-type:jwt-bearer"),
        jwt
    );
    let req = Request {
        method: "POST".into(),
        base: base.trim_end_matches('/').to_string(),
        path: "/token".into(),
        headers: vec![(
            "content-type".into(),
            "application/x-www-form-urlencoded".into(),
        )],
        body: Some(body.into_bytes()),
    };
    let r = match client.send_limited(&req, "gcp.jwt") {
        Ok(r) => r,
        Err(e) => return Outcome::unknown(e),
    };
    let json = r.json();
    let project = email
        .split('@')
        .nth(1)
        .and_then(|d| d.strip_suffix(".iam.gserviceaccount.com"))
        .map(str::to_string);
    let got_token = json
        .as_ref()
        .and_then(|j| j.get("access_token"))
        .is_some_and(|t| t.is_string());
    if r.status == 200 && got_token {
        let mut o = Outcome::new(
            VerificationStatus::Live,
            Some("JWT grant returned an access token (discarded)".into()),
        );
        o.identity.push(("client_email".into(), email.clone()));
        if let Some(p) = &project {
            o.identity.push(("project".into(), p.clone()));
        }
        if analyze {
            let token = json
                .as_ref()
                .and_then(|j| j.get("access_token"))
                .and_then(|t| t.as_str())
                .unwrap_or_default();
            o.blast = Some(match &project {
                Some(p) => analyze_project(client, crm_base, token, p, &email),
                None => BlastRadius {
                    privilege: Privilege::Unknown,
                    scopes: Vec::new(),
                    resources: Vec::new(),
                    evidence: vec![format!("service account {email} can obtain tokens")],
                    unknowns: vec![
                        "the account's project is not in its e-mail address: permissions not tested".into(),
                    ],
                },
            });
        }
        return o;
    }
    let err = json
        .as_ref()
        .and_then(|j| j.get("error"))
        .and_then(|e| e.as_str())
        .unwrap_or("")
        .to_string();
    let desc = json
        .as_ref()
        .and_then(|j| j.get("error_description"))
        .and_then(|e| e.as_str())
        .unwrap_or("")
        .to_string();
    if (r.status == 400 || r.status == 401) && (err == "invalid_grant" || err == "invalid_client") {
        return Outcome::new(
            VerificationStatus::Invalid,
            Some(format!("HTTP {}: {err}: {desc}", r.status)),
        );
    }
    Outcome::unknown(format!(
        "unexpected answer: HTTP {}: {}",
        r.status,
        crate::excerpt(&r.body)
    ))
}

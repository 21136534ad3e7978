//! GCP service-account keys: the JWT-bearer grant against a loopback token
//! endpoint that checks the assertion the way Google does (RS256 signature
//! with the service account's public key, issuer, audience, expiry) and
//! answers with a token or `invalid_grant`. The key pair is made at test
//! time with `openssl` (installed by scripts/install-test-deps.sh); the
//! service-account JSON is found by the scanner's own rule.

use base64::Engine as _;
use keytrail_testkit::recorder::{Answer, Recorder};
use keytrail_types::{Finding, VerificationStatus};
use keytrail_verify::{Endpoints, Options, Verifier};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

fn keypair(dir: &Path, name: &str) -> (String, Vec<u8>) {
    keytrail_testkit::tools::rsa_keypair(dir, name)
}

/// A key file in Google's own field order (`type` first, `client_email`
/// after `private_key`).
fn service_account_json(email: &str, pem: &str) -> String {
    format!(
        r#"{{
  "type": "service_account",
  "project_id": "acme-prod",
  "private_key_id": "0123456789abcdef0123456789abcdef01234567",
  "private_key": {},
  "client_email": "{email}",
  "client_id": "109876543210987654321",
  "auth_uri": "https://accounts.google.com/o/oauth2/auth",
  "token_uri": "https://oauth2.googleapis.com/token"
}}"#,
        serde_json::to_string(pem).unwrap()
    )
}

/// The same fields sorted (`jq -S`, Terraform's `jsonencode`).
fn sorted_service_account_json(email: &str, pem: &str) -> String {
    serde_json::json!({
        "type": "service_account",
        "project_id": "acme-prod",
        "private_key_id": "0123456789abcdef0123456789abcdef01234567",
        "private_key": pem,
        "client_email": email,
        "client_id": "109876543210987654321",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": "https://oauth2.googleapis.com/token",
    })
    .to_string()
}

fn scan(text: &str) -> Vec<Finding> {
    let (rules, diags) = keytrail_rules::builtin();
    assert!(diags.is_empty(), "{diags:?}");
    let (scanner, diags) = keytrail_scan::Scanner::new(rules);
    assert!(diags.iter().all(|d| !d.is_error), "{diags:?}");
    let mut agg = keytrail_scan::Aggregator::new();
    for b in scanner.scan_bytes("sa.json", &keytrail_types::Origin::File, text.as_bytes()) {
        agg.add(&scanner, b);
    }
    let v: Vec<Finding> = agg
        .finish()
        .into_iter()
        .filter(|f| f.rule_id.starts_with("gcp.service_account.key"))
        .collect();
    assert_eq!(v.len(), 1, "one service-account key finding");
    v
}

fn b64url(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .expect("base64url")
}

/// Google's side of the grant: `email` may sign in with `public_der`.
fn token_endpoint(email: String, public_der: Vec<u8>) -> Recorder {
    let public_der = Arc::new(public_der);
    Recorder::start(move |req| {
        let invalid = |why: &str| {
            Answer::new(
                400,
                format!(r#"{{"error":"invalid_grant","error_description":"{why}"}}"#),
            )
        };
        if req.method != "POST" || req.path != "/token" {
            return Answer::new(404, "not found");
        }
        let form: Vec<(&str, &str)> = req
            .body
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .collect();
        let grant = form
            .iter()
            .find(|(k, _)| *k == "grant_type")
            .map(|(_, v)| *v);
        if grant != Some("urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer") {
            return Answer::new(400, r#"{"error":"unsupported_grant_type"}"#);
        }
        let Some(jwt) = form
            .iter()
            .find(|(k, _)| *k == "assertion")
            .map(|(_, v)| *v)
        else {
            return invalid("no assertion");
        };
        let parts: Vec<&str> = jwt.split('.').collect();
        if parts.len() != 3 {
            return invalid("malformed assertion");
        }
        let header: serde_json::Value = serde_json::from_slice(&b64url(parts[0])).unwrap();
        assert_eq!(header["alg"], "RS256");
        let claims: serde_json::Value = serde_json::from_slice(&b64url(parts[1])).unwrap();
        if claims["iss"] != email.as_str() {
            return invalid("Invalid JWT: unknown issuer");
        }
        assert_eq!(claims["aud"], "https://oauth2.googleapis.com/token");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let exp = claims["exp"].as_i64().unwrap();
        assert!(exp > now && exp <= now + 3600, "exp {exp}, now {now}");
        let key = ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            public_der.as_slice(),
        );
        let signed = format!("{}.{}", parts[0], parts[1]);
        if key.verify(signed.as_bytes(), &b64url(parts[2])).is_err() {
            return invalid("Invalid JWT Signature.");
        }
        Answer::new(
            200,
            r#"{"access_token":"ya29.c.test-token","expires_in":3599,"token_type":"Bearer"}"#,
        )
    })
}

/// Cloud Resource Manager's `projects.testIamPermissions` for the token
/// the token endpoint hands out: the account holds `held` on acme-prod.
fn resource_manager(held: &'static [&'static str]) -> Recorder {
    Recorder::start(move |req| {
        if req.header("authorization") != Some("Bearer ya29.c.test-token") {
            return Answer::new(401, r#"{"error":{"code":401,"status":"UNAUTHENTICATED"}}"#);
        }
        if req.path != "/v1/projects/acme-prod:testIamPermissions" {
            return Answer::new(
                403,
                r#"{"error":{"code":403,"status":"PERMISSION_DENIED"}}"#,
            );
        }
        let asked: serde_json::Value = serde_json::from_str(&req.body).unwrap();
        let granted: Vec<&str> = asked["permissions"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p.as_str())
            .filter(|p| held.contains(p))
            .collect();
        Answer::new(
            200,
            serde_json::json!({ "permissions": granted }).to_string(),
        )
    })
}

fn verify(findings: &mut [Finding], url: &str, analyze: bool) {
    verify_with(findings, url, None, analyze)
}

fn verify_with(findings: &mut [Finding], url: &str, crm: Option<&str>, analyze: bool) {
    let mut endpoints = Endpoints::new();
    endpoints.set("gcp.jwt", url).unwrap();
    if let Some(c) = crm {
        endpoints.set("gcp.crm", c).unwrap();
    }
    Verifier::new(Options {
        endpoints,
        analyze,
        timeout: Duration::from_secs(5),
        ..Options::default()
    })
    .unwrap()
    .verify(findings);
}

#[test]
fn a_service_account_key_google_knows_is_live_and_a_deleted_one_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let email = "deployer@acme-prod.iam.gserviceaccount.com".to_string();
    let (pem, public) = keypair(dir.path(), "current");
    let (other_pem, _) = keypair(dir.path(), "deleted");
    let srv = token_endpoint(email.clone(), public);

    let crm = resource_manager(&["storage.objects.get", "storage.buckets.list"]);
    let mut f = scan(&service_account_json(&email, &pem));
    verify_with(&mut f, &srv.url(), Some(&crm.url()), true);
    let v = f[0].verification.as_ref().unwrap();
    assert_eq!(v.status, VerificationStatus::Live, "{:?}", v.detail);
    assert_eq!(v.verifier.as_deref(), Some("gcp.jwt"));
    assert!(v.identity.contains(&("client_email".into(), email.clone())));
    assert!(v.identity.contains(&("project".into(), "acme-prod".into())));
    let blast = f[0].blast_radius.as_ref().expect("analysed");
    assert!(
        blast
            .resources
            .contains(&"gcp-project:acme-prod".to_string())
    );
    assert_eq!(
        blast.privilege,
        keytrail_types::Privilege::DataAccess,
        "{blast:?}"
    );
    assert_eq!(
        blast.scopes,
        ["storage.objects.get", "storage.buckets.list"]
    );
    assert!(!blast.unknowns.is_empty(), "what was not read is said");
    assert_eq!(crm.requests().len(), 1);

    // An account that can set the project's IAM policy is admin; one that
    // holds none of the probed permissions, none.
    for (held, class) in [
        (
            &[
                "resourcemanager.projects.setIamPolicy",
                "storage.objects.get",
            ][..],
            keytrail_types::Privilege::Admin,
        ),
        (&[][..], keytrail_types::Privilege::None),
    ] {
        let held: &'static [&'static str] = Box::leak(held.to_vec().into_boxed_slice());
        let crm = resource_manager(held);
        let mut f = scan(&service_account_json(&email, &pem));
        verify_with(&mut f, &srv.url(), Some(&crm.url()), true);
        assert_eq!(f[0].blast_radius.as_ref().unwrap().privilege, class);
    }

    // Resource Manager refusing: the privilege is unknown and says why.
    let denied = Recorder::start(|_| Answer::new(403, r#"{"error":{"code":403}}"#));
    let mut f = scan(&service_account_json(&email, &pem));
    verify_with(&mut f, &srv.url(), Some(&denied.url()), true);
    let blast = f[0].blast_radius.as_ref().unwrap();
    assert_eq!(blast.privilege, keytrail_types::Privilege::Unknown);
    assert!(
        blast.unknowns.iter().any(|u| u.contains("HTTP 403")),
        "{blast:?}"
    );
    // The token the endpoint handed out never reaches the finding.
    let json = serde_json::to_string(&f[0]).unwrap();
    assert!(!json.contains("ya29.c.test-token"));

    // The same key with its fields sorted is found and verified too.
    let mut f = scan(&sorted_service_account_json(&email, &pem));
    assert_eq!(f[0].rule_id, "gcp.service_account.key.sorted");
    verify(&mut f, &srv.url(), false);
    let v = f[0].verification.as_ref().unwrap();
    assert_eq!(v.status, VerificationStatus::Live, "{:?}", v.detail);

    // A key Google no longer has (deleted, or another account's).
    let mut f = scan(&service_account_json(&email, &other_pem));
    verify(&mut f, &srv.url(), false);
    let v = f[0].verification.as_ref().unwrap();
    assert_eq!(v.status, VerificationStatus::Invalid, "{:?}", v.detail);
    assert!(v.detail.as_deref().unwrap_or("").contains("invalid_grant"));
    assert_eq!(srv.requests().len(), 6);
}

#[test]
fn a_broken_key_and_a_broken_endpoint_are_not_live() {
    let srv = Recorder::start(|_| Answer::new(500, "backend error"));
    let dir = tempfile::tempdir().unwrap();
    let (pem, _) = keypair(dir.path(), "k");
    let mut f = scan(&service_account_json(
        "ci@acme-prod.iam.gserviceaccount.com",
        &pem,
    ));
    verify(&mut f, &srv.url(), false);
    assert_eq!(
        f[0].verification.as_ref().unwrap().status,
        VerificationStatus::Unknown
    );

    // One character of the key's body changed: still PEM and base64, so
    // the scanner reports it, but not a usable RSA key: nothing is sent.
    let before = srv.requests().len();
    let mut lines: Vec<String> = pem.lines().map(str::to_string).collect();
    let line = &mut lines[5];
    let c = if line.starts_with('A') { "B" } else { "A" };
    line.replace_range(0..1, c);
    let damaged = lines.join("\n") + "\n";
    let mut f = scan(&service_account_json(
        "ci@acme-prod.iam.gserviceaccount.com",
        &damaged,
    ));
    verify(&mut f, &srv.url(), false);
    let v = f[0].verification.as_ref().unwrap();
    assert_ne!(v.status, VerificationStatus::Live);
    assert_eq!(srv.requests().len(), before, "a broken key is never sent");
}

//! Google Cloud collection against a loopback stand-in of Google's APIs: a
//! token endpoint that checks the JWT-bearer assertion as Google does
//! (RS256 with the service account's public key, issuer, audience, scope)
//! and the REST APIs, paged, with a disabled API, denied calls and a second
//! project that cannot be read. The key pair is made at test time with
//! `openssl` (installed by scripts/install-test-deps.sh).

use base64::Engine as _;
use keytrail_collect::{GcpCollectOptions, collect_gcp};
use keytrail_inventory::{check_all, load_snapshot};
use keytrail_testkit::recorder::{Answer, Recorded, Recorder};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;

const EMAIL: &str = "auditor@sec-tools.iam.gserviceaccount.com";
const TOKEN: &str = "ya29.loopback-test-token-0123456789";
const DEFAULT_SA: &str = "123456789012-compute@developer.gserviceaccount.com";
const OLD_KEY: &str = "1f2e3d4c5b6a79880011223344556677aabbccdd";
const USED_KEY: &str = "2f2e3d4c5b6a79880011223344556677aabbccdd";

fn keypair(dir: &Path) -> (String, Vec<u8>) {
    keytrail_testkit::tools::rsa_keypair(dir, "key")
}

fn form(body: &str) -> Vec<(String, String)> {
    body.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn b64url(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .expect("base64url")
}

/// Google's token endpoint: a valid assertion by EMAIL signed with the key
/// whose public half is `public_der`, for audience `aud`.
fn token_answer(req: &Recorded, public_der: &[u8], aud: &str) -> Answer {
    let invalid = |why: &str| {
        Answer::new(
            400,
            json!({"error": "invalid_grant", "error_description": why}).to_string(),
        )
    };
    let f = form(&req.body);
    let get = |k: &str| f.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    match get("grant_type") {
        Some("urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer") => {}
        Some("refresh_token") => {
            return if get("refresh_token") == Some("1%2F%2Ffake-refresh")
                && get("client_id").is_some()
            {
                Answer::new(
                    200,
                    json!({"access_token": TOKEN, "expires_in": 3599}).to_string(),
                )
            } else {
                invalid("bad refresh token")
            };
        }
        _ => return Answer::new(400, r#"{"error":"unsupported_grant_type"}"#),
    }
    let Some(jwt) = get("assertion") else {
        return invalid("no assertion");
    };
    let parts: Vec<&str> = jwt.split('.').collect();
    if parts.len() != 3 {
        return invalid("malformed assertion");
    }
    let key = ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        public_der,
    );
    let signed = format!("{}.{}", parts[0], parts[1]);
    if key.verify(signed.as_bytes(), &b64url(parts[2])).is_err() {
        return invalid("Invalid JWT Signature.");
    }
    let claims: Value = serde_json::from_slice(&b64url(parts[1])).unwrap();
    if claims["iss"] != EMAIL || claims["aud"] != aud {
        return invalid("wrong issuer or audience");
    }
    if claims["scope"] != "https://www.googleapis.com/auth/cloud-platform.read-only" {
        return invalid("unexpected scope");
    }
    Answer::new(
        200,
        json!({"access_token": TOKEN, "expires_in": 3599, "token_type": "Bearer"}).to_string(),
    )
}

fn google_error(status: u16, code: &str, message: &str, reason: Option<&str>) -> Answer {
    let mut e = json!({"error": {"code": status, "status": code, "message": message}});
    if let Some(r) = reason {
        e["error"]["details"] =
            json!([{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": r}]);
    }
    Answer::new(status, e.to_string())
}

fn instance(name: &str, zone: &str, sa: &str, scopes: &[&str], gke: bool) -> Value {
    let mut i = json!({
        "kind": "compute#instance", "name": name, "status": "RUNNING",
        "zone": format!("https://www.googleapis.com/compute/v1/projects/p1/zones/{zone}"),
        "selfLink": format!("https://www.googleapis.com/compute/v1/projects/p1/zones/{zone}/instances/{name}"),
        "serviceAccounts": [{"email": sa, "scopes": scopes}],
    });
    if gke {
        i["labels"] = json!({"goog-gke-node": ""});
    }
    i
}

/// The Google APIs of project `p1` (and a `p2` this identity cannot read).
fn api_answer(req: &Recorded) -> Answer {
    if req.header("authorization") != Some(&format!("Bearer {TOKEN}")) {
        return google_error(
            401,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials.",
            None,
        );
    }
    let cp = "https://www.googleapis.com/auth/cloud-platform";
    let path = req.path.as_str();
    let ok = |v: Value| Answer::new(200, v.to_string());
    match (req.method.as_str(), path) {
        ("POST", "/v1/projects/p1:getIamPolicy") => {
            let body: Value = serde_json::from_str(&req.body).unwrap_or_default();
            assert_eq!(body["options"]["requestedPolicyVersion"], 3);
            ok(json!({"version": 1, "etag": "BwYUjMh2o1A=", "bindings": [
                {"role": "roles/editor", "members": [format!("serviceAccount:{DEFAULT_SA}")]},
                {"role": "roles/viewer", "members": ["user:alice@example.com"]}
            ]}))
        }
        (_, p) if p.contains("/projects/p2") => google_error(
            403,
            "PERMISSION_DENIED",
            "The caller does not have permission",
            None,
        ),
        ("GET", "/v1/projects/p1/serviceAccounts?pageSize=100") => ok(json!({
            "accounts": [{"email": "ci-bot@p1.iam.gserviceaccount.com", "uniqueId": "1048", "name": "projects/p1/serviceAccounts/ci-bot@p1.iam.gserviceaccount.com"}],
            "nextPageToken": "page/2"
        })),
        ("GET", "/v1/projects/p1/serviceAccounts?pageSize=100&pageToken=page%2F2") => ok(json!({
            "accounts": [{"email": DEFAULT_SA, "uniqueId": "1092", "displayName": "Compute Engine default service account"}]
        })),
        ("GET", "/v1/projects/p1/serviceAccounts/ci-bot%40p1.iam.gserviceaccount.com/keys") => {
            ok(json!({"keys": [
                {"name": format!("projects/p1/serviceAccounts/ci-bot@p1.iam.gserviceaccount.com/keys/{OLD_KEY}"), "keyType": "USER_MANAGED", "validAfterTime": "2023-02-01T00:00:00Z", "validBeforeTime": "9999-12-31T23:59:59Z"},
                {"name": format!("projects/p1/serviceAccounts/ci-bot@p1.iam.gserviceaccount.com/keys/{USED_KEY}"), "keyType": "USER_MANAGED", "validAfterTime": "2024-01-01T00:00:00Z", "validBeforeTime": "9999-12-31T23:59:59Z"}
            ]}))
        }
        ("GET", p)
            if p.starts_with(&format!(
                "/v1/projects/p1/serviceAccounts/{}",
                DEFAULT_SA.replace('@', "%40")
            )) =>
        {
            ok(json!({}))
        }
        ("GET", "/v1/projects/p1/locations/-/clusters") => google_error(
            403,
            "PERMISSION_DENIED",
            "Kubernetes Engine API has not been used in project 123456789012 before or it is disabled.",
            Some("SERVICE_DISABLED"),
        ),
        (
            "GET",
            "/compute/v1/projects/p1/aggregated/instances?maxResults=500&returnPartialSuccess=true",
        ) => ok(json!({
            "items": {
                "zones/us-central1-a": {"instances": [instance("web-1", "us-central1-a", DEFAULT_SA, &[cp], false)]},
                "zones/us-east1-b": {"warning": {"code": "NO_RESULTS_ON_PAGE"}}
            },
            "nextPageToken": "c2"
        })),
        (
            "GET",
            "/compute/v1/projects/p1/aggregated/instances?maxResults=500&returnPartialSuccess=true&pageToken=c2",
        ) => ok(json!({
            "items": {"zones/europe-west1-b": {"instances": [
                instance("gke-pool-1-abc", "europe-west1-b", DEFAULT_SA, &[cp], true),
                instance("api-1", "europe-west1-b", "api@p1.iam.gserviceaccount.com", &[cp], false)
            ]}}
        })),
        (
            "GET",
            "/v1/projects/p1/locations/global/activityTypes/serviceAccountKeyLastAuthentication/activities:query?pageSize=1000",
        ) => {
            let full =
                |k: &str| format!("//iam.googleapis.com/projects/p1/serviceAccounts/1048/keys/{k}");
            let now = chrono_like_now_minus_days(3);
            ok(json!({"activities": [
                {"fullResourceName": full(OLD_KEY), "activityType": "serviceAccountKeyLastAuthentication",
                 "activity": {"lastAuthenticatedTime": "2024-03-01T00:00:00Z", "serviceAccountKey": {"fullResourceName": full(OLD_KEY)}}},
                {"fullResourceName": full(USED_KEY), "activityType": "serviceAccountKeyLastAuthentication",
                 "activity": {"lastAuthenticatedTime": now, "serviceAccountKey": {"fullResourceName": full(USED_KEY)}}}
            ]}))
        }
        ("GET", p) if p.contains("serviceAccountLastAuthentication") => google_error(
            403,
            "PERMISSION_DENIED",
            "Permission 'policyanalyzer.serviceAccountLastAuthenticationActivities.query' denied",
            None,
        ),
        _ => google_error(404, "NOT_FOUND", "no such route in the stand-in", None),
    }
}

/// An RFC 3339 time `days` ago.
fn chrono_like_now_minus_days(days: u64) -> String {
    let t = std::time::SystemTime::now() - std::time::Duration::from_secs(days * 86_400);
    keytrail_inventory::Timestamp::from(t).to_rfc3339()
}

struct Google {
    server: Recorder,
    creds: tempfile::TempDir,
}

impl Google {
    fn start() -> Google {
        let creds = tempfile::tempdir().unwrap();
        let (pem, public_der) = keypair(creds.path());
        let public_der = Arc::new(public_der);
        let aud = Arc::new(std::sync::Mutex::new(String::new()));
        let aud2 = aud.clone();
        let server = Recorder::start(move |req| {
            if req.path == "/token" && req.method == "POST" {
                let a = aud2.lock().unwrap().clone();
                token_answer(req, &public_der, &a)
            } else {
                api_answer(req)
            }
        });
        *aud.lock().unwrap() = format!("{}/token", server.url());
        let key = json!({
            "type": "service_account", "project_id": "sec-tools",
            "private_key_id": "0123456789abcdef0123456789abcdef01234567",
            "private_key": pem, "client_email": EMAIL, "client_id": "1098",
            "token_uri": "https://oauth2.googleapis.com/token"
        });
        std::fs::write(creds.path().join("sa.json"), key.to_string()).unwrap();
        Google { server, creds }
    }

    fn opts(&self, projects: &[&str], creds: &str) -> GcpCollectOptions {
        GcpCollectOptions {
            projects: projects.iter().map(|s| s.to_string()).collect(),
            endpoint_url: Some(self.server.url()),
            credentials_file: Some(self.creds.path().join(creds)),
        }
    }
}

fn read(dir: &Path, rel: &str) -> Value {
    let text = std::fs::read_to_string(dir.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    serde_json::from_str(&text).unwrap()
}

#[test]
fn collects_projects_as_gcloud_prints_them_and_posture_reads_them() {
    let g = Google::start();
    let out = tempfile::tempdir().unwrap();
    let diags = collect_gcp(&g.opts(&["p1", "p2"], "sa.json"), out.path());

    // The failures, each named with its file: one call of p1, every call
    // of p2 (all six denied), nothing else.
    let errors: Vec<_> = diags.iter().filter(|d| d.is_error).collect();
    let p1_errors: Vec<_> = errors
        .iter()
        .filter(|d| d.subject.contains("/gcp/p1/"))
        .collect();
    assert_eq!(p1_errors.len(), 1, "{diags:#?}");
    assert!(
        p1_errors[0]
            .subject
            .ends_with("policy-intelligence-query-activity-service-accounts.json")
    );
    assert!(
        p1_errors[0].message.contains("PERMISSION_DENIED"),
        "{}",
        p1_errors[0].message
    );
    let p2_errors: Vec<_> = errors
        .iter()
        .filter(|d| d.subject.contains("/gcp/p2/"))
        .collect();
    assert_eq!(p2_errors.len(), 6, "{diags:#?}");
    assert!(
        p2_errors
            .iter()
            .all(|d| d.message.contains("HTTP 403 PERMISSION_DENIED"))
    );
    assert_eq!(errors.len(), 7);
    let p2_files: Vec<_> = keytrail_testkit::tools::files_below(&out.path().join("gcp/p2"));
    assert_eq!(p2_files.len(), 1, "only the error record: {p2_files:?}");

    let p1 = out.path().join("gcp/p1");
    // Lists as gcloud prints them: bare arrays, every page.
    let sas = read(&p1, "iam-service-accounts-list.json");
    assert_eq!(sas.as_array().unwrap().len(), 2, "both pages");
    let keys = read(
        &p1,
        "iam-service-accounts-keys-list/ci-bot@p1.iam.gserviceaccount.com.json",
    );
    assert_eq!(keys.as_array().unwrap().len(), 2);
    assert_eq!(
        read(
            &p1,
            &format!("iam-service-accounts-keys-list/{DEFAULT_SA}.json")
        ),
        json!([])
    );
    // The GKE API is off: no clusters can exist.
    assert_eq!(read(&p1, "container-clusters-list.json"), json!([]));
    let instances = read(&p1, "compute-instances-list.json");
    let names: Vec<&str> = instances
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web-1", "gke-pool-1-abc", "api-1"]);
    assert_eq!(
        read(&p1, "policy-intelligence-query-activity-keys.json")
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert!(
        !p1.join("policy-intelligence-query-activity-service-accounts.json")
            .exists()
    );
    let record = read(&p1, keytrail_collect::ERRORS_FILE);
    assert_eq!(record["Errors"].as_array().unwrap().len(), 1);

    // The token went to the APIs only, and is in no file.
    for req in g.server.requests() {
        if req.path != "/token" {
            assert_eq!(
                req.header("authorization"),
                Some(format!("Bearer {TOKEN}").as_str())
            );
        }
    }
    for e in keytrail_testkit::tools::files_below(out.path()) {
        let text = std::fs::read_to_string(&e).unwrap();
        assert!(!text.contains(TOKEN), "{} holds the token", e.display());
        assert!(
            !text.contains("PRIVATE KEY"),
            "{} holds the key",
            e.display()
        );
    }

    // Posture reads the collected files like hand-made ones.
    let (snap, load_diags) = load_snapshot(out.path());
    assert!(load_diags.is_empty(), "{load_diags:#?}");
    let now = keytrail_inventory::Timestamp::from(std::time::SystemTime::now());
    let r = check_all(&snap, None, now);
    let of = |c: &str| -> Vec<String> { r.of(c).map(|f| f.resource.clone()).collect() };
    assert_eq!(
        of("gcp.iam.default_compute_sa_editor"),
        [format!("projects/p1/serviceAccounts/{DEFAULT_SA}")]
    );
    assert_eq!(
        of("gcp.compute.default_service_account_full_scope"),
        ["https://www.googleapis.com/compute/v1/projects/p1/zones/us-central1-a/instances/web-1"]
    );
    assert_eq!(
        of("gcp.iam.service_account_key_unused"),
        [format!(
            "projects/p1/serviceAccounts/ci-bot@p1.iam.gserviceaccount.com/keys/{OLD_KEY}"
        )]
    );
    assert!(of("gcp.gke.public_endpoint").is_empty());
    // p2 could not be read: its checks are not evaluated, never passed.
    for c in [
        "gcp.iam.default_compute_sa_editor",
        "gcp.iam.service_account_key_age",
        "gcp.compute.default_service_account_full_scope",
    ] {
        assert!(
            r.not_evaluated
                .iter()
                .any(|n| n.check == c && n.resource.as_deref() == Some("projects/p2")),
            "{c} on p2: {:#?}",
            r.not_evaluated
        );
    }
}

#[test]
fn authorized_user_credentials_use_the_refresh_grant() {
    let g = Google::start();
    std::fs::write(
        g.creds.path().join("adc.json"),
        json!({"type": "authorized_user", "client_id": "764086051850-x.apps.googleusercontent.com",
               "client_secret": "d-FL95Q19q7MQmFpd7hHD0Ty", "refresh_token": "1//fake-refresh"})
        .to_string(),
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    collect_gcp(&g.opts(&["p1"], "adc.json"), out.path());
    assert!(
        out.path()
            .join("gcp/p1/projects-get-iam-policy.json")
            .is_file()
    );
    let token_req = g
        .server
        .requests()
        .into_iter()
        .find(|r| r.path == "/token")
        .unwrap();
    assert!(
        token_req.body.starts_with("grant_type=refresh_token&"),
        "{}",
        token_req.body
    );
}

#[test]
fn bad_credentials_are_one_clear_error_and_nothing_is_written() {
    let g = Google::start();
    let dir = g.creds.path();
    let other = tempfile::tempdir().unwrap();
    let (wrong_pem, _) = keypair(other.path());
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "missing.json",
            String::new(),
            "cannot read the credentials file",
        ),
        (
            "garbage.json",
            "{\"type\": \"service_acc".into(),
            "is not JSON",
        ),
        (
            "external.json",
            json!({"type": "external_account"}).to_string(),
            "not supported",
        ),
        (
            "nokey.json",
            json!({"type": "service_account", "client_email": EMAIL, "private_key": "abc"})
                .to_string(),
            "no PEM private key",
        ),
        (
            "wrongkey.json",
            json!({"type": "service_account", "client_email": EMAIL, "private_key": wrong_pem})
                .to_string(),
            "Invalid JWT Signature",
        ),
    ];
    for (name, text, expect) in cases {
        if !text.is_empty() {
            std::fs::write(dir.join(name), text).unwrap();
        }
        let out = tempfile::tempdir().unwrap();
        let diags = collect_gcp(&g.opts(&["p1"], name), out.path());
        assert_eq!(diags.len(), 1, "{name}: {diags:#?}");
        assert_eq!(diags[0].kind, "credentials");
        assert!(
            diags[0].message.contains(expect),
            "{name}: {}",
            diags[0].message
        );
        assert!(!out.path().join("gcp").exists(), "{name}: nothing written");
    }
    // Hostile project ids never become paths.
    let out = tempfile::tempdir().unwrap();
    let diags = collect_gcp(&g.opts(&["../etc", "p1?x"], "sa.json"), out.path());
    assert_eq!(
        diags.iter().filter(|d| d.kind == "bad_option").count(),
        2,
        "{diags:#?}"
    );
    assert!(!out.path().join("gcp").exists());
}

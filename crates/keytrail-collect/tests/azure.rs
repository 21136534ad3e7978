//! Azure collection against a loopback stand-in of Microsoft Entra's token
//! endpoint, Microsoft Graph and Azure Resource Manager: a
//! client-credentials sign-in per resource, paged lists (`@odata.nextLink`,
//! `nextLink`), a subscription whose AKS listing is denied, a next page on
//! another host; then posture over the collected snapshot.

use keytrail_collect::{AzureCollectOptions, ClientSecret, collect_azure};
use keytrail_inventory::{check_all, load_snapshot};
use keytrail_testkit::recorder::{Answer, Recorded, Recorder};
use keytrail_types::Secret;
use serde_json::{Value, json};
use std::path::Path;
use std::sync::{Arc, Mutex};

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const CLIENT: &str = "0a1b2c3d-0000-4000-8000-00000000c11e";
const GRAPH_TOKEN: &str = "eyJ0eXAi.graph-loopback-token";
const ARM_TOKEN: &str = "eyJ0eXAi.arm-loopback-token";
const SUB1: &str = "6f1c2b0e-3a44-4d7e-9b1a-2c5d8e7f9a10";
const SUB2: &str = "9a8b7c6d-1111-4222-8333-444455556666";
const SP: &str = "a1a1a1a1-0000-4000-8000-000000000001";

fn secret() -> Secret<String> {
    // A fake made at test time, never a real one.
    Secret::new(format!("kt~{:x}", std::process::id() as u64 * 7919))
}

fn arm_error(status: u16, code: &str) -> Answer {
    Answer::new(
        status,
        json!({"error": {"code": code, "message": format!("{code} (stand-in)")}}).to_string(),
    )
}

fn answer(req: &Recorded, base: &str, client_secret: &str, hostile_next: bool) -> Answer {
    let ok = |v: Value| Answer::new(200, v.to_string());
    let path = req.path.as_str();
    if req.method == "POST" && path == format!("/{TENANT}/oauth2/v2.0/token") {
        let form: Vec<(&str, &str)> = req
            .body
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .collect();
        let get = |k: &str| form.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
        if get("grant_type") != Some("client_credentials")
            || get("client_id") != Some(CLIENT)
            || get("client_secret").map(|s| s.replace("%7E", "~"))
                != Some(client_secret.to_string())
        {
            return Answer::new(401, json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."}).to_string());
        }
        return match get("scope") {
            Some("https%3A%2F%2Fgraph.microsoft.com%2F.default") => {
                ok(json!({"token_type": "Bearer", "expires_in": 3599, "access_token": GRAPH_TOKEN}))
            }
            Some("https%3A%2F%2Fmanagement.azure.com%2F.default") => {
                ok(json!({"token_type": "Bearer", "expires_in": 3599, "access_token": ARM_TOKEN}))
            }
            _ => Answer::new(400, json!({"error": "invalid_scope"}).to_string()),
        };
    }
    let auth = req.header("authorization").unwrap_or("");
    if path.starts_with("/v1.0/") {
        if auth != format!("Bearer {GRAPH_TOKEN}") {
            return arm_error(401, "InvalidAuthenticationToken");
        }
        return match path {
            "/v1.0/applications?$top=999" => ok(json!({
                "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#applications",
                "value": [{"id": "o-1", "appId": "11111111-2222-3333-4444-555555555555", "displayName": "ci-pipeline",
                           "createdDateTime": "2023-01-01T00:00:00Z",
                           "passwordCredentials": [{"keyId": "k-1", "displayName": "deploy", "startDateTime": "2023-01-01T00:00:00Z", "endDateTime": "2099-01-01T00:00:00Z"}]}],
                "@odata.nextLink": format!("{base}/v1.0/applications?$top=999&$skiptoken=p2")
            })),
            "/v1.0/applications?$top=999&$skiptoken=p2" => ok(json!({
                "value": [{"id": "o-2", "appId": "22222222-3333-4444-5555-666666666666", "displayName": "reporting", "passwordCredentials": [], "keyCredentials": []}]
            })),
            "/v1.0/servicePrincipals?$top=999" => {
                let mut v = json!({"value": [
                    {"id": SP, "appId": "11111111-2222-3333-4444-555555555555", "displayName": "ci-pipeline", "servicePrincipalType": "Application"}
                ]});
                if hostile_next {
                    v["@odata.nextLink"] = json!(
                        "https://graph.microsoft.com.attacker.example/v1.0/servicePrincipals?$skiptoken=x"
                    );
                }
                ok(v)
            }
            _ => arm_error(404, "Request_ResourceNotFound"),
        };
    }
    if auth != format!("Bearer {ARM_TOKEN}") {
        return arm_error(401, "InvalidAuthenticationToken");
    }
    let s1 = format!("/subscriptions/{SUB1}");
    let s2 = format!("/subscriptions/{SUB2}");
    let (p, q) = path.split_once('?').unwrap_or((path, ""));
    assert!(
        q.starts_with("api-version="),
        "ARM calls carry an api-version: {path}"
    );
    match p {
        "/subscriptions" => ok(json!({"value": [
            {"id": s1, "subscriptionId": SUB1, "displayName": "prod", "state": "Enabled"},
            {"id": s2, "subscriptionId": SUB2, "displayName": "dev", "state": "Enabled"},
            {"id": "/subscriptions/../../etc", "subscriptionId": "../../etc", "displayName": "hostile"}
        ]})),
        p if p == format!("{s1}/providers/Microsoft.Storage/storageAccounts")
            && !q.contains("skiptoken") =>
        {
            ok(json!({
                "value": [{"id": format!("{s1}/resourceGroups/data/providers/Microsoft.Storage/storageAccounts/pubdata"), "name": "pubdata",
                           "type": "Microsoft.Storage/storageAccounts", "location": "westeurope",
                           "properties": {"allowBlobPublicAccess": true, "minimumTlsVersion": "TLS1_2"}}],
                "nextLink": format!("{base}{s1}/providers/Microsoft.Storage/storageAccounts?api-version=2023-05-01&$skiptoken=2")
            }))
        }
        p if p == format!("{s1}/providers/Microsoft.Storage/storageAccounts") => ok(json!({
            "value": [{"id": format!("{s1}/resourceGroups/data/providers/Microsoft.Storage/storageAccounts/../evil"), "name": "../evil", "properties": {}}]
        })),
        p if p == format!("{s2}/providers/Microsoft.Storage/storageAccounts") => {
            ok(json!({"value": []}))
        }
        p if p
            == format!(
                "{s1}/resourceGroups/data/providers/Microsoft.Storage/storageAccounts/pubdata/blobServices/default/containers"
            ) =>
        {
            ok(json!({"value": [
                {"id": "c1", "name": "public", "properties": {"publicAccess": "Blob"}},
                {"id": "c2", "name": "private", "properties": {"publicAccess": "None"}}
            ]}))
        }
        p if p == format!("{s1}/providers/Microsoft.ContainerService/managedClusters") => {
            ok(json!({"value": [
                {"id": format!("{s1}/resourceGroups/k8s/providers/Microsoft.ContainerService/managedClusters/prod-aks"), "name": "prod-aks",
                 "properties": {"kubernetesVersion": "1.30.3", "fqdn": "prod-aks.hcp.westeurope.azmk8s.io"}}
            ]}))
        }
        p if p == format!("{s2}/providers/Microsoft.ContainerService/managedClusters") => {
            arm_error(403, "AuthorizationFailed")
        }
        p if p.ends_with("/providers/Microsoft.Authorization/roleDefinitions") => {
            ok(json!({"value": [
                {"id": format!("{p}/8e3af657-a8ff-443c-a75c-2fe8c4bcb635"), "name": "8e3af657-a8ff-443c-a75c-2fe8c4bcb635", "properties": {"roleName": "Owner"}},
                {"id": format!("{p}/acdd72a7-3385-48ef-bd42-f606fba81ae7"), "name": "acdd72a7-3385-48ef-bd42-f606fba81ae7", "properties": {"roleName": "Reader"}}
            ]}))
        }
        p if p == format!("{s1}/providers/Microsoft.Authorization/roleAssignments") => {
            ok(json!({"value": [
                {"id": format!("{s1}/providers/Microsoft.Authorization/roleAssignments/ra-1"), "name": "ra-1", "type": "Microsoft.Authorization/roleAssignments",
                 "properties": {"principalId": SP, "principalType": "ServicePrincipal", "scope": s1,
                                "roleDefinitionId": format!("{s1}/providers/Microsoft.Authorization/roleDefinitions/8e3af657-a8ff-443c-a75c-2fe8c4bcb635")}},
                {"id": format!("{s1}/providers/Microsoft.Authorization/roleAssignments/ra-2"), "name": "ra-2",
                 "properties": {"principalId": SP, "principalType": "ServicePrincipal", "scope": s1,
                                "roleDefinitionId": format!("/providers/Microsoft.Authorization/roleDefinitions/ACDD72A7-3385-48EF-BD42-F606FBA81AE7")}}
            ]}))
        }
        p if p == format!("{s2}/providers/Microsoft.Authorization/roleAssignments") => {
            ok(json!({"value": []}))
        }
        _ => arm_error(404, "ResourceNotFound"),
    }
}

struct Azure {
    server: Recorder,
    secret: Secret<String>,
}

impl Azure {
    fn start(hostile_next: bool) -> Azure {
        let secret = secret();
        let s = secret.expose().clone();
        let base = Arc::new(Mutex::new(String::new()));
        let b2 = base.clone();
        let server = Recorder::start(move |req| answer(req, &b2.lock().unwrap(), &s, hostile_next));
        *base.lock().unwrap() = server.url();
        Azure { server, secret }
    }

    fn opts(&self, secret: Secret<String>) -> AzureCollectOptions {
        AzureCollectOptions {
            subscriptions: Vec::new(),
            endpoint_url: Some(self.server.url()),
            client_secret: Some(ClientSecret {
                tenant: TENANT.into(),
                client_id: CLIENT.into(),
                secret,
            }),
        }
    }
}

fn read(dir: &Path, rel: &str) -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(dir.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}")),
    )
    .unwrap()
}

#[test]
fn collects_a_tenant_and_its_subscriptions_as_the_az_cli_prints_them() {
    let az = Azure::start(false);
    let out = tempfile::tempdir().unwrap();
    let diags = collect_azure(&az.opts(az.secret.clone()), out.path());
    let errors: Vec<_> = diags.iter().filter(|d| d.is_error).collect();
    // The denied AKS listing of the second subscription, and the storage
    // account whose name cannot be a file name.
    assert_eq!(errors.len(), 2, "{diags:#?}");
    assert!(
        errors
            .iter()
            .any(|d| d.subject.ends_with("aks-list.json")
                && d.message.contains("AuthorizationFailed")),
        "{errors:#?}"
    );
    assert!(
        errors
            .iter()
            .any(|d| d.kind == "unsafe_name" && d.message.contains("../evil")),
        "{errors:#?}"
    );

    let dir = out.path().join("azure");
    // Graph pages as Graph sent them, both pages.
    assert_eq!(
        read(&dir, "graph-applications.json")["value"][0]["displayName"],
        "ci-pipeline"
    );
    assert_eq!(
        read(&dir, "graph-applications.2.json")["value"][0]["displayName"],
        "reporting"
    );
    assert_eq!(
        read(&dir, "graph-service-principals.json")["value"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // ARM resources flattened as the az CLI prints them, every page.
    let accounts = read(&dir, "storage-account-list.json");
    assert_eq!(accounts.as_array().unwrap().len(), 2);
    assert_eq!(accounts[0]["allowBlobPublicAccess"], true);
    assert!(accounts[0].get("properties").is_none());
    assert_eq!(
        read(&dir, "storage-container-list/pubdata.json")
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert!(!dir.join("evil.json").exists() && !out.path().join("evil.json").exists());
    assert!(
        !dir.join("aks-list.json").exists(),
        "a partial cluster list is never written"
    );
    let ra = read(&dir, "role-assignment-list.json");
    assert_eq!(ra[0]["roleDefinitionName"], "Owner");
    assert_eq!(ra[0]["principalType"], "ServicePrincipal");
    assert_eq!(
        ra[1]["roleDefinitionName"], "Reader",
        "role ids match whatever their case"
    );

    // Each token went to its own API only; none is in any file.
    for req in az.server.requests() {
        let auth = req.header("authorization").unwrap_or("");
        if req.path.starts_with("/v1.0/") {
            assert_eq!(auth, format!("Bearer {GRAPH_TOKEN}"));
        } else if req.path.starts_with("/subscriptions") {
            assert_eq!(auth, format!("Bearer {ARM_TOKEN}"));
            assert!(
                !req.path.contains(".."),
                "hostile subscription id used: {}",
                req.path
            );
        }
    }
    for f in keytrail_testkit::tools::files_below(out.path()) {
        let text = std::fs::read_to_string(&f).unwrap();
        for t in [GRAPH_TOKEN, ARM_TOKEN, az.secret.expose().as_str()] {
            assert!(!text.contains(t), "{} holds a credential", f.display());
        }
    }

    // Posture over the collected snapshot.
    let (snap, load_diags) = load_snapshot(out.path());
    // The one hostile name is named again by the reader, nothing else.
    let load_errors: Vec<_> = load_diags.iter().filter(|d| d.is_error).collect();
    assert_eq!(load_errors.len(), 1, "{load_diags:#?}");
    assert_eq!(load_errors[0].kind, "unsafe_name");
    let now = keytrail_inventory::Timestamp::from(std::time::SystemTime::now());
    let r = check_all(&snap, None, now);
    let facts: Vec<&str> = r
        .of("azure.rbac.service_principal_privileged")
        .map(|f| f.fact.as_str())
        .collect();
    assert_eq!(
        facts,
        [format!(
            "application ci-pipeline holds Owner on /subscriptions/{SUB1}"
        )]
    );
    assert_eq!(r.of("azure.storage.container_anonymous_access").count(), 1);
    assert!(
        r.is_not_evaluated("azure.aks.public_endpoint"),
        "{:#?}",
        r.not_evaluated
    );
    assert_eq!(r.of("azure.entra.app_credential_long_validity").count(), 1);
}

#[test]
fn a_next_page_on_another_host_is_never_followed() {
    let az = Azure::start(true);
    let out = tempfile::tempdir().unwrap();
    let diags = collect_azure(&az.opts(az.secret.clone()), out.path());
    assert!(
        diags
            .iter()
            .any(|d| d.subject.ends_with("graph-service-principals.json")
                && d.message.contains("another host")),
        "{diags:#?}"
    );
    assert!(
        !out.path()
            .join("azure/graph-service-principals.json")
            .exists()
    );
    assert!(
        az.server
            .requests()
            .iter()
            .all(|r| !r.path.contains("attacker"))
    );
}

#[test]
fn a_wrong_secret_is_one_clear_error_and_nothing_is_written() {
    let az = Azure::start(false);
    let out = tempfile::tempdir().unwrap();
    let diags = collect_azure(&az.opts(Secret::new("kt~wrong".into())), out.path());
    assert_eq!(diags.len(), 1, "{diags:#?}");
    assert_eq!(diags[0].kind, "credentials");
    assert!(
        diags[0].message.contains("AADSTS7000215"),
        "{}",
        diags[0].message
    );
    assert!(!out.path().join("azure").exists());
    // A subscription id that is not a GUID is refused before anything is sent.
    let mut o = az.opts(az.secret.clone());
    o.subscriptions = vec!["../../providers".into()];
    let diags = collect_azure(&o, out.path());
    assert_eq!(diags[0].kind, "bad_option", "{diags:#?}");
}

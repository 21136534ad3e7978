//! Azure collection: Microsoft Graph (the tenant's applications and service
//! principals with their credentials) and Azure Resource Manager (storage
//! accounts and their blob containers, AKS clusters, role assignments of
//! every subscription named or visible), written under `azure/` as the az
//! CLI prints them (`properties` flattened into each resource).
//!
//! Credentials, in order: a service principal's secret from the
//! environment (`AZURE_CLIENT_ID`, `AZURE_TENANT_ID`, `AZURE_CLIENT_SECRET`:
//! client-credentials grant); the az CLI's login (`az account
//! get-access-token`); the managed identity of the machine (IMDS).

use crate::rest::{CallError, MAX_PAGES, Rest, base, encode};
use crate::writer::{SnapshotWriter, safe_component};
use keytrail_types::{Diagnostic, Secret};
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

/// What `keytrail collect azure` collects, and with which credentials.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AzureCollectOptions {
    /// Subscription ids (`--subscription`); empty: every subscription the
    /// identity can see.
    pub subscriptions: Vec<String>,
    /// One base URL for Graph, ARM and the token endpoint
    /// (`--endpoint-url`: an emulator or proxy). `None`: Microsoft's hosts.
    pub endpoint_url: Option<String>,
    /// A service principal's secret to sign in with; `None` reads
    /// `AZURE_TENANT_ID`, `AZURE_CLIENT_ID` and `AZURE_CLIENT_SECRET`, then
    /// falls back to the az CLI and the managed identity.
    pub client_secret: Option<ClientSecret>,
}

/// A service principal's sign-in (client-credentials grant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSecret {
    /// Tenant id or domain.
    pub tenant: String,
    /// Application (client) id.
    pub client_id: String,
    /// The secret (redacted when printed).
    pub secret: Secret<String>,
}

const GRAPH: &str = "https://graph.microsoft.com";
const ARM: &str = "https://management.azure.com";
const LOGIN: &str = "https://login.microsoftonline.com";
const IMDS: &str = "http://169.254.169.254";

/// API versions (ARM requires one per resource provider).
const V_SUBSCRIPTIONS: &str = "2022-12-01";
const V_STORAGE: &str = "2023-05-01";
const V_AKS: &str = "2024-05-01";
const V_AUTHORIZATION: &str = "2022-04-01";

struct Hosts {
    graph: String,
    arm: String,
    login: String,
}

/// Collects into `out/azure/` and returns the diagnostics.
pub fn collect(opts: &AzureCollectOptions, out: &Path) -> Vec<Diagnostic> {
    let hosts = match &opts.endpoint_url {
        Some(e) => match base(e) {
            Ok(b) => Hosts {
                graph: b.clone(),
                arm: b.clone(),
                login: b,
            },
            Err(e) => return vec![Diagnostic::error("bad_option", "--endpoint-url", e)],
        },
        None => Hosts {
            graph: GRAPH.into(),
            arm: ARM.into(),
            login: LOGIN.into(),
        },
    };
    for s in &opts.subscriptions {
        if !is_guid(s) {
            return vec![Diagnostic::error(
                "bad_option",
                "--subscription",
                format!("{s:?} is not a subscription id (a GUID)"),
            )];
        }
    }
    let rest = Rest::new(Duration::from_secs(60));
    let creds = match &opts.client_secret {
        Some(c) => Credentials::Secret {
            tenant: c.tenant.clone(),
            client: c.client_id.clone(),
            secret: c.secret.clone(),
        },
        None => Credentials::detect(),
    };
    let graph_token = match creds.token(&rest, &hosts, "https://graph.microsoft.com") {
        Ok(t) => t,
        Err(e) => return vec![Diagnostic::error("credentials", "collect azure", e)],
    };
    let arm_token = match creds.token(&rest, &hosts, "https://management.azure.com") {
        Ok(t) => t,
        Err(e) => return vec![Diagnostic::error("credentials", "collect azure", e)],
    };
    let w = SnapshotWriter::new(out.join("azure"));
    graph_pages(
        &rest,
        &hosts,
        &graph_token,
        &w,
        "applications",
        "graph-applications",
    );
    graph_pages(
        &rest,
        &hosts,
        &graph_token,
        &w,
        "servicePrincipals",
        "graph-service-principals",
    );
    arm(&rest, &hosts, &arm_token, &w, &opts.subscriptions);
    w.write_error_record();
    w.diagnostics()
}

fn is_guid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

// --- credentials -----------------------------------------------------------

enum Credentials {
    Secret {
        tenant: String,
        client: String,
        secret: Secret<String>,
    },
    Cli,
}

impl Credentials {
    fn detect() -> Credentials {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        match (
            var("AZURE_TENANT_ID"),
            var("AZURE_CLIENT_ID"),
            var("AZURE_CLIENT_SECRET"),
        ) {
            (Some(tenant), Some(client), Some(secret)) => Credentials::Secret {
                tenant,
                client,
                secret: Secret::new(secret),
            },
            _ => Credentials::Cli,
        }
    }

    /// A token for `resource` (`https://graph.microsoft.com`, ...).
    fn token(&self, rest: &Rest, hosts: &Hosts, resource: &str) -> Result<Secret<String>, String> {
        match self {
            Credentials::Secret {
                tenant,
                client,
                secret,
            } => {
                if !tenant
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'))
                {
                    return Err(format!(
                        "AZURE_TENANT_ID {tenant:?} is not a tenant id or domain"
                    ));
                }
                let url = format!("{}/{tenant}/oauth2/v2.0/token", hosts.login);
                let form = format!(
                    "grant_type=client_credentials&client_id={}&client_secret={}&scope={}",
                    encode(client),
                    encode(secret.expose()),
                    encode(&format!("{resource}/.default"))
                );
                let a = rest
                    .send(
                        "POST",
                        &url,
                        &[("accept", "application/json")],
                        Some(("application/x-www-form-urlencoded", form.into_bytes())),
                    )
                    .map_err(|e| format!("token request to {url}: {e}"))?;
                if !a.ok() {
                    return Err(format!(
                        "token request for {resource} refused: {}",
                        crate::rest::error_of(a.status, &a.body)
                    ));
                }
                a.body
                    .get("access_token")
                    .and_then(Value::as_str)
                    .filter(|t| !t.is_empty())
                    .map(|t| Secret::new(t.to_string()))
                    .ok_or_else(|| format!("the answer of {url} has no access_token"))
            }
            Credentials::Cli => cli_token(resource).or_else(|cli| {
                imds_token(resource).map_err(|imds| {
                    format!(
                        "no Azure credentials: set AZURE_TENANT_ID, AZURE_CLIENT_ID and \
                         AZURE_CLIENT_SECRET, or log in with `az login` (az CLI: {cli}; managed \
                         identity: {imds})"
                    )
                })
            }),
        }
    }
}

/// `az account get-access-token --resource R` (the CLI is run, never a shell).
fn cli_token(resource: &str) -> Result<Secret<String>, String> {
    let az = std::env::var_os("KEYTRAIL_AZ").unwrap_or_else(|| "az".into());
    let out = std::process::Command::new(&az)
        .args([
            "account",
            "get-access-token",
            "--resource",
            resource,
            "--output",
            "json",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", az.to_string_lossy()))?;
    if !out.status.success() {
        let err: String = String::from_utf8_lossy(&out.stderr)
            .chars()
            .take(300)
            .collect();
        return Err(format!(
            "`az account get-access-token` failed: {}",
            err.trim()
        ));
    }
    let v: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("`az account get-access-token` printed no JSON: {e}"))?;
    v.get("accessToken")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(|t| Secret::new(t.to_string()))
        .ok_or_else(|| "`az account get-access-token` printed no accessToken".into())
}

fn imds_token(resource: &str) -> Result<Secret<String>, String> {
    let url = format!(
        "{IMDS}/metadata/identity/oauth2/token?api-version=2018-02-01&resource={}",
        encode(resource)
    );
    let a = Rest::new(Duration::from_secs(2))
        .send("GET", &url, &[("metadata", "true")], None)
        .map_err(|e| e.to_string())?;
    if !a.ok() {
        return Err(format!("HTTP {}", a.status));
    }
    a.body
        .get("access_token")
        .and_then(Value::as_str)
        .map(|t| Secret::new(t.to_string()))
        .ok_or_else(|| "no access_token in its answer".into())
}

// --- calls -----------------------------------------------------------------

/// Whether a `nextLink` stays on the host the token is meant for.
fn same_origin(link: &str, base: &str) -> bool {
    link.starts_with(base) && link[base.len()..].starts_with('/')
}

/// Every item of an OData / ARM list (`value` + `@odata.nextLink` or
/// `nextLink`), calling `page` with each page's body.
fn pages(
    rest: &Rest,
    token: &Secret<String>,
    first: String,
    origin: &str,
    mut page: impl FnMut(Value),
) -> Result<(), CallError> {
    let mut url = first;
    for _ in 0..MAX_PAGES {
        let v = rest.call("GET", &url, token, None)?;
        if v.get("value").is_some_and(|x| !x.is_array()) {
            return Err(CallError {
                status: None,
                code: None,
                message: "unexpected answer: `value` is not a list".into(),
                reasons: Vec::new(),
            });
        }
        let next = v
            .get("@odata.nextLink")
            .or_else(|| v.get("nextLink"))
            .and_then(Value::as_str)
            .map(str::to_string);
        page(v);
        match next {
            Some(n) if n == url => return Ok(()),
            Some(n) if same_origin(&n, origin) => url = n,
            Some(n) => {
                return Err(CallError {
                    status: None,
                    code: None,
                    message: format!("next page {n:?} is on another host: not followed"),
                    reasons: Vec::new(),
                });
            }
            None => return Ok(()),
        }
    }
    Err(CallError {
        status: None,
        code: None,
        message: format!("more than {MAX_PAGES} pages: stopped"),
        reasons: Vec::new(),
    })
}

fn values(v: &Value) -> Vec<Value> {
    v.get("value")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// Graph `/v1.0/{what}`, every page written as Graph sent it
/// (`stem.json`, `stem.2.json`, ...). A failed page drops the whole list:
/// a partial list would make the missing objects look compliant.
fn graph_pages(
    rest: &Rest,
    h: &Hosts,
    token: &Secret<String>,
    w: &SnapshotWriter,
    what: &str,
    stem: &str,
) {
    let mut got = Vec::new();
    let r = pages(
        rest,
        token,
        format!("{}/v1.0/{what}?$top=999", h.graph),
        &h.graph,
        |v| got.push(v),
    );
    let rel = format!("{stem}.json");
    match r {
        Ok(()) => {
            for (i, v) in got.iter().enumerate() {
                let name = if i == 0 {
                    rel.clone()
                } else {
                    format!("{stem}.{}.json", i + 1)
                };
                w.json(&name, v);
            }
        }
        Err(e) => w.error(
            "api_error",
            &rel,
            format!("Graph GET /v1.0/{what} failed: {e}"),
        ),
    }
}

/// A resource as the az CLI prints it: `properties` merged into the object.
fn flatten(mut r: Value) -> Value {
    if let Some(Value::Object(props)) = r.get_mut("properties").map(Value::take)
        && let Value::Object(o) = &mut r
    {
        o.remove("properties");
        for (k, v) in props {
            o.entry(k).or_insert(v);
        }
    }
    r
}

fn arm_list(
    rest: &Rest,
    h: &Hosts,
    token: &Secret<String>,
    path: &str,
    version: &str,
) -> Result<Vec<Value>, CallError> {
    let mut out = Vec::new();
    pages(
        rest,
        token,
        format!("{}{path}?api-version={version}", h.arm),
        &h.arm,
        |v| out.extend(values(&v)),
    )?;
    Ok(out)
}

fn arm(rest: &Rest, h: &Hosts, token: &Secret<String>, w: &SnapshotWriter, given: &[String]) {
    let subs: Vec<String> = if given.is_empty() {
        match arm_list(rest, h, token, "/subscriptions", V_SUBSCRIPTIONS) {
            Ok(list) => {
                w.json("account-list.json", &Value::Array(list.clone()));
                list.iter()
                    .filter_map(|s| s.get("subscriptionId").and_then(Value::as_str))
                    .filter(|s| is_guid(s))
                    .map(str::to_string)
                    .collect()
            }
            Err(e) => {
                for rel in [
                    "storage-account-list.json",
                    "aks-list.json",
                    "role-assignment-list.json",
                ] {
                    w.error(
                        "api_error",
                        rel,
                        format!("listing subscriptions failed: {e}"),
                    );
                }
                return;
            }
        }
    } else {
        given.to_vec()
    };
    // Storage accounts of every subscription, then each one's containers.
    let mut accounts = Vec::new();
    let mut failed = None;
    for s in &subs {
        match arm_list(
            rest,
            h,
            token,
            &format!("/subscriptions/{s}/providers/Microsoft.Storage/storageAccounts"),
            V_STORAGE,
        ) {
            Ok(list) => accounts.extend(list.into_iter().map(flatten)),
            Err(e) => failed = Some(format!("storage accounts of subscription {s}: {e}")),
        }
    }
    match failed {
        Some(e) => w.error("api_error", "storage-account-list.json", e),
        None => {
            w.json("storage-account-list.json", &Value::Array(accounts.clone()));
            let cdir = "storage-container-list";
            if let Err(e) = std::fs::create_dir_all(w.root().join(cdir)) {
                w.error("write_failed", cdir, e.to_string());
            }
            for a in &accounts {
                let (Some(name), Some(id)) = (
                    a.get("name").and_then(Value::as_str),
                    a.get("id").and_then(Value::as_str),
                ) else {
                    continue;
                };
                let rel = format!("{cdir}/{name}.json");
                if !safe_component(name)
                    || !id.starts_with("/subscriptions/")
                    || id.contains(['?', '#'])
                {
                    w.error(
                        "unsafe_name",
                        &format!("{cdir}/"),
                        format!("storage account {name:?} ({id:?}) skipped"),
                    );
                    continue;
                }
                match arm_list(
                    rest,
                    h,
                    token,
                    &format!("{id}/blobServices/default/containers"),
                    V_STORAGE,
                ) {
                    Ok(list) => {
                        w.json(&rel, &Value::Array(list));
                    }
                    Err(e) => w.error(
                        "api_error",
                        &rel,
                        format!("listing the containers of {name} failed: {e}"),
                    ),
                }
            }
        }
    }
    // AKS clusters.
    let mut clusters = Vec::new();
    let mut failed = None;
    for s in &subs {
        match arm_list(
            rest,
            h,
            token,
            &format!("/subscriptions/{s}/providers/Microsoft.ContainerService/managedClusters"),
            V_AKS,
        ) {
            Ok(list) => clusters.extend(list.into_iter().map(flatten)),
            Err(e) => failed = Some(format!("AKS clusters of subscription {s}: {e}")),
        }
    }
    match failed {
        Some(e) => w.error("api_error", "aks-list.json", e),
        None => {
            w.json("aks-list.json", &Value::Array(clusters));
        }
    }
    // Role assignments, with role names as `az role assignment list --all` prints them.
    let mut assignments = Vec::new();
    let mut failed = None;
    for s in &subs {
        let defs = arm_list(
            rest,
            h,
            token,
            &format!("/subscriptions/{s}/providers/Microsoft.Authorization/roleDefinitions"),
            V_AUTHORIZATION,
        );
        let list = arm_list(
            rest,
            h,
            token,
            &format!("/subscriptions/{s}/providers/Microsoft.Authorization/roleAssignments"),
            V_AUTHORIZATION,
        );
        match (defs, list) {
            (Ok(defs), Ok(list)) => {
                let names: HashMap<String, String> = defs
                    .iter()
                    .filter_map(|d| {
                        let id = d.get("id")?.as_str()?;
                        let name = d.pointer("/properties/roleName")?.as_str()?;
                        Some((role_guid(id).to_ascii_lowercase(), name.to_string()))
                    })
                    .collect();
                for a in list {
                    let mut a = flatten(a);
                    let rid = a
                        .get("roleDefinitionId")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    if let Some(n) = names.get(&role_guid(rid).to_ascii_lowercase())
                        && let Value::Object(o) = &mut a
                    {
                        o.insert("roleDefinitionName".into(), Value::String(n.clone()));
                    }
                    assignments.push(a);
                }
            }
            (Err(e), _) | (_, Err(e)) => {
                failed = Some(format!("role assignments of subscription {s}: {e}"))
            }
        }
    }
    match failed {
        Some(e) => w.error("api_error", "role-assignment-list.json", e),
        None => {
            w.json("role-assignment-list.json", &Value::Array(assignments));
        }
    }
}

/// The GUID at the end of a role definition id.
fn role_guid(id: &str) -> &str {
    id.rsplit('/').next().unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, json};

    #[test]
    fn flatten_merges_properties_like_the_az_cli() {
        let r = flatten(
            json!({"name": "a", "id": "/x", "properties": {"allowBlobPublicAccess": true, "name": "inner"}}),
        );
        assert_eq!(
            r,
            json!({"name": "a", "id": "/x", "allowBlobPublicAccess": true})
        );
        let m: Map<String, Value> = Map::new();
        assert_eq!(flatten(Value::Object(m.clone())), Value::Object(m));
    }

    #[test]
    fn guids_and_origins() {
        assert!(is_guid("00000000-1111-2222-3333-444444444444"));
        assert!(!is_guid("00000000-1111-2222-3333-44444444444"));
        assert!(!is_guid("../../../../etc/passwd-aaaaaaaaaaaaaaaa"));
        assert!(same_origin(
            "https://graph.microsoft.com/v1.0/x?$skiptoken=1",
            "https://graph.microsoft.com"
        ));
        assert!(!same_origin(
            "https://graph.microsoft.com.evil.example/v1.0",
            "https://graph.microsoft.com"
        ));
        assert!(!same_origin(
            "http://127.0.0.1:1/x",
            "https://graph.microsoft.com"
        ));
    }
}

//! The Azure part of a snapshot: `azure/` with Microsoft Graph
//! `/applications` pages and `az storage` / `az aks` listings.

use super::{Collected, Time, page_files, parse_items, read_json_value};
use crate::Timestamp;
use keytrail_types::Diagnostic;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// An application credential (password secret or certificate).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AppCredential {
    /// `password` (client secret) or `certificate`.
    pub kind: &'static str,
    /// `keyId`.
    pub key_id: String,
    /// `displayName`.
    pub display_name: Option<String>,
    /// `startDateTime`.
    pub start: Option<Timestamp>,
    /// `endDateTime`.
    pub end: Option<Timestamp>,
    /// `hint`: a client secret's first three characters, as Graph lists
    /// them (what ties a leaked secret to its `keyId` without the secret).
    pub hint: Option<String>,
}

/// An Entra ID application registration.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Application {
    /// Object id.
    pub id: String,
    /// Application (client) id.
    pub app_id: String,
    /// Display name.
    pub display_name: String,
    /// `createdDateTime`.
    pub created: Option<Timestamp>,
    /// Secrets and certificates.
    pub credentials: Vec<AppCredential>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct AppSyntax {
    #[serde(default)]
    id: String,
    #[serde(default)]
    app_id: String,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    created_date_time: Time,
    #[serde(default)]
    password_credentials: Vec<CredSyntax>,
    #[serde(default)]
    key_credentials: Vec<CredSyntax>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct CredSyntax {
    #[serde(default)]
    key_id: Option<String>,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    start_date_time: Time,
    #[serde(default)]
    end_date_time: Time,
    #[serde(default)]
    hint: Option<String>,
}

/// A storage account (`az storage account list`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StorageAccount {
    /// Name.
    pub name: String,
    /// Resource id.
    pub id: String,
    /// `allowBlobPublicAccess` (`None` = not set).
    pub allow_blob_public_access: Option<bool>,
    /// `az storage container list` for this account.
    pub containers: Collected<Vec<Container>>,
}

/// A blob container.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Container {
    /// Name.
    pub name: String,
    /// `properties.publicAccess` (`blob`, `container`, or `None`).
    pub public_access: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct AccountSyntax {
    #[serde(default)]
    name: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    allow_blob_public_access: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ContainerSyntax {
    #[serde(default)]
    name: String,
    #[serde(default)]
    properties: Option<ContainerPropsSyntax>,
    // `az storage container list --auth-mode login` and the ARM listing
    // put it at the top level.
    #[serde(default)]
    public_access: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ContainerPropsSyntax {
    #[serde(default)]
    public_access: Option<String>,
}

/// An AKS cluster (`az aks list`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AksCluster {
    /// Name.
    pub name: String,
    /// Resource id.
    pub id: String,
    /// `apiServerAccessProfile.enablePrivateCluster`.
    pub private_cluster: bool,
    /// `apiServerAccessProfile.authorizedIpRanges`.
    pub authorized_ip_ranges: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct AksSyntax {
    #[serde(default)]
    name: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    api_server_access_profile: Option<AksAccessSyntax>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct AksAccessSyntax {
    #[serde(default)]
    enable_private_cluster: Option<bool>,
    #[serde(default)]
    authorized_ip_ranges: Option<Vec<String>>,
}

/// The `azure/` part of a snapshot.
#[derive(Debug, Clone, Default)]
pub struct AzureSnapshot {
    /// The directory.
    pub dir: PathBuf,
    /// Graph `/applications` (all pages).
    pub applications: Collected<Vec<Application>>,
    /// `az storage account list` (+ per-account container lists).
    pub storage_accounts: Collected<Vec<StorageAccount>>,
    /// `az aks list`.
    pub aks: Collected<Vec<AksCluster>>,
    /// Graph `/servicePrincipals` (all pages).
    pub service_principals: Collected<Vec<ServicePrincipal>>,
    /// `az role assignment list --all`.
    pub role_assignments: Collected<Vec<RoleAssignment>>,
}

/// A service principal (Graph `/servicePrincipals`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ServicePrincipal {
    /// Object id (what role assignments name as `principalId`).
    #[serde(default)]
    pub id: String,
    /// Application (client) id.
    #[serde(default)]
    pub app_id: String,
    /// Display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// `Application`, `ManagedIdentity`, `Legacy`, `SocialIdp`.
    #[serde(default)]
    pub service_principal_type: Option<String>,
    /// Tenant that owns the application (another tenant: a third-party app).
    #[serde(default)]
    pub app_owner_organization_id: Option<String>,
}

/// A role assignment (`az role assignment list --all`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct RoleAssignment {
    /// Resource id of the assignment.
    #[serde(default)]
    pub id: String,
    /// Object id of the principal.
    #[serde(default)]
    pub principal_id: String,
    /// `User`, `Group`, `ServicePrincipal`, ...
    #[serde(default)]
    pub principal_type: Option<String>,
    /// Role name (`Owner`), as the az CLI resolves it.
    #[serde(default)]
    pub role_definition_name: Option<String>,
    /// Role definition id.
    #[serde(default)]
    pub role_definition_id: Option<String>,
    /// Scope (`/subscriptions/<id>`, a resource group, a resource, a management group).
    #[serde(default)]
    pub scope: String,
}

/// Reads `azure/`.
pub fn load(dir: &Path, diags: &mut Vec<Diagnostic>) -> AzureSnapshot {
    let mut s = AzureSnapshot {
        dir: dir.to_path_buf(),
        ..AzureSnapshot::default()
    };
    let pages = page_files(dir, "graph-applications", diags);
    if !pages.is_empty() {
        let mut apps = Vec::new();
        let mut any = false;
        for f in &pages {
            let Collected::Present(v) = read_json_value(f, diags) else {
                continue;
            };
            any = true;
            // A Graph page is `{"value": [...]}`; accept a bare array too.
            let list = if v.is_array() {
                Some(&v)
            } else {
                v.get("value")
            };
            for a in parse_items::<AppSyntax>(list, f, "value", diags) {
                let mut creds = Vec::new();
                for (kind, list) in [
                    ("password", a.password_credentials),
                    ("certificate", a.key_credentials),
                ] {
                    for c in list {
                        creds.push(AppCredential {
                            kind,
                            key_id: c.key_id.unwrap_or_default(),
                            display_name: c.display_name,
                            start: c.start_date_time.0,
                            end: c.end_date_time.0,
                            hint: c.hint.filter(|h| !h.is_empty()),
                        });
                    }
                }
                apps.push(Application {
                    id: a.id,
                    app_id: a.app_id,
                    display_name: a.display_name.unwrap_or_default(),
                    created: a.created_date_time.0,
                    credentials: creds,
                });
            }
        }
        if any {
            s.applications = Collected::Present(apps);
        }
    }
    let acc = dir.join("storage-account-list.json");
    s.storage_accounts = match read_json_value(&acc, diags) {
        Collected::Present(v) => {
            let cdir = dir.join("storage-container-list");
            let mut out = Vec::new();
            for a in parse_items::<AccountSyntax>(Some(&v), &acc, "storage accounts", diags) {
                let f = cdir.join(format!("{}.json", a.name));
                let plain = super::check_name(&a.name, "storage account", &acc, diags);
                let containers = match plain.then(|| read_json_value(&f, diags)) {
                    None => Collected::Missing,
                    Some(read) => match read {
                        Collected::Present(v) => Collected::Present(
                            parse_items::<ContainerSyntax>(Some(&v), &f, "containers", diags)
                                .into_iter()
                                .map(|c| Container {
                                    name: c.name,
                                    public_access: c
                                        .properties
                                        .and_then(|p| p.public_access)
                                        .or(c.public_access)
                                        .filter(|p| !p.eq_ignore_ascii_case("none")),
                                })
                                .collect(),
                        ),
                        Collected::NotConfigured => Collected::Present(Vec::new()),
                        Collected::Missing => Collected::Missing,
                    },
                };
                out.push(StorageAccount {
                    name: a.name,
                    id: a.id,
                    allow_blob_public_access: a.allow_blob_public_access,
                    containers,
                });
            }
            Collected::Present(out)
        }
        other => other.map(|_| Vec::new()),
    };
    let aks = dir.join("aks-list.json");
    s.aks = match read_json_value(&aks, diags) {
        Collected::Present(v) => Collected::Present(
            parse_items::<AksSyntax>(Some(&v), &aks, "clusters", diags)
                .into_iter()
                .map(|c| {
                    let p = c.api_server_access_profile.unwrap_or_default();
                    AksCluster {
                        name: c.name,
                        id: c.id,
                        private_cluster: p.enable_private_cluster.unwrap_or(false),
                        authorized_ip_ranges: p.authorized_ip_ranges.unwrap_or_default(),
                    }
                })
                .collect(),
        ),
        other => other.map(|_| Vec::new()),
    };
    let pages = page_files(dir, "graph-service-principals", diags);
    let mut sps = Vec::new();
    let mut any = false;
    for f in &pages {
        let Collected::Present(v) = read_json_value(f, diags) else {
            continue;
        };
        any = true;
        let list = if v.is_array() {
            Some(&v)
        } else {
            v.get("value")
        };
        sps.extend(parse_items::<ServicePrincipal>(list, f, "value", diags));
    }
    if any {
        s.service_principals = Collected::Present(sps);
    }
    let ra = dir.join("role-assignment-list.json");
    s.role_assignments = match read_json_value(&ra, diags) {
        Collected::Present(v) => {
            Collected::Present(parse_items(Some(&v), &ra, "role assignments", diags))
        }
        other => other.map(|_| Vec::new()),
    };
    s
}

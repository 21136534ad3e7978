//! The GCP part of a snapshot: `gcp/<project>/` as written by `gcloud
//! ... --format=json` (project IAM policy, GKE clusters, service-account keys).

use super::{Collected, Time, parse_items, read_json_value, sorted_entries};
use crate::Timestamp;
use keytrail_types::Diagnostic;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// One binding of a project IAM policy.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
pub struct Binding {
    /// Role, e.g. `roles/editor`.
    #[serde(default)]
    pub role: String,
    /// Members, e.g. `serviceAccount:123-compute@developer.gserviceaccount.com`.
    #[serde(default)]
    pub members: Vec<String>,
}

/// A service-account key (`gcloud iam service-accounts keys list`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceAccountKey {
    /// Full key name `projects/P/serviceAccounts/SA/keys/ID`.
    pub name: String,
    /// Service-account email (from the name, else the file name).
    pub service_account: String,
    /// `keyType` (`USER_MANAGED` / `SYSTEM_MANAGED`).
    pub key_type: String,
    /// `validAfterTime` (creation).
    pub valid_after: Option<Timestamp>,
    /// `validBeforeTime` (expiry).
    pub valid_before: Option<Timestamp>,
    /// `disabled`.
    pub disabled: bool,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct KeySyntax {
    #[serde(default)]
    name: String,
    #[serde(default)]
    key_type: String,
    #[serde(default)]
    valid_after_time: Time,
    #[serde(default)]
    valid_before_time: Time,
    #[serde(default)]
    disabled: bool,
}

/// A GKE cluster (`gcloud container clusters list`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GkeCluster {
    /// Name.
    pub name: String,
    /// Location (zone or region).
    pub location: String,
    /// `selfLink`, used as resource id when present.
    pub self_link: String,
    /// Whether the control plane has a public endpoint.
    pub public_endpoint: bool,
    /// Authorized networks enabled.
    pub authorized_networks_enabled: bool,
    /// Authorized network CIDRs.
    pub authorized_cidrs: Vec<String>,
    /// Node service accounts: (node pool or `cluster`, email or `default`).
    pub node_service_accounts: Vec<(String, String)>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ClusterSyntax {
    #[serde(default)]
    name: String,
    #[serde(default)]
    location: String,
    #[serde(default)]
    zone: String,
    #[serde(default)]
    self_link: String,
    #[serde(default)]
    private_cluster_config: Option<PrivateClusterSyntax>,
    #[serde(default)]
    master_authorized_networks_config: Option<AuthorizedNetworksSyntax>,
    #[serde(default)]
    control_plane_endpoints_config: Option<ControlPlaneEndpointsSyntax>,
    #[serde(default)]
    node_config: Option<NodeConfigSyntax>,
    #[serde(default)]
    node_pools: Vec<NodePoolSyntax>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct PrivateClusterSyntax {
    #[serde(default)]
    enable_private_endpoint: bool,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct AuthorizedNetworksSyntax {
    #[serde(default)]
    enabled: bool,
    #[serde(default)]
    cidr_blocks: Vec<CidrBlockSyntax>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct CidrBlockSyntax {
    #[serde(default)]
    cidr_block: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ControlPlaneEndpointsSyntax {
    #[serde(default)]
    ip_endpoints_config: Option<IpEndpointsSyntax>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct IpEndpointsSyntax {
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    enable_public_endpoint: Option<bool>,
    #[serde(default)]
    authorized_networks_config: Option<AuthorizedNetworksSyntax>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct NodeConfigSyntax {
    #[serde(default)]
    service_account: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct NodePoolSyntax {
    #[serde(default)]
    name: String,
    #[serde(default)]
    config: Option<NodeConfigSyntax>,
}

#[derive(Deserialize, Default)]
struct IamPolicySyntax {
    #[serde(default)]
    bindings: Vec<Binding>,
}

/// One `gcp/<project>/` directory.
#[derive(Debug, Clone, Default)]
pub struct GcpProject {
    /// Project id (directory name).
    pub id: String,
    /// The directory.
    pub dir: PathBuf,
    /// `gcloud projects get-iam-policy`.
    pub iam_policy: Collected<Vec<Binding>>,
    /// `gcloud container clusters list`.
    pub clusters: Collected<Vec<GkeCluster>>,
    /// `gcloud iam service-accounts keys list`, one file per service account.
    pub keys: Collected<Vec<ServiceAccountKey>>,
    /// `gcloud iam service-accounts list`.
    pub service_accounts: Collected<Vec<ServiceAccount>>,
    /// `gcloud compute instances list`.
    pub instances: Collected<Vec<GceInstance>>,
    /// `gcloud policy-intelligence query-activity
    /// --activity-type=serviceAccountKeyLastAuthentication`: key id → last
    /// authentication.
    pub key_last_auth: Collected<std::collections::HashMap<String, Timestamp>>,
}

/// A service account (`gcloud iam service-accounts list`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAccount {
    /// Email.
    #[serde(default)]
    pub email: String,
    /// Numeric unique id.
    #[serde(default)]
    pub unique_id: String,
    /// Display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Disabled.
    #[serde(default)]
    pub disabled: bool,
}

/// A Compute Engine instance (`gcloud compute instances list`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GceInstance {
    /// Name.
    pub name: String,
    /// Zone (last segment of the zone URL).
    pub zone: String,
    /// `selfLink`, or a resource name built from project, zone and name.
    pub resource: String,
    /// `status` (`RUNNING`, `TERMINATED`, ...).
    pub status: String,
    /// Service accounts with their OAuth scopes.
    pub service_accounts: Vec<(String, Vec<String>)>,
    /// Whether GKE manages it (label `goog-gke-node`).
    pub gke_node: bool,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct InstanceSyntax {
    #[serde(default)]
    name: String,
    #[serde(default)]
    zone: String,
    #[serde(default)]
    self_link: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    service_accounts: Vec<InstanceSaSyntax>,
    #[serde(default)]
    labels: std::collections::BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
struct InstanceSaSyntax {
    #[serde(default)]
    email: String,
    #[serde(default)]
    scopes: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ActivitySyntax {
    #[serde(default)]
    full_resource_name: String,
    #[serde(default)]
    activity: ActivityBodySyntax,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ActivityBodySyntax {
    #[serde(default)]
    last_authenticated_time: Time,
    #[serde(default)]
    service_account_key: Option<ActivityKeySyntax>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ActivityKeySyntax {
    #[serde(default)]
    full_resource_name: String,
}

/// The key id at the end of a key's resource name (`…/keys/<id>`).
pub fn key_id(name: &str) -> &str {
    name.rsplit_once("/keys/").map_or("", |(_, id)| id)
}

/// Whether `email` (or `default`) is the Compute Engine default service account.
pub fn is_default_compute_sa(email: &str) -> bool {
    email == "default" || email.ends_with("-compute@developer.gserviceaccount.com")
}

/// Reads one project directory.
pub fn load(dir: &Path, diags: &mut Vec<Diagnostic>) -> GcpProject {
    let id = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut p = GcpProject {
        id: id.clone(),
        dir: dir.to_path_buf(),
        ..GcpProject::default()
    };
    let pol = dir.join("projects-get-iam-policy.json");
    p.iam_policy = match read_json_value(&pol, diags) {
        Collected::Present(v) => match IamPolicySyntax::deserialize(&v) {
            Ok(s) => Collected::Present(s.bindings),
            Err(e) => {
                diags.push(Diagnostic::error(
                    "unexpected_shape",
                    pol.display().to_string(),
                    format!("unexpected JSON shape: {e}"),
                ));
                Collected::Missing
            }
        },
        other => other.map(|_| Vec::new()),
    };
    let cl = dir.join("container-clusters-list.json");
    p.clusters = match read_json_value(&cl, diags) {
        Collected::Present(v) => Collected::Present(
            parse_items::<ClusterSyntax>(Some(&v), &cl, "clusters", diags)
                .into_iter()
                .map(cluster)
                .collect(),
        ),
        other => other.map(|_| Vec::new()),
    };
    let kdir = dir.join("iam-service-accounts-keys-list");
    if kdir.is_dir() {
        let mut keys = Vec::new();
        for f in sorted_entries(&kdir, diags) {
            if f.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let sa_from_file = f
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            if let Collected::Present(v) = read_json_value(&f, diags) {
                for k in parse_items::<KeySyntax>(Some(&v), &f, "keys", diags) {
                    let sa = k
                        .name
                        .split("/serviceAccounts/")
                        .nth(1)
                        .and_then(|r| r.split('/').next())
                        .map(str::to_string)
                        .unwrap_or_else(|| sa_from_file.clone());
                    keys.push(ServiceAccountKey {
                        name: k.name,
                        service_account: sa,
                        key_type: k.key_type,
                        valid_after: k.valid_after_time.0,
                        valid_before: k.valid_before_time.0,
                        disabled: k.disabled,
                    });
                }
            }
        }
        p.keys = Collected::Present(keys);
    }
    let f = dir.join("iam-service-accounts-list.json");
    p.service_accounts = match read_json_value(&f, diags) {
        Collected::Present(v) => Collected::Present(parse_items(Some(&v), &f, "accounts", diags)),
        other => other.map(|_| Vec::new()),
    };
    let f = dir.join("compute-instances-list.json");
    p.instances = match read_json_value(&f, diags) {
        Collected::Present(v) => Collected::Present(
            parse_items::<InstanceSyntax>(Some(&v), &f, "instances", diags)
                .into_iter()
                .map(|i| {
                    let zone = i.zone.rsplit('/').next().unwrap_or("").to_string();
                    GceInstance {
                        resource: if i.self_link.is_empty() {
                            format!("projects/{id}/zones/{zone}/instances/{}", i.name)
                        } else {
                            i.self_link
                        },
                        name: i.name,
                        zone,
                        status: i.status,
                        service_accounts: i
                            .service_accounts
                            .into_iter()
                            .map(|s| (s.email, s.scopes))
                            .collect(),
                        gke_node: i.labels.contains_key("goog-gke-node"),
                    }
                })
                .collect(),
        ),
        other => other.map(|_| Vec::new()),
    };
    let f = dir.join("policy-intelligence-query-activity-keys.json");
    p.key_last_auth = match read_json_value(&f, diags) {
        Collected::Present(v) => {
            let mut m = std::collections::HashMap::new();
            for a in parse_items::<ActivitySyntax>(Some(&v), &f, "activities", diags) {
                let name = a
                    .activity
                    .service_account_key
                    .map(|k| k.full_resource_name)
                    .filter(|n| !n.is_empty())
                    .unwrap_or(a.full_resource_name);
                let id = key_id(&name);
                if let (false, Some(t)) = (id.is_empty(), a.activity.last_authenticated_time.0) {
                    let e = m.entry(id.to_string()).or_insert(t);
                    if t > *e {
                        *e = t;
                    }
                }
            }
            Collected::Present(m)
        }
        other => other.map(|_| std::collections::HashMap::new()),
    };
    p
}

fn cluster(c: ClusterSyntax) -> GkeCluster {
    let mut public_endpoint = !c
        .private_cluster_config
        .as_ref()
        .is_some_and(|p| p.enable_private_endpoint);
    let mut an = c.master_authorized_networks_config;
    // Newer API shape: controlPlaneEndpointsConfig.ipEndpointsConfig.
    if let Some(ip) = c
        .control_plane_endpoints_config
        .and_then(|x| x.ip_endpoints_config)
    {
        if ip.enabled == Some(false) || ip.enable_public_endpoint == Some(false) {
            public_endpoint = false;
        } else if ip.enable_public_endpoint == Some(true) {
            public_endpoint = true;
        }
        if ip.authorized_networks_config.is_some() {
            an = ip.authorized_networks_config;
        }
    }
    let mut node_sas = Vec::new();
    if let Some(sa) = c.node_config.and_then(|n| n.service_account) {
        node_sas.push(("cluster".to_string(), sa));
    }
    for np in c.node_pools {
        if let Some(sa) = np.config.and_then(|n| n.service_account) {
            node_sas.push((np.name, sa));
        }
    }
    let (enabled, cidrs) = match an {
        Some(a) => (
            a.enabled,
            a.cidr_blocks.into_iter().map(|b| b.cidr_block).collect(),
        ),
        None => (false, Vec::new()),
    };
    GkeCluster {
        location: if c.location.is_empty() {
            c.zone
        } else {
            c.location
        },
        name: c.name,
        self_link: c.self_link,
        public_endpoint,
        authorized_networks_enabled: enabled,
        authorized_cidrs: cidrs,
        node_service_accounts: node_sas,
    }
}

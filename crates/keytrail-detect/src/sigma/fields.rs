//! Field access for the Sigma rules of the other clouds, and which events a rule's
//! `logsource` routes it to.
//!
//! SigmaHQ's Azure, Google Cloud and Microsoft 365 rules name fields as several
//! exports spell them: Log Analytics columns (`ResultType`, `OperationNameValue`),
//! diagnostic-setting exports (`operationName`, `properties.message`), Graph
//! records (`riskEventType`), a Pub/Sub-shaped `data.protoPayload…`, Elastic-style
//! `gcp.audit.method_name`, and Defender for Cloud Apps names (`eventSource`,
//! `eventName`, `status`). A field of a rule for another cloud is read, in this
//! order: the aliases of [`get`] (documented in `docs/detect-clouds.md`), the path
//! as written, then the path under `properties`
//! (diagnostic exports nest Graph's members there) and under `protoPayload`; every
//! member name compares case-insensitively and a path goes through arrays (a
//! `targetResources.modifiedProperties.newValue` reads every element).

use std::borrow::Cow;

use serde_json::Value;

use super::matcher::FieldVal;
use crate::event::{Event, Provider, member};

/// Where a rule runs: the events of one cloud, and for Entra ID one log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// CloudTrail (`product: aws` or `service: cloudtrail`).
    Aws,
    /// Google Cloud audit logs (`product: gcp`, `service: gcp.audit`).
    Gcp,
    /// Entra ID sign-in logs (`service: signinlogs`).
    EntraSignIn,
    /// Entra ID audit logs (`service: auditlogs`).
    EntraAudit,
    /// Entra ID risk detections and Privileged Identity Management alerts
    /// (`service: riskdetection`, `pim`).
    EntraRisk,
    /// The Azure Activity log (`service: activitylogs`).
    AzureActivity,
    /// The Microsoft 365 unified audit log (`product: m365`).
    M365,
    /// One Google Workspace application's audit log (`service:
    /// google_workspace.<application>`): Google events from
    /// `<application>.googleapis.com`, read from the Reports API or Cloud Logging.
    Workspace(&'static str),
}

/// The Google Workspace applications whose audit logs are routed by name.
const WORKSPACE_APPS: &[&str] = &[
    "admin",
    "login",
    "token",
    "drive",
    "saml",
    "groups",
    "mobile",
    "calendar",
    "chat",
    "meet",
    "user_accounts",
    "rules",
    "context_aware_access",
    "access_transparency",
    "gcp",
];

impl Route {
    /// The route of a `logsource` (`product`, `service`), or why the rule cannot run.
    pub fn of(product: Option<&str>, service: Option<&str>) -> Result<Route, String> {
        let p = product.unwrap_or("").to_ascii_lowercase();
        let s = service.unwrap_or("").to_ascii_lowercase();
        match (p.as_str(), s.as_str()) {
            ("aws", _) | (_, "cloudtrail") => Ok(Route::Aws),
            ("gcp", "gcp.audit") => Ok(Route::Gcp),
            ("gcp", s) if s.starts_with("google_workspace") => {
                let app = s.strip_prefix("google_workspace.").unwrap_or("");
                WORKSPACE_APPS
                    .iter()
                    .find(|a| **a == app)
                    .map(|a| Route::Workspace(a))
                    .ok_or_else(|| {
                        format!("Google Workspace application {app:?} is not one keytrail reads")
                    })
            }
            ("azure", "signinlogs") => Ok(Route::EntraSignIn),
            ("azure", "auditlogs") => Ok(Route::EntraAudit),
            ("azure", "riskdetection" | "pim") => Ok(Route::EntraRisk),
            ("azure", "activitylogs") => Ok(Route::AzureActivity),
            ("m365", _) => Ok(Route::M365),
            _ => Err(format!(
                "logsource product {:?} service {:?} is not a cloud log keytrail reads",
                product.unwrap_or(""),
                service.unwrap_or("")
            )),
        }
    }

    /// The cloud whose events the rule sees.
    pub fn provider(self) -> Provider {
        match self {
            Route::Aws => Provider::Aws,
            Route::Gcp | Route::Workspace(_) => Provider::Gcp,
            Route::EntraSignIn | Route::EntraAudit | Route::EntraRisk => Provider::Entra,
            Route::AzureActivity => Provider::Azure,
            Route::M365 => Provider::M365,
        }
    }

    /// Whether the rule runs on `ev` (the provider already matched).
    pub fn applies(self, ev: &Event) -> bool {
        match self {
            Route::EntraSignIn => ev.service() == "signin",
            Route::EntraAudit => ev.service() == "audit",
            Route::EntraRisk => ev.service() == "risk" || ev.service() == "audit",
            Route::Workspace(app) => ev
                .event_source()
                .strip_suffix(".googleapis.com")
                .is_some_and(|s| s.eq_ignore_ascii_case(app)),
            _ => true,
        }
    }
}

/// Reads a rule's field from an event of another cloud.
pub fn get<'a>(ev: &'a Event, path: &str) -> FieldVal<'a> {
    let json = ev.json();
    let provider = ev.provider();
    // Aliases: names that no export writes as such.
    match (provider, path) {
        (Provider::Gcp, "gcp.audit.method_name") => {
            return walk_all(json, "protoPayload.methodName");
        }
        (Provider::Gcp, p) if p.starts_with("data.") => return walk_all(json, &p[5..]),
        // Google Workspace, as Defender for Cloud Apps and Chronicle name it.
        (Provider::Gcp, "eventService") => {
            return FieldVal::Str(Cow::Borrowed(ev.event_source()));
        }
        (Provider::Gcp, "eventName") => {
            return first_of(
                json,
                &["events.name", "protoPayload.metadata.event.eventName"],
            );
        }
        (Provider::M365, "eventSource") => return first_of(json, &["Workload", "OfficeWorkload"]),
        (Provider::M365, "eventName") => return first_of(json, &["Name", "Operation"]),
        (Provider::M365, "status") => return first_of(json, &["Status", "ResultStatus"]),
        (Provider::Azure, "OperationNameValue" | "operationName") => {
            return value_of(first_of(json, &["operationName", "OperationNameValue"]));
        }
        (Provider::Azure, "CategoryValue") => return value_of(first_of(json, &["category"])),
        (Provider::Azure, "ResourceProviderValue") => {
            return match value_of(first_of(json, &["resourceProviderName"])) {
                FieldVal::Missing => FieldVal::Str(Cow::Borrowed(ev.event_source())),
                v => v,
            };
        }
        (Provider::Entra, "ResultType") => {
            return first_of(
                json,
                &[
                    "resultType",
                    "status.errorCode",
                    "properties.status.errorCode",
                ],
            );
        }
        (Provider::Entra, "ResultDescription") => {
            return first_of(
                json,
                &[
                    "resultDescription",
                    "status.failureReason",
                    "properties.status.failureReason",
                ],
            );
        }
        (Provider::Entra, "Status") => {
            if let Some(Value::Object(st)) =
                find(json, "status").or(find(json, "properties.status"))
            {
                let code = st.iter().find(|(k, _)| k.eq_ignore_ascii_case("errorCode"));
                let ok = code.is_some_and(|(_, v)| v == 0 || v == "0");
                let mut s = String::from(if ok { "Success" } else { "Failure" });
                for (k, v) in st {
                    if let Value::String(t) = v
                        && !k.eq_ignore_ascii_case("errorCode")
                    {
                        s.push_str("; ");
                        s.push_str(t);
                    }
                }
                return FieldVal::Str(Cow::Owned(s));
            }
        }
        (Provider::Entra | Provider::Azure, "properties.message") => {
            return match walk_all(json, path) {
                FieldVal::Missing => FieldVal::Str(Cow::Borrowed(ev.event_name())),
                v => v,
            };
        }
        _ => {}
    }
    match walk_all(json, path) {
        FieldVal::Missing => {}
        v => return v,
    }
    for prefix in ["properties.", "protoPayload."] {
        match walk_all(json, &format!("{prefix}{path}")) {
            FieldVal::Missing => {}
            v => return v,
        }
    }
    if provider == Provider::Gcp {
        return workspace_field(ev, json, path);
    }
    FieldVal::Missing
}

/// Google Workspace fields a rule names in the other shape than the record's, and
/// an event parameter by its name (`new_value` is the `NEW_VALUE` parameter of
/// `events[].parameters[]` in the Reports API and of
/// `protoPayload.metadata.event[].parameter[]` in Cloud Logging).
fn workspace_field<'a>(ev: &'a Event, json: &'a Value, path: &str) -> FieldVal<'a> {
    if path.eq_ignore_ascii_case("protoPayload.serviceName") {
        return FieldVal::Str(Cow::Borrowed(ev.event_source()));
    }
    if path.eq_ignore_ascii_case("protoPayload.metadata.event.eventName") {
        return walk_all(json, "events.name");
    }
    if path.contains('.') {
        return FieldVal::Missing;
    }
    let mut out: Vec<&'a Value> = Vec::new();
    for list in ["events.parameters", "protoPayload.metadata.event.parameter"] {
        let mut params = Vec::new();
        collect(json, &list.split('.').collect::<Vec<_>>(), &mut params, 0);
        for p in params.iter().flat_map(|p| match p {
            Value::Array(a) => a.iter().collect::<Vec<_>>(),
            v => vec![*v],
        }) {
            let named = member(p, "name")
                .and_then(Value::as_str)
                .is_some_and(|n| n.eq_ignore_ascii_case(path));
            if !named || out.len() >= 256 {
                continue;
            }
            if let Some(v) = [
                "value",
                "boolValue",
                "intValue",
                "multiValue",
                "multiStrValue",
                "multiIntValue",
            ]
            .iter()
            .find_map(|k| member(p, k))
            {
                out.push(v);
            }
        }
    }
    match out.len() {
        0 => FieldVal::Missing,
        1 => scalar(out[0]),
        _ => FieldVal::Many(out),
    }
}

/// The first path of `paths` present in `json`.
fn first_of<'a>(json: &'a Value, paths: &[&str]) -> FieldVal<'a> {
    for p in paths {
        match walk_all(json, p) {
            FieldVal::Missing => {}
            v => return v,
        }
    }
    FieldVal::Missing
}

/// An Azure `{"value": …, "localizedValue": …}` pair read as its `value`.
fn value_of(v: FieldVal<'_>) -> FieldVal<'_> {
    match v {
        FieldVal::Json(Value::Object(m)) => m
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("value"))
            .map_or(FieldVal::Missing, |(_, v)| scalar(v)),
        v => v,
    }
}

/// The value at a dotted path without going through arrays.
fn find<'a>(json: &'a Value, path: &str) -> Option<&'a Value> {
    let mut v = json;
    for part in path.split('.') {
        v = member(v, part)?;
    }
    Some(v)
}

fn scalar(v: &Value) -> FieldVal<'_> {
    match v {
        Value::Null => FieldVal::Null,
        Value::String(s) => FieldVal::Str(Cow::Borrowed(s)),
        Value::Bool(b) => FieldVal::Str(Cow::Borrowed(if *b { "true" } else { "false" })),
        Value::Number(n) => FieldVal::Str(Cow::Owned(n.to_string())),
        v => FieldVal::Json(v),
    }
}

/// The values at a dotted path, through arrays (every element is followed). Values
/// that are JSON text in a string (Log Analytics exports keep nested columns so) are
/// parsed on the way only when the path goes on into them: not done here, the rule
/// then sees the text.
fn walk_all<'a>(json: &'a Value, path: &str) -> FieldVal<'a> {
    let parts: Vec<&str> = path.split('.').collect();
    let mut out: Vec<&'a Value> = Vec::new();
    collect(json, &parts, &mut out, 0);
    match out.len() {
        0 => FieldVal::Missing,
        1 => scalar(out[0]),
        _ => FieldVal::Many(out),
    }
}

fn collect<'a>(v: &'a Value, parts: &[&str], out: &mut Vec<&'a Value>, depth: usize) {
    if out.len() >= 256 || depth > 32 {
        return;
    }
    match (parts.first(), v) {
        (None, v) => out.push(v),
        (Some(_), Value::Array(items)) => {
            for it in items {
                collect(it, parts, out, depth + 1);
            }
        }
        (Some(p), v) => {
            if let Some(next) = member(v, p) {
                collect(next, &parts[1..], out, depth + 1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(
            Route::of(Some("azure"), Some("signinlogs")),
            Ok(Route::EntraSignIn)
        );
        assert_eq!(Route::of(Some("gcp"), Some("gcp.audit")), Ok(Route::Gcp));
        assert_eq!(
            Route::of(Some("gcp"), Some("google_workspace.admin")),
            Ok(Route::Workspace("admin"))
        );
        assert!(Route::of(Some("gcp"), Some("google_workspace.keep")).is_err());
        assert_eq!(Route::of(Some("m365"), Some("exchange")), Ok(Route::M365));
        assert_eq!(Route::of(None, Some("cloudtrail")), Ok(Route::Aws));
        assert!(Route::of(Some("windows"), None).is_err());
    }

    #[test]
    fn paths_go_through_arrays_and_ignore_case() {
        let v: Value = serde_json::from_str(
            r#"{"TargetResources":[{"modifiedProperties":[{"NewValue":"a"},{"newValue":"b"}]}],"x":{"Y":1}}"#,
        )
        .unwrap();
        match walk_all(&v, "targetResources.ModifiedProperties.newValue") {
            FieldVal::Many(vs) => assert_eq!(vs.len(), 2),
            other => panic!("{other:?}"),
        }
        assert!(matches!(walk_all(&v, "x.y"), FieldVal::Str(s) if s == "1"));
        assert!(matches!(walk_all(&v, "x.z"), FieldVal::Missing));
    }
}

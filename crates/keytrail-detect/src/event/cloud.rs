//! Records of the other clouds in the one [`Event`] model: Google Cloud audit log
//! entries (`LogEntry` with an `AuditLog` `protoPayload`, as Cloud Storage sinks,
//! `gcloud logging read --format=json` and Pub/Sub push messages deliver them),
//! Microsoft Entra ID sign-in and audit logs (Graph API records, diagnostic-setting
//! exports with `properties`, Log Analytics rows), the Microsoft 365 unified audit
//! log (Management Activity API records, the `AuditData` of `Search-UnifiedAuditLog`
//! and Purview exports, Log Analytics `OfficeActivity` rows) and the Azure Activity
//! log (diagnostic exports, `az monitor activity-log list`, Log Analytics rows).
//!
//! A record that has no CloudTrail time is parsed a second time here with
//! [`CloudSyntax`], whose member names compare case-insensitively (Graph writes
//! `userPrincipalName`, Log Analytics `UserPrincipalName`). The fields land in the
//! same spans as CloudTrail's (action in `event_name`, service, source IP, user
//! agent, error, principal, key id, account) and the [`Provider`] says which cloud
//! wrote the record. The field mapping is documented in `docs/detect-clouds.md`.

use super::*;
use base64::Engine as _;

/// The cloud (or log family) that wrote a record.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    /// AWS CloudTrail.
    #[default]
    Aws,
    /// Google Cloud audit logs (Admin Activity, Data Access, System Event, Policy).
    Gcp,
    /// Microsoft Entra ID sign-in, audit and risk-detection logs.
    Entra,
    /// The Microsoft 365 unified audit log.
    M365,
    /// The Azure Activity log (control-plane operations on subscriptions).
    Azure,
}

impl Provider {
    /// Whether this is AWS (the default, left out of serialised alerts).
    pub fn is_aws(&self) -> bool {
        *self == Provider::Aws
    }

    /// Lower-case name (`aws`, `gcp`, `entra`, `m365`, `azure`).
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Aws => "aws",
            Provider::Gcp => "gcp",
            Provider::Entra => "entra",
            Provider::M365 => "m365",
            Provider::Azure => "azure",
        }
    }
}

/// Known members of a case-insensitively matched object.
pub(super) trait CiMembers<'de>: Default {
    /// Reads member `key` from `map` when it is known (returns true); the caller skips
    /// the value otherwise.
    fn member<A: de::MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error>;
}

/// Whether member `key` is the member named `name` (camelCase): ASCII case and
/// underscores do not count, so the Azure SDK's snake_case (`event_timestamp`,
/// `http_request.client_ip_address`) and Log Analytics' `Client_IPAddress` read
/// as `eventTimestamp`, `httpRequest.clientIpAddress` and `ClientIPAddress`.
#[inline]
pub(super) fn key_is(key: &str, name: &str) -> bool {
    if key.len() <= name.len() {
        return key.len() == name.len() && key.eq_ignore_ascii_case(name);
    }
    // Longer: only underscores may make up the difference. Compared byte by byte
    // so that a different first letter (most members of a record) costs one
    // comparison, as the length check does for the names of equal length.
    let mut k = key.bytes().filter(|&b| b != b'_');
    let mut n = name.bytes();
    loop {
        match (k.next(), n.next()) {
            (Some(a), Some(b)) if a.eq_ignore_ascii_case(&b) => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Implements [`CiMembers`] for a struct of lenient fields; keys compare without
/// regard to ASCII case or underscores ([`key_is`]), and a repeated member keeps
/// its last value.
macro_rules! ci_members {
    ($ty:ident { $($field:ident = $key:literal),* $(,)? } $(else $rest:ident)?) => {
        impl<'de: 'a, 'a> CiMembers<'de> for $ty<'a> {
            fn member<A: de::MapAccess<'de>>(
                &mut self,
                key: &str,
                map: &mut A,
            ) -> Result<bool, A::Error> {
                // Underscores do not count (see `key_is`): taken out once here,
                // so each name below costs what a case-insensitive comparison
                // costs (a length check first).
                let stripped;
                let key = if memchr::memchr(b'_', key.as_bytes()).is_some() {
                    stripped = key.replace('_', "");
                    stripped.as_str()
                } else {
                    key
                };
                $(
                    if key.eq_ignore_ascii_case($key) {
                        self.$field = map.next_value()?;
                        return Ok(true);
                    }
                )*
                $( return self.$rest.member(key, map); )?
                #[allow(unreachable_code)]
                Ok(false)
            }
        }
    };
}

/// A nested object read with [`CiMembers`]; any other JSON type is missing,
/// except a string holding a JSON object, kept in `.1`: Log Analytics
/// exports write `dynamic` columns (`InitiatedBy`, `TargetResources`) as
/// JSON text.
pub(super) struct CiObj<T>(pub(super) Option<T>, pub(super) Option<Box<str>>);

impl<T> Default for CiObj<T> {
    fn default() -> Self {
        CiObj(None, None)
    }
}

/// A member of a JSON object by case-insensitive name.
fn ci_get<'v>(v: &'v serde_json::Value, key: &str) -> Option<&'v serde_json::Value> {
    v.as_object()?
        .iter()
        .find(|(k, _)| key_is(k, key))
        .map(|(_, v)| v)
}

impl<T> CiObj<T> {
    /// The JSON text of an object written as a string, parsed.
    pub(super) fn text_value(&self) -> Option<serde_json::Value> {
        serde_json::from_str(self.1.as_deref()?).ok()
    }
}

impl<'de, T: CiMembers<'de>> Deserialize<'de> for CiObj<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: CiMembers<'de>> Visitor<'de> for V<T> {
            type Value = CiObj<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut t = T::default();
                while let Some(k) = m.next_key::<Lenient<'de>>()? {
                    if !t.member(k.as_str().unwrap_or(""), &mut m)? {
                        m.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(CiObj(Some(t), None))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(CiObj(None, None))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                let text = v.trim_start().starts_with('{').then(|| v.into());
                Ok(CiObj(None, text))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(CiObj(None, None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(CiObj(None, None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(CiObj(None, None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(CiObj(None, None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(CiObj(None, None))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// A value that is either text or an object holding the text in one member: Azure's
/// `{"value": …, "localizedValue": …}` pairs, Entra's `status` (`errorCode`) and
/// `location` (`countryOrRegion`).
#[derive(Default)]
pub(super) struct Named<'a> {
    text: Lenient<'a>,
    /// `value`, `errorCode` or `countryOrRegion` of an object.
    inner: Lenient<'a>,
    /// `failureReason` of an Entra status.
    reason: Lenient<'a>,
}

impl<'a> Named<'a> {
    fn get(&self) -> Option<&str> {
        self.text.as_str().or(self.inner.as_str())
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Named<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Named<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut n = Named::default();
                while let Some(k) = m.next_key::<Lenient<'de>>()? {
                    let k = k.as_str().unwrap_or("");
                    if ["value", "errorCode", "countryOrRegion"]
                        .iter()
                        .any(|x| key_is(k, x))
                    {
                        n.inner = m.next_value()?;
                    } else if key_is(k, "failureReason") {
                        n.reason = m.next_value()?;
                    } else {
                        m.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(n)
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Named {
                    text: Lenient(Some(Cow::Borrowed(v))),
                    ..Named::default()
                })
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Named {
                    text: Lenient(Some(Cow::Owned(v.to_owned()))),
                    ..Named::default()
                })
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                self.visit_str(if v { "true" } else { "false" })
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Named::default())
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Named::default())
            }
        }
        d.deserialize_any(V)
    }
}

// --- Google Cloud -------------------------------------------------------------

#[derive(Default)]
pub(super) struct GcpAuthSyntax<'a> {
    principal_email: Lenient<'a>,
    principal_subject: Lenient<'a>,
    key_name: Lenient<'a>,
}
ci_members!(GcpAuthSyntax {
    principal_email = "principalEmail",
    principal_subject = "principalSubject",
    key_name = "serviceAccountKeyName",
});

#[derive(Default)]
pub(super) struct GcpRequestMetaSyntax<'a> {
    caller_ip: Lenient<'a>,
    user_agent: Lenient<'a>,
}
ci_members!(GcpRequestMetaSyntax {
    caller_ip = "callerIp",
    user_agent = "callerSuppliedUserAgent",
});

#[derive(Default)]
pub(super) struct GcpStatusSyntax<'a> {
    code: Lenient<'a>,
}
ci_members!(GcpStatusSyntax { code = "code" });

#[derive(Default)]
pub(super) struct ProtoPayloadSyntax<'a> {
    method_name: Lenient<'a>,
    service_name: Lenient<'a>,
    status: CiObj<GcpStatusSyntax<'a>>,
    auth: CiObj<GcpAuthSyntax<'a>>,
    meta: CiObj<GcpRequestMetaSyntax<'a>>,
}
ci_members!(ProtoPayloadSyntax {
    method_name = "methodName",
    service_name = "serviceName",
    status = "status",
    auth = "authenticationInfo",
    meta = "requestMetadata",
});

#[derive(Default)]
pub(super) struct GcpLabelsSyntax<'a> {
    project_id: Lenient<'a>,
    zone: Lenient<'a>,
    location: Lenient<'a>,
    region: Lenient<'a>,
}
ci_members!(GcpLabelsSyntax {
    project_id = "projectId",
    zone = "zone",
    location = "location",
    region = "region",
});

#[derive(Default)]
pub(super) struct GcpResourceSyntax<'a> {
    labels: CiObj<GcpLabelsSyntax<'a>>,
}
ci_members!(GcpResourceSyntax { labels = "labels" });

/// A Pub/Sub message (push subscriptions and `gcloud pubsub subscriptions pull
/// --format=json`): the log entry is base64 in `data`.
#[derive(Default)]
pub(super) struct PubSubSyntax<'a> {
    data: Lenient<'a>,
}
ci_members!(PubSubSyntax { data = "data" });

// --- Microsoft ---------------------------------------------------------------

#[derive(Default)]
pub(super) struct ActorUserSyntax<'a> {
    upn: Lenient<'a>,
    id: Lenient<'a>,
    ip: Lenient<'a>,
}
ci_members!(ActorUserSyntax {
    upn = "userPrincipalName",
    id = "id",
    ip = "ipAddress",
});

#[derive(Default)]
pub(super) struct ActorAppSyntax<'a> {
    sp_id: Lenient<'a>,
    app_id: Lenient<'a>,
    name: Lenient<'a>,
}
ci_members!(ActorAppSyntax {
    sp_id = "servicePrincipalId",
    app_id = "appId",
    name = "displayName",
});

#[derive(Default)]
pub(super) struct InitiatedBySyntax<'a> {
    user: CiObj<ActorUserSyntax<'a>>,
    app: CiObj<ActorAppSyntax<'a>>,
}
ci_members!(InitiatedBySyntax {
    user = "user",
    app = "app",
});

/// The claims of an Azure Activity record (`identity.claims`, or `claims`).
#[derive(Default)]
pub(super) struct ClaimsSyntax<'a> {
    upn: Lenient<'a>,
    name: Lenient<'a>,
    app_id: Lenient<'a>,
    ip: Lenient<'a>,
}
ci_members!(ClaimsSyntax {
    upn = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn",
    name = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
    app_id = "appid",
    ip = "ipaddr",
});

#[derive(Default)]
pub(super) struct ActivityIdentitySyntax<'a> {
    claims: CiObj<ClaimsSyntax<'a>>,
}
ci_members!(ActivityIdentitySyntax { claims = "claims" });

#[derive(Default)]
pub(super) struct HttpRequestSyntax<'a> {
    client_ip: Lenient<'a>,
}
ci_members!(HttpRequestSyntax {
    client_ip = "clientIpAddress"
});

/// Members of Entra, Azure Activity and Microsoft 365 records, read at the top level
/// (Graph, Management Activity API, Log Analytics) and inside `properties`
/// (diagnostic-setting exports).
#[derive(Default)]
pub(super) struct MsFieldsSyntax<'a> {
    // Times.
    created: Lenient<'a>,
    activity_time: Lenient<'a>,
    detected: Lenient<'a>,
    event_timestamp: Lenient<'a>,
    creation_time: Lenient<'a>,
    // Entra sign-ins.
    id: Lenient<'a>,
    upn: Lenient<'a>,
    user_id: Lenient<'a>,
    app_id: Lenient<'a>,
    app_name: Lenient<'a>,
    ip: Lenient<'a>,
    user_agent: Lenient<'a>,
    status: Named<'a>,
    result_type: Lenient<'a>,
    sp_id: Lenient<'a>,
    sp_name: Lenient<'a>,
    sp_key_id: Lenient<'a>,
    is_interactive: Lenient<'a>,
    resource_name: Lenient<'a>,
    risk_event_type: Lenient<'a>,
    tenant: Lenient<'a>,
    home_tenant: Lenient<'a>,
    location: Named<'a>,
    mi_type: Lenient<'a>,
    sign_in_types: Option<&'a RawValue>,
    // Entra audit.
    activity: Lenient<'a>,
    result: Lenient<'a>,
    logged_by: Lenient<'a>,
    initiated_by: CiObj<InitiatedBySyntax<'a>>,
    // Azure Activity.
    caller: Lenient<'a>,
    caller_ip: Lenient<'a>,
    resource_id: Lenient<'a>,
    subscription: Lenient<'a>,
    event_data_id: Lenient<'a>,
    correlation_id: Lenient<'a>,
    op_name_value: Lenient<'a>,
    resource_provider: Named<'a>,
    claims: CiObj<ClaimsSyntax<'a>>,
    identity: CiObj<ActivityIdentitySyntax<'a>>,
    http_request: CiObj<HttpRequestSyntax<'a>>,
    activity_status: Lenient<'a>,
    // Microsoft 365.
    operation: Lenient<'a>,
    organization: Lenient<'a>,
    record_type: Lenient<'a>,
    result_status: Lenient<'a>,
    user_type: Lenient<'a>,
    workload: Lenient<'a>,
    office_workload: Lenient<'a>,
    client_ip: Lenient<'a>,
    client_ip_address: Lenient<'a>,
    actor_ip: Lenient<'a>,
}
ci_members!(MsFieldsSyntax {
    created = "createdDateTime",
    activity_time = "activityDateTime",
    detected = "detectedDateTime",
    event_timestamp = "eventTimestamp",
    creation_time = "CreationTime",
    id = "id",
    upn = "userPrincipalName",
    user_id = "userId",
    app_id = "appId",
    app_name = "appDisplayName",
    ip = "ipAddress",
    user_agent = "userAgent",
    status = "status",
    result_type = "resultType",
    sp_id = "servicePrincipalId",
    sp_name = "servicePrincipalName",
    sp_key_id = "servicePrincipalCredentialKeyId",
    is_interactive = "isInteractive",
    resource_name = "resourceDisplayName",
    risk_event_type = "riskEventType",
    tenant = "tenantId",
    home_tenant = "AADTenantId",
    location = "location",
    mi_type = "managedIdentityType",
    sign_in_types = "signInEventTypes",
    activity = "activityDisplayName",
    result = "result",
    logged_by = "loggedByService",
    initiated_by = "initiatedBy",
    caller = "caller",
    caller_ip = "callerIpAddress",
    resource_id = "resourceId",
    subscription = "subscriptionId",
    event_data_id = "eventDataId",
    correlation_id = "correlationId",
    op_name_value = "OperationNameValue",
    resource_provider = "resourceProviderName",
    claims = "claims",
    identity = "identity",
    http_request = "httpRequest",
    activity_status = "ActivityStatusValue",
    operation = "Operation",
    organization = "OrganizationId",
    record_type = "RecordType",
    result_status = "ResultStatus",
    user_type = "UserType",
    workload = "Workload",
    office_workload = "OfficeWorkload",
    client_ip = "ClientIP",
    client_ip_address = "ClientIPAddress",
    actor_ip = "ActorIpAddress",
});

/// A record of another cloud (see the module documentation): the members that tell
/// the clouds apart, then [`MsFieldsSyntax`] for the rest of the top level.
#[derive(Default)]
pub(super) struct CloudSyntax<'a> {
    // Google Cloud.
    timestamp: Lenient<'a>,
    insert_id: Lenient<'a>,
    log_name: Lenient<'a>,
    proto: CiObj<ProtoPayloadSyntax<'a>>,
    resource: CiObj<GcpResourceSyntax<'a>>,
    message: CiObj<PubSubSyntax<'a>>,
    // Google Workspace Reports API (`admin#reports#activity`).
    kind: Lenient<'a>,
    // Azure diagnostic exports and Log Analytics.
    time: Lenient<'a>,
    time_generated: Lenient<'a>,
    operation_name: Named<'a>,
    category: Named<'a>,
    properties: CiObj<MsFieldsSyntax<'a>>,
    top: MsFieldsSyntax<'a>,
}
ci_members!(CloudSyntax {
    timestamp = "timestamp",
    insert_id = "insertId",
    log_name = "logName",
    proto = "protoPayload",
    resource = "resource",
    message = "message",
    kind = "kind",
    time = "time",
    time_generated = "TimeGenerated",
    operation_name = "operationName",
    category = "category",
    properties = "properties",
} else top);

impl<'de> Deserialize<'de> for CloudSyntax<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let o: CiObj<CloudSyntax<'de>> = CiObj::deserialize(d)?;
        o.0.ok_or_else(|| de::Error::custom("not an object"))
    }
}

/// `id` of a Google Workspace Admin SDK Reports activity.
#[derive(Default)]
pub(super) struct ReportsIdSyntax<'a> {
    time: Lenient<'a>,
    unique: Lenient<'a>,
    app: Lenient<'a>,
    customer: Lenient<'a>,
}
ci_members!(ReportsIdSyntax {
    time = "time",
    unique = "uniqueQualifier",
    app = "applicationName",
    customer = "customerId",
});

/// `actor` of a Reports activity: a user's e-mail, or a key (`SYSTEM`, an OAuth
/// client) for calls made without one.
#[derive(Default)]
pub(super) struct ReportsActorSyntax<'a> {
    email: Lenient<'a>,
    caller_type: Lenient<'a>,
    key: Lenient<'a>,
    profile: Lenient<'a>,
}
ci_members!(ReportsActorSyntax {
    email = "email",
    caller_type = "callerType",
    key = "key",
    profile = "profileId",
});

/// One of `events` of a Reports activity.
#[derive(Default)]
pub(super) struct ReportsEventSyntax<'a> {
    kind: Lenient<'a>,
    name: Lenient<'a>,
}
ci_members!(ReportsEventSyntax {
    kind = "type",
    name = "name",
});

/// A Google Workspace activity as the Admin SDK Reports API returns it
/// (`activities.list`: `{"kind":"admin#reports#activity","id":{…},"actor":{…},
/// "ipAddress":…,"events":[{"type","name","parameters"}]}`).
#[derive(Default)]
pub(super) struct ReportsSyntax<'a> {
    id: CiObj<ReportsIdSyntax<'a>>,
    actor: CiObj<ReportsActorSyntax<'a>>,
    ip: Lenient<'a>,
    events: Vec<CiObj<ReportsEventSyntax<'a>>>,
}
ci_members!(ReportsSyntax {
    id = "id",
    actor = "actor",
    ip = "ipAddress",
    events = "events",
});

/// The `kind` of a Reports API activity.
const REPORTS_KIND: &str = "admin#reports#activity";

/// How deep Pub/Sub envelopes may nest (one is the format; more is hostile input).
const MAX_ENVELOPES: u8 = 2;

/// The text before `:port` of an address as Microsoft 365 logs it
/// (`203.0.113.9:51234`, `[2001:db8::1]:443`, or a bare address).
fn strip_port(s: &str) -> &str {
    let s = s.trim();
    if let Some(rest) = s.strip_prefix('[') {
        return rest.split_once(']').map_or(rest, |(a, _)| a);
    }
    match s.split_once(':') {
        // One colon: IPv4 with a port. More: a bare IPv6 address.
        Some((a, p)) if !p.contains(':') => a,
        _ => s,
    }
}

/// The key id at the end of a service-account key name
/// (`//iam.googleapis.com/projects/p/serviceAccounts/sa@p.iam.gserviceaccount.com/keys/<id>`).
pub fn gcp_key_id(name: &str) -> Option<&str> {
    name.rsplit_once("/keys/")
        .map(|(_, k)| k)
        .filter(|k| !k.is_empty() && !k.contains('/'))
}

/// The project of a service account's e-mail (`sa@<project>.iam.gserviceaccount.com`).
fn sa_project(email: &str) -> Option<&str> {
    let (_, domain) = email.split_once('@')?;
    domain.strip_suffix(".iam.gserviceaccount.com")
}

/// The log of a Google Cloud `logName` (`activity`, `data_access`, `system_event`,
/// `policy`), the part after `cloudaudit.googleapis.com%2F`.
fn gcp_log_kind(log_name: &str) -> &str {
    log_name
        .rsplit_once("%2F")
        .or_else(|| log_name.rsplit_once("/"))
        .map_or(log_name, |(_, k)| k)
}

/// The subscription id in an Azure resource id (`/subscriptions/<id>/…`).
fn subscription_of(resource_id: &str) -> Option<&str> {
    let lower = resource_id.get(..15)?;
    if !lower.eq_ignore_ascii_case("/subscriptions/") {
        return None;
    }
    let rest = &resource_id[15..];
    Some(rest.split('/').next().unwrap_or(rest)).filter(|s| !s.is_empty())
}

fn nonempty(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}

/// Lower-cased `s` as a span: the record text when it has no upper case, else a copy.
fn lower_span(b: &mut TextBuilder<'_>, s: &str) -> Span {
    if s.bytes().any(|c| c.is_ascii_uppercase()) {
        b.span(&s.to_ascii_lowercase())
    } else {
        b.span(s)
    }
}

/// Whether an Azure result or status says the operation failed.
fn failed_status(s: &str) -> bool {
    ["failure", "failed", "false", "error"]
        .iter()
        .any(|f| s.eq_ignore_ascii_case(f))
}

impl Event {
    /// The cloud that wrote this record.
    pub fn provider(&self) -> Provider {
        self.provider
    }

    /// Parses a record of another cloud (no CloudTrail time): `t` is its text, found
    /// in `shared` when given. `depth` counts the Pub/Sub envelopes around it.
    pub(super) fn parse_cloud(
        t: &str,
        shared: Option<(&Arc<String>, usize)>,
        depth: u8,
    ) -> Result<Event, RecordError> {
        let rec: CloudSyntax<'_> = match serde_json::from_str(t) {
            Ok(r) => r,
            Err(_) => return Err(RecordError::MissingTime),
        };
        // A Pub/Sub message: the record is base64 in `message.data`.
        if let Some(data) = rec.message.0.as_ref().and_then(|m| m.data.as_str())
            && rec.timestamp.as_str().is_none()
        {
            if depth >= MAX_ENVELOPES {
                return Err(RecordError::MissingTime);
            }
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(data.trim())
                .map_err(|e| RecordError::InvalidJson(format!("Pub/Sub message data: {e}")))?;
            let inner = String::from_utf8(bytes)
                .map_err(|e| RecordError::InvalidJson(format!("Pub/Sub message data: {e}")))?;
            return Self::parse_inner(&inner, depth + 1);
        }
        let mut b = TextBuilder {
            t,
            extra: String::new(),
        };
        let mut spans = [Span::NONE; field::COUNT];
        let reports = rec.proto.0.is_none() && rec.kind.as_str() == Some(REPORTS_KIND);
        let gcp = rec.proto.0.is_some()
            || rec
                .log_name
                .as_str()
                .is_some_and(|l| l.contains("cloudaudit.googleapis.com"));
        let built = if reports {
            workspace_fields(t, &mut b, &mut spans)
        } else if gcp {
            gcp_fields(&rec, &mut b, &mut spans)
        } else {
            ms_fields(&rec, &mut b, &mut spans)
        };
        let Some(Built {
            provider,
            time_ms,
            kind,
            human,
            read_only,
        }) = built
        else {
            // A Cloud Logging entry of an application's own log (`gcloud logging
            // read` without a filter returns those too).
            if !gcp
                && let Some(log) = rec.log_name.as_str()
                && rec.timestamp.as_str().is_some()
            {
                let short = log.rsplit_once("/logs/").map_or(log, |(_, l)| l);
                return Err(RecordError::NotAuditLog(short.replace("%2F", "/")));
            }
            return Err(RecordError::MissingTime);
        };
        let ip = {
            let s = spans[field::SOURCE_IP];
            if s.0 == u32::MAX { "" } else { b.get(s) }
        };
        let source_addr = parse_ip(ip);
        let ua = {
            let s = spans[field::USER_AGENT];
            if s.0 == u32::MAX { "" } else { b.get(s) }
        };
        let ua_family = classify_cached(ua);
        let (src, raw_start) = match shared {
            Some((buf, start)) => (buf.clone(), start),
            None => (Arc::new(t.to_string()), 0),
        };
        let ui_range = OnceLock::new();
        let _ = ui_range.set((0, 0));
        Ok(Event {
            time_ms,
            source_addr,
            ua_family,
            read_only,
            kind,
            mfa: false,
            console_session: human,
            provider,
            src,
            raw_start,
            raw_len: t.len() as u32,
            extra: b.extra.into_boxed_str(),
            spans,
            subs: [(0, 0); 5],
            ui_range,
            issuer_type: (0, 0),
            trees: OnceLock::new(),
            prematch: None,
        })
    }

    /// Parses the record inside an envelope (its own text, copied).
    fn parse_inner(text: &str, depth: u8) -> Result<Event, RecordError> {
        let t = text.trim();
        let rec: RecordSyntax<'_> =
            serde_json::from_str(t).map_err(|e| RecordError::InvalidJson(e.to_string()))?;
        Self::from_syntax_at(rec, t, None, depth)
    }
}

/// What the per-cloud field readers decide besides the spans.
struct Built {
    provider: Provider,
    time_ms: i64,
    kind: Option<IdentityKind>,
    /// A person's use (an interactive sign-in, a user account).
    human: bool,
    read_only: Option<bool>,
}

impl TextBuilder<'_> {
    /// The text of a span this builder made.
    fn get(&self, Span(a, c): Span) -> &str {
        let (a, c) = (a as usize, c as usize);
        let r = self.t.len();
        if c <= a {
            ""
        } else if a >= r {
            &self.extra[a - r..c - r]
        } else {
            &self.t[a..c]
        }
    }
}

/// A Google Workspace activity of the Reports API: a Google event whose source is
/// `<application>.googleapis.com` (`login`, `admin`, `token` …), as the same
/// activity reads when Workspace shares its audit logs with Cloud Logging.
fn workspace_fields(
    t: &str,
    b: &mut TextBuilder<'_>,
    spans: &mut [Span; field::COUNT],
) -> Option<Built> {
    let rec: CiObj<ReportsSyntax<'_>> = serde_json::from_str(t).ok()?;
    let rec = rec.0?;
    let id = rec.id.0.as_ref()?;
    let time_ms = id.time.as_str().and_then(parse_rfc3339_ms)?;
    let app = nonempty(id.app.as_str()).unwrap_or("workspace");
    let first = rec.events.iter().find_map(|e| e.0.as_ref());
    let name = first.and_then(|e| nonempty(e.name.as_str())).unwrap_or("");
    spans[field::EVENT_ID] = b.span(id.unique.as_str().unwrap_or(""));
    spans[field::EVENT_NAME] = b.span(name);
    spans[field::EVENT_TYPE] = b.span(first.and_then(|e| e.kind.as_str()).unwrap_or(""));
    spans[field::EVENT_SOURCE] = b.span(&format!("{}.googleapis.com", app.to_ascii_lowercase()));
    spans[field::SERVICE] = lower_span(b, app);
    spans[field::SOURCE_IP] = b.span(rec.ip.as_str().unwrap_or(""));
    spans[field::ERROR_CODE] = b.opt((name == "login_failure").then_some("login_failure"));
    let customer = nonempty(id.customer.as_str());
    spans[field::RECIPIENT_ACCOUNT] = b.span(customer.unwrap_or(""));
    spans[field::ACCOUNT_ID] = b.opt(customer);
    let actor = rec.actor.0.as_ref();
    let email = actor.and_then(|a| nonempty(a.email.as_str()));
    let who = email
        .or_else(|| actor.and_then(|a| nonempty(a.key.as_str())))
        .or_else(|| actor.and_then(|a| nonempty(a.profile.as_str())));
    spans[field::PRINCIPAL] = match who {
        Some(w) => lower_span(b, w),
        None => b.span("unknown"),
    };
    spans[field::ARN] = b.opt(actor.and_then(|a| nonempty(a.profile.as_str())));
    let kind = email.map(|e| {
        if e.ends_with(".gserviceaccount.com") {
            IdentityKind::GcpServiceAccount
        } else {
            IdentityKind::GcpUser
        }
    });
    let person = actor
        .and_then(|a| a.caller_type.as_str())
        .is_none_or(|c| c.eq_ignore_ascii_case("USER"));
    Some(Built {
        provider: Provider::Gcp,
        time_ms,
        kind,
        human: kind == Some(IdentityKind::GcpUser) && person,
        read_only: None,
    })
}

fn gcp_fields(
    rec: &CloudSyntax<'_>,
    b: &mut TextBuilder<'_>,
    spans: &mut [Span; field::COUNT],
) -> Option<Built> {
    let time_ms = rec
        .timestamp
        .as_str()
        .and_then(parse_rfc3339_ms)
        .or_else(|| rec.top.creation_time.as_str().and_then(parse_rfc3339_ms))?;
    let p = rec.proto.0.as_ref();
    let auth = p.and_then(|p| p.auth.0.as_ref());
    let meta = p.and_then(|p| p.meta.0.as_ref());
    let labels = rec.resource.0.as_ref().and_then(|r| r.labels.0.as_ref());
    spans[field::EVENT_ID] = b.span(rec.insert_id.as_str().unwrap_or(""));
    spans[field::EVENT_NAME] = b.span(p.and_then(|p| p.method_name.as_str()).unwrap_or(""));
    let source = p.and_then(|p| p.service_name.as_str()).unwrap_or("");
    spans[field::EVENT_SOURCE] = b.span(source);
    spans[field::SERVICE] = b.span(source.split('.').next().unwrap_or(source));
    let zone = labels.and_then(|l| {
        nonempty(l.region.as_str())
            .or(nonempty(l.location.as_str()))
            .or(nonempty(l.zone.as_str()))
    });
    // A zone (`us-central1-a`) is in the region before its last dash.
    let region = zone.map(|z| match z.rsplit_once('-') {
        Some((r, s)) if s.len() == 1 && r.contains('-') => r,
        _ => z,
    });
    spans[field::REGION] = b.span(region.unwrap_or(""));
    spans[field::SOURCE_IP] = b.span(meta.and_then(|m| m.caller_ip.as_str()).unwrap_or(""));
    spans[field::USER_AGENT] = b.span(meta.and_then(|m| m.user_agent.as_str()).unwrap_or(""));
    spans[field::ERROR_CODE] = b.opt(
        p.and_then(|p| p.status.0.as_ref())
            .and_then(|s| s.code.as_str())
            .filter(|c| !c.is_empty() && *c != "0"),
    );
    let log_name = rec.log_name.as_str().unwrap_or("");
    let log = gcp_log_kind(log_name);
    spans[field::EVENT_TYPE] = b.span(log);
    let project = labels.and_then(|l| nonempty(l.project_id.as_str()));
    spans[field::RECIPIENT_ACCOUNT] = b.span(project.unwrap_or(""));
    let email = nonempty(auth.and_then(|a| a.principal_email.as_str()));
    let subject = nonempty(auth.and_then(|a| a.principal_subject.as_str()));
    let kind = match email {
        Some(e) if e.ends_with(".gserviceaccount.com") => Some(IdentityKind::GcpServiceAccount),
        Some(_) => Some(IdentityKind::GcpUser),
        None => None,
    };
    spans[field::PRINCIPAL] = match email.or(subject) {
        Some(e) => lower_span(b, e),
        None => b.span("unknown"),
    };
    spans[field::ARN] = b.opt(subject);
    spans[field::ACCESS_KEY_ID] =
        b.opt(auth.and_then(|a| a.key_name.as_str()).and_then(gcp_key_id));
    spans[field::ACCOUNT_ID] = b.opt(email.and_then(sa_project).or(project));
    let read_only = match log {
        "data_access" => Some(true),
        "activity" => Some(false),
        _ => None,
    };
    Some(Built {
        provider: Provider::Gcp,
        time_ms,
        kind,
        human: kind == Some(IdentityKind::GcpUser),
        read_only,
    })
}

/// Entra, Microsoft 365 and Azure Activity records.
fn ms_fields(
    rec: &CloudSyntax<'_>,
    b: &mut TextBuilder<'_>,
    spans: &mut [Span; field::COUNT],
) -> Option<Built> {
    let top = &rec.top;
    let props = rec.properties.0.as_ref();
    // A member at the top level (Graph, Management API, Log Analytics) or in
    // `properties` (diagnostic exports).
    macro_rules! either {
        ($($f:tt)+) => {
            nonempty(top.$($f)+.as_str()).or_else(|| props.and_then(|p| nonempty(p.$($f)+.as_str())))
        };
    }
    macro_rules! either_named {
        ($f:ident) => {
            nonempty(top.$f.get()).or_else(|| props.and_then(|p| nonempty(p.$f.get())))
        };
    }
    let category = nonempty(rec.category.get());
    let op_name = nonempty(rec.operation_name.get()).or(nonempty(top.op_name_value.as_str()));
    let operation = either!(operation);
    let workload = either!(workload).or(either!(office_workload));
    let m365 = operation.is_some()
        && (workload.is_some()
            || either!(creation_time).is_some()
            || either!(record_type).is_some());
    let entra_category = category.is_some_and(|c| {
        let c = c.to_ascii_lowercase();
        c.ends_with("signinlogs")
            || c == "auditlogs"
            || c.contains("riskevents")
            || c.contains("riskyusers")
            || c.contains("riskyserviceprincipals")
            || c == "provisioninglogs"
    });
    let activity = !m365
        && !entra_category
        && (op_name.is_some_and(|o| o.contains('/'))
            || top.op_name_value.as_str().is_some()
            || either!(event_data_id).is_some()
            || nonempty(top.event_timestamp.as_str()).is_some());
    let time = |s: Option<&str>| s.and_then(parse_rfc3339_ms);
    if m365 {
        let time_ms = time(either!(creation_time))
            .or_else(|| time(rec.time_generated.as_str()))
            .or_else(|| time(rec.time.as_str()))?;
        spans[field::EVENT_ID] = b.span(either!(id).unwrap_or(""));
        spans[field::EVENT_NAME] = b.span(operation.unwrap_or(""));
        spans[field::EVENT_SOURCE] = b.span(workload.unwrap_or(""));
        spans[field::SERVICE] = b.span(workload.unwrap_or(""));
        let ip = either!(client_ip)
            .or(either!(client_ip_address))
            .or(either!(actor_ip))
            .map(strip_port);
        spans[field::SOURCE_IP] = b.span(ip.unwrap_or(""));
        spans[field::USER_AGENT] = b.span(either!(user_agent).unwrap_or(""));
        spans[field::ERROR_CODE] = b.opt(either!(result_status).filter(|s| failed_status(s)));
        spans[field::EVENT_TYPE] = b.span(either!(record_type).unwrap_or(""));
        let org = either!(organization);
        spans[field::RECIPIENT_ACCOUNT] = b.span(org.unwrap_or(""));
        spans[field::ACCOUNT_ID] = b.opt(org);
        let user = either!(user_id);
        spans[field::PRINCIPAL] = match user {
            Some(u) => lower_span(b, u),
            None => b.span("unknown"),
        };
        let app = matches!(
            either!(user_type),
            Some("5" | "6" | "Application" | "ServicePrincipal")
        );
        let kind = if app {
            IdentityKind::ServicePrincipal
        } else {
            IdentityKind::EntraUser
        };
        return Some(Built {
            provider: Provider::M365,
            time_ms,
            kind: user.map(|_| kind),
            human: !app && user.is_some_and(|u| u.contains('@')),
            read_only: None,
        });
    }
    if activity {
        let time_ms = time(nonempty(top.event_timestamp.as_str()))
            .or_else(|| time(rec.time.as_str()))
            .or_else(|| time(rec.time_generated.as_str()))?;
        spans[field::EVENT_ID] = b.span(
            either!(event_data_id)
                .or(either!(correlation_id))
                .unwrap_or(""),
        );
        let op = op_name.unwrap_or("");
        spans[field::EVENT_NAME] = b.span(op);
        let provider_name = either_named!(resource_provider)
            .or_else(|| op.split_once('/').map(|(p, _)| p))
            .unwrap_or("");
        spans[field::EVENT_SOURCE] = b.span(provider_name);
        spans[field::SERVICE] = lower_span(b, provider_name);
        let claims = top
            .claims
            .0
            .as_ref()
            .or_else(|| top.identity.0.as_ref().and_then(|i| i.claims.0.as_ref()));
        let ip = either!(caller_ip)
            .or_else(|| {
                top.http_request
                    .0
                    .as_ref()
                    .and_then(|h| nonempty(h.client_ip.as_str()))
            })
            .or_else(|| claims.and_then(|c| nonempty(c.ip.as_str())));
        spans[field::SOURCE_IP] = b.span(ip.unwrap_or(""));
        let status = either!(result_type)
            .or_else(|| either_named!(status))
            .or(nonempty(top.activity_status.as_str()));
        spans[field::ERROR_CODE] = b.opt(status.filter(|s| failed_status(s)));
        spans[field::EVENT_TYPE] = b.span(category.unwrap_or(""));
        let sub = either!(subscription).or_else(|| either!(resource_id).and_then(subscription_of));
        spans[field::RECIPIENT_ACCOUNT] = b.span(sub.unwrap_or(""));
        spans[field::ACCOUNT_ID] = b.opt(either!(tenant));
        let caller = either!(caller)
            .or_else(|| claims.and_then(|c| nonempty(c.upn.as_str())))
            .or_else(|| claims.and_then(|c| nonempty(c.name.as_str())))
            .or_else(|| claims.and_then(|c| nonempty(c.app_id.as_str())));
        spans[field::PRINCIPAL] = match caller {
            Some(c) => lower_span(b, c),
            None => b.span("unknown"),
        };
        let kind = caller.map(|c| {
            if c.contains('@') {
                IdentityKind::EntraUser
            } else {
                IdentityKind::ServicePrincipal
            }
        });
        return Some(Built {
            provider: Provider::Azure,
            time_ms,
            kind,
            human: kind == Some(IdentityKind::EntraUser),
            read_only: None,
        });
    }
    // Entra ID: sign-ins, audits and risk detections.
    let audit_name = either!(activity);
    let risk = either!(risk_event_type);
    let upn = either!(upn);
    let sp_id = either!(sp_id);
    let is_entra = entra_category
        || audit_name.is_some()
        || risk.is_some()
        || upn.is_some()
        || sp_id.is_some()
        || nonempty(top.created.as_str()).is_some();
    if !is_entra {
        return None;
    }
    let time_ms = time(either!(created))
        .or_else(|| time(either!(activity_time)))
        .or_else(|| time(either!(detected)))
        .or_else(|| time(rec.time.as_str()))
        .or_else(|| time(rec.time_generated.as_str()))?;
    spans[field::EVENT_ID] = b.span(either!(id).unwrap_or(""));
    let tenant = either!(tenant).or(either!(home_tenant));
    spans[field::RECIPIENT_ACCOUNT] = b.span(tenant.unwrap_or(""));
    spans[field::ACCOUNT_ID] = b.opt(tenant);
    let is_audit =
        audit_name.is_some() || category.is_some_and(|c| c.eq_ignore_ascii_case("AuditLogs"));
    if is_audit {
        let name = audit_name.or(op_name).unwrap_or("");
        spans[field::EVENT_NAME] = b.span(name);
        spans[field::EVENT_SOURCE] = b.span(either!(logged_by).unwrap_or(""));
        spans[field::SERVICE] = b.span("audit");
        spans[field::EVENT_TYPE] = b.span(category.unwrap_or("AuditLogs"));
        let by = top
            .initiated_by
            .0
            .as_ref()
            .or_else(|| props.and_then(|p| p.initiated_by.0.as_ref()));
        let user = by.and_then(|i| i.user.0.as_ref());
        let app = by.and_then(|i| i.app.0.as_ref());
        // Log Analytics rows: `InitiatedBy` as JSON text.
        let by_text = if by.is_none() {
            top.initiated_by
                .text_value()
                .or_else(|| props.and_then(|p| p.initiated_by.text_value()))
        } else {
            None
        };
        let text_field = |who: &str, key: &str| -> Option<&str> {
            let o = ci_get(by_text.as_ref()?, who)?;
            nonempty(ci_get(o, key)?.as_str())
        };
        let ip = user
            .and_then(|u| nonempty(u.ip.as_str()))
            .or_else(|| text_field("user", "ipAddress"))
            .or(either!(caller_ip))
            .or(either!(ip));
        spans[field::SOURCE_IP] = b.span(ip.unwrap_or(""));
        let result = either!(result).or(either!(result_type));
        spans[field::ERROR_CODE] = b.opt(result.filter(|r| failed_status(r)));
        let user_upn = user
            .and_then(|u| nonempty(u.upn.as_str()))
            .or_else(|| text_field("user", "userPrincipalName"));
        let app_who = app
            .and_then(|a| {
                nonempty(a.sp_id.as_str())
                    .or(nonempty(a.app_id.as_str()))
                    .or(nonempty(a.name.as_str()))
            })
            .or_else(|| {
                text_field("app", "servicePrincipalId")
                    .or_else(|| text_field("app", "appId"))
                    .or_else(|| text_field("app", "displayName"))
            });
        let (principal, kind) = match (user_upn, app_who) {
            (Some(u), _) => (Some(u), Some(IdentityKind::EntraUser)),
            (None, Some(a)) => (Some(a), Some(IdentityKind::ServicePrincipal)),
            _ => (None, None),
        };
        spans[field::PRINCIPAL] = match principal {
            Some(p) => lower_span(b, p),
            None => b.span("unknown"),
        };
        spans[field::ARN] = b.opt(
            user.and_then(|u| nonempty(u.id.as_str()))
                .or_else(|| app.and_then(|a| nonempty(a.name.as_str())))
                .or_else(|| text_field("user", "id"))
                .or_else(|| text_field("app", "displayName")),
        );
        return Some(Built {
            provider: Provider::Entra,
            time_ms,
            kind,
            human: kind == Some(IdentityKind::EntraUser),
            read_only: None,
        });
    }
    // Sign-ins and risk detections.
    let mi = either!(mi_type).is_some_and(|m| !m.eq_ignore_ascii_case("none"));
    let cat = match category {
        Some(c) => c,
        None if risk.is_some() => "UserRiskEvents",
        None if mi => "ManagedIdentitySignInLogs",
        None if sp_id.is_some() && upn.is_none() => "ServicePrincipalSignInLogs",
        None if either!(is_interactive) == Some("false") => "NonInteractiveUserSignInLogs",
        None => "SignInLogs",
    };
    let lc = cat.to_ascii_lowercase();
    let sp_sign_in = lc.starts_with("serviceprincipal") || lc.starts_with("managedidentity");
    spans[field::EVENT_TYPE] = b.span(cat);
    let name = if risk.is_some() {
        risk
    } else {
        op_name.or(Some("Sign-in activity"))
    };
    spans[field::EVENT_NAME] = b.span(name.unwrap_or(""));
    spans[field::SERVICE] = b.span(if risk.is_some() { "risk" } else { "signin" });
    spans[field::EVENT_SOURCE] = b.span(either!(resource_name).unwrap_or(""));
    spans[field::SOURCE_IP] = b.span(either!(ip).or(either!(caller_ip)).unwrap_or(""));
    spans[field::USER_AGENT] = b.span(either!(user_agent).unwrap_or(""));
    let error = nonempty(top.status.inner.as_str())
        .or_else(|| props.and_then(|p| nonempty(p.status.inner.as_str())))
        .or(either!(result_type));
    spans[field::ERROR_CODE] = b.opt(error.filter(|e| *e != "0"));
    let app_name = either!(app_name);
    let (principal, kind) = if sp_sign_in || (upn.is_none() && sp_id.is_some()) {
        let k = if lc.starts_with("managedidentity") || mi {
            IdentityKind::ManagedIdentity
        } else {
            IdentityKind::ServicePrincipal
        };
        (sp_id.or(either!(app_id)), Some(k))
    } else {
        (
            upn.or(either!(user_id)),
            upn.map(|_| IdentityKind::EntraUser),
        )
    };
    spans[field::PRINCIPAL] = match principal {
        Some(p) => lower_span(b, p),
        None => b.span("unknown"),
    };
    spans[field::ARN] = b.opt(if sp_sign_in {
        either!(sp_name).or(app_name)
    } else {
        either!(user_id)
    });
    spans[field::SESSION_NAME] = b.opt(app_name);
    spans[field::ACCESS_KEY_ID] = b.opt(either!(sp_key_id));
    let interactive = !sp_sign_in
        && either!(is_interactive) != Some("false")
        && !lc.starts_with("noninteractive");
    Some(Built {
        provider: Provider::Entra,
        time_ms,
        kind,
        human: kind == Some(IdentityKind::EntraUser) && interactive,
        read_only: None,
    })
}

// --- What a record created or set ----------------------------------------------

/// The key id a record says was created: an AWS access key, a Google Cloud
/// service-account key, or the key identifier of a credential added to an Entra
/// application or service principal.
pub(super) fn created_key(ev: &Event) -> Option<String> {
    if ev.error_code().is_some() {
        return None;
    }
    match ev.provider() {
        Provider::Aws if ev.event_name() == "CreateAccessKey" => ev
            .lookup_str("responseElements.accessKey.accessKeyId")
            .map(String::from),
        Provider::Gcp if ev.event_name().ends_with("CreateServiceAccountKey") => ev
            .lookup("protoPayload.response.name")
            .and_then(Value::as_str)
            .and_then(gcp_key_id)
            .map(String::from),
        Provider::Entra | Provider::M365 if credential_operation(ev.event_name()) => {
            modified_properties(ev.json())
                .into_iter()
                .filter(|(n, ..)| n.eq_ignore_ascii_case("KeyDescription"))
                .find_map(|(_, _, new)| key_identifier(&new).map(String::from))
        }
        _ => None,
    }
}

/// Whether an Entra audit activity adds credentials to an application or service
/// principal.
pub fn credential_operation(name: &str) -> bool {
    let n = name.trim().trim_end_matches('.').to_ascii_lowercase();
    n == "add service principal credentials"
        || (n.starts_with("update application") && n.contains("certificates and secrets"))
}

/// `KeyIdentifier=<id>` in an Entra `KeyDescription` value.
fn key_identifier(s: &str) -> Option<&str> {
    let (_, rest) = s.split_once("KeyIdentifier=")?;
    let end = rest.find([',', ']', '"', '\\']).unwrap_or(rest.len());
    Some(&rest[..end]).filter(|k| !k.is_empty())
}

/// One member of a JSON object by name (an exact match first), regardless of
/// ASCII case and underscores ([`key_is`]).
pub fn member<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    let m = v.as_object()?;
    m.get(key)
        .or_else(|| m.iter().find(|(k, _)| key_is(k, key)).map(|(_, v)| v))
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        v => v.to_string(),
    }
}

/// `(name, old, new)` of every modified property in an Entra or Microsoft 365 record
/// (`targetResources[].modifiedProperties[]` with `displayName`/`oldValue`/`newValue`,
/// `ModifiedProperties[]` with `Name`/`OldValue`/`NewValue`), anywhere in it.
pub fn modified_properties(v: &Value) -> Vec<(String, String, String)> {
    fn walk(v: &Value, out: &mut Vec<(String, String, String)>, depth: usize) {
        if depth > 12 || out.len() > 256 {
            return;
        }
        match v {
            Value::Array(a) => a.iter().for_each(|x| walk(x, out, depth + 1)),
            Value::Object(m) => {
                let name = member(v, "displayName").or_else(|| member(v, "Name"));
                let new = member(v, "newValue");
                if let (Some(n), Some(new)) = (name, new) {
                    let old = member(v, "oldValue").map(text).unwrap_or_default();
                    out.push((text(n), old, text(new)));
                }
                m.values().for_each(|x| walk(x, out, depth + 1));
            }
            // Log Analytics rows hold `TargetResources` as JSON text.
            Value::String(t) if depth <= 2 => {
                if let Some(inner) = json_text(t) {
                    walk(&inner, out, depth + 1);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(v, &mut out, 0);
    out
}

/// A JSON array or object written as a string (Log Analytics `dynamic`
/// columns), parsed; `None` for any other text.
fn json_text(t: &str) -> Option<Value> {
    let s = t.trim_start();
    if !(s.starts_with('[') || s.starts_with('{')) || s.len() > 1 << 20 {
        return None;
    }
    serde_json::from_str(s).ok()
}

/// `(name, value)` of the cmdlet parameters of a Microsoft 365 record (`Parameters`,
/// and `OperationProperties` of Outlook's `UpdateInboxRules`).
pub fn parameters(v: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for key in ["Parameters", "OperationProperties"] {
        let found = member(v, key).or_else(|| member(v, "properties").and_then(|p| member(p, key)));
        // Log Analytics `OfficeActivity` rows hold them as JSON text.
        let parsed = match found {
            Some(Value::String(t)) => json_text(t),
            _ => None,
        };
        if let Some(Value::Array(items)) = parsed.as_ref().or(found) {
            for it in items {
                if let (Some(n), Some(val)) = (member(it, "Name"), member(it, "Value")) {
                    out.push((text(n), text(val)));
                }
            }
        }
    }
    out
}

impl Event {
    /// The key id this record says was created: an AWS access key
    /// (`CreateAccessKey`), a Google Cloud service-account key
    /// (`CreateServiceAccountKey`), or the key identifier of a credential added to an
    /// Entra application or service principal.
    pub fn created_key(&self) -> Option<String> {
        created_key(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_names_ignore_case_and_underscores_only() {
        for (key, name) in [
            ("eventTimestamp", "eventTimestamp"),
            ("EVENTTIMESTAMP", "eventTimestamp"),
            ("event_timestamp", "eventTimestamp"),
            ("client_ip_address", "clientIpAddress"),
            ("Client_IPAddress", "ClientIPAddress"),
            ("_caller_", "caller"),
        ] {
            assert!(key_is(key, name), "{key} is {name}");
        }
        for (key, name) in [
            ("event_time", "eventTimestamp"),
            ("eventTimestamps", "eventTimestamp"),
            ("event-timestamp", "eventTimestamp"),
            ("caller_ip", "caller"),
            ("", "caller"),
            ("____", "id"),
        ] {
            assert!(!key_is(key, name), "{key} is not {name}");
        }
        // The Azure SDK's serialisation of an Activity record.
        let e = Event::parse(
            br#"{"event_timestamp":"2022-02-09T03:00:37.1Z","operation_name":{"value":"Microsoft.Compute/virtualMachines/write","localized_value":"x"},"caller":"Ops@Corp.example","http_request":{"client_ip_address":"203.0.113.9","method":"PUT"},"status":{"value":"Failed"},"subscription_id":"s-1","event_data_id":"e-1"}"#,
        )
        .unwrap();
        assert_eq!(e.provider(), Provider::Azure);
        assert_eq!(e.event_name(), "Microsoft.Compute/virtualMachines/write");
        assert_eq!(e.principal(), "ops@corp.example");
        assert_eq!(e.source_ip(), "203.0.113.9");
        assert_eq!(e.recipient_account(), "s-1");
        assert_eq!(e.event_id(), "e-1");
        assert_eq!(e.error_code(), Some("Failed"));
    }

    #[test]
    fn ports_and_keys() {
        assert_eq!(
            key_identifier(
                "[KeyIdentifier=4e5d1c2b-0000-4000-8000-000000000001,KeyType=Password,KeyUsage=Verify,DisplayName=x]"
            ),
            Some("4e5d1c2b-0000-4000-8000-000000000001")
        );
        assert_eq!(strip_port("203.0.113.9:51234"), "203.0.113.9");
        assert_eq!(strip_port("[2001:db8::1]:443"), "2001:db8::1");
        assert_eq!(strip_port("2001:db8::1"), "2001:db8::1");
        assert_eq!(strip_port("203.0.113.9"), "203.0.113.9");
        assert_eq!(
            gcp_key_id(
                "//iam.googleapis.com/projects/p/serviceAccounts/sa@p.iam.gserviceaccount.com/keys/abc123"
            ),
            Some("abc123")
        );
        assert_eq!(gcp_key_id("no key"), None);
        assert_eq!(
            sa_project("sa@proj-1.iam.gserviceaccount.com"),
            Some("proj-1")
        );
        assert_eq!(
            subscription_of("/SUBSCRIPTIONS/0000-11/RESOURCEGROUPS/rg"),
            Some("0000-11")
        );
        assert_eq!(
            gcp_log_kind("projects/p/logs/cloudaudit.googleapis.com%2Factivity"),
            "activity"
        );
    }

    #[test]
    fn log_analytics_rows_and_app_initiators() {
        // A Log Analytics SigninLogs row (PascalCase columns).
        let e = Event::parse_str(
            r#"{"TimeGenerated":"2024-03-10T10:00:00.123Z","OperationName":"Sign-in activity","Category":"NonInteractiveUserSignInLogs",
            "ResultType":"50126","UserPrincipalName":"Bob@Corp.example","IPAddress":"198.51.100.7","AppDisplayName":"Azure Portal"}"#,
        )
        .unwrap();
        assert_eq!(e.provider(), Provider::Entra);
        assert_eq!(e.principal(), "bob@corp.example");
        assert_eq!(e.error_code(), Some("50126"));
        assert_eq!(e.event_type(), "NonInteractiveUserSignInLogs");
        assert!(!e.human_use(), "a non-interactive sign-in");
        assert_eq!(e.identity().session_name, Some("Azure Portal"));
        // An audit initiated by an application.
        let e = Event::parse_str(
            r#"{"id":"Directory_1","category":"ApplicationManagement","result":"failure","activityDisplayName":"Add service principal",
            "activityDateTime":"2024-03-10T10:00:00Z","initiatedBy":{"user":null,"app":{"appId":"a1","displayName":"Deployer","servicePrincipalId":"sp-9"}}}"#,
        )
        .unwrap();
        assert_eq!(e.principal(), "sp-9");
        assert_eq!(e.identity_kind(), Some(IdentityKind::ServicePrincipal));
        assert_eq!(e.error_code(), Some("failure"));
        assert_eq!(e.service(), "audit");
        // Log Analytics OfficeActivity and AzureActivity rows.
        let e = Event::parse_str(
            r#"{"TimeGenerated":"2024-03-10T10:00:00Z","Operation":"Set-Mailbox","OfficeWorkload":"Exchange","UserId":"a@corp.example","ClientIP":"203.0.113.9:5000"}"#,
        )
        .unwrap();
        assert_eq!(
            (e.provider(), e.source_ip()),
            (Provider::M365, "203.0.113.9")
        );
        let e = Event::parse_str(
            r#"{"TimeGenerated":"2024-03-10T10:00:00Z","OperationNameValue":"MICROSOFT.COMPUTE/VIRTUALMACHINES/WRITE","Caller":"ops@corp.example",
            "CallerIpAddress":"203.0.113.9","CategoryValue":"Administrative","ActivityStatusValue":"Failure","SubscriptionId":"s-1"}"#,
        )
        .unwrap();
        assert_eq!(e.provider(), Provider::Azure);
        assert_eq!(e.event_name(), "MICROSOFT.COMPUTE/VIRTUALMACHINES/WRITE");
        assert_eq!(e.service(), "microsoft.compute");
        assert_eq!(e.error_code(), Some("Failure"));
        assert_eq!(e.recipient_account(), "s-1");
        // Not a record of any cloud: missing time, as before.
        assert_eq!(
            Event::parse_str(r#"{"hello":"world","time":"yesterday"}"#).unwrap_err(),
            RecordError::MissingTime
        );
        // A Pub/Sub envelope of a Pub/Sub envelope of an entry: one level too many.
        let entry = r#"{"protoPayload":{"methodName":"m"},"timestamp":"2024-03-10T10:00:00Z"}"#;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let one = format!(r#"{{"message":{{"data":"{}"}}}}"#, b64(entry));
        assert_eq!(Event::parse_str(&one).unwrap().provider(), Provider::Gcp);
        let two = format!(r#"{{"message":{{"data":"{}"}}}}"#, b64(&one));
        assert!(Event::parse_str(&two).is_ok());
        let three = format!(r#"{{"message":{{"data":"{}"}}}}"#, b64(&two));
        assert!(Event::parse_str(&three).is_err());
    }
}

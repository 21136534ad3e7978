//! The CloudTrail record model: one parsed event with its normalised identity.
//!
//! Parsing borrows from the record bytes (serde_json with `RawValue` for the nested
//! request/response documents) and keeps the raw record so Sigma rules can reach any
//! dotted path lazily. Parsing is lenient: a field of an unexpected type is treated as
//! missing instead of rejecting the record; only records that are not JSON objects, or
//! that carry no usable time, are rejected.

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use crate::time::parse_rfc3339_ms;

/// What kind of principal made the call (`userIdentity.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityKind {
    /// An IAM user (long-term access key or console password).
    IamUser,
    /// A role session (`sts:AssumeRole*`, instance profiles, SSO, Lambda…).
    AssumedRole,
    /// A session from `sts:GetFederationToken`.
    FederatedUser,
    /// The account root user.
    Root,
    /// An AWS service acting on its own.
    AwsService,
    /// Another AWS account.
    AwsAccount,
    /// A SAML-federated user (`AssumeRoleWithSAML`).
    SamlUser,
    /// A web-identity user (`AssumeRoleWithWebIdentity`).
    WebIdentityUser,
    /// An IAM Identity Center user.
    IdentityCenterUser,
    /// Missing or unknown `userIdentity`.
    Unknown,
}

impl IdentityKind {
    fn from_type(s: &str) -> Self {
        match s {
            "IAMUser" => Self::IamUser,
            "AssumedRole" => Self::AssumedRole,
            "FederatedUser" => Self::FederatedUser,
            "Root" => Self::Root,
            "AWSService" => Self::AwsService,
            "AWSAccount" => Self::AwsAccount,
            "SAMLUser" => Self::SamlUser,
            "WebIdentityUser" => Self::WebIdentityUser,
            "IdentityCenterUser" => Self::IdentityCenterUser,
            _ => Self::Unknown,
        }
    }
}

/// The credential and identity behind one event, normalised (a view into the event,
/// see [`Event::identity`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Identity<'a> {
    /// Principal type.
    pub kind: Option<IdentityKind>,
    /// Stable key of the identity that baselines and alerts are grouped by: the IAM user
    /// ARN, the *role* ARN for role sessions (the session issuer), the federated-user
    /// ARN, the root ARN, or `service:<name>` / `account:<id>` / `principal:<id>`.
    pub principal: &'a str,
    /// `userIdentity.arn` as logged (a session ARN for roles).
    pub arn: Option<&'a str>,
    /// `userIdentity.accessKeyId` (`AKIA…` long-term, `ASIA…` temporary).
    pub access_key_id: Option<&'a str>,
    /// Account id of the principal.
    pub account_id: Option<&'a str>,
    /// Role session name (assumed roles) or federated user name.
    pub session_name: Option<&'a str>,
    /// `sessionContext.sessionIssuer.arn`: the role behind a role session, the IAM
    /// user behind a federation token.
    pub issuer: Option<&'a str>,
    /// `sessionContext.attributes.mfaAuthenticated == "true"`.
    pub mfa: bool,
    /// The session credentials came from the console (`sessionCredentialFromConsole`).
    pub console_session: bool,
    /// `userIdentity.invokedBy` (an AWS service acting for the principal).
    pub invoked_by: Option<&'a str>,
}

impl Identity<'_> {
    /// Whether the access key is a long-term IAM user key (`AKIA`).
    pub fn long_term_key(&self) -> bool {
        self.access_key_id.is_some_and(|k| k.starts_with("AKIA"))
    }
    /// Whether the session is an EC2 instance-profile session (session name = instance id).
    pub fn ec2_instance_session(&self) -> bool {
        self.kind == Some(IdentityKind::AssumedRole)
            && self.session_name.is_some_and(|s| {
                s.len() >= 10
                    && s.starts_with("i-")
                    && s[2..].bytes().all(|b| b.is_ascii_hexdigit())
            })
    }
}

/// Family of the client software that made a call, from its user agent.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum UaFamily {
    /// A web browser (`Mozilla/5.0 …`).
    Browser,
    /// The AWS console (`console.*.amazonaws.com`, `AWS Internal` behind the console).
    Console,
    /// AWS CLI on a server OS.
    AwsCli,
    /// AWS CLI on a desktop OS (macOS, Windows).
    AwsCliDesktop,
    /// A Python SDK (boto3/botocore).
    SdkPython,
    /// The Go SDK.
    SdkGo,
    /// The Java SDK.
    SdkJava,
    /// The JavaScript SDK.
    SdkJs,
    /// Another AWS SDK (.NET, Ruby, PHP, Rust, C++).
    SdkOther,
    /// Terraform, Pulumi, CloudFormation, CDK.
    Iac,
    /// An AWS service calling on a principal's behalf.
    AwsService,
    /// curl, wget, Postman, HTTPie: hand-made requests.
    HttpTool,
    /// Desktop S3/cloud tools (S3 Browser, Cyberduck, CloudBerry).
    DesktopTool,
    /// Offensive tooling (Pacu, TruffleHog, Stratus Red Team, Kali/Parrot hosts, ScoutSuite…).
    AttackTool,
    /// Empty user agent.
    Empty,
    /// Anything else.
    Other,
}

impl UaFamily {
    /// Classifies a user-agent string by the rules of `data/user-agents.yml`.
    pub fn classify(ua: &str) -> Self {
        if ua.is_empty() {
            return Self::Empty;
        }
        let lower_owned;
        let l: &str = if ua.bytes().any(|b| b.is_ascii_uppercase()) {
            lower_owned = ua.to_ascii_lowercase();
            &lower_owned
        } else {
            ua
        };
        UA_RULES
            .iter()
            .find(|r| r.matches(l))
            .map_or(Self::Other, |r| r.family)
    }

    /// Whether this family is used by people at a keyboard rather than by a server process.
    pub fn interactive(self) -> bool {
        matches!(
            self,
            Self::Browser
                | Self::Console
                | Self::AwsCliDesktop
                | Self::HttpTool
                | Self::DesktopTool
                | Self::AttackTool
        )
    }

    /// Snake-case name used in explanations and state files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Browser => "browser",
            Self::Console => "console",
            Self::AwsCli => "aws_cli",
            Self::AwsCliDesktop => "aws_cli_desktop",
            Self::SdkPython => "sdk_python",
            Self::SdkGo => "sdk_go",
            Self::SdkJava => "sdk_java",
            Self::SdkJs => "sdk_js",
            Self::SdkOther => "sdk_other",
            Self::Iac => "iac",
            Self::AwsService => "aws_service",
            Self::HttpTool => "http_tool",
            Self::DesktopTool => "desktop_tool",
            Self::AttackTool => "attack_tool",
            Self::Empty => "empty",
            Self::Other => "other",
        }
    }
}

/// One rule of `data/user-agents.yml`: the family of the user agents it matches.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct UaRule {
    family: UaFamily,
    #[serde(default)]
    equals: Vec<String>,
    #[serde(default)]
    starts_with: Vec<String>,
    #[serde(default)]
    ends_with: Vec<String>,
    #[serde(default)]
    contains: Vec<String>,
    #[serde(default)]
    and_contains: Vec<String>,
}

impl UaRule {
    /// Whether the rule matches `l`, a lowercased user agent.
    fn matches(&self, l: &str) -> bool {
        let any = self.equals.iter().any(|p| l == p)
            || self.starts_with.iter().any(|p| l.starts_with(p.as_str()))
            || self.ends_with.iter().any(|p| l.ends_with(p.as_str()))
            || self.contains.iter().any(|p| l.contains(p.as_str()));
        any && (self.and_contains.is_empty()
            || self.and_contains.iter().any(|p| l.contains(p.as_str())))
    }
}

/// The user-agent families, as data (`data/user-agents.yml`, embedded).
static UA_RULES: std::sync::LazyLock<Vec<UaRule>> = std::sync::LazyLock::new(|| {
    serde_yaml_ng::from_str(include_str!("../data/user-agents.yml"))
        .expect("data/user-agents.yml is valid (checked by a test)")
});

/// A string field of an [`Event`]: a byte range of its text (`start == u32::MAX`:
/// absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span(u32, u32);

impl Span {
    const NONE: Span = Span(u32::MAX, 0);
    const EMPTY: Span = Span(0, 0);
}

/// Indices of the string fields of an [`Event`] in its span table.
mod field {
    pub const EVENT_ID: usize = 0;
    pub const EVENT_NAME: usize = 1;
    pub const EVENT_SOURCE: usize = 2;
    pub const REGION: usize = 3;
    pub const SOURCE_IP: usize = 4;
    pub const USER_AGENT: usize = 5;
    pub const ERROR_CODE: usize = 6;
    pub const EVENT_TYPE: usize = 7;
    pub const RECIPIENT_ACCOUNT: usize = 8;
    pub const PRINCIPAL: usize = 9;
    pub const ARN: usize = 10;
    pub const ACCESS_KEY_ID: usize = 11;
    pub const ACCOUNT_ID: usize = 12;
    pub const SESSION_NAME: usize = 13;
    pub const ISSUER: usize = 14;
    pub const INVOKED_BY: usize = 15;
    /// The service prefix of `eventSource` (a part of its span).
    pub const SERVICE: usize = 16;
    pub const COUNT: usize = 17;
}

/// One CloudTrail event.
///
/// The record text and every string field live in one allocation: fields are byte
/// ranges of the record text (strings without escapes, the common case) or of decoded
/// and derived strings stored after it. An event is parsed on one thread and read on
/// another, so one allocation per event (instead of one per field) keeps both the
/// allocator and the reading core's caches cheap.
#[derive(Debug)]
pub struct Event {
    /// Event time in ms since the epoch (`eventTime`, else `@timestamp`).
    pub time_ms: i64,
    /// `sourceIPAddress` when it is a valid IP address.
    pub source_addr: Option<IpAddr>,
    /// Family of `userAgent`, classified once at parse time.
    pub ua_family: UaFamily,
    /// `readOnly`.
    pub read_only: Option<bool>,
    /// Principal type, MFA and console-session flags of the identity.
    kind: Option<IdentityKind>,
    mfa: bool,
    console_session: bool,
    /// The buffer holding the record text: the whole file it was read from (shared by
    /// the file's events, so parsing copies no record text) or the record alone.
    src: Arc<String>,
    /// Start of the record text in `src`.
    raw_start: usize,
    /// Length of the record text.
    raw_len: u32,
    /// Decoded and derived field strings (escaped strings, numbers, derived role
    /// ARNs); usually empty.
    extra: Box<str>,
    /// Ranges of the string fields (indexed by [`field`]): offsets below `raw_len`
    /// are in the record text, offsets from `raw_len` on are in `extra`.
    spans: [Span; field::COUNT],
    /// Byte ranges in `raw` of the nested documents in [`SUBTREES`], so a dotted lookup
    /// parses only the subtree it needs.
    subs: [(u32, u32); 5],
    /// Range of `userIdentity` (its slot in `subs` is unused): located on first use,
    /// as the typed parse reads it in the same pass as the record.
    ui_range: OnceLock<(u32, u32)>,
    /// Range in `raw` of `userIdentity.sessionContext.sessionIssuer.type` when it is a
    /// plain string (`(0, 0)` otherwise).
    issuer_type: (u32, u32),
    /// JSON trees parsed on demand (boxed: most events never need one).
    trees: OnceLock<Box<Trees>>,
    /// Rules matched ahead of the engine by a parse worker (Sigma detection rules:
    /// `SigmaRules::prematch`), used only with the rule set that computed them.
    pub(crate) prematch: Option<crate::prematch::Prematch>,
}

/// Lazily parsed JSON trees of one event: the whole record and each of [`SUBTREES`].
#[derive(Debug, Default)]
struct Trees {
    whole: OnceLock<Value>,
    subs: [OnceLock<Value>; 5],
}

/// Top-level members whose subtrees are located at parse time and parsed on demand.
pub const SUBTREES: [&str; 5] = [
    "requestParameters",
    "responseElements",
    "additionalEventData",
    "userIdentity",
    "serviceEventDetails",
];

impl Clone for Event {
    fn clone(&self) -> Self {
        Event {
            time_ms: self.time_ms,
            source_addr: self.source_addr,
            ua_family: self.ua_family,
            read_only: self.read_only,
            kind: self.kind,
            mfa: self.mfa,
            console_session: self.console_session,
            src: self.src.clone(),
            raw_start: self.raw_start,
            raw_len: self.raw_len,
            extra: self.extra.clone(),
            spans: self.spans,
            subs: self.subs,
            ui_range: self.ui_range.clone(),
            issuer_type: self.issuer_type,
            trees: OnceLock::new(),
            prematch: self.prematch.clone(),
        }
    }
}

/// Why a record could not become an [`Event`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordError {
    /// Not valid JSON (serde_json's message).
    InvalidJson(String),
    /// Valid JSON but not an object.
    NotAnObject,
    /// No parseable `eventTime` or `@timestamp`.
    MissingTime,
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::InvalidJson(m) => write!(f, "invalid JSON record: {m}"),
            RecordError::NotAnObject => f.write_str("record is not a JSON object"),
            RecordError::MissingTime => {
                f.write_str("record has no parseable eventTime or @timestamp")
            }
        }
    }
}

/// A string field that tolerates other JSON types (numbers and booleans become text;
/// objects, arrays and null become `None`).
#[derive(Default)]
struct Lenient<'a>(Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for Lenient<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Lenient<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Lenient(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Lenient(Some(Cow::Owned(v.to_owned()))))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Lenient(Some(Cow::Owned(v))))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Lenient(Some(Cow::Borrowed(if v {
                    "true"
                } else {
                    "false"
                }))))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Lenient(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Lenient(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Lenient(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Lenient(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Lenient(None))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_any(V)
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Lenient(None))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Lenient(None))
            }
        }
        d.deserialize_any(V)
    }
}

impl Lenient<'_> {
    fn as_str(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

/// A nested object that tolerates other JSON types (treated as missing), parsed in
/// the same pass as its parent. An object that repeats one of its known members is
/// treated as missing too (as a derived `Deserialize` would reject it).
struct LenientObj<T>(Option<T>);

/// The known members of a lenient nested object.
trait Members<'de>: Default {
    /// Reads the value of member `key` from `map`: the member's index, or `None` (the
    /// value is skipped) when the key is not a known member.
    fn member<A: de::MapAccess<'de>>(
        &mut self,
        key: &str,
        map: &mut A,
    ) -> Result<Option<u32>, A::Error>;
}

/// Implements [`Members`] for a struct whose fields are [`Lenient`] or [`LenientObj`].
macro_rules! members {
    ($ty:ident { $($field:ident = $key:literal),* $(,)? }) => {
        impl<'de: 'a, 'a> Members<'de> for $ty<'a> {
            fn member<A: de::MapAccess<'de>>(
                &mut self,
                key: &str,
                map: &mut A,
            ) -> Result<Option<u32>, A::Error> {
                let mut idx = 0u32;
                $(
                    if key == $key {
                        self.$field = map.next_value()?;
                        return Ok(Some(idx));
                    }
                    idx += 1;
                )*
                let _ = idx;
                map.next_value::<IgnoredAny>()?;
                Ok(None)
            }
        }
    };
}

impl<'de, T: Members<'de>> Deserialize<'de> for LenientObj<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Members<'de>> Visitor<'de> for V<T> {
            type Value = LenientObj<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut t = T::default();
                let mut seen = 0u64;
                let mut dup = false;
                while let Some(k) = m.next_key::<Lenient<'de>>()? {
                    if let Some(i) = t.member(k.0.as_deref().unwrap_or(""), &mut m)? {
                        dup |= seen & (1 << i) != 0;
                        seen |= 1 << i;
                    }
                }
                Ok(LenientObj(if dup { None } else { Some(t) }))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(LenientObj(None))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(LenientObj(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(LenientObj(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(LenientObj(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(LenientObj(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(LenientObj(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(LenientObj(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(LenientObj(None))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

impl<T> Default for LenientObj<T> {
    fn default() -> Self {
        LenientObj(None)
    }
}

#[derive(Default)]
struct IssuerSyntax<'a> {
    arn: Lenient<'a>,
    kind: PlainStr<'a>,
}
members!(IssuerSyntax {
    arn = "arn",
    kind = "type"
});

/// A string member borrowed from the record text when it has no escapes; any other
/// value is `None`.
#[derive(Default)]
struct PlainStr<'a>(Option<&'a str>);

impl<'de: 'a, 'a> Deserialize<'de> for PlainStr<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = PlainStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(PlainStr(Some(v)))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(PlainStr(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(PlainStr(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(PlainStr(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(PlainStr(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(PlainStr(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(PlainStr(None))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(PlainStr(None))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(PlainStr(None))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Default)]
struct AttributesSyntax<'a> {
    mfa_authenticated: Lenient<'a>,
}
members!(AttributesSyntax {
    mfa_authenticated = "mfaAuthenticated"
});

#[derive(Default)]
struct SessionContextSyntax<'a> {
    session_issuer: LenientObj<IssuerSyntax<'a>>,
    attributes: LenientObj<AttributesSyntax<'a>>,
}
members!(SessionContextSyntax {
    session_issuer = "sessionIssuer",
    attributes = "attributes",
});

#[derive(Default)]
struct UserIdentitySyntax<'a> {
    kind: Lenient<'a>,
    arn: Lenient<'a>,
    principal_id: Lenient<'a>,
    account_id: Lenient<'a>,
    access_key_id: Lenient<'a>,
    user_name: Lenient<'a>,
    invoked_by: Lenient<'a>,
    session_context: LenientObj<SessionContextSyntax<'a>>,
    session_credential_from_console: Lenient<'a>,
}
members!(UserIdentitySyntax {
    kind = "type",
    arn = "arn",
    principal_id = "principalId",
    account_id = "accountId",
    access_key_id = "accessKeyId",
    user_name = "userName",
    invoked_by = "invokedBy",
    session_context = "sessionContext",
    session_credential_from_console = "sessionCredentialFromConsole",
});

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct RecordSyntax<'a> {
    #[serde(borrow)]
    event_time: Lenient<'a>,
    #[serde(borrow, rename = "@timestamp")]
    at_timestamp: Lenient<'a>,
    #[serde(borrow, rename = "eventID")]
    event_id: Lenient<'a>,
    #[serde(borrow)]
    event_name: Lenient<'a>,
    #[serde(borrow)]
    event_source: Lenient<'a>,
    #[serde(borrow)]
    aws_region: Lenient<'a>,
    #[serde(borrow, rename = "sourceIPAddress")]
    source_ip_address: Lenient<'a>,
    #[serde(borrow)]
    user_agent: Lenient<'a>,
    #[serde(borrow)]
    error_code: Lenient<'a>,
    #[serde(borrow)]
    event_type: Lenient<'a>,
    #[serde(borrow)]
    recipient_account_id: Lenient<'a>,
    #[serde(borrow)]
    read_only: Lenient<'a>,
    #[serde(borrow)]
    request_parameters: Option<&'a RawValue>,
    #[serde(borrow)]
    response_elements: Option<&'a RawValue>,
    #[serde(borrow)]
    additional_event_data: Option<&'a RawValue>,
    #[serde(borrow)]
    user_identity: LenientObj<UserIdentitySyntax<'a>>,
    #[serde(borrow)]
    service_event_details: Option<&'a RawValue>,
    /// `aws cloudtrail lookup-events` output: the record as a JSON string.
    #[serde(borrow, rename = "CloudTrailEvent")]
    cloudtrail_event: Lenient<'a>,
    /// An EventBridge envelope ("AWS API Call via CloudTrail"): the record.
    #[serde(borrow)]
    detail: Option<&'a RawValue>,
    /// A CloudWatch Logs event (`aws logs filter-log-events`): the record as a string.
    #[serde(borrow)]
    message: Lenient<'a>,
}

/// Converts a role-session ARN (`arn:aws:sts::1:assumed-role/R/S`) to the role ARN
/// (`arn:aws:iam::1:role/R`) and the session name.
pub fn role_from_session_arn(arn: &str) -> Option<(String, String)> {
    let (partition, account, role, session) = session_arn_parts(arn)?;
    Some((
        format!("arn:{partition}:iam::{account}:role/{role}"),
        session.to_string(),
    ))
}

/// Partition, account, role name and session name of a role-session ARN.
fn session_arn_parts(arn: &str) -> Option<(&str, &str, &str, &str)> {
    let rest = arn.strip_prefix("arn:")?;
    let mut parts = rest.splitn(5, ':');
    let partition = parts.next()?;
    let _service = parts.next()?;
    let _region = parts.next()?;
    let account = parts.next()?;
    let resource = parts.next()?;
    let r = resource.strip_prefix("assumed-role/")?;
    let (role, session) = r.split_once('/')?;
    Some((partition, account, role, session))
}

impl Event {
    /// Parses one record. `bytes` must hold exactly one JSON value.
    pub fn parse(bytes: &[u8]) -> Result<Event, RecordError> {
        let text =
            std::str::from_utf8(bytes).map_err(|e| RecordError::InvalidJson(e.to_string()))?;
        Self::parse_str(text)
    }

    /// Parses one record from text holding exactly one JSON value. Parsing the typed
    /// view validates the whole record (unknown fields are still syntax-checked).
    pub fn parse_str(text: &str) -> Result<Event, RecordError> {
        let t = text.trim();
        if !t.starts_with('{') {
            if serde_json::from_str::<IgnoredAny>(t).is_err() {
                return Err(RecordError::InvalidJson("not a JSON value".into()));
            }
            return Err(RecordError::NotAnObject);
        }
        let rec: RecordSyntax<'_> =
            serde_json::from_str(t).map_err(|e| RecordError::InvalidJson(e.to_string()))?;
        Self::from_syntax(rec, t, None)
    }

    /// Parses the record that starts at `b[0]` (a `{`) and returns it with the length of
    /// its text, in one pass and without delimiting it first. `None` when the bytes are
    /// not one valid JSON object (the caller delimits and reports it).
    pub(crate) fn parse_prefix(b: &[u8]) -> Option<(Result<Event, RecordError>, usize)> {
        let mut stream = serde_json::Deserializer::from_slice(b).into_iter::<RecordSyntax<'_>>();
        let rec = stream.next()?.ok()?;
        let end = stream.byte_offset();
        // Every byte of a parsed record is ASCII syntax or inside a validated string.
        let t = std::str::from_utf8(&b[..end]).ok()?;
        Some((Self::from_syntax(rec, t, None), end))
    }

    /// [`Event::parse_prefix`] on the text of `buf` from `start` (strings are not
    /// validated again). The event keeps `buf` instead of copying its record text.
    pub(crate) fn parse_prefix_shared(
        buf: &Arc<String>,
        start: usize,
    ) -> Option<(Result<Event, RecordError>, usize)> {
        let t = &buf[start..];
        let mut stream = serde_json::Deserializer::from_str(t).into_iter::<RecordSyntax<'_>>();
        let rec = stream.next()?.ok()?;
        let end = stream.byte_offset();
        Some((Self::from_syntax(rec, &t[..end], Some((buf, start))), end))
    }

    /// Builds the event from its parsed syntax; `t` is the record text the syntax
    /// borrows from, found in `shared` (a buffer and the offset of `t` in it) when
    /// given, else copied.
    fn from_syntax(
        rec: RecordSyntax<'_>,
        t: &str,
        shared: Option<(&Arc<String>, usize)>,
    ) -> Result<Event, RecordError> {
        let time = rec
            .event_time
            .as_str()
            .and_then(parse_rfc3339_ms)
            .or_else(|| rec.at_timestamp.as_str().and_then(parse_rfc3339_ms));
        let Some(time_ms) = time else {
            // Envelopes around a record: `lookup-events` output keeps it as a string in
            // `CloudTrailEvent`, CloudWatch Logs in `message`, EventBridge in `detail`.
            // The event is the inner record.
            if let Some(inner) = rec
                .cloudtrail_event
                .as_str()
                .or(rec.message.as_str())
                .filter(|s| s.trim_start().starts_with('{'))
            {
                return Self::parse_str(inner);
            }
            if let Some(d) = rec.detail.filter(|d| d.get().starts_with('{')) {
                return Self::parse_str(d.get());
            }
            return Err(RecordError::MissingTime);
        };
        let mut b = TextBuilder {
            t,
            extra: String::new(),
        };
        let mut spans = [Span::NONE; field::COUNT];
        let source_ip = rec.source_ip_address.as_str().unwrap_or("");
        let source_addr = parse_ip(source_ip);
        spans[field::SOURCE_IP] = b.span(source_ip);
        let ui: Option<&UserIdentitySyntax<'_>> = rec.user_identity.0.as_ref();
        let (kind, mfa, console_session) = normalise_identity(ui, &mut b, &mut spans);
        let base = t.as_ptr() as usize;
        let range = |r: Option<&RawValue>| -> (u32, u32) {
            r.map_or((0, 0), |r| {
                let start = r.get().as_ptr() as usize - base;
                (start as u32, (start + r.get().len()) as u32)
            })
        };
        let issuer_type = ui
            .and_then(|u| u.session_context.0.as_ref())
            .and_then(|c| c.session_issuer.0.as_ref())
            .and_then(|i| i.kind.0)
            .map_or((0, 0), |k| {
                let start = k.as_ptr() as usize - base;
                (start as u32, (start + k.len()) as u32)
            });
        let subs = [
            range(rec.request_parameters),
            range(rec.response_elements),
            range(rec.additional_event_data),
            (0, 0),
            range(rec.service_event_details),
        ];
        let user_agent = rec.user_agent.as_str().unwrap_or("");
        let ua_family = classify_cached(user_agent);
        let read_only = match rec.read_only.as_str() {
            Some("true") => Some(true),
            Some("false") => Some(false),
            _ => None,
        };
        spans[field::USER_AGENT] = b.span(user_agent);
        spans[field::EVENT_ID] = b.span(rec.event_id.as_str().unwrap_or(""));
        spans[field::EVENT_NAME] = b.span(rec.event_name.as_str().unwrap_or(""));
        let source = rec.event_source.as_str().unwrap_or("");
        spans[field::EVENT_SOURCE] = b.span(source);
        spans[field::SERVICE] = match spans[field::EVENT_SOURCE] {
            // The service is the part before the first dot, within the source's span.
            Span(a, _) if a != u32::MAX => {
                let n = source.find('.').unwrap_or(source.len());
                Span(a, a + n as u32)
            }
            none => none,
        };
        spans[field::REGION] = b.span(rec.aws_region.as_str().unwrap_or(""));
        spans[field::ERROR_CODE] = b.opt(rec.error_code.as_str().filter(|s| !s.is_empty()));
        spans[field::EVENT_TYPE] = b.span(rec.event_type.as_str().unwrap_or(""));
        spans[field::RECIPIENT_ACCOUNT] = b.span(rec.recipient_account_id.as_str().unwrap_or(""));
        let (src, raw_start) = match shared {
            Some((buf, start)) => (buf.clone(), start),
            None => (Arc::new(t.to_string()), 0),
        };
        Ok(Event {
            time_ms,
            source_addr,
            ua_family,
            read_only,
            kind,
            mfa,
            console_session,
            src,
            raw_start,
            raw_len: t.len() as u32,
            extra: b.extra.into_boxed_str(),
            spans,
            subs,
            ui_range: OnceLock::new(),
            issuer_type,
            trees: OnceLock::new(),
            prematch: None,
        })
    }

    #[inline]
    fn span_str(&self, Span(a, b): Span) -> &str {
        let (a, b) = (a as usize, b as usize);
        let r = self.raw_len as usize;
        if b <= a {
            ""
        } else if a >= r {
            &self.extra[a - r..b - r]
        } else {
            &self.src[self.raw_start + a..self.raw_start + b]
        }
    }

    #[inline]
    fn field(&self, f: usize) -> &str {
        let s = self.spans[f];
        if s.0 == u32::MAX {
            ""
        } else {
            self.span_str(s)
        }
    }

    #[inline]
    fn field_opt(&self, f: usize) -> Option<&str> {
        let s = self.spans[f];
        (s.0 != u32::MAX).then(|| self.span_str(s))
    }

    /// The record text as received, for Sigma field access and keyword search.
    pub fn raw(&self) -> &str {
        &self.src[self.raw_start..self.raw_start + self.raw_len as usize]
    }
    /// `eventID` (empty when missing).
    pub fn event_id(&self) -> &str {
        self.field(field::EVENT_ID)
    }
    /// `eventName`.
    pub fn event_name(&self) -> &str {
        self.field(field::EVENT_NAME)
    }
    /// `eventSource` (`iam.amazonaws.com`).
    pub fn event_source(&self) -> &str {
        self.field(field::EVENT_SOURCE)
    }
    /// `awsRegion`.
    pub fn region(&self) -> &str {
        self.field(field::REGION)
    }
    /// `sourceIPAddress` as logged: an IP, a service name or `AWS Internal`.
    pub fn source_ip(&self) -> &str {
        self.field(field::SOURCE_IP)
    }
    /// `userAgent`.
    pub fn user_agent(&self) -> &str {
        self.field(field::USER_AGENT)
    }
    /// `errorCode` when the call failed.
    pub fn error_code(&self) -> Option<&str> {
        self.field_opt(field::ERROR_CODE)
    }
    /// `eventType` (`AwsApiCall`, `AwsConsoleSignIn`…).
    pub fn event_type(&self) -> &str {
        self.field(field::EVENT_TYPE)
    }
    /// `recipientAccountId`.
    pub fn recipient_account(&self) -> &str {
        self.field(field::RECIPIENT_ACCOUNT)
    }
    /// The grouping key of the identity ([`Identity::principal`]).
    pub fn principal(&self) -> &str {
        self.field(field::PRINCIPAL)
    }
    /// `userIdentity.accessKeyId` ([`Identity::access_key_id`]).
    pub fn access_key_id(&self) -> Option<&str> {
        self.field_opt(field::ACCESS_KEY_ID)
    }
    /// Account id of the principal ([`Identity::account_id`]).
    pub fn account_id(&self) -> Option<&str> {
        self.field_opt(field::ACCOUNT_ID)
    }
    /// `userIdentity.arn` ([`Identity::arn`]).
    pub fn arn(&self) -> Option<&str> {
        self.field_opt(field::ARN)
    }
    /// Principal type ([`Identity::kind`]).
    pub fn identity_kind(&self) -> Option<IdentityKind> {
        self.kind
    }
    /// The normalised identity behind the event (all of its fields; the accessors
    /// above read one).
    pub fn identity(&self) -> Identity<'_> {
        Identity {
            kind: self.kind,
            principal: self.field(field::PRINCIPAL),
            arn: self.field_opt(field::ARN),
            access_key_id: self.field_opt(field::ACCESS_KEY_ID),
            account_id: self.field_opt(field::ACCOUNT_ID),
            session_name: self.field_opt(field::SESSION_NAME),
            issuer: self.field_opt(field::ISSUER),
            mfa: self.mfa,
            console_session: self.console_session,
            invoked_by: self.field_opt(field::INVOKED_BY),
        }
    }

    /// Byte range in `raw` of top-level member `i` of [`SUBTREES`] (`(0, 0)` if absent).
    fn sub_range(&self, i: usize) -> (u32, u32) {
        if i != 3 {
            return self.subs[i];
        }
        *self.ui_range.get_or_init(|| {
            // Known top-level members are unique (the typed parse rejects repeats).
            raw_member(self.raw(), SUBTREES[3]).map_or((0, 0), |v| {
                let start = v.as_ptr() as usize - self.raw().as_ptr() as usize;
                (start as u32, (start + v.len()) as u32)
            })
        })
    }

    /// `userIdentity.sessionContext.sessionIssuer.type` when it is a plain string.
    pub(crate) fn issuer_type(&self) -> Option<&str> {
        let (a, b) = self.issuer_type;
        (a != b).then(|| &self.raw()[a as usize..b as usize])
    }

    /// The service prefix of `eventSource` (`iam` for `iam.amazonaws.com`).
    pub fn service(&self) -> &str {
        self.field(field::SERVICE)
    }

    /// Whether the call was denied (AccessDenied, UnauthorizedOperation, …).
    pub fn access_denied(&self) -> bool {
        self.error_code().is_some_and(|c| {
            c.contains("AccessDenied")
                || c.contains("Unauthorized")
                || c.contains("Forbidden")
                || c == "AuthFailure"
        })
    }

    fn trees(&self) -> &Trees {
        self.trees.get_or_init(Box::default)
    }

    /// The whole record as a JSON value (parsed on first use, then cached).
    pub fn json(&self) -> &Value {
        self.trees()
            .whole
            .get_or_init(|| serde_json::from_str(self.raw()).unwrap_or(Value::Null))
    }

    /// A nested value by dotted path (`requestParameters.userName`), from the raw record.
    /// Paths under the members in [`SUBTREES`] parse only that member (once per event).
    pub fn lookup(&self, path: &str) -> Option<&Value> {
        let (first, rest) = match path.split_once('.') {
            Some((f, r)) => (f, Some(r)),
            None => (path, None),
        };
        let mut v = match SUBTREES.iter().position(|s| *s == first) {
            Some(i) => {
                let (a, b) = self.sub_range(i);
                if a == b {
                    return None;
                }
                let sub = self.trees().subs[i].get_or_init(|| {
                    serde_json::from_str(&self.raw()[a as usize..b as usize]).unwrap_or(Value::Null)
                });
                match rest {
                    None => return Some(sub),
                    Some(_) => sub,
                }
            }
            None => self.json().get(first)?,
        };
        let Some(rest) = rest else { return Some(v) };
        for part in rest.split('.') {
            v = match v {
                Value::Object(m) => m.get(part)?,
                _ => return None,
            };
        }
        Some(v)
    }

    /// A nested string by dotted path. Strings without escapes are borrowed straight
    /// from the record text (no parsing); others go through [`Event::lookup`].
    pub fn lookup_str(&self, path: &str) -> Option<&str> {
        let raw = self.lookup_raw(path)?;
        let b = raw.as_bytes();
        if b.first() != Some(&b'"') {
            return None;
        }
        let inner = &raw[1..raw.len() - 1];
        if !inner.as_bytes().contains(&b'\\') {
            return Some(inner);
        }
        self.lookup(path).and_then(Value::as_str)
    }

    /// The JSON text of the value at a dotted path, found by scanning the record text
    /// without building a JSON tree. For an object with a repeated member the last one
    /// wins, as in [`Event::lookup`].
    pub fn lookup_raw(&self, path: &str) -> Option<&str> {
        let (first, rest) = match path.split_once('.') {
            Some((f, r)) => (f, Some(r)),
            None => (path, None),
        };
        let mut v: &str = match SUBTREES.iter().position(|s| *s == first) {
            Some(i) => {
                let (a, b) = self.sub_range(i);
                if a == b {
                    return None;
                }
                &self.raw()[a as usize..b as usize]
            }
            None => raw_member(self.raw(), first)?,
        };
        if let Some(rest) = rest {
            for part in rest.split('.') {
                v = raw_member(v, part)?;
            }
        }
        Some(v)
    }

    /// Whether this event is human use: a console sign-in or console session, a
    /// browser, or an MFA-authenticated session.
    pub fn human_use(&self) -> bool {
        if self.event_type() == "AwsConsoleSignIn" || self.console_session || self.mfa {
            return true;
        }
        matches!(self.ua_family, UaFamily::Browser | UaFamily::Console)
    }
}

/// The JSON text of member `key` of the object whose text is `obj` (`None` when `obj`
/// is not an object or has no such member; the last of repeated members wins).
/// `obj` must be valid JSON (records are validated when parsed).
pub fn raw_member<'a>(obj: &'a str, key: &str) -> Option<&'a str> {
    let b = obj.as_bytes();
    let ws = |mut i: usize| {
        while i < b.len() && matches!(b[i], b' ' | b'\n' | b'\r' | b'\t') {
            i += 1;
        }
        i
    };
    let mut i = ws(0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = ws(i + 1);
    let mut found = None;
    while b.get(i) == Some(&b'"') {
        let kend = crate::json::string_end(b, i).ok()?;
        let kraw = &obj[i + 1..kend - 1];
        let hit = if kraw.as_bytes().contains(&b'\\') {
            serde_json::from_str::<String>(&obj[i..kend]).is_ok_and(|k| k == key)
        } else {
            kraw == key
        };
        i = ws(kend);
        if b.get(i) != Some(&b':') {
            return found;
        }
        i = ws(i + 1);
        let vend = crate::json::value_end(b, i).ok()?;
        if hit {
            found = Some(&obj[i..vend]);
        }
        i = ws(vend);
        if b.get(i) == Some(&b',') {
            i = ws(i + 1);
        }
    }
    found
}

/// [`UaFamily::classify`] through a per-thread cache (user agents repeat heavily).
fn classify_cached(ua: &str) -> UaFamily {
    thread_local! {
        static CACHE: std::cell::RefCell<foldhash::HashMap<Box<str>, UaFamily>> =
            Default::default();
    }
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if let Some(f) = c.get(ua) {
            return *f;
        }
        let f = UaFamily::classify(ua);
        if c.len() >= 4096 {
            c.clear();
        }
        c.insert(Box::from(ua), f);
        f
    })
}

/// Parses a `sourceIPAddress`: a strict IPv4/IPv6 address (values such as
/// `255.090.254.5` with leading zeros are rejected as invalid, as are service names).
pub fn parse_ip(s: &str) -> Option<IpAddr> {
    let b = s.as_bytes();
    if b.is_empty() || !(b[0].is_ascii_hexdigit() || b[0] == b':') {
        return None;
    }
    s.parse().ok()
}

/// Collects an event's field strings: ranges of the record text `t`, or strings
/// appended after it (decoded escapes, derived values).
struct TextBuilder<'t> {
    t: &'t str,
    extra: String,
}

impl TextBuilder<'_> {
    fn span(&mut self, s: &str) -> Span {
        let base = self.t.as_ptr() as usize;
        let p = s.as_ptr() as usize;
        if p >= base && p + s.len() <= base + self.t.len() {
            return Span((p - base) as u32, (p - base + s.len()) as u32);
        }
        if s.is_empty() {
            return Span::EMPTY;
        }
        let start = self.t.len() + self.extra.len();
        self.extra.push_str(s);
        Span(start as u32, (start + s.len()) as u32)
    }

    fn opt(&mut self, s: Option<&str>) -> Span {
        s.map_or(Span::NONE, |s| self.span(s))
    }
}

/// Normalises `userIdentity` into the identity spans of `spans`; returns the principal
/// type and the MFA and console-session flags.
fn normalise_identity(
    ui: Option<&UserIdentitySyntax<'_>>,
    b: &mut TextBuilder<'_>,
    spans: &mut [Span; field::COUNT],
) -> (Option<IdentityKind>, bool, bool) {
    let Some(ui) = ui else {
        spans[field::PRINCIPAL] = b.span("unknown");
        return (None, false, false);
    };
    let kind = ui.kind.as_str().map(IdentityKind::from_type);
    let arn = ui.arn.as_str().filter(|s| !s.is_empty());
    let sc = ui.session_context.0.as_ref();
    let issuer = sc
        .and_then(|c| c.session_issuer.0.as_ref())
        .and_then(|i| i.arn.as_str())
        .filter(|s| !s.is_empty());
    let mfa = sc
        .and_then(|c| c.attributes.0.as_ref())
        .is_some_and(|a| a.mfa_authenticated.as_str() == Some("true"));
    let mut session_name = None;
    let derived: String;
    let principal: &str = match kind {
        Some(IdentityKind::AssumedRole) => {
            let from_arn = arn.and_then(session_arn_parts);
            if let Some((.., s)) = from_arn {
                session_name = Some(s);
            }
            match (issuer, from_arn) {
                (Some(i), _) => i,
                (None, Some((partition, account, role, _))) => {
                    derived = format!("arn:{partition}:iam::{account}:role/{role}");
                    &derived
                }
                (None, None) => match arn {
                    Some(a) => a,
                    None => {
                        derived = principal_fallback(ui);
                        &derived
                    }
                },
            }
        }
        Some(IdentityKind::FederatedUser) => {
            session_name = arn
                .and_then(|a| a.rsplit_once("federated-user/"))
                .map(|(_, n)| n);
            match arn {
                Some(a) => a,
                None => {
                    derived = principal_fallback(ui);
                    &derived
                }
            }
        }
        Some(IdentityKind::AwsService) => {
            derived = format!("service:{}", ui.invoked_by.as_str().unwrap_or("unknown"));
            &derived
        }
        Some(IdentityKind::AwsAccount) => {
            derived = format!("account:{}", ui.account_id.as_str().unwrap_or("unknown"));
            &derived
        }
        _ => match arn {
            Some(a) => a,
            None => {
                derived = principal_fallback(ui);
                &derived
            }
        },
    };
    spans[field::PRINCIPAL] = b.span(principal);
    spans[field::ARN] = b.opt(arn);
    spans[field::ACCESS_KEY_ID] = b.opt(ui.access_key_id.as_str().filter(|s| !s.is_empty()));
    spans[field::ACCOUNT_ID] = b.opt(ui.account_id.as_str());
    spans[field::SESSION_NAME] = b.opt(session_name);
    spans[field::ISSUER] = b.opt(issuer);
    spans[field::INVOKED_BY] = b.opt(ui.invoked_by.as_str());
    let console = ui.session_credential_from_console.as_str() == Some("true");
    (kind, mfa, console)
}

fn principal_fallback(ui: &UserIdentitySyntax<'_>) -> String {
    if let Some(p) = ui.principal_id.as_str().filter(|s| !s.is_empty()) {
        return format!("principal:{p}");
    }
    if let Some(u) = ui.user_name.as_str().filter(|s| !s.is_empty()) {
        return format!("user:{u}");
    }
    "unknown".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agent_data_is_lowercase_and_names_every_family() {
        let rules = &*UA_RULES;
        for r in rules {
            let patterns: Vec<&String> = r
                .equals
                .iter()
                .chain(&r.starts_with)
                .chain(&r.ends_with)
                .chain(&r.contains)
                .collect();
            assert!(!patterns.is_empty(), "{r:?} matches nothing");
            for p in patterns.into_iter().chain(&r.and_contains) {
                assert!(!p.is_empty() && *p == p.to_ascii_lowercase(), "{p:?}");
            }
        }
        for f in [
            UaFamily::Browser,
            UaFamily::Console,
            UaFamily::AwsCli,
            UaFamily::AwsCliDesktop,
            UaFamily::SdkPython,
            UaFamily::SdkGo,
            UaFamily::SdkJava,
            UaFamily::SdkJs,
            UaFamily::SdkOther,
            UaFamily::Iac,
            UaFamily::AwsService,
            UaFamily::HttpTool,
            UaFamily::DesktopTool,
            UaFamily::AttackTool,
        ] {
            assert!(rules.iter().any(|r| r.family == f), "no rule for {f:?}");
        }
        assert_eq!(
            UaFamily::classify("aws-cli/2.15.0 Python/3.11 Darwin/23.1.0"),
            UaFamily::AwsCliDesktop
        );
        assert_eq!(
            UaFamily::classify("aws-cli/2.15.0 Python/3.11 Linux/6.1"),
            UaFamily::AwsCli
        );
        assert_eq!(UaFamily::classify("AWS Internal"), UaFamily::Console);
        assert_eq!(UaFamily::classify("Pacu/1.5"), UaFamily::AttackTool);
        assert_eq!(UaFamily::classify("something/1.0"), UaFamily::Other);
        assert_eq!(UaFamily::classify(""), UaFamily::Empty);
    }

    #[test]
    fn normalises_assumed_role_to_issuer_role() {
        let e = Event::parse(br#"{"eventTime":"2024-08-01T11:30:23Z","eventName":"RunInstances","sourceIPAddress":"06.237.252.245",
            "userIdentity":{"type":"AssumedRole","arn":"arn:aws:sts::9:assumed-role/r1/sess","accessKeyId":"ASIAX",
            "sessionContext":{"attributes":{"mfaAuthenticated":"false"},"sessionIssuer":{"arn":"arn:aws:iam::9:role/path/r1"}}}}"#).unwrap();
        assert_eq!(e.principal(), "arn:aws:iam::9:role/path/r1");
        assert_eq!(e.identity().session_name, Some("sess"));
        assert!(e.source_addr.is_none(), "leading-zero IPv4 is invalid");
        assert!(!e.identity().mfa);
    }

    #[test]
    fn role_without_issuer_falls_back_to_session_arn() {
        let e = Event::parse(br#"{"@timestamp":"2020-09-14T00:44:23.000Z","userIdentity":{"type":"AssumedRole",
            "arn":"arn:aws:sts::1:assumed-role/web/i-0317f6c6b66ae9c40","sessionContext":{"sessionIssuer":{}}}}"#).unwrap();
        assert_eq!(e.principal(), "arn:aws:iam::1:role/web");
        assert!(e.identity().ec2_instance_session());
    }

    #[test]
    fn lenient_on_wrong_types_and_missing_fields() {
        let e = Event::parse(br#"{"eventTime":"2024-01-01T00:00:00Z","userAgent":42,"readOnly":"true","userIdentity":"x"}"#).unwrap();
        assert_eq!(e.user_agent(), "42");
        assert_eq!(e.read_only, Some(true));
        assert_eq!(e.principal(), "unknown");
        assert_eq!(Event::parse(b"[1]").unwrap_err(), RecordError::NotAnObject);
        assert_eq!(
            Event::parse(br#"{"eventName":"x"}"#).unwrap_err(),
            RecordError::MissingTime
        );
        assert!(matches!(
            Event::parse(br#"{"eventName":}"#),
            Err(RecordError::InvalidJson(_))
        ));
    }

    #[test]
    fn escaped_and_derived_fields_are_stored_after_the_record_text() {
        let rec = r#"{"eventTime":"2024-01-01T00:00:00Z","eventName":"Get\u004fbject","errorCode":403,"eventSource":"s\u0033.amazonaws.com",
            "awsRegion":"eu-west-1","sourceIPAddress":"203.0.113.9","eventID":"id\"1",
            "userIdentity":{"type":"AssumedRole","arn":"arn:aws:sts::1:assumed-role/r\u0031/s\u00e9",
            "accountId":"1","accessKeyId":"","invokedBy":"ec2.amazonaws.com"}}"#;
        let e = Event::parse_str(rec).unwrap();
        assert_eq!(e.raw(), rec, "the record text is kept as received");
        assert_eq!(e.event_name(), "GetObject");
        assert_eq!(e.event_source(), "s3.amazonaws.com");
        assert_eq!(e.service(), "s3");
        assert_eq!(e.error_code(), Some("403"));
        assert_eq!(e.event_id(), "id\"1");
        assert_eq!(e.region(), "eu-west-1");
        assert_eq!(e.source_ip(), "203.0.113.9");
        assert_eq!(e.source_addr, "203.0.113.9".parse().ok());
        let id = e.identity();
        assert_eq!(id.principal, "arn:aws:iam::1:role/r1");
        assert_eq!(id.arn, Some("arn:aws:sts::1:assumed-role/r1/sé"));
        assert_eq!(id.session_name, Some("sé"));
        assert_eq!(id.account_id, Some("1"));
        assert_eq!(id.access_key_id, None, "an empty key id is absent");
        assert_eq!(id.invoked_by, Some("ec2.amazonaws.com"));
        assert_eq!(id.issuer, None);
        assert_eq!(e.event_type(), "");
        assert_eq!(e.recipient_account(), "");
        // Lookups into the record still see the raw text only.
        assert_eq!(e.lookup_str("awsRegion"), Some("eu-west-1"));
        assert_eq!(e.lookup_str("eventName"), Some("GetObject"));
        // An escaped source whose service part is empty (a decoded leading dot).
        let odd = Event::parse_str(
            r#"{"eventTime":"2024-01-01T00:00:00Z","eventSource":"\u002eamazonaws.com"}"#,
        )
        .unwrap();
        assert_eq!(odd.event_source(), ".amazonaws.com");
        assert_eq!(odd.service(), "");
        let c = e.clone();
        assert_eq!(c.identity(), e.identity());
        assert_eq!(c.raw(), e.raw());
    }

    #[test]
    fn raw_lookups_agree_with_parsed_lookups() {
        let rec = r#"{"eventTime":"2024-01-01T00:00:00Z","x":{"a":1,"k\u0065y":"v1","key":"v2","n":{"m":[1,2]}},
            "requestParameters":{"bucketName":"b","esc":"a\"b","num":1.5e3,"t":true,"z":null},
            "userIdentity":{"type":"AssumedRole","arn":"arn:aws:sts::1:assumed-role/r/s",
              "sessionContext":{"sessionIssuer":{"type":"Role","arn":"arn:aws:iam::1:role/r"}}}}"#;
        let e = Event::parse_str(rec).unwrap();
        for path in [
            "x.key",
            "x.n.m",
            "x.a",
            "requestParameters.bucketName",
            "requestParameters.esc",
            "requestParameters.num",
            "requestParameters.t",
            "requestParameters.z",
            "requestParameters.missing",
            "userIdentity.sessionContext.sessionIssuer.arn",
            "eventTime",
        ] {
            let raw = e
                .lookup_raw(path)
                .map(|r| serde_json::from_str::<Value>(r).unwrap());
            assert_eq!(raw.as_ref(), e.lookup(path), "{path}");
            assert_eq!(
                e.lookup_str(path),
                e.lookup(path).and_then(Value::as_str),
                "{path}"
            );
        }
        // The last of repeated members wins, escaped keys are compared unescaped.
        assert_eq!(e.lookup_str("x.key"), Some("v2"));
        assert_eq!(e.issuer_type(), Some("Role"));
        let (parsed, len) = Event::parse_prefix(format!("{rec}, {{}}").as_bytes()).unwrap();
        assert_eq!(len, rec.len());
        assert_eq!(parsed.unwrap().raw(), e.raw());
    }

    #[test]
    fn nested_identity_objects_are_lenient() {
        // A repeated member makes that object missing (not the whole record).
        let e = Event::parse(br#"{"eventTime":"2024-01-01T00:00:00Z","userIdentity":{"type":"AssumedRole",
            "arn":"arn:aws:sts::9:assumed-role/r1/s","sessionContext":{"sessionIssuer":{"arn":"a","arn":"b"},
            "attributes":{"mfaAuthenticated":"true"}}}}"#).unwrap();
        assert_eq!(e.principal(), "arn:aws:iam::9:role/r1");
        assert!(e.identity().mfa);
        let e = Event::parse(br#"{"eventTime":"2024-01-01T00:00:00Z","userIdentity":{"type":"IAMUser","type":"Root"}}"#).unwrap();
        assert_eq!(e.principal(), "unknown");
        let e = Event::parse(
            br#"{"eventTime":"2024-01-01T00:00:00Z","userIdentity":{"type":"IAMUser",
            "arn":"arn:aws:iam::1:user/u","sessionContext":[1,{"a":2}]}}"#,
        )
        .unwrap();
        assert_eq!(e.principal(), "arn:aws:iam::1:user/u");
        assert!(
            Event::parse(
                br#"{"eventTime":"2024-01-01T00:00:00Z","eventName":"a","eventName":"b"}"#
            )
            .is_err()
        );
    }

    #[test]
    fn user_agent_families() {
        assert_eq!(
            UaFamily::classify("stratus-red-team_5c59eb79"),
            UaFamily::AttackTool
        );
        assert_eq!(
            UaFamily::classify("[aws-cli/1.18.136 Python/3.8.5 Darwin/19.5.0 botocore/1.17.59]"),
            UaFamily::AwsCliDesktop
        );
        assert_eq!(
            UaFamily::classify("aws-cli/2.15.0 Python/3.11 Linux/5.10 exe/x86_64.amzn.2"),
            UaFamily::AwsCli
        );
        assert_eq!(
            UaFamily::classify("Boto3/1.34.0 md/Botocore#1.34.0 ua/2.0 os/linux"),
            UaFamily::SdkPython
        );
        assert_eq!(
            UaFamily::classify("console.ec2.amazonaws.com"),
            UaFamily::Console
        );
        assert_eq!(
            UaFamily::classify("Mozilla/5.0 (X11; Linux x86_64)"),
            UaFamily::Browser
        );
        assert_eq!(UaFamily::classify("curl/8.4.0"), UaFamily::HttpTool);
        assert_eq!(
            UaFamily::classify("APN/1.0 HashiCorp/1.0 Terraform/1.6.0"),
            UaFamily::Iac
        );
        assert!(UaFamily::HttpTool.interactive() && !UaFamily::SdkGo.interactive());
    }
}

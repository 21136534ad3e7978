//! The record model: one parsed event with its normalised identity. CloudTrail is
//! the native shape; Google Cloud, Entra ID, Microsoft 365 and Azure Activity records
//! fill the same fields (`cloud`), tagged with their [`Provider`].
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

mod cloud;
mod identity;
mod lookup;
mod parse;
mod useragent;

pub use cloud::{
    Provider, credential_operation, gcp_key_id, member, modified_properties, parameters,
};
pub use identity::{Identity, IdentityKind, role_from_session_arn};
pub use lookup::{for_each_member, parse_ip, raw_member};
pub use useragent::UaFamily;

// The submodules read one another's items through these (each opens with
// `use super::*`): identity and useragent → parse → lookup.
#[allow(unused_imports)]
use {cloud::*, identity::*, lookup::*, parse::*, useragent::*};

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
    /// The cloud that wrote the record.
    provider: Provider,
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
            provider: self.provider,
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
    /// A Google Cloud Logging entry of another log than the audit logs (an
    /// application's `jsonPayload` or `textPayload`): its log name.
    NotAuditLog(String),
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::InvalidJson(m) => write!(f, "invalid JSON record: {m}"),
            RecordError::NotAnObject => f.write_str("record is not a JSON object"),
            RecordError::MissingTime => f.write_str(
                "record has no parseable eventTime or @timestamp and is no known cloud log record",
            ),
            RecordError::NotAuditLog(log) => write!(
                f,
                "a Cloud Logging entry of `{log}`, which is not an audit log"
            ),
        }
    }
}

impl Event {
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

    /// Whether this event is human use: a console sign-in or console session, a
    /// browser, or an MFA-authenticated session.
    pub fn human_use(&self) -> bool {
        // `console_session` is also set for the people of the other clouds (Entra and
        // Microsoft 365 users signing in interactively, Google accounts that are not
        // service accounts).
        if self.event_type() == "AwsConsoleSignIn" || self.console_session || self.mfa {
            return true;
        }
        matches!(self.ua_family, UaFamily::Browser | UaFamily::Console)
    }
}

/// The partition (of `partitions`) of a principal or an access key id: FNV-1a 64
/// of its bytes, modulo the partitions. Stable across versions and machines (a
/// run's routed events and its checkpoints depend on it).
pub fn partition_of(key: &str, partitions: u32) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % u64::from(partitions.max(1))) as u32
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

//! Parsing a record into an [`Event`]: the lenient syntax structs serde fills from the
//! record bytes (borrowing where there are no escapes), the identity normalisation, and
//! the text builder that stores every field as a range of the record.

use super::*;

/// A string field that tolerates other JSON types (numbers and booleans become text;
/// objects, arrays and null become `None`).
#[derive(Default)]
pub(super) struct Lenient<'a>(pub(super) Option<Cow<'a, str>>);

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
    pub(super) fn as_str(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

/// A nested object that tolerates other JSON types (treated as missing), parsed in
/// the same pass as its parent. An object that repeats one of its known members is
/// treated as missing too (as a derived `Deserialize` would reject it).
pub(super) struct LenientObj<T>(Option<T>);

/// The known members of a lenient nested object.
pub(super) trait Members<'de>: Default {
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
pub(super) struct IssuerSyntax<'a> {
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
pub(super) struct PlainStr<'a>(Option<&'a str>);

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
pub(super) struct AttributesSyntax<'a> {
    mfa_authenticated: Lenient<'a>,
}
members!(AttributesSyntax {
    mfa_authenticated = "mfaAuthenticated"
});

#[derive(Default)]
pub(super) struct SessionContextSyntax<'a> {
    session_issuer: LenientObj<IssuerSyntax<'a>>,
    attributes: LenientObj<AttributesSyntax<'a>>,
}
members!(SessionContextSyntax {
    session_issuer = "sessionIssuer",
    attributes = "attributes",
});

#[derive(Default)]
pub(super) struct UserIdentitySyntax<'a> {
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
pub(super) struct RecordSyntax<'a> {
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
    pub(super) fn from_syntax(
        rec: RecordSyntax<'_>,
        t: &str,
        shared: Option<(&Arc<String>, usize)>,
    ) -> Result<Event, RecordError> {
        Self::from_syntax_at(rec, t, shared, 0)
    }

    /// [`Event::from_syntax`] for a record inside `depth` Pub/Sub envelopes.
    pub(super) fn from_syntax_at(
        rec: RecordSyntax<'_>,
        t: &str,
        shared: Option<(&Arc<String>, usize)>,
        depth: u8,
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
            // Not CloudTrail: a record of another cloud, or no record at all.
            return Self::parse_cloud(t, shared, depth);
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
            provider: Provider::Aws,
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
}

/// Collects an event's field strings: ranges of the record text `t`, or strings
/// appended after it (decoded escapes, derived values).
pub(super) struct TextBuilder<'t> {
    pub(super) t: &'t str,
    pub(super) extra: String,
}

impl TextBuilder<'_> {
    pub(super) fn span(&mut self, s: &str) -> Span {
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

    pub(super) fn opt(&mut self, s: Option<&str>) -> Span {
        s.map_or(Span::NONE, |s| self.span(s))
    }
}

/// Normalises `userIdentity` into the identity spans of `spans`; returns the principal
/// type and the MFA and console-session flags.
pub(super) fn normalise_identity(
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

pub(super) fn principal_fallback(ui: &UserIdentitySyntax<'_>) -> String {
    if let Some(p) = ui.principal_id.as_str().filter(|s| !s.is_empty()) {
        return format!("principal:{p}");
    }
    if let Some(u) = ui.user_name.as_str().filter(|s| !s.is_empty()) {
        return format!("user:{u}");
    }
    "unknown".to_string()
}

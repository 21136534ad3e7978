//! Compiled Sigma field conditions: modifiers, wildcards, null, lists and `|all`, and
//! the field-access layer that reads dotted paths out of a CloudTrail [`Event`].

use std::borrow::Cow;
use std::net::IpAddr;

use base64::Engine as _;
use regex::Regex;
use serde_json::Value;
use serde_yaml_ng::Value as Yaml;

use crate::event::{Event, IdentityKind, Provider};
use crate::ipintel::parse_cidr;

/// A value read from an event for matching.
#[derive(Debug)]
pub enum FieldVal<'a> {
    /// The path does not exist.
    Missing,
    /// JSON null.
    Null,
    /// A string (or a scalar rendered as text).
    Str(Cow<'a, str>),
    /// A JSON array or object.
    Json(&'a Value),
    /// Several values, read through arrays on the way (the other clouds' paths).
    Many(Vec<&'a Value>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fast {
    EventName,
    EventSource,
    Region,
    SourceIp,
    UserAgent,
    ErrorCode,
    EventType,
    EventId,
    Recipient,
    IdentityType,
    IdentityArn,
    AccessKeyId,
    IssuerType,
}

/// A dotted field path, with a fast path for the fields every event carries.
#[derive(Debug, Clone)]
pub struct FieldPath {
    /// The path as written in the rule.
    pub path: String,
    fast: Option<Fast>,
}

impl FieldPath {
    /// Compiles a path.
    pub fn new(path: &str) -> Self {
        let fast = match path {
            "eventName" => Some(Fast::EventName),
            "eventSource" => Some(Fast::EventSource),
            "awsRegion" => Some(Fast::Region),
            "sourceIPAddress" => Some(Fast::SourceIp),
            "userAgent" => Some(Fast::UserAgent),
            "errorCode" => Some(Fast::ErrorCode),
            "eventType" => Some(Fast::EventType),
            "eventID" => Some(Fast::EventId),
            "recipientAccountId" => Some(Fast::Recipient),
            "userIdentity.type" => Some(Fast::IdentityType),
            "userIdentity.arn" => Some(Fast::IdentityArn),
            "userIdentity.accessKeyId" => Some(Fast::AccessKeyId),
            "userIdentity.sessionContext.sessionIssuer.type" => Some(Fast::IssuerType),
            _ => None,
        };
        FieldPath {
            path: path.to_string(),
            fast,
        }
    }

    /// Reads the field from an event.
    pub fn get<'a>(&self, ev: &'a Event) -> FieldVal<'a> {
        let s = |v: &'a str| FieldVal::Str(Cow::Borrowed(v));
        let opt =
            |v: Option<&'a str>| v.map_or(FieldVal::Missing, |v| FieldVal::Str(Cow::Borrowed(v)));
        if ev.provider() != Provider::Aws {
            return super::fields::get(ev, &self.path);
        }
        match self.fast {
            // Empty typed fields may be absent in the record: consult it then.
            Some(Fast::EventName) if !ev.event_name().is_empty() => s(ev.event_name()),
            Some(Fast::EventSource) if !ev.event_source().is_empty() => s(ev.event_source()),
            Some(Fast::Region) if !ev.region().is_empty() => s(ev.region()),
            Some(Fast::SourceIp) if !ev.source_ip().is_empty() => s(ev.source_ip()),
            Some(Fast::UserAgent) if !ev.user_agent().is_empty() => s(ev.user_agent()),
            Some(Fast::ErrorCode) if ev.error_code().is_some() => opt(ev.error_code()),
            Some(Fast::EventType) if !ev.event_type().is_empty() => s(ev.event_type()),
            Some(Fast::EventId) if !ev.event_id().is_empty() => s(ev.event_id()),
            Some(Fast::Recipient) if !ev.recipient_account().is_empty() => {
                s(ev.recipient_account())
            }
            Some(Fast::IdentityType)
                if ev
                    .identity_kind()
                    .is_some_and(|k| k != IdentityKind::Unknown) =>
            {
                s(match ev.identity_kind() {
                    Some(IdentityKind::IamUser) => "IAMUser",
                    Some(IdentityKind::AssumedRole) => "AssumedRole",
                    Some(IdentityKind::FederatedUser) => "FederatedUser",
                    Some(IdentityKind::Root) => "Root",
                    Some(IdentityKind::AwsService) => "AWSService",
                    Some(IdentityKind::AwsAccount) => "AWSAccount",
                    Some(IdentityKind::SamlUser) => "SAMLUser",
                    Some(IdentityKind::WebIdentityUser) => "WebIdentityUser",
                    Some(IdentityKind::IdentityCenterUser) => "IdentityCenterUser",
                    _ => "",
                })
            }
            Some(Fast::IdentityArn) if ev.arn().is_some() => opt(ev.arn()),
            Some(Fast::AccessKeyId) if ev.access_key_id().is_some() => opt(ev.access_key_id()),
            Some(Fast::IssuerType) if ev.issuer_type().is_some() => opt(ev.issuer_type()),
            // Typed fields that are absent: the record has no such field either, unless it
            // had a non-string value, which the generic path below renders.
            _ => self.get_raw(ev),
        }
    }

    /// The generic path: scans the record text; only arrays, objects and numbers are
    /// parsed (numbers so that they render as serde_json renders them).
    fn get_raw<'a>(&self, ev: &'a Event) -> FieldVal<'a> {
        let Some(raw) = ev.lookup_raw(&self.path) else {
            return FieldVal::Missing;
        };
        match raw.as_bytes()[0] {
            b'"' => {
                let inner = &raw[1..raw.len() - 1];
                if !inner.as_bytes().contains(&b'\\') {
                    return FieldVal::Str(Cow::Borrowed(inner));
                }
                match serde_json::from_str::<String>(raw) {
                    Ok(s) => FieldVal::Str(Cow::Owned(s)),
                    Err(_) => FieldVal::Missing,
                }
            }
            b'n' => FieldVal::Null,
            b't' => FieldVal::Str(Cow::Borrowed("true")),
            b'f' => FieldVal::Str(Cow::Borrowed("false")),
            _ => match ev.lookup(&self.path) {
                None => FieldVal::Missing,
                Some(Value::Null) => FieldVal::Null,
                Some(Value::String(s)) => FieldVal::Str(Cow::Borrowed(s)),
                Some(Value::Bool(b)) => {
                    FieldVal::Str(Cow::Borrowed(if *b { "true" } else { "false" }))
                }
                Some(Value::Number(n)) => FieldVal::Str(Cow::Owned(n.to_string())),
                Some(v) => FieldVal::Json(v),
            },
        }
    }

    /// The field rendered as a string for grouping (`""` when missing).
    pub fn get_string(&self, ev: &Event) -> String {
        match self.get(ev) {
            FieldVal::Str(s) => s.into_owned(),
            FieldVal::Json(v) => v.to_string(),
            FieldVal::Many(vs) => vs
                .iter()
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    v => v.to_string(),
                })
                .collect::<Vec<_>>()
                .join(","),
            FieldVal::Missing | FieldVal::Null => String::new(),
        }
    }
}

/// Case-insensitive ASCII substring search.
fn contains_ci(h: &str, n: &str) -> bool {
    if n.is_empty() {
        return true;
    }
    let (hb, nb) = (h.as_bytes(), n.as_bytes());
    if nb.len() > hb.len() {
        return false;
    }
    let first = nb[0].to_ascii_lowercase();
    let last_start = hb.len() - nb.len();
    let mut i = 0;
    while i <= last_start {
        if hb[i].to_ascii_lowercase() == first && hb[i..i + nb.len()].eq_ignore_ascii_case(nb) {
            return true;
        }
        i += 1;
    }
    false
}

/// How a literal is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StrOp {
    Exact,
    Contains,
    Starts,
    Ends,
}

/// Comparison for numeric modifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    /// `|gt`
    Gt,
    /// `|gte`
    Gte,
    /// `|lt`
    Lt,
    /// `|lte`
    Lte,
}

/// One compiled value test.
#[derive(Debug, Clone)]
pub enum Matcher {
    /// `null`: the field is missing or null.
    Null,
    /// `|exists: true/false`.
    Exists(bool),
    /// A literal (lowercased unless `cased`).
    Str {
        /// Comparison.
        op: StrOpPub,
        /// The literal.
        lit: String,
        /// Case-sensitive (`|cased`).
        cased: bool,
    },
    /// A wildcard pattern or `|re` regular expression.
    Regex(Regex),
    /// `|cidr`.
    Cidr(IpAddr, IpAddr),
    /// `|gt` and friends.
    Num(Cmp, f64),
    /// `|fieldref`: equal to another field.
    FieldRef(FieldPath),
}

/// Public alias of the literal comparison (exact, contains, startswith, endswith).
pub type StrOpPub = StrOpKind;

/// Literal comparison kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrOpKind {
    /// Whole-value equality.
    Exact,
    /// Substring.
    Contains,
    /// Prefix.
    Starts,
    /// Suffix.
    Ends,
}

impl From<StrOp> for StrOpKind {
    fn from(o: StrOp) -> Self {
        match o {
            StrOp::Exact => Self::Exact,
            StrOp::Contains => Self::Contains,
            StrOp::Starts => Self::Starts,
            StrOp::Ends => Self::Ends,
        }
    }
}

impl Matcher {
    fn test_str(&self, v: &str, ev: &Event) -> bool {
        match self {
            Matcher::Str { op, lit, cased } => {
                if *cased {
                    match op {
                        StrOpKind::Exact => v == lit,
                        StrOpKind::Contains => v.contains(lit.as_str()),
                        StrOpKind::Starts => v.starts_with(lit.as_str()),
                        StrOpKind::Ends => v.ends_with(lit.as_str()),
                    }
                } else if v.is_ascii() && lit.is_ascii() {
                    let (vb, lb) = (v.as_bytes(), lit.as_bytes());
                    match op {
                        StrOpKind::Exact => vb.eq_ignore_ascii_case(lb),
                        StrOpKind::Contains => contains_ci(v, lit),
                        StrOpKind::Starts => {
                            vb.len() >= lb.len() && vb[..lb.len()].eq_ignore_ascii_case(lb)
                        }
                        StrOpKind::Ends => {
                            vb.len() >= lb.len()
                                && vb[vb.len() - lb.len()..].eq_ignore_ascii_case(lb)
                        }
                    }
                } else {
                    let v = v.to_lowercase();
                    match op {
                        StrOpKind::Exact => v == *lit,
                        StrOpKind::Contains => v.contains(lit.as_str()),
                        StrOpKind::Starts => v.starts_with(lit.as_str()),
                        StrOpKind::Ends => v.ends_with(lit.as_str()),
                    }
                }
            }
            Matcher::Regex(r) => r.is_match(v),
            Matcher::Cidr(a, b) => match v.parse::<IpAddr>() {
                Ok(ip) => match (ip, a, b) {
                    (IpAddr::V4(x), IpAddr::V4(a), IpAddr::V4(b)) => (*a..=*b).contains(&x),
                    (IpAddr::V6(x), IpAddr::V6(a), IpAddr::V6(b)) => (*a..=*b).contains(&x),
                    _ => false,
                },
                Err(_) => false,
            },
            Matcher::Num(cmp, n) => match v.trim().parse::<f64>() {
                Ok(x) => match cmp {
                    Cmp::Gt => x > *n,
                    Cmp::Gte => x >= *n,
                    Cmp::Lt => x < *n,
                    Cmp::Lte => x <= *n,
                },
                Err(_) => false,
            },
            Matcher::FieldRef(p) => match p.get(ev) {
                FieldVal::Str(o) => o.eq_ignore_ascii_case(v),
                _ => false,
            },
            Matcher::Null | Matcher::Exists(_) => false,
        }
    }

    /// Whether one scalar of an array satisfies this matcher.
    fn test_item(&self, it: &Value, ev: &Event) -> bool {
        match it {
            Value::String(s) => self.test_str(s, ev),
            Value::Number(n) => self.test_str(&n.to_string(), ev),
            Value::Bool(b) => self.test_str(if *b { "true" } else { "false" }, ev),
            _ => false,
        }
    }

    /// Whether the field value satisfies this matcher.
    pub fn test(&self, fv: &FieldVal<'_>, ev: &Event) -> bool {
        match self {
            Matcher::Null => matches!(fv, FieldVal::Missing | FieldVal::Null),
            Matcher::Exists(want) => !matches!(fv, FieldVal::Missing) == *want,
            _ => match fv {
                FieldVal::Missing | FieldVal::Null => false,
                FieldVal::Str(s) => self.test_str(s, ev),
                // Arrays match when any element matches.
                FieldVal::Json(Value::Array(items)) => {
                    items.iter().any(|it| self.test_item(it, ev))
                }
                FieldVal::Many(items) => items.iter().any(|it| match it {
                    Value::Array(a) => a.iter().any(|x| self.test_item(x, ev)),
                    v => self.test_item(v, ev),
                }),
                FieldVal::Json(_) => false,
            },
        }
    }
}

/// A compiled `field|modifiers: values` entry.
#[derive(Debug, Clone)]
pub struct FieldCond {
    /// The field.
    pub path: FieldPath,
    /// The alternatives (OR, or AND with `|all`).
    pub matchers: Vec<Matcher>,
    /// `|all` given.
    pub all: bool,
}

impl FieldCond {
    /// Evaluates on one event.
    pub fn eval(&self, ev: &Event) -> bool {
        let fv = self.path.get(ev);
        if self.all {
            self.matchers.iter().all(|m| m.test(&fv, ev))
        } else {
            self.matchers.iter().any(|m| m.test(&fv, ev))
        }
    }

    /// The exact, case-insensitive literals this condition requires of its field, when
    /// it is a plain equality list (used to index rules by `eventName`).
    pub fn exact_literals(&self) -> Option<Vec<String>> {
        if self.all {
            return None;
        }
        self.matchers
            .iter()
            .map(|m| match m {
                Matcher::Str {
                    op: StrOpKind::Exact,
                    lit,
                    cased: false,
                } => Some(lit.to_ascii_lowercase()),
                _ => None,
            })
            .collect()
    }
}

/// Splits a Sigma string with wildcards into a matcher. `*` and `?` are wildcards;
/// `\*`, `\?` and `\\` escape them; other backslashes are literal.
fn glob_tokens(s: &str) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut lit = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.peek() {
                Some(&n @ ('*' | '?' | '\\')) => {
                    lit.push(n);
                    chars.next();
                }
                _ => lit.push('\\'),
            },
            '*' | '?' => {
                if !lit.is_empty() {
                    out.push(Tok::Lit(std::mem::take(&mut lit)));
                }
                out.push(if c == '*' { Tok::Star } else { Tok::Any });
            }
            _ => lit.push(c),
        }
    }
    if !lit.is_empty() {
        out.push(Tok::Lit(lit));
    }
    out
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Lit(String),
    Star,
    Any,
}

fn literal_matcher(op: StrOp, lit: String, cased: bool) -> Matcher {
    let lit = if cased { lit } else { lit.to_lowercase() };
    Matcher::Str {
        op: op.into(),
        lit,
        cased,
    }
}

/// Builds a matcher for a string value with an implied comparison.
fn string_matcher(value: &str, op: StrOp, cased: bool) -> Result<Matcher, String> {
    let mut toks = glob_tokens(value);
    match op {
        StrOp::Contains => {
            toks.insert(0, Tok::Star);
            toks.push(Tok::Star);
        }
        StrOp::Starts => toks.push(Tok::Star),
        StrOp::Ends => toks.insert(0, Tok::Star),
        StrOp::Exact => {}
    }
    // Collapse repeated stars.
    toks.dedup_by(|a, b| *a == Tok::Star && *b == Tok::Star);
    let lits: Vec<&String> = toks
        .iter()
        .filter_map(|t| if let Tok::Lit(l) = t { Some(l) } else { None })
        .collect();
    let has_any = toks.contains(&Tok::Any);
    if !has_any && lits.len() <= 1 {
        let lead = toks.first() == Some(&Tok::Star);
        let trail = toks.last() == Some(&Tok::Star) && toks.len() > 1
            || (toks.len() == 1 && toks[0] == Tok::Star);
        let lit = lits.first().map(|s| s.to_string()).unwrap_or_default();
        if toks.len() == 1 && toks[0] == Tok::Star {
            return Ok(Matcher::Regex(Regex::new("(?s).*").expect("valid")));
        }
        let op = match (lead, trail) {
            (true, true) => StrOp::Contains,
            (true, false) => StrOp::Ends,
            (false, true) => StrOp::Starts,
            (false, false) => StrOp::Exact,
        };
        return Ok(literal_matcher(op, lit, cased));
    }
    let mut re = String::from(if cased { "(?s)^" } else { "(?si)^" });
    for t in &toks {
        match t {
            Tok::Lit(l) => re.push_str(&regex::escape(l)),
            Tok::Star => re.push_str(".*"),
            Tok::Any => re.push('.'),
        }
    }
    re.push('$');
    Regex::new(&re)
        .map(Matcher::Regex)
        .map_err(|e| e.to_string())
}

fn yaml_scalar(v: &Yaml) -> Option<String> {
    match v {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn utf16(s: &str, be: bool) -> Vec<u8> {
    s.encode_utf16()
        .flat_map(|u| if be { u.to_be_bytes() } else { u.to_le_bytes() })
        .collect()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The three base64 renderings of `bytes` at offsets 0, 1 and 2 of an enclosing
/// stream, trimmed to the characters that do not depend on the surrounding bytes.
fn b64_offsets(bytes: &[u8]) -> Vec<String> {
    let starts = [0usize, 2, 3];
    let ends = [0usize, 3, 2];
    (0..3)
        .map(|i| {
            let mut padded = vec![b' '; i];
            padded.extend_from_slice(bytes);
            let enc = b64(&padded);
            let end_trim = ends[(bytes.len() + i) % 3];
            let s = starts[i];
            let e = enc.len().saturating_sub(end_trim);
            if s < e {
                enc[s..e].to_string()
            } else {
                String::new()
            }
        })
        .collect()
}

/// Compiles `field|mods` with its YAML value(s).
pub fn compile_field(key: &str, value: &Yaml) -> Result<FieldCond, String> {
    let mut parts = key.split('|');
    let field = parts.next().unwrap_or("");
    let mods: Vec<&str> = parts.collect();
    let mut op = StrOp::Exact;
    let mut all = false;
    let mut cased = false;
    let mut re = false;
    let mut re_flags = String::new();
    let mut cidr = false;
    let mut exists = false;
    let mut num: Option<Cmp> = None;
    let mut fieldref = false;
    let mut b64mode: Option<bool> = None; // Some(false) = base64, Some(true) = base64offset
    let mut wide: Option<bool> = None;
    let mut windash = false;
    for m in &mods {
        match *m {
            "contains" => op = StrOp::Contains,
            "startswith" => op = StrOp::Starts,
            "endswith" => op = StrOp::Ends,
            "all" => all = true,
            "cased" => cased = true,
            "re" => re = true,
            "i" | "ignorecase" => re_flags.push('i'),
            "m" | "multiline" => re_flags.push('m'),
            "s" | "dotall" => re_flags.push('s'),
            "cidr" => cidr = true,
            "exists" => exists = true,
            "gt" => num = Some(Cmp::Gt),
            "gte" => num = Some(Cmp::Gte),
            "lt" => num = Some(Cmp::Lt),
            "lte" => num = Some(Cmp::Lte),
            "fieldref" => fieldref = true,
            "base64" => b64mode = Some(false),
            "base64offset" => b64mode = Some(true),
            "wide" | "utf16le" => wide = Some(false),
            "utf16be" => wide = Some(true),
            "utf16" => wide = Some(false),
            "windash" => windash = true,
            other => return Err(format!("unsupported modifier `{other}` on field `{field}`")),
        }
    }
    let values: Vec<&Yaml> = match value {
        Yaml::Sequence(s) => s.iter().collect(),
        v => vec![v],
    };
    let mut matchers = Vec::new();
    for v in values {
        if matches!(v, Yaml::Null) {
            matchers.push(Matcher::Null);
            continue;
        }
        if exists {
            match v {
                Yaml::Bool(b) => matchers.push(Matcher::Exists(*b)),
                Yaml::String(s)
                    if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false") =>
                {
                    matchers.push(Matcher::Exists(s.eq_ignore_ascii_case("true")))
                }
                _ => return Err(format!("`{field}|exists` needs true or false")),
            }
            continue;
        }
        let s = yaml_scalar(v)
            .ok_or_else(|| format!("field `{field}` has a value that is not a scalar"))?;
        if let Some(c) = num {
            let n: f64 = s
                .trim()
                .parse()
                .map_err(|_| format!("`{field}` numeric modifier needs a number, got `{s}`"))?;
            matchers.push(Matcher::Num(c, n));
            continue;
        }
        if cidr {
            let (a, b) = parse_cidr(&s).ok_or_else(|| format!("invalid CIDR `{s}`"))?;
            matchers.push(Matcher::Cidr(a, b));
            continue;
        }
        if fieldref {
            matchers.push(Matcher::FieldRef(FieldPath::new(&s)));
            continue;
        }
        if re {
            let flags = if re_flags.is_empty() {
                String::new()
            } else {
                format!("(?{re_flags})")
            };
            let r = Regex::new(&format!("{flags}{s}"))
                .map_err(|e| format!("invalid regex `{s}`: {e}"))?;
            matchers.push(Matcher::Regex(r));
            continue;
        }
        let mut variants = vec![s];
        if windash {
            let mut out = Vec::new();
            for v in &variants {
                out.push(v.clone());
                if v.contains('-') {
                    for d in ['/', '\u{2013}', '\u{2014}', '\u{2015}'] {
                        out.push(v.replace('-', &d.to_string()));
                    }
                }
            }
            variants = out;
        }
        if let Some(offset) = b64mode {
            let mut out = Vec::new();
            for v in &variants {
                let bytes = match wide {
                    Some(be) => utf16(v, be),
                    None => v.as_bytes().to_vec(),
                };
                if offset {
                    out.extend(b64_offsets(&bytes));
                } else {
                    out.push(b64(&bytes));
                }
            }
            // Encoded text is matched literally, case-sensitively, as base64 is.
            for v in out {
                let esc = v
                    .replace('\\', "\\\\")
                    .replace('*', "\\*")
                    .replace('?', "\\?");
                matchers.push(string_matcher(&esc, op, true)?);
            }
            continue;
        }
        for v in variants {
            matchers.push(string_matcher(&v, op, cased)?);
        }
    }
    if matchers.is_empty() {
        return Err(format!("field `{field}` has an empty value list"));
    }
    Ok(FieldCond {
        path: FieldPath::new(field),
        matchers,
        all,
    })
}

/// A literal of at least three bytes that every match of the regular expression
/// `pattern` contains (a literal at the top level of the expression), when there is one.
/// Case-insensitive parts never yield literals.
pub fn required_literal(pattern: &str) -> Option<String> {
    use regex_syntax::hir::HirKind;
    let hir = regex_syntax::Parser::new().parse(pattern).ok()?;
    let lit = |h: &regex_syntax::hir::Hir| match h.kind() {
        HirKind::Literal(l) => std::str::from_utf8(&l.0).ok().map(String::from),
        _ => None,
    };
    let best = match hir.kind() {
        HirKind::Concat(parts) => parts.iter().filter_map(lit).max_by_key(String::len),
        _ => lit(&hir),
    };
    best.filter(|l| l.len() >= 3)
}

/// A keyword (value without a field): searched case-insensitively in the whole record.
pub fn compile_keyword(v: &Yaml) -> Result<Matcher, String> {
    let s = yaml_scalar(v).ok_or("keyword is not a scalar")?;
    string_matcher(&s, StrOp::Contains, false)
}

/// Tests a keyword matcher against the raw record text.
pub fn keyword_match(m: &Matcher, ev: &Event) -> bool {
    m.test_str(ev.raw(), ev)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_simplification_and_escapes() {
        assert!(matches!(
            string_matcher("abc*", StrOp::Exact, false).unwrap(),
            Matcher::Str {
                op: StrOpKind::Starts,
                ..
            }
        ));
        assert!(matches!(
            string_matcher("*abc*", StrOp::Exact, false).unwrap(),
            Matcher::Str {
                op: StrOpKind::Contains,
                ..
            }
        ));
        assert!(
            matches!(string_matcher("a\\*c", StrOp::Exact, false).unwrap(), Matcher::Str { op: StrOpKind::Exact, ref lit, .. } if lit == "a*c")
        );
        assert!(matches!(
            string_matcher("a?c", StrOp::Exact, false).unwrap(),
            Matcher::Regex(_)
        ));
        assert!(
            matches!(string_matcher("C:\\Windows", StrOp::Exact, false).unwrap(), Matcher::Str { ref lit, .. } if lit == "c:\\windows")
        );
    }

    #[test]
    fn required_literals_of_regular_expressions() {
        assert_eq!(
            required_literal(".+:assumed-role/aws:.+").as_deref(),
            Some(":assumed-role/aws:")
        );
        assert_eq!(required_literal("^abc(d|e)f+$").as_deref(), Some("abc"));
        assert_eq!(required_literal("(?i).+:assumed-role/aws:.+"), None);
        assert_eq!(required_literal("abc|xyz"), None);
        assert_eq!(required_literal("(abcd)?x"), None);
    }

    #[test]
    fn base64_offsets_match_known_encodings() {
        // "http" at three offsets, as documented by the Sigma specification.
        assert_eq!(b64_offsets(b"http"), ["aHR0c", "h0dH", "odHRw"]);
    }
}

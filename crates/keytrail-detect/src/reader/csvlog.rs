//! CloudTrail as CSV (and Microsoft 365 audit exports, whose `AuditData` column is the
//! record): Athena query results over the CloudTrail table (struct columns
//! such as `useridentity` written as `{type=IAMUser, arn=…, sessioncontext={…}}`) and
//! other exports whose header names CloudTrail fields (`Event Name`, `eventtime`,
//! `Source IP`…; nested values as JSON or Python-style dicts). Each row becomes a
//! CloudTrail JSON record, parsed like any other, so every detector and Sigma rule sees
//! the usual field names. Rows are streamed: memory does not grow with the file.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use keytrail_types::Diagnostic;
use serde_json::{Map, Value};

use crate::event::{Event, RecordError};
use crate::reader::{MAX_RECORD_BYTES, ReadItem, kinds};

/// Where a CSV column goes in the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    /// A top-level string member.
    Str(&'static str),
    /// A top-level nested document (JSON, Python dict or Athena struct text).
    Doc(&'static str),
    /// A member of `userIdentity` (when there is no whole `userIdentity` column).
    Identity(&'static str),
    /// The whole record as JSON (a `CloudTrailEvent` column).
    Whole,
    /// Not a CloudTrail field.
    Skip,
}

/// Maps a header name (case, spaces, `_` and `-` ignored) to its column.
fn column(header: &str) -> Column {
    let h: String = header
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase();
    match h.as_str() {
        "eventtime" | "eventdatetime" | "timestamp" => Column::Str("eventTime"),
        "eventname" => Column::Str("eventName"),
        "eventsource" => Column::Str("eventSource"),
        "awsregion" | "region" => Column::Str("awsRegion"),
        "sourceipaddress" | "sourceip" => Column::Str("sourceIPAddress"),
        "useragent" | "requestuseragent" => Column::Str("userAgent"),
        "errorcode" => Column::Str("errorCode"),
        "errormessage" => Column::Str("errorMessage"),
        "eventid" => Column::Str("eventID"),
        "eventtype" => Column::Str("eventType"),
        "eventversion" => Column::Str("eventVersion"),
        "readonly" => Column::Str("readOnly"),
        "recipientaccountid" => Column::Str("recipientAccountId"),
        "requestid" => Column::Str("requestID"),
        "sharedeventid" => Column::Str("sharedEventID"),
        "vpcendpointid" => Column::Str("vpcEndpointId"),
        "eventcategory" => Column::Str("eventCategory"),
        "useridentity" | "userid" => Column::Doc("userIdentity"),
        "requestparameters" => Column::Doc("requestParameters"),
        "responseelements" => Column::Doc("responseElements"),
        "additionaleventdata" => Column::Doc("additionalEventData"),
        "serviceeventdetails" => Column::Doc("serviceEventDetails"),
        "resources" => Column::Doc("resources"),
        "tlsdetails" => Column::Doc("tlsDetails"),
        "username" => Column::Identity("userName"),
        "awsaccesskey" | "accesskeyid" => Column::Identity("accessKeyId"),
        "cloudtrailevent" => Column::Whole,
        // Microsoft 365: `Search-UnifiedAuditLog` and Purview exports keep the record
        // as JSON in `AuditData`.
        "auditdata" => Column::Whole,
        _ => Column::Skip,
    }
}

/// Whether a header line looks like a CloudTrail CSV export: it names at least an
/// event name and an event time column.
pub(crate) fn is_cloudtrail_header(line: &[u8]) -> bool {
    if line.len() > 16 << 10 || line.first().is_some_and(|&c| c == b'{' || c == b'[') {
        return false;
    }
    let Ok(text) = std::str::from_utf8(line) else {
        return false;
    };
    if !text.contains(',') {
        return false;
    }
    let cols: Vec<Column> = text
        .split(',')
        .map(|h| column(h.trim_matches('"')))
        .collect();
    (cols.contains(&Column::Str("eventName")) && cols.contains(&Column::Str("eventTime")))
        || cols.contains(&Column::Whole)
}

/// Records of a CSV stream with a header row.
pub struct CsvRecords {
    name: String,
    rows: csv::StringRecordsIntoIter<Box<dyn Read + Send>>,
    /// Bytes read since the last complete row (see [`RowGuard`]).
    since_row: Arc<AtomicU64>,
    columns: Vec<Column>,
    header_error: Option<Diagnostic>,
}

impl CsvRecords {
    /// Reads `reader` (its first row is the header); `name` names it in diagnostics.
    pub fn new(name: &str, reader: Box<dyn Read + Send>) -> Self {
        let since_row = Arc::new(AtomicU64::new(0));
        let reader: Box<dyn Read + Send> = Box::new(RowGuard {
            inner: reader,
            since_row: since_row.clone(),
        });
        let mut r = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
        let (columns, header_error) = match r.headers() {
            Ok(h) => (h.iter().map(column).collect(), None),
            Err(e) => (
                Vec::new(),
                Some(
                    Diagnostic::error(kinds::INVALID_RECORD, name, e.to_string()).at(Some(1), None),
                ),
            ),
        };
        CsvRecords {
            name: name.to_string(),
            since_row,
            rows: r.into_records(),
            columns,
            header_error,
        }
    }

    fn record(&self, row: &csv::StringRecord) -> Result<Event, RecordError> {
        let mut rec = Map::new();
        let mut identity = Map::new();
        for (col, value) in self.columns.iter().zip(row.iter()) {
            let v = value.trim();
            if v.is_empty() || v == "null" || v == "None" {
                continue;
            }
            match *col {
                Column::Whole => return Event::parse_str(v),
                Column::Str(k) => {
                    rec.insert(k.into(), Value::String(v.into()));
                }
                Column::Doc(k) => {
                    rec.insert(k.into(), parse_doc(v));
                }
                Column::Identity(k) => {
                    identity.insert(k.into(), Value::String(v.into()));
                }
                Column::Skip => {}
            }
        }
        if !identity.is_empty() && !rec.contains_key("userIdentity") {
            if !identity.contains_key("type") && identity.contains_key("userName") {
                identity.insert("type".into(), Value::String("IAMUser".into()));
            }
            rec.insert("userIdentity".into(), Value::Object(identity));
        }
        Event::parse_str(&Value::Object(rec).to_string())
    }
}

impl Iterator for CsvRecords {
    type Item = ReadItem;
    fn next(&mut self) -> Option<ReadItem> {
        if let Some(d) = self.header_error.take() {
            return Some(Err(d));
        }
        if self.columns.is_empty() {
            return None;
        }
        let row = self.rows.next()?;
        self.since_row.store(0, Ordering::Relaxed);
        Some(match row {
            Ok(row) => {
                let line = row.position().map(|p| p.line());
                self.record(&row).map_err(|e| {
                    let kind = match e {
                        RecordError::MissingTime => kinds::MISSING_TIME,
                        RecordError::NotAuditLog(_) => kinds::NOT_AUDIT_LOG,
                        _ => kinds::INVALID_RECORD,
                    };
                    Diagnostic::error(kind, &self.name, format!("skipped row: {e}")).at(line, None)
                })
            }
            Err(e) => {
                let line = e.position().map(|p| p.line());
                let fatal = !matches!(e.kind(), csv::ErrorKind::Utf8 { .. });
                if fatal {
                    self.columns.clear();
                }
                Err(Diagnostic::error(
                    kinds::INVALID_RECORD,
                    &self.name,
                    format!("skipped row: {e}"),
                )
                .at(line, None))
            }
        })
    }
}

/// Fails the read once one row has taken more than [`MAX_RECORD_BYTES`] bytes (an
/// unterminated quote would otherwise make the CSV reader keep the rest of the stream
/// as one field).
struct RowGuard {
    inner: Box<dyn Read + Send>,
    since_row: Arc<AtomicU64>,
}

impl Read for RowGuard {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.since_row.load(Ordering::Relaxed) > MAX_RECORD_BYTES {
            return Err(std::io::Error::other(format!(
                "row longer than {MAX_RECORD_BYTES} bytes (an unterminated quote?); the rest \
                 of the file is skipped"
            )));
        }
        let n = self.inner.read(buf)?;
        self.since_row.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// A nested document from a CSV cell: JSON, a Python-style dict (`{'k': 'v', 'b':
/// True}`), or an Athena/Presto struct (`{type=IAMUser, arn=…, sessioncontext={…}}`).
/// Anything else stays a string.
pub(crate) fn parse_doc(cell: &str) -> Value {
    if let Ok(v) = serde_json::from_str::<Value>(cell) {
        return v;
    }
    let mut p = Loose {
        b: cell.as_bytes(),
        i: 0,
    };
    match p.value(0) {
        Some(v) if p.ws_end() => v,
        _ => Value::String(cell.to_string()),
    }
}

/// A lenient parser for Python dict and Presto struct text.
struct Loose<'a> {
    b: &'a [u8],
    i: usize,
}

impl Loose<'_> {
    fn ws(&mut self) {
        while self.i < self.b.len() && self.b[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn ws_end(&mut self) -> bool {
        self.ws();
        self.i == self.b.len()
    }

    fn value(&mut self, depth: usize) -> Option<Value> {
        if depth > 64 {
            return None;
        }
        self.ws();
        match *self.b.get(self.i)? {
            b'{' => {
                self.i += 1;
                let mut m = Map::new();
                loop {
                    self.ws();
                    if self.b.get(self.i) == Some(&b'}') {
                        self.i += 1;
                        return Some(Value::Object(m));
                    }
                    let key = match self.b.get(self.i)? {
                        b'\'' | b'"' => self.quoted()?,
                        _ => self.bare(b"=:")?,
                    };
                    self.ws();
                    match self.b.get(self.i)? {
                        b'=' | b':' => self.i += 1,
                        _ => return None,
                    }
                    let v = self.value(depth + 1)?;
                    m.insert(camel_key(&key), v);
                    self.ws();
                    match self.b.get(self.i)? {
                        b',' => self.i += 1,
                        b'}' => {}
                        _ => return None,
                    }
                }
            }
            b'[' => {
                self.i += 1;
                let mut a = Vec::new();
                loop {
                    self.ws();
                    if self.b.get(self.i) == Some(&b']') {
                        self.i += 1;
                        return Some(Value::Array(a));
                    }
                    a.push(self.value(depth + 1)?);
                    self.ws();
                    match self.b.get(self.i)? {
                        b',' => self.i += 1,
                        b']' => {}
                        _ => return None,
                    }
                }
            }
            b'\'' | b'"' => self.quoted().map(Value::String),
            _ => {
                let t = self.bare(b",}]")?;
                // Presto prints every struct member bare (CloudTrail's `true`/`false`
                // members are strings); Python's `True`/`False` are booleans.
                Some(match t.as_str() {
                    "null" | "None" => Value::Null,
                    "True" => Value::Bool(true),
                    "False" => Value::Bool(false),
                    _ => Value::String(t),
                })
            }
        }
    }

    /// A quoted string (`'…'` or `"…"`, backslash escapes kept literally except for
    /// the quote and the backslash).
    fn quoted(&mut self) -> Option<String> {
        let q = self.b[self.i];
        self.i += 1;
        let mut out = Vec::new();
        while let Some(&c) = self.b.get(self.i) {
            self.i += 1;
            if c == b'\\' {
                let n = *self.b.get(self.i)?;
                self.i += 1;
                if n != q && n != b'\\' {
                    out.push(b'\\');
                }
                out.push(n);
            } else if c == q {
                return String::from_utf8(out).ok();
            } else {
                out.push(c);
            }
        }
        None
    }

    /// An unquoted token up to one of `stops` (at bracket depth 0), trimmed.
    fn bare(&mut self, stops: &[u8]) -> Option<String> {
        let start = self.i;
        let mut depth = 0usize;
        while let Some(&c) = self.b.get(self.i) {
            if depth == 0 && stops.contains(&c) {
                break;
            }
            match c {
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' | b'}' if depth > 0 => depth -= 1,
                b'}' | b']' => break,
                _ => {}
            }
            self.i += 1;
        }
        let t = std::str::from_utf8(&self.b[start..self.i]).ok()?.trim();
        (!t.is_empty()).then(|| t.to_string())
    }
}

/// Athena's CloudTrail table lowercases struct member names; the record format (and
/// Sigma rules) use camelCase.
fn camel_key(k: &str) -> String {
    const KNOWN: &[&str] = &[
        "principalId",
        "accountId",
        "accessKeyId",
        "userName",
        "invokedBy",
        "sessionContext",
        "sessionIssuer",
        "mfaAuthenticated",
        "creationDate",
        "webIdFederationData",
        "sourceIdentity",
        "federatedProvider",
        "ec2RoleDelivery",
        "sessionCredentialFromConsole",
        "identityStoreArn",
        "onBehalfOf",
        "credentialId",
        "bucketName",
        "instanceType",
        "roleArn",
        "roleSessionName",
        "policyArn",
    ];
    KNOWN
        .iter()
        .find(|c| c.eq_ignore_ascii_case(k))
        .map_or_else(|| k.to_string(), |c| (*c).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reader::read_stream;

    fn read(name: &str, text: &str) -> (Vec<Event>, Vec<Diagnostic>) {
        let mut evs = Vec::new();
        let mut diags = Vec::new();
        for it in read_stream(
            name,
            Box::new(std::io::Cursor::new(text.as_bytes().to_vec())),
        ) {
            match it {
                Ok(e) => evs.push(e),
                Err(d) => diags.push(d),
            }
        }
        (evs, diags)
    }

    #[test]
    fn athena_results_with_struct_columns() {
        // As Athena writes a `SELECT *` over the CloudTrail table: lowercase struct
        // members, `null`, JSON strings for request parameters, quoted cells.
        let csv = concat!(
            "\"eventversion\",\"useridentity\",\"eventtime\",\"eventsource\",\"eventname\",\"awsregion\",\"sourceipaddress\",\"useragent\",\"errorcode\",\"requestparameters\",\"eventid\",\"readonly\",\"recipientaccountid\"\n",
            "\"1.08\",\"{type=AssumedRole, principalid=AROAEXAMPLE:i-0123456789abcdef0, arn=arn:aws:sts::111122223333:assumed-role/web/i-0123456789abcdef0, accountid=111122223333, invokedby=null, accesskeyid=ASIAEXAMPLE, username=null, sessioncontext={attributes={mfaauthenticated=false, creationdate=2024-05-01T09:00:00Z}, sessionissuer={type=Role, principalid=AROAEXAMPLE, arn=arn:aws:iam::111122223333:role/web, accountid=111122223333, username=web}, ec2roledelivery=2.0}}\",\"2024-05-01T10:00:00Z\",\"s3.amazonaws.com\",\"GetObject\",\"eu-west-1\",\"203.0.113.9\",\"[aws-cli/2.15.30 Python/3.11.8 Darwin/23.4.0 exe/x86_64]\",,\"{\"\"bucketName\"\":\"\"data\"\",\"\"key\"\":\"\"a,b.csv\"\"}\",\"e1\",\"true\",\"111122223333\"\n",
            "\"1.08\",\"{type=IAMUser, principalid=AIDAEXAMPLE, arn=arn:aws:iam::111122223333:user/ci, accountid=111122223333, accesskeyid=AKIAEXAMPLE, username=ci, sessioncontext=null}\",\"2024-05-01T10:00:05Z\",\"cloudtrail.amazonaws.com\",\"StopLogging\",\"us-east-1\",\"198.51.100.7\",\"aws-sdk-go\",\"AccessDenied\",\"{\"\"name\"\":\"\"main\"\"}\",\"e2\",\"false\",\"111122223333\"\n",
        );
        let (evs, diags) = read("athena.csv", csv);
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(evs.len(), 2);
        let a = &evs[0];
        assert_eq!(a.event_name(), "GetObject");
        assert_eq!(a.principal(), "arn:aws:iam::111122223333:role/web");
        assert!(a.identity().ec2_instance_session());
        assert_eq!(a.lookup_str("requestParameters.bucketName"), Some("data"));
        assert_eq!(a.lookup_str("requestParameters.key"), Some("a,b.csv"));
        assert_eq!(
            a.lookup_str("userIdentity.sessionContext.sessionIssuer.type"),
            Some("Role")
        );
        assert_eq!(a.read_only, Some(true));
        assert!(a.source_addr.is_some());
        let b = &evs[1];
        assert_eq!(b.principal(), "arn:aws:iam::111122223333:user/ci");
        assert_eq!(b.access_key_id(), Some("AKIAEXAMPLE"));
        assert_eq!(b.error_code(), Some("AccessDenied"));
    }

    #[test]
    fn the_otrf_honey_bucket_export_is_read() {
        // A real export: Python-dict cells, `Event DateTime`, extra columns.
        let path = keytrail_testkit::data::otrf("AWS_S3_HoneyBucketLogs.csv");
        let text = std::fs::read_to_string(&path).unwrap();
        let (evs, diags) = read("honey.csv", &text);
        let rows = text.lines().count() - 1;
        assert!(diags.is_empty(), "{:?}", &diags[..diags.len().min(3)]);
        assert_eq!(evs.len(), rows);
        assert!(
            evs.iter()
                .all(|e| !e.event_name().is_empty() && e.source_addr.is_some())
        );
        assert_eq!(evs[0].principal(), "account:ANONYMOUS_PRINCIPAL");
        assert_eq!(
            evs[0].lookup_str("requestParameters.bucketName"),
            Some("microsoft-devtest")
        );
    }

    #[test]
    fn loose_documents() {
        assert_eq!(parse_doc(r#"{"a": 1}"#), serde_json::json!({"a": 1}));
        assert_eq!(
            parse_doc("{'a': 'x', 'b': True, 'c': None, 'd': ['1', 2]}"),
            serde_json::json!({"a": "x", "b": true, "c": null, "d": ["1", "2"]})
        );
        assert_eq!(
            parse_doc(
                "{type=Role, arn=arn:aws:iam::1:role/r, attributes={mfaauthenticated=false}, list=[{a=1}, {a=2}]}"
            ),
            serde_json::json!({"type": "Role", "arn": "arn:aws:iam::1:role/r", "attributes": {"mfaAuthenticated": "false"}, "list": [{"a": "1"}, {"a": "2"}]})
        );
        for text in ["plain text", "{unclosed=1", "{a=1} tail", "{'a' 1}"] {
            assert_eq!(parse_doc(text), Value::String(text.into()), "{text}");
        }
    }

    #[test]
    fn headers_that_are_not_cloudtrail_are_not_csv_logs() {
        assert!(is_cloudtrail_header(
            b"Event Type,Event Name,Event DateTime,Source IP"
        ));
        assert!(is_cloudtrail_header(b"\"eventtime\",\"eventname\""));
        assert!(!is_cloudtrail_header(b"name,value,time"));
        assert!(!is_cloudtrail_header(
            br#"{"eventName":"x","eventTime":"y"}"#
        ));
    }
}

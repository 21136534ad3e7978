//! Input readers: CloudTrail files as delivered to S3 (gzipped `{"Records":[…]}`),
//! JSON arrays, single objects, concatenated objects, NDJSON (including Logstash
//! exports with `@timestamp`), stdin, and directory trees merged in event-time order.
//!
//! Every reader yields `Result<Event, Diagnostic>`: a bad record, a truncated gzip
//! stream or an unreadable file becomes a diagnostic naming the file and position, and
//! reading goes on. Records are delimited by a byte-level scanner (string- and
//! escape-aware brace matching), so one invalid record is skipped on its own instead of
//! failing the whole file.
//!
//! Memory: NDJSON is streamed line by line. Array and `Records` files are read in 32 MiB
//! windows (a plain file up to 256 MiB in one piece), the incomplete record at the end
//! of a window carried into the next, so a file of any size is read whole in bounded
//! memory; events keep their record text as ranges of the window they came from.
//! Directory merging keeps only the files whose time ranges overlap open at once.
//! [`DirRecords::from_files_parallel`] adds worker threads that read and parse the next
//! few files (one per worker plus one) in merge order and hand over parsed records in
//! chunks of 256 while they work; the merge, and so every item and its order, is
//! unchanged.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

use flate2::read::MultiGzDecoder;
use keytrail_types::Diagnostic;

pub mod csvlog;
mod file;
mod list;
mod merge;
mod ndjson;
mod prefetch;
mod split;

pub use file::{
    FileRecords, MAX_BAD_RUN, read_file, read_object_stream, read_path, read_paths, read_stream,
};
pub use list::{
    Fetch, LogObject, first_event_time_of, is_log_name, key_time, list_files, merge_order,
};
pub use merge::DirRecords;
pub use ndjson::LineRecords;
pub use prefetch::Enrich;
pub use split::SliceRecords;

// The submodules read one another's helpers through these (each opens with
// `use super::*`): the order they read in is split, ndjson, csvlog → file → list →
// prefetch → merge.
#[allow(unused_imports)]
use {file::*, list::*, merge::*, ndjson::*, prefetch::*, split::*};

use crate::event::{Event, RecordError};
use crate::json::{string_end, value_end};
use crate::time::parse_rfc3339_ms;

/// Largest single record (decompressed): a record that does not end within this many
/// bytes is reported as truncated and reading stops.
pub const MAX_RECORD_BYTES: u64 = 64 << 20;

/// Array and `Records` files are read in windows of this many bytes (a file up to
/// [`WHOLE_FILE_BYTES`] with a known size is read in one piece): memory per file stays
/// bounded however large the file, and nothing past a fixed size is dropped.
const WINDOW_BYTES: usize = 32 << 20;

/// Plain files up to this size are read into memory in one piece.
const WHOLE_FILE_BYTES: usize = 256 << 20;

/// First allocation for a stream of unknown length (a gzipped file): larger contents
/// grow the buffer as they are read. Below the allocator's mmap threshold, so the
/// thousands of small files of an S3 tree cost no `mmap`/`munmap` each.
const FIRST_READ_BYTES: usize = 64 << 10;

/// One item from a reader.
pub type ReadItem = Result<Event, Diagnostic>;

/// Diagnostic kinds produced by readers (stable strings).
pub mod kinds {
    /// A record that is not valid JSON or not an object; skipped.
    pub const INVALID_RECORD: &str = "invalid_record";
    /// A record without a usable time; skipped.
    pub const MISSING_TIME: &str = "missing_time";
    /// A file that ends in the middle of a record or gzip stream.
    pub const TRUNCATED: &str = "truncated";
    /// A file that could not be opened or read.
    pub const UNREADABLE: &str = "unreadable";
    /// Bytes between records that are not JSON; skipped.
    pub const GARBAGE: &str = "garbage";
    /// A file whose records could not be read [`super::MAX_BAD_RUN`] times in a row;
    /// the rest of it is skipped.
    pub const NOT_A_LOG: &str = "not_a_log";
    /// Cloud Logging entries of other logs than the audit logs, skipped: one
    /// notice per file with their number and log names.
    pub const NOT_AUDIT_LOG: &str = "not_audit_log";
}

fn record_diag(name: &str, line: u64, err: RecordError) -> Diagnostic {
    let kind = match err {
        RecordError::MissingTime => kinds::MISSING_TIME,
        RecordError::NotAuditLog(_) => kinds::NOT_AUDIT_LOG,
        _ => kinds::INVALID_RECORD,
    };
    Diagnostic::error(kind, name, format!("skipped record: {err}")).at(Some(line), None)
}

/// The readers' guarantees on arbitrary bytes, for fuzzing and tests; panics when one
/// is broken: reading ends, yields at most one item per input byte (plus the end), and
/// gives the same items whether the bytes come in one piece or in small windows, plain
/// or gzipped.
#[doc(hidden)]
pub fn check_reader_invariants(data: &[u8]) {
    let limit = data.len() + 8;
    let describe = |items: &mut dyn Iterator<Item = ReadItem>| -> Vec<String> {
        let v: Vec<String> = items
            .take(limit + 1)
            .map(|r| match r {
                Ok(e) => format!("event {} {}", e.event_name(), e.event_id()),
                Err(d) => format!("{} {:?}", d.kind, d.line),
            })
            .collect();
        assert!(
            v.len() <= limit,
            "{} items from {} bytes",
            v.len(),
            data.len()
        );
        v
    };
    let same = |a: &[String], b: &[String], what: &str| {
        if let Some(i) = (0..a.len().max(b.len())).find(|&i| a.get(i) != b.get(i)) {
            panic!(
                "{what}: item {i} differs: {:?} vs {:?} (of {} and {})",
                &a[i.saturating_sub(2)..(i + 3).min(a.len())],
                &b[i.saturating_sub(2)..(i + 3).min(b.len())],
                a.len(),
                b.len()
            );
        }
    };
    let whole = describe(&mut read_stream(
        "f",
        Box::new(std::io::Cursor::new(data.to_vec())),
    ));
    let sliced = describe(&mut SliceRecords::new("f", data.to_vec()));
    // Small windows cost a copy of the pending record per refill: keep them for small
    // inputs.
    // (Gzip is decompressed by the windowed reader, not by `SliceRecords::new`: such
    // input is compared through `read_stream` below only.)
    let windows: &[usize] = if data.starts_with(&[0x1f, 0x8b]) {
        &[]
    } else if data.len() <= 4096 {
        &[1, 7, 64]
    } else {
        &[4096, 65_536]
    };
    for &window in windows {
        let src = Box::new(std::io::Cursor::new(data.to_vec()));
        let r = SliceRecords::streaming_in_windows("f", src, 0, window);
        same(
            &describe(&mut r.into_iter()),
            &sliced,
            &format!("window {window}"),
        );
    }
    // Bytes that are gzip themselves are gunzipped by the plain read and not
    // again inside another gzip (files are compressed once): nothing to compare.
    if data.starts_with(&[0x1f, 0x8b]) {
        return;
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, data).expect("gzip into memory");
    let gz = gz.finish().expect("gzip into memory");
    let unzipped = describe(&mut read_stream("f", Box::new(std::io::Cursor::new(gz))));
    same(&unzipped, &whole, "gzip");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(name: &str, data: &[u8]) -> (Vec<Event>, Vec<Diagnostic>) {
        let mut evs = Vec::new();
        let mut diags = Vec::new();
        for r in read_stream(name, Box::new(std::io::Cursor::new(data.to_vec()))) {
            match r {
                Ok(e) => evs.push(e),
                Err(d) => diags.push(d),
            }
        }
        (evs, diags)
    }

    const R1: &str = r#"{"eventTime":"2024-01-01T00:00:01Z","eventName":"A","eventID":"1"}"#;
    const R2: &str = r#"{"eventTime":"2024-01-01T00:00:02Z","eventName":"B}","eventID":"2"}"#;

    #[test]
    fn reads_records_wrapper_array_object_and_ndjson() {
        let wrapper = format!(r#"{{"Records":[{R1},{R2}],"x":1}}"#);
        assert_eq!(collect("w", wrapper.as_bytes()).0.len(), 2);
        let pretty = format!("{{\n \"Records\" : [\n{R1},\n{R2}\n]\n}}");
        assert_eq!(collect("p", pretty.as_bytes()).0.len(), 2);
        let arr = format!("[{R1}, {R2}]");
        assert_eq!(collect("a", arr.as_bytes()).0.len(), 2);
        let nd = format!("{R1}\n\n{R2}\n");
        let (evs, d) = collect("n", nd.as_bytes());
        assert_eq!((evs.len(), d.len()), (2, 0));
        assert_eq!(evs[1].event_name(), "B}");
        let single = "{\n\"eventTime\": \"2024-01-01T00:00:01Z\"\n}";
        assert_eq!(collect("s", single.as_bytes()).0.len(), 1);
    }

    #[test]
    fn skips_and_counts_invalid_records_naming_the_file() {
        let nd = format!("{R1}\n{{\"eventTime\": tru}}\nnot json\n{R2}\n");
        let (evs, d) = collect("bad.ndjson", nd.as_bytes());
        assert_eq!(evs.len(), 2);
        assert_eq!(d.len(), 2);
        assert!(d.iter().all(|d| d.subject == "bad.ndjson"));
        assert_eq!(d[0].line, Some(2));
        let arr =
            format!("[{R1}, {{\"eventTime\": tru}}, {{\"eventTime\": 5, \"x\": [1]}}, 7, {R2}]");
        let (evs, d) = collect("bad.json", arr.as_bytes());
        assert_eq!(evs.len(), 2, "{d:?}");
        let k: Vec<&str> = d.iter().map(|d| d.kind.as_str()).collect();
        assert_eq!(
            k,
            [
                kinds::INVALID_RECORD,
                kinds::MISSING_TIME,
                kinds::INVALID_RECORD
            ]
        );
    }

    /// A CloudTrail record as text.
    fn inner_record(name: &str, secs: u32) -> String {
        format!(
            r#"{{"eventVersion":"1.08","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::1:user/u","accessKeyId":"AKIAEXAMPLE"}},"eventTime":"2024-05-01T10:00:{secs:02}Z","eventSource":"iam.amazonaws.com","eventName":"{name}","awsRegion":"us-east-1","sourceIPAddress":"203.0.113.7","eventID":"id-{name}"}}"#
        )
    }

    #[test]
    fn lookup_events_cloudwatch_and_eventbridge_envelopes_give_the_inner_records() {
        // `aws cloudtrail lookup-events` output (pretty-printed, as the CLI writes it):
        // each record is a JSON string in `CloudTrailEvent`.
        let events: Vec<String> = [("CreateUser", 1), ("CreateAccessKey", 2)]
            .iter()
            .map(|(n, s)| {
                let inner = serde_json::to_string(&inner_record(n, *s)).unwrap();
                format!(
                    "{{\n  \"EventId\": \"id-{n}\",\n  \"EventName\": \"{n}\",\n  \"EventTime\": \"2024-05-01T10:00:0{s}+00:00\",\n  \"CloudTrailEvent\": {inner}\n}}"
                )
            })
            .collect();
        let lookup = format!(
            "{{\n \"Events\": [\n{}\n ],\n \"NextToken\": \"x\"\n}}\n",
            events.join(",\n")
        );
        let (evs, diags) = collect("lookup.json", lookup.as_bytes());
        assert!(diags.is_empty(), "{diags:?}");
        let names: Vec<&str> = evs.iter().map(|e| e.event_name()).collect();
        assert_eq!(names, ["CreateUser", "CreateAccessKey"]);
        assert_eq!(evs[0].principal(), "arn:aws:iam::1:user/u");
        assert_eq!(evs[1].lookup_str("eventName"), Some("CreateAccessKey"));
        assert_eq!(
            evs[1].time_ms,
            parse_rfc3339_ms("2024-05-01T10:00:02Z").unwrap()
        );
        // The same output on one line.
        let one_line = lookup.replace('\n', "");
        let (evs, diags) = collect("lookup1.json", one_line.as_bytes());
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(evs.len(), 2);

        // EventBridge "AWS API Call via CloudTrail" envelopes, one per line.
        let bridge: String = [("StopLogging", 3), ("DeleteTrail", 4)]
            .iter()
            .map(|(n, s)| {
                format!(
                    r#"{{"version":"0","id":"e","detail-type":"AWS API Call via CloudTrail","source":"aws.cloudtrail","time":"2024-05-01T10:00:0{s}Z","region":"us-east-1","detail":{}}}"#,
                    inner_record(n, *s)
                ) + "\n"
            })
            .collect();
        let (evs, diags) = collect("bridge.jsonl", bridge.as_bytes());
        assert!(diags.is_empty(), "{diags:?}");
        let names: Vec<&str> = evs.iter().map(|e| e.event_name()).collect();
        assert_eq!(names, ["StopLogging", "DeleteTrail"]);
        assert!(
            evs[0].raw().starts_with("{\"eventVersion\""),
            "raw is the inner record"
        );

        // CloudWatch Logs: an S3 export (`<timestamp> <record>` per line, gzipped) and
        // `aws logs filter-log-events` output (records as strings in `message`).
        let export: String = [("ListUsers", 5), ("ListRoles", 6)]
            .iter()
            .map(|(n, s)| format!("2024-05-01T10:00:0{s}.000Z {}\n", inner_record(n, *s)))
            .collect();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, export.as_bytes()).unwrap();
        let (evs, diags) = collect("000000.gz", &gz.finish().unwrap());
        assert!(diags.is_empty(), "{diags:?}");
        let names: Vec<&str> = evs.iter().map(|e| e.event_name()).collect();
        assert_eq!(names, ["ListUsers", "ListRoles"]);
        let filtered = format!(
            "{{\n  \"events\": [\n    {{\"logStreamName\": \"1_CloudTrail_us-east-1\", \"timestamp\": 1714557607000, \"message\": {}, \"eventId\": \"1\"}}\n  ],\n  \"searchedLogStreams\": []\n}}\n",
            serde_json::to_string(&inner_record("GetSendQuota", 7)).unwrap()
        );
        let (evs, diags) = collect("filtered.json", filtered.as_bytes());
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(evs.len(), 1);
        assert_eq!(evs[0].event_name(), "GetSendQuota");

        // An envelope without a record is still a record without a time.
        let (evs, diags) = collect("x.json", br#"{"detail":"text","CloudTrailEvent":7}"#);
        assert!(evs.is_empty());
        assert_eq!(diags[0].kind, kinds::MISSING_TIME);
    }

    /// Items as comparable text: events by time, id and user agent; diagnostics by
    /// kind, line and message.
    fn describe(items: impl Iterator<Item = ReadItem>) -> Vec<String> {
        items
            .map(|it| match it {
                Ok(e) => format!("{} {} {}", e.time_ms, e.event_id(), e.user_agent()),
                Err(d) => format!("{} {:?} {}", d.kind, d.line, d.message),
            })
            .collect()
    }

    #[test]
    fn windowed_reading_gives_the_same_items_as_one_piece() {
        let mut recs: Vec<String> = (0..300)
            .map(|i| {
                format!(
                    r#"{{"eventTime":"2024-01-01T00:{:02}:{:02}Z","eventName":"Get\u004fbject","eventID":"é{i}","userAgent":"agent ü€𝄞 {i}","awsRegion":"eu-west-1"}}"#,
                    i / 60,
                    i % 60
                )
            })
            .collect();
        recs.insert(150, r#"{"eventName":"no time"}"#.into());
        // A wrapper with members after the array (one holds brackets in a string), a
        // garbage line, a one-line array, and a wrapper cut off at the end.
        let text = format!(
            "{{\"Records\":[\n{}\n],\"tail\":{{\"s\":\"]}}\\\"[\"}}}}\ngarbage line\n[{}]\n{{\"Records\":[{}",
            recs.join(",\n"),
            recs.join(","),
            recs[..3].join(",")
        );
        let whole = describe(SliceRecords::new("f", text.clone().into_bytes()));
        assert_eq!(whole.iter().filter(|l| l.contains("é")).count(), 603);
        assert!(
            whole.iter().any(|l| l.starts_with("garbage Some(304)")),
            "{whole:?}"
        );
        assert!(whole.last().unwrap().starts_with("truncated"), "{whole:?}");
        for window in [1, 2, 3, 7, 64, 1000, 4096, 1 << 20] {
            let src = Box::new(std::io::Cursor::new(text.clone().into_bytes()));
            let r = SliceRecords::streaming_in_windows("f", src, 0, window);
            assert_eq!(describe(r), whole, "window {window}");
        }
        // Through gzip, as files are read.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, text.as_bytes()).unwrap();
        let gz = gz.finish().unwrap();
        let r = SliceRecords::streaming_in_windows("f", Box::new(std::io::Cursor::new(gz)), 0, 777);
        assert_eq!(describe(r), whole);
    }

    #[test]
    fn small_files_read_whole_give_the_same_items_as_the_stream() {
        let dir = tempfile::tempdir().unwrap();
        let gz = |b: &[u8]| {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut e, b).unwrap();
            e.finish().unwrap()
        };
        let wrapper = format!(r#"{{"Records":[{R1},{{"eventTime": tru}},{R2}]}}"#);
        let nd = format!("{R1}\n{{bad\n{R2}\n");
        let csv = "eventName,eventTime,eventID\nA,2024-01-01T00:00:01Z,1\nB,,2\n".to_string();
        let mut cut = gz(wrapper.as_bytes());
        cut.truncate(cut.len() - 12);
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("w.json", wrapper.clone().into_bytes()),
            ("w.json.gz", gz(wrapper.as_bytes())),
            ("n.ndjson.gz", gz(nd.as_bytes())),
            ("c.csv.gz", gz(csv.as_bytes())),
            ("cut.json.gz", cut),
            (
                "two-members.json.gz",
                [
                    gz(b"[").as_slice(),
                    gz(format!("{R1}]").as_bytes()).as_slice(),
                ]
                .concat(),
            ),
            ("empty.json", Vec::new()),
        ];
        for (file, bytes) in cases {
            let p = dir.path().join(file);
            std::fs::write(&p, &bytes).unwrap();
            let name = p.display().to_string();
            let whole = describe(read_file(&p));
            let stream = describe(read_stream(&name, Box::new(std::io::Cursor::new(bytes))));
            assert_eq!(whole, stream, "{file}");
        }
    }

    #[test]
    fn hostile_bytes_end_with_bounded_diagnostics() {
        // Each once made the reader loop forever (a stray closer inside an array was an
        // empty value that did not advance) or grow memory without bound.
        let mut cases: Vec<Vec<u8>> = [
            "[}",
            "[1}",
            "{\"Records\":[}",
            "{\"Records\":[1,}",
            "[,,,}]]",
            "]]]]",
            "{\"a\":}",
            "{\"a\":]",
            "{\"Records\":}",
            "[[[[[[",
            "{{{{",
            "\"",
            "[\"",
            "{\"Records\":[{\"a\":}]}",
            "\u{feff}[}",
            "[\n}\n",
            "eventName,eventTime\n\"",
            "{\"Events\":[}",
        ]
        .iter()
        .map(|c| c.as_bytes().to_vec())
        .collect();
        // 100 KB of pseudo-random bytes, and the same made of JSON punctuation only.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        cases.push((0..100_000).map(|_| next() as u8).collect());
        let punct = b"[]{},:\"\\ 1\n";
        cases.push(
            (0..100_000)
                .map(|_| punct[next() as usize % punct.len()])
                .collect(),
        );
        for data in &cases {
            check_reader_invariants(data);
            let (_, diags) = collect("bad", data);
            assert!(
                diags.len() <= MAX_BAD_RUN + 2,
                "{} diagnostics",
                diags.len()
            );
        }
    }

    #[test]
    fn cloud_logging_entries_of_other_logs_are_one_notice_and_never_abandon_the_file() {
        // `gcloud logging read` without a filter: an application's log lines, more
        // than a run of unreadable records may hold, then an audit entry.
        let mut text = String::new();
        for i in 0..MAX_BAD_RUN + 500 {
            let payload = if i % 2 == 0 {
                r#""jsonPayload":{"msg":"GET /healthz 200"}"#
            } else {
                r#""textPayload":"worker started""#
            };
            let log = if i % 3 == 0 { "app%2Fweb" } else { "stdout" };
            text.push_str(&format!(
                r#"{{"insertId":"a{i}","logName":"projects/p/logs/{log}","resource":{{"type":"k8s_container"}},"timestamp":"2024-03-01T00:00:00Z",{payload}}}"#
            ));
            text.push('\n');
        }
        text.push_str(r#"{"insertId":"z","logName":"projects/p/logs/cloudaudit.googleapis.com%2Factivity","protoPayload":{"methodName":"SetIamPolicy","serviceName":"cloudresourcemanager.googleapis.com","authenticationInfo":{"principalEmail":"a@corp.example"}},"timestamp":"2024-03-01T00:00:01Z"}"#);
        text.push('\n');
        let (evs, diags) = collect("gcloud.json", text.as_bytes());
        assert_eq!(evs.len(), 1, "{diags:?}");
        assert_eq!(evs[0].event_name(), "SetIamPolicy");
        assert_eq!(diags.len(), 1, "{diags:?}");
        let d = &diags[0];
        assert_eq!(d.kind, kinds::NOT_AUDIT_LOG);
        assert!(!d.is_error);
        assert_eq!(d.subject, "gcloud.json");
        assert!(
            d.message
                .starts_with(&format!("{} Cloud Logging entries", MAX_BAD_RUN + 500)),
            "{}",
            d.message
        );
        assert!(d.message.contains("(app/web, stdout)"), "{}", d.message);
    }

    #[test]
    fn a_run_of_unreadable_records_abandons_the_file_and_says_so() {
        let mut text = format!("[{R1},");
        for _ in 0..MAX_BAD_RUN + 50 {
            text.push_str("7,");
        }
        text.push_str(R2);
        text.push(']');
        let (evs, d) = collect("noise.json", text.as_bytes());
        assert_eq!(evs.len(), 1);
        assert_eq!(d.len(), MAX_BAD_RUN + 1);
        let last = d.last().unwrap();
        assert_eq!(last.kind, kinds::NOT_A_LOG);
        assert_eq!(last.subject, "noise.json");
        // Bad records between good ones never add up to it.
        let mut text = String::from("[");
        for _ in 0..MAX_BAD_RUN + 50 {
            text.push_str(&format!("7,{R1},"));
        }
        text.push_str(R2);
        text.push(']');
        let (evs, d) = collect("mixed.json", text.as_bytes());
        assert_eq!((evs.len(), d.len()), (MAX_BAD_RUN + 51, MAX_BAD_RUN + 50));
    }

    #[test]
    fn an_overlong_ndjson_line_is_skipped_without_keeping_it() {
        let long = format!(
            "{R1}\n{{\"x\":\"{}\"}}\n{R2}\n",
            "a".repeat(MAX_RECORD_BYTES as usize + 10)
        );
        let (evs, d) = collect("long.ndjson", long.as_bytes());
        assert_eq!(evs.len(), 2, "{d:?}");
        assert_eq!(d.len(), 1);
        assert_eq!(
            (d[0].kind.as_str(), d[0].line),
            (kinds::INVALID_RECORD, Some(2))
        );
    }

    #[test]
    fn a_bad_file_in_a_directory_does_not_stop_the_others() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a-bad.json"), "[}").unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, b"{\"Records\":[}").unwrap();
        std::fs::write(dir.path().join("b-bad.json.gz"), gz.finish().unwrap()).unwrap();
        std::fs::write(dir.path().join("c-good.json"), format!("[{R1},{R2}]")).unwrap();
        let items: Vec<ReadItem> = DirRecords::new(dir.path()).take(100).collect();
        assert_eq!(items.iter().filter(|r| r.is_ok()).count(), 2);
        let bad: Vec<&Diagnostic> = items.iter().filter_map(|r| r.as_ref().err()).collect();
        assert!(
            bad.iter().any(|d| d.subject.ends_with("a-bad.json")),
            "{bad:?}"
        );
        assert!(
            bad.iter().any(|d| d.subject.ends_with("b-bad.json.gz")),
            "{bad:?}"
        );
        assert!(items.len() < 10, "{items:?}");
    }

    #[test]
    fn time_prefixes_are_stripped_only_before_an_object() {
        let rec = br#"{"a":1}"#;
        assert_eq!(
            strip_time_prefix(b"2024-05-01T10:00:00.000Z {\"a\":1}"),
            rec
        );
        assert_eq!(strip_time_prefix(b"2024-05-01T10:00:00Z\t{\"a\":1}"), rec);
        for same in [
            &b"2024 was a year {x}"[..],
            b"2024-05-01T10:00:00Z text",
            b"{\"a\":1}",
            b"12",
        ] {
            assert_eq!(strip_time_prefix(same), same);
        }
    }

    #[test]
    fn utf8_partial_tails() {
        let s = "a€𝄞".as_bytes();
        assert_eq!(utf8_partial_tail(s), 0);
        assert_eq!(utf8_partial_tail(&s[..s.len() - 1]), 3);
        assert_eq!(utf8_partial_tail(&s[..s.len() - 3]), 1);
        assert_eq!(utf8_partial_tail(&s[..2]), 1);
        assert_eq!(utf8_partial_tail(b""), 0);
        assert_eq!(utf8_partial_tail(b"\xff"), 0);
    }

    #[test]
    fn truncated_gzip_keeps_complete_records() {
        use std::io::Write;
        let body = format!(r#"{{"Records":[{R1},{R2},{R1},{R2}]}}"#).repeat(1);
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(body.as_bytes()).unwrap();
        let gz = enc.finish().unwrap();
        let (evs, d) = collect("ok.json.gz", &gz);
        assert_eq!((evs.len(), d.len()), (4, 0));
        let cut = &gz[..gz.len() - 12];
        let (evs, d) = collect("cut.json.gz", cut);
        assert!(evs.len() <= 4);
        assert!(
            d.iter()
                .any(|d| d.kind == kinds::TRUNCATED && d.subject == "cut.json.gz"),
            "{d:?}"
        );
        let (evs, d) = collect("half.json", &body.as_bytes()[..body.len() / 2]);
        assert!(!evs.is_empty() && evs.len() < 4);
        assert_eq!(d.last().unwrap().kind, kinds::TRUNCATED);
    }

    #[test]
    fn parallel_reading_gives_the_same_items_in_the_same_order() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let mk = |t: &str, id: &str| format!(r#"{{"eventTime":"{t}","eventID":"{id}"}}"#);
        let mut files = Vec::new();
        for f in 0..9 {
            let mut recs = Vec::new();
            for r in 0..7 {
                // Overlapping files, equal times across files, a bad record in some.
                recs.push(mk(
                    &format!("2024-01-01T00:{:02}:{:02}Z", f / 3, r * 5),
                    &format!("{f}-{r}"),
                ));
                if f % 4 == 1 && r == 3 {
                    recs.push("{\"eventTime\": tru}".into());
                }
            }
            let body = format!("{{\"Records\":[{}]}}", recs.join(","));
            let name = format!("1_CloudTrail_x_2024010{}T0000Z_{f}.json", 1 + f % 2);
            let path = dir.path().join(&name);
            if f % 2 == 0 {
                let mut enc =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                enc.write_all(body.as_bytes()).unwrap();
                std::fs::write(path.with_extension("json.gz"), enc.finish().unwrap()).unwrap();
                files.push(path.with_extension("json.gz"));
            } else {
                std::fs::write(&path, body).unwrap();
                files.push(path);
            }
        }
        files.push(dir.path().join("missing.json"));
        std::fs::write(dir.path().join("cut.json"), "[{\"eventTime\":").unwrap();
        files.push(dir.path().join("cut.json"));
        let show = |it: ReadItem| match it {
            Ok(e) => format!("{} {}", e.time_ms, e.event_id()),
            Err(d) => format!("{} {} {:?}", d.kind, d.subject, d.line),
        };
        let seq: Vec<String> = DirRecords::from_files(files.clone(), Vec::new())
            .map(show)
            .collect();
        assert!(seq.len() > 63, "{seq:?}");
        for (workers, max_items) in [(1, 1000), (2, 3), (3, 1)] {
            let mut d = DirRecords::from_files(files.clone(), Vec::new());
            d.prefetch = Some(Prefetch::start(d.inputs.clone(), workers, max_items, None));
            let par: Vec<String> = d.map(show).collect();
            assert_eq!(par, seq, "{workers} workers, {max_items} items ahead");
        }
        // The same files as objects of a fetcher: the same items in the same order.
        struct Disk(Mutex<Vec<LogObject>>);
        impl Fetch for Disk {
            fn plan(&self, objects: &[LogObject]) {
                *self.0.lock().unwrap() = objects.to_vec();
            }
            fn open(&self, idx: usize) -> Result<Box<dyn Read + Send>, String> {
                let name = self.0.lock().unwrap()[idx].name.clone();
                File::open(&name)
                    .map(|f| Box::new(f) as Box<dyn Read + Send>)
                    .map_err(|e| e.to_string())
            }
        }
        let objects: Vec<LogObject> = files
            .iter()
            .rev()
            .map(|p| LogObject {
                name: p.display().to_string(),
                size: std::fs::metadata(p).map_or(0, |m| m.len()),
            })
            .collect();
        for workers in [0, 1, 3] {
            let fetch = Arc::new(Disk(Mutex::new(Vec::new())));
            let got: Vec<String> =
                DirRecords::from_objects(objects.clone(), fetch, Vec::new(), workers, None)
                    .map(show)
                    .collect();
            assert_eq!(got, seq, "objects, {workers} workers");
        }
    }

    #[test]
    fn key_time_from_cloudtrail_names() {
        let p = Path::new(
            "AWSLogs/1/CloudTrail/eu-west-1/2024/01/02/1_CloudTrail_eu-west-1_20240102T0105Z_abc.json.gz",
        );
        assert_eq!(key_time(p), parse_rfc3339_ms("2024-01-02T01:05:00Z"));
        assert_eq!(
            key_time(Path::new("x/2024/01/02/f.json")),
            parse_rfc3339_ms("2024-01-02T00:00:00Z")
        );
    }

    #[test]
    fn directory_merge_is_in_event_time_order() {
        let dir = tempfile::tempdir().unwrap();
        let mk = |t: &str, id: &str| format!(r#"{{"eventTime":"{t}","eventID":"{id}"}}"#);
        std::fs::write(
            dir.path().join("b.json"),
            format!(
                "[{},{}]",
                mk("2024-01-01T00:00:02Z", "b1"),
                mk("2024-01-01T00:00:05Z", "b2")
            ),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("a.json"),
            format!(
                "[{},{}]",
                mk("2024-01-01T00:00:01Z", "a1"),
                mk("2024-01-01T00:00:03Z", "a2")
            ),
        )
        .unwrap();
        std::fs::write(dir.path().join("c.json"), "[{\"eventTime\":").unwrap();
        let items: Vec<ReadItem> = read_path(dir.path()).collect();
        let ids: Vec<String> = items
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .map(|e| e.event_id().to_string())
            .collect();
        assert_eq!(ids, ["a1", "b1", "a2", "b2"]);
        assert!(
            items
                .iter()
                .any(|r| matches!(r, Err(d) if d.subject.ends_with("c.json")))
        );
    }
}

//! CloudTrail logs read where they are: `s3://bucket/prefix` targets of
//! `keytrail detect`.
//!
//! Listing follows the CloudTrail layout
//! `[prefix/]AWSLogs/[o-org/]ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/` one level at a
//! time (ListObjectsV2 with the delimiter `/`), never the whole bucket: below an
//! account only the `CloudTrail*` folders are listed (not `CloudTrail-Digest`, not
//! other services' logs), and a date folder whose days cannot hold events of the
//! time range (`--since`/`--until`) is not listed at all.
//!
//! Reading ([`S3Fetch`]): objects are downloaded ahead of the merge in its order, at
//! most [`IN_FLIGHT`] requests at once and [`BUFFER_BYTES`] downloaded but not yet
//! parsed; objects larger than [`STREAM_ABOVE`] are streamed as they are parsed
//! instead, so memory never grows with an object's size. The SDK retries throttling
//! and transient errors; every failure is a message naming the object's URI.

use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, Condvar, Mutex};

use aws_sdk_s3::Client;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use keytrail_detect::engine::TimeRange;
use keytrail_detect::reader::{Fetch, LogObject, is_log_name, kinds};
use keytrail_types::Diagnostic;
use tokio::runtime::Runtime;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;

/// Requests in flight at once (listing or downloading).
pub const IN_FLIGHT: usize = 16;
/// Bytes downloaded ahead of the merge (an object larger than this is downloaded
/// alone when nothing else waits).
pub const BUFFER_BYTES: u64 = 64 << 20;
/// Objects larger than this are streamed while they are parsed, not downloaded ahead.
pub const STREAM_ABOVE: u64 = 16 << 20;
/// Folder levels listed below a target at most (the CloudTrail layout has nine).
const MAX_DEPTH: usize = 16;

/// A `s3://bucket/prefix` target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Uri {
    /// Bucket name.
    pub bucket: String,
    /// Key prefix (may be empty, a folder ending in `/`, or one object's key).
    pub prefix: String,
}

impl S3Uri {
    /// Parses `s3://bucket[/prefix]`; `None` when `s` is not an `s3://` URI, an
    /// error when it is one without a bucket.
    pub fn parse(s: &str) -> Option<Result<S3Uri, String>> {
        let rest = s.strip_prefix("s3://")?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Some(Err(format!("`{s}` names no bucket (s3://BUCKET/PREFIX)")));
        }
        Some(Ok(S3Uri {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        }))
    }

    fn uri(bucket: &str, key: &str) -> String {
        format!("s3://{bucket}/{key}")
    }
}

/// What listing the targets found.
#[derive(Debug, Default)]
pub struct Listing {
    /// The log objects, named by URI, in listing order.
    pub objects: Vec<LogObject>,
    /// Problems met (prefixes that could not be listed), naming their URI.
    pub diagnostics: Vec<Diagnostic>,
    /// Targets (as given) that could not be listed at all, or hold nothing.
    pub failed: Vec<String>,
    /// ListObjectsV2 requests made.
    pub requests: u64,
    /// Date folders not listed because they are outside the time range.
    pub pruned: u64,
}

/// The S3 side of `keytrail detect s3://…`: an SDK client and its runtime.
pub struct S3Logs {
    rt: Arc<Runtime>,
    config: aws_config::SdkConfig,
}

impl S3Logs {
    /// Loads the AWS configuration (credentials and region from the usual chain,
    /// `AWS_ENDPOINT_URL` honoured).
    pub fn connect() -> Result<S3Logs, String> {
        S3Logs::connect_to(None)
    }

    /// [`S3Logs::connect`] to `endpoint` when given (an S3-compatible store or an
    /// emulator; `keytrail worker --s3-endpoint`).
    pub fn connect_to(endpoint: Option<&str>) -> Result<S3Logs, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the async runtime: {e}"))?;
        let config = rt.block_on(crate::sdk::load_config(None, endpoint));
        Ok(S3Logs {
            rt: Arc::new(rt),
            config,
        })
    }

    /// Lists the log objects of `targets` (as given on the command line) in the
    /// CloudTrail layout, skipping the date folders outside `range`.
    pub fn list(&self, targets: &[String], range: TimeRange) -> Listing {
        self.rt.block_on(list_all(&self.config, targets, range))
    }

    /// A fetcher for objects found by [`S3Logs::list`].
    pub fn fetcher(&self) -> Arc<S3Fetch> {
        Arc::new(S3Fetch {
            rt: self.rt.clone(),
            config: self.config.clone(),
            shared: Arc::new(FetchShared {
                st: Mutex::new(FetchState::default()),
                cv: Condvar::new(),
                room: Notify::new(),
            }),
            clients: Mutex::new(HashMap::new()),
            driver: Mutex::new(None),
        })
    }
}

/// A client for `bucket`'s own region: HeadBucket answers a request to another
/// region with the bucket's region in `x-amz-bucket-region`.
pub(crate) async fn bucket_client(config: &aws_config::SdkConfig, bucket: &str) -> Client {
    let client = crate::sdk::s3_client(config, None);
    if let Err(SdkError::ServiceError(e)) = client.head_bucket().bucket(bucket).send().await
        && let Some(region) = e.raw().headers().get("x-amz-bucket-region")
        && config.region().is_none_or(|r| r.as_ref() != region)
    {
        return crate::sdk::s3_client(config, Some(region));
    }
    client
}

/// `op failed: Code: message`, or the whole error chain when there is no code.
pub(crate) fn describe<E>(op: &str, err: &SdkError<E>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match err.code() {
        Some(code) => format!(
            "{op} failed: {code}: {}",
            err.message().unwrap_or("no message")
        ),
        None => format!("{op} failed: {}", DisplayErrorContext(err)),
    }
}

/// The span of delivery times `[from, to)` of a date folder of the CloudTrail
/// layout (`…/CloudTrail*/REGION/YYYY[/MM[/DD]]/`), from its key prefix.
fn date_span(prefix: &str) -> Option<(i64, i64)> {
    let comps: Vec<&str> = prefix.trim_end_matches('/').split('/').collect();
    let ct = comps.iter().rposition(|c| c.starts_with("CloudTrail"))?;
    let date = comps.get(ct + 2..)?;
    let num = |s: &str, n: usize| {
        (s.len() == n && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u32>().ok())
            .flatten()
    };
    let at = |y: u32, m: u32, d: u32| {
        keytrail_detect::time::parse_rfc3339_ms(&format!("{y:04}-{m:02}-{d:02}T00:00:00Z"))
    };
    const DAY: i64 = 86_400_000;
    match date {
        [y] => {
            let y = num(y, 4)?;
            Some((at(y, 1, 1)?, at(y + 1, 1, 1)?))
        }
        [y, m] => {
            let (y, m) = (num(y, 4)?, num(m, 2)?);
            let next = if m >= 12 {
                at(y + 1, 1, 1)
            } else {
                at(y, m + 1, 1)
            };
            Some((at(y, m, 1)?, next?))
        }
        [y, m, d] => {
            let from = at(num(y, 4)?, num(m, 2)?, num(d, 2)?)?;
            Some((from, from + DAY))
        }
        _ => None,
    }
}

/// Whether a folder is worth listing: not `CloudTrail-Digest` or hidden, only the
/// `CloudTrail*` folders below an account of `AWSLogs/`, and dates in the range.
/// `Err(())` for a date folder outside the range.
fn wanted_folder(prefix: &str, range: &TimeRange) -> Result<bool, ()> {
    let comps: Vec<&str> = prefix.trim_end_matches('/').split('/').collect();
    let Some(last) = comps.last() else {
        return Ok(true);
    };
    if last.starts_with('.') || *last == "CloudTrail-Digest" {
        return Ok(false);
    }
    // AWSLogs/[o-org/]ACCOUNT/<service>: only CloudTrail's folders.
    if let Some(i) = comps.iter().rposition(|c| *c == "AWSLogs") {
        let mut j = i + 1;
        if comps.get(j).is_some_and(|c| c.starts_with("o-")) {
            j += 1;
        }
        let account = comps
            .get(j)
            .is_some_and(|c| c.len() == 12 && c.bytes().all(|b| b.is_ascii_digit()));
        if account && comps.len() == j + 2 && !last.starts_with("CloudTrail") {
            return Ok(false);
        }
    }
    match date_span(prefix) {
        Some((from, to)) if !range.may_hold_span(from, to) => Err(()),
        _ => Ok(true),
    }
}

/// What one ListObjectsV2 walk over a folder found.
#[derive(Default)]
struct Level {
    objects: Vec<LogObject>,
    folders: Vec<String>,
    requests: u64,
    pruned: u64,
    error: Option<String>,
}

/// Lists one folder (`prefix` ends with `/` or is empty) with the delimiter `/`;
/// with `exact`, the prefix is a key or a folder name without its slash.
async fn list_level(
    client: Client,
    bucket: String,
    prefix: String,
    exact: bool,
    range: TimeRange,
) -> Level {
    let mut lv = Level::default();
    let mut pages = client
        .list_objects_v2()
        .bucket(&bucket)
        .prefix(&prefix)
        .delimiter("/")
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        lv.requests += 1;
        let page = match page {
            Ok(p) => p,
            Err(e) => {
                lv.error = Some(describe("ListObjectsV2", &e));
                return lv;
            }
        };
        for o in page.contents() {
            let Some(key) = o.key() else { continue };
            let name = key.rsplit('/').next().unwrap_or(key);
            let keep = if exact {
                key == prefix
            } else {
                is_log_name(name)
            };
            if keep {
                lv.objects.push(LogObject {
                    name: S3Uri::uri(&bucket, key),
                    size: o.size().unwrap_or(0).max(0) as u64,
                });
            }
        }
        for cp in page.common_prefixes() {
            let Some(p) = cp.prefix() else { continue };
            if exact && p != format!("{prefix}/") {
                continue;
            }
            match wanted_folder(p, &range) {
                Ok(true) => lv.folders.push(p.to_string()),
                Ok(false) => {}
                Err(()) => lv.pruned += 1,
            }
        }
    }
    lv
}

async fn list_all(config: &aws_config::SdkConfig, targets: &[String], range: TimeRange) -> Listing {
    let mut out = Listing::default();
    for t in targets {
        let uri = match S3Uri::parse(t) {
            Some(Ok(u)) => u,
            Some(Err(e)) => {
                out.diagnostics
                    .push(Diagnostic::error(kinds::UNREADABLE, t.clone(), e));
                out.failed.push(t.clone());
                continue;
            }
            None => continue,
        };
        let client = bucket_client(config, &uri.bucket).await;
        let exact = !(uri.prefix.is_empty() || uri.prefix.ends_with('/'));
        let first = list_level(
            client.clone(),
            uri.bucket.clone(),
            uri.prefix.clone(),
            exact,
            range,
        )
        .await;
        out.requests += first.requests;
        if let Some(e) = first.error {
            out.diagnostics
                .push(Diagnostic::error(kinds::UNREADABLE, t.clone(), e));
            out.failed.push(t.clone());
            continue;
        }
        if first.objects.is_empty() && first.folders.is_empty() && first.pruned == 0 {
            out.diagnostics.push(Diagnostic::error(
                kinds::UNREADABLE,
                t.clone(),
                "no log object or folder under this prefix",
            ));
            out.failed.push(t.clone());
            continue;
        }
        out.pruned += first.pruned;
        out.objects.extend(first.objects);
        // Breadth-first over the folders, IN_FLIGHT listings at a time.
        let mut todo: Vec<(String, usize)> = first.folders.into_iter().map(|f| (f, 1)).collect();
        let mut set = JoinSet::new();
        loop {
            while set.len() < IN_FLIGHT
                && let Some((folder, depth)) = todo.pop()
            {
                if depth > MAX_DEPTH {
                    out.diagnostics.push(Diagnostic::error(
                        "too_deep",
                        S3Uri::uri(&uri.bucket, &folder),
                        format!("more than {MAX_DEPTH} folder levels below the target; not listed"),
                    ));
                    continue;
                }
                let (c, b) = (client.clone(), uri.bucket.clone());
                set.spawn(async move {
                    let lv = list_level(c, b, folder.clone(), false, range).await;
                    (folder, depth, lv)
                });
            }
            let Some(done) = set.join_next().await else {
                break;
            };
            let Ok((folder, depth, lv)) = done else {
                continue;
            };
            out.requests += lv.requests;
            out.pruned += lv.pruned;
            if let Some(e) = lv.error {
                out.diagnostics.push(Diagnostic::error(
                    kinds::UNREADABLE,
                    S3Uri::uri(&uri.bucket, &folder),
                    e,
                ));
            }
            out.objects.extend(lv.objects);
            todo.extend(lv.folders.into_iter().map(|f| (f, depth + 1)));
        }
    }
    out
}

/// One planned object.
struct Planned {
    bucket: String,
    key: String,
    size: u64,
}

#[derive(Default)]
struct FetchState {
    plan: Arc<Vec<Planned>>,
    /// Downloaded objects (or why not) waiting to be opened.
    done: HashMap<usize, Result<Vec<u8>, String>>,
    /// Bytes in flight or downloaded and not yet opened.
    buffered: u64,
    stop: bool,
}

struct FetchShared {
    st: Mutex<FetchState>,
    cv: Condvar,
    /// Signalled when an opened object frees buffer room.
    room: Notify,
}

/// Downloads the objects of a merge ahead of it (see the module documentation).
pub struct S3Fetch {
    rt: Arc<Runtime>,
    config: aws_config::SdkConfig,
    shared: Arc<FetchShared>,
    /// A client per bucket (in the bucket's region).
    clients: Mutex<HashMap<String, Client>>,
    driver: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl S3Fetch {
    fn client(&self, bucket: &str) -> Client {
        let mut c = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(cl) = c.get(bucket) {
            return cl.clone();
        }
        let cl = self.rt.block_on(bucket_client(&self.config, bucket));
        c.insert(bucket.to_string(), cl.clone());
        cl
    }
}

/// Downloads one object whole, up to `size` bytes (its listed size); the SDK
/// retries the request, a body cut short is fetched again (three attempts).
async fn download(client: &Client, p: &Planned) -> Result<Vec<u8>, String> {
    let mut last = String::new();
    for _ in 0..3 {
        let out = match client
            .get_object()
            .bucket(&p.bucket)
            .key(&p.key)
            .send()
            .await
        {
            Ok(o) => o,
            Err(e) => return Err(describe("GetObject", &e)),
        };
        let mut body = out.body;
        let mut buf = Vec::with_capacity(p.size as usize);
        let mut ok = true;
        while let Some(chunk) = body.next().await {
            match chunk {
                Ok(b) => {
                    if (buf.len() + b.len()) as u64 > p.size.max(STREAM_ABOVE) {
                        return Err(format!(
                            "object larger than its listed size ({} bytes): changed while read",
                            p.size
                        ));
                    }
                    buf.extend_from_slice(&b);
                }
                Err(e) => {
                    last = format!("GetObject body read failed: {}", DisplayErrorContext(&e));
                    ok = false;
                    break;
                }
            }
        }
        if ok {
            return Ok(buf);
        }
    }
    Err(last)
}

impl Fetch for S3Fetch {
    fn plan(&self, objects: &[LogObject]) {
        let plan: Vec<Planned> = objects
            .iter()
            .map(|o| {
                let (bucket, key) = o
                    .name
                    .strip_prefix("s3://")
                    .and_then(|r| r.split_once('/'))
                    .unwrap_or(("", &o.name));
                Planned {
                    bucket: bucket.to_string(),
                    key: key.to_string(),
                    size: o.size,
                }
            })
            .collect();
        let plan = Arc::new(plan);
        let mut buckets: Vec<&str> = plan.iter().map(|p| p.bucket.as_str()).collect();
        buckets.sort_unstable();
        buckets.dedup();
        let clients: HashMap<String, Client> = buckets
            .into_iter()
            .map(|b| (b.to_string(), self.client(b)))
            .collect();
        self.shared
            .st
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .plan = plan.clone();
        let shared = self.shared.clone();
        let rt = self.rt.clone();
        let driver = std::thread::spawn(move || {
            rt.block_on(async move {
                let sem = Arc::new(Semaphore::new(IN_FLIGHT));
                let mut set = JoinSet::new();
                for (idx, p) in plan.iter().enumerate() {
                    if p.size > STREAM_ABOVE {
                        continue;
                    }
                    loop {
                        {
                            let mut st = shared.st.lock().unwrap_or_else(|e| e.into_inner());
                            if st.stop {
                                return;
                            }
                            if st.buffered == 0 || st.buffered + p.size <= BUFFER_BYTES {
                                st.buffered += p.size;
                                break;
                            }
                        }
                        shared.room.notified().await;
                    }
                    let Ok(permit) = sem.clone().acquire_owned().await else {
                        return;
                    };
                    let client = clients.get(&p.bucket).cloned();
                    let plan = plan.clone();
                    let shared = shared.clone();
                    set.spawn(async move {
                        let res = match client {
                            Some(c) => download(&c, &plan[idx]).await,
                            None => Err("no client for the bucket".into()),
                        };
                        drop(permit);
                        let mut st = shared.st.lock().unwrap_or_else(|e| e.into_inner());
                        st.done.insert(idx, res);
                        shared.cv.notify_all();
                    });
                    // Reap finished tasks as we go.
                    while set.try_join_next().is_some() {}
                }
                while set.join_next().await.is_some() {}
            });
        });
        *self.driver.lock().unwrap_or_else(|e| e.into_inner()) = Some(driver);
    }

    fn open(&self, idx: usize) -> Result<Box<dyn Read + Send>, String> {
        let plan = self
            .shared
            .st
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .plan
            .clone();
        let p = plan.get(idx).ok_or("object not in the plan")?;
        if p.size > STREAM_ABOVE {
            let client = self.client(&p.bucket);
            let out = self
                .rt
                .block_on(client.get_object().bucket(&p.bucket).key(&p.key).send())
                .map_err(|e| describe("GetObject", &e))?;
            return Ok(Box::new(BodyReader {
                rt: self.rt.clone(),
                body: out.body,
                cur: Vec::new(),
                pos: 0,
            }));
        }
        let mut st = self.shared.st.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(r) = st.done.remove(&idx) {
                st.buffered -= p.size.min(st.buffered);
                drop(st);
                self.shared.room.notify_one();
                return r.map(|b| Box::new(std::io::Cursor::new(b)) as Box<dyn Read + Send>);
            }
            if st.stop {
                return Err("reading stopped".into());
            }
            st = self.shared.cv.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }
}

impl Drop for S3Fetch {
    fn drop(&mut self) {
        self.shared
            .st
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .stop = true;
        self.shared.room.notify_one();
        self.shared.cv.notify_all();
        if let Some(d) = self.driver.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = d.join();
        }
    }
}

/// A large object's body read as it is parsed.
struct BodyReader {
    rt: Arc<Runtime>,
    body: aws_sdk_s3::primitives::ByteStream,
    cur: Vec<u8>,
    pos: usize,
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pos >= self.cur.len() {
            match self.rt.block_on(self.body.next()) {
                None => return Ok(0),
                Some(Ok(b)) => {
                    self.cur.clear();
                    self.cur.extend_from_slice(&b);
                    self.pos = 0;
                }
                Some(Err(e)) => {
                    return Err(std::io::Error::other(format!(
                        "GetObject body read failed: {}",
                        DisplayErrorContext(&e)
                    )));
                }
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

//! `keytrail scan --s3 s3://bucket/prefix`: every object under a prefix,
//! listed page by page (ListObjectsV2), downloaded one at a time and handed
//! to the file content pipeline of `keytrail-input` (archives opened,
//! gzip decompressed, binary content read as its printable runs, exports
//! split into records), shown as `s3://bucket/key`. A single object can be
//! named with its version: `s3://bucket/key?versionId=ID`.
//!
//! An object is held in memory up to the in-memory limit of the file
//! walker and spilled to a private temporary file beyond it, so an object
//! of any size is scanned in bounded memory. Credentials and region come
//! from the AWS default chain; the endpoint from `--s3-endpoint` or
//! `AWS_ENDPOINT_URL`. The SDK retries throttling (`SlowDown`) and
//! transient errors; what still fails is a diagnostic naming the object's
//! URI. A target whose bucket cannot be listed at all (AccessDenied,
//! NoSuchBucket, a wrong endpoint), or under which nothing is found, fails
//! the target.

use std::io::{Cursor, Seek, Write};

use aws_sdk_s3::Client;
use keytrail_input::{BlobSink, FsOptions, Origin};
use keytrail_types::Diagnostic;

use crate::s3logs::{S3Uri, bucket_client, describe};

/// Diagnostic kind of an object or listing page that could not be read (error).
pub const UNREADABLE: &str = "unreadable";

/// A `--s3` target: a prefix, or one object at a version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Target {
    /// Bucket and key prefix.
    pub uri: S3Uri,
    /// `?versionId=` of one object.
    pub version_id: Option<String>,
}

impl S3Target {
    /// Parses `s3://bucket[/prefix][?versionId=ID]`.
    pub fn parse(s: &str) -> Result<S3Target, String> {
        let (base, version_id) = match s.split_once("?versionId=") {
            Some((b, v)) if !v.is_empty() => (b, Some(v.to_string())),
            Some(_) => return Err(format!("`{s}`: empty versionId")),
            None => (s, None),
        };
        let uri = S3Uri::parse(base)
            .unwrap_or_else(|| Err(format!("`{s}` is not an s3:// URI (s3://BUCKET/PREFIX)")))?;
        if version_id.is_some() && (uri.prefix.is_empty() || uri.prefix.ends_with('/')) {
            return Err(format!(
                "`{s}`: a versionId names one object (s3://BUCKET/KEY?versionId=ID)"
            ));
        }
        Ok(S3Target { uri, version_id })
    }
}

/// What scanning one target did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct S3ScanCount {
    /// Objects handed to the content pipeline.
    pub objects: u64,
    /// Bytes downloaded.
    pub bytes: u64,
    /// ListObjectsV2 pages read.
    pub pages: u64,
}

/// An SDK configuration and its runtime, for `--s3` targets.
pub struct S3Scan {
    rt: tokio::runtime::Runtime,
    config: aws_config::SdkConfig,
}

impl S3Scan {
    /// Loads the AWS configuration (default credential chain; `endpoint`
    /// overrides the SDK's resolution, which honours `AWS_ENDPOINT_URL`).
    pub fn connect(endpoint: Option<&str>) -> Result<S3Scan, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the async runtime: {e}"))?;
        let config = rt.block_on(crate::sdk::load_config(None, endpoint));
        Ok(S3Scan { rt, config })
    }

    /// Scans `target` into `sink`. `Err` (the target's message) when nothing
    /// could be read at all: the bucket cannot be listed, or holds nothing
    /// under the prefix; failures of single objects or later listing pages
    /// are diagnostics on the sink and the scan goes on.
    pub fn scan(
        &self,
        target: &str,
        opts: &FsOptions,
        sink: &dyn BlobSink,
    ) -> Result<S3ScanCount, String> {
        let t = S3Target::parse(target)?;
        let client = self.rt.block_on(bucket_client(&self.config, &t.uri.bucket));
        let mut count = S3ScanCount::default();
        let bucket = t.uri.bucket.as_str();
        if let Some(version) = &t.version_id {
            let name = target.to_string();
            self.object(
                &client,
                bucket,
                &t.uri.prefix,
                Some(version),
                &name,
                opts,
                sink,
                &mut count,
            )?;
            return Ok(count);
        }
        let mut pages = client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(&t.uri.prefix)
            .into_paginator()
            .send();
        let mut listed = 0u64;
        loop {
            let page = match self.rt.block_on(pages.next()) {
                None => break,
                Some(Ok(p)) => p,
                Some(Err(e)) => {
                    let msg = describe("ListObjectsV2", &e);
                    if count.pages == 0 {
                        return Err(msg);
                    }
                    sink.diagnostic(Diagnostic::error(
                        UNREADABLE,
                        target,
                        format!(
                            "{msg} after {listed} objects; the rest of the listing is not scanned"
                        ),
                    ));
                    break;
                }
            };
            count.pages += 1;
            for o in page.contents() {
                let Some(key) = o.key() else { continue };
                if key.ends_with('/') && o.size().unwrap_or(0) == 0 {
                    continue; // a console "folder" marker
                }
                listed += 1;
                let name = format!("s3://{bucket}/{key}");
                if let Err(e) =
                    self.object(&client, bucket, key, None, &name, opts, sink, &mut count)
                {
                    sink.diagnostic(Diagnostic::error(UNREADABLE, name, e));
                }
            }
        }
        if listed == 0 {
            return Err("no objects under this prefix".into());
        }
        Ok(count)
    }

    /// Downloads one object (spilling past the in-memory limit) and hands
    /// it to the content pipeline as `name`.
    #[allow(clippy::too_many_arguments)]
    fn object(
        &self,
        client: &Client,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        name: &str,
        opts: &FsOptions,
        sink: &dyn BlobSink,
        count: &mut S3ScanCount,
    ) -> Result<(), String> {
        let body = self.rt.block_on(async {
            let mut req = client.get_object().bucket(bucket).key(key);
            if let Some(v) = version {
                req = req.version_id(v);
            }
            let out = req.send().await.map_err(|e| describe("GetObject", &e))?;
            let mut body = out.body;
            let mut held = Held::Mem(Vec::new());
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| {
                    format!(
                        "GetObject body read failed after {} bytes: {}",
                        held.len(),
                        aws_sdk_s3::error::DisplayErrorContext(&e)
                    )
                })?;
                held.push(&chunk, opts.max_in_memory)
                    .map_err(|e| format!("cannot spill to a temporary file: {e}"))?;
            }
            Ok::<Held, String>(held)
        })?;
        count.objects += 1;
        count.bytes += body.len();
        match body {
            Held::Mem(v) => {
                keytrail_input::scan_reader(Cursor::new(v), name, Origin::File, opts, sink)
            }
            Held::Spilled(mut f, _) => {
                f.rewind()
                    .map_err(|e| format!("cannot read back the spilled object: {e}"))?;
                keytrail_input::scan_reader(
                    std::io::BufReader::new(f),
                    name,
                    Origin::File,
                    opts,
                    sink,
                );
            }
        }
        Ok(())
    }
}

/// An object being downloaded: in memory, or in a private temporary file
/// (deleted when dropped) once it outgrows the in-memory limit.
enum Held {
    Mem(Vec<u8>),
    Spilled(std::fs::File, u64),
}

impl Held {
    fn len(&self) -> u64 {
        match self {
            Held::Mem(v) => v.len() as u64,
            Held::Spilled(_, n) => *n,
        }
    }

    fn push(&mut self, bytes: &[u8], max_in_memory: u64) -> std::io::Result<()> {
        if let Held::Mem(v) = self
            && (v.len() + bytes.len()) as u64 > max_in_memory
        {
            let mut f = tempfile::tempfile()?;
            f.write_all(v)?;
            *self = Held::Spilled(f, v.len() as u64);
        }
        match self {
            Held::Mem(v) => v.extend_from_slice(bytes),
            Held::Spilled(f, n) => {
                f.write_all(bytes)?;
                *n += bytes.len() as u64;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t = S3Target::parse("s3://b/logs/").unwrap();
        assert_eq!(
            (t.uri.bucket.as_str(), t.uri.prefix.as_str()),
            ("b", "logs/")
        );
        let t = S3Target::parse("s3://b/k.env?versionId=abc").unwrap();
        assert_eq!(
            (t.uri.prefix.as_str(), t.version_id.as_deref()),
            ("k.env", Some("abc"))
        );
        assert!(S3Target::parse("s3://b/?versionId=abc").is_err());
        assert!(S3Target::parse("s3:///x").is_err());
        assert!(S3Target::parse("b/x").is_err());
    }
}

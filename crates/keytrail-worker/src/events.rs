//! The routed events of distributed detection runs (`keytrail submit
//! detect`): a JetStream stream with limits retention (`KEYTRAIL_EVENTS`,
//! subjects `keytrail.events.RUN.STAGE.PARTITION`, file storage, kept 7 days
//! at most), where route jobs put each partition's share of every log file
//! and partitions put what they hand to the key stage. A share is one or more
//! messages of gzip-compressed records, one per line, named by the log in
//! headers; the job that reads a partition's shares purges them once its
//! step is recorded.
//!
//! A share published twice (a route job that ran again after a crash) is
//! dropped by JetStream within the duplicate window (its message id is the
//! run, partition, log and chunk) and, past the window, by the reader, which
//! keeps the first copy of each log's chunk.
//!
//! The API is blocking (the runner of a job runs on a blocking thread): the
//! bus drives its own small runtime.

use crate::queue::{QueueConfig, QueueError};
use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;
use futures_util::StreamExt;
use std::io::Write;
use std::time::Duration;

/// Records per message at most, in bytes before compression: a share is cut
/// at line ends into chunks of this size, each compressed on its own, so that
/// a message stays far below the server's payload limit (1 MiB by default).
pub const CHUNK_BYTES: usize = 2 << 20;

/// How long routed events are kept at most (a run whose partitions never ran).
pub const EVENTS_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

/// Headers of a share's messages.
pub mod headers {
    /// The log file the records come from (the key stage: the partition).
    pub const LOG: &str = "Keytrail-Log";
    /// The time that orders the log in the merge (ms; `i64::MIN` for none).
    pub const KEY: &str = "Keytrail-Key";
    /// The chunk's position in the share (`0`, `1`…).
    pub const CHUNK: &str = "Keytrail-Chunk";
}

/// One chunk of a share as read back.
#[derive(Debug, Clone)]
pub struct Chunk {
    /// The log it comes from.
    pub log: String,
    /// Its merge key.
    pub key: i64,
    /// Its position in the log's share.
    pub chunk: u32,
    /// The records, gzip-compressed.
    pub data: Bytes,
}

/// A connection to the event stream.
pub struct EventBus {
    rt: tokio::runtime::Runtime,
    config: QueueConfig,
    js: jetstream::Context,
    client: async_nats::Client,
    /// Acknowledgements of published chunks not yet awaited, with their log.
    unconfirmed: std::sync::Mutex<Vec<(String, jetstream::context::PublishAckFuture)>>,
}

impl QueueConfig {
    /// The stream of routed events (`KEYTRAIL_EVENTS`).
    pub fn events_stream(&self) -> String {
        format!("{}_EVENTS", self.prefix.to_ascii_uppercase())
    }

    /// The subject of one partition's share of a run's stage
    /// (`keytrail.events.RUN.part.3`).
    pub fn events_subject(&self, run: &str, stage: &str, partition: u32) -> String {
        format!("{}.events.{run}.{stage}.{partition}", self.prefix)
    }
}

fn err(c: &QueueConfig, what: &str, e: impl std::fmt::Display) -> QueueError {
    format!("NATS server {}: {what}: {e}", c.url)
}

impl EventBus {
    /// Connects and makes sure the stream exists.
    pub fn connect(config: &QueueConfig, name: &str) -> Result<EventBus, QueueError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the runtime: {e}"))?;
        let (client, js) = rt.block_on(async {
            let client = async_nats::ConnectOptions::new()
                .name(name)
                .connection_timeout(config.connect_timeout)
                .connect(config.url.as_str())
                .await
                .map_err(|e| err(config, "cannot connect", e))?;
            let js = jetstream::new(client.clone());
            js.get_or_create_stream(stream::Config {
                name: config.events_stream(),
                description: Some("keytrail detection runs: log records routed by identity".into()),
                subjects: vec![format!("{}.events.>", config.prefix)],
                retention: stream::RetentionPolicy::Limits,
                storage: stream::StorageType::File,
                max_age: EVENTS_MAX_AGE,
                duplicate_window: config.duplicate_window,
                ..Default::default()
            })
            .await
            .map_err(|e| err(config, &format!("stream {}", config.events_stream()), e))?;
            Ok::<_, QueueError>((client, js))
        })?;
        Ok(EventBus {
            rt,
            config: config.clone(),
            js,
            client,
            unconfirmed: Default::default(),
        })
    }

    /// Publishes a partition's share of one log (`records`: one per line).
    /// Returns the messages published; [`EventBus::confirm`] waits until
    /// JetStream stored them (publishing many logs before confirming keeps
    /// the round trips off the critical path).
    pub fn publish(
        &self,
        run: &str,
        stage: &str,
        partition: u32,
        log: &str,
        key: i64,
        records: &[u8],
    ) -> Result<u32, QueueError> {
        let subject = self.config.events_subject(run, stage, partition);
        let chunks = split_lines(records, CHUNK_BYTES);
        let c = &self.config;
        self.rt.block_on(async {
            let mut acks = Vec::with_capacity(chunks.len());
            for (i, chunk) in chunks.iter().enumerate() {
                // Many unconfirmed chunks: confirm them first (bounded memory).
                if self.unconfirmed_len() >= 4096 {
                    self.confirm_async().await?;
                }
                let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                gz.write_all(chunk)
                    .map_err(|e| format!("compressing {log}: {e}"))?;
                let body = gz.finish().map_err(|e| format!("compressing {log}: {e}"))?;
                let mut h = async_nats::HeaderMap::new();
                h.insert(headers::LOG, header_value(log).as_str());
                h.insert(headers::KEY, key.to_string().as_str());
                h.insert(headers::CHUNK, i.to_string().as_str());
                let id = message_id(&subject, log, i);
                let ack = self
                    .js
                    .send_publish(
                        subject.clone(),
                        jetstream::message::PublishMessage::build()
                            .payload(Bytes::from(body))
                            .headers(h)
                            .message_id(id),
                    )
                    .await
                    .map_err(|e| err(c, &format!("publishing {log}"), e))?;
                acks.push((log.to_string(), ack));
            }
            self.unconfirmed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend(acks);
            Ok(chunks.len() as u32)
        })
    }

    fn unconfirmed_len(&self) -> usize {
        self.unconfirmed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    async fn confirm_async(&self) -> Result<(), QueueError> {
        let pending =
            std::mem::take(&mut *self.unconfirmed.lock().unwrap_or_else(|p| p.into_inner()));
        for (log, ack) in pending {
            ack.await
                .map_err(|e| err(&self.config, &format!("{log} not stored"), e))?;
        }
        Ok(())
    }

    /// Waits until JetStream stored every chunk published so far: a step
    /// records itself done only after this.
    pub fn confirm(&self) -> Result<(), QueueError> {
        self.rt.block_on(self.confirm_async())
    }

    /// The event stream.
    async fn stream(&self) -> Result<stream::Stream, QueueError> {
        let c = &self.config;
        self.js
            .get_stream(c.events_stream())
            .await
            .map_err(|e| err(c, &format!("stream {}", c.events_stream()), e))
    }

    /// Every chunk of a partition's share of a run's stage, the first copy of
    /// each (log, chunk), in the order they were stored.
    pub fn read(&self, run: &str, stage: &str, partition: u32) -> Result<Vec<Chunk>, QueueError> {
        let subject = self.config.events_subject(run, stage, partition);
        let c = &self.config;
        self.rt.block_on(async {
            let stream = self.stream().await?;
            let consumer: consumer::PullConsumer = stream
                .create_consumer(consumer::pull::Config {
                    filter_subject: subject.clone(),
                    deliver_policy: consumer::DeliverPolicy::All,
                    ack_policy: consumer::AckPolicy::None,
                    inactive_threshold: Duration::from_secs(120),
                    ..Default::default()
                })
                .await
                .map_err(|e| err(c, &format!("reading {subject}"), e))?;
            let mut consumer = consumer;
            let total = consumer
                .info()
                .await
                .map_err(|e| err(c, &format!("reading {subject}"), e))?
                .num_pending;
            let mut out = Vec::new();
            let mut seen = std::collections::HashSet::new();
            let mut got = 0u64;
            while got < total {
                let mut batch = consumer
                    .fetch()
                    .max_messages(256)
                    .messages()
                    .await
                    .map_err(|e| err(c, &format!("reading {subject}"), e))?;
                let mut any = false;
                while let Some(m) = batch.next().await {
                    let m = m.map_err(|e| err(c, &format!("reading {subject}"), e))?;
                    any = true;
                    got += 1;
                    let h = m.headers.clone().unwrap_or_default();
                    let get = |k: &str| h.get(k).map(|v| v.as_str().to_string());
                    let (Some(log), Some(key), Some(chunk)) =
                        (get(headers::LOG), get(headers::KEY), get(headers::CHUNK))
                    else {
                        return Err(format!(
                            "{subject}: a message without the headers of a share (not keytrail's?)"
                        ));
                    };
                    let key = key
                        .parse()
                        .map_err(|_| format!("{subject}: bad {} `{key}`", headers::KEY))?;
                    let chunk = chunk
                        .parse()
                        .map_err(|_| format!("{subject}: bad {} `{chunk}`", headers::CHUNK))?;
                    if seen.insert((log.clone(), chunk)) {
                        out.push(Chunk {
                            log,
                            key,
                            chunk,
                            data: m.payload.clone(),
                        });
                    }
                }
                if !any {
                    // Purged or expired while being read.
                    break;
                }
            }
            let _ = stream.delete_consumer(&consumer.cached_info().name).await;
            Ok(out)
        })
    }

    /// Deletes a partition's share of a run's stage (its step is recorded).
    pub fn purge(&self, run: &str, stage: &str, partition: u32) -> Result<(), QueueError> {
        let subject = self.config.events_subject(run, stage, partition);
        let c = &self.config;
        self.rt.block_on(async {
            let stream = self.stream().await?;
            stream
                .purge()
                .filter(subject.clone())
                .await
                .map_err(|e| err(c, &format!("purging {subject}"), e))?;
            Ok(())
        })
    }

    /// Messages in the event stream now (what is still to be read).
    pub fn pending(&self) -> Result<u64, QueueError> {
        let c = &self.config;
        self.rt.block_on(async {
            let mut stream = self.stream().await?;
            Ok(stream
                .info()
                .await
                .map_err(|e| err(c, &format!("stream {}", c.events_stream()), e))?
                .state
                .messages)
        })
    }
}

impl Drop for EventBus {
    fn drop(&mut self) {
        let client = self.client.clone();
        let _ = self.rt.block_on(async move { client.flush().await });
    }
}

/// `records` cut at line ends into pieces of at most `max` bytes (a longer
/// line is a piece of its own).
fn split_lines(records: &[u8], max: usize) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < records.len() {
        let mut end = (start + max).min(records.len());
        if end < records.len() {
            match records[start..end].iter().rposition(|b| *b == b'\n') {
                Some(i) => end = start + i + 1,
                None => {
                    end = records[start..]
                        .iter()
                        .position(|b| *b == b'\n')
                        .map_or(records.len(), |i| start + i + 1);
                }
            }
        }
        out.push(&records[start..end]);
        start = end;
    }
    if out.is_empty() {
        out.push(records);
    }
    out
}

/// A header value is one line of printable text.
fn header_value(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The message id of a chunk: the subject, the log and the chunk.
fn message_id(subject: &str, log: &str, chunk: usize) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(subject.as_bytes());
    h.update([0]);
    h.update(log.as_bytes());
    h.update([0]);
    h.update(chunk.to_le_bytes());
    let d = h.finalize();
    d[..16].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_cut_at_line_ends() {
        let text = b"aaaa\nbb\ncccccc\nd\n";
        let parts = split_lines(text, 8);
        assert_eq!(parts.concat(), text.to_vec());
        assert!(parts.iter().all(|p| p.ends_with(b"\n")));
        assert_eq!(parts[0], b"aaaa\nbb\n");
        // A line longer than the limit is a piece of its own.
        assert_eq!(parts[1], b"cccccc\n");
        assert_eq!(split_lines(b"", 8), vec![&b""[..]]);
        let no_end = split_lines(b"abcdefghijkl", 4);
        assert_eq!(no_end, vec![&b"abcdefghijkl"[..]]);
    }

    #[test]
    fn message_ids_differ_by_log_and_chunk() {
        let a = message_id("s", "log", 0);
        assert_eq!(a, message_id("s", "log", 0));
        assert_ne!(a, message_id("s", "log", 1));
        assert_ne!(a, message_id("s", "log2", 0));
        assert_ne!(a, message_id("t", "log", 0));
    }
}

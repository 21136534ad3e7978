//! The work queue on NATS JetStream: one work-queue stream of jobs
//! (file storage, so jobs survive a server restart; a duplicate window, so
//! a job published twice under its key is stored once), one durable pull
//! consumer shared by every worker (explicit acks, an ack wait that
//! running jobs extend with progress heartbeats, a bounded number of
//! deliveries), and a dead-letter stream for jobs that failed on their
//! last try, with the reason.

use crate::job::Job;
use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;
use std::time::Duration;

/// Where the queue is and how it behaves.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// The NATS server (`nats://127.0.0.1:4222`).
    pub url: String,
    /// Prefix of the stream, subject and consumer names (`keytrail`):
    /// two deployments on one server use two prefixes.
    pub prefix: String,
    /// How long a delivered job may go without an acknowledgement or a
    /// progress heartbeat before JetStream gives it to another worker.
    /// Set when the consumer is created (by the first worker).
    pub ack_wait: Duration,
    /// Deliveries of a job before it is dead-lettered. Set when the
    /// consumer is created.
    pub max_deliver: i64,
    /// How long JetStream remembers a job's key to drop a duplicate.
    pub duplicate_window: Duration,
    /// How long to wait for the server when connecting.
    pub connect_timeout: Duration,
}

impl QueueConfig {
    /// The defaults for `url`: prefix `keytrail`, ack wait 60 s, 5
    /// deliveries, a 10-minute duplicate window.
    pub fn new(url: &str) -> QueueConfig {
        QueueConfig {
            url: url.to_string(),
            prefix: "keytrail".into(),
            ack_wait: Duration::from_secs(60),
            max_deliver: 5,
            duplicate_window: Duration::from_secs(600),
            connect_timeout: Duration::from_secs(5),
        }
    }

    /// The stream of jobs (`KEYTRAIL_JOBS`).
    pub fn jobs_stream(&self) -> String {
        format!("{}_JOBS", self.prefix.to_ascii_uppercase())
    }

    /// The stream of dead letters (`KEYTRAIL_DEAD`).
    pub fn dead_stream(&self) -> String {
        format!("{}_DEAD", self.prefix.to_ascii_uppercase())
    }

    /// The subject of jobs of a kind (`keytrail.jobs.scan`).
    pub fn job_subject(&self, kind: &str) -> String {
        format!("{}.jobs.{kind}", self.prefix)
    }

    /// The dead-letter subject of a kind (`keytrail.dead.scan`).
    pub fn dead_subject(&self, kind: &str) -> String {
        format!("{}.dead.{kind}", self.prefix)
    }

    /// The workers' durable consumer (`keytrail-workers`).
    pub fn consumer(&self) -> String {
        format!("{}-workers", self.prefix)
    }
}

/// A queue error: what failed, naming the server.
pub type QueueError = String;

/// An open queue: the connection and the streams, created when absent.
#[derive(Clone)]
pub struct Queue {
    pub(crate) config: QueueConfig,
    pub(crate) js: jetstream::Context,
    pub(crate) client: async_nats::Client,
}

/// What publishing a job did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The stream sequence of the job's message.
    pub sequence: u64,
    /// JetStream had a message with this key already (within the
    /// duplicate window) and stored nothing.
    pub duplicate: bool,
}

/// Headers of a dead letter (its body is the job's message as it was).
pub mod dead_headers {
    /// The job's key.
    pub const JOB: &str = "Keytrail-Job";
    /// Why its last try failed.
    pub const ERROR: &str = "Keytrail-Error";
    /// How many times it was delivered.
    pub const ATTEMPTS: &str = "Keytrail-Attempts";
    /// The worker of the last try.
    pub const WORKER: &str = "Keytrail-Worker";
}

impl Queue {
    /// Connect to the server and make sure the streams exist.
    pub async fn connect(config: &QueueConfig, name: &str) -> Result<Queue, QueueError> {
        let client = async_nats::ConnectOptions::new()
            .name(name)
            .connection_timeout(config.connect_timeout)
            // After the first connection, reconnect for ever: a restarted
            // server is waited for, not a reason to exit.
            .max_reconnects(None)
            .connect(config.url.as_str())
            .await
            .map_err(|e| format!("NATS server {}: cannot connect: {e}", config.url))?;
        let js = jetstream::new(client.clone());
        let q = Queue {
            config: config.clone(),
            js,
            client,
        };
        q.ensure_streams().await?;
        Ok(q)
    }

    /// The configuration the queue was opened with.
    pub fn config(&self) -> &QueueConfig {
        &self.config
    }

    async fn ensure_streams(&self) -> Result<(), QueueError> {
        let c = &self.config;
        self.js
            .get_or_create_stream(stream::Config {
                name: c.jobs_stream(),
                description: Some("keytrail jobs (keytrail submit → keytrail worker)".into()),
                subjects: vec![format!("{}.jobs.>", c.prefix)],
                retention: stream::RetentionPolicy::WorkQueue,
                storage: stream::StorageType::File,
                duplicate_window: c.duplicate_window,
                ..Default::default()
            })
            .await
            .map_err(|e| format!("NATS server {}: stream {}: {e}", c.url, c.jobs_stream()))?;
        self.js
            .get_or_create_stream(stream::Config {
                name: c.dead_stream(),
                description: Some("keytrail jobs that failed on their last try".into()),
                subjects: vec![format!("{}.dead.>", c.prefix)],
                retention: stream::RetentionPolicy::Limits,
                storage: stream::StorageType::File,
                duplicate_window: c.duplicate_window,
                ..Default::default()
            })
            .await
            .map_err(|e| format!("NATS server {}: stream {}: {e}", c.url, c.dead_stream()))?;
        Ok(())
    }

    /// The workers' consumer, created with this configuration's ack wait
    /// and deliveries when absent (an existing one keeps its own).
    pub async fn consumer(&self) -> Result<consumer::PullConsumer, QueueError> {
        let c = &self.config;
        let stream = self
            .js
            .get_stream(c.jobs_stream())
            .await
            .map_err(|e| format!("NATS server {}: stream {}: {e}", c.url, c.jobs_stream()))?;
        stream
            .get_or_create_consumer(
                &c.consumer(),
                consumer::pull::Config {
                    durable_name: Some(c.consumer()),
                    description: Some("keytrail workers".into()),
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait: c.ack_wait,
                    max_deliver: c.max_deliver,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| format!("NATS server {}: consumer {}: {e}", c.url, c.consumer()))
    }

    /// Publish a job under its key (`Nats-Msg-Id`), and wait for
    /// JetStream to store it.
    pub async fn publish(&self, job: &Job) -> Result<Published, QueueError> {
        let c = &self.config;
        let body = serde_json::to_vec(job).map_err(|e| format!("job {}: {e}", job.key))?;
        let ack = self
            .js
            .send_publish(
                c.job_subject(job.kind.as_str()),
                jetstream::message::PublishMessage::build()
                    .payload(Bytes::from(body))
                    .message_id(&job.key),
            )
            .await
            .map_err(|e| format!("NATS server {}: publishing job {}: {e}", c.url, job.key))?
            .await
            .map_err(|e| format!("NATS server {}: job {} not stored: {e}", c.url, job.key))?;
        Ok(Published {
            sequence: ack.sequence,
            duplicate: ack.duplicate,
        })
    }

    /// Publish a dead letter: the job's message as it was, with the reason
    /// and the tries in its headers.
    pub(crate) async fn dead_letter(
        &self,
        kind: &str,
        key: Option<&str>,
        payload: Bytes,
        error: &str,
        attempts: i64,
        worker: &str,
    ) -> Result<(), QueueError> {
        let c = &self.config;
        // Header values are one line.
        let one_line: String = error
            .chars()
            .map(|ch| if ch.is_control() { ' ' } else { ch })
            .collect();
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(dead_headers::JOB, key.unwrap_or(""));
        headers.insert(dead_headers::ERROR, one_line.as_str());
        headers.insert(dead_headers::ATTEMPTS, attempts.to_string().as_str());
        headers.insert(dead_headers::WORKER, worker);
        let mut publish = jetstream::message::PublishMessage::build()
            .payload(payload)
            .headers(headers);
        if let Some(k) = key {
            publish = publish.message_id(format!("dead-{k}"));
        }
        self.js
            .send_publish(c.dead_subject(kind), publish)
            .await
            .map_err(|e| format!("NATS server {}: dead letter: {e}", c.url))?
            .await
            .map_err(|e| format!("NATS server {}: dead letter not stored: {e}", c.url))?;
        Ok(())
    }

    /// Wait until everything published on this connection reached the
    /// server.
    pub async fn flush(&self) -> Result<(), QueueError> {
        self.client
            .flush()
            .await
            .map_err(|e| format!("NATS server {}: {e}", self.config.url))
    }
}

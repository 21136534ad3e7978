//! The job model: what a message on the queue says. A job is one target of
//! one kind of run (a secret scan of a path, repository, image or S3
//! prefix; a posture run of an AWS account); its key is its identity on the queue (the message id
//! that makes JetStream drop a duplicate submission), in the store (the
//! `jobs` row) and in the run its worker records (`run_key`).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What a job runs on: one target, as `keytrail scan` takes it, or an AWS
/// account for a posture job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum Target {
    /// A file or directory the workers can reach (absolute).
    Path(PathBuf),
    /// A git repository to clone (`scan --git-url`).
    GitUrl(String),
    /// A container image reference (`scan --image`).
    Image(String),
    /// An S3 prefix, `s3://BUCKET[/PREFIX]`, or one object version,
    /// `s3://BUCKET/KEY?versionId=ID` (`scan --s3`).
    S3(String),
    /// An AWS account a posture job collects through a role the worker
    /// assumes, `arn:aws:iam::ACCOUNT:role/ROLE`. The role is a name,
    /// never a credential: the worker assumes it with its own.
    AwsAccount {
        /// The 12-digit account id.
        account: String,
        /// The role's name (`OrganizationAccountAccessRole`).
        role: String,
    },
    /// A step of a distributed detection run (`keytrail submit detect`):
    /// `route:N` (route job N's files split by identity onto the event
    /// stream), `part:N` (partition N's engine) or `keys:N` (partition N of
    /// the access key ids). The run's files and settings are in the store.
    DetectStep {
        /// The run.
        run: String,
        /// The step.
        step: String,
    },
    /// The next run of a chain of detection runs, fired by a schedule
    /// (`keytrail schedule detect`): its logs listed again, a run of the
    /// files new since the chain's last run recorded, and its route jobs
    /// submitted, as `keytrail submit detect --chain CHAIN` does.
    DetectChain(DetectChain),
}

/// What a scheduled detection run reads and how (`keytrail schedule detect`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DetectChain {
    /// The chain the runs continue.
    pub chain: String,
    /// Absolute paths the workers can reach, or `s3://BUCKET/PREFIX` URIs.
    pub logs: Vec<String>,
    /// Partitions of the identities and of the access key ids.
    pub partitions: u32,
    /// Log files per route job at most.
    pub files_per_job: u32,
    /// The time span of a route job's slice, in seconds.
    pub slice_seconds: u64,
    /// The engine's flags, as `keytrail detect` takes them.
    pub settings: Vec<String>,
}

impl Target {
    /// A target as a user names it on `keytrail submit scan`:
    /// `https://…`, `http://…`, `ssh://…`, `git@host:…` and `git:URL` are
    /// git repositories; `image:REF` and `docker://REF` images;
    /// `s3://BUCKET[/PREFIX]` S3 prefixes; anything else a path, made
    /// absolute against `cwd` (it must exist where the workers run, not
    /// here).
    pub fn parse(text: &str, cwd: &Path) -> Result<Target, String> {
        let t = text.trim();
        if t.is_empty() {
            return Err("an empty target".into());
        }
        if let Some(r) = t.strip_prefix("image:").or(t.strip_prefix("docker://")) {
            if r.is_empty() {
                return Err(format!("`{t}`: no image reference after the prefix"));
            }
            return Ok(Target::Image(r.to_string()));
        }
        if let Some(rest) = t.strip_prefix("s3://") {
            let bucket = rest.split(['/', '?']).next().unwrap_or("");
            if bucket.is_empty() {
                return Err(format!(
                    "`{t}`: an S3 target is s3://BUCKET[/PREFIX] (or s3://BUCKET/KEY?versionId=ID)"
                ));
            }
            return Ok(Target::S3(t.to_string()));
        }
        if let Some(u) = t.strip_prefix("git:") {
            return Ok(Target::GitUrl(u.to_string()));
        }
        if ["https://", "http://", "ssh://", "git://"]
            .iter()
            .any(|p| t.starts_with(p))
            || (t.starts_with("git@") && t.contains(':'))
        {
            return Ok(Target::GitUrl(t.to_string()));
        }
        if t.contains("://") {
            return Err(format!(
                "`{t}`: unknown scheme (git URLs: https://, http://, ssh://, git@host:path; images: image:REF; S3: s3://BUCKET/PREFIX)"
            ));
        }
        let p = Path::new(t);
        Ok(Target::Path(if p.is_absolute() {
            p.to_path_buf()
        } else {
            cwd.join(p)
        }))
    }

    /// The target as its run is recorded, the way `keytrail scan --db`
    /// names it (the absolute path, `git:URL`, `image:REF`, the S3 URI), so a
    /// worker's run and a local scan of the same target compare equal.
    pub fn recorded(&self) -> String {
        match self {
            Target::Path(p) => p.display().to_string(),
            Target::GitUrl(u) => format!("git:{u}"),
            Target::Image(r) => format!("image:{r}"),
            Target::S3(u) => u.clone(),
            Target::AwsAccount { account, .. } => format!("aws:{account}"),
            Target::DetectStep { run, step } => format!("detect:{run}/{step}"),
            Target::DetectChain(c) => format!("detect-chain:{}", c.chain),
        }
    }

    /// The kind of job this target is for.
    pub fn kind(&self) -> JobKind {
        match self {
            Target::AwsAccount { .. } => JobKind::Posture,
            Target::DetectStep { .. } | Target::DetectChain(_) => JobKind::Detect,
            _ => JobKind::Scan,
        }
    }
}

/// What a job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// A secret scan of one target, recorded in the store.
    Scan,
    /// `collect aws` of an AWS account through a role, then `posture`
    /// of the snapshot, recorded in the store (findings of kind `posture`).
    Posture,
    /// A step of a distributed detection run ([`Target::DetectStep`]);
    /// alerts are recorded in the store (findings of kind `alert`).
    Detect,
}

impl JobKind {
    /// The name in the store and in the subject (`keytrail.jobs.scan`).
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Scan => "scan",
            JobKind::Posture => "posture",
            JobKind::Detect => "detect",
        }
    }
}

/// A job: the body of a message on the queue (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// Its identity (see the module documentation).
    pub key: String,
    /// What it does.
    pub kind: JobKind,
    /// On what.
    pub target: Target,
    /// When it was submitted (RFC 3339 UTC).
    pub submitted_at: String,
    /// The schedule that submitted it (`keytrail schedule run`), with what
    /// the schedule's last successful run saw; absent for other jobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<ScheduleRef>,
}

/// The schedule a job was fired by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleRef {
    /// The schedule's id in the store.
    pub id: i64,
    /// What its last successful run saw (none before the first): the job
    /// scans only what changed since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<Cursor>,
}

/// What a schedule's run saw, for the next one to scan only what changed
/// (the store's `schedules.cursor`, as JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// A git repository's ref tips: full ref name → commit id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_refs: Option<BTreeMap<String, String>>,
    /// An image's digest (of the manifest or index its reference named).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
}

impl Job {
    /// A new job on `target`; `key` when the submitter names one (a
    /// scheduler's `nightly-2026-12-07`), else a fresh random key.
    pub fn new(kind: JobKind, target: Target, key: Option<String>) -> Job {
        let submitted_at = keytrail_store::now();
        let key = key.unwrap_or_else(|| {
            let mut nonce = [0u8; 16];
            rand::fill(&mut nonce);
            let mut h = Sha256::new();
            h.update(kind.as_str().as_bytes());
            h.update([0]);
            h.update(target.recorded().as_bytes());
            h.update([0]);
            h.update(submitted_at.as_bytes());
            h.update(nonce);
            let d = h.finalize();
            let hex: String = d[..12].iter().map(|b| format!("{b:02x}")).collect();
            format!("{}-{hex}", kind.as_str())
        });
        Job {
            key,
            kind,
            target,
            submitted_at,
            schedule: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_by_their_form() {
        let cwd = Path::new("/work");
        let cases = [
            ("repo", Target::Path("/work/repo".into())),
            ("/srv/app", Target::Path("/srv/app".into())),
            (
                "https://github.com/acme/api.git",
                Target::GitUrl("https://github.com/acme/api.git".into()),
            ),
            (
                "git@github.com:acme/api.git",
                Target::GitUrl("git@github.com:acme/api.git".into()),
            ),
            (
                "git:file:///srv/mirror/api",
                Target::GitUrl("file:///srv/mirror/api".into()),
            ),
            (
                "image:registry.local/app:1.2",
                Target::Image("registry.local/app:1.2".into()),
            ),
            ("docker://alpine:3", Target::Image("alpine:3".into())),
        ];
        for (text, want) in cases {
            assert_eq!(Target::parse(text, cwd).unwrap(), want, "{text}");
        }
        assert_eq!(
            Target::parse("s3://bucket/prefix/", cwd).unwrap(),
            Target::S3("s3://bucket/prefix/".into())
        );
        assert_eq!(
            Target::parse("s3://bucket", cwd).unwrap(),
            Target::S3("s3://bucket".into())
        );
        for bad in ["s3://", "s3:///prefix", "s3://?versionId=1"] {
            let e = Target::parse(bad, cwd).unwrap_err();
            assert!(e.contains("s3://BUCKET[/PREFIX]"), "{bad}: {e}");
        }
        let e = Target::parse("ftp://host/x", cwd).unwrap_err();
        assert!(e.contains("unknown scheme"), "{e}");
        assert!(Target::parse(" ", cwd).is_err());
    }

    #[test]
    fn recorded_targets_are_named_as_scan_names_them() {
        assert_eq!(Target::Path("/srv/app".into()).recorded(), "/srv/app");
        assert_eq!(
            Target::GitUrl("https://h/r.git".into()).recorded(),
            "git:https://h/r.git"
        );
        assert_eq!(Target::Image("a:1".into()).recorded(), "image:a:1");
        assert_eq!(Target::S3("s3://b/p/".into()).recorded(), "s3://b/p/");
        let acct = Target::AwsAccount {
            account: "210987654321".into(),
            role: "OrganizationAccountAccessRole".into(),
        };
        assert_eq!(acct.recorded(), "aws:210987654321");
        assert_eq!(acct.kind(), JobKind::Posture);
        assert_eq!(Target::Image("a:1".into()).kind(), JobKind::Scan);
    }

    #[test]
    fn posture_jobs_carry_the_role_name_only() {
        let t = Target::AwsAccount {
            account: "210987654321".into(),
            role: "audit".into(),
        };
        let j = Job::new(JobKind::Posture, t, None);
        assert!(j.key.starts_with("posture-"), "{}", j.key);
        let json = serde_json::to_string(&j).unwrap();
        assert!(
            json.contains(r#""kind":"posture","target":{"type":"aws_account","value":{"account":"210987654321","role":"audit"}}"#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<Job>(&json).unwrap(), j);
    }

    #[test]
    fn keys_are_fresh_unless_given() {
        let t = Target::Path("/srv/app".into());
        let a = Job::new(JobKind::Scan, t.clone(), None);
        let b = Job::new(JobKind::Scan, t.clone(), None);
        assert_ne!(a.key, b.key);
        assert!(
            a.key.starts_with("scan-") && a.key.len() == 5 + 24,
            "{}",
            a.key
        );
        let c = Job::new(JobKind::Scan, t, Some("nightly-1".into()));
        assert_eq!(c.key, "nightly-1");
        let json = serde_json::to_string(&c).unwrap();
        assert!(
            json.contains(r#""target":{"type":"path","value":"/srv/app"}"#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<Job>(&json).unwrap(), c);
    }
}

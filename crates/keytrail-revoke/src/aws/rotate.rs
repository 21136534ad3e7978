//! `keytrail rotate aws-key`: replace an access key where it is stored,
//! one journaled step at a time (see `crate::journal`):
//!
//! 1. read the secret store entry and recognise its format (`crate::stored`);
//!    it must hold the key being rotated;
//! 2. make room (a user has at most two keys): with `--delete-inactive-spare`
//!    delete an inactive second key, else stop with a clear error;
//! 3. create the new key; 4. write it into the entry in the same format;
//! 5. wait until STS accepts the new key (IAM is eventually consistent);
//! 6. deactivate the old key, then confirm STS rejects it;
//! 7. delete the old key once the grace period has passed (now with
//!    `--grace 0`, else by a later `--resume`).
//!
//! A failure in steps 2–6 undoes what was done (the new key deleted, the
//! entry's previous value written back). An interruption leaves the journal
//! at the last completed step and `--resume` continues from there; the new
//! secret is never in the journal, so a rotation interrupted between
//! creating and storing the new key deletes that key and creates another.

use super::{ActionReport, Aws, AwsError, ErrorKind, sdk_error};
use crate::Mode;
use crate::audit::{AuditLog, Outcome};
use crate::journal::{self, Journal, State, Step, StoreRef};
use crate::stored::{self, Stored};
use aws_sdk_iam::types::StatusType;
use keytrail_types::Secret;
use serde::Serialize;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What to rotate and how.
#[derive(Debug, Clone)]
pub struct RotateRequest {
    /// The key to replace.
    pub key_id: String,
    /// Its user, when known (checked), else looked up.
    pub user: Option<String>,
    /// Where it is stored (ignored with `resume`: the journal says).
    pub store: StoreRef,
    /// Time between deactivating and deleting the old key.
    pub grace: Duration,
    /// Delete an inactive second key of the user to make room.
    pub delete_inactive_spare: bool,
    /// Folder of rotation journals.
    pub journal_dir: PathBuf,
    /// How long to wait for STS to accept the new key (and reject the old).
    pub verify_timeout: Duration,
    /// Continue the rotation recorded in the journal.
    pub resume: bool,
    /// Dry run or act.
    pub mode: Mode,
}

/// The outcome of a rotation (or of its dry run).
#[derive(Debug, Clone, Serialize)]
pub struct RotateReport {
    /// `aws`.
    pub provider: &'static str,
    /// The key replaced.
    pub old_key_id: String,
    /// The key that replaced it, once created.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_key_id: Option<String>,
    /// Its IAM user.
    pub user: String,
    /// The secret store entry.
    pub store: String,
    /// The stored format recognised.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// The operator's ARN.
    pub operator: String,
    /// `dry-run` or `act`.
    pub mode: Mode,
    /// Where the rotation stands (`planned` in a dry run).
    pub state: String,
    /// Each action taken (or planned) by this run.
    pub actions: Vec<ActionReport>,
    /// Milliseconds from the start of the rotation to the old key's
    /// deactivation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deactivated_after_ms: Option<u64>,
    /// Milliseconds from the start to STS first rejecting the old key: the
    /// time to revoke.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_to_revoke_ms: Option<u64>,
    /// When the old key will be (or was) deleted (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delete_after: Option<String>,
    /// The journal file.
    pub journal: PathBuf,
}

/// A secret store entry's value and version.
struct StoreValue {
    text: Secret<String>,
    version: String,
}

struct Run<'a> {
    aws: &'a Aws,
    audit: &'a mut AuditLog,
    journal: Journal,
    path: PathBuf,
    mode: Mode,
    report: RotateReport,
    verify_timeout: Duration,
}

fn io_err(e: std::io::Error) -> AwsError {
    AwsError::new(ErrorKind::Other, format!("cannot write the audit log: {e}"))
}

fn read_store(aws: &Aws, store: &StoreRef, version: Option<&str>) -> Result<StoreValue, AwsError> {
    match store {
        StoreRef::SecretsManager { secret_id } => {
            let client = aws_sdk_secretsmanager::Client::new(&aws.config);
            let mut req = client.get_secret_value().secret_id(secret_id);
            if let Some(v) = version {
                req = req.version_id(v);
            }
            let out = aws.rt.block_on(req.send()).map_err(|e| {
                sdk_error(&format!("secretsmanager:GetSecretValue `{secret_id}`"), e)
            })?;
            let text = out.secret_string().ok_or_else(|| {
                AwsError::new(
                    ErrorKind::UnexpectedFormat,
                    format!("Secrets Manager secret `{secret_id}` holds binary data, not text; it is left untouched"),
                )
            })?;
            Ok(StoreValue {
                text: Secret::new(text.to_string()),
                version: out.version_id().unwrap_or_default().to_string(),
            })
        }
        StoreRef::SsmParameter { name } => {
            let client = aws_sdk_ssm::Client::new(&aws.config);
            let selector = match version {
                Some(v) => format!("{name}:{v}"),
                None => name.clone(),
            };
            let out = aws
                .rt
                .block_on(
                    client
                        .get_parameter()
                        .name(&selector)
                        .with_decryption(true)
                        .send(),
                )
                .map_err(|e| sdk_error(&format!("ssm:GetParameter `{selector}`"), e))?;
            let p = out.parameter().ok_or_else(|| {
                AwsError::new(
                    ErrorKind::NotFound,
                    format!("ssm:GetParameter `{selector}`: no parameter returned"),
                )
            })?;
            Ok(StoreValue {
                text: Secret::new(p.value().unwrap_or_default().to_string()),
                version: p.version().to_string(),
            })
        }
        StoreRef::None => Err(AwsError::new(ErrorKind::Other, "no secret store given")),
    }
}

fn write_store(aws: &Aws, store: &StoreRef, text: &str) -> Result<String, AwsError> {
    match store {
        StoreRef::SecretsManager { secret_id } => {
            let client = aws_sdk_secretsmanager::Client::new(&aws.config);
            let out = aws
                .rt
                .block_on(
                    client
                        .put_secret_value()
                        .secret_id(secret_id)
                        .secret_string(text)
                        .send(),
                )
                .map_err(|e| {
                    sdk_error(&format!("secretsmanager:PutSecretValue `{secret_id}`"), e)
                })?;
            Ok(out.version_id().unwrap_or_default().to_string())
        }
        StoreRef::SsmParameter { name } => {
            use aws_sdk_ssm::types::{ParameterStringFilter, ParameterType};
            let client = aws_sdk_ssm::Client::new(&aws.config);
            // Keep the parameter's type and KMS key: an overwrite without
            // them would fall back to the account's default key.
            let filter = ParameterStringFilter::builder()
                .key("Name")
                .option("Equals")
                .values(name)
                .build()
                .map_err(|e| AwsError::new(ErrorKind::Other, e.to_string()))?;
            let meta = aws
                .rt
                .block_on(
                    client
                        .describe_parameters()
                        .parameter_filters(filter)
                        .send(),
                )
                .map_err(|e| sdk_error(&format!("ssm:DescribeParameters `{name}`"), e))?;
            let meta = meta
                .parameters()
                .iter()
                .find(|p| p.name() == Some(name.as_str()));
            let ty = meta
                .and_then(|m| m.r#type().cloned())
                .unwrap_or(ParameterType::SecureString);
            let mut req = client
                .put_parameter()
                .name(name)
                .value(text)
                .overwrite(true)
                .r#type(ty.clone());
            if ty == ParameterType::SecureString
                && let Some(k) = meta.and_then(|m| m.key_id())
            {
                req = req.key_id(k);
            }
            let out = aws
                .rt
                .block_on(req.send())
                .map_err(|e| sdk_error(&format!("ssm:PutParameter `{name}`"), e))?;
            Ok(out.version().to_string())
        }
        StoreRef::None => Err(AwsError::new(ErrorKind::Other, "no secret store given")),
    }
}

fn parse_stored(store: &StoreRef, value: &StoreValue, want: &str) -> Result<Stored, AwsError> {
    let s = stored::parse(value.text.expose())
        .map_err(|e| AwsError::new(ErrorKind::UnexpectedFormat, format!("{store}: {e}")))?;
    if s.key_id != want {
        return Err(AwsError::new(
            ErrorKind::UnexpectedFormat,
            format!(
                "{store} holds access key {}, not {want}; the value is left untouched",
                s.key_id
            ),
        ));
    }
    Ok(s)
}

/// Rotates (or, in a dry run, plans the rotation of) an access key.
pub fn rotate(
    aws: &Aws,
    req: &RotateRequest,
    audit: &mut AuditLog,
) -> Result<RotateReport, AwsError> {
    audit.set_identity(Some(aws.operator_arn.clone()));
    let path = journal::path_for(&req.journal_dir, &req.key_id);
    let existing = journal::load(&path).map_err(|e| AwsError::new(ErrorKind::Journal, e))?;
    let new_report = |user: &str, store: &StoreRef| RotateReport {
        provider: "aws",
        old_key_id: req.key_id.clone(),
        new_key_id: None,
        user: user.to_string(),
        store: store.to_string(),
        format: None,
        operator: aws.operator_arn.clone(),
        mode: req.mode,
        state: "planned".into(),
        actions: vec![],
        deactivated_after_ms: None,
        time_to_revoke_ms: None,
        delete_after: None,
        journal: path.clone(),
    };
    if req.resume {
        let j = existing.ok_or_else(|| {
            AwsError::new(
                ErrorKind::Journal,
                format!(
                    "no rotation of {} to resume (no journal at `{}`)",
                    req.key_id,
                    path.display()
                ),
            )
        })?;
        let mut report = new_report(&j.user, &j.store);
        report.new_key_id = j.new_key_id.clone();
        match j.state {
            State::Done | State::RolledBack => {
                report.state = state_name(j.state).into();
                return Ok(report);
            }
            State::Failed => {
                return Err(AwsError::new(
                    ErrorKind::Journal,
                    format!(
                        "the rotation of {} failed and could not be undone ({}); see `{}` and finish by hand",
                        req.key_id,
                        j.error.as_deref().unwrap_or("no detail"),
                        path.display()
                    ),
                ));
            }
            State::InProgress | State::AwaitingDelete => {}
        }
        if req.mode.is_dry_run() {
            report.state = format!(
                "{} (resume would continue after step {:?})",
                state_name(j.state),
                j.last_step()
            );
            return Ok(report);
        }
        let run = Run {
            aws,
            audit,
            journal: j,
            path,
            mode: req.mode,
            report,
            verify_timeout: req.verify_timeout,
        };
        return run.steps(None);
    }
    if let Some(j) = &existing
        && matches!(j.state, State::InProgress | State::AwaitingDelete)
    {
        return Err(AwsError::new(
            ErrorKind::Journal,
            format!(
                "a rotation of {} started at {} is not finished (journal `{}`); continue it with --resume",
                req.key_id,
                j.started_at,
                path.display()
            ),
        ));
    }
    let started_unix_ms = crate::time::now_unix_ms();
    let user = match aws.owner(&req.key_id, req.user.as_deref()) {
        Ok(u) => u,
        Err(e) => {
            audit
                .record(
                    "aws",
                    "find-key-owner",
                    &req.key_id,
                    req.mode,
                    Outcome::Failed,
                    Some(e.message.clone()),
                )
                .map_err(io_err)?;
            return Err(e);
        }
    };
    let mut report = new_report(&user, &req.store);
    let current = read_store(aws, &req.store, None)?;
    let parsed = match parse_stored(&req.store, &current, &req.key_id) {
        Ok(p) => p,
        Err(e) => {
            audit
                .record(
                    "aws",
                    "read-secret-store",
                    &req.store.to_string(),
                    req.mode,
                    Outcome::Failed,
                    Some(e.message.clone()),
                )
                .map_err(io_err)?;
            return Err(e);
        }
    };
    report.format = Some(parsed.format.to_string());
    let keys = aws.keys(&user)?;
    let spare = check_capacity(&keys, &req.key_id, None, req.delete_inactive_spare, &user)?;
    if req.mode.is_dry_run() {
        let store = req.store.to_string();
        let mut plan: Vec<(String, String)> = Vec::new();
        if let Some(s) = &spare {
            plan.push((
                "delete-inactive-spare-key".into(),
                format!("{s} (user {user})"),
            ));
        }
        plan.push(("create-access-key".into(), format!("user {user}")));
        plan.push((
            "write-secret-store".into(),
            format!("{store} ({})", parsed.format),
        ));
        plan.push((
            "verify-new-key".into(),
            "sts:GetCallerIdentity with the new key".into(),
        ));
        plan.push(("deactivate-access-key".into(), req.key_id.clone()));
        plan.push((
            "delete-access-key".into(),
            if req.grace.is_zero() {
                req.key_id.clone()
            } else {
                format!(
                    "{} after a grace of {}s (keytrail rotate aws-key --access-key-id {} --resume)",
                    req.key_id,
                    req.grace.as_secs(),
                    req.key_id
                )
            },
        ));
        for (action, target) in plan {
            audit
                .record("aws", &action, &target, req.mode, Outcome::Planned, None)
                .map_err(io_err)?;
            report.actions.push(ActionReport {
                action,
                target,
                result: Outcome::Planned,
                detail: None,
            });
        }
        return Ok(report);
    }
    let mut j = Journal {
        version: 1,
        old_key_id: req.key_id.clone(),
        user: user.clone(),
        store: req.store.clone(),
        grace_secs: req.grace.as_secs(),
        delete_inactive_spare: req.delete_inactive_spare,
        started_at: crate::time::format_rfc3339(
            started_unix_ms.div_euclid(1000),
            started_unix_ms.rem_euclid(1000) as u32,
        ),
        started_unix_ms,
        previous_version: Some(current.version.clone()),
        new_key_id: None,
        stored_version: None,
        delete_after_unix: None,
        state: State::InProgress,
        steps: vec![],
        error: None,
    };
    j.push(
        Step::Started,
        Some(format!("{} version {}", req.store, current.version)),
    );
    journal::save(&path, &j).map_err(|e| AwsError::new(ErrorKind::Journal, e))?;
    let run = Run {
        aws,
        audit,
        journal: j,
        path,
        mode: req.mode,
        report,
        verify_timeout: req.verify_timeout,
    };
    run.steps(Some((current, parsed)))
}

fn state_name(s: State) -> &'static str {
    match s {
        State::InProgress => "in-progress",
        State::AwaitingDelete => "awaiting-delete",
        State::Done => "done",
        State::RolledBack => "rolled-back",
        State::Failed => "failed",
    }
}

/// The inactive spare to delete to make room for a new key, or an error
/// when the user already has two keys and none may be deleted.
fn check_capacity(
    keys: &[(String, StatusType)],
    old: &str,
    new: Option<&str>,
    delete_spare: bool,
    user: &str,
) -> Result<Option<String>, AwsError> {
    if keys.len() < 2 {
        return Ok(None);
    }
    let others: Vec<&(String, StatusType)> = keys
        .iter()
        .filter(|(id, _)| id != old && Some(id.as_str()) != new)
        .collect();
    let spare = others.iter().find(|(_, s)| *s == StatusType::Inactive);
    match spare {
        Some((id, _)) if delete_spare => Ok(Some(id.clone())),
        Some((id, _)) => Err(AwsError::new(
            ErrorKind::Limit,
            format!(
                "user `{user}` already has two access keys ({old} and the inactive {id}); AWS allows two, so there is no room for a new one: add --delete-inactive-spare to delete {id} first, or delete it yourself"
            ),
        )),
        None => Err(AwsError::new(
            ErrorKind::Limit,
            format!(
                "user `{user}` already has two active access keys ({old} and {}); AWS allows two, so there is no room for a new one: find out which workload uses the other key and deactivate or delete one before rotating",
                others
                    .first()
                    .map(|(id, _)| id.as_str())
                    .unwrap_or("another")
            ),
        )),
    }
}

impl Run<'_> {
    fn save(&mut self) -> Result<(), AwsError> {
        journal::save(&self.path, &self.journal).map_err(|e| AwsError::new(ErrorKind::Journal, e))
    }

    fn record(
        &mut self,
        action: &str,
        target: &str,
        result: Outcome,
        detail: Option<String>,
    ) -> Result<(), AwsError> {
        self.audit
            .record("aws", action, target, self.mode, result, detail.clone())
            .map_err(io_err)?;
        self.report.actions.push(ActionReport {
            action: action.to_string(),
            target: target.to_string(),
            result,
            detail,
        });
        Ok(())
    }

    fn finish_report(mut self) -> RotateReport {
        self.report.state = state_name(self.journal.state).into();
        self.report.new_key_id = self.journal.new_key_id.clone();
        self.report.delete_after = self
            .journal
            .delete_after_unix
            .map(|t| crate::time::format_rfc3339(t, 0));
        self.report
    }

    /// A failed step: undo, record, return the error.
    fn fail(mut self, e: AwsError) -> Result<RotateReport, AwsError> {
        let mut undo_errors = Vec::new();
        let j = self.journal.clone();
        if j.done(Step::Stored) {
            let restored = j
                .previous_version
                .as_deref()
                .ok_or_else(|| AwsError::new(ErrorKind::Other, "no previous version recorded"))
                .and_then(|v| read_store(self.aws, &j.store, Some(v)))
                .and_then(|old| write_store(self.aws, &j.store, old.text.expose()));
            let target = j.store.to_string();
            match restored {
                Ok(v) => self.record(
                    "restore-secret-store",
                    &target,
                    Outcome::Succeeded,
                    Some(format!("previous value written back as version {v}")),
                )?,
                Err(err) => {
                    self.record(
                        "restore-secret-store",
                        &target,
                        Outcome::Failed,
                        Some(err.message.clone()),
                    )?;
                    undo_errors.push(err.message);
                }
            }
        }
        if let Some(new) = j.new_key_id.clone().filter(|_| j.done(Step::Created)) {
            match self.aws.delete(&j.user, &new) {
                Ok(()) => self.record("delete-new-access-key", &new, Outcome::Succeeded, None)?,
                Err(err) if err.kind == ErrorKind::NotFound => self.record(
                    "delete-new-access-key",
                    &new,
                    Outcome::Skipped,
                    Some("already gone".into()),
                )?,
                Err(err) => {
                    self.record(
                        "delete-new-access-key",
                        &new,
                        Outcome::Failed,
                        Some(err.message.clone()),
                    )?;
                    undo_errors.push(err.message);
                }
            }
        }
        self.journal.error = Some(e.message.clone());
        let message = if undo_errors.is_empty() {
            self.journal.state = State::RolledBack;
            format!(
                "{}; rolled back (the old key is untouched and still stored)",
                e.message
            )
        } else {
            self.journal.state = State::Failed;
            format!(
                "{}; rolling back failed too ({}): finish by hand, see `{}`",
                e.message,
                undo_errors.join("; "),
                self.path.display()
            )
        };
        self.save()?;
        Err(AwsError::new(e.kind, message))
    }

    fn steps(mut self, start: Option<(StoreValue, Stored)>) -> Result<RotateReport, AwsError> {
        let aws = self.aws;
        let user = self.journal.user.clone();
        let old = self.journal.old_key_id.clone();
        let store = self.journal.store.clone();
        let mut current = start;
        let mut new_secret: Option<Secret<String>> = None;

        // Created but not stored: the new secret died with the process.
        if self.journal.done(Step::Created) && !self.journal.done(Step::Stored) {
            if let Some(lost) = self.journal.new_key_id.take() {
                match aws.delete(&user, &lost) {
                    Ok(()) => self.record(
                        "delete-unstored-access-key",
                        &lost,
                        Outcome::Succeeded,
                        Some("its secret was never stored".into()),
                    )?,
                    Err(e) if e.kind == ErrorKind::NotFound => {}
                    Err(e) => return self.fail(e),
                }
            }
            self.journal.steps.retain(|s| s.step != Step::Created);
            self.save()?;
        }

        if !self.journal.done(Step::Created) {
            let keys = match aws.keys(&user) {
                Ok(k) => k,
                Err(e) => return self.fail(e),
            };
            let spare = match check_capacity(
                &keys,
                &old,
                None,
                self.journal.delete_inactive_spare,
                &user,
            ) {
                Ok(s) => s,
                Err(e) => return self.fail(e),
            };
            if let Some(spare) = spare {
                if let Err(e) = aws.delete(&user, &spare) {
                    self.record(
                        "delete-inactive-spare-key",
                        &spare,
                        Outcome::Failed,
                        Some(e.message.clone()),
                    )?;
                    return self.fail(e);
                }
                self.journal.push(Step::SpareDeleted, Some(spare.clone()));
                self.save()?;
                self.record(
                    "delete-inactive-spare-key",
                    &spare,
                    Outcome::Succeeded,
                    None,
                )?;
            }
            let created = aws
                .rt
                .block_on(aws.iam.create_access_key().user_name(&user).send())
                .map_err(|e| sdk_error(&format!("iam:CreateAccessKey for `{user}`"), e));
            let key = match created.and_then(|o| {
                o.access_key()
                    .map(|k| {
                        (
                            k.access_key_id().to_string(),
                            Secret::new(k.secret_access_key().to_string()),
                        )
                    })
                    .ok_or_else(|| {
                        AwsError::new(ErrorKind::Other, "iam:CreateAccessKey returned no key")
                    })
            }) {
                Ok(k) => k,
                Err(e) => {
                    self.record(
                        "create-access-key",
                        &format!("user {user}"),
                        Outcome::Failed,
                        Some(e.message.clone()),
                    )?;
                    return self.fail(e);
                }
            };
            self.journal.new_key_id = Some(key.0.clone());
            self.journal.push(Step::Created, Some(key.0.clone()));
            self.save()?;
            self.record(
                "create-access-key",
                &key.0,
                Outcome::Succeeded,
                Some(format!("user {user}")),
            )?;
            new_secret = Some(key.1);
        }
        let new_id = self.journal.new_key_id.clone().unwrap_or_default();

        if !self.journal.done(Step::Stored) {
            let (value, parsed) = match current.take() {
                Some(c) => c,
                None => match read_store(aws, &store, None).and_then(|v| {
                    let p = parse_stored(&store, &v, &old)?;
                    Ok((v, p))
                }) {
                    Ok(c) => c,
                    Err(e) => return self.fail(e),
                },
            };
            let secret = new_secret.as_ref().expect("created in this run");
            let text = match stored::replace(value.text.expose(), &parsed, &new_id, secret) {
                Ok(t) => t,
                Err(e) => {
                    return self.fail(AwsError::new(
                        ErrorKind::UnexpectedFormat,
                        format!("{store}: {e}"),
                    ));
                }
            };
            let version = match write_store(aws, &store, &text) {
                Ok(v) => v,
                Err(e) => {
                    self.record(
                        "write-secret-store",
                        &store.to_string(),
                        Outcome::Failed,
                        Some(e.message.clone()),
                    )?;
                    return self.fail(e);
                }
            };
            self.report.format = Some(parsed.format.to_string());
            // The old secret is kept (in memory only) to confirm it stops working.
            current = Some((value, parsed));
            self.journal.stored_version = Some(version.clone());
            self.journal
                .push(Step::Stored, Some(format!("version {version}")));
            self.save()?;
            self.record(
                "write-secret-store",
                &store.to_string(),
                Outcome::Succeeded,
                Some(format!("new key {new_id}, version {version}")),
            )?;
        }

        if !self.journal.done(Step::Verified) {
            let secret = match new_secret.take() {
                Some(s) => s,
                None => match read_store(aws, &store, None)
                    .and_then(|v| parse_stored(&store, &v, &new_id))
                {
                    Ok(p) => p.secret,
                    Err(e) => return self.fail(e),
                },
            };
            match self.wait_accepted(&new_id, secret.expose(), &user) {
                Ok(detail) => {
                    self.journal.push(Step::Verified, None);
                    self.save()?;
                    self.record("verify-new-key", &new_id, Outcome::Succeeded, Some(detail))?;
                }
                Err(e) => {
                    self.record(
                        "verify-new-key",
                        &new_id,
                        Outcome::Failed,
                        Some(e.message.clone()),
                    )?;
                    return self.fail(e);
                }
            }
        }

        if !self.journal.done(Step::Deactivated) {
            if let Err(e) = aws.deactivate(&user, &old) {
                self.record(
                    "deactivate-access-key",
                    &old,
                    Outcome::Failed,
                    Some(e.message.clone()),
                )?;
                return self.fail(e);
            }
            let after = (crate::time::now_unix_ms() - self.journal.started_unix_ms).max(0) as u64;
            self.report.deactivated_after_ms = Some(after);
            let delete_after = crate::time::now_unix() + self.journal.grace_secs as i64;
            self.journal.delete_after_unix = Some(delete_after);
            self.journal.state = State::AwaitingDelete;
            self.journal.push(
                Step::Deactivated,
                Some(format!("{after} ms after the start")),
            );
            self.save()?;
            self.record(
                "deactivate-access-key",
                &old,
                Outcome::Succeeded,
                Some(format!("{after} ms after the start")),
            )?;
            // Confirm with STS that the old key is refused now.
            let old_secret = match current.as_ref() {
                Some((_, p)) => Some(p.secret.expose().clone()),
                None => self
                    .journal
                    .previous_version
                    .clone()
                    .and_then(|v| read_store(aws, &store, Some(&v)).ok())
                    .and_then(|v| parse_stored(&store, &v, &old).ok())
                    .map(|p| p.secret.expose().clone()),
            };
            if let Some(secret) = old_secret {
                match self.wait_rejected(&old, &secret) {
                    Ok(ms) => {
                        self.report.time_to_revoke_ms = Some(ms);
                        self.record(
                            "confirm-old-key-rejected",
                            &old,
                            Outcome::Succeeded,
                            Some(format!("{ms} ms after the start")),
                        )?;
                    }
                    Err(last) => self.record(
                        "confirm-old-key-rejected",
                        &old,
                        Outcome::Failed,
                        Some(format!(
                            "STS did not refuse {old} within {}s of its deactivation (last answer: {last}); it is inactive and AWS refuses it once IAM has propagated the change",
                            self.verify_timeout.as_secs()
                        )),
                    )?,
                }
            }
        }

        if !self.journal.done(Step::Deleted) {
            let due = self.journal.delete_after_unix.unwrap_or(0);
            if crate::time::now_unix() >= due {
                match aws.delete(&user, &old) {
                    Ok(()) => self.record("delete-access-key", &old, Outcome::Succeeded, None)?,
                    Err(e) if e.kind == ErrorKind::NotFound => self.record(
                        "delete-access-key",
                        &old,
                        Outcome::Skipped,
                        Some("already deleted".into()),
                    )?,
                    Err(e) => {
                        // The old key is inactive: nothing to undo; the
                        // journal stays for a later --resume.
                        self.record(
                            "delete-access-key",
                            &old,
                            Outcome::Failed,
                            Some(e.message.clone()),
                        )?;
                        self.journal.error = Some(e.message.clone());
                        self.save()?;
                        return Err(e);
                    }
                }
                self.journal.push(Step::Deleted, None);
                self.journal.state = State::Done;
                self.journal.error = None;
                self.save()?;
            } else {
                let at = crate::time::format_rfc3339(due, 0);
                self.record(
                    "delete-access-key",
                    &old,
                    Outcome::Skipped,
                    Some(format!("grace period: deleted by `keytrail rotate aws-key --access-key-id {old} --resume --yes` after {at}")),
                )?;
            }
        }
        Ok(self.finish_report())
    }

    /// Waits (bounded) until STS accepts `key_id` as `user`.
    fn wait_accepted(&self, key_id: &str, secret: &str, user: &str) -> Result<String, AwsError> {
        let start = Instant::now();
        let mut delay = Duration::from_millis(250);
        let mut attempts = 0;
        loop {
            attempts += 1;
            let last = match self.aws.identity_of(key_id, secret) {
                Ok(arn) => {
                    if arn.ends_with(&format!("/{user}")) {
                        return Ok(format!(
                            "accepted by STS as {arn} after {attempts} attempt(s)"
                        ));
                    }
                    return Err(AwsError::new(
                        ErrorKind::Other,
                        format!("the new key authenticates as {arn}, not user `{user}`"),
                    ));
                }
                // Authenticated but not authorised: the key works (AWS never
                // denies GetCallerIdentity; emulators may).
                Err(e) if e.kind == ErrorKind::AccessDenied => {
                    return Ok(format!("authenticated by STS after {attempts} attempt(s)"));
                }
                Err(e) if e.kind == ErrorKind::InvalidCredentials => e,
                Err(e) => return Err(e),
            };
            if start.elapsed() + delay > self.verify_timeout {
                return Err(AwsError::new(
                    ErrorKind::Other,
                    format!(
                        "STS did not accept the new key {key_id} within {}s ({attempts} attempts; last: {})",
                        self.verify_timeout.as_secs(),
                        last.message
                    ),
                ));
            }
            std::thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_secs(4));
        }
    }

    /// Waits (bounded) until STS rejects `key_id`: the milliseconds from the
    /// start of the rotation when it did, else STS's last answer.
    fn wait_rejected(&self, key_id: &str, secret: &str) -> Result<u64, String> {
        let start = Instant::now();
        let mut delay = Duration::from_millis(100);
        loop {
            let last = match self.aws.identity_of(key_id, secret) {
                Err(e) if e.kind == ErrorKind::InvalidCredentials => {
                    return Ok(
                        (crate::time::now_unix_ms() - self.journal.started_unix_ms).max(0) as u64,
                    );
                }
                Err(e) => e.message,
                Ok(arn) => format!("still accepted as {arn}"),
            };
            if start.elapsed() + delay > self.verify_timeout {
                return Err(last);
            }
            std::thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_secs(2));
        }
    }
}

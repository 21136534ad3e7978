//! Recurring scans: the schedules of the store fired as jobs
//! (`keytrail schedule run`).
//!
//! One pass reads the schedules due now and, for each, submits its job
//! (store, then queue, exactly as `keytrail submit` does) and then claims
//! the due time with a conditional update of `next_due`
//! ([`keytrail_store::Store::fire_schedule`]). The job's key is made from
//! the schedule and the due time (`schedule-7-20261207T100000Z`), so two
//! schedulers firing the same due time submit the same job once (the
//! store's unique key, JetStream's duplicate window), and a scheduler that
//! dies between submitting and claiming loses nothing: the next pass
//! submits the same key again (nothing new) and claims it.
//!
//! The job carries the schedule's cursor (what its last successful run
//! saw); the worker that runs it writes the new one
//! ([`keytrail_store::Store::schedule_succeeded`]).

use crate::job::{Cursor, ScheduleRef};
use crate::queue::Queue;
use crate::{Job, QueueConfig, SubmitResult, Target};
use chrono::{DateTime, Utc};
use keytrail_store::{Schedule, Store, next_due_after};

/// What firing one due schedule did.
#[derive(Debug, Clone)]
pub struct Fired {
    /// The schedule as read before firing.
    pub schedule: Schedule,
    /// Its next due time after this firing (RFC 3339 UTC).
    pub next_due: String,
    /// The job: new, or the one its key (this due time, submitted by
    /// another scheduler) or its target (still queued or running from an
    /// earlier firing) already had.
    pub submitted: Option<SubmitResult>,
    /// This scheduler moved `next_due`; false when another one had fired
    /// this due time already.
    pub claimed: bool,
    /// Why it could not be fired (a job target the store holds does not
    /// parse: nothing was submitted and it stays due).
    pub error: Option<String>,
}

fn parse_time(t: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The job a firing of `schedule` at its due time submits: its key made
/// from the schedule and the due time, its target the schedule's, and the
/// schedule's cursor.
pub fn schedule_job(schedule: &Schedule) -> Result<Job, String> {
    let target: Target = serde_json::from_str(&schedule.spec).map_err(|e| {
        format!(
            "schedule {}: its job target `{}` does not parse: {e}",
            schedule.id, schedule.spec
        )
    })?;
    let cursor = match schedule.cursor.as_deref() {
        None => None,
        Some(c) => Some(
            serde_json::from_str::<Cursor>(c)
                .map_err(|e| format!("schedule {}: its cursor does not parse: {e}", schedule.id))?,
        ),
    };
    let due = parse_time(&schedule.next_due)
        .map(|t| t.format("%Y%m%dT%H%M%SZ").to_string())
        .unwrap_or_else(|| {
            schedule
                .next_due
                .chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .collect()
        });
    let key = format!("schedule-{}-{due}", schedule.id);
    let mut job = Job::new(target.kind(), target, Some(key));
    job.schedule = Some(ScheduleRef {
        id: schedule.id,
        cursor,
    });
    Ok(job)
}

/// Fire every schedule of the store at `db` due at `at`: one pass. No
/// connection to the queue is made when nothing is due.
pub fn fire_due(config: &QueueConfig, db: &str, at: DateTime<Utc>) -> Result<Vec<Fired>, String> {
    let mut store = Store::open(db).map_err(|e| e.to_string())?;
    let due = store.due_schedules(at).map_err(|e| e.to_string())?;
    if due.is_empty() {
        return Ok(Vec::new());
    }
    let rt = crate::runtime()?;
    let queue = rt.block_on(Queue::connect(config, "keytrail-schedule"))?;
    let mut out = Vec::with_capacity(due.len());
    for schedule in due {
        let job = match schedule_job(&schedule) {
            Ok(j) => j,
            Err(e) => {
                out.push(Fired {
                    next_due: schedule.next_due.clone(),
                    schedule,
                    submitted: None,
                    claimed: false,
                    error: Some(e),
                });
                continue;
            }
        };
        let submitted = crate::submit_one(&mut store, &rt, &queue, &job)?;
        let was_due = parse_time(&schedule.next_due).unwrap_or(at);
        let next = next_due_after(was_due, schedule.every_seconds, at);
        let claimed = store
            .fire_schedule(
                schedule.id,
                &schedule.next_due,
                next,
                &submitted.job.job_key,
            )
            .map_err(|e| e.to_string())?;
        out.push(Fired {
            next_due: keytrail_store::store_time(next),
            schedule,
            submitted: Some(submitted),
            claimed,
            error: None,
        });
    }
    rt.block_on(queue.flush())?;
    Ok(out)
}

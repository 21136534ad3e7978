//! Recurring scans (schema version 10): one row per schedule, a target
//! submitted as a job every interval by `keytrail schedule run`.
//!
//! Firing is safe with several schedulers at once: [`Store::fire_schedule`]
//! moves `next_due` only if it still holds the due time the caller read (a
//! conditional update, the same on SQLite and PostgreSQL), and the caller
//! makes the job's key from the schedule and that due time, so a second
//! scheduler's submission of the same firing is the same job (the `jobs`
//! key is unique). The cursor (what the last successful run saw) is the
//! worker's: [`Store::schedule_succeeded`] writes it after the job's run is
//! recorded.

use crate::db::{Row, Val};
use crate::error::{ErrorKind, StoreError};
use crate::{Store, now};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// A schedule as the store holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Schedule {
    /// Its id (`keytrail schedule remove ID`).
    pub id: i64,
    /// The kind of job it submits (`scan`).
    pub kind: String,
    /// The target as its runs are recorded (`git:https://…`, `image:…`).
    pub target: String,
    /// The job's target as the queue carries it (JSON, `{"type", "value"}`).
    pub spec: String,
    /// Seconds between firings.
    pub every_seconds: i64,
    /// When it fires next (RFC 3339 UTC).
    pub next_due: String,
    /// Disabled schedules never fire.
    pub enabled: bool,
    /// When it was added.
    pub created_at: String,
    /// When it last fired.
    pub last_fired_at: Option<String>,
    /// The job its last firing submitted (or found queued or running).
    pub last_job_key: Option<String>,
    /// When a job of it last succeeded.
    pub last_success_at: Option<String>,
    /// That job.
    pub last_success_job: Option<String>,
    /// What that job did (`scanned 2 new commit(s)`, `unchanged: sha256:…`).
    pub last_outcome: Option<String>,
    /// What that job saw, for the next one (JSON; the worker's format).
    pub cursor: Option<String>,
}

/// A schedule to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSchedule {
    /// The kind of job.
    pub kind: String,
    /// The target as recorded (one schedule per kind and target).
    pub target: String,
    /// The job's target as the queue carries it.
    pub spec: String,
    /// Seconds between firings (at least 1).
    pub every_seconds: i64,
    /// The first firing.
    pub first_due: DateTime<Utc>,
}

const COLUMNS: &str = "id, kind, target, spec, every_seconds, next_due, enabled, created_at, \
     last_fired_at, last_job_key, last_success_at, last_success_job, last_outcome, cursor";

fn schedule_of(r: &Row) -> Schedule {
    Schedule {
        id: r.int(0),
        kind: r.text(1),
        target: r.text(2),
        spec: r.text(3),
        every_seconds: r.int(4),
        next_due: r.text(5),
        enabled: r.int(6) != 0,
        created_at: r.text(7),
        last_fired_at: r.opt_text(8),
        last_job_key: r.opt_text(9),
        last_success_at: r.opt_text(10),
        last_success_job: r.opt_text(11),
        last_outcome: r.opt_text(12),
        cursor: r.opt_text(13),
    }
}

/// A time as the store writes times ([`now`]'s format: sorts as text).
pub fn store_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// The due time after `due` for a schedule of `every_seconds`, as seen at
/// `now`: the first of `due + k × every` (k ≥ 1) after `now`, so a
/// scheduler that was down for days fires once, not once per missed
/// interval, and keeps the schedule's phase.
pub fn next_due_after(due: DateTime<Utc>, every_seconds: i64, now: DateTime<Utc>) -> DateTime<Utc> {
    let every = every_seconds.max(1);
    let behind = (now - due).num_seconds().max(0);
    let k = behind / every + 1;
    due + chrono::Duration::seconds(k * every)
}

impl Store {
    /// Add a schedule. A schedule of the same kind and target is a
    /// [`ErrorKind::Conflict`] naming it.
    pub fn add_schedule(&mut self, new: &NewSchedule) -> Result<Schedule, StoreError> {
        if new.kind.is_empty() || new.target.is_empty() || new.spec.is_empty() {
            return Err(StoreError::new(
                ErrorKind::Invalid,
                "a schedule needs a kind, a target and a job target",
            ));
        }
        if new.every_seconds < 1 {
            return Err(StoreError::new(
                ErrorKind::Invalid,
                format!(
                    "an interval of {} s: a schedule fires at most every second",
                    new.every_seconds
                ),
            ));
        }
        let at = now();
        let due = store_time(new.first_due);
        self.conn.write(|c| {
            let inserted = c.exec(
                "INSERT INTO schedules (kind, target, spec, every_seconds, next_due, enabled, created_at) \
                 VALUES (?, ?, ?, ?, ?, 1, ?) ON CONFLICT DO NOTHING",
                &[
                    Val::from(new.kind.as_str()),
                    Val::from(new.target.as_str()),
                    Val::from(new.spec.as_str()),
                    Val::Int(new.every_seconds),
                    Val::from(due.as_str()),
                    Val::from(at.as_str()),
                ],
            )?;
            let rows = c.query(
                &format!("SELECT {COLUMNS} FROM schedules WHERE kind = ? AND target = ?"),
                &[Val::from(new.kind.as_str()), Val::from(new.target.as_str())],
            )?;
            let Some(s) = rows.first().map(schedule_of) else {
                return Err(StoreError::new(
                    ErrorKind::Other,
                    format!("the schedule of `{}` was neither added nor found", new.target),
                ));
            };
            if inserted == 0 {
                return Err(StoreError::new(
                    ErrorKind::Conflict,
                    format!(
                        "`{}` is scheduled already (schedule {}, every {} s)",
                        s.target, s.id, s.every_seconds
                    ),
                ));
            }
            Ok(s)
        })
    }

    /// Every schedule, by id.
    pub fn schedules(&mut self) -> Result<Vec<Schedule>, StoreError> {
        Ok(self
            .conn
            .query(&format!("SELECT {COLUMNS} FROM schedules ORDER BY id"), &[])?
            .iter()
            .map(schedule_of)
            .collect())
    }

    /// The schedule with this id.
    pub fn schedule(&mut self, id: i64) -> Result<Option<Schedule>, StoreError> {
        Ok(self
            .conn
            .query(
                &format!("SELECT {COLUMNS} FROM schedules WHERE id = ?"),
                &[Val::Int(id)],
            )?
            .first()
            .map(schedule_of))
    }

    /// Remove a schedule (its jobs and runs stay). False: no such schedule.
    pub fn remove_schedule(&mut self, id: i64) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .exec("DELETE FROM schedules WHERE id = ?", &[Val::Int(id)])?
            == 1)
    }

    /// Enable or disable a schedule. False: no such schedule.
    pub fn set_schedule_enabled(&mut self, id: i64, enabled: bool) -> Result<bool, StoreError> {
        Ok(self.conn.exec(
            "UPDATE schedules SET enabled = ? WHERE id = ?",
            &[Val::Int(enabled as i64), Val::Int(id)],
        )? == 1)
    }

    /// The enabled schedules due at `at` (their `next_due` at or before
    /// it), the longest overdue first.
    pub fn due_schedules(&mut self, at: DateTime<Utc>) -> Result<Vec<Schedule>, StoreError> {
        Ok(self
            .conn
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM schedules WHERE enabled = 1 AND next_due <= ? \
                     ORDER BY next_due, id"
                ),
                &[Val::from(store_time(at))],
            )?
            .iter()
            .map(schedule_of)
            .collect())
    }

    /// Claim the firing of schedule `id` at the due time `due` read from
    /// it (its `next_due` text, as read): `next_due` becomes `next` and
    /// `job_key` its latest job, only if `next_due` is still `due` and the
    /// schedule is enabled. True: this caller fired it; false: another
    /// scheduler did (or the schedule was removed or disabled meanwhile).
    pub fn fire_schedule(
        &mut self,
        id: i64,
        due: &str,
        next: DateTime<Utc>,
        job_key: &str,
    ) -> Result<bool, StoreError> {
        let at = now();
        Ok(self.conn.exec(
            "UPDATE schedules SET next_due = ?, last_fired_at = ?, last_job_key = ? \
             WHERE id = ? AND next_due = ? AND enabled = 1",
            &[
                Val::from(store_time(next)),
                Val::from(at.as_str()),
                Val::from(job_key),
                Val::Int(id),
                Val::from(due),
            ],
        )? == 1)
    }

    /// A job of schedule `id` succeeded: what it did (`outcome`) and, when
    /// given, what it saw for the next one (`cursor`; `None` keeps the
    /// cursor). False: the schedule is gone.
    pub fn schedule_succeeded(
        &mut self,
        id: i64,
        job_key: &str,
        outcome: &str,
        cursor: Option<&str>,
    ) -> Result<bool, StoreError> {
        let at = now();
        Ok(self.conn.exec(
            "UPDATE schedules SET last_success_at = ?, last_success_job = ?, last_outcome = ?, \
             cursor = COALESCE(?, cursor) WHERE id = ?",
            &[
                Val::from(at.as_str()),
                Val::from(job_key),
                Val::from(outcome),
                Val::from(cursor),
                Val::Int(id),
            ],
        )? == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn the_next_due_time_keeps_the_phase_and_skips_missed_firings() {
        let due = t("2026-12-07T10:00:00Z");
        // On time: one interval on.
        assert_eq!(
            next_due_after(due, 3600, t("2026-12-07T10:00:05Z")),
            t("2026-12-07T11:00:00Z")
        );
        // Three days late: the next one after now, on the hour.
        assert_eq!(
            next_due_after(due, 3600, t("2026-12-10T10:30:00Z")),
            t("2026-12-10T11:00:00Z")
        );
        // Exactly on a later boundary: the one after it.
        assert_eq!(
            next_due_after(due, 3600, t("2026-12-07T12:00:00Z")),
            t("2026-12-07T13:00:00Z")
        );
        // Before it was due (a clock behind): one interval on.
        assert_eq!(
            next_due_after(due, 60, t("2026-12-07T09:00:00Z")),
            t("2026-12-07T10:01:00Z")
        );
        assert_eq!(
            store_time(t("2026-12-07T10:00:00Z")),
            "2026-12-07T10:00:00.000000Z"
        );
    }
}

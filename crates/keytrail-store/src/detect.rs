//! Distributed detection runs (`keytrail submit detect`): the runs and their
//! chains, the files each route job reads, the steps done, the engines'
//! checkpoints and the accounts' regions (schema version 9). The stages
//! themselves are `keytrail-detect`'s; the queue is `keytrail-worker`'s.

use crate::db::{Conn, Row, Val};
use crate::{ErrorKind, Store, StoreError, now};

/// A run to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDetectRun {
    /// Its id (letters, digits, `-`, `_`: it names queue subjects).
    pub run: String,
    /// The chain it continues.
    pub chain: String,
    /// Partitions of the identities and of the access key ids.
    pub partitions: u32,
    /// The engine's settings (JSON).
    pub settings: String,
    /// What was submitted, as the user named it.
    pub target: String,
    /// Its files (name, size), each with its route job, in route order.
    pub files: Vec<(String, u64, u32)>,
}

/// A run as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetectRun {
    /// Its id.
    pub run: String,
    /// Its chain.
    pub chain: String,
    /// The chain's run before it (`None` for the first).
    pub previous: Option<String>,
    /// Partitions.
    pub partitions: u32,
    /// Route jobs.
    pub routes: u32,
    /// The engine's settings (JSON).
    pub settings: String,
    /// What was submitted.
    pub target: String,
    /// When.
    pub created_at: String,
}

const RUN_COLUMNS: &str = "run, chain, previous, partitions, routes, settings, target, created_at";

fn run_of(r: &Row) -> DetectRun {
    let previous = r.text(2);
    DetectRun {
        run: r.text(0),
        chain: r.text(1),
        previous: (!previous.is_empty()).then_some(previous),
        partitions: u32::try_from(r.int(3)).unwrap_or(0),
        routes: u32::try_from(r.int(4)).unwrap_or(0),
        settings: r.text(5),
        target: r.text(6),
        created_at: r.text(7),
    }
}

fn query_run(c: &mut Conn, sql: &str, params: &[Val]) -> Result<Option<DetectRun>, StoreError> {
    Ok(c.query(sql, params)?.first().map(run_of))
}

impl Store {
    /// Creates a run at the end of its chain, with its files. Fails when a run
    /// of the same chain is created at the same moment (submit again) or the
    /// id is taken.
    pub fn create_detect_run(&mut self, new: &NewDetectRun) -> Result<DetectRun, StoreError> {
        if new.run.is_empty()
            || !new
                .run
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(StoreError::new(
                ErrorKind::Invalid,
                format!("`{}`: a run id is letters, digits, `-` and `_`", new.run),
            ));
        }
        if new.partitions == 0 {
            return Err(StoreError::new(
                ErrorKind::Invalid,
                "a run needs at least one partition",
            ));
        }
        let routes = new.files.iter().map(|f| f.2 + 1).max().unwrap_or(0);
        let at = now();
        let shown = self.conn.shown();
        self.conn.write(|c| {
            // The chain's last run: the one no run follows.
            let last = query_run(
                c,
                &format!(
                    "SELECT {RUN_COLUMNS} FROM detect_runs r WHERE chain = ? AND NOT EXISTS \
                     (SELECT 1 FROM detect_runs n WHERE n.chain = r.chain AND n.previous = r.run)"
                ),
                &[Val::from(new.chain.as_str())],
            )?;
            let previous = last.map(|r| r.run).unwrap_or_default();
            let inserted = c.exec(
                "INSERT INTO detect_runs (run, chain, previous, partitions, routes, settings, \
                 target, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                &[
                    Val::from(new.run.as_str()),
                    Val::from(new.chain.as_str()),
                    Val::from(previous.as_str()),
                    Val::Int(i64::from(new.partitions)),
                    Val::Int(i64::from(routes)),
                    Val::from(new.settings.as_str()),
                    Val::from(new.target.as_str()),
                    Val::from(at.as_str()),
                ],
            )?;
            if inserted != 1 {
                return Err(StoreError::new(
                    ErrorKind::Conflict,
                    format!(
                        "{shown}: run `{}` exists, or another run of chain `{}` was submitted at the same moment: submit again",
                        new.run, new.chain
                    ),
                ));
            }
            for (name, size, route) in &new.files {
                c.exec(
                    "INSERT INTO detect_files (chain, name, size, run, route) VALUES (?, ?, ?, ?, ?) \
                     ON CONFLICT (chain, name) DO UPDATE SET size = excluded.size, \
                     run = excluded.run, route = excluded.route",
                    &[
                        Val::from(new.chain.as_str()),
                        Val::from(name.as_str()),
                        Val::Int(i64::try_from(*size).unwrap_or(i64::MAX)),
                        Val::from(new.run.as_str()),
                        Val::Int(i64::from(*route)),
                    ],
                )?;
            }
            Ok(())
        })?;
        self.detect_run(&new.run)?.ok_or_else(|| {
            StoreError::new(
                ErrorKind::Other,
                format!("run `{}` was not recorded", new.run),
            )
        })
    }

    /// A run.
    pub fn detect_run(&mut self, run: &str) -> Result<Option<DetectRun>, StoreError> {
        query_run(
            &mut self.conn,
            &format!("SELECT {RUN_COLUMNS} FROM detect_runs WHERE run = ?"),
            &[Val::from(run)],
        )
    }

    /// The run after `run` in its chain, if one was submitted.
    pub fn detect_next(&mut self, run: &DetectRun) -> Result<Option<DetectRun>, StoreError> {
        query_run(
            &mut self.conn,
            &format!("SELECT {RUN_COLUMNS} FROM detect_runs WHERE chain = ? AND previous = ?"),
            &[Val::from(run.chain.as_str()), Val::from(run.run.as_str())],
        )
    }

    /// Of `names`, those the chain's runs read, with the size they were read
    /// at (queried in batches: a submission looks up what it listed, never
    /// the chain's whole history).
    pub fn detect_read_sizes(
        &mut self,
        chain: &str,
        names: &[String],
    ) -> Result<std::collections::HashMap<String, u64>, StoreError> {
        let mut out = std::collections::HashMap::new();
        for batch in names.chunks(500) {
            let marks = vec!["?"; batch.len()].join(", ");
            let mut params = vec![Val::from(chain)];
            params.extend(batch.iter().map(|n| Val::from(n.as_str())));
            for r in self.conn.query(
                &format!(
                    "SELECT name, size FROM detect_files WHERE chain = ? AND name IN ({marks})"
                ),
                &params,
            )? {
                out.insert(r.text(0), u64::try_from(r.int(1)).unwrap_or(0));
            }
        }
        Ok(out)
    }

    /// The names of the files the chain's last run reads (none before its
    /// first run).
    pub fn detect_last_run_files(&mut self, chain: &str) -> Result<Vec<String>, StoreError> {
        Ok(self
            .conn
            .query(
                "SELECT f.name FROM detect_files f JOIN detect_runs r ON f.run = r.run \
                 WHERE r.chain = ? AND NOT EXISTS \
                 (SELECT 1 FROM detect_runs n WHERE n.chain = r.chain AND n.previous = r.run)",
                &[Val::from(chain)],
            )?
            .iter()
            .map(|r| r.text(0))
            .collect())
    }

    /// The files of one route job with their sizes (as listed when the run was
    /// submitted), by name.
    pub fn detect_route_files(
        &mut self,
        run: &str,
        route: u32,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        let mut files: Vec<(String, u64)> = self
            .conn
            .query(
                "SELECT name, size FROM detect_files WHERE run = ? AND route = ?",
                &[Val::from(run), Val::Int(i64::from(route))],
            )?
            .iter()
            .map(|r| (r.text(0), u64::try_from(r.int(1)).unwrap_or(0)))
            .collect();
        files.sort();
        Ok(files)
    }

    /// Marks a step of a run done (once: a repeated step changes nothing) and
    /// returns how many steps of the same stage (`route`, `part`, `keys`) are done.
    pub fn detect_step_done(
        &mut self,
        run: &str,
        step: &str,
        events: u64,
    ) -> Result<u32, StoreError> {
        let at = now();
        self.conn.exec(
            "INSERT INTO detect_steps (run, step, events, done_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT DO NOTHING",
            &[
                Val::from(run),
                Val::from(step),
                Val::Int(i64::try_from(events).unwrap_or(i64::MAX)),
                Val::from(at.as_str()),
            ],
        )?;
        self.detect_steps_done(run, stage_of(step))
    }

    /// How many steps of `stage` (`route`, `part`, `keys`) of a run are done.
    pub fn detect_steps_done(&mut self, run: &str, stage: &str) -> Result<u32, StoreError> {
        let rows = self.conn.query(
            "SELECT COUNT(*) FROM detect_steps WHERE run = ? AND step LIKE ?",
            &[Val::from(run), Val::from(format!("{stage}:%"))],
        )?;
        Ok(rows
            .first()
            .map_or(0, |r| u32::try_from(r.int(0)).unwrap_or(0)))
    }

    /// Whether a step of a run is done.
    pub fn detect_step_is_done(&mut self, run: &str, step: &str) -> Result<bool, StoreError> {
        Ok(!self
            .conn
            .query(
                "SELECT 1 FROM detect_steps WHERE run = ? AND step = ?",
                &[Val::from(run), Val::from(step)],
            )?
            .is_empty())
    }

    /// Events each stage of a run handled: (routed, partitions', key stage's).
    pub fn detect_run_events(&mut self, run: &str) -> Result<(u64, u64, u64), StoreError> {
        let mut out = (0, 0, 0);
        for r in self.conn.query(
            "SELECT step, events FROM detect_steps WHERE run = ?",
            &[Val::from(run)],
        )? {
            let n = u64::try_from(r.int(1)).unwrap_or(0);
            match stage_of(&r.text(0)) {
                "route" => out.0 += n,
                "part" => out.1 += n,
                _ => out.2 += n,
            }
        }
        Ok(out)
    }

    /// The checkpoint of a chain's step (`part:N`, `keys:N`): the run that
    /// reached it and the state.
    pub fn detect_checkpoint(
        &mut self,
        chain: &str,
        step: &str,
    ) -> Result<Option<(String, String)>, StoreError> {
        Ok(self
            .conn
            .query(
                "SELECT run, state FROM detect_checkpoints WHERE chain = ? AND step = ?",
                &[Val::from(chain), Val::from(step)],
            )?
            .first()
            .map(|r| (r.text(0), r.text(1))))
    }

    /// Records what a partition's step of `run` reached, in one transaction:
    /// its checkpoint moves from the previous run's to this run's, and the step
    /// is done. Returns how many steps of the same stage are done. A step done
    /// already changes nothing; a checkpoint that is not the previous run's (a
    /// step run out of order) is refused.
    pub fn detect_commit(
        &mut self,
        run: &DetectRun,
        step: &str,
        state: &str,
        events: u64,
    ) -> Result<u32, StoreError> {
        let at = now();
        let shown = self.conn.shown();
        let stage = stage_of(step).to_string();
        self.conn.write(|c| {
            let done = !c
                .query(
                    "SELECT 1 FROM detect_steps WHERE run = ? AND step = ?",
                    &[Val::from(run.run.as_str()), Val::from(step)],
                )?
                .is_empty();
            if !done {
                let at_now: Option<String> = c
                    .query(
                        "SELECT run FROM detect_checkpoints WHERE chain = ? AND step = ?",
                        &[Val::from(run.chain.as_str()), Val::from(step)],
                    )?
                    .first()
                    .map(|r| r.text(0));
                if at_now.as_deref() != run.previous.as_deref() {
                    return Err(StoreError::new(
                        ErrorKind::Conflict,
                        format!(
                            "{shown}: checkpoint {step} of chain `{}` is at run `{}`, not at the run before `{}`",
                            run.chain,
                            at_now.unwrap_or_default(),
                            run.run
                        ),
                    ));
                }
                c.exec(
                    "INSERT INTO detect_checkpoints (chain, step, run, state, updated_at) \
                     VALUES (?, ?, ?, ?, ?) ON CONFLICT (chain, step) DO UPDATE SET \
                     run = excluded.run, state = excluded.state, updated_at = excluded.updated_at",
                    &[
                        Val::from(run.chain.as_str()),
                        Val::from(step),
                        Val::from(run.run.as_str()),
                        Val::from(state),
                        Val::from(at.as_str()),
                    ],
                )?;
                c.exec(
                    "INSERT INTO detect_steps (run, step, events, done_at) VALUES (?, ?, ?, ?)",
                    &[
                        Val::from(run.run.as_str()),
                        Val::from(step),
                        Val::Int(i64::try_from(events).unwrap_or(i64::MAX)),
                        Val::from(at.as_str()),
                    ],
                )?;
            }
            let rows = c.query(
                "SELECT COUNT(*) FROM detect_steps WHERE run = ? AND step LIKE ?",
                &[Val::from(run.run.as_str()), Val::from(format!("{stage}:%"))],
            )?;
            Ok(rows
                .first()
                .map_or(0, |r| u32::try_from(r.int(0)).unwrap_or(0)))
        })
    }

    /// Adds accounts' earliest regional calls to a chain (the earliest time wins).
    pub fn detect_add_regions(
        &mut self,
        chain: &str,
        regions: &[(String, String, i64)],
    ) -> Result<(), StoreError> {
        // Rows in one order for every writer: route jobs upserting the same
        // accounts' regions at once would otherwise deadlock on PostgreSQL
        // (seen with 4 workers: "deadlock detected").
        let mut rows: Vec<&(String, String, i64)> = regions.iter().collect();
        rows.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        self.conn.write(|c| {
            for (account, region, t) in rows {
                c.exec(
                    "INSERT INTO detect_regions (chain, account, region, first_ms) VALUES (?, ?, ?, ?) \
                     ON CONFLICT (chain, account, region) DO UPDATE SET first_ms = CASE \
                     WHEN excluded.first_ms < detect_regions.first_ms THEN excluded.first_ms \
                     ELSE detect_regions.first_ms END",
                    &[
                        Val::from(chain),
                        Val::from(account.as_str()),
                        Val::from(region.as_str()),
                        Val::Int(*t),
                    ],
                )?;
            }
            Ok(())
        })
    }

    /// A chain's accounts' earliest regional calls: (account, region, time).
    pub fn detect_regions(
        &mut self,
        chain: &str,
    ) -> Result<Vec<(String, String, i64)>, StoreError> {
        Ok(self
            .conn
            .query(
                "SELECT account, region, first_ms FROM detect_regions WHERE chain = ?",
                &[Val::from(chain)],
            )?
            .iter()
            .map(|r| (r.text(0), r.text(1), r.int(2)))
            .collect())
    }
}

/// The stage of a step name (`part:3` → `part`).
fn stage_of(step: &str) -> &str {
    step.split(':').next().unwrap_or(step)
}

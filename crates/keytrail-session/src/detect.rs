//! The detection session: one run of `keytrail_detect`'s engine over one
//! kind of log input, with the input's own diagnostics (files that could
//! not be listed or opened) counted in the run's statistics. A front-end
//! builds the engine (`EngineBuilder`, its shared rules and data) and the
//! alert sink, picks the input, and calls [`run`].

use keytrail_detect::engine::{EngineBuilder, Logs, Shared, Stats, run_logs_into};
use keytrail_detect::reader::{Fetch, LogObject};
use keytrail_detect::{Alert, AlertSink, read_stream};
use keytrail_types::Diagnostic;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

/// Where a detection run reads its logs.
pub enum LogInput {
    /// One stream (standard input), read by one thread.
    Stream {
        /// Name in diagnostics (`<stdin>`).
        name: String,
        /// The stream.
        reader: Box<dyn Read + Send>,
    },
    /// Files and directory trees: listed, then read by `threads` workers
    /// and merged in event-time order.
    Paths(Vec<PathBuf>),
    /// Objects listed elsewhere (S3), opened through `fetch`, with the
    /// listing's diagnostics.
    Objects {
        /// The objects, as listed.
        objects: Vec<LogObject>,
        /// Opens an object.
        fetch: Arc<dyn Fetch>,
        /// What the listing could not list.
        diagnostics: Vec<Diagnostic>,
    },
}

/// Run the engine `builder` describes (over `shared`) on `input`, alerts
/// streamed to `sink` as they close; the alerts not given to a sink and
/// the statistics come back. A file or object that could not be listed
/// or opened is in `stats.unreadable_files` and `stats.diagnostics`.
pub fn run(
    builder: &EngineBuilder,
    shared: Shared,
    input: LogInput,
    threads: usize,
    sink: Option<Box<dyn AlertSink>>,
) -> (Vec<Alert>, Stats) {
    match input {
        LogInput::Stream { name, reader } => {
            let (mut engine, diags) = builder.build_with(shared);
            if let Some(s) = sink {
                engine.set_sink(s);
            }
            for d in diags {
                engine.diagnostic(d);
            }
            engine.run(read_stream(&name, reader));
            engine.finish()
        }
        LogInput::Paths(paths) => {
            let (files, diags) = keytrail_detect::reader::list_files(&paths);
            let (alerts, mut stats) =
                run_logs_into(builder, shared, Logs::Files(files), threads, sink);
            add_listing(&mut stats, diags);
            (alerts, stats)
        }
        LogInput::Objects {
            objects,
            fetch,
            diagnostics,
        } => {
            let (alerts, mut stats) = run_logs_into(
                builder,
                shared,
                Logs::Objects(objects, fetch),
                threads,
                sink,
            );
            add_listing(&mut stats, diagnostics);
            (alerts, stats)
        }
    }
}

/// Count what listing the input found wrong, as the engine counts what
/// reading it found wrong.
fn add_listing(stats: &mut Stats, diags: Vec<Diagnostic>) {
    for d in diags {
        stats.other_diagnostics += 1;
        if d.kind == keytrail_detect::reader::kinds::UNREADABLE {
            stats.unreadable_files.push(d.subject.clone());
        }
        stats.diagnostics.push(d);
    }
}

/// The targets the user named (as displayed) that could not be read: the
/// run's result is incomplete and it fails.
pub fn failed_targets(stats: &Stats, named: &[String]) -> Vec<String> {
    stats
        .unreadable_files
        .iter()
        .filter(|u| named.contains(u))
        .cloned()
        .collect()
}

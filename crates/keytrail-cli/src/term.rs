//! Terminal concerns: colour choice, the progress ticker on stderr,
//! printing diagnostics, and writing the report to `--output` or stdout.
//! Stdout carries only the report.

use anyhow::Context;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// Write a report through `write` to `path` (`--output`), or to standard
/// output when there is none; buffered and flushed. Errors name the file
/// (`cannot create`, `cannot write`) or say `cannot write the report`.
pub fn write_output(
    path: Option<&Path>,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    match path {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("cannot create `{}`", path.display()))?;
            let mut w = std::io::BufWriter::new(file);
            write(&mut w)
                .and_then(|()| w.flush())
                .with_context(|| format!("cannot write `{}`", path.display()))
        }
        None => {
            let stdout = std::io::stdout();
            let mut w = std::io::BufWriter::new(stdout.lock());
            write(&mut w)
                .and_then(|()| w.flush())
                .context("cannot write the report")
        }
    }
}

/// Whether an error is standard output's reader having gone away
/// (`keytrail scan . | head`): not worth a message.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Whether `NO_COLOR` asks for no colour (set and non-empty, per no-color.org).
fn no_color_env() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// Colour for the report: only when it goes to a terminal and `NO_COLOR` is unset.
pub fn color_for_stdout(writing_to_file: bool) -> bool {
    !writing_to_file && !no_color_env() && std::io::stdout().is_terminal()
}

/// A progress line on stderr, redrawn a few times a second; only when
/// stderr is a terminal, so piped or redirected runs stay silent.
pub struct Ticker {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Ticker {
    /// Start ticking scan counters if `enabled` and stderr is a terminal.
    pub fn start(enabled: bool, counters: Arc<keytrail_session::Progress>) -> Ticker {
        Self::start_with(enabled, move || {
            let files = counters.files.load(Ordering::Relaxed);
            let mib = counters.bytes.load(Ordering::Relaxed) as f64 / (1024.0 * 1024.0);
            let m = counters.matches.load(Ordering::Relaxed);
            format!("scanning: {files} files, {mib:.1} MiB, {m} matches")
        })
    }

    /// Start redrawing the line `line` returns if `enabled` and stderr is a terminal.
    pub fn start_with(enabled: bool, line: impl Fn() -> String + Send + 'static) -> Ticker {
        let stop = Arc::new(AtomicBool::new(false));
        let handle = (enabled && std::io::stderr().is_terminal()).then(|| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut drawn = false;
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(150));
                    eprint!("\r\x1b[2K{}", line());
                    drawn = true;
                }
                if drawn {
                    eprint!("\r\x1b[2K");
                    let _ = std::io::stderr().flush();
                }
            })
        });
        Ticker { stop, handle }
    }

    /// Stop and erase the progress line.
    pub fn finish(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

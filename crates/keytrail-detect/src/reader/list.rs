//! Which files a run reads and in what order: directory walks, CloudTrail object
//! names and the time in their keys, and the objects a [`Fetch`] opens (S3).

use super::*;

/// Lists the log files under `paths` (directories are walked; files are kept as given),
/// with a diagnostic for each directory that cannot be read. Used to split files
/// between threads ([`crate::engine::run_parallel`]).
pub fn list_files(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<Diagnostic>) {
    let mut files = Vec::new();
    let mut diags = Vec::new();
    for p in paths {
        if p.is_dir() {
            collect_files(p, &mut files, &mut diags);
        } else {
            files.push(p.clone());
        }
    }
    (files, diags)
}

/// Time encoded in a CloudTrail object key: `…_20240101T0005Z_…` or a
/// `YYYY/MM/DD` directory path. Milliseconds since the epoch.
pub fn key_time(path: &Path) -> Option<i64> {
    let s = path.to_string_lossy();
    let b = s.as_bytes();
    // 20240101T0005Z
    for i in 0..b.len().saturating_sub(13) {
        let w = &b[i..i + 14];
        if w[8] == b'T'
            && w[13] == b'Z'
            && w[..8].iter().all(u8::is_ascii_digit)
            && w[9..13].iter().all(u8::is_ascii_digit)
        {
            let t = format!(
                "{}-{}-{}T{}:{}:00Z",
                &s[i..i + 4],
                &s[i + 4..i + 6],
                &s[i + 6..i + 8],
                &s[i + 9..i + 11],
                &s[i + 11..i + 13]
            );
            if let Some(ms) = parse_rfc3339_ms(&t) {
                return Some(ms);
            }
        }
    }
    // …/YYYY/MM/DD/…
    let parts: Vec<&str> = s.split(['/', '\\']).collect();
    for w in parts.windows(3) {
        if w[0].len() == 4
            && w[1].len() == 2
            && w[2].len() == 2
            && w.iter().all(|p| p.bytes().all(|c| c.is_ascii_digit()))
            && let Some(ms) = parse_rfc3339_ms(&format!("{}-{}-{}T00:00:00Z", w[0], w[1], w[2]))
        {
            return Some(ms);
        }
    }
    None
}

/// `objects` in merge order: by the time in their name ([`key_time`]; none first),
/// then by name compared as a path, as [`DirRecords::from_files`] orders files.
pub fn merge_order(objects: Vec<LogObject>) -> Vec<LogObject> {
    let mut keyed: Vec<(i64, PathBuf, LogObject)> = objects
        .into_iter()
        .map(|o| (o.key_time().unwrap_or(i64::MIN), PathBuf::from(&o.name), o))
        .collect();
    keyed.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    keyed.into_iter().map(|(_, _, o)| o).collect()
}

/// Whether a file name is one of the log files a directory walk reads (`.json`,
/// `.json.gz`, `.jsonl`, `.ndjson`, `.gz`, `.log` and their gzipped forms; not hidden).
pub fn is_log_name(fname: &str) -> bool {
    if fname.starts_with('.') {
        return false;
    }
    let lower = fname.to_ascii_lowercase();
    [
        ".json",
        ".json.gz",
        ".jsonl",
        ".ndjson",
        ".gz",
        ".log",
        ".jsonl.gz",
        ".ndjson.gz",
    ]
    .iter()
    .any(|ext| lower.ends_with(ext))
}

pub(super) fn collect_files(dir: &Path, out: &mut Vec<PathBuf>, diags: &mut Vec<Diagnostic>) {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) => {
            diags.push(Diagnostic::error(
                kinds::UNREADABLE,
                dir.display().to_string(),
                e.to_string(),
            ));
            return;
        }
    };
    // The entry's type comes from the directory listing (no `stat` per file); a
    // symlink is followed to see what it points at.
    let mut entries: Vec<(PathBuf, bool)> = rd
        .filter_map(|e| {
            let e = e.ok()?;
            let dir = match e.file_type() {
                Ok(t) if t.is_symlink() => e.path().is_dir(),
                Ok(t) => t.is_dir(),
                Err(_) => e.path().is_dir(),
            };
            Some((e.path(), dir))
        })
        .collect();
    entries.sort();
    for (p, is_dir) in entries {
        let fname = p
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        if fname.starts_with('.') || fname == "CloudTrail-Digest" {
            continue;
        }
        if is_dir {
            collect_files(&p, out, diags);
        } else if is_log_name(&fname) {
            out.push(p);
        }
    }
}

/// Time of the first record in a file, for ordering files without a key time.
/// Reads only as far as the first record (1 MiB windows, not the whole file).
pub fn first_event_time_of(path: &Path) -> Option<i64> {
    let f = File::open(path).ok()?;
    read_stream_sized(&path.display().to_string(), Box::new(f), 0, 1 << 20)
        .find_map(|r| r.ok())
        .map(|e| e.time_ms)
}

/// A log read through a [`Fetch`] instead of from the file system (an S3 object).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogObject {
    /// Its name in diagnostics and in the `--state` file (`s3://bucket/key`); the
    /// time in it ([`key_time`]) orders the merge as a file path's does.
    pub name: String,
    /// Its size in bytes as stored (a changed size means a changed object).
    pub size: u64,
}

impl LogObject {
    /// The time in its name ([`key_time`]), in milliseconds.
    pub fn key_time(&self) -> Option<i64> {
        key_time(Path::new(&self.name))
    }
}

/// Opens the objects of a merge ([`DirRecords::from_objects`]); the network side of
/// a remote source lives in its implementation, not here.
pub trait Fetch: Send + Sync {
    /// Told once, before any [`Fetch::open`], which objects will be opened and in
    /// which order, so that it can fetch ahead.
    fn plan(&self, objects: &[LogObject]);
    /// Object `idx` of the plan as a stream (gzip is recognised as in files), or why
    /// it cannot be read. Called once per object, roughly in plan order (parse
    /// workers open the next few objects at once).
    fn open(&self, idx: usize) -> Result<Box<dyn Read + Send>, String>;
}

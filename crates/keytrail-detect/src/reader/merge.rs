//! The time-ordered merge of many files or objects: files sorted by the time in their
//! key (or first record) and merged by event time with a heap, opening a file only
//! when the merge reaches it.

use super::*;

/// What a merge reads: local files or fetched objects, in merge order.
pub(super) enum Inputs {
    Files(Vec<PathBuf>),
    Objects(Vec<LogObject>, Arc<dyn Fetch>),
}

impl Inputs {
    pub(super) fn len(&self) -> usize {
        match self {
            Inputs::Files(f) => f.len(),
            Inputs::Objects(o, _) => o.len(),
        }
    }

    /// The records of input `idx`.
    pub(super) fn read(&self, idx: usize) -> FileRecords {
        match self {
            Inputs::Files(f) => read_file(&f[idx]),
            Inputs::Objects(o, fetch) => {
                let name = &o[idx].name;
                match fetch.open(idx) {
                    Ok(r) => read_stream_sized(
                        name,
                        r,
                        usize::try_from(o[idx].size).unwrap_or(0),
                        WINDOW_BYTES,
                    ),
                    Err(e) => {
                        FileRecords::failed(name, Diagnostic::error(kinds::UNREADABLE, name, e))
                    }
                }
            }
        }
    }
}

pub(super) struct OpenFile {
    records: Source,
    head: Option<Event>,
    /// The worker that parsed the file (`usize::MAX` when read on this thread).
    worker: usize,
}

/// Where an open file's records come from.
pub(super) enum Source {
    /// Read and parsed on the merging thread.
    Live(FileRecords),
    /// Parsed by a worker, received in chunks as they are parsed.
    Streamed(Stream),
    /// Finished (the slot can be reused).
    Closed,
}

impl Iterator for Source {
    type Item = ReadItem;
    fn next(&mut self) -> Option<ReadItem> {
        match self {
            Source::Live(r) => r.next(),
            Source::Streamed(s) => s.next(),
            Source::Closed => None,
        }
    }
}

impl Source {
    /// Whether an exhausted file's slot may be reused: closed by the merge, or a file
    /// that could not be read (the same slots as without workers, so events with
    /// equal times keep their order).
    pub(super) fn reusable(&self) -> bool {
        match self {
            Source::Closed => true,
            Source::Live(r) if r.is_spent_failure() => true,
            // Asked only once the file is exhausted.
            Source::Streamed(s) => match &s.end {
                Some((Some(r), _)) => r.is_spent_failure(),
                Some((None, failed)) => *failed,
                None => false,
            },
            Source::Live(_) => false,
        }
    }
}

/// A directory tree read in event-time order: files are sorted by the time in their
/// S3 key (or their first record) and merged by event time with a heap, opening a file
/// only when the merge reaches its start time.
pub struct DirRecords {
    /// Key time of each input, in merge order.
    keys: Vec<i64>,
    pub(super) inputs: Arc<Inputs>,
    next_file: usize,
    open: Vec<OpenFile>,
    heap: BinaryHeap<Reverse<(i64, usize)>>,
    pending: std::collections::VecDeque<Diagnostic>,
    pub(super) prefetch: Option<Prefetch>,
    /// The worker that parsed the event last returned (`usize::MAX`: none).
    last_worker: usize,
    /// Returned events waiting to go back to their worker, per worker.
    dead: Vec<Vec<Event>>,
}

/// How far ahead of the merge head a file's key time may be before it is opened.
/// CloudTrail names a file by its delivery time, up to ~15 minutes after its events.
pub(super) const OPEN_SLACK_MS: i64 = 20 * 60 * 1000;

impl DirRecords {
    /// Reads every log file under `dir`.
    pub fn new(dir: &Path) -> Self {
        let mut files = Vec::new();
        let mut diags = Vec::new();
        collect_files(dir, &mut files, &mut diags);
        Self::from_files(files, diags)
    }

    /// Merges the given files.
    pub fn from_files(files: Vec<PathBuf>, diags: Vec<Diagnostic>) -> Self {
        // One file needs no ordering (and no read ahead to find its first time).
        let single = files.len() == 1;
        let mut keyed: Vec<(i64, PathBuf)> = files
            .into_iter()
            .map(|p| {
                let key = if single {
                    None
                } else {
                    key_time(&p).or_else(|| first_event_time_of(&p))
                };
                (key.unwrap_or(i64::MIN), p)
            })
            .collect();
        keyed.sort();
        let (keys, files) = keyed.into_iter().unzip();
        Self::merging(keys, Inputs::Files(files), diags)
    }

    pub(super) fn merging(keys: Vec<i64>, inputs: Inputs, diags: Vec<Diagnostic>) -> Self {
        DirRecords {
            keys,
            inputs: Arc::new(inputs),
            next_file: 0,
            open: Vec::new(),
            heap: BinaryHeap::new(),
            pending: diags.into(),
            prefetch: None,
            last_worker: usize::MAX,
            dead: Vec::new(),
        }
    }

    /// Merges objects opened by `fetch` (such as S3 objects), in the order and with
    /// the `workers` of [`DirRecords::from_files_enriched`]: objects are ordered by
    /// the time in their name (those without one first) then by name as paths, so
    /// objects named like the files of a directory tree give the same items in the
    /// same order.
    pub fn from_objects(
        objects: Vec<LogObject>,
        fetch: Arc<dyn Fetch>,
        diags: Vec<Diagnostic>,
        workers: usize,
        enrich: Option<Enrich>,
    ) -> Self {
        let objects = merge_order(objects);
        fetch.plan(&objects);
        let keys = objects
            .iter()
            .map(|o| o.key_time().unwrap_or(i64::MIN))
            .collect();
        let mut d = Self::merging(keys, Inputs::Objects(objects, fetch), diags);
        d.start_workers(workers, enrich);
        d
    }

    /// Merges objects like [`DirRecords::from_objects`], each with the time that
    /// orders it given (a distributed run's share of files keyed as the files were:
    /// [`crate::distributed::merge_key`]): ordered by that time, then by name as a
    /// path.
    pub fn from_keyed_objects(
        objects: Vec<(i64, LogObject)>,
        fetch: Arc<dyn Fetch>,
        diags: Vec<Diagnostic>,
        workers: usize,
        enrich: Option<Enrich>,
    ) -> Self {
        let mut keyed: Vec<(i64, PathBuf, LogObject)> = objects
            .into_iter()
            .map(|(k, o)| (k, PathBuf::from(&o.name), o))
            .collect();
        keyed.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        let (keys, objects): (Vec<i64>, Vec<LogObject>) =
            keyed.into_iter().map(|(k, _, o)| (k, o)).unzip();
        fetch.plan(&objects);
        let mut d = Self::merging(keys, Inputs::Objects(objects, fetch), diags);
        d.start_workers(workers, enrich);
        d
    }

    pub(super) fn start_workers(&mut self, workers: usize, enrich: Option<Enrich>) {
        if workers > 0 && self.inputs.len() > 0 {
            self.prefetch = Some(Prefetch::start(
                self.inputs.clone(),
                workers,
                PREFETCH_MAX_ITEMS,
                enrich,
            ));
            self.dead = (0..workers).map(|_| Vec::new()).collect();
        }
    }

    /// Merges the given files like [`DirRecords::from_files`], with `workers` threads
    /// reading, decompressing and parsing files ahead of the merge (a few files ahead,
    /// in merge order). The items, their order and the diagnostics are the same as
    /// with [`DirRecords::from_files`].
    pub fn from_files_parallel(
        files: Vec<PathBuf>,
        diags: Vec<Diagnostic>,
        workers: usize,
    ) -> Self {
        Self::from_files_enriched(files, diags, workers, None)
    }

    /// [`DirRecords::from_files_parallel`] where the workers also run `enrich` on each
    /// event they parse (stateless per-event work done ahead of the merge, such as
    /// [`crate::sigma::SigmaRules::prematch`]). Events parsed on the merging thread
    /// (the tail of a file too large to parse ahead) are not enriched.
    pub fn from_files_enriched(
        files: Vec<PathBuf>,
        diags: Vec<Diagnostic>,
        workers: usize,
        enrich: Option<Enrich>,
    ) -> Self {
        let mut d = Self::from_files(files, diags);
        d.start_workers(workers, enrich);
        d
    }

    pub(super) fn advance(&mut self, idx: usize) {
        let f = &mut self.open[idx];
        loop {
            match f.records.next() {
                Some(Ok(e)) => {
                    self.heap.push(Reverse((e.time_ms, idx)));
                    f.head = Some(e);
                    return;
                }
                Some(Err(d)) => self.pending.push_back(d),
                None => {
                    f.head = None;
                    return;
                }
            }
        }
    }

    /// Gives back the event last returned by `next` once the caller is done with it,
    /// so that the worker thread that parsed it frees it (freeing memory on the
    /// thread that allocated it is much cheaper); without workers it is dropped.
    pub fn recycle(&mut self, ev: Event) {
        let (Some(p), Some(batch)) = (&self.prefetch, self.dead.get_mut(self.last_worker)) else {
            return;
        };
        batch.push(ev);
        if batch.len() >= RECYCLE_BATCH {
            let full = std::mem::replace(batch, Vec::with_capacity(RECYCLE_BATCH));
            p.recycle(self.last_worker, full);
        }
    }

    pub(super) fn open_next(&mut self) {
        let mut worker = usize::MAX;
        let records = match &self.prefetch {
            Some(p) => {
                let (w, stream) = p.take(self.next_file);
                worker = w;
                Source::Streamed(stream)
            }
            None => Source::Live(self.inputs.read(self.next_file)),
        };
        self.next_file += 1;
        let idx = self
            .open
            .iter()
            .position(|f| f.head.is_none() && f.records.reusable());
        let of = OpenFile {
            records,
            head: None,
            worker,
        };
        let idx = match idx {
            Some(i) => {
                self.open[i] = of;
                i
            }
            None => {
                self.open.push(of);
                self.open.len() - 1
            }
        };
        self.advance(idx);
    }
}

impl Iterator for DirRecords {
    type Item = ReadItem;
    fn next(&mut self) -> Option<ReadItem> {
        loop {
            if let Some(d) = self.pending.pop_front() {
                return Some(Err(d));
            }
            // Open files whose key time is not after the current merge head.
            if self.next_file < self.keys.len() {
                let head = self.heap.peek().map(|Reverse((t, _))| *t);
                let next_key = self.keys[self.next_file];
                if head.is_none_or(|h| {
                    next_key == i64::MIN || next_key <= h.saturating_add(OPEN_SLACK_MS)
                }) {
                    self.open_next();
                    continue;
                }
            }
            let Reverse((_, idx)) = self.heap.pop()?;
            let ev = self.open[idx].head.take();
            self.last_worker = self.open[idx].worker;
            self.advance(idx);
            if self.open[idx].head.is_none() {
                // Release the file's memory.
                self.open[idx].records = Source::Closed;
            }
            if let Some(ev) = ev {
                return Some(Ok(ev));
            }
        }
    }
}

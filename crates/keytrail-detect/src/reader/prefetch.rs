//! Parse workers: threads that read and parse the next files in merge order ahead of
//! the merge (bounded in files and items) and hand over parsed records in chunks.

use super::*;

/// Per-event work a parse worker does after parsing (see
/// [`DirRecords::from_files_enriched`]).
pub type Enrich = Arc<dyn Fn(&mut Event) + Send + Sync>;

/// Processed events handed back to a parse worker at a time.
pub(super) const RECYCLE_BATCH: usize = 1024;

/// Most records a worker parses ahead from one file; the rest of a larger file is
/// parsed by the merging thread as it goes, so memory stays bounded.
pub(super) const PREFETCH_MAX_ITEMS: usize = 1 << 17;

/// Most files parsed ahead of the merge.
pub(super) const MAX_FILES_AHEAD: usize = 256;

/// Parsed items waiting for the merge past which workers take no further file (beyond
/// one file each).
pub(super) const MAX_ITEMS_AHEAD: usize = 1 << 13;

/// Items per chunk of a parsed file: the merge consumes a file while it is being
/// parsed, so events are still in cache when the engine sees them.
pub(super) const CHUNK: usize = 256;

/// How a parsed file ends: the rest of a file too large to parse ahead, and whether
/// the file could not be read (as `FileRecords::Failed`).
pub(super) type End = (Option<FileRecords>, bool);

/// A file taken by a worker: its parsed chunks so far, and its end once parsed.
pub(super) struct Slot {
    worker: usize,
    chunks: std::collections::VecDeque<Vec<ReadItem>>,
    end: Option<End>,
}

/// The merge's side of a file parsed by a worker.
pub(super) struct Stream {
    state: Arc<(Mutex<PrefetchState>, Condvar)>,
    idx: usize,
    cur: std::vec::IntoIter<ReadItem>,
    pub(super) end: Option<End>,
}

impl Stream {
    pub(super) fn next(&mut self) -> Option<ReadItem> {
        loop {
            if let Some(it) = self.cur.next() {
                return Some(it);
            }
            if let Some((rest, _)) = &mut self.end {
                return rest.as_mut().and_then(Iterator::next);
            }
            let (lock, cv) = &*self.state;
            let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                let slot = st.ready.get_mut(&self.idx)?;
                if let Some(chunk) = slot.chunks.pop_front() {
                    st.buffered -= chunk.len();
                    self.cur = chunk.into_iter();
                    cv.notify_all();
                    break;
                }
                if slot.end.is_some() {
                    self.end = st.ready.remove(&self.idx).and_then(|s| s.end);
                    break;
                }
                st = cv.wait(st).unwrap_or_else(|e| e.into_inner());
            }
        }
    }
}

#[derive(Default)]
pub(super) struct PrefetchState {
    /// Next file index a worker will take.
    next: usize,
    /// Files taken by the merge so far.
    taken: usize,
    /// Number of files.
    total: usize,
    ready: std::collections::HashMap<usize, Slot>,
    /// Parsed items waiting for the merge, across files.
    buffered: usize,
    /// Events the merge is done with, dropped by the workers that allocated them
    /// (freeing memory on the allocating threads keeps their allocator caches warm).
    graveyards: Vec<Vec<Vec<Event>>>,
    stop: bool,
}

/// Worker threads that read, decompress and parse files in merge order, at most
/// `lookahead` files ahead of the merge.
pub(super) struct Prefetch {
    state: Arc<(Mutex<PrefetchState>, Condvar)>,
    workers: Vec<std::thread::JoinHandle<()>>,
}

impl Prefetch {
    pub(super) fn start(
        paths: Arc<Inputs>,
        workers: usize,
        max_items: usize,
        enrich: Option<Enrich>,
    ) -> Self {
        let state: Arc<(Mutex<PrefetchState>, Condvar)> = Arc::new((
            Mutex::new(PrefetchState {
                total: paths.len(),
                graveyards: (0..workers).map(|_| Vec::new()).collect(),
                ..PrefetchState::default()
            }),
            Condvar::new(),
        ));
        // Each worker may always be one file ahead; beyond that, workers go on to
        // further files while few parsed items wait, so small files (a delivered
        // CloudTrail file holds a few dozen records) do not make the merge and the
        // workers wait for each other file by file.
        let lookahead = workers + 1;
        let handles = (0..workers)
            .map(|worker| {
                let state = state.clone();
                let paths = paths.clone();
                let enrich = enrich.clone();
                std::thread::spawn(move || {
                    let (lock, cv) = &*state;
                    loop {
                        let idx = {
                            let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
                            while !st.stop
                                && st.next < paths.len()
                                && st.next >= st.taken + lookahead
                                && (st.next >= st.taken + MAX_FILES_AHEAD
                                    || st.buffered >= MAX_ITEMS_AHEAD)
                            {
                                st = cv.wait(st).unwrap_or_else(|e| e.into_inner());
                            }
                            if st.stop || st.next >= paths.len() {
                                return;
                            }
                            st.next += 1;
                            let idx = st.next - 1;
                            st.ready.insert(
                                idx,
                                Slot {
                                    worker,
                                    chunks: Default::default(),
                                    end: None,
                                },
                            );
                            cv.notify_all();
                            (idx, std::mem::take(&mut st.graveyards[worker]))
                        };
                        let (idx, dead) = idx;
                        drop(dead);
                        let push = |chunk: Vec<ReadItem>, end: Option<End>| {
                            let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
                            let n = chunk.len();
                            if let Some(slot) = st.ready.get_mut(&idx) {
                                if !chunk.is_empty() {
                                    slot.chunks.push_back(chunk);
                                }
                                slot.end = end;
                                st.buffered += n;
                            }
                            cv.notify_all();
                        };
                        let mut records = paths.read(idx);
                        let mut chunk = Vec::with_capacity(CHUNK);
                        let mut n = 0;
                        let mut done = false;
                        while n < max_items {
                            match records.next() {
                                Some(mut it) => {
                                    if let (Ok(ev), Some(f)) = (&mut it, &enrich) {
                                        f(ev);
                                    }
                                    chunk.push(it);
                                    n += 1;
                                    if chunk.len() == CHUNK {
                                        push(
                                            std::mem::replace(
                                                &mut chunk,
                                                Vec::with_capacity(CHUNK),
                                            ),
                                            None,
                                        );
                                    }
                                }
                                None => {
                                    done = true;
                                    break;
                                }
                            }
                        }
                        let failed = records.is_spent_failure();
                        push(chunk, Some(((!done).then_some(records), failed)));
                    }
                })
            })
            .collect();
        Prefetch {
            state,
            workers: handles,
        }
    }

    /// Hands processed events to the workers to free (or frees them here when every
    /// file has been handed out, or when the workers are far behind).
    pub(super) fn recycle(&self, worker: usize, events: Vec<Event>) {
        let (lock, _) = &*self.state;
        let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
        if st.next >= st.total || st.stop || st.graveyards.get(worker).is_none_or(|g| g.len() >= 4)
        {
            drop(st);
            drop(events);
            return;
        }
        st.graveyards[worker].push(events);
    }

    /// Opens file `idx` (files must be opened in order): waits until a worker has
    /// taken it and returns the worker's id and the stream of its records.
    pub(super) fn take(&self, idx: usize) -> (usize, Stream) {
        let (lock, cv) = &*self.state;
        let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(slot) = st.ready.get(&idx) {
                let worker = slot.worker;
                st.taken = idx + 1;
                cv.notify_all();
                return (
                    worker,
                    Stream {
                        state: self.state.clone(),
                        idx,
                        cur: Vec::new().into_iter(),
                        end: None,
                    },
                );
            }
            st = cv.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        {
            let (lock, cv) = &*self.state;
            lock.lock().unwrap_or_else(|e| e.into_inner()).stop = true;
            cv.notify_all();
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

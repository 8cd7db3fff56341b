//! The `Commit` operator on worker 0: once every worker has reported the files of a commit
//! boundary, the boundary's files are committed to both tables, on a thread of its own.

use std::collections::BTreeMap;

use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::Operator;

use super::{Report, SharedStatus, fail};
use crate::event::Position;
use crate::lake::table::{self, CommitMeta, Table};
use crate::lake::writer::{DataFile, TableKind};
use crate::lake::{LakeConfig, LakeError};

/// Called after each lake commit with its metadata (on the commit thread).
pub type AfterCommit = Box<dyn FnMut(&CommitMeta) + Send>;

/// What worker 0 needs to commit.
pub struct CommitSetup {
    /// The data directory and settings.
    pub config: LakeConfig,
    /// The pipeline id.
    pub pipeline: String,
    /// The source, as described in commits.
    pub source: String,
    /// The generator identity, for generated sources.
    pub generator: Option<(u64, i64, f64)>,
    /// Per worker: positions at the last commit (or at the start).
    pub positions: Vec<Vec<Position>>,
    /// The last committed epoch.
    pub resumed: Option<u64>,
    /// Where progress and errors go.
    pub status: SharedStatus,
    /// Called after each commit (Kafka offsets go to the consumer group).
    pub after_commit: Option<AfterCommit>,
}

/// Gathers the reports on worker 0 and commits each boundary once every worker has reported
/// it. The output carries the committed epochs, and is held back until they are committed.
///
/// The commits themselves (Delta log writes, which wait for the disk) run in order on a thread
/// of their own, so that worker 0 goes on moving data and closing epochs meanwhile; the thread
/// wakes the operator when a commit is done.
pub fn commit<'s>(
    reports: StreamVec<'s, u64, Report>,
    setup: Option<CommitSetup>,
    index: usize,
) -> StreamVec<'s, u64, u64> {
    let scope = reports.scope();
    reports.unary_frontier(Exchange::new(|_: &Report| 0), "Commit", move |cap, info| {
        let mut cap = (index == 0 && setup.is_some()).then_some(cap);
        let setup = setup.filter(|_| index == 0);
        let status = setup.as_ref().map(|s| s.status.clone());
        if let (Some(cap), Some(s)) = (cap.as_mut(), setup.as_ref()) {
            cap.downgrade(&s.resumed.map_or(0, |e| e + 1));
        }
        let activator = scope.worker().sync_activator_for(info.address.to_vec());
        let mut thread = setup.map(|setup| CommitThread::start(setup, activator));
        let mut failed = false;
        let mut pending: BTreeMap<u64, Vec<Report>> = BTreeMap::new();
        move |(input, frontier), output| {
            input.for_each_time(|time, data| {
                let entry = pending.entry(*time.time()).or_default();
                for batch in data {
                    entry.append(batch);
                }
            });
            let (Some(t), Some(status)) = (thread.as_mut(), status.as_ref()) else {
                return;
            };
            // Commits done since last time, in order.
            while let Ok((epoch, result)) = t.done.try_recv() {
                t.in_flight -= 1;
                match result {
                    Ok(()) => {
                        if let Some(cap) = cap.as_mut() {
                            output.session(&cap.delayed(&epoch)).give(epoch);
                            cap.downgrade(&(epoch + 1));
                        }
                    }
                    Err(e) => {
                        fail(status, &e);
                        failed = true;
                        cap = None;
                    }
                }
            }
            // Boundaries every worker has reported, to the commit thread.
            while let Some(entry) = pending.first_entry() {
                if frontier.less_equal(entry.key()) {
                    break;
                }
                let (epoch, reports) = entry.remove_entry();
                if !failed && t.jobs.send((epoch, reports)).is_ok() {
                    t.in_flight += 1;
                }
            }
            if (frontier.is_empty() || failed) && t.in_flight == 0 {
                cap = None;
                if let Some(t) = thread.take() {
                    t.finish();
                }
            }
        }
    })
}

/// Makes data files and their directory entries durable: a commit may only reference what
/// survives a crash.
fn sync_files(dir: &std::path::Path, files: &[DataFile]) -> Result<(), LakeError> {
    if crate::lake::store::is_remote(dir) {
        // Every object was uploaded whole before it was reported.
        return Ok(());
    }
    let mut dirs = std::collections::BTreeSet::new();
    for f in files {
        let path = table::table_root(dir, f.table).join(&f.path);
        let file = std::fs::File::open(&path).map_err(|e| LakeError::io(&path, e))?;
        file.sync_all().map_err(|e| LakeError::io(&path, e))?;
        if let Some(parent) = path.parent() {
            dirs.insert(parent.to_path_buf());
        }
    }
    for d in dirs {
        let handle = std::fs::File::open(&d).map_err(|e| LakeError::io(&d, e))?;
        handle.sync_all().map_err(|e| LakeError::io(&d, e))?;
    }
    Ok(())
}

/// The thread that makes worker 0's commits.
struct CommitThread {
    jobs: std::sync::mpsc::Sender<(u64, Vec<Report>)>,
    done: std::sync::mpsc::Receiver<(u64, Result<(), LakeError>)>,
    in_flight: usize,
    handle: std::thread::JoinHandle<()>,
}

impl CommitThread {
    fn start(setup: CommitSetup, activator: timely::scheduling::SyncActivator) -> Self {
        let (jobs, receive_jobs) = std::sync::mpsc::channel::<(u64, Vec<Report>)>();
        let (send_done, done) = std::sync::mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("lake-commit".into())
            .spawn(move || {
                let mut committer = Committer::new(setup);
                for (epoch, reports) in receive_jobs {
                    let result = committer.commit(epoch, reports);
                    let failed = result.is_err();
                    let _ = send_done.send((epoch, result));
                    let _ = activator.activate();
                    if failed {
                        break;
                    }
                }
            })
            .expect("spawning the commit thread");
        CommitThread {
            jobs,
            done,
            in_flight: 0,
            handle,
        }
    }

    fn finish(self) {
        drop(self.jobs);
        let _ = self.handle.join();
    }
}

struct Committer {
    setup: CommitSetup,
    /// The last committed epoch.
    last: Option<u64>,
    /// Commits since the events table's small files were last counted, and the number of the
    /// next file compaction writes.
    since_compaction_check: u32,
    compacted: usize,
    runtime: Option<tokio::runtime::Runtime>,
    tables: Option<(Table, Table)>,
}

impl Committer {
    fn new(setup: CommitSetup) -> Self {
        Committer {
            last: setup.resumed,
            since_compaction_check: 0,
            compacted: 0,
            setup,
            runtime: None,
            tables: None,
        }
    }

    fn commit(&mut self, epoch: u64, reports: Vec<Report>) -> Result<(), LakeError> {
        let mut files = Vec::new();
        let (mut rows, mut dead_rows, mut input_bytes) = (0, 0, 0);
        // The range starts after the last commit: a worker that had nothing to write for a
        // while reports a range reaching back past it, which must not make ranges overlap.
        let first_epoch = self.last.map_or(0, |e| e + 1);
        let mut moved = false;
        let mut last = false;
        for report in reports {
            last |= report.last;
            if let Some(p) = self.setup.positions.get_mut(report.worker) {
                moved |= *p != report.positions;
                *p = report.positions;
            }
            files.extend(report.files);
            rows += report.rows;
            dead_rows += report.dead_rows;
            input_bytes += report.input_bytes;
        }
        // An empty last range is committed after this run's others, so that the lake ends at
        // the epoch the views end at; a run that wrote nothing commits nothing.
        if files.is_empty() && !moved && !(last && self.last > self.setup.resumed) {
            return Ok(());
        }
        if self.runtime.is_none() {
            self.runtime = Some(table::runtime()?);
        }
        let rt = self.runtime.as_ref().expect("set above");
        if self.tables.is_none() {
            let dir = &self.setup.config.dir;
            let events = Table::open(rt, &table::table_root(dir, TableKind::Events))?;
            let dead = Table::open(rt, &table::table_root(dir, TableKind::DeadLetters))?;
            self.tables = Some((events, dead));
        }
        let (events, dead) = self.tables.as_mut().expect("set above");
        let started = std::time::Instant::now();
        sync_files(&self.setup.config.dir, &files)?;
        let meta = CommitMeta {
            pipeline: self.setup.pipeline.clone(),
            first_epoch,
            epoch,
            source: self.setup.source.clone(),
            generator: self.setup.generator,
            positions: self.setup.positions.clone(),
            rows,
            dead_rows,
            input_bytes,
        };
        let (dead_files, event_files): (Vec<DataFile>, Vec<DataFile>) = files
            .into_iter()
            .partition(|f| f.table == TableKind::DeadLetters);
        events.check(&event_files)?;
        dead.check(&dead_files)?;
        // Dead letters first: if the process dies between the two, the start-up repair removes
        // dead-letter files past the events table's last epoch.
        if !dead_files.is_empty() {
            dead.commit(rt, &dead_files, &meta)?;
        }
        let version = events.commit(rt, &event_files, &meta)?;
        self.last = Some(epoch);
        if let Some(after) = self.setup.after_commit.as_mut() {
            after(&meta);
        }
        let mut status = self.setup.status.lock().unwrap_or_else(|e| e.into_inner());
        status.committed = Some((epoch, version));
        status.commits += 1;
        let micros = started.elapsed().as_micros().max(1) as u64;
        let latency = status
            .commit_latency
            .get_or_insert_with(crate::pipeline::latency_histogram);
        let _ = latency.record(micros);
        drop(status);
        self.compact_small_files()
    }

    /// Compaction while running: every [`COMPACTION_CHECK_EVERY`] commits, in each partition of
    /// the events table, a size tier (files within a factor of 8) holding `compact_files` files
    /// smaller than [`crate::lake::COMPACT_TARGET_BYTES`] or more is merged into one file, as one
    /// `OPTIMIZE` commit (`dataChange: false`), on this thread between two commits. A crash
    /// before that commit leaves a file no version holds, which the next start removes
    /// ([`table::orphans`]).
    fn compact_small_files(&mut self) -> Result<(), LakeError> {
        let at_least = self.setup.config.compact_files;
        self.since_compaction_check += 1;
        if at_least == 0 || self.since_compaction_check < COMPACTION_CHECK_EVERY {
            return Ok(());
        }
        self.since_compaction_check = 0;
        let (Some(rt), Some((events, _))) = (self.runtime.as_ref(), self.tables.as_mut()) else {
            return Ok(());
        };
        let run = format!("{}-auto", crate::lake::writer::run_tag());
        let done = crate::lake::ops::compact_table(
            rt,
            events,
            crate::lake::COMPACT_TARGET_BYTES,
            at_least,
            true,
            &self.setup.config.files,
            &run,
            &mut self.compacted,
        )?;
        if let Some(version) = done.version {
            tracing::debug!(
                version,
                before = done.files_before,
                after = done.files_after,
                "compacted the events table"
            );
        }
        Ok(())
    }
}

/// Commits between two counts of the events table's small files (see
/// [`Committer::compact_small_files`]).
const COMPACTION_CHECK_EVERY: u32 = 4;

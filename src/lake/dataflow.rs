//! The lake inside the dataflow: each record is staged for Parquet as it is decoded, every
//! worker writes the closed epochs of its share to its own files, and worker 0 commits them.
//!
//! `Write` has two inputs, the raw chunks and the position markers (each worker's source
//! positions at the end of an epoch), and four outputs: events, dead letters and rows (for the
//! views; the pipeline decodes, [`crate::pipeline`]'s `Decoding`) and flush reports. A report says "worker W finished these files for epochs up to B, where
//! its sources stood at B"; it is sent at time B, the commit boundary, and the operator holds a
//! capability for the next boundary until it has sent it. `Commit`, on worker 0, therefore sees
//! its input frontier pass B only once every worker has reported B, and then commits B. It holds
//! a capability too, so a probe after it passes B only once B is committed.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use differential_dataflow::{AsCollection, VecCollection};
use serde::{Deserialize, Serialize};
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;

use super::layout::{Layout, SourceNames, Stage, StageSizes};
use super::table::{self};
use super::writer::{DataFile, TableKind, TableWriter};
use super::{LakeConfig, LakeError, next_boundary};
use crate::event::{DeadLetter, Event, Position};
use crate::source::{Chunk, ChunkPool};

mod commit;

pub use commit::{AfterCommit, CommitSetup, commit};

/// A worker's source positions at the end of an epoch.
pub type Marker = (usize, Vec<Position>);

/// One worker's files for a commit range, and where its sources stood at the range's end.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Report {
    /// The worker.
    pub worker: usize,
    /// The files.
    pub files: Vec<DataFile>,
    /// The worker's source positions at the end of the range.
    pub positions: Vec<Position>,
    /// Event rows.
    pub rows: u64,
    /// Dead-letter rows.
    pub dead_rows: u64,
    /// Raw input bytes behind the rows.
    pub input_bytes: u64,
    /// The worker's last report of the run: committed even if it holds nothing new, so that
    /// the lake's last epoch is the one the views end at.
    pub last: bool,
}

/// How far the lake has got, for status lines and tests; `error` is set when writing failed.
#[derive(Debug, Default)]
pub struct LakeStatus {
    /// The last committed epoch and table version.
    pub committed: Option<(u64, u64)>,
    /// Commits made by this run.
    pub commits: u64,
    /// The first error, which stops the run.
    pub error: Option<String>,
    /// How long each commit took (both tables' log entries), in microseconds.
    pub commit_latency: Option<hdrhistogram::Histogram<u64>>,
}

/// A shared [`LakeStatus`].
pub type SharedStatus = Arc<Mutex<LakeStatus>>;

fn fail(status: &SharedStatus, e: &LakeError) {
    let mut s = status.lock().unwrap_or_else(|e| e.into_inner());
    if s.error.is_none() {
        s.error = Some(e.to_string());
    }
}

/// What a worker needs to write its share of the lake.
pub struct WorkerLake {
    /// Where and how.
    pub config: LakeConfig,
    /// The layout of rows.
    pub layout: Arc<Layout>,
    /// How `_source` names the source's files and topics.
    pub names: Arc<SourceNames>,
    /// This worker.
    pub worker: usize,
    /// This process run's file tag.
    pub run: String,
    /// The last committed epoch, if any: this run's epochs start after it.
    pub resumed: Option<u64>,
    /// This worker's positions at the last commit (or where it starts).
    pub start_positions: Vec<Position>,
    /// Where errors go.
    pub status: SharedStatus,
}

/// The time and difference of a chunk, which its events carry.
pub type Stamp = (u64, isize);

/// Hands chunks to `decode` (called with the epoch, the chunk, its [`Stamp`], the [`Decoded`]
/// its events, dead letters, rows and symbols go to and, when the lake is on, the stage of the
/// epoch), which stages the records for the lake; writes closed epochs; gives each spent chunk
/// back to `pool`.
pub fn stage_and_write<'s, X, F>(
    chunks: VecCollection<'s, u64, Chunk, isize>,
    markers: VecCollection<'s, u64, Marker, isize>,
    lake: Option<WorkerLake>,
    pool: ChunkPool,
    mut decode: F,
) -> Written<'s, X>
where
    F: FnMut(u64, &Chunk, Stamp, &mut Decoded<X>, Option<&mut Stage>) + 'static,
    X: Clone + 'static,
{
    let scope = chunks.inner.scope();
    let mut builder = OperatorBuilder::new("Write".to_owned(), scope);
    let mut chunk_input = builder.new_input(chunks.inner, Pipeline);
    let mut marker_input = builder.new_input(markers.inner, Pipeline);
    let (oks, oks_stream) = builder.new_output();
    let (errs, errs_stream) = builder.new_output();
    let (rows_out, rows_stream) = builder.new_output();
    // The reports' output is the last: its capability is the one kept.
    let (met, met_stream) = builder.new_output();
    let (reports, reports_stream) = builder.new_output();
    let mut oks = OutputBuilder::from(oks);
    let mut met = OutputBuilder::from(met);
    let mut errs = OutputBuilder::from(errs);
    let mut rows_out = OutputBuilder::from(rows_out);
    let mut reports = OutputBuilder::from(reports);

    // The file thread wakes the operator when it has finished a range's files.
    let activator = scope
        .worker()
        .sync_activator_for(builder.operator_info().address.to_vec());
    builder.build(move |mut capabilities| {
        let mut writer = lake.map(|lake| LakeWriter::new(lake, activator));
        // Hold the reports capability at the first epoch that can still be flushed.
        let mut report_cap = capabilities.pop().and_then(|mut cap| {
            let w = writer.as_ref()?;
            cap.downgrade(&w.flushed_through.map_or(0, |e| e + 1));
            Some(cap)
        });
        capabilities.clear();
        let mut out = Decoded::default();
        move |frontiers| {
            let mut oks = oks.activate();
            let mut errs = errs.activate();
            let mut rows_out = rows_out.activate();
            let mut reports = reports.activate();
            let mut met = met.activate();
            chunk_input.for_each_time(|time, data| {
                let epoch = *time.time();
                let mut oks = oks.session(&time);
                let mut errs = errs.session(&time);
                let mut rows_out = rows_out.session(&time);
                for (chunk, t, r) in data.flat_map(|batch| batch.drain(..)) {
                    let stage = writer.as_mut().map(|w| w.stage(epoch, &chunk));
                    // `decode` reserves room for a chunk: the sessions take the vectors'
                    // allocations with their contents.
                    decode(epoch, &chunk, (t, r), &mut out, stage);
                    // The chunk's events leave as one container, not copied one by one.
                    if !out.events.is_empty() {
                        oks.give_container(&mut out.events);
                        out.events.clear();
                    }
                    if !out.rows.is_empty() {
                        rows_out.give_container(&mut out.rows);
                        out.rows.clear();
                    }
                    for d in out.dead.drain(..) {
                        errs.give((d, t, r));
                    }
                    if !out.met.is_empty() {
                        met.session(&time).give_container(&mut out.met);
                        out.met.clear();
                    }
                    pool.give(chunk);
                }
            });
            marker_input.for_each_time(|_time, data| {
                if let Some(w) = writer.as_mut() {
                    w.mark(data.flat_map(|batch| batch.drain(..)));
                }
            });
            let Some(w) = writer.as_mut().filter(|w| !w.failed) else {
                return;
            };
            let mut emit = |at: u64, report: Report| {
                if let Some(cap) = report_cap.as_mut() {
                    reports.session(&cap.delayed(&at)).give(report);
                    cap.downgrade(&(at.saturating_add(1)));
                }
            };
            // Epochs before both frontiers are closed; with both inputs done, all are.
            let closed = frontiers.iter().map(|f| f.frontier().first().copied());
            if w.write_closed(closed.min().flatten(), &mut emit) {
                report_cap = None;
            }
        }
    });

    Written {
        events: oks_stream.as_collection(),
        dead: errs_stream.as_collection(),
        rows: rows_stream.as_collection(),
        reports: reports_stream,
        met: met_stream,
    }
}

/// What decoding a chunk gives, filled by the `decode` function of [`stage_and_write`].
pub struct Decoded<X> {
    /// Its events.
    pub events: Vec<(Event, u64, isize)>,
    /// Its dead letters.
    pub dead: Vec<DeadLetter>,
    /// Its rows (another form of its events, such as the rows SQL views read).
    pub rows: Vec<(X, u64, isize)>,
    /// In a cluster: the symbols decoding met for the first time, with their strings
    /// ([`crate::views::Known`]).
    pub met: Vec<(u64, String)>,
}

impl<X> Default for Decoded<X> {
    fn default() -> Self {
        Decoded {
            events: Vec::new(),
            dead: Vec::new(),
            rows: Vec::new(),
            met: Vec::new(),
        }
    }
}

/// What [`stage_and_write`] gives: the decoded events, dead letters and rows, the reports of
/// the files written, and the symbols met.
pub struct Written<'s, X: 'static> {
    /// The events.
    pub events: VecCollection<'s, u64, Event, isize>,
    /// The dead letters.
    pub dead: VecCollection<'s, u64, DeadLetter, isize>,
    /// The rows.
    pub rows: VecCollection<'s, u64, X, isize>,
    /// The reports of the files written, for the commit.
    pub reports: StreamVec<'s, u64, Report>,
    /// The symbols met, with their strings.
    pub met: StreamVec<'s, u64, (u64, String)>,
}

/// One worker's writing state.
struct LakeWriter {
    lake: WorkerLake,
    /// Encodes and writes the Parquet files; `None` once done or failed.
    files: Option<FileThread>,
    stages: BTreeMap<u64, (Stage, u64)>,
    /// What the last written stage held: a new epoch's builders start at that size when no
    /// stage is being filled.
    sizes: StageSizes,
    markers: BTreeMap<u64, Vec<Position>>,
    flushed_through: Option<u64>,
    /// The range being filled: rows, dead rows, input bytes.
    pending: (u64, u64, u64),
    /// Ranges flushed whose files the file thread is still finishing, oldest first.
    awaiting: std::collections::VecDeque<(u64, Report)>,
    /// Whether anything is in open files or `pending` since the last flush.
    dirty: bool,
    last_epoch: Option<u64>,
    failed: bool,
}

impl LakeWriter {
    /// Writes the epochs before `closed` (all of them when it is `None`: the inputs are done)
    /// and sends the reports of the ranges whose files are finished through `emit`. Whether the
    /// writer is done: it failed, or every epoch is written and reported.
    fn write_closed(&mut self, closed: Option<u64>, emit: &mut impl FnMut(u64, Report)) -> bool {
        let result = match closed {
            Some(0) => Ok(()),
            Some(f) => self.close_through(f - 1, false),
            None => self.close_through(u64::MAX, true),
        };
        if let Err(e) = result.and_then(|()| self.collect(emit)) {
            fail(&self.lake.status, &e);
            self.failed = true;
        }
        let done = self.failed || (closed.is_none() && self.awaiting.is_empty());
        if done {
            self.files = None;
        }
        done
    }

    /// Keeps the source positions each marker gives for its epoch, for the epoch's commit.
    fn mark(&mut self, markers: impl Iterator<Item = (Marker, u64, isize)>) {
        for ((worker, positions), epoch, _) in markers {
            debug_assert_eq!(worker, self.lake.worker);
            self.markers.insert(epoch, positions);
        }
    }

    fn new(lake: WorkerLake, activator: timely::scheduling::SyncActivator) -> Self {
        let table = |kind| {
            TableWriter::new(
                kind,
                table::table_root(&lake.config.dir, kind),
                lake.worker,
                lake.run.clone(),
                lake.config.files.clone(),
            )
        };
        let files = FileThread::start(
            lake.worker,
            table(TableKind::Events),
            table(TableKind::DeadLetters),
            activator,
        );
        let mut markers = BTreeMap::new();
        markers.insert(lake.resumed.unwrap_or(0), lake.start_positions.clone());
        LakeWriter {
            flushed_through: lake.resumed,
            files: Some(files),
            stages: BTreeMap::new(),
            sizes: Default::default(),
            markers,
            pending: (0, 0, 0),
            awaiting: Default::default(),
            dirty: false,
            last_epoch: None,
            failed: false,
            lake,
        }
    }

    fn stage(&mut self, epoch: u64, chunk: &Chunk) -> &mut Stage {
        if !self.stages.contains_key(&epoch) {
            // A new epoch starts at the size of the newest one staged: the epoch read just
            // before it, usually not yet written (the workers read ahead of the lake).
            let sizes = match self.stages.last_key_value() {
                Some((_, (last, _))) => last.sizes(),
                None => self.sizes.clone(),
            };
            let (layout, names) = (self.lake.layout.clone(), self.lake.names.clone());
            self.stages
                .insert(epoch, (Stage::sized(layout, names, sizes), 0));
        }
        let entry = self.stages.get_mut(&epoch).expect("inserted above");
        // Each record's bytes and its line terminator.
        entry.1 += (chunk.byte_len() + chunk.len()) as u64;
        &mut entry.0
    }

    fn positions_at(&self, epoch: u64) -> Vec<Position> {
        self.markers
            .range(..=epoch)
            .next_back()
            .map(|(_, p)| p.clone())
            .unwrap_or_else(|| self.lake.start_positions.clone())
    }

    /// Writes every staged epoch up to `closed_through`, finishing files and reporting at each
    /// commit boundary on the way (and at the end when `done`).
    fn close_through(&mut self, closed_through: u64, done: bool) -> Result<(), LakeError> {
        let every = self.lake.config.commit_every;
        loop {
            let next = self.stages.first_key_value().map(|(e, _)| *e);
            let Some(epoch) = next.filter(|e| *e <= closed_through) else {
                break;
            };
            let boundary = self.next_boundary(every);
            if epoch > boundary {
                self.flush(boundary)?;
                continue;
            }
            let (mut stage, bytes) = self.stages.remove(&epoch).expect("present");
            self.sizes = stage.sizes();
            let (parts, dead) = stage
                .take()
                .map_err(|e| LakeError::Other(format!("staging epoch {epoch}: {e}")))?;
            for (partition, batch) in parts {
                self.pending.0 += batch.num_rows() as u64;
                self.send(FileJob::Write(TableKind::Events, partition, batch, epoch))?;
            }
            if let Some(batch) = dead {
                self.pending.1 += batch.num_rows() as u64;
                let partition = super::layout::Partition {
                    dir: String::new(),
                    values: Vec::new(),
                };
                self.send(FileJob::Write(
                    TableKind::DeadLetters,
                    partition,
                    batch,
                    epoch,
                ))?;
            }
            self.pending.2 += bytes;
            self.dirty = true;
            self.last_epoch = Some(self.last_epoch.map_or(epoch, |l| l.max(epoch)));
        }
        if !done {
            // Open files hold epochs up to the next boundary only; flush them once it has
            // closed, then report at the last boundary passed (nothing more to write there).
            let boundary = self.next_boundary(every);
            if boundary <= closed_through {
                if self.dirty {
                    self.flush(boundary)?;
                }
                let every = every.max(1);
                let last = (closed_through + 1) / every * every - 1;
                if self.flushed_through < Some(last) {
                    self.flush(last)?;
                }
            }
        } else {
            let last_marker = self.markers.last_key_value().map(|(e, _)| *e);
            let end = self.last_epoch.max(last_marker).unwrap_or(0);
            let start = self.flushed_through.map_or(0, |e| e + 1);
            if end >= start {
                // The open files close at their own boundary, as in a run that goes on; then
                // every worker ends at the boundary at or after its own last epoch, the same
                // for workers that stopped a few epochs apart, so that the last commit, like
                // every other, holds one range complete for every worker.
                let last = super::boundary_at_or_after(end, every);
                let boundary = self.next_boundary(every);
                if self.dirty && boundary < last {
                    self.flush(boundary)?;
                }
                self.flush(last)?;
                if let Some((_, report)) = self.awaiting.back_mut() {
                    report.last = true;
                }
            }
        }
        Ok(())
    }

    fn next_boundary(&self, every: u64) -> u64 {
        match self.flushed_through {
            Some(e) => next_boundary(e, every),
            None => every.max(1) - 1,
        }
    }

    /// Hands a job to the file thread (waiting while it is 32 jobs behind).
    fn send(&mut self, job: FileJob) -> Result<(), LakeError> {
        let files = self.files.as_ref().ok_or_else(FileThread::gone)?;
        if files
            .jobs
            .as_ref()
            .is_none_or(|jobs| jobs.send(job).is_err())
        {
            // The thread stopped on an error, its last answer: that error is the one to report.
            return Err(files
                .done
                .try_iter()
                .find_map(Result::err)
                .unwrap_or_else(FileThread::gone));
        }
        Ok(())
    }

    /// Closes the range through `at`: its files are finished on the file thread, and its
    /// report leaves from [`LakeWriter::collect`] once they are.
    fn flush(&mut self, at: u64) -> Result<(), LakeError> {
        self.send(FileJob::Finish)?;
        let (rows, dead_rows, input_bytes) = std::mem::take(&mut self.pending);
        let positions = self.positions_at(at);
        // Markers before `at` are no longer needed (keep the one in force at `at`).
        let keep = self.markers.range(..=at).next_back().map(|(e, _)| *e);
        if let Some(keep) = keep {
            self.markers = self.markers.split_off(&keep);
        }
        self.flushed_through = Some(at);
        self.dirty = false;
        let report = Report {
            worker: self.lake.worker,
            files: Vec::new(),
            positions,
            rows,
            dead_rows,
            input_bytes,
            last: false,
        };
        self.awaiting.push_back((at, report));
        Ok(())
    }

    /// Reports, in order, every range whose files the file thread has finished.
    fn collect(&mut self, report: &mut dyn FnMut(u64, Report)) -> Result<(), LakeError> {
        let Some(files) = self.files.as_ref() else {
            return Ok(());
        };
        loop {
            let finished = match files.done.try_recv() {
                Ok(finished) => finished?,
                Err(std::sync::mpsc::TryRecvError::Empty) => return Ok(()),
                // Gone without answering for every range: it can only have panicked.
                Err(std::sync::mpsc::TryRecvError::Disconnected) if self.awaiting.is_empty() => {
                    return Ok(());
                }
                Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                    return Err(FileThread::gone());
                }
            };
            let (at, mut done) = self
                .awaiting
                .pop_front()
                .ok_or_else(|| LakeError::Other("files finished for no range".into()))?;
            done.files = finished;
            report(at, done);
        }
    }
}

/// What the file thread does: append a closed epoch's batch to its partition's open file, or
/// finish every open file (a commit boundary).
enum FileJob {
    Write(
        TableKind,
        super::layout::Partition,
        arrow_array::RecordBatch,
        u64,
    ),
    Finish,
}

/// A worker's Parquet encoding and file writing, on a thread of its own: the worker stages
/// rows as Arrow batches and goes on decoding while the thread encodes, compresses and writes
/// them, so that finishing a commit range's files (milliseconds per file) never holds up the
/// epochs behind it. The thread answers each `Finish` with the files finished since the last
/// one (those that reached the row limit included) and wakes the operator.
struct FileThread {
    jobs: Option<std::sync::mpsc::SyncSender<FileJob>>,
    done: std::sync::mpsc::Receiver<Result<Vec<DataFile>, LakeError>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl FileThread {
    fn start(
        worker: usize,
        mut events: TableWriter,
        mut dead: TableWriter,
        activator: timely::scheduling::SyncActivator,
    ) -> Self {
        // A few epochs of batches at most: a worker that outruns the disk waits here.
        let (jobs, receive) = std::sync::mpsc::sync_channel::<FileJob>(32);
        let (answer, done) = std::sync::mpsc::channel();
        let handle = std::thread::Builder::new()
            .name(format!("lake-files-{worker}"))
            .spawn(move || {
                let mut finished = Vec::new();
                while let Ok(job) = receive.recv() {
                    let result = match job {
                        FileJob::Write(kind, partition, batch, epoch) => {
                            let table = match kind {
                                TableKind::Events => &mut events,
                                TableKind::DeadLetters => &mut dead,
                            };
                            table.write(&partition, &batch, epoch, &mut finished)
                        }
                        FileJob::Finish => events
                            .finish_all(&mut finished)
                            .and_then(|()| dead.finish_all(&mut finished))
                            .map(|()| {
                                let _ = answer.send(Ok(std::mem::take(&mut finished)));
                                let _ = activator.activate();
                            }),
                    };
                    if let Err(e) = result {
                        let _ = answer.send(Err(e));
                        let _ = activator.activate();
                        return;
                    }
                }
            })
            .expect("spawning a lake file thread");
        FileThread {
            jobs: Some(jobs),
            done,
            handle: Some(handle),
        }
    }

    fn gone() -> LakeError {
        LakeError::Other("the lake file thread stopped".into())
    }
}

impl Drop for FileThread {
    fn drop(&mut self) {
        // Closing the queue ends the thread once it has done what it was given.
        self.jobs = None;
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

//! Sources: where raw records come from, and how far each has been read.
//!
//! Every source delivers raw bytes in [`Chunk`]s, whatever it is (the generator renders JSON, so
//! generated events take the same decode path as a file or Kafka), and reports a resumable
//! [`Position`]: the next generator sequence number, the next byte offset of a file, or the
//! next offset of each Kafka partition.
//! Each timely worker opens its own share of every source ([`SourceSpec::open`]).

pub mod file;
pub mod generator;
pub mod kafka;
pub mod memory;
pub mod stdin;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::event::Position;

pub use generator::GeneratorSpec;
pub use kafka::KafkaSpec;

/// Raw records read in one go: their bytes back to back, and where each starts, ends and came from.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Chunk {
    bytes: Vec<u8>,
    records: Vec<(u32, u32, Position)>,
}

impl Chunk {
    /// An empty chunk with room for `records` records of `bytes` bytes in all.
    pub fn with_capacity(records: usize, bytes: usize) -> Self {
        Chunk {
            bytes: Vec::with_capacity(bytes),
            records: Vec::with_capacity(records),
        }
    }

    /// The memory it holds, in bytes.
    pub fn heap_bytes(&self) -> usize {
        self.bytes.capacity()
            + self.records.capacity() * std::mem::size_of::<(u32, u32, Position)>()
    }

    /// Gives back the room its buffers have beyond what they hold.
    pub fn shrink_to_fit(&mut self) {
        self.bytes.shrink_to_fit();
        self.records.shrink_to_fit();
    }

    /// Empties it, keeping its buffers.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.records.clear();
    }

    /// Starts a record at `position`; its bytes are then appended with [`Chunk::extend_record`].
    pub fn begin_record(&mut self, position: Position) {
        let at = self.bytes.len() as u32;
        self.records.push((at, at, position));
    }

    /// Appends bytes to the record begun last.
    pub fn extend_record(&mut self, bytes: &[u8]) {
        self.bytes.extend_from_slice(bytes);
        if let Some(last) = self.records.last_mut() {
            last.1 = self.bytes.len() as u32;
        }
    }

    /// Appends a whole record.
    pub fn push(&mut self, record: &[u8], position: Position) {
        self.begin_record(position);
        self.extend_record(record);
    }

    /// The buffer a record can be rendered into directly; call [`Chunk::end_record`] after.
    pub fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.bytes
    }

    /// Marks the end of the record begun last at the current end of the buffer.
    pub fn end_record(&mut self) {
        let end = self.bytes.len() as u32;
        if let Some(last) = self.records.last_mut() {
            last.1 = end;
        }
    }

    /// Record `i`.
    ///
    /// # Panics
    /// If there is no record `i`.
    pub fn get(&self, i: usize) -> (&[u8], Position) {
        let (s, e, p) = self.records[i];
        (&self.bytes[s as usize..e as usize], p)
    }

    /// The records, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], Position)> + '_ {
        self.records
            .iter()
            .map(|&(s, e, p)| (&self.bytes[s as usize..e as usize], p))
    }

    /// How many records.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// How many bytes.
    pub fn byte_len(&self) -> usize {
        self.bytes.len()
    }
}

/// A worker's spent chunks, handed back by the decoder for its sources to read into again: a
/// chunk's buffers grow to their working size once, instead of being allocated, grown and freed
/// for every chunk read. Cloning shares the pool; it belongs to one worker thread.
#[derive(Clone, Default)]
pub struct ChunkPool(Rc<RefCell<Vec<Chunk>>>);

/// How many spent chunks a pool keeps; a worker has about one chunk in flight at a time.
const POOL_CHUNKS: usize = 4;

/// A chunk that grew past this (a few records near `max_record_bytes`) is dropped, not kept.
const POOL_CHUNK_BYTES: usize = 4 << 20;

impl ChunkPool {
    /// An empty chunk: a spent one if the pool has any.
    pub fn take(&self) -> Chunk {
        self.0.borrow_mut().pop().unwrap_or_default()
    }

    /// Gives a chunk back for reuse (emptied here). A pool keeps four; a chunk over 4 MiB, or
    /// one more than that, is dropped.
    pub fn give(&self, mut chunk: Chunk) {
        let mut pool = self.0.borrow_mut();
        if pool.len() < POOL_CHUNKS && chunk.heap_bytes() <= POOL_CHUNK_BYTES {
            chunk.clear();
            pool.push(chunk);
        }
    }
}

/// A chunk stops taking records past this many bytes (its offsets are `u32`).
pub const CHUNK_BYTES: usize = 16 << 20;

/// What a source had to offer when polled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Poll {
    /// Records were appended, and more may follow at once.
    Ready,
    /// Nothing now; try again at this instant (or whenever, if `None`).
    Idle(Option<Instant>),
    /// Nothing ever again.
    Exhausted,
}

/// A source could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// An I/O error on a named input.
    #[error("reading {path}: {source}")]
    Io {
        /// The input.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// Kafka could not be reached or read.
    #[error("kafka: {0}")]
    Kafka(String),
}

/// How far a partition's reading is behind its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionLag {
    /// The next offset to read.
    pub next: i64,
    /// The partition's high watermark when last asked.
    pub high: i64,
}

impl PartitionLag {
    /// Messages not read yet.
    pub fn lag(&self) -> i64 {
        (self.high - self.next).max(0)
    }
}

/// Lag per partition (`TOPIC/PARTITION`), kept up to date by the sources that have partitions.
pub type LagBoard = Arc<Mutex<BTreeMap<String, PartitionLag>>>;

/// What a worker needs to open its share of a source.
#[derive(Clone, Debug)]
pub struct Opening<'a> {
    /// The worker.
    pub index: usize,
    /// How many workers in all.
    pub peers: usize,
    /// Longer records are kept only up to one byte more (the decoder calls them `too_large`).
    pub max_record_bytes: usize,
    /// The pipeline id (names the Kafka consumer group by default).
    pub pipeline: &'a str,
    /// Every worker's source positions at the last lake commit, if any.
    pub resume: Option<&'a [Vec<Position>]>,
    /// Where lag goes.
    pub lag: LagBoard,
}

/// One worker's share of a source.
pub trait Source: Send {
    /// Appends up to `max_records` records to `chunk`.
    fn poll(&mut self, chunk: &mut Chunk, max_records: usize) -> Result<Poll, SourceError>;
    /// Appends where reading would resume: every record before has been delivered. A source
    /// with several streams (Kafka partitions) appends one position for each.
    fn positions(&self, out: &mut Vec<Position>);
}

/// What to read, as given on the command line or in the config.
#[derive(Clone, Debug, PartialEq)]
pub enum SourceSpec {
    /// The built-in event generator.
    Generate(GeneratorSpec),
    /// JSON-lines files, read in the order given (directories already expanded).
    Files(Vec<PathBuf>),
    /// JSON lines on standard input.
    Stdin,
    /// Kafka topics.
    Kafka(KafkaSpec),
    /// Records prepared in memory (`lambdaflow bench`).
    Memory(memory::MemorySpec),
}

impl SourceSpec {
    /// Worker `index` of `peers`'s share of this source: generated sequence numbers round-robin,
    /// byte ranges of every file, all of stdin for worker 0, or Kafka partitions by
    /// [`kafka::owner`]. With `resume`, reading continues right where the last lake commit says.
    pub fn open(&self, at: Opening<'_>) -> Result<Vec<Box<dyn Source>>, SourceError> {
        let (index, peers) = (at.index, at.peers);
        let mine = at
            .resume
            .and_then(|r| r.get(index))
            .and_then(|p| p.first().copied());
        Ok(match self {
            SourceSpec::Generate(spec) => {
                let source = generator::GeneratorSource::new(spec.clone(), index, peers);
                let mine = at.resume.and_then(|r| r.get(index));
                vec![Box::new(match mine {
                    Some(positions) => source.resume(positions),
                    None => source,
                })]
            }
            SourceSpec::Files(paths) => {
                let mine = at.resume.and_then(|r| r.get(index)).map(Vec::as_slice);
                file::open_splits(paths, index, peers, at.max_record_bytes, mine)?
            }
            SourceSpec::Stdin if index == 0 => {
                let skip = match mine {
                    Some(Position::Stdin { offset }) => offset,
                    _ => 0,
                };
                vec![Box::new(stdin::StdinSource::spawn(
                    at.max_record_bytes,
                    skip,
                ))]
            }
            SourceSpec::Stdin => Vec::new(),
            SourceSpec::Memory(spec) => {
                vec![Box::new(memory::MemorySource::new(spec, index, peers))]
            }
            SourceSpec::Kafka(spec) => {
                let resume = at.resume.map(kafka::resume_offsets);
                vec![Box::new(kafka::open(
                    spec,
                    at.pipeline,
                    index,
                    peers,
                    at.max_record_bytes,
                    resume.as_ref(),
                    at.lag,
                )?)]
            }
        })
    }

    /// Whether positions belong to workers (so a restart needs as many), rather than to
    /// partitions that any worker can take over.
    pub fn resumes_per_worker(&self) -> bool {
        matches!(self, SourceSpec::Memory(_))
    }

    /// The positions of a lake commit, as the `peers` workers of this run take them up.
    pub fn regroup(
        &self,
        positions: &[Vec<Position>],
        peers: usize,
    ) -> Result<Vec<Vec<Position>>, SourceError> {
        Ok(match self {
            SourceSpec::Kafka(_) => kafka::regroup(positions, peers),
            SourceSpec::Files(paths) => file::regroup(paths, Some(positions), peers)?,
            SourceSpec::Generate(_) => generator::regroup(positions, peers),
            // Worker 0 reads standard input, whatever the number of workers.
            SourceSpec::Stdin => {
                let mut out = vec![Vec::new(); peers];
                out[0].extend(
                    positions
                        .iter()
                        .flatten()
                        .filter(|p| matches!(p, Position::Stdin { .. })),
                );
                out
            }
            _ => positions.to_vec(),
        })
    }

    /// How this source is named in a lake commit: a restart must read the same source.
    pub fn describe(&self) -> String {
        match self {
            SourceSpec::Generate(_) => "generate".to_string(),
            SourceSpec::Files(paths) => format!(
                "file:{}",
                paths
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            SourceSpec::Stdin => "stdin".to_string(),
            SourceSpec::Kafka(spec) => format!("kafka:{}", spec.topics.join(",")),
            SourceSpec::Memory(_) => "memory".to_string(),
        }
    }

    /// The files this source reads, by [`Position::File`] index.
    pub fn files(&self) -> &[PathBuf] {
        match self {
            SourceSpec::Files(paths) => paths,
            _ => &[],
        }
    }

    /// The topics this source reads, by [`Position::Kafka`] topic index.
    pub fn topics(&self) -> &[String] {
        match self {
            SourceSpec::Kafka(spec) => &spec.topics,
            _ => &[],
        }
    }
}

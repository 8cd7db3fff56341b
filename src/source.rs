//! Sources: where raw records come from, and how far each has been read.
//!
//! Every source delivers raw bytes in [`Chunk`]s, whatever it is (the generator renders JSON, so
//! generated events take the same decode path as a file or Kafka), and reports a resumable
//! [`Position`]: the next generator sequence number, or the next byte offset of a file.
//! Each timely worker opens its own share of every source ([`SourceSpec::open`]).

pub mod file;
pub mod generator;
pub mod stdin;

use std::path::PathBuf;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::event::Position;

pub use generator::GeneratorSpec;

/// Raw records read in one go: their bytes back to back, and where each starts, ends and came from.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Chunk {
    bytes: Vec<u8>,
    records: Vec<(u32, u32, Position)>,
}

impl Chunk {
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
}

/// One worker's share of a source.
pub trait Source: Send {
    /// Appends up to `max_records` records to `chunk`.
    fn poll(&mut self, chunk: &mut Chunk, max_records: usize) -> Result<Poll, SourceError>;
    /// Where reading would resume: every record before it has been delivered.
    fn position(&self) -> Position;
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
}

impl SourceSpec {
    /// Worker `index` of `peers`'s share of this source: generated sequence numbers round-robin,
    /// byte ranges of every file, or all of stdin for worker 0. With `resume`, the positions
    /// this worker's sources reported at the last lake commit, reading continues right there.
    pub fn open(
        &self,
        index: usize,
        peers: usize,
        max_record_bytes: usize,
        resume: Option<&[Position]>,
    ) -> Result<Vec<Box<dyn Source>>, SourceError> {
        let at = resume.and_then(|r| r.first().copied());
        Ok(match self {
            SourceSpec::Generate(spec) => {
                let source = generator::GeneratorSource::new(spec.clone(), index, peers);
                vec![Box::new(match at {
                    Some(Position::Generator { seq }) => source.resume(seq),
                    _ => source,
                })]
            }
            SourceSpec::Files(paths) => {
                file::open_splits(paths, index, peers, max_record_bytes, at)?
            }
            SourceSpec::Stdin if index == 0 => {
                let skip = match at {
                    Some(Position::Stdin { offset }) => offset,
                    _ => 0,
                };
                vec![Box::new(stdin::StdinSource::spawn(max_record_bytes, skip))]
            }
            SourceSpec::Stdin => Vec::new(),
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
        }
    }

    /// The files this source reads, by [`Position::File`] index.
    pub fn files(&self) -> &[PathBuf] {
        match self {
            SourceSpec::Files(paths) => paths,
            _ => &[],
        }
    }
}

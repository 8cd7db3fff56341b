//! JSON lines on standard input, read by a thread of its own so that a quiet pipe never stalls
//! the worker (which must keep closing epochs and serving views while it waits).

use std::io::{BufReader, Read};

use crossbeam_channel::{Receiver, TryRecvError};

use super::file::LineReader;
use super::{CHUNK_BYTES, Chunk, Poll, Source, SourceError};
use crate::event::Position;

/// Records per chunk sent by the reader thread.
const CHUNK_RECORDS: usize = 1024;

/// Standard input, read by a background thread.
pub struct StdinSource {
    chunks: Receiver<Result<(Chunk, u64), std::io::Error>>,
    offset: u64,
}

impl StdinSource {
    /// Starts the reader thread, which first skips `skip` bytes: what a previous run of the same
    /// input already committed.
    pub fn spawn(max_record_bytes: usize, skip: u64) -> Self {
        // A small bound: when the pipeline falls behind, the reader stops reading.
        let (tx, rx) = crossbeam_channel::bounded(8);
        std::thread::Builder::new()
            .name("lambdaflow-stdin".into())
            .spawn(move || {
                let mut stdin = std::io::stdin().lock();
                if skip > 0 {
                    let skipped = std::io::copy(&mut (&mut stdin).take(skip), &mut std::io::sink());
                    if let Err(e) = skipped {
                        let _ = tx.send(Err(e));
                        return;
                    }
                }
                let mut lines = LineReader::new(
                    BufReader::with_capacity(1 << 16, stdin),
                    skip,
                    max_record_bytes,
                );
                loop {
                    let mut chunk = Chunk::default();
                    let mut more = true;
                    while chunk.len() < CHUNK_RECORDS && chunk.byte_len() < CHUNK_BYTES {
                        match lines.next_line(&mut chunk, |offset| Position::Stdin { offset }) {
                            Ok(true) => {}
                            Ok(false) => {
                                more = false;
                                break;
                            }
                            Err(e) => {
                                let _ = tx.send(Err(e));
                                return;
                            }
                        }
                        // Hand over what we have when the pipe has nothing buffered.
                        if lines.is_drained() {
                            break;
                        }
                    }
                    if (!chunk.is_empty() && tx.send(Ok((chunk, lines.offset()))).is_err()) || !more
                    {
                        return;
                    }
                }
            })
            .expect("spawning the stdin reader thread");
        StdinSource {
            chunks: rx,
            offset: skip,
        }
    }
}

impl Source for StdinSource {
    fn poll(&mut self, chunk: &mut Chunk, _max_records: usize) -> Result<Poll, SourceError> {
        match self.chunks.try_recv() {
            Ok(Ok((read, offset))) => {
                for (record, position) in read.iter() {
                    chunk.push(record, position);
                }
                self.offset = offset;
                Ok(Poll::Ready)
            }
            Ok(Err(source)) => Err(SourceError::Io {
                path: "stdin".into(),
                source,
            }),
            Err(TryRecvError::Empty) => Ok(Poll::Idle(None)),
            Err(TryRecvError::Disconnected) => Ok(Poll::Exhausted),
        }
    }

    fn positions(&self, out: &mut Vec<Position>) {
        out.push(Position::Stdin {
            offset: self.offset,
        });
    }
}

//! Records prepared in memory before a run: the benchmark's input, so that producing it is not
//! part of what is measured.
//!
//! Each worker has its own queue of chunks. In a closed loop a worker takes whole chunks as fast
//! as it asks, and once its own queue is empty it takes the last chunk of the longest other
//! queue, as a split enumerator hands the splits left to whichever reader asks first (Flink's
//! FLIP-27 sources, Spark's tasks): with fixed shares, the worker that had more to do besides
//! reading (exchanged view updates, its file thread's turn on the CPU) went on alone for up to a
//! tenth of the run at its end. In an open loop records are offered on a schedule (a rate per
//! second in all, split evenly over the workers), released at most once a millisecond, the way a
//! broker's fetch hands over what arrived since the last one. A worker that falls behind the
//! schedule reads the backlog as fast as it can, and the source remembers how far behind it fell.
//!
//! A position is the sequence number after the last record a worker handed over; once workers
//! take each other's chunks it is no resume point, and nothing resumes from it: the benchmark
//! writes a fresh lake every run.
//!
//! The memory of the input is the benchmark's, not the pipeline's: a closed-loop worker hands its
//! prepared chunks over whole, and the empty chunk it is given to fill in exchange is kept here
//! until the run ends, rather than freed inside the measured run (as a source reading into
//! recycled chunks frees nothing either).

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Chunk, Poll, Source, SourceError};
use crate::event::Position;

/// The prepared chunks of every worker.
pub struct Prepared {
    queues: Vec<Mutex<VecDeque<Chunk>>>,
    /// Chunks given in exchange for prepared ones, freed with the input.
    spent: Mutex<Vec<Chunk>>,
    /// Bytes of prepared records not handed over yet, and of the chunks kept in exchange.
    held: AtomicU64,
    /// The largest backlog behind the open-loop schedule any worker had, in records.
    max_behind: AtomicU64,
}

impl Prepared {
    /// Worker `i` reads `per_worker[i]`, in order.
    pub fn new(mut per_worker: Vec<Vec<Chunk>>) -> Self {
        // Its buffers' size is then the memory it takes: `held` is subtracted from the resident
        // set, and room never written to is not resident.
        per_worker
            .iter_mut()
            .flatten()
            .for_each(Chunk::shrink_to_fit);
        let held = per_worker
            .iter()
            .flatten()
            .map(|c| c.heap_bytes() as u64)
            .sum();
        Prepared {
            queues: per_worker
                .into_iter()
                .map(|chunks| Mutex::new(chunks.into()))
                .collect(),
            spent: Mutex::default(),
            held: AtomicU64::new(held),
            max_behind: AtomicU64::new(0),
        }
    }

    /// Bytes still waiting to be read, and of the chunks kept in exchange.
    pub fn held_bytes(&self) -> u64 {
        self.held.load(Ordering::Relaxed)
    }

    /// The largest number of records a worker was ever behind the open-loop schedule.
    pub fn max_behind(&self) -> u64 {
        self.max_behind.load(Ordering::Relaxed)
    }

    /// Worker `worker`'s next chunk; with `steal`, once its own are gone, the last chunk of the
    /// longest other queue.
    fn next_chunk(&self, worker: usize, steal: bool) -> Option<Chunk> {
        let len = |q: &Mutex<VecDeque<Chunk>>| q.lock().unwrap_or_else(|e| e.into_inner()).len();
        let own = self
            .queues
            .get(worker)?
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front();
        let chunk = match own {
            Some(chunk) => chunk,
            None if steal => {
                let longest = (0..self.queues.len())
                    .filter(|&q| q != worker)
                    .max_by_key(|&q| len(&self.queues[q]))?;
                self.queues[longest]
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .pop_back()?
            }
            None => return None,
        };
        self.held
            .fetch_sub(chunk.heap_bytes() as u64, Ordering::Relaxed);
        Some(chunk)
    }

    /// Keeps a chunk given in exchange for a prepared one until the input is dropped.
    fn keep(&self, chunk: Chunk) {
        let bytes = chunk.heap_bytes() as u64;
        if bytes > 0 {
            self.held.fetch_add(bytes, Ordering::Relaxed);
            self.spent
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(chunk);
        }
    }
}

/// A source reading [`Prepared`] chunks.
#[derive(Clone)]
pub struct MemorySpec {
    /// The records.
    pub prepared: Arc<Prepared>,
    /// Open loop: records offered per second, over all workers. `None`: closed loop.
    pub rate: Option<f64>,
}

impl fmt::Debug for MemorySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemorySpec")
            .field("workers", &self.prepared.queues.len())
            .field("rate", &self.rate)
            .finish()
    }
}

impl PartialEq for MemorySpec {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.prepared, &other.prepared) && self.rate == other.rate
    }
}

/// Open-loop releases are at least this far apart.
const RELEASE_EVERY: Duration = Duration::from_millis(1);

/// One worker's share of a [`MemorySpec`].
pub struct MemorySource {
    prepared: Arc<Prepared>,
    index: usize,
    /// Records per second for this worker, in an open loop.
    rate: Option<f64>,
    started: Option<Instant>,
    /// Records handed over.
    sent: u64,
    /// A chunk being handed over record by record (open loop), and the next record in it.
    current: Option<(Chunk, usize)>,
    next: Position,
}

impl MemorySource {
    /// Worker `index` of `peers`.
    pub fn new(spec: &MemorySpec, index: usize, peers: usize) -> Self {
        MemorySource {
            prepared: spec.prepared.clone(),
            index,
            rate: spec.rate.map(|r| r / peers.max(1) as f64),
            started: None,
            sent: 0,
            current: None,
            next: Position::Generator { seq: index as u64 },
        }
    }

    /// Moves the resume position past `last`, the last record handed over: this worker's next
    /// sequence number is one round of workers later.
    fn handed_over(&mut self, last: Position) {
        if let Position::Generator { seq } = last {
            self.next = Position::Generator {
                seq: seq + self.prepared.queues.len() as u64,
            };
        }
    }

    /// Records due by now that have not been handed over, or when the next release is due.
    fn due(&mut self, rate: f64) -> Result<u64, Instant> {
        let started = *self.started.get_or_insert_with(Instant::now);
        let elapsed = started.elapsed().as_secs_f64();
        let due = ((elapsed * rate) as u64).saturating_sub(self.sent);
        // Release in batches of a millisecond's worth, not one record at a time.
        let batch = ((rate * RELEASE_EVERY.as_secs_f64()) as u64).max(1);
        if due >= batch {
            Ok(due)
        } else {
            let next = (self.sent + batch) as f64 / rate;
            Err(started + Duration::from_secs_f64(next))
        }
    }
}

impl Source for MemorySource {
    fn poll(&mut self, chunk: &mut Chunk, max_records: usize) -> Result<Poll, SourceError> {
        let Some(rate) = self.rate else {
            // Closed loop: whole chunks, as fast as they are taken.
            return Ok(match self.prepared.next_chunk(self.index, true) {
                Some(mut next) => {
                    if let Some((_, last)) = next.iter().last() {
                        self.handed_over(last);
                    }
                    self.sent += next.len() as u64;
                    if chunk.is_empty() {
                        std::mem::swap(chunk, &mut next);
                        self.prepared.keep(next);
                    } else {
                        for (raw, position) in next.iter() {
                            chunk.push(raw, position);
                        }
                    }
                    Poll::Ready
                }
                None => Poll::Exhausted,
            });
        };
        let due = match self.due(rate) {
            Ok(due) => due,
            Err(at) => return Ok(Poll::Idle(Some(at))),
        };
        if due > (rate * 0.1) as u64 {
            // More than 100 ms behind: remember the worst.
            self.prepared.max_behind.fetch_max(due, Ordering::Relaxed);
        }
        let mut take = due.min(max_records as u64) as usize;
        while take > 0 {
            if self.current.is_none() {
                match self.prepared.next_chunk(self.index, false) {
                    Some(next) => self.current = Some((next, 0)),
                    None => break,
                }
            }
            let (source, at) = self.current.as_mut().expect("set above");
            let end = (*at + take).min(source.len());
            for i in *at..end {
                let (raw, position) = source.get(i);
                chunk.push(raw, position);
            }
            let last = (end > *at).then(|| source.get(end - 1).1);
            take -= end - *at;
            self.sent += (end - *at) as u64;
            *at = end;
            if end == source.len() {
                self.current = None;
            }
            if let Some(last) = last {
                self.handed_over(last);
            }
        }
        if chunk.is_empty() && self.current.is_none() {
            return Ok(Poll::Exhausted);
        }
        Ok(Poll::Ready)
    }

    fn positions(&self, out: &mut Vec<Position>) {
        out.push(self.next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prepared(workers: usize, chunks: usize, per_chunk: u64) -> Arc<Prepared> {
        let per_worker = (0..workers)
            .map(|w| {
                (0..chunks as u64)
                    .map(|c| {
                        let mut chunk = Chunk::default();
                        for r in 0..per_chunk {
                            let seq = (c * per_chunk + r) * workers as u64 + w as u64;
                            chunk.push(format!("{seq}").as_bytes(), Position::Generator { seq });
                        }
                        chunk
                    })
                    .collect()
            })
            .collect();
        Arc::new(Prepared::new(per_worker))
    }

    fn drain(source: &mut MemorySource) -> Vec<u64> {
        let mut seen = Vec::new();
        loop {
            let mut chunk = Chunk::default();
            match source.poll(&mut chunk, 100).unwrap() {
                Poll::Exhausted => return seen,
                Poll::Idle(at) => std::thread::sleep(at.map_or(Duration::ZERO, |at| {
                    at.saturating_duration_since(Instant::now())
                })),
                Poll::Ready => {}
            }
            for (raw, _) in chunk.iter() {
                seen.push(std::str::from_utf8(raw).unwrap().parse().unwrap());
            }
        }
    }

    #[test]
    fn closed_loop_hands_over_every_record_once_in_order() {
        let prepared = prepared(2, 3, 50);
        let spec = MemorySpec {
            prepared: prepared.clone(),
            rate: None,
        };
        let (mut zero, mut one) = (
            MemorySource::new(&spec, 0, 2),
            MemorySource::new(&spec, 1, 2),
        );
        // Worker 0 takes its first chunk; worker 1 reads its own share in order, then what is
        // left of worker 0's, from the back; worker 0 then finds nothing.
        let mut chunk = Chunk::default();
        assert!(matches!(zero.poll(&mut chunk, 100).unwrap(), Poll::Ready));
        let first: Vec<u64> = chunk
            .iter()
            .map(|(raw, _)| std::str::from_utf8(raw).unwrap().parse().unwrap())
            .collect();
        assert_eq!(first, (0..50).map(|i| i * 2).collect::<Vec<u64>>());
        let seen = drain(&mut one);
        let stolen = |c: u64| (c * 50..c * 50 + 50).map(|i| i * 2);
        let want: Vec<u64> = (0..150)
            .map(|i| i * 2 + 1)
            .chain(stolen(2))
            .chain(stolen(1))
            .collect();
        assert_eq!(seen, want);
        assert!(drain(&mut zero).is_empty());
        assert_eq!(prepared.held_bytes(), 0);
    }

    #[test]
    fn open_loop_workers_read_only_their_own_share() {
        let prepared = prepared(2, 2, 10);
        let spec = MemorySpec {
            prepared: prepared.clone(),
            rate: Some(1e9),
        };
        let seen = drain(&mut MemorySource::new(&spec, 1, 2));
        assert_eq!(seen, (0..20).map(|i| i * 2 + 1).collect::<Vec<u64>>());
        // Worker 0's share is still held.
        assert!(prepared.held_bytes() > 0);
        drain(&mut MemorySource::new(&spec, 0, 2));
        assert_eq!(prepared.held_bytes(), 0);
    }

    #[test]
    fn open_loop_offers_records_on_schedule() {
        let prepared = prepared(1, 4, 100);
        let spec = MemorySpec {
            prepared,
            rate: Some(4_000.0),
        };
        let mut source = MemorySource::new(&spec, 0, 1);
        let started = Instant::now();
        let seen = drain(&mut source);
        let took = started.elapsed();
        assert_eq!(seen, (0..400).collect::<Vec<u64>>());
        // 400 records at 4,000/s are due over 100 ms: not all at once.
        assert!(took >= Duration::from_millis(95), "{took:?}");
    }
}

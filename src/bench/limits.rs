//! The two limits the pipeline cannot beat on this machine with as many threads: decoding
//! alone (JSON to events) and Parquet encoding alone (staged Arrow batches to Parquet), each
//! measured on a sample of the prepared input before and after the pipeline runs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{BenchError, LIMIT_SAMPLE, Progress};
use crate::event::{Decoder, Interner, Roles, Schema, Symbols};
use crate::lake::layout::{Layout, SourceNames, Stage};
use crate::lake::writer::FileSettings;
use crate::source::Chunk;

/// A copy of the chunks the limits run on: every worker's first ones, `LIMIT_SAMPLE` events at
/// most.
pub(super) fn sample(chunks: &[Vec<Chunk>]) -> Vec<Vec<Chunk>> {
    let per_worker = LIMIT_SAMPLE / chunks.len().max(1) as u64;
    chunks
        .iter()
        .map(|mine| {
            let mut n = 0u64;
            let take = mine
                .iter()
                .take_while(|c| {
                    // Whole chunks, while fewer than `per_worker` records are taken.
                    let before = n;
                    n += c.len() as u64;
                    before < per_worker
                })
                .count();
            // A clone's buffers are as long as what they hold: `heap_bytes` is its memory.
            mine[..take].to_vec()
        })
        .collect()
}

/// Records in every worker's chunks.
fn records(chunks: &[Vec<Chunk>]) -> u64 {
    chunks.iter().flatten().map(|c| c.len() as u64).sum()
}

/// One measurement of a limit: records and seconds.
pub(super) type Measurement = (u64, f64);

/// Both limits on `input`, decode-only then Parquet-only, measured `when` (before or after the
/// pipeline).
pub(super) fn limits(
    input: &[Vec<Chunk>],
    schema: &Schema,
    when: &str,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<(Measurement, Measurement), BenchError> {
    let total = records(input);
    let decode_phase = format!("decode only ({when})");
    let parquet_phase = format!("parquet only ({when})");
    let mut phase = |phase: &str, done: u64| progress(Progress { phase, done, total });
    phase(&decode_phase, 0);
    let decode = decode_only(input, schema);
    phase(&decode_phase, total);
    phase(&parquet_phase, 0);
    let parquet = parquet_only(input, schema)?;
    phase(&parquet_phase, total);
    Ok((decode, parquet))
}

/// Decoding alone: every worker's sample decoded and projected into events, in parallel.
/// Returns (records, seconds).
fn decode_only(parts: &[Vec<Chunk>], schema: &Schema) -> Measurement {
    let total = records(parts);
    let symbols = Arc::new(Symbols::default());
    let started = Instant::now();
    let decoded: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = parts
            .iter()
            .map(|mine| {
                let symbols = symbols.clone();
                s.spawn(move || {
                    let mut decoder = Decoder::new(schema.clone(), 1 << 20);
                    let roles = Roles::of(schema);
                    let mut interner = Interner::new(symbols);
                    let mut events = 0u64;
                    for chunk in mine.iter() {
                        for (raw, _) in chunk.iter() {
                            if let Ok(record) = decoder.decode(raw) {
                                std::hint::black_box(roles.project(&record, &mut interner));
                                events += 1;
                            }
                        }
                    }
                    events
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
    });
    let seconds = started.elapsed().as_secs_f64();
    std::hint::black_box(decoded);
    (total, seconds)
}

/// Parquet encoding alone: every worker's sample staged as Arrow batches by partition (not
/// timed), then written as Parquet with the lake's settings to a byte counter (timed).
/// Returns (records, seconds).
fn parquet_only(parts: &[Vec<Chunk>], schema: &Schema) -> Result<Measurement, BenchError> {
    let total = records(parts);
    let layout = Arc::new(Layout::new(schema));
    let names = SourceNames::new(&[], &[]);
    // Each thread's wall time; the threads run at once, so the slowest is the wall time.
    let times: Vec<Result<f64, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = parts
            .iter()
            .map(|mine| {
                let (layout, names) = (layout.clone(), names.clone());
                s.spawn(move || encode_share(mine, schema, layout, names))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("an encoding thread failed".into()))
            })
            .collect()
    });
    let mut seconds: f64 = 0.0;
    for t in times {
        seconds = seconds.max(t.map_err(BenchError::Measure)?);
    }
    Ok((total, seconds))
}

/// One thread's share of [`parquet_only`]: the seconds spent encoding.
fn encode_share(
    chunks: &[Chunk],
    schema: &Schema,
    layout: Arc<Layout>,
    names: Arc<SourceNames>,
) -> Result<f64, String> {
    let settings = FileSettings::default();
    let mut decoder = Decoder::new(schema.clone(), 1 << 20);
    let (roles, mut interner) = (
        Roles::of(schema),
        Interner::new(Arc::new(Symbols::default())),
    );
    let mut writers: std::collections::HashMap<String, parquet::arrow::ArrowWriter<Counter>> =
        Default::default();
    let mut spent = Duration::ZERO;
    // Stage about as many rows as a worker stages in a 100 ms epoch at a million events/s.
    for group in chunks.chunks(16) {
        let mut stage = Stage::new(layout.clone(), names.clone());
        for chunk in group {
            for (raw, position) in chunk.iter() {
                if let Ok(record) = decoder.decode(raw) {
                    let event = roles.project(&record, &mut interner);
                    stage.push(&record, &event, 0, position);
                }
            }
        }
        let (parts, _) = stage.take().map_err(|e| e.to_string())?;
        let started = Instant::now();
        for (partition, batch) in parts {
            let writer = match writers.entry(partition.dir) {
                std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => v.insert(
                    settings
                        .writer(Counter(0), batch.schema())
                        .map_err(|e| e.to_string())?,
                ),
            };
            writer.write(&batch).map_err(|e| e.to_string())?;
        }
        spent += started.elapsed();
    }
    let started = Instant::now();
    let mut bytes = 0;
    for (_, writer) in writers {
        bytes += crate::lake::writer::finish(writer)
            .map_err(|e| e.to_string())?
            .0
            .0;
    }
    spent += started.elapsed();
    std::hint::black_box(bytes);
    Ok(spent.as_secs_f64())
}

/// A writer that only counts bytes.
struct Counter(u64);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

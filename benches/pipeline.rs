//! The pipeline's parts, one at a time: each built-in view's update cost (SQL views over the
//! typed events, as a run builds them), Parquet encoding of
//! a batch of events, and one lake commit.
//!
//! Run with `cargo bench --bench pipeline` (a group alone: `cargo bench --bench pipeline -- views`).
//! The whole pipeline at once is `lambdaflow bench`.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use differential_dataflow::input::Input;
use lambdaflow::event::{DeadLetter, Decoder, Event, Interner, Roles, Schema, Symbols};
use lambdaflow::lake::layout::{Layout, SourceNames, Stage};
use lambdaflow::lake::table::{CommitMeta, Table, table_root};
use lambdaflow::lake::writer::{FileSettings, TableKind, TableWriter};
use lambdaflow::lake::{LakeConfig, ops};
use lambdaflow::source::GeneratorSpec;
use lambdaflow::views::sql::planned::Planned;
use lambdaflow::views::{self, Row};
use timely::dataflow::ProbeHandle;
use timely::dataflow::operators::Probe;

/// Events per update (one epoch's worth on one worker).
const BATCH: usize = 10_000;
/// Distinct batches cycled through, so that updates touch keys as a live stream does.
const BATCHES: usize = 20;

fn lines(n: usize) -> Vec<Vec<u8>> {
    let spec = GeneratorSpec::default();
    (0..n as u64)
        .map(|seq| {
            let mut line = Vec::new();
            spec.render(seq, &mut line);
            line
        })
        .collect()
}

fn events(symbols: &Arc<Symbols>, n: usize) -> Vec<Event> {
    let schema = Schema::ecommerce();
    let roles = Roles::of(&schema);
    let mut decoder = Decoder::new(schema, 1 << 20);
    let mut interner = Interner::new(symbols.clone());
    lines(n)
        .iter()
        .filter_map(|l| {
            let record = decoder.decode(l).ok()?;
            Some(roles.project(&record, &mut interner))
        })
        .collect()
}

/// Each view alone on one worker: the time to absorb a batch of events as a new epoch, from
/// inserting them to the view's output having passed the epoch.
fn view_updates(c: &mut Criterion) {
    let mut group = c.benchmark_group("views");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(20);
    // Each view alone, then all of them at once (they share operators: the sum of the
    // single-view figures is more than the cost of all of them).
    let all = views::builtin::ecommerce();
    let singles = all.iter().map(|v| (v.name.as_str(), vec![v.clone()]));
    for (name, enabled) in singles.chain([("all", all.clone())]) {
        {
            // A worker on this thread (criterion's state is not `Send`).
            let allocator = timely::communication::Allocator::Thread(
                timely::communication::allocator::thread::Thread::default(),
            );
            let mut worker = timely::worker::Worker::new(
                timely::WorkerConfig::default(),
                allocator,
                Some(std::time::Instant::now()),
            );
            let symbols = Arc::new(Symbols::default());
            let batches: Vec<Vec<Event>> = events(&symbols, BATCH * BATCHES)
                .chunks(BATCH)
                .map(<[Event]>::to_vec)
                .collect();
            let probe = ProbeHandle::new();
            let (mut input, mut dead_input) = worker.dataflow::<u64, _, _>(|scope| {
                let (input, events) = scope.new_collection::<Event, isize>();
                let (dead_input, dead) = scope.new_collection::<DeadLetter, isize>();
                // The views read the typed events, as in a run: no rows are decoded.
                let planned = Planned::of(&enabled, &Schema::ecommerce(), false, &symbols);
                assert!(
                    planned.decoded().is_empty(),
                    "{name} reads the typed events"
                );
                let rows = scope.new_collection::<Row, isize>().1;
                let known = views::Known::at_once();
                let built = planned.build(events, rows, dead, &symbols, 0, &known);
                differential_dataflow::collection::concatenate(scope, built)
                    .inner
                    .probe_with(&probe);
                (input, dead_input)
            });
            let mut epoch = 0u64;
            group.bench_function(name, |b| {
                b.iter(|| {
                    for e in &batches[epoch as usize % BATCHES] {
                        input.insert(*e);
                    }
                    epoch += 1;
                    input.advance_to(epoch);
                    input.flush();
                    dead_input.advance_to(epoch);
                    dead_input.flush();
                    worker.step_while(|| probe.less_than(&epoch));
                })
            });
        }
    }
    group.finish();
}

/// `lines` decoded and staged for the lake as read in `epoch`.
fn stage_lines(
    layout: &Arc<Layout>,
    names: &Arc<SourceNames>,
    decoder: &mut Decoder,
    interner: &mut Interner,
    lines: &[Vec<u8>],
    epoch: u64,
) -> Stage {
    let mut stage = Stage::new(layout.clone(), names.clone());
    let roles = Roles::of(layout.schema());
    for (seq, line) in lines.iter().enumerate() {
        if let Ok(record) = decoder.decode(line) {
            let position = lambdaflow::event::Position::Generator { seq: seq as u64 };
            let event = roles.project(&record, interner);
            stage.push(&record, &event, epoch, position);
        }
    }
    stage
}

/// A batch of events staged as Arrow columns by partition and encoded as Parquet with the
/// lake's settings, in memory.
fn parquet_encode(c: &mut Criterion) {
    let schema = Schema::ecommerce();
    let layout = Arc::new(Layout::new(&schema));
    let names = SourceNames::new(&[], &[]);
    let batch = lines(BATCH * 10);
    let mut decoder = Decoder::new(schema, 1 << 20);
    let mut interner = Interner::new(Arc::new(Symbols::default()));
    let settings = FileSettings::default();
    let mut group = c.benchmark_group("parquet");
    group.throughput(Throughput::Elements(batch.len() as u64));
    group.sample_size(20);
    group.bench_function("stage", |b| {
        b.iter(|| {
            let mut stage = stage_lines(&layout, &names, &mut decoder, &mut interner, &batch, 0);
            black_box(stage.take().expect("batches").0.len())
        })
    });
    let (parts, _) = stage_lines(&layout, &names, &mut decoder, &mut interner, &batch, 0)
        .take()
        .expect("batches");
    group.bench_function("encode", |b| {
        b.iter(|| {
            let mut bytes = 0;
            for (_, batch) in &parts {
                let mut writer = settings.writer(Vec::new(), batch.schema()).expect("writer");
                writer.write(batch).expect("write");
                bytes += lambdaflow::lake::writer::finish(writer)
                    .expect("finish")
                    .0
                    .len();
            }
            black_box(bytes)
        })
    });
    group.finish();
}

/// One lake commit of one freshly written data file, to a table on the local disk.
fn commit(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let schema = Schema::ecommerce();
    let layout = Layout::new(&schema);
    let config = LakeConfig {
        dir: dir.path().to_path_buf(),
        commit_every: 1,
        files: FileSettings::default(),
        log_retention: None,
        compact_files: 0,
    };
    let prepared = ops::prepare(&config, &layout, "bench", Some(1), "generate").expect("lake");
    drop(prepared);
    let layout = Arc::new(layout);
    let names = SourceNames::new(&[], &[]);
    let lines = lines(1000);
    let mut decoder = Decoder::new(schema, 1 << 20);
    let mut interner = Interner::new(Arc::new(Symbols::default()));
    let rt = lambdaflow::lake::table::runtime().expect("runtime");
    let root = table_root(dir.path(), TableKind::Events);
    let mut table = Table::open(&rt, &root).expect("table");
    let mut writer = TableWriter::new(
        TableKind::Events,
        root,
        0,
        "bench".into(),
        FileSettings::default(),
    );
    let mut epoch = 0u64;
    let mut group = c.benchmark_group("lake");
    group.sample_size(20);
    group.bench_function("commit", |b| {
        b.iter_batched(
            || {
                // Not timed: a data file of 1,000 events for the commit.
                let mut stage =
                    stage_lines(&layout, &names, &mut decoder, &mut interner, &lines, epoch);
                let mut files = Vec::new();
                for (partition, batch) in stage.take().expect("batches").0 {
                    writer
                        .write(&partition, &batch, epoch, &mut files)
                        .expect("write");
                }
                writer.finish_all(&mut files).expect("finish");
                epoch += 1;
                (files, epoch - 1)
            },
            |(files, epoch)| {
                let meta = CommitMeta {
                    pipeline: "bench".into(),
                    first_epoch: epoch,
                    epoch,
                    source: "generate".into(),
                    generator: None,
                    positions: vec![Vec::new()],
                    rows: 1000,
                    dead_rows: 0,
                    input_bytes: 0,
                };
                black_box(table.commit(&rt, &files, &meta).expect("commit"))
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, view_updates, parquet_encode, commit);
criterion_main!(benches);

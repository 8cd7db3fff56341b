//! Decode throughput: raw JSON lines to compact events, the per-event cost every source pays.
//!
//! Run with `cargo bench --bench decode`.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lambdaflow::event::{Decoder, Interner, Roles, Schema, Symbols};
use lambdaflow::source::GeneratorSpec;

fn decode(c: &mut Criterion) {
    let spec = GeneratorSpec::default();
    let lines: Vec<Vec<u8>> = (0..10_000)
        .map(|seq| {
            let mut line = Vec::new();
            spec.render(seq, &mut line);
            line
        })
        .collect();
    let bytes: usize = lines.iter().map(Vec::len).sum();
    let schema = Schema::ecommerce();
    let roles = Roles::of(&schema);
    let mut decoder = Decoder::new(schema, 1 << 20);
    let mut interner = Interner::new(Arc::new(Symbols::default()));

    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(lines.len() as u64));
    group.bench_function("validate", |b| {
        b.iter(|| {
            for line in &lines {
                black_box(decoder.decode(line).is_ok());
            }
        })
    });
    group.bench_function("validate+project", |b| {
        b.iter(|| {
            for line in &lines {
                if let Ok(record) = decoder.decode(line) {
                    black_box(roles.project(&record, &mut interner));
                }
            }
        })
    });
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function("render (generator)", |b| {
        let mut out = Vec::with_capacity(bytes);
        b.iter(|| {
            out.clear();
            for seq in 0..10_000 {
                spec.render(seq, &mut out);
            }
            black_box(out.len())
        })
    });
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);

//! The bodies of the `cargo fuzz` targets in `fuzz/`, kept in the library so that the stable
//! test suite replays the fuzz corpus through exactly the same code (`tests/fuzz_corpus.rs`).
//! Each takes arbitrary bytes and panics only when an invariant breaks.

use std::sync::Arc;

use crate::config::{ConfigFile, Overrides};
use crate::event::decode::Value;
use crate::event::storable::{check_partition_value, money_in_range, timestamp_in_range};
use crate::event::{
    DeadLetter, Decoder, Field, FieldType, Interner, Position, Roles, Schema, Symbols,
};
use crate::lake::check::check_file;
use crate::lake::layout::{Layout, SourceNames, Stage};
use crate::lake::table::columns_of;
use crate::lake::writer::{FileSettings, TableKind, TableWriter};
use crate::lake::{TableFile, replay};

const TYPES: [FieldType; 6] = [
    FieldType::String,
    FieldType::Int,
    FieldType::Float,
    FieldType::Money,
    FieldType::Bool,
    FieldType::Timestamp,
];

/// A schema drawn from the first bytes of `data`, and the rest: the e-commerce schema, or up to
/// four fields named after the e-commerce ones with types and requiredness from the bytes.
fn schema_of(data: &[u8]) -> (Schema, &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return (Schema::ecommerce(), data);
    };
    if first < 128 {
        return (Schema::ecommerce(), rest);
    }
    let n = usize::from(first % 4) + 1;
    let names = ["event_type", "event_timestamp", "price", "user_id"];
    let (spec, rest) = rest.split_at(n.min(rest.len()));
    let fields = spec
        .iter()
        .enumerate()
        .map(|(i, &b)| Field::new(names[i], TYPES[usize::from(b) % TYPES.len()], b & 0x80 != 0))
        .collect::<Vec<_>>();
    match Schema::new(fields) {
        Ok(schema) => (schema, rest),
        Err(_) => (Schema::ecommerce(), rest),
    }
}

/// Decodes one record against a schema drawn from the input: never panics, and whatever it
/// accepts the lake can store.
pub fn decode(data: &[u8]) {
    let (schema, record) = schema_of(data);
    let partition = schema.partition_field();
    let mut decoder = Decoder::new(schema.clone(), 4096);
    let Ok(decoded) = decoder.decode(record) else {
        return;
    };
    for (i, field) in schema.fields.iter().enumerate() {
        let value = decoded.value(i);
        assert!(
            !(field.required && *value == Value::Absent),
            "required field `{}` accepted absent",
            field.name
        );
        match *value {
            Value::Timestamp(t) => assert!(timestamp_in_range(t), "timestamp {t} accepted"),
            Value::Money(c) => assert!(money_in_range(c), "amount {c} accepted"),
            _ => {}
        }
        if Some(i) == partition
            && let Some(text) = decoded.text(i)
        {
            assert!(
                check_partition_value(text).is_ok(),
                "partition value {text:?} accepted"
            );
        }
    }
}

/// One record through the whole batch layer: decoded (or made a dead letter), staged, written
/// as a Parquet file of its partition, checked as a commit's files are, and read back by the
/// lake's own reader, which must give the same event.
pub fn lake(data: &[u8]) {
    let schema = Schema::ecommerce();
    let layout = Arc::new(Layout::new(&schema));
    let roles = Roles::of(&schema);
    let mut interner = Interner::new(Arc::new(Symbols::default()));
    let mut decoder = Decoder::new(schema, 4096);
    let mut stage = Stage::new(layout.clone(), SourceNames::new(&[], &[]));
    let position = Position::Stdin { offset: 0 };
    let event = match decoder.decode(data) {
        Ok(record) => {
            let event = roles.project(&record, &mut interner);
            stage.push(&record, &event, 1, position);
            Some(event)
        }
        Err(e) => {
            let dead = DeadLetter {
                reason: e.reason,
                message: e.message,
                raw: data.to_vec(),
                position,
            };
            stage.push_dead(&dead, 1);
            None
        }
    };
    let (parts, dead) = stage.take().expect("staged rows make batches");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut written = Vec::new();
    let events_root = dir.path().join("events");
    let mut events = TableWriter::new(
        TableKind::Events,
        events_root.clone(),
        0,
        "fuzz".into(),
        FileSettings::default(),
    );
    for (partition, batch) in &parts {
        events
            .write(partition, batch, 1, &mut written)
            .expect("a staged batch is written");
    }
    events.finish_all(&mut written).expect("files finish");
    let columns = columns_of(&layout.table_fields(), &layout.partition_columns());
    for f in &written {
        check_file(
            &events_root,
            &columns,
            &f.path,
            None,
            Some(f.rows),
            &f.partition,
        )
        .unwrap_or_else(|why| panic!("a file the engine wrote fails the check: {why}"));
        let file = TableFile {
            path: f.path.clone(),
            size: f.size,
            rows: Some(f.rows),
            partition: f.partition.iter().cloned().collect(),
            stats: Some(f.stats.clone()),
        };
        let mut read = Vec::new();
        replay::read_events(&events_root, &file, None, &mut interner, |e| read.push(e))
            .expect("the file reads back");
        assert_eq!(read, event.into_iter().collect::<Vec<_>>());
    }
    assert_eq!(written.len(), usize::from(event.is_some()));
    if let Some(batch) = dead {
        assert_eq!(batch.num_rows(), 1);
    }
}

/// A config file: parsing and validating it never panics.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(file) = ConfigFile::parse(text, "fuzz") {
        // No source is named: the generator, which touches no file.
        let _ = crate::config::resolve(file, Overrides::default());
    }
}

/// The query string and `Authorization` header of an HTTP request: parsing them never panics.
pub fn http(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (query, header) = text.split_once('\n').unwrap_or((&text, ""));
    let _ = crate::serve::parse_view_query(query);
    if let Some(token) = crate::serve::bearer_token(header) {
        assert!(header.len() >= token.len());
    }
}

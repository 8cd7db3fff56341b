//! Reading committed data files back into events and dead letters: the lake as a source.

use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::{Decimal128Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, ArrayRef, RecordBatch};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::LakeError;
use super::layout::TYPE_COLUMN;
use super::table::TableFile;
use crate::event::{DeadLetter, Event, IdHash, Interner, Position, Reason};

/// Rows per batch read back.
const BATCH_ROWS: usize = 64 * 1024;

pub(crate) fn batches(root: &Path, file: &TableFile) -> Result<Vec<RecordBatch>, LakeError> {
    let path = root.join(&file.path);
    let opened = super::store::open(&path)?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(opened)
        .map_err(|e| LakeError::parquet(&path, e))?
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(|e| LakeError::parquet(&path, e))?;
    reader
        .map(|b| b.map_err(|e| LakeError::parquet(&path, e.into())))
        .collect()
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Option<&'a ArrayRef> {
    batch.column_by_name(name)
}

fn text(array: Option<&ArrayRef>, row: usize) -> Option<&str> {
    let a = array?.as_string_opt::<i32>()?;
    (!a.is_null(row)).then(|| a.value(row))
}

pub(crate) fn epoch_ok(epochs: Option<&ArrayRef>, row: usize, through: Option<u64>) -> bool {
    match (
        through,
        epochs.and_then(|a| a.as_primitive_opt::<Int64Type>()),
    ) {
        (Some(t), Some(a)) => (a.value(row) as u64) <= t,
        _ => true,
    }
}

/// Reads the events of one data file, calling `each` with every row whose `_epoch` is at most
/// `through` (every row when `None`). Returns the rows read.
pub fn read_events(
    root: &Path,
    file: &TableFile,
    through: Option<u64>,
    interner: &mut Interner,
    mut each: impl FnMut(Event),
) -> Result<u64, LakeError> {
    let partition_type = file.partition.get(TYPE_COLUMN).cloned().flatten();
    // A field the lake partitions by is in the file's path, not in the file.
    let partition = |name: &str| file.partition.get(name).cloned().flatten();
    let (country_part, source_part, product_part) = (
        partition("country"),
        partition("source"),
        partition("product"),
    );
    let mut n = 0;
    for batch in batches(root, file)? {
        let user = column(&batch, "user_id");
        let at = column(&batch, "event_timestamp")
            .and_then(|a| a.as_primitive_opt::<TimestampMicrosecondType>());
        let product = column(&batch, "product");
        let price = column(&batch, "price").and_then(|a| a.as_primitive_opt::<Decimal128Type>());
        let country = column(&batch, "country");
        let source = column(&batch, "source");
        let kind = column(&batch, TYPE_COLUMN);
        let epochs = column(&batch, "_epoch");
        for row in 0..batch.num_rows() {
            if !epoch_ok(epochs, row, through) {
                continue;
            }
            let event_type = match &partition_type {
                Some(t) => interner.intern(t),
                None => interner.intern(text(kind, row).unwrap_or_default()),
            };
            let user = IdHash::of(text(user, row).unwrap_or_default());
            let mut sym = |a: Option<&ArrayRef>, part: &Option<String>| {
                text(a, row).or(part.as_deref()).map(|s| interner.intern(s))
            };
            let event = Event {
                event_type,
                user,
                product: sym(product, &product_part),
                country: sym(country, &country_part),
                source: sym(source, &source_part),
                at: at.filter(|a| !a.is_null(row)).map_or(0, |a| a.value(row)),
                price: price
                    .filter(|a| !a.is_null(row))
                    .map(|a| a.value(row) as i64),
            };
            each(event);
            n += 1;
        }
    }
    Ok(n)
}

/// Reads the dead letters of one data file (rows whose `_epoch` is at most `through`).
pub fn read_dead(
    root: &Path,
    file: &TableFile,
    through: Option<u64>,
    mut each: impl FnMut(DeadLetter),
) -> Result<u64, LakeError> {
    let mut n = 0;
    for batch in batches(root, file)? {
        let reason = column(&batch, "reason");
        let message = column(&batch, "message");
        let raw = column(&batch, "raw").and_then(|a| a.as_binary_opt::<i32>());
        let source = column(&batch, "_source");
        let offset = column(&batch, "_offset").and_then(|a| a.as_primitive_opt::<Int64Type>());
        let epochs = column(&batch, "_epoch");
        for row in 0..batch.num_rows() {
            if !epoch_ok(epochs, row, through) {
                continue;
            }
            let code = text(reason, row).unwrap_or_default();
            let Some(reason) = Reason::from_code(code) else {
                return Err(LakeError::Other(format!(
                    "{}: unknown dead-letter reason `{code}`",
                    root.join(&file.path).display()
                )));
            };
            let offset = offset.map_or(0, |a| a.value(row) as u64);
            let position = match text(source, row) {
                Some("generator") => Position::Generator { seq: offset },
                Some("stdin") => Position::Stdin { offset },
                Some(s) if s.starts_with("kafka:") => Position::Kafka {
                    topic: 0,
                    partition: s
                        .rsplit('/')
                        .next()
                        .and_then(|p| p.parse().ok())
                        .unwrap_or(0),
                    offset,
                },
                _ => Position::File { file: 0, offset },
            };
            each(DeadLetter {
                reason,
                message: text(message, row).unwrap_or_default().to_string(),
                raw: raw.map(|a| a.value(row).to_vec()).unwrap_or_default(),
                position,
            });
            n += 1;
        }
    }
    Ok(n)
}

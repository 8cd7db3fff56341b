//! The rows SQL views read, read back from the lake's events table (`batch`, `verify`, and the
//! replay at start): the schema's columns by name, whatever else the files hold.

use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::{Decimal128Type, Float64Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, ArrayRef};

use super::RowLayout;
use crate::event::{FieldType, Interner, Schema};
use crate::lake::LakeError;
use crate::lake::replay::{batches, epoch_ok};
use crate::lake::table::TableFile;
use crate::views::{Datum, Float, Row};

/// Reads the rows of one data file whose `_epoch` is at most `through` (every row when
/// `None`), calling `each` with each. Returns the rows read.
pub fn read_rows(
    root: &Path,
    file: &TableFile,
    through: Option<u64>,
    schema: &Schema,
    layout: &RowLayout,
    interner: &mut Interner,
    mut each: impl FnMut(Row),
) -> Result<u64, LakeError> {
    let mut n = 0;
    for batch in batches(root, file)? {
        let epochs = batch.column_by_name("_epoch");
        let columns: Vec<(Option<&ArrayRef>, FieldType, Option<Datum>, bool)> = layout
            .fields
            .iter()
            .enumerate()
            .map(|(slot, &i)| {
                let field = &schema.fields[i];
                // A partition column is in the file's path, not in the file.
                let hashed = layout.hashed.get(slot) == Some(&true);
                let partition = file.partition.get(&field.name).map(|v| match v {
                    Some(text) if hashed => Datum::hash_of(text),
                    Some(text) => Datum::Sym(interner.intern(text)),
                    None => Datum::Null,
                });
                (
                    batch.column_by_name(&field.name),
                    field.ty,
                    partition,
                    hashed,
                )
            })
            .collect();
        for row in 0..batch.num_rows() {
            if !epoch_ok(epochs, row, through) {
                continue;
            }
            let values = columns
                .iter()
                .map(|(array, ty, partition, hashed)| match (array, partition) {
                    (_, Some(p)) => p.clone(),
                    (None, None) => Datum::Null,
                    (Some(a), None) if *hashed => hashed_value(a, row),
                    (Some(a), None) => value(a, *ty, row, interner),
                })
                .collect();
            each(values);
            n += 1;
        }
    }
    Ok(n)
}

/// A string column's value as its [`Datum::Hash`].
fn hashed_value(array: &ArrayRef, row: usize) -> Datum {
    match array.as_string_opt::<i32>() {
        Some(a) if !array.is_null(row) => Datum::hash_of(a.value(row)),
        _ => Datum::Null,
    }
}

fn value(array: &ArrayRef, ty: FieldType, row: usize, interner: &mut Interner) -> Datum {
    if array.is_null(row) {
        return Datum::Null;
    }
    let got = match ty {
        FieldType::String => array
            .as_string_opt::<i32>()
            .map(|a| Datum::Sym(interner.intern(a.value(row)))),
        FieldType::Int => array
            .as_primitive_opt::<Int64Type>()
            .map(|a| Datum::Int(a.value(row))),
        FieldType::Float => array
            .as_primitive_opt::<Float64Type>()
            .map(|a| Datum::Float(Float(a.value(row)))),
        FieldType::Money => array
            .as_primitive_opt::<Decimal128Type>()
            .map(|a| Datum::Money(a.value(row) as i64)),
        FieldType::Bool => array.as_boolean_opt().map(|a| Datum::Bool(a.value(row))),
        FieldType::Timestamp => array
            .as_primitive_opt::<TimestampMicrosecondType>()
            .map(|a| Datum::Timestamp(a.value(row))),
    };
    got.unwrap_or(Datum::Null)
}

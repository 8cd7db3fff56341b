//! The lake's columns and partitions, and the builders that stage an epoch's rows for Parquet.
//!
//! A data file holds one column per schema field (but `event_type`, a partition column), then
//! `_doc` (unknown keys as a JSON object, or null), `_epoch` (the epoch the record was read in),
//! `_source` and `_offset` (where it was read: `generator` and its sequence number, `file:PATH`
//! and the byte offset of the line, `stdin` and the byte offset, `kafka:TOPIC/PARTITION` and the
//! message offset). Files are partitioned
//! `event_date=YYYY-MM-DD/event_type=X/`, the date being the UTC day of the schema's event time
//! (`event_timestamp` unless `[schema] event_time` names another field).
//! Dead letters have a table of their own: `reason`, `message`, `raw`, `_epoch`, `_source`,
//! `_offset`, unpartitioned.
//!
//! Staged batches hold the string fields the projection interns (`product`, `country`,
//! `source`) and `_source` as dictionary arrays: a row is the index of its value, found by the
//! symbol the event already carries, and each value's bytes are copied once per epoch and
//! partition. The file writer ([`super::writer`]) writes them as Parquet dictionary pages.

use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Decimal128Builder, Float64Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder, UInt32Builder,
};
use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray, UInt32Array};
use arrow_schema::{DataType, Field as ArrowField, Schema as ArrowSchema, SchemaRef, TimeUnit};

use crate::event::decode::Value;
use crate::event::symbol::IdMap;
use crate::event::time::{format_day, utc_day};
use crate::event::{DeadLetter, Event, FieldType, Interned, Position, Record, Roles, Schema};

/// The partition column holding the UTC day of `event_timestamp`.
pub const DATE_COLUMN: &str = "event_date";
/// The partition column holding `event_type`.
pub const TYPE_COLUMN: &str = crate::event::schema::PARTITION_FIELD;
/// Precision and scale of money columns: `decimal(18, 2)`.
pub const MONEY_PRECISION: (u8, u8) = (18, 2);

/// How the events of a schema are laid out in the lake.
#[derive(Clone, Debug)]
pub struct Layout {
    schema: Schema,
    /// Schema field index of each data column (the partition field left out).
    columns: Vec<usize>,
    /// The field partitioned by day, if the schema has a timestamp `event_timestamp`.
    date_field: Option<usize>,
    /// The field partitioned by value, if the schema has a string `event_type`.
    type_field: Option<usize>,
    /// For each data column, the interned field it is, if any: staged as a dictionary.
    interned: Vec<Option<Interned>>,
    data: SchemaRef,
    dead: SchemaRef,
    /// The columns of staged batches: `data` and `dead` with the dictionary columns as such.
    staged_data: SchemaRef,
    staged_dead: SchemaRef,
}

/// The Arrow type of a schema field in the lake.
pub fn arrow_type(ty: FieldType) -> DataType {
    match ty {
        FieldType::String => DataType::Utf8,
        FieldType::Int => DataType::Int64,
        FieldType::Float => DataType::Float64,
        FieldType::Money => DataType::Decimal128(MONEY_PRECISION.0, MONEY_PRECISION.1 as i8),
        FieldType::Bool => DataType::Boolean,
        FieldType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
    }
}

impl Layout {
    /// The layout of `schema`.
    pub fn new(schema: &Schema) -> Self {
        let date_field = schema.date_partition_field();
        let type_field = schema.partition_field();
        let columns: Vec<usize> = (0..schema.fields.len())
            .filter(|&i| Some(i) != type_field)
            .collect();
        let mut fields: Vec<ArrowField> = columns
            .iter()
            .map(|&i| {
                let f = &schema.fields[i];
                ArrowField::new(&f.name, arrow_type(f.ty), !f.required)
            })
            .collect();
        fields.extend(meta_fields());
        let data = Arc::new(ArrowSchema::new(fields));
        let mut dead = vec![
            ArrowField::new("reason", DataType::Utf8, false),
            ArrowField::new("message", DataType::Utf8, false),
            ArrowField::new("raw", DataType::Binary, false),
        ];
        dead.extend(meta_fields().into_iter().skip(1));
        let roles = Roles::of(schema);
        let interned: Vec<Option<Interned>> = columns.iter().map(|&i| roles.interned(i)).collect();
        let dead = Arc::new(ArrowSchema::new(dead));
        let mut dictionary: Vec<String> = columns
            .iter()
            .zip(&interned)
            .filter(|(_, interned)| interned.is_some())
            .map(|(&i, _)| schema.fields[i].name.clone())
            .collect();
        dictionary.push(SOURCE_COLUMN.to_string());
        let staged_data = staged(&data, &dictionary);
        let staged_dead = staged(&dead, &dictionary);
        Layout {
            schema: schema.clone(),
            columns,
            date_field,
            type_field,
            interned,
            data,
            dead,
            staged_data,
            staged_dead,
        }
    }

    /// The event schema.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The columns of an events data file.
    pub fn data_schema(&self) -> &SchemaRef {
        &self.data
    }

    /// The columns of a dead-letter data file.
    pub fn dead_schema(&self) -> &SchemaRef {
        &self.dead
    }

    /// The partition columns, outermost first.
    pub fn partition_columns(&self) -> Vec<&str> {
        let mut out = Vec::new();
        if self.date_field.is_some() {
            out.push(DATE_COLUMN);
        }
        if let Some(i) = self.type_field {
            out.push(self.schema.fields[i].name.as_str());
        }
        out
    }

    /// Every column of the events table, data and partition columns, with Arrow types.
    pub fn table_fields(&self) -> Vec<ArrowField> {
        let mut fields: Vec<ArrowField> =
            self.data.fields().iter().map(|f| (**f).clone()).collect();
        if self.date_field.is_some() {
            fields.push(ArrowField::new(DATE_COLUMN, DataType::Date32, true));
        }
        if let Some(i) = self.type_field {
            fields.push(ArrowField::new(
                &self.schema.fields[i].name,
                DataType::Utf8,
                !self.schema.fields[i].required,
            ));
        }
        fields
    }
}

/// The column naming where a record was read.
const SOURCE_COLUMN: &str = "_source";

/// `schema` with its `dictionary` columns as dictionaries.
fn staged(schema: &SchemaRef, dictionary: &[String]) -> SchemaRef {
    let fields: Vec<ArrowField> = schema
        .fields()
        .iter()
        .map(|f| {
            if dictionary.contains(f.name()) {
                ArrowField::new(f.name(), dictionary_type(), f.is_nullable())
            } else {
                (**f).clone()
            }
        })
        .collect();
    Arc::new(ArrowSchema::new(fields))
}

fn meta_fields() -> Vec<ArrowField> {
    vec![
        ArrowField::new("_doc", DataType::Utf8, true),
        ArrowField::new("_epoch", DataType::Int64, false),
        ArrowField::new(SOURCE_COLUMN, DataType::Utf8, false),
        ArrowField::new("_offset", DataType::Int64, false),
    ]
}

/// A partition: its directory and its values, in [`Layout::partition_columns`] order.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Partition {
    /// `event_date=2026-11-21/event_type=purchase` (empty when unpartitioned).
    pub dir: String,
    /// `(column, value)`; `None` is a null partition value.
    pub values: Vec<(String, Option<String>)>,
}

impl Partition {
    fn of(day: Option<Option<i32>>, kind: Option<(&str, Option<&str>)>) -> Partition {
        let mut values = Vec::new();
        if let Some(day) = day {
            values.push((DATE_COLUMN.to_string(), day.map(format_day)));
        }
        if let Some((column, kind)) = kind {
            values.push((column.to_string(), kind.map(str::to_string)));
        }
        let dir = values
            .iter()
            .map(|(k, v)| match v {
                Some(v) => format!("{k}={}", escape_partition_value(v)),
                None => format!("{k}=__HIVE_DEFAULT_PARTITION__"),
            })
            .collect::<Vec<_>>()
            .join("/");
        Partition { dir, values }
    }
}

pub use crate::event::storable::escape_partition_value;

/// How the `_source` column names where a record was read: `generator`, `stdin`, `file:PATH` by
/// [`Position::File`] index, `kafka:TOPIC/PARTITION` by [`Position::Kafka`] topic index.
#[derive(Debug, Default)]
pub struct SourceNames {
    files: Vec<String>,
    topics: Vec<String>,
}

impl SourceNames {
    /// The names for the files and topics a source reads.
    pub fn new(files: &[std::path::PathBuf], topics: &[String]) -> Arc<Self> {
        Arc::new(SourceNames {
            files: files
                .iter()
                .map(|p| format!("file:{}", p.display()))
                .collect(),
            topics: topics.to_vec(),
        })
    }

    /// The `_source` of `position` and its `_offset`.
    pub fn name(&self, position: Position) -> (std::borrow::Cow<'_, str>, i64) {
        fn listed(list: &[String], i: u32) -> &str {
            list.get(i as usize).map_or("?", String::as_str)
        }
        match position {
            Position::Generator { seq } | Position::GeneratorStream { next: seq, .. } => {
                ("generator".into(), seq as i64)
            }
            Position::File { file, offset }
            | Position::FileRange {
                file,
                start: offset,
                ..
            } => (listed(&self.files, file).into(), offset as i64),
            Position::Stdin { offset } => ("stdin".into(), offset as i64),
            Position::Kafka {
                topic,
                partition,
                offset,
            } => (
                format!("kafka:{}/{partition}", listed(&self.topics, topic)).into(),
                offset as i64,
            ),
        }
    }
}

enum Column {
    Str(StringBuilder),
    Interned(Interned, Dictionary),
    Int(Int64Builder),
    Float(Float64Builder),
    Money(Decimal128Builder),
    Bool(BooleanBuilder),
    Time(TimestampMicrosecondBuilder),
}

impl Column {
    /// A column for `rows` values, strings of `bytes` bytes in all; `interned` ones staged as
    /// dictionaries.
    fn with_capacity(
        ty: FieldType,
        interned: Option<Interned>,
        rows: usize,
        bytes: usize,
    ) -> Column {
        if let Some(field) = interned {
            return Column::Interned(field, Dictionary::with_capacity(rows));
        }
        match ty {
            FieldType::String => Column::Str(StringBuilder::with_capacity(rows, bytes)),
            FieldType::Int => Column::Int(Int64Builder::with_capacity(rows)),
            FieldType::Float => Column::Float(Float64Builder::with_capacity(rows)),
            FieldType::Money => Column::Money(
                Decimal128Builder::with_capacity(rows)
                    .with_precision_and_scale(MONEY_PRECISION.0, MONEY_PRECISION.1 as i8)
                    .expect("decimal(18, 2) is valid"),
            ),
            FieldType::Bool => Column::Bool(BooleanBuilder::with_capacity(rows)),
            FieldType::Timestamp => {
                Column::Time(TimestampMicrosecondBuilder::with_capacity(rows).with_timezone("UTC"))
            }
        }
    }

    /// Appends field `field` of `record`, projected as `event`.
    fn push(&mut self, record: &Record<'_>, event: &Event, field: usize) {
        match (self, record.value(field)) {
            (Column::Str(b), _) => b.append_option(record.text(field)),
            (Column::Interned(interned, d), _) => match interned.of(event) {
                Some(sym) => d.push(sym.get(), || record.text(field).unwrap_or_default()),
                None => d.push_null(),
            },
            (Column::Int(b), Value::Int(v)) => b.append_value(*v),
            (Column::Float(b), Value::Float(v)) => b.append_value(*v),
            (Column::Float(b), Value::Int(v)) => b.append_value(*v as f64),
            (Column::Money(b), Value::Money(v)) => b.append_value(*v as i128),
            (Column::Bool(b), Value::Bool(v)) => b.append_value(*v),
            (Column::Time(b), Value::Timestamp(v)) => b.append_value(*v),
            (Column::Int(b), _) => b.append_null(),
            (Column::Float(b), _) => b.append_null(),
            (Column::Money(b), _) => b.append_null(),
            (Column::Bool(b), _) => b.append_null(),
            (Column::Time(b), _) => b.append_null(),
        }
    }

    /// Bytes of string values appended (0 for other columns).
    fn string_bytes(&self) -> usize {
        match self {
            Column::Str(b) => b.values_slice().len(),
            _ => 0,
        }
    }

    fn finish(&mut self) -> Result<ArrayRef, arrow_schema::ArrowError> {
        Ok(match self {
            Column::Str(b) => Arc::new(b.finish()),
            Column::Interned(_, d) => d.finish()?,
            Column::Int(b) => Arc::new(b.finish()),
            Column::Float(b) => Arc::new(b.finish()),
            Column::Money(b) => Arc::new(b.finish()),
            Column::Bool(b) => Arc::new(b.finish()),
            Column::Time(b) => Arc::new(b.finish()),
        })
    }
}

/// Slots of [`Dictionary`]'s cache of recent values.
const RECENT_VALUES: usize = 64;

/// A string column staged as a dictionary: each distinct value once, and each row's index.
/// Values are told apart by a hash the caller already has (a symbol's), so a row costs one
/// probe of a small table by an integer, and a value's bytes are copied once per epoch.
///
/// The interned columns are the views' keys, with a few dozen values each (event types,
/// countries, products): most rows find theirs in a direct-mapped cache of the values seen
/// last, by the hash's low bits, with one comparison instead of a probe of the table.
struct Dictionary {
    /// (hash, slot) pairs; 0 is no symbol's hash, so a zero entry is empty.
    recent: Box<[(u64, u32); RECENT_VALUES]>,
    slots: IdMap<u32>,
    values: StringBuilder,
    keys: UInt32Builder,
}

impl Dictionary {
    fn with_capacity(rows: usize) -> Self {
        Dictionary {
            recent: Box::new([(0, 0); RECENT_VALUES]),
            slots: IdMap::default(),
            values: StringBuilder::new(),
            keys: UInt32Builder::with_capacity(rows),
        }
    }

    /// Appends the value whose hash is `id` (not 0); `value` gives its string the first time.
    fn push<'a>(&mut self, id: u64, value: impl FnOnce() -> &'a str) {
        let cached = &mut self.recent[id as usize % RECENT_VALUES];
        if cached.0 != id {
            let next = self.slots.len() as u32;
            let slot = *self.slots.entry(id).or_insert_with(|| {
                self.values.append_value(value());
                next
            });
            *cached = (id, slot);
        }
        self.keys.append_value(cached.1);
    }

    fn push_null(&mut self) {
        self.keys.append_null();
    }

    fn finish(&mut self) -> Result<ArrayRef, arrow_schema::ArrowError> {
        self.slots.clear();
        self.recent.fill((0, 0));
        dictionary(self.keys.finish(), self.values.finish())
    }
}

/// A partition's key while staging: the UTC day and the event type.
type PartKey = (Option<i32>, Option<Box<str>>);

/// The rows of one partition, column by column.
struct Rows {
    partition: Partition,
    key: PartKey,
    columns: Vec<Column>,
    doc: StringBuilder,
    meta: MetaColumns,
    len: usize,
}

impl Rows {
    /// Builders for what the partition held in the previous epoch (`sizes`: its rows and the
    /// bytes of each string column, one per data column, then `_doc`; none: start small), and a
    /// quarter more: epochs of processing time vary in size, and one larger than the last would
    /// otherwise copy every builder as it doubles. Room never written to is never touched.
    fn new(layout: &Layout, partition: Partition, key: PartKey, sizes: Option<&Sizes>) -> Self {
        let headroom = |n: usize| n + n / 4;
        let rows = headroom(sizes.map_or(0, |s| s.rows));
        let bytes = |i: usize| headroom(sizes.and_then(|s| s.bytes.get(i).copied()).unwrap_or(0));
        let n = layout.columns.len();
        Rows {
            partition,
            key,
            columns: layout
                .columns
                .iter()
                .enumerate()
                .map(|(i, &field)| {
                    let interned = layout.interned[i];
                    Column::with_capacity(layout.schema.fields[field].ty, interned, rows, bytes(i))
                })
                .collect(),
            doc: StringBuilder::with_capacity(rows, bytes(n)),
            meta: MetaColumns::with_capacity(rows),
            len: 0,
        }
    }

    fn sizes(&self) -> Sizes {
        let mut bytes: Vec<usize> = self.columns.iter().map(Column::string_bytes).collect();
        bytes.push(self.doc.values_slice().len());
        Sizes {
            rows: self.len,
            bytes,
        }
    }
}

/// How much a partition held: its rows and the bytes of each string column.
#[derive(Clone, Debug, Default)]
struct Sizes {
    rows: usize,
    bytes: Vec<usize>,
}

/// What the partitions of a [`Stage`] held, to size the builders of the next epoch's stage: an
/// epoch's partitions and rates are much like the previous one's, and builders that start at
/// their final size are not copied as they grow.
#[derive(Clone, Debug, Default)]
pub struct StageSizes(Vec<(PartKey, Sizes)>);

impl StageSizes {
    fn get(&self, key: &PartKey) -> Option<&Sizes> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, s)| s)
    }
}

/// Where a run of rows was read, for `_source`: the source (a file, a Kafka partition) and the
/// epoch, which stay the same for many rows on end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Origin {
    epoch: u64,
    /// The position with its offset zeroed.
    source: Position,
}

impl Origin {
    fn of(epoch: u64, position: Position) -> (Origin, i64) {
        let (source, offset) = match position {
            Position::Generator { seq } | Position::GeneratorStream { next: seq, .. } => {
                (Position::Generator { seq: 0 }, seq)
            }
            Position::File { file, offset }
            | Position::FileRange {
                file,
                start: offset,
                ..
            } => (Position::File { file, offset: 0 }, offset),
            Position::Stdin { offset } => (Position::Stdin { offset: 0 }, offset),
            Position::Kafka {
                topic,
                partition,
                offset,
            } => (
                Position::Kafka {
                    topic,
                    partition,
                    offset: 0,
                },
                offset,
            ),
        };
        (Origin { epoch, source }, offset as i64)
    }
}

/// `_epoch`, `_source`, `_offset`: the offsets row by row, the epoch and source as runs (a
/// chunk's records come from one source in one epoch), expanded into columns when finished.
struct MetaColumns {
    runs: Vec<(Origin, usize)>,
    offsets: Vec<i64>,
}

impl MetaColumns {
    fn with_capacity(rows: usize) -> Self {
        MetaColumns {
            runs: Vec::new(),
            offsets: Vec::with_capacity(rows),
        }
    }

    fn push(&mut self, epoch: u64, position: Position) {
        let (origin, offset) = Origin::of(epoch, position);
        match self.runs.last_mut() {
            Some((last, n)) if *last == origin => *n += 1,
            _ => self.runs.push((origin, 1)),
        }
        self.offsets.push(offset);
    }

    /// `_source` is a dictionary: each source named once, each row its index.
    fn finish(
        &mut self,
        names: &SourceNames,
        out: &mut Vec<ArrayRef>,
    ) -> Result<(), arrow_schema::ArrowError> {
        let rows = self.offsets.len();
        let mut epochs = Vec::with_capacity(rows);
        let mut sources: Vec<Position> = Vec::new();
        let mut keys = Vec::with_capacity(rows);
        for (origin, n) in &self.runs {
            epochs.extend(std::iter::repeat_n(origin.epoch as i64, *n));
            let key = match sources.iter().position(|s| *s == origin.source) {
                Some(key) => key,
                None => {
                    sources.push(origin.source);
                    sources.len() - 1
                }
            };
            keys.extend(std::iter::repeat_n(key as u32, *n));
        }
        let named: StringArray = sources.iter().map(|&s| Some(names.name(s).0)).collect();
        self.runs.clear();
        out.push(Arc::new(Int64Array::from(epochs)));
        out.push(dictionary(UInt32Array::from(keys), named)?);
        out.push(Arc::new(Int64Array::from(std::mem::take(
            &mut self.offsets,
        ))));
        Ok(())
    }
}

/// Staged rows as record batches: one per partition, and one of dead letters.
pub type Staged = (Vec<(Partition, RecordBatch)>, Option<RecordBatch>);

/// The rows of an epoch on one worker, staged by partition, and its dead letters.
pub struct Stage {
    layout: Arc<Layout>,
    names: Arc<SourceNames>,
    parts: Vec<Rows>,
    dead: (StringBuilder, StringBuilder, BinaryBuilder, MetaColumns),
    dead_len: usize,
    /// The previous stage's sizes, to size new partitions' builders with.
    sizes: StageSizes,
}

impl Stage {
    /// An empty stage; `names` names the sources in `_source`.
    pub fn new(layout: Arc<Layout>, names: Arc<SourceNames>) -> Self {
        Stage::sized(layout, names, StageSizes::default())
    }

    /// An empty stage whose partitions start at the sizes a previous stage's had.
    pub fn sized(layout: Arc<Layout>, names: Arc<SourceNames>, sizes: StageSizes) -> Self {
        Stage {
            layout,
            names,
            parts: Vec::new(),
            dead: (
                StringBuilder::new(),
                StringBuilder::new(),
                BinaryBuilder::new(),
                MetaColumns::with_capacity(0),
            ),
            dead_len: 0,
            sizes,
        }
    }

    /// Rows staged, events and dead letters.
    pub fn len(&self) -> usize {
        self.parts.iter().map(|p| p.len).sum::<usize>() + self.dead_len
    }

    /// Whether nothing is staged.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What each partition holds now.
    pub fn sizes(&self) -> StageSizes {
        StageSizes(
            self.parts
                .iter()
                .map(|p| (p.key.clone(), p.sizes()))
                .collect(),
        )
    }

    /// Stages a decoded record read at `position` in `epoch`; `event` is its projection, whose
    /// symbols stage the interned fields.
    pub fn push(&mut self, record: &Record<'_>, event: &Event, epoch: u64, position: Position) {
        let layout = &self.layout;
        let day = layout.date_field.map(|i| record.timestamp(i).map(utc_day));
        let kind = layout.type_field.map(|i| record.text(i));
        let index = match self.parts.iter().position(|p| {
            day.is_none_or(|d| p.key.0 == d) && kind.is_none_or(|k| p.key.1.as_deref() == k)
        }) {
            Some(i) => i,
            None => {
                let key: PartKey = (day.flatten(), kind.flatten().map(Into::into));
                let sizes = self.sizes.get(&key);
                let column = layout
                    .type_field
                    .map(|i| layout.schema.fields[i].name.as_str());
                let partition = Partition::of(day, column.zip(kind));
                let rows = Rows::new(layout, partition, key, sizes);
                self.parts.push(rows);
                self.parts.len() - 1
            }
        };
        let rows = &mut self.parts[index];
        for (column, &field) in rows.columns.iter_mut().zip(&layout.columns) {
            column.push(record, event, field);
        }
        let doc = record.doc();
        rows.doc
            .append_option((!doc.is_empty() && doc != "{}").then_some(doc));
        rows.meta.push(epoch, position);
        rows.len += 1;
    }

    /// Stages a dead letter read in `epoch`.
    pub fn push_dead(&mut self, dead: &DeadLetter, epoch: u64) {
        self.dead.0.append_value(dead.reason.code());
        self.dead.1.append_value(&dead.message);
        self.dead.2.append_value(&dead.raw);
        self.dead.3.push(epoch, dead.position);
        self.dead_len += 1;
    }

    /// Takes the staged rows as record batches: one per partition, and one of dead letters.
    pub fn take(&mut self) -> Result<Staged, arrow_schema::ArrowError> {
        let mut out = Vec::with_capacity(self.parts.len());
        for mut rows in self.parts.drain(..) {
            let mut arrays = rows
                .columns
                .iter_mut()
                .map(Column::finish)
                .collect::<Result<Vec<ArrayRef>, _>>()?;
            arrays.push(Arc::new(rows.doc.finish()));
            rows.meta.finish(&self.names, &mut arrays)?;
            out.push((
                rows.partition,
                RecordBatch::try_new(self.layout.staged_data.clone(), arrays)?,
            ));
        }
        let dead = if self.dead_len > 0 {
            let mut arrays: Vec<ArrayRef> = vec![
                Arc::new(self.dead.0.finish()),
                Arc::new(self.dead.1.finish()),
                Arc::new(self.dead.2.finish()),
            ];
            self.dead.3.finish(&self.names, &mut arrays)?;
            self.dead_len = 0;
            Some(RecordBatch::try_new(
                self.layout.staged_dead.clone(),
                arrays,
            )?)
        } else {
            None
        };
        Ok((out, dead))
    }
}

/// The data type of a column staged as a dictionary: `u32` indices into string values.
pub fn dictionary_type() -> DataType {
    DataType::Dictionary(Box::new(DataType::UInt32), Box::new(DataType::Utf8))
}

/// A staged dictionary column: `keys` into `values`.
fn dictionary(
    keys: arrow_array::UInt32Array,
    values: arrow_array::StringArray,
) -> Result<arrow_array::ArrayRef, arrow_schema::ArrowError> {
    arrow_array::DictionaryArray::<arrow_array::types::UInt32Type>::try_new(keys, Arc::new(values))
        .map(|a| Arc::new(a) as arrow_array::ArrayRef)
}

#[cfg(test)]
mod tests;

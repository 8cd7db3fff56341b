//! Parquet files from staged batches: the columns staged as dictionaries (strings the views
//! intern, and `_source`) written here as dictionary pages and bit-packed indices, the other
//! string columns written here too (dictionary-encoded with Snappy where their values repeat,
//! front-coded where they share their start with the value before, plain with Snappy
//! otherwise), and the rest (numbers, times) through the `parquet` crate's Arrow column
//! writers.
//!
//! The `parquet` crate can dictionary-encode a column too, but it hashes every value to find its
//! index, and Arrow dictionary arrays are no exception: it looks each value up and hashes it
//! again. Staging already knows each value's index (the symbol the projection gave it, or the
//! run of records from one source), so here each batch's dictionary is merged into the column
//! chunk's (one hash per distinct value per batch) and every row costs an array lookup. Snappy
//! then never sees those columns' strings: a page of indices is a few bits per row, and those
//! chunks are stored uncompressed. The other strings are hashed here, but only while they
//! repeat: a column of distinct values, such as event ids, stops being looked up after a
//! sample of the first 4,096 values of each column chunk.

use std::collections::HashMap;
use std::collections::hash_map::Entry as MapEntry;
use std::io::Write;
use std::sync::Arc;

use arrow_array::types::UInt32Type;
use arrow_array::{Array, ArrayRef, DictionaryArray, RecordBatch, StringArray};
use arrow_schema::{DataType, SchemaRef};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::{ArrowColumnWriter, ArrowRowGroupWriterFactory, compute_leaves};
use parquet::basic::{Compression, Encoding};
use parquet::column::page::{CompressedPage, Page, PageWriter};
use parquet::column::writer::ColumnCloseResult;
use parquet::errors::{ParquetError, Result};
use parquet::file::metadata::ColumnChunkMetaData;
use parquet::file::page_index::offset_index::{OffsetIndexMetaData, PageLocation};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::{SerializedFileWriter, SerializedPageWriter, TrackedWrite};
use parquet::schema::types::ColumnDescPtr;
use parquet::schema::types::ColumnPath;

use crate::event::symbol::IdMap;

/// The data type of a column staged as a dictionary: `u32` indices into string values.
pub fn dictionary_type() -> DataType {
    DataType::Dictionary(Box::new(DataType::UInt32), Box::new(DataType::Utf8))
}

/// Rows per data page of a dictionary column, at most.
const PAGE_ROWS: usize = 20_000;

/// A Parquet file being written, one row group at a time.
pub struct FileEncoder<W: Write + Send> {
    writer: SerializedFileWriter<W>,
    factory: ArrowRowGroupWriterFactory,
    schema: SchemaRef,
    /// The open row group's column chunks, from its first row on.
    columns: Option<Vec<Chunk>>,
    rows: usize,
    row_group_rows: usize,
    /// Per column: whether its strings are written here ([`StringChunk`]).
    strings: Vec<bool>,
    page_bytes: usize,
    scratch: Scratch,
}

enum Chunk {
    Arrow(Box<ArrowColumnWriter>),
    Dictionary(Box<DictionaryChunk>),
    Strings(Box<StringChunk>),
}

impl<W: Write + Send> FileEncoder<W> {
    /// A file of `schema` (the file's columns: strings as strings) with `props`, row groups of
    /// `row_group_rows`. Readers get the Arrow schema in the file's metadata, as from
    /// [`ArrowWriter`].
    pub fn new(
        sink: W,
        schema: SchemaRef,
        props: WriterProperties,
        row_group_rows: usize,
    ) -> Result<Self> {
        // String columns with Snappy and no dictionary of the `parquet` crate's (what the lake's
        // settings give the strings the views do not intern): their pages are written here,
        // dictionary-encoded or plain, with their statistics.
        let strings = schema
            .fields()
            .iter()
            .map(|field| {
                let path = ColumnPath::from(field.name().as_str());
                field.data_type() == &DataType::Utf8
                    && props.compression(&path) == Compression::SNAPPY
                    && !props.dictionary_enabled(&path)
            })
            .collect();
        let page_bytes = props.data_page_size_limit();
        let (writer, factory) =
            ArrowWriter::try_new(sink, schema.clone(), Some(props))?.into_serialized_writer()?;
        Ok(FileEncoder {
            writer,
            factory,
            schema,
            columns: None,
            rows: 0,
            row_group_rows: row_group_rows.max(1),
            strings,
            page_bytes,
            scratch: Scratch::default(),
        })
    }

    /// Appends `batch`, whose columns are the file's, each either of the file's type or, for a
    /// string column, of [`dictionary_type`].
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let mut at = 0;
        while at < batch.num_rows() {
            let take = (self.row_group_rows - self.rows).min(batch.num_rows() - at);
            self.append(&batch.slice(at, take))?;
            at += take;
            if self.rows >= self.row_group_rows {
                self.flush()?;
            }
        }
        Ok(())
    }

    fn append(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_columns() != self.schema.fields().len() {
            return Err(ParquetError::General(format!(
                "a batch of {} columns for a file of {}",
                batch.num_columns(),
                self.schema.fields().len()
            )));
        }
        if self.columns.is_none() {
            let index = self.writer.flushed_row_groups().len();
            let writers = self.factory.create_column_writers(index)?;
            let columns = writers
                .into_iter()
                .zip(batch.columns())
                .enumerate()
                .map(|(i, (writer, array))| {
                    let descr = || self.writer.schema_descr().column(i);
                    if array.data_type() == &dictionary_type() {
                        Chunk::Dictionary(Box::new(DictionaryChunk::new(descr())))
                    } else if self.strings[i] && array.data_type() == &DataType::Utf8 {
                        Chunk::Strings(Box::new(StringChunk::new(descr(), self.page_bytes)))
                    } else {
                        Chunk::Arrow(Box::new(writer))
                    }
                })
                .collect();
            self.columns = Some(columns);
        }
        let columns = self.columns.as_mut().expect("opened above");
        for ((chunk, array), field) in columns
            .iter_mut()
            .zip(batch.columns())
            .zip(self.schema.fields())
        {
            match chunk {
                Chunk::Arrow(writer) => {
                    for leaf in compute_leaves(field, array)? {
                        writer.write(&leaf)?;
                    }
                }
                Chunk::Dictionary(dictionary) => dictionary.append(array)?,
                Chunk::Strings(strings) => strings.append(array, &mut self.scratch)?,
            }
        }
        self.rows += batch.num_rows();
        Ok(())
    }

    /// Writes the open row group, if it has rows.
    fn flush(&mut self) -> Result<()> {
        let Some(columns) = self.columns.take() else {
            return Ok(());
        };
        let mut group = self.writer.next_row_group()?;
        for chunk in columns {
            match chunk {
                Chunk::Arrow(writer) => writer.close()?.append_to_row_group(&mut group)?,
                Chunk::Dictionary(dictionary) => {
                    let (bytes, close) = dictionary.close()?;
                    group.append_column(&bytes, close)?;
                }
                Chunk::Strings(strings) => {
                    let (bytes, close) = strings.close(&mut self.scratch)?;
                    group.append_column(&bytes, close)?;
                }
            }
        }
        group.close()?;
        self.rows = 0;
        Ok(())
    }

    /// Writes the last row group and the footer; returns the sink and the file's statistics as
    /// Delta's `add` actions carry them ([`super::stats::delta_stats`]).
    pub fn finish(mut self) -> Result<(W, String)> {
        self.flush()?;
        let stats = super::stats::delta_stats(self.writer.flushed_row_groups());
        Ok((self.writer.into_inner()?, stats))
    }
}

/// One dictionary column's chunk in a row group: its distinct values as a plain-encoded
/// dictionary page, and pages of each row's index into it (or null). A data page is encoded as
/// soon as it has [`PAGE_ROWS`] rows, with the bits its largest index needs so far (each page
/// says its own width), so only one page of indices is ever held.
struct DictionaryChunk {
    descr: ColumnDescPtr,
    nullable: bool,
    /// The index of each distinct value.
    slots: HashMap<Box<[u8]>, u32>,
    /// The dictionary page: each value's length (4 bytes, little-endian) and bytes.
    dictionary: Vec<u8>,
    /// The open page's indices, nulls left out, and definition levels (1 for a value, 0 for a
    /// null; a nullable column only).
    indices: Vec<u32>,
    levels: Vec<u8>,
    page_rows: usize,
    pages: Pages,
    /// A page's encoding, reused.
    body: Vec<u8>,
    /// The least and greatest of the dictionary's values, and the nulls.
    bounds: Bounds,
}

impl DictionaryChunk {
    fn new(descr: ColumnDescPtr) -> Self {
        DictionaryChunk {
            nullable: descr.max_def_level() > 0,
            descr,
            slots: HashMap::new(),
            dictionary: Vec::new(),
            indices: Vec::with_capacity(PAGE_ROWS),
            levels: Vec::new(),
            page_rows: 0,
            pages: Pages::default(),
            body: Vec::new(),
            bounds: Bounds::default(),
        }
    }

    fn append(&mut self, array: &ArrayRef) -> Result<()> {
        let array = array
            .as_any()
            .downcast_ref::<DictionaryArray<UInt32Type>>()
            .ok_or_else(|| ParquetError::General("not a dictionary of strings".into()))?;
        let values = array
            .values()
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| ParquetError::General("a dictionary of other than strings".into()))?;
        // The batch's indices into the chunk's.
        let remap: Vec<u32> = values
            .iter()
            .map(|value| self.slot(value.unwrap_or_default().as_bytes()))
            .collect();
        let keys = array.keys();
        let nulls = keys.nulls().filter(|n| n.null_count() > 0);
        if !self.nullable && nulls.is_some() {
            return Err(ParquetError::General(format!(
                "nulls in required column {}",
                self.descr.name()
            )));
        }
        self.bounds.nulls += nulls.map_or(0, |n| n.null_count()) as u64;
        let lookup = |key: u32| remap.get(key as usize).copied().unwrap_or(0);
        let mut at = 0;
        while at < keys.len() {
            let take = (PAGE_ROWS - self.page_rows).min(keys.len() - at);
            let range = at..at + take;
            match nulls {
                None => {
                    let page = &keys.values()[range];
                    self.indices.extend(page.iter().map(|&key| lookup(key)));
                    if self.nullable {
                        self.levels.resize(self.levels.len() + take, 1);
                    }
                }
                Some(nulls) => {
                    for i in range {
                        let valid = nulls.is_valid(i);
                        self.levels.push(u8::from(valid));
                        if valid {
                            self.indices.push(lookup(keys.values()[i]));
                        }
                    }
                }
            }
            self.page_rows += take;
            at += take;
            if self.page_rows == PAGE_ROWS {
                self.write_page()?;
            }
        }
        Ok(())
    }

    /// The index of `value` in the chunk's dictionary, adding it if new.
    fn slot(&mut self, value: &[u8]) -> u32 {
        if let Some(&slot) = self.slots.get(value) {
            return slot;
        }
        let slot = self.slots.len() as u32;
        self.bounds.see(value);
        self.dictionary
            .extend_from_slice(&(value.len() as u32).to_le_bytes());
        self.dictionary.extend_from_slice(value);
        self.slots.insert(value.into(), slot);
        slot
    }

    /// Encodes the open page: its levels (a nullable column), then the indices' bit width and
    /// the indices.
    fn write_page(&mut self) -> Result<()> {
        if self.page_rows == 0 {
            return Ok(());
        }
        self.body.clear();
        index_page(
            self.nullable.then_some(&self.levels[..]),
            &self.indices,
            self.slots.len(),
            &mut self.body,
        );
        self.pages.push(
            page(data_page(
                Bytes::copy_from_slice(&self.body),
                self.page_rows,
                Encoding::RLE_DICTIONARY,
            )),
            self.page_rows,
        )?;
        self.page_rows = 0;
        self.indices.clear();
        self.levels.clear();
        Ok(())
    }

    /// The chunk's pages (the dictionary page first) and what the row group records of it.
    fn close(mut self) -> Result<(Bytes, ColumnCloseResult)> {
        self.write_page()?;
        let dictionary = page(dictionary_page(
            Bytes::from(std::mem::take(&mut self.dictionary)),
            self.slots.len(),
        ));
        // A batch's dictionary may hold a value none of its rows takes: the dictionary's least
        // and greatest are bounds, maybe not the column's own.
        let metadata = ColumnChunkMetaData::builder(self.descr.clone())
            .set_compression(Compression::UNCOMPRESSED)
            .set_statistics(self.bounds.statistics(false));
        self.pages.close_with_dictionary(metadata, dictionary)
    }
}

/// Non-null values a string chunk looks at before it settles on its encoding.
const SAMPLE_VALUES: usize = 4096;

/// How many times fewer distinct values than values a sample must hold for a string chunk to be
/// dictionary-encoded. Looking a value up costs about what compressing it does, so the
/// dictionary is kept for columns whose values repeat many times over (page paths, referrers),
/// where it makes the lake smaller, and not for ids: user and session ids repeat a few times in
/// an epoch's file (a session's events come close together), and their dictionary would grow
/// past use.
const SAMPLE_REPEATS: usize = 8;

/// How many times fewer distinct values than values a kept dictionary must go on holding, checked
/// at each page of indices; below that, the rest of the chunk is plain.
const KEPT_REPEATS: usize = 4;

/// The most bytes a string chunk's dictionary page grows to; past it, the chunk's later values
/// are written plain.
const DICTIONARY_BYTES: usize = 256 << 10;

/// A string column's chunk in a row group: dictionary-encoded where its values repeat,
/// front-coded where each shares its start with the one before, plain otherwise.
///
/// The chunk starts by sampling: its first [`SAMPLE_VALUES`] values (or its first page, if that
/// fills sooner) go both into a plain page and into a dictionary. If they hold at most a
/// [`SAMPLE_REPEATS`]th as many distinct values as values, the chunk keeps the dictionary (the
/// plain page is dropped) and goes on as a dictionary column: a dictionary page, then pages of
/// indices. Otherwise (known as soon as the sample has too many distinct values to pass,
/// whatever follows) it drops the dictionary and goes on either front-coded, uncompressed
/// (`DELTA_BYTE_ARRAY`: per page, the length of the prefix each value shares with the one
/// before, then the length and bytes of the rest), or plain, compressed with Snappy (each
/// value's length, 4 bytes little-endian, and bytes): whichever makes the sample smaller (see
/// [`StringChunk::front_coding_pays`]). A dictionary that outgrows [`DICTIONARY_BYTES`], or whose values
/// repeat fewer than [`KEPT_REPEATS`] times when a page of indices is written, stops there, and
/// the rest of the chunk is plain, as Parquet's writers do on falling back. Values are looked up
/// in the dictionary by their 64-bit hash; two values with one hash (never seen in practice)
/// also end the dictionary, so no value is ever written as another.
///
/// Against the `parquet` crate's Arrow writer, which makes the same pages: no definition levels
/// computed for a column without nulls, the buffers a page is compressed in reused by every
/// page of the file (the crate's codec zeroes a fresh buffer for every page), and no dictionary
/// kept up for a column whose values do not repeat.
struct StringChunk {
    descr: ColumnDescPtr,
    nullable: bool,
    page_bytes: usize,
    encoding: Settled,
    /// The open page's plain values (sampling or plain) or suffixes (front-coded), and
    /// definition levels (a nullable column only).
    values: Vec<u8>,
    levels: Vec<u8>,
    page_rows: usize,
    tried: Tried,
    front: Front,
    pages: Pages,
    /// The least and greatest values, and the nulls.
    bounds: Bounds,
}

/// How a [`StringChunk`] encodes its values.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Settled {
    /// Not yet known: values go into a plain page and the dictionary.
    Sampling,
    Dictionary,
    Plain,
    /// Front-coded (`DELTA_BYTE_ARRAY`) and not compressed.
    Front,
}

/// The open page of a front-coded [`StringChunk`] but its suffixes: each value as the length of
/// the prefix it shares with the value before it and the length of the rest.
#[derive(Default)]
struct Front {
    prefixes: Vec<u32>,
    suffixes: Vec<u32>,
    /// The page's last value.
    last: Vec<u8>,
}

impl Front {
    /// Takes `value`, whose suffix goes to `suffixes`; the value before it is `before`, or with
    /// none the page's last value as kept (see [`Front::keep`]).
    #[inline(always)]
    fn put(&mut self, before: Option<&[u8]>, value: &[u8], suffixes: &mut Vec<u8>) {
        let shared = common_prefix(before.unwrap_or(&self.last), value);
        self.prefixes.push(shared as u32);
        self.suffixes.push((value.len() - shared) as u32);
        suffixes.extend_from_slice(&value[shared..]);
    }

    /// Keeps `value` as the page's last, for the value after it.
    fn keep(&mut self, value: &[u8]) {
        self.last.clear();
        self.last.extend_from_slice(value);
    }

    /// Appends the page's body after its levels: the prefix lengths, then the suffixes (their
    /// lengths, then their bytes, `suffixes`), and starts the next page.
    fn write(&mut self, suffixes: &[u8], out: &mut Vec<u8>) {
        delta_binary_packed(&self.prefixes, out);
        delta_binary_packed(&self.suffixes, out);
        out.extend_from_slice(suffixes);
        self.prefixes.clear();
        self.suffixes.clear();
        self.last.clear();
    }
}

/// The length of the longest prefix `a` and `b` share.
#[inline]
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let word = |s: &[u8], at: usize| u64::from_le_bytes(s[at..at + 8].try_into().expect("8 bytes"));
    if n < 8 {
        return a[..n]
            .iter()
            .zip(&b[..n])
            .take_while(|(x, y)| x == y)
            .count();
    }
    // Eight bytes at a time (ids share most of their bytes with the one before), the last eight
    // overlapping those before them, which are equal: the first difference is past them.
    let mut at = 0;
    while at + 8 < n {
        let (x, y) = (word(a, at), word(b, at));
        if x != y {
            return at + ((x ^ y).trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    let (x, y) = (word(a, n - 8), word(b, n - 8));
    if x == y {
        n
    } else {
        n - 8 + ((x ^ y).trailing_zeros() / 8) as usize
    }
}

/// The dictionary a [`StringChunk`] tries and then keeps or drops: each distinct value once,
/// found by its hash, and the open page's indices.
#[derive(Default)]
struct Tried {
    slots: IdMap<u32>,
    /// The dictionary page: each value's length (4 bytes, little-endian) and bytes.
    page: Vec<u8>,
    /// Where each value starts in `page`.
    starts: Vec<u32>,
    indices: Vec<u32>,
    /// Non-null values looked up.
    seen: usize,
    /// Data pages written with the dictionary.
    pages: usize,
}

impl Tried {
    /// The index of `value`, added if new; none if the dictionary is full or `value`'s hash is
    /// another value's.
    fn slot(&mut self, value: &[u8]) -> Option<u32> {
        self.seen += 1;
        let next = self.starts.len() as u32;
        match self.slots.entry(xxhash_rust::xxh3::xxh3_64(value)) {
            MapEntry::Occupied(slot) => {
                let slot = *slot.get();
                (self.value(slot) == value).then_some(slot)
            }
            MapEntry::Vacant(slot) => {
                if self.page.len() + 4 + value.len() > DICTIONARY_BYTES {
                    return None;
                }
                slot.insert(next);
                self.starts.push(self.page.len() as u32);
                self.page
                    .extend_from_slice(&(value.len() as u32).to_le_bytes());
                self.page.extend_from_slice(value);
                Some(next)
            }
        }
    }

    /// The value at `slot`.
    fn value(&self, slot: u32) -> &[u8] {
        let at = self.starts[slot as usize] as usize;
        let len = u32::from_le_bytes(self.page[at..at + 4].try_into().expect("4 bytes"));
        &self.page[at + 4..at + 4 + len as usize]
    }

    /// Whether the values looked up are at least `times` as many as the distinct ones.
    fn repeats(&self, times: usize) -> bool {
        self.seen > 0 && self.starts.len() * times <= self.seen
    }
}

/// What a file's string pages are compressed with: a page with its levels, and its compression.
struct Scratch {
    body: Vec<u8>,
    compressed: Vec<u8>,
    snappy: snap::raw::Encoder,
}

impl Default for Scratch {
    fn default() -> Self {
        Scratch {
            body: Vec::new(),
            compressed: Vec::new(),
            snappy: snap::raw::Encoder::new(),
        }
    }
}

impl Scratch {
    /// `body` (or, with none, the scratch body) compressed with Snappy.
    fn compress(&mut self, body: Option<&[u8]>) -> Result<Bytes> {
        let body = body.unwrap_or(&self.body);
        let n = snappy(&mut self.snappy, body, &mut self.compressed)?;
        Ok(Bytes::copy_from_slice(&self.compressed[..n]))
    }
}

/// Compresses `body` with `encoder` into the start of `out` (grown to the room it may need);
/// returns the compressed length.
fn snappy(encoder: &mut snap::raw::Encoder, body: &[u8], out: &mut Vec<u8>) -> Result<usize> {
    let room = snap::raw::max_compress_len(body.len());
    if out.len() < room {
        out.resize(room, 0);
    }
    encoder
        .compress(body, out)
        .map_err(|e| ParquetError::External(Box::new(e)))
}

impl StringChunk {
    fn new(descr: ColumnDescPtr, page_bytes: usize) -> Self {
        StringChunk {
            nullable: descr.max_def_level() > 0,
            descr,
            page_bytes: page_bytes.max(1),
            encoding: Settled::Sampling,
            values: Vec::new(),
            levels: Vec::new(),
            page_rows: 0,
            tried: Tried::default(),
            front: Front::default(),
            pages: Pages::default(),
            bounds: Bounds::default(),
        }
    }

    fn append(&mut self, array: &ArrayRef, scratch: &mut Scratch) -> Result<()> {
        let array = array
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| ParquetError::General("not an array of strings".into()))?;
        let nulls = array.nulls().filter(|n| n.null_count() > 0);
        if !self.nullable && nulls.is_some() {
            return Err(ParquetError::General(format!(
                "nulls in required column {}",
                self.descr.name()
            )));
        }
        let (offsets, bytes) = (array.value_offsets(), array.value_data());
        for i in 0..array.len() {
            if self.encoding == Settled::Front {
                // Settled for the rest of the chunk.
                return self.append_front(array, i, scratch);
            }
            let value = nulls
                .is_none_or(|n| n.is_valid(i))
                .then(|| &bytes[offsets[i] as usize..offsets[i + 1] as usize]);
            self.push(value, scratch)?;
        }
        Ok(())
    }

    /// Appends the rows of `array` from `from` on to a front-coded chunk. Each value is compared
    /// with the one before it where it lies in the array; only the last is copied, to be
    /// compared with the next array's first.
    fn append_front(
        &mut self,
        array: &StringArray,
        from: usize,
        scratch: &mut Scratch,
    ) -> Result<()> {
        let nulls = array.nulls().filter(|n| n.null_count() > 0);
        let (offsets, bytes) = (array.value_offsets(), array.value_data());
        // The value before, in `array`; none: the page's last as kept, or a new page's none.
        let mut before: Option<&[u8]> = None;
        for i in from..array.len() {
            let present = nulls.is_none_or(|n| n.is_valid(i));
            if present {
                let value = &bytes[offsets[i] as usize..offsets[i + 1] as usize];
                self.bounds.see(value);
                self.front.put(before, value, &mut self.values);
                before = Some(value);
            } else {
                self.bounds.nulls += 1;
            }
            if self.nullable {
                self.levels.push(u8::from(present));
            }
            self.page_rows += 1;
            if self.page_rows == PAGE_ROWS || self.values.len() >= self.page_bytes {
                self.write_page(scratch)?;
                before = Some(&[]);
            }
        }
        if let Some(last) = before {
            self.front.keep(last);
        }
        Ok(())
    }

    /// Appends one row: `value`, or a null.
    fn push(&mut self, value: Option<&[u8]>, scratch: &mut Scratch) -> Result<()> {
        match value {
            Some(value) => self.bounds.see(value),
            None => self.bounds.nulls += 1,
        }
        match (self.encoding, value) {
            (_, None) => {}
            (Settled::Plain, Some(value)) => self.put(value),
            (Settled::Front, Some(value)) => {
                self.front.put(None, value, &mut self.values);
                self.front.keep(value);
            }
            (Settled::Sampling, Some(value)) => self.sample(value, scratch),
            (Settled::Dictionary, Some(value)) => match self.tried.slot(value) {
                Some(slot) => self.tried.indices.push(slot),
                None => {
                    // The rows before this one keep their dictionary pages.
                    self.write_page(scratch)?;
                    self.encoding = Settled::Plain;
                    self.tried.indices = Vec::new();
                    self.put(value);
                }
            },
        }
        if self.nullable {
            self.levels.push(u8::from(value.is_some()));
        }
        self.page_rows += 1;
        if self.encoding == Settled::Dictionary {
            if self.page_rows == PAGE_ROWS {
                self.write_page(scratch)?;
                if !self.tried.repeats(KEPT_REPEATS) {
                    self.encoding = Settled::Plain;
                    self.tried.indices = Vec::new();
                }
            }
        } else if self.page_rows == PAGE_ROWS || self.values.len() >= self.page_bytes {
            if self.encoding == Settled::Sampling {
                self.settle(self.tried.repeats(SAMPLE_REPEATS), scratch);
            }
            self.write_page(scratch)?;
        }
        Ok(())
    }

    /// Samples `value`, also appended to the open plain page: once the sample is complete, or
    /// holds too many distinct values to repeat enough whatever follows, the chunk settles.
    fn sample(&mut self, value: &[u8], scratch: &mut Scratch) {
        self.put(value);
        match self.tried.slot(value) {
            Some(slot) if self.tried.starts.len() * SAMPLE_REPEATS <= SAMPLE_VALUES => {
                self.tried.indices.push(slot);
                if self.tried.seen >= SAMPLE_VALUES {
                    self.settle(self.tried.repeats(SAMPLE_REPEATS), scratch);
                }
            }
            _ => self.settle(false, scratch),
        }
    }

    /// Appends `value` to the open plain page.
    fn put(&mut self, value: &[u8]) {
        self.values
            .extend_from_slice(&(value.len() as u32).to_le_bytes());
        self.values.extend_from_slice(value);
    }

    /// Ends sampling: the open page's rows as indices into the dictionary (`dictionary`), or
    /// else front-coded or as the plain values they also are, whichever is smaller.
    fn settle(&mut self, dictionary: bool, scratch: &mut Scratch) {
        if dictionary {
            self.encoding = Settled::Dictionary;
            self.values.clear();
            return;
        }
        self.tried = Tried::default();
        self.encoding = if self.front_coding_pays(scratch) {
            Settled::Front
        } else {
            Settled::Plain
        };
    }

    /// Whether the open page's plain values are fewer bytes front-coded than compressed with
    /// Snappy; if so, they are front-coded now.
    ///
    /// Ids made of a fixed part and a counter or a time (`evt_2a_1041`, `s_2a_173`) share most
    /// of their bytes with the id before them: front-coded, such a column is about half of what
    /// Snappy makes of it, for a comparison of a few bytes per value instead of a compression.
    /// Random ids (UUIDs) come out about their own size either way (Snappy a little smaller,
    /// so they stay plain), and text whose repeats are not at its start (documents, URLs after
    /// a varying host) does better with Snappy.
    fn front_coding_pays(&mut self, scratch: &mut Scratch) -> bool {
        let plain = std::mem::take(&mut self.values);
        let mut at = 0;
        while at < plain.len() {
            let len = u32::from_le_bytes(plain[at..at + 4].try_into().expect("4 bytes")) as usize;
            let value = &plain[at + 4..at + 4 + len];
            self.front.put(None, value, &mut self.values);
            self.front.keep(value);
            at += 4 + len;
        }
        scratch.body.clear();
        delta_binary_packed(&self.front.prefixes, &mut scratch.body);
        delta_binary_packed(&self.front.suffixes, &mut scratch.body);
        let front = scratch.body.len() + self.values.len();
        let snappy =
            snappy(&mut scratch.snappy, &plain, &mut scratch.compressed).unwrap_or(plain.len());
        if front <= snappy {
            return true;
        }
        self.front = Front::default();
        self.values = plain;
        false
    }

    /// Compresses and writes the open page: its levels (a nullable column), then its values or
    /// indices.
    fn write_page(&mut self, scratch: &mut Scratch) -> Result<()> {
        if self.page_rows == 0 {
            return Ok(());
        }
        let (buf, size, encoding) = if self.encoding == Settled::Front {
            scratch.body.clear();
            if self.nullable {
                definition_levels(&self.levels, &mut scratch.body);
            }
            self.front.write(&self.values, &mut scratch.body);
            let body = Bytes::copy_from_slice(&scratch.body);
            (body, scratch.body.len(), Encoding::DELTA_BYTE_ARRAY)
        } else if self.encoding == Settled::Dictionary {
            scratch.body.clear();
            index_page(
                self.nullable.then_some(&self.levels[..]),
                &self.tried.indices,
                self.tried.starts.len(),
                &mut scratch.body,
            );
            self.tried.indices.clear();
            self.tried.pages += 1;
            (
                scratch.compress(None)?,
                scratch.body.len(),
                Encoding::RLE_DICTIONARY,
            )
        } else if self.nullable {
            scratch.body.clear();
            definition_levels(&self.levels, &mut scratch.body);
            scratch.body.extend_from_slice(&self.values);
            (scratch.compress(None)?, scratch.body.len(), Encoding::PLAIN)
        } else {
            let size = self.values.len();
            (scratch.compress(Some(&self.values))?, size, Encoding::PLAIN)
        };
        let page = data_page(buf, self.page_rows, encoding);
        self.pages
            .push(CompressedPage::new(page, size), self.page_rows)?;
        self.page_rows = 0;
        self.values.clear();
        self.levels.clear();
        Ok(())
    }

    /// The chunk's pages (a dictionary page first, if any page uses one) and what the row group
    /// records of it.
    fn close(mut self, scratch: &mut Scratch) -> Result<(Bytes, ColumnCloseResult)> {
        if self.encoding == Settled::Sampling {
            self.settle(self.tried.repeats(SAMPLE_REPEATS), scratch);
        }
        self.write_page(scratch)?;
        let metadata = ColumnChunkMetaData::builder(self.descr.clone())
            .set_statistics(self.bounds.statistics(true));
        if self.encoding == Settled::Front {
            let metadata = metadata
                .set_compression(Compression::UNCOMPRESSED)
                .set_encodings(vec![Encoding::DELTA_BYTE_ARRAY, Encoding::RLE]);
            return self.pages.close(metadata, None);
        }
        let metadata = metadata.set_compression(Compression::SNAPPY);
        if self.tried.pages == 0 {
            let metadata = metadata.set_encodings(vec![Encoding::PLAIN, Encoding::RLE]);
            return self.pages.close(metadata, None);
        }
        let buf = scratch.compress(Some(&self.tried.page))?;
        let dictionary = CompressedPage::new(
            dictionary_page(buf, self.tried.starts.len()),
            self.tried.page.len(),
        );
        self.pages.close_with_dictionary(metadata, dictionary)
    }
}

/// The most bytes of a string kept in a column chunk's statistics, as the `parquet` crate keeps
/// by default: a longer least value is cut, a longer greatest one cut and its last character
/// raised, so that both stay bounds.
const STATISTICS_BYTES: usize = 64;

/// A string column chunk's least and greatest values (in byte order, which is Parquet's
/// unsigned order and UTF-8's code point order) and its nulls: its statistics.
#[derive(Default)]
struct Bounds {
    seen: bool,
    min: Vec<u8>,
    max: Vec<u8>,
    nulls: u64,
}

impl Bounds {
    #[inline(always)]
    fn see(&mut self, value: &[u8]) {
        if !self.seen {
            self.seen = true;
            self.min.extend_from_slice(value);
            self.max.extend_from_slice(value);
        } else if value < self.min.as_slice() {
            self.min.clear();
            self.min.extend_from_slice(value);
        } else if value > self.max.as_slice() {
            self.max.clear();
            self.max.extend_from_slice(value);
        }
    }

    /// The chunk's statistics; `exact` says whether the bounds are values of the column.
    fn statistics(&self, exact: bool) -> parquet::file::statistics::Statistics {
        use parquet::data_type::ByteArray;
        use parquet::file::statistics::{Statistics, ValueStatistics};
        let (min, max) = if self.seen {
            (cut_min(&self.min), cut_max(&self.max))
        } else {
            (None, None)
        };
        let min_exact = exact && min.as_ref().is_some_and(|m| m.len() == self.min.len());
        let max_exact = exact
            && max
                .as_ref()
                .is_some_and(|m| m.len() == self.max.len() && *m == self.max);
        Statistics::ByteArray(
            ValueStatistics::new(
                min.map(ByteArray::from),
                max.map(ByteArray::from),
                None,
                Some(self.nulls),
                false,
            )
            .with_min_is_exact(min_exact)
            .with_max_is_exact(max_exact),
        )
    }
}

/// `value`, or its longest prefix of at most [`STATISTICS_BYTES`] that ends on a character
/// boundary: a lower bound.
fn cut_min(value: &[u8]) -> Option<Vec<u8>> {
    if value.len() <= STATISTICS_BYTES {
        return Some(value.to_vec());
    }
    let text = std::str::from_utf8(value).ok()?;
    let mut end = STATISTICS_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Some(value[..end].to_vec())
}

/// `value`, or an upper bound of at most [`STATISTICS_BYTES`]: a prefix whose last character is
/// raised by one (dropping characters that cannot be); none if no character can be.
fn cut_max(value: &[u8]) -> Option<Vec<u8>> {
    if value.len() <= STATISTICS_BYTES {
        return Some(value.to_vec());
    }
    let text = std::str::from_utf8(value).ok()?;
    let mut end = STATISTICS_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut chars: Vec<char> = text[..end].chars().collect();
    while let Some(last) = chars.pop() {
        let raised = (last as u32 + 1..=char::MAX as u32).find_map(char::from_u32);
        if let Some(raised) = raised {
            let mut out: String = chars.iter().collect();
            out.push(raised);
            if out.len() <= STATISTICS_BYTES {
                return Some(out.into_bytes());
            }
        }
    }
    None
}

/// Appends a dictionary data page's body: definition levels (`levels`, a nullable column
/// only), then the bit width of indices into a dictionary of `distinct` values, and `indices`.
fn index_page(levels: Option<&[u8]>, indices: &[u32], distinct: usize, out: &mut Vec<u8>) {
    if let Some(levels) = levels {
        definition_levels(levels, out);
    }
    let width = bit_width(distinct.saturating_sub(1) as u32);
    out.push(width);
    rle_hybrid(indices, width, out);
}

/// A column chunk's data pages as they are written, headers included, and where each is.
#[derive(Default)]
struct Pages {
    sink: Vec<u8>,
    locations: Vec<PageLocation>,
    rows: usize,
    /// The pages' size before compression, headers included.
    uncompressed: usize,
}

impl Pages {
    fn push(&mut self, page: CompressedPage, rows: usize) -> Result<()> {
        let offset = self.sink.len() as i64;
        let mut sink = TrackedWrite::new(&mut self.sink);
        let spec = SerializedPageWriter::new(&mut sink).write_page(page)?;
        sink.into_inner()?;
        // Where the page is, for readers that skip pages (the `parquet` crate's writers record
        // this for the other columns); moved past anything before the data pages on closing.
        self.locations.push(PageLocation {
            offset,
            compressed_page_size: spec.bytes_written as i32,
            first_row_index: self.rows as i64,
        });
        self.uncompressed += spec.uncompressed_size;
        self.rows += rows;
        Ok(())
    }

    /// The chunk: `dictionary`, then the data pages (some of them its indices), and what the row
    /// group records of it, `metadata` completed as in [`Pages::close`].
    fn close_with_dictionary(
        self,
        metadata: parquet::file::metadata::ColumnChunkMetaDataBuilder,
        dictionary: CompressedPage,
    ) -> Result<(Bytes, ColumnCloseResult)> {
        let mut sink = TrackedWrite::new(Vec::new());
        let written = SerializedPageWriter::new(&mut sink).write_page(dictionary)?;
        let metadata = metadata
            .set_encodings(vec![
                Encoding::PLAIN,
                Encoding::RLE,
                Encoding::RLE_DICTIONARY,
            ])
            .set_dictionary_page_offset(Some(0));
        self.close(
            metadata,
            Some((sink.into_inner()?, written.uncompressed_size)),
        )
    }

    /// The chunk: `prefix` (a dictionary page and its size before compression, or nothing)
    /// then the data pages, and what the row group records of it, `metadata` completed with
    /// sizes, counts and offsets.
    fn close(
        mut self,
        metadata: parquet::file::metadata::ColumnChunkMetaDataBuilder,
        prefix: Option<(Vec<u8>, usize)>,
    ) -> Result<(Bytes, ColumnCloseResult)> {
        let (bytes, first_data, prefix_uncompressed) = match prefix {
            Some((mut bytes, uncompressed)) => {
                let first_data = bytes.len();
                bytes.extend_from_slice(&self.sink);
                (bytes, first_data, uncompressed)
            }
            None => (std::mem::take(&mut self.sink), 0, 0),
        };
        for location in &mut self.locations {
            location.offset += first_data as i64;
        }
        let metadata = metadata
            .set_num_values(self.rows as i64)
            .set_total_compressed_size(bytes.len() as i64)
            .set_total_uncompressed_size((prefix_uncompressed + self.uncompressed) as i64)
            .set_data_page_offset(first_data as i64)
            .build()?;
        let close = ColumnCloseResult {
            bytes_written: bytes.len() as u64,
            rows_written: self.rows as u64,
            metadata,
            bloom_filter: None,
            column_index: None,
            offset_index: Some(OffsetIndexMetaData {
                page_locations: self.locations,
                unencoded_byte_array_data_bytes: None,
            }),
        };
        Ok((Bytes::from(bytes), close))
    }
}

/// A dictionary page of `values` values, plain-encoded in `buf`.
fn dictionary_page(buf: Bytes, values: usize) -> Page {
    Page::DictionaryPage {
        buf,
        num_values: values as u32,
        encoding: Encoding::PLAIN,
        is_sorted: false,
    }
}

/// A data page (version 1) of `rows` rows, without statistics.
fn data_page(buf: Bytes, rows: usize, encoding: Encoding) -> Page {
    Page::DataPage {
        buf,
        num_values: rows as u32,
        encoding,
        def_level_encoding: Encoding::RLE,
        rep_level_encoding: Encoding::RLE,
        statistics: None,
    }
}

/// Appends definition levels (1 a value, 0 a null) as a data page version 1 has them: their
/// length in bytes, then the levels in the RLE/bit-packing hybrid at one bit each.
fn definition_levels(levels: &[u8], out: &mut Vec<u8>) {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    rle_hybrid(levels, 1, out);
    let len = (out.len() - at - 4) as u32;
    out[at..at + 4].copy_from_slice(&len.to_le_bytes());
}

/// An uncompressed page.
fn page(page: Page) -> CompressedPage {
    let size = page.buffer().len();
    CompressedPage::new(page, size)
}

/// Bits needed for `max`: 0 for 0.
fn bit_width(max: u32) -> u8 {
    (32 - max.leading_zeros()) as u8
}

/// Bit-packed groups in one run, at most: readers such as the `parquet` crate's own keep a run's
/// header to one byte.
const MAX_GROUPS: usize = 63;

/// Appends `values` in Parquet's RLE/bit-packing hybrid encoding at `width` bits each: where
/// a group of eight starts a run of eight or more equal values, the run as one repeated value;
/// the rest bit-packed eight at a time (the last group padded with zeros).
fn rle_hybrid<T: Copy + PartialEq + Into<u32>>(values: &[T], width: u8, out: &mut Vec<u8>) {
    // Values not in a run yet, `values[literal..i]`: always whole groups but at the end.
    let mut literal = 0;
    let mut i = 0;
    while i < values.len() {
        let v = values[i];
        let run = values[i..].iter().take_while(|&&x| x == v).count();
        if run >= 8 {
            bit_packed(&values[literal..i], width, out);
            uleb128((run as u64) << 1, out);
            let bytes = usize::from(width).div_ceil(8);
            out.extend_from_slice(&v.into().to_le_bytes()[..bytes]);
            i += run;
            literal = i;
        } else {
            i = (i + 8).min(values.len());
        }
    }
    bit_packed(&values[literal..], width, out);
}

/// Appends `values` bit-packed, in runs of at most [`MAX_GROUPS`] groups of eight.
fn bit_packed<T: Copy + Into<u32>>(values: &[T], width: u8, out: &mut Vec<u8>) {
    let w = usize::from(width);
    for run in values.chunks(MAX_GROUPS * 8) {
        let groups = run.len().div_ceil(8);
        uleb128(((groups as u64) << 1) | 1, out);
        for group in run.chunks(8) {
            // Eight values of `w` bits are `w` bytes, least significant bits first.
            if w <= 16 {
                let mut bits = 0u128;
                for (k, &v) in group.iter().enumerate() {
                    bits |= u128::from(v.into()) << (k * w);
                }
                out.extend_from_slice(&bits.to_le_bytes()[..w]);
            } else {
                let (mut bits, mut held) = (0u64, 0);
                for k in 0..8 {
                    bits |= u64::from(group.get(k).map_or(0, |&v| v.into())) << held;
                    held += w;
                    while held >= 8 {
                        out.push(bits as u8);
                        bits >>= 8;
                        held -= 8;
                    }
                }
            }
        }
    }
}

/// Values per block of [`delta_binary_packed`].
const DELTA_BLOCK: usize = 128;
/// Miniblocks per block of [`delta_binary_packed`].
const DELTA_MINIBLOCKS: usize = 4;

/// Appends `values` in Parquet's `DELTA_BINARY_PACKED` encoding (as 32-bit integers): a header
/// (block size, miniblocks per block, count, first value), then per block of 128 differences
/// between consecutive values their minimum and, per miniblock of 32, the bit width and the
/// differences less the minimum bit-packed at that width (least significant bits first, the
/// last miniblock padded with zeros; the widths of miniblocks past the last value are 0).
fn delta_binary_packed(values: &[u32], out: &mut Vec<u8>) {
    let zigzag = |n: i64| ((n << 1) ^ (n >> 63)) as u64;
    const PER_MINIBLOCK: usize = DELTA_BLOCK / DELTA_MINIBLOCKS;
    uleb128(DELTA_BLOCK as u64, out);
    uleb128(DELTA_MINIBLOCKS as u64, out);
    uleb128(values.len() as u64, out);
    let Some((&first, rest)) = values.split_first() else {
        out.push(0);
        return;
    };
    uleb128(zigzag(i64::from(first)), out);
    let mut previous = first;
    let mut deltas = [0i64; DELTA_BLOCK];
    for block in rest.chunks(DELTA_BLOCK) {
        let mut min = i64::MAX;
        for (delta, &value) in deltas.iter_mut().zip(block) {
            *delta = i64::from(value) - i64::from(previous);
            min = min.min(*delta);
            previous = value;
        }
        uleb128(zigzag(min), out);
        let widths = out.len();
        out.extend_from_slice(&[0; DELTA_MINIBLOCKS]);
        for (m, miniblock) in deltas[..block.len()].chunks(PER_MINIBLOCK).enumerate() {
            // At most 32 bits each (the values are 32-bit).
            let any = miniblock.iter().fold(0, |any, &d| any | (d - min) as u64);
            let width = 64 - any.leading_zeros() as usize;
            out[widths + m] = width as u8;
            if width == 0 {
                continue;
            }
            // 32 values of `width` bits are `4 * width` whole bytes, least significant bits
            // first; the last miniblock padded with zeros.
            let mut bytes = [0u8; 4 * PER_MINIBLOCK + 8];
            let (mut word, mut held, mut at) = (0u64, 0, 0);
            for &d in miniblock {
                word |= ((d - min) as u64) << held;
                held += width;
                if held >= 32 {
                    bytes[at..at + 4].copy_from_slice(&(word as u32).to_le_bytes());
                    word >>= 32;
                    held -= 32;
                    at += 4;
                }
            }
            bytes[at..at + 8].copy_from_slice(&word.to_le_bytes());
            out.extend_from_slice(&bytes[..4 * width]);
        }
    }
}

/// Appends `n` as an unsigned LEB128 varint.
fn uleb128(mut n: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// A dictionary array of `values` indexed by `keys` (`None`: null).
pub fn dictionary(
    keys: arrow_array::UInt32Array,
    values: StringArray,
) -> std::result::Result<ArrayRef, arrow_schema::ArrowError> {
    DictionaryArray::<UInt32Type>::try_new(keys, Arc::new(values)).map(|a| Arc::new(a) as ArrayRef)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Int64Array, UInt32Array};
    use arrow_schema::{Field, Schema};
    use parquet::arrow::arrow_reader::{
        ArrowReaderOptions, ParquetRecordBatchReaderBuilder, RowSelection, RowSelector,
    };
    use parquet::file::metadata::PageIndexPolicy;

    /// `values` as a dictionary array whose dictionary lists the distinct values in the order of
    /// their last appearance (so each batch's indices differ from the chunk's).
    fn staged(values: &[Option<String>]) -> ArrayRef {
        let mut distinct: Vec<&str> = Vec::new();
        let mut index: HashMap<&str, u32> = HashMap::new();
        for v in values.iter().rev().flatten() {
            index.entry(v.as_str()).or_insert_with(|| {
                distinct.push(v);
                distinct.len() as u32 - 1
            });
        }
        let keys: UInt32Array = values
            .iter()
            .map(|v| v.as_deref().map(|v| index[v]))
            .collect();
        dictionary(keys, distinct.into_iter().map(Some).collect()).expect("valid")
    }

    /// The strings of column `i` of a batch read back.
    fn strings(batch: &RecordBatch, i: usize) -> Vec<Option<String>> {
        let strings = batch
            .column(i)
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("strings");
        strings.iter().map(|s| s.map(str::to_string)).collect()
    }

    /// Rows of a batch: a nullable string of 300 values (9-bit indices) with nulls, a required
    /// one in long runs, one that is always the same (0-bit indices), and an integer.
    fn rows(from: usize, n: usize) -> [Vec<Option<String>>; 3] {
        let spread = (from..from + n)
            .map(|i| (i % 7 != 3).then(|| format!("product-{}", (i * 31) % 300)))
            .collect();
        let runs = (from..from + n)
            .map(|i| Some(format!("run-{}", (i / 1000) % 3)))
            .collect();
        let same = (from..from + n)
            .map(|_| Some("generator".to_string()))
            .collect();
        [spread, runs, same]
    }

    #[test]
    fn dictionary_and_plain_columns_read_back_as_the_strings_staged() {
        // Three dictionary columns, then the first two's strings again as string columns (these
        // repeat, so they are dictionary-encoded too), and distinct ids (front-coded).
        let schema = Arc::new(Schema::new(vec![
            Field::new("spread", DataType::Utf8, true),
            Field::new("runs", DataType::Utf8, false),
            Field::new("same", DataType::Utf8, false),
            Field::new("n", DataType::Int64, false),
            Field::new("text", DataType::Utf8, true),
            Field::new("label", DataType::Utf8, false),
            Field::new("id", DataType::Utf8, false),
        ]));
        let staged_schema = Arc::new(Schema::new(vec![
            Field::new("spread", dictionary_type(), true),
            Field::new("runs", dictionary_type(), false),
            Field::new("same", dictionary_type(), false),
            Field::new("n", DataType::Int64, false),
            Field::new("text", DataType::Utf8, true),
            Field::new("label", DataType::Utf8, false),
            Field::new("id", DataType::Utf8, false),
        ]));
        let props =
            crate::lake::FileSettings::default().properties(&schema, &["spread", "runs", "same"]);
        // Row groups of 40,000 rows, cut inside the second batch; several pages per chunk.
        let mut encoder =
            FileEncoder::new(Vec::new(), schema.clone(), props, 40_000).expect("file");
        let mut expected: [Vec<Option<String>>; 3] = Default::default();
        let id = |i: usize| Some(format!("evt-{i:08}"));
        let mut from = 0;
        for n in [30_000, 1, 25_000, 7] {
            let columns = rows(from, n);
            let mut arrays: Vec<ArrayRef> = columns.iter().map(|c| staged(c)).collect();
            arrays.push(Arc::new(Int64Array::from_iter_values(
                (from..from + n).map(|i| i as i64),
            )));
            arrays.push(Arc::new(StringArray::from(columns[0].clone())));
            arrays.push(Arc::new(StringArray::from(columns[1].clone())));
            arrays.push(Arc::new(StringArray::from(
                (from..from + n).map(id).collect::<Vec<_>>(),
            )));
            let batch = RecordBatch::try_new(staged_schema.clone(), arrays).expect("batch");
            encoder.write(&batch).expect("written");
            for (all, column) in expected.iter_mut().zip(columns) {
                all.extend(column);
            }
            from += n;
        }
        let bytes = Bytes::from(encoder.finish().expect("finished").0);

        let reader =
            ParquetRecordBatchReaderBuilder::try_new(bytes.clone()).expect("a Parquet file");
        let metadata = reader.metadata().clone();
        assert_eq!(metadata.num_row_groups(), 2);
        for group in metadata.row_groups() {
            for column in &group.columns()[..3] {
                assert!(column.encodings().any(|e| e == Encoding::RLE_DICTIONARY));
                assert_eq!(column.compression(), Compression::UNCOMPRESSED);
            }
            for column in &group.columns()[4..6] {
                assert!(column.encodings().any(|e| e == Encoding::RLE_DICTIONARY));
                assert!(column.dictionary_page_offset().is_some());
                assert_eq!(column.compression(), Compression::SNAPPY);
            }
            let ids = &group.columns()[6];
            assert!(
                ids.encodings()
                    .all(|e| matches!(e, Encoding::DELTA_BYTE_ARRAY | Encoding::RLE))
            );
            assert_eq!(ids.dictionary_page_offset(), None);
            assert_eq!(ids.compression(), Compression::UNCOMPRESSED);
            // `evt-00012345` after `evt-00012344`: a prefix of 11 bytes and 1 byte of suffix, a
            // few bits of lengths; plain, each would take 4 + 12 bytes.
            assert!(ids.compressed_size() < 3 * group.num_rows(), "{ids:?}");
        }
        let plain = |got: &[Vec<Option<String>>; 3], expected: &[Vec<Option<String>>; 3]| {
            assert!(got[0] == expected[0] && got[1] == expected[1]);
        };
        let mut got: [Vec<Option<String>>; 3] = Default::default();
        let mut got_plain: [Vec<Option<String>>; 3] = Default::default();
        let mut got_ids = Vec::new();
        let mut numbers = Vec::new();
        for batch in reader.build().expect("reader") {
            let batch = batch.expect("a batch");
            assert_eq!(batch.schema(), schema, "read back as strings");
            for (all, i) in got.iter_mut().zip(0..3) {
                all.extend(strings(&batch, i));
            }
            for (all, i) in got_plain.iter_mut().zip(4..6) {
                all.extend(strings(&batch, i));
            }
            got_ids.extend(strings(&batch, 6));
            let n = batch
                .column(3)
                .as_any()
                .downcast_ref::<Int64Array>()
                .expect("ints");
            numbers.extend(n.values().iter().copied());
        }
        assert_eq!(numbers, (0..from as i64).collect::<Vec<_>>());
        for (got, expected) in got.iter().zip(&expected) {
            assert_eq!(got.len(), expected.len());
            assert!(got == expected);
        }
        plain(&got_plain, &expected);
        assert!(got_ids == (0..from).map(id).collect::<Vec<_>>());
        assert!(
            expected[0].iter().any(Option::is_none),
            "nulls were written"
        );

        // A reader that skips pages by the offset index: rows 25,000 to 34,999 of the first
        // row group and 45,000 to 49,999 of the second, each column's pages found by location.
        let options = ArrowReaderOptions::new().with_offset_index_policy(PageIndexPolicy::Required);
        let selection = RowSelection::from(vec![
            RowSelector::skip(25_000),
            RowSelector::select(10_000),
            RowSelector::skip(10_000),
            RowSelector::select(5_000),
        ]);
        let reader = ParquetRecordBatchReaderBuilder::try_new_with_options(bytes, options)
            .expect("a Parquet file")
            .with_row_selection(selection)
            .build()
            .expect("reader");
        let mut selected: [Vec<Option<String>>; 3] = Default::default();
        let mut selected_plain: [Vec<Option<String>>; 3] = Default::default();
        let mut selected_ids = Vec::new();
        for batch in reader {
            let batch = batch.expect("a batch");
            for (all, i) in selected.iter_mut().zip(0..3) {
                all.extend(strings(&batch, i));
            }
            for (all, i) in selected_plain.iter_mut().zip(4..6) {
                all.extend(strings(&batch, i));
            }
            selected_ids.extend(strings(&batch, 6));
        }
        let wanted = expected.map(|column| {
            column[25_000..35_000]
                .iter()
                .chain(&column[45_000..50_000])
                .cloned()
                .collect::<Vec<_>>()
        });
        assert!(selected == wanted);
        plain(&selected_plain, &wanted);
        let wanted_ids: Vec<_> = (25_000..35_000).chain(45_000..50_000).map(id).collect();
        assert!(selected_ids == wanted_ids);
    }

    #[test]
    fn dictionaries_of_more_than_65536_values_read_back() {
        // 17-bit indices, past the width a group of eight packs into 128 bits.
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Utf8, true)]));
        let staged_schema = Arc::new(Schema::new(vec![Field::new("id", dictionary_type(), true)]));
        let props = crate::lake::FileSettings::default().properties(&schema, &["id"]);
        let mut encoder = FileEncoder::new(Vec::new(), schema, props, 1 << 20).expect("file");
        let values: Vec<Option<String>> = (0..80_000)
            .map(|i| (i % 11 != 0).then(|| format!("user-{}", i * 7919 % 80_021)))
            .collect();
        let batch = RecordBatch::try_new(staged_schema, vec![staged(&values)]).expect("batch");
        encoder.write(&batch).expect("written");
        let bytes = Bytes::from(encoder.finish().expect("finished").0);
        let mut got = Vec::new();
        for batch in ParquetRecordBatchReaderBuilder::try_new(bytes)
            .expect("a Parquet file")
            .build()
            .expect("reader")
        {
            got.extend(strings(&batch.expect("a batch"), 0));
        }
        assert!(got == values);
    }

    /// Each page of the first column chunk of `file`: its type and encoding, as a reader of
    /// pages sees them.
    fn pages(file: &Bytes) -> Vec<(parquet::basic::PageType, Encoding)> {
        use parquet::file::reader::{FileReader, SerializedFileReader};
        let reader = SerializedFileReader::new(file.clone()).expect("a Parquet file");
        let pages = reader
            .get_row_group(0)
            .expect("a row group")
            .get_column_page_reader(0)
            .expect("pages");
        pages
            .map(|page| {
                let page = page.expect("a page");
                (page.page_type(), page.encoding())
            })
            .collect()
    }

    /// `values` written as one string column (nullable) in batches of `batch` rows, and read
    /// back; returns the file.
    fn string_file(values: &[Option<String>], batch: usize) -> Bytes {
        let schema = Arc::new(Schema::new(vec![Field::new("s", DataType::Utf8, true)]));
        let props = crate::lake::FileSettings::default().properties(&schema, &[]);
        let mut encoder =
            FileEncoder::new(Vec::new(), schema.clone(), props, 1 << 20).expect("file");
        for rows in values.chunks(batch) {
            let array: ArrayRef = Arc::new(StringArray::from(rows.to_vec()));
            let batch = RecordBatch::try_new(schema.clone(), vec![array]).expect("batch");
            encoder.write(&batch).expect("written");
        }
        let file = Bytes::from(encoder.finish().expect("finished").0);
        let mut got = Vec::new();
        for batch in ParquetRecordBatchReaderBuilder::try_new(file.clone())
            .expect("a Parquet file")
            .build()
            .expect("reader")
        {
            got.extend(strings(&batch.expect("a batch"), 0));
        }
        assert!(got == values, "read back as written");
        file
    }

    #[test]
    fn string_columns_are_dictionary_encoded_while_their_values_repeat() {
        use parquet::basic::PageType;
        let dictionary = (PageType::DICTIONARY_PAGE, Encoding::PLAIN);
        let indices = (PageType::DATA_PAGE, Encoding::RLE_DICTIONARY);
        let plain = (PageType::DATA_PAGE, Encoding::PLAIN);

        // Paths that repeat, a fifth of them null, then distinct ones from row 40,000 on: the
        // dictionary fills up (256 KiB, about 5,700 of these) inside the third page of indices,
        // and the rest of the chunk is plain.
        let values: Vec<Option<String>> = (0..60_000)
            .map(|i| {
                (i % 5 != 4).then(|| match i {
                    ..40_000 => format!("/products/{}", i % 40),
                    _ => format!("/search/{i:08}?q=something-long-enough"),
                })
            })
            .collect();
        let got = pages(&string_file(&values, 7_000));
        assert_eq!(got[..4], [dictionary, indices, indices, indices]);
        assert!(got[4..].iter().all(|p| *p == plain), "{got:?}");

        // Short distinct values from row 20,000 on: the dictionary stays small, but when the
        // second page of indices is written (row 40,000) it holds 20,040 values for 40,000
        // rows (fewer than 4 times over), and the rest is plain.
        let values: Vec<Option<String>> = (0..60_000)
            .map(|i| match i {
                ..20_000 => Some(format!("/products/{}", i % 40)),
                _ => Some(format!("{i:x}")),
            })
            .collect();
        let got = pages(&string_file(&values, 7_000));
        assert_eq!(got[..4], [dictionary, indices, indices, plain]);
        assert!(got[4..].iter().all(|p| *p == plain));

        // Distinct ids: front-coded from the first page, no dictionary.
        let front = (PageType::DATA_PAGE, Encoding::DELTA_BYTE_ARRAY);
        let ids: Vec<Option<String>> = (0..5_000).map(|i| Some(format!("evt-{i}"))).collect();
        assert!(pages(&string_file(&ids, 1_000)).iter().all(|p| *p == front));

        // Distinct values that share little with the one before but much with others: Snappy
        // makes less of them than front coding, and they stay plain.
        let docs: Vec<Option<String>> = (0..5_000)
            .map(|i| {
                Some(format!(
                    r#"{{"n":{},"note":"the same words in every one"}}"#,
                    i * 7919
                ))
            })
            .collect();
        assert!(
            pages(&string_file(&docs, 1_000))
                .iter()
                .all(|p| *p == plain)
        );

        // Chunks shorter than the sample settle when they close: two values in twenty rows
        // repeat; ten in ten do not, and are too few for front coding's lengths to pay for
        // their headers; a column of nulls has nothing to look up.
        let two: Vec<_> = (0..20).map(|i| Some(format!("v{}", i % 2))).collect();
        assert_eq!(pages(&string_file(&two, 3)), [dictionary, indices]);
        assert_eq!(pages(&string_file(&ids[..10], 3)), [plain]);
        assert_eq!(pages(&string_file(&ids[..100], 30)), [front]);
        assert_eq!(pages(&string_file(&[None, None, None], 2)), [plain]);
    }

    #[test]
    fn front_coded_strings_read_back_as_written() {
        // Against the value before: equal, a prefix of it, longer, sharing more than eight
        // bytes, nothing, empty, multi-byte characters, long; a tenth null; many pages, in
        // batches that cut pages and runs of 32 lengths anywhere.
        let kinds = |i: usize| -> Option<String> {
            let n = i / 10;
            match i % 10 {
                0 => None,
                1 | 2 => Some(format!("session_{:x}_{}", 0xbeef, n)),
                3 => Some(format!("session_{:x}", 0xbeef)),
                4 => Some(format!("session_{:x}_{}_and_more", 0xbeef, n)),
                5 => Some(String::new()),
                6 => Some(format!("zürich-straße-{n}")),
                7 => Some("x".repeat(300 + n % 700)),
                8 => Some(format!("{n:020}")),
                _ => Some(format!("{:020}", n + 1)),
            }
        };
        // Session ids first, so that the chunk settles on front coding; `string_file` reads
        // it back.
        // Last, lengths jumping by 70,000 and more: 17 and 18 bits a difference.
        let long = |i: usize| match i % 50 {
            49 => Some("y".repeat(70_000 + i * 1_000)),
            _ => Some(format!("s_2a_{i}")),
        };
        let values: Vec<Option<String>> = (0..50_000)
            .map(|i| (i % 10 != 0).then(|| format!("s_2a_{}", i / 3)))
            .chain((0..50_000).map(kinds))
            .chain((0..500).map(long))
            .collect();
        let got = pages(&string_file(&values, 4_099));
        let front = (
            parquet::basic::PageType::DATA_PAGE,
            Encoding::DELTA_BYTE_ARRAY,
        );
        assert!(got.len() > 2 && got.iter().all(|p| *p == front), "{got:?}");

        // Where arrays meet: each array's first value follows the last of the array before,
        // not a value seen earlier that it shares more with.
        let joined: Vec<Option<String>> = (0..3)
            .flat_map(|_| {
                (0..1_000).map(|i| match i {
                    0 => Some("id-00512-and-more".to_string()),
                    999 => Some("~".to_string()),
                    _ => Some(format!("id-{i:05}")),
                })
            })
            .collect();
        assert!(
            pages(&string_file(&joined, 1_000))
                .iter()
                .all(|p| *p == front)
        );
    }

    #[test]
    fn shared_prefixes() {
        assert_eq!(common_prefix(b"evt_2a_1041", b"evt_2a_1043"), 10);
        assert_eq!(common_prefix(b"evt_2a_1041", b"evt_2a_10410"), 11);
        assert_eq!(common_prefix(b"session_beef_1", b"session_beef_2"), 13);
        assert_eq!(common_prefix(b"abcdefgh", b"abcdefgh"), 8);
        assert_eq!(common_prefix(b"abcdefghi", b"abcdefgh"), 8);
        assert_eq!(common_prefix(b"", b"abc"), 0);
        assert_eq!(common_prefix(b"xbc", b"abc"), 0);
        assert_eq!(common_prefix(b"abcdefgXij", b"abcdefgYij"), 7);
        assert_eq!(common_prefix(b"abcdefghijklmnoX", b"abcdefghijklmnoY"), 15);
        assert_eq!(common_prefix(b"abcdefghijklmnopq", b"abcdefghXjklmnopq"), 8);
        assert_eq!(
            common_prefix(b"abcdefghijklmnopq", b"abcdefghijklmnopq"),
            17
        );
        assert_eq!(common_prefix(b"abcdefghij", b"abcdefghiX"), 9);
        assert_eq!(common_prefix(b"abc", b"abX"), 2);
    }

    #[test]
    fn hybrid_runs_and_groups() {
        // Eight equal values are one run: its header (8 << 1) and the value in one byte.
        let mut out = Vec::new();
        rle_hybrid(&[5u32; 8], 3, &mut out);
        assert_eq!(out, [16, 5]);
        // Fewer are one bit-packed group of eight, padded: header (1 << 1) | 1, then 3 bytes.
        out.clear();
        rle_hybrid(&[1u32, 2, 3], 3, &mut out);
        assert_eq!(out, [3, 0b1101_0001, 0b0000_0000, 0]);
        // With no bits per value, a run of any length is its header alone.
        out.clear();
        rle_hybrid(&[0u32; 300], 0, &mut out);
        assert_eq!(out, [0xd8, 0x04]);
    }
}

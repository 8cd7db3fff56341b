//! Decoding, the first step of a worker's dataflow: each raw record of a chunk becomes an event
//! (with the row the SQL and Rust views read) or a dead letter, and is staged for the lake.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::event::{DeadLetter, Decoder, Interner, Roles, Schema};
use crate::lake::dataflow::{Decoded, Stamp};
use crate::lake::layout::Stage;
use crate::source::Chunk;
use crate::views::sql::RowLayout;
use crate::views::{Datum, Row};

use super::Stats;
use super::counts::Mine;

/// A worker's decoding state.
pub(super) struct Decoding {
    decoder: Decoder,
    roles: Roles,
    /// The rows' layout, when a view reads rows.
    layout: Option<RowLayout>,
    /// For each schema field, its slot in the rows.
    slots: Vec<Option<usize>>,
    /// Whether a view reads the typed events (the built-in views do); the lake's staging
    /// reads each event either way.
    typed: bool,
    interner: Interner,
    stats: Arc<Stats>,
    mine: Mine,
}

impl Decoding {
    pub(super) fn new(
        schema: &Schema,
        max_record_bytes: usize,
        layout: RowLayout,
        typed: bool,
        interner: Interner,
        stats: Arc<Stats>,
        mine: Mine,
    ) -> Self {
        Decoding {
            decoder: Decoder::new(schema.clone(), max_record_bytes),
            roles: Roles::of(schema),
            slots: layout.slots(schema.fields.len()),
            layout: (!layout.is_empty()).then_some(layout),
            typed,
            interner,
            stats,
            mine,
        }
    }

    /// Decodes `chunk`, read in `epoch`, into events, dead letters and (when views read them)
    /// rows, staging every record in `stage` when the lake is on.
    pub(super) fn chunk(
        &mut self,
        epoch: u64,
        chunk: &Chunk,
        (time, diff): Stamp,
        out: &mut Decoded<Row>,
        mut stage: Option<&mut Stage>,
    ) {
        let Decoded {
            events,
            dead,
            rows,
            met,
        } = out;
        let before = dead.len();
        if self.typed {
            events.reserve(chunk.len());
        }
        if self.layout.is_some() {
            rows.reserve(chunk.len());
        }
        for (raw, position) in chunk.iter() {
            match self.decoder.decode(raw) {
                Ok(record) => {
                    let event = match &self.layout {
                        Some(layout) => {
                            let row = layout.project(&record, &mut self.interner);
                            // The row's symbols, where it holds them (not where it holds a
                            // string's hash): interning a string again costs a lookup.
                            let slots = &self.slots;
                            let event = self.roles.project_with(&record, &mut self.interner, |f| {
                                slots[f].and_then(|s| match row[s] {
                                    Datum::Sym(sym) => Some(Some(sym)),
                                    Datum::Null => Some(None),
                                    _ => None,
                                })
                            });
                            rows.push((row, time, diff));
                            event
                        }
                        None => self.roles.project(&record, &mut self.interner),
                    };
                    if let Some(stage) = stage.as_deref_mut() {
                        stage.push(&record, &event, epoch, position);
                    }
                    if self.typed {
                        events.push((event, time, diff));
                    }
                }
                Err(e) => {
                    let letter = DeadLetter {
                        reason: e.reason,
                        message: e.message,
                        raw: raw.to_vec(),
                        position,
                    };
                    if let Some(stage) = stage.as_deref_mut() {
                        stage.push_dead(&letter, epoch);
                    }
                    dead.push(letter);
                }
            }
        }
        met.append(&mut self.interner.take_met());
        let n = (dead.len() - before) as u64;
        self.mine.add((0, 0, chunk.len() as u64 - n, n));
        self.stats.dead_letters.fetch_add(n, Ordering::Relaxed);
        self.stats
            .events
            .fetch_add(chunk.len() as u64 - n, Ordering::Relaxed);
    }
}

//! A pipeline's SQL views, planned once: the rows they read per event, whether they read the
//! typed events instead, and their dataflow (fused where the views can be, one by one where
//! not).

use std::sync::Arc;

use differential_dataflow::VecCollection;

use super::fused::Fused;
use super::typed::EventColumns;
use super::{Plan, RowLayout, SqlView, TableName, build, dead_row};
use crate::event::{DeadLetter, Event, Schema, Symbols};
use crate::views::{Known, Row, ViewRow};

/// What the SQL views read per event, and their plans.
#[derive(Debug)]
pub struct Planned {
    /// The rows: every schema field when `every_field`, else the fields the views read.
    layout: RowLayout,
    /// The plans, renumbered into the rows; a view's index is its place here.
    plans: Vec<Plan>,
    /// Whether each row slot is never null (a required field).
    non_null: Vec<bool>,
    /// Set when the views read their rows from the typed events instead, and decoding builds
    /// none: rows of the views' fields only, every view over the events fused, and every
    /// column one the typed event holds ([`EventColumns`]).
    typed: Option<Arc<EventColumns>>,
}

impl Planned {
    /// Plans `views` over `schema`'s events; with `every_field`, the rows hold every field of
    /// the schema (for Rust views, which read them all).
    pub fn of(views: &[SqlView], schema: &Schema, every_field: bool, symbols: &Symbols) -> Self {
        let (layout, plans) = if every_field {
            RowLayout::all(schema, views, symbols)
        } else {
            RowLayout::of(views, symbols)
        };
        let non_null = layout.never_null(schema);
        let mut planned = Planned {
            layout,
            plans,
            non_null,
            typed: None,
        };
        let (_, rest) = planned.fused();
        let all_fused = rest.iter().all(|(_, p)| p.table != TableName::Events);
        if !every_field && !planned.layout.is_empty() && all_fused {
            planned.typed = EventColumns::of(&planned.layout, schema).map(Arc::new);
        }
        planned
    }

    /// The rows decoding builds: none when the views read the typed events.
    pub fn decoded(&self) -> RowLayout {
        match self.typed {
            Some(_) => RowLayout::default(),
            None => self.layout.clone(),
        }
    }

    /// Whether the views read the typed events (and decoding must make them).
    pub fn typed(&self) -> bool {
        self.typed.is_some()
    }

    /// The views that fuse, fused, and the others (with their indices).
    fn fused(&self) -> (Fused, Vec<(u8, &Plan)>) {
        let numbered: Vec<(u8, &Plan)> = (self.plans.iter().enumerate())
            .map(|(i, p)| (i as u8, p))
            .collect();
        Fused::of(&numbered, &self.non_null)
    }

    /// Every view's rows' changes, over the typed `events` or the `rows` decoding made from
    /// them ([`Planned::decoded`]), and the dead letters.
    pub fn build<'s>(
        &self,
        events: VecCollection<'s, u64, Event>,
        rows: VecCollection<'s, u64, Row>,
        dead: VecCollection<'s, u64, DeadLetter>,
        symbols: &Arc<Symbols>,
        worker: usize,
        known: &Known<'s>,
    ) -> Vec<VecCollection<'s, u64, ViewRow>> {
        let mut out = Vec::new();
        let (fused, rest) = self.fused();
        if !fused.is_empty() {
            out.push(match &self.typed {
                Some(columns) => fused.build(events, columns.clone(), symbols, known),
                None => fused.build(rows.clone(), (), symbols, known),
            });
        }
        for (view, plan) in rest {
            let input = match plan.table {
                TableName::Events => rows.clone(),
                TableName::DeadLetters => dead.clone().map(|d| dead_row(&d)),
            };
            out.push(build(plan, view, input, symbols, worker, known));
        }
        out
    }
}

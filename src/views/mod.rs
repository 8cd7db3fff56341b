//! The speed layer: the views (SQL, built-in or Rust), maintained incrementally, and the store
//! readers see.
//!
//! Every view is a differential collection derived from the events (or the dead letters) with
//! the operators of `lambdaflow-operators`. Their changes are gathered on worker 0 and applied to
//! the [`ViewStore`] one closed epoch at a time, all views together, so a reader always sees every
//! view as of the same epoch and never half of one.

pub mod builtin;
mod catalog;
pub mod custom;
mod datum;
mod known;
pub mod sql;
mod store;

pub use builtin::ViewDefinition;
pub use catalog::{Catalog, Columns};
pub use datum::{Datum, Float, Row, ViewRow};
pub use known::Known;
pub use store::{Snapshots, ViewState, ViewStore, ViewTable, publish};

//! lambdaflow: a whole Lambda architecture as one timely dataflow computation.
//!
//! The path of an event through the crate:
//! [`source`] (generator, files, stdin, Kafka: raw bytes with resumable positions) ->
//! [`event`] (schema, decoding into compact events or dead letters) ->
//! [`pipeline`] (the timely/differential dataflow, its epochs and workers) ->
//! [`views`] (the speed layer: incrementally maintained views, read as of a closed epoch), and
//! [`lake`] (the batch layer: closed epochs committed to Delta Lake exactly once, and replayed);
//! [`serve`] answers HTTP: the views, status, Prometheus metrics and a live dashboard.
//! [`config`] turns a TOML file and command-line flags into a validated [`pipeline::PipelineConfig`].

pub mod bench;
pub mod cli;
pub mod config;
pub mod event;
#[doc(hidden)]
pub mod fuzzing;
pub mod lake;
pub mod pipeline;
pub mod serve;
pub mod source;
pub mod views;

pub use views::custom::{Registry, View};

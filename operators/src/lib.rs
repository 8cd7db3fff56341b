//! Reusable differential dataflow operators that lambdaflow's views are made of.
//!
//! Each family lives in its own file behind one extension trait, and every operator comes in a
//! plain form and a `_named` form: the name shows up in timely's logs and in profiles.
//!
//! - [`FlatMapFallible`]: one input record becomes any number of results *and* any number of
//!   errors, as two collections (`oks`, `errs`); nothing is dropped and nothing panics.
//! - [`SumBy`]: per-key sums of any additive amount (counts, money, several sums at once),
//!   consolidated on the worker before records are exchanged by key.
//! - [`DistinctCount`]: the number of distinct items per group (daily active users).
//! - [`TopK`]: the `k` smallest values per group, ranked (top products by revenue).
//!
//! All operators are incremental: they consume and produce differences, so a late record is an
//! ordinary update, and the result after any sequence of epochs equals a from-scratch computation.

#![forbid(missing_docs)]

mod both;
mod distinct_count;
mod fallible;
mod open_times;
mod presum;
mod sum_by;
mod top_k;

pub use both::SumByAndDistinctCount;
pub use distinct_count::DistinctCount;
pub use fallible::FlatMapFallible;
pub use sum_by::SumBy;
pub use top_k::TopK;

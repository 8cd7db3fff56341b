//! Views written in Rust: any differential computation over the events, registered in a
//! [`Registry`] and run by the whole command line (`run`, `batch`, `verify`, `lake`, `bench`,
//! the HTTP API) exactly like the built-in and SQL views.
//!
//! ```
//! use lambdaflow::views::custom::{Column, Input, Output, Type, View};
//! use lambdaflow::views::{Datum, Row};
//! use lambdaflow_operators::SumBy;
//!
//! /// Events per country: the smallest view there is.
//! struct PerCountry;
//!
//! impl View for PerCountry {
//!     fn name(&self) -> &str {
//!         "per_country"
//!     }
//!     fn description(&self) -> &str {
//!         "events per country"
//!     }
//!     fn key(&self) -> Vec<Column> {
//!         vec![Column::new("country", Type::String)]
//!     }
//!     fn value(&self) -> Vec<Column> {
//!         vec![Column::new("events", Type::Int)]
//!     }
//!     fn build<'s>(&self, input: &Input<'s>) -> Output<'s> {
//!         let country = input.column("country").expect("the schema has a country");
//!         input
//!             .events
//!             .clone()
//!             .count_by_named("per_country", move |row: Row| Some(row[country].clone()))
//!             .map(|(country, n)| (vec![country], vec![Datum::Int(n as i64)]))
//!     }
//! }
//!
//! let registry = lambdaflow::views::custom::Registry::default().with(PerCountry);
//! assert_eq!(registry.views()[0].name(), "per_country");
//! assert_eq!(registry.views()[0].value()[0].ty, Some(Type::Int));
//! ```

use std::sync::Arc;

use differential_dataflow::VecCollection;

use super::{Datum, Known, Row};
use crate::event::{DeadLetter, Schema, Symbols};

pub use super::sql::expr::Type;

/// A column of a Rust view: its name, and its type when the view says it. `/api/views` lists
/// both, as for SQL views (a column without a type is listed with the type `""`). A name alone
/// converts: `"day".into()`.
///
/// ```
/// use lambdaflow::views::custom::{Column, Type};
///
/// let typed = Column::new("day", Type::Date);
/// let untyped: Column = "sessions".into();
/// assert_eq!((typed.name.as_str(), typed.ty), ("day", Some(Type::Date)));
/// assert_eq!((untyped.name.as_str(), untyped.ty), ("sessions", None));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    /// Its name: the field of the row's `key` or `value` object.
    pub name: String,
    /// Its type (`Type::name` gives the name `/api/views` shows), if said.
    pub ty: Option<Type>,
}

impl Column {
    /// A column named `name` whose values are of type `ty`.
    pub fn new(name: impl Into<String>, ty: Type) -> Column {
        Column {
            name: name.into(),
            ty: Some(ty),
        }
    }
}

impl From<&str> for Column {
    fn from(name: &str) -> Column {
        Column {
            name: name.to_owned(),
            ty: None,
        }
    }
}

impl From<String> for Column {
    fn from(name: String) -> Column {
        Column { name, ty: None }
    }
}

/// What a Rust view's `build` gets: the events and dead letters inside the dataflow.
pub struct Input<'s> {
    /// Every valid event (including those replayed from the lake), as one value per schema
    /// field, in the schema's order ([`Input::column`]); strings are interned
    /// ([`Datum::Sym`], resolved by [`Input::symbols`]), absent fields are [`Datum::Null`].
    pub events: VecCollection<'s, u64, Row>,
    /// Every dead letter.
    pub dead_letters: VecCollection<'s, u64, DeadLetter>,
    /// The event schema.
    pub schema: Schema,
    /// The strings behind [`Datum::Sym`].
    pub symbols: Arc<Symbols>,
    /// This worker's index (a view that needs to say something once, over no input, says it
    /// on worker 0).
    pub worker: usize,
    /// In a cluster, a process knows the strings behind only the symbols it decoded: a view
    /// that compares or shows strings inside the dataflow ([`Symbols::resolve`]) after an
    /// exchange first passes its updates through [`Known::hold`]. On one process it changes
    /// nothing. The rows a view returns need not: they are held before they are served.
    pub known: Known<'s>,
}

impl Input<'_> {
    /// The position of schema field `name` in an event row.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.schema.index_of(name)
    }
}

/// What a Rust view's `build` returns: its rows as `(key, value)`, one value column per column
/// of [`View::value`], one key column per column of [`View::key`]. A key must have one value at a
/// time (the collection holds at most one row per key, with multiplicity 1, at every epoch).
pub type Output<'s> = VecCollection<'s, u64, (Vec<Datum>, Vec<Datum>)>;

/// A view written in Rust.
pub trait View: Send + Sync + 'static {
    /// Its name, in the API, `--views-out` and a config's `views` list.
    fn name(&self) -> &str;
    /// What it means.
    fn description(&self) -> &str;
    /// Its key columns.
    fn key(&self) -> Vec<Column>;
    /// Its value columns.
    fn value(&self) -> Vec<Column>;
    /// Builds the view in the dataflow of one worker (it is called once per worker).
    fn build<'s>(&self, input: &Input<'s>) -> Output<'s>;
}

/// The Rust views a binary adds to lambdaflow's command line ([`crate::cli::main`]).
#[derive(Clone, Default)]
pub struct Registry {
    views: Vec<Arc<dyn View>>,
}

impl Registry {
    /// The registry with `view` added.
    pub fn with(mut self, view: impl View) -> Self {
        self.views.push(Arc::new(view));
        self
    }

    /// The registry with a view shared with another registry added.
    pub fn with_shared(mut self, view: Arc<dyn View>) -> Self {
        self.views.push(view);
        self
    }

    /// The registered views, in registration order.
    pub fn views(&self) -> &[Arc<dyn View>] {
        &self.views
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.views.is_empty()
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.views.iter().map(|v| v.name()))
            .finish()
    }
}

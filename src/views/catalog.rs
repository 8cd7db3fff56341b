//! Every view a run holds, SQL (the built-in views among them) and Rust, by index.

use std::sync::Arc;

use super::*;

/// A view's columns: names and type names.
pub type Columns = Vec<(String, &'static str)>;

/// Every view a run holds, by index (the first field of a [`ViewRow`]): the SQL views, then the
/// Rust views.
#[derive(Debug, Default)]
pub struct Catalog {
    sql: Vec<sql::SqlView>,
    custom: custom::Registry,
}

impl Catalog {
    /// The `sql` views and the `custom` (Rust) views.
    pub fn new(sql: Vec<sql::SqlView>, custom: custom::Registry) -> Self {
        Catalog { sql, custom }
    }

    /// How many views there are.
    pub fn len(&self) -> usize {
        self.sql.len() + self.custom.views().len()
    }

    /// The index of the Rust view `i` of the registry.
    pub fn custom_index(&self, i: usize) -> usize {
        self.sql.len() + i
    }

    /// The Rust view at index `view`, if it is one.
    pub fn custom(&self, view: usize) -> Option<&Arc<dyn custom::View>> {
        view.checked_sub(self.sql.len())
            .and_then(|i| self.custom.views().get(i))
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The SQL views.
    pub fn sql_views(&self) -> &[sql::SqlView] {
        &self.sql
    }

    /// The index of the SQL view `i` of [`Catalog::sql_views`].
    pub fn sql_index(&self, i: usize) -> usize {
        i
    }

    /// The SQL view at index `view`, if it is one.
    pub fn sql(&self, view: usize) -> Option<&sql::SqlView> {
        self.sql.get(view)
    }

    /// The name of view `view`.
    pub fn name(&self, view: usize) -> &str {
        match (self.sql(view), self.custom(view)) {
            (Some(v), _) => &v.name,
            (_, Some(v)) => v.name(),
            _ => "",
        }
    }

    /// What view `view` means.
    pub fn description(&self, view: usize) -> &str {
        match (self.sql(view), self.custom(view)) {
            (Some(v), _) => &v.description,
            (_, Some(v)) => v.description(),
            _ => "",
        }
    }

    /// The view called `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        (0..self.len()).find(|&i| self.name(i) == name)
    }

    /// The names and types of view `view`'s key columns and value columns (a Rust view's column
    /// without a type: `""`).
    pub fn columns(&self, view: usize) -> (Columns, Columns) {
        match self.sql(view) {
            Some(v) => {
                let of = |key: bool| {
                    v.plan
                        .columns
                        .iter()
                        .filter(|c| c.key == key)
                        .map(|c| (c.name.clone(), c.ty.name()))
                        .collect()
                };
                (of(true), of(false))
            }
            None => match self.custom(view) {
                Some(v) => {
                    let listed = |columns: Vec<custom::Column>| {
                        let of = |c: custom::Column| (c.name, c.ty.map_or("", |t| t.name()));
                        columns.into_iter().map(of).collect()
                    };
                    (listed(v.key()), listed(v.value()))
                }
                None => (Vec::new(), Vec::new()),
            },
        }
    }
}

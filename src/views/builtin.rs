//! The eleven built-in e-commerce views: SQL views like any other, written in `builtin.toml`
//! (the end of the default config, as `lambdaflow config` prints it).

use serde::Deserialize;

use super::sql::{self, SqlError, SqlView};
use crate::event::Schema;

/// The built-in views as `[[views]]` tables.
pub const BUILTIN_VIEWS: &str = include_str!("builtin.toml");

/// A `[[views]]` table: a view written in SQL.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ViewDefinition {
    /// Its name, in the API and `--views-out`.
    pub name: String,
    /// One `SELECT` over `events` or `dead_letters`.
    pub sql: String,
    /// What it means (default: its SQL).
    pub description: Option<String>,
}

impl ViewDefinition {
    /// The view compiled against `schema`.
    pub fn compile(self, schema: &Schema) -> Result<SqlView, SqlError> {
        let plan = sql::compile(&self.name, &self.sql, schema)?;
        Ok(SqlView {
            description: self
                .description
                .unwrap_or_else(|| self.sql.split_whitespace().collect::<Vec<_>>().join(" ")),
            name: self.name,
            sql: self.sql,
            plan,
        })
    }
}

/// The built-in views' definitions, in their order.
pub fn definitions() -> Vec<ViewDefinition> {
    #[derive(Deserialize)]
    struct File {
        views: Vec<ViewDefinition>,
    }
    let file: File = toml::from_str(BUILTIN_VIEWS).expect("builtin.toml is a list of views");
    file.views
}

/// The built-in views compiled against the e-commerce schema.
pub fn ecommerce() -> Vec<SqlView> {
    let schema = Schema::ecommerce();
    definitions()
        .into_iter()
        .map(|v| {
            v.compile(&schema)
                .expect("the built-in views fit their schema")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_views_compile_against_the_default_schema() {
        let views = ecommerce();
        assert_eq!(views.len(), 11);
        let top = views.iter().find(|v| v.name == "top_products").unwrap();
        assert_eq!((top.plan.limit, top.plan.rank), (Some(10), Some(0)));
    }
}

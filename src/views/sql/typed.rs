//! Rows read from the compact typed [`Event`] instead of being projected from each record.
//!
//! When every column the SQL views read is a field the compact event holds (as for the
//! built-in e-commerce views over the default schema), decoding builds no row at all: the
//! fused views read each event's columns where the event holds them, into a row on the stack.
//! An event is 64 bytes where a row is 200, and decoding projects one of them instead of both.

use differential_dataflow::ExchangeData;

use super::RowLayout;
use crate::event::{Event, Role, Roles, Schema};
use crate::views::{Datum, Row};

/// The fields of the compact event: a row read from one has at most as many slots.
const ROLES: usize = 7;

/// Where each slot of a [`RowLayout`] is in the compact event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventColumns(Vec<Role>);

impl EventColumns {
    /// The event's fields for `layout`'s slots, if every slot is one that reads as the row
    /// would: a field the event holds, with the same type; a string the row would hash
    /// (`user_id`) or intern (the others) as the event does; and, for the fields the event
    /// gives a default when absent, one the schema requires.
    pub fn of(layout: &RowLayout, schema: &Schema) -> Option<EventColumns> {
        let roles = Roles::of(schema);
        let slots = layout.fields.iter().enumerate().map(|(slot, &f)| {
            let field = &schema.fields[f];
            let hashed = layout.hashed.get(slot) == Some(&true);
            let role = roles.role(f)?;
            let fits = match role {
                Role::User => hashed && field.required,
                Role::EventType => !hashed && field.required,
                Role::At => field.required,
                Role::Product | Role::Country | Role::Source => !hashed,
                // `Roles` finds `price` only as money, `event_timestamp` only as a timestamp.
                Role::Price => true,
            };
            fits.then_some(role)
        });
        slots.collect::<Option<Vec<Role>>>().map(EventColumns)
    }
}

/// The value of `event`'s field `role`, as a row holds it.
#[inline]
fn column(event: &Event, role: Role) -> Datum {
    let sym = |s: Option<_>| s.map_or(Datum::Null, Datum::Sym);
    match role {
        Role::EventType => Datum::Sym(event.event_type),
        Role::User => {
            let (a, b) = event.user.words();
            Datum::Hash(a, b)
        }
        Role::At => Datum::Timestamp(event.at),
        Role::Product => sym(event.product),
        Role::Price => event.price.map_or(Datum::Null, Datum::Money),
        Role::Country => sym(event.country),
        Role::Source => sym(event.source),
    }
}

/// What the fused views read per event: a row, or an event whose row is read from it.
pub trait AsRow: ExchangeData {
    /// What reads the row (nothing for a row itself).
    type Reader: Clone + 'static;
    /// Calls `f` with the row.
    fn read<R>(&self, reader: &Self::Reader, f: impl FnOnce(&[Datum]) -> R) -> R;
}

impl AsRow for Row {
    type Reader = ();
    fn read<R>(&self, _: &(), f: impl FnOnce(&[Datum]) -> R) -> R {
        f(self)
    }
}

impl AsRow for Event {
    type Reader = std::sync::Arc<EventColumns>;
    /// The row is put together on the stack, in place: no [`Row`] is built and moved.
    fn read<R>(&self, columns: &Self::Reader, f: impl FnOnce(&[Datum]) -> R) -> R {
        let roles = &columns.0;
        let row: [Datum; ROLES] = std::array::from_fn(|i| match roles.get(i) {
            Some(&role) => column(self, role),
            None => Datum::Null,
        });
        f(&row[..roles.len()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Decoder, Interner, Symbols};
    use crate::views::sql::{SqlView, compile};

    fn layout(sql: &[&str], schema: &Schema) -> RowLayout {
        let views: Vec<SqlView> = sql
            .iter()
            .enumerate()
            .map(|(i, s)| SqlView {
                name: format!("v{i}"),
                sql: s.to_string(),
                description: String::new(),
                plan: compile(&format!("v{i}"), s, schema).expect("compiles"),
            })
            .collect();
        RowLayout::of(&views, &Symbols::default()).0
    }

    /// Over the default schema, the row read from the event is the row projected from the
    /// record, absent fields included.
    #[test]
    fn rows_read_from_events_are_the_projected_rows() {
        let schema = Schema::default();
        let layout = layout(
            &[
                "SELECT event_type, country, source, product, count(*) FROM events GROUP BY ALL",
                "SELECT date_trunc('minute', event_timestamp), sum(price) FROM events GROUP BY 1",
                "SELECT count(DISTINCT user_id) FROM events",
            ],
            &schema,
        );
        let columns = EventColumns::of(&layout, &schema).expect("every column is the event's");
        let roles = Roles::of(&schema);
        let mut decoder = Decoder::new(schema.clone(), 1 << 20);
        let mut interner = Interner::new(std::sync::Arc::new(Symbols::default()));
        let records = [
            r#"{"event_id":"e1","event_type":"purchase","user_id":"u1","event_timestamp":"2025-01-01T00:00:01Z","product":"p","price":12.5,"country":"FR","source":"web"}"#,
            r#"{"event_id":"e2","event_type":"page_view","user_id":"u2","event_timestamp":"2025-01-02T10:00:00Z","country":"DE"}"#,
        ];
        for raw in records {
            let record = decoder.decode(raw.as_bytes()).expect("valid");
            let projected = layout.project(&record, &mut interner);
            let event = roles.project(&record, &mut interner);
            let read = event.read(&std::sync::Arc::new(columns.clone()), |row| row.to_vec());
            assert_eq!(read, projected.to_vec(), "{raw}");
        }
    }

    /// A column the event does not hold, or holds otherwise, keeps the projected rows.
    #[test]
    fn other_columns_keep_projected_rows() {
        let schema = Schema::default();
        // `user_id` shown, not only counted distinct: the event holds its hash only.
        let shown = layout(
            &["SELECT user_id, count(*) FROM events GROUP BY 1"],
            &schema,
        );
        assert_eq!(EventColumns::of(&shown, &schema), None);
        // `country` counted distinct: the row would hold its hash, the event its symbol.
        let hashed = layout(&["SELECT count(DISTINCT country) FROM events"], &schema);
        assert_eq!(EventColumns::of(&hashed, &schema), None);
    }
}

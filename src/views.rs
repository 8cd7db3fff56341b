//! The speed layer: the built-in views, maintained incrementally, and the store readers see.
//!
//! Every view is a differential collection derived from the events (or the dead letters) with
//! the operators of `lambdaflow-operators`. Their changes are gathered on worker 0 and applied to
//! the [`ViewStore`] one closed epoch at a time, all views together, so a reader always sees every
//! view as of the same epoch and never half of one.

pub mod custom;
pub mod sql;

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

use differential_dataflow::VecCollection;
use lambdaflow_operators::{DistinctCount, SumBy, SumByAndDistinctCount, TopK};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json, json};
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::Operator;

use crate::event::money::{format_average, format_cents};
use crate::event::time::{format_day, format_minute, format_rfc3339, utc_day, utc_minute};
use crate::event::{DeadLetter, Event, Sym, Symbols};

/// A built-in view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ViewId {
    /// event_type -> count.
    EventsByType,
    /// (UTC minute, event_type) -> count.
    EventsPerMinute,
    /// country -> purchase revenue and orders.
    RevenueByCountry,
    /// event_type -> average price of events with a price.
    AvgPriceByType,
    /// UTC day -> distinct users.
    DailyActiveUsers,
    /// UTC day -> purchasing users / active users.
    ConversionRate,
    /// The 10 products with the highest purchase revenue.
    TopProducts,
    /// (source, event_type) -> count.
    EventsBySource,
    /// (event_type, country) -> count.
    EventsByCountry,
    /// product -> purchase revenue and orders.
    RevenueByProduct,
    /// dead-letter reason -> count.
    DeadLettersByReason,
}

/// What a view is called and what its rows hold.
#[derive(Debug)]
pub struct ViewSpec {
    /// The view.
    pub id: ViewId,
    /// Its name, in the config, the API and `--views-out`.
    pub name: &'static str,
    /// What it means, exactly.
    pub description: &'static str,
    /// The key's field names (one name: the key is a plain value; several: an object).
    pub key: &'static [&'static str],
    /// The value's field names, likewise.
    pub value: &'static [&'static str],
    /// Schema fields the view reads.
    pub needs: &'static [&'static str],
}

/// Every built-in view, in output order.
pub const VIEWS: [ViewSpec; 11] = [
    ViewSpec {
        id: ViewId::EventsByType,
        name: "events_by_type",
        description: "number of valid events per event_type",
        key: &["event_type"],
        value: &["count"],
        needs: &["event_type"],
    },
    ViewSpec {
        id: ViewId::EventsPerMinute,
        name: "events_per_minute",
        description: "number of valid events per UTC minute of event_timestamp and event_type",
        key: &["minute", "event_type"],
        value: &["count"],
        needs: &["event_type", "event_timestamp"],
    },
    ViewSpec {
        id: ViewId::RevenueByCountry,
        name: "revenue_by_country",
        description: "sum of price and number of purchase events that have a price, per country",
        key: &["country"],
        value: &["revenue", "orders"],
        needs: &["event_type", "price", "country"],
    },
    ViewSpec {
        id: ViewId::AvgPriceByType,
        name: "avg_price_by_type",
        description: "average price (rounded half away from zero to the cent), total and count of events that have a price, per event_type",
        key: &["event_type"],
        value: &["avg_price", "total", "count"],
        needs: &["event_type", "price"],
    },
    ViewSpec {
        id: ViewId::DailyActiveUsers,
        name: "daily_active_users",
        description: "number of distinct user_id with at least one valid event per UTC day of event_timestamp",
        key: &["date"],
        value: &["users"],
        needs: &["user_id", "event_timestamp"],
    },
    ViewSpec {
        id: ViewId::ConversionRate,
        name: "conversion_rate",
        description: "per UTC day: distinct users with a purchase, distinct active users, and their ratio",
        key: &["date"],
        value: &["purchasing_users", "active_users", "rate"],
        needs: &["event_type", "user_id", "event_timestamp"],
    },
    ViewSpec {
        id: ViewId::TopProducts,
        name: "top_products",
        description: "the 10 products with the highest purchase revenue (sum of price of purchase events), ties broken by product name",
        key: &["product"],
        value: &["rank", "revenue"],
        needs: &["event_type", "product", "price"],
    },
    ViewSpec {
        id: ViewId::EventsBySource,
        name: "events_by_source",
        description: "number of valid events per source (null when absent) and event_type",
        key: &["source", "event_type"],
        value: &["count"],
        needs: &["event_type", "source"],
    },
    ViewSpec {
        id: ViewId::EventsByCountry,
        name: "events_by_country",
        description: "number of valid events per event_type and country (null when absent)",
        key: &["event_type", "country"],
        value: &["count"],
        needs: &["event_type", "country"],
    },
    ViewSpec {
        id: ViewId::RevenueByProduct,
        name: "revenue_by_product",
        description: "sum of price and number of purchase events that have a price, per product",
        key: &["product"],
        value: &["revenue", "orders"],
        needs: &["event_type", "product", "price"],
    },
    ViewSpec {
        id: ViewId::DeadLettersByReason,
        name: "dead_letters_by_reason",
        description: "number of dead letters per reason code",
        key: &["reason"],
        value: &["count"],
        needs: &[],
    },
];

impl ViewId {
    /// The view's spec.
    pub fn spec(self) -> &'static ViewSpec {
        &VIEWS[self as usize]
    }

    /// The view called `name`.
    pub fn from_name(name: &str) -> Option<ViewId> {
        VIEWS.iter().find(|v| v.name == name).map(|v| v.id)
    }

    /// Every view.
    pub fn all() -> Vec<ViewId> {
        VIEWS.iter().map(|v| v.id).collect()
    }
}

/// A view's columns: names and type names.
pub type Columns = Vec<(String, &'static str)>;

/// Every view a run can hold, by index (the first field of a [`ViewRow`]): the built-in views
/// first, in [`VIEWS`] order, then the SQL views of the config.
#[derive(Debug, Default)]
pub struct Catalog {
    sql: Vec<sql::SqlView>,
    custom: custom::Registry,
}

impl Catalog {
    /// The built-in views, the `sql` views and the `custom` (Rust) views.
    pub fn new(sql: Vec<sql::SqlView>, custom: custom::Registry) -> Self {
        Catalog { sql, custom }
    }

    /// How many views there are.
    pub fn len(&self) -> usize {
        VIEWS.len() + self.sql.len() + self.custom.views().len()
    }

    /// The index of the Rust view `i` of the registry.
    pub fn custom_index(&self, i: usize) -> usize {
        VIEWS.len() + self.sql.len() + i
    }

    /// The Rust view at index `view`, if it is one.
    pub fn custom(&self, view: usize) -> Option<&Arc<dyn custom::View>> {
        view.checked_sub(VIEWS.len() + self.sql.len())
            .and_then(|i| self.custom.views().get(i))
    }

    /// Whether there are none (never: the built-ins are always there).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The SQL views.
    pub fn sql_views(&self) -> &[sql::SqlView] {
        &self.sql
    }

    /// The index of the SQL view `i` of [`Catalog::sql_views`].
    pub fn sql_index(&self, i: usize) -> usize {
        VIEWS.len() + i
    }

    /// The SQL view at index `view`, if it is one.
    pub fn sql(&self, view: usize) -> Option<&sql::SqlView> {
        view.checked_sub(VIEWS.len()).and_then(|i| self.sql.get(i))
    }

    /// The name of view `view`.
    pub fn name(&self, view: usize) -> &str {
        match (self.sql(view), self.custom(view)) {
            (Some(v), _) => &v.name,
            (_, Some(v)) => v.name(),
            _ => VIEWS[view].name,
        }
    }

    /// What view `view` means.
    pub fn description(&self, view: usize) -> &str {
        match (self.sql(view), self.custom(view)) {
            (Some(v), _) => &v.description,
            (_, Some(v)) => v.description(),
            _ => VIEWS[view].description,
        }
    }

    /// The view called `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        (0..self.len()).find(|&i| self.name(i) == name)
    }

    /// The names and types of view `view`'s key columns and value columns (a built-in view's
    /// types are not named: `""`).
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
            None => {
                let untyped = |names: Vec<String>| names.into_iter().map(|n| (n, "")).collect();
                match self.custom(view) {
                    Some(v) => (untyped(v.key()), untyped(v.value())),
                    None => {
                        let spec = &VIEWS[view];
                        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect();
                        (untyped(names(spec.key)), untyped(names(spec.value)))
                    }
                }
            }
        }
    }
}

/// One field of a view row.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Datum {
    /// Absent.
    Null,
    /// An integer.
    Int(i64),
    /// Money in cents, shown as a decimal string with two places.
    Money(i64),
    /// An interned string.
    Sym(Sym),
    /// A string.
    Text(String),
    /// A UTC day, shown as `YYYY-MM-DD`.
    Day(i32),
    /// A UTC minute, shown as `YYYY-MM-DDTHH:MM`.
    Minute(i64),
    /// A ratio `numerator / denominator`, shown as a number.
    Ratio(i64, i64),
    /// The average of `count` amounts totalling `sum` cents, shown as money.
    Average(i64, i64),
    /// A float.
    Float(Float),
    /// `true` or `false`.
    Bool(bool),
    /// An instant (microseconds since the Unix epoch), shown as RFC 3339 UTC.
    Timestamp(i64),
}

/// A float that orders, compares and hashes by its bits' total order, so that it can be part
/// of a key.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Float(pub f64);

impl PartialEq for Float {
    fn eq(&self, other: &Self) -> bool {
        self.0.total_cmp(&other.0).is_eq()
    }
}

impl Eq for Float {}

impl PartialOrd for Float {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Float {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

impl std::hash::Hash for Float {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.to_bits().hash(state);
    }
}

impl Datum {
    fn sym(s: Option<Sym>) -> Datum {
        s.map_or(Datum::Null, Datum::Sym)
    }

    /// The datum as plain JSON.
    pub fn to_json(&self, symbols: &Symbols) -> Json {
        match self {
            Datum::Null => Json::Null,
            Datum::Int(n) => json!(n),
            Datum::Money(c) => json!(format_cents(*c)),
            Datum::Sym(s) => json!(&*symbols.resolve(*s)),
            Datum::Text(t) => json!(t),
            Datum::Day(d) => json!(format_day(*d)),
            Datum::Minute(m) => json!(format_minute(*m)),
            Datum::Ratio(n, d) => json!(if *d == 0 { 0.0 } else { *n as f64 / *d as f64 }),
            Datum::Average(s, c) => json!(format_average(*s, *c)),
            Datum::Float(f) => json!(f.0),
            Datum::Bool(b) => json!(b),
            Datum::Timestamp(t) => json!(format_rfc3339(*t)),
        }
    }
}

/// A change to one row of one view: (view, key, value).
pub type ViewRow = (u8, Vec<Datum>, Vec<Datum>);

fn row(view: ViewId, key: Vec<Datum>, value: Vec<Datum>) -> ViewRow {
    (view as u8, key, value)
}

/// The key of a row of a view that counts or sums: all of them are kept in one aggregation, fed
/// by one pass over the events, so that an event is read once for them all, not once per view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
enum Tally {
    EventsByType(Sym),
    EventsPerMinute(i64, Sym),
    RevenueByCountry(Option<Sym>),
    AvgPriceByType(Sym),
    RevenueByProduct(Sym),
    EventsBySource(Option<Sym>, Sym),
    EventsByCountry(Sym, Option<Sym>),
}

/// The views made from tallies (`top_products` ranks the `revenue_by_product` tallies).
const TALLIED: [ViewId; 8] = [
    ViewId::EventsByType,
    ViewId::EventsPerMinute,
    ViewId::RevenueByCountry,
    ViewId::AvgPriceByType,
    ViewId::RevenueByProduct,
    ViewId::TopProducts,
    ViewId::EventsBySource,
    ViewId::EventsByCountry,
];

impl std::hash::Hash for Tally {
    /// One word per tally instead of one per field and variant tag: the presum tables hash a
    /// tally for every fine key rolled up (and for every event when the user views are off).
    /// Equal tallies give equal words.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let sym = |s: Option<Sym>| s.map_or(0, Sym::get);
        let (tag, a, b): (u64, u64, u64) = match *self {
            Tally::EventsByType(t) => (1, t.get(), 0),
            Tally::EventsPerMinute(m, t) => (2, m as u64, t.get()),
            Tally::RevenueByCountry(c) => (3, sym(c), 0),
            Tally::AvgPriceByType(t) => (4, t.get(), 0),
            Tally::RevenueByProduct(p) => (5, p.get(), 0),
            Tally::EventsBySource(s, t) => (6, sym(s), t.get()),
            Tally::EventsByCountry(t, c) => (7, t.get(), sym(c)),
        };
        state.write_u64(a.rotate_left(5) ^ b.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ tag);
    }
}

/// The enabled views, as a set.
#[derive(Clone, Copy, Debug)]
struct Enabled(u32);

impl Enabled {
    fn of(views: &[ViewId]) -> Self {
        Enabled(views.iter().fold(0, |set, v| set | 1 << *v as u32))
    }

    fn has(self, view: ViewId) -> bool {
        self.0 & 1 << view as u32 != 0
    }
}

/// What an event adds to the tallies, by keys that determine all of them: its type and minute
/// for the per-minute counts; its type, source and country for the other counts; its type,
/// country and product with a price for the sums. Summed per epoch by these keys first, an
/// event costs two or three additions instead of one per tally; each fine key's totals then
/// roll up into the tallies ([`Tallied::rollup`]), a few thousand keys per epoch instead of an
/// event each. The minute is kept apart from the country and source: together their keys
/// multiply (14,000-18,000 per worker and epoch in `lambdaflow bench`, whose epochs span hours
/// of event time), apart they are a few per minute and under a hundred, and the same few recur
/// from one event to the next, where the presum's cache of recent keys finds them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fine {
    ByMinute {
        event_type: Sym,
        minute: i64,
    },
    ByPlace {
        event_type: Sym,
        source: Option<Sym>,
        country: Option<Sym>,
    },
    Priced {
        event_type: Sym,
        country: Option<Sym>,
        product: Option<Sym>,
    },
}

impl std::hash::Hash for Fine {
    /// One word, as for [`Tally`]: equal keys give equal words.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let sym = |s: Option<Sym>| s.map_or(0, Sym::get);
        let word = match *self {
            Fine::ByMinute { event_type, minute } => {
                (minute as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ event_type.get()
            }
            Fine::ByPlace {
                event_type,
                source,
                country,
            } => {
                event_type.get().rotate_left(21)
                    ^ sym(source).rotate_left(42)
                    ^ sym(country).wrapping_mul(0x9e37_79b9_7f4a_7c15)
            }
            Fine::Priced {
                event_type,
                country,
                product,
            } => {
                !(event_type.get().rotate_left(21)
                    ^ sym(country).rotate_left(42)
                    ^ sym(product).wrapping_mul(0x9e37_79b9_7f4a_7c15))
            }
        };
        state.write_u64(word);
    }
}

/// The views an event's fine keys feed.
#[derive(Clone, Copy, Debug)]
struct Tallied {
    on: Enabled,
    /// Whether the per-minute counts are on (`Fine::ByMinute` keys are needed).
    minutes: bool,
    /// Whether any other counting view is on (`Fine::ByPlace` keys are needed).
    places: bool,
    /// Whether any summing view is on (`Fine::Priced` keys are needed).
    sums: bool,
    purchase: Sym,
}

impl Tallied {
    fn new(on: Enabled, purchase: Sym) -> Self {
        let any = |views: &[ViewId]| views.iter().any(|v| on.has(*v));
        Tallied {
            on,
            minutes: on.has(ViewId::EventsPerMinute),
            places: any(&[
                ViewId::EventsByType,
                ViewId::EventsBySource,
                ViewId::EventsByCountry,
            ]),
            sums: any(&[
                ViewId::RevenueByCountry,
                ViewId::AvgPriceByType,
                ViewId::RevenueByProduct,
                ViewId::TopProducts,
            ]),
            purchase,
        }
    }

    /// An event's fine keys, with (amount, count) each: counting views count in the amount.
    fn fine(self, e: &Event) -> impl Iterator<Item = (Fine, (isize, isize))> + use<> {
        let by_minute = self.minutes.then(|| {
            let key = Fine::ByMinute {
                event_type: e.event_type,
                minute: utc_minute(e.at),
            };
            (key, (1, 0))
        });
        let by_place = self.places.then_some((
            Fine::ByPlace {
                event_type: e.event_type,
                source: e.source,
                country: e.country,
            },
            (1, 0),
        ));
        let priced = e.price.filter(|_| self.sums).map(|price| {
            let key = Fine::Priced {
                event_type: e.event_type,
                country: e.country,
                product: e.product,
            };
            (key, (price as isize, 1))
        });
        // Options chained, not an array of them flattened: a smaller iterator, with fewer
        // branches per event.
        by_minute.into_iter().chain(by_place).chain(priced)
    }

    /// The tallies of the enabled views that a fine key's totals add to.
    fn rollup(
        self,
        fine: Fine,
        totals: (isize, isize),
    ) -> impl Iterator<Item = (Tally, (isize, isize))> {
        let on = |view| self.on.has(view);
        let by_product = on(ViewId::RevenueByProduct) || on(ViewId::TopProducts);
        let tallies = match fine {
            Fine::ByMinute {
                event_type: t,
                minute,
            } => [Some(Tally::EventsPerMinute(minute, t)), None, None],
            Fine::ByPlace {
                event_type: t,
                source,
                country,
            } => [
                on(ViewId::EventsByType).then_some(Tally::EventsByType(t)),
                on(ViewId::EventsBySource).then_some(Tally::EventsBySource(source, t)),
                on(ViewId::EventsByCountry).then_some(Tally::EventsByCountry(t, country)),
            ],
            Fine::Priced {
                event_type: t,
                country,
                product,
            } => {
                let purchase = t == self.purchase;
                [
                    on(ViewId::AvgPriceByType).then_some(Tally::AvgPriceByType(t)),
                    (purchase && on(ViewId::RevenueByCountry))
                        .then_some(Tally::RevenueByCountry(country)),
                    // The count keeps a product whose purchases sum to zero in the ranking.
                    product
                        .filter(|_| purchase && by_product)
                        .map(Tally::RevenueByProduct),
                ]
            }
        };
        tallies
            .into_iter()
            .flatten()
            .map(move |tally| (tally, totals))
    }

    /// An event's tallies one by one: its fine keys rolled up.
    fn tallies(self, e: &Event) -> impl Iterator<Item = (Tally, (isize, isize))> + use<> {
        self.fine(e)
            .flat_map(move |(fine, totals)| self.rollup(fine, totals))
    }
}

/// The row of a tally and its totals, if its view is enabled.
fn tally_row(tally: Tally, (amount, count): (isize, isize), on: Enabled) -> Option<ViewRow> {
    let (amount, count) = (amount as i64, count as i64);
    let (view, key, value) = match tally {
        Tally::EventsByType(t) => (
            ViewId::EventsByType,
            vec![Datum::Sym(t)],
            vec![Datum::Int(amount)],
        ),
        Tally::EventsPerMinute(m, t) => (
            ViewId::EventsPerMinute,
            vec![Datum::Minute(m), Datum::Sym(t)],
            vec![Datum::Int(amount)],
        ),
        Tally::RevenueByCountry(c) => (
            ViewId::RevenueByCountry,
            vec![Datum::sym(c)],
            vec![Datum::Money(amount), Datum::Int(count)],
        ),
        Tally::AvgPriceByType(t) => (
            ViewId::AvgPriceByType,
            vec![Datum::Sym(t)],
            vec![
                Datum::Average(amount, count),
                Datum::Money(amount),
                Datum::Int(count),
            ],
        ),
        Tally::RevenueByProduct(p) => (
            ViewId::RevenueByProduct,
            vec![Datum::Sym(p)],
            vec![Datum::Money(amount), Datum::Int(count)],
        ),
        Tally::EventsBySource(s, t) => (
            ViewId::EventsBySource,
            vec![Datum::sym(s), Datum::Sym(t)],
            vec![Datum::Int(amount)],
        ),
        Tally::EventsByCountry(t, c) => (
            ViewId::EventsByCountry,
            vec![Datum::Sym(t), Datum::sym(c)],
            vec![Datum::Int(amount)],
        ),
    };
    on.has(view).then(|| row(view, key, value))
}

/// The groups of the distinct user counts: active users and purchasing users, per UTC day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
enum Users {
    Active(i32),
    Purchasing(i32),
}

/// Builds the enabled views over `events` and `dead` and returns all their changes as one
/// collection of [`ViewRow`]s.
///
/// One operator reads the events: it sums every counting and summing view's keys (a `Tally`
/// each) and collects the (day, user) pairs, active and purchasing, whose distinct counts
/// the user views are.
pub fn build<'s>(
    events: VecCollection<'s, u64, Event>,
    dead: VecCollection<'s, u64, DeadLetter>,
    enabled: &[ViewId],
    symbols: &Arc<Symbols>,
) -> VecCollection<'s, u64, ViewRow> {
    let purchase = symbols.intern("purchase");
    let on = Enabled::of(enabled);
    let scope = events.inner.scope();
    let mut outputs = Vec::new();

    let conversion = on.has(ViewId::ConversionRate);
    let tally = Tallied::new(on, purchase);
    let pairs = move |e: &Event| {
        let day = utc_day(e.at);
        let purchasing = conversion && e.event_type == purchase;
        std::iter::once((Users::Active(day), e.user))
            .chain(purchasing.then_some((Users::Purchasing(day), e.user)))
    };
    // One operator reads the events when both kinds of view are on.
    let (tallied, users) = match (
        TALLIED.into_iter().any(|v| on.has(v)),
        on.has(ViewId::DailyActiveUsers) || conversion,
    ) {
        (true, true) => {
            let (tallied, users) = events.sum_by_rollup_and_distinct_count_named(
                "views",
                move |e: &Event| tally.fine(e),
                move |fine, totals| tally.rollup(fine, totals),
                pairs,
            );
            (Some(tallied), Some(users))
        }
        (true, false) => (
            Some(events.sum_by_named("tallies", move |e: Event| tally.tallies(&e))),
            None,
        ),
        (false, true) => (
            None,
            Some(events.distinct_count_named("users", move |e: Event| pairs(&e))),
        ),
        (false, false) => (None, None),
    };
    if let Some(tallied) = &tallied {
        outputs.push(
            tallied
                .clone()
                .flat_map(move |(tally, totals)| tally_row(tally, totals, on)),
        );
    }
    if let Some(tallied) = tallied
        && on.has(ViewId::TopProducts)
    {
        let names = symbols.clone();
        outputs.push(
            tallied
                .flat_map(move |(tally, (revenue, _orders))| match tally {
                    Tally::RevenueByProduct(p) => {
                        Some(((), (Reverse(revenue), names.resolve(p).to_string(), p)))
                    }
                    _ => None,
                })
                .top_k_named("top_products", 10)
                .map(|((), (rank, (Reverse(revenue), _name, p)))| {
                    row(
                        ViewId::TopProducts,
                        vec![Datum::Sym(p)],
                        vec![Datum::Int(rank as i64), Datum::Money(revenue as i64)],
                    )
                }),
        );
    }

    if let Some(users) = users {
        if on.has(ViewId::DailyActiveUsers) {
            outputs.push(users.clone().flat_map(|(group, n)| match group {
                Users::Active(d) => Some(row(
                    ViewId::DailyActiveUsers,
                    vec![Datum::Day(d)],
                    vec![Datum::Int(n as i64)],
                )),
                Users::Purchasing(_) => None,
            }));
        }
        if conversion {
            outputs.push(
                users
                    .sum_by_named("conversion_rate", |(group, n): (Users, isize)| {
                        Some(match group {
                            Users::Active(d) => (d, (n, 0isize)),
                            Users::Purchasing(d) => (d, (0isize, n)),
                        })
                    })
                    .map(|(d, (active, purchasing))| {
                        let (a, p) = (active as i64, purchasing as i64);
                        row(
                            ViewId::ConversionRate,
                            vec![Datum::Day(d)],
                            vec![Datum::Int(p), Datum::Int(a), Datum::Ratio(p, a)],
                        )
                    }),
            );
        }
    }
    if on.has(ViewId::DeadLettersByReason) {
        outputs.push(
            dead.count_by_named("dead_letters_by_reason", |d: DeadLetter| Some(d.reason))
                .map(|(r, n)| {
                    row(
                        ViewId::DeadLettersByReason,
                        vec![Datum::Text(r.code().to_owned())],
                        vec![Datum::Int(n as i64)],
                    )
                }),
        );
    }
    differential_dataflow::collection::concatenate(scope, outputs)
}

/// The views as of one closed epoch.
#[derive(Clone, Debug, Default)]
pub struct ViewState {
    /// The last closed epoch the views reflect; `None` before the first one closes.
    pub as_of: Option<u64>,
    /// Rows per view, by [`ViewId`] index.
    pub tables: Vec<ViewTable>,
}

/// A view's rows by key: a persistent map, so that a snapshot is a copy of a few pointers and
/// applying an epoch's changes afterwards copies only the paths it changes. Copying each view's
/// `BTreeMap` had held worker 0, and the epoch it was applying, for 9 ms once the views held a
/// few tens of thousands of rows (open loop, 11 s into `lambdaflow bench`), and that grows with
/// the views.
pub type ViewTable = imbl::OrdMap<Vec<Datum>, Vec<Datum>>;

/// The views readers see: updated by worker 0 once per closed epoch, read by anyone.
#[derive(Debug)]
pub struct ViewStore {
    symbols: Arc<Symbols>,
    catalog: Arc<Catalog>,
    /// The views kept, by catalog index.
    enabled: Vec<usize>,
    state: RwLock<ViewState>,
    snapshots: std::sync::OnceLock<Snapshots>,
    /// The thread that writes snapshots, started with the first one, and when it was asked last.
    writer: Mutex<Option<SnapshotWriter>>,
}

/// Snapshots at commit boundaries are at least this far apart (the last one is always written).
const SNAPSHOT_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Snapshots are taken under the lock on worker 0 (a copy of each view's root) and written as
/// JSON on their own thread.
#[derive(Debug)]
struct SnapshotWriter {
    states: std::sync::mpsc::Sender<ViewState>,
    thread: std::thread::JoinHandle<()>,
    last: std::time::Instant,
}

/// Where the store writes itself at commit boundaries (so that `verify` can compare the live
/// views with the lake), and how often.
#[derive(Debug, Clone)]
pub struct Snapshots {
    /// The directory of `views-EPOCH.json` files.
    pub dir: std::path::PathBuf,
    /// A snapshot at every epoch `e` with `(e + 1) % every == 0`.
    pub every: u64,
    /// How many to keep.
    pub keep: usize,
}

impl ViewStore {
    /// An empty store for the `enabled` built-in views.
    pub fn new(symbols: Arc<Symbols>, enabled: Vec<ViewId>) -> Self {
        Self::with_sql(symbols, enabled, Vec::new())
    }

    /// An empty store for the `enabled` built-in views and the `sql` views.
    pub fn with_sql(symbols: Arc<Symbols>, enabled: Vec<ViewId>, sql: Vec<sql::SqlView>) -> Self {
        Self::with_views(symbols, enabled, sql, custom::Registry::default())
    }

    /// An empty store for the `enabled` built-in views, the `sql` views and the `custom` (Rust)
    /// views.
    pub fn with_views(
        symbols: Arc<Symbols>,
        enabled: Vec<ViewId>,
        sql: Vec<sql::SqlView>,
        custom: custom::Registry,
    ) -> Self {
        let rust = custom.views().len();
        let catalog = Arc::new(Catalog::new(sql, custom));
        let mut enabled: Vec<usize> = enabled.into_iter().map(|v| v as usize).collect();
        enabled.extend((0..catalog.sql_views().len()).map(|i| catalog.sql_index(i)));
        enabled.extend((0..rust).map(|i| catalog.custom_index(i)));
        let state = ViewState {
            as_of: None,
            tables: vec![ViewTable::new(); catalog.len()],
        };
        ViewStore {
            symbols,
            catalog,
            enabled,
            state: RwLock::new(state),
            snapshots: std::sync::OnceLock::new(),
            writer: Mutex::new(None),
        }
    }

    /// Writes a snapshot at every commit boundary from now on.
    pub fn set_snapshots(&self, snapshots: Snapshots) {
        let _ = self.snapshots.set(snapshots);
    }

    /// The commit-boundary interval of snapshots, if they are on.
    fn snapshot_every(&self) -> Option<u64> {
        self.snapshots.get().map(|s| s.every)
    }

    /// Snapshots the views as of their current epoch: they are copied now and written to the
    /// snapshot directory on the snapshot thread (atomically, then the oldest beyond the limit
    /// are dropped). Unless `last`, nothing is done if the previous snapshot is less than 10 s
    /// old: the views grow with the data, and `verify` needs one snapshot, not every one.
    /// Failing to write one is logged, never fatal.
    pub fn write_snapshot(&self, last: bool) {
        let Some(snapshots) = self.snapshots.get() else {
            return;
        };
        if !last
            && let Some(w) = self
                .writer
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_ref()
            && w.last.elapsed() < SNAPSHOT_EVERY
        {
            return;
        }
        // Every table's root; the snapshot file holds the enabled views only.
        let state = self.read(ViewState::clone);
        if state.as_of.is_none() {
            return;
        }
        let mut writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let writer = writer.get_or_insert_with(|| {
            let (states, receive) = std::sync::mpsc::channel::<ViewState>();
            let (symbols, enabled) = (self.symbols.clone(), self.enabled.clone());
            let catalog = self.catalog.clone();
            let snapshots = snapshots.clone();
            let thread = std::thread::Builder::new()
                .name("view-snapshots".into())
                .spawn(move || {
                    // Every one, in order: `verify` needs one at an epoch the lake committed.
                    while let Ok(state) = receive.recv() {
                        write_snapshot_file(&snapshots, &symbols, &catalog, &enabled, &state);
                    }
                })
                .expect("spawning the snapshot thread");
            SnapshotWriter {
                states,
                thread,
                last: std::time::Instant::now(),
            }
        });
        writer.last = std::time::Instant::now();
        let _ = writer.states.send(state);
    }

    /// Waits until every snapshot asked for is on disk.
    pub fn finish_snapshots(&self) {
        let writer = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(writer) = writer {
            drop(writer.states);
            let _ = writer.thread.join();
        }
    }

    /// Applies the consolidated changes of every epoch up to and including `epoch`.
    fn apply(&self, epoch: u64, changes: &mut Vec<(ViewRow, isize)>) {
        differential_dataflow::consolidation::consolidate(changes);
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        // Retractions first, so that a key's new value replaces its old one.
        for ((view, key, _), diff) in changes.iter() {
            if *diff < 0 {
                state.tables[*view as usize].remove(key);
            }
        }
        for ((view, key, value), diff) in changes.drain(..) {
            if diff > 0 {
                if diff != 1 {
                    tracing::warn!(view, diff, "view row with multiplicity other than one");
                }
                state.tables[view as usize].insert(key, value);
            }
        }
        state.as_of = Some(state.as_of.map_or(epoch, |e| e.max(epoch)));
    }

    /// Marks every epoch up to `epoch` as applied (they had no changes, or the run is over).
    pub(crate) fn close_through(&self, epoch: u64) {
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        state.as_of = Some(state.as_of.map_or(epoch, |e| e.max(epoch)));
    }

    /// The views this store keeps.
    pub fn enabled(&self) -> &[usize] {
        &self.enabled
    }

    /// Every view a row can belong to.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// The kept view called `name`.
    pub fn view_named(&self, name: &str) -> Option<usize> {
        self.catalog
            .index_of(name)
            .filter(|v| self.enabled.contains(v))
    }

    /// Reads the state under the lock.
    pub fn read<R>(&self, f: impl FnOnce(&ViewState) -> R) -> R {
        f(&self.state.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// The symbol table behind the `Sym` data.
    pub fn symbols(&self) -> &Arc<Symbols> {
        &self.symbols
    }

    /// One view's rows as `{"key": ..., "value": ...}` JSON objects, in the view's order (rank
    /// for `top_products`, key otherwise).
    pub fn rows_json(&self, state: &ViewState, view: usize) -> Vec<Json> {
        rows_json(&self.symbols, &self.catalog, state, view)
    }

    /// Every enabled view, as `{"as_of_epoch": N, "views": {"name": [rows]}}`.
    pub fn to_json(&self) -> Json {
        self.read(|state| state_json(&self.symbols, &self.catalog, &self.enabled, state))
    }
}

/// One row as `{"key": ..., "value": ...}`. A built-in view's key or value with one field is
/// that field's plain value, an object of named fields otherwise; a SQL view's are always
/// objects of its columns by name.
fn row_json(
    symbols: &Symbols,
    catalog: &Catalog,
    view: usize,
    key: &[Datum],
    value: &[Datum],
) -> Json {
    let object = |names: &mut dyn Iterator<Item = &str>, data: &[Datum]| -> Json {
        Json::Object(
            names
                .zip(data)
                .map(|(n, d)| (n.to_string(), d.to_json(symbols)))
                .collect(),
        )
    };
    if let Some(v) = catalog.sql(view) {
        let names = |key: bool| {
            v.plan
                .columns
                .iter()
                .filter(move |c| c.key == key)
                .map(|c| c.name.as_str())
        };
        return json!({"key": object(&mut names(true), key), "value": object(&mut names(false), value)});
    }
    if let Some(v) = catalog.custom(view) {
        let (k, v) = (v.key(), v.value());
        return json!({
            "key": object(&mut k.iter().map(String::as_str), key),
            "value": object(&mut v.iter().map(String::as_str), value),
        });
    }
    let spec = &VIEWS[view];
    let fields = |names: &[&str], data: &[Datum]| -> Json {
        if names.len() == 1 {
            data[0].to_json(symbols)
        } else {
            object(&mut names.iter().copied(), data)
        }
    };
    json!({"key": fields(spec.key, key), "value": fields(spec.value, value)})
}

fn rows_json(symbols: &Symbols, catalog: &Catalog, state: &ViewState, view: usize) -> Vec<Json> {
    let mut rows: Vec<Json> = state.tables[view]
        .iter()
        .map(|(k, v)| row_json(symbols, catalog, view, k, v))
        .collect();
    if view == ViewId::TopProducts as usize {
        rows.sort_by_key(|row| row["value"]["rank"].as_i64());
    } else {
        // The key's text once per row, not once per comparison.
        rows.sort_by_cached_key(|row| row["key"].to_string());
    }
    rows
}

fn state_json(symbols: &Symbols, catalog: &Catalog, enabled: &[usize], state: &ViewState) -> Json {
    let views: Map<String, Json> = enabled
        .iter()
        .map(|&v| {
            (
                catalog.name(v).to_owned(),
                Json::Array(rows_json(symbols, catalog, state, v)),
            )
        })
        .collect();
    json!({"as_of_epoch": state.as_of, "views": views})
}

/// Writes `state` as [`ViewStore::to_json`] would give it, one row at a time (rows in key
/// order): a snapshot grows with the views, and a whole JSON tree of them cost several times
/// the views' own memory.
fn write_state_json(
    symbols: &Symbols,
    catalog: &Catalog,
    enabled: &[usize],
    state: &ViewState,
    out: &mut impl std::io::Write,
) -> std::io::Result<()> {
    write!(out, "{{\"as_of_epoch\":{},\"views\":{{", json!(state.as_of))?;
    for (i, &view) in enabled.iter().enumerate() {
        let comma = if i == 0 { "" } else { "," };
        write!(out, "{comma}{}:[", json!(catalog.name(view)))?;
        for (j, (key, value)) in state.tables[view].iter().enumerate() {
            if j > 0 {
                out.write_all(b",")?;
            }
            serde_json::to_writer(&mut *out, &row_json(symbols, catalog, view, key, value))?;
        }
        out.write_all(b"]")?;
    }
    out.write_all(b"}}")
}

fn write_snapshot_file(
    snapshots: &Snapshots,
    symbols: &Symbols,
    catalog: &Catalog,
    enabled: &[usize],
    state: &ViewState,
) {
    let Some(epoch) = state.as_of else {
        return;
    };
    let result = (|| -> std::io::Result<()> {
        std::fs::create_dir_all(&snapshots.dir)?;
        let path = snapshots.dir.join(format!("views-{epoch}.json"));
        let tmp = snapshots.dir.join(format!(".views-{epoch}.json.tmp"));
        let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        write_state_json(symbols, catalog, enabled, state, &mut out)?;
        out.into_inner().map_err(|e| e.into_error())?;
        std::fs::rename(&tmp, &path)?;
        let all = crate::lake::snapshots_in(&snapshots.dir);
        let excess = all.len().saturating_sub(snapshots.keep.max(1));
        for (_, old) in all.into_iter().take(excess) {
            std::fs::remove_file(old)?;
        }
        Ok(())
    })();
    // Warn once: a full disk would otherwise repeat it at every boundary.
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if let Err(e) = result
        && !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed)
    {
        tracing::warn!(
            "writing a view snapshot to {}: {e}",
            snapshots.dir.display()
        );
    }
}

/// Gathers every view change on worker 0 and applies it to `store` once its epoch has closed.
/// Only the worker with `index == 0` writes; the others' share of the operator sees no data.
pub fn publish(rows: VecCollection<'_, u64, ViewRow>, store: Arc<ViewStore>, index: usize) {
    // Changes of epochs that are still open, by epoch.
    let mut pending: BTreeMap<u64, Vec<(ViewRow, isize)>> = BTreeMap::new();
    // Whether the views changed since the last snapshot.
    let mut changed = false;
    rows.inner.sink(
        Exchange::new(|_| 0),
        "PublishViews",
        move |(input, frontier)| {
            input.for_each(|_cap, data| {
                for (row, time, diff) in data.drain(..) {
                    pending.entry(time).or_default().push((row, diff));
                }
            });
            if index != 0 {
                return;
            }
            // Every epoch before the frontier is closed, with or without changes.
            let through = frontier
                .frontier()
                .first()
                .map(|f| f.saturating_sub(1))
                .filter(|_| !frontier.less_equal(&0));
            let through = match (through, frontier.is_empty()) {
                (Some(t), _) => t,
                (None, true) => pending.last_key_value().map_or(0, |(e, _)| *e),
                (None, false) => return,
            };
            // Apply in order, stopping at each commit boundary to snapshot the views as of it.
            let every = store.snapshot_every();
            // The last commit boundary before epoch `e`.
            let boundary_before =
                |e: u64| every.and_then(|k| (e / k.max(1) * k.max(1)).checked_sub(1));
            let mut snapped = store.read(|s| s.as_of);
            let mut closed = Vec::new();
            while let Some(entry) = pending.first_entry() {
                if *entry.key() > through {
                    break;
                }
                let (epoch, mut changes) = entry.remove_entry();
                if let Some(b) = boundary_before(epoch)
                    && snapped.is_none_or(|a| a < b)
                {
                    if changed {
                        store.apply(b, &mut closed);
                        store.write_snapshot(false);
                        changed = false;
                    }
                    snapped = Some(b);
                }
                changed |= !changes.is_empty();
                closed.append(&mut changes);
            }
            if let Some(b) = boundary_before(through + 1)
                && snapped.is_none_or(|a| a < b)
                && changed
            {
                store.apply(b, &mut closed);
                store.write_snapshot(false);
                changed = false;
            }
            store.apply(through, &mut closed);
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_written_row_by_row_holds_what_to_json_gives() {
        let symbols = Arc::new(Symbols::default());
        let enabled = vec![
            ViewId::EventsPerMinute,
            ViewId::TopProducts,
            ViewId::EventsByType,
        ];
        let store = ViewStore::new(symbols.clone(), enabled.clone());
        let (view, page) = (
            symbols.intern("page_view"),
            symbols.intern("caf\u{e9} \"x\""),
        );
        let mut changes = vec![
            (
                row(
                    ViewId::EventsPerMinute,
                    vec![Datum::Minute(29_000_000), Datum::Sym(view)],
                    vec![Datum::Int(3)],
                ),
                1,
            ),
            (
                row(
                    ViewId::TopProducts,
                    vec![Datum::Sym(page)],
                    vec![Datum::Int(1), Datum::Money(1999)],
                ),
                1,
            ),
            (
                row(
                    ViewId::EventsByType,
                    vec![Datum::Sym(view)],
                    vec![Datum::Int(7)],
                ),
                1,
            ),
            (
                row(
                    ViewId::EventsByType,
                    vec![Datum::Sym(page)],
                    vec![Datum::Int(2)],
                ),
                1,
            ),
        ];
        store.apply(4, &mut changes);
        let mut written = Vec::new();
        store
            .read(|state| {
                write_state_json(
                    &symbols,
                    store.catalog(),
                    store.enabled(),
                    state,
                    &mut written,
                )
            })
            .unwrap();
        let mut written: Json = serde_json::from_slice(&written).unwrap();
        let mut expected = store.to_json();
        // Row order is the store's key order in the file and the key's text in the API.
        for json in [&mut written, &mut expected] {
            for rows in json["views"].as_object_mut().unwrap().values_mut() {
                rows.as_array_mut().unwrap().sort_by_key(|r| r.to_string());
            }
        }
        assert_eq!(written, expected);
        assert_eq!(written["as_of_epoch"], 4);
        assert_eq!(
            written["views"]["events_by_type"].as_array().unwrap().len(),
            2
        );
    }
}

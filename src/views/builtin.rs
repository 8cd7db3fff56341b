//! The eleven built-in e-commerce views: their specs and their hand-fused dataflow.

use std::cmp::Reverse;
use std::sync::Arc;

use differential_dataflow::VecCollection;
use lambdaflow_operators::{DistinctCount, SumBy, SumByAndDistinctCount, TopK};
use serde::{Deserialize, Serialize};

use crate::event::time::{utc_day, utc_minute};
use crate::event::{DeadLetter, Event, Sym, Symbols};

use super::*;

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
    /// The key's columns: names and types (as SQL views name them: `string`, `int`, ...).
    pub key: &'static [(&'static str, &'static str)],
    /// The value's columns, likewise.
    pub value: &'static [(&'static str, &'static str)],
    /// Schema fields the view reads.
    pub needs: &'static [&'static str],
}

/// Every built-in view, in output order.
pub const VIEWS: [ViewSpec; 11] = [
    ViewSpec {
        id: ViewId::EventsByType,
        name: "events_by_type",
        description: "number of valid events per event_type",
        key: &[("event_type", "string")],
        value: &[("count", "int")],
        needs: &["event_type"],
    },
    ViewSpec {
        id: ViewId::EventsPerMinute,
        name: "events_per_minute",
        description: "number of valid events per UTC minute of event_timestamp and event_type",
        key: &[("minute", "timestamp"), ("event_type", "string")],
        value: &[("count", "int")],
        needs: &["event_type", "event_timestamp"],
    },
    ViewSpec {
        id: ViewId::RevenueByCountry,
        name: "revenue_by_country",
        description: "sum of price and number of purchase events that have a price, per country",
        key: &[("country", "string")],
        value: &[("revenue", "money"), ("orders", "int")],
        needs: &["event_type", "price", "country"],
    },
    ViewSpec {
        id: ViewId::AvgPriceByType,
        name: "avg_price_by_type",
        description: "average price (rounded half away from zero to the cent), total and count of events that have a price, per event_type",
        key: &[("event_type", "string")],
        value: &[("avg_price", "money"), ("total", "money"), ("count", "int")],
        needs: &["event_type", "price"],
    },
    ViewSpec {
        id: ViewId::DailyActiveUsers,
        name: "daily_active_users",
        description: "number of distinct user_id with at least one valid event per UTC day of event_timestamp",
        key: &[("date", "date")],
        value: &[("users", "int")],
        needs: &["user_id", "event_timestamp"],
    },
    ViewSpec {
        id: ViewId::ConversionRate,
        name: "conversion_rate",
        description: "per UTC day: distinct users with a purchase, distinct active users, and their ratio",
        key: &[("date", "date")],
        value: &[
            ("purchasing_users", "int"),
            ("active_users", "int"),
            ("rate", "float"),
        ],
        needs: &["event_type", "user_id", "event_timestamp"],
    },
    ViewSpec {
        id: ViewId::TopProducts,
        name: "top_products",
        description: "the 10 products with the highest purchase revenue (sum of price of purchase events), ties broken by product name",
        key: &[("product", "string")],
        value: &[("rank", "int"), ("revenue", "money")],
        needs: &["event_type", "product", "price"],
    },
    ViewSpec {
        id: ViewId::EventsBySource,
        name: "events_by_source",
        description: "number of valid events per source (null when absent) and event_type",
        key: &[("source", "string"), ("event_type", "string")],
        value: &[("count", "int")],
        needs: &["event_type", "source"],
    },
    ViewSpec {
        id: ViewId::EventsByCountry,
        name: "events_by_country",
        description: "number of valid events per event_type and country (null when absent)",
        key: &[("event_type", "string"), ("country", "string")],
        value: &[("count", "int")],
        needs: &["event_type", "country"],
    },
    ViewSpec {
        id: ViewId::RevenueByProduct,
        name: "revenue_by_product",
        description: "sum of price and number of purchase events that have a price, per product",
        key: &[("product", "string")],
        value: &[("revenue", "money"), ("orders", "int")],
        needs: &["event_type", "product", "price"],
    },
    ViewSpec {
        id: ViewId::DeadLettersByReason,
        name: "dead_letters_by_reason",
        description: "number of dead letters per reason code",
        key: &[("reason", "string")],
        value: &[("count", "int")],
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

pub(crate) fn row(view: ViewId, key: Vec<Datum>, value: Vec<Datum>) -> ViewRow {
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
            vec![Datum::Timestamp(m * 60_000_000), Datum::Sym(t)],
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
    known: &Known<'s>,
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
        outputs.push(top_products(tallied, symbols, known));
    }
    if let Some(users) = users {
        outputs.extend(user_rows(users, on));
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

type Tallies<'s> = VecCollection<'s, u64, (Tally, (isize, isize))>;

/// `top_products`: the ten products of most revenue, from the `revenue_by_product` tallies.
fn top_products<'s>(
    tallied: Tallies<'s>,
    symbols: &Arc<Symbols>,
    known: &Known<'s>,
) -> VecCollection<'s, u64, ViewRow> {
    let names = symbols.clone();
    // Ties are broken by name: every process must know the names.
    known
        .hold(tallied)
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
        })
}

/// `daily_active_users` and `conversion_rate`, from the distinct users per day.
fn user_rows<'s>(
    users: VecCollection<'s, u64, (Users, isize)>,
    on: Enabled,
) -> Vec<VecCollection<'s, u64, ViewRow>> {
    let mut outputs = Vec::new();
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
    if on.has(ViewId::ConversionRate) {
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
    outputs
}

//! A view written in Rust, with the whole lambdaflow command line around it.
//!
//! `sessions_per_day` counts sessions per UTC day: a user's session is a run of their events
//! with less than 30 minutes between one and the next, and it counts on the day it starts.
//! SQL cannot say that (it needs each user's events in time order), so it is a differential
//! operator written by hand: events keyed by user, a `reduce` that walks each user's sorted
//! timestamps and emits the start of every session, and a count of the starts per day. A late
//! event that falls between two sessions merges them: the `reduce` retracts the second start and
//! the count goes down by one, as differential does for any change.
//!
//! ```sh
//! cargo run --release --example custom_operator -- run --source file:events.jsonl --until-exhausted --views-out v.json
//! cargo run --release --example custom_operator -- verify
//! ```
//!
//! Every command is there (`run`, `batch`, `verify`, `lake`, `bench`, the HTTP API), and
//! `verify` and `batch` recompute `sessions_per_day` from the lake exactly as `run` computed it
//! live. With views of its own, a run keeps exactly those; list built-in views next to it in a
//! config (`[pipeline] views = ["sessions_per_day", "events_by_type"]`) to keep them too.

use std::process::ExitCode;

use lambdaflow::event::Sym;
use lambdaflow::event::time::utc_day;
use lambdaflow::views::Datum;
use lambdaflow::views::custom::{Column, Input, Output, Registry, Type, View};
use lambdaflow_operators::SumBy;

/// The inactivity that ends a session, in microseconds.
const GAP: i64 = 30 * 60 * 1_000_000;

/// Sessions per UTC day of their first event.
struct SessionsPerDay;

impl View for SessionsPerDay {
    fn name(&self) -> &str {
        "sessions_per_day"
    }

    fn description(&self) -> &str {
        "sessions (a user's events less than 30 minutes apart) per UTC day of their first event, and the users who had one"
    }

    fn key(&self) -> Vec<Column> {
        vec![Column::new("day", Type::Date)]
    }

    fn value(&self) -> Vec<Column> {
        vec![
            Column::new("sessions", Type::Int),
            Column::new("users", Type::Int),
        ]
    }

    fn build<'s>(&self, input: &Input<'s>) -> Output<'s> {
        let user = input.column("user_id").expect("the schema has user_id");
        let at = input
            .column("event_timestamp")
            .expect("the schema has event_timestamp");
        input
            .events
            .clone()
            // (user, time) of every event: the user's events meet on one worker.
            .flat_map(move |row| match (&row[user], &row[at]) {
                (Datum::Sym(u), Datum::Timestamp(t)) => Some((*u, *t)),
                _ => None,
            })
            // The start of each of a user's sessions; `times` arrive sorted, with their counts.
            .reduce_named(
                "session_starts",
                |_user: &Sym, times: &[(&i64, isize)], starts: &mut Vec<(i64, isize)>| {
                    let mut last: Option<i64> = None;
                    for (t, _) in times {
                        if last.is_none_or(|l| **t - l >= GAP) {
                            starts.push((**t, 1));
                        }
                        last = Some(**t);
                    }
                },
            )
            // Per day: sessions, and users (each user once per day) beside them in one sum.
            .flat_map(|(user, start)| Some(((utc_day(start), user), ())))
            .reduce_named(
                "sessions_per_user_day",
                |_key: &(i32, Sym), starts: &[(&(), isize)], out: &mut Vec<(isize, isize)>| {
                    out.push((starts.iter().map(|(_, n)| n).sum(), 1));
                },
            )
            .sum_by_named("sessions_per_day", |((day, _user), sessions)| {
                Some((day, (sessions, 1isize)))
            })
            .map(|(day, (sessions, users))| {
                (
                    vec![Datum::Day(day)],
                    vec![Datum::Int(sessions as i64), Datum::Int(users as i64)],
                )
            })
    }
}

fn main() -> ExitCode {
    lambdaflow::cli::main(Registry::default().with(SessionsPerDay))
}

//! `/metrics`: the run's counters, gauges and epoch latency in Prometheus' text format.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use hdrhistogram::Histogram;

use super::{App, Served};
use crate::lake::dataflow::SharedStatus;
use crate::pipeline::Stats;

/// Upper bounds of the epoch latency histogram's buckets, in seconds.
const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0,
];

/// The exposition being written.
#[derive(Default)]
struct Text(String);

impl Text {
    /// A metric family with its samples: (labels, value).
    fn metric(&mut self, name: &str, kind: &str, help: &str, samples: &[(String, f64)]) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(self.0, "{name}{labels} {value}");
        }
    }

    /// A metric family with one unlabelled sample.
    fn one(&mut self, name: &str, kind: &str, help: &str, value: f64) {
        self.metric(name, kind, help, &[(String::new(), value)]);
    }
}

pub(super) async fn metrics(State(app): State<App>) -> Response {
    let s = &app.served;
    let mut text = Text::default();
    counters(&mut text, &s.stats);
    views(&mut text, s);
    if let Some(lake) = &s.lake {
        lake_progress(&mut text, lake);
    }
    kafka_lag(&mut text, &s.stats);
    latency(
        &mut text,
        &s.stats
            .epoch_latency
            .lock()
            .unwrap_or_else(|e| e.into_inner()),
    );
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        "text/plain; version=0.0.4; charset=utf-8"
            .parse()
            .expect("a valid header"),
    );
    (headers, text.0).into_response()
}

/// Records, bytes, events and dead letters read, the epoch reached, the uptime.
fn counters(text: &mut Text, stats: &Stats) {
    let counters = [
        (
            "lambdaflow_records_in_total",
            "counter",
            "Raw records read from the sources.",
            &stats.records_in,
        ),
        (
            "lambdaflow_bytes_in_total",
            "counter",
            "Raw bytes read from the sources.",
            &stats.bytes_in,
        ),
        (
            "lambdaflow_events_total",
            "counter",
            "Records decoded into events.",
            &stats.events,
        ),
        (
            "lambdaflow_dead_letters_total",
            "counter",
            "Records that became dead letters.",
            &stats.dead_letters,
        ),
        (
            "lambdaflow_epoch",
            "gauge",
            "The highest epoch a worker has reached.",
            &stats.epoch,
        ),
    ];
    for (name, kind, help, value) in counters {
        text.one(name, kind, help, value.load(Ordering::Relaxed) as f64);
    }
}

/// The closed epoch, each view's rows, the workers and the uptime.
fn views(text: &mut Text, s: &Served) {
    let (closed, rows): (Option<u64>, Vec<(String, f64)>) = s.store.read(|state| {
        let rows = s.store.enabled().iter().map(|&v| {
            let labels = format!("{{view=\"{}\"}}", s.store.catalog().name(v));
            (labels, state.tables[v].len() as f64)
        });
        (state.as_of, rows.collect())
    });
    if let Some(closed) = closed {
        let help = "The last epoch every view has absorbed.";
        text.one("lambdaflow_closed_epoch", "gauge", help, closed as f64);
    }
    text.metric("lambdaflow_view_rows", "gauge", "Rows in each view.", &rows);
    let workers = s.workers as f64;
    text.one("lambdaflow_workers", "gauge", "Worker threads.", workers);
    let uptime = s.stats.started.elapsed().as_secs_f64();
    let help = "Seconds since the run started.";
    text.one("lambdaflow_uptime_seconds", "gauge", help, uptime);
}

/// The lake's commits, last committed epoch and version.
fn lake_progress(text: &mut Text, lake: &SharedStatus) {
    let l = lake.lock().unwrap_or_else(|e| e.into_inner());
    let help = "Lake commits made by this run.";
    text.one(
        "lambdaflow_lake_commits_total",
        "counter",
        help,
        l.commits as f64,
    );
    if let Some((epoch, version)) = l.committed {
        let help = "The last epoch committed to the lake.";
        text.one(
            "lambdaflow_lake_committed_epoch",
            "gauge",
            help,
            epoch as f64,
        );
        let help = "The events table's Delta version.";
        text.one("lambdaflow_lake_version", "gauge", help, version as f64);
    }
}

/// Messages not read yet, per Kafka partition.
fn kafka_lag(text: &mut Text, stats: &Stats) {
    let lag: Vec<(String, f64)> = stats
        .lag
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|(p, l)| {
            let labels = format!("{{partition=\"{}\"}}", p.replace(['\\', '"'], "_"));
            (labels, l.lag() as f64)
        })
        .collect();
    if !lag.is_empty() {
        let help = "Messages not read yet, per partition.";
        text.metric("lambdaflow_kafka_lag", "gauge", help, &lag);
    }
}

/// The epoch latency as a histogram, in seconds.
fn latency(text: &mut Text, h: &Histogram<u64>) {
    let out = &mut text.0;
    let name = "lambdaflow_epoch_latency_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} From a worker leaving an epoch to every view having absorbed it."
    );
    let _ = writeln!(out, "# TYPE {name} histogram");
    for bound in LATENCY_BUCKETS {
        let micros = (bound * 1e6) as u64;
        let count: u64 = h
            .iter_recorded()
            .filter(|v| v.value_iterated_to() <= micros)
            .map(|v| v.count_at_value())
            .sum();
        let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {count}");
    }
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", h.len());
    let sum: f64 = h
        .iter_recorded()
        .map(|v| v.value_iterated_to() as f64 * v.count_at_value() as f64)
        .sum::<f64>()
        / 1e6;
    let _ = writeln!(out, "{name}_sum {sum}");
    let _ = writeln!(out, "{name}_count {}", h.len());
}

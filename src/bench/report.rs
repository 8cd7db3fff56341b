//! The benchmark's report as a table for people.

use super::{BenchReport, thousands};

impl BenchReport {
    /// The report as a table for people.
    pub fn table(&self) -> String {
        let mut lines = self.run_lines();
        lines.extend(self.cost_lines());
        lines
            .into_iter()
            .map(|(label, text)| format!("  {label:<20}{text}\n"))
            .collect()
    }

    /// What ran, how fast, and its latencies: (label, text) lines.
    fn run_lines(&self) -> Vec<(&'static str, String)> {
        let mut lines = Vec::new();
        let mut line = |label, text| lines.push((label, text));
        let mode = match &self.open_loop {
            Some(open) => format!("open loop at {} events/s", thousands(open.offered_per_sec)),
            None => "closed loop".to_owned(),
        };
        let workers = match self.processes {
            1 => format!("{} worker(s)", self.workers),
            n => format!("{n} processes x {} worker(s)", self.workers / n),
        };
        line(
            "run",
            format!(
                "{mode}, {workers}, {} ms epochs, {} records ({} dead letters)",
                self.epoch_ms,
                thousands(self.records as f64),
                thousands(self.dead_letters as f64)
            ),
        );
        line(
            "machine",
            format!(
                "{}, {} CPUs, {:.1} GiB, {}",
                self.machine.cpu,
                self.machine.cpus,
                self.machine.memory_bytes as f64 / (1u64 << 30) as f64,
                self.machine.os
            ),
        );
        line(
            "throughput",
            format!(
                "{} events/s ({} per worker), {:.1} MB/s of JSON, {:.2} s, {:.2} cores busy",
                thousands(self.events_per_sec),
                thousands(self.events_per_sec_per_worker),
                self.mb_per_sec,
                self.seconds,
                self.cores_busy
            ),
        );
        let l = &self.epoch_latency;
        line(
            "epoch latency",
            format!(
                "p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms ({} epochs)",
                l.p50_ms, l.p99_ms, l.p999_ms, l.max_ms, l.count
            ),
        );
        if let Some(c) = &self.commit_latency {
            line(
                "lake commit",
                format!(
                    "p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} commits)",
                    c.p50_ms, c.p99_ms, c.max_ms, c.count
                ),
            );
        }
        lines
    }

    /// What it cost (memory, lake size), the limits beside it, and whether an open loop kept
    /// up: (label, text) lines.
    fn cost_lines(&self) -> Vec<(&'static str, String)> {
        let mut lines = Vec::new();
        let mut line = |label, text| lines.push((label, text));
        line(
            "peak memory",
            format!(
                "{:.1} MB RSS without the prepared input ({:.1} MB with it)",
                self.peak_rss_bytes as f64 / 1e6,
                self.process_peak_rss_bytes as f64 / 1e6
            ),
        );
        line(
            "lake",
            format!(
                "{:.1} MB for {:.1} MB of JSON: {:.1}x smaller",
                self.lake_bytes as f64 / 1e6,
                self.input_bytes as f64 / 1e6,
                self.compression_ratio
            ),
        );
        for (name, limit) in [
            ("decode only", &self.decode_limit),
            ("parquet only", &self.parquet_limit),
        ] {
            if let Some(limit) = limit {
                line(
                    name,
                    format!(
                        "{} events/s on {} thread(s) ({} before the pipeline, {} after): \
                         the pipeline runs at {:.0}% of it",
                        thousands(limit.events_per_sec),
                        self.workers,
                        thousands(limit.before_per_sec),
                        thousands(limit.after_per_sec),
                        limit.pipeline_fraction * 100.0
                    ),
                );
            }
        }
        if let Some(open) = &self.open_loop {
            line(
                "schedule",
                if open.max_backlog_events == 0 {
                    "kept up: no worker fell 100 ms behind the offered load".to_owned()
                } else {
                    format!(
                        "fell behind: up to {} events waiting past their offer time",
                        thousands(open.max_backlog_events as f64)
                    )
                },
            );
        }
        lines
    }
}

//! `lambdaflow bench`: its report describes the run it made, the run is the real pipeline (its
//! lake verifies against its views), and bad flags are one line. No figure here is a speed
//! assertion: speed is for `lambdaflow bench` itself to report.

#[path = "support/run.rs"]
mod run;

use run::{Dirs, json, lambdaflow, ok};

#[test]
fn the_report_describes_the_run_and_its_lake_is_the_pipelines() {
    let d = Dirs::new();
    let data = d.arg("lake");
    let report: serde_json::Value = serde_json::from_str(&ok(&[
        "bench",
        "--events",
        "30000",
        "--workers",
        "2",
        "--seed",
        "7",
        "--bad-fraction",
        "0.01",
        "--data-dir",
        &data,
        "--json",
    ]))
    .unwrap();
    let n = |k: &str| {
        report[k]
            .as_u64()
            .unwrap_or_else(|| panic!("{k} in {report}"))
    };
    assert_eq!(report["mode"], "closed");
    assert_eq!(n("workers"), 2);
    assert_eq!(n("records"), 30_000);
    assert_eq!(n("events") + n("dead_letters"), 30_000);

    // The same generated records, read from a file by `run`: the same events and dead letters,
    // and the same bytes of JSON.
    let input = d.generate("in.jsonl", 30_000, 7);
    let views_out = d.arg("views.json");
    ok(&[
        "run",
        "--source",
        &format!("file:{input}"),
        "--until-exhausted",
        "--no-lake",
        "--no-serve",
        "--quiet",
        "--views-out",
        &views_out,
    ]);
    let views = json(&views_out);
    let dead: u64 = views["views"]["dead_letters_by_reason"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["value"]["count"].as_u64().unwrap())
        .sum();
    assert!(dead > 0);
    assert_eq!(n("dead_letters"), dead);
    let file_bytes = std::fs::metadata(&input).unwrap().len();
    assert_eq!(
        n("input_bytes"),
        file_bytes - 30_000,
        "bytes without newlines"
    );

    // The lake it kept holds every event once, and the views it recorded verify against it.
    let info: serde_json::Value =
        serde_json::from_str(&ok(&["lake", "info", "--json", "--data-dir", &data])).unwrap();
    assert_eq!(info["events"]["rows"].as_u64(), Some(n("events")), "{info}");
    let parquet =
        info["events"]["bytes"].as_u64().unwrap() + info["dead_letters"]["bytes"].as_u64().unwrap();
    assert!(n("lake_bytes") >= parquet, "data files and logs: {info}");
    let verified = ok(&["verify", "--data-dir", &data]);
    assert!(verified.starts_with("ok:"), "{verified}");

    // The measurements are there and coherent.
    assert!(n("lake_bytes") > 0 && n("lake_bytes") < file_bytes);
    let ratio = report["compression_ratio"].as_f64().unwrap();
    assert!((ratio - n("input_bytes") as f64 / n("lake_bytes") as f64).abs() < 1e-6);
    assert!(report["epoch_latency"]["count"].as_u64().unwrap() >= 1);
    assert!(report["commit_latency"]["count"].as_u64().unwrap() >= 1);
    let latency = &report["epoch_latency"];
    assert!(latency["p50_ms"].as_f64() <= latency["p99_ms"].as_f64());
    assert!(latency["p99_ms"].as_f64() <= latency["max_ms"].as_f64());
    for limit in ["decode_limit", "parquet_limit"] {
        assert_eq!(report[limit]["events"].as_u64(), Some(30_000), "{limit}");
        let fraction = report[limit]["pipeline_fraction"].as_f64().unwrap();
        let expected = report["events_per_sec"].as_f64().unwrap()
            / report[limit]["events_per_sec"].as_f64().unwrap();
        assert!((fraction - expected).abs() < 1e-9, "{limit}");
        // Measured before and after the pipeline; the figure is over both.
        let rate = |k: &str| report[limit][k].as_f64().unwrap();
        let (before, after) = (rate("before_per_sec"), rate("after_per_sec"));
        assert!(before > 0.0 && after > 0.0, "{limit}");
        let both = rate("events_per_sec");
        assert!(
            before.min(after) * (1.0 - 1e-9) <= both && both <= before.max(after) * (1.0 + 1e-9),
            "{limit}: {both} not between {before} and {after}"
        );
        let seconds = 30_000.0 / before + 30_000.0 / after;
        assert!((report[limit]["seconds"].as_f64().unwrap() - seconds).abs() < 1e-6 * seconds);
    }
    assert!(n("peak_rss_bytes") > 0 && n("peak_rss_bytes") <= n("process_peak_rss_bytes"));
    assert!(report["machine"]["cpus"].as_u64().unwrap() >= 1);
    // Two workers did the work; no process keeps more cores busy than the machine has.
    let cores = report["cores_busy"].as_f64().unwrap();
    let cpus = report["machine"]["cpus"].as_f64().unwrap();
    assert!(cores > 0.0 && cores <= cpus + 0.05, "{cores} of {cpus}");
    assert!(report["open_loop"].is_null());
}

#[test]
fn an_open_loop_offers_records_on_schedule() {
    let report: serde_json::Value = serde_json::from_str(&ok(&[
        "bench",
        "--events",
        "6000",
        "--rate",
        "12000",
        "--epoch",
        "10ms",
        "--no-limits",
        "--json",
    ]))
    .unwrap();
    assert_eq!(report["mode"], "open");
    assert_eq!(report["records"], 6000);
    assert_eq!(report["open_loop"]["offered_per_sec"], 12000.0);
    assert!(report["decode_limit"].is_null());
    // 6,000 records offered at 12,000/s cannot all be in before half a second has passed.
    assert!(report["seconds"].as_f64().unwrap() >= 0.45, "{report}");
    assert!(report["epoch_latency"]["count"].as_u64().unwrap() >= 10);
}

#[test]
fn bad_flags_are_one_line() {
    let d = Dirs::new();
    std::fs::write(d.path("not-empty"), "x").unwrap();
    let root = d.arg("");
    for (args, words) in [
        (vec!["--events", "0"], "events"),
        (vec!["--epoch", "0s"], "epoch"),
        (vec!["--epoch", "soon"], "epoch"),
        (vec!["--rate=-5"], "rate"),
        (vec!["--rate", "0"], "rate"),
        (vec!["--workers", "0"], "workers"),
        (vec!["--views", "nope"], "unknown view"),
        (vec!["--bad-fraction", "2"], "bad fraction"),
        (vec!["--data-dir", root.as_str()], "not empty"),
    ] {
        let mut all = vec!["bench"];
        if args[0] != "--events" {
            all.extend(["--events", "1000"]);
        }
        all.extend(&args);
        let out = lambdaflow(&all);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(words), "{args:?}: {stderr}");
    }
}

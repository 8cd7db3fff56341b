//! Clusters end to end: `lambdaflow cluster` starts processes of one timely computation on this
//! machine, and their views are the views of one process.

#[path = "support/reference.rs"]
mod reference;
#[path = "support/run.rs"]
mod run;

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use run::{Dirs, get, json, lambdaflow, lines_of, ok, quiet, two_free_ports, two_process_run};

/// The views of a `--views-out` file, without the epoch they are as of (which depends on
/// timing).
fn views(path: &str) -> serde_json::Value {
    json(path)["views"].clone()
}

/// Asserts two runs' views are the same, naming the first view that is not.
fn assert_same(a: &serde_json::Value, b: &serde_json::Value, what: &str) {
    for (name, rows) in a.as_object().unwrap() {
        let other = &b[name];
        assert!(
            rows == other,
            "{what}: {name} differs: {rows:.300} against {other:.300}"
        );
    }
    assert_eq!(
        a.as_object().unwrap().len(),
        b.as_object().unwrap().len(),
        "{what}"
    );
}

/// Generated events, then purchases of two products and a country that only the file's last
/// lines hold: a process that did not read them knows their names only from the others.
fn events_with_late_names(dirs: &Dirs) -> String {
    let path = dirs.generate("events.jsonl", 20_000, 5);
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    for (i, product) in ["zz-late-b", "zz-late-a"].iter().enumerate() {
        writeln!(
            file,
            r#"{{"event_id":"late_{i}","event_type":"purchase","user_id":"user_late","event_timestamp":"2025-01-01T01:00:00Z","product":"{product}","price":99999.00,"country":"Atlantis","source":"web"}}"#
        )
        .unwrap();
    }
    path
}

#[test]
fn a_cluster_gives_the_answer_of_one_process() {
    let dirs = Dirs::new();
    let events = events_with_late_names(&dirs);
    let source = format!("file:{events}");
    let one = dirs.arg("one.json");
    ok(&[
        "run",
        "--source",
        &source,
        "--workers",
        "2",
        "--until-exhausted",
        "--no-serve",
        "--quiet",
        "--no-lake",
        "--views-out",
        &one,
    ]);
    for (processes, workers) in [("2", "1"), ("2", "2")] {
        let out = dirs.arg(&format!("cluster-{processes}x{workers}.json"));
        let lake = dirs.arg(&format!("lake-{processes}x{workers}"));
        ok(&[
            "cluster",
            "--processes",
            processes,
            "--workers",
            workers,
            "--",
            "run",
            "--source",
            &source,
            "--until-exhausted",
            "--no-serve",
            "--quiet",
            "--data-dir",
            &lake,
            "--views-out",
            &out,
        ]);
        assert_same(
            &views(&out),
            &views(&one),
            &format!("{processes} x {workers}"),
        );
    }
    let expected = reference::views(&lines_of(&events), 1 << 20);
    assert_eq!(reference::from_views_json(&json(&one)), expected);
    // The late products are named, and their tie broken by name, on the process serving them.
    let top = &views(&one)["top_products"];
    assert_eq!(top[0]["key"]["product"], "zz-late-a", "{top}");
    assert_eq!(top[1]["key"]["product"], "zz-late-b", "{top}");
}

#[test]
fn a_cluster_reads_the_generator_as_one_process_does() {
    let dirs = Dirs::new();
    let common = [
        "--source",
        "generate",
        "--count",
        "30000",
        "--rate",
        "0",
        "--start",
        "2025-01-01T00:00:00Z",
        "--until-exhausted",
        "--no-serve",
        "--no-lake",
        "--epoch-records",
        "2000",
    ];
    let one = dirs.arg("one.json");
    let mut args = vec!["run", "--workers", "2", "--views-out", &one];
    args.extend(common);
    ok(&args);
    let two = dirs.arg("two.json");
    let mut args = vec![
        "cluster",
        "--processes",
        "2",
        "--",
        "run",
        "--views-out",
        &two,
    ];
    args.extend(common);
    let printed = ok(&args);
    assert_same(&views(&two), &views(&one), "the generator");
    let counted: i64 = views(&one)["events_by_type"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["value"]["count"].as_i64().unwrap())
        .sum();
    assert!(counted > 29_000, "{counted} events");
    // Process 0's summary counts what every process read and decoded.
    let summary = printed.lines().find(|l| l.starts_with("done: ")).unwrap();
    assert!(summary.starts_with("done: 30000 records read"), "{summary}");
    assert!(summary.contains(&format!("{counted} events")), "{summary}");
}

#[test]
fn a_cluster_resumes_its_lake_and_verifies_it() {
    let dirs = Dirs::new();
    let events = dirs.generate("events.jsonl", 10_000, 9);
    let source = format!("file:{events}");
    let lake = dirs.arg("lake");
    let (first, second) = (dirs.arg("first.json"), dirs.arg("second.json"));
    for out in [&first, &second] {
        ok(&[
            "cluster",
            "--processes",
            "2",
            "--",
            "run",
            "--source",
            &source,
            "--until-exhausted",
            "--no-serve",
            "--quiet",
            "--data-dir",
            &lake,
            "--views-out",
            out,
        ]);
    }
    // The second run resumed after the first: the same events, once.
    assert_same(&views(&second), &views(&first), "resumed");
    let verified = ok(&[
        "cluster",
        "--processes",
        "2",
        "--",
        "verify",
        "--data-dir",
        &lake,
    ]);
    assert!(verified.starts_with("ok: 11 views equal"), "{verified}");
    let batch = dirs.arg("batch.json");
    ok(&[
        "cluster",
        "--processes",
        "2",
        "--",
        "batch",
        "--data-dir",
        &lake,
        "--views-out",
        &batch,
    ]);
    assert_same(&views(&batch), &views(&first), "batch");
}

#[test]
fn cluster_flags_that_do_not_fit_are_one_line_errors() {
    let dirs = Dirs::new();
    let hosts = dirs.path("hosts");
    std::fs::write(&hosts, "127.0.0.1:7001\nnot an address\n").unwrap();
    let hosts = hosts.display().to_string();
    for (args, message) in [
        (
            vec!["run", "--processes", "2", "--no-lake"],
            "--processes, --process and --hostfile go together",
        ),
        (
            vec![
                "run",
                "--processes",
                "2",
                "--process",
                "2",
                "--hostfile",
                &hosts,
            ],
            "--process 2 is not one of the 2 processes",
        ),
        (
            vec![
                "run",
                "--processes",
                "2",
                "--process",
                "1",
                "--hostfile",
                &hosts,
            ],
            "line 2: `not an address` is not host:port",
        ),
        (
            vec!["cluster", "--", "generate"],
            "a cluster runs `run`, `batch`, `verify` or `bench`",
        ),
    ] {
        let out = lambdaflow(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
}

/// The processes whose parent is `pid`.
fn children(pid: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let child: u32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let parent: u32 = stat
                .rsplit(')')
                .next()?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            (parent == pid).then_some(child)
        })
        .collect()
}

/// The newest version of the events table's log at `data`, if it has one.
fn lake_version(data: &str) -> Option<u64> {
    std::fs::read_dir(Path::new(data).join("events/_delta_log"))
        .ok()?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".json")?.parse().ok()
        })
        .max()
}

/// Starts `lambdaflow args`, waits until the lake at `data` is past `version`, and kills it
/// (SIGKILL; a cluster launcher is killed with its processes by killing one of them, which
/// ends the others). Returns the version it had reached.
fn kill_after_a_commit(args: &[&str], data: &str, version: Option<u64>, cluster: bool) -> u64 {
    let mut child = quiet(args).spawn().unwrap();
    let started = Instant::now();
    let reached = loop {
        match lake_version(data) {
            Some(v) if version.is_none_or(|old| v > old) => break v,
            _ => {}
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "{args:?} ended before a commit"
        );
        assert!(started.elapsed() < Duration::from_secs(120), "no commit");
        std::thread::sleep(Duration::from_millis(5));
    };
    if cluster {
        // Kill one of its processes: the launcher then stops the other and ends.
        let process = children(child.id()).into_iter().next().expect("a process");
        let _ = Command::new("kill")
            .args(["-9", &process.to_string()])
            .status();
        let status = child.wait().unwrap();
        assert!(
            !status.success(),
            "the cluster ended well after losing a process"
        );
    } else {
        child.kill().unwrap();
        child.wait().unwrap();
    }
    reached
}

#[test]
fn a_lake_resumes_under_any_number_of_processes_and_workers() {
    let dirs = Dirs::new();
    let events = dirs.generate("events.jsonl", 120_000, 13);
    let source = format!("file:{events}");
    let data = dirs.arg("lake");
    let common = [
        "--source",
        &source,
        "--no-serve",
        "--quiet",
        "--until-exhausted",
        "--epoch-records",
        "500",
        "--commit-epochs",
        "1",
        "--data-dir",
        &data,
    ];
    // 1 process x 2 workers, killed after a commit; 2 processes x 1 worker, killed after
    // another; then 1 process x 3 workers to the end.
    let first = kill_after_a_commit(
        &[&["run", "--workers", "2"][..], &common[..]].concat(),
        &data,
        None,
        false,
    );
    kill_after_a_commit(
        &[
            &["cluster", "--processes", "2", "--", "run"][..],
            &common[..],
        ]
        .concat(),
        &data,
        Some(first),
        true,
    );
    let out = dirs.arg("views.json");
    ok(&[
        &["run", "--workers", "3", "--views-out", &out][..],
        &common[..],
    ]
    .concat());
    let expected = reference::views(&lines_of(&events), 1 << 20);
    assert_eq!(reference::from_views_json(&json(&out)), expected);
    // Every event is in the lake once.
    let info: serde_json::Value =
        serde_json::from_str(&ok(&["lake", "info", "--json", "--data-dir", &data])).unwrap();
    let rows =
        info["events"]["rows"].as_i64().unwrap() + info["dead_letters"]["rows"].as_i64().unwrap();
    assert_eq!(rows, lines_of(&events).len() as i64);
    let verified = ok(&["verify", "--data-dir", &data]);
    assert!(verified.starts_with("ok: "), "{verified}");
}

#[test]
fn bench_runs_a_cluster_and_counts_every_process() {
    let report: serde_json::Value = serde_json::from_str(&ok(&[
        "bench",
        "--processes",
        "2",
        "--workers",
        "1",
        "--events",
        "20000",
        "--json",
    ]))
    .unwrap();
    assert_eq!(report["processes"], 2, "{report}");
    assert_eq!(report["workers"], 2, "{report}");
    assert_eq!(report["records"], 20_000, "{report}");
    assert_eq!(
        report["events"].as_u64().unwrap() + report["dead_letters"].as_u64().unwrap(),
        20_000,
        "{report}"
    );
}

#[test]
fn every_process_serves_its_own_status_and_metrics() {
    let dirs = Dirs::new();
    let port = two_free_ports();
    let listen = format!("127.0.0.1:{port}");
    let lake = dirs.arg("lake");
    let mut cluster = two_process_run(&[
        "--source",
        "generate",
        "--rate",
        "2000",
        "--listen",
        &listen,
        "--data-dir",
        &lake,
    ])
    .spawn()
    .unwrap();
    let follower = format!("127.0.0.1:{}", port + 1);
    let started = Instant::now();
    let metrics = loop {
        if let Some((200, body)) = get(&follower, "/metrics")
            && body.contains("lambdaflow_records_in_total")
        {
            break body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "process 1 serves nothing"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let status = get(&follower, "/api/status").unwrap();
    let views = get(&follower, "/api/views").unwrap();
    let leader = get(&listen, "/api/views").unwrap();
    let _ = Command::new("kill")
        .args(["-TERM", &cluster.id().to_string()])
        .status();
    assert!(cluster.wait().unwrap().success());
    assert!(metrics.contains("lambdaflow_events_total"), "{metrics}");
    assert_eq!(status.0, 200, "{status:?}");
    assert_eq!(views.0, 404, "{views:?}");
    assert!(views.1.contains("process 0 serves the views"), "{views:?}");
    assert_eq!(leader.0, 200, "{leader:?}");
}

#[test]
fn a_process_without_input_follows_the_epochs_of_records() {
    // Standard input is read by process 0 only: with epochs of records, process 1 has none of
    // its own to count, and must follow process 0's epochs for the views to close.
    let dirs = Dirs::new();
    let events = dirs.generate("events.jsonl", 5_000, 3);
    let expected: i64 = reference::views(&lines_of(&events), 1 << 20)["events_by_type"]
        .values()
        .map(|v| v["count"].as_i64().unwrap())
        .sum();
    let port = two_free_ports();
    let listen = format!("127.0.0.1:{port}");
    let mut cluster = two_process_run(&[
        "--source",
        "stdin",
        "--epoch-records",
        "500",
        "--no-lake",
        "--listen",
        &listen,
    ])
    .stdin(std::fs::File::open(&events).unwrap())
    .spawn()
    .unwrap();
    let started = Instant::now();
    let counted = loop {
        let counted: i64 = get(&listen, "/api/views/events_by_type")
            .and_then(|(_, body)| serde_json::from_str::<serde_json::Value>(&body).ok())
            .and_then(|v| {
                v["rows"].as_array().map(|rows| {
                    rows.iter()
                        .filter_map(|r| r["value"]["count"].as_i64())
                        .sum()
                })
            })
            .unwrap_or(0);
        if counted == expected || started.elapsed() > Duration::from_secs(60) {
            break counted;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = Command::new("kill")
        .args(["-TERM", &cluster.id().to_string()])
        .status();
    cluster.wait().unwrap();
    assert_eq!(counted, expected, "the views never closed the epochs read");
}

//! The command line end to end, from the built binary, as a user runs it.

#[path = "support/reference.rs"]
mod reference;
#[path = "support/run.rs"]
mod run;

use run::lines_of;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The binary, run in a fresh directory of its own (so its default data directory, the lake,
/// is that directory's `lambdaflow-data`).
fn lambdaflow() -> Command {
    let cwd = tempfile::tempdir().unwrap().keep();
    let mut command = Command::new(env!("CARGO_BIN_EXE_lambdaflow"));
    command.current_dir(cwd);
    command
}

fn views_of(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Runs `command` with `--views-out` into `dir`, checks it succeeds, and returns the views.
fn views_after(mut command: Command, dir: &Path) -> serde_json::Value {
    let views = dir.join("views-out.json");
    let status = command.arg("--views-out").arg(&views).status().unwrap();
    assert!(status.success(), "{status:?}");
    views_of(&views)
}

#[test]
fn generate_then_run_on_the_file_gives_the_reference_views() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    let out = lambdaflow()
        .args([
            "generate",
            "--count",
            "30000",
            "--seed",
            "9",
            "--bad-fraction",
            "0.02",
            "-o",
        ])
        .arg(&events)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let views = dir.path().join("v.json");
    let out = lambdaflow()
        .args(["run", "--until-exhausted", "--workers", "2", "--source"])
        .arg(format!("file:{}", events.display()))
        .arg("--views-out")
        .arg(&views)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = views_of(&views);
    assert!(json["as_of_epoch"].as_u64().is_some(), "{json}");
    assert_eq!(
        reference::from_views_json(&json),
        reference::views(&lines_of(&events), 1 << 20)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("done: 30000 records read"), "{stdout}");
}

#[test]
fn stdin_and_a_directory_are_sources_too() {
    let dir = tempfile::tempdir().unwrap();
    let input = lambdaflow()
        .args(["generate", "--count", "2000", "--bad-fraction", "0.05"])
        .output()
        .unwrap();
    assert!(input.status.success());
    let lines: Vec<Vec<u8>> = input
        .stdout
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    let expected = reference::views(&lines, 1 << 20);

    let views = dir.path().join("stdin.json");
    let mut child = lambdaflow()
        .args([
            "run",
            "-q",
            "--until-exhausted",
            "--source",
            "stdin",
            "--epoch-records",
            "100",
            "--views-out",
        ])
        .arg(&views)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&input.stdout)
        .unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(reference::from_views_json(&views_of(&views)), expected);

    // The same lines split over three files in a directory.
    let parts = dir.path().join("parts");
    std::fs::create_dir(&parts).unwrap();
    for (i, chunk) in lines.chunks(700).enumerate() {
        let mut f = std::fs::File::create(parts.join(format!("part-{i}.jsonl"))).unwrap();
        for line in chunk {
            f.write_all(line).unwrap();
            f.write_all(b"\n").unwrap();
        }
    }
    let mut run = lambdaflow();
    run.args(["run", "-q", "--until-exhausted", "-w", "3", "--source"])
        .arg(format!("file:{}", parts.display()));
    let views = views_after(run, dir.path());
    assert_eq!(reference::from_views_json(&views), expected);
}

#[test]
fn oversized_records_become_too_large_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    let good = r#"{"event_id":"a","event_type":"login","user_id":"u","event_timestamp":"2024-05-05T10:00:00+02:00","country":"FR"}"#;
    let big = format!(
        r#"{{"event_id":"b","event_type":"login","user_id":"u","event_timestamp":"2024-05-05T10:00:00Z","country":"FR","blob":"{}"}}"#,
        "z".repeat(5000)
    );
    std::fs::write(&events, format!("{good}\n{big}\n{good}\n")).unwrap();
    let views = dir.path().join("v.json");
    let status = lambdaflow()
        .args([
            "run",
            "-q",
            "--until-exhausted",
            "--max-record-bytes",
            "1000",
            "--source",
        ])
        .arg(format!("file:{}", events.display()))
        .arg("--views-out")
        .arg(&views)
        .status()
        .unwrap();
    assert!(status.success());
    let json = views_of(&views);
    assert_eq!(
        json["views"]["dead_letters_by_reason"],
        serde_json::json!([{"key": {"reason": "too_large"}, "value": {"count": 1}}])
    );
    assert_eq!(
        json["views"]["events_by_type"],
        serde_json::json!([{"key": {"event_type": "login"}, "value": {"count": 2}}])
    );
    assert_eq!(
        json["views"]["daily_active_users"],
        serde_json::json!([{"key": {"date": "2024-05-05"}, "value": {"users": 1}}])
    );
}

/// With views of its own and no built-in one, the summary counts what was decoded, not the
/// built-in views' (absent) counts, and shows no built-in headline.
#[test]
fn the_summary_of_a_run_with_its_own_views_counts_what_was_decoded() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    let good = r#"{"event_id":"1","event_type":"login","user_id":"u","event_timestamp":"2024-05-05T10:00:00Z","country":"DE"}"#;
    std::fs::write(&events, format!("{good}\n{good}\n{good}\nnot json\n")).unwrap();
    let config = dir.path().join("pipeline.toml");
    std::fs::write(
        &config,
        "[[views]]\nname = \"n\"\nsql = \"SELECT count(*) AS n FROM events\"\n",
    )
    .unwrap();
    let out = lambdaflow()
        .args([
            "run",
            "--until-exhausted",
            "--no-serve",
            "--no-lake",
            "--config",
        ])
        .arg(&config)
        .arg("--source")
        .arg(format!("file:{}", events.display()))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("done: 4 records read")
            && stdout.contains("3 events and 1 dead letters decoded"),
        "{stdout}"
    );
    assert!(stdout.contains(", 1 views;"), "{stdout}");
    assert!(!stdout.contains("revenue"), "{stdout}");
}

#[test]
fn a_top_n_view_is_listed_in_its_order() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    let event = |id: u32, country: &str, price: &str| {
        format!(
            r#"{{"event_id":"{id}","event_type":"purchase","user_id":"u","event_timestamp":"2024-05-05T10:00:00Z","country":"{country}","price":{price}}}"#
        )
    };
    let lines = [
        event(1, "AT", "5.00"),
        event(2, "BE", "30.00"),
        event(3, "CH", "12.50"),
        event(4, "AT", "20.00"),
        event(5, "DE", "1.00"),
    ];
    std::fs::write(&events, lines.join("\n") + "\n").unwrap();
    let config = dir.path().join("pipeline.toml");
    std::fs::write(
        &config,
        r#"
[[views]]
name = "top_countries"
sql = "SELECT country, sum(price) AS revenue FROM events GROUP BY country ORDER BY revenue DESC LIMIT 3"
"#,
    )
    .unwrap();
    let mut run = lambdaflow();
    run.args(["run", "-q", "--until-exhausted", "--no-serve", "--config"])
        .arg(&config)
        .arg("--source")
        .arg(format!("file:{}", events.display()));
    let listed: Vec<(String, String)> = views_after(run, dir.path())["views"]["top_countries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let (k, v) = (&r["key"]["country"], &r["value"]["revenue"]);
            (k.as_str().unwrap().into(), v.as_str().unwrap().into())
        })
        .collect();
    let want = [("BE", "30.00"), ("AT", "25.00"), ("CH", "12.50")];
    let want: Vec<(String, String)> = want.map(|(k, v)| (k.into(), v.into())).into();
    assert_eq!(listed, want);
}

#[test]
fn bad_flags_and_configs_get_one_line_and_a_non_zero_exit() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "[pipeline]\nworkers = \"two\"\n").unwrap();
    let config = config.display().to_string();
    let cases: [(&[&str], &str); 13] = [
        (
            &["run", "--workers", "0"],
            "workers must be between 1 and 256",
        ),
        (
            &["run", "--source", "file:/no/such/file.jsonl"],
            "/no/such/file.jsonl",
        ),
        (&["run", "--source", "ftp://x"], "source `ftp://x` is not"),
        (
            &["run", "--epoch", "fast"],
            "epoch `fast` is not a duration",
        ),
        (
            &["run", "--views", "events_by_type,nope"],
            "unknown view `nope`",
        ),
        (&["run", "--config", &config], "bad.toml"),
        (
            &["run", "--config", "/no/such.toml"],
            "cannot read config file",
        ),
        (
            &["generate", "--bad-fraction", "3"],
            "bad fraction must be between 0 and 1",
        ),
        (&["run", "--wrokers", "2"], "--wrokers"),
        (&["run", "--epoch", "10years"], "longer than 1h"),
        (
            &["run", "--commit-interval", "0s"],
            "commit interval `0s` is shorter than the epoch",
        ),
        (
            &["run", "--commit-interval", "3days"],
            "commit interval `3days` is longer than 1day",
        ),
        (&["run", "--source", "file:/etc"], "is under /etc"),
    ];
    for (args, expected) in cases {
        let out = lambdaflow().args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("panicked") && !stderr.contains("backtrace"),
            "{args:?}: {stderr}"
        );
        if args[1] != "--wrokers" {
            assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        }
    }
}

#[test]
fn a_closed_stdout_ends_a_command_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("e.jsonl");
    let out = lambdaflow()
        .args(["generate", "--count", "100", "-o"])
        .arg(&events)
        .output()
        .unwrap();
    assert!(out.status.success());
    let data = dir.path().join("data");
    let out = lambdaflow()
        .args(["run", "-q", "--no-serve", "--until-exhausted", "--source"])
        .arg(format!("file:{}", events.display()))
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success());
    let data = data.display().to_string();
    let commands: [&[&str]; 5] = [
        &["views"],
        &["config"],
        &["lake", "info", "--data-dir", &data],
        &["lake", "info", "--json", "--data-dir", &data],
        &["generate", "--count", "100000"],
    ];
    for args in commands {
        // The reading end is closed before the command writes a byte: `cmd | head -0`.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = lambdaflow()
            .args(args)
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {:?} {stderr}", out.status);
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
}

/// Waits for `condition`, polling, up to `timeout`.
fn wait_for(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn sigint_and_sigterm_stop_the_demo_cleanly() {
    for signal in ["-INT", "-TERM"] {
        let dir = tempfile::tempdir().unwrap();
        let views = dir.path().join("v.json");
        let mut child = lambdaflow()
            .args(["run", "--workers", "2", "--rate", "500", "--views-out"])
            .arg(&views)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Wait until the demo prints its first live line, then signal it.
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut printed = String::new();
        assert!(wait_for(Duration::from_secs(30), || {
            let mut line = String::new();
            std::io::BufRead::read_line(&mut stdout, &mut line).unwrap() > 0 && {
                printed.push_str(&line);
                line.contains(" dead ")
            }
        }));
        let killed = Command::new("kill")
            .arg(signal)
            .arg(child.id().to_string())
            .status()
            .unwrap();
        assert!(killed.success());
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(0), "{signal}: {status:?}");
        let json = views_of(&views);
        let events: i64 = json["views"]["events_by_type"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["value"]["count"].as_i64().unwrap())
            .sum();
        assert!(events > 0, "{signal}: {json}");
    }
}

/// Every construct SQL views do not support is refused when the pipeline starts: exit 1, one line
/// on stderr naming the view, the construct and where it is, nothing started (no lake written).
#[test]
fn unsupported_sql_is_refused_at_start_with_one_line() {
    let cases: [(&str, &str); 16] = [
        (
            "SELECT a.country, count(*) FROM events a JOIN events b ON a.user_id = b.user_id GROUP BY 1",
            "joins are not supported (line 1, column 47)",
        ),
        (
            "SELECT country, count(*) FROM (SELECT * FROM events) GROUP BY country",
            "subqueries are not supported",
        ),
        (
            "SELECT country, count(*) FROM events WHERE price > (SELECT 1) GROUP BY country",
            "subqueries are not supported",
        ),
        (
            "SELECT country, rank() OVER (ORDER BY country) FROM events GROUP BY country",
            "window functions are not supported",
        ),
        (
            "SELECT colour, count(*) FROM events GROUP BY colour",
            "unknown column `colour` (line 1, column 8)",
        ),
        (
            "SELECT country, stddev(price) FROM events GROUP BY country",
            "unknown function `stddev` (line 1, column 17)",
        ),
        (
            "SELECT country, sum(user_id) FROM events GROUP BY country",
            "sum of a string value is not supported",
        ),
        (
            "SELECT country, count(*) FROM events WHERE price LIKE '1%' GROUP BY country",
            "LIKE needs a string, not a money value",
        ),
        (
            "SELECT country, count(*) FROM events WHERE country = 3 GROUP BY country",
            "an int value cannot be compared with a string value",
        ),
        (
            "SELECT country, product FROM events GROUP BY country",
            "column `product` must be in GROUP BY or inside an aggregate",
        ),
        (
            "WITH e AS (SELECT * FROM events) SELECT count(*) FROM e",
            "WITH is not supported",
        ),
        (
            "SELECT country, count(*) FROM events GROUP BY country UNION SELECT country, 1 FROM events",
            "only a plain SELECT is supported",
        ),
        (
            "SELECT country, count(*) FROM events GROUP BY country ORDER BY country LIMIT 5 OFFSET 2",
            "OFFSET is not supported",
        ),
        (
            "SELECT country, count(*) FROM orders GROUP BY country",
            "unknown table `orders`",
        ),
        (
            "SELECT country, CAST(avg(price) AS DECIMAL(10, 3)) FROM events GROUP BY country",
            "CAST to DECIMAL(10,3) is not supported: a decimal is DECIMAL(p, 2), p from 3 to 18",
        ),
        (
            "SELECT country, CAST(country AS DECIMAL(10, 2)) FROM events GROUP BY country",
            "CAST of a string value to DECIMAL(10,2) is not supported",
        ),
    ];
    for (sql, construct) in cases {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("pipeline.toml");
        std::fs::write(
            &config,
            format!("[[views]]\nname = \"mine\"\nsql = {}\n", toml_string(sql)),
        )
        .unwrap();
        let out = lambdaflow()
            .current_dir(dir.path())
            .args(["run", "--config", "pipeline.toml", "--no-serve"])
            .output()
            .unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(1), "{sql}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{sql}: {stderr}");
        assert!(
            stderr.starts_with("lambdaflow: view `mine`: ") && stderr.contains(construct),
            "{sql}: got `{stderr}`, want `{construct}`"
        );
        assert!(
            !dir.path().join("lambdaflow-data").exists(),
            "{sql}: nothing may start"
        );
    }
}

/// A TOML basic string holding `text`.
fn toml_string(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `[lake] partition_by` picks the partition columns; the views recomputed from such a lake equal
/// the live ones, and a run with other partition columns on the same lake is refused in one line.
#[test]
fn the_lake_is_partitioned_as_the_config_says() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).display().to_string();
    std::fs::write(
        dir.path().join("pipeline.toml"),
        "[lake]\npartition_by = [\"event_date\", \"country\"]\n",
    )
    .unwrap();
    let run = |extra: &[&str]| {
        lambdaflow()
            .args([
                "generate",
                "--count",
                "3000",
                "--bad-fraction",
                "0.01",
                "-o",
            ])
            .arg(path("events.jsonl"))
            .output()
            .unwrap();
        let mut command = lambdaflow();
        command
            .args([
                "run",
                "--quiet",
                "--no-serve",
                "--until-exhausted",
                "--workers",
                "2",
            ])
            .args(["--source", &format!("file:{}", path("events.jsonl"))])
            .args(["--data-dir", &path("data")])
            .args(extra);
        command.output().unwrap()
    };
    let out = run(&["--config", &path("pipeline.toml")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let day = dir.path().join("data/events/event_date=2025-01-01");
    let mut partitions: Vec<String> = std::fs::read_dir(&day)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    partitions.sort();
    assert!(
        !partitions.is_empty() && partitions.iter().all(|p| p.starts_with("country=")),
        "{partitions:?}"
    );
    let verify = lambdaflow()
        .args(["verify", "--data-dir", &path("data")])
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    let out = run(&[]);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(r#"is partitioned by ["event_date", "country"], the config's schema by ["event_date", "event_type"]"#),
        "{stderr}"
    );
}
